//! One sync of one plugin: what goes in ([`SyncRequest`]), what comes out while it runs
//! ([`Emission`]) and at its end ([`SyncOutcome`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_core::{
    ConfigType, ConfigValue, EdgeBatch, NodeBatch, NodeRef, RecordError, StateStore,
};
use infragraph_fetch::{FetchStats, Fetcher, Grants, Secrets};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::host::{ContractViolation, PluginState, RunCtx, Stopped};
use crate::loader::{Plugin, Runtime};
use crate::sandbox::{LimitExceeded, Limits};
use crate::wit::since_v0_1_0::Ingestor as Bindings;

/// What a sync is given.
pub struct SyncRequest {
    /// The plugin's config, resolved and checked against its manifest by the caller.
    pub config: Vec<(String, ConfigValue)>,
    /// Credential values by credential name.
    pub secrets: Secrets,
    /// What the run may consume.
    pub limits: Limits,
    /// Where the plugin's state lives.
    pub state: Arc<dyn StateStore>,
}

/// What a running plugin hands over, in order.
#[derive(Debug)]
pub enum Emission {
    /// The scope the sync covers; always first, before any record.
    Scope(NodeRef),
    /// Checked nodes.
    Nodes(NodeBatch),
    /// Checked edges.
    Edges(EdgeBatch),
    /// A label (under a parent) that could not be fully listed.
    Incomplete {
        /// The label.
        label: String,
        /// The parent node it is limited to, if any.
        parent: Option<NodeRef>,
        /// Why, for the report.
        reason: String,
    },
    /// Requests the plugin has asked for so far; sent after each fetch, dropped when
    /// the receiver lags.
    Fetched {
        /// The running total.
        requests: u64,
    },
    /// Where the sync stands; dropped when the receiver lags.
    Progress {
        /// The current step.
        phase: String,
        /// Units done.
        done: u64,
        /// Units in all, when known.
        total: Option<u64>,
    },
}

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

/// Why a sync failed. After any of these, nothing may be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The request could not be granted (bad endpoint URL, credentials).
    #[error("{0}")]
    Setup(String),
    /// The plugin returned an error.
    #[error("{error} error: {message}")]
    Plugin {
        /// The contract's error kind: config, auth, provider, fetch, other.
        error: String,
        /// Its text.
        message: String,
    },
    /// A limit was crossed.
    #[error("stopped: limit {limit} ({value}) exceeded")]
    Limit {
        /// Which limit.
        limit: String,
        /// Its value.
        value: String,
    },
    /// The plugin emitted a record outside its schema.
    #[error("{0}")]
    InvalidRecord(String),
    /// The plugin broke another rule of the contract.
    #[error("contract violation: {0}")]
    Contract(String),
    /// The plugin crashed (a trap, e.g. a Rust panic).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// The receiver of emissions stopped the run.
    #[error("stopped by the host")]
    Stopped,
}

/// How a sync ended, with everything counted on the way.
#[derive(Debug)]
pub struct SyncOutcome {
    /// The plugin's name.
    pub plugin: String,
    /// The scope it declared.
    pub scope: Option<NodeRef>,
    /// The plugin's summary, or why it failed.
    pub result: Result<String, Failure>,
    /// Records, fetches and logs.
    pub counts: RecordCounts,
    /// HTTP traffic.
    pub fetch: FetchStats,
    /// State writes, to be kept only if the sync succeeded.
    pub state_writes: BTreeMap<String, Option<Vec<u8>>>,
    /// Wall-clock time.
    pub duration: Duration,
}

impl Runtime {
    /// Runs `plugin`'s sync in a fresh sandbox, sending what it emits to `out`. Never
    /// panics and never returns early: every failure is in the outcome.
    pub async fn sync(
        &self,
        plugin: &Plugin,
        req: SyncRequest,
        out: mpsc::Sender<Emission>,
    ) -> SyncOutcome {
        let started = Instant::now();
        let manifest = plugin.manifest();
        let mut outcome = SyncOutcome {
            plugin: manifest.name.clone(),
            scope: None,
            result: Err(Failure::Stopped),
            counts: RecordCounts::default(),
            fetch: FetchStats::default(),
            state_writes: BTreeMap::new(),
            duration: Duration::ZERO,
        };
        let fetcher = match fetcher(plugin, &req) {
            Ok(f) => f,
            Err(e) => {
                outcome.result = Err(Failure::Setup(e));
                return outcome;
            }
        };
        let run = RunCtx {
            schema: plugin.schema.clone(),
            fetcher: fetcher.clone(),
            out,
            state: req.state,
            staged: BTreeMap::new(),
            scope: None,
            counts: RecordCounts::default(),
            limits: req.limits.clone(),
        };
        let mut store = self.store(&manifest.name, &req.limits, req.limits.sync_time, Some(run));
        let config: Vec<_> = req.config.into_iter().map(|(k, v)| (k, v.into())).collect();
        let call = async {
            let instance =
                Bindings::instantiate_async(&mut store, plugin.component(), self.linker()).await?;
            instance
                .infragraph_plugin_provider()
                .call_sync(&mut store, &config)
                .await
        };
        let result = tokio::time::timeout(req.limits.sync_time, call).await;
        outcome.result = match result {
            Err(_elapsed) => Err(Failure::Limit {
                limit: "sync time".into(),
                value: format!("{:?}", req.limits.sync_time),
            }),
            Ok(Ok(Ok(summary))) => Ok(fetcher.redact(&summary.message)),
            Ok(Ok(Err(e))) => {
                let (kind, message) = e.parts();
                Err(Failure::Plugin {
                    error: kind.into(),
                    message: fetcher.redact(message),
                })
            }
            Ok(Err(trap)) => Err(failure(&trap, &store, &fetcher)),
        };
        let data = store.into_data();
        if let Some(run) = data.run {
            outcome.scope = run.scope;
            outcome.counts = run.counts;
            outcome.state_writes = run.staged;
        }
        outcome.fetch = fetcher.stats();
        outcome.duration = started.elapsed();
        outcome
    }
}

fn fetcher(plugin: &Plugin, req: &SyncRequest) -> Result<Fetcher, String> {
    let manifest = plugin.manifest();
    let mut endpoints = Vec::new();
    let mut texts = Vec::new();
    for (key, value) in &req.config {
        if let ConfigValue::Text(v) = value {
            texts.push((key.clone(), v.clone()));
            if manifest
                .config_key(key)
                .is_some_and(|k| k.ty == ConfigType::Endpoint)
            {
                endpoints.push((key.clone(), v.clone()));
            }
        }
    }
    let grants = Grants::new(manifest, &endpoints).map_err(|e| e.to_string())?;
    Fetcher::new(
        grants,
        req.secrets.clone(),
        &texts,
        req.limits.fetch.clone(),
    )
    .map_err(|e| e.to_string())
}

/// Names what stopped the guest: a limit, a bad record, a contract breach, or a crash.
fn failure(
    err: &wasmtime::Error,
    store: &wasmtime::Store<PluginState>,
    fetcher: &Fetcher,
) -> Failure {
    if let Some(l) = err.downcast_ref::<LimitExceeded>() {
        return Failure::Limit {
            limit: l.limit.into(),
            value: l.value.clone(),
        };
    }
    if let Some(r) = err.downcast_ref::<RecordError>() {
        return Failure::InvalidRecord(r.to_string());
    }
    if let Some(c) = err.downcast_ref::<ContractViolation>() {
        return Failure::Contract(c.0.clone());
    }
    if err.downcast_ref::<Stopped>().is_some() {
        return Failure::Stopped;
    }
    if let Some(s) = err.downcast_ref::<infragraph_core::StateError>() {
        return Failure::Setup(s.to_string());
    }
    let mut text = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    let tail = store
        .data()
        .stderr_tail
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    if !tail.is_empty() {
        let lines: Vec<_> = tail.into_iter().collect();
        text = format!("{text}; its stderr ended with: {}", lines.join(" | "));
    }
    Failure::Trap(fetcher.redact(&text))
}
