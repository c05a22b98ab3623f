//! Construction-time settings of the AWS executor (the CLI's `--aws-region`, `--aws-profile`
//! and `--aws-endpoint-url`) and their validation.

use agent_safe_core::Secret;

/// Settings of an [`AwsExecutor`](crate::AwsExecutor). All optional: with the default the
/// executor uses the SDK's default credential chain and region resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsExecutorConfig {
    /// Region used when the call's params have no `region`.
    pub region: Option<String>,
    /// Named profile (from `~/.aws/config` and `~/.aws/credentials`) for calls without a
    /// resolved credential.
    pub profile: Option<String>,
    /// Endpoint for every service, e.g. LocalStack, moto or a VPC endpoint. S3 then uses
    /// path-style addressing (`http://host/bucket/key`).
    pub endpoint_url: Option<String>,
    /// Key for the digests that replace secret state values (Lambda environment variable
    /// values). Default: a random key per executor, so digests compare equal within one
    /// process only. Give a fixed key to compare states across processes.
    pub state_hmac_key: Option<Secret<Vec<u8>>>,
}

/// Why an [`AwsExecutorConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsConfigError {
    /// The endpoint URL is not an `http://` or `https://` URL with a host.
    #[error(
        "invalid AWS endpoint URL `{0}`: expected `http://host[:port]` or `https://host[:port]`"
    )]
    EndpointUrl(String),
    /// The region is empty or has characters no region name has.
    #[error("invalid AWS region `{0}`: expected a name like `eu-west-1`")]
    Region(String),
    /// The profile name is empty.
    #[error("the AWS profile name is empty")]
    Profile,
    /// The HMAC key is empty.
    #[error("the state HMAC key is empty")]
    HmacKey,
}

impl AwsExecutorConfig {
    /// Checks the settings without touching the network or the environment.
    pub fn validate(&self) -> Result<(), AwsConfigError> {
        if let Some(url) = &self.endpoint_url {
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
                return Err(AwsConfigError::EndpointUrl(url.clone()));
            }
        }
        if let Some(region) = &self.region
            && !is_region_name(region)
        {
            return Err(AwsConfigError::Region(region.clone()));
        }
        if self.profile.as_deref().is_some_and(str::is_empty) {
            return Err(AwsConfigError::Profile);
        }
        if self.state_hmac_key.as_ref().is_some_and(|k| k.expose().is_empty()) {
            return Err(AwsConfigError::HmacKey);
        }
        Ok(())
    }
}

/// Loosely a region name: lowercase letters, digits and dashes (also for partitions such as
/// `us-gov-west-1` or test regions such as LocalStack's).
pub(crate) fn is_region_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(config: AwsExecutorConfig, expected: Result<(), &str>) {
        assert_eq!(config.validate().map_err(|e| e.to_string()), expected.map_err(str::to_owned));
    }

    #[test]
    fn validates_settings() {
        check(AwsExecutorConfig::default(), Ok(()));
        let endpoint = |u: &str| AwsExecutorConfig {
            endpoint_url: Some(u.to_owned()),
            ..AwsExecutorConfig::default()
        };
        check(endpoint("http://127.0.0.1:5000"), Ok(()));
        check(endpoint("https://vpce-1.s3.eu-west-1.vpce.amazonaws.com/"), Ok(()));
        check(
            endpoint("127.0.0.1:5000"),
            Err(
                "invalid AWS endpoint URL `127.0.0.1:5000`: expected `http://host[:port]` or `https://host[:port]`",
            ),
        );
        check(
            endpoint("http:///x"),
            Err(
                "invalid AWS endpoint URL `http:///x`: expected `http://host[:port]` or `https://host[:port]`",
            ),
        );
        let region = |r: &str| AwsExecutorConfig {
            region: Some(r.to_owned()),
            ..AwsExecutorConfig::default()
        };
        check(region("us-gov-west-1"), Ok(()));
        check(
            region("EU West"),
            Err("invalid AWS region `EU West`: expected a name like `eu-west-1`"),
        );
        check(
            AwsExecutorConfig { profile: Some(String::new()), ..AwsExecutorConfig::default() },
            Err("the AWS profile name is empty"),
        );
        check(
            AwsExecutorConfig {
                state_hmac_key: Some(Secret::new(Vec::new())),
                ..AwsExecutorConfig::default()
            },
            Err("the state HMAC key is empty"),
        );
    }

    #[test]
    fn debug_never_prints_the_hmac_key() {
        let config = AwsExecutorConfig {
            state_hmac_key: Some(Secret::new(b"super-secret-key".to_vec())),
            ..AwsExecutorConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("[redacted]") && !shown.contains("115, 117"), "{shown}");
    }
}
