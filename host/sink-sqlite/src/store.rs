use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::{Error, ErrorKind};
use crate::layout::{APPLICATION_ID, CREATE, LAYOUT_VERSION};

/// How long a statement waits for another process's write lock before failing as busy.
/// A sync commits every batch, so a lock is normally held for well under a second; this
/// leaves room for a slow disk and a checkpoint.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page cache of the writing connection, in KiB (negative `cache_size` means KiB). Index
/// pages of a million-node graph stay hot at this size, which is most of the write speed;
/// it is well inside the 300 MB budget of issue 4's benchmark.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Pages written to the WAL before SQLite folds them back into the database. Larger than
/// the default 1,000 so a bulk sync checkpoints less often; the WAL stays under ~40 MB.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The embedded graph store: one SQLite file holding the graph, the run history and each
/// plugin's state. See the crate docs for the layout.
///
/// One writer connection (SQLite allows one writer at a time anyway; several plugins
/// writing through one `Store` take turns per batch) and one read-only connection, so
/// state reads and queries do not queue behind a batch. The query and export methods
/// block; the `GraphSink` and `StateStore` methods are async and hand their blocking work
/// to `tokio::task::block_in_place` on a multi-thread runtime.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// (label, key) pairs whose property index exists, so a batch checks once per store.
    pub(crate) indexed: Mutex<HashSet<(String, String)>>,
    /// Names temporary tables, which belong to the connection and so to every writer.
    pub(crate) temp_seq: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating it when the file does not exist or is empty.
    ///
    /// Refuses a file that is not SQLite, a SQLite database that is not an infragraph
    /// store, and a store written by a newer infragraph.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, Error> {
        let path = path.as_ref();
        let writer = connect(path, false)?;
        init(&writer, path)?;
        let reader = connect(path, true)?;
        tracing::debug!(store = %path.display(), "opened");
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            indexed: Mutex::new(HashSet::new()),
            temp_seq: AtomicU64::new(0),
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

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction behind (rusqlite
        // rolls back on drop), so the connection is still good.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
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

    pub(crate) fn next_temp(&self) -> u64 {
        self.temp_seq.fetch_add(1, Ordering::Relaxed)
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

fn connect(path: &Path, read_only: bool) -> Result<Connection, Error> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
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
    // The first read of the header: a file that is not SQLite fails here.
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| not_a_store(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
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
            // Layout 1 is the first; an older number can only come from a damaged file.
            return Err(not_a_store(path, format!("unknown layout version {v}")));
        }
        None => return Err(not_a_store(path, "it has no layout version")),
    }
    // WAL lets other processes read while a sync writes, and a killed writer leaves the
    // last committed batch in place. The mode is stored in the file, so this is a no-op
    // after the first open.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| Error::db(path, "switching to WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            store = %path.display(),
            mode,
            "the store's file system does not support WAL; readers will wait for writers"
        );
    }
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(|e| Error::db(path, "configuring the connection", e))?;
    Ok(())
}

fn create(conn: &Connection, path: &Path) -> Result<(), Error> {
    let run = || -> rusqlite::Result<()> {
        // IMMEDIATE: two processes creating the same store at once serialise here, and
        // the loser sees the tables and leaves them alone.
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables == 0 {
            tx.execute_batch(CREATE)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('format', 'infragraph'), ('layout', ?1), \
                 ('last_update_tag', 0)",
                [LAYOUT_VERSION],
            )?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        tx.commit()
    };
    run().map_err(|e| Error::db(path, "creating the store's tables", e))?;
    tracing::info!(store = %path.display(), "created a new store");
    Ok(())
}
