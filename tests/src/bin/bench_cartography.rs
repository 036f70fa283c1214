//! Issue 21, side by side: Cartography's Scaleway module and `infragraph sync scaleway
//! --neo4j` (the release binary), each into a fresh database of the same ArcadeDB (the
//! one `cargo xtask bench` starts), from the same Scaleway simulator, in the same run,
//! alternating over three rounds (the fastest of each counts; every round's figures are
//! printed, since the server's speed drifts by as much as half within an hour). Target: infragraph in at
//! most a tenth of Cartography's time, with the complete estate.
//!
//! The estate is the shape: an Organization with two projects, most servers in
//! one zone (`fr-par-1`, the only zone Cartography reads servers, volumes, snapshots and
//! IPs from) and one in each other zone, about 10,000 resources. Cartography lists some
//! forty Scaleway products; the simulator answers those it does not model with empty
//! lists and Object Storage with no bucket (`ScalewaySim::serve_other_products_empty`).
//!
//! Cartography is installed from PyPI into a virtual environment of its own under
//! `$HOME/.cache/infragraph/cartography-<version>` (once; `python3` with `venv` needed),
//! and run through `tests/cartography/run_cartography.py`, which points its Scaleway and S3
//! clients at the simulator and changes nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};
use infragraph_sink_neo4j::Neo4jConfig;
use infragraph_tests::bench::connections::{Measured, measure_main, run_measured};
use infragraph_tests::bench::{Report, Row};
use infragraph_tests::bolt;
use infragraph_tests::sim::{ScalewayData, ScalewaySim};

/// The Cartography release the issue measured.
const CARTOGRAPHY: &str = "0.143.0";
const PROJECTS: usize = 2;
/// Servers per project in the first zone: with their volumes, snapshots and IPs, about
/// 10,000 resources in all.
const PER_PROJECT: usize = 1_280;
const ROUNDS: usize = 3;
/// infragraph's time / Cartography's that the issue asks for, at most.
const TARGET: f64 = 0.10;

fn main() -> ExitCode {
    if let Some(code) = measure_main() {
        return code;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench(quick)) {
        Ok(report) => {
            println!("\n{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_cartography: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One side's best run: time, peak RSS, nodes written.
#[derive(Default, Clone, Copy)]
struct Side {
    wall: Duration,
    peak_mib: u64,
    nodes: u64,
}

impl Side {
    fn keep_fastest(&mut self, m: &Measured, nodes: u64) {
        if self.wall.is_zero() || m.wall < self.wall {
            *self = Side {
                wall: m.wall,
                peak_mib: m.peak_rss_kib >> 10,
                nodes,
            };
        }
    }
}

async fn bench(quick: bool) -> anyhow::Result<Report> {
    if std::env::var_os(bolt::URI_VAR).is_none() {
        bail!("no Bolt server: run it through `cargo xtask bench cartography`, which starts one");
    }
    let python = venv()?;
    let launcher = repo_root().join("tests/cartography/run_cartography.py");
    let per_project = if quick { PER_PROJECT / 10 } else { PER_PROJECT };
    let data = ScalewayData::generate_in_one_zone(PROJECTS, per_project);
    let resources = data.resource_count() as u64;
    let organization = data.organization_id.clone();
    let sim = ScalewaySim::start(data);
    sim.serve_other_products_empty();
    let work = std::env::temp_dir().join(format!("infragraph-bench-carto-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    // One home for every infragraph run, as a user's: its compiled-code cache is warmed by
    // a sync that is not counted (Cartography's Python finds its bytecode compiled too).
    let home = scratch(&work, "infragraph-home");
    let infragraph = |db: &Neo4jConfig| {
        let mut args = vec!["sync", "scaleway"];
        args.extend(bolt::cli_args(db));
        let mut cmd = infragraph_tests::cli::infragraph(&home, &args);
        let (k, v) = bolt::cli_env(db);
        cmd.env(k, v)
            .env("SCW_API_URL", sim.url())
            .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
            .env("SCW_DEFAULT_ORGANIZATION_ID", &organization);
        cmd
    };
    eprintln!("bench: warming infragraph's compiled-code cache (not counted)");
    let warm_db = bolt::fresh_database("warm").await;
    let warm = run_measured(&mut infragraph(&warm_db), &scratch(&work, "warm"));
    if warm.code != 0 {
        bail!("infragraph failed ({}): {}", warm.code, tail(&warm.stderr));
    }
    bolt::drop_database(&warm_db).await;

    let (mut carto, mut first, mut again) = (Side::default(), Side::default(), Side::default());
    // Each round's (Cartography, first sync, resync) wall times, for the notes.
    let mut rounds: Vec<[Duration; 3]> = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("bench: Cartography {CARTOGRAPHY}, round {round}");
        let db = bolt::fresh_database("carto").await;
        let mut cmd = Command::new(&python);
        cmd.arg(&launcher)
            .args(["--neo4j-uri", &db.uri, "--neo4j-user", &db.user])
            .args(["--neo4j-password-env-var", "NEO4J_PASSWORD"])
            .args([
                "--neo4j-database",
                &db.database,
                "--selected-modules",
                "scaleway",
            ])
            .args(["--scaleway-org", &organization])
            .args(["--scaleway-access-key", "SCWXXXXXXXXXXXXXXXXX"])
            .args(["--scaleway-secret-key-env-var", "SCW_KEY"])
            .env("NEO4J_PASSWORD", &db.password)
            .env("SCW_KEY", ScalewaySim::SECRET_KEY)
            .env("SCW_API_URL", sim.url());
        let dir = scratch(&work, &format!("carto-{round}"));
        let ran = run_measured(&mut cmd, &dir);
        if ran.code != 0 {
            bail!("Cartography failed ({}): {}", ran.code, tail(&ran.stderr));
        }
        carto.keep_fastest(&ran, count(&db, "MATCH (n) RETURN count(n) AS c").await?);
        // The server keeps every open database in its one heap: each goes once measured.
        bolt::drop_database(&db).await;
        let mut walls = [ran.wall, Duration::ZERO, Duration::ZERO];

        eprintln!("bench: infragraph sync scaleway --neo4j, round {round} (first sync, resync)");
        let db = bolt::fresh_database("infragraph").await;
        for (i, side) in [&mut first, &mut again].into_iter().enumerate() {
            let dir = scratch(&work, &format!("infragraph-{round}-{i}"));
            let ran = run_measured(&mut infragraph(&db), &dir);
            if ran.code != 0 {
                bail!("infragraph failed ({}): {}", ran.code, tail(&ran.stderr));
            }
            let nodes = count(
                &db,
                "MATCH (n) WHERE n.`_source` = 'scaleway' RETURN count(n) AS c",
            )
            .await?;
            side.keep_fastest(&ran, nodes);
            walls[i + 1] = ran.wall;
        }
        bolt::drop_database(&db).await;
        rounds.push(walls);
    }
    drop(sim);
    let _ = std::fs::remove_dir_all(&work);

    let ratio = first.wall.as_secs_f64() / carto.wall.as_secs_f64();
    let complete = |n: u64| format!("{n} of {resources} resources");
    let mut report = Report::default();
    report.rows.push(Row {
        name: format!(
            "Scaleway estate into ArcadeDB: infragraph against Cartography {CARTOGRAPHY}"
        ),
        figure: format!("{:.1} s", first.wall.as_secs_f64()),
        baseline: format!("{:.1} s Cartography", carto.wall.as_secs_f64()),
        ratio: Some(ratio),
        target: format!("<= {TARGET:.2}x"),
        met: Some(ratio <= TARGET && first.nodes >= resources),
    });
    report.rows.push(Row {
        name: "the same: nodes written".into(),
        figure: complete(first.nodes),
        baseline: format!(
            "{} Cartography (its own nodes included)",
            complete(carto.nodes)
        ),
        ratio: None,
        target: "complete".into(),
        met: Some(first.nodes >= resources),
    });
    report.rows.push(Row {
        name: "the same: peak RSS".into(),
        figure: format!("{} MB", first.peak_mib),
        baseline: format!("{} MB Cartography", carto.peak_mib),
        ratio: Some(carto.peak_mib as f64 / first.peak_mib.max(1) as f64),
        target: String::new(),
        met: None,
    });
    let speedup = first.wall.as_secs_f64() / again.wall.as_secs_f64();
    report.rows.push(Row {
        name: "the same: infragraph resync against its first sync".into(),
        figure: format!("{:.1} s", again.wall.as_secs_f64()),
        baseline: format!("{:.1} s first sync", first.wall.as_secs_f64()),
        ratio: Some(speedup),
        target: ">= 2.0x".into(),
        met: Some(speedup >= 2.0),
    });
    report.notes.push(format!(
        "estate: {PROJECTS} projects, {per_project} servers each in fr-par-1 and one in each \
         other zone, {resources} resources; fastest of {ROUNDS} alternating rounds; wall time \
         of each process, from start to exit"
    ));
    let each: Vec<String> = rounds
        .iter()
        .map(|[c, f, a]| {
            format!(
                "{:.1} s against {:.1} s ({:.2}x), resync {:.1} s",
                f.as_secs_f64(),
                c.as_secs_f64(),
                f.as_secs_f64() / c.as_secs_f64(),
                a.as_secs_f64()
            )
        })
        .collect();
    report.notes.push(format!(
        "each round, infragraph against Cartography: {}",
        each.join("; ")
    ));
    Ok(report)
}

/// The Python of a virtual environment with Cartography installed, made once.
fn venv() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let dir = Path::new(&home).join(format!(".cache/infragraph/cartography-{CARTOGRAPHY}"));
    let python = dir.join("bin/python");
    let marker = dir.join(".installed");
    if marker.is_file() {
        return Ok(python);
    }
    eprintln!(
        "bench: installing Cartography {CARTOGRAPHY} from PyPI into {}",
        dir.display()
    );
    let run = |cmd: &mut Command| -> anyhow::Result<()> {
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        if !status.success() {
            bail!("{cmd:?} failed ({status})");
        }
        Ok(())
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(dir.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("cartography=={CARTOGRAPHY}"),
    ]))?;
    std::fs::write(&marker, "")?;
    Ok(python)
}

/// A single number a query returns as `c`.
async fn count(db: &Neo4jConfig, q: &str) -> anyhow::Result<u64> {
    let graph = bolt::driver(db).await;
    let mut rows = graph.execute(neo4rs::query(q)).await?;
    let row = rows.next().await?.context("a count")?;
    Ok(row.get::<i64>("c")?.max(0) as u64)
}

fn scratch(work: &Path, name: &str) -> PathBuf {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    dir
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}
