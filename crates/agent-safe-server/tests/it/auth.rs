//! Authentication: missing, malformed, forged and expired tokens, the caller in the body, and
//! `--allow-anonymous`.

use agent_safe_tickets::{IdentityManager, SigningKey};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Env, anonymous, assert_error, restart};

#[tokio::test]
async fn tokens_are_required_and_verified() {
    let env = Env::start().await;
    let events_before = env.decision_events().len();

    // Missing.
    assert_error(
        &env.post("/v1/check", None, restart("dev/test-app")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Not a bearer token.
    let resp = env
        .client
        .post(format!("{}/v1/check", env.base))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .json(&restart("dev/test-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    // Forged: signed with another key.
    let forger = IdentityManager::new(
        SigningKey::hs256_from_str("not-the-server-secret-0123456789abcdef").unwrap(),
        "agent-safe",
        env.clock.clone(),
    );
    let forged = forger.create_token("deploy-bot", "", &[], &[], time::Duration::hours(1)).unwrap();
    assert_error(
        &env.post("/v1/check", Some(&forged), restart("dev/test-app")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Garbage.
    assert_error(
        &env.post("/v1/check", Some("eyJ.x.y"), restart("dev/test-app")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Expired: valid an hour on the server's clock, which then moves two hours on.
    let token = env.token("deploy-bot", &[]);
    let (status, _) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    assert_eq!(status, StatusCode::OK);
    env.clock.advance(time::Duration::hours(2));
    let expired = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(expired.1["error"]["message"].as_str().unwrap().contains("expired"), "{}", expired.1);
    // Approvals and delegation need a token too.
    assert_error(
        &env.get("/v1/approvals", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &env.post("/v1/delegations", None, json!({"child_agent_id": "w"})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Only the one request that authenticated was decided and recorded.
    assert_eq!(env.decision_events().len(), events_before + 1);
}

#[tokio::test]
async fn the_body_caller_may_not_contradict_the_token() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let with_caller = |caller: &str| {
        let mut body = restart("dev/test-app");
        body["caller"] = json!(caller);
        body
    };
    let mismatch = env.post("/v1/check", Some(&token), with_caller("root")).await;
    assert_error(&mismatch, StatusCode::FORBIDDEN, "caller_mismatch");
    assert!(mismatch.1["error"]["message"].as_str().unwrap().contains("`root`"));
    // The token's own agent id, or the token itself, is no contradiction.
    for same in ["deploy-bot", token.as_str()] {
        let (status, d) = env.post("/v1/check", Some(&token), with_caller(same)).await;
        assert_eq!((status, d["caller"].as_str()), (StatusCode::OK, Some("deploy-bot")), "{d}");
    }
    // Neither may a plan step.
    let plan = json!({"steps": [restart("dev/test-app"), with_caller("root")]});
    assert_error(
        &env.post("/v1/check-plan", Some(&token), plan).await,
        StatusCode::FORBIDDEN,
        "caller_mismatch",
    );
}

#[tokio::test]
async fn anonymous_mode_uses_the_body_caller_but_still_verifies_tokens() {
    let env = Env::with(anonymous()).await;
    let mut body = restart("dev/test-app");
    body["caller"] = json!("local-dev");
    let (status, d) = env.post("/v1/check", None, body).await;
    assert_eq!(
        (status, d["caller"].as_str(), d["result"].as_str()),
        (StatusCode::OK, Some("local-dev"), Some("allow")),
        "{d}"
    );
    assert_error(
        &env.post("/v1/check", Some("eyJ.x.y"), restart("dev/test-app")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Resolving an approval always needs an approver token.
    assert_error(
        &env.post("/v1/approvals/apr-x/approve", None, json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

/// An unsigned (`alg: none`) token with the claims of a real caller, in the shapes a forger
/// might try (empty signature, no signature segment, an extra dot).
const ALG_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhZ2VudF9pZCI6ImRlcGxveS1ib3Qi\
LCJyb2xlcyI6WyJkZXBsb3llciJdLCJpc3MiOiJhZ2VudC1zYWZlIiwiaWF0IjoxNzcxOTM0NDAwLCJleHAiOjQxMDI0NDQ4MDB9.";

#[tokio::test]
async fn issue_13_alg_none_caller_is_denied_over_http() {
    let env = Env::with(anonymous()).await;
    for token in
        [ALG_NONE.to_owned(), format!("{ALG_NONE}."), ALG_NONE.trim_end_matches('.').to_owned()]
    {
        // In the body (anonymous mode): a DENY naming the bad identity, never a caller named
        // after the token text.
        let mut body = restart("dev/test-app");
        body["caller"] = json!(token);
        let (status, d) = env.post("/v1/check", None, body).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(
            (d["result"].as_str(), d["caller"].as_str()),
            (Some("deny"), Some("anonymous")),
            "{d}"
        );
        assert!(d["reason"].as_str().unwrap().starts_with("Invalid caller identity: "), "{d}");
        // As the bearer token: refused before anything is decided.
        assert_error(
            &env.post("/v1/check", Some(&token), restart("dev/test-app")).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    let events = env.decision_events();
    assert_eq!(events.len(), 3, "one recorded DENY per body caller");
    assert!(events.iter().all(|e| e.caller == "anonymous"), "{events:?}");
}

#[tokio::test]
async fn admin_reload_needs_the_admin_role() {
    let env = Env::start().await;
    let plain = env.token("deploy-bot", &[]);
    assert_error(
        &env.post("/v1/admin/reload", Some(&plain), json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let admin = env.token("ops", &["agent-safe-admin"]);
    let (status, body) = env.post("/v1/admin/reload", Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policy_revision"], env.server.current().revision.as_str());
}
