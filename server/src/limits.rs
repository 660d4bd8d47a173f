//! Per-user rate limits: a token bucket per user, refilled continuously. Defaults are far above
//! what a person clicking does, and far below a client caught in a connection storm.

use crate::state::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Beyond this many users the idle, full buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// `per_minute` requests a minute, in bursts of up to that many; 0 disables the limit.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `user`'s allowance, or says how long until one is free.
    pub fn take(&self, user: &str) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(user) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_sec).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
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
