//! `infragraph state get|set`: a plugin's persistent state (cursors, the Azure plugin's
//! abstraction seed), read or written by hand, in the embedded store or a Neo4j server.
//! Values are hex on the command line, so binary ones survive a shell and a copy-paste.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use infragraph_core::{GraphSink, StateStore};

use crate::args::{StateCommand, StateEntry};
use crate::settings::Settings;

pub async fn run(settings: &Settings, cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Get {
            entry,
            store,
            neo4j,
        } => {
            let value = match settings.neo4j_to_read(&neo4j) {
                Some(config) => {
                    let sink = infragraph_sink_neo4j::Neo4jSink::connect(&config).await?;
                    get(&sink, &entry).await?
                }
                None => get(&settings.existing_store(&store.store)?, &entry).await?,
            };
            match value {
                Some(v) => {
                    out!("{}", hex::encode(v));
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "infragraph: no state {:?} for plugin {:?} in scope {:?}",
                        entry.key, entry.plugin, entry.scope
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
            let writes = BTreeMap::from([(entry.key.clone(), Some(value))]);
            match settings.neo4j(&neo4j) {
                Some(config) => {
                    let sink = infragraph_sink_neo4j::Neo4jSink::connect(&config).await?;
                    sink.commit_state(&entry.plugin, &entry.scope, &writes)
                        .await?;
                }
                None => {
                    let sink = settings.open_store(&store.store)?;
                    sink.commit_state(&entry.plugin, &entry.scope, &writes)
                        .await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn get(store: &dyn StateStore, e: &StateEntry) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(store.get(&e.plugin, &e.scope, &e.key).await?)
}
