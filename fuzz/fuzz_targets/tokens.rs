//! Fuzz token validation: any string as an identity token must be rejected cleanly.
#![no_main]

use std::sync::Arc;

use agent_safe_core::ManualClock;
use agent_safe_tickets::{IdentityManager, SigningKey};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let Ok(key) = SigningKey::hs256_from_str("fuzz-key-0123456789abcdef0123456789abcdef") else { return };
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
    let manager = IdentityManager::new(key, "agent-safe", clock);
    let _ = manager.validate(token);
});
