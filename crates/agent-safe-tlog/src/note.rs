//! C2SP `signed-note` (Ed25519 keys, type `0x01`) and C2SP `tlog-checkpoint`: the formats Go's
//! checksum database, Sigstore and the CT static logs exchange, so their tools and witnesses
//! can read agent-safe's checkpoints.
//!
//! Keys use the Go `note` text forms: a verifier key `<name>+<key ID, 8 hex>+<base64(0x01 ‖
//! public key)>`, a signer key `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>`; the key
//! ID is the first four bytes of SHA-256(`name` ‖ `\n` ‖ `0x01` ‖ public key).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::hash::Hash;

/// The signature type of Ed25519 keys.
const ED25519_TYPE: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";
/// Notes with more signatures are refused (as Go's `note.Open` does).
const MAX_SIGNATURES: usize = 100;

/// Why a key, a note or a checkpoint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key that is not in the expected form.
    #[error("not a {kind} key: {reason}")]
    BadKey {
        /// `signer` or `verifier`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A note that is not in the signed-note format.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// The note has no signature by the key asked for.
    #[error("the note is not signed by {key}")]
    NotSigned {
        /// The verifier key's name and ID.
        key: String,
    },
    /// A signature by the key asked for does not verify.
    #[error(
        "the signature by {key} does not verify (the note was changed, or signed by another key of that name)"
    )]
    BadSignature {
        /// The verifier key's name and ID.
        key: String,
    },
    /// The text to sign is not note text.
    #[error("cannot sign: {0}")]
    BadText(String),
    /// A checkpoint body that is not in the tlog-checkpoint format.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(String),
    /// No randomness for a new key.
    #[error("cannot generate a key: no system randomness")]
    Random,
}

/// The key ID of a key of signature type `kind` (`0x01` note keys, `0x04` cosigner keys).
pub(crate) fn key_id(name: &str, kind: u8, public: &[u8]) -> u32 {
    let mut ctx = Context::new(&SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[kind]);
    ctx.update(public);
    let d = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(&d.as_ref()[..4]);
    u32::from_be_bytes(id)
}

/// A key name: non-empty, no Unicode white space, no `+`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the key name is empty".to_owned());
    }
    if name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(format!("the key name `{name}` contains white space or `+`"));
    }
    Ok(())
}

/// `<name>+<id>+<base64>` split and checked; the decoded key material after its type byte,
/// which must be `key_type`.
pub(crate) fn split_key(
    text: &str,
    kind: &'static str,
    key_type: u8,
) -> Result<(String, u32, Vec<u8>), NoteError> {
    let bad = |reason: &str| NoteError::BadKey { kind, reason: reason.to_owned() };
    let mut parts = text.trim_end_matches('\n').splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected NAME+KEYID+KEY"));
    };
    check_name(name).map_err(|r| bad(&r))?;
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(bad("the key ID is not 8 lowercase hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| bad("the key ID is not hex"))?;
    let bytes = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
    match bytes.split_first() {
        Some((t, rest)) if *t == key_type && rest.len() == 32 => {
            Ok((name.to_owned(), id, rest.to_vec()))
        }
        Some((t, _)) if *t == key_type => Err(bad("an Ed25519 key has 32 bytes")),
        _ => Err(bad(&format!("not an Ed25519 key of type 0x{key_type:02x}"))),
    }
}

/// A verifier (public) key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    public: [u8; 32],
}

impl VerifierKey {
    /// Parses `<name>+<key ID>+<base64(0x01 ‖ public key)>`; the key ID must match.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let (name, id, public) = split_key(text.trim(), "verifier", ED25519_TYPE)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&public);
        if key_id(&name, ED25519_TYPE, &key) != id {
            return Err(NoteError::BadKey {
                kind: "verifier",
                reason: "the key ID does not match the name and key".to_owned(),
            });
        }
        Ok(VerifierKey { name, id, public: key })
    }

    /// The key's name (a checkpoint's origin, for a log's key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key ID>`, as messages name the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    fn verifies(&self, text: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public).verify(text, signature).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = vec![ED25519_TYPE];
        bytes.extend_from_slice(&self.public);
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(bytes))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// A signer (private) key. Its `Debug` shows the name and key ID only; the secret leaves it
/// only through [`SignerKey::secret_text`].
pub struct SignerKey {
    verifier: VerifierKey,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({})", self.verifier.label())
    }
}

impl SignerKey {
    fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, NoteError> {
        check_name(name).map_err(|reason| NoteError::BadKey { kind: "signer", reason })?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| NoteError::BadKey {
            kind: "signer",
            reason: "not an Ed25519 seed".to_owned(),
        })?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        let verifier =
            VerifierKey { name: name.to_owned(), id: key_id(name, ED25519_TYPE, &public), public };
        Ok(SignerKey { verifier, seed, pair })
    }

    /// A new key named `name` (for a log, its origin: for example `audit.example.com/prod`).
    pub fn generate(name: &str) -> Result<SignerKey, NoteError> {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| NoteError::Random)?;
        Self::from_seed(name, seed)
    }

    /// Parses `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>`; the key ID must match.
    pub fn parse(text: &str) -> Result<SignerKey, NoteError> {
        let bad = |reason: &str| NoteError::BadKey { kind: "signer", reason: reason.to_owned() };
        let Some(rest) = text.trim().strip_prefix("PRIVATE+KEY+") else {
            return Err(bad("expected PRIVATE+KEY+NAME+KEYID+KEY"));
        };
        let (name, id, seed) = split_key(rest, "signer", ED25519_TYPE)?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&seed);
        let key = Self::from_seed(&name, bytes)?;
        if key.verifier.id != id {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(key)
    }

    /// The private key's text (for the key file; never log it).
    pub fn secret_text(&self) -> String {
        let mut bytes = vec![ED25519_TYPE];
        bytes.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.verifier.name,
            self.verifier.id,
            STANDARD.encode(bytes)
        )
    }

    /// The matching verifier key (what auditors get).
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs `text` (lines ending in `\n`, no blank line, no control characters): the note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text).map_err(NoteError::BadText)?;
        let signature = self.pair.sign(text.as_bytes());
        let mut blob = self.verifier.id.to_be_bytes().to_vec();
        blob.extend_from_slice(signature.as_ref());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.verifier.name, STANDARD.encode(blob)))
    }
}

/// Note text: non-empty UTF-8 lines, each ending in `\n`, none empty, no control characters.
fn check_text(text: &str) -> Result<(), String> {
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".to_owned());
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err("the text has an empty line".to_owned());
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("the text has a control character".to_owned());
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub id: u32,
    /// The signature (for Ed25519, 64 bytes).
    pub signature: Vec<u8>,
}

/// A signed note, parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text (each line ending in `\n`).
    pub text: String,
    /// Its signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note (the text, a blank line, one or more signature lines).
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_owned());
        let Some(split) = note.rfind("\n\n") else {
            return Err(bad("no blank line before the signatures"));
        };
        let text = &note[..=split];
        check_text(text).map_err(NoteError::Malformed)?;
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(bad("the last signature line does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(bad("a signature line does not start with an em dash and a space"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(bad("a signature line has no signature"));
            };
            check_name(name).map_err(NoteError::Malformed)?;
            let blob = STANDARD.decode(blob).map_err(|_| bad("a signature is not base64"))?;
            if blob.len() < 5 {
                return Err(bad("a signature is shorter than its key ID"));
            }
            let mut id = [0u8; 4];
            id.copy_from_slice(&blob[..4]);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes(id),
                signature: blob[4..].to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("more than 100 signatures"));
            }
        }
        if signatures.is_empty() {
            return Err(bad("no signature"));
        }
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// Verifies the signature(s) by `key` (other keys' signatures are ignored): the text when
    /// every signature by `key` verifies and there is at least one.
    pub fn verify(&self, key: &VerifierKey) -> Result<&str, NoteError> {
        let mine: Vec<&NoteSignature> =
            self.signatures.iter().filter(|s| s.name == key.name && s.id == key.id).collect();
        if mine.is_empty() {
            return Err(NoteError::NotSigned { key: key.label() });
        }
        if mine.iter().all(|s| key.verifies(self.text.as_bytes(), &s.signature)) {
            Ok(&self.text)
        } else {
            Err(NoteError::BadSignature { key: key.label() })
        }
    }
}

/// A C2SP `tlog-checkpoint`: the log's origin, tree size and root hash (and optional
/// extension lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (the signing key's name).
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root.
    pub root: Hash,
    /// Extension lines, in order (without newlines).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n` and the extension lines.
    pub fn body(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        for line in &self.extensions {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint body (a note's verified text).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |m: &str| NoteError::BadCheckpoint(m.to_owned());
        if !text.ends_with('\n') {
            return Err(bad("the body does not end with a newline"));
        }
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("no origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("the tree size is not a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("the tree size is too large"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root = STANDARD.decode(root).map_err(|_| bad("the root hash is not base64"))?;
        let root: [u8; 32] = root.try_into().map_err(|_| bad("the root hash is not 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root: Hash(root), extensions })
    }

    /// Signs the checkpoint with `key` (whose name must be the origin): the signed note.
    pub fn sign(&self, key: &SignerKey) -> Result<String, NoteError> {
        if key.verifier.name != self.origin {
            return Err(NoteError::BadText(format!(
                "the key is named `{}`, the checkpoint's origin is `{}`",
                key.verifier.name, self.origin
            )));
        }
        key.sign(&self.body())
    }

    /// Opens a signed checkpoint: the note verified with `key`, its body parsed, its origin
    /// the key's name.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
        let parsed = Note::parse(note)?;
        let checkpoint = Checkpoint::parse(parsed.verify(key)?)?;
        if checkpoint.origin != key.name {
            return Err(NoteError::BadCheckpoint(format!(
                "the origin is `{}`, the key is named `{}`",
                checkpoint.origin, key.name
            )));
        }
        Ok(checkpoint)
    }
}
