//! `cargo xtask image`: the container image of `Containerfile`, built with buildah (from
//! Debian's packages, no daemon) into an OCI archive, then checked: unpacked with umoci,
//! its binary syncs the Scaleway simulator from the image's own root filesystem.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{cargo, root, run, target_dir};

/// The image's user, as in `Containerfile` (the "nonroot" of distroless images).
const UID: &str = "65532";

pub fn image(_args: &[String]) -> anyhow::Result<()> {
    let root = root();
    let dist = crate::dist::dist(&["--static-only".to_string()])?;
    let version = crate::dist::version(&root)?;
    let target = target_dir(&root);
    let context = target.join("image-context");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(context.join("data"))?;
    std::fs::copy(&dist.static_binary, context.join("infragraph"))?;
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    std::fs::copy(bundle, context.join("ca-certificates.crt")).with_context(|| {
        format!(
            "{} (Debian's ca-certificates) is the image's CA bundle",
            bundle.display()
        )
    })?;
    std::fs::write(
        context.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\ninfragraph:x:{UID}:{UID}:infragraph:/data:/sbin/nologin\n"
        ),
    )?;
    std::fs::write(
        context.join("group"),
        format!("root:x:0:\ninfragraph:x:{UID}:\n"),
    )?;
    ensure_tools()?;
    let out = target.join("dist");
    let archive = out.join(format!("infragraph-{version}.oci.tar"));
    let tag = format!("localhost/infragraph:{version}");
    // vfs storage and chroot isolation need no kernel overlay or user namespaces; the
    // Containerfile runs nothing, so isolation is never used anyway.
    let buildah = |args: &[&str]| {
        let mut cmd = Command::new("buildah");
        cmd.args(["--storage-driver", "vfs", "--root"])
            .arg(target.join("buildah/storage"))
            .args(["--runroot"])
            .arg(target.join("buildah/run"))
            .args(args);
        cmd
    };
    run(
        buildah(&["build", "--isolation", "chroot", "--timestamp", "0", "-f"])
            .arg(root.join("Containerfile"))
            .args(["-t", &tag])
            .arg(&context),
    )?;
    if archive.exists() {
        std::fs::remove_file(&archive)?;
    }
    run(buildah(&["push", &tag]).arg(format!("oci-archive:{}:{tag}", archive.display())))?;
    eprintln!(
        "image: {} ({:.1} MB)",
        archive.display(),
        std::fs::metadata(&archive)?.len() as f64 / 1e6
    );
    check(&root, &target, &archive, &tag)
}

/// Unpacks the archive and syncs the Scaleway simulator with the binary from the image's
/// root filesystem, as its user would, with only the image's environment.
fn check(root: &Path, target: &Path, archive: &Path, tag: &str) -> anyhow::Result<()> {
    let unpacked = target.join("image-check");
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    std::fs::create_dir_all(&unpacked)?;
    let layout = unpacked.join("layout");
    run(Command::new("skopeo")
        .args(["copy"])
        .arg(format!("oci-archive:{}:{tag}", archive.display()))
        .arg(format!("oci:{}:check", layout.display())))?;
    let bundle = unpacked.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:check", layout.display()))
        .arg(&bundle))?;
    let rootfs = bundle.join("rootfs");
    // The runtime bundle's config (OCI runtime spec) says who runs what, with what.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    let process = &config["process"];
    let user = format!("{}:{}", process["user"]["uid"], process["user"]["gid"]);
    let env: Vec<(String, String)> = process["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let binary = rootfs.join("usr/local/bin/infragraph");
    for (path, what) in [
        (binary.clone(), "the binary"),
        (
            rootfs.join("etc/ssl/certs/ca-certificates.crt"),
            "the CA bundle",
        ),
        (rootfs.join("data"), "the data volume"),
    ] {
        if !path.exists() {
            bail!("the image has no {what} ({})", path.display());
        }
    }
    if user != format!("{UID}:{UID}") {
        bail!("the image runs as {user}, not the unprivileged {UID}");
    }
    // The simulator is the test suite's; built beside xtask's other binaries.
    run(cargo().current_dir(root).args([
        "build",
        "--release",
        "-p",
        "infragraph-tests",
        "--bin",
        "bench_scaleway",
    ]))?;
    let sim_bin = target.join("release/bench_scaleway");
    let data = unpacked.join("data");
    std::fs::create_dir_all(&data)?;
    let mut sim = Command::new(&sim_bin)
        .args(["serve", "1", "20", "0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the Scaleway simulator")?;
    let url = read_url(&mut sim)?;
    let mut cmd = Command::new(&binary);
    cmd.current_dir(&data).env_clear();
    for (k, v) in &env {
        // The image's /data is this check's data directory.
        cmd.env(k, v.replace("/data", &data.to_string_lossy()));
    }
    let ran = cmd
        .env("SCW_API_URL", &url)
        .env("SCW_SECRET_KEY", "7f3e9c2a-51d4-4b8e-a6f0-93c1d2e4b5a6")
        .env(
            "SCW_DEFAULT_ORGANIZATION_ID",
            "0000a0a0-0000-4000-8000-000000000001",
        )
        .args(["sync", "scaleway"])
        .output()?;
    let _ = sim.kill();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    if !ran.status.success() || !data.join("infragraph.db").is_file() {
        bail!("the image's binary did not sync the simulator:\n{said}");
    }
    eprintln!(
        "image: checked: its binary, alone in its root filesystem, synced the Scaleway simulator into /data\n{said}"
    );
    Ok(())
}

/// The simulator prints its address on its first line.
fn read_url(sim: &mut std::process::Child) -> anyhow::Result<String> {
    use std::io::BufRead;
    let out = sim.stdout.take().context("simulator stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string)
        .with_context(|| format!("the simulator printed no address: {line:?}"))
}

/// buildah, skopeo and umoci, from Debian's packages.
fn ensure_tools() -> anyhow::Result<()> {
    let there = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = ["buildah", "skopeo", "umoci"]
        .into_iter()
        .filter(|t| !there(t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if there("apt-get") {
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing))?;
    }
    let still: Vec<&str> = missing.into_iter().filter(|t| !there(t)).collect();
    if !still.is_empty() {
        bail!(
            "the image needs {} (Debian packages of the same names)",
            still.join(", ")
        );
    }
    Ok(())
}
