//! Bindings for contract 0.2.0: 0.1.0's imports (their bindings are reused, so the host
//! implements each interface once) and a `provider` whose manifest may give relationship
//! kinds an access meaning.

use infragraph_core as core;

use super::since_v0_1_0;

wasmtime::component::bindgen!({
    path: ["../../wit/since_v0.1.0", "../../wit/since_v0.2.0"],
    world: "infragraph:plugin/ingestor@0.2.0",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "infragraph:plugin/types@0.1.0": super::since_v0_1_0::infragraph::plugin::types,
        "infragraph:plugin/http@0.1.0": super::since_v0_1_0::infragraph::plugin::http,
        "infragraph:plugin/emit@0.1.0": super::since_v0_1_0::infragraph::plugin::emit,
        "infragraph:plugin/log@0.1.0": super::since_v0_1_0::infragraph::plugin::log,
        "infragraph:plugin/state@0.1.0": super::since_v0_1_0::infragraph::plugin::state,
    },
});

pub(crate) use exports::infragraph::plugin0_2_0::provider::SyncError;
pub(crate) use infragraph::plugin0_2_0::types;

pub(super) fn access(a: types::Access) -> core::Access {
    core::Access {
        kind: match a.kind {
            types::AccessKind::Membership => core::AccessKind::Membership,
            types::AccessKind::Grant => core::AccessKind::Grant,
            types::AccessKind::Containment => core::AccessKind::Containment,
            types::AccessKind::ActingAs => core::AccessKind::ActingAs,
        },
        reversed: a.reversed,
        grants: a.grants,
    }
}

impl From<types::Manifest> for core::Manifest {
    fn from(m: types::Manifest) -> Self {
        // Everything but the edge kinds and the credentials' conditions is 0.1.0's:
        // converted as 0.1.0 converts it.
        let conditions: Vec<Option<(String, String)>> = m
            .credentials
            .iter()
            .map(|c| {
                c.only_when
                    .as_ref()
                    .map(|s| (s.key.clone(), s.value.clone()))
            })
            .collect();
        let credentials = m
            .credentials
            .into_iter()
            .map(|c| since_v0_1_0::types::Credential {
                name: c.name,
                env: c.env,
                description: c.description,
                hosts: c.hosts,
                use_: c.use_,
                required: c.required,
            })
            .collect();
        let base = since_v0_1_0::types::Manifest {
            name: m.name,
            version: m.version,
            description: m.description,
            schema: since_v0_1_0::types::Schema {
                nodes: m.schema.nodes,
                edges: Vec::new(),
            },
            hosts: m.hosts,
            credentials,
            config: m.config,
        };
        let mut out = core::Manifest::from(base);
        for (c, when) in out.credentials.iter_mut().zip(conditions) {
            c.only_when = when;
        }
        out.schema.edges = m
            .schema
            .edges
            .into_iter()
            .map(|e| core::EdgeKind {
                rel_type: e.rel_type,
                description: e.description,
                from: e.from,
                to: e.to,
                properties: since_v0_1_0::properties(e.properties),
                access: e.access.map(access),
            })
            .collect();
        out
    }
}

impl SyncError {
    /// The error's kind, as the contract names it, and its text.
    pub(crate) fn parts(&self) -> (&'static str, &str) {
        match self {
            SyncError::Config(m) => ("config", m),
            SyncError::Auth(m) => ("auth", m),
            SyncError::Provider(m) => ("provider", m),
            SyncError::Fetch(m) => ("fetch", m),
            SyncError::Other(m) => ("other", m),
        }
    }
}
