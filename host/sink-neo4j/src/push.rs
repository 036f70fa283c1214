//! Loading a graph into the server: another sink's graph, read as its jsonl export line by
//! line, written with its bookkeeping (`firstseen`, `lastupdated`, `_source`, `_scope`)
//! as recorded, so the server ends up holding the same graph (`infragraph push`).

use std::collections::{BTreeMap, HashSet};

use neo4rs::{BoltList, BoltMap, BoltString, BoltType, query};
use serde_json::Value as Json;

use crate::cypher;
use crate::error::{Error, ErrorKind};
use crate::sink::Neo4jSink;
use crate::values::{from_json, int, map, text};

/// What a push wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Nodes written.
    pub nodes: u64,
    /// Relationships written.
    pub relationships: u64,
    /// Relationships not written because an end was missing from the server.
    pub unresolved: u64,
}

/// Node rows waiting, by (primary label, extra labels).
type NodeRows = BTreeMap<(String, Vec<String>), Vec<(String, BoltType)>>;
/// Relationship rows waiting, by (type, start label, end label).
type EdgeRows = BTreeMap<(String, String, String), Batch>;

impl Neo4jSink {
    /// Writes the jsonl graph whose lines arrive on `lines` (as `infragraph export
    /// --format jsonl` writes it: nodes, then relationships) into the server, `batch`
    /// records per transaction, until the channel closes. A line that is `Err` (the
    /// source failed) stops the load with that error. Nodes are merged by (primary label,
    /// `id`), relationships by (type, start, end); labels and types must be identifiers,
    /// as any the embedded store holds are.
    pub async fn load_lines(
        &self,
        lines: &mut tokio::sync::mpsc::Receiver<Result<String, String>>,
        batch: usize,
    ) -> Result<Pushed, Error> {
        let batch = batch.max(1);
        let mut stats = Pushed::default();
        let (mut nodes, mut edges): (NodeRows, EdgeRows) = Default::default();
        let mut constrained = HashSet::new();
        let mut n = 0usize;
        while let Some(line) = lines.recv().await {
            n += 1;
            let at = |what: String| {
                Error::new(
                    ErrorKind::Invalid,
                    format!("line {n} of the export: {what}"),
                )
            };
            let line = line.map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("reading line {n} of the export: {e}"),
                )
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Json = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
            let mut props = v["properties"].as_object().cloned().unwrap_or_default();
            // What a sync wrote is replaced: its digest no longer says what the record
            // holds, so the next sync writes the record again (see `known`), and it was
            // seen when last updated, as the line says.
            props.insert("_digest".into(), Json::Null);
            props.insert("_seen".into(), Json::Null);
            match v["type"].as_str() {
                Some("node") => {
                    let labels = strings(&v["labels"]).ok_or_else(|| at("no labels".into()))?;
                    let Some((primary, extra)) = labels.split_first() else {
                        return Err(at("no labels".into()));
                    };
                    let id = props
                        .remove("id")
                        .and_then(|i| i.as_str().map(str::to_owned))
                        .ok_or_else(|| at("a node without a text `id`".into()))?;
                    let key = (primary.clone(), extra.to_vec());
                    if constrained.insert(primary.clone()) {
                        self.ensure(&[cypher::id_constraint(primary)?]).await?;
                    }
                    let row = map([
                        ("id", text(&id)),
                        ("props", bolt_map(&props).map_err(|e| at(e.to_string()))?),
                    ]);
                    let rows = nodes.entry(key.clone()).or_default();
                    rows.push((id, row));
                    if rows.len() >= batch {
                        let rows = nodes.remove(&key).unwrap_or_default();
                        stats.nodes += self.push_node_rows(&key, rows).await?;
                    }
                }
                Some("relationship") => {
                    // Every node is in before the first relationship is written.
                    for (key, rows) in std::mem::take(&mut nodes) {
                        stats.nodes += self.push_node_rows(&key, rows).await?;
                    }
                    let t = v["label"].as_str().ok_or_else(|| at("no type".into()))?;
                    let end = |e: &Json| -> Option<(String, String)> {
                        let label = strings(&e["labels"])?.into_iter().next()?;
                        Some((label, e["properties"]["id"].as_str()?.to_string()))
                    };
                    let (Some((from, f)), Some((to, t_id))) = (end(&v["start"]), end(&v["end"]))
                    else {
                        return Err(at("a relationship without labelled ends with ids".into()));
                    };
                    let key = (t.to_string(), from, to);
                    let rows: &mut Batch = edges.entry(key.clone()).or_default();
                    let row = map([
                        ("i", int(rows.0.len() as i64)),
                        ("f", text(&f)),
                        ("t", text(&t_id)),
                        ("props", bolt_map(&props).map_err(|e| at(e.to_string()))?),
                    ]);
                    rows.0.push(row);
                    rows.1.push((f, t_id));
                    if rows.0.len() >= batch {
                        let rows = edges.remove(&key).unwrap_or_default();
                        self.push_edge_rows(&key, rows, &mut stats).await?;
                    }
                }
                other => return Err(at(format!("unknown record type {other:?}"))),
            }
        }
        for (key, rows) in nodes {
            stats.nodes += self.push_node_rows(&key, rows).await?;
        }
        for (key, rows) in edges {
            self.push_edge_rows(&key, rows, &mut stats).await?;
        }
        Ok(stats)
    }

    async fn push_node_rows(
        &self,
        (primary, extra): &(String, Vec<String>),
        rows: Vec<(String, BoltType)>,
    ) -> Result<u64, Error> {
        let n = rows.len() as u64;
        let statements = cypher::push_nodes(primary, extra)?;
        // Each id once: rows of one statement all look before any creates.
        let mut ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids = BoltType::List(BoltList {
            value: ids.into_iter().map(text).collect(),
        });
        let list = BoltType::List(BoltList {
            value: rows.into_iter().map(|(_, row)| row).collect(),
        });
        // The statement that takes the rows is the last; with extra labels, the one
        // before it creates what is missing from the ids.
        let last = statements.len() - 1;
        self.tx_retried(&format!("pushing {primary} nodes"), || {
            statements
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (name, value) = if i == last {
                        ("rows", list.clone())
                    } else {
                        ("ids", ids.clone())
                    };
                    query(s).param(name, value)
                })
                .collect()
        })
        .await?;
        Ok(n)
    }

    async fn push_edge_rows(
        &self,
        (t, from, to): &(String, String, String),
        (rows, pairs): Batch,
        stats: &mut Pushed,
    ) -> Result<(), Error> {
        let n = rows.len() as u64;
        let anchor = cypher::Anchor::for_batch(pairs.iter().map(|(f, t)| (f.as_str(), t.as_str())));
        let mut seen = HashSet::with_capacity(pairs.len());
        let distinct = pairs.iter().all(|p| seen.insert(p));
        let statement = cypher::push_edges(t, from, to, anchor, distinct)?;
        let list = BoltType::List(BoltList { value: rows });
        let result = self
            .tx_retried(
                &format!("pushing (:{from})-[:{t}]->(:{to}) relationships"),
                || vec![query(&statement).param("rows", list.clone())],
            )
            .await?;
        let resolved = crate::write::first_int(&result, "resolved")
            .unwrap_or(0)
            .max(0) as u64;
        stats.relationships += resolved.min(n);
        stats.unresolved += n.saturating_sub(resolved);
        Ok(())
    }
}

/// A batch of pushed relationships: their rows, and their ends' keys (which end a
/// batch starts from is chosen on them).
type Batch = (Vec<BoltType>, Vec<(String, String)>);

fn strings(v: &Json) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn bolt_map(props: &serde_json::Map<String, Json>) -> Result<BoltType, Error> {
    let mut m = BoltMap::with_capacity(props.len());
    for (k, v) in props {
        m.put(BoltString::new(k), from_json(v)?);
    }
    Ok(BoltType::Map(m))
}
