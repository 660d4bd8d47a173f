//! Storms, the 500 ms debounce, the 1 s between opens, and the lock (`debounce.rs`, `lock.rs`).

use super::*;

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
    assert!(r.m.view().in_flight);
    // Clicks, retries and timers while connecting start nothing.
    for _ in 0..10 {
        r.show();
        r.send(Input::Retry);
        r.send(Input::TimerFired);
    }
    r.wait(2_000);
    assert_eq!(r.opens().len(), 1);
    r.accept();
    assert!(!r.m.view().in_flight);
}

#[test]
fn generate_qr_is_single_flight_while_its_request_is_in_flight() {
    let mut r = Rig::new();
    r.show();
    assert!(r.m.view().in_flight);
    r.show();
    r.show();
    assert_eq!(r.count(|c| matches!(c, Command::FetchQr { .. })), 1);
}
