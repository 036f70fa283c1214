//! infragraph's embedded graph store: the default sink, one SQLite file (default
//! `./infragraph.db`) holding the graph, the run history and each plugin's state.
//!
//! This crate depends on `infragraph-core` and rusqlite (with SQLite bundled) only; it
//! must not depend on the plugin runtime (wasmtime) or on another sink.
//!
//! [`Store`] is the one type. The engine drives it through the `GraphSink` and
//! `StateStore` traits of `infragraph-core`; the CLI reads it with [`Store::nodes`],
//! [`Store::neighbours`], [`Store::shortest_path`], [`Store::runs`] and [`Store::stats`],
//! and moves whole graphs with [`Store::export_jsonl`] / [`Store::import_jsonl`],
//! [`Store::export_graphml`] and [`Store::export_cypher`].
//!
//! # Durability and concurrency
//!
//! The file is in WAL mode with `synchronous=NORMAL`: other processes read while a sync
//! writes, and every batch is one transaction, so a sync killed mid-write (even with
//! SIGKILL) leaves the graph as of its last committed batch, readable, with nothing of the
//! previous graph deleted (only cleanup deletes, after a successful sync). Several plugins
//! may write through one `Store` at once; their batches take turns on one writer
//! connection. SQLite calls block, so the async trait methods run them with
//! `tokio::task::block_in_place` on a multi-thread runtime.
//!
//! One file per job: `store` opens and checks the file; `sink` is the engine's view
//! (`GraphSink`, `StateStore`) over `write` (indexes, upserts, update tags, a run's
//! counts), `cleanup` and `history` (plugin state, run history); `encode` builds property
//! maps, `resolve` finds an edge's ends; `query` and `reader` read back, `export` and
//! `import` move whole graphs.
//!
//! # Layout
//!
//! Version 1 (in `meta`, key `layout`; a store with a newer version is refused). The same
//! description, for users who query the file with plain SQL, is in `LAYOUT.md`.
//!
//! | table | columns | notes |
//! |---|---|---|
//! | `meta` | `key`, `value` | `format` = `infragraph`, `layout` = 1, `last_update_tag` |
//! | `nodes` | `nid` INTEGER PRIMARY KEY, `label`, `id`, `extra_labels` (JSON array), `props` (JSON object), `firstseen`, `lastupdated`, `source`, `scope` | UNIQUE (`label`, `id`) |
//! | `edges` | `eid` INTEGER PRIMARY KEY, `type`, `src` → `nodes.nid`, `dst` → `nodes.nid`, `props`, `firstseen`, `lastupdated`, `source`, `scope` | UNIQUE (`src`, `type`, `dst`) |
//! | `runs` | `run_id`, `plugin`, `scope`, `update_tag`, `status`, `started_at`, `finished_at`, `report` (JSON) | one row per sync of a plugin |
//! | `plugin_state` | `plugin`, `scope`, `key`, `value` BLOB | PRIMARY KEY (`plugin`, `scope`, `key`) |
//!
//! Indexes: `edges (dst, type)` for incoming edges (outgoing ones use the unique index),
//! `(source, scope, lastupdated)` on both tables for cleanup, and, per indexed property
//! `p` of a label `L` in a plugin's schema (and per property used as an edge end's key), a
//! partial index on `json_extract(props, '$.p') WHERE label = 'L'`.
//!
//! `firstseen` and `lastupdated` are update tags (milliseconds since the epoch, strictly
//! increasing per store); `source` is the plugin that last wrote the record and `scope`
//! its scope. Exports name them `firstseen`, `lastupdated`, `_source` and `_scope`.
//!
//! # Semantics
//!
//! Nodes are upserted by (label, `id`), properties merged as Cypher's `SET n += $props`
//! (SQLite's `json_patch`): a null removes a property. Edges are merged by (type, start,
//! end), each end matched by its primary label and key property (`id` through the unique
//! index, another property through its expression index, where several matching nodes are
//! all linked); an edge with an end missing is counted as unresolved. Cleanup deletes the
//! stale records of one plugin and scope in bounded transactions, a node with all its
//! edges; nodes of incomplete labels and every edge touching one are kept.
#![deny(missing_docs)]

mod cleanup;
mod encode;
mod error;
mod export;
mod history;
mod import;
mod layout;
mod query;
mod reader;
mod resolve;
mod sink;
mod store;
mod write;

pub use error::{Error, ErrorKind};
pub use export::ExportStats;
pub use import::ImportStats;
pub use infragraph_core::{Direction, MAX_PATH_VISITS, Step, StoredEdge, StoredNode};
pub use query::Stats;
pub use store::Store;
