//! The Scaleway benchmark (issue 5): a generated estate of about 100,000 resources synced
//! from the simulator into the embedded store, then the same estate with 100 ms of latency
//! on every response, beside a one-request-at-a-time walk of the same endpoints at the same
//! latency, in the same run.
//!
//! The simulator runs in a child process (`bench_scaleway serve ...`), so the peak RSS
//! printed is the host's alone: runtime, plugin, engine and store. Targets are reported as
//! met or missed, never asserted: a busy machine must not fail a build.
//!
//! Run with `cargo run --release -p infragraph-tests --bin bench_scaleway` after
//! `cargo xtask build`, with `INFRAGRAPH_TEST_PLUGINS` naming the built plugins.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_engine::RunReport;
use infragraph_runtime::Runtime;
use infragraph_tests::bench::provider::{SimChild, sync_into_store, vm_kib};
use infragraph_tests::harness;
use infragraph_tests::sim::{ScalewayData, ScalewaySim, ZONES};

/// 100 projects of 256 instances: with their volumes, snapshots, IPs and IAM resources,
/// just over 100,000 resources.
const PROJECTS: usize = 100;
const INSTANCES_PER_PROJECT: usize = 256;
const LATENCY: Duration = Duration::from_millis(100);

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

/// The simulator for the parent: prints its URL and the number of resources it serves,
/// then serves until stdin closes. `--one-zone` serves the shape of `bench_cartography`
/// (INSTANCES servers per project in `fr-par-1`, one in each other zone), for profiling a
/// sink by hand: `bench_scaleway serve 2 1280 0 --one-zone --other-products-empty`.
fn serve(args: &[String]) {
    let n = |i: usize| -> usize {
        args[i]
            .parse()
            .expect("serve PROJECTS INSTANCES LATENCY_MS [--one-zone] [--other-products-empty]")
    };
    let data = if args.iter().any(|a| a == "--one-zone") {
        ScalewayData::generate_in_one_zone(n(0), n(1))
    } else {
        ScalewayData::generate(n(0), n(1))
    };
    let resources = data.resource_count();
    let sim = ScalewaySim::start(data);
    sim.set_latency(Duration::from_millis(n(2) as u64));
    if args.iter().any(|a| a == "--other-products-empty") {
        sim.serve_other_products_empty();
    }
    println!("{}\n{resources}", sim.url());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().lines().count();
}

/// The simulator in a child process, its URL and how many resources it serves.
struct SimProcess {
    _child: SimChild,
    url: String,
    resources: usize,
}

impl SimProcess {
    fn start(latency: Duration) -> SimProcess {
        let mut child = SimChild::start(&[
            PROJECTS.to_string(),
            INSTANCES_PER_PROJECT.to_string(),
            latency.as_millis().to_string(),
        ]);
        let url = child.line("its URL");
        let resources = child
            .line("its size")
            .trim()
            .parse()
            .expect("a resource count");
        SimProcess {
            _child: child,
            url,
            resources,
        }
    }
}

async fn bench() -> ExitCode {
    let rt = Arc::new(Runtime::new(None).expect("a wasmtime runtime"));
    let plugin_path = harness::plugin("scaleway");

    // 1. No latency: throughput, memory, where the time goes. The estate is generated in
    // the simulator's process only, so that its ~100 MB never count in this one's peak.
    let sim = SimProcess::start(Duration::ZERO);
    println!(
        "Scaleway estate: {PROJECTS} projects x {INSTANCES_PER_PROJECT} instances over {} zones = {} resources\n",
        ZONES.len(),
        sim.resources
    );
    let rss_before = vm_kib("VmRSS:");
    let dir = std::env::temp_dir().join(format!("infragraph-bench-scw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let (report, wall) = sync(&rt, &plugin_path, &sim.url, &dir.join("fast.db")).await;
    let hwm = vm_kib("VmHWM:");
    let http_alone = walk(&sim.url, 8).await;
    drop(sim);
    let nodes = report.nodes_written();
    let rate = nodes as f64 / wall.as_secs_f64();
    let p = &report.phases;
    println!(
        "sync, no latency: {:?} ({})",
        report.status,
        report.summary.clone().unwrap_or_default()
    );
    println!(
        "  {nodes} nodes and {} edges in {:.2} s end to end",
        report.edges_written(),
        wall.as_secs_f64()
    );
    println!(
        "  {rate:.0} resources/s (target >= 20,000: {})",
        met(rate >= 20_000.0)
    );
    println!(
        "  peak RSS (VmHWM) {:.0} MB (target < 200 MB: {})",
        hwm as f64 / 1024.0,
        met(hwm < 200 * 1024)
    );
    println!(
        "  RSS before the sync {:.0} MB (runtime and harness), after it {:.0} MB",
        rss_before as f64 / 1024.0,
        vm_kib("VmRSS:") as f64 / 1024.0
    );
    println!(
        "  phases: prepare {} ms, sync {} ms (plugin + HTTP + node writes, overlapped), \
         edges {} ms, cleanup {} ms, total {} ms",
        p.prepare_ms, p.sync_ms, p.edges_ms, p.cleanup_ms, p.total_ms
    );
    println!(
        "  HTTP: {} requests, {:.1} MB received, {} retries; the same requests alone, 8 at a \
         time from a plain client: {} ms",
        report.http.requests,
        report.http.bytes_received as f64 / 1e6,
        report.http.retries,
        http_alone.1.as_millis()
    );
    println!(
        "  split: HTTP ~{} ms, plugin + node writes ~{} ms (sync phase minus HTTP), sink after \
         the plugin {} ms (edges + cleanup)\n",
        http_alone.1.as_millis().min(p.sync_ms as u128),
        (p.sync_ms as u128).saturating_sub(http_alone.1.as_millis()),
        p.edges_ms + p.cleanup_ms
    );

    // 2. 100 ms per response: the concurrent walk against a sequential one.
    let sim = SimProcess::start(LATENCY);
    let (slow, slow_wall) = sync(&rt, &plugin_path, &sim.url, &dir.join("slow.db")).await;
    let (requests, sequential) = walk(&sim.url, 1).await;
    drop(sim);
    let speedup = sequential.as_secs_f64() / slow_wall.as_secs_f64();
    println!("with {} ms per response:", LATENCY.as_millis());
    println!(
        "  infragraph sync: {:.1} s, {} requests ({:?})",
        slow_wall.as_secs_f64(),
        slow.http.requests,
        slow.status
    );
    println!(
        "  one request at a time: {:.1} s, {requests} requests",
        sequential.as_secs_f64()
    );
    println!(
        "  speed-up from concurrency: {speedup:.1}x (target >= 8x within the default per-host \
         limit of 16 requests in flight: {})",
        met(speedup >= 8.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Every page the plugin lists, fetched by a plain HTTP client `in_flight` at a time:
/// page 1 of each listing, then the pages its total implies. The number of requests and
/// the time taken.
/// One sync against the simulator at `url` into a fresh store at `db`.
async fn sync(
    rt: &Arc<Runtime>,
    plugin: &std::path::Path,
    url: &str,
    db: &std::path::Path,
) -> (RunReport, Duration) {
    let env = [
        ("SCW_API_URL", url),
        ("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY),
        (
            "SCW_DEFAULT_ORGANIZATION_ID",
            "0000a0a0-0000-4000-8000-000000000001",
        ),
    ];
    sync_into_store(rt, plugin, &env, db).await
}

async fn walk(url: &str, in_flight: usize) -> (u64, Duration) {
    let client = reqwest::Client::new();
    let mut listings: Vec<(String, bool)> = ["users", "groups", "applications", "api-keys"]
        .iter()
        .map(|w| (format!("{url}/iam/v1alpha1/{w}?page_size=100"), false))
        .collect();
    listings.push((format!("{url}/account/v3/projects?page_size=100"), false));
    for zone in ZONES {
        for what in ["servers", "volumes", "snapshots", "ips"] {
            let path = format!("{url}/instance/v1/zones/{zone}/{what}?per_page=100");
            listings.push((path, true));
        }
    }
    let started = Instant::now();
    let fetch = |u: String, header_total: bool| {
        let client = client.clone();
        async move {
            let r = client
                .get(&u)
                .header("X-Auth-Token", ScalewaySim::SECRET_KEY)
                .send()
                .await
                .expect("the simulator answers");
            let header = r
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let bytes = r.bytes().await.expect("a body");
            let body: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON page");
            if header_total {
                header.unwrap_or(0)
            } else {
                body["total_count"].as_u64().unwrap_or(0)
            }
        }
    };
    // Page 1 of every listing, then the rest, `in_flight` requests at a time.
    let mut requests = 0u64;
    let mut rest = Vec::new();
    for chunk in listings.chunks(in_flight) {
        let firsts = chunk.iter().map(|(u, h)| fetch(format!("{u}&page=1"), *h));
        let totals = futures_util::future::join_all(firsts).await;
        requests += chunk.len() as u64;
        for ((u, h), total) in chunk.iter().zip(totals) {
            for page in 2..=total.div_ceil(100) {
                rest.push((format!("{u}&page={page}"), *h));
            }
        }
    }
    for chunk in rest.chunks(in_flight) {
        let pages = chunk.iter().map(|(u, h)| fetch(u.clone(), *h));
        futures_util::future::join_all(pages).await;
        requests += chunk.len() as u64;
    }
    (requests, started.elapsed())
}
