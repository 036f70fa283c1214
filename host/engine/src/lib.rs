//! One infragraph sync, between a source of emissions (a plugin in the wasm runtime) and
//! a sink: it takes the lease of the plugin's scope once the plugin declares it (one run
//! per plugin and scope), batches the nodes the plugin emits into the sink as they come
//! (on a task of their own, so the plugin keeps running while a batch is written), holds
//! edges back (spooling them to disk past a bound) and writes them once every node is
//! in, then, only after a fully successful run, publishes it (the sink deletes the stale
//! records of that plugin and scope and stores the plugin's state with it); any other
//! run is discarded. Everything it counted ends in a [`RunReport`], which the sink keeps
//! in its run history.
//!
//! It knows sinks only through `infragraph_core::GraphSink`, and plugins only through
//! `infragraph_runtime`'s emissions: [`Source`] is the seam, so the engine's decisions can
//! be driven (and tested) by any source of emissions, the wasm runtime being one.
//!
//! Sink writes are tried once here: retrying a transient failure belongs to the sink,
//! which knows which of its errors are transient and which statements are safe to run
//! again (the Bolt sink retries per transaction; the embedded store waits for a busy
//! lock inside SQLite).
#![deny(missing_docs)]

mod batch;
mod lease;
mod report;
mod source;
mod spool;
mod sync;
mod write;

pub use report::{Cause, Phases, RunReport, causes};
pub use source::Source;
pub use sync::{
    Connection, Job, Options, Progress, ProgressFn, record_run, sync_all, sync_one, sync_source,
};
