use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::{EdgeBatch, Holder, Manifest, NodeBatch, NodeRef, StateStore};

/// Why a sink could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct SinkError {
    /// What failed, in words for the operator.
    pub what: String,
    /// Whether trying again may succeed (a deadlock, a dropped connection).
    pub transient: bool,
    /// Whether another run holds the lease asked for: waiting may succeed.
    pub held: bool,
}

impl SinkError {
    /// A permanent failure.
    pub fn new(what: impl Into<String>) -> Self {
        SinkError {
            what: what.into(),
            transient: false,
            held: false,
        }
    }
    /// A failure worth retrying.
    pub fn transient(what: impl Into<String>) -> Self {
        SinkError {
            what: what.into(),
            transient: true,
            held: false,
        }
    }
    /// Another run holds the lease; `what` names it.
    pub fn held(what: impl Into<String>) -> Self {
        SinkError {
            what: what.into(),
            transient: false,
            held: true,
        }
    }
}

/// Whose writes these are: one sync of one plugin over one scope. Every record written
/// carries them as `_source`, `_scope` and `lastupdated` (and `firstseen` when new), and
/// cleanup deletes only records of the same plugin and scope with an older tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteScope {
    /// The plugin's name.
    pub plugin: String,
    /// The scope node's key value, e.g. an organization id.
    pub scope: String,
    /// This run's update tag: milliseconds since the epoch, strictly increasing per sink.
    pub update_tag: i64,
}

/// A label whose stale nodes cleanup must keep: the plugin could not list it fully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incomplete {
    /// The label.
    pub label: String,
    /// When given, only stale nodes of `label` linked to this node are kept.
    pub parent: Option<NodeRef>,
    /// Why, for the report.
    pub reason: String,
}

/// What a run did to one label or relationship type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Records first seen in this run.
    pub created: u64,
    /// Records seen before and again in this run, changed or not.
    pub updated: u64,
    /// Of `updated`, those the run found as they were: not rewritten, their
    /// `lastupdated` kept.
    #[serde(default)]
    pub unchanged: u64,
    /// Stale records removed by cleanup. A relationship the run wrote to a node it did
    /// not emit goes with that node: it is counted here as well as created or updated.
    pub deleted: u64,
    /// Edges not written because an end does not exist.
    pub unresolved: u64,
}

impl std::ops::AddAssign<&Changes> for Changes {
    fn add_assign(&mut self, other: &Changes) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
        self.unresolved += other.unresolved;
    }
}

/// [`Changes`] by label (nodes) and by relationship type (edges).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Per node label.
    pub nodes: BTreeMap<String, Changes>,
    /// Per relationship type.
    pub edges: BTreeMap<String, Changes>,
}

impl ChangeCounts {
    /// Adds `other`'s counts to these, label by label and type by type.
    pub fn absorb(&mut self, other: &ChangeCounts) {
        for (k, c) in &other.nodes {
            *self.nodes.entry(k.clone()).or_default() += c;
        }
        for (k, c) in &other.edges {
            *self.edges.entry(k.clone()).or_default() += c;
        }
    }
}

/// What [`GraphSink::publish`] does besides making a run's writes visible.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// Delete the records `w`'s plugin and scope asserted before this run but not in it,
    /// except nodes of these labels (under their parent, when given) and edges touching
    /// them; `None` deletes nothing.
    pub cleanup: Option<&'a [Incomplete]>,
    /// The plugin's state writes, stored with the run.
    pub state: &'a BTreeMap<String, Option<Vec<u8>>>,
    /// The name the state is kept under: the plugin's, unless it runs as a replacement
    /// of an installed plugin whose state the operator did not adopt.
    pub state_plugin: &'a str,
    /// Records deleted per transaction, for a sink that cannot delete in one.
    pub cleanup_batch: usize,
}

/// How a run ended, as kept in the run history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Everything listed and written; stale records deleted.
    Succeeded,
    /// Written, but some labels were incomplete; their stale records were kept.
    Partial,
    /// The plugin or the sink failed; nothing was deleted.
    Failed,
    /// The operator stopped it (Ctrl-C): nothing of it was published.
    Interrupted,
}

impl RunStatus {
    /// The status named `name` as [`Display`](std::fmt::Display) writes it; anything else
    /// (a history written by a newer version) reads as failed, the cautious reading.
    pub fn from_name(name: &str) -> RunStatus {
        match name {
            "succeeded" => RunStatus::Succeeded,
            "partial" => RunStatus::Partial,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        })
    }
}

/// One entry of the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The plugin.
    pub plugin: String,
    /// Its scope, when it declared one.
    pub scope: Option<String>,
    /// The run's update tag.
    pub update_tag: i64,
    /// How it ended.
    pub status: RunStatus,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// The full run report, JSON.
    pub report: String,
}

/// Where the graph is written: the embedded store or a graph server. The engine drives
/// it; a sink builds its statements from the batch and the declared schema, never from
/// data (labels, types and property names were checked by `CheckedSchema`).
///
/// Nodes are upserted by (label, `id`): properties merged (a null removes one),
/// `firstseen` set once, `_source` and `_scope` set at creation. Edges are merged by
/// (type, start node, end node) with the same bookkeeping; an edge whose end does not
/// exist is not written but counted as unresolved.
///
/// `lastupdated` is the run that last changed the record: created it, changed what the
/// plugin emitted for it ([`digest`](crate::digest) of its extra labels and properties),
/// or began to assert it from another scope. A run that emits a record exactly as before
/// sees it (cleanup keeps it; it counts as updated and [`Changes::unchanged`]) without
/// changing its `lastupdated`. So a record still in the graph after its scope's last
/// successful run was seen by that run, and `lastupdated > $tag` finds what changed
/// since the run of `$tag`.
pub trait GraphSink: StateStore + Send + Sync {
    /// Creates what the plugin's schema needs before its first write (indexes or
    /// uniqueness constraints on `id` and on indexed properties), idempotently.
    fn prepare(&self, manifest: &Manifest) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Work ahead of a run of `manifest`'s plugin, done while the plugin fetches: a graph
    /// server plans the statements the run will send. Best effort and writes nothing.
    /// The engine runs it beside the plugin and sets `stop` when the run ends: return at
    /// the next step once it is set. The engine never cancels it mid-step, since a
    /// connection dropped in the middle of a request could go back to a pool half read.
    /// Nothing by default.
    fn warm_up(&self, manifest: &Manifest, stop: &AtomicBool) -> impl Future<Output = ()> + Send {
        let _ = (manifest, stop);
        async {}
    }

    /// Says that a command is about to start `n` runs side by side (`sync_all`); with
    /// [`GraphSink::runs_ended`], that they have all ended. A sink may write a run alone
    /// otherwise than runs beside others: the embedded store writes a run alone in place,
    /// holding its write lock for the whole run, which every other run would wait for.
    /// Knowing ahead, it does not take a command's first run to write for the only one.
    /// Nothing by default.
    fn runs_starting(&self, n: usize) {
        let _ = n;
    }

    /// Takes back a [`GraphSink::runs_starting`] of `n` runs: they have all ended (or
    /// the command was stopped). Nothing by default.
    fn runs_ended(&self, n: usize) {
        let _ = n;
    }

    /// A new update tag, greater than any this sink handed out before.
    fn next_update_tag(&self) -> impl Future<Output = Result<i64, SinkError>> + Send;

    /// Takes the lease of `w`'s plugin and scope for `holder` until `ttl` from now, or
    /// renews it when `holder` has it already. Fails with [`SinkError::held`], naming the
    /// holder, while another run holds an unexpired lease and is not known gone
    /// ([`Holder::is_gone`]); a renewal fails so too when the lease was lost meanwhile.
    fn lease(
        &self,
        w: &WriteScope,
        holder: &Holder,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Lets go of the lease of `w`'s plugin and scope, if `holder` still has it.
    fn release(
        &self,
        w: &WriteScope,
        holder: &Holder,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Upserts a batch of nodes of the run `w`. `extra_labels` are the labels the schema
    /// adds to every node of `batch.label`. A graph server applies the batch at once, in
    /// one transaction; the embedded store holds it for [`GraphSink::publish`].
    fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Merges a batch of edges of the run `w`, like [`GraphSink::write_nodes`]; returns how
    /// many rows had an end that does not exist, as far as known now (the embedded store
    /// counts them when it publishes).
    fn write_edges(
        &self,
        w: &WriteScope,
        batch: &EdgeBatch,
    ) -> impl Future<Output = Result<u64, SinkError>> + Send;

    /// Ends a run that succeeded (or is partial): deletes what `w`'s scope asserted before
    /// but not in this run, as [`Publish::cleanup`] says, stores the plugin's state
    /// writes, and returns the run's created, updated, deleted (and, for a sink that
    /// resolves edges only now, unresolved) counts. The embedded store does all of it,
    /// with every write of the run, in one transaction: readers see the graph before the
    /// run or after it, never between, and a run killed at any point changes nothing.
    /// A graph server applied each batch as it came; its cleanup runs in transactions of
    /// at most `cleanup_batch` records.
    fn publish(
        &self,
        w: &WriteScope,
        p: &Publish<'_>,
    ) -> impl Future<Output = Result<ChangeCounts, SinkError>> + Send;

    /// Ends a run that failed: deletes nothing and stores no state. The embedded store
    /// drops every write of the run; a graph server keeps the batches it applied. Returns
    /// the counts of what stays written.
    fn discard(
        &self,
        w: &WriteScope,
    ) -> impl Future<Output = Result<ChangeCounts, SinkError>> + Send;

    /// Stores state writes outside a run (`infragraph state set`); a run's own go with
    /// [`GraphSink::publish`].
    fn commit_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Appends to the run history.
    fn record_run(&self, run: &RunRecord) -> impl Future<Output = Result<(), SinkError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_per_label_and_type() {
        let one = |n| Changes {
            created: n,
            updated: 1,
            unchanged: 1,
            deleted: 0,
            unresolved: 2,
        };
        let mut a = ChangeCounts::default();
        a.nodes.insert("A".into(), one(1));
        let mut b = ChangeCounts::default();
        b.nodes.insert("A".into(), one(2));
        b.edges.insert("R".into(), one(5));
        a.absorb(&b);
        assert_eq!(
            a.nodes["A"],
            Changes {
                created: 3,
                updated: 2,
                unchanged: 2,
                deleted: 0,
                unresolved: 4
            }
        );
        assert_eq!(a.edges["R"], one(5));
    }
}
