//! A sync as a front end asks for it: plugins by name, assembled into jobs with their
//! config, credentials and limits (every one resolved before anything runs), then run
//! into the graph.
//!
//! Each plugin stands alone (issue 20, point 5): one that cannot be loaded, whose
//! `manifest()` fails, or whose config or credentials cannot be resolved is reported as
//! failed, its error naming the phase, and every other plugin of the command still runs.
//! Only a name that matches no plugin at all (a typo) stops the command before anything
//! runs: that is a usage error, not a plugin's failure.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use infragraph_engine::{Job, Options, ProgressFn, RunReport};
use infragraph_fetch::{Recorder, Replay, Secrets, Tape};
use infragraph_runtime::{
    ErrorKind, Plugin, Runtime, Source, closest, resolve_config, resolve_secrets,
};

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
    /// When another run is syncing a plugin and scope: wait for it, rather than fail.
    pub wait: bool,
    /// Lets a plugin given by path run under the name of an installed one.
    pub replace_installed: bool,
    /// Lets such a replacement read and write the installed plugin's state.
    pub adopt_state: bool,
    /// Where the network goes: live, recorded, or replayed.
    pub traffic: Traffic,
    /// Turns `true` to stop every run: each is recorded as interrupted, nothing of it
    /// published.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Where a sync's HTTP exchanges come from.
#[derive(Debug, Default, Clone)]
pub enum Traffic {
    /// The network.
    #[default]
    Live,
    /// The network, each plugin's exchanges written to `<dir>/<plugin>`.
    Record(PathBuf),
    /// Each plugin's recording in `<dir>/<plugin>`: no network, and no credentials
    /// needed (nothing is sent).
    Replay(PathBuf),
}

/// The phase of a plugin's run that a refusal belongs to; its report's error starts
/// with it (`load: …`). A failure during the run itself is named `sync` (or `sink`) by
/// the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading, compiling or instantiating the file; its contract version; its pin.
    Load,
    /// Calling `manifest()` and checking what it declares.
    Manifest,
    /// Resolving its config.
    Config,
    /// Resolving its credentials.
    Credentials,
    /// Opening the recording it records into or replays from.
    Recording,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Load => "load",
            Phase::Manifest => "manifest",
            Phase::Config => "config",
            Phase::Credentials => "credentials",
            Phase::Recording => "recording",
        })
    }
}

/// A plugin of a plan that will not run, and why.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Its manifest's name, or what the plan named it (a path) when it was not loaded
    /// far enough to have one.
    pub plugin: String,
    /// Its version, when its manifest was read.
    pub version: String,
    /// Its file's sha256, when its manifest was read.
    pub sha256: String,
    /// Where it failed.
    pub phase: Phase,
    /// What is wrong and what to do; never a secret's value.
    pub error: String,
}

impl Refused {
    fn of(plugin: &Plugin, phase: Phase, error: impl fmt::Display) -> Refused {
        Refused {
            plugin: plugin.manifest().name.clone(),
            version: plugin.manifest().version.clone(),
            sha256: plugin.sha256().into(),
            phase,
            error: error.to_string(),
        }
    }

    /// Its failed run report, the error prefixed with the phase.
    pub fn report(&self) -> RunReport {
        let error = format!("{}: {}", self.phase, self.error);
        RunReport::refused(&self.plugin, &self.version, &self.sha256, &error)
    }
}

/// One plugin of a plan: ready to run, or refused before it ran.
pub enum Planned {
    /// Loaded, with its config and credentials.
    Ready(Box<Job>),
    /// It will not run; the others still do.
    Refused(Refused),
}

/// The plugins of `plan`, each loaded and its config and credentials resolved from the
/// config file and the environment, in the order named. A plugin that cannot run is
/// [`Planned::Refused`], naming the phase and what to do; only a name or path that
/// matches nothing fails the whole plan (a usage error), before anything has run.
pub async fn jobs(
    settings: &Settings,
    runtime: &Runtime,
    plan: &SyncPlan,
) -> Result<Vec<Planned>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let mut planned = Vec::new();
    let mut asked = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for name in &plan.plugins {
        if !asked.insert(name.as_str()) {
            tracing::info!(plugin = %name, "named more than once; synced once");
            continue;
        }
        let found = settings
            .catalog
            .find_for_sync(runtime, name, plan.replace_installed)
            .await;
        let (plugin, source, replaces) = match found {
            Ok(found) => found,
            Err(e) if is_usage_error(&e) => return Err(e.into()),
            Err(e) => {
                let phase = match e.kind() {
                    ErrorKind::Manifest { .. } | ErrorKind::BadManifest { .. } => Phase::Manifest,
                    _ => Phase::Load,
                };
                planned.push(Planned::Refused(Refused {
                    plugin: name.clone(),
                    version: String::new(),
                    sha256: String::new(),
                    phase,
                    error: e.to_string(),
                }));
                continue;
            }
        };
        // By name and by file: `sync scaleway ./plugins/scaleway.wasm` would be two runs
        // of one scope racing each other.
        if !seen.insert((plugin.manifest().name.clone(), plugin.sha256().to_string())) {
            tracing::info!(plugin = %plugin.manifest().name, "named more than once; synced once");
            continue;
        }
        // A replacement run without a pin keeps its state apart from the installed
        // plugin's, unless the operator adopts it: that state may hold secrets.
        let state_as = (replaces && !plan.adopt_state)
            .then(|| format!("{}@{}", plugin.manifest().name, &plugin.sha256()[..12]));
        planned.push(
            match job(settings, plugin, source, state_as, &plan.traffic, &env) {
                Ok(job) => Planned::Ready(Box::new(job)),
                Err(refused) => Planned::Refused(refused),
            },
        );
    }
    check_plugin_sections(settings, runtime, &planned).await?;
    Ok(planned)
}

/// Every `[plugins.<name>]` of the config must name a plugin: one being synced, or one
/// installed. A misspelt section would otherwise leave the plugin it meant running on
/// its defaults without a word, so it stops the command before anything runs.
async fn check_plugin_sections(
    settings: &Settings,
    runtime: &Runtime,
    planned: &[Planned],
) -> Result<(), Error> {
    let running: BTreeSet<&str> = planned
        .iter()
        .map(|p| match p {
            Planned::Ready(job) => job.plugin.manifest().name.as_str(),
            Planned::Refused(r) => r.plugin.as_str(),
        })
        .collect();
    let mut unknown = settings
        .plugins
        .keys()
        .filter(|k| !running.contains(k.as_str()))
        .peekable();
    if unknown.peek().is_none() {
        return Ok(());
    }
    let mut installed: Vec<String> = settings
        .catalog
        .all(runtime)
        .await
        .into_iter()
        .filter_map(|f| f.plugin.ok().map(|p| p.manifest().name.clone()))
        .collect();
    installed.sort();
    installed.dedup();
    for name in unknown {
        if installed.contains(name) {
            continue;
        }
        let hint = closest(name, &installed)
            .map(|c| format!("; did you mean [plugins.{c}]?"))
            .unwrap_or_default();
        return Err(Error::Config(format!(
            "the config file's [plugins.{name}] names no plugin that is installed or being \
             synced{hint} (installed: {})",
            if installed.is_empty() {
                "none".into()
            } else {
                installed.join(", ")
            }
        )));
    }
    Ok(())
}

/// Whether `e` says the plan named something that does not exist: a plugin name found
/// nowhere, or a path to no file. Anything else is that plugin's own failure.
fn is_usage_error(e: &infragraph_runtime::Error) -> bool {
    match e.kind() {
        ErrorKind::NotFound { .. } => true,
        ErrorKind::Read { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The job of one loaded plugin: its config, credentials and limits, or why it is
/// refused. Every check of one plugin before it runs belongs here, as one more
/// `Err(Refused)`, so that it fails that plugin alone.
fn job(
    settings: &Settings,
    plugin: Plugin,
    source: Source,
    state_as: Option<String>,
    traffic: &Traffic,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Job, Refused> {
    let manifest = plugin.manifest();
    let ps = settings
        .plugins
        .get(&manifest.name)
        .cloned()
        .unwrap_or_default();
    let config = resolve_config(manifest, source, &ps.config, env)
        .map_err(|e| Refused::of(&plugin, Phase::Config, e))?;
    let secrets = if matches!(traffic, Traffic::Replay(_)) {
        Secrets::new()
    } else {
        let consent = settings.consent(&manifest.name);
        resolve_secrets(manifest, source, plugin.sha256(), &consent, env)
            .map_err(|e| Refused::of(&plugin, Phase::Credentials, e))?
    };
    // One folder per plugin, so one directory serves a whole multi-plugin command.
    let tape = match traffic {
        Traffic::Live => Tape::Live,
        Traffic::Record(dir) => Recorder::create(
            &dir.join(&manifest.name),
            &manifest.name,
            &manifest.version,
            plugin.sha256(),
        )
        .map(Tape::Record)
        .map_err(|e| Refused::of(&plugin, Phase::Recording, e))?,
        Traffic::Replay(dir) => Replay::open(&dir.join(&manifest.name))
            .map(Tape::Replay)
            .map_err(|e| Refused::of(&plugin, Phase::Recording, e))?,
    };
    let mut limits = settings.limits.clone();
    ps.limits.apply(&mut limits);
    Ok(Job {
        plugin,
        config,
        secrets,
        limits,
        state_as,
        tape,
    })
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
    options.wait_for_lease |= plan.wait;
    options.stop = plan.stop.clone();
    options
}

/// What a sync gave.
#[derive(Debug)]
pub struct Synced {
    /// A report per plugin, in the order named; a plugin's failure is in its report,
    /// a refused plugin's too (those are not in the run history: they never ran).
    pub reports: Vec<RunReport>,
    /// Plugins that ended without a report (their task panicked): a failure too.
    pub lost: Vec<String>,
}

/// Assembles the jobs of `plan`, opens the graph at `location` (a server is reached
/// before any plugin runs) and syncs them into it. `on_start` is told the names of the
/// plugins that will run once they are known, before the first runs (a progress display
/// draws its lines). When every plugin is refused, nothing is opened or written.
pub async fn sync(
    settings: &Settings,
    location: &Location,
    plan: &SyncPlan,
    on_start: impl FnOnce(&[String]) -> ProgressFn,
) -> Result<Synced, Error> {
    let runtime = Arc::new(settings.runtime()?);
    // A slot per plugin, in the order named: a refused plugin's report now, a running
    // one's when it ends.
    let mut slots: Vec<Option<RunReport>> = Vec::new();
    let mut jobs_ = Vec::new();
    for planned in jobs(settings, &runtime, plan).await? {
        match planned {
            Planned::Ready(job) => {
                slots.push(None);
                jobs_.push(*job);
            }
            Planned::Refused(r) => {
                // Its report says why, and every front end shows the report: the log
                // repeating it at warn would say it twice.
                tracing::debug!(plugin = %r.plugin, phase = %r.phase, "not run: {}", r.error);
                slots.push(Some(r.report()));
            }
        }
    }
    let names: Vec<String> = jobs_
        .iter()
        .map(|j| j.plugin.manifest().name.clone())
        .collect();
    let mut ran = Vec::new();
    if !jobs_.is_empty() {
        let graph = Arc::new(Graph::open(location, Intent::Write).await?);
        let progress = on_start(&names);
        let options = options(settings, plan);
        ran = infragraph_engine::sync_all(runtime, graph, jobs_, options, progress).await;
    }
    // The engine returns reports in job order, leaving out any it lost.
    let mut ran = ran.into_iter().peekable();
    let mut lost = Vec::new();
    for (slot, name) in slots.iter_mut().filter(|s| s.is_none()).zip(&names) {
        match ran.next_if(|r| &r.plugin == name) {
            Some(report) => *slot = Some(report),
            None => lost.push(name.clone()),
        }
    }
    Ok(Synced {
        reports: slots.into_iter().flatten().collect(),
        lost,
    })
}
