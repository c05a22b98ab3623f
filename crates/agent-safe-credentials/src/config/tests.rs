//! Tests for `build_vault`: types, keys, shapes and messages.

use serde_json::{Value, json};

use super::*;
use crate::test_support::{SECRET, clock, now, scope, ticket};

/// Builds a vault from `config`; `Ok(kind)` or `Err(message)`.
#[track_caller]
fn check(config: Value, expected: Result<&str, &str>) {
    let got = build_vault(config.as_object().unwrap(), clock());
    #[cfg(feature = "schema")]
    agrees_with_schema(&config, &got);
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

/// The vault schema accepts every config that builds, and refuses every config refused for
/// its shape (type, keys, values); a build refused for another reason (a backend not in this
/// build, an unreadable file) says nothing about the schema.
#[cfg(feature = "schema")]
#[track_caller]
fn agrees_with_schema(
    config: &Value,
    got: &Result<std::sync::Arc<dyn CredentialVault>, VaultConfigError>,
) {
    let schema = serde_json::to_value(vault_schema()).unwrap();
    let valid = jsonschema::validator_for(&schema).unwrap().is_valid(config);
    match got {
        Ok(_) => assert!(valid, "{config} builds but the schema refuses it"),
        Err(
            VaultConfigError::UnknownType(_)
            | VaultConfigError::UnknownKey { .. }
            | VaultConfigError::WrongType { .. }
            | VaultConfigError::MissingKey { .. },
        ) => assert!(!valid, "{config} is refused but the schema accepts it"),
        Err(_) => {}
    }
}

#[cfg(feature = "schema")]
#[test]
fn the_schema_has_exactly_the_keys_of_each_vault_type() {
    let schema = serde_json::to_value(vault_schema()).unwrap();
    let alternatives = schema["oneOf"].as_array().unwrap();
    let types: Vec<&str> = alternatives
        .iter()
        .map(|a| a["title"].as_str().unwrap().trim_end_matches(" vault"))
        .collect();
    assert_eq!(types, VAULT_TYPES);
    for (alternative, keys) in
        alternatives.iter().zip([ENV_KEYS, FILE_KEYS, STS_KEYS, KUBERNETES_KEYS])
    {
        let mut names: Vec<&str> =
            alternative["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = keys.to_vec();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected, "{alternative}");
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
        Err("unknown vault type `hashicorp`; available: `env`, `file`, `sts`, `kubernetes` \
             (planned: `hashicorp`)"),
    );
    check(json!({"type": "sts"}), Err(STS_WITHOUT_ROLE));
    check(json!({"type": "kubernetes"}), KUBERNETES_PLAIN);
    check(
        json!({"type": "sts", "role_arn": ROLE, "regoin": "eu-west-1"}),
        Err("unknown key `regoin` in the `sts` vault config; expected one of `type`, `role_arn`, \
             `region`, `profile`, `endpoint_url`, `session_duration`; did you mean `region`?"),
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

const ROLE: &str = "arn:aws:iam::123456789012:role/agent-safe-runner";

#[cfg(feature = "aws")]
const STS_WITHOUT_ROLE: &str = "the `sts` vault config needs `role_arn`";
#[cfg(not(feature = "aws"))]
const STS_WITHOUT_ROLE: &str = "the `sts` vault is not in this build: install the CLI with \
                                `cargo install agent-safe-cli --features aws` (or enable the \
                                `aws` feature of agent-safe-credentials)";

#[cfg(feature = "k8s")]
const KUBERNETES_PLAIN: Result<&str, &str> = Ok("kubernetes");
#[cfg(not(feature = "k8s"))]
const KUBERNETES_PLAIN: Result<&str, &str> = Err("the `kubernetes` vault is not in this build: \
    install the CLI with `cargo install agent-safe-cli --features k8s` (or enable the `k8s` \
    feature of agent-safe-credentials)");

/// `type: sts` builds the STS vault, the one that enforces scope; `require_scoped` keeps it and
/// replaces the others by a refusal that says why.
#[cfg(feature = "aws")]
#[test]
fn sts_from_config_and_require_scoped() {
    use crate::require_scoped;
    check(json!({"type": "sts", "role_arn": ROLE, "region": "eu-west-1"}), Ok("sts"));
    check(json!({"type": "sts", "role_arn": ROLE, "session_duration": 3600}), Ok("sts"));
    check(
        json!({"type": "sts", "role_arn": ROLE, "session_duration": "1h"}),
        Err("vault config key `session_duration` must be 900 to 43200 seconds"),
    );
    check(
        json!({"type": "sts", "role_arn": ROLE, "session_duration": 600}),
        Err("vault config key `session_duration` must be 900 to 43200 seconds"),
    );
    check(
        json!({"type": "sts", "role_arn": "not-an-arn"}),
        Err("vault config key `role_arn` must be an IAM role ARN such as \
             `arn:aws:iam::123456789012:role/agent-safe`"),
    );
    let sts = build_vault(json!({"type": "sts", "role_arn": ROLE}).as_object().unwrap(), clock())
        .unwrap();
    assert!(sts.enforces_scope());
    assert!(require_scoped(sts).enforces_scope());
    let file =
        build_vault(json!({"type": "file", "dir": "/nonexistent"}).as_object().unwrap(), clock())
            .unwrap();
    assert!(!file.enforces_scope());
    let refused = require_scoped(file);
    let err = now(refused.get_credential(&scope("aws", 300), &ticket("n"), 300)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "credentials.require_scoped: the `file` vault cannot limit a credential to the action's \
         scope; configure a vault that can (`sts`, `kubernetes`), or unset require_scoped"
    );
}
