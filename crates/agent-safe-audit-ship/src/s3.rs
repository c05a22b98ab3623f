//! The S3 shipper (cargo feature `s3`): one object per entry, key
//! `<prefix><YYYY-MM-DD of the entry's timestamp>/<event_id>.json`, body the stored line,
//! `Content-Type: application/json` (as Python's `S3Shipper`).

use std::fmt;

use agent_safe_core::BoxFuture;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

use crate::{ShipEntry, ShipError, Shipped, Shipper};

/// Where the S3 API is and which region to sign for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// A custom endpoint (moto, LocalStack, MinIO); path-style addressing is used with it.
    pub endpoint_url: Option<String>,
    /// The region (default: the SDK's chain — `AWS_REGION`, the profile).
    pub region: Option<String>,
}

/// Puts each entry as one object. Overwriting an object with the same key and body is
/// harmless, so a re-sent entry (at-least-once) leaves no duplicate. Credentials come from
/// the AWS SDK's default chain (environment, profile, web identity, container or instance
/// role), loaded at the first shipment. No Object Lock parameters are set: immutability
/// needs a bucket that enforces it.
pub struct S3Shipper {
    bucket: String,
    prefix: String,
    options: S3Options,
    given: Option<SdkConfig>,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl fmt::Debug for S3Shipper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Shipper")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl S3Shipper {
    /// A shipper to `bucket` under `prefix` (e.g. `audit-logs/`).
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>, options: S3Options) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: prefix.into(),
            options,
            given: None,
            client: OnceCell::new(),
        }
    }

    /// A shipper using `sdk` (credentials, region, endpoint) instead of the default chain;
    /// path-style addressing when `options.endpoint_url` is set.
    pub fn with_sdk_config(
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        options: S3Options,
        sdk: SdkConfig,
    ) -> Self {
        Self { given: Some(sdk), ..Self::new(bucket, prefix, options) }
    }

    /// The object key of `entry`.
    pub fn key(&self, entry: &ShipEntry) -> String {
        let date = entry.timestamp().date();
        format!(
            "{}{:04}-{:02}-{:02}/{}.json",
            self.prefix,
            date.year(),
            u8::from(date.month()),
            date.day(),
            entry.event_id()
        )
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let sdk = match &self.given {
                    Some(sdk) => sdk.clone(),
                    None => {
                        let http = aws_smithy_http_client::Builder::new()
                            .tls_provider(Provider::Rustls(CryptoMode::Ring))
                            .build_https();
                        let mut loader =
                            aws_config::defaults(BehaviorVersion::latest()).http_client(http);
                        if let Some(region) = &self.options.region {
                            loader = loader.region(Region::new(region.clone()));
                        }
                        if let Some(url) = &self.options.endpoint_url {
                            loader = loader.endpoint_url(url);
                        }
                        loader.load().await
                    }
                };
                let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(self.options.endpoint_url.is_some());
                if let Some(url) = &self.options.endpoint_url {
                    conf = conf.endpoint_url(url);
                }
                aws_sdk_s3::Client::from_conf(conf.build())
            })
            .await
    }

    async fn put(&self, entry: &ShipEntry) -> Result<(), ShipError> {
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(entry))
            .body(ByteStream::from(entry.json().as_bytes().to_vec()))
            .content_type("application/json")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                ShipError::S3(format!(
                    "PutObject to bucket `{}`: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })
    }
}

impl Shipper for S3Shipper {
    fn kind(&self) -> &str {
        "s3"
    }

    fn destination(&self) -> String {
        let mut d = format!("s3://{}/{}", self.bucket, self.prefix);
        if let Some(url) = &self.options.endpoint_url {
            d.push_str(&format!(" at {url}"));
        }
        d
    }

    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            for (i, entry) in entries.iter().enumerate() {
                if let Err(e) = self.put(entry).await {
                    return Shipped::failed(i, e);
                }
            }
            Shipped::all(entries.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_python_layout() {
        let shipper = S3Shipper::new("audit", "audit-logs/", S3Options::default());
        let entry = ShipEntry::parse(
            r#"{"entry_hash": "h", "event_id": "evt-00000000abcd", "timestamp": "2026-02-04T23:59:59.999999Z"}"#,
            1,
        )
        .unwrap();
        assert_eq!(shipper.key(&entry), "audit-logs/2026-02-04/evt-00000000abcd.json");
        assert_eq!(shipper.destination(), "s3://audit/audit-logs/");
        let moto = S3Shipper::new(
            "b",
            "",
            S3Options { endpoint_url: Some("http://127.0.0.1:5000".into()), region: None },
        );
        assert_eq!(moto.key(&entry), "2026-02-04/evt-00000000abcd.json");
        assert_eq!(moto.destination(), "s3://b/ at http://127.0.0.1:5000");
    }
}
