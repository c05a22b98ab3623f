//! Approvals end to end through the SDK: request creation and its audit event, who may approve
//! (self-approval, delegated children, unauthenticated approvers, roles, two-person rule),
//! re-evaluation after a policy change, a hand-edited store, one ticket per approval, expiry at
//! the boundary, waiting on a manual clock, two processes approving at once, and a notifier
//! server that is down while decisions go on.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use agent_safe_core::{BoxFuture, DecisionResult, ManualClock};
use agent_safe_testkit::TestServer;
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::delegation::DelegationRequest;
use crate::{AgentSafe, CheckRequest, DurabilityMode, Error};

const KEY: &str = "approvals-test-key-0123456789abcdef0123456789abcdef";
const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);
const PATIENCE: StdDuration = StdDuration::from_secs(20);

const POLICY: &str = "\
rules:
  - name: scale-prod-two-sres
    priority: 100
    match: {actions: [scale-deployment], targets: {environments: [prod]}}
    decision: require_approval
    reason: scaling production needs two SREs
    approvals: {required: 2, approver_roles: [sre]}
  - name: prod-needs-approval
    priority: 10
    match: {targets: {environments: [prod]}}
    decision: require_approval
    reason: production changes need approval
  - name: dev-is-free
    priority: 5
    match: {targets: {environments: [dev]}}
    decision: allow
    reason: dev is free
";

const FREEZE: &str = "\
rules:
  - name: change-freeze
    priority: 1000
    match: {targets: {environments: [prod]}}
    decision: deny
    reason: change freeze
";

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

fn key() -> SigningKey {
    SigningKey::hs256_from_str(KEY).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    ids: IdentityManager,
    safe: AgentSafe,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn audit(&self) -> Vec<agent_safe_audit::StoredEvent> {
        agent_safe_audit::read_events(&self.path("audit.jsonl")).unwrap()
    }

    /// Audit events about approvals (everything but the decisions of `check`).
    fn approval_events(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter_map(|e| e.event.context)
            .filter(|c| {
                matches!(c["type"].as_str(), Some("approval_request" | "approval_resolution"))
            })
            .collect()
    }

    fn token(&self, agent: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.ids.create_token(agent, "", &roles, &[], Duration::hours(8)).unwrap()
    }

    /// A new facade on the same files (e.g. after a policy change).
    fn rebuild(&self) -> AgentSafe {
        builder(self.dir.path(), self.clock.clone()).build().unwrap()
    }

    fn store_text(&self) -> String {
        std::fs::read_to_string(self.path("approvals.jsonl")).unwrap()
    }
}

fn builder(dir: &Path, clock: Arc<ManualClock>) -> crate::Builder {
    AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(dir.join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.join("audit.jsonl"))
        .approval_store(dir.join("approvals.jsonl"))
        .signing_key(key())
        .durability(DurabilityMode::Buffered)
        .clock(clock)
}

/// A setup whose builder `configure` may change (it gets the manual clock too).
fn setup_with(
    configure: impl FnOnce(crate::Builder, &Arc<ManualClock>) -> crate::Builder,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.yaml"), POLICY).unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let safe = configure(builder(dir.path(), clock.clone()), &clock).build().unwrap();
    let ids = IdentityManager::new(key(), "agent-safe", clock.clone());
    Setup { dir, clock, ids, safe }
}

fn setup() -> Setup {
    setup_with(|b, _| b)
}

fn restart_prod(caller: &str) -> CheckRequest {
    CheckRequest::new("restart-deployment")
        .target("prod/api-server")
        .caller(caller)
        .param("namespace", "prod")
        .param("deployment", "api-server")
}

/// Checks a prod restart by `requester` (a token) and returns its request id.
fn request_approval(s: &Setup, requester: &str) -> String {
    let d = s.safe.check(&restart_prod(requester)).unwrap();
    assert_eq!(d.result, DecisionResult::RequireApproval, "{}", d.reason);
    d.request_id.expect("a REQUIRE_APPROVAL with a store carries a request id")
}

fn refusal(r: Result<Decision, Error>) -> String {
    match r {
        Ok(d) => panic!("expected a refusal, got {} — {}", d.result, d.reason),
        Err(e) => e.to_string(),
    }
}

#[test]
fn check_creates_a_request_and_an_audit_event_linked_to_the_decision() {
    let s = setup();
    let bot = s.token("deploy-bot", &["deployer"]);
    let d = s.safe.check(&restart_prod(&bot)).unwrap();
    let id = d.request_id.clone().unwrap();
    let r = s.safe.approval_status(&id).unwrap();
    assert_eq!(r.status, ApprovalStatus::Pending);
    assert_eq!(r.audit_id, d.audit_id);
    assert_eq!((r.action.as_str(), r.target.as_str()), ("restart-deployment", "prod/api-server"));
    assert_eq!(r.params, restart_prod("x").params);
    assert_eq!(r.params_digest, Some(agent_safe_tickets::params_digest(&r.params)));
    assert_eq!(
        r.requester.as_ref().map(|q| (q.agent_id.as_str(), q.verified)),
        Some(("deploy-bot", true))
    );
    assert_eq!(r.expires_at, NOW + DEFAULT_APPROVAL_TTL);
    assert_eq!(r.policy_matched.as_deref(), Some("prod-needs-approval"));

    let events = s.audit();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.event_id, d.audit_id);
    let created = &events[1].event;
    assert_eq!(Some(&created.event_id), r.request_event_id.as_ref());
    assert_eq!(created.decision, DecisionResult::RequireApproval);
    assert_eq!(created.reason, format!("Approval requested: {id}"));
    assert_eq!(created.correlation_id.as_deref(), Some(d.audit_id.as_str()));
    let c = created.context.as_ref().unwrap();
    assert_eq!(c["type"], "approval_request");
    assert_eq!(c["request_id"], id.as_str());
    assert_eq!(c["original_audit_id"], d.audit_id.as_str());
    assert_eq!(c["binding_digest"], r.binding_digest().as_str());
    assert_eq!(c["required_approvals"], 1);
    assert!(s.safe.verify_audit().unwrap().unwrap().errors.is_empty());

    // No request for other results.
    let dev = CheckRequest::new("restart-deployment")
        .target("dev/test-app")
        .caller(bot.as_str())
        .param("namespace", "dev")
        .param("deployment", "test-app");
    assert_eq!(s.safe.check(&dev).unwrap().request_id, None);
    assert_eq!(s.safe.list_pending_approvals().unwrap().requests.len(), 1);
}

#[test]
fn self_approval_is_refused() {
    let s = setup();
    let bot = s.token("deploy-bot", &["deployer"]);
    let id = request_approval(&s, &bot);
    let before = s.store_text();
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &bot, None));
    assert_eq!(
        err,
        format!("approver `deploy-bot` cannot resolve `{id}`: it is the requester (self-approval)")
    );
    // A plain caller id is the requester too.
    let id2 = request_approval(&s, "plain-bot");
    let plain_bot = s.token("plain-bot", &[]);
    let err = refusal(s.safe.resolve_approval(&id2, Verdict::Approve, &plain_bot, None));
    assert!(err.contains("it is the requester (self-approval)"), "{err}");
    assert_eq!(s.approval_events().len(), 2, "only the two creations");
    assert!(s.store_text().starts_with(&before), "the refused request is unchanged");
}

#[test]
fn approval_by_a_delegated_child_of_the_requester_is_refused() {
    let s = setup();
    let orchestrator = s.token("orchestrator", &["deployer", "sre"]);
    let id = request_approval(&s, &orchestrator);
    let child = s
        .safe
        .delegate(&orchestrator, &DelegationRequest::new("helper").roles(["sre"]))
        .unwrap()
        .token
        .unwrap();
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &child, None));
    assert_eq!(
        err,
        format!(
            "approver `helper` cannot resolve `{id}`: it was delegated, directly or not, by the \
             requester `orchestrator`"
        )
    );
    // The orchestrator may not approve what its worker asked for either.
    let worker = s.safe.delegate(&orchestrator, &DelegationRequest::new("worker")).unwrap();
    let id2 = request_approval(&s, &worker.token.unwrap());
    let err = refusal(s.safe.resolve_approval(&id2, Verdict::Approve, &orchestrator, None));
    assert!(err.contains("it is in the requester's delegation chain"), "{err}");
    // An unrelated, authenticated approver may.
    let alice = s.token("alice", &["sre"]);
    let d = s.safe.resolve_approval(&id, Verdict::Approve, &alice, None).unwrap();
    assert_eq!(d.result, DecisionResult::Allow);
}

#[test]
fn the_approver_must_present_a_valid_identity_token() {
    let s = setup();
    let id = request_approval(&s, "deploy-bot");
    let other_key = IdentityManager::new(
        SigningKey::hs256_from_str("some-other-key-0123456789abcdef0123456789ab").unwrap(),
        "agent-safe",
        s.clock.clone(),
    );
    let forged = other_key.create_token("alice", "", &[], &[], Duration::hours(1)).unwrap();
    let expired = s.ids.create_token("alice", "", &[], &[], Duration::minutes(1)).unwrap();
    s.clock.advance(Duration::minutes(2));
    for (token, expected) in [
        ("alice", "invalid approver token: Invalid token: Not enough segments"),
        (forged.as_str(), "invalid approver token: Invalid token: Signature verification failed"),
        (expired.as_str(), "invalid approver token: Token has expired"),
    ] {
        assert_eq!(refusal(s.safe.resolve_approval(&id, Verdict::Approve, token, None)), expected);
    }
    assert_eq!(s.safe.approval_status(&id).unwrap().status, ApprovalStatus::Pending);
}

#[test]
fn one_approval_mints_exactly_one_ticket_and_waiting_returns_it() {
    let s = setup_with(|b, _| b.approval_sleeper(Arc::new(NoWait)));
    let id = request_approval(&s, "deploy-bot");
    let alice = s.token("alice", &["sre"]);
    let d = s
        .safe
        .resolve_approval(&id, Verdict::Approve, &alice, Some("checked the runbook"))
        .unwrap();
    assert_eq!((d.result, d.reason.as_str()), (DecisionResult::Allow, "Approved by alice"));
    assert_eq!(d.request_id.as_deref(), Some(id.as_str()));
    let ticket = d.ticket.clone().unwrap();
    assert_eq!(ticket.params, restart_prod("x").params);
    assert_eq!(ticket.audit_id, s.safe.approval_status(&id).unwrap().audit_id);

    // The stored ticket is the one returned, and every wait returns the very same one.
    assert_eq!(s.safe.approval_status(&id).unwrap().ticket.as_ref(), Some(&ticket));
    for _ in 0..3 {
        let waited = block_on(s.safe.wait_for_approval(
            &id,
            StdDuration::from_secs(5),
            StdDuration::from_secs(1),
        ))
        .unwrap();
        assert_eq!(waited.result, DecisionResult::Allow);
        assert_eq!(waited.ticket.as_ref(), Some(&ticket));
    }
    // Nobody can approve again.
    let bob = s.token("bob", &["sre"]);
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &bob, None));
    assert_eq!(err, format!("Request {id} is already approved"));

    let resolutions: Vec<Value> =
        s.approval_events().into_iter().filter(|c| c["type"] == "approval_resolution").collect();
    assert_eq!(resolutions.len(), 1);
    assert_eq!(resolutions[0]["resolution"], "approve");
    assert_eq!(resolutions[0]["resolved_by"], "alice");
    assert_eq!(resolutions[0]["final"], true);
    assert_eq!(resolutions[0]["ticket_nonce"], ticket.nonce.as_str());
    let event = s.audit().pop().unwrap().event;
    assert_eq!(event.reason, "Approval approved by alice: checked the runbook");
    assert_eq!(event.decision, DecisionResult::Allow);
    assert_eq!(event.correlation_id.as_deref(), Some(ticket.audit_id.as_str()));
    assert!(event.params.is_empty());

    // Once the ticket is used (or expired), waiting no longer hands it out.
    s.clock.advance(Duration::minutes(6));
    let late =
        block_on(s.safe.wait_for_approval(&id, StdDuration::ZERO, StdDuration::ZERO)).unwrap();
    assert_eq!(late.result, DecisionResult::Deny);
    assert_eq!(
        late.reason,
        format!(
            "Approval request {id} was approved, but its ticket cannot be used: Ticket has expired"
        )
    );
}

#[test]
fn denial_resolves_the_request_and_is_audited() {
    let s = setup_with(|b, _| b.approval_sleeper(Arc::new(NoWait)));
    let id = request_approval(&s, "deploy-bot");
    let bob = s.token("bob", &[]);
    let d = s.safe.resolve_approval(&id, Verdict::Deny, &bob, Some("not today")).unwrap();
    assert_eq!((d.result, d.reason.as_str()), (DecisionResult::Deny, "Denied by bob"));
    assert_eq!(d.ticket, None);
    let event = s.audit().pop().unwrap().event;
    assert_eq!(event.reason, "Approval denied by bob: not today");
    assert_eq!(event.context.unwrap()["resolution"], "deny");
    let waited = block_on(s.safe.wait_for_approval(
        &id,
        StdDuration::from_secs(1),
        StdDuration::from_secs(1),
    ))
    .unwrap();
    assert_eq!((waited.result, waited.reason.as_str()), (DecisionResult::Deny, "Denied by bob"));
    let alice = s.token("alice", &[]);
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &alice, None));
    assert_eq!(err, format!("Request {id} is already denied"));
}

#[test]
fn two_person_rule_needs_two_distinct_approvers_with_the_role() {
    let s = setup();
    let scale = CheckRequest::new("scale-deployment")
        .target("prod/api-server")
        .caller("deploy-bot")
        .param("namespace", "prod")
        .param("deployment", "api-server")
        .param("replicas", 5);
    let d = s.safe.check(&scale).unwrap();
    let id = d.request_id.unwrap();
    let r = s.safe.approval_status(&id).unwrap();
    assert_eq!((r.required_approvals, r.approver_roles.clone()), (2, vec!["sre".to_owned()]));

    let (alice, bob, carol) =
        (s.token("alice", &["sre"]), s.token("bob", &["sre"]), s.token("carol", &["dev"]));
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &carol, None));
    assert_eq!(
        err,
        format!("approver `carol` cannot resolve `{id}`: it needs one of the roles `sre`")
    );
    let first = s.safe.resolve_approval(&id, Verdict::Approve, &alice, None).unwrap();
    assert_eq!(first.result, DecisionResult::RequireApproval);
    assert_eq!(first.reason, "Approval 1 of 2 recorded (by alice); waiting for 1 more");
    assert_eq!(first.ticket, None);
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &alice, None));
    assert_eq!(
        err,
        format!("approver `alice` has already approved `{id}`; 1 more distinct approver(s) needed")
    );
    let second = s.safe.resolve_approval(&id, Verdict::Approve, &bob, None).unwrap();
    assert_eq!(
        (second.result, second.reason.as_str()),
        (DecisionResult::Allow, "Approved by alice, bob")
    );
    assert!(second.ticket.is_some());
    let r = s.safe.approval_status(&id).unwrap();
    let by: Vec<&str> = r.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(by, ["alice", "bob"]);
    let finals: Vec<bool> = s
        .approval_events()
        .iter()
        .filter(|c| c["type"] == "approval_resolution")
        .map(|c| c["final"].as_bool().unwrap())
        .collect();
    assert_eq!(finals, [false, true]);
}

#[test]
fn approving_re_evaluates_the_request_against_the_current_policies() {
    let s = setup();
    let id = request_approval(&s, "deploy-bot");
    let alice = s.token("alice", &["sre"]);
    // A change freeze lands after the request was made.
    std::fs::write(s.path("policies/freeze.yaml"), FREEZE).unwrap();
    let frozen = s.rebuild();
    let err = refusal(frozen.resolve_approval(&id, Verdict::Approve, &alice, None));
    assert_eq!(
        err,
        format!("approval of `{id}` refused: the current policies deny it: change freeze")
    );
    assert_eq!(frozen.approval_status(&id).unwrap().status, ApprovalStatus::Pending);
    // Denying is still possible under the freeze.
    let id2 = request_approval(&s, "deploy-bot");
    assert_eq!(
        frozen.resolve_approval(&id2, Verdict::Deny, &alice, None).unwrap().result,
        DecisionResult::Deny
    );

    // The freeze is lifted but the rule now asks for two SREs: one approval is not enough.
    std::fs::remove_file(s.path("policies/freeze.yaml")).unwrap();
    std::fs::write(
        s.path("policies/main.yaml"),
        POLICY.replace(
            "    reason: production changes need approval\n",
            "    reason: production changes need approval\n    approvals: {required: 2, approver_roles: [sre]}\n",
        ),
    )
    .unwrap();
    let stricter = s.rebuild();
    let d = stricter.resolve_approval(&id, Verdict::Approve, &alice, None).unwrap();
    assert_eq!(d.result, DecisionResult::RequireApproval, "{}", d.reason);
    let carol = s.token("carol", &[]);
    let err = refusal(stricter.resolve_approval(&id, Verdict::Approve, &carol, None));
    assert!(err.contains("it needs one of the roles `sre`"), "{err}");
}

#[test]
fn a_hand_edited_store_is_detected_and_refused() {
    let s = setup();
    let id = request_approval(&s, "deploy-bot");
    let other = request_approval(&s, "deploy-bot");
    let alice = s.token("alice", &["sre"]);
    let text = s.store_text();

    // Editing params: the line no longer matches its digest.
    let edited = text.replacen(r#""deployment": "api-server""#, r#""deployment": "payments""#, 1);
    std::fs::write(s.path("approvals.jsonl"), &edited).unwrap();
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &alice, None));
    assert!(
        err.contains("approvals.jsonl:1: request `") && err.contains("its params do not match"),
        "{err}"
    );

    // Editing what the digest does not cover (the target), or everything consistently: the
    // audit event recorded at creation no longer matches.
    let edited =
        text.replacen(r#""target": "prod/api-server""#, r#""target": "prod/web-frontend""#, 1);
    std::fs::write(s.path("approvals.jsonl"), &edited).unwrap();
    let err = refusal(s.safe.resolve_approval(&id, Verdict::Approve, &alice, None));
    let event_id = s.safe.approval_status(&other).unwrap().request_event_id.unwrap();
    assert!(
        err.starts_with(&format!("approval of `{id}` refused: it does not match what audit event")),
        "{err}"
    );
    assert!(!err.contains(event_id.as_str()), "the first request's own event is named: {err}");

    // The other request is unaffected.
    let d = s.safe.resolve_approval(&other, Verdict::Approve, &alice, None).unwrap();
    assert_eq!(d.result, DecisionResult::Allow);
    assert!(s.store_text().contains(r#""target": "prod/web-frontend""#), "nothing else rewritten");
}

#[test]
fn expiry_at_the_boundary_and_recorded_once() {
    let s = setup();
    let on_time = request_approval(&s, "deploy-bot");
    let late = request_approval(&s, "deploy-bot");
    let alice = s.token("alice", &["sre"]);
    // Exactly at expires_at: still pending, may be approved.
    s.clock.set(NOW + DEFAULT_APPROVAL_TTL);
    let d = s.safe.resolve_approval(&on_time, Verdict::Approve, &alice, None).unwrap();
    assert_eq!(d.result, DecisionResult::Allow);
    // One microsecond later: expired.
    s.clock.advance(Duration::microseconds(1));
    for _ in 0..2 {
        let err = refusal(s.safe.resolve_approval(&late, Verdict::Approve, &alice, None));
        assert_eq!(err, format!("Request {late} is already expired"));
    }
    let r = s.safe.approval_status(&late).unwrap();
    assert_eq!((r.status, r.resolved_by.as_deref()), (ApprovalStatus::Expired, Some("system")));
    let expiries: Vec<Value> =
        s.approval_events().into_iter().filter(|c| c["resolution"] == "expire").collect();
    assert_eq!(expiries.len(), 1, "the expiry is audited once");
    assert_eq!(expiries[0]["request_id"], late.as_str());
    let reason = s.audit().into_iter().rev().find(|e| e.event.reason.contains("expired")).unwrap();
    assert_eq!(reason.event.reason, format!("Approval request {late} expired"));
    assert_eq!(reason.event.decision, DecisionResult::Deny);
}

/// Runs a future to completion on a current-thread tokio runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

/// A sleeper that returns at once.
#[derive(Debug)]
struct NoWait;

impl Sleeper for NoWait {
    fn sleep(&self, _: StdDuration) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

type OnSleep = Box<dyn FnMut(u32) + Send>;

/// A sleeper that moves the manual clock instead of sleeping, and runs `on_sleep` with the
/// number of sleeps so far.
struct ClockSleeper {
    clock: Arc<ManualClock>,
    sleeps: Mutex<u32>,
    on_sleep: Mutex<Option<OnSleep>>,
}

impl std::fmt::Debug for ClockSleeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClockSleeper")
    }
}

impl Sleeper for ClockSleeper {
    fn sleep(&self, d: StdDuration) -> BoxFuture<'static, ()> {
        self.clock.advance(Duration::try_from(d).unwrap());
        let n = {
            let mut n = self.sleeps.lock().unwrap();
            *n += 1;
            *n
        };
        if let Some(f) = self.on_sleep.lock().unwrap().as_mut() {
            f(n);
        }
        Box::pin(async {})
    }
}

fn clock_sleeper(clock: &Arc<ManualClock>) -> Arc<ClockSleeper> {
    Arc::new(ClockSleeper {
        clock: clock.clone(),
        sleeps: Mutex::new(0),
        on_sleep: Mutex::new(None),
    })
}

#[test]
fn waiting_polls_on_the_clock_until_resolved_timed_out_or_expired() {
    let mut sleeper = None;
    let s = setup_with(|b, clock| {
        let made = clock_sleeper(clock);
        sleeper = Some(made.clone());
        b.approval_sleeper(made)
    });
    let sleeper = sleeper.unwrap();
    let clock = s.clock.clone();

    // Timeout: 60 s polled every 2 s; the request stays pending.
    let id = request_approval(&s, "deploy-bot");
    let d = block_on(s.safe.wait_for_approval(
        &id,
        StdDuration::from_secs(60),
        StdDuration::from_secs(2),
    ))
    .unwrap();
    assert_eq!(
        (d.result, d.reason.clone()),
        (DecisionResult::Deny, format!("Approval request {id} timed out"))
    );
    assert_eq!(*sleeper.sleeps.lock().unwrap(), 30);
    assert_eq!(clock.now(), NOW + Duration::seconds(60));
    assert_eq!(s.safe.approval_status(&id).unwrap().status, ApprovalStatus::Pending);

    // Approved by someone else while waiting (at the third poll).
    let safe = s.safe.clone();
    let alice = s.token("alice", &["sre"]);
    let waiting_for = id.clone();
    *sleeper.on_sleep.lock().unwrap() = Some(Box::new(move |n| {
        if n == 33 {
            safe.resolve_approval(&waiting_for, Verdict::Approve, &alice, None).unwrap();
        }
    }));
    let d = block_on(s.safe.wait_for_approval(
        &id,
        StdDuration::from_secs(60),
        StdDuration::from_secs(2),
    ))
    .unwrap();
    assert_eq!(d.result, DecisionResult::Allow, "{}", d.reason);
    assert_eq!(d.ticket, s.safe.approval_status(&id).unwrap().ticket);
    *sleeper.on_sleep.lock().unwrap() = None;

    // Expired while waiting: DENY, and the expiry recorded and audited.
    let id = request_approval(&s, "deploy-bot");
    let d = block_on(s.safe.wait_for_approval(
        &id,
        StdDuration::from_secs(7200),
        StdDuration::from_secs(600),
    ))
    .unwrap();
    assert_eq!(
        (d.result, d.reason.clone()),
        (DecisionResult::Deny, format!("Request {id} expired"))
    );
    assert_eq!(s.safe.approval_status(&id).unwrap().resolved_by.as_deref(), Some("system"));
    assert_eq!(s.approval_events().iter().filter(|c| c["resolution"] == "expire").count(), 1);

    // The future is `Send`, so it can be spawned on a multi-threaded runtime.
    fn send<T: Send>(t: T) -> T {
        t
    }
    let unknown =
        send(s.safe.wait_for_approval("apr-000000000000", StdDuration::ZERO, StdDuration::ZERO));
    let err = block_on(unknown).unwrap_err();
    assert_eq!(err.to_string(), "Approval request not found: apr-000000000000");
}

#[test]
fn without_a_store_there_are_no_requests_and_notifiers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.yaml"), POLICY).unwrap();
    let plain = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(dir.path().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .build()
        .unwrap();
    let d = plain.check(&restart_prod("deploy-bot")).unwrap();
    assert_eq!((d.result, d.request_id), (DecisionResult::RequireApproval, None));
    assert_eq!(plain.list_pending_approvals().unwrap(), Listing::default());
    let err = plain.approval_status("apr-000000000000").unwrap_err();
    assert!(err.to_string().starts_with("no approval store configured"), "{err}");

    let webhook: Arc<dyn Notifier> = Arc::new(WebhookNotifier::new("http://127.0.0.1:9/").unwrap());
    let err = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(dir.path().join("policies"))
        .approval_notifiers(vec![webhook])
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "approval_notifiers requires approval_store to be set");
}

#[test]
fn approvals_settings_come_from_agent_safe_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.yaml"), POLICY).unwrap();
    let config = dir.path().join("agent-safe.yaml");
    let cat = catalog();
    std::fs::write(
        &config,
        format!(
            "registry: {}\npolicies: policies\ninventory: {}\napprovals:\n  store: approvals.jsonl\n  \
             ttl_seconds: 600\n  approver_token_file: approver.jwt\n  notifiers:\n    \
             webhook_url: http://127.0.0.1:9/hook\n",
            cat.join("actions").display(),
            cat.join("inventory.yaml").display()
        ),
    )
    .unwrap();
    let file = crate::ConfigFile::load(&config).unwrap();
    let approvals = file.approvals.clone().unwrap();
    assert_eq!(approvals.store, Some(dir.path().join("approvals.jsonl")));
    assert_eq!(approvals.approver_token_file, Some(dir.path().join("approver.jwt")));
    let clock = Arc::new(ManualClock::new(NOW));
    let safe = AgentSafe::builder()
        .config_file(&config)
        .unwrap()
        .clock(clock)
        .approval_retry(RetryPolicy { attempts: Some(1), ..RetryPolicy::NOTIFICATIONS })
        .build()
        .unwrap();
    let d = safe.check(&restart_prod("deploy-bot")).unwrap();
    let r = safe.approval_status(&d.request_id.unwrap()).unwrap();
    assert_eq!(r.expires_at, NOW + Duration::minutes(10));
    assert!(safe.flush_notifications(PATIENCE));
    assert_eq!(safe.notification_deliveries().len(), 1);

    std::fs::write(&config, "registry: a\npolicies: b\napprovals:\n  stor: x\n").unwrap();
    let err = crate::ConfigFile::load(&config).unwrap_err().to_string();
    assert!(err.contains("unknown field `stor`"), "{err}");
}

// --- notifier server down -------------------------------------------------------------------

/// A sleeper the test opens, reporting each wait.
#[derive(Debug)]
struct Gate {
    asked: Mutex<Sender<StdDuration>>,
    open: Arc<tokio::sync::Semaphore>,
}

impl Sleeper for Gate {
    fn sleep(&self, d: StdDuration) -> BoxFuture<'static, ()> {
        let _ = self.asked.lock().unwrap().send(d);
        let open = self.open.clone();
        Box::pin(async move {
            if let Ok(permit) = open.acquire().await {
                permit.forget();
            }
        })
    }
}

#[test]
fn notifier_server_down_decisions_go_on_and_the_notification_is_retried_until_delivered() {
    let mut server = TestServer::ok().unwrap();
    server.stop();
    let port = server.addr().port();
    let (asked_tx, asked) = channel();
    let gate = Arc::new(Gate {
        asked: Mutex::new(asked_tx),
        open: Arc::new(tokio::sync::Semaphore::new(0)),
    });
    let webhook: Arc<dyn Notifier> =
        Arc::new(WebhookNotifier::new(format!("http://127.0.0.1:{port}/approvals")).unwrap());
    let s = setup_with(|b, _| b.approval_notifiers(vec![webhook]).approval_sleeper(gate.clone()));

    // The server is down: the decision is made, recorded and returned all the same.
    let update = CheckRequest::new("lambda-update-function-config")
        .target("prod/report-generator")
        .caller("deploy-bot")
        .param("function_name", "report-generator")
        .param("region", "us-east-1")
        .param("environment_variables", r#"{"DB_PASSWORD": "hunter2"}"#);
    let d = s.safe.check(&update).unwrap();
    assert_eq!(d.result, DecisionResult::RequireApproval);
    let id = d.request_id.unwrap();
    // First attempt refused; the retry waits on the gate.
    assert_eq!(asked.recv_timeout(PATIENCE).unwrap(), StdDuration::from_secs(1));
    // Decisions keep coming while the notification is pending.
    let d2 = s.safe.check(&restart_prod("deploy-bot")).unwrap();
    assert_eq!(d2.result, DecisionResult::RequireApproval);
    assert_eq!(asked.recv_timeout(PATIENCE).unwrap(), StdDuration::from_secs(1));
    assert!(s.safe.notification_deliveries().is_empty());

    // The server comes back; both retries get through.
    server.restart().unwrap();
    gate.open.add_permits(2);
    assert!(server.wait_for(2, PATIENCE));
    let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
    assert!(s.safe.flush_notifications(PATIENCE));
    let deliveries = s.safe.notification_deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.delivered() && d.attempts == 2), "{deliveries:?}");

    // The payload names the request; the sensitive param is redacted in it, not in the store.
    let payload: Value = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .find(|v| v["request"]["request_id"] == id.as_str())
        .unwrap();
    assert_eq!(payload["type"], "approval_request");
    assert_eq!(payload["request"]["params"]["environment_variables"], "[redacted]");
    assert!(!bodies.iter().any(|b| b.contains("hunter2")));
    let r = s.safe.approval_status(&id).unwrap();
    assert_eq!(r.params["environment_variables"], json!(r#"{"DB_PASSWORD": "hunter2"}"#));
    // The outcome is recorded with the request.
    assert_eq!(r.notifications.len(), 1);
    assert!(r.notifications[0].delivered && r.notifications[0].attempts == 2);
    assert_eq!(r.notifications[0].notifier, "webhook");
}

// --- two processes approving at once ----------------------------------------------------------

const RACE_DIR: &str = "AGENT_SAFE_TEST_APPROVAL_RACE_DIR";
const RACE_ID: &str = "AGENT_SAFE_TEST_APPROVAL_RACE_ID";
const RACE_APPROVER: &str = "AGENT_SAFE_TEST_APPROVAL_RACE_APPROVER";

/// The child side of `two_processes_approving_at_once_exactly_one_wins`: builds its own facade
/// on the shared files, says it is ready, waits for `go`, approves, prints the outcome.
#[test]
#[ignore = "helper process, run by two_processes_approving_at_once_exactly_one_wins"]
fn approval_race_child() {
    let dir = PathBuf::from(std::env::var(RACE_DIR).expect("set by the race test"));
    let id = std::env::var(RACE_ID).expect("set by the race test");
    let approver = std::env::var(RACE_APPROVER).expect("set by the race test");
    let clock = Arc::new(ManualClock::new(NOW));
    let safe = builder(&dir, clock.clone()).build().unwrap();
    let ids = IdentityManager::new(key(), "agent-safe", clock);
    let token = ids.create_token(&approver, "", &["sre".into()], &[], Duration::hours(1)).unwrap();
    println!("APPROVAL-RACE ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    match safe.resolve_approval(&id, Verdict::Approve, &token, None) {
        Ok(d) => println!("APPROVAL-RACE won {}", d.ticket.map(|t| t.nonce).unwrap_or_default()),
        Err(e) => println!("APPROVAL-RACE lost {e}"),
    }
}

struct Child {
    process: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Child {
    fn spawn(dir: &Path, id: &str, approver: &str) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "approvals::tests::approval_race_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RACE_DIR, dir)
            .env(RACE_ID, id)
            .env(RACE_APPROVER, approver)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        Self { process, stdout }
    }

    /// The text after the next `APPROVAL-RACE ` marker.
    fn next_marker(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(self.stdout.read_line(&mut line).unwrap(), 0, "child exited early");
            if let Some((_, rest)) = line.trim().split_once("APPROVAL-RACE ") {
                return rest.to_owned();
            }
        }
    }
}

#[test]
fn two_processes_approving_at_once_exactly_one_wins() {
    let s = setup();
    let rounds = 12;
    let mut nonces = Vec::new();
    for round in 0..rounds {
        let id = request_approval(&s, "deploy-bot");
        let mut children =
            [Child::spawn(s.dir.path(), &id, "alice"), Child::spawn(s.dir.path(), &id, "bob")];
        // Both are ready before either is told to go, so they contend for the store's lock.
        for child in &mut children {
            assert_eq!(child.next_marker(), "ready");
        }
        for child in &mut children {
            child.process.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        let results: Vec<String> = children.iter_mut().map(Child::next_marker).collect();
        for child in &mut children {
            assert!(child.process.wait().unwrap().success());
        }
        let won: Vec<&String> = results.iter().filter(|r| r.starts_with("won ")).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let lost = results.iter().find(|r| r.starts_with("lost ")).unwrap();
        assert_eq!(lost, &format!("lost Request {id} is already approved"), "round {round}");
        let r = s.safe.approval_status(&id).unwrap();
        assert_eq!(r.approvals.len(), 1, "round {round}");
        let nonce = won[0].trim_start_matches("won ").to_owned();
        assert_eq!(r.ticket.map(|t| t.nonce), Some(nonce.clone()), "the winner's ticket is stored");
        nonces.push(nonce);
    }
    // One resolution event per request, each with the one ticket; the chain is intact.
    let resolutions: Vec<String> = s
        .approval_events()
        .into_iter()
        .filter(|c| c["type"] == "approval_resolution")
        .map(|c| c["ticket_nonce"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(resolutions, nonces);
    assert!(s.safe.verify_audit().unwrap().unwrap().errors.is_empty());
    let listing = s.safe.approval_store().unwrap().list().unwrap();
    assert_eq!(listing.requests.len(), rounds);
    assert!(listing.corrupt.is_empty());
}
