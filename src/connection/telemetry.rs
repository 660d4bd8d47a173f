//! What the diagnostics panel shows: the state machine's timeline (time, from → to, why), counters
//! (socket attempts, opens, closes, codes seen) and the time from a QR on screen to its scan.
//!
//! Pure: the driver hands it every input and every command, with the time. It never holds a token:
//! no input or command carries one (the CONNECT frame is built by the driver from the session, and
//! `SendConnect` names only the bot).

use super::machine::{Command, Input, Millis, UiState};
use std::collections::{BTreeMap, VecDeque};

/// Rows kept in the timeline: the newest win.
pub const TIMELINE_ROWS: usize = 100;

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineRow {
    pub at: Millis,
    pub from: UiState,
    pub to: UiState,
    pub why: String,
}

/// The diagnostics of one page's life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Telemetry {
    pub timeline: VecDeque<TimelineRow>,
    /// Sockets the machine asked for (`Open`).
    pub attempts: u32,
    /// Sockets whose transport opened.
    pub opens: u32,
    /// Sockets the app closed.
    pub closes: u32,
    /// Every code seen, by name (`connection_failed 440`, `close 1006`, `refused token_expired`,
    /// `http 429`...), with how often.
    pub codes: BTreeMap<String, u32>,
    /// From the QR on screen to `qr_scanned`, for the last scan.
    pub time_to_scan: Option<Millis>,
    /// When the current display's first QR went on screen.
    qr_on_screen_at: Option<Millis>,
}

impl Telemetry {
    /// Records what went into the machine.
    pub fn input(&mut self, input: &Input, now: Millis) {
        match input {
            Input::QrShown { .. } => {
                self.qr_on_screen_at.get_or_insert(now);
            }
            Input::SocketOpened { .. } => self.opens += 1,
            Input::SocketClosed { code, .. } => self.seen(format!("close {code}")),
            Input::QrFetchFailed { failure, .. }
            | Input::SessionFailed { failure, .. }
            | Input::BotFetchFailed { failure, .. } => self.seen(failure.name()),
            _ => {}
        }
    }

    /// Records what the machine answered.
    pub fn commands(&mut self, commands: &[Command], now: Millis) {
        for command in commands {
            match command {
                Command::Open { .. } => self.attempts += 1,
                Command::Close { .. } => self.closes += 1,
                Command::Transition { from, to, why } => self.transition(*from, *to, why, now),
                Command::Heard(heard) => self.seen(heard.name()),
                _ => {}
            }
        }
    }

    fn transition(&mut self, from: UiState, to: UiState, why: &str, now: Millis) {
        if self.timeline.len() == TIMELINE_ROWS {
            self.timeline.pop_front();
        }
        self.timeline.push_back(TimelineRow {
            at: now,
            from,
            to,
            why: why.to_owned(),
        });
        match to {
            UiState::Finishing => {
                if let Some(shown) = self.qr_on_screen_at.take() {
                    self.time_to_scan = Some(now.saturating_sub(shown));
                }
            }
            // The display ended or went away: the next QR on screen starts a new count.
            UiState::Idle
            | UiState::Linked
            | UiState::Failed
            | UiState::OtherTab
            | UiState::Paused => self.qr_on_screen_at = None,
            _ => {}
        }
    }

    fn seen(&mut self, code: String) {
        *self.codes.entry(code).or_default() += 1;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::connection::machine::{Config, Epoch, Heard, HttpFailure, Machine};
    use protocol::Pairing;

    /// A machine and its telemetry, fed as the driver feeds them.
    struct Rig {
        m: Machine,
        t: Telemetry,
    }

    impl Rig {
        fn new() -> Self {
            Rig {
                m: Machine::new(Config::default(), 7),
                t: Telemetry::default(),
            }
        }

        fn send(&mut self, input: Input, now: Millis) -> Vec<Command> {
            self.t.input(&input, now);
            let out = self.m.handle(input, now);
            self.t.commands(&out, now);
            out
        }
    }

    fn socket_of(out: &[Command]) -> crate::connection::machine::SocketId {
        out.iter()
            .find_map(|c| match c {
                Command::Open { socket } => Some(*socket),
                _ => None,
            })
            .expect("a socket opened")
    }

    #[test]
    fn a_pairing_leaves_a_timeline_counters_and_the_time_to_scan() {
        let mut r = Rig::new();
        let qr = Pairing {
            qr: "http://x/link/r".into(),
            attempt: 1,
            attempts: 6,
            expires_in_ms: 60_000,
        };
        r.send(Input::ShowQr { bot: "b1".into() }, 0);
        r.send(Input::TabClaimed { epoch: Epoch(1) }, 1);
        r.send(
            Input::QrFetched {
                epoch: Epoch(2),
                qr: qr.clone(),
            },
            20,
        );
        r.send(Input::QrShown { qr: qr.qr }, 40);
        let out = r.send(Input::TimerFired, 540);
        let socket = socket_of(&out);
        r.send(Input::SocketOpened { socket }, 550);
        let frames = [
            r#"0{"sid":"s","pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            r#"40{"sid":"n"}"#,
            r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b1","code":515}]"#,
            r#"42["whatsapp_connection_event",{"type":"qr_scanned","botId":"b1"}]"#,
            r#"42["whatsapp_connection_event",{"type":"whatsapp_connected","botId":"b1","phone":"+1"}]"#,
        ];
        for (i, f) in frames.into_iter().enumerate() {
            let at = 560 + 1_000 * i as u64;
            r.send(
                Input::SocketMessage {
                    socket,
                    text: f.into(),
                },
                at,
            );
        }
        let t = &r.t;
        let rows: Vec<_> = t
            .timeline
            .iter()
            .map(|row| format!("{} {}→{}", row.at, row.from.as_str(), row.to.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                "0 idle→connecting",
                "20 connecting→debouncing",
                "540 debouncing→connecting",
                "1560 connecting→waiting_for_scan",
                "3560 waiting_for_scan→finishing",
                "4560 finishing→linked",
            ]
        );
        assert_eq!((t.attempts, t.opens, t.closes), (1, 1, 1));
        assert_eq!(t.codes.get("connection_failed 515"), Some(&1));
        assert_eq!(t.time_to_scan, Some(3_560 - 40));
    }

    #[test]
    fn codes_from_refusals_closes_and_http_are_counted() {
        let mut t = Telemetry::default();
        let socket = crate::connection::machine::SocketId(1);
        t.commands(
            &[
                Command::Heard(Heard::Refused("token_expired".into())),
                Command::Heard(Heard::ServerDisconnect),
                Command::Log("dropped a frame: not a frame".into()),
            ],
            0,
        );
        t.input(&Input::SocketClosed { socket, code: 1006 }, 0);
        t.input(&Input::SocketClosed { socket, code: 1006 }, 0);
        t.input(
            &Input::QrFetchFailed {
                epoch: Epoch(1),
                failure: HttpFailure::RateLimited { retry_after: None },
            },
            0,
        );
        let codes: Vec<_> = t.codes.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        assert_eq!(
            codes,
            [
                "close 1006×2",
                "http 429×1",
                "refused token_expired×1",
                "server disconnect×1"
            ]
        );
    }

    #[test]
    fn the_timeline_keeps_the_newest_rows() {
        let mut t = Telemetry::default();
        for i in 0..(TIMELINE_ROWS as u64 + 5) {
            t.commands(
                &[Command::Transition {
                    from: UiState::Idle,
                    to: UiState::Connecting,
                    why: format!("#{i}"),
                }],
                i,
            );
        }
        assert_eq!(t.timeline.len(), TIMELINE_ROWS);
        assert_eq!(t.timeline.front().map(|r| r.at), Some(5));
    }
}
