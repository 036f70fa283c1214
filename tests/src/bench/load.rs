//! Issue 3: a plugin's cold compile beside its load from the on-disk cache of compiled
//! plugins, which should cost "about a millisecond, not a compile".
//!
//! Cold: a `Runtime` on a fresh, empty cache directory, then `load`. Cached: a second
//! `Runtime` on the same directory, then `load`. Only `load` is timed (reading the file,
//! its sha256, compiling or deserialising, checking the contract version and calling
//! `manifest()`); setting up the engine is once per process either way.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use infragraph_runtime::Runtime;

use super::{Report, Row, Scale, median, step, time};
use crate::harness;

/// Loads of each kind per plugin; the median counts.
const ROUNDS: usize = 5;
/// "About a millisecond": counted as met up to twice that.
const TARGET: Duration = Duration::from_millis(2);

/// Runs the benchmark for the example plugin and the emit-bench guest.
pub async fn run(scale: Scale) -> anyhow::Result<Report> {
    // Compiles are the slow part; a smoke run does fewer.
    let rounds = if scale.is_quick() { 3 } else { ROUNDS };
    let mut report = Report::default();
    for (name, path) in [
        ("example", harness::plugin("example")),
        ("emit-bench", harness::guest("emit-bench")),
    ] {
        step(&format!(
            "load: {name}, {rounds} cold and {rounds} cached loads"
        ));
        let (mut cold, mut cached) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (c, w) = cold_then_cached(&path).await?;
            cold.push(c);
            cached.push(w);
        }
        let (cold, cached) = (median(cold), median(cached));
        let size = std::fs::metadata(&path)?.len();
        report.rows.push(Row {
            name: format!("load {name} ({} KiB)", size / 1024),
            figure: format!("{} cached", time(cached)),
            baseline: format!("{} cold compile", time(cold)),
            ratio: Some(cold.as_secs_f64() / cached.as_secs_f64().max(1e-9)),
            target: "about 1 ms cached".into(),
            met: Some(cached <= TARGET),
        });
    }
    report.notes.push(format!(
        "load: median of {rounds} loads each; \"about 1 ms\" counted as met up to {}",
        time(TARGET)
    ));
    Ok(report)
}

/// One cold load into a fresh cache, then one load from it by another runtime.
async fn cold_then_cached(path: &Path) -> anyhow::Result<(Duration, Duration)> {
    let cache = tempfile::tempdir()?;
    let cold = {
        let runtime = Runtime::new(Some(cache.path().into()))?;
        let started = Instant::now();
        let plugin = runtime.load(path, None).await?;
        let took = started.elapsed();
        ensure!(
            !plugin.from_cache(),
            "a fresh cache held {}",
            path.display()
        );
        took
    };
    let runtime = Runtime::new(Some(cache.path().into()))?;
    let started = Instant::now();
    let plugin = runtime.load(path, None).await?;
    let took = started.elapsed();
    ensure!(plugin.from_cache(), "{} was compiled again", path.display());
    Ok((cold, took))
}
