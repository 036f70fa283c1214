//! The store's shared writing connection, and the thread that writes through it.
//!
//! Runs beside others publish through one connection, whose page cache then stays hot,
//! and the short writes every run makes (its lease, releasing it, its run record) go the
//! same way. Each run's thread used to take the connection's lock for them itself: with a
//! hundred runs at once the lock went from thread to thread, each woken and then waiting
//! for a core before it could take it, and the connection sat idle between them (a run
//! waited 0.1 s on average to release its lease, a write of 0.05 ms; connections, issue
//! 18). One thread does them now: a run hands its write over and waits for the answer;
//! the thread takes every write waiting at once, the short ones first, then the
//! publishes, together in one transaction (see [`publish_group`]).
//!
//! Other writes that need the connection (preparing a plugin, an import, a tag) take its
//! lock directly; the thread takes it per round of writes.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use infragraph_core::{ChangeCounts, Incomplete, Publish, WriteScope};
use rusqlite::Connection;

use crate::error::{Error, ErrorKind, Fail};
use crate::stage::{self, Stage, WalSize};

/// A short write, in a transaction of its own if it needs one.
type Chore = Box<dyn FnOnce(&mut Connection) -> Result<(), Fail> + Send>;

/// A write handed to the writer's thread, with where its answer goes.
enum Task {
    Chore(Chore, SyncSender<Result<(), Fail>>),
    Publish(Arc<Job>, SyncSender<Result<ChangeCounts, Fail>>),
}

/// The writing connection, shared by every plugin writing through one store, with what
/// belongs to it: which property indexes exist, names for its temporary tables, and the
/// thread that does the runs' writes through it (started with the first).
pub(crate) struct Writer {
    shared: Arc<Shared>,
    wal_pages: Arc<WalSize>,
    thread: OnceLock<Option<(Sender<Task>, JoinHandle<()>)>>,
}

/// What the writer's thread shares with the store.
struct Shared {
    conn: Mutex<Connection>,
    /// (label, key) pairs whose property index exists, so a batch checks once per store.
    indexed: Mutex<HashSet<(String, String)>>,
    /// Names temporary tables, which belong to the connection and so to every writer.
    temp_seq: AtomicU64,
}

impl Writer {
    /// The writer of `conn`, a connection of the store whose log `wal_pages` counts.
    pub(crate) fn new(conn: Connection, wal_pages: Arc<WalSize>) -> Writer {
        Writer {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                indexed: Mutex::new(HashSet::new()),
                temp_seq: AtomicU64::new(0),
            }),
            wal_pages,
            thread: OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.shared.lock()
    }

    /// [`Writer::lock`], unless another thread holds it now.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, Connection>> {
        match self.shared.conn.try_lock() {
            Ok(conn) => Some(conn),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Does `chore` through the connection, on the writer's thread, and returns what it
    /// returned.
    pub(crate) fn run(
        &self,
        chore: impl FnOnce(&mut Connection) -> Result<(), Fail> + Send + 'static,
    ) -> Result<(), Fail> {
        let Some(tasks) = self.tasks() else {
            return chore(&mut self.lock());
        };
        hand_over(tasks, |done| Task::Chore(Box::new(chore), done))
    }

    /// Publishes a held run on the writer's thread, together with the held runs waiting
    /// meanwhile, and returns its counts.
    pub(crate) fn publish(&self, job: Job) -> Result<ChangeCounts, Fail> {
        let job = Arc::new(job);
        let Some(tasks) = self.tasks() else {
            let conn = self.lock();
            stage::restart_if_grown(&conn, &self.wal_pages);
            return job.alone(&conn);
        };
        hand_over(tasks, |done| Task::Publish(job, done))
    }

    /// Stops the writer's thread, once it has done what it was given.
    pub(crate) fn stop(&mut self) {
        if let Some(Some((tasks, thread))) = self.thread.take() {
            drop(tasks);
            let _ = thread.join();
        }
    }

    /// Where the thread takes its tasks from, the thread started with the first call;
    /// `None` when no thread could be started (the caller then writes itself).
    fn tasks(&self) -> Option<&Sender<Task>> {
        let started = self.thread.get_or_init(|| {
            let (tasks, inbox) = std::sync::mpsc::channel();
            let (shared, wal_pages) = (self.shared.clone(), self.wal_pages.clone());
            std::thread::Builder::new()
                .name("infragraph-writer".into())
                .spawn(move || serve(&shared, &wal_pages, inbox))
                .map_err(|e| tracing::debug!(error = %e, "no writer thread; writing inline"))
                .ok()
                .map(|thread| (tasks, thread))
        });
        started.as_ref().map(|(tasks, _)| tasks)
    }

    /// A number no other temporary table of this connection uses.
    pub(crate) fn next_temp(&self) -> u64 {
        self.shared.temp_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Those of `wanted` not known to be indexed yet.
    pub(crate) fn unindexed(&self, wanted: &[(String, String)]) -> Vec<(String, String)> {
        let known = self
            .shared
            .indexed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        wanted
            .iter()
            .filter(|w| !known.contains(*w))
            .cloned()
            .collect()
    }

    /// Notes that `done` are indexed now.
    pub(crate) fn indexed(&self, done: Vec<(String, String)>) {
        let mut known = self
            .shared
            .indexed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.extend(done);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction behind (rusqlite
        // rolls back on drop; the thread rolls back what it began), so the connection is
        // still good.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends the task `task` makes with where its answer goes, and waits for the answer.
fn hand_over<R>(
    tasks: &Sender<Task>,
    task: impl FnOnce(SyncSender<Result<R, Fail>>) -> Task,
) -> Result<R, Fail> {
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    if tasks.send(task(done)).is_err() {
        return Err(stopped());
    }
    answer.recv().unwrap_or_else(|_| Err(stopped()))
}

/// The writer's thread: each round takes every task waiting, does the short writes, then
/// publishes the held runs together, and answers each. It ends when the store closes.
fn serve(shared: &Shared, wal_pages: &WalSize, inbox: Receiver<Task>) {
    let mut trimmed = Instant::now();
    while let Ok(first) = inbox.recv() {
        let (mut chores, mut jobs) = (Vec::new(), Vec::new());
        for task in std::iter::once(first).chain(inbox.try_iter()) {
            match task {
                Task::Chore(chore, done) => chores.push((chore, done)),
                Task::Publish(job, done) => jobs.push((job, done)),
            }
        }
        let mut conn = shared.lock();
        // The short writes first: runs wait on them to start writing, or to end.
        for (chore, done) in chores {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| chore(&mut conn)))
                .unwrap_or_else(|_| Err(panicked(&conn)));
            let _ = done.send(result);
        }
        if jobs.is_empty() {
            continue;
        }
        let group: Vec<Arc<Job>> = jobs.iter().map(|(job, _)| job.clone()).collect();
        let published = std::panic::catch_unwind(AssertUnwindSafe(|| {
            stage::restart_if_grown(&conn, wal_pages);
            publish_group(&conn, &group);
        }));
        if published.is_err() {
            let _ = panicked(&conn);
        }
        drop(group);
        for (job, done) in jobs {
            let result = job.take_result().unwrap_or_else(|| Err(panicked(&conn)));
            // The thread's hold on the run's stage goes before its answer does, so that
            // the run finds its stage its own again (to keep its connection).
            drop(job);
            let _ = done.send(result);
        }
        drop(conn);
        if trimmed.elapsed() >= TRIM_EVERY {
            release_free_memory();
            trimmed = Instant::now();
        }
    }
}

/// How often, at most, the writer's thread gives the C allocator's free memory back to the
/// system after publishing (see [`release_free_memory`]).
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Gives the C allocator's free memory back to the system. glibc keeps what is freed in
/// its arenas for reuse; with every run published on this one thread, what it kept grew:
/// the peak RSS of the 20 Azure tenants of the connections benchmark went from 430-530
/// MB to 510-620 MB, and with a trim after each round of publishes to 428-429 MB. A trim
/// after every round cost the 200 Scaleway organizations 5% of their time; once a second
/// at most, a few trims a sync.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` works on the allocator's own free lists, under its locks, and
    // may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What a write that panicked on the writer's thread answers, its transaction rolled back.
fn panicked(conn: &Connection) -> Fail {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    Fail::Done(Error::new(
        ErrorKind::Database,
        "the store's writer failed unexpectedly on this write; nothing of it was applied \
         (sync again)",
    ))
}

fn stopped() -> Fail {
    Fail::Done(Error::new(
        ErrorKind::Database,
        "the store's writer has stopped; nothing of this write was applied (sync again)",
    ))
}

/// A held run waiting to publish, with what its publish needs, owned: the writer's thread
/// publishes it.
pub(crate) struct Job {
    stage: Arc<Mutex<Stage>>,
    w: WriteScope,
    cleanup: Option<Vec<Incomplete>>,
    state: BTreeMap<String, Option<Vec<u8>>>,
    state_plugin: String,
    cleanup_batch: usize,
    temp: u64,
    result: Mutex<Option<Result<ChangeCounts, Fail>>>,
}

impl Job {
    pub(crate) fn new(stage: Arc<Mutex<Stage>>, w: &WriteScope, p: &Publish<'_>, temp: u64) -> Job {
        Job {
            stage,
            w: w.clone(),
            cleanup: p.cleanup.map(<[Incomplete]>::to_vec),
            state: p.state.clone(),
            state_plugin: p.state_plugin.to_owned(),
            cleanup_batch: p.cleanup_batch,
            temp,
            result: Mutex::new(None),
        }
    }

    /// `f` given the run's stage and its publish as [`Publish`].
    fn with<R>(&self, f: impl FnOnce(&mut Stage, &Publish<'_>) -> R) -> R {
        let p = Publish {
            cleanup: self.cleanup.as_deref(),
            state: &self.state,
            state_plugin: &self.state_plugin,
            cleanup_batch: self.cleanup_batch,
        };
        f(
            &mut self.stage.lock().unwrap_or_else(|e| e.into_inner()),
            &p,
        )
    }

    /// Applies the run inside the transaction open on `writer`.
    fn apply(&self, writer: &Connection) -> Result<ChangeCounts, Fail> {
        self.with(|stage, p| stage.apply(writer, &self.w, p, self.temp))
    }

    /// Applies the run in a transaction of its own.
    fn alone(&self, writer: &Connection) -> Result<ChangeCounts, Fail> {
        self.with(|stage, p| stage.publish(Some(writer), &self.w, p, self.temp))
    }

    fn set_result(&self, result: Result<ChangeCounts, Fail>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    }

    pub(crate) fn take_result(&self) -> Option<Result<ChangeCounts, Fail>> {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Publishes `group` through `writer` (locked by the caller) in one transaction, each
/// run after the other. Should any run fail, or the commit, nothing of the group is kept
/// and each run is published again in a transaction of its own, so that one run's
/// failure (a record another plugin owns, say) fails that run alone, as when each
/// published by itself.
pub(crate) fn publish_group(writer: &Connection, group: &[Arc<Job>]) {
    if let [job] = group {
        job.set_result(job.alone(writer));
        return;
    }
    let together = (|| -> Result<Vec<ChangeCounts>, Fail> {
        writer.execute_batch("BEGIN IMMEDIATE")?;
        let counts = group
            .iter()
            .map(|job| job.apply(writer))
            .collect::<Result<Vec<_>, _>>()?;
        let commit = std::time::Instant::now();
        writer.execute_batch("COMMIT")?;
        // With the runs' own laps, where the write lock's time goes (issue 18).
        tracing::debug!(
            runs = group.len(),
            commit_us = commit.elapsed().as_micros(),
            "published a group of runs in one transaction"
        );
        Ok(counts)
    })();
    match together {
        Ok(counts) => {
            for (job, counts) in group.iter().zip(counts) {
                job.set_result(Ok(counts));
            }
        }
        Err(e) => {
            if !writer.is_autocommit() {
                let _ = writer.execute_batch("ROLLBACK");
            }
            tracing::debug!(error = ?e, runs = group.len(), "a group publish failed; publishing its runs one by one");
            for job in group {
                job.set_result(job.alone(writer));
            }
        }
    }
}
