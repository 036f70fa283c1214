//! The seam between whatever produces a run's emissions and the engine that reacts to
//! them. The wasm runtime is one [`Source`] (`sync_one` wraps a loaded plugin in one);
//! anything else that speaks [`Emission`]s and ends with a [`SyncOutcome`] is another,
//! which is how the engine's decisions are tested without compiled wasm.

use std::future::Future;
use std::sync::Arc;

use infragraph_core::{Manifest, StateStore};
use infragraph_runtime::{Emission, ScopeAccepted, SyncOutcome};
use tokio::sync::mpsc;

/// One run's worth of emissions, as the engine drives it.
///
/// The engine prepares the sink for [`Source::manifest`] before it starts the run, then
/// calls [`Source::run`] once, reading `out` while the run goes on. It stops reading
/// when a write fails; a source should then stop and end with `Failure::Stopped`, as the
/// wasm runtime does when a send finds the channel closed.
pub trait Source: Send {
    /// The manifest of the plugin that emits: its name, version and schema.
    fn manifest(&self) -> &Manifest;

    /// The sha256 of the plugin's file, for the run history.
    fn sha256(&self) -> &str;

    /// The name the plugin's state is kept under: its own, unless the operator runs a
    /// build that replaces an installed plugin without adopting that plugin's state.
    fn state_name(&self) -> &str {
        &self.manifest().name
    }

    /// What the run is called in its report, the run history and the progress display:
    /// the address of its named connection (`plugin/name`), else the plugin's name.
    fn connection(&self) -> &str {
        &self.manifest().name
    }

    /// Runs to the end, sending what the plugin emits to `out` in order (the scope
    /// first), with `state` as the plugin's state store (the engine passes the sink).
    /// Dropping `out` ends the emissions; the outcome says how the run ended and holds
    /// the state writes to commit if it succeeded. `accepted` resolves once the engine
    /// holds the lease of the scope sent first, and fails when it was refused: a source
    /// that sends requests should send none before (the wasm runtime's `declare-scope`
    /// waits for it), so that a run refused its scope spends nothing of the account's
    /// rate limit.
    fn run(
        self,
        state: Arc<dyn StateStore>,
        out: mpsc::Sender<Emission>,
        accepted: ScopeAccepted,
    ) -> impl Future<Output = SyncOutcome> + Send;
}
