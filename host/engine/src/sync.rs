//! Driving syncs: one plugin ([`sync_one`]) or several at once ([`sync_all`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use infragraph_core::{
    ChangeCounts, GraphSink, Incomplete, RunRecord, RunStatus, SinkError, WriteScope,
};
use infragraph_runtime::{Emission, Failure, Plugin, Runtime, SyncRequest};
use tokio::sync::mpsc;

use crate::batch::NodeBatcher;
use crate::report::{Phases, RunReport};
use crate::spool::EdgeSpool;

/// How the engine batches and bounds its work.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records per sink transaction. 10,000 amortises a commit without holding a
    /// transaction open for long.
    pub batch_size: usize,
    /// Edges held in memory before spooling to disk. 200,000 edges is tens of MB.
    pub edge_memory_rows: usize,
    /// Records deleted per cleanup transaction.
    pub cleanup_batch: usize,
    /// Plugins synced at once.
    pub concurrency: usize,
    /// Attempts at a sink write that failed transiently (a deadlock, a reset).
    pub sink_attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 10_000,
            edge_memory_rows: 200_000,
            cleanup_batch: 10_000,
            concurrency: 4,
            sink_attempts: 5,
        }
    }
}

/// One plugin to sync, with what it is given. `request.state` is replaced by the sink.
pub struct Job {
    /// The plugin.
    pub plugin: Plugin,
    /// Its config, secrets and limits.
    pub request: SyncRequest,
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

/// Syncs one plugin into `sink`. Never fails: every failure is in the report, which is
/// also appended to the sink's run history.
pub async fn sync_one<S: GraphSink + 'static>(
    runtime: &Runtime,
    sink: &Arc<S>,
    mut job: Job,
    options: &Options,
    progress: &ProgressFn,
) -> RunReport {
    let started = Instant::now();
    let started_at = now();
    let manifest = job.plugin.manifest().clone();
    let name = manifest.name.clone();
    let mut report = RunReport {
        plugin: name.clone(),
        plugin_version: manifest.version.clone(),
        plugin_sha256: job.plugin.sha256().into(),
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
    job.request.state = sink.clone();
    let (tx, rx) = mpsc::channel(16);
    let writer = Writer {
        sink: sink.as_ref(),
        options,
        progress,
        plugin: &name,
        extra_labels: manifest
            .schema
            .nodes
            .iter()
            .map(|k| (k.label.clone(), k.extra_labels.clone()))
            .collect(),
        tag,
        scope: None,
        nodes: 0,
        spool: EdgeSpool::new(options.batch_size, options.edge_memory_rows),
        incomplete: Vec::new(),
        unresolved: BTreeMap::new(),
    };
    let (outcome, written) = tokio::join!(
        runtime.sync(&job.plugin, job.request, tx),
        writer.take_nodes(rx)
    );
    report.phases.sync_ms = ms(sync_started.elapsed());
    report.records = outcome.counts.clone();
    report.http = outcome.fetch.clone();
    report.scope = outcome.scope.clone();
    let (mut writer, mut sink_error) = written;
    report.incomplete = std::mem::take(&mut writer.incomplete);
    let plugin_ok = match &outcome.result {
        Ok(summary) => {
            report.summary = Some(summary.clone());
            true
        }
        Err(Failure::Stopped) if sink_error.is_some() => false,
        Err(f) => {
            if let Failure::Limit { limit, value } = f {
                report.limits_hit.push(format!("{limit} ({value})"));
            }
            report.errors.push(f.to_string());
            false
        }
    };
    let Some(w) = writer.scope.clone() else {
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
    if sink_error.is_none() {
        progress(&name, Progress::Phase("writing edges"));
        if let Err(e) = writer.put_edges(&w).await {
            sink_error = Some(e);
        }
    }
    report.phases.edges_ms = ms(edges_started.elapsed());

    let mut counts = ChangeCounts::default();
    let cleanup_started = Instant::now();
    if plugin_ok && sink_error.is_none() {
        progress(&name, Progress::Phase("cleaning up"));
        let done = async {
            let deleted = retry(options, || {
                sink.cleanup(&w, &report.incomplete, options.cleanup_batch)
            })
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
    for (rel, n) in std::mem::take(&mut writer.unresolved) {
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

/// The consumer side of a run: writes nodes as they arrive, holds edges.
struct Writer<'a, S> {
    sink: &'a S,
    options: &'a Options,
    progress: &'a ProgressFn,
    plugin: &'a str,
    extra_labels: BTreeMap<String, Vec<String>>,
    tag: i64,
    scope: Option<WriteScope>,
    nodes: u64,
    spool: EdgeSpool,
    incomplete: Vec<Incomplete>,
    unresolved: BTreeMap<String, u64>,
}

impl<S: GraphSink> Writer<'_, S> {
    /// Consumes emissions until the plugin finishes. On a sink error it stops reading,
    /// which stops the plugin, and returns the error.
    async fn take_nodes(mut self, mut rx: mpsc::Receiver<Emission>) -> (Self, Option<SinkError>) {
        let mut batcher = NodeBatcher::new(self.options.batch_size);
        while let Some(e) = rx.recv().await {
            let result = match e {
                Emission::Scope(s) => {
                    self.scope = Some(WriteScope {
                        plugin: self.plugin.into(),
                        scope: s.value,
                        update_tag: self.tag,
                    });
                    Ok(())
                }
                Emission::Nodes(b) => {
                    let mut result = Ok(());
                    for ready in batcher.push(b) {
                        result = self.put_nodes(ready).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
                Emission::Edges(b) => self.spool.push(b).map_err(|e| {
                    SinkError::new(format!("spooling edges to a temporary file: {e}"))
                }),
                Emission::Incomplete {
                    label,
                    parent,
                    reason,
                } => {
                    self.incomplete.push(Incomplete {
                        label,
                        parent,
                        reason,
                    });
                    Ok(())
                }
                Emission::Fetched { requests } => {
                    (self.progress)(self.plugin, Progress::Requests(requests));
                    Ok(())
                }
                Emission::Progress { phase, done, total } => {
                    (self.progress)(self.plugin, Progress::Plugin { phase, done, total });
                    Ok(())
                }
            };
            if let Err(e) = result {
                return (self, Some(e));
            }
        }
        for ready in batcher.finish() {
            if let Err(e) = self.put_nodes(ready).await {
                return (self, Some(e));
            }
        }
        (self, None)
    }

    async fn put_nodes(&mut self, batch: infragraph_core::NodeBatch) -> Result<(), SinkError> {
        let w = self
            .scope
            .as_ref()
            .ok_or_else(|| SinkError::new("nodes before a scope"))?;
        let extra = self
            .extra_labels
            .get(&batch.label)
            .map(Vec::as_slice)
            .unwrap_or_default();
        retry(self.options, || self.sink.write_nodes(w, extra, &batch)).await?;
        self.nodes += batch.rows.len() as u64;
        (self.progress)(
            self.plugin,
            Progress::Written {
                nodes: self.nodes,
                edges: 0,
            },
        );
        Ok(())
    }

    async fn put_edges(&mut self, w: &WriteScope) -> Result<(), SinkError> {
        let spool = std::mem::replace(&mut self.spool, EdgeSpool::new(1, 1));
        // A thread of its own reads (and parses) the spooled batches while the sink writes
        // the one before: on two cores the reading costs no wall time. One batch ahead is
        // enough; more only holds memory. It stops when the batches end or this side stops
        // receiving.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        std::thread::Builder::new()
            .name("edge-spool".into())
            .spawn(move || match spool.drain() {
                Ok(batches) => {
                    for b in batches {
                        if tx.blocking_send(b).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                }
            })
            .map_err(|e| SinkError::new(format!("cannot start the spool reader: {e}")))?;
        let mut written = 0u64;
        while let Some(batch) = rx.recv().await {
            let batch = batch.map_err(|e| SinkError::new(format!("reading spooled edges: {e}")))?;
            let unresolved = retry(self.options, || self.sink.write_edges(w, &batch)).await?;
            if unresolved > 0 {
                *self.unresolved.entry(batch.rel_type.clone()).or_default() += unresolved;
            }
            written += batch.rows.len() as u64;
            (self.progress)(
                self.plugin,
                Progress::Written {
                    nodes: self.nodes,
                    edges: written,
                },
            );
        }
        Ok(())
    }
}

/// Retries a sink call that failed transiently, with a short exponential backoff.
async fn retry<T, F, Fut>(options: &Options, mut call: F) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SinkError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.transient && attempt < options.sink_attempts => {
                tracing::warn!("sink write failed ({e}); retrying (attempt {attempt})");
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
