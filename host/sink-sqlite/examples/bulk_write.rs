//! Writes NODES nodes (10 properties each) and twice as many edges through the store,
//! then the same rows with plain hand-written rusqlite inserts into a fresh store of the
//! same layout, and prints both rates, their ratio and the peak RSS (issue 4's benchmark,
//! without the engine and plugin around it).
//!
//! ```text
//! cargo run --release -p infragraph-sink-sqlite --example bulk_write -- [NODES] [DIR]
//! ```

use std::time::{Duration, Instant};

use infragraph_core::{
    EdgeBatch, EdgeRow, GraphSink, NodeBatch, NodeRow, Publish, Value, WriteScope,
};
use infragraph_sink_sqlite::Store;
use rusqlite::{Connection, TransactionBehavior, params};

const BATCH: usize = 10_000;
const LABEL: &str = "BenchNode";
const COLUMNS: [&str; 10] = [
    "name",
    "size",
    "ratio",
    "enabled",
    "tags",
    "region",
    "zone",
    "created_at",
    "port",
    "owner",
];

fn node_rows(from: usize, to: usize) -> Vec<NodeRow> {
    (from..to)
        .map(|i| NodeRow {
            id: format!("node-{i:08}").into(),
            values: vec![
                Value::Text(format!("resource number {i}").into()),
                Value::Int(i as i64 * 17),
                Value::Float(i as f64 / 7.0),
                Value::Bool(i % 3 == 0),
                Value::TextList(vec![format!("team-{}", i % 10), "prod".into()]),
                Value::Text(format!("region-{}", i % 5).into()),
                Value::Text(format!("zone-{}", i % 15).into()),
                Value::Text("2026-01-01T00:00:00Z".into()),
                Value::Int((i % 65_536) as i64),
                Value::Text(format!("owner-{}@example.com", i % 1000).into()),
            ],
        })
        .collect()
}

/// Two edges per node, to pseudo-random others.
fn edge_rows(n: usize, from: usize, to: usize) -> Vec<EdgeRow> {
    (from..to)
        .map(|k| {
            let i = k / 2;
            let (a, b) = ((i * 7 + 1) % n, (i * 13 + 5) % n);
            // Distinct, so the raw insert meets no duplicate.
            let j = if k % 2 == 0 {
                a
            } else if b == a {
                (b + 1) % n
            } else {
                b
            };
            EdgeRow {
                from: format!("node-{i:08}").into(),
                to: format!("node-{j:08}").into(),
                values: vec![Value::Int(k as i64)],
            }
        })
        .collect()
}

fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

async fn through_store(path: &std::path::Path, n: usize) -> (Duration, Duration) {
    let store = Store::open(path).expect("store");
    let w = WriteScope {
        plugin: "bench".into(),
        scope: "s".into(),
        update_tag: store.next_update_tag().await.unwrap(),
    };
    let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut nodes_time = Duration::ZERO;
    for start in (0..n).step_by(BATCH) {
        let b = NodeBatch {
            label: LABEL.into(),
            columns: columns.clone(),
            rows: node_rows(start, (start + BATCH).min(n)),
        };
        let t = Instant::now();
        store.write_nodes(&w, &[], &b).await.unwrap();
        nodes_time += t.elapsed();
    }
    let mut edges_time = Duration::ZERO;
    for start in (0..2 * n).step_by(BATCH) {
        let b = EdgeBatch {
            rel_type: "LINKS".into(),
            from_label: LABEL.into(),
            from_key: "id".into(),
            to_label: LABEL.into(),
            to_key: "id".into(),
            columns: vec!["weight".into()],
            rows: edge_rows(n, start, (start + BATCH).min(2 * n)),
        };
        let t = Instant::now();
        assert_eq!(store.write_edges(&w, &b).await.unwrap(), 0);
        edges_time += t.elapsed();
    }
    // Nothing of a run is in the store until it publishes: the commit counts too.
    let state = std::collections::BTreeMap::new();
    let publish = Publish {
        cleanup: None,
        state: &state,
        state_plugin: &w.plugin,
        cleanup_batch: BATCH,
    };
    let t = Instant::now();
    store.publish(&w, &publish).await.unwrap();
    edges_time += t.elapsed();
    (nodes_time, edges_time)
}

/// The baseline: plain INSERTs of the same rows, property maps built with serde_json,
/// one transaction per batch, into the same layout with the same pragmas.
fn raw(path: &std::path::Path, n: usize) -> (Duration, Duration) {
    drop(Store::open(path).expect("layout"));
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -64 * 1024).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .unwrap();
    let mut nodes_time = Duration::ZERO;
    for start in (0..n).step_by(BATCH) {
        let rows = node_rows(start, (start + BATCH).min(n));
        let t = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO nodes (label, id, extra_labels, props, firstseen, lastupdated, source, scope) \
                     VALUES (?1, ?2, '[]', ?3, 1, 1, 'bench', 's')",
                )
                .unwrap();
            for r in &rows {
                let props: serde_json::Map<String, serde_json::Value> = COLUMNS
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (c.to_string(), serde_json::to_value(v).unwrap()))
                    .collect();
                st.execute(params![
                    LABEL,
                    r.id.as_str(),
                    serde_json::to_string(&props).unwrap()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        nodes_time += t.elapsed();
    }
    let mut edges_time = Duration::ZERO;
    for start in (0..2 * n).step_by(BATCH) {
        let rows = edge_rows(n, start, (start + BATCH).min(2 * n));
        let t = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO edges (type, src, dst, props, firstseen, lastupdated, source, scope) \
                     VALUES ('LINKS', (SELECT nid FROM nodes WHERE label = ?1 AND id = ?2), \
                     (SELECT nid FROM nodes WHERE label = ?1 AND id = ?3), ?4, 1, 1, 'bench', 's')",
                )
                .unwrap();
            for r in &rows {
                let props = serde_json::json!({ "weight": r.values[0] });
                st.execute(params![
                    LABEL,
                    r.from.as_str(),
                    r.to.as_str(),
                    props.to_string()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        edges_time += t.elapsed();
    }
    (nodes_time, edges_time)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("NODES is a number"));
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir(),
    };
    let store_path = dir.join("bulk-write-store.db");
    let raw_path = dir.join("bulk-write-raw.db");
    for p in [&store_path, &raw_path] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }

    let (sn, se) = through_store(&store_path, n).await;
    let rss_store = peak_rss_mb();
    let (rn, re) = raw(&raw_path, n);
    let (s_all, r_all) = (rate(3 * n, sn + se), rate(3 * n, rn + re));
    println!(
        "rows: {n} nodes x {} properties, {} edges, batches of {BATCH}",
        COLUMNS.len(),
        2 * n
    );
    println!(
        "store: nodes {:>9.0}/s  edges {:>9.0}/s  all {:>9.0}/s",
        rate(n, sn),
        rate(2 * n, se),
        s_all
    );
    println!(
        "raw:   nodes {:>9.0}/s  edges {:>9.0}/s  all {:>9.0}/s",
        rate(n, rn),
        rate(2 * n, re),
        r_all
    );
    println!("ratio: {:.2} (target >= 0.70)", s_all / r_all);
    println!(
        "peak RSS: {rss_store} MB after the store run, {} MB overall (target < 300)",
        peak_rss_mb()
    );
}
