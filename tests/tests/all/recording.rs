//! `sync --record DIR` and `sync --replay DIR` end to end: a run recorded against a
//! simulator is replayed with the simulator gone and no credentials set, into the same
//! graph; the recording holds no credential; a replay that meets a request it has no
//! answer for fails, naming it.

use std::path::Path;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::sim::{ScalewayData, ScalewaySim, SpaceliftData, SpaceliftSim};

/// `infragraph sync scaleway` with the simulator's settings; the secret key only when
/// `key` is given.
fn scaleway(w: &Work, store: &str, url: &str, org: &str, key: Option<&str>, extra: &[&str]) -> Ran {
    let mut args = vec![
        "sync",
        "scaleway",
        "--store",
        store,
        "--report",
        "report.json",
    ];
    args.extend(extra);
    let mut cmd = w.cmd(&args);
    cmd.env("SCW_API_URL", url)
        .env("SCW_DEFAULT_ORGANIZATION_ID", org)
        .env_remove("SCW_SECRET_KEY");
    if let Some(key) = key {
        cmd.env("SCW_SECRET_KEY", key);
    }
    run(&mut cmd)
}

/// Every file of a recording, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_recorded_scaleway_sync_replays_into_the_same_graph_with_no_network_and_no_key() {
    let w = Work::new("record-scaleway");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let (url, org) = (sim.url(), sim.organization_id());
    let live = w.0.join("live.db").display().to_string();
    let ran = scaleway(
        &w,
        &live,
        &url,
        &org,
        Some(ScalewaySim::SECRET_KEY),
        &["--record", "rec"],
    );
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let requests = sim.total_requests();
    drop(sim);

    let rec = files(&w.0.join("rec/scaleway"));
    let exchanges = rec.iter().filter(|(n, _)| n.ends_with(".body")).count();
    assert_eq!(
        exchanges as u64, requests,
        "one exchange per request the simulator saw"
    );
    assert!(rec.iter().any(|(n, _)| n == "recording.json"));
    for (name, bytes) in &rec {
        assert!(
            !holds(bytes, ScalewaySim::SECRET_KEY),
            "{name} holds the secret key"
        );
    }

    let replayed = w.0.join("replayed.db").display().to_string();
    let ran = scaleway(&w, &replayed, &url, &org, None, &["--replay", "rec"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let (a, b) = (
        w.graph_of(&live).normalized(),
        w.graph_of(&replayed).normalized(),
    );
    assert!(
        a.nodes.len() > 10,
        "the sample is a real estate: {}",
        a.lines()
    );
    assert_eq!(a.lines(), b.lines());
    assert_eq!(
        w.report()["http"]["requests"],
        0,
        "nothing went on the wire"
    );
}

#[test]
fn a_replay_with_other_settings_fails_naming_the_first_request_it_cannot_answer() {
    let w = Work::new("replay-miss");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let (url, org) = (sim.url(), sim.organization_id());
    let store = w.store();
    let ran = scaleway(
        &w,
        &store,
        &url,
        &org,
        Some(ScalewaySim::SECRET_KEY),
        &["--record", "rec"],
    );
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    drop(sim);
    let other = "11111111-2222-4333-8444-555555555555";
    let ran = scaleway(&w, &store, &url, other, None, &["--replay", "rec"]);
    assert_eq!(
        ran.code, 2,
        "a replay that missed is a failed run: {}\n{}",
        ran.stdout, ran.stderr
    );
    let report = w.report();
    let error = report["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.contains("holds no answer for GET ") && error.contains(other),
        "the error names the request: {report:#}"
    );
    assert!(
        ran.stdout.contains("holds no answer for GET"),
        "{}",
        ran.stdout
    );

    let ran = scaleway(&w, &store, &url, &org, None, &["--replay", "nowhere"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stdout.contains("holds no recording") && ran.stdout.contains("--record"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_token_the_plugin_was_handed_is_not_in_the_recording_and_the_replay_still_works() {
    let w = Work::new("record-spacelift");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let sync = |store: &str, extra: &[&str], key: bool| {
        let mut args = vec!["sync", "spacelift", "--store", store];
        args.extend(extra);
        let mut cmd = w.cmd(&args);
        cmd.env("SPACELIFT_API_KEY_ENDPOINT", sim.endpoint())
            .env("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID)
            .env("SPACELIFT_ACCOUNT_ID", SpaceliftData::SAMPLE_ACCOUNT)
            .env_remove("SPACELIFT_API_KEY_SECRET");
        if key {
            cmd.env("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET);
        }
        run(&mut cmd)
    };
    let live = w.0.join("live.db").display().to_string();
    let ran = sync(&live, &["--record", "rec"], true);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(sim.tokens_issued() >= 1, "the plugin logged in");
    let rec = files(&w.0.join("rec/spacelift"));
    assert!(rec.len() > 3);
    for (name, bytes) in &rec {
        assert!(
            !holds(bytes, SpaceliftSim::KEY_SECRET),
            "{name} holds the API key secret"
        );
        // The simulator's tokens all start so.
        assert!(
            !holds(bytes, "eyJsim."),
            "{name} holds the JWT the plugin was handed"
        );
    }
    let before = sim.total_requests();
    let replayed = w.0.join("replayed.db").display().to_string();
    let ran = sync(&replayed, &["--replay", "rec"], false);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.total_requests(), before, "the replay sent nothing");
    assert_eq!(
        w.graph_of(&live).normalized().lines(),
        w.graph_of(&replayed).normalized().lines()
    );
}

#[test]
fn record_and_replay_refuse_a_used_folder_and_each_other() {
    let w = Work::new("record-usage");
    std::fs::create_dir_all(w.0.join("rec/scaleway")).unwrap();
    std::fs::write(w.0.join("rec/scaleway/notes.txt"), "mine").unwrap();
    let store = w.store();
    let ran = scaleway(
        &w,
        &store,
        "http://127.0.0.1:9",
        "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
        Some(ScalewaySim::SECRET_KEY),
        &["--record", "rec"],
    );
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("already holds files"), "{}", ran.stdout);
    assert_eq!(
        std::fs::read_to_string(w.0.join("rec/scaleway/notes.txt")).unwrap(),
        "mine",
        "nothing of the user's is touched"
    );
    let ran = run(&mut w.cmd(&["sync", "scaleway", "--record", "a", "--replay", "b"]));
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("cannot be used with"), "{}", ran.stderr);
}
