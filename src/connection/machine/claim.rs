//! Claiming the pairing lock (`lock.rs`), and waiting while another tab holds it.
//!
//! A display starts by asking for the lock; a second tab of the same browser gets
//! [`Phase::OtherTab`] and opens nothing until the user says "Pair here instead".

use super::{AfterClaim, Answer, Command, Display, Epoch, Event, Machine, Millis, Phase, Purpose};

impl Machine {
    /// Asks for the pairing lock; `then` follows once it is this tab's.
    pub(super) fn claim(
        &mut self,
        display: Display,
        then: AfterClaim,
        steal: bool,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let epoch = self.epoch();
        out.push(Command::ClaimTab { epoch, steal });
        Phase::Claiming {
            display,
            epoch,
            then,
            give_up_at: now.saturating_add(self.config.request_timeout),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_claiming(
        &mut self,
        display: Display,
        epoch: Epoch,
        then: AfterClaim,
        give_up_at: Millis,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            Event::Answer(Answer::TabClaimed) => self.after_claim(display, then, now, out),
            Event::Answer(Answer::TabBusy) => Phase::OtherTab { display },
            // No answer about the lock is taken for "busy": waiting is safe, a second socket is not.
            Event::Timer(_) => {
                out.push(Command::Log("the tab lock did not answer".into()));
                Phase::OtherTab { display }
            }
            // Nothing else is asked of a tab that waits for the lock.
            Event::Answer(_)
            | Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::PageVisible
            | Event::Online
            | Event::Offline => Phase::Claiming {
                display,
                epoch,
                then,
                give_up_at,
            },
        }
    }

    fn after_claim(
        &mut self,
        display: Display,
        then: AfterClaim,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match then {
            AfterClaim::Fetch => self.fetch(display, Purpose::Display, now, out),
            AfterClaim::Resume => self.fetch(display, Purpose::Resume, now, out),
            AfterClaim::SignIn => self.new_session(display, now, out),
        }
    }

    /// Another tab pairs; this one shows why and waits.
    pub(super) fn on_other_tab(
        &mut self,
        display: Display,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            // "Pair here instead": take the lock from the other tab.
            Event::TakeOver => self.claim(display.fresh(), AfterClaim::Fetch, true, now, out),
            Event::Retry
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::Timer(_)
            | Event::PageVisible
            | Event::Online
            | Event::Offline => Phase::OtherTab { display },
        }
    }
}
