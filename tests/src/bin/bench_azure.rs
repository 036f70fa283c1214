//! The Azure benchmark (issue 8): a generated tenant of 20 subscriptions, 50,000
//! resources, 20,000 users and 1,000 nested groups synced from the simulator into the
//! embedded store: resources per second (a resource counts once, though written in both
//! views), peak RSS, and where the time goes:
//!
//! - **sink**: the same sync into a sink that discards everything, subtracted from the
//!   real one (node and edge writes, cleanup);
//! - **HTTP**: every listing the plugin walks, fetched again by a plain client at the
//!   host's per-host concurrency (16), bodies read and parsed, nothing else;
//! - **plugin**: what remains of the discarding sync (parsing in the guest, records,
//!   crossing the component boundary, the host's checks).
//!
//! Beside it, a baseline measured in the same run: the Spacelift plugin syncing a
//! generated account of 100 stacks x 500 runs, in resources (nodes) per second. The
//! simulators run in child processes, so the peak RSS is the host's alone (measured right
//! after the Azure sync, before anything else runs). Nothing is asserted.
//!
//! Run with `cargo run --release -p infragraph-tests --bin bench_azure` after
//! `cargo xtask build`, with `INFRAGRAPH_TEST_PLUGINS` naming the built plugins.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_core::{
    BoxFuture, ChangeCounts, ConfigValue, EdgeBatch, GraphSink, Manifest, NodeBatch, RunRecord,
    SinkError, StateError, StateStore, WriteScope,
};
use infragraph_runtime::Runtime;
use infragraph_tests::bench::provider::{SimChild, sync_into, sync_into_store, vm_kib};
use infragraph_tests::harness;
use infragraph_tests::sim::{AzureData, AzureSim, SpaceliftData, SpaceliftSim};
use serde_json::Value;

const SUBSCRIPTIONS: usize = 20;
const RESOURCES: usize = 50_000;
const USERS: usize = 20_000;
/// The baseline: a Spacelift account of this many stacks x runs.
const SPACELIFT: (usize, usize) = (100, 500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("serve"), Some("spacelift")) => {
            let sim = SpaceliftSim::start(SpaceliftData::generate(SPACELIFT.0, SPACELIFT.1));
            println!("{}", sim.endpoint());
            std::io::stdout().flush().expect("stdout");
            let _ = std::io::stdin().lines().count();
            return ExitCode::SUCCESS;
        }
        (Some("serve"), _) => {
            serve();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench())
}

/// The simulator for the parent: prints its URL and tenant, then serves until stdin
/// closes.
fn serve() {
    let sim = AzureSim::start(AzureData::generate(SUBSCRIPTIONS, RESOURCES, USERS));
    println!("{}\n{}", sim.url(), sim.tenant_id());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().lines().count();
}

async fn bench() -> ExitCode {
    let rt = Arc::new(Runtime::new(None).expect("a wasmtime runtime"));
    let plugin = harness::plugin("azure");
    let mut child = SimChild::start(&["azure".to_owned()]);
    let url = child.line("its URL");
    let tenant = child.line("its tenant");
    println!(
        "Azure tenant: {SUBSCRIPTIONS} subscriptions, {RESOURCES} resources (+ their subnets), \
         {USERS} users, {} nested groups\n",
        USERS / 20
    );
    let env = [
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_CLIENT_ID", AzureSim::CLIENT_ID),
        ("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET),
        ("AZURE_AUTHORITY_HOST", url.as_str()),
        ("AZURE_RESOURCE_MANAGER_URL", url.as_str()),
        ("AZURE_GRAPH_URL", url.as_str()),
    ];
    let dir = std::env::temp_dir().join(format!("infragraph-bench-az-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");

    let (report, wall) = sync_into_store(&rt, &plugin, &env, &dir.join("az.db")).await;
    let hwm = vm_kib("VmHWM:");
    let resources = report
        .nodes
        .get("Resource")
        .map_or(0, |c| c.created + c.updated);
    let rate = resources as f64 / wall.as_secs_f64();
    let p = &report.phases;
    println!(
        "sync: {:?} ({})",
        report.status,
        report.summary.clone().unwrap_or_default()
    );
    println!(
        "  {resources} resources ({} nodes, {} edges) in {:.2} s end to end, {} requests",
        report.nodes_written(),
        report.edges_written(),
        wall.as_secs_f64(),
        report.http.requests
    );
    println!(
        "  {rate:.0} resources/s, {:.0} nodes/s",
        report.nodes_written() as f64 / wall.as_secs_f64()
    );
    println!("  peak RSS (VmHWM) {:.0} MB", hwm as f64 / 1024.0);
    println!(
        "  phases: prepare {} ms, sync {} ms, edges {} ms, cleanup {} ms, total {} ms",
        p.prepare_ms, p.sync_ms, p.edges_ms, p.cleanup_ms, p.total_ms
    );

    let (_, null_wall) = sync_into(&rt, &plugin, &env, Arc::new(Discard)).await;
    let diagnosed = diagnosed_types(&rt, &plugin).await;
    let http = http_only(&url, &tenant, &diagnosed).await;
    let sink = wall.saturating_sub(null_wall);
    let guest = null_wall.saturating_sub(http);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64();
    println!(
        "  split: sink {:.2} s ({:.0}%), HTTP {:.2} s ({:.0}%), plugin {:.2} s ({:.0}%)",
        sink.as_secs_f64(),
        pct(sink),
        http.as_secs_f64(),
        pct(http),
        guest.as_secs_f64(),
        pct(guest)
    );
    println!(
        "    (sink = this sync minus one into a discarding sink, {:.2} s; HTTP = the same \
         listings fetched by a plain client)",
        null_wall.as_secs_f64()
    );
    drop(child);

    let mut sl = SimChild::start(&["spacelift".to_owned()]);
    let endpoint = sl.line("its endpoint");
    let sl_env = [
        ("SPACELIFT_API_KEY_ENDPOINT", endpoint.as_str()),
        ("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID),
        ("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET),
        ("SPACELIFT_ACCOUNT_ID", "generated"),
    ];
    let sl_plugin = harness::plugin("spacelift");
    let (sl_report, sl_wall) = sync_into_store(&rt, &sl_plugin, &sl_env, &dir.join("sl.db")).await;
    drop(sl);
    let sl_rate = sl_report.nodes_written() as f64 / sl_wall.as_secs_f64();
    let azure_nodes = report.nodes_written() as f64 / wall.as_secs_f64();
    println!(
        "baseline, same run: Spacelift {} stacks x {} runs, {} nodes and {} edges in {:.2} s: \
         {sl_rate:.0} resources (nodes)/s",
        SPACELIFT.0,
        SPACELIFT.1,
        sl_report.nodes_written(),
        sl_report.edges_written(),
        sl_wall.as_secs_f64(),
    );
    println!(
        "  Azure / Spacelift: {:.2} in resources/s, {:.2} in nodes/s",
        rate / sl_rate,
        azure_nodes / sl_rate
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

/// A sink that keeps nothing: the sync without the store.
struct Discard;

impl StateStore for Discard {
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(async { Ok(None) })
    }
}

impl GraphSink for Discard {
    async fn prepare(&self, _: &Manifest) -> Result<(), SinkError> {
        Ok(())
    }
    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        Ok(1)
    }
    async fn lease(
        &self,
        _: &WriteScope,
        _: &infragraph_core::Holder,
        _: std::time::Duration,
    ) -> Result<(), SinkError> {
        Ok(())
    }
    async fn release(&self, _: &WriteScope, _: &infragraph_core::Holder) -> Result<(), SinkError> {
        Ok(())
    }
    async fn write_nodes(
        &self,
        _: &WriteScope,
        _: &[String],
        _: &NodeBatch,
    ) -> Result<(), SinkError> {
        Ok(())
    }
    async fn write_edges(&self, _: &WriteScope, _: &EdgeBatch) -> Result<u64, SinkError> {
        Ok(0)
    }
    async fn publish(
        &self,
        _: &WriteScope,
        _: &infragraph_core::Publish<'_>,
    ) -> Result<ChangeCounts, SinkError> {
        Ok(ChangeCounts::default())
    }
    async fn discard(&self, _: &WriteScope) -> Result<ChangeCounts, SinkError> {
        Ok(ChangeCounts::default())
    }
    async fn commit_state(
        &self,
        _: &str,
        _: &str,
        _: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
    async fn record_run(&self, _: &RunRecord) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The per-type listings the plugin reads (its `rules::DETAILED`).
const DETAILED: &[(&str, &str)] = &[
    ("microsoft.compute/virtualmachines", "2024-07-01"),
    ("microsoft.network/networkinterfaces", "2024-05-01"),
    ("microsoft.network/virtualnetworks", "2024-05-01"),
    ("microsoft.network/privateendpoints", "2024-05-01"),
    ("microsoft.web/sites", "2023-12-01"),
    ("microsoft.insights/components", "2020-02-02"),
    ("microsoft.eventgrid/systemtopics", "2022-06-15"),
    ("microsoft.network/dnszones", "2018-05-01"),
    ("microsoft.network/privatednszones", "2020-06-01"),
    (
        "microsoft.managedidentity/userassignedidentities",
        "2023-01-31",
    ),
    ("microsoft.insights/metricalerts", "2018-03-01"),
];

/// Every listing the plugin walks, fetched and parsed by a plain client, 16 at a time:
/// the HTTP share of a sync.
/// The types whose diagnostic settings the plugin reads by default: its manifest's
/// default for `diagnostic_types`.
async fn diagnosed_types(rt: &Runtime, plugin: &std::path::Path) -> Vec<String> {
    let plugin = rt.load(plugin, None).await.expect("the plugin loads");
    let key = plugin
        .manifest()
        .config
        .iter()
        .find(|k| k.name == "diagnostic_types")
        .expect("the azure plugin has diagnostic_types");
    match &key.default {
        Some(ConfigValue::TextList(types)) => types.clone(),
        other => panic!("diagnostic_types defaults to {other:?}, not a list"),
    }
}

async fn http_only(url: &str, tenant: &str, diagnosed: &[String]) -> Duration {
    let client = reqwest::Client::new();
    let token = async |scope: &str| -> String {
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            AzureSim::CLIENT_ID,
            AzureSim::CLIENT_SECRET,
            scope.replace(':', "%3A").replace('/', "%2F")
        );
        let resp = client
            .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("a token");
        let body: Value =
            serde_json::from_slice(&resp.bytes().await.expect("a body")).expect("JSON");
        body["access_token"].as_str().expect("a token").to_owned()
    };
    let started = Instant::now();
    let arm = token("https://management.azure.com/.default").await;
    let graph = token("https://graph.microsoft.com/.default").await;
    let subs = walk(
        &client,
        &arm,
        vec![format!("{url}/subscriptions?api-version=2022-12-01")],
        "nextLink",
    )
    .await;
    let mut listings = Vec::new();
    for s in subs.iter().filter_map(|s| s["subscriptionId"].as_str()) {
        let base = format!("{url}/subscriptions/{s}");
        listings.push(format!(
            "{base}/resourcegroups?api-version=2021-04-01&$top=1000"
        ));
        listings.push(format!(
            "{base}/resources?api-version=2021-04-01&$expand=provisioningState&$top=1000"
        ));
        for (ty, api) in DETAILED {
            listings.push(format!("{base}/providers/{ty}?api-version={api}"));
        }
        for what in ["roleDefinitions", "roleAssignments"] {
            listings.push(format!(
                "{base}/providers/Microsoft.Authorization/{what}?api-version=2022-04-01"
            ));
        }
    }
    let resources = walk(&client, &arm, listings, "nextLink").await;
    // Each diagnosed resource's settings; a resource comes from two listings when its type
    // is also listed with properties, and is asked for once.
    let mut diagnosed: Vec<String> = resources
        .iter()
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| diagnosed.iter().any(|d| d.eq_ignore_ascii_case(t)))
        })
        .filter_map(|r| r["id"].as_str())
        .map(|id| {
            format!(
                "{url}{id}/providers/Microsoft.Insights/diagnosticSettings?api-version=2021-05-01-preview"
            )
        })
        .collect();
    diagnosed.sort();
    diagnosed.dedup();
    walk(&client, &arm, diagnosed, "nextLink").await;
    let g = |path: &str| format!("{url}/v1.0/{path}?$top=999");
    let graph_lists = vec![
        g("users"),
        g("groups"),
        g("servicePrincipals"),
        g("directory/administrativeUnits"),
    ];
    let groups = walk(&client, &graph, graph_lists, "@odata.nextLink").await;
    let members = groups
        .iter()
        .filter(|g| g.get("securityEnabled").is_some())
        .filter_map(|g| g["id"].as_str())
        .map(|id| g(&format!("groups/{id}/members")))
        .collect();
    walk(&client, &graph, members, "@odata.nextLink").await;
    started.elapsed()
}

/// Walks listings following `next`, 16 requests in flight; returns every item.
async fn walk(
    client: &reqwest::Client,
    token: &str,
    mut open: Vec<String>,
    next: &str,
) -> Vec<Value> {
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let mut items = Vec::new();
    while !open.is_empty() {
        let mut set = tokio::task::JoinSet::new();
        for u in open.drain(..) {
            let (client, token, permits) = (client.clone(), token.to_owned(), permits.clone());
            set.spawn(async move {
                let _p = permits.acquire_owned().await.expect("open");
                let r = client
                    .get(&u)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("an answer");
                serde_json::from_slice::<Value>(&r.bytes().await.expect("a body")).expect("JSON")
            });
        }
        while let Some(body) = set.join_next().await {
            let mut body = body.expect("joined");
            if let Some(n) = body[next].as_str() {
                open.push(n.to_owned());
            }
            if let Some(Value::Array(v)) = body.get_mut("value").map(Value::take) {
                items.extend(v);
            }
        }
    }
    items
}
