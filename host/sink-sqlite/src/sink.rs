//! The store as the engine sees it: `GraphSink` and `StateStore`, each call run as blocking
//! SQLite work (`Store::blocking`) by the module that does it, except the batches of a
//! held run, which only take memory or the run's own temporary tables
//! ([`Store::writes_held`]).

use std::collections::BTreeMap;
use std::time::Duration;

use infragraph_core::{
    BoxFuture, ChangeCounts, EdgeBatch, GraphSink, Holder, Manifest, NodeBatch, Publish, RunRecord,
    SinkError, StateError, StateStore, WriteScope,
};

use crate::store::Store;

impl GraphSink for Store {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        Store::blocking(|| self.prepare_sync(manifest)).map_err(SinkError::from)
    }

    fn runs_starting(&self, n: usize) {
        self.expect_runs(n);
    }

    fn runs_ended(&self, n: usize) {
        self.expected_runs_ended(n);
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        Store::blocking(|| self.next_update_tag_sync()).map_err(SinkError::from)
    }

    async fn lease(&self, w: &WriteScope, holder: &Holder, ttl: Duration) -> Result<(), SinkError> {
        Store::blocking(|| self.lease_sync(w, holder, ttl)).map_err(SinkError::from)
    }

    async fn release(&self, w: &WriteScope, holder: &Holder) -> Result<(), SinkError> {
        Store::blocking(|| self.release_sync(w, holder)).map_err(SinkError::from)
    }

    async fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        let write = || self.write_nodes_sync(w, extra_labels, batch);
        match self.writes_held(w, &[]) {
            true => write(),
            false => Store::blocking(write),
        }
        .map_err(SinkError::from)
    }

    async fn write_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        let write = || self.write_edges_sync(w, batch);
        match self.writes_held(w, &crate::write::edge_indexes(batch)) {
            true => write(),
            false => Store::blocking(write),
        }
        .map_err(SinkError::from)
    }

    async fn publish(&self, w: &WriteScope, p: &Publish<'_>) -> Result<ChangeCounts, SinkError> {
        Store::blocking(|| self.publish_sync(w, p)).map_err(SinkError::from)
    }

    async fn discard(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        self.discard_sync(w);
        Ok(ChangeCounts::default())
    }

    async fn commit_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        Store::blocking(|| self.commit_state_sync(plugin, scope, writes)).map_err(SinkError::from)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), SinkError> {
        Store::blocking(|| self.record_run_sync(run)).map_err(SinkError::from)
    }
}

impl StateStore for Store {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(async move {
            Store::blocking(|| self.get_state_sync(plugin, scope, key)).map_err(StateError::from)
        })
    }
}
