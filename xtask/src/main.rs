//! `cargo xtask <recipe>`: the only place build, demo, test and bench steps live. Each
//! recipe prints the commands it runs, so a failure can be reproduced by hand.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

mod arcadedb;
mod dist;
mod image;
mod registry;

const WASM_TARGET: &str = "wasm32-wasip2";

/// Provider plugins shipped with infragraph: `plugins/<name>/`, package
/// `infragraph-plugin-<name>`.
fn provider_plugins(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("plugins"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "sdk" && entry.path().join("Cargo.toml").is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Guests that exist only for tests and benchmarks: (package, file name).
const TEST_GUESTS: &[(&str, &str)] = &[
    ("infragraph-hostile", "misbehave"),
    ("infragraph-hostile-old-contract", "old-contract"),
    ("infragraph-hostile-impostor", "impostor"),
    ("infragraph-hostile-manifest-loop", "manifest-loop"),
    ("infragraph-guest-emit-bench", "emit-bench"),
    ("infragraph-guest-contract-0-1", "contract-0-1"),
    ("infragraph-guest-contract-0-2", "contract-0-2"),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build(&args[1..]).map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("demo") => demo(),
        Some("bench") => bench(&args[1..]),
        Some("dist") => dist::dist(&args[1..]).map(|d| {
            eprintln!("dist: {} archives", d.archives.len());
        }),
        Some("image") => image::image(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <recipe>\n\n\
                 recipes:\n  \
                 build   build the host and the wasm plugins (and test guests)\n  \
                 demo    sync every provider plugin against its simulator into a fresh store\n  \
                 test    fmt, clippy, every unit, integration and end-to-end test\n  \
                 bench   the benchmarks, each beside a baseline measured in the same run\n  \
                 dist    release archives (glibc and static musl) with completions, man page, SHA256SUMS\n  \
                 image   the container image (OCI archive, buildah), checked by syncing a simulator"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // `cargo run` gives the manifest's directory at run time too. Prefer it: a target dir
    // shared between checkouts (CI's persistent one) may hand this checkout an xtask
    // binary compiled in another, whose compile-time path points there.
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("xtask sits in the workspace")
        .into()
}

fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The plugins [`build`] made, once it ran: every later cargo embeds these very files in
/// the host (`host/builtins`) instead of building them a second time.
static EMBED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if let Some(dir) = EMBED.get() {
        cmd.env("INFRAGRAPH_EMBED_PLUGINS", dir);
    }
    cmd
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown: Vec<_> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    eprintln!("$ {}", shown.join(" "));
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", shown[0]))?;
    if !status.success() {
        bail!("`{}` failed ({status})", shown.join(" "));
    }
    Ok(())
}

fn ensure_wasm_target() -> anyhow::Result<()> {
    ensure_target(WASM_TARGET)
}

/// Adds a compilation target through rustup when it is missing.
fn ensure_target(target: &str) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == target)
        })
        .unwrap_or(false);
    if !installed {
        run(Command::new("rustup").args(["target", "add", target]))?;
    }
    Ok(())
}

/// Where built artifacts land.
struct Built {
    /// Provider plugins, `<name>.wasm`.
    plugins: PathBuf,
    /// Test guests, `<name>.wasm`.
    guests: PathBuf,
}

/// Builds the wasm plugins and test guests in release (small and fast to compile
/// further), and copies them where the host looks: `<target>/plugins` and beside each
/// host binary, `<target>/{debug,release}/plugins`.
fn build(_args: &[String]) -> anyhow::Result<Built> {
    let root = root();
    ensure_wasm_target()?;
    let target = target_dir(&root);
    let plugins = provider_plugins(&root)?;
    let mut cmd = cargo();
    // Guests ship without debug info: it is over 90% of a component's size, and a trap
    // still names functions. Set only here, so host release builds keep theirs.
    cmd.current_dir(&root)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Guest code runs once per record: whole-program optimisation is worth its few
        // seconds of link time (about 12% faster emission in the benchmark).
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .args(["build", "--release", "--target", WASM_TARGET]);
    for p in &plugins {
        cmd.args(["-p", &format!("infragraph-plugin-{p}")]);
    }
    for (pkg, _) in TEST_GUESTS {
        cmd.args(["-p", pkg]);
    }
    run(&mut cmd)?;
    let out = target.join(WASM_TARGET).join("release");
    let built = Built {
        plugins: target.join("plugins"),
        guests: target.join("guests"),
    };
    let copy = |pkg: &str, dir: &Path, name: &str| -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let from = out.join(format!("{}.wasm", pkg.replace('-', "_")));
        std::fs::copy(&from, dir.join(format!("{name}.wasm")))
            .with_context(|| format!("cannot copy {}", from.display()))?;
        Ok(())
    };
    for p in &plugins {
        let pkg = format!("infragraph-plugin-{p}");
        copy(&pkg, &built.plugins, p)?;
        for profile in ["debug", "release"] {
            copy(&pkg, &target.join(profile).join("plugins"), p)?;
        }
    }
    for (pkg, name) in TEST_GUESTS {
        copy(pkg, &built.guests, name)?;
    }
    let _ = EMBED.set(built.plugins.clone());
    eprintln!(
        "plugins in {}, test guests in {}",
        built.plugins.display(),
        built.guests.display()
    );
    Ok(built)
}

fn test(args: &[String]) -> anyhow::Result<()> {
    let root = root();
    run(cargo()
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    // First, so that everything after embeds these plugins rather than building them.
    let built = build(&[])?;
    run(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Code behind `cfg(target_arch = "wasm32")` (the SDK's exports) is only linted there,
    // so a fresh machine needs the target before this, not only before the build.
    ensure_wasm_target()?;
    let mut wasm_clippy = cargo();
    wasm_clippy
        .current_dir(&root)
        .args(["clippy", "--target", WASM_TARGET]);
    for p in provider_plugins(&root)? {
        wasm_clippy.args(["-p", &format!("infragraph-plugin-{p}")]);
    }
    for (pkg, _) in TEST_GUESTS {
        wasm_clippy.args(["-p", pkg]);
    }
    run(wasm_clippy.args(["-p", "infragraph-sdk", "--", "-D", "warnings"]))?;
    // The SDK is what third-party plugins depend on: it must package and build as
    // crates.io would hand it out, outside this workspace, its WIT files included.
    run(cargo().current_dir(&root).args([
        "package",
        "-p",
        "infragraph-sdk",
        "--allow-dirty",
        "--quiet",
    ]))?;
    // End-to-end tests run the `infragraph` binary itself, which testing another package
    // does not build.
    run(cargo()
        .current_dir(&root)
        .args(["build", "-p", "infragraph"]))?;
    let nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    // The Bolt sink's tests write to a real server; it is stopped when `server` drops,
    // whether the tests pass or not.
    let server = arcadedb::ArcadeDb::start(&target_dir(&root))?;
    // The plugin install tests publish to and install from a real OCI registry.
    let registry = registry::Registry::start(&target_dir(&root))?;
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .env("INFRAGRAPH_TEST_PLUGINS", &built.plugins)
        .env("INFRAGRAPH_TEST_GUESTS", &built.guests)
        .envs(server.env())
        .envs(registry.env());
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(args);
    let result = run(&mut cmd);
    drop(server);
    drop(registry);
    result
}

fn demo() -> anyhow::Result<()> {
    let root = root();
    let built = build(&[])?;
    run(cargo().current_dir(&root).args([
        "build",
        "--quiet",
        "-p",
        "infragraph",
        "-p",
        "infragraph-tests",
        "--bins",
    ]))?;
    run(cargo()
        .current_dir(&root)
        .env("INFRAGRAPH_TEST_PLUGINS", &built.plugins)
        .args(["run", "--quiet", "-p", "infragraph-tests", "--bin", "demo"]))
}

/// Every benchmark binary with the names it answers to: the host's (`bench`: emit, load,
/// store, bolt, estate; takes `--quick`), one per provider plugin (`bench_critical` takes
/// `--quick` too), and the connections benchmarks
/// (`bench_connections`, issue 18: takes `--quick` and `--concurrency N`; run alone it
/// also takes `--repeat N`), and Cartography
/// beside infragraph into one Bolt server (`bench_cartography`, issue 21; installs
/// Cartography from PyPI once).
const BENCHES: &[(&str, &[&str])] = &[
    ("bench", &["store", "emit", "load", "bolt", "estate"]),
    ("bench_scaleway", &["scaleway"]),
    ("bench_spacelift", &["spacelift"]),
    ("bench_critical", &["critical"]),
    ("bench_azure", &["azure"]),
    ("bench_connections", &["connections", "connections-azure"]),
    ("bench_cartography", &["cartography"]),
];

/// `cargo xtask bench [NAME...] [--quick] [--concurrency N]`: every benchmark, or those
/// named (a binary runs when one of its names is given).
fn bench(args: &[String]) -> anyhow::Result<()> {
    let root = root();
    let mut names: Vec<&str> = Vec::new();
    let mut quick = false;
    let mut concurrency: Option<&str> = None;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--concurrency" => {
                concurrency = Some(rest.next().context("--concurrency needs a number")?);
            }
            name if BENCHES.iter().any(|(_, n)| n.contains(&name)) => names.push(name),
            other => bail!(
                "unknown argument {other:?}; benchmarks: {}",
                BENCHES
                    .iter()
                    .flat_map(|(_, n)| n.iter().copied())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    let built = build(&[])?;
    run(cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "infragraph-tests",
        "--bins",
    ]))?;
    // The connections benchmarks run the release `infragraph` built beside them.
    let connections = BENCHES.iter().find(|(b, _)| *b == "bench_connections");
    let needs_cli = names.contains(&"critical") || names.contains(&"cartography");
    if names.is_empty()
        || needs_cli
        || connections.is_some_and(|(_, n)| names.iter().any(|x| n.contains(x)))
    {
        run(cargo()
            .current_dir(&root)
            .args(["build", "--release", "-p", "infragraph"]))?;
    }
    // The Bolt benchmark writes to a real server, stopped when `server` drops; started
    // only when that benchmark is among those asked for (all are, by default).
    let server = if names.is_empty()
        || names
            .iter()
            .any(|n| matches!(*n, "bolt" | "estate" | "critical" | "cartography"))
    {
        Some(arcadedb::ArcadeDb::start(&target_dir(&root))?)
    } else {
        None
    };
    for (bin, own) in BENCHES {
        let mine: Vec<&str> = names.iter().copied().filter(|n| own.contains(n)).collect();
        if !names.is_empty() && mine.is_empty() {
            continue;
        }
        let mut cmd = cargo();
        if let Some(server) = &server {
            cmd.envs(server.env());
        }
        cmd.current_dir(&root)
            .env("INFRAGRAPH_TEST_PLUGINS", &built.plugins)
            .env("INFRAGRAPH_TEST_GUESTS", &built.guests)
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "infragraph-tests",
                "--bin",
                bin,
            ]);
        if matches!(*bin, "bench" | "bench_connections") {
            cmd.arg("--").args(&mine);
            if quick {
                cmd.arg("--quick");
            }
        }
        if *bin == "bench_critical" && quick {
            cmd.args(["--", "--quick"]);
        }
        if let (&"bench_connections", Some(n)) = (bin, concurrency) {
            cmd.args(["--concurrency", n]);
        }
        run(&mut cmd)?;
    }
    Ok(())
}
