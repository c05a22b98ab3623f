//! Tests for the env-var vault: lookup order, messages, ids, expiry, tracking, redaction.

use std::ffi::OsString;

use serde_json::json;
use time::Duration;

use super::*;
use crate::test_support::{SECRET, T0, clock, now, params, scope, ticket};

/// A vault whose environment is `vars` (the process environment is never touched).
fn vault(vars: &[(&str, &str)]) -> EnvVarVault {
    let vars: Vec<(String, OsString)> =
        vars.iter().map(|(k, v)| ((*k).to_owned(), OsString::from(v))).collect();
    EnvVarVault::new(clock())
        .with_env_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// Requests a `kind` credential; `Ok(payload)` or `Err(message)`.
#[track_caller]
fn check(vault: &EnvVarVault, kind: &str, expected: Result<serde_json::Value, &str>) {
    let got = now(vault.get_credential(&scope(kind, 300), &ticket("n1"), 300));
    match (got, expected) {
        (Ok(c), Ok(payload)) => assert_eq!(json!(c.payload.expose()), payload, "{kind}"),
        (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "{kind}"),
        (got, expected) => panic!("{kind}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn static_credentials_win_then_the_environment() {
    let v = vault(&[
        ("AGENT_SAFE_CRED_KUBERNETES", "from-env"),
        ("AGENT_SAFE_CRED_AWS_STS", SECRET),
        ("AGENT_SAFE_CRED_EMPTY", ""),
    ])
    .with_static("kubernetes", params(json!({"kubeconfig": "apiVersion: v1"})));
    check(&v, "kubernetes", Ok(json!({"kubeconfig": "apiVersion: v1"})));
    check(&v, "aws-sts", Ok(json!({"token": SECRET})));
    check(&v, "AWS_STS", Ok(json!({"token": SECRET})));
    check(
        &v,
        "gcp",
        Err("no credential configured for type `gcp`: set the environment variable \
             `AGENT_SAFE_CRED_GCP` or configure a static credential for `gcp`"),
    );
    check(&v, "empty", Err("environment variable `AGENT_SAFE_CRED_EMPTY` is set but empty"));
    for bad in ["", "a/b", "x.y", "ns=prod", "ｋ８ｓ", &"a".repeat(65)] {
        check(
            &v,
            bad,
            Err(&format!(
                "invalid credential type `{bad}`: a type is 1 to 64 characters from `A-Z`, \
                 `a-z`, `0-9`, `-` and `_`"
            )),
        );
    }
    // A static credential may have any type name: it names no variable.
    let v = v.with_static_token("odd.type", Secret::new(SECRET.to_owned()));
    check(&v, "odd.type", Ok(json!({"token": SECRET})));
}

#[test]
fn prefix_is_configurable() {
    let v = vault(&[("MY_KUBERNETES", "x")]).with_prefix("MY_");
    assert_eq!(v.env_var("kubernetes"), "MY_KUBERNETES");
    check(&v, "kubernetes", Ok(json!({"token": "x"})));
}

#[cfg(unix)]
#[test]
fn non_unicode_variable_is_an_error() {
    use std::os::unix::ffi::OsStringExt as _;
    let v = EnvVarVault::new(clock()).with_env_lookup(|_| Some(OsString::from_vec(vec![0xff])));
    check(&v, "k8s", Err("environment variable `AGENT_SAFE_CRED_K8S` is not valid UTF-8"));
}

#[test]
fn credentials_carry_id_expiry_nonce_and_scope_and_are_tracked_until_revoked() {
    let clock = clock();
    let v = EnvVarVault::new(clock.clone()).with_static_token("k8s", Secret::new("t".into()));
    let mut s = scope("k8s", 60);
    s.fields.insert("namespaces".to_owned(), json!(["dev"]));
    let a = now(v.get_credential(&s, &ticket("nonce-a"), 60)).unwrap();
    let b = now(v.get_credential(&s, &ticket("nonce-b"), 600)).unwrap();
    assert!(a.credential_id.starts_with("cred-") && a.credential_id.len() == 17, "{a:?}");
    assert!(a.credential_id[5..].bytes().all(|c| c.is_ascii_hexdigit()), "{a:?}");
    assert_ne!(a.credential_id, b.credential_id);
    assert_eq!((a.kind.as_str(), a.ticket_nonce.as_str()), ("k8s", "nonce-a"));
    assert_eq!(a.expires_at, T0 + Duration::seconds(60));
    assert_eq!(b.expires_at, T0 + Duration::seconds(600));
    assert_eq!(a.scope, s);
    assert!(v.is_issued(&a.credential_id) && v.is_issued(&b.credential_id));
    assert_eq!(v.issued_count(), 2);

    now(v.revoke(&a.credential_id)).unwrap();
    assert!(!v.is_issued(&a.credential_id));
    now(v.revoke(&a.credential_id)).unwrap(); // idempotent
    now(v.revoke("cred-unknown")).unwrap();
    assert_eq!(v.issued_count(), 1);

    // Expired ids are dropped when the next credential is issued.
    clock.advance(Duration::seconds(601));
    now(v.get_credential(&s, &ticket("nonce-c"), 60)).unwrap();
    assert_eq!(v.issued_count(), 1);
    assert!(!v.is_issued(&b.credential_id));
}

#[test]
fn ttl_must_be_between_one_second_and_a_day() {
    let v = EnvVarVault::new(clock()).with_static_token("k8s", Secret::new("t".into()));
    for ttl in [0, MAX_TTL_PLUS_ONE, u64::MAX] {
        let err = now(v.get_credential(&scope("k8s", ttl), &ticket("n"), ttl)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid credential ttl {ttl}: expected 1 to 86400 seconds")
        );
    }
    assert!(now(v.get_credential(&scope("k8s", 1), &ticket("n"), crate::MAX_TTL)).is_ok());
    assert_eq!(v.issued_count(), 1);
}

const MAX_TTL_PLUS_ONE: u64 = crate::MAX_TTL + 1;

#[test]
fn debug_output_never_shows_a_secret() {
    let v = vault(&[("AGENT_SAFE_CRED_AWS", SECRET)])
        .with_static("k8s", params(json!({"token": SECRET})));
    let k8s = now(v.get_credential(&scope("k8s", 60), &ticket("n"), 60)).unwrap();
    let aws = now(v.get_credential(&scope("aws", 60), &ticket("n"), 60)).unwrap();
    for text in [format!("{v:?}"), format!("{k8s:?}"), format!("{aws:#?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
    assert!(format!("{k8s:?}").contains("payload: [redacted]"));
}
