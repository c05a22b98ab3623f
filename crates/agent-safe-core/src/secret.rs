//! A wrapper for secret values: `Debug` and `Display` print `[redacted]`, and it does not
//! implement `Serialize`, so a secret cannot reach a log, the audit log or JSON output by accident.

use std::fmt;

/// What a hidden value is shown as: sensitive params and state fields in the audit log and
/// API output, and secrets in `Debug` output. The one spelling of the marker in the workspace.
pub const REDACTED: &str = "[redacted]";

/// The prefix of a keyed digest (`hmac-sha256:<hex>`) that stands in for a sensitive value in
/// recorded state: the audit crate's `StateKey` digests and the AWS executor's
/// environment-variable digests.
pub const DIGEST_PREFIX: &str = "hmac-sha256:";

/// A secret value. Read it with [`Secret::expose`] only where it is used.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Read as the value itself (a configuration file's secret); there is no `Serialize`.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

/// The value's schema, marked `writeOnly` (a secret is written in a file, never shown).
#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Secret<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Secret_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = T::json_schema(generator);
        schema.insert("writeOnly".to_owned(), true.into());
        schema
    }

    fn inline_schema() -> bool {
        true
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_prints_the_value() {
        let s = super::Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
        let read: super::Secret<String> = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(read, s, "read as the value itself");
        assert_eq!(format!("{read:?}"), "[redacted]");
    }
}
