//! agent-safe delegation: an agent holding an identity token hands a narrower token to another
//! agent (SPEC §7.3).
//!
//! The chain of delegating agents travels inside the child's signed token, so the PDP stays
//! stateless. [`DelegationManager::delegate`] keeps the Python semantics and messages — strict
//! narrowing of roles and groups, child lifetime capped by the parent's, a depth limit — and adds:
//!
//! - the depth limit is a claim of the token (`max_delegation_depth`, default
//!   [`DEFAULT_MAX_DEPTH`] for tokens without it) and can only shrink down the chain;
//! - self-delegation and cycles are refused;
//! - a delegation may narrow the actions (policy glob patterns) and environments the child may
//!   request (claim `delegation_scope`); each further delegation can only narrow it more, and the
//!   PDP denies a request outside it before any rule.
//!
//! Tokens minted here verify in the Python version (which ignores the extra claims), and Python
//! delegation tokens verify here. See `docs/delegation.md`.

mod manager;
mod result;
pub mod scope;

pub use manager::{
    DEFAULT_MAX_DEPTH, Delegation, DelegationError, DelegationManager, DelegationRequest,
};
pub use result::DelegationResult;

#[cfg(test)]
mod tests;
