//! The engine end to end: a plugin's edges, held back until every node is written, pass
//! through the spool on disk when they outgrow its memory bound, and all arrive.

use std::sync::Arc;

use infragraph_core::ConfigValue;
use infragraph_engine::{Job, Options, sync_all};
use infragraph_fetch::Secrets;
use infragraph_runtime::Limits;
use infragraph_tests::harness;

use crate::runtime;

#[tokio::test(flavor = "multi_thread")]
async fn edges_past_the_memory_bound_go_through_disk_and_all_arrive() {
    let rt = Arc::new(runtime());
    let plugin = rt
        .load(&harness::guest("emit-bench"), None)
        .await
        .expect("emit-bench loads");
    // Two edges leave each node, so up to twice the nodes no two edges are one.
    let (nodes, edges) = (2_000u64, 4_000u64);
    let text = |v: u64| ConfigValue::Text(v.to_string());
    let job = Job {
        plugin,
        config: vec![
            ("count".into(), text(nodes)),
            ("edges".into(), text(edges)),
            // Small guest batches, many spills: 4,000 edges against a bound of 700.
            ("batch".into(), text(100)),
        ],
        secrets: Secrets::new(),
        limits: Limits::default(),
        state_as: None,
        tape: Default::default(),
        connection: None,
    };
    let dir = tempfile::tempdir().expect("a scratch dir");
    let db = dir.path().join("graph.db");
    let store = Arc::new(infragraph_sink_sqlite::Store::open(&db).expect("a store"));
    let options = Options {
        batch_size: 1_000,
        edge_memory_rows: 700,
        ..Options::default()
    };
    let reports = sync_all(rt, store, vec![job], options, Arc::new(|_: &str, _| {})).await;
    let report = &reports[0];
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (report.nodes_written(), report.edges_written()),
        (nodes, edges)
    );
    let conn = rusqlite::Connection::open(&db).expect("the store opens");
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM edges", [], |r| r.get(0))
        .expect("a count");
    assert_eq!(stored as u64, edges);
    // The last edge, with its property, between the nodes the guest named.
    let (from, to) = infragraph_bench_records::link(edges - 1, nodes);
    let weight: i64 = conn
        .query_row(
            "SELECT json_extract(e.props, '$.weight') FROM edges e \
             JOIN nodes a ON a.nid = e.src JOIN nodes b ON b.nid = e.dst \
             WHERE a.id = ?1 AND b.id = ?2",
            [format!("n{from}"), format!("n{to}")],
            |r| r.get(0),
        )
        .expect("the last edge is stored");
    assert_eq!(weight as u64, edges - 1);
}
