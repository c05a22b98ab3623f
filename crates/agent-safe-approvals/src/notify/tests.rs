//! Tests of the notifier payloads and settings.

use serde_json::json;
use time::macros::datetime;

use super::*;

fn request() -> ApprovalRequest {
    let mut r = ApprovalRequest::new(
        crate::store_contract::new_request("api-server"),
        datetime!(2026-03-01 10:00 UTC),
    );
    r.request_id = "apr-0123456789ab".into();
    r
}

#[test]
fn webhook_payload_is_sorted_key_json_without_the_ticket() {
    let r = request();
    let body = webhook_payload(&r, datetime!(2026-03-01 10:00:00.25 UTC)).unwrap();
    assert!(body.starts_with(r#"{"notified_at": "2026-03-01T10:00:00.250000+00:00", "request": {"action": "restart-deployment", "approvals": [], "#), "{body}");
    assert!(body.ends_with(r#", "type": "approval_request"}"#), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["request"]["request_id"], "apr-0123456789ab");
    assert_eq!(v["request"]["params"], json!({"namespace": "prod", "deployment": "api-server"}));
    assert_eq!(v["request"]["expires_at"], "2026-03-01T11:00:00Z");
    for gone in ["ticket", "notifications"] {
        assert!(v["request"].get(gone).is_none(), "{gone} must not be sent");
    }
}

#[test]
fn slack_text_lists_the_facts_and_the_commands() {
    let mut r = request();
    assert_eq!(
        slack_text(&r),
        "*Approval Required*\n\
         *Action:* `restart-deployment`\n\
         *Target:* `prod/api-server`\n\
         *Caller:* `deploy-bot`\n\
         *Risk:* critical\n\
         *Reason:* Production changes need approval\n\
         *Request ID:* `apr-0123456789ab`\n\
         *Expires:* 2026-03-01T11:00:00+00:00\n\
         \n\
         Approve: `agent-safe approval approve apr-0123456789ab`  \
         Deny: `agent-safe approval deny apr-0123456789ab`"
    );
    r.required_approvals = 2;
    r.approver_roles = vec!["sre".into(), "dba".into()];
    assert!(slack_text(&r).contains("\n*Approvals needed:* 2 (roles: sre, dba)\n"));
}

#[test]
fn slack_message_has_text_and_optional_channel() {
    let r = request();
    let at = datetime!(2026-03-01 10:00 UTC);
    let plain = SlackNotifier::new("https://hooks.slack.com/services/T0/B0/secret").unwrap();
    let m = plain.message(&r, at).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(v["text"], slack_text(&r));
    assert!(v.get("channel").is_none());
    let m = plain.with_channel("#ops").message(&r, at).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(v["channel"], "#ops");
    assert_eq!(m.timeout, DEFAULT_NOTIFY_TIMEOUT);
}

#[test]
fn urls_and_header_values_never_show_in_debug_or_errors() {
    let slack = SlackNotifier::new("https://hooks.slack.com/services/T0/B0/secret").unwrap();
    let webhook = WebhookNotifier::new("https://user:pw@example.com:8443/hook?token=secret")
        .unwrap()
        .with_header("Authorization", "Bearer secret")
        .unwrap();
    let m = webhook.message(&request(), datetime!(2026-03-01 10:00 UTC)).unwrap();
    for text in [format!("{slack:?}"), format!("{webhook:?}"), format!("{m:?}")] {
        assert!(!text.contains("secret") && !text.contains("pw"), "{text}");
    }
    assert!(format!("{webhook:?}").contains("https://example.com:8443/…"));
    let err = SlackNotifier::new("ftp://hooks.slack.com/services/T0/B0/secret").unwrap_err();
    assert_eq!(
        err.to_string(),
        "slack_webhook_url: `ftp://hooks.slack.com/…` is not an http:// or https:// URL"
    );
}

/// Settings (in their JSON form) give notifiers named `expected`, or the error text.
#[track_caller]
fn check(settings: &str, expected: &str) {
    let settings: NotifierSettings = serde_json::from_str(settings).unwrap();
    let got = match build_notifiers(&settings) {
        Ok(list) => list.iter().map(|n| n.name().to_owned()).collect::<Vec<_>>().join(","),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected);
}

#[test]
fn settings_build_the_configured_notifiers() {
    check("{}", "");
    check(r#"{"webhook_url": "https://example.com/hook"}"#, "webhook");
    check(
        r##"{"slack_webhook_url": "https://hooks.slack.com/x", "slack_channel": "#ops"}"##,
        "slack",
    );
    check(
        r#"{"webhook_url": "http://127.0.0.1:9/h", "webhook_headers": {"X-Token": "t"},
            "webhook_timeout": 2.5, "slack_webhook_url": "https://hooks.slack.com/x"}"#,
        "webhook,slack",
    );
    check(r#"{"webhook_url": ""}"#, "");
    check(
        r#"{"webhook_url": "example.com/hook"}"#,
        "webhook_url: `[unparsable URL]` is not an http:// or https:// URL",
    );
    check(
        r#"{"webhook_url": "https://example.com", "webhook_headers": {"Bad Name": "x"}}"#,
        "webhook_headers: `Bad Name` is not a valid HTTP header name or value",
    );
    check(
        r#"{"webhook_url": "https://example.com", "webhook_timeout": 0}"#,
        "webhook_timeout: the timeout must be a positive number of seconds, got 0",
    );
    let err = serde_json::from_str::<NotifierSettings>(r#"{"webhook": "x"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `webhook`"), "{err}");
}

#[test]
fn isoformat_matches_python() {
    assert_eq!(isoformat(datetime!(2026-03-01 11:00 UTC)), "2026-03-01T11:00:00+00:00");
    assert_eq!(
        isoformat(datetime!(2026-03-01 11:00:00.000123 UTC)),
        "2026-03-01T11:00:00.000123+00:00"
    );
}
