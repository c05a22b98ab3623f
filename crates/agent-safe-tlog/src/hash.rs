//! The tree's hashes (RFC 9162 §2.1.1): SHA-256 with a one-byte domain separation between
//! leaves (`0x00`) and interior nodes (`0x01`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{Context, SHA256, digest};

/// A SHA-256 hash: a leaf's, an interior node's or a tree's root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The root of the empty tree: SHA-256 of no bytes.
    pub fn empty() -> Hash {
        Hash::from_digest(digest(&SHA256, b""))
    }

    fn from_digest(d: ring::digest::Digest) -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Hash(out)
    }

    /// Standard base64 with padding (the form of checkpoints, proofs and the witness
    /// protocol).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// From standard base64 of exactly 32 bytes; `None` for anything else.
    pub fn from_base64(text: &str) -> Option<Hash> {
        STANDARD.decode(text).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()).map(Hash)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        agent_safe_core::hex::encode(&self.0)
    }

    /// From 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            out[i] = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The hash of a leaf: SHA-256(`0x00` ‖ `data`). For the audit log, `data` is an entry's line
/// exactly as stored, without its newline.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    Hash::from_digest(ctx.finish())
}

/// The hash of an interior node: SHA-256(`0x01` ‖ `left` ‖ `right`).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(&left.0);
    ctx.update(&right.0);
    Hash::from_digest(ctx.finish())
}
