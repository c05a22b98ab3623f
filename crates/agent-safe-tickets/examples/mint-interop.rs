//! Mints the Rust-side interop tokens in `tests/data/tickets/rust-minted.json` (fixture key,
//! issuer `agent-safe`, ten-year expiry) for the Python implementation to verify.
//!
//! `cargo run -q -p agent-safe-tickets --example mint-interop > tests/data/tickets/rust-minted.json`

use std::io::Write as _;
use std::sync::Arc;

use agent_safe_core::{DelegationLink, ManualClock, Params};
use agent_safe_tickets::{
    Audience, IdentityClaims, IdentityManager, SigningKey, TicketIssuer, params_digest,
};
use serde_json::json;
use time::Duration;
use time::macros::datetime;

const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let minted_at = datetime!(2026-11-26 10:00 UTC);
    let clock = Arc::new(ManualClock::new(minted_at));
    let ten_years = Duration::days(3652);
    let key = SigningKey::hs256_from_str(KEY)?;
    let ids = IdentityManager::new(key.clone(), "agent-safe", clock.clone());

    let deployer = ids.create_token(
        "deploy-bot",
        "Déploiement ✓",
        &["deployer".into()],
        &["platform".into()],
        ten_years,
    )?;
    let delegated = ids.create_token_with_claims(
        &IdentityClaims {
            agent_id: "worker-1".into(),
            agent_name: "worker".into(),
            roles: vec!["deployer".into()],
            groups: vec![],
            delegation_chain: vec![DelegationLink {
                agent_id: "orchestrator".into(),
                agent_name: String::new(),
                roles: vec!["deployer".into(), "reader".into()],
                groups: vec!["platform".into()],
                delegated_at: Some(minted_at + Duration::microseconds(123_456)),
            }],
            delegated_roles: vec!["deployer".into()],
            delegation_depth: 1,
            ..IdentityClaims::default()
        },
        ten_years,
    )?;

    let params: Params = serde_json::from_value(
        json!({"namespace": "dev", "deployment": "app-ü", "replicas": 4, "ratio": 0.5}),
    )?;
    let issuer = TicketIssuer::new(key, "agent-safe", clock).with_ttl(ten_years);
    // Python's TicketValidator (PyJWT without an audience) accepts only tickets without `aud`.
    let python_compatible = issuer.clone().with_audience(Audience::Absent).issue(
        "scale-deployment",
        "dev/test-app",
        "deploy-bot",
        &params,
        "evt-00000000abcd",
    )?;
    let with_audience = issuer.issue(
        "scale-deployment",
        "dev/test-app",
        "deploy-bot",
        &params,
        "evt-00000000abce",
    )?;

    let out = json!({
        "about": "minted by agent-safe-tickets (Rust) with `cargo run -p agent-safe-tickets --example mint-interop`; see README.md",
        "signing_key": KEY,
        "issuer": "agent-safe",
        "minted_at": "2026-11-26T10:00:00Z",
        "identity_tokens": {"deployer": deployer},
        "delegation_tokens": {"worker-1 from orchestrator": delegated},
        "execution_tickets": {
            "no-aud": {"token": python_compatible.token, "nonce": python_compatible.nonce},
            "aud-agent-safe-runner": {"token": with_audience.token, "nonce": with_audience.nonce},
        },
        "ticket_params": params,
        "ticket_params_digest": params_digest(&params),
    });
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    stdout.write_all(b"\n")?;
    Ok(())
}
