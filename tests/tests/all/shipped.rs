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

/// `plugins list`, as JSON.
fn plugins(bin: &Path, home: &Path) -> Vec<Json> {
    let ran = run(&mut alone(
        bin,
        home,
        &["plugins", "list", "--format", "json"],
    ));
    ok(&ran);
    let listed: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    listed.as_array().expect("a list").clone()
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
    let listed = plugins(&bin, &home);
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
    let listed = plugins(&bin, &home);
    let theirs = listed
        .iter()
        .find(|p| p["sha256"] == sha256(&dropped))
        .unwrap_or_else(|| panic!("the dropped-in build is not listed: {listed:?}"));
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

    // A file put beside them is none of the binary's: not listed, not found by name.
    let beside = written[0].parent().unwrap().join("misbehave.wasm");
    std::fs::copy(harness::guest("misbehave"), &beside).unwrap();
    let listed = plugins(&bin, &home);
    assert!(
        listed.iter().all(|p| p["name"] != "misbehave"),
        "{listed:?}"
    );
    let ran = run(&mut alone(
        &bin,
        &home,
        &["plugins", "inspect", "misbehave"],
    ));
    assert_ne!(ran.code, 0, "{}", ran.stdout);
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

/// `cmd` run under the usual umask, 022, whatever the test runner's.
fn under_umask_022(cmd: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A store holds an estate's whole inventory and plugin state: the store and its
/// journals, a report, an export, a recording and the compiled-code cache are the
/// owner's alone under the usual umask; a cache others can write is not loaded from, and
/// the user is told why.
#[test]
fn what_infragraph_writes_is_its_owners_alone() {
    use infragraph_tests::cli::Work;
    use infragraph_tests::sim::{AcmeData, AcmeSim};
    let w = Work::new("private");
    let sim = AcmeSim::start(AcmeData::sample(5, 2));
    let cache = w.0.join("cache");
    let cmd = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.env("XDG_CACHE_HOME", &cache)
            .env("ACME_API_URL", sim.url())
            .env("ACME_TENANT", AcmeData::TENANT)
            .env("ACME_API_TOKEN", AcmeSim::TOKEN);
        under_umask_022(&c)
    };
    let store = w.0.join("graph.db");
    let s = store.to_str().unwrap();
    let ran = run(&mut cmd(&[
        "sync",
        "example",
        "--store",
        s,
        "--report",
        "report.json",
        "--record",
        "rec",
    ]));
    ok(&ran);
    let ran = run(&mut cmd(&[
        "export", "--store", s, "--format", "jsonl", "-o", "g.jsonl",
    ]));
    ok(&ran);
    for f in ["graph.db", "report.json", "g.jsonl"] {
        assert_eq!(mode(&w.0.join(f)), 0o600, "{f}");
    }
    for f in ["graph.db-wal", "graph.db-shm"] {
        let p = w.0.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode(&w.0.join("rec")), 0o700, "the recording");
    let recorded = walk(&w.0.join("rec"));
    assert!(!recorded.is_empty(), "nothing was recorded");
    for p in recorded {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        assert_eq!(mode(p.parent().unwrap()), 0o700, "{}", p.display());
    }
    let compiled = cache.join("infragraph/compiled");
    for p in walk(&compiled) {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        assert_eq!(mode(p.parent().unwrap()), 0o700, "{}", p.display());
    }
    assert!(!walk(&compiled).is_empty(), "nothing was cached");

    // Opened to every user, the cache is not loaded from, and the user is told why.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&compiled, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let ran = run(&mut cmd(&["sync", "example", "--store", s]));
    ok(&ran);
    assert!(
        ran.stderr.contains("not using the compiled-code cache")
            && ran.stderr.contains("writable by every user"),
        "{}",
        ran.stderr
    );
}

/// `infragraph generate`: the man page and each shell's completions come from the
/// command-line definitions (every subcommand is in them); bash accepts its script; a
/// reader that stops early (`| head`) ends it quietly, not with a panic.
#[test]
fn completions_and_the_man_page_are_generated_from_the_arguments() {
    use std::io::Read;
    use std::process::Stdio;
    let w = infragraph_tests::cli::Work::new("generate");
    for (what, marker) in [
        ("man", ".TH infragraph 1"),
        ("complete-bash", "_infragraph()"),
        ("complete-zsh", "#compdef infragraph"),
        ("complete-fish", "complete -c infragraph"),
    ] {
        let ran = run(&mut w.cmd(&["generate", what]));
        ok(&ran);
        assert!(
            ran.stdout.contains(marker),
            "{what}: {}",
            &ran.stdout[..200.min(ran.stdout.len())]
        );
        for sub in ["sync", "access", "plugins", "generate"] {
            assert!(ran.stdout.contains(sub), "{what} lacks {sub}");
        }
        if what == "complete-bash" {
            let file = w.0.join("infragraph.bash");
            std::fs::write(&file, &ran.stdout).unwrap();
            let checked = run(Command::new("bash").arg("-n").arg(&file));
            assert_eq!(checked.code, 0, "{}", checked.stderr);
        }
    }
    let mut child = w
        .cmd(&["generate", "complete-zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
}
