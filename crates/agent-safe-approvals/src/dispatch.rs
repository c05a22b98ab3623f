//! Sending notifications off the decision path: jobs on the workspace's one background
//! delivery worker (`agent_safe_http::Worker`: a thread with its own tokio runtime), a timeout
//! per attempt, retries with exponential backoff ([`RetryPolicy`]), outcomes recorded.
//!
//! [`Dispatcher::dispatch`] only queues the request and returns; nothing it does can fail or
//! block a decision. [`Dispatcher::flush`] waits (bounded) for queued deliveries, e.g. before a
//! short-lived CLI process exits.
//!
//! Everything it holds is bounded, so a long-running `serve` does not grow: at most
//! [`DEFAULT_QUEUE_CAPACITY`] notifications wait and [`DEFAULT_CONCURRENCY`] are sent at once;
//! when the queue is full the **oldest** waiting notification is dropped, recorded as an
//! undelivered [`Delivery`] and counted ([`Dispatcher::dropped`]); [`Dispatcher::deliveries`]
//! keeps the last [`RECENT_DELIVERIES`] outcomes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use agent_safe_core::{BoxFuture, Clock};
use agent_safe_http::{Job, OnDrop, Worker, WorkerOptions, WorkerStartError};

use crate::model::ApprovalRequest;
use crate::notify::{Message, Notifier, NotifyError};

pub use agent_safe_http::{RetryPolicy, Sleeper, TokioSleeper};

/// Notifications waiting to be sent, at most (see [`Dispatcher::with_queue_capacity`]).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Notifications being sent at once, at most (see [`Dispatcher::with_concurrency`]).
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Final outcomes [`Dispatcher::deliveries`] keeps (the most recent ones).
pub const RECENT_DELIVERIES: usize = 1_000;

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
    queue_capacity: usize,
    concurrency: usize,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

/// The started background worker and what its jobs share.
struct Running {
    worker: Worker<Notification>,
    context: Arc<Context>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("notifiers", &self.notifiers)
            .field("retry", &self.retry)
            .field("queue_capacity", &self.queue_capacity)
            .field("concurrency", &self.concurrency)
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
    /// The last [`RECENT_DELIVERIES`] outcomes, oldest first.
    deliveries: VecDeque<Delivery>,
}

/// What every job of one dispatcher shares.
struct Context {
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    on_outcome: Option<OutcomeHook>,
    shared: Arc<Shared>,
    /// Built at the first send.
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// One notification to send: the worker's job.
struct Notification {
    notifier: Arc<dyn Notifier>,
    request_id: String,
    /// The message, or why it could not be built.
    message: Result<Message, NotifyError>,
    context: Arc<Context>,
}

impl Notification {
    fn undelivered(self, attempts: u32, error: String) {
        finish(
            &self.context.shared,
            self.context.on_outcome.as_ref(),
            Delivery {
                request_id: self.request_id,
                notifier: self.notifier.name().to_owned(),
                attempts,
                error: Some(error),
            },
        );
    }
}

impl Job for Notification {
    fn run(self) -> BoxFuture<'static, ()> {
        Box::pin(self.deliver())
    }
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
            retry: RetryPolicy::NOTIFICATIONS,
            sleeper: Arc::new(TokioSleeper),
            clock,
            on_outcome: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            concurrency: DEFAULT_CONCURRENCY,
            shared: Arc::default(),
            running: Mutex::new(None),
        }
    }

    /// Sets the retry policy (default [`RetryPolicy::NOTIFICATIONS`]).
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

    /// Sets how many notifications may wait (default [`DEFAULT_QUEUE_CAPACITY`]; at least 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets how many notifications are sent at once (default [`DEFAULT_CONCURRENCY`]; at
    /// least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The notifiers.
    pub fn notifiers(&self) -> &[Arc<dyn Notifier>] {
        &self.notifiers
    }

    /// Queues a notification of `request` to every notifier and returns at once. Never fails:
    /// a notifier that cannot build its message, a background thread that cannot start, or a
    /// notification dropped from a full queue is recorded as an undelivered [`Delivery`].
    pub fn dispatch(&self, request: &ApprovalRequest) {
        if self.notifiers.is_empty() {
            return;
        }
        let now = self.clock.now();
        lock(&self.shared.state).in_flight += self.notifiers.len();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_none() {
            match self.start() {
                Ok(started) => *running = Some(started),
                Err(error) => {
                    drop(running);
                    for notifier in &self.notifiers {
                        self.undelivered(request, notifier, error.clone());
                    }
                    return;
                }
            }
        }
        let mut evicted = Vec::new();
        if let Some(r) = running.as_ref() {
            for notifier in &self.notifiers {
                let job = Notification {
                    notifier: notifier.clone(),
                    request_id: request.request_id.clone(),
                    message: notifier.message(request, now),
                    context: r.context.clone(),
                };
                evicted.extend(r.worker.submit(job));
            }
        }
        drop(running);
        for oldest in evicted {
            let error = format!(
                "dropped: the notification queue was full ({} waiting); not sent",
                self.queue_capacity
            );
            oldest.undelivered(0, error);
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

    /// The most recent final outcomes (at most [`RECENT_DELIVERIES`]), in completion order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.state).deliveries.iter().cloned().collect()
    }

    /// Notifications dropped so far because the queue was full (the oldest waiting one is
    /// dropped to make room for a new one).
    pub fn dropped(&self) -> u64 {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |r| r.worker.dropped())
    }

    /// Starts the background worker; the error recorded for each notification when it cannot.
    fn start(&self) -> Result<Running, String> {
        let options = WorkerOptions {
            capacity: self.queue_capacity,
            concurrency: self.concurrency,
            on_drop: OnDrop::Finish,
            ..WorkerOptions::new("agent-safe-notify")
        };
        let worker = Worker::start(options).map_err(|e| match e {
            WorkerStartError::Runtime(e) => format!("cannot start the notification runtime: {e}"),
            _ => "the notification thread could not be started; not sent".to_owned(),
        })?;
        let context = Arc::new(Context {
            retry: self.retry,
            sleeper: self.sleeper.clone(),
            on_outcome: self.on_outcome.clone(),
            shared: self.shared.clone(),
            client: OnceLock::new(),
        });
        Ok(Running { worker, context })
    }

    fn undelivered(&self, request: &ApprovalRequest, notifier: &Arc<dyn Notifier>, error: String) {
        finish(
            &self.shared,
            self.on_outcome.as_ref(),
            Delivery {
                request_id: request.request_id.clone(),
                notifier: notifier.name().to_owned(),
                attempts: 0,
                error: Some(error),
            },
        );
    }
}

fn finish(shared: &Shared, on_outcome: Option<&OutcomeHook>, delivery: Delivery) {
    if let Some(hook) = on_outcome {
        hook(&delivery);
    }
    let mut state = lock(&shared.state);
    state.in_flight = state.in_flight.saturating_sub(1);
    if state.deliveries.len() >= RECENT_DELIVERIES {
        state.deliveries.pop_front();
    }
    state.deliveries.push_back(delivery);
    drop(state);
    shared.changed.notify_all();
}

impl Notification {
    async fn deliver(self) {
        let message = match &self.message {
            Ok(message) => message.clone(),
            Err(e) => {
                let error = e.to_string();
                return self.undelivered(0, error);
            }
        };
        let client = match self.context.client.get_or_init(http_client) {
            Ok(client) => client.clone(),
            Err(e) => {
                let error = e.clone();
                return self.undelivered(0, error);
            }
        };
        let context = self.context.clone();
        let (outcome, attempts) =
            context.retry.run(&*context.sleeper, |_| send(&client, &message)).await;
        match outcome {
            Ok(()) => finish(
                &context.shared,
                context.on_outcome.as_ref(),
                Delivery {
                    request_id: self.request_id,
                    notifier: self.notifier.name().to_owned(),
                    attempts,
                    error: None,
                },
            ),
            Err(e) => self.undelivered(attempts, e.to_string()),
        }
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
