//! Micro-benchmarks of ticket issue and validation, for `cargo xtask bench` (figures, no goals
//! enforced). Build in release for meaningful numbers.

use std::sync::Arc;
use std::time::Instant;

use agent_safe_core::{ManualClock, Params};
use time::macros::datetime;

use crate::{MemoryNonceStore, SigningKey, TicketIssuer, TicketValidator};

/// Issues and validates `iterations` tickets (HS256, `MemoryNonceStore`) and returns JSON:
/// `{"iterations": n, "ticket_issue_ns": …, "ticket_validate_ns": …, "ed25519_ticket_issue_ns": …,
/// "ed25519_ticket_validate_ns": …}` (nanoseconds per operation: the mean of the best of
/// five batches).
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

    // The best of five batches: the machine may be shared, and noise only ever adds time.
    let batch = (iterations / BATCHES).max(1);
    let (mut issue, mut validate) = (u64::MAX, u64::MAX);
    for _ in 0..BATCHES {
        let start = Instant::now();
        let tickets: Vec<_> = (0..batch)
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
        issue = issue.min(per_op(start, batch));

        let start = Instant::now();
        let valid = tickets
            .iter()
            .filter(|t| {
                validator
                    .validate(
                        &t.token,
                        Some("scale-deployment"),
                        Some("dev/test-app"),
                        Some(&params),
                    )
                    .valid
            })
            .count();
        validate = validate.min(per_op(start, batch));
        // Keep the work observable so it cannot be optimised away.
        std::hint::black_box(valid);
    }
    (issue, validate)
}

const BATCHES: u32 = 5;

fn per_op(start: Instant, iterations: u32) -> u64 {
    u64::try_from(start.elapsed().as_nanos() / u128::from(iterations)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_are_reported() {
        let figures: serde_json::Value = serde_json::from_str(&super::ticket_figures(10)).unwrap();
        for key in [
            "ticket_issue_ns",
            "ticket_validate_ns",
            "ed25519_ticket_issue_ns",
            "ed25519_ticket_validate_ns",
        ] {
            assert!(figures[key].as_u64().is_some_and(|ns| ns > 0), "{key} in {figures}");
        }
        assert_eq!(figures["iterations"], 10);
    }
}
