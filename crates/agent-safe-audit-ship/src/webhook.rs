//! The webhook shipper: one HTTP POST per entry, body
//! `{"event": <entry>, "shipped_at": <ISO time, +00:00>}` (canonical JSON, as Python's
//! `WebhookShipper` sends it).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::{BoxFuture, Clock, Secret, SystemClock};
use agent_safe_http::webhook;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::{ShipEntry, ShipError, Shipped, Shipper, ShipperConfigError};

/// Default timeout of one POST (SPEC §6.6: 10 s).
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs each entry to a URL.
///
/// Headers: `Content-Type: application/json`, `Idempotency-Key: <event_id>` (ours; receivers
/// should drop an `event_id` they already have, since delivery is at-least-once), then the
/// custom headers, which replace those of the same name. A 2xx answer is a delivery;
/// anything else (redirects included: they are not followed), a connection error or a
/// timeout is a failure, retried by the worker. The URL and header values are secrets:
/// `Debug`, errors and the status show only `scheme://host:port`.
#[derive(Clone)]
pub struct WebhookShipper {
    url: Secret<String>,
    shown: String,
    headers: Vec<(HeaderName, Secret<HeaderValue>)>,
    timeout: Duration,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WebhookShipper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookShipper")
            .field("url", &self.shown)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookShipper {
    /// A shipper POSTing to `url` (http or https), 10 s timeout, the system clock for
    /// `shipped_at`.
    pub fn new(url: &str) -> Result<Self, ShipperConfigError> {
        webhook::parse_url("webhook_url", url)?;
        Ok(Self {
            url: Secret::new(url.to_owned()),
            shown: webhook::redact_url(url),
            headers: Vec::new(),
            timeout: DEFAULT_WEBHOOK_TIMEOUT,
            client: agent_safe_http::client()?,
            clock: Arc::new(SystemClock),
        })
    }

    /// Adds a header sent with every POST (e.g. `Authorization`); replaces a default header
    /// of the same name.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, ShipperConfigError> {
        let (name, value) = webhook::header(name, value)?;
        self.headers.push((name, Secret::new(value)));
        Ok(self)
    }

    /// Sets the timeout of one POST.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the clock that stamps `shipped_at`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The body POSTed for `entry`: canonical JSON of `{"event": …, "shipped_at": …}`.
    pub fn body(&self, entry: &ShipEntry) -> String {
        let stamp = agent_safe_core::timefmt::format_utc(self.clock.now());
        let stamp = stamp.strip_suffix('Z').unwrap_or(&stamp);
        format!("{{\"event\": {}, \"shipped_at\": \"{stamp}+00:00\"}}", entry.json())
    }

    fn headers(&self, entry: &ShipEntry) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::from_str(entry.event_id()) {
            map.insert(HeaderName::from_static("idempotency-key"), id);
        }
        for (name, _) in &self.headers {
            map.remove(name);
        }
        for (name, value) in &self.headers {
            map.append(name.clone(), value.expose().clone());
        }
        map
    }

    async fn post(&self, entry: &ShipEntry) -> Result<(), ShipError> {
        let response = self
            .client
            .post(self.url.expose().as_str())
            .headers(self.headers(entry))
            .timeout(self.timeout)
            .body(self.body(entry))
            .send()
            .await
            .map_err(|e| ShipError::Http(self.describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(ShipError::Http(format!("{} answered HTTP {}", self.shown, status.as_u16())))
        }
    }

    /// A reqwest error without its URL.
    fn describe(&self, e: &reqwest::Error) -> String {
        use std::error::Error as _;
        let mut text = if e.is_timeout() {
            format!("{}: no answer within {:?}", self.shown, self.timeout)
        } else if e.is_connect() {
            format!("cannot connect to {}", self.shown)
        } else {
            format!("request to {} failed", self.shown)
        };
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

impl Shipper for WebhookShipper {
    fn kind(&self) -> &str {
        "webhook"
    }

    fn destination(&self) -> String {
        self.shown.clone()
    }

    fn destination_id(&self) -> String {
        self.url.expose().clone()
    }

    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            for (i, entry) in entries.iter().enumerate() {
                if let Err(e) = self.post(entry).await {
                    return Shipped::failed(i, e);
                }
            }
            Shipped::all(entries.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_safe_core::ManualClock;
    use time::macros::datetime;

    #[track_caller]
    fn check_url(url: &str, expected: Result<&str, &str>) {
        match (WebhookShipper::new(url), expected) {
            (Ok(s), Ok(shown)) => {
                assert_eq!(s.destination(), shown);
                assert_eq!(s.destination_id(), url);
                assert!(!format!("{s:?}").contains("secret"), "{s:?}");
            }
            (Err(e), Err(message)) => assert_eq!(e.to_string(), message),
            (got, expected) => panic!("{url}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn urls_are_checked_and_never_shown_in_full() {
        check_url("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080"));
        check_url("https://siem.example/hooks/secret?token=secret", Ok("https://siem.example/…"));
        check_url(
            "ftp://siem.example/secret",
            Err("webhook_url: `ftp://siem.example/…` is not an http:// or https:// URL"),
        );
        check_url(
            "not a url",
            Err("webhook_url: `[unparsable URL]` is not an http:// or https:// URL"),
        );
    }

    #[test]
    fn body_is_canonical_json_with_a_python_isoformat_time() {
        let entry = ShipEntry::parse(
            r#"{"entry_hash": "h", "event_id": "evt-1", "timestamp": "2026-02-24T12:00:00Z"}"#,
            1,
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(datetime!(2026-02-24 12:00:01.25 UTC)));
        let shipper = WebhookShipper::new("http://127.0.0.1:9").unwrap().with_clock(clock.clone());
        let body = shipper.body(&entry);
        assert_eq!(
            body,
            r#"{"event": {"entry_hash": "h", "event_id": "evt-1", "timestamp": "2026-02-24T12:00:00Z"}, "shipped_at": "2026-02-24T12:00:01.250000+00:00"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(agent_safe_audit::canonical::to_string(&value), body);
        clock.set(datetime!(2026-02-24 12:00 UTC));
        assert!(shipper.body(&entry).ends_with(r#""shipped_at": "2026-02-24T12:00:00+00:00"}"#));
    }

    #[test]
    fn custom_headers_replace_the_defaults() {
        let entry = ShipEntry::parse(
            r#"{"entry_hash": "h", "event_id": "evt-1", "timestamp": "2026-02-24T12:00:00Z"}"#,
            1,
        )
        .unwrap();
        let shipper = WebhookShipper::new("http://127.0.0.1:9")
            .unwrap()
            .with_header("Content-Type", "application/x-ndjson")
            .unwrap()
            .with_header("Authorization", "Bearer secret")
            .unwrap();
        let headers = shipper.headers(&entry);
        assert_eq!(headers.get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(headers[CONTENT_TYPE], "application/x-ndjson");
        assert_eq!(headers["idempotency-key"], "evt-1");
        assert_eq!(headers["authorization"], "Bearer secret");
        assert!(!format!("{shipper:?}").contains("secret"));
        let err = WebhookShipper::new("http://127.0.0.1:9")
            .unwrap()
            .with_header("Bad Name", "x")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "webhook_headers: `Bad Name` is not a valid HTTP header name or value"
        );
    }
}
