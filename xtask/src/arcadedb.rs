//! The Bolt server the Neo4j sink's tests and benchmark run against: ArcadeDB with its
//! Bolt plugin (Neo4j itself is not installable from the registries this project
//! reaches; `docs/testing.md` says what ArcadeDB is and how it differs). Installed once
//! from PyPI into `$HOME/.cache/infragraph/arcadedb/<version>` (the wheel carries its own
//! Java runtime), started on free loopback ports with a data directory of its own, and
//! stopped when the [`ArcadeDb`] guard drops, on success or failure.

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The wheel's version: the one the Bolt sink was verified with (`docs/testing.md`).
const VERSION: &str = "26.10.2.post1";
/// Root's password on the throw-away test server.
const PASSWORD: &str = "password123";
/// How long the server may take to start (about 2 s is usual).
const STARTUP: Duration = Duration::from_secs(90);
/// What the server logs once it accepts connections.
const READY_LINE: &str = "ArcadeDB Server started";

/// A running test server; stopped (and its data removed) on drop.
pub struct ArcadeDb {
    child: Child,
    data: PathBuf,
    /// `bolt://127.0.0.1:<port>`.
    pub bolt_uri: String,
    /// `http://127.0.0.1:<port>`.
    pub http_url: String,
}

impl ArcadeDb {
    /// The environment the tests read (see `tests/src/bolt.rs`).
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("INFRAGRAPH_TEST_BOLT_URI", self.bolt_uri.clone()),
            ("INFRAGRAPH_TEST_BOLT_HTTP", self.http_url.clone()),
            ("INFRAGRAPH_TEST_BOLT_USER", "root".into()),
            ("INFRAGRAPH_TEST_BOLT_PASSWORD", PASSWORD.into()),
        ]
    }

    /// Installs (when not cached) and starts the server under `work` (a directory for
    /// its data and log), and waits until it answers.
    pub fn start(work: &Path) -> anyhow::Result<ArcadeDb> {
        let home = install()?;
        let (bolt, http) = (free_port()?, free_port()?);
        let data = work.join(format!("arcadedb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let log_path = data.join("server.log");
        let log = File::create(&log_path)?;
        let mut cmd = Command::new(home.join("jre/bin/java"));
        cmd.args([
            "-Xms256m",
            "-Xmx1g",
            "--add-exports",
            "java.management/sun.management=ALL-UNNAMED",
            "--add-modules",
            "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
        ])
        .arg(format!("-Darcadedb.server.rootPath={}", data.display()))
        .arg(format!("-Darcadedb.server.rootPassword={PASSWORD}"))
        .arg("-Darcadedb.server.httpIncomingHost=127.0.0.1")
        .arg(format!("-Darcadedb.server.httpIncomingPort={http}"))
        .arg("-Darcadedb.server.defaultDatabases=neo4j[root]")
        .arg("-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin")
        .arg("-Darcadedb.bolt.host=127.0.0.1")
        .arg(format!("-Darcadedb.bolt.port={bolt}"))
        .arg("-Darcadedb.bolt.defaultDatabase=neo4j")
        .arg("-cp")
        .arg(format!("{}/jars/*", home.display()))
        .arg("com.arcadedb.server.ArcadeDBServer")
        .current_dir(&data)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        eprintln!(
            "$ {} ... com.arcadedb.server.ArcadeDBServer (Bolt on {bolt}, HTTP on {http}, log {})",
            home.join("jre/bin/java").display(),
            log_path.display()
        );
        let child = cmd.spawn().context("cannot start ArcadeDB's java")?;
        let server = ArcadeDb {
            child,
            data,
            bolt_uri: format!("bolt://127.0.0.1:{bolt}"),
            http_url: format!("http://127.0.0.1:{http}"),
        };
        server.wait_ready(&log_path, bolt)?;
        Ok(server)
    }

    fn wait_ready(&self, log: &Path, bolt: u16) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let mut text = String::new();
            File::open(log)?.read_to_string(&mut text)?;
            if text.contains(READY_LINE) && TcpStream::connect(("127.0.0.1", bolt)).is_ok() {
                eprintln!(
                    "ArcadeDB ready in {:.1} s at {}",
                    started.elapsed().as_secs_f64(),
                    self.bolt_uri
                );
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                bail!(
                    "ArcadeDB did not start within {STARTUP:?}; the end of its log ({}):\n{}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ArcadeDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
        eprintln!("ArcadeDB stopped");
    }
}

/// The unpacked wheel's `arcadedb_embedded` directory, installed with pip when missing.
fn install() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let dir = PathBuf::from(home)
        .join(".cache/infragraph/arcadedb")
        .join(VERSION);
    let package = dir.join("arcadedb_embedded");
    if package.join("jre/bin/java").is_file() && package.join("jars").is_dir() {
        return Ok(package);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .context("installing ArcadeDB needs python3 with pip")?;
    crate::run(
        Command::new(python)
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&dir)
            .arg(format!("arcadedb-embedded=={VERSION}")),
    )
    .context("cannot install ArcadeDB (the Bolt test server) from PyPI")?;
    if !package.join("jre/bin/java").is_file() {
        bail!(
            "the arcadedb-embedded wheel in {} has no jre/bin/java",
            dir.display()
        );
    }
    Ok(package)
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
