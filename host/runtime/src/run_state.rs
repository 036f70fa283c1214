//! The data of a plugin's store: the WASI context and, while `sync` runs, the run's own
//! state (its schema, fetcher, emission channel, staged state writes and counters).
//! The host interfaces in `host/` read and update it; the runtime creates it and takes
//! it back when the run ends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use infragraph_core::{CheckedSchema, NodeRef, StateStore};
use infragraph_fetch::Fetcher;
use serde::{Deserialize, Serialize};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::emission::Emitter;
use crate::limits::{LimitExceeded, Limits, MemoryLimiter};

/// The plugin broke a rule of the contract (as opposed to a limit). Raised as a trap.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractViolation(pub String);

/// The last lines a guest wrote to stderr, shared with the stderr pipe that fills it.
pub(crate) type StderrTail = Arc<Mutex<VecDeque<String>>>;

/// Counters of one sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Nodes emitted.
    pub nodes: u64,
    /// Edges emitted.
    pub edges: u64,
    /// Node batches received.
    pub node_batches: u64,
    /// Edge batches received.
    pub edge_batches: u64,
    /// Requests the plugin asked for.
    pub fetches: u64,
    /// Log lines the plugin wrote.
    pub log_lines: u64,
    /// Log lines dropped past the limit.
    pub log_lines_dropped: u64,
}

/// The store's data.
pub(crate) struct PluginState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub plugin: Arc<str>,
    /// Last lines the guest wrote to stderr, quoted when it traps (a Rust panic message
    /// lands there, not in the trap).
    pub stderr_tail: StderrTail,
    /// `None` while `manifest()` runs: it must be pure, so every import traps.
    pub run: Option<RunCtx>,
}

/// What one sync needs and accumulates.
pub(crate) struct RunCtx {
    pub schema: Arc<CheckedSchema>,
    pub fetcher: Fetcher,
    pub out: Emitter,
    pub state: Arc<dyn StateStore>,
    /// State writes, kept only if the sync succeeds.
    pub staged: BTreeMap<String, Option<Vec<u8>>>,
    pub scope: Option<NodeRef>,
    /// What `declare-scope` waits for before the plugin goes on, taken by its first call.
    pub scope_accepted: Option<crate::ScopeAccepted>,
    /// When the run must end; its clock stands still while it waits for `scope_accepted`.
    pub deadline: crate::sandbox::Deadline,
    pub counts: RecordCounts,
    pub limits: Limits,
}

impl PluginState {
    /// The run, or a contract violation naming `call` when `manifest()` calls the host.
    pub fn run(&mut self, call: &str) -> wasmtime::Result<&mut RunCtx> {
        match self.run.as_mut() {
            Some(run) => Ok(run),
            None => Err(ContractViolation(format!(
                "called `{call}` from manifest(), which must not call the host"
            ))
            .into()),
        }
    }

    /// The run and the id of its scope, once the plugin has declared one.
    pub fn scoped(&mut self, call: &str) -> wasmtime::Result<(&mut RunCtx, String)> {
        let run = self.run(call)?;
        match &run.scope {
            Some(s) => {
                let id = s.value.clone();
                Ok((run, id))
            }
            None => Err(ContractViolation(format!(
                "called `{call}` before `declare-scope` (the SDK's `cx.scope(label, id)`); a \
                 sync must declare its scope before any record"
            ))
            .into()),
        }
    }
}

impl RunCtx {
    /// Admits `records` more nodes or edges, or stops the plugin at the records limit.
    pub fn admit_records(&self, records: usize) -> wasmtime::Result<()> {
        let total = self.counts.nodes + self.counts.edges + records as u64;
        if total > self.limits.records {
            return Err(LimitExceeded::new("records", self.limits.records).into());
        }
        Ok(())
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
