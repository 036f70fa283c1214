//! The conformance suite (`infragraph_tests::conformance`) against every sink.

use infragraph_tests::conformance::{self, SCENARIOS};

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

/// A fresh embedded store in a directory removed with the guard.
fn sqlite() -> (infragraph_sink_sqlite::Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (
        infragraph_sink_sqlite::Store::open(dir.path().join("graph.db")).expect("store"),
        dir,
    )
}

sink_test!(
    sqlite,
    crate::sinks::sqlite(),
    [
        upsert_keeps_firstseen_and_merges_properties,
        edges_resolve_by_key_and_count_unresolved,
        cleanup_deletes_only_stale_records_of_the_plugin_and_scope,
        cleanup_keeps_incomplete_labels,
        changes_count_created_and_updated,
        state_and_run_history_persist,
    ]
);

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
    ];
    assert_eq!(SCENARIOS, listed);
    let _ = conformance::run::<infragraph_sink_sqlite::Store>;
}
