//! `infragraph import`: loads APOC-style JSON lines, as [`Store::export_jsonl`] writes
//! them, in one transaction.

use std::io::BufRead;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Fail};

/// How many records an import stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportStats {
    /// Node lines read (new or merged into existing nodes).
    pub nodes: u64,
    /// Relationship lines read.
    pub relationships: u64,
}

/// One line of the file. Unknown fields are ignored, so files from APOC itself load too.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Node(NodeLine),
    Relationship(RelLine),
}

#[derive(Deserialize)]
struct NodeLine {
    id: String,
    labels: Vec<String>,
    #[serde(default)]
    properties: Map<String, Json>,
}

#[derive(Deserialize)]
struct RelLine {
    id: String,
    label: String,
    #[serde(default)]
    properties: Map<String, Json>,
    start: EndLine,
    end: EndLine,
}

#[derive(Deserialize)]
struct EndLine {
    labels: Vec<String>,
    #[serde(default)]
    properties: Map<String, Json>,
}

/// Source and scope of records whose line carries no bookkeeping (files from elsewhere).
const IMPORT_SOURCE: &str = "import";

/// Node upsert: merges like a sync's write, keeps the earlier `firstseen`, and restores
/// the rest of the bookkeeping from the file; the record counts as seen when it was last
/// updated, and has no digest (the next sync writes it again). `?1` is the opaque id's number, or NULL.
const UPSERT_NODE: &str = "INSERT INTO nodes \
    (nid, label, id, extra_labels, props, firstseen, lastupdated, seen, source, scope, also_scopes) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10) \
    ON CONFLICT (label, id) DO UPDATE SET extra_labels = excluded.extra_labels, \
    props = json_patch(nodes.props, excluded.props), \
    firstseen = min(nodes.firstseen, excluded.firstseen), lastupdated = excluded.lastupdated, \
    seen = excluded.seen, digest = NULL, \
    source = excluded.source, scope = excluded.scope, also_scopes = excluded.also_scopes";

const UPSERT_EDGE: &str = "INSERT INTO edges \
    (eid, type, src, dst, props, firstseen, lastupdated, seen, source, scope, also_scopes) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10) \
    ON CONFLICT (src, type, dst) DO UPDATE SET \
    props = json_patch(edges.props, excluded.props), \
    firstseen = min(edges.firstseen, excluded.firstseen), lastupdated = excluded.lastupdated, \
    seen = excluded.seen, digest = NULL, \
    source = excluded.source, scope = excluded.scope, also_scopes = excluded.also_scopes";

/// The bookkeeping taken out of a line's properties.
struct Book {
    firstseen: i64,
    lastupdated: i64,
    source: String,
    scope: String,
    /// `_also_scopes` as stored: a JSON array of strings, or NULL.
    also: Option<String>,
}

fn take_book(props: &mut Map<String, Json>, now: i64) -> Result<Book, String> {
    let mut int = |name: &str| match props.remove(name) {
        None | Some(Json::Null) => Ok(now),
        Some(Json::Number(n)) if n.is_i64() => Ok(n.as_i64().expect("checked")),
        Some(other) => Err(format!("property {name:?} must be an integer, not {other}")),
    };
    let (firstseen, lastupdated) = (int("firstseen")?, int("lastupdated")?);
    let mut text = |name: &str, default: &str| match props.remove(name) {
        None | Some(Json::Null) => Ok(default.to_owned()),
        Some(Json::String(s)) => Ok(s),
        Some(other) => Err(format!("property {name:?} must be a string, not {other}")),
    };
    let (source, scope) = (text("_source", IMPORT_SOURCE)?, text("_scope", "")?);
    let also = match props.remove("_also_scopes") {
        None | Some(Json::Null) => None,
        Some(Json::Array(v)) if !v.is_empty() && v.iter().all(Json::is_string) => {
            Some(Json::Array(v).to_string())
        }
        Some(Json::Array(v)) if v.is_empty() => None,
        Some(other) => {
            return Err(format!(
                "property \"_also_scopes\" must be a list of strings, not {other}"
            ));
        }
    };
    Ok(Book {
        firstseen,
        lastupdated,
        source,
        scope,
        also,
    })
}

/// The key, taken out of the properties.
fn take_key(props: &mut Map<String, Json>, what: &str) -> Result<String, String> {
    match props.remove("id") {
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(format!(
            "{what}: properties.id must be a non-empty string, not {other}"
        )),
        None => Err(format!("{what}: properties.id (the node's key) is missing")),
    }
}

/// The remaining properties as stored: nulls dropped (a stored map never holds them),
/// maps refused (a graph property cannot be one).
fn props_text(props: &mut Map<String, Json>) -> Result<String, String> {
    props.retain(|_, v| !v.is_null());
    if let Some((k, _)) = props.iter().find(|(_, v)| v.is_object()) {
        return Err(format!(
            "property {k:?} is a map, which a graph property cannot be"
        ));
    }
    Ok(serde_json::to_string(props).expect("a JSON map serialises"))
}

/// `n12` → 12, so an export of an imported store names records as the original export
/// did. Anything else (APOC's own numeric ids) lets SQLite choose.
fn opaque_number(id: &str, prefix: char) -> Option<i64> {
    id.strip_prefix(prefix)?.parse().ok().filter(|n| *n > 0)
}

fn check_labels(labels: &[String], what: &str) -> Result<(), String> {
    if labels.is_empty() {
        return Err(format!("{what} has no labels"));
    }
    if let Some(l) = labels.iter().find(|l| l.is_empty()) {
        return Err(format!("{what} has an empty label {l:?}"));
    }
    Ok(())
}

/// Loads a JSON-lines file in the format [`Store::export_jsonl`] writes (and APOC's
/// `apoc.export.json` writes): node lines, then relationship lines. The first label of
/// a node is its primary label; `properties.id` is its key; bookkeeping properties
/// are restored (missing ones become now, `"import"` and `""`). A relationship's ends
/// are found by their first label and `properties.id`, among the nodes of the store
/// and of earlier lines.
///
/// All or nothing: one transaction, so a malformed line (reported with its number)
/// leaves the store as it was.
pub(crate) fn jsonl(
    conn: &mut Connection,
    path: &Path,
    input: &mut impl BufRead,
) -> Result<ImportStats, Error> {
    let mut stats = ImportStats::default();
    let mut line_no = 0u64;
    let mut run = |line_no: &mut u64, stats: &mut ImportStats| -> Result<(), Fail> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = crate::write::now_ms();
        let mut max_tag = 0i64;
        let mut buf = String::new();
        loop {
            buf.clear();
            match input.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => *line_no += 1,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(invalid(format!(
                        "line {}: not UTF-8 text; nothing was imported",
                        *line_no + 1
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            if buf.trim().is_empty() {
                continue;
            }
            let bad = |what: String| {
                Fail::Done(Error::new(
                    ErrorKind::Import,
                    format!("line {line_no}: {what}; nothing was imported"),
                ))
            };
            let line: Line = serde_json::from_str(&buf).map_err(|e| bad(e.to_string()))?;
            let tag = match line {
                Line::Node(n) => import_node(&tx, n, now).map_err(|e| match e {
                    Fail::Done(e) => bad(e.message().to_owned()),
                    other => other,
                })?,
                Line::Relationship(r) => import_edge(&tx, r, now).map_err(|e| match e {
                    Fail::Done(e) => bad(e.message().to_owned()),
                    other => other,
                })?,
            };
            match tag {
                Kind::Node(t) => {
                    stats.nodes += 1;
                    max_tag = max_tag.max(t);
                }
                Kind::Edge(t) => {
                    stats.relationships += 1;
                    max_tag = max_tag.max(t);
                }
            }
        }
        // Later syncs must take tags above every imported `lastupdated`, or cleanup
        // would mistake their records for current ones.
        tx.execute(
            "UPDATE meta SET value = max(value, ?1) WHERE key = 'last_update_tag'",
            [max_tag],
        )?;
        tx.commit()?;
        Ok(())
    };
    let res = run(&mut line_no, &mut stats);
    res.map_err(|e| match e {
        Fail::Done(e) => e,
        other => other.at(path, &format!("importing (at line {line_no})")),
    })?;
    tracing::info!(
        nodes = stats.nodes,
        relationships = stats.relationships,
        "imported"
    );
    Ok(stats)
}

/// What a line stored, with its `lastupdated`.
enum Kind {
    Node(i64),
    Edge(i64),
}

fn invalid(what: String) -> Fail {
    Fail::Done(Error::new(ErrorKind::Import, what))
}

fn import_node(tx: &Transaction<'_>, mut n: NodeLine, now: i64) -> Result<Kind, Fail> {
    check_labels(&n.labels, "the node").map_err(invalid)?;
    let key = take_key(&mut n.properties, "the node").map_err(invalid)?;
    let book = take_book(&mut n.properties, now).map_err(invalid)?;
    let props = props_text(&mut n.properties).map_err(invalid)?;
    let extra = serde_json::to_string(&n.labels[1..])?;
    let nid = free_id(
        tx,
        "SELECT 1 FROM nodes WHERE nid = ?1",
        opaque_number(&n.id, 'n'),
    )?;
    tx.prepare_cached(UPSERT_NODE)?.execute(params![
        nid,
        n.labels[0],
        key,
        extra,
        props,
        book.firstseen,
        book.lastupdated,
        book.source,
        book.scope,
        book.also
    ])?;
    // The label belongs to the plugin that wrote the node, as if it had synced here.
    if book.source != IMPORT_SOURCE {
        tx.prepare_cached("INSERT OR IGNORE INTO labels (label, plugin) VALUES (?1, ?2)")?
            .execute(params![n.labels[0], book.source])?;
    }
    Ok(Kind::Node(book.lastupdated))
}

fn import_edge(tx: &Transaction<'_>, mut r: RelLine, now: i64) -> Result<Kind, Fail> {
    if r.label.is_empty() {
        return Err(invalid(
            "the relationship has an empty type (\"label\")".into(),
        ));
    }
    let mut ends = [0i64; 2];
    for (slot, (name, end)) in ends
        .iter_mut()
        .zip([("start", &mut r.start), ("end", &mut r.end)])
    {
        let what = format!("the relationship's {name}");
        check_labels(&end.labels, &what).map_err(invalid)?;
        let key = take_key(&mut end.properties, &what).map_err(invalid)?;
        let nid: Option<i64> = tx
            .prepare_cached("SELECT nid FROM nodes WHERE label = ?1 AND id = ?2")?
            .query_row(params![end.labels[0], key], |row| row.get(0))
            .optional()?;
        *slot = nid.ok_or_else(|| {
            invalid(format!(
                "{what} ({} {key:?}) is neither in the store nor on an earlier line",
                end.labels[0]
            ))
        })?;
    }
    let book = take_book(&mut r.properties, now).map_err(invalid)?;
    let props = props_text(&mut r.properties).map_err(invalid)?;
    let eid = free_id(
        tx,
        "SELECT 1 FROM edges WHERE eid = ?1",
        opaque_number(&r.id, 'r'),
    )?;
    tx.prepare_cached(UPSERT_EDGE)?.execute(params![
        eid,
        r.label,
        ends[0],
        ends[1],
        props,
        book.firstseen,
        book.lastupdated,
        book.source,
        book.scope,
        book.also
    ])?;
    Ok(Kind::Edge(book.lastupdated))
}

/// `wanted` if no record holds it yet, else None (SQLite picks one).
fn free_id(
    tx: &Transaction<'_>,
    taken_sql: &str,
    wanted: Option<i64>,
) -> Result<Option<i64>, Fail> {
    let Some(id) = wanted else { return Ok(None) };
    let taken = tx.prepare_cached(taken_sql)?.exists([id])?;
    Ok(if taken { None } else { Some(id) })
}
