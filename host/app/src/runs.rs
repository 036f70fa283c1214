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

/// A connection as `connections list` shows it: configured, or seen in the run history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionRow {
    /// `plugin/name`, or the plugin for its default connection.
    pub connection: String,
    /// Its plugin.
    pub plugin: String,
    /// Whether the config file names it (a default connection is not named).
    pub configured: bool,
    /// The scope its latest run to declare one declared.
    pub scope: Option<String>,
    /// When its latest run started.
    pub last_run: Option<String>,
    /// How its latest run ended.
    pub status: Option<String>,
}

/// How far back `connections list` looks for each connection's latest run.
const HISTORY: usize = 10_000;

/// Every configured connection, then every other connection in `graph`'s run history,
/// each with its latest run. Without a graph (nothing synced yet), the configured ones.
pub async fn connections(
    settings: &crate::Settings,
    graph: Option<&Graph>,
) -> Result<Vec<ConnectionRow>, Error> {
    let mut rows: Vec<ConnectionRow> = settings
        .connections
        .iter()
        .map(|(name, c)| ConnectionRow {
            connection: format!("{}/{name}", c.plugin),
            plugin: c.plugin.clone(),
            configured: true,
            scope: None,
            last_run: None,
            status: None,
        })
        .collect();
    let history = match graph {
        Some(g) => runs(g, HISTORY).await?,
        None => Vec::new(),
    };
    // Newest first: the first run seen of a connection is its latest.
    for run in &history {
        let Ok(report) = &run.report else { continue };
        let at = match rows
            .iter()
            .position(|r| r.connection == report.connection())
        {
            Some(at) => at,
            None => {
                rows.push(ConnectionRow {
                    connection: report.connection().to_string(),
                    plugin: report.plugin.clone(),
                    configured: false,
                    scope: None,
                    last_run: None,
                    status: None,
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[at];
        if row.last_run.is_none() {
            row.last_run = Some(run.record.started_at.clone());
            row.status = Some(run.record.status.to_string());
        }
        // A run that failed before declaring its scope (refused credentials) does not
        // make the connection's scope unknown: the last one declared still is.
        if row.scope.is_none() {
            row.scope = run.record.scope.clone();
        }
    }
    Ok(rows)
}
