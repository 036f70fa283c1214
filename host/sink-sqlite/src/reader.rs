//! [`GraphReader`] for the store: the same answers as its own methods, through the trait
//! every sink implements, so a front end reads the store and a Neo4j server alike.

use std::io::Write;

use infragraph_core::{
    Direction, Exported, GraphReader, RunRecord, SinkError, Step, StoredEdge, StoredNode,
};

use crate::store::Store;

impl GraphReader for Store {
    async fn nodes(
        &self,
        label: &str,
        filters: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<StoredNode>, SinkError> {
        Store::blocking(|| Store::nodes(self, label, filters, limit)).map_err(SinkError::from)
    }

    async fn neighbours(
        &self,
        label: &str,
        id: &str,
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(StoredEdge, StoredNode)>, SinkError> {
        Store::blocking(|| Store::neighbours(self, label, id, direction, types))
            .map_err(SinkError::from)
    }

    async fn neighbours_of_many(
        &self,
        nodes: &[(String, String)],
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(usize, StoredEdge, StoredNode)>, SinkError> {
        Store::blocking(|| Store::neighbours_of_many(self, nodes, direction, types))
            .map_err(SinkError::from)
    }

    async fn shortest_path(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        max_depth: usize,
        direction: Direction,
        types: &[String],
    ) -> Result<Option<Vec<Step>>, SinkError> {
        Store::blocking(|| Store::shortest_path(self, from, to, max_depth, direction, types))
            .map_err(SinkError::from)
    }

    async fn labels(&self) -> Result<Vec<String>, SinkError> {
        let stats = Store::blocking(|| self.stats()).map_err(SinkError::from)?;
        Ok(stats.nodes.into_keys().collect())
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, SinkError> {
        Store::blocking(|| Store::runs(self, limit)).map_err(SinkError::from)
    }

    async fn export_jsonl(&self, out: &mut (dyn Write + Send)) -> Result<Exported, SinkError> {
        let e = Store::blocking(|| Store::export_jsonl(self, &mut &mut *out))
            .map_err(SinkError::from)?;
        Ok(Exported {
            nodes: e.nodes,
            relationships: e.relationships,
        })
    }
}
