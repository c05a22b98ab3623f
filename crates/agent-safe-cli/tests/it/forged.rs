//! The forged-token battery on every front: an `alg: none` token with an empty signature, a
//! token signed with another key, an expired one, one from another issuer, one signed with
//! another algorithm, one without `exp`, and an execution ticket presented as an identity
//! token. Each is refused with its reason — as the CLI's `--caller`, the HTTP bearer token, the
//! MCP identity token and an approver token — and nothing is evaluated or recorded as the agent
//! it names.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;

use agent_safe_core::{Clock, ManualClock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{Served, bin, sre_project};

const KEY: &str = "cli-forged-key-0123456789abcdef0123456789abcdef";
const AGENT: &str = "mallory-admin";
const PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

fn project(dir: &Path) {
    sre_project(dir, KEY, "");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    SystemClock.now().unix_timestamp()
}

/// A JWT signed with `jsonwebtoken` (`alg` as given) over `claims`.
fn jwt(alg: jsonwebtoken::Algorithm, key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// Every forged token, named, for agent `AGENT` with the role `sre` (which would approve).
fn forged(dir: &Path) -> Vec<(&'static str, String)> {
    let claims = |exp: Option<i64>, iss: &str| {
        let mut c = json!({"agent_id": AGENT, "agent_name": "", "roles": ["sre"], "groups": [],
                           "iss": iss, "iat": unix_now()});
        if let Some(exp) = exp {
            c["exp"] = json!(exp);
        }
        c
    };
    let system: Arc<dyn Clock> = Arc::new(SystemClock);
    let two_hours_ago: Arc<dyn Clock> =
        Arc::new(ManualClock::new(SystemClock.now() - time::Duration::hours(2)));
    let sre = ["sre".to_owned()];
    let mint = |key: &str, issuer: &str, clock: &Arc<dyn Clock>| {
        IdentityManager::new(SigningKey::hs256_from_str(key).unwrap(), issuer, clock.clone())
            .create_token(AGENT, "", &sre, &[], time::Duration::hours(1))
            .unwrap()
    };
    let good = mint(KEY, "agent-safe", &system);
    let payload = good.split('.').nth(1).unwrap();
    // An execution ticket from a real ALLOW.
    let out = bin(dir)
        .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS, "--json-output"])
        .output()
        .unwrap();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = decision["ticket"]["token"].as_str().unwrap().to_owned();
    vec![
        (
            "alg none, empty signature",
            format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "another key",
            mint("another-key-0123456789abcdef0123456789abcdef", "agent-safe", &system),
        ),
        ("expired", mint(KEY, "agent-safe", &two_hours_ago)),
        ("another issuer", mint(KEY, "elsewhere", &system)),
        (
            "another algorithm (HS512)",
            jwt(
                jsonwebtoken::Algorithm::HS512,
                KEY,
                &claims(Some(unix_now() + 3600), "agent-safe"),
            ),
        ),
        ("no exp", jwt(jsonwebtoken::Algorithm::HS256, KEY, &claims(None, "agent-safe"))),
        ("an execution ticket", ticket),
    ]
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn cli_caller_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    for (name, token) in forged(d) {
        let out = bin(d)
            .args([
                "check",
                "restart-deployment",
                "-t",
                "dev/test-app",
                "-p",
                PARAMS,
                "--json-output",
            ])
            .args(["-c", &token])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decision["result"], "deny", "{name}");
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.starts_with("Invalid caller identity: "), "{name}: {reason}");
        assert_ne!(decision["caller"], AGENT, "{name}: decided as the agent the token names");
    }
    assert!(!log(d).contains(&format!("\"caller\": \"{AGENT}\"")), "recorded as {AGENT}");
}

#[test]
fn http_bearer_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let tokens = forged(d);
    let before = log(d);
    let served = Served::spawn(bin(d).args(["serve", "--listen", "127.0.0.1:0"]));
    let body = json!({"action": "restart-deployment", "target": "dev/test-app",
                      "params": {"namespace": "dev", "deployment": "test-app"}});
    for (name, token) in &tokens {
        let (status, answer) = served.post("/v1/check", token, &body);
        assert!(status.contains(" 401 "), "{name}: {status} {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("identity token"), "{name}: {answer}");
    }
    served.stop();
    assert_eq!(log(d), before, "nothing recorded for refused bearer tokens");
}

#[test]
fn mcp_identity_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let tokens = forged(d);
    let before = log(d);
    for (name, token) in &tokens {
        let out = bin(d)
            .arg("mcp")
            .env("AGENT_SAFE_IDENTITY_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains("identity token"), "{name}: {}", text(&out));
    }
    assert_eq!(log(d), before, "nothing recorded for refused MCP identities");
}

#[test]
fn approver_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let requester = {
        let out = bin(d).args(["identity", "issue", "deploy-bot"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let out = bin(d)
        .args(["check", "restart-deployment", "-t", "prod/api-server", "-c", &requester])
        .args(["-p", r#"{"namespace": "prod", "deployment": "api-server"}"#, "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = forged(d);
    let before = (log(d), std::fs::read_to_string(d.join("approvals.jsonl")).unwrap());
    for (name, token) in &tokens {
        let out =
            bin(d).args(["approval", "approve", &id, "--approver-token", token]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(text(&out).contains("approver"), "{name}: {}", text(&out));
    }
    let after = (log(d), std::fs::read_to_string(d.join("approvals.jsonl")).unwrap());
    assert_eq!(after, before, "no approval recorded for forged approver tokens");
    let status = bin(d).args(["approval", "show", &id, "--json-output"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["status"], "pending", "{status}");
}
