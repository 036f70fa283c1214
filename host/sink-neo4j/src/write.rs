//! The write side: `GraphSink` and `StateStore` for [`Neo4jSink`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use infragraph_core::{
    BoxFuture, ChangeCounts, Digest, EdgeBatch, GraphSink, Holder, Manifest, NodeBatch, Publish,
    RunRecord, SinkError, StateError, StateStore, WriteScope,
};
use neo4rs::{BoltList, BoltType, Query, Row, query};

use crate::cypher;
use crate::error::{Error, ErrorKind};
use crate::known::{self, Held, Plan, Records, Run};
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
pub(crate) fn scoped(q: Query, w: &WriteScope) -> Query {
    q.param("tag", w.update_tag)
        .param("plugin", w.plugin.as_str())
        .param("scope", w.scope.as_str())
}

impl Neo4jSink {
    pub(crate) fn schema_of(&self, plugin: &str) -> Result<PluginSchema, Error> {
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
        let digests: Vec<Digest> = batch
            .rows
            .iter()
            .map(|r| infragraph_core::digest(extra, &batch.columns, &r.values))
            .collect();
        let keys: Vec<String> = batch.rows.iter().map(|r| r.id.to_string()).collect();
        let run = self.known.of(w);
        let mut run = run.lock().await;
        if !run.nodes.contains_key(&batch.label) {
            let statement = cypher::known_nodes(&batch.label)?;
            let held = self
                .read_known(w, &statement, &mut run, |r| {
                    Some((
                        r.get::<String>("id").ok()?,
                        Held {
                            element: Some(()),
                            digest: stored_digest(r),
                        },
                    ))
                })
                .await;
            run.nodes.insert(batch.label.clone(), held);
        }
        let plan = known::plan(
            run.nodes.get(&batch.label).and_then(Option::as_ref),
            &keys,
            &digests,
        );
        self.write_node_rows(w, extra, batch, &digests, &plan)
            .await?;
        let forgotten = match run.nodes.get_mut(&batch.label) {
            Some(Some(held)) => known::settle(held, &keys, &plan),
            _ => 0,
        };
        run.give_back(forgotten);
        *run.unchanged_nodes.entry(batch.label.clone()).or_default() += plan.unchanged.len() as u64;
        tracing::trace!(
            label = %batch.label,
            rows = batch.rows.len(),
            written = plan.write.len(),
            unchanged = plan.unchanged.len() + plan.fresh,
            "nodes written"
        );
        Ok(())
    }

    /// Writes the rows of `plan` to write in one transaction.
    async fn write_node_rows(
        &self,
        w: &WriteScope,
        extra: &[String],
        batch: &NodeBatch,
        digests: &[Digest],
        plan: &Plan,
    ) -> Result<(), Error> {
        let statements = if plan.write.is_empty() {
            Vec::new()
        } else {
            cypher::merge_nodes(&batch.label, extra)?
        };
        // Built for each attempt rather than cloned: a batch's rows are its largest value,
        // and a deep copy of ten thousand maps costs as much as building them.
        let rows = || {
            BoltType::List(BoltList {
                value: plan
                    .write
                    .iter()
                    .map(|&i| {
                        let r = &batch.rows[i];
                        map([
                            ("id", text(&r.id)),
                            ("props", values::props(&batch.columns, &r.values)),
                            ("d", text(&known::hex_of(&digests[i]))),
                        ])
                    })
                    .collect(),
            })
        };
        // Each id once, for the statement that creates what is missing.
        let mut ids: Vec<&str> = plan
            .write
            .iter()
            .map(|&i| batch.rows[i].id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        // One statement takes the rows; with extra labels, the one before it the ids.
        let last = statements.len().saturating_sub(1);
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
        if statements.is_empty() {
            return Ok(());
        }
        let what = format!("writing {} nodes", batch.label);
        let done = self.retrying(&what, || self.tx_refusable(qs())).await?;
        if let Err(row) = done {
            let id = row.get::<String>("id").unwrap_or_default();
            let what = format!("node {} {id:?}", batch.label);
            return Err(self.not_owner(what, &row, &w.plugin));
        }
        Ok(())
    }

    /// Whether `w`'s plugin ran over its scope before (any run recorded), asked once per
    /// run. When not, no kind is read: every record is written, and cleaned up by
    /// `_seen`, as without digests.
    async fn synced_before(&self, w: &WriteScope, run: &mut Run) -> Result<bool, Error> {
        if let Some(known) = run.synced_before {
            return Ok(known);
        }
        let rows = self
            .tx_retried("reading the run history", || {
                vec![
                    query(cypher::RUNS_OF_SCOPE)
                        .param("plugin", w.plugin.as_str())
                        .param("scope", w.scope.as_str()),
                ]
            })
            .await?;
        let before = first_int(&rows, "runs").unwrap_or(0) > 0;
        run.synced_before = Some(before);
        Ok(before)
    }

    /// Reads what `w`'s scope holds of one kind (see `known`), one record per row as
    /// `parse` makes it, taking them from the process's budget. `None` when the scope was
    /// never synced (nothing to read), the budget has not room for them all or the read
    /// failed: the kind is then written whole, as it was before digests.
    async fn read_known<K, E>(
        &self,
        w: &WriteScope,
        statement: &str,
        run: &mut Run,
        parse: impl Fn(&Row) -> Option<(K, Held<E>)>,
    ) -> Option<Records<K, E>>
    where
        K: Eq + std::hash::Hash,
    {
        /// Records taken from the budget at a time.
        const CHUNK: usize = 4096;
        match self.synced_before(w, run).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!("{e}; writing every record");
                return None;
            }
        }
        let mut stream = match self
            .graph
            .execute_on(&self.database, scoped(query(statement), w))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "neo4j {}: reading digests, to skip unchanged records: {e}; writing every record",
                    self.uri
                );
                return None;
            }
        };
        let (mut out, mut taken, mut read): (Records<K, E>, usize, usize) = (HashMap::new(), 0, 0);
        loop {
            match stream.next().await {
                Ok(Some(row)) => {
                    if read == taken {
                        if !run.take(CHUNK) {
                            run.give_back(taken);
                            tracing::debug!(
                                "more records than the digest budget holds; writing every record of this kind"
                            );
                            return None;
                        }
                        taken += CHUNK;
                    }
                    read += 1;
                    let Some((k, h)) = parse(&row) else { continue };
                    match out.entry(k) {
                        // Two copies of one relationship: written, which makes them one.
                        Entry::Occupied(mut o) => o.get_mut().digest = None,
                        Entry::Vacant(v) => {
                            v.insert(h);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    run.give_back(taken);
                    tracing::warn!(
                        "neo4j {}: reading digests, to skip unchanged records: {e}; writing every record",
                        self.uri
                    );
                    return None;
                }
            }
        }
        run.give_back(taken - out.len());
        Some(out)
    }

    async fn put_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, Error> {
        let schema = self.schema_of(&w.plugin)?;
        schema.check_edges(&w.plugin, batch)?;
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
        // A batch that repeats a pair needs `MERGE`, which sees what its earlier rows
        // created; plugins rarely send one.
        let mut pairs = std::collections::HashSet::with_capacity(batch.rows.len());
        let distinct = batch
            .rows
            .iter()
            .all(|r| pairs.insert((r.from.as_str(), r.to.as_str())));
        let digests: Vec<Digest> = batch
            .rows
            .iter()
            .map(|r| infragraph_core::digest(&[], &batch.columns, &r.values))
            .collect();
        // A row names one relationship when both ends are found by `id` on a label
        // whose `id` is unique: a primary label of a plugin this sink prepared.
        let skippable = distinct
            && batch.from_key == "id"
            && batch.to_key == "id"
            && self.is_primary(&batch.from_label)
            && self.is_primary(&batch.to_label);
        if !skippable {
            let plan = Plan::all(batch.rows.len());
            return self
                .write_edge_rows(w, batch, distinct, &digests, &plan)
                .await;
        }
        let kind = (
            batch.rel_type.clone(),
            batch.from_label.clone(),
            batch.to_label.clone(),
        );
        let keys: Vec<(String, String)> = batch
            .rows
            .iter()
            .map(|r| (r.from.to_string(), r.to.to_string()))
            .collect();
        let run = self.known.of(w);
        let mut run = run.lock().await;
        if !run.edges.contains_key(&kind) {
            let statement = cypher::known_edges(&kind.0, &kind.1, &kind.2)?;
            let held = self
                .read_known(w, &statement, &mut run, |r| {
                    Some((
                        (r.get::<String>("f").ok()?, r.get::<String>("t").ok()?),
                        Held {
                            element: Some((r.get::<String>("a").ok()?, r.get::<String>("b").ok()?)),
                            digest: stored_digest(r),
                        },
                    ))
                })
                .await;
            run.edges.insert(kind.clone(), held);
        }
        let plan = known::plan(
            run.edges.get(&kind).and_then(Option::as_ref),
            &keys,
            &digests,
        );
        let unresolved = self
            .write_edge_rows(w, batch, distinct, &digests, &plan)
            .await?;
        let forgotten = match run.edges.get_mut(&kind) {
            Some(Some(held)) => known::settle(held, &keys, &plan),
            _ => 0,
        };
        run.give_back(forgotten);
        *run.unchanged_edges.entry(kind.0).or_default() += plan.unchanged.len() as u64;
        Ok(unresolved)
    }

    /// Whether `l` is a primary label of a plugin this sink prepared, so unique by `id`.
    fn is_primary(&self, l: &str) -> bool {
        let schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        schemas.values().any(|s| s.labels().contains(l))
    }

    /// Writes the rows of `plan` to write in one transaction; returns those unresolved (an
    /// end not found).
    async fn write_edge_rows(
        &self,
        w: &WriteScope,
        batch: &EdgeBatch,
        distinct: bool,
        digests: &[Digest],
        plan: &Plan,
    ) -> Result<u64, Error> {
        let write = if distinct {
            cypher::write_edges
        } else {
            cypher::merge_edges
        };
        let statement = write(
            &batch.rel_type,
            (&batch.from_label, &batch.from_key),
            (&batch.to_label, &batch.to_key),
            cypher::Anchor::for_batch(
                plan.write
                    .iter()
                    .map(|&i| (batch.rows[i].from.as_str(), batch.rows[i].to.as_str())),
            ),
        )?;
        // Built for each attempt rather than cloned, as nodes are.
        let q = || {
            let rows = BoltType::List(BoltList {
                value: plan
                    .write
                    .iter()
                    .map(|&i| {
                        let r = &batch.rows[i];
                        map([
                            ("i", int(i as i64)),
                            ("f", text(&r.from)),
                            ("t", text(&r.to)),
                            ("props", values::props(&batch.columns, &r.values)),
                            ("d", text(&known::hex_of(&digests[i]))),
                        ])
                    })
                    .collect(),
            });
            scoped(query(&statement).param("rows", rows), w)
        };
        if plan.write.is_empty() {
            return Ok(0);
        }
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
        let unresolved = (plan.write.len() as u64).saturating_sub(resolved);
        tracing::trace!(
            rel_type = %batch.rel_type,
            rows = batch.rows.len(),
            written = plan.write.len(),
            unchanged = batch.rows.len() - plan.write.len(),
            unresolved,
            "edges written"
        );
        Ok(unresolved)
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

/// The `_digest` a known record's row carries (`d`); `None` for a record written before
/// digests, which is then never skipped: written again when emitted, deleted when not.
fn stored_digest(r: &Row) -> Option<Digest> {
    r.get::<String>("d").ok().and_then(|d| known::parse(&d))
}

/// The integer in column `col` of the first statement's first row.
pub(crate) fn first_int(rows: &[Vec<neo4rs::Row>], col: &str) -> Option<i64> {
    rows.first()?.first()?.get::<i64>(col).ok()
}

impl GraphSink for Neo4jSink {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        Ok(self.prepare_plugin(manifest).await?)
    }

    async fn warm_up(&self, manifest: &Manifest, stop: &std::sync::atomic::AtomicBool) {
        match self.explain_ahead(manifest, stop).await {
            Ok(n) => tracing::debug!(plugin = %manifest.name, statements = n, "statements warmed"),
            // Each statement is parsed when it first runs instead, as it would be anyway.
            Err(e) => {
                tracing::debug!(plugin = %manifest.name, error = %e, "warming statements stopped")
            }
        }
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
        let run = self.known.get(w);
        let run = match &run {
            Some(r) => Some(r.lock().await),
            None => None,
        };
        let done = async {
            let run = run.as_deref();
            let survey = self.survey(w, run).await?;
            let mut counts = match p.cleanup {
                Some(keep) => {
                    self.clean(w, keep, p.cleanup_batch, run, survey.stale)
                        .await?
                }
                None => ChangeCounts::default(),
            };
            self.store_state(p.state_plugin, &w.scope, p.state).await?;
            counts.absorb(&survey.counts);
            Ok::<_, Error>(counts)
        }
        .await;
        drop(run);
        self.known.end(w);
        Ok(done?)
    }

    async fn discard(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        // The batches applied stay; nothing is deleted.
        let run = self.known.get(w);
        let counts = match &run {
            Some(r) => self.survey(w, Some(&*r.lock().await)).await,
            None => self.survey(w, None).await,
        };
        let counts = counts.map(|s| s.counts);
        self.known.end(w);
        Ok(counts?)
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
