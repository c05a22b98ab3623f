//! Test helpers: hand-made JWTs (any header, any payload, any key) and a fixed clock.

use std::sync::Arc;

use agent_safe_core::ManualClock;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

/// The Python fixture key (46 bytes).
pub const FIXTURE_KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";

/// 2026-11-26 09:27:07 UTC, the fixtures' `iat` (1795685227).
pub const T0: OffsetDateTime = datetime!(2026-11-26 09:27:07 UTC);

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload` with both parts base64url-encoded from JSON.
pub fn signing_input(header: &Value, payload: &Value) -> String {
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()))
}

/// A JWT signed with HMAC-SHA256 under `secret`, whatever the header says.
pub fn hs256_raw(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = signing_input(header, payload);
    let tag =
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A JWT with the fixture key and a standard HS256 header.
pub fn hs256(payload: &Value) -> String {
    hs256_raw(&serde_json::json!({"alg": "HS256", "typ": "JWT"}), payload, FIXTURE_KEY.as_bytes())
}

/// The payload part of a token, decoded.
pub fn payload_of(token: &str) -> serde_json::Map<String, Value> {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The header part of a token, decoded.
pub fn header_of(token: &str) -> serde_json::Map<String, Value> {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}
