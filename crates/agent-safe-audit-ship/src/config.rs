//! Shipper settings: the keys of Python's `build_shippers` (SPEC §6.6) plus S3 endpoint and
//! region, retry and polling settings; the `audit_shipping:` section of `agent-safe.yaml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::Clock;
use serde::Deserialize;

use crate::{
    FilesystemShipper, RetryPolicy, Shipper, ShipperConfigError, ShippingOptions, WebhookShipper,
};

/// Default S3 key prefix (SPEC §6.6).
pub const DEFAULT_S3_PREFIX: &str = "audit-logs/";

/// Where a destination without a cursor starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Ship the whole log (a complete copy).
    #[default]
    Beginning,
    /// Ship only entries appended from now on.
    End,
}

/// Which shippers to run and how. Keys absent or `null` are not used; shippers are built in
/// the order filesystem, webhook, S3 (as in Python).
#[derive(Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ShipperConfig {
    /// Append every entry to this file.
    #[serde(default)]
    pub filesystem_path: Option<PathBuf>,
    /// POST every entry to this URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Extra webhook headers (e.g. `Authorization`); they replace default headers.
    #[serde(default)]
    pub webhook_headers: Option<BTreeMap<String, String>>,
    /// Timeout of one POST, in seconds (default 10).
    #[serde(default)]
    pub webhook_timeout: Option<f64>,
    /// Put every entry into this S3 bucket (cargo feature `s3`).
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// S3 key prefix (default `audit-logs/`).
    #[serde(default)]
    pub s3_prefix: Option<String>,
    /// S3 endpoint (moto, LocalStack, MinIO; path-style addressing).
    #[serde(default)]
    pub s3_endpoint_url: Option<String>,
    /// S3 region (default: the AWS SDK's chain).
    #[serde(default)]
    pub s3_region: Option<String>,
    /// Wait after the first failure, in seconds (default 1), doubled after each one.
    #[serde(default)]
    pub retry_initial_backoff: Option<f64>,
    /// Longest wait between attempts, in seconds (default 60).
    #[serde(default)]
    pub retry_max_backoff: Option<f64>,
    /// How often the log is checked for entries appended by other processes, in seconds
    /// (default 1; appends through the SDK wake the worker at once).
    #[serde(default)]
    pub poll_interval: Option<f64>,
    /// Where a destination without a cursor starts (default `beginning`).
    #[serde(default)]
    pub start_at: StartAt,
    /// How long a short-lived command (`check`, `runner execute`, `approval`, `rollback
    /// check`) waits, before it exits, for its entries to reach every destination, in seconds
    /// (default 5; 0: do not wait, the next process ships them).
    #[serde(default)]
    pub exit_flush_timeout: Option<f64>,
}

impl fmt::Debug for ShipperConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> =
            self.webhook_headers.iter().flat_map(|h| h.keys().map(String::as_str)).collect();
        let url = self.webhook_url.as_deref().map(agent_safe_http::webhook::redact_url);
        f.debug_struct("ShipperConfig")
            .field("filesystem_path", &self.filesystem_path)
            .field("webhook_url", &url)
            .field("webhook_headers", &header_names)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_prefix", &self.s3_prefix)
            .field("s3_endpoint_url", &self.s3_endpoint_url)
            .field("s3_region", &self.s3_region)
            .field("retry_initial_backoff", &self.retry_initial_backoff)
            .field("retry_max_backoff", &self.retry_max_backoff)
            .field("poll_interval", &self.poll_interval)
            .field("start_at", &self.start_at)
            .field("exit_flush_timeout", &self.exit_flush_timeout)
            .finish()
    }
}

fn seconds(
    setting: &'static str,
    value: Option<f64>,
    default: Duration,
) -> Result<Duration, ShipperConfigError> {
    match value {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ShipperConfigError::BadDuration { setting, value: s.to_string() }),
    }
}

/// The default of [`ShipperConfig::exit_flush_timeout`].
pub const DEFAULT_EXIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl ShipperConfig {
    /// The same destinations for a log's checkpoint log (`<log>.checkpoints`, whose records
    /// carry `event_type: checkpoint`): the filesystem copy at `<filesystem_path>.checkpoints`,
    /// the same webhook, S3 objects under `<s3_prefix>checkpoints/`; always from the first
    /// checkpoint (`start_at: beginning`), since each one is what makes a later truncation of
    /// the log detectable.
    pub fn for_checkpoints(&self) -> ShipperConfig {
        let mut config = self.clone();
        if let Some(path) = &self.filesystem_path {
            let mut name = path.as_os_str().to_owned();
            name.push(".checkpoints");
            config.filesystem_path = Some(PathBuf::from(name));
        }
        let prefix = self.s3_prefix.clone().unwrap_or_else(|| DEFAULT_S3_PREFIX.to_owned());
        config.s3_prefix = Some(format!("{prefix}checkpoints/"));
        config.start_at = StartAt::Beginning;
        config
    }

    /// How long a short-lived command waits for its entries to be shipped before it exits
    /// (`exit_flush_timeout`, default [`DEFAULT_EXIT_FLUSH_TIMEOUT`]; zero: not at all).
    pub fn exit_flush_timeout(&self) -> Result<Duration, ShipperConfigError> {
        self.exit_flush_timeout.map_or(Ok(DEFAULT_EXIT_FLUSH_TIMEOUT), |s| {
            Duration::try_from_secs_f64(s).map_err(|_| ShipperConfigError::BadDuration {
                setting: "exit_flush_timeout",
                value: s.to_string(),
            })
        })
    }

    /// Whether no shipper is configured.
    pub fn is_empty(&self) -> bool {
        self.filesystem_path.is_none() && self.webhook_url.is_none() && self.s3_bucket.is_none()
    }

    /// `filesystem_path` resolved against `base` (the config file's directory) when relative.
    pub fn resolve_paths(mut self, base: &Path) -> Self {
        self.filesystem_path =
            self.filesystem_path.map(|p| if p.is_absolute() { p } else { base.join(p) });
        self
    }

    /// The shippers described, in the order filesystem, webhook, S3; `clock` stamps the
    /// webhook's `shipped_at`.
    pub fn build_shippers(
        &self,
        clock: &Arc<dyn Clock>,
    ) -> Result<Vec<Arc<dyn Shipper>>, ShipperConfigError> {
        let mut out: Vec<Arc<dyn Shipper>> = Vec::new();
        if let Some(path) = &self.filesystem_path {
            if path.as_os_str().is_empty() {
                return Err(ShipperConfigError::Empty { setting: "filesystem_path" });
            }
            out.push(Arc::new(FilesystemShipper::new(path)));
        }
        if let Some(url) = &self.webhook_url {
            let mut webhook = WebhookShipper::new(url)?
                .with_timeout(seconds(
                    "webhook_timeout",
                    self.webhook_timeout,
                    crate::DEFAULT_WEBHOOK_TIMEOUT,
                )?)
                .with_clock(clock.clone());
            for (name, value) in self.webhook_headers.iter().flatten() {
                webhook = webhook.with_header(name, value)?;
            }
            out.push(Arc::new(webhook));
        }
        if let Some(bucket) = &self.s3_bucket {
            if bucket.is_empty() {
                return Err(ShipperConfigError::Empty { setting: "s3_bucket" });
            }
            out.push(self.s3(bucket)?);
        }
        Ok(out)
    }

    #[cfg(feature = "s3")]
    fn s3(&self, bucket: &str) -> Result<Arc<dyn Shipper>, ShipperConfigError> {
        let prefix = self.s3_prefix.clone().unwrap_or_else(|| DEFAULT_S3_PREFIX.to_owned());
        Ok(Arc::new(crate::S3Shipper::new(
            bucket,
            prefix,
            crate::S3Options {
                endpoint_url: self.s3_endpoint_url.clone().filter(|u| !u.is_empty()),
                region: self.s3_region.clone().filter(|r| !r.is_empty()),
            },
        )))
    }

    #[cfg(not(feature = "s3"))]
    fn s3(&self, _bucket: &str) -> Result<Arc<dyn Shipper>, ShipperConfigError> {
        Err(ShipperConfigError::NoS3Support)
    }

    /// The worker options these settings ask for (retry, polling, start), with `clock`.
    pub fn options(&self, clock: Arc<dyn Clock>) -> Result<ShippingOptions, ShipperConfigError> {
        let defaults = RetryPolicy::SHIPPING;
        let retry = RetryPolicy {
            attempts: defaults.attempts,
            initial_backoff: seconds(
                "retry_initial_backoff",
                self.retry_initial_backoff,
                defaults.initial_backoff,
            )?,
            max_backoff: seconds(
                "retry_max_backoff",
                self.retry_max_backoff,
                defaults.max_backoff,
            )?,
        };
        Ok(ShippingOptions {
            retry,
            poll_interval: seconds(
                "poll_interval",
                self.poll_interval,
                ShippingOptions::default().poll_interval,
            )?,
            start_at: self.start_at,
            clock,
            ..ShippingOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_safe_core::SystemClock;

    /// The SDK reads the settings from YAML; JSON (which YAML includes) is enough here.
    fn parse(json: &str) -> Result<ShipperConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[track_caller]
    fn check(json: &str, expected: Result<&[&str], &str>) {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let built = parse(json).and_then(|c| {
            let options = c.options(clock.clone()).map_err(|e| e.to_string())?;
            let shippers = c.build_shippers(&clock).map_err(|e| e.to_string())?;
            Ok((options, shippers))
        });
        match (built, expected) {
            (Ok((_, shippers)), Ok(kinds)) => {
                let got: Vec<String> =
                    shippers.iter().map(|s| format!("{} {}", s.kind(), s.destination())).collect();
                assert_eq!(got, kinds, "{json}");
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{json}: {e}"),
            (Ok((_, s)), Err(f)) => panic!("{json}: built {s:?}, expected an error with {f}"),
            (Err(e), Ok(k)) => panic!("{json}: {e}, expected {k:?}"),
        }
    }

    #[test]
    fn builds_shippers_in_python_order() {
        check("{}", Ok(&[]));
        check(
            r#"{"webhook_url": "https://siem.example/in/secret", "filesystem_path": "/var/copy.jsonl",
                "webhook_headers": {"Authorization": "Bearer x"}, "webhook_timeout": 2.5}"#,
            Ok(&["filesystem /var/copy.jsonl", "webhook https://siem.example/…"]),
        );
        // Null means absent, as in Python.
        check(
            r#"{"filesystem_path": null, "webhook_url": null, "webhook_headers": null}"#,
            Ok(&[]),
        );
        check(r#"{"webhook_url": "file:///etc/passwd"}"#, Err("webhook_url: `file://"));
        check(
            r#"{"webhook_url": "http://x", "webhook_timeout": 0}"#,
            Err("webhook_timeout: must be a positive"),
        );
        check(
            r#"{"retry_max_backoff": -1}"#,
            Err("retry_max_backoff: must be a positive number of seconds, got -1"),
        );
        check(
            r#"{"webhook_url": "http://x", "webhook_headers": {"a b": "c"}}"#,
            Err("`a b` is not a valid"),
        );
        check(r#"{"filesystem_path": ""}"#, Err("filesystem_path: must not be empty"));
        check(r#"{"webhok_url": "http://x"}"#, Err("unknown field `webhok_url`"));
        check(r#"{"start_at": "middle"}"#, Err("unknown variant `middle`"));
    }

    #[cfg(feature = "s3")]
    #[test]
    fn builds_the_s3_shipper() {
        check(
            r#"{"s3_bucket": "audit", "s3_endpoint_url": "http://127.0.0.1:5000"}"#,
            Ok(&["s3 s3://audit/audit-logs/ at http://127.0.0.1:5000"]),
        );
        check(r#"{"s3_bucket": "audit", "s3_prefix": "p/"}"#, Ok(&["s3 s3://audit/p/"]));
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn s3_needs_the_feature() {
        check(
            r#"{"s3_bucket": "audit"}"#,
            Err(
                "no S3 support: install the CLI with `cargo install agent-safe-cli --features aws`",
            ),
        );
    }

    #[test]
    fn options_and_debug() {
        let c = parse(
            r#"{"webhook_url": "https://h.example/secret", "webhook_headers": {"Authorization": "secret"},
                "retry_initial_backoff": 0.5, "retry_max_backoff": 10, "poll_interval": 0.25, "start_at": "end"}"#,
        )
        .unwrap();
        let o = c.options(Arc::new(SystemClock)).unwrap();
        assert_eq!(
            o.retry,
            RetryPolicy {
                attempts: None,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(10)
            }
        );
        assert_eq!(o.poll_interval, Duration::from_millis(250));
        assert_eq!(o.start_at, StartAt::End);
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("Authorization"), "{debug}");
        assert_eq!(c.clone().resolve_paths(Path::new("/etc/agent-safe")).filesystem_path, None);
        let rel = ShipperConfig { filesystem_path: Some("copy.jsonl".into()), ..c }
            .resolve_paths(Path::new("/etc/agent-safe"));
        assert_eq!(rel.filesystem_path, Some(PathBuf::from("/etc/agent-safe/copy.jsonl")));
    }

    #[test]
    fn checkpoints_go_next_to_the_logs_copies() {
        let config = parse(
            r#"{"filesystem_path": "/copy/audit.jsonl", "webhook_url": "http://127.0.0.1:9/h",
                "s3_bucket": "b", "start_at": "end"}"#,
        )
        .unwrap();
        let checkpoints = config.for_checkpoints();
        assert_eq!(
            checkpoints.filesystem_path.as_deref(),
            Some(Path::new("/copy/audit.jsonl.checkpoints"))
        );
        assert_eq!(checkpoints.webhook_url, config.webhook_url);
        assert_eq!(checkpoints.s3_prefix.as_deref(), Some("audit-logs/checkpoints/"));
        assert_eq!(checkpoints.start_at, StartAt::Beginning);
        let custom = parse(r#"{"s3_bucket": "b", "s3_prefix": "p/"}"#).unwrap();
        assert_eq!(custom.for_checkpoints().s3_prefix.as_deref(), Some("p/checkpoints/"));
    }
}
