//! Hostile plugins: each must fail with its own clear error while the host stays usable.

use std::time::{Duration, Instant};

use infragraph_core::Value;
use infragraph_runtime::{Emission, Failure};
use infragraph_tests::harness::Sync;
use infragraph_tests::sim::EchoSim;

use crate::{assert_still_usable, misbehave, runtime};

#[tokio::test]
async fn a_well_behaved_run_emits_scope_nodes_and_edges() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p).config("mode", "ok").run().await;
    assert_eq!(run.outcome.result.as_deref(), Ok("ok"));
    assert!(
        matches!(&run.emitted[0], Emission::Scope(s) if s.label == "MisbehaveThing" && s.value == "scope-1")
    );
    assert_eq!(run.outcome.counts.nodes, 3);
    assert_eq!(run.outcome.counts.edges, 2);
    assert_eq!(run.prop("t2", "count"), Some(Value::Int(2)));
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let started = Instant::now();
    let run = Sync::new(&rt, &p)
        .config("mode", "loop")
        .limits(|l| l.sync_time = Duration::from_millis(500))
        .run()
        .await;
    assert!(
        matches!(&run.outcome.result, Err(Failure::Limit { limit, .. }) if limit == "sync time"),
        "{:?}",
        run.outcome.result
    );
    assert!(run.failure().contains("sync time"), "{}", run.failure());
    // Not a timing assertion on speed: only that it did stop, rather than hang the test.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_still_usable(&rt, &p).await;
}

#[tokio::test]
async fn memory_growth_past_the_cap_is_stopped() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p)
        .config("mode", "memory")
        .limits(|l| l.memory_bytes = 64 << 20)
        .run()
        .await;
    match &run.outcome.result {
        Err(Failure::Limit { limit, value }) => {
            assert_eq!(limit, "memory");
            assert_eq!(value, "64 MiB");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert_still_usable(&rt, &p).await;
}

#[tokio::test]
async fn emitting_past_the_record_quota_is_stopped() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p)
        .config("mode", "emit-flood")
        .limits(|l| l.records = 5_000)
        .run()
        .await;
    assert!(
        matches!(&run.outcome.result, Err(Failure::Limit { limit, value }) if limit == "records" && value == "5000"),
        "{:?}",
        run.outcome.result
    );
    assert!(
        run.outcome.counts.nodes <= 5_000,
        "nothing past the quota reached the host"
    );
    assert_still_usable(&rt, &p).await;
}

/// Runs `fetch` mode against `target` and returns the plugin's error text.
async fn fetch_error(target: &str, endpoint: Option<&str>) -> String {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let mut sync = Sync::new(&rt, &p)
        .config("mode", "fetch")
        .config("target", target);
    if let Some(e) = endpoint {
        sync = sync.config("endpoint", e);
    }
    let run = sync.run().await;
    assert_eq!(
        run.outcome.fetch.denials, 1,
        "one denial counted: {:?}",
        run.outcome.fetch
    );
    match &run.outcome.result {
        Err(Failure::Plugin { error, message }) if error == "fetch" => message.clone(),
        other => panic!("expected the plugin's fetch error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_not_granted_is_denied() {
    let e = fetch_error("https://evil.example.com/steal", None).await;
    assert!(e.contains("denied"), "{e}");
    assert!(
        e.contains("https://evil.example.com/steal"),
        "names the URL: {e}"
    );
}

#[tokio::test]
async fn the_metadata_address_is_denied_even_when_the_manifest_lists_it() {
    let e = fetch_error("https://169.254.169.254/latest/meta-data/", None).await;
    assert!(e.contains("denied") && e.contains("169.254.169.254"), "{e}");
}

#[tokio::test]
async fn a_private_address_is_denied_even_when_the_manifest_lists_it() {
    let e = fetch_error("https://10.1.2.3/", None).await;
    assert!(e.contains("denied") && e.contains("10.1.2.3"), "{e}");
}

#[tokio::test]
async fn a_manifest_host_resolving_to_loopback_is_denied() {
    let sim = EchoSim::start().await;
    let port = sim
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let e = fetch_error(&format!("https://localhost:{port}/echo"), None).await;
    assert!(e.contains("denied"), "{e}");
    assert_eq!(
        sim.total_requests(),
        0,
        "nothing reached the loopback server"
    );
}

#[tokio::test]
async fn a_granted_host_redirecting_elsewhere_is_denied_at_the_hop() {
    let sim = EchoSim::start().await;
    let url = sim.url();
    let target = format!("{url}/redirect?to=https://evil.example.com/next");
    let e = fetch_error(&target, Some(&url)).await;
    assert!(
        e.contains("denied") && e.contains("evil.example.com"),
        "{e}"
    );
    // Another port on loopback is not the configured endpoint either.
    let target = format!("{url}/redirect?to=http://127.0.0.1:9/");
    let e = fetch_error(&target, Some(&url)).await;
    assert!(e.contains("denied") && e.contains("127.0.0.1:9"), "{e}");
}

#[tokio::test]
async fn files_environment_and_sockets_give_nothing() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("INFRAGRAPH_TEST_LEAK", "host-environment-value") };
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p).config("mode", "fs-env").run().await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "{:?}",
        run.outcome.result
    );
    let Some(Value::Text(probe)) = run.prop("probe", "name") else {
        panic!("no probe node: {:?}", run.node_ids())
    };
    for expected in ["file:err", "dir:err", "env:0", "home:err", "tcp:err"] {
        assert!(probe.contains(expected), "{expected} in {probe}");
    }
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p).config("mode", "panic").run().await;
    assert!(
        matches!(run.outcome.result, Err(Failure::Trap(_))),
        "{:?}",
        run.outcome.result
    );
    assert!(
        run.failure().contains("deliberate panic in sync"),
        "{}",
        run.failure()
    );
    assert_still_usable(&rt, &p).await;
}

#[tokio::test]
async fn invalid_records_are_rejected_naming_the_record() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    for (mode, expected) in [
        (
            "invalid-empty-id",
            r#"invalid node MisbehaveThing "": its id is empty"#,
        ),
        (
            "invalid-label",
            r#"label "NotDeclared" is not in the plugin's schema"#,
        ),
        (
            "invalid-property",
            r#"property name "BadName" is not snake_case"#,
        ),
    ] {
        let run = Sync::new(&rt, &p).config("mode", mode).run().await;
        assert!(
            matches!(run.outcome.result, Err(Failure::InvalidRecord(_))),
            "{mode}: {:?}",
            run.outcome.result
        );
        let text = run.failure();
        assert!(
            text.contains(r#"plugin "misbehave""#) && text.contains(expected),
            "{mode}: {text}"
        );
    }
    assert_still_usable(&rt, &p).await;
}

#[tokio::test]
async fn a_malformed_batch_is_refused_naming_the_fault() {
    // Past the SDK: offsets that run beyond the batch's string data.
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p)
        .config("mode", "malformed-batch")
        .run()
        .await;
    assert!(
        matches!(run.outcome.result, Err(Failure::Contract(_))),
        "{:?}",
        run.outcome.result
    );
    let text = run.failure();
    assert!(
        text.contains("emit-nodes: malformed batch: ids: string 1 spans bytes 1..9 of 2"),
        "{text}"
    );
    assert!(
        run.node_ids().is_empty(),
        "nothing of a malformed batch is passed on"
    );
    assert_still_usable(&rt, &p).await;
}

#[tokio::test]
async fn a_plugin_error_is_typed() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p).config("mode", "sync-error").run().await;
    match &run.outcome.result {
        Err(Failure::Plugin { error, message }) => {
            assert_eq!(error, "provider");
            assert_eq!(message, "provider said no");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn log_floods_are_capped() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p)
        .config("mode", "log-flood")
        .limits(|l| l.log_lines = 100)
        .run()
        .await;
    assert_eq!(run.outcome.result.as_deref(), Ok("ok"));
    assert_eq!(run.outcome.counts.log_lines_dropped, 1_000_000 - 100);
}

#[tokio::test]
async fn fetch_many_runs_concurrently_and_keeps_order() {
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch-many")
        .config("endpoint", &url)
        .config("target", &format!("{url}/status/204"))
        .run()
        .await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "{:?}",
        run.outcome.result
    );
    assert_eq!(run.node_ids().len(), 20);
    assert_eq!(run.outcome.fetch.requests, 20);
    assert_eq!(sim.total_requests(), 20);
}

#[tokio::test]
async fn the_fetch_quota_stops_the_plugin() {
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch-many")
        .config("endpoint", &url)
        .config("target", &format!("{url}/status/204"))
        .limits(|l| l.fetches = 10)
        .run()
        .await;
    assert!(
        matches!(&run.outcome.result, Err(Failure::Limit { limit, .. }) if limit == "fetches"),
        "{:?}",
        run.outcome.result
    );
    assert_eq!(
        sim.total_requests(),
        0,
        "the over-quota batch was refused whole"
    );
}

#[tokio::test]
async fn state_is_kept_per_plugin_and_scope_only_when_committed() {
    use infragraph_core::StateStore;
    use infragraph_tests::harness::MemoryState;
    use std::sync::Arc;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let store = Arc::new(MemoryState::default());
    for expected in [1, 2] {
        let run = Sync::new(&rt, &p)
            .config("mode", "state")
            .state(store.clone())
            .run()
            .await;
        assert_eq!(run.prop("state", "count"), Some(Value::Int(expected)));
        for (k, v) in &run.outcome.state_writes {
            store.set("misbehave", "scope-1", k, v.as_deref());
        }
    }
    // A run whose writes are not committed leaves the stored value alone.
    let run = Sync::new(&rt, &p)
        .config("mode", "state")
        .state(store.clone())
        .run()
        .await;
    assert_eq!(run.prop("state", "count"), Some(Value::Int(3)));
    assert_eq!(
        store
            .get("misbehave", "scope-1", "counter")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
}
