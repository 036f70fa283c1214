//! The sink conformance suite: the same scenarios, run against every `GraphSink`, so the
//! embedded store and a graph server hold the same graph after the same writes. A sink
//! joins by implementing [`Inspect`] and adding a line to `tests/all/sinks.rs`.

use std::collections::BTreeMap;
use std::future::Future;

use infragraph_core::{
    ChangeCounts, EdgeBatch, EdgeRow, GraphSink, Incomplete, Manifest, NodeBatch, NodeRef, NodeRow,
    Publish, RunRecord, RunStatus, SinkError, Value, WriteScope,
};
use serde_json::json;

use crate::graph::Graph;

/// Reading a sink's whole graph back, for assertions.
pub trait Inspect: GraphSink {
    /// Everything the sink holds.
    fn graph(&self) -> impl Future<Output = Graph> + Send;

    /// Forgets which plugin each label belongs to, as a sink written before labels were
    /// registered would, so that the check on every record is what stands.
    fn forget_label_owners(&self) -> impl Future<Output = ()> + Send;
}

impl Inspect for infragraph_sink_sqlite::Store {
    async fn graph(&self) -> Graph {
        let mut out = Vec::new();
        self.export_jsonl(&mut out).expect("export");
        Graph::from_jsonl(&String::from_utf8(out).expect("utf-8"))
    }

    async fn forget_label_owners(&self) {
        let conn = rusqlite::Connection::open(self.path()).expect("open the store");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute("DELETE FROM labels", []).expect("forget");
    }
}

impl Inspect for infragraph_sink_neo4j::Neo4jSink {
    async fn graph(&self) -> Graph {
        let mut out = Vec::new();
        self.export_jsonl(&mut out).await.expect("export");
        Graph::from_jsonl(&String::from_utf8(out).expect("utf-8"))
    }

    async fn forget_label_owners(&self) {
        let server = crate::bolt::server();
        let db = infragraph_sink_neo4j::Neo4jConfig {
            uri: self.uri().to_string(),
            user: server.user,
            password: server.password,
            database: self.database().to_string(),
        };
        crate::bolt::driver(&db)
            .await
            .run(neo4rs::query("MATCH (x:`InfragraphLabel`) DELETE x"))
            .await
            .expect("forget");
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
    "a_label_belongs_to_the_first_plugin_that_declares_it",
    "another_plugins_records_are_refused_whole_batch",
    "shared_records_stay_until_no_scope_asserts_them",
    "edges_between_survivors_are_deleted_only_by_their_owner",
    "lastupdated_never_goes_back",
    "one_run_per_plugin_and_scope",
    "a_resync_changes_only_what_changed",
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
        "a_label_belongs_to_the_first_plugin_that_declares_it" => label_owner(sink).await,
        "another_plugins_records_are_refused_whole_batch" => refused(sink).await,
        "shared_records_stay_until_no_scope_asserts_them" => shared(sink).await,
        "edges_between_survivors_are_deleted_only_by_their_owner" => foreign_edges(sink).await,
        "lastupdated_never_goes_back" => never_back(sink).await,
        "one_run_per_plugin_and_scope" => leases(sink).await,
        "a_resync_changes_only_what_changed" => resync(sink).await,
        other => panic!("no conformance scenario {other:?}"),
    }
}

fn manifest() -> Manifest {
    manifest_of("conf")
}

/// Another plugin with a label of its own, linking to the conformance plugin's groups.
fn other_manifest() -> Manifest {
    serde_json::from_value(json!({
        "name": "other", "version": "1.0.0", "description": "conformance",
        "hosts": [], "credentials": [], "config": [],
        "schema": {
            "nodes": [{"label": "OtherThing", "description": "", "extra_labels": [], "properties": []}],
            "edges": [{"rel_type": "USES", "description": "", "from": "OtherThing", "to": "ConfGroup",
                       "properties": []}]
        }
    }))
    .expect("a valid manifest")
}

fn things(ids: &[&str]) -> NodeBatch {
    NodeBatch {
        label: "OtherThing".into(),
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

fn uses(rows: &[(&str, &str)]) -> EdgeBatch {
    EdgeBatch {
        rel_type: "USES".into(),
        from_label: "OtherThing".into(),
        from_key: "id".into(),
        to_label: "ConfGroup".into(),
        to_key: "id".into(),
        columns: vec![],
        rows: rows
            .iter()
            .map(|(f, t)| EdgeRow {
                from: (*f).into(),
                to: (*t).into(),
                values: vec![],
            })
            .collect(),
    }
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

/// Ends run `w` as the engine ends a successful one: cleanup (unless `keep` is `None`),
/// no state writes. Returns the run's counts.
async fn publish<S: Inspect>(
    sink: &S,
    w: &WriteScope,
    keep: Option<&[Incomplete]>,
) -> ChangeCounts {
    let state = BTreeMap::new();
    let p = Publish {
        cleanup: keep,
        state: &state,
        state_plugin: &w.plugin,
        cleanup_batch: 1,
    };
    sink.publish(w, &p).await.expect("publish")
}

/// The refusal of a write, whether the sink refuses the batch itself (a graph server)
/// or the run's publication (the embedded store, which holds batches until then).
async fn refusal<S: Inspect>(
    sink: &S,
    w: &WriteScope,
    written: Result<(), SinkError>,
) -> SinkError {
    match written {
        Err(e) => {
            sink.discard(w).await.expect("discard");
            e
        }
        Ok(()) => {
            let state = BTreeMap::new();
            let p = Publish {
                cleanup: Some(&[]),
                state: &state,
                state_plugin: &w.plugin,
                cleanup_batch: 1,
            };
            let e = sink.publish(w, &p).await.expect_err("refused");
            sink.discard(w).await.expect("discard");
            e
        }
    }
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
    publish(sink, &w1, Some(&[])).await;
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
    publish(sink, &w2, Some(&[])).await;
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
    let mut unresolved = sink
        .write_edges(
            &w,
            &member_of("id", &[("u1", "g1"), ("u1", "nope"), ("ghost", "g1")]),
        )
        .await
        .unwrap();
    // An end matched on another property.
    unresolved += sink
        .write_edges(&w, &member_of("email", &[("b@x", "g1")]))
        .await
        .unwrap();
    // Merged, not duplicated.
    unresolved += sink
        .write_edges(&w, &member_of("id", &[("u1", "g1")]))
        .await
        .unwrap();
    let counts = publish(sink, &w, Some(&[])).await;
    unresolved += counts.edges["MEMBER_OF"].unresolved;
    assert_eq!(
        unresolved, 2,
        "edges to missing nodes are not written but counted"
    );
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
    publish(sink, &old, Some(&[])).await;
    let other_scope = scope(sink, "conf", "s2").await;
    sink.write_nodes(
        &other_scope,
        &[],
        &users(&[("elsewhere", Value::Null, Value::Null)]),
    )
    .await
    .unwrap();
    publish(sink, &other_scope, Some(&[])).await;
    sink.prepare(&other_manifest()).await.expect("prepare");
    let other_plugin = scope(sink, "other", "s1").await;
    sink.write_nodes(&other_plugin, &[], &things(&["theirs"]))
        .await
        .unwrap();
    publish(sink, &other_plugin, Some(&[])).await;

    let new = scope(sink, "conf", "s1").await;
    sink.write_nodes(&new, &[], &users(&[("kept", Value::Null, Value::Null)]))
        .await
        .unwrap();
    sink.write_nodes(&new, &[], &groups(&["g1"])).await.unwrap();
    // The run emits the stale user's relationship again, not the user: the relationship
    // goes with its end. The counts say what the run wrote, then what cleanup deleted:
    // that relationship is in both.
    sink.write_edges(&new, &member_of("id", &[("kept", "g1"), ("stale", "g1")]))
        .await
        .unwrap();
    let deleted = publish(sink, &new, Some(&[])).await;
    assert_eq!(deleted.nodes.get("ConfUser").map(|c| c.deleted), Some(1));
    let member_of = &deleted.edges["MEMBER_OF"];
    assert_eq!(
        (member_of.created, member_of.updated, member_of.deleted),
        (0, 2, 1)
    );
    let g = sink.graph().await;
    assert!(!g.has("ConfUser", "stale"));
    assert!(g.has("ConfUser", "kept") && g.has("ConfGroup", "g1"));
    assert!(g.has("ConfUser", "elsewhere"), "another scope is untouched");
    assert!(g.has("OtherThing", "theirs"), "another plugin is untouched");
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
    publish(sink, &old, Some(&[])).await;
    let new = scope(sink, "conf", "s1").await;
    sink.write_nodes(&new, &[], &groups(&["g1"])).await.unwrap();
    let keep = [Incomplete {
        label: "ConfUser".into(),
        parent: None,
        reason: "403".into(),
    }];
    publish(sink, &new, Some(&keep)).await;
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
    publish(sink, &newer, Some(&keep)).await;
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
    publish(sink, &w1, Some(&[])).await;
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
    let c = publish(sink, &w2, Some(&[])).await;
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

async fn label_owner<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let e = sink
        .prepare(&manifest_of("evil"))
        .await
        .expect_err("a label of another plugin is refused");
    for word in ["evil", "ConfUser", "conf"] {
        assert!(e.to_string().contains(word), "{word} in: {e}");
    }
    // Extra labels are shared vocabulary, and edges may point at another plugin's nodes.
    sink.prepare(&other_manifest()).await.expect("prepare");
    sink.prepare(&manifest())
        .await
        .expect("the owner prepares again");
}

async fn refused<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let w = scope(sink, "conf", "s1").await;
    sink.write_nodes(&w, &[], &users(&[("u1", text("a@x"), Value::Int(1))]))
        .await
        .unwrap();
    sink.write_nodes(&w, &[], &groups(&["g1"])).await.unwrap();
    sink.write_edges(&w, &member_of("id", &[("u1", "g1")]))
        .await
        .unwrap();
    publish(sink, &w, Some(&[])).await;
    let before = sink.graph().await;
    // A sink that never registered labels (written by an older infragraph) still
    // refuses, record by record.
    sink.forget_label_owners().await;
    sink.prepare(&manifest_of("evil")).await.expect("prepare");
    let e = scope(sink, "evil", "s1").await;
    let written = sink
        .write_nodes(
            &e,
            &[],
            &users(&[
                ("new", text("n@x"), Value::Int(1)),
                ("u1", text("stolen@x"), Value::Int(99)),
            ]),
        )
        .await;
    let err = refusal(sink, &e, written).await;
    for word in ["ConfUser", "u1", "conf", "evil"] {
        assert!(err.to_string().contains(word), "{word} in: {err}");
    }
    let e2 = scope(sink, "evil", "s1").await;
    let written = sink
        .write_edges(&e2, &member_of("id", &[("u1", "g1")]))
        .await
        .map(drop);
    let err = refusal(sink, &e2, written).await;
    for word in ["MEMBER_OF", "u1", "g1", "conf"] {
        assert!(err.to_string().contains(word), "{word} in: {err}");
    }
    assert_eq!(
        sink.graph().await.lines(),
        before.lines(),
        "nothing of either batch was applied"
    );
}

async fn shared<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    // Two scopes (tenants) of one plugin both assert group g, as Azure's regions are.
    let a1 = scope(sink, "conf", "a").await;
    sink.write_nodes(&a1, &[], &users(&[("ua", Value::Null, Value::Null)]))
        .await
        .unwrap();
    sink.write_nodes(&a1, &[], &groups(&["g"])).await.unwrap();
    sink.write_edges(&a1, &member_of("id", &[("ua", "g")]))
        .await
        .unwrap();
    publish(sink, &a1, Some(&[])).await;
    let b1 = scope(sink, "conf", "b").await;
    sink.write_nodes(&b1, &[], &users(&[("ub", Value::Null, Value::Null)]))
        .await
        .unwrap();
    sink.write_nodes(&b1, &[], &groups(&["g"])).await.unwrap();
    sink.write_edges(&b1, &member_of("id", &[("ub", "g")]))
        .await
        .unwrap();
    publish(sink, &b1, Some(&[])).await;
    assert_eq!(
        sink.graph().await.node("ConfGroup", "g")["_scope"],
        "a",
        "the scope that created a record stays its scope"
    );

    // Tenant a syncs again without g: g stays, b still asserts it.
    let a2 = scope(sink, "conf", "a").await;
    sink.write_nodes(&a2, &[], &users(&[("ua", Value::Null, Value::Null)]))
        .await
        .unwrap();
    let deleted = publish(sink, &a2, Some(&[])).await;
    assert_eq!(deleted.nodes.get("ConfGroup").map(|c| c.deleted), None);
    let g = sink.graph().await;
    assert!(g.has("ConfGroup", "g"), "b still asserts g");
    assert_eq!(g.node("ConfGroup", "g")["_scope"], "b", "b took it over");
    assert_eq!(g.edges_of("MEMBER_OF"), 1, "a's edge went, b's stayed");

    // Tenant a asserts g again, then b syncs without it: a's assertion keeps it.
    let a3 = scope(sink, "conf", "a").await;
    sink.write_nodes(&a3, &[], &groups(&["g"])).await.unwrap();
    publish(sink, &a3, None).await;
    let b2 = scope(sink, "conf", "b").await;
    sink.write_nodes(&b2, &[], &users(&[("ub", Value::Null, Value::Null)]))
        .await
        .unwrap();
    publish(sink, &b2, Some(&[])).await;
    let g = sink.graph().await;
    assert!(g.has("ConfGroup", "g"), "a asserts g again");
    assert_eq!(g.edges_of("MEMBER_OF"), 0, "b's edge is stale");

    // No scope asserts it any more: it goes.
    let a4 = scope(sink, "conf", "a").await;
    sink.write_nodes(&a4, &[], &users(&[("ua", Value::Null, Value::Null)]))
        .await
        .unwrap();
    let deleted = publish(sink, &a4, Some(&[])).await;
    assert_eq!(deleted.nodes.get("ConfGroup").map(|c| c.deleted), Some(1));
    let g = sink.graph().await;
    assert!(!g.has("ConfGroup", "g"));
    assert!(g.has("ConfUser", "ua") && g.has("ConfUser", "ub"));
}

async fn foreign_edges<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    sink.prepare(&other_manifest()).await.expect("prepare");
    let c1 = scope(sink, "conf", "s1").await;
    sink.write_nodes(&c1, &[], &groups(&["g1", "g2"]))
        .await
        .unwrap();
    publish(sink, &c1, Some(&[])).await;
    let o1 = scope(sink, "other", "s1").await;
    sink.write_nodes(&o1, &[], &things(&["t"])).await.unwrap();
    sink.write_edges(&o1, &uses(&[("t", "g1"), ("t", "g2")]))
        .await
        .unwrap();
    publish(sink, &o1, Some(&[])).await;

    // conf resyncs with g1 only: g2 goes with the edge other wrote to it; the edge to the
    // surviving g1 is other's, and stays.
    let c2 = scope(sink, "conf", "s1").await;
    sink.write_nodes(&c2, &[], &groups(&["g1"])).await.unwrap();
    let deleted = publish(sink, &c2, Some(&[])).await;
    assert_eq!(deleted.nodes.get("ConfGroup").map(|c| c.deleted), Some(1));
    assert_eq!(deleted.edges.get("USES").map(|c| c.deleted), Some(1));
    let g = sink.graph().await;
    assert_eq!(g.edges_of("USES"), 1);
    assert!(g.has("OtherThing", "t"));

    // other resyncs without its edge: its owner deletes it.
    let o2 = scope(sink, "other", "s1").await;
    sink.write_nodes(&o2, &[], &things(&["t"])).await.unwrap();
    publish(sink, &o2, Some(&[])).await;
    assert_eq!(sink.graph().await.edges_of("USES"), 0);
}

async fn never_back<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let earlier = scope(sink, "conf", "a").await;
    let later = scope(sink, "conf", "b").await;
    sink.write_nodes(&later, &[], &groups(&["g"]))
        .await
        .unwrap();
    publish(sink, &later, Some(&[])).await;
    // The run that took its tag first writes last.
    sink.write_nodes(&earlier, &[], &groups(&["g"]))
        .await
        .unwrap();
    publish(sink, &earlier, Some(&[])).await;
    let g = sink.graph().await;
    assert_eq!(g.node("ConfGroup", "g")["lastupdated"], later.update_tag);
    assert!(g.has("ConfGroup", "g"));
}

/// Records `w` in the run history, as the engine does after each run (a sink may read
/// nothing of a scope with no run recorded).
async fn recorded<S: Inspect>(sink: &S, w: &WriteScope) {
    sink.record_run(&RunRecord {
        plugin: w.plugin.clone(),
        scope: Some(w.scope.clone()),
        update_tag: w.update_tag,
        status: RunStatus::Succeeded,
        started_at: "2026-12-06T00:00:00Z".into(),
        finished_at: "2026-12-06T00:00:01Z".into(),
        report: "{}".into(),
    })
    .await
    .expect("record the run");
}

/// `lastupdated` moves only for a record that changed (or that a scope newly asserts);
/// one emitted again as it was is seen, kept by cleanup and counted unchanged.
async fn resync<S: Inspect>(sink: &S) {
    sink.prepare(&manifest()).await.expect("prepare");
    let user = |id, email: &str, age| (id, text(email), Value::Int(age));
    let w1 = scope(sink, "conf", "s1").await;
    sink.write_nodes(
        &w1,
        &[],
        &users(&[
            user("u1", "a@x", 1),
            user("u2", "b@x", 2),
            user("u3", "c@x", 3),
        ]),
    )
    .await
    .unwrap();
    sink.write_nodes(&w1, &[], &groups(&["g1"])).await.unwrap();
    let memberships = member_of("id", &[("u1", "g1"), ("u2", "g1"), ("u3", "g1")]);
    sink.write_edges(&w1, &memberships).await.unwrap();
    publish(sink, &w1, Some(&[])).await;
    recorded(sink, &w1).await;

    // u1 as it was, u2 changed, u3 gone; each user in a batch of its own.
    let w2 = scope(sink, "conf", "s1").await;
    for u in [user("u1", "a@x", 1), user("u2", "b2@x", 2)] {
        sink.write_nodes(&w2, &[], &users(&[u])).await.unwrap();
    }
    sink.write_nodes(&w2, &[], &groups(&["g1"])).await.unwrap();
    sink.write_edges(&w2, &member_of("id", &[("u1", "g1"), ("u2", "g1")]))
        .await
        .unwrap();
    let c = publish(sink, &w2, Some(&[])).await;
    recorded(sink, &w2).await;
    let g = sink.graph().await;
    assert_eq!(g.node("ConfUser", "u1")["lastupdated"], w1.update_tag);
    assert_eq!(g.node("ConfUser", "u2")["lastupdated"], w2.update_tag);
    assert_eq!(g.node("ConfUser", "u2")["email"], "b2@x");
    assert_eq!(g.node("ConfGroup", "g1")["lastupdated"], w1.update_tag);
    assert!(!g.has("ConfUser", "u3"), "not emitted again: deleted");
    let key = |u: &str| {
        (
            "MEMBER_OF".to_string(),
            ("ConfUser".to_string(), u.to_string()),
            ("ConfGroup".to_string(), "g1".to_string()),
        )
    };
    assert_eq!(g.edges[&key("u1")]["lastupdated"], w1.update_tag);
    assert_eq!(g.edges_of("MEMBER_OF"), 2);
    let u = &c.nodes["ConfUser"];
    assert_eq!((u.created, u.updated, u.unchanged, u.deleted), (0, 2, 1, 1));
    let m = &c.edges["MEMBER_OF"];
    assert_eq!((m.created, m.updated, m.unchanged, m.deleted), (0, 2, 2, 1));

    // Emitted twice in one run: the last row wins, whichever of them matches the graph.
    let w3 = scope(sink, "conf", "s1").await;
    for u in [
        user("u1", "a@x", 1),
        user("u1", "a3@x", 1),
        user("u2", "z@x", 2),
        user("u2", "b2@x", 2),
    ] {
        sink.write_nodes(&w3, &[], &users(&[u])).await.unwrap();
    }
    sink.write_nodes(&w3, &[], &groups(&["g1"])).await.unwrap();
    publish(sink, &w3, Some(&[])).await;
    recorded(sink, &w3).await;
    let g = sink.graph().await;
    assert_eq!(g.node("ConfUser", "u1")["email"], "a3@x");
    assert_eq!(g.node("ConfUser", "u1")["lastupdated"], w3.update_tag);
    assert_eq!(g.node("ConfUser", "u2")["email"], "b2@x");
    assert_eq!(g.node("ConfUser", "u2")["lastupdated"], w3.update_tag);
    assert_eq!(g.edges_of("MEMBER_OF"), 0, "not emitted again: deleted");

    // Another scope asserting u1 as it is changes it: it is now shared.
    let other = scope(sink, "conf", "s2").await;
    sink.write_nodes(&other, &[], &users(&[user("u1", "a3@x", 1)]))
        .await
        .unwrap();
    publish(sink, &other, Some(&[])).await;
    let g = sink.graph().await;
    assert_eq!(g.node("ConfUser", "u1")["lastupdated"], other.update_tag);
}

async fn leases<S: Inspect>(sink: &S) {
    use std::time::Duration;

    use infragraph_core::Holder;

    let ttl = Duration::from_secs(60);
    let w = scope(sink, "conf", "s1").await;
    let here = Holder::this_process("2026-12-05T10:00:00Z");
    let remote = |token: &str| Holder {
        host: "another-machine".into(),
        pid: 4242,
        started_at: "2026-12-05T09:00:00Z".into(),
        token: token.into(),
    };
    sink.lease(&w, &here, ttl).await.expect("free: taken");
    sink.lease(&w, &here, ttl).await.expect("the holder renews");
    let e = sink
        .lease(&w, &remote("r1"), ttl)
        .await
        .expect_err("held by another run");
    assert!(e.held, "{e}");
    for word in [&here.pid.to_string(), &here.host, &here.started_at] {
        assert!(e.to_string().contains(word.as_str()), "{word} in: {e}");
    }
    let other_scope = scope(sink, "conf", "s2").await;
    sink.lease(&other_scope, &remote("r1"), ttl)
        .await
        .expect("another scope is free");
    sink.release(&w, &remote("r1"))
        .await
        .expect("releasing what one does not hold does nothing");
    sink.release(&w, &here).await.expect("release");
    sink.lease(&w, &remote("r1"), Duration::from_millis(1))
        .await
        .expect("released: taken");

    // A lease that was not renewed in time is taken over, and its old holder finds out.
    tokio::time::sleep(Duration::from_millis(20)).await;
    sink.lease(&w, &remote("r2"), ttl)
        .await
        .expect("expired: taken over");
    let e = sink
        .lease(&w, &remote("r1"), ttl)
        .await
        .expect_err("the old holder lost it");
    assert!(e.held, "{e}");

    // A holder on this machine whose process is gone lets go at once.
    let w3 = scope(sink, "conf", "s3").await;
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = Holder {
        pid: child.id(),
        token: "dead".into(),
        ..here.clone()
    };
    child.wait().expect("wait");
    sink.lease(&w3, &dead, ttl).await.expect("taken");
    sink.lease(&w3, &here, ttl)
        .await
        .expect("a dead holder on this machine is taken over at once");
}
