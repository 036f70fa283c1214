//! The write side: `GraphSink` and `StateStore` for [`Store`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use infragraph_core::{
    BoxFuture, ChangeCounts, EdgeBatch, GraphSink, Incomplete, Manifest, NodeBatch, RunRecord,
    SinkError, StateError, StateStore, Value, WriteScope, is_pascal_case, is_snake_case,
};
use rusqlite::{CachedStatement, Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, ErrorKind, Fail};
use crate::layout::{property_expr, property_index};
use crate::store::Store;

/// Node upsert for rows without nulls: the inserted map is also the patch.
/// `json_patch` is RFC 7396 merge-patch, i.e. Cypher's `SET n += $props`.
const UPSERT_NODE: &str = "INSERT INTO nodes \
    (label, id, extra_labels, props, firstseen, lastupdated, source, scope) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) \
    ON CONFLICT (label, id) DO UPDATE SET extra_labels = excluded.extra_labels, \
    props = json_patch(nodes.props, excluded.props), lastupdated = excluded.lastupdated, \
    source = excluded.source, scope = excluded.scope";

/// Node upsert for rows with nulls: a new node gets the map without them (?4), an existing
/// one is patched with them (?8), which removes those properties.
const UPSERT_NODE_NULLS: &str = "INSERT INTO nodes \
    (label, id, extra_labels, props, firstseen, lastupdated, source, scope) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) \
    ON CONFLICT (label, id) DO UPDATE SET extra_labels = excluded.extra_labels, \
    props = json_patch(nodes.props, ?8), lastupdated = excluded.lastupdated, \
    source = excluded.source, scope = excluded.scope";

const UPSERT_EDGE: &str = "INSERT INTO edges \
    (type, src, dst, props, firstseen, lastupdated, source, scope) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) \
    ON CONFLICT (src, type, dst) DO UPDATE SET \
    props = json_patch(edges.props, excluded.props), lastupdated = excluded.lastupdated, \
    source = excluded.source, scope = excluded.scope";

const UPSERT_EDGE_NULLS: &str = "INSERT INTO edges \
    (type, src, dst, props, firstseen, lastupdated, source, scope) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) \
    ON CONFLICT (src, type, dst) DO UPDATE SET \
    props = json_patch(edges.props, ?8), lastupdated = excluded.lastupdated, \
    source = excluded.source, scope = excluded.scope";

const NODE_BY_ID: &str = "SELECT nid FROM nodes WHERE label = ?1 AND id = ?2";

/// Builds property maps as JSON text, reusing its buffers across the rows of a batch.
struct PropsWriter {
    /// `"name":` per column, encoded once per batch.
    keys: Vec<Vec<u8>>,
    clean: Vec<u8>,
    patch: Vec<u8>,
}

impl PropsWriter {
    fn new(columns: &[String]) -> PropsWriter {
        let keys = columns
            .iter()
            .map(|c| {
                let mut k = serde_json::to_vec(c).expect("a string serialises");
                k.push(b':');
                k
            })
            .collect();
        PropsWriter {
            keys,
            clean: Vec::with_capacity(512),
            patch: Vec::with_capacity(512),
        }
    }

    /// Encodes one row. Returns the map without nulls (what a new record stores) and, if
    /// the row has nulls, the map with them (the patch that removes those properties).
    fn encode(&mut self, values: &[Value]) -> (&str, Option<&str>) {
        let has_null = values.iter().any(|v| matches!(v, Value::Null));
        write_map(&mut self.clean, &self.keys, values, false);
        let clean = std::str::from_utf8(&self.clean).expect("serde_json writes UTF-8");
        if !has_null {
            return (clean, None);
        }
        write_map(&mut self.patch, &self.keys, values, true);
        let patch = std::str::from_utf8(&self.patch).expect("serde_json writes UTF-8");
        (clean, Some(patch))
    }
}

fn write_map(buf: &mut Vec<u8>, keys: &[Vec<u8>], values: &[Value], nulls: bool) {
    buf.clear();
    buf.push(b'{');
    let mut first = true;
    for (k, v) in keys.iter().zip(values) {
        if !nulls && matches!(v, Value::Null) {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.extend_from_slice(k);
        // Writing to a Vec cannot fail. A NaN or infinite float becomes null (JSON has no
        // such numbers), which `SET +=` semantics then treat as "no value".
        serde_json::to_writer(&mut *buf, v).expect("a Value serialises");
    }
    buf.push(b'}');
}

/// Finds the nodes an edge end names: by the unique (label, id) index, or by another
/// property through its expression index (several nodes may match). Prepared once per
/// batch, with the label bound once.
pub(crate) struct Resolver<'c> {
    st: CachedStatement<'c>,
    value_at: usize,
}

impl<'c> Resolver<'c> {
    pub(crate) fn new(conn: &'c Connection, label: &str, key: &str) -> Result<Self, Fail> {
        if key == "id" {
            let mut st = conn.prepare_cached(NODE_BY_ID)?;
            st.raw_bind_parameter(1, label)?;
            return Ok(Resolver { st, value_at: 2 });
        }
        // Inlined, not bound: the partial index only serves queries naming the same label
        // constant. Both names are checked so no data ever becomes SQL.
        if !is_pascal_case(label) || !is_snake_case(key) {
            return Err(Fail::Done(Error::new(
                ErrorKind::Invalid,
                format!(
                    "cannot match nodes by label {label:?} and property {key:?}: not identifiers"
                ),
            )));
        }
        let sql = format!(
            "SELECT nid FROM nodes WHERE label = '{label}' AND {} = ?1",
            property_expr(key)
        );
        Ok(Resolver {
            st: conn.prepare_cached(&sql)?,
            value_at: 1,
        })
    }

    /// Replaces `out` with the nodes whose key is `value`.
    pub(crate) fn find(&mut self, value: &str, out: &mut Vec<i64>) -> Result<(), Fail> {
        out.clear();
        self.st.raw_bind_parameter(self.value_at, value)?;
        let mut rows = self.st.raw_query();
        while let Some(r) = rows.next()? {
            out.push(r.get(0)?);
        }
        Ok(())
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    fn prepare_sync(&self, manifest: &Manifest) -> Result<(), Error> {
        let mut wanted = Vec::new();
        for kind in &manifest.schema.nodes {
            for p in kind.properties.iter().filter(|p| p.indexed) {
                wanted.push((kind.label.clone(), p.name.clone()));
            }
        }
        self.ensure_indexes(&wanted).map_err(|e| {
            e.at(
                self.path(),
                &format!("creating the indexes of plugin {:?}", manifest.name),
            )
        })
    }

    /// Creates the property indexes not yet known to exist, in one transaction.
    fn ensure_indexes(&self, wanted: &[(String, String)]) -> Result<(), Fail> {
        let missing: Vec<_> = {
            let known = self.indexed.lock().unwrap_or_else(|e| e.into_inner());
            wanted
                .iter()
                .filter(|w| !known.contains(*w))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (label, prop) in &missing {
            let Some(sql) = property_index(label, prop) else {
                return Err(Fail::Done(Error::new(
                    ErrorKind::Invalid,
                    format!("cannot index property {prop:?} of label {label:?}: not identifiers"),
                )));
            };
            tx.execute(&sql, [])?;
        }
        tx.commit()?;
        drop(conn);
        let mut known = self.indexed.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(missing);
        Ok(())
    }

    fn write_nodes_sync(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), Error> {
        let run = || -> Result<(), Fail> {
            let extra = serde_json::to_string(extra_labels)?;
            let mut props = PropsWriter::new(&batch.columns);
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut clean_st = tx.prepare_cached(UPSERT_NODE)?;
                let mut nulls_st = tx.prepare_cached(UPSERT_NODE_NULLS)?;
                // What is the same for every row is bound once; SQLite keeps bindings
                // across executions.
                for st in [&mut clean_st, &mut nulls_st] {
                    st.raw_bind_parameter(1, &batch.label)?;
                    st.raw_bind_parameter(3, &extra)?;
                    st.raw_bind_parameter(5, w.update_tag)?;
                    st.raw_bind_parameter(6, &w.plugin)?;
                    st.raw_bind_parameter(7, &w.scope)?;
                }
                for row in &batch.rows {
                    let (clean, patch) = props.encode(&row.values);
                    let st = match patch {
                        None => &mut clean_st,
                        Some(patch) => {
                            nulls_st.raw_bind_parameter(8, patch)?;
                            &mut nulls_st
                        }
                    };
                    st.raw_bind_parameter(2, &row.id)?;
                    st.raw_bind_parameter(4, clean)?;
                    st.raw_execute()?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        run().map_err(|e| e.at(self.path(), &format!("writing {} nodes", batch.label)))?;
        tracing::trace!(label = %batch.label, rows = batch.rows.len(), "nodes written");
        Ok(())
    }

    fn write_edges_sync(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Error> {
        let what = || {
            format!(
                "writing (:{})-[:{}]->(:{}) edges",
                batch.from_label, batch.rel_type, batch.to_label
            )
        };
        let mut wanted = Vec::new();
        for (label, key) in [
            (&batch.from_label, &batch.from_key),
            (&batch.to_label, &batch.to_key),
        ] {
            if key != "id" {
                wanted.push((label.clone(), key.clone()));
            }
        }
        // Matching an end by a property other than `id` without an index would scan every
        // node of the label for every row.
        self.ensure_indexes(&wanted)
            .map_err(|e| e.at(self.path(), &what()))?;
        let run = || -> Result<u64, Fail> {
            let mut props = PropsWriter::new(&batch.columns);
            let (mut srcs, mut dsts) = (Vec::new(), Vec::new());
            let mut unresolved = 0;
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut from = Resolver::new(&tx, &batch.from_label, &batch.from_key)?;
                let mut to = Resolver::new(&tx, &batch.to_label, &batch.to_key)?;
                let mut clean_st = tx.prepare_cached(UPSERT_EDGE)?;
                let mut nulls_st = tx.prepare_cached(UPSERT_EDGE_NULLS)?;
                for st in [&mut clean_st, &mut nulls_st] {
                    st.raw_bind_parameter(1, &batch.rel_type)?;
                    st.raw_bind_parameter(5, w.update_tag)?;
                    st.raw_bind_parameter(6, &w.plugin)?;
                    st.raw_bind_parameter(7, &w.scope)?;
                }
                for row in &batch.rows {
                    from.find(&row.from, &mut srcs)?;
                    to.find(&row.to, &mut dsts)?;
                    if srcs.is_empty() || dsts.is_empty() {
                        unresolved += 1;
                        continue;
                    }
                    let (clean, patch) = props.encode(&row.values);
                    let st = match patch {
                        None => &mut clean_st,
                        Some(patch) => {
                            nulls_st.raw_bind_parameter(8, patch)?;
                            &mut nulls_st
                        }
                    };
                    st.raw_bind_parameter(4, clean)?;
                    // A key other than `id` may match several nodes; the edge links each.
                    for &s in &srcs {
                        for &d in &dsts {
                            st.raw_bind_parameter(2, s)?;
                            st.raw_bind_parameter(3, d)?;
                            st.raw_execute()?;
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(unresolved)
        };
        let unresolved = run().map_err(|e| e.at(self.path(), &what()))?;
        tracing::trace!(rel_type = %batch.rel_type, rows = batch.rows.len(), unresolved, "edges written");
        Ok(unresolved)
    }

    fn next_update_tag_sync(&self) -> Result<i64, Error> {
        let run = || -> rusqlite::Result<i64> {
            let mut conn = self.writer();
            // IMMEDIATE: another process taking a tag at the same moment waits, so tags
            // stay strictly increasing across processes too.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: i64 = tx.query_row(
                "SELECT value FROM meta WHERE key = 'last_update_tag'",
                [],
                |r| r.get(0),
            )?;
            let tag = now_ms().max(last + 1);
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'last_update_tag'",
                [tag],
            )?;
            tx.commit()?;
            Ok(tag)
        };
        run().map_err(|e| Error::db(self.path(), "taking an update tag", e))
    }

    fn changes_sync(&self, w: &WriteScope) -> Result<ChangeCounts, Error> {
        let run = || -> rusqlite::Result<ChangeCounts> {
            let conn = self.reader();
            let mut out = ChangeCounts::default();
            for (table, col) in [("nodes", "label"), ("edges", "type")] {
                let sql = format!(
                    "SELECT {col}, sum(firstseen = ?3), sum(firstseen < ?3) FROM {table} \
                     WHERE source = ?1 AND scope = ?2 AND lastupdated = ?3 GROUP BY {col}"
                );
                let mut st = conn.prepare_cached(&sql)?;
                let rows = st.query_map(params![w.plugin, w.scope, w.update_tag], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                let map = if table == "nodes" {
                    &mut out.nodes
                } else {
                    &mut out.edges
                };
                for row in rows {
                    let (name, created, updated) = row?;
                    let c = map.entry(name).or_default();
                    c.created = created as u64;
                    c.updated = updated as u64;
                }
            }
            Ok(out)
        };
        run().map_err(|e| Error::db(self.path(), "counting this run's changes", e))
    }

    fn cleanup_sync(
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

    fn commit_state_sync(
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

    fn get_state_sync(
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

    fn record_run_sync(&self, run: &RunRecord) -> Result<(), Error> {
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

/// The temporary tables of one cleanup.
struct Cleanup {
    keep: String,
    edges: String,
    nodes: String,
}

impl GraphSink for Store {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        Store::blocking(|| self.prepare_sync(manifest)).map_err(SinkError::from)
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        Store::blocking(|| self.next_update_tag_sync()).map_err(SinkError::from)
    }

    async fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        Store::blocking(|| self.write_nodes_sync(w, extra_labels, batch)).map_err(SinkError::from)
    }

    async fn write_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        Store::blocking(|| self.write_edges_sync(w, batch)).map_err(SinkError::from)
    }

    async fn changes(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        Store::blocking(|| self.changes_sync(w)).map_err(SinkError::from)
    }

    async fn cleanup(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        batch: usize,
    ) -> Result<ChangeCounts, SinkError> {
        Store::blocking(|| self.cleanup_sync(w, keep, batch)).map_err(SinkError::from)
    }

    async fn commit_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        Store::blocking(|| self.commit_state_sync(plugin, scope, writes)).map_err(SinkError::from)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), SinkError> {
        Store::blocking(|| self.record_run_sync(run)).map_err(SinkError::from)
    }
}

impl StateStore for Store {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(async move {
            Store::blocking(|| self.get_state_sync(plugin, scope, key)).map_err(StateError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use infragraph_core::{EdgeRow, NodeRow};

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

    #[test]
    fn props_writer_keeps_nulls_only_in_the_patch() {
        let mut w = PropsWriter::new(&["a".into(), "b".into(), "c".into()]);
        let (clean, patch) = w.encode(&[
            Value::Int(1),
            Value::Null,
            Value::TextList(vec!["x\"y".into()]),
        ]);
        assert_eq!(clean, r#"{"a":1,"c":["x\"y"]}"#);
        assert_eq!(patch, Some(r#"{"a":1,"b":null,"c":["x\"y"]}"#));
        let (clean, patch) = w.encode(&[
            Value::Bool(true),
            Value::Float(0.5),
            Value::Text("é".into()),
        ]);
        assert_eq!(clean, r#"{"a":true,"b":0.5,"c":"é"}"#);
        assert_eq!(patch, None);
        assert_eq!(w.encode(&[Value::Null, Value::Null, Value::Null]).0, "{}");
    }
}
