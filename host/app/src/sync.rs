//! A sync as a front end asks for it: plugins by name, assembled into jobs with their
//! config, credentials and limits (every one resolved before anything runs), then run
//! into the graph.
//!
//! Each plugin stands alone (issue 20, point 5): one that cannot be loaded, whose
//! `manifest()` fails, or whose config or credentials cannot be resolved is reported as
//! failed, its error naming the phase, and every other plugin of the command still runs.
//! Only a name on the command line that matches no plugin at all (a typo) stops the
//! command before anything runs: that is a usage error, not a plugin's failure. A
//! connection of the config file naming a plugin that is not installed is that
//! connection's failure, like any other of its config.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use infragraph_core::RunStatus;
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
    /// What to sync, each one of: a plugin's name (every connection of it, or its
    /// default connection when it has none), a connection (`plugin/name`, or its bare
    /// name), or a path to a `.wasm` file. Empty: every configured connection. Anything
    /// named twice runs once.
    pub plugins: Vec<String>,
    /// Only the connections of this shard, `(k, n)` with `1 <= k <= n`: see [`shard_of`].
    pub shard: Option<(u32, u32)>,
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
    /// Skips linking people (`[people]`) after the runs.
    pub skip_people: bool,
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
    /// The named connection's address (`plugin/name`), when it was one.
    pub connection: Option<String>,
}

impl Refused {
    fn of(plugin: &Plugin, phase: Phase, error: impl fmt::Display) -> Refused {
        Refused {
            plugin: plugin.manifest().name.clone(),
            version: plugin.manifest().version.clone(),
            sha256: plugin.sha256().into(),
            phase,
            error: error.to_string(),
            connection: None,
        }
    }

    /// What the refused run is called: its connection, else its plugin.
    pub fn address(&self) -> &str {
        self.connection.as_deref().unwrap_or(&self.plugin)
    }

    /// Its failed run report, the error prefixed with the phase.
    pub fn report(&self) -> RunReport {
        let error = format!("{}: {}", self.phase, self.error);
        let mut report = RunReport::refused(&self.plugin, &self.version, &self.sha256, &error);
        report.connection = self.address().to_string();
        report
    }
}

/// One plugin of a plan: ready to run, or refused before it ran.
pub enum Planned {
    /// Loaded, with its config and credentials.
    Ready(Box<Job>),
    /// It will not run; the others still do.
    Refused(Refused),
}

/// One thing a plan runs: a plugin (by name or path) as one of its connections.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The plugin's name, or the path to its file.
    pub plugin: String,
    /// The named connection, or `None` for the plugin's implicit default connection.
    pub connection: Option<String>,
}

impl Target {
    /// What the run is called: `plugin/name`, or the plugin for its default connection.
    pub fn address(&self) -> String {
        match &self.connection {
            Some(c) => format!("{}/{c}", self.plugin),
            None => self.plugin.clone(),
        }
    }

    /// What `--shard` splits by: the connection's name (the plugin's for its default
    /// connection), so a split does not move when the config file is reordered.
    fn shard_key(&self) -> &str {
        self.connection.as_deref().unwrap_or(&self.plugin)
    }
}

/// Which shard of `n` a connection named `name` belongs to, 1-based: the first eight
/// bytes of the name's SHA-256, modulo `n`. Stable across machines, versions and the
/// order of the config file, so N machines each given `--shard k/N` split the
/// connections between them with none left out or taken twice.
pub fn shard_of(name: &str, n: u32) -> u32 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    (head % u64::from(n.max(1))) as u32 + 1
}

/// What `plan` names, as connections, in the order named (see [`SyncPlan::plugins`]),
/// then cut to its shard. A connection or `plugin/name` that does not exist is a usage
/// error naming the likely one.
pub fn targets(settings: &Settings, plan: &SyncPlan) -> Result<Vec<Target>, Error> {
    let named = |name: &String| Target {
        plugin: settings.connections[name].plugin.clone(),
        connection: Some(name.clone()),
    };
    let mut out: Vec<Target> = Vec::new();
    if plan.plugins.is_empty() {
        if settings.connections.is_empty() {
            return Err(Error::Usage(
                "nothing to sync: name a plugin (`infragraph sync scaleway`), or configure \
                 connections in the config file (`[connections.<name>]` with \
                 `plugin = \"scaleway\"`), which `infragraph sync` alone then syncs"
                    .into(),
            ));
        }
        out.extend(settings.connections.keys().map(named));
    }
    for item in &plan.plugins {
        let is_path = item.ends_with(".wasm") || std::path::Path::new(item).is_file();
        let found: Vec<Target> = if is_path {
            vec![Target {
                plugin: item.clone(),
                connection: None,
            }]
        } else if let Some((plugin, name)) = item.split_once('/') {
            match settings.connections.get(name) {
                Some(c) if c.plugin == plugin => vec![named(&name.to_string())],
                _ => {
                    let known: Vec<String> = settings
                        .connections
                        .iter()
                        .map(|(n, c)| format!("{}/{n}", c.plugin))
                        .collect();
                    let hint = closest(item, &known)
                        .map(|k| format!("; did you mean {k}?"))
                        .unwrap_or_default();
                    return Err(Error::Usage(format!(
                        "no connection {item} in the config file{hint} (connections: {})",
                        if known.is_empty() {
                            "none; add one as [connections.<name>] with plugin = \"…\"".into()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
        } else if settings.connections.contains_key(item) {
            vec![named(item)]
        } else {
            let of_plugin: Vec<Target> = settings
                .connections
                .iter()
                .filter(|(_, c)| &c.plugin == item)
                .map(|(n, _)| named(n))
                .collect();
            if of_plugin.is_empty() {
                vec![Target {
                    plugin: item.clone(),
                    connection: None,
                }]
            } else {
                of_plugin
            }
        };
        for t in found {
            if out.contains(&t) {
                tracing::info!(connection = %t.address(), "named more than once; synced once");
            } else {
                out.push(t);
            }
        }
    }
    if let Some((k, n)) = plan.shard {
        out.retain(|t| shard_of(t.shard_key(), n) == k);
    }
    Ok(out)
}

/// The connections of `plan`, each with its plugin loaded and its config and
/// credentials resolved from the config file and the environment, in the order named. A
/// connection that cannot run is [`Planned::Refused`], naming the phase and what to do
/// (also one whose plugin is not installed); only a name or path on the command line
/// that matches nothing fails the whole plan (a usage error), before anything has run.
pub async fn jobs(
    settings: &Settings,
    runtime: &Runtime,
    plan: &SyncPlan,
) -> Result<Vec<Planned>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let mut planned = Vec::new();
    let mut seen = BTreeSet::new();
    // Loaded once per plugin, however many of its connections run.
    let mut loaded: std::collections::HashMap<String, Result<(Plugin, Source, bool), Refused>> =
        Default::default();
    // One bound per plugin, shared by its connections.
    let mut bounds: std::collections::HashMap<String, Arc<tokio::sync::Semaphore>> =
        Default::default();
    for target in targets(settings, plan)? {
        if !loaded.contains_key(&target.plugin) {
            let found = settings
                .catalog
                .find_for_sync(runtime, &target.plugin, plan.replace_installed)
                .await;
            let entry = match found {
                Ok(found) => Ok(found),
                // Named on the command line: a typo in the command, which stops it.
                Err(e) if is_usage_error(&e) && target.connection.is_none() => {
                    return Err(e.into());
                }
                // Named by a connection of the config file: that connection's failure,
                // not the others' (a plugin missing where a shared config is used, a
                // typo in one team's section, must not stop every account's sync).
                Err(e) if is_usage_error(&e) => Err(Refused {
                    plugin: target.plugin.clone(),
                    version: String::new(),
                    sha256: String::new(),
                    phase: Phase::Config,
                    // Kept for every connection naming the plugin: their reports name
                    // the connection, so this does not.
                    error: format!("the config file names plugin {:?}: {e}", target.plugin),
                    connection: None,
                }),
                Err(e) => {
                    let phase = match e.kind() {
                        ErrorKind::Manifest { .. } | ErrorKind::BadManifest { .. } => {
                            Phase::Manifest
                        }
                        _ => Phase::Load,
                    };
                    Err(Refused {
                        plugin: target.plugin.clone(),
                        version: String::new(),
                        sha256: String::new(),
                        phase,
                        error: e.to_string(),
                        connection: None,
                    })
                }
            };
            loaded.insert(target.plugin.clone(), entry);
        }
        let (plugin, source, replaces) = match &loaded[&target.plugin] {
            Ok(found) => found.clone(),
            Err(refused) => {
                let mut refused = refused.clone();
                refused.connection = target.connection.as_ref().map(|_| target.address());
                planned.push(Planned::Refused(refused));
                continue;
            }
        };
        // By name and by file: `sync scaleway ./plugins/scaleway.wasm` would be two runs
        // of one scope racing each other.
        let key = (
            plugin.manifest().name.clone(),
            plugin.sha256().to_string(),
            target.connection.clone(),
        );
        if !seen.insert(key) {
            tracing::info!(plugin = %plugin.manifest().name, "named more than once; synced once");
            continue;
        }
        // A replacement run without a pin keeps its state apart from the installed
        // plugin's, unless the operator adopts it: that state may hold secrets.
        let state_as = (replaces && !plan.adopt_state)
            .then(|| format!("{}@{}", plugin.manifest().name, &plugin.sha256()[..12]));
        let connection = target.connection.as_ref().map(|name| {
            let limit = settings.connections[name].plugin_concurrency;
            infragraph_engine::Connection {
                address: format!("{}/{name}", plugin.manifest().name),
                permits: limit.map(|n| {
                    bounds
                        .entry(plugin.manifest().name.clone())
                        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n.max(1))))
                        .clone()
                }),
            }
        });
        planned.push(
            match job(
                settings,
                plugin,
                source,
                state_as,
                connection,
                &plan.traffic,
                &env,
            ) {
                Ok(job) => Planned::Ready(Box::new(job)),
                Err(refused) => Planned::Refused(*refused),
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
    connection: Option<infragraph_engine::Connection>,
    traffic: &Traffic,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Job, Box<Refused>> {
    let manifest = plugin.manifest();
    let name = connection.as_ref().map(|c| {
        c.address
            .rsplit_once('/')
            .map_or("", |(_, n)| n)
            .to_string()
    });
    let refuse = |phase: Phase, e: &dyn fmt::Display| {
        let mut r = Refused::of(&plugin, phase, e);
        r.connection = connection.as_ref().map(|c| c.address.clone());
        Box::new(r)
    };
    let (ps, consent, config) = match &name {
        Some(name) => {
            let (_, ps) = settings
                .connection(name)
                .expect("targets name configured connections only");
            let consent = infragraph_runtime::Consent {
                connection: Some(name.clone()),
                ..settings.consent(&manifest.name)
            };
            let consent = infragraph_runtime::Consent {
                secrets: ps.secrets.clone(),
                ..consent
            };
            let config = infragraph_runtime::resolve_connection_config(manifest, name, &ps.config)
                .map_err(|e| refuse(Phase::Config, &e))?;
            (ps, consent, config)
        }
        None => {
            let ps = settings
                .plugins
                .get(&manifest.name)
                .cloned()
                .unwrap_or_default();
            let config = resolve_config(manifest, source, &ps.config, env)
                .map_err(|e| refuse(Phase::Config, &e))?;
            (ps, settings.consent(&manifest.name), config)
        }
    };
    let secrets = if matches!(traffic, Traffic::Replay(_)) {
        Secrets::new()
    } else {
        resolve_secrets(manifest, &config, source, plugin.sha256(), &consent, env)
            .map_err(|e| refuse(Phase::Credentials, &e))?
    };
    // One folder per connection, so one directory serves a whole command:
    // `<dir>/<plugin>` for a default connection, `<dir>/<plugin>/<name>` for a named one
    // (a plugin with named connections has no default one to collide with).
    let folder = match &name {
        Some(n) => dir_of(traffic).map(|d| d.join(&manifest.name).join(n)),
        None => dir_of(traffic).map(|d| d.join(&manifest.name)),
    };
    let tape = match (traffic, folder) {
        (Traffic::Record(_), Some(folder)) => {
            Recorder::create(&folder, &manifest.name, &manifest.version, plugin.sha256())
                .map(Tape::Record)
                .map_err(|e| refuse(Phase::Recording, &e))?
        }
        (Traffic::Replay(_), Some(folder)) => Replay::open(&folder)
            .map(Tape::Replay)
            .map_err(|e| refuse(Phase::Recording, &e))?,
        _ => Tape::Live,
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
        connection,
    })
}

/// The folder a recorded or replayed sync keeps its exchanges in.
fn dir_of(traffic: &Traffic) -> Option<&PathBuf> {
    match traffic {
        Traffic::Live => None,
        Traffic::Record(dir) | Traffic::Replay(dir) => Some(dir),
    }
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
    /// a refused plugin's too (and in the run history, like every other run's).
    pub reports: Vec<RunReport>,
    /// Plugins that ended without a report (their task panicked): a failure too.
    pub lost: Vec<String>,
}

/// Assembles the jobs of `plan`, opens the graph at `location` (a server is reached
/// before any plugin runs) and syncs them into it. `on_start` is told the names of the
/// plugins that will run once they are known, before the first runs (a progress display
/// draws its lines). A plugin refused before it ran is added to the run history all the
/// same, even when every plugin is refused.
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
        .map(|j| match &j.connection {
            Some(c) => c.address.clone(),
            None => j.plugin.manifest().name.clone(),
        })
        .collect();
    let mut ran = Vec::new();
    let mut linked = None;
    let recordable = slots.iter().flatten().any(is_recordable);
    if jobs_.is_empty() && recordable {
        // Every connection refused: nothing will run, but the history should still say
        // when each last failed and why (`runs`, `connections list`). A graph that cannot
        // be opened must not hide the refusals, so it is said in their reports instead.
        match Graph::open(location, Intent::Write).await {
            Ok(graph) => record_refused(&graph, &mut slots).await,
            Err(e) => {
                for report in slots.iter_mut().flatten().filter(|r| is_recordable(r)) {
                    report.errors.push(format!("sink: recording the run: {e}"));
                }
            }
        }
    }
    if !jobs_.is_empty() {
        let graph = Arc::new(Graph::open(location, Intent::Write).await?);
        record_refused(&graph, &mut slots).await;
        let progress = on_start(&names);
        let options = options(settings, plan);
        ran = infragraph_engine::sync_all(
            runtime,
            graph.clone(),
            jobs_,
            options.clone(),
            progress.clone(),
        )
        .await;
        let published = ran
            .iter()
            .any(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Partial));
        if let (Some(rules), false, true) = (&settings.people, plan.skip_people, published) {
            // The runs are published and reported whatever happens here: a failure to
            // read the accounts is said, not allowed to hide the runs' reports.
            match crate::people::link(&graph, rules, &options, &progress).await {
                Ok(report) => linked = report,
                Err(e) => tracing::error!("linking people ([people] rules): {e}"),
            }
        }
    }
    // The engine returns reports in job order, leaving out any it lost.
    let mut ran = ran.into_iter().peekable();
    let mut lost = Vec::new();
    for (slot, name) in slots.iter_mut().filter(|s| s.is_none()).zip(&names) {
        match ran.next_if(|r| r.connection() == name) {
            Some(report) => *slot = Some(report),
            None => lost.push(name.clone()),
        }
    }
    let mut reports: Vec<RunReport> = slots.into_iter().flatten().collect();
    reports.extend(linked);
    Ok(Synced { reports, lost })
}

/// Adds the reports of the connections refused before they ran (the only reports in
/// `slots` yet) to `graph`'s run history, so that `runs` and `connections list` show the
/// failure and its time rather than a connection that never ran.
async fn record_refused(graph: &Graph, slots: &mut [Option<RunReport>]) {
    for report in slots.iter_mut().flatten().filter(|r| is_recordable(r)) {
        infragraph_engine::record_run(graph, report).await;
    }
}

/// Whether a refused run has a place in the history: a file named by path that could not
/// be read as a plugin has no plugin name to file it under, and is left to the command's
/// own report.
fn is_recordable(report: &RunReport) -> bool {
    infragraph_core::is_plugin_name(&report.plugin)
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    /// The split must never change: machines running different versions, or a version
    /// upgraded between two runs, would otherwise sync some connections twice and others
    /// not at all.
    #[test]
    fn the_shard_of_a_name_is_pinned() {
        let got: Vec<u32> = ["prod", "staging", "team-0", "team-1", "scaleway"]
            .iter()
            .map(|n| shard_of(n, 3))
            .collect();
        assert_eq!(got, PINNED);
        assert!((1..=5).all(|n| (1..=n).contains(&shard_of("anything", n))));
        assert_eq!(shard_of("x", 1), 1);
    }

    const PINNED: [u32; 5] = [2, 2, 1, 2, 2];
}
