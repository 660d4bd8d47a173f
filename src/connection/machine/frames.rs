//! Frames of the current socket: decoded once here, described for the timeline, the codes they
//! carry reported for the diagnostics, then handled by the phase that hears them (the Engine.IO
//! and namespace handshake while connecting, pings and the events of PROTOCOL.md §3 once open).

use super::{
    Command, Connecting, Failure, Handshake, Heard, Input, Live, Liveness, MAX_PING_WINDOW,
    Machine, Millis, Notice, Phase, RetryCause, Scanned, hang_up,
};
use protocol::frames::{self, Packet, WireError};
use protocol::{BotStatus, ServerEvent, WhatsAppEvent};

impl Machine {
    /// Decodes `input` if it is a frame of the socket the phase is using, with that socket's
    /// `maxPayload`. Frames of other (old) sockets are not read at all.
    pub(super) fn frame_of(&self, input: &Input) -> Option<Result<Packet, WireError>> {
        let Input::SocketMessage { socket, text } = input else {
            return None;
        };
        let max_payload = match &self.phase {
            Phase::Connecting(c) if c.socket == *socket => c.max_payload,
            Phase::Open(live) if live.socket == *socket => live.max_payload,
            _ => return None,
        };
        Some(frames::decode(text, max_payload))
    }

    /// A decoded frame of the current socket (see [`Machine::frame_of`]).
    pub(super) fn on_frame(
        &mut self,
        frame: Result<Packet, WireError>,
        now: Millis,
        out: &mut Vec<Command>,
    ) {
        let packet = match frame {
            Ok(packet) => packet,
            Err(e) => {
                out.push(Command::Log(format!("dropped a frame: {e}")));
                return;
            }
        };
        if let Some(heard) = heard_in(&packet) {
            out.push(Command::Heard(heard));
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match phase {
            Phase::Connecting(c) => self.on_handshake_frame(c, packet, now, out),
            Phase::Open(live) => self.on_open_frame(live, packet, now, out),
            // `frame_of` decodes only for these two phases.
            other => other,
        };
    }

    /// A frame while the socket is being opened: the Engine.IO open, then the CONNECT answer.
    fn on_handshake_frame(
        &mut self,
        mut c: Connecting,
        packet: Packet,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let socket = c.socket;
        match (c.stage, packet) {
            (Handshake::Transport, Packet::Open(info)) => {
                out.push(Command::SendConnect {
                    socket,
                    bot: c.display.bot.clone(),
                });
                c.max_payload = usize::try_from(info.max_payload).unwrap_or(usize::MAX);
                // Keep the handshake deadline; remember the ping window for when we are connected.
                c.stage = Handshake::Namespace {
                    ping_window: info
                        .ping_interval
                        .saturating_add(info.ping_timeout)
                        .min(MAX_PING_WINDOW),
                };
                Phase::Connecting(c)
            }
            (Handshake::Namespace { ping_window }, Packet::Connected) => Phase::Open(Live {
                display: c.display,
                socket,
                max_payload: c.max_payload,
                liveness: Liveness {
                    ping_window,
                    dead_at: now.saturating_add(ping_window),
                    stable_at: Some(now + self.config.stable_after),
                },
                scanned: None,
            }),
            (Handshake::Namespace { .. }, Packet::ConnectError(message)) => {
                out.push(Command::Close { socket, code: 1000 });
                self.refused(c.display, &message, now, out)
            }
            (_, Packet::Ping) => {
                out.push(Command::Send {
                    socket,
                    text: frames::PONG.into(),
                });
                Phase::Connecting(c)
            }
            // The server ended the namespace: final in every phase, the handshake included.
            (_, Packet::Disconnect) => {
                out.push(Command::Close { socket, code: 1000 });
                self.fail(c.display, Failure::ServerDisconnect, now, out)
            }
            (_, Packet::Close) => {
                out.push(Command::Close { socket, code: 1000 });
                self.retry(c.display, RetryCause::Network, now, out)
            }
            _ => Phase::Connecting(c),
        }
    }

    /// A frame on a connected socket: pings, the server's disconnect, and the events of §3.
    fn on_open_frame(
        &mut self,
        mut live: Live,
        packet: Packet,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let socket = live.socket;
        let event = match packet {
            Packet::Ping => {
                live.liveness.dead_at = now.saturating_add(live.liveness.ping_window);
                out.push(Command::Send {
                    socket,
                    text: frames::PONG.into(),
                });
                return Phase::Open(live);
            }
            Packet::Disconnect => {
                // The server ended our namespace (another session replaced us): never reopen.
                out.push(Command::Close { socket, code: 1000 });
                return self.fail(live.display, Failure::ServerDisconnect, now, out);
            }
            Packet::Close => {
                out.push(Command::Close { socket, code: 1000 });
                return self.retry(live.display, RetryCause::Network, now, out);
            }
            Packet::Event { ack, event } => {
                if let Some(id) = ack {
                    out.push(Command::Send {
                        socket,
                        text: frames::encode_ack(id),
                    });
                }
                event
            }
            _ => return Phase::Open(live),
        };
        let ours = |bot_id: &str| bot_id == live.display.bot;
        match event {
            // An empty code is nothing to show: the one on screen stays.
            ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated { bot_id, qr })
                if ours(&bot_id) && !qr.qr.is_empty() =>
            {
                live.display.qr = Some(qr);
            }
            ServerEvent::WhatsApp(WhatsAppEvent::QrScanned { bot_id }) if ours(&bot_id) => {
                live.scanned.get_or_insert(Scanned {
                    stall_at: now + self.config.scan_stall,
                    stalled: false,
                });
            }
            // The phone asks for a passkey: say "finish on your phone" now, not after 60 s.
            ServerEvent::WhatsApp(WhatsAppEvent::FinishOnPhone { bot_id }) if ours(&bot_id) => {
                live.scanned
                    .get_or_insert(Scanned {
                        stall_at: now,
                        stalled: true,
                    })
                    .stalled = true;
            }
            ServerEvent::WhatsApp(WhatsAppEvent::PairingCodeExpired { bot_id, .. })
                if ours(&bot_id) =>
            {
                out.push(Command::Notify(Notice::PairingCodeExpired { bot: bot_id }));
            }
            ServerEvent::WhatsApp(WhatsAppEvent::WhatsappConnected { bot_id, phone })
                if ours(&bot_id) =>
            {
                hang_up(socket, out);
                out.push(Command::Notify(Notice::PairingEnded {
                    bot: live.display.bot.clone(),
                }));
                return Phase::Linked {
                    bot: live.display.bot,
                    phone,
                };
            }
            ServerEvent::WhatsApp(WhatsAppEvent::QrExpired { bot_id }) if ours(&bot_id) => {
                hang_up(socket, out);
                return self.fail(live.display, Failure::QrExpired, now, out);
            }
            ServerEvent::WhatsApp(WhatsAppEvent::ConnectionFailed { bot_id, code, .. })
                if ours(&bot_id) =>
            {
                match code {
                    // Restart required: the backend restarts the session itself; keep waiting.
                    515 => {}
                    405 | 408 | 428 | 500 | 503 => {
                        hang_up(socket, out);
                        return self.retry(live.display, RetryCause::Code(code), now, out);
                    }
                    // 401, 403, 411, 440 and anything unknown: final, never a loop.
                    _ => {
                        hang_up(socket, out);
                        return self.fail(live.display, Failure::Code(code), now, out);
                    }
                }
            }
            ServerEvent::BotStatus(update) => {
                if ours(&update.bot_id) && update.status == BotStatus::Connected {
                    // Some backends only say it this way; it is as good as whatsapp_connected.
                    hang_up(socket, out);
                    out.push(Command::Notify(Notice::BotStatus {
                        bot: update.bot_id,
                        status: update.status,
                    }));
                    out.push(Command::Notify(Notice::PairingEnded {
                        bot: live.display.bot.clone(),
                    }));
                    return Phase::Linked {
                        bot: live.display.bot,
                        phone: None,
                    };
                }
                out.push(Command::Notify(Notice::BotStatus {
                    bot: update.bot_id,
                    status: update.status,
                }));
            }
            ServerEvent::MessageSync(sync) => {
                out.push(Command::Notify(Notice::Messages {
                    bot: sync.bot_id,
                    messages: sync.messages,
                }));
            }
            _ => {}
        }
        Phase::Open(live)
    }
}

/// A code a frame carries, for the diagnostics' counters.
fn heard_in(packet: &Packet) -> Option<Heard> {
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
pub(super) fn describe_frame(frame: &Result<Packet, WireError>) -> String {
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
