//! The CLI's integration tests: one test binary, a module per area. Each runs the `agent-safe`
//! binary (or `serve`/`mcp` as processes) the way a user does.

mod common;

mod approval;
mod audience;
mod audit_ship;
#[cfg(feature = "aws")]
mod aws_runner;
mod change;
mod cli;
mod credential;
mod delegation;
mod exit_flush;
mod features;
mod first_run;
mod forged;
mod fronts;
mod identity;
#[cfg(feature = "k8s")]
mod k8s_e2e;
mod mcp;
mod redaction;
#[cfg(feature = "postgres")]
mod replicas;
mod runner;
mod serve;
#[cfg(feature = "postgres")]
mod state;
mod ticket;
mod tlog;
mod vaults;
