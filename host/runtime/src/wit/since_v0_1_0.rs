//! Bindings for contract 0.1.0 and their conversions to and from `infragraph_core`.

use infragraph_core as core;

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "ingestor",
    // Every import may await (fetch, a full emission channel) and may trap (a limit or
    // a contract breach stops the guest).
    imports: { default: async | trappable },
    exports: { default: async },
});

pub(crate) use exports::infragraph::plugin::provider::SyncError;
pub(crate) use infragraph::plugin::{emit, http, log, state, types};

pub(crate) mod batch;

impl From<types::Value> for core::Value {
    fn from(v: types::Value) -> Self {
        match v {
            types::Value::Null => core::Value::Null,
            types::Value::Boolean(b) => core::Value::Bool(b),
            types::Value::Int(i) => core::Value::Int(i),
            types::Value::Float(f) => core::Value::Float(f),
            types::Value::Text(s) => core::Value::Text(s.into()),
            types::Value::TextList(l) => core::Value::TextList(l),
            types::Value::IntList(l) => core::Value::IntList(l),
        }
    }
}

impl From<types::NodeRef> for core::NodeRef {
    fn from(r: types::NodeRef) -> Self {
        core::NodeRef {
            label: r.label,
            key: r.key,
            value: r.value,
        }
    }
}

impl From<core::ConfigValue> for types::ConfigValue {
    fn from(v: core::ConfigValue) -> Self {
        match v {
            core::ConfigValue::Text(s) => types::ConfigValue::Text(s),
            core::ConfigValue::TextList(l) => types::ConfigValue::TextList(l),
        }
    }
}

fn config_value(v: types::ConfigValue) -> core::ConfigValue {
    match v {
        types::ConfigValue::Text(s) => core::ConfigValue::Text(s),
        types::ConfigValue::TextList(l) => core::ConfigValue::TextList(l),
    }
}

fn value_type(t: types::ValueType) -> core::ValueType {
    match t {
        types::ValueType::Boolean => core::ValueType::Boolean,
        types::ValueType::Int => core::ValueType::Int,
        types::ValueType::Float => core::ValueType::Float,
        types::ValueType::Text => core::ValueType::Text,
        types::ValueType::TextList => core::ValueType::TextList,
        types::ValueType::IntList => core::ValueType::IntList,
    }
}

pub(super) fn properties(p: Vec<types::PropertyDef>) -> Vec<core::PropertyDef> {
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
        core::Manifest {
            name: m.name,
            version: m.version,
            description: m.description,
            schema: core::Schema {
                nodes: m
                    .schema
                    .nodes
                    .into_iter()
                    .map(|n| core::NodeKind {
                        label: n.label,
                        description: n.description,
                        extra_labels: n.extra_labels,
                        properties: properties(n.properties),
                    })
                    .collect(),
                edges: m
                    .schema
                    .edges
                    .into_iter()
                    .map(|e| core::EdgeKind {
                        rel_type: e.rel_type,
                        description: e.description,
                        from: e.from,
                        to: e.to,
                        properties: properties(e.properties),
                        access: None,
                    })
                    .collect(),
            },
            hosts: m.hosts,
            credentials: m
                .credentials
                .into_iter()
                .map(|c| core::Credential {
                    name: c.name,
                    env: c.env,
                    description: c.description,
                    hosts: c.hosts,
                    use_: match c.use_ {
                        types::CredentialUse::Header => core::CredentialUse::Header,
                        types::CredentialUse::Bearer => core::CredentialUse::Bearer,
                        types::CredentialUse::Basic(k) => core::CredentialUse::Basic(k),
                        types::CredentialUse::JsonBody => core::CredentialUse::JsonBody,
                        types::CredentialUse::FormBody => core::CredentialUse::FormBody,
                        types::CredentialUse::AwsSigv4(a) => {
                            core::CredentialUse::AwsSigv4(core::AwsSigning {
                                access_key_id: a.access_key_id,
                                region: a.region,
                                service: a.service,
                                session_token: a.session_token,
                            })
                        }
                    },
                    required: c.required,
                    only_when: None,
                })
                .collect(),
            config: m
                .config
                .into_iter()
                .map(|k| core::ConfigKey {
                    name: k.name,
                    description: k.description,
                    ty: match k.type_ {
                        types::ConfigType::Text => core::ConfigType::Text,
                        types::ConfigType::TextList => core::ConfigType::TextList,
                        types::ConfigType::Endpoint => core::ConfigType::Endpoint,
                    },
                    env: k.env,
                    required: k.required,
                    default: k.default.map(config_value),
                })
                .collect(),
        }
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
