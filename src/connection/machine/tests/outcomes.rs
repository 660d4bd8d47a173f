//! Final outcomes, and what the timeline and diagnostics hear (`policy.rs`, `describe.rs`).

use super::*;

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
