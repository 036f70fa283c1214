//! Running the `infragraph` binary as a user would, for end-to-end tests and the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
