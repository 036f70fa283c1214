//! One sync of one plugin: what goes in ([`SyncRequest`]) and what comes out at its end
//! ([`SyncOutcome`], with a [`Failure`] when it did not succeed). The run itself is
//! `Runtime::sync`; while it runs, records go out as `Emission`s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infragraph_core::{ConfigType, ConfigValue, Manifest, NodeRef, RecordError, StateStore};
use infragraph_fetch::{Clients, FetchStats, Fetcher, Grants, Secrets, Tape};
use serde::Serialize;

use crate::emission::Stopped;
use crate::limits::{LimitExceeded, Limits};
use crate::run_state::{ContractViolation, RecordCounts, StderrTail};

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
    /// Whether its exchanges go to the network, are recorded, or come from a recording.
    pub tape: Tape,
    /// When set, `declare-scope` waits for the consumer's verdict on the scope: resolved,
    /// the plugin goes on; dropped, it is stopped there (the engine's lease of the scope
    /// was refused, or its writes failed), so a run in a scope another run holds sends
    /// no request. `None`: the plugin goes on at once.
    pub scope_accepted: Option<ScopeAccepted>,
}

/// The consumer's acceptance of a run's scope, for [`SyncRequest::scope_accepted`]: the
/// consumer sends `()` to accept it and drops its sender to refuse it.
pub type ScopeAccepted = tokio::sync::oneshot::Receiver<()>;

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
    /// A recording could not be written, or a replay had no answer for a request.
    #[error("{0}")]
    Recording(String),
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

impl SyncOutcome {
    /// The outcome of a run the host stopped before it ended: nothing counted.
    pub fn stopped(plugin: &str) -> SyncOutcome {
        SyncOutcome {
            plugin: plugin.into(),
            scope: None,
            result: Err(Failure::Stopped),
            counts: RecordCounts::default(),
            fetch: FetchStats::default(),
            state_writes: BTreeMap::new(),
            duration: Duration::ZERO,
        }
    }
}

impl SyncRequest {
    /// The HTTP client of this run: the manifest's hosts and the configured endpoints
    /// granted, the secrets to substitute and redact, and the config's text values to
    /// redact too, its HTTP client from `clients`. Takes the request's tape.
    pub(crate) fn fetcher(
        &mut self,
        manifest: &Manifest,
        clients: &Clients,
    ) -> Result<Fetcher, String> {
        let mut endpoints = Vec::new();
        let mut texts = Vec::new();
        for (key, value) in &self.config {
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
        Fetcher::with_tape(
            grants,
            self.secrets.clone(),
            &texts,
            self.limits.fetch.clone(),
            std::mem::take(&mut self.tape),
            clients,
        )
        .map_err(|e| e.to_string())
    }
}

impl Failure {
    /// The same failure with each of its texts passed through `f`.
    pub(crate) fn map_text(self, f: impl Fn(&str) -> String) -> Failure {
        match self {
            Failure::Setup(t) => Failure::Setup(f(&t)),
            Failure::Plugin { error, message } => Failure::Plugin {
                error,
                message: f(&message),
            },
            Failure::Limit { limit, value } => Failure::Limit {
                limit,
                value: f(&value),
            },
            Failure::InvalidRecord(t) => Failure::InvalidRecord(f(&t)),
            Failure::Contract(t) => Failure::Contract(f(&t)),
            Failure::Trap(t) => Failure::Trap(f(&t)),
            Failure::Recording(t) => Failure::Recording(f(&t)),
            Failure::Stopped => Failure::Stopped,
        }
    }

    /// Names what stopped the guest: a limit, a bad record, a contract breach, or a crash
    /// (quoting the last lines of its stderr, where a Rust panic message lands).
    /// The text is scrubbed and bounded by the caller, with every other failure's.
    pub(crate) fn from_trap(err: &wasmtime::Error, stderr_tail: &StderrTail) -> Failure {
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
        let tail = stderr_tail.lock().map(|t| t.clone()).unwrap_or_default();
        if !tail.is_empty() {
            let lines: Vec<_> = tail.into_iter().collect();
            text = format!("{text}; its stderr ended with: {}", lines.join(" | "));
        }
        Failure::Trap(text)
    }
}
