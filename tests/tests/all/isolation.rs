//! Issue 20, point 5: in one `infragraph sync`, a plugin that cannot run (its
//! `manifest()` loops, it was built for another contract, its file is corrupt, its pin,
//! config or credentials do not fit) is reported failed, its error naming the phase, and
//! every other plugin of the command still runs.

use std::path::Path;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;
use infragraph_tests::sim::{AcmeData, AcmeSim};
use serde_json::Value as Json;

use crate::runtime;

/// `infragraph sync <plugins> example` against the Acme simulator, writing
/// `report.json`.
fn sync_beside_example(w: &Work, sim: &AcmeSim, plugins: &[&str], config: &str) -> Ran {
    let store = w.store();
    let mut args = vec!["sync"];
    args.extend(plugins);
    args.extend([
        "example",
        "--config",
        config,
        "--store",
        &store,
        "--report",
        "report.json",
    ]);
    run(w
        .cmd(&args)
        .env("ACME_API_URL", sim.url())
        .env("ACME_TENANT", AcmeData::TENANT)
        .env("ACME_API_TOKEN", AcmeSim::TOKEN))
}

fn reports(w: &Work) -> Vec<Json> {
    let text = std::fs::read_to_string(w.0.join("report.json")).expect("report.json");
    serde_json::from_str::<Json>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The one error of the failed report of `plugin`, checked to start with `phase: `.
fn failed_in(reports: &[Json], plugin: &str, phase: &str) -> String {
    let r = reports
        .iter()
        .find(|r| r["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no report of {plugin} in {reports:?}"));
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["errors"][0].as_str().unwrap().to_string();
    assert!(
        error.starts_with(&format!("{phase}: ")),
        "{plugin}: {error}"
    );
    error
}

fn example_succeeded(w: &Work, ran: &Ran, users: usize) {
    let reports = reports(w);
    let example = reports.iter().find(|r| r["plugin"] == "example").unwrap();
    assert_eq!(example["status"], "succeeded", "{example}");
    assert_eq!(w.graph().count("AcmeUser"), users);
    assert_eq!(
        ran.code, 2,
        "a failed plugin fails the command: {}",
        ran.stdout
    );
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("example "))
        .unwrap();
    assert!(line.contains("succeeded"), "{}", ran.stdout);
}

#[test]
fn a_plugin_whose_manifest_loops_fails_alone_naming_the_manifest_phase() {
    let w = Work::new("iso-manifest");
    let sim = AcmeSim::start(AcmeData::sample(6, 2));
    let looping = harness::guest("manifest-loop");
    let looping = looping.to_str().unwrap();
    let config = w.config("");
    let ran = sync_beside_example(&w, &sim, &[looping], &config);
    example_succeeded(&w, &ran, 6);
    let error = failed_in(&reports(&w), looping, "manifest");
    assert!(
        error.contains("limit manifest time (1s) exceeded") && !error.contains("sync time"),
        "{error}"
    );
    assert!(
        ran.stdout
            .contains(&format!("{looping}: error: manifest: ")),
        "{}",
        ran.stdout
    );
}

#[test]
fn plugins_that_cannot_load_or_be_configured_fail_alone_naming_the_phase() {
    let w = Work::new("iso-load");
    let sim = AcmeSim::start(AcmeData::sample(5, 1));
    let old = harness::guest("old-contract");
    let old = old.to_str().unwrap();
    let corrupt = w.0.join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm this is not a component").unwrap();
    let corrupt = corrupt.to_str().unwrap();
    // `mode` is required and not set: a config error.
    let misbehave = harness::guest("misbehave");
    let misbehave = misbehave.to_str().unwrap();
    let config = w.config("");
    let ran = sync_beside_example(&w, &sim, &[old, corrupt, misbehave], &config);
    example_succeeded(&w, &ran, 5);
    let reports = reports(&w);
    assert_eq!(reports.len(), 4, "one report per plugin: {reports:?}");
    // In the order named.
    let names: Vec<_> = reports.iter().map(|r| r["plugin"].clone()).collect();
    assert_eq!(names, [old, corrupt, "misbehave", "example"]);
    let error = failed_in(&reports, old, "load");
    assert!(error.contains("contract 0.0.9"), "{error}");
    let error = failed_in(&reports, corrupt, "load");
    assert!(
        error.contains("is not a valid WebAssembly component"),
        "{error}"
    );
    let error = failed_in(&reports, "misbehave", "config");
    assert!(error.contains("config key \"mode\" is required"), "{error}");
}

#[test]
fn a_plugin_missing_a_credential_fails_alone_naming_the_credentials_phase() {
    let w = Work::new("iso-credentials");
    let misbehave = harness::guest("misbehave");
    let misbehave = misbehave.to_str().unwrap();
    let config = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    let store = w.store();
    // `example` is built in and its token is required; the variable is not set.
    let ran = run(w
        .cmd(&[
            "sync",
            "example",
            misbehave,
            "--config",
            &config,
            "--store",
            &store,
            "--report",
            "report.json",
        ])
        .env("ACME_TENANT", AcmeData::TENANT)
        .env_remove("ACME_API_TOKEN"));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let reports = reports(&w);
    let error = failed_in(&reports, "example", "credentials");
    assert!(
        error.contains("set the environment variable ACME_API_TOKEN"),
        "{error}"
    );
    let misbehave = reports.iter().find(|r| r["plugin"] == "misbehave").unwrap();
    assert_eq!(misbehave["status"], "succeeded", "{misbehave}");
    assert_eq!(w.graph().count("MisbehaveThing"), 3);
}

/// A name that matches no plugin is a usage error: the command stops before anything
/// runs, suggesting the name meant.
#[test]
fn a_name_matching_no_plugin_fails_the_command_before_anything_runs() {
    let w = Work::new("iso-typo");
    let misbehave = harness::guest("misbehave");
    let config = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    let store = w.store();
    let ran = run(&mut w.cmd(&[
        "sync",
        misbehave.to_str().unwrap(),
        "exampel",
        "--config",
        &config,
        "--store",
        &store,
    ]));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("no plugin named \"exampel\"; did you mean \"example\"?"),
        "{}",
        ran.stderr
    );
    assert!(!Path::new(&store).exists(), "nothing ran");
}

/// The manifest's deadline was reported as the limit `sync time`, sending the operator to
/// the wrong setting.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_manifest_is_stopped_at_the_manifest_time_limit() {
    let rt = runtime();
    let err = match rt.load(&harness::guest("manifest-loop"), None).await {
        Ok(_) => panic!("a manifest that never returns was loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("reading its manifest failed: limit manifest time (1s) exceeded"),
        "{err}"
    );
    assert!(!err.contains("sync time"), "{err}");
}
