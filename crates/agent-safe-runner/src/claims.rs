//! What a rejected ticket claimed, for the audit record of the rejection: a few string claims
//! read from the token payload WITHOUT verifying anything (marked as unverified), and a digest
//! of the token so repeated attempts with the same token can be correlated without storing
//! the bearer token itself.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Claims copied from a rejected ticket, each cut to this many characters.
const CLAIM_LIMIT: usize = 256;

/// Tokens longer than this are not decoded at all.
const TOKEN_LIMIT: usize = 16 * 1024;

/// The string claims copied (never `params`, which may hold sensitive values).
const CLAIMS: [&str; 6] = ["action", "target", "caller", "audit_id", "nonce", "iss"];

/// `action`, `target`, `caller`, `audit_id`, `nonce` and `iss` as the token's payload states
/// them (unverified), when the token is a JWT with a JSON object payload.
pub(crate) fn unverified(token: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if token.len() > TOKEN_LIMIT {
        return out;
    }
    let Some(payload) = token.split('.').nth(1) else { return out };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return out;
    };
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&bytes) else {
        return out;
    };
    for name in CLAIMS {
        if let Some(Value::String(v)) = claims.get(name) {
            out.insert(name.to_owned(), Value::String(crate::audit::cut_chars(v, CLAIM_LIMIT)));
        }
    }
    out
}

/// Lowercase hex SHA-256 of the token.
pub(crate) fn token_digest(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    agent_safe_core::hex::encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(token: &str, expected: Value) {
        assert_eq!(Value::Object(unverified(token)), expected);
    }

    #[test]
    fn reads_string_claims_without_params() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            json!({"action": "delete-pod", "target": "prod/x", "params": {"pw": "s3cr3t"},
                   "nonce": 5, "caller": "é".repeat(300)})
            .to_string(),
        );
        check(
            &format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig"),
            json!({"action": "delete-pod", "target": "prod/x",
                   "caller": format!("{}…", "é".repeat(256))}),
        );
        check("", json!({}));
        check("a.b.c", json!({}));
        check("a.W10.c", json!({}));
        check(&format!("a.{}.c", "x".repeat(TOKEN_LIMIT)), json!({}));
    }

    #[test]
    fn digests_are_sha256() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
