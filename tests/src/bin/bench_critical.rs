//! The Critical benchmark (issue 9): a generated organisation of 100,000 principals,
//! 10,000 groups nested 10 levels deep and 5,000 projects, synced from the simulated
//! ArangoDB into the embedded store. Each figure beside a baseline measured in the same
//! run:
//!
//! - the sync, against a plain native client reading the same cursors with the same batch
//!   size (what reading the database costs before anything is written);
//! - the effective-edge computation inside the plugin (wasm, as the plugin reports it),
//!   against the very same code (`plugins/critical/src/effective.rs`, compiled into this
//!   binary) run natively over the same organisation; and, for scale, a walk from every
//!   principal as a request-time resolver does it.
//!
//! - `access who` on every 100th project (the generic walk over the plugin's declared
//!   access meaning, as the command runs it: `IN_ACL_OF` and `MEMBER_OF`), against reading
//!   the plugin's precomputed `CAN_ACCESS` edges of the project, which carry no access
//!   meaning: every principal must hold the same flags. Full size, 2026-12-05: 19 ms mean,
//!   43 ms slowest (target 2 s), 50 of 50 equal;
//! - one `access who` as its own process (the release binary), on the store and, through
//!   `cargo xtask bench critical`, over Bolt after `infragraph push`: peak RSS (target
//!   200 MB) and equal answers. Full size, 2026-12-05: 31 MB and 0.04 s on the store;
//!   over Bolt (ArcadeDB 26.10, 3.9M records pushed in 275 s) 28 MB and 0.22 s mean,
//!   0.33 s slowest, 5 of 5 equal.
//!
//! The simulator runs in a child process (`bench_critical serve ...`), so the peak RSS is
//! the host's alone: runtime, plugin, engine and store. Nothing is asserted: a busy
//! machine must not fail a build.
//!
//! Run with `cargo xtask bench`, or `cargo run --release -p infragraph-tests --bin
//! bench_critical [--quick]` after `cargo xtask build` with `INFRAGRAPH_TEST_PLUGINS` set.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_engine::RunReport;
use infragraph_runtime::Runtime;
use infragraph_tests::bench::provider::{SimChild, sync_into_store};
use infragraph_tests::bench::{Report, Row, peak_rss_bytes};
use infragraph_tests::harness;
use infragraph_tests::sim::{CriticalData, CriticalSim};
use serde_json::{Value, json};

// The plugin's own code, compiled natively: the computation baseline runs exactly what the
// plugin runs, and the read baseline sends exactly the plugin's queries.
#[allow(dead_code)]
#[path = "../../../plugins/critical/src/effective.rs"]
mod effective;
#[allow(dead_code)]
#[path = "../../../plugins/critical/src/perms.rs"]
mod perms;
#[allow(dead_code)]
#[path = "../../../plugins/critical/src/queries.rs"]
mod queries;

const PRINCIPALS: usize = 100_000;
const GROUPS: usize = 10_000;
const PROJECTS: usize = 5_000;
const DEPTH: usize = 10;
/// The plugin's default.
const BATCH_SIZE: u64 = 1000;
/// Questions asked as separate processes, on each sink.
const CLI_QUESTIONS: usize = 5;
/// The bound on one question's memory, either sink.
const QUESTION_MIB: u64 = 200;

fn main() -> ExitCode {
    if let Some(code) = infragraph_tests::bench::connections::measure_main() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        serve(&args[1..]);
        return ExitCode::SUCCESS;
    }
    let divisor = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(divisor))
}

/// The simulator for the parent: prints its URL, then serves until stdin closes.
fn serve(args: &[String]) {
    let n = |i: usize| -> usize { args[i].parse().expect("serve PRINCIPALS GROUPS PROJECTS") };
    let sim = CriticalSim::start(CriticalData::generate(n(0), n(1), n(2), DEPTH));
    println!("{}", sim.url());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().lines().count();
}

/// The simulator in a child process, and its URL.
struct SimProcess {
    _child: SimChild,
    url: String,
}

impl SimProcess {
    fn start(principals: usize, groups: usize, projects: usize) -> SimProcess {
        let mut child = SimChild::start(&[
            principals.to_string(),
            groups.to_string(),
            projects.to_string(),
        ]);
        let url = child.line("its URL");
        SimProcess { _child: child, url }
    }
}

async fn bench(divisor: usize) -> ExitCode {
    let (principals, groups, projects) =
        (PRINCIPALS / divisor, GROUPS / divisor, PROJECTS / divisor);
    eprintln!("bench: generating {principals} principals, {groups} groups, {projects} projects");
    let sim = SimProcess::start(principals, groups, projects);
    let rt = Arc::new(Runtime::new(None).expect("a wasmtime runtime"));
    let dir =
        std::env::temp_dir().join(format!("infragraph-bench-critical-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");

    eprintln!("bench: syncing");
    let (report, wall) = sync(&rt, &sim.url, &dir.join("critical.db")).await;
    let peak = peak_rss_bytes();
    eprintln!("bench: asking who can access sampled projects");
    let access = access_questions(&rt, &dir.join("critical.db")).await;
    eprintln!("bench: one question per process, on the store and over Bolt");
    let cli = cli_questions(&dir, &access.sampled, CLI_QUESTIONS).await;
    eprintln!("bench: reading the same cursors with a plain client");
    let (rows_read, read_alone) = read_cursors(&sim.url).await;
    drop(sim);
    eprintln!("bench: writing the same graph into a fresh store from jsonl");
    let write_alone = import_alone(&dir);
    let _ = std::fs::remove_dir_all(&dir);

    let summary = report.summary.clone().unwrap_or_default();
    let in_plugin = computed_ms(&summary);
    eprintln!("bench: the same computation natively");
    let data = CriticalData::generate(principals, groups, projects, DEPTH);
    let native = Native::from(&data);
    let (native_time, native_edges) = native.resolve_all();
    let (reach_time, reach_edges) = native.effective_all();
    let (walk_time, walk_edges) = native.walk_all();
    assert_eq!(
        reach_edges, walk_edges,
        "both ways find the same memberships"
    );

    let records = report.nodes_written() + report.edges_written();
    let mut out = Report::default();
    out.rows.push(Row {
        name: format!(
            "Critical sync, {principals} principals, {groups} groups {DEPTH} deep, {projects} projects"
        ),
        figure: format!(
            "{:.1} s, {:.0}k records/s",
            wall.as_secs_f64(),
            records as f64 / wall.as_secs_f64() / 1e3
        ),
        baseline: format!(
            "{:.1} s importing the same graph from jsonl",
            write_alone.as_secs_f64()
        ),
        ratio: Some(write_alone.as_secs_f64() / wall.as_secs_f64()),
        target: String::new(),
        met: None,
    });
    out.rows.push(Row {
        name: "its peak RSS (host: runtime, plugin, engine, store)".into(),
        figure: format!("{} MB", peak >> 20),
        baseline: String::new(),
        ratio: None,
        target: String::new(),
        met: None,
    });
    out.rows.push(Row {
        name: "effective-edge computation in the plugin (wasm)".into(),
        figure: match in_plugin {
            Some(ms) => format!("{ms} ms"),
            None => "not reported".into(),
        },
        baseline: format!("{} ms same code native", native_time.as_millis()),
        ratio: in_plugin.map(|ms| native_time.as_secs_f64() * 1e3 / (ms as f64).max(1.0)),
        target: String::new(),
        met: None,
    });
    out.rows.push(Row {
        name: format!(
            "access who, {} sampled projects (generic walk of the declared access meaning)",
            access.asked
        ),
        figure: format!(
            "{:.0} ms mean, {:.0} ms slowest",
            access.who_total.as_secs_f64() * 1e3 / access.asked.max(1) as f64,
            access.who_max.as_secs_f64() * 1e3
        ),
        baseline: format!(
            "{:.1} ms mean reading the plugin's precomputed CAN_ACCESS",
            access.precomputed_total.as_secs_f64() * 1e3 / access.asked.max(1) as f64
        ),
        ratio: Some(
            access.precomputed_total.as_secs_f64() / access.who_total.as_secs_f64().max(1e-9),
        ),
        target: "< 2 s each; same principals".into(),
        met: Some(access.who_max < Duration::from_secs(2) && access.same == access.asked),
    });
    let question_row = |name: String, asked: &[Asked], extra: String| {
        let mean =
            asked.iter().map(|a| a.wall.as_secs_f64()).sum::<f64>() / asked.len().max(1) as f64;
        let slowest = asked.iter().map(|a| a.wall).max().unwrap_or_default();
        let peak = asked.iter().map(|a| a.peak_kib).max().unwrap_or_default() >> 10;
        Row {
            name,
            figure: format!(
                "{peak} MB peak; {:.2} s mean, {:.2} s slowest",
                mean,
                slowest.as_secs_f64()
            ),
            baseline: extra,
            ratio: None,
            target: format!("< {QUESTION_MIB} MB"),
            met: Some(peak < QUESTION_MIB),
        }
    };
    out.rows.push(question_row(
        format!(
            "one `access who` as its own process, embedded store ({} projects)",
            cli.local.len()
        ),
        &cli.local,
        String::new(),
    ));
    match &cli.bolt {
        Some((pushed, over)) => {
            let mut row = question_row(
                format!("the same over Bolt (ArcadeDB, {} projects)", over.len()),
                over,
                format!(
                    "{} of {} answers equal to the store's; push {:.0} s",
                    cli.bolt_same,
                    over.len(),
                    pushed.as_secs_f64()
                ),
            );
            row.met = row.met.map(|m| m && cli.bolt_same == over.len());
            row.target = format!("< {QUESTION_MIB} MB; same answers");
            out.rows.push(row);
        }
        None => out
            .notes
            .push("Bolt: no server (run through `cargo xtask bench critical`)".into()),
    }
    let p = &report.phases;
    out.notes.push(format!(
        "access: {} of {} sampled projects give every principal the same flags as the \
         plugin's precomputed CAN_ACCESS (the oracle: the plugin's own resolution, while the \
         walk follows IN_ACL_OF and MEMBER_OF), {} principals in all; peak RSS after the \
         questions {} MB{}",
        access.same,
        access.asked,
        access.principals,
        access.peak >> 20,
        access
            .first_difference
            .as_ref()
            .map(|d| format!("; first difference: {d}"))
            .unwrap_or_default()
    ));
    out.notes
        .push(format!("sync: {:?}; {summary}", report.status));
    out.notes.push(format!(
        "{} nodes and {} edges written; phases: sync {} ms (plugin + reads + node writes, \
         overlapped), edges {} ms, cleanup {} ms",
        report.nodes_written(),
        report.edges_written(),
        p.sync_ms,
        p.edges_ms,
        p.cleanup_ms
    ));
    out.notes.push(format!(
        "baseline: the synced graph exported to jsonl, then `import_jsonl` into a fresh store \
         (one native transaction, no plugin, no HTTP): the cost of writing this graph at all. \
         Reading the database alone (the plugin's 9 queries, {rows_read} rows in batches of \
         {BATCH_SIZE}, parsed by a native client) took {:.2} s",
        read_alone.as_secs_f64()
    ));
    out.notes.push(format!(
        "native: {native_edges} effective memberships, permissions and grants resolved; the \
         {walk_edges} effective memberships alone take {} ms by the plugin's per-group reach \
         and {} ms walking from every principal, as a request-time resolver does (this \
         organisation's groups are chains, so each walk is short)",
        reach_time.as_millis(),
        walk_time.as_millis()
    ));
    if !report.errors.is_empty() {
        out.notes.push(format!("errors: {:?}", report.errors));
    }
    print!("{}", out.render());
    ExitCode::SUCCESS
}

/// Per principal (label, id), the single flags it holds on a project.
type Answer = std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>>;

/// A role of an answer as single flags: `FETCH` stays, `tasks: FETCH | MODIFY` gives
/// `tasks: FETCH` and `tasks: MODIFY`.
fn flags(role: &str) -> Vec<String> {
    match role.split_once(": ") {
        Some((service, fs)) => fs.split(" | ").map(|f| format!("{service}: {f}")).collect(),
        None => vec![role.to_string()],
    }
}

/// The first principal on which the walk and the oracle differ, for the notes.
fn difference(project: &str, walked: &Answer, oracle: &Answer) -> String {
    let keys: std::collections::BTreeSet<_> = walked.keys().chain(oracle.keys()).collect();
    for k in keys {
        let (w, o) = (walked.get(k), oracle.get(k));
        if w != o {
            return format!("{project}: {} {}: walk {w:?}, CAN_ACCESS {o:?}", k.0, k.1);
        }
    }
    format!("{project}: no difference found")
}

/// What `access who` took on sampled projects, beside reading the plugin's answer.
struct AccessFigures {
    asked: usize,
    same: usize,
    /// The first disagreement, if any.
    first_difference: Option<String>,
    /// The projects asked about.
    sampled: Vec<String>,
    principals: usize,
    who_total: Duration,
    who_max: Duration,
    precomputed_total: Duration,
    peak: u64,
}

/// `access who` on every 100th project of the synced store, through the same library call
/// as the command, each beside reading the plugin's precomputed `CAN_ACCESS` edges of that
/// project, whose principals it must equal.
async fn access_questions(rt: &Arc<Runtime>, db: &std::path::Path) -> AccessFigures {
    use infragraph_core::{Direction, GraphReader};
    let plugin = rt
        .load(&harness::plugin("critical"), None)
        .await
        .expect("the plugin loads");
    let model = infragraph_app::access::AccessModel::new([plugin.manifest()]);
    let store = infragraph_sink_sqlite::Store::open_existing(db).expect("the synced store");
    // Through the read interface, as the command reads (the store's own methods block).
    let projects = GraphReader::nodes(&store, "CriticalProject", &[], 0)
        .await
        .expect("projects");
    let mut f = AccessFigures {
        asked: 0,
        same: 0,
        first_difference: None,
        sampled: Vec::new(),
        principals: 0,
        who_total: Duration::ZERO,
        who_max: Duration::ZERO,
        precomputed_total: Duration::ZERO,
        peak: 0,
    };
    for project in projects.iter().step_by(100) {
        let started = Instant::now();
        let reaches =
            infragraph_app::access::who(&store, &model, "CriticalProject", &project.id, None)
                .await
                .expect("who");
        let took = started.elapsed();
        let started = Instant::now();
        let precomputed = GraphReader::neighbours(
            &store,
            "CriticalProject",
            &project.id,
            Direction::In,
            &["CAN_ACCESS".to_string()],
        )
        .await
        .expect("neighbours");
        f.precomputed_total += started.elapsed();
        // Per principal, the flags it holds: project-wide (`FETCH`) or on one service
        // (`tasks: MODIFY`), one by one, however the two sides group them.
        let walked: Answer = reaches
            .iter()
            .map(|r| {
                let flags = r.grants.iter().flat_map(|g| flags(&g.role)).collect();
                ((r.node.label.clone(), r.node.id.clone()), flags)
            })
            .collect();
        let oracle: Answer = precomputed
            .iter()
            .map(|(e, n)| {
                let mut held = std::collections::BTreeSet::new();
                for key in ["permissions", "service_permissions"] {
                    for v in e
                        .props
                        .get(key)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        held.extend(flags(v.as_str().unwrap_or_default()));
                    }
                }
                ((n.label.clone(), n.id.clone()), held)
            })
            .collect();
        f.asked += 1;
        if walked == oracle {
            f.same += 1;
        } else if f.first_difference.is_none() {
            f.first_difference = Some(difference(&project.id, &walked, &oracle));
        }
        f.principals += walked.len();
        f.sampled.push(project.id.clone());
        f.who_total += took;
        f.who_max = f.who_max.max(took);
    }
    f.peak = peak_rss_bytes();
    f
}

/// The store the sync wrote, exported to jsonl off the clock, then imported into a fresh
/// store on the clock.
fn import_alone(dir: &std::path::Path) -> Duration {
    let synced = infragraph_sink_sqlite::Store::open_existing(dir.join("critical.db"))
        .expect("the synced store");
    let jsonl = dir.join("critical.jsonl");
    let mut file = std::fs::File::create(&jsonl).expect("a jsonl file");
    synced.export_jsonl(&mut file).expect("export");
    drop(file);
    let fresh = infragraph_sink_sqlite::Store::open(dir.join("imported.db")).expect("a store");
    let mut input = BufReader::new(std::fs::File::open(&jsonl).expect("the jsonl file"));
    let started = Instant::now();
    fresh.import_jsonl(&mut input).expect("import");
    started.elapsed()
}

/// `... computed in N ms ...` from the plugin's summary.
fn computed_ms(summary: &str) -> Option<u64> {
    let (_, rest) = summary.split_once("computed in ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// One sync against the simulator at `url` into a fresh store at `db`.
async fn sync(rt: &Arc<Runtime>, url: &str, db: &std::path::Path) -> (RunReport, Duration) {
    let env = [
        ("DB_CONNECTION_STRING", url),
        ("DB_USER", CriticalSim::USER),
        ("DB_PASSWORD", CriticalSim::PASSWORD),
    ];
    sync_into_store(rt, &harness::plugin("critical"), &env, db).await
}

/// The plugin's nine queries read to their ends by a plain client, all at once, each
/// batch parsed as JSON: the rows read and the time taken.
async fn read_cursors(url: &str) -> (u64, Duration) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let kinds = [
        "users",
        "groups",
        "service_accounts",
        "pipeline_accounts",
        "projects",
    ];
    let all = [
        (queries::LAST_CHANGES, json!({ "kinds": kinds })),
        (queries::LAST_SIGN_INS, json!({})),
        (queries::USERS, json!({"include_deleted": false})),
        (queries::GROUPS, json!({"include_deleted": false})),
        (queries::SERVICE_ACCOUNTS, json!({"include_deleted": false})),
        (
            queries::PIPELINE_ACCOUNTS,
            json!({"include_deleted": false}),
        ),
        (queries::PROJECTS, json!({"include_deleted": false})),
        (queries::MEMBERSHIPS, json!({})),
        (queries::PERMISSIONS, json!({})),
    ];
    let reads = all.into_iter().map(|(q, bind)| {
        let client = client.clone();
        let base = format!("{url}/_db/{}/_api/cursor", CriticalSim::DATABASE);
        async move {
            let send = |request: reqwest::RequestBuilder| async {
                let r = request
                    .basic_auth(CriticalSim::USER, Some(CriticalSim::PASSWORD))
                    .send()
                    .await
                    .expect("the simulator answers");
                let bytes = r.bytes().await.expect("a body");
                serde_json::from_slice::<Value>(&bytes).expect("a JSON batch")
            };
            let body = json!({"query": q.aql, "bindVars": bind, "batchSize": BATCH_SIZE});
            let create = client
                .post(&base)
                .header("content-type", "application/json")
                .body(body.to_string());
            let mut batch = send(create).await;
            let mut rows = 0u64;
            loop {
                rows += batch["result"].as_array().map_or(0, |r| r.len() as u64);
                match (batch["hasMore"].as_bool(), batch["id"].as_str()) {
                    (Some(true), Some(id)) => {
                        batch = send(client.post(format!("{base}/{id}"))).await;
                    }
                    _ => return rows,
                }
            }
        }
    });
    let rows: u64 = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .sum();
    (rows, started.elapsed())
}

/// The organisation as the plugin holds it for the computation: dense indices.
struct Native {
    graph: effective::Memberships,
    grants: effective::Grants,
}

impl Native {
    fn from(data: &CriticalData) -> Native {
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut is_group = Vec::new();
        let mut intern = |key: &str, group: bool, is_group: &mut Vec<bool>| -> u32 {
            let n = index.len() as u32;
            let i = *index.entry(key.to_owned()).or_insert(n);
            if i as usize == is_group.len() {
                is_group.push(group);
            }
            is_group[i as usize] |= group;
            i
        };
        for c in ["users", "groups", "service_accounts", "pipeline_accounts"] {
            for d in data.docs(c) {
                intern(d["_key"].as_str().unwrap(), c == "groups", &mut is_group);
            }
        }
        let key = |v: &Value| v.as_str().unwrap().split_once('/').unwrap().1.to_owned();
        let edges: Vec<(u32, u32)> = data
            .docs("memberships")
            .iter()
            .map(|m| {
                (
                    intern(&key(&m["_from"]), false, &mut is_group),
                    intern(&key(&m["_to"]), true, &mut is_group),
                )
            })
            .collect();
        let n = is_group.len();
        let mut graph = effective::Memberships::new(is_group);
        for (m, g) in edges {
            graph.add(m, g);
        }
        let mut grants = effective::Grants {
            perms: vec![Vec::new(); n],
            access: vec![Vec::new(); n],
        };
        for (i, p) in data.docs("permissions").iter().enumerate() {
            for holder in p["principals"].as_array().into_iter().flatten() {
                if let Some(&h) = index.get(holder.as_str().unwrap()) {
                    grants.perms[h as usize].push(i as u32);
                }
            }
        }
        let mut target = 0u32;
        for c in ["projects", "groups"] {
            for d in data.docs(c) {
                for entry in d["acl"]["list"].as_array().into_iter().flatten() {
                    let stored: perms::Stored =
                        serde_json::from_value(entry["permissions"].clone()).expect("a permission");
                    let bits = perms::decode(&stored).expect("valid flags");
                    for p in entry["principals"].as_array().into_iter().flatten() {
                        if let Some(&h) = index.get(p.as_str().unwrap()) {
                            grants.access[h as usize].push(effective::Access {
                                target,
                                scope: 0,
                                bits,
                            });
                        }
                    }
                }
                target += 1;
            }
        }
        Native { graph, grants }
    }

    /// What the plugin computes: every group's reach, then every principal resolved.
    fn resolve_all(&self) -> (Duration, u64) {
        let started = Instant::now();
        let mut reaches = self.graph.reaches();
        let _cycles = self.graph.cycles();
        let mut edges = 0u64;
        for p in 0..self.graph.len() as u32 {
            let r = reaches.resolve(p, true, &self.grants);
            edges += (r.effective.groups.len() + r.perms.len() + r.access.len()) as u64;
        }
        (started.elapsed(), edges)
    }

    /// Effective memberships alone, by the plugin's per-group reach.
    fn effective_all(&self) -> (Duration, u64) {
        let started = Instant::now();
        let mut reaches = self.graph.reaches();
        let mut edges = 0u64;
        for p in 0..self.graph.len() as u32 {
            edges += reaches.effective(p).groups.len() as u64;
        }
        (started.elapsed(), edges)
    }

    /// Effective memberships alone, by a walk from every principal.
    fn walk_all(&self) -> (Duration, u64) {
        let started = Instant::now();
        let mut edges = 0u64;
        for p in 0..self.graph.len() as u32 {
            edges += effective::walk_from(&self.graph, p).groups.len() as u64;
        }
        (started.elapsed(), edges)
    }
}

/// `infragraph access who CriticalProject <id> --json <place>` as a separate process, as
/// a user runs it: its wall time, peak RSS and answer.
struct Asked {
    wall: Duration,
    peak_kib: u64,
    answer: std::collections::BTreeSet<(String, String, String)>,
}

fn ask_cli(dir: &std::path::Path, project: &str, place: &[&str], env: &[(&str, &str)]) -> Asked {
    let mut args = vec!["access", "who", "CriticalProject", project, "--json"];
    args.extend(place);
    let mut cmd = infragraph_tests::cli::infragraph(dir, &args);
    cmd.envs(env.iter().copied());
    let m = infragraph_tests::bench::connections::run_measured(&mut cmd, dir);
    assert_eq!(m.code, 0, "access who {project}: {}", m.stderr);
    let stdout = std::fs::read_to_string(dir.join("stdout.txt")).expect("its output");
    let doc: Value = serde_json::from_str(&stdout).expect("JSON");
    let mut answer = std::collections::BTreeSet::new();
    for reach in doc.as_array().expect("an array") {
        for g in reach["grants"].as_array().expect("grants") {
            answer.insert((
                reach["node"]["label"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                reach["node"]["id"].as_str().unwrap_or_default().to_string(),
                g["role"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    Asked {
        wall: m.wall,
        peak_kib: m.peak_rss_kib,
        answer,
    }
}

/// One question's process on each sink, and the Bolt answers beside the embedded ones.
struct CliFigures {
    /// Embedded store: per question.
    local: Vec<Asked>,
    /// Bolt: the push of the store, then per question; `None` without a server.
    bolt: Option<(Duration, Vec<Asked>)>,
    /// Bolt answers equal to the embedded store's.
    bolt_same: usize,
}

/// `access who` through the release binary on the first `n` sampled projects: on the
/// embedded store, and (when `cargo xtask bench` started the ArcadeDB server) over Bolt
/// after `infragraph push` copied the store there.
async fn cli_questions(dir: &std::path::Path, sampled: &[String], n: usize) -> CliFigures {
    let work = dir.join("cli");
    std::fs::create_dir_all(&work).expect("a work dir");
    let db = dir.join("critical.db");
    let store = db.to_str().expect("utf-8");
    let local: Vec<Asked> = sampled
        .iter()
        .take(n)
        .map(|p| ask_cli(&work, p, &["--store", store], &[]))
        .collect();
    let mut figures = CliFigures {
        local,
        bolt: None,
        bolt_same: 0,
    };
    if std::env::var_os(infragraph_tests::bolt::URI_VAR).is_none() {
        return figures;
    }
    let server = infragraph_tests::bolt::fresh_database("access_bench").await;
    let place = [
        "--neo4j",
        server.uri.as_str(),
        "--neo4j-user",
        server.user.as_str(),
        "--neo4j-database",
        server.database.as_str(),
    ];
    let env = [("NEO4J_PASSWORD", server.password.as_str())];
    eprintln!("bench: pushing the store into the Bolt server");
    let mut push = vec!["push", "--store", store];
    push.extend(place);
    let started = Instant::now();
    let ran = infragraph_tests::cli::run(
        infragraph_tests::cli::infragraph(&work, &push).envs(env.iter().copied()),
    );
    assert_eq!(ran.code, 0, "push: {}", ran.stderr);
    let pushed = started.elapsed();
    eprintln!("bench: asking over Bolt");
    let over: Vec<Asked> = sampled
        .iter()
        .take(n)
        .map(|p| ask_cli(&work, p, &place, &env))
        .collect();
    figures.bolt_same = over
        .iter()
        .zip(&figures.local)
        .filter(|(b, l)| b.answer == l.answer)
        .count();
    figures.bolt = Some((pushed, over));
    figures
}
