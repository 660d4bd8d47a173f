//! Refusals: token_expired, unauthorized, rate limits, HTTP answers (`policy.rs`, `retry.rs`).

use super::*;

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
    pub(super) fn accept_transport_then_refuse(&mut self, message: &str) {
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
    pub(super) fn open_display_refused(&mut self, message: &str) {
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

impl Rig {
    /// Shows the QR, and the server answers its request with `429` and `retry_after`.
    pub(super) fn qr_request_rate_limited(&mut self, retry_after: Option<Millis>) {
        self.show();
        let epoch = self.last_fetch().unwrap();
        self.send(Input::QrFetchFailed {
            epoch,
            failure: HttpFailure::RateLimited { retry_after },
        });
    }
}

#[test]
fn a_429_on_the_qr_request_waits_retry_after() {
    let mut r = Rig::new();
    r.qr_request_rate_limited(Some(3_000));
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
