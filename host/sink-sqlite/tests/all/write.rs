//! Upserts, edges, tags, state, run history and concurrent writers.

use std::collections::BTreeMap;
use std::sync::Arc;

use infragraph_core::{
    EdgeRow, GraphSink, Manifest, NodeKind, PropertyDef, RunRecord, RunStatus, Schema, StateStore,
    Value, ValueType,
};
use serde_json::json;

use crate::*;

#[tokio::test]
async fn upsert_keeps_firstseen_moves_lastupdated_and_null_removes_a_property() {
    let (_dir, s) = store();
    let extra = vec!["UserAccount".to_string()];
    let first = node_batch(
        "DemoUser",
        &["email", "age", "nick"],
        vec![("u1", vec![text("a@x"), Value::Int(30), text("al")])],
    );
    s.write_nodes(&scope("demo", "org1", 10), &extra, &first)
        .await
        .unwrap();
    publish(&s, &scope("demo", "org1", 10), None).await;
    // Second run: email changes, age is nulled, nick is not mentioned at all.
    let second = node_batch(
        "DemoUser",
        &["email", "age"],
        vec![
            ("u1", vec![text("b@x"), Value::Null]),
            ("u2", vec![text("c@x"), Value::Null]),
        ],
    );
    s.write_nodes(&scope("demo", "org1", 20), &extra, &second)
        .await
        .unwrap();
    let changes = publish(&s, &scope("demo", "org1", 20), None).await;

    let nodes = s.nodes("DemoUser", &[("id", "u1")], 0).unwrap();
    assert_eq!(nodes.len(), 1);
    let u1 = &nodes[0];
    assert_eq!((u1.firstseen, u1.lastupdated), (10, 20));
    assert_eq!(
        u1.props,
        json!({"email": "b@x", "nick": "al"})
            .as_object()
            .unwrap()
            .clone()
    );
    assert_eq!(u1.extra_labels, extra);
    assert_eq!((u1.source.as_str(), u1.scope.as_str()), ("demo", "org1"));
    // A new node never stores the nulls it was written with.
    let u2 = &s.nodes("DemoUser", &[("id", "u2")], 0).unwrap()[0];
    assert_eq!(
        u2.props,
        json!({"email": "c@x"}).as_object().unwrap().clone()
    );
    assert_eq!((u2.firstseen, u2.lastupdated), (20, 20));

    let c = &changes.nodes["DemoUser"];
    assert_eq!((c.created, c.updated), (1, 1));
    // Another plugin or scope sees none of it.
    assert!(
        publish(&s, &scope("demo", "org2", 20), None)
            .await
            .nodes
            .is_empty()
    );
}

#[tokio::test]
async fn edges_resolve_by_id_and_by_other_keys_and_count_unresolved() {
    let (_dir, s) = store();
    let w = scope("demo", "org1", 5);
    let users = node_batch(
        "DemoUser",
        &["email"],
        vec![
            ("u1", vec![text("a@x")]),
            ("u2", vec![text("shared@x")]),
            ("u3", vec![text("shared@x")]),
        ],
    );
    s.write_nodes(&w, &[], &users).await.unwrap();
    put_nodes(&s, &w, "DemoGroup", &["g1", "g2"]).await;

    // By email: "shared@x" names two users, and the edge links both; "nobody@x" and
    // group "g9" do not exist.
    let mut b = edge_batch(
        "MEMBER_OF",
        ("DemoUser", "email"),
        ("DemoGroup", "id"),
        &[
            ("a@x", "g1"),
            ("shared@x", "g2"),
            ("nobody@x", "g1"),
            ("a@x", "g9"),
        ],
    );
    b.columns = vec!["since".into()];
    for row in &mut b.rows {
        row.values = vec![Value::Int(2020)];
    }
    // Counted as written (a run alone on the store) or when the run publishes.
    let now = s.write_edges(&w, &b).await.unwrap();
    let first = publish(&s, &w, None).await;
    assert_eq!(now + first.edges["MEMBER_OF"].unresolved, 2);
    assert_eq!(first.edges["MEMBER_OF"].created, 3);
    assert_eq!(
        edge_ids(&s),
        set([
            triple("u1", "MEMBER_OF", "g1"),
            triple("u2", "MEMBER_OF", "g2"),
            triple("u3", "MEMBER_OF", "g2"),
        ])
    );

    // Merged by (type, start, end): writing again updates instead of duplicating, and a
    // null removes the edge property.
    let w2 = scope("demo", "org1", 6);
    b.rows = vec![EdgeRow {
        from: "a@x".into(),
        to: "g1".into(),
        values: vec![Value::Null],
    }];
    assert_eq!(s.write_edges(&w2, &b).await.unwrap(), 0);
    let changes = publish(&s, &w2, None).await;
    let out = s
        .neighbours(
            "DemoUser",
            "u1",
            infragraph_sink_sqlite::Direction::Out,
            &["MEMBER_OF"],
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    let (e, g) = &out[0];
    assert_eq!((e.firstseen, e.lastupdated), (5, 6));
    assert!(e.props.is_empty(), "{:?}", e.props);
    assert_eq!(g.id, "g1");
    assert_eq!(changes.edges["MEMBER_OF"].updated, 1);
}

#[tokio::test]
async fn prepare_creates_property_indexes_that_lookups_use() {
    let (dir, s) = store();
    let prop = |name: &str, indexed| PropertyDef {
        name: name.into(),
        ty: ValueType::Text,
        description: String::new(),
        indexed,
    };
    let manifest = Manifest {
        name: "demo".into(),
        version: "1.0.0".into(),
        description: String::new(),
        schema: Schema {
            nodes: vec![NodeKind {
                label: "DemoUser".into(),
                description: String::new(),
                extra_labels: vec![],
                properties: vec![prop("email", true), prop("nick", false)],
            }],
            edges: vec![],
        },
        hosts: vec![],
        credentials: vec![],
        config: vec![],
    };
    s.prepare(&manifest).await.unwrap();
    s.prepare(&manifest).await.unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("graph.db")).unwrap();
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT nid FROM nodes \
             WHERE label = 'DemoUser' AND json_extract(props, '$.email') = 'a@x'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("nodes_DemoUser_email"), "{plan}");
}

#[tokio::test]
async fn update_tags_increase_strictly_and_survive_reopening() {
    let (dir, s) = store();
    let mut last = 0;
    for _ in 0..500 {
        let tag = s.next_update_tag().await.unwrap();
        assert!(tag > last, "{tag} after {last}");
        last = tag;
    }
    drop(s);
    let s = Store::open(dir.path().join("graph.db")).unwrap();
    assert!(s.next_update_tag().await.unwrap() > last);
}

#[tokio::test]
async fn state_is_committed_per_plugin_and_scope() {
    let (_dir, s) = store();
    let writes = BTreeMap::from([
        ("cursor".to_string(), Some(b"page-2".to_vec())),
        ("empty".to_string(), Some(vec![])),
        ("gone".to_string(), None),
    ]);
    s.commit_state("demo", "org1", &writes).await.unwrap();
    assert_eq!(
        s.get("demo", "org1", "cursor").await.unwrap(),
        Some(b"page-2".to_vec())
    );
    assert_eq!(s.get("demo", "org1", "empty").await.unwrap(), Some(vec![]));
    assert_eq!(s.get("demo", "org1", "gone").await.unwrap(), None);
    assert_eq!(s.get("demo", "org2", "cursor").await.unwrap(), None);
    assert_eq!(s.get("other", "org1", "cursor").await.unwrap(), None);
    let delete = BTreeMap::from([("cursor".to_string(), None)]);
    s.commit_state("demo", "org1", &delete).await.unwrap();
    assert_eq!(s.get("demo", "org1", "cursor").await.unwrap(), None);
}

#[tokio::test]
async fn run_history_lists_newest_first() {
    let (_dir, s) = store();
    for (i, status) in [RunStatus::Succeeded, RunStatus::Partial, RunStatus::Failed]
        .into_iter()
        .enumerate()
    {
        let run = RunRecord {
            plugin: "demo".into(),
            scope: (i != 1).then(|| "org1".to_string()),
            update_tag: i as i64,
            status,
            started_at: format!("2026-01-0{}T00:00:00Z", i + 1),
            finished_at: format!("2026-01-0{}T00:01:00Z", i + 1),
            report: format!(r#"{{"run":{i}}}"#),
        };
        s.record_run(&run).await.unwrap();
    }
    let runs = s.runs(2).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].update_tag, runs[0].status), (2, RunStatus::Failed));
    assert_eq!(
        (runs[1].update_tag, runs[1].status, runs[1].scope.as_deref()),
        (1, RunStatus::Partial, None)
    );
    assert_eq!(runs[1].report, r#"{"run":1}"#);
    assert_eq!(s.runs(0).unwrap().len(), 3);
}

/// Two plugins writing through one store from tasks on different threads: every batch
/// lands, none interferes with the other's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_disturb_each_other() {
    let (_dir, s) = store();
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for (plugin, label) in [("alpha", "AlphaThing"), ("beta", "BetaThing")] {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let w = scope(plugin, "org", s.next_update_tag().await.unwrap());
            for b in 0..20 {
                let rows = (0..250)
                    .map(|i| (format!("{b}-{i}"), vec![Value::Int(i)]))
                    .collect::<Vec<_>>();
                let rows = rows
                    .iter()
                    .map(|(id, v)| (id.as_str(), v.clone()))
                    .collect();
                s.write_nodes(&w, &[], &node_batch(label, &["n"], rows))
                    .await
                    .unwrap();
                let links: Vec<(String, String)> = (1..250)
                    .map(|i| (format!("{b}-0"), format!("{b}-{i}")))
                    .collect();
                let links: Vec<(&str, &str)> = links
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                assert_eq!(put_edges(&s, &w, "LINKS", label, label, &links).await, 0);
                tokio::task::yield_now().await;
            }
            publish(&s, &w, Some(&[])).await
        }));
    }
    for t in tasks {
        let changes = t.await.unwrap();
        let (label, nodes) = changes.nodes.into_iter().next().unwrap();
        assert_eq!(nodes.created, 5000, "{label}");
        assert_eq!(changes.edges["LINKS"].created, 20 * 249, "{label}");
    }
    let stats = s.stats().unwrap();
    assert_eq!(
        stats.nodes,
        BTreeMap::from([("AlphaThing".into(), 5000), ("BetaThing".into(), 5000)])
    );
    assert_eq!(stats.edges["LINKS"], 2 * 20 * 249);
}

/// A run alone on the store writes directly and holds the write lock until it publishes;
/// another process's run must still get its tag and be told at once that the lease of the
/// same scope is held, rather than wait for the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_store_is_told_at_once_while_a_run_writes_directly() {
    use infragraph_core::Holder;
    let (dir, s) = store();
    let manifest: Manifest = serde_json::from_value(json!({
        "name": "demo", "version": "1.0.0", "description": "", "hosts": [],
        "credentials": [], "config": [],
        "schema": {"nodes": [{"label": "DemoUser", "description": "", "extra_labels": [],
                               "properties": []}], "edges": []}
    }))
    .unwrap();
    s.prepare(&manifest).await.unwrap();
    let w = scope("demo", "org", s.next_update_tag().await.unwrap());
    let first = Holder::this_process("2026-12-05T00:00:00Z");
    s.lease(&w, &first, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    put_nodes(&s, &w, "DemoUser", &["u1"]).await;

    let other = Store::open(dir.path().join("graph.db")).unwrap();
    other.prepare(&manifest).await.unwrap();
    let tag = other.next_update_tag().await.unwrap();
    assert!(tag > w.update_tag);
    let second = Holder {
        token: "second".into(),
        ..first.clone()
    };
    let w2 = scope("demo", "org", tag);
    let e = other
        .lease(&w2, &second, std::time::Duration::from_secs(60))
        .await
        .expect_err("held");
    // (A store that waited for the lock would wait here until the first run published,
    // below, and then take the lease.)
    assert!(e.held, "{e}");
    publish(&s, &w, Some(&[])).await;
}

/// A command starting several runs says so first: its first run to write must not take
/// itself for the only one and hold the write lock for its whole run (it did when the
/// others had not taken their tags yet, and a hung plugin then kept every other run from
/// publishing). Here the first run writes and then waits; the second publishes and is
/// recorded meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_of_several_runs_starting_does_not_hold_the_store_for_its_whole_run() {
    let (_dir, s) = store();
    let s = Arc::new(s);
    s.runs_starting(2);
    let first = scope("first", "org", s.next_update_tag().await.unwrap());
    put_nodes(&s, &first, "FirstThing", &["a1"]).await;

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let s = s.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap();
            rt.block_on(async {
                let second = scope("second", "org", s.next_update_tag().await.unwrap());
                put_nodes(&s, &second, "SecondThing", &["b1"]).await;
                let changes = publish(&s, &second, Some(&[])).await;
                s.record_run(&record(&second)).await.unwrap();
                done_tx.send(changes).unwrap();
            })
        });
    }
    // Waiting for the first run would take SQLite's busy timeout, ten minutes: a minute
    // without an answer is the failure.
    let changes = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the second run published while the first was still running");
    assert_eq!(changes.nodes["SecondThing"].created, 1);
    assert_eq!(s.stats().unwrap().nodes.get("FirstThing"), None);
    let changes = publish(&s, &first, Some(&[])).await;
    assert_eq!(changes.nodes["FirstThing"].created, 1);
    s.record_run(&record(&first)).await.unwrap();
    s.runs_ended(2);
    assert_eq!(s.runs(0).unwrap().len(), 2);
}

fn record(w: &WriteScope) -> RunRecord {
    RunRecord {
        plugin: w.plugin.clone(),
        scope: Some(w.scope.clone()),
        update_tag: w.update_tag,
        status: RunStatus::Succeeded,
        started_at: "2026-12-07T00:00:00Z".into(),
        finished_at: "2026-12-07T00:00:01Z".into(),
        report: "{}".into(),
    }
}

/// A run writing directly holds the write lock until it publishes. A second plugin of the
/// same process that starts meanwhile must wait for that lock to prepare (it registers
/// its labels), but must not hold the shared reading connection while it waits: the
/// first run reads its state through it before it can publish. (It did hold it, and the
/// two waited on each other until SQLite's busy timeout, ten minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_preparing_while_a_run_writes_directly_does_not_block_its_reads() {
    use infragraph_core::Holder;
    let demo = |name: &str, label: &str| -> Manifest {
        serde_json::from_value(json!({
            "name": name, "version": "1.0.0", "description": "", "hosts": [],
            "credentials": [], "config": [],
            "schema": {"nodes": [{"label": label, "description": "", "extra_labels": [],
                                   "properties": []}], "edges": []}
        }))
        .unwrap()
    };
    let (_dir, s) = store();
    let s = Arc::new(s);
    s.prepare(&demo("first", "FirstThing")).await.unwrap();
    let w = scope("first", "org", s.next_update_tag().await.unwrap());
    let holder = Holder::this_process("2026-12-05T00:00:00Z");
    s.lease(&w, &holder, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    // Alone: this run writes directly, holding the write lock from here to publication.
    put_nodes(&s, &w, "FirstThing", &["a1"]).await;

    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let second = {
        let s = s.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            started_tx.send(()).unwrap();
            // New labels to register: this waits for the first run's write lock.
            rt.block_on(s.prepare(&demo("second", "SecondThing")))
        })
    };
    started_rx.recv().unwrap();
    // Let the second plugin reach its wait (nothing asserts on time: if it has not got
    // there yet, the reads below simply go first).
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(s.get("first", "org", "cursor").await.unwrap(), None);
    put_nodes(&s, &w, "FirstThing", &["a2"]).await;
    publish(&s, &w, Some(&[])).await;
    second
        .join()
        .unwrap()
        .expect("the second plugin prepares once the first published");
    assert_eq!(s.stats().unwrap().nodes["FirstThing"], 2);
}

/// Runs side by side publish with SQLite's automatic checkpoint replaced by their own,
/// after the write lock is released: the write-ahead log still goes back into the store
/// file once it passes its threshold, rather than grow without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_side_by_side_still_checkpoint_the_log_into_the_store() {
    let (dir, s) = store();
    // Two runs in progress: both stage their writes (held) and publish in turn.
    let a = scope("alpha", "org", s.next_update_tag().await.unwrap());
    let b = scope("beta", "org", s.next_update_tag().await.unwrap());
    write_filler(&s, &a, (10, 2_000), 2_000).await;
    put_nodes(&s, &b, "BetaThing", &["b1"]).await;
    publish(&s, &a, Some(&[])).await;
    publish(&s, &b, Some(&[])).await;
    // 20,000 nodes of 2,000 bytes each: about 40 MB, past the 32 MiB of log after which a
    // checkpoint is due. Until one runs they live in `graph.db-wal` only and `graph.db`
    // stays a few pages.
    let store_file = std::fs::metadata(dir.path().join("graph.db"))
        .unwrap()
        .len();
    assert!(
        store_file > 4 << 20,
        "graph.db is {store_file} bytes after 5 MB were published: no checkpoint ran"
    );
}

/// Once the write-ahead log has grown past its restart size (64 MiB), the next run to
/// publish copies what is left of it into the store first, so the log starts again from
/// its beginning with that run's transaction: a sync of many runs publishing back to back
/// keeps a log of about that size instead of one larger than the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_log_starts_again_with_the_next_run_to_publish() {
    let (dir, s) = store();
    let path = dir.path().join("graph.db");
    // A run in progress throughout, so the others are held and publish through the
    // store's shared writer.
    let _anchor = scope("anchor", "org", s.next_update_tag().await.unwrap());
    let big = scope("alpha", "org", s.next_update_tag().await.unwrap());
    // 80,000 nodes of 1,000 bytes: a log of about 90 MB.
    write_filler(&s, &big, (4, 20_000), 1_000).await;
    // A reader's snapshot keeps the checkpoint after the big run from copying its part
    // of the log, as a checkpoint still running beside the next publish would.
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    publish(&s, &big, Some(&[])).await;
    reader.execute_batch("COMMIT").unwrap();
    let grown = std::fs::metadata(dir.path().join("graph.db-wal"))
        .unwrap()
        .len();
    assert!(grown > 64 << 20, "the big run left a log of {grown} bytes");
    let small = scope("beta", "org", s.next_update_tag().await.unwrap());
    put_nodes(&s, &small, "BetaThing", &["b1"]).await;
    publish(&s, &small, Some(&[])).await;
    // The log's length in pages, as the checkpoint reports it (it copies, it does not
    // restart the log).
    let probe = rusqlite::Connection::open(&path).unwrap();
    let after: i64 = probe
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
        .unwrap();
    assert!(
        after < 100,
        "the log holds {after} pages after a one-node run: it did not start again"
    );
    assert_eq!(
        probe
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        80_001
    );
}

/// Writes `batches` batches of `per_batch` `AlphaThing` nodes, each with a property of
/// `bytes` bytes.
async fn write_filler(
    s: &Store,
    w: &WriteScope,
    (batches, per_batch): (usize, usize),
    bytes: usize,
) {
    let filler = "x".repeat(bytes);
    for chunk in 0..batches {
        let rows: Vec<(String, Vec<Value>)> = (0..per_batch)
            .map(|i| (format!("{chunk}-{i}"), vec![text(&filler)]))
            .collect();
        let rows = rows
            .iter()
            .map(|(id, v)| (id.as_str(), v.clone()))
            .collect();
        s.write_nodes(w, &[], &node_batch("AlphaThing", &["filler"], rows))
            .await
            .unwrap();
    }
}
