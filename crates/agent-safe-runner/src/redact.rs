//! Keeping secrets out of the audit log: parameters and state fields an action marks
//! `sensitive: true` never reach an event (or the caller's result) in clear.
//!
//! - Sensitive **params** become `[redacted]` (as in decision events), by the registry's
//!   `RegisteredAction::redact_params`, the one implementation of that rule.
//! - Sensitive **state fields** become `hmac-sha256:<hex>`, a keyed digest of the value's
//!   canonical JSON, when the runner has a state key (the SDK and the CLI derive one from the
//!   signing key with [`STATE_KEY_CONTEXT`]); equal values give equal digests, so the state
//!   diff still shows whether a secret changed, but the value cannot be read back without the
//!   key. Without a key they become `[redacted]`.
//! - State fields the action does not declare are dropped when it declares any, so an
//!   executor that returns a whole object cannot leak undeclared data through the runner.

use agent_safe_audit::state::{StateKey, redact_state};
use agent_safe_core::{Secret, StateMap};
use agent_safe_registry::RegisteredAction;

/// What a redacted value is replaced by.
pub use agent_safe_core::REDACTED;

/// The context string with which the state key is derived from the signing key
/// (`SigningKey::derive_secret`): the audit crate's, so the runner's digests and the SDK's
/// compare equal.
pub use agent_safe_audit::state::STATE_KEY_CONTEXT;

/// How sensitive state values are hidden: with [`StateKey`] digests through
/// [`redact_state`], the one implementation the SDK's state captures use too.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    key: Option<StateKey>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.key.is_some() { "hmac-sha256" } else { REDACTED };
        f.debug_struct("Redactor").field("mode", &mode).finish()
    }
}

impl Redactor {
    pub(crate) fn with_key(key: &Secret<[u8; 32]>) -> Self {
        Self { key: Some(StateKey::new(key)) }
    }

    /// State as recorded: only declared fields (when the action declares any), sensitive ones
    /// digested or redacted.
    pub(crate) fn state(&self, action: &RegisteredAction, state: StateMap) -> StateMap {
        let declared = &action.definition().state_fields;
        if declared.is_empty() {
            return state;
        }
        let kept: StateMap =
            state.into_iter().filter(|(k, _)| declared.iter().any(|f| f.name == *k)).collect();
        let sensitive: Vec<&str> =
            declared.iter().filter(|f| f.sensitive).map(|f| f.name.as_str()).collect();
        redact_state(&kept, &sensitive, self.key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use agent_safe_registry::Registry;
    use serde_json::{Value, json};

    use super::*;

    fn action() -> Registry {
        let yaml = b"name: get-secret\nversion: 1.0.0\ndescription: d\nrisk_class: high\n\
            target_types: [x]\nparameters:\n  - {name: secret, type: string}\n  - {name: token, type: string, sensitive: true}\n\
            state_fields:\n  - {name: data, sensitive: true}\n  - {name: keys}\n";
        Registry::from_sources([(PathBuf::from("a.yaml"), &yaml[..])]).unwrap()
    }

    #[track_caller]
    fn check(redactor: &Redactor, state: Value, expected: Value) {
        let registry = action();
        let Value::Object(state) = state else { panic!("object") };
        let got = redactor.state(registry.get("get-secret").unwrap(), state);
        assert_eq!(Value::Object(got), expected);
    }

    #[test]
    fn sensitive_state_is_digested_or_redacted_and_undeclared_dropped() {
        let plain = Redactor::default();
        check(
            &plain,
            json!({"data": {"password": "hunter2"}, "keys": ["password"], "raw": "x"}),
            json!({"data": "[redacted]", "keys": ["password"]}),
        );
        let keyed = Redactor::with_key(&Secret::new([7; 32]));
        let registry = action();
        let a = registry.get("get-secret").unwrap();
        let one = |v: Value| {
            let mut m = StateMap::new();
            m.insert("data".into(), v);
            keyed.state(a, m)["data"].clone()
        };
        let d1 = one(json!({"password": "hunter2", "user": "u"}));
        // Canonical JSON: key order does not change the digest; the value does.
        assert_eq!(d1, one(json!({"user": "u", "password": "hunter2"})));
        assert_ne!(d1, one(json!({"password": "hunter3", "user": "u"})));
        let text = d1.as_str().unwrap();
        assert!(text.starts_with("hmac-sha256:") && text.len() == 12 + 64, "{text}");
        assert!(!text.contains("hunter2"));
        // Another key, another digest.
        let other = Redactor::with_key(&Secret::new([8; 32]));
        let mut m = StateMap::new();
        m.insert("data".into(), json!({"password": "hunter2", "user": "u"}));
        assert_ne!(other.state(a, m)["data"], d1);
        assert_eq!(format!("{keyed:?}"), "Redactor { mode: \"hmac-sha256\" }");
    }
}
