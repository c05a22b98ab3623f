//! Every endpoint over a real socket: decisions, plans, tickets, execution, approvals,
//! delegation, actions, audit verification, health, readiness, metrics and the OpenAPI document.

use std::collections::BTreeSet;

use agent_safe::CheckRequest;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Env, assert_error, restart};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The properties docs/openapi.json documents for the 200 answer of `POST path` (following a
/// `$ref` to a component schema).
fn documented(path: &str) -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(agent_safe_server::http::OPENAPI).unwrap();
    let path = path.replace('/', "~1");
    let pointer = format!("/paths/{path}/post/responses/200/content/application~1json/schema");
    let mut schema = doc.pointer(&pointer).unwrap();
    if let Some(target) = schema["$ref"].as_str() {
        schema = doc.pointer(target.trim_start_matches('#')).unwrap();
    }
    keys(&schema["properties"])
}

#[tokio::test]
async fn check_answers_the_cli_decision_json_and_records_the_revision() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &["deployer"]);
    let (status, revision, body) =
        env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "allow");
    assert_eq!(body["policy_matched"], "allow-dev-a");
    assert_eq!(body["caller"], "deploy-bot");
    assert!(body["ticket"]["token"].as_str().is_some_and(|t| t.starts_with("eyJ")));
    // The same keys as the SDK's (and so `check --json-output`'s) Decision JSON.
    let sdk = env
        .server
        .agent_safe()
        .check(
            &CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller(&token)
                .param("namespace", "dev")
                .param("deployment", "test-app"),
        )
        .unwrap();
    assert_eq!(keys(&body), keys(&serde_json::to_value(&sdk).unwrap()));
    // The revision that decided is on the answer and in the audit event.
    let revision = revision.unwrap();
    assert_eq!(revision, env.server.current().revision);
    let events = env.decision_events();
    let event = events.iter().find(|e| e.event_id.as_str() == body["audit_id"]).unwrap();
    assert_eq!(event.context.as_ref().unwrap()["policy_revision"], revision.as_str());
    assert_eq!(event.caller, "deploy-bot");

    // DENY and REQUIRE_APPROVAL are answers too.
    let (status, deny) = env.post("/v1/check", Some(&token), restart("prod/api-server")).await;
    assert_eq!((status, deny["result"].as_str()), (StatusCode::OK, Some("deny")), "{deny}");
    let (status, pending) =
        env.post("/v1/check", Some(&token), restart("staging/api-server")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending["result"], "require_approval");
    assert!(pending["request_id"].as_str().is_some_and(|id| id.starts_with("apr-")), "{pending}");
}

#[tokio::test]
async fn check_plan_decides_every_step_in_order() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let plan = json!({"steps": [restart("dev/test-app"), restart("prod/api-server")]});
    let (status, body) = env.post("/v1/check-plan", Some(&token), plan).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results: Vec<&str> = body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["allow", "deny"]);
    assert_error(
        &env.post("/v1/check-plan", Some(&token), json!({"steps": []})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn tickets_verify_and_execute_once_for_their_own_agent() {
    // The catalog's restart declares a credential; no vault here, so the executor's own.
    let execute = agent_safe::ExecuteOptions { ambient_credentials: true, ..Default::default() };
    let env =
        Env::with(agent_safe_server::ServerConfig { execute, ..crate::support::config() }).await;
    let token = env.token("deploy-bot", &[]);
    let (_, decision) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    let ticket = decision["ticket"]["token"].as_str().unwrap().to_owned();

    // Verify without using it up, then run it (dry-run executor), then it is spent.
    let (status, verified) = env
        .post("/v1/tickets/verify", Some(&token), json!({"token": ticket, "consume": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (verified["valid"].as_bool(), verified["consumed"].as_bool()),
        (Some(true), Some(false))
    );

    // Another agent may not run it.
    let other = env.token("other-bot", &[]);
    assert_error(
        &env.post("/v1/execute", Some(&other), json!({"ticket": ticket})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, outcome) = env.post("/v1/execute", Some(&token), json!({"ticket": ticket})).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert_eq!(outcome["dry_run"], false);
    assert_eq!(outcome["executor_type"], "dry-run", "{outcome}");
    // The answer is the run report docs/openapi.json describes, every field of it.
    assert_eq!(keys(&outcome), documented("/v1/execute"), "{outcome}");
    let (_, again) = env.post("/v1/execute", Some(&token), json!({"ticket": ticket})).await;
    assert_eq!(again["status"], "error", "{again}");

    // Verifying consumes by default, like the CLI.
    let (_, d2) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    let t2 = d2["ticket"]["token"].as_str().unwrap();
    let (_, first) = env.post("/v1/tickets/verify", Some(&token), json!({"token": t2})).await;
    assert_eq!((first["valid"].as_bool(), first["consumed"].as_bool()), (Some(true), Some(true)));
    let (_, second) = env.post("/v1/tickets/verify", Some(&token), json!({"token": t2})).await;
    assert_eq!(second["valid"], false, "{second}");
}

#[tokio::test]
async fn approvals_list_show_and_resolve() {
    let env = Env::start().await;
    let requester = env.token("deploy-bot", &[]);
    let approver = env.token("alice", &["sre"]);
    let (_, pending) = env.post("/v1/check", Some(&requester), restart("staging/api-server")).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();

    let (status, list) = env.get("/v1/approvals", Some(&approver)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["requests"][0]["request_id"], id.as_str(), "{list}");
    let (status, shown) = env.get(&format!("/v1/approvals/{id}"), Some(&approver)).await;
    assert_eq!((status, shown["status"].as_str()), (StatusCode::OK, Some("pending")), "{shown}");
    assert_error(
        &env.get("/v1/approvals/apr-nope", Some(&approver)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The requester may not approve its own request; an approval needs a token.
    assert_error(
        &env.post(&format!("/v1/approvals/{id}/approve"), Some(&requester), json!({})).await,
        StatusCode::FORBIDDEN,
        "approval_refused",
    );
    // No body at all is fine (no reason).
    let (status, _, decision) =
        env.call(Method::POST, &format!("/v1/approvals/{id}/approve"), Some(&approver), None).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["result"], "allow");
    assert!(decision["ticket"]["token"].is_string());
    assert_error(
        &env.post(&format!("/v1/approvals/{id}/deny"), Some(&approver), json!({"reason": "late"}))
            .await,
        StatusCode::CONFLICT,
        "not_pending",
    );
}

#[tokio::test]
async fn concurrent_approvals_have_exactly_one_winner() {
    let env = Env::start().await;
    let requester = env.token("deploy-bot", &[]);
    let (_, pending) = env.post("/v1/check", Some(&requester), restart("staging/api-server")).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let calls = (0..12).map(|i| {
        let token = env.token(&format!("approver-{i}"), &[]);
        let path = format!("/v1/approvals/{id}/{}", if i % 2 == 0 { "approve" } else { "deny" });
        let env = &env;
        async move { env.post(&path, Some(&token), json!({})).await }
    });
    let answers = futures_join_all(calls).await;
    let winners: Vec<_> = answers.iter().filter(|a| a.0 == StatusCode::OK).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for loser in answers.iter().filter(|a| a.0 != StatusCode::OK) {
        assert_error(loser, StatusCode::CONFLICT, "not_pending");
    }
}

/// Runs the futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn delegations_mint_a_narrower_token_that_checks() {
    let env = Env::start().await;
    let parent = env.token("orchestrator", &["deployer"]);
    let (status, made) = env
        .post(
            "/v1/delegations",
            Some(&parent),
            json!({"child_agent_id": "worker-1", "roles": ["deployer"], "environments": ["dev"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["delegation_depth"], 1);
    // The answer is the delegation report docs/openapi.json describes (a scoped one: all of it).
    assert_eq!(keys(&made), documented("/v1/delegations"), "{made}");
    let child = made["token"].as_str().unwrap();
    let (_, decision) = env.post("/v1/check", Some(child), restart("dev/test-app")).await;
    assert_eq!(
        (decision["result"].as_str(), decision["caller"].as_str()),
        (Some("allow"), Some("worker-1"))
    );
    // A role the parent does not hold is refused.
    assert_error(
        &env.post(
            "/v1/delegations",
            Some(&parent),
            json!({"child_agent_id": "w2", "roles": ["admin"]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "delegation_refused",
    );
    assert_error(
        &env.post(
            "/v1/delegations",
            Some(&parent),
            json!({"child_agent_id": "w2", "environments": ["moon"]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn actions_audit_health_readiness_metrics_openapi() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let (status, actions) = env.get("/v1/actions", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let all = actions.as_array().unwrap().len();
    assert!(all > 5, "{all}");
    let (_, low) = env.get("/v1/actions?risk=low", Some(&token)).await;
    let low = low.as_array().unwrap();
    assert!(!low.is_empty() && low.len() < all);
    assert!(low.iter().all(|a| a["risk_class"] == "low"));
    assert_error(
        &env.get("/v1/actions?risk=huge", Some(&token)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &env.get("/v1/actions?colour=red", Some(&token)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    let (status, verify) = env.get("/v1/audit/verify", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (verify["valid"].as_bool(), verify["entries"].as_u64()),
        (Some(true), Some(1)),
        "{verify}"
    );

    let (status, health) = env.get("/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, ready) = env.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["policy_revision"], env.server.current().revision.as_str());
    assert_eq!(ready["last_reload"], Value::Null);

    let text =
        env.client.get(format!("{}/metrics", env.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("agent_safe_decisions_total{result=\"allow\"} 1"), "{text}");
    assert!(text.contains("agent_safe_check_duration_seconds_count 1"), "{text}");
    assert!(text.contains("agent_safe_audit_append_duration_seconds_count 1"), "{text}");

    let (status, doc) = env.get("/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");

    assert_error(
        &env.get("/v1/nothing-here", Some(&token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &env.get("/v1/check", Some(&token)).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

/// Without an approval store nothing can be pending: the list is empty (200), while showing,
/// approving or denying a request is 409 `not_configured` (docs/server.md).
#[tokio::test]
async fn approvals_without_a_store() {
    let env = Env::start().await;
    let config = std::fs::read_to_string(env.path("agent-safe.yaml")).unwrap();
    let without: String =
        config.lines().filter(|l| !l.contains("approvals")).map(|l| format!("{l}\n")).collect();
    assert_ne!(config, without);
    std::fs::write(env.path("agent-safe.yaml"), without).unwrap();
    env.server.reload().unwrap();
    let approver = env.token("alice", &["sre"]);

    let (status, list) = env.get("/v1/approvals", Some(&approver)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"requests": [], "unreadable_lines": []}));
    let id = "apr-000000000000";
    assert_error(
        &env.get(&format!("/v1/approvals/{id}"), Some(&approver)).await,
        StatusCode::CONFLICT,
        "not_configured",
    );
    for verdict in ["approve", "deny"] {
        assert_error(
            &env.post(&format!("/v1/approvals/{id}/{verdict}"), Some(&approver), json!({})).await,
            StatusCode::CONFLICT,
            "not_configured",
        );
    }
}
