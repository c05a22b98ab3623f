//! How kubectl reaches the cluster for one call: the configured kubeconfig and context, or the
//! call's credential written to a private (mode 0600) temporary kubeconfig that is removed
//! when the call ends, whatever way it ends (the file is owned by the call's future, so a
//! timeout, a cancellation or a panic drops and removes it too). Secrets never appear in the
//! argument list, which other local users can read.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use agent_safe_core::Credential;
use serde_json::{Map, Value, json};
use tempfile::NamedTempFile;

use super::KubectlConfig;
use super::args::Refusal;

/// The user name of a token-only credential in the merged kubeconfig.
pub(crate) const TOKEN_USER: &str = "agent-safe-credential";

/// Connection flags and environment for the kubectl processes of one call.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    /// Global flags, before the command.
    pub(crate) args: Vec<String>,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, OsString)>,
    /// The credential's kubeconfig; removed on drop.
    temp: Option<NamedTempFile>,
}

impl Connection {
    /// The temporary kubeconfig, if one was written.
    #[cfg(test)]
    pub(crate) fn temp_path(&self) -> Option<&Path> {
        self.temp.as_ref().map(NamedTempFile::path)
    }
}

fn glued(flag: &str, value: &str) -> Result<String, Refusal> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(Refusal(format!(
            "`{flag}` must be a non-empty value without control characters"
        )));
    }
    Ok(format!("{flag}={value}"))
}

fn path_flag(flag: &str, path: &Path) -> Result<String, Refusal> {
    let text = path.to_str().ok_or_else(|| {
        Refusal(format!("the path given to `{flag}` is not valid UTF-8: `{}`", path.display()))
    })?;
    glued(flag, text)
}

/// The connection for a call with `credential` (or none) under `config`.
pub(crate) fn connect(
    config: &KubectlConfig,
    credential: Option<&Credential>,
) -> Result<Connection, Refusal> {
    let Some(credential) = credential else {
        let mut conn = Connection::default();
        if let Some(path) = &config.kubeconfig {
            conn.args.push(path_flag("--kubeconfig", path)?);
        }
        if let Some(context) = &config.context {
            conn.args.push(glued("--context", context)?);
        }
        return Ok(conn);
    };
    let payload = credential.payload.expose();
    let bad =
        |message: String| Refusal(format!("credential `{}`: {message}", credential.credential_id));
    let context = match payload.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(glued("--context", c).map_err(|e| bad(e.0))?),
        Some(_) => return Err(bad("`context` must be a string".to_owned())),
    };
    match (payload.get("kubeconfig"), payload.get("token")) {
        (Some(kubeconfig), None) => {
            let mut conn = Connection::default();
            match kubeconfig {
                // A path: one line naming an existing file.
                Value::String(path) if !path.contains('\n') && Path::new(path).is_file() => {
                    conn.args.push(path_flag("--kubeconfig", Path::new(path))?);
                }
                Value::String(text) if text.contains('\n') => {
                    conn.temp = Some(write_temp(text).map_err(|e| bad(e.0))?);
                }
                Value::Object(_) => {
                    conn.temp = Some(write_temp(&kubeconfig.to_string()).map_err(|e| bad(e.0))?);
                }
                _ => {
                    return Err(bad(
                        "`kubeconfig` must be the path of an existing file, the file's content \
                         or an object"
                            .to_owned(),
                    ));
                }
            }
            if let Some(temp) = &conn.temp {
                conn.args.push(path_flag("--kubeconfig", temp.path())?);
            }
            conn.args.extend(context);
            Ok(conn)
        }
        (None, Some(Value::String(token))) if !token.is_empty() => {
            token_connection(config, payload, token, context).map_err(|e| bad(e.0))
        }
        (None, Some(_)) => Err(bad("`token` must be a non-empty string".to_owned())),
        (Some(_), Some(_)) => {
            Err(bad("the payload has `kubeconfig` and `token`; give one".to_owned()))
        }
        (None, None) => Err(bad("the payload has neither `kubeconfig` nor `token`".to_owned())),
    }
}

/// A bearer token: with `server` (alias `host`), a self-contained kubeconfig; without, the
/// token replaces the user of the configured kubeconfig (the temporary file is merged in front
/// of it through `KUBECONFIG` and selected with `--user`).
fn token_connection(
    config: &KubectlConfig,
    payload: &Map<String, Value>,
    token: &str,
    context: Option<String>,
) -> Result<Connection, Refusal> {
    let opt_str = |key: &str| match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal(format!("`{key}` must be a string"))),
    };
    let server = opt_str("server")?.or(opt_str("host")?);
    let user = json!({"name": TOKEN_USER, "user": {"token": token}});
    let mut conn = Connection::default();
    match server {
        Some(server) => {
            let mut cluster = Map::new();
            cluster.insert("server".into(), json!(server));
            if let Some(ca) = opt_str("certificate_authority_data")? {
                cluster.insert("certificate-authority-data".into(), json!(ca));
            } else if let Some(pem) = opt_str("ca_cert")? {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
                cluster.insert("certificate-authority-data".into(), json!(b64));
            }
            let insecure =
                matches!(payload.get("insecure_skip_tls_verify"), Some(Value::Bool(true)))
                    || matches!(payload.get("verify_ssl"), Some(Value::Bool(false)));
            if insecure {
                cluster.insert("insecure-skip-tls-verify".into(), json!(true));
            }
            let kubeconfig = json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "agent-safe", "cluster": cluster}],
                "users": [user],
                "contexts": [{"name": "agent-safe", "context": {"cluster": "agent-safe", "user": TOKEN_USER}}],
                "current-context": "agent-safe",
            });
            let temp = write_temp(&kubeconfig.to_string())?;
            conn.args.push(path_flag("--kubeconfig", temp.path())?);
            conn.temp = Some(temp);
        }
        None => {
            let kubeconfig = json!({"apiVersion": "v1", "kind": "Config", "users": [user]});
            let temp = write_temp(&kubeconfig.to_string())?;
            let mut paths = vec![temp.path().to_path_buf()];
            paths.extend(base_kubeconfigs(config));
            let joined = std::env::join_paths(&paths).map_err(|e| {
                Refusal(format!("cannot name the kubeconfig files in `KUBECONFIG`: {e}"))
            })?;
            conn.env.push(("KUBECONFIG".to_owned(), joined));
            conn.args.push(format!("--user={TOKEN_USER}"));
            if let Some(c) = &config.context {
                conn.args.push(glued("--context", c)?);
            }
            conn.temp = Some(temp);
        }
    }
    conn.args.extend(context);
    Ok(conn)
}

/// The kubeconfig files kubectl would read without a credential: the configured one, else
/// `$KUBECONFIG`, else `~/.kube/config`.
fn base_kubeconfigs(config: &KubectlConfig) -> Vec<PathBuf> {
    if let Some(path) = &config.kubeconfig {
        return vec![path.clone()];
    }
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).collect(),
        None => std::env::var_os("HOME")
            .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// Writes `text` to a new private temporary file (mode 0600 on Unix).
pub(crate) fn write_temp(text: &str) -> Result<NamedTempFile, Refusal> {
    let io = |e: std::io::Error| Refusal(format!("cannot write a temporary kubectl file: {e}"));
    let mut file = tempfile::Builder::new()
        .prefix("agent-safe-kubectl-")
        .suffix(".json")
        .tempfile()
        .map_err(io)?;
    file.write_all(text.as_bytes()).and_then(|()| file.flush()).map_err(io)?;
    Ok(file)
}

/// A patch written to a private temporary file (for `--patch-file`).
pub(crate) fn patch_file(text: &str) -> Result<NamedTempFile, Refusal> {
    write_temp(text)
}
