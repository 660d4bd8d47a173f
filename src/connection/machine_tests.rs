//! Scenarios for the state machine on a fake clock: PROTOCOL.md §6 line by line, and the rows
//! of DESIGN.md's failure matrix. A `Rig` plays the driver: it keeps the one timer, fires it
//! when the clock passes it (late, if asked), and records every command with its time.

use super::*;

const OPEN: &str =
    r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const CONNECTED: &str = r#"40{"sid":"n"}"#;

struct Rig {
    m: Machine,
    now: Millis,
    timer: Option<Millis>,
    log: Vec<(Millis, Command)>,
    /// Whether the rig, playing the browser, grants the cross-tab lock at once (one tab open).
    grant_tab: bool,
}

impl Rig {
    fn new() -> Self {
        Rig {
            m: Machine::new(Config::default(), 42),
            now: 0,
            timer: None,
            log: Vec::new(),
            grant_tab: true,
        }
    }

    fn send(&mut self, input: Input) -> Vec<Command> {
        let mut out = self.m.handle(input, self.now);
        let mut claims = Vec::new();
        for c in &out {
            match c {
                Command::ArmTimer { at } => self.timer = Some(*at),
                Command::CancelTimer => self.timer = None,
                Command::ClaimTab { epoch, .. } => claims.push(*epoch),
                _ => {}
            }
            self.log.push((self.now, c.clone()));
        }
        if self.grant_tab {
            for epoch in claims {
                out.extend(self.send(Input::TabClaimed { epoch }));
            }
        }
        out
    }

    /// Moves the clock to `t`, firing the timer on time whenever it is due.
    fn run_until(&mut self, t: Millis) {
        while let Some(at) = self.timer.filter(|at| *at <= t) {
            self.now = self.now.max(at);
            self.timer = None;
            self.send(Input::TimerFired);
        }
        self.now = self.now.max(t);
    }

    fn wait(&mut self, ms: Millis) {
        self.run_until(self.now + ms);
    }

    fn show(&mut self) {
        self.send(Input::ShowQr { bot: "b1".into() });
    }

    fn last_fetch(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::FetchQr { epoch, .. } => Some(*epoch),
            _ => None,
        })
    }

    fn last_session_request(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::RefreshSession { epoch } | Command::NewSession { epoch } => Some(*epoch),
            _ => None,
        })
    }

    /// The server answers the QR request, and the page shows the QR at once.
    fn answer_qr(&mut self) {
        let epoch = self.last_fetch().expect("a QR was requested");
        self.send(Input::QrFetched { epoch, qr: qr(1) });
        self.send(Input::QrShown { qr: qr(1).qr });
    }

    fn socket(&self) -> SocketId {
        self.log
            .iter()
            .rev()
            .find_map(|(_, c)| match c {
                Command::Open { socket } => Some(*socket),
                _ => None,
            })
            .expect("a socket was opened")
    }

    fn frame(&mut self, text: &str) -> Vec<Command> {
        let socket = self.socket();
        self.send(Input::SocketMessage {
            socket,
            text: text.into(),
        })
    }

    /// The server accepts the newest socket: Engine.IO open, then namespace CONNECT.
    fn accept(&mut self) {
        let socket = self.socket();
        self.send(Input::SocketOpened { socket });
        self.frame(OPEN);
        self.frame(CONNECTED);
    }

    /// Show the QR, answer the fetch, pass the debounce, accept the socket.
    fn open_display(&mut self) {
        self.show();
        self.answer_qr();
        self.wait(500);
        self.accept();
        assert_eq!(self.state(), UiState::WaitingForScan);
    }

    fn close_socket(&mut self, code: u16) {
        let socket = self.socket();
        self.send(Input::SocketClosed { socket, code });
    }

    fn opens(&self) -> Vec<Millis> {
        self.log
            .iter()
            .filter(|(_, c)| matches!(c, Command::Open { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn count(&self, pred: impl Fn(&Command) -> bool) -> usize {
        self.log.iter().filter(|(_, c)| pred(c)).count()
    }

    fn state(&self) -> UiState {
        self.m.view().state
    }

    fn failure(&self) -> Option<String> {
        self.m.view().failure.map(|f| f.code())
    }
}

fn qr(attempt: u32) -> Pairing {
    Pairing {
        qr: format!("http://127.0.0.1/link/ref{attempt}"),
        attempt,
        attempts: 6,
        expires_in_ms: 60_000,
    }
}

fn event(payload: &str) -> String {
    format!(r#"42["whatsapp_connection_event",{payload}]"#)
}

// ---- storms, debounce, lock ------------------------------------------------------------------

#[test]
fn fifty_generate_clicks_in_one_second_open_exactly_one_socket() {
    let mut r = Rig::new();
    for i in 0..50 {
        r.run_until(i * 20);
        r.show();
        if i == 3 {
            r.answer_qr();
        }
    }
    r.wait(5_000);
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        1,
        "one QR request"
    );
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn twenty_show_hide_toggles_in_two_seconds_open_no_socket_until_one_display_lasts() {
    let mut r = Rig::new();
    for i in 0..20 {
        r.run_until(i * 100);
        if i % 2 == 0 {
            r.show();
            r.answer_qr();
        } else {
            r.send(Input::HideQr);
        }
    }
    // Every display lasted 100 ms: inside the debounce window, so nothing opened.
    r.wait(3_000);
    assert!(r.opens().is_empty());
    r.show();
    r.answer_qr();
    r.wait(3_000);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn ten_route_switches_with_the_qr_kept_on_screen_open_exactly_one_socket() {
    // A route switch unmounts the QR (hide) and the other page mounts it again (show).
    let mut r = Rig::new();
    for i in 0..10 {
        r.run_until(i * 150);
        r.show();
        r.answer_qr();
        r.run_until(i * 150 + 75);
        r.send(Input::HideQr);
    }
    r.show();
    r.answer_qr();
    r.wait(10_000);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn ten_qr_shown_signals_within_500ms_open_one_socket() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    for i in 0..10 {
        r.run_until(i * 50);
        r.show();
    }
    r.wait(5_000);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn the_socket_opens_exactly_500ms_after_the_qr_appears() {
    let mut r = Rig::new();
    r.run_until(1_000);
    r.show();
    r.run_until(1_200);
    r.answer_qr(); // the QR appears at 1200
    assert_eq!(r.state(), UiState::Debouncing);
    r.run_until(1_699);
    assert!(r.opens().is_empty(), "not at 499 ms");
    r.run_until(1_700);
    assert_eq!(r.opens(), vec![1_700]);
    assert_eq!(r.state(), UiState::Connecting);
}

#[test]
fn the_debounce_counts_from_when_the_qr_is_shown_not_when_it_arrived() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetched { epoch, qr: qr(1) });
    r.run_until(40); // rendering takes a moment
    r.send(Input::QrShown { qr: qr(1).qr });
    r.send(Input::QrShown { qr: qr(1).qr }); // a repaint does not restart it
    r.run_until(539);
    assert!(r.opens().is_empty());
    r.run_until(540);
    assert_eq!(r.opens(), vec![540]);
}

#[test]
fn a_qr_that_no_page_shows_opens_no_socket() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetched { epoch, qr: qr(1) });
    r.send(Input::QrShown {
        qr: "some other, stale QR".into(),
    });
    r.wait(60_000);
    assert!(r.opens().is_empty());
    assert_eq!(r.state(), UiState::Debouncing);
}

#[test]
fn another_bot_inside_the_window_restarts_the_debounce() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.run_until(400);
    r.send(Input::ShowQr { bot: "b2".into() });
    r.answer_qr();
    r.run_until(899);
    assert!(r.opens().is_empty());
    r.run_until(900);
    assert_eq!(r.opens(), vec![900]);
}

#[test]
fn the_lock_holds_while_an_attempt_is_in_flight() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    assert!(r.m.view().is_locked);
    // Clicks, retries and timers while connecting start nothing.
    for _ in 0..10 {
        r.show();
        r.send(Input::Retry);
        r.send(Input::TimerFired);
    }
    r.wait(2_000);
    assert_eq!(r.opens().len(), 1);
    r.accept();
    assert!(!r.m.view().is_locked);
}

#[test]
fn generate_qr_is_single_flight_while_its_request_is_in_flight() {
    let mut r = Rig::new();
    r.show();
    assert!(r.m.view().is_locked);
    r.show();
    r.show();
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
}

// ---- success ------------------------------------------------------------------------------

#[test]
fn whatsapp_connected_sends_namespace_disconnect_and_closes_1000_then_nothing_reopens() {
    let mut r = Rig::new();
    r.open_display();
    let socket = r.socket();
    r.frame(&event(r#"{"type":"qr_scanned","botId":"b1"}"#));
    assert_eq!(r.state(), UiState::Finishing);
    let out = r.frame(&event(
        r#"{"type":"whatsapp_connected","botId":"b1","phone":"+15550001"}"#,
    ));
    let disconnect = Command::Send {
        socket,
        text: "41".into(),
    };
    let close = Command::Close { socket, code: 1000 };
    let at_disconnect = out.iter().position(|c| *c == disconnect).expect("41 sent");
    let at_close = out.iter().position(|c| *c == close).expect("closed 1000");
    assert!(at_disconnect < at_close);
    assert_eq!(r.state(), UiState::Linked);
    assert_eq!(r.m.view().phone.as_deref(), Some("+15550001"));
    // More events, timers, clicks, retries: no socket.
    r.frame(&event(
        r#"{"type":"qr_updated","botId":"b1","qr":"x","attempt":2,"attempts":6,"expiresInMs":1}"#,
    ));
    r.show();
    r.send(Input::Retry);
    r.send(Input::SocketClosed { socket, code: 1006 });
    r.wait(120_000);
    assert_eq!(r.opens().len(), 1);
    assert_eq!(r.state(), UiState::Linked);
}

#[test]
fn the_socket_stays_open_while_waiting_after_the_scan_and_says_so_after_60s() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_scanned","botId":"b1"}"#));
    for _ in 0..3 {
        r.wait(20_000);
        r.frame("2");
    }
    assert_eq!(r.state(), UiState::Finishing);
    assert!(r.m.view().scan_stalled);
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 0);
}

#[test]
fn a_passkey_request_says_finish_on_the_phone_at_once_and_keeps_the_socket() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_scanned","botId":"b1"}"#));
    assert!(!r.m.view().scan_stalled);
    r.frame(&event(r#"{"type":"finish_on_phone","botId":"b1"}"#));
    assert_eq!(r.state(), UiState::Finishing);
    assert!(
        r.m.view().scan_stalled,
        "the note shows now, not after 60 s"
    );
    // Another bot's passkey is not ours.
    let mut other = Rig::new();
    other.open_display();
    other.frame(&event(r#"{"type":"finish_on_phone","botId":"b2"}"#));
    assert!(!other.m.view().scan_stalled);
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 0);
    r.frame(&event(
        r#"{"type":"whatsapp_connected","botId":"b1","phone":"+15551234567"}"#,
    ));
    assert_eq!(r.state(), UiState::Linked);
}

#[test]
fn a_dead_pairing_code_is_reported_for_this_bot_only() {
    let mut r = Rig::new();
    r.open_display();
    let out = r.frame(&event(
        r#"{"type":"pairing_code_expired","botId":"b1","reason":"replaced"}"#,
    ));
    assert!(out.contains(&Command::Notify(Notice::PairingCodeExpired {
        bot: "b1".into()
    })));
    let other = r.frame(&event(r#"{"type":"pairing_code_expired","botId":"b2"}"#));
    assert!(
        !other
            .iter()
            .any(|c| matches!(c, Command::Notify(Notice::PairingCodeExpired { .. })))
    );
    // It ends nothing: the QR and the socket stay.
    assert_eq!(r.state(), UiState::WaitingForScan);
}

#[test]
fn a_426_client_outdated_ends_the_attempt_for_good() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(
        r#"{"type":"connection_failed","botId":"b1","code":426,"reason":"outdated"}"#,
    ));
    assert_eq!(r.state(), UiState::Failed);
    let opens = r.opens().len();
    r.wait(120_000);
    assert_eq!(r.opens().len(), opens, "no reopen after a terminal code");
}

#[test]
fn qr_updated_replaces_the_qr_in_place() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_updated","botId":"b1","qr":"http://h/link/two","attempt":2,"attempts":6,"expiresInMs":20000}"#));
    assert_eq!(
        r.m.view().qr.map(|q| (q.qr, q.attempt)),
        Some(("http://h/link/two".into(), 2))
    );
    // Another bot's QR is not ours.
    r.frame(&event(r#"{"type":"qr_updated","botId":"other","qr":"nope","attempt":3,"attempts":6,"expiresInMs":20000}"#));
    assert_eq!(r.m.view().qr.map(|q| q.attempt), Some(2));
}

#[test]
fn an_empty_qr_update_is_ignored() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_updated","botId":"b1","qr":"","attempt":2,"attempts":6,"expiresInMs":20000}"#));
    assert_eq!(r.m.view().qr, Some(qr(1)));
}

#[test]
fn pings_are_answered_and_acks_sent() {
    let mut r = Rig::new();
    r.open_display();
    let socket = r.socket();
    assert!(r.frame("2").contains(&Command::Send {
        socket,
        text: "3".into()
    }));
    let out = r.frame(r#"427["message_sync",{"botId":"b1","messages":3}]"#);
    assert!(out.contains(&Command::Send {
        socket,
        text: "437[]".into()
    }));
    assert!(out.contains(&Command::Notify(Notice::Messages {
        bot: "b1".into(),
        messages: 3
    })));
}

#[test]
fn a_malformed_frame_is_logged_and_dropped_without_killing_the_connection() {
    let mut r = Rig::new();
    r.open_display();
    let out = r.frame("42[not json");
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::Log(l) if l.starts_with("dropped a frame")))
    );
    assert_eq!(r.state(), UiState::WaitingForScan);
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 0);
}

// ---- token_expired, unauthorized, rate limits ----------------------------------------------

#[test]
fn token_expired_four_times_refreshes_retries_at_1_2_4_s_then_stops_with_a_5s_cooldown() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    let mut refused_at = Vec::new();
    for round in 0..4 {
        r.accept_transport_then_refuse("token_expired");
        refused_at.push(r.now);
        if round < 3 {
            let epoch = r
                .last_session_request()
                .expect("a refresh before each retry");
            assert!(
                matches!(r.log.last(), Some((_, Command::RefreshSession { .. })))
                    || r.count(|c| matches!(c, Command::RefreshSession { .. })) == round + 1
            );
            r.send(Input::SessionReady { epoch });
            assert_eq!(r.state(), UiState::Retrying);
            // The retry resyncs the QR over HTTP, then opens.
            let before = r.opens().len();
            r.wait(10_000);
            r.answer_qr();
            assert_eq!(r.opens().len(), before + 1);
        }
    }
    assert_eq!(r.count(|c| matches!(c, Command::RefreshSession { .. })), 3);
    let opens = r.opens();
    assert_eq!(
        opens.len(),
        4,
        "the first attempt and three retries, never a fourth"
    );
    for (i, delay) in [1_000, 2_000, 4_000].into_iter().enumerate() {
        assert_eq!(r.log.iter().filter(|(t, c)| *t == refused_at[i] + delay && matches!(c, Command::FetchQr { .. })).count(), 1, "retry {i} after {delay} ms");
    }
    assert_eq!(r.state(), UiState::Failed);
    assert_eq!(r.failure().as_deref(), Some("token_expired"));
    let failed_at = r.now;
    assert_eq!(r.m.view().retry_at, Some(failed_at + 5_000));
    // "Try again" does nothing during the cooldown, and nothing happens by itself after it.
    r.send(Input::Retry);
    r.wait(4_000);
    r.send(Input::Retry);
    r.wait(60_000);
    assert_eq!(r.opens().len(), 4);
    assert_eq!(r.state(), UiState::Failed);
    // After it, the user's retry starts a fresh display.
    r.send(Input::Retry);
    assert_eq!(r.state(), UiState::Connecting);
    r.answer_qr();
    r.wait(500);
    assert_eq!(r.opens().len(), 5);
}

impl Rig {
    fn accept_transport_then_refuse(&mut self, message: &str) {
        self.frame(OPEN);
        self.frame(&format!(r#"44{{"message":"{message}"}}"#));
    }
}

#[test]
fn a_refresh_that_resolves_after_the_qr_was_hidden_is_ignored() {
    let mut r = Rig::new();
    r.open_display_refused("token_expired");
    let epoch = r.last_session_request().unwrap();
    r.send(Input::HideQr);
    r.send(Input::SessionReady { epoch });
    r.wait(30_000);
    assert_eq!(r.opens().len(), 1);
    assert_eq!(r.state(), UiState::Idle);
}

#[test]
fn a_refresh_that_resolves_after_a_newer_attempt_started_is_ignored() {
    let mut r = Rig::new();
    r.open_display_refused("token_expired");
    let stale = r.last_session_request().unwrap();
    r.send(Input::HideQr);
    r.run_until(2_000);
    r.show();
    r.answer_qr();
    r.send(Input::SessionReady { epoch: stale });
    assert_eq!(r.state(), UiState::Debouncing);
    r.wait(500);
    assert_eq!(r.opens().len(), 2);
    r.wait(30_000);
    assert_eq!(r.opens().len(), 2);
}

impl Rig {
    fn open_display_refused(&mut self, message: &str) {
        self.show();
        self.answer_qr();
        self.wait(500);
        self.accept_transport_then_refuse(message);
    }
}

#[test]
fn unauthorized_stops_and_sign_in_again_gets_a_new_session_and_pairs_again() {
    let mut r = Rig::new();
    r.open_display_refused("unauthorized");
    assert_eq!(r.failure().as_deref(), Some("unauthorized"));
    r.wait(60_000);
    assert_eq!(r.opens().len(), 1, "no retry");
    r.send(Input::Retry);
    assert_eq!(r.count(|c| matches!(c, Command::NewSession { .. })), 1);
    let epoch = r.last_session_request().unwrap();
    r.send(Input::SessionReady { epoch });
    r.answer_qr();
    r.wait(500);
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn a_refresh_answered_401_ends_the_session() {
    let mut r = Rig::new();
    r.open_display_refused("token_expired");
    let epoch = r.last_session_request().unwrap();
    r.send(Input::SessionFailed {
        epoch,
        failure: HttpFailure::Unauthorized,
    });
    assert_eq!(r.failure().as_deref(), Some("unauthorized"));
    r.wait(60_000);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn a_websocket_close_1008_is_an_auth_refusal_that_refreshes_once() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    r.close_socket(1008);
    assert_eq!(r.count(|c| matches!(c, Command::RefreshSession { .. })), 1);
}

#[test]
fn rate_limited_waits_10s_then_retries_once_then_stops() {
    let mut r = Rig::new();
    r.open_display_refused("rate_limited");
    let refused = r.now;
    r.wait(9_999);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
    r.wait(1);
    assert_eq!(
        r.log
            .iter()
            .filter(|(t, c)| *t == refused + 10_000 && matches!(c, Command::FetchQr { .. }))
            .count(),
        1
    );
    r.answer_qr();
    r.accept_transport_then_refuse("rate_limited");
    assert_eq!(r.failure().as_deref(), Some("rate_limited"));
    r.wait(60_000);
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn a_429_on_the_qr_request_waits_retry_after() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetchFailed {
        epoch,
        failure: HttpFailure::RateLimited {
            retry_after: Some(3_000),
        },
    });
    r.wait(2_999);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
    r.wait(1);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 2);
}

#[test]
fn a_409_on_the_qr_request_means_already_linked() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetchFailed {
        epoch,
        failure: HttpFailure::AlreadyConnected,
    });
    assert_eq!(r.state(), UiState::Linked);
    r.wait(10_000);
    assert!(r.opens().is_empty());
}

#[test]
fn a_404_on_the_qr_request_fails_with_its_status() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetchFailed {
        epoch,
        failure: HttpFailure::Status {
            status: 404,
            message: "no such bot".into(),
        },
    });
    assert_eq!(r.failure().as_deref(), Some("404"));
}

// ---- drops, dead links, backoff ------------------------------------------------------------

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
            if r.state() == UiState::Retrying && r.m.view().is_locked {
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
    assert!(r.m.view().is_locked);
    r.run_until(10_000);
    assert_eq!(r.state(), UiState::Retrying);
    assert!(
        !r.m.view().is_locked,
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
    assert!(r.m.view().is_locked || r.state() == UiState::Retrying);
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

// ---- final outcomes ------------------------------------------------------------------------

#[test]
fn terminal_codes_end_the_attempt_and_never_reopen() {
    for code in [401u16, 403, 411, 440] {
        let mut r = Rig::new();
        r.open_display();
        let socket = r.socket();
        let out = r.frame(&event(&format!(
            r#"{{"type":"connection_failed","botId":"b1","code":{code},"reason":"x"}}"#
        )));
        assert!(
            out.contains(&Command::Close { socket, code: 1000 }),
            "{code}"
        );
        assert_eq!(r.failure(), Some(code.to_string()));
        r.wait(120_000);
        assert_eq!(r.opens().len(), 1, "{code}: no reopen");
    }
}

#[test]
fn retryable_codes_retry_with_backoff_then_stop_with_the_code() {
    for code in [405u16, 408, 428, 500, 503] {
        let mut r = Rig::new();
        r.open_display();
        for _ in 0..6 {
            r.frame(&event(&format!(
                r#"{{"type":"connection_failed","botId":"b1","code":{code}}}"#
            )));
            r.wait(10_000);
            if r.state() != UiState::Failed {
                r.answer_qr();
                r.accept();
            }
        }
        assert_eq!(r.opens().len(), 6, "{code}");
        assert_eq!(r.failure(), Some(code.to_string()));
    }
}

#[test]
fn restart_required_515_keeps_waiting() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_scanned","botId":"b1"}"#));
    r.frame(&event(
        r#"{"type":"connection_failed","botId":"b1","code":515}"#,
    ));
    assert_eq!(r.state(), UiState::Finishing);
}

#[test]
fn a_server_namespace_disconnect_is_terminal() {
    let mut r = Rig::new();
    r.open_display();
    r.frame("41");
    assert_eq!(r.failure().as_deref(), Some("server_disconnect"));
    r.wait(120_000);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn qr_expired_ends_the_display_and_generate_new_qr_starts_again() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_expired","botId":"b1"}"#));
    assert_eq!(r.failure().as_deref(), Some("qr_expired"));
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 1);
    r.wait(60_000);
    assert_eq!(r.opens().len(), 1);
    r.send(Input::Retry);
    r.answer_qr();
    r.wait(500);
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn every_transition_is_logged_once_without_a_token() {
    let mut r = Rig::new();
    r.open_display();
    let lines: Vec<_> = r
        .log
        .iter()
        .filter_map(|(_, c)| match c {
            Command::Transition { from, to, why } => {
                Some(format!("{} → {} ({why})", from.as_str(), to.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            "idle → connecting (show QR for b1)",
            "connecting → debouncing (QR received)",
            "debouncing → connecting (timer)",
            "connecting → waiting_for_scan (connected to the namespace)",
        ]
    );
}

#[test]
fn the_codes_a_current_frame_carries_are_reported_once_and_old_sockets_are_not_read() {
    let heard = |out: &[Command]| -> Vec<Heard> {
        out.iter()
            .filter_map(|c| match c {
                Command::Heard(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    };
    let mut r = Rig::new();
    r.open_display();
    let first = r.socket();
    let failed = event(r#"{"type":"connection_failed","botId":"other","code":440}"#);
    assert_eq!(heard(&r.frame(&failed)), [Heard::ConnectionFailed(440)]);
    assert_eq!(
        heard(&r.frame(&event(r#"{"type":"qr_scanned","botId":"b1"}"#))),
        []
    );
    assert_eq!(heard(&r.frame("41")), [Heard::ServerDisconnect]);
    assert_eq!(r.failure().as_deref(), Some("server_disconnect"));

    // A new display on a new socket: the old socket's frames are neither read nor counted.
    r.send(Input::Retry);
    r.answer_qr();
    r.wait(1_000);
    assert_ne!(r.socket(), first);
    let out = r.send(Input::SocketMessage {
        socket: first,
        text: r#"44{"message":"unauthorized"}"#.into(),
    });
    assert_eq!(heard(&out), []);
    r.frame(OPEN);
    let out = r.frame(r#"44{"message":"unauthorized"}"#);
    assert_eq!(heard(&out), [Heard::Refused("unauthorized".into())]);
    let why = out.iter().find_map(|c| match c {
        Command::Transition { why, .. } => Some(why.as_str()),
        _ => None,
    });
    assert_eq!(why, Some("CONNECT refused: unauthorized"));
}

// ---- one tab pairs; the page and the network -----------------------------------------------

impl Rig {
    fn last_claim(&self) -> Option<(Epoch, bool)> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::ClaimTab { epoch, steal } => Some((*epoch, *steal)),
            _ => None,
        })
    }

    fn last_bot_fetch(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::FetchBot { epoch, .. } => Some(*epoch),
            _ => None,
        })
    }

    fn releases(&self) -> usize {
        self.count(|c| matches!(c, Command::ReleaseTab))
    }

    fn hide_page_for(&mut self, ms: Millis) {
        self.send(Input::PageHidden);
        self.wait(ms);
        self.send(Input::PageVisible);
    }
}

#[test]
fn a_second_tab_waits_without_a_socket_while_another_tab_pairs() {
    let mut r = Rig::new();
    r.grant_tab = false;
    r.show();
    let (epoch, steal) = r.last_claim().expect("the lock was asked for");
    assert!(!steal);
    assert!(
        r.m.view().is_locked,
        "the attempt holds the lock while it asks"
    );
    r.send(Input::TabBusy { epoch });
    assert_eq!(r.state(), UiState::OtherTab);
    r.wait(120_000);
    assert_eq!(r.opens().len(), 0, "no socket while another tab pairs");
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 0);
    // A re-render that asks for the same QR again changes nothing.
    r.show();
    assert_eq!(r.count(|c| matches!(c, Command::ClaimTab { .. })), 1);
}

#[test]
fn take_over_steals_the_lock_then_pairs_here_after_the_debounce() {
    let mut r = Rig::new();
    r.grant_tab = false;
    r.show();
    let (epoch, _) = r.last_claim().unwrap();
    r.send(Input::TabBusy { epoch });
    r.send(Input::TakeOver);
    let (epoch, steal) = r.last_claim().unwrap();
    assert!(steal, "taking over steals the other tab's lock");
    r.send(Input::TabClaimed { epoch });
    r.answer_qr();
    r.wait(499);
    assert_eq!(r.opens().len(), 0);
    r.wait(1);
    assert_eq!(r.opens().len(), 1);
}

#[test]
fn a_tab_whose_lock_is_taken_over_hangs_up_and_waits() {
    let mut r = Rig::new();
    r.open_display();
    let (epoch, _) = r.last_claim().unwrap();
    let out = r.send(Input::TabLost { epoch });
    assert!(out.contains(&Command::Send {
        socket: r.socket(),
        text: "41".into()
    }));
    assert!(out.contains(&Command::Close {
        socket: r.socket(),
        code: 1000
    }));
    assert_eq!(r.state(), UiState::OtherTab);
    r.wait(120_000);
    assert_eq!(
        r.opens().len(),
        1,
        "nothing reopens in the tab that lost the lock"
    );
}

#[test]
fn the_lock_is_let_go_whenever_a_display_ends() {
    // Hidden.
    let mut r = Rig::new();
    r.open_display();
    r.send(Input::HideQr);
    assert_eq!(r.releases(), 1);
    // Linked.
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(
        r#"{"type":"whatsapp_connected","botId":"b1","phone":"+1"}"#,
    ));
    assert_eq!(r.releases(), 1);
    // Failed for good, and "Try again" asks for it anew.
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_expired","botId":"b1"}"#));
    assert_eq!(r.releases(), 1);
    r.send(Input::Retry);
    assert_eq!(r.count(|c| matches!(c, Command::ClaimTab { .. })), 2);
}

#[test]
fn a_claim_still_pending_when_the_qr_is_hidden_is_let_go() {
    let mut r = Rig::new();
    r.grant_tab = false;
    r.show();
    let (epoch, _) = r.last_claim().unwrap();
    r.send(Input::HideQr);
    assert_eq!(r.releases(), 1);
    // The late grant is stale: nothing is fetched, nothing opens.
    r.send(Input::TabClaimed { epoch });
    r.wait(10_000);
    assert_eq!(r.state(), UiState::Idle);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 0);
}

#[test]
fn a_lock_that_never_answers_is_taken_for_another_tab_not_for_ours() {
    let mut r = Rig::new();
    r.grant_tab = false;
    r.show();
    r.wait(10_000);
    assert_eq!(r.state(), UiState::OtherTab);
    assert_eq!(r.opens().len(), 0);
}

#[test]
fn hidden_for_30s_closes_the_socket_and_pauses_then_visible_resyncs_before_opening() {
    let mut r = Rig::new();
    r.open_display();
    r.send(Input::PageHidden);
    r.wait(29_999);
    assert_eq!(r.state(), UiState::WaitingForScan);
    r.wait(1);
    assert_eq!(r.state(), UiState::Paused);
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 1);
    assert_eq!(r.releases(), 1, "a paused tab lets another tab pair");
    assert_eq!(
        r.m.view().qr,
        None,
        "a paused QR is not shown as if it were live"
    );
    r.wait(300_000);
    assert_eq!(r.opens().len(), 1, "nothing opens while hidden");

    r.send(Input::PageVisible);
    let epoch = r
        .last_bot_fetch()
        .expect("visible again: GET the bot first");
    assert_eq!(r.state(), UiState::Retrying);
    let mut current = qr(4);
    current.expires_in_ms = 20_000;
    r.send(Input::BotFetched {
        epoch,
        status: BotStatus::Pairing,
        pairing: Some(current.clone()),
    });
    assert_eq!(
        r.m.view().qr,
        Some(current.clone()),
        "the pairing's current QR"
    );
    assert_eq!(r.opens().len(), 1, "not before the QR is on screen");
    r.send(Input::QrShown { qr: current.qr });
    r.wait(500);
    assert_eq!(r.opens().len(), 2);
}

#[test]
fn hidden_for_less_than_30s_changes_nothing() {
    let mut r = Rig::new();
    r.open_display();
    for _ in 0..10 {
        r.hide_page_for(29_000);
        // The server's pings keep the link alive meanwhile.
        r.frame("2");
    }
    assert_eq!(r.state(), UiState::WaitingForScan);
    assert_eq!(r.opens().len(), 1);
    assert_eq!(r.count(|c| matches!(c, Command::FetchBot { .. })), 0);
}

#[test]
fn back_from_a_pause_the_bot_may_be_linked_or_its_pairing_over() {
    let resume = |status: &str| {
        let mut r = Rig::new();
        r.open_display();
        r.send(Input::PageHidden);
        r.wait(30_000);
        r.send(Input::PageVisible);
        let epoch = r.last_bot_fetch().unwrap();
        r.send(Input::BotFetched {
            epoch,
            status: BotStatus::parse(status),
            pairing: None,
        });
        r.wait(60_000);
        assert_eq!(r.opens().len(), 1, "no socket after a resync that ends it");
        r
    };
    assert_eq!(resume("connected").state(), UiState::Linked);
    let r = resume("created");
    assert_eq!(r.failure().as_deref(), Some("qr_expired"));
}

#[test]
fn online_during_backoff_retries_at_once_but_keeps_1s_between_opens() {
    let mut r = Rig::new();
    r.open_display();
    r.send(Input::Offline);
    assert_eq!(
        r.state(),
        UiState::Retrying,
        "offline: the socket is given up at once"
    );
    assert_eq!(r.count(|c| matches!(c, Command::Close { .. })), 1);
    r.send(Input::Online);
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetched { epoch, qr: qr(1) });
    let opens = r.opens();
    assert_eq!(
        opens.len(),
        1,
        "the 1 s rule: not at once after the first open"
    );
    r.run_until(opens[0] + 1_000);
    assert_eq!(r.opens(), vec![opens[0], opens[0] + 1_000]);
}

#[test]
fn online_after_a_network_failure_starts_again_once() {
    let mut r = Rig::new();
    r.show();
    // Six requests that fail: the budget is spent, the display fails with "network".
    for _ in 0..6 {
        let epoch = r.last_fetch().unwrap();
        r.send(Input::QrFetchFailed {
            epoch,
            failure: HttpFailure::Network,
        });
        r.wait(8_000);
    }
    assert_eq!(r.failure().as_deref(), Some("network"));
    let fetches = r.count(|c| matches!(c, Command::FetchQr { .. }));
    r.send(Input::Online);
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        fetches + 1
    );
    r.send(Input::Online);
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        fetches + 1,
        "a second online event while the attempt runs does nothing"
    );
}

// ---- invariants over random sequences ------------------------------------------------------

mod invariants {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        Wait(Millis),
        Show(u8),
        Hide,
        Retry,
        AnswerQr,
        FailQr,
        AnswerSession,
        FailSession,
        Accept,
        Frame(&'static str),
        Close(u16),
        Error,
        Timer,
        TabBusy,
        TabLost,
        TakeOver,
        PageHidden,
        PageVisible,
        Online,
        Offline,
        AnswerBot(&'static str),
    }

    const FRAMES: [&str; 10] = [
        "2",
        "41",
        r#"44{"message":"token_expired"}"#,
        r#"44{"message":"rate_limited"}"#,
        r#"44{"message":"unauthorized"}"#,
        r#"42["whatsapp_connection_event",{"type":"qr_scanned","botId":"b0"}]"#,
        r#"42["whatsapp_connection_event",{"type":"whatsapp_connected","botId":"b0"}]"#,
        r#"42["whatsapp_connection_event",{"type":"qr_expired","botId":"b0"}]"#,
        r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b0","code":408}]"#,
        r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b0","code":440}]"#,
    ];

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..15_000).prop_map(Step::Wait),
            (0u8..2).prop_map(Step::Show),
            Just(Step::Hide),
            Just(Step::Retry),
            Just(Step::AnswerQr),
            Just(Step::FailQr),
            Just(Step::AnswerSession),
            Just(Step::FailSession),
            Just(Step::Accept),
            (0usize..FRAMES.len()).prop_map(|i| Step::Frame(FRAMES[i])),
            prop_oneof![Just(1000u16), Just(1006), Just(1008)].prop_map(Step::Close),
            Just(Step::Error),
            Just(Step::Timer),
            Just(Step::TabBusy),
            Just(Step::TabLost),
            Just(Step::TakeOver),
            Just(Step::PageHidden),
            Just(Step::PageVisible),
            Just(Step::Online),
            Just(Step::Offline),
            prop_oneof![Just("pairing"), Just("connected"), Just("created")]
                .prop_map(Step::AnswerBot),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn never_two_sockets_never_two_opens_within_1s_never_an_open_after_an_end(
            seed in any::<u64>(),
            steps in proptest::collection::vec(step(), 1..120),
        ) {
            let mut r = Rig::new();
            r.m = Machine::new(Config::default(), seed);
            let mut live: Vec<SocketId> = Vec::new();
            let mut last_open: Option<Millis> = None;
            // Set by success or a final failure; cleared by a new user intent.
            let mut ended = false;
            for s in steps {
                let before = r.state();
                let n = r.log.len();
                let _ = match s {
                    Step::Wait(ms) => { r.wait(ms); vec![] }
                    Step::Show(b) => r.send(Input::ShowQr { bot: format!("b{b}") }),
                    Step::Hide => r.send(Input::HideQr),
                    Step::Retry => r.send(Input::Retry),
                    Step::AnswerQr => match r.last_fetch() { Some(epoch) => { r.send(Input::QrFetched { epoch, qr: qr(1) }); r.send(Input::QrShown { qr: qr(1).qr }) } None => vec![] },
                    Step::FailQr => match r.last_fetch() { Some(epoch) => r.send(Input::QrFetchFailed { epoch, failure: HttpFailure::Network }), None => vec![] },
                    Step::AnswerSession => match r.last_session_request() { Some(epoch) => r.send(Input::SessionReady { epoch }), None => vec![] },
                    Step::FailSession => match r.last_session_request() { Some(epoch) => r.send(Input::SessionFailed { epoch, failure: HttpFailure::Unauthorized }), None => vec![] },
                    Step::Accept => match live.last().copied() {
                        Some(socket) => {
                            let mut out = r.send(Input::SocketMessage { socket, text: OPEN.into() });
                            out.extend(r.send(Input::SocketMessage { socket, text: CONNECTED.into() }));
                            out
                        }
                        None => vec![],
                    },
                    Step::Frame(f) => match live.last().copied() { Some(socket) => r.send(Input::SocketMessage { socket, text: f.into() }), None => vec![] },
                    Step::Close(code) => match live.last().copied() { Some(socket) => r.send(Input::SocketClosed { socket, code }), None => vec![] },
                    Step::Error => match live.last().copied() { Some(socket) => r.send(Input::SocketError { socket }), None => vec![] },
                    Step::Timer => r.send(Input::TimerFired),
                    Step::TabBusy => match r.last_claim() { Some((epoch, _)) => r.send(Input::TabBusy { epoch }), None => vec![] },
                    Step::TabLost => match r.last_claim() { Some((epoch, _)) => r.send(Input::TabLost { epoch }), None => vec![] },
                    Step::TakeOver => r.send(Input::TakeOver),
                    Step::PageHidden => r.send(Input::PageHidden),
                    Step::PageVisible => r.send(Input::PageVisible),
                    Step::Online => r.send(Input::Online),
                    Step::Offline => r.send(Input::Offline),
                    // As a page does: a pairing's QR goes on screen once the machine hands it over.
                    Step::AnswerBot(status) => match r.last_bot_fetch() {
                        Some(epoch) => {
                            let mut out = r.send(Input::BotFetched { epoch, status: BotStatus::parse(status), pairing: (status == "pairing").then(|| qr(2)) });
                            out.extend(r.send(Input::QrShown { qr: qr(2).qr }));
                            out
                        }
                        None => vec![],
                    },
                };
                // A person's intents, and the page or network coming back, may start a display again.
                let intent = matches!(s, Step::Show(_) | Step::Retry | Step::TakeOver | Step::Online | Step::PageVisible);
                if intent && r.state() != before {
                    ended = false;
                }
                for (at, c) in r.log[n..].iter().cloned() {
                    match &c {
                        Command::Open { socket } => {
                            prop_assert!(live.is_empty(), "two sockets: {live:?} + {socket:?}");
                            prop_assert!(!ended, "an Open after an end without a new intent");
                            if let Some(t) = last_open {
                                prop_assert!(at >= t + 1_000, "opens at {t} and {at}");
                            }
                            last_open = Some(at);
                            live.push(*socket);
                        }
                        Command::Close { socket, .. } => live.retain(|s| s != socket),
                        _ => {}
                    }
                }
                if matches!(r.state(), UiState::Linked | UiState::Failed) {
                    ended = true;
                    prop_assert!(live.is_empty(), "a socket left open after the end");
                }
                if matches!(r.state(), UiState::Idle | UiState::OtherTab | UiState::Paused) {
                    prop_assert!(live.is_empty(), "a socket left open while {:?}", r.state());
                }
            }
            // Five minutes of silence from the outside world: the machine has settled. It never
            // hangs in a locked phase and never loops.
            r.wait(300_000);
            prop_assert!(
                matches!(r.state(), UiState::Idle | UiState::Linked | UiState::Failed | UiState::OtherTab | UiState::Paused),
                "still {:?} after 5 minutes of silence", r.state()
            );
        }
    }
}

#[test]
fn a_retry_due_exactly_when_the_timer_fired_is_still_armed() {
    // Regression (found by the invariant test): the request timed out at T and zero jitter put
    // the retry at T too; the spent timer was taken for armed, and the machine hung in retrying.
    let mut r = Rig::new();
    r.m = Machine::new(
        Config {
            backoff_cap: 0,
            ..Config::default()
        },
        42,
    );
    r.show(); // the request's deadline: 10 000
    let out = r.m.handle(Input::TimerFired, 10_000); // timed out; zero jitter: retry at 10 000
    assert_eq!(r.m.view().state, UiState::Retrying);
    assert!(
        out.iter().any(|c| matches!(c, Command::ArmTimer { .. })),
        "{out:?}"
    );
}

// Numbers a server sends are untrusted input: bounded, and the arithmetic saturates.

/// Regression: `pingInterval + pingTimeout` and `now + ping_window` overflowed on hostile values
/// (a panic with overflow checks; in release a wrapped, near-zero window that declared a healthy
/// link dead at once).
#[test]
fn a_hostile_ping_window_neither_panics_nor_kills_a_healthy_link() {
    let mut r = Rig::new();
    r.show();
    r.answer_qr();
    r.wait(500);
    let socket = r.socket();
    r.send(Input::SocketOpened { socket });
    r.frame(&format!(
        r#"0{{"sid":"s","upgrades":[],"pingInterval":{max},"pingTimeout":{max},"maxPayload":1000000}}"#,
        max = u64::MAX
    ));
    r.frame(CONNECTED);
    assert_eq!(r.state(), UiState::WaitingForScan);
    for _ in 0..10 {
        r.wait(20_000);
        r.frame("2");
    }
    assert_eq!(
        r.state(),
        UiState::WaitingForScan,
        "a pinging link stays up"
    );
    assert_eq!(r.opens().len(), 1);
}

/// Regression: `Retry-After` × 1000 and `now + wait` overflowed on a hostile header.
#[test]
fn a_hostile_retry_after_is_bounded_and_neither_panics_nor_waits_forever() {
    let mut r = Rig::new();
    r.show();
    let epoch = r.last_fetch().unwrap();
    r.send(Input::QrFetchFailed {
        epoch,
        failure: HttpFailure::RateLimited {
            retry_after: Some(u64::MAX),
        },
    });
    r.wait(super::MAX_SERVER_WAIT);
    assert_eq!(
        r.count(|c| matches!(c, Command::FetchQr { .. })),
        2,
        "the one retry comes within the bound"
    );
}

/// Regression: a `41` during the handshake was retried as a network error; the contract makes a
/// server namespace disconnect terminal in every phase.
#[test]
fn a_namespace_disconnect_during_the_handshake_is_final() {
    for after_open in [false, true] {
        let mut r = Rig::new();
        r.show();
        r.answer_qr();
        r.wait(500);
        let socket = r.socket();
        r.send(Input::SocketOpened { socket });
        if after_open {
            r.frame(OPEN);
        }
        r.frame("41");
        assert_eq!(
            r.failure().as_deref(),
            Some("server_disconnect"),
            "after_open={after_open}"
        );
        assert!(r.count(|c| matches!(c, Command::Close { socket: s, .. } if *s == socket)) >= 1);
        r.wait(120_000);
        assert_eq!(
            r.opens().len(),
            1,
            "never reopened (after_open={after_open})"
        );
    }
}
