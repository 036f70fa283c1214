//! Reading the graph back: a jsonl export in the embedded store's format (so the two
//! sinks can be compared line for line) and the run history.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io::Write;
use std::ops::ControlFlow;

use infragraph_core::{Exported, RunRecord, RunStatus};
use neo4rs::query;
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, ErrorKind};
use crate::sink::Neo4jSink;

/// Nodes infragraph wrote: they carry `_source`. Its own bookkeeping nodes
/// (`InfragraphMeta`, `InfragraphState`, `InfragraphRun`) do not.
const NODES: &str = "MATCH (n) WHERE n.`_source` IS NOT NULL \
    RETURN labels(n) AS labels, properties(n) AS props";

const EDGES: &str = "MATCH (a)-[r]->(b) WHERE r.`_source` IS NOT NULL \
    RETURN type(r) AS t, properties(r) AS props, labels(a) AS al, a.`id` AS aid, \
    labels(b) AS bl, b.`id` AS bid";

const RUNS: &str = "MATCH (r:`InfragraphRun`) \
    RETURN r.`plugin` AS plugin, r.`scope` AS scope, r.`update_tag` AS update_tag, \
    r.`status` AS status, r.`started_at` AS started_at, r.`finished_at` AS finished_at, \
    r.`report` AS report \
    ORDER BY r.`update_tag` DESC, r.`finished_at` DESC LIMIT $limit";

impl Neo4jSink {
    /// Labels with a uniqueness constraint on `id`: the primary labels, which an export
    /// names first (a node's labels come back from the server in no particular order).
    pub(crate) async fn primary_labels(&self) -> Result<BTreeSet<String>, Error> {
        let rows = self
            .tx_retried("listing constraints", || vec![query("SHOW CONSTRAINTS")])
            .await?;
        let mut out = BTreeSet::new();
        for r in rows.into_iter().flatten() {
            let ty: String = r.get("type").unwrap_or_default();
            let entity: String = r.get("entityType").unwrap_or_default();
            let props: Vec<String> = r.get("properties").unwrap_or_default();
            let labels: Vec<String> = r.get("labelsOrTypes").unwrap_or_default();
            if ty.contains("UNIQUENESS") && entity == "NODE" && props == ["id"] {
                out.extend(labels);
            }
        }
        Ok(out)
    }

    /// Writes every node and relationship infragraph wrote as JSON lines, the format of
    /// `infragraph export --format jsonl` (APOC's): nodes first, each with its primary
    /// label first and extra labels sorted, then relationships.
    pub async fn export_jsonl(&self, out: &mut impl Write) -> Result<Exported, Error> {
        let io = |e: std::io::Error| Error::new(ErrorKind::Io, format!("writing the export: {e}"));
        let mut failed = None;
        let stats = self
            .export_lines(|line| {
                let flow = match writeln!(out, "{line}") {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                };
                std::future::ready(flow)
            })
            .await?;
        match (stats, failed) {
            (_, Some(e)) => Err(io(e)),
            (Some(stats), None) => {
                out.flush().map_err(io)?;
                Ok(stats)
            }
            (None, None) => Err(io(std::io::ErrorKind::Interrupted.into())),
        }
    }

    /// The export of [`Neo4jSink::export_jsonl`], one line at a time to `emit` (without
    /// its newline), which may wait: a transfer hands each line on to another sink as it
    /// is read. `None` when `emit` broke the export off.
    pub async fn export_lines<F, Fut>(&self, mut emit: F) -> Result<Option<Exported>, Error>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ControlFlow<()>>,
    {
        let primary = self.primary_labels().await?;
        let order = |mut labels: Vec<String>| {
            labels.sort();
            if let Some(i) = labels.iter().position(|l| primary.contains(l)) {
                let p = labels.remove(i);
                labels.insert(0, p);
            }
            labels
        };
        let mut stats = Exported::default();
        let mut ids: HashMap<(String, String), u64> = HashMap::new();
        let what = "exporting the graph";
        let read = |e| Error::driver(&self.uri, what, e);
        let mut nodes = self
            .graph
            .execute_on(&self.database, query(NODES))
            .await
            .map_err(read)?;
        while let Some(row) = nodes.next().await.map_err(read)? {
            let labels = order(row.get::<Vec<String>>("labels").unwrap_or_default());
            let mut props: Map<String, Json> = row.get("props").unwrap_or_default();
            // The digest and `_seen` are this sink's own bookkeeping (see `known`); the
            // embedded store keeps them in columns it does not export.
            props.remove("_digest");
            props.remove("_seen");
            let (Some(id), false) = (props.get("id").and_then(Json::as_str), labels.is_empty())
            else {
                continue;
            };
            let n = stats.nodes;
            ids.insert((labels[0].clone(), id.to_string()), n);
            let line = json!({"type": "node", "id": format!("n{n}"), "labels": labels, "properties": props});
            if emit(line.to_string()).await.is_break() {
                return Ok(None);
            }
            stats.nodes += 1;
        }
        let mut edges = self
            .graph
            .execute_on(&self.database, query(EDGES))
            .await
            .map_err(read)?;
        while let Some(row) = edges.next().await.map_err(read)? {
            let t: String = row.get("t").unwrap_or_default();
            let mut props: Map<String, Json> = row.get("props").unwrap_or_default();
            props.remove("_digest");
            props.remove("_seen");
            let end = |labels: &str, id: &str| {
                let labels = order(row.get::<Vec<String>>(labels).unwrap_or_default());
                let id: String = row.get(id).unwrap_or_default();
                let n = ids
                    .get(&(labels.first().cloned().unwrap_or_default(), id.clone()))
                    .copied()
                    .unwrap_or(u64::MAX);
                json!({"id": format!("n{n}"), "labels": labels, "properties": {"id": id}})
            };
            let line = json!({
                "type": "relationship", "id": format!("r{}", stats.relationships), "label": t,
                "properties": props, "start": end("al", "aid"), "end": end("bl", "bid")
            });
            if emit(line.to_string()).await.is_break() {
                return Ok(None);
            }
            stats.relationships += 1;
        }
        Ok(Some(stats))
    }

    /// The newest `limit` runs, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, Error> {
        let rows = self
            .tx_retried("reading the run history", || {
                vec![query(RUNS).param("limit", limit as i64)]
            })
            .await?;
        Ok(rows
            .into_iter()
            .flatten()
            .map(|r| RunRecord {
                plugin: r.get("plugin").unwrap_or_default(),
                scope: r.get("scope").ok().flatten(),
                update_tag: r.get("update_tag").unwrap_or(0),
                status: RunStatus::from_name(&r.get::<String>("status").unwrap_or_default()),
                started_at: r.get("started_at").unwrap_or_default(),
                finished_at: r.get("finished_at").unwrap_or_default(),
                report: r.get("report").unwrap_or_default(),
            })
            .collect())
    }
}
