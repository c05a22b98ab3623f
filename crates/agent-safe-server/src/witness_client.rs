//! The log's side of C2SP `tlog-witness`: asks a witness to cosign a checkpoint
//! (`POST <url>/add-checkpoint` with the consistency proof from the size it cosigned last),
//! learning that size from a 409 when it does not know it, and checks the cosignature it gets
//! back with the witness's configured key before keeping it.

use agent_safe_tlog::{Checkpoint, CosignerKey, Hash, add_checkpoint_request, add_cosignatures};

/// How long one request to a witness may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// At most this much of a witness's error answer goes into a message.
const MAX_ANSWER: usize = 200;

/// One configured witness.
#[derive(Debug)]
pub(crate) struct WitnessTarget {
    /// The submission prefix.
    pub(crate) url: String,
    pub(crate) key: CosignerKey,
    /// The size of the newest checkpoint it cosigned for this log, as far as we know.
    pub(crate) known: Option<u64>,
}

impl WitnessTarget {
    /// Checks a configured witness: an http(s) URL and a cosigner key.
    pub(crate) fn new(url: &str, public_key: &str) -> Result<WitnessTarget, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("witness url `{url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("witness url `{url}` is not an http:// or https:// URL"));
        }
        let key = CosignerKey::parse(public_key)
            .map_err(|e| format!("the public key of witness `{url}`: {e}"))?;
        Ok(WitnessTarget { url: url.trim_end_matches('/').to_owned(), key, known: None })
    }

    /// Asks the witness to cosign `checkpoint` (signed as `note`); `proof_from(old)` is the
    /// consistency proof from `old` leaves to the checkpoint's. The note with the witness's
    /// cosignature(s) added.
    pub(crate) async fn cosign(
        &mut self,
        client: &reqwest::Client,
        checkpoint: &Checkpoint,
        note: &str,
        proof_from: impl Fn(u64) -> Result<Vec<Hash>, String>,
    ) -> Result<String, String> {
        let name = self.key.label();
        let mut old = self.known.unwrap_or(0);
        // At most twice: once with what we knew, once with the size a 409 told us.
        for _ in 0..2 {
            if old > checkpoint.size {
                return Err(format!(
                    "witness {name} cosigned a tree of {old} entries, larger than this log's {}: \
                     the log was cut short under a checkpoint it cosigned",
                    checkpoint.size
                ));
            }
            let proof =
                if old == 0 || old == checkpoint.size { Vec::new() } else { proof_from(old)? };
            let body = add_checkpoint_request(old, &proof, note);
            let response = client
                .post(format!("{}/add-checkpoint", self.url))
                .timeout(TIMEOUT)
                .body(body)
                .send()
                .await
                .map_err(|e| format!("witness {name} at {}: {e}", self.url))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| format!("witness {name}: reading its answer: {e}"))?;
            match status.as_u16() {
                200 => {
                    let cosigned = add_cosignatures(note, &text, &self.key).map_err(|e| {
                        format!("witness {name} answered no valid cosignature: {e}")
                    })?;
                    self.known = Some(checkpoint.size);
                    return Ok(cosigned);
                }
                409 => {
                    let size = text.trim_end_matches('\n').parse::<u64>().map_err(|_| {
                        format!("witness {name} answered 409 without a tree size: {}", short(&text))
                    })?;
                    if size == old {
                        return Err(format!(
                            "witness {name} cosigned another tree of {size} entries: the log \
                             forked (refused as inconsistent)"
                        ));
                    }
                    self.known = Some(size);
                    old = size;
                }
                code => {
                    return Err(format!(
                        "witness {name} refused the checkpoint of size {} ({code}): {}",
                        checkpoint.size,
                        short(&text)
                    ));
                }
            }
        }
        Err(format!("witness {name} kept answering 409 (its tree size keeps changing)"))
    }
}

/// The start of a witness's answer, on one line.
fn short(text: &str) -> String {
    let line: String = text.trim().chars().take(MAX_ANSWER).collect();
    line.replace('\n', " ")
}
