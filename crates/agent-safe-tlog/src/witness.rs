//! Witnesses: C2SP `tlog-cosignature` (Ed25519, `cosignature/v1`) and the C2SP `tlog-witness`
//! `add-checkpoint` exchange, without the network: the request body a log sends, the
//! cosignatures it gets back added to its checkpoint, and [`Witness`], a witness's side of the
//! exchange (the newest checkpoint it cosigned per log, refusing any that is not consistent
//! with it), which the tests run on loopback.
//!
//! A cosigner key is a vkey of type `0x04`: `<name>+<key ID>+<base64(0x04 ‖ public key)>`,
//! the key ID the first four bytes of SHA-256(`name` ‖ `\n` ‖ `0x04` ‖ public key). A
//! cosignature is a note signature whose bytes are the key ID, a big-endian u64 timestamp and
//! the Ed25519 signature of `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's
//! text.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::hash::Hash;
use crate::note::{
    Checkpoint, Note, NoteError, NoteSignature, SIG_PREFIX, VerifierKey, check_name, key_id,
    split_key,
};
use crate::proof::verify_consistency;

/// The signature type of Ed25519 cosigner keys.
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// The most consistency proof lines a request may carry.
const MAX_PROOF_LINES: usize = 63;

/// A witness's public key (a vkey of type `0x04`).
#[derive(Clone, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    id: u32,
    public: [u8; 32],
}

impl CosignerKey {
    /// Parses `<name>+<key ID>+<base64(0x04 ‖ public key)>`; the key ID must match.
    pub fn parse(text: &str) -> Result<CosignerKey, NoteError> {
        let (name, id, public) = split_key(text.trim(), "cosigner", COSIGNATURE_TYPE)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&public);
        if key_id(&name, COSIGNATURE_TYPE, &key) != id {
            return Err(NoteError::BadKey {
                kind: "cosigner",
                reason: "the key ID does not match the name and key".to_owned(),
            });
        }
        Ok(CosignerKey { name, id, public: key })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key ID>`, as messages name the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Whether `signature` is this key's (its name and key ID).
    fn is_mine(&self, signature: &NoteSignature) -> bool {
        signature.name == self.name && signature.id == self.id
    }

    /// The timestamp of `signature` when it is a valid cosignature by this key of the
    /// checkpoint text `text`.
    fn verify(&self, text: &str, signature: &NoteSignature) -> Option<u64> {
        let bytes = &signature.signature;
        if !self.is_mine(signature) || bytes.len() != 8 + 64 {
            return None;
        }
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&bytes[..8]);
        let timestamp = u64::from_be_bytes(stamp);
        if timestamp > i64::MAX as u64 {
            return None;
        }
        let message = cosigned_message(text, timestamp);
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(message.as_bytes(), &bytes[8..])
            .is_ok()
            .then_some(timestamp)
    }
}

impl fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = vec![COSIGNATURE_TYPE];
        bytes.extend_from_slice(&self.public);
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(bytes))
    }
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignerKey({self})")
    }
}

/// What a cosigner signs: `cosignature/v1`, the time, then the checkpoint's text.
fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A witness's signing key.
pub struct Cosigner {
    verifier: CosignerKey,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({})", self.verifier.label())
    }
}

impl Cosigner {
    /// A new cosigner key named `name`.
    pub fn generate(name: &str) -> Result<Cosigner, NoteError> {
        check_name(name).map_err(|reason| NoteError::BadKey { kind: "cosigner", reason })?;
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| NoteError::Random)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| NoteError::Random)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        let id = key_id(name, COSIGNATURE_TYPE, &public);
        Ok(Cosigner { verifier: CosignerKey { name: name.to_owned(), id, public }, pair })
    }

    /// The public key (what logs are configured with).
    pub fn verifier(&self) -> &CosignerKey {
        &self.verifier
    }

    /// The cosignature line (ending in `\n`) of the checkpoint text `text` at `timestamp`
    /// (seconds since the epoch).
    pub fn cosign(&self, text: &str, timestamp: u64) -> String {
        let signature = self.pair.sign(cosigned_message(text, timestamp).as_bytes());
        let mut blob = self.verifier.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(signature.as_ref());
        format!("{SIG_PREFIX}{} {}\n", self.verifier.name, STANDARD.encode(blob))
    }
}

/// The body of an `add-checkpoint` request: `old <size>`, the consistency proof from that
/// size (one base64 hash per line), an empty line, the signed checkpoint.
pub fn add_checkpoint_request(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&hash.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// An `add-checkpoint` request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the log believes the witness cosigned last (0: none).
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The signed checkpoint.
    pub note: String,
}

impl AddCheckpoint {
    /// Parses a request body.
    pub fn parse(body: &str) -> Result<AddCheckpoint, String> {
        let (head, note) = body.split_once("\n\n").ok_or("no empty line before the checkpoint")?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or("the first line is not `old <size>`")?;
        if old.is_empty()
            || !old.bytes().all(|b| b.is_ascii_digit())
            || (old.len() > 1 && old.starts_with('0'))
        {
            return Err("the old size is not a decimal number without leading zeros".to_owned());
        }
        let old: u64 = old.parse().map_err(|_| "the old size is too large")?;
        let proof = lines
            .map(|l| Hash::from_base64(l).ok_or_else(|| format!("`{l}` is not a base64 hash")))
            .collect::<Result<Vec<Hash>, String>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(format!("more than {MAX_PROOF_LINES} consistency proof lines"));
        }
        Ok(AddCheckpoint { old, proof, note: note.to_owned() })
    }
}

/// The signed checkpoint `note` with the cosignatures by `witness` from a witness's 200
/// response added (other lines are ignored, as the protocol asks); fails when the response
/// holds no valid cosignature by that key of this checkpoint.
pub fn add_cosignatures(
    note: &str,
    response: &str,
    witness: &CosignerKey,
) -> Result<String, NoteError> {
    let parsed = Note::parse(note)?;
    let mut out = note.to_owned();
    let mut added = 0;
    if !response.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the witness's answer does not end with a newline".to_owned(),
        ));
    }
    for line in response.lines() {
        // A line is parsed as the signature block of a one-line note.
        let Ok(sig) = Note::parse(&format!("x\n\n{line}\n")) else {
            return Err(NoteError::Malformed(format!(
                "the witness answered a line that is not a signature line: `{line}`"
            )));
        };
        let Some(signature) = sig.signatures.into_iter().next() else { continue };
        if !witness.is_mine(&signature) {
            continue;
        }
        if witness.verify(&parsed.text, &signature).is_none() {
            return Err(NoteError::BadSignature { key: witness.label() });
        }
        out.push_str(line);
        out.push('\n');
        added += 1;
    }
    if added == 0 {
        return Err(NoteError::NotSigned { key: witness.label() });
    }
    Ok(out)
}

/// The cosignatures by `witness` in the signed checkpoint `note`, verified: their timestamps.
pub fn cosignatures(note: &str, witness: &CosignerKey) -> Result<Vec<u64>, NoteError> {
    let parsed = Note::parse(note)?;
    let mut stamps = Vec::new();
    for signature in parsed.signatures.iter().filter(|s| witness.is_mine(s)) {
        stamps.push(
            witness
                .verify(&parsed.text, signature)
                .ok_or_else(|| NoteError::BadSignature { key: witness.label() })?,
        );
    }
    Ok(stamps)
}

/// A witness's answer to `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WitnessAnswer {
    /// 200: the cosignature line(s).
    Cosigned(String),
    /// 409 with `text/x.tlog.size`: the size of the newest checkpoint it cosigned (the
    /// request's old size is not it, or the root differs at that size).
    Conflict(u64),
    /// Another refusal: the HTTP status (400 malformed, 403 not signed by the log's key, 404
    /// unknown log, 422 the consistency proof does not verify) and why.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Why.
        reason: String,
    },
}

/// A witness for the logs it is configured with: the newest checkpoint it cosigned for each
/// (in memory), updated atomically with the checks, as the protocol requires.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: Mutex<HashMap<String, (VerifierKey, Option<Checkpoint>)>>,
}

impl Witness {
    /// A witness signing with `cosigner` for the logs whose keys are `logs` (a log's origin
    /// is its key's name).
    pub fn new(cosigner: Cosigner, logs: Vec<VerifierKey>) -> Witness {
        let logs = logs.into_iter().map(|k| (k.name().to_owned(), (k, None))).collect();
        Witness { cosigner, logs: Mutex::new(logs) }
    }

    /// The newest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Option<Checkpoint> {
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.get(origin).and_then(|(_, c)| c.clone())
    }

    /// Answers an `add-checkpoint` request body at `now` (seconds since the epoch).
    pub fn add_checkpoint(&self, body: &str, now: u64) -> WitnessAnswer {
        let refused = |status: u16, reason: String| WitnessAnswer::Refused { status, reason };
        let request = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(reason) => return refused(400, reason),
        };
        let note = match Note::parse(&request.note) {
            Ok(n) => n,
            Err(e) => return refused(400, e.to_string()),
        };
        let Some(origin) = note.text.lines().next() else {
            return refused(400, "an empty checkpoint".to_owned());
        };
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((key, latest)) = logs.get_mut(origin) else {
            return refused(404, format!("unknown log `{origin}`"));
        };
        let checkpoint = match note.verify(key).map(Checkpoint::parse) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return refused(400, e.to_string()),
            Err(e) => return refused(403, e.to_string()),
        };
        if request.old > checkpoint.size {
            return refused(400, "the old size is larger than the checkpoint's".to_owned());
        }
        let known = latest.as_ref().map_or(0, |c| c.size);
        if request.old != known {
            return WitnessAnswer::Conflict(known);
        }
        match latest {
            Some(previous)
                if previous.size == checkpoint.size && previous.root != checkpoint.root =>
            {
                return WitnessAnswer::Conflict(known);
            }
            Some(previous) if previous.size == checkpoint.size => {}
            Some(previous) => {
                if let Err(e) = verify_consistency(
                    previous.size,
                    checkpoint.size,
                    &request.proof,
                    &previous.root,
                    &checkpoint.root,
                ) {
                    return refused(422, format!("the consistency proof does not verify: {e}"));
                }
            }
            None if !request.proof.is_empty() => {
                return refused(400, "a proof from size 0 must be empty".to_owned());
            }
            None => {}
        }
        let line = self.cosigner.cosign(&note.text, now);
        *latest = Some(checkpoint);
        WitnessAnswer::Cosigned(line)
    }
}
