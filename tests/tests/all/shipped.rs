//! The binary as it ships (issue 25): copied alone onto a machine with an empty home, it
//! carries every built-in plugin, and nothing dropped beside it replaces one.

use std::path::Path;
use std::process::Command;

use infragraph_tests::cli::{Ran, binary, run};
use infragraph_tests::harness;
use infragraph_tests::sim::{ScalewayData, ScalewaySim};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// `infragraph` run from `bin` with only `home` as its home: no config, no plugin
/// directory, no cache, none of the test suite's variables.
fn alone(bin: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(home)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home);
    cmd
}

fn ok(ran: &Ran) {
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A copy of `wasm` with a custom section appended: the same plugin (same name, same
/// code) as another build would be, with another sha256.
fn another_build(wasm: &[u8]) -> Vec<u8> {
    let (name, payload) = (b"rebuilt", b"by someone else");
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

#[test]
fn the_binary_alone_syncs_every_built_in_provider_and_nothing_shadows_one() {
    let root = tempfile::tempdir().unwrap();
    let (bin_dir, home) = (root.path().join("bin"), root.path().join("home"));
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let bin = bin_dir.join("infragraph");
    std::fs::copy(binary(), &bin).unwrap();

    // Every built-in plugin, embedded, with its version and the sha256 of the very file
    // the test suite built.
    let ran = run(&mut alone(
        &bin,
        &home,
        &["plugins", "list", "--format", "json"],
    ));
    ok(&ran);
    let listed: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    let listed = listed.as_array().expect("a list");
    for name in ["azure", "critical", "example", "scaleway", "spacelift"] {
        let built = std::fs::read(harness::plugin_dir().join(format!("{name}.wasm"))).unwrap();
        let entry = listed
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed:?}"));
        assert_eq!(entry["source"], "embedded", "{entry}");
        assert_eq!(entry["sha256"], sha256(&built), "{entry}");
        assert!(entry["version"].as_str().is_some_and(|v| !v.is_empty()));
    }

    // Another build of Scaleway dropped into the user's plugin directory is listed as
    // shadowed and never runs; the embedded one syncs.
    let user_dir = home.join(".local/share/infragraph/plugins");
    std::fs::create_dir_all(&user_dir).unwrap();
    let embedded = std::fs::read(harness::plugin_dir().join("scaleway.wasm")).unwrap();
    let dropped = another_build(&embedded);
    std::fs::write(user_dir.join("scaleway.wasm"), &dropped).unwrap();
    let ran = run(&mut alone(
        &bin,
        &home,
        &["plugins", "list", "--format", "json"],
    ));
    ok(&ran);
    let listed: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    let theirs = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sha256"] == sha256(&dropped))
        .unwrap_or_else(|| panic!("the dropped-in build is not listed: {listed}"));
    assert_eq!(theirs["shadowed"], true, "{theirs}");

    let sim = ScalewaySim::start(ScalewayData::generate(1, 3));
    let store = home.join("graph.db");
    let store = store.to_str().unwrap();
    let ran = run(alone(&bin, &home, &["sync", "scaleway", "--store", store])
        .env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", sim.organization_id()));
    ok(&ran);
    let ran = run(&mut alone(
        &bin,
        &home,
        &[
            "query",
            "nodes",
            "ScalewayInstance",
            "--store",
            store,
            "--format",
            "json",
        ],
    ));
    ok(&ran);
    let nodes: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    assert_eq!(nodes.as_array().map(Vec::len), Some(3), "{nodes}");

    // A written-out copy altered behind the binary's back is replaced before it loads.
    let written: Vec<_> = walk(&home.join(".cache/infragraph"))
        .into_iter()
        .filter(|p| p.ends_with("scaleway.wasm"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    std::fs::write(&written[0], &dropped).unwrap();
    let ran = run(alone(&bin, &home, &["sync", "scaleway", "--store", store])
        .env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", sim.organization_id()));
    ok(&ran);
    assert_eq!(
        sha256(&std::fs::read(&written[0]).unwrap()),
        sha256(&embedded)
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
