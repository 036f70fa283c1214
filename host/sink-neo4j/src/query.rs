//! [`GraphReader`] for the server: nodes, neighbours and shortest paths answered as the
//! embedded store answers them, so `infragraph query` reads either.
//!
//! A node's primary label is the one with a uniqueness constraint on `id` (the server
//! returns labels unordered); its other labels are its extra labels. Property filters are
//! applied here rather than in Cypher: a filter matches a scalar or any element of a list,
//! which Cypher can only say with type checks that servers spell differently. Paths are
//! searched breadth-first, one query per level and label, so a search costs at most
//! `max_depth` rounds per label rather than one per node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use infragraph_core::{
    Direction, Exported, GraphReader, MAX_PATH_VISITS, RunRecord, SinkError, Step, StoredEdge,
    StoredNode, is_pascal_case, is_screaming_snake_case,
};
use neo4rs::{Query, Row, query};
use serde_json::{Map, Value as Json};

use crate::cypher::{SOURCE, label as quoted_label};
use crate::error::{Error, ErrorKind};
use crate::sink::Neo4jSink;

/// A node's identity: primary label and id.
type Key = (String, String);

/// How a node is returned: its labels and properties.
const NODE: &str = "labels(n) AS labels, properties(n) AS props";

impl Neo4jSink {
    /// Reads every row of `q`, in a transaction of its own retried like every other.
    async fn rows(&self, what: &str, q: impl Fn() -> Query) -> Result<Vec<Row>, Error> {
        let rows = self.tx_retried(what, || vec![q()]).await?;
        Ok(rows.into_iter().flatten().collect())
    }

    fn node_of(&self, row: &Row, primary: &BTreeSet<String>) -> Option<StoredNode> {
        let labels: Vec<String> = row.get("labels").ok()?;
        let props: Map<String, Json> = row.get("props").ok()?;
        stored_node(labels, props, primary)
    }

    /// The node (`label`, `id`): by primary label, else by an extra label, which must
    /// then be unambiguous; as the embedded store finds it.
    async fn find(
        &self,
        label: &str,
        id: &str,
        primary: &BTreeSet<String>,
    ) -> Result<StoredNode, Error> {
        let missing = || {
            Error::new(
                ErrorKind::Invalid,
                format!("there is no {label} node with id {id:?}"),
            )
        };
        if !is_pascal_case(label) {
            return Err(missing());
        }
        let l = quoted_label(label)?;
        let rows = self
            .rows(&format!("looking up {label} {id:?}"), || {
                query(&format!(
                    "MATCH (n:{l} {{`id`: $id}}) WHERE n.{SOURCE} IS NOT NULL RETURN {NODE} LIMIT 3"
                ))
                .param("id", id)
            })
            .await?;
        let mut found: Vec<StoredNode> = rows
            .iter()
            .filter_map(|r| self.node_of(r, primary))
            .collect();
        if let Some(i) = found.iter().position(|n| n.label == label) {
            return Ok(found.swap_remove(i));
        }
        match found.len() {
            0 => Err(missing()),
            1 => Ok(found.remove(0)),
            _ => Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "several nodes with id {id:?} carry the label {label}; name one by its primary label"
                ),
            )),
        }
    }

    /// One step out of every node of `frontier` (all of primary label `label`) in one
    /// direction: (from key, edge, other end's key).
    async fn step(
        &self,
        label: &str,
        ids: &[String],
        outgoing: bool,
        primary: &BTreeSet<String>,
    ) -> Result<Vec<(Key, StoredEdge, Key)>, Error> {
        let l = quoted_label(label)?;
        let pattern = if outgoing { "-[r]->" } else { "<-[r]-" };
        let rows = self
            .rows("searching a path", || {
                query(&format!(
                    "UNWIND $ids AS i MATCH (a:{l} {{`id`: i}}){pattern}(b) \
                     WHERE r.{SOURCE} IS NOT NULL AND b.{SOURCE} IS NOT NULL \
                     RETURN a.`id` AS aid, type(r) AS t, properties(r) AS rp, \
                     labels(b) AS bl, b.`id` AS bid"
                ))
                .param("ids", ids.to_vec())
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (Ok(aid), Ok(t), Ok(rp), Ok(bl), Ok(bid)) = (
                row.get::<String>("aid"),
                row.get::<String>("t"),
                row.get::<Map<String, Json>>("rp"),
                row.get::<Vec<String>>("bl"),
                row.get::<String>("bid"),
            ) else {
                continue;
            };
            let a = (label.to_string(), aid);
            let b = (split_labels(bl, primary).0, bid);
            let (from, to) = if outgoing {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            out.push((a, stored_edge(t, rp, from, to), b));
        }
        Ok(out)
    }
}

impl GraphReader for Neo4jSink {
    async fn nodes(
        &self,
        label: &str,
        filters: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<StoredNode>, SinkError> {
        if !is_pascal_case(label) {
            return Ok(Vec::new());
        }
        let primary = self.primary_labels().await?;
        let l = quoted_label(label)?;
        // The key is a seek on the uniqueness constraint; other filters are applied below.
        let id = filters
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.clone());
        let id_cond = if id.is_some() {
            " AND n.`id` = $id"
        } else {
            ""
        };
        let rows = self
            .rows(&format!("looking up {label} nodes"), || {
                let q = query(&format!(
                    "MATCH (n:{l}) WHERE n.{SOURCE} IS NOT NULL{id_cond} RETURN {NODE} ORDER BY n.`id`"
                ));
                match &id {
                    Some(id) => q.param("id", id.as_str()),
                    None => q,
                }
            })
            .await?;
        let room = if limit == 0 { usize::MAX } else { limit };
        let (mut keyed, mut extra) = (Vec::new(), Vec::new());
        for row in &rows {
            let Some(n) = self.node_of(row, &primary) else {
                continue;
            };
            if !filters.iter().all(|(k, v)| matches(&n, k, v)) {
                continue;
            }
            if n.label == label {
                keyed.push(n);
                if keyed.len() >= room {
                    break;
                }
            } else if extra.len() < room {
                extra.push(n);
            }
        }
        keyed.extend(extra);
        keyed.truncate(room);
        Ok(keyed)
    }

    async fn neighbours(
        &self,
        label: &str,
        id: &str,
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(StoredEdge, StoredNode)>, SinkError> {
        let primary = self.primary_labels().await?;
        let node = self.find(label, id, &primary).await?;
        let (types, type_cond) = type_filter(types);
        let l = quoted_label(&node.label)?;
        let halves = halves(direction);
        let here = (node.label.clone(), node.id.clone());
        let mut out = Vec::new();
        for &outgoing in halves {
            let pattern = if outgoing { "-[r]->" } else { "<-[r]-" };
            let rows = self
                .rows(&format!("listing the neighbours of {label} {id:?}"), || {
                    query(&format!(
                        "MATCH (a:{l} {{`id`: $id}}){pattern}(n) \
                         WHERE r.{SOURCE} IS NOT NULL AND n.{SOURCE} IS NOT NULL{type_cond} \
                         RETURN type(r) AS t, properties(r) AS rp, {NODE}"
                    ))
                    .param("id", id)
                    .param("types", types.clone())
                })
                .await?;
            let mut half = Vec::new();
            for row in &rows {
                let (Ok(t), Ok(rp), Some(other)) = (
                    row.get::<String>("t"),
                    row.get::<Map<String, Json>>("rp"),
                    self.node_of(row, &primary),
                ) else {
                    continue;
                };
                let there = (other.label.clone(), other.id.clone());
                let (from, to) = if outgoing {
                    (here.clone(), there)
                } else {
                    (there, here.clone())
                };
                half.push((stored_edge(t, rp, from, to), other));
            }
            // The server keeps no insertion order to report; a stable one instead.
            half.sort_by(|(a, x), (b, y)| {
                (&a.rel_type, &x.label, &x.id).cmp(&(&b.rel_type, &y.label, &y.id))
            });
            out.extend(half);
        }
        Ok(out)
    }

    async fn neighbours_of_many(
        &self,
        nodes: &[(String, String)],
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(usize, StoredEdge, StoredNode)>, SinkError> {
        let primary = self.primary_labels().await?;
        let (types, type_cond) = type_filter(types);
        let halves = halves(direction);
        let index: HashMap<(&str, &str), usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, (l, id))| ((l.as_str(), id.as_str()), i))
            .collect();
        let mut by_label: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (label, id) in nodes {
            by_label.entry(label).or_default().push(id.clone());
        }
        // (node index, outgoing first, edge, other end)
        let mut rows_out: Vec<(usize, bool, StoredEdge, StoredNode)> = Vec::new();
        for (label, ids) in &by_label {
            // Nodes are given by their primary label, which the store checked when it
            // wrote them; anything else names no node.
            let Ok(l) = quoted_label(label) else { continue };
            for &outgoing in halves {
                let pattern = if outgoing { "-[r]->" } else { "<-[r]-" };
                let rows = self
                    .rows(
                        &format!("listing the neighbours of {} {label} nodes", ids.len()),
                        || {
                            query(&format!(
                                "UNWIND $ids AS i MATCH (a:{l} {{`id`: i}}){pattern}(n) \
                             WHERE r.{SOURCE} IS NOT NULL AND n.{SOURCE} IS NOT NULL{type_cond} \
                             RETURN a.`id` AS aid, type(r) AS t, properties(r) AS rp, {NODE}"
                            ))
                            .param("ids", ids.clone())
                            .param("types", types.clone())
                        },
                    )
                    .await?;
                for row in &rows {
                    let (Ok(aid), Ok(t), Ok(rp), Some(other)) = (
                        row.get::<String>("aid"),
                        row.get::<String>("t"),
                        row.get::<Map<String, Json>>("rp"),
                        self.node_of(row, &primary),
                    ) else {
                        continue;
                    };
                    let Some(&i) = index.get(&(*label, aid.as_str())) else {
                        continue;
                    };
                    let here = (label.to_string(), aid);
                    let there = (other.label.clone(), other.id.clone());
                    let (from, to) = if outgoing {
                        (here, there)
                    } else {
                        (there, here)
                    };
                    rows_out.push((i, !outgoing, stored_edge(t, rp, from, to), other));
                }
            }
        }
        // As `neighbours` orders one node's: outgoing first, then by type and other end.
        rows_out.sort_by(|(i, inc, a, x), (j, jnc, b, y)| {
            (i, inc, &a.rel_type, &x.label, &x.id).cmp(&(j, jnc, &b.rel_type, &y.label, &y.id))
        });
        Ok(rows_out.into_iter().map(|(i, _, e, n)| (i, e, n)).collect())
    }

    async fn shortest_path(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        max_depth: usize,
        direction: Direction,
        types: &[String],
    ) -> Result<Option<Vec<Step>>, SinkError> {
        let primary = self.primary_labels().await?;
        let start = self.find(from.0, from.1, &primary).await?;
        let goal = self.find(to.0, to.1, &primary).await?;
        let start_key = (start.label.clone(), start.id.clone());
        let goal_key = (goal.label.clone(), goal.id.clone());
        // node -> (edge followed, previous node)
        let mut came: HashMap<Key, Option<(StoredEdge, Key)>> =
            HashMap::from([(start_key.clone(), None)]);
        let mut frontier = vec![start_key.clone()];
        let mut found = start_key == goal_key;
        let mut depth = 0;
        let halves = halves(direction);
        while !found && depth < max_depth && !frontier.is_empty() {
            depth += 1;
            let mut by_label: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (l, i) in frontier.drain(..) {
                by_label.entry(l).or_default().push(i);
            }
            let mut next = Vec::new();
            'level: for (label, ids) in &by_label {
                for &outgoing in halves {
                    for (at, edge, other) in self.step(label, ids, outgoing, &primary).await? {
                        if came.contains_key(&other)
                            || !(types.is_empty() || types.contains(&edge.rel_type))
                        {
                            continue;
                        }
                        let reached = other == goal_key;
                        came.insert(other.clone(), Some((edge, at)));
                        if reached {
                            found = true;
                            break 'level;
                        }
                        next.push(other);
                        if came.len() > MAX_PATH_VISITS {
                            return Err(SinkError::new(format!(
                                "neo4j {}: the path search visited {MAX_PATH_VISITS} nodes within \
                                 {depth} steps without reaching {} {:?}; lower the maximum depth",
                                self.uri, to.0, to.1
                            )));
                        }
                    }
                }
            }
            frontier = next;
        }
        if !found {
            return Ok(None);
        }
        // From the goal back to the start, then each node read in full.
        let mut chain: Vec<(Key, Option<StoredEdge>)> = Vec::new();
        let mut at = goal_key;
        loop {
            match came.remove(&at) {
                Some(Some((edge, prev))) => {
                    chain.push((at, Some(edge)));
                    at = prev;
                }
                _ => {
                    chain.push((at, None));
                    break;
                }
            }
        }
        chain.reverse();
        let mut steps = Vec::with_capacity(chain.len());
        for ((label, id), via) in chain {
            let node = self.find(&label, &id, &primary).await?;
            steps.push(Step { via, node });
        }
        Ok(Some(steps))
    }

    async fn labels(&self) -> Result<Vec<String>, SinkError> {
        Ok(self.primary_labels().await?.into_iter().collect())
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, SinkError> {
        Ok(Neo4jSink::runs(self, limit).await?)
    }

    async fn export_jsonl(&self, out: &mut (dyn Write + Send)) -> Result<Exported, SinkError> {
        Ok(Neo4jSink::export_jsonl(self, &mut &mut *out).await?)
    }
}

/// The halves of a node's relationships `direction` takes: outgoing (`true`), incoming.
fn halves(direction: Direction) -> &'static [bool] {
    match direction {
        Direction::Out => &[true],
        Direction::In => &[false],
        Direction::Both => &[true, false],
    }
}

/// The relationship types a query may name (others cannot exist), and the condition on
/// `r` that keeps them: none when no type is asked for.
fn type_filter(types: &[String]) -> (Vec<String>, &'static str) {
    let types: Vec<String> = types
        .iter()
        .filter(|t| is_screaming_snake_case(t))
        .cloned()
        .collect();
    let cond = if types.is_empty() {
        ""
    } else {
        " AND type(r) IN $types"
    };
    (types, cond)
}

/// The primary label (the first of `labels`, sorted, that has a uniqueness constraint,
/// else the first) and the others, sorted.
fn split_labels(mut labels: Vec<String>, primary: &BTreeSet<String>) -> (String, Vec<String>) {
    labels.sort();
    let i = labels.iter().position(|l| primary.contains(l)).unwrap_or(0);
    let label = if labels.is_empty() {
        String::new()
    } else {
        labels.remove(i)
    };
    (label, labels)
}

/// The bookkeeping properties out of `props`: (firstseen, lastupdated, source, scope).
fn bookkeeping(props: &mut Map<String, Json>) -> (i64, i64, String, String) {
    let int = |v: Option<Json>| v.and_then(|v| v.as_i64()).unwrap_or(0);
    // The other scopes asserting a record, and the digest of what was written (see
    // `known`), are bookkeeping too, not properties to show.
    props.remove("_also_scopes");
    props.remove("_digest");
    props.remove("_seen");
    let text = |v: Option<Json>| {
        v.and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    (
        int(props.remove("firstseen")),
        int(props.remove("lastupdated")),
        text(props.remove("_source")),
        text(props.remove("_scope")),
    )
}

fn stored_node(
    labels: Vec<String>,
    mut props: Map<String, Json>,
    primary: &BTreeSet<String>,
) -> Option<StoredNode> {
    let id = props.remove("id")?.as_str()?.to_owned();
    let (firstseen, lastupdated, source, scope) = bookkeeping(&mut props);
    let (label, extra_labels) = split_labels(labels, primary);
    Some(StoredNode {
        label,
        extra_labels,
        id,
        props,
        firstseen,
        lastupdated,
        source,
        scope,
    })
}

fn stored_edge(rel_type: String, mut props: Map<String, Json>, from: Key, to: Key) -> StoredEdge {
    let (firstseen, lastupdated, source, scope) = bookkeeping(&mut props);
    StoredEdge {
        rel_type,
        from,
        to,
        props,
        firstseen,
        lastupdated,
        source,
        scope,
    }
}

/// Whether the node's `prop` matches `text` as the embedded store's filters do: the text,
/// or the number or boolean it spells, as the value or an element of a list value.
fn matches(n: &StoredNode, prop: &str, text: &str) -> bool {
    let same = |v: &Json| match v {
        Json::String(s) => s == text,
        Json::Number(x) => text
            .parse::<f64>()
            .is_ok_and(|t| x.as_f64().is_some_and(|x| x == t)),
        Json::Bool(b) => text == if *b { "true" } else { "false" },
        _ => false,
    };
    match prop {
        "id" => n.id == text,
        "firstseen" => text.parse() == Ok(n.firstseen),
        "lastupdated" => text.parse() == Ok(n.lastupdated),
        "_source" => n.source == text,
        "_scope" => n.scope == text,
        _ => match n.props.get(prop) {
            Some(Json::Array(items)) => items.iter().any(same),
            Some(v) => same(v),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_constrained_label_is_primary_and_the_rest_sorted() {
        let primary = BTreeSet::from(["AzureUser".to_string()]);
        let labels = vec!["UserAccount".into(), "AzureUser".into(), "Identity".into()];
        assert_eq!(
            split_labels(labels, &primary),
            (
                "AzureUser".to_string(),
                vec!["Identity".to_string(), "UserAccount".to_string()]
            )
        );
    }

    #[test]
    fn filters_match_as_the_store_matches() {
        let props = json!({"id": "u1", "admin": true, "n": 5, "tags": ["a", "b"], "name": "x",
            "_source": "p", "_scope": "s", "firstseen": 1, "lastupdated": 2});
        let Json::Object(props) = props else {
            unreachable!()
        };
        let n = stored_node(vec!["DemoUser".into()], props, &BTreeSet::new()).unwrap();
        assert!(n.props.get("_source").is_none() && n.props.get("id").is_none());
        for (k, v, want) in [
            ("admin", "true", true),
            ("admin", "false", false),
            ("n", "5", true),
            ("n", "5.0", true),
            ("n", "6", false),
            ("tags", "b", true),
            ("tags", "c", false),
            ("name", "x", true),
            ("id", "u1", true),
            ("_source", "p", true),
            ("_scope", "t", false),
            ("lastupdated", "2", true),
            ("missing", "x", false),
        ] {
            assert_eq!(matches(&n, k, v), want, "{k}={v}");
        }
    }
}
