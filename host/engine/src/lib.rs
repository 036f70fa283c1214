//! One infragraph sync, between the plugin runtime and a sink: it drives the plugin,
//! batches the nodes it emits into the sink as they come, holds edges back (spooling them
//! to disk past a bound) and writes them once every node is in, then, only after a fully
//! successful run, deletes the stale records of that plugin and scope. Everything it
//! counted ends in a [`RunReport`], which the sink keeps in its run history.
//!
//! It knows sinks only through `infragraph_core::GraphSink`, and plugins only through
//! `infragraph_runtime`.
#![deny(missing_docs)]

mod batch;
mod report;
mod spool;
mod sync;

pub use report::{Phases, RunReport};
pub use sync::{Job, Options, Progress, ProgressFn, sync_all, sync_one};
