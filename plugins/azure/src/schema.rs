//! Every node and relationship the plugin writes (`docs/providers/azure.md`),
//! names converted to the graph conventions: labels PascalCase, relationship types
//! SCREAMING_SNAKE_CASE, properties snake_case (`displayName` becomes `display_name`).
//! Relationship kinds derived by rules are generated from [`crate::rules::RULES`], each
//! rule listed in its relationship's description.

use std::collections::BTreeMap;

use infragraph_sdk::{Access, EdgeKind, NodeKind, ValueType};

use crate::rules::{Dir, Lit, Other, RULES, This};

pub const TENANT: &str = "Tenant";
pub const SUBSCRIPTION: &str = "Subscription";
pub const RESOURCE_GROUP: &str = "ResourceGroup";
/// The abstracted view of a resource.
pub const RESOURCE: &str = "Resource";
/// The original view of a resource; it also carries the labels `Resource` and `Original`.
pub const ORIGINAL: &str = "OriginalResource";
pub const TAG: &str = "Tag";
pub const REGION: &str = "Region";
pub const USER: &str = "User";
pub const GROUP: &str = "Group";
pub const SERVICE_PRINCIPAL: &str = "ServicePrincipal";
pub const MANAGED_IDENTITY: &str = "ManagedIdentity";
pub const ROLE_DEFINITION: &str = "RoleDefinition";
pub const ROLE_ASSIGNMENT: &str = "RoleAssignment";
pub const ADMIN_UNIT: &str = "AdminUnit";
pub const PRIVATE_ENDPOINT: &str = "PrivateEndpoint";
pub const DNS_ZONE: &str = "DNSZone";

/// Labels whose nodes an identity (principal) may be.
pub const PRINCIPALS: [&str; 4] = [USER, GROUP, SERVICE_PRINCIPAL, MANAGED_IDENTITY];

use ValueType::{Boolean, Float, Int, Map, Text, TextList};

/// The properties both views of a resource share.
fn resource_props(kind: NodeKind) -> NodeKind {
    kind.prop("name", Text, "Resource name, unchanged in both views")
        .indexed_prop(
            "type",
            Text,
            "ARM resource type, e.g. Microsoft.Compute/virtualMachines",
        )
        .prop("location", Text, "Azure region")
        .prop("kind", Text, "ARM `kind`, when the type has kinds")
        .prop(
            "properties",
            Text,
            "The resource's ARM `properties`, as JSON text (only for types listed with properties)",
        )
        .prop("sku", Text, "The ARM `sku`, as JSON text")
        .prop(
            "tags",
            Map,
            "The resource's tags (a map; JSON text in Neo4j)",
        )
        .prop("provisioning_state", Text, "ARM provisioning state")
}

pub fn nodes() -> Vec<NodeKind> {
    vec![
        NodeKind::new(TENANT, "The Entra ID tenant: the scope of a sync")
            .prop("name", Text, "Tenant display name")
            .prop("domain", Text, "Default verified domain"),
        NodeKind::new(SUBSCRIPTION, "An Azure subscription")
            .prop("name", Text, "Subscription display name")
            .prop("state", Text, "Enabled, Disabled, Warned, PastDue, Deleted"),
        NodeKind::new(RESOURCE_GROUP, "A resource group; id is its lower-cased ARM id")
            .prop("name", Text, "Resource group name")
            .prop("subscription_id", Text, "Parent subscription id")
            .prop("type", Text, "Always Microsoft.Resources/resourceGroups")
            .prop("location", Text, "Azure region"),
        resource_props(
            NodeKind::new(
                RESOURCE,
                "A resource, abstracted view: id is a type prefix and an HMAC-SHA-256 of the \
                 lower-cased ARM id keyed by the tenant seed (e.g. vm-3f2a...)",
            )
            .indexed_prop("original_id", Text, "The lower-cased ARM id (the original view's id)")
            .prop("resource_group", Text, "Abstracted id of the parent resource group")
            .prop("subscription_id", Text, "Abstracted id of the parent subscription")
            .prop("abstraction_type", Text, "How the id was abstracted: hmac-sha256")
            .prop("seed_fingerprint", Text, "16 hex digits identifying the tenant seed used, without revealing it"),
        ),
        resource_props(
            NodeKind::new(
                ORIGINAL,
                "A resource, original view (labels Resource:Original): id is the lower-cased ARM id",
            )
            .extra_label("Resource")
            .extra_label("Original")
            .indexed_prop("abstracted_id", Text, "The abstracted view's id")
            .prop("arm_id", Text, "The ARM id as Azure returned it (case preserved)")
            .prop("resource_group", Text, "Parent resource group name")
            .prop("subscription_id", Text, "Parent subscription id"),
        ),
        NodeKind::new(TAG, "A tag (key and value), shared by both views; id is key=value")
            .prop("key", Text, "Tag key")
            .prop("value", Text, "Tag value"),
        NodeKind::new(REGION, "An Azure region resources are located in; id is its name")
            .prop("name", Text, "Region name, e.g. westeurope"),
        NodeKind::new(USER, "An Entra ID user; id is the object id")
            .indexed_prop("user_principal_name", Text, "User principal name")
            .prop("display_name", Text, "Display name")
            .prop("account_enabled", Boolean, "Whether the account is enabled")
            .prop("user_type", Text, "Member or Guest")
            .prop("mail", Text, "Email address"),
        NodeKind::new(
            GROUP,
            "An Entra ID group; id is the object id. Every group also carries the label \
             IdentityGroup, the schema's name for a group used for identity management",
        )
        .extra_label("IdentityGroup")
        .prop("display_name", Text, "Display name")
        .prop("description", Text, "Description")
        .prop("group_types", TextList, "Group types, e.g. Unified; empty for security groups")
        .prop("mail_enabled", Boolean, "Whether mail is enabled")
        .prop("security_enabled", Boolean, "Whether security is enabled"),
        NodeKind::new(SERVICE_PRINCIPAL, "An Entra ID service principal; id is the object id")
            .indexed_prop("app_id", Text, "Application (client) id")
            .prop("display_name", Text, "Display name")
            .prop("service_principal_type", Text, "Application, ManagedIdentity, Legacy, SocialIdp")
            .prop("account_enabled", Boolean, "Whether it is enabled"),
        NodeKind::new(
            MANAGED_IDENTITY,
            "A managed identity a resource uses; id is its principal (object) id, the id role \
             assignments name",
        )
        .prop("principal_id", Text, "Principal (object) id")
        .prop("type", Text, "SystemAssigned or UserAssigned")
        .prop("client_id", Text, "Client id (user-assigned)")
        .prop("resource_id", Text, "Lower-cased ARM id of the user-assigned identity resource"),
        NodeKind::new(ROLE_DEFINITION, "An Azure RBAC role definition; id is its lower-cased ARM id")
            .prop("role_name", Text, "Role name, e.g. Owner")
            .prop("type", Text, "BuiltInRole or CustomRole")
            .prop("description", Text, "Description")
            .prop("permissions", Text, "The permissions, as JSON text"),
        NodeKind::new(ROLE_ASSIGNMENT, "An Azure RBAC role assignment; id is its lower-cased ARM id")
            .prop("principal_id", Text, "The assigned identity's object id")
            .prop("role_definition_id", Text, "Lower-cased ARM id of the role definition")
            .prop("scope", Text, "Assignment scope (lower-cased ARM id)")
            .prop("principal_type", Text, "User, Group or ServicePrincipal"),
        NodeKind::new(ADMIN_UNIT, "An Entra ID administrative unit; id is the object id")
            .prop("display_name", Text, "Display name")
            .prop("description", Text, "Description")
            .prop("visibility", Text, "Visibility setting"),
        NodeKind::new(PRIVATE_ENDPOINT, "A private endpoint; id is its lower-cased ARM id (its resource's original id)")
            .prop("name", Text, "Private endpoint name")
            .prop("location", Text, "Azure region")
            .prop("subnet_id", Text, "Lower-cased ARM id of its subnet")
            .prop("connection_state", Text, "State of its first private link connection"),
        NodeKind::new(DNS_ZONE, "A DNS zone, public or private; id is its lower-cased ARM id (its resource's original id)")
            .prop("name", Text, "Zone name, e.g. example.com")
            .prop("type", Text, "Public or Private")
            .prop("record_count", Int, "Number of record sets"),
    ]
}

/// The end labels of an end of a rule: a resource end is both views.
fn labels_of(this: This) -> &'static [&'static str] {
    match this {
        This::Resource => &[RESOURCE, ORIGINAL],
        This::PrivateEndpoint => &[PRIVATE_ENDPOINT],
        This::DnsZone => &[DNS_ZONE],
    }
}

fn labels_of_other(other: Other) -> &'static [&'static str] {
    match other {
        Other::Resource => &[RESOURCE, ORIGINAL],
        Other::ManagedIdentity => &[MANAGED_IDENTITY],
        Other::User => &[USER],
        Other::ServicePrincipal => &[SERVICE_PRINCIPAL],
    }
}

/// The (from, to) label pairs a rule's edges join: between resources, each view to itself.
pub fn rule_ends(this: This, other: Other, dir: Dir) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for a in labels_of(this) {
        for b in labels_of_other(other) {
            let same_view = this != This::Resource || other != Other::Resource || a == b;
            if same_view {
                out.push(match dir {
                    Dir::Out => (*a, *b),
                    Dir::In => (*b, *a),
                });
            }
        }
    }
    out
}

fn lit_type(l: Lit) -> ValueType {
    match l {
        Lit::Text(_) => Text,
        Lit::Int(_) => Int,
    }
}

/// The rules of one relationship kind, the properties they set with their values, and
/// those they copy from the resource (name, path).
type RuleKind = (
    Vec<String>,
    Vec<(&'static str, Vec<Lit>)>,
    Vec<(&'static str, &'static str)>,
);

pub fn edges() -> Vec<EdgeKind> {
    let mut out = Vec::new();
    let both = [RESOURCE, ORIGINAL];
    // (:Tenant)-[:CONTAINS]->(:Subscription)
    out.push(
        EdgeKind::new(
            "CONTAINS",
            TENANT,
            SUBSCRIPTION,
            "The tenant holds the subscription",
        )
        .prop("hierarchy_level", Int, "0: tenant to subscription")
        .access(Access::containment()),
    );
    // (:Subscription)-[:CONTAINS]->(:ResourceGroup)
    out.push(
        EdgeKind::new(
            "CONTAINS",
            SUBSCRIPTION,
            RESOURCE_GROUP,
            "The subscription holds the group",
        )
        .prop("hierarchy_level", Int, "1: subscription to resource group")
        .access(Access::containment()),
    );
    for view in both {
        // (:ResourceGroup)-[:CONTAINS]->(:Resource|OriginalResource)
        out.push(
            EdgeKind::new(
                "CONTAINS",
                RESOURCE_GROUP,
                view,
                "The group holds the resource (both views)",
            )
            .prop("hierarchy_level", Int, "2: resource group to resource")
            .access(Access::containment()),
        );
        // (:Resource|OriginalResource)-[:TAGGED_WITH]->(:Tag)
        out.push(EdgeKind::new(
            "TAGGED_WITH",
            view,
            TAG,
            "The resource carries the tag; tags are shared by both views",
        ));
        // (:Resource|OriginalResource)-[:LOCATED_IN]->(:Region)
        out.push(EdgeKind::new(
            "LOCATED_IN",
            view,
            REGION,
            "The resource is deployed in the region",
        ));
    }
    // (:Resource)-[:SCAN_SOURCE_NODE]->(:OriginalResource)
    out.push(
        EdgeKind::new(
            "SCAN_SOURCE_NODE",
            RESOURCE,
            ORIGINAL,
            "Links each abstracted resource to its original, one to one",
        )
        .prop("tenant_id", Text, "The tenant id")
        .prop("confidence", Float, "Confidence of the abstraction: 1.0"),
    );
    // (:User|Group|ServicePrincipal)-[:MEMBER_OF]->(:Group|AdminUnit)
    for (from, to) in [
        (USER, GROUP),
        (GROUP, GROUP),
        (SERVICE_PRINCIPAL, GROUP),
        (USER, ADMIN_UNIT),
        (GROUP, ADMIN_UNIT),
        (SERVICE_PRINCIPAL, ADMIN_UNIT),
    ] {
        out.push(
            EdgeKind::new(
                "MEMBER_OF",
                from,
                to,
                "A direct member of the group or administrative unit",
            )
            .prop(
                "membership_type",
                Text,
                "Direct (nested memberships are chains of MEMBER_OF)",
            )
            .access(Access::membership()),
        );
    }
    for principal in PRINCIPALS {
        // (:RoleAssignment)-[:ASSIGNED_TO]->(:User|Group|ServicePrincipal|ManagedIdentity)
        out.push(EdgeKind::new(
            "ASSIGNED_TO",
            ROLE_ASSIGNMENT,
            principal,
            "The assignment grants its role to this identity",
        ));
        // (:User|Group|ServicePrincipal|ManagedIdentity)-[:HAS_ROLE]->(:RoleDefinition)
        out.push(EdgeKind::new(
            "HAS_ROLE",
            principal,
            ROLE_DEFINITION,
            "The identity holds the role through an assignment",
        ));
        // (:User|...)-[:ASSIGNED_ROLE]->(:Subscription|ResourceGroup|Resource|OriginalResource)
        for scope in [SUBSCRIPTION, RESOURCE_GROUP, RESOURCE, ORIGINAL] {
            out.push(
                EdgeKind::new(
                    "ASSIGNED_ROLE",
                    principal,
                    scope,
                    "The identity was assigned a role at this scope (resources in both views)",
                )
                .prop("role_name", Text, "Name of the role")
                .prop("scope", Text, "The assignment scope")
                .access(Access::grant(["role_name"])),
            );
        }
    }
    // (:RoleAssignment)-[:ASSIGNED_ROLE]... is not in the schema: the assignment node keeps
    // its scope and role as properties.

    // Rule-derived kinds, one per (type, from, to), each listing its rules.
    let mut by_kind: BTreeMap<(&str, &str, &str), RuleKind> = BTreeMap::new();
    for r in RULES {
        for (from, to) in rule_ends(r.this, r.other, r.dir) {
            let e = by_kind.entry((r.rel, from, to)).or_default();
            e.0.push(r.describe());
            for &(name, lit) in r.props {
                match e.1.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, lits)) if !lits.contains(&lit) => lits.push(lit),
                    Some(_) => {}
                    None => e.1.push((name, vec![lit])),
                }
            }
            for &copied in r.copied {
                if !e.2.contains(&copied) {
                    e.2.push(copied);
                }
            }
        }
    }
    for ((rel, from, to), (rules, props, copied)) in by_kind {
        // CONTAINS between resources shares its declaration key with nothing above.
        let mut kind = EdgeKind::new(
            rel,
            from,
            to,
            format!(
                "Derived by rules (resource type: property path): {}",
                rules.join("; ")
            ),
        );
        for (name, lits) in props {
            let values: Vec<String> = lits.iter().map(Lit::to_string).collect();
            kind = kind.prop(
                name,
                lit_type(lits[0]),
                format!("Set by the rule: {}", values.join(" or ")),
            );
        }
        for (name, path) in copied {
            kind = kind.prop(name, Text, format!("The resource's `{path}`"));
        }
        out.push(kind);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_edges_join_each_view_to_itself() {
        assert_eq!(
            rule_ends(This::Resource, Other::Resource, Dir::Out),
            [(RESOURCE, RESOURCE), (ORIGINAL, ORIGINAL)]
        );
        assert_eq!(
            rule_ends(This::PrivateEndpoint, Other::Resource, Dir::In),
            [(RESOURCE, PRIVATE_ENDPOINT), (ORIGINAL, PRIVATE_ENDPOINT)]
        );
        assert_eq!(
            rule_ends(This::Resource, Other::ManagedIdentity, Dir::Out),
            [(RESOURCE, MANAGED_IDENTITY), (ORIGINAL, MANAGED_IDENTITY)]
        );
    }

    #[test]
    fn every_rule_is_listed_in_the_schema() {
        let edges = edges();
        let all: String = format!("{edges:?}");
        for r in RULES {
            assert!(all.contains(&r.path.to_string()), "{}", r.describe());
        }
    }
}
