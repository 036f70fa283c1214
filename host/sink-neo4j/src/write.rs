//! The write side: `GraphSink` and `StateStore` for [`Neo4jSink`].

use std::collections::BTreeMap;
use std::time::Duration;

use infragraph_core::{
    BoxFuture, ChangeCounts, EdgeBatch, GraphSink, Holder, Incomplete, Manifest, NodeBatch,
    Publish, RunRecord, SinkError, StateError, StateStore, WriteScope,
};
use neo4rs::{BoltList, BoltType, Query, Row, query};

use crate::cypher::{self, Keep};
use crate::error::{Error, ErrorKind};
use crate::schema::PluginSchema;
use crate::sink::{Neo4jSink, now_ms};
use crate::values::{self, int, map, text};

/// Takes an update tag: the newest of the clock and one past the last tag handed out,
/// kept on the one `InfragraphMeta` node. The write takes that node's lock, so tags stay
/// strictly increasing across processes.
const NEXT_TAG: &str = "MERGE (m:`InfragraphMeta` {`id`: 'infragraph'}) \
    ON CREATE SET m.`last_update_tag` = 0 \
    WITH m \
    SET m.`last_update_tag` = CASE WHEN $now > m.`last_update_tag` THEN $now \
        ELSE m.`last_update_tag` + 1 END \
    RETURN m.`last_update_tag` AS tag";

const SET_STATE: &str = "UNWIND $set AS kv \
    MERGE (s:`InfragraphState` {`plugin`: $plugin, `scope`: $scope, `key`: kv.key}) \
    SET s.`value_hex` = kv.value";

const DELETE_STATE: &str = "UNWIND $delete AS k \
    MATCH (s:`InfragraphState` {`plugin`: $plugin, `scope`: $scope, `key`: k}) \
    DELETE s";

const GET_STATE: &str = "MATCH (s:`InfragraphState` {`plugin`: $plugin, `scope`: $scope, `key`: $key}) \
    RETURN s.`value_hex` AS value";

/// MERGEd on what identifies a run rather than CREATEd, so that a retry after a COMMIT
/// whose answer was lost does not record the run twice.
const RECORD_RUN: &str = "MERGE (r:`InfragraphRun` \
    {`plugin`: $run.plugin, `update_tag`: $run.update_tag, `started_at`: $run.started_at}) \
    SET r += $run";

/// The bookkeeping parameters of a write.
fn scoped(q: Query, w: &WriteScope) -> Query {
    q.param("tag", w.update_tag)
        .param("plugin", w.plugin.as_str())
        .param("scope", w.scope.as_str())
}

impl Neo4jSink {
    fn schema_of(&self, plugin: &str) -> Result<PluginSchema, Error> {
        let schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        schemas.get(plugin).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!("plugin {plugin:?} writes before its schema was prepared"),
            )
        })
    }

    async fn prepare_plugin(&self, manifest: &Manifest) -> Result<(), Error> {
        let schema = PluginSchema::new(manifest)?;
        self.ensure(&schema.schema_statements(manifest)?).await?;
        self.claim_labels(manifest).await?;
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(manifest.name.clone(), schema);
        Ok(())
    }

    /// Registers the plugin's primary labels as its own, or refuses the plugin when one
    /// belongs to another plugin already: its nodes would be the other plugin's.
    async fn claim_labels(&self, manifest: &Manifest) -> Result<(), Error> {
        let labels = BoltType::List(BoltList {
            value: manifest
                .schema
                .nodes
                .iter()
                .map(|k| text(&k.label))
                .collect(),
        });
        let rows = self
            .tx_retried("registering the plugin's labels", || {
                vec![
                    query(cypher::CLAIM_LABELS)
                        .param("labels", labels.clone())
                        .param("plugin", manifest.name.as_str()),
                ]
            })
            .await?;
        for row in rows.into_iter().flatten() {
            let (Ok(label), Ok(by)) = (row.get::<String>("label"), row.get::<String>("plugin"))
            else {
                continue;
            };
            if by != manifest.name {
                return Err(Error::new(
                    ErrorKind::NotOwner,
                    format!(
                        "neo4j {}: plugin {:?} declares label {label} as its own, but it \
                         belongs to plugin {by:?} on this server; a plugin may link to another \
                         plugin's nodes or share an extra label, not declare its primary label \
                         (rename the label in the plugin, or use another database)",
                        self.uri, manifest.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The refusal of a batch that touches `what`, owned by `owner`.
    fn not_owner(&self, what: String, owner: &Row, plugin: &str) -> Error {
        let owner = owner
            .get::<String>("owner")
            .unwrap_or_else(|_| "another plugin".into());
        Error::new(
            ErrorKind::NotOwner,
            format!(
                "neo4j {}: {what} belongs to plugin {owner:?}; plugin {plugin:?} may not \
                 write it (nothing of this batch was written)",
                self.uri
            ),
        )
    }

    async fn take_tag(&self) -> Result<i64, Error> {
        let rows = self
            .tx_retried("taking an update tag", || {
                vec![query(NEXT_TAG).param("now", now_ms())]
            })
            .await?;
        first_int(&rows, "tag").ok_or_else(|| {
            Error::new(
                ErrorKind::Query,
                format!("neo4j {}: taking an update tag: no tag returned", self.uri),
            )
        })
    }

    async fn put_nodes(
        &self,
        w: &WriteScope,
        extra: &[String],
        batch: &NodeBatch,
    ) -> Result<(), Error> {
        self.schema_of(&w.plugin)?
            .check_nodes(&w.plugin, extra, batch)?;
        let statements = cypher::merge_nodes(&batch.label, extra)?;
        // Built for each attempt rather than cloned: a batch's rows are its largest value,
        // and a deep copy of ten thousand maps costs as much as building them.
        let rows = || {
            BoltType::List(BoltList {
                value: batch
                    .rows
                    .iter()
                    .map(|r| {
                        map([
                            ("id", text(&r.id)),
                            ("props", values::props(&batch.columns, &r.values)),
                        ])
                    })
                    .collect(),
            })
        };
        // Each id once, for the statement that creates what is missing.
        let mut ids: Vec<&str> = batch.rows.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        // One statement takes the rows; with extra labels, the one before it the ids.
        let last = statements.len() - 1;
        let qs = || -> Vec<_> {
            statements
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let q = if i == last {
                        query(s).param("rows", rows())
                    } else {
                        query(s).param("ids", ids.clone())
                    };
                    scoped(q, w)
                })
                .collect()
        };
        let what = format!("writing {} nodes", batch.label);
        let done = self.retrying(&what, || self.tx_refusable(qs())).await?;
        if let Err(row) = done {
            let id = row.get::<String>("id").unwrap_or_default();
            let what = format!("node {} {id:?}", batch.label);
            return Err(self.not_owner(what, &row, &w.plugin));
        }
        tracing::trace!(label = %batch.label, rows = batch.rows.len(), "nodes written");
        Ok(())
    }

    async fn put_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Error> {
        self.schema_of(&w.plugin)?.check_edges(&w.plugin, batch)?;
        // Matching an end on a property other than `id` without an index would scan
        // every node of the label for every row.
        let mut wanted = Vec::new();
        for (label, key) in [
            (&batch.from_label, &batch.from_key),
            (&batch.to_label, &batch.to_key),
        ] {
            if key != "id" {
                wanted.push(cypher::property_index(label, key)?);
            }
        }
        self.ensure(&wanted).await?;
        let anchor =
            cypher::Anchor::for_batch(batch.rows.iter().map(|r| (r.from.as_str(), r.to.as_str())));
        // A batch that repeats a pair needs `MERGE`, which sees what its earlier rows
        // created; plugins rarely send one.
        let mut pairs = std::collections::HashSet::with_capacity(batch.rows.len());
        let distinct = batch
            .rows
            .iter()
            .all(|r| pairs.insert((r.from.as_str(), r.to.as_str())));
        let write = if distinct {
            cypher::write_edges
        } else {
            cypher::merge_edges
        };
        let statement = write(
            &batch.rel_type,
            (&batch.from_label, &batch.from_key),
            (&batch.to_label, &batch.to_key),
            anchor,
        )?;
        // Built for each attempt rather than cloned, as nodes are.
        let q = || {
            let rows = BoltType::List(BoltList {
                value: batch
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        map([
                            ("i", int(i as i64)),
                            ("f", text(&r.from)),
                            ("t", text(&r.to)),
                            ("props", values::props(&batch.columns, &r.values)),
                        ])
                    })
                    .collect(),
            });
            scoped(query(&statement).param("rows", rows), w)
        };
        let what = format!(
            "writing (:{})-[:{}]->(:{}) relationships",
            batch.from_label, batch.rel_type, batch.to_label
        );
        let done = self
            .retrying(&what, || self.tx_refusable(vec![q()]))
            .await?;
        let result = match done {
            Ok(result) => result,
            Err(row) => {
                let at = row
                    .get::<i64>("i")
                    .ok()
                    .and_then(|i| batch.rows.get(i as usize));
                let (f, t) = at
                    .map(|r| (r.from.as_str(), r.to.as_str()))
                    .unwrap_or_default();
                let what = format!(
                    "relationship ({} {f:?})-[:{}]->({} {t:?})",
                    batch.from_label, batch.rel_type, batch.to_label
                );
                return Err(self.not_owner(what, &row, &w.plugin));
            }
        };
        let resolved = first_int(&result, "resolved").unwrap_or(0).max(0) as u64;
        let unresolved = (batch.rows.len() as u64).saturating_sub(resolved);
        tracing::trace!(rel_type = %batch.rel_type, rows = batch.rows.len(), unresolved, "edges written");
        Ok(unresolved)
    }

    async fn count_changes(&self, w: &WriteScope) -> Result<ChangeCounts, Error> {
        let schema = self.schema_of(&w.plugin)?;
        let mut statements = Vec::new();
        for l in schema.labels() {
            statements.push((true, l.to_string(), cypher::node_changes(l)?));
        }
        for t in schema.rel_types() {
            statements.push((false, t.to_string(), cypher::edge_changes(t)?));
        }
        let result = self
            .tx_retried("counting this run's changes", || {
                statements
                    .iter()
                    .map(|(_, _, s)| scoped(query(s), w))
                    .collect()
            })
            .await?;
        let mut out = ChangeCounts::default();
        for ((is_node, name, _), rows) in statements.iter().zip(&result) {
            let Some(row) = rows.first() else { continue };
            let created: i64 = row.get("created").unwrap_or(0);
            let seen: i64 = row.get("seen").unwrap_or(0);
            if seen == 0 {
                continue;
            }
            let m = if *is_node {
                &mut out.nodes
            } else {
                &mut out.edges
            };
            let c = m.entry(name.clone()).or_default();
            c.created = created as u64;
            c.updated = (seen - created) as u64;
        }
        Ok(out)
    }

    /// Runs one bounded delete until it deletes less than `limit`; returns the total, or
    /// per type when the statement returns `t`.
    async fn delete_loop(
        &self,
        what: &str,
        statement: &str,
        params: &[(String, BoltType)],
        w: &WriteScope,
        limit: usize,
        mut on: impl FnMut(Option<String>, u64),
    ) -> Result<(), Error> {
        loop {
            let rows = self
                .tx_retried(what, || {
                    let mut q = scoped(query(statement), w).param("limit", limit as i64);
                    for (k, v) in params {
                        q = q.param(k, v.clone());
                    }
                    vec![q]
                })
                .await?;
            let mut total = 0u64;
            for row in rows.into_iter().flatten() {
                let n = row.get::<i64>("deleted").unwrap_or(0).max(0) as u64;
                total += n;
                on(row.get::<String>("t").ok(), n);
            }
            if total < limit as u64 {
                return Ok(());
            }
        }
    }

    async fn clean(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        batch: usize,
    ) -> Result<ChangeCounts, Error> {
        let batch = batch.max(1);
        let schema = self.schema_of(&w.plugin)?;
        let what = format!(
            "cleaning up after plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        // Which labels and types have anything to clean up, in one transaction: on most
        // runs few or none, and each of them then costs three or four statements.
        let (stale_labels, stale_types) = self.stale_kinds(w, &schema, &what).await?;
        if stale_labels.is_empty() && stale_types.is_empty() {
            return Ok(ChangeCounts::default());
        }
        // What to keep: labels, or the ids of a label's nodes under a parent, listed now.
        let mut kept = Keep {
            entries: Vec::new(),
        };
        let mut params: Vec<(String, BoltType)> = Vec::new();
        for (n, k) in keep.iter().enumerate() {
            match &k.parent {
                None => kept.entries.push((k.label.clone(), None)),
                Some(p) => {
                    let statement = cypher::kept_under_parent(&k.label, &p.label, &p.key)?;
                    let rows = self
                        .tx_retried(&what, || {
                            vec![scoped(query(&statement), w).param("value", p.value.as_str())]
                        })
                        .await?;
                    let ids: Vec<BoltType> = rows
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.get::<String>("id").ok())
                        .map(|id| text(&id))
                        .collect();
                    let name = format!("keep{n}");
                    params.push((name.clone(), BoltType::List(BoltList { value: ids })));
                    kept.entries.push((k.label.clone(), Some(name)));
                }
            }
        }
        let mut counts = ChangeCounts::default();
        // Records other scopes also assert lose this scope first; what only this scope
        // asserted is deleted below.
        let mut releases = Vec::new();
        for t in &stale_types {
            releases.extend(cypher::release_stale(
                &cypher::edge_pattern(t)?,
                &["a", "b"],
                &kept,
            )?);
        }
        for l in &stale_labels {
            releases.extend(cypher::release_stale(
                &cypher::node_pattern(l)?,
                &["x"],
                &kept,
            )?);
        }
        for statement in &releases {
            self.delete_loop(&what, statement, &params, w, batch, |_, _| {})
                .await?;
        }
        for t in &stale_types {
            let statement = cypher::delete_stale_edges(t, &kept)?;
            self.delete_loop(&what, &statement, &params, w, batch, |_, n| {
                if n > 0 {
                    counts.edges.entry(t.to_string()).or_default().deleted += n;
                }
            })
            .await?;
        }
        for l in &stale_labels {
            let statement = cypher::delete_edges_of_stale_nodes(l, &kept)?;
            self.delete_loop(&what, &statement, &params, w, batch, |t, n| {
                if let (Some(t), true) = (t, n > 0) {
                    counts.edges.entry(t).or_default().deleted += n;
                }
            })
            .await?;
            let statement = cypher::delete_stale_nodes(l, &kept)?;
            self.delete_loop(&what, &statement, &params, w, batch, |_, n| {
                if n > 0 {
                    counts.nodes.entry(l.to_string()).or_default().deleted += n;
                }
            })
            .await?;
        }
        Ok(counts)
    }

    /// The labels and relationship types of `schema` with a record cleanup may act on.
    async fn stale_kinds(
        &self,
        w: &WriteScope,
        schema: &PluginSchema,
        what: &str,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let mut kinds = Vec::new();
        for l in schema.labels() {
            kinds.push((
                true,
                l.to_string(),
                cypher::any_stale(&cypher::node_pattern(l)?),
            ));
        }
        for t in schema.rel_types() {
            kinds.push((
                false,
                t.to_string(),
                cypher::any_stale(&cypher::edge_pattern(t)?),
            ));
        }
        let result = self
            .tx_retried(what, || {
                kinds.iter().map(|(_, _, s)| scoped(query(s), w)).collect()
            })
            .await?;
        let (mut labels, mut types) = (Vec::new(), Vec::new());
        for ((is_node, name, _), rows) in kinds.into_iter().zip(result) {
            if first_int(&[rows], "stale").unwrap_or(0) > 0 {
                if is_node {
                    labels.push(name)
                } else {
                    types.push(name)
                }
            }
        }
        Ok((labels, types))
    }

    async fn store_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), Error> {
        let (mut set, mut delete) = (Vec::new(), Vec::new());
        for (k, v) in writes {
            match v {
                // Hex text: every Bolt server stores strings; not all store byte arrays.
                Some(v) => set.push(map([("key", text(k)), ("value", text(&hex::encode(v)))])),
                None => delete.push(text(k)),
            }
        }
        let list = |v: &Vec<BoltType>| BoltType::List(BoltList { value: v.clone() });
        self.tx_retried(&format!("storing the state of plugin {plugin:?}"), || {
            [(SET_STATE, "set", &set), (DELETE_STATE, "delete", &delete)]
                .into_iter()
                .map(|(s, name, v)| {
                    query(s)
                        .param(name, list(v))
                        .param("plugin", plugin)
                        .param("scope", scope)
                })
                .collect()
        })
        .await?;
        Ok(())
    }

    async fn load_state(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let what = format!("reading the state of plugin {plugin:?}");
        let rows = self
            .tx_retried(&what, || {
                vec![
                    query(GET_STATE)
                        .param("plugin", plugin)
                        .param("scope", scope)
                        .param("key", key),
                ]
            })
            .await?;
        let Some(hexed) = rows
            .into_iter()
            .flatten()
            .find_map(|r| r.get::<String>("value").ok())
        else {
            return Ok(None);
        };
        hex::decode(&hexed).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::Query,
                format!(
                    "neo4j {}: {what}: the stored value is not hex: {e}",
                    self.uri
                ),
            )
        })
    }

    async fn store_run(&self, run: &RunRecord) -> Result<(), Error> {
        let mut fields = vec![
            ("plugin", text(&run.plugin)),
            ("update_tag", int(run.update_tag)),
            ("status", text(&run.status.to_string())),
            ("started_at", text(&run.started_at)),
            ("finished_at", text(&run.finished_at)),
            ("report", text(&run.report)),
        ];
        if let Some(s) = &run.scope {
            fields.push(("scope", text(s)));
        }
        let props = map(fields);
        self.tx_retried(
            &format!("recording a run of plugin {:?}", run.plugin),
            || vec![query(RECORD_RUN).param("run", props.clone())],
        )
        .await?;
        Ok(())
    }
}

/// The integer in column `col` of the first statement's first row.
pub(crate) fn first_int(rows: &[Vec<neo4rs::Row>], col: &str) -> Option<i64> {
    rows.first()?.first()?.get::<i64>(col).ok()
}

impl GraphSink for Neo4jSink {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        Ok(self.prepare_plugin(manifest).await?)
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        Ok(self.take_tag().await?)
    }

    async fn lease(&self, w: &WriteScope, holder: &Holder, ttl: Duration) -> Result<(), SinkError> {
        Ok(self.take_lease(w, holder, ttl).await?)
    }

    async fn release(&self, w: &WriteScope, holder: &Holder) -> Result<(), SinkError> {
        Ok(self.drop_lease(w, holder).await?)
    }

    async fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        Ok(self.put_nodes(w, extra_labels, batch).await?)
    }

    async fn write_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        Ok(self.put_edges(w, batch).await?)
    }

    async fn publish(&self, w: &WriteScope, p: &Publish<'_>) -> Result<ChangeCounts, SinkError> {
        // Every batch is in already: what is left is the cleanup, the state, the counts.
        let mut counts = match p.cleanup {
            Some(keep) => self.clean(w, keep, p.cleanup_batch).await?,
            None => ChangeCounts::default(),
        };
        self.store_state(p.state_plugin, &w.scope, p.state).await?;
        counts.absorb(&self.count_changes(w).await?);
        Ok(counts)
    }

    async fn discard(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        // The batches applied stay; nothing is deleted.
        Ok(self.count_changes(w).await?)
    }

    async fn commit_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        Ok(self.store_state(plugin, scope, writes).await?)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), SinkError> {
        Ok(self.store_run(run).await?)
    }
}

impl StateStore for Neo4jSink {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(async move { Ok(self.load_state(plugin, scope, key).await?) })
    }
}
