//! A run's writes until the run ends, in one of two ways. Each run has a connection of
//! its own to the store.
//!
//! - **Direct**, when the run is the only one in progress: its connection opens the write
//!   transaction at the run's first write and applies every batch as it comes, so the
//!   plugin keeps running while SQLite writes; the cleanup and the state go in the same
//!   transaction, committed at the end.
//! - **Held**, when other runs are in progress (their writes would wait for the lock the
//!   whole run long): batches go into temporary tables of the run's connection (SQLite
//!   keeps them in a temporary file, deleted even if the process is killed), which takes
//!   no lock on the store, and [`Stage::publish`] applies them, the cleanup and the state
//!   in one transaction at the end.
//!
//! Either way, a failed or killed run applies nothing, and readers see the graph before
//! or after a run, never between.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use infragraph_core::{ChangeCounts, EdgeBatch, NodeBatch, Publish, WriteScope};
use rusqlite::{Connection, ErrorCode, wal::CheckpointMode};

use crate::encode::PropsWriter;
use crate::error::Fail;
use crate::{cleanup, history, write};

const TABLES: &str = "
CREATE TEMP TABLE stage_nodes (
    seq   INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    id    TEXT NOT NULL,
    extra TEXT NOT NULL,
    clean TEXT NOT NULL,
    patch TEXT,
    digest BLOB NOT NULL
);
CREATE TEMP TABLE stage_edges (
    seq   INTEGER PRIMARY KEY,
    shape INTEGER NOT NULL,
    src   TEXT NOT NULL,
    dst   TEXT NOT NULL,
    clean TEXT NOT NULL,
    patch TEXT,
    digest BLOB NOT NULL
);
";

/// What makes edges one kind: the type and how each end is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    pub(crate) rel_type: String,
    pub(crate) from_label: String,
    pub(crate) from_key: String,
    pub(crate) to_label: String,
    pub(crate) to_key: String,
}

impl Shape {
    pub(crate) fn of(batch: &EdgeBatch) -> Shape {
        Shape {
            rel_type: batch.rel_type.clone(),
            from_label: batch.from_label.clone(),
            from_key: batch.from_key.clone(),
            to_label: batch.to_label.clone(),
            to_key: batch.to_key.clone(),
        }
    }
}

/// One run's writes so far.
pub(crate) struct Stage {
    conn: Connection,
    /// Whether `conn` holds the run's write transaction (direct) rather than temporary
    /// tables (held).
    direct: bool,
    shapes: HashMap<Shape, i64>,
    by_number: Vec<Shape>,
    /// The pages in the write-ahead log after this connection's last commit.
    wal_pages: Arc<AtomicI32>,
}

/// The write-ahead log size, in pages, past which a run checkpoints it after publishing:
/// SQLite's own automatic checkpoint threshold.
const CHECKPOINT_PAGES: i32 = 1000;

impl Stage {
    /// A stage on `conn`, a connection of its own to the store: direct when `alone` and
    /// the store's write lock is free at once, held otherwise.
    pub(crate) fn new(mut conn: Connection, alone: bool) -> Result<Stage, Fail> {
        // SQLite checkpoints inside the commit that crosses its threshold, which made a
        // run hold the write lock while copying the log into the store, and the runs
        // queued behind it wait. The hook (which replaces that automatic checkpoint) only
        // notes the log's size; the run checkpoints after publishing, outside the lock.
        let wal_pages = Arc::new(AtomicI32::new(0));
        let noted = wal_pages.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            noted.store(pages, Ordering::Relaxed);
            Ok(())
        }))?;
        let direct = alone && try_begin(&conn)?;
        if !direct {
            // A large run's stage is as large as its graph: on disk, not in memory.
            conn.pragma_update(None, "temp_store", "FILE")?;
            conn.execute_batch(TABLES)?;
        }
        Ok(Stage {
            conn,
            direct,
            shapes: HashMap::new(),
            by_number: Vec::new(),
            wal_pages,
        })
    }

    /// The connection holding the run's write transaction, when direct: what else the run
    /// writes meanwhile (its lease, an index) must go through it, or wait for itself.
    pub(crate) fn direct(&self) -> Option<&Connection> {
        self.direct.then_some(&self.conn)
    }

    /// Takes a batch of nodes.
    pub(crate) fn nodes(
        &mut self,
        w: &WriteScope,
        extra: &[String],
        batch: &NodeBatch,
    ) -> Result<(), Fail> {
        if self.direct {
            return write::nodes_now(&self.conn, w, extra, batch);
        }
        let extra_json = serde_json::to_string(extra)?;
        let mut props = PropsWriter::new(&batch.columns);
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO temp.stage_nodes (label, id, extra, clean, patch, digest) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            st.raw_bind_parameter(1, &batch.label)?;
            st.raw_bind_parameter(3, &extra_json)?;
            for row in &batch.rows {
                let digest = infragraph_core::digest(extra, &batch.columns, &row.values);
                st.raw_bind_parameter(6, &digest[..])?;
                let (clean, patch) = props.encode(&row.values);
                st.raw_bind_parameter(2, &row.id)?;
                st.raw_bind_parameter(4, clean)?;
                st.raw_bind_parameter(5, patch)?;
                st.raw_execute()?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes a batch of edges; returns how many rows had an end that does not exist, as
    /// far as known now (held edges are resolved when the run publishes).
    pub(crate) fn edges(&mut self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Fail> {
        if self.direct {
            write::create_indexes(&self.conn, &write::edge_indexes(batch))?;
            return write::edges_now(&self.conn, w, batch);
        }
        let shape = Shape::of(batch);
        let number = match self.shapes.get(&shape) {
            Some(n) => *n,
            None => {
                let n = self.by_number.len() as i64;
                self.by_number.push(shape.clone());
                self.shapes.insert(shape, n);
                n
            }
        };
        let mut props = PropsWriter::new(&batch.columns);
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO temp.stage_edges (shape, src, dst, clean, patch, digest) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            st.raw_bind_parameter(1, number)?;
            for row in &batch.rows {
                let digest = infragraph_core::digest(&[], &batch.columns, &row.values);
                st.raw_bind_parameter(6, &digest[..])?;
                let (clean, patch) = props.encode(&row.values);
                st.raw_bind_parameter(2, &row.from)?;
                st.raw_bind_parameter(3, &row.to)?;
                st.raw_bind_parameter(4, clean)?;
                st.raw_bind_parameter(5, patch)?;
                st.raw_execute()?;
            }
        }
        tx.commit()?;
        Ok(0)
    }

    /// Applies the run and ends it: held nodes, then held edges (so an edge finds a node
    /// emitted after it), the counts, the cleanup and the state, committed together.
    /// `temp` names the cleanup's temporary tables.
    pub(crate) fn publish(
        &mut self,
        w: &WriteScope,
        p: &Publish<'_>,
        temp: u64,
    ) -> Result<ChangeCounts, Fail> {
        if !self.direct {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(Fail::Sql)?;
        }
        let applied = (|| {
            // Where the write lock's time goes, for `INFRAGRAPH_LOG=debug`: with many
            // runs at once, publishes are the serial part of a sync (issue 18).
            let mut lap = Laps::start();
            let mut unresolved = Default::default();
            if !self.direct {
                write::replay_nodes(&self.conn, w)?;
            }
            lap.mark();
            if !self.direct {
                unresolved = write::replay_edges(&self.conn, w, &self.by_number)?;
            }
            lap.mark();
            let mut counts = write::changes(&self.conn, w)?;
            for (rel_type, n) in unresolved {
                counts.edges.entry(rel_type).or_default().unresolved += n;
            }
            lap.mark();
            if let Some(keep) = p.cleanup {
                counts.absorb(&cleanup::run(&self.conn, temp, w, keep)?);
            }
            lap.mark();
            history::commit_state(&self.conn, p.state_plugin, &w.scope, p.state)?;
            write::note_update_tag(&self.conn, w.update_tag)?;
            self.conn.execute_batch("COMMIT")?;
            lap.mark();
            tracing::debug!(
                plugin = %w.plugin,
                scope = %w.scope,
                held = !self.direct,
                laps_us = ?lap.0,
                "published (µs: nodes, edges, counts, cleanup, state and commit)"
            );
            Ok(counts)
        })();
        if applied.is_err() && !self.conn.is_autocommit() {
            // Nothing of the run is applied; the stage is dropped next.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        applied
    }
}

impl Stage {
    /// Checkpoints the write-ahead log when the last commit left it past the threshold:
    /// PASSIVE, so it never waits for or blocks the runs publishing meanwhile; a
    /// checkpoint another connection is running already makes this one a no-op.
    pub(crate) fn checkpoint_if_due(&self) {
        if self.wal_pages.load(Ordering::Relaxed) < CHECKPOINT_PAGES {
            return;
        }
        self.wal_pages.store(0, Ordering::Relaxed);
        if let Err(e) = self
            .conn
            .wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
        {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }

    /// Its connection, emptied for another run: no transaction open, no staged tables.
    /// `None` when it cannot be emptied.
    pub(crate) fn into_connection(mut self) -> Option<Connection> {
        let empty = (|| -> rusqlite::Result<()> {
            if !self.conn.is_autocommit() {
                self.conn.execute_batch("ROLLBACK")?;
            }
            self.conn.execute_batch(
                "DROP TABLE IF EXISTS temp.stage_nodes; DROP TABLE IF EXISTS temp.stage_edges;",
            )
        })();
        empty.ok()?;
        // What `Drop` then finds is a connection with nothing to roll back.
        let blank = Connection::open_in_memory().ok()?;
        Some(std::mem::replace(&mut self.conn, blank))
    }
}

/// Microseconds between marks, from the start.
struct Laps(Vec<u128>, std::time::Instant);

impl Laps {
    fn start() -> Laps {
        Laps(Vec::with_capacity(5), std::time::Instant::now())
    }

    fn mark(&mut self) {
        let now = std::time::Instant::now();
        self.0.push(now.duration_since(self.1).as_micros());
        self.1 = now;
    }
}

/// Opens the write transaction if the store's write lock is free now; `false` when
/// another connection holds it.
fn try_begin(conn: &Connection) -> Result<bool, Fail> {
    let waits = conn.busy_timeout(std::time::Duration::ZERO);
    let begun = match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => true,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            false
        }
        Err(e) => return Err(e.into()),
    };
    waits?;
    conn.busy_timeout(crate::store::BUSY_TIMEOUT)?;
    Ok(begun)
}

impl Drop for Stage {
    fn drop(&mut self) {
        // A run discarded (or never published) while direct: its writes go.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
