//! Performs the HTTP requests of infragraph plugins.
//!
//! A plugin runs in a sandbox without sockets; it hands a [`Request`] to the host, and the
//! host's [`Fetcher`] decides whether and how to send it:
//!
//! - **Allow-list.** [`Grants`] (built from the plugin's manifest and the endpoints the
//!   operator configured) pass a URL if its scheme, host and port equal an operator
//!   endpoint's (http and loopback allowed: the operator chose it), or if it is https to
//!   a manifest host (`api.example.com`, or `*.example.com` for any sub-domain). User info
//!   in URLs is refused. Every redirect hop is checked again; redirects are followed here,
//!   never by the HTTP client.
//! - **Addresses.** A manifest host may not be, or resolve to, a loopback, private,
//!   link-local, CGNAT, multicast, documentation or cloud-metadata address (IPv4-mapped
//!   forms included): IP literals are refused before connecting, names by the resolver.
//! - **Credentials.** The guest never holds a secret. It writes `{secret:NAME}` where the
//!   manifest's credential use allows (header value, JSON body, form body), and the host
//!   substitutes the value from [`Secrets`], encoded for that place, only on requests to
//!   that credential's hosts; bearer and basic credentials are added by the host, and an
//!   `aws-sigv4` credential signs every request to its hosts (AWS Signature Version 4, on
//!   every attempt and redirect hop, never for another host). Secret values are redacted
//!   from responses (bodies, header names and values), errors and logs, in any ASCII case,
//!   as written and in the encodings a server plausibly echoes: JSON escapes, percent
//!   encoding, hex, and base64 (standard and URL-safe, padded or not, at any alignment
//!   inside a longer base64 text); `secrets` lists them.
//! - **Resilience and limits.** 429, 502, 503, 504, connection errors and timeouts are
//!   retried with jittered exponential backoff ([`infragraph_core::backoff`]), honouring
//!   `Retry-After`; bodies, the bytes of responses one call holds at once, time,
//!   concurrency and rate per host are bounded by [`FetchLimits`]. [`FetchStats`] counts what happened for the run report.
//!
//! Inside, one file per job: `fetcher` follows a request hop by hop (allow-list,
//! redirects) and redacts the answer; `credentials` builds each hop (headers, placeholders,
//! `Authorization`, the signing key); `transport` sends it (slots, timeouts, body limit,
//! retries, failure classes) on the HTTP client `clients` shares between the runs of one
//! plugin ([`Clients`]); `held` bounds the bytes of responses a call holds;
//! `grants`, `address` and `resolver` decide where a hop may go;
//! `secrets` holds values and their encodings for redaction; `sigv4` signs; `tape`
//! records exchanges as files and answers from them ([`Tape`]).
//!
//! This crate knows nothing of WebAssembly or the WIT bindings: the runtime maps its types
//! to the `http` interface. It must not depend on wasmtime or any sink.
#![deny(missing_docs)]

mod address;
mod check;
mod clients;
mod credentials;
mod error;
mod fetcher;
mod grants;
mod held;
mod limits;
mod resolver;
mod retry;
mod secrets;
mod sigv4;
mod stats;
mod tape;
mod throttle;
mod tls;
mod transport;
mod types;

pub use check::{Check, Checked};
pub use clients::Clients;
pub use error::{FetchError, SetupError, ShortSecret};
pub use fetcher::Fetcher;
pub use grants::Grants;
pub use limits::FetchLimits;
pub use secrets::{CUT_MARKER, MIN_SECRET_BYTES, Secrets};
pub use stats::FetchStats;
pub use tape::{REDACTED, Recorder, Replay, Tape, TapeError};
pub use types::{Method, Request, Response};
