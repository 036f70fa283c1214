//! Driving syncs: any source of emissions ([`sync_source`], where the engine's decisions
//! are), one wasm plugin ([`sync_one`]) or several at once ([`sync_all`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use infragraph_core::{
    ChangeCounts, ConfigValue, GraphSink, Manifest, RunRecord, RunStatus, SinkError, StateStore,
};
use infragraph_fetch::Secrets;
use infragraph_runtime::{Emission, Failure, Limits, Plugin, Runtime, SyncOutcome, SyncRequest};
use tokio::sync::mpsc;

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 10_000,
            edge_memory_rows: 400_000,
            cleanup_batch: 10_000,
            concurrency: 4,
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

    async fn run(self, state: Arc<dyn StateStore>, out: mpsc::Sender<Emission>) -> SyncOutcome {
        let Job {
            plugin,
            config,
            secrets,
            limits,
        } = self.job;
        let request = SyncRequest {
            config,
            secrets,
            limits,
            state,
        };
        self.runtime.sync(&plugin, request, out).await
    }
}

/// What a progress display is told.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A phase began: `syncing`, `writing edges`, `cleaning up`, `done`, `failed`.
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
    /// Records written so far.
    Written {
        /// Nodes.
        nodes: u64,
        /// Edges.
        edges: u64,
    },
}

/// Receives progress, by plugin name.
pub type ProgressFn = Arc<dyn Fn(&str, Progress) + Send + Sync>;

/// Syncs several plugins into one sink, at most `options.concurrency` at once. One
/// failing does not stop or disturb the others. Reports come back in job order.
pub async fn sync_all<S: GraphSink + 'static>(
    runtime: Arc<Runtime>,
    sink: Arc<S>,
    jobs: Vec<Job>,
    options: Options,
    progress: ProgressFn,
) -> Vec<RunReport> {
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        let (runtime, sink, options, progress, permits) = (
            runtime.clone(),
            sink.clone(),
            options.clone(),
            progress.clone(),
            permits.clone(),
        );
        set.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (i, sync_one(&runtime, &sink, job, &options, &progress).await)
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
/// The decisions: nodes are written as they come and edges once every node is in (also
/// after a plugin failure: what it emitted is true as far as it goes); a sink failure
/// stops the plugin. Stale records are deleted only after a run where both the plugin
/// and the sink succeeded, keeping those of labels the plugin marked incomplete (the run
/// is then partial); the plugin's state writes are committed after that, last, so a
/// cursor never moves past records that are not in the graph.
pub async fn sync_source<S: GraphSink + 'static, E: Source>(
    sink: &Arc<S>,
    source: E,
    options: &Options,
    progress: &ProgressFn,
) -> RunReport {
    let started = Instant::now();
    let started_at = now();
    let manifest = source.manifest().clone();
    let name = manifest.name.clone();
    let mut report = RunReport {
        plugin: name.clone(),
        plugin_version: manifest.version.clone(),
        plugin_sha256: source.sha256().into(),
        scope: None,
        update_tag: 0,
        status: RunStatus::Failed,
        started_at,
        finished_at: String::new(),
        summary: None,
        errors: Vec::new(),
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
            return finish(sink, report, started).await;
        }
    };
    report.update_tag = tag;
    report.phases.prepare_ms = ms(started.elapsed());

    progress(&name, Progress::Phase("syncing"));
    let sync_started = Instant::now();
    let (tx, rx) = mpsc::channel(16);
    let extra_labels = manifest
        .schema
        .nodes
        .iter()
        .map(|k| (k.label.clone(), k.extra_labels.clone()))
        .collect();
    let take = Take::new(
        sink.clone(),
        &name,
        tag,
        extra_labels,
        options,
        progress.clone(),
    );
    let state: Arc<dyn StateStore> = sink.clone();
    let (outcome, taken) = tokio::join!(source.run(state, tx), take.run(rx));
    report.phases.sync_ms = ms(sync_started.elapsed());
    report.records = outcome.counts.clone();
    report.http = outcome.fetch.clone();
    report.scope = outcome.scope.clone();
    report.incomplete = taken.incomplete;
    let mut sink_error = taken.error;
    let plugin_ok = match &outcome.result {
        Ok(summary) => {
            report.summary = Some(summary.clone());
            true
        }
        // The plugin stopped because the sink failed: the sink's error says why.
        Err(Failure::Stopped) if sink_error.is_some() => false,
        Err(f) => {
            if let Failure::Limit { limit, value } = f {
                report.limits_hit.push(format!("{limit} ({value})"));
            }
            report.errors.push(f.to_string());
            false
        }
    };
    let Some(w) = taken.scope else {
        if plugin_ok {
            report.errors.push(
                "the plugin finished without declaring a scope, so nothing could be written".into(),
            );
        }
        if let Some(e) = sink_error {
            report.errors.push(format!("sink: {e}"));
        }
        return finish(sink, report, started).await;
    };

    // Edges go in after every node the plugin emitted is written, so an edge to a node
    // emitted later in the run still finds its end. Nodes from a failed run are true
    // as far as they go, so their edges are written too; only deletion is withheld.
    let edges_started = Instant::now();
    let mut unresolved = BTreeMap::new();
    if sink_error.is_none() {
        progress(&name, Progress::Phase("writing edges"));
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

    let mut counts = ChangeCounts::default();
    let cleanup_started = Instant::now();
    if plugin_ok && sink_error.is_none() {
        progress(&name, Progress::Phase("cleaning up"));
        let done = async {
            let deleted = sink
                .cleanup(&w, &report.incomplete, options.cleanup_batch)
                .await?;
            sink.commit_state(&name, &w.scope, &outcome.state_writes)
                .await?;
            Ok::<_, SinkError>(deleted)
        };
        match done.await {
            Ok(deleted) => counts = deleted,
            Err(e) => sink_error = Some(e),
        }
    }
    report.phases.cleanup_ms = ms(cleanup_started.elapsed());
    match sink.changes(&w).await {
        Ok(changes) => counts.absorb(&changes),
        Err(e) => report.errors.push(format!("sink: counting changes: {e}")),
    }
    for (rel, n) in unresolved {
        counts.edges.entry(rel).or_default().unresolved += n;
    }
    report.nodes = counts.nodes;
    report.edges = counts.edges;
    if let Some(e) = sink_error {
        report.errors.push(format!("sink: {e}"));
    } else if plugin_ok {
        report.status = if report.incomplete.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::Partial
        };
    }
    finish(sink, report, started).await
}

async fn finish<S: GraphSink>(sink: &Arc<S>, mut report: RunReport, started: Instant) -> RunReport {
    report.finished_at = now();
    report.phases.total_ms = ms(started.elapsed());
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
        report.errors.push(format!("sink: recording the run: {e}"));
        report.status = RunStatus::Failed;
    }
    report
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
