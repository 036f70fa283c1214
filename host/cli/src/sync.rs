//! `infragraph sync`: resolve every plugin's config and credentials first (so a typo fails
//! before anything runs), then sync them concurrently into the store, with progress bars
//! on a terminal and a summary table at the end.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use infragraph_core::{GraphSink, RunStatus};
use infragraph_engine::{Job, Progress, ProgressFn, RunReport};
use infragraph_runtime::{SyncRequest, resolve_config, resolve_secrets};
use infragraph_sink_neo4j::Neo4jSink;

use crate::args::SyncArgs;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(settings.runtime()?);
    let env = |name: &str| std::env::var(name).ok();
    let mut jobs = Vec::new();
    for name in &args.plugins {
        let (plugin, _) = settings.catalog.find(&runtime, name).await?;
        let manifest = plugin.manifest();
        let ps = settings
            .plugins
            .get(&manifest.name)
            .cloned()
            .unwrap_or_default();
        let config = resolve_config(manifest, &ps.config, &env)?;
        let secrets = resolve_secrets(manifest, &ps.secret_files, &env)?;
        let mut limits = settings.limits.clone();
        ps.limits.apply(&mut limits);
        let request = SyncRequest {
            config,
            secrets,
            limits,
            state: Arc::new(infragraph_core::MemoryState::default()),
        };
        jobs.push(Job { plugin, request });
    }
    let mut options = settings.engine.clone();
    if let Some(n) = args.batch_size {
        options.batch_size = n.max(1);
    }
    if let Some(n) = args.concurrency {
        options.concurrency = n.max(1);
    }
    let names: Vec<String> = jobs
        .iter()
        .map(|j| j.plugin.manifest().name.clone())
        .collect();
    // The sink is reached before any plugin runs, so a wrong server address or password
    // stops here with nothing done.
    let reports = match settings.neo4j(&args.neo4j) {
        Some(config) => {
            let sink = Arc::new(Neo4jSink::connect(&config).await?);
            sync_into(runtime, sink, jobs, options, &names).await
        }
        None => {
            let store = Arc::new(settings.open_store(&args.store.store)?);
            sync_into(runtime, store, jobs, options, &names).await
        }
    };
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&reports)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    print_summary(&reports)?;
    let failed =
        reports.iter().any(|r| r.status == RunStatus::Failed) || reports.len() < args.plugins.len();
    let partial = reports.iter().any(|r| r.status == RunStatus::Partial);
    Ok(if failed {
        ExitCode::from(2)
    } else if partial {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Syncs every job into `sink`, with progress bars.
async fn sync_into<S: GraphSink + 'static>(
    runtime: Arc<infragraph_runtime::Runtime>,
    sink: Arc<S>,
    jobs: Vec<Job>,
    options: infragraph_engine::Options,
    names: &[String],
) -> Vec<RunReport> {
    let bars = Bars::new(names);
    let reports =
        infragraph_engine::sync_all(runtime, sink, jobs, options, bars.progress_fn()).await;
    bars.finish();
    reports
}

/// One progress bar per plugin on a terminal; log lines otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    lines: Arc<Mutex<HashMap<String, Line>>>,
}

/// What a plugin's progress bar shows.
struct Line {
    bar: ProgressBar,
    phase: &'static str,
    requests: u64,
    nodes: u64,
    edges: u64,
    step: String,
}

impl Line {
    fn render(&self) {
        self.bar.set_message(format!(
            "{:<14} {:>7} requests {:>9} nodes {:>9} edges  {}",
            self.phase, self.requests, self.nodes, self.edges, self.step
        ));
    }
}

impl Bars {
    fn new(plugins: &[String]) -> Bars {
        if !std::io::stderr().is_terminal() {
            return Bars {
                multi: None,
                lines: Default::default(),
            };
        }
        let multi = crate::BARS.get_or_init(MultiProgress::new).clone();
        let style = ProgressStyle::with_template("{spinner} {prefix:<12} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let lines = plugins
            .iter()
            .map(|p| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(p.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                let line = Line {
                    bar,
                    phase: "loading",
                    requests: 0,
                    nodes: 0,
                    edges: 0,
                    step: String::new(),
                };
                (p.clone(), line)
            })
            .collect();
        Bars {
            multi: Some(multi),
            lines: Arc::new(Mutex::new(lines)),
        }
    }

    fn progress_fn(&self) -> ProgressFn {
        let lines = self.lines.clone();
        let tty = self.multi.is_some();
        Arc::new(move |plugin: &str, p: Progress| {
            if !tty {
                if let Progress::Phase(phase) = p {
                    tracing::info!(plugin, "{phase}");
                }
                return;
            }
            let Ok(mut lines) = lines.lock() else { return };
            let Some(line) = lines.get_mut(plugin) else {
                return;
            };
            match p {
                Progress::Phase(phase) => line.phase = phase,
                Progress::Requests(n) => line.requests = n,
                Progress::Written { nodes, edges } => (line.nodes, line.edges) = (nodes, edges),
                Progress::Plugin { phase, done, total } => {
                    line.step = match total {
                        Some(t) => format!("{phase} {done}/{t}"),
                        None => format!("{phase} {done}"),
                    }
                }
            }
            line.render();
        })
    }

    fn finish(&self) {
        if let Ok(lines) = self.lines.lock() {
            for line in lines.values() {
                line.bar.finish_and_clear();
            }
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

fn print_summary(reports: &[RunReport]) -> std::io::Result<()> {
    let header = [
        "PLUGIN",
        "STATUS",
        "NODES",
        "EDGES",
        "DELETED",
        "UNRESOLVED",
        "REQUESTS",
        "TIME",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for r in reports {
        rows.push(vec![
            r.plugin.clone(),
            r.status.to_string(),
            r.nodes_written().to_string(),
            r.edges_written().to_string(),
            r.deleted().to_string(),
            r.unresolved().to_string(),
            r.http.requests.to_string(),
            format!("{:.1}s", r.phases.total_ms as f64 / 1000.0),
        ]);
    }
    out_raw!("{}", crate::table::render(&rows));
    for r in reports {
        for e in &r.errors {
            out!("{}: error: {e}", r.plugin);
        }
        for i in &r.incomplete {
            let under = i
                .parent
                .as_ref()
                .map(|p| format!(" under {p}"))
                .unwrap_or_default();
            out!(
                "{}: incomplete: {}{under}: {} (its stale records were kept)",
                r.plugin,
                i.label,
                i.reason
            );
        }
    }
    Ok(())
}
