//! What the provider benchmarks (`bench_scaleway`, `bench_spacelift`, `bench_critical`,
//! `bench_azure`)
//! share: the simulator in a child process, one sync of a built plugin against it into a
//! fresh embedded store, and the process's memory figures.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_core::GraphSink;
use infragraph_engine::{Job, Options, RunReport};
use infragraph_runtime::{Limits, Runtime, Source, resolve_config, resolve_secrets};

/// A simulator serving from a child process: this benchmark's own executable run as
/// `<exe> serve <args>`, so that the parent's peak RSS is the host's alone. It prints
/// what the parent needs (its URL, its size) a line each; killed when dropped.
pub struct SimChild {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl SimChild {
    /// Starts `<this exe> serve <args>`.
    pub fn start(args: &[String]) -> SimChild {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the simulator starts");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        SimChild { child, lines }
    }

    /// The next line the simulator printed; `what` names it in the panic if none came.
    pub fn line(&mut self, what: &str) -> String {
        self.lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the simulator did not print {what}"))
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let store = Arc::new(infragraph_sink_sqlite::Store::open(db).expect("a store"));
    let (report, _) = sync_into(rt, plugin, env, store).await;
    (report, started.elapsed())
}

/// As [`sync_into_store`], into any sink (e.g. one that discards, to time the plugin
/// and HTTP without the store).
pub async fn sync_into<S: GraphSink + 'static>(
    rt: &Arc<Runtime>,
    plugin: &Path,
    env: &[(&str, &str)],
    sink: Arc<S>,
) -> (RunReport, Duration) {
    let started = Instant::now();
    let plugin = rt.load(plugin, None).await.expect("the plugin loads");
    let env = |name: &str| -> Option<String> {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let manifest = plugin.manifest();
    // The provider plugins ship with infragraph: they read the variables they name.
    let builtin = Source::BuiltIn;
    let config = resolve_config(manifest, builtin, &Default::default(), &env).expect("config");
    let consent = Default::default();
    let secrets = resolve_secrets(manifest, &config, builtin, plugin.sha256(), &consent, &env)
        .expect("secrets");
    let job = Job {
        plugin,
        config,
        secrets,
        limits: Limits::default(),
        state_as: None,
        tape: Default::default(),
        connection: None,
    };
    let reports = infragraph_engine::sync_all(
        rt.clone(),
        sink,
        vec![job],
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
