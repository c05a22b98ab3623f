//! Tests for `build_vault`: types, keys, shapes and messages.

use serde_json::{Value, json};

use super::*;
use crate::test_support::{SECRET, clock, now, scope, ticket};

/// Builds a vault from `config`; `Ok(kind)` or `Err(message)`.
#[track_caller]
fn check(config: Value, expected: Result<&str, &str>) {
    let got = build_vault(config.as_object().unwrap(), clock());
    match (got, expected) {
        (Ok(v), Ok(kind)) => assert_eq!(v.kind(), kind, "{config}"),
        (Err(e), Err(message)) => {
            assert_eq!(e.to_string(), message, "{config}");
            assert!(!e.to_string().contains(SECRET));
        }
        (Ok(v), Err(message)) => panic!("{config}: built {v:?}, expected {message:?}"),
        (Err(e), Ok(kind)) => panic!("{config}: {e}, expected a {kind} vault"),
    }
}

#[test]
fn builds_env_and_file_vaults() {
    check(json!({}), Ok("env"));
    check(json!({"type": null}), Ok("env"));
    check(
        json!({"type": "env", "env_prefix": "X_", "credentials": {"k8s": {"token": SECRET}}}),
        Ok("env"),
    );
    check(json!({"type": "file", "dir": "/etc/agent-safe/credentials"}), Ok("file"));
}

#[test]
fn bad_configs_have_clear_messages() {
    check(
        json!({"type": "hashicorp"}),
        Err("unknown vault type `hashicorp`; available: `env`, `file` (planned: `hashicorp`, \
             `aws`, `kubernetes`)"),
    );
    check(json!({"type": 3}), Err("vault config key `type` must be a string"));
    check(
        json!({"type": "env", "credential": {}}),
        Err("unknown key `credential` in the `env` vault config; expected one of `type`, \
             `credentials`, `env_prefix`; did you mean `credentials`?"),
    );
    check(
        json!({"type": "file", "env_prefix": "X"}),
        Err("unknown key `env_prefix` in the `file` vault config; expected one of `type`, `dir`"),
    );
    check(json!({"type": "file"}), Err("the `file` vault config needs `dir`"));
    check(
        json!({"type": "file", "dir": ""}),
        Err("vault config key `dir` must be a directory path"),
    );
    check(json!({"env_prefix": 1}), Err("vault config key `env_prefix` must be a string"));
    check(
        json!({"credentials": [SECRET]}),
        Err("vault config key `credentials` must be a map of credential type to payload"),
    );
    check(
        json!({"credentials": {"k8s": [SECRET]}}),
        Err("vault config key `credentials.k8s` must be a payload map or a token string"),
    );
}

#[test]
fn static_credentials_and_prefix_are_used() {
    let config =
        json!({"env_prefix": "NOPE_", "credentials": {"k8s": SECRET, "aws": {"key": "a"}}});
    let vault = build_vault(config.as_object().unwrap(), clock()).unwrap();
    let k8s = now(vault.get_credential(&scope("k8s", 60), &ticket("n"), 60)).unwrap();
    assert_eq!(json!(k8s.payload.expose()), json!({"token": SECRET}));
    let aws = now(vault.get_credential(&scope("aws", 60), &ticket("n"), 60)).unwrap();
    assert_eq!(json!(aws.payload.expose()), json!({"key": "a"}));
    let err = now(vault.get_credential(&scope("gcp", 60), &ticket("n"), 60)).unwrap_err();
    assert!(err.to_string().contains("`NOPE_GCP`"), "{err}");
    assert!(!format!("{vault:?}").contains(SECRET));
}
