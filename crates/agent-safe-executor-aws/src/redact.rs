//! Keeps secret values out of reported state: Lambda environment variable values become
//! keyed digests (`hmac-sha256:` + 32 hex digits), so a diff still shows which variables
//! changed without the values reaching the audit log.

use std::collections::{BTreeMap, HashMap};

use agent_safe_core::Secret;
use ring::hmac;

/// Prefix of a redacted value. The executor refuses to write values that start with it.
pub(crate) use agent_safe_core::DIGEST_PREFIX as HMAC_PREFIX;

/// HMACs secret values with a key that never leaves the process.
pub(crate) struct Redactor {
    key: hmac::Key,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({})", agent_safe_core::REDACTED)
    }
}

impl Redactor {
    /// A redactor with `key`, or a fresh random key (digests then compare equal within
    /// this process only).
    pub(crate) fn new(key: Option<&Secret<Vec<u8>>>) -> Self {
        let bytes = match key {
            Some(k) => k.expose().clone(),
            None => agent_safe_core::random::bytes::<32>().to_vec(),
        };
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &bytes) }
    }

    /// `hmac-sha256:` + the first 16 bytes of HMAC-SHA256(`name` NUL `value`), in hex. The
    /// name is included so equal values of two variables do not show as equal.
    pub(crate) fn digest(&self, name: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(name.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = String::with_capacity(HMAC_PREFIX.len() + 32);
        out.push_str(HMAC_PREFIX);
        agent_safe_core::hex::encode_into(tag.as_ref().get(..16).unwrap_or_default(), &mut out);
        out
    }

    /// The environment as the JSON object string the `environment_variables` state field
    /// holds, names sorted, every value replaced by its digest.
    pub(crate) fn environment(&self, vars: Option<&HashMap<String, String>>) -> String {
        let redacted: BTreeMap<&str, String> =
            vars.into_iter().flatten().map(|(k, v)| (k.as_str(), self.digest(k, v))).collect();
        serde_json::to_string(&redacted).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_hide_values_but_show_changes() {
        let r = Redactor::new(Some(&Secret::new(b"k".to_vec())));
        let a = r.digest("PASSWORD", "hunter2");
        assert!(a.starts_with(HMAC_PREFIX) && a.len() == HMAC_PREFIX.len() + 32, "{a}");
        assert!(!a.contains("hunter2"));
        assert_eq!(a, r.digest("PASSWORD", "hunter2"));
        assert_ne!(a, r.digest("PASSWORD", "hunter3"));
        assert_ne!(a, r.digest("TOKEN", "hunter2"), "the name is part of the digest");
        let other = Redactor::new(None);
        assert_ne!(a, other.digest("PASSWORD", "hunter2"), "digests depend on the key");
    }

    #[test]
    fn environment_is_a_sorted_json_object_of_digests() {
        let r = Redactor::new(Some(&Secret::new(b"k".to_vec())));
        let vars = HashMap::from([
            ("B".to_owned(), "secret".to_owned()),
            ("A".to_owned(), "x".to_owned()),
        ]);
        let text = r.environment(Some(&vars));
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(parsed["B"], r.digest("B", "secret"));
        assert!(!text.contains("secret"));
        assert_eq!(r.environment(None), "{}");
    }
}
