//! Running the `infragraph` binary as a user would, for end-to-end tests and the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::graph::Graph;

/// The `infragraph` binary built beside the running test or demo binary
/// (`<target>/debug/infragraph`), or `$INFRAGRAPH_BIN`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("INFRAGRAPH_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    // Test binaries live in <target>/<profile>/deps, other binaries in <target>/<profile>.
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("infragraph");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p infragraph`",
        bin.display()
    );
    bin
}

/// A command running `infragraph` with `args`, isolated from the user's own setup: no
/// config file, plugin directories or cache of theirs, built-in plugins from the test
/// build.
pub fn infragraph(work: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(work)
        .args(args)
        .env_remove("INFRAGRAPH_LOG")
        .env("HOME", work)
        .env("XDG_DATA_HOME", work.join("data"))
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("infragraph-test-cache"),
        )
        .env("INFRAGRAPH_BUILTIN_PLUGINS", crate::harness::plugin_dir());
    cmd
}

/// What a finished command printed.
pub struct Ran {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs the command to its end.
pub fn run(cmd: &mut Command) -> Ran {
    cmd.output().expect("infragraph runs").into()
}

/// Runs `cmd` with `input` on its standard input.
pub fn run_with_input(cmd: &mut Command, input: &str) -> Ran {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("infragraph runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("stdin takes the input");
    child.wait_with_output().expect("infragraph runs").into()
}

/// A scratch directory for one end-to-end test: the working directory (and `HOME`) of
/// every command it runs, removed when the test passes and kept for a look when it fails.
pub struct Work(pub PathBuf);

impl Work {
    /// A fresh, empty directory named after the test, its own even when tests of one
    /// name run side by side in one process (plain `cargo test` runs a file's tests on
    /// threads, and several of them may share a name).
    pub fn new(name: &str) -> Work {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("infragraph-e2e-{name}-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Work(dir)
    }

    /// The store file the test syncs into.
    pub fn store(&self) -> String {
        self.0.join("graph.db").to_string_lossy().into_owned()
    }

    /// `infragraph <args>` run in this directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        infragraph(&self.0, args)
    }

    /// Writes `infragraph.toml` and returns its path.
    pub fn config(&self, toml: &str) -> String {
        let path = self.0.join("infragraph.toml");
        std::fs::write(&path, toml).expect("config file");
        path.to_string_lossy().into_owned()
    }

    /// The whole graph of this test's store, through `infragraph export`.
    pub fn graph(&self) -> Graph {
        self.graph_of(&self.store())
    }

    /// The whole graph of `store`, through `infragraph export`.
    pub fn graph_of(&self, store: &str) -> Graph {
        let ran = run(&mut self.cmd(&["export", "--format", "jsonl", "--store", store]));
        assert_eq!(ran.code, 0, "export failed: {}", ran.stderr);
        Graph::from_jsonl(&ran.stdout)
    }

    /// The first plugin's report from a `--report report.json` run.
    pub fn report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.0.join("report.json")).expect("report.json");
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON report")[0].clone()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
