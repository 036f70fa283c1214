//! The connections benchmark (issue 18): many accounts of one provider synced by ONE
//! `infragraph sync` (the release binary, embedded store), from one multi-account
//! simulator answering at 100 ms per request, against two baselines from the same run:
//! one account alone, and the accounts synced one after another (ten of them, in one
//! process at `--concurrency 1`, extrapolated to all, which the output says). An
//! unmeasured sync first compiles the plugin into the cache. One alone and all at once
//! are measured in turns (three by default), and their medians compared: on a shared
//! machine the same sync of all 200 took from 3.4 to 5.1 s (4.9 to 7.4 s of CPU) within
//! an hour, so one turn says as much about the machine as about the code. The peak RSS
//! of the `infragraph` process comes from `wait4`'s rusage (`ru_maxrss`).
//!
//! - `connections`: 200 Scaleway Organizations of about 500 resources each (100k in all).
//! - `connections-azure`: 20 Azure tenants of the Azure benchmark's shape (20
//!   subscriptions, resources in stacks of five, users in nested groups of 20), each a
//!   twentieth of its size, so that the 20 together hold what its one tenant holds.
//!
//! The config is generated: one `[connections.<name>]` per account with its own
//! endpoint, ids and a secret read from a file (`{ file = ... }`), the global
//! `concurrency` bound written at the top. Targets (all accounts in at most 5x one
//! account's time, peak RSS under 500 MB) are reported as met or missed, never asserted.
//! Also the config writer the end-to-end tests of connections use ([`write_config`]).
//!
//! The latest figures are in the README's "Connections"; where the time goes, what was
//! tried and how to judge a change on a machine that drifts, in
//! `docs/benchmarks/connections.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sim::ids::uuid;
use crate::sim::{Account, AzureData, AzureSim, ScalewayData, ScalewaySim};

/// One `[connections.<name>]` table.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Its name: its address is `<plugin>/<name>`.
    pub name: String,
    pub plugin: String,
    /// The plugin's config keys, as under `[plugins.<plugin>]`.
    pub config: Vec<(String, String)>,
    /// Credentials by name, with their values: [`write_config`] writes each to a file of
    /// its own and names the file, never the value.
    pub secrets: Vec<(String, String)>,
    /// `[connections.<name>.limits]`, e.g. `("per_host_rate", 5)`.
    pub limits: Vec<(String, u64)>,
}

impl Connection {
    pub fn new(plugin: &str, name: &str) -> Connection {
        Connection {
            name: name.to_owned(),
            plugin: plugin.to_owned(),
            config: Vec::new(),
            secrets: Vec::new(),
            limits: Vec::new(),
        }
    }

    /// Sets config key `key`.
    pub fn config(mut self, key: &str, value: &str) -> Connection {
        self.config.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets credential `key` (written to a file).
    pub fn secret(mut self, key: &str, value: &str) -> Connection {
        self.secrets.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets limit `key`.
    pub fn limit(mut self, key: &str, value: u64) -> Connection {
        self.limits.push((key.to_owned(), value));
        self
    }

    /// Its address, `<plugin>/<name>`.
    pub fn address(&self) -> String {
        format!("{}/{}", self.plugin, self.name)
    }
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of a config file holding `connections` (and `concurrency` when given), each
/// secret read from a file under `dir/secrets/` (written here).
pub fn config_text(dir: &Path, concurrency: Option<usize>, connections: &[Connection]) -> String {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("a secrets directory");
    let mut toml = String::new();
    if let Some(n) = concurrency {
        let _ = writeln!(toml, "concurrency = {n}");
    }
    for c in connections {
        let _ = writeln!(toml, "\n[connections.{}]", c.name);
        let _ = writeln!(toml, "plugin = {}", quoted(&c.plugin));
        for (k, v) in &c.config {
            let _ = writeln!(toml, "{k} = {}", quoted(v));
        }
        if !c.secrets.is_empty() {
            let _ = writeln!(toml, "[connections.{}.secrets]", c.name);
            for (k, v) in &c.secrets {
                let file = secrets.join(format!("{}.{k}", c.name));
                std::fs::write(&file, v).expect("a secret file");
                let _ = writeln!(
                    toml,
                    "{k} = {{ file = {} }}",
                    quoted(&file.to_string_lossy())
                );
            }
        }
        if !c.limits.is_empty() {
            let _ = writeln!(toml, "[connections.{}.limits]", c.name);
            for (k, v) in &c.limits {
                let _ = writeln!(toml, "{k} = {v}");
            }
        }
    }
    toml
}

/// Writes [`config_text`] to `dir/infragraph.toml` and returns its path.
pub fn write_config(dir: &Path, concurrency: Option<usize>, connections: &[Connection]) -> PathBuf {
    let path = dir.join("infragraph.toml");
    std::fs::write(&path, config_text(dir, concurrency, connections)).expect("a config file");
    path
}

/// One `infragraph` process, run to its end.
#[derive(Debug)]
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size, KiB (`ru_maxrss`).
    pub peak_rss_kib: u64,
    /// CPU time, user and system (`ru_utime` + `ru_stime`).
    pub cpu: Duration,
    pub code: i32,
    pub stderr: String,
}

/// The first argument that makes a benchmark binary the measuring helper of
/// [`run_measured`] (see [`measure_main`]).
const MEASURE: &str = "__measure-child";

/// Runs `cmd` to its end with its output in files under `dir`, timing it and reading its
/// peak RSS and CPU time from `wait4`'s rusage.
///
/// Through a helper: this binary re-executed as [`MEASURE`], which starts `cmd` and waits
/// for it. Started from this process directly, the child's `ru_maxrss` counted this
/// process's own memory at the moment of the spawn (the child shares it until it
/// executes `infragraph`, and the kernel keeps that peak across `exec`): the simulator's
/// 200 accounts made an `infragraph` of 48 MB read as 276 MB. The helper is a few MB.
pub fn run_measured(cmd: &mut Command, dir: &Path) -> Measured {
    let out = std::fs::File::create(dir.join("stdout.txt")).expect("a stdout file");
    let err_path = dir.join("stderr.txt");
    let err = std::fs::File::create(&err_path).expect("a stderr file");
    let usage_path = dir.join("rusage.txt");
    let mut helper = Command::new(std::env::current_exe().expect("this binary"));
    helper.arg(MEASURE).arg(&usage_path).arg(cmd.get_program());
    helper.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        helper.current_dir(d);
    }
    let started = Instant::now();
    let status = helper
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .expect("the measuring helper starts");
    let wall = started.elapsed();
    let usage = std::fs::read_to_string(&usage_path).unwrap_or_default();
    let field = |i: usize| -> u64 {
        usage
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Measured {
        wall,
        peak_rss_kib: field(0),
        cpu: Duration::from_micros(field(1)),
        code: status.code().unwrap_or(-1),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// The measuring helper, when this process was started as one by [`run_measured`]:
/// `<exe> __measure-child <usage file> <program> <args...>` runs the program with this
/// process's standard streams, writes its peak RSS (KiB) and CPU time (microseconds) to
/// the usage file and exits with its code. `None` otherwise: call it first in `main`.
pub fn measure_main() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != MEASURE {
        return None;
    }
    let usage_path = PathBuf::from(args.next().expect("a usage file"));
    let program = args.next().expect("a program");
    Some(measure(Command::new(program).args(args), &usage_path))
}

/// Runs `cmd` and writes its peak RSS and CPU time to `usage_path` (see [`measure_main`]).
fn measure(cmd: &mut Command, usage_path: &Path) -> std::process::ExitCode {
    let child = cmd.spawn().expect("the measured program starts");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 writes it and the status for our own child,
    // which `Child` never waits for afterwards (it is dropped without `wait`).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let line = format!("{} {}\n", usage.ru_maxrss, cpu_time(&usage).as_micros());
    std::fs::write(usage_path, line).expect("the usage file");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The runs of a `--report` file; none when it is missing or not a list.
pub fn report_runs(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// What a report's `runs` say: runs, runs that succeeded, nodes written.
pub fn report_totals(runs: &[Value]) -> (usize, usize, u64) {
    let ok = runs.iter().filter(|r| r["status"] == "succeeded").count();
    let nodes = runs
        .iter()
        .filter_map(|r| r["nodes"].as_object())
        .flat_map(|n| n.values())
        .map(|c| c["created"].as_u64().unwrap_or(0) + c["updated"].as_u64().unwrap_or(0))
        .sum();
    (runs.len(), ok, nodes)
}

/// When, in one sync of many connections, the work ended: seconds from the start of the
/// process to the end of the last plugin, to the end of the last run (its `finished_at`,
/// once published), and to the process's end. Between the first two the store's one
/// writer publishes the runs still waiting (the serial tail); after the second the
/// process closes the store and writes the report.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    pub last_plugin: f64,
    pub last_finished: f64,
    pub process: f64,
}

/// [`Ends`] of the sync that started at `started` and took `wall`, from its report's
/// `runs` (each run's `started_at`, its phases `prepare_ms` and `sync_ms`, its
/// `finished_at`); `None` when the report says nothing of that.
pub fn report_ends(runs: &[Value], started: std::time::SystemTime, wall: Duration) -> Option<Ends> {
    let since = |v: &Value| -> Option<f64> {
        let t = humantime::parse_rfc3339(v.as_str()?).ok()?;
        Some(match t.duration_since(started) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        })
    };
    let mut ends = Ends {
        last_plugin: 0.0,
        last_finished: 0.0,
        process: wall.as_secs_f64(),
    };
    for r in runs {
        let start = since(&r["started_at"])?;
        let phase = |name: &str| r["phases"][name].as_f64().unwrap_or(0.0) / 1000.0;
        let plugin_end = start + phase("prepare_ms") + phase("sync_ms");
        ends.last_plugin = ends.last_plugin.max(plugin_end);
        ends.last_finished = ends.last_finished.max(since(&r["finished_at"])?);
    }
    (!runs.is_empty()).then_some(ends)
}

/// The benchmark's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A tenth of the accounts (`--quick`).
    pub quick: bool,
    /// The `concurrency` written in the config.
    pub concurrency: usize,
    /// Turns of one alone and all at once (`--repeat N`); their medians are compared.
    pub repeat: usize,
}

/// Latency of every simulated response.
pub const LATENCY: Duration = Duration::from_millis(100);
/// Scaleway Organizations at full size.
pub const ORGANIZATIONS: usize = 200;
/// Resources per Organization, at least.
pub const RESOURCES_PER_ORG: usize = 500;
/// Azure tenants at full size.
pub const TENANTS: usize = 20;
/// Accounts synced one after another, extrapolated to all.
pub const SEQUENTIAL: usize = 10;

/// The Azure benchmark's tenant (`bench_azure`): 20 subscriptions, 50,000 resources,
/// 20,000 users; each tenant here holds a twentieth of it.
const AZURE_SHAPE: (usize, usize, usize) = (20, 50_000, 20_000);

/// The instances per project that give a generated Organization of two projects at
/// least `resources` resources.
fn instances_for(resources: usize) -> usize {
    (1..)
        .find(|n| ScalewayData::generate(2, *n).resource_count() >= resources)
        .expect("some size is large enough")
}

/// One result line: a figure beside its baseline and their ratio.
fn line(what: &str, figure: Duration, baseline: &str, base: Duration) -> String {
    format!(
        "  {what}: {:.1} s; {baseline}: {:.1} s; ratio {:.2}x",
        figure.as_secs_f64(),
        base.as_secs_f64(),
        figure.as_secs_f64() / base.as_secs_f64().max(1e-9)
    )
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Runs the comparison for `connections` of one simulator (already serving): one alone,
/// [`SEQUENTIAL`] one after another, all in one sync. Prints the figures; false when a
/// sync failed outright.
fn compare(title: &str, dir: &Path, settings: Settings, connections: &[Connection]) -> bool {
    let config = write_config(dir, Some(settings.concurrency), connections);
    let config = config.to_string_lossy().into_owned();
    // One `infragraph sync` of `targets` (none: every connection) at `concurrency`.
    let sync = |store: &str, targets: &[String], concurrency: usize, report: &str| {
        let run_dir = dir.join(report.trim_end_matches(".json"));
        std::fs::create_dir_all(&run_dir).expect("a run directory");
        let store = dir.join(store).to_string_lossy().into_owned();
        let report_path = dir.join(report);
        let report_arg = report_path.to_string_lossy().into_owned();
        let concurrency = concurrency.to_string();
        let mut args = vec!["--config", config.as_str(), "sync"];
        args.extend(targets.iter().map(String::as_str));
        args.extend(["--store", store.as_str(), "--report", report_arg.as_str()]);
        args.extend(["--concurrency", concurrency.as_str()]);
        let started = std::time::SystemTime::now();
        let measured = run_measured(&mut crate::cli::infragraph(dir, &args), &run_dir);
        // Read once: 200 runs make a report of some 600 KB.
        let runs = report_runs(&report_path);
        let totals = report_totals(&runs);
        let ends = report_ends(&runs, started, measured.wall);
        (measured, (totals, ends))
    };
    println!("{title}");
    println!(
        "  --concurrency {} for all at once (connections synced at once; also `concurrency` in \
         the generated config), {} ms per response",
        settings.concurrency,
        LATENCY.as_millis()
    );
    let first = [connections[0].address()];
    // Unmeasured: compiles the plugin into the cache, so no figure carries that.
    let (warm, _) = sync("warm-up.db", &first, 1, "warm-up.json");
    if warm.code != 0 {
        println!(
            "  one connection alone FAILED (exit {}): {}\n",
            warm.code,
            warm.stderr.trim()
        );
        return false;
    }
    let n = SEQUENTIAL.min(connections.len());
    let firsts: Vec<String> = connections
        .iter()
        .take(n)
        .map(Connection::address)
        .collect();
    let (seq, (seq_totals, _)) = sync("sequential.db", &firsts, 1, "sequential.json");
    let sequential = seq.wall;
    let sequential_ok = seq.code == 0 && seq_totals.1 == n;
    let extrapolated = sequential.mul_f64(connections.len() as f64 / n as f64);
    // One alone and all at once in turns, so that a drift of the machine's speed during
    // the benchmark weighs on both alike; each pair writes fresh stores, removed after.
    let mut ones = Vec::new();
    let mut alls = Vec::new();
    let mut serving = Vec::new();
    let mut floors = Vec::new();
    let mut all_totals = (0, 0, 0);
    let mut one_totals = (0, 0, 0);
    let mut all_ends = Vec::new();
    for r in 0..settings.repeat.max(1) {
        let (one, (totals, _)) = sync(&format!("one-{r}.db"), &first, 1, &format!("one-{r}.json"));
        one_totals = totals;
        let before = own_cpu();
        let (all, (totals, ends)) = sync(
            &format!("all-{r}.db"),
            &[],
            settings.concurrency,
            &format!("all-{r}.json"),
        );
        let served = own_cpu().saturating_sub(before);
        serving.push(served);
        floors.push((all.cpu + served).div_f64(cores() as f64));
        all_ends.extend(ends);
        for store in [format!("one-{r}.db"), format!("all-{r}.db")] {
            remove_store(&dir.join(store));
        }
        if all.code != 0 {
            println!(
                "  all at once, turn {}: exit {}; stderr: {}",
                r + 1,
                all.code,
                all.stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        // The worst turn's counts, so that a turn that lost runs shows.
        if r == 0 || totals.1 < all_totals.1 {
            all_totals = totals;
        }
        ones.push(one);
        alls.push(all);
    }
    let one = Spread::of(&ones);
    let all = Spread::of(&alls);
    let all_code = alls.iter().map(|m| m.code).find(|c| *c != 0).unwrap_or(0);
    let turns = match alls.len() {
        1 => String::new(),
        n => format!(", median of {n} turns (range)"),
    };
    println!(
        "  one connection alone{}: {}, {} of CPU, {} nodes, peak RSS {:.0} MB",
        turns,
        one.wall,
        one.cpu,
        one_totals.2,
        one.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "  {n} one after another (one process, --concurrency 1): {:.1} s{}; extrapolated to \
         {}: {:.1} s",
        sequential.as_secs_f64(),
        if sequential_ok { "" } else { " (some FAILED)" },
        connections.len(),
        extrapolated.as_secs_f64()
    );
    println!(
        "  all {} in one sync{turns}: {}, {} of CPU, exit {all_code}, {} runs ({} succeeded), \
         {} nodes",
        connections.len(),
        all.wall,
        all.cpu,
        all_totals.0,
        all_totals.1,
        all_totals.2
    );
    serving.sort();
    println!(
        "  the simulator, in this process, meanwhile: {:.1} s of CPU (median; on the same {} cores)",
        serving[serving.len() / 2].as_secs_f64(),
        cores()
    );
    // The least time any schedule of that work could take on these cores: the ratio
    // cannot go below it without less work (the sync's or the simulator's), whatever the
    // order, priorities or overlap.
    floors.sort();
    let floor = floors[floors.len() / 2];
    println!(
        "  the work alone, both processes' CPU over {} cores (median): {:.1} s, {:.2}x one alone",
        cores(),
        floor.as_secs_f64(),
        floor.as_secs_f64() / one.wall.median.as_secs_f64().max(1e-9)
    );
    if !all_ends.is_empty() {
        let median = |pick: fn(&Ends) -> f64| {
            let mut v: Vec<f64> = all_ends.iter().map(pick).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (plugin, finished, process) = (
            median(|e| e.last_plugin),
            median(|e| e.last_finished),
            median(|e| e.process),
        );
        println!(
            "  where all at once ended (medians, from the process's start): the last plugin at \
             {plugin:.2} s, the last run at {finished:.2} s (the writer's tail, {:.2} s), the \
             process at {process:.2} s (closing and the report, {:.2} s)",
            finished - plugin,
            process - finished
        );
    }
    let ratio = all.wall.median.as_secs_f64() / one.wall.median.as_secs_f64().max(1e-9);
    println!(
        "{}",
        line(
            &format!("all {} (median)", connections.len()),
            all.wall.median,
            "one alone (median)",
            one.wall.median
        )
    );
    println!("    (target <= 5x: {})", met(ratio <= 5.0));
    println!(
        "{} (a speed-up of {:.1}x)",
        line(
            &format!("all {} (median)", connections.len()),
            all.wall.median,
            &format!("one after another (extrapolated from {n})"),
            extrapolated
        ),
        extrapolated.as_secs_f64() / all.wall.median.as_secs_f64().max(1e-9)
    );
    println!(
        "  peak RSS of the infragraph process (wait4 ru_maxrss, the highest turn): {:.0} MB; \
         one alone {:.0} MB (target < 500 MB: {})\n",
        all.peak_rss_kib as f64 / 1024.0,
        one.peak_rss_kib as f64 / 1024.0,
        met(all.peak_rss_kib < 500 * 1024)
    );
    all_code == 0 || all_totals.1 > 0
}

/// The cores this machine lends the benchmark's processes.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Times of several turns: their median and range.
struct Times {
    median: Duration,
    min: Duration,
    max: Duration,
    turns: usize,
}

impl Times {
    /// The median is the middle turn, the later of the two middle ones for an even count.
    fn of(mut times: Vec<Duration>) -> Times {
        times.sort();
        Times {
            median: times[times.len() / 2],
            min: times[0],
            max: times[times.len() - 1],
            turns: times.len(),
        }
    }
}

impl std::fmt::Display for Times {
    /// `4.3 s` for one turn; `4.3 s (4.1-4.6)`, the median and the range, for several.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} s", self.median.as_secs_f64())?;
        if self.turns > 1 {
            write!(
                f,
                " ({:.1}-{:.1})",
                self.min.as_secs_f64(),
                self.max.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

/// The turns of one measurement: wall and CPU time, and the highest peak RSS.
struct Spread {
    wall: Times,
    cpu: Times,
    peak_rss_kib: u64,
}

impl Spread {
    fn of(turns: &[Measured]) -> Spread {
        Spread {
            wall: Times::of(turns.iter().map(|m| m.wall).collect()),
            cpu: Times::of(turns.iter().map(|m| m.cpu).collect()),
            peak_rss_kib: turns.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0),
        }
    }
}

/// Removes a store and its write-ahead log, so that turns do not fill the disk.
fn remove_store(path: &Path) {
    let name = path.to_string_lossy().into_owned();
    for file in [name.clone(), format!("{name}-wal"), format!("{name}-shm")] {
        let _ = std::fs::remove_file(file);
    }
}

/// This process's CPU time so far, user and system: the simulator's, while `infragraph`
/// runs (it shares the machine's cores, which a real provider's API does not).
fn own_cpu() -> Duration {
    // SAFETY: rusage is plain data, which getrusage fills for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    cpu_time(&usage)
}

/// User plus system time of a `rusage`.
fn cpu_time(usage: &libc::rusage) -> Duration {
    let t = |v: libc::timeval| {
        Duration::from_secs(u64::try_from(v.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(v.tv_usec).unwrap_or(0))
    };
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("infragraph-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// `connections`: Scaleway Organizations, each its own key, from one simulator.
pub fn scaleway(settings: Settings) -> bool {
    let orgs = if settings.quick {
        ORGANIZATIONS / 10
    } else {
        ORGANIZATIONS
    };
    let instances = instances_for(RESOURCES_PER_ORG);
    let datas: Vec<ScalewayData> = (0..orgs)
        .map(|i| ScalewayData::generate_org(i, 2, instances))
        .collect();
    let resources: usize = datas.iter().map(ScalewayData::resource_count).sum();
    let ids: Vec<String> = datas.iter().map(|d| d.organization_id.clone()).collect();
    // Secret keys shaped as Scaleway's are (UUIDs): what the host scrubs from every
    // response, among the UUIDs every listing is full of.
    let key = |i: usize| uuid(0x5ec, 0, i as u64);
    let sim = ScalewaySim::start_many(
        datas
            .into_iter()
            .enumerate()
            .map(|(i, d)| Account::new(d, key(i), ""))
            .collect(),
    );
    sim.set_latency(LATENCY);
    let connections: Vec<Connection> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Connection::new("scaleway", &format!("org-{i:03}"))
                .config("api_url", &sim.url())
                .config("organization_id", id)
                .secret("secret_key", &key(i))
        })
        .collect();
    let dir = scratch("connections");
    let ok = compare(
        &format!(
            "connections: {orgs} Scaleway Organizations x ~{} resources (2 projects x {instances} \
             instances) = {resources} resources, one simulator, one key per Organization",
            resources / orgs
        ),
        &dir,
        settings,
        &connections,
    );
    println!("  simulator: {} requests in all\n", sim.total_requests());
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

/// `connections-azure`: Azure tenants, each its own client, from one simulator.
pub fn azure(settings: Settings) -> bool {
    let tenants = if settings.quick {
        TENANTS / 10
    } else {
        TENANTS
    };
    let (subs, resources, users) = AZURE_SHAPE;
    let (resources, users) = (resources / TENANTS, users / TENANTS);
    // Client ids and secrets shaped as Entra's are (a GUID; 40 characters with `8Q~`).
    let client = |i: usize| {
        let secret = uuid(0xc5, 1, i as u64).replace('-', "");
        (uuid(0xc1, 1, i as u64), format!("Xy{}8Q~{secret}", i % 10))
    };
    let sim = AzureSim::start_many(
        (0..tenants)
            .map(|i| {
                let (id, secret) = client(i);
                Account::new(
                    AzureData::generate_tenant(i, subs, resources, users),
                    id,
                    secret,
                )
            })
            .collect(),
    );
    sim.set_latency(LATENCY);
    let connections: Vec<Connection> = sim
        .tenant_ids()
        .iter()
        .enumerate()
        .map(|(i, tenant)| {
            let (id, secret) = client(i);
            Connection::new("azure", &format!("tenant-{i:02}"))
                .config("tenant_id", tenant)
                .config("client_id", &id)
                .config("login_url", &sim.url())
                .config("arm_url", &sim.url())
                .config("graph_url", &sim.url())
                .secret("client_secret", &secret)
        })
        .collect();
    let dir = scratch("connections-azure");
    let ok = compare(
        &format!(
            "connections-azure: {tenants} Azure tenants x ({subs} subscriptions, {resources} \
             resources, {users} users: the Azure benchmark's shape at 1/{TENANTS} of its size), \
             one simulator, one client per tenant"
        ),
        &dir,
        settings,
        &connections,
    );
    println!("  simulator: {} requests in all\n", sim.total_requests());
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_secret_files_never_values() {
        let dir = scratch("config-test");
        let c = Connection::new("scaleway", "org-001")
            .config("api_url", "http://127.0.0.1:1")
            .config("organization_id", "o\"1")
            .secret("secret_key", "s3cr3t")
            .limit("per_host_rate", 5);
        let text = config_text(&dir, Some(8), &[c]);
        assert!(text.starts_with("concurrency = 8\n"), "{text}");
        assert!(text.contains("[connections.org-001]\nplugin = \"scaleway\"\n"));
        assert!(text.contains("organization_id = \"o\\\"1\""));
        assert!(text.contains("[connections.org-001.limits]\nper_host_rate = 5\n"));
        assert!(!text.contains("s3cr3t"));
        let file = dir.join("secrets").join("org-001.secret_key");
        assert_eq!(std::fs::read_to_string(file).unwrap(), "s3cr3t");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_generated_org_holds_about_500_resources() {
        let n = instances_for(RESOURCES_PER_ORG);
        let count = ScalewayData::generate(2, n).resource_count();
        assert!(
            (RESOURCES_PER_ORG..RESOURCES_PER_ORG + 10).contains(&count),
            "{count}"
        );
    }

    #[test]
    fn a_reports_ends_are_its_last_plugin_and_last_run_from_the_start() {
        let dir = scratch("ends-test");
        let report = dir.join("report.json");
        // Two runs: the later plugin end is the second's (1.0 + 0.1 + 2.0), the later
        // end of a run the first's.
        let text = r#"[
            {"started_at": "2026-12-07T10:00:00.500Z", "finished_at": "2026-12-07T10:00:04.000Z",
             "phases": {"prepare_ms": 0, "sync_ms": 2000}},
            {"started_at": "2026-12-07T10:00:01.000Z", "finished_at": "2026-12-07T10:00:03.500Z",
             "phases": {"prepare_ms": 100, "sync_ms": 2000}}
        ]"#;
        std::fs::write(&report, text).unwrap();
        let started = humantime::parse_rfc3339("2026-12-07T10:00:00Z").unwrap();
        let ends =
            report_ends(&report_runs(&report), started, Duration::from_millis(4200)).unwrap();
        assert!((ends.last_plugin - 3.1).abs() < 1e-6, "{ends:?}");
        assert!((ends.last_finished - 4.0).abs() < 1e-6, "{ends:?}");
        assert!((ends.process - 4.2).abs() < 1e-6, "{ends:?}");
        // A report without runs, or without times, says nothing.
        std::fs::write(&report, "[]").unwrap();
        assert!(report_ends(&report_runs(&report), started, Duration::ZERO).is_none());
        std::fs::write(&report, r#"[{"phases": {}}]"#).unwrap();
        assert!(report_ends(&report_runs(&report), started, Duration::ZERO).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wait4_reads_a_childs_peak_rss_and_exit_code() {
        let dir = scratch("wait4-test");
        let usage = dir.join("rusage.txt");
        let code = measure(Command::new("sh").args(["-c", "exit 3"]), &usage);
        assert_eq!(code, std::process::ExitCode::from(3));
        let text = std::fs::read_to_string(&usage).unwrap();
        let rss: u64 = text.split_whitespace().next().unwrap().parse().unwrap();
        assert!(rss > 0, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
