//! An Azure tenant on loopback (issue 8): the Entra ID token endpoint, Azure Resource
//! Manager and Microsoft Graph, on one port (their paths do not overlap).
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant. It checks the
//!   tenant, the client id and the client secret, and issues a token for the scope asked
//!   (`https://management.azure.com/.default` or `https://graph.microsoft.com/.default`).
//! - ARM: `GET /subscriptions`, and under `/subscriptions/{s}`: `resourcegroups`,
//!   `resources` (no `properties`, as ARM's generic listing), `providers/{ns}/{type}` (the
//!   resources of that type, with `properties`), `providers/Microsoft.Authorization/
//!   {roleDefinitions,roleAssignments}`, and child listings under a resource id
//!   (`.../dnszones/{zone}/recordsets`). Pages follow `nextLink`.
//! - Graph: `GET /v1.0/{organization,users,groups,servicePrincipals,
//!   directory/administrativeUnits}` and `.../{id}/members`. Pages follow `@odata.nextLink`.
//!
//! As the real APIs answer (issue 15): role assignments name their definition in the
//! tenant-level form `/providers/Microsoft.Authorization/roleDefinitions/{guid}` (most of
//! the sample's; the rest with the subscription prefix), though definitions are listed
//! per subscription; group members may come without `@odata.type`. [`AzureData::examples`]
//! is a tenant made of Microsoft's published example responses (`tests/fixtures/azure/`).
//!
//! Every ARM and Graph request needs `Authorization: Bearer` with a live token *of that
//! API's audience*; a token of the other API answers 401
//! (`InvalidAuthenticationTokenAudience`). Pages hold `$top` items (at most the
//! simulator's page size). Faults: throttling (429 with `Retry-After`), tokens that expire
//! after a number of requests, and subscriptions that answer 403.
//!
//! Many tenants ([`AzureSim::start_many`]): each [`Account`] is a tenant (its
//! `AzureData::tenant_id`) with its own app registration (`id`: client id, `secret`:
//! client secret). The token endpoint of `/{tenant}/` accepts that tenant's client only
//! and issues tokens scoped to it; ARM and Graph answer a token with its tenant's data
//! only. A refused account's secret answers 401 `invalid_client` (AADSTS7000222, an
//! expired secret); a rate-limited tenant answers its ARM and Graph requests past its
//! budget with 429 and `Retry-After`, as ARM's per-principal throttling does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::accounts::{Account, Accounts, Denied, PerAccount};
use super::ids::uuid;
use super::server::{RequestLog, Server};

pub mod examples;

const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The tail of a diagnostic settings listing's path, lower-case.
const DIAGNOSTIC_SETTINGS: &str = "/providers/microsoft.insights/diagnosticsettings";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Everything the simulated tenant holds, as the APIs serve it.
#[derive(Debug, Clone, Default)]
pub struct AzureData {
    pub tenant_id: String,
    /// Graph's `/organization` entry.
    pub organization: Value,
    /// ARM subscription objects (`subscriptionId`, `displayName`, `state`, `tenantId`).
    pub subscriptions: Vec<Value>,
    /// Resource groups by lower-case subscription id.
    pub resource_groups: BTreeMap<String, Vec<Value>>,
    /// Resources (with `properties`) by lower-case subscription id.
    pub resources: BTreeMap<String, Vec<Value>>,
    pub role_definitions: BTreeMap<String, Vec<Value>>,
    pub role_assignments: BTreeMap<String, Vec<Value>>,
    /// Child listings by lower-case path, e.g. `{zone id}/recordsets`.
    pub children: BTreeMap<String, Vec<Value>>,
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    pub service_principals: Vec<Value>,
    pub admin_units: Vec<Value>,
    /// Direct members (`{"@odata.type", "id"}`) by group id.
    pub members: BTreeMap<String, Vec<Value>>,
    /// Direct members by administrative unit id.
    pub unit_members: BTreeMap<String, Vec<Value>>,
}

/// The ids of [`AzureData::sample`], for tests.
pub mod sample {
    pub const TENANT: &str = "7a1c0000-0000-4000-8000-00000000c0de";
    pub const SUB_PROD: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    pub const SUB_DEV: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    pub const ALICE: &str = "u-alice";
    pub const BOB: &str = "u-bob";
    pub const CAROL: &str = "u-carol";
    pub const PLATFORM: &str = "g-platform";
    pub const ADMINS: &str = "g-admins";
    pub const M365: &str = "g-m365";
    pub const DEPLOYER: &str = "sp-deployer";
    pub const VM_IDENTITY: &str = "p-vm-web";
    pub const APP_IDENTITY: &str = "p-uami-app";
    pub const EMEA: &str = "au-emea";
    pub const OWNER_ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    pub const READER_ROLE: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
}

fn res(sub: &str, group: &str, ty: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{group}/providers/{ty}/{name}")
}

fn role_def(sub: &str, guid: &str, name: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {"roleName": name, "type": "BuiltInRole", "description": format!("The {name} role"),
                       "permissions": [{"actions": [if name == "Owner" { "*" } else { "*/read" }], "notActions": []}]}
    })
}

/// A role assignment as ARM lists it: its `roleDefinitionId` in the tenant-level form
/// `/providers/Microsoft.Authorization/roleDefinitions/{guid}`, as Microsoft's examples
/// answer (`tests/fixtures/azure/arm/RoleAssignments_ListForResourceGroup.json`), though the
/// definitions are listed under each subscription. Every third one keeps the
/// subscription-prefixed form the same API also accepts and returns.
fn assignment(
    sub: &str,
    (n, name): (usize, &str),
    principal: &str,
    ptype: &str,
    role: &str,
    scope: &str,
) -> Value {
    let definition = if n.is_multiple_of(3) {
        format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}")
    } else {
        format!("/providers/Microsoft.Authorization/roleDefinitions/{role}")
    };
    json!({
        "id": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        "name": name, "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "principalId": principal, "principalType": ptype, "scope": scope,
            "roleDefinitionId": definition,
        }
    })
}

fn member(kind: &str, id: &str) -> Value {
    json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id})
}

impl AzureData {
    /// A small hand-written tenant holding every node and relationship kind the plugin
    /// writes: two subscriptions, three resource groups, a web tier (virtual network with
    /// two subnets, NSG, NIC, public IP, VM, disk, web app on a plan, user-assigned
    /// identity, Application Insights), a data tier (storage account behind a private
    /// endpoint, Log Analytics, public and private DNS zones, an Event Grid topic, and a
    /// disk named like the web tier's), a dev network peered with the production one, tags,
    /// RBAC, three users, three groups (one nested), three service principals and an
    /// administrative unit.
    pub fn sample() -> AzureData {
        use sample::*;
        let (p, d) = (SUB_PROD, SUB_DEV);
        let vnet = res(
            p,
            "rg-web",
            "Microsoft.Network/virtualNetworks",
            "vnet-main",
        );
        let subnet = format!("{vnet}/subnets/default");
        let pe_subnet = format!("{vnet}/subnets/pe-subnet");
        let nsg = res(
            p,
            "rg-web",
            "Microsoft.Network/networkSecurityGroups",
            "nsg-web",
        );
        let nic = res(
            p,
            "rg-web",
            "Microsoft.Network/networkInterfaces",
            "nic-web",
        );
        let pip = res(
            p,
            "rg-web",
            "Microsoft.Network/publicIPAddresses",
            "pip-web",
        );
        let vm = res(p, "rg-web", "Microsoft.Compute/virtualMachines", "vm-web");
        // Case differs from the VM's reference on purpose, as ARM's often does.
        let disk = res(p, "rg-web", "Microsoft.Compute/disks", "disk-os");
        let disk_ref = res(p, "RG-WEB", "Microsoft.Compute/disks", "DISK-OS");
        let site = res(p, "rg-web", "Microsoft.Web/sites", "app-web");
        let plan = res(p, "rg-web", "Microsoft.Web/serverfarms", "plan-web");
        let uami = res(
            p,
            "rg-web",
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            "uami-app",
        );
        let appi = res(p, "rg-web", "microsoft.insights/components", "appi-web");
        let law = res(
            p,
            "rg-data",
            "Microsoft.OperationalInsights/workspaces",
            "law-main",
        );
        let storage = res(p, "rg-data", "Microsoft.Storage/storageAccounts", "stdata");
        let disk_data = res(p, "rg-data", "Microsoft.Compute/disks", "disk-os");
        let pe = res(
            p,
            "rg-data",
            "Microsoft.Network/privateEndpoints",
            "pe-storage",
        );
        let zone = res(p, "rg-data", "Microsoft.Network/dnszones", "contoso.com");
        let pzone = res(
            p,
            "rg-data",
            "Microsoft.Network/privateDnsZones",
            "privatelink.blob.core.windows.net",
        );
        let topic = res(
            p,
            "rg-data",
            "Microsoft.EventGrid/systemTopics",
            "topic-storage",
        );
        let alert = res(p, "rg-web", "Microsoft.Insights/metricAlerts", "alert-cpu");
        let vnet_dev = res(d, "rg-dev", "Microsoft.Network/virtualNetworks", "vnet-dev");
        let kv = res(d, "rg-dev", "Microsoft.KeyVault/vaults", "kv-dev");
        let we = "westeurope";
        let prod = vec![
            json!({"id": vnet, "name": "vnet-main", "type": "Microsoft.Network/virtualNetworks", "location": we,
                   "properties": {"provisioningState": "Succeeded", "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                       "subnets": [
                           {"id": subnet, "name": "default", "type": "Microsoft.Network/virtualNetworks/subnets",
                            "properties": {"addressPrefix": "10.0.0.0/24", "networkSecurityGroup": {"id": nsg}}},
                           {"id": pe_subnet, "name": "pe-subnet", "type": "Microsoft.Network/virtualNetworks/subnets",
                            "properties": {"addressPrefix": "10.0.1.0/24"}}],
                       "virtualNetworkPeerings": [{"name": "to-dev", "properties": {"remoteVirtualNetwork": {"id": vnet_dev}}}]}}),
            json!({"id": nsg, "name": "nsg-web", "type": "Microsoft.Network/networkSecurityGroups", "location": we}),
            json!({"id": nic, "name": "nic-web", "type": "Microsoft.Network/networkInterfaces", "location": we,
                   "properties": {"networkSecurityGroup": {"id": nsg}, "ipConfigurations": [
                       {"name": "ipconfig1", "properties": {"subnet": {"id": subnet}, "publicIPAddress": {"id": pip}}}]}}),
            json!({"id": pip, "name": "pip-web", "type": "Microsoft.Network/publicIPAddresses", "location": we,
                   "sku": {"name": "Standard"}}),
            json!({"id": vm, "name": "vm-web", "type": "Microsoft.Compute/virtualMachines", "location": we,
                   "tags": {"env": "prod", "tier": "web"},
                   "systemData": {"createdBy": "alice@contoso.com", "createdByType": "User",
                                  "createdAt": "2025-03-01T09:00:00Z", "lastModifiedBy": "app-deployer",
                                  "lastModifiedByType": "Application"},
                   "identity": {"type": "SystemAssigned, UserAssigned", "principalId": VM_IDENTITY, "tenantId": TENANT,
                                "userAssignedIdentities": {uami.clone(): {"principalId": APP_IDENTITY, "clientId": "c-uami-app"}}},
                   "properties": {"provisioningState": "Succeeded", "hardwareProfile": {"vmSize": "Standard_B2s"},
                       "networkProfile": {"networkInterfaces": [{"id": nic}]},
                       "storageProfile": {"osDisk": {"name": "disk-os", "managedDisk": {"id": disk_ref}}}}}),
            json!({"id": disk, "name": "disk-os", "type": "Microsoft.Compute/disks", "location": we,
                   "sku": {"name": "Premium_LRS"}, "managedBy": vm}),
            json!({"id": site, "name": "app-web", "type": "Microsoft.Web/sites", "kind": "app", "location": we,
                   "identity": {"type": "UserAssigned",
                                "userAssignedIdentities": {uami.clone(): {"principalId": APP_IDENTITY, "clientId": "c-uami-app"}}},
                   "properties": {"serverFarmId": plan, "virtualNetworkSubnetId": subnet, "state": "Running"}}),
            json!({"id": alert, "name": "alert-cpu", "type": "Microsoft.Insights/metricAlerts", "location": "global",
                   "properties": {"severity": 2, "enabled": true, "scopes": [vm.clone()],
                       "criteria": {"odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"}}}),
            json!({"id": plan, "name": "plan-web", "type": "Microsoft.Web/serverfarms", "location": we,
                   "sku": {"name": "P1v3"}}),
            json!({"id": uami, "name": "uami-app", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                   "location": we, "properties": {"principalId": APP_IDENTITY, "clientId": "c-uami-app", "tenantId": TENANT}}),
            json!({"id": appi, "name": "appi-web", "type": "microsoft.insights/components", "kind": "web", "location": we,
                   "properties": {"ApplicationId": "appi-web", "WorkspaceResourceId": law}}),
            json!({"id": law, "name": "law-main", "type": "Microsoft.OperationalInsights/workspaces", "location": we}),
            json!({"id": storage, "name": "stdata", "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
                   "location": we, "tags": {"env": "prod", "owner": "data"}, "sku": {"name": "Standard_LRS"},
                   "systemData": {"createdBy": "app-deployer", "createdByType": "Application",
                                  "createdAt": "2025-02-01T08:00:00Z"}}),
            json!({"id": disk_data, "name": "disk-os", "type": "Microsoft.Compute/disks", "location": "northeurope"}),
            json!({"id": pe, "name": "pe-storage", "type": "Microsoft.Network/privateEndpoints", "location": we,
                   "properties": {"subnet": {"id": pe_subnet}, "privateLinkServiceConnections": [
                       {"name": "blob", "properties": {"privateLinkServiceId": storage, "groupIds": ["blob"],
                        "privateLinkServiceConnectionState": {"status": "Approved"}}}]}}),
            json!({"id": zone, "name": "contoso.com", "type": "Microsoft.Network/dnszones", "location": "global",
                   "properties": {"numberOfRecordSets": 3, "zoneType": "Public"}}),
            json!({"id": pzone, "name": "privatelink.blob.core.windows.net", "type": "Microsoft.Network/privateDnsZones",
                   "location": "global", "properties": {"numberOfRecordSets": 2}}),
            json!({"id": topic, "name": "topic-storage", "type": "Microsoft.EventGrid/systemTopics", "location": we,
                   "properties": {"source": storage, "topicType": "Microsoft.Storage.StorageAccounts"}}),
        ];
        let dev = vec![
            json!({"id": vnet_dev, "name": "vnet-dev", "type": "Microsoft.Network/virtualNetworks", "location": "northeurope",
                   "properties": {"subnets": [{"id": format!("{vnet_dev}/subnets/default"), "name": "default",
                                              "properties": {"addressPrefix": "10.1.0.0/24"}}],
                                  "virtualNetworkPeerings": [{"name": "to-main", "properties": {"remoteVirtualNetwork": {"id": vnet}}}]}}),
            json!({"id": kv, "name": "kv-dev", "type": "Microsoft.KeyVault/vaults", "location": "northeurope",
                   "tags": {"env": "dev"},
                   // A managed identity's creation: not matched to a node.
                   "systemData": {"createdBy": "c-uami-app", "createdByType": "ManagedIdentity",
                                  "createdAt": "2025-04-01T10:00:00Z"}}),
        ];
        let mut children = BTreeMap::new();
        children.insert(
            format!("{zone}/recordsets").to_lowercase(),
            vec![
                json!({"id": format!("{zone}/A/www"), "name": "www", "type": "Microsoft.Network/dnszones/A",
                       "properties": {"TTL": 300, "targetResource": {"id": pip}}}),
                json!({"id": format!("{zone}/MX/@"), "name": "@", "type": "Microsoft.Network/dnszones/MX",
                       "properties": {"TTL": 3600, "MXRecords": [{"preference": 10, "exchange": "mail.contoso.com"}]}}),
            ],
        );
        children.insert(
            format!("{pzone}/virtualNetworkLinks").to_lowercase(),
            vec![json!({"id": format!("{pzone}/virtualNetworkLinks/main"), "name": "main",
                        "properties": {"virtualNetwork": {"id": vnet}, "registrationEnabled": false}})],
        );
        // Diagnostic settings: the dev key vault logs to the production workspace and
        // storage account, the web NSG to the workspace; the storage account has none.
        let setting = |name: &str, of: &str, to: Value| {
            json!({"id": format!("{of}/providers/microsoft.insights/diagnosticSettings/{name}"),
                   "name": name, "type": "Microsoft.Insights/diagnosticSettings", "properties": to})
        };
        children.insert(
            format!("{kv}{DIAGNOSTIC_SETTINGS}").to_lowercase(),
            vec![setting(
                "audit",
                &kv,
                json!({"workspaceId": law, "storageAccountId": storage,
                "logs": [{"category": "AuditEvent", "enabled": true}]}),
            )],
        );
        children.insert(
            format!("{nsg}{DIAGNOSTIC_SETTINGS}").to_lowercase(),
            vec![setting(
                "flows",
                &nsg,
                json!({"workspaceId": law,
                "logs": [{"category": "NetworkSecurityGroupEvent", "enabled": true}]}),
            )],
        );
        let group = |sub: &str, name: &str, loc: &str| {
            json!({"id": format!("/subscriptions/{sub}/resourceGroups/{name}"), "name": name, "location": loc,
                   "type": "Microsoft.Resources/resourceGroups", "properties": {"provisioningState": "Succeeded"}})
        };
        let roles = |sub: &str| {
            vec![
                role_def(sub, OWNER_ROLE, "Owner"),
                role_def(sub, READER_ROLE, "Reader"),
            ]
        };
        let mut d_ = AzureData {
            tenant_id: TENANT.into(),
            organization: json!({"id": TENANT, "displayName": "Contoso", "verifiedDomains": [
                {"name": "contoso.onmicrosoft.com", "isDefault": false},
                {"name": "contoso.com", "isDefault": true}]}),
            subscriptions: vec![
                json!({"id": format!("/subscriptions/{p}"), "subscriptionId": p, "displayName": "Production",
                       "state": "Enabled", "tenantId": TENANT}),
                json!({"id": format!("/subscriptions/{d}"), "subscriptionId": d, "displayName": "Development",
                       "state": "Enabled", "tenantId": TENANT}),
            ],
            children,
            users: vec![
                json!({"id": ALICE, "userPrincipalName": "alice@contoso.com", "displayName": "Alice",
                       "accountEnabled": true, "userType": "Member", "mail": "alice@contoso.com"}),
                json!({"id": BOB, "userPrincipalName": "bob@contoso.com", "displayName": "Bob",
                       "accountEnabled": false, "userType": "Member", "mail": null}),
                json!({"id": CAROL, "userPrincipalName": "carol_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                       "displayName": "Carol", "accountEnabled": true, "userType": "Guest", "mail": "carol@fabrikam.com"}),
            ],
            groups: vec![
                json!({"id": PLATFORM, "displayName": "Platform", "description": "Platform engineers",
                       "groupTypes": [], "mailEnabled": false, "securityEnabled": true}),
                json!({"id": ADMINS, "displayName": "Admins", "description": null,
                       "groupTypes": [], "mailEnabled": false, "securityEnabled": true}),
                json!({"id": M365, "displayName": "All company", "description": "Everyone",
                       "groupTypes": ["Unified"], "mailEnabled": true, "securityEnabled": false}),
            ],
            service_principals: vec![
                json!({"id": DEPLOYER, "appId": "app-deployer", "displayName": "deployer",
                       "servicePrincipalType": "Application", "accountEnabled": true}),
                json!({"id": VM_IDENTITY, "appId": "app-vm-web", "displayName": "vm-web",
                       "servicePrincipalType": "ManagedIdentity", "accountEnabled": true}),
                json!({"id": APP_IDENTITY, "appId": "c-uami-app", "displayName": "uami-app",
                       "servicePrincipalType": "ManagedIdentity", "accountEnabled": true}),
            ],
            admin_units: vec![
                json!({"id": EMEA, "displayName": "EMEA", "description": "Europe",
                                     "visibility": "Public"}),
            ],
            ..AzureData::default()
        };
        d_.members.insert(
            PLATFORM.into(),
            vec![member("user", ALICE), member("group", ADMINS)],
        );
        // Graph may leave out `@odata.type` (Microsoft's `group-list-members` examples
        // show bare `{"id": …}` members): the plugin places them by id.
        d_.members.insert(
            ADMINS.into(),
            vec![json!({"id": BOB}), member("servicePrincipal", DEPLOYER)],
        );
        d_.members.insert(
            M365.into(),
            vec![
                member("user", ALICE),
                member("user", CAROL),
                member("device", "dev-1"),
            ],
        );
        d_.unit_members.insert(
            EMEA.into(),
            vec![member("user", ALICE), member("group", PLATFORM)],
        );
        d_.resource_groups.insert(
            p.into(),
            vec![group(p, "rg-web", we), group(p, "rg-data", we)],
        );
        d_.resource_groups
            .insert(d.into(), vec![group(d, "rg-dev", "northeurope")]);
        d_.resources.insert(p.into(), prod);
        d_.resources.insert(d.into(), dev);
        d_.role_definitions.insert(p.into(), roles(p));
        d_.role_definitions.insert(d.into(), roles(d));
        d_.role_assignments.insert(
            p.into(),
            vec![
                assignment(
                    p,
                    (1, "ra-0001"),
                    ALICE,
                    "User",
                    OWNER_ROLE,
                    &format!("/subscriptions/{p}"),
                ),
                assignment(
                    p,
                    (2, "ra-0002"),
                    PLATFORM,
                    "Group",
                    READER_ROLE,
                    &format!("/subscriptions/{p}/resourceGroups/rg-data"),
                ),
                assignment(
                    p,
                    (3, "ra-0003"),
                    VM_IDENTITY,
                    "ServicePrincipal",
                    READER_ROLE,
                    &storage,
                ),
                assignment(
                    p,
                    (4, "ra-0004"),
                    DEPLOYER,
                    "ServicePrincipal",
                    OWNER_ROLE,
                    &format!("/subscriptions/{p}/resourceGroups/rg-web"),
                ),
                // Inherited from a management group: no node for its scope.
                assignment(
                    p,
                    (5, "ra-0005"),
                    ADMINS,
                    "Group",
                    READER_ROLE,
                    "/providers/Microsoft.Management/managementGroups/root",
                ),
            ],
        );
        d_.role_assignments.insert(
            d.into(),
            vec![assignment(
                d,
                (6, "ra-0006"),
                ALICE,
                "User",
                READER_ROLE,
                &format!("/subscriptions/{d}"),
            )],
        );
        d_
    }

    /// A large tenant, the same on every call: `subs` subscriptions of 10 resource groups
    /// each, and `resources` resources spread over them in stacks of five (a virtual
    /// network with one subnet, an NSG, a NIC in the subnet, a VM on the NIC with a
    /// system-assigned identity, its disk; every other stack tagged), Owner and Reader in
    /// every subscription with an assignment per VM identity; `users` users, `users / 20`
    /// groups of 20 members each, group `i` nested in group `i / 10`.
    pub fn generate(subs: usize, resources: usize, users: usize) -> AzureData {
        AzureData::generated(0, subs, resources, users)
    }

    /// The tenant of [`AzureData::generate`] whose ids are made its own by `seed`:
    /// subscriptions, principals (users, groups, the VMs' identities) and role
    /// assignments have random-looking GUIDs, as Azure's do (see [`uuid`]).
    fn generated(seed: u64, subs: usize, resources: usize, users: usize) -> AzureData {
        let tenant = &format!("9e9e0000-{seed:04x}-4000-8000-000000000000");
        let mut d = AzureData {
            tenant_id: tenant.into(),
            organization: json!({"id": tenant, "displayName": "Generated",
                                 "verifiedDomains": [{"name": "generated.example", "isDefault": true}]}),
            ..AzureData::default()
        };
        let stacks = resources.div_ceil(5);
        let guid = |kind: u32, n: usize| uuid(seed, kind, n as u64);
        let sub_id = |i: usize| guid(0x5b, i);
        for i in 0..subs {
            let s = sub_id(i);
            d.subscriptions.push(
                json!({"id": format!("/subscriptions/{s}"), "subscriptionId": s,
                "displayName": format!("sub-{i}"), "state": "Enabled", "tenantId": tenant}),
            );
            d.resource_groups.insert(
                s.clone(),
                (0..10)
                    .map(|g| {
                        json!({"id": format!("/subscriptions/{s}/resourceGroups/rg-{g}"),
                                   "name": format!("rg-{g}"), "location": "westeurope",
                                   "type": "Microsoft.Resources/resourceGroups"})
                    })
                    .collect(),
            );
            d.role_definitions.insert(
                s.clone(),
                vec![
                    role_def(&s, sample::OWNER_ROLE, "Owner"),
                    role_def(&s, sample::READER_ROLE, "Reader"),
                ],
            );
        }
        let mut count = 0;
        for n in 0..stacks {
            let s = sub_id(n % subs.max(1));
            let g = format!("rg-{}", (n / subs.max(1)) % 10);
            let vnet = res(
                &s,
                &g,
                "Microsoft.Network/virtualNetworks",
                &format!("vnet-{n}"),
            );
            let subnet = format!("{vnet}/subnets/default");
            let nsg = res(
                &s,
                &g,
                "Microsoft.Network/networkSecurityGroups",
                &format!("nsg-{n}"),
            );
            let nic = res(
                &s,
                &g,
                "Microsoft.Network/networkInterfaces",
                &format!("nic-{n}"),
            );
            let vm = res(
                &s,
                &g,
                "Microsoft.Compute/virtualMachines",
                &format!("vm-{n}"),
            );
            let disk = res(&s, &g, "Microsoft.Compute/disks", &format!("disk-{n}"));
            let principal = guid(0x50, n);
            let tags = if n % 2 == 0 {
                json!({"env": format!("env-{}", n % 4), "team": format!("team-{}", n % 25)})
            } else {
                Value::Null
            };
            let stack = [
                json!({"id": vnet, "name": format!("vnet-{n}"), "type": "Microsoft.Network/virtualNetworks", "location": "westeurope",
                       "tags": tags, "properties": {"subnets": [{"id": subnet, "name": "default",
                       "type": "Microsoft.Network/virtualNetworks/subnets", "properties": {"networkSecurityGroup": {"id": nsg}}}]}}),
                json!({"id": nsg, "name": format!("nsg-{n}"), "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope"}),
                json!({"id": nic, "name": format!("nic-{n}"), "type": "Microsoft.Network/networkInterfaces", "location": "westeurope",
                       "properties": {"networkSecurityGroup": {"id": nsg}, "ipConfigurations": [{"properties": {"subnet": {"id": subnet}}}]}}),
                json!({"id": vm, "name": format!("vm-{n}"), "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
                       "tags": tags, "identity": {"type": "SystemAssigned", "principalId": principal},
                       "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                           "networkProfile": {"networkInterfaces": [{"id": nic}]},
                           "storageProfile": {"osDisk": {"managedDisk": {"id": disk}}}}}),
                json!({"id": disk, "name": format!("disk-{n}"), "type": "Microsoft.Compute/disks", "location": "westeurope",
                       "sku": {"name": "Premium_LRS"}}),
            ];
            for r in stack {
                if count < resources {
                    d.resources.entry(s.clone()).or_default().push(r);
                    count += 1;
                }
            }
            d.role_assignments
                .entry(s.clone())
                .or_default()
                .push(assignment(
                    &s,
                    (n, &guid(0xa5, n)),
                    &principal,
                    "ServicePrincipal",
                    sample::READER_ROLE,
                    &vm,
                ));
        }
        for u in 0..users {
            d.users.push(json!({"id": guid(0x75, u), "userPrincipalName": format!("user{u}@generated.example"),
                "displayName": format!("User {u}"), "accountEnabled": u % 10 != 0, "userType": "Member",
                "mail": format!("user{u}@generated.example")}));
        }
        let groups = (users / 20).max(1);
        for g in 0..groups {
            let id = guid(0x67, g);
            d.groups.push(
                json!({"id": id, "displayName": format!("Group {g}"), "groupTypes": [],
                "mailEnabled": false, "securityEnabled": true}),
            );
            let mut members: Vec<Value> = (0..20)
                .map(|k| g * 20 + k)
                .filter(|u| *u < users)
                .map(|u| member("user", &guid(0x75, u)))
                .collect();
            members.extend(
                (1..=9)
                    .map(|k| g * 10 + k)
                    .filter(|c| *c < groups)
                    .map(|c| member("group", &guid(0x67, c))),
            );
            d.members.insert(id, members);
        }
        d
    }

    /// The `n`th of many generated tenants (`n` < 65,535): [`AzureData::generate`] with
    /// the tenant's, the subscriptions' (hence every ARM id), the principals' and the role
    /// assignments' ids its own, so that many tenants synced into one store never share a
    /// node.
    pub fn generate_tenant(n: usize, subs: usize, resources: usize, users: usize) -> AzureData {
        let seed = u16::try_from(n + 1).expect("at most 65,535 generated tenants");
        AzureData::generated(u64::from(seed), subs, resources, users)
    }
}

/// A running Azure tenant; see the module docs.
pub struct AzureSim {
    state: Arc<SimState>,
    server: Server,
}

struct SimState {
    tenants: Accounts<AzureData>,
    /// Added before every response.
    latency: Mutex<Duration>,
    auth: Mutex<Auth>,
    faults: Mutex<Faults>,
    /// Largest page served, whatever `$top` asks.
    page_size: Mutex<usize>,
    log: RequestLog,
}

#[derive(Default)]
struct Auth {
    /// Token → (scope, requests it may still make, its tenant).
    tokens: HashMap<String, (&'static str, u64, usize)>,
    budget: u64,
    /// `expires_in` of the tokens issued, seconds.
    lifetime: u64,
    issued: u64,
    rejected_secrets: u64,
    expired: u64,
    wrong_audience: u64,
}

#[derive(Default)]
struct Faults {
    /// Retry-After values of the next requests to throttle.
    throttle: VecDeque<u32>,
    throttled: u64,
    /// Lower-case subscription ids whose every request answers 403.
    forbidden: Vec<String>,
    /// Lower-case path tails whose every ARM request answers 500 (a listing broken on
    /// the service's side, failing after every retry).
    broken: Vec<String>,
}

impl AzureSim {
    /// The app registration's client id.
    pub const CLIENT_ID: &'static str = "0c1e0000-0000-4000-8000-00000000a9e1";
    /// Its client secret.
    pub const CLIENT_SECRET: &'static str = "az~Sim.secret-4f9d2c7e81b0";

    /// Serves the tenant `data` to [`AzureSim::CLIENT_ID`] and [`AzureSim::CLIENT_SECRET`].
    pub fn start(data: AzureData) -> AzureSim {
        AzureSim::start_many(vec![Account::new(
            data,
            AzureSim::CLIENT_ID,
            AzureSim::CLIENT_SECRET,
        )])
    }

    /// Serves each tenant of `tenants` (its `data.tenant_id`) to its own client id
    /// (`Account::id`) and secret, on one port. Single-tenant methods (`tenant_id`,
    /// `update`) act on the first.
    pub fn start_many(tenants: Vec<Account<AzureData>>) -> AzureSim {
        let state = Arc::new(SimState {
            tenants: Accounts::new(tenants),
            latency: Mutex::new(Duration::ZERO),
            auth: Mutex::new(Auth {
                budget: u64::MAX,
                lifetime: 3599,
                ..Auth::default()
            }),
            faults: Mutex::new(Faults::default()),
            page_size: Mutex::new(1000),
            log: RequestLog::default(),
        });
        let router = state
            .log
            .around(Router::new().fallback(handle).with_state(state.clone()));
        AzureSim {
            server: Server::start("azure-sim", router),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`: the value for `AZURE_AUTHORITY_HOST`,
    /// `AZURE_RESOURCE_MANAGER_URL` and `AZURE_GRAPH_URL`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn tenant_id(&self) -> String {
        self.state.tenants.read(0).tenant_id.clone()
    }

    /// The tenant id of every tenant served, in `start_many`'s order.
    pub fn tenant_ids(&self) -> Vec<String> {
        (0..self.state.tenants.len())
            .map(|i| self.state.tenants.read(i).tenant_id.clone())
            .collect()
    }

    /// Changes the data of tenant `tenant` (its index in `start_many`) in place.
    pub fn update_tenant(&self, tenant: usize, change: impl FnOnce(&mut AzureData)) {
        change(&mut self.state.tenants.write(tenant));
    }

    /// Delays every response by `latency`, as a distant API would.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().expect("lock") = latency;
    }

    /// Serves at most `n` items per page (and fewer when `$top` asks).
    pub fn set_page_size(&self, n: usize) {
        *self.state.page_size.lock().expect("lock") = n.max(1);
    }

    /// Every token issued from now on expires after `n` requests.
    pub fn expire_tokens_after(&self, n: u64) {
        self.state.auth.lock().expect("lock").budget = n;
    }

    /// Tokens issued from now on say they expire in `seconds` (`expires_in`); the
    /// simulator does not enforce it: a client should renew before.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.state.auth.lock().expect("lock").lifetime = seconds;
    }

    /// Answers the next `n` ARM or Graph requests with 429 and `Retry-After`.
    pub fn throttle_next(&self, n: usize, retry_after: u32) {
        self.state
            .faults
            .lock()
            .expect("lock")
            .throttle
            .extend((0..n).map(|_| retry_after));
    }

    /// Every request under `/subscriptions/{sub}` answers 403 `AuthorizationFailed`.
    pub fn forbid_subscription(&self, sub: &str) {
        self.state
            .faults
            .lock()
            .expect("lock")
            .forbidden
            .push(sub.to_ascii_lowercase());
    }

    /// Every ARM request whose path ends with `tail` (any case) answers 500 from now on.
    pub fn break_listings_ending(&self, tail: &str) {
        self.state
            .faults
            .lock()
            .expect("lock")
            .broken
            .push(tail.to_ascii_lowercase());
    }

    pub fn tokens_issued(&self) -> u64 {
        self.state.auth.lock().expect("lock").issued
    }

    pub fn expired_requests(&self) -> u64 {
        self.state.auth.lock().expect("lock").expired
    }

    pub fn rejected_secrets(&self) -> u64 {
        self.state.auth.lock().expect("lock").rejected_secrets
    }

    /// Requests refused because their token was for the other API.
    pub fn wrong_audience(&self) -> u64 {
        self.state.auth.lock().expect("lock").wrong_audience
    }

    pub fn throttled(&self) -> u64 {
        self.state.faults.lock().expect("lock").throttled
    }

    pub fn total_requests(&self) -> u64 {
        self.state.log.total()
    }

    /// Each request as `METHOD /path?query`, in order of arrival.
    pub fn request_log(&self) -> Vec<String> {
        self.state.log.lines()
    }

    pub fn update(&self, change: impl FnOnce(&mut AzureData)) {
        self.update_tenant(0, change);
    }
}

/// The abstracted id's hash part the plugin must produce: hex of the first 16 bytes of
/// HMAC-SHA-256 keyed by `seed` over the lower-cased ARM id. Computed here independently of
/// the plugin (with the S3 simulator's HMAC), as a test oracle.
pub fn abstracted_hash(seed: &[u8], arm_id: &str) -> String {
    let canonical = arm_id.trim().trim_end_matches('/').to_ascii_lowercase();
    hex::encode(&super::s3::hmac(seed, canonical.as_bytes())[..16])
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn query_map(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

async fn handle(
    State(state): State<Arc<SimState>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let latency = *state.latency.lock().expect("lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if method == Method::POST && path.ends_with("/oauth2/v2.0/token") {
        return token(&state, &path, &body);
    }
    if method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "GET only",
        );
    }
    let graph = path.starts_with("/v1.0/");
    {
        let mut faults = state.faults.lock().expect("lock");
        if let Some(after) = faults.throttle.pop_front() {
            faults.throttled += 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "throttled",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                after.to_string().parse().expect("a number"),
            );
            return r;
        }
    }
    let tenant = {
        let want = if graph { GRAPH_SCOPE } else { ARM_SCOPE };
        let mut auth = state.auth.lock().expect("lock");
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some((scope, left, tenant)) = bearer.and_then(|t| auth.tokens.get(t).copied()) else {
            return error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "no valid bearer token",
            );
        };
        if scope != want {
            auth.wrong_audience += 1;
            return error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationTokenAudience",
                "the token is for another API",
            );
        }
        if left == 0 {
            auth.expired += 1;
            return error(
                StatusCode::UNAUTHORIZED,
                "ExpiredAuthenticationToken",
                "the token expired",
            );
        }
        if let Some(t) = bearer.and_then(|t| auth.tokens.get_mut(t)) {
            t.1 -= 1;
        }
        tenant
    };
    if let Err(Denied::Throttled(after)) = state.tenants.spend(tenant) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "the tenant's request budget is spent",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            after.to_string().parse().expect("a number"),
        );
        return r;
    }
    let params = query_map(query.as_deref());
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').filter(|p| !p.is_empty()).collect();
    if !graph {
        if param("api-version").is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "api-version is required",
            );
        }
        if state
            .faults
            .lock()
            .expect("lock")
            .broken
            .iter()
            .any(|tail| lower.ends_with(tail.as_str()))
        {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "the listing is broken",
            );
        }
        if parts.len() >= 2 && parts[0] == "subscriptions" {
            let faults = state.faults.lock().expect("lock");
            if faults.forbidden.iter().any(|s| s == parts[1]) {
                return error(
                    StatusCode::FORBIDDEN,
                    "AuthorizationFailed",
                    "the client may not read this subscription",
                );
            }
        }
    }
    let data = state.tenants.read(tenant);
    let items: Vec<Value> = if graph {
        match parts.as_slice() {
            ["v1.0", "organization"] => vec![data.organization.clone()],
            ["v1.0", "users"] => data.users.clone(),
            ["v1.0", "groups"] => data.groups.clone(),
            ["v1.0", "serviceprincipals"] => data.service_principals.clone(),
            ["v1.0", "directory", "administrativeunits"] => data.admin_units.clone(),
            ["v1.0", "groups", id, "members"] => match find(&data.members, id) {
                Some(m) => m,
                None => {
                    return error(
                        StatusCode::NOT_FOUND,
                        "Request_ResourceNotFound",
                        "no such group",
                    );
                }
            },
            ["v1.0", "directory", "administrativeunits", id, "members"] => {
                find(&data.unit_members, id).unwrap_or_default()
            }
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    "Request_UnsupportedQuery",
                    "no such Graph endpoint",
                );
            }
        }
    } else {
        match parts.as_slice() {
            ["subscriptions"] => data.subscriptions.clone(),
            ["subscriptions", s, "resourcegroups"] => {
                find(&data.resource_groups, s).unwrap_or_default()
            }
            ["subscriptions", s, "resources"] => find(&data.resources, s)
                .unwrap_or_default()
                .into_iter()
                .map(|mut r| {
                    if let Some(o) = r.as_object_mut() {
                        o.remove("properties");
                    }
                    r
                })
                .collect(),
            [
                "subscriptions",
                s,
                "providers",
                "microsoft.authorization",
                "roledefinitions",
            ] => find(&data.role_definitions, s).unwrap_or_default(),
            [
                "subscriptions",
                s,
                "providers",
                "microsoft.authorization",
                "roleassignments",
            ] => find(&data.role_assignments, s).unwrap_or_default(),
            ["subscriptions", s, "providers", ns, ty] => {
                let want = format!("{ns}/{ty}");
                find(&data.resources, s)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| {
                        r["type"]
                            .as_str()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&want))
                    })
                    .collect()
            }
            // Any resource's diagnostic settings: its own, or none.
            _ if lower.ends_with(DIAGNOSTIC_SETTINGS) => {
                let parent = &lower[..lower.len() - DIAGNOSTIC_SETTINGS.len()];
                let sub = parts.get(1).copied().unwrap_or_default();
                let exists = data
                    .resources
                    .iter()
                    .filter(|(s, _)| s.eq_ignore_ascii_case(sub))
                    .flat_map(|(_, rs)| rs)
                    .any(|r| {
                        r["id"]
                            .as_str()
                            .is_some_and(|id| id.eq_ignore_ascii_case(parent))
                    });
                if !exists {
                    return error(
                        StatusCode::NOT_FOUND,
                        "ResourceNotFound",
                        "no such resource",
                    );
                }
                data.children.get(&lower).cloned().unwrap_or_default()
            }
            _ => match data.children.get(&lower) {
                Some(items) => items.clone(),
                None => {
                    return error(
                        StatusCode::NOT_FOUND,
                        "ResourceNotFound",
                        "no such ARM endpoint",
                    );
                }
            },
        }
    };
    drop(data);
    let max = *state.page_size.lock().expect("lock");
    let top = param("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(max)
        .min(max)
        .max(1);
    let skip = param("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(skip).take(top).cloned().collect();
    let next = (skip + top < items.len()).then(|| {
        let kept: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "http://{host}{path}?{}&$skiptoken={}",
            kept.join("&"),
            skip + top
        )
    });
    let key = if graph { "@odata.nextLink" } else { "nextLink" };
    let mut body = json!({"value": page});
    if let Some(next) = next {
        body[key] = Value::String(next);
    }
    axum::Json(body).into_response()
}

fn find(map: &BTreeMap<String, Vec<Value>>, key: &str) -> Option<Vec<Value>> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

fn token(state: &SimState, path: &str, body: &[u8]) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let asked = path.trim_start_matches('/').split('/').next();
    let tenants = &state.tenants;
    let Some(tenant) =
        (0..tenants.len()).find(|i| Some(tenants.read(*i).tenant_id.as_str()) == asked)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: tenant not found",
        );
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials only",
        );
    }
    let mut auth = state.auth.lock().expect("lock");
    let slot = tenants.slot(tenant);
    if field("client_id") != Some(slot.id.as_str())
        || field("client_secret") != Some(slot.secret.as_str())
    {
        auth.rejected_secrets += 1;
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: invalid client secret",
        );
    }
    if slot.refused {
        auth.rejected_secrets += 1;
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000222: the provided client secret keys are expired",
        );
    }
    let scope = match field("scope") {
        Some(ARM_SCOPE) => ARM_SCOPE,
        Some(GRAPH_SCOPE) => GRAPH_SCOPE,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "AADSTS70011: unknown scope",
            );
        }
    };
    auth.issued += 1;
    let value = format!(
        "eyJ0eXAiOiJKV1Qi.{}.{}",
        if scope == ARM_SCOPE { "arm" } else { "graph" },
        auth.issued
    );
    let (budget, lifetime) = (auth.budget, auth.lifetime);
    auth.tokens.insert(value.clone(), (scope, budget, tenant));
    axum::Json(json!({"token_type": "Bearer", "expires_in": lifetime,
                      "ext_expires_in": lifetime, "access_token": value}))
    .into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

impl PerAccount for AzureSim {
    type Data = AzureData;

    fn accounts(&self) -> &Accounts<AzureData> {
        &self.state.tenants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_sized_as_asked() {
        let d = AzureData::generate(4, 103, 45);
        let n: usize = d.resources.values().map(Vec::len).sum();
        assert_eq!(n, 103);
        assert_eq!(d.subscriptions.len(), 4);
        assert_eq!(d.users.len(), 45);
        assert_eq!(d.groups.len(), 2);
        let group = |g: usize| d.groups[g]["id"].as_str().unwrap();
        assert!(d.members[group(0)].iter().any(|m| m["id"] == group(1)));
    }

    use crate::sim::Account;
    use crate::sim::client::{Reply, get, request};

    fn token(sim: &AzureSim, tenant: &str, id: &str, secret: &str, scope: &str) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", id)
            .append_pair("client_secret", secret)
            .append_pair("scope", scope)
            .finish();
        request(
            "POST",
            &format!("{}/{tenant}/oauth2/v2.0/token", sim.url()),
            &[(
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body.as_bytes(),
        )
    }

    #[test]
    fn many_tenants_see_their_own_data_refuse_and_throttle_apart() {
        let (a, b) = (
            AzureData::generate_tenant(1, 2, 10, 5),
            AzureData::generate_tenant(2, 2, 10, 5),
        );
        assert_ne!(a.tenant_id, b.tenant_id);
        assert!(a.members.keys().all(|g| !b.members.contains_key(g)));
        let refused = AzureData::generate_tenant(3, 1, 5, 1);
        let sim = AzureSim::start_many(vec![
            Account::new(a.clone(), "client-a", "secret-a").rate_limit(50),
            Account::new(b.clone(), "client-b", "secret-b").rate_limit(3),
            Account::new(refused.clone(), "client-c", "secret-c").refused(),
        ]);
        assert_eq!(
            sim.tenant_ids(),
            [
                a.tenant_id.clone(),
                b.tenant_id.clone(),
                refused.tenant_id.clone()
            ]
        );
        // A tenant's token endpoint knows its own client only.
        assert_eq!(
            token(&sim, &a.tenant_id, "client-b", "secret-b", ARM_SCOPE).status,
            401
        );
        let denied = token(&sim, &refused.tenant_id, "client-c", "secret-c", ARM_SCOPE);
        assert_eq!(
            (denied.status, denied.json()["error"].as_str()),
            (401, Some("invalid_client"))
        );
        let bearer = |tenant: &str, id: &str, secret: &str, scope: &str| {
            let t = token(&sim, tenant, id, secret, scope);
            assert_eq!(t.status, 200);
            [(
                "Authorization",
                format!("Bearer {}", t.json()["access_token"].as_str().unwrap()),
            )]
        };
        let arm_a = bearer(&a.tenant_id, "client-a", "secret-a", ARM_SCOPE);
        let arm_b = bearer(&b.tenant_id, "client-b", "secret-b", ARM_SCOPE);
        let graph_b = bearer(&b.tenant_id, "client-b", "secret-b", GRAPH_SCOPE);
        let subs = |auth: &[(&str, String)]| -> Vec<String> {
            get(
                &format!("{}/subscriptions?api-version=2022-12-01", sim.url()),
                auth,
            )
            .json()["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["tenantId"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(subs(&arm_a), [a.tenant_id.as_str(), &a.tenant_id]);
        assert_eq!(subs(&arm_b), [b.tenant_id.as_str(), &b.tenant_id]);
        let users = get(&format!("{}/v1.0/users", sim.url()), &graph_b).json();
        assert_eq!(users["value"][0]["id"], b.users[0]["id"]);
        assert_ne!(b.users[0]["id"], a.users[0]["id"]);
        // The same burst from both: b's budget of 3 a second runs out, a's of 50 does not.
        let url = format!("{}/subscriptions?api-version=2022-12-01", sim.url());
        crate::sim::accounts::assert_only_the_limited_account_is_throttled(&sim, 200, |i| {
            let r = if i == 0 {
                get(&url, &arm_a)
            } else {
                get(&url, &arm_b)
            };
            (r.status, r.header("retry-after").map(str::to_string))
        });
        sim.set_latency(Duration::from_millis(1));
        sim.set_rate_limit(1, None);
        assert_eq!(get(&url, &arm_b).status, 200);
    }
}
