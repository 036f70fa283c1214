//! Connections (issue 18): many accounts of one plugin in one command, each its own scope,
//! run, report and failure; `--shard` splitting them between processes; `connections
//! list` and `connections check`. Through the binary, against simulators.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::sim::{AcmeData, AcmeSim, ScalewayData, ScalewaySim};
use serde_json::Value as Json;

/// An Acme tenant of `users` users on its own simulator.
fn acme(tenant: &str, users: usize) -> AcmeSim {
    let mut data = AcmeData::sample(users, 2);
    data.tenant = tenant.into();
    // Ids unique across tenants, as a real directory's are.
    for u in &mut data.users {
        u.id = format!("{tenant}-{}", u.id);
        for g in &mut u.group_ids {
            *g = format!("{tenant}-{g}");
        }
    }
    for g in &mut data.groups {
        g.id = format!("{tenant}-{}", g.id);
    }
    AcmeSim::start(data)
}

/// `[connections.<name>]` of the example plugin against `sim`, its token from `$var`.
fn acme_connection(name: &str, sim: &AcmeSim, var: &str) -> String {
    let tenant = sim_tenant(sim);
    format!(
        "[connections.{name}]\nplugin = \"example\"\napi_url = \"{}\"\ntenant = \"{tenant}\"\n\
         [connections.{name}.secrets]\napi_token = {{ env = \"{var}\" }}\n",
        sim.url()
    )
}

fn sim_tenant(sim: &AcmeSim) -> String {
    // The tenant is the one the simulator serves: its data says.
    let mut tenant = String::new();
    sim.update(|d| tenant = d.tenant.clone());
    tenant
}

/// `infragraph <args>` with `env` set, and the variables the example plugin's manifest
/// names set to a tenant no connection uses: a named connection must not read them.
fn ig(w: &Work, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = w.cmd(args);
    cmd.env("ACME_API_URL", "http://127.0.0.1:9")
        .env("ACME_TENANT", "not-a-connection")
        .env("ACME_API_TOKEN", "not-a-connection-token");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

/// The run reports in the history, newest first.
fn reports(w: &Work, store: &str) -> Vec<Json> {
    let ran = run(&mut w.cmd(&["runs", "--json", "--limit", "100", "--store", store]));
    ok(&ran);
    serde_json::from_str::<Vec<Json>>(&ran.stdout).expect("runs --json")
}

fn connection_of(report: &Json) -> String {
    report["connection"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn scope_of(report: &Json) -> String {
    report["scope"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `connections list --format csv` of `store`, with `w`'s config file `config` and `env`.
fn list_csv(w: &Work, config: &str, store: &str, env: &[(&str, &str)]) -> String {
    let ran = ig(
        w,
        &[
            "--config",
            config,
            "connections",
            "list",
            "--format",
            "csv",
            "--store",
            store,
        ],
        env,
    );
    ok(&ran);
    ran.stdout
}

/// Tenants `acme-a` and `acme-b` of `a` and `b` users on simulators of their own, as
/// connections `example/team-a` (token from `$TOKEN_A`) and `example/team-b`
/// (`$TOKEN_B`) in `w`'s config file, whose path comes last.
fn two_teams(w: &Work, a: usize, b: usize) -> (AcmeSim, AcmeSim, String) {
    let (sim_a, sim_b) = (acme("acme-a", a), acme("acme-b", b));
    let config = w.config(&format!(
        "{}{}",
        acme_connection("team-a", &sim_a, "TOKEN_A"),
        acme_connection("team-b", &sim_b, "TOKEN_B")
    ));
    (sim_a, sim_b, config)
}

#[test]
fn two_connections_of_one_plugin_land_in_two_scopes() {
    let w = Work::new("connections-two");
    let (_a, _b, config) = two_teams(&w, 5, 7);
    let store = w.store();
    let tokens = [("TOKEN_A", AcmeSim::TOKEN), ("TOKEN_B", AcmeSim::TOKEN)];
    // No argument: every configured connection.
    let ran = ig(
        &w,
        &["--config", &config, "sync", "--store", &store],
        &tokens,
    );
    ok(&ran);
    // The command closed its store on the way out, whatever its runs' tasks: the
    // write-ahead log was folded into the file and removed.
    for suffix in ["-wal", "-shm"] {
        let beside = format!("{store}{suffix}");
        assert!(!std::path::Path::new(&beside).exists(), "{beside} was left");
    }
    assert!(
        ran.stdout.contains("example/team-a") && ran.stdout.contains("example/team-b"),
        "a row per connection:\n{}",
        ran.stdout
    );
    let runs = reports(&w, &store);
    let by_connection: BTreeSet<(String, String)> = runs
        .iter()
        .map(|r| (connection_of(r), scope_of(r)))
        .collect();
    assert_eq!(
        by_connection,
        BTreeSet::from([
            ("example/team-a".into(), "acme-a".into()),
            ("example/team-b".into(), "acme-b".into()),
        ]),
        "each connection is its own scope; the manifest's variables were not read"
    );
    let graph = w.graph_of(&store);
    assert_eq!(graph.count("AcmeUser"), 12, "both tenants' users");
    assert_eq!(graph.count("AcmeTenant"), 2);
    // One connection, by address or by bare name; by plugin, both.
    for (args, expected) in [
        (vec!["sync", "example/team-a"], 1),
        (vec!["sync", "team-b"], 1),
        (vec!["sync", "example"], 2),
    ] {
        let before = reports(&w, &store).len();
        let mut all = vec!["--config", config.as_str()];
        all.extend(&args);
        all.extend(["--store", store.as_str()]);
        ok(&ig(&w, &all, &tokens));
        assert_eq!(reports(&w, &store).len(), before + expected, "{args:?}");
    }
    // A misspelt connection is a usage error naming the likely one; nothing runs.
    let typo = ig(
        &w,
        &[
            "--config",
            &config,
            "sync",
            "example/team-c",
            "--store",
            &store,
        ],
        &tokens,
    );
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("did you mean example/team-a?")
            || typo.stderr.contains("did you mean example/team-b?"),
        "{}",
        typo.stderr
    );
}

#[test]
fn one_connection_failing_leaves_the_other_and_its_graph() {
    let w = Work::new("connections-failing");
    let (a, _b, config) = two_teams(&w, 4, 6);
    let store = w.store();
    let good = [("TOKEN_A", AcmeSim::TOKEN), ("TOKEN_B", AcmeSim::TOKEN)];
    ok(&ig(
        &w,
        &["--config", &config, "sync", "--store", &store],
        &good,
    ));
    let before = w.graph_of(&store);
    // team-b's token is now refused, and team-a's tenant has changed.
    a.update(|d| d.users.truncate(2));
    let bad = [("TOKEN_A", AcmeSim::TOKEN), ("TOKEN_B", "revoked-token")];
    let ran = ig(&w, &["--config", &config, "sync", "--store", &store], &bad);
    assert_eq!(
        ran.code, 2,
        "a failed connection fails the command:\n{}",
        ran.stdout
    );
    let latest: Vec<Json> = reports(&w, &store).into_iter().take(2).collect();
    let status = |c: &str| {
        latest
            .iter()
            .find(|r| connection_of(r) == c)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(status("example/team-a").as_deref(), Some("succeeded"));
    assert_eq!(status("example/team-b").as_deref(), Some("failed"));
    assert!(
        ran.stdout.contains("example/team-b: error:"),
        "the failure is named by connection:\n{}",
        ran.stdout
    );
    let after = w.graph_of(&store);
    assert_eq!(
        after.count("AcmeUser"),
        2 + 6,
        "team-a updated, team-b's graph kept"
    );
    assert_eq!(
        before.count("AcmeUser"),
        4 + 6,
        "both were there before the failed run"
    );
    // `connections check` says which one is wrong, and writes nothing.
    let check = ig(
        &w,
        &["--config", &config, "connections", "check", "--json"],
        &bad,
    );
    assert_eq!(check.code, 2, "{}", check.stderr);
    let checked: Vec<Json> = serde_json::from_str(&check.stdout).expect("check --json");
    let verdict = |c: &str| {
        checked
            .iter()
            .find(|r| r["connection"] == c)
            .map(|r| (r["status"].clone(), r["http_status"].clone()))
    };
    assert_eq!(
        verdict("example/team-a"),
        Some((Json::from("verified"), Json::from(200)))
    );
    assert_eq!(
        verdict("example/team-b"),
        Some((Json::from("refused"), Json::from(401)))
    );
    assert_eq!(
        w.graph_of(&store).count("AcmeUser"),
        8,
        "a check writes nothing"
    );
    // `connections list`: each with its scope and its latest run's status.
    let list = list_csv(&w, &config, &store, &bad);
    assert!(
        list.contains("example/team-a,example,acme-a,")
            && list.contains(",succeeded")
            && list.contains("example/team-b,example,acme-b,")
            && list.contains(",failed"),
        "{}",
        list
    );
}

/// A connection refused before its plugin runs (here, its token's variable unset) is in
/// the run history like any failed run: `runs` has its report, and `connections list`
/// says when it failed rather than `never`, keeping the scope its last run declared. So
/// it is when every connection of the command is refused, into a store not yet made.
#[test]
fn a_connection_refused_before_it_runs_is_in_the_history() {
    let w = Work::new("connections-refused");
    let (_a, _b, config) = two_teams(&w, 3, 5);
    let store = w.store();
    let both = [("TOKEN_A", AcmeSim::TOKEN), ("TOKEN_B", AcmeSim::TOKEN)];
    ok(&ig(
        &w,
        &["--config", &config, "sync", "--store", &store],
        &both,
    ));
    let only_a = [("TOKEN_A", AcmeSim::TOKEN)];
    let ran = ig(
        &w,
        &["--config", &config, "sync", "--store", &store],
        &only_a,
    );
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let history = reports(&w, &store);
    let latest_b = history
        .iter()
        .find(|r| connection_of(r) == "example/team-b")
        .expect("team-b in the history");
    assert_eq!(latest_b["status"], "failed", "{latest_b:#}");
    let error = latest_b["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.starts_with("credentials:") && error.contains("TOKEN_B"),
        "the refusal names its phase and the variable: {latest_b:#}"
    );
    assert_eq!(
        history.len(),
        4,
        "two runs of each connection: {history:#?}"
    );
    let list = |store: &str| {
        let listed = list_csv(&w, &config, store, &only_a);
        listed
            .lines()
            .find(|l| l.starts_with("example/team-b,"))
            .unwrap_or_else(|| panic!("team-b listed:\n{listed}"))
            .to_string()
    };
    let row = list(&store);
    let last_run = |row: &str| row.split(',').nth(3).map(str::to_owned);
    assert!(
        row.starts_with("example/team-b,example,acme-b,")
            && row.ends_with(",failed")
            && last_run(&row).is_some_and(|t| t.ends_with('Z')),
        "failed, when, with its last scope: {row}"
    );

    // Every connection refused, into a new store: still recorded.
    let fresh = w.0.join("fresh.db").to_string_lossy().into_owned();
    let ran = ig(
        &w,
        &[
            "--config",
            &config,
            "sync",
            "example/team-b",
            "--store",
            &fresh,
        ],
        &only_a,
    );
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let history = reports(&w, &fresh);
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(connection_of(&history[0]), "example/team-b");
    assert_eq!(history[0]["status"], "failed");
    let row = list(&fresh);
    assert!(
        row.starts_with("example/team-b,example,,") && row.ends_with(",failed"),
        "failed, no scope yet: {row}"
    );
}

/// A connection naming a plugin that is not installed (a typo in one team's section of a
/// shared config) fails alone, as its other config errors do: the others sync, the
/// command says which one and what is installed, and the history keeps the failure.
/// On the command line, the same name stays a usage error (`isolation.rs`).
#[test]
fn a_connection_naming_a_plugin_not_installed_fails_alone() {
    let w = Work::new("connections-no-plugin");
    let sim = acme("acme-a", 3);
    let config = w.config(&format!(
        "{}[connections.typo]\nplugin = \"exampel\"\n",
        acme_connection("team-a", &sim, "TOKEN_A")
    ));
    let store = w.store();
    let env = [("TOKEN_A", AcmeSim::TOKEN)];
    let ran = ig(&w, &["--config", &config, "sync", "--store", &store], &env);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("exampel/typo: error: config: the config file names plugin \"exampel\": no plugin named \"exampel\"")
            && ran.stdout.contains("did you mean"),
        "the connection, the plugin and a suggestion:\n{}",
        ran.stdout
    );
    assert_eq!(w.graph_of(&store).count("AcmeUser"), 3, "team-a synced");
    let list = list_csv(&w, &config, &store, &env);
    assert!(
        list.lines()
            .any(|l| l.starts_with("exampel/typo,exampel,,") && l.ends_with(",failed")),
        "{}",
        list
    );
    let check = ig(
        &w,
        &["--config", &config, "connections", "check", "--json"],
        &env,
    );
    assert_eq!(check.code, 2, "{}", check.stderr);
    let checked: Vec<Json> = serde_json::from_str(&check.stdout).expect("check --json");
    let status = |c: &str| {
        checked
            .iter()
            .find(|r| r["connection"] == c)
            .map(|r| r["status"].clone())
    };
    assert_eq!(
        status("example/team-a"),
        Some(Json::from("verified")),
        "{checked:#?}"
    );
    assert!(
        status("exampel/typo").is_some_and(|s| s != "verified"),
        "{checked:#?}"
    );
}

#[test]
fn a_rate_limited_connection_does_not_slow_another() {
    let w = Work::new("connections-throttled");
    let org = |id: &str| {
        let mut data = ScalewayData::empty(id);
        let project = data.add_project("default");
        data.add_instances(&project, "fr-par-1", 3);
        data
    };
    let slow = ScalewaySim::start(org("0000a0a0-0000-4000-8000-00000000000a"));
    let fast = ScalewaySim::start(org("0000a0a0-0000-4000-8000-00000000000b"));
    // The slow account's first requests are refused for two seconds each, as Scaleway
    // does past an account's rate limit.
    slow.throttle_next(3, 2);
    let mut config = String::new();
    for (name, sim) in [("slow", &slow), ("fast", &fast)] {
        let _ = write!(
            config,
            "[connections.{name}]\nplugin = \"scaleway\"\napi_url = \"{}\"\n\
             organization_id = \"{}\"\nzones = [\"fr-par-1\"]\n\
             [connections.{name}.secrets]\nsecret_key = {{ env = \"SCW_KEY\" }}\n",
            sim.url(),
            sim.organization_id()
        );
    }
    let config = w.config(&config);
    let store = w.store();
    let ran = ig(
        &w,
        &["--config", &config, "sync", "scaleway", "--store", &store],
        &[("SCW_KEY", ScalewaySim::SECRET_KEY)],
    );
    ok(&ran);
    let runs = reports(&w, &store);
    let of = |c: &str| {
        runs.iter()
            .find(|r| connection_of(r) == c)
            .unwrap_or_else(|| panic!("no run of {c}"))
            .clone()
    };
    let (slow_run, fast_run) = (of("scaleway/slow"), of("scaleway/fast"));
    assert!(
        slow_run["http"]["retries"].as_u64().unwrap_or(0) >= 3,
        "the slow account waited: {}",
        slow_run["http"]
    );
    assert_eq!(
        fast_run["http"]["retries"].as_u64(),
        Some(0),
        "the other account's requests never waited for the slow one's limit"
    );
    // RFC 3339 times of one clock compare as text.
    assert!(
        fast_run["finished_at"].as_str() < slow_run["finished_at"].as_str(),
        "the fast account finished first: {} vs {}",
        fast_run["finished_at"],
        slow_run["finished_at"]
    );
    assert_eq!(fast_run["status"], "succeeded");
    assert_eq!(slow_run["status"], "succeeded");
}

/// Connections `example/team-0`, `example/team-1`, ... in `w`'s config file (returned
/// last, their token from `$TOKEN`), until each of two shards holds two or more; each
/// against a simulator of its own, whose tenant has 3, 4, ... users.
pub(crate) fn teams_in_two_shards(w: &Work) -> (Vec<String>, Vec<AcmeSim>, String) {
    let names = names_in_two_shards();
    let sims: Vec<AcmeSim> = names
        .iter()
        .enumerate()
        .map(|(i, n)| acme(&format!("acme-{n}"), 3 + i))
        .collect();
    let config = w.config(
        &names
            .iter()
            .zip(&sims)
            .map(|(n, s)| acme_connection(n, s, "TOKEN"))
            .collect::<String>(),
    );
    (names, sims, config)
}

/// Connection names `team-0`, `team-1`, ... until each of two shards holds two or more.
fn names_in_two_shards() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for i in 0.. {
        names.push(format!("team-{i}"));
        let ones = names
            .iter()
            .filter(|n| infragraph_app::shard_of(n, 2) == 1)
            .count();
        if ones >= 2 && names.len() - ones >= 2 {
            break;
        }
        assert!(i < 64, "the split by name is not degenerate");
    }
    names
}

#[test]
fn shards_split_the_connections_between_processes_with_none_lost_or_twice() {
    let w = Work::new("connections-shards");
    let (names, _sims, config) = teams_in_two_shards(&w);
    let store = w.store();
    let spawn = |shard: &str| {
        let mut cmd = w.cmd(&[
            "--config", &config, "sync", "--shard", shard, "--store", &store,
        ]);
        cmd.env("TOKEN", AcmeSim::TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("infragraph runs")
    };
    // Two processes at once, into one store, as two machines into one server.
    let (one, two) = (spawn("1/2"), spawn("2/2"));
    for child in [one, two] {
        let ran: Ran = child.wait_with_output().expect("it ends").into();
        ok(&ran);
    }
    let runs = reports(&w, &store);
    let mut synced: Vec<String> = runs.iter().map(connection_of).collect();
    synced.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("example/{n}")).collect();
    expected.sort();
    assert_eq!(synced, expected, "every connection once, none twice");
    let graph = w.graph_of(&store);
    let users: usize = (0..names.len()).map(|i| 3 + i).sum();
    assert_eq!(graph.count("AcmeUser"), users);
    // The split is by name: the same on every machine, whatever the order in the file.
    let shard_one: BTreeSet<&String> = names
        .iter()
        .filter(|n| infragraph_app::shard_of(n, 2) == 1)
        .collect();
    let ran = ig(
        &w,
        &[
            "--config", &config, "sync", "--shard", "1/2", "--store", &store, "--json",
        ],
        &[("TOKEN", AcmeSim::TOKEN)],
    );
    ok(&ran);
    let again: BTreeSet<String> = serde_json::from_str::<Vec<Json>>(&ran.stdout)
        .expect("sync --json")
        .iter()
        .map(connection_of)
        .collect();
    assert_eq!(
        again,
        shard_one.iter().map(|n| format!("example/{n}")).collect()
    );
    let bad = ig(&w, &["sync", "--shard", "3/2"], &[]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("1 <= K <= N"), "{}", bad.stderr);
}

/// Two connections naming one account: the second to declare the scope is told so, and
/// stops there, before its first request, rather than listing the whole account again
/// for nothing (spending the account's rate limit).
#[test]
fn two_connections_naming_one_account_are_told_so() {
    let w = Work::new("connections-same-account");
    let mut data = ScalewayData::empty("0000a0a0-0000-4000-8000-0000000000cc");
    let project = data.add_project("default");
    // Pages of servers enough for the listing to take rounds after the first.
    data.add_instances(&project, "fr-par-1", 250);
    let sim = ScalewaySim::start(data);
    // Slow enough that the second starts while the first holds the scope.
    sim.set_latency(std::time::Duration::from_millis(1500));
    let mut config = String::new();
    for name in ["one", "two"] {
        let _ = write!(
            config,
            "[connections.{name}]\nplugin = \"scaleway\"\napi_url = \"{}\"\n\
             organization_id = \"{}\"\nzones = [\"fr-par-1\"]\n\
             [connections.{name}.secrets]\nsecret_key = {{ env = \"SCW_KEY\" }}\n",
            sim.url(),
            sim.organization_id()
        );
    }
    let config = w.config(&config);
    let ran = ig(
        &w,
        &[
            "--config",
            &config,
            "sync",
            "--store",
            &w.store(),
            "--report",
            "report.json",
        ],
        &[("SCW_KEY", ScalewaySim::SECRET_KEY)],
    );
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("is being synced by connection scaleway/one of this command")
            || ran
                .stdout
                .contains("is being synced by connection scaleway/two of this command"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("both name the same account"),
        "{}",
        ran.stdout
    );
    let reports: Vec<Json> = serde_json::from_str(
        &std::fs::read_to_string(w.0.join("report.json")).expect("report.json"),
    )
    .expect("JSON reports");
    let won = reports
        .iter()
        .find(|r| r["status"] == "succeeded")
        .unwrap_or_else(|| panic!("one run succeeded: {reports:#?}"));
    let lost = reports
        .iter()
        .find(|r| r["status"] != "succeeded")
        .unwrap_or_else(|| panic!("one run was refused: {reports:#?}"));
    let requests = |r: &Json| r["http"]["requests"].as_u64().unwrap_or(0);
    // Before, it sent its first round (16 requests) before the lease was refused, and
    // before that as many as the run that synced.
    assert_eq!(requests(lost), 0, "{reports:#?}");
    assert_eq!(
        sim.total_requests(),
        requests(won),
        "the refused run sent nothing: {reports:#?}"
    );
}
