//! The commands that read the graph back, wherever it is (`query`, `runs`, `export`),
//! and `import`, which loads a file into the embedded store.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use infragraph_app::{Graph, Intent, Location, Settings};
use infragraph_core::{Direction, GraphReader, StoredEdge, StoredNode};
use infragraph_sink_sqlite::Store;
use serde_json::{Value as Json, json};

use crate::args::{
    DirectionArg, ExportArgs, ExportFormat, ImportArgs, QueryCommand, RunsArgs, graph_args,
};

pub async fn query(settings: &Settings, cmd: QueryCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        QueryCommand::Nodes {
            label,
            filters,
            limit,
            store,
            neo4j,
            json,
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
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&nodes)?)?;
            } else {
                for n in &nodes {
                    writeln!(out, "{}", node_line(n))?;
                }
                if nodes.is_empty() {
                    writeln!(
                        out,
                        "no {label} nodes match{}",
                        hint_labels(&graph, &label).await
                    )?;
                } else if nodes.len() == limit {
                    writeln!(out, "(first {limit}; --limit N for more)")?;
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
            json,
        } => {
            let graph = open(settings, graph_args(&store, &neo4j)).await?;
            require_node(&graph, &label, &id).await?;
            let rows = graph
                .neighbours(&label, &id, dir(direction), &types)
                .await?;
            if json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(edge, node)| json!({ "relationship": edge, "node": node }))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            for (edge, node) in &rows {
                writeln!(
                    out,
                    "{}  {}",
                    edge_arrow(edge, &label, &id),
                    node_line(node)
                )?;
            }
            if rows.is_empty() {
                writeln!(out, "{label} {id} has no such relationships")?;
            }
        }
        QueryCommand::Path {
            from_label,
            from_id,
            to_label,
            to_id,
            direction,
            max_depth,
            store,
            neo4j,
            json,
        } => {
            let graph = open(settings, graph_args(&store, &neo4j)).await?;
            require_node(&graph, &from_label, &from_id).await?;
            require_node(&graph, &to_label, &to_id).await?;
            let from = (from_label.as_str(), from_id.as_str());
            let to = (to_label.as_str(), to_id.as_str());
            match graph
                .shortest_path(from, to, max_depth, dir(direction))
                .await?
            {
                Some(steps) if json => writeln!(out, "{}", serde_json::to_string_pretty(&steps)?)?,
                Some(steps) => {
                    for step in &steps {
                        if let Some(edge) = &step.via {
                            let (l, i) = &edge.from;
                            let forward = *l == step.node.label && *i == step.node.id;
                            let arrow = if forward {
                                format!("<-[:{}]-", edge.rel_type)
                            } else {
                                format!("-[:{}]->", edge.rel_type)
                            };
                            writeln!(out, "    {arrow}")?;
                        }
                        writeln!(out, "{}", node_line(&step.node))?;
                    }
                    writeln!(out, "({} hops)", steps.len().saturating_sub(1))?;
                }
                None if json => writeln!(out, "null")?,
                None => writeln!(out, "no path within {max_depth} hops")?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The graph where `args` (or the config) say, for reading.
async fn open(settings: &Settings, args: infragraph_app::GraphArgs) -> anyhow::Result<Graph> {
    let location = settings.location(&args)?;
    Ok(Graph::open(&location, Intent::Read).await?)
}

pub async fn runs(settings: &Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let location = settings.location(&graph_args(&args.store, &args.neo4j))?;
    let graph = Graph::open(&location, Intent::Read).await?;
    let runs = infragraph_app::runs(&graph, args.limit).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        // The reports as stored, every field, whichever version wrote them.
        let reports: Vec<Json> = runs
            .iter()
            .map(|r| serde_json::from_str(&r.record.report).unwrap_or(Json::Null))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "STARTED", "PLUGIN", "SCOPE", "STATUS", "NODES", "EDGES", "DELETED", "PROBLEMS",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for r in &runs {
        let counts = match &r.report {
            Ok(report) => [
                report.nodes_written().to_string(),
                report.edges_written().to_string(),
                report.deleted().to_string(),
                cut(&problems(report), PROBLEMS_WIDTH),
            ],
            Err(why) => ["?".into(), "?".into(), "?".into(), why.clone()],
        };
        let record = &r.record;
        rows.push(
            [
                record.started_at.clone(),
                record.plugin.clone(),
                record.scope.clone().unwrap_or_else(|| "-".into()),
                record.status.to_string(),
            ]
            .into_iter()
            .chain(counts)
            .collect(),
        );
    }
    write!(out, "{}", crate::table::render(&rows))?;
    if runs.is_empty() {
        writeln!(out, "no runs yet")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The widest PROBLEMS cell: the whole text is in `runs --json`.
const PROBLEMS_WIDTH: usize = 100;

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

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

pub async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let location = settings.location(&graph_args(&args.store, &args.neo4j))?;
    let graph = Graph::open(&location, Intent::Read).await?;
    let mut sink: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
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
        eprintln!(
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

async fn require_node(graph: &Graph, label: &str, id: &str) -> anyhow::Result<()> {
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

fn node_line(n: &StoredNode) -> String {
    let labels = std::iter::once(n.label.as_str())
        .chain(n.extra_labels.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(":");
    let props: Vec<String> = n
        .props
        .iter()
        .map(|(k, v)| format!("{k}={}", compact(v)))
        .collect();
    format!("(:{labels} {{id: {:?}}}) {}", n.id, props.join(" "))
}

fn edge_arrow(e: &StoredEdge, label: &str, id: &str) -> String {
    let props = if e.props.is_empty() {
        String::new()
    } else {
        format!(
            " {}",
            e.props
                .iter()
                .map(|(k, v)| format!("{k}={}", compact(v)))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    if e.from.0 == label && e.from.1 == id {
        format!("-[:{}{props}]->", e.rel_type)
    } else {
        format!("<-[:{}{props}]-", e.rel_type)
    }
}

fn compact(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cuts_at_a_character_with_an_ellipsis() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
        assert_eq!(cut("ééééé", 3), "éé…");
    }
}
