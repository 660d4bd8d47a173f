//! The machine's deadlines, by name. The driver keeps one timer, armed for the earliest of them;
//! when it fires, the first one due (in the order listed here, so a dead link is declared before
//! its stable time forgives anything) is what happens.

use super::{Machine, Millis, Phase, lock::holds_lock};

/// Every deadline the machine can wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The tab was hidden for `pause_after` while a display runs (`pause.rs`).
    Pause,
    /// An HTTP request or the pairing lock did not answer within `request_timeout`.
    RequestDeadline,
    /// 500 ms after the QR went on screen (`debounce.rs`).
    Debounce,
    /// 1 s after the last socket opened (`debounce.rs`).
    MinGap,
    /// The Engine.IO open and the namespace CONNECT did not come within `connect_timeout`
    /// (`connect.rs`).
    HandshakeDeadline,
    /// The wait before a retry (`retry.rs`).
    Backoff,
    /// No ping within pingInterval + pingTimeout: a dead link (`open.rs`).
    Liveness,
    /// 10 s of stable open: earlier failures are forgiven (`open.rs`).
    Stable,
    /// 60 s after `qr_scanned` without `whatsapp_connected` (`finishing.rs`).
    ScanStall,
}

impl Machine {
    /// The deadlines set now, in the order they are handled when several are due.
    pub(super) fn timers(&self) -> Vec<(Timer, Millis)> {
        let mut timers = Vec::new();
        if let Some(since) = self.hidden_since.filter(|_| holds_lock(&self.phase)) {
            timers.push((Timer::Pause, since.saturating_add(self.config.pause_after)));
        }
        match &self.phase {
            Phase::Idle
            | Phase::OtherTab { .. }
            | Phase::Linked { .. }
            | Phase::Paused { .. }
            // The cooldown needs no timer of the machine's: the page redraws the button.
            | Phase::Failed { .. } => {}
            Phase::Claiming { give_up_at, .. }
            | Phase::Fetching { give_up_at, .. }
            | Phase::Refreshing { give_up_at, .. } => {
                timers.push((Timer::RequestDeadline, *give_up_at));
            }
            Phase::Debouncing { open_at, .. } => {
                if let Some(at) = *open_at {
                    // The later of the two rules decides when it opens; name the one that does.
                    let min_gap = self
                        .last_open_at
                        .is_some_and(|last| last.saturating_add(self.config.min_gap) >= at);
                    timers.push((if min_gap { Timer::MinGap } else { Timer::Debounce }, at));
                }
            }
            Phase::Connecting(c) => timers.push((Timer::HandshakeDeadline, c.give_up_at)),
            Phase::Backoff { retry_at, .. } => timers.push((Timer::Backoff, *retry_at)),
            Phase::Open(live) => {
                timers.push((Timer::Liveness, live.dead_at));
                if let Some(at) = live.stable_at {
                    timers.push((Timer::Stable, at));
                }
                if let Some(s) = live.scanned.filter(|s| !s.stalled) {
                    timers.push((Timer::ScanStall, s.stall_at));
                }
            }
        }
        timers
    }

    /// The earliest time the machine wants to be woken at.
    pub(super) fn deadline(&self) -> Option<Millis> {
        self.timers().into_iter().map(|(_, at)| at).min()
    }

    /// The deadline that has passed at `now`, first in the list's order.
    pub(super) fn due(&self, now: Millis) -> Option<Timer> {
        self.timers()
            .into_iter()
            .find(|(_, at)| *at <= now)
            .map(|(timer, _)| timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::machine::{Config, Display, Input, Phase};

    fn debouncing(open_at: Millis, last_open_at: Option<Millis>) -> Machine {
        let mut m = Machine::new(Config::default(), 1);
        m.phase = Phase::Debouncing {
            display: Display::new("b".into()),
            open_at: Some(open_at),
        };
        m.last_open_at = last_open_at;
        m
    }

    /// The deadline of a debouncing QR is named by the rule that sets it.
    #[test]
    fn the_debounce_and_the_1s_rule_are_told_apart() {
        assert_eq!(debouncing(500, None).timers(), [(Timer::Debounce, 500)]);
        assert_eq!(
            debouncing(2_500, Some(0)).timers(),
            [(Timer::Debounce, 2_500)]
        );
        assert_eq!(
            debouncing(1_400, Some(400)).timers(),
            [(Timer::MinGap, 1_400)]
        );
    }

    /// Several deadlines due at once: the first in the list's order goes first, and the
    /// deadline the driver arms is the earliest.
    #[test]
    fn the_first_due_timer_in_order_goes_first() {
        let mut m = debouncing(500, None);
        m.hidden_since = Some(0);
        // Pause at 30 s is listed before the debounce at 500 ms.
        assert_eq!(m.deadline(), Some(500));
        assert_eq!(m.due(499), None);
        assert_eq!(m.due(500), Some(Timer::Debounce));
        assert_eq!(m.due(30_000), Some(Timer::Pause));
        m.handle(Input::PageVisible, 0);
        assert_eq!(m.due(30_000), Some(Timer::Debounce));
    }
}
