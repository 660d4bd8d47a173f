//! Success: the scan, the wait after it, the link (`open.rs`, `finishing.rs`).

use super::*;

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

#[test]
fn a_status_update_saying_connected_links_this_bot_and_only_this_one() {
    // Some backends say it only this way: as good as whatsapp_connected, for this bot.
    let mut r = Rig::new();
    r.open_display();
    let other = r.frame(r#"42["bot_status_update",{"botId":"b2","status":"connected"}]"#);
    assert_eq!(r.state(), UiState::WaitingForScan, "another bot's status");
    assert!(other.contains(&Command::Notify(Notice::BotStatus {
        bot: "b2".into(),
        status: BotStatus::Connected
    })));
    r.frame(r#"42["bot_status_update",{"botId":"b1","status":"pairing"}]"#);
    assert_eq!(
        r.state(),
        UiState::WaitingForScan,
        "ours, not connected yet"
    );
    let socket = r.socket();
    r.frame(r#"42["bot_status_update",{"botId":"b1","status":"connected"}]"#);
    assert_eq!(r.state(), UiState::Linked);
    assert_eq!(
        r.count(|c| matches!(c, Command::Close { socket: s, .. } if *s == socket)),
        1,
        "the socket closes at once"
    );
}
