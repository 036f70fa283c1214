//! The read side used by `infragraph query`, `runs` and the demo summary. The types it
//! answers with are `infragraph_core`'s, shared with the Neo4j sink.

use std::collections::{BTreeMap, HashMap, HashSet};

use infragraph_core::{
    Direction, MAX_PATH_VISITS, RunRecord, RunStatus, Step, StoredEdge, StoredNode,
};
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value as SqlValue};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Fail};

/// How many nodes and relationships the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Nodes per primary label.
    pub nodes: BTreeMap<String, u64>,
    /// Relationships per type.
    pub edges: BTreeMap<String, u64>,
}

const NODE_COLS: &str = "nodes.label, nodes.extra_labels, nodes.id, nodes.props, nodes.firstseen, \
     nodes.lastupdated, nodes.source, nodes.scope";

/// Reads a node from the eight [`NODE_COLS`] starting at `at`.
fn node_at(r: &Row<'_>, at: usize) -> Result<StoredNode, Fail> {
    let extra: String = r.get(at + 1)?;
    let props: String = r.get(at + 3)?;
    let mut extra_labels: Vec<String> = serde_json::from_str(&extra)?;
    extra_labels.sort();
    Ok(StoredNode {
        label: r.get(at)?,
        extra_labels,
        id: r.get(at + 2)?,
        props: serde_json::from_str(&props)?,
        firstseen: r.get(at + 4)?,
        lastupdated: r.get(at + 5)?,
        source: r.get(at + 6)?,
        scope: r.get(at + 7)?,
    })
}

/// Edge columns, read by [`edge_at`]: type, props, firstseen, lastupdated, source, scope,
/// then the two ends' label and id.
const EDGE_COLS: &str = "e.type, e.props, e.firstseen, e.lastupdated, e.source, e.scope, \
     s.label, s.id, d.label, d.id";
const EDGE_FROM: &str = "FROM edges e JOIN nodes s ON s.nid = e.src JOIN nodes d ON d.nid = e.dst";

/// Reads an edge from the ten [`EDGE_COLS`] starting at `at`.
fn edge_at(r: &Row<'_>, at: usize) -> Result<StoredEdge, Fail> {
    let props: String = r.get(at + 1)?;
    Ok(StoredEdge {
        rel_type: r.get(at)?,
        props: serde_json::from_str(&props)?,
        firstseen: r.get(at + 2)?,
        lastupdated: r.get(at + 3)?,
        source: r.get(at + 4)?,
        scope: r.get(at + 5)?,
        from: (r.get(at + 6)?, r.get(at + 7)?),
        to: (r.get(at + 8)?, r.get(at + 9)?),
    })
}

/// A JSON path naming one property, quoted so any name is taken literally.
fn json_path(prop: &str) -> String {
    format!(
        "$.{}",
        serde_json::to_string(prop).expect("a string serialises")
    )
}

/// Which bookkeeping column a filter on a reserved name reads.
fn bookkeeping_column(prop: &str) -> Option<&'static str> {
    Some(match prop {
        "id" => "nodes.id",
        "firstseen" => "nodes.firstseen",
        "lastupdated" => "nodes.lastupdated",
        "_source" => "nodes.source",
        "_scope" => "nodes.scope",
        _ => return None,
    })
}

/// The values a filter typed on the command line may mean: the text itself, and the
/// number or boolean it spells (`json_extract` yields 1/0 for JSON booleans).
fn candidates(text: &str) -> Vec<SqlValue> {
    let mut out = vec![SqlValue::Text(text.to_owned())];
    if let Ok(i) = text.parse::<i64>() {
        out.push(SqlValue::Integer(i));
    } else if let Ok(f) = text.parse::<f64>() {
        out.push(SqlValue::Real(f));
    } else if text == "true" {
        out.push(SqlValue::Integer(1));
    } else if text == "false" {
        out.push(SqlValue::Integer(0));
    }
    out
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The run history, newest first.
pub(crate) fn runs(conn: &Connection, limit: usize) -> Result<Vec<RunRecord>, Fail> {
    let mut st = conn.prepare_cached(
        "SELECT plugin, scope, update_tag, status, started_at, finished_at, report \
                 FROM runs ORDER BY run_id DESC LIMIT ?1",
    )?;
    let mut rows = st.query([limit_sql(limit)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let status: String = r.get(3)?;
        let status = RunStatus::from_name(&status);
        out.push(RunRecord {
            plugin: r.get(0)?,
            scope: r.get(1)?,
            update_tag: r.get(2)?,
            status,
            started_at: r.get(4)?,
            finished_at: r.get(5)?,
            report: r.get(6)?,
        });
    }
    Ok(out)
}

/// Nodes carrying `label` whose properties match every filter, at most `limit` (0: no
/// limit): those whose primary label it is, by id, then those carrying it as an extra
/// label, in the order they were first stored.
///
/// A filter `(prop, text)` matches when the property's value is `text`, or the number
/// or boolean `text` spells, or a list holding it. `id`, `firstseen`, `lastupdated`,
/// `_source` and `_scope` filter on the key and the bookkeeping columns.
pub(crate) fn nodes<K: AsRef<str>, V: AsRef<str>>(
    conn: &Connection,
    label: &str,
    filters: &[(K, V)],
    limit: usize,
) -> Result<Vec<StoredNode>, Fail> {
    let mut cond = String::new();
    let mut args: Vec<SqlValue> = Vec::new();
    for (prop, text) in filters {
        let (prop, text) = (prop.as_ref(), text.as_ref());
        let cands = candidates(text);
        if let Some(col) = bookkeeping_column(prop) {
            cond += &format!(" AND {col} IN ({})", placeholders(cands.len()));
            args.extend(cands);
            continue;
        }
        let path = SqlValue::Text(json_path(prop));
        let ph = placeholders(cands.len());
        cond += &format!(
            " AND (json_extract(nodes.props, ?) IN ({ph}) \
                     OR (json_type(nodes.props, ?) = 'array' \
                     AND EXISTS (SELECT 1 FROM json_each(nodes.props, ?) WHERE value IN ({ph}))))"
        );
        args.push(path.clone());
        args.extend(cands.iter().cloned());
        args.push(path.clone());
        args.push(path);
        args.extend(cands);
    }
    // Two queries: the primary label is a seek on the (label, id) index, which
    // also yields id order without a sort; an extra label needs a scan, limited
    // to nodes that have extra labels at all.
    let halves = [
        format!("SELECT {NODE_COLS} FROM nodes WHERE nodes.label = ?1 {cond} ORDER BY nodes.id"),
        format!(
            "SELECT {NODE_COLS} FROM nodes WHERE nodes.label <> ?1 \
                     AND nodes.extra_labels <> '[]' \
                     AND EXISTS (SELECT 1 FROM json_each(nodes.extra_labels) WHERE value = ?1) \
                     {cond} ORDER BY nodes.nid"
        ),
    ];
    let mut all = vec![SqlValue::Text(label.to_owned())];
    // ?1 is numbered; the filters' anonymous `?` continue from 2.
    all.extend(args);
    let mut out = Vec::new();
    for sql in halves {
        let room = match limit {
            0 => -1,
            _ if out.len() >= limit => break,
            _ => (limit - out.len()) as i64,
        };
        let mut st = conn.prepare(&format!("{sql} LIMIT {room}"))?;
        let mut rows = st.query(params_from_iter(all.iter()))?;
        while let Some(r) = rows.next()? {
            out.push(node_at(r, 0)?);
        }
    }
    Ok(out)
}

/// The relationships of the node (`label`, `id`) in `direction`, of the given types (all
/// when empty), each with the node at its other end.
pub(crate) fn neighbours<T: AsRef<str>>(
    conn: &Connection,
    label: &str,
    id: &str,
    direction: Direction,
    types: &[T],
) -> Result<Vec<(StoredEdge, StoredNode)>, Fail> {
    let nid = find(conn, label, id)?;
    let type_cond = if types.is_empty() {
        String::new()
    } else {
        format!(" AND e.type IN ({})", placeholders(types.len()))
    };
    let mut out = Vec::new();
    let halves: &[(&str, &str)] = match direction {
        Direction::Out => &[("e.src", "d")],
        Direction::In => &[("e.dst", "s")],
        Direction::Both => &[("e.src", "d"), ("e.dst", "s")],
    };
    for (end, other) in halves {
        let sql = format!(
            "SELECT {}, {EDGE_COLS} {EDGE_FROM} WHERE {end} = ?{type_cond} ORDER BY e.eid",
            NODE_COLS.replace("nodes.", &format!("{other}."))
        );
        let mut args = vec![SqlValue::Integer(nid)];
        args.extend(types.iter().map(|t| SqlValue::Text(t.as_ref().to_owned())));
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            out.push((edge_at(r, 8)?, node_at(r, 0)?));
        }
    }
    Ok(out)
}

/// A shortest path from one node to another, each given as (label, id), following
/// relationships in `direction` for at most `max_depth` steps. `None` when there is no
/// such path. Breadth-first, so the first path found is a shortest one.
pub(crate) fn shortest_path(
    conn: &Connection,
    from: (&str, &str),
    to: (&str, &str),
    max_depth: usize,
    direction: Direction,
    types: &[String],
) -> Result<Option<Vec<Step>>, Fail> {
    let start = find(conn, from.0, from.1)?;
    let goal = find(conn, to.0, to.1)?;
    // nid -> (edge followed, previous nid)
    let mut came: HashMap<i64, Option<(i64, i64)>> = HashMap::from([(start, None)]);
    let mut frontier = vec![start];
    let mut found = start == goal;
    let mut depth = 0;
    let mut out_st = conn.prepare_cached("SELECT eid, dst, type FROM edges WHERE src = ?1")?;
    let mut in_st = conn.prepare_cached("SELECT eid, src, type FROM edges WHERE dst = ?1")?;
    while !found && depth < max_depth && !frontier.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        'level: for &n in &frontier {
            let sts: &mut [&mut rusqlite::CachedStatement<'_>] = match direction {
                Direction::Out => &mut [&mut out_st],
                Direction::In => &mut [&mut in_st],
                Direction::Both => &mut [&mut out_st, &mut in_st],
            };
            for st in sts.iter_mut() {
                let mut rows = st.query([n])?;
                while let Some(r) = rows.next()? {
                    let (eid, m): (i64, i64) = (r.get(0)?, r.get(1)?);
                    let rel_type = r.get_ref(2)?.as_str()?;
                    if came.contains_key(&m)
                        || !(types.is_empty() || types.iter().any(|t| t == rel_type))
                    {
                        continue;
                    }
                    came.insert(m, Some((eid, n)));
                    if m == goal {
                        found = true;
                        break 'level;
                    }
                    next.push(m);
                    if came.len() > MAX_PATH_VISITS {
                        return Err(Fail::Done(Error::new(
                            ErrorKind::Invalid,
                            format!(
                                "the path search visited {MAX_PATH_VISITS} nodes \
                                         within {depth} steps without reaching {} {:?}; \
                                         lower the maximum depth",
                                to.0, to.1
                            ),
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
    // (node, the edge that led to it), from the goal back to the start.
    let mut chain = vec![(goal, None)];
    let mut at = goal;
    while let Some(Some((eid, prev))) = came.get(&at) {
        chain.last_mut().expect("non-empty").1 = Some(*eid);
        chain.push((*prev, None));
        at = *prev;
    }
    chain.reverse();
    let mut node_st =
        conn.prepare_cached(&format!("SELECT {NODE_COLS} FROM nodes WHERE nid = ?1"))?;
    let mut edge_st =
        conn.prepare_cached(&format!("SELECT {EDGE_COLS} {EDGE_FROM} WHERE e.eid = ?1"))?;
    let mut steps = Vec::with_capacity(chain.len());
    for (nid, edge) in chain {
        let node = node_st.query_row([nid], |r| Ok(node_at(r, 0)))??;
        let via = match edge {
            Some(eid) => Some(edge_st.query_row([eid], |r| Ok(edge_at(r, 0)))??),
            None => None,
        };
        steps.push(Step { via, node });
    }
    Ok(Some(steps))
}

/// Node counts per primary label and relationship counts per type.
pub(crate) fn stats(conn: &Connection) -> rusqlite::Result<Stats> {
    let mut out = Stats::default();
    for (sql, map) in [
        (
            "SELECT label, count(*) FROM nodes GROUP BY label",
            &mut out.nodes,
        ),
        (
            "SELECT type, count(*) FROM edges GROUP BY type",
            &mut out.edges,
        ),
    ] {
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (k, n) = row?;
            map.insert(k, n as u64);
        }
    }
    Ok(out)
}

/// SQLite's "no limit" is a negative LIMIT.
fn limit_sql(limit: usize) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

/// The node (label, id): by primary label, else by an extra label, which must then be
/// unambiguous.
fn find(conn: &Connection, label: &str, id: &str) -> Result<i64, Fail> {
    let primary: Option<i64> = conn
        .prepare_cached("SELECT nid FROM nodes WHERE label = ?1 AND id = ?2")?
        .query_row([label, id], |r| r.get(0))
        .optional()?;
    if let Some(nid) = primary {
        return Ok(nid);
    }
    let mut st = conn.prepare_cached(
        "SELECT nid FROM nodes WHERE id = ?2 AND extra_labels <> '[]' \
         AND EXISTS (SELECT 1 FROM json_each(extra_labels) WHERE value = ?1) LIMIT 2",
    )?;
    let found: HashSet<i64> = st
        .query_map([label, id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut it = found.into_iter();
    match (it.next(), it.next()) {
        (Some(nid), None) => Ok(nid),
        (None, _) => Err(Fail::Done(Error::new(
            ErrorKind::NotFound,
            format!("there is no {label} node with id {id:?}"),
        ))),
        (Some(_), Some(_)) => Err(Fail::Done(Error::new(
            ErrorKind::Invalid,
            format!(
                "several nodes with id {id:?} carry the label {label}; name one by its primary label"
            ),
        ))),
    }
}
