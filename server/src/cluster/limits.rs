//! Per-user rate limits (governor's keyed GCRA limiter). Defaults are far above what a person
//! clicking does, and far below a client caught in a connection storm.

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use std::num::NonZeroU32;
use std::time::Duration;

/// Beyond this many tracked users, the ones back at a full allowance are forgotten.
const MAX_TRACKED: usize = 100_000;

pub struct RateLimiter(Option<DefaultKeyedRateLimiter<String>>);

impl RateLimiter {
    /// `per_minute` requests a minute, in bursts of up to that many; 0 disables the limit.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter(
            NonZeroU32::new(per_minute).map(|n| governor::RateLimiter::keyed(Quota::per_minute(n))),
        )
    }

    /// Takes one request of `user`'s allowance, or says how long until one is free.
    pub fn take(&self, user: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() >= MAX_TRACKED {
            limiter.retain_recent();
        }
        limiter.check_key(&user.to_owned()).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_passes_then_waits_and_users_are_apart() {
        let limit = RateLimiter::new(30);
        for _ in 0..30 {
            assert!(limit.take("storm").is_ok());
        }
        let wait = limit.take("storm").unwrap_err();
        assert!(
            wait > Duration::from_millis(1_900) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert!(limit.take("calm").is_ok(), "another user is not affected");
        assert!(RateLimiter::new(0).take("x").is_ok(), "0 disables it");
    }
}
