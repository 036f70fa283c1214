//! The sink conformance suite: the same scenarios, run against every `GraphSink`, so the
//! embedded store and a graph server hold the same graph after the same writes. A sink
//! joins by implementing [`Inspect`] and adding a line to `tests/all/sinks.rs`.

use std::collections::BTreeMap;
use std::future::Future;

use infragraph_core::{
    EdgeBatch, EdgeRow, GraphSink, Incomplete, Manifest, NodeBatch, NodeRef, NodeRow, RunRecord,
    RunStatus, Value, WriteScope,
};
use serde_json::json;

use crate::graph::Graph;

/// Reading a sink's whole graph back, for assertions.
pub trait Inspect: GraphSink {
    /// Everything the sink holds.
    fn graph(&self) -> impl Future<Output = Graph> + Send;
}

impl Inspect for infragraph_sink_sqlite::Store {
    async fn graph(&self) -> Graph {
        let mut out = Vec::new();
        self.export_jsonl(&mut out).expect("export");
        Graph::from_jsonl(&String::from_utf8(out).expect("utf-8"))
    }
}

impl Inspect for infragraph_sink_neo4j::Neo4jSink {
    async fn graph(&self) -> Graph {
        let mut out = Vec::new();
        self.export_jsonl(&mut out).await.expect("export");
        Graph::from_jsonl(&String::from_utf8(out).expect("utf-8"))
    }
}

/// Every scenario, by name, so each sink runs them all as separate tests.
pub const SCENARIOS: &[&str] = &[
    "upsert_keeps_firstseen_and_merges_properties",
    "edges_resolve_by_key_and_count_unresolved",
    "cleanup_deletes_only_stale_records_of_the_plugin_and_scope",
    "cleanup_keeps_incomplete_labels",
    "changes_count_created_and_updated",
    "state_and_run_history_persist",
];

/// Runs scenario `name` on `sink`.
pub async fn run<S: Inspect>(name: &str, sink: &S) {
    match name {
        "upsert_keeps_firstseen_and_merges_properties" => upsert(sink).await,
        "edges_resolve_by_key_and_count_unresolved" => edges(sink).await,
        "cleanup_deletes_only_stale_records_of_the_plugin_and_scope" => cleanup(sink).await,
        "cleanup_keeps_incomplete_labels" => incomplete(sink).await,
        "changes_count_created_and_updated" => changes(sink).await,
        "state_and_run_history_persist" => state_and_runs(sink).await,
        other => panic!("no conformance scenario {other:?}"),
    }
}

fn manifest() -> Manifest {
    manifest_of("conf")
}

/// The conformance schema under another plugin's name. A sink may refuse writes of a
/// plugin whose schema it was not given: the engine always prepares first.
fn manifest_of(plugin: &str) -> Manifest {
    serde_json::from_value(json!({
        "name": plugin, "version": "1.0.0", "description": "conformance",
        "hosts": [], "credentials": [], "config": [],
        "schema": {
            "nodes": [
                {"label": "ConfUser", "description": "", "extra_labels": ["UserAccount"], "properties": [
                    {"name": "email", "type": "text", "description": "", "indexed": true},
                    {"name": "age", "type": "int", "description": "", "indexed": false},
                    {"name": "tags", "type": "text_list", "description": "", "indexed": false}]},
                {"label": "ConfGroup", "description": "", "extra_labels": [], "properties": []}
            ],
            "edges": [{"rel_type": "MEMBER_OF", "description": "", "from": "ConfUser", "to": "ConfGroup",
                       "properties": [{"name": "since", "type": "int", "description": "", "indexed": false}]}]
        }
    }))
    .expect("a valid manifest")
}

async fn scope<S: Inspect>(sink: &S, plugin: &str, scope: &str) -> WriteScope {
    let tag = sink.next_update_tag().await.expect("tag");
    WriteScope {
        plugin: plugin.into(),
        scope: scope.into(),
        update_tag: tag,
    }
}

fn users(rows: &[(&str, Value, Value)]) -> NodeBatch {
    NodeBatch {
        label: "ConfUser".into(),
        columns: vec!["email".into(), "age".into()],
        rows: rows
            .iter()
            .map(|(id, e, a)| NodeRow {
                id: (*id).into(),
                values: vec![e.clone(), a.clone()],
            })
            .collect(),
    }
}

fn groups(ids: &[&str]) -> NodeBatch {
    NodeBatch {
        label: "ConfGroup".into(),
        columns: vec![],
        rows: ids
            .iter()
            .map(|id| NodeRow {
                id: (*id).into(),
                values: vec![],
            })
            .collect(),
    }
}

fn member_of(from_key: &str, rows: &[(&str, &str)]) -> EdgeBatch {
    EdgeBatch {
        rel_type: "MEMBER_OF".into(),
        from_label: "ConfUser".into(),
        from_key: from_key.into(),
        to_label: "ConfGroup".into(),
        to_key: "id".into(),
        columns: vec!["since".into()],
        rows: rows
            .iter()
            .map(|(f, t)| EdgeRow {
                from: (*f).into(),
                to: (*t).into(),
                values: vec![Value::Int(2020)],
            })
            .collect(),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

async fn upsert<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let w1 = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &w1,
        &["UserAccount".into()],
        &users(&[("u1", text("a@x"), Value::Int(30))]),
    )
    .await
    .unwrap();
    let w2 = scope(sink, "conf", "s1").await;
    assert!(
        w2.update_tag > w1.update_tag,
        "update tags strictly increase"
    );
    sink.write_nodes(
        &w2,
        &["UserAccount".into()],
        &users(&[("u1", text("b@x"), Value::Null)]),
    )
    .await
    .unwrap();
    let g = sink.graph().await;
    let (labels, _) = &g.nodes[&("ConfUser".to_string(), "u1".to_string())];
    assert_eq!(labels, &["ConfUser", "UserAccount"]);
    let u = g.node("ConfUser", "u1");
    assert_eq!(u["email"], "b@x");
    assert!(!u.contains_key("age"), "a null removes the property: {u:?}");
    assert_eq!(u["firstseen"], w1.update_tag);
    assert_eq!(u["lastupdated"], w2.update_tag);
    assert_eq!(u["_source"], "conf");
    assert_eq!(u["_scope"], "s1");
}

async fn edges<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let w = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &w,
        &[],
        &users(&[
            ("u1", text("a@x"), Value::Int(1)),
            ("u2", text("b@x"), Value::Int(2)),
        ]),
    )
    .await
    .unwrap();
    sink.write_nodes(&w, &[], &groups(&["g1"])).await.unwrap();
    let unresolved = sink
        .write_edges(
            &w,
            &member_of("id", &[("u1", "g1"), ("u1", "nope"), ("ghost", "g1")]),
        )
        .await
        .unwrap();
    assert_eq!(
        unresolved, 2,
        "edges to missing nodes are not written but counted"
    );
    let unresolved = sink
        .write_edges(&w, &member_of("email", &[("b@x", "g1")]))
        .await
        .unwrap();
    assert_eq!(unresolved, 0, "an end matched on another property");
    // Merged, not duplicated.
    sink.write_edges(&w, &member_of("id", &[("u1", "g1")]))
        .await
        .unwrap();
    let g = sink.graph().await;
    let expected = [("MEMBER_OF", "u1", "g1"), ("MEMBER_OF", "u2", "g1")];
    let expected = expected
        .iter()
        .map(|(r, f, t)| (r.to_string(), f.to_string(), t.to_string()))
        .collect();
    assert_eq!(g.edge_ids(), expected);
    let props = &g.edges[&(
        "MEMBER_OF".into(),
        ("ConfUser".into(), "u1".into()),
        ("ConfGroup".into(), "g1".into()),
    )];
    assert_eq!(props["since"], 2020);
    assert_eq!(props["_source"], "conf");
    assert_eq!(props["lastupdated"], w.update_tag);
}

async fn cleanup<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let old = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &old,
        &[],
        &users(&[
            ("stale", Value::Null, Value::Null),
            ("kept", Value::Null, Value::Null),
        ]),
    )
    .await
    .unwrap();
    sink.write_nodes(&old, &[], &groups(&["g1"])).await.unwrap();
    sink.write_edges(&old, &member_of("id", &[("stale", "g1"), ("kept", "g1")]))
        .await
        .unwrap();
    let other_scope = scope(sink, "conf", "s2").await;
    sink.write_nodes(
        &other_scope,
        &[],
        &users(&[("elsewhere", Value::Null, Value::Null)]),
    )
    .await
    .unwrap();
    sink.prepare(&manifest_of("other")).await.expect("prepare");
    let other_plugin = scope(sink, "other", "s1").await;
    sink.write_nodes(&other_plugin, &[], &groups(&["theirs"]))
        .await
        .unwrap();

    let new = scope(sink, "conf", "s1").await;
    sink.write_nodes(&new, &[], &users(&[("kept", Value::Null, Value::Null)]))
        .await
        .unwrap();
    sink.write_nodes(&new, &[], &groups(&["g1"])).await.unwrap();
    sink.write_edges(&new, &member_of("id", &[("kept", "g1")]))
        .await
        .unwrap();
    let deleted = sink.cleanup(&new, &[], 1).await.expect("cleanup");
    assert_eq!(deleted.nodes.get("ConfUser").map(|c| c.deleted), Some(1));
    assert_eq!(deleted.edges.get("MEMBER_OF").map(|c| c.deleted), Some(1));
    let g = sink.graph().await;
    assert!(!g.has("ConfUser", "stale"));
    assert!(g.has("ConfUser", "kept") && g.has("ConfGroup", "g1"));
    assert!(g.has("ConfUser", "elsewhere"), "another scope is untouched");
    assert!(g.has("ConfGroup", "theirs"), "another plugin is untouched");
    assert_eq!(g.edges_of("MEMBER_OF"), 1);
}

async fn incomplete<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let old = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &old,
        &[],
        &users(&[
            ("u1", Value::Null, Value::Null),
            ("u2", Value::Null, Value::Null),
        ]),
    )
    .await
    .unwrap();
    sink.write_nodes(&old, &[], &groups(&["g1", "g2"]))
        .await
        .unwrap();
    sink.write_edges(&old, &member_of("id", &[("u1", "g1")]))
        .await
        .unwrap();
    let new = scope(sink, "conf", "s1").await;
    sink.write_nodes(&new, &[], &groups(&["g1"])).await.unwrap();
    let keep = [Incomplete {
        label: "ConfUser".into(),
        parent: None,
        reason: "403".into(),
    }];
    sink.cleanup(&new, &keep, 100).await.expect("cleanup");
    let g = sink.graph().await;
    assert!(
        g.has("ConfUser", "u1") && g.has("ConfUser", "u2"),
        "the incomplete label keeps its stale nodes"
    );
    assert!(!g.has("ConfGroup", "g2"), "complete labels are cleaned");
    assert_eq!(g.edges_of("MEMBER_OF"), 1, "edges touching kept nodes stay");

    // Under a parent: only stale nodes linked to that parent are kept.
    let newer = scope(sink, "conf", "s1").await;
    sink.write_nodes(&newer, &[], &groups(&["g1"]))
        .await
        .unwrap();
    let parent = NodeRef {
        label: "ConfGroup".into(),
        key: "id".into(),
        value: "g1".into(),
    };
    let keep = [Incomplete {
        label: "ConfUser".into(),
        parent: Some(parent),
        reason: "403".into(),
    }];
    sink.cleanup(&newer, &keep, 100).await.expect("cleanup");
    let g = sink.graph().await;
    assert!(g.has("ConfUser", "u1"), "linked to the parent: kept");
    assert!(
        !g.has("ConfUser", "u2"),
        "not linked to the parent: deleted"
    );
}

async fn changes<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let w1 = scope(sink, "conf", "s1").await;
    sink.write_nodes(&w1, &[], &users(&[("u1", Value::Null, Value::Null)]))
        .await
        .unwrap();
    let w2 = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &w2,
        &[],
        &users(&[
            ("u1", Value::Null, Value::Null),
            ("u2", Value::Null, Value::Null),
        ]),
    )
    .await
    .unwrap();
    let c = sink.changes(&w2).await.expect("changes");
    let users = &c.nodes["ConfUser"];
    assert_eq!((users.created, users.updated), (1, 1));
}

async fn state_and_runs<S: Inspect>(sink: &S) {
    let writes = BTreeMap::from([
        ("cursor".to_string(), Some(b"42".to_vec())),
        ("gone".to_string(), None),
    ]);
    sink.commit_state("conf", "s1", &writes)
        .await
        .expect("commit");
    assert_eq!(
        sink.get("conf", "s1", "cursor").await.unwrap().as_deref(),
        Some(&b"42"[..])
    );
    assert_eq!(
        sink.get("conf", "s2", "cursor").await.unwrap(),
        None,
        "state is per scope"
    );
    sink.commit_state(
        "conf",
        "s1",
        &BTreeMap::from([("cursor".to_string(), None)]),
    )
    .await
    .unwrap();
    assert_eq!(
        sink.get("conf", "s1", "cursor").await.unwrap(),
        None,
        "none deletes"
    );
    let run = RunRecord {
        plugin: "conf".into(),
        scope: Some("s1".into()),
        update_tag: 7,
        status: RunStatus::Partial,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:00:01Z".into(),
        report: "{}".into(),
    };
    sink.record_run(&run).await.expect("record");
}
