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

pub use analysis::Warning;
pub use cumulative::CumulativeRiskConfig;
pub use engine::{
    Caller, CumulativeContext, DEFAULT_DENY_REASON, Evaluation, Pdp, PdpConfig, Request,
};
pub use limits::RateLimitConfig;
pub use policy::{PolicyLoadError, Rule, SourcedRule};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
mod approval_tests;
