//! `infragraph push`: the embedded store's graph copied into a Neo4j server, bookkeeping
//! included, so a graph synced locally can be published centrally. The copy itself is the
//! library's transfer (any graph into any other).

use std::process::ExitCode;

use anyhow::Context;
use infragraph_app::{DEFAULT_STORE, Location, Settings};

use crate::args::{PushArgs, server_args};

pub async fn run(settings: &Settings, args: PushArgs) -> anyhow::Result<ExitCode> {
    let server = settings.server(&server_args(&args.neo4j))?;
    let path = args.store.store.clone().unwrap_or(DEFAULT_STORE.into());
    let (uri, database) = (server.uri.clone(), server.database.clone());
    let from = Location::Store(path.clone());
    let batch = args.batch_size.unwrap_or(settings.engine.batch_size);
    let pushed = infragraph_app::transfer(&from, &Location::Neo4j(server), batch)
        .await
        .with_context(|| {
            format!(
                "cannot push {} to {uri} (what was written so far stays)",
                path.display()
            )
        })?;
    out!(
        "pushed {} nodes and {} relationships from {} to {uri} (database {database}){}",
        pushed.nodes,
        pushed.relationships,
        path.display(),
        if pushed.unresolved > 0 {
            format!("; {} relationships had an end missing", pushed.unresolved)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
