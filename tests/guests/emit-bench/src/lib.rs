//! Emits `count` nodes of ten properties, then `edges` `LINKS` edges between them, through
//! the SDK's ordinary buffered path, so a benchmark measures what a real plugin's
//! emission costs: the SDK's batching, the copy into the host and the host's checks.
//! With `build_only`, it builds the nodes and drops them unsent, which separates the cost
//! of running the guest's own code in wasm from the cost of emitting.
//!
//! The records come from `infragraph-bench-records`, which the native baselines in
//! `tests/src/bench/rows.rs` build from too.

use infragraph_bench_records::{self as records, LABEL, LINKS, Prop, Scratch};
use infragraph_sdk::{
    Config, ConfigKey, Context, EdgeKind, Ingestor, Manifest, NodeKind, Prop as Property, Summary,
    SyncError, ValueType, export_ingestor,
};

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
        let mut scratch = Scratch::default();
        for i in 0..count {
            let mut node = cx.node(LABEL, scratch.id(i));
            scratch.props(i, |name, p| {
                node.set(
                    name,
                    match p {
                        Prop::Text(s) => Property::from(s),
                        Prop::Int(n) => Property::from(n),
                        Prop::Float(f) => Property::from(f),
                        Prop::Bool(b) => Property::from(b),
                    },
                )
            });
            if build_only {
                // Built, then dropped unsent: what building costs without emitting.
                drop(node);
            } else {
                node.emit();
            }
        }
        for k in 0..edges {
            let (from, to) = records::link(k, count);
            cx.edge(
                LINKS,
                (LABEL, "id", records::id(from)),
                (LABEL, "id", records::id(to)),
            )
            .prop("weight", k as i64)
            .emit();
        }
        Ok(Summary::new(format!("{count} nodes, {edges} edges")))
    }
}

export_ingestor!(EmitBench);

fn number(config: &Config, key: &str, default: u64) -> Result<u64, SyncError> {
    match config.text(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            SyncError::config(format!("config key {key:?} must be a number, not {v:?}"))
        }),
    }
}
