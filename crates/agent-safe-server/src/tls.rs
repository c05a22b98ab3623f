//! TLS for `agent-safe serve` (rustls on the ring provider): the certificate chain and key from
//! PEM files, optionally client certificates required and verified against a CA. The
//! handshake itself is the accept loop's (`accept`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Where the server's certificate and key are, and whether clients must present certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the server certificate first, then any intermediates.
    pub cert_chain: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    pub key: PathBuf,
    /// PEM file of CA certificates: when set, every client must present a certificate that
    /// chains to one of them (mutual TLS); connections without one are refused.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS settings could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read TLS {what} `{}`: {source}", path.display())]
    Read {
        /// Which file (`certificate chain`, `private key`, `client CA`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("`{}`: not a valid PEM {what} file: {message}", path.display())]
    Pem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("`{}`: no certificate found (expected a PEM `CERTIFICATE` block)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("`{}`: no private key found (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate, or rustls refused them.
    #[error("`{}` and `{}`: {message}", key.display(), cert_chain.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert_chain: PathBuf,
        /// Why.
        message: String,
    },
    /// The client CA file could not be used to verify clients.
    #[error("`{}`: cannot verify client certificates with it: {message}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn pem_error(what: &'static str, path: &Path, e: pem::Error) -> TlsError {
    match e {
        pem::Error::Io(source) => TlsError::Read { what, path: path.to_path_buf(), source },
        other => TlsError::Pem { what, path: path.to_path_buf(), message: other.to_string() },
    }
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    // Read first so that a missing file is a read error naming it (not a PEM error).
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey { path: path.to_path_buf() },
        other => pem_error(what, path, other),
    })
}

/// The provider every TLS object of the server uses (never the process default: another crate
/// of the process may have installed a different one, or none).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the files and builds the rustls configuration (HTTP/1.1 over TLS 1.2 or 1.3).
pub(crate) fn server_config(config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("certificate chain", &config.cert_chain)?;
    let key = private_key(&config.key)?;
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::KeyMismatch {
            key: config.key.clone(),
            cert_chain: config.cert_chain.clone(),
            message: e.to_string(),
        })?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("client CA", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa { path: ca.clone(), message: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa { path: ca.clone(), message: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        let message = match e {
            rustls::Error::InconsistentKeys(_) => {
                "the private key does not match the certificate".to_owned()
            }
            other => format!("unusable certificate or key: {other}"),
        };
        TlsError::KeyMismatch {
            key: config.key.clone(),
            cert_chain: config.cert_chain.clone(),
            message,
        }
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, and another key, as PEM.
    fn material() -> (String, String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        (cert.pem(), key.serialize_pem(), other.serialize_pem())
    }

    #[track_caller]
    fn check(files: &[(&str, &str)], client_ca: bool, expected: Option<&str>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let config = TlsConfig {
            cert_chain: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            client_ca: client_ca.then(|| dir.path().join("ca.pem")),
        };
        let got = server_config(&config)
            .err()
            .map(|e| e.to_string().replace(&*dir.path().to_string_lossy(), "DIR"));
        match (expected, got) {
            (None, None) => {}
            (Some(want), Some(got)) => assert!(got.starts_with(want), "got {got:?}, want {want:?}"),
            (want, got) => assert_eq!(got.as_deref(), want),
        }
    }

    #[test]
    fn tls_settings_report_the_file_at_fault() {
        let (cert, key, other) = material();
        let (cert, key, other) = (cert.as_str(), key.as_str(), other.as_str());
        check(&[("cert.pem", cert), ("key.pem", key)], false, None);
        check(&[("cert.pem", cert), ("key.pem", key), ("ca.pem", cert)], true, None);
        check(
            &[("key.pem", key)],
            false,
            Some("cannot read TLS certificate chain `DIR/cert.pem`: "),
        );
        check(&[("cert.pem", cert)], false, Some("cannot read TLS private key `DIR/key.pem`: "));
        check(
            &[("cert.pem", cert), ("key.pem", key)],
            true,
            Some("cannot read TLS client CA `DIR/ca.pem`: "),
        );
        check(
            &[("cert.pem", key), ("key.pem", key)],
            false,
            Some("`DIR/cert.pem`: no certificate found (expected a PEM `CERTIFICATE` block)"),
        );
        check(
            &[("cert.pem", ""), ("key.pem", key)],
            false,
            Some("`DIR/cert.pem`: no certificate found"),
        );
        check(
            &[("cert.pem", cert), ("key.pem", cert)],
            false,
            Some("`DIR/key.pem`: no private key found"),
        );
        check(
            &[("cert.pem", cert), ("key.pem", other)],
            false,
            Some(
                "`DIR/key.pem` and `DIR/cert.pem`: the private key does not match the certificate",
            ),
        );
        check(
            &[("cert.pem", cert), ("key.pem", key), ("ca.pem", "nothing here\n")],
            true,
            Some("`DIR/ca.pem`: no certificate found"),
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        check(
            &[("cert.pem", broken), ("key.pem", key)],
            false,
            Some("`DIR/cert.pem`: not a valid PEM certificate chain file: "),
        );
    }
}
