//! One tab pairs; the page hidden and visible; online and offline (`claim.rs`, `pause.rs`).

use super::*;

impl Rig {
    pub(super) fn last_claim(&self) -> Option<(Epoch, bool)> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::ClaimTab { epoch, steal } => Some((*epoch, *steal)),
            _ => None,
        })
    }

    pub(super) fn last_bot_fetch(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::FetchBot { epoch, .. } => Some(*epoch),
            _ => None,
        })
    }

    pub(super) fn releases(&self) -> usize {
        self.count(|c| matches!(c, Command::ReleaseTab))
    }

    pub(super) fn hide_page_for(&mut self, ms: Millis) {
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
        r.m.view().in_flight,
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

#[test]
fn losing_a_lock_this_tab_does_not_hold_changes_nothing() {
    // A failed display holds no lock: a late "taken over" must not turn it into "another tab".
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(
        r#"{"type":"connection_failed","botId":"b1","code":440}"#,
    ));
    assert_eq!(r.state(), UiState::Failed);
    r.send(Input::TabLost { epoch: Epoch(1) });
    assert_eq!(r.state(), UiState::Failed);
    assert_eq!(r.failure().as_deref(), Some("440"));
}

#[test]
fn online_restarts_only_a_display_the_network_ended() {
    let mut r = Rig::new();
    r.open_display();
    r.frame(&event(r#"{"type":"qr_expired","botId":"b1"}"#));
    assert_eq!(r.state(), UiState::Failed);
    r.send(Input::Online);
    assert_eq!(
        r.state(),
        UiState::Failed,
        "a QR nobody scanned stays expired"
    );
    assert_eq!(r.count(|c| matches!(c, Command::ClaimTab { .. })), 1);
}
