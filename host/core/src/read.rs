//! Reading the graph back, the same way from every sink: the node, relationship and path
//! types queries answer with, and [`GraphReader`], which the embedded store and the Neo4j
//! sink both implement, so `query` (and a server) can read either.

use std::future::Future;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::{RunRecord, SinkError};

/// How many nodes a shortest-path search may visit before it gives up, so a search across
/// a huge, densely linked graph ends with an error instead of eating memory.
pub const MAX_PATH_VISITS: usize = 1_000_000;

/// A node as stored. `extra_labels` are sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNode {
    /// Its primary label: the one it is keyed under.
    pub label: String,
    /// Further labels.
    pub extra_labels: Vec<String>,
    /// Its key.
    pub id: String,
    /// Its properties, without `id` and the bookkeeping ones.
    pub props: Map<String, Json>,
    /// Update tag of the run that created it.
    pub firstseen: i64,
    /// Update tag of the run that last wrote it.
    pub lastupdated: i64,
    /// The plugin that last wrote it.
    pub source: String,
    /// The scope it was last written in.
    pub scope: String,
}

/// A relationship as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEdge {
    /// Its type.
    pub rel_type: String,
    /// Primary label and key of its start node.
    pub from: (String, String),
    /// Primary label and key of its end node.
    pub to: (String, String),
    /// Its properties, without the bookkeeping ones.
    pub props: Map<String, Json>,
    /// Update tag of the run that created it.
    pub firstseen: i64,
    /// Update tag of the run that last wrote it.
    pub lastupdated: i64,
    /// The plugin that last wrote it.
    pub source: String,
    /// The scope it was last written in.
    pub scope: String,
}

/// Which relationships of a node to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Those starting at the node.
    Out,
    /// Those ending at the node.
    In,
    /// Both, ignoring direction: the default, since "how is A connected to B" rarely
    /// cares which way each relationship points.
    #[default]
    Both,
}

/// One step of a path: the node reached and the relationship followed to reach it
/// (`None` for the first node). The relationship keeps its stored direction, which may
/// point against the walk when searching in [`Direction::Both`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The relationship followed, `None` at the start.
    pub via: Option<StoredEdge>,
    /// The node reached.
    pub node: StoredNode,
}

/// How many records an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Nodes.
    pub nodes: u64,
    /// Relationships.
    pub relationships: u64,
}

/// Reading what infragraph wrote, from whichever sink holds it.
pub trait GraphReader: Send + Sync {
    /// Nodes carrying `label` (primary or extra) whose properties match every filter, at
    /// most `limit` (0: no limit): those keyed under `label` first, by id, then those
    /// carrying it as an extra label.
    ///
    /// A filter `(prop, text)` matches when the property's value is `text`, or the number
    /// or boolean `text` spells, or a list holding one of those. `id`, `firstseen`,
    /// `lastupdated`, `_source` and `_scope` filter on the key and the bookkeeping.
    fn nodes(
        &self,
        label: &str,
        filters: &[(String, String)],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredNode>, SinkError>> + Send;

    /// The relationships of the node (`label`, `id`) in `direction`, of the given types
    /// (all when empty), each with the node at its other end. An unknown node is an
    /// error naming it.
    fn neighbours(
        &self,
        label: &str,
        id: &str,
        direction: Direction,
        types: &[String],
    ) -> impl Future<Output = Result<Vec<(StoredEdge, StoredNode)>, SinkError>> + Send;

    /// [`GraphReader::neighbours`] of each of `nodes` (primary label, id) at once, each
    /// row with the index in `nodes` of the node it was found around: a graph server
    /// answers a whole frontier of a walk in a few round trips instead of one per node.
    /// Rows come grouped by node, in `nodes`' order, as `neighbours` orders them; a node
    /// that does not exist gives none (this default, one `neighbours` per node, fails on
    /// it: both sinks override it).
    fn neighbours_of_many(
        &self,
        nodes: &[(String, String)],
        direction: Direction,
        types: &[String],
    ) -> impl Future<Output = Result<Vec<(usize, StoredEdge, StoredNode)>, SinkError>> + Send {
        async move {
            let mut out = Vec::new();
            for (i, (label, id)) in nodes.iter().enumerate() {
                for (e, n) in self.neighbours(label, id, direction, types).await? {
                    out.push((i, e, n));
                }
            }
            Ok(out)
        }
    }

    /// A shortest path from one node to another, each given as (label, id), following
    /// relationships of the given types (all when empty) in `direction` for at most
    /// `max_depth` steps; `None` when there is none. Gives up with an error past
    /// [`MAX_PATH_VISITS`] nodes.
    fn shortest_path(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        max_depth: usize,
        direction: Direction,
        types: &[String],
    ) -> impl Future<Output = Result<Option<Vec<Step>>, SinkError>> + Send;

    /// The primary labels nodes are stored under, sorted (for hints after a typo).
    fn labels(&self) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;

    /// The newest `limit` runs, newest first.
    fn runs(&self, limit: usize) -> impl Future<Output = Result<Vec<RunRecord>, SinkError>> + Send;

    /// Every node and relationship infragraph wrote, as JSON lines in APOC's format: nodes
    /// first, each with its primary label first, then relationships.
    fn export_jsonl(
        &self,
        out: &mut (dyn Write + Send),
    ) -> impl Future<Output = Result<Exported, SinkError>> + Send;
}
