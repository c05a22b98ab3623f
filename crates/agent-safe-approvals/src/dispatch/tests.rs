//! Tests of the dispatcher against a real HTTP server on 127.0.0.1: delivery, retries with
//! backoff, a server that is down and comes back, timeouts, and outcome recording. Time between
//! retries is controlled by the test (an injected [`Sleeper`]), never slept.

use agent_safe_core::BoxFuture;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use agent_safe_core::{ManualClock, Params};
use agent_safe_testkit::{Reply, TestServer};
use time::macros::datetime;

use super::*;
use crate::notify::{SlackNotifier, WebhookNotifier, webhook_payload};

/// How long a test waits for an event before failing (never reached when things work).
const PATIENCE: Duration = Duration::from_secs(20);

fn request() -> ApprovalRequest {
    let mut new = crate::store_contract::new_request("api-server");
    new.params = Params::new();
    ApprovalRequest::new(new, datetime!(2026-03-01 10:00 UTC))
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(datetime!(2026-03-01 10:00 UTC)))
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A sleeper the test opens: each sleep reports its duration and waits for a permit.
#[derive(Debug)]
struct Gate {
    asked: Mutex<Sender<Duration>>,
    open: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    fn new() -> (Arc<Self>, Receiver<Duration>) {
        let (tx, rx) = channel();
        let gate = Arc::new(Self {
            asked: Mutex::new(tx),
            open: Arc::new(tokio::sync::Semaphore::new(0)),
        });
        (gate, rx)
    }

    fn release(&self) {
        self.open.add_permits(1);
    }
}

impl Sleeper for Gate {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let _ = self.asked.lock().unwrap().send(duration);
        let open = self.open.clone();
        Box::pin(async move {
            if let Ok(permit) = open.acquire().await {
                permit.forget();
            }
        })
    }
}

/// A sleeper that returns at once and remembers what it was asked.
#[derive(Debug, Default)]
struct NoWait {
    asked: Mutex<Vec<Duration>>,
}

impl Sleeper for NoWait {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.asked.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn webhook(port: u16) -> Arc<dyn Notifier> {
    Arc::new(
        WebhookNotifier::new(format!("http://127.0.0.1:{port}/hooks/approvals"))
            .unwrap()
            .with_header("X-Agent-Safe-Token", "s3cret")
            .unwrap()
            .with_timeout(Duration::from_secs(10)),
    )
}

#[test]
fn delivers_the_webhook_payload_with_custom_headers() {
    let server = TestServer::ok().unwrap();
    let dispatcher = Dispatcher::new(vec![webhook(server.addr().port())], clock());
    let r = request();
    dispatcher.dispatch(&r);
    assert!(server.wait_for(1, PATIENCE));
    let got = &server.requests()[0];
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hooks/approvals"), "{got:?}");
    assert_eq!(got.header("content-type"), Some("application/json"), "{got:?}");
    assert_eq!(got.header("x-agent-safe-token"), Some("s3cret"), "{got:?}");
    assert_eq!(got.body, webhook_payload(&r, datetime!(2026-03-01 10:00 UTC)).unwrap());
    assert!(dispatcher.flush(PATIENCE));
    let deliveries = dispatcher.deliveries();
    assert_eq!(
        deliveries,
        vec![Delivery {
            request_id: r.request_id.clone(),
            notifier: "webhook".into(),
            attempts: 1,
            error: None
        }]
    );
}

#[test]
fn server_down_then_back_the_notification_is_retried_and_delivered() {
    let mut server = TestServer::ok().unwrap();
    server.stop();
    let port = server.addr().port();
    let (gate, asked) = Gate::new();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let hook_log = recorded.clone();
    let dispatcher = Dispatcher::new(vec![webhook(port)], clock())
        .with_sleeper(gate.clone())
        .with_outcome_hook(Arc::new(move |d: &Delivery| hook_log.lock().unwrap().push(d.clone())));
    let r = request();
    // Queuing returns at once, whatever the server does.
    dispatcher.dispatch(&r);
    assert!(dispatcher.deliveries().is_empty());

    // First attempt refused: the dispatcher asks to wait 1 s before the second.
    assert_eq!(asked.recv_timeout(PATIENCE).unwrap(), Duration::from_secs(1));
    assert!(!dispatcher.flush(Duration::ZERO), "still in flight");
    // The second attempt, still down: it asks for 2 s.
    gate.release();
    assert_eq!(asked.recv_timeout(PATIENCE).unwrap(), Duration::from_secs(2));

    // The server comes back on the same port; the third attempt gets through.
    server.restart().unwrap();
    gate.release();
    assert!(server.wait_for(1, PATIENCE));
    let got = &server.requests()[0];
    assert_eq!(got.body, webhook_payload(&r, datetime!(2026-03-01 10:00 UTC)).unwrap());
    assert!(dispatcher.flush(PATIENCE));
    let delivered = Delivery {
        request_id: r.request_id.clone(),
        notifier: "webhook".into(),
        attempts: 3,
        error: None,
    };
    assert_eq!(dispatcher.deliveries(), vec![delivered.clone()]);
    assert_eq!(*recorded.lock().unwrap(), vec![delivered]);
}

#[test]
fn server_errors_are_retried_with_exponential_backoff_up_to_the_cap() {
    let statuses = [500, 503, 502, 200];
    let server = TestServer::start(move |n, _| Reply::Status(statuses[n.min(3)])).unwrap();
    let port = server.addr().port();
    let sleeper = Arc::new(NoWait::default());
    let dispatcher = Dispatcher::new(vec![webhook(port)], clock())
        .with_sleeper(sleeper.clone())
        .with_retry(RetryPolicy {
            attempts: Some(6),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        });
    dispatcher.dispatch(&request());
    assert!(dispatcher.flush(PATIENCE));
    assert_eq!(server.requests().len(), 4);
    let secs: Vec<u64> = sleeper.asked.lock().unwrap().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 3]);
    let d = &dispatcher.deliveries()[0];
    assert_eq!((d.attempts, d.error.as_deref()), (4, None));
}

#[test]
fn giving_up_records_the_last_error_without_the_url() {
    let port = closed_port();
    let slack: Arc<dyn Notifier> = Arc::new(
        SlackNotifier::new(format!("http://127.0.0.1:{port}/services/T0/B0/very-secret")).unwrap(),
    );
    let dispatcher = Dispatcher::new(vec![webhook(port), slack], clock())
        .with_sleeper(Arc::new(NoWait::default()))
        .with_retry(RetryPolicy { attempts: Some(2), ..RetryPolicy::NOTIFICATIONS });
    dispatcher.dispatch(&request());
    assert!(dispatcher.flush(PATIENCE));
    let mut deliveries = dispatcher.deliveries();
    deliveries.sort_by(|a, b| a.notifier.cmp(&b.notifier));
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        assert_eq!(d.attempts, 2);
        let error = d.error.as_deref().unwrap();
        assert!(error.starts_with("cannot connect"), "{error}");
        assert!(!error.contains("very-secret") && !error.contains("/hooks"), "{error}");
    }
    assert_eq!(deliveries[0].notifier, "slack");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Reads the request and holds the connection open, silent, until the test is over.
    let server = TestServer::start(|_, _| Reply::Hold).unwrap();
    let port = server.addr().port();
    let silent: Arc<dyn Notifier> = Arc::new(
        WebhookNotifier::new(format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .with_timeout(Duration::from_millis(200)),
    );
    let dispatcher = Dispatcher::new(vec![silent], clock())
        .with_retry(RetryPolicy { attempts: Some(1), ..RetryPolicy::NOTIFICATIONS });
    dispatcher.dispatch(&request());
    assert!(dispatcher.flush(PATIENCE));
    let d = &dispatcher.deliveries()[0];
    assert!(d.error.as_deref().is_some_and(|e| e.starts_with("timed out")), "{d:?}");
}

#[test]
fn no_notifiers_nothing_to_do() {
    let dispatcher = Dispatcher::new(Vec::new(), clock());
    dispatcher.dispatch(&request());
    assert!(dispatcher.flush(Duration::ZERO));
    assert!(dispatcher.deliveries().is_empty());
}

#[test]
fn the_https_client_builds_on_ring_and_platform_roots() {
    let client = http_client();
    assert!(client.is_ok(), "{:?}", client.err());
}

/// A sleeper that never wakes: a notification that failed once stays in flight for good.
#[derive(Debug)]
struct Never;

impl Sleeper for Never {
    fn sleep(&self, _duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
}

/// Issue #13: a long-running `serve` whose notifier is down must not grow without limit.
/// 100,000 notifications to a refused port whose retries never end: the queue, the running
/// set and the record of outcomes stay at their bounds, and everything else is dropped
/// (oldest first), counted and recorded as undelivered.
#[test]
fn a_flood_of_notifications_to_a_dead_server_stays_bounded() {
    const SENT: u64 = 100_000;
    const CAPACITY: usize = 1_000;
    const CONCURRENCY: usize = 8;
    let hooked = Arc::new(AtomicU64::new(0));
    let counter = hooked.clone();
    let dispatcher = Dispatcher::new(vec![webhook(closed_port())], clock())
        .with_sleeper(Arc::new(Never))
        .with_queue_capacity(CAPACITY)
        .with_concurrency(CONCURRENCY)
        .with_outcome_hook(Arc::new(move |d: &Delivery| {
            assert!(d.error.as_deref().is_some_and(|e| e.starts_with("dropped: ")), "{d:?}");
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    let request = request();
    let bounded = |dispatcher: &Dispatcher| {
        let stats = dispatcher.running.lock().unwrap().as_ref().unwrap().worker.stats();
        assert!(stats.waiting <= CAPACITY, "{stats:?}");
        assert!(stats.allocated <= 2 * CAPACITY, "{stats:?}");
        assert!(stats.running <= CONCURRENCY, "{stats:?}");
        let state = lock(&dispatcher.shared.state);
        assert!(state.deliveries.len() <= RECENT_DELIVERIES);
        assert!(state.deliveries.capacity() <= 2 * RECENT_DELIVERIES);
        stats
    };
    for i in 0..SENT {
        dispatcher.dispatch(&request);
        if i % 1_000 == 0 {
            bounded(&dispatcher);
        }
    }
    let stats = bounded(&dispatcher);
    // Nothing finished but what was dropped: every notification is waiting, running or dropped.
    assert_eq!(stats.dropped + (stats.waiting + stats.running) as u64, SENT);
    assert!(stats.dropped >= SENT - (CAPACITY + CONCURRENCY) as u64, "{stats:?}");
    assert_eq!(dispatcher.dropped(), stats.dropped);
    assert_eq!(hooked.load(Ordering::Relaxed), stats.dropped);
    assert_eq!(lock(&dispatcher.shared.state).in_flight, stats.waiting + stats.running);
    let deliveries = dispatcher.deliveries();
    assert_eq!(deliveries.len(), RECENT_DELIVERIES);
    assert!(deliveries.iter().all(|d| d.attempts == 0
        && d.error.as_deref()
            == Some("dropped: the notification queue was full (1000 waiting); not sent")));
    assert!(!dispatcher.flush(Duration::ZERO));
}

#[test]
fn the_record_of_outcomes_keeps_the_most_recent_ones() {
    let dispatcher = Dispatcher::new(vec![webhook(closed_port())], clock());
    for i in 0..RECENT_DELIVERIES + 5 {
        finish(
            &dispatcher.shared,
            None,
            Delivery {
                request_id: format!("req-{i}"),
                notifier: "webhook".to_owned(),
                attempts: 1,
                error: None,
            },
        );
    }
    let deliveries = dispatcher.deliveries();
    assert_eq!(deliveries.len(), RECENT_DELIVERIES);
    assert_eq!(deliveries[0].request_id, "req-5");
    assert_eq!(
        deliveries[RECENT_DELIVERIES - 1].request_id,
        format!("req-{}", RECENT_DELIVERIES + 4)
    );
}
