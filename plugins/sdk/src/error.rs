use std::fmt;

use crate::wit::{http, ingestor};

/// Why a sync failed: the contract's `sync-error`. Nothing is deleted after a failed sync.
///
/// `?` converts a [`FetchError`] (as [`SyncError::Fetch`]) and a [`StatusError`] (by its
/// status) into one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// A config value is missing or malformed.
    Config(String),
    /// The provider refused the credentials; the text names the env var to check.
    Auth(String),
    /// The provider answered with something the plugin cannot use.
    Provider(String),
    /// A request failed after the host's retries.
    Fetch(String),
    /// Anything else.
    Other(String),
}

impl SyncError {
    /// A config value is missing or malformed.
    pub fn config(message: impl Into<String>) -> SyncError {
        SyncError::Config(message.into())
    }

    /// The provider refused the credentials; say which env var to check.
    pub fn auth(message: impl Into<String>) -> SyncError {
        SyncError::Auth(message.into())
    }

    /// The provider answered with something the plugin cannot use.
    pub fn provider(message: impl Into<String>) -> SyncError {
        SyncError::Provider(message.into())
    }

    /// A request failed after the host's retries.
    pub fn fetch(message: impl Into<String>) -> SyncError {
        SyncError::Fetch(message.into())
    }

    /// Anything else.
    pub fn other(message: impl Into<String>) -> SyncError {
        SyncError::Other(message.into())
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Config(m) => write!(f, "config: {m}"),
            SyncError::Auth(m) => write!(f, "auth: {m}"),
            SyncError::Provider(m) => write!(f, "provider: {m}"),
            SyncError::Fetch(m) => write!(f, "fetch: {m}"),
            SyncError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SyncError {}

impl From<FetchError> for SyncError {
    fn from(e: FetchError) -> Self {
        SyncError::Fetch(e.to_string())
    }
}

impl From<StatusError> for SyncError {
    /// 401 and 403 become [`SyncError::Auth`]; 429 and 5xx, which the host already
    /// retried, [`SyncError::Fetch`]; anything else [`SyncError::Provider`].
    fn from(e: StatusError) -> Self {
        match e.status {
            401 | 403 => SyncError::Auth(e.to_string()),
            429 | 500..=599 => SyncError::Fetch(e.to_string()),
            _ => SyncError::Provider(e.to_string()),
        }
    }
}

impl From<SyncError> for ingestor::SyncError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Config(m) => ingestor::SyncError::Config(m),
            SyncError::Auth(m) => ingestor::SyncError::Auth(m),
            SyncError::Provider(m) => ingestor::SyncError::Provider(m),
            SyncError::Fetch(m) => ingestor::SyncError::Fetch(m),
            SyncError::Other(m) => ingestor::SyncError::Other(m),
        }
    }
}

/// Why a request got no response: the contract's `fetch-error`. Any status code, 4xx and
/// 5xx included, is a [`Response`](crate::Response), not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The host refused to send it; the text says why and which setting would allow it.
    Denied(String),
    /// No complete answer within the per-request timeout, after retries.
    Timeout(String),
    /// The body exceeded the host's response size limit, in bytes.
    TooLarge(u64),
    /// DNS, connection or TLS failure, after retries.
    Network(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Denied(m) => write!(f, "denied by the host: {m}"),
            FetchError::Timeout(m) => write!(f, "timed out: {m}"),
            FetchError::TooLarge(limit) => {
                write!(
                    f,
                    "response body larger than the host's limit of {limit} bytes"
                )
            }
            FetchError::Network(m) => write!(f, "network error: {m}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<http::FetchError> for FetchError {
    fn from(e: http::FetchError) -> Self {
        match e {
            http::FetchError::Denied(m) => FetchError::Denied(m),
            http::FetchError::Timeout(m) => FetchError::Timeout(m),
            http::FetchError::TooLarge(n) => FetchError::TooLarge(n),
            http::FetchError::Network(m) => FetchError::Network(m),
        }
    }
}

/// A response whose status is not 2xx, from [`Response::error_for_status`].
///
/// [`Response::error_for_status`]: crate::Response::error_for_status
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    /// The status code.
    pub status: u16,
    /// The URL requested.
    pub url: String,
    /// The first 200 bytes of the body, as text.
    pub body: String,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered HTTP {}", self.url, self.status)?;
        if !self.body.is_empty() {
            write!(f, ": {}", self.body)?;
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> StatusError {
        StatusError {
            status,
            url: "https://x/y".into(),
            body: "nope".into(),
        }
    }

    #[test]
    fn status_errors_map_by_class() {
        assert_eq!(
            SyncError::from(status(401)),
            SyncError::Auth("https://x/y answered HTTP 401: nope".into())
        );
        assert!(matches!(SyncError::from(status(403)), SyncError::Auth(_)));
        assert!(matches!(SyncError::from(status(503)), SyncError::Fetch(_)));
        assert!(matches!(SyncError::from(status(429)), SyncError::Fetch(_)));
        assert!(matches!(
            SyncError::from(status(404)),
            SyncError::Provider(_)
        ));
    }

    #[test]
    fn fetch_errors_read_well() {
        let e = SyncError::from(FetchError::TooLarge(1024));
        assert_eq!(
            e.to_string(),
            "fetch: response body larger than the host's limit of 1024 bytes"
        );
        assert_eq!(
            FetchError::Denied("host x not granted".into()).to_string(),
            "denied by the host: host x not granted"
        );
    }
}
