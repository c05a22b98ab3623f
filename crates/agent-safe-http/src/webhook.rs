//! What every webhook destination checks once, when it is configured: the URL (http or https
//! with a host) and the custom headers; and how a URL is shown (a path or query may hold a
//! secret, as Slack's do). Used by the approval notifiers and the audit webhook shipper.

use reqwest::header::{HeaderName, HeaderValue};

/// A webhook URL or header that cannot be used. Neither shows a secret: a URL appears as
/// [`redact_url`] shows it, a header by its name only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// A URL is not `http://` or `https://` with a host.
    #[error("{setting}: `{url}` is not an http:// or https:// URL")]
    BadUrl {
        /// The setting (`webhook_url`, `slack_webhook_url`).
        setting: &'static str,
        /// The URL, with anything after the host hidden.
        url: String,
    },
    /// A header name or value is not valid in HTTP.
    #[error("webhook_headers: `{name}` is not a valid HTTP header name or value")]
    BadHeader {
        /// The header name.
        name: String,
    },
}

/// `url` parsed, when it is `http://` or `https://` with a non-empty host; else
/// [`WebhookConfigError::BadUrl`] for `setting`.
pub fn parse_url(setting: &'static str, url: &str) -> Result<reqwest::Url, WebhookConfigError> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
        .ok_or_else(|| WebhookConfigError::BadUrl { setting, url: redact_url(url) })
}

/// `scheme://host[:port]`, then `/…` when the URL has more: a URL with its path, query and
/// credentials hidden. `[unparsable URL]` when it is not a URL.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let more = if u.path() != "/" || u.query().is_some() { "/…" } else { "" };
            format!("{}://{host}{port}{more}", u.scheme())
        }
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

/// A custom header, checked: [`WebhookConfigError::BadHeader`] (naming only the header) when
/// the name or the value is not valid in HTTP.
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), WebhookConfigError> {
    let bad = || WebhookConfigError::BadHeader { name: name.to_owned() };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value).map_err(|_| bad())?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_or_https_and_a_host() {
        for ok in ["http://127.0.0.1:9/x", "https://hooks.example.com/a?b=c"] {
            assert!(parse_url("webhook_url", ok).is_ok(), "{ok}");
        }
        for (bad, shown) in [
            ("ftp://example.com/secret", "ftp://example.com/…"),
            ("file:///etc/passwd", "file:///…"),
            ("not a url", "[unparsable URL]"),
            ("https://user:pw@/", "[unparsable URL]"),
        ] {
            let err = parse_url("slack_webhook_url", bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("slack_webhook_url: `{shown}` is not an http:// or https:// URL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn shown_urls_hide_paths_queries_and_credentials() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("https://u:pw@example.com:8443/?k=v"), "https://example.com:8443/…");
        assert_eq!(redact_url("http://example.com/"), "http://example.com");
    }

    #[test]
    fn headers_are_checked_and_errors_name_only_the_header() {
        let (name, value) = header("X-Token", "s3cret").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-token", "s3cret"));
        for (n, v) in [("bad name", "v"), ("X-Token", "line\nbreak")] {
            let err = header(n, v).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("webhook_headers: `{n}` is not a valid HTTP header name or value")
            );
            assert!(!err.contains("line\nbreak"));
        }
    }
}
