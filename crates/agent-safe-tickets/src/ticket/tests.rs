//! Tests of execution tickets: claims, every rejection reason in order, single use, params binding.

use super::*;
use crate::test_support::*;
use crate::{
    FileNonceStore, IdentityManager, KeySet, MAX_TOKEN_BYTES, MemoryNonceStore, params_digest,
};
use agent_safe_core::ManualClock;
use serde_json::json;

const ACTION: &str = "scale-deployment";
const TARGET: &str = "dev/test-app";

fn params() -> Params {
    serde_json::from_value(json!({"namespace": "dev", "deployment": "app", "replicas": 4})).unwrap()
}

fn key() -> SigningKey {
    SigningKey::hs256_from_str(FIXTURE_KEY).unwrap()
}

struct Setup {
    clock: Arc<ManualClock>,
    issuer: TicketIssuer,
    validator: TicketValidator,
}

fn setup() -> Setup {
    let clock = clock();
    let issuer = TicketIssuer::new(key(), "agent-safe", clock.clone());
    let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
    let validator =
        TicketValidator::new(key().verifying_key(), "agent-safe", clock.clone(), nonces);
    Setup { clock, issuer, validator }
}

fn issue(s: &Setup) -> ExecutionTicket {
    s.issuer.issue(ACTION, TARGET, "deploy-bot", &params(), "evt-0123456789ab").unwrap()
}

/// A ticket payload like the issuer's, valid at `T0` for 5 minutes.
fn payload() -> Value {
    json!({
        "type": "execution-ticket", "action": ACTION, "target": TARGET, "caller": "deploy-bot",
        "params": params(), "audit_id": "evt-0123456789ab", "nonce": "4aebe0029c39421eb89a15c03d80c29e",
        "iss": "agent-safe", "iat": unix(T0), "exp": unix(T0) + 300,
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
fn check(v: &TicketValidator, token: &str, expected: &Expected<'_>, reason: &str) {
    let got = v.validate(token, expected.action, expected.target, expected.params);
    assert_eq!(got.reason, reason);
    assert_eq!(got.valid, reason == "Ticket is valid", "{got:?}");
    assert_eq!(got.ticket.is_some(), got.valid);
}

const ANY: Expected<'static> = Expected { action: None, target: None, params: None };

#[test]
fn issues_the_python_claims_plus_audience_and_digest() {
    let s = setup();
    s.clock.set(T0 + Duration::microseconds(421_534));
    let ticket = issue(&s);
    assert_eq!(ticket.issued_at, T0 + Duration::microseconds(421_534), "full precision");
    assert_eq!(ticket.expires_at, ticket.issued_at + Duration::minutes(5));
    assert_eq!(ticket.nonce.len(), 32);
    let claims = payload_of(&ticket.token);
    let keys: Vec<&str> = claims.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "action",
            "target",
            "caller",
            "params",
            "audit_id",
            "nonce",
            "iss",
            "iat",
            "exp",
            "aud",
            "params_digest"
        ]
    );
    assert_eq!(claims["type"], json!("execution-ticket"));
    assert_eq!(claims["params"], json!(params()));
    assert_eq!(claims["nonce"], json!(ticket.nonce));
    assert_eq!(claims["iat"], json!(unix(T0)));
    assert_eq!(claims["exp"], json!(unix(T0) + 300));
    assert_eq!(claims["aud"], json!("agent-safe-runner"));
    assert_eq!(claims["params_digest"], json!(params_digest(&params())));
    assert_eq!(
        header_of(&ticket.token),
        json!({"typ": "JWT", "alg": "HS256"}).as_object().unwrap().clone()
    );

    let other = issue(&s);
    assert_ne!(other.nonce, ticket.nonce);
    let long = s.issuer.clone().with_ttl(Duration::minutes(1)).issue(
        ACTION,
        TARGET,
        "a",
        &Params::new(),
        "evt-1",
    );
    assert_eq!(long.unwrap().expires_at - s.clock.now(), Duration::minutes(1));
    let python_shaped = s.issuer.clone().with_audience(Audience::Absent).issue(
        ACTION,
        TARGET,
        "a",
        &params(),
        "evt-1",
    );
    assert!(!payload_of(&python_shaped.unwrap().token).contains_key("aud"));
}

#[test]
fn validates_once_then_detects_replay() {
    let s = setup();
    let ticket = issue(&s);
    let p = params();
    let all = Expected { action: Some(ACTION), target: Some(TARGET), params: Some(&p) };
    let ok = s.validator.verify(&ticket.token, &all).unwrap();
    assert_eq!(ok.params_digest.as_deref(), Some(params_digest(&p).as_str()));
    let mut rebuilt = ticket.clone();
    rebuilt.issued_at = T0; // the JWT holds whole seconds
    rebuilt.expires_at = T0 + Duration::minutes(5);
    assert_eq!(ok.ticket, rebuilt);
    check(&s.validator, &ticket.token, &all, "Ticket has already been used (replay detected)");
    check(&s.validator, &ticket.token, &ANY, "Ticket has already been used (replay detected)");
    // A fresh ticket for the same request is a new permission.
    check(&s.validator, &issue(&s).token, &all, "Ticket is valid");
}

#[test]
fn inspect_does_not_consume() {
    let s = setup();
    let ticket = issue(&s);
    for _ in 0..3 {
        let inspected = s.validator.inspect(&ticket.token);
        assert!(inspected.valid, "{inspected:?}");
    }
    check(&s.validator, &ticket.token, &ANY, "Ticket is valid");
    assert_eq!(
        s.validator.inspect(&ticket.token).reason,
        "Ticket has already been used (replay detected)"
    );
    assert_eq!(s.validator.inspect("garbage").reason, "Invalid ticket: Not enough segments");
}

#[test]
fn mismatches_are_reported_and_do_not_consume_the_nonce() {
    let s = setup();
    let ticket = issue(&s);
    let p = params();
    let mut other = params();
    other.insert("namespace".into(), json!("production"));
    let reordered: Params =
        serde_json::from_value(json!({"replicas": 4, "deployment": "app", "namespace": "dev"}))
            .unwrap();
    let float: Params =
        serde_json::from_value(json!({"replicas": 4.0, "deployment": "app", "namespace": "dev"}))
            .unwrap();
    let d = params_digest(&p);
    let empty = Params::new();
    let cases: Vec<(Expected<'_>, String)> = vec![
        (
            Expected { action: Some("delete-deployment"), ..ANY },
            "Action mismatch: ticket is for 'scale-deployment', expected 'delete-deployment'"
                .into(),
        ),
        (
            Expected { target: Some("prod/api-server"), ..ANY },
            "Target mismatch: ticket is for 'dev/test-app', expected 'prod/api-server'".into(),
        ),
        (
            Expected { params: Some(&other), ..ANY },
            format!(
                "Params mismatch: ticket params digest is '{d}', expected '{}'",
                params_digest(&other)
            ),
        ),
        (
            Expected { params: Some(&float), ..ANY },
            format!(
                "Params mismatch: ticket params digest is '{d}', expected '{}'",
                params_digest(&float)
            ),
        ),
        (
            Expected { params: Some(&empty), ..ANY },
            format!(
                "Params mismatch: ticket params digest is '{d}', expected '{}'",
                params_digest(&empty)
            ),
        ),
        // Action is checked before target, target before params.
        (
            Expected { action: Some("x"), target: Some("y"), params: Some(&other) },
            "Action mismatch: ticket is for 'scale-deployment', expected 'x'".into(),
        ),
    ];
    for (expected, reason) in &cases {
        check(&s.validator, &ticket.token, expected, reason);
    }
    // None of the failures consumed the nonce; key order does not matter.
    let all = Expected { action: Some(ACTION), target: Some(TARGET), params: Some(&reordered) };
    check(&s.validator, &ticket.token, &all, "Ticket is valid");
}

#[test]
fn rejects_with_pythons_reasons_in_pythons_order() {
    let s = setup();
    let raw = |p: Value| hs256(&p);
    let cases: Vec<(&str, String, &str)> = vec![
        ("python shape is valid", raw(payload()), "Ticket is valid"),
        (
            "wrong issuer",
            raw(with(payload(), json!({"iss": "evil", "nonce": "n1"}))),
            "Invalid ticket issuer",
        ),
        (
            "missing type",
            raw(without(payload(), "type")),
            "Invalid ticket: Token is missing the \"type\" claim",
        ),
        (
            "missing nonce",
            raw(without(payload(), "nonce")),
            "Invalid ticket: Token is missing the \"nonce\" claim",
        ),
        (
            "missing audit_id",
            raw(without(payload(), "audit_id")),
            "Invalid ticket: Token is missing the \"audit_id\" claim",
        ),
        (
            "other type",
            raw(with(payload(), json!({"type": "identity", "nonce": "n2"}))),
            "Token is not an execution ticket",
        ),
        (
            "type not a string",
            raw(with(payload(), json!({"type": 1, "nonce": "n3"}))),
            "Token is not an execution ticket",
        ),
        (
            "action not a string",
            raw(with(payload(), json!({"action": ["a"], "nonce": "n4"}))),
            "Invalid ticket: Claim `action` must be a string",
        ),
        (
            "params a list",
            raw(with(payload(), json!({"params": [], "nonce": "n5"}))),
            "Invalid ticket: Claim `params` must be an object",
        ),
        (
            "nonce with a space",
            raw(with(payload(), json!({"nonce": "a b"}))),
            "Invalid ticket: Claim `nonce` must be 1 to 128 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`",
        ),
        (
            "nonce with a newline",
            raw(with(payload(), json!({"nonce": "a\n1 1"}))),
            "Invalid ticket: Claim `nonce` must be 1 to 128 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`",
        ),
        (
            "inconsistent digest",
            raw(with(payload(), json!({"params_digest": "00", "nonce": "n6"}))),
            "Invalid ticket: Claim `params_digest` does not match the `params` claim",
        ),
        (
            "iat in the future",
            raw(with(payload(), json!({"iat": unix(T0) + 1, "nonce": "n7"}))),
            "Invalid ticket: The token is not yet valid (iat)",
        ),
        (
            "nbf in the future",
            raw(with(payload(), json!({"nbf": unix(T0) + 1, "nonce": "n8"}))),
            "Invalid ticket: The token is not yet valid (nbf)",
        ),
        (
            "expired",
            raw(with(payload(), json!({"exp": unix(T0), "nonce": "n9"}))),
            "Ticket has expired",
        ),
        (
            "wrong audience",
            raw(with(payload(), json!({"aud": "agent-safe-pdp", "nonce": "n10"}))),
            "Invalid ticket: Audience doesn't match",
        ),
        (
            "right audience",
            raw(with(payload(), json!({"aud": "agent-safe-runner", "nonce": "n11"}))),
            "Ticket is valid",
        ),
        (
            "wrong key",
            hs256_raw(
                &json!({"alg": "HS256"}),
                &with(payload(), json!({"nonce": "n12"})),
                b"another-key-0123456789abcdef0123456789",
            ),
            "Invalid ticket: Signature verification failed",
        ),
        (
            "alg none",
            format!(
                "{}.",
                signing_input(&json!({"alg": "none"}), &with(payload(), json!({"nonce": "n13"})))
            ),
            "Invalid ticket: The specified alg value is not allowed",
        ),
        ("truncated", raw(payload())[..100].to_owned(), "Invalid ticket: Not enough segments"),
        (
            "non-base64",
            "eyJhbGciOiJIUzI1NiJ9.***.***".to_owned(),
            "Invalid ticket: Invalid crypto padding",
        ),
        (
            "huge",
            format!("{}.{}.x", "a".repeat(MAX_TOKEN_BYTES), "b"),
            "Invalid ticket: Token is 65540 bytes long, over the 65536-byte limit",
        ),
    ];
    for (name, token, reason) in &cases {
        let got = s.validator.validate(token, None, None, None);
        assert_eq!(got.reason, *reason, "case {name}");
    }
    // Checks come in Python's order: signature/claims, type, action, target, then the nonce.
    let expired_other_type = raw(with(payload(), json!({"type": "x", "exp": unix(T0)})));
    check(&s.validator, &expired_other_type, &ANY, "Ticket has expired");
    let other_type_wrong_action = raw(with(payload(), json!({"type": "x"})));
    check(
        &s.validator,
        &other_type_wrong_action,
        &Expected { action: Some("x"), ..ANY },
        "Token is not an execution ticket",
    );
    // The valid Python-shaped ticket above was consumed.
    check(&s.validator, &raw(payload()), &ANY, "Ticket has already been used (replay detected)");
}

#[test]
fn tampered_params_fail_the_signature() {
    let s = setup();
    let ticket = issue(&s);
    let (_, signature) = ticket.token.rsplit_once('.').unwrap();
    let mut claims = payload_of(&ticket.token);
    claims["params"]["namespace"] = json!("production");
    let header = Value::Object(header_of(&ticket.token));
    let forged = format!("{}.{signature}", signing_input(&header, &Value::Object(claims)));
    check(&s.validator, &forged, &ANY, "Invalid ticket: Signature verification failed");
}

#[test]
fn expiry_follows_the_clock() {
    let s = setup();
    let a = issue(&s);
    let b = issue(&s);
    s.clock.advance(Duration::seconds(299));
    check(&s.validator, &a.token, &ANY, "Ticket is valid");
    s.clock.advance(Duration::seconds(1));
    check(&s.validator, &b.token, &ANY, "Ticket has expired");
    let lenient = s.validator.clone().with_leeway(Duration::seconds(5));
    check(&lenient, &b.token, &ANY, "Ticket is valid");
}

#[test]
fn identity_tokens_are_not_tickets() {
    let s = setup();
    let ids = IdentityManager::new(key(), "agent-safe", s.clock.clone());
    let identity = ids.create_token("deploy-bot", "", &[], &[], Duration::hours(1)).unwrap();
    check(&s.validator, &identity, &ANY, "Invalid ticket: Token is missing the \"type\" claim");
}

#[test]
fn audience_configuration() {
    let s = setup();
    let strict =
        s.validator.clone().with_audience(Audience::Required(DEFAULT_TICKET_AUDIENCE.into()));
    // A Python-minted ticket (no aud) passes the default validator but not a strict one.
    check(&strict, &hs256(&payload()), &ANY, "Invalid ticket: Token is missing the \"aud\" claim");
    check(&strict, &issue(&s).token, &ANY, "Ticket is valid");
    // Tickets for another runner are refused.
    let elsewhere = s.issuer.clone().with_audience(Audience::IfPresent("other-runner".into()));
    check(
        &s.validator,
        &elsewhere.issue(ACTION, TARGET, "a", &params(), "e").unwrap().token,
        &ANY,
        "Invalid ticket: Audience doesn't match",
    );
    // A validator told to expect no audience (PyJWT's behaviour) refuses tickets that carry one.
    let python_like = s.validator.clone().with_audience(Audience::Absent);
    check(&python_like, &issue(&s).token, &ANY, "Invalid ticket: Invalid audience");
}

#[test]
fn ed25519_tickets_rotation_and_confusion() {
    let s = setup();
    let (ed, ed_public) = SigningKey::generate_ed25519().unwrap();
    let ed = ed.with_kid("ed-1");
    let ed_issuer = TicketIssuer::new(ed, "agent-safe", s.clock.clone());
    let nonces = Arc::new(MemoryNonceStore::new(s.clock.clone()));
    let keys =
        KeySet::new(key().verifying_key()).with_key(ed_public.clone().with_kid("ed-1")).unwrap();
    let both = TicketValidator::new(keys, "agent-safe", s.clock.clone(), nonces.clone());
    let ed_only =
        TicketValidator::new(ed_public.with_kid("ed-1"), "agent-safe", s.clock.clone(), nonces);

    let ed_ticket = ed_issuer.issue(ACTION, TARGET, "a", &params(), "e").unwrap();
    assert_eq!(header_of(&ed_ticket.token)["kid"], json!("ed-1"));
    assert_eq!(header_of(&ed_ticket.token)["alg"], json!("EdDSA"));
    check(&ed_only, &ed_ticket.token, &ANY, "Ticket is valid");
    check(&both, &ed_ticket.token, &ANY, "Ticket has already been used (replay detected)");
    check(&both, &issue(&s).token, &ANY, "Ticket is valid");
    // An HS256 ticket (no kid) meets the Ed25519 default key of `ed_only`.
    check(
        &ed_only,
        &issue(&s).token,
        &ANY,
        "Invalid ticket: The specified alg value is not allowed",
    );
    // An EdDSA ticket meets an HS256-only validator: its kid is unknown there.
    check(
        &s.validator,
        &ed_issuer.issue(ACTION, TARGET, "a", &params(), "e").unwrap().token,
        &ANY,
        "Invalid ticket: Unknown key id `ed-1`",
    );
    // HS256 forged with the public key under the Ed25519 kid.
    let public = ed_only.keys.get(Some("ed-1")).unwrap().ed25519_public_bytes().unwrap();
    let forged = hs256_raw(
        &json!({"alg": "HS256", "kid": "ed-1"}),
        &with(payload(), json!({"nonce": "f1"})),
        public,
    );
    check(&both, &forged, &ANY, "Invalid ticket: The specified alg value is not allowed");
}

#[test]
fn nonce_store_failure_fails_closed() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let store = Arc::new(FileNonceStore::open(&path, s.clock.clone()).unwrap());
    let validator =
        TicketValidator::new(key().verifying_key(), "agent-safe", s.clock.clone(), store);
    check(&validator, &issue(&s).token, &ANY, "Ticket is valid");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("not a nonce line\n");
    std::fs::write(&path, text).unwrap();
    let reason = format!(
        "Nonce store error: {}:3: expected `<nonce> <expiry unix seconds>`; `a nonce line` is not an integer",
        path.display()
    );
    check(&validator, &issue(&s).token, &ANY, &reason);
    assert_eq!(validator.inspect(&issue(&s).token).reason, reason);
}

#[test]
fn replay_across_file_stores_on_the_same_file() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces");
    let validator = |clock: Arc<ManualClock>| {
        let store = Arc::new(FileNonceStore::open(&path, clock.clone()).unwrap());
        TicketValidator::new(key().verifying_key(), "agent-safe", clock, store)
    };
    let first = validator(s.clock.clone());
    let ticket = issue(&s);
    check(&first, &ticket.token, &ANY, "Ticket is valid");
    // A second process (or the same one after a restart) sees the nonce as used.
    let second = validator(s.clock.clone());
    check(&second, &ticket.token, &ANY, "Ticket has already been used (replay detected)");
    drop(first);
    let restarted = validator(s.clock.clone());
    check(&restarted, &ticket.token, &ANY, "Ticket has already been used (replay detected)");
    let other = issue(&s);
    check(&restarted, &other.token, &ANY, "Ticket is valid");
    check(&second, &other.token, &ANY, "Ticket has already been used (replay detected)");
}

#[test]
fn ticket_validation_serialises_for_the_cli() {
    let s = setup();
    let bad = s.validator.validate("x", None, None, None);
    assert_eq!(
        serde_json::to_value(&bad).unwrap(),
        json!({"valid": false, "reason": "Invalid ticket: Not enough segments", "ticket": null})
    );
    let good = s.validator.validate(&issue(&s).token, None, None, None);
    let v = serde_json::to_value(&good).unwrap();
    assert_eq!(v["ticket"]["issued_at"], json!("2026-11-26T09:27:07Z"));
    assert_eq!(v["ticket"]["params"], json!(params()));
}
