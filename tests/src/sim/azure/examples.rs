//! A tenant made of Microsoft's published example responses (`tests/fixtures/azure/`, with
//! their sources in its `README.md`): the objects the ARM and Graph examples return,
//! served by the simulator under the ids the examples name, paged as the real APIs page.
//! What no example gives (subscription entries for the two subscription ids the resource
//! examples use, a user object for the principal the role assignment examples name) is
//! made here and said so.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AzureData;

macro_rules! fixture {
    ($file:literal) => {
        include_str!(concat!("../../../fixtures/azure/", $file))
    };
}

/// The subscription the Microsoft.Network examples use (`parameters.subscriptionId`).
pub const SUB_NETWORK: &str = "subId";
/// The subscription the private DNS examples use.
pub const SUB_DNS: &str = "subscriptionId";
/// The subscription the Microsoft.Authorization examples use.
pub const SUB_RBAC: &str = "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2";
/// The organization of `graph/organization-list.json`.
pub const TENANT: &str = "84841066-274d-4ec0-a5c1-276be684bdd3";
/// The groups of `group-list.example1.json` whose members the two `group-list-members`
/// examples are served as (the docs write `{id}`: which group is ours to choose).
pub const GOLF_ASSIST: &str = "45b7d2e7-b882-4a80-ba97-10b7a63b8fa4";
pub const GOLF_DISCUSSION: &str = "d7797254-3084-44d0-99c9-a3b5ab149538";
/// The administrative unit of `directory-list-administrativeunits.json`, whose members the
/// `administrativeunit-list-members` example (two devices) is served as.
pub const SEATTLE_SCHOOLS: &str = "4d7ea995-bc0f-45c0-8c3e-132e93bf95f8";

/// Every committed example, by its file name under `tests/fixtures/azure/`.
pub const FILES: &[(&str, &str)] = &[
    (
        "arm/GetSubscriptions.json",
        fixture!("arm/GetSubscriptions.json"),
    ),
    (
        "arm/VirtualNetworkListAll.json",
        fixture!("arm/VirtualNetworkListAll.json"),
    ),
    (
        "arm/NetworkInterfaceListAll.json",
        fixture!("arm/NetworkInterfaceListAll.json"),
    ),
    (
        "arm/IdentityListBySubscription.json",
        fixture!("arm/IdentityListBySubscription.json"),
    ),
    (
        "arm/ListZonesBySubscription.json",
        fixture!("arm/ListZonesBySubscription.json"),
    ),
    (
        "arm/PrivateZoneListInSubscription.json",
        fixture!("arm/PrivateZoneListInSubscription.json"),
    ),
    (
        "arm/VirtualNetworkLinkList.json",
        fixture!("arm/VirtualNetworkLinkList.json"),
    ),
    (
        "arm/PrivateEndpointListAll.json",
        fixture!("arm/PrivateEndpointListAll.json"),
    ),
    (
        "arm/PrivateLinkServiceListAll.json",
        fixture!("arm/PrivateLinkServiceListAll.json"),
    ),
    (
        "arm/GetRoleDefinitionAtScope.json",
        fixture!("arm/GetRoleDefinitionAtScope.json"),
    ),
    (
        "arm/RoleAssignments_ListForResourceGroup.json",
        fixture!("arm/RoleAssignments_ListForResourceGroup.json"),
    ),
    (
        "arm/RoleAssignments_CreateForSubscription.json",
        fixture!("arm/RoleAssignments_CreateForSubscription.json"),
    ),
    (
        "graph/user-list.example1.json",
        fixture!("graph/user-list.example1.json"),
    ),
    (
        "graph/group-list.example1.json",
        fixture!("graph/group-list.example1.json"),
    ),
    (
        "graph/group-list-members.example1.json",
        fixture!("graph/group-list-members.example1.json"),
    ),
    (
        "graph/group-list-members.example4.json",
        fixture!("graph/group-list-members.example4.json"),
    ),
    (
        "graph/group-list-members.2015.json",
        fixture!("graph/group-list-members.2015.json"),
    ),
    (
        "graph/organization-list.json",
        fixture!("graph/organization-list.json"),
    ),
    (
        "graph/serviceprincipal-list.json",
        fixture!("graph/serviceprincipal-list.json"),
    ),
    (
        "graph/directory-list-administrativeunits.json",
        fixture!("graph/directory-list-administrativeunits.json"),
    ),
    (
        "graph/administrativeunit-list-members.example1.json",
        fixture!("graph/administrativeunit-list-members.example1.json"),
    ),
];

/// An example file, parsed.
pub fn example(file: &str) -> Value {
    let (_, text) = FILES
        .iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("no example {file} in tests/fixtures/azure"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The items of a listing example: `responses.200.body.value` of an ARM example file,
/// `value` of a Graph response body.
pub fn items(file: &str) -> Vec<Value> {
    let doc = example(file);
    let list = if file.starts_with("arm/") {
        &doc["responses"]["200"]["body"]["value"]
    } else {
        &doc["value"]
    };
    list.as_array()
        .unwrap_or_else(|| panic!("{file} has no value list"))
        .clone()
}

impl AzureData {
    /// The example tenant: the organization and subscriptions of the list examples, plus
    /// `subId`, holding the virtual networks, NICs, private endpoints and private link
    /// services of the Microsoft.Network list examples (one endpoint awaiting manual
    /// approval), the public DNS zones of the DNS one and the user-assigned identity of the
    /// Microsoft.ManagedIdentity one;
    /// `subscriptionId` the private DNS zones, the first with its virtual network links;
    /// `a925f2f7-…` the role assignments of `RoleAssignments_ListForResourceGroup`, which
    /// name their definition in the tenant-level form, and the definition of
    /// `GetRoleDefinitionAtScope` listed under that subscription with the id the
    /// `RoleAssignments_CreateForSubscription` request names for the same role; Graph the
    /// users and groups of the list examples, and group members without `@odata.type`
    /// (one a listed user, one no listed object); the service principal and administrative
    /// unit of their list examples, the unit's members two devices.
    pub fn examples() -> AzureData {
        let subscription = |s: &str| {
            json!({"id": format!("/subscriptions/{s}"), "subscriptionId": s, "displayName": s,
                   "state": "Enabled", "tenantId": TENANT})
        };
        let mut subscriptions = items("arm/GetSubscriptions.json");
        subscriptions.extend([SUB_NETWORK, SUB_DNS, SUB_RBAC].map(subscription));
        let mut resources = items("arm/VirtualNetworkListAll.json");
        resources.extend(items("arm/NetworkInterfaceListAll.json"));
        resources.extend(items("arm/IdentityListBySubscription.json"));
        resources.extend(items("arm/ListZonesBySubscription.json"));
        resources.extend(items("arm/PrivateEndpointListAll.json"));
        resources.extend(items("arm/PrivateLinkServiceListAll.json"));

        let listed = items("arm/GetRoleDefinitionAtScope.json");
        let named = example("arm/RoleAssignments_CreateForSubscription.json")["parameters"]
            ["parameters"]["properties"]["roleDefinitionId"]
            .clone();
        let mut definition = listed[0].clone();
        let guid = named
            .as_str()
            .and_then(|n| n.rsplit('/').next())
            .map(str::to_owned);
        definition["id"] = named;
        definition["name"] = json!(guid);

        // The zone `VirtualNetworkLinkList` names in its parameters.
        let links = example("arm/VirtualNetworkLinkList.json")["parameters"].clone();
        let links_of = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/privateDnsZones/{}/virtualNetworkLinks",
            links["subscriptionId"].as_str().unwrap_or_default(),
            links["resourceGroupName"].as_str().unwrap_or_default(),
            links["privateZoneName"].as_str().unwrap_or_default(),
        )
        .to_ascii_lowercase();

        let assignments = items("arm/RoleAssignments_ListForResourceGroup.json");
        let mut users = items("graph/user-list.example1.json");
        users.extend(items("graph/group-list-members.example4.json"));
        // The principal the assignments name, a user by their `principalType`: no Graph
        // example has it, so it is listed with its id alone.
        for a in &assignments {
            let id = &a["properties"]["principalId"];
            if !users.iter().any(|u| u["id"] == *id) {
                users.push(json!({"id": id}));
            }
        }

        AzureData {
            tenant_id: TENANT.into(),
            organization: items("graph/organization-list.json")[0].clone(),
            subscriptions,
            resources: BTreeMap::from([
                (SUB_NETWORK.into(), resources),
                (
                    SUB_DNS.into(),
                    items("arm/PrivateZoneListInSubscription.json"),
                ),
            ]),
            children: BTreeMap::from([(links_of, items("arm/VirtualNetworkLinkList.json"))]),
            role_definitions: BTreeMap::from([
                (SUB_NETWORK.into(), listed),
                (SUB_RBAC.into(), vec![definition]),
            ]),
            role_assignments: BTreeMap::from([(SUB_RBAC.into(), assignments)]),
            users,
            groups: items("graph/group-list.example1.json"),
            service_principals: items("graph/serviceprincipal-list.json"),
            admin_units: items("graph/directory-list-administrativeunits.json"),
            unit_members: BTreeMap::from([(
                SEATTLE_SCHOOLS.into(),
                items("graph/administrativeunit-list-members.example1.json"),
            )]),
            members: BTreeMap::from([
                (
                    GOLF_ASSIST.into(),
                    items("graph/group-list-members.example1.json"),
                ),
                (
                    GOLF_DISCUSSION.into(),
                    items("graph/group-list-members.2015.json"),
                ),
            ]),
            ..AzureData::default()
        }
    }
}
