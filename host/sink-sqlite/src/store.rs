use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::runtime::{Handle, RuntimeFlavor};

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use infragraph_core::{
    ChangeCounts, Direction, EdgeBatch, Holder, Manifest, NodeBatch, Publish, RunRecord, Step,
    StoredEdge, StoredNode, WriteScope,
};

use crate::error::{Error, ErrorKind, Fail};
use crate::export::ExportStats;
use crate::import::ImportStats;
use crate::layout::{APPLICATION_ID, CREATE, LAYOUT_VERSION, UPGRADES};
use crate::query::Stats;
use crate::stage::{HELD_IN_MEMORY, HELD_SHARE, HeldBudget, Stage};
use crate::writer::{Job, Writer};
use crate::{export, history, import, lease, query, stage, write};

/// How long a statement waits for another connection's write lock before failing as busy.
/// A run holds the lock while it publishes, and a run alone on the store for its whole
/// life: minutes, for a large estate.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long recording a run waits for another run's write lock before giving up (the
/// report, printed and written with `--report`, still has it all).
const RECORD_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The stage key of `w`'s run.
fn key(w: &WriteScope) -> StageKey {
    (w.plugin.clone(), w.scope.clone(), w.update_tag)
}

/// Page cache of a connection that writes the graph, in KiB (negative `cache_size` means
/// KiB): a run's alone, and the shared one that runs beside others publish through. Index
/// pages of a million-node graph stay hot at this size, which is most of the write speed;
/// it is well inside the 300 MB budget of issue 4's benchmark.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Page cache of a run's connection beside others, in KiB: it only stages the run (in
/// temporary tables, past what it holds in memory), and kept idle it stays this small.
const STAGE_CACHE_KIB: i64 = 2 * 1024;
/// Connections of ended runs kept for the next ones.
const MAX_IDLE: usize = 64;

/// The page size of a new store, in bytes. SQLite's default of 4 KiB made a run's publish
/// append four times as many pages to the log, each in two writes, through deeper B-trees:
/// 16 KiB took 5-10% off the time of 200 organizations synced at once, 32 KiB less
/// (connections, issue 18). A store keeps the size it was created with.
const PAGE_SIZE: i64 = 16 * 1024;

/// The embedded graph store: one SQLite file holding the graph, the run history and each
/// plugin's state. See the crate docs for the layout.
///
/// A connection per run in progress (its `stage`), one shared writing connection (tags,
/// leases, labels, run history, `import`, and the publishing of every run that ran beside
/// others) and one read-only connection, so state reads and queries do not queue behind
/// writes.
/// The query and export methods block; the `GraphSink` and `StateStore` methods are
/// async and hand their blocking work to `tokio::task::block_in_place` on a
/// multi-thread runtime.
///
/// Every method of the store is here; the modules named in the crate docs do the work,
/// each given the connection it needs, and this block names the store and the operation
/// in their errors.
pub struct Store {
    path: PathBuf,
    writer: Writer,
    reader: Mutex<Connection>,
    /// The writes of each run in progress, until it publishes or is discarded.
    stages: Mutex<HashMap<StageKey, Arc<Mutex<Stage>>>>,
    /// Connections of runs that ended, kept for the next runs: a new connection starts
    /// with an empty page cache and prepares its statements again, which made most of the
    /// CPU time of 200 small runs when each published through its own (connections, issue
    /// 18); they now publish through the writer, and a kept connection still saves the
    /// opening.
    idle: Mutex<Vec<Connection>>,
    /// The write-ahead log's size after the last commit of any connection here, in pages
    /// (see `stage::note_wal_pages`).
    wal_pages: Arc<stage::WalSize>,
    /// What runs beside others keep in memory until they publish, all together.
    held: Arc<HeldBudget>,
    /// Runs started through this store (an update tag taken) and not yet recorded: a run
    /// alone writes directly (see `stage`).
    running: AtomicUsize,
    /// Runs that commands said they are starting side by side and that have not all
    /// ended (`GraphSink::runs_starting`): a command's first run to write is not alone
    /// when others are about to start, whether or not they have taken their tags yet.
    expected: AtomicUsize,
    /// The newest update tag this process handed out.
    last_tag: AtomicI64,
}

/// A run: plugin, scope, update tag.
type StageKey = (String, String, i64);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Closing: the graph goes back from the write-ahead log into the store file, so the file
/// alone is the store (users copy it, back it up, mail it). SQLite does this when the last
/// connection closes, but only if that connection may write, and the read-only one would
/// close last: so it closes first, and the writer checkpoints before it closes too. Best
/// effort, without waiting: another process reading the store at this moment keeps the
/// frames it reads in the log, and that process's close folds them back.
impl Drop for Store {
    fn drop(&mut self) {
        // Runs never published hold connections of their own: close them first.
        self.stages_lock().clear();
        self.writer.stop();
        if let Ok(memory) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut *self.reader(), memory));
        }
        let conn = self.writer.lock();
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        }) {
            Ok((0, log, done)) if log == done => {
                tracing::debug!(store = %self.path.display(), "checkpointed")
            }
            Ok((busy, log, done)) => tracing::debug!(
                store = %self.path.display(), busy, log, done,
                "checkpoint incomplete: another connection is using the store"
            ),
            Err(e) => tracing::debug!(store = %self.path.display(), error = %e, "no checkpoint"),
        }
    }
}

/// Opening.
impl Store {
    /// Opens the store at `path`, creating it when the file does not exist or is empty.
    ///
    /// Refuses a file that is not SQLite, a SQLite database that is not an infragraph
    /// store, and a store written by a newer infragraph.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, Error> {
        let path = path.as_ref();
        let mut writer = connect(path, false)?;
        init(&writer, path)?;
        // SQLite turns a cache size given in KiB into a number of pages with the page size
        // it knows when the size is set. On a store created just now that was the default
        // 4 KiB, before `create` set 16 KiB pages, so the writer's 64 MiB cache held up to
        // four times that: 250 MB of pages in the 20 Azure tenants of the connections
        // benchmark, most of their peak RSS. Set again, it counts the file's pages.
        writer
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(|e| Error::db(path, "sizing the page cache", e))?;
        let page_size: i64 = writer
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(|e| Error::db(path, "reading the page size", e))?;
        let wal_pages = Arc::new(stage::WalSize::new(page_size));
        stage::note_wal_pages(&mut writer, wal_pages.clone())
            .map_err(|e| e.at(path, "configuring the connection"))?;
        let reader = connect(path, true)?;
        tracing::debug!(store = %path.display(), "opened");
        Ok(Store {
            path: path.to_path_buf(),
            writer: Writer::new(writer, wal_pages.clone()),
            reader: Mutex::new(reader),
            stages: Mutex::new(HashMap::new()),
            idle: Mutex::new(Vec::new()),
            wal_pages,
            held: Arc::new(HeldBudget::new(HELD_IN_MEMORY, HELD_SHARE)),
            running: AtomicUsize::new(0),
            expected: AtomicUsize::new(0),
            last_tag: AtomicI64::new(0),
        })
    }

    /// Opens the store at `path` like [`Store::open`], but refuses to create it: for
    /// commands that only read (query, export, runs), where a mistyped path should be an
    /// error rather than a new empty store.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store, Error> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "store {} does not exist (run `infragraph sync` to create it, or pass --store PATH)",
                    path.display()
                ),
            ));
        }
        Store::open(path)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reading (`query`, `runs`, the demo's summary).
impl Store {
    /// The run history, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, Error> {
        query::runs(&self.reader(), limit).map_err(|e| e.at(&self.path, "reading the run history"))
    }

    /// Nodes carrying `label` whose properties match every filter, at most `limit` (0: no
    /// limit): those whose primary label it is, by id, then those carrying it as an extra
    /// label, in the order they were first stored.
    ///
    /// A filter `(prop, text)` matches when the property's value is `text`, or the number
    /// or boolean `text` spells, or a list holding it. `id`, `firstseen`, `lastupdated`,
    /// `_source` and `_scope` filter on the key and the bookkeeping columns.
    pub fn nodes<K: AsRef<str>, V: AsRef<str>>(
        &self,
        label: &str,
        filters: &[(K, V)],
        limit: usize,
    ) -> Result<Vec<StoredNode>, Error> {
        query::nodes(&self.reader(), label, filters, limit)
            .map_err(|e| e.at(&self.path, &format!("looking up {label} nodes")))
    }

    /// The relationships of the node (`label`, `id`) in `direction`, of the given types (all
    /// when empty), each with the node at its other end.
    pub fn neighbours<T: AsRef<str>>(
        &self,
        label: &str,
        id: &str,
        direction: Direction,
        types: &[T],
    ) -> Result<Vec<(StoredEdge, StoredNode)>, Error> {
        query::neighbours(&self.reader(), label, id, direction, types).map_err(|e| {
            e.at(
                &self.path,
                &format!("listing the neighbours of {label} {id:?}"),
            )
        })
    }

    /// [`Store::neighbours`] of each of `nodes`, each row with the index of its node, on one
    /// read connection; a node that does not exist gives no rows, as from a server.
    pub fn neighbours_of_many<T: AsRef<str>>(
        &self,
        nodes: &[(String, String)],
        direction: Direction,
        types: &[T],
    ) -> Result<Vec<(usize, StoredEdge, StoredNode)>, Error> {
        let conn = self.reader();
        let mut out = Vec::new();
        for (i, (label, id)) in nodes.iter().enumerate() {
            match query::neighbours(&conn, label, id, direction, types) {
                Ok(rows) => out.extend(rows.into_iter().map(|(e, n)| (i, e, n))),
                Err(Fail::Done(e)) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e.at(
                        &self.path,
                        &format!("listing the neighbours of {} nodes", nodes.len()),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// A shortest path from one node to another, each given as (label, id), following
    /// relationships in `direction` for at most `max_depth` steps. `None` when there is no
    /// such path. Breadth-first, so the first path found is a shortest one; it gives up
    /// with an error past [`MAX_PATH_VISITS`](crate::MAX_PATH_VISITS) nodes.
    pub fn shortest_path(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        max_depth: usize,
        direction: Direction,
        types: &[String],
    ) -> Result<Option<Vec<Step>>, Error> {
        query::shortest_path(&self.reader(), from, to, max_depth, direction, types).map_err(|e| {
            e.at(
                &self.path,
                &format!(
                    "searching a path from {} {:?} to {} {:?}",
                    from.0, from.1, to.0, to.1
                ),
            )
        })
    }

    /// Node counts per primary label and relationship counts per type.
    pub fn stats(&self) -> Result<Stats, Error> {
        query::stats(&self.reader())
            .map_err(|e| Error::db(&self.path, "counting nodes and relationships", e))
    }
}

/// Moving whole graphs (`export`, `import`, `push`).
impl Store {
    /// Writes the graph as JSON lines in the format of Neo4j APOC's `apoc.export.json`:
    /// node lines, then relationship lines, each with its bookkeeping properties
    /// (`firstseen`, `lastupdated`, `_source`, `_scope`). Opaque ids are `n<nid>` and
    /// `r<eid>`. [`Store::import_jsonl`] reads it back.
    pub fn export_jsonl(&self, out: &mut impl Write) -> Result<ExportStats, Error> {
        export::jsonl(&mut self.reader(), out).map_err(|e| e.at(&self.path, "exporting JSON lines"))
    }

    /// Writes the graph as GraphML, declaring every property as a `<key>` first. Like
    /// APOC's GraphML export, a node's labels are in its `labels` attribute and data
    /// (`:Primary:Extra`) and a relationship's type in `label`.
    pub fn export_graphml(&self, out: &mut impl Write) -> Result<ExportStats, Error> {
        export::graphml(&mut self.reader(), out).map_err(|e| e.at(&self.path, "exporting GraphML"))
    }

    /// Writes the graph as a Cypher script (uniqueness constraints, then `MERGE`
    /// statements) that rebuilds it in an empty Neo4j database.
    pub fn export_cypher(&self, out: &mut impl Write) -> Result<ExportStats, Error> {
        export::cypher(&mut self.reader(), out).map_err(|e| e.at(&self.path, "exporting Cypher"))
    }

    /// Loads a JSON-lines file in the format [`Store::export_jsonl`] writes (and APOC's
    /// `apoc.export.json` writes): node lines, then relationship lines. The first label of
    /// a node is its primary label; `properties.id` is its key; bookkeeping properties
    /// are restored (missing ones become now, `"import"` and `""`). A relationship's ends
    /// are found by their first label and `properties.id`, among the nodes of the store
    /// and of earlier lines.
    ///
    /// All or nothing: one transaction, so a malformed line (reported with its number)
    /// leaves the store as it was.
    pub fn import_jsonl(&self, input: &mut impl BufRead) -> Result<ImportStats, Error> {
        let mut conn = self.writer.lock();
        let imported = import::jsonl(&mut conn, &self.path, input);
        // The writer notes the log's size rather than checkpointing in its commits.
        stage::checkpoint_if_due(&conn, &self.wal_pages);
        imported
    }
}

/// Syncing: what the `GraphSink` and `StateStore` implementations (in `sink`) call.
impl Store {
    pub(crate) fn prepare_sync(&self, manifest: &Manifest) -> Result<(), Error> {
        write::prepare(&self.writer, &|| self.reader(), manifest).map_err(|e| {
            e.at(
                &self.path,
                &format!("creating the indexes of plugin {:?}", manifest.name),
            )
        })
    }

    pub(crate) fn expect_runs(&self, n: usize) {
        self.expected.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn expected_runs_ended(&self, n: usize) {
        let _ = self
            .expected
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| {
                Some(e.saturating_sub(n))
            });
    }

    pub(crate) fn next_update_tag_sync(&self) -> Result<i64, Error> {
        // A run starts here and ends when it is recorded (a run without a tag is not
        // counted: its record has none).
        self.running.fetch_add(1, Ordering::Relaxed);
        // Not waiting for the writer: other runs may be publishing through it.
        let mut writer = self.writer.try_lock();
        let tag = write::next_update_tag(writer.as_deref_mut(), &self.reader(), &self.last_tag)
            .map_err(|e| Error::db(&self.path, "taking an update tag", e));
        drop(writer);
        if tag.is_err() {
            self.run_ended();
        }
        tag
    }

    fn run_ended(&self) {
        let _ = self
            .running
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub(crate) fn lease_sync(
        &self,
        w: &WriteScope,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<(), Error> {
        let what = || {
            format!(
                "taking the lease of plugin {:?} in scope {:?}",
                w.plugin, w.scope
            )
        };
        // A run writing directly holds the write lock: its lease is renewed through it.
        if let Some(stage) = self.existing_stage(w) {
            let stage = stage.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(conn) = stage.direct() {
                return lease::take(conn, w, holder, ttl).map_err(|e| e.at(&self.path, &what()));
            }
        }
        // Read first, without the write lock, which another run may hold for long.
        lease::check(&self.reader(), w, holder, ttl).map_err(|e| e.at(&self.path, &what()))?;
        let (w2, holder) = (w.clone(), holder.clone());
        self.writer
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                lease::take(&tx, &w2, &holder, ttl)?;
                tx.commit()?;
                Ok(())
            })
            .map_err(|e| e.at(&self.path, &what()))
    }

    pub(crate) fn release_sync(&self, w: &WriteScope, holder: &Holder) -> Result<(), Error> {
        let (w2, holder) = (w.clone(), holder.clone());
        self.writer
            .run(move |conn| Ok(lease::release(conn, &w2, &holder)?))
            .map_err(|e| {
                e.at(
                    &self.path,
                    &format!(
                        "releasing the lease of plugin {:?} in scope {:?}",
                        w.plugin, w.scope
                    ),
                )
            })
    }

    pub(crate) fn write_nodes_sync(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), Error> {
        let what = || format!("writing {} nodes", batch.label);
        let stage = self.stage(w).map_err(|e| e.at(&self.path, &what()))?;
        let mut stage = stage.lock().unwrap_or_else(|e| e.into_inner());
        stage
            .nodes(w, extra_labels, batch)
            .map_err(|e| e.at(&self.path, &what()))
    }

    pub(crate) fn write_edges_sync(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Error> {
        let what = || {
            format!(
                "writing (:{})-[:{}]->(:{}) edges",
                batch.from_label, batch.rel_type, batch.to_label
            )
        };
        let stage = self.stage(w).map_err(|e| e.at(&self.path, &what()))?;
        let mut stage = stage.lock().unwrap_or_else(|e| e.into_inner());
        if stage.direct().is_none() {
            // A run writing directly creates them in its own transaction.
            write::ensure_indexes(&self.writer, &|| self.reader(), &write::edge_indexes(batch))
                .map_err(|e| e.at(&self.path, &what()))?;
        }
        stage.edges(w, batch).map_err(|e| e.at(&self.path, &what()))
    }

    pub(crate) fn publish_sync(
        &self,
        w: &WriteScope,
        p: &Publish<'_>,
    ) -> Result<ChangeCounts, Error> {
        let what = format!(
            "publishing the run of plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        // A run that wrote nothing publishes on an empty stage: its cleanup and state
        // still apply.
        let stage = self.stage(w).map_err(|e| e.at(&self.path, &what))?;
        self.stages_lock().remove(&key(w));
        let temp = self.writer.next_temp();
        let published = {
            let mut own = stage.lock().unwrap_or_else(|e| e.into_inner());
            if own.direct().is_some() {
                own.publish(None, w, p, temp)
            } else {
                // Whoever publishes the run locks its stage then.
                drop(own);
                self.writer.publish(Job::new(stage.clone(), w, p, temp))
            }
        };
        // Outside the lock, through the run's own connection, idle now.
        stage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .checkpoint_if_due(&self.wal_pages);
        self.recycle(stage);
        published.map_err(|e| e.at(&self.path, &what))
    }

    pub(crate) fn discard_sync(&self, w: &WriteScope) {
        if let Some(stage) = self.stages_lock().remove(&key(w)) {
            self.recycle(stage);
        }
    }

    /// Keeps the connection of an ended run's stage for the next run, emptied of its
    /// transaction and temporary tables, unless enough are kept already or it cannot be
    /// emptied (then it closes, its temporary tables with it).
    fn recycle(&self, stage: Arc<Mutex<Stage>>) {
        let Ok(stage) = Arc::try_unwrap(stage) else {
            return;
        };
        let stage = stage.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE
            && let Some(conn) = stage.into_connection()
            // Kept, it holds the small cache of a run beside others (a run alone had the
            // large one): what kept connections hold stays bounded.
            && conn
                .pragma_update(None, "cache_size", -STAGE_CACHE_KIB)
                .is_ok()
        {
            idle.push(conn);
        }
    }

    /// The stage of `w`'s run, opened on its first write: direct when it is the only run
    /// in progress through this store and no command said more are starting (and no
    /// other process holds the write lock).
    fn stage(&self, w: &WriteScope) -> Result<Arc<Mutex<Stage>>, Fail> {
        if let Some(stage) = self.existing_stage(w) {
            return Ok(stage);
        }
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match kept {
            Some(conn) => conn,
            None => connect(&self.path, false).map_err(Fail::Done)?,
        };
        let alone =
            self.running.load(Ordering::Relaxed) <= 1 && self.expected.load(Ordering::Relaxed) <= 1;
        // A run alone writes the graph through its own cache; runs side by side publish
        // through the shared writer's, so memory does not grow with how many run at once.
        let cache_kib = if alone {
            WRITER_CACHE_KIB
        } else {
            STAGE_CACHE_KIB
        };
        conn.pragma_update(None, "cache_size", -cache_kib)?;
        let stage = Stage::new(conn, alone, self.held.clone(), &self.wal_pages)?;
        let stage = Arc::new(Mutex::new(stage));
        Ok(self.stages_lock().entry(key(w)).or_insert(stage).clone())
    }

    /// Whether the next batch of `w`'s run, wanting the property indexes `indexes`, is
    /// kept by its held stage: encoded into memory or into the run's own temporary tables
    /// (a connection no other run shares, taking no lock on the store), with every index
    /// known to exist. Such a write waits for nothing, so the engine's thread does it as
    /// it is: `block_in_place` handed the thread's other tasks to another thread for each
    /// batch, 6,600 times in a sync of 200 connections (2.4% +- 1.3% of its time, twelve
    /// alternated pairs of `bench_connections connections`).
    /// A run's first batch (which opens its connection), a direct run's (which writes the
    /// store) and one that must create an index (under the writer's lock) still block.
    pub(crate) fn writes_held(&self, w: &WriteScope, indexes: &[(String, String)]) -> bool {
        let held = self
            .existing_stage(w)
            .is_some_and(|s| s.lock().is_ok_and(|s| s.direct().is_none()));
        held && (indexes.is_empty() || self.writer.unindexed(indexes).is_empty())
    }

    fn existing_stage(&self, w: &WriteScope) -> Option<Arc<Mutex<Stage>>> {
        self.stages_lock().get(&key(w)).cloned()
    }

    fn stages_lock(&self) -> MutexGuard<'_, HashMap<StageKey, Arc<Mutex<Stage>>>> {
        self.stages.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn commit_state_sync(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), Error> {
        let mut conn = self.writer.lock();
        let mut run = || -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            history::commit_state(&tx, plugin, scope, writes)?;
            tx.commit()
        };
        run().map_err(|e| {
            Error::db(
                &self.path,
                &format!("storing the state of plugin {plugin:?}"),
                e,
            )
        })
    }

    pub(crate) fn get_state_sync(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        history::get_state(&self.reader(), plugin, scope, key).map_err(|e| {
            Error::db(
                &self.path,
                &format!("reading the state of plugin {plugin:?}"),
                e,
            )
        })
    }

    pub(crate) fn record_run_sync(&self, run: &RunRecord) -> Result<(), Error> {
        if run.update_tag != 0 {
            self.run_ended();
        }
        let record = run.clone();
        self.writer
            .run(move |conn| {
                // A run refused at its lease ends while the holder may be writing
                // directly, with the write lock held for its whole run: its record must
                // not wait for that.
                let recorded = conn
                    .busy_timeout(RECORD_BUSY_TIMEOUT)
                    .and_then(|()| history::record_run(conn, &record));
                let _ = conn.busy_timeout(BUSY_TIMEOUT);
                Ok(recorded?)
            })
            .map_err(|e| {
                e.at(
                    &self.path,
                    &format!("recording a run of plugin {:?}", run.plugin),
                )
            })
    }

    /// Runs blocking SQLite work from async code. On a multi-thread runtime the worker
    /// hands its other tasks to another thread meanwhile (`block_in_place`); elsewhere
    /// (a current-thread runtime in tests, or no runtime) it simply blocks, which
    /// `block_in_place` would refuse with a panic. `spawn_blocking` would need the
    /// batch moved or copied into a `'static` closure.
    pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn open_error(path: &Path, e: impl std::fmt::Display, hint: &str) -> Error {
    Error::new(
        ErrorKind::Open,
        format!("cannot open store {}: {e} ({hint})", path.display()),
    )
}

fn not_a_store(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::NotAStore,
        format!(
            "cannot open store {}: {why} (is it an infragraph store? pass --store PATH)",
            path.display()
        ),
    )
}

/// Turns off SQLite's memory statistics, once, before the process's first connection:
/// with them on, every allocation SQLite makes takes one process-wide mutex, which the
/// connections of runs side by side contend for (issue 18). Nothing here reads them.
fn without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` must run before SQLite initialises itself (which the
        // first connection's opening does) and while no other thread calls into SQLite.
        // A store opens its file's connections here, after this, and opens in-memory
        // ones (to swap in when closing) only once open; no other crate of this process
        // uses SQLite; and `Once` holds back any other thread until it is done. Were
        // SQLite initialised already, the call would only return SQLITE_MISUSE and
        // change nothing.
        let _ = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
    });
}

fn connect(path: &Path, read_only: bool) -> Result<Connection, Error> {
    without_memory_statistics();
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    // SQLite would create the file 0644 under the usual umask, and its write-ahead log
    // and shared memory with the same mode: created here first, owner-only, they all are.
    if !read_only && let Err(e) = infragraph_core::private::touch_file(path) {
        return Err(open_error(
            path,
            e,
            "does its directory exist, and may this user write there? pass --store PATH",
        ));
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        open_error(
            path,
            e,
            "does its directory exist, and may this user write there? pass --store PATH",
        )
    })?;
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // NORMAL is crash-safe in WAL mode (a power cut may lose the last commits, never
        // corrupt); FULL would fsync every batch.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The schema keeps `REFERENCES nodes(nid)` as documentation and for readers'
        // checks, but the writer does not enforce it: every edge write resolves both ends
        // in the same transaction and cleanup deletes a node's edges before the node, so
        // the check could only repeat work, and it costs a random `nodes` lookup per end
        // that dominates edge writes once `nodes` outgrows the page cache (0.63x -> 0.91x
        // of a raw insert at 1M nodes). Tests run `PRAGMA foreign_key_check` instead.
        conn.pragma_update(None, "foreign_keys", false)?;
        conn.set_prepared_statement_cache_capacity(64);
        if read_only {
            conn.pragma_update(None, "query_only", true)?;
        } else {
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        }
        Ok(())
    };
    setup(&conn).map_err(|e| match e.sqlite_error_code() {
        // Some pragmas read the header, so a file that is not SQLite may fail here first.
        Some(rusqlite::ErrorCode::NotADatabase) => not_a_store(path, e),
        _ => Error::db(path, "configuring the connection", e),
    })?;
    Ok(conn)
}

/// Checks what the file is and creates the layout in an empty one.
fn init(conn: &Connection, path: &Path) -> Result<(), Error> {
    // The first read of the header: a file that is not SQLite fails here. One statement,
    // so one snapshot: read apart, another process creating the store in between would
    // show an id of 0 beside its tables, and a fresh store would look foreign.
    let (app_id, tables): (i32, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id()), \
                    (SELECT count(*) FROM sqlite_schema)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| not_a_store(path, e))?;
    if app_id == 0 && tables == 0 {
        create(conn, path)?;
    } else if app_id != APPLICATION_ID {
        return Err(not_a_store(
            path,
            "it is a SQLite database, but not one infragraph created",
        ));
    }
    let layout: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| not_a_store(path, format!("its meta table is unreadable: {e}")))?;
    match layout {
        Some(v) if v == LAYOUT_VERSION => {}
        Some(v) if (1..LAYOUT_VERSION).contains(&v) => upgrade(conn, path)?,
        Some(v) if v > LAYOUT_VERSION => {
            return Err(Error::new(
                ErrorKind::NewerLayout,
                format!(
                    "cannot open store {}: it has layout version {v}, newer than the {LAYOUT_VERSION} \
                     this infragraph understands (upgrade infragraph, or pass --store PATH for another store)",
                    path.display()
                ),
            ));
        }
        Some(v) => {
            // Layout 1 is the first; a lower number can only come from a damaged file.
            return Err(not_a_store(path, format!("unknown layout version {v}")));
        }
        None => return Err(not_a_store(path, "it has no layout version")),
    }
    // WAL lets other processes read while a sync writes, and a killed writer leaves the
    // last committed run in place. The mode is stored in the file, so this is a no-op
    // after the first open.
    let mode = wal(conn).map_err(|e| Error::db(path, "switching to WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            store = %path.display(),
            mode,
            "the store's file system does not support WAL; readers will wait for writers"
        );
    }
    Ok(())
}

/// Switches the file to WAL unless it already is, and returns the mode it is in. The
/// switch needs the file to itself, and the busy timeout does not cover it: a process
/// opening a new store while another does (two scheduled syncs starting together) is
/// told "locked" at once, so it asks again until the timeout, by when the other has
/// switched it.
fn wal(conn: &Connection) -> rusqlite::Result<String> {
    let started = std::time::Instant::now();
    loop {
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(mode);
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn create(conn: &Connection, path: &Path) -> Result<(), Error> {
    let run = || -> rusqlite::Result<()> {
        // Only an empty file takes it; one created meanwhile by another process keeps its own.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // IMMEDIATE: two processes creating the same store at once serialise here, and
        // the loser sees the tables and leaves them alone.
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables == 0 {
            tx.execute_batch(CREATE)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('format', 'infragraph'), ('layout', 1), \
                 ('last_update_tag', 0)",
                [],
            )?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        tx.commit()
    };
    run().map_err(|e| Error::db(path, "creating the store's tables", e))?;
    tracing::info!(store = %path.display(), "created a new store");
    Ok(())
}

/// Brings the layout up to [`LAYOUT_VERSION`], one step per transaction. Another process
/// upgrading at the same moment waits (IMMEDIATE) and then finds nothing left to do.
fn upgrade(conn: &Connection, path: &Path) -> Result<(), Error> {
    for (to, sql) in UPGRADES {
        let step = || -> rusqlite::Result<bool> {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let now: i64 =
                tx.query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| {
                    r.get(0)
                })?;
            if now >= *to {
                return Ok(false);
            }
            tx.execute_batch(sql)?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'layout'", [to])?;
            tx.commit()?;
            Ok(true)
        };
        let done = step()
            .map_err(|e| Error::db(path, &format!("upgrading the store to layout {to}"), e))?;
        if done {
            tracing::info!(store = %path.display(), layout = to, "upgraded the store's layout");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use infragraph_core::{NodeRow, StoredNode};

    use super::*;
    use crate::writer::publish_group;

    fn scope(store: &Store, plugin: &str) -> WriteScope {
        WriteScope {
            plugin: plugin.into(),
            scope: format!("{plugin}-scope"),
            update_tag: store.next_update_tag_sync().unwrap(),
        }
    }

    fn one_node(label: &str, id: &str) -> NodeBatch {
        NodeBatch {
            label: label.into(),
            columns: Vec::new(),
            rows: vec![NodeRow {
                id: id.into(),
                values: Vec::new(),
            }],
        }
    }

    fn node(store: &Store, label: &str, id: &str) -> Option<StoredNode> {
        store
            .nodes(label, &[] as &[(&str, &str)], 0)
            .unwrap()
            .into_iter()
            .find(|n| n.id == id)
    }

    fn last_update_tag(store: &Store) -> i64 {
        store
            .reader()
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_update_tag'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// The writer's page cache holds what `WRITER_CACHE_KIB` says on a store created by
    /// this very open, whose pages are 16 KiB: a transaction writing more than that spills
    /// pages to the log instead of keeping them all (SQLite sized the cache in 4 KiB pages
    /// when it was set before the file had its page size, four times too many).
    #[test]
    fn a_new_stores_writer_keeps_its_cache_to_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("graph.db")).unwrap();
        let conn = store.writer.lock();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, PAGE_SIZE);
        let status = |op| {
            let (mut now, mut high) = (0, 0);
            // SAFETY: a status read of an open connection this thread holds the lock of.
            let rc = unsafe {
                rusqlite::ffi::sqlite3_db_status(conn.handle(), op, &mut now, &mut high, 0)
            };
            assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
            i64::from(now)
        };
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        // 48,000 nodes of about 2.2 KB: 100 MiB of pages, more than the cache holds.
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 48000) \
             INSERT INTO nodes (label, id, props, firstseen, lastupdated, source, scope) \
             SELECT 'Filler', hex(randomblob(16)), json_object('blob', hex(randomblob(1100))), \
                    1, 1, 'test', 'test' FROM n",
        )
        .unwrap();
        let used = status(rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED);
        let spilled = status(rusqlite::ffi::SQLITE_DBSTATUS_CACHE_SPILL);
        conn.execute_batch("ROLLBACK").unwrap();
        let cap = WRITER_CACHE_KIB * 1024;
        assert!(
            used <= cap + cap / 16,
            "the writer's cache holds {} MiB, past its {} MiB",
            used >> 20,
            cap >> 20
        );
        assert!(spilled > 0, "past its size, the cache spilled pages");
    }

    /// A run starting takes its tag while others publish through the writer, without
    /// waiting for them (runs of a second wave waited up to 0.8 s for their tag there):
    /// above every tag handed out, and recorded in the store when its run publishes.
    #[test]
    fn a_tag_is_taken_without_waiting_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("graph.db")).unwrap());
        let first = store.next_update_tag_sync().unwrap();
        assert_eq!(last_update_tag(&store), first);
        let busy = store.writer.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = store.clone();
        std::thread::spawn(move || tx.send(other.next_update_tag_sync().unwrap()));
        // Waiting for the writer would wait until `busy` goes, below.
        let second = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a tag while the writer is held");
        drop(busy);
        assert!(second > first);
        assert_eq!(
            last_update_tag(&store),
            first,
            "recorded when its run publishes"
        );
        let w = WriteScope {
            plugin: "demo".into(),
            scope: "org".into(),
            update_tag: second,
        };
        store
            .write_nodes_sync(&w, &[], &one_node("DemoThing", "x"))
            .unwrap();
        let state = BTreeMap::new();
        let p = Publish {
            cleanup: Some(&[]),
            state: &state,
            state_plugin: "demo",
            cleanup_batch: 100,
        };
        store.publish_sync(&w, &p).unwrap();
        assert_eq!(last_update_tag(&store), second);
        assert!(store.next_update_tag_sync().unwrap() > second);
    }

    /// A held run's batches after its first are kept on the caller's thread (no
    /// `block_in_place`); a direct run's, a run's first and an edge batch whose end
    /// needs an index not yet made are not, since they may wait for the file or the
    /// writer.
    #[test]
    fn only_a_held_runs_later_batches_skip_the_blocking_hand_off() {
        let dir = tempfile::tempdir().unwrap();
        let alone = Store::open(dir.path().join("alone.db")).unwrap();
        let w = scope(&alone, "demo");
        assert!(!alone.writes_held(&w, &[]), "no stage yet");
        alone
            .write_nodes_sync(&w, &[], &one_node("DemoThing", "a"))
            .unwrap();
        assert!(!alone.writes_held(&w, &[]), "a run alone writes directly");

        let shared = Store::open(dir.path().join("shared.db")).unwrap();
        shared.expect_runs(2);
        let w = scope(&shared, "demo");
        assert!(!shared.writes_held(&w, &[]), "no stage yet");
        shared
            .write_nodes_sync(&w, &[], &one_node("DemoThing", "a"))
            .unwrap();
        assert!(shared.writes_held(&w, &[]));
        let by_name = [("DemoThing".to_owned(), "name".to_owned())];
        assert!(
            !shared.writes_held(&w, &by_name),
            "the index is not made yet"
        );
        shared.writer.indexed(by_name.to_vec());
        assert!(shared.writes_held(&w, &by_name));
        let other = scope(&shared, "other");
        assert!(
            !shared.writes_held(&other, &[]),
            "another run's first batch"
        );
    }

    /// Held runs waiting for the writer publish in one transaction, each as if alone;
    /// when one of them fails (here it writes a node another plugin owns), the group is
    /// rolled back and each publishes again by itself: that one fails, the others land.
    #[test]
    fn waiting_runs_publish_together_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("graph.db")).unwrap();
        let state = BTreeMap::new();
        fn publish<'a>(
            w: &'a WriteScope,
            state: &'a BTreeMap<String, Option<Vec<u8>>>,
        ) -> Publish<'a> {
            Publish {
                cleanup: Some(&[]),
                state,
                state_plugin: &w.plugin,
                cleanup_batch: 100,
            }
        }
        let owner = scope(&store, "owner");
        store
            .write_nodes_sync(&owner, &[], &one_node("DemoThing", "x"))
            .unwrap();
        store
            .publish_sync(&owner, &publish(&owner, &state))
            .unwrap();
        // `owner` is not recorded as ended, so the runs below are held.
        let group = |runs: &[(&str, &str, &str)]| -> Vec<Arc<Job>> {
            runs.iter()
                .map(|(plugin, label, id)| {
                    let w = scope(&store, plugin);
                    store
                        .write_nodes_sync(&w, &[], &one_node(label, id))
                        .unwrap();
                    let stage = store.stage(&w).unwrap();
                    assert!(stage.lock().unwrap().direct().is_none());
                    store.stages_lock().remove(&key(&w));
                    let temp = store.writer.next_temp();
                    Arc::new(Job::new(stage, &w, &publish(&w, &state), temp))
                })
                .collect()
        };
        let jobs = group(&[
            ("alpha", "AlphaThing", "a1"),
            ("thief", "DemoThing", "x"),
            ("gamma", "GammaThing", "g1"),
        ]);
        publish_group(&store.writer.lock(), &jobs);
        let results: Vec<_> = jobs.iter().map(|j| j.take_result().unwrap()).collect();
        assert_eq!(results[0].as_ref().unwrap().nodes["AlphaThing"].created, 1);
        match &results[1] {
            Err(Fail::Done(e)) => assert_eq!(e.kind(), ErrorKind::NotOwner, "{e}"),
            other => panic!("the thief's run: {other:?}"),
        }
        assert_eq!(results[2].as_ref().unwrap().nodes["GammaThing"].created, 1);
        assert!(node(&store, "AlphaThing", "a1").is_some());
        assert!(node(&store, "GammaThing", "g1").is_some());
        assert_eq!(node(&store, "DemoThing", "x").unwrap().source, "owner");

        // Without a failure, the group's runs land in one commit.
        let jobs = group(&[("delta", "DeltaThing", "d1"), ("eps", "EpsThing", "e1")]);
        let commits = Arc::new(AtomicUsize::new(0));
        let counted = commits.clone();
        store
            .writer
            .lock()
            .commit_hook(Some(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                false
            }))
            .unwrap();
        publish_group(&store.writer.lock(), &jobs);
        for job in &jobs {
            job.take_result().unwrap().unwrap();
        }
        assert_eq!(commits.load(Ordering::Relaxed), 1);
        assert!(node(&store, "DeltaThing", "d1").is_some());
        assert!(node(&store, "EpsThing", "e1").is_some());
    }
}
