//! The inputs that matter in every phase: which QR the pages want (`ShowQr`, `HideQr`), and
//! another tab taking the pairing lock away (`TabLost`).

use super::{
    AfterClaim, Command, Display, Machine, Millis, Notice, Phase, Purpose,
    lock::{holds_lock, wants_lock},
};

/// An input that matters in every phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum EveryPhase {
    /// The user wants this bot's QR on screen.
    Show(String),
    /// The QR is no longer wanted.
    Hide,
    /// Another tab took the pairing lock over from this one.
    TabLost,
}

impl Machine {
    pub(super) fn every_phase(
        &mut self,
        phase: Phase,
        input: EveryPhase,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match input {
            EveryPhase::Show(bot) => self.show(phase, bot, now, out),
            EveryPhase::Hide => {
                self.end_display(&phase, out);
                Phase::Idle
            }
            EveryPhase::TabLost if holds_lock(&phase) => {
                out.push(Command::Log("another tab took the pairing over".into()));
                self.close_current(&phase, out);
                match phase.into_display() {
                    Some(display) => Phase::OtherTab { display },
                    None => Phase::Idle,
                }
            }
            // Not holding it, nothing was lost.
            EveryPhase::TabLost => phase,
        }
    }

    /// `ShowQr`: single-flight. A display of the same bot, running or ended, absorbs it (a failed
    /// one restarts through `Retry`); another bot's display is closed and replaced.
    fn show(&mut self, phase: Phase, bot: String, now: Millis, out: &mut Vec<Command>) -> Phase {
        if phase.bot() == Some(bot.as_str()) {
            return phase;
        }
        self.end_display(&phase, out);
        let display = Display::new(bot);
        if holds_lock(&phase) {
            // Another bot's display in this tab: the lock is ours already.
            return self.fetch(display, Purpose::Display, now, out);
        }
        self.claim(display, AfterClaim::Fetch, false, now, out)
    }

    /// Ends a running display: closes its socket and tells the pages the pairing is over.
    fn end_display(&self, phase: &Phase, out: &mut Vec<Command>) {
        self.close_current(phase, out);
        if let Some(bot) = phase.bot().filter(|_| wants_lock(phase)) {
            out.push(Command::Notify(Notice::PairingEnded {
                bot: bot.to_owned(),
            }));
        }
    }
}
