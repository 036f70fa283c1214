//! What every infragraph front end does, so the command line, a long-running server or a
//! web view share one implementation and differ only in how they ask and print:
//!
//! - [`Settings`]: the config file and the environment, checked once;
//! - [`Location`] and [`Graph`]: where the graph lives, decided by one rule
//!   ([`Settings::location`]) and opened as one type that the engine writes to and every
//!   reading command reads from, the embedded store or a Neo4j server alike;
//! - [`sync()`]: plugins by name assembled into jobs and synced into the graph;
//! - [`runs`]: the run history read back as typed reports;
//! - [`transfer`]: a whole graph copied from one place into another (`push`);
//! - [`schema_docs`]: a plugin's schema as Markdown or Mermaid;
//! - [`access`]: who can reach what, from the access meaning plugins declare;
//! - [`people`]: the accounts of one person across providers, linked to a `Person`;
//! - [`scaffold`]: a new plugin crate to start from, and checking a built component;
//! - [`install`] and [`oci`]: plugins signed, published, installed and verified;
//! - [`replay_test`]: a plugin synced from a recording, its graph compared with an
//!   expected export.
//!
//! Nothing here prints; errors are [`Error`] values whose messages say what to do.

#![deny(missing_docs)]

pub mod access;
mod check;
mod download;
mod error;
mod graph;
pub mod install;
pub mod oci;
pub mod people;
pub mod replay_test;
mod runs;
pub mod scaffold;
pub mod schema_docs;
mod settings;
mod sync;
mod transfer;

pub use check::{CheckReport, CheckStatus, check};
pub use error::Error;
pub use graph::{DEFAULT_STORE, Graph, GraphArgs, Intent, Location};
pub use runs::{ConnectionRow, Run, connections, runs};
pub use settings::{ConnectionSettings, LimitsFile, NEO4J_PASSWORD, PluginSettings, Settings};
pub use sync::{
    Phase, Planned, Refused, SyncPlan, Synced, Target, Traffic, jobs, options, shard_of, sync,
    targets,
};
pub use transfer::{Transferred, transfer};
