//! The Scaleway plugin end to end (issue 5): the `infragraph` binary syncing the Scaleway
//! simulator into a fresh store, the graph read back through `export`.

use std::collections::{BTreeMap, BTreeSet};

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::graph::{Graph, Key};
use infragraph_tests::sim::{ScalewayData, ScalewaySim, ZONES};
use serde_json::{Map, Value as Json, json};

/// Runs `infragraph sync scaleway` against the simulator.
trait Scaleway {
    fn sync(&self, sim: &ScalewaySim, extra: &[&str]) -> Ran;
    fn sync_with_key(&self, sim: &ScalewaySim, key: &str, extra: &[&str]) -> Ran;
    fn sync_at(&self, url: &str, org: &str, key: &str, extra: &[&str]) -> Ran;
}

impl Scaleway for Work {
    /// `infragraph sync scaleway` against `sim`, as a user would set it up, with the run
    /// report written to `report.json`.
    fn sync(&self, sim: &ScalewaySim, extra: &[&str]) -> Ran {
        self.sync_with_key(sim, ScalewaySim::SECRET_KEY, extra)
    }

    fn sync_with_key(&self, sim: &ScalewaySim, key: &str, extra: &[&str]) -> Ran {
        self.sync_at(&sim.url(), &sim.organization_id(), key, extra)
    }

    /// The same against any endpoint and organization.
    fn sync_at(&self, url: &str, org: &str, key: &str, extra: &[&str]) -> Ran {
        let store = self.store();
        let mut args = vec![
            "sync",
            "scaleway",
            "--store",
            &store,
            "--report",
            "report.json",
        ];
        args.extend(extra);
        let mut cmd = self.cmd(&args);
        cmd.env("SCW_API_URL", url)
            .env("SCW_SECRET_KEY", key)
            .env("SCW_DEFAULT_ORGANIZATION_ID", org);
        run(&mut cmd)
    }
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

// Ids of the sample (`tests/fixtures/scaleway/`). The sample's default project has the
// Organization's id, as a Scaleway default project does; the labels tell them apart.
const ORG: &str = "0681c477-fbb9-4820-b8d6-0eef10cfcd6d";
const PROJECT: &str = ORG;
const MARGE: &str = "998cbe72-913f-4f55-8620-4b0f7655d343";
const HOMER: &str = "b49932b2-2faa-4c56-905e-ffac52f063dc";
const ADMINS: &str = "1f767996-f6f6-4b0e-a7b1-6a255e809ed6";
const MAIL_SENDER: &str = "98300a5a-438e-45dc-8b34-07b1adc7c409";
const TERRAFORM: &str = "c92d472f-f916-4071-b076-c8907c83e016";
const SERVER: &str = "345627e9-18ff-47e0-b73d-3f38fddb4390";
const VOLUME: &str = "7c37b328-247c-4668-8ee1-701a3a3cc2e4";
const SNAPSHOT: &str = "7c689d68-94a7-4498-9a87-d83077859519";
const PUBLIC_IP: &str = "7b37f45d-9871-4ae6-bd5a-a926102fb5c9";
const SPARE_IP: &str = "d1b7e0c4-5a2f-4c3e-9b8d-6f1a2e3c4d5b";
// The sample's policies (`SAMPLE_POLICIES` in `tests/src/sim/scaleway.rs`).
const ADMINS_POLICY: &str = "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e01";
const HOMER_POLICY: &str = "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e02";
const MAIL_POLICY: &str = "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e03";
const KEYS_POLICY: &str = "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e04";

fn props(v: Json) -> Map<String, Json> {
    v.as_object().expect("an object").clone()
}

/// Nodes by (label, id), with their properties.
type Nodes = BTreeMap<Key, Map<String, Json>>;
/// Relationships as (type, start, end).
type Edges = BTreeSet<(String, Key, Key)>;

/// The graph a sync of [`ScalewayData::sample`] must write, written out from
/// `docs/providers/scaleway.md` and the sample responses: every node with exactly the
/// schema's properties the sample sets (a `null` in the API writes nothing), and every
/// relationship.
fn expected_sample_graph() -> (Nodes, Edges) {
    let user = |id: &str, email: &str, first: &str, kind: &str, root: &str| {
        let v = json!({
            "id": id, "email": email, "username": email, "first_name": first,
            "last_name": "Simpson", "phone_number": "", "locale": "en_US",
            "created_at": "2025-03-20T07:39:54.526837Z",
            "updated_at": "2025-06-20T09:19:54.496281Z", "deletable": false,
            "last_login_at": "2025-06-20T09:19:54.502555Z", "type": kind,
            "status": "activated", "mfa": true, "account_root_user_id": root, "tags": [],
            "locked": false
        });
        ("ScalewayUser", props(v))
    };
    let app = |id: &str, name: &str, description: &str, at: &str| {
        let v = json!({
            "id": id, "name": name, "description": description, "created_at": at,
            "updated_at": at, "editable": true, "deletable": true, "managed": false,
            "tags": []
        });
        ("ScalewayApplication", props(v))
    };
    let policy = |id: &str, name: &str, description: &str, at: (&str, &str), n: [u32; 3]| {
        let v = json!({
            "id": id, "name": name, "description": description, "created_at": at.0,
            "updated_at": at.1, "editable": true, "deletable": true, "managed": false,
            "nb_rules": n[0], "nb_scopes": n[1], "nb_permission_sets": n[2],
            "tags": if id == ADMINS_POLICY { json!(["compute"]) } else { json!([]) },
            "no_principal": id == KEYS_POLICY
        });
        ("ScalewayPolicy", props(v))
    };
    let nodes = [
        ("ScalewayOrganization", props(json!({ "id": ORG }))),
        policy(
            ADMINS_POLICY,
            "Administrators - compute",
            "Instances and their volumes in the default project",
            ("2025-03-20T11:20:04.120711Z", "2025-03-21T08:02:17.503116Z"),
            [3, 2, 3],
        ),
        policy(
            HOMER_POLICY,
            "Homer - read only",
            "Read access to every product, from Terraform only",
            ("2025-03-22T09:14:51.880102Z", "2025-03-22T09:14:51.880102Z"),
            [1, 1, 1],
        ),
        policy(
            MAIL_POLICY,
            "Mail Sender - email",
            "",
            ("2025-03-23T20:52:21.110254Z", "2025-03-23T20:52:21.110254Z"),
            [1, 1, 1],
        ),
        policy(
            KEYS_POLICY,
            "Project - default (0681c477)",
            "Default policy for API keys on project default (0681c477)",
            ("2025-03-20T07:39:54.820311Z", "2025-03-20T07:39:54.820311Z"),
            [1, 1, 1],
        ),
        (
            "ScalewayProject",
            props(json!({
                "id": PROJECT, "name": "default", "description": "",
                "created_at": "2025-03-20T07:39:54.220004Z",
                "updated_at": "2025-03-20T07:39:54.220004Z"
            })),
        ),
        user(
            MARGE,
            "mbsimpson@simpson.corp",
            "Marge",
            "owner",
            "db2c157f-0ae0-4f9c-aa24-bcccba549e52",
        ),
        user(
            HOMER,
            "hjsimpson@simpson.corp",
            "Homer",
            "member",
            "2ee21608-b892-46c5-9acc-ee20a30ea7fe",
        ),
        (
            "ScalewayGroup",
            props(json!({
                "id": ADMINS, "name": "Administrators", "description": "built-in admin group",
                "tags": [], "editable": true, "deletable": true, "managed": false,
                "created_at": "2025-03-20T11:13:35.109782Z",
                "updated_at": "2025-03-20T11:13:35.109782Z"
            })),
        ),
        app(
            MAIL_SENDER,
            "Mail Sender",
            "System account for sending emails",
            "2025-03-23T20:52:20.849566Z",
        ),
        app(
            TERRAFORM,
            "Terraform",
            "System account for Terraform",
            "2025-03-24T09:21:55.542948Z",
        ),
        (
            "ScalewayApiKey",
            // `expires_at` is null: the key never expires.
            props(json!({
                "id": "SCWXXX", "description": "terraform", "default_project_id": PROJECT,
                "editable": true, "deletable": true, "managed": false,
                "creation_ip": "8.9.10.11", "created_at": "2025-03-20T10:58:00.784077Z",
                "updated_at": "2025-03-20T10:58:00.784077Z"
            })),
        ),
        (
            "ScalewayApiKey",
            props(json!({
                "id": "SCWYYY", "description": "", "default_project_id": PROJECT,
                "editable": true, "deletable": true, "managed": false,
                "creation_ip": "42.42.42.42", "created_at": "2025-03-23T20:52:21.008165Z",
                "updated_at": "2025-03-23T20:52:21.008165Z",
                "expires_at": "2026-03-23T20:52:20Z"
            })),
        ),
        (
            "ScalewayVolume",
            props(json!({
                "id": VOLUME, "name": "Ubuntu 24.04 Noble Numbat", "size": 20_000_000_000u64,
                "volume_type": "l_ssd", "tags": [], "state": "available", "zone": "fr-par-1",
                "creation_date": "2025-03-20T14:49:48.107731Z",
                "modification_date": "2025-03-20T14:49:48.107731Z"
            })),
        ),
        (
            "ScalewayVolumeSnapshot",
            props(json!({
                "id": SNAPSHOT, "name": "image-gateway_snap_0", "tags": [],
                "volume_type": "l_ssd", "size": 20_000_000_000u64, "state": "available",
                "zone": "fr-par-1", "creation_date": "2025-06-20T12:29:45.284101Z",
                "modification_date": "2025-06-20T12:30:29.573322Z"
            })),
        ),
        (
            "ScalewayInstance",
            // No IPv6, no private IP, `end_of_service` unknown: null in the sample.
            props(json!({
                "id": SERVER, "name": "demo-server", "tags": ["demo"],
                "commercial_type": "DEV1-S", "creation_date": "2025-03-20T14:49:48.107731Z",
                "dynamic_ip_required": false, "routed_ip_enabled": true,
                "enable_ipv6": false, "hostname": "demo-server",
                "mac_address": "de:00:00:9d:9a:7d",
                "modification_date": "2025-04-24T08:02:19.046852Z", "state": "running",
                "location_cluster_id": "32", "location_hypervisor_id": "804",
                "location_node_id": "2", "location_platform_id": "14", "boot_type": "local",
                "state_detail": "booted", "arch": "x86_64", "private_nics": [],
                "zone": "fr-par-1"
            })),
        ),
        (
            "ScalewayFlexibleIp",
            props(json!({
                "id": PUBLIC_IP, "address": "51.1.2.8", "tags": [], "type": "routed_ipv4",
                "state": "attached", "prefix": "51.1.2.8/32", "ipam_id": "",
                "zone": "fr-par-1"
            })),
        ),
        (
            "ScalewayFlexibleIp",
            props(json!({
                "id": SPARE_IP, "address": "51.15.200.17", "reverse": "mail.simpson.corp",
                "tags": ["mail"], "type": "routed_ipv4", "state": "detached",
                "prefix": "51.15.200.17/32",
                "ipam_id": "5f0e8c1a-3b7d-4e2f-a9c6-1d4b8e7f2a30", "zone": "nl-ams-1"
            })),
        ),
    ];
    let nodes = nodes
        .into_iter()
        .map(|(label, p)| {
            (
                (label.to_string(), p["id"].as_str().unwrap().to_string()),
                p,
            )
        })
        .collect();
    let k = |label: &str, id: &str| (label.to_string(), id.to_string());
    let org = k("ScalewayOrganization", ORG);
    let project = k("ScalewayProject", PROJECT);
    let edges = [
        ("RESOURCE", org.clone(), project.clone()),
        ("RESOURCE", org.clone(), k("ScalewayUser", MARGE)),
        ("RESOURCE", org.clone(), k("ScalewayUser", HOMER)),
        ("RESOURCE", org.clone(), k("ScalewayGroup", ADMINS)),
        (
            "RESOURCE",
            org.clone(),
            k("ScalewayApplication", MAIL_SENDER),
        ),
        ("RESOURCE", org.clone(), k("ScalewayApplication", TERRAFORM)),
        ("RESOURCE", org.clone(), k("ScalewayApiKey", "SCWXXX")),
        ("RESOURCE", org.clone(), k("ScalewayApiKey", "SCWYYY")),
        ("RESOURCE", org.clone(), k("ScalewayPolicy", ADMINS_POLICY)),
        ("RESOURCE", org.clone(), k("ScalewayPolicy", HOMER_POLICY)),
        ("RESOURCE", org.clone(), k("ScalewayPolicy", MAIL_POLICY)),
        ("RESOURCE", org.clone(), k("ScalewayPolicy", KEYS_POLICY)),
        (
            "APPLIES_TO",
            k("ScalewayPolicy", ADMINS_POLICY),
            k("ScalewayGroup", ADMINS),
        ),
        (
            "APPLIES_TO",
            k("ScalewayPolicy", HOMER_POLICY),
            k("ScalewayUser", HOMER),
        ),
        (
            "APPLIES_TO",
            k("ScalewayPolicy", MAIL_POLICY),
            k("ScalewayApplication", MAIL_SENDER),
        ),
        // The Administrators' rule with no permission set grants nothing on the
        // Organization: no edge. Homer's rule is on the whole Organization.
        (
            "GRANTS",
            k("ScalewayPolicy", ADMINS_POLICY),
            project.clone(),
        ),
        ("GRANTS", k("ScalewayPolicy", HOMER_POLICY), org),
        ("GRANTS", k("ScalewayPolicy", MAIL_POLICY), project.clone()),
        ("GRANTS", k("ScalewayPolicy", KEYS_POLICY), project.clone()),
        ("RESOURCE", project.clone(), k("ScalewayInstance", SERVER)),
        ("RESOURCE", project.clone(), k("ScalewayVolume", VOLUME)),
        (
            "RESOURCE",
            project.clone(),
            k("ScalewayVolumeSnapshot", SNAPSHOT),
        ),
        (
            "RESOURCE",
            project.clone(),
            k("ScalewayFlexibleIp", PUBLIC_IP),
        ),
        ("RESOURCE", project, k("ScalewayFlexibleIp", SPARE_IP)),
        (
            "MOUNTS",
            k("ScalewayInstance", SERVER),
            k("ScalewayVolume", VOLUME),
        ),
        (
            "IDENTIFIES",
            k("ScalewayFlexibleIp", PUBLIC_IP),
            k("ScalewayInstance", SERVER),
        ),
        (
            "HAS",
            k("ScalewayVolume", VOLUME),
            k("ScalewayVolumeSnapshot", SNAPSHOT),
        ),
        (
            "MEMBER_OF",
            k("ScalewayUser", MARGE),
            k("ScalewayGroup", ADMINS),
        ),
        (
            "MEMBER_OF",
            k("ScalewayApplication", TERRAFORM),
            k("ScalewayGroup", ADMINS),
        ),
        (
            "HAS",
            k("ScalewayUser", HOMER),
            k("ScalewayApiKey", "SCWYYY"),
        ),
        (
            "HAS",
            k("ScalewayApplication", TERRAFORM),
            k("ScalewayApiKey", "SCWXXX"),
        ),
    ];
    let edges = edges
        .into_iter()
        .map(|(r, a, b)| (r.to_string(), a, b))
        .collect();
    (nodes, edges)
}

/// The graph's nodes without the bookkeeping every record carries, which
/// [`the_sample_estate_syncs_to_the_hand_written_graph`] checks on its own.
fn without_bookkeeping(g: &Graph) -> Nodes {
    g.nodes
        .iter()
        .map(|(k, (_, p))| {
            let mut p = p.clone();
            for b in ["firstseen", "lastupdated", "_source", "_scope"] {
                p.remove(b);
            }
            (k.clone(), p)
        })
        .collect()
}

/// Each key on a line of its own, so a failed comparison reads as a diff.
fn lines<K: std::fmt::Debug, V: std::fmt::Debug>(m: impl IntoIterator<Item = (K, V)>) -> String {
    m.into_iter()
        .map(|(k, v)| format!("{k:?} {v:?}\n"))
        .collect()
}

#[test]
fn the_sample_estate_syncs_to_the_hand_written_graph() {
    let w = Work::new("sample");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let ran = w.sync(&sim, &[]);
    ok(&ran);
    let g = w.graph();
    let (nodes, edges) = expected_sample_graph();
    assert_eq!(lines(without_bookkeeping(&g)), lines(nodes));
    let got_edges: BTreeSet<_> = g.edges.keys().cloned().collect();
    assert_eq!(
        lines(got_edges.iter().map(|e| (e, ()))),
        lines(edges.iter().map(|e| (e, ())))
    );
    for ((label, id), (labels, p)) in &g.nodes {
        assert_eq!(
            labels,
            std::slice::from_ref(label),
            "{label} {id}: no extra labels"
        );
        assert_eq!(
            (&p["_source"], &p["_scope"]),
            (&json!("scaleway"), &json!(ORG))
        );
    }
    let report = w.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["scope"]["label"], "ScalewayOrganization");
    assert_eq!(report["edges"]["RESOURCE"]["unresolved"], 0);
}

/// A policy's rules become one `GRANTS` edge per scope, their permission sets merged;
/// a rule with none grants nothing; the policy with no principal applies to nobody.
#[test]
fn policies_grant_their_rules_permission_sets_merged_per_scope() {
    let w = Work::new("policies");
    let sim = ScalewaySim::start(ScalewayData::sample());
    ok(&w.sync(&sim, &[]));
    let g = w.graph();
    let grant = |policy: &str, label: &str, scope: &str| {
        let key = (
            "GRANTS".to_string(),
            ("ScalewayPolicy".to_string(), policy.to_string()),
            (label.to_string(), scope.to_string()),
        );
        let p = g.edges.get(&key).unwrap_or_else(|| panic!("no {key:?}"));
        (
            p["permission_set_names"].clone(),
            p["rule_ids"].clone(),
            p["conditions"].clone(),
        )
    };
    // Two rules on the project: one edge, the union of their sets, sorted.
    assert_eq!(
        grant(ADMINS_POLICY, "ScalewayProject", PROJECT),
        (
            json!(["BlockStorageFullAccess", "InstancesFullAccess"]),
            json!([
                "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a01",
                "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a02"
            ]),
            json!([])
        )
    );
    assert!(
        !g.edges
            .keys()
            .any(|(rel, (_, from), (label, _))| rel == "GRANTS"
                && from == ADMINS_POLICY
                && label == "ScalewayOrganization"),
        "the rule without permission sets makes no edge"
    );
    let (sets, _, conditions) = grant(HOMER_POLICY, "ScalewayOrganization", ORG);
    assert_eq!(sets, json!(["AllProductsReadOnly"]));
    assert_eq!(conditions, json!(["request.user_agent == 'terraform'"]));
    let applies = edges_of(&g, "APPLIES_TO");
    assert!(!applies.iter().any(|(from, _)| from == KEYS_POLICY));
    assert_eq!(g.node("ScalewayPolicy", KEYS_POLICY)["no_principal"], true);
    assert_eq!(
        g.node("ScalewayPolicy", HOMER_POLICY)["no_principal"],
        false
    );
    let report = w.report();
    assert_eq!(report["edges"]["GRANTS"]["unresolved"], 0, "{report}");
    assert!(
        report["summary"].as_str().unwrap().contains("4 policies"),
        "{report}"
    );
    // One rules listing per policy, with the policy as its only filter.
    let rules: Vec<String> = sim
        .request_log()
        .into_iter()
        .filter(|l| l.contains("/iam/v1alpha1/rules"))
        .collect();
    assert_eq!(rules.len(), 4, "{rules:#?}");
    assert!(
        rules
            .iter()
            .all(|l| l.contains("page=1&page_size=100&policy_id=") && !l.contains("organization")),
        "{rules:#?}"
    );

    // A policy whose rules cannot be read keeps its grants from the last sync, and the
    // run says which listing failed.
    sim.fail_path("/iam/v1alpha1/rules", 403);
    let ran = w.sync(&sim, &[]);
    assert_eq!(ran.code, 1, "partial:\n{}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    let incomplete = &report["incomplete"][0];
    assert_eq!(incomplete["label"], "ScalewayPolicy", "{report}");
    assert!(
        incomplete
            .to_string()
            .contains("and 3 more policies' rules"),
        "{report}"
    );
    assert_eq!(edges_of(&w.graph(), "GRANTS"), edges_of(&g, "GRANTS"));
}

#[test]
fn listings_cross_page_boundaries_in_both_conventions() {
    let w = Work::new("pages");
    let mut data = ScalewayData::empty("5ca1e000-0000-4000-8000-000000000000");
    let project = data.add_project("big");
    // 101: one item past a full page; 250: two full pages and a half.
    data.add_instances(&project, "fr-par-2", 101);
    data.add_instances(&project, "pl-waw-3", 250);
    data.add_principals(250, 3, 101);
    let expected = data.clone();
    let sim = ScalewaySim::start(data);
    ok(&w.sync(&sim, &[]));
    let g = w.graph();
    let ids = |label: &str| -> BTreeSet<String> {
        g.nodes
            .keys()
            .filter(|(l, _)| l == label)
            .map(|(_, id)| id.clone())
            .collect()
    };
    let served = |items: &[infragraph_tests::sim::Item]| -> BTreeSet<String> {
        items.iter().map(|i| i.id.clone()).collect()
    };
    assert_eq!(ids("ScalewayInstance"), served(&expected.servers));
    // Instance and Block volumes alike; every attachment found its volume.
    let volumes: BTreeSet<String> = served(&expected.volumes)
        .union(&served(&expected.block_volumes))
        .cloned()
        .collect();
    assert_eq!(ids("ScalewayVolume"), volumes);
    assert_eq!(w.report()["edges"]["MOUNTS"]["unresolved"], 0);
    assert_eq!(ids("ScalewayFlexibleIp"), served(&expected.ips));
    assert_eq!(ids("ScalewayVolumeSnapshot"), served(&expected.snapshots));
    assert_eq!(ids("ScalewayUser"), served(&expected.users));
    assert_eq!(ids("ScalewayApplication"), served(&expected.applications));
    assert_eq!(ids("ScalewayApiKey"), served(&expected.api_keys));
    assert_eq!(g.nodes.len(), expected.resource_count());
    assert_eq!(g.count("ScalewayInstance"), 351);
    let log = sim.request_log();
    let asked = |needle: &str| log.iter().any(|l| l.contains(needle));
    assert!(
        asked("/zones/fr-par-2/servers?page=2&per_page=100&"),
        "{log:#?}"
    );
    assert!(
        asked("/zones/pl-waw-3/servers?page=3&per_page=100&"),
        "{log:#?}"
    );
    assert!(
        asked("/iam/v1alpha1/users?page=3&page_size=100&"),
        "{log:#?}"
    );
    assert!(
        asked("/iam/v1alpha1/applications?page=2&page_size=100&"),
        "{log:#?}"
    );
    assert!(
        !asked("/users?page=4&"),
        "nothing past what the total implies: {log:#?}"
    );
}

#[test]
fn every_zone_and_region_is_listed_and_regions_narrow_the_walk() {
    let w = Work::new("zones");
    let data = ScalewayData::generate(2, 27);
    let sim = ScalewaySim::start(data.clone());
    ok(&w.sync(&sim, &[]));
    let g = w.graph();
    let zones_of = |label: &str| -> BTreeSet<String> {
        g.nodes
            .iter()
            .filter(|((l, _), _)| l == label)
            .map(|(_, (_, p))| p["zone"].as_str().unwrap().to_string())
            .collect()
    };
    let all: BTreeSet<String> = ZONES.iter().map(|z| z.to_string()).collect();
    for label in ["ScalewayInstance", "ScalewayVolume", "ScalewayFlexibleIp"] {
        assert_eq!(zones_of(label), all, "{label}");
    }
    assert_eq!(g.nodes.len(), data.resource_count());

    // Only Amsterdam: the other regions' zones are not asked for at all.
    let w = Work::new("regions");
    let sim = ScalewaySim::start(data.clone());
    let config = w.config("[plugins.scaleway]\nregions = [\"nl-ams\"]\n");
    ok(&w.sync(&sim, &["--config", &config]));
    let zones_asked: BTreeSet<String> = sim
        .request_log()
        .iter()
        .filter_map(|l| {
            l.split("/zones/")
                .nth(1)?
                .split('/')
                .next()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        zones_asked,
        ["nl-ams-1", "nl-ams-2", "nl-ams-3"]
            .map(String::from)
            .into()
    );
    let in_ams = data
        .servers
        .iter()
        .filter(|s| s.zone.as_deref().unwrap().starts_with("nl-ams"));
    assert_eq!(w.graph().count("ScalewayInstance"), in_ams.count());
}

#[test]
fn throttling_and_a_burst_of_5xx_are_ridden_out() {
    let w = Work::new("throttle");
    let sim = ScalewaySim::start(ScalewayData::sample());
    sim.throttle_next(3, 1);
    sim.fail_next(5, 503);
    let ran = w.sync(&sim, &[]);
    ok(&ran);
    let report = w.report();
    assert_eq!(report["status"], "succeeded");
    assert!(
        report["http"]["retries"].as_u64().unwrap() >= 8,
        "{}",
        report["http"]
    );
    let (nodes, _) = expected_sample_graph();
    assert_eq!(lines(without_bookkeeping(&w.graph())), lines(nodes));
}

#[test]
fn a_forbidden_zone_keeps_its_labels_and_the_sync_is_partial() {
    let w = Work::new("forbidden");
    let sim = ScalewaySim::start(ScalewayData::sample());
    ok(&w.sync(&sim, &[]));
    sim.forbid_zone("nl-ams-1");
    sim.update(|d| {
        // Gone from a label the forbidden zone feeds: kept, since that label is
        // incomplete. Gone from a complete label: deleted.
        assert!(d.remove(PUBLIC_IP));
        assert!(d.remove(HOMER));
    });
    let ran = w.sync(&sim, &[]);
    assert_eq!(
        ran.code, 1,
        "partial exits 1:\n{}\n{}",
        ran.stdout, ran.stderr
    );
    assert!(ran.stdout.contains("partial"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("zone nl-ams-1") && ran.stdout.contains("403"),
        "{}",
        ran.stdout
    );
    let report = w.report();
    assert_eq!(report["status"], "partial");
    let incomplete: BTreeSet<&str> = report["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let reason = i["reason"].as_str().unwrap();
            assert!(
                reason.contains("nl-ams-1") && reason.contains("403"),
                "{reason}"
            );
            i["label"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        incomplete,
        [
            "ScalewayFlexibleIp",
            "ScalewayInstance",
            "ScalewayVolume",
            "ScalewayVolumeSnapshot"
        ]
        .into()
    );
    let g = w.graph();
    assert!(
        g.has("ScalewayFlexibleIp", SPARE_IP),
        "the forbidden zone's IP is kept"
    );
    assert!(
        g.has("ScalewayFlexibleIp", PUBLIC_IP),
        "its label is incomplete: kept"
    );
    assert!(
        g.has("ScalewayInstance", SERVER),
        "other zones still listed"
    );
    assert!(
        !g.has("ScalewayUser", HOMER),
        "complete labels are cleaned up"
    );

    sim.clear_zone_faults();
    ok(&w.sync(&sim, &[]));
    let g = w.graph();
    assert!(
        !g.has("ScalewayFlexibleIp", PUBLIC_IP),
        "a complete run cleans up"
    );
    assert!(g.has("ScalewayFlexibleIp", SPARE_IP));
}

#[test]
fn a_resource_deleted_in_scaleway_disappears_on_the_next_sync() {
    let w = Work::new("deleted");
    let sim = ScalewaySim::start(ScalewayData::sample());
    ok(&w.sync(&sim, &[]));
    assert!(w.graph().has("ScalewayInstance", SERVER));
    sim.update(|d| {
        assert!(d.remove(SERVER));
        // Once its server is gone the IP is detached.
        d.ips
            .iter_mut()
            .find(|i| i.id == PUBLIC_IP)
            .unwrap()
            .edit(|ip| {
                ip["server"] = Json::Null;
                ip["state"] = json!("detached");
            });
    });
    ok(&w.sync(&sim, &[]));
    let g = w.graph();
    assert!(!g.has("ScalewayInstance", SERVER));
    assert!(
        g.edges
            .keys()
            .all(|(_, a, b)| a.1 != SERVER && b.1 != SERVER),
        "nor any of its relationships"
    );
    assert_eq!(g.node("ScalewayFlexibleIp", PUBLIC_IP)["state"], "detached");
    assert!(
        g.has("ScalewayVolume", VOLUME),
        "its volume is still listed"
    );
    assert_eq!(w.report()["nodes"]["ScalewayInstance"]["deleted"], 1);
}

#[test]
fn a_wrong_key_fails_at_once_naming_the_variable() {
    let w = Work::new("badkey");
    let sim = ScalewaySim::start(ScalewayData::generate(1, 300));
    let ran = w.sync_with_key(&sim, "not-the-key", &[]);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("SCW_SECRET_KEY"), "{}", ran.stdout);
    assert!(ran.stdout.contains("401"), "{}", ran.stdout);
    // The first round of listings (6 global; 4 Instance and 2 Block in each of 10 zones)
    // and nothing after: no policy's rules either.
    assert_eq!(sim.total_requests(), 6 + 6 * 10);

    let mut cmd = w.cmd(&["sync", "scaleway", "--store", &w.store()]);
    cmd.env("SCW_API_URL", sim.url()).env("SCW_SECRET_KEY", "x");
    let ran = run(&mut cmd);
    // The plugin is refused before it runs, reported failed in the config phase.
    assert_eq!(ran.code, 2);
    assert!(
        ran.stdout.contains("scaleway: error: config: ")
            && ran.stdout.contains("SCW_DEFAULT_ORGANIZATION_ID"),
        "{}",
        ran.stdout
    );
}

#[test]
fn the_secret_key_appears_nowhere_but_in_requests() {
    let w = Work::new("secret");
    let sim = ScalewaySim::start(ScalewayData::sample());
    // A failing zone puts errors, with the failed URLs, into the log and the report.
    sim.forbid_zone("pl-waw-1");
    let store = w.store();
    let mut cmd = w.cmd(&[
        "-v",
        "sync",
        "scaleway",
        "--store",
        &store,
        "--report",
        "report.json",
    ]);
    cmd.env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", ORG)
        .env("INFRAGRAPH_LOG", "trace");
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("pl-waw-1"),
        "the log is verbose: {}",
        ran.stderr
    );
    let report = std::fs::read_to_string(w.0.join("report.json")).unwrap();
    let export = run(&mut w.cmd(&["export", "--format", "jsonl", "--store", &store]));
    let runs = run(&mut w.cmd(&["runs", "--json", "--store", &store]));
    for (what, text) in [
        ("stdout", &ran.stdout),
        ("log", &ran.stderr),
        ("report", &report),
        ("graph", &export.stdout),
        ("run history", &runs.stdout),
    ] {
        assert!(!text.is_empty(), "{what} is empty");
        assert!(
            !text.contains(ScalewaySim::SECRET_KEY),
            "the secret key is in the {what}"
        );
    }
    assert!(
        w.graph().has("ScalewayUser", MARGE),
        "the key did authenticate"
    );
}

#[test]
fn a_zone_still_failing_after_retries_is_reported_not_fatal() {
    let w = Work::new("zone5xx");
    let sim = ScalewaySim::start(ScalewayData::sample());
    sim.fail_zone("fr-par-3", 503);
    let ran = w.sync(&sim, &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    let reasons: Vec<&str> = report["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.len(),
        6,
        "one per Instance and Block listing of the zone: {reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("zone fr-par-3") && r.contains("503")),
        "{reasons:?}"
    );
    // One warning for the six, naming the first: the report lists each.
    let warned: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("incomplete"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", ran.stderr);
    assert!(
        warned[0].contains("zone fr-par-3") && warned[0].contains("and 5 more listings failed"),
        "{}",
        warned[0]
    );
    // The host retried each of the zone's six listings before the plugin gave up on it.
    assert!(
        report["http"]["retries"].as_u64().unwrap() >= 6,
        "{}",
        report["http"]
    );
    let (nodes, _) = expected_sample_graph();
    assert_eq!(
        lines(without_bookkeeping(&w.graph())),
        lines(nodes),
        "everything else"
    );
}

// Real recordings (`tests/fixtures/scaleway/recorded/`, see its README): trimmed go-vcr
// cassettes of scaleway/terraform-provider-scaleway. The expected graph below is read from
// their JSON, not from the plugin.
const SERVERS_PUBLIC_IPS: &str =
    include_str!("../../fixtures/scaleway/recorded/servers_public_ips.json");
const IPV6_ATTACHED: &str =
    include_str!("../../fixtures/scaleway/recorded/ip_routed_ipv6_attached.json");
const BLOCK_SNAPSHOTS: &str = include_str!("../../fixtures/scaleway/recorded/block_snapshots.json");
const BLOCK_EVERY_ZONE: &str =
    include_str!("../../fixtures/scaleway/recorded/block_volumes_every_zone.json");
const ACCOUNT_PROJECTS: &str =
    include_str!("../../fixtures/scaleway/recorded/account_projects.json");
const IAM_POLICIES: &str = include_str!("../../fixtures/scaleway/recorded/iam_policies.json");
const POLICY_PROJECT_ID: &str =
    include_str!("../../fixtures/scaleway/recorded/iam_policy_project_id.json");
const POLICY_BASIC: &str = include_str!("../../fixtures/scaleway/recorded/iam_policy_basic.json");
const POLICY_CONDITION: &str =
    include_str!("../../fixtures/scaleway/recorded/iam_policy_condition.json");
/// The Organization of the two Instance recordings and of the project listing (their
/// servers' `organization`, the projects' `organization_id`).
const RECORDED_ORG: &str = "105bdce1-64c0-48ab-899d-868455867ecf";
/// The Organization and project of the Block recordings (their `organization_id` query).
const BLOCK_ORG: &str = "4d333544-41be-4b0b-8907-0b9036859747";

/// The resources of recordings by kind (`projects`, `servers`, `ips`, `block_volumes`,
/// `block_snapshots`, `policies`, `rules`) and id, whether recorded in a listing or got
/// alone; each rule with its policy's id added as `policy_id`.
fn recorded(recordings: &[&str]) -> BTreeMap<&'static str, BTreeMap<String, Json>> {
    let mut out: BTreeMap<&'static str, BTreeMap<String, Json>> = BTreeMap::new();
    for text in recordings {
        let doc: Json = serde_json::from_str(text).unwrap();
        for i in doc["interactions"].as_array().unwrap() {
            let full = i["url"].as_str().unwrap();
            let (url, query) = full.split_once('?').unwrap_or((full, ""));
            let mut body: Json = serde_json::from_str(i["body"].as_str().unwrap()).unwrap();
            let block = url.contains("/block/v1/");
            if url.ends_with("/iam/v1alpha1/rules") {
                let policy = query.strip_prefix("policy_id=").expect("a policy's rules");
                for rule in body["rules"].as_array_mut().unwrap() {
                    rule["policy_id"] = json!(policy);
                }
            }
            let (kind, items) = if url.ends_with("/account/v3/projects") {
                ("projects", body["projects"].clone())
            } else if url.ends_with("/iam/v1alpha1/policies") {
                ("policies", body["policies"].clone())
            } else if url.contains("/iam/v1alpha1/policies/") {
                ("policies", json!([body]))
            } else if url.ends_with("/iam/v1alpha1/rules") {
                ("rules", body["rules"].clone())
            } else if url.ends_with("/servers") {
                ("servers", body["servers"].clone())
            } else if url.contains("/servers/") {
                ("servers", json!([body["server"]]))
            } else if url.contains("/ips/") {
                ("ips", json!([body["ip"]]))
            } else if block && url.ends_with("/volumes") {
                ("block_volumes", body["volumes"].clone())
            } else if block && url.contains("/volumes/") {
                ("block_volumes", json!([body]))
            } else if block && url.ends_with("/snapshots") {
                ("block_snapshots", body["snapshots"].clone())
            } else {
                panic!("no kind for {url}")
            };
            for item in items.as_array().unwrap() {
                let id = item["id"].as_str().unwrap().to_owned();
                out.entry(kind).or_default().insert(id, item.clone());
            }
        }
    }
    out
}

fn id(v: &Json) -> String {
    v.as_str().expect("an id").to_owned()
}

/// The edges of type `rel` in the graph, as (from id, to id).
fn edges_of(g: &Graph, rel: &str) -> BTreeSet<(String, String)> {
    g.edges
        .keys()
        .filter(|(r, _, _)| r == rel)
        .map(|(_, (_, from), (_, to))| (from.clone(), to.clone()))
        .collect()
}

#[test]
fn recorded_sbs_servers_mount_their_block_volumes_and_routed_ips_identify_them() {
    let w = Work::new("recorded-instance");
    let recordings = [SERVERS_PUBLIC_IPS, IPV6_ATTACHED, ACCOUNT_PROJECTS];
    let sim = ScalewaySim::start(ScalewayData::recorded(RECORDED_ORG, &recordings));
    let ran = w.sync(&sim, &[]);
    let g = w.graph();
    let rec = recorded(&recordings);

    // Item 5: every Block volume a node, every attachment (all `sbs_volume`) an edge.
    let mut mounts = BTreeSet::new();
    for (sid, server) in &rec["servers"] {
        assert!(g.has("ScalewayInstance", sid), "{sid}");
        for v in server["volumes"].as_object().unwrap().values() {
            assert_eq!(v["volume_type"], "sbs_volume");
            mounts.insert((sid.clone(), id(&v["id"])));
        }
    }
    assert_eq!(mounts.len(), 3);
    assert_eq!(edges_of(&g, "MOUNTS"), mounts);
    for (vid, v) in &rec["block_volumes"] {
        let n = g.node("ScalewayVolume", vid);
        assert_eq!(n["volume_type"], "sbs_volume", "{vid}");
        assert_eq!((&n["name"], &n["size"]), (&v["name"], &v["size"]));
        assert_eq!((&n["state"], &n["zone"]), (&v["status"], &v["zone"]));
        assert_eq!(n["creation_date"], v["created_at"]);
    }

    // Item 7: an IP identifies its server from the server's `public_ips` (IPv6 included)
    // and from the IP's own `server`; an IP whose `address` is null keeps its prefix.
    let mut identifies = BTreeSet::new();
    for (sid, server) in &rec["servers"] {
        for ip in server["public_ips"].as_array().unwrap() {
            identifies.insert((id(&ip["id"]), sid.clone()));
        }
    }
    let families: BTreeSet<&str> = rec["servers"]
        .values()
        .flat_map(|s| s["public_ips"].as_array().unwrap())
        .map(|ip| ip["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["inet", "inet6"].into());
    for (ipid, ip) in &rec["ips"] {
        identifies.insert((ipid.clone(), id(&ip["server"]["id"])));
        let n = g.node("ScalewayFlexibleIp", ipid);
        // IPv4 comes with an address and a null prefix, IPv6 the other way round; a null
        // in the API writes nothing.
        for k in ["address", "prefix", "type", "state"] {
            let recorded = Some(&ip[k]).filter(|v| !v.is_null());
            assert_eq!(n.get(k), recorded, "{ipid} {k}");
        }
    }
    assert!(
        rec["ips"].values().any(|ip| ip["address"].is_null()),
        "the recordings hold a routed IPv6 without address"
    );
    assert_eq!(identifies.len(), 3);
    assert_eq!(edges_of(&g, "IDENTIFIES"), identifies);

    let report = w.report();
    for rel in ["MOUNTS", "IDENTIFIES"] {
        assert_eq!(report["edges"][rel]["unresolved"], 0, "{rel}: {report}");
    }
    // A resource's project is linked when the project listing holds it. The project the
    // public-IPs test created (and deleted) is not in the listing, recorded another day:
    // the plugin names it rather than leaving the host to drop those edges unexplained.
    let projects = &rec["projects"];
    let mut linked = BTreeSet::new();
    let mut missing = BTreeSet::new();
    let held = rec["servers"]
        .values()
        .chain(rec["ips"].values())
        .map(|r| id(&r["project"]))
        .chain(rec["block_volumes"].values().map(|v| id(&v["project_id"])));
    let resources = rec["servers"]
        .keys()
        .chain(rec["ips"].keys())
        .chain(rec["block_volumes"].keys());
    for (project, resource) in held.zip(resources) {
        if projects.contains_key(&project) {
            linked.insert((project, resource.clone()));
        } else {
            missing.insert(project);
        }
    }
    assert!(!linked.is_empty() && !missing.is_empty());
    // The default project has the Organization's id: tell them apart by label.
    let resource_edges: BTreeSet<(String, String)> = g
        .edges
        .keys()
        .filter(|(rel, (from, _), _)| rel == "RESOURCE" && from == "ScalewayProject")
        .map(|(_, (_, from), (_, to))| (from.clone(), to.clone()))
        .collect();
    assert_eq!(resource_edges, linked);
    assert_eq!(g.count("ScalewayProject"), projects.len());
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "{} ScalewayProject named by RESOURCE in no listing",
            missing.len()
        )),
        "{summary}\n{}",
        ran.stdout
    );
    let log = format!("{}{}", ran.stdout, ran.stderr);
    for project in &missing {
        assert!(log.contains(project.as_str()), "{project}: {log}");
    }
}

/// The recording Organization's real policies (both pages of its listing, and three
/// policies got alone) and the rules recorded for five of them: every policy a node,
/// each principal named (the recordings hold no group or application listing, so every
/// `APPLIES_TO` end is unlinked and said so), and each rule's scope granted.
#[test]
fn recorded_policies_apply_to_their_principals_and_their_rules_grant_on_their_scopes() {
    let w = Work::new("recorded-policies");
    let recordings = [
        ACCOUNT_PROJECTS,
        IAM_POLICIES,
        POLICY_PROJECT_ID,
        POLICY_BASIC,
        POLICY_CONDITION,
    ];
    let sim = ScalewaySim::start(ScalewayData::recorded(RECORDED_ORG, &recordings));
    let ran = w.sync(&sim, &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let g = w.graph();
    let rec = recorded(&recordings);

    let policies: BTreeSet<String> = rec["policies"].keys().cloned().collect();
    assert_eq!(policies.len(), 25 + 3);
    let got: BTreeSet<String> = g
        .nodes
        .keys()
        .filter(|(l, _)| l == "ScalewayPolicy")
        .map(|(_, i)| i.clone())
        .collect();
    assert_eq!(got, policies);
    for (pid, p) in &rec["policies"] {
        let n = g.node("ScalewayPolicy", pid);
        for k in ["name", "managed", "nb_rules", "tags"] {
            assert_eq!(n[k], p[k], "{pid} {k}");
        }
        assert_eq!(
            n["no_principal"],
            p["no_principal"].as_bool().unwrap_or(false)
        );
    }

    // Who each policy applies to, by label, from the recorded fields.
    let mut principals: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut applies = 0;
    for p in rec["policies"].values() {
        for (field, label) in [
            ("user_id", "ScalewayUser"),
            ("group_id", "ScalewayGroup"),
            ("application_id", "ScalewayApplication"),
        ] {
            if let Some(id) = p[field].as_str() {
                principals.entry(label).or_default().insert(id.to_owned());
                applies += 1;
            }
        }
    }
    assert_eq!(
        principals.keys().copied().collect::<Vec<_>>(),
        ["ScalewayApplication", "ScalewayGroup"]
    );
    let report = w.report();
    assert_eq!(
        report["edges"]["APPLIES_TO"]["unresolved"], applies,
        "{report}"
    );
    let summary = report["summary"].as_str().unwrap();
    let log = format!("{}{}", ran.stdout, ran.stderr);
    for (label, ids) in &principals {
        assert!(
            summary.contains(&format!(
                "{} {label} named by APPLIES_TO in no listing",
                ids.len()
            )),
            "{summary}"
        );
        let shown = ids.iter().take(5);
        for id in shown {
            assert!(log.contains(id.as_str()), "{id}: {log}");
        }
    }

    // GRANTS: per (policy, scope), the union of the recorded rules' permission sets.
    let mut grants: BTreeMap<(String, (String, String)), BTreeSet<String>> = BTreeMap::new();
    for rule in rec["rules"].values() {
        let policy = id(&rule["policy_id"]);
        let scopes: Vec<(String, String)> = match rule["project_ids"].as_array() {
            Some(projects) => projects
                .iter()
                .map(|p| ("ScalewayProject".to_owned(), id(p)))
                .collect(),
            None => vec![(
                "ScalewayOrganization".to_owned(),
                id(&rule["organization_id"]),
            )],
        };
        for scope in scopes {
            let sets = rule["permission_set_names"].as_array().unwrap();
            grants
                .entry((policy.clone(), scope))
                .or_default()
                .extend(sets.iter().map(id));
        }
    }
    // The project-id and condition recordings grant on the default project; the basic
    // one, two rules on the Organization, on the Organization with both sets.
    let on_project: Vec<&String> = grants
        .keys()
        .filter(|(_, (label, _))| label == "ScalewayProject")
        .map(|(p, _)| p)
        .collect();
    assert_eq!(on_project.len(), 2);
    let basic = "aa686c31-13f9-4b02-acc1-d0d2e3d436f5";
    let org_scope = ("ScalewayOrganization".to_owned(), RECORDED_ORG.to_owned());
    assert_eq!(grants[&(basic.to_owned(), org_scope)].len(), 2);
    let got: BTreeMap<(String, (String, String)), BTreeSet<String>> = g
        .edges
        .iter()
        .filter(|((rel, _, _), _)| rel == "GRANTS")
        .map(|((_, (_, from), to), p)| {
            let sets = p["permission_set_names"].as_array().unwrap();
            ((from.clone(), to.clone()), sets.iter().map(id).collect())
        })
        .collect();
    assert_eq!(lines(got), lines(grants));
    assert_eq!(report["edges"]["GRANTS"]["unresolved"], 0, "{report}");
    let condition = g.edges.iter().find(|((rel, (_, from), _), _)| {
        rel == "GRANTS" && from == "cba4209b-2fee-4875-b80d-36b83f3aa5e4"
    });
    assert_eq!(
        condition.unwrap().1["conditions"],
        json!(["request.user_agent == 'terraform-test'"])
    );
}

#[test]
fn an_attachment_whose_volume_no_listing_holds_is_named_not_dropped_silently() {
    let w = Work::new("recorded-unlinked");
    let recordings = [SERVERS_PUBLIC_IPS];
    let rec = recorded(&recordings);
    let gone = rec["block_volumes"].keys().next().unwrap().clone();
    let mut data = ScalewayData::recorded(RECORDED_ORG, &recordings);
    assert!(data.remove(&gone));
    let sim = ScalewaySim::start(data);
    let ran = w.sync(&sim, &[]);
    let report = w.report();
    assert_eq!(report["edges"]["MOUNTS"]["unresolved"], 1, "{report}");
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains("1 ScalewayVolume named by MOUNTS in no listing"),
        "{summary}"
    );
    let log = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        log.contains(&format!(
            "1 ScalewayVolume named by MOUNTS edges are in no listing, not linked: {gone}"
        )),
        "{log}"
    );
}

#[test]
fn a_failed_block_listing_keeps_its_volumes_and_their_mounts_are_not_called_unlinked() {
    let w = Work::new("recorded-block-fails");
    let recordings = [SERVERS_PUBLIC_IPS];
    let sim = ScalewaySim::start(ScalewayData::recorded(RECORDED_ORG, &recordings));
    ok(&w.sync(&sim, &[]));
    let rec = recorded(&recordings);
    let mounts: BTreeSet<(String, String)> = rec["servers"]
        .iter()
        .flat_map(|(sid, s)| {
            let volumes = s["volumes"].as_object().unwrap().values();
            volumes.map(move |v| (sid.clone(), id(&v["id"])))
        })
        .collect();
    assert_eq!(edges_of(&w.graph(), "MOUNTS"), mounts);

    // The Block volume listing of the zone now fails; the Instance one still answers.
    sim.fail_path("/block/v1/zones/fr-par-1/volumes", 403);
    let ran = w.sync(&sim, &[]);
    assert_eq!(ran.code, 1, "partial:\n{}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    let incomplete: Vec<&str> = report["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert_eq!(incomplete, ["ScalewayVolume"]);
    let summary = report["summary"].as_str().unwrap();
    assert!(!summary.contains("named by MOUNTS"), "{summary}");
    // The volumes are kept from the last sync, and the edges found them.
    let g = w.graph();
    for vid in rec["block_volumes"].keys() {
        assert!(g.has("ScalewayVolume", vid), "{vid}");
    }
    assert_eq!(edges_of(&g, "MOUNTS"), mounts);
    assert_eq!(report["edges"]["MOUNTS"]["unresolved"], 0);
}

#[test]
fn recorded_block_snapshots_hang_from_their_volumes_in_every_zone() {
    let w = Work::new("recorded-block");
    let recordings = [BLOCK_SNAPSHOTS, BLOCK_EVERY_ZONE];
    let sim = ScalewaySim::start(ScalewayData::recorded(BLOCK_ORG, &recordings));
    let ran = w.sync(&sim, &[]);
    let g = w.graph();
    let rec = recorded(&recordings);
    let mut has = BTreeSet::new();
    for (sid, s) in &rec["block_snapshots"] {
        let n = g.node("ScalewayVolumeSnapshot", sid);
        assert_eq!(n["volume_type"], "sbs_snapshot");
        assert_eq!((&n["name"], &n["zone"]), (&s["name"], &s["zone"]));
        has.insert((id(&s["parent_volume"]["id"]), sid.clone()));
    }
    assert_eq!(has.len(), 3);
    assert_eq!(edges_of(&g, "HAS"), has);
    let volumes: BTreeSet<String> = rec["block_volumes"].keys().cloned().collect();
    let got: BTreeSet<String> = g
        .nodes
        .keys()
        .filter(|(l, _)| l == "ScalewayVolume")
        .map(|(_, i)| i.clone())
        .collect();
    assert_eq!(got, volumes);
    assert_eq!(
        w.report()["edges"]["HAS"]["unresolved"],
        0,
        "{}",
        ran.stdout
    );

    // The Block API's own paging and filter, in every zone the recording listed,
    // Milan included.
    let log = sim.request_log();
    let recorded_zones: BTreeSet<String> = serde_json::from_str::<Json>(BLOCK_EVERY_ZONE).unwrap()
        ["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap().split("/zones/").nth(1).unwrap()[..8].to_owned())
        .collect();
    assert!(recorded_zones.contains("it-mil-1"));
    let asked: BTreeSet<String> = log
        .iter()
        .filter_map(|l| l.strip_prefix("GET /block/v1/zones/"))
        .map(|rest| {
            assert!(
                rest.contains("page=1&page_size=100&organization_id="),
                "{rest}"
            );
            rest[..8].to_owned()
        })
        .collect();
    assert_eq!(asked, recorded_zones);
}

#[test]
fn zones_alone_are_walked_as_given_and_a_conflict_with_regions_is_said() {
    let recordings = [BLOCK_EVERY_ZONE];
    let zones_asked = |sim: &ScalewaySim| -> BTreeSet<String> {
        sim.request_log()
            .iter()
            .filter_map(|l| {
                l.split("/zones/")
                    .nth(1)?
                    .split('/')
                    .next()
                    .map(str::to_owned)
            })
            .collect()
    };

    // Only Milan: no default `regions` undoes it (issue 15).
    let w = Work::new("zones-alone");
    let sim = ScalewaySim::start(ScalewayData::recorded(BLOCK_ORG, &recordings));
    let config = w.config("[plugins.scaleway]\nzones = [\"it-mil-1\"]\n");
    ok(&w.sync(&sim, &["--config", &config]));
    assert_eq!(zones_asked(&sim), ["it-mil-1".to_string()].into());
    let summary = w.report()["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.contains("in 1 zones") && !summary.contains("config:"),
        "{summary}"
    );

    // Both set: the zone outside the regions is skipped, and the summary says so.
    let w = Work::new("zones-and-regions");
    let sim = ScalewaySim::start(ScalewayData::recorded(BLOCK_ORG, &recordings));
    let config = w.config(
        "[plugins.scaleway]\nzones = [\"it-mil-1\", \"pl-waw-2\"]\nregions = [\"pl-waw\"]\n",
    );
    let ran = w.sync(&sim, &["--config", &config]);
    ok(&ran);
    assert_eq!(zones_asked(&sim), ["pl-waw-2".to_string()].into());
    let summary = w.report()["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.contains("[\"it-mil-1\"] are not in the configured regions"),
        "{summary}"
    );
    // The recording's pl-waw-2 volume, and only it.
    let in_waw: Vec<String> = recorded(&recordings)["block_volumes"]
        .iter()
        .filter(|(_, v)| v["zone"] == "pl-waw-2")
        .map(|(i, _)| i.clone())
        .collect();
    assert_eq!(in_waw.len(), 1);
    let g = w.graph();
    assert_eq!(g.count("ScalewayVolume"), 1);
    assert!(g.has("ScalewayVolume", &in_waw[0]));

    // Nothing in common: refused, naming both keys.
    let w = Work::new("zones-vs-regions");
    let sim = ScalewaySim::start(ScalewayData::recorded(BLOCK_ORG, &recordings));
    let config = w.config("[plugins.scaleway]\nzones = [\"it-mil-1\"]\nregions = [\"fr-par\"]\n");
    let ran = w.sync(&sim, &["--config", &config]);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("zones") && ran.stdout.contains("regions"),
        "{}",
        ran.stdout
    );
    assert_eq!(sim.total_requests(), 0);
}

/// `--config` with retries kept short: an unreachable endpoint fails in a second.
fn short_retries(w: &Work) -> String {
    w.config("[limits]\nretries = 1\n")
}

/// Issue 23, point 1: a run in which every listing failed is `failed` (exit 2), said in
/// one line per cause rather than one per URL, with retries out of the default log.
#[test]
fn a_sync_that_listed_nothing_is_failed_in_a_few_lines() {
    let w = Work::new("outcome-unreachable");
    // A port nothing listens on: every listing is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = short_retries(&w);
    let ran = w.sync_at(
        &format!("http://127.0.0.1:{port}"),
        ORG,
        ScalewaySim::SECRET_KEY,
        &["--config", &config],
    );
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    assert_eq!(report["status"], "failed");
    let error = report["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with("sync: nothing was listed: ")
            && error.contains(" listings failed with network error: ")
            && error.contains("e.g. "),
        "{error}"
    );
    let said: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("scaleway:"))
        .collect();
    assert_eq!(said.len(), 1, "one line for one cause: {}", ran.stdout);
    assert!(
        !ran.stderr.contains("retrying"),
        "retries are counted, not logged one by one: {}",
        ran.stderr
    );
    assert!(
        report["http"]["retries"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    let runs = run(&mut w.cmd(&["runs", "--json", "--store", &w.store()]));
    assert!(runs.stdout.contains("\"failed\""), "{}", runs.stdout);
}

/// Issue 23, point 1: an organization where every listing answers empty (a wrong id, or
/// a key that sees nothing) succeeds with a warning saying so.
#[test]
fn a_scope_where_every_listing_is_empty_is_a_warning() {
    let w = Work::new("outcome-empty");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let config = short_retries(&w);
    let ran = w.sync_at(
        &sim.url(),
        "11111111-2222-4333-8444-555555555555",
        ScalewaySim::SECRET_KEY,
        &["--config", &config],
    );
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let warning = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("scaleway: warning: every listing came back empty"))
        .unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(
        warning.contains("ScalewayOrganization 11111111-2222-4333-8444-555555555555"),
        "the scope is named: {warning}"
    );
    // The sample organization syncs without it.
    let w = Work::new("outcome-full");
    let ran = w.sync(&sim, &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(!ran.stdout.contains("came back empty"), "{}", ran.stdout);
}
