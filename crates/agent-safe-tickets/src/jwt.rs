//! The JWT layer shared by identity tokens and tickets: signing, and verification with PyJWT's
//! check order and messages, the algorithm pinned by the key and time taken from the injected clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use serde::Serialize;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::keys::{KeySet, SigningKey};

/// Tokens longer than this are rejected before any parsing.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Which `aud` claim tokens carry and what a verifier accepts.
///
/// PyJWT (the Python version) sets no audience: it mints no `aud` and rejects any token that
/// carries one. Identity tokens keep that default ([`Audience::Absent`]) so they stay
/// interchangeable with Python; execution tickets default to
/// `Audience::IfPresent("agent-safe-runner")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Mint no `aud`; reject a token that has one (`Invalid audience`), as PyJWT does.
    Absent,
    /// Mint `aud: <value>`; accept only tokens whose `aud` is or contains the value (a token
    /// without `aud` fails with `Token is missing the "aud" claim`).
    Required(String),
    /// Mint `aud: <value>`; accept tokens whose `aud` is or contains the value, and tokens without
    /// `aud` (Python-minted). A different audience is rejected (`Audience doesn't match`).
    IfPresent(String),
}

impl Audience {
    /// The value written into minted tokens.
    pub fn minted(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Required(aud) | Self::IfPresent(aud) => Some(aud),
        }
    }
}

/// A verification failure, before it is worded for identity tokens or tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// `exp` has passed.
    Expired,
    /// `iss` differs; carries the token's issuer (or its JSON when it is not a string).
    InvalidIssuer(String),
    /// Anything else, with PyJWT's message where it has one.
    Invalid(String),
}

/// What a verifier requires.
pub(crate) struct Rules<'a> {
    pub keys: &'a KeySet,
    pub issuer: &'a str,
    pub audience: &'a Audience,
    pub leeway: Duration,
    pub required: &'a [&'static str],
    pub now: OffsetDateTime,
}

/// A token whose signature and registered claims were verified.
#[derive(Debug)]
pub(crate) struct Verified {
    pub claims: Map<String, Value>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Signs `claims` (serialised in field order) with `key`, adding its `kid` header if set.
pub(crate) fn sign<T: Serialize>(key: &SigningKey, claims: &T) -> Result<String, String> {
    let mut header = Header::new(key.algorithm().jsonwebtoken());
    header.kid = key.kid().map(str::to_owned);
    let Some(pair) = key.ed25519_pair() else {
        return jsonwebtoken::encode(&header, claims, key.encoding()).map_err(|e| e.to_string());
    };
    // jsonwebtoken re-parses the PKCS#8 key on every EdDSA signature (~20 µs); sign with the
    // parsed pair instead. Same compact serialisation: base64url(header).base64url(claims).sig.
    let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = pair.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
    Ok(token)
}

/// Whole seconds since the epoch, as PyJWT writes `iat`/`exp` (truncated).
pub(crate) fn unix_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Verifies `token` in PyJWT's order: shape and header, algorithm (pinned by the selected key),
/// signature, payload, required claims, `iat`, `nbf`, `exp`, `iss`, `aud`.
pub(crate) fn verify(token: &str, rules: &Rules<'_>) -> Result<Verified, JwtError> {
    let invalid = |m: &str| JwtError::Invalid(m.to_owned());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Invalid(format!(
            "Token is {} bytes long, over the {MAX_TOKEN_BYTES}-byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("Not enough segments"));
    };
    if parts.next().is_some() {
        return Err(invalid("Too many segments"));
    }

    let header_bytes =
        URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| invalid("Invalid header padding"))?;
    let header: Value = serde_json::from_slice(&header_bytes)
        .map_err(|e| JwtError::Invalid(format!("Invalid header string: {e}")))?;
    let Value::Object(header) = header else {
        return Err(invalid("Invalid header string: must be a json object"));
    };
    let alg = match header.get("alg") {
        None | Some(Value::Null) => return Err(invalid("Algorithm not specified")),
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(invalid("The specified alg value is not allowed")),
    };
    if header.contains_key("crit") {
        return Err(invalid("Invalid 'crit' header: critical extensions are not supported"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(invalid("Key ID header parameter must be a string")),
    };
    let Some(key) = rules.keys.get(kid) else {
        return Err(JwtError::Invalid(format!("Unknown key id `{}`", kid.unwrap_or_default())));
    };
    let algorithm = key.algorithm();
    if alg != algorithm.jwt_name() {
        // Covers `none`, other algorithms, and HS256/EdDSA confusion: the key decides.
        return Err(invalid("The specified alg value is not allowed"));
    }
    if URL_SAFE_NO_PAD.decode(signature_b64).is_err() {
        return Err(invalid("Invalid crypto padding"));
    }

    // Signature first, then the payload. jsonwebtoken's `decode` would parse the payload twice and
    // validate claims itself; only its signature check is used, and claims are validated below
    // with PyJWT's order and messages and the injected clock.
    let message = &token[..header_b64.len() + 1 + payload_b64.len()];
    match jsonwebtoken::crypto::verify(
        signature_b64,
        message.as_bytes(),
        key.decoding(),
        algorithm.jsonwebtoken(),
    ) {
        Ok(true) => {}
        Ok(false) => return Err(invalid("Signature verification failed")),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::Base64(_) => {
                return Err(invalid("Invalid crypto padding"));
            }
            _ => return Err(invalid("Signature verification failed")),
        },
    }
    let payload =
        URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid("Invalid payload padding"))?;
    let claims = serde_json::from_slice::<Value>(&payload)
        .map_err(|e| JwtError::Invalid(format!("Invalid payload string: {e}")))?;
    let Value::Object(claims) = claims else {
        return Err(invalid("Invalid payload string: must be a json object"));
    };

    for name in rules.required {
        if matches!(claims.get(*name), None | Some(Value::Null)) {
            return Err(missing(name));
        }
    }
    let leeway = rules.leeway;
    let iat = time_claim(&claims, "iat", "Issued At claim (iat) must be an integer.")?;
    if let Some(iat) = iat
        && iat > rules.now + leeway
    {
        return Err(invalid("The token is not yet valid (iat)"));
    }
    let nbf = time_claim(&claims, "nbf", "Not Before claim (nbf) must be an integer.")?;
    if let Some(nbf) = nbf
        && nbf > rules.now + leeway
    {
        return Err(invalid("The token is not yet valid (nbf)"));
    }
    let exp = time_claim(&claims, "exp", "Expiration Time claim (exp) must be an integer.")?;
    if let Some(exp) = exp
        && exp <= rules.now - leeway
    {
        return Err(JwtError::Expired);
    }
    match claims.get("iss") {
        None => return Err(missing("iss")),
        Some(Value::String(iss)) if iss == rules.issuer => {}
        Some(Value::String(iss)) => return Err(JwtError::InvalidIssuer(iss.clone())),
        Some(other) => return Err(JwtError::InvalidIssuer(other.to_string())),
    }
    check_audience(claims.get("aud"), rules.audience)?;

    let (Some(issued_at), Some(expires_at)) = (iat, exp) else {
        // Every caller requires both; keep the error rather than trusting that.
        return Err(missing(if iat.is_none() { "iat" } else { "exp" }));
    };
    Ok(Verified { claims, issued_at, expires_at })
}

fn missing(name: &str) -> JwtError {
    JwtError::Invalid(format!("Token is missing the \"{name}\" claim"))
}

/// A NumericDate claim as PyJWT reads it (`int(value)`: integers, floats truncated).
fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
    not_integer: &str,
) -> Result<Option<OffsetDateTime>, JwtError> {
    let seconds = match claims.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e17 =>
            {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "int() truncates; range checked"
                )]
                Some(f.trunc() as i64)
            }
            _ => None,
        },
        Some(_) => None,
    };
    let Some(seconds) = seconds else { return Err(JwtError::Invalid(not_integer.to_owned())) };
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(Some)
        .map_err(|_| JwtError::Invalid(format!("Claim ({name}) is out of range")))
}

/// Python truthiness of a JSON value (PyJWT treats a falsy `aud` as absent).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn check_audience(aud: Option<&Value>, expected: &Audience) -> Result<(), JwtError> {
    let invalid = |m: &str| Err(JwtError::Invalid(m.to_owned()));
    let aud = aud.filter(|v| truthy(v));
    let wanted = match (expected, aud) {
        (Audience::Absent, None) | (Audience::IfPresent(_), None) => return Ok(()),
        (Audience::Absent, Some(_)) => return invalid("Invalid audience"),
        (Audience::Required(_), None) => return Err(missing("aud")),
        (Audience::Required(wanted) | Audience::IfPresent(wanted), Some(aud)) => (wanted, aud),
    };
    let (wanted, aud) = wanted;
    let matches = match aud {
        Value::String(s) => s == wanted,
        Value::Array(items) => {
            if !items.iter().all(Value::is_string) {
                return invalid("Invalid claim format in token");
            }
            items.iter().any(|v| v.as_str() == Some(wanted.as_str()))
        }
        _ => return invalid("Invalid claim format in token"),
    };
    if matches { Ok(()) } else { invalid("Audience doesn't match") }
}

/// Reads an optional string claim; `null` counts as absent.
pub(crate) fn opt_str<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Claim `{name}` must be a string")),
    }
}

/// Reads a required string claim (presence was checked with the required claims).
pub(crate) fn req_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    opt_str(claims, name)?.ok_or_else(|| format!("Token is missing the \"{name}\" claim"))
}

/// Reads an optional list-of-strings claim; absent or `null` is empty.
pub(crate) fn str_list(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("Claim `{name}` must be a list of strings")),
        Some(_) => Err(format!("Claim `{name}` must be a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check_aud(aud: Option<Value>, expected: &Audience, want: Result<(), &str>) {
        let got = check_audience(aud.as_ref(), expected);
        assert_eq!(
            got,
            want.map_err(|m| JwtError::Invalid(m.to_owned())),
            "aud {aud:?} vs {expected:?}"
        );
    }

    #[test]
    fn audience_rules_follow_pyjwt() {
        let runner = "agent-safe-runner".to_owned();
        let required = Audience::Required(runner.clone());
        let if_present = Audience::IfPresent(runner);
        check_aud(None, &Audience::Absent, Ok(()));
        check_aud(Some(json!("")), &Audience::Absent, Ok(()));
        check_aud(Some(json!("x")), &Audience::Absent, Err("Invalid audience"));
        check_aud(None, &required, Err("Token is missing the \"aud\" claim"));
        check_aud(Some(json!([])), &required, Err("Token is missing the \"aud\" claim"));
        check_aud(None, &if_present, Ok(()));
        check_aud(Some(json!("agent-safe-runner")), &required, Ok(()));
        check_aud(Some(json!(["a", "agent-safe-runner"])), &required, Ok(()));
        check_aud(Some(json!("agent-safe-identity")), &if_present, Err("Audience doesn't match"));
        check_aud(Some(json!(["a", 1])), &required, Err("Invalid claim format in token"));
        check_aud(Some(json!({"a": 1})), &if_present, Err("Invalid claim format in token"));
    }

    #[track_caller]
    fn check_time(v: Value, expected: Result<Option<i64>, &str>) {
        let claims = json!({"exp": v});
        let Value::Object(claims) = claims else { unreachable!() };
        let got =
            time_claim(&claims, "exp", "not an integer").map(|t| t.map(|t| t.unix_timestamp()));
        assert_eq!(got, expected.map_err(|m| JwtError::Invalid(m.to_owned())));
    }

    #[test]
    fn numeric_dates_as_pyjwt_reads_them() {
        check_time(json!(null), Ok(None));
        check_time(json!(1795685227), Ok(Some(1795685227)));
        check_time(json!(1795685227.9), Ok(Some(1795685227)));
        check_time(json!(-5), Ok(Some(-5)));
        check_time(json!("1795685227"), Err("not an integer"));
        check_time(json!(true), Err("not an integer"));
        check_time(json!(1e300), Err("not an integer"));
        check_time(json!(u64::MAX), Err("not an integer"));
        check_time(json!(i64::MAX), Err("Claim (exp) is out of range"));
    }

    #[test]
    fn list_and_string_claims() {
        let Value::Object(c) = json!({"r": ["a"], "n": null, "bad": [1], "s": "x", "i": 1}) else {
            unreachable!()
        };
        assert_eq!(str_list(&c, "r"), Ok(vec!["a".to_owned()]));
        assert_eq!(str_list(&c, "n"), Ok(vec![]));
        assert_eq!(str_list(&c, "absent"), Ok(vec![]));
        assert_eq!(str_list(&c, "bad"), Err("Claim `bad` must be a list of strings".to_owned()));
        assert_eq!(opt_str(&c, "s"), Ok(Some("x")));
        assert_eq!(opt_str(&c, "i"), Err("Claim `i` must be a string".to_owned()));
        assert_eq!(req_str(&c, "n"), Err("Token is missing the \"n\" claim".to_owned()));
    }
}
