//! The AWS actions on the governed path a user gets, against moto's server: an `AgentSafe`
//! built on the shipped catalog (its actions and its policies; an inventory naming moto's
//! fixtures, written per test because moto makes up instance ids), a vault that issues the
//! `aws` credential, then `check` → ALLOW with a ticket → `execute` with the `AwsExecutor` →
//! the state before and after in a `state_capture` event → `check_rollback` → execute the
//! rollback's ticket → the original state is back. Also a not-found and an access error as
//! FAILUREs with the AWS error in the `execution` event, and the audit log verifying with
//! decision → execution → state capture → rollback decision → its execution linked. Last, the
//! STS vault against moto's STS: a session scoped by the generated policy runs the action.
//!
//! moto comes from `agent_safe_executor_aws::testing` (`AGENT_SAFE_MOTO_ENDPOINT` from `cargo
//! xtask ci`, else a server started from `target/moto-venv`); without either every test
//! prints `SKIPPED` and returns. The executor's own suite (`agent-safe-executor-aws`'s
//! `tests/moto`) covers every action's states and prechecks in detail; this one covers what
//! the SDK and the runner add.
//!
//! The access error: moto enforces S3 bucket policies, so a `Deny` statement makes DeleteObject
//! fail with HTTP 403 through the runner here; moto sends that 403 with an empty body (AWS
//! sends an `AccessDenied` XML error), so the code reported is `HTTP 403`. moto enforces no
//! IAM policies for EC2, ECS, Lambda or IAM (only when started with
//! `INITIAL_NO_AUTH_ACTION_COUNT`, for the whole server). Access errors with their AWS codes
//! (`UnauthorizedOperation`, `AccessDeniedException`, `AccessDenied`) are covered with replayed
//! responses in the executor crate's unit tests (`src/replay_tests.rs`).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::aws::testing::{self, Moto, REGION};
use agent_safe::core::{AuditId, EventType, ExecutionStatus, Executor, StateMap};
use agent_safe::credentials::{CredentialVault, EnvVarVault, StsVault, session_policy};
use agent_safe::runner::{CredentialSource, RunOutcome};
use agent_safe::tickets::SigningKey;
use agent_safe::{AgentSafe, CheckRequest, Decision, DecisionResult, ExecuteOptions, ManualClock};
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY: &str = "sdk-aws-runner-key-0123456789abcdef0123456789";
const CALLER: &str = "ops-bot";

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

/// moto (reset, exclusive) or `None` after a loud `SKIPPED`.
async fn moto(test: &str) -> Option<Moto> {
    testing::moto(test).await.unwrap()
}

/// The SDK on the shipped catalog, with `targets` as the inventory (all `dev`/`public`, which
/// the catalog's `allow-dev-all` allows), an audit log, a signing key, and a vault issuing
/// moto's test keys as the `aws` credential (or another vault).
struct World {
    moto: Moto,
    dir: TempDir,
    safe: AgentSafe,
    executor: Arc<dyn Executor>,
}

impl World {
    fn new(moto: Moto, targets: &[(&str, &str, Value)]) -> World {
        Self::with_vault(moto, targets, |clock| {
            let vault = EnvVarVault::new(clock)
                .with_static("aws", testing::credential_payload())
                .with_env_lookup(|_| None);
            Arc::new(vault)
        })
    }

    fn with_vault(
        moto: Moto,
        targets: &[(&str, &str, Value)],
        vault: impl FnOnce(Arc<ManualClock>) -> Arc<dyn CredentialVault>,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<Value> = targets
            .iter()
            .map(|(id, kind, params)| {
                json!({"id": id, "type": kind, "environment": "dev", "sensitivity": "public",
                       "owner": "tests", "params": params})
            })
            .collect();
        // JSON is YAML.
        let inventory = dir.path().join("inventory.yaml");
        std::fs::write(&inventory, json!({"targets": targets}).to_string()).unwrap();
        // Tickets, credentials and audit timestamps use the manual clock; AWS request
        // signatures use the real time (moto checks neither).
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-02-24 12:00 UTC)));
        let vault = vault(clock.clone());
        let safe = AgentSafe::builder()
            .registry(catalog().join("actions"))
            .policies(catalog().join("policies"))
            .inventory(inventory)
            .audit_log(dir.path().join("audit.jsonl"))
            .signing_key(SigningKey::hs256_from_str(KEY).unwrap())
            .credential_vault(vault)
            .clock(clock)
            .build()
            .unwrap();
        let executor = Arc::new(moto.executor().unwrap());
        World { moto, dir, safe, executor }
    }

    /// `check` must ALLOW with a ticket; the ticket is executed. The decision and the outcome.
    async fn run(&self, action: &str, target: &str, params: Value) -> (Decision, RunOutcome) {
        let request = CheckRequest::new(action)
            .target(target)
            .caller(CALLER)
            .params(params.as_object().unwrap().clone());
        let decision = self.safe.check(&request).unwrap();
        assert_eq!(decision.result, DecisionResult::Allow, "{decision:#?}");
        let outcome = self.execute(&decision).await;
        (decision, outcome)
    }

    async fn execute(&self, decision: &Decision) -> RunOutcome {
        let token = &decision.ticket.as_ref().expect("an ALLOW carries a ticket").token;
        let outcome =
            self.safe.execute(token, self.executor.clone(), ExecuteOptions::default()).await;
        let outcome = outcome.unwrap();
        // The credential came from the vault, once, and was revoked.
        assert_eq!(outcome.credential_source, Some(CredentialSource::Vault), "{outcome:#?}");
        assert!(outcome.credential_id.is_some() && outcome.revoke_warning.is_none());
        assert_eq!(outcome.result.executor_type, "aws");
        outcome
    }

    /// `action` on `target`, then its rollback through `check_rollback`. Asserts both succeed,
    /// the capture the runner wrote, the plan, and the audit chain; returns both outcomes.
    async fn round_trip(
        &self,
        action: &str,
        target: &str,
        params: Value,
        rollback_action: &str,
    ) -> (RunOutcome, RunOutcome) {
        let (decision, outcome) = self.run(action, target, params.clone()).await;
        assert_eq!(outcome.result.status, ExecutionStatus::Success, "{outcome:#?}");
        let id = decision.audit_id.as_str();

        // The runner's capture, under the action's declared state field names.
        let capture = self.safe.get_state_capture(id).unwrap().expect("a state capture");
        assert_eq!(Some(&capture.event_id), outcome.state_capture_id.as_ref());
        assert_eq!(capture.before_state, outcome.result.before_state);
        assert_eq!(capture.after_state, outcome.result.after_state);
        assert_eq!(capture.state_fields_declared, declared_state_fields(&self.safe, action));
        assert_eq!(capture.executor_type.as_deref(), Some("aws"));
        assert!(!capture.before_state.is_empty(), "{capture:#?}");

        let plan = self.safe.generate_rollback(id).unwrap();
        assert_eq!(plan.rollback_action.as_str(), rollback_action);
        assert!(plan.warnings.is_empty(), "{plan:#?}");
        let rollback = self.safe.check_rollback(id, None).unwrap();
        assert_eq!(rollback.plan.rollback_params, plan.rollback_params);
        assert_eq!(rollback.decision.result, DecisionResult::Allow, "{rollback:#?}");
        assert_eq!(rollback.decision.caller.as_str(), CALLER);
        let undone = self.execute(&rollback.decision).await;
        assert_eq!(undone.result.status, ExecutionStatus::Success, "{undone:#?}");
        assert_eq!(undone.result.action, rollback_action);

        self.assert_chain(&decision, &outcome, &rollback.decision, &undone);
        (outcome, undone)
    }

    /// The audit log verifies and holds exactly: decision → execution → state capture (both
    /// linked to the decision) → the rollback's decision (linked to the original one) → its
    /// execution → its state capture (both linked to the rollback's decision).
    fn assert_chain(
        &self,
        decision: &Decision,
        outcome: &RunOutcome,
        rollback: &Decision,
        undone: &RunOutcome,
    ) {
        let report = self.safe.verify_audit().unwrap().unwrap();
        assert!(report.is_valid(), "{report:#?}");
        let events = self.events();
        let tail = &events[events.len() - 6..];
        let kinds: Vec<EventType> = tail.iter().map(|e| e.event.event_type).collect();
        use EventType::{Decision as D, Execution as X, StateCapture as S};
        assert_eq!(kinds, [D, X, S, D, X, S]);
        let ids: Vec<&AuditId> = tail.iter().map(|e| &e.event.event_id).collect();
        let links: Vec<Option<&str>> =
            tail.iter().map(|e| e.event.correlation_id.as_deref()).collect();
        let (d, r) = (decision.audit_id.as_str(), rollback.audit_id.as_str());
        assert_eq!((ids[0].as_str(), ids[3].as_str()), (d, r));
        assert_eq!(links, [None, Some(d), Some(d), Some(d), Some(r), Some(r)]);
        assert_eq!(Some(ids[1]), outcome.result.execution_audit_id.as_ref());
        assert_eq!(Some(ids[2]), outcome.state_capture_id.as_ref());
        assert_eq!(Some(ids[4]), undone.result.execution_audit_id.as_ref());
        assert_eq!(Some(ids[5]), undone.state_capture_id.as_ref());
        // Each capture names the execution it belongs to.
        for (capture, execution) in [(&tail[2], &tail[1]), (&tail[5], &tail[4])] {
            let cx = capture.event.context.as_ref().unwrap();
            assert_eq!(cx["execution_event_id"], execution.event.event_id.as_str());
        }
    }

    fn events(&self) -> Vec<agent_safe::audit::StoredEvent> {
        agent_safe::audit::read_events(&self.dir.path().join("audit.jsonl")).unwrap()
    }

    /// The context of the `execution` event `outcome` was recorded in.
    fn execution_context(&self, outcome: &RunOutcome) -> Value {
        let id = outcome.result.execution_audit_id.as_ref().unwrap();
        let events = self.events();
        let event = events.iter().find(|e| &e.event.event_id == id).unwrap();
        assert_eq!(event.event.event_type, EventType::Execution);
        assert_eq!(event.event.correlation_id.as_deref(), Some(outcome.result.audit_id.as_str()));
        event.event.context.clone().unwrap()
    }
}

fn declared_state_fields(safe: &AgentSafe, action: &str) -> Vec<String> {
    let def = safe.registry().get(action).unwrap().definition();
    def.state_fields.iter().map(|f| f.name.clone()).collect()
}

#[track_caller]
fn state(value: Value) -> StateMap {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn ec2_stop_then_rollback_starts_it_again() {
    let Some(moto) = moto("sdk ec2 stop").await else { return };
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_owned();
    let params = json!({"instance_id": id, "region": REGION});
    let w = World::new(moto, &[("dev/moto-instance", "aws-ec2-instance", params.clone())]);

    let (stop, start) =
        w.round_trip("ec2-stop-instance", "dev/moto-instance", params, "ec2-start-instance").await;
    assert_eq!(
        stop.result.before_state,
        state(json!({"state": "running", "instance_type": "t3.micro"}))
    );
    assert_eq!(stop.result.after_state["state"], "stopped");
    assert_eq!(start.result.before_state["state"], "stopped");
    assert_eq!(start.result.after_state["state"], stop.result.before_state["state"]);

    // And AWS agrees.
    let ec2 = aws_sdk_ec2::Client::new(&w.moto.sdk_config().await);
    let out = ec2.describe_instances().instance_ids(&id).send().await.unwrap();
    let instance = &out.reservations()[0].instances()[0];
    assert_eq!(instance.state().unwrap().name().unwrap().as_str(), "running");
}

#[tokio::test]
async fn ecs_scale_then_rollback_restores_the_previous_count() {
    let Some(moto) = moto("sdk ecs scale").await else { return };
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    ecs.create_cluster().cluster_name("web").send().await.unwrap();
    ecs.register_task_definition()
        .family("api")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("api")
                .image("nginx")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster("web")
        .service_name("api")
        .task_definition("api")
        .desired_count(2)
        .send()
        .await
        .unwrap();
    let target = json!({"cluster": "web", "service": "api", "region": REGION});
    let w = World::new(moto, &[("dev/moto-service", "aws-ecs-service", target)]);

    let params = json!({"cluster": "web", "service": "api", "desired_count": 5, "region": REGION});
    let (scale, back) =
        w.round_trip("ecs-scale-service", "dev/moto-service", params, "ecs-scale-service").await;
    assert_eq!(scale.result.before_state["desired_count"], 2);
    assert_eq!(scale.result.after_state["desired_count"], 5);
    assert_eq!(back.result.after_state["desired_count"], 2);

    let out = ecs.describe_services().cluster("web").services("api").send().await.unwrap();
    assert_eq!(out.services()[0].desired_count(), 2);
}

fn bucket_policy(action: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "t", "Effect": "Deny", "Principal": "*",
           "Action": action, "Resource": "arn:aws:s3:::moto-reports/*"}]})
    .to_string()
}

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&moto.sdk_config().await).force_path_style(true);
    let s3 = aws_sdk_s3::Client::from_conf(conf.build());
    s3.create_bucket().bucket("moto-reports").send().await.unwrap();
    s3
}

#[tokio::test]
async fn s3_put_bucket_policy_then_rollback_restores_the_old_policy() {
    let Some(moto) = moto("sdk s3 policy").await else { return };
    let s3 = s3(&moto).await;
    // A bucket with a policy: going back to "no policy" needs DeleteBucketPolicy, which no
    // catalog action has (docs/executors/aws.md).
    let old = bucket_policy("s3:PutObject");
    s3.put_bucket_policy().bucket("moto-reports").policy(&old).send().await.unwrap();
    let target = json!({"bucket": "moto-reports", "region": REGION});
    let w = World::new(moto, &[("dev/moto-bucket", "aws-s3-bucket", target)]);

    let new = bucket_policy("s3:GetObject");
    let params = json!({"bucket": "moto-reports", "policy": new, "region": REGION});
    let (put, back) = w
        .round_trip("s3-put-bucket-policy", "dev/moto-bucket", params, "s3-put-bucket-policy")
        .await;
    assert_eq!(put.result.before_state, state(json!({"policy": old})));
    assert_eq!(put.result.after_state, state(json!({"policy": new})));
    assert_eq!(back.result.after_state, state(json!({"policy": old})));

    let out = s3.get_bucket_policy().bucket("moto-reports").send().await.unwrap();
    assert_eq!(out.policy(), Some(old.as_str()));
}

#[tokio::test]
async fn iam_attach_then_rollback_detaches() {
    let Some(moto) = moto("sdk iam attach").await else { return };
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    iam.create_role()
        .role_name("deployer")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    // moto does not load the AWS-managed policies: a customer-managed one.
    let out = iam
        .create_policy()
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Action": "s3:GetObject", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let arn = out.policy().unwrap().arn().unwrap().to_owned();
    let w =
        World::new(moto, &[("dev/moto-role", "aws-iam-role", json!({"role_name": "deployer"}))]);

    let params = json!({"role_name": "deployer", "policy_arn": arn, "region": REGION});
    let (attach, detach) = w
        .round_trip("iam-attach-role-policy", "dev/moto-role", params, "iam-detach-role-policy")
        .await;
    assert_eq!(attach.result.before_state, state(json!({"attached_policies": []})));
    assert_eq!(attach.result.after_state, state(json!({"attached_policies": [arn]})));
    assert_eq!(detach.result.after_state, state(json!({"attached_policies": []})));

    let out = iam.list_attached_role_policies().role_name("deployer").send().await.unwrap();
    assert!(out.attached_policies().is_empty(), "{out:?}");
}

#[tokio::test]
async fn an_unknown_instance_is_a_failure_with_the_aws_code_in_the_audit_log() {
    let Some(moto) = moto("sdk ec2 not found").await else { return };
    let params = json!({"instance_id": "i-0123456789abcdef0", "region": REGION});
    let w = World::new(moto, &[("dev/gone-instance", "aws-ec2-instance", params.clone())]);

    let (_, outcome) = w.run("ec2-stop-instance", "dev/gone-instance", params).await;
    let r = &outcome.result;
    assert_eq!(r.status, ExecutionStatus::Failure, "{outcome:#?}");
    let error = r.error.as_deref().unwrap();
    assert!(
        error.starts_with("AWS API error: InvalidInstanceID.NotFound"),
        "the AWS error code: {error}"
    );
    // The catalog's prechecks are advisory: the failed one is reported, the call still made.
    assert_eq!(r.precheck_results.len(), 1);
    assert!(!r.precheck_results[0].passed && r.precheck_results[0].advisory, "{r:#?}");
    assert_eq!(r.precheck_results[0].message, "instance `i-0123456789abcdef0` does not exist");

    let cx = w.execution_context(&outcome);
    assert_eq!(cx["status"], "failure");
    assert_eq!(cx["error"], error);
    assert_eq!(cx["credential_source"], "vault");
    assert_eq!(cx["before_state"], json!({}));
    let state_error = cx["state_errors"]["before"].as_str().unwrap();
    assert!(state_error.contains("InvalidInstanceID.NotFound"), "{cx:#}");
    assert!(w.safe.verify_audit().unwrap().unwrap().is_valid());
}

#[tokio::test]
async fn an_access_denial_is_a_failure_with_the_aws_code_in_the_audit_log() {
    let Some(moto) = moto("sdk s3 access denied").await else { return };
    let s3 = s3(&moto).await;
    s3.put_object()
        .bucket("moto-reports")
        .key("2026/report.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket("moto-reports")
        .policy(bucket_policy("s3:DeleteObject"))
        .send()
        .await
        .unwrap();
    let params = json!({"bucket": "moto-reports", "key": "2026/report.txt", "region": REGION});
    let w = World::new(moto, &[("dev/moto-report", "aws-s3-object", params.clone())]);

    let (_, outcome) = w.run("s3-delete-object", "dev/moto-report", params).await;
    let r = &outcome.result;
    assert_eq!(r.status, ExecutionStatus::Failure, "{outcome:#?}");
    let error = r.error.as_deref().unwrap();
    // moto's 403 has no body, so no AWS error code: the status stands in for it.
    assert_eq!(error, "AWS API error: HTTP 403");
    let cx = w.execution_context(&outcome);
    assert_eq!(cx["status"], "failure");
    assert_eq!(cx["error"], error);
    // Nothing was deleted: the object is still there, before and after.
    assert_eq!(cx["before_state"]["content_length"], 5);
    assert_eq!(cx["after_state"], cx["before_state"]);
    assert!(w.safe.verify_audit().unwrap().unwrap().is_valid());
}

/// The STS vault on moto's STS: the credential is an assumed-role session whose policy is the
/// one generated from the action's `credentials` block, and it runs the action.
#[tokio::test]
async fn the_sts_vault_issues_a_scoped_session_that_runs_the_action() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/agent-safe-runner";
    let Some(moto) = moto("sdk sts vault").await else { return };
    let sdk = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_owned();
    let params = json!({"instance_id": id, "region": REGION});
    let targets = [("dev/moto-instance", "aws-ec2-instance", params.clone())];
    // moto does not check that the role exists: any role ARN can be assumed.
    let w = World::with_vault(moto, &targets, |clock| {
        Arc::new(StsVault::with_sdk_config(sdk.clone(), ROLE, clock).unwrap())
    });

    let request = CheckRequest::new("ec2-stop-instance")
        .target("dev/moto-instance")
        .caller(CALLER)
        .params(params.as_object().unwrap().clone());
    let decision = w.safe.check(&request).unwrap();
    let ticket = decision.ticket.as_ref().unwrap();
    // Resolving does not consume the ticket: the same one is executed below.
    let credential = w.safe.resolve_credentials(&ticket.token).await.unwrap();
    let payload = credential.payload.expose();
    let key = |name: &str| payload[name].as_str().unwrap().to_owned();
    assert!(key("access_key_id").starts_with("ASIA"), "a session key");
    assert!(!key("session_token").is_empty());
    let policy = session_policy(&credential.scope).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&policy).unwrap(),
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AgentSafeAction", "Effect": "Allow", "Action": ["ec2:StopInstances"],
             "Resource": [format!("arn:aws:ec2:{REGION}:*:instance/{id}")]},
            {"Sid": "AgentSafeDescribe", "Effect": "Allow", "Action": ["ec2:DescribeInstances"],
             "Resource": "*"}]})
    );

    // The keys work, and they are the assumed role's session named after the ticket.
    let session = format!("agent-safe-{}", ticket.nonce);
    let keys = aws_sdk_sts::config::Credentials::new(
        key("access_key_id"),
        key("secret_access_key"),
        Some(key("session_token")),
        None,
        "sts-vault",
    );
    let conf = aws_sdk_sts::config::Builder::from(&sdk).credentials_provider(keys).build();
    let me = aws_sdk_sts::Client::from_conf(conf).get_caller_identity().send().await.unwrap();
    assert_eq!(
        me.arn(),
        Some(
            format!("arn:aws:sts::123456789012:assumed-role/agent-safe-runner/{session}").as_str()
        )
    );
    // What moto recorded of the AssumeRole call (it keeps no SourceIdentity; the unit tests
    // of the vault check that one on the wire).
    let data: Value = serde_json::from_str(&w.moto.get("/moto-api/data.json").unwrap()).unwrap();
    let assumed = &data["sts"]["AssumedRole"];
    assert_eq!(assumed.as_array().unwrap().len(), 1, "{assumed:#}");
    assert_eq!(assumed[0]["role_arn"], ROLE);
    assert_eq!(assumed[0]["session_name"], session.as_str());
    assert_eq!(assumed[0]["policy"], policy.as_str());
    assert_eq!(assumed[0]["access_key_id"], key("access_key_id").as_str());

    // Executing resolves a second session, with the same policy, and stops the instance.
    let outcome = w.execute(&decision).await;
    assert_eq!(outcome.result.status, ExecutionStatus::Success, "{outcome:#?}");
    assert_eq!(outcome.result.after_state["state"], "stopped");
    let data: Value = serde_json::from_str(&w.moto.get("/moto-api/data.json").unwrap()).unwrap();
    let assumed = data["sts"]["AssumedRole"].as_array().unwrap().clone();
    assert_eq!(assumed.len(), 2);
    assert_eq!(assumed[1]["policy"], policy.as_str());
    assert_ne!(assumed[1]["access_key_id"], assumed[0]["access_key_id"]);
}
