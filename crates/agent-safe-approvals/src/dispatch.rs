//! Sending notifications off the decision path: a background thread with its own tokio
//! runtime, a timeout per attempt, retries with exponential backoff, outcomes recorded.
//!
//! [`Dispatcher::dispatch`] only queues the request and returns; nothing it does can fail or
//! block a decision. [`Dispatcher::flush`] waits (bounded) for queued deliveries, e.g. before a
//! short-lived CLI process exits.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use agent_safe_core::Clock;
use tokio::sync::mpsc;

use crate::model::ApprovalRequest;
use crate::notify::{Message, Notifier, NotifyError};

/// How often and how patiently a notification is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 1 s, 2 s, 4 s and 8 s in between.
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

pub use agent_safe_http::{Sleeper, TokioSleeper};

/// The outcome of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The request announced.
    pub request_id: String,
    /// The notifier's name.
    pub notifier: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was not delivered; `None` when delivered.
    pub error: Option<String>,
}

impl Delivery {
    /// Whether the notification was delivered.
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Called with each final outcome, on the dispatcher's thread, before [`Dispatcher::flush`]
/// can return for it (the SDK writes it into the request).
pub type OutcomeHook = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Sends notifications in the background.
pub struct Dispatcher {
    notifiers: Vec<Arc<dyn Notifier>>,
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    on_outcome: Option<OutcomeHook>,
    shared: Arc<Shared>,
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("notifiers", &self.notifiers)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    deliveries: Vec<Delivery>,
}

struct Job {
    notifier: Arc<dyn Notifier>,
    request_id: String,
    /// The message, or why it could not be built.
    message: Result<Message, NotifyError>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dispatcher {
    /// A dispatcher for `notifiers`; `clock` stamps `notified_at`. The background thread starts
    /// at the first dispatch.
    pub fn new(notifiers: Vec<Arc<dyn Notifier>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            notifiers,
            retry: RetryPolicy::default(),
            sleeper: Arc::new(TokioSleeper),
            clock,
            on_outcome: None,
            shared: Arc::default(),
            queue: Mutex::new(None),
        }
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets what waits between attempts.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Calls `hook` with each final outcome.
    pub fn with_outcome_hook(mut self, hook: OutcomeHook) -> Self {
        self.on_outcome = Some(hook);
        self
    }

    /// The notifiers.
    pub fn notifiers(&self) -> &[Arc<dyn Notifier>] {
        &self.notifiers
    }

    /// Queues a notification of `request` to every notifier and returns at once. Never fails:
    /// a notifier that cannot build its message, or a background thread that cannot start, is
    /// recorded as an undelivered [`Delivery`].
    pub fn dispatch(&self, request: &ApprovalRequest) {
        if self.notifiers.is_empty() {
            return;
        }
        let now = self.clock.now();
        lock(&self.shared.state).in_flight += self.notifiers.len();
        for notifier in &self.notifiers {
            let job = Job {
                notifier: notifier.clone(),
                request_id: request.request_id.clone(),
                message: notifier.message(request, now),
            };
            if !self.enqueue(job) {
                self.finish(Delivery {
                    request_id: request.request_id.clone(),
                    notifier: notifier.name().to_owned(),
                    attempts: 0,
                    error: Some(
                        "the notification thread could not be started; not sent".to_owned(),
                    ),
                });
            }
        }
    }

    /// Waits until every queued notification is delivered or given up, at most `timeout`.
    /// Returns whether none is left.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = lock(&self.shared.state);
        while state.in_flight > 0 {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Every final outcome so far, in completion order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.state).deliveries.clone()
    }

    fn finish(&self, delivery: Delivery) {
        finish(&self.shared, self.on_outcome.as_ref(), delivery);
    }

    /// Sends `job` to the background thread, starting it if needed; whether it was queued.
    fn enqueue(&self, job: Job) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.is_none() {
            *queue = self.start();
        }
        queue.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    fn start(&self) -> Option<mpsc::UnboundedSender<Job>> {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let worker = Worker {
            retry: self.retry,
            sleeper: self.sleeper.clone(),
            on_outcome: self.on_outcome.clone(),
            shared: self.shared.clone(),
        };
        std::thread::Builder::new()
            .name("agent-safe-notify".to_owned())
            .spawn(move || worker.run(rx))
            .ok()
            .map(|_| tx)
    }
}

fn finish(shared: &Shared, on_outcome: Option<&OutcomeHook>, delivery: Delivery) {
    if let Some(hook) = on_outcome {
        hook(&delivery);
    }
    let mut state = lock(&shared.state);
    state.in_flight = state.in_flight.saturating_sub(1);
    state.deliveries.push(delivery);
    drop(state);
    shared.changed.notify_all();
}

struct Worker {
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    on_outcome: Option<OutcomeHook>,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = match runtime {
            Ok(rt) => rt,
            Err(e) => {
                // Without a runtime nothing can be sent: record every job as failed.
                while let Ok(job) = rx.try_recv() {
                    self.give_up(job, 0, format!("cannot start the notification runtime: {e}"));
                }
                return;
            }
        };
        let this = Arc::new(self);
        runtime.block_on(async move {
            let client = http_client();
            let mut tasks = tokio::task::JoinSet::new();
            while let Some(job) = rx.recv().await {
                let this = this.clone();
                let client = client.clone();
                tasks.spawn(async move { this.deliver(job, client).await });
                // Reap finished tasks so the set does not grow without bound.
                while tasks.try_join_next().is_some() {}
            }
            // The dispatcher is gone: finish what was queued.
            while tasks.join_next().await.is_some() {}
        });
    }

    fn give_up(&self, job: Job, attempts: u32, error: String) {
        finish(
            &self.shared,
            self.on_outcome.as_ref(),
            Delivery {
                request_id: job.request_id,
                notifier: job.notifier.name().to_owned(),
                attempts,
                error: Some(error),
            },
        );
    }

    async fn deliver(&self, job: Job, client: Result<reqwest::Client, String>) {
        let message = match &job.message {
            Ok(message) => message.clone(),
            Err(e) => {
                let error = e.to_string();
                return self.give_up(job, 0, error);
            }
        };
        let client = match client {
            Ok(client) => client,
            Err(e) => return self.give_up(job, 0, e),
        };
        let attempts = self.retry.attempts.max(1);
        let mut backoff = self.retry.initial_backoff;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            match send(&client, &message).await {
                Ok(()) => {
                    return finish(
                        &self.shared,
                        self.on_outcome.as_ref(),
                        Delivery {
                            request_id: job.request_id,
                            notifier: job.notifier.name().to_owned(),
                            attempts: attempt,
                            error: None,
                        },
                    );
                }
                Err(e) => last_error = e.to_string(),
            }
            if attempt < attempts {
                self.sleeper.sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(self.retry.max_backoff);
            }
        }
        self.give_up(job, attempts, last_error);
    }
}

/// The HTTP client: the workspace's one set-up (`agent-safe-http`: rustls on ring, the
/// platform's trust store, no redirects).
fn http_client() -> Result<reqwest::Client, String> {
    agent_safe_http::client().map_err(|e| format!("notifications: {e}"))
}

/// One attempt. Errors never contain the URL (it may hold a secret).
async fn send(client: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
    let mut request = client
        .post(message.url.expose().as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(message.timeout)
        .body(message.body.clone());
    for (name, value) in &message.headers {
        request = request.header(name.as_str(), value.expose().as_str());
    }
    let response = request.send().await.map_err(|e| NotifyError::Send(describe(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(NotifyError::Send(format!("the server answered HTTP {}", status.as_u16())))
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
