//! The Azure tenant provider (issue 8): one Entra ID tenant's subscriptions, resource
//! groups and resources, in the dual graph of `docs/providers/azure.md`
//! (an abstracted `Resource` and an original `Resource:Original` per resource, linked by
//! `SCAN_SOURCE_NODE`), with tags, regions, managed identities, private endpoints, DNS
//! zones, RBAC role definitions and assignments, and Microsoft Graph's users, groups,
//! service principals and administrative units. Decisions are in this crate's `README.md`.
//!
//! One sync: a client-credentials token per API (the host writes the client secret into
//! the form body); the subscriptions; then, in rounds of concurrent requests, every
//! subscription's resource groups, resources (the generic listing, plus per-type listings
//! with properties for the types rules read), role definitions and assignments, together
//! with Graph's users, groups, service principals and administrative units; then group
//! and unit members and the child listings rules read; role assignments last, once every
//! managed identity is known. Each page is emitted as it arrives.

mod client;
mod ids;
mod records;
mod rules;
mod schema;

use std::collections::BTreeMap;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, Ingestor, Manifest, Summary, SyncError,
    export_ingestor,
};
use serde_json::Value;

use crate::client::{Api, Client};
use crate::ids::{Abstractor, SEED_KEY, Seed};
use crate::records::Out;
use crate::schema::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

const SUBSCRIPTIONS_API: &str = "2022-12-01";
const RESOURCES_API: &str = "2021-04-01";
const AUTHORIZATION_API: &str = "2022-04-01";
/// Largest pages the APIs allow.
const ARM_TOP: u32 = 1000;
const GRAPH_TOP: u32 = 999;

/// Labels a subscription's listings feed: kept (not cleaned up) when one fails.
const ARM_LABELS: &[&str] = &[
    RESOURCE_GROUP,
    RESOURCE,
    ORIGINAL,
    TAG,
    REGION,
    PRIVATE_ENDPOINT,
    DNS_ZONE,
    MANAGED_IDENTITY,
];

struct Azure;

impl Ingestor for Azure {
    fn manifest() -> Manifest {
        let secret = Credential::new(
            "client_secret",
            "AZURE_CLIENT_SECRET",
            "Client secret of the app registration, sent only to the token endpoint",
            CredentialUse::FormBody,
        )
        .host("login.microsoftonline.com")
        .host("{config:login_url}");
        let mut m = Manifest::new(
            "azure",
            VERSION,
            "An Azure tenant: subscriptions, resource groups and resources (abstracted and original views), Entra ID identities and RBAC",
        )
        .host("login.microsoftonline.com")
        .host("management.azure.com")
        .host("graph.microsoft.com")
        .credential(secret)
        .config(
            ConfigKey::text("tenant_id", "Entra ID tenant id (GUID) to map")
                .env("AZURE_TENANT_ID")
                .required(),
        )
        .config(
            ConfigKey::text("client_id", "Application (client) id of the app registration")
                .env("AZURE_CLIENT_ID")
                .required(),
        )
        .config(
            ConfigKey::endpoint("login_url", "Entra ID authority host")
                .env("AZURE_AUTHORITY_HOST")
                .default_text("https://login.microsoftonline.com"),
        )
        .config(
            ConfigKey::endpoint("arm_url", "Azure Resource Manager endpoint")
                .env("AZURE_RESOURCE_MANAGER_URL")
                .default_text("https://management.azure.com"),
        )
        .config(
            ConfigKey::endpoint("graph_url", "Microsoft Graph endpoint")
                .env("AZURE_GRAPH_URL")
                .default_text("https://graph.microsoft.com"),
        )
        .config(
            ConfigKey::text(
                "abstraction_seed",
                "Seed of the ID abstraction, 64 hex digits, to import into a store that has none \
                 for this tenant (export it with `infragraph state get azure <tenant> abstraction_seed`); \
                 unset, the stored seed is used, or one is generated on the first sync",
            )
            .env("AZURE_ABSTRACTION_SEED"),
        )
        .config(
            ConfigKey::text_list(
                "diagnostic_types",
                "Resource types (e.g. microsoft.keyvault/vaults) whose diagnostic settings are \
                 read for LOGS_TO, one request per resource; empty reads none",
            )
            .env("AZURE_DIAGNOSTIC_TYPES")
            .default_list(rules::DIAGNOSTIC_TYPES.iter().copied()),
        );
        for node in schema::nodes() {
            m = m.node(node);
        }
        for edge in schema::edges() {
            m = m.edge(edge);
        }
        m
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let tenant = config.require_text("tenant_id")?.to_ascii_lowercase();
        let client_id = config.require_text("client_id")?;
        cx.scope(TENANT, &tenant);
        let seed = load_seed(cx, config.text("abstraction_seed"))?;
        let url = |key: &str, default: &str| config.text(key).unwrap_or(default).to_owned();
        let mut client = Client::new(
            &url("login_url", "https://login.microsoftonline.com"),
            &tenant,
            client_id,
            &url("arm_url", "https://management.azure.com"),
            &url("graph_url", "https://graph.microsoft.com"),
        );
        // Both tokens first: wrong credentials fail here, before anything is emitted.
        client.login(cx, Api::Arm)?;
        client.login(cx, Api::Graph)?;
        let mut out = Out::new(
            &tenant,
            Abstractor::new(seed),
            config.list("diagnostic_types"),
        );
        let mut failures = Failures::default();

        let org_url = format!("{}/v1.0/organization", client.graph);
        let org = client.get(cx, Api::Graph, &org_url)?;
        let org: Option<Value> = if org.is_success() {
            org.json::<Value>()?["value"].get(0).cloned()
        } else {
            cx.warn(client::status_reason(&org));
            None
        };
        out.tenant(cx, org.as_ref());

        let subs = list_subscriptions(cx, &mut client, &mut out, &mut failures)?;
        let (groups, units, assignments) =
            list_tenant(cx, &mut client, &mut out, &mut failures, &subs)?;
        list_members_and_children(cx, &mut client, &mut out, &mut failures, &groups, &units)?;
        for a in &assignments {
            out.role_assignment(cx, a);
        }

        for (label, reason) in &failures.labels {
            cx.mark_incomplete(label, None, reason);
        }
        let counts = format!(
            "{} subscriptions, {} resource groups, {} resources (both views), {} role assignments, \
             {} users, {} groups, {} service principals, {} administrative units; {} tokens",
            out.subscriptions,
            out.groups_of_resources,
            out.resources(),
            out.role_assignments,
            out.users,
            out.groups,
            out.service_principals,
            out.admin_units,
            client.tokens,
        );
        let mut summary = counts;
        for (n, what) in [
            (
                out.roles_unresolved,
                "role assignments name a role definition no subscription listed (no HAS_ROLE)",
            ),
            (
                out.members_unknown,
                "group or unit members have no @odata.type and an id that is no listed user, \
                 group or service principal (no MEMBER_OF)",
            ),
            (
                out.members_skipped,
                "group or unit members are devices or contacts, not in the graph",
            ),
        ] {
            if n > 0 {
                cx.warn(format!("{n} {what}"));
                summary.push_str(&format!("; {n} {what}"));
            }
        }
        if failures.listings > 0 {
            let n = failures.listings;
            summary.push_str(&format!("; {n} listings failed, their labels kept"));
        }
        Ok(Summary::new(summary))
    }
}

export_ingestor!(Azure);

/// The seed from the plugin state; or the one the operator gives (imported into a store
/// that has none); or a new one. Never regenerated once stored; a given seed that differs
/// from the stored one is refused, since every abstracted id would change.
fn load_seed(cx: &mut Context, given: Option<&str>) -> Result<Seed, SyncError> {
    let given = given
        .filter(|g| !g.trim().is_empty())
        .map(|g| {
            Seed::from_hex(g).ok_or_else(|| {
                SyncError::config(
                    "config key \"abstraction_seed\" (AZURE_ABSTRACTION_SEED) must be 64 hex \
                     digits (256 bits)",
                )
            })
        })
        .transpose()?;
    match (cx.state_get(SEED_KEY), given) {
        (Some(bytes), given) => {
            let stored = Seed::from_bytes(&bytes).ok_or_else(|| {
                SyncError::other(format!(
                    "the stored abstraction seed is {} bytes, not 32: the plugin state was \
                     altered; re-import the exported seed",
                    bytes.len()
                ))
            })?;
            if given.is_some_and(|g| g != stored) {
                return Err(SyncError::config(format!(
                    "AZURE_ABSTRACTION_SEED differs from the seed this store holds for the tenant \
                     (fingerprint {}); every abstracted id would change. Unset it, or import it \
                     into a new store",
                    stored.fingerprint()
                )));
            }
            Ok(stored)
        }
        (None, Some(g)) => {
            cx.info(format!(
                "using the imported abstraction seed (fingerprint {})",
                g.fingerprint()
            ));
            cx.state_set(SEED_KEY, Some(g.bytes()));
            Ok(g)
        }
        (None, None) => {
            let s = Seed::generate()?;
            cx.info(format!(
                "generated the tenant's abstraction seed (fingerprint {}); it is kept in the \
                 plugin state",
                s.fingerprint()
            ));
            cx.state_set(SEED_KEY, Some(s.bytes()));
            Ok(s)
        }
    }
}

/// Listings that failed, and the labels to keep because of them.
#[derive(Default)]
struct Failures {
    labels: BTreeMap<&'static str, String>,
    listings: usize,
}

impl Failures {
    fn fail(&mut self, cx: &mut Context, labels: &[&'static str], reason: String) {
        cx.warn(format!(
            "{reason}; keeping {} from the last sync",
            labels.join(", ")
        ));
        self.listings += 1;
        for label in labels {
            self.labels.entry(label).or_insert_with(|| reason.clone());
        }
    }
}

fn list_subscriptions(
    cx: &mut Context,
    client: &mut Client,
    out: &mut Out,
    failures: &mut Failures,
) -> Result<Vec<String>, SyncError> {
    let url = format!(
        "{}/subscriptions?api-version={SUBSCRIPTIONS_API}",
        client.arm
    );
    let mut subs = Vec::new();
    let mut failed = None;
    client.walk(cx, vec![((), Api::Arm, url)], |cx, _, page| {
        match page {
            Ok(items) => subs.extend(items.iter().filter_map(|s| out.subscription(cx, s))),
            Err(stop) => failed = Some(stop.reason),
        }
        Ok(())
    })?;
    if let Some(reason) = failed {
        let mut labels = vec![SUBSCRIPTION, ROLE_DEFINITION, ROLE_ASSIGNMENT];
        labels.extend(ARM_LABELS);
        failures.fail(cx, &labels, reason);
    }
    Ok(subs)
}

/// What the second round found that later steps need: Entra group ids, administrative
/// unit ids, and the role assignments (emitted last).
type Tenant = (Vec<String>, Vec<String>, Vec<Value>);

/// What a listing of the second round is.
#[derive(Clone)]
enum Listing {
    Groups(String),
    Resources(String),
    /// A per-type listing, with properties.
    Detailed(String),
    RoleDefinitions(String),
    RoleAssignments(String),
    Users,
    EntraGroups,
    ServicePrincipals,
    AdminUnits,
}

/// Every subscription's listings and Graph's, in one walk. Returns the Entra group ids,
/// the administrative unit ids and the role assignments (emitted last).
fn list_tenant(
    cx: &mut Context,
    client: &mut Client,
    out: &mut Out,
    failures: &mut Failures,
    subs: &[String],
) -> Result<Tenant, SyncError> {
    let arm = client.arm.clone();
    let graph = client.graph.clone();
    let mut listings = Vec::new();
    for s in subs {
        let base = format!("{arm}/subscriptions/{s}");
        let sub = || s.clone();
        listings.push((
            Listing::Groups(sub()),
            Api::Arm,
            format!("{base}/resourcegroups?api-version={RESOURCES_API}&$top={ARM_TOP}"),
        ));
        listings.push((
            Listing::Resources(sub()),
            Api::Arm,
            format!(
                "{base}/resources?api-version={RESOURCES_API}&$expand=provisioningState&$top={ARM_TOP}"
            ),
        ));
        for (ty, api) in rules::DETAILED {
            listings.push((
                Listing::Detailed(sub()),
                Api::Arm,
                format!("{base}/providers/{ty}?api-version={api}"),
            ));
        }
        listings.push((
            Listing::RoleDefinitions(sub()),
            Api::Arm,
            format!(
                "{base}/providers/Microsoft.Authorization/roleDefinitions?api-version={AUTHORIZATION_API}"
            ),
        ));
        listings.push((
            Listing::RoleAssignments(sub()),
            Api::Arm,
            format!(
                "{base}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION_API}"
            ),
        ));
    }
    let g =
        |path: &str, select: &str| format!("{graph}/v1.0/{path}?$select={select}&$top={GRAPH_TOP}");
    listings.push((
        Listing::Users,
        Api::Graph,
        g(
            "users",
            "id,userPrincipalName,displayName,accountEnabled,userType,mail",
        ),
    ));
    listings.push((
        Listing::EntraGroups,
        Api::Graph,
        g(
            "groups",
            "id,displayName,description,groupTypes,mailEnabled,securityEnabled",
        ),
    ));
    listings.push((
        Listing::ServicePrincipals,
        Api::Graph,
        g(
            "servicePrincipals",
            "id,appId,displayName,servicePrincipalType,accountEnabled",
        ),
    ));
    listings.push((
        Listing::AdminUnits,
        Api::Graph,
        g(
            "directory/administrativeUnits",
            "id,displayName,description,visibility",
        ),
    ));

    let (mut groups, mut units, mut assignments) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed: Vec<(Listing, String)> = Vec::new();
    let mut pages = 0u64;
    client.walk(cx, listings, |cx, listing, page| {
        let items = match page {
            Ok(items) => items,
            Err(stop) => {
                failed.push((listing.clone(), stop.reason));
                return Ok(());
            }
        };
        pages += 1;
        if pages.is_multiple_of(50) {
            cx.progress("pages", pages, None);
        }
        match listing {
            Listing::Groups(s) => items.iter().for_each(|g| out.resource_group(cx, s, g)),
            Listing::Resources(_) => {
                for r in &items {
                    let ty = r["type"].as_str().unwrap_or_default().to_ascii_lowercase();
                    // Types a per-type listing gives with properties are emitted from
                    // there, so each resource is emitted once.
                    if !rules::is_detailed(&ty) {
                        out.resource(cx, r)?;
                    }
                }
            }
            Listing::Detailed(_) => {
                for r in &items {
                    out.resource(cx, r)?;
                }
            }
            Listing::RoleDefinitions(_) => items.iter().for_each(|d| out.role_definition(cx, d)),
            Listing::RoleAssignments(_) => assignments.extend(items),
            Listing::Users => items.iter().for_each(|u| out.user(cx, u)),
            Listing::EntraGroups => groups.extend(items.iter().filter_map(|g| out.group(cx, g))),
            Listing::ServicePrincipals => items.iter().for_each(|s| out.service_principal(cx, s)),
            Listing::AdminUnits => units.extend(items.iter().filter_map(|a| out.admin_unit(cx, a))),
        }
        Ok(())
    })?;
    for (listing, reason) in failed {
        let (labels, reason): (&[&'static str], String) = match listing {
            Listing::Groups(s) | Listing::Resources(s) | Listing::Detailed(s) => {
                (ARM_LABELS, format!("subscription {s}: {reason}"))
            }
            Listing::RoleDefinitions(s) => {
                (&[ROLE_DEFINITION], format!("subscription {s}: {reason}"))
            }
            Listing::RoleAssignments(s) => {
                (&[ROLE_ASSIGNMENT], format!("subscription {s}: {reason}"))
            }
            Listing::Users => (&[USER], reason),
            Listing::EntraGroups => (&[GROUP], reason),
            Listing::ServicePrincipals => (&[SERVICE_PRINCIPAL], reason),
            Listing::AdminUnits => (&[ADMIN_UNIT], reason),
        };
        failures.fail(cx, labels, reason);
    }
    Ok((groups, units, assignments))
}

#[derive(Clone)]
enum Third {
    Members(String),
    UnitMembers(String),
    Child(usize),
}

/// Members of every group and administrative unit, and the child listings rules read
/// (DNS record sets, virtual network links, diagnostic settings).
fn list_members_and_children(
    cx: &mut Context,
    client: &mut Client,
    out: &mut Out,
    failures: &mut Failures,
    groups: &[String],
    units: &[String],
) -> Result<(), SyncError> {
    let graph = client.graph.clone();
    let arm = client.arm.clone();
    let mut listings = Vec::new();
    for g in groups {
        listings.push((
            Third::Members(g.clone()),
            Api::Graph,
            format!("{graph}/v1.0/groups/{g}/members?$select=id&$top={GRAPH_TOP}"),
        ));
    }
    for u in units {
        listings.push((
            Third::UnitMembers(u.clone()),
            Api::Graph,
            format!(
                "{graph}/v1.0/directory/administrativeUnits/{u}/members?$select=id&$top={GRAPH_TOP}"
            ),
        ));
    }
    let children = std::mem::take(&mut out.children);
    for (i, c) in children.iter().enumerate() {
        listings.push((
            Third::Child(i),
            Api::Arm,
            format!("{arm}{}/{}?api-version={}", c.parent, c.via.path, c.via.api),
        ));
    }
    let mut failed = Vec::new();
    client.walk(cx, listings, |cx, listing, page| {
        let items = match (page, listing) {
            (Ok(items), _) => items,
            // Deleted between its listing and now: nothing of it to read.
            (Err(stop), Third::Child(_)) if stop.status == Some(404) => return Ok(()),
            (Err(stop), _) => {
                failed.push((listing.clone(), stop.reason));
                return Ok(());
            }
        };
        for item in &items {
            match listing {
                Third::Members(g) => out.member(cx, GROUP, g, item),
                Third::UnitMembers(u) => out.member(cx, ADMIN_UNIT, u, item),
                Third::Child(i) => out.child(cx, &children[*i], item),
            }
        }
        Ok(())
    })?;
    for (listing, reason) in failed {
        let labels: &[&'static str] = match listing {
            Third::Members(_) => &[GROUP],
            Third::UnitMembers(_) => &[ADMIN_UNIT],
            // Diagnostic settings feed relationships between resources: keeping the
            // resources keeps those relationships too.
            Third::Child(i) if children[i].via.path == rules::DIAGNOSTIC_SETTINGS => {
                &[RESOURCE, ORIGINAL]
            }
            Third::Child(_) => &[DNS_ZONE],
        };
        failures.fail(cx, labels, reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_declares_the_whole_schema() {
        let nodes = schema::nodes();
        assert_eq!(nodes.len(), 16);
        let edges = schema::edges();
        assert!(edges.len() > 40, "{}", edges.len());
    }
}
