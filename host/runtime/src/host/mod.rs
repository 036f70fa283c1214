//! The host side of each imported interface, one module per interface. `PluginState` is
//! the store's data: the WASI context plus what a running sync needs.

mod emit;
mod http;
mod log;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use infragraph_core::{CheckedSchema, NodeRef, StateStore};
use infragraph_fetch::Fetcher;
use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::run::{Emission, RecordCounts};
use crate::sandbox::{Limits, MemoryLimiter};
use crate::wit::since_v0_1_0::types;

/// The plugin broke a rule of the contract (as opposed to a limit). Raised as a trap.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractViolation(pub String);

/// The receiver of emissions went away: the caller stopped the run (e.g. a sink failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the host stopped accepting records")]
pub(crate) struct Stopped;

pub(crate) struct PluginState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub plugin: Arc<str>,
    /// Last lines the guest wrote to stderr, quoted when it traps (a Rust panic message
    /// lands there, not in the trap).
    pub stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// `None` while `manifest()` runs: it must be pure, so every import traps.
    pub run: Option<RunCtx>,
}

pub(crate) struct RunCtx {
    pub schema: Arc<CheckedSchema>,
    pub fetcher: Fetcher,
    pub out: mpsc::Sender<Emission>,
    pub state: Arc<dyn StateStore>,
    pub staged: BTreeMap<String, Option<Vec<u8>>>,
    pub scope: Option<NodeRef>,
    pub counts: RecordCounts,
    pub limits: Limits,
}

impl PluginState {
    fn run(&mut self, call: &str) -> wasmtime::Result<&mut RunCtx> {
        match self.run.as_mut() {
            Some(run) => Ok(run),
            None => Err(ContractViolation(format!(
                "called `{call}` from manifest(), which must not call the host"
            ))
            .into()),
        }
    }

    /// The run, once the plugin has declared its scope.
    fn scoped(&mut self, call: &str) -> wasmtime::Result<(&mut RunCtx, String)> {
        let run = self.run(call)?;
        match &run.scope {
            Some(s) => {
                let id = s.value.clone();
                Ok((run, id))
            }
            None => Err(ContractViolation(format!(
                "called `{call}` before `declare-scope`; a sync must declare its scope first"
            ))
            .into()),
        }
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

impl types::Host for PluginState {}
