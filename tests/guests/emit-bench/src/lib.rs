//! Emits `count` nodes of ten properties, then `edges` `LINKS` edges between them, through
//! the SDK's ordinary buffered path, so a benchmark measures what a real plugin's
//! emission costs: the SDK's batching, the copy into the host and the host's checks.
//! With `build_only`, it builds the nodes and drops them unsent, which separates the cost
//! of running the guest's own code in wasm from the cost of emitting.
//!
//! `tests/src/bench/rows.rs` builds the same records natively, for the baselines; the two
//! must stay in step.

use infragraph_sdk::{
    Config, ConfigKey, Context, EdgeKind, Ingestor, Manifest, NodeKind, Summary, SyncError,
    ValueType, export_ingestor,
};

const LABEL: &str = "BenchNode";
const LINKS: &str = "LINKS";

struct EmitBench;

impl Ingestor for EmitBench {
    fn manifest() -> Manifest {
        use ValueType::{Boolean, Float, Int, Text};
        let types = [Text, Int, Text, Int, Float, Boolean, Text, Int, Text, Int];
        let kind = (0..10)
            .zip(types)
            .fold(NodeKind::new(LABEL, "A benchmark node"), |k, (i, t)| {
                k.prop(format!("p{i}"), t, "Filler")
            });
        Manifest::new(
            "emit-bench",
            env!("CARGO_PKG_VERSION"),
            "Emits many nodes and edges for benchmarks",
        )
        .config(ConfigKey::text("count", "Nodes to emit").default_text("1000000"))
        .config(ConfigKey::text("batch", "Rows per batch").default_text("1000"))
        .config(
            ConfigKey::text(
                "build_only",
                "\"true\": build the nodes but do not emit them",
            )
            .default_text("false"),
        )
        .config(ConfigKey::text("edges", "LINKS edges to emit after the nodes").default_text("0"))
        .node(kind)
        // (:BenchNode)-[:LINKS]->(:BenchNode)
        .edge(EdgeKind::new(LINKS, LABEL, LABEL, "A benchmark edge").prop(
            "weight",
            Int,
            "The edge's number",
        ))
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let count = number(config, "count", 1_000_000)?;
        let edges = number(config, "edges", 0)?;
        if count == 0 && edges > 0 {
            return Err(SyncError::config("edges need nodes: set count above 0"));
        }
        let build_only = config.text("build_only") == Some("true");
        cx.set_batch_size(number(config, "batch", 1_000)? as usize);
        cx.scope(LABEL, "bench");
        for i in 0..count {
            let n = i as i64;
            let node = cx
                .node(LABEL, format!("n{i}"))
                .prop("p0", format!("name-{i:011}"))
                .prop("p1", n)
                .prop("p2", format!("zone-{:011}", i % 97))
                .prop("p3", n * 7)
                .prop("p4", i as f64 * 0.5)
                .prop("p5", i % 2 == 0)
                .prop("p6", format!("type-{:011}", i % 13))
                .prop("p7", n % 1_000)
                .prop("p8", format!("{i:016x}"))
                .prop("p9", -n);
            if build_only {
                // Built, then dropped unsent: what building costs without emitting.
                drop(node);
            } else {
                node.emit();
            }
        }
        for k in 0..edges {
            let (from, to) = link(k, count);
            cx.edge(
                LINKS,
                (LABEL, "id", format!("n{from}")),
                (LABEL, "id", format!("n{to}")),
            )
            .prop("weight", k as i64)
            .emit();
        }
        Ok(Summary::new(format!("{count} nodes, {edges} edges")))
    }
}

export_ingestor!(EmitBench);

/// The ends of edge `k`: two edges leave each node `i`, to `(7i + 1) % count` and to
/// `(13i + 5) % count` (moved on by one where both land on the same node, so that no
/// (from, type, to) repeats and a plain INSERT baseline meets no duplicate).
fn link(k: u64, count: u64) -> (u64, u64) {
    let i = (k / 2) % count;
    let a = (i * 7 + 1) % count;
    let b = (i * 13 + 5) % count;
    let to = match k % 2 {
        0 => a,
        _ if b == a => (b + 1) % count,
        _ => b,
    };
    (i, to)
}

fn number(config: &Config, key: &str, default: u64) -> Result<u64, SyncError> {
    match config.text(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            SyncError::config(format!("config key {key:?} must be a number, not {v:?}"))
        }),
    }
}
