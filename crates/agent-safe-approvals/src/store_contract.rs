//! The contract every [`ApprovalBackend`](crate::ApprovalBackend) keeps (feature `test-util`):
//! run by this crate's tests against the file store and by `agent-safe-postgres`'s against
//! PostgreSQL, so every backend is held to the same rules. [`round_trip`] takes a store that
//! holds no request yet; the others only look at the requests they make.

use agent_safe_core::{ManualClock, Params, RiskClass};
use serde_json::json;
use time::Duration;

use crate::{
    ApprovalRequest, ApprovalRequirement, ApprovalStatus, ApprovalStore, DEFAULT_APPROVAL_TTL,
    NewRequest, StoreError,
};

/// A new request for deployment `deployment`.
pub fn new_request(deployment: &str) -> NewRequest {
    let mut params = Params::new();
    params.insert("namespace".into(), json!("prod"));
    params.insert("deployment".into(), json!(deployment));
    NewRequest {
        audit_id: "evt-00000000000a".into(),
        action: "restart-deployment".into(),
        target: "prod/api-server".into(),
        caller: "deploy-bot".into(),
        params,
        risk_class: RiskClass::Medium,
        effective_risk: RiskClass::Critical,
        policy_matched: Some("require-approval-prod".into()),
        reason: "Production changes need approval".into(),
        ticket_id: None,
        requester: None,
        requirement: ApprovalRequirement::default(),
        ttl: DEFAULT_APPROVAL_TTL,
        request_event_id: None,
    }
}

/// Resolves `id` as `by` if it is pending: whether this call did.
fn approve(store: &ApprovalStore, id: &str, by: &str) -> Result<bool, StoreError> {
    store.update(id, |slot| {
        if slot.request.status != ApprovalStatus::Pending {
            return Ok::<_, StoreError>(false);
        }
        slot.request.status = ApprovalStatus::Approved;
        slot.request.resolved_by = Some(by.to_owned());
        slot.request.resolved_at = Some(slot.now);
        Ok(true)
    })
}

/// Requests come back as they were stored, in the order they were made; an unknown id is
/// "Request not found" (Python's message).
#[expect(clippy::unwrap_used, reason = "a test suite")]
pub fn round_trip(store: &ApprovalStore) {
    assert!(store.list().unwrap().requests.is_empty());
    let made: Vec<ApprovalRequest> =
        ["a", "b", "c"].iter().map(|d| store.create(new_request(d)).unwrap()).collect();
    for request in &made {
        assert_eq!(&store.get(&request.request_id).unwrap(), request);
    }
    let listing = store.list().unwrap();
    assert_eq!(listing.requests, made);
    assert!(listing.corrupt.is_empty());
    assert_eq!(store.list_pending().unwrap().requests, made);
    assert!(store.exists());
    let err = store.get("apr-000000000000").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(err.to_string(), "Request not found: apr-000000000000");
    let err = approve(store, "apr-000000000000", "alice").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

/// Expiry is lazy and strict: pending at `expires_at`, expired a microsecond later in every
/// read, written only by an update, which sees it once.
#[expect(clippy::unwrap_used, reason = "a test suite")]
pub fn lazy_expiry(store: &ApprovalStore, clock: &ManualClock) {
    let a = store.create(new_request("a")).unwrap();
    let b = store.create(new_request("b")).unwrap();
    clock.set(a.expires_at);
    assert_eq!(store.get(&a.request_id).unwrap().status, ApprovalStatus::Pending);
    let pending = store.list_pending().unwrap().requests;
    assert_eq!(pending.iter().filter(|r| r.request_id == a.request_id).count(), 1);
    clock.advance(Duration::microseconds(1));
    assert_eq!(store.get(&a.request_id).unwrap().status, ApprovalStatus::Expired);
    let ids = [a.request_id.as_str(), b.request_id.as_str()];
    let pending = store.list_pending().unwrap().requests;
    assert!(!pending.iter().any(|r| ids.contains(&r.request_id.as_str())));
    let listed = store.list().unwrap().requests;
    let ours: Vec<_> = listed.iter().filter(|r| ids.contains(&r.request_id.as_str())).collect();
    assert_eq!(ours.len(), 2);
    assert!(ours.iter().all(|r| r.status == ApprovalStatus::Expired));
    let seen = store.update(&a.request_id, |slot| Ok::<_, StoreError>(slot.expired_now)).unwrap();
    assert!(seen, "the first update sees the expiry");
    let seen = store.update(&a.request_id, |slot| Ok::<_, StoreError>(slot.expired_now)).unwrap();
    assert!(!seen, "the expiry was recorded by the first update");
    // `b` was never updated: still stored as pending, so an update sees its expiry.
    let seen = store.update(&b.request_id, |slot| Ok::<_, StoreError>(slot.expired_now)).unwrap();
    assert!(seen);
}

/// An update that fails or changes nothing writes nothing; one that changes the id is refused.
#[expect(clippy::unwrap_used, reason = "a test suite")]
pub fn update_rules(store: &ApprovalStore) {
    let a = store.create(new_request("a")).unwrap();
    let err = store
        .update(&a.request_id, |slot| {
            slot.request.status = ApprovalStatus::Denied;
            Err::<(), _>(StoreError::Backend("refused by the caller".into()))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "refused by the caller");
    assert_eq!(store.get(&a.request_id).unwrap(), a, "a failed update writes nothing");
    store.update(&a.request_id, |_| Ok::<_, StoreError>(())).unwrap();
    assert_eq!(store.get(&a.request_id).unwrap(), a);
    let err = store
        .update(&a.request_id, |slot| {
            slot.request.request_id = "apr-ffffffffffff".into();
            Ok::<_, StoreError>(())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "an update may not change the request id (`{}` to `apr-ffffffffffff`)",
            a.request_id
        )
    );
    assert_eq!(store.get(&a.request_id).unwrap(), a);
    assert!(matches!(store.get("apr-ffffffffffff"), Err(StoreError::NotFound(_))));
    assert!(approve(store, &a.request_id, "alice").unwrap());
    let stored = store.get(&a.request_id).unwrap();
    assert_eq!(stored.status, ApprovalStatus::Approved);
    assert_eq!(stored.resolved_by.as_deref(), Some("alice"));
    let pending = store.list_pending().unwrap().requests;
    assert!(!pending.iter().any(|r| r.request_id == a.request_id));
}

/// Two handles on one store (two processes, two replicas): a request made through one is
/// read, listed and resolved through the other, and the resolution is seen by the first.
#[expect(clippy::unwrap_used, reason = "a test suite")]
pub fn shared(a: &ApprovalStore, b: &ApprovalStore) {
    let request = a.create(new_request("shared")).unwrap();
    assert_eq!(b.get(&request.request_id).unwrap(), request);
    let pending = b.list_pending().unwrap().requests;
    assert_eq!(pending.iter().filter(|r| **r == request).count(), 1);
    assert!(approve(b, &request.request_id, "bob").unwrap());
    assert!(!approve(a, &request.request_id, "carol").unwrap(), "already resolved through b");
    assert_eq!(a.get(&request.request_id).unwrap().resolved_by.as_deref(), Some("bob"));
}

/// Eight threads, spread over `stores` (handles on one store), race to resolve each of
/// `rounds` requests: exactly one wins each time, and the stored resolution is the winner's
/// (what a ticket minted by the winner relies on: one ticket per approval).
#[expect(clippy::unwrap_used, reason = "a test suite")]
pub fn racing(stores: &[ApprovalStore], rounds: usize) {
    let mut made = Vec::new();
    for round in 0..rounds {
        let request = stores[0].create(new_request(&format!("race-{round}"))).unwrap();
        let winners: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = &stores[t % stores.len()];
                    let id = request.request_id.clone();
                    s.spawn(move || {
                        let me = format!("approver-{t}");
                        approve(store, &id, &me).unwrap().then_some(me)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = stores[stores.len() - 1].get(&request.request_id).unwrap();
        assert_eq!(stored.resolved_by.as_ref(), winners.first(), "round {round}");
        made.push(request.request_id);
    }
    // Nothing was lost on the way: each request is there once, approved.
    let listing = stores[0].list().unwrap();
    let ours: Vec<_> = listing.requests.iter().filter(|r| made.contains(&r.request_id)).collect();
    assert_eq!(ours.len(), rounds);
    assert!(ours.iter().all(|r| r.status == ApprovalStatus::Approved));
}
