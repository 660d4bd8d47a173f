//! Numbers and frames from a hostile server, and regressions found by reading the code.

use super::*;

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
    r.transport_open();
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
    r.qr_request_rate_limited(Some(u64::MAX));
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
        let socket = r.transport_open();
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

#[test]
fn the_bounds_on_a_servers_numbers_are_ten_minutes_of_pings_and_an_hour_of_waiting() {
    assert_eq!(MAX_PING_WINDOW, 600_000);
    assert_eq!(MAX_SERVER_WAIT, 3_600_000);
    // A generous but honest ping window (5 + 4 min) is kept as the server sent it.
    let mut r = Rig::new();
    r.transport_open();
    r.frame(r#"0{"sid":"s","pingInterval":300000,"pingTimeout":240000}"#);
    r.frame(CONNECTED);
    r.wait(539_000);
    assert_eq!(
        r.state(),
        UiState::WaitingForScan,
        "alive within its 9 minutes"
    );
    r.wait(2_000);
    assert_eq!(r.state(), UiState::Retrying, "dead after them");
    // A Retry-After of 30 minutes is waited out, not cut short.
    let mut r = Rig::new();
    r.qr_request_rate_limited(Some(1_800_000));
    r.wait(1_799_000);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
    r.wait(2_000);
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 2);
}
