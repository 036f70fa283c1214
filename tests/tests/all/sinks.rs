//! The conformance suite (`infragraph_tests::conformance`) against every sink, and the
//! Bolt sink's graph compared with the embedded store's after the same scenario.

use infragraph_tests::bolt;
use infragraph_tests::conformance::{self, Inspect, SCENARIOS};

/// One test per scenario and sink, each on a fresh sink.
macro_rules! sink_test {
    ($sink:ident, $make:expr, [$($scenario:ident),* $(,)?]) => {
        mod $sink {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let (sink, _guard) = $make;
                    infragraph_tests::conformance::run(stringify!($scenario), &sink).await;
                }
            )*
        }
    };
}

/// Every scenario, for the macros.
macro_rules! every_scenario {
    ($m:ident, $sink:ident, $make:expr) => {
        $m!(
            $sink,
            $make,
            [
                upsert_keeps_firstseen_and_merges_properties,
                edges_resolve_by_key_and_count_unresolved,
                cleanup_deletes_only_stale_records_of_the_plugin_and_scope,
                cleanup_keeps_incomplete_labels,
                changes_count_created_and_updated,
                state_and_run_history_persist,
                a_label_belongs_to_the_first_plugin_that_declares_it,
                another_plugins_records_are_refused_whole_batch,
                shared_records_stay_until_no_scope_asserts_them,
                edges_between_survivors_are_deleted_only_by_their_owner,
                lastupdated_never_goes_back,
                one_run_per_plugin_and_scope,
                a_resync_changes_only_what_changed,
            ]
        );
    };
}

/// A fresh embedded store in a directory removed with the guard.
fn sqlite() -> (infragraph_sink_sqlite::Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (
        infragraph_sink_sqlite::Store::open(dir.path().join("graph.db")).expect("store"),
        dir,
    )
}

/// A Bolt sink on a database of its own on the test server.
async fn neo4j(test: &str) -> (infragraph_sink_neo4j::Neo4jSink, ()) {
    (bolt::sink(test).await, ())
}

every_scenario!(sink_test, sqlite, crate::sinks::sqlite());
every_scenario!(sink_test, neo4j, crate::sinks::neo4j(module_path!()).await);

/// The same scenario on the embedded store and on the Bolt sink leaves the same graph,
/// compared through both exports (update tags by rank: each sink hands out its own).
macro_rules! same_graph_test {
    ($name:ident, $make:expr, [$($scenario:ident),* $(,)?]) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    crate::sinks::same_graph(stringify!($scenario)).await;
                }
            )*
        }
    };
}

every_scenario!(same_graph_test, neo4j_equals_sqlite, ());

async fn same_graph(scenario: &str) {
    let (sqlite, _dir) = sqlite();
    let (neo4j, ()) = neo4j(scenario).await;
    conformance::run(scenario, &sqlite).await;
    conformance::run(scenario, &neo4j).await;
    let (a, b) = (
        sqlite.graph().await.normalized(),
        neo4j.graph().await.normalized(),
    );
    assert!(
        !a.nodes.is_empty()
            || matches!(
                scenario,
                "state_and_run_history_persist"
                    | "a_label_belongs_to_the_first_plugin_that_declares_it"
                    | "one_run_per_plugin_and_scope"
            )
    );
    assert_eq!(
        a.lines(),
        b.lines(),
        "embedded store (left) and Bolt sink (right)"
    );
}

#[test]
fn every_scenario_runs_on_every_sink() {
    // The macro lists scenarios by hand; this keeps the list and SCENARIOS in step.
    let listed = [
        "upsert_keeps_firstseen_and_merges_properties",
        "edges_resolve_by_key_and_count_unresolved",
        "cleanup_deletes_only_stale_records_of_the_plugin_and_scope",
        "cleanup_keeps_incomplete_labels",
        "changes_count_created_and_updated",
        "state_and_run_history_persist",
        "a_label_belongs_to_the_first_plugin_that_declares_it",
        "another_plugins_records_are_refused_whole_batch",
        "shared_records_stay_until_no_scope_asserts_them",
        "edges_between_survivors_are_deleted_only_by_their_owner",
        "lastupdated_never_goes_back",
        "one_run_per_plugin_and_scope",
        "a_resync_changes_only_what_changed",
    ];
    assert_eq!(SCENARIOS, listed);
    let _ = conformance::run::<infragraph_sink_sqlite::Store>;
    let _ = conformance::run::<infragraph_sink_neo4j::Neo4jSink>;
}
