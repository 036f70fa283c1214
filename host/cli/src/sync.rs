//! `infragraph sync`: the library assembles and runs the syncs (every plugin's config and
//! credentials resolved first; a plugin that cannot run is reported failed, naming the
//! phase, and the others run; a name matching no plugin fails before anything runs); this
//! draws progress bars on a terminal and prints a summary table at the end.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use infragraph_app::{Settings, SyncPlan, Traffic};
use infragraph_core::RunStatus;
use infragraph_engine::{Progress, ProgressFn, RunReport, causes};

use crate::args::{OutputArgs, SyncArgs, graph_args};
use crate::table::{Format, Table};

/// What the operator asked to see.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Errors and warnings only: no summary table.
    pub quiet: bool,
    /// The progress display, on a terminal.
    pub progress: bool,
}

pub async fn run(
    settings: &Settings,
    args: SyncArgs,
    stop: tokio::sync::watch::Receiver<bool>,
    shown: Shown,
) -> anyhow::Result<ExitCode> {
    let location = settings.location(&graph_args(&args.store, &args.neo4j))?;
    let plan = SyncPlan {
        plugins: args.plugins.clone(),
        shard: args.shard,
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        wait: args.wait,
        replace_installed: args.replace_installed,
        adopt_state: args.adopt_state,
        traffic: match (&args.record, &args.replay) {
            (Some(dir), _) => Traffic::Record(dir.clone()),
            (None, Some(dir)) => Traffic::Replay(dir.clone()),
            (None, None) => Traffic::Live,
        },
        skip_people: args.no_people,
        stop: Some(stop),
    };
    let mut bars = None;
    let synced = infragraph_app::sync(settings, &location, &plan, |names| {
        let b = Bars::new(names, shown.progress);
        let progress = b.progress_fn();
        bars = Some(b);
        progress
    })
    .await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let synced = synced?;
    let reports = &synced.reports;
    if reports.is_empty() && synced.lost.is_empty() {
        // Only a shard can leave nothing: what was named exists, or it is an error.
        if let Some((k, n)) = args.shard {
            errln!(
                "infragraph: shard {k}/{n} holds none of the connections named; nothing to sync"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(reports)?;
        // Owner-only: a report names every connection, scope and error of the run.
        infragraph_core::private::write_file(path, json.as_bytes())
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    print_summary(reports, &synced.lost, shown.quiet, &args.output)?;
    let stopped: Vec<&str> = reports
        .iter()
        .filter(|r| r.status == RunStatus::Interrupted)
        .map(|r| r.connection())
        .collect();
    if !stopped.is_empty() {
        errln!(
            "infragraph: interrupted: the runs of {} were stopped and published nothing; the \
             graph holds what it held before them (`infragraph runs` lists them as interrupted)",
            stopped.join(", ")
        );
        return Ok(ExitCode::from(130));
    }
    let failed = reports.iter().any(|r| r.status == RunStatus::Failed) || !synced.lost.is_empty();
    let partial = reports.iter().any(|r| r.status == RunStatus::Partial);
    Ok(if failed {
        ExitCode::from(2)
    } else if partial {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One progress line per connection on a terminal; log lines otherwise. With more
/// connections than [`MAX_LINES`], only the running ones have a line, under a total
/// (`37 of 200 done: 35 succeeded, 2 failed; 4 running`), and a finished one's line goes.
struct Bars {
    multi: Option<MultiProgress>,
    state: Arc<Mutex<Board>>,
}

/// More connections than this, and a line is drawn only while one runs.
const MAX_LINES: usize = 8;

/// What the display holds.
struct Board {
    lines: HashMap<String, Line>,
    /// The totals line, when only running connections have lines.
    total: Option<ProgressBar>,
    count: usize,
    done: BTreeMap<String, usize>,
    width: usize,
}

/// What a connection's progress line shows.
struct Line {
    bar: ProgressBar,
    phase: &'static str,
    requests: u64,
    nodes: u64,
    edges: u64,
    step: String,
    /// The run's status, once it is over.
    finished: Option<String>,
}

impl Line {
    fn render(&self) {
        let phase = self.finished.as_deref().unwrap_or(self.phase);
        self.bar.set_message(format!(
            "{:<14} {:>7} requests {:>9} nodes {:>9} edges  {}",
            phase, self.requests, self.nodes, self.edges, self.step
        ));
    }
}

impl Board {
    fn style(&self, spinning: bool) -> ProgressStyle {
        // `wide_msg` cuts the line at the terminal's width, so it never wraps.
        let template = format!(
            "{} {{prefix:<{}}} {{wide_msg}}",
            if spinning { "{spinner}" } else { " " },
            self.width
        );
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn line(&mut self, multi: &MultiProgress, name: &str) -> &mut Line {
        if !self.lines.contains_key(name) {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(self.style(true));
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            let line = Line {
                bar,
                phase: "loading",
                requests: 0,
                nodes: 0,
                edges: 0,
                step: String::new(),
                finished: None,
            };
            self.lines.insert(name.to_string(), line);
        }
        self.lines.get_mut(name).expect("just added")
    }

    fn render_total(&self) {
        let Some(total) = &self.total else { return };
        let finished: usize = self.done.values().sum();
        let how: Vec<String> = self.done.iter().map(|(s, n)| format!("{n} {s}")).collect();
        total.set_message(format!(
            "{finished} of {} done{}; {} running",
            self.count,
            if how.is_empty() {
                String::new()
            } else {
                format!(": {}", how.join(", "))
            },
            self.lines.len()
        ));
    }
}

impl Bars {
    fn new(names: &[String], wanted: bool) -> Bars {
        let mut board = Board {
            lines: HashMap::new(),
            total: None,
            count: names.len(),
            done: BTreeMap::new(),
            width: names
                .iter()
                .map(|n| n.chars().count())
                .max()
                .unwrap_or(0)
                .clamp(8, 32),
        };
        if !wanted || !std::io::stderr().is_terminal() {
            return Bars {
                multi: None,
                state: Arc::new(Mutex::new(board)),
            };
        }
        let multi = crate::BARS.get_or_init(MultiProgress::new).clone();
        if names.len() > MAX_LINES {
            let total = multi.add(ProgressBar::new_spinner());
            total.set_style(board.style(true));
            total.set_prefix("connections");
            total.enable_steady_tick(Duration::from_millis(120));
            board.total = Some(total);
            board.render_total();
        } else {
            for name in names {
                board.line(&multi, name).render();
            }
        }
        Bars {
            multi: Some(multi),
            state: Arc::new(Mutex::new(board)),
        }
    }

    fn progress_fn(&self) -> ProgressFn {
        let state = self.state.clone();
        let multi = self.multi.clone();
        Arc::new(move |plugin: &str, p: Progress| {
            let Some(multi) = &multi else {
                match p {
                    Progress::Phase(phase) => tracing::info!(plugin, "{phase}"),
                    Progress::Finished(status) => tracing::info!(plugin, "{status}"),
                    _ => {}
                }
                return;
            };
            let Ok(mut board) = state.lock() else { return };
            let few = board.total.is_none();
            if let Progress::Finished(status) = p {
                *board.done.entry(status.to_string()).or_default() += 1;
                if few {
                    // Its final state stays while the others go on; no more spinning.
                    let done = board.style(false);
                    let line = board.line(multi, plugin);
                    line.step.clear();
                    line.finished = Some(status.to_string());
                    line.render();
                    line.bar.set_style(done);
                    line.bar.finish();
                } else if let Some(line) = board.lines.remove(plugin) {
                    line.bar.finish_and_clear();
                    multi.remove(&line.bar);
                }
                board.render_total();
                return;
            }
            let line = board.line(multi, plugin);
            match p {
                Progress::Phase(phase) => {
                    line.phase = phase;
                    // The plugin's own message was about the phase that ended.
                    line.step.clear();
                }
                Progress::Requests(n) => line.requests = n,
                Progress::Written { nodes, edges } => (line.nodes, line.edges) = (nodes, edges),
                Progress::Plugin { phase, done, total } => {
                    line.step = match total {
                        Some(t) => format!("{phase} {done}/{t}"),
                        None => format!("{phase} {done}"),
                    }
                }
                Progress::Finished(_) => {}
            }
            line.render();
            if !few {
                board.render_total();
            }
        })
    }

    fn finish(&self) {
        if let Ok(board) = self.state.lock() {
            for line in board.lines.values() {
                line.bar.finish_and_clear();
            }
            if let Some(total) = &board.total {
                total.finish_and_clear();
            }
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

/// A row per plugin, then what went wrong: below the table for people, on stderr when
/// stdout is CSV or JSON for a program (JSON holds it in the reports).
fn print_summary(
    reports: &[RunReport],
    lost: &[String],
    quiet: bool,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    if output.format() == Format::Json {
        out!("{}", serde_json::to_string_pretty(reports)?);
        return Ok(());
    }
    let mut table = Table::new(&[
        "CONNECTION",
        "STATUS",
        "NODES",
        "EDGES",
        "DELETED",
        "UNRESOLVED",
        "REQUESTS",
        "TIME",
    ])
    .keep_whole(&["CONNECTION"]);
    for r in reports {
        table.push(vec![
            r.connection().to_string(),
            r.status.to_string(),
            r.nodes_written().to_string(),
            r.edges_written().to_string(),
            r.deleted().to_string(),
            r.unresolved().to_string(),
            r.http.requests.to_string(),
            format!("{:.1}s", r.phases.total_ms as f64 / 1000.0),
        ]);
    }
    if !quiet {
        table.print(output)?;
    }
    let mut notes = Vec::new();
    for r in reports {
        for e in &r.errors {
            notes.push(format!("{}: error: {e}", r.connection()));
        }
        for w in &r.warnings {
            notes.push(format!("{}: warning: {w}", r.connection()));
        }
        // A failed run already says why in its error; its stale records were all kept.
        if r.status != RunStatus::Failed {
            for cause in causes(&r.incomplete) {
                notes.push(format!(
                    "{}: incomplete: {cause} (stale records of these labels were kept)",
                    r.connection()
                ));
            }
        }
    }
    for plugin in lost {
        notes.push(format!("{plugin}: error: its sync ended without a report"));
    }
    for note in notes {
        match output.format() {
            Format::Table => out!("{note}"),
            _ => errln!("{note}"),
        }
    }
    Ok(())
}
