//! `audit_checkpoints:`: the server signs checkpoints of the audit log after N entries, every
//! T seconds and when it stops; `GET /v1/audit/checkpoint` and `GET /v1/audit/proof/{id}`
//! answer what an auditor verifies with the public key alone; a log cut short under a
//! checkpoint is never signed over.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use agent_safe_tlog::{
    Checkpoint, InclusionBundle, SignerKey, TreeIndex, VerifierKey, checkpoints_path,
    read_checkpoints, write_key_files,
};
use reqwest::StatusCode;

use crate::support::{Env, POLICIES_A, assert_error, config, restart};

const ORIGIN: &str = "audit.example.com/server-test";

/// A checkpoint key in the project and `audit_checkpoints:` with `settings` (YAML lines).
fn with_checkpoints(settings: &'static str) -> impl FnOnce(&Path) {
    move |dir: &Path| {
        let key = SignerKey::generate(ORIGIN).unwrap();
        write_key_files(dir, "checkpoint", &key).unwrap();
        let mut yaml =
            std::fs::OpenOptions::new().append(true).open(dir.join("agent-safe.yaml")).unwrap();
        write!(yaml, "audit_checkpoints:\n  key_file: checkpoint.key\n{settings}").unwrap();
    }
}

fn verifier(env: &Env) -> VerifierKey {
    let text = std::fs::read_to_string(env.path("checkpoint.pub")).unwrap();
    VerifierKey::parse(&text).unwrap()
}

/// The newest checkpoint once it covers at least `size` entries (waits at most 30 s).
async fn checkpoint_of(env: &Env, token: &str, size: u64) -> Checkpoint {
    let key = verifier(env);
    for _ in 0..600 {
        let resp = env
            .client
            .get(format!("{}/v1/audit/checkpoint", env.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::OK {
            let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(kind, "text/plain; charset=utf-8");
            let checkpoint = Checkpoint::open(&resp.text().await.unwrap(), &key).unwrap();
            if checkpoint.size >= size {
                return checkpoint;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!("no checkpoint of {size} entries within 30 s");
}

async fn decide(env: &Env, token: &str) -> String {
    let (status, decision) = env.post("/v1/check", Some(token), restart("dev/test-app")).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    decision["audit_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_server_signs_checkpoints_and_proves_entries_against_them() {
    let mut env =
        Env::with_setup(config(), POLICIES_A, with_checkpoints("  every_entries: 3\n")).await;
    let token = env.token("deploy-bot", &["deployer"]);
    // An empty log: nothing signed yet.
    let got = env.get("/v1/audit/checkpoint", Some(&token)).await;
    assert_error(&got, StatusCode::NOT_FOUND, "no_checkpoint");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(decide(&env, &token).await);
    }
    // Three entries wake the signer.
    let checkpoint = checkpoint_of(&env, &token, 3).await;
    assert_eq!(checkpoint.origin, ORIGIN);
    let index = TreeIndex::open(&env.path("audit.jsonl")).unwrap();
    assert_eq!(index.root_at(checkpoint.size).unwrap(), checkpoint.root);

    // A proof of the first entry verifies with the public key alone.
    let (status, proof) = env.get(&format!("/v1/audit/proof/{}", ids[0]), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let bundle: InclusionBundle = serde_json::from_value(proof).unwrap();
    assert_eq!((bundle.leaf_index, bundle.event_id.as_str()), (0, ids[0].as_str()));
    bundle.verify(&verifier(&env)).unwrap();
    // An entry no checkpoint covers yet: one is signed first.
    let fourth = decide(&env, &token).await;
    let (status, proof) = env.get(&format!("/v1/audit/proof/{fourth}"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let bundle: InclusionBundle = serde_json::from_value(proof).unwrap();
    assert_eq!((bundle.leaf_index, bundle.tree_size), (3, 4));
    bundle.verify(&verifier(&env)).unwrap();
    let got = env.get("/v1/audit/proof/evt-000000000000", Some(&token)).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    let got = env.get("/v1/audit/checkpoint", None).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthenticated");

    let text =
        env.client.get(format!("{}/metrics", env.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("agent_safe_audit_checkpoint_size 4"), "{text}");
    assert!(text.contains("agent_safe_audit_checkpoint_failures_total 0"), "{text}");

    // One more entry, then stop: the last checkpoint covers the whole log.
    decide(&env, &token).await;
    env.stop().await;
    let notes = read_checkpoints(&checkpoints_path(&env.path("audit.jsonl"))).unwrap();
    let newest = Checkpoint::open(notes.last().unwrap(), &verifier(&env)).unwrap();
    assert_eq!(newest.size, 5);
    // Every checkpoint the server signed extends the one before it.
    let all: Vec<Checkpoint> =
        notes.iter().map(|n| Checkpoint::open(n, &verifier(&env)).unwrap()).collect();
    let index = TreeIndex::open(&env.path("audit.jsonl")).unwrap();
    for pair in all.windows(2) {
        assert!(pair[0].size < pair[1].size, "{all:?}");
        assert_eq!(index.root_at(pair[0].size).unwrap(), pair[0].root);
    }
}

#[tokio::test]
async fn a_checkpoint_is_signed_every_t_seconds_while_entries_arrive() {
    let setup = with_checkpoints("  every_entries: 1000\n  every_seconds: 1\n");
    let env = Env::with_setup(config(), POLICIES_A, setup).await;
    let token = env.token("deploy-bot", &["deployer"]);
    decide(&env, &token).await;
    assert_eq!(checkpoint_of(&env, &token, 1).await.size, 1);
}

#[tokio::test]
async fn a_log_cut_short_under_a_checkpoint_is_never_signed_over() {
    let setup = with_checkpoints("  every_entries: 2\n");
    let env = Env::with_setup(config(), POLICIES_A, setup).await;
    let token = env.token("deploy-bot", &["deployer"]);
    decide(&env, &token).await;
    decide(&env, &token).await;
    checkpoint_of(&env, &token, 2).await;
    // The log loses its second entry; two new decisions are appended after the first.
    let log = env.path("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{}\n", text.lines().next().unwrap())).unwrap();
    let second = decide(&env, &token).await;
    let third = decide(&env, &token).await;
    // Entry 2 is not the one the checkpoint signs: no proof is served for it.
    let got = env.get(&format!("/v1/audit/proof/{second}"), Some(&token)).await;
    assert_eq!(got.0, StatusCode::INTERNAL_SERVER_ERROR, "{}", got.1);
    let message = got.1["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("is not the one the checkpoint of size 2 signs"), "{message}");
    // Entry 3 needs a new checkpoint, which is refused.
    let got = env.get(&format!("/v1/audit/proof/{third}"), Some(&token)).await;
    assert_eq!(got.0, StatusCode::INTERNAL_SERVER_ERROR, "{}", got.1);
    let message = got.1["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("no longer holds the tree of the newest checkpoint"), "{message}");
    env.wait_event(1, |e| matches!(e, agent_safe_server::ServerEvent::CheckpointFailed { .. }))
        .await;
    // The newest checkpoint is still the one of the original log.
    let notes = read_checkpoints(&checkpoints_path(&log)).unwrap();
    assert_eq!(Checkpoint::open(notes.last().unwrap(), &verifier(&env)).unwrap().size, 2);
}

#[tokio::test]
async fn without_audit_checkpoints_the_endpoints_say_so() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &["deployer"]);
    for path in ["/v1/audit/checkpoint", "/v1/audit/proof/evt-1"] {
        let got = env.get(path, Some(&token)).await;
        assert_error(&got, StatusCode::CONFLICT, "not_configured");
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains("audit_checkpoints"),
            "{}",
            got.1
        );
    }
}

#[test]
fn a_bad_checkpoint_configuration_stops_the_server_from_starting() {
    type Setup<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Setup<'_>); 3] = [
        ("origin `other.example/log` is not the name of the key", &|dir| {
            with_checkpoints("  origin: other.example/log\n")(dir);
        }),
        ("missing.key", &|dir| {
            let mut yaml =
                std::fs::OpenOptions::new().append(true).open(dir.join("agent-safe.yaml")).unwrap();
            write!(yaml, "audit_checkpoints:\n  key_file: missing.key\n").unwrap();
        }),
        ("every_entries", &|dir| with_checkpoints("  every_entries: 0\n")(dir)),
    ];
    for (expected, setup) in cases {
        let dir = crate::support::project(POLICIES_A);
        setup(dir.path());
        let source =
            agent_safe_server::Source::new().config_file(dir.path().join("agent-safe.yaml"));
        let err = agent_safe_server::Server::new(source, config()).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}
