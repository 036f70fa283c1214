//! `infragraph connections list|check`: the accounts the config file names, their latest
//! runs, and whether their credentials are accepted (nothing written).

use std::process::ExitCode;

use infragraph_app::{CheckStatus, Graph, Intent, Location, Settings};

use crate::args::{ConnectionsCommand, graph_args};
use crate::table::{Format, Table};

pub async fn run(settings: &Settings, cmd: ConnectionsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConnectionsCommand::List {
            store,
            neo4j,
            output,
        } => {
            let location = settings.location(&graph_args(&store, &neo4j))?;
            // Nothing synced yet is no error: the configured connections, without runs.
            let graph = match &location {
                Location::Store(path) if !path.exists() => None,
                _ => Some(Graph::open(&location, Intent::Read).await?),
            };
            let rows = infragraph_app::connections(settings, graph.as_ref()).await?;
            if output.format() == Format::Json {
                out!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["CONNECTION", "PLUGIN", "SCOPE", "LAST RUN", "STATUS"])
                .keep_whole(&["CONNECTION", "LAST RUN"]);
            let none = output.missing();
            // A reader of the table sees `never` for a connection not yet run.
            let never = if output.format() == Format::Table {
                "never"
            } else {
                none
            };
            for r in &rows {
                let last = r.last_run.clone().unwrap_or_else(|| never.into());
                let last = match last.split_once('.') {
                    Some((second, _)) if !output.whole_values() => format!("{second}Z"),
                    _ => last,
                };
                table.push(vec![
                    r.connection.clone(),
                    r.plugin.clone(),
                    r.scope.clone().unwrap_or_else(|| none.into()),
                    last,
                    r.status.clone().unwrap_or_else(|| none.into()),
                ]);
            }
            table.print(&output)?;
            if rows.is_empty() && output.format() == Format::Table {
                out!(
                    "no connections: add [connections.<name>] tables with plugin = \"…\" to the \
                     config file (README, \"Connections\"), or sync a plugin"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsCommand::Check { targets, output } => {
            let reports = infragraph_app::check(settings, targets).await?;
            let bad = reports.iter().any(|r| r.status != CheckStatus::Verified);
            if output.format() == Format::Json {
                out!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                let mut table = Table::new(&["CONNECTION", "CHECK", "HTTP", "URL", "MESSAGE"])
                    .keep_whole(&["CONNECTION", "CHECK"]);
                for r in &reports {
                    table.push(vec![
                        r.connection.clone(),
                        r.status.to_string(),
                        r.http_status.map(|s| s.to_string()).unwrap_or_default(),
                        r.url.clone().unwrap_or_default(),
                        r.message.clone(),
                    ]);
                }
                table.print(&output)?;
            }
            // 0: every connection verified; 2: any was not (a script's `&&` stops there).
            Ok(if bad {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
