//! The store as the engine sees it: `GraphSink` and `StateStore`, each call run as blocking
//! SQLite work (`Store::blocking`) by the module that does it.

use std::collections::BTreeMap;

use infragraph_core::{
    BoxFuture, ChangeCounts, EdgeBatch, GraphSink, Incomplete, Manifest, NodeBatch, RunRecord,
    SinkError, StateError, StateStore, WriteScope,
};

use crate::store::Store;

impl GraphSink for Store {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        Store::blocking(|| self.prepare_sync(manifest)).map_err(SinkError::from)
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        Store::blocking(|| self.next_update_tag_sync()).map_err(SinkError::from)
    }

    async fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        Store::blocking(|| self.write_nodes_sync(w, extra_labels, batch)).map_err(SinkError::from)
    }

    async fn write_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        Store::blocking(|| self.write_edges_sync(w, batch)).map_err(SinkError::from)
    }

    async fn changes(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        Store::blocking(|| self.changes_sync(w)).map_err(SinkError::from)
    }

    async fn cleanup(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        batch: usize,
    ) -> Result<ChangeCounts, SinkError> {
        Store::blocking(|| self.cleanup_sync(w, keep, batch)).map_err(SinkError::from)
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
