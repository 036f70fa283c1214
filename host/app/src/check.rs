//! `connections check`: whether each connection's credentials are accepted and its
//! endpoint answers, without writing anything. Each plugin runs as in a sync, its
//! emissions dropped and its state empty, until its first request carrying a
//! credential is answered (see `infragraph_fetch::Check`); then its run is ended.

use std::sync::Arc;
use std::time::Duration;

use infragraph_core::{BoxFuture, StateError, StateStore};
use infragraph_engine::Job;
use infragraph_fetch::{Check, Checked, Tape};
use infragraph_runtime::{Runtime, SyncRequest};
use serde::Serialize;

use crate::error::Error;
use crate::settings::Settings;
use crate::sync::{Planned, SyncPlan, jobs};

/// A check may take this long at most: a sign-in, with its retries.
const CHECK_TIME: Duration = Duration::from_secs(120);

/// What a check of one connection found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The connection (`plugin/name`, or the plugin for its default connection).
    pub connection: String,
    /// How it went.
    pub status: CheckStatus,
    /// The request that decided, redacted, when one did.
    pub url: Option<String>,
    /// Its HTTP status, when it was answered.
    pub http_status: Option<u16>,
    /// What was answered or went wrong, redacted; empty when verified.
    pub message: String,
}

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The credentials were accepted.
    Verified,
    /// The credentials were refused (401, 403, or a GraphQL refusal).
    Refused,
    /// The endpoint did not answer usefully: unreachable, timed out, another error.
    Unreachable,
    /// The connection could not run: its config or credentials are missing or wrong.
    NotRun,
    /// The plugin ended without sending a credential: nothing was verified.
    Unchecked,
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckStatus::Verified => "verified",
            CheckStatus::Refused => "refused",
            CheckStatus::Unreachable => "unreachable",
            CheckStatus::NotRun => "not run",
            CheckStatus::Unchecked => "unchecked",
        })
    }
}

/// Checks the connections `targets` names (as `sync` takes them; empty: every configured
/// connection), at most the configured concurrency at once, in the order named.
pub async fn check(settings: &Settings, targets: Vec<String>) -> Result<Vec<CheckReport>, Error> {
    let runtime = Arc::new(settings.runtime()?);
    let plan = SyncPlan {
        plugins: targets,
        ..SyncPlan::default()
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(
        settings.engine.concurrency.max(1),
    ));
    let mut set = tokio::task::JoinSet::new();
    let mut reports: Vec<Option<CheckReport>> = Vec::new();
    for planned in jobs(settings, &runtime, &plan).await? {
        match planned {
            Planned::Refused(r) => reports.push(Some(CheckReport {
                connection: r.address().to_string(),
                status: CheckStatus::NotRun,
                url: None,
                http_status: None,
                message: format!("{}: {}", r.phase, r.error),
            })),
            Planned::Ready(job) => {
                let (runtime, permits, at) = (runtime.clone(), permits.clone(), reports.len());
                reports.push(None);
                set.spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    (at, check_one(&runtime, *job).await)
                });
            }
        }
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((at, report)) = joined {
            reports[at] = Some(report);
        }
    }
    Ok(reports.into_iter().flatten().collect())
}

async fn check_one(runtime: &Runtime, job: Job) -> CheckReport {
    let connection = match &job.connection {
        Some(c) => c.address.clone(),
        None => job.plugin.manifest().name.clone(),
    };
    let check = Arc::new(Check::new());
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    // What it emits is read and dropped: a check writes nothing.
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let mut limits = job.limits;
    limits.sync_time = limits.sync_time.min(CHECK_TIME);
    let request = SyncRequest {
        config: job.config,
        secrets: job.secrets,
        limits,
        state: Arc::new(NoState),
        tape: Tape::Check(check.clone()),
        // Nothing is leased: a check writes nothing.
        scope_accepted: None,
    };
    let outcome = runtime.sync(&job.plugin, request, tx).await;
    let _ = drain.await;
    let (status, url, http_status, message) = match check.outcome() {
        Some(Checked::Verified { url, status }) => (
            CheckStatus::Verified,
            Some(url),
            Some(status),
            String::new(),
        ),
        Some(Checked::Refused {
            url,
            status,
            message,
        }) => (CheckStatus::Refused, Some(url), Some(status), message),
        Some(Checked::Failed { url, message }) => {
            (CheckStatus::Unreachable, Some(url), None, message)
        }
        None => {
            let message = match outcome.result {
                Ok(_) => "the plugin ended without sending a credential".to_string(),
                Err(e) => format!("the plugin failed before sending a credential: {e}"),
            };
            (CheckStatus::Unchecked, None, None, message)
        }
    };
    CheckReport {
        connection,
        status,
        url,
        http_status,
        message,
    }
}

/// The state of a check: none. A plugin that keeps a secret in its state (Azure's
/// abstraction seed) makes a new one, which is dropped with the run.
struct NoState;

impl StateStore for NoState {
    fn get<'a>(
        &'a self,
        _plugin: &'a str,
        _scope: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(async { Ok(None) })
    }
}
