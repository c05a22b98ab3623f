//! Newtypes for identifiers whose mix-up would be a security bug.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// The name of a registered action, e.g. `restart-deployment`.
    ActionName
);
id_type!(
    /// The id of an inventory target, e.g. `prod/api-server`.
    TargetId
);
id_type!(
    /// The id of an agent (a caller), e.g. `deploy-bot`.
    AgentId
);
id_type!(
    /// The id of an audit event, `evt-` followed by 12 hex digits.
    AuditId
);

impl AuditId {
    /// A fresh audit id (`evt-` + 12 lowercase hex digits), the shape of the Python
    /// version's ids; unique within the process (see [`crate::random::id48`]).
    pub fn generate() -> Self {
        Self(format!("evt-{:012x}", crate::random::id48()))
    }
}
