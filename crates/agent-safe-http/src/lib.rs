//! The one HTTP client set-up of the workspace (approval notifiers, audit shippers): reqwest
//! on rustls with the `ring` crypto provider (no aws-lc-sys, no OpenSSL), server certificates
//! checked against the platform's trust store, and redirects **not** followed.
//!
//! Redirects are off because every user POSTs a body: following a `301`/`302`/`303` turns the
//! POST into a body-less GET, and a `200` for that GET would count as a delivery that never
//! happened. A redirect is reported as the HTTP status it is.
//!
//! ```
//! let client = agent_safe_http::client().unwrap();
//! # drop(client);
//! ```
//!
//! It also holds what both background deliveries (approval notifications, audit shipping)
//! share: [`RetryPolicy`] (attempts and capped exponential backoff), [`Sleeper`] (the
//! injectable wait between retries, so tests control time instead of sleeping) and [`Worker`]
//! (one thread with its own tokio runtime running jobs from a bounded queue), and [`webhook`]:
//! the URL and header checks of every webhook destination and how a URL is shown.

use std::sync::Arc;

mod retry;
pub mod webhook;
mod worker;

pub use retry::RetryPolicy;
pub use webhook::WebhookConfigError;
pub use worker::{Job, OnDrop, Worker, WorkerOptions, WorkerStartError, WorkerStats};

/// Why the HTTP client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The TLS configuration (provider, protocol versions, platform verifier) failed.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// The workspace's TLS client set-up: rustls with the `ring` provider, safe default protocol
/// versions, the platform's certificate verifier (system roots), no client certificate. Every
/// TLS client of agent-safe uses it (HTTP clients here, PostgreSQL connections).
pub fn tls_client_config() -> Result<rustls::ClientConfig, HttpClientError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| HttpClientError::Tls(e.to_string()))?
        .with_no_client_auth())
}

/// A client builder with the workspace's TLS set-up and no redirects; add timeouts or pool
/// settings, then `build()`.
pub fn builder() -> Result<reqwest::ClientBuilder, HttpClientError> {
    let tls = tls_client_config()?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none()))
}

/// A client with the workspace's TLS set-up and no redirects.
pub fn client() -> Result<reqwest::Client, HttpClientError> {
    builder()?.build().map_err(|e| HttpClientError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use agent_safe_testkit::{Reply, TestServer};

    #[tokio::test]
    async fn redirects_are_reported_not_followed() {
        let client = super::client().unwrap();
        for status in [302, 307] {
            let server = TestServer::start(move |_, r| {
                let elsewhere = format!("http://{}/elsewhere", r.header("host").unwrap_or(""));
                Reply::Headers(status, vec![("location", elsewhere)])
            })
            .unwrap();
            let response = client.post(server.url()).body("{}").send().await.unwrap();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(server.requests().len(), 1, "the redirect was not followed");
        }
    }
}

/// Waits between retries (and between polls). Injectable so tests control time instead of
/// sleeping.
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    /// Completes after `duration`.
    fn sleep(&self, duration: std::time::Duration) -> agent_safe_core::BoxFuture<'static, ()>;
}

/// [`Sleeper`] on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: std::time::Duration) -> agent_safe_core::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
