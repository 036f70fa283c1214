//! The Bolt sink end to end (issue 6), against the ArcadeDB server `cargo xtask test`
//! starts: the `infragraph` binary syncing the Scaleway simulator into it and pushing an
//! embedded store to it, each compared with the embedded store's graph; connection errors
//! before anything runs; and transient failures retried without loss or duplicates.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use crate::cli::Acme;
use crate::connections::teams_in_two_shards;
use infragraph_core::{
    EdgeBatch, EdgeRow, GraphSink, Manifest, NodeBatch, NodeRow, Value, WriteScope,
};
use infragraph_sink_neo4j::{Neo4jConfig, Neo4jSink};
use infragraph_tests::bolt::{self, Proxy};
use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::conformance::Inspect;
use infragraph_tests::graph::Graph;
use infragraph_tests::sim::{AcmeData, AcmeSim, ScalewayData, ScalewaySim};
use serde_json::json;

/// `--neo4j*` flags naming `db`, with `NEO4J_PASSWORD` set.
fn to_bolt(cmd: &mut Command, db: &Neo4jConfig) {
    let (k, v) = bolt::cli_env(db);
    cmd.args(bolt::cli_args(db)).env(k, v);
}

/// `infragraph sync scaleway` against `sim`, into the embedded store or, given, `db`.
fn sync(w: &Work, sim: &ScalewaySim, db: Option<&Neo4jConfig>) -> Ran {
    let mut cmd = w.cmd(&["sync", "scaleway", "--report", "report.json"]);
    cmd.env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", sim.organization_id());
    match db {
        Some(db) => to_bolt(&mut cmd, db),
        None => {
            cmd.args(["--store", &w.store()]);
        }
    }
    run(&mut cmd)
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

async fn graph_of(db: &Neo4jConfig) -> Graph {
    Neo4jSink::connect(db).await.expect("connect").graph().await
}

/// How many relationships of type `rel` the server holds, copies included.
async fn relationships(db: &Neo4jConfig, rel: &str) -> i64 {
    count(
        db,
        neo4rs::query(&format!("MATCH ()-[r:{rel}]->() RETURN count(r) AS c")),
    )
    .await
}

/// The `c` a counting query answers.
async fn count(db: &Neo4jConfig, q: neo4rs::Query) -> i64 {
    let mut rows = bolt::driver(db).await.execute(q).await.expect("a count");
    let row = rows.next().await.expect("a row").expect("a row");
    row.get::<i64>("c").expect("c")
}

#[tokio::test(flavor = "multi_thread")]
async fn scaleway_synced_into_bolt_equals_the_embedded_store() {
    let w = Work::new("neo4j-scaleway");
    let db = bolt::fresh_database("scaleway").await;
    let sim = ScalewaySim::start(ScalewayData::generate(2, 6));
    ok(&sync(&w, &sim, None));
    ok(&sync(&w, &sim, Some(&db)));
    let (local, server) = (w.graph(), graph_of(&db).await);
    assert!(server.nodes.len() > 50, "{} nodes", server.nodes.len());
    assert_eq!(local.normalized().lines(), server.normalized().lines());

    // A resync after changes: updates, and deletions by cleanup, agree too.
    sim.update(|d| {
        let gone = d.servers[0].id.clone();
        assert!(d.remove(&gone));
        let gone = d.users[0].id.clone();
        assert!(d.remove(&gone));
    });
    ok(&sync(&w, &sim, None));
    // This time the server comes from the config file, the password from the environment.
    let config = w.config(&format!(
        "[sink.neo4j]\nuri = {:?}\nuser = {:?}\ndatabase = {:?}\n",
        db.uri, db.user, db.database
    ));
    let mut cmd = w.cmd(&[
        "sync",
        "scaleway",
        "--config",
        &config,
        "--report",
        "report.json",
    ]);
    cmd.env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", sim.organization_id())
        .env("NEO4J_PASSWORD", &db.password);
    ok(&run(&mut cmd));
    let report = w.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(
        report["nodes"]["ScalewayInstance"]["deleted"], 1,
        "{report}"
    );
    let (local, server) = (w.graph(), graph_of(&db).await);
    assert_eq!(local.normalized().lines(), server.normalized().lines());

    // The run history is in the server too.
    let sink = Neo4jSink::connect(&db).await.expect("connect");
    let runs = sink.runs(10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.plugin == "scaleway" && r.status.to_string() == "succeeded")
    );
    let last: serde_json::Value = serde_json::from_str(&runs[0].report).expect("a JSON report");
    assert_eq!(last["nodes"]["ScalewayInstance"]["deleted"], 1);
    let mut cmd = w.cmd(&["runs", "--json"]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    ok(&ran);
    let reports: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
    assert_eq!(
        reports[0]["nodes"]["ScalewayInstance"]["deleted"], 1,
        "newest first"
    );
    assert_eq!(reports.as_array().map(Vec::len), Some(2));

    // With the server configured, every command uses it: the run history, and state
    // written then read back (once `state set` wrote to the server while `state get`
    // read the local file).
    let configured = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.args(["--config", &config])
            .env("NEO4J_PASSWORD", &db.password);
        cmd
    };
    let ran = run(&mut configured(&["runs"]));
    ok(&ran);
    assert_eq!(ran.stdout.matches("scaleway").count(), 2, "{}", ran.stdout);
    ok(&run(&mut configured(&[
        "state", "set", "probe", "scope-1", "cursor", "c0ffee",
    ])));
    let ran = run(&mut configured(&[
        "state", "get", "probe", "scope-1", "cursor",
    ]));
    ok(&ran);
    assert_eq!(ran.stdout.trim(), "c0ffee");
    let sink = Neo4jSink::connect(&db).await.expect("connect");
    let stored = infragraph_core::StateStore::get(&sink, "probe", "scope-1", "cursor").await;
    assert_eq!(stored.expect("state"), Some(vec![0xc0, 0xff, 0xee]));
    // An explicit store is that file, whatever the config says.
    let store = w.store();
    let ran = run(&mut configured(&[
        "state", "get", "probe", "scope-1", "cursor", "--store", &store,
    ]));
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("no state"), "{}", ran.stderr);
    // Two places at once is a mistake, said as such.
    let mut cmd = configured(&["runs", "--store", &store]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("pass one"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn push_into_an_empty_server_gives_the_same_graph() {
    let w = Work::new("neo4j-push");
    let sim = ScalewaySim::start(ScalewayData::generate(2, 4));
    ok(&sync(&w, &sim, None));
    // Nodes with an extra label too (`AcmeUser` is also a `UserAccount`).
    let acme = AcmeSim::start(AcmeData::sample(12, 3));
    ok(&w.acme(&acme, &["sync", "example", "--store", &w.store()]));
    let db = bolt::fresh_database("push").await;
    let store = w.store();
    let mut cmd = w.cmd(&["push", "--store", &store, "--batch-size", "7"]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    ok(&ran);
    let local = w.graph();
    assert!(
        ran.stdout.contains(&format!(
            "pushed {} nodes and {} relationships",
            local.nodes.len(),
            local.edges.len()
        )),
        "{}",
        ran.stdout
    );
    // Bookkeeping included: the very same update tags, sources and scopes; read back
    // through `infragraph export --neo4j`.
    let mut cmd = w.cmd(&["export", "--format", "jsonl"]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    ok(&ran);
    assert_eq!(local.lines(), Graph::from_jsonl(&ran.stdout).lines());
    // Pushed again, in other batches: every record is found and updated, none doubled.
    let mut cmd = w.cmd(&["push", "--store", &store, "--batch-size", "5"]);
    to_bolt(&mut cmd, &db);
    ok(&run(&mut cmd));
    let mut cmd = w.cmd(&["export", "--format", "jsonl"]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    ok(&ran);
    assert_eq!(local.lines(), Graph::from_jsonl(&ran.stdout).lines());
    assert_eq!(
        ran.stdout.lines().count(),
        local.nodes.len() + local.edges.len(),
        "a record written twice"
    );
    let mut cmd = w.cmd(&["export", "--format", "graphml"]);
    to_bolt(&mut cmd, &db);
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("jsonl only"), "{}", ran.stderr);
}

/// The library's transfer copies any graph into any other: a server pulled into a fresh
/// store and a store copied into another give the graph that was pushed, line for line;
/// a graph is never copied into itself; a source that is not there writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_copies_any_graph_into_any_other() {
    use infragraph_app::{Location, transfer};
    let w = Work::new("neo4j-transfer");
    let sim = ScalewaySim::start(ScalewayData::generate(2, 3));
    ok(&sync(&w, &sim, None));
    let local = w.graph();
    let store = Location::Store(w.store().into());
    let db = bolt::fresh_database("transfer").await;
    let server = Location::Neo4j(db.clone());
    let pushed = transfer(&store, &server, 5).await.expect("push");
    assert_eq!(pushed.nodes as usize, local.nodes.len());
    assert_eq!(pushed.relationships as usize, local.edges.len());

    let pulled = w.0.join("pulled.db");
    let got = transfer(&server, &Location::Store(pulled.clone()), 5)
        .await
        .expect("pull");
    assert_eq!(got.nodes as usize, local.nodes.len());
    assert_eq!(w.graph_of(&pulled.to_string_lossy()).lines(), local.lines());

    let copied = w.0.join("copied.db");
    transfer(&store, &Location::Store(copied.clone()), 5)
        .await
        .expect("copy");
    assert_eq!(w.graph_of(&copied.to_string_lossy()).lines(), local.lines());

    let err = transfer(&store, &store, 5).await.expect_err("into itself");
    assert!(err.to_string().contains("into itself"), "{err}");
    let missing = Location::Store(w.0.join("missing.db"));
    let before = w.graph_of(&copied.to_string_lossy()).lines();
    transfer(&missing, &Location::Store(copied.clone()), 5)
        .await
        .expect_err("no such store");
    assert_eq!(w.graph_of(&copied.to_string_lossy()).lines(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_address_or_password_fails_before_any_plugin_runs() {
    let w = Work::new("neo4j-refused");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut db = bolt::fresh_database("refused").await;
    let right = db.clone();

    db.uri = format!("bolt://127.0.0.1:{closed}");
    let ran = sync(&w, &sim, Some(&db));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains(&db.uri), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("is the server running"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("password"), "{}", ran.stderr);

    db = right.clone();
    db.password = "not-the-password".into();
    let ran = sync(&w, &sim, Some(&db));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("wrong user or password"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("NEO4J_PASSWORD"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains(&db.password),
        "the password is never printed"
    );

    db = right.clone();
    db.database = "no_such_database".into();
    let ran = sync(&w, &sim, Some(&db));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("--neo4j-database"), "{}", ran.stderr);

    assert_eq!(sim.total_requests(), 0, "no plugin ran");

    // And the password never comes from the config file.
    let config = w.config("[sink.neo4j]\nuri = \"bolt://127.0.0.1:1\"\npassword = \"x\"\n");
    let ran = run(&mut w.cmd(&["sync", "scaleway", "--config", &config]));
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("NEO4J_PASSWORD"), "{}", ran.stderr);
}

/// A schema of one label with one property and one relationship type on it.
/// A new run of the `faults` plugin over scope `s`, with a tag from `sink`.
async fn faults_run(sink: &Neo4jSink) -> WriteScope {
    WriteScope {
        plugin: "faults".into(),
        scope: "s".into(),
        update_tag: sink.next_update_tag().await.expect("tag"),
    }
}

fn manifest() -> Manifest {
    serde_json::from_value(json!({
        "name": "faults", "version": "1.0.0", "description": "", "hosts": [],
        "credentials": [], "config": [],
        "schema": {
            "nodes": [{"label": "FaultNode", "description": "", "extra_labels": [], "properties": [
                {"name": "payload", "type": "text", "description": "", "indexed": false}]}],
            "edges": [{"rel_type": "NEXT", "description": "", "from": "FaultNode", "to": "FaultNode",
                       "properties": []}]
        }
    }))
    .expect("a valid manifest")
}

fn nodes(ids: impl Iterator<Item = usize>) -> NodeBatch {
    NodeBatch {
        label: "FaultNode".into(),
        columns: vec!["payload".into()],
        rows: ids
            .map(|i| NodeRow {
                id: format!("n{i}").into(),
                values: vec![Value::Text(format!("{i:0>60}").into())],
            })
            .collect(),
    }
}

fn chain(n: usize) -> EdgeBatch {
    EdgeBatch {
        rel_type: "NEXT".into(),
        from_label: "FaultNode".into(),
        from_key: "id".into(),
        to_label: "FaultNode".into(),
        to_key: "id".into(),
        columns: vec![],
        rows: (1..n)
            .map(|i| EdgeRow {
                from: format!("n{}", i - 1).into(),
                to: format!("n{i}").into(),
                values: vec![],
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_mid_batch_is_retried_and_nothing_is_lost_or_duplicated() {
    const N: usize = 3_000;
    let proxy = Proxy::start().await;
    let mut db = bolt::fresh_database("dropped").await;
    db.uri = proxy.uri();
    let sink = Neo4jSink::connect(&db)
        .await
        .expect("connect through the proxy");
    sink.prepare(&manifest()).await.expect("prepare");
    let w = faults_run(&sink).await;
    // A batch is about 100 bytes a row: the first two connections to send one are cut
    // after 20 kB of it.
    proxy.cut(2, 20_000);
    sink.write_nodes(&w, &[], &nodes(0..N))
        .await
        .expect("nodes written in the end");
    assert_eq!(proxy.cut_count(), 2, "the batch was cut twice");
    proxy.cut(1, 20_000);
    let unresolved = sink
        .write_edges(&w, &chain(N))
        .await
        .expect("edges written in the end");
    assert_eq!(unresolved, 0);
    assert_eq!(proxy.cut_count(), 3);
    assert!(sink.retries() >= 3, "{} retries", sink.retries());

    let g = sink.graph().await;
    assert_eq!(g.count("FaultNode"), N, "every node, once");
    assert_eq!(g.edges_of("NEXT"), N - 1, "every relationship, once");
    let tags: BTreeSet<_> = g
        .nodes
        .values()
        .map(|(_, p)| p["firstseen"].as_i64())
        .collect();
    assert_eq!(tags, BTreeSet::from([Some(w.update_tag)]));
    // A graph server keeps what it applied of a run that then fails.
    let c = sink.discard(&w).await.expect("counts");
    assert_eq!(c.nodes["FaultNode"].created, N as u64);

    // A batch that keeps failing fails, as transient, after a bounded number of attempts
    // (the engine then fails the plugin's sync, deleting nothing).
    proxy.cut(1_000, 1_000);
    let e = sink
        .write_nodes(&w, &[], &nodes(N..2 * N))
        .await
        .expect_err("every attempt is cut");
    assert!(e.transient, "{e}");
    proxy.cut(0, 0);
    assert_eq!(
        sink.graph().await.count("FaultNode"),
        N,
        "nothing half-written"
    );
}

/// A failure that will not go away is not retried: a uniqueness constraint the operator
/// added beside the sink's, broken by a batch, fails that batch at the first attempt
/// (the sink is the only layer that retries, and only what is transient).
#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_constraint_violation_fails_at_once() {
    let db = bolt::fresh_database("permanent").await;
    let sink = Neo4jSink::connect(&db).await.expect("connect");
    sink.prepare(&manifest()).await.expect("prepare");
    bolt::driver(&db)
        .await
        .run(neo4rs::query(
            "CREATE CONSTRAINT faults_payload IF NOT EXISTS \
             FOR (n:FaultNode) REQUIRE n.payload IS UNIQUE",
        ))
        .await
        .expect("the operator's constraint");
    let w = faults_run(&sink).await;
    let mut batch = nodes(0..2);
    for row in &mut batch.rows {
        row.values = vec![Value::Text("the same payload".into())];
    }
    let e = sink
        .write_nodes(&w, &[], &batch)
        .await
        .expect_err("two nodes with one payload break the constraint");
    assert!(!e.transient, "{e}");
    assert!(e.what.contains("ConstraintValidationFailed"), "{e}");
    assert_eq!(sink.retries(), 0, "one attempt: {e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_of_the_same_nodes_lose_and_duplicate_nothing() {
    const N: usize = 2_000;
    let db = bolt::fresh_database("concurrent").await;
    let (a, b) = (
        Neo4jSink::connect(&db).await.expect("connect"),
        Neo4jSink::connect(&db).await.expect("connect"),
    );
    for s in [&a, &b] {
        s.prepare(&manifest()).await.expect("prepare");
    }
    let w = faults_run(&a).await;
    // Both write every node, in batches of 100, one forwards and one backwards: the two
    // transactions in flight touch the same nodes whenever their batches cross.
    let forwards = async {
        for start in (0..N).step_by(100) {
            a.write_nodes(&w, &[], &nodes(start..start + 100)).await?;
        }
        a.write_edges(&w, &chain(N)).await
    };
    let backwards = async {
        for start in (0..N).step_by(100).rev() {
            b.write_nodes(&w, &[], &nodes(start..start + 100)).await?;
        }
        b.write_edges(&w, &chain(N)).await
    };
    let (x, y) = tokio::join!(forwards, backwards);
    x.expect("forwards");
    y.expect("backwards");
    eprintln!(
        "transient failures retried: {} and {}",
        a.retries(),
        b.retries()
    );
    let g = a.graph().await;
    assert_eq!(g.count("FaultNode"), N);
    assert_eq!(relationships(&db, "NEXT").await, N as i64 - 1, "no copies");
}

/// A relationship is written once however it comes: a batch that repeats a pair, a pair
/// written again in a later batch, and two copies already in the graph (two writers that
/// created it at the same instant) become one.
#[tokio::test(flavor = "multi_thread")]
async fn a_relationship_is_one_however_often_it_is_written() {
    let db = bolt::fresh_database("once").await;
    let sink = Neo4jSink::connect(&db).await.expect("connect");
    sink.prepare(&manifest()).await.expect("prepare");
    let w = faults_run(&sink).await;
    sink.write_nodes(&w, &[], &nodes(0..4))
        .await
        .expect("nodes");
    let mut repeated = chain(3);
    repeated.rows.push(repeated.rows[0].clone());
    assert_eq!(sink.write_edges(&w, &repeated).await.expect("edges"), 0);
    assert_eq!(sink.write_edges(&w, &chain(3)).await.expect("again"), 0);
    assert_eq!(relationships(&db, "NEXT").await, 2);

    bolt::driver(&db)
        .await
        .run(neo4rs::query(
            "MATCH (a:FaultNode {id: 'n2'}), (b:FaultNode {id: 'n3'}) \
             CREATE (a)-[:NEXT {`_source`: 'faults', `_scope`: 's', lastupdated: 0}]->(b), \
             (a)-[:NEXT {`_source`: 'faults', `_scope`: 's', lastupdated: 0}]->(b)",
        ))
        .await
        .expect("two copies");
    assert_eq!(relationships(&db, "NEXT").await, 4);
    assert_eq!(sink.write_edges(&w, &chain(4)).await.expect("edges"), 0);
    assert_eq!(relationships(&db, "NEXT").await, 3, "one of each pair");
    for props in sink.graph().await.edges.values() {
        assert_eq!(props["lastupdated"], w.update_tag, "{props:?}");
    }
}

/// What the engine has the sink do while a plugin fetches: the server plans every
/// statement a first sync of the plugin can send (a label with extra labels takes two),
/// accepts each, and nothing is written; each text is explained once per sink.
#[tokio::test(flavor = "multi_thread")]
async fn statements_explained_ahead_write_nothing_and_are_explained_once() {
    let db = bolt::fresh_database("ahead").await;
    let sink = Neo4jSink::connect(&db).await.expect("connect");
    let m: Manifest = serde_json::from_value(json!({
        "name": "ahead", "version": "1.0.0", "description": "", "hosts": [],
        "credentials": [], "config": [],
        "schema": {
            "nodes": [
                {"label": "AheadOrg", "description": "", "extra_labels": [], "properties": []},
                {"label": "AheadVm", "description": "", "extra_labels": ["AheadAsset"], "properties": [
                    {"name": "name", "type": "text", "description": "", "indexed": true}]}
            ],
            "edges": [
                {"rel_type": "RESOURCE", "description": "", "from": "AheadOrg", "to": "AheadVm",
                 "properties": []},
                {"rel_type": "PEERS_WITH", "description": "", "from": "AheadVm", "to": "AheadVm",
                 "properties": [{"name": "since", "type": "int", "description": "", "indexed": false}]}
            ]
        }
    }))
    .expect("a valid manifest");
    sink.prepare(&m).await.expect("prepare");
    let before = sink.graph().await;
    // Nodes: 1 + 2 (extra labels); relationships: 2 kinds from either end; the survey:
    // 2 labels and 2 (type, start label) pairs.
    let stopped = AtomicBool::new(true);
    assert_eq!(sink.explain_ahead(&m, &stopped).await.expect("stopped"), 0);
    // The stopped call took none as explained.
    let go_on = AtomicBool::new(false);
    let planned = sink.explain_ahead(&m, &go_on).await;
    assert_eq!(planned.expect("every text planned"), 11);
    let again = sink.explain_ahead(&m, &go_on).await;
    assert_eq!(again.expect("again"), 0, "once");
    let after = sink.graph().await;
    assert_eq!(after.nodes.len(), before.nodes.len(), "no node written");
    assert_eq!(
        after.edges.len(),
        before.edges.len(),
        "no relationship written"
    );
    assert_eq!(after.count("AheadVm"), 0);
}

/// `infragraph query` answers the same from a Neo4j server as from the embedded store,
/// given the same graph: nodes with filters, neighbours by direction and type, paths.
#[tokio::test(flavor = "multi_thread")]
async fn queries_answer_the_same_from_either_sink() {
    const HOMER: &str = "b49932b2-2faa-4c56-905e-ffac52f063dc";
    const ADMINS: &str = "1f767996-f6f6-4b0e-a7b1-6a255e809ed6";
    const PUBLIC_IP: &str = "7b37f45d-9871-4ae6-bd5a-a926102fb5c9";
    const SNAPSHOT: &str = "7c689d68-94a7-4498-9a87-d83077859519";
    let w = Work::new("neo4j-query");
    let db = bolt::fresh_database("query").await;
    let sim = ScalewaySim::start(ScalewayData::sample());
    ok(&sync(&w, &sim, None));
    ok(&sync(&w, &sim, Some(&db)));
    let store = w.store();
    let queries: &[&[&str]] = &[
        &["nodes", "ScalewayUser"],
        &["nodes", "ScalewayInstance", "--where", "zone=fr-par-1"],
        &["nodes", "ScalewayInstance", "--where", "tags=demo"],
        &["nodes", "ScalewayUser", "--where", &format!("id={HOMER}")],
        &["nodes", "ScalewayUser", "--limit", "1"],
        &["neighbours", "ScalewayUser", HOMER],
        &[
            "neighbours",
            "ScalewayUser",
            HOMER,
            "--direction",
            "out",
            "--type",
            "MEMBER_OF",
        ],
        &["neighbours", "ScalewayGroup", ADMINS, "--direction", "in"],
        &["path", "ScalewayUser", HOMER, "ScalewayGroup", ADMINS],
        &[
            "path",
            "ScalewayFlexibleIp",
            PUBLIC_IP,
            "ScalewayVolumeSnapshot",
            SNAPSHOT,
            "--direction",
            "out",
        ],
        &[
            "path",
            "ScalewayVolumeSnapshot",
            SNAPSHOT,
            "ScalewayFlexibleIp",
            PUBLIC_IP,
            "--direction",
            "out",
        ],
    ];
    let sorted = |text: &str| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        lines.join("\n")
    };
    for q in queries {
        let mut args = vec!["query"];
        args.extend_from_slice(q);
        let local = run(w.cmd(&args).args(["--store", &store]));
        ok(&local);
        let mut cmd = w.cmd(&args);
        to_bolt(&mut cmd, &db);
        let server = run(&mut cmd);
        ok(&server);
        assert!(!local.stdout.trim().is_empty(), "{q:?} answers something");
        assert_eq!(sorted(&local.stdout), sorted(&server.stdout), "{q:?}");
    }

    // A node that is not there is an error from either, naming it.
    for to_server in [false, true] {
        let mut cmd = w.cmd(&["query", "neighbours", "ScalewayUser", "nobody"]);
        if to_server {
            to_bolt(&mut cmd, &db);
        } else {
            cmd.args(["--store", &store]);
        }
        let ran = run(&mut cmd);
        assert_eq!(ran.code, 2, "{}", ran.stdout);
        assert!(
            ran.stderr
                .contains("no ScalewayUser node with id \"nobody\""),
            "{}",
            ran.stderr
        );
    }

    // Many nodes' neighbours at once (how the access walk reads a frontier) equal each
    // node's own, in order, from either sink; a node that is not there adds nothing.
    use infragraph_core::{Direction, GraphReader};
    let local = infragraph_sink_sqlite::Store::open_existing(&store).unwrap();
    let server = Neo4jSink::connect(&db).await.unwrap();
    let nodes: Vec<(String, String)> = [
        ("ScalewayUser", HOMER),
        ("ScalewayGroup", ADMINS),
        ("ScalewayUser", "nobody"),
        ("ScalewayFlexibleIp", PUBLIC_IP),
    ]
    .iter()
    .map(|(l, i)| (l.to_string(), i.to_string()))
    .collect();
    for (direction, types) in [
        (Direction::Both, vec![]),
        (Direction::In, vec!["MEMBER_OF".to_string()]),
        (
            Direction::Out,
            vec!["HAS".to_string(), "IDENTIFIES".to_string()],
        ),
    ] {
        let mut one_by_one = Vec::new();
        for (i, (l, id)) in nodes.iter().enumerate() {
            if id == "nobody" {
                continue;
            }
            for (e, n) in GraphReader::neighbours(&local, l, id, direction, &types)
                .await
                .unwrap()
            {
                one_by_one.push((i, e.rel_type, e.from, e.to, n.label, n.id, e.props));
            }
        }
        assert!(!one_by_one.is_empty(), "{direction:?} {types:?}");
        let flat = |rows: Vec<(
            usize,
            infragraph_core::StoredEdge,
            infragraph_core::StoredNode,
        )>| {
            rows.into_iter()
                .map(|(i, e, n)| (i, e.rel_type, e.from, e.to, n.label, n.id, e.props))
                .collect::<Vec<_>>()
        };
        let many_local = flat(
            GraphReader::neighbours_of_many(&local, &nodes, direction, &types)
                .await
                .unwrap(),
        );
        let many_server = flat(
            server
                .neighbours_of_many(&nodes, direction, &types)
                .await
                .unwrap(),
        );
        // Each sink orders one node's rows its own way (as `neighbours` does): compare
        // them as sets, grouped by node either way.
        let set = |rows: &Vec<_>| {
            format!(
                "{:?}",
                rows.iter()
                    .map(|r| format!("{r:?}"))
                    .collect::<BTreeSet<_>>()
            )
        };
        assert_eq!(many_local, one_by_one, "store, {direction:?} {types:?}");
        assert_eq!(
            set(&many_server),
            set(&one_by_one),
            "server, {direction:?} {types:?}"
        );
    }
}

/// How many records of `pattern` (binding `x`) the run of `tag` wrote: changed
/// (`lastupdated`) or written as they were (`_seen`, kept only when later).
async fn written_by(db: &Neo4jConfig, pattern: &str, tag: i64) -> i64 {
    let q = format!(
        "MATCH {pattern} WHERE coalesce(x.`_seen`, x.`lastupdated`) = $tag RETURN count(x) AS c"
    );
    count(db, neo4rs::query(&q).param("tag", tag)).await
}

/// A resync that emits records as they are writes none of them (issue 21): the sink reads
/// what the scope holds and writes only what changed, and cleanup still deletes what the
/// run did not emit. Each run on a connection of its own, as separate processes would;
/// the first, of a scope never synced, reads nothing and writes everything.
#[tokio::test(flavor = "multi_thread")]
async fn a_resync_writes_only_what_changed_and_still_cleans_up() {
    let db = bolt::fresh_database("unchanged").await;
    let state = std::collections::BTreeMap::new();
    let run = |nodes: Vec<NodeBatch>, edges: EdgeBatch| {
        let (db, state) = (db.clone(), &state);
        async move {
            let sink = Neo4jSink::connect(&db).await.expect("connect");
            sink.prepare(&manifest()).await.expect("prepare");
            let w = faults_run(&sink).await;
            for b in &nodes {
                sink.write_nodes(&w, &[], b).await.expect("nodes");
            }
            assert_eq!(sink.write_edges(&w, &edges).await.expect("edges"), 0);
            let p = infragraph_core::Publish {
                cleanup: Some(&[]),
                state,
                state_plugin: "faults",
                cleanup_batch: 7,
            };
            let counts = sink.publish(&w, &p).await.expect("publish");
            // As the engine does: a scope with no run recorded is read for nothing.
            sink.record_run(&infragraph_core::RunRecord {
                plugin: w.plugin.clone(),
                scope: Some(w.scope.clone()),
                update_tag: w.update_tag,
                status: infragraph_core::RunStatus::Succeeded,
                started_at: "2026-12-06T00:00:00Z".into(),
                finished_at: "2026-12-06T00:00:01Z".into(),
                report: "{}".into(),
            })
            .await
            .expect("record the run");
            (w.update_tag, counts, sink.graph().await)
        }
    };
    let (first, _, _) = run(vec![nodes(0..60), nodes(60..100)], chain(100)).await;

    // n99 and its relationship gone, n5 changed, the rest as it was.
    let mut changed = nodes(0..99);
    changed.rows[5].values = vec![Value::Text("new".into())];
    let (second, counts, g) = run(vec![changed.clone()], chain(99)).await;
    assert_eq!(written_by(&db, "(x:FaultNode)", second).await, 1, "n5 only");
    assert_eq!(written_by(&db, "()-[x:NEXT]->()", second).await, 0);
    let n = &counts.nodes["FaultNode"];
    assert_eq!(
        (n.created, n.updated, n.unchanged, n.deleted),
        (0, 99, 98, 1)
    );
    let e = &counts.edges["NEXT"];
    assert_eq!(
        (e.created, e.updated, e.unchanged, e.deleted),
        (0, 98, 98, 1)
    );
    assert!(!g.has("FaultNode", "n99"));
    assert_eq!(g.node("FaultNode", "n5")["payload"], "new");
    assert_eq!(g.node("FaultNode", "n5")["lastupdated"], second);
    assert_eq!(g.node("FaultNode", "n6")["lastupdated"], first);
    assert_eq!(relationships(&db, "NEXT").await, 98);

    // A node written before digests (none stored), which the next run does not emit.
    bolt::driver(&db)
        .await
        .run(neo4rs::query(
            "CREATE (:FaultNode {id: 'old', payload: 'x', firstseen: 1, lastupdated: 1, \
             `_source`: 'faults', `_scope`: 's'})",
        ))
        .await
        .expect("a node of an earlier version");

    // Again, with nothing changed and n0 gone: nothing written; n0, n0->n1 and the old
    // node deleted.
    let mut rest = changed;
    rest.rows.remove(0);
    let mut edges = chain(99);
    edges.rows.remove(0);
    let (third, counts, g) = run(vec![rest], edges).await;
    assert_eq!(written_by(&db, "(x:FaultNode)", third).await, 0);
    assert_eq!(written_by(&db, "()-[x:NEXT]->()", third).await, 0);
    assert_eq!(counts.nodes["FaultNode"].deleted, 2);
    assert_eq!(counts.edges["NEXT"].deleted, 1);
    assert!(!g.has("FaultNode", "old"));
    assert_eq!(g.nodes.len(), 98);
    assert_eq!(relationships(&db, "NEXT").await, 97);
}

/// Sharding as the README deploys it, into one graph server: two jobs (`--shard 1/2`,
/// `--shard 2/2`) and a third syncing every connection (a job retried while the first
/// still runs) write at once. Each scope's lease lets one run at a time write it: a run
/// that finds its scope taken fails saying by whom, every connection is synced by one of
/// the jobs, and the server holds every user once.
#[tokio::test(flavor = "multi_thread")]
async fn sharded_jobs_and_an_overlapping_one_write_one_server_with_nothing_lost_or_twice() {
    let db = bolt::fresh_database("shards").await;
    let w = Work::new("neo4j-shards");
    let (names, sims, config) = teams_in_two_shards(&w);
    for sim in &sims {
        // Long enough for the jobs' runs of one connection to overlap.
        sim.set_latency(std::time::Duration::from_millis(300));
    }
    let spawn = |shard: Option<&str>| {
        let mut cmd = w.cmd(&["--config", &config, "sync", "--json"]);
        if let Some(shard) = shard {
            cmd.args(["--shard", shard]);
        }
        to_bolt(&mut cmd, &db);
        cmd.env("TOKEN", AcmeSim::TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("infragraph runs")
    };
    let jobs = [spawn(Some("1/2")), spawn(Some("2/2")), spawn(None)];
    let mut succeeded = BTreeSet::new();
    let mut refused = 0;
    for job in jobs {
        let ran: Ran = job.wait_with_output().expect("it ends").into();
        let reports: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("sync --json: {e}\n{}\n{}", ran.stdout, ran.stderr));
        for r in &reports {
            let connection = r["connection"].as_str().unwrap_or_default().to_string();
            match r["status"].as_str() {
                Some("succeeded") => {
                    succeeded.insert(connection);
                }
                _ => {
                    let errors = r["errors"].to_string();
                    assert!(
                        errors.contains("is being synced by"),
                        "{connection} failed only for want of its lease: {errors}"
                    );
                    refused += 1;
                }
            }
        }
    }
    let expected: BTreeSet<String> = names.iter().map(|n| format!("example/{n}")).collect();
    assert_eq!(
        succeeded, expected,
        "every connection synced by one job or more"
    );
    // Every connection is in two jobs started together, and takes 300 ms a round.
    assert!(refused > 0, "the jobs overlapped");
    let users = (0..names.len()).map(|i| 3 + i as i64).sum::<i64>();
    let nodes = count(
        &db,
        neo4rs::query("MATCH (n:AcmeUser) RETURN count(n) AS c"),
    )
    .await;
    let ids = count(
        &db,
        neo4rs::query("MATCH (n:AcmeUser) RETURN count(DISTINCT n.id) AS c"),
    )
    .await;
    assert_eq!((nodes, ids), (users, users), "every user, once");
}
