//! `bench_connections [connections] [connections-azure] [--quick] [--concurrency N]
//! [--repeat N]`: the connections benchmarks of issue 18 (see
//! `infragraph_tests::bench::connections`): many accounts of one provider synced by one
//! `infragraph sync` of the release binary, beside one account alone and beside the
//! accounts synced one after another, with the peak RSS of the `infragraph` process.
//!
//! Names pick a subset (both by default); `--quick` syncs a tenth of the accounts;
//! `--concurrency N` (default 100) is passed to `infragraph sync` and printed; `--repeat N`
//! (default 3) is how many turns of one alone and all at once are run, their medians
//! compared. Run by `cargo xtask bench`, which builds the release `infragraph` beside
//! this binary and sets `INFRAGRAPH_TEST_PLUGINS`. The exit code is 0 unless a benchmark
//! could not run at all.

use std::process::ExitCode;

use infragraph_tests::bench::connections::{self, Settings};

const BENCHMARKS: [&str; 2] = ["connections", "connections-azure"];

fn main() -> ExitCode {
    if let Some(code) = connections::measure_main() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut settings = Settings {
        quick: false,
        // Half the 200 organizations: runs of one organization are latency-bound (0.73 s
        // each, at the median, whether 1 or 64 run at once), so 64 at once synced the 200
        // in four waves, the last one of 8 runs alone; 100 take two (3.4% +- 0.8% less
        // time than 64 over sixteen alternated pairs, 2.7% more CPU).
        concurrency: 100,
        repeat: 3,
    };
    let mut wanted = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--quick" => settings.quick = true,
            "--concurrency" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) => settings.concurrency = n,
                None => {
                    eprintln!("bench_connections: --concurrency needs a number");
                    return ExitCode::from(2);
                }
            },
            "--repeat" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => settings.repeat = n,
                _ => {
                    eprintln!("bench_connections: --repeat needs a number above 0");
                    return ExitCode::from(2);
                }
            },
            name if BENCHMARKS.contains(&name) => wanted.push(name),
            other => {
                eprintln!(
                    "bench_connections: unknown argument {other:?}; usage: bench_connections \
                     [connections] [connections-azure] [--quick] [--concurrency N] [--repeat N]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let mut ok = true;
    for name in BENCHMARKS {
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        ok &= match name {
            "connections" => connections::scaleway(settings),
            _ => connections::azure(settings),
        };
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
