//! The Spacelift benchmark (issue 7): a generated account of 200 stacks x 500 runs
//! (100,000 runs, with their commits and users) synced from the simulator into the
//! embedded store: resources per second and peak RSS, beside the Scaleway figure.
//!
//! The simulator runs in a child process (`bench_spacelift serve ...`), so the peak RSS
//! printed is the host's alone. Targets are reported, never asserted.
//!
//! Run with `cargo run --release -p infragraph-tests --bin bench_spacelift` after
//! `cargo xtask build`, with `INFRAGRAPH_TEST_PLUGINS` naming the built plugins.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use infragraph_engine::RunReport;
use infragraph_runtime::Runtime;
use infragraph_tests::bench::provider::{SimChild, sync_into_store, vm_kib};
use infragraph_tests::harness;
use infragraph_tests::sim::{SpaceliftData, SpaceliftSim};

const STACKS: usize = 200;
const RUNS_PER_STACK: usize = 500;
/// What `bench_scaleway` measured last on the development machine (README), for scale:
/// `cargo xtask bench` runs it just before this one.
const SCALEWAY_RESOURCES_PER_S: f64 = 26_000.0;
const SCALEWAY_PEAK_MB: f64 = 154.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        serve(&args[1..]);
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench())
}

/// The simulator for the parent: prints its endpoint and the number of runs, then serves
/// until stdin closes.
fn serve(args: &[String]) {
    let n = |i: usize| -> usize { args[i].parse().expect("serve STACKS RUNS_PER_STACK") };
    let data = SpaceliftData::generate(n(0), n(1));
    let runs = data.run_count();
    let sim = SpaceliftSim::start(data);
    println!("{}\n{runs}", sim.endpoint());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().lines().count();
}

/// The simulator in a child process, its endpoint and how many runs it serves.
struct SimProcess {
    _child: SimChild,
    endpoint: String,
    runs: usize,
}

impl SimProcess {
    fn start() -> SimProcess {
        let mut child = SimChild::start(&[STACKS.to_string(), RUNS_PER_STACK.to_string()]);
        let endpoint = child.line("its endpoint");
        let runs = child.line("its size").trim().parse().expect("a run count");
        SimProcess {
            _child: child,
            endpoint,
            runs,
        }
    }
}

async fn bench() -> ExitCode {
    let rt = Arc::new(Runtime::new(None).expect("a wasmtime runtime"));
    let plugin_path = harness::plugin("spacelift");
    let sim = SimProcess::start();
    println!(
        "Spacelift account: {STACKS} stacks x {RUNS_PER_STACK} runs = {} runs, with commits and users\n",
        sim.runs
    );
    let dir = std::env::temp_dir().join(format!("infragraph-bench-sl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let (report, wall) = sync(&rt, &plugin_path, &sim.endpoint, &dir.join("sl.db")).await;
    let hwm = vm_kib("VmHWM:");
    drop(sim);
    let nodes = report.nodes_written();
    let rate = nodes as f64 / wall.as_secs_f64();
    let p = &report.phases;
    println!(
        "sync: {:?} ({})",
        report.status,
        report.summary.clone().unwrap_or_default()
    );
    println!(
        "  {nodes} nodes and {} edges in {:.2} s end to end, {} requests",
        report.edges_written(),
        wall.as_secs_f64(),
        report.http.requests
    );
    println!(
        "  {rate:.0} resources/s (Scaleway: {SCALEWAY_RESOURCES_PER_S:.0}/s, ratio {:.2})",
        rate / SCALEWAY_RESOURCES_PER_S
    );
    println!(
        "  peak RSS (VmHWM) {:.0} MB (Scaleway: {SCALEWAY_PEAK_MB:.0} MB)",
        hwm as f64 / 1024.0
    );
    println!(
        "  phases: prepare {} ms, sync {} ms, edges {} ms, cleanup {} ms, total {} ms",
        p.prepare_ms, p.sync_ms, p.edges_ms, p.cleanup_ms, p.total_ms
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

/// One sync against the simulator at `endpoint` into a fresh store at `db`.
async fn sync(
    rt: &Arc<Runtime>,
    plugin: &std::path::Path,
    endpoint: &str,
    db: &std::path::Path,
) -> (RunReport, Duration) {
    let env = [
        ("SPACELIFT_API_KEY_ENDPOINT", endpoint),
        ("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID),
        ("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET),
        ("SPACELIFT_ACCOUNT_ID", "generated"),
    ];
    sync_into_store(rt, plugin, &env, db).await
}
