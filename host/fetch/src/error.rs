use std::fmt;

/// Why a request got no response. It mirrors the WIT `fetch-error` variant, so the runtime
/// maps it one to one and the plugin can handle each case. Any status code, 4xx and 5xx
/// included, is a [`Response`](crate::Response), not an error.
///
/// Every text has been passed through the fetcher's redaction, so it never holds a
/// secret value and may be shown to the guest and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The host refused to send the request (or a redirect hop); the text names the
    /// plugin, the URL, why, and which setting would allow it.
    #[error("denied: {0}")]
    Denied(String),
    /// No complete answer within the per-request timeout, after retries.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The response body exceeded this many bytes.
    #[error("response body larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// DNS, connection or TLS failure, after retries.
    #[error("network: {0}")]
    Network(String),
}

/// A fetcher or its grants could not be built: the plugin is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// An operator endpoint is not a usable URL.
    #[error(
        "plugin {plugin:?}: config key {key:?} holds the endpoint {value:?}, which is not usable: {why}"
    )]
    BadEndpoint {
        /// The plugin being set up.
        plugin: String,
        /// The config key the operator set.
        key: String,
        /// The value, with any password in it masked.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The manifest declares something this crate cannot turn into a grant.
    #[error("plugin {plugin:?}: {what}")]
    Manifest {
        /// The plugin being set up.
        plugin: String,
        /// What is wrong, quoting the manifest entry.
        what: String,
    },
    /// A basic-auth credential has a value but its user name is not configured.
    #[error(
        "plugin {plugin:?}: credential {credential:?} uses HTTP basic auth with the user name in config key {key:?}, which has no value"
    )]
    MissingBasicUser {
        /// The plugin being set up.
        plugin: String,
        /// The credential.
        credential: String,
        /// The config key that should hold the user name.
        key: String,
    },
    /// An AWS SigV4 credential has a value but a config key it signs with has none.
    #[error(
        "plugin {plugin:?}: credential {credential:?} signs AWS requests with the {what} in config key {key:?}, which has no value{hint}"
    )]
    MissingSigningConfig {
        /// The plugin being set up.
        plugin: String,
        /// The credential.
        credential: String,
        /// What the key holds: `access key id` or `region`.
        what: &'static str,
        /// The config key.
        key: String,
        /// How to set it (`; set ENV`), or empty.
        hint: String,
    },
    /// A limit makes no sense (it would deadlock or divide by zero).
    #[error("fetch limit {name} {why}")]
    Limits {
        /// The field of [`FetchLimits`](crate::FetchLimits).
        name: &'static str,
        /// What is wrong with its value.
        why: &'static str,
    },
    /// The HTTP client could not be built (TLS roots, resolver).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A credential value too short to be scrubbed safely was refused. Names the credential,
/// never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "credential {credential:?} is shorter than {min} bytes, which is refused: its value is \
     scrubbed from everything the plugin receives, and scrubbing so short a value would \
     rewrite ordinary text in responses; give the full credential",
    min = crate::secrets::MIN_SECRET_BYTES
)]
pub struct ShortSecret {
    /// The credential's name.
    pub credential: String,
}

/// The outcome of one attempt, before the retry loop decides what to do with it.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Refused by the resolver or the address check: never retried.
    Denied(String),
    /// The attempt ran out of time.
    Timeout(String),
    /// The body grew past the limit: never retried.
    TooLarge(u64),
    /// The body did not fit in the bytes its call may hold (the limit): never retried.
    OverHeld(u64),
    /// Connection, DNS, TLS or transfer failure.
    Network(String),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Denied(m) | AttemptError::Timeout(m) | AttemptError::Network(m) => {
                f.write_str(m)
            }
            AttemptError::TooLarge(n) => write!(f, "body larger than {n} bytes"),
            AttemptError::OverHeld(n) => write!(f, "responses held past {n} bytes"),
        }
    }
}
