//! SQLite's memory statistics are off once a store is open: with them on, every
//! allocation SQLite makes takes one process-wide mutex, which the connections of many
//! runs side by side contend for (issue 18).
//!
//! A test binary of its own: the setting only takes before the process's first
//! connection, and the other tests open connections of their own in any order.

#[test]
fn an_open_store_leaves_sqlite_counting_no_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _store =
        infragraph_sink_sqlite::Store::open(dir.path().join("graph.db")).expect("store opens");
    // SAFETY: reads a counter; SQLite is initialised by the store's connections.
    let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    // Counted, an open store with its connections holds hundreds of KiB.
    assert_eq!(used, 0, "SQLite counts its memory: its statistics are on");
}
