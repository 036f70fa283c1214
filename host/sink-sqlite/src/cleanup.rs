//! Cleanup after a successful sync: the plugin's records in its scope older than the run
//! are deleted in bounded transactions, except the labels it marked incomplete (under
//! their parent, when given) and the edges touching them. Planned in temporary tables,
//! then edges, then nodes.

use std::collections::BTreeMap;

use infragraph_core::{ChangeCounts, Incomplete, WriteScope};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Fail};
use crate::resolve::Resolver;
use crate::store::Store;

impl Store {
    pub(crate) fn cleanup_sync(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        batch: usize,
    ) -> Result<ChangeCounts, Error> {
        let batch = batch.max(1);
        let n = self.next_temp();
        // Temporary tables belong to the writer connection, which other plugins' batches
        // use between ours: unique names keep concurrent cleanups apart.
        let tables = Cleanup {
            keep: format!("temp.cleanup_keep_{n}"),
            edges: format!("temp.cleanup_edges_{n}"),
            nodes: format!("temp.cleanup_nodes_{n}"),
        };
        let mut counts = ChangeCounts::default();
        let result = self
            .plan_cleanup(&tables, w, keep)
            .and_then(|()| self.delete_edges(&tables, w, batch, &mut counts))
            .and_then(|()| self.delete_nodes(&tables, w, batch, &mut counts));
        {
            let conn = self.writer();
            for t in [&tables.keep, &tables.edges, &tables.nodes] {
                if let Err(e) = conn.execute(&format!("DROP TABLE IF EXISTS {t}"), []) {
                    tracing::warn!(table = %t, error = %e, "could not drop a cleanup table");
                }
            }
        }
        let what = format!(
            "cleaning up after plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        result.map_err(|e| e.at(self.path(), &what))?;
        let deleted = |m: &BTreeMap<String, infragraph_core::Changes>| {
            m.values().map(|c| c.deleted).sum::<u64>()
        };
        tracing::debug!(
            plugin = %w.plugin,
            scope = %w.scope,
            nodes = deleted(&counts.nodes),
            edges = deleted(&counts.edges),
            "cleanup deleted stale records"
        );
        Ok(counts)
    }

    /// Lists, in one snapshot, the nodes to keep and the edges and nodes to delete.
    /// Writing temporary tables takes no lock on the store file.
    fn plan_cleanup(&self, t: &Cleanup, w: &WriteScope, keep: &[Incomplete]) -> Result<(), Fail> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        tx.execute(
            &format!("CREATE TABLE {} (nid INTEGER PRIMARY KEY)", t.keep),
            [],
        )?;
        let mut parents = Vec::new();
        for k in keep {
            match &k.parent {
                None => {
                    tx.execute(
                        &format!(
                            "INSERT OR IGNORE INTO {} SELECT nid FROM nodes \
                             WHERE source = ?1 AND scope = ?2 AND label = ?3",
                            t.keep
                        ),
                        params![w.plugin, w.scope, k.label],
                    )?;
                }
                Some(p) => {
                    Resolver::new(&tx, &p.label, &p.key)?.find(&p.value, &mut parents)?;
                    for &parent in &parents {
                        tx.execute(
                            &format!(
                                "INSERT OR IGNORE INTO {} \
                                 SELECT n.nid FROM edges e JOIN nodes n ON n.nid = e.dst \
                                 WHERE e.src = ?4 AND n.source = ?1 AND n.scope = ?2 AND n.label = ?3 \
                                 UNION \
                                 SELECT n.nid FROM edges e JOIN nodes n ON n.nid = e.src \
                                 WHERE e.dst = ?4 AND n.source = ?1 AND n.scope = ?2 AND n.label = ?3",
                                t.keep
                            ),
                            params![w.plugin, w.scope, k.label, parent],
                        )?;
                    }
                }
            }
        }
        tx.execute(
            &format!("CREATE TABLE {} (id INTEGER PRIMARY KEY)", t.edges),
            [],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO {e} SELECT eid FROM edges \
                 WHERE source = ?1 AND scope = ?2 AND lastupdated < ?3 \
                 AND src NOT IN {k} AND dst NOT IN {k}",
                e = t.edges,
                k = t.keep
            ),
            params![w.plugin, w.scope, w.update_tag],
        )?;
        tx.execute(
            &format!("CREATE TABLE {} (id INTEGER PRIMARY KEY)", t.nodes),
            [],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO {n} SELECT nid FROM nodes \
                 WHERE source = ?1 AND scope = ?2 AND lastupdated < ?3 AND nid NOT IN {k}",
                n = t.nodes,
                k = t.keep
            ),
            params![w.plugin, w.scope, w.update_tag],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes the planned stale edges, `batch` per transaction. The writer lock is let go
    /// between transactions so other plugins' batches are not held up.
    fn delete_edges(
        &self,
        t: &Cleanup,
        w: &WriteScope,
        batch: usize,
        counts: &mut ChangeCounts,
    ) -> Result<(), Fail> {
        let next = format!(
            "SELECT id FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            t.edges
        );
        let mut cursor = 0i64;
        loop {
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ids: Vec<i64> = tx
                .prepare_cached(&next)?
                .query_map(params![cursor, batch as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let Some(&last) = ids.last() else { break };
            {
                // Checked again: since planning, another plugin may have taken the edge over.
                let mut del = tx.prepare_cached(
                    "DELETE FROM edges WHERE eid = ?1 AND source = ?2 AND scope = ?3 \
                     AND lastupdated < ?4 RETURNING type",
                )?;
                for eid in ids {
                    let ty: Option<String> = del
                        .query_row(params![eid, w.plugin, w.scope, w.update_tag], |r| r.get(0))
                        .optional()?;
                    if let Some(ty) = ty {
                        counts.edges.entry(ty).or_default().deleted += 1;
                    }
                }
            }
            tx.commit()?;
            cursor = last;
        }
        Ok(())
    }

    /// Deletes the planned stale nodes with all their edges (whoever wrote those), at
    /// most `batch` records per transaction: a node with more edges than that loses them
    /// over several transactions before it goes itself, so every commit leaves a graph
    /// without dangling edges.
    fn delete_nodes(
        &self,
        t: &Cleanup,
        w: &WriteScope,
        batch: usize,
        counts: &mut ChangeCounts,
    ) -> Result<(), Fail> {
        let next = format!(
            "SELECT id FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            t.nodes
        );
        // Every planned node up to `cursor` is done.
        let mut cursor = 0i64;
        loop {
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut room = batch;
            let nids: Vec<i64> = tx
                .prepare_cached(&next)?
                .query_map(params![cursor, batch as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if nids.is_empty() {
                break;
            }
            {
                let mut still_stale = tx.prepare_cached(
                    "SELECT label FROM nodes WHERE nid = ?1 AND source = ?2 AND scope = ?3 \
                     AND lastupdated < ?4",
                )?;
                let mut edges_of = tx.prepare_cached(
                    "SELECT eid, type FROM edges WHERE src = ?1 \
                     UNION ALL SELECT eid, type FROM edges WHERE dst = ?1 AND src <> ?1 LIMIT ?2",
                )?;
                let mut del_edge = tx.prepare_cached("DELETE FROM edges WHERE eid = ?1")?;
                let mut del_node = tx.prepare_cached("DELETE FROM nodes WHERE nid = ?1")?;
                for nid in nids {
                    let label: Option<String> = still_stale
                        .query_row(params![nid, w.plugin, w.scope, w.update_tag], |r| r.get(0))
                        .optional()?;
                    let Some(label) = label else {
                        cursor = nid;
                        continue;
                    };
                    let edges: Vec<(i64, String)> = edges_of
                        .query_map(params![nid, room as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?;
                    for (eid, ty) in &edges {
                        del_edge.execute([eid])?;
                        counts.edges.entry(ty.clone()).or_default().deleted += 1;
                    }
                    room -= edges.len();
                    if room == 0 {
                        // The node may have more edges: come back to it next transaction.
                        break;
                    }
                    del_node.execute([nid])?;
                    counts.nodes.entry(label).or_default().deleted += 1;
                    cursor = nid;
                    room -= 1;
                    if room == 0 {
                        break;
                    }
                }
            }
            tx.commit()?;
        }
        Ok(())
    }
}

/// The temporary tables of one cleanup.
struct Cleanup {
    keep: String,
    edges: String,
    nodes: String,
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use infragraph_core::{EdgeBatch, EdgeRow, NodeBatch, NodeRow};

    use super::*;

    #[test]
    fn cleanup_commits_at_most_batch_records_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("graph.db")).unwrap();
        let old = WriteScope {
            plugin: "demo".into(),
            scope: "o".into(),
            update_tag: 1,
        };
        let ids: Vec<String> = (0..30).map(|i| format!("n{i}")).collect();
        let nodes = NodeBatch {
            label: "DemoNode".into(),
            columns: vec![],
            rows: ids
                .iter()
                .map(|id| NodeRow {
                    id: id.clone(),
                    values: vec![],
                })
                .collect(),
        };
        store.write_nodes_sync(&old, &[], &nodes).unwrap();
        // n0 is a hub with 29 edges, more than a batch.
        let edges = EdgeBatch {
            rel_type: "LINKS".into(),
            from_label: "DemoNode".into(),
            from_key: "id".into(),
            to_label: "DemoNode".into(),
            to_key: "id".into(),
            columns: vec![],
            rows: ids[1..]
                .iter()
                .map(|id| EdgeRow {
                    from: "n0".into(),
                    to: id.clone(),
                    values: vec![],
                })
                .collect(),
        };
        store.write_edges_sync(&old, &edges).unwrap();

        // Rows changed in the main database per commit.
        let log = Arc::new(Mutex::new((0usize, Vec::new())));
        {
            let mut conn = store.writer();
            let l = log.clone();
            conn.update_hook(Some(move |_, db: &str, _: &str, _| {
                if db == "main" {
                    l.lock().unwrap().0 += 1;
                }
            }))
            .unwrap();
            let l = log.clone();
            conn.commit_hook(Some(move || {
                let mut l = l.lock().unwrap();
                let n = std::mem::take(&mut l.0);
                l.1.push(n);
                false
            }))
            .unwrap();
        }
        let new = WriteScope {
            update_tag: 2,
            ..old
        };
        let counts = store.cleanup_sync(&new, &[], 4).unwrap();
        assert_eq!(counts.nodes["DemoNode"].deleted, 30);
        assert_eq!(counts.edges["LINKS"].deleted, 29);
        let per_commit = log.lock().unwrap().1.clone();
        assert!(per_commit.iter().all(|n| *n <= 4), "{per_commit:?}");
        assert_eq!(per_commit.iter().sum::<usize>(), 59, "{per_commit:?}");
    }
}
