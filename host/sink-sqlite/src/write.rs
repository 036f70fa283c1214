//! Writing records: property indexes a plugin's schema asks for, node and edge upserts in
//! one transaction per batch, update tags, and the created/updated counts of a run.

use std::time::{SystemTime, UNIX_EPOCH};

use infragraph_core::{ChangeCounts, EdgeBatch, Manifest, NodeBatch, WriteScope};
use rusqlite::{TransactionBehavior, params};

use crate::encode::PropsWriter;
use crate::error::{Error, ErrorKind, Fail};
use crate::layout::property_index;
use crate::resolve::Resolver;
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

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    pub(crate) fn prepare_sync(&self, manifest: &Manifest) -> Result<(), Error> {
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

    pub(crate) fn write_nodes_sync(
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

    pub(crate) fn write_edges_sync(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Error> {
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

    pub(crate) fn next_update_tag_sync(&self) -> Result<i64, Error> {
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

    pub(crate) fn changes_sync(&self, w: &WriteScope) -> Result<ChangeCounts, Error> {
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
}
