use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::accounts::{Account, Accounts, Denied, PerAccount};
use super::ids::{mix, uuid};
use super::server::{RequestLog, Server};

/// Every zone Scaleway lists Instance and Block resources in, as the Go SDK has them
/// (`AllZones` in `scw/locality.go`; `docs/providers/scaleway.md`).
pub const ZONES: [&str; 10] = [
    "fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "nl-ams-2", "nl-ams-3", "pl-waw-1", "pl-waw-2",
    "pl-waw-3", "it-mil-1",
];

/// One resource as the API serves it: its JSON, kept serialized so a large estate costs
/// little memory and a page is served by joining strings, plus what the API filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `id`, or `access_key` for an API key.
    pub id: String,
    /// The owning Organization.
    pub organization: String,
    /// The owning Project, for project-scoped resources.
    pub project: Option<String>,
    /// The zone, for Instance resources.
    pub zone: Option<String>,
    json: String,
}

impl Item {
    /// `value`, which holds its id under `id` (`access_key` for an API key), its
    /// Organization under `organization_id` or `organization` (API keys carry none:
    /// `organization` is theirs), its Project under `project` and its zone under `zone`.
    fn new(value: &Value, organization: &str) -> Item {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Item {
            id: text("id")
                .or_else(|| text("access_key"))
                .expect("every resource has an id or an access key"),
            organization: text("organization_id")
                .or_else(|| text("organization"))
                .unwrap_or_else(|| organization.to_owned()),
            project: text("project").or_else(|| text("project_id")),
            zone: text("zone"),
            json: value.to_string(),
        }
    }

    /// The resource as served.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.json).expect("items hold valid JSON")
    }

    /// Replaces the served JSON with `change` applied to it.
    pub fn edit(&mut self, change: impl FnOnce(&mut Value)) {
        let mut v = self.json();
        change(&mut v);
        *self = Item::new(&v, &self.organization);
    }
}

/// Everything the simulated Scaleway API serves, one list per endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScalewayData {
    /// The Organization of the sample, and of generated estates.
    pub organization_id: String,
    /// What makes this estate's generated ids its own (see [`uuid`]).
    id_seed: u64,
    /// `GET /account/v3/projects`.
    pub projects: Vec<Item>,
    /// `GET /iam/v1alpha1/users`.
    pub users: Vec<Item>,
    /// `GET /iam/v1alpha1/groups`.
    pub groups: Vec<Item>,
    /// `GET /iam/v1alpha1/applications`.
    pub applications: Vec<Item>,
    /// `GET /iam/v1alpha1/api-keys`.
    pub api_keys: Vec<Item>,
    /// `GET /iam/v1alpha1/policies`.
    pub policies: Vec<Item>,
    /// `GET /iam/v1alpha1/rules?policy_id=`: each policy's rules, by policy id. Rules
    /// are not nodes: a sync writes them as the `GRANTS` edges of their policy.
    pub rules: BTreeMap<String, Vec<Item>>,
    /// `GET /instance/v1/zones/{zone}/servers`.
    pub servers: Vec<Item>,
    /// `GET /instance/v1/zones/{zone}/volumes`.
    pub volumes: Vec<Item>,
    /// `GET /instance/v1/zones/{zone}/snapshots`.
    pub snapshots: Vec<Item>,
    /// `GET /instance/v1/zones/{zone}/ips`.
    pub ips: Vec<Item>,
    /// `GET /block/v1/zones/{zone}/volumes`.
    pub block_volumes: Vec<Item>,
    /// `GET /block/v1/zones/{zone}/snapshots`.
    pub block_snapshots: Vec<Item>,
}

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../fixtures/scaleway/", $file))
    };
}

/// The Instance API's IPs of the sample estate. There is no IPs sample: the first is the
/// sample server's public IP as its `public_ip` describes it, the second a detached IP
/// in another zone with a reverse name, so the sample spans two regions.
const SAMPLE_IPS: &str = r#"[
  {
    "id": "7b37f45d-9871-4ae6-bd5a-a926102fb5c9",
    "address": "51.1.2.8",
    "reverse": null,
    "server": {"id": "345627e9-18ff-47e0-b73d-3f38fddb4390", "name": "demo-server"},
    "organization": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
    "project": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
    "zone": "fr-par-1",
    "tags": [],
    "state": "attached",
    "type": "routed_ipv4",
    "prefix": "51.1.2.8/32",
    "ipam_id": ""
  },
  {
    "id": "d1b7e0c4-5a2f-4c3e-9b8d-6f1a2e3c4d5b",
    "address": "51.15.200.17",
    "reverse": "mail.simpson.corp",
    "server": null,
    "organization": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
    "project": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
    "zone": "nl-ams-1",
    "tags": ["mail"],
    "state": "detached",
    "type": "routed_ipv4",
    "prefix": "51.15.200.17/32",
    "ipam_id": "5f0e8c1a-3b7d-4e2f-a9c6-1d4b8e7f2a30"
  }
]"#;

/// The IAM policies of the sample estate, each with its rules (there is no policies
/// sample), shaped like the recorded ones (`tests/fixtures/scaleway/recorded/iam_*.json`):
/// the Administrators group's on the default project (two rules, merged into one grant,
/// and a rule with no permission set, which grants nothing), Homer's on the whole
/// Organization with a condition, the Mail Sender application's on the project, and the
/// project's default policy for API keys, attached to no principal.
const SAMPLE_POLICIES: &str = r#"[
  {
    "policy": {
      "id": "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e01", "name": "Administrators - compute",
      "description": "Instances and their volumes in the default project",
      "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
      "created_at": "2025-03-20T11:20:04.120711Z", "updated_at": "2025-03-21T08:02:17.503116Z",
      "editable": true, "deletable": true, "managed": false, "nb_rules": 3, "nb_scopes": 2,
      "nb_permission_sets": 3, "tags": ["compute"],
      "group_id": "1f767996-f6f6-4b0e-a7b1-6a255e809ed6"
    },
    "rules": [
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a01", "permission_set_names": ["InstancesFullAccess"],
       "permission_sets_scope_type": "projects", "condition": "",
       "project_ids": ["0681c477-fbb9-4820-b8d6-0eef10cfcd6d"]},
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a02",
       "permission_set_names": ["BlockStorageFullAccess", "InstancesFullAccess"],
       "permission_sets_scope_type": "projects", "condition": "",
       "project_ids": ["0681c477-fbb9-4820-b8d6-0eef10cfcd6d"]},
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a03", "permission_set_names": [],
       "permission_sets_scope_type": "organization", "condition": "",
       "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d"}
    ]
  },
  {
    "policy": {
      "id": "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e02", "name": "Homer - read only",
      "description": "Read access to every product, from Terraform only",
      "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
      "created_at": "2025-03-22T09:14:51.880102Z", "updated_at": "2025-03-22T09:14:51.880102Z",
      "editable": true, "deletable": true, "managed": false, "nb_rules": 1, "nb_scopes": 1,
      "nb_permission_sets": 1, "tags": [],
      "user_id": "b49932b2-2faa-4c56-905e-ffac52f063dc"
    },
    "rules": [
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a04", "permission_set_names": ["AllProductsReadOnly"],
       "permission_sets_scope_type": "projects", "condition": "request.user_agent == 'terraform'",
       "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d"}
    ]
  },
  {
    "policy": {
      "id": "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e03", "name": "Mail Sender - email",
      "description": "", "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
      "created_at": "2025-03-23T20:52:21.110254Z", "updated_at": "2025-03-23T20:52:21.110254Z",
      "editable": true, "deletable": true, "managed": false, "nb_rules": 1, "nb_scopes": 1,
      "nb_permission_sets": 1, "tags": [],
      "application_id": "98300a5a-438e-45dc-8b34-07b1adc7c409"
    },
    "rules": [
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a05",
       "permission_set_names": ["TransactionalEmailFullAccess"],
       "permission_sets_scope_type": "projects", "condition": "",
       "project_ids": ["0681c477-fbb9-4820-b8d6-0eef10cfcd6d"]}
    ]
  },
  {
    "policy": {
      "id": "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e04", "name": "Project - default (0681c477)",
      "description": "Default policy for API keys on project default (0681c477)",
      "organization_id": "0681c477-fbb9-4820-b8d6-0eef10cfcd6d",
      "created_at": "2025-03-20T07:39:54.820311Z", "updated_at": "2025-03-20T07:39:54.820311Z",
      "editable": true, "deletable": true, "managed": false, "nb_rules": 1, "nb_scopes": 1,
      "nb_permission_sets": 1, "tags": [], "no_principal": true
    },
    "rules": [
      {"id": "a3f1c2d4-0b5e-4c6f-8a7b-9c0d1e2f3a06", "permission_set_names": ["AllProductsFullAccess"],
       "permission_sets_scope_type": "projects", "condition": "",
       "project_ids": ["0681c477-fbb9-4820-b8d6-0eef10cfcd6d"]}
    ]
  }
]"#;

/// (request URL, parsed body) of each interaction of a recording in
/// `tests/fixtures/scaleway/recorded/`, whose `body` keeps the response as recorded.
fn recorded_bodies(text: &str) -> Vec<(String, Value)> {
    let doc: Value = serde_json::from_str(text).expect("a recording is JSON");
    doc["interactions"]
        .as_array()
        .expect("a recording has interactions")
        .iter()
        .map(|i| {
            let url = i["url"].as_str().expect("an interaction has a url");
            let body = i["body"].as_str().expect("an interaction has a body");
            let body = serde_json::from_str(body).expect("a recorded body is JSON");
            (url.to_owned(), body)
        })
        .collect()
}

/// Instance types of generated servers, in turn.
const COMMERCIAL_TYPES: [&str; 3] = ["DEV1-S", "GP1-M", "PRO2-S"];

impl ScalewayData {
    /// The Organization of [`ScalewayData::sample`].
    pub const ORGANIZATION: &'static str = "0681c477-fbb9-4820-b8d6-0eef10cfcd6d";

    /// An Organization with nothing in it.
    pub fn empty(organization: &str) -> ScalewayData {
        ScalewayData {
            organization_id: organization.to_owned(),
            ..ScalewayData::default()
        }
    }

    /// The responses in `tests/fixtures/scaleway/` (one project, two users, a group, two
    /// applications, two API keys, and in `fr-par-1` a server with its volume and a
    /// snapshot), plus the two IPs of [`SAMPLE_IPS`] and the four policies of
    /// [`SAMPLE_POLICIES`].
    pub fn sample() -> ScalewayData {
        let org = ScalewayData::ORGANIZATION;
        let items = |body: &str, key: &str| -> Vec<Item> {
            let v: Value = serde_json::from_str(body).expect("the samples are JSON");
            v[key]
                .as_array()
                .unwrap_or_else(|| panic!("the sample has no {key}"))
                .iter()
                .map(|i| Item::new(i, org))
                .collect()
        };
        let ips: Value = serde_json::from_str(SAMPLE_IPS).expect("SAMPLE_IPS is JSON");
        let policies: Value =
            serde_json::from_str(SAMPLE_POLICIES).expect("SAMPLE_POLICIES is JSON");
        let mut rules = BTreeMap::new();
        let policies = policies
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| {
                let policy = Item::new(&p["policy"], org);
                let of = p["rules"].as_array().expect("rules").iter();
                rules.insert(policy.id.clone(), of.map(|r| Item::new(r, org)).collect());
                policy
            })
            .collect();
        ScalewayData {
            organization_id: org.to_owned(),
            projects: items(sample!("account_v3_projects.json"), "projects"),
            users: items(sample!("iam_users.json"), "users"),
            groups: items(sample!("iam_groups.json"), "groups"),
            applications: items(sample!("iam_applications.json"), "applications"),
            api_keys: items(sample!("iam_api_keys.json"), "api_keys"),
            servers: items(sample!("instance_servers.json"), "servers"),
            volumes: items(sample!("instance_volumes.json"), "volumes"),
            snapshots: items(sample!("instance_snapshots.json"), "snapshots"),
            ips: ips
                .as_array()
                .expect("a list")
                .iter()
                .map(|i| Item::new(i, org))
                .collect(),
            block_volumes: Vec::new(),
            block_snapshots: Vec::new(),
            policies,
            rules,
            id_seed: 0,
        }
    }

    /// The resources of real API recordings (`tests/fixtures/scaleway/recorded/`, each a
    /// trimmed go-vcr cassette of `scaleway/terraform-provider-scaleway`), served as the
    /// Organization `organization`'s: every project, server, IP, Block volume and snapshot
    /// and IAM policy their `GET` responses hold, whether a listing (`{"servers": [...]}`)
    /// or one resource (`{"server": {...}}`, `{"ip": {...}}`, a bare Block volume or
    /// policy), each once (the last recorded state wins); and each recorded rules listing
    /// as the rules of the policy its `policy_id` names (the last one wins). A policy
    /// whose rules were not recorded has none.
    pub fn recorded(organization: &str, recordings: &[&str]) -> ScalewayData {
        let mut data = ScalewayData::empty(organization);
        for text in recordings {
            for (url, body) in recorded_bodies(text) {
                let path = url.split('?').next().unwrap_or(&url);
                let tail: Vec<&str> = path.rsplitn(3, '/').collect();
                // [last segment, the one before, the rest]: ".../servers" or ".../servers/{id}".
                let (list, kind) = match tail.as_slice() {
                    [what, ..] if body.get(*what).is_some_and(Value::is_array) => {
                        (body[*what].as_array().cloned().unwrap_or_default(), *what)
                    }
                    [_, what, ..] => {
                        let single = match *what {
                            "servers" => body["server"].clone(),
                            "ips" => body["ip"].clone(),
                            _ => body.clone(),
                        };
                        (vec![single], *what)
                    }
                    _ => continue,
                };
                if kind == "rules" {
                    let policy = url
                        .split(['?', '&'])
                        .find_map(|kv| kv.strip_prefix("policy_id="))
                        .expect("a recorded rules listing names its policy");
                    let rules = list.iter().map(|r| Item::new(r, organization)).collect();
                    data.rules.insert(policy.to_owned(), rules);
                    continue;
                }
                let target = match (path.starts_with("https://api.scaleway.com/block/"), kind) {
                    (false, "projects") => &mut data.projects,
                    (false, "policies") => &mut data.policies,
                    (false, "servers") => &mut data.servers,
                    (false, "ips") => &mut data.ips,
                    (false, "volumes") => &mut data.volumes,
                    (false, "snapshots") => &mut data.snapshots,
                    (true, "volumes") => &mut data.block_volumes,
                    (true, "snapshots") => &mut data.block_snapshots,
                    _ => continue,
                };
                for v in list {
                    let item = Item::new(&v, organization);
                    target.retain(|i| i.id != item.id);
                    target.push(item);
                }
            }
        }
        data
    }

    /// A large estate, the same on every call: `projects` projects of
    /// `instances_per_project` instances each, spread over all [`ZONES`], with what goes
    /// with them in the proportions of a typical Organization (see
    /// [`ScalewayData::add_instances`] and [`ScalewayData::add_principals`]): about 3.9
    /// resources per instance and 13 IAM resources per project.
    pub fn generate(projects: usize, instances_per_project: usize) -> ScalewayData {
        ScalewayData::generated(0, projects, instances_per_project)
    }

    /// The estate of [`ScalewayData::generate`] whose ids are made its own by `seed`.
    fn generated(seed: u64, projects: usize, instances_per_project: usize) -> ScalewayData {
        let mut data = ScalewayData::empty(&format!("0000a0a0-{seed:04x}-4000-8000-000000000001"));
        data.id_seed = seed;
        for p in 0..projects {
            let project = data.add_project(&format!("project-{p:03}"));
            // Rotate the zones per project, so every zone holds instances of many projects.
            for (k, zone) in ZONES.iter().enumerate() {
                let share = instances_per_project / ZONES.len()
                    + usize::from((k + p) % ZONES.len() < instances_per_project % ZONES.len());
                data.add_instances(&project, zone, share);
            }
        }
        data.add_principals(4 * projects, projects, 2 * projects);
        data.add_policies();
        data
    }

    /// Issue 21's estate shape: `projects` projects with `per_project` servers each in
    /// the first zone (`fr-par-1`, the one zone some tools read) and one in every other
    /// zone, with their volumes, snapshots and IPs, and the usual principals and policies.
    pub fn generate_in_one_zone(projects: usize, per_project: usize) -> ScalewayData {
        let mut data = ScalewayData::empty("0000a0a0-0000-4000-8000-000000000001");
        for p in 0..projects {
            let project = data.add_project(&format!("project-{p:03}"));
            data.add_instances(&project, ZONES[0], per_project);
            for zone in &ZONES[1..] {
                data.add_instances(&project, zone, 1);
            }
        }
        data.add_principals(4 * projects, projects, 2 * projects);
        data.add_policies();
        data
    }

    /// The `n`th of many generated Organizations (`n` < 65,535): [`ScalewayData::generate`]
    /// with every id, the Organization's included, and every API key's access key its
    /// own, so that many Organizations synced into one store never share a node.
    pub fn generate_org(n: usize, projects: usize, instances_per_project: usize) -> ScalewayData {
        let n = u16::try_from(n + 1).expect("at most 65,535 generated Organizations");
        ScalewayData::generated(u64::from(n), projects, instances_per_project)
    }

    /// A generated id of this estate (see [`uuid`]).
    fn uuid(&self, kind: u32, n: u64) -> String {
        uuid(self.id_seed, kind, n)
    }

    /// Nodes a complete sync of this data writes: every item plus the Organization.
    pub fn resource_count(&self) -> usize {
        1 + self.lists().iter().map(|l| l.len()).sum::<usize>()
    }

    fn lists(&self) -> [&Vec<Item>; 12] {
        [
            &self.projects,
            &self.users,
            &self.groups,
            &self.applications,
            &self.api_keys,
            &self.policies,
            &self.servers,
            &self.volumes,
            &self.snapshots,
            &self.ips,
            &self.block_volumes,
            &self.block_snapshots,
        ]
    }

    fn lists_mut(&mut self) -> [&mut Vec<Item>; 12] {
        [
            &mut self.projects,
            &mut self.users,
            &mut self.groups,
            &mut self.applications,
            &mut self.api_keys,
            &mut self.policies,
            &mut self.servers,
            &mut self.volumes,
            &mut self.snapshots,
            &mut self.ips,
            &mut self.block_volumes,
            &mut self.block_snapshots,
        ]
    }

    /// Removes the resource with this id (or access key) from every list, and a
    /// policy's rules with it; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let mut found = self.rules.remove(id).is_some();
        for list in self.lists_mut() {
            let before = list.len();
            list.retain(|i| i.id != id);
            found |= list.len() != before;
        }
        found
    }

    /// Adds a project named `name`; returns its id.
    pub fn add_project(&mut self, name: &str) -> String {
        let id = self.uuid(0x1, self.projects.len() as u64);
        let v = json!({
            "id": id, "name": name, "organization_id": self.organization_id,
            "description": format!("Generated project {name}"),
            "created_at": "2025-01-02T03:04:05.000000Z",
            "updated_at": "2025-02-03T04:05:06.000000Z",
            "qualification": null
        });
        self.projects.push(Item::new(&v, &self.organization_id));
        id
    }

    /// Adds `n` instances of `project` in `zone`. Each has a root volume; every third a
    /// Block Storage (SBS) data volume too, served by the Block API and shaped like the
    /// recorded ones (`tests/fixtures/scaleway/recorded/`); every tenth zone-mate is an unattached volume; every second root
    /// volume has a snapshot; nine instances in ten have an attached IP, and every
    /// twentieth instance adds a detached one.
    pub fn add_instances(&mut self, project: &str, zone: &str, n: usize) {
        let org = self.organization_id.clone();
        for _ in 0..n {
            let i = self.servers.len() as u64;
            let server = self.uuid(0x10, i);
            let name = format!("srv-{zone}-{i:06}");
            // slot -> (volume id, Instance `volume_type`)
            let mut mounted = BTreeMap::new();
            let volume = |data: &mut ScalewayData, attached: bool, kind: &str| {
                let id = data.uuid(0x20, data.volumes.len() as u64);
                let v = json!({
                    "id": id, "name": format!("{name}-{kind}"), "size": 20_000_000_000u64,
                    "volume_type": if kind == "root" { "l_ssd" } else { "b_ssd" },
                    "organization": org, "project": project, "tags": [kind],
                    "state": "available", "zone": zone, "export_uri": null,
                    "creation_date": "2025-03-20T14:49:48.107731Z",
                    "modification_date": "2025-03-20T14:49:48.107731Z",
                    "server": if attached { json!({"id": server, "name": name}) } else { Value::Null }
                });
                data.volumes.push(Item::new(&v, &org));
                id
            };
            let root = volume(self, true, "root");
            mounted.insert("0".to_string(), (root.clone(), "l_ssd"));
            if i.is_multiple_of(3) {
                let id = self.uuid(0x21, self.block_volumes.len() as u64);
                let v = json!({
                    "id": id, "name": format!("{name}-data"), "type": "sbs_5k",
                    "size": 10_000_000_000u64, "project_id": project,
                    "created_at": "2025-03-20T14:49:48.107731Z",
                    "updated_at": "2025-03-20T14:49:48.107731Z",
                    "references": [{
                        "id": self.uuid(0x22, self.block_volumes.len() as u64),
                        "product_resource_type": "instance_server",
                        "product_resource_id": server,
                        "created_at": "2025-03-20T14:49:48.107731Z",
                        "type": "exclusive", "status": "attached"
                    }],
                    "parent_snapshot_id": null, "status": "in_use", "tags": ["data"],
                    "specs": {"perf_iops": 5000, "class": "sbs"}, "last_detached_at": null,
                    "kms_key_id": null, "zone": zone
                });
                self.block_volumes.push(Item::new(&v, &org));
                mounted.insert("1".to_string(), (id, "sbs_volume"));
            }
            if i.is_multiple_of(10) {
                volume(self, false, "spare");
            }
            if i.is_multiple_of(2) {
                let v = json!({
                    "id": self.uuid(0x30, self.snapshots.len() as u64),
                    "name": format!("{name}-root-snap"), "organization": org,
                    "project": project, "tags": [], "volume_type": "l_ssd",
                    "size": 20_000_000_000u64, "state": "available", "zone": zone,
                    "base_volume": {"id": root, "name": format!("{name}-root")},
                    "creation_date": "2025-06-20T12:29:45.284101Z",
                    "modification_date": "2025-06-20T12:30:29.573322Z",
                    "error_reason": null
                });
                self.snapshots.push(Item::new(&v, &org));
            }
            let ip = |data: &mut ScalewayData, attached: bool| -> Value {
                let k = data.ips.len() as u64;
                let id = data.uuid(0x40, k);
                let address = format!("51.{}.{}.{}", 15 + k / 65_536 % 200, k / 256 % 256, k % 256);
                let v = json!({
                    "id": id, "address": address, "reverse": null,
                    "server": if attached { json!({"id": server, "name": name}) } else { Value::Null },
                    "organization": org, "project": project, "zone": zone, "tags": [],
                    "state": if attached { "attached" } else { "detached" },
                    "type": "routed_ipv4", "prefix": format!("{address}/32"),
                    "ipam_id": data.uuid(0x41, k)
                });
                data.ips.push(Item::new(&v, &org));
                json!({"id": id, "address": address, "dynamic": false, "family": "inet"})
            };
            let public_ip = if i % 10 != 9 {
                ip(self, true)
            } else {
                Value::Null
            };
            if i.is_multiple_of(20) {
                ip(self, false);
            }
            let volumes: serde_json::Map<String, Value> = mounted
                .iter()
                .map(|(slot, (id, kind))| {
                    let v = json!({"boot": false, "volume_type": kind, "id": id,
                                   "state": "available", "zone": zone});
                    (slot.clone(), v)
                })
                .collect();
            let v = json!({
                "id": server, "name": name, "organization": org, "project": project,
                "tags": ["generated", format!("rank-{}", i % 4)],
                "commercial_type": COMMERCIAL_TYPES[i as usize % 3],
                "dynamic_ip_required": false, "hostname": name, "protected": false,
                "mac_address": format!("de:00:00:{:02x}:{:02x}:{:02x}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff),
                "state": if i.is_multiple_of(7) { "stopped" } else { "running" },
                "boot_type": "local", "volumes": volumes, "state_detail": "booted",
                "arch": "x86_64", "private_nics": [], "zone": zone, "end_of_service": false,
                "creation_date": "2025-03-20T14:49:48.107731Z",
                "modification_date": "2025-04-24T08:02:19.046852Z",
                "routed_ip_enabled": true, "enable_ipv6": false, "private_ip": null,
                "public_ip": public_ip,
                "location": {"cluster_id": "32", "hypervisor_id": format!("{}", 800 + i % 50),
                             "node_id": "2", "platform_id": "14", "zone_id": zone},
                "ipv6": null, "security_group": {"id": self.uuid(0x50, 0), "name": "default"}
            });
            self.servers.push(Item::new(&v, &org));
        }
    }

    /// Adds `users` users, `groups` groups and `applications` applications, each user
    /// and application with one API key. User `u` is in group `u % groups`, and every
    /// fourth also in the next; application `a` is in group `a % groups`.
    pub fn add_principals(&mut self, users: usize, groups: usize, applications: usize) {
        let org = self.organization_id.clone();
        let first_user = self.users.len() as u64;
        let first_app = self.applications.len() as u64;
        let project = self.projects.first().map(|p| p.id.clone());
        let key = |data: &mut ScalewayData, owner: (&str, &str)| {
            let n = data.api_keys.len() as u64;
            let mut v = json!({
                "access_key": format!("SCW{:017X}", mix(data.id_seed, 0xac, n, 0)), "description": format!("key {n}"),
                "default_project_id": project, "editable": true, "deletable": true,
                "managed": false, "creation_ip": "192.0.2.10", "secret_key": null,
                "created_at": "2025-03-20T10:58:00.784077Z",
                "updated_at": "2025-03-20T10:58:00.784077Z",
                "expires_at": if n.is_multiple_of(3) { json!("2026-03-20T10:58:00Z") } else { Value::Null },
                "application_id": null, "user_id": null
            });
            v[owner.0] = json!(owner.1);
            data.api_keys.push(Item::new(&v, &org));
        };
        let group_ids: Vec<String> = (0..groups as u64).map(|g| self.uuid(0x62, g)).collect();
        let mut members: Vec<(Vec<String>, Vec<String>)> = vec![Default::default(); groups];
        for u in first_user..first_user + users as u64 {
            let id = self.uuid(0x60, u);
            let v = json!({
                "id": id, "email": format!("user{u}@example.com"),
                "username": format!("user{u}@example.com"), "first_name": "User",
                "last_name": format!("{u}"), "phone_number": "", "locale": "en_US",
                "organization_id": org, "deletable": u != 0,
                "type": if u == 0 { "owner" } else { "member" }, "mfa": u.is_multiple_of(2),
                "account_root_user_id": self.uuid(0x61, u), "tags": [], "locked": false,
                "created_at": "2025-03-20T07:39:54.526837Z",
                "updated_at": "2025-06-20T09:19:54.496281Z",
                "last_login_at": "2025-06-20T09:19:54.502555Z",
                "two_factor_enabled": u.is_multiple_of(2), "status": "activated"
            });
            self.users.push(Item::new(&v, &org));
            key(self, ("user_id", &id));
            if groups > 0 {
                let g = u as usize % groups;
                members[g].0.push(id.clone());
                if u.is_multiple_of(4) && groups > 1 {
                    members[(g + 1) % groups].0.push(id);
                }
            }
        }
        for a in first_app..first_app + applications as u64 {
            let id = self.uuid(0x63, a);
            let v = json!({
                "id": id, "name": format!("app-{a}"), "description": format!("Application {a}"),
                "organization_id": org, "editable": true, "deletable": true,
                "managed": false, "nb_api_keys": 1, "tags": [],
                "created_at": "2025-03-23T20:52:20.849566Z",
                "updated_at": "2025-03-23T20:52:20.849566Z"
            });
            self.applications.push(Item::new(&v, &org));
            key(self, ("application_id", &id));
            if groups > 0 {
                members[a as usize % groups].1.push(id);
            }
        }
        for (g, (user_ids, application_ids)) in group_ids.iter().zip(members) {
            let v = json!({
                "id": g, "organization_id": org, "name": format!("group-{g}"),
                "description": "generated group", "user_ids": user_ids,
                "application_ids": application_ids, "tags": [], "editable": true,
                "deletable": true, "managed": false,
                "created_at": "2025-03-20T11:13:35.109782Z",
                "updated_at": "2025-03-20T11:13:35.109782Z"
            });
            self.groups.push(Item::new(&v, &org));
        }
    }

    /// Adds the policies of a generated estate, each with one rule: group `g` gets
    /// `InstancesFullAccess` on project `g % projects`, the first user
    /// `AllProductsReadOnly` on the whole Organization, the first application
    /// `ContainerRegistryReadOnly` on the first project, and the first project a default
    /// policy for API keys with no principal (`AllProductsFullAccess` there).
    pub fn add_policies(&mut self) {
        let org = self.organization_id.clone();
        let projects: Vec<String> = self.projects.iter().map(|p| p.id.clone()).collect();
        let Some(first) = projects.first().cloned() else {
            return;
        };
        let add = |data: &mut ScalewayData,
                   name: String,
                   principal: (&str, Value),
                   sets: &[&str],
                   scope: (&str, Value)| {
            let n = data.policies.len() as u64;
            let id = data.uuid(0x70, n);
            let mut v = json!({
                "id": id, "name": name, "description": "generated policy",
                "organization_id": org, "editable": true, "deletable": true,
                "managed": false, "nb_rules": 1, "nb_scopes": 1,
                "nb_permission_sets": sets.len(), "tags": [],
                "created_at": "2025-03-20T11:20:04.120711Z",
                "updated_at": "2025-03-20T11:20:04.120711Z"
            });
            v[principal.0] = principal.1;
            data.policies.push(Item::new(&v, &org));
            let mut rule = json!({
                "id": data.uuid(0x71, n), "permission_set_names": sets,
                "permission_sets_scope_type": "projects", "condition": ""
            });
            rule[scope.0] = scope.1;
            data.rules.insert(id, vec![Item::new(&rule, &org)]);
        };
        let groups: Vec<String> = self.groups.iter().map(|g| g.id.clone()).collect();
        for (g, group) in groups.iter().enumerate() {
            let project = &projects[g % projects.len()];
            add(
                self,
                format!("group-{g} on project {}", g % projects.len()),
                ("group_id", json!(group)),
                &["InstancesFullAccess"],
                ("project_ids", json!([project])),
            );
        }
        if let Some(user) = self.users.first().map(|u| u.id.clone()) {
            let everything = ("organization_id", json!(org));
            let name = "first user reads everything".to_owned();
            add(
                self,
                name,
                ("user_id", json!(user)),
                &["AllProductsReadOnly"],
                everything,
            );
        }
        if let Some(app) = self.applications.first().map(|a| a.id.clone()) {
            add(
                self,
                "first application pulls images".to_owned(),
                ("application_id", json!(app)),
                &["ContainerRegistryReadOnly"],
                ("project_ids", json!([first])),
            );
        }
        add(
            self,
            "default policy for API keys".to_owned(),
            ("no_principal", json!(true)),
            &["AllProductsFullAccess"],
            ("project_ids", json!([first])),
        );
    }
}

/// Which endpoint, and its list convention.
#[derive(Clone, Copy)]
enum Endpoint {
    /// Account, IAM and Block: `page`/`page_size`, `total_count` in the body, filters
    /// `organization_id` and `project_id`.
    Paged(&'static str),
    /// Instance: `page`/`per_page`, `X-Total-Count` header, filters `organization`
    /// and `project`.
    Instance(&'static str),
}

/// A running Scaleway API on `127.0.0.1`, serving:
///
/// - `GET /account/v3/projects` (`projects`)
/// - `GET /iam/v1alpha1/{users,groups,applications,api-keys,policies}` (`api_keys` for
///   api-keys)
/// - `GET /iam/v1alpha1/rules?policy_id=` (`rules`): the rules of one policy of the key's
///   Organization, paged like the other IAM listings; without `policy_id` it answers 400
///   (the SDK always sends it), and for a policy the Organization does not hold 404
///   `not_found` with `"resource": "policy"`, the body the API gives for a policy it does
///   not know (recorded in `policy-*` cassettes of the provider)
/// - `GET /instance/v1/zones/{zone}/{servers,volumes,snapshots,ips}`, for every zone of
///   [`ZONES`] (another zone answers 404)
/// - `GET /block/v1/zones/{zone}/{volumes,snapshots}`, likewise
///
/// Account, IAM and Block lists take `page` (from 1) and `page_size` (default 20, at most
/// [`ScalewaySim::MAX_PAGE_SIZE`]) and return `total_count` in the body; Instance lists
/// take `page` and `per_page` (default 50, at most 100) and return the total in the
/// `X-Total-Count` header only. A page size above the maximum, or a page or size of 0,
/// answers 400 as Scaleway does for an invalid argument. Lists are filtered by
/// `organization_id`/`project_id` (Instance: `organization`/`project`) when given.
/// A request without `X-Auth-Token: `[`ScalewaySim::SECRET_KEY`] answers 401.
///
/// Many Organizations ([`ScalewaySim::start_many`]): each [`Account`] is an Organization
/// with its own secret key (`id`; `secret` unused) and its own data. A key belongs to one
/// Organization, as at Scaleway, so a request sees the data of its key's Organization
/// only; an unknown key, or the key of a refused account, answers 401
/// `denied_authentication`. An account with a rate limit answers 429 with `Retry-After`
/// (`too_many_requests`, as Scaleway's quota errors) once its key spends its budget,
/// without touching another key's.
pub struct ScalewaySim {
    state: Arc<SimState>,
    server: Server,
}

struct SimState {
    orgs: Accounts<ScalewayData>,
    faults: Mutex<Faults>,
    requests: RequestLog,
    /// Lists of products the simulator does not model answer empty instead of 404.
    empty_products: AtomicBool,
}

#[derive(Default)]
struct Faults {
    /// The next requests that fail whatever they ask: (status, Retry-After).
    next: Vec<(u16, Option<u32>)>,
    /// Zones whose Instance and Block endpoints always answer this status.
    zones: HashMap<String, u16>,
    /// Listings (paths) that always answer this status, e.g. one API of one zone.
    paths: HashMap<String, u16>,
    /// Added before every response.
    latency: Duration,
}

impl ScalewaySim {
    /// The secret key the API accepts: a UUID, as Scaleway's are (its SDKs refuse
    /// anything else before sending a request).
    pub const SECRET_KEY: &'static str = "7f3e9c2a-51d4-4b8e-a6f0-93c1d2e4b5a6";

    /// The most items a page holds in both conventions.
    pub const MAX_PAGE_SIZE: usize = 100;

    /// Serves `data` on a fresh loopback port, to the key [`ScalewaySim::SECRET_KEY`].
    pub fn start(data: ScalewayData) -> ScalewaySim {
        ScalewaySim::start_many(vec![Account::new(data, ScalewaySim::SECRET_KEY, "")])
    }

    /// Serves each Organization of `orgs` to its own key (`Account::id`), on one port.
    /// Single-account methods (`update`, `set_data`, `organization_id`) act on the first.
    pub fn start_many(orgs: Vec<Account<ScalewayData>>) -> ScalewaySim {
        let state = Arc::new(SimState {
            orgs: Accounts::new(orgs),
            faults: Mutex::new(Faults::default()),
            requests: RequestLog::default(),
            empty_products: AtomicBool::new(false),
        });
        let router = state.requests.around(
            Router::new()
                .route("/account/v3/projects", get(projects))
                .route("/iam/v1alpha1/{what}", get(iam))
                .route("/instance/v1/zones/{zone}/{what}", get(instance))
                .route("/block/v1/zones/{zone}/{what}", get(block))
                .fallback(
                    |State(state): State<Arc<SimState>>, uri: axum::http::Uri| async move {
                        unmodelled(&state, uri.path())
                    },
                )
                .layer(middleware::from_fn_with_state(state.clone(), gate))
                .with_state(state.clone()),
        );
        ScalewaySim {
            server: Server::start("scaleway-sim", router),
            state,
        }
    }

    /// From now on, a list of a product this simulator does not model (Kubernetes,
    /// databases, DNS, ...) answers an empty page instead of 404, and Object Storage
    /// (`/s3/{region}/`) lists no bucket: an Organization that uses none of them. For a client that lists every product, such as Cartography's
    /// Scaleway module in the side-by-side benchmark.
    pub fn serve_other_products_empty(&self) {
        self.state.empty_products.store(true, Ordering::Relaxed);
    }

    /// `http://127.0.0.1:PORT`, the value for `SCW_API_URL`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The Organization of the served data.
    pub fn organization_id(&self) -> String {
        self.read().organization_id.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ScalewayData> {
        self.state.orgs.read(0)
    }

    /// How many Organizations it serves.
    pub fn organizations(&self) -> usize {
        self.state.orgs.len()
    }

    /// Changes the data of Organization `org` (its index in `start_many`) in place.
    pub fn update_org(&self, org: usize, change: impl FnOnce(&mut ScalewayData)) {
        change(&mut self.state.orgs.write(org));
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state
            .faults
            .lock()
            .expect("no handler panics holding the lock")
    }

    /// Serves `data` from the next request on.
    pub fn set_data(&self, data: ScalewayData) {
        *self.state.orgs.write(0) = data;
    }

    /// Changes the served data in place, e.g. to delete a server between syncs.
    pub fn update(&self, change: impl FnOnce(&mut ScalewayData)) {
        self.update_org(0, change);
    }

    /// Answers the next `n` requests with 429 and `Retry-After: retry_after` seconds.
    pub fn throttle_next(&self, n: usize, retry_after: u32) {
        self.faults()
            .next
            .extend((0..n).map(|_| (429, Some(retry_after))));
    }

    /// Answers the next `n` requests with `status` (a burst of 5xx, say), whatever they
    /// ask.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.faults().next.extend((0..n).map(|_| (status, None)));
    }

    /// Answers every Instance and Block request for `zone` with `status` until cleared.
    pub fn fail_zone(&self, zone: &str, status: u16) {
        self.faults().zones.insert(zone.to_owned(), status);
    }

    /// Answers every Instance and Block request for `zone` with 403, as for a key without
    /// permission there.
    pub fn forbid_zone(&self, zone: &str) {
        self.fail_zone(zone, 403);
    }

    /// Answers every request for the listing `path` (e.g.
    /// `/block/v1/zones/fr-par-1/volumes`) with `status` until cleared, as for a key that
    /// may read one API of a zone but not another.
    pub fn fail_path(&self, path: &str, status: u16) {
        self.faults().paths.insert(path.to_owned(), status);
    }

    /// Ends every zone and listing fault.
    pub fn clear_zone_faults(&self) {
        let mut faults = self.faults();
        faults.zones.clear();
        faults.paths.clear();
    }

    /// Delays every response by `latency`, as a distant API would.
    pub fn set_latency(&self, latency: Duration) {
        self.faults().latency = latency;
    }

    /// Requests received so far, failed and refused ones included.
    pub fn total_requests(&self) -> u64 {
        self.state.requests.total()
    }

    /// Each request received so far as `METHOD /path?query`, in order of arrival.
    pub fn request_log(&self) -> Vec<String> {
        self.state.requests.lines()
    }
}

/// The Organization whose key a request carries, for the handlers.
#[derive(Clone, Copy)]
struct Org(usize);

/// Counts and logs every request, waits the latency, then applies injected faults, the
/// key check (which picks the Organization), its rate limit and zone faults, in that order.
async fn gate(State(state): State<Arc<SimState>>, mut request: Request, next: Next) -> Response {
    let (latency, fault, zone_fault) = {
        let mut faults = state
            .faults
            .lock()
            .expect("no handler panics holding the lock");
        let fault = (!faults.next.is_empty()).then(|| faults.next.remove(0));
        let path = request.uri().path();
        let zone = path
            .strip_prefix("/instance/v1/zones/")
            .or_else(|| path.strip_prefix("/block/v1/zones/"))
            .and_then(|rest| rest.split('/').next());
        let zone_fault = zone
            .and_then(|z| faults.zones.get(z).copied())
            .or_else(|| faults.paths.get(path).copied());
        (faults.latency, fault, zone_fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some((status, retry_after)) = fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, "injected", "fault injected by the test");
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return response;
    }
    if state.empty_products.load(Ordering::Relaxed) && request.uri().path().starts_with("/s3/") {
        return no_buckets();
    }
    let key = request
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match state.orgs.admit(key, None) {
        Ok(org) => {
            request.extensions_mut().insert(Org(org));
        }
        Err(Denied::Throttled(after)) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "rate limit exceeded for this key",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
            return response;
        }
        Err(Denied::Unknown | Denied::Refused) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "denied_authentication",
                "authentication is denied",
            );
        }
    }
    if let Some(status) = zone_fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
        return error(status, "permissions_denied", "insufficient permissions");
    }
    next.run(request).await
}

type Params = Query<HashMap<String, String>>;

async fn projects(
    State(state): State<Arc<SimState>>,
    Extension(Org(org)): Extension<Org>,
    Query(q): Params,
) -> Response {
    let data = state.orgs.read(org);
    list(&data.projects, Endpoint::Paged("projects"), None, &q)
}

async fn iam(
    State(state): State<Arc<SimState>>,
    Extension(Org(org)): Extension<Org>,
    Path(what): Path<String>,
    Query(q): Params,
) -> Response {
    let data = state.orgs.read(org);
    let (items, key) = match what.as_str() {
        "users" => (&data.users, "users"),
        "groups" => (&data.groups, "groups"),
        "applications" => (&data.applications, "applications"),
        "api-keys" => (&data.api_keys, "api_keys"),
        "policies" => (&data.policies, "policies"),
        "rules" => return rules(&data, &q),
        _ => return unmodelled(&state, &what),
    };
    list(items, Endpoint::Paged(key), None, &q)
}

/// The rules of the policy `policy_id` names, which must be one of the Organization's.
fn rules(data: &ScalewayData, q: &HashMap<String, String>) -> Response {
    let Some(policy) = q.get("policy_id") else {
        return invalid("policy_id is required");
    };
    if !data.policies.iter().any(|p| &p.id == policy) {
        let body = json!({
            "message": "resource is not found", "resource": "policy",
            "resource_id": policy, "type": "not_found"
        });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let none = Vec::new();
    let rules = data.rules.get(policy).unwrap_or(&none);
    // Rules carry no owner to filter on: the policy is the filter.
    let unfiltered: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| ["page", "page_size"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    list(rules, Endpoint::Paged("rules"), None, &unfiltered)
}

async fn instance(
    State(state): State<Arc<SimState>>,
    Extension(Org(org)): Extension<Org>,
    Path((zone, what)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    if let Some(unknown) = unknown_zone(&zone) {
        return unknown;
    }
    let data = state.orgs.read(org);
    let (items, key) = match what.as_str() {
        "servers" => (&data.servers, "servers"),
        "volumes" => (&data.volumes, "volumes"),
        "snapshots" => (&data.snapshots, "snapshots"),
        "ips" => (&data.ips, "ips"),
        _ => return unmodelled(&state, &what),
    };
    list(items, Endpoint::Instance(key), Some(&zone), &q)
}

/// A path this simulator does not serve: 404 as the API answers an unknown endpoint, or,
/// once [`ScalewaySim::serve_other_products_empty`] was called, an empty list of the
/// collection the path's last segment names (`.../permission-sets` gives
/// `{"total_count": 0, "permission_sets": []}`, with `X-Total-Count: 0` for clients of
/// the Instance convention).
fn unmodelled(state: &SimState, path: &str) -> Response {
    let collection = path.rsplit('/').next().unwrap_or_default();
    let is_collection = !collection.is_empty()
        && collection
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_');
    if !state.empty_products.load(Ordering::Relaxed) || !is_collection {
        return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    let key = collection.replace('-', "_");
    let mut response = Json(json!({ "total_count": 0, key: [] })).into_response();
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from_static("0"));
    response
}

/// Object Storage, S3-compatible and served apart from the API (`s3.{region}.scw.cloud`,
/// reached as `/s3/{region}/` here): `ListBuckets` of an Organization without buckets,
/// the body S3 gives. Its requests are signed with SigV4, which the simulator does not
/// check: it serves nothing to protect.
fn no_buckets() -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner>\
         <Buckets></Buckets></ListAllMyBucketsResult>",
    )
        .into_response()
}

/// The 404 the API gives for a zone it does not have.
fn unknown_zone(zone: &str) -> Option<Response> {
    (!ZONES.contains(&zone)).then(|| {
        error(
            StatusCode::NOT_FOUND,
            "unknown_zone",
            &format!("unknown zone {zone:?}"),
        )
    })
}

/// Block Storage (SBS): zonal like Instance but paged like Account and IAM, as the
/// recordings show (`total_count` in the body, `project_id`) and the Go SDK's
/// `ListVolumesRequest` says (`page`, `page_size`, `organization_id`).
async fn block(
    State(state): State<Arc<SimState>>,
    Extension(Org(org)): Extension<Org>,
    Path((zone, what)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    if let Some(unknown) = unknown_zone(&zone) {
        return unknown;
    }
    let data = state.orgs.read(org);
    let (items, key) = match what.as_str() {
        "volumes" => (&data.block_volumes, "volumes"),
        "snapshots" => (&data.block_snapshots, "snapshots"),
        _ => return unmodelled(&state, &what),
    };
    list(items, Endpoint::Paged(key), Some(&zone), &q)
}

/// One page of `items`, filtered and paginated as `endpoint` does.
fn list(
    items: &[Item],
    endpoint: Endpoint,
    zone: Option<&str>,
    q: &HashMap<String, String>,
) -> Response {
    let (key, size_param, default_size, org_param, project_param) = match endpoint {
        Endpoint::Paged(key) => (key, "page_size", 20, "organization_id", "project_id"),
        Endpoint::Instance(key) => (key, "per_page", 50, "organization", "project"),
    };
    let number = |name: &str, default: usize| match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| name.to_owned()),
    };
    let (page, size) = match (number("page", 1), number(size_param, default_size)) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(name), _) | (_, Err(name)) => {
            return invalid(&format!("{name} is not a number"));
        }
    };
    if page == 0 || size == 0 || size > ScalewaySim::MAX_PAGE_SIZE {
        return invalid(&format!(
            "page must be at least 1 and {size_param} between 1 and {}",
            ScalewaySim::MAX_PAGE_SIZE
        ));
    }
    let organization = q.get(org_param);
    let project = q.get(project_param);
    let wanted = |i: &&Item| {
        (zone.is_none() || i.zone.as_deref() == zone)
            && project.is_none_or(|p| i.project.as_ref() == Some(p))
            && organization.is_none_or(|o| &i.organization == o)
    };
    // One pass that counts what matches and copies only the page into a body of the
    // right size: the simulator shares the benchmark machine's two cores with the client
    // it serves, and building pages (a list of every match, a body grown by doubling)
    // was an eighth of its CPU samples in a sync of `bench_connections`' 200
    // Organizations.
    let start = (page - 1).saturating_mul(size);
    let end = start.saturating_add(size);
    let mut total = 0;
    let mut page_items: Vec<&str> = Vec::new();
    for item in items.iter().filter(wanted) {
        if (start..end).contains(&total) {
            page_items.push(&item.json);
        }
        total += 1;
    }
    let length: usize = page_items.iter().map(|j| j.len() + 1).sum();
    let mut body = String::with_capacity(length + key.len() + 40);
    body.push_str("{\"");
    body.push_str(key);
    body.push_str("\":[");
    for (n, json) in page_items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push(']');
    if let Endpoint::Paged(_) = endpoint {
        let _ = write!(body, ",\"total_count\":{total}");
    }
    body.push('}');
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Endpoint::Instance(_) = endpoint {
        response
            .headers_mut()
            .insert("x-total-count", HeaderValue::from(total));
    }
    response
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_arguments", message)
}

/// Scaleway's error body: `{"message": ..., "type": ...}`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({ "type": kind, "message": message }))).into_response()
}

impl PerAccount for ScalewaySim {
    type Data = ScalewayData;

    fn accounts(&self) -> &Accounts<ScalewayData> {
        &self.state.orgs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Account;
    use crate::sim::client::{Reply, get};

    fn auth() -> [(&'static str, String); 1] {
        [("X-Auth-Token", ScalewaySim::SECRET_KEY.to_owned())]
    }

    fn call(sim: &ScalewaySim, path: &str) -> Reply {
        get(&format!("{}{path}", sim.url()), &auth())
    }

    fn len(reply: &Reply, key: &str) -> usize {
        reply.json()[key].as_array().unwrap().len()
    }

    #[test]
    fn products_it_does_not_model_are_unknown_until_asked_to_serve_them_empty() {
        let sim = ScalewaySim::start(ScalewayData::sample());
        let sets = "/iam/v1alpha1/permission-sets?page=1";
        assert_eq!(call(&sim, sets).status, 404);
        assert_eq!(call(&sim, "/k8s/v1/regions/fr-par/clusters").status, 404);
        sim.serve_other_products_empty();
        let reply = call(&sim, sets);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["total_count"], 0);
        assert_eq!(len(&reply, "permission_sets"), 0);
        let clusters = call(&sim, "/k8s/v1/regions/fr-par/clusters");
        assert_eq!(len(&clusters, "clusters"), 0);
        let groups = call(&sim, "/instance/v1/zones/fr-par-1/security_groups");
        assert_eq!(len(&groups, "security_groups"), 0);
        // What it models is served as before, and a path that names no list stays unknown.
        assert_eq!(len(&call(&sim, "/iam/v1alpha1/users"), "users"), 2);
        assert_eq!(call(&sim, "/k8s/v1/regions/fr-par/clusters/42").status, 404);
        // Object Storage lists no bucket, whoever signs the request.
        let s3 = get(&format!("{}/s3/fr-par/", sim.url()), &[]);
        assert_eq!(s3.status, 200);
        let body = String::from_utf8_lossy(&s3.body);
        assert!(body.contains("<Buckets></Buckets>"), "{body}");
        // Without the key, the API still refuses.
        assert_eq!(get(&format!("{}{sets}", sim.url()), &[]).status, 401);
    }

    #[test]
    fn serves_the_samples_and_filters_by_zone_and_organization() {
        let sim = ScalewaySim::start(ScalewayData::sample());
        let org = ScalewayData::ORGANIZATION;
        let users = call(&sim, &format!("/iam/v1alpha1/users?organization_id={org}"));
        assert_eq!(users.status, 200);
        assert_eq!(users.json()["total_count"], 2);
        assert_eq!(users.json()["users"][0]["first_name"], "Marge");
        let other = call(&sim, "/iam/v1alpha1/users?organization_id=someone-else");
        assert_eq!(other.json()["total_count"], 0);
        let par = call(&sim, "/instance/v1/zones/fr-par-1/ips");
        assert_eq!(
            (len(&par, "ips"), par.header("x-total-count")),
            (1, Some("1"))
        );
        assert!(
            par.json().get("total_count").is_none(),
            "the Instance API totals in a header"
        );
        let ams = call(&sim, "/instance/v1/zones/nl-ams-1/ips");
        assert_eq!(ams.json()["ips"][0]["state"], "detached");
        assert_eq!(
            call(&sim, "/instance/v1/zones/xx-yyy-9/servers").status,
            404
        );
        assert_eq!(
            len(
                &call(&sim, "/instance/v1/zones/fr-par-1/servers?project=nope"),
                "servers"
            ),
            0
        );
    }

    #[test]
    fn paginates_in_both_conventions_up_to_100() {
        let mut data = ScalewayData::empty("org");
        let project = data.add_project("p");
        data.add_instances(&project, "pl-waw-2", 250);
        data.add_principals(250, 3, 0);
        let sim = ScalewaySim::start(data);
        let servers: Vec<usize> = (1..=4)
            .map(|p| {
                let r = call(
                    &sim,
                    &format!("/instance/v1/zones/pl-waw-2/servers?page={p}&per_page=100"),
                );
                assert_eq!(r.header("x-total-count"), Some("250"));
                len(&r, "servers")
            })
            .collect();
        assert_eq!(servers, [100, 100, 50, 0]);
        let users: Vec<usize> = (1..=3)
            .map(|p| {
                len(
                    &call(&sim, &format!("/iam/v1alpha1/users?page={p}&page_size=100")),
                    "users",
                )
            })
            .collect();
        assert_eq!(users, [100, 100, 50]);
        assert_eq!(len(&call(&sim, "/iam/v1alpha1/users"), "users"), 20);
        assert_eq!(
            len(
                &call(&sim, "/instance/v1/zones/pl-waw-2/servers"),
                "servers"
            ),
            50
        );
        assert_eq!(call(&sim, "/iam/v1alpha1/users?page_size=101").status, 400);
        assert_eq!(
            call(&sim, "/instance/v1/zones/pl-waw-2/volumes?per_page=500").status,
            400
        );
        assert_eq!(call(&sim, "/account/v3/projects?page=0").status, 400);
    }

    #[test]
    fn refuses_a_wrong_key_and_injects_faults() {
        let sim = ScalewaySim::start(ScalewayData::sample());
        let url = format!("{}/account/v3/projects", sim.url());
        assert_eq!(get(&url, &[]).status, 401);
        assert_eq!(get(&url, &[("X-Auth-Token", "nope".into())]).status, 401);
        sim.throttle_next(1, 2);
        sim.fail_next(1, 503);
        let throttled = call(&sim, "/account/v3/projects");
        assert_eq!(
            (throttled.status, throttled.header("retry-after")),
            (429, Some("2"))
        );
        assert_eq!(call(&sim, "/account/v3/projects").status, 503);
        assert_eq!(call(&sim, "/account/v3/projects").status, 200);
        sim.forbid_zone("nl-ams-1");
        assert_eq!(call(&sim, "/instance/v1/zones/nl-ams-1/ips").status, 403);
        assert_eq!(call(&sim, "/instance/v1/zones/fr-par-1/ips").status, 200);
        sim.clear_zone_faults();
        assert_eq!(call(&sim, "/instance/v1/zones/nl-ams-1/ips").status, 200);
        sim.set_latency(Duration::from_millis(1));
        assert_eq!(call(&sim, "/iam/v1alpha1/groups").status, 200);
        assert_eq!(sim.total_requests(), 9);
        assert_eq!(sim.request_log()[0], "GET /account/v3/projects");
    }

    #[test]
    fn many_organizations_see_their_own_data_refuse_and_throttle_apart() {
        let (a, b) = (
            ScalewayData::generate_org(1, 2, 10),
            ScalewayData::generate_org(2, 2, 10),
        );
        assert_eq!(a.resource_count(), b.resource_count());
        assert_ne!(a.organization_id, b.organization_id);
        let ids = |d: &ScalewayData| -> std::collections::BTreeSet<String> {
            d.lists()
                .iter()
                .flat_map(|l| l.iter().map(|i| i.id.clone()))
                .collect()
        };
        assert!(ids(&a).is_disjoint(&ids(&b)), "generated orgs share no id");
        let sim = ScalewaySim::start_many(vec![
            Account::new(a.clone(), "key-a", "").rate_limit(50),
            Account::new(b.clone(), "key-b", "").rate_limit(3),
            Account::new(ScalewayData::sample(), "key-refused", "").refused(),
        ]);
        let as_key = |key: &str, path: &str| {
            get(
                &format!("{}{path}", sim.url()),
                &[("X-Auth-Token", key.to_owned())],
            )
        };
        let projects = |key: &str| -> Vec<String> {
            as_key(key, "/account/v3/projects?page_size=100").json()["projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["organization_id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            projects("key-a"),
            [a.organization_id.clone(), a.organization_id.clone()]
        );
        assert_eq!(
            projects("key-b"),
            [b.organization_id.clone(), b.organization_id.clone()]
        );
        let servers = as_key("key-a", "/instance/v1/zones/fr-par-1/servers");
        assert!(
            servers.json()["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["organization"] == a.organization_id.as_str())
        );
        let refused = as_key("key-refused", "/account/v3/projects");
        assert_eq!(
            (refused.status, refused.json()["type"].as_str()),
            (401, Some("denied_authentication"))
        );
        assert_eq!(as_key("key-unknown", "/account/v3/projects").status, 401);
        // The same burst from both: b's budget of 3 a second runs out, a's of 50 does not.
        crate::sim::accounts::assert_only_the_limited_account_is_throttled(&sim, 200, |i| {
            let r = if i == 0 {
                as_key("key-a", "/iam/v1alpha1/users")
            } else {
                as_key("key-b", "/iam/v1alpha1/users")
            };
            (r.status, r.header("retry-after").map(str::to_string))
        });
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(as_key("key-b", "/iam/v1alpha1/users").status, 200);
        sim.set_rate_limit(1, None);
        assert!((0..10).all(|_| as_key("key-b", "/iam/v1alpha1/groups").status == 200));
    }

    #[test]
    fn generated_estates_are_deterministic_and_span_every_zone() {
        let a = ScalewayData::generate(3, 20);
        assert_eq!(a, ScalewayData::generate(3, 20));
        assert_eq!(a.servers.len(), 60);
        for zone in ZONES {
            assert!(
                a.servers.iter().any(|s| s.zone.as_deref() == Some(zone)),
                "{zone}"
            );
        }
        assert_eq!(
            (a.users.len(), a.groups.len(), a.applications.len()),
            (12, 3, 6)
        );
        assert_eq!(a.api_keys.len(), 18);
        // One per group, the first user's, the first application's, a default one.
        assert_eq!((a.policies.len(), a.rules.len()), (6, 6));
        assert_eq!((a.volumes.len(), a.block_volumes.len()), (60 + 6, 20));
        assert_eq!((a.snapshots.len(), a.ips.len()), (30, 54 + 3));
        // Rules are edges, not nodes.
        assert_eq!(
            a.resource_count(),
            1 + 3 + 12 + 3 + 6 + 18 + 6 + 60 + 66 + 30 + 57 + 20
        );
        let server = a.servers[0].json();
        assert_eq!(server["volumes"]["0"]["id"], a.volumes[0].id);
        assert_eq!(a.ips[0].json()["server"]["id"], a.servers[0].id);
        let mut b = a.clone();
        assert!(b.remove(&a.servers[1].id));
        assert_eq!(b.servers.len(), 59);
        assert!(b.remove(&a.policies[0].id));
        assert_eq!((b.policies.len(), b.rules.len()), (5, 5));
        assert!(!b.remove("nothing-by-that-id"));
    }

    const BLOCK_RECORDING: &str =
        include_str!("../../fixtures/scaleway/recorded/block_snapshots.json");
    const SERVERS_RECORDING: &str =
        include_str!("../../fixtures/scaleway/recorded/servers_public_ips.json");

    #[test]
    fn serves_recorded_block_resources_paged_like_the_block_api() {
        let data = ScalewayData::recorded("org", &[BLOCK_RECORDING]);
        assert_eq!(
            (data.block_volumes.len(), data.block_snapshots.len()),
            (3, 3)
        );
        let sim = ScalewaySim::start(data);
        let page = call(
            &sim,
            "/block/v1/zones/fr-par-1/snapshots?page=1&page_size=1",
        );
        assert_eq!(page.json()["total_count"], 2, "the total is in the body");
        assert_eq!(page.header("x-total-count"), None);
        assert_eq!(len(&page, "snapshots"), 1);
        let page2 = call(
            &sim,
            "/block/v1/zones/fr-par-1/snapshots?page=2&page_size=1",
        );
        assert_ne!(
            page.json()["snapshots"][0]["id"],
            page2.json()["snapshots"][0]["id"]
        );
        let waw = call(&sim, "/block/v1/zones/pl-waw-2/volumes?organization_id=org");
        assert_eq!(waw.json()["volumes"][0]["zone"], "pl-waw-2");
        let project = "4d333544-41be-4b0b-8907-0b9036859747";
        let mine = call(
            &sim,
            &format!("/block/v1/zones/fr-par-1/volumes?project_id={project}"),
        );
        assert_eq!(len(&mine, "volumes"), 2);
        assert_eq!(call(&sim, "/block/v1/zones/it-mil-1/volumes").status, 200);
        sim.forbid_zone("it-mil-1");
        assert_eq!(call(&sim, "/block/v1/zones/it-mil-1/volumes").status, 403);
    }

    #[test]
    fn a_recorded_listing_and_single_gets_make_one_estate() {
        let data = ScalewayData::recorded("org", &[SERVERS_RECORDING]);
        assert_eq!(
            (data.servers.len(), data.ips.len(), data.block_volumes.len()),
            (2, 2, 2)
        );
        assert!(
            data.volumes.is_empty(),
            "SBS volumes are not Instance volumes"
        );
        let server = data.servers[0].json();
        assert_eq!(server["volumes"]["0"]["volume_type"], "sbs_volume");
        assert_eq!(
            data.block_volumes[0].project,
            server["project"].as_str().map(String::from)
        );
    }

    #[test]
    fn serves_policies_and_their_rules_paged_per_organization_and_key() {
        let mut a = ScalewayData::generate_org(1, 3, 1);
        let b = ScalewayData::generate_org(2, 3, 1);
        // 250 rules on one policy, to cross page boundaries.
        let big = a.policies[0].id.clone();
        let rule = a.rules[&big][0].json();
        let ids: Vec<String> = (0..250u64).map(|n| a.uuid(0x72, n)).collect();
        a.rules.insert(
            big.clone(),
            ids.into_iter()
                .map(|id| {
                    let mut r = rule.clone();
                    r["id"] = json!(id);
                    Item::new(&r, &a.organization_id)
                })
                .collect(),
        );
        let sim = ScalewaySim::start_many(vec![
            Account::new(a.clone(), "key-a", ""),
            Account::new(b.clone(), "key-b", ""),
        ]);
        let as_key = |key: &str, path: &str| {
            get(
                &format!("{}{path}", sim.url()),
                &[("X-Auth-Token", key.to_owned())],
            )
        };
        // Six policies each (3 groups, a user's, an application's, a default one).
        let listed = as_key(
            "key-a",
            &format!(
                "/iam/v1alpha1/policies?organization_id={}&page=1&page_size=4",
                a.organization_id
            ),
        );
        assert_eq!(listed.status, 200);
        assert_eq!(listed.json()["total_count"], 6);
        assert_eq!(len(&listed, "policies"), 4);
        assert_eq!(listed.header("x-total-count"), None);
        let second = as_key("key-a", "/iam/v1alpha1/policies?page=2&page_size=4");
        assert_eq!(len(&second, "policies"), 2);
        let other = as_key(
            "key-a",
            &format!(
                "/iam/v1alpha1/policies?organization_id={}",
                b.organization_id
            ),
        );
        assert_eq!(
            other.json()["total_count"],
            0,
            "a key sees its Organization only"
        );
        let theirs = as_key("key-b", "/iam/v1alpha1/policies");
        assert_eq!(
            theirs.json()["policies"][0]["id"],
            b.policies[0].id.as_str()
        );
        assert_eq!(
            as_key("key-a", "/iam/v1alpha1/policies?page_size=101").status,
            400
        );

        let pages: Vec<usize> = (1..=3)
            .map(|p| {
                let r = as_key(
                    "key-a",
                    &format!("/iam/v1alpha1/rules?policy_id={big}&page={p}&page_size=100"),
                );
                assert_eq!(r.json()["total_count"], 250);
                len(&r, "rules")
            })
            .collect();
        assert_eq!(pages, [100, 100, 50]);
        let default_size = as_key("key-a", &format!("/iam/v1alpha1/rules?policy_id={big}"));
        assert_eq!(len(&default_size, "rules"), 20);
        let one = &a.policies[1].id;
        let rules = as_key("key-a", &format!("/iam/v1alpha1/rules?policy_id={one}"));
        assert_eq!(rules.json()["rules"][0], a.rules[one][0].json());
        // Another Organization's policy is unknown to this key, whichever filter is sent.
        let foreign = as_key(
            "key-a",
            &format!(
                "/iam/v1alpha1/rules?policy_id={}&organization_id={}",
                b.policies[0].id, b.organization_id
            ),
        );
        assert_eq!(
            (foreign.status, foreign.json()["resource"].as_str()),
            (404, Some("policy"))
        );
        assert_eq!(as_key("key-a", "/iam/v1alpha1/rules").status, 400);
        assert_eq!(
            as_key(
                "key-a",
                &format!("/iam/v1alpha1/rules?policy_id={big}&page_size=500")
            )
            .status,
            400
        );
        assert_eq!(
            as_key("nope", &format!("/iam/v1alpha1/rules?policy_id={big}")).status,
            401
        );
        assert_eq!(
            get(&format!("{}/iam/v1alpha1/policies", sim.url()), &[]).status,
            401
        );
    }

    const POLICIES_RECORDING: &str =
        include_str!("../../fixtures/scaleway/recorded/iam_policies.json");
    const POLICY_PROJECT_RECORDING: &str =
        include_str!("../../fixtures/scaleway/recorded/iam_policy_project_id.json");

    #[test]
    fn recorded_policy_pages_and_rules_make_one_estate() {
        let org = "105bdce1-64c0-48ab-899d-868455867ecf";
        let data = ScalewayData::recorded(org, &[POLICIES_RECORDING, POLICY_PROJECT_RECORDING]);
        // The listing's 25 (pages of 20 and 5) and the one got alone.
        assert_eq!(data.policies.len(), 26);
        assert_eq!(data.rules.len(), 3);
        let alone = "896896de-95e8-44ce-988c-e470301984fe";
        assert_eq!(data.rules[alone][0].json()["project_ids"][0], org);
        let sim = ScalewaySim::start(data);
        let page = call(
            &sim,
            &format!("/iam/v1alpha1/policies?organization_id={org}&page=1&page_size=100"),
        );
        assert_eq!(page.json()["total_count"], 26);
        let rules = call(&sim, &format!("/iam/v1alpha1/rules?policy_id={alone}"));
        assert_eq!(rules.json()["total_count"], 1);
        // A listed policy whose rules the recording does not hold has none.
        let audit = "c1214ec3-4d8e-4f04-96b7-07158a0ea805";
        let none = call(&sim, &format!("/iam/v1alpha1/rules?policy_id={audit}"));
        assert_eq!(
            (none.status, none.json()["total_count"].as_u64()),
            (200, Some(0))
        );
    }
}
