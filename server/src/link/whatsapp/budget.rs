//! The retry budget we own. whatsapp-rust reconnects by itself forever (Fibonacci backoff up to
//! 900 s), and a failed connect emits no event; its reconnect is also what carries the 515
//! restart after a scan, so it stays on and this budget supervises it: every connection attempt
//! asks first, and once the budget is spent the client is stopped and the bot marked
//! `disconnected`. Pure: time is an argument, so tests run on a fake clock.

use std::time::{Duration, Instant};

/// Connection attempts allowed without a stable session in between: the first connect, the
/// 515 restart after a scan, and four retries (whatsapp-rust waits 1, 1, 2, 3 s between them).
pub const ATTEMPTS: u32 = 6;

/// A session open this long has proven itself: the attempts counted so far are forgiven.
pub const STABLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Budget {
    allowed: u32,
    stable: Duration,
    /// Attempts since the last stable session.
    attempts: u32,
    /// When the session now open opened (`Connected`).
    open_since: Option<Instant>,
}

/// What the supervisor does with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// The budget is spent: stop the client, mark the bot disconnected.
    GiveUp {
        attempts: u32,
    },
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(ATTEMPTS, STABLE)
    }
}

impl Budget {
    pub fn new(allowed: u32, stable: Duration) -> Budget {
        Budget {
            allowed,
            stable,
            attempts: 0,
            open_since: None,
        }
    }

    /// whatsapp-rust is about to connect.
    pub fn attempt(&mut self, now: Instant) -> Verdict {
        self.closed(now);
        if self.attempts >= self.allowed {
            return Verdict::GiveUp {
                attempts: self.attempts,
            };
        }
        self.attempts += 1;
        Verdict::Go
    }

    /// The session opened (`Connected`).
    pub fn opened(&mut self, now: Instant) {
        self.open_since = Some(now);
    }

    /// The session closed; a session that lasted `STABLE` forgives the attempts before it.
    pub fn closed(&mut self, now: Instant) {
        if let Some(since) = self.open_since.take()
            && now.saturating_duration_since(since) >= self.stable
        {
            self.attempts = 0;
        }
    }

    #[cfg(test)]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_that_never_connects_is_given_up_after_the_budget() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        for i in 0..ATTEMPTS {
            assert_eq!(b.attempt(t0 + Duration::from_secs(i as u64)), Verdict::Go);
        }
        assert_eq!(
            b.attempt(t0 + Duration::from_secs(60)),
            Verdict::GiveUp { attempts: ATTEMPTS }
        );
        // And it stays given up: no attempt sneaks through later.
        assert!(matches!(
            b.attempt(t0 + Duration::from_secs(3600)),
            Verdict::GiveUp { .. }
        ));
    }

    #[test]
    fn sessions_that_drop_before_30_s_use_the_budget_up() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        let mut t = t0;
        let mut verdicts = Vec::new();
        for _ in 0..10 {
            verdicts.push(b.attempt(t));
            b.opened(t);
            t += Duration::from_secs(29);
            b.closed(t);
        }
        let gone = verdicts.iter().position(|v| *v != Verdict::Go);
        assert_eq!(gone, Some(ATTEMPTS as usize), "{verdicts:?}");
    }

    #[test]
    fn a_stable_session_forgives_the_attempts_before_it() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        for _ in 0..ATTEMPTS - 1 {
            assert_eq!(b.attempt(t0), Verdict::Go);
        }
        assert_eq!(b.attempt(t0), Verdict::Go);
        b.opened(t0);
        // Open for 30 s, then dropped: the next attempt starts a fresh budget.
        assert_eq!(b.attempt(t0 + STABLE), Verdict::Go);
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn the_515_restart_after_a_scan_fits_in_the_budget() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        assert_eq!(b.attempt(t0), Verdict::Go, "the pairing connection");
        assert_eq!(
            b.attempt(t0 + Duration::from_secs(20)),
            Verdict::Go,
            "the restart"
        );
        b.opened(t0 + Duration::from_secs(21));
        assert_eq!(b.attempts(), 2);
    }
}
