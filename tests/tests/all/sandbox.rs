//! Hostile plugins: each must fail with its own clear error while the host stays usable.

use std::time::{Duration, Instant};

use infragraph_core::Value;
use infragraph_fetch::CUT_MARKER;
use infragraph_runtime::{Emission, Failure, MAX_GUEST_TEXT};
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

/// Issue 20, point 6: an emitted batch was decoded, row by row, before the record quota
/// was checked. A batch claiming a million rows (malformed besides) is stopped at the
/// quota, from its raw row count, before decoding would name the malformation.
#[tokio::test]
async fn the_record_quota_is_checked_before_a_batch_is_decoded() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p)
        .config("mode", "malformed-flood")
        .limits(|l| l.records = 10)
        .run()
        .await;
    assert!(
        matches!(&run.outcome.result, Err(Failure::Limit { limit, value }) if limit == "records" && value == "10"),
        "{:?}",
        run.outcome.result
    );
    assert_eq!(run.outcome.counts.nodes, 0);
    // Within the quota, the same batch is refused as malformed.
    let run = Sync::new(&rt, &p)
        .config("mode", "malformed-flood")
        .run()
        .await;
    assert!(
        run.failure().contains("malformed batch"),
        "{:?}",
        run.outcome.result
    );
}

/// Issue 20, point 4: a 100 MB string property was accepted and stored. A value over
/// the per-value limit (1 MiB by default) is refused, naming the label, id, property
/// and the limit.
#[tokio::test]
async fn a_property_value_over_the_limit_is_refused_naming_the_record_and_the_limit() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let emit = |size: usize, limit: Option<usize>| {
        let mut sync = Sync::new(&rt, &p)
            .config("mode", "huge-property")
            .config("size", &size.to_string());
        if let Some(limit) = limit {
            sync = sync.limits(|l| l.property_value_bytes = limit);
        }
        sync.run()
    };
    let run = emit(1 << 20, None).await;
    assert_eq!(run.outcome.result.as_deref(), Ok("ok"), "1 MiB is allowed");
    let run = emit(100_000_000, None).await;
    assert!(
        matches!(run.outcome.result, Err(Failure::InvalidRecord(_))),
        "{:?}",
        run.outcome.result.as_ref().map_err(|e| e.to_string().len())
    );
    let text = run.failure();
    assert!(
        text.contains(r#"emitted an invalid node MisbehaveThing "big": property "name" holds 100000000 bytes, over the limit of 1048576 bytes per value"#),
        "{text}"
    );
    assert!(run.node_ids().is_empty(), "nothing of it is passed on");
    let run = emit(2_000, Some(1_000)).await;
    assert!(
        run.failure()
            .contains("over the limit of 1000 bytes per value"),
        "the limit is configurable: {}",
        run.failure()
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

/// Issue 19, point 4: mistakes an author makes get errors in the SDK's words, at once.
#[tokio::test]
async fn an_authors_mistakes_are_named_in_the_sdks_words() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    // A record before the scope stops the plugin at that record, naming cx.scope.
    let run = Sync::new(&rt, &p)
        .config("mode", "emit-before-scope")
        .run()
        .await;
    match &run.outcome.result {
        Err(Failure::Trap(t)) => assert!(
            t.contains("cx.node(\"MisbehaveThing\", ..) before cx.scope(..)"),
            "{t}"
        ),
        other => panic!("{other:?}"),
    }
    // A scope whose label the schema does not declare is refused.
    let run = Sync::new(&rt, &p)
        .config("mode", "scope-undeclared-label")
        .run()
        .await;
    match &run.outcome.result {
        Err(Failure::Contract(t)) => assert!(
            t.contains(
                "names label \"NotInTheSchema\", which is not one of the plugin's node kinds"
            ),
            "{t}"
        ),
        other => panic!("{other:?}"),
    }
    // An auth error that names no variable is told which credentials to check.
    let run = Sync::new(&rt, &p).config("mode", "auth-error").run().await;
    match &run.outcome.result {
        Err(Failure::Plugin { error, message }) => {
            assert_eq!(error, "auth");
            assert!(
                message.starts_with(
                    "the API answered 401: invalid token (check the plugin's \
                                     credentials: token (env SCW_SECRET_KEY)"
                ),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_still_usable(&rt, &p).await;
}

/// Issue 20, point 4: a 100 MB error message or summary went whole into `--report`,
/// `runs --json` and the store. Both are cut to `MAX_GUEST_TEXT`, marked.
#[tokio::test]
async fn a_huge_error_or_summary_is_cut_with_a_marker() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let bounded = |text: &str, fill: char| {
        assert!(text.ends_with(CUT_MARKER), "not marked");
        let kept = &text[..text.len() - CUT_MARKER.len()];
        assert_eq!(kept.len(), MAX_GUEST_TEXT);
        assert!(kept.chars().all(|c| c == fill));
    };
    let run = Sync::new(&rt, &p).config("mode", "huge-error").run().await;
    match &run.outcome.result {
        Err(Failure::Plugin { error, message }) => {
            assert_eq!(error, "provider");
            bounded(message, 'e');
        }
        other => panic!("{:?}", other.as_ref().map(String::len)),
    }
    let run = Sync::new(&rt, &p)
        .config("mode", "huge-summary")
        .run()
        .await;
    bounded(run.outcome.result.as_deref().expect("succeeds"), 's');
    assert_still_usable(&rt, &p).await;
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

/// Issue 20, point 6: `fetch-many` could hold its 1,024 responses of up to 64 MiB each
/// at once. The bodies of one call share `max_held_bytes`: with room for five of its
/// twenty 1 MiB responses, five arrive and the rest are refused, naming the limit; the
/// call and the plugin go on.
#[tokio::test]
async fn the_responses_of_one_fetch_many_share_a_bounded_budget() {
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch-many")
        .config("endpoint", &url)
        .config("target", &format!("{url}/big?bytes={}", 1 << 20))
        .limits(|l| l.fetch.max_held_bytes = 5 << 20)
        .run()
        .await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "{:?}",
        run.outcome.result
    );
    let outcomes: Vec<String> = (0..20)
        .map(|i| match run.prop(&format!("r{i}"), "name") {
            Some(Value::Text(t)) => t.into(),
            other => panic!("r{i}: {other:?}"),
        })
        .collect();
    let ok = outcomes.iter().filter(|o| *o == "ok").count();
    assert_eq!(ok, 5, "{outcomes:#?}");
    for refused in outcomes.iter().filter(|o| *o != "ok") {
        assert!(
            refused.contains("does not fit in the 5 MiB that one call may hold at once")
                && refused.contains("responses_held_mib"),
            "{refused}"
        );
    }
    // Twenty smaller responses fit in the same budget.
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch-many")
        .config("endpoint", &url)
        .config("target", &format!("{url}/big?bytes={}", 1 << 18))
        .limits(|l| l.fetch.max_held_bytes = 5 << 20)
        .run()
        .await;
    let all_ok =
        (0..20).all(|i| run.prop(&format!("r{i}"), "name") == Some(Value::Text("ok".into())));
    assert!(all_ok, "twenty 256 KiB responses fit in 5 MiB");
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
