//! Tests of the Kubernetes executor against a scripted fake API server (no cluster needed),
//! plus one ignored test that runs against a real cluster.

mod actions;
// mod credentials;
mod drain;
mod harness;
mod prechecks;
// mod real_cluster;
mod rollout;
mod state;
