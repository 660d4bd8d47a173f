//! The timeline's words: a short reason for each transition, named as the protocol names it (the
//! diagnostics say "qr_scanned", not the raw frame), and the codes a frame carries. Never a
//! token: no input carries one.

use super::{Heard, Input};
use protocol::{Packet, ServerEvent, WhatsAppEvent, WireError};

/// A short reason for the transition log. Never includes a token: inputs carry none.
pub(super) fn input(input: &Input) -> String {
    match input {
        Input::ShowQr { bot } => format!("show QR for {bot}"),
        Input::HideQr => "QR hidden".into(),
        Input::Retry => "user retry".into(),
        Input::QrShown { .. } => "QR on screen".into(),
        Input::QrFetched { .. } => "QR received".into(),
        Input::QrFetchFailed { failure, .. } => format!("QR request failed: {failure:?}"),
        Input::SessionReady { .. } => "session ready".into(),
        Input::SessionFailed { failure, .. } => format!("session request failed: {failure:?}"),
        Input::SocketOpened { .. } => "socket open".into(),
        Input::SocketMessage { .. } => "a frame of an old socket".into(),
        Input::SocketError { .. } => "socket error".into(),
        Input::SocketClosed { code, .. } => format!("socket closed {code}"),
        Input::TimerFired => "timer".into(),
        Input::BotFetched { status, .. } => format!("bot is {status}"),
        Input::BotFetchFailed { failure, .. } => format!("bot request failed: {failure:?}"),
        Input::TabClaimed { .. } => "this tab pairs".into(),
        Input::TabBusy { .. } => "another tab is pairing".into(),
        Input::TabLost { .. } => "another tab took over".into(),
        Input::TakeOver => "take over".into(),
        Input::PageHidden => "page hidden".into(),
        Input::PageVisible => "page visible".into(),
        Input::Online => "online".into(),
        Input::Offline => "offline".into(),
    }
}

/// A code a frame carries, for the diagnostics' counters.
pub(super) fn heard_in(packet: &Packet) -> Option<Heard> {
    match packet {
        Packet::ConnectError(message) => Some(Heard::Refused(message.clone())),
        Packet::Disconnect => Some(Heard::ServerDisconnect),
        Packet::Event {
            event: ServerEvent::WhatsApp(WhatsAppEvent::ConnectionFailed { code, .. }),
            ..
        } => Some(Heard::ConnectionFailed(*code)),
        _ => None,
    }
}

/// A frame, named as the protocol names it (the timeline says "qr_scanned", not the raw frame).
pub(super) fn frame(frame: &Result<Packet, WireError>) -> String {
    // Server strings (a refusal's message, an unknown event's name) are cut short.
    let short = |s: &str| s.chars().take(40).collect::<String>();
    match frame {
        Ok(Packet::Open(_)) => "Engine.IO open".into(),
        Ok(Packet::Close) => "Engine.IO close".into(),
        Ok(Packet::Ping) => "ping".into(),
        Ok(Packet::Connected) => "connected to the namespace".into(),
        Ok(Packet::Disconnect) => "server namespace disconnect".into(),
        Ok(Packet::ConnectError(message)) => format!("CONNECT refused: {}", short(message)),
        Ok(Packet::Event { event, .. }) => match event {
            ServerEvent::WhatsApp(e) => match e {
                WhatsAppEvent::QrUpdated { qr, .. } => {
                    format!("qr_updated (code {} of {})", qr.attempt, qr.attempts)
                }
                WhatsAppEvent::QrScanned { .. } => "qr_scanned".into(),
                WhatsAppEvent::WhatsappConnected { .. } => "whatsapp_connected".into(),
                WhatsAppEvent::QrExpired { .. } => "qr_expired".into(),
                WhatsAppEvent::ConnectionFailed { code, .. } => format!("connection_failed {code}"),
                WhatsAppEvent::FinishOnPhone { .. } => "finish_on_phone".into(),
                WhatsAppEvent::PairingCodeExpired { .. } => "pairing_code_expired".into(),
                WhatsAppEvent::Other => "whatsapp_connection_event of an unknown type".into(),
            },
            ServerEvent::BotStatus(update) => {
                format!("bot_status_update {}", update.status)
            }
            ServerEvent::ConnectionUpdate(_) => "connection_update".into(),
            ServerEvent::MessageSync(_) => "message_sync".into(),
            ServerEvent::Unknown(name) => format!("unknown event {}", short(name)),
        },
        Ok(_) => "frame".into(),
        Err(_) => "malformed frame".into(),
    }
}
