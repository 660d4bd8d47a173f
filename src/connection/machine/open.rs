//! A socket connected to the namespace: the QR is live. Pings keep it alive (none within the
//! server's pingInterval + pingTimeout is a dead link), 10 s of stable open forgives earlier
//! failures, and the events of PROTOCOL.md §3 for this display's bot move it on — to
//! `finishing.rs` once the phone scanned, or to a verdict of `policy.rs`.

use super::{
    BotStatus, Command, Event, Live, Machine, Millis, Notice, Phase, close, hang_up,
    policy::{self, Trouble, Verdict},
    timers::Timer,
};
use protocol::{Packet, ServerEvent, WhatsAppEvent, frames};

impl Machine {
    pub(super) fn on_open(
        &mut self,
        mut live: Live,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let socket = live.socket;
        let trouble = match event {
            Event::Frame(Packet::Ping) => {
                live.dead_at = now.saturating_add(live.ping_window);
                out.push(Command::Send {
                    socket,
                    text: frames::PONG.into(),
                });
                return Phase::Open(live);
            }
            // The server ended our namespace (another session replaced us): never reopen.
            Event::Frame(Packet::Disconnect) => Trouble::ServerDisconnect,
            Event::Frame(Packet::Close) => Trouble::TransportClosed,
            Event::Frame(Packet::Event { ack, event }) => {
                if let Some(id) = ack {
                    out.push(Command::Send {
                        socket,
                        text: frames::encode_ack(id),
                    });
                }
                return self.on_server_event(live, event, now, out);
            }
            Event::Frame(
                Packet::Open(_)
                | Packet::Connected
                | Packet::ConnectError(_)
                | Packet::Pong
                | Packet::Noop
                | Packet::Ignored,
            ) => return Phase::Open(live),
            Event::SocketClosed(code) => Trouble::SocketClosed(code),
            // Offline: the socket cannot live; say so now rather than after the ping window.
            Event::Offline => Trouble::Offline,
            Event::Timer(Timer::Liveness) => {
                out.push(Command::Log(format!(
                    "no ping for {} ms: the link is dead",
                    live.ping_window
                )));
                Trouble::NoAnswer
            }
            Event::Timer(Timer::Stable) => {
                live.stable_at = None;
                live.display.budget.network_retries = 0;
                return Phase::Open(live);
            }
            Event::Timer(Timer::ScanStall) => return self.scan_stalled(live),
            Event::Timer(_)
            | Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::PageVisible
            | Event::Online => return Phase::Open(live),
        };
        close(socket, out);
        self.trouble(live.display, trouble, now, out)
    }

    /// An event of §3. Only those about this display's bot move it; statuses and message counts
    /// of every bot go to the pages.
    fn on_server_event(
        &mut self,
        mut live: Live,
        event: ServerEvent,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let socket = live.socket;
        let event = match event {
            ServerEvent::BotStatus(update) => {
                let linked =
                    update.bot_id == live.display.bot && update.status == BotStatus::Connected;
                if linked {
                    // Some backends only say it this way; it is as good as whatsapp_connected.
                    hang_up(socket, out);
                }
                out.push(Command::Notify(Notice::BotStatus {
                    bot: update.bot_id,
                    status: update.status,
                }));
                return match linked {
                    true => self.linked(live.display, None, out),
                    false => Phase::Open(live),
                };
            }
            ServerEvent::MessageSync(sync) => {
                out.push(Command::Notify(Notice::Messages {
                    bot: sync.bot_id,
                    messages: sync.messages,
                }));
                return Phase::Open(live);
            }
            ServerEvent::WhatsApp(event) if event.bot_id() == Some(live.display.bot.as_str()) => {
                event
            }
            // Another bot's pairing, a connection update, an event this app does not know.
            ServerEvent::WhatsApp(_)
            | ServerEvent::ConnectionUpdate(_)
            | ServerEvent::Unknown(_) => {
                return Phase::Open(live);
            }
        };
        match event {
            // An empty code is nothing to show: the one on screen stays.
            WhatsAppEvent::QrUpdated { qr, .. } if !qr.qr.is_empty() => {
                live.display.qr = Some(qr);
                Phase::Open(live)
            }
            WhatsAppEvent::QrScanned { .. } => self.scanned(live, now),
            WhatsAppEvent::FinishOnPhone { .. } => self.finish_on_phone(live, now),
            WhatsAppEvent::PairingCodeExpired { bot_id, .. } => {
                out.push(Command::Notify(Notice::PairingCodeExpired { bot: bot_id }));
                Phase::Open(live)
            }
            WhatsAppEvent::WhatsappConnected { phone, .. } => {
                hang_up(socket, out);
                self.linked(live.display, phone, out)
            }
            WhatsAppEvent::QrExpired { .. } => {
                hang_up(socket, out);
                self.trouble(live.display, Trouble::QrExpired, now, out)
            }
            WhatsAppEvent::ConnectionFailed { code, .. } => {
                match policy::verdict(Trouble::ConnectionFailed(code)) {
                    // Restart required: the backend restarts the session itself; keep waiting.
                    Verdict::KeepWaiting => Phase::Open(live),
                    verdict => {
                        hang_up(socket, out);
                        self.settle(live.display, verdict, now, out)
                    }
                }
            }
            WhatsAppEvent::QrUpdated { .. } | WhatsAppEvent::Other => Phase::Open(live),
        }
    }
}
