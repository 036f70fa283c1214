//! A plugin as built before contract 0.3.0: wit-bindgen against `wit/since_v0.1.0` and
//! `wit/since_v0.2.0` alone, no SDK (the SDK follows the current contract). It declares a
//! user, a group and a membership with its 0.2.0 access meaning, and emits one of each,
//! so that a test can show a host speaking later contracts loads it, syncs it, and keeps
//! what its relationships mean for access.

wit_bindgen::generate!({
    path: ["../../../wit/since_v0.1.0", "../../../wit/since_v0.2.0"],
    world: "infragraph:plugin/ingestor@0.2.0",
    generate_all,
});

use exports::infragraph::plugin0_2_0::provider::{
    ConfigValue, Guest, PluginManifest, Summary, SyncError,
};
use infragraph::plugin0_1_0::emit::{self, EdgeBatch, NodeBatch, Texts};
use infragraph::plugin0_1_0::types::{NodeKind, NodeRef};
use infragraph::plugin0_2_0::types::{Access, AccessKind, EdgeKind, Schema};

struct OldTwo;

fn node(label: &str) -> NodeKind {
    NodeKind {
        label: label.into(),
        description: format!("A {label}"),
        extra_labels: vec![],
        properties: vec![],
    }
}

impl Guest for OldTwo {
    fn manifest() -> PluginManifest {
        PluginManifest {
            name: "legacy-two".into(),
            version: "0.2.0".into(),
            description: "Built against contract 0.2.0".into(),
            schema: Schema {
                nodes: vec![node("LegacyTwoUser"), node("LegacyTwoGroup")],
                edges: vec![EdgeKind {
                    rel_type: "MEMBER_OF".into(),
                    description: "Membership".into(),
                    from: "LegacyTwoUser".into(),
                    to: "LegacyTwoGroup".into(),
                    properties: vec![],
                    access: Some(Access {
                        kind: AccessKind::Membership,
                        reversed: false,
                        grants: vec![],
                    }),
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
            label: "LegacyTwoGroup".into(),
            key: "id".into(),
            value: "g1".into(),
        });
        for (label, id) in [("LegacyTwoGroup", "g1"), ("LegacyTwoUser", "u1")] {
            emit::emit_nodes(&NodeBatch {
                label: label.into(),
                ids: one(id),
                columns: vec![],
            });
        }
        emit::emit_edges(&EdgeBatch {
            rel_type: "MEMBER_OF".into(),
            from_label: "LegacyTwoUser".into(),
            from_key: "id".into(),
            to_label: "LegacyTwoGroup".into(),
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

// Export names such as `infragraph:plugin/provider@0.2.0#sync` break a native linker's
// version script; only the component needs them.
#[cfg(target_arch = "wasm32")]
export!(OldTwo);

#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    let _ = (<OldTwo as Guest>::manifest, <OldTwo as Guest>::sync);
};
