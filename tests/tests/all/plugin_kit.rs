//! The plugin developer kit (issue 19), as a third-party author meets it: `infragraph
//! plugin new` writes a crate outside this repository that depends on the SDK as an
//! outside crate would, builds with one command into a small component, passes its own
//! unit tests and `plugins check`, and syncs a real (simulated) API; then it is tested
//! against a recording, signed and published to an OCI registry, and a second user, from
//! a home of their own, installs it by its `oci://` reference trusting the author's key,
//! and syncs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::registry;
use infragraph_tests::sim::{AcmeData, AcmeSim};

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// `cargo <args>` in the new crate, with a target directory kept beside the workspace's
/// (so a second run builds only what changed) and the workspace's lock file, so the crate
/// resolves the dependency versions this repository is tested with.
fn cargo(dir: &Path, args: &[&str]) -> Ran {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("plugin-kit");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        // The test runner's own settings are the workspace's, not the new crate's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    run(&mut cmd)
}

#[test]
fn a_new_plugin_is_built_tested_signed_published_installed_by_oci_and_synced() {
    let started = Instant::now();
    let lap = |what: &str| eprintln!("{:>6.1} s  {what}", started.elapsed().as_secs_f64());
    let w = Work::new("plugin-kit");
    let dir = w.0.join("acme-users");
    let sdk = repo().join("plugins/sdk");
    let ran = run(&mut w.cmd(&[
        "plugin",
        "new",
        "acme-users",
        "--dir",
        dir.to_str().unwrap(),
        "--sdk-path",
        sdk.to_str().unwrap(),
    ]));
    ok(&ran);
    assert!(
        ran.stdout
            .contains("cargo build --release --target wasm32-wasip2")
    );
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    lap("plugin new");

    // Its own unit tests, natively, as `cargo test` runs them.
    let tested = cargo(&dir, &["test", "--quiet"]);
    ok(&tested);
    assert!(tested.stdout.contains("4 passed"), "{}", tested.stdout);
    lap("cargo test (mock host)");

    // One command builds the component, and it is small.
    ok(&cargo(
        &dir,
        &["build", "--release", "--target", "wasm32-wasip2", "--quiet"],
    ));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("plugin-kit");
    let wasm = target.join("wasm32-wasip2/release/acme_users.wasm");
    let size = std::fs::metadata(&wasm).unwrap().len();
    assert!(size < 400 * 1024, "{} is {size} bytes", wasm.display());
    lap("cargo build --release --target wasm32-wasip2");
    // The author keeps the build beside their key, as a release would.
    let release = w.0.join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(&wasm, release.join("acme_users.wasm")).unwrap();
    let wasm = release.join("acme_users.wasm");
    let wasm = wasm.to_str().unwrap();

    let checked = run(&mut w.cmd(&["plugins", "check", wasm]));
    ok(&checked);
    assert!(
        checked
            .stdout
            .contains("ok: acme-users 0.1.0 (contract 0.3.0), 2 node and 1 relationship kinds"),
        "{}",
        checked.stdout
    );

    // The sample recording the scaffold ships (what its replay test runs natively) is in
    // the host's own format: the real component replays it too.
    let sample_config = w.0.join("sample.toml");
    std::fs::write(
        &sample_config,
        "[plugins.acme-users]\napi_url = \"https://api.test/v1\"\n",
    )
    .unwrap();
    let sample = run(&mut w.cmd(&[
        "--config",
        sample_config.to_str().unwrap(),
        "plugins",
        "test",
        wasm,
        "--replay",
        dir.join("tests/recording").to_str().unwrap(),
        "--expect",
        w.0.join("sample.jsonl").to_str().unwrap(),
    ]));
    ok(&sample);
    assert!(
        sample.stdout.contains("wrote 7 records"),
        "{}",
        sample.stdout
    );

    // It syncs an API of the shape it expects: Acme Directory's users listing, 250 users
    // on three pages, the token granted from the variable the config names.
    let sim = AcmeSim::start(AcmeData::sample(250, 3));
    let config = w.config(&format!(
        "[plugins.acme-users]\napi_url = \"{}/v1/tenants/{}\"\n\n\
         [plugins.acme-users.secrets]\napi_token = {{ env = \"ACME_USERS_API_TOKEN\" }}\n",
        sim.url(),
        AcmeData::TENANT
    ));
    let rec = w.0.join("rec");
    let rec = rec.to_str().unwrap();
    let mut sync = w.cmd(&[
        "--config",
        &config,
        "sync",
        wasm,
        "--store",
        &w.store(),
        "--record",
        rec,
    ]);
    sync.env("ACME_USERS_API_TOKEN", AcmeSim::TOKEN);
    ok(&run(&mut sync));
    let g = w.graph();
    assert_eq!(g.count("AcmeUsersUser"), 250);
    assert_eq!(g.edges_of("RESOURCE"), 250);

    // The plugin's own CI check: the recording replayed (no network, no token), its graph
    // written once as the expected one, then compared; a changed expectation is a diff.
    let expect = w.0.join("expected.jsonl");
    let expect = expect.to_str().unwrap();
    let test = |w: &Work| {
        run(&mut w.cmd(&[
            "--config", &config, "plugins", "test", wasm, "--replay", rec, "--expect", expect,
        ]))
    };
    let first = test(&w);
    ok(&first);
    assert!(
        first.stdout.contains("wrote 501 records"),
        "{}",
        first.stdout
    );
    let again = test(&w);
    ok(&again);
    assert!(
        again
            .stdout
            .starts_with("ok: the replay wrote the 501 records"),
        "{}",
        again.stdout
    );
    let text = std::fs::read_to_string(expect).unwrap();
    let edited: String = text
        .lines()
        .map(|l| l.replace("\"user7@", "\"someone-else@"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, edited, "the expected graph names user 7's address");
    std::fs::write(expect, edited).unwrap();
    let differs = test(&w);
    assert_eq!(differs.code, 1, "{}\n{}", differs.stdout, differs.stderr);
    assert!(
        differs
            .stdout
            .contains("1 expected records missing, 1 unexpected")
            && differs.stdout.contains("someone-else@"),
        "{}",
        differs.stdout
    );

    // A refused token fails naming the variable to check.
    let mut refused = w.cmd(&["--config", &config, "sync", wasm, "--store", &w.store()]);
    refused.env("ACME_USERS_API_TOKEN", "not-the-token");
    let ran = run(&mut refused);
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    assert!(
        format!("{}{}", ran.stdout, ran.stderr).contains("check ACME_USERS_API_TOKEN"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    lap("check, sync --record, plugins test --replay");

    // Signed and published to an OCI registry.
    let keys = w.0.join("keys");
    ok(&run(&mut w.cmd(&[
        "plugin",
        "keygen",
        "--dir",
        keys.to_str().unwrap(),
    ])));
    let public = std::fs::read_to_string(keys.join("infragraph.pub")).unwrap();
    let public = public.lines().nth(1).unwrap().to_string();
    let key = keys.join("infragraph.key");
    ok(&run(&mut w.cmd(&[
        "plugin",
        "sign",
        wasm,
        "--key",
        key.to_str().unwrap(),
    ])));
    let reference = format!(
        "oci://{}/plugin-kit-{}/acme-users:0.1.0",
        registry::address(),
        std::process::id()
    );
    ok(&run(&mut w.cmd(&["plugin", "publish", wasm, &reference])));
    lap("keygen, sign, publish");

    // A second user, from a home of their own, trusts the author's key, installs the
    // plugin by its reference and syncs it by name.
    let op = Work::new("plugin-kit-operator");
    let config = op.config(&format!(
        "[trust]\nkeys = [\"{public}\"]\n\n[plugins.acme-users]\napi_url = \"{}/v1/tenants/{}\"\n\n\
         [plugins.acme-users.secrets]\napi_token = {{ env = \"ACME_USERS_API_TOKEN\" }}\n",
        sim.url(),
        AcmeData::TENANT
    ));
    let installed = run(&mut op.cmd(&["plugins", "install", &reference]));
    ok(&installed);
    assert!(
        installed.stdout.contains("installed acme-users 0.1.0")
            && installed.stdout.contains(&public),
        "{}",
        installed.stdout
    );
    let mut sync = op.cmd(&["sync", "acme-users", "--store", &op.store()]);
    sync.env("ACME_USERS_API_TOKEN", AcmeSim::TOKEN);
    ok(&run(&mut sync));
    let g = op.graph();
    assert_eq!(g.count("AcmeUsersUser"), 250);
    assert_eq!(g.edges_of("RESOURCE"), 250);
    ok(&run(&mut op.cmd(&["plugins", "verify"])));
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("sha256 = ")
    );
    lap("install by oci:// reference, sync, verify (the whole path)");
}

#[test]
fn check_names_what_is_wrong_with_a_file() {
    let w = Work::new("plugin-check");
    let not_wasm = w.0.join("not.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let ran = run(&mut w.cmd(&["plugins", "check", not_wasm.to_str().unwrap()]));
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("not.wasm"), "{}", ran.stderr);
    let bad = run(&mut w.cmd(&["plugin", "new", "Acme_Users"]));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("is not a plugin name"),
        "{}",
        bad.stderr
    );
}
