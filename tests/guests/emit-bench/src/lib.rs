//! Emits `count` nodes of ten properties through the SDK's ordinary buffered path, so a
//! benchmark measures what a real plugin's emission costs: the SDK's batching, the copy
//! into the host and the host's checks.

use infragraph_sdk::{
    Config, ConfigKey, Context, Ingestor, Manifest, NodeKind, Summary, SyncError, ValueType,
    export_ingestor,
};

const LABEL: &str = "BenchNode";

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
            "Emits many nodes for benchmarks",
        )
        .config(ConfigKey::text("count", "Nodes to emit").default_text("1000000"))
        .config(ConfigKey::text("batch", "Rows per batch").default_text("1000"))
        .node(kind)
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let count = number(config, "count", 1_000_000)?;
        cx.set_batch_size(number(config, "batch", 1_000)? as usize);
        cx.scope(LABEL, "bench");
        for i in 0..count {
            let n = i as i64;
            cx.node(LABEL, format!("n{i}"))
                .prop("p0", format!("name-{i:011}"))
                .prop("p1", n)
                .prop("p2", format!("zone-{:011}", i % 97))
                .prop("p3", n * 7)
                .prop("p4", i as f64 * 0.5)
                .prop("p5", i % 2 == 0)
                .prop("p6", format!("type-{:011}", i % 13))
                .prop("p7", n % 1_000)
                .prop("p8", format!("{i:016x}"))
                .prop("p9", -n)
                .emit();
        }
        Ok(Summary::new(format!("{count} nodes")))
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
