//! Notifiers: what is sent to a webhook or to Slack when a request is created (SPEC §10).
//!
//! A notifier only builds the HTTP message; the [`Dispatcher`](crate::Dispatcher) sends it off
//! the decision path, with a timeout and retries.

use agent_safe_http::webhook;
use agent_safe_http::webhook::redact_url;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::model::ApprovalRequest;

/// Default timeout of one delivery attempt (SPEC §10: 10 s).
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a notifier could not be built or a notification not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A webhook URL or a header cannot be used.
    #[error(transparent)]
    Webhook(#[from] agent_safe_http::WebhookConfigError),
    /// A timeout is zero, negative or not a number.
    #[error("{setting}: the timeout must be a positive number of seconds, got {value}")]
    BadTimeout {
        /// The setting.
        setting: &'static str,
        /// The value.
        value: String,
    },
    /// The payload could not be built.
    #[error("cannot build the {notifier} payload: {detail}")]
    Payload {
        /// The notifier.
        notifier: String,
        /// What went wrong.
        detail: String,
    },
    /// Sending failed (connection, timeout, TLS, non-2xx status).
    #[error("{0}")]
    Send(String),
}

/// One HTTP POST to make. The URL and header values are secret (Slack webhook URLs and
/// `Authorization` headers are credentials): `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Where to POST.
    pub url: Secret<String>,
    /// Extra headers (`Content-Type: application/json` is always sent).
    pub headers: Vec<(String, Secret<String>)>,
    /// The JSON body.
    pub body: String,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Message")
            .field("url", &redact_url(self.url.expose()))
            .field("headers", &names)
            .field("body", &self.body)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Something that tells approvers about a new request.
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name (`webhook`, `slack`) used in delivery records.
    fn name(&self) -> &str;

    /// The message announcing `request`, sent at `notified_at`.
    fn message(
        &self,
        request: &ApprovalRequest,
        notified_at: OffsetDateTime,
    ) -> Result<Message, NotifyError>;
}

/// POSTs `{"notified_at": …, "request": …, "type": "approval_request"}` (sorted keys) to a URL.
#[derive(Clone)]
pub struct WebhookNotifier {
    url: Secret<String>,
    headers: Vec<(String, Secret<String>)>,
    timeout: Duration,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookNotifier")
            .field("url", &redact_url(self.url.expose()))
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookNotifier {
    /// A webhook notifier for `url` (http or https), no extra headers, 10 s timeout.
    pub fn new(url: impl Into<String>) -> Result<Self, NotifyError> {
        let url = url.into();
        webhook::parse_url("webhook_url", &url)?;
        Ok(Self { url: Secret::new(url), headers: Vec::new(), timeout: DEFAULT_NOTIFY_TIMEOUT })
    }

    /// Adds a header sent with every notification (e.g. `Authorization`).
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, NotifyError> {
        let name = name.into();
        let value = value.into();
        webhook::header(&name, &value)?;
        self.headers.push((name, Secret::new(value)));
        Ok(self)
    }

    /// Sets the timeout of one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        "webhook"
    }

    fn message(
        &self,
        request: &ApprovalRequest,
        notified_at: OffsetDateTime,
    ) -> Result<Message, NotifyError> {
        Ok(Message {
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: webhook_payload(request, notified_at).map_err(|detail| NotifyError::Payload {
                notifier: "webhook".to_owned(),
                detail,
            })?,
            timeout: self.timeout,
        })
    }
}

/// POSTs `{"text": …, "channel"?: …}` to a Slack incoming-webhook URL.
#[derive(Clone)]
pub struct SlackNotifier {
    url: Secret<String>,
    channel: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("url", &redact_url(self.url.expose()))
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SlackNotifier {
    /// A Slack notifier for an incoming-webhook URL, 10 s timeout.
    pub fn new(webhook_url: impl Into<String>) -> Result<Self, NotifyError> {
        let url = webhook_url.into();
        webhook::parse_url("slack_webhook_url", &url)?;
        Ok(Self { url: Secret::new(url), channel: None, timeout: DEFAULT_NOTIFY_TIMEOUT })
    }

    /// Posts to `channel` instead of the webhook's default.
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Sets the timeout of one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        "slack"
    }

    fn message(
        &self,
        request: &ApprovalRequest,
        _notified_at: OffsetDateTime,
    ) -> Result<Message, NotifyError> {
        let mut body = serde_json::Map::new();
        body.insert("text".to_owned(), Value::String(slack_text(request)));
        if let Some(channel) = &self.channel {
            body.insert("channel".to_owned(), Value::String(channel.clone()));
        }
        Ok(Message {
            url: self.url.clone(),
            headers: Vec::new(),
            body: Value::Object(body).to_string(),
            timeout: self.timeout,
        })
    }
}

/// The webhook body: `{"notified_at": <isoformat>, "request": <request>, "type":
/// "approval_request"}` as canonical JSON (sorted keys, Python separators). The request is the
/// store's dump without the ticket (a bearer credential) and the notification records.
pub fn webhook_payload(
    request: &ApprovalRequest,
    notified_at: OffsetDateTime,
) -> Result<String, String> {
    let mut dump = serde_json::to_value(request).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut dump {
        map.remove("ticket");
        map.remove("notifications");
    }
    let payload = json!({
        "type": "approval_request",
        "request": dump,
        "notified_at": isoformat(notified_at),
    });
    Ok(agent_safe_tickets::canonical_json(&payload))
}

/// The Slack text (mrkdwn): a bold title, the request's facts, and how to resolve it.
pub fn slack_text(request: &ApprovalRequest) -> String {
    let mut lines = vec![
        "*Approval Required*".to_owned(),
        format!("*Action:* `{}`", request.action),
        format!("*Target:* `{}`", request.target),
        format!("*Caller:* `{}`", request.caller),
        format!("*Risk:* {}", request.effective_risk),
        format!("*Reason:* {}", request.reason),
        format!("*Request ID:* `{}`", request.request_id),
        format!("*Expires:* {}", isoformat(request.expires_at)),
    ];
    if request.required_approvals > 1 || !request.approver_roles.is_empty() {
        let roles = if request.approver_roles.is_empty() {
            String::new()
        } else {
            format!(" (roles: {})", request.approver_roles.join(", "))
        };
        lines.push(format!("*Approvals needed:* {}{roles}", request.required_approvals));
    }
    lines.push(String::new());
    lines.push(format!(
        "Approve: `agent-safe approval approve {id}`  Deny: `agent-safe approval deny {id}`",
        id = request.request_id
    ));
    lines.join("\n")
}

/// Python's `datetime.isoformat()` of an aware UTC time: `2026-03-01T11:00:00+00:00`, with
/// `.ffffff` when there are microseconds.
pub fn isoformat(t: OffsetDateTime) -> String {
    let z = agent_safe_core::timefmt::format_utc(t);
    match z.strip_suffix('Z') {
        Some(base) => format!("{base}+00:00"),
        None => z,
    }
}

/// Notifier settings, with the keys of the Python `build_notifiers` dict. `Debug` hides the
/// URLs' paths and the header values.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    /// Generic webhook URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Extra webhook headers.
    #[serde(default)]
    pub webhook_headers: BTreeMap<String, String>,
    /// Webhook timeout in seconds (default 10).
    #[serde(default)]
    pub webhook_timeout: Option<f64>,
    /// Slack incoming-webhook URL.
    #[serde(default)]
    pub slack_webhook_url: Option<String>,
    /// Slack channel override.
    #[serde(default)]
    pub slack_channel: Option<String>,
}

impl fmt::Debug for NotifierSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.webhook_headers.keys().map(String::as_str).collect();
        f.debug_struct("NotifierSettings")
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field("webhook_headers", &names)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("slack_webhook_url", &self.slack_webhook_url.as_deref().map(redact_url))
            .field("slack_channel", &self.slack_channel)
            .finish()
    }
}

/// Builds the notifiers the settings describe (webhook first, then Slack).
pub fn build_notifiers(settings: &NotifierSettings) -> Result<Vec<Arc<dyn Notifier>>, NotifyError> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = settings.webhook_url.as_deref().filter(|u| !u.is_empty()) {
        let mut webhook = WebhookNotifier::new(url)?;
        for (name, value) in &settings.webhook_headers {
            webhook = webhook.with_header(name, value)?;
        }
        if let Some(seconds) = settings.webhook_timeout {
            let timeout = Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| NotifyError::BadTimeout {
                    setting: "webhook_timeout",
                    value: seconds.to_string(),
                })?;
            webhook = webhook.with_timeout(timeout);
        }
        out.push(Arc::new(webhook));
    }
    if let Some(url) = settings.slack_webhook_url.as_deref().filter(|u| !u.is_empty()) {
        let mut slack = SlackNotifier::new(url)?;
        if let Some(channel) = settings.slack_channel.as_deref().filter(|c| !c.is_empty()) {
            slack = slack.with_channel(channel);
        }
        out.push(Arc::new(slack));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
