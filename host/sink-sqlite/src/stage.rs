//! A run's writes until the run ends, in one of two ways. Each run has a connection of
//! its own to the store.
//!
//! - **Direct**, when the run is the only one in progress: its connection opens the write
//!   transaction at the run's first write and applies every batch as it comes, so the
//!   plugin keeps running while SQLite writes; the cleanup and the state go in the same
//!   transaction, committed at the end.
//! - **Held**, when other runs are in progress (their writes would wait for the lock the
//!   whole run long): batches are kept, encoded, in memory, and [`Stage::publish`]
//!   applies them, the cleanup and the state in one transaction at the end, through the
//!   store's shared writing connection. What held
//!   runs keep in memory is bounded (2 MiB a run; for all runs of a store together,
//!   512 KiB per held run in progress and at least 16 MiB: [`HeldBudget`]); a run that
//!   reaches either bound moves what it holds into temporary
//!   tables of its connection (SQLite keeps them in a temporary file, deleted even if the
//!   process is killed, and they take no lock on the store) and stages the rest of its
//!   batches there. Small runs side by side thus skip writing their rows to a table and
//!   reading them back, the latter under the store's write lock: 200 runs of 500
//!   resources synced in 5.7 s against 6.3-7.1 s through the tables (connections, issue
//!   18).
//!
//! Either way, a failed or killed run applies nothing, and readers see the graph before
//! or after a run, never between.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use infragraph_core::{ChangeCounts, Digest, EdgeBatch, NodeBatch, Publish, WriteScope};
use rusqlite::{Connection, ErrorCode, wal::CheckpointMode};

use crate::encode::PropsWriter;
use crate::error::Fail;
use crate::resolve::{NewNodes, RunNodes};
use crate::write::StagedNode;
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

/// Bytes of staged rows the held runs of one store keep in memory together, at the
/// least: the bound is this or [`HELD_SHARE`] per held run in progress, the larger.
pub(crate) const HELD_IN_MEMORY: usize = 16 << 20;

/// Room each held run in progress adds to the store's bound on rows kept in memory, so
/// that the bound follows how many runs are side by side (at most twice `concurrency`:
/// those running their plugin and those past it) instead of making them spill to their
/// tables as they grow in number. 512 KiB is what a run of about 500 resources holds when
/// it publishes (450 KB on average for the 200 Scaleway Organizations of `bench_connections
/// connections`). With a fixed 16 MiB, 6 of those 200 runs spilled at `--concurrency 64`
/// and 113 at 128, each writing its rows to a table and reading them back.
pub(crate) const HELD_SHARE: usize = 512 << 10;

/// Bytes of staged rows one held run keeps in memory, at most: many small runs side by
/// side (accounts of a few hundred resources, issue 18) publish from memory, while a large
/// run goes to its tables early, before holding much. Measured with 20 Azure tenants of
/// 8,000 nodes each, no such bound and a budget of 64 MiB, the sync took a fifth longer
/// and its peak memory went from 463 to 528 MB.
const HELD_PER_RUN: usize = 2 << 20;

/// What the held runs of a store keep in memory, counted against a bound: `floor`, or
/// `share` for each held run in progress, whichever is larger (a store's are
/// [`HELD_IN_MEMORY`] and [`HELD_SHARE`]).
#[derive(Debug)]
pub(crate) struct HeldBudget {
    used: AtomicUsize,
    floor: usize,
    share: usize,
    /// Held runs in progress: stages that [`HeldBudget::join`]ed and are not dropped yet.
    runs: AtomicUsize,
}

impl HeldBudget {
    pub(crate) fn new(floor: usize, share: usize) -> HeldBudget {
        HeldBudget {
            used: AtomicUsize::new(0),
            floor,
            share,
            runs: AtomicUsize::new(0),
        }
    }

    /// The bound now.
    fn bound(&self) -> usize {
        let runs = self.runs.load(Ordering::Acquire);
        self.floor.max(runs.saturating_mul(self.share))
    }

    /// Takes `n` bytes if they fit under the bound.
    fn take(&self, n: usize) -> bool {
        let bound = self.bound();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + n <= bound).then_some(used + n)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// A held run starts: the bound grows by its share.
    fn join(&self) {
        self.runs.fetch_add(1, Ordering::AcqRel);
    }

    /// A held run ends (after giving back what it took).
    fn leave(&self) {
        self.runs.fetch_sub(1, Ordering::AcqRel);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Where a string kept in [`Memory::text`] is: start and end.
type Span = (u32, u32);

/// A node as staged: its batch's label and extra labels are kept once per batch.
struct HeldNode {
    batch: u32,
    id: Span,
    clean: Span,
    patch: Option<Span>,
    digest: Digest,
}

/// An edge as staged.
struct HeldEdge {
    shape: i64,
    src: Span,
    dst: Span,
    clean: Span,
    patch: Option<Span>,
    digest: Digest,
}

/// A held run's rows kept in memory, in the order they came. Their strings are kept one
/// after another in one buffer rather than each in an allocation of its own: a run's
/// rows go together (published or moved to the tables), and a few large buffers go back
/// to the system when freed, where thousands of small ones stayed in the allocator's
/// arenas: 20 Azure tenants side by side peaked at 487-489 MB that way, 469 MB with one
/// buffer (463-467 MB before any row was kept in memory).
#[derive(Default)]
struct Memory {
    /// Label and extra labels (JSON) of each node batch.
    batches: Vec<(String, String)>,
    /// Their bytes, so that [`Memory::size`], asked after each row, need not add them up.
    batches_bytes: usize,
    text: String,
    nodes: Vec<HeldNode>,
    edges: Vec<HeldEdge>,
}

impl Memory {
    /// Keeps `s` in the buffer.
    fn keep(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    fn str(&self, (start, end): Span) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// How long each list is, to go back to with [`Memory::back_to`].
    fn mark(&self) -> [usize; 4] {
        [
            self.text.len(),
            self.nodes.len(),
            self.edges.len(),
            self.batches.len(),
        ]
    }

    /// Drops what was kept since `mark`.
    fn back_to(&mut self, [text, nodes, edges, batches]: [usize; 4]) {
        self.text.truncate(text);
        self.nodes.truncate(nodes);
        self.edges.truncate(edges);
        self.batches.truncate(batches);
        self.batches_bytes = self.batches.iter().map(|(l, e)| l.len() + e.len()).sum();
    }

    /// Keeps a node batch's label and extra labels; returns its number.
    fn batch(&mut self, label: &str, extra: &str) -> u32 {
        self.batches_bytes += label.len() + extra.len();
        self.batches.push((label.to_owned(), extra.to_owned()));
        (self.batches.len() - 1) as u32
    }

    /// Bytes held: strings and places.
    fn size(&self) -> usize {
        self.text.len()
            + self.nodes.len() * std::mem::size_of::<HeldNode>()
            + self.edges.len() * std::mem::size_of::<HeldEdge>()
            + self.batches_bytes
    }

    /// The nodes as the replay and the table take them: `(label, id, extra labels as
    /// JSON, props, digest)`.
    fn node_rows(&self) -> impl Iterator<Item = StagedNode<'_>> {
        self.nodes.iter().map(|r| {
            let (label, extra) = &self.batches[r.batch as usize];
            (
                label.as_str(),
                self.str(r.id),
                extra.as_str(),
                (self.str(r.clean), r.patch.map(|p| self.str(p))),
                &r.digest[..],
            )
        })
    }
}

/// Where a held run's rows are.
enum Held {
    Memory(Memory),
    /// In the temporary tables, since a bound was reached.
    Tables,
}

/// At least what a batch of rows with these keys would hold in memory.
fn least_size<T>(keys: impl Iterator<Item = usize>) -> usize {
    keys.map(|k| k + std::mem::size_of::<T>()).sum()
}

/// One run's writes so far.
pub(crate) struct Stage {
    conn: Connection,
    /// Whether `conn` holds the run's write transaction (direct) rather than keeping the
    /// run's rows (held).
    direct: bool,
    held: Held,
    budget: Arc<HeldBudget>,
    /// Bytes of `budget` this run holds.
    taken: usize,
    shapes: HashMap<Shape, i64>,
    by_number: Vec<Shape>,
    /// Direct: the nodes the run has created so far, for its edges.
    written: NewNodes,
}

/// What is appended to the write-ahead log since its last checkpoint past which a run
/// checkpoints it after publishing, in bytes. A checkpoint copies each page once however
/// many commits rewrote it since the last, and real ids (random UUIDs) scatter every
/// publish over the whole `(label, id)` index, so a group of runs rewrites most of its
/// pages: checkpointing every 4 MB (SQLite's own 1000 pages of 4 KiB) copied them again
/// after nearly every group. At 32 MiB the 200 Scaleway organizations of `bench_connections
/// connections` took 3.3% +- 1.9% less time and 3.7% +- 1.9% less CPU (thirty alternated
/// pairs, 2026-12-07); 64 MiB gained nothing more measurable (-1.1% +- 1.7%, twenty).
const CHECKPOINT_BYTES: i64 = 32 << 20;

/// The write-ahead log size, in bytes, past which the next run to publish copies what is
/// left of it into the store first, under the write lock, so that its own transaction
/// starts the log again from its beginning (see [`restart_if_grown`]): twice the
/// checkpoint's threshold, so the log is copied by the checkpoints beside the writer
/// first. The log's file stays about this size (plus one group of runs) while a sync
/// writes, and is removed when the store closes.
const RESTART_BYTES: i64 = 64 << 20;

/// The write-ahead log's size as the commits of a store's connections left it, in pages:
/// those appended since a checkpoint was last due (zeroed then), and all in the log; with
/// the thresholds in pages of the store's size.
#[derive(Debug)]
pub(crate) struct WalSize {
    since_checkpoint: AtomicI32,
    in_log: AtomicI32,
    checkpoint_pages: i32,
    restart_pages: i32,
}

/// Checkpoints the write-ahead log through `conn` when `size` (see [`note_wal_pages`])
/// says the last commit left it past the threshold: PASSIVE, so it never waits for or
/// blocks the runs publishing meanwhile; a checkpoint another connection is running
/// already makes this one a no-op.
pub(crate) fn checkpoint_if_due(conn: &Connection, size: &WalSize) {
    if !size.take_due() {
        return;
    }
    if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
        tracing::debug!(error = %e, "checkpoint skipped");
    }
}

/// Copies what is left of the write-ahead log into the store through `writer`, whose
/// write lock the caller holds, when the log has grown past [`RESTART_BYTES`]: SQLite
/// starts the log again only in a write transaction that begins with all of it copied,
/// which the checkpoints run beside the writer never are while runs publish back to back.
/// Without this the log of a sync of 200 organizations grew to 215 MB for a 105 MB store,
/// every commit appending to it, and the process's end waited for its last checkpoint
/// and its deletion (connections, issue 18). What is left is what the checkpoints beside
/// it have not copied yet: the last run or two.
pub(crate) fn restart_if_grown(writer: &Connection, size: &WalSize) {
    if size.in_log.load(Ordering::Relaxed) < size.restart_pages {
        return;
    }
    if let Err(e) = writer.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
        tracing::debug!(error = %e, "checkpoint before the log's restart skipped");
    }
}

/// Makes `conn`'s commits note the write-ahead log's size in `size` instead of
/// checkpointing it. SQLite checkpoints inside the commit that crosses its threshold,
/// which made a run hold the write lock while copying the log into the store, and the
/// runs queued behind it wait; a run checkpoints after publishing instead, outside the
/// lock ([`Stage::checkpoint_if_due`]). Every connection of a store notes into one size:
/// there is one log.
pub(crate) fn note_wal_pages(conn: &mut Connection, size: Arc<WalSize>) -> Result<(), Fail> {
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n| {
        size.note_commit(n);
        Ok(())
    }))?;
    Ok(())
}

impl WalSize {
    /// The count of a store whose pages are `page_size` bytes.
    pub(crate) fn new(page_size: i64) -> WalSize {
        let pages = |bytes: i64| i32::try_from(bytes / page_size.max(512)).unwrap_or(i32::MAX);
        WalSize {
            since_checkpoint: AtomicI32::new(0),
            in_log: AtomicI32::new(0),
            checkpoint_pages: pages(CHECKPOINT_BYTES),
            restart_pages: pages(RESTART_BYTES),
        }
    }

    /// Notes a commit that left `n` pages in the log. SQLite gives the log's whole size,
    /// not what the commit added: the pages since the last checkpoint are counted here, so
    /// that a log past the threshold is checkpointed once per threshold's worth of pages,
    /// not after every publish (which copied and synced the log once per run, each time
    /// copying again the pages every run rewrites). Commits are serialised by the store's
    /// write lock, so one at a time notes its size.
    fn note_commit(&self, n: i32) {
        let before = self.in_log.swap(n, Ordering::Relaxed);
        // Smaller than before: the commit started the log again from its beginning.
        let added = if n >= before { n - before } else { n };
        self.since_checkpoint.fetch_add(added, Ordering::Relaxed);
    }

    /// Whether a checkpoint is due, counting from now if it is.
    fn take_due(&self) -> bool {
        if self.since_checkpoint.load(Ordering::Relaxed) < self.checkpoint_pages {
            return false;
        }
        self.since_checkpoint.store(0, Ordering::Relaxed);
        true
    }
}

impl Stage {
    /// A stage on `conn`, a connection of its own to the store: direct when `alone` and
    /// the store's write lock is free at once, held otherwise (in memory within `budget`).
    /// Its commits note the log's size in `wal_pages`, the store's count.
    pub(crate) fn new(
        mut conn: Connection,
        alone: bool,
        budget: Arc<HeldBudget>,
        wal_pages: &Arc<WalSize>,
    ) -> Result<Stage, Fail> {
        note_wal_pages(&mut conn, wal_pages.clone())?;
        let direct = alone && try_begin(&conn)?;
        if !direct {
            budget.join();
        }
        Ok(Stage {
            conn,
            direct,
            held: Held::Memory(Memory::default()),
            budget,
            taken: 0,
            shapes: HashMap::new(),
            by_number: Vec::new(),
            written: NewNodes::default(),
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
            return write::nodes_now(&self.conn, w, extra, batch, &mut self.written);
        }
        let extra_json = serde_json::to_string(extra)?;
        let least = least_size::<HeldNode>(batch.rows.iter().map(|r| r.id.len()));
        let held = self.hold(least, |m, limit| {
            let mut props = PropsWriter::new(&batch.columns);
            let at = m.batch(&batch.label, &extra_json);
            for row in &batch.rows {
                let (digest, (clean, patch)) =
                    props.encode_digest(extra, &batch.columns, &row.values);
                let node = HeldNode {
                    batch: at,
                    id: m.keep(&row.id),
                    clean: m.keep(clean),
                    patch: patch.map(|p| m.keep(p)),
                    digest,
                };
                m.nodes.push(node);
                if m.size() > limit {
                    return false;
                }
            }
            true
        })?;
        if !held {
            let tx = self.conn.transaction()?;
            stream_nodes(&tx, extra, &extra_json, batch)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Takes a batch of edges; returns how many rows had an end that does not exist, as
    /// far as known now (held edges are resolved when the run publishes).
    pub(crate) fn edges(&mut self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Fail> {
        if self.direct {
            write::create_indexes(&self.conn, &write::edge_indexes(batch))?;
            return write::edges_now(&self.conn, w, batch, &self.written);
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
        let least = least_size::<HeldEdge>(batch.rows.iter().map(|r| r.from.len() + r.to.len()));
        let held = self.hold(least, |m, limit| {
            let mut props = PropsWriter::new(&batch.columns);
            for row in &batch.rows {
                let (digest, (clean, patch)) =
                    props.encode_digest(&[], &batch.columns, &row.values);
                let edge = HeldEdge {
                    shape: number,
                    src: m.keep(&row.from),
                    dst: m.keep(&row.to),
                    clean: m.keep(clean),
                    patch: patch.map(|p| m.keep(p)),
                    digest,
                };
                m.edges.push(edge);
                if m.size() > limit {
                    return false;
                }
            }
            true
        })?;
        if !held {
            let tx = self.conn.transaction()?;
            stream_edges(&tx, number, batch)?;
            tx.commit()?;
        }
        Ok(0)
    }

    /// Keeps a batch in memory when it fits: `fill` adds its rows and returns `false` as
    /// soon as the memory's size passes the limit it is given (the run's bound), and the
    /// batch is then taken out again. A batch kept past the store's budget goes to the
    /// tables with the rest of the run's rows. `Ok(false)`: the run's rows are in its
    /// tables now and the batch is not; the caller streams it there. `least` is what
    /// the batch holds at the least: when even that passes the run's bound, nothing is
    /// encoded in memory first.
    fn hold(
        &mut self,
        least: usize,
        fill: impl FnOnce(&mut Memory, usize) -> bool,
    ) -> Result<bool, Fail> {
        let room = HELD_PER_RUN.saturating_sub(self.taken);
        let grown = self.memory_for(least).and_then(|m| {
            let (before, mark) = (m.size(), m.mark());
            if fill(m, before + room) {
                Some(m.size() - before)
            } else {
                m.back_to(mark);
                None
            }
        });
        match grown {
            Some(grown) => {
                if !self.keep(grown) {
                    self.spill()?;
                }
                Ok(true)
            }
            None => {
                self.spill()?;
                Ok(false)
            }
        }
    }

    /// The run's rows in memory, when it may keep at least `bytes` more there as far as
    /// its own bound goes.
    fn memory_for(&mut self, bytes: usize) -> Option<&mut Memory> {
        let taken = self.taken;
        match &mut self.held {
            Held::Memory(m) if taken + bytes <= HELD_PER_RUN => Some(m),
            _ => None,
        }
    }

    /// Counts `bytes` more kept in memory against the run's bound and the store's budget;
    /// `false` when either has not room for them.
    fn keep(&mut self, bytes: usize) -> bool {
        if self.taken + bytes > HELD_PER_RUN || !self.budget.take(bytes) {
            return false;
        }
        self.taken += bytes;
        true
    }

    /// Moves the rows kept in memory into temporary tables, where the run stages the
    /// rest, and gives their memory back. Once.
    fn spill(&mut self) -> Result<(), Fail> {
        let Held::Memory(m) = std::mem::replace(&mut self.held, Held::Tables) else {
            return Ok(());
        };
        // A large run's stage is as large as its graph: on disk, not in memory.
        self.conn.pragma_update(None, "temp_store", "FILE")?;
        self.conn.execute_batch(TABLES)?;
        let tx = self.conn.transaction()?;
        insert_nodes(&tx, m.node_rows())?;
        insert_edges(&tx, &m)?;
        tx.commit()?;
        drop(m);
        self.budget.give_back(std::mem::take(&mut self.taken));
        Ok(())
    }

    /// Applies the run and ends it: held nodes, then held edges (so an edge finds a node
    /// emitted after it), the counts, the cleanup and the state, committed together.
    /// `temp` names the cleanup's temporary tables.
    ///
    /// A direct run commits on its own connection. A held run is applied through
    /// `writer`, the store's shared writing connection, which the caller has locked:
    /// every held run publishing through one connection keeps that connection's page
    /// cache, where a run's own connection would find it emptied by the other runs'
    /// commits and read the store's index pages again from the file (connections,
    /// issue 18). Rows held in the stage's temporary tables are read through the stage's
    /// own connection, which they belong to.
    pub(crate) fn publish(
        &mut self,
        writer: Option<&Connection>,
        w: &WriteScope,
        p: &Publish<'_>,
        temp: u64,
    ) -> Result<ChangeCounts, Fail> {
        let conn = match writer {
            Some(writer) if !self.direct => writer,
            _ => &self.conn,
        };
        if !self.direct {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(Fail::Sql)?;
        }
        let applied = self
            .apply(conn, w, p, temp)
            .and_then(|counts| Ok(conn.execute_batch("COMMIT").map(|()| counts)?));
        if applied.is_err() && !conn.is_autocommit() {
            // Nothing of the run is applied; the stage is dropped next.
            let _ = conn.execute_batch("ROLLBACK");
        }
        applied
    }

    /// What [`Stage::publish`] does inside its transaction, which the caller opened on
    /// `conn` (the run's own connection when direct, the store's writer when held) and
    /// commits or rolls back: a held run may share it with other runs
    /// (`Store::publish_sync`).
    pub(crate) fn apply(
        &self,
        conn: &Connection,
        w: &WriteScope,
        p: &Publish<'_>,
        temp: u64,
    ) -> Result<ChangeCounts, Fail> {
        // Where the write lock's time goes, for `INFRAGRAPH_LOG=debug`: with many
        // runs at once, publishes are the serial part of a sync (issue 18).
        let mut lap = Laps::start();
        let mut unresolved = Default::default();
        // The nodes' inserts say where the new ones landed, and whether every write
        // created its record (then they are the counts): a spilled run's too, whose node
        // ids were read back from its table (issue 18: without them, each end of its edges
        // was an index look-up, and the counts a query, two thirds of the publishing time
        // of the 20 Azure tenants of `bench_connections connections-azure`).
        let (held, spilled);
        let (mut written, mut created) = (None, None);
        if !self.direct {
            match &self.held {
                Held::Memory(m) => {
                    let new;
                    (held, new) = write::replay_held_nodes(conn, w, m.node_rows())?;
                    (written, created) = (Some(RunNodes::Held(&held)), Some(new));
                }
                Held::Tables => {
                    spilled = write::replay_nodes(&self.conn, conn, w)?;
                    (written, created) = (Some(spilled.nodes()), Some(spilled.created()));
                }
            }
        }
        lap.mark();
        let mut known = None;
        if !self.direct {
            unresolved = match &self.held {
                Held::Memory(m) => {
                    // As from the table: grouped by shape, in the order they came.
                    let mut order: Vec<&HeldEdge> = m.edges.iter().collect();
                    order.sort_by_key(|e| e.shape);
                    let mut replay = write::EdgeReplay::new(conn, w, &self.by_number, written)?;
                    for e in order {
                        replay.row(
                            e.shape,
                            (m.str(e.src), m.str(e.dst)),
                            (m.str(e.clean), e.patch.map(|p| m.str(p))),
                            &e.digest,
                        )?;
                    }
                    let (unresolved, edges) = replay.finish();
                    known = created.and_then(|nodes| write::Created::counts(nodes, edges));
                    unresolved
                }
                Held::Tables => {
                    let written = written.expect("set with the nodes");
                    let (unresolved, edges) =
                        write::replay_edges(&self.conn, conn, w, &self.by_number, written)?;
                    known = created.and_then(|nodes| write::Created::counts(nodes, edges));
                    unresolved
                }
            };
        }
        lap.mark();
        let mut counts = match known {
            Some(counts) => counts,
            None => write::changes(conn, w)?,
        };
        for (rel_type, n) in unresolved {
            counts.edges.entry(rel_type).or_default().unresolved += n;
        }
        lap.mark();
        if let Some(keep) = p.cleanup {
            counts.absorb(&cleanup::run(conn, temp, w, keep)?);
        }
        lap.mark();
        history::commit_state(conn, p.state_plugin, &w.scope, p.state)?;
        write::note_update_tag(conn, w.update_tag)?;
        lap.mark();
        tracing::debug!(
            plugin = %w.plugin,
            scope = %w.scope,
            held = !self.direct,
            laps_us = ?lap.0,
            "applied (µs: nodes, edges, counts, cleanup, state)"
        );
        Ok(counts)
    }
}

impl Stage {
    /// Checkpoints the write-ahead log, through this stage's connection, when the store's
    /// last commit left it past the threshold (see [`checkpoint_if_due`]).
    /// Not after a held run once the log is due to start again: the next run to publish
    /// checkpoints then, under the write lock ([`restart_if_grown`]), and a checkpoint
    /// running here meanwhile would make that one a no-op.
    pub(crate) fn checkpoint_if_due(&self, wal_pages: &WalSize) {
        if !self.direct && wal_pages.in_log.load(Ordering::Relaxed) >= wal_pages.restart_pages {
            return;
        }
        checkpoint_if_due(&self.conn, wal_pages);
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

/// Stages a batch of nodes in the temporary table as it is encoded, one buffer for all.
fn stream_nodes(
    tx: &rusqlite::Transaction<'_>,
    extra: &[String],
    extra_json: &str,
    batch: &NodeBatch,
) -> Result<(), Fail> {
    let mut props = PropsWriter::new(&batch.columns);
    let mut st = tx.prepare_cached(
        "INSERT INTO temp.stage_nodes (label, id, extra, clean, patch, digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    st.raw_bind_parameter(1, &batch.label)?;
    st.raw_bind_parameter(3, extra_json)?;
    for row in &batch.rows {
        let (digest, (clean, patch)) = props.encode_digest(extra, &batch.columns, &row.values);
        st.raw_bind_parameter(6, &digest[..])?;
        st.raw_bind_parameter(2, row.id.as_str())?;
        st.raw_bind_parameter(4, clean)?;
        st.raw_bind_parameter(5, patch)?;
        st.raw_execute()?;
    }
    Ok(())
}

/// Stages a batch of edges of shape `number` in the temporary table as it is encoded.
fn stream_edges(
    tx: &rusqlite::Transaction<'_>,
    number: i64,
    batch: &EdgeBatch,
) -> Result<(), Fail> {
    let mut props = PropsWriter::new(&batch.columns);
    let mut st = tx.prepare_cached(
        "INSERT INTO temp.stage_edges (shape, src, dst, clean, patch, digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    st.raw_bind_parameter(1, number)?;
    for row in &batch.rows {
        let (digest, (clean, patch)) = props.encode_digest(&[], &batch.columns, &row.values);
        st.raw_bind_parameter(6, &digest[..])?;
        st.raw_bind_parameter(2, row.from.as_str())?;
        st.raw_bind_parameter(3, row.to.as_str())?;
        st.raw_bind_parameter(4, clean)?;
        st.raw_bind_parameter(5, patch)?;
        st.raw_execute()?;
    }
    Ok(())
}

/// Stages nodes kept in memory in the temporary table.
fn insert_nodes<'a>(
    tx: &rusqlite::Transaction<'_>,
    rows: impl Iterator<Item = StagedNode<'a>>,
) -> Result<(), Fail> {
    let mut st = tx.prepare_cached(
        "INSERT INTO temp.stage_nodes (label, id, extra, clean, patch, digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (label, id, extra, (clean, patch), digest) in rows {
        st.execute(rusqlite::params![label, id, extra, clean, patch, digest])?;
    }
    Ok(())
}

/// Stages the edges kept in memory in the temporary table.
fn insert_edges(tx: &rusqlite::Transaction<'_>, m: &Memory) -> Result<(), Fail> {
    let mut st = tx.prepare_cached(
        "INSERT INTO temp.stage_edges (shape, src, dst, clean, patch, digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in &m.edges {
        st.execute(rusqlite::params![
            e.shape,
            m.str(e.src),
            m.str(e.dst),
            m.str(e.clean),
            e.patch.map(|p| m.str(p)),
            &e.digest[..]
        ])?;
    }
    Ok(())
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.taken));
        if !self.direct {
            self.budget.leave();
        }
        // A run discarded (or never published) while direct: its writes go.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use infragraph_core::{EdgeRow, NodeRow, Value};

    use super::*;
    use crate::layout;

    fn w() -> WriteScope {
        WriteScope {
            plugin: "demo".into(),
            scope: "org".into(),
            update_tag: 7,
        }
    }

    fn nodes(label: &str, ids: std::ops::Range<u32>) -> NodeBatch {
        NodeBatch {
            label: label.into(),
            columns: vec!["n".into(), "gone".into()],
            rows: ids
                .map(|i| NodeRow {
                    id: format!("{label}-{i}").into(),
                    values: vec![Value::Int(i.into()), Value::Null],
                })
                .collect(),
        }
    }

    fn edges(from: &str, to: &str, pairs: &[(u32, u32)]) -> EdgeBatch {
        EdgeBatch {
            rel_type: "LINKS".into(),
            from_label: from.into(),
            from_key: "id".into(),
            to_label: to.into(),
            to_key: "id".into(),
            columns: vec!["w".into()],
            rows: pairs
                .iter()
                .map(|(f, t)| EdgeRow {
                    from: format!("{from}-{f}").into(),
                    to: format!("{to}-{t}").into(),
                    values: vec![Value::Int((f * 100 + t).into())],
                })
                .collect(),
        }
    }

    /// A new store in a file (connections of their own cannot share one in memory):
    /// a connection for a stage and one to publish through, as the store's writer.
    fn stage_and_writer(dir: &tempfile::TempDir) -> (Connection, Connection) {
        let path = dir.path().join("store.db");
        let writer = layout::in_file(&path);
        (Connection::open(&path).unwrap(), writer)
    }

    /// One held run, with `bound` bytes to keep in memory, published through another
    /// connection into a new store: whether it spilled, the bytes it held before
    /// publishing, what it counted and the graph it left, row by row; the budget is
    /// checked to be given back when it ends.
    fn held_run(bound: usize) -> (bool, usize, ChangeCounts, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let (conn, writer) = stage_and_writer(&dir);
        // A node of an earlier run, in another scope: found by a look-up, not among the
        // nodes this run creates.
        writer
            .execute(
                "INSERT INTO nodes (label, id, firstseen, lastupdated, seen, source, scope) \
                 VALUES ('DemoB', 'DemoB-77', 1, 1, 1, 'demo', 'elsewhere')",
                [],
            )
            .unwrap();
        let budget = Arc::new(HeldBudget::new(bound, 0));
        let mut stage =
            Stage::new(conn, false, budget.clone(), &Arc::new(WalSize::new(4096))).unwrap();
        let w = w();
        stage.nodes(&w, &[], &nodes("DemoA", 0..50)).unwrap();
        // Edges to nodes not staged yet, another shape between, an end that never comes.
        stage
            .edges(&w, &edges("DemoA", "DemoB", &[(1, 2), (3, 4), (5, 99)]))
            .unwrap();
        stage
            .edges(&w, &edges("DemoA", "DemoA", &[(1, 2), (2, 3)]))
            .unwrap();
        stage
            .nodes(&w, &["Extra".into()], &nodes("DemoB", 0..50))
            .unwrap();
        stage
            .edges(&w, &edges("DemoA", "DemoB", &[(7, 8), (9, 77)]))
            .unwrap();
        let spilled = matches!(stage.held, Held::Tables);
        let held = budget.used();
        let state = BTreeMap::new();
        let counts = stage
            .publish(
                Some(&writer),
                &w,
                &Publish {
                    cleanup: Some(&[]),
                    state: &state,
                    state_plugin: "demo",
                    cleanup_batch: 100,
                },
                1,
            )
            .unwrap();
        let mut graph: Vec<String> = writer
            .prepare(
                "SELECT label || ' ' || id || ' ' || extra_labels || ' ' || props || ' ' || \
                 hex(digest) FROM nodes ORDER BY label, id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let links: Vec<String> = writer
            .prepare(
                "SELECT e.type || ' ' || a.id || ' ' || b.id || ' ' || e.props || ' ' || \
                 hex(e.digest) FROM edges e JOIN nodes a ON a.nid = e.src \
                 JOIN nodes b ON b.nid = e.dst ORDER BY a.id, b.id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        graph.extend(links);
        drop(stage);
        assert_eq!(budget.used(), 0, "the budget is given back");
        (spilled, held, counts, graph)
    }

    /// A batch whose values pass the run's bound while it is encoded goes to the tables,
    /// with what was kept before it, and nothing of it stays in memory.
    #[test]
    fn a_batch_of_large_values_goes_to_the_tables_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, writer) = stage_and_writer(&dir);
        let budget = Arc::new(HeldBudget::new(HELD_IN_MEMORY, HELD_SHARE));
        let mut stage =
            Stage::new(conn, false, budget.clone(), &Arc::new(WalSize::new(4096))).unwrap();
        let w = w();
        stage.nodes(&w, &[], &nodes("DemoA", 0..5)).unwrap();
        assert!(budget.used() > 0);
        let big = NodeBatch {
            label: "DemoBig".into(),
            columns: vec!["blob".into()],
            rows: (0..3)
                .map(|i| NodeRow {
                    id: format!("big-{i}").into(),
                    values: vec![Value::Text("x".repeat(HELD_PER_RUN / 2).into())],
                })
                .collect(),
        };
        stage.nodes(&w, &[], &big).unwrap();
        assert!(matches!(stage.held, Held::Tables));
        assert_eq!(budget.used(), 0);
        let state = BTreeMap::new();
        let counts = stage
            .publish(
                Some(&writer),
                &w,
                &Publish {
                    cleanup: None,
                    state: &state,
                    state_plugin: "demo",
                    cleanup_batch: 100,
                },
                1,
            )
            .unwrap();
        assert_eq!(counts.nodes["DemoA"].created, 5);
        assert_eq!(counts.nodes["DemoBig"].created, 3);
        let len: i64 = writer
            .query_row(
                "SELECT sum(length(props)) FROM nodes WHERE label = 'DemoBig'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(len as usize > 3 * HELD_PER_RUN / 2);
    }

    /// A run that writes a record twice, or writes records an earlier run created, has
    /// its counts from the tables: created once, then seen again. So whether its rows
    /// stayed in memory or went to its temporary tables.
    #[test]
    fn held_counts_are_exact_when_a_write_is_not_new() {
        held_counts_when_a_write_is_not_new(HELD_IN_MEMORY, false);
        held_counts_when_a_write_is_not_new(0, true);
    }

    fn held_counts_when_a_write_is_not_new(bound: usize, spills: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (conn, writer) = stage_and_writer(&dir);
        let publish = |stage: &mut Stage, w: &WriteScope| {
            let state = BTreeMap::new();
            let p = Publish {
                cleanup: None,
                state: &state,
                state_plugin: "demo",
                cleanup_batch: 100,
            };
            stage.publish(Some(&writer), w, &p, 1).unwrap()
        };
        let budget = Arc::new(HeldBudget::new(bound, 0));
        let new = |conn| Stage::new(conn, false, budget.clone(), &Arc::new(WalSize::new(4096)));
        let mut stage = new(conn).unwrap();
        let w = w();
        stage.nodes(&w, &[], &nodes("DemoA", 0..10)).unwrap();
        stage.nodes(&w, &[], &nodes("DemoA", 5..12)).unwrap();
        stage
            .edges(&w, &edges("DemoA", "DemoA", &[(1, 2), (1, 2), (2, 3)]))
            .unwrap();
        assert_eq!(matches!(stage.held, Held::Tables), spills);
        let counts = publish(&mut stage, &w);
        assert_eq!(counts.nodes["DemoA"].created, 12);
        assert_eq!(counts.nodes["DemoA"].updated, 0);
        assert_eq!(counts.edges["LINKS"].created, 2);
        // The next run sees them all again.
        let mut stage = new(Connection::open(dir.path().join("store.db")).unwrap()).unwrap();
        let w = WriteScope { update_tag: 8, ..w };
        stage.nodes(&w, &[], &nodes("DemoA", 0..12)).unwrap();
        stage
            .edges(&w, &edges("DemoA", "DemoA", &[(1, 2), (2, 3), (3, 4)]))
            .unwrap();
        assert_eq!(matches!(stage.held, Held::Tables), spills);
        let counts = publish(&mut stage, &w);
        assert_eq!(counts.nodes["DemoA"].created, 0);
        assert_eq!(counts.nodes["DemoA"].updated, 12);
        assert_eq!(counts.nodes["DemoA"].unchanged, 12);
        assert_eq!(counts.edges["LINKS"].created, 1);
        assert_eq!(counts.edges["LINKS"].updated, 2);
    }

    /// A held run keeps its rows in memory within the budget, moves them to its
    /// temporary tables when the budget runs out mid-run, or stages there from the start
    /// with none: the same graph and counts every way.
    #[test]
    fn held_runs_publish_the_same_graph_from_memory_or_tables() {
        let (spilled, held, counts, graph) = held_run(HELD_IN_MEMORY);
        assert!(!spilled);
        assert!(held > 0);
        assert_eq!(counts.nodes["DemoA"].created, 50);
        assert_eq!(counts.nodes["DemoB"].created, 50);
        assert_eq!(counts.edges["LINKS"].created, 6);
        assert_eq!(counts.edges["LINKS"].unresolved, 1);
        assert_eq!(graph.len(), 107);
        assert!(
            graph
                .iter()
                .any(|r| r.starts_with("DemoB DemoB-3 [\"Extra\"] {\"n\":3} "))
        );
        assert!(
            graph
                .iter()
                .any(|r| r.starts_with("LINKS DemoA-3 DemoB-4 {\"w\":304} "))
        );
        assert!(
            graph
                .iter()
                .any(|r| r.starts_with("LINKS DemoA-9 DemoB-77 {\"w\":977} "))
        );
        // Room for the first batch and its edges only: the rest spills, with them.
        let (spilled, held, mid_counts, mid_graph) = held_run(held / 2);
        assert!(spilled);
        assert_eq!(held, 0, "what was kept moved to the tables");
        assert_eq!((&mid_counts, &mid_graph), (&counts, &graph));
        let (spilled, _, none_counts, none_graph) = held_run(0);
        assert!(spilled);
        assert_eq!((&none_counts, &none_graph), (&counts, &graph));
    }

    /// A checkpoint is due once per [`CHECKPOINT_BYTES`] appended to the log since the
    /// last one, however long the log has grown, and the count starts again with the log.
    #[test]
    fn a_checkpoint_is_due_once_per_threshold_of_pages_appended() {
        // 16 KiB pages: 2,048 pages to a checkpoint (32 MiB), 4,096 to a restart.
        let size = WalSize::new(16 * 1024);
        assert_eq!((size.checkpoint_pages, size.restart_pages), (2048, 4096));
        let c = size.checkpoint_pages;
        size.note_commit(c - 50);
        assert!(!size.take_due());
        size.note_commit(c + 50);
        assert!(size.take_due(), "a threshold's worth and 50 pages appended");
        // The log is 90 pages past the threshold, but only 40 came since the checkpoint:
        // before, every commit leaving a log past the threshold was taken as due.
        size.note_commit(c + 90);
        assert!(!size.take_due());
        size.note_commit(2 * c + 100);
        assert!(
            size.take_due(),
            "a threshold's worth and 10 pages appended since the last checkpoint"
        );
        // The log started again: its 100 pages are all new.
        size.note_commit(100);
        assert!(!size.take_due());
        size.note_commit(c + 110);
        assert!(size.take_due());
        assert_eq!(size.in_log.load(Ordering::Relaxed), c + 110);
    }

    /// The bound is the floor until the held runs' shares pass it, and shrinks again as
    /// they end; what is taken never passes the bound of the moment it is taken.
    #[test]
    fn the_held_bound_grows_and_shrinks_with_the_held_runs() {
        let budget = HeldBudget::new(1000, 400);
        assert!(!budget.take(1001), "the floor with no run");
        assert!(budget.take(1000));
        budget.give_back(1000);
        for _ in 0..3 {
            budget.join();
        }
        assert!(budget.take(1200), "three shares pass the floor");
        assert!(!budget.take(1), "and bound what is taken together");
        budget.leave();
        budget.give_back(1200);
        assert!(!budget.take(1001), "two shares are under the floor again");
        assert_eq!(budget.used(), 0);
    }

    /// A held stage brings its share while it lives, a direct one none: with no floor,
    /// a held run's rows fit in its own share, and the room goes when the stage does.
    #[test]
    fn held_stages_bring_their_share_and_take_it_away() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(HeldBudget::new(0, 1 << 20));
        let stage = |alone| {
            let conn = Connection::open(dir.path().join("store.db")).unwrap();
            Stage::new(conn, alone, budget.clone(), &Arc::new(WalSize::new(4096))).unwrap()
        };
        layout::in_file(&dir.path().join("store.db"));
        let direct = stage(true);
        assert!(direct.direct().is_some());
        assert!(!budget.take(1), "a direct run brings no room");
        let mut held = stage(false);
        held.nodes(&w(), &[], &nodes("DemoA", 0..50)).unwrap();
        assert!(
            matches!(held.held, Held::Memory(_)),
            "kept within its share"
        );
        assert!(budget.used() > 0);
        drop(held);
        assert_eq!(budget.used(), 0);
        assert!(!budget.take(1), "its share went with it");
        drop(direct);
    }
}
