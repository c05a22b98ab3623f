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
//! Every catalog AWS action runs here: the reversible ones as round trips (ec2 stop → start,
//! ecs scale and update-service → the previous count, s3 put-bucket-policy → the old policy,
//! iam attach → detach, lambda update-function-config → the old memory and timeout), the
//! irreversible ones once with no rollback plan (ec2 reboot, ecs stop-task, lambda invoke with
//! its payload cap, s3 delete-object), and ec2 terminate, critical on an `internal` target,
//! after an approval through the SDK's approvals API. Each checks the outcome, the state
//! before and after under the action's declared `state_fields`, the state read back with the
//! AWS SDK, and the audit links.
//!
//! moto comes from `agent_safe_testkit::moto` (`AGENT_SAFE_MOTO_ENDPOINT` from `cargo
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

use agent_safe::approvals::Verdict;
use agent_safe::audit::StoredEvent;
use agent_safe::core::{EventType, ExecutionStatus, Executor, StateMap};
use agent_safe::credentials::{CredentialVault, EnvVarVault, StsVault, session_policy};
use agent_safe::runner::{CredentialSource, RunOutcome};
use agent_safe::tickets::{IdentityManager, SigningKey};
use agent_safe::{AgentSafe, CheckRequest, Decision, DecisionResult, ExecuteOptions, ManualClock};
use agent_safe_testkit::moto::{self as testing, ACCOUNT, Moto, REGION};
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY: &str = "sdk-aws-runner-key-0123456789abcdef0123456789";
const CALLER: &str = "ops-bot";
/// The issuer of the facade's identity tokens.
const ISSUER: &str = "agent-safe";

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
    /// Mints approvers' identity tokens with the facade's key.
    ids: IdentityManager,
}

/// A vault issuing moto's test keys as the `aws` credential.
fn env_vault(clock: Arc<ManualClock>) -> Arc<dyn CredentialVault> {
    let vault = EnvVarVault::new(clock)
        .with_static("aws", testing::credential_payload())
        .with_env_lookup(|_| None);
    Arc::new(vault)
}

impl World {
    fn new(moto: Moto, targets: &[(&str, &str, Value)]) -> World {
        Self::build(moto, targets, "public", env_vault)
    }

    fn with_vault(
        moto: Moto,
        targets: &[(&str, &str, Value)],
        vault: impl FnOnce(Arc<ManualClock>) -> Arc<dyn CredentialVault>,
    ) -> World {
        Self::build(moto, targets, "public", vault)
    }

    /// Targets of another sensitivity than `public` (`dev` still).
    fn with_sensitivity(moto: Moto, targets: &[(&str, &str, Value)], sensitivity: &str) -> World {
        Self::build(moto, targets, sensitivity, env_vault)
    }

    fn build(
        moto: Moto,
        targets: &[(&str, &str, Value)],
        sensitivity: &str,
        vault: impl FnOnce(Arc<ManualClock>) -> Arc<dyn CredentialVault>,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<Value> = targets
            .iter()
            .map(|(id, kind, params)| {
                json!({"id": id, "type": kind, "environment": "dev", "sensitivity": sensitivity,
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
            .approval_store(dir.path().join("approvals.jsonl"))
            .signing_key(SigningKey::hs256_from_str(KEY).unwrap())
            .credential_vault(vault)
            .clock(clock.clone())
            .build()
            .unwrap();
        let ids = IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), ISSUER, clock);
        let executor = Arc::new(
            agent_safe_executor_aws::AwsExecutor::new(agent_safe_executor_aws::AwsExecutorConfig {
                region: Some(REGION.into()),
                endpoint_url: Some(moto.endpoint().to_owned()),
                ..Default::default()
            })
            .unwrap(),
        );
        World { moto, dir, safe, executor, ids }
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

    /// `action` on `target` through the runner: `check` → ALLOW → ticket → execute. Asserts it
    /// succeeded and the state capture the runner wrote; returns the decision and the outcome.
    async fn run_ok(&self, action: &str, target: &str, params: Value) -> (Decision, RunOutcome) {
        let (decision, outcome) = self.run(action, target, params).await;
        self.assert_success(action, &decision, &outcome);
        (decision, outcome)
    }

    /// The run of `decision` succeeded, and the runner captured the state before and after
    /// under the action's declared state field names.
    #[track_caller]
    fn assert_success(&self, action: &str, decision: &Decision, outcome: &RunOutcome) {
        assert_eq!(outcome.result.status, ExecutionStatus::Success, "{outcome:#?}");
        assert_eq!(outcome.result.action, action);
        let capture = self.safe.get_state_capture(decision.audit_id.as_str()).unwrap();
        let capture = capture.expect("a state capture");
        assert_eq!(Some(&capture.event_id), outcome.state_capture_id.as_ref());
        assert_eq!(capture.before_state, outcome.result.before_state);
        assert_eq!(capture.after_state, outcome.result.after_state);
        assert_eq!(capture.state_fields_declared, declared_state_fields(&self.safe, action));
        assert_eq!(capture.executor_type.as_deref(), Some("aws"));
        assert!(!capture.before_state.is_empty(), "{capture:#?}");
        // Only declared fields are recorded.
        let declared = &capture.state_fields_declared;
        for state in [&capture.before_state, &capture.after_state] {
            assert!(state.keys().all(|k| declared.contains(k)), "{declared:?}: {state:?}");
        }
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
        let (decision, outcome) = self.run_ok(action, target, params).await;
        let id = decision.audit_id.as_str();

        let plan = self.safe.generate_rollback(id).unwrap();
        assert_eq!(plan.rollback_action.as_str(), rollback_action);
        assert!(plan.warnings.is_empty(), "{plan:#?}");
        let rollback = self.safe.check_rollback(id, None).unwrap();
        assert_eq!(rollback.plan.rollback_params, plan.rollback_params);
        assert_eq!(rollback.decision.result, DecisionResult::Allow, "{rollback:#?}");
        assert_eq!(rollback.decision.caller.as_str(), CALLER);
        let undone = self.execute(&rollback.decision).await;
        self.assert_success(rollback_action, &rollback.decision, &undone);

        self.assert_chain(&decision, &outcome, &rollback.decision, &undone);
        (outcome, undone)
    }

    /// The audit log verifies and ends with exactly: decision → execution → state capture
    /// (both linked to the decision) → the rollback's decision (linked to the original one) →
    /// its execution → its state capture (both linked to the rollback's decision).
    fn assert_chain(
        &self,
        decision: &Decision,
        outcome: &RunOutcome,
        rollback: &Decision,
        undone: &RunOutcome,
    ) {
        let tail = self.verified_tail(6);
        assert_run_events([&tail[0], &tail[1], &tail[2]], decision, outcome, None);
        let d = Some(decision.audit_id.as_str());
        assert_run_events([&tail[3], &tail[4], &tail[5]], rollback, undone, d);
    }

    /// The audit log verifies and ends with exactly: decision → execution → state capture,
    /// both linked to the decision.
    fn assert_single(&self, decision: &Decision, outcome: &RunOutcome) {
        let tail = self.verified_tail(3);
        assert_run_events([&tail[0], &tail[1], &tail[2]], decision, outcome, None);
    }

    /// The last `n` events of the audit log, after checking that it verifies.
    fn verified_tail(&self, n: usize) -> Vec<StoredEvent> {
        let report = self.safe.verify_audit().unwrap().unwrap();
        assert!(report.is_valid(), "{report:#?}");
        let mut events = self.events();
        assert!(events.len() >= n, "{events:#?}");
        events.split_off(events.len() - n)
    }

    /// An approver's identity token (minted with the facade's key; not the requester).
    fn approver_token(&self, approver: &str) -> String {
        self.ids.create_token(approver, "", &[], &[], time::Duration::hours(1)).unwrap()
    }

    fn events(&self) -> Vec<StoredEvent> {
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

/// `[decision, execution, state capture]` of one run: the decision's event (its
/// `correlation_id` is `link`), then its execution and capture, both linked to it, the ids the
/// outcome names, and the capture naming the execution it belongs to.
#[track_caller]
fn assert_run_events(
    events: [&StoredEvent; 3],
    decision: &Decision,
    outcome: &RunOutcome,
    link: Option<&str>,
) {
    use EventType::{Decision as D, Execution as X, StateCapture as S};
    let kinds = events.map(|e| e.event.event_type);
    assert_eq!(kinds, [D, X, S]);
    let [d, x, s] = events.map(|e| &e.event);
    assert_eq!(d.event_id, decision.audit_id);
    assert_eq!(d.correlation_id.as_deref(), link);
    let id = Some(decision.audit_id.as_str());
    assert_eq!((x.correlation_id.as_deref(), s.correlation_id.as_deref()), (id, id));
    assert_eq!(Some(&x.event_id), outcome.result.execution_audit_id.as_ref());
    assert_eq!(Some(&s.event_id), outcome.state_capture_id.as_ref());
    let cx = s.context.as_ref().unwrap();
    assert_eq!(cx["execution_event_id"], x.event_id.as_str());
}

fn declared_state_fields(safe: &AgentSafe, action: &str) -> Vec<String> {
    let def = safe.registry().get(action).unwrap().definition();
    def.state_fields.iter().map(|f| f.name.clone()).collect()
}

#[track_caller]
fn state(value: Value) -> StateMap {
    value.as_object().unwrap().clone()
}

/// A running `t3.micro` instance; its id.
async fn ec2_instance(moto: &Moto) -> String {
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
    out.instances()[0].instance_id().unwrap().to_owned()
}

/// The instance's state name, read with the SDK.
async fn ec2_state(moto: &Moto, id: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let instance = &out.reservations()[0].instances()[0];
    instance.state().unwrap().name().unwrap().as_str().to_owned()
}

#[tokio::test]
async fn ec2_stop_then_rollback_starts_it_again() {
    let Some(moto) = moto("sdk ec2 stop").await else { return };
    let id = ec2_instance(&moto).await;
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
    assert_eq!(ec2_state(&w.moto, &id).await, "running");
}

/// Cluster `web` with service `api` (task definition `api:1`, 2 tasks desired).
async fn ecs_service(moto: &Moto) -> aws_sdk_ecs::Client {
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
        .cpu("256")
        .memory("512")
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
    ecs
}

#[tokio::test]
async fn ecs_scale_then_rollback_restores_the_previous_count() {
    let Some(moto) = moto("sdk ecs scale").await else { return };
    let ecs = ecs_service(&moto).await;
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
    let id = ec2_instance(&moto).await;
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

// --- Every other catalog action through the runner -------------------------------------
//
// `ec2-start-instance` and `iam-detach-role-policy` run above as the rollbacks of stop and
// attach (the same path: a ticket from `check_rollback`, executed by the runner).

/// The JSON output of a run.
#[track_caller]
fn output(outcome: &RunOutcome) -> Value {
    serde_json::from_str(&outcome.result.output).unwrap()
}

impl World {
    /// `decision`'s action is irreversible: no rollback plan.
    #[track_caller]
    fn assert_irreversible(&self, decision: &Decision, action: &str) {
        let err = self.safe.generate_rollback(decision.audit_id.as_str()).unwrap_err();
        let expected = format!("action `{action}` is not reversible");
        assert!(err.to_string().contains(&expected), "{err}");
    }

    /// The audit log as text (to look for secrets in).
    fn audit_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap()
    }
}

#[track_caller]
fn assert_prechecks_passed(outcome: &RunOutcome, names: &[&str]) {
    let checks = &outcome.result.precheck_results;
    let got: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, names);
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
}

#[tokio::test]
async fn ec2_reboot_keeps_the_instance_running() {
    let Some(moto) = moto("sdk ec2 reboot").await else { return };
    let id = ec2_instance(&moto).await;
    let params = json!({"instance_id": id, "region": REGION});
    let w = World::new(moto, &[("dev/moto-instance", "aws-ec2-instance", params.clone())]);

    let (decision, outcome) = w.run_ok("ec2-reboot-instance", "dev/moto-instance", params).await;
    assert_prechecks_passed(&outcome, &["instance-running"]);
    assert_eq!(output(&outcome), json!({"instance_id": id, "rebooting": true}));
    // `state` only: the executor's `instance_type` is not declared by this action.
    let running = state(json!({"state": "running"}));
    assert_eq!((&outcome.result.before_state, &outcome.result.after_state), (&running, &running));
    // A reboot leaves no trace in the state (moto records none either): AWS says running.
    assert_eq!(ec2_state(&w.moto, &id).await, "running");
    w.assert_irreversible(&decision, "ec2-reboot-instance");
    w.assert_single(&decision, &outcome);
}

/// `ec2-terminate-instance` is `critical`; on an `internal` target its effective risk stays
/// critical, so the catalog's `require-approval-critical-risk` asks for a human: approved
/// through the SDK's approvals API, then the approval's ticket is executed. (On a `public`
/// target it would be `high` and `allow-dev-all` would allow it outright.)
#[tokio::test]
async fn ec2_terminate_after_an_approval() {
    let Some(moto) = moto("sdk ec2 terminate").await else { return };
    let id = ec2_instance(&moto).await;
    let params = json!({"instance_id": id, "region": REGION});
    let targets = [("dev/moto-instance", "aws-ec2-instance", params.clone())];
    let w = World::with_sensitivity(moto, &targets, "internal");

    let request = CheckRequest::new("ec2-terminate-instance")
        .target("dev/moto-instance")
        .caller(CALLER)
        .params(params.as_object().unwrap().clone());
    let asked = w.safe.check(&request).unwrap();
    assert_eq!(asked.result, DecisionResult::RequireApproval, "{asked:#?}");
    assert_eq!(asked.policy_matched.as_deref(), Some("require-approval-critical-risk"));
    assert!(asked.ticket.is_none());
    let request_id = asked.request_id.clone().expect("an approval request");
    // Nothing happened yet.
    assert_eq!(ec2_state(&w.moto, &id).await, "running");

    let approver = w.approver_token("sre-alice");
    let approved = w
        .safe
        .resolve_approval(&request_id, Verdict::Approve, &approver, Some("decommissioned"))
        .unwrap();
    assert_eq!(approved.result, DecisionResult::Allow, "{approved:#?}");
    // The approval's ticket carries the original decision's audit id.
    assert_eq!(approved.audit_id, asked.audit_id);
    let outcome = w.execute(&approved).await;
    w.assert_success("ec2-terminate-instance", &asked, &outcome);
    assert_prechecks_passed(&outcome, &["instance-exists", "termination-protection-off"]);
    let out = output(&outcome);
    assert_eq!((&out["instance_id"], &out["previous_state"]), (&json!(id), &json!("running")));
    assert_eq!(
        outcome.result.before_state,
        state(json!({"state": "running", "instance_type": "t3.micro"}))
    );
    // TerminateInstances answers with the transition to `shutting-down`, as AWS does; moto
    // then reports `terminated` at once, where AWS may still say `shutting-down` for a while.
    assert_eq!(outcome.result.after_state["state"], "terminated");
    assert_eq!(out["current_state"], "shutting-down");
    assert_eq!(ec2_state(&w.moto, &id).await, "terminated");
    w.assert_irreversible(&asked, "ec2-terminate-instance");

    // The log: the decision, the request and its approval (both linked to the decision), the
    // execution and the capture.
    let tail = w.verified_tail(5);
    let d = asked.audit_id.as_str();
    for (event, kind) in [(&tail[1], "approval_request"), (&tail[2], "approval_resolution")] {
        assert_eq!(event.event.correlation_id.as_deref(), Some(d));
        let cx = event.event.context.as_ref().unwrap();
        assert_eq!(
            (cx["type"].as_str(), cx["request_id"].as_str()),
            (Some(kind), Some(&*request_id))
        );
    }
    assert_run_events([&tail[0], &tail[3], &tail[4]], &asked, &outcome, None);
    assert_eq!(tail[0].event.decision, DecisionResult::RequireApproval);
}

#[tokio::test]
async fn ecs_update_service_then_rollback_restores_the_previous_count() {
    let Some(moto) = moto("sdk ecs update").await else { return };
    let ecs = ecs_service(&moto).await;
    let target = json!({"cluster": "web", "service": "api", "region": REGION});
    let w = World::new(moto, &[("dev/moto-service", "aws-ecs-service", target)]);

    let params = json!({"cluster": "web", "service": "api", "desired_count": 3,
                        "force_new_deployment": true, "region": REGION});
    let (update, back) =
        w.round_trip("ecs-update-service", "dev/moto-service", params, "ecs-update-service").await;
    assert_prechecks_passed(&update, &["service-active"]);
    // moto starts no tasks for a service: `running_count` stays 0.
    let before = state(json!({"desired_count": 2, "running_count": 0, "status": "ACTIVE"}));
    // moto sets `running_count` to the desired count on UpdateService (it runs no tasks).
    let after = state(json!({"desired_count": 3, "running_count": 3, "status": "ACTIVE"}));
    assert_eq!((&update.result.before_state, &update.result.after_state), (&before, &after));
    let out = output(&update);
    assert_eq!((&out["desired_count"], &out["force_new_deployment"]), (&json!(3), &json!(true)));
    let restored = state(json!({"desired_count": 2, "running_count": 2, "status": "ACTIVE"}));
    assert_eq!((&back.result.before_state, &back.result.after_state), (&after, &restored));

    // AWS agrees, and the task definition is untouched (the action cannot change it).
    let out = ecs.describe_services().cluster("web").services("api").send().await.unwrap();
    let service = &out.services()[0];
    assert_eq!(service.desired_count(), 2);
    let task_definition = service.task_definition().unwrap();
    assert!(task_definition.ends_with(":task-definition/api:1"), "{task_definition}");
}

#[tokio::test]
async fn ecs_stop_task_stops_it() {
    let Some(moto) = moto("sdk ecs stop task").await else { return };
    let ecs = ecs_service(&moto).await;
    // moto answers RunTask with HTTP 500 unless the launch type is FARGATE.
    let out = ecs
        .run_task()
        .cluster("web")
        .task_definition("api")
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    let arn = out.tasks()[0].task_arn().unwrap().to_owned();
    let task = arn.rsplit('/').next().unwrap().to_owned();
    let target = json!({"cluster": "web", "task": task, "region": REGION});
    let w = World::new(moto, &[("dev/moto-task", "aws-ecs-task", target)]);

    let params = json!({"cluster": "web", "task": task, "reason": "agent-safe test",
                        "region": REGION});
    let (decision, outcome) = w.run_ok("ecs-stop-task", "dev/moto-task", params).await;
    assert_prechecks_passed(&outcome, &["task-running"]);
    // `last_status` only: the executor's `desired_status` is not declared by this action.
    assert_eq!(outcome.result.before_state, state(json!({"last_status": "RUNNING"})));
    assert_eq!(outcome.result.after_state, state(json!({"last_status": "STOPPED"})));
    let out = output(&outcome);
    assert_eq!((&out["task"], &out["desired_status"]), (&json!(task), &json!("STOPPED")));

    let out = ecs.describe_tasks().cluster("web").tasks(&arn).send().await.unwrap();
    let described = &out.tasks()[0];
    assert_eq!(described.last_status(), Some("STOPPED"));
    assert_eq!(described.stopped_reason(), Some("agent-safe test"));
    w.assert_irreversible(&decision, "ecs-stop-task");
    w.assert_single(&decision, &outcome);
}

const FUNCTION: &str = "report";
const OLD_SECRET: &str = "hunter2-old-secret";
const NEW_SECRET: &str = "hunter3-new-secret";

/// Function `report` (python3.12, 128 MB, 3 s) with a secret in its environment.
async fn lambda_function(moto: &Moto) -> aws_sdk_lambda::Client {
    let sdk = moto.sdk_config().await;
    aws_sdk_iam::Client::new(&sdk)
        .create_role()
        .role_name("lambda-exec")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
    lambda
        .create_function()
        .function_name(FUNCTION)
        .runtime(Runtime::Python312)
        .role(format!("arn:aws:iam::{ACCOUNT}:role/lambda-exec"))
        .handler("app.handler")
        .code(
            FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(&b"code"[..]))
                .build(),
        )
        .memory_size(128)
        .timeout(3)
        .environment(
            Environment::builder()
                .variables("DB_PASSWORD", OLD_SECRET)
                .variables("LOG_LEVEL", "info")
                .build(),
        )
        .send()
        .await
        .unwrap();
    lambda
}

fn lambda_target() -> [(&'static str, &'static str, Value); 1] {
    [(
        "dev/moto-function",
        "aws-lambda-function",
        json!({"function_name": FUNCTION, "region": REGION}),
    )]
}

/// Memory, timeout and the environment change; the environment's values never reach the audit
/// log or the outcome (the param is `sensitive`, and so is the state field: the runner records
/// a keyed digest of the executor's digests). The rollback restores memory and timeout; it
/// cannot restore the environment from a digest, so the plan leaves it out with a warning
/// (docs/executors/aws.md).
#[tokio::test]
async fn lambda_update_function_config_and_back() {
    let Some(moto) = moto("sdk lambda update").await else { return };
    let lambda = lambda_function(&moto).await;
    let w = World::new(moto, &lambda_target());

    let env = json!({"DB_PASSWORD": NEW_SECRET, "LOG_LEVEL": "debug"}).to_string();
    let params = json!({"function_name": FUNCTION, "region": REGION, "memory_size": 512,
                        "timeout": 30, "environment_variables": env});
    let (decision, outcome) =
        w.run_ok("lambda-update-function-config", "dev/moto-function", params).await;
    assert_prechecks_passed(&outcome, &["function-exists"]);
    let (before, after) = (&outcome.result.before_state, &outcome.result.after_state);
    let fields = |s: &StateMap| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(fields(before), ["memory_size", "timeout", "runtime", "environment_variables"]);
    assert_eq!(fields(after), fields(before));
    assert_eq!((&before["memory_size"], &before["timeout"]), (&json!(128), &json!(3)));
    assert_eq!((&after["memory_size"], &after["timeout"]), (&json!(512), &json!(30)));
    assert_eq!(
        (&before["runtime"], &after["runtime"]),
        (&json!("python3.12"), &json!("python3.12"))
    );
    let digest = |s: &StateMap| s["environment_variables"].as_str().unwrap().to_owned();
    assert!(digest(before).starts_with("hmac-sha256:"), "{before:?}");
    assert_ne!(digest(before), digest(after), "the digests show that the environment changed");
    let out = output(&outcome);
    assert_eq!(out["environment_variable_names"], json!(["DB_PASSWORD", "LOG_LEVEL"]));
    assert_eq!((&out["memory_size"], &out["timeout"]), (&json!(512), &json!(30)));
    let text = format!("{outcome:?}{}", w.audit_text());
    for secret in [OLD_SECRET, NEW_SECRET] {
        assert!(!text.contains(secret), "`{secret}` leaked");
    }

    let config = |c: &aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        let vars = c.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        (c.memory_size(), c.timeout(), vars.get("DB_PASSWORD").cloned(), vars.get("LOG_LEVEL").cloned())
    };
    let read = || lambda.get_function_configuration().function_name(FUNCTION).send();
    assert_eq!(
        config(&read().await.unwrap()),
        (Some(512), Some(30), Some(NEW_SECRET.to_owned()), Some("debug".to_owned()))
    );

    // The rollback: memory and timeout from the before-state; the environment was recorded
    // only as a digest, so the plan leaves it out and says so.
    let id = decision.audit_id.as_str();
    let plan = w.safe.generate_rollback(id).unwrap();
    assert_eq!(plan.rollback_action.as_str(), "lambda-update-function-config");
    assert_eq!(
        Value::Object(plan.rollback_params.clone()),
        json!({"function_name": FUNCTION, "memory_size": 128, "region": REGION, "timeout": 3})
    );
    assert_eq!(
        plan.warnings,
        ["Source 'before_state.environment_variables' is a sensitive state field, recorded only \
          as a digest; set it by hand"]
    );
    let rollback = w.safe.check_rollback(id, None).unwrap();
    assert_eq!(rollback.decision.result, DecisionResult::Allow, "{rollback:#?}");
    let undone = w.execute(&rollback.decision).await;
    w.assert_success("lambda-update-function-config", &rollback.decision, &undone);
    assert_eq!(&undone.result.before_state, after);
    let restored = &undone.result.after_state;
    assert_eq!((&restored["memory_size"], &restored["timeout"]), (&json!(128), &json!(3)));
    assert_eq!(restored["environment_variables"], after["environment_variables"]);
    assert_eq!(
        config(&read().await.unwrap()),
        (Some(128), Some(3), Some(NEW_SECRET.to_owned()), Some("debug".to_owned())),
        "memory and timeout are back; the environment stays as set"
    );
    w.assert_chain(&decision, &outcome, &rollback.decision, &undone);
    assert!(!w.audit_text().contains(NEW_SECRET));
}

/// moto runs no function code without Docker: Invoke answers with the event it was given, so
/// "the function's answer" here is the echoed payload. A function error is covered by a
/// replayed response in the executor's unit tests.
#[tokio::test]
async fn lambda_invoke_returns_the_payload_size_capped() {
    let Some(moto) = moto("sdk lambda invoke").await else { return };
    lambda_function(&moto).await;
    let w = World::new(moto, &lambda_target());
    let cap = agent_safe::aws::INVOKE_PAYLOAD_CAP;

    let small = r#"{"day": "monday"}"#.to_owned();
    // Longer than the cap, shorter than the catalog's 262144-character limit on the param.
    let large = json!({"rows": "x".repeat(cap + 1000)}).to_string();
    for payload in [small, large] {
        let params = json!({"function_name": FUNCTION, "region": REGION, "payload": payload});
        let (decision, outcome) =
            w.run_ok("lambda-invoke-function", "dev/moto-function", params).await;
        assert_prechecks_passed(&outcome, &["function-exists"]);
        let active = state(json!({"state": "Active"}));
        assert_eq!((&outcome.result.before_state, &outcome.result.after_state), (&active, &active));
        let out = output(&outcome);
        assert_eq!((&out["status_code"], &out["function_error"]), (&json!(200), &Value::Null));
        assert_eq!(out["payload_bytes"], payload.len());
        let shown = out["payload"].as_str().unwrap();
        if payload.len() <= cap {
            assert_eq!((shown, &out["payload_truncated"]), (payload.as_str(), &json!(false)));
        } else {
            assert_eq!(shown.len(), cap);
            assert!(payload.starts_with(shown));
            assert_eq!(out["payload_truncated"], true);
        }
        w.assert_irreversible(&decision, "lambda-invoke-function");
        w.assert_single(&decision, &outcome);
    }
}

#[tokio::test]
async fn s3_delete_object_removes_it() {
    let Some(moto) = moto("sdk s3 delete").await else { return };
    let s3 = s3(&moto).await;
    s3.put_object()
        .bucket("moto-reports")
        .key("2026/report.txt")
        .content_type("text/plain")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let params = json!({"bucket": "moto-reports", "key": "2026/report.txt", "region": REGION});
    let w = World::new(moto, &[("dev/moto-report", "aws-s3-object", params.clone())]);

    let (decision, outcome) = w.run_ok("s3-delete-object", "dev/moto-report", params).await;
    assert_prechecks_passed(&outcome, &["object-exists"]);
    assert_eq!(
        outcome.result.before_state,
        state(json!({"content_length": 5, "content_type": "text/plain", "version_id": null}))
    );
    // The object is gone, so there is no state after: `{}`, and the reason in the event.
    assert!(outcome.result.after_state.is_empty(), "{outcome:#?}");
    let cx = w.execution_context(&outcome);
    let why = cx["state_errors"]["after"].as_str().unwrap();
    assert!(why.starts_with("AWS API error: "), "{cx:#}");
    let out = output(&outcome);
    assert_eq!((&out["bucket"], &out["key"]), (&json!("moto-reports"), &json!("2026/report.txt")));

    let err = s3.get_object().bucket("moto-reports").key("2026/report.txt").send().await;
    let err = err.unwrap_err().into_service_error();
    assert!(err.is_no_such_key(), "{err:?}");
    w.assert_irreversible(&decision, "s3-delete-object");
    w.assert_single(&decision, &outcome);
}
