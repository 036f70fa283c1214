//! What outlives a run besides the graph: each plugin's state per scope (stored only when
//! a sync succeeds) and the run history.

use std::collections::BTreeMap;

use infragraph_core::RunRecord;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::error::Error;
use crate::store::Store;

impl Store {
    pub(crate) fn commit_state_sync(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), Error> {
        let run = || -> rusqlite::Result<()> {
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut set = tx.prepare_cached(
                    "INSERT INTO plugin_state (plugin, scope, key, value) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (plugin, scope, key) DO UPDATE SET value = excluded.value",
                )?;
                let mut del = tx.prepare_cached(
                    "DELETE FROM plugin_state WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
                )?;
                for (key, value) in writes {
                    match value {
                        Some(v) => set.execute(params![plugin, scope, key, v])?,
                        None => del.execute(params![plugin, scope, key])?,
                    };
                }
            }
            tx.commit()
        };
        run().map_err(|e| {
            Error::db(
                self.path(),
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
        let conn = self.reader();
        conn.prepare_cached(
            "SELECT value FROM plugin_state WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
        )
        .and_then(|mut st| {
            st.query_row(params![plugin, scope, key], |r| r.get(0))
                .optional()
        })
        .map_err(|e| {
            Error::db(
                self.path(),
                &format!("reading the state of plugin {plugin:?}"),
                e,
            )
        })
    }

    pub(crate) fn record_run_sync(&self, run: &RunRecord) -> Result<(), Error> {
        let conn = self.writer();
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
        .map_err(|e| {
            Error::db(
                self.path(),
                &format!("recording a run of plugin {:?}", run.plugin),
                e,
            )
        })
    }
}
