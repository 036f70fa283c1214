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
//! writes. Each run stages through a connection of its own (`stage`): a run alone on the
//! store writes in one write transaction from its first write to its end; runs beside
//! others keep their rows in memory (a bounded budget) or, past it, temporary tables,
//! neither of which takes a lock, and are applied at their end in one transaction, one
//! run after another, through the store's shared writing connection; one thread
//! (`writer`) does those publishes and every run's short writes (leases, run records).
//! Either way a run that fails or is killed (even with SIGKILL) changes nothing, and
//! readers see the graph before or after a run. SQLite calls block, so the async trait
//! methods run them with `tokio::task::block_in_place` on a multi-thread runtime. Closing
//! the store folds the write-ahead log back into the file, so the file alone is the store.
//!
//! One file per job. `store` opens and checks the file and holds every method of
//! [`Store`], public and crate-internal, in one place: each hands the connection it needs
//! to the module that does the work and names the store and the operation in the error.
//! `sink` and `reader` are the traits' view of those methods (`GraphSink`, `StateStore`,
//! `GraphReader`). The work: `write` (indexes, upserts, update tags, a run's counts),
//! `cleanup`, `history` (plugin state, run history), `encode` (property maps), `resolve`
//! (an edge's ends), `query` (reads), `export` and `import` (whole graphs), `stage` (a
//! run's writes until it publishes), `writer` (the shared writing connection and its
//! thread), `lease` (one run per plugin and scope).
//!
//! # Layout
//!
//! Version 2 (in `meta`, key `layout`; a store with a newer version is refused, an older
//! one upgraded). The same
//! description, for users who query the file with plain SQL, is in `LAYOUT.md`.
//!
//! | table | columns | notes |
//! |---|---|---|
//! | `meta` | `key`, `value` | `format` = `infragraph`, `layout` = 1, `last_update_tag` |
//! | `nodes` | `nid` INTEGER PRIMARY KEY, `label`, `id`, `extra_labels` (JSON array), `props` (JSON object), `firstseen`, `lastupdated`, `seen`, `digest`, `source`, `scope`, `also_scopes` | UNIQUE (`label`, `id`) |
//! | `edges` | `eid` INTEGER PRIMARY KEY, `type`, `src` → `nodes.nid`, `dst` → `nodes.nid`, `props`, `firstseen`, `lastupdated`, `seen`, `digest`, `source`, `scope`, `also_scopes` | UNIQUE (`src`, `type`, `dst`) |
//! | `labels` | `label` PRIMARY KEY, `plugin` | the plugin each primary label belongs to |
//! | `leases` | `plugin`, `scope`, `holder`, `token`, `expires` | PRIMARY KEY (`plugin`, `scope`): the run in progress |
//! | `runs` | `run_id`, `plugin`, `scope`, `update_tag`, `status`, `started_at`, `finished_at`, `report` (JSON) | one row per sync of a plugin |
//! | `plugin_state` | `plugin`, `scope`, `key`, `value` BLOB | PRIMARY KEY (`plugin`, `scope`, `key`) |
//!
//! Indexes: `edges (dst, type)` for incoming edges (outgoing ones use the unique index),
//! `(source, scope, seen)` on both tables for cleanup, and, per indexed property
//! `p` of a label `L` in a plugin's schema (and per property used as an edge end's key), a
//! partial index on `json_extract(props, '$.p') WHERE label = 'L'`.
//!
//! `firstseen`, `lastupdated` and `seen` are update tags (milliseconds since the epoch,
//! strictly increasing per store; none goes back): created, last changed (the `digest` of
//! what the plugin emitted differs, or a scope newly asserts it), last emitted, which
//! cleanup compares; `source` is the plugin that owns
//! the record, `scope` the scope that created it and `also_scopes` the others asserting
//! it. Exports name them `firstseen`, `lastupdated`, `_source`, `_scope`, `_also_scopes`.
//!
//! # Semantics
//!
//! Nodes are upserted by (label, `id`), properties merged as Cypher's `SET n += $props`
//! (SQLite's `json_patch`): a null removes a property. Edges are merged by (type, start,
//! end), each end matched by its primary label and key property (`id` through the unique
//! index, another property through its expression index, where several matching nodes are
//! all linked); an edge with an end missing is counted as unresolved. A write to a record
//! another plugin owns fails the run. Cleanup takes the run's scope off the records it no
//! longer asserts and deletes those no scope asserts, a node with all its edges; nodes of
//! incomplete labels and every edge touching one are kept.
#![deny(missing_docs)]

mod cleanup;
mod encode;
mod error;
mod export;
mod history;
mod import;
mod layout;
mod lease;
mod query;
mod reader;
mod resolve;
mod sink;
mod stage;
mod store;
mod write;
mod writer;

pub use error::{Error, ErrorKind};
pub use export::ExportStats;
pub use import::ImportStats;
pub use infragraph_core::{Direction, MAX_PATH_VISITS, Step, StoredEdge, StoredNode};
pub use query::Stats;
pub use store::Store;
