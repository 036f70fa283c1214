//! The tables, as LAYOUT.md documents them for users who query the file with plain SQL.

use infragraph_core::{is_pascal_case, is_snake_case};

/// The layout this build writes. A store with a higher number was written by a newer
/// infragraph and is refused rather than misread; a lower one is upgraded when opened.
pub(crate) const LAYOUT_VERSION: i64 = 3;

/// `PRAGMA application_id`, so `file(1)` and this crate can tell an infragraph store from
/// any other SQLite database ("IGDB").
pub(crate) const APPLICATION_ID: i32 = 0x4947_4442;

/// Run once, in one transaction, on an empty file: layout 1, which [`UPGRADES`] then
/// bring to [`LAYOUT_VERSION`], so a new store and an upgraded one are the same.
pub(crate) const CREATE: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value NOT NULL
) WITHOUT ROWID;

CREATE TABLE nodes (
    nid          INTEGER PRIMARY KEY,
    label        TEXT NOT NULL,
    id           TEXT NOT NULL,
    extra_labels TEXT NOT NULL DEFAULT '[]',
    props        TEXT NOT NULL DEFAULT '{}',
    firstseen    INTEGER NOT NULL,
    lastupdated  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    UNIQUE (label, id)
);
CREATE INDEX nodes_cleanup ON nodes (source, scope, lastupdated);

-- UNIQUE (src, type, dst) rather than (type, src, dst): the same uniqueness, and the
-- index doubles as the one for outgoing edges, saving an index on every edge write.
CREATE TABLE edges (
    eid          INTEGER PRIMARY KEY,
    type         TEXT NOT NULL,
    src          INTEGER NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    dst          INTEGER NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    props        TEXT NOT NULL DEFAULT '{}',
    firstseen    INTEGER NOT NULL,
    lastupdated  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    UNIQUE (src, type, dst)
);
CREATE INDEX edges_dst ON edges (dst, type);
CREATE INDEX edges_cleanup ON edges (source, scope, lastupdated);

CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY,
    plugin      TEXT NOT NULL,
    scope       TEXT,
    update_tag  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    report      TEXT NOT NULL
);

CREATE TABLE plugin_state (
    plugin TEXT NOT NULL,
    scope  TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (plugin, scope, key)
) WITHOUT ROWID;
";

/// What each layout adds to the one before, by the version it brings the store to. Each
/// runs in one transaction with the version bump.
pub(crate) const UPGRADES: &[(i64, &str)] = &[
    (
        2,
        // Ownership (issue 16). `also_scopes`: the other scopes of the owning plugin that
        // assert a record, a JSON array, NULL while only `scope` does (shared kinds such as
        // Azure regions); cleanup of one scope then only takes that scope off the list.
        // `labels`: which plugin each primary label belongs to, first come first served, from
        // the nodes already stored. `leases`: the sync of one plugin and scope in progress.
        "
ALTER TABLE nodes ADD COLUMN also_scopes TEXT;
ALTER TABLE edges ADD COLUMN also_scopes TEXT;
CREATE INDEX nodes_shared ON nodes (source) WHERE also_scopes IS NOT NULL;
CREATE INDEX edges_shared ON edges (source) WHERE also_scopes IS NOT NULL;

CREATE TABLE labels (
    label  TEXT PRIMARY KEY,
    plugin TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO labels (label, plugin)
    SELECT label, min(source) FROM nodes WHERE source <> 'import' GROUP BY label;

CREATE TABLE leases (
    plugin  TEXT NOT NULL,
    scope   TEXT NOT NULL,
    holder  TEXT NOT NULL,
    token   TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (plugin, scope)
) WITHOUT ROWID;
",
    ),
    (
        3,
        // Changed or seen again (issue 21). `digest`: the digest of what the plugin emitted
        // for the record when last written (`infragraph_core::digest`); `lastupdated` now
        // moves only when it changes. `seen`: the last run that emitted the record, which
        // cleanup compares (it took `lastupdated`'s place in the cleanup indexes). Records
        // stored before were seen by the run that last updated them.
        "
ALTER TABLE nodes ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN digest BLOB;
ALTER TABLE edges ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN digest BLOB;
UPDATE nodes SET seen = lastupdated;
UPDATE edges SET seen = lastupdated;
DROP INDEX nodes_cleanup;
DROP INDEX edges_cleanup;
CREATE INDEX nodes_cleanup ON nodes (source, scope, seen);
CREATE INDEX edges_cleanup ON edges (source, scope, seen);
",
    ),
];

/// The SQL of a property index: a partial expression index, so that matching an edge end
/// or a query filter on `label` and `json_extract(props, '$.<prop>')` is a B-tree seek.
///
/// Both names are inlined (SQLite takes no parameters in DDL, and a partial index is only
/// used by queries that spell out the same constant), so both are checked again here even
/// though `CheckedSchema` already did: this function must never build SQL from data.
pub(crate) fn property_index(label: &str, prop: &str) -> Option<String> {
    if !is_pascal_case(label) || !is_snake_case(prop) {
        return None;
    }
    Some(format!(
        "CREATE INDEX IF NOT EXISTS nodes_{label}_{prop} ON nodes ({}) WHERE label = '{label}'",
        property_expr(prop)
    ))
}

/// The indexed expression; queries must spell it exactly so for SQLite to use the index.
/// Only call with a name that passed `is_snake_case`.
pub(crate) fn property_expr(prop: &str) -> String {
    debug_assert!(is_snake_case(prop));
    format!("json_extract(props, '$.{prop}')")
}

/// A store of the current layout in memory, for unit tests of the modules that work on one.
#[cfg(test)]
pub(crate) fn in_memory() -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().expect("an in-memory database opens");
    apply(&db);
    db
}

/// A store of the current layout in a new file at `path`, in WAL mode as stores are,
/// for unit tests that need several connections to one store.
#[cfg(test)]
pub(crate) fn in_file(path: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("a store file opens");
    db.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL mode");
    apply(&db);
    db
}

#[cfg(test)]
fn apply(db: &rusqlite::Connection) {
    db.execute_batch(CREATE).expect("the layout applies");
    for (_, sql) in UPGRADES {
        db.execute_batch(sql).expect("the upgrades apply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_index_refuses_anything_but_identifiers() {
        assert_eq!(
            property_index("DemoUser", "email").unwrap(),
            "CREATE INDEX IF NOT EXISTS nodes_DemoUser_email ON nodes \
             (json_extract(props, '$.email')) WHERE label = 'DemoUser'"
        );
        assert!(property_index("Demo'; DROP TABLE nodes; --", "email").is_none());
        assert!(property_index("DemoUser", "e') OR 1=1").is_none());
    }
}
