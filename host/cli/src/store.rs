//! The commands that read the graph back, wherever it is (`query`, `runs`, `export`),
//! and `import`, which loads a file into the embedded store.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use infragraph_app::{Graph, Intent, Location, Settings};
use infragraph_core::{Direction, GraphReader, StoredNode};
use infragraph_sink_sqlite::Store;
use serde_json::{Value as Json, json};

use crate::args::{
    DirectionArg, ExportArgs, ExportFormat, ImportArgs, QueryCommand, RunsArgs, graph_args,
};
use crate::table::{Format, Table};

pub async fn query(settings: &Settings, cmd: QueryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QueryCommand::Nodes {
            label,
            filters,
            limit,
            store,
            neo4j,
            output,
        } => {
            let graph = open(settings, graph_args(&store, &neo4j)).await?;
            let filters = filters
                .iter()
                .map(|f| match f.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => bail!("--where takes PROPERTY=VALUE, got {f:?}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let nodes = graph.nodes(&label, &filters, limit).await?;
            // No node at all under the label (primary or extra) is a typo more often than
            // an empty answer: an error with the likely label, in every format.
            if nodes.is_empty()
                && (filters.is_empty() || graph.nodes(&label, &[], 1).await?.is_empty())
            {
                bail!(
                    "no {label} nodes in {}{}",
                    graph.describe(),
                    hint_labels(&graph, &label).await
                );
            }
            if output.format() == Format::Json {
                out!("{}", serde_json::to_string_pretty(&nodes)?);
                return Ok(ExitCode::SUCCESS);
            }
            nodes_table(&nodes).print(&output)?;
            if output.format() == Format::Table {
                if nodes.is_empty() {
                    out!("no {label} nodes match the --where filters");
                } else if nodes.len() == limit {
                    out!("(first {limit}; --limit N for more)");
                }
            }
        }
        QueryCommand::Neighbours {
            label,
            id,
            direction,
            types,
            store,
            neo4j,
            output,
        } => {
            let graph = open(settings, graph_args(&store, &neo4j)).await?;
            require_node(&graph, &label, &id).await?;
            let rows = graph
                .neighbours(&label, &id, dir(direction), &types)
                .await?;
            if output.format() == Format::Json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(edge, node)| json!({ "relationship": edge, "node": node }))
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["RELATIONSHIP", "PROPERTIES", "LABEL", "ID", "NAME"])
                .keep_whole(&["RELATIONSHIP", "LABEL", "ID"]);
            for (edge, node) in &rows {
                let forward = edge.from.0 == label && edge.from.1 == id;
                table.push(vec![
                    arrow(&edge.rel_type, forward),
                    props_text(&edge.props),
                    node.label.clone(),
                    node.id.clone(),
                    name_of(node),
                ]);
            }
            table.print(&output)?;
            if rows.is_empty() && output.format() == Format::Table {
                out!("{label} {id} has no such relationships");
            }
        }
        QueryCommand::Path {
            from_label,
            from_id,
            to_label,
            to_id,
            direction,
            types,
            max_depth,
            store,
            neo4j,
            output,
        } => {
            let graph = open(settings, graph_args(&store, &neo4j)).await?;
            require_node(&graph, &from_label, &from_id).await?;
            require_node(&graph, &to_label, &to_id).await?;
            let from = (from_label.as_str(), from_id.as_str());
            let to = (to_label.as_str(), to_id.as_str());
            let steps = graph
                .shortest_path(from, to, max_depth, dir(direction), &types)
                .await?;
            if output.format() == Format::Json {
                out!("{}", serde_json::to_string_pretty(&steps)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table =
                Table::new(&["HOP", "RELATIONSHIP", "PROPERTIES", "LABEL", "ID", "NAME"])
                    .keep_whole(&["RELATIONSHIP", "LABEL", "ID"]);
            for (hop, step) in steps.iter().flatten().enumerate() {
                let (via, props) = match &step.via {
                    // The edge runs towards this step's node when it starts at the other.
                    Some(edge) => {
                        let forward = edge.from.0 != step.node.label || edge.from.1 != step.node.id;
                        (arrow(&edge.rel_type, forward), props_text(&edge.props))
                    }
                    None => (String::new(), String::new()),
                };
                table.push(vec![
                    hop.to_string(),
                    via,
                    props,
                    step.node.label.clone(),
                    step.node.id.clone(),
                    name_of(&step.node),
                ]);
            }
            table.print(&output)?;
            if output.format() == Format::Table {
                match &steps {
                    Some(steps) => out!("({} hops)", steps.len().saturating_sub(1)),
                    None => out!("no path within {max_depth} hops"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Nodes of one label: their key, then `name` when they have one, then every other
/// property by name; extra labels when any has some.
fn nodes_table(nodes: &[StoredNode]) -> Table {
    let mut keys: Vec<&str> = nodes
        .iter()
        .flat_map(|n| n.props.keys().map(String::as_str))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(at) = keys.iter().position(|k| *k == "name") {
        keys.remove(at);
        keys.insert(0, "name");
    }
    let extra = nodes.iter().any(|n| !n.extra_labels.is_empty());
    let mut header = vec!["ID".to_string()];
    if extra {
        header.push("LABELS".into());
    }
    header.extend(keys.iter().map(|k| k.to_uppercase()));
    // An id is what the next command takes: never cut.
    let mut table = Table::new(&header).keep_whole(&["ID"]);
    for n in nodes {
        let mut row = vec![n.id.clone()];
        if extra {
            row.push(n.extra_labels.join(":"));
        }
        row.extend(
            keys.iter()
                .map(|k| n.props.get(*k).map(value_text).unwrap_or_default()),
        );
        table.push(row);
    }
    table
}

/// `-[:TYPE]->` when the relationship points away from the node the line is about.
fn arrow(rel_type: &str, forward: bool) -> String {
    if forward {
        format!("-[:{rel_type}]->")
    } else {
        format!("<-[:{rel_type}]-")
    }
}

/// A relationship's properties as `key=value`, comma-separated; a value that would be
/// ambiguous there is quoted.
fn props_text(props: &serde_json::Map<String, Json>) -> String {
    props
        .iter()
        .map(|(k, v)| {
            let text = value_text(v);
            if text.is_empty() || text.contains([',', '=', ' ', '"']) {
                format!("{k}={text:?}")
            } else {
                format!("{k}={text}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a person calls the node, when its plugin gave it a name.
pub(crate) fn name_of(n: &StoredNode) -> String {
    ["name", "display_name", "displayname", "email"]
        .iter()
        .find_map(|k| n.props.get(*k))
        .map(value_text)
        .unwrap_or_default()
}

/// A property value in a cell: text as it is, lists joined by commas, the rest as JSON.
fn value_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The graph where `args` (or the config) say, for reading.
pub(crate) async fn open(
    settings: &Settings,
    args: infragraph_app::GraphArgs,
) -> anyhow::Result<Graph> {
    let location = settings.location(&args)?;
    Ok(Graph::open(&location, Intent::Read).await?)
}

pub async fn runs(settings: &Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let location = settings.location(&graph_args(&args.store, &args.neo4j))?;
    let graph = Graph::open(&location, Intent::Read).await?;
    let runs = infragraph_app::runs(&graph, args.limit).await?;
    if args.output.format() == Format::Json {
        // The reports as stored, every field, whichever version wrote them.
        let reports: Vec<Json> = runs
            .iter()
            .map(|r| serde_json::from_str(&r.record.report).unwrap_or(Json::Null))
            .collect();
        out!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        "STARTED",
        "CONNECTION",
        "SCOPE",
        "STATUS",
        "NODES",
        "EDGES",
        "DELETED",
        "PROBLEMS",
    ])
    .keep_whole(&["STARTED", "CONNECTION"]);
    for r in &runs {
        let counts = match &r.report {
            Ok(report) => [
                report.nodes_written().to_string(),
                report.edges_written().to_string(),
                report.deleted().to_string(),
                problems(report),
            ],
            Err(why) => ["?".into(), "?".into(), "?".into(), why.clone()],
        };
        let record = &r.record;
        let connection = match &r.report {
            Ok(report) => report.connection().to_string(),
            Err(_) => record.plugin.clone(),
        };
        // People read the second; the millisecond is in CSV and JSON.
        let started = match record.started_at.split_once('.') {
            Some((second, _)) if !args.output.whole_values() => format!("{second}Z"),
            _ => record.started_at.clone(),
        };
        table.push(
            [
                started,
                connection,
                record
                    .scope
                    .clone()
                    .unwrap_or_else(|| args.output.missing().into()),
                record.status.to_string(),
            ]
            .into_iter()
            .chain(counts)
            .collect(),
        );
    }
    table.print(&args.output)?;
    if runs.is_empty() && args.output.format() == Format::Table {
        out!("no runs yet");
    }
    Ok(ExitCode::SUCCESS)
}

/// What went wrong in a run, in a few words: its errors, else what was incomplete (one
/// cause per group), else its warnings.
fn problems(report: &infragraph_engine::RunReport) -> String {
    if !report.errors.is_empty() {
        return report.errors.join("; ");
    }
    let incomplete: Vec<String> = infragraph_engine::causes(&report.incomplete)
        .iter()
        .map(|c| format!("incomplete: {c}"))
        .collect();
    if !incomplete.is_empty() {
        return incomplete.join("; ");
    }
    report.warnings.join("; ")
}

pub async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let location = settings.location(&graph_args(&args.store, &args.neo4j))?;
    let graph = Graph::open(&location, Intent::Read).await?;
    let mut sink: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            // Owner-only: an export is the whole inventory.
            infragraph_core::private::create_file(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let (nodes, relationships) = match (args.format, graph.as_store()) {
        (ExportFormat::Jsonl, _) => {
            let c = graph.export_jsonl(&mut *sink).await?;
            (c.nodes, c.relationships)
        }
        (ExportFormat::Graphml, Some(store)) => {
            let e = store.export_graphml(&mut sink)?;
            (e.nodes, e.relationships)
        }
        (ExportFormat::Cypher, Some(store)) => {
            let e = store.export_cypher(&mut sink)?;
            (e.nodes, e.relationships)
        }
        (_, None) => bail!("a Neo4j server's graph exports as jsonl only (--format jsonl)"),
    };
    sink.flush()?;
    if let Some(path) = &args.output {
        errln!(
            "wrote {nodes} nodes and {relationships} relationships to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let location = settings.location(&crate::args::store_args(&args.store))?;
    let Location::Store(path) = location else {
        bail!(
            "import loads the embedded store; the config file's [sink.neo4j] names a server: \
             pass --store PATH"
        );
    };
    let store = Store::open(&path)?;
    let stats = store
        .import_jsonl(&mut BufReader::new(file))
        .with_context(|| {
            format!(
                "cannot import {} (nothing was written)",
                args.file.display()
            )
        })?;
    out!(
        "imported {} nodes and {} relationships into {}",
        stats.nodes,
        stats.relationships,
        store.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn dir(d: DirectionArg) -> Direction {
    match d {
        DirectionArg::Out => Direction::Out,
        DirectionArg::In => Direction::In,
        DirectionArg::Both => Direction::Both,
    }
}

pub(crate) async fn require_node(graph: &Graph, label: &str, id: &str) -> anyhow::Result<()> {
    let key = [("id".to_string(), id.to_string())];
    if graph.nodes(label, &key, 1).await?.is_empty() {
        bail!(
            "no {label} node with id {id:?} in {}{}",
            graph.describe(),
            hint_labels(graph, label).await
        );
    }
    Ok(())
}

/// When `label` is not in the graph: the label it was likely meant to be, else the
/// labels the graph has (a typo is likelier than an empty graph).
async fn hint_labels(graph: &Graph, label: &str) -> String {
    match graph.labels().await {
        Ok(labels) if !labels.iter().any(|l| l == label) => {
            if labels.is_empty() {
                " (the graph is empty: run `infragraph sync <plugin>`)".into()
            } else if let Some(meant) = infragraph_runtime::closest(label, &labels) {
                format!("; did you mean {meant}?")
            } else {
                format!(" (labels in the graph: {})", labels.join(", "))
            }
        }
        _ => String::new(),
    }
}
