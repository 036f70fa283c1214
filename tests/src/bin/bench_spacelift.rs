//! The Spacelift benchmark (issue 7): a generated account of 200 stacks x 500 runs
//! (100,000 runs, with their commits and users) synced from the simulator into the
//! embedded store: resources per second and peak RSS, beside the Scaleway plugin's figures
//! measured in the same run (its 100-project estate, as `bench_scaleway` syncs it).
//!
//! Each simulator runs in a child process (`bench_spacelift serve ...`), so the peak RSS
//! printed is the host's alone, and the baseline runs in a process of its own
//! (`bench_spacelift baseline`), so neither sync's memory counts in the other's peak.
//! Targets are reported, never asserted.
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
use infragraph_tests::sim::{ScalewayData, ScalewaySim, SpaceliftData, SpaceliftSim};

const STACKS: usize = 200;
const RUNS_PER_STACK: usize = 500;
/// The baseline: `bench_scaleway`'s estate, 100 projects of 256 instances (just over
/// 100,000 resources).
const SCALEWAY: (usize, usize) = (100, 256);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("serve"), Some("scaleway")) => {
            serve_scaleway();
            return ExitCode::SUCCESS;
        }
        (Some("serve"), _) => {
            serve(&args[1..]);
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let baseline = args.first().map(String::as_str) == Some("baseline");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match baseline {
        true => runtime.block_on(scaleway_baseline()),
        false => runtime.block_on(bench()),
    }
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

/// The baseline's simulator: prints its URL, then serves until stdin closes.
fn serve_scaleway() {
    let sim = ScalewaySim::start(ScalewayData::generate(SCALEWAY.0, SCALEWAY.1));
    println!("{}", sim.url());
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
    println!("  {rate:.0} resources/s");
    println!("  peak RSS (VmHWM) {:.0} MB", hwm as f64 / 1024.0);
    println!(
        "  phases: prepare {} ms, sync {} ms, edges {} ms, cleanup {} ms, total {} ms",
        p.prepare_ms, p.sync_ms, p.edges_ms, p.cleanup_ms, p.total_ms
    );

    // The baseline, same run: the Scaleway plugin over its estate, in a process of its
    // own that prints its figures.
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg("baseline")
        .output()
        .expect("the baseline runs");
    let line = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [nodes_s, edges, secs, scw_hwm] = figures[..] else {
        eprintln!(
            "the Scaleway baseline failed: {line}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return ExitCode::FAILURE;
    };
    let scw_rate = nodes_s / secs;
    println!(
        "baseline, same run: Scaleway {} projects x {} instances, {nodes_s} nodes and {edges} \
         edges in {secs:.2} s: {scw_rate:.0} resources/s, peak RSS {:.0} MB",
        SCALEWAY.0,
        SCALEWAY.1,
        scw_hwm / 1024.0
    );
    println!(
        "  Spacelift / Scaleway: {:.2} in resources/s, {:.2} in peak RSS",
        rate / scw_rate,
        hwm as f64 / scw_hwm.max(1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

/// The baseline's sync, in this (child) process: prints nodes, edges, seconds and peak RSS
/// in KiB on one line.
async fn scaleway_baseline() -> ExitCode {
    let rt = Arc::new(Runtime::new(None).expect("a wasmtime runtime"));
    let mut sim = SimChild::start(&["scaleway".to_owned()]);
    let url = sim.line("its URL");
    let env = [
        ("SCW_API_URL", url.as_str()),
        ("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY),
        (
            "SCW_DEFAULT_ORGANIZATION_ID",
            "0000a0a0-0000-4000-8000-000000000001",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("infragraph-bench-scw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let plugin = harness::plugin("scaleway");
    let (report, wall) = sync_into_store(&rt, &plugin, &env, &dir.join("scw.db")).await;
    let hwm = vm_kib("VmHWM:");
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{} {} {} {hwm}",
        report.nodes_written(),
        report.edges_written(),
        wall.as_secs_f64()
    );
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
