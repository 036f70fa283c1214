//! infragraph's end-to-end tests, one binary, a module per topic.

mod access;
mod azure;
mod cli;
mod connections;
mod connections_sims;
mod consent;
mod contract;
mod critical;
mod deploy;
mod engine;
mod isolation;
mod neo4j;
mod people;
mod plugin_kit;
mod readme;
mod recording;
mod repository;
mod sandbox;
mod scaleway;
mod secrets;
mod shipped;
mod sinks;
mod snapshots;
mod spacelift;
mod trust;

use infragraph_runtime::{Plugin, Runtime};
use infragraph_tests::harness;

/// A runtime without a compilation cache (tests of the cache make their own).
fn runtime() -> Runtime {
    Runtime::new(None).expect("runtime")
}

/// The hostile guest, loaded.
async fn misbehave(rt: &Runtime) -> Plugin {
    rt.load(&harness::guest("misbehave"), None)
        .await
        .expect("misbehave loads")
}

/// Proves the runtime still works after whatever the previous run did to it.
async fn assert_still_usable(rt: &Runtime, plugin: &Plugin) {
    let run = harness::Sync::new(rt, plugin)
        .config("mode", "ok")
        .run()
        .await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "a well-behaved run after the hostile one"
    );
    assert_eq!(run.node_ids().len(), 3);
}
