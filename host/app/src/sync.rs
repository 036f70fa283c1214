//! A sync as a front end asks for it: plugins by name, assembled into jobs with their
//! config, credentials and limits (every one resolved before anything runs, so a typo
//! fails with nothing done), then run into the graph.

use std::collections::BTreeSet;
use std::sync::Arc;

use infragraph_engine::{Job, Options, ProgressFn, RunReport};
use infragraph_runtime::{Runtime, resolve_config, resolve_secrets};

use crate::error::Error;
use crate::graph::{Graph, Intent, Location};
use crate::settings::Settings;

/// What a front end asks of a sync beyond the settings.
#[derive(Debug, Default, Clone)]
pub struct SyncPlan {
    /// Plugins by name or path to a `.wasm` file. A plugin named twice runs once.
    pub plugins: Vec<String>,
    /// Records per write transaction, over the config file's.
    pub batch_size: Option<usize>,
    /// Plugins synced at once, over the config file's.
    pub concurrency: Option<usize>,
}

/// The jobs of `plan`, each plugin loaded and its config and credentials resolved from
/// the config file and the environment. Fails on the first plugin that cannot run,
/// naming it and what is missing.
pub async fn jobs(
    settings: &Settings,
    runtime: &Runtime,
    plan: &SyncPlan,
) -> Result<Vec<Job>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let mut jobs = Vec::new();
    let mut seen = BTreeSet::new();
    for name in &plan.plugins {
        let (plugin, _) = settings.catalog.find(runtime, name).await?;
        let manifest = plugin.manifest();
        // By name and by file: `sync scaleway scaleway` or the same file twice would be
        // two runs of one scope racing each other.
        if !seen.insert((manifest.name.clone(), plugin.sha256().to_string())) {
            tracing::info!(plugin = %manifest.name, "named more than once; synced once");
            continue;
        }
        let ps = settings
            .plugins
            .get(&manifest.name)
            .cloned()
            .unwrap_or_default();
        let config = resolve_config(manifest, &ps.config, &env)?;
        let secrets = resolve_secrets(manifest, &ps.secret_files, &env)?;
        let mut limits = settings.limits.clone();
        ps.limits.apply(&mut limits);
        jobs.push(Job {
            plugin,
            config,
            secrets,
            limits,
        });
    }
    Ok(jobs)
}

/// The engine's options for `plan`: the config file's, overridden by the plan.
pub fn options(settings: &Settings, plan: &SyncPlan) -> Options {
    let mut options = settings.engine.clone();
    if let Some(n) = plan.batch_size {
        options.batch_size = n.max(1);
    }
    if let Some(n) = plan.concurrency {
        options.concurrency = n.max(1);
    }
    options
}

/// What a sync gave.
#[derive(Debug)]
pub struct Synced {
    /// A report per plugin, in the order named; a plugin's failure is in its report.
    pub reports: Vec<RunReport>,
    /// Plugins that ended without a report (their task panicked): a failure too.
    pub lost: Vec<String>,
}

/// Assembles the jobs of `plan`, opens the graph at `location` (a server is reached
/// before any plugin runs) and syncs them into it. `on_start` is told the plugins' names
/// once they are known, before the first runs (a progress display draws its lines).
pub async fn sync(
    settings: &Settings,
    location: &Location,
    plan: &SyncPlan,
    on_start: impl FnOnce(&[String]) -> ProgressFn,
) -> Result<Synced, Error> {
    let runtime = Arc::new(settings.runtime()?);
    let jobs = jobs(settings, &runtime, plan).await?;
    let graph = Arc::new(Graph::open(location, Intent::Write).await?);
    let names: Vec<String> = jobs
        .iter()
        .map(|j| j.plugin.manifest().name.clone())
        .collect();
    let progress = on_start(&names);
    let reports =
        infragraph_engine::sync_all(runtime, graph, jobs, options(settings, plan), progress).await;
    let lost = names
        .into_iter()
        .filter(|n| !reports.iter().any(|r| &r.plugin == n))
        .collect();
    Ok(Synced { reports, lost })
}
