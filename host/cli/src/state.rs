//! `infragraph state get|set`: a plugin's persistent state (cursors, the Azure plugin's
//! abstraction seed), read or written by hand wherever the graph is (the same place for
//! both). Values are hex on the command line, so binary ones survive a shell and a
//! copy-paste.

use std::process::ExitCode;

use anyhow::Context;
use infragraph_app::{Graph, Intent, Settings};

use crate::args::{StateCommand, graph_args};

pub async fn run(settings: &Settings, cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Get {
            entry,
            store,
            neo4j,
        } => {
            let location = settings.location(&graph_args(&store, &neo4j))?;
            let graph = Graph::open(&location, Intent::Read).await?;
            match graph.state(&entry.plugin, &entry.scope, &entry.key).await? {
                Some(v) => {
                    out!("{}", hex::encode(v));
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    errln!(
                        "infragraph: no state {:?} for plugin {:?} in scope {:?} in {location}",
                        entry.key,
                        entry.plugin,
                        entry.scope
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        StateCommand::Set {
            entry,
            hex: text,
            store,
            neo4j,
        } => {
            let text = match text.as_str() {
                "-" => std::io::read_to_string(std::io::stdin())
                    .context("cannot read the value from standard input")?,
                _ => text,
            };
            let value = hex::decode(text.trim()).with_context(|| {
                format!(
                    "the value for {:?} must be hex digits (as `state get` prints)",
                    entry.key
                )
            })?;
            let location = settings.location(&graph_args(&store, &neo4j))?;
            let graph = Graph::open(&location, Intent::Write).await?;
            graph
                .set_state(&entry.plugin, &entry.scope, &entry.key, value)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
