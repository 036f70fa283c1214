//! Embeds the built-in plugins (every crate under `plugins/` but the SDK) in the binary.
//!
//! Built from source here, for `wasm32-wasip2`, by a cargo of its own with its own target
//! directory, so that a plain `cargo install --path host/cli` on a machine with rustup and
//! cargo alone gives a binary that syncs every built-in provider. Why from source rather
//! than from committed components: nothing binary is kept in the repository, what is
//! embedded is always what the sources say, and a build is as reproducible as the
//! toolchain's; the cost is about two minutes of wasm compilation on a first build
//! (docs/decisions/embedded-plugins.md weighs the options).
//!
//! `INFRAGRAPH_EMBED_PLUGINS=<dir>` takes `<dir>/<name>.wasm` instead, already built:
//! `cargo xtask` builds the plugins once and hands them here, so the test suite embeds the
//! very files it tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const TARGET: &str = "wasm32-wasip2";
const GIVEN: &str = "INFRAGRAPH_EMBED_PLUGINS";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed={GIVEN}");
    let names = plugin_names(&root.join("plugins"));
    let dir = match std::env::var_os(GIVEN) {
        Some(dir) => PathBuf::from(dir),
        None => {
            for watched in ["plugins", "wit", "Cargo.lock"] {
                println!("cargo:rerun-if-changed={}", root.join(watched).display());
            }
            build(&root, &out, &names)
        }
    };
    let version = workspace_version(&root);
    let mut all = Sha256::new();
    let mut code = String::from("/// Every built-in plugin, by name.\n");
    code.push_str("pub static PLUGINS: &[Builtin] = &[\n");
    for name in &names {
        let file = dir.join(format!("{name}.wasm"));
        if !file.is_file() {
            fail(&format!(
                "{} has no {name}.wasm: {GIVEN} must name a directory of built plugins \
                 (`cargo xtask build` writes one), or be unset to build them here",
                dir.display()
            ));
        }
        println!("cargo:rerun-if-changed={}", file.display());
        // Copied so the binary does not depend on a file that a later build replaces.
        let kept = out.join(format!("{name}.wasm"));
        std::fs::copy(&file, &kept).unwrap_or_else(|e| {
            fail(&format!("cannot copy {}: {e}", file.display()));
        });
        let bytes = std::fs::read(&kept).unwrap();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        all.update(sha256.as_bytes());
        let version = crate_version(&root.join("plugins").join(name), &version);
        code.push_str(&format!(
            "    Builtin {{ name: {name:?}, version: {version:?}, sha256: {sha256:?}, \
             wasm: include_bytes!({:?}) }},\n",
            kept.display().to_string()
        ));
    }
    code.push_str("];\n");
    let digest = hex::encode(all.finalize());
    code.push_str(&format!(
        "/// A digest of every plugin's sha256: names the set.\npub const DIGEST: &str = {:?};\n",
        &digest[..16]
    ));
    std::fs::write(out.join("builtins.rs"), code).unwrap();
}

/// `[workspace.package]`'s version in the root manifest.
fn workspace_version(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    version_in(&text, "[workspace.package]").unwrap_or_default()
}

/// A plugin crate's version: its own, or the workspace's when it inherits it.
fn crate_version(dir: &Path, workspace: &str) -> String {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    version_in(&text, "[package]").unwrap_or_else(|| workspace.to_string())
}

/// `version = "..."` in `section` of a manifest (a full TOML parser is not worth a build
/// dependency for one key).
fn version_in(text: &str, section: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == section;
        } else if inside && let Some(v) = line.strip_prefix("version") {
            let v = v.trim_start();
            if let Some(v) = v.strip_prefix('=') {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The plugins: every directory of `plugins/` with a crate, but the SDK.
fn plugin_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sdk")
        .collect();
    names.sort();
    names
}

/// Builds the plugins as `cargo xtask build` does (release, no debug info, LTO) into a
/// target directory under `out`; returns where the components are, named by plugin.
fn build(root: &Path, out: &Path, names: &[String]) -> PathBuf {
    ensure_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.join("wasm");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for name in names {
        cmd.args(["-p", &format!("infragraph-plugin-{name}")]);
    }
    // What the outer build sets for the host must not reach the guests' build: its flags,
    // its target, a wrapper such as clippy's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    let status = cmd
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo to build the plugins: {e}")));
    if !status.success() {
        fail("building the built-in plugins failed (its output is above)");
    }
    let built = target_dir.join(TARGET).join("release");
    let dir = out.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for name in names {
        let from = built.join(format!("infragraph_plugin_{name}.wasm"));
        std::fs::copy(&from, dir.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| fail(&format!("cannot copy {}: {e}", from.display())));
    }
    dir
}

/// Adds the wasm target through rustup when it is missing.
fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == TARGET)
        })
        .unwrap_or(false);
    if installed {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if !added {
        fail(&format!(
            "the built-in plugins are built for {TARGET}: run `rustup target add {TARGET}`, \
             or set {GIVEN} to a directory of plugins built already"
        ));
    }
}

fn fail(why: &str) -> ! {
    eprintln!("infragraph-builtins: {why}");
    std::process::exit(1)
}
