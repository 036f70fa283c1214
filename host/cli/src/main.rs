//! The `infragraph` command: a thin face over `infragraph_app`. Parses arguments, asks
//! the library, prints, and turns errors into a message and an exit code: 0 ok, 1 a sync
//! finished but is partial, 2 an error or a failed sync.

/// `println!` that returns an error instead of panicking, so a closed pipe
/// (`infragraph ... | head`) ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` likewise.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `eprintln!` that never panics: with standard error closed (`infragraph sync 2>&1 |
/// grep -m1 failed` closes it at the first match), what cannot be printed is dropped and
/// the command goes on, where `eprintln!` would end a sync midway.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod access;
mod args;
mod connections;
mod malloc;
mod plugins;
mod push;
mod state;
mod store;
mod sync;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    malloc::tune();
    malloc::cap_arenas();
    let matches = args::Args::command()
        .long_version(args::long_version())
        .get_matches();
    let args = args::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(&args);
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            errln!("infragraph: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: args::Args) -> anyhow::Result<ExitCode> {
    // Needs neither settings nor a runtime, and must work where no config could load.
    if let args::Command::Generate { what } = args.command {
        generate(what)?;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = infragraph_app::Settings::load(args.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let graceful = matches!(args.command, args::Command::Sync(_));
    let shown = sync::Shown {
        quiet: args.quiet,
        progress: !args.quiet && !args.no_progress,
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let command = async {
        match args.command {
            args::Command::Plugins(cmd) => plugins::run(&settings, cmd).await,
            args::Command::Connections(cmd) => connections::run(&settings, cmd).await,
            args::Command::Schema(cmd) => plugins::schema(&settings, cmd).await,
            args::Command::Sync(cmd) => sync::run(&settings, cmd, stopping, shown).await,
            args::Command::Query(cmd) => store::query(&settings, cmd).await,
            args::Command::Access(cmd) => access::run(&settings, cmd).await,
            args::Command::Runs(cmd) => store::runs(&settings, cmd).await,
            args::Command::Export(cmd) => store::export(&settings, cmd).await,
            args::Command::Import(cmd) => store::import(&settings, cmd),
            args::Command::Push(cmd) => push::run(&settings, cmd).await,
            args::Command::State(cmd) => state::run(&settings, cmd).await,
            args::Command::Generate { .. } => unreachable!("handled before the settings"),
        }
    };
    // Ctrl-C stops a sync's plugins, which record their runs as interrupted and publish
    // nothing, then it reports as usual; a second Ctrl-C, or the first in any other
    // command, drops the command at once. Either way the store is dropped, which folds
    // its write-ahead log back into the file on the way out.
    let outcome = rt.block_on(async {
        tokio::pin!(command);
        tokio::select! {
            done = &mut command => return Some(done),
            _ = tokio::signal::ctrl_c() => {}
        }
        if !graceful {
            return None;
        }
        let _ = stop.send(true);
        errln!("infragraph: stopping the sync (Ctrl-C again to quit at once)");
        tokio::select! {
            done = &mut command => Some(done),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(done) => {
            // The command is over and has closed the store. Dropping the runtime would
            // close every pooled connection and end each worker thread, which first
            // hands its cache of freed blocks back to the allocator one by one: 0.1 s
            // after a sync of 200 connections, with nothing left to do. The process's
            // exit ends the threads and the kernel closes the sockets.
            std::mem::forget(rt);
            done
        }
        None => {
            // Tasks still running (a plugin mid-request) end with the runtime.
            drop(rt);
            errln!("infragraph: interrupted");
            Ok(ExitCode::from(130))
        }
    }
}

fn init_logging(args: &args::Args) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("INFRAGRAPH_LOG")
        // The Bolt driver logs every connection it opens at info.
        .unwrap_or_else(|_| {
            EnvFilter::new(match (args.quiet, args.verbose) {
                (true, _) => "warn",
                (false, 0) => "info,neo4rs=warn",
                (false, 1) => "debug,neo4rs=info",
                (false, _) => "trace,neo4rs=debug",
            })
        });
    // Added last, so they replace the user's directives for the same targets.
    for directive in infragraph_runtime::LOG_DIRECTIVES {
        filter = filter.add_directive(directive.parse().expect("the runtime's directives parse"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line that cannot be written (standard error closed) is dropped; by
        // default the subscriber reports that with `eprintln!`, which panics then.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| LogWriter);
    match args.log_format {
        args::LogFormat::Json => builder.json().init(),
        args::LogFormat::Plain => builder.with_target(false).init(),
    }
}

/// Progress bars on stderr, once a sync draws them; log lines are printed above them
/// rather than through them.
pub static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();

/// Writes one log event to stderr, suspending the progress bars while it does.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes the man page or a shell's completions for the arguments as clap knows them.
fn generate(what: args::Generated) -> std::io::Result<()> {
    use clap_complete::Shell;
    use std::io::Write;
    let mut cmd = args::Args::command().long_version(args::long_version());
    // Made in memory first: clap_complete panics on a write error, and a reader that
    // stops early (`| head`) is not one.
    let mut text = Vec::new();
    let shell = match what {
        args::Generated::Man => {
            clap_mangen::Man::new(cmd).render(&mut text)?;
            return std::io::stdout().lock().write_all(&text);
        }
        args::Generated::CompleteBash => Shell::Bash,
        args::Generated::CompleteZsh => Shell::Zsh,
        args::Generated::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "infragraph", &mut text);
    std::io::stdout().lock().write_all(&text)
}
