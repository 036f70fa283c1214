//! `cargo xtask bench`: each benchmark measured beside a baseline in the same run, so the
//! machine's speed cancels out of the ratio.
//!
//! - [`emit`] (issue 3): a plugin emitting nodes through the runtime, against the host
//!   building the same records natively.
//! - [`load`] (issue 3): a plugin's cold compile against its load from the on-disk cache.
//! - [`store`] (issue 4): nodes and edges through the engine into the embedded store,
//!   against plain rusqlite INSERTs of the same rows, and the peak RSS of the run.
//! - [`bolt`] (issue 6): nodes and edges through the Neo4j sink into a Bolt server,
//!   against hand-written `UNWIND` batches sent with neo4rs, and a batch-size sweep.
//! - [`connections`] (issue 18): many accounts in one `infragraph sync` against one
//!   account alone and against syncing them one after another (`bench_connections`).
//! - [`estate`] (issue 21): relationships into a Bolt server at real degrees (a project
//!   holding every resource), first sync and resync, against hand-written batches.
//!
//! Each returns [`Row`]s for one table; targets are reported as met or missed, never
//! asserted, since a busy machine would make an assertion flaky.

pub mod bolt;
pub mod connections;
pub mod emit;
pub mod estate;
pub mod load;
pub mod provider;
mod rows;
pub mod store;

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How big a run is: the issues' counts, or a tenth of them for a smoke run.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Divides every record count.
    pub divisor: u64,
}

impl Scale {
    /// The issues' counts.
    pub const FULL: Scale = Scale { divisor: 1 };
    /// `--quick`: a tenth.
    pub const QUICK: Scale = Scale { divisor: 10 };

    /// `n` at this scale.
    pub fn of(self, n: u64) -> u64 {
        n / self.divisor
    }

    /// Whether this is a smoke run.
    pub fn is_quick(self) -> bool {
        self.divisor > 1
    }
}

/// One line of the table: a figure beside its baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The measured figure, with its unit.
    pub figure: String,
    /// The baseline it is compared with, if any.
    pub baseline: String,
    /// How many times as fast as the baseline: rate / baseline rate, or baseline time /
    /// time.
    pub ratio: Option<f64>,
    /// The target, as the issue states it.
    pub target: String,
    /// Whether the target was met; `None` where there is no target.
    pub met: Option<bool>,
}

/// Rows plus the notes that explain them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// The table.
    pub rows: Vec<Row>,
    /// Lines printed under the table: breakdowns, caveats.
    pub notes: Vec<String>,
}

impl Report {
    /// Appends another benchmark's rows and notes.
    pub fn extend(&mut self, other: Report) {
        self.rows.extend(other.rows);
        self.notes.extend(other.notes);
    }

    /// The table, aligned, then the notes.
    pub fn render(&self) -> String {
        let head = ["benchmark", "measured", "baseline", "ratio", "target", ""];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    r.figure.clone(),
                    r.baseline.clone(),
                    match r.ratio {
                        None => "-".into(),
                        // Truncated, so that a missed target never reads as met.
                        Some(x) if x < 10.0 => format!("{:.2}x", (x * 100.0).floor() / 100.0),
                        Some(x) => format!("{x:.0}x"),
                    },
                    r.target.clone(),
                    match r.met {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => String::new(),
                    },
                ]
            })
            .collect();
        let mut width = head.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[String]| {
            let cols: Vec<String> = row
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", cols.join("  ").trim_end());
        };
        line(&mut out, &head.map(String::from));
        line(&mut out, &width.map(|w| "-".repeat(w)));
        for row in &cells {
            line(&mut out, row);
        }
        for note in &self.notes {
            let _ = writeln!(out, "  * {note}");
        }
        out
    }
}

/// `n` with thousands separated: `1,000,000`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` per second of `d`, e.g. `1.23 M nodes/s`.
pub(crate) fn rate(n: u64, d: Duration, unit: &str) -> String {
    format!("{:.2} M {unit}/s", per_second(n, d) / 1e6)
}

pub(crate) fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// A duration in the unit that suits it.
pub(crate) fn time(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// CPU time this thread has used so far. A benchmark that runs on one thread measures
/// its whole cost with it, whatever else keeps the machine's cores busy (a CI runner's
/// neighbours, a build next door), where wall-clock time would count the waits too.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The median of some timings.
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The process's peak resident set so far (`VmHWM`), in bytes; 0 where `/proc` is missing.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Prints what is running, so a long run shows progress.
pub(crate) fn step(what: &str) {
    eprintln!("bench: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn the_table_is_aligned_and_names_a_missed_target() {
        let row = |name: &str, met| Row {
            name: name.into(),
            figure: "1 x/s".into(),
            baseline: "2 x/s".into(),
            ratio: Some(0.5),
            target: ">= 0.70x".into(),
            met: Some(met),
        };
        let report = Report {
            rows: vec![row("a", true), row("longer name", false)],
            notes: vec!["a note".into()],
        };
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("benchmark    measured"), "{text}");
        assert!(lines[2].starts_with("a            1 x/s"), "{text}");
        assert!(lines[2].ends_with("met"), "{text}");
        assert!(lines[3].ends_with("MISSED"), "{text}");
        assert!(lines[3].contains("0.50x"), "{text}");
        assert_eq!(lines[4], "  * a note");
    }
}
