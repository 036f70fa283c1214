use serde::{Deserialize, Serialize};

use crate::ValueType;

/// What a plugin declares about itself: read before anything is granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// kebab-case, unique among installed plugins.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One paragraph for `plugins list`.
    pub description: String,
    /// Everything the plugin writes.
    pub schema: Schema,
    /// Hosts the plugin may fetch from over HTTPS; `*.` prefixes allow sub-domains.
    pub hosts: Vec<String>,
    /// Secrets it needs.
    pub credentials: Vec<Credential>,
    /// Settings it takes.
    pub config: Vec<ConfigKey>,
}

/// Names the host's own sources write under (`_source`, the run history): no plugin may
/// take one, or it could write, clean up or read the state of what the host wrote.
pub const HOST_SOURCES: &[&str] = &["people"];

/// Labels the host's own sources write: no plugin may declare one as its own, or it
/// would own them first and the host's run could not write them.
pub const HOST_LABELS: &[&str] = &["Person"];

impl Manifest {
    /// Why a plugin with this manifest may not load, when it takes a name or a label of
    /// the host's own sources ([`HOST_SOURCES`], [`HOST_LABELS`]).
    pub fn takes_host_names(&self) -> Option<String> {
        if HOST_SOURCES.contains(&self.name.as_str()) {
            return Some(format!(
                "the name {:?} is the host's own (it links people across providers); a \
                 plugin must be named otherwise",
                self.name
            ));
        }
        let label = self
            .schema
            .nodes
            .iter()
            .find(|n| HOST_LABELS.contains(&n.label.as_str()))?;
        Some(format!(
            "label {:?} is the host's own (people linked across providers); a plugin may \
             link to it, not declare it",
            label.label
        ))
    }
}

/// The node and edge kinds a plugin emits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Node kinds, one per label.
    pub nodes: Vec<NodeKind>,
    /// Edge kinds, one per (type, from, to).
    pub edges: Vec<EdgeKind>,
}

/// A node label: keyed by `id`, with typed properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeKind {
    /// PascalCase label.
    pub label: String,
    /// What the node stands for.
    pub description: String,
    /// Further labels every node of this kind carries.
    pub extra_labels: Vec<String>,
    /// Properties besides `id`.
    pub properties: Vec<PropertyDef>,
}

/// A relationship type between two labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeKind {
    /// SCREAMING_SNAKE_CASE type.
    pub rel_type: String,
    /// What the relationship means.
    pub description: String,
    /// Start label.
    pub from: String,
    /// End label.
    pub to: String,
    /// Properties of the relationship.
    pub properties: Vec<PropertyDef>,
    /// What it means for who can reach what (contract 0.2.0); `None`: nothing, the access
    /// questions do not follow it. Plugins built against 0.1.0 declare none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// The part a relationship kind plays in who can reach what. "Start" and "end" are the
/// relationship's own direction, or the other way round when `reversed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Membership, grant, containment or acting-as.
    pub kind: AccessKind,
    /// The relationship points against the kind's reading (group to member, scope to
    /// holder, child to scope, principal to key).
    #[serde(default)]
    pub reversed: bool,
    /// For a grant: the relationship's properties naming what it grants (a role, a list of
    /// permissions). Empty: the relationship is the grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
}

/// What a relationship kind means for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessKind {
    /// Start (a principal) is a member of end (a group) and has whatever end has;
    /// transitive.
    Membership,
    /// Start (a principal or group) holds a role or permissions on end (a scope or
    /// resource).
    Grant,
    /// Start (a scope) contains end (a scope or resource): grants on start reach end.
    Containment,
    /// Start (a key, an identity, a pipeline) acts as end (a principal or resource):
    /// whoever controls start has whatever end has.
    ActingAs,
}

impl AccessKind {
    /// Its name in manifests and docs: `membership`, `grant`, `containment`, `acting-as`.
    pub fn name(self) -> &'static str {
        match self {
            AccessKind::Membership => "membership",
            AccessKind::Grant => "grant",
            AccessKind::Containment => "containment",
            AccessKind::ActingAs => "acting-as",
        }
    }
}

impl std::fmt::Display for Access {
    /// `grant (role_name)`, `membership, reversed`: how `schema` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())?;
        if !self.grants.is_empty() {
            write!(f, " ({})", self.grants.join(", "))?;
        }
        if self.reversed {
            f.write_str(", reversed")?;
        }
        Ok(())
    }
}

/// A declared property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDef {
    /// snake_case name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// What it holds.
    pub description: String,
    /// Whether sinks index it.
    pub indexed: bool,
}

/// How the host applies a credential to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "with")]
pub enum CredentialUse {
    /// `{secret:NAME}` in a header value, verbatim.
    Header,
    /// `Authorization: Bearer <value>` on every request to a granted host.
    Bearer,
    /// HTTP Basic on every request to a granted host; the user name is in this config key.
    Basic(String),
    /// `{secret:NAME}` inside a JSON string in the body, JSON-escaped.
    JsonBody,
    /// `{secret:NAME}` in a form-encoded body, percent-encoded.
    FormBody,
    /// AWS Signature Version 4 on every request to a granted host; the value is the secret
    /// access key.
    AwsSigv4(AwsSigning),
}

/// The parameters of AWS Signature Version 4 besides the secret access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsSigning {
    /// The config key holding the access key id.
    pub access_key_id: String,
    /// The config key holding the region.
    pub region: String,
    /// The service signed for, e.g. `s3`.
    pub service: String,
    /// The credential holding the session token of temporary credentials, if any.
    pub session_token: Option<String>,
}

/// A secret the plugin needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// snake_case name; the placeholder is `{secret:<name>}`.
    pub name: String,
    /// The environment variable holding it.
    pub env: String,
    /// What it is.
    pub description: String,
    /// Hosts it may be sent to; `{config:<key>}` names an operator-set endpoint.
    pub hosts: Vec<String>,
    /// How it is applied.
    #[serde(rename = "use")]
    pub use_: CredentialUse,
    /// Whether a sync fails without it.
    pub required: bool,
    /// Applies only while config key `.0` holds `.1` (ignoring case; an unset key holds
    /// its default): otherwise it is neither read nor sent, nor required (contract 0.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_when: Option<(String, String)>,
}

/// The kind of value a config key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigType {
    /// One string.
    Text,
    /// A list of strings.
    TextList,
    /// A URL replacing an API base; trusted as the operator gives it.
    Endpoint,
}

/// A setting a plugin takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// snake_case name.
    pub name: String,
    /// What it sets.
    pub description: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ConfigType,
    /// The environment variable that overrides the config file.
    pub env: Option<String>,
    /// Whether a sync fails without it.
    pub required: bool,
    /// The value used when none is given.
    pub default: Option<ConfigValue>,
}

/// A resolved config value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// One string.
    Text(String),
    /// A list of strings.
    TextList(Vec<String>),
}

impl Manifest {
    /// The node kind for `label`, if declared.
    pub fn node_kind(&self, label: &str) -> Option<&NodeKind> {
        self.schema.nodes.iter().find(|k| k.label == label)
    }

    /// The config key named `name`, if declared.
    pub fn config_key(&self, name: &str) -> Option<&ConfigKey> {
        self.config.iter().find(|k| k.name == name)
    }
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Text(s) => f.write_str(s),
            ConfigValue::TextList(l) => f.write_str(&l.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, label: &str) -> Manifest {
        Manifest {
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            schema: Schema {
                nodes: vec![NodeKind {
                    label: label.into(),
                    description: String::new(),
                    extra_labels: Vec::new(),
                    properties: Vec::new(),
                }],
                edges: Vec::new(),
            },
            hosts: Vec::new(),
            credentials: Vec::new(),
            config: Vec::new(),
        }
    }

    #[test]
    fn a_plugin_cannot_take_the_hosts_names_or_labels() {
        assert_eq!(manifest("acme", "AcmeUser").takes_host_names(), None);
        let name = manifest("people", "AcmeUser").takes_host_names().unwrap();
        assert!(
            name.contains("the name \"people\" is the host's own"),
            "{name}"
        );
        let label = manifest("acme", "Person").takes_host_names().unwrap();
        assert!(
            label.contains("label \"Person\" is the host's own"),
            "{label}"
        );
    }
}
