//! A plugin's declared schema rendered for people: Markdown reference pages and Mermaid
//! diagrams, generated from the manifest, so a third-party plugin is documented as well
//! as a built-in and the text never drifts from what the plugin writes.

use std::fmt::Write as _;

use infragraph_core::{Manifest, PropertyDef};

/// The schema as Markdown: a section per label with its properties and relationships,
/// then the relationships that carry properties.
pub fn markdown(m: &Manifest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# `{}` graph schema\n\n{}\n", m.name, m.description);
    for n in &m.schema.nodes {
        let _ = writeln!(s, "## {}\n\n{}\n", n.label, n.description);
        if !n.extra_labels.is_empty() {
            let _ = writeln!(s, "Extra labels: {}\n", n.extra_labels.join(", "));
        }
        let _ = writeln!(s, "| property | type | description |\n|---|---|---|");
        let _ = writeln!(
            s,
            "| `id` (key) | text | unique among `{}` nodes |",
            n.label
        );
        props(&mut s, &n.properties);
        let _ = writeln!(
            s,
            "| `firstseen`, `lastupdated`, `_source`, `_scope` | | written by infragraph |"
        );
        let rels: Vec<_> = m
            .schema
            .edges
            .iter()
            .filter(|e| e.from == n.label || e.to == n.label)
            .collect();
        if !rels.is_empty() {
            let _ = writeln!(s, "\nRelationships:\n");
            for e in rels {
                let access = e
                    .access
                    .as_ref()
                    .map(|a| format!(" (access: {a})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "- `(:{})-[:{}]->(:{})`: {}{access}",
                    e.from, e.rel_type, e.to, e.description
                );
            }
        }
        let _ = writeln!(s);
    }
    access(&mut s, m);
    let with_props: Vec<_> = m
        .schema
        .edges
        .iter()
        .filter(|e| !e.properties.is_empty())
        .collect();
    if !with_props.is_empty() {
        let _ = writeln!(s, "## Relationship properties\n");
        for e in with_props {
            let _ = writeln!(
                s,
                "### `(:{})-[:{}]->(:{})`\n\n| property | type | description |\n|---|---|---|",
                e.from, e.rel_type, e.to
            );
            props(&mut s, &e.properties);
            let _ = writeln!(s);
        }
    }
    s
}

/// What each relationship kind means for `infragraph access`, when the plugin says.
fn access(s: &mut String, m: &Manifest) {
    let meaningful: Vec<_> = m
        .schema
        .edges
        .iter()
        .filter_map(|e| Some((e, e.access.as_ref()?)))
        .collect();
    if meaningful.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Access

What `infragraph access` follows: membership (the member has whatever \
         the group has), grant (a role or permissions on a scope), containment (what is \
         granted on a scope reaches what it holds), acting-as (whoever controls the start has \
         whatever the end has). Other relationships are facts it does not follow.\n\n\
         | relationship | access | what it grants |\n|---|---|---|"
    );
    for (e, a) in meaningful {
        let direction = if a.reversed {
            ", read end to start"
        } else {
            ""
        };
        let grants = if a.grants.is_empty() {
            String::new()
        } else {
            a.grants
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| `(:{})-[:{}]->(:{})` | {}{direction} | {grants} |",
            e.from,
            e.rel_type,
            e.to,
            a.kind.name()
        );
    }
    let _ = writeln!(s);
}

fn props(s: &mut String, props: &[PropertyDef]) {
    for p in props {
        let idx = if p.indexed { " (indexed)" } else { "" };
        let _ = writeln!(
            s,
            "| `{}`{idx} | {} | {} |",
            p.name,
            p.ty,
            p.description.replace('|', "\\|")
        );
    }
}

/// The schema as a Mermaid flowchart: every relationship type between its labels, and
/// the labels no relationship touches.
pub fn mermaid(m: &Manifest) -> String {
    let mut s = String::from("graph LR\n");
    for e in &m.schema.edges {
        // Access meaning in the arrow's text, so a diagram shows which paths grant access.
        let text = match &e.access {
            Some(a) => format!("\"{} ({})\"", e.rel_type, a.kind.name()),
            None => e.rel_type.clone(),
        };
        let _ = writeln!(
            s,
            "    {}({}) -- {text} --> {}({})",
            e.from, e.from, e.to, e.to
        );
    }
    let linked = |l: &str| m.schema.edges.iter().any(|e| e.from == l || e.to == l);
    for n in m.schema.nodes.iter().filter(|n| !linked(&n.label)) {
        let _ = writeln!(s, "    {}({})", n.label, n.label);
    }
    s
}
