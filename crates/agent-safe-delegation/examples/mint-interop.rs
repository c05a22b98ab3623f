//! Mints the delegation interop tokens in `tests/data/delegation/rust-minted.json` (fixture key,
//! issuer `agent-safe`, ten-year expiry, fixed clock) for the Python implementation to verify.
//!
//! `cargo run -q -p agent-safe-delegation --example mint-interop > tests/data/delegation/rust-minted.json`

use std::io::Write as _;
use std::sync::Arc;

use agent_safe_core::{Environment, ManualClock};
use agent_safe_delegation::{DelegationManager, DelegationRequest};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::json;
use time::Duration;
use time::macros::datetime;

const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let minted_at = datetime!(2026-11-26 10:00 UTC);
    let clock = Arc::new(ManualClock::new(minted_at));
    let ids = IdentityManager::new(SigningKey::hs256_from_str(KEY)?, "agent-safe", clock.clone());
    let root = ids.create_token(
        "orchestrator",
        "Orchestrator ✓",
        &["deployer".into(), "reader".into()],
        &["platform".into()],
        Duration::days(3652),
    )?;
    let delegations = DelegationManager::new(ids);
    clock.advance(Duration::microseconds(123_456));
    let worker = delegations.delegate(
        &root,
        &DelegationRequest::new("worker-1")
            .name("worker")
            .roles(["deployer"])
            .groups(["platform"])
            .max_depth(3)
            .actions(["get-*", "restart-deployment"])
            .environments([Environment::Dev, Environment::Staging]),
    )?;
    clock.advance(Duration::seconds(1));
    let sub = delegations.delegate(
        &worker.token,
        &DelegationRequest::new("sub-1").roles(["deployer"]).actions(["get-pod-logs"]),
    )?;

    let out = json!({
        "about": "minted by agent-safe-delegation (Rust) with `cargo run -p agent-safe-delegation --example mint-interop`; see README.md",
        "signing_key": KEY,
        "issuer": "agent-safe",
        "minted_at": "2026-11-26T10:00:00Z",
        "identity_tokens": {"orchestrator": root},
        "delegation_tokens": {
            "worker-1 from orchestrator": worker.token,
            "sub-1 from worker-1": sub.token,
        },
    });
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    stdout.write_all(b"\n")?;
    Ok(())
}
