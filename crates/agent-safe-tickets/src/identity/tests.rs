//! Tests of identity tokens: minting, validation order and every rejection reason.

use super::*;
use crate::test_support::*;
use crate::{KeySet, MAX_TOKEN_BYTES, TicketIssuer};
use agent_safe_core::Params;
use serde_json::json;

fn manager() -> (IdentityManager, Arc<agent_safe_core::ManualClock>) {
    let clock = clock();
    let key = SigningKey::hs256_from_str(FIXTURE_KEY).unwrap();
    (IdentityManager::new(key, "agent-safe", clock.clone()), clock)
}

/// A Python-shaped identity payload valid at `T0` for an hour.
fn payload() -> Value {
    json!({
        "agent_id": "deploy-bot", "agent_name": "", "roles": ["deployer"], "groups": [],
        "iss": "agent-safe", "iat": unix(T0), "exp": unix(T0) + 3600,
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

#[track_caller]
fn check(ids: &IdentityManager, token: &str, expected: Result<&str, &str>) {
    let got = ids.validate(token);
    match (got, expected) {
        (Ok(caller), Ok(agent_id)) => {
            assert_eq!(caller.agent_id, agent_id);
        }
        (Err(e), Err(reason)) => assert_eq!(e.to_string(), reason),
        (got, expected) => panic!("got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn mints_python_shaped_tokens_and_validates_them() {
    let (ids, _) = manager();
    let token = ids
        .create_token(
            "deploy-bot",
            "Déploiement ✓",
            &["deployer".into()],
            &["platform".into()],
            Duration::hours(1),
        )
        .unwrap();
    assert_eq!(
        header_of(&token),
        json!({"typ": "JWT", "alg": "HS256"}).as_object().unwrap().clone()
    );
    let claims = payload_of(&token);
    let keys: Vec<&str> = claims.keys().map(String::as_str).collect();
    assert_eq!(keys, ["agent_id", "agent_name", "roles", "groups", "iss", "iat", "exp"]);
    assert_eq!(claims["iat"], json!(1795685227));
    assert_eq!(claims["exp"], json!(1795685227 + 3600));

    let caller = ids.validate(&token).unwrap();
    // Serialized as a verified identity always was: `verified` after `delegation_depth`.
    let shown = serde_json::to_value(&caller).unwrap();
    let keys: Vec<&str> = shown.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(&keys[8..], ["delegation_depth", "verified"]);
    assert_eq!(shown["verified"], json!(true));
    assert_eq!(
        caller.identity(),
        &CallerIdentity {
            agent_id: "deploy-bot".into(),
            agent_name: "Déploiement ✓".into(),
            roles: vec!["deployer".into()],
            groups: vec!["platform".into()],
            issued_at: Some(T0),
            expires_at: Some(T0 + Duration::hours(1)),
            delegation_chain: vec![],
            delegated_roles: vec![],
            delegation_depth: 0,
            delegation_scope: None,
            max_delegation_depth: None,
        }
    );
}

#[test]
fn iat_and_exp_are_whole_seconds_truncated() {
    let (ids, clock) = manager();
    clock.set(T0 + Duration::milliseconds(999));
    let token = ids.create_token("a", "", &[], &[], Duration::milliseconds(1500)).unwrap();
    let claims = payload_of(&token);
    assert_eq!(claims["iat"], json!(unix(T0)));
    assert_eq!(claims["exp"], json!(unix(T0) + 2));
}

#[test]
fn delegation_claims_round_trip() {
    let (ids, _) = manager();
    let link = DelegationLink {
        agent_id: "orchestrator".into(),
        agent_name: String::new(),
        roles: vec!["deployer".into(), "reader".into()],
        groups: vec!["platform".into()],
        delegated_at: Some(T0 + Duration::microseconds(420_436)),
    };
    let claims = IdentityClaims {
        agent_id: "worker-1".into(),
        agent_name: "worker".into(),
        roles: vec!["deployer".into()],
        groups: vec![],
        delegation_chain: vec![link.clone()],
        delegated_roles: vec!["deployer".into()],
        delegation_depth: 1,
        max_delegation_depth: None,
        delegation_scope: None,
    };
    let token = ids.create_token_with_claims(&claims, Duration::minutes(10)).unwrap();
    let payload = payload_of(&token);
    assert_eq!(
        payload["delegation_chain"][0]["delegated_at"],
        json!("2026-11-26T09:27:07.420436Z")
    );
    assert_eq!(payload["delegation_depth"], json!(1));
    let caller = ids.validate(&token).unwrap();
    assert_eq!(caller.delegation_chain, vec![link]);
    assert_eq!(caller.delegated_roles, vec!["deployer".to_owned()]);
    assert_eq!(caller.delegation_depth, 1);
}

#[test]
fn expiry_and_not_before_use_the_injected_clock() {
    let (ids, clock) = manager();
    let token = hs256(&payload());
    check(&ids, &token, Ok("deploy-bot"));
    clock.set(T0 + Duration::seconds(3599));
    check(&ids, &token, Ok("deploy-bot"));
    clock.set(T0 + Duration::seconds(3600));
    check(&ids, &token, Err("Token has expired"));
    // iat in the future (by one second, no leeway).
    clock.set(T0 - Duration::seconds(1));
    check(&ids, &token, Err("Invalid token: The token is not yet valid (iat)"));
    clock.set(T0);
    let nbf = hs256(&with(payload(), json!({"nbf": unix(T0) + 60})));
    check(&ids, &nbf, Err("Invalid token: The token is not yet valid (nbf)"));
    // A configured leeway tolerates skew both ways.
    let lenient = ids.clone().with_leeway(Duration::seconds(60));
    check(&lenient, &nbf, Ok("deploy-bot"));
    clock.set(T0 + Duration::seconds(3659));
    check(&lenient, &token, Ok("deploy-bot"));
    clock.set(T0 + Duration::seconds(3660));
    check(&lenient, &token, Err("Token has expired"));
}

#[test]
fn rejects_with_pythons_reasons() {
    let (ids, _) = manager();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            hs256(&with(payload(), json!({"iss": "evil"}))),
            "Invalid token issuer: evil",
        ),
        (
            "issuer not a string",
            hs256(&with(payload(), json!({"iss": 7}))),
            "Invalid token issuer: 7",
        ),
        (
            "missing agent_id",
            hs256(&without(payload(), "agent_id")),
            "Invalid token: Token is missing the \"agent_id\" claim",
        ),
        (
            "agent_id null",
            hs256(&with(payload(), json!({"agent_id": null}))),
            "Invalid token: Token is missing the \"agent_id\" claim",
        ),
        (
            "missing iss",
            hs256(&without(payload(), "iss")),
            "Invalid token: Token is missing the \"iss\" claim",
        ),
        (
            "missing iat",
            hs256(&without(payload(), "iat")),
            "Invalid token: Token is missing the \"iat\" claim",
        ),
        (
            "missing exp",
            hs256(&without(payload(), "exp")),
            "Invalid token: Token is missing the \"exp\" claim",
        ),
        (
            "exp a string",
            hs256(&with(payload(), json!({"exp": "soon"}))),
            "Invalid token: Expiration Time claim (exp) must be an integer.",
        ),
        (
            "iat a bool",
            hs256(&with(payload(), json!({"iat": true}))),
            "Invalid token: Issued At claim (iat) must be an integer.",
        ),
        (
            "agent_id a number",
            hs256(&with(payload(), json!({"agent_id": 5}))),
            "Invalid token: Claim `agent_id` must be a string",
        ),
        (
            "roles a string",
            hs256(&with(payload(), json!({"roles": "admin"}))),
            "Invalid token: Claim `roles` must be a list of strings",
        ),
        (
            "depth negative",
            hs256(&with(payload(), json!({"delegation_depth": -1}))),
            "Invalid token: Claim `delegation_depth` must be a non-negative integer",
        ),
        (
            "audience not expected",
            hs256(&with(payload(), json!({"aud": "agent-safe-runner"}))),
            "Invalid token: Invalid audience",
        ),
        (
            "wrong key",
            hs256_raw(
                &json!({"alg": "HS256"}),
                &payload(),
                b"another-key-0123456789abcdef0123456789",
            ),
            "Invalid token: Signature verification failed",
        ),
        (
            "alg none, no signature",
            format!("{}.", signing_input(&json!({"alg": "none", "typ": "JWT"}), &payload())),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            "alg None",
            hs256_raw(&json!({"alg": "None"}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            "alg HS512",
            hs256_raw(&json!({"alg": "HS512"}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            "alg EdDSA with an HS256 key",
            hs256_raw(&json!({"alg": "EdDSA"}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            "alg missing",
            hs256_raw(&json!({"typ": "JWT"}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: Algorithm not specified",
        ),
        (
            "alg a number",
            hs256_raw(&json!({"alg": 256}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            "crit header",
            hs256_raw(
                &json!({"alg": "HS256", "crit": ["exp"]}),
                &payload(),
                FIXTURE_KEY.as_bytes(),
            ),
            "Invalid token: Invalid 'crit' header: critical extensions are not supported",
        ),
        (
            "kid not a string",
            hs256_raw(&json!({"alg": "HS256", "kid": 1}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: Key ID header parameter must be a string",
        ),
        (
            "unknown kid",
            hs256_raw(&json!({"alg": "HS256", "kid": "k9"}), &payload(), FIXTURE_KEY.as_bytes()),
            "Invalid token: Unknown key id `k9`",
        ),
        ("empty", String::new(), "Invalid token: Not enough segments"),
        ("garbage", "not a token".to_owned(), "Invalid token: Not enough segments"),
        ("four segments", format!("{}.x", hs256(&payload())), "Invalid token: Too many segments"),
        ("non-base64 header", "!!!.e30.AAAA".to_owned(), "Invalid token: Invalid header padding"),
        (
            "header not JSON",
            format!("{}.e30.AAAA", b64(b"{alg")),
            "Invalid token: Invalid header string: key must be a string at line 1 column 2",
        ),
        (
            "header a list",
            format!("{}.e30.AAAA", b64(b"[]")),
            "Invalid token: Invalid header string: must be a json object",
        ),
        (
            "non-base64 signature",
            format!("{}.@@@", signing_input(&json!({"alg": "HS256"}), &payload())),
            "Invalid token: Invalid crypto padding",
        ),
        (
            "non-base64 payload",
            hs256_raw_parts("eyJhbGciOiJIUzI1NiJ9", "%%%"),
            "Invalid token: Invalid payload padding",
        ),
        (
            "payload not JSON",
            hs256_raw_parts("eyJhbGciOiJIUzI1NiJ9", &b64(b"{\"agent_id\"")),
            "Invalid token: Invalid payload string: EOF while parsing an object at line 1 column 11",
        ),
        (
            "payload a list",
            hs256_raw_parts("eyJhbGciOiJIUzI1NiJ9", &b64(b"[1]")),
            "Invalid token: Invalid payload string: must be a json object",
        ),
    ];
    for (name, token, reason) in &cases {
        let got = ids
            .validate(token)
            .map(|c| c.into_identity().agent_id.into_string())
            .map_err(|e| e.to_string());
        assert_eq!(got, Err((*reason).to_owned()), "case {name}");
    }
}

/// Signs already-encoded parts with the fixture key.
fn hs256_raw_parts(header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, FIXTURE_KEY.as_bytes()),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

#[test]
fn truncated_and_tampered_tokens() {
    let (ids, _) = manager();
    let token = hs256(&payload());
    let (input, signature) = token.rsplit_once('.').unwrap();
    // Cut inside the signature, at its start, and inside the payload.
    check(&ids, &token[..token.len() - 1], Err("Invalid token: Invalid crypto padding"));
    check(&ids, &token[..token.len() - 2], Err("Invalid token: Invalid crypto padding"));
    check(&ids, &token[..token.len() - 3], Err("Invalid token: Signature verification failed"));
    check(&ids, &format!("{input}."), Err("Invalid token: Signature verification failed"));
    check(&ids, &input[..input.len() - 5], Err("Invalid token: Not enough segments"));
    // A different payload under the original signature.
    let forged = signing_input(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &with(payload(), json!({"roles": ["admin"]})),
    );
    check(
        &ids,
        &format!("{forged}.{signature}"),
        Err("Invalid token: Signature verification failed"),
    );
}

#[test]
fn huge_tokens_are_rejected_before_parsing() {
    let (ids, _) = manager();
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    check(&ids, &huge, Err("Invalid token: Token is 65537 bytes long, over the 65536-byte limit"));
    // Just under the limit is parsed (and fails for what it is).
    let big_name = "x".repeat(40_000);
    let token = hs256(&with(payload(), json!({"agent_name": big_name})));
    assert!(token.len() < MAX_TOKEN_BYTES);
    check(&ids, &token, Ok("deploy-bot"));
}

#[test]
fn a_ticket_is_not_an_identity() {
    let (ids, clock) = manager();
    let key = SigningKey::hs256_from_str(FIXTURE_KEY).unwrap();
    let ticket = TicketIssuer::new(key, "agent-safe", clock)
        .issue(
            "restart-deployment",
            "dev/test-app",
            "deploy-bot",
            &Params::new(),
            "evt-0123456789ab",
        )
        .unwrap();
    check(&ids, &ticket.token, Err("Invalid token: Token is missing the \"agent_id\" claim"));
}

#[test]
fn algorithm_confusion_between_hs256_and_eddsa() {
    let clock = clock();
    let (ed, ed_public) = SigningKey::generate_ed25519().unwrap();
    let ed_ids = IdentityManager::new(ed.clone(), "agent-safe", clock.clone());
    let hs_ids = IdentityManager::new(
        SigningKey::hs256_from_str(FIXTURE_KEY).unwrap(),
        "agent-safe",
        clock.clone(),
    );

    let ed_token = ed_ids.create_token("deploy-bot", "", &[], &[], Duration::hours(1)).unwrap();
    assert_eq!(header_of(&ed_token)["alg"], json!("EdDSA"));
    check(&ed_ids, &ed_token, Ok("deploy-bot"));
    // An EdDSA token presented to an HS256 verifier.
    check(&hs_ids, &ed_token, Err("Invalid token: The specified alg value is not allowed"));
    // An HS256 token presented to an EdDSA verifier: the classic confusion attack, HMAC keyed
    // with the public key (which an attacker knows).
    let public = ed_public.ed25519_public_bytes().unwrap();
    let forged = hs256_raw(&json!({"alg": "HS256", "typ": "JWT"}), &payload(), public);
    check(&ed_ids, &forged, Err("Invalid token: The specified alg value is not allowed"));
    let hs_token = hs_ids.create_token("deploy-bot", "", &[], &[], Duration::hours(1)).unwrap();
    check(&ed_ids, &hs_token, Err("Invalid token: The specified alg value is not allowed"));
    // Another Ed25519 key does not verify.
    let (other, _) = SigningKey::generate_ed25519().unwrap();
    let other_token = IdentityManager::new(other, "agent-safe", clock)
        .create_token("deploy-bot", "", &[], &[], Duration::hours(1))
        .unwrap();
    check(&ed_ids, &other_token, Err("Invalid token: Signature verification failed"));
}

#[test]
fn verify_only_managers_and_key_rotation() {
    let clock = clock();
    let old = SigningKey::hs256_from_str(FIXTURE_KEY).unwrap();
    let (new, new_public) = SigningKey::generate_ed25519().unwrap();
    let new = new.with_kid("2026-12");
    let old_token = IdentityManager::new(old.clone(), "agent-safe", clock.clone())
        .create_token("old-bot", "", &[], &[], Duration::hours(1))
        .unwrap();
    let new_ids = IdentityManager::new(new.clone(), "agent-safe", clock.clone());
    let new_token = new_ids.create_token("new-bot", "", &[], &[], Duration::hours(1)).unwrap();
    assert_eq!(header_of(&new_token)["kid"], json!("2026-12"));

    // During the rotation: old tokens (no kid) use the default key, new ones select by kid.
    let keys = KeySet::new(old.verifying_key()).with_key(new.verifying_key()).unwrap();
    let verifier = IdentityManager::verify_only(keys, "agent-safe", clock.clone());
    check(&verifier, &old_token, Ok("old-bot"));
    check(&verifier, &new_token, Ok("new-bot"));
    assert_eq!(
        verifier.create_token("x", "", &[], &[], Duration::hours(1)),
        Err(TokenError::NoSigningKey)
    );
    // After the rotation only the new key remains: old tokens fail.
    let after = IdentityManager::verify_only(new_public.with_kid("2026-12"), "agent-safe", clock);
    check(&after, &new_token, Ok("new-bot"));
    check(&after, &old_token, Err("Invalid token: The specified alg value is not allowed"));
}

#[test]
fn configured_audience_is_minted_and_required() {
    let (ids, _) = manager();
    let scoped = ids.clone().with_audience(Audience::Required("agent-safe-pdp".into()));
    let token = scoped.create_token("a", "", &[], &[], Duration::hours(1)).unwrap();
    assert_eq!(payload_of(&token)["aud"], json!("agent-safe-pdp"));
    check(&scoped, &token, Ok("a"));
    // The default manager (no audience, as Python) refuses a token that names one.
    check(&ids, &token, Err("Invalid token: Invalid audience"));
    let plain = ids.create_token("a", "", &[], &[], Duration::hours(1)).unwrap();
    check(&scoped, &plain, Err("Invalid token: Token is missing the \"aud\" claim"));
    let other = ids.clone().with_audience(Audience::Required("elsewhere".into()));
    check(&other, &token, Err("Invalid token: Audience doesn't match"));
}

#[test]
fn ttl_overflow_is_an_error() {
    let (ids, _) = manager();
    assert_eq!(
        ids.create_token("a", "", &[], &[], Duration::MAX),
        Err(TokenError::InvalidTtl(Duration::MAX))
    );
}

#[test]
fn delegation_limits_round_trip_and_contradictions_are_rejected() {
    let (ids, _) = manager();
    let link = |id: &str| json!({"agent_id": id, "delegated_at": "2026-11-26T09:27:07Z"});
    let scope = agent_safe_core::DelegationScope {
        actions: Some(vec!["get-*".into()]),
        environments: Some(vec![agent_safe_core::Environment::Dev]),
    };
    let claims = IdentityClaims {
        agent_id: "worker-1".into(),
        delegation_chain: vec![DelegationLink {
            agent_id: "orchestrator".into(),
            agent_name: String::new(),
            roles: vec![],
            groups: vec![],
            delegated_at: Some(T0),
        }],
        delegation_depth: 1,
        max_delegation_depth: Some(2),
        delegation_scope: Some(scope.clone()),
        ..IdentityClaims::default()
    };
    let token = ids.create_token_with_claims(&claims, Duration::minutes(5)).unwrap();
    let minted = payload_of(&token);
    assert_eq!(minted["max_delegation_depth"], json!(2));
    assert_eq!(minted["delegation_scope"], json!({"actions": ["get-*"], "environments": ["dev"]}));
    let caller = ids.validate(&token).unwrap();
    assert_eq!(caller.max_delegation_depth, Some(2));
    assert_eq!(caller.delegation_scope, Some(scope));
    // A direct token may carry limits too (written even though it is not delegated).
    let root = IdentityClaims {
        agent_id: "orchestrator".into(),
        max_delegation_depth: Some(0),
        ..IdentityClaims::default()
    };
    let token = ids.create_token_with_claims(&root, Duration::minutes(5)).unwrap();
    assert_eq!(payload_of(&token)["max_delegation_depth"], json!(0));
    assert!(!payload_of(&token).contains_key("delegation_chain"));

    let delegated = |changes: Value| {
        with(
            payload(),
            with(
                json!({"delegation_chain": [link("orchestrator")], "delegation_depth": 1}),
                changes,
            ),
        )
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "depth without chain",
            with(payload(), json!({"delegation_depth": 2})),
            "Invalid token: Claim `delegation_depth` is 2 but `delegation_chain` has 0 link(s)",
        ),
        (
            "chain without depth",
            with(payload(), json!({"delegation_chain": [link("orchestrator")]})),
            "Invalid token: Claim `delegation_depth` is 0 but `delegation_chain` has 1 link(s)",
        ),
        (
            "depth over its own limit",
            delegated(json!({"max_delegation_depth": 0})),
            "Invalid token: Claim `delegation_depth` (1) exceeds `max_delegation_depth` (0)",
        ),
        (
            "limit not an integer",
            delegated(json!({"max_delegation_depth": "5"})),
            "Invalid token: Claim `max_delegation_depth` must be a non-negative integer",
        ),
        (
            "self-delegation",
            delegated(json!({"delegation_chain": [link("deploy-bot")]})),
            "Invalid token: Agent `deploy-bot` appears twice in the delegation chain",
        ),
        (
            "cycle",
            delegated(json!({
                "delegation_chain": [link("a"), link("b"), link("a")],
                "delegation_depth": 3,
            })),
            "Invalid token: Agent `a` appears twice in the delegation chain",
        ),
        (
            "unknown scope field (would silently widen)",
            delegated(json!({"delegation_scope": {"targets": ["dev/x"]}})),
            "Invalid token: Claim `delegation_scope` is malformed: unknown field `targets`, \
             expected `actions` or `environments`",
        ),
        (
            "unknown environment",
            delegated(json!({"delegation_scope": {"environments": ["qa"]}})),
            "Invalid token: Claim `delegation_scope` is malformed: unknown variant `qa`, \
             expected one of `dev`, `staging`, `prod`",
        ),
    ];
    for (name, claims, reason) in &cases {
        let got = ids.validate(&hs256(claims)).map(|c| c.into_identity().agent_id.into_string());
        assert_eq!(got.map_err(|e| e.to_string()), Err((*reason).to_owned()), "case {name}");
    }
    // A scope claim of `null` is no scope.
    let caller = ids.validate(&hs256(&delegated(json!({"delegation_scope": null})))).unwrap();
    assert_eq!(caller.delegation_scope, None);
}
