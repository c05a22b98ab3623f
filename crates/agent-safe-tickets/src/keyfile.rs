//! Key files: one line of text naming the key type, the key material and an optional key id.
//!
//! ```text
//! agent-safe-hs256:<hex secret>[ kid=<kid>]
//! agent-safe-ed25519-private:<base64 PKCS#8 DER>[ kid=<kid>]
//! agent-safe-ed25519-public:<base64 32-byte public key>[ kid=<kid>]
//! ```

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keys::{KeyError, SigningKey, VerifyingKey, check_kid};

const HS256: &str = "agent-safe-hs256:";
const ED_PRIVATE: &str = "agent-safe-ed25519-private:";
const ED_PUBLIC: &str = "agent-safe-ed25519-public:";

/// Key files larger than this are not key files.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// The files [`write_key_files`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// `<name>.key`, mode 0600: the signing key (for HS256 also the verifying key).
    pub private: PathBuf,
    /// `<name>.pub`, mode 0644: the Ed25519 public key; `None` for HS256, whose secret has no
    /// public form.
    pub public: Option<PathBuf>,
}

/// Reads a signing key file (`agent-safe-hs256:` or `agent-safe-ed25519-private:`).
///
/// File permissions are not checked on read (Kubernetes mounts secrets 0644 by default);
/// [`write_key_files`] creates private key files with mode 0600.
pub fn load_key_file(path: impl AsRef<Path>) -> Result<SigningKey, KeyError> {
    let path = path.as_ref();
    match parse(path, &read(path)?)? {
        Parsed::Signing(key) => Ok(key),
        Parsed::Verifying(_) => Err(format_error(
            path,
            "this is a public key file, which cannot sign; pass it where a verifying key is expected",
        )),
    }
}

/// Reads a verifying key from any key file: an Ed25519 public key, an HS256 secret, or an
/// Ed25519 private key (whose public half is used).
pub fn load_verifying_key_file(path: impl AsRef<Path>) -> Result<VerifyingKey, KeyError> {
    let path = path.as_ref();
    Ok(match parse(path, &read(path)?)? {
        Parsed::Signing(key) => key.verifying_key(),
        Parsed::Verifying(key) => key,
    })
}

/// Writes `key` to `<dir>/<name>.key` (mode 0600) and, for Ed25519, its public key to
/// `<dir>/<name>.pub` (mode 0644). Creates `dir` if missing; never overwrites a file.
pub fn write_key_files(
    dir: impl AsRef<Path>,
    name: &str,
    key: &SigningKey,
) -> Result<KeyFiles, KeyError> {
    let dir = dir.as_ref();
    if let Some(kid) = key.kid() {
        check_kid(kid)?;
    }
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format_error(&dir.join(name), "key name must be a plain file name"));
    }
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let private = dir.join(format!("{name}.key"));
    let public_line = key.verifying_key().to_public_key_file_line();
    let public = public_line.as_ref().map(|_| dir.join(format!("{name}.pub")));
    for path in std::iter::once(&private).chain(public.as_ref()) {
        if path.exists() {
            return Err(KeyError::Exists { path: path.display().to_string() });
        }
    }
    write_new(&private, &key.to_key_file_line(), 0o600)?;
    if let (Some(path), Some(line)) = (&public, &public_line) {
        write_new(path, line, 0o644)?;
    }
    Ok(KeyFiles { private, public })
}

enum Parsed {
    Signing(SigningKey),
    Verifying(VerifyingKey),
}

fn read(path: &Path) -> Result<String, KeyError> {
    let meta = std::fs::metadata(path).map_err(|source| io_error(path, source))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(format_error(
            path,
            &format!("{} bytes is too large for a key file", meta.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
    String::from_utf8(bytes).map_err(|_| format_error(path, "key file is not UTF-8 text"))
}

fn parse(path: &Path, text: &str) -> Result<Parsed, KeyError> {
    let mut words = text.split_whitespace();
    let Some(key) = words.next() else {
        return Err(format_error(path, "empty key file; expected `<type>:<key>[ kid=<kid>]`"));
    };
    let with_path = |e: KeyError| format_error(path, &e.to_string());
    let parsed = if let Some(hex) = key.strip_prefix(HS256) {
        let secret = agent_safe_core::hex::decode(hex)
            .ok_or_else(|| format_error(path, "HS256 secret is not hex"))?;
        Parsed::Signing(SigningKey::hs256(secret).map_err(with_path)?)
    } else if let Some(b64) = key.strip_prefix(ED_PRIVATE) {
        let der = STANDARD
            .decode(b64)
            .map_err(|_| format_error(path, "Ed25519 private key is not base64"))?;
        Parsed::Signing(SigningKey::ed25519_from_pkcs8(der).map_err(with_path)?)
    } else if let Some(b64) = key.strip_prefix(ED_PUBLIC) {
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| format_error(path, "Ed25519 public key is not base64"))?;
        Parsed::Verifying(VerifyingKey::ed25519(&raw).map_err(with_path)?)
    } else {
        // Echo the type only when it looks like one: the word may be a raw secret.
        let kind = key
            .split_once(':')
            .map(|(kind, _)| kind)
            .filter(|kind| kind.starts_with("agent-safe-") && kind.len() <= 40);
        let found = match kind {
            Some(kind) => format!("unknown key type `{}`", kind.escape_debug()),
            None => "not an agent-safe key file".to_owned(),
        };
        return Err(format_error(
            path,
            &format!(
                "{found}; expected `agent-safe-hs256:<hex>`, `agent-safe-ed25519-private:<base64>` or `agent-safe-ed25519-public:<base64>`"
            ),
        ));
    };
    let kid = match (words.next(), words.next()) {
        (None, _) => None,
        (Some(word), None) => match word.strip_prefix("kid=") {
            Some(kid) => {
                check_kid(kid)?;
                Some(kid)
            }
            None => {
                return Err(format_error(
                    path,
                    &format!(
                        "unexpected `{}` after the key; expected `kid=<kid>`",
                        word.escape_debug()
                    ),
                ));
            }
        },
        (Some(_), Some(_)) => {
            return Err(format_error(path, "expected one line `<type>:<key>[ kid=<kid>]`"));
        }
    };
    Ok(match (parsed, kid) {
        (Parsed::Signing(k), Some(kid)) => Parsed::Signing(k.with_kid(kid)),
        (Parsed::Verifying(k), Some(kid)) => Parsed::Verifying(k.with_kid(kid)),
        (parsed, None) => parsed,
    })
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), KeyError> {
    agent_safe_core::fsutil::write_new(path, text.as_bytes(), mode).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: path.display().to_string() }
        } else {
            io_error(path, source)
        }
    })
}

fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io { path: path.display().to_string(), source }
}

fn format_error(path: &Path, detail: &str) -> KeyError {
    KeyError::Format { path: path.display().to_string(), detail: detail.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    #[test]
    fn round_trips_hs256_and_ed25519() {
        let dir = tempfile::tempdir().unwrap();
        let hs = SigningKey::hs256_from_str("interop-fixture-key-0123456789abcdef0123456789")
            .unwrap()
            .with_kid("hs-1");
        let files = write_key_files(dir.path(), "hs", &hs).unwrap();
        assert_eq!(files.public, None);
        let text = std::fs::read_to_string(&files.private).unwrap();
        assert!(text.starts_with("agent-safe-hs256:696e7465726f702d"), "{text}");
        assert!(text.ends_with(" kid=hs-1\n"), "{text}");
        let loaded = load_key_file(&files.private).unwrap();
        assert_eq!(loaded.verifying_key(), hs.verifying_key());
        assert_eq!(loaded.kid(), Some("hs-1"));
        assert_eq!(load_verifying_key_file(&files.private).unwrap(), hs.verifying_key());

        let (ed, ed_pub) = SigningKey::generate_ed25519().unwrap();
        let files = write_key_files(dir.path(), "ed", &ed).unwrap();
        let public = files.public.clone().unwrap();
        assert!(
            std::fs::read_to_string(&files.private)
                .unwrap()
                .starts_with("agent-safe-ed25519-private:")
        );
        assert!(
            std::fs::read_to_string(&public).unwrap().starts_with("agent-safe-ed25519-public:")
        );
        let loaded = load_key_file(&files.private).unwrap();
        assert_eq!(loaded.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(loaded.verifying_key(), ed_pub);
        assert_eq!(load_verifying_key_file(&public).unwrap(), ed_pub);
        assert_eq!(load_verifying_key_file(&files.private).unwrap(), ed_pub);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&files.private), 0o600);
            assert_eq!(mode(&public), 0o644);
        }

        let err = write_key_files(dir.path(), "ed", &ed).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: refusing to overwrite an existing key file", files.private.display())
        );
        let err = load_key_file(&public).unwrap_err().to_string();
        assert!(err.ends_with("this is a public key file, which cannot sign; pass it where a verifying key is expected"), "{err}");
    }

    #[track_caller]
    fn check_bad(content: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        std::fs::write(&path, content).unwrap();
        let err = load_key_file(&path).unwrap_err().to_string();
        assert_eq!(err, format!("{}: {expected}", path.display()), "content {content:?}");
    }

    #[test]
    fn bad_key_files_name_the_problem() {
        check_bad("", "empty key file; expected `<type>:<key>[ kid=<kid>]`");
        check_bad(
            &format!("agent-safe-hs256:{} kid=a extra", "00".repeat(32)),
            "expected one line `<type>:<key>[ kid=<kid>]`",
        );
        check_bad("agent-safe-hs256:zz", "HS256 secret is not hex");
        check_bad("agent-safe-hs256:abc", "HS256 secret is not hex");
        check_bad(
            "agent-safe-hs256:00112233",
            "HS256 signing key is 4 bytes long; at least 32 bytes are required",
        );
        check_bad(
            &format!("agent-safe-hs256:{} id=x", "00".repeat(32)),
            "unexpected `id=x` after the key; expected `kid=<kid>`",
        );
        check_bad("agent-safe-ed25519-private:!!!", "Ed25519 private key is not base64");
        check_bad(
            "agent-safe-ed25519-private:AAAA",
            "invalid Ed25519 key: not a PKCS#8 Ed25519 private key (InvalidEncoding)",
        );
        let expected = "expected `agent-safe-hs256:<hex>`, `agent-safe-ed25519-private:<base64>` or `agent-safe-ed25519-public:<base64>`";
        check_bad(
            "-----BEGIN PRIVATE KEY-----",
            &format!("not an agent-safe key file; {expected}"),
        );
        check_bad("agent-safe-rsa:AAAA", &format!("unknown key type `agent-safe-rsa`; {expected}"));
        // A raw secret put in a key file is never echoed into the error.
        let err_for_raw = format!("not an agent-safe key file; {expected}");
        check_bad("my-raw-secret:with-colon", &err_for_raw);
        check_bad("my-raw-secret-0123456789abcdef0123456789", &err_for_raw);
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.key");
        assert!(matches!(load_key_file(&missing), Err(KeyError::Io { .. })));
    }

    #[test]
    fn refuses_kids_that_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate_hs256().with_kid("has space");
        assert!(matches!(write_key_files(dir.path(), "k", &key), Err(KeyError::InvalidKid(_))));
        assert!(matches!(
            write_key_files(dir.path(), "../k", &SigningKey::generate_hs256()),
            Err(KeyError::Format { .. })
        ));
    }
}
