//! The run history read back as the engine wrote it: each entry's report parsed into a
//! [`RunReport`], so a front end reads typed fields instead of looking up keys by name
//! (where a renamed field would quietly read as zero).

use infragraph_core::{GraphReader, RunRecord};
use infragraph_engine::RunReport;

use crate::error::Error;
use crate::graph::Graph;

/// One entry of the run history.
#[derive(Debug)]
pub struct Run {
    /// The entry as stored (its `report` is the report's JSON text).
    pub record: RunRecord,
    /// The report, or why it could not be read (written by an incompatible version).
    pub report: Result<RunReport, String>,
}

/// The newest `limit` runs in `graph`, newest first.
pub async fn runs(graph: &Graph, limit: usize) -> Result<Vec<Run>, Error> {
    Ok(graph
        .runs(limit)
        .await?
        .into_iter()
        .map(|record| {
            let report = serde_json::from_str(&record.report)
                .map_err(|e| format!("its report cannot be read: {e}"));
            Run { record, report }
        })
        .collect())
}
