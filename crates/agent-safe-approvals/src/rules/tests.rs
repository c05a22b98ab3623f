//! Tests of the approver rules: authentication, self-approval, delegation relatives, roles,
//! two-person rule, and recording.

use std::sync::Arc;

use agent_safe_core::{DelegationLink, ManualClock, Params, RiskClass};
use agent_safe_tickets::{IdentityClaims, IdentityManager, SigningKey, VerifiedIdentity};
use time::macros::datetime;

use super::*;
use crate::model::{DEFAULT_APPROVAL_TTL, NewRequest};

const NOW: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

fn link(id: &str) -> DelegationLink {
    DelegationLink {
        agent_id: id.into(),
        agent_name: String::new(),
        roles: Vec::new(),
        groups: Vec::new(),
        delegated_at: None,
    }
}

/// A verified identity `id` with `roles`, delegated through `chain` (origin first): minted as a
/// token and verified, the only way to a `VerifiedIdentity`.
fn who(id: &str, roles: &[&str], chain: &[&str]) -> VerifiedIdentity {
    let key = SigningKey::hs256_from_str("approval-rules-test-key-0123456789abcdef").unwrap();
    let ids = IdentityManager::new(key, "agent-safe", Arc::new(ManualClock::new(NOW)));
    let claims = IdentityClaims {
        agent_id: id.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        delegation_chain: chain.iter().map(|l| link(l)).collect(),
        delegation_depth: u32::try_from(chain.len()).unwrap(),
        ..IdentityClaims::default()
    };
    let token = ids.create_token_with_claims(&claims, time::Duration::hours(1)).unwrap();
    ids.validate(&token).unwrap()
}

/// A request by `requester`, needing `required` approvals from `roles`.
fn request(requester: &VerifiedIdentity, required: u32, roles: &[&str]) -> ApprovalRequest {
    ApprovalRequest::new(
        NewRequest {
            audit_id: "evt-00000000000a".into(),
            action: "restart-deployment".into(),
            target: "prod/api-server".into(),
            caller: requester.agent_id.clone(),
            params: Params::new(),
            risk_class: RiskClass::Medium,
            effective_risk: RiskClass::Critical,
            policy_matched: Some("require-approval-prod".into()),
            reason: "Production changes need approval".into(),
            ticket_id: None,
            requester: Some(requester.to_record()),
            requirement: ApprovalRequirement {
                required,
                approver_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            },
            ttl: DEFAULT_APPROVAL_TTL,
            request_event_id: None,
        },
        NOW,
    )
}

/// `approver` resolving a request of `requester` (one approval, any role) gives `expected`
/// (`Ok` or the error text).
#[track_caller]
fn check(
    requester: &VerifiedIdentity,
    approver: &VerifiedIdentity,
    verdict: Verdict,
    expected: &str,
) {
    let r = request(requester, 1, &[]);
    let got = match check_approver(&r, approver, verdict, None) {
        Ok(()) => "Ok".to_owned(),
        Err(e) => e.to_string().replace(&r.request_id, "ID"),
    };
    assert_eq!(got, expected);
}

#[test]
fn who_may_resolve() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &["sre"], &[]);
    check(&bot, &alice, Verdict::Approve, "Ok");
    check(&bot, &alice, Verdict::Deny, "Ok");
    // An unverified approver cannot be passed at all (`check_approver` takes a
    // `VerifiedIdentity`: see its `compile_fail` example).
    check(
        &bot,
        &bot,
        Verdict::Approve,
        "approver `deploy-bot` cannot resolve `ID`: it is the requester (self-approval)",
    );
    check(
        &bot,
        &bot,
        Verdict::Deny,
        "approver `deploy-bot` cannot resolve `ID`: it is the requester (self-approval)",
    );
}

#[test]
fn delegation_relatives_of_the_requester_may_not_resolve() {
    // orchestrator -> worker (the requester); orchestrator -> sibling; worker -> child.
    let worker = who("worker", &[], &["orchestrator"]);
    let child = who("child", &[], &["orchestrator", "worker"]);
    let grandchild = who("grandchild", &[], &["orchestrator", "worker", "child"]);
    let sibling = who("sibling", &[], &["orchestrator"]);
    let orchestrator = who("orchestrator", &[], &[]);
    let stranger = who("stranger", &[], &["other-orchestrator"]);
    check(
        &worker,
        &child,
        Verdict::Approve,
        "approver `child` cannot resolve `ID`: it was delegated, directly or not, by the \
         requester `worker`",
    );
    check(
        &worker,
        &grandchild,
        Verdict::Approve,
        "approver `grandchild` cannot resolve `ID`: it was delegated, directly or not, by the \
         requester `worker`",
    );
    check(
        &worker,
        &orchestrator,
        Verdict::Approve,
        "approver `orchestrator` cannot resolve `ID`: it is in the requester's delegation chain \
         (it delegated, directly or not, to `worker`)",
    );
    check(
        &worker,
        &sibling,
        Verdict::Approve,
        "approver `sibling` cannot resolve `ID`: it and the requester `worker` were both \
         delegated by `orchestrator`",
    );
    check(&worker, &stranger, Verdict::Approve, "Ok");
}

#[test]
fn roles_and_distinct_approvers_for_a_two_person_rule() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &["sre"], &[]);
    let bob = who("bob", &["sre", "dba"], &[]);
    let carol = who("carol", &["dev"], &[]);
    let mut r = request(&bot, 2, &["sre"]);

    let err = record(&mut r, &carol, Verdict::Approve, None, NOW, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "approver `carol` cannot resolve `{}`: it needs one of the roles `sre`",
            r.request_id
        )
    );
    assert_eq!(
        record(&mut r, &alice, Verdict::Approve, Some("looks fine"), NOW, None).unwrap(),
        Progress::Recorded { approvals: 1, required: 2 }
    );
    assert_eq!(r.status, ApprovalStatus::Pending);
    let err = record(&mut r, &alice, Verdict::Approve, None, NOW, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "approver `alice` has already approved `{}`; 1 more distinct approver(s) needed",
            r.request_id
        )
    );
    let later = NOW + time::Duration::minutes(5);
    assert_eq!(
        record(&mut r, &bob, Verdict::Approve, None, later, None).unwrap(),
        Progress::Approved
    );
    assert_eq!(r.status, ApprovalStatus::Approved);
    assert_eq!(r.resolved_by.as_deref(), Some("bob"));
    assert_eq!(r.resolved_at, Some(later));
    let by: Vec<&str> = r.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(by, ["alice", "bob"]);
    assert_eq!(r.approvals[0].reason.as_deref(), Some("looks fine"));
    // Resolved: nobody can change it any more.
    let err = record(&mut r, &carol, Verdict::Deny, None, later, None).unwrap_err();
    assert_eq!(err.to_string(), format!("Request {} is already approved", r.request_id));
}

#[test]
fn the_current_policy_requirement_applies_on_top_of_the_stored_one() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &["sre"], &[]);
    let bob = who("bob", &["sre", "dba"], &[]);
    let stricter = ApprovalRequirement { required: 2, approver_roles: vec!["dba".into()] };
    let mut r = request(&bot, 1, &["sre"]);
    let err = record(&mut r, &alice, Verdict::Approve, None, NOW, Some(&stricter)).unwrap_err();
    assert!(err.to_string().contains("it needs one of the roles `dba`"), "{err}");
    assert_eq!(
        record(&mut r, &bob, Verdict::Approve, None, NOW, Some(&stricter)).unwrap(),
        Progress::Recorded { approvals: 1, required: 2 }
    );
    assert_eq!(r.required_approvals, 1, "the stored requirement never changes");
    let err = record(&mut r, &bob, Verdict::Approve, None, NOW, Some(&stricter)).unwrap_err();
    assert!(err.to_string().contains("1 more distinct approver(s) needed"), "{err}");
}

#[test]
fn one_eligible_denial_resolves_the_request() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &["sre"], &[]);
    let bob = who("bob", &["sre"], &[]);
    let mut r = request(&bot, 2, &[]);
    record(&mut r, &alice, Verdict::Approve, None, NOW, None).unwrap();
    assert_eq!(record(&mut r, &bob, Verdict::Deny, Some(""), NOW, None).unwrap(), Progress::Denied);
    assert_eq!(r.status, ApprovalStatus::Denied);
    assert_eq!(r.resolved_by.as_deref(), Some("bob"));
    assert_eq!(r.resolution_reason, None, "an empty reason is no reason");
}

#[test]
fn python_requests_without_a_digest_can_be_denied_but_not_approved() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &[], &[]);
    let mut r = request(&bot, 1, &[]);
    r.params_digest = None;
    r.requester = None;
    let err = check_approver(&r, &alice, Verdict::Approve, None).unwrap_err();
    assert!(matches!(err, ResolveError::NoParamsDigest { .. }), "{err}");
    // Without a stored identity the caller id still counts as the requester.
    let err = check_approver(&r, &bot, Verdict::Deny, None).unwrap_err();
    assert!(matches!(err, ResolveError::SelfApproval { .. }), "{err}");
    check_approver(&r, &alice, Verdict::Deny, None).unwrap();
}

#[test]
fn expired_requests_cannot_be_resolved() {
    let bot = who("deploy-bot", &[], &[]);
    let alice = who("alice", &[], &[]);
    let mut r = request(&bot, 1, &[]);
    assert!(r.expire_if_due(r.expires_at + time::Duration::seconds(1)));
    let err = record(&mut r, &alice, Verdict::Approve, None, NOW, None).unwrap_err();
    assert_eq!(err.to_string(), format!("Request {} is already expired", r.request_id));
}
