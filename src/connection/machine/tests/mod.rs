//! Scenarios for the state machine on a fake clock: PROTOCOL.md §6 line by line, and the rows
//! of DESIGN.md's failure matrix. A `Rig` plays the driver: it keeps the one timer, fires it
//! when the clock passes it (late, if asked), and records every command with its time.

use super::*;

mod debounce;
mod drops;
mod finishing;
mod hostile;
mod invariants;
mod jitter;
mod outcomes;
mod refusals;
mod tabs_and_pages;

const OPEN: &str =
    r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const CONNECTED: &str = r#"40{"sid":"n"}"#;

struct Rig {
    m: Machine,
    now: Millis,
    timer: Option<Millis>,
    log: Vec<(Millis, Command)>,
    /// Whether the rig, playing the browser, grants the cross-tab lock at once (one tab open).
    grant_tab: bool,
}

impl Rig {
    fn new() -> Self {
        Rig {
            m: Machine::new(Config::default(), 42),
            now: 0,
            timer: None,
            log: Vec::new(),
            grant_tab: true,
        }
    }

    fn send(&mut self, input: Input) -> Vec<Command> {
        let mut out = self.m.handle(input, self.now);
        let mut claims = Vec::new();
        for c in &out {
            match c {
                Command::ArmTimer { at } => self.timer = Some(*at),
                Command::CancelTimer => self.timer = None,
                Command::ClaimTab { epoch, .. } => claims.push(*epoch),
                _ => {}
            }
            self.log.push((self.now, c.clone()));
        }
        if self.grant_tab {
            for epoch in claims {
                out.extend(self.send(Input::TabClaimed { epoch }));
            }
        }
        out
    }

    /// Moves the clock to `t`, firing the timer on time whenever it is due.
    fn run_until(&mut self, t: Millis) {
        while let Some(at) = self.timer.filter(|at| *at <= t) {
            self.now = self.now.max(at);
            self.timer = None;
            self.send(Input::TimerFired);
        }
        self.now = self.now.max(t);
    }

    fn wait(&mut self, ms: Millis) {
        self.run_until(self.now + ms);
    }

    fn show(&mut self) {
        self.send(Input::ShowQr { bot: "b1".into() });
    }

    fn last_fetch(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::FetchQr { epoch, .. } => Some(*epoch),
            _ => None,
        })
    }

    fn last_session_request(&self) -> Option<Epoch> {
        self.log.iter().rev().find_map(|(_, c)| match c {
            Command::RefreshSession { epoch } | Command::NewSession { epoch } => Some(*epoch),
            _ => None,
        })
    }

    /// The server answers the QR request, and the page shows the QR at once.
    fn answer_qr(&mut self) {
        let epoch = self.last_fetch().expect("a QR was requested");
        self.send(Input::QrFetched { epoch, qr: qr(1) });
        self.send(Input::QrShown { qr: qr(1).qr });
    }

    fn socket(&self) -> SocketId {
        self.log
            .iter()
            .rev()
            .find_map(|(_, c)| match c {
                Command::Open { socket } => Some(*socket),
                _ => None,
            })
            .expect("a socket was opened")
    }

    fn frame(&mut self, text: &str) -> Vec<Command> {
        let socket = self.socket();
        self.send(Input::SocketMessage {
            socket,
            text: text.into(),
        })
    }

    /// The server accepts the newest socket: Engine.IO open, then namespace CONNECT.
    fn accept(&mut self) {
        let socket = self.socket();
        self.send(Input::SocketOpened { socket });
        self.frame(OPEN);
        self.frame(CONNECTED);
    }

    /// Show the QR, answer the fetch, pass the debounce: the socket's transport is open, and the
    /// server has said nothing yet (the test sends its own Engine.IO open).
    fn transport_open(&mut self) -> SocketId {
        self.show();
        self.answer_qr();
        self.wait(500);
        let socket = self.socket();
        self.send(Input::SocketOpened { socket });
        socket
    }

    /// Show the QR, answer the fetch, pass the debounce, accept the socket.
    fn open_display(&mut self) {
        self.show();
        self.answer_qr();
        self.wait(500);
        self.accept();
        assert_eq!(self.state(), UiState::WaitingForScan);
    }

    fn close_socket(&mut self, code: u16) {
        let socket = self.socket();
        self.send(Input::SocketClosed { socket, code });
    }

    fn opens(&self) -> Vec<Millis> {
        self.log
            .iter()
            .filter(|(_, c)| matches!(c, Command::Open { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn count(&self, pred: impl Fn(&Command) -> bool) -> usize {
        self.log.iter().filter(|(_, c)| pred(c)).count()
    }

    fn state(&self) -> UiState {
        self.m.view().state
    }

    fn failure(&self) -> Option<String> {
        self.m.view().failure.map(|f| f.code())
    }
}

fn qr(attempt: u32) -> Pairing {
    Pairing {
        qr: format!("http://127.0.0.1/link/ref{attempt}"),
        attempt,
        attempts: 6,
        expires_in_ms: 60_000,
    }
}

fn event(payload: &str) -> String {
    format!(r#"42["whatsapp_connection_event",{payload}]"#)
}
