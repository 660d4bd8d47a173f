//! Drops, dead links, deadlines and backoff (`connect.rs`, `open.rs`, `retry.rs`, `timers.rs`).

use super::*;

#[test]
fn error_then_close_for_the_same_socket_schedules_one_retry() {
    let mut r = Rig::new();
    r.open_display();
    let socket = r.socket();
    r.send(Input::SocketError { socket });
    r.send(Input::SocketClosed { socket, code: 1006 });
    r.wait(10_000);
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        2,
        "one resync"
    );
    r.answer_qr();
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn hiding_the_qr_cancels_the_pending_open() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.run_until(300);
    let out = r.send(Input::HideQr);
    assert!(out.contains(&Command::CancelTimer));
    r.wait(10_000);
    assert!(r.opens().is_empty());
}

#[test]
fn hiding_the_qr_during_backoff_cancels_the_retry() {
    let mut r = Rig::new();
    r.open_display();
    r.close_socket(1006);
    assert_eq!(r.state(), UiState::Retrying);
    let out = r.send(Input::HideQr);
    assert!(out.contains(&Command::CancelTimer));
    r.wait(60_000);
    assert_eq!(r.opens().len(), 1);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
}

#[test]
fn hiding_an_open_qr_disconnects_and_closes_the_socket() {
    let mut r = Rig::new();
    r.open_display();
    let socket = r.socket();
    let out = r.send(Input::HideQr);
    assert!(out.contains(&Command::Send {
        socket,
        text: "41".into()
    }));
    assert!(out.contains(&Command::Close { socket, code: 1000 }));
    assert!(out.contains(&Command::Notify(Notice::PairingEnded { bot: "b1".into() })));
}

#[test]
fn two_attempts_less_than_1s_apart_are_spread_to_1s() {
    let mut r = Rig::new();
    r.open_display(); // opened at 500
    r.close_socket(1006); // at 500: the retry's jitter may be tiny
    r.wait(20_000);
    r.answer_qr();
    let opens = r.opens();
    assert_eq!(opens.len(), 2);
    assert!(opens[1] >= opens[0] + 1_000, "{opens:?}");
}

#[test]
fn hide_and_show_again_still_keeps_1s_between_opens() {
    let mut r = Rig::new();
    r.open_display(); // opened at 500
    r.send(Input::HideQr);
    r.show();
    r.answer_qr(); // debounce says 1000, the 1 s rule says 1500
    r.wait(5_000);
    assert_eq!(r.opens(), vec![500, 1_500]);
}

#[test]
fn a_server_that_stays_down_gets_five_jittered_retries_at_least_1s_apart_then_network() {
    for seed in [1, 7, 42, 1234, 99999] {
        let mut r = Rig::new();
        r.m = Machine::new(Config::default(), seed);
        r.show();
        r.answer_qr();
        r.wait(500);
        // The server refuses every connection at once; the resync fetch is answered at once.
        for _ in 0..20_000 {
            if r.state() == UiState::Failed {
                break;
            }
            if r.state() == UiState::Connecting {
                r.close_socket(1006);
            }
            if r.state() == UiState::Retrying && r.m.view().in_flight {
                r.answer_qr();
            }
            r.wait(10);
        }
        let opens = r.opens();
        assert_eq!(
            opens.len(),
            6,
            "seed {seed}: the first attempt and 5 retries: {opens:?}"
        );
        assert!(
            opens.windows(2).all(|w| w[1] - w[0] >= 1_000),
            "seed {seed}: {opens:?}"
        );
        // Full jitter: the gaps are bounded by the doubling cap (1, 2, 4, 8, 8 s).
        for (i, w) in opens.windows(2).enumerate() {
            let cap = [1_000, 2_000, 4_000, 8_000, 8_000][i];
            assert!(
                w[1] - w[0] <= cap.max(1_000),
                "seed {seed}: gap {i} {opens:?}"
            );
        }
        assert_eq!(r.failure().as_deref(), Some("network"));
    }
}

#[test]
fn a_black_holed_link_is_declared_dead_after_ping_interval_plus_timeout() {
    let mut r = Rig::new();
    r.open_display();
    let connected_at = r.now;
    r.run_until(connected_at + 44_999);
    assert_eq!(r.state(), UiState::WaitingForScan);
    r.run_until(connected_at + 45_000);
    assert_eq!(r.state(), UiState::Retrying);
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 1);
}

#[test]
fn a_connection_that_never_answers_the_handshake_is_not_stuck_in_connecting() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    r.wait(10_000);
    assert_eq!(r.state(), UiState::Retrying);
}

#[test]
fn a_1006_during_the_handshake_is_a_network_error_not_auth() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    r.close_socket(1006);
    assert_eq!(r.state(), UiState::Retrying);
    assert_eq!(
        r.count(|c| matches!(
            c,
            Command::RefreshSession { .. } | Command::NewSession { .. }
        )),
        0
    );
}

#[test]
fn late_timers_from_a_hidden_tab_cause_no_burst_of_opens() {
    let mut r = Rig::new();
    r.open_display();
    r.close_socket(1006);
    // The tab is hidden: the backoff timer fires a minute late, and twice.
    r.timer = None;
    r.now += 60_000;
    r.send(Input::TimerFired);
    r.send(Input::TimerFired);
    r.answer_qr();
    r.send(Input::TimerFired);
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn a_stable_open_of_10s_forgives_earlier_failures() {
    let mut r = Rig::new();
    r.open_display();
    for _ in 0..4 {
        r.close_socket(1006);
        r.wait(10_000);
        r.answer_qr();
        r.accept();
    }
    // Stable for 10 s (pings keep it alive), then five more drops are all retried.
    for _ in 0..2 {
        r.wait(9_000);
        r.frame("2");
    }
    for _ in 0..5 {
        r.close_socket(1006);
        r.wait(10_000);
        r.answer_qr();
        r.accept();
    }
    assert_eq!(r.state(), UiState::WaitingForScan);
}

#[test]
fn a_qr_request_that_never_answers_times_out_and_is_retried() {
    let mut r = Rig::new();
    r.show();
    r.run_until(9_999);
    assert!(r.m.view().in_flight);
    r.run_until(10_000);
    assert_eq!(r.state(), UiState::Retrying);
    assert!(
        !r.m.view().in_flight,
        "the lock is released while waiting to retry"
    );
    r.wait(10_000);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 2);
}

#[test]
fn a_refresh_that_never_answers_does_not_hold_the_lock_forever() {
    let mut r = Rig::new();
    r.open_display_refused("token_expired");
    let stale = r.last_session_request().unwrap();
    r.wait(10_000);
    assert_eq!(r.state(), UiState::Retrying);
    // Its answer, arriving late, is stale.
    r.send(Input::SessionReady { epoch: stale });
    assert!(r.m.view().in_flight || r.state() == UiState::Retrying);
    assert_eq!(r.count(|c| matches!(c, Command::RefreshSession { .. })), 1);
}

#[test]
fn a_world_that_never_answers_ends_in_a_network_failure_not_a_loop() {
    let mut r = Rig::new();
    r.show();
    r.wait(600_000);
    assert_eq!(r.failure().as_deref(), Some("network"));
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        6,
        "the first request and 5 retries"
    );
}

#[test]
fn a_reload_while_open_hangs_up_and_the_new_page_opens_once() {
    // Unloading the page unmounts the QR: the old owner hangs up politely.
    let mut old_page = Rig::new();
    old_page.open_display();
    let socket = old_page.socket();
    let out = old_page.send(Input::HideQr);
    assert!(out.contains(&Command::Send {
        socket,
        text: "41".into()
    }));
    assert!(out.contains(&Command::Close { socket, code: 1000 }));
    // The reloaded page has a new owner; it joins the same pairing and opens one socket.
    let mut new_page = Rig::new();
    new_page.open_display();
    new_page.wait(40_000);
    new_page.frame("2");
    assert_eq!(new_page.opens().len(), 1);
    assert_eq!(new_page.state(), UiState::WaitingForScan);
}

impl Rig {
    /// A display whose first socket dropped and whose second is open now; returns the first.
    pub(super) fn second_socket_open(&mut self) -> SocketId {
        self.open_display();
        let first = self.socket();
        self.close_socket(1006);
        self.wait(10_000);
        self.answer_qr();
        self.wait(1_000);
        self.accept();
        assert_ne!(self.socket(), first);
        assert_eq!(self.state(), UiState::WaitingForScan);
        first
    }
}

#[test]
fn an_old_sockets_frames_errors_and_closes_change_nothing() {
    let mut r = Rig::new();
    let old = r.second_socket_open();
    let before = r.log.len();
    let linked = event(r#"{"type":"whatsapp_connected","botId":"b1","phone":"+1"}"#);
    for input in [
        Input::SocketMessage {
            socket: old,
            text: linked,
        },
        Input::SocketMessage {
            socket: old,
            text: "41".into(),
        },
        Input::SocketError { socket: old },
        Input::SocketClosed {
            socket: old,
            code: 1006,
        },
    ] {
        r.send(input.clone());
        assert_eq!(r.state(), UiState::WaitingForScan, "after {input:?}");
    }
    assert!(
        r.log[before..].iter().all(|(_, c)| !matches!(
            c,
            Command::Close { .. } | Command::Send { .. } | Command::Heard(_)
        )),
        "{:?}",
        &r.log[before..]
    );
}

#[test]
fn an_error_of_the_current_socket_alone_is_a_drop() {
    // Browsers fire `error` before `close`; should the close never come, the error is enough.
    let mut r = Rig::new();
    r.open_display();
    let socket = r.socket();
    r.send(Input::SocketError { socket });
    assert_eq!(r.state(), UiState::Retrying);
    assert_eq!(
        r.count(|c| matches!(c, Command::Close { socket: s, .. } if *s == socket)),
        1
    );
}
