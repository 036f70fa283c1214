//! What a transform produces: plain nodes and edges, emitted through the context only
//! afterwards, so that every `to_records` is a pure function tested natively.

use std::collections::{BTreeMap, HashSet};

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

/// A relationship between two nodes, each named by (label, id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub rel: &'static str,
    pub from: (&'static str, String),
    pub to: (&'static str, String),
}

/// The records of one or more listings.
#[derive(Debug, Default)]
pub struct Records {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// (label, id) of every node added, so that an item served twice (a listing that
    /// shifted between two pages) is written once.
    seen: HashSet<(&'static str, String)>,
    /// Nodes added per label, for the summary.
    counts: BTreeMap<&'static str, usize>,
}

impl Records {
    /// A new node, or `None` when this (label, id) was already added.
    pub fn node(&mut self, label: &'static str, id: &str) -> Option<&mut Node> {
        if !self.seen.insert((label, id.to_owned())) {
            return None;
        }
        *self.counts.entry(label).or_default() += 1;
        self.nodes.push(Node {
            label,
            id: id.to_owned(),
            props: Vec::new(),
        });
        self.nodes.last_mut()
    }

    /// `(from)-[:rel]->(to)`; an empty id on either end (a field the API left blank)
    /// names no node, so no edge is recorded.
    pub fn edge(
        &mut self,
        rel: &'static str,
        from: (&'static str, &str),
        to: (&'static str, &str),
    ) {
        if from.1.is_empty() || to.1.is_empty() {
            return;
        }
        self.edges.push(Edge {
            rel,
            from: (from.0, from.1.to_owned()),
            to: (to.0, to.1.to_owned()),
        });
    }

    /// How many nodes of `label` were added, emitted or not.
    pub fn count(&self, label: &str) -> usize {
        self.counts.get(label).copied().unwrap_or(0)
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
            cx.edge(e.rel, (e.from.0, "id", e.from.1), (e.to.0, "id", e.to.1))
                .emit();
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
}
