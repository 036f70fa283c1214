//! The statements a plugin's first sync will run, parsed by the server ahead of their
//! first use, while the plugin is still reading its provider.
//!
//! Labels and relationship types cannot be parameters, so the sink runs one statement
//! text per label and per relationship kind, and a server parses and plans each text the
//! first time it sees it in a database. On ArcadeDB 26.10 that first time cost 10-16 ms
//! more than the next (measured on the Scaleway estate: its 16 small relationship
//! batches took 18 ms each into a fresh database and 2 ms each into one that had seen
//! the same texts), some 0.3-0.5 s of a 2.5 s first sync, all of it on the run's one
//! writing connection. An `EXPLAIN` of a text plans it without running it and fills the
//! same cache: the statement that follows is as fast as a second run (measured 1.5-2.8
//! ms, against 4-7 ms cold). Neo4j keeps a plan cache by statement text too (not tested
//! here: see the README's Neo4j section).
//!
//! So while a run's plugin fetches (the engine calls `GraphSink::warm_up` beside it), the
//! sink sends an `EXPLAIN` of each text the plugin's schema can produce on a first sync:
//! the node writes of each label, the relationship writes of each declared kind (from
//! either end, since which end a batch is written from depends on its rows), and the
//! survey of each label and (type, start label). Nodes first, since they are written
//! first. It runs on a connection of its own while the run fetches and writes nodes, on
//! a core of the server that writing nodes leaves idle; it writes nothing, explains each
//! text once per sink, and stops at the next text once the run ends. A failure only ends
//! the warming, at `debug`: each statement is then parsed when it first runs.

use std::sync::atomic::{AtomicBool, Ordering};

use infragraph_core::Manifest;
use neo4rs::query;

use crate::cypher::{self, Among, Anchor};
use crate::error::Error;
use crate::schema::PluginSchema;
use crate::sink::Neo4jSink;

/// The statements a first sync of a plugin with `schema` can run, in the order it runs
/// them: node writes, relationship writes, the survey before cleanup.
pub(crate) fn statements(schema: &PluginSchema) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut labels: Vec<(&String, &Vec<String>)> = schema
        .nodes
        .iter()
        .map(|(label, (extra, _))| (label, extra))
        .collect();
    labels.sort();
    for (label, extra) in &labels {
        out.extend(cypher::merge_nodes(label, extra)?);
    }
    let mut kinds: Vec<&(String, String, String)> = schema.edges.keys().collect();
    kinds.sort();
    for anchor in [Anchor::To, Anchor::From] {
        for (rel, from, to) in &kinds {
            out.push(cypher::write_edges(rel, (from, "id"), (to, "id"), anchor)?);
        }
    }
    for l in schema.labels() {
        out.push(cypher::survey(&Among::nodes(l)?, true));
    }
    for t in schema.rel_types() {
        for from in schema.start_labels(t) {
            out.push(cypher::survey(&Among::edges(t, from, &[])?, true));
        }
    }
    Ok(out)
}

impl Neo4jSink {
    /// Has the server plan, with `EXPLAIN`, each statement a first sync of `manifest`'s
    /// plugin can run that this sink has not explained yet, until `stop` is set; returns
    /// how many it explained. Writes nothing. The engine runs it beside the plugin
    /// (`GraphSink::warm_up`); the plugin must be prepared.
    pub async fn explain_ahead(
        &self,
        manifest: &Manifest,
        stop: &AtomicBool,
    ) -> Result<usize, Error> {
        let all = statements(&self.schema_of(&manifest.name)?)?;
        let fresh: Vec<String> = {
            let mut seen = self.warmed.lock().unwrap_or_else(|e| e.into_inner());
            all.into_iter().filter(|s| seen.insert(s.clone())).collect()
        };
        for (done, s) in fresh.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                self.unwarmed(&fresh[done..]);
                return Ok(done);
            }
            // Every parameter the texts name, so that no server refuses to plan one for
            // a parameter missing.
            let q = query(&format!("EXPLAIN {s}"))
                .param("rows", Vec::<String>::new())
                .param("ids", Vec::<String>::new())
                .param("tag", 0i64)
                .param("plugin", "")
                .param("scope", "");
            if let Err(e) = self.graph.run(q).await {
                self.unwarmed(&fresh[done..]);
                return Err(Error::driver(&self.uri, "explaining statements ahead", e));
            }
        }
        Ok(fresh.len())
    }

    /// Forgets `statements` as explained: the next run explains them, or they are parsed
    /// when they first run.
    fn unwarmed(&self, statements: &[String]) {
        let mut seen = self.warmed.lock().unwrap_or_else(|e| e.into_inner());
        for s in statements {
            seen.remove(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn schema() -> PluginSchema {
        let kind = |t: &str, f: &str, to: &str| ((t.into(), f.into(), to.into()), HashSet::new());
        PluginSchema {
            nodes: HashMap::from([
                ("DemoOrg".into(), (vec![], HashSet::new())),
                ("DemoVm".into(), (vec!["DemoAsset".into()], HashSet::new())),
            ]),
            edges: HashMap::from([
                kind("RESOURCE", "DemoOrg", "DemoVm"),
                kind("PEERS_WITH", "DemoVm", "DemoVm"),
                kind("RESOURCE", "DemoVm", "DemoVm"),
            ]),
        }
    }

    /// The `$name`s a statement uses.
    fn parameters(s: &str) -> HashSet<String> {
        s.split('$')
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_statement_of_a_first_sync_once_in_the_order_it_runs() {
        let s = schema();
        let got = statements(&s).unwrap();
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "each text once");

        let mut nodes = cypher::merge_nodes("DemoOrg", &[]).unwrap();
        nodes.extend(cypher::merge_nodes("DemoVm", &["DemoAsset".into()]).unwrap());
        let mut edges = Vec::new();
        for (t, f, to) in [
            ("PEERS_WITH", "DemoVm", "DemoVm"),
            ("RESOURCE", "DemoOrg", "DemoVm"),
            ("RESOURCE", "DemoVm", "DemoVm"),
        ] {
            for anchor in [Anchor::From, Anchor::To] {
                edges.push(cypher::write_edges(t, (f, "id"), (to, "id"), anchor).unwrap());
            }
        }
        let survey = [
            cypher::survey(&Among::nodes("DemoOrg").unwrap(), true),
            cypher::survey(&Among::nodes("DemoVm").unwrap(), true),
            cypher::survey(&Among::edges("PEERS_WITH", "DemoVm", &[]).unwrap(), true),
            cypher::survey(&Among::edges("RESOURCE", "DemoOrg", &[]).unwrap(), true),
            cypher::survey(&Among::edges("RESOURCE", "DemoVm", &[]).unwrap(), true),
        ];
        assert_eq!(got.len(), nodes.len() + edges.len() + survey.len());
        let at = |s: &String| got.iter().position(|g| g == s).expect("warmed");
        let last_node = nodes.iter().map(at).max().unwrap();
        let first_edge = edges.iter().map(at).min().unwrap();
        let last_edge = edges.iter().map(at).max().unwrap();
        let first_survey = survey.iter().map(at).min().unwrap();
        assert!(last_node < first_edge, "nodes are written first");
        assert!(last_edge < first_survey, "the survey comes last");
    }

    #[test]
    fn explain_binds_every_parameter_a_statement_names() {
        let bound: HashSet<String> = ["rows", "ids", "tag", "plugin", "scope"]
            .map(String::from)
            .into();
        for s in statements(&schema()).unwrap() {
            let missing: Vec<_> = parameters(&s).difference(&bound).cloned().collect();
            assert!(missing.is_empty(), "{missing:?} unbound in {s}");
        }
    }
}
