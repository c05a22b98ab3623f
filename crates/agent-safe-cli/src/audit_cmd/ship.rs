//! `agent-safe audit ship`: replays a log into a file, a webhook or S3, resuming from the
//! destination's cursor.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe::shipping::{
    DEFAULT_S3_PREFIX, ReplayOptions, RetryPolicy, ShipLogError, ShipperConfig, replay_from,
};
use agent_safe_audit::AuditError;
use serde_json::json;

use crate::output::line;
use crate::{Cli, exit};

/// The backends of `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// Append to another file (exactly once).
    Filesystem,
    /// POST each event to a URL.
    Webhook,
    /// One S3 object per event.
    S3,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Filesystem => "filesystem",
            Backend::Webhook => "webhook",
            Backend::S3 => "s3",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Progress is kept in a cursor file next to the log (<log>.ship-<backend>-<id>.cursor), or with
`state: {backend: postgres}` in the database (table ship_cursors), so a second run ships only
what was appended since. Webhook and S3 are at-least-once (the event_id is the idempotency
key); the filesystem backend never appends an event twice. A database log is shipped to a
destination by one process at a time: while `serve` ships there, this command says so and
exits 1.

Exit codes:
  0  everything shipped (or nothing to ship)
  1  an event could not be shipped (after --attempts tries), or the log cannot be read
  2  usage or configuration error")]
pub(crate) struct Args {
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    log: Option<PathBuf>,
    /// Where to ship.
    #[arg(long, value_enum)]
    backend: Backend,
    /// Destination file (filesystem backend).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Webhook URL (webhook backend).
    #[arg(long)]
    url: Option<String>,
    /// Extra webhook header, e.g. `Authorization=Bearer …` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Webhook timeout per request, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// S3 bucket (s3 backend).
    #[arg(long)]
    bucket: Option<String>,
    /// S3 key prefix.
    #[arg(long, default_value = DEFAULT_S3_PREFIX)]
    prefix: String,
    /// S3 endpoint URL (moto, LocalStack, MinIO; path-style addressing).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// S3 region [default: the AWS SDK's chain].
    #[arg(long)]
    region: Option<String>,
    /// Ship from the first event, ignoring the cursor (the filesystem backend still skips
    /// what its file holds).
    #[arg(long)]
    from_start: bool,
    /// Attempts per event before giving up (backoff 1 s, 2 s, …).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    attempts: u32,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

fn usage(message: &str) -> anyhow::Result<u8> {
    crate::output::error(message);
    Ok(exit::USAGE)
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let log = crate::audit_path::log_source(cli, args.log.as_ref())?;
    let mut config = ShipperConfig::default();
    match args.backend {
        Backend::Filesystem => match &args.path {
            Some(p) => config.filesystem_path = Some(p.clone()),
            None => return usage("--path is required for the filesystem backend"),
        },
        Backend::Webhook => {
            let Some(url) = &args.url else {
                return usage("--url is required for the webhook backend");
            };
            config.webhook_url = Some(url.clone());
            config.webhook_timeout = Some(args.timeout);
            let mut headers = std::collections::BTreeMap::new();
            for h in &args.headers {
                let Some((name, value)) = h.split_once('=') else {
                    return usage(&format!("--header must be NAME=VALUE, got `{h}`"));
                };
                headers.insert(name.trim().to_owned(), value.to_owned());
            }
            config.webhook_headers = Some(headers);
        }
        Backend::S3 => {
            let Some(bucket) = &args.bucket else {
                return usage("--bucket is required for the s3 backend");
            };
            config.s3_bucket = Some(bucket.clone());
            config.s3_prefix = Some(args.prefix.clone());
            config.s3_endpoint_url = args.endpoint_url.clone();
            config.s3_region = args.region.clone();
        }
    }
    let clock: Arc<dyn agent_safe::Clock> = Arc::new(agent_safe::SystemClock);
    let shipper = match config.build_shippers(&clock) {
        Ok(mut shippers) if shippers.len() == 1 => shippers.remove(0),
        Ok(_) => anyhow::bail!("expected one shipper for `--backend {}`", args.backend.name()),
        Err(e) => return usage(&e.to_string()),
    };
    let options = ReplayOptions {
        from_start: args.from_start,
        retry: RetryPolicy { attempts: Some(args.attempts), ..RetryPolicy::REPLAY },
        clock,
        ..ReplayOptions::default()
    };
    let source = log.ship_source();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = match runtime.block_on(replay_from(&*source, shipper, &options)) {
        Ok(report) => report,
        Err(ShipLogError::Audit(AuditError::NotFound { path })) => {
            return super::not_found(&path, args.json_output);
        }
        Err(e) => return Err(e.into()),
    };
    let backend = args.backend.name();
    if args.json_output {
        crate::output::json(&json!({
            "log": log.name(),
            "backend": backend,
            "destination": report.destination,
            "cursor": report.cursor,
            "shipped": report.shipped,
            "skipped": report.skipped,
            "position": report.position.as_ref().map(|p| json!({
                "line": p.line, "seq": p.seq, "entry_hash": p.entry_hash,
            })),
            "error": report.error.as_ref().map(ToString::to_string),
        }))?;
    } else {
        let errors = usize::from(report.error.is_some());
        if report.shipped == 0 && report.skipped == 0 && errors == 0 {
            match &report.position {
                None => line("No events to ship."),
                Some(p) => line(&format!(
                    "No new events to ship: everything up to line {} is at {}.",
                    p.line, report.destination
                )),
            }
        } else {
            let mut text = format!("Shipped {} event(s)", report.shipped);
            if errors > 0 {
                text.push_str(&format!(", {errors} error(s)"));
            }
            text.push_str(&format!(" via {backend}"));
            if report.skipped > 0 {
                text.push_str(&format!(" ({} already there)", report.skipped));
            }
            text.push('.');
            line(&text);
        }
        if let Some(e) = &report.error {
            crate::output::error(&e.to_string());
        }
    }
    Ok(if report.error.is_some() { exit::DENY_OR_FAILED } else { exit::OK })
}
