//! The one retry policy of the background deliveries (approval notifications, audit shipping):
//! how many attempts, and the capped exponential backoff between them.

use std::future::Future;
use std::time::Duration;

use crate::Sleeper;

/// How often and how patiently a delivery is retried: at most `attempts` attempts (or without
/// limit), waiting `initial_backoff` after the first failure, doubled after each further one,
/// at most `max_backoff`.
///
/// ```
/// use std::time::Duration;
/// use agent_safe_http::RetryPolicy;
/// let retry = RetryPolicy::NOTIFICATIONS;
/// let waits: Vec<u64> = (1..=4).map(|f| retry.backoff(f).as_secs()).collect();
/// assert_eq!(waits, [1, 2, 4, 8]);
/// assert!(!retry.exhausted(4) && retry.exhausted(5));
/// assert!(!RetryPolicy::SHIPPING.exhausted(u32::MAX));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (0 counts as 1); `None`: retried until it succeeds (nothing is dropped).
    pub attempts: Option<u32>,
    /// Wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// Longest wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Approval notifications: 5 attempts, waiting 1 s, 2 s, 4 s and 8 s in between (at most
    /// 30 s).
    pub const NOTIFICATIONS: Self = Self {
        attempts: Some(5),
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
    };

    /// The audit shipping worker: without limit, 1 s, 2 s, 4 s, … up to 60 s.
    pub const SHIPPING: Self = Self {
        attempts: None,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
    };

    /// One-off shipping (`agent-safe audit ship`): 3 attempts, waiting 1 s then 2 s (at most
    /// 10 s).
    pub const REPLAY: Self = Self {
        attempts: Some(3),
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(10),
    };

    /// The wait after `failures` consecutive failures (1 = the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }

    /// Whether `failures` consecutive failures use up the attempts (never without a limit).
    pub fn exhausted(&self, failures: u32) -> bool {
        self.attempts.is_some_and(|a| failures >= a.max(1))
    }

    /// Runs `attempt` (called with the attempt number, from 1) until it succeeds or the
    /// attempts are used up, waiting out the backoff with `sleeper` in between. Returns the
    /// value or the last error, with the number of attempts made.
    pub async fn run<T, E, F, Fut>(
        &self,
        sleeper: &dyn Sleeper,
        mut attempt: F,
    ) -> (Result<T, E>, u32)
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut failures = 0u32;
        loop {
            let n = failures.saturating_add(1);
            match attempt(n).await {
                Ok(value) => return (Ok(value), n),
                Err(e) if self.exhausted(n) => return (Err(e), n),
                Err(_) => {}
            }
            failures = n;
            sleeper.sleep(self.backoff(failures)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use agent_safe_core::BoxFuture;

    use super::*;

    /// Records the waits instead of sleeping.
    #[derive(Debug, Default)]
    struct Waits(Mutex<Vec<Duration>>);

    impl Sleeper for Waits {
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            self.0.lock().unwrap().push(duration);
            Box::pin(async {})
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_overflows() {
        let r = RetryPolicy::SHIPPING;
        let waits: Vec<u64> = [1, 2, 3, 6, 7, 40, u32::MAX].map(|f| r.backoff(f).as_secs()).into();
        assert_eq!(waits, [1, 2, 4, 32, 60, 60, 60]);
        assert_eq!(r.backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn zero_attempts_count_as_one() {
        let r = RetryPolicy { attempts: Some(0), ..RetryPolicy::REPLAY };
        assert!(r.exhausted(1));
        assert!(!RetryPolicy::REPLAY.exhausted(2) && RetryPolicy::REPLAY.exhausted(3));
    }

    #[tokio::test]
    async fn run_retries_until_the_attempts_are_used_up() {
        let waits = Waits::default();
        let (out, attempts) = RetryPolicy::NOTIFICATIONS
            .run(&waits, |n| async move { Err::<(), _>(format!("attempt {n}")) })
            .await;
        assert_eq!((out, attempts), (Err("attempt 5".to_owned()), 5));
        let secs: Vec<u64> = waits.0.lock().unwrap().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8]);
    }

    #[tokio::test]
    async fn run_stops_at_the_first_success() {
        let waits = Waits::default();
        let (out, attempts) = RetryPolicy::NOTIFICATIONS
            .run(&waits, |n| async move { if n < 3 { Err(n) } else { Ok(n) } })
            .await;
        assert_eq!((out, attempts), (Ok(3), 3));
        assert_eq!(waits.0.lock().unwrap().len(), 2);
    }
}
