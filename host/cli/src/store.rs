//! The commands that read or load the embedded store: `query`, `runs` (also from a
//! Neo4j server), `export`, `import`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use infragraph_sink_sqlite::{Direction, Store, StoredEdge, StoredNode};
use serde_json::{Value as Json, json};

use crate::args::{DirectionArg, ExportArgs, ExportFormat, ImportArgs, QueryCommand, RunsArgs};
use crate::settings::Settings;

pub fn query(settings: &Settings, cmd: QueryCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        QueryCommand::Nodes {
            label,
            filters,
            limit,
            store,
            json,
        } => {
            let store = settings.existing_store(&store.store)?;
            let filters = filters
                .iter()
                .map(|f| match f.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => bail!("--where takes PROPERTY=VALUE, got {f:?}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let nodes = store.nodes(&label, &filters, limit)?;
            if json {
                for n in &nodes {
                    writeln!(out, "{}", serde_json::to_string(n)?)?;
                }
            } else {
                for n in &nodes {
                    writeln!(out, "{}", node_line(n))?;
                }
                if nodes.is_empty() {
                    writeln!(out, "no {label} nodes match{}", hint_labels(&store, &label))?;
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
            json,
        } => {
            let store = settings.existing_store(&store.store)?;
            require_node(&store, &label, &id)?;
            let rows = store.neighbours(&label, &id, dir(direction), &types)?;
            for (edge, node) in &rows {
                if json {
                    writeln!(out, "{}", json!({ "relationship": edge, "node": node }))?;
                } else {
                    writeln!(
                        out,
                        "{}  {}",
                        edge_arrow(edge, &label, &id),
                        node_line(node)
                    )?;
                }
            }
            if rows.is_empty() && !json {
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
            json,
        } => {
            let store = settings.existing_store(&store.store)?;
            require_node(&store, &from_label, &from_id)?;
            require_node(&store, &to_label, &to_id)?;
            let from = (from_label.as_str(), from_id.as_str());
            let to = (to_label.as_str(), to_id.as_str());
            match store.shortest_path(from, to, max_depth, dir(direction))? {
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

pub async fn runs(settings: &Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let runs = match settings.neo4j_to_read(&args.neo4j) {
        Some(config) => {
            let sink = infragraph_sink_neo4j::Neo4jSink::connect(&config).await?;
            sink.runs(args.limit).await?
        }
        None => settings
            .existing_store(&args.store.store)?
            .runs(args.limit)?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let reports: Vec<Json> = runs
            .iter()
            .map(|r| serde_json::from_str(&r.report).unwrap_or(Json::Null))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "STARTED", "PLUGIN", "SCOPE", "STATUS", "NODES", "EDGES", "DELETED", "ERRORS",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for r in &runs {
        let report: Json = serde_json::from_str(&r.report).unwrap_or(Json::Null);
        let sum = |kind: &str, fields: &[&str]| -> u64 {
            let per_key = report[kind].as_object();
            per_key.map_or(0, |m| {
                m.values()
                    .flat_map(|c| fields.iter().map(|f| c[*f].as_u64().unwrap_or(0)))
                    .sum()
            })
        };
        let errors = report["errors"].as_array().map_or(String::new(), |e| {
            e.iter()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        });
        rows.push(vec![
            r.started_at.clone(),
            r.plugin.clone(),
            r.scope.clone().unwrap_or_else(|| "-".into()),
            r.status.to_string(),
            sum("nodes", &["created", "updated"]).to_string(),
            sum("edges", &["created", "updated"]).to_string(),
            (sum("nodes", &["deleted"]) + sum("edges", &["deleted"])).to_string(),
            errors,
        ]);
    }
    write!(out, "{}", crate::table::render(&rows))?;
    if runs.is_empty() {
        writeln!(out, "no runs yet")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let server = settings.neo4j_to_read(&args.neo4j);
    if server.is_some() && !matches!(args.format, ExportFormat::Jsonl) {
        bail!("a Neo4j server's graph exports as jsonl only (--format jsonl)");
    }
    let mut sink: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let stats = if let Some(config) = server {
        let neo4j = infragraph_sink_neo4j::Neo4jSink::connect(&config).await?;
        let e = neo4j.export_jsonl(&mut sink).await?;
        infragraph_sink_sqlite::ExportStats {
            nodes: e.nodes,
            relationships: e.relationships,
        }
    } else {
        let store = settings.existing_store(&args.store.store)?;
        match args.format {
            ExportFormat::Jsonl => store.export_jsonl(&mut sink)?,
            ExportFormat::Graphml => store.export_graphml(&mut sink)?,
            ExportFormat::Cypher => store.export_cypher(&mut sink)?,
        }
    };
    sink.flush()?;
    if let Some(path) = &args.output {
        eprintln!(
            "wrote {} nodes and {} relationships to {}",
            stats.nodes,
            stats.relationships,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let store = settings.open_store(&args.store.store)?;
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
        args.store.store.display()
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

fn require_node(store: &Store, label: &str, id: &str) -> anyhow::Result<()> {
    if store.nodes(label, &[("id", id)], 1)?.is_empty() {
        bail!(
            "no {label} node with id {id:?} in {}{}",
            store.path().display(),
            hint_labels(store, label)
        );
    }
    Ok(())
}

/// Names the labels the store has when `label` is not one of them: a typo is likelier
/// than an empty graph.
fn hint_labels(store: &Store, label: &str) -> String {
    match store.stats() {
        Ok(stats) if !stats.nodes.contains_key(label) => {
            let labels: Vec<_> = stats.nodes.keys().cloned().collect();
            if labels.is_empty() {
                " (the store is empty: run `infragraph sync <plugin>`)".into()
            } else {
                format!(" (labels in the store: {})", labels.join(", "))
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
