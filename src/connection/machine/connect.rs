//! Opening a socket, with the lock held: the WebSocket and Engine.IO open (`0{...}`), then the
//! namespace CONNECT with the session's auth (`40{...}`) and its answer — `40` (connected),
//! `44` (refused: `policy.rs` says what follows) — all within `connect_timeout`.

use super::{
    Command, Connecting, Event, Live, MAX_PING_WINDOW, Machine, Millis, Phase, close,
    phase::Handshake, policy::Trouble,
};
use protocol::{Packet, codes::Refusal, frames};

impl Machine {
    pub(super) fn on_connecting(
        &mut self,
        mut c: Connecting,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let socket = c.socket;
        let trouble = match event {
            Event::Frame(packet) => match (c.stage, packet) {
                (Handshake::Transport, Packet::Open(info)) => {
                    out.push(Command::SendConnect {
                        socket,
                        bot: c.display.bot.clone(),
                    });
                    c.max_payload = usize::try_from(info.max_payload).unwrap_or(usize::MAX);
                    // Keep the handshake deadline; remember the ping window for when we are
                    // connected. The server's numbers are untrusted: bounded, and they saturate.
                    c.stage = Handshake::Namespace {
                        ping_window: info
                            .ping_interval
                            .saturating_add(info.ping_timeout)
                            .min(MAX_PING_WINDOW),
                    };
                    return Phase::Connecting(c);
                }
                (Handshake::Namespace { ping_window }, Packet::Connected) => {
                    return Phase::Open(Live {
                        display: c.display,
                        socket,
                        max_payload: c.max_payload,
                        ping_window,
                        dead_at: now.saturating_add(ping_window),
                        stable_at: Some(now.saturating_add(self.config.stable_after)),
                        scanned: None,
                    });
                }
                (Handshake::Namespace { .. }, Packet::ConnectError(message)) => {
                    Trouble::Refused(Refusal::parse(&message))
                }
                (_, Packet::Ping) => {
                    out.push(Command::Send {
                        socket,
                        text: frames::PONG.into(),
                    });
                    return Phase::Connecting(c);
                }
                // The server ended the namespace: final in every phase, the handshake included.
                (_, Packet::Disconnect) => Trouble::ServerDisconnect,
                (_, Packet::Close) => Trouble::TransportClosed,
                // Out of order (a CONNECT answer before the open, a second open) or nothing for
                // a handshake (events, acks, noops): the handshake goes on.
                (
                    _,
                    Packet::Open(_)
                    | Packet::Connected
                    | Packet::ConnectError(_)
                    | Packet::Pong
                    | Packet::Noop
                    | Packet::Event { .. }
                    | Packet::Ignored,
                ) => return Phase::Connecting(c),
            },
            Event::SocketClosed(code) => Trouble::SocketClosed(code),
            // Offline: the socket cannot live; say so now rather than after the deadline.
            Event::Offline => Trouble::Offline,
            Event::Timer(_) => Trouble::NoAnswer,
            Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::PageVisible
            | Event::Online => return Phase::Connecting(c),
        };
        close(socket, out);
        self.trouble(c.display, trouble, now, out)
    }
}
