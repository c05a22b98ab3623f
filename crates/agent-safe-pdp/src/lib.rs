//! The agent-safe policy decision point (PDP).
//!
//! Rules come from policy files (SPEC §2); [`Pdp::evaluate`] applies them to a
//! [`Request`] with default deny: an unknown action, invalid params, a rejected caller or
//! no matching rule is a DENY with a reason, never an error. Rules are indexed by action
//! and target environment at construction, so evaluation cost does not grow with the
//! number of rules that cannot apply.

mod analysis;
mod compiled;
pub mod cumulative;
mod engine;
pub mod limits;
pub mod policy;
pub mod testing;
pub mod windows;

pub use analysis::Warning;
pub use cumulative::CumulativeRiskConfig;
pub use engine::{
    Caller, CumulativeContext, DEFAULT_DENY_REASON, Evaluation, Pdp, PdpConfig, Request,
};
pub use limits::RateLimitConfig;
pub use policy::{PolicyLoadError, Rule, SourcedRule};
pub use windows::{WindowStore, WindowStoreError};

/// The JSON Schema of a policy file (feature `schema`): what the loader reads, no stricter.
#[cfg(feature = "schema")]
pub fn policy_schema() -> schemars::Schema {
    agent_safe_registry::yaml::lax::schema::yaml_document(schemars::schema_for!(policy::PolicyFile))
}

/// The JSON Schema of a policy-test file (feature `schema`).
#[cfg(feature = "schema")]
pub fn policy_test_schema() -> schemars::Schema {
    agent_safe_registry::yaml::lax::schema::yaml_document(schemars::schema_for!(testing::TestFile))
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "schema"))]
mod schema_tests;

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
mod approval_tests;
