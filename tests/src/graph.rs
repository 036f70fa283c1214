//! A whole graph as comparable sets, read from a jsonl export, so a test can assert on
//! exactly what a sink holds whatever the sink.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

/// A node's (primary label, id).
pub type Key = (String, String);

/// An exported graph, keyed for assertions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// (primary label, id) → (all labels, properties including bookkeeping)
    pub nodes: BTreeMap<Key, (Vec<String>, Map<String, Json>)>,
    /// (type, start, end) → properties including bookkeeping
    pub edges: BTreeMap<(String, Key, Key), Map<String, Json>>,
}

impl Graph {
    /// Parses the jsonl line format (`apoc.export.json`) `infragraph export` writes.
    pub fn from_jsonl(jsonl: &str) -> Graph {
        let mut g = Graph::default();
        let key = |v: &Json| -> Key {
            let label = v["labels"][0].as_str().expect("a label");
            (
                label.into(),
                v["properties"]["id"].as_str().expect("an id").into(),
            )
        };
        for line in jsonl.lines() {
            let v: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let props = v["properties"].as_object().expect("properties").clone();
            match v["type"].as_str() {
                Some("node") => {
                    let labels = v["labels"].as_array().expect("labels");
                    let labels = labels
                        .iter()
                        .map(|l| l.as_str().expect("text").to_string())
                        .collect();
                    g.nodes.insert(key(&v), (labels, props));
                }
                Some("relationship") => {
                    let rel = v["label"].as_str().expect("a type").to_string();
                    g.edges
                        .insert((rel, key(&v["start"]), key(&v["end"])), props);
                }
                other => panic!("unexpected line type {other:?}"),
            }
        }
        g
    }

    /// This graph with every update tag (`firstseen`, `lastupdated`) replaced by its rank
    /// among the tags the graph holds, extra labels sorted, and map properties as their
    /// JSON text: what two sinks given the same writes must agree on, since each hands out
    /// tags of its own, a graph server returns labels in no particular order, and Neo4j
    /// keeps a map as its JSON text.
    pub fn normalized(&self) -> Graph {
        let tags: BTreeSet<i64> = self
            .nodes
            .values()
            .map(|(_, p)| p)
            .chain(self.edges.values())
            .flat_map(|p| ["firstseen", "lastupdated"].map(|k| p.get(k).and_then(Json::as_i64)))
            .flatten()
            .collect();
        let rank = |p: &Map<String, Json>| {
            let mut p = p.clone();
            for v in p.values_mut() {
                if v.is_object() {
                    *v = Json::String(v.to_string());
                }
            }
            for k in ["firstseen", "lastupdated"] {
                if let Some(t) = p.get(k).and_then(Json::as_i64) {
                    let r = tags.iter().position(|x| *x == t).unwrap_or(usize::MAX);
                    p.insert(k.into(), Json::from(r));
                }
            }
            p
        };
        Graph {
            nodes: self
                .nodes
                .iter()
                .map(|(k, (labels, p))| {
                    let mut labels = labels.clone();
                    labels[1..].sort();
                    (k.clone(), (labels, rank(p)))
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .map(|(k, p)| (k.clone(), rank(p)))
                .collect(),
        }
    }

    /// One line per node and relationship, so a failed comparison reads as a diff.
    pub fn lines(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.nodes {
            out.push_str(&format!("{k:?} {v:?}\n"));
        }
        for (k, v) in &self.edges {
            out.push_str(&format!("{k:?} {v:?}\n"));
        }
        out
    }

    /// The properties of node (label, id); panics naming it when absent.
    pub fn node(&self, label: &str, id: &str) -> &Map<String, Json> {
        let found = self.nodes.get(&(label.into(), id.into()));
        &found
            .unwrap_or_else(|| panic!("no {label} {id:?} in the graph"))
            .1
    }

    /// Whether node (label, id) exists.
    pub fn has(&self, label: &str, id: &str) -> bool {
        self.nodes.contains_key(&(label.into(), id.into()))
    }

    /// Nodes with this primary label.
    pub fn count(&self, label: &str) -> usize {
        self.nodes.keys().filter(|(l, _)| l == label).count()
    }

    /// Relationships of this type.
    pub fn edges_of(&self, rel: &str) -> usize {
        self.edges.keys().filter(|(r, _, _)| r == rel).count()
    }

    /// The set of relationships as (type, start id, end id), for compact assertions.
    pub fn edge_ids(&self) -> BTreeSet<(String, String, String)> {
        self.edges
            .keys()
            .map(|(r, s, e)| (r.clone(), s.1.clone(), e.1.clone()))
            .collect()
    }
}
