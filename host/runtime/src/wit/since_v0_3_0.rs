//! Bindings for contract 0.3.0: 0.1.0's imports and 0.2.0's credentials and access
//! meanings (their bindings are reused), and a `provider` whose manifest may declare
//! `map` properties.

use infragraph_core as core;

use super::since_v0_2_0;

wasmtime::component::bindgen!({
    path: ["../../wit/since_v0.1.0", "../../wit/since_v0.2.0", "../../wit/since_v0.3.0"],
    world: "infragraph:plugin/ingestor@0.3.0",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "infragraph:plugin/types@0.1.0": super::since_v0_1_0::infragraph::plugin::types,
        "infragraph:plugin/http@0.1.0": super::since_v0_1_0::infragraph::plugin::http,
        "infragraph:plugin/emit@0.1.0": super::since_v0_1_0::infragraph::plugin::emit,
        "infragraph:plugin/log@0.1.0": super::since_v0_1_0::infragraph::plugin::log,
        "infragraph:plugin/state@0.1.0": super::since_v0_1_0::infragraph::plugin::state,
        "infragraph:plugin/types@0.2.0": super::since_v0_2_0::infragraph::plugin0_2_0::types,
    },
});

pub(crate) use exports::infragraph::plugin0_3_0::provider::SyncError;
use infragraph::plugin0_3_0::types;

fn value_type(t: types::ValueType) -> core::ValueType {
    match t {
        types::ValueType::Boolean => core::ValueType::Boolean,
        types::ValueType::Int => core::ValueType::Int,
        types::ValueType::Float => core::ValueType::Float,
        types::ValueType::Text => core::ValueType::Text,
        types::ValueType::TextList => core::ValueType::TextList,
        types::ValueType::IntList => core::ValueType::IntList,
        types::ValueType::Map => core::ValueType::Map,
    }
}

fn properties(p: Vec<types::PropertyDef>) -> Vec<core::PropertyDef> {
    p.into_iter()
        .map(|p| core::PropertyDef {
            name: p.name,
            ty: value_type(p.type_),
            description: p.description,
            indexed: p.indexed,
        })
        .collect()
}

impl From<types::Manifest> for core::Manifest {
    fn from(m: types::Manifest) -> Self {
        // Everything but the schema is 0.2.0's: converted as 0.2.0 converts it.
        let base = since_v0_2_0::types::Manifest {
            name: m.name,
            version: m.version,
            description: m.description,
            schema: since_v0_2_0::types::Schema {
                nodes: Vec::new(),
                edges: Vec::new(),
            },
            hosts: m.hosts,
            credentials: m.credentials,
            config: m.config,
        };
        let mut out = core::Manifest::from(base);
        out.schema.nodes = m
            .schema
            .nodes
            .into_iter()
            .map(|n| core::NodeKind {
                label: n.label,
                description: n.description,
                extra_labels: n.extra_labels,
                properties: properties(n.properties),
            })
            .collect();
        out.schema.edges = m
            .schema
            .edges
            .into_iter()
            .map(|e| core::EdgeKind {
                rel_type: e.rel_type,
                description: e.description,
                from: e.from,
                to: e.to,
                properties: properties(e.properties),
                access: e.access.map(since_v0_2_0::access),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_type_of_the_contract_has_its_core_type() {
        use types::ValueType as T;
        let all = [
            T::Boolean,
            T::Int,
            T::Float,
            T::Text,
            T::TextList,
            T::IntList,
            T::Map,
        ];
        let names: Vec<&str> = all.into_iter().map(|t| value_type(t).name()).collect();
        assert_eq!(
            names,
            [
                "boolean",
                "int",
                "float",
                "text",
                "text-list",
                "int-list",
                "map"
            ]
        );
    }
}
