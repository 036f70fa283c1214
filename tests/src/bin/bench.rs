//! `cargo xtask bench [emit] [load] [store] [bolt] [estate] [--quick]`: the
//! benchmarks of issues 3, 4, 6 and 21, each beside a baseline measured in the same run, in
//! one table. Targets are reported as met or missed; the exit code is 0 unless a
//! benchmark could not run at all.
//!
//! Names pick a subset; `--quick` divides every count by ten, for a smoke run. The store
//! benchmark runs first, in a process of its own (see `infragraph_tests::bench::store`).
//! The Bolt benchmark takes about four and a half minutes at full size (the test server
//! writes 10-20 thousand records a second); `cargo xtask bench bolt --quick` is a
//! half-minute smoke run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use infragraph_tests::bench::{Report, Scale, bolt, emit, estate, load, store};

const BENCHMARKS: [&str; 5] = ["store", "emit", "load", "bolt", "estate"];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { Scale::QUICK } else { Scale::FULL };
    if let Some(at) = args.iter().position(|a| a == store::CHILD_FLAG) {
        let cache = args
            .get(at + 1)
            .context("--store-child needs a directory")?;
        let report = runtime()?.block_on(store::measure(scale, Path::new(cache)))?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let mut wanted = Vec::new();
    for a in &args {
        match a.as_str() {
            "--quick" => {}
            name if BENCHMARKS.contains(&name) => wanted.push(name),
            other => bail!(
                "unknown argument {other:?}; usage: bench [{}] [--quick]",
                BENCHMARKS.join("] [")
            ),
        }
    }
    let mut report = Report::default();
    for name in BENCHMARKS {
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        report.extend(match name {
            "store" => runtime()?.block_on(store::run(scale))?,
            // On a runtime of its own; see its docs.
            "emit" => emit::run(scale)?,
            "bolt" => runtime()?.block_on(bolt::run(scale.of(bolt::FULL_NODES)))?,
            "estate" => runtime()?.block_on(estate::run(scale.of(estate::FULL_RESOURCES)))?,
            _ => runtime()?.block_on(load::run(scale))?,
        });
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\ninfragraph benchmarks ({}, {cpus} CPUs)\n",
        if quick {
            "--quick: counts / 10"
        } else {
            "full counts"
        }
    );
    print!("{}", report.render());
    Ok(())
}

/// The multi-thread runtime the store and load benchmarks run on, as `infragraph` does.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}
