//! Records the git commit the binary is built from, for `infragraph --version` (what a bug
//! report needs). Outside a git checkout (a crate unpacked by `cargo install`), it says so.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let text = commit.unwrap_or_else(|| "unknown (not built from a git checkout)".to_string());
    println!("cargo:rustc-env=INFRAGRAPH_GIT_COMMIT={text}");
    // A new commit or checkout changes HEAD or the ref it names.
    for path in ["../../.git/HEAD", "../../.git/refs/heads"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
