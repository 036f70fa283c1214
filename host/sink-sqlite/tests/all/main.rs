//! Tests of the embedded store, one binary, a module per topic.

mod cleanup;
mod open;
mod query;
mod transfer;
mod write;

use std::collections::BTreeSet;

use infragraph_core::{
    ChangeCounts, EdgeBatch, EdgeRow, GraphSink, Incomplete, NodeBatch, NodeRow, Publish, Value,
    WriteScope,
};
use infragraph_sink_sqlite::Store;
use tempfile::TempDir;

/// A fresh store in its own directory; keep the directory alive as long as the store.
fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("graph.db")).expect("store opens");
    (dir, store)
}

/// Asserts that no edge points at a missing node: the writer does not enforce the
/// foreign keys, so the tests check them.
fn assert_no_dangling_edges(dir: &TempDir) {
    let conn = rusqlite::Connection::open(dir.path().join("graph.db")).expect("open");
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").expect("prepare");
    let dangling: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(Result::unwrap)
        .collect();
    assert!(
        dangling.is_empty(),
        "rows violating a foreign key in: {dangling:?}"
    );
}

fn scope(plugin: &str, scope: &str, tag: i64) -> WriteScope {
    WriteScope {
        plugin: plugin.into(),
        scope: scope.into(),
        update_tag: tag,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn node_batch(label: &str, cols: &[&str], rows: Vec<(&str, Vec<Value>)>) -> NodeBatch {
    NodeBatch {
        label: label.into(),
        columns: cols.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .into_iter()
            .map(|(id, values)| NodeRow {
                id: id.into(),
                values,
            })
            .collect(),
    }
}

/// Edges without properties, from `from` (matched on `from_key`) to `to` (on `to_key`).
fn edge_batch(
    rel_type: &str,
    (from_label, from_key): (&str, &str),
    (to_label, to_key): (&str, &str),
    rows: &[(&str, &str)],
) -> EdgeBatch {
    EdgeBatch {
        rel_type: rel_type.into(),
        from_label: from_label.into(),
        from_key: from_key.into(),
        to_label: to_label.into(),
        to_key: to_key.into(),
        columns: vec![],
        rows: rows
            .iter()
            .map(|(f, t)| EdgeRow {
                from: f.to_string().into(),
                to: t.to_string().into(),
                values: vec![],
            })
            .collect(),
    }
}

/// Writes nodes of `label` with no properties.
async fn put_nodes(s: &Store, w: &WriteScope, label: &str, ids: &[&str]) {
    let rows = ids.iter().map(|id| (*id, vec![])).collect();
    s.write_nodes(w, &[], &node_batch(label, &[], rows))
        .await
        .expect("nodes written");
}

/// Writes `rel_type` edges between nodes named by `id`; returns the unresolved count.
async fn put_edges(
    s: &Store,
    w: &WriteScope,
    rel_type: &str,
    from: &str,
    to: &str,
    rows: &[(&str, &str)],
) -> u64 {
    let b = edge_batch(rel_type, (from, "id"), (to, "id"), rows);
    s.write_edges(w, &b).await.expect("edges written")
}

/// Publishes run `w`: what it wrote becomes visible, then cleanup unless `keep` is None.
async fn publish(s: &Store, w: &WriteScope, keep: Option<&[Incomplete]>) -> ChangeCounts {
    let state = std::collections::BTreeMap::new();
    let p = Publish {
        cleanup: keep,
        state: &state,
        state_plugin: &w.plugin,
        cleanup_batch: 100,
    };
    s.publish(w, &p).await.expect("published")
}

/// Publishes each run in turn, deleting nothing.
async fn publish_all(s: &Store, runs: &[&WriteScope]) {
    for w in runs {
        publish(s, w, None).await;
    }
}

/// Every node's (label, id).
fn node_ids(s: &Store) -> BTreeSet<(String, String)> {
    let stats = s.stats().unwrap();
    let mut out = BTreeSet::new();
    for label in stats.nodes.keys() {
        for n in s.nodes(label, &[] as &[(&str, &str)], 0).unwrap() {
            if &n.label == label {
                out.insert((n.label, n.id));
            }
        }
    }
    out
}

/// Every edge as (from id, type, to id).
fn edge_ids(s: &Store) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (label, id) in node_ids(s) {
        let none: &[&str] = &[];
        for (e, _) in s
            .neighbours(&label, &id, infragraph_sink_sqlite::Direction::Out, none)
            .unwrap()
        {
            out.insert((e.from.1, e.rel_type, e.to.1));
        }
    }
    out
}

fn set<T: Ord + Clone, const N: usize>(items: [T; N]) -> BTreeSet<T> {
    items.into_iter().collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.into(), b.into())
}

fn triple(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}
