//! Risk classes, sensitivities, environments, decision results and the risk matrix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The intrinsic risk of an action, or the effective risk of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RiskClass {
    /// Read-only or trivially reversible.
    Low,
    /// Changes state, recoverable.
    Medium,
    /// Changes state with real blast radius.
    High,
    /// Destructive or irreversible.
    Critical,
}

/// How sensitive a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Public data, no business impact.
    Public,
    /// Internal.
    Internal,
    /// Restricted.
    Restricted,
    /// Critical: production-critical or regulated.
    Critical,
}

/// The environment a target lives in. A closed set, as in the Python version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development.
    Dev,
    /// Staging.
    Staging,
    /// Production.
    Prod,
}

/// The outcome of a policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionResult {
    /// The action may run.
    Allow,
    /// The action may not run.
    Deny,
    /// A human must approve first.
    RequireApproval,
}

/// A string did not name a member of one of the enums above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`; expected one of {expected}")]
pub struct ParseEnumError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    ($ty:ident, $kind:literal, $expected:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every member, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used in YAML, JSON and messages.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(ParseEnumError { kind: $kind, value: s.to_owned(), expected: $expected }),
                }
            }
        }
    };
}

string_enum!(RiskClass, "risk class", "`low`, `medium`, `high`, `critical`", {
    Low => "low", Medium => "medium", High => "high", Critical => "critical",
});
string_enum!(Sensitivity, "sensitivity", "`public`, `internal`, `restricted`, `critical`", {
    Public => "public", Internal => "internal", Restricted => "restricted", Critical => "critical",
});
string_enum!(Environment, "environment", "`dev`, `staging`, `prod`", {
    Dev => "dev", Staging => "staging", Prod => "prod",
});
string_enum!(DecisionResult, "decision", "`allow`, `deny`, `require_approval`", {
    Allow => "allow", Deny => "deny", RequireApproval => "require_approval",
});

/// The context-aware risk matrix: action risk × target sensitivity → effective risk.
///
/// An unknown action is treated as [`RiskClass::Critical`] and a missing target as
/// [`Sensitivity::Critical`] by the caller of this function.
///
/// ```
/// use agent_safe_core::{effective_risk, RiskClass, Sensitivity};
/// assert_eq!(effective_risk(RiskClass::Medium, Sensitivity::Critical), RiskClass::Critical);
/// assert_eq!(effective_risk(RiskClass::High, Sensitivity::Public), RiskClass::Medium);
/// ```
pub const fn effective_risk(action: RiskClass, sensitivity: Sensitivity) -> RiskClass {
    use RiskClass::{Critical, High, Low, Medium};
    use Sensitivity as S;
    match (action, sensitivity) {
        (Low, S::Public) | (Low, S::Internal) | (Medium, S::Public) => Low,
        (Low, S::Restricted) | (Medium, S::Internal) | (High, S::Public) => Medium,
        (Low, S::Critical)
        | (Medium, S::Restricted)
        | (High, S::Internal)
        | (Critical, S::Public) => High,
        (Medium, S::Critical)
        | (High, S::Restricted)
        | (High, S::Critical)
        | (Critical, S::Internal)
        | (Critical, S::Restricted)
        | (Critical, S::Critical) => Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(action: &str, sensitivity: &str, expected: &str) {
        let got = effective_risk(action.parse().unwrap(), sensitivity.parse().unwrap());
        assert_eq!(got.as_str(), expected, "{action} × {sensitivity}");
    }

    #[test]
    fn matrix_matches_spec_table() {
        // SPEC §3, row by row.
        let table = [
            ("low", ["low", "low", "medium", "high"]),
            ("medium", ["low", "medium", "high", "critical"]),
            ("high", ["medium", "high", "critical", "critical"]),
            ("critical", ["high", "critical", "critical", "critical"]),
        ];
        let columns = ["public", "internal", "restricted", "critical"];
        for (row, expected) in table {
            for (col, want) in columns.iter().zip(expected) {
                check(row, col, want);
            }
        }
    }

    #[test]
    fn matrix_is_monotonic() {
        for &a in RiskClass::ALL {
            for &b in RiskClass::ALL {
                for &s in Sensitivity::ALL {
                    for &t in Sensitivity::ALL {
                        if a <= b && s <= t {
                            assert!(effective_risk(a, s) <= effective_risk(b, t));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn parse_errors_name_the_value() {
        let err = "extreme".parse::<RiskClass>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid risk class `extreme`; expected one of `low`, `medium`, `high`, `critical`"
        );
        assert_eq!(
            "require_approval".parse::<DecisionResult>(),
            Ok(DecisionResult::RequireApproval)
        );
    }
}
