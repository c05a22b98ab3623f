//! The per-caller rate limit of the HTTP API: one token bucket per caller key (the verified
//! agent id, else the peer address), on the server's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_safe::Clock;
use time::OffsetDateTime;

use crate::CallerRateLimit;

/// Buckets kept before full (idle) ones are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// Token buckets by caller key.
#[derive(Debug)]
pub(crate) struct CallerLimiter {
    limit: CallerRateLimit,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl CallerLimiter {
    pub(crate) fn new(limit: CallerRateLimit, clock: Arc<dyn Clock>) -> Self {
        Self { limit, clock, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`; `Err(wait)` when none is left (how long until one is).
    pub(crate) fn take(&self, key: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = refill(bucket, now, rate, burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - bucket.tokens) / rate).min(86_400.0)))
        }
    }
}

fn refill(b: &Bucket, now: OffsetDateTime, rate: f64, burst: f64) -> f64 {
    let elapsed = (now - b.at).as_seconds_f64().max(0.0);
    (b.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use agent_safe::ManualClock;

    use super::*;

    /// Steps: (seconds to advance the clock, key, expected outcome).
    #[track_caller]
    fn check(limit: CallerRateLimit, steps: &[(f64, &str, bool)]) {
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2025-01-01 0:00 UTC)));
        let limiter = CallerLimiter::new(limit, clock.clone());
        for (i, (advance, key, allowed)) in steps.iter().enumerate() {
            clock.advance(time::Duration::seconds_f64(*advance));
            assert_eq!(limiter.take(key).is_ok(), *allowed, "step {i} ({key})");
        }
    }

    #[test]
    fn bucket_per_caller() {
        let limit = CallerRateLimit { per_second: 2.0, burst: 2 };
        check(
            limit,
            &[
                (0.0, "a", true),
                (0.0, "a", true),
                (0.0, "a", false),
                // Another caller has a bucket of its own.
                (0.0, "b", true),
                // Half a second refills one token at 2/s.
                (0.5, "a", true),
                (0.0, "a", false),
                // Never more than the burst.
                (100.0, "a", true),
                (0.0, "a", true),
                (0.0, "a", false),
            ],
        );
    }
}
