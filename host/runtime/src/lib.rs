//! Loads infragraph plugins (WebAssembly components built against the `wit/` contract)
//! and runs their `sync` in a sandbox.
//!
//! A plugin gets nothing from the host but what the contract offers: no files, no
//! environment, no sockets. It reaches the network only through [`infragraph_fetch`],
//! which checks every request against its grants; it hands records to the caller through
//! a channel of [`Emission`]s, each batch checked against the schema it declared. Memory,
//! time, records and fetches are capped by [`Limits`]; crossing one stops that plugin
//! with [`Failure::Limit`] and leaves the host and other plugins running.
//!
//! This crate knows no sink and no database: what happens to emissions is the caller's.
//!
//! # Modules
//!
//! Each depends only on those listed above it (no cycles):
//!
//! - `error`: why a plugin could not be loaded.
//! - `wit`: the contract versions this host speaks, and their generated bindings.
//! - `limits`: [`Limits`], and the trap raised when one is crossed.
//! - `emission`: what a running plugin emits ([`Emission`]) and the channel it goes
//!   through.
//! - `run_state`: the store's data: the WASI context and the state of one run (counters,
//!   staged state writes, the emission channel).
//! - `sandbox`: creating a store: the WASI context without files, environment or
//!   sockets, the memory cap, the deadline, and the epoch clock behind it.
//! - `host`: the host side of the contract's interfaces (emit, http, log, state), on
//!   the store's data.
//! - `sync`: what a sync is given ([`SyncRequest`]) and how it ended ([`SyncOutcome`],
//!   [`Failure`]).
//! - `cache`: compiling a component, through the on-disk cache of compiled code.
//! - `runtime`: [`Runtime`] and [`Plugin`]: loading a plugin and running its sync.
//! - `catalog`: finding plugins by name in the plugin directories.
//! - `config`: resolving a plugin's config and secrets against its manifest, and the
//!   operator's consent to its credentials.
#![deny(missing_docs)]

mod cache;
mod catalog;
mod config;
mod emission;
mod error;
mod host;
mod limits;
mod run_state;
mod runtime;
mod sandbox;
mod sync;
mod wit;

pub use catalog::{Catalog, Embedded, EmbeddedPlugin, Found, Source, closest};
pub use config::{
    ConfigError, Consent, Origin, SecretSource, resolve_config, resolve_connection_config,
    resolve_secrets,
};
pub use emission::Emission;
pub use error::{Error, ErrorKind};
pub use limits::{Limits, MAX_GUEST_TEXT};
pub use run_state::RecordCounts;
pub use runtime::{Plugin, Runtime};
pub use sandbox::LOG_DIRECTIVES;
pub use sync::{Failure, ScopeAccepted, SyncOutcome, SyncRequest};
pub use wit::{CONTRACT_PACKAGE, SUPPORTED_CONTRACTS};
