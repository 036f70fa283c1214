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
                let _ = writeln!(
                    s,
                    "- `(:{})-[:{}]->(:{})`: {}",
                    e.from, e.rel_type, e.to, e.description
                );
            }
        }
        let _ = writeln!(s);
    }
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
        let _ = writeln!(
            s,
            "    {}({}) -- {} --> {}({})",
            e.from, e.from, e.rel_type, e.to, e.to
        );
    }
    let linked = |l: &str| m.schema.edges.iter().any(|e| e.from == l || e.to == l);
    for n in m.schema.nodes.iter().filter(|n| !linked(&n.label)) {
        let _ = writeln!(s, "    {}({})", n.label, n.label);
    }
    s
}
