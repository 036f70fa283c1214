//! `infragraph access`: who can reach what, printed as a table, CSV, JSON or a Mermaid
//! flowchart. The answers come from `infragraph_app::access`; this file only asks and
//! prints.

use std::process::ExitCode;

use infragraph_app::access::{self, AccessModel, Granted, Reach};
use infragraph_app::{Graph, Settings};
use infragraph_core::GraphReader;
use serde_json::json;

use crate::args::{AccessArgs, AccessCommand, AccessFormat, graph_args};
use crate::store::{name_of, open, require_node};
use crate::table::{Format, OutputArgs, Table};

pub async fn run(settings: &Settings, cmd: AccessCommand) -> anyhow::Result<ExitCode> {
    let model = model(settings).await?;
    match cmd {
        AccessCommand::Who { label, id, ask } => {
            let graph = open(settings, graph_args(&ask.store, &ask.neo4j)).await?;
            let id = resolve(&graph, &label, &id).await?;
            let reaches = access::who(&graph, &model, &label, &id, ask.role.as_deref()).await?;
            print_reaches(&reaches, &ask, "PRINCIPAL")?;
            if reaches.is_empty() && ask.format == AccessFormat::Table && !ask.json {
                out!("no principal reaches {label} {id}{}", role_note(&ask));
            }
        }
        AccessCommand::What { label, id, ask } => {
            let graph = open(settings, graph_args(&ask.store, &ask.neo4j)).await?;
            let id = resolve(&graph, &label, &id).await?;
            let reaches = access::what(&graph, &model, &label, &id, ask.role.as_deref()).await?;
            print_reaches(&reaches, &ask, "REACHES")?;
            if reaches.is_empty() && ask.format == AccessFormat::Table && !ask.json {
                out!("{label} {id} reaches nothing{}", role_note(&ask));
            }
        }
        AccessCommand::Path {
            from_label,
            from_id,
            to_label,
            to_id,
            ask,
        } => {
            let graph = open(settings, graph_args(&ask.store, &ask.neo4j)).await?;
            let from_id = resolve(&graph, &from_label, &from_id).await?;
            let to_id = resolve(&graph, &to_label, &to_id).await?;
            let from = (from_label.as_str(), from_id.as_str());
            let to = (to_label.as_str(), to_id.as_str());
            let grants = access::paths(&graph, &model, from, to, ask.role.as_deref()).await?;
            print_paths(&grants, &ask)?;
            if grants.is_empty() && ask.format == AccessFormat::Table && !ask.json {
                out!(
                    "{from_label} {from_id} has no access path to {to_label} {to_id}{} \
                     (`infragraph query path` shows how they are connected otherwise)",
                    role_note(&ask)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The id of the node of `label` given as `given`: its id, or else its `name` when one
/// node alone has that name (`ResourceGroup rg-web` rather than the group's whole ARM
/// path). Several nodes of that name are an error listing their ids.
async fn resolve(graph: &Graph, label: &str, given: &str) -> anyhow::Result<String> {
    let by_id = [("id".to_string(), given.to_string())];
    if !graph.nodes(label, &by_id, 1).await?.is_empty() {
        return Ok(given.to_string());
    }
    let by_name = [("name".to_string(), given.to_string())];
    let named = graph.nodes(label, &by_name, 11).await?;
    match named.as_slice() {
        [] => {
            require_node(graph, label, given).await?;
            Ok(given.to_string())
        }
        [one] => {
            tracing::info!(label, name = given, id = %one.id, "matched by name");
            Ok(one.id.clone())
        }
        several => {
            let ids: Vec<&str> = several.iter().take(10).map(|n| n.id.as_str()).collect();
            anyhow::bail!(
                "{} {label} nodes are named {given:?}; give one by its id: {}",
                if several.len() > 10 {
                    "over 10".to_string()
                } else {
                    several.len().to_string()
                },
                ids.join(", ")
            )
        }
    }
}

/// The access meaning every installed plugin declares, and the people links'.
async fn model(settings: &Settings) -> anyhow::Result<AccessModel> {
    let model = AccessModel::installed(settings).await?;
    if model.is_empty() {
        anyhow::bail!(
            "no installed plugin says what its relationships mean for access (contract \
             0.2.0 lets a plugin declare it; `infragraph plugins list` shows each one's)"
        );
    }
    Ok(model)
}

fn role_note(ask: &AccessArgs) -> String {
    ask.role
        .as_ref()
        .map(|r| format!(" with role {r}"))
        .unwrap_or_default()
}

fn output(ask: &AccessArgs) -> OutputArgs {
    let format = match (ask.json, ask.format) {
        (true, _) | (_, AccessFormat::Json) => Format::Json,
        (_, AccessFormat::Csv) => Format::Csv,
        _ => Format::Table,
    };
    OutputArgs::new(format, ask.wide)
}

fn wants_json(ask: &AccessArgs) -> bool {
    ask.json || ask.format == AccessFormat::Json
}

/// One row per (node, role): who or what, the role, how many hops, and the path.
fn print_reaches(reaches: &[Reach], ask: &AccessArgs, first: &str) -> anyhow::Result<()> {
    if wants_json(ask) {
        out!("{}", serde_json::to_string_pretty(reaches)?);
        return Ok(());
    }
    if ask.format == AccessFormat::Mermaid {
        let paths = reaches.iter().flat_map(|r| {
            r.grants
                .iter()
                .map(|g| (g.role.as_str(), g.path.as_slice()))
        });
        out_raw!("{}", access::mermaid(paths));
        return Ok(());
    }
    let mut table = Table::new(&[first, "ID", "NAME", "ROLE", "HOPS", "PATH"])
        .keep_whole(&[first, "ID", "ROLE", "HOPS"]);
    for r in reaches {
        for g in &r.grants {
            table.push(vec![
                r.node.label.clone(),
                r.node.id.clone(),
                name_of(&r.node),
                g.role.clone(),
                (g.path.len().saturating_sub(1)).to_string(),
                access::path_text(&g.path),
            ]);
        }
    }
    table.print(&output(ask))
}

/// One row per role, each with its path; JSON keeps every relationship's properties.
fn print_paths(grants: &[Granted], ask: &AccessArgs) -> anyhow::Result<()> {
    if wants_json(ask) {
        let doc: Vec<_> = grants
            .iter()
            .map(|g| json!({ "role": g.role, "hops": g.path.len().saturating_sub(1), "path": g.path }))
            .collect();
        out!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ask.format == AccessFormat::Mermaid {
        let paths = grants.iter().map(|g| (g.role.as_str(), g.path.as_slice()));
        out_raw!("{}", access::mermaid(paths));
        return Ok(());
    }
    let mut table =
        Table::new(&["ROLE", "HOPS", "PATH", "GRANTED BY"]).keep_whole(&["ROLE", "HOPS"]);
    for g in grants {
        // The grant's own properties: the relationship naming the role.
        let granted_by = g
            .path
            .iter()
            .filter_map(|s| s.via.as_ref())
            .find(|e| access::names_role(e, &g.role))
            .map(|e| {
                let props: Vec<String> = e
                    .props
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map(str::to_string).unwrap_or(v.to_string())
                        )
                    })
                    .collect();
                format!("{} {{{}}}", e.rel_type, props.join(", "))
            })
            .unwrap_or_default();
        table.push(vec![
            g.role.clone(),
            g.path.len().saturating_sub(1).to_string(),
            access::path_text(&g.path),
            granted_by,
        ]);
    }
    table.print(&output(ask))
}
