//! What the provider benchmarks (`bench_scaleway`, `bench_spacelift`, `bench_critical`)
//! share: one sync of a built plugin against its simulator into a fresh embedded store,
//! and the process's memory figures.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_engine::{Job, Options, RunReport};
use infragraph_runtime::{Limits, Runtime, SyncRequest, resolve_config, resolve_secrets};

/// One sync of the plugin at `plugin` into a fresh store at `db`, its config and secrets
/// read from `env` (name, value) as an operator's environment would give them; the run
/// report and the wall time, load included. Errors in the report are printed.
pub async fn sync_into_store(
    rt: &Arc<Runtime>,
    plugin: &Path,
    env: &[(&str, &str)],
    db: &Path,
) -> (RunReport, Duration) {
    let started = Instant::now();
    let plugin = rt.load(plugin, None).await.expect("the plugin loads");
    let env = |name: &str| -> Option<String> {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let manifest = plugin.manifest();
    let config = resolve_config(manifest, &Default::default(), &env).expect("config");
    let secrets = resolve_secrets(manifest, &Default::default(), &env).expect("secrets");
    let request = SyncRequest {
        config,
        secrets,
        limits: Limits::default(),
        state: Arc::new(infragraph_core::MemoryState::default()),
    };
    let store = Arc::new(infragraph_sink_sqlite::Store::open(db).expect("a store"));
    let reports = infragraph_engine::sync_all(
        rt.clone(),
        store,
        vec![Job { plugin, request }],
        Options::default(),
        Arc::new(|_: &str, _| {}),
    )
    .await;
    let report = reports.into_iter().next().expect("one report");
    if !report.errors.is_empty() {
        eprintln!("errors: {:?}", report.errors);
    }
    (report, started.elapsed())
}

/// A memory figure of this process from `/proc/self/status`, in KiB: `VmHWM:` for the
/// peak resident set size, `VmRSS:` for the current one; 0 where `/proc` is missing.
pub fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
