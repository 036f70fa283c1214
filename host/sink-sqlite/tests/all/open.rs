//! Opening, reopening and refusing files.

use infragraph_sink_sqlite::{ErrorKind, Store};

use crate::*;

#[tokio::test]
async fn reopening_keeps_the_graph() {
    let (dir, s) = store();
    put_nodes(&s, &scope("demo", "o", 1), "DemoUser", &["u1"]).await;
    publish(&s, &scope("demo", "o", 1), None).await;
    drop(s);
    let s = Store::open_existing(dir.path().join("graph.db")).unwrap();
    assert_eq!(node_ids(&s), set([pair("DemoUser", "u1")]));
}

#[test]
fn refuses_files_that_are_not_stores() {
    let dir = tempfile::tempdir().unwrap();

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not the droids you are looking for\n".repeat(100),
    )
    .unwrap();
    let err = Store::open(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAStore);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot open store {}: ", text.display())),
        "{msg}"
    );
    assert!(
        msg.ends_with("(is it an infragraph store? pass --store PATH)"),
        "{msg}"
    );

    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Store::open(&foreign).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAStore);
    assert!(
        err.to_string().contains("not one infragraph created"),
        "{err}"
    );

    let err = Store::open(dir.path().join("no/such/dir/graph.db")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Open);
    assert!(err.to_string().contains("pass --store PATH"), "{err}");

    let err = Store::open_existing(dir.path().join("missing.db")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn refuses_a_newer_layout() {
    let (dir, s) = store();
    drop(s);
    let path = dir.path().join("graph.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE meta SET value = 99 WHERE key = 'layout'", [])
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NewerLayout);
    assert!(err.to_string().contains("layout version 99"), "{err}");
}

/// WAL: another process's reader keeps its snapshot while the store writes, and neither
/// waits for the other.
#[tokio::test]
async fn readers_elsewhere_see_committed_batches_without_blocking_writes() {
    let (dir, s) = store();
    put_nodes(&s, &scope("demo", "o", 1), "DemoUser", &["u1"]).await;
    publish(&s, &scope("demo", "o", 1), None).await;
    let mut reader = rusqlite::Connection::open(dir.path().join("graph.db")).unwrap();
    let tx = reader.transaction().unwrap();
    let count = |tx: &rusqlite::Transaction<'_>| -> i64 {
        tx.query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&tx), 1);
    put_nodes(&s, &scope("demo", "o", 2), "DemoUser", &["u2"]).await;
    publish(&s, &scope("demo", "o", 2), None).await;
    assert_eq!(count(&tx), 1, "the reader's snapshot is stable");
    tx.finish().unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

/// Set in the child process of [`a_killed_writer_leaves_whole_batches`]: the store it
/// writes to.
const CHILD_WRITER: &str = "INFRAGRAPH_SQLITE_TEST_CHILD_WRITER";
const CHILD_BATCH: usize = 1000;
/// Batches per run of the child.
const CHILD_RUN: usize = 5;
/// Nodes per run of the child.
const RUN_NODES: i64 = (CHILD_BATCH * CHILD_RUN) as i64;

/// SIGKILL in the middle of syncs: the file stays consistent and holds exactly the runs
/// published before the kill, each whole. The child is this test binary running this
/// test.
#[test]
fn a_killed_writer_leaves_whole_runs() {
    if let Some(path) = std::env::var_os(CHILD_WRITER) {
        return write_until_killed(path.as_ref());
    }
    let (dir, s) = store();
    drop(s);
    let path = dir.path().join("graph.db");
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "open::a_killed_writer_leaves_whole_runs",
                "--test-threads=1",
            ])
            .env(CHILD_WRITER, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let reader = rusqlite::Connection::open(&path).unwrap();
    let count = || -> i64 {
        reader
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count() < 2 * RUN_NODES {
        assert!(
            std::time::Instant::now() < deadline,
            "the child wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SIGKILL on Unix: no destructor, no rollback, as when the OOM killer strikes.
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let check: String = reader
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n = count();
    assert_eq!(n % RUN_NODES, 0, "{n} nodes: a run was half published");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.stats().unwrap().nodes["DemoUser"], n as u64);
}

fn write_until_killed(path: &std::path::Path) {
    use infragraph_core::GraphSink;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(path).unwrap();
        let started = std::time::Instant::now();
        // Bounded, in case the parent died before killing us.
        for b in 0.. {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                break;
            }
            // Each run adds its own nodes (cleanup off), in CHILD_RUN batches.
            let w = scope("demo", "o", b / CHILD_RUN as i64 + 1);
            let rows = (0..CHILD_BATCH)
                .map(|i| {
                    (
                        format!("{b}-{i}"),
                        vec![text("some text to make the batch longer")],
                    )
                })
                .collect::<Vec<_>>();
            let rows = rows
                .iter()
                .map(|(id, v)| (id.as_str(), v.clone()))
                .collect();
            s.write_nodes(&w, &[], &node_batch("DemoUser", &["name"], rows))
                .await
                .unwrap();
            if b % CHILD_RUN as i64 == CHILD_RUN as i64 - 1 {
                publish(&s, &w, None).await;
            }
        }
    });
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two scheduled jobs starting at once on a fresh store (`sync --shard 1/2` and `2/2`):
/// each opens the file the other is creating, and neither may take it for a foreign one.
#[test]
fn many_openers_of_a_new_store_at_once_all_get_it() {
    for round in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().expect("no panic");
            assert!(opened.is_ok(), "round {round}: {}", opened.unwrap_err());
        }
    }
}

/// A new store has pages of 16 KiB: a run's publish then writes a quarter as many pages
/// to the log, each through fewer B-tree levels (connections, issue 18). A store with
/// SQLite's default pages of 4 KiB, as infragraph created them before, keeps them and
/// takes runs as well.
#[tokio::test]
async fn new_stores_have_pages_of_16_kib_and_older_ones_keep_theirs() {
    let page_size = |path: &std::path::Path| -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    };
    let (dir, s) = store();
    put_nodes(&s, &scope("demo", "o", 1), "DemoUser", &["u1"]).await;
    publish(&s, &scope("demo", "o", 1), None).await;
    drop(s);
    assert_eq!(page_size(&dir.path().join("graph.db")), 16 * 1024);

    // A file SQLite has written with 4 KiB pages, with no table left in it.
    let old = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&old).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    assert!(std::fs::metadata(&old).unwrap().len() >= 4096);
    let s = Store::open(&old).unwrap();
    let w = scope("demo", "o", 2);
    put_nodes(&s, &w, "DemoUser", &["u1", "u2"]).await;
    publish(&s, &w, None).await;
    assert_eq!(
        node_ids(&s),
        set([pair("DemoUser", "u1"), pair("DemoUser", "u2")])
    );
    drop(s);
    assert_eq!(page_size(&old), 4096);
}
