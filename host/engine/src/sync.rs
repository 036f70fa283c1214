//! Driving syncs: any source of emissions ([`sync_source`], where the engine's decisions
//! are), one wasm plugin ([`sync_one`]) or several at once ([`sync_all`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use infragraph_core::{
    BoxFuture, ChangeCounts, ConfigValue, GraphSink, Holder, Manifest, Publish, RunRecord,
    RunStatus, SinkError, StateError, StateStore,
};
use infragraph_fetch::{Secrets, Tape};
use infragraph_runtime::{
    Emission, Failure, Limits, Plugin, Runtime, ScopeAccepted, SyncOutcome, SyncRequest,
};
use tokio::sync::{mpsc, watch};

use crate::report::{Phases, RunReport};
use crate::source::Source;
use crate::write::{Take, put_edges};

/// How the engine batches and bounds its work.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records per sink transaction. 10,000 amortises a commit without holding a
    /// transaction open for long.
    pub batch_size: usize,
    /// Edges held in memory at most. Past half of it, the held edges go to the spool
    /// file on disk in the background while the next half gathers. 400,000 edges is tens
    /// of MB; a run of under 200,000 edges never touches the disk.
    pub edge_memory_rows: usize,
    /// Records deleted per cleanup transaction.
    pub cleanup_batch: usize,
    /// Plugins synced at once.
    pub concurrency: usize,
    /// When another run holds the lease of a plugin and scope: wait for it (`true`) or
    /// fail at once, naming it (`false`).
    pub wait_for_lease: bool,
    /// Turns `true` when the operator asks every run to stop: each plugin is stopped,
    /// nothing of its run is published, and the run is recorded as interrupted.
    pub stop: Option<watch::Receiver<bool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 10_000,
            edge_memory_rows: 400_000,
            cleanup_batch: 10_000,
            concurrency: 4,
            wait_for_lease: false,
            stop: None,
        }
    }
}

/// One plugin to sync, with what it is given. The engine adds the rest: the sink it
/// writes to is the plugin's state store.
pub struct Job {
    /// The plugin.
    pub plugin: Plugin,
    /// Its config, resolved and checked against its manifest.
    pub config: Vec<(String, ConfigValue)>,
    /// Credential values by credential name.
    pub secrets: Secrets,
    /// What the run may consume.
    pub limits: Limits,
    /// The name its state is kept under, when not its own (see [`Source::state_name`]).
    pub state_as: Option<String>,
    /// Whether its requests go to the network, are recorded, or are answered from a
    /// recording.
    pub tape: Tape,
    /// The named connection this job is, when it is one (`None`: the plugin's implicit
    /// default connection, named after the plugin).
    pub connection: Option<Connection>,
}

/// A named connection of a plugin, as a job runs it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Its address, `plugin/name`: what the report, the run history and the progress
    /// display call the run.
    pub address: String,
    /// Shared by the connections of its plugin: at most that many run at once.
    pub permits: Option<Arc<tokio::sync::Semaphore>>,
}

/// A job in the wasm runtime: the [`Source`] behind [`sync_one`].
struct Wasm<'a> {
    runtime: &'a Runtime,
    job: Job,
}

impl Source for Wasm<'_> {
    fn manifest(&self) -> &Manifest {
        self.job.plugin.manifest()
    }

    fn sha256(&self) -> &str {
        self.job.plugin.sha256()
    }

    fn state_name(&self) -> &str {
        self.job
            .state_as
            .as_deref()
            .unwrap_or(&self.job.plugin.manifest().name)
    }

    fn connection(&self) -> &str {
        match &self.job.connection {
            Some(c) => &c.address,
            None => &self.job.plugin.manifest().name,
        }
    }

    async fn run(
        self,
        state: Arc<dyn StateStore>,
        out: mpsc::Sender<Emission>,
        accepted: ScopeAccepted,
    ) -> SyncOutcome {
        let Job {
            plugin,
            config,
            secrets,
            limits,
            state_as: _,
            tape,
            connection: _,
        } = self.job;
        let request = SyncRequest {
            config,
            secrets,
            limits,
            state,
            tape,
            scope_accepted: Some(accepted),
        };
        self.runtime.sync(&plugin, request, out).await
    }
}

/// What a progress display is told.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A phase began: `syncing`, `writing edges`, `publishing`, `waiting for another run`.
    Phase(&'static str),
    /// The plugin's own progress.
    Plugin {
        /// Its step.
        phase: String,
        /// Units done.
        done: u64,
        /// Units in all.
        total: Option<u64>,
    },
    /// Requests the plugin asked for so far.
    Requests(u64),
    /// The run is over, recorded with this status.
    Finished(RunStatus),
    /// Records written so far.
    Written {
        /// Nodes.
        nodes: u64,
        /// Edges.
        edges: u64,
    },
}

/// Receives progress, by connection (a plugin's name for its default connection).
pub type ProgressFn = Arc<dyn Fn(&str, Progress) + Send + Sync>;

/// Syncs several plugins into one sink, at most `options.concurrency` at once. One
/// failing does not stop or disturb the others. Reports come back in job order.
///
/// A run holds its slots (the global one and its plugin's) while its plugin runs, and
/// gives them back once the plugin has ended: what is left, its relationships and its
/// publication, sends no request and holds no plugin memory. That part has a bound of its
/// own, also `options.concurrency`, taken before the slots are given back. So while runs
/// queue to publish (the embedded store publishes one at a time), others fetch meanwhile,
/// and memory stays bounded: see [`Turn`].
pub async fn sync_all<S: GraphSink + 'static>(
    runtime: Arc<Runtime>,
    sink: Arc<S>,
    jobs: Vec<Job>,
    options: Options,
    progress: ProgressFn,
) -> Vec<RunReport> {
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let writing = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = jobs.len();
    let _starting = Starting::new(sink.clone(), n);
    for (i, job) in jobs.into_iter().enumerate() {
        let (runtime, sink, options, progress, permits, writing) = (
            runtime.clone(),
            sink.clone(),
            options.clone(),
            progress.clone(),
            permits.clone(),
            writing.clone(),
        );
        set.spawn(async move {
            // The plugin's bound first, so a connection waiting for its plugin's turn
            // holds no global slot another plugin could use.
            let plugin_permits = job.connection.as_ref().and_then(|c| c.permits.clone());
            let mut running = Vec::with_capacity(2);
            if let Some(p) = plugin_permits {
                running.push(p.acquire_owned().await.expect("semaphore is never closed"));
            }
            running.push(
                permits
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed"),
            );
            let turn = Turn {
                running,
                writing: Some(writing),
            };
            let source = Wasm {
                runtime: &runtime,
                job,
            };
            (
                i,
                sync_in_turn(&sink, source, &options, &progress, turn).await,
            )
        });
    }
    let mut reports: Vec<Option<RunReport>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, report)) => reports[i] = Some(report),
            // sync_one does not panic; if it ever did, the report is missing and the
            // caller sees fewer reports than jobs.
            Err(e) => tracing::error!("a sync task failed: {e}"),
        }
    }
    reports.into_iter().flatten().collect()
}

/// The runs of one [`sync_all`], said to the sink before the first starts and taken back
/// when the last has ended, or when the command is dropped midway (Ctrl-C).
struct Starting<S: GraphSink> {
    sink: Arc<S>,
    n: usize,
}

impl<S: GraphSink> Starting<S> {
    fn new(sink: Arc<S>, n: usize) -> Starting<S> {
        sink.runs_starting(n);
        Starting { sink, n }
    }
}

impl<S: GraphSink> Drop for Starting<S> {
    fn drop(&mut self) {
        self.sink.runs_ended(self.n);
    }
}

/// Syncs one plugin into `sink`, in the wasm runtime. Never fails: every failure is in
/// the report, which is also appended to the sink's run history.
pub async fn sync_one<S: GraphSink + 'static>(
    runtime: &Runtime,
    sink: &Arc<S>,
    job: Job,
    options: &Options,
    progress: &ProgressFn,
) -> RunReport {
    sync_source(sink, Wasm { runtime, job }, options, progress).await
}

/// Syncs what `source` emits into `sink`. Never fails: every failure is in the report,
/// which is also appended to the sink's run history, whatever happened.
///
/// The decisions: nothing is written before the run holds the lease of its plugin and
/// scope; nodes are written as they come and edges once every node is in; a sink
/// failure stops the plugin. A run where both the plugin and the sink succeeded is
/// published: stale records deleted, except those of labels the plugin marked incomplete
/// (the run is then partial), and the plugin's state stored with it, so a cursor never
/// moves past records that are not in the graph. Any other run is discarded: nothing
/// deleted, no state stored, and in the embedded store nothing of it applied at all.
pub async fn sync_source<S: GraphSink + 'static, E: Source>(
    sink: &Arc<S>,
    source: E,
    options: &Options,
    progress: &ProgressFn,
) -> RunReport {
    sync_in_turn(sink, source, options, progress, Turn::default()).await
}

/// The bounds a run of [`sync_all`] is under: the slots it holds while its plugin runs,
/// and the bound on runs past that point, writing their relationships and publishing.
///
/// Memory stays bounded by both: at most `concurrency` plugins run at once, each within
/// its limits (plugin memory, responses in flight) plus the relationships it has sent so
/// far (held up to `edge_memory_rows`, then spilled to disk); and at most `concurrency`
/// runs are past their plugin, each holding only those relationships and its sink's
/// per-run buffers. A run whose plugin has ended waits for the second bound while still
/// holding its slots, so no more than that is ever held.
#[derive(Default)]
struct Turn {
    /// Given back when the plugin ends.
    running: Vec<tokio::sync::OwnedSemaphorePermit>,
    /// Taken when the plugin ends, before `running` is given back; `None`: no bound.
    writing: Option<Arc<tokio::sync::Semaphore>>,
}

impl Turn {
    /// The plugin has ended: trades the slots for a place among the runs writing.
    async fn plugin_ended(
        &mut self,
        connection: &str,
        progress: &ProgressFn,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let writing = self.writing.take()?;
        let place = match writing.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                progress(connection, Progress::Phase("waiting to write"));
                writing
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed")
            }
        };
        self.running.clear();
        Some(place)
    }
}

/// The sink's work ahead of a run ([`GraphSink::warm_up`]), on a task of its own, told to
/// stop when this is dropped, however the run ends. Told, not aborted: a task cancelled in
/// the middle of a request could hand a connection back to the sink's pool half read.
struct WarmUp(Arc<AtomicBool>);

impl WarmUp {
    fn start<S: GraphSink + 'static>(sink: &Arc<S>, manifest: &Manifest) -> WarmUp {
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, manifest, stopped) = (sink.clone(), manifest.clone(), stop.clone());
        tokio::spawn(async move { sink.warm_up(&manifest, &stopped).await });
        WarmUp(stop)
    }
}

impl Drop for WarmUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// [`sync_source`] under the bounds of `turn`.
async fn sync_in_turn<S: GraphSink + 'static, E: Source>(
    sink: &Arc<S>,
    source: E,
    options: &Options,
    progress: &ProgressFn,
    mut turn: Turn,
) -> RunReport {
    let started = Instant::now();
    let started_at = now();
    let manifest = source.manifest().clone();
    let name = manifest.name.clone();
    let connection = source.connection().to_string();
    // Everything below tells the display by connection: two connections of one plugin
    // are two lines.
    let progress: &ProgressFn = &{
        let (inner, connection) = (progress.clone(), connection.clone());
        Arc::new(move |_: &str, event| inner(&connection, event)) as ProgressFn
    };
    let mut report = RunReport {
        plugin: name.clone(),
        connection,
        plugin_version: manifest.version.clone(),
        plugin_sha256: source.sha256().into(),
        scope: None,
        update_tag: 0,
        status: RunStatus::Failed,
        started_at,
        finished_at: String::new(),
        summary: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        limits_hit: Vec::new(),
        incomplete: Vec::new(),
        nodes: BTreeMap::new(),
        edges: BTreeMap::new(),
        records: Default::default(),
        http: Default::default(),
        phases: Phases::default(),
    };
    let prepared = async {
        sink.prepare(&manifest).await?;
        sink.next_update_tag().await
    };
    let tag = match prepared.await {
        Ok(tag) => tag,
        Err(e) => {
            report.errors.push(format!("sink: {e}"));
            return finish(sink, report, started, progress).await;
        }
    };
    report.update_tag = tag;
    report.phases.prepare_ms = ms(started.elapsed());
    // What the sink can do ahead of the run's writes (a graph server plans the statements
    // the run will send) happens while the plugin fetches; it stops when the run ends.
    let _warming = WarmUp::start(sink, &manifest);

    progress(&report.connection, Progress::Phase("syncing"));
    let sync_started = Instant::now();
    let (tx, rx) = mpsc::channel(16);
    let (accept, accepted) = tokio::sync::oneshot::channel();
    let extra_labels = manifest
        .schema
        .nodes
        .iter()
        .map(|k| (k.label.clone(), k.extra_labels.clone()))
        .collect();
    let take = Take::new(
        sink.clone(),
        &name,
        &report.connection,
        tag,
        Holder::this_process(&report.started_at),
        extra_labels,
        options,
        progress.clone(),
        accept,
    );
    let state_name = source.state_name().to_string();
    let state: Arc<dyn StateStore> = if state_name == name {
        sink.clone()
    } else {
        tracing::info!(plugin = %name, state = %state_name, "state kept apart from the installed plugin's");
        Arc::new(StateAs {
            inner: sink.clone(),
            name: state_name.clone(),
        })
    };
    // Stopping drops the plugin's run (and with it the sender), so the consumer still
    // ends normally and hands back the lease and scope to discard and release.
    let stop = options.stop.clone();
    let plugin_run = async {
        tokio::select! {
            outcome = source.run(state, tx, accepted) => Some(outcome),
            () = stopped(stop) => None,
        }
    };
    let (outcome, taken) = tokio::join!(plugin_run, take.run(rx));
    // The plugin is gone, with its memory: another run may start its own.
    let _writing = turn.plugin_ended(&report.connection, progress).await;
    let interrupted = outcome.is_none();
    let outcome = outcome.unwrap_or_else(|| SyncOutcome::stopped(&name));
    report.phases.sync_ms = ms(sync_started.elapsed());
    report.records = outcome.counts.clone();
    report.http = outcome.fetch.clone();
    report.scope = outcome.scope.clone().or_else(|| taken.declared.clone());
    report.incomplete = taken.incomplete;
    report.warnings.extend(taken.warnings);
    let lease = taken.lease;
    let mut sink_error = taken.error;
    // Not one node but the scope's, and no relationship.
    let nothing_listed = taken.listed == 0 && outcome.counts.edges == 0;
    let plugin_ok = match &outcome.result {
        _ if interrupted => {
            report.errors.push(
                "interrupted: stopped by the operator before it finished; nothing of this \
                 run was published"
                    .into(),
            );
            false
        }
        // Every listing failed: whatever the plugin says, that is a failed run, and
        // nothing of it is published.
        Ok(_) if nothing_listed && !report.incomplete.is_empty() => {
            let groups = crate::report::causes(&report.incomplete);
            let first = groups.first().map(|g| g.to_string()).unwrap_or_default();
            let others = match groups.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} other causes)", n - 1),
            };
            report
                .errors
                .push(format!("sync: nothing was listed: {first}{others}"));
            false
        }
        Ok(summary) => {
            report.summary = Some(summary.clone());
            if nothing_listed {
                let scope = outcome
                    .scope
                    .as_ref()
                    .map(|s| format!("{} {}", s.label, s.value))
                    .unwrap_or_else(|| "the scope".into());
                report.warnings.push(format!(
                    "every listing came back empty: only {scope} was written; if it holds \
                     resources, check that it is the one you meant and that the credentials \
                     can see into it"
                ));
            }
            true
        }
        // The plugin stopped because the sink failed: the sink's error says why.
        Err(Failure::Stopped) if sink_error.is_some() => false,
        Err(f) => {
            if let Failure::Limit { limit, value } = f {
                report.limits_hit.push(format!("{limit} ({value})"));
            }
            // Named by phase, like a plugin refused before its run (`load`, `manifest`,
            // `config`, `credentials`) and a sink failure (`sink`).
            report.errors.push(format!("sync: {f}"));
            false
        }
    };
    let Some(w) = taken.scope else {
        if plugin_ok && sink_error.is_none() {
            report.errors.push(
                "the plugin finished without declaring a scope, so nothing could be written".into(),
            );
        }
        if let Some(e) = sink_error {
            report.errors.push(format!("sink: {e}"));
        }
        if interrupted {
            report.status = RunStatus::Interrupted;
        }
        return finish(sink, report, started, progress).await;
    };
    let Some(lease) = lease else {
        // A scope without a lease: taking it failed, which the sink error says.
        report.errors.push(format!(
            "sink: {}",
            sink_error.unwrap_or_else(|| SinkError::new("the lease was not taken"))
        ));
        if interrupted {
            report.status = RunStatus::Interrupted;
        }
        return finish(sink, report, started, progress).await;
    };

    // Edges go in after every node the plugin emitted is written, so an edge to a node
    // emitted later in the run still finds its end. A failed run publishes nothing, so
    // its edges are not written at all.
    let edges_started = Instant::now();
    let mut unresolved = BTreeMap::new();
    if plugin_ok && sink_error.is_none() {
        progress(&report.connection, Progress::Phase("writing edges"));
        let written = put_edges(
            sink.as_ref(),
            &w,
            taken.spool,
            taken.nodes,
            progress,
            &mut unresolved,
        );
        if let Err(e) = written.await {
            sink_error = Some(e);
        }
    }
    report.phases.edges_ms = ms(edges_started.elapsed());

    let cleanup_started = Instant::now();
    let ended = if plugin_ok && sink_error.is_none() {
        progress(&report.connection, Progress::Phase("publishing"));
        let published = async {
            // Deleting is only safe while no other run of this scope has taken over.
            lease.confirm(sink.as_ref()).await?;
            let publish = Publish {
                cleanup: Some(&report.incomplete),
                state: &outcome.state_writes,
                state_plugin: &state_name,
                cleanup_batch: options.cleanup_batch,
            };
            sink.publish(&w, &publish).await
        };
        match published.await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                // What is held of the run goes; a graph server keeps what it applied.
                if let Err(d) = sink.discard(&w).await {
                    tracing::warn!("discarding the run after a failed publication: {d}");
                }
                Err(e)
            }
        }
    } else {
        sink.discard(&w).await
    };
    report.phases.cleanup_ms = ms(cleanup_started.elapsed());
    if let Err(e) = lease.release(sink.as_ref()).await {
        // It expires on its own; the next run takes it over then.
        tracing::warn!("releasing the lease: {e}");
    }
    let mut counts = ChangeCounts::default();
    match ended {
        Ok(c) => counts = c,
        Err(e) if sink_error.is_none() => sink_error = Some(e),
        Err(e) => report.errors.push(format!("sink: {e}")),
    }
    for (rel, n) in unresolved {
        counts.edges.entry(rel).or_default().unresolved += n;
    }
    report.nodes = counts.nodes;
    report.edges = counts.edges;
    report.warn_unresolved(&manifest.schema);
    if let Some(e) = sink_error {
        report.errors.push(format!("sink: {e}"));
    } else if plugin_ok {
        report.status = if report.incomplete.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::Partial
        };
    }
    if interrupted {
        report.status = RunStatus::Interrupted;
    }
    finish(sink, report, started, progress).await
}

/// Resolves once `stop` turns `true`; never without one (or once its sender is gone).
async fn stopped(stop: Option<watch::Receiver<bool>>) {
    if let Some(mut stop) = stop
        && stop.wait_for(|s| *s).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

async fn finish<S: GraphSink>(
    sink: &Arc<S>,
    mut report: RunReport,
    started: Instant,
    progress: &ProgressFn,
) -> RunReport {
    report.finished_at = now();
    report.phases.total_ms = ms(started.elapsed());
    record_run(&**sink, &mut report).await;
    // Said as soon as this run is over, not when the command's last plugin is.
    progress(&report.connection, Progress::Finished(report.status));
    report
}

/// Adds `report` to `sink`'s run history. A failure to do so is said in the report
/// itself, never lost: a warning for a published run (its records are in the graph,
/// only the history lacks it), an error for one that failed already. Public for runs
/// refused before the engine had them (a secret that cannot be read), which belong in
/// the history as much as runs that failed on the way.
pub async fn record_run<S: GraphSink + ?Sized>(sink: &S, report: &mut RunReport) {
    let record = RunRecord {
        plugin: report.plugin.clone(),
        scope: report.scope.as_ref().map(|s| s.value.clone()),
        update_tag: report.update_tag,
        status: report.status,
        started_at: report.started_at.clone(),
        finished_at: report.finished_at.clone(),
        report: serde_json::to_string(&report).unwrap_or_default(),
    };
    if let Err(e) = sink.record_run(&record).await {
        match report.status {
            // What the run wrote is in the graph: only its line in the history is not.
            RunStatus::Succeeded | RunStatus::Partial => report.warnings.push(format!(
                "sink: the run is published, but the run history lacks it: {e}"
            )),
            // Failed or stopped already: it says how.
            RunStatus::Failed | RunStatus::Interrupted => {
                report.errors.push(format!("sink: recording the run: {e}"))
            }
        }
    }
}

/// A plugin's state store under another name than the plugin's.
struct StateAs<S> {
    inner: Arc<S>,
    name: String,
}

impl<S: StateStore> StateStore for StateAs<S> {
    fn get<'a>(
        &'a self,
        _plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        self.inner.get(&self.name, scope, key)
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::Semaphore;

    use super::*;

    /// A turn holding one of `slots`, bounded among the writers by `writing`.
    async fn turn(slots: &Arc<Semaphore>, writing: &Arc<Semaphore>) -> Turn {
        Turn {
            running: vec![slots.clone().acquire_owned().await.expect("open")],
            writing: Some(writing.clone()),
        }
    }

    #[tokio::test]
    async fn a_run_past_its_plugin_gives_its_slot_back_once_it_has_a_place_among_writers() {
        let (slots, writing) = (Arc::new(Semaphore::new(1)), Arc::new(Semaphore::new(1)));
        let phases = Arc::new(Mutex::new(Vec::new()));
        let progress: ProgressFn = {
            let phases = phases.clone();
            Arc::new(move |who: &str, p| {
                if let Progress::Phase(phase) = p {
                    phases.lock().unwrap().push(format!("{who}: {phase}"));
                }
            })
        };

        let mut first = turn(&slots, &writing).await;
        let place = first.plugin_ended("a", &progress).await;
        assert!(place.is_some());
        assert_eq!(slots.available_permits(), 1, "another plugin may start");

        // The writers are full: the second run keeps its slot while it waits, so no more
        // runs are alive than the two bounds allow.
        let mut second = turn(&slots, &writing).await;
        let waiting = {
            let progress = progress.clone();
            tokio::spawn(async move { second.plugin_ended("b", &progress).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert_eq!(slots.available_permits(), 0, "held while waiting to write");
        assert_eq!(*phases.lock().unwrap(), ["b: waiting to write"]);

        drop(place);
        let place = waiting.await.expect("no panic");
        assert!(place.is_some());
        assert_eq!(slots.available_permits(), 1);
        assert_eq!(writing.available_permits(), 0, "the second run writes now");
    }

    #[tokio::test]
    async fn a_run_on_its_own_has_no_bound_to_wait_for() {
        let mut turn = Turn::default();
        let progress: ProgressFn = Arc::new(|_: &str, _| {});
        assert!(turn.plugin_ended("a", &progress).await.is_none());
    }
}
