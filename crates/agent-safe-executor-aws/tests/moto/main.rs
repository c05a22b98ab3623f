//! The AWS executor against moto's server, a real AWS-compatible HTTP endpoint: every
//! action's happy path with the state before and after, not-found errors, access errors
//! where moto enforces them, and the rollback round trip of each reversible action.
//!
//! moto comes from `AGENT_SAFE_MOTO_ENDPOINT` (`cargo xtask ci` starts one) or is started
//! from `target/moto-venv`; without either, every test prints `SKIPPED` and returns.
//! Tests share one server and run one at a time (a lock), each after a `moto-api/reset`:
//! one moto per test would cost ~1–3 s of Python start-up each on two cores, while a reset
//! takes milliseconds.

#![expect(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

mod ec2;
mod ecs;
mod iam;
mod lambda;
mod s3;
mod support;
