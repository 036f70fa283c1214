//! Builders for what a plugin declares about itself. Each mirrors a record of the contract's
//! `types` interface; the host checks names and shapes when it loads the plugin.

use crate::wit::{types, types_v2, types_v3};

/// What the plugin syncs and what it needs: returned by [`Ingestor::manifest`].
///
/// ```
/// # use infragraph_sdk::*;
/// let manifest = Manifest::new("acme", "0.1.0", "Users and groups of Acme Directory")
///     .host("api.acme.example")
///     .node(NodeKind::new("AcmeUser", "A user").indexed_prop("email", ValueType::Text, "Login"))
///     .config(ConfigKey::text("tenant", "Tenant to list").env("ACME_TENANT").required());
/// ```
///
/// [`Ingestor::manifest`]: crate::Ingestor::manifest
#[derive(Debug, Clone)]
pub struct Manifest {
    name: String,
    version: String,
    description: String,
    hosts: Vec<String>,
    nodes: Vec<NodeKind>,
    edges: Vec<EdgeKind>,
    credentials: Vec<Credential>,
    config: Vec<ConfigKey>,
}

impl Manifest {
    /// A manifest with a kebab-case `name` (unique among installed plugins), the plugin's
    /// semver `version` (usually `env!("CARGO_PKG_VERSION")`) and a one-paragraph
    /// `description`.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Manifest {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            hosts: Vec::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
            credentials: Vec::new(),
            config: Vec::new(),
        }
    }

    /// Allows fetching from `host` over HTTPS; a leading `*.` allows its sub-domains.
    pub fn host(mut self, host: impl Into<String>) -> Manifest {
        self.hosts.push(host.into());
        self
    }

    /// Declares a node label the plugin emits.
    pub fn node(mut self, kind: NodeKind) -> Manifest {
        self.nodes.push(kind);
        self
    }

    /// Declares a relationship the plugin emits.
    pub fn edge(mut self, kind: EdgeKind) -> Manifest {
        self.edges.push(kind);
        self
    }

    /// Declares a secret the plugin needs.
    pub fn credential(mut self, credential: Credential) -> Manifest {
        self.credentials.push(credential);
        self
    }

    /// Declares a setting the operator may give.
    pub fn config(mut self, key: ConfigKey) -> Manifest {
        self.config.push(key);
        self
    }

    /// The properties declared [`ValueType::Map`], as (label or relationship type, name):
    /// the mock host reads them back as maps, as the host does.
    pub(crate) fn map_properties(&self) -> std::collections::HashSet<(String, String)> {
        let nodes = self.nodes.iter().map(|n| (&n.label, &n.properties));
        let edges = self.edges.iter().map(|e| (&e.rel_type, &e.properties));
        nodes
            .chain(edges)
            .flat_map(|(owner, props)| {
                props
                    .iter()
                    .filter(|p| p.ty == ValueType::Map)
                    .map(|p| (owner.clone(), p.name.clone()))
            })
            .collect()
    }

    pub(crate) fn into_wit(self) -> types_v3::Manifest {
        types_v3::Manifest {
            name: self.name,
            version: self.version,
            description: self.description,
            schema: types_v3::Schema {
                nodes: self.nodes.into_iter().map(NodeKind::into_wit).collect(),
                edges: self.edges.into_iter().map(EdgeKind::into_wit).collect(),
            },
            hosts: self.hosts,
            credentials: self
                .credentials
                .into_iter()
                .map(Credential::into_wit)
                .collect(),
            config: self.config.into_iter().map(ConfigKey::into_wit).collect(),
        }
    }
}

/// The declared type of a property. A [`Value::Null`] is accepted for every type.
///
/// [`Value::Null`]: crate::Value::Null
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// [`Value::Bool`](crate::Value::Bool).
    Boolean,
    /// [`Value::Int`](crate::Value::Int).
    Int,
    /// [`Value::Float`](crate::Value::Float).
    Float,
    /// [`Value::Text`](crate::Value::Text).
    Text,
    /// [`Value::TextList`](crate::Value::TextList).
    TextList,
    /// [`Value::IntList`](crate::Value::IntList).
    IntList,
    /// [`Value::Map`](crate::Value::Map): a JSON object, such as a resource's tags.
    /// Stored as a map in the embedded store and as JSON text in Neo4j; cannot be indexed.
    Map,
}

impl From<ValueType> for types_v3::ValueType {
    fn from(t: ValueType) -> Self {
        match t {
            ValueType::Boolean => types_v3::ValueType::Boolean,
            ValueType::Int => types_v3::ValueType::Int,
            ValueType::Float => types_v3::ValueType::Float,
            ValueType::Text => types_v3::ValueType::Text,
            ValueType::TextList => types_v3::ValueType::TextList,
            ValueType::IntList => types_v3::ValueType::IntList,
            ValueType::Map => types_v3::ValueType::Map,
        }
    }
}

#[derive(Debug, Clone)]
struct Property {
    name: String,
    ty: ValueType,
    description: String,
    indexed: bool,
}

impl Property {
    fn into_wit(self) -> types_v3::PropertyDef {
        types_v3::PropertyDef {
            name: self.name,
            type_: self.ty.into(),
            description: self.description,
            indexed: self.indexed,
        }
    }
}

/// A node label the plugin emits. Every node is keyed by its label and `id`, which is not
/// declared as a property.
#[derive(Debug, Clone)]
pub struct NodeKind {
    label: String,
    description: String,
    extra_labels: Vec<String>,
    properties: Vec<Property>,
}

impl NodeKind {
    /// A PascalCase `label`, e.g. `ScalewayInstance`.
    pub fn new(label: impl Into<String>, description: impl Into<String>) -> NodeKind {
        NodeKind {
            label: label.into(),
            description: description.into(),
            extra_labels: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// A snake_case property.
    pub fn prop(
        mut self,
        name: impl Into<String>,
        ty: ValueType,
        description: impl Into<String>,
    ) -> NodeKind {
        self.properties.push(Property {
            name: name.into(),
            ty,
            description: description.into(),
            indexed: false,
        });
        self
    }

    /// A property the sinks index, so edges may match nodes on it and queries find it fast.
    pub fn indexed_prop(
        mut self,
        name: impl Into<String>,
        ty: ValueType,
        description: impl Into<String>,
    ) -> NodeKind {
        self = self.prop(name, ty, description);
        if let Some(p) = self.properties.last_mut() {
            p.indexed = true;
        }
        self
    }

    /// A further label every node of this kind carries, e.g. `UserAccount`.
    pub fn extra_label(mut self, label: impl Into<String>) -> NodeKind {
        self.extra_labels.push(label.into());
        self
    }

    fn into_wit(self) -> types_v3::NodeKind {
        types_v3::NodeKind {
            label: self.label,
            description: self.description,
            extra_labels: self.extra_labels,
            properties: self
                .properties
                .into_iter()
                .map(Property::into_wit)
                .collect(),
        }
    }
}

/// A relationship type the plugin emits from one label to another.
#[derive(Debug, Clone)]
pub struct EdgeKind {
    rel_type: String,
    description: String,
    from: String,
    to: String,
    properties: Vec<Property>,
    access: Option<Access>,
}

/// What a relationship kind means for who can reach what: `infragraph access` follows
/// relationships that declare it (contract 0.2.0). "Start" and "end" are the
/// relationship's own direction; [`Access::reversed`] when it points the other way.
///
/// ```
/// # use infragraph_sdk::*;
/// // (:AcmeUser)-[:MEMBER_OF]->(:AcmeGroup): the user has whatever the group has.
/// let member = EdgeKind::new("MEMBER_OF", "AcmeUser", "AcmeGroup", "Membership")
///     .access(Access::membership());
/// // (:AcmeGroup)-[:HAS_ROLE {role}]->(:AcmeProject): the group holds `role` on the project.
/// let role = EdgeKind::new("HAS_ROLE", "AcmeGroup", "AcmeProject", "A role")
///     .prop("role", ValueType::Text, "Role name")
///     .access(Access::grant(["role"]));
/// // (:AcmeProject)-[:RESOURCE]->(:AcmeVm): whatever is granted on the project reaches the VM.
/// let holds = EdgeKind::new("RESOURCE", "AcmeProject", "AcmeVm", "Holds")
///     .access(Access::containment());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    kind: types_v2::AccessKind,
    reversed: bool,
    grants: Vec<String>,
}

impl Access {
    fn of(kind: types_v2::AccessKind) -> Access {
        Access {
            kind,
            reversed: false,
            grants: Vec::new(),
        }
    }
    /// Start (a principal) is a member of end (a group) and has whatever end has;
    /// transitive.
    pub fn membership() -> Access {
        Access::of(types_v2::AccessKind::Membership)
    }
    /// Start (a principal or group) holds a role or permissions on end (a scope or
    /// resource), named by the relationship's properties `grants` (declare each one).
    pub fn grant<S: Into<String>>(grants: impl IntoIterator<Item = S>) -> Access {
        Access {
            grants: grants.into_iter().map(Into::into).collect(),
            ..Access::of(types_v2::AccessKind::Grant)
        }
    }
    /// Start (a scope) contains end (a scope or resource): grants on start reach end.
    pub fn containment() -> Access {
        Access::of(types_v2::AccessKind::Containment)
    }
    /// Start (a key, an identity, a pipeline) acts as end (a principal or resource):
    /// whoever controls start has whatever end has.
    pub fn acting_as() -> Access {
        Access::of(types_v2::AccessKind::ActingAs)
    }
    /// The relationship points against the kind's reading: from the group to the member,
    /// the scope to the holder, the child to its scope, the principal to its key.
    pub fn reversed(mut self) -> Access {
        self.reversed = true;
        self
    }
}

impl EdgeKind {
    /// `(:from)-[:rel_type]->(:to)`; `rel_type` is SCREAMING_SNAKE_CASE. Either end may be
    /// a label another plugin emits.
    pub fn new(
        rel_type: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        description: impl Into<String>,
    ) -> EdgeKind {
        EdgeKind {
            rel_type: rel_type.into(),
            description: description.into(),
            from: from.into(),
            to: to.into(),
            properties: Vec::new(),
            access: None,
        }
    }

    /// What the relationship means for access.
    pub fn access(mut self, access: Access) -> EdgeKind {
        self.access = Some(access);
        self
    }

    /// A snake_case property of the relationship.
    pub fn prop(
        mut self,
        name: impl Into<String>,
        ty: ValueType,
        description: impl Into<String>,
    ) -> EdgeKind {
        self.properties.push(Property {
            name: name.into(),
            ty,
            description: description.into(),
            indexed: false,
        });
        self
    }

    fn into_wit(self) -> types_v3::EdgeKind {
        types_v3::EdgeKind {
            rel_type: self.rel_type,
            description: self.description,
            from: self.from,
            to: self.to,
            properties: self
                .properties
                .into_iter()
                .map(Property::into_wit)
                .collect(),
            access: self.access.map(|a| types_v2::Access {
                kind: a.kind,
                reversed: a.reversed,
                grants: a.grants,
            }),
        }
    }
}

/// How the host applies a credential. The plugin never sees a credential's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialUse {
    /// The plugin writes `{secret:NAME}` in a header value, e.g.
    /// `X-Auth-Token: {secret:secret_key}` or `Authorization: Bearer {secret:api_token}`.
    Header,
    /// The host adds `Authorization: Bearer <value>` to every request to a granted host.
    Bearer,
    /// The host adds HTTP Basic auth; the value is the password and the payload names the
    /// config key holding the user name.
    Basic(String),
    /// The plugin writes `{secret:NAME}` inside a JSON string of the body.
    JsonBody,
    /// The plugin writes `{secret:NAME}` as a form field value (see [`Request::form`]).
    ///
    /// [`Request::form`]: crate::Request::form
    FormBody,
    /// The host signs every request to a granted host with AWS Signature Version 4; the
    /// value is the secret access key (e.g. from `AWS_SECRET_ACCESS_KEY`). The plugin
    /// writes no placeholder and no `Authorization`: the host adds the signature headers
    /// on every attempt and redirect hop, and only for the credential's hosts.
    AwsSigv4 {
        /// The config key holding the access key id (e.g. from `AWS_ACCESS_KEY_ID`).
        access_key_id: String,
        /// The config key holding the region, e.g. `us-east-1`.
        region: String,
        /// The service signed for, e.g. `s3`.
        service: String,
        /// Another credential holding a session token (e.g. from `AWS_SESSION_TOKEN`),
        /// declared with [`CredentialUse::Header`] and the same hosts.
        session_token: Option<String>,
    },
}

impl From<CredentialUse> for types::CredentialUse {
    fn from(u: CredentialUse) -> Self {
        match u {
            CredentialUse::Header => types::CredentialUse::Header,
            CredentialUse::Bearer => types::CredentialUse::Bearer,
            CredentialUse::Basic(key) => types::CredentialUse::Basic(key),
            CredentialUse::JsonBody => types::CredentialUse::JsonBody,
            CredentialUse::FormBody => types::CredentialUse::FormBody,
            CredentialUse::AwsSigv4 {
                access_key_id,
                region,
                service,
                session_token,
            } => types::CredentialUse::AwsSigv4(types::AwsSigning {
                access_key_id,
                region,
                service,
                session_token,
            }),
        }
    }
}

/// A secret the plugin needs, resolved by the host from a source the operator consented
/// to. Required unless [`optional`](Credential::optional).
#[derive(Debug, Clone)]
pub struct Credential {
    name: String,
    env: String,
    description: String,
    hosts: Vec<String>,
    use_: CredentialUse,
    required: bool,
    only_when: Option<(String, String)>,
}

impl Credential {
    /// A credential named `name` (snake_case; the placeholder is `{secret:name}`). `env`
    /// is the environment variable a built-in plugin's value is read from; for a plugin
    /// installed separately it is only a suggestion, shown to the operator, who names the
    /// source in `[plugins.<name>.secrets]`.
    pub fn new(
        name: impl Into<String>,
        env: impl Into<String>,
        description: impl Into<String>,
        use_: CredentialUse,
    ) -> Credential {
        Credential {
            name: name.into(),
            env: env.into(),
            description: description.into(),
            hosts: Vec::new(),
            use_,
            required: true,
            only_when: None,
        }
    }

    /// A host the value may be sent to. `{config:KEY}` stands for the host of the endpoint
    /// the operator set in config key `KEY`.
    pub fn host(mut self, host: impl Into<String>) -> Credential {
        self.hosts.push(host.into());
        self
    }

    /// A sync may run without it.
    pub fn optional(mut self) -> Credential {
        self.required = false;
        self
    }

    /// It applies only while config key `key` holds `value` (ignoring case; an unset key
    /// holds its default). Otherwise the host neither reads nor sends it, and a required
    /// one is not required: for a plugin with two ways to sign in, so that a value left
    /// set for the other way never leaves the host.
    ///
    /// ```
    /// # use infragraph_sdk::{Credential, CredentialUse};
    /// let password = Credential::new("password", "DB_PASSWORD", "Password", CredentialUse::Basic("user".into()))
    ///     .only_when("auth", "basic");
    /// ```
    pub fn only_when(mut self, key: impl Into<String>, value: impl Into<String>) -> Credential {
        self.only_when = Some((key.into(), value.into()));
        self
    }

    fn into_wit(self) -> types_v2::Credential {
        types_v2::Credential {
            name: self.name,
            env: self.env,
            description: self.description,
            hosts: self.hosts,
            use_: self.use_.into(),
            required: self.required,
            only_when: self
                .only_when
                .map(|(key, value)| types_v2::Setting { key, value }),
        }
    }
}

/// A setting the operator may give the plugin, read in `sync` through [`Config`].
/// Optional unless [`required`](ConfigKey::required).
///
/// [`Config`]: crate::Config
#[derive(Debug, Clone)]
pub struct ConfigKey {
    name: String,
    description: String,
    ty: types::ConfigType,
    env: Option<String>,
    required: bool,
    default: Option<types::ConfigValue>,
}

impl ConfigKey {
    fn new(name: String, description: String, ty: types::ConfigType) -> ConfigKey {
        ConfigKey {
            name,
            description,
            ty,
            env: None,
            required: false,
            default: None,
        }
    }

    /// One string.
    pub fn text(name: impl Into<String>, description: impl Into<String>) -> ConfigKey {
        ConfigKey::new(name.into(), description.into(), types::ConfigType::Text)
    }

    /// A list of strings: comma-separated in an environment variable, an array in the
    /// config file.
    pub fn text_list(name: impl Into<String>, description: impl Into<String>) -> ConfigKey {
        ConfigKey::new(name.into(), description.into(), types::ConfigType::TextList)
    }

    /// A URL replacing an API base. The operator sets it, so the host allows its host to
    /// the plugin as given, plain http and loopback included.
    pub fn endpoint(name: impl Into<String>, description: impl Into<String>) -> ConfigKey {
        ConfigKey::new(name.into(), description.into(), types::ConfigType::Endpoint)
    }

    /// The environment variable that overrides the config file: read for a built-in
    /// plugin only; a plugin installed separately is configured in the config file.
    pub fn env(mut self, var: impl Into<String>) -> ConfigKey {
        self.env = Some(var.into());
        self
    }

    /// A sync without this key fails before the plugin runs.
    pub fn required(mut self) -> ConfigKey {
        self.required = true;
        self
    }

    /// The value used when the operator gives none.
    pub fn default_text(mut self, value: impl Into<String>) -> ConfigKey {
        self.default = Some(types::ConfigValue::Text(value.into()));
        self
    }

    /// The list used when the operator gives none.
    pub fn default_list<S: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = S>,
    ) -> ConfigKey {
        self.default = Some(types::ConfigValue::TextList(
            values.into_iter().map(Into::into).collect(),
        ));
        self
    }

    fn into_wit(self) -> types::ConfigKey {
        types::ConfigKey {
            name: self.name,
            description: self.description,
            type_: self.ty,
            env: self.env,
            required: self.required,
            default: self.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_contract_record() {
        let m = Manifest::new("acme", "1.2.3", "Acme")
            .host("api.acme.example")
            .node(
                NodeKind::new("AcmeUser", "A user")
                    .indexed_prop("email", ValueType::Text, "Login")
                    .prop("admin", ValueType::Boolean, "Admin")
                    .extra_label("UserAccount"),
            )
            .edge(
                EdgeKind::new("MEMBER_OF", "AcmeUser", "AcmeGroup", "Membership").prop(
                    "since",
                    ValueType::Text,
                    "Since",
                ),
            )
            .credential(
                Credential::new(
                    "api_token",
                    "ACME_API_TOKEN",
                    "Token",
                    CredentialUse::Header,
                )
                .host("api.acme.example")
                .host("{config:api_url}")
                .optional(),
            )
            .config(
                ConfigKey::text("tenant", "Tenant")
                    .env("ACME_TENANT")
                    .required(),
            )
            .config(ConfigKey::endpoint("api_url", "Base").default_text("https://x"))
            .config(ConfigKey::text_list("zones", "Zones").default_list(["a", "b"]))
            .into_wit();
        assert_eq!(m.name, "acme");
        assert_eq!(m.hosts, ["api.acme.example"]);
        let user = &m.schema.nodes[0];
        assert_eq!(user.extra_labels, ["UserAccount"]);
        assert!(user.properties[0].indexed);
        assert!(!user.properties[1].indexed);
        assert_eq!(user.properties[1].type_, types_v3::ValueType::Boolean);
        assert_eq!(m.schema.edges[0].from, "AcmeUser");
        assert_eq!(m.schema.edges[0].properties[0].name, "since");
        let cred = &m.credentials[0];
        assert!(!cred.required);
        assert_eq!(cred.hosts, ["api.acme.example", "{config:api_url}"]);
        assert!(matches!(cred.use_, types::CredentialUse::Header));
        assert!(m.config[0].required);
        assert_eq!(m.config[0].env.as_deref(), Some("ACME_TENANT"));
        assert!(!m.config[1].required);
        assert_eq!(m.config[1].type_, types::ConfigType::Endpoint);
        assert!(
            matches!(&m.config[1].default, Some(types::ConfigValue::Text(t)) if t == "https://x")
        );
        assert!(
            matches!(&m.config[2].default, Some(types::ConfigValue::TextList(l)) if l == &["a", "b"])
        );
    }
}
