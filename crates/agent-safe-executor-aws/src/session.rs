//! Per-call SDK configuration: credentials from the resolved credential (access key,
//! secret, session token), else its named profile, else the executor's profile or the
//! default chain; region from params, then configuration. Nothing touches the process
//! environment.

use std::time::SystemTime;

use agent_safe_core::Credential;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider, SharedHttpClient};
use tokio::sync::OnceCell;

use crate::config::{AwsExecutorConfig, is_region_name};
use crate::error::CallError;

/// Where a call's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CredentialSource {
    /// Keys from the resolved credential.
    Keys(Credentials),
    /// A named profile given by the resolved credential.
    Profile(String),
    /// No credential: the executor's profile or the SDK's default chain.
    Ambient,
}

/// Picks the credential source. A credential that was resolved but is not usable is an
/// error, never a silent fallback to ambient credentials.
pub(crate) fn credential_source(
    credential: Option<&Credential>,
) -> Result<CredentialSource, CallError> {
    let Some(cred) = credential else { return Ok(CredentialSource::Ambient) };
    let bad = |why: &str| {
        CallError::Transport(format!("credential `{}` cannot be used: {why}", cred.credential_id))
    };
    if cred.kind != "aws" {
        return Err(bad(&format!("its type is `{}`, not `aws`", cred.kind)));
    }
    let payload = cred.payload.expose();
    let text = |key: &str| -> Result<Option<String>, CallError> {
        match payload.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("`{key}` is not a string"))),
        }
    };
    let key_id = text("access_key_id")?;
    let secret = text("secret_access_key")?;
    match (key_id, secret) {
        (Some(id), Some(secret)) => {
            let expiry = SystemTime::from(cred.expires_at);
            return Ok(CredentialSource::Keys(Credentials::new(
                id,
                secret,
                text("session_token")?,
                Some(expiry),
                "agent-safe",
            )));
        }
        (Some(_), None) => return Err(bad("`access_key_id` without `secret_access_key`")),
        (None, Some(_)) => return Err(bad("`secret_access_key` without `access_key_id`")),
        (None, None) => {}
    }
    if let Some(profile) = text("profile_name")? {
        return Ok(CredentialSource::Profile(profile));
    }
    Err(bad("its payload has neither `access_key_id` and `secret_access_key` nor `profile_name`"))
}

/// Loads SDK configuration once and derives per-call configurations from it.
#[derive(Debug)]
pub(crate) struct Session {
    config: AwsExecutorConfig,
    http: SharedHttpClient,
    base: OnceCell<SdkConfig>,
}

impl Session {
    pub(crate) fn new(config: AwsExecutorConfig, http: SharedHttpClient) -> Self {
        Self { config, http, base: OnceCell::new() }
    }

    fn loader(&self, profile: Option<&str>) -> ConfigLoader {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(self.http.clone());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader
    }

    /// The executor-wide configuration (profile or default chain), loaded on first use.
    async fn base(&self) -> &SdkConfig {
        self.base.get_or_init(|| self.loader(self.config.profile.as_deref()).load()).await
    }

    /// The SDK configuration for one call.
    pub(crate) async fn clients(
        &self,
        region: Option<&str>,
        credential: Option<&Credential>,
    ) -> Result<Clients, CallError> {
        let source = credential_source(credential)?;
        let base = self.base().await;
        let region = match region {
            Some(r) if is_region_name(r) => Region::new(r.to_owned()),
            Some(r) => return Err(CallError::Transport(format!("invalid AWS region `{r}`"))),
            None => base.region().cloned().ok_or_else(|| {
                CallError::Transport(
                    "no AWS region: give the `region` parameter or configure one \
                     (`--aws-region`, `AWS_REGION` or the profile)"
                        .to_owned(),
                )
            })?,
        };
        let mut builder = base.to_builder();
        builder.set_region(Some(region));
        match source {
            CredentialSource::Keys(keys) => {
                builder.set_credentials_provider(Some(SharedCredentialsProvider::new(keys)));
            }
            CredentialSource::Profile(name) => {
                let loaded = self.loader(Some(&name)).load().await;
                builder.set_credentials_provider(loaded.credentials_provider());
            }
            CredentialSource::Ambient => {}
        }
        Ok(Clients { sdk: builder.build(), path_style: self.config.endpoint_url.is_some() })
    }
}

/// Service clients for one call.
#[derive(Debug)]
pub(crate) struct Clients {
    sdk: SdkConfig,
    path_style: bool,
}

impl Clients {
    pub(crate) fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    pub(crate) fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    pub(crate) fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }

    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(self.path_style);
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    pub(crate) fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk)
    }

    #[cfg(test)]
    pub(crate) fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_safe_core::{CredentialScope, Secret};
    use aws_sdk_ec2::config::ProvideCredentials as _;
    use serde_json::json;

    fn credential(kind: &str, payload: serde_json::Value) -> Credential {
        Credential {
            credential_id: "cred-0123456789ab".into(),
            kind: kind.into(),
            payload: Secret::new(payload.as_object().unwrap().clone()),
            expires_at: time::macros::datetime!(2030-01-01 00:00 UTC),
            scope: CredentialScope { kind: kind.into(), fields: Default::default(), ttl: 300 },
            ticket_nonce: "n".into(),
        }
    }

    #[track_caller]
    fn check(cred: Option<Credential>, expected: Result<&str, &str>) {
        let got = match credential_source(cred.as_ref()) {
            Ok(CredentialSource::Keys(k)) => Ok(format!(
                "keys {} token={:?} expiry={:?}",
                k.access_key_id(),
                k.session_token(),
                k.expiry().map(|e| e.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())
            )),
            Ok(CredentialSource::Profile(p)) => Ok(format!("profile {p}")),
            Ok(CredentialSource::Ambient) => Ok("ambient".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(got, expected.map(str::to_owned).map_err(str::to_owned));
    }

    #[test]
    fn credential_sources_in_order() {
        check(None, Ok("ambient"));
        check(
            Some(credential("aws", json!({"access_key_id": "AKIA1", "secret_access_key": "s"}))),
            Ok("keys AKIA1 token=None expiry=Some(1893456000)"),
        );
        check(
            Some(credential(
                "aws",
                json!({"access_key_id": "ASIA1", "secret_access_key": "s", "session_token": "t",
                       "profile_name": "ignored"}),
            )),
            Ok("keys ASIA1 token=Some(\"t\") expiry=Some(1893456000)"),
        );
        check(Some(credential("aws", json!({"profile_name": "ops"}))), Ok("profile ops"));
        let prefix = "AWS executor error: credential `cred-0123456789ab` cannot be used: ";
        let err = |why: &str| format!("{prefix}{why}");
        check(
            Some(credential("kubernetes", json!({"token": "t"}))),
            Err(&err("its type is `kubernetes`, not `aws`")),
        );
        check(
            Some(credential("aws", json!({"token": "t"}))),
            Err(&err(
                "its payload has neither `access_key_id` and `secret_access_key` nor `profile_name`",
            )),
        );
        check(
            Some(credential("aws", json!({"access_key_id": "AKIA1"}))),
            Err(&err("`access_key_id` without `secret_access_key`")),
        );
        check(
            Some(credential("aws", json!({"access_key_id": 1, "secret_access_key": "s"}))),
            Err(&err("`access_key_id` is not a string")),
        );
    }

    #[test]
    fn credential_errors_never_show_the_secret() {
        let cred = credential("aws", json!({"secret_access_key": "wJalrXUtnFEMI"}));
        let err = credential_source(Some(&cred)).unwrap_err().to_string();
        assert!(!err.contains("wJalrXUtnFEMI"), "{err}");
        assert!(!format!("{cred:?}").contains("wJalrXUtnFEMI"));
    }

    #[tokio::test]
    async fn region_from_params_then_config_and_keys_from_the_credential() {
        let session = Session::new(
            AwsExecutorConfig { region: Some("eu-west-1".into()), ..AwsExecutorConfig::default() },
            crate::executor::https_client(),
        );
        let cred = credential("aws", json!({"access_key_id": "AKIA9", "secret_access_key": "s"}));
        let clients = session.clients(Some("us-east-2"), Some(&cred)).await.unwrap();
        assert_eq!(clients.region(), Some("us-east-2"));
        let provider = clients.sdk.credentials_provider().unwrap();
        assert_eq!(provider.provide_credentials().await.unwrap().access_key_id(), "AKIA9");
        let clients = session.clients(None, Some(&cred)).await.unwrap();
        assert_eq!(clients.region(), Some("eu-west-1"));
        let err = session.clients(Some("Not A Region"), Some(&cred)).await.unwrap_err();
        assert_eq!(err.to_string(), "AWS executor error: invalid AWS region `Not A Region`");
    }
}
