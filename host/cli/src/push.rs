//! `infragraph push`: the embedded store's graph copied into a Neo4j server, bookkeeping
//! included, so a graph synced locally can be published centrally.

use std::io::BufReader;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use infragraph_sink_neo4j::Neo4jSink;

use infragraph_app::{DEFAULT_STORE, Settings};
use infragraph_sink_sqlite::Store;

use crate::args::{PushArgs, graph_args};

pub async fn run(settings: &Settings, args: PushArgs) -> anyhow::Result<ExitCode> {
    let config = settings.server(&graph_args(
        &crate::args::StoreArg { store: None },
        &args.neo4j,
    ))?;
    let path = args.store.store.clone().unwrap_or(DEFAULT_STORE.into());
    let store = Store::open_existing(&path)?;
    let sink = Neo4jSink::connect(&config).await?;
    let batch = args.batch_size.unwrap_or(settings.engine.batch_size);
    // The export streams through a pipe: memory stays flat whatever the graph's size.
    let (reader, mut writer) = std::io::pipe().context("cannot create a pipe")?;
    let exporter = std::thread::spawn(move || {
        let result = store.export_jsonl(&mut writer);
        drop(writer);
        result
    });
    let pushed = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(sink.push_jsonl(BufReader::new(reader), batch))
    });
    let exported = exporter
        .join()
        .map_err(|_| anyhow!("the export thread panicked"))?;
    // A push error closes the pipe early, which the export then reports as a broken pipe:
    // the push's error is the one that says what happened.
    let pushed = pushed.with_context(|| {
        format!(
            "cannot push {} to {} (what was written so far stays)",
            path.display(),
            config.uri
        )
    })?;
    exported.with_context(|| format!("cannot read {}", path.display()))?;
    out!(
        "pushed {} nodes and {} relationships from {} to {} (database {}){}",
        pushed.nodes,
        pushed.relationships,
        path.display(),
        config.uri,
        config.database,
        if pushed.unresolved > 0 {
            format!("; {} relationships had an end missing", pushed.unresolved)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
