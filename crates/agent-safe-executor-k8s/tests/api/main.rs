//! Tests of the Kubernetes executor against a scripted fake API server (no cluster needed),
//! plus one ignored test that runs against a real cluster.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly"
)]

mod actions;
mod catalog;
mod credentials;
mod drain;
mod harness;
mod prechecks;
mod real_cluster;
mod rollout;
mod state;
