//! The Azure plugin end to end (issue 8): the `infragraph` binary syncing the Azure
//! simulator (Entra ID tokens, ARM, Microsoft Graph) into a fresh store, the graph read back
//! through `export`.

use std::collections::BTreeSet;

use infragraph_tests::cli::{Ran, Work, run, run_with_input};
use infragraph_tests::graph::Graph;
use infragraph_tests::sim::{
    AzureData, AzureSim, abstracted_hash, azure_examples as ex, azure_sample as s,
};
use serde_json::{Value as Json, json};

/// The seed most tests import, so that expected abstracted ids can be computed.
const SEED: &str = "5eed00112233445566778899aabbccddeeff00112233445566778899aabbcc01";

fn seed_bytes() -> Vec<u8> {
    hex::decode(SEED).unwrap()
}

struct Setup<'a> {
    sim: &'a AzureSim,
    secret: &'a str,
    seed: Option<&'a str>,
    /// `AZURE_DIAGNOSTIC_TYPES`, when set.
    diagnostic_types: Option<&'a str>,
}

impl<'a> Setup<'a> {
    fn new(sim: &'a AzureSim) -> Self {
        Setup {
            sim,
            secret: AzureSim::CLIENT_SECRET,
            seed: Some(SEED),
            diagnostic_types: None,
        }
    }

    fn sync_into(&self, w: &Work, store: &str) -> Ran {
        let mut cmd = w.cmd(&["sync", "azure", "--store", store, "--report", "report.json"]);
        let url = self.sim.url();
        cmd.env("AZURE_TENANT_ID", self.sim.tenant_id())
            .env("AZURE_CLIENT_ID", AzureSim::CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", self.secret)
            .env("AZURE_AUTHORITY_HOST", &url)
            .env("AZURE_RESOURCE_MANAGER_URL", &url)
            .env("AZURE_GRAPH_URL", &url);
        match self.seed {
            Some(seed) => cmd.env("AZURE_ABSTRACTION_SEED", seed),
            None => cmd.env_remove("AZURE_ABSTRACTION_SEED"),
        };
        if let Some(types) = self.diagnostic_types {
            cmd.env("AZURE_DIAGNOSTIC_TYPES", types);
        }
        run(&mut cmd)
    }

    fn sync(&self, w: &Work) -> Ran {
        self.sync_into(w, &w.store())
    }
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

/// A resource of the sample: its ARM id as the simulator serves it, and the prefix its
/// abstracted id must carry.
struct R {
    arm: String,
    prefix: &'static str,
}

impl R {
    fn original(&self) -> String {
        self.arm.to_ascii_lowercase()
    }
    fn abstracted(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            abstracted_hash(&seed_bytes(), &self.arm)
        )
    }
}

fn r(sub: &str, group: &str, ty: &str, name: &str, prefix: &'static str) -> R {
    R {
        arm: format!("/subscriptions/{sub}/resourceGroups/{group}/providers/{ty}/{name}"),
        prefix,
    }
}

/// Every resource of [`AzureData::sample`], by a short name.
fn resources() -> Vec<(&'static str, R)> {
    let (p, d) = (s::SUB_PROD, s::SUB_DEV);
    let net = "Microsoft.Network";
    let vnet = r(
        p,
        "rg-web",
        &format!("{net}/virtualNetworks"),
        "vnet-main",
        "vnet",
    );
    let subnet = |v: &R, name: &str| R {
        arm: format!("{}/subnets/{name}", v.arm),
        prefix: "subnet",
    };
    let vnet_dev = r(
        d,
        "rg-dev",
        &format!("{net}/virtualNetworks"),
        "vnet-dev",
        "vnet",
    );
    vec![
        ("default", subnet(&vnet, "default")),
        ("pe-subnet", subnet(&vnet, "pe-subnet")),
        ("dev-default", subnet(&vnet_dev, "default")),
        ("vnet-main", vnet),
        ("vnet-dev", vnet_dev),
        (
            "nsg-web",
            r(
                p,
                "rg-web",
                &format!("{net}/networkSecurityGroups"),
                "nsg-web",
                "nsg",
            ),
        ),
        (
            "nic-web",
            r(
                p,
                "rg-web",
                &format!("{net}/networkInterfaces"),
                "nic-web",
                "nic",
            ),
        ),
        (
            "pip-web",
            r(
                p,
                "rg-web",
                &format!("{net}/publicIPAddresses"),
                "pip-web",
                "pip",
            ),
        ),
        (
            "vm-web",
            r(
                p,
                "rg-web",
                "Microsoft.Compute/virtualMachines",
                "vm-web",
                "vm",
            ),
        ),
        (
            "disk-web",
            r(p, "rg-web", "Microsoft.Compute/disks", "disk-os", "disk"),
        ),
        (
            "app-web",
            r(p, "rg-web", "Microsoft.Web/sites", "app-web", "app"),
        ),
        (
            "plan-web",
            r(p, "rg-web", "Microsoft.Web/serverfarms", "plan-web", "plan"),
        ),
        (
            "uami-app",
            r(
                p,
                "rg-web",
                "Microsoft.ManagedIdentity/userAssignedIdentities",
                "uami-app",
                "id",
            ),
        ),
        (
            "appi-web",
            r(
                p,
                "rg-web",
                "microsoft.insights/components",
                "appi-web",
                "appi",
            ),
        ),
        (
            "law-main",
            r(
                p,
                "rg-data",
                "Microsoft.OperationalInsights/workspaces",
                "law-main",
                "law",
            ),
        ),
        (
            "stdata",
            r(
                p,
                "rg-data",
                "Microsoft.Storage/storageAccounts",
                "stdata",
                "storage",
            ),
        ),
        (
            "disk-data",
            r(p, "rg-data", "Microsoft.Compute/disks", "disk-os", "disk"),
        ),
        (
            "pe-storage",
            r(
                p,
                "rg-data",
                &format!("{net}/privateEndpoints"),
                "pe-storage",
                "pe",
            ),
        ),
        (
            "zone",
            r(
                p,
                "rg-data",
                &format!("{net}/dnszones"),
                "contoso.com",
                "dns",
            ),
        ),
        (
            "pzone",
            r(
                p,
                "rg-data",
                &format!("{net}/privateDnsZones"),
                "privatelink.blob.core.windows.net",
                "pdns",
            ),
        ),
        (
            "topic",
            r(
                p,
                "rg-data",
                "Microsoft.EventGrid/systemTopics",
                "topic-storage",
                "evgt",
            ),
        ),
        (
            "kv-dev",
            r(d, "rg-dev", "Microsoft.KeyVault/vaults", "kv-dev", "kv"),
        ),
        (
            "alert-cpu",
            r(
                p,
                "rg-web",
                "Microsoft.Insights/metricAlerts",
                "alert-cpu",
                "alert",
            ),
        ),
    ]
}

type Key = (String, String);
type Edge = (String, Key, Key);
/// (subscription, number, principal labels, principal, role guid, scope nodes)
type Assignment<'a> = (&'a str, usize, &'a [&'a str], &'a str, &'a str, Vec<Key>);

fn k(label: &str, id: &str) -> Key {
    (label.to_owned(), id.to_owned())
}

fn rg(sub: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourcegroups/{name}")
}

fn role(sub: &str, guid: &str) -> String {
    format!("/subscriptions/{sub}/providers/microsoft.authorization/roledefinitions/{guid}")
}

fn ra(sub: &str, n: usize) -> String {
    format!("/subscriptions/{sub}/providers/microsoft.authorization/roleassignments/ra-{n:04}")
}

/// The graph a sync of the sample must write, nodes and relationships, written out from
/// the fixture: both views of every resource, and each relationship between resources in
/// both views.
fn expected() -> (BTreeSet<Key>, BTreeSet<Edge>) {
    let (p, d) = (s::SUB_PROD, s::SUB_DEV);
    let all = resources();
    let res = |name: &str| -> &R { &all.iter().find(|(n, _)| *n == name).expect(name).1 };
    let mut nodes = BTreeSet::new();
    let mut edges = BTreeSet::new();
    let mut edge = |t: &str, a: Key, b: Key| {
        edges.insert((t.to_owned(), a, b));
    };
    nodes.insert(k("Tenant", s::TENANT));
    for sub in [p, d] {
        nodes.insert(k("Subscription", sub));
        edge("CONTAINS", k("Tenant", s::TENANT), k("Subscription", sub));
        for guid in [s::OWNER_ROLE, s::READER_ROLE] {
            nodes.insert(k("RoleDefinition", &role(sub, guid)));
        }
    }
    for (sub, g) in [(p, "rg-web"), (p, "rg-data"), (d, "rg-dev")] {
        nodes.insert(k("ResourceGroup", &rg(sub, g)));
        edge(
            "CONTAINS",
            k("Subscription", sub),
            k("ResourceGroup", &rg(sub, g)),
        );
    }
    let regions = [
        (
            "westeurope",
            &[
                "default",
                "pe-subnet",
                "vnet-main",
                "nsg-web",
                "nic-web",
                "pip-web",
                "vm-web",
                "disk-web",
                "app-web",
                "plan-web",
                "uami-app",
                "appi-web",
                "law-main",
                "stdata",
                "pe-storage",
                "topic",
            ][..],
        ),
        (
            "northeurope",
            &["dev-default", "vnet-dev", "disk-data", "kv-dev"][..],
        ),
        ("global", &["zone", "pzone", "alert-cpu"][..]),
    ];
    for (region, members) in regions {
        nodes.insert(k("Region", region));
        for m in members {
            let x = res(m);
            edge(
                "LOCATED_IN",
                k("Resource", &x.abstracted()),
                k("Region", region),
            );
            edge(
                "LOCATED_IN",
                k("OriginalResource", &x.original()),
                k("Region", region),
            );
        }
    }
    for (name, x) in &all {
        nodes.insert(k("Resource", &x.abstracted()));
        nodes.insert(k("OriginalResource", &x.original()));
        edge(
            "SCAN_SOURCE_NODE",
            k("Resource", &x.abstracted()),
            k("OriginalResource", &x.original()),
        );
        if !name.contains("default") && *name != "pe-subnet" {
            let (sub, group) = {
                let parts: Vec<&str> = x.arm.split('/').collect();
                (parts[2].to_owned(), parts[4].to_owned())
            };
            let g = rg(&sub, &group);
            edge(
                "CONTAINS",
                k("ResourceGroup", &g),
                k("Resource", &x.abstracted()),
            );
            edge(
                "CONTAINS",
                k("ResourceGroup", &g),
                k("OriginalResource", &x.original()),
            );
        }
    }
    for (name, tags) in [
        ("vm-web", &["env=prod", "tier=web"][..]),
        ("stdata", &["env=prod", "owner=data"][..]),
        ("kv-dev", &["env=dev"][..]),
    ] {
        for tag in tags {
            nodes.insert(k("Tag", tag));
            edge(
                "TAGGED_WITH",
                k("Resource", &res(name).abstracted()),
                k("Tag", tag),
            );
            edge(
                "TAGGED_WITH",
                k("OriginalResource", &res(name).original()),
                k("Tag", tag),
            );
        }
    }
    // Creators from `systemData`: a user by sign-in name, an application by client id.
    for (name, label, principal) in [
        ("vm-web", "User", s::ALICE),
        ("stdata", "ServicePrincipal", s::DEPLOYER),
    ] {
        edge(
            "CREATED_BY",
            k("Resource", &res(name).abstracted()),
            k(label, principal),
        );
        edge(
            "CREATED_BY",
            k("OriginalResource", &res(name).original()),
            k(label, principal),
        );
    }
    // Relationships the rules derive between resources, each in both views.
    for (t, a, b) in [
        ("DEPENDS_ON", "vm-web", "nic-web"),
        ("DEPENDS_ON", "vm-web", "disk-web"),
        ("USES_SUBNET", "nic-web", "default"),
        ("SECURED_BY", "nic-web", "nsg-web"),
        ("USES", "nic-web", "pip-web"),
        ("CONTAINS", "vnet-main", "default"),
        ("CONTAINS", "vnet-main", "pe-subnet"),
        ("CONTAINS", "vnet-dev", "dev-default"),
        ("CONNECTS_TO", "vnet-main", "vnet-dev"),
        ("CONNECTS_TO", "vnet-dev", "vnet-main"),
        ("SECURED_BY", "default", "nsg-web"),
        ("USES_SUBNET", "pe-storage", "pe-subnet"),
        ("DEPENDS_ON", "app-web", "plan-web"),
        ("USES_SUBNET", "app-web", "default"),
        ("LOGS_TO", "appi-web", "law-main"),
        ("MONITORS", "alert-cpu", "vm-web"),
        // Diagnostic settings, read for the default diagnosed types.
        ("LOGS_TO", "kv-dev", "law-main"),
        ("LOGS_TO", "kv-dev", "stdata"),
        ("LOGS_TO", "nsg-web", "law-main"),
        ("INTEGRATES_WITH", "topic", "stdata"),
    ] {
        edge(
            t,
            k("Resource", &res(a).abstracted()),
            k("Resource", &res(b).abstracted()),
        );
        edge(
            t,
            k("OriginalResource", &res(a).original()),
            k("OriginalResource", &res(b).original()),
        );
    }
    let pe = res("pe-storage").original();
    nodes.insert(k("PrivateEndpoint", &pe));
    edge(
        "CONNECTED_TO_PE",
        k("Resource", &res("stdata").abstracted()),
        k("PrivateEndpoint", &pe),
    );
    edge(
        "CONNECTED_TO_PE",
        k("OriginalResource", &res("stdata").original()),
        k("PrivateEndpoint", &pe),
    );
    for (zone, target) in [("zone", "pip-web"), ("pzone", "vnet-main")] {
        let z = res(zone).original();
        nodes.insert(k("DNSZone", &z));
        edge(
            "RESOLVES_TO",
            k("DNSZone", &z),
            k("Resource", &res(target).abstracted()),
        );
        edge(
            "RESOLVES_TO",
            k("DNSZone", &z),
            k("OriginalResource", &res(target).original()),
        );
    }
    nodes.insert(k("ManagedIdentity", s::VM_IDENTITY));
    nodes.insert(k("ManagedIdentity", s::APP_IDENTITY));
    for (who, mi) in [
        ("vm-web", s::VM_IDENTITY),
        ("vm-web", s::APP_IDENTITY),
        ("app-web", s::APP_IDENTITY),
    ] {
        edge(
            "USES_IDENTITY",
            k("Resource", &res(who).abstracted()),
            k("ManagedIdentity", mi),
        );
        edge(
            "USES_IDENTITY",
            k("OriginalResource", &res(who).original()),
            k("ManagedIdentity", mi),
        );
    }
    for u in [s::ALICE, s::BOB, s::CAROL] {
        nodes.insert(k("User", u));
    }
    for g in [s::PLATFORM, s::ADMINS, s::M365] {
        nodes.insert(k("Group", g));
    }
    for sp in [s::DEPLOYER, s::VM_IDENTITY, s::APP_IDENTITY] {
        nodes.insert(k("ServicePrincipal", sp));
    }
    nodes.insert(k("AdminUnit", s::EMEA));
    for (from, id, to, container) in [
        ("User", s::ALICE, "Group", s::PLATFORM),
        ("Group", s::ADMINS, "Group", s::PLATFORM),
        ("User", s::BOB, "Group", s::ADMINS),
        ("ServicePrincipal", s::DEPLOYER, "Group", s::ADMINS),
        ("User", s::ALICE, "Group", s::M365),
        ("User", s::CAROL, "Group", s::M365),
        ("User", s::ALICE, "AdminUnit", s::EMEA),
        ("Group", s::PLATFORM, "AdminUnit", s::EMEA),
    ] {
        edge("MEMBER_OF", k(from, id), k(to, container));
    }
    let stdata = res("stdata");
    let assignments: [Assignment; 6] = [
        (
            p,
            1,
            &["User"],
            s::ALICE,
            s::OWNER_ROLE,
            vec![k("Subscription", p)],
        ),
        (
            p,
            2,
            &["Group"],
            s::PLATFORM,
            s::READER_ROLE,
            vec![k("ResourceGroup", &rg(p, "rg-data"))],
        ),
        (
            p,
            3,
            &["ServicePrincipal", "ManagedIdentity"],
            s::VM_IDENTITY,
            s::READER_ROLE,
            vec![
                k("Resource", &stdata.abstracted()),
                k("OriginalResource", &stdata.original()),
            ],
        ),
        (
            p,
            4,
            &["ServicePrincipal"],
            s::DEPLOYER,
            s::OWNER_ROLE,
            vec![k("ResourceGroup", &rg(p, "rg-web"))],
        ),
        (p, 5, &["Group"], s::ADMINS, s::READER_ROLE, vec![]),
        (
            d,
            6,
            &["User"],
            s::ALICE,
            s::READER_ROLE,
            vec![k("Subscription", d)],
        ),
    ];
    for (sub, n, labels, principal, guid, scopes) in assignments {
        let id = ra(sub, n);
        nodes.insert(k("RoleAssignment", &id));
        for label in labels {
            edge("ASSIGNED_TO", k("RoleAssignment", &id), k(label, principal));
            edge(
                "HAS_ROLE",
                k(label, principal),
                k("RoleDefinition", &role(sub, guid)),
            );
            for scope in &scopes {
                edge("ASSIGNED_ROLE", k(label, principal), scope.clone());
            }
        }
    }
    (nodes, edges)
}

fn diff<T: Ord + std::fmt::Debug>(got: &BTreeSet<T>, want: &BTreeSet<T>) -> String {
    let missing: Vec<&T> = want.difference(got).collect();
    let extra: Vec<&T> = got.difference(want).collect();
    format!("missing {missing:#?}\nunexpected {extra:#?}")
}

fn node_keys(g: &Graph) -> BTreeSet<Key> {
    g.nodes.keys().cloned().collect()
}

fn edge_keys(g: &Graph) -> BTreeSet<Edge> {
    g.edges.keys().cloned().collect()
}

fn assert_sample_graph(g: &Graph) {
    let (nodes, edges) = expected();
    assert!(
        node_keys(g) == nodes,
        "nodes differ:\n{}",
        diff(&node_keys(g), &nodes)
    );
    assert!(
        edge_keys(g) == edges,
        "relationships differ:\n{}",
        diff(&edge_keys(g), &edges)
    );
}

#[test]
fn the_sample_tenant_syncs_to_the_hand_written_graph() {
    let w = Work::new("azure-sample");
    let sim = AzureSim::start(AzureData::sample());
    // Small pages, so that every listing follows its links.
    sim.set_page_size(2);
    ok(&Setup::new(&sim).sync(&w));
    let g = w.graph();
    assert_sample_graph(&g);
    assert_eq!(w.report()["status"], "succeeded", "{}", w.report());
    assert_eq!(sim.wrong_audience(), 0);
    assert_eq!(sim.tokens_issued(), 2, "one token per API");

    // SCAN_SOURCE_NODE is one to one.
    let scans: Vec<&(String, Key, Key)> = g
        .edges
        .keys()
        .filter(|e| e.0 == "SCAN_SOURCE_NODE")
        .collect();
    let starts: BTreeSet<&Key> = scans.iter().map(|e| &e.1).collect();
    let ends: BTreeSet<&Key> = scans.iter().map(|e| &e.2).collect();
    assert_eq!((starts.len(), ends.len()), (scans.len(), scans.len()));
    assert_eq!(scans.len(), g.count("Resource"));
    assert_eq!(scans.len(), g.count("OriginalResource"));

    // Both views of the VM, as the schema gives them.
    let all = resources();
    let vm = &all.iter().find(|(n, _)| *n == "vm-web").unwrap().1;
    let (labels, original) = &g.nodes[&k("OriginalResource", &vm.original())];
    let mut labels = labels.clone();
    labels.sort();
    assert_eq!(labels, ["Original", "OriginalResource", "Resource"]);
    let abstracted = g.node("Resource", &vm.abstracted());
    for (key, want) in [
        ("name", json!("vm-web")),
        ("type", json!("Microsoft.Compute/virtualMachines")),
        ("location", json!("westeurope")),
        // A map (contract 0.3.0), stored as one: not the text the plugin sent.
        ("tags", json!({"env": "prod", "tier": "web"})),
        ("provisioning_state", json!("Succeeded")),
    ] {
        assert_eq!(original[key], want, "original {key}");
        assert_eq!(abstracted[key], want, "abstracted {key}");
    }
    assert_eq!(original["abstracted_id"], json!(vm.abstracted()));
    assert_eq!(original["arm_id"], json!(vm.arm));
    assert_eq!(original["resource_group"], json!("rg-web"));
    assert_eq!(original["subscription_id"], json!(s::SUB_PROD));
    assert_eq!(abstracted["original_id"], json!(vm.original()));
    assert_eq!(abstracted["abstraction_type"], json!("hmac-sha256"));
    // Related properties are abstracted the way ids are.
    let group_hash = abstracted_hash(&seed_bytes(), &rg(s::SUB_PROD, "rg-web"));
    assert_eq!(
        abstracted["resource_group"],
        json!(format!("rg-{group_hash}"))
    );
    let sub_hash = abstracted_hash(&seed_bytes(), &format!("/subscriptions/{}", s::SUB_PROD));
    assert_eq!(
        abstracted["subscription_id"],
        json!(format!("sub-{sub_hash}"))
    );
    let props: Json = serde_json::from_str(original["properties"].as_str().unwrap()).unwrap();
    assert_eq!(props["hardwareProfile"]["vmSize"], "Standard_B2s");
    // The seed itself is written nowhere.
    let everything = g.lines();
    assert!(!everything.contains(SEED), "the seed is in the graph");

    // A few other kinds' properties.
    let tenant = g.node("Tenant", s::TENANT);
    assert_eq!(
        (&tenant["name"], &tenant["domain"]),
        (&json!("Contoso"), &json!("contoso.com"))
    );
    let vm = &all.iter().find(|(n, _)| *n == "vm-web").unwrap().1;
    let created = &g.edges[&(
        "CREATED_BY".to_owned(),
        k("OriginalResource", &vm.original()),
        k("User", s::ALICE),
    )];
    assert_eq!(created["created_at"], "2025-03-01T09:00:00Z");
    let bob = g.node("User", s::BOB);
    assert_eq!(bob["user_principal_name"], "bob@contoso.com");
    assert_eq!(bob["account_enabled"], false);
    let m365 = g.node("Group", s::M365);
    assert_eq!(m365["group_types"], json!(["Unified"]));
    assert!(
        g.nodes[&k("Group", s::M365)]
            .0
            .contains(&"IdentityGroup".to_owned())
    );
    let mi = g.node("ManagedIdentity", s::APP_IDENTITY);
    assert_eq!(
        (&mi["type"], &mi["client_id"]),
        (&json!("UserAssigned"), &json!("c-uami-app"))
    );
    let pe = &all.iter().find(|(n, _)| *n == "pe-storage").unwrap().1;
    let pe_node = g.node("PrivateEndpoint", &pe.original());
    assert_eq!(pe_node["connection_state"], "Approved");
    let zone = &all.iter().find(|(n, _)| *n == "zone").unwrap().1;
    let zone_node = g.node("DNSZone", &zone.original());
    assert_eq!(
        (&zone_node["type"], &zone_node["record_count"]),
        (&json!("Public"), &json!(3))
    );
    let owner = g.node("RoleDefinition", &role(s::SUB_PROD, s::OWNER_ROLE));
    assert_eq!(owner["role_name"], "Owner");
    let assigned = g
        .edges
        .iter()
        .find(|((t, a, b), _)| t == "ASSIGNED_ROLE" && a.1 == s::ALICE && b.1 == s::SUB_PROD)
        .expect("alice is Owner of the production subscription")
        .1;
    assert_eq!(assigned["role_name"], "Owner");
    let dep = g
        .edges
        .iter()
        .find(|((t, a, _), _)| t == "DEPENDS_ON" && a.1 == vm.original())
        .unwrap()
        .1;
    assert_eq!(dep["dependency_type"], "Hard");
}

#[test]
fn abstracted_ids_are_distinct_stable_and_move_with_the_seed() {
    let w = Work::new("azure-ids");
    let sim = AzureSim::start(AzureData::sample());
    let mut setup = Setup::new(&sim);
    setup.seed = None;
    ok(&setup.sync(&w));
    let first = w.graph();
    let ids = |g: &Graph| -> BTreeSet<(String, String)> {
        g.nodes
            .iter()
            .filter(|((l, _), _)| l == "Resource")
            .map(|((_, id), (_, p))| (p["original_id"].as_str().unwrap().to_owned(), id.clone()))
            .collect()
    };
    // Same-named disks in different groups get different ids.
    let first_ids = ids(&first);
    let disks: Vec<&(String, String)> = first_ids
        .iter()
        .filter(|(o, _)| o.ends_with("/disks/disk-os"))
        .collect();
    assert_eq!(disks.len(), 2);
    assert_ne!(disks[0].1, disks[1].1);
    assert!(
        disks
            .iter()
            .all(|(_, id)| id.starts_with("disk-") && id.len() == 5 + 32)
    );

    // A second sync reuses the seed.
    ok(&setup.sync(&w));
    assert_eq!(ids(&w.graph()), ids(&first));

    // The seed, exported, gives the same ids in a new store, whether imported with
    // `state set` or given as AZURE_ABSTRACTION_SEED.
    let store = w.store();
    let tenant = sim.tenant_id();
    let got = run(&mut w.cmd(&[
        "state",
        "get",
        "azure",
        &tenant,
        "abstraction_seed",
        "--store",
        &store,
    ]));
    ok(&got);
    let exported = got.stdout.trim().to_owned();
    assert_eq!(exported.len(), 64, "{exported}");
    let fingerprint = first
        .nodes
        .iter()
        .find(|((l, _), _)| l == "Resource")
        .map(|(_, (_, p))| p["seed_fingerprint"].clone())
        .unwrap();
    assert!(
        !first.lines().contains(&exported),
        "the seed is in the graph"
    );

    // Piped in (`-`), as the README shows it: the seed stays out of argv.
    let moved = w.0.join("moved.db").to_string_lossy().into_owned();
    let set = run_with_input(
        &mut w.cmd(&[
            "state",
            "set",
            "azure",
            &tenant,
            "abstraction_seed",
            "-",
            "--store",
            &moved,
        ]),
        &got.stdout,
    );
    ok(&set);
    ok(&setup.sync_into(&w, &moved));
    let moved_graph = w.graph_of(&moved);
    assert_eq!(ids(&moved_graph), ids(&first));

    let by_env = w.0.join("by-env.db").to_string_lossy().into_owned();
    setup.seed = Some(&exported);
    ok(&setup.sync_into(&w, &by_env));
    let env_graph = w.graph_of(&by_env);
    assert_eq!(ids(&env_graph), ids(&first));
    let fp = env_graph
        .nodes
        .iter()
        .find(|((l, _), _)| l == "Resource")
        .map(|(_, (_, p))| p["seed_fingerprint"].clone())
        .unwrap();
    assert_eq!(fp, fingerprint);

    // Another seed for a store that has one is refused: every id would change.
    setup.seed = Some(SEED);
    let refused = setup.sync(&w);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert_eq!(refused.code, 2, "{said}");
    assert!(said.contains("AZURE_ABSTRACTION_SEED differs"), "{said}");
    assert!(!said.contains(&exported));
    assert_eq!(ids(&w.graph()), ids(&first));

    // `state get` of an absent entry exits 1; `state set` refuses a value that is not hex.
    let absent = run(&mut w.cmd(&[
        "state",
        "get",
        "azure",
        "other-tenant",
        "abstraction_seed",
        "--store",
        &store,
    ]));
    assert_eq!(absent.code, 1, "{}", absent.stderr);
    assert!(absent.stderr.contains("other-tenant"), "{}", absent.stderr);
    let not_hex = run(&mut w.cmd(&[
        "state",
        "set",
        "azure",
        &tenant,
        "abstraction_seed",
        "xyz",
        "--store",
        &moved,
    ]));
    assert_eq!(not_hex.code, 2);
    assert!(not_hex.stderr.contains("hex digits"), "{}", not_hex.stderr);

    // A malformed seed is named.
    setup.seed = Some("not-hex");
    let fresh = w.0.join("fresh.db").to_string_lossy().into_owned();
    let bad = setup.sync_into(&w, &fresh);
    let said = format!("{}{}", bad.stdout, bad.stderr);
    assert_eq!(bad.code, 2, "{said}");
    assert!(said.contains("64 hex digits"), "{said}");
}

/// Throttling (429 with Retry-After) is absorbed by the host; tokens that expire every
/// few requests are renewed by the plugin; the graph is the same as without faults.
#[test]
fn throttling_and_expiring_tokens_change_nothing() {
    let w = Work::new("azure-faults");
    let sim = AzureSim::start(AzureData::sample());
    sim.set_page_size(3);
    sim.throttle_next(3, 1);
    sim.expire_tokens_after(7);
    ok(&Setup::new(&sim).sync(&w));
    assert_sample_graph(&w.graph());
    assert_eq!(sim.throttled(), 3);
    assert!(sim.expired_requests() >= 2, "{}", sim.expired_requests());
    assert!(sim.tokens_issued() > 2, "{}", sim.tokens_issued());
    assert_eq!(sim.wrong_audience(), 0);
    let report = w.report();
    assert_eq!(report["status"], "succeeded", "{report}");
}

/// Tokens that say they expire within the renewal margin are renewed before use, once per
/// API per round of requests, and never sent stale.
#[test]
fn tokens_about_to_expire_are_renewed_before_use() {
    let w = Work::new("azure-expires-in");
    let sim = AzureSim::start(AzureData::sample());
    sim.set_page_size(4);
    sim.set_token_lifetime(60);
    ok(&Setup::new(&sim).sync(&w));
    assert_sample_graph(&w.graph());
    assert_eq!(sim.expired_requests(), 0);
    let tokens = sim.tokens_issued();
    let requests = sim.total_requests();
    // More than the two first tokens, and far fewer than one per request.
    assert!(
        tokens > 4 && tokens * 3 < requests,
        "{tokens} tokens for {requests} requests"
    );
}

/// A subscription answering 403 marks what it feeds incomplete: its resources from the
/// last sync are kept, everything else is written, and the run is partial.
/// `LOGS_TO` edges of the original view, as (from name, to name).
fn logs_to(g: &Graph) -> BTreeSet<(String, String)> {
    let name = |id: &str| id.rsplit('/').next().unwrap_or(id).to_owned();
    g.edges
        .keys()
        .filter(|(t, from, _)| t == "LOGS_TO" && from.0 == "OriginalResource")
        .map(|(_, from, to)| (name(&from.1), name(&to.1)))
        .collect()
}

#[test]
fn diagnostic_settings_are_read_for_the_configured_types_and_a_failure_keeps_them() {
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let sim = AzureSim::start(AzureData::sample());
    let mut setup = Setup::new(&sim);
    // Only key vaults: the NSG's settings are not asked for.
    let w = Work::new("azure-diagnostics");
    setup.diagnostic_types = Some("Microsoft.KeyVault/vaults");
    ok(&setup.sync(&w));
    assert_eq!(
        logs_to(&w.graph()),
        BTreeSet::from([
            pair("appi-web", "law-main"),
            pair("kv-dev", "law-main"),
            pair("kv-dev", "stdata")
        ])
    );
    let asked = |what: &str| {
        sim.request_log()
            .iter()
            .filter(|l| l.to_ascii_lowercase().contains(what))
            .count()
    };
    assert_eq!(asked("diagnosticsettings"), 1, "{:?}", sim.request_log());
    // None at all: only Application Insights' workspace remains.
    let w = Work::new("azure-no-diagnostics");
    setup.diagnostic_types = Some("");
    ok(&setup.sync(&w));
    assert_eq!(
        logs_to(&w.graph()),
        BTreeSet::from([pair("appi-web", "law-main")])
    );
    assert_eq!(asked("diagnosticsettings"), 1, "no new requests");
    // The defaults, then the settings listings break: the run is partial, and the
    // resources and their LOGS_TO edges from the last sync are kept.
    let w = Work::new("azure-diagnostics-broken");
    setup.diagnostic_types = None;
    ok(&setup.sync(&w));
    let before = logs_to(&w.graph());
    assert!(before.contains(&pair("nsg-web", "law-main")), "{before:?}");
    sim.break_listings_ending("/providers/Microsoft.Insights/diagnosticSettings");
    let ran = setup.sync(&w);
    assert_eq!(ran.code, 1, "partial:\n{}\n{}", ran.stdout, ran.stderr);
    let incomplete = w.report()["incomplete"].to_string();
    assert!(
        incomplete.contains("OriginalResource") && incomplete.contains("diagnosticSettings"),
        "{incomplete}"
    );
    assert_eq!(logs_to(&w.graph()), before);
}

#[test]
fn a_forbidden_subscription_keeps_its_records_and_the_rest_syncs() {
    let w = Work::new("azure-forbidden");
    let sim = AzureSim::start(AzureData::sample());
    let setup = Setup::new(&sim);
    ok(&setup.sync(&w));
    let before = w.graph();
    sim.forbid_subscription(s::SUB_DEV);
    // Something changes in the readable subscription and in Graph.
    sim.update(|d| {
        d.users.retain(|u| u["id"] != s::CAROL);
        d.members
            .get_mut(s::M365)
            .unwrap()
            .retain(|m| m["id"] != s::CAROL);
    });
    let ran = setup.sync(&w);
    assert_eq!(ran.code, 1, "partial:\n{}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    assert_eq!(report["status"], "partial", "{report}");
    let incomplete = report["incomplete"].to_string();
    for label in [
        "Resource",
        "OriginalResource",
        "ResourceGroup",
        "RoleAssignment",
        "RoleDefinition",
    ] {
        assert!(
            incomplete.contains(label),
            "{label} not incomplete: {incomplete}"
        );
    }
    assert!(incomplete.contains("AuthorizationFailed"), "{incomplete}");
    let after = w.graph();
    // The dev subscription's records are still there; carol is gone.
    let kv = &resources()
        .into_iter()
        .find(|(n, _)| *n == "kv-dev")
        .unwrap()
        .1;
    assert!(after.has("OriginalResource", &kv.original()));
    assert!(after.has("Resource", &kv.abstracted()));
    assert!(after.has("ResourceGroup", &rg(s::SUB_DEV, "rg-dev")));
    assert!(!after.has("User", s::CAROL));
    assert_eq!(after.count("Resource"), before.count("Resource"));
}

#[test]
fn a_wrong_client_secret_names_the_variables_and_is_not_shown() {
    let w = Work::new("azure-wrong-secret");
    let sim = AzureSim::start(AzureData::sample());
    let mut setup = Setup::new(&sim);
    setup.secret = "wrong~secret-0000aaaa";
    let ran = setup.sync(&w);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        all.contains("AZURE_CLIENT_SECRET") && all.contains("invalid_client"),
        "{all}"
    );
    assert!(!all.contains("wrong~secret"), "{all}");
    assert_eq!(sim.rejected_secrets(), 1);
}

/// The client secret is in no output, report, log line, graph or request the simulator
/// saw outside the token endpoint's body.
#[test]
fn the_client_secret_appears_nowhere() {
    let w = Work::new("azure-secret");
    let sim = AzureSim::start(AzureData::sample());
    let mut cmd_setup = Setup::new(&sim);
    cmd_setup.seed = None;
    let ran = cmd_setup.sync(&w);
    ok(&ran);
    let report = std::fs::read_to_string(w.0.join("report.json")).unwrap();
    let graph = w.graph().lines();
    let runs = run(&mut w.cmd(&["runs", "--json", "--store", &w.store()])).stdout;
    let requests = sim.request_log().join("\n");
    for (what, text) in [
        ("stdout", &ran.stdout),
        ("stderr", &ran.stderr),
        ("report", &report),
        ("graph", &graph),
        ("run history", &runs),
        ("request lines", &requests),
    ] {
        assert!(
            !text.contains(AzureSim::CLIENT_SECRET),
            "{what} holds the secret:\n{text}"
        );
    }
    assert!(requests.contains("POST /"), "{requests}");
}

#[test]
fn the_schema_lists_every_rule() {
    let w = Work::new("azure-schema");
    let ran = run(&mut w.cmd(&["schema", "azure"]));
    ok(&ran);
    for needle in [
        "properties.networkProfile.networkInterfaces[].id",
        "properties.ipConfigurations[].properties.subnet.id",
        "properties.privateLinkServiceConnections[].properties.privateLinkServiceId",
        "identity.userAssignedIdentities.*.principalId",
        "recordsets",
        "SCAN_SOURCE_NODE",
        "OriginalResource",
    ] {
        assert!(
            ran.stdout.contains(needle),
            "{needle} missing:\n{}",
            ran.stdout
        );
    }
}

/// In process: the records the plugin emitted, its state writes, its outcome and the log
/// hold neither the client secret nor the seed; the seed is kept in the state, 32 bytes.
#[tokio::test(flavor = "current_thread")]
async fn the_guest_emits_neither_secret_nor_seed() {
    let (log, _guard) = infragraph_tests::logs::capture();
    let sim = AzureSim::start(AzureData::sample());
    let rt = crate::runtime();
    let plugin = rt
        .load(&infragraph_tests::harness::plugin("azure"), None)
        .await
        .expect("the azure plugin loads");
    let url = sim.url();
    let run = infragraph_tests::harness::Sync::new(&rt, &plugin)
        .config("tenant_id", &sim.tenant_id())
        .config("client_id", AzureSim::CLIENT_ID)
        .config("login_url", &url)
        .config("arm_url", &url)
        .config("graph_url", &url)
        .secret("client_secret", AzureSim::CLIENT_SECRET)
        .run()
        .await;
    assert!(run.outcome.result.is_ok(), "{:?}", run.outcome.result);
    assert_eq!((sim.tokens_issued(), sim.rejected_secrets()), (2, 0));
    let seed = run.outcome.state_writes["abstraction_seed"]
        .clone()
        .expect("a seed is stored");
    assert_eq!(seed.len(), 32);
    let seed_hex = hex::encode(&seed);
    let emitted = format!("{:?}", run.emitted);
    let outcome = format!("{:?}", run.outcome.result);
    let logged = log.text();
    for (what, text) in [
        ("records", &emitted),
        ("outcome", &outcome),
        ("log", &logged),
    ] {
        assert!(
            !text.contains(AzureSim::CLIENT_SECRET),
            "the secret is in the {what}"
        );
        assert!(!text.contains(&seed_hex), "the seed is in the {what}");
    }
    // The records are those of the sample: both views of its 23 resources.
    let ids = run.node_ids();
    let count = |label: &str| ids.iter().filter(|(l, _)| l == label).count();
    assert_eq!((count("Resource"), count("OriginalResource")), (23, 23));
}

/// The same tenant synced into the Bolt server (ArcadeDB, started by `cargo xtask test`)
/// gives the embedded store's graph: both views with their three labels, every
/// relationship, and the seed imported into each store's state.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_synced_into_bolt_equals_the_embedded_store() {
    use infragraph_tests::conformance::Inspect;
    let w = Work::new("azure-bolt");
    let db = infragraph_tests::bolt::fresh_database("azure").await;
    let sim = AzureSim::start(AzureData::sample());
    let setup = Setup::new(&sim);
    ok(&setup.sync(&w));
    let mut cmd = w.cmd(&[
        "sync",
        "azure",
        "--neo4j",
        &db.uri,
        "--neo4j-user",
        &db.user,
    ]);
    cmd.args(["--neo4j-database", &db.database])
        .env("NEO4J_PASSWORD", &db.password)
        .env("AZURE_TENANT_ID", sim.tenant_id())
        .env("AZURE_CLIENT_ID", AzureSim::CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET)
        .env("AZURE_AUTHORITY_HOST", sim.url())
        .env("AZURE_RESOURCE_MANAGER_URL", sim.url())
        .env("AZURE_GRAPH_URL", sim.url())
        .env("AZURE_ABSTRACTION_SEED", SEED);
    ok(&run(&mut cmd));
    let server = infragraph_sink_neo4j::Neo4jSink::connect(&db)
        .await
        .expect("connect")
        .graph()
        .await;
    let local = w.graph();
    assert_sample_graph(&server);
    assert_eq!(local.normalized().lines(), server.normalized().lines());
}

/// Regions and tags are shared by every tenant. Two tenants synced into one store both
/// assert them (and here, with the same estate, every resource too): a tenant resynced
/// without them takes only its own assertion off, so nothing the other tenant wrote goes;
/// once no tenant asserts them, they go.
#[test]
fn two_tenants_share_regions_and_tags_until_neither_asserts_them() {
    let w = Work::new("azure-tenants");
    let a = AzureSim::start(AzureData::sample());
    let mut other = AzureData::sample();
    other.tenant_id = "22222222-2222-4222-8222-222222222222".into();
    other.organization["id"] = json!(other.tenant_id);
    let b = AzureSim::start(other);
    let shared = |g: &Graph| -> BTreeSet<Key> {
        g.nodes
            .keys()
            .filter(|(label, _)| label == "Region" || label == "Tag")
            .cloned()
            .collect()
    };

    ok(&Setup::new(&a).sync(&w));
    let only_a = w.graph();
    assert!(
        !shared(&only_a).is_empty(),
        "the sample has regions and tags"
    );
    ok(&Setup::new(&b).sync(&w));

    // Tenant b's estate is gone: its resync asserts no region, tag or resource any more.
    b.update(|d| d.resources.clear());
    ok(&Setup::new(&b).sync(&w));
    let g = w.graph();
    assert_eq!(shared(&g), shared(&only_a), "tenant a still asserts them");
    let missing: Vec<_> = node_keys(&only_a)
        .difference(&node_keys(&g))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "tenant a's nodes deleted by b's cleanup: {missing:?}"
    );
    let missing: Vec<_> = edge_keys(&only_a)
        .difference(&edge_keys(&g))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "tenant a's edges deleted by b's cleanup: {missing:?}"
    );

    // Now neither does.
    a.update(|d| d.resources.clear());
    ok(&Setup::new(&a).sync(&w));
    assert!(shared(&w.graph()).is_empty(), "{:?}", shared(&w.graph()));
}

/// Microsoft's example tenant (`tests/fixtures/azure/`, [`AzureData::examples`]) synced
/// with one item per page, so every ARM listing follows `nextLink` and every Graph listing
/// `@odata.nextLink`. The work folder and the simulator live as long as the test needs.
fn sync_examples(name: &str) -> (Work, AzureSim, Graph, Ran) {
    let w = Work::new(name);
    let sim = AzureSim::start(AzureData::examples());
    sim.set_page_size(1);
    let ran = Setup::new(&sim).sync(&w);
    ok(&ran);
    let log = sim.request_log();
    for listing in [
        "/providers/microsoft.network/privateendpoints?",
        "/v1.0/users?",
    ] {
        assert!(
            log.iter()
                .any(|l| l.to_ascii_lowercase().contains(listing) && l.contains("$skiptoken=")),
            "{listing} was not paged: {log:#?}"
        );
    }
    let g = w.graph();
    (w, sim, g, ran)
}

fn summary(w: &Work) -> String {
    w.report()["summary"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Issue 15, item 8: `PrivateEndpointListAll` has an endpoint (`pe2`) whose only
/// connection is under `manualPrivateLinkServiceConnections`, pending approval.
#[test]
fn a_private_endpoint_awaiting_manual_approval_keeps_its_target_and_state() {
    let (_w, _sim, g, _) = sync_examples("azure-examples-pe");
    let services: BTreeSet<String> = ex::items("arm/PrivateLinkServiceListAll.json")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_ascii_lowercase())
        .collect();
    let lists = [
        "privateLinkServiceConnections",
        "manualPrivateLinkServiceConnections",
    ];
    let (mut manual, mut linked) = (0, 0);
    for pe in ex::items("arm/PrivateEndpointListAll.json") {
        let id = pe["id"].as_str().unwrap().to_ascii_lowercase();
        let props = &pe["properties"];
        if props[lists[1]].as_array().is_some_and(|m| !m.is_empty()) {
            manual += 1;
        }
        let connections: Vec<&Json> = lists
            .iter()
            .flat_map(|l| props[*l].as_array().into_iter().flatten())
            .collect();
        let state = &connections[0]["properties"]["privateLinkServiceConnectionState"]["status"];
        assert_eq!(
            &g.node("PrivateEndpoint", &id)["connection_state"],
            state,
            "{id}"
        );
        for c in connections {
            let target = c["properties"]["privateLinkServiceId"].as_str().unwrap();
            let views = [
                k("OriginalResource", &target.to_ascii_lowercase()),
                k(
                    "Resource",
                    &format!("res-{}", abstracted_hash(&seed_bytes(), target)),
                ),
            ];
            // A target no listing returned has no node for the edge to start from.
            let listed = services.contains(&target.to_ascii_lowercase());
            linked += usize::from(listed);
            for from in views {
                let edge = (
                    "CONNECTED_TO_PE".to_owned(),
                    from,
                    k("PrivateEndpoint", &id),
                );
                assert_eq!(g.edges.contains_key(&edge), listed, "{edge:?}");
            }
        }
    }
    assert_eq!(manual, 1, "the example's one endpoint awaiting approval");
    assert_eq!(linked, 2, "pe1 and pe2 connect to listed services");
    assert_eq!(
        g.node(
            "PrivateEndpoint",
            "/subscriptions/subid/resourcegroups/rg2/providers/microsoft.network/privateendpoints/pe2"
        )["connection_state"],
        "Pending"
    );
}

/// Issue 15, item 9: the assignments of `RoleAssignments_ListForResourceGroup` name their
/// definition as `/providers/Microsoft.Authorization/roleDefinitions/{guid}`; the
/// definition is listed under the subscription. `HAS_ROLE` and `role_name` follow the GUID.
#[test]
fn role_assignments_naming_the_tenant_level_definition_find_it_by_guid() {
    let (w, _sim, g, _) = sync_examples("azure-examples-roles");
    let data = AzureData::examples();
    let mut checked = 0;
    for (sub, assignments) in &data.role_assignments {
        for a in assignments {
            let p = &a["properties"];
            let named = p["roleDefinitionId"].as_str().unwrap();
            assert!(named.starts_with("/providers/"), "{named}");
            let guid = named.rsplit('/').next().unwrap();
            let definition = data.role_definitions[sub]
                .iter()
                .find(|d| d["name"] == guid)
                .expect("the example's role is listed under its subscription");
            let def_id = definition["id"].as_str().unwrap().to_ascii_lowercase();
            let role_name = &definition["properties"]["roleName"];
            let principal = p["principalId"].as_str().unwrap();
            assert_eq!(p["principalType"], "User");
            let user = k("User", principal);
            assert!(
                g.edges.contains_key(&(
                    "HAS_ROLE".to_owned(),
                    user.clone(),
                    k("RoleDefinition", &def_id)
                )),
                "no HAS_ROLE from {principal} to {def_id}"
            );
            let ra = g.node(
                "RoleAssignment",
                &a["id"].as_str().unwrap().to_ascii_lowercase(),
            );
            assert_eq!(ra["role_definition_id"], named.to_ascii_lowercase());
            let scope = p["scope"].as_str().unwrap();
            if scope.eq_ignore_ascii_case(&format!("/subscriptions/{sub}")) {
                let edge = &g.edges[&(
                    "ASSIGNED_ROLE".to_owned(),
                    user.clone(),
                    k("Subscription", sub),
                )];
                assert_eq!(&edge["role_name"], role_name);
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked, 1,
        "one example assignment is at subscription scope"
    );
    assert_eq!(g.count("RoleDefinition"), 2);
    assert!(!summary(&w).contains("role definition"), "{}", summary(&w));
}

/// The same assignments when their subscription lists no definition of that GUID: no
/// `HAS_ROLE` to an id no node has, and the count said in a warning and the summary.
#[test]
fn role_assignments_whose_definition_no_subscription_lists_are_counted() {
    let w = Work::new("azure-examples-roles-unlisted");
    let mut data = AzureData::examples();
    data.role_definitions.remove(ex::SUB_RBAC);
    let n = data.role_assignments[ex::SUB_RBAC].len();
    let sim = AzureSim::start(data);
    let ran = Setup::new(&sim).sync(&w);
    ok(&ran);
    let g = w.graph();
    assert_eq!(g.edges_of("ASSIGNED_TO"), n);
    assert_eq!(g.edges_of("HAS_ROLE"), 0);
    let said = format!("{n} role assignments name a role definition no subscription listed");
    assert!(summary(&w).contains(&said), "{}", summary(&w));
    assert!(ran.stderr.contains(&said), "{}", ran.stderr);
}

/// Issue 15, item 10: `group-list-members` answers members as `{"id": …}` without
/// `@odata.type`. A member whose id is a listed user, group or service principal gets its
/// `MEMBER_OF`; one that is none of them (`id-value` of the 2015 page) is counted.
#[test]
fn group_members_without_odata_type_are_placed_by_id_and_the_rest_counted() {
    let (w, _sim, g, ran) = sync_examples("azure-examples-members");
    let data = AzureData::examples();
    let kind = |id: &str| -> Option<&str> {
        let has = |list: &[Json]| list.iter().any(|o| o["id"] == id);
        [
            ("User", &data.users),
            ("Group", &data.groups),
            ("ServicePrincipal", &data.service_principals),
        ]
        .into_iter()
        .find(|(_, list)| has(list))
        .map(|(label, _)| label)
    };
    let (mut placed, mut unknown) = (BTreeSet::new(), 0);
    for (group, members) in &data.members {
        for m in members {
            assert!(m.get("@odata.type").is_none(), "{m}");
            let id = m["id"].as_str().unwrap();
            match kind(id) {
                Some(label) => {
                    placed.insert(("MEMBER_OF".to_owned(), k(label, id), k("Group", group)));
                }
                None => unknown += 1,
            }
        }
    }
    assert_eq!((placed.len(), unknown), (1, 1));
    let member_of: BTreeSet<Edge> = edge_keys(&g)
        .into_iter()
        .filter(|e| e.0 == "MEMBER_OF")
        .collect();
    assert_eq!(member_of, placed);
    let said = format!("{unknown} group or unit members have no @odata.type");
    assert!(summary(&w).contains(&said), "{}", summary(&w));
    assert!(ran.stderr.contains(&said), "{}", ran.stderr);
}

/// The rest of the example tenant: every object a served example lists is in the graph,
/// under the key and with the properties the seed schema gives it, and the unit members
/// that are devices are counted, not dropped in silence.
#[test]
fn every_object_of_microsofts_examples_is_in_the_graph() {
    let (w, _sim, g, _) = sync_examples("azure-examples-all");
    let data = AzureData::examples();
    let org = &data.organization;
    let tenant = g.node("Tenant", ex::TENANT);
    assert_eq!(tenant["name"], org["displayName"]);
    let domain = org["verifiedDomains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["isDefault"] == true)
        .unwrap();
    assert_eq!(tenant["domain"], domain["name"]);
    for s in &data.subscriptions {
        let id = s["subscriptionId"].as_str().unwrap().to_ascii_lowercase();
        assert_eq!(g.node("Subscription", &id)["name"], s["displayName"]);
        let contains = (
            "CONTAINS".to_owned(),
            k("Tenant", ex::TENANT),
            k("Subscription", &id),
        );
        assert!(g.edges.contains_key(&contains), "{contains:?}");
    }
    // Resources, and the subnets their virtual networks embed.
    let listed: Vec<&Json> = data.resources.values().flatten().collect();
    let subnets: Vec<Json> = listed
        .iter()
        .flat_map(|r| r["properties"]["subnets"].as_array().cloned())
        .flatten()
        .collect();
    let arm: Vec<&Json> = listed.into_iter().chain(&subnets).collect();
    assert!(!subnets.is_empty());
    for r in &arm {
        let id = r["id"].as_str().unwrap();
        let node = g.node("OriginalResource", &id.to_ascii_lowercase());
        assert_eq!((&node["arm_id"], &node["name"]), (&json!(id), &r["name"]));
    }
    assert_eq!(g.count("OriginalResource"), arm.len());
    for (label, list) in [
        ("User", &data.users),
        ("Group", &data.groups),
        ("ServicePrincipal", &data.service_principals),
        ("AdminUnit", &data.admin_units),
    ] {
        for o in list {
            g.node(label, o["id"].as_str().unwrap());
        }
        assert_eq!(g.count(label), list.len(), "{label}");
    }
    let sp = &data.service_principals[0];
    assert_eq!(
        g.node("ServicePrincipal", sp["id"].as_str().unwrap())["app_id"],
        sp["appId"]
    );
    // The facets: a user-assigned identity's ManagedIdentity, a private zone's DNSZone.
    let (mut identities, mut zones) = (0, 0);
    for r in &arm {
        let p = &r["properties"];
        match r["type"].as_str().unwrap_or_default() {
            "Microsoft.ManagedIdentity/userAssignedIdentities" => {
                let mi = g.node("ManagedIdentity", p["principalId"].as_str().unwrap());
                assert_eq!(mi["client_id"], p["clientId"]);
                assert_eq!(
                    mi["resource_id"],
                    json!(r["id"].as_str().unwrap().to_ascii_lowercase())
                );
                identities += 1;
            }
            ty @ ("Microsoft.Network/privateDnsZones" | "Microsoft.Network/dnsZones") => {
                let id = r["id"].as_str().unwrap().to_ascii_lowercase();
                let zone = g.node("DNSZone", &id);
                let kind = if ty.ends_with("privateDnsZones") {
                    "Private"
                } else {
                    "Public"
                };
                assert_eq!(
                    (&zone["type"], &zone["record_count"]),
                    (&json!(kind), &p["numberOfRecordSets"])
                );
                zones += 1;
            }
            _ => {}
        }
    }
    assert_eq!((identities, zones), (1, 4));
    let devices = data
        .unit_members
        .values()
        .flatten()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.device")
        .count();
    assert_eq!(devices, 2);
    assert!(
        !g.edges
            .keys()
            .any(|e| e.0 == "MEMBER_OF" && e.2.0 == "AdminUnit")
    );
    let said = format!("{devices} group or unit members are devices or contacts");
    assert!(summary(&w).contains(&said), "{}", summary(&w));
}
