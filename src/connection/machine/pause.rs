//! A hidden tab: after `pause_after` hidden while a display runs, its socket closes and the lock
//! is let go; visible again, it claims the lock, resyncs the bot over HTTP, and only then opens.

use super::{AfterClaim, Command, Display, Event, Machine, Millis, Phase};

impl Machine {
    /// Closes whatever the display holds and waits, without the lock, for the page to be visible.
    pub(super) fn pause(&mut self, phase: Phase, out: &mut Vec<Command>) -> Phase {
        out.push(Command::Log(format!(
            "hidden for {} ms: the socket closes until the page is visible",
            self.config.pause_after
        )));
        self.close_current(&phase, out);
        match phase.into_display() {
            Some(display) => Phase::Paused {
                display: Display {
                    qr: None,
                    ..display
                },
            },
            None => Phase::Idle,
        }
    }

    pub(super) fn on_paused(
        &mut self,
        display: Display,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            Event::PageVisible => self.claim(display, AfterClaim::Resume, false, now, out),
            Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::Timer(_)
            | Event::Online
            | Event::Offline => Phase::Paused { display },
        }
    }
}
