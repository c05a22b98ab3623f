//! Micro-benchmarks of ticket issue and validation, for `cargo xtask bench` (figures, no goals
//! enforced). Build in release for meaningful numbers.

use std::sync::Arc;
use std::time::Instant;

use agent_safe_core::{ManualClock, Params};
use time::macros::datetime;

use crate::{MemoryNonceStore, SigningKey, TicketIssuer, TicketValidator};

/// Issues and validates `iterations` tickets (HS256, `MemoryNonceStore`) and returns JSON:
/// `{"iterations": n, "ticket_issue_ns": …, "ticket_validate_ns": …, "ed25519_ticket_issue_ns": …,
/// "ed25519_ticket_validate_ns": …}` (mean nanoseconds per operation).
pub fn ticket_figures(iterations: u32) -> String {
    let iterations = iterations.max(1);
    let hs = SigningKey::hs256_from_str("bench-key-0123456789abcdef0123456789abcdef");
    let ed = SigningKey::generate_ed25519().map(|(k, _)| k);
    let mut out = serde_json::Map::new();
    out.insert("iterations".into(), iterations.into());
    for (prefix, key) in [("", hs.ok()), ("ed25519_", ed.ok())] {
        let Some(key) = key else { continue };
        let (issue, validate) = measure(key, iterations);
        out.insert(format!("{prefix}ticket_issue_ns"), issue.into());
        out.insert(format!("{prefix}ticket_validate_ns"), validate.into());
    }
    serde_json::Value::Object(out).to_string()
}

fn measure(key: SigningKey, iterations: u32) -> (u64, u64) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 09:00 UTC)));
    let verifying = key.verifying_key();
    let issuer = TicketIssuer::new(key, "agent-safe", clock.clone());
    let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
    let validator = TicketValidator::new(verifying, "agent-safe", clock, nonces);
    let mut params = Params::new();
    params.insert("namespace".into(), "dev".into());
    params.insert("deployment".into(), "api-server".into());
    params.insert("replicas".into(), 3.into());

    let start = Instant::now();
    let tickets: Vec<_> = (0..iterations)
        .filter_map(|_| {
            issuer
                .issue(
                    "scale-deployment",
                    "dev/test-app",
                    "deploy-bot",
                    &params,
                    "evt-0123456789ab",
                )
                .ok()
        })
        .collect();
    let issue = per_op(start, iterations);

    let start = Instant::now();
    let valid = tickets
        .iter()
        .filter(|t| {
            validator
                .validate(&t.token, Some("scale-deployment"), Some("dev/test-app"), Some(&params))
                .valid
        })
        .count();
    let validate = per_op(start, iterations);
    // Keep the work observable so it cannot be optimised away.
    std::hint::black_box(valid);
    (issue, validate)
}

fn per_op(start: Instant, iterations: u32) -> u64 {
    u64::try_from(start.elapsed().as_nanos() / u128::from(iterations)).unwrap_or(u64::MAX)
}
