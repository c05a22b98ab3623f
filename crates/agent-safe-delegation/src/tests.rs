//! Tests of delegation: the Python semantics and messages, the depth limit carried in the token,
//! cycles, scope narrowing, forged links and Python interop.

use std::sync::Arc;

use agent_safe_core::{DelegationScope, Environment, ManualClock};
use agent_safe_tickets::{IdentityManager, SigningKey, TokenError, VerifiedIdentity};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::{
    DEFAULT_MAX_DEPTH, DelegationError, DelegationManager, DelegationRequest, DelegationResult,
};

/// The Python fixture key and the fixtures' `iat`.
const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";
const T0: OffsetDateTime = datetime!(2026-11-26 09:27:07 UTC);
const PYTHON: &str = include_str!("../../../tests/data/tickets/python-fixtures.json");

struct Fixture {
    clock: Arc<ManualClock>,
    ids: IdentityManager,
    manager: DelegationManager,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(T0));
    let ids =
        IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", clock.clone());
    Fixture { clock, manager: DelegationManager::new(ids.clone()), ids }
}

impl Fixture {
    /// A direct token for the orchestrator: roles deployer+reader, group platform, one hour.
    fn root(&self) -> String {
        self.ids
            .create_token(
                "orchestrator",
                "Orchestrator",
                &["deployer".into(), "reader".into()],
                &["platform".into()],
                Duration::hours(1),
            )
            .unwrap()
    }

    fn delegate(&self, parent: &str, request: &DelegationRequest) -> Result<String, String> {
        self.manager.delegate(parent, request).map(|d| d.token).map_err(|e| e.to_string())
    }

    fn verify(&self, token: &str) -> VerifiedIdentity {
        self.manager.verify(token).unwrap()
    }
}

fn payload_of(token: &str) -> Map<String, Value> {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// `token` with its payload replaced, keeping the original header and signature.
fn with_payload(token: &str, payload: &Map<String, Value>) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let body = B64.encode(serde_json::to_string(payload).unwrap());
    format!("{header}.{body}.{signature}")
}

#[track_caller]
fn check(got: Result<String, String>, expected: Result<(), &str>) {
    match (got, expected) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(reason)) => assert_eq!(e, reason),
        (got, expected) => panic!("got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn creates_a_python_shaped_child_with_its_chain() {
    let f = fixture();
    let root = f.root();
    f.clock.set(T0 + Duration::microseconds(420_436));
    let request = DelegationRequest::new("worker-1").name("worker").roles(["deployer"]);
    let made = f.manager.delegate(&root, &request).unwrap();
    let claims = payload_of(&made.token);
    let keys: Vec<&str> = claims.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "agent_id",
            "agent_name",
            "roles",
            "groups",
            "iss",
            "iat",
            "exp",
            "delegation_chain",
            "delegated_roles",
            "delegation_depth",
            "max_delegation_depth"
        ]
    );
    assert_eq!(
        claims["delegation_chain"],
        json!([{
            "agent_id": "orchestrator",
            "agent_name": "Orchestrator",
            "roles": ["deployer", "reader"],
            "groups": ["platform"],
            "delegated_at": "2026-11-26T09:27:07.420436Z",
        }])
    );
    assert_eq!(claims["delegated_roles"], json!(["deployer"]));
    assert_eq!(claims["delegation_depth"], json!(1));
    assert_eq!(claims["max_delegation_depth"], json!(DEFAULT_MAX_DEPTH));
    assert_eq!(claims["groups"], json!([]), "groups not given are not inherited");
    // No ttl: the parent's remaining lifetime, so both expire together.
    assert_eq!(made.child.expires_at, made.parent.expires_at);
    assert_eq!(made.child.agent_id, "worker-1");
    assert_eq!(made.child.agent_name, "worker");
    // Verified by type; still shown as `verified: true` where it is serialized.
    assert_eq!(serde_json::to_value(&made.child).unwrap()["verified"], json!(true));
    assert_eq!(made.child.delegation_scope, None);
    assert_eq!(made.parent.agent_id, "orchestrator");
    assert_eq!(f.verify(&made.token), made.child);
    // The token is a bearer credential: Debug does not show it.
    let debug = format!("{made:?}");
    assert!(debug.contains("token: [redacted]") && !debug.contains(&made.token), "{debug}");
}

#[test]
fn child_lifetime_is_capped_by_the_parent() {
    let f = fixture();
    let root = f.root(); // expires at T0 + 1h
    f.clock.set(T0 + Duration::minutes(50));
    let ttl = |t: Duration| {
        let token = f.delegate(&root, &DelegationRequest::new("w").ttl(t)).unwrap();
        f.verify(&token).expires_at.unwrap() - (T0 + Duration::minutes(50))
    };
    assert_eq!(ttl(Duration::minutes(5)), Duration::minutes(5));
    assert_eq!(ttl(Duration::minutes(10)), Duration::minutes(10));
    assert_eq!(ttl(Duration::hours(3)), Duration::minutes(10), "capped");
    // Sub-second clock: expiry is truncated to whole seconds, never past the parent's.
    f.clock.set(T0 + Duration::minutes(50) + Duration::milliseconds(700));
    let token = f.delegate(&root, &DelegationRequest::new("w").ttl(Duration::hours(3))).unwrap();
    assert_eq!(f.verify(&token).expires_at, Some(T0 + Duration::hours(1)));
    let token = f.delegate(&root, &DelegationRequest::new("w").ttl(Duration::seconds(2))).unwrap();
    assert_eq!(
        f.verify(&token).expires_at,
        Some(T0 + Duration::minutes(50) + Duration::seconds(2))
    );
}

#[test]
fn refusals_with_pythons_messages() {
    let f = fixture();
    let root = f.root();
    let other_key =
        IdentityManager::new(SigningKey::generate_hs256(), "agent-safe", f.clock.clone());
    let foreign = other_key.create_token("orchestrator", "", &[], &[], Duration::hours(1)).unwrap();
    let other_issuer = IdentityManager::new(
        SigningKey::hs256_from_str(KEY).unwrap(),
        "elsewhere",
        f.clock.clone(),
    )
    .create_token("orchestrator", "", &[], &[], Duration::hours(1))
    .unwrap();
    let w = || DelegationRequest::new("worker-1");
    let cases: Vec<(&str, &str, DelegationRequest, Result<(), &str>)> = vec![
        ("plain", &root, w().roles(["deployer"]).groups(["platform"]), Ok(())),
        (
            "garbage parent",
            "not-a-token",
            w(),
            Err("Invalid parent token: Invalid token: Not enough segments"),
        ),
        (
            "foreign key",
            &foreign,
            w(),
            Err("Invalid parent token: Invalid token: Signature verification failed"),
        ),
        (
            "other issuer",
            &other_issuer,
            w(),
            Err("Invalid parent token: Invalid token issuer: elsewhere"),
        ),
        (
            "roles not held, sorted and deduplicated",
            &root,
            w().roles(["root", "deployer", "admin", "root"]),
            Err("Cannot delegate roles not held by parent: ['admin', 'root']"),
        ),
        (
            "groups not held",
            &root,
            w().groups(["sre"]),
            Err("Cannot delegate groups not held by parent: ['sre']"),
        ),
        (
            "roles are checked before groups",
            &root,
            w().roles(["x"]).groups(["y"]),
            Err("Cannot delegate roles not held by parent: ['x']"),
        ),
        ("max depth 0", &root, w().max_depth(0), Err("Delegation depth 1 exceeds max depth 0")),
        (
            "empty child id",
            &root,
            DelegationRequest::new(""),
            Err("the child agent id must not be empty"),
        ),
        (
            "ttl zero",
            &root,
            w().ttl(Duration::ZERO),
            Err("delegation ttl must be at least one second, got `0s`"),
        ),
        (
            "ttl negative",
            &root,
            w().ttl(Duration::seconds(-5)),
            Err("delegation ttl must be at least one second, got `-5s`"),
        ),
        (
            "self-delegation",
            &root,
            DelegationRequest::new("orchestrator"),
            Err("cannot delegate from `orchestrator` to itself"),
        ),
    ];
    for (name, parent, request, expected) in cases {
        let got = f.delegate(parent, &request);
        match (&got, expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(reason)) => assert_eq!(e, reason, "case {name}"),
            _ => panic!("case {name}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn expired_parent() {
    let f = fixture();
    let root = f.root();
    f.clock.set(T0 + Duration::hours(1));
    check(
        f.delegate(&root, &DelegationRequest::new("w")),
        Err("Invalid parent token: Token has expired"),
    );
    // With a verification leeway the parent still validates but has no lifetime left to give.
    let lenient = DelegationManager::new(f.ids.clone().with_leeway(Duration::minutes(1)));
    let got = lenient.delegate(&root, &DelegationRequest::new("w")).map(|d| d.token);
    check(got.map_err(|e| e.to_string()), Err("Parent token has expired"));
    // One second before expiry a child is made, living one second.
    f.clock.set(T0 + Duration::hours(1) - Duration::seconds(1));
    let token = f.delegate(&root, &DelegationRequest::new("w")).unwrap();
    assert_eq!(f.verify(&token).expires_at, Some(T0 + Duration::hours(1)));
    // A delegated child expires with its parent; its own children cannot be made afterwards.
    f.clock.set(T0 + Duration::hours(1));
    check(
        f.delegate(&token, &DelegationRequest::new("x")),
        Err("Invalid parent token: Token has expired"),
    );
}

#[test]
fn depth_overflow_at_every_level() {
    for limit in 0..=DEFAULT_MAX_DEPTH + 1 {
        let f = fixture();
        let mut token = f.root();
        for depth in 1..=DEFAULT_MAX_DEPTH + 2 {
            let request = DelegationRequest::new(format!("agent-{depth}")).max_depth(limit);
            let got = f.delegate(&token, &request);
            // The request cannot raise the limit above the default carried by the root.
            let effective = limit.min(DEFAULT_MAX_DEPTH);
            if depth <= effective {
                token = got.unwrap();
                let child = f.verify(&token);
                assert_eq!(child.delegation_depth, depth);
                assert_eq!(child.max_delegation_depth, Some(effective));
                assert_eq!(child.delegation_chain.len() as u32, depth);
            } else {
                let expected = format!("Delegation depth {depth} exceeds max depth {effective}");
                assert_eq!(got, Err(expected), "limit {limit}, depth {depth}");
                break;
            }
        }
    }
}

#[test]
fn the_depth_limit_travels_in_the_token_and_only_shrinks() {
    let f = fixture();
    // A root token minted with its own limit of 2.
    let root = f
        .ids
        .create_token_with_claims(
            &agent_safe_tickets::IdentityClaims {
                agent_id: "orchestrator".into(),
                max_delegation_depth: Some(2),
                ..Default::default()
            },
            Duration::hours(1),
        )
        .unwrap();
    // Asking for more does not raise it.
    let a = f.delegate(&root, &DelegationRequest::new("a").max_depth(10)).unwrap();
    assert_eq!(f.verify(&a).max_delegation_depth, Some(2));
    let b = f.delegate(&a, &DelegationRequest::new("b").max_depth(100)).unwrap();
    check(
        f.delegate(&b, &DelegationRequest::new("c")),
        Err("Delegation depth 3 exceeds max depth 2"),
    );
    check(
        f.delegate(&b, &DelegationRequest::new("c").max_depth(7)),
        Err("Delegation depth 3 exceeds max depth 2"),
    );
    // Shrinking in the middle binds everything below.
    let root = f.root();
    let a = f.delegate(&root, &DelegationRequest::new("a").max_depth(1)).unwrap();
    check(
        f.delegate(&a, &DelegationRequest::new("b")),
        Err("Delegation depth 2 exceeds max depth 1"),
    );
    check(
        f.delegate(&a, &DelegationRequest::new("b").max_depth(5)),
        Err("Delegation depth 2 exceeds max depth 1"),
    );
    // A direct token with limit 0 cannot delegate at all.
    let no = f
        .ids
        .create_token_with_claims(
            &agent_safe_tickets::IdentityClaims {
                agent_id: "leaf".into(),
                max_delegation_depth: Some(0),
                ..Default::default()
            },
            Duration::hours(1),
        )
        .unwrap();
    check(
        f.delegate(&no, &DelegationRequest::new("b")),
        Err("Delegation depth 1 exceeds max depth 0"),
    );
}

#[test]
fn self_delegation_and_cycles_are_refused() {
    let f = fixture();
    let root = f.root();
    let a = f.delegate(&root, &DelegationRequest::new("a")).unwrap();
    let b = f.delegate(&a, &DelegationRequest::new("b")).unwrap();
    check(f.delegate(&b, &DelegationRequest::new("b")), Err("cannot delegate from `b` to itself"));
    check(
        f.delegate(&b, &DelegationRequest::new("orchestrator")),
        Err(
            "cannot delegate to `orchestrator`: it is already in the delegation chain `orchestrator` → `a` → `b`",
        ),
    );
    check(
        f.delegate(&b, &DelegationRequest::new("a")),
        Err(
            "cannot delegate to `a`: it is already in the delegation chain `orchestrator` → `a` → `b`",
        ),
    );
    check(f.delegate(&b, &DelegationRequest::new("c")), Ok(()));
    // Ids are compared exactly.
    check(f.delegate(&b, &DelegationRequest::new("A")), Ok(()));
}

#[test]
fn forged_links_fail_the_signature() {
    let f = fixture();
    let root = f.root();
    let a = f.delegate(&root, &DelegationRequest::new("a").roles(["reader"])).unwrap();
    let b = f.delegate(&a, &DelegationRequest::new("b").actions(["get-*"])).unwrap();
    let original = payload_of(&b);
    let mut forgeries: Vec<(&str, Map<String, Value>)> = Vec::new();
    let mut p = original.clone();
    p["delegation_chain"][0]["agent_id"] = json!("ceo-bot");
    forgeries.push(("origin replaced", p));
    let mut p = original.clone();
    p["delegation_chain"][1]["roles"] = json!(["admin"]);
    forgeries.push(("link roles widened", p));
    let mut p = original.clone();
    p["delegation_chain"].as_array_mut().unwrap().remove(0);
    p["delegation_depth"] = json!(1);
    forgeries.push(("link removed (to pass a depth limit)", p));
    let mut p = original.clone();
    p.remove("delegation_scope");
    forgeries.push(("scope dropped", p));
    let mut p = original.clone();
    p["max_delegation_depth"] = json!(99);
    forgeries.push(("limit raised", p));
    let mut p = original.clone();
    p["delegation_chain"] = json!([]);
    p["delegation_depth"] = json!(0);
    p.remove("max_delegation_depth");
    forgeries.push(("made direct", p));
    for (name, payload) in &forgeries {
        let forged = with_payload(&b, payload);
        assert_eq!(
            f.manager.verify(&forged).unwrap_err(),
            TokenError::Invalid("Signature verification failed".into()),
            "{name}"
        );
        // A forged token cannot be a parent either.
        check(
            f.delegate(&forged, &DelegationRequest::new("c")),
            Err("Invalid parent token: Invalid token: Signature verification failed"),
        );
    }
    // The untouched payload still verifies (the helper itself does not break tokens).
    assert_eq!(f.verify(&with_payload(&b, &original)).agent_id, "b");
    // A chain spliced from another genuine token: header and payload of one, signature of another.
    let (b_input, _) = b.rsplit_once('.').unwrap();
    let (_, a_sig) = a.rsplit_once('.').unwrap();
    assert!(f.manager.verify(&format!("{b_input}.{a_sig}")).is_err());
}

#[test]
fn scope_narrowing() {
    use Environment::*;
    let f = fixture();
    let root = f.root();
    let scoped = f
        .delegate(
            &root,
            &DelegationRequest::new("a")
                .actions(["get-*", "restart-deployment"])
                .environments([Dev, Staging]),
        )
        .unwrap();
    assert_eq!(
        f.verify(&scoped).delegation_scope,
        Some(DelegationScope {
            actions: Some(vec!["get-*".into(), "restart-deployment".into()]),
            environments: Some(vec![Dev, Staging]),
        })
    );
    assert_eq!(
        payload_of(&scoped)["delegation_scope"],
        json!({"actions": ["get-*", "restart-deployment"], "environments": ["dev", "staging"]})
    );
    let b = || DelegationRequest::new("b");
    type Case = (&'static str, DelegationRequest, Result<Option<DelegationScope>, &'static str>);
    let cases: Vec<Case> = vec![
        (
            "inherited when not given",
            b(),
            Ok(Some(DelegationScope {
                actions: Some(vec!["get-*".into(), "restart-deployment".into()]),
                environments: Some(vec![Dev, Staging]),
            })),
        ),
        (
            "narrower actions, inherited environments",
            b().actions(["get-pod-logs", "get-node-*"]),
            Ok(Some(DelegationScope {
                actions: Some(vec!["get-pod-logs".into(), "get-node-*".into()]),
                environments: Some(vec![Dev, Staging]),
            })),
        ),
        (
            "narrower environments",
            b().environments([Dev]),
            Ok(Some(DelegationScope {
                actions: Some(vec!["get-*".into(), "restart-deployment".into()]),
                environments: Some(vec![Dev]),
            })),
        ),
        (
            "nothing at all",
            b().actions(Vec::<String>::new()).environments([]),
            Ok(Some(DelegationScope { actions: Some(vec![]), environments: Some(vec![]) })),
        ),
        (
            "wider actions",
            b().actions(["get-*", "delete-*", "scale-deployment"]),
            Err(
                "cannot delegate actions outside the parent's scope: `delete-*`, `scale-deployment` \
                 (parent may request `get-*`, `restart-deployment`)",
            ),
        ),
        (
            "everything",
            b().actions(["*"]),
            Err("cannot delegate actions outside the parent's scope: `*` \
                 (parent may request `get-*`, `restart-deployment`)"),
        ),
        (
            "a pattern wider than a parent's name",
            b().actions(["restart-*"]),
            Err("cannot delegate actions outside the parent's scope: `restart-*` \
                 (parent may request `get-*`, `restart-deployment`)"),
        ),
        (
            "wider environments",
            b().environments([Prod, Dev]),
            Err("cannot delegate environments outside the parent's scope: `prod` \
                 (parent may act on `dev`, `staging`)"),
        ),
        (
            "invalid pattern",
            b().actions(["get-[pod"]),
            Err(
                "invalid action pattern `get-[pod` in delegation scope: only `*` and `?` wildcards are allowed in a delegation scope",
            ),
        ),
        (
            "empty pattern",
            b().actions([""]),
            Err(
                "invalid action pattern `` in delegation scope: an empty pattern matches no action",
            ),
        ),
        (
            "too many patterns",
            b().actions((0..65).map(|i| format!("get-{i}"))),
            Err("delegation scope has 65 action patterns; at most 64 are allowed"),
        ),
    ];
    for (name, request, expected) in cases {
        let got = f.manager.delegate(&scoped, &request);
        match (got, expected) {
            (Ok(d), Ok(scope)) => assert_eq!(d.child.delegation_scope, scope, "case {name}"),
            (Err(e), Err(reason)) => assert_eq!(e.to_string(), reason, "case {name}"),
            (got, expected) => panic!("case {name}: got {got:?}, expected {expected:?}"),
        }
    }
    // An empty scope can only be passed on empty.
    let none = f.delegate(&scoped, &b().environments([])).unwrap();
    check(
        f.delegate(&none, &DelegationRequest::new("c").environments([Dev])),
        Err(
            "cannot delegate environments outside the parent's scope: `dev` (parent may act on nothing)",
        ),
    );
    // Without a parent scope any valid narrowing is accepted; still validated.
    check(f.delegate(&root, &b().actions(["*"])), Ok(()));
    check(
        f.delegate(&root, &b().actions(["{a"])),
        Err(
            "invalid action pattern `{a` in delegation scope: only `*` and `?` wildcards are allowed in a delegation scope",
        ),
    );
}

#[test]
fn python_delegation_tokens_verify_and_can_be_delegated_further() {
    let data: Value = serde_json::from_str(PYTHON).unwrap();
    let token = data["delegation_tokens"]["worker-1 from orchestrator"].as_str().unwrap();
    let f = fixture();
    f.clock.set(T0 + Duration::minutes(1));
    let worker = f.verify(token);
    assert_eq!(worker.agent_id, "worker-1");
    assert_eq!(worker.delegation_depth, 1);
    assert_eq!(worker.delegation_chain[0].agent_id, "orchestrator");
    assert_eq!(worker.delegation_chain[0].roles, ["deployer", "reader"]);
    assert_eq!(
        worker.delegation_chain[0].delegated_at,
        Some(datetime!(2026-11-26 09:27:07.420436 UTC))
    );
    assert_eq!(worker.max_delegation_depth, None, "Python carries no limit");
    assert_eq!(worker.delegation_scope, None);
    // No limit claim: the default applies (depth 2..=5 fine, 6 refused).
    let mut parent = token.to_owned();
    for depth in 2..=DEFAULT_MAX_DEPTH {
        parent = f
            .delegate(&parent, &DelegationRequest::new(format!("sub-{depth}")).roles(["deployer"]))
            .unwrap();
        assert_eq!(f.verify(&parent).delegation_depth, depth);
    }
    check(
        f.delegate(&parent, &DelegationRequest::new("sub-6")),
        Err("Delegation depth 6 exceeds max depth 5"),
    );
    // The Python worker holds only `deployer`.
    check(
        f.delegate(token, &DelegationRequest::new("sub").roles(["reader"])),
        Err("Cannot delegate roles not held by parent: ['reader']"),
    );
    check(
        f.delegate(token, &DelegationRequest::new("orchestrator")),
        Err(
            "cannot delegate to `orchestrator`: it is already in the delegation chain `orchestrator` → `worker-1`",
        ),
    );
}

#[test]
fn results_in_the_sdk_shape() {
    let f = fixture();
    let root = f.root();
    let ok = DelegationResult::from_outcome(
        "w",
        f.manager.delegate(&root, &DelegationRequest::new("w").roles(["reader"])),
    );
    assert!(ok.success);
    assert_eq!(ok.parent_agent_id, "orchestrator");
    assert_eq!(ok.child_agent_id, "w");
    assert_eq!(ok.delegation_depth, 1);
    assert_eq!(ok.error, None);
    let token = ok.token.clone().unwrap();
    assert_eq!(ok.child_identity.as_ref().unwrap(), &f.verify(&token));
    let debug = format!("{ok:?}");
    assert!(debug.contains("token: Some([redacted])") && !debug.contains(&token), "{debug}");
    let json = serde_json::to_value(&ok).unwrap();
    assert_eq!(json["token"], json!(token));
    assert_eq!(json["child_identity"]["delegation_chain"][0]["agent_id"], json!("orchestrator"));

    let refused = DelegationResult::from_outcome(
        "w",
        f.manager.delegate(&root, &DelegationRequest::new("w").roles(["admin"])),
    );
    assert_eq!(
        serde_json::to_value(&refused).unwrap(),
        json!({
            "success": false,
            "token": null,
            "child_identity": null,
            "error": "Cannot delegate roles not held by parent: ['admin']",
            "parent_agent_id": "",
            "child_agent_id": "w",
            "delegation_depth": 0,
        })
    );
}

#[test]
fn a_verify_only_manager_verifies_but_cannot_mint() {
    let f = fixture();
    let root = f.root();
    let key = SigningKey::hs256_from_str(KEY).unwrap();
    let verifier = DelegationManager::new(IdentityManager::verify_only(
        key.verifying_key(),
        "agent-safe",
        f.clock.clone(),
    ));
    assert_eq!(verifier.verify(&root).unwrap().agent_id, "orchestrator");
    assert_eq!(
        verifier.delegate(&root, &DelegationRequest::new("w")).unwrap_err(),
        DelegationError::Mint(TokenError::NoSigningKey)
    );
}

#[test]
fn rust_minted_interop_tokens_still_verify_here() {
    const RUST: &str = include_str!("../../../tests/data/delegation/rust-minted.json");
    let data: Value = serde_json::from_str(RUST).unwrap();
    let f = fixture();
    f.clock.set(datetime!(2026-11-26 10:01 UTC));
    let tokens = &data["delegation_tokens"];
    let worker = f.verify(tokens["worker-1 from orchestrator"].as_str().unwrap());
    assert_eq!(worker.max_delegation_depth, Some(3));
    assert_eq!(
        worker.delegation_scope,
        Some(DelegationScope {
            actions: Some(vec!["get-*".into(), "restart-deployment".into()]),
            environments: Some(vec![Environment::Dev, Environment::Staging]),
        })
    );
    assert_eq!(worker.delegation_chain[0].agent_name, "Orchestrator ✓");
    let sub_token = tokens["sub-1 from worker-1"].as_str().unwrap();
    let sub = f.verify(sub_token);
    assert_eq!(sub.delegation_depth, 2);
    assert_eq!(
        sub.delegation_scope.as_ref().and_then(|s| s.actions.clone()),
        Some(vec!["get-pod-logs".to_owned()])
    );
    // The committed limit still binds: depth 3 is the last one.
    let third = f.delegate(sub_token, &DelegationRequest::new("sub-2")).unwrap();
    check(
        f.delegate(&third, &DelegationRequest::new("sub-3")),
        Err("Delegation depth 4 exceeds max depth 3"),
    );
}
