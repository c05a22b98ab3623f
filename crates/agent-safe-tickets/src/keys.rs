//! Signing and verifying keys (HS256 shared secrets, Ed25519 key pairs) and key sets for rotation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use agent_safe_core::hex;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// Minimum length of an HS256 secret, in bytes (the HMAC-SHA256 output size, RFC 7518 §3.2).
pub const MIN_HS256_KEY_BYTES: usize = 32;

/// Longest accepted key id.
const MAX_KID_LEN: usize = 128;

/// PKCS#8 v1 (RFC 8410) prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be built, read, written or added to a key set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is empty.
    #[error("signing key must not be empty")]
    Empty,
    /// An HS256 secret shorter than [`MIN_HS256_KEY_BYTES`].
    #[error(
        "HS256 signing key is {len} bytes long; at least {MIN_HS256_KEY_BYTES} bytes are required"
    )]
    TooShort {
        /// The length of the refused secret.
        len: usize,
    },
    /// Bytes that are not an Ed25519 PKCS#8 private key or a 32-byte public key.
    #[error("invalid Ed25519 key: {0}")]
    InvalidEd25519(String),
    /// A key id that is empty, too long, or contains whitespace or control characters.
    #[error(
        "invalid key id `{0}`: expected 1 to {MAX_KID_LEN} printable ASCII characters without spaces"
    )]
    InvalidKid(String),
    /// Two keys of a key set share a key id.
    #[error("duplicate key id `{0}` in key set")]
    DuplicateKid(String),
    /// A key added to a key set beside the default key has no key id.
    #[error("a key added to a key set needs a key id (`with_kid`)")]
    MissingKid,
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file or directory.
        path: String,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A key file whose content is not in one of the documented formats.
    #[error("{path}: {detail}")]
    Format {
        /// The key file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// `write_key_files` found a file already in place.
    #[error("{path}: refusing to overwrite an existing key file")]
    Exists {
        /// The existing file.
        path: String,
    },
}

/// A signature algorithm, as named in the JWT `alg` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// HMAC-SHA256 with a shared secret (`HS256`); what the Python version uses.
    Hs256,
    /// Ed25519 signatures (`EdDSA`): only the holder of the private key can mint.
    Ed25519,
}

impl KeyAlgorithm {
    /// The JWT `alg` header value: `HS256` or `EdDSA`.
    pub fn jwt_name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Ed25519 => "EdDSA",
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::Ed25519 => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwt_name())
    }
}

/// Bytes that must not be printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(agent_safe_core::REDACTED)
    }
}

#[derive(Clone)]
enum SigningInner {
    Hs256 { secret: Secret },
    Ed25519 { pkcs8: Secret, public: [u8; 32], pair: Arc<Ed25519KeyPair> },
}

/// A key that signs tokens: an HS256 secret or an Ed25519 private key, with an optional key id
/// (`kid` header) for rotation.
///
/// `Debug` never shows key material:
///
/// ```
/// # use agent_safe_tickets::SigningKey;
/// let key = SigningKey::hs256_from_str("correct-horse-battery-staple-0123456789").unwrap();
/// assert_eq!(format!("{key:?}"), "SigningKey { algorithm: HS256, kid: None, key: [redacted] }");
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: SigningInner,
    encoding: EncodingKey,
    kid: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &format_args!("{}", self.algorithm()))
            .field("kid", &self.kid)
            .field("key", &Secret(Vec::new()))
            .finish()
    }
}

impl SigningKey {
    /// An HS256 key from raw secret bytes. Refuses an empty secret and one shorter than
    /// [`MIN_HS256_KEY_BYTES`] (the Python version accepted any non-empty key).
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let secret = secret.into();
        check_hs256(&secret)?;
        let encoding = EncodingKey::from_secret(&secret);
        Ok(Self { inner: SigningInner::Hs256 { secret: Secret(secret) }, encoding, kid: None })
    }

    /// For Python interop and the `--signing-key` CLI flag: the UTF-8 bytes of the string are the
    /// HMAC secret, exactly as PyJWT uses a `str` key.
    pub fn hs256_from_str(s: &str) -> Result<Self, KeyError> {
        Self::hs256(s.as_bytes().to_vec())
    }

    /// A fresh random 32-byte HS256 secret.
    pub fn generate_hs256() -> Self {
        let secret = agent_safe_core::random::bytes::<32>().to_vec();
        let encoding = EncodingKey::from_secret(&secret);
        Self { inner: SigningInner::Hs256 { secret: Secret(secret) }, encoding, kid: None }
    }

    /// A fresh Ed25519 key pair (seed from the operating system's generator).
    pub fn generate_ed25519() -> Result<(Self, VerifyingKey), KeyError> {
        let seed = agent_safe_core::random::bytes::<32>();
        let mut pkcs8 = Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + seed.len());
        pkcs8.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
        pkcs8.extend_from_slice(&seed);
        let key = Self::ed25519_from_pkcs8(pkcs8)?;
        let public = key.verifying_key();
        Ok((key, public))
    }

    /// An Ed25519 key from a PKCS#8 (v1 or v2) DER private key.
    pub fn ed25519_from_pkcs8(pkcs8: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let pkcs8 = pkcs8.into();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|e| {
            KeyError::InvalidEd25519(format!("not a PKCS#8 Ed25519 private key ({e})"))
        })?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        let encoding = EncodingKey::from_ed_der(&pkcs8);
        Ok(Self {
            inner: SigningInner::Ed25519 { pkcs8: Secret(pkcs8), public, pair: Arc::new(pair) },
            encoding,
            kid: None,
        })
    }

    /// The key that verifies this key's signatures (for HS256 the same secret), with the same kid.
    pub fn verifying_key(&self) -> VerifyingKey {
        let key = match &self.inner {
            SigningInner::Hs256 { secret } => VerifyingKey::from_hs256_unchecked(secret.clone()),
            SigningInner::Ed25519 { public, .. } => VerifyingKey::from_ed25519(*public),
        };
        VerifyingKey { kid: self.kid.clone(), ..key }
    }

    /// Sets the key id written into the `kid` header of every token this key signs. Key files
    /// can only hold key ids of 1 to 128 printable ASCII characters without spaces.
    pub fn with_kid(self, kid: impl Into<String>) -> Self {
        Self { kid: Some(kid.into()), ..self }
    }

    /// The key id, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            SigningInner::Hs256 { .. } => KeyAlgorithm::Hs256,
            SigningInner::Ed25519 { .. } => KeyAlgorithm::Ed25519,
        }
    }

    /// A 32-byte secret derived from this key for another purpose: HMAC-SHA256 keyed with the
    /// key material (the HS256 secret, or the Ed25519 PKCS#8 document) over `context`. Every
    /// process holding the same key derives the same secret; neither the key nor another
    /// context's secret can be computed from it. The runner uses it to key digests of
    /// sensitive state values in the audit log.
    pub fn derive_secret(&self, context: &str) -> agent_safe_core::Secret<[u8; 32]> {
        let material = match &self.inner {
            SigningInner::Hs256 { secret } => secret.expose(),
            SigningInner::Ed25519 { pkcs8, .. } => pkcs8.expose(),
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, material);
        let tag = ring::hmac::sign(&key, context.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        agent_safe_core::Secret::new(out)
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The parsed Ed25519 key pair, kept so signing does not re-parse the PKCS#8 document.
    pub(crate) fn ed25519_pair(&self) -> Option<&Ed25519KeyPair> {
        match &self.inner {
            SigningInner::Ed25519 { pair, .. } => Some(pair),
            SigningInner::Hs256 { .. } => None,
        }
    }

    /// The key-file line (see `docs/tickets.md`); secret material, never logged.
    pub(crate) fn to_key_file_line(&self) -> String {
        use base64::Engine as _;
        let mut line = match &self.inner {
            SigningInner::Hs256 { secret } => {
                format!("agent-safe-hs256:{}", hex::encode(secret.expose()))
            }
            SigningInner::Ed25519 { pkcs8, .. } => format!(
                "agent-safe-ed25519-private:{}",
                base64::engine::general_purpose::STANDARD.encode(pkcs8.expose())
            ),
        };
        if let Some(kid) = &self.kid {
            line.push_str(" kid=");
            line.push_str(kid);
        }
        line.push('\n');
        line
    }
}

#[derive(Clone, PartialEq, Eq)]
enum VerifyingInner {
    Hs256 { secret: Secret },
    Ed25519 { public: [u8; 32] },
}

/// A key that verifies signatures: an HS256 secret (which can also sign, so keep it as secret as
/// the signing key) or an Ed25519 public key. The algorithm is pinned by the key: an HS256 key
/// accepts only `HS256` tokens, an Ed25519 key only `EdDSA` tokens.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: VerifyingInner,
    decoding: DecodingKey,
    kid: Option<String>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("VerifyingKey");
        s.field("algorithm", &format_args!("{}", self.algorithm())).field("kid", &self.kid);
        match &self.inner {
            VerifyingInner::Hs256 { secret } => s.field("key", secret),
            VerifyingInner::Ed25519 { public } => s.field("key", &hex::encode(public)),
        };
        s.finish()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.kid == other.kid
    }
}

impl VerifyingKey {
    /// An HS256 verifying key (the shared secret); the same length rules as [`SigningKey::hs256`].
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let secret = secret.into();
        check_hs256(&secret)?;
        Ok(Self::from_hs256_unchecked(Secret(secret)))
    }

    /// An Ed25519 verifying key from the 32 raw public-key bytes.
    pub fn ed25519(public: &[u8]) -> Result<Self, KeyError> {
        let public: [u8; 32] = public.try_into().map_err(|_| {
            KeyError::InvalidEd25519(format!("public key is {} bytes, expected 32", public.len()))
        })?;
        Ok(Self::from_ed25519(public))
    }

    fn from_hs256_unchecked(secret: Secret) -> Self {
        let decoding = DecodingKey::from_secret(secret.expose());
        Self { inner: VerifyingInner::Hs256 { secret }, decoding, kid: None }
    }

    fn from_ed25519(public: [u8; 32]) -> Self {
        let decoding = DecodingKey::from_ed_der(&public);
        Self { inner: VerifyingInner::Ed25519 { public }, decoding, kid: None }
    }

    /// Sets the key id this key answers to (a token's `kid` header selects it in a [`KeySet`]).
    pub fn with_kid(self, kid: impl Into<String>) -> Self {
        Self { kid: Some(kid.into()), ..self }
    }

    /// The key id, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The only algorithm this key accepts.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            VerifyingInner::Hs256 { .. } => KeyAlgorithm::Hs256,
            VerifyingInner::Ed25519 { .. } => KeyAlgorithm::Ed25519,
        }
    }

    /// The raw Ed25519 public key, or `None` for an HS256 secret.
    pub fn ed25519_public_bytes(&self) -> Option<&[u8; 32]> {
        match &self.inner {
            VerifyingInner::Ed25519 { public } => Some(public),
            VerifyingInner::Hs256 { .. } => None,
        }
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public key-file line, or `None` for an HS256 secret (which has no public form).
    pub(crate) fn to_public_key_file_line(&self) -> Option<String> {
        use base64::Engine as _;
        let VerifyingInner::Ed25519 { public } = &self.inner else { return None };
        let mut line = format!(
            "agent-safe-ed25519-public:{}",
            base64::engine::general_purpose::STANDARD.encode(public)
        );
        if let Some(kid) = &self.kid {
            line.push_str(" kid=");
            line.push_str(kid);
        }
        line.push('\n');
        Some(line)
    }
}

/// The keys a verifier accepts, for rotation: a token whose header has a `kid` is verified with
/// the key of that id (an unknown kid is rejected); a token without `kid` (every Python-minted
/// token) is verified with the default key.
#[derive(Debug, Clone)]
pub struct KeySet {
    default: VerifyingKey,
    by_kid: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// A set with one key, used for tokens without `kid` (and for its own kid, if it has one).
    pub fn new(default: VerifyingKey) -> Self {
        let mut by_kid = HashMap::new();
        if let Some(kid) = default.kid() {
            by_kid.insert(kid.to_owned(), default.clone());
        }
        Self { default, by_kid }
    }

    /// Adds a key selected by its kid (e.g. the previous or the next key during a rotation).
    pub fn with_key(mut self, key: VerifyingKey) -> Result<Self, KeyError> {
        let Some(kid) = key.kid().map(str::to_owned) else { return Err(KeyError::MissingKid) };
        if self.by_kid.contains_key(&kid) {
            return Err(KeyError::DuplicateKid(kid));
        }
        self.by_kid.insert(kid, key);
        Ok(self)
    }

    /// The key for a token with header `kid`.
    pub fn get(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            None => Some(&self.default),
            Some(kid) => self.by_kid.get(kid),
        }
    }

    /// The key used for tokens without `kid`.
    pub fn default_key(&self) -> &VerifyingKey {
        &self.default
    }
}

impl From<VerifyingKey> for KeySet {
    fn from(key: VerifyingKey) -> Self {
        Self::new(key)
    }
}

impl From<&SigningKey> for KeySet {
    fn from(key: &SigningKey) -> Self {
        Self::new(key.verifying_key())
    }
}

fn check_hs256(secret: &[u8]) -> Result<(), KeyError> {
    if secret.is_empty() {
        return Err(KeyError::Empty);
    }
    if secret.len() < MIN_HS256_KEY_BYTES {
        return Err(KeyError::TooShort { len: secret.len() });
    }
    Ok(())
}

pub(crate) fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok =
        !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(KeyError::InvalidKid(kid.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";

    #[test]
    fn derived_secrets_depend_on_key_and_context() {
        let a = SigningKey::hs256_from_str(KEY).unwrap();
        let b = SigningKey::hs256_from_str("another-key-0123456789abcdef0123456789").unwrap();
        let (ed, _) = SigningKey::generate_ed25519().unwrap();
        let x = a.derive_secret("agent-safe state v1");
        assert_eq!(
            x.expose(),
            a.clone().with_kid("k1").derive_secret("agent-safe state v1").expose()
        );
        assert_ne!(x.expose(), a.derive_secret("other").expose());
        assert_ne!(x.expose(), b.derive_secret("agent-safe state v1").expose());
        assert_ne!(x.expose(), ed.derive_secret("agent-safe state v1").expose());
        // HMAC-SHA256(key, context): RFC 4231 test case 6.
        let rfc = SigningKey::hs256(vec![0xaa; 131]).unwrap();
        let tag = rfc.derive_secret("Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(tag.expose()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(format!("{x:?}"), "[redacted]");
    }

    #[track_caller]
    fn check_hs256_len(len: usize, expected: Result<(), &str>) {
        let got = SigningKey::hs256(vec![b'k'; len]).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "len {len}");
    }

    #[test]
    fn hs256_length_rules() {
        check_hs256_len(0, Err("signing key must not be empty"));
        check_hs256_len(
            31,
            Err("HS256 signing key is 31 bytes long; at least 32 bytes are required"),
        );
        check_hs256_len(32, Ok(()));
        check_hs256_len(4096, Ok(()));
        assert!(SigningKey::hs256_from_str(KEY).is_ok(), "the 46-byte fixture key is accepted");
        assert!(matches!(
            VerifyingKey::hs256(b"short".to_vec()),
            Err(KeyError::TooShort { len: 5 })
        ));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = SigningKey::hs256_from_str(KEY).unwrap().with_kid("k1");
        let printed = format!("{key:?} {:?}", key.verifying_key());
        assert!(!printed.contains("interop"), "{printed}");
        assert!(!printed.contains(&hex::encode(KEY.as_bytes())), "{printed}");
        assert_eq!(
            printed,
            "SigningKey { algorithm: HS256, kid: Some(\"k1\"), key: [redacted] } \
             VerifyingKey { algorithm: HS256, kid: Some(\"k1\"), key: [redacted] }"
        );
        let (ed, public) = SigningKey::generate_ed25519().unwrap();
        let printed = format!("{ed:?}");
        assert_eq!(printed, "SigningKey { algorithm: EdDSA, kid: None, key: [redacted] }");
        // A public key is not secret and is shown, so operators can compare keys.
        let public_hex = hex::encode(public.ed25519_public_bytes().unwrap());
        assert!(format!("{public:?}").contains(&public_hex));
    }

    #[test]
    fn ed25519_keys() {
        let (a, a_pub) = SigningKey::generate_ed25519().unwrap();
        let (b, b_pub) = SigningKey::generate_ed25519().unwrap();
        assert_eq!(a.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(a.verifying_key(), a_pub);
        assert_ne!(a_pub, b_pub);
        assert_ne!(b.verifying_key(), a_pub);
        assert!(matches!(
            SigningKey::ed25519_from_pkcs8(vec![1, 2, 3]),
            Err(KeyError::InvalidEd25519(_))
        ));
        assert_eq!(
            VerifyingKey::ed25519(&[0u8; 31]).unwrap_err().to_string(),
            "invalid Ed25519 key: public key is 31 bytes, expected 32"
        );
    }

    #[test]
    fn key_ids_for_key_files() {
        assert_eq!(SigningKey::generate_hs256().with_kid("2026-11").kid(), Some("2026-11"));
        for good in ["2026-11", "k", "ed25519/prod#2", &"k".repeat(128)] {
            assert!(check_kid(good).is_ok(), "{good:?}");
        }
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(129)] {
            assert!(matches!(check_kid(bad), Err(KeyError::InvalidKid(_))), "{bad:?}");
        }
    }

    #[test]
    fn key_set_selects_by_kid() {
        let old = SigningKey::generate_hs256().with_kid("old");
        let new = SigningKey::generate_hs256().with_kid("new");
        let plain = SigningKey::generate_hs256();
        let set = KeySet::new(plain.verifying_key())
            .with_key(old.verifying_key())
            .unwrap()
            .with_key(new.verifying_key())
            .unwrap();
        assert_eq!(set.get(None), Some(&plain.verifying_key()));
        assert_eq!(set.get(Some("old")), Some(&old.verifying_key()));
        assert_eq!(set.get(Some("new")), Some(&new.verifying_key()));
        assert_eq!(set.get(Some("other")), None);
        assert_eq!(
            set.clone().with_key(old.verifying_key()).unwrap_err().to_string(),
            "duplicate key id `old` in key set"
        );
        assert!(matches!(set.with_key(plain.verifying_key()), Err(KeyError::MissingKid)));
        // A default key with a kid answers to that kid too.
        let set = KeySet::new(new.verifying_key());
        assert_eq!(set.get(Some("new")), Some(&new.verifying_key()));
    }
}
