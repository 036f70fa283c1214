//! `infragraph export`: the whole graph as APOC-style JSON lines, GraphML or a Cypher
//! script. Each streams from one read snapshot in `nid`/`eid` order, so memory stays flat
//! and the same graph always gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};

use rusqlite::{Connection, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::error::Fail;

/// How many records an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStats {
    /// Nodes written.
    pub nodes: u64,
    /// Relationships written.
    pub relationships: u64,
}

const NODES: &str = "SELECT nid, label, extra_labels, id, props, firstseen, lastupdated, source, scope, \
     also_scopes FROM nodes ORDER BY nid";

const EDGES: &str = "SELECT e.eid, e.type, e.props, e.firstseen, e.lastupdated, e.source, e.scope, \
     s.nid, s.label, s.extra_labels, s.id, d.nid, d.label, d.extra_labels, d.id, e.also_scopes \
     FROM edges e JOIN nodes s ON s.nid = e.src JOIN nodes d ON d.nid = e.dst ORDER BY e.eid";

/// One exported node.
struct NodeRec {
    nid: i64,
    labels: Vec<String>,
    id: String,
    props: Vec<(String, Json)>,
    book: Book,
}

/// The bookkeeping properties, exported under these names.
struct Book {
    firstseen: i64,
    lastupdated: i64,
    source: String,
    scope: String,
    /// Other scopes asserting the record (`_also_scopes`), when there are any.
    also: Option<Vec<String>>,
}

/// `also_scopes` as stored (a JSON array, or NULL).
fn also(r: &Row<'_>, at: usize) -> Result<Option<Vec<String>>, Fail> {
    let text: Option<String> = r.get(at)?;
    Ok(match text {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

/// One end of an exported relationship.
struct EndRec {
    nid: i64,
    labels: Vec<String>,
    id: String,
}

struct EdgeRec {
    eid: i64,
    rel_type: String,
    props: Vec<(String, Json)>,
    book: Book,
    start: EndRec,
    end: EndRec,
}

/// Properties sorted by name, whatever order they were stored in, so that an export does
/// not depend on the order in which plugins wrote them.
fn sorted_props(text: &str) -> Result<Vec<(String, Json)>, Fail> {
    let map: Map<String, Json> = serde_json::from_str(text)?;
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

fn labels(primary: String, extra: &str) -> Result<Vec<String>, Fail> {
    let mut v = vec![primary];
    v.extend(serde_json::from_str::<Vec<String>>(extra)?);
    Ok(v)
}

fn node_rec(r: &Row<'_>) -> Result<NodeRec, Fail> {
    let extra: String = r.get(2)?;
    let props: String = r.get(4)?;
    Ok(NodeRec {
        nid: r.get(0)?,
        labels: labels(r.get(1)?, &extra)?,
        id: r.get(3)?,
        props: sorted_props(&props)?,
        book: Book {
            firstseen: r.get(5)?,
            lastupdated: r.get(6)?,
            source: r.get(7)?,
            scope: r.get(8)?,
            also: also(r, 9)?,
        },
    })
}

fn edge_rec(r: &Row<'_>) -> Result<EdgeRec, Fail> {
    let props: String = r.get(2)?;
    let end = |at: usize| -> Result<EndRec, Fail> {
        let extra: String = r.get(at + 2)?;
        Ok(EndRec {
            nid: r.get(at)?,
            labels: labels(r.get(at + 1)?, &extra)?,
            id: r.get(at + 3)?,
        })
    };
    Ok(EdgeRec {
        eid: r.get(0)?,
        rel_type: r.get(1)?,
        props: sorted_props(&props)?,
        book: Book {
            firstseen: r.get(3)?,
            lastupdated: r.get(4)?,
            source: r.get(5)?,
            scope: r.get(6)?,
            also: also(r, 15)?,
        },
        start: end(7)?,
        end: end(11)?,
    })
}

enum Rec {
    Node(NodeRec),
    Edge(EdgeRec),
}

/// Streams every node, then every edge, from one read snapshot.
fn each_record(
    conn: &mut Connection,
    mut on: impl FnMut(Rec) -> Result<(), Fail>,
) -> Result<(), Fail> {
    // One transaction, so edges written by a concurrent sync after the nodes were read
    // cannot point at nodes missing from the export.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    {
        let mut st = tx.prepare(NODES)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            on(Rec::Node(node_rec(r)?))?;
        }
        let mut st = tx.prepare(EDGES)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            on(Rec::Edge(edge_rec(r)?))?;
        }
    }
    tx.finish()?;
    Ok(())
}

fn json<W: Write>(w: &mut W, v: &(impl Serialize + ?Sized)) -> Result<(), Fail> {
    serde_json::to_writer(&mut *w, v).map_err(|e| match e.io_error_kind() {
        Some(kind) => Fail::Io(std::io::Error::new(kind, e)),
        None => Fail::Json(e),
    })
}

/// Writes the graph as JSON lines in the format of Neo4j APOC's `apoc.export.json`:
/// node lines, then relationship lines, each with its bookkeeping properties
/// (`firstseen`, `lastupdated`, `_source`, `_scope`). Opaque ids are `n<nid>` and
/// `r<eid>`. [`Store::import_jsonl`] reads it back.
pub(crate) fn jsonl(conn: &mut Connection, out: &mut impl Write) -> Result<ExportStats, Fail> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut stats = ExportStats::default();
    let res = each_record(conn, |rec| match rec {
        Rec::Node(n) => {
            w.write_all(br#"{"type":"node","id":"n"#)?;
            write!(w, "{}", n.nid)?;
            w.write_all(br#"","labels":"#)?;
            json(&mut w, &n.labels)?;
            w.write_all(br#","properties":{"id":"#)?;
            json(&mut w, &n.id)?;
            jsonl_props(&mut w, &n.props, &n.book)?;
            w.write_all(b"}}\n")?;
            stats.nodes += 1;
            Ok(())
        }
        Rec::Edge(e) => {
            w.write_all(br#"{"type":"relationship","id":"r"#)?;
            write!(w, "{}", e.eid)?;
            w.write_all(br#"","label":"#)?;
            json(&mut w, &e.rel_type)?;
            w.write_all(br#","properties":{"#)?;
            // The bookkeeping properties always follow, so every property is
            // written with a trailing comma.
            for (k, v) in &e.props {
                json(&mut w, k)?;
                w.write_all(b":")?;
                json(&mut w, v)?;
                w.write_all(b",")?;
            }
            jsonl_book(&mut w, &e.book)?;
            w.write_all(b"}")?;
            for (name, end) in [("start", &e.start), ("end", &e.end)] {
                write!(w, r#","{name}":{{"id":"n{}","labels":"#, end.nid)?;
                json(&mut w, &end.labels)?;
                w.write_all(br#","properties":{"id":"#)?;
                json(&mut w, &end.id)?;
                w.write_all(b"}}")?;
            }
            w.write_all(b"}\n")?;
            stats.relationships += 1;
            Ok(())
        }
    })
    .and_then(|()| w.flush().map_err(Fail::Io));
    res?;
    Ok(stats)
}

/// Writes the graph as GraphML, declaring every property as a `<key>` first. Like
/// APOC's GraphML export, a node's labels are in its `labels` attribute and data
/// (`:Primary:Extra`) and a relationship's type in `label`.
pub(crate) fn graphml(conn: &mut Connection, out: &mut impl Write) -> Result<ExportStats, Fail> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut stats = ExportStats::default();
    let res = (|| -> Result<(), Fail> {
        let node_keys = key_types(conn, "nodes")?;
        let edge_keys = key_types(conn, "edges")?;
        w.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                  <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
                  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                  xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
                  http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        )?;
        let book = [
            ("firstseen", "long"),
            ("lastupdated", "long"),
            ("_source", "string"),
            ("_scope", "string"),
            ("_also_scopes", "string"),
        ];
        w.write_all(
            b"<key id=\"labels\" for=\"node\" attr.name=\"labels\" attr.type=\"string\"/>\n",
        )?;
        w.write_all(b"<key id=\"n.id\" for=\"node\" attr.name=\"id\" attr.type=\"string\"/>\n")?;
        for (for_, prefix, keys) in [("node", "n", &node_keys), ("edge", "e", &edge_keys)] {
            if for_ == "edge" {
                w.write_all(
                    b"<key id=\"label\" for=\"edge\" attr.name=\"label\" attr.type=\"string\"/>\n",
                )?;
            }
            let all = keys.iter().map(|(k, t)| (k.as_str(), *t)).chain(book);
            for (k, ty) in all {
                let k = xml(k);
                writeln!(
                    w,
                    "<key id=\"{prefix}.{k}\" for=\"{for_}\" attr.name=\"{k}\" attr.type=\"{ty}\"/>"
                )?;
            }
        }
        w.write_all(b"<graph id=\"G\" edgedefault=\"directed\">\n")?;
        each_record(conn, |rec| match rec {
            Rec::Node(n) => {
                let labels: String = n.labels.iter().map(|l| format!(":{l}")).collect();
                let labels = xml(&labels);
                write!(
                    w,
                    "<node id=\"n{}\" labels=\"{labels}\"><data key=\"labels\">{labels}</data>\
                         <data key=\"n.id\">{}</data>",
                    n.nid,
                    xml(&n.id)
                )?;
                graphml_data(&mut w, "n", &n.props, &n.book)?;
                w.write_all(b"</node>\n")?;
                stats.nodes += 1;
                Ok(())
            }
            Rec::Edge(e) => {
                let ty = xml(&e.rel_type);
                write!(
                    w,
                    "<edge id=\"r{}\" source=\"n{}\" target=\"n{}\" label=\"{ty}\">\
                         <data key=\"label\">{ty}</data>",
                    e.eid, e.start.nid, e.end.nid
                )?;
                graphml_data(&mut w, "e", &e.props, &e.book)?;
                w.write_all(b"</edge>\n")?;
                stats.relationships += 1;
                Ok(())
            }
        })?;
        w.write_all(b"</graph>\n</graphml>\n")?;
        w.flush()?;
        Ok(())
    })();
    res?;
    Ok(stats)
}

/// Writes a Cypher script that loads the same graph into Neo4j: an index on `id` per
/// label, `MERGE (n:Label {id: ...}) SET n += {...}` per node and
/// `MATCH ... MERGE (a)-[r:TYPE]->(b) SET r += {...}` per relationship, with the
/// bookkeeping properties. Run it with `cypher-shell -f`.
pub(crate) fn cypher(conn: &mut Connection, out: &mut impl Write) -> Result<ExportStats, Fail> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut stats = ExportStats::default();
    let res = (|| -> Result<(), Fail> {
        w.write_all(b"// infragraph export; load with: cypher-shell -f <this file>\n")?;
        let mut labels = BTreeSet::new();
        {
            let mut st = conn.prepare("SELECT DISTINCT label FROM nodes")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                labels.insert(r.get::<_, String>(0)?);
            }
        }
        // MERGE on (label, id) without an index scans every node of the label.
        for l in &labels {
            writeln!(
                w,
                "CREATE INDEX IF NOT EXISTS FOR (n:{}) ON (n.id);",
                ident(l)
            )?;
        }
        each_record(conn, |rec| match rec {
            Rec::Node(n) => {
                write!(
                    w,
                    "MERGE (n:{} {{id: {}}})",
                    ident(&n.labels[0]),
                    cypher_str(&n.id)
                )?;
                if n.labels.len() > 1 {
                    w.write_all(b" SET n")?;
                    for l in &n.labels[1..] {
                        write!(w, ":{}", ident(l))?;
                    }
                }
                w.write_all(b" SET n += ")?;
                cypher_map(&mut w, &n.props, &n.book)?;
                w.write_all(b";\n")?;
                stats.nodes += 1;
                Ok(())
            }
            Rec::Edge(e) => {
                write!(
                    w,
                    "MATCH (a:{} {{id: {}}}), (b:{} {{id: {}}}) MERGE (a)-[r:{}]->(b) SET r += ",
                    ident(&e.start.labels[0]),
                    cypher_str(&e.start.id),
                    ident(&e.end.labels[0]),
                    cypher_str(&e.end.id),
                    ident(&e.rel_type)
                )?;
                cypher_map(&mut w, &e.props, &e.book)?;
                w.write_all(b";\n")?;
                stats.relationships += 1;
                Ok(())
            }
        })?;
        w.flush()?;
        Ok(())
    })();
    res?;
    Ok(stats)
}

/// `,"k":v...` for each property, then the bookkeeping ones; closes nothing.
fn jsonl_props(w: &mut impl Write, props: &[(String, Json)], book: &Book) -> Result<(), Fail> {
    for (k, v) in props {
        w.write_all(b",")?;
        json(w, k)?;
        w.write_all(b":")?;
        json(w, v)?;
    }
    w.write_all(b",")?;
    jsonl_book(w, book)
}

fn jsonl_book(w: &mut impl Write, b: &Book) -> Result<(), Fail> {
    write!(
        w,
        r#""firstseen":{},"lastupdated":{},"_source":"#,
        b.firstseen, b.lastupdated
    )?;
    json(w, &b.source)?;
    w.write_all(br#","_scope":"#)?;
    json(w, &b.scope)?;
    if let Some(also) = &b.also {
        w.write_all(br#","_also_scopes":"#)?;
        json(w, also)?;
    }
    Ok(())
}

/// Each property name of `table` with its GraphML type: `long` when every value is an
/// integer, `double` when every value is a number, `boolean`, else `string` (lists are
/// written as JSON text, as APOC does).
fn key_types(conn: &Connection, table: &str) -> Result<BTreeMap<String, &'static str>, Fail> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut st = conn.prepare(&format!(
        "SELECT j.key, j.type FROM {table}, json_each({table}.props) AS j GROUP BY 1, 2"
    ))?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        seen.entry(r.get(0)?).or_default().insert(r.get(1)?);
    }
    Ok(seen
        .into_iter()
        .map(|(k, types)| {
            let all = |allowed: &[&str]| types.iter().all(|t| allowed.contains(&t.as_str()));
            let ty = if all(&["integer"]) {
                "long"
            } else if all(&["integer", "real"]) {
                "double"
            } else if all(&["true", "false"]) {
                "boolean"
            } else {
                "string"
            };
            (k, ty)
        })
        .collect())
}

fn graphml_data(
    w: &mut impl Write,
    prefix: &str,
    props: &[(String, Json)],
    b: &Book,
) -> Result<(), Fail> {
    for (k, v) in props {
        let text = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        write!(w, "<data key=\"{prefix}.{}\">{}</data>", xml(k), xml(&text))?;
    }
    write!(
        w,
        "<data key=\"{prefix}.firstseen\">{}</data><data key=\"{prefix}.lastupdated\">{}</data>\
         <data key=\"{prefix}._source\">{}</data><data key=\"{prefix}._scope\">{}</data>",
        b.firstseen,
        b.lastupdated,
        xml(&b.source),
        xml(&b.scope)
    )?;
    if let Some(also) = &b.also {
        let text = serde_json::to_string(also)?;
        write!(
            w,
            "<data key=\"{prefix}._also_scopes\">{}</data>",
            xml(&text)
        )?;
    }
    Ok(())
}

/// Text escaped for XML content and attribute values. Characters XML 1.0 cannot carry
/// at all (most control characters) become U+FFFD rather than an unreadable file.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A label, type or property name, backquoted so any text is taken literally.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A Cypher string literal.
fn cypher_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn cypher_value(v: &Json) -> String {
    match v {
        Json::String(s) => cypher_str(s),
        Json::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(cypher_value)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        // Numbers, booleans and null are spelled as in JSON. Maps cannot be graph
        // properties, and import refuses them.
        other => other.to_string(),
    }
}

fn cypher_map(w: &mut impl Write, props: &[(String, Json)], b: &Book) -> Result<(), Fail> {
    w.write_all(b"{")?;
    for (k, v) in props {
        write!(w, "{}: {}, ", ident(k), cypher_value(v))?;
    }
    write!(
        w,
        "firstseen: {}, lastupdated: {}, `_source`: {}, `_scope`: {}",
        b.firstseen,
        b.lastupdated,
        cypher_str(&b.source),
        cypher_str(&b.scope)
    )?;
    if let Some(also) = &b.also {
        let list: Vec<String> = also.iter().map(|s| cypher_str(s)).collect();
        write!(w, ", `_also_scopes`: [{}]", list.join(", "))?;
    }
    w.write_all(b"}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cypher_literals_are_escaped() {
        assert_eq!(
            cypher_str("it's a \\ \"test\"\n\u{1}"),
            r#"'it\'s a \\ "test"\n\u0001'"#
        );
        assert_eq!(ident("Odd`Label"), "`Odd``Label`");
        let v: Json = serde_json::json!(["a'b", 1, 2.5, true]);
        assert_eq!(cypher_value(&v), r#"['a\'b', 1, 2.5, true]"#);
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            xml("<a href=\"x\">&'\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\u{FFFD}"
        );
    }
}
