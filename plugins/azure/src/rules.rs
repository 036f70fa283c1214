//! Relationship rules as data (issue 8): each rule names the resource type it reads, the
//! property path holding the other end's id, and the relationship it emits. A new rule is
//! one entry in [`RULES`]; the schema (`infragraph schema azure`) lists every rule in the
//! description of the relationship it emits, generated from this table.
//!
//! A path is dot-separated keys of the resource's JSON (as ARM lists it). `name[]` walks
//! every element of the array under `name`, `*` every value of an object; the path ends
//! at strings, each one target. Rules with `via` read the items of a child listing of the
//! resource (`{resource id}/{via}`) instead of the resource itself. Rules on
//! [`DIAGNOSED`] apply to every type the config key `diagnostic_types` names (by default
//! [`DIAGNOSTIC_TYPES`]): diagnostic settings cost a request per resource, so they are
//! read for the types whose logs matter, not for every disk and NIC.

use serde_json::Value;

/// Which node of the resource a rule starts from (or ends at, for [`Dir::In`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum This {
    /// The resource, in both views.
    Resource,
    /// The `PrivateEndpoint` node of a private endpoint resource.
    PrivateEndpoint,
    /// The `DNSZone` node of a DNS zone resource.
    DnsZone,
}

/// What the value at the path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Other {
    /// Another resource, by ARM id; the edge exists in both views.
    Resource,
    /// A managed identity, by principal (object) id.
    ManagedIdentity,
    /// An Entra ID user, by user principal name.
    User,
    /// A service principal, by application (client) id.
    ServicePrincipal,
}

impl Other {
    /// The property of the other end the value is matched on.
    pub fn key(self) -> &'static str {
        match self {
            Other::Resource | Other::ManagedIdentity => "id",
            Other::User => "user_principal_name",
            Other::ServicePrincipal => "app_id",
        }
    }
}

/// Direction of the emitted relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `(this)-[:REL]->(other)`
    Out,
    /// `(other)-[:REL]->(this)`
    In,
}

/// A constant property value of a rule's relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit {
    Text(&'static str),
    Int(i64),
}

impl std::fmt::Display for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lit::Text(t) => f.write_str(t),
            Lit::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A child listing a rule reads: `{resource id}/{path}?api-version={api}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    pub path: &'static str,
    pub api: &'static str,
}

/// One relationship rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Lower-case ARM type the rule applies to, or `*` for every resource.
    pub on: &'static str,
    pub via: Option<Via>,
    pub path: &'static str,
    pub rel: &'static str,
    pub dir: Dir,
    pub this: This,
    pub other: Other,
    /// Constant properties of the relationship.
    pub props: &'static [(&'static str, Lit)],
    /// Properties read from the same JSON as the path: (name, path of a string).
    pub copied: &'static [(&'static str, &'static str)],
    /// Applies only where the string at this path equals this value (any case).
    pub when: Option<(&'static str, &'static str)>,
}

const fn rule(on: &'static str, path: &'static str, rel: &'static str) -> Rule {
    Rule {
        on,
        via: None,
        path,
        rel,
        dir: Dir::Out,
        this: This::Resource,
        other: Other::Resource,
        props: &[],
        copied: &[],
        when: None,
    }
}

impl Rule {
    const fn props(mut self, props: &'static [(&'static str, Lit)]) -> Rule {
        self.props = props;
        self
    }
    const fn this(mut self, this: This, dir: Dir) -> Rule {
        self.this = this;
        self.dir = dir;
        self
    }
    const fn to_identity(mut self) -> Rule {
        self.other = Other::ManagedIdentity;
        self
    }
    const fn to(mut self, other: Other) -> Rule {
        self.other = other;
        self
    }
    const fn copied(mut self, copied: &'static [(&'static str, &'static str)]) -> Rule {
        self.copied = copied;
        self
    }
    const fn when(mut self, path: &'static str, value: &'static str) -> Rule {
        self.when = Some((path, value));
        self
    }
    const fn via(mut self, path: &'static str, api: &'static str) -> Rule {
        self.via = Some(Via { path, api });
        self
    }

    /// The rule as one line of documentation.
    pub fn describe(&self) -> String {
        if self.on == DIAGNOSED {
            let mut d = self.describe_on("each type of config key `diagnostic_types`");
            d.push_str(&format!(" (default: {})", DIAGNOSTIC_TYPES.join(", ")));
            return d;
        }
        self.describe_on(&format!("`{}`", self.on))
    }

    fn describe_on(&self, on: &str) -> String {
        let via = self
            .via
            .map(|v| format!(" of each item of `{{id}}/{}`", v.path))
            .unwrap_or_default();
        let when = self
            .when
            .map(|(path, value)| format!(" where `{path}` is {value}"))
            .unwrap_or_default();
        let mut p: Vec<String> = self.props.iter().map(|(k, v)| format!("{k}={v}")).collect();
        p.extend(self.copied.iter().map(|(k, path)| format!("{k}=`{path}`")));
        let props = match p.is_empty() {
            true => String::new(),
            false => format!(" {{{}}}", p.join(", ")),
        };
        let other = match self.other {
            Other::User | Other::ServicePrincipal => format!(" (by {})", self.other.key()),
            _ => String::new(),
        };
        format!("{on}: `{}`{via}{when}{other}{props}", self.path)
    }

    /// The ids the rule finds in `value` (the resource, or an item of its `via` listing).
    pub fn targets<'v>(&self, value: &'v Value) -> Vec<&'v str> {
        if let Some((path, want)) = self.when {
            let found = strings_at(value, path);
            if !found.iter().any(|s| s.eq_ignore_ascii_case(want)) {
                return Vec::new();
            }
        }
        let mut out = Vec::new();
        walk(value, &self.path.split('.').collect::<Vec<_>>(), &mut out);
        out.retain(|s| !s.is_empty());
        out
    }
}

/// The strings at `path` in `value`.
pub fn strings_at<'v>(value: &'v Value, path: &str) -> Vec<&'v str> {
    let mut out = Vec::new();
    walk(value, &path.split('.').collect::<Vec<_>>(), &mut out);
    out
}

fn walk<'v>(v: &'v Value, path: &[&str], out: &mut Vec<&'v str>) {
    let Some((first, rest)) = path.split_first() else {
        if let Some(s) = v.as_str() {
            out.push(s);
        }
        return;
    };
    if *first == "*" {
        if let Some(map) = v.as_object() {
            for item in map.values() {
                walk(item, rest, out);
            }
        }
    } else if let Some(key) = first.strip_suffix("[]") {
        if let Some(items) = v.get(key).and_then(Value::as_array) {
            for item in items {
                walk(item, rest, out);
            }
        }
    } else if let Some(next) = v.get(*first) {
        walk(next, rest, out);
    }
}

const VM: &str = "microsoft.compute/virtualmachines";
const NIC: &str = "microsoft.network/networkinterfaces";
const VNET: &str = "microsoft.network/virtualnetworks";
const SUBNET: &str = "microsoft.network/virtualnetworks/subnets";
const PE: &str = "microsoft.network/privateendpoints";
const SITE: &str = "microsoft.web/sites";
const APPI: &str = "microsoft.insights/components";
const TOPIC: &str = "microsoft.eventgrid/systemtopics";
const METRIC_ALERT: &str = "microsoft.insights/metricalerts";
pub const DNS_ZONE: &str = "microsoft.network/dnszones";
pub const PRIVATE_DNS_ZONE: &str = "microsoft.network/privatednszones";
pub const UAMI: &str = "microsoft.managedidentity/userassignedidentities";
/// What a rule's `on` says for "every type in the config key `diagnostic_types`".
pub const DIAGNOSED: &str = "diagnosed";
/// A resource's diagnostic settings: where its logs and metrics go.
pub const DIAGNOSTIC_SETTINGS: &str = "providers/Microsoft.Insights/diagnosticSettings";
/// Types whose diagnostic settings are read unless the config says otherwise: the ones
/// whose logs an investigation asks for first (vault access, storage access, flows through
/// NSGs and firewalls, web and database access, cluster control planes).
pub const DIAGNOSTIC_TYPES: &[&str] = &[
    "microsoft.keyvault/vaults",
    "microsoft.storage/storageaccounts",
    "microsoft.network/networksecuritygroups",
    "microsoft.network/azurefirewalls",
    "microsoft.network/applicationgateways",
    "microsoft.web/sites",
    "microsoft.sql/servers/databases",
    "microsoft.containerservice/managedclusters",
    "microsoft.documentdb/databaseaccounts",
];

/// The two lists of a private endpoint's connections: approved automatically, and
/// awaiting (or given) manual approval.
pub const PE_CONNECTIONS: [&str; 2] = [
    "privateLinkServiceConnections",
    "manualPrivateLinkServiceConnections",
];

const HARD: &[(&str, Lit)] = &[("dependency_type", Lit::Text("Hard"))];
const CREATED_AT: &[(&str, &str)] = &[("created_at", "systemData.createdAt")];

/// Every relationship rule between resources (and from resources to identities, private
/// endpoints and DNS zones).
pub static RULES: &[Rule] = &[
    // A VM needs its NICs and disks.
    rule(
        VM,
        "properties.networkProfile.networkInterfaces[].id",
        "DEPENDS_ON",
    )
    .props(HARD),
    rule(
        VM,
        "properties.storageProfile.osDisk.managedDisk.id",
        "DEPENDS_ON",
    )
    .props(HARD),
    rule(
        VM,
        "properties.storageProfile.dataDisks[].managedDisk.id",
        "DEPENDS_ON",
    )
    .props(HARD),
    // A NIC sits in a subnet, is filtered by an NSG, may carry a public IP.
    rule(
        NIC,
        "properties.ipConfigurations[].properties.subnet.id",
        "USES_SUBNET",
    ),
    rule(NIC, "properties.networkSecurityGroup.id", "SECURED_BY"),
    rule(
        NIC,
        "properties.ipConfigurations[].properties.publicIPAddress.id",
        "USES",
    )
    .props(&[("usage_type", Lit::Text("PublicIP"))]),
    // A virtual network contains its subnets (extracted as resources) and peers others.
    rule(VNET, "properties.subnets[].id", "CONTAINS").props(&[("hierarchy_level", Lit::Int(3))]),
    rule(
        VNET,
        "properties.virtualNetworkPeerings[].properties.remoteVirtualNetwork.id",
        "CONNECTS_TO",
    )
    .props(&[("connection_type", Lit::Text("Peering"))]),
    rule(SUBNET, "properties.networkSecurityGroup.id", "SECURED_BY"),
    // A private endpoint sits in a subnet and makes its target reachable.
    rule(PE, "properties.subnet.id", "USES_SUBNET"),
    rule(
        PE,
        "properties.privateLinkServiceConnections[].properties.privateLinkServiceId",
        "CONNECTED_TO_PE",
    )
    .this(This::PrivateEndpoint, Dir::In),
    // One awaiting manual approval keeps its target in the manual list.
    rule(
        PE,
        "properties.manualPrivateLinkServiceConnections[].properties.privateLinkServiceId",
        "CONNECTED_TO_PE",
    )
    .this(This::PrivateEndpoint, Dir::In),
    // A web app runs on its plan, may join a subnet.
    rule(SITE, "properties.serverFarmId", "DEPENDS_ON").props(HARD),
    rule(SITE, "properties.virtualNetworkSubnetId", "USES_SUBNET"),
    // Application Insights logs to its Log Analytics workspace.
    rule(APPI, "properties.WorkspaceResourceId", "LOGS_TO"),
    // An Event Grid system topic integrates with the resource whose events it carries.
    // A metric alert watches the resources of its scopes.
    rule(METRIC_ALERT, "properties.scopes[]", "MONITORS")
        .props(&[("monitor_type", Lit::Text("MetricAlert"))]),
    rule(TOPIC, "properties.source", "INTEGRATES_WITH")
        .props(&[("integration_type", Lit::Text("Events"))]),
    // A public DNS zone's alias records resolve to resources.
    rule(DNS_ZONE, "properties.targetResource.id", "RESOLVES_TO")
        .via("recordsets", "2018-05-01")
        .this(This::DnsZone, Dir::Out),
    // A private DNS zone resolves names for the virtual networks linked to it.
    rule(
        PRIVATE_DNS_ZONE,
        "properties.virtualNetwork.id",
        "RESOLVES_TO",
    )
    .via("virtualNetworkLinks", "2020-06-01")
    .this(This::DnsZone, Dir::Out),
    // Any resource uses its system-assigned and user-assigned identities.
    // Diagnostic settings: a resource's logs go to a Log Analytics workspace and/or a
    // storage account.
    rule(DIAGNOSED, "properties.workspaceId", "LOGS_TO")
        .via(DIAGNOSTIC_SETTINGS, "2021-05-01-preview")
        .props(&[("destination", Lit::Text("LogAnalytics"))]),
    rule(DIAGNOSED, "properties.storageAccountId", "LOGS_TO")
        .via(DIAGNOSTIC_SETTINGS, "2021-05-01-preview")
        .props(&[("destination", Lit::Text("Storage"))]),
    // Who created a resource, where ARM's `systemData` says: a user by sign-in name, an
    // application by its client id. (Managed identities and keys are not matched.)
    rule("*", "systemData.createdBy", "CREATED_BY")
        .when("systemData.createdByType", "User")
        .to(Other::User)
        .copied(CREATED_AT),
    rule("*", "systemData.createdBy", "CREATED_BY")
        .when("systemData.createdByType", "Application")
        .to(Other::ServicePrincipal)
        .copied(CREATED_AT),
    rule("*", "identity.principalId", "USES_IDENTITY").to_identity(),
    rule(
        "*",
        "identity.userAssignedIdentities.*.principalId",
        "USES_IDENTITY",
    )
    .to_identity(),
];

/// Resources listed per type (`/subscriptions/{s}/providers/{type}`), with their
/// properties, because a rule or a node kind reads them; the generic listing
/// (`/subscriptions/{s}/resources`) has no properties. Every other type comes from the
/// generic listing.
pub const DETAILED: &[(&str, &str)] = &[
    (VM, "2024-07-01"),
    (NIC, "2024-05-01"),
    (VNET, "2024-05-01"),
    (PE, "2024-05-01"),
    (SITE, "2023-12-01"),
    (APPI, "2020-02-02"),
    (TOPIC, "2022-06-15"),
    (METRIC_ALERT, "2018-03-01"),
    (DNS_ZONE, "2018-05-01"),
    (PRIVATE_DNS_ZONE, "2020-06-01"),
    (UAMI, "2023-01-31"),
];

/// Arrays of child resources a type embeds, emitted as resources of their own: (parent
/// type, path of the array, the children's type). A virtual network's subnets are not in
/// any listing of their own at subscription scope.
pub const EMBEDDED: &[(&str, &str, &str)] = &[(
    VNET,
    "properties.subnets",
    "Microsoft.Network/virtualNetworks/subnets",
)];

pub fn is_detailed(ty: &str) -> bool {
    DETAILED.iter().any(|(t, _)| *t == ty)
}

/// The rules reading a resource of type `ty` itself (not through `via`).
pub fn direct(ty: &str) -> impl Iterator<Item = &'static Rule> + '_ {
    RULES
        .iter()
        .filter(move |r| r.via.is_none() && (r.on == "*" || r.on == ty))
}

/// The child listings rules read for a resource of type `ty`.
/// Whether rules on `on` apply to a resource of `ty`, given the diagnosed types.
fn applies_to(on: &str, ty: &str, diagnosed: &[String]) -> bool {
    on == ty || (on == DIAGNOSED && diagnosed.iter().any(|d| d.eq_ignore_ascii_case(ty)))
}

/// The child listings to read for a resource of `ty`, each once however many rules read
/// it.
pub fn child_listings(ty: &str, diagnosed: &[String]) -> Vec<Via> {
    let mut vias: Vec<Via> = Vec::new();
    for r in RULES {
        if let Some(via) = r.via
            && applies_to(r.on, ty, diagnosed)
            && !vias.contains(&via)
        {
            vias.push(via);
        }
    }
    vias
}

/// The rules that read the items of child listing `via` of a resource of `ty`.
pub fn child_rules<'a>(
    ty: &'a str,
    via: Via,
    diagnosed: &'a [String],
) -> impl Iterator<Item = &'static Rule> + 'a {
    RULES
        .iter()
        .filter(move |r| r.via == Some(via) && applies_to(r.on, ty, diagnosed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn only(on: &str, path: &str) -> &'static Rule {
        let found: Vec<&Rule> = RULES
            .iter()
            .filter(|r| r.on == on && r.path == path)
            .collect();
        assert_eq!(found.len(), 1, "{on} {path}");
        found[0]
    }

    fn applies(rule: &Rule, resource: &Value, want: &[&str]) {
        assert_eq!(rule.targets(resource), want, "{}", rule.describe());
        let ty = resource["type"]
            .as_str()
            .unwrap_or(rule.on)
            .to_ascii_lowercase();
        if rule.via.is_none() {
            assert!(direct(&ty).any(|r| std::ptr::eq(r, rule)), "{ty}");
        }
    }

    #[test]
    fn vm_depends_on_nics_and_disks() {
        let vm = json!({"type": "Microsoft.Compute/virtualMachines", "properties": {
            "networkProfile": {"networkInterfaces": [{"id": "/n1"}, {"id": "/n2"}]},
            "storageProfile": {"osDisk": {"managedDisk": {"id": "/os"}},
                               "dataDisks": [{"managedDisk": {"id": "/d1"}}, {"lun": 2}]}}});
        let nics = only(VM, "properties.networkProfile.networkInterfaces[].id");
        applies(nics, &vm, &["/n1", "/n2"]);
        assert_eq!(
            (nics.rel, nics.dir, nics.props),
            ("DEPENDS_ON", Dir::Out, HARD)
        );
        applies(
            only(VM, "properties.storageProfile.osDisk.managedDisk.id"),
            &vm,
            &["/os"],
        );
        applies(
            only(VM, "properties.storageProfile.dataDisks[].managedDisk.id"),
            &vm,
            &["/d1"],
        );
    }

    #[test]
    fn nic_subnet_nsg_and_public_ip() {
        let nic = json!({"type": "Microsoft.Network/networkInterfaces", "properties": {
            "networkSecurityGroup": {"id": "/nsg"},
            "ipConfigurations": [
                {"properties": {"subnet": {"id": "/s1"}, "publicIPAddress": {"id": "/pip"}}},
                {"properties": {"subnet": {"id": "/s2"}}}]}});
        let r = only(NIC, "properties.ipConfigurations[].properties.subnet.id");
        applies(r, &nic, &["/s1", "/s2"]);
        assert_eq!(r.rel, "USES_SUBNET");
        let r = only(NIC, "properties.networkSecurityGroup.id");
        applies(r, &nic, &["/nsg"]);
        assert_eq!(r.rel, "SECURED_BY");
        let r = only(
            NIC,
            "properties.ipConfigurations[].properties.publicIPAddress.id",
        );
        applies(r, &nic, &["/pip"]);
        assert_eq!(
            (r.rel, r.props),
            ("USES", &[("usage_type", Lit::Text("PublicIP"))][..])
        );
    }

    #[test]
    fn vnet_contains_subnets_and_peers() {
        let vnet = json!({"type": "Microsoft.Network/virtualNetworks", "properties": {
            "subnets": [{"id": "/v/subnets/a"}, {"id": "/v/subnets/b"}],
            "virtualNetworkPeerings": [{"properties": {"remoteVirtualNetwork": {"id": "/v2"}}}]}});
        let r = only(VNET, "properties.subnets[].id");
        applies(r, &vnet, &["/v/subnets/a", "/v/subnets/b"]);
        assert_eq!(r.rel, "CONTAINS");
        let r = only(
            VNET,
            "properties.virtualNetworkPeerings[].properties.remoteVirtualNetwork.id",
        );
        applies(r, &vnet, &["/v2"]);
        assert_eq!(
            (r.rel, r.props),
            (
                "CONNECTS_TO",
                &[("connection_type", Lit::Text("Peering"))][..]
            )
        );
        let subnet = json!({"type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": {"networkSecurityGroup": {"id": "/nsg"}}});
        let r = only(SUBNET, "properties.networkSecurityGroup.id");
        applies(r, &subnet, &["/nsg"]);
        assert_eq!(r.rel, "SECURED_BY");
    }

    #[test]
    fn private_endpoint_subnet_and_target() {
        let pe = json!({"type": "Microsoft.Network/privateEndpoints", "properties": {
            "subnet": {"id": "/s"},
            "privateLinkServiceConnections": [{"properties": {"privateLinkServiceId": "/kv"}}]}});
        let r = only(PE, "properties.subnet.id");
        applies(r, &pe, &["/s"]);
        assert_eq!((r.rel, r.this), ("USES_SUBNET", This::Resource));
        let r = only(
            PE,
            "properties.privateLinkServiceConnections[].properties.privateLinkServiceId",
        );
        applies(r, &pe, &["/kv"]);
        assert_eq!(
            (r.rel, r.this, r.dir),
            ("CONNECTED_TO_PE", This::PrivateEndpoint, Dir::In)
        );
        // Awaiting manual approval: the target is in the other list.
        let manual = json!({"type": "Microsoft.Network/privateEndpoints", "properties": {
            "privateLinkServiceConnections": [],
            "manualPrivateLinkServiceConnections": [{"properties": {"privateLinkServiceId": "/pls"}}]}});
        assert!(r.targets(&manual).is_empty());
        let m = only(
            PE,
            "properties.manualPrivateLinkServiceConnections[].properties.privateLinkServiceId",
        );
        applies(m, &manual, &["/pls"]);
        assert_eq!((m.rel, m.this, m.dir), (r.rel, r.this, r.dir));
    }

    #[test]
    fn web_app_plan_and_subnet() {
        let site = json!({"type": "Microsoft.Web/sites", "properties": {
            "serverFarmId": "/plan", "virtualNetworkSubnetId": "/s"}});
        let r = only(SITE, "properties.serverFarmId");
        applies(r, &site, &["/plan"]);
        assert_eq!(r.rel, "DEPENDS_ON");
        let r = only(SITE, "properties.virtualNetworkSubnetId");
        applies(r, &site, &["/s"]);
        assert_eq!(r.rel, "USES_SUBNET");
    }

    #[test]
    fn insights_logs_to_and_topics_integrate() {
        let appi = json!({"type": "microsoft.insights/components",
            "properties": {"WorkspaceResourceId": "/law"}});
        let r = only(APPI, "properties.WorkspaceResourceId");
        applies(r, &appi, &["/law"]);
        assert_eq!(r.rel, "LOGS_TO");
        let topic =
            json!({"type": "Microsoft.EventGrid/systemTopics", "properties": {"source": "/st"}});
        let r = only(TOPIC, "properties.source");
        applies(r, &topic, &["/st"]);
        assert_eq!(r.rel, "INTEGRATES_WITH");
    }

    #[test]
    fn dns_zones_resolve_through_child_listings() {
        let record = json!({"properties": {"targetResource": {"id": "/pip"}}});
        let plain = json!({"properties": {"ARecords": [{"ipv4Address": "10.0.0.1"}]}});
        let r = only(DNS_ZONE, "properties.targetResource.id");
        assert_eq!(r.targets(&record), ["/pip"]);
        assert!(r.targets(&plain).is_empty());
        assert_eq!(
            (r.rel, r.this, r.via.unwrap().path),
            ("RESOLVES_TO", This::DnsZone, "recordsets")
        );
        assert_eq!(child_listings(DNS_ZONE, &[]).len(), 1);
        let link = json!({"properties": {"virtualNetwork": {"id": "/vnet"}}});
        let r = only(PRIVATE_DNS_ZONE, "properties.virtualNetwork.id");
        assert_eq!(r.targets(&link), ["/vnet"]);
        assert_eq!(r.via.unwrap().path, "virtualNetworkLinks");
        assert_eq!(direct(DNS_ZONE).filter(|r| r.on != "*").count(), 0);
    }

    #[test]
    fn creators_are_users_or_applications_by_system_data() {
        let by = |ty: &str| {
            json!({"type": "Microsoft.KeyVault/vaults", "systemData": {
                "createdBy": "alice@contoso.com", "createdByType": ty,
                "createdAt": "2025-01-02T03:04:05Z"}})
        };
        let rules: Vec<&Rule> = RULES
            .iter()
            .filter(|r| r.path == "systemData.createdBy")
            .collect();
        assert_eq!(rules.len(), 2);
        let (user, app) = (rules[0], rules[1]);
        assert_eq!(
            (user.other, user.other.key()),
            (Other::User, "user_principal_name")
        );
        assert_eq!(
            (app.other, app.other.key()),
            (Other::ServicePrincipal, "app_id")
        );
        assert_eq!(user.targets(&by("User")), ["alice@contoso.com"]);
        assert!(app.targets(&by("User")).is_empty());
        assert_eq!(app.targets(&by("application")), ["alice@contoso.com"]);
        for r in [user, app] {
            assert!(r.targets(&by("ManagedIdentity")).is_empty());
            assert!(r.targets(&by("Key")).is_empty());
            assert!(r.targets(&json!({"type": "x"})).is_empty());
            assert_eq!(r.rel, "CREATED_BY");
            assert_eq!(
                strings_at(&by("User"), r.copied[0].1),
                ["2025-01-02T03:04:05Z"]
            );
        }
        assert!(
            user.describe()
                .contains("where `systemData.createdByType` is User")
        );
    }

    #[test]
    fn metric_alerts_monitor_their_scopes() {
        let alert = json!({"type": "Microsoft.Insights/metricAlerts", "properties": {
            "severity": 2, "enabled": true, "scopes": ["/vm1", "/vm2"]}});
        let r = only(METRIC_ALERT, "properties.scopes[]");
        applies(r, &alert, &["/vm1", "/vm2"]);
        assert_eq!(
            (r.rel, r.dir, r.props),
            (
                "MONITORS",
                Dir::Out,
                &[("monitor_type", Lit::Text("MetricAlert"))][..]
            )
        );
        assert!(r.targets(&json!({"properties": {}})).is_empty());
    }

    #[test]
    fn diagnostic_settings_of_the_configured_types_log_to_workspaces_and_storage() {
        let setting = json!({"name": "to-law", "properties": {
            "workspaceId": "/law", "storageAccountId": "/st",
            "logs": [{"category": "AuditEvent", "enabled": true}]}});
        let law = only(DIAGNOSED, "properties.workspaceId");
        assert_eq!(law.targets(&setting), ["/law"]);
        assert_eq!(
            (law.rel, law.dir, law.props),
            (
                "LOGS_TO",
                Dir::Out,
                &[("destination", Lit::Text("LogAnalytics"))][..]
            )
        );
        let st = only(DIAGNOSED, "properties.storageAccountId");
        assert_eq!(st.targets(&setting), ["/st"]);
        assert_eq!(st.props, &[("destination", Lit::Text("Storage"))]);
        let event_hub_only = json!({"properties": {"eventHubAuthorizationRuleId": "/eh"}});
        assert!(law.targets(&event_hub_only).is_empty());
        // One listing per resource, read by both rules; only for the diagnosed types.
        let defaults: Vec<String> = DIAGNOSTIC_TYPES.iter().map(|t| t.to_string()).collect();
        let vault = "microsoft.keyvault/vaults";
        assert_eq!(child_listings(vault, &defaults), [law.via.unwrap()]);
        assert_eq!(child_rules(vault, law.via.unwrap(), &defaults).count(), 2);
        assert!(child_listings("microsoft.compute/disks", &defaults).is_empty());
        assert!(
            child_listings(vault, &[]).is_empty(),
            "an empty list reads none"
        );
        let custom = ["Microsoft.Compute/Disks".to_string()];
        assert_eq!(child_listings("microsoft.compute/disks", &custom).len(), 1);
        assert!(
            law.describe().contains("diagnostic_types"),
            "{}",
            law.describe()
        );
    }

    #[test]
    fn identities_of_any_resource() {
        let any = json!({"type": "Microsoft.Storage/storageAccounts", "identity": {
            "principalId": "p-sys",
            "userAssignedIdentities": {"/uami1": {"principalId": "p-u1", "clientId": "c"},
                                       "/uami2": {"principalId": "p-u2"}}}});
        let r = only("*", "identity.principalId");
        applies(r, &any, &["p-sys"]);
        assert_eq!((r.rel, r.other), ("USES_IDENTITY", Other::ManagedIdentity));
        let r = only("*", "identity.userAssignedIdentities.*.principalId");
        applies(r, &any, &["p-u1", "p-u2"]);
        assert_eq!(r.other, Other::ManagedIdentity);
    }

    #[test]
    fn every_rule_is_tested_and_reads_a_detailed_type_or_a_child_listing() {
        // Each test above names its rules through `only`; this keeps the table and the tests
        // in step when a rule is added.
        assert_eq!(RULES.len(), 25);
        for r in RULES {
            // Diagnostic settings are a child listing: the generic listing's item will do.
            if r.on == DIAGNOSED {
                continue;
            }
            let embedded = EMBEDDED
                .iter()
                .any(|(_, _, t)| t.eq_ignore_ascii_case(r.on));
            assert!(
                r.on == "*" || is_detailed(r.on) || embedded,
                "{} is not listed with properties",
                r.on
            );
            assert!(!r.describe().is_empty());
        }
        assert_eq!(
            RULES[0].describe(),
            "`microsoft.compute/virtualmachines`: `properties.networkProfile.networkInterfaces[].id` {dependency_type=Hard}"
        );
    }
}
