//! The consumer side of a run: nodes written as they arrive, on a task of their own so
//! the plugin keeps running while the sink writes; edges held back in the spool, then
//! written once every node is in.

use std::collections::BTreeMap;
use std::sync::Arc;

use infragraph_core::{GraphSink, Holder, Incomplete, NodeBatch, NodeRef, SinkError, WriteScope};
use infragraph_runtime::Emission;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

use crate::batch::NodeBatcher;
use crate::lease::Lease;
use crate::spool::EdgeSpool;
use crate::sync::{Options, Progress, ProgressFn};

/// Node batches gathered and ready to write that may wait for the writer. One waits while
/// another is written: enough to keep the sink busy; more would only hold memory, since
/// past this the plugin waits (through the emission channel) for the sink anyway.
const NODE_QUEUE: usize = 1;

/// What the consumer kept of a run once the emissions ended.
pub(crate) struct Taken {
    /// The write scope, once the plugin declared its scope.
    pub scope: Option<WriteScope>,
    /// The lease of the scope, taken when the plugin declared it.
    pub lease: Option<Lease>,
    /// Nodes written.
    pub nodes: u64,
    /// The edges, waiting for their turn.
    pub spool: EdgeSpool,
    /// Labels the plugin could not list fully.
    pub incomplete: Vec<Incomplete>,
    /// Warnings the source sent, for the report.
    pub warnings: Vec<String>,
    /// Nodes emitted besides the scope's own: what the run listed.
    pub listed: u64,
    /// The scope node the plugin declared, for a run that ends without an outcome.
    pub declared: Option<NodeRef>,
    /// The sink failure that stopped the consumer, if one did.
    pub error: Option<SinkError>,
}

/// Reads a run's emissions until they end or a write fails.
pub(crate) struct Take<S> {
    sink: Arc<S>,
    progress: ProgressFn,
    plugin: String,
    tag: i64,
    holder: Holder,
    /// What the run is called (its connection), for a scope two connections claim.
    connection: String,
    wait_for_lease: bool,
    extra_labels: BTreeMap<String, Vec<String>>,
    batcher: NodeBatcher,
    writer: Option<NodeWriter>,
    /// The label of the scope node, once declared.
    scope_label: String,
    /// Told once the scope's lease is held; dropped unsent when it is refused or the run's
    /// writes stop first, which stops the plugin where it waits.
    accept: Option<oneshot::Sender<()>>,
    taken: Taken,
}

impl<S: GraphSink + 'static> Take<S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sink: Arc<S>,
        plugin: &str,
        connection: &str,
        tag: i64,
        holder: Holder,
        extra_labels: BTreeMap<String, Vec<String>>,
        options: &Options,
        progress: ProgressFn,
        accept: oneshot::Sender<()>,
    ) -> Self {
        Take {
            sink,
            progress,
            plugin: plugin.into(),
            tag,
            holder,
            connection: connection.into(),
            wait_for_lease: options.wait_for_lease,
            extra_labels,
            batcher: NodeBatcher::new(options.batch_size),
            writer: None,
            scope_label: String::new(),
            accept: Some(accept),
            taken: Taken {
                scope: None,
                lease: None,
                nodes: 0,
                spool: EdgeSpool::new(options.batch_size, options.edge_memory_rows),
                incomplete: Vec::new(),
                warnings: Vec::new(),
                listed: 0,
                declared: None,
                error: None,
            },
        }
    }

    /// Consumes emissions until the source finishes, then waits for the last node
    /// batch to be written. On a sink error it stops reading at once (dropping `rx`,
    /// which stops the plugin) and keeps the error.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Emission>) -> Taken {
        let stopped = loop {
            let next = match self.writer.as_mut() {
                // The writer ends early only when a write failed; learning that here
                // stops the plugin without waiting for its next node batch.
                Some(w) => tokio::select! {
                    biased;
                    ended = &mut w.task => {
                        self.writer = None;
                        break Some(NodeWriter::failure(ended));
                    }
                    e = rx.recv() => e,
                },
                None => rx.recv().await,
            };
            let Some(emission) = next else { break None };
            if let Err(e) = self.take(emission).await {
                break Some(e);
            }
        };
        drop(rx);
        // A plugin still waiting for its scope's verdict stops now, not when this ends.
        self.accept = None;
        let mut result = match stopped {
            Some(e) => Err(e),
            None => {
                let mut flushed = Ok(());
                for ready in self.batcher.drain() {
                    flushed = self.put_nodes(ready).await;
                    if flushed.is_err() {
                        break;
                    }
                }
                flushed
            }
        };
        if let Some(writer) = self.writer.take() {
            match writer.finish().await {
                Ok(n) => self.taken.nodes = n,
                // The first failure is the one to report.
                Err(e) if result.is_ok() => result = Err(e),
                Err(e) => tracing::warn!("writing nodes after an earlier failure: {e}"),
            }
        }
        self.taken.error = result.err();
        self.taken
    }

    async fn take(&mut self, emission: Emission) -> Result<(), SinkError> {
        match emission {
            Emission::Scope(s) => match &self.taken.scope {
                // The runtime passes a repeated declaration of the same scope on.
                Some(w) if w.scope == s.value => Ok(()),
                Some(w) => Err(SinkError::new(format!(
                    "the plugin declared scope {} after {}",
                    s.value, w.scope
                ))),
                None => {
                    self.scope_label = s.label.clone();
                    self.taken.declared = Some(s.clone());
                    let w = WriteScope {
                        plugin: self.plugin.clone(),
                        scope: s.value,
                        update_tag: self.tag,
                    };
                    // One run per plugin and scope: nothing is written before the lease.
                    let lease = Lease::take(
                        &self.sink,
                        &w,
                        &self.holder,
                        &self.connection,
                        self.wait_for_lease,
                        &self.progress,
                    )
                    .await?;
                    self.taken.lease = Some(lease);
                    self.writer = Some(NodeWriter::start(
                        self.sink.clone(),
                        w.clone(),
                        std::mem::take(&mut self.extra_labels),
                        self.progress.clone(),
                    ));
                    self.taken.scope = Some(w);
                    if let Some(accept) = self.accept.take() {
                        // The plugin may have stopped meanwhile: nothing to tell then.
                        let _ = accept.send(());
                    }
                    Ok(())
                }
            },
            Emission::Nodes(b) => {
                let is_scope = |id: &str| {
                    self.taken
                        .scope
                        .as_ref()
                        .is_some_and(|w| w.scope == id && self.scope_label == b.label)
                };
                self.taken.listed += b.rows.iter().filter(|r| !is_scope(&r.id)).count() as u64;
                for ready in self.batcher.push(b) {
                    self.put_nodes(ready).await?;
                }
                Ok(())
            }
            Emission::Edges(b) => self
                .taken
                .spool
                .push(b)
                .await
                .map_err(|e| SinkError::new(format!("spooling edges to a temporary file: {e}"))),
            Emission::Incomplete {
                label,
                parent,
                reason,
            } => {
                self.taken.incomplete.push(Incomplete {
                    label,
                    parent,
                    reason,
                });
                Ok(())
            }
            Emission::Fetched { requests } => {
                (self.progress)(&self.plugin, Progress::Requests(requests));
                Ok(())
            }
            Emission::Progress { phase, done, total } => {
                (self.progress)(&self.plugin, Progress::Plugin { phase, done, total });
                Ok(())
            }
            Emission::Warning(w) => {
                self.taken.warnings.push(w);
                Ok(())
            }
        }
    }

    /// Queues a full batch for the writer; waits while the writer is behind.
    async fn put_nodes(&mut self, batch: NodeBatch) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(SinkError::new("nodes before a scope"));
        };
        if writer.tx.send(batch).await.is_ok() {
            return Ok(());
        }
        // The writer stopped receiving: a write failed. Its error says which.
        let writer = self.writer.take().expect("just used");
        Err(writer
            .finish()
            .await
            .err()
            .unwrap_or_else(|| SinkError::new("the node writer stopped")))
    }
}

/// Writes node batches in order on a task of its own. A store's write blocks its thread
/// (SQLite through `block_in_place`), which would stop the plugin too if both ran in one
/// task; on their own tasks the plugin runs on another thread meanwhile.
struct NodeWriter {
    tx: mpsc::Sender<NodeBatch>,
    task: JoinHandle<Result<u64, SinkError>>,
}

impl NodeWriter {
    fn start<S: GraphSink + 'static>(
        sink: Arc<S>,
        w: WriteScope,
        extra_labels: BTreeMap<String, Vec<String>>,
        progress: ProgressFn,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<NodeBatch>(NODE_QUEUE);
        let task = tokio::spawn(async move {
            let mut written = 0u64;
            while let Some(batch) = rx.recv().await {
                let extra = extra_labels
                    .get(&batch.label)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                sink.write_nodes(&w, extra, &batch).await?;
                written += batch.rows.len() as u64;
                progress(
                    &w.plugin,
                    Progress::Written {
                        nodes: written,
                        edges: 0,
                    },
                );
            }
            Ok(written)
        });
        NodeWriter { tx, task }
    }

    /// Lets the writer finish what it was given; the nodes it wrote, or its failure.
    async fn finish(self) -> Result<u64, SinkError> {
        drop(self.tx);
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Self::failure(Err(e))),
        }
    }

    /// Why a writer that ended before it was told to did.
    fn failure(ended: Result<Result<u64, SinkError>, JoinError>) -> SinkError {
        match ended {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => SinkError::new("the node writer stopped"),
            Err(e) => SinkError::new(format!("the node writer failed: {e}")),
        }
    }
}

/// Writes the spooled edges. A blocking task reads (and parses) the spooled batches while
/// the sink writes the one before: on two cores the reading costs no wall time. One
/// batch ahead is enough; more only holds memory. Edges whose end is missing are counted
/// into `unresolved` by type.
pub(crate) async fn put_edges<S: GraphSink>(
    sink: &S,
    w: &WriteScope,
    spool: EdgeSpool,
    nodes: u64,
    progress: &ProgressFn,
    unresolved: &mut BTreeMap<String, u64>,
) -> Result<(), SinkError> {
    let spooled = spool
        .finish()
        .await
        .map_err(|e| SinkError::new(format!("spooling edges to a temporary file: {e}")))?;
    let (tx, mut rx) = mpsc::channel(1);
    // It stops when the batches end or this side stops receiving (a write failed).
    tokio::task::spawn_blocking(move || match spooled.batches() {
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
    });
    let mut written = 0u64;
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(|e| SinkError::new(format!("reading spooled edges: {e}")))?;
        let missing = sink.write_edges(w, &batch).await?;
        if missing > 0 {
            *unresolved.entry(batch.rel_type.clone()).or_default() += missing;
        }
        written += batch.rows.len() as u64;
        progress(
            &w.plugin,
            Progress::Written {
                nodes,
                edges: written,
            },
        );
    }
    Ok(())
}
