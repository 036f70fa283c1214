//! What a transform produces: plain nodes and edges, emitted through the context only
//! afterwards, so that every `to_records` is a pure function tested natively.

use std::collections::BTreeMap;

// Hashed once per edge end and node: SipHash's resistance to chosen keys costs more
// than these sets' lookups themselves, and foldhash's per-process seed is enough
// against ids an API might choose (issue 18).
use foldhash::{HashMap, HashSet};

use infragraph_sdk::{Context, Value};

/// A node to emit: its label, its `id` and its properties in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub label: &'static str,
    pub id: String,
    pub props: Vec<(&'static str, Value)>,
}

impl Node {
    /// Adds property `name`; `None` becomes a null, which writes nothing.
    pub fn prop(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Node {
        self.props.push((name, value.into()));
        self
    }
}

/// A relationship between two nodes, each named by (label, id), with its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub rel: &'static str,
    pub from: (&'static str, String),
    pub to: (&'static str, String),
    pub props: Vec<(&'static str, Value)>,
}

impl Edge {
    /// Adds property `name`; `None` becomes a null, which writes nothing.
    pub fn prop(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Edge {
        self.props.push((name, value.into()));
        self
    }
}

/// The records of one or more listings.
#[derive(Debug, Default)]
pub struct Records {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// The id of every node added, by label, so that an item served twice (a listing
    /// that shifted between two pages) is written once. By label, so that a look-up
    /// takes the id as it is rather than a copy of it.
    seen: HashMap<&'static str, HashSet<String>>,
    /// Nodes added per label, for the summary.
    counts: BTreeMap<&'static str, usize>,
    /// The ends of edges not (yet) added as nodes, by (type, label), so that an end no
    /// listing carried can be named in the summary rather than dropped by the host
    /// unexplained.
    ends: HashMap<(&'static str, &'static str), HashSet<String>>,
}

/// Edges of one type whose end of one label was in no listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlinked {
    pub rel: &'static str,
    pub label: &'static str,
    /// The ids no listing carried, sorted.
    pub ids: Vec<String>,
}

impl std::fmt::Display for Unlinked {
    /// e.g. `2 ScalewayVolume named by MOUNTS edges are in no listing, not linked: a, b`,
    /// at most five ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<&str> = self.ids.iter().take(5).map(String::as_str).collect();
        let more = match self.ids.len().saturating_sub(shown.len()) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        write!(
            f,
            "{} {} named by {} edges are in no listing, not linked: {}{more}",
            self.ids.len(),
            self.label,
            self.rel,
            shown.join(", ")
        )
    }
}

impl Records {
    /// A new node, or `None` when this (label, id) was already added.
    pub fn node(&mut self, label: &'static str, id: &str) -> Option<&mut Node> {
        if self.has(label, id) {
            return None;
        }
        self.seen.entry(label).or_default().insert(id.to_owned());
        *self.counts.entry(label).or_default() += 1;
        self.nodes.push(Node {
            label,
            id: id.to_owned(),
            props: Vec::new(),
        });
        self.nodes.last_mut()
    }

    /// `(from)-[:rel]->(to)`, to which properties may be added; an empty id on either
    /// end (a field the API left blank) names no node, so no edge is recorded.
    pub fn edge(
        &mut self,
        rel: &'static str,
        from: (&'static str, &str),
        to: (&'static str, &str),
    ) -> Option<&mut Edge> {
        if from.1.is_empty() || to.1.is_empty() {
            return None;
        }
        for (label, id) in [from, to] {
            if !self.has(label, id) {
                let ends = self.ends.entry((rel, label)).or_default();
                if !ends.contains(id) {
                    ends.insert(id.to_owned());
                }
            }
        }
        self.edges.push(Edge {
            rel,
            from: (from.0, from.1.to_owned()),
            to: (to.0, to.1.to_owned()),
            props: Vec::new(),
        });
        self.edges.last_mut()
    }

    /// Whether a node `label` `id` was added.
    fn has(&self, label: &str, id: &str) -> bool {
        self.seen.get(label).is_some_and(|ids| ids.contains(id))
    }

    /// How many nodes of `label` were added, emitted or not.
    pub fn count(&self, label: &str) -> usize {
        self.counts.get(label).copied().unwrap_or(0)
    }

    /// The edge ends that named a node no listing carried, by (type, label). Only
    /// meaningful once every listing has run: an end seen later is not counted.
    pub fn unlinked(&self) -> Vec<Unlinked> {
        let mut by: BTreeMap<(&'static str, &'static str), Vec<String>> = BTreeMap::new();
        for (&(rel, label), ids) in &self.ends {
            for id in ids {
                if !self.has(label, id) {
                    by.entry((rel, label)).or_default().push(id.clone());
                }
            }
        }
        by.into_iter()
            .map(|((rel, label), mut ids)| {
                ids.sort();
                Unlinked { rel, label, ids }
            })
            .collect()
    }

    /// Buffers everything in the context (which sends it in batches) and empties `self`,
    /// keeping the ids seen.
    pub fn emit(&mut self, cx: &mut Context) {
        for n in self.nodes.drain(..) {
            let mut b = cx.node(n.label, n.id);
            for (k, v) in n.props {
                b = b.prop(k, v);
            }
            b.emit();
        }
        for e in self.edges.drain(..) {
            let mut b = cx.edge(e.rel, (e.from.0, "id", e.from.1), (e.to.0, "id", e.to.1));
            for (k, v) in e.props {
                b = b.prop(k, v);
            }
            b.emit();
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// This crate's directory: at run time when the test runner says (a target dir
    /// shared between checkouts may run a test binary compiled in another one).
    fn manifest_dir() -> String {
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
    }

    /// A sample response from `tests/fixtures/scaleway/`.
    pub fn sample(file: &str) -> String {
        let path = format!("{}/../../tests/fixtures/scaleway/{file}", manifest_dir());
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every interaction of a recording in `tests/fixtures/scaleway/recorded/`, as
    /// (request URL, parsed response body).
    pub fn recorded(file: &str) -> Vec<(String, serde_json::Value)> {
        let path = format!(
            "{}/../../tests/fixtures/scaleway/recorded/{file}",
            manifest_dir()
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let body = serde_json::from_str(i["body"].as_str().unwrap()).unwrap();
                (i["url"].as_str().unwrap().to_owned(), body)
            })
            .collect()
    }

    impl Records {
        /// The node (label, id); panics naming it when absent.
        pub fn get(&self, label: &str, id: &str) -> &Node {
            self.nodes
                .iter()
                .find(|n| n.label == label && n.id == id)
                .unwrap_or_else(|| panic!("no {label} {id:?} among {:?}", self.nodes))
        }

        /// Every edge as (type, from id, to id), sorted.
        pub fn edge_ids(&self) -> Vec<(&str, &str, &str)> {
            let mut v: Vec<_> = self
                .edges
                .iter()
                .map(|e| (e.rel, e.from.1.as_str(), e.to.1.as_str()))
                .collect();
            v.sort();
            v
        }
    }

    impl Node {
        /// The value of `name`, `Null` when not set.
        pub fn value(&self, name: &str) -> Value {
            self.props
                .iter()
                .find(|(k, _)| *k == name)
                .map_or(Value::Null, |(_, v)| v.clone())
        }
    }

    #[test]
    fn a_node_is_recorded_once_and_blank_ends_make_no_edge() {
        let mut r = Records::default();
        r.node("A", "1").unwrap().prop("x", 1);
        assert!(r.node("A", "1").is_none());
        assert!(r.node("B", "1").is_some());
        r.edge("R", ("A", "1"), ("B", ""));
        r.edge("R", ("A", "1"), ("B", "1"));
        assert_eq!(r.nodes.len(), 2);
        assert_eq!((r.count("A"), r.count("B"), r.count("C")), (1, 1, 0));
        assert_eq!(r.edge_ids(), [("R", "1", "1")]);
    }

    #[test]
    fn an_edge_end_no_listing_carried_is_named() {
        let mut r = Records::default();
        r.node("S", "s1");
        r.edge("MOUNTS", ("S", "s1"), ("V", "v1"));
        r.edge("MOUNTS", ("S", "s1"), ("V", "v2"));
        r.edge("MOUNTS", ("S", "s9"), ("V", "v2"));
        // v1 is listed after the edge that names it: not unlinked.
        r.node("V", "v1");
        let unlinked = r.unlinked();
        assert_eq!(
            unlinked,
            [
                Unlinked {
                    rel: "MOUNTS",
                    label: "S",
                    ids: vec!["s9".into()]
                },
                Unlinked {
                    rel: "MOUNTS",
                    label: "V",
                    ids: vec!["v2".into()]
                },
            ]
        );
        assert_eq!(
            unlinked[1].to_string(),
            "1 V named by MOUNTS edges are in no listing, not linked: v2"
        );
    }
}
