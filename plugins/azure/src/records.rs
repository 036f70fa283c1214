//! ARM and Microsoft Graph objects to nodes and edges, emitted as each page arrives.

use std::collections::{HashMap, HashSet};

use infragraph_sdk::{Context, NodeBuilder, SyncError, Value as Prop};
use serde_json::Value;

use crate::ids::{Abstractor, arm_type, canonical, group_id, scope_parts};
use crate::rules::{self, Lit, Other, Rule, This, Via};
use crate::schema::*;

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// JSON text of a value, or nothing for null or absent.
fn json_text(v: Option<&Value>) -> Option<String> {
    v.filter(|v| !v.is_null()).map(Value::to_string)
}

/// The properties both views of a resource carry.
fn shared<'c>(
    node: NodeBuilder<'c>,
    r: &Value,
    props: Option<&Value>,
    tags: Option<String>,
    provisioning: Option<&str>,
) -> NodeBuilder<'c> {
    node.prop("name", text(r, "name"))
        .prop("type", text(r, "type"))
        .prop("location", text(r, "location"))
        .prop("kind", text(r, "kind"))
        .prop("properties", json_text(props))
        .prop("sku", json_text(r.get("sku")))
        .prop("tags", tags)
        .prop("provisioning_state", provisioning)
}

impl From<Lit> for Prop {
    fn from(l: Lit) -> Prop {
        match l {
            Lit::Text(t) => Prop::from(t),
            Lit::Int(i) => Prop::from(i),
        }
    }
}

/// A tag's id: `key=value`. Azure tag names may hold `=` but never `%`, so an `=` in the
/// name is written `%3D` and every id names one (name, value) pair.
pub fn tag_id(key: &str, value: &str) -> String {
    format!("{}={value}", key.replace('=', "%3D"))
}

/// A child listing to read: `{parent}/{via.path}` of a resource of type `ty`.
pub struct Child {
    /// The resource's canonical id.
    pub parent: String,
    pub ty: String,
    pub via: Via,
}

/// Emits records and remembers what later records need.
pub struct Out {
    tenant: String,
    pub ab: Abstractor,
    fingerprint: String,
    tags: HashSet<String>,
    regions: HashSet<String>,
    identities: HashSet<String>,
    /// Principal ids of managed identities, for role assignments naming them.
    pub managed_identities: HashSet<String>,
    /// Role names by canonical role definition id.
    role_names: HashMap<String, String>,
    /// Canonical ids of the listed role definitions by their GUID (lower-case): an
    /// assignment names its definition in the tenant-level form
    /// `/providers/Microsoft.Authorization/roleDefinitions/{guid}` while definitions are
    /// listed per subscription, so the GUID is what the two share.
    role_ids: HashMap<String, Vec<String>>,
    /// Ids of the listed users, groups and service principals: a group or unit member
    /// without `@odata.type` is placed by its id.
    principals: HashMap<String, &'static str>,
    /// Child listings the rules read.
    pub children: Vec<Child>,
    /// Types whose diagnostic settings are read (config `diagnostic_types`).
    diagnosed: Vec<String>,
    pub subscriptions: usize,
    pub groups_of_resources: usize,
    pub edges: usize,
    pub users: usize,
    pub groups: usize,
    pub service_principals: usize,
    pub admin_units: usize,
    pub role_assignments: usize,
    /// Role assignments whose definition is in no listed role definition.
    pub roles_unresolved: usize,
    /// Members without `@odata.type` whose id is no listed user, group or service
    /// principal: no edge is written for them.
    pub members_unknown: usize,
    /// Members of kinds not in the graph (devices, contacts), by `@odata.type`.
    pub members_skipped: usize,
}

impl Out {
    pub fn new(tenant: &str, ab: Abstractor, diagnosed: Vec<String>) -> Out {
        Out {
            tenant: tenant.to_owned(),
            fingerprint: ab.seed().fingerprint(),
            ab,
            tags: HashSet::new(),
            regions: HashSet::new(),
            identities: HashSet::new(),
            managed_identities: HashSet::new(),
            role_names: HashMap::new(),
            role_ids: HashMap::new(),
            principals: HashMap::new(),
            children: Vec::new(),
            diagnosed: diagnosed
                .into_iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            subscriptions: 0,
            groups_of_resources: 0,
            edges: 0,
            users: 0,
            groups: 0,
            service_principals: 0,
            admin_units: 0,
            role_assignments: 0,
            roles_unresolved: 0,
            members_unknown: 0,
            members_skipped: 0,
        }
    }

    /// Resources emitted (each counted once, though written in both views).
    pub fn resources(&self) -> usize {
        self.ab.issued()
    }

    fn edge(
        &mut self,
        cx: &mut Context,
        rel: &str,
        from: (&str, &str),
        to: (&str, &str),
        props: &[(&str, Prop)],
    ) {
        self.edge_by(cx, rel, (from.0, "id", from.1), (to.0, "id", to.1), props);
    }

    /// An edge whose ends are matched on any key property.
    fn edge_by(
        &mut self,
        cx: &mut Context,
        rel: &str,
        from: (&str, &str, &str),
        to: (&str, &str, &str),
        props: &[(&str, Prop)],
    ) {
        let mut e = cx.edge(rel, from, to);
        for (k, v) in props {
            e = e.prop(k, v.clone());
        }
        e.emit();
        self.edges += 1;
    }

    /// The tenant node, from Graph's `/organization` (or bare when that failed).
    pub fn tenant(&mut self, cx: &mut Context, org: Option<&Value>) {
        let domain = org
            .and_then(|o| o["verifiedDomains"].as_array())
            .and_then(|ds| ds.iter().find(|d| d["isDefault"] == Value::Bool(true)))
            .and_then(|d| text(d, "name"));
        cx.node(TENANT, &self.tenant)
            .prop("name", org.and_then(|o| text(o, "displayName")))
            .prop("domain", domain)
            .emit();
    }

    /// A subscription; returns its id (lower-cased).
    pub fn subscription(&mut self, cx: &mut Context, s: &Value) -> Option<String> {
        let id = text(s, "subscriptionId")?.to_ascii_lowercase();
        cx.node(SUBSCRIPTION, &id)
            .prop("name", text(s, "displayName"))
            .prop("state", text(s, "state"))
            .emit();
        let tenant = self.tenant.clone();
        self.edge(
            cx,
            "CONTAINS",
            (TENANT, &tenant),
            (SUBSCRIPTION, &id),
            &[("hierarchy_level", Prop::from(0i64))],
        );
        self.subscriptions += 1;
        Some(id)
    }

    pub fn resource_group(&mut self, cx: &mut Context, sub: &str, g: &Value) {
        let Some(arm_id) = text(g, "id") else { return };
        let id = canonical(arm_id);
        cx.node(RESOURCE_GROUP, &id)
            .prop("name", text(g, "name"))
            .prop("subscription_id", sub)
            .prop("type", "Microsoft.Resources/resourceGroups")
            .prop("location", text(g, "location"))
            .emit();
        self.edge(
            cx,
            "CONTAINS",
            (SUBSCRIPTION, sub),
            (RESOURCE_GROUP, &id),
            &[("hierarchy_level", Prop::from(1i64))],
        );
        self.groups_of_resources += 1;
    }

    /// A resource in both views, its tags, region, identities, facets (private endpoint,
    /// DNS zone, managed identity) and every rule's relationships.
    pub fn resource(&mut self, cx: &mut Context, r: &Value) -> Result<(), SyncError> {
        let Some(arm_id) = text(r, "id") else {
            cx.warn("a resource without an id was skipped");
            return Ok(());
        };
        let canon = canonical(arm_id);
        let ty = text(r, "type")
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| arm_type(&canon));
        let abstracted = self.ab.issue(&canon)?;
        let (sub, group) = scope_parts(arm_id);
        let sub = sub.map(str::to_ascii_lowercase);
        let group_canon = group_id(arm_id);
        let props = r.get("properties");
        let tags = r
            .get("tags")
            .and_then(Value::as_object)
            .filter(|t| !t.is_empty());
        let tags_text = tags.map(|t| Value::Object(t.clone()).to_string());
        let provisioning = props
            .and_then(|p| text(p, "provisioningState"))
            .or_else(|| text(r, "provisioningState"));
        shared(
            cx.node(ORIGINAL, &canon),
            r,
            props,
            tags_text.clone(),
            provisioning,
        )
        .prop("abstracted_id", &abstracted)
        .prop("arm_id", arm_id)
        .prop("resource_group", group)
        .prop("subscription_id", sub.clone())
        .emit();
        let ab_group = group_canon.as_deref().map(|g| self.ab.id(g));
        let ab_sub = sub
            .as_deref()
            .map(|s| self.ab.id(&format!("/subscriptions/{s}")));
        shared(
            cx.node(RESOURCE, &abstracted),
            r,
            props,
            tags_text,
            provisioning,
        )
        .prop("original_id", &canon)
        .prop("resource_group", ab_group)
        .prop("subscription_id", ab_sub)
        .prop("abstraction_type", "hmac-sha256")
        .prop("seed_fingerprint", &self.fingerprint)
        .emit();
        let tenant = self.tenant.clone();
        self.edge(
            cx,
            "SCAN_SOURCE_NODE",
            (RESOURCE, &abstracted),
            (ORIGINAL, &canon),
            &[
                ("tenant_id", Prop::from(tenant)),
                ("confidence", Prop::from(1.0)),
            ],
        );
        let views = [(RESOURCE, abstracted.as_str()), (ORIGINAL, canon.as_str())];
        // A subnet is contained by its virtual network (a rule), not by the group.
        if let Some(g) = group_canon
            .as_deref()
            .filter(|_| ty != "microsoft.network/virtualnetworks/subnets")
        {
            for (label, id) in views {
                self.edge(
                    cx,
                    "CONTAINS",
                    (RESOURCE_GROUP, g),
                    (label, id),
                    &[("hierarchy_level", Prop::from(2i64))],
                );
            }
        }
        for (key, value) in tags.into_iter().flatten() {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let tag = tag_id(key, &value);
            if self.tags.insert(tag.clone()) {
                cx.node(TAG, &tag)
                    .prop("key", key.as_str())
                    .prop("value", &value)
                    .emit();
            }
            for (label, id) in views {
                self.edge(cx, "TAGGED_WITH", (label, id), (TAG, &tag), &[]);
            }
        }
        if let Some(loc) = text(r, "location")
            .map(str::to_ascii_lowercase)
            .filter(|l| !l.is_empty())
        {
            if self.regions.insert(loc.clone()) {
                cx.node(REGION, &loc).prop("name", &loc).emit();
            }
            for (label, id) in views {
                self.edge(cx, "LOCATED_IN", (label, id), (REGION, &loc), &[]);
            }
        }
        self.facets(cx, r, &ty, &canon);
        for rule in rules::direct(&ty) {
            for target in rule.targets(r) {
                self.apply(cx, rule, &canon, target, r);
            }
        }
        for (parent, path, child_type) in rules::EMBEDDED {
            if *parent != ty {
                continue;
            }
            let children = path
                .split('.')
                .try_fold(r, |v, k| v.get(k))
                .and_then(Value::as_array);
            for child in children.into_iter().flatten() {
                let mut child = child.clone();
                if let Some(obj) = child.as_object_mut() {
                    obj.entry("type").or_insert(Value::from(*child_type));
                    if let Some(loc) = r.get("location") {
                        obj.entry("location").or_insert(loc.clone());
                    }
                }
                self.resource(cx, &child)?;
            }
        }
        for via in rules::child_listings(&ty, &self.diagnosed) {
            self.children.push(Child {
                parent: canon.clone(),
                ty: ty.clone(),
                via,
            });
        }
        Ok(())
    }

    /// The nodes some resource types also are: private endpoints, DNS zones and managed
    /// identities (user-assigned ones, and those a resource's `identity` names).
    fn facets(&mut self, cx: &mut Context, r: &Value, ty: &str, canon: &str) {
        let props = &r["properties"];
        match ty {
            "microsoft.network/privateendpoints" => {
                // An endpoint awaiting manual approval has its connection under
                // `manualPrivateLinkServiceConnections` (and the other list empty).
                let state = rules::PE_CONNECTIONS
                    .iter()
                    .filter_map(|list| props[*list].as_array()?.first())
                    .find_map(|c| {
                        c["properties"]["privateLinkServiceConnectionState"]["status"].as_str()
                    });
                cx.node(PRIVATE_ENDPOINT, canon)
                    .prop("name", text(r, "name"))
                    .prop("location", text(r, "location"))
                    .prop("subnet_id", props["subnet"]["id"].as_str().map(canonical))
                    .prop("connection_state", state)
                    .emit();
            }
            rules::DNS_ZONE | rules::PRIVATE_DNS_ZONE => {
                let kind = if ty == rules::DNS_ZONE {
                    "Public"
                } else {
                    "Private"
                };
                cx.node(DNS_ZONE, canon)
                    .prop("name", text(r, "name"))
                    .prop("type", kind)
                    .prop("record_count", props["numberOfRecordSets"].as_i64())
                    .emit();
            }
            rules::UAMI => {
                if let Some(p) = props["principalId"].as_str() {
                    self.identity(
                        cx,
                        p,
                        "UserAssigned",
                        props["clientId"].as_str(),
                        Some(canon),
                    );
                }
            }
            _ => {}
        }
        let identity = &r["identity"];
        if let Some(p) = identity["principalId"].as_str() {
            self.identity(cx, p, "SystemAssigned", None, None);
        }
        if let Some(map) = identity["userAssignedIdentities"].as_object() {
            for (id, v) in map {
                if let Some(p) = v["principalId"].as_str() {
                    self.identity(
                        cx,
                        p,
                        "UserAssigned",
                        v["clientId"].as_str(),
                        Some(&canonical(id)),
                    );
                }
            }
        }
    }

    fn identity(
        &mut self,
        cx: &mut Context,
        principal: &str,
        ty: &str,
        client: Option<&str>,
        resource: Option<&str>,
    ) {
        let principal = principal.to_ascii_lowercase();
        self.managed_identities.insert(principal.clone());
        if self.identities.insert(principal.clone()) {
            cx.node(MANAGED_IDENTITY, &principal)
                .prop("principal_id", &principal)
                .prop("type", ty)
                .prop("client_id", client)
                .prop("resource_id", resource)
                .emit();
        }
    }

    /// One relationship a rule found: `this` is the resource the rule read, `target` the
    /// value at its path.
    /// The edges of `rule` between resource `this` and `target`, found in `source` (the
    /// resource or an item of its child listing), which also holds copied properties.
    pub fn apply(
        &mut self,
        cx: &mut Context,
        rule: &Rule,
        this: &str,
        target: &str,
        source: &Value,
    ) {
        let this_ends: Vec<(&str, String)> = match rule.this {
            This::Resource => vec![(RESOURCE, self.ab.id(this)), (ORIGINAL, this.to_owned())],
            This::PrivateEndpoint => vec![(PRIVATE_ENDPOINT, this.to_owned())],
            This::DnsZone => vec![(DNS_ZONE, this.to_owned())],
        };
        let other_ends: Vec<(&str, String)> = match rule.other {
            Other::Resource => vec![
                (RESOURCE, self.ab.id(target)),
                (ORIGINAL, canonical(target)),
            ],
            Other::ManagedIdentity => vec![(MANAGED_IDENTITY, target.to_ascii_lowercase())],
            // Sign-in names and client ids as Graph spells them: matched as given.
            Other::User => vec![(USER, target.to_owned())],
            Other::ServicePrincipal => vec![(SERVICE_PRINCIPAL, target.to_owned())],
        };
        let key = rule.other.key();
        let mut props: Vec<(&str, Prop)> = rule
            .props
            .iter()
            .map(|(k, v)| (*k, Prop::from(*v)))
            .collect();
        for (name, path) in rule.copied {
            let found = rules::strings_at(source, path);
            props.push((name, Prop::from(found.first().map(|s| s.to_string()))));
        }
        for (i, (a_label, a)) in this_ends.iter().enumerate() {
            for (j, (b_label, b)) in other_ends.iter().enumerate() {
                // Between resources each view links to itself only.
                let both_resources = rule.this == This::Resource && rule.other == Other::Resource;
                if both_resources && i != j {
                    continue;
                }
                let (from, to) = match rule.dir {
                    rules::Dir::Out => ((*a_label, "id", a.as_str()), (*b_label, key, b.as_str())),
                    rules::Dir::In => ((*b_label, key, b.as_str()), (*a_label, "id", a.as_str())),
                };
                self.edge_by(cx, rule.rel, from, to, &props);
            }
        }
    }

    pub fn role_definition(&mut self, cx: &mut Context, d: &Value) {
        let Some(id) = text(d, "id").map(canonical) else {
            return;
        };
        let p = &d["properties"];
        if let Some(name) = p["roleName"].as_str() {
            self.role_names.insert(id.clone(), name.to_owned());
        }
        let ids = self
            .role_ids
            .entry(last_segment(&id).to_owned())
            .or_default();
        if !ids.contains(&id) {
            ids.push(id.clone());
        }
        cx.node(ROLE_DEFINITION, &id)
            .prop("role_name", p["roleName"].as_str())
            .prop("type", p["type"].as_str())
            .prop("description", p["description"].as_str())
            .prop("permissions", json_text(p.get("permissions")))
            .emit();
    }

    /// A role assignment, with `ASSIGNED_TO`, `HAS_ROLE` and `ASSIGNED_ROLE` for its
    /// principal. Call after every resource and role definition was seen.
    pub fn role_assignment(&mut self, cx: &mut Context, a: &Value) {
        let Some(id) = text(a, "id").map(canonical) else {
            return;
        };
        let p = &a["properties"];
        let principal = p["principalId"].as_str().map(str::to_ascii_lowercase);
        let role = p["roleDefinitionId"].as_str().map(canonical);
        let scope = p["scope"].as_str().map(canonical);
        let ptype = p["principalType"].as_str();
        cx.node(ROLE_ASSIGNMENT, &id)
            .prop("principal_id", principal.clone())
            .prop("role_definition_id", role.clone())
            .prop("scope", scope.clone())
            .prop("principal_type", ptype)
            .emit();
        self.role_assignments += 1;
        let Some(principal) = principal else { return };
        let mut labels: Vec<&str> = match ptype {
            Some("User") => vec![USER],
            Some("Group") | Some("ForeignGroup") => vec![GROUP],
            Some("ServicePrincipal") => vec![SERVICE_PRINCIPAL],
            _ => vec![],
        };
        if self.managed_identities.contains(&principal) {
            labels.push(MANAGED_IDENTITY);
        }
        let definition = role
            .as_deref()
            .and_then(|r| self.definition_of(r, &id, scope.as_deref()));
        if role.is_some() && definition.is_none() {
            self.roles_unresolved += 1;
        }
        let role_name = definition
            .as_ref()
            .and_then(|r| self.role_names.get(r).cloned());
        let targets = scope
            .as_deref()
            .map(|s| self.scope_targets(s))
            .unwrap_or_default();
        for label in labels {
            self.edge(
                cx,
                "ASSIGNED_TO",
                (ROLE_ASSIGNMENT, &id),
                (label, &principal),
                &[],
            );
            if let Some(role) = &definition {
                self.edge(
                    cx,
                    "HAS_ROLE",
                    (label, &principal),
                    (ROLE_DEFINITION, role),
                    &[],
                );
            }
            for (t_label, t_id) in &targets {
                let props = [
                    ("role_name", Prop::from(role_name.clone())),
                    ("scope", Prop::from(scope.clone())),
                ];
                self.edge(
                    cx,
                    "ASSIGNED_ROLE",
                    (label, &principal),
                    (t_label, t_id),
                    &props,
                );
            }
        }
    }

    /// The listed role definition an assignment's `roleDefinitionId` names, matched on the
    /// GUID: the same id if listed; else the one listed under the subscription of the
    /// assignment (its id, then its scope); else the first listed with that GUID.
    fn definition_of(&self, role: &str, assignment: &str, scope: Option<&str>) -> Option<String> {
        let listed = self.role_ids.get(last_segment(role))?;
        if listed.iter().any(|d| d == role) {
            return Some(role.to_owned());
        }
        let in_sub = |of: &str| {
            let sub = scope_parts(of).0?;
            let prefix = format!("/subscriptions/{sub}/");
            listed.iter().find(|d| d.starts_with(&prefix)).cloned()
        };
        in_sub(assignment)
            .or_else(|| scope.and_then(in_sub))
            .or_else(|| listed.first().cloned())
    }

    /// The nodes an assignment scope names: a subscription, a group, or a resource in both
    /// views. Management groups and the root scope have no node.
    fn scope_targets(&self, scope: &str) -> Vec<(&'static str, String)> {
        let parts: Vec<&str> = scope.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            ["subscriptions", s] => vec![(SUBSCRIPTION, (*s).to_owned())],
            ["subscriptions", _, "resourcegroups", _] => vec![(RESOURCE_GROUP, scope.to_owned())],
            ["subscriptions", _, "resourcegroups", _, "providers", ..] => {
                vec![(RESOURCE, self.ab.id(scope)), (ORIGINAL, scope.to_owned())]
            }
            _ => vec![],
        }
    }

    pub fn user(&mut self, cx: &mut Context, u: &Value) {
        let Some(id) = text(u, "id") else { return };
        self.principals.insert(id.to_owned(), USER);
        cx.node(USER, id)
            .prop("user_principal_name", text(u, "userPrincipalName"))
            .prop("display_name", text(u, "displayName"))
            .prop("account_enabled", u["accountEnabled"].as_bool())
            .prop("user_type", text(u, "userType"))
            .prop("mail", text(u, "mail"))
            .emit();
        self.users += 1;
    }

    /// A group; returns its id, whose members are listed later.
    pub fn group(&mut self, cx: &mut Context, g: &Value) -> Option<String> {
        let id = text(g, "id")?;
        let types: Vec<String> = g["groupTypes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        self.principals.insert(id.to_owned(), GROUP);
        cx.node(GROUP, id)
            .prop("display_name", text(g, "displayName"))
            .prop("description", text(g, "description"))
            .prop("group_types", types)
            .prop("mail_enabled", g["mailEnabled"].as_bool())
            .prop("security_enabled", g["securityEnabled"].as_bool())
            .emit();
        self.groups += 1;
        Some(id.to_owned())
    }

    pub fn service_principal(&mut self, cx: &mut Context, s: &Value) {
        let Some(id) = text(s, "id") else { return };
        self.principals.insert(id.to_owned(), SERVICE_PRINCIPAL);
        cx.node(SERVICE_PRINCIPAL, id)
            .prop("app_id", text(s, "appId"))
            .prop("display_name", text(s, "displayName"))
            .prop("service_principal_type", text(s, "servicePrincipalType"))
            .prop("account_enabled", s["accountEnabled"].as_bool())
            .emit();
        self.service_principals += 1;
    }

    /// An administrative unit; returns its id, whose members are listed later.
    pub fn admin_unit(&mut self, cx: &mut Context, a: &Value) -> Option<String> {
        let id = text(a, "id")?;
        cx.node(ADMIN_UNIT, id)
            .prop("display_name", text(a, "displayName"))
            .prop("description", text(a, "description"))
            .prop("visibility", text(a, "visibility"))
            .emit();
        self.admin_units += 1;
        Some(id.to_owned())
    }

    /// A direct member of a group or administrative unit (`container` of `label`). Graph
    /// names the member's kind in `@odata.type`; where that is absent (Microsoft's own
    /// examples show members as bare `{"id": …}`), the kind is the listed user, group or
    /// service principal of that id. Call after those listings.
    pub fn member(&mut self, cx: &mut Context, label: &str, container: &str, m: &Value) {
        let Some(id) = text(m, "id") else {
            self.members_unknown += 1;
            return;
        };
        let from = match text(m, "@odata.type") {
            Some("#microsoft.graph.user") => USER,
            Some("#microsoft.graph.group") => GROUP,
            Some("#microsoft.graph.servicePrincipal") => SERVICE_PRINCIPAL,
            // Devices, contacts, org contacts: not in the graph.
            Some(_) => {
                self.members_skipped += 1;
                return;
            }
            None => match self.principals.get(id) {
                Some(label) => label,
                None => {
                    self.members_unknown += 1;
                    return;
                }
            },
        };
        self.edge(
            cx,
            "MEMBER_OF",
            (from, id),
            (label, container),
            &[("membership_type", Prop::from("Direct"))],
        );
    }

    /// An item of a child listing, read by every rule on it.
    pub fn child(&mut self, cx: &mut Context, c: &Child, item: &Value) {
        let rules: Vec<&Rule> = rules::child_rules(&c.ty, c.via, &self.diagnosed).collect();
        for rule in rules {
            for target in rule.targets(item) {
                self.apply(cx, rule, &c.parent, target, item);
            }
        }
    }
}

/// The last segment of an id: a role definition's GUID.
fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_ids_name_one_pair() {
        assert_eq!(tag_id("env", "prod"), "env=prod");
        assert_ne!(tag_id("a=b", "c"), tag_id("a", "b=c"));
        assert_eq!(tag_id("a=b", "c"), "a%3Db=c");
    }
}
