//! infragraph's Bolt sink: writes the graph, the run history and each plugin's state
//! into Neo4j 5 (or another server speaking Bolt and openCypher, such as ArcadeDB, which
//! the tests run against), with the embedded store's semantics.
//!
//! This crate depends on `infragraph-core` and the `neo4rs` driver only; it must not
//! depend on the plugin runtime (wasmtime) or on another sink.
//!
//! [`Neo4jSink`] is the one type: [`Neo4jSink::connect`] checks the address, credentials
//! and database at once; the engine drives it through `GraphSink` and `StateStore`;
//! [`Neo4jSink::load_lines`] loads another sink's export line by line, and
//! [`Neo4jSink::export_jsonl`] / [`Neo4jSink::export_lines`] read the graph back in the
//! same format.
//!
//! # What it writes
//!
//! - Before a plugin's first write (`prepare`): a uniqueness constraint on `id` for each
//!   of its labels (`infragraph_<Label>_id`) and an index per property declared
//!   `indexed`, all `IF NOT EXISTS` (and no index on `lastupdated`, which every write
//!   would rewrite: see `cypher::drop_tag_indexes`).
//! - While the plugin fetches (`warm_up`, which the engine runs beside it): an `EXPLAIN`
//!   of each statement text a first sync of the plugin can send, so that the server has
//!   planned them before the run's writes need them (`warm`). Nothing is written.
//! - Nodes, per batch of one label, in one transaction:
//!   `UNWIND $rows AS row MERGE (n:Label {id: row.id}) ON CREATE SET n.firstseen = $tag,
//!   n._source = $plugin, n._scope = $scope SET n += row.props, <bookkeeping>`, where the
//!   bookkeeping stores `row.d` as `_digest` (the hash of what the plugin emitted for the
//!   record), moves `lastupdated` only when that differs or the scope newly asserts the
//!   record, and keeps `_seen` (the last run that emitted it, which cleanup compares) only
//!   when that is later than `lastupdated`.
//!   A record the scope holds with the same digest is not written at all (`known`).
//!   A kind with extra labels takes two statements instead: the ids its primary label
//!   does not find are created with every label, then every row's node is updated by its
//!   primary label (a `MERGE` on several labels finds nothing through an index on
//!   ArcadeDB; `cypher::merge_nodes`). `infragraph push` writes the same way. A null
//!   property removes it, as in the embedded store. The updating statement counts the
//!   batch's nodes another plugin owns; any rolls the transaction back.
//! - Relationships, per batch of one (type, start label, end label), after all nodes:
//!   both ends `MATCH`ed by label and key, the relationship looked for from the end with
//!   fewer relationships, created with its bookkeeping when absent and updated when
//!   present (`MERGE`d when the batch repeats a pair); rows whose ends are not found are
//!   counted as unresolved.
//! - Cleanup after a fully successful sync (`clean`): of each kind the run read at its
//!   first batch (`known`), the records it neither wrote nor saw unchanged, by id or by
//!   their ends' element ids; of every other kind, the records whose `_seen` is older
//!   than the run. Which kinds hold anything stale, and the run's change counts, come from
//!   one read per label and per (type, start label) in one transaction (`survey`).
//!   Relationships first, then the stale nodes with all their relationships, each as a
//!   loop of `... WITH x LIMIT $limit DELETE x` transactions until nothing is left;
//!   records other scopes also assert only lose this scope; nodes of labels the plugin
//!   marked incomplete (under their parent, when given) and relationships touching them
//!   are kept. Cleanup walks the labels and the (type, start label) pairs of the plugin's
//!   current schema (a graph server has no cheap "every node of this source" without a
//!   label, and ArcadeDB none of "every relationship of this type"), so records of a kind
//!   a newer plugin version dropped stay.
//! - Bookkeeping nodes, never exported or cleaned up: one `InfragraphMeta` (the last
//!   update tag handed out), `InfragraphState {plugin, scope, key, value_hex}` per state
//!   key, and `InfragraphRun {plugin, scope, update_tag, status, started_at,
//!   finished_at, report}` per run.
//!
//! Labels, types and property names are checked against the plugin's declared schema and
//! backquoted; values are always parameters. Every statement is idempotent, so a
//! transaction that failed transiently (deadlock, dropped connection, leader change) is
//! run again, with backoff, and nothing is lost or duplicated.
#![deny(missing_docs)]

mod clean;
mod cypher;
mod error;
mod known;
mod lease;
mod push;
mod query;
mod read;
mod schema;
mod sink;
mod survey;
mod values;
mod warm;
mod write;

pub use error::{Error, ErrorKind};
pub use infragraph_core::Exported;
pub use push::Pushed;
pub use sink::{Neo4jConfig, Neo4jSink};
