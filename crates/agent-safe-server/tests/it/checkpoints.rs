//! `audit_checkpoints:`: the server signs checkpoints of the audit log after N entries, every
//! T seconds and when it stops; `GET /v1/audit/checkpoint` and `GET /v1/audit/proof/{id}`
//! answer what an auditor verifies with the public key alone; a log cut short under a
//! checkpoint is never signed over.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use agent_safe_testkit::{Reply, TestServer};
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

/// The newest checkpoint's note, when the server has signed one.
async fn newest_note(env: &Env, token: &str) -> Option<String> {
    let url = format!("{}/v1/audit/checkpoint", env.base);
    let resp = env.client.get(url).bearer_auth(token).send().await.unwrap();
    if resp.status() != StatusCode::OK {
        return None;
    }
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(kind, "text/plain; charset=utf-8");
    Some(resp.text().await.unwrap())
}

/// The newest note once `done` accepts it (waits at most 30 s).
async fn wait_note(env: &Env, token: &str, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..600 {
        if let Some(note) = newest_note(env, token).await
            && done(&note)
        {
            return note;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!("no such checkpoint within 30 s");
}

/// The newest checkpoint once it covers at least `size` entries.
async fn checkpoint_of(env: &Env, token: &str, size: u64) -> Checkpoint {
    let key = verifier(env);
    let note = wait_note(env, token, |n| Checkpoint::open(n, &key).unwrap().size >= size).await;
    Checkpoint::open(&note, &key).unwrap()
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

/// A C2SP `tlog-witness` on loopback: `agent_safe_tlog::Witness` answering `POST
/// /add-checkpoint` on the test HTTP server.
fn start_witness(witness: std::sync::Arc<agent_safe_tlog::Witness>) -> TestServer {
    TestServer::start(move |_, request| {
        if request.path_only() != "/add-checkpoint" {
            return Reply::Status(404);
        }
        let text = |status, content_type, body| Reply::Text { status, content_type, body };
        match witness.add_checkpoint(&request.body, 1_765_000_000) {
            agent_safe_tlog::WitnessAnswer::Cosigned(lines) => text(200, "text/plain", lines),
            agent_safe_tlog::WitnessAnswer::Conflict(size) => {
                text(409, "text/x.tlog.size", format!("{size}\n"))
            }
            agent_safe_tlog::WitnessAnswer::Refused { status, reason } => {
                text(status, "text/plain", reason)
            }
            _ => Reply::Status(500),
        }
    })
    .unwrap()
}

/// Key files of `key` and `audit_checkpoints:` with one witness at `url` in the project.
fn with_witness(
    key: &SignerKey,
    url: &str,
    witness: &agent_safe_tlog::CosignerKey,
) -> impl FnOnce(&Path) {
    let secret = key.secret_text();
    let url = url.to_owned();
    let witness = witness.to_string();
    move |dir: &Path| {
        write_key_files(dir, "checkpoint", &SignerKey::parse(&secret).unwrap()).unwrap();
        let mut yaml =
            std::fs::OpenOptions::new().append(true).open(dir.join("agent-safe.yaml")).unwrap();
        write!(
            yaml,
            "audit_checkpoints:\n  key_file: checkpoint.key\n  every_entries: 3\n  \
             witnesses:\n    - url: {url}\n      public_key: {witness}\n"
        )
        .unwrap();
    }
}

/// The newest note once it carries a cosignature by `witness` of a tree of `size` entries.
async fn cosigned(
    env: &Env,
    token: &str,
    size: u64,
    witness: &agent_safe_tlog::CosignerKey,
) -> String {
    let key = verifier(env);
    wait_note(env, token, |n| {
        Checkpoint::open(n, &key).unwrap().size == size
            && !agent_safe_tlog::cosignatures(n, witness).unwrap().is_empty()
    })
    .await
}

#[tokio::test]
async fn witnesses_cosign_each_checkpoint_and_refuse_an_inconsistent_one() {
    let key = SignerKey::generate(ORIGIN).unwrap();
    let cosigner = agent_safe_tlog::Cosigner::generate("witness.example/w1").unwrap();
    let witness_key = cosigner.verifier().clone();
    let witness =
        std::sync::Arc::new(agent_safe_tlog::Witness::new(cosigner, vec![key.verifier().clone()]));
    let server = start_witness(witness.clone());
    let url = server.base_url();

    let mut env =
        Env::with_setup(config(), POLICIES_A, with_witness(&key, &url, &witness_key)).await;
    let token = env.token("deploy-bot", &["deployer"]);
    for _ in 0..3 {
        decide(&env, &token).await;
    }
    // The checkpoint served carries the witness's cosignature; the witness recorded it.
    let note = cosigned(&env, &token, 3, &witness_key).await;
    assert_eq!(witness.latest(ORIGIN).map(|c| c.size), Some(3));
    assert!(note.contains("\u{2014} witness.example/w1 "), "{note}");
    // The next one is cosigned with a consistency proof from 3.
    for _ in 0..3 {
        decide(&env, &token).await;
    }
    cosigned(&env, &token, 6, &witness_key).await;
    assert_eq!(witness.latest(ORIGIN).map(|c| c.size), Some(6));
    // The cosigned notes are records of the checkpoint log too.
    let notes = read_checkpoints(&checkpoints_path(&env.path("audit.jsonl"))).unwrap();
    assert!(notes.iter().any(|n| n.contains("witness.example/w1")), "{notes:?}");
    env.stop().await;

    // Whoever holds the files rewrites the log's second entry and removes the tree index and
    // the checkpoint log, so the log's own signer has nothing to compare with; a new server
    // signs the rewritten history, and the witness refuses it.
    let original = std::fs::read_to_string(env.path("audit.jsonl")).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replace("deploy-bot", "deploy-bob");
    let forged = lines.join("\n") + "\n";
    let setup = with_witness(&key, &url, &witness_key);
    let mut env2 = Env::with_setup(config(), POLICIES_A, move |dir: &Path| {
        setup(dir);
        std::fs::write(dir.join("audit.jsonl"), forged).unwrap();
    })
    .await;
    let token = env2.token("deploy-bot", &["deployer"]);
    for _ in 0..3 {
        decide(&env2, &token).await;
    }
    let event = env2
        .wait_event(1, |e| matches!(e, agent_safe_server::ServerEvent::CheckpointFailed { error } if error.contains("witness")))
        .await;
    let agent_safe_server::ServerEvent::CheckpointFailed { error } = event else { unreachable!() };
    assert!(error.contains("refused the checkpoint of size 9 (422)"), "{error}");
    // The checkpoint is signed (it is the log's), but carries no cosignature; the witness
    // still holds the tree of 6.
    let note = checkpoint_of(&env2, &token, 9).await;
    assert!(
        agent_safe_tlog::cosignatures(&newest_note(&env2, &token).await.unwrap(), &witness_key)
            .unwrap()
            .is_empty()
    );
    assert_eq!(note.size, 9);
    assert_eq!(witness.latest(ORIGIN).map(|c| c.size), Some(6));
    let text = env2
        .client
        .get(format!("{}/metrics", env2.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("agent_safe_audit_witness_failures_total 0"), "{text}");
    env2.stop().await;
}

#[tokio::test]
async fn checkpoints_ship_to_the_audit_logs_destinations() {
    let setup = |dir: &Path| {
        with_checkpoints("  every_entries: 2\n")(dir);
        let mut yaml =
            std::fs::OpenOptions::new().append(true).open(dir.join("agent-safe.yaml")).unwrap();
        write!(yaml, "audit_shipping:\n  filesystem_path: copy/audit.jsonl\n").unwrap();
        std::fs::create_dir(dir.join("copy")).unwrap();
    };
    let mut env = Env::with_setup(config(), POLICIES_A, setup).await;
    let token = env.token("deploy-bot", &["deployer"]);
    decide(&env, &token).await;
    decide(&env, &token).await;
    checkpoint_of(&env, &token, 2).await;
    decide(&env, &token).await;
    // Stopping signs the last checkpoint and ships both logs.
    env.stop().await;
    let log = env.path("audit.jsonl");
    assert_eq!(std::fs::read(env.path("copy/audit.jsonl")).unwrap(), std::fs::read(&log).unwrap());
    // The copy of the checkpoint log is the checkpoint log, record for record.
    let copy = std::fs::read_to_string(env.path("copy/audit.jsonl.checkpoints")).unwrap();
    assert_eq!(copy, std::fs::read_to_string(checkpoints_path(&log)).unwrap());
    let records: Vec<agent_safe_tlog::CheckpointRecord> =
        copy.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.iter().map(|r| r.tree_size).collect::<Vec<_>>(), vec![2, 3]);
    for record in &records {
        assert_eq!(record.event_type, "checkpoint");
        let checkpoint = Checkpoint::open(&record.note, &verifier(&env)).unwrap();
        assert_eq!(checkpoint.size, record.tree_size);
        assert!(record.event_id.starts_with(&format!("checkpoint-{}-", record.tree_size)));
    }
}
