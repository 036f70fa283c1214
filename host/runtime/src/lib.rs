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
#![deny(missing_docs)]

mod catalog;
mod config;
mod error;
mod host;
mod loader;
mod run;
mod sandbox;
mod wit;

pub use catalog::{Catalog, Found, Source};
pub use config::{ConfigError, resolve_config, resolve_secrets};
pub use error::{Error, ErrorKind};
pub use loader::{Plugin, Runtime};
pub use run::{Emission, Failure, RecordCounts, SyncOutcome, SyncRequest};
pub use sandbox::Limits;
pub use wit::{CONTRACT_PACKAGE, SUPPORTED_CONTRACTS};
