//! The 500 ms debounce and the 1 s between opens: a QR on screen opens its socket only once it
//! has stayed there 500 ms, and never sooner than 1 s after the last socket opened. This is the
//! one place a socket is opened (`Command::Open`).

use super::{
    Command, Connecting, Display, Event, Machine, Millis, Phase, SocketId, phase::Handshake,
};
use protocol::frames::DEFAULT_MAX_PAYLOAD;

impl Machine {
    pub(super) fn on_debouncing(
        &mut self,
        display: Display,
        open_at: Option<Millis>,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match (event, open_at) {
            // The page shows the QR: the debounce counts from here, not from its arrival.
            (Event::QrShown(qr), None) if display.qr.as_ref().is_some_and(|q| q.qr == qr) => {
                let open_at = Some(self.not_before(now.saturating_add(self.config.debounce)));
                Phase::Debouncing { display, open_at }
            }
            // The debounce (or the 1 s rule) is over: open.
            (Event::Timer(_), Some(_)) => self.open(display, now, out),
            // Shown again, or another QR text than ours: the window already runs (or waits for
            // ours); nothing else concerns a socket not yet opened.
            (
                Event::QrShown(_)
                | Event::Timer(_)
                | Event::Retry
                | Event::TakeOver
                | Event::Answer(_)
                | Event::Frame(_)
                | Event::SocketClosed(_)
                | Event::PageVisible
                | Event::Online
                | Event::Offline,
                _,
            ) => Phase::Debouncing { display, open_at },
        }
    }

    /// Opens a socket now, or, inside 1 s of the last one, waits for the rest of that second.
    pub(super) fn open(&mut self, display: Display, now: Millis, out: &mut Vec<Command>) -> Phase {
        let at = self.not_before(now);
        if at > now {
            // The 1 s rule: wait, and come back through the timer.
            return Phase::Debouncing {
                display,
                open_at: Some(at),
            };
        }
        self.next_socket += 1;
        let socket = SocketId(self.next_socket);
        self.last_open_at = Some(now);
        out.push(Command::Open { socket });
        Phase::Connecting(Connecting {
            display,
            socket,
            stage: Handshake::Transport,
            max_payload: DEFAULT_MAX_PAYLOAD,
            give_up_at: now.saturating_add(self.config.connect_timeout),
        })
    }
}
