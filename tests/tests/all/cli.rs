//! The `infragraph` binary end to end, as a user drives it: sync into a fresh store,
//! change the provider, sync again, fail, kill, export and import.

use std::path::Path;
use std::time::{Duration, Instant};

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;
use infragraph_tests::sim::{AcmeData, AcmeSim, EchoSim};
use serde_json::Value as Json;

/// Runs `infragraph` against the Acme simulator.
trait Acme {
    fn acme(&self, sim: &AcmeSim, args: &[&str]) -> Ran;
}

impl Acme for Work {
    fn acme(&self, sim: &AcmeSim, args: &[&str]) -> Ran {
        let mut cmd = self.cmd(args);
        cmd.env("ACME_API_URL", sim.url())
            .env("ACME_TENANT", AcmeData::TENANT)
            .env("ACME_API_TOKEN", AcmeSim::TOKEN);
        run(&mut cmd)
    }
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

fn n(v: &Json) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn a_sync_writes_the_declared_graph_with_bookkeeping() {
    let w = Work::new("first");
    let data = AcmeData::sample(30, 4);
    let memberships: usize = data.users.iter().map(|u| u.group_ids.len()).sum();
    let sim = AcmeSim::start(data);
    let ran = w.acme(
        &sim,
        &[
            "sync",
            "example",
            "--store",
            &w.store(),
            "--report",
            "report.json",
        ],
    );
    ok(&ran);
    assert!(
        ran.stdout.contains("example") && ran.stdout.contains("succeeded"),
        "{}",
        ran.stdout
    );

    let g = w.graph();
    assert_eq!(g.count("AcmeUser"), 30);
    assert_eq!(g.count("AcmeGroup"), 4);
    assert_eq!(g.count("AcmeTenant"), 1);
    assert_eq!(g.edges_of("RESOURCE"), 34);
    assert_eq!(g.edges_of("MEMBER_OF"), memberships);
    let (labels, _) = &g.nodes[&("AcmeUser".to_string(), "user-0003".to_string())];
    assert_eq!(labels, &["AcmeUser", "UserAccount"]);
    let u = g.node("AcmeUser", "user-0003");
    assert_eq!(u["email"], "user3@acme-corp.example");
    assert_eq!(u["admin"], false);
    assert_eq!(u["_source"], "example");
    assert_eq!(u["_scope"], AcmeData::TENANT);
    assert_eq!(n(&u["firstseen"]), n(&u["lastupdated"]));
    assert!(
        !u.contains_key("description"),
        "absent properties are not written as null"
    );

    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(w.0.join("report.json")).unwrap()).unwrap();
    let r = &report[0];
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["nodes"]["AcmeUser"]["created"], 30);
    assert_eq!(r["edges"]["MEMBER_OF"]["created"], memberships);
    assert!(n(&r["http"]["requests"]) >= 2);
    assert!(r["phases"]["total_ms"].is_u64());
}

#[test]
fn a_plugin_named_twice_syncs_once() {
    let w = Work::new("twice");
    let sim = AcmeSim::start(AcmeData::sample(5, 2));
    let plugin = harness::plugin_dir().join("example.wasm");
    let by_path = plugin.to_str().expect("utf-8 path");
    let ran = w.acme(
        &sim,
        &[
            "sync",
            "example",
            "example",
            by_path,
            "--store",
            &w.store(),
            "--report",
            "report.json",
        ],
    );
    ok(&ran);
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(w.0.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.as_array().map(Vec::len), Some(1), "{report}");
    let runs = w.acme(&sim, &["runs", "--store", &w.store()]);
    ok(&runs);
    assert_eq!(runs.stdout.matches("example").count(), 1, "{}", runs.stdout);
}

#[test]
fn a_second_sync_removes_adds_and_updates() {
    let w = Work::new("resync");
    let sim = AcmeSim::start(AcmeData::sample(20, 3));
    ok(&w.acme(&sim, &["sync", "example", "--store", &w.store()]));
    let before = w.graph();
    sim.update(|d| {
        d.users.retain(|u| u.id != "user-0001");
        d.users
            .iter_mut()
            .find(|u| u.id == "user-0002")
            .unwrap()
            .name = "Renamed".into();
        let mut new = d.users[0].clone();
        new.id = "user-new".into();
        new.email = "new@acme-corp.example".into();
        d.users.push(new);
    });
    let ran = w.acme(&sim, &["sync", "example", "--store", &w.store()]);
    ok(&ran);
    let after = w.graph();

    assert!(
        !after.has("AcmeUser", "user-0001"),
        "the removed user is gone"
    );
    assert!(
        after
            .edges
            .keys()
            .all(|(_, s, e)| s.1 != "user-0001" && e.1 != "user-0001"),
        "and its edges"
    );
    let new = after.node("AcmeUser", "user-new");
    assert_eq!(
        n(&new["firstseen"]),
        n(&new["lastupdated"]),
        "added: first seen in this run"
    );
    let (old, changed) = (
        before.node("AcmeUser", "user-0002"),
        after.node("AcmeUser", "user-0002"),
    );
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(
        changed["firstseen"], old["firstseen"],
        "changed: keeps its firstseen"
    );
    assert!(n(&changed["lastupdated"]) > n(&old["lastupdated"]));
    assert_eq!(after.count("AcmeUser"), 20);

    let runs = run(&mut w.cmd(&["runs", "--store", &w.store(), "--json"]));
    ok(&runs);
    let runs: Json = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(
        runs[0]["nodes"]["AcmeUser"]["deleted"], 1,
        "newest first: {}",
        runs[0]
    );
    assert_eq!(runs[0]["nodes"]["AcmeUser"]["created"], 1);
}

#[test]
fn a_sync_failing_midway_deletes_nothing() {
    let w = Work::new("fail");
    let sim = AcmeSim::start(AcmeData::sample(20, 3));
    ok(&w.acme(&sim, &["sync", "example", "--store", &w.store()]));
    let before = w.graph();
    sim.update(|d| d.users.retain(|u| u.id != "user-0001"));
    sim.fail_next(1, 500);
    let ran = w.acme(&sim, &["sync", "example", "--store", &w.store()]);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("failed") && ran.stdout.contains("500"),
        "{}",
        ran.stdout
    );
    let after = w.graph();
    assert_eq!(
        after.nodes.keys().collect::<Vec<_>>(),
        before.nodes.keys().collect::<Vec<_>>()
    );
    assert!(
        after.has("AcmeUser", "user-0001"),
        "nothing deleted after a failure"
    );
    let runs = run(&mut w.cmd(&["runs", "--store", &w.store()]));
    assert!(
        runs.stdout.lines().nth(1).unwrap().contains("failed"),
        "{}",
        runs.stdout
    );
}

#[test]
fn a_label_marked_incomplete_keeps_its_stale_nodes() {
    let w = Work::new("partial");
    let guest = harness::guest("misbehave");
    let guest = guest.to_str().unwrap();
    let config = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    ok(&run(&mut w.cmd(&[
        "sync",
        guest,
        "--config",
        &config,
        "--store",
        &w.store(),
    ])));
    let config = w.config("[plugins.misbehave]\nmode = \"partial\"\n");
    let ran = run(&mut w.cmd(&["sync", guest, "--config", &config, "--store", &w.store()]));
    assert_eq!(
        ran.code, 1,
        "partial exits 1: {}\n{}",
        ran.stdout, ran.stderr
    );
    assert!(
        ran.stdout.contains("partial") && ran.stdout.contains("zone fr-par-2 answered 403"),
        "{}",
        ran.stdout
    );
    let g = w.graph();
    for id in ["t1", "t2", "t3"] {
        assert!(g.has("MisbehaveThing", id), "{id} kept");
    }
    // A complete run afterwards does clean up.
    let config = w.config("[plugins.misbehave]\nmode = \"sync-error\"\n");
    assert_eq!(
        run(&mut w.cmd(&["sync", guest, "--config", &config, "--store", &w.store()])).code,
        2
    );
    assert_eq!(w.graph().count("MisbehaveThing"), 3);
}

#[test]
fn an_invalid_record_fails_the_sync_with_a_clear_error() {
    let w = Work::new("invalid");
    let guest = harness::guest("misbehave");
    let config = w.config("[plugins.misbehave]\nmode = \"invalid-property\"\n");
    let ran = run(&mut w.cmd(&[
        "sync",
        guest.to_str().unwrap(),
        "--config",
        &config,
        "--store",
        &w.store(),
    ]));
    assert_eq!(ran.code, 2);
    assert!(
        ran.stdout.contains(r#"plugin "misbehave" emitted an invalid node MisbehaveThing "x": property name "BadName" is not snake_case"#),
        "{}",
        ran.stdout
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

#[test]
fn one_plugin_failing_does_not_disturb_another() {
    let w = Work::new("concurrent");
    let sim = AcmeSim::start(AcmeData::sample(10, 2));
    let guest = harness::guest("misbehave");
    let config = w.config("[plugins.misbehave]\nmode = \"panic\"\n");
    let ran = w.acme(
        &sim,
        &[
            "sync",
            "example",
            guest.to_str().unwrap(),
            "--config",
            &config,
            "--store",
            &w.store(),
        ],
    );
    assert_eq!(ran.code, 2);
    let line = |p: &str| {
        ran.stdout
            .lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("example").contains("succeeded"), "{}", ran.stdout);
    assert!(line("misbehave ").contains("failed"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("deliberate panic in sync"),
        "{}",
        ran.stdout
    );
    assert_eq!(w.graph().count("AcmeUser"), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_sync_leaves_the_previous_graph() {
    let w = Work::new("kill");
    let echo = EchoSim::start().await;
    let guest = harness::guest("misbehave");
    let guest = guest.to_str().unwrap().to_string();
    let config = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    ok(&run(&mut w.cmd(&[
        "sync",
        &guest,
        "--config",
        &config,
        "--store",
        &w.store(),
    ])));
    let before = w.graph();

    let config = w.config(&format!(
        "[plugins.misbehave]\nmode = \"emit-then-hang\"\nendpoint = \"{0}\"\ntarget = \"{0}/slow\"\n",
        echo.url()
    ));
    let mut child = w
        .cmd(&["sync", &guest, "--config", &config, "--store", &w.store()])
        .spawn()
        .unwrap();
    // The guest asks for /slow only after emitting 50,000 nodes: writes are under way.
    let started = Instant::now();
    while echo.hits("/slow") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sync never reached /slow"
        );
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let after = w.graph();
    for key in before.nodes.keys() {
        assert!(after.nodes.contains_key(key), "{key:?} survived");
    }
    assert!(before.edge_ids().is_subset(&after.edge_ids()));
    let runs = run(&mut w.cmd(&["runs", "--store", &w.store()]));
    ok(&runs);
    // The next complete run recovers: the killed run's half-written nodes are stale now.
    let config = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    ok(&run(&mut w.cmd(&[
        "sync",
        &guest,
        "--config",
        &config,
        "--store",
        &w.store(),
    ])));
    let recovered = w.graph();
    assert_eq!(
        recovered.nodes.keys().collect::<Vec<_>>(),
        before.nodes.keys().collect::<Vec<_>>()
    );
}

#[test]
fn export_then_import_into_a_fresh_store_gives_the_same_graph() {
    let w = Work::new("roundtrip");
    let sim = AcmeSim::start(AcmeData::sample(15, 3));
    ok(&w.acme(&sim, &["sync", "example", "--store", &w.store()]));
    ok(&run(&mut w.cmd(&[
        "export",
        "--format",
        "jsonl",
        "--store",
        &w.store(),
        "-o",
        "a.jsonl",
    ])));
    let fresh = w.0.join("fresh.db").to_string_lossy().into_owned();
    let ran = run(&mut w.cmd(&["import", "a.jsonl", "--store", &fresh]));
    ok(&ran);
    assert!(ran.stdout.contains("imported 19 nodes"), "{}", ran.stdout);
    ok(&run(&mut w.cmd(&[
        "export", "--format", "jsonl", "--store", &fresh, "-o", "b.jsonl",
    ])));
    let (a, b) = (
        std::fs::read(w.0.join("a.jsonl")).unwrap(),
        std::fs::read(w.0.join("b.jsonl")).unwrap(),
    );
    assert!(!a.is_empty());
    assert!(a == b, "the round trip changed the export");

    for format in ["graphml", "cypher"] {
        let ran = run(&mut w.cmd(&["export", "--format", format, "--store", &w.store()]));
        ok(&ran);
        assert!(
            ran.stdout.contains("user-0004"),
            "{format} export holds the nodes"
        );
    }
}

#[test]
fn queries_answer_from_the_store() {
    let w = Work::new("query");
    let sim = AcmeSim::start(AcmeData::sample(12, 3));
    ok(&w.acme(&sim, &["sync", "example", "--store", &w.store()]));
    let q = |args: &[&str]| {
        let mut all = args.to_vec();
        let store = w.store();
        all.extend(["--store", &store]);
        let ran = run(&mut w.cmd(&all));
        ok(&ran);
        ran.stdout
    };
    let admins = q(&["query", "nodes", "AcmeUser", "--where", "admin=true"]);
    assert_eq!(
        admins.lines().count(),
        2,
        "user-0000 and user-0010: {admins}"
    );
    assert!(
        q(&[
            "query",
            "nodes",
            "UserAccount",
            "--where",
            "email=user5@acme-corp.example"
        ])
        .contains("user-0005")
    );
    let groups = q(&[
        "query",
        "neighbours",
        "AcmeUser",
        "user-0003",
        "--direction",
        "out",
        "--type",
        "MEMBER_OF",
    ]);
    assert!(
        groups.lines().all(|l| l.contains("-[:MEMBER_OF]->")) && groups.contains("group-000"),
        "{groups}"
    );
    let path = q(&[
        "query",
        "path",
        "AcmeUser",
        "user-0003",
        "AcmeGroup",
        "group-002",
    ]);
    assert!(path.contains("hops)"), "{path}");
}

#[test]
fn user_errors_say_what_is_wrong_and_what_to_do() {
    let w = Work::new("errors");
    let check = |ran: Ran, expected: &str| {
        assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
        assert!(
            ran.stderr.contains(expected),
            "expected {expected:?} in:\n{}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("panicked") && !ran.stderr.contains("backtrace"),
            "{}",
            ran.stderr
        );
    };
    check(
        run(&mut w.cmd(&["sync", "nope"])),
        "no plugin named \"nope\"",
    );
    check(
        run(w.cmd(&["sync", "example"]).env("ACME_TENANT", "t")),
        "set the environment variable ACME_API_TOKEN",
    );
    check(
        run(w.cmd(&["sync", "example"]).env("ACME_API_TOKEN", "x")),
        "set ACME_TENANT",
    );
    let config = w.config("[plugins.example]\ntenant = \"t\"\nregion = \"x\"\n");
    check(
        run(w
            .cmd(&["sync", "example", "--config", &config])
            .env("ACME_API_TOKEN", "x")),
        "unknown config key \"region\"",
    );
    let config = w.config("[plugins.example]\napi_token = \"in-the-file\"\n");
    check(
        run(&mut w.cmd(&["sync", "example", "--config", &config])),
        "is a credential and cannot be set in the config file",
    );
    std::fs::write(w.0.join("notes.txt"), "not a database").unwrap();
    check(
        run(&mut w.cmd(&["query", "nodes", "X", "--store", "notes.txt"])),
        "is it an infragraph store",
    );
    check(
        run(&mut w.cmd(&["runs", "--store", "missing.db"])),
        "does not exist",
    );
    assert!(
        !Path::new(&w.store()).exists(),
        "no command above created a store"
    );
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let w = Work::new("pipe");
    let mut child = w
        .cmd(&["plugins", "inspect", "example"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_dropped_in_plugin_is_listed_inspected_and_pinned() {
    let w = Work::new("dropin");
    let dir = w.0.join("data/infragraph/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(harness::guest("misbehave"), dir.join("misbehave.wasm")).unwrap();

    let list = run(&mut w.cmd(&["plugins", "list", "--json"]));
    ok(&list);
    let list: Json = serde_json::from_str(&list.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "misbehave")
        .expect("listed");
    assert_eq!(entry["source"], "user");
    assert_eq!(entry["contract"], "0.1.0");
    let sha = entry["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "example" && p["source"] == "built-in")
    );

    let inspect = run(&mut w.cmd(&["plugins", "inspect", "misbehave"]));
    ok(&inspect);
    for expected in [
        "MISBEHAVE_TOKEN",
        "api.granted.test",
        "{config:endpoint}",
        "MisbehaveThing",
        &sha,
    ] {
        assert!(
            inspect.stdout.contains(expected),
            "{expected} in:\n{}",
            inspect.stdout
        );
    }

    let pinned = w.config(&format!(
        "[plugins.misbehave]\nmode = \"ok\"\nsha256 = \"{sha}\"\n"
    ));
    ok(&run(&mut w.cmd(&[
        "sync",
        "misbehave",
        "--config",
        &pinned,
        "--store",
        &w.store(),
    ])));
    let wrong = w.config(&format!(
        "[plugins.misbehave]\nmode = \"ok\"\nsha256 = \"{}\"\n",
        "0".repeat(64)
    ));
    let ran = run(&mut w.cmd(&[
        "sync",
        "misbehave",
        "--config",
        &wrong,
        "--store",
        &w.store(),
    ]));
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("but the config pins") && ran.stderr.contains(&sha),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_documented_example_config_is_valid() {
    let w = Work::new("example-config");
    let config = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("the test runner sets CARGO_MANIFEST_DIR"),
    )
    .join("../infragraph.example.toml");
    let config = config.to_str().unwrap();
    ok(&run(&mut w.cmd(&["plugins", "list", "--config", config])));
    // The environment overrides the file's `tenant`.
    let sim = AcmeSim::start(AcmeData::sample(5, 1));
    let ran = w.acme(
        &sim,
        &["sync", "example", "--config", config, "--store", &w.store()],
    );
    ok(&ran);
    assert_eq!(w.graph().count("AcmeUser"), 5);
}
