//! What a run left in its scope, read in one pass per label and relationship type before
//! cleanup: which kinds hold stale records, and the run's change counts.
//!
//! The counts are those of the records the run wrote (`seen` this run), plus what it saw
//! unchanged without writing (`known`); cleanup adds what it deleted. As in the embedded
//! store, a relationship the run wrote to a node it did not emit is counted as written,
//! and again as deleted when cleanup takes it with that node.

use infragraph_core::{ChangeCounts, WriteScope};
use neo4rs::query;

use crate::cypher::{self, Among};
use crate::error::Error;
use crate::known::Run;
use crate::sink::Neo4jSink;
use crate::write::scoped;

/// A kind with stale records: whether it is a label (else a relationship type), its
/// name, and the records cleanup looks at.
pub(crate) struct Stale {
    pub(crate) is_node: bool,
    pub(crate) name: String,
    pub(crate) among: Among,
}

/// What [`Neo4jSink::survey`] found.
pub(crate) struct Survey {
    /// Created, updated and unchanged per label and type; nothing deleted yet.
    pub(crate) counts: ChangeCounts,
    /// The kinds with something stale, of those the run's knowledge does not cover (those
    /// it does, cleanup lists from memory: see [`Run::stale_nodes`]).
    pub(crate) stale: Vec<Stale>,
}

impl Neo4jSink {
    /// Reads every label and relationship type of `w`'s plugin in one transaction; `run`
    /// is what the run knows, if anything.
    pub(crate) async fn survey(&self, w: &WriteScope, run: Option<&Run>) -> Result<Survey, Error> {
        let schema = self.schema_of(&w.plugin)?;
        let mut kinds = Vec::new();
        for l in schema.labels() {
            // A label the run read is listed from memory; its unchanged records carry an
            // older `_seen`, so the graph cannot tell which of them are stale.
            let probe = run.and_then(|r| r.stale_nodes(l)).is_none();
            kinds.push((true, l.to_string(), Among::nodes(l)?, probe));
        }
        // Relationships by the labels they start from: every one the plugin writes
        // starts from a label its schema declares for the type (the sink refuses others).
        for t in schema.rel_types() {
            let known = run.map(|r| r.stale_edges(t)).unwrap_or_default();
            for from in schema.start_labels(t) {
                // The pairs of labels the run read are left out of the probe, likewise.
                let except: Vec<&str> = known
                    .iter()
                    .filter(|(f, _, _)| *f == from)
                    .map(|(_, to, _)| *to)
                    .collect();
                kinds.push((false, t.to_string(), Among::edges(t, from, &except)?, true));
            }
        }
        let statements: Vec<String> = kinds
            .iter()
            .map(|(_, _, among, probe)| cypher::survey(among, *probe))
            .collect();
        let what = format!(
            "reading what plugin {:?} left in scope {:?}",
            w.plugin, w.scope
        );
        let result = self
            .tx_retried(&what, || {
                statements.iter().map(|s| scoped(query(s), w)).collect()
            })
            .await?;
        let mut out = Survey {
            counts: ChangeCounts::default(),
            stale: Vec::new(),
        };
        for ((is_node, name, among, _), rows) in kinds.into_iter().zip(&result) {
            let Some(row) = rows.first() else { continue };
            let int = |col: &str| row.get::<i64>(col).unwrap_or(0).max(0) as u64;
            let (stale, created, seen, unchanged) =
                (int("stale"), int("created"), int("seen"), int("unchanged"));
            if seen > 0 {
                let counts = if is_node {
                    &mut out.counts.nodes
                } else {
                    &mut out.counts.edges
                };
                // A type is read once per label it starts from: the rows add up.
                let c = counts.entry(name.clone()).or_default();
                c.created += created;
                c.updated += seen - created.min(seen);
                c.unchanged += unchanged;
            }
            if stale > 0 {
                out.stale.push(Stale {
                    is_node,
                    name,
                    among,
                });
            }
        }
        // What the run saw unchanged without writing it (see `known`).
        if let Some(run) = run {
            for (counts, seen) in [
                (&mut out.counts.nodes, &run.unchanged_nodes),
                (&mut out.counts.edges, &run.unchanged_edges),
            ] {
                for (name, n) in seen.iter().filter(|(_, n)| **n > 0) {
                    let c = counts.entry(name.clone()).or_default();
                    c.updated += n;
                    c.unchanged += n;
                }
            }
        }
        Ok(out)
    }
}
