//! A plugin as built before contract 0.2.0: wit-bindgen against `wit/since_v0.1.0` alone,
//! no SDK (the SDK follows the current contract). It declares a user, a group and a
//! membership between them, and emits one of each, so that a test can show a host
//! speaking later contracts loads it, syncs it, and gives its relationships no access
//! meaning.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "ingestor",
});

use exports::infragraph::plugin::provider::{
    ConfigValue, Guest, PluginManifest, Summary, SyncError,
};
use infragraph::plugin::emit::{self, EdgeBatch, NodeBatch, Texts};
use infragraph::plugin::types::{EdgeKind, NodeKind, NodeRef, Schema};

struct Legacy;

fn node(label: &str) -> NodeKind {
    NodeKind {
        label: label.into(),
        description: format!("A {label}"),
        extra_labels: vec![],
        properties: vec![],
    }
}

impl Guest for Legacy {
    fn manifest() -> PluginManifest {
        PluginManifest {
            name: "legacy".into(),
            version: "0.1.0".into(),
            description: "Built against contract 0.1.0".into(),
            schema: Schema {
                nodes: vec![node("LegacyUser"), node("LegacyGroup")],
                edges: vec![EdgeKind {
                    rel_type: "MEMBER_OF".into(),
                    description: "Membership".into(),
                    from: "LegacyUser".into(),
                    to: "LegacyGroup".into(),
                    properties: vec![],
                }],
            },
            hosts: vec![],
            credentials: vec![],
            config: vec![],
        }
    }

    fn sync(_config: Vec<(String, ConfigValue)>) -> Result<Summary, SyncError> {
        let one = |s: &str| Texts {
            data: s.into(),
            ends: vec![s.len() as u32],
        };
        emit::declare_scope(&NodeRef {
            label: "LegacyGroup".into(),
            key: "id".into(),
            value: "g1".into(),
        });
        for (label, id) in [("LegacyGroup", "g1"), ("LegacyUser", "u1")] {
            emit::emit_nodes(&NodeBatch {
                label: label.into(),
                ids: one(id),
                columns: vec![],
            });
        }
        emit::emit_edges(&EdgeBatch {
            rel_type: "MEMBER_OF".into(),
            from_label: "LegacyUser".into(),
            from_key: "id".into(),
            to_label: "LegacyGroup".into(),
            to_key: "id".into(),
            from: one("u1"),
            to: one("g1"),
            columns: vec![],
        });
        Ok(Summary {
            message: "1 user, 1 group".into(),
        })
    }
}

// Export names such as `infragraph:plugin/provider@0.1.0#sync` break a native linker's
// version script; only the component needs them.
#[cfg(target_arch = "wasm32")]
export!(Legacy);

#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    let _ = (<Legacy as Guest>::manifest, <Legacy as Guest>::sync);
};
