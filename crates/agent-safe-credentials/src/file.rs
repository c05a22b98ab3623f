//! The file vault: one private JSON file per credential type in a directory.
//!
//! Format: `<dir>/<type>.json` holds the payload, a JSON object such as
//! `{"token": "…"}` or `{"kubeconfig": "…"}`. On Unix the file must not be accessible by group
//! or others (mode `0600` or stricter); anything else is refused with a `chmod` hint. Files
//! are read on every request, so a rotated credential is picked up without a restart.

use std::fmt;
use std::fs::File;
use std::future::ready;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::{BoxFuture, Clock, Credential, CredentialScope, ExecutionTicket, Params};
use serde_json::Value;

use crate::vault::{CredentialVault, Issued, VaultError, check_type};

/// The largest credential file read: 1 MiB.
pub const MAX_CREDENTIAL_FILE_BYTES: u64 = 1 << 20;

/// A vault reading `<dir>/<type>.json` (see the module documentation for the format).
///
/// ```no_run
/// use std::sync::Arc;
/// use agent_safe_core::SystemClock;
/// use agent_safe_credentials::FileVault;
///
/// // /etc/agent-safe/credentials/kubernetes.json, mode 0600: {"token": "…"}
/// let vault = FileVault::new("/etc/agent-safe/credentials", Arc::new(SystemClock));
/// assert!(vault.path_for("kubernetes").ends_with("kubernetes.json"));
/// ```
pub struct FileVault {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    issued: Issued,
}

impl FileVault {
    /// A vault over the files in `dir`. Nothing is read until a credential is requested.
    pub fn new(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self { dir: dir.into(), clock, issued: Issued::default() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding credentials of type `kind`.
    pub fn path_for(&self, kind: &str) -> PathBuf {
        self.dir.join(format!("{kind}.json"))
    }

    /// How many issued credentials are tracked (issued, not revoked, not yet pruned).
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    /// Reads and checks the payload file of type `kind`.
    fn payload(&self, kind: &str) -> Result<Params, VaultError> {
        check_type(kind)?;
        let path = self.path_for(kind);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VaultError::FileNotFound { kind: kind.to_owned(), path });
            }
            Err(source) => return Err(VaultError::Io { path, action: "open", source }),
        };
        // Checked on the opened file, so a rename between check and read changes nothing.
        let meta = file.metadata().map_err(|source| VaultError::Io {
            path: path.clone(),
            action: "read",
            source,
        })?;
        if !meta.is_file() {
            return Err(VaultError::InvalidFile { path, detail: "not a regular file".to_owned() });
        }
        check_private(&path, &meta)?;
        let mut bytes = Vec::new();
        file.take(MAX_CREDENTIAL_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| VaultError::Io { path: path.clone(), action: "read", source })?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CREDENTIAL_FILE_BYTES {
            return Err(VaultError::InvalidFile {
                path,
                detail: format!("larger than {MAX_CREDENTIAL_FILE_BYTES} bytes"),
            });
        }
        // Parsed as a `Value` first: serde_json's syntax errors give a position, never the
        // content, while a typed parse would quote a mistyped value (which may be the secret).
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(payload)) => Ok(payload),
            Ok(other) => Err(VaultError::InvalidFile {
                path,
                detail: format!(
                    "expected a JSON object such as {{\"token\": \"…\"}}, found {}",
                    json_kind(&other)
                ),
            }),
            Err(e) => Err(VaultError::InvalidFile { path, detail: format!("invalid JSON: {e}") }),
        }
    }

    fn get(
        &self,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
        ttl: u64,
    ) -> Result<Credential, VaultError> {
        let payload = self.payload(&scope.kind)?;
        self.issued.issue(self.clock.as_ref(), scope, ticket, ttl, payload)
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses a file that group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(VaultError::InsecurePermissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Off Unix there are no mode bits to check; protect the directory with the platform's ACLs.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), VaultError> {
    Ok(())
}

impl fmt::Debug for FileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileVault")
            .field("dir", &self.dir)
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl CredentialVault for FileVault {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn get_credential<'a>(
        &'a self,
        scope: &'a CredentialScope,
        ticket: &'a ExecutionTicket,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(ready(self.get(scope, ticket, ttl)))
    }

    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        self.issued.revoke(credential_id);
        Box::pin(ready(Ok(())))
    }
}

#[cfg(test)]
mod tests;
