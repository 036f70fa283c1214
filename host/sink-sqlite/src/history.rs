//! What outlives a run besides the graph: each plugin's state per scope (stored only when
//! a sync succeeds) and the run history.

use std::collections::BTreeMap;

use infragraph_core::RunRecord;
use rusqlite::{Connection, OptionalExtension, params};

/// Stores state writes, in the caller's transaction.
pub(crate) fn commit_state(
    conn: &Connection,
    plugin: &str,
    scope: &str,
    writes: &BTreeMap<String, Option<Vec<u8>>>,
) -> rusqlite::Result<()> {
    let mut set = conn.prepare_cached(
        "INSERT INTO plugin_state (plugin, scope, key, value) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (plugin, scope, key) DO UPDATE SET value = excluded.value",
    )?;
    let mut del = conn
        .prepare_cached("DELETE FROM plugin_state WHERE plugin = ?1 AND scope = ?2 AND key = ?3")?;
    for (key, value) in writes {
        match value {
            Some(v) => set.execute(params![plugin, scope, key, v])?,
            None => del.execute(params![plugin, scope, key])?,
        };
    }
    Ok(())
}

/// One value of a plugin's state.
pub(crate) fn get_state(
    conn: &Connection,
    plugin: &str,
    scope: &str,
    key: &str,
) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(
        "SELECT value FROM plugin_state WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
    )
    .and_then(|mut st| {
        st.query_row(params![plugin, scope, key], |r| r.get(0))
            .optional()
    })
}

/// Appends `run` to the run history.
pub(crate) fn record_run(conn: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO runs (plugin, scope, update_tag, status, started_at, finished_at, report) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            run.plugin,
            run.scope,
            run.update_tag,
            run.status.to_string(),
            run.started_at,
            run.finished_at,
            run.report
        ])
    })
    .map(drop)
}
