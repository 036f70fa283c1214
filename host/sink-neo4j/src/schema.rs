//! What a plugin's batches may name, from its manifest: the sink refuses a label, type or
//! property its plugin did not declare, so nothing but declared identifiers ever becomes
//! Cypher text.

use std::collections::{BTreeSet, HashMap, HashSet};

use infragraph_core::{CheckedSchema, EdgeBatch, Manifest, NodeBatch};

use crate::cypher;
use crate::error::{Error, ErrorKind};

/// One plugin's declared kinds.
#[derive(Debug, Clone)]
pub(crate) struct PluginSchema {
    /// label → (extra labels, properties)
    pub(crate) nodes: HashMap<String, (Vec<String>, HashSet<String>)>,
    /// (type, from, to) → properties
    pub(crate) edges: HashMap<(String, String, String), HashSet<String>>,
}

impl PluginSchema {
    /// Checks the manifest as the runtime does and keeps what batches are checked against.
    pub(crate) fn new(m: &Manifest) -> Result<PluginSchema, Error> {
        CheckedSchema::new(m).map_err(|e| Error::new(ErrorKind::Invalid, e.to_string()))?;
        let names = |props: &[infragraph_core::PropertyDef]| {
            props.iter().map(|p| p.name.clone()).collect::<HashSet<_>>()
        };
        Ok(PluginSchema {
            nodes: m
                .schema
                .nodes
                .iter()
                .map(|k| {
                    (
                        k.label.clone(),
                        (k.extra_labels.clone(), names(&k.properties)),
                    )
                })
                .collect(),
            edges: m
                .schema
                .edges
                .iter()
                .map(|k| {
                    (
                        (k.rel_type.clone(), k.from.clone(), k.to.clone()),
                        names(&k.properties),
                    )
                })
                .collect(),
        })
    }

    /// The statements that make writing this plugin's labels fast and safe: a uniqueness
    /// constraint on `id` and an index per property declared `indexed`; and away with the
    /// indexes on `lastupdated` earlier versions made (see [`cypher::drop_tag_indexes`]).
    pub(crate) fn schema_statements(&self, m: &Manifest) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for kind in &m.schema.nodes {
            out.push(cypher::id_constraint(&kind.label)?);
            out.extend(cypher::drop_tag_indexes(&kind.label)?);
            for p in kind.properties.iter().filter(|p| p.indexed) {
                out.push(cypher::property_index(&kind.label, &p.name)?);
            }
        }
        Ok(out)
    }

    /// Primary labels, sorted.
    pub(crate) fn labels(&self) -> BTreeSet<&str> {
        self.nodes.keys().map(String::as_str).collect()
    }

    /// Relationship types, sorted and without repeats.
    pub(crate) fn rel_types(&self) -> BTreeSet<&str> {
        self.edges.keys().map(|(t, _, _)| t.as_str()).collect()
    }

    /// The labels relationships of type `t` start from, sorted.
    pub(crate) fn start_labels(&self, t: &str) -> BTreeSet<&str> {
        self.edges
            .keys()
            .filter(|(rel, _, _)| rel == t)
            .map(|(_, from, _)| from.as_str())
            .collect()
    }

    /// Checks a node batch against the declaration.
    pub(crate) fn check_nodes(
        &self,
        plugin: &str,
        extra: &[String],
        b: &NodeBatch,
    ) -> Result<(), Error> {
        let invalid =
            |what: String| Error::new(ErrorKind::Invalid, format!("plugin {plugin:?}: {what}"));
        let Some((declared_extra, props)) = self.nodes.get(&b.label) else {
            return Err(invalid(format!("label {:?} is not in its schema", b.label)));
        };
        if let Some(e) = extra.iter().find(|e| !declared_extra.contains(e)) {
            return Err(invalid(format!(
                "extra label {e:?} is not declared for {:?}",
                b.label
            )));
        }
        if let Some(c) = b.columns.iter().find(|c| !props.contains(*c)) {
            return Err(invalid(format!(
                "property {c:?} is not declared for {:?}",
                b.label
            )));
        }
        Ok(())
    }

    /// Checks an edge batch against the declaration.
    pub(crate) fn check_edges(&self, plugin: &str, b: &EdgeBatch) -> Result<(), Error> {
        let invalid =
            |what: String| Error::new(ErrorKind::Invalid, format!("plugin {plugin:?}: {what}"));
        let name = format!("(:{})-[:{}]->(:{})", b.from_label, b.rel_type, b.to_label);
        let key = (b.rel_type.clone(), b.from_label.clone(), b.to_label.clone());
        let Some(props) = self.edges.get(&key) else {
            return Err(invalid(format!("{name} is not in its schema")));
        };
        for (label, k) in [(&b.from_label, &b.from_key), (&b.to_label, &b.to_key)] {
            // An end may be another plugin's label: then only its shape can be checked.
            let declared = self.nodes.get(label).is_none_or(|(_, p)| p.contains(k));
            if k != "id" && !declared {
                return Err(invalid(format!(
                    "{name}: {label} has no property {k:?} to match on"
                )));
            }
        }
        if let Some(c) = b.columns.iter().find(|c| !props.contains(*c)) {
            return Err(invalid(format!("{name}: property {c:?} is not declared")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use infragraph_core::{EdgeRow, NodeRow};
    use serde_json::json;

    use super::*;

    fn schema() -> PluginSchema {
        let m: Manifest = serde_json::from_value(json!({
            "name": "p", "version": "1", "description": "", "hosts": [], "credentials": [],
            "config": [],
            "schema": {
                "nodes": [{"label": "PUser", "description": "", "extra_labels": ["UserAccount"],
                           "properties": [{"name": "email", "type": "text", "description": "", "indexed": true}]},
                          {"label": "PGroup", "description": "", "extra_labels": [], "properties": []}],
                "edges": [{"rel_type": "MEMBER_OF", "description": "", "from": "PUser", "to": "PGroup",
                           "properties": []}]
            }
        }))
        .unwrap();
        let s = PluginSchema::new(&m).unwrap();
        let statements = s.schema_statements(&m).unwrap();
        assert_eq!(
            statements[..4],
            [
                "CREATE CONSTRAINT `infragraph_PUser_id` IF NOT EXISTS FOR (n:`PUser`) REQUIRE n.`id` IS UNIQUE",
                "DROP INDEX `infragraph_PUser_lastupdated` IF EXISTS",
                "DROP INDEX `infragraph_PUser_lastupdated_id` IF EXISTS",
                "CREATE INDEX `infragraph_PUser_email` IF NOT EXISTS FOR (n:`PUser`) ON (n.`email`)",
            ]
        );
        s
    }

    fn nodes(label: &str, columns: &[&str]) -> NodeBatch {
        NodeBatch {
            label: label.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![NodeRow {
                id: "x".into(),
                values: vec![],
            }],
        }
    }

    fn edges(rel: &str, from_key: &str) -> EdgeBatch {
        EdgeBatch {
            rel_type: rel.into(),
            from_label: "PUser".into(),
            from_key: from_key.into(),
            to_label: "PGroup".into(),
            to_key: "id".into(),
            columns: vec![],
            rows: vec![EdgeRow {
                from: "a".into(),
                to: "b".into(),
                values: vec![],
            }],
        }
    }

    #[test]
    fn only_declared_labels_types_and_properties_pass() {
        let s = schema();
        let extra = ["UserAccount".to_string()];
        assert!(
            s.check_nodes("p", &extra, &nodes("PUser", &["email"]))
                .is_ok()
        );
        let refused = [
            s.check_nodes("p", &[], &nodes("Other", &[])),
            s.check_nodes("p", &["Admin".into()], &nodes("PUser", &[])),
            s.check_nodes("p", &[], &nodes("PUser", &["password"])),
        ];
        for r in refused {
            let e = r.expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::Invalid);
            assert!(e.to_string().starts_with("plugin \"p\": "), "{e}");
        }
        assert!(s.check_edges("p", &edges("MEMBER_OF", "id")).is_ok());
        assert!(s.check_edges("p", &edges("MEMBER_OF", "email")).is_ok());
        assert!(s.check_edges("p", &edges("OWNS", "id")).is_err());
        assert!(s.check_edges("p", &edges("MEMBER_OF", "name")).is_err());
    }
}
