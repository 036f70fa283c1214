//! The Critical plugin end to end (issue 9): the `infragraph` binary syncing the simulated
//! ArangoDB of `infragraph_tests::sim::CriticalSim` into a fresh store, the graph read back
//! through `export`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::process::Command;
use std::time::Duration;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::graph::Graph;
use infragraph_tests::sim::{
    CriticalData, CriticalSim, PASSWORD_HASH, REPO_CREDENTIAL, TOKEN_HASH,
};
use serde_json::{Map, Value as Json, json};

/// `infragraph <global> sync critical` against `sim` with `env` on top of a working
/// setup, the run report written to `report.json`.
fn command(w: &Work, sim: &CriticalSim, env: &[(&str, &str)], global: &[&str]) -> Command {
    let store = w.store();
    let mut args = global.to_vec();
    args.extend([
        "sync",
        "critical",
        "--store",
        &store,
        "--report",
        "report.json",
    ]);
    let mut cmd = w.cmd(&args);
    cmd.env("DB_CONNECTION_STRING", sim.url())
        .env("DB_USER", CriticalSim::USER)
        .env("DB_PASSWORD", CriticalSim::PASSWORD)
        // Two rows per batch: every collection of the sample spans several.
        .env("CRITICAL_BATCH_SIZE", "2");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn sync(w: &Work, sim: &CriticalSim, env: &[(&str, &str)]) -> Ran {
    run(&mut command(w, sim, env, &[]))
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

fn failed(ran: &Ran) -> String {
    assert_eq!(
        ran.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    format!("{}\n{}", ran.stdout, ran.stderr)
}

fn instance(sim: &CriticalSim) -> String {
    format!("{}/_db/unnamed", sim.url())
}

/// Properties without the bookkeeping every record carries, keys sorted.
fn plain(p: &Map<String, Json>) -> BTreeMap<String, Json> {
    p.iter()
        .filter(|(k, _)| !k.starts_with('_') && *k != "firstseen" && *k != "lastupdated")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every relationship as `TYPE from to {props}`, sorted: a failed comparison reads as a
/// diff.
fn edge_lines(g: &Graph) -> Vec<String> {
    let mut out: Vec<String> = g
        .edges
        .iter()
        .map(|((rel, (_, from), (_, to)), p)| {
            let p = plain(p);
            if p.is_empty() {
                format!("{rel} {from} {to}")
            } else {
                format!("{rel} {from} {to} {}", json!(p))
            }
        })
        .collect();
    out.sort();
    out
}

/// Every node as `Label id {props}`, sorted.
fn node_lines(g: &Graph) -> Vec<String> {
    let mut out: Vec<String> = g
        .nodes
        .iter()
        .map(|((label, id), (_, p))| {
            let mut p = plain(p);
            p.remove("id");
            format!("{label} {id} {}", json!(p))
        })
        .collect();
    out.sort();
    out
}

fn sorted(lines: Vec<String>) -> Vec<String> {
    let mut lines = lines;
    lines.sort();
    lines
}

/// Flag names of a bit set, as the plugin writes them.
fn flags(bits: u32) -> Vec<&'static str> {
    [
        "FETCH", "LIST", "NOTIFY", "CREATE", "MODIFY", "CUSTOM1", "CUSTOM2",
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| bits & (1 << i) != 0)
    .map(|(_, n)| n)
    .collect()
}

const T0: &str = "2026-02-23T10:00:00Z";
const R: &str = "FETCH | LIST | NOTIFY";
const W: &str = "FETCH | LIST | NOTIFY | CREATE | MODIFY";
const ROOT: &str = "FETCH | LIST | NOTIFY | CREATE | MODIFY | CUSTOM1 | CUSTOM2";

/// The graph a sync of [`CriticalData::sample`] must write, worked out by hand from the
/// fixture: its nodes, and every relationship, computed ones included.
fn expected_sample(sim: &CriticalSim, data: &CriticalData) -> (Vec<String>, Vec<String>) {
    let hash: HashMap<String, Json> = COLLECTIONS_WITH_HASH
        .iter()
        .flat_map(|c| data.docs(c))
        .map(|d| {
            (
                d["_key"].as_str().unwrap().to_owned(),
                d["hash_code"].clone(),
            )
        })
        .collect();
    let node = |label: &str, id: &str, props: Json| {
        let mut p: BTreeMap<String, Json> = serde_json::from_value(props).unwrap();
        if let Some(h) = hash.get(id) {
            p.insert("hash_code".into(), h.clone());
        }
        format!("{label} {id} {}", json!(p))
    };
    let inst = instance(sim);
    let group = |id: &str, name: &str, extra: Json| {
        let mut p = json!({"name": name, "description": format!("The {name} group"),
            "created_at": T0, "created_by": "u_carol", "updated_at": T0, "updated_by": "u_carol"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        node("CriticalGroup", id, p)
    };
    let nodes = vec![
        format!(
            "CriticalInstance {inst} {}",
            json!({"database": "unnamed", "url": sim.url()})
        ),
        node(
            "CriticalUser",
            "u_alice",
            json!({"name": "Alice Example", "gender": "", "job_title": "Engineer",
                   "manager": "u_carol", "avatar_ulid": "01HZX3V6Q9AVATAR0000000000",
                   "last_sign_in_at": "2026-03-01T08:30:00Z", "created_at": T0,
                   "updated_at": "2026-03-02T09:00:00Z", "updated_by": "u_carol",
                   "labels": ["team=platform"], "annotations": [format!("registered_at={T0}")],
                   "revision": 3, "changed_by": "u_carol", "changed_at": "2026-03-02T09:00:00Z"}),
        ),
        node(
            "CriticalUser",
            "u_bob",
            json!({"name": "Bob Builder", "gender": "", "job_title": "Developer",
                   "manager": "u_carol", "last_sign_in_at": "2026-02-28T17:15:00Z",
                   "created_at": T0, "updated_at": T0}),
        ),
        node(
            "CriticalUser",
            "u_carol",
            json!({"name": "Carol Chief", "gender": "", "job_title": "CTO",
                   "created_at": T0, "updated_at": T0}),
        ),
        group("g_all", "all", json!({})),
        group(
            "g_devs",
            "devs",
            json!({"revision": 2, "changed_by": "u_bob", "changed_at": "2026-02-25T16:45:00Z"}),
        ),
        group("g_leads", "leads", json!({})),
        group("g_ops", "ops", json!({})),
        group("g_oncall", "oncall", json!({})),
        node(
            "CriticalServiceAccount",
            "sa_ci-bot",
            json!({"name": "ci-bot", "description": "ci-bot account", "created_at": T0,
                   "created_by": "u_carol", "updated_at": T0, "updated_by": "u_carol",
                   "revision": 1, "changed_by": "u_carol", "changed_at": T0}),
        ),
        node(
            "CriticalPipelineAccount",
            "pa_build-runner",
            json!({"name": "build-runner", "description": "build-runner account",
                   "scope": "api-v2", "created_at": T0, "created_by": "u_carol",
                   "updated_at": T0, "updated_by": "u_carol"}),
        ),
        node(
            "CriticalProject",
            "api-v2",
            json!({"name": "API v2", "description": "API v2 project",
                   "enabled_services": ["tasks", "pipelines", "wikis"], "created_at": T0,
                   "created_by": "u_alice", "updated_at": T0, "updated_by": "u_alice",
                   "revision": 1, "changed_by": "u_alice", "changed_at": T0}),
        ),
        node(
            "CriticalProject",
            "mobile-app",
            json!({"name": "Mobile app", "description": "Mobile app project",
                   "enabled_services": ["deployments"], "created_at": T0,
                   "created_by": "u_alice", "updated_at": T0, "updated_by": "u_alice"}),
        ),
        node(
            "CriticalRepository",
            "https://github.com/acme/api-v2",
            json!({"url": "https://github.com/acme/api-v2", "provider": "github"}),
        ),
        node(
            "CriticalRepository",
            "https://gitlab.com/acme/shared-lib",
            json!({"url": "https://gitlab.com/acme/shared-lib", "provider": "gitlab"}),
        ),
        node(
            "CriticalPermission",
            "adm_user_manager",
            json!({"description": "Full control over users, groups and memberships"}),
        ),
        node(
            "CriticalPermission",
            "adm_config_editor",
            json!({"description": "Edit the global configuration"}),
        ),
        node(
            "CriticalPermission",
            "usr_create_groups",
            json!({"description": "Create new groups (granted on registration)"}),
        ),
        node(
            "CriticalPermission",
            "usr_create_projects",
            json!({"description": "Create new projects"}),
        ),
    ];

    let mut edges = Vec::new();
    for to in [
        "u_alice",
        "u_bob",
        "u_carol",
        "g_all",
        "g_devs",
        "g_leads",
        "g_ops",
        "g_oncall",
        "sa_ci-bot",
        "pa_build-runner",
        "api-v2",
        "mobile-app",
        "https://github.com/acme/api-v2",
        "https://gitlab.com/acme/shared-lib",
        "adm_user_manager",
        "adm_config_editor",
        "usr_create_groups",
        "usr_create_projects",
    ] {
        edges.push(format!("RESOURCE {inst} {to}"));
    }
    let link = |project: &str, url: &str, name: &str| {
        format!(
            "LINKS {project} {url} {}",
            json!({"auth_method": "token", "default_branch": "main", "name": name})
        )
    };
    edges.push(link(
        "api-v2",
        "https://github.com/acme/api-v2",
        "Main repo",
    ));
    edges.push(link(
        "api-v2",
        "https://gitlab.com/acme/shared-lib",
        "Shared library",
    ));
    edges.push(link(
        "mobile-app",
        "https://gitlab.com/acme/shared-lib",
        "Shared lib",
    ));
    for (from, to) in [
        ("u_alice", "g_devs"),
        ("u_alice", "g_leads"),
        ("u_bob", "g_devs"),
        ("u_bob", "g_ops"),
        ("u_carol", "g_leads"),
        ("sa_ci-bot", "g_all"),
        ("pa_build-runner", "g_devs"),
        ("g_devs", "g_all"),
        ("g_leads", "g_devs"),
        ("g_ops", "g_oncall"),
        ("g_oncall", "g_ops"),
        ("g_oncall", "g_all"),
    ] {
        edges.push(format!("MEMBER_OF {from} {to}"));
    }
    // Nested: u_carol -> g_leads -> g_devs -> g_all. Cyclic: g_ops <-> g_oncall, and a
    // group is never its own effective member.
    for (from, to, depth) in [
        ("u_alice", "g_devs", 1),
        ("u_alice", "g_leads", 1),
        ("u_alice", "g_all", 2),
        ("u_bob", "g_devs", 1),
        ("u_bob", "g_ops", 1),
        ("u_bob", "g_all", 2),
        ("u_bob", "g_oncall", 2),
        ("u_carol", "g_leads", 1),
        ("u_carol", "g_devs", 2),
        ("u_carol", "g_all", 3),
        ("sa_ci-bot", "g_all", 1),
        ("pa_build-runner", "g_devs", 1),
        ("pa_build-runner", "g_all", 2),
        ("g_devs", "g_all", 1),
        ("g_leads", "g_devs", 1),
        ("g_leads", "g_all", 2),
        ("g_ops", "g_oncall", 1),
        ("g_ops", "g_all", 2),
        ("g_oncall", "g_ops", 1),
        ("g_oncall", "g_all", 1),
    ] {
        edges.push(format!(
            "EFFECTIVE_MEMBER_OF {from} {to} {}",
            json!({ "depth": depth })
        ));
    }
    let inherited = |via: &[&str]| -> Json {
        if via.is_empty() {
            json!({"inherited": false})
        } else {
            json!({"inherited": false, "via": via})
        }
    };
    for (from, perm, direct, via) in [
        ("u_carol", "adm_user_manager", true, &[][..]),
        ("g_leads", "adm_config_editor", true, &[]),
        ("u_alice", "adm_config_editor", false, &["g_leads"]),
        ("u_carol", "adm_config_editor", false, &["g_leads"]),
        ("g_all", "usr_create_groups", true, &[]),
        ("u_alice", "usr_create_groups", true, &["g_all"]),
        ("u_bob", "usr_create_groups", false, &["g_all"]),
        ("u_carol", "usr_create_groups", false, &["g_all"]),
        ("sa_ci-bot", "usr_create_groups", false, &["g_all"]),
        ("pa_build-runner", "usr_create_groups", false, &["g_all"]),
        ("g_devs", "usr_create_groups", false, &["g_all"]),
        ("g_leads", "usr_create_groups", false, &["g_all"]),
        ("g_ops", "usr_create_groups", false, &["g_all"]),
        ("g_oncall", "usr_create_groups", false, &["g_all"]),
        ("g_oncall", "usr_create_projects", true, &[]),
        ("u_bob", "usr_create_projects", false, &["g_oncall"]),
        ("g_ops", "usr_create_projects", false, &["g_oncall"]),
    ] {
        let mut p = inherited(via);
        p["inherited"] = json!(!direct);
        edges.push(format!("HAS_PERMISSION {from} {perm} {p}"));
    }
    let read = |g: &str| format!("{g}: *: {R}");
    for (from, to, bits, direct, via, scope, grants) in [
        (
            "u_alice",
            "api-v2",
            7,
            true,
            &["g_devs"][..],
            &["*", "wikis"][..],
            vec!["direct: wikis: FETCH".to_string(), read("g_devs")],
        ),
        (
            "u_alice",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "u_alice",
            "g_devs",
            7,
            false,
            &["g_leads"],
            &["*"],
            vec![read("g_leads")],
        ),
        (
            "u_bob",
            "api-v2",
            7,
            false,
            &["g_devs"],
            &["*"],
            vec![read("g_devs")],
        ),
        (
            "u_bob",
            "mobile-app",
            31,
            false,
            &["g_all", "g_oncall"],
            &["*", "deployments"],
            vec![read("g_all"), format!("g_oncall: deployments: {W}")],
        ),
        (
            "u_bob",
            "sa_ci-bot",
            16,
            false,
            &["g_ops"],
            &["*"],
            vec!["g_ops: *: MODIFY".into()],
        ),
        (
            "u_carol",
            "api-v2",
            127,
            true,
            &["g_devs"],
            &["*"],
            vec![format!("direct: *: {ROOT}"), read("g_devs")],
        ),
        (
            "u_carol",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "u_carol",
            "g_devs",
            127,
            true,
            &["g_leads"],
            &["*"],
            vec![format!("direct: *: {ROOT}"), read("g_leads")],
        ),
        (
            "sa_ci-bot",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "pa_build-runner",
            "api-v2",
            31,
            true,
            &["g_devs"],
            &["*", "pipelines"],
            vec![format!("direct: pipelines: {W}"), read("g_devs")],
        ),
        (
            "pa_build-runner",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "g_all",
            "mobile-app",
            7,
            true,
            &[],
            &["*"],
            vec![format!("direct: *: {R}")],
        ),
        (
            "g_devs",
            "api-v2",
            7,
            true,
            &[],
            &["*"],
            vec![format!("direct: *: {R}")],
        ),
        (
            "g_devs",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "g_leads",
            "g_devs",
            7,
            true,
            &[],
            &["*"],
            vec![format!("direct: *: {R}")],
        ),
        (
            "g_leads",
            "api-v2",
            7,
            false,
            &["g_devs"],
            &["*"],
            vec![read("g_devs")],
        ),
        (
            "g_leads",
            "mobile-app",
            7,
            false,
            &["g_all"],
            &["*"],
            vec![read("g_all")],
        ),
        (
            "g_ops",
            "sa_ci-bot",
            16,
            true,
            &[],
            &["*"],
            vec!["direct: *: MODIFY".into()],
        ),
        (
            "g_ops",
            "mobile-app",
            31,
            false,
            // g_oncall is one step away, g_all two: nearest first.
            &["g_oncall", "g_all"],
            &["*", "deployments"],
            vec![read("g_all"), format!("g_oncall: deployments: {W}")],
        ),
        (
            "g_oncall",
            "mobile-app",
            31,
            true,
            &["g_all"],
            &["*", "deployments"],
            vec![format!("direct: deployments: {W}"), read("g_all")],
        ),
        (
            "g_oncall",
            "sa_ci-bot",
            16,
            false,
            &["g_ops"],
            &["*"],
            vec!["g_ops: *: MODIFY".into()],
        ),
    ] {
        // Entries scoped to one service are kept apart from the project-wide flags:
        // `permissions` holds only what the entries scoped `*` grant.
        let names = [
            "FETCH", "LIST", "NOTIFY", "CREATE", "MODIFY", "CUSTOM1", "CUSTOM2",
        ];
        let wide: u32 = grants
            .iter()
            .filter_map(|g| {
                let mut parts = g.splitn(3, ": ");
                let (_, scope, flags) = (parts.next()?, parts.next()?, parts.next()?);
                (scope == "*").then_some(flags)
            })
            .flat_map(|flags| flags.split(" | "))
            .filter_map(|f| names.iter().position(|n| *n == f))
            .fold(0, |acc, i| acc | (1 << i));
        assert_eq!(
            bits & wide,
            wide,
            "{from} {to}: the expected union holds the wide flags"
        );
        let bits = wide;
        let services: Vec<String> = grants
            .iter()
            .filter_map(|g| {
                let mut parts = g.splitn(3, ": ");
                let (_, scope, flags) = (parts.next()?, parts.next()?, parts.next()?);
                (scope != "*").then(|| format!("{scope}: {flags}"))
            })
            .collect();
        let mut p = json!({"permissions": flags(bits), "permission_bits": bits,
                           "scope": scope, "inherited": !direct, "grants": grants});
        if !services.is_empty() {
            p["service_permissions"] = json!(services);
        }
        if !via.is_empty() {
            p["via"] = json!(via);
        }
        let p: BTreeMap<String, Json> = serde_json::from_value(p).unwrap();
        edges.push(format!("CAN_ACCESS {from} {to} {}", json!(p)));
        // The entries naming the principal itself, alone: what the access walk starts
        // from. (The sample's entries each have their own scope, so no two merge.)
        let own: Vec<(&str, &str)> = grants
            .iter()
            .filter_map(|g| {
                let mut parts = g.splitn(3, ": ");
                let (source, scope, flags) = (parts.next()?, parts.next()?, parts.next()?);
                (source == "direct").then_some((scope, flags))
            })
            .collect();
        if !own.is_empty() {
            let own_wide: u32 = own
                .iter()
                .filter(|(scope, _)| *scope == "*")
                .flat_map(|(_, flags)| flags.split(" | "))
                .filter_map(|f| names.iter().position(|n| *n == f))
                .fold(0, |acc, i| acc | (1 << i));
            let own_services: Vec<String> = own
                .iter()
                .filter(|(scope, _)| *scope != "*")
                .map(|(scope, flags)| format!("{scope}: {flags}"))
                .collect();
            let mut p = json!({"permissions": flags(own_wide), "permission_bits": own_wide});
            if !own_services.is_empty() {
                p["service_permissions"] = json!(own_services);
            }
            let p: BTreeMap<String, Json> = serde_json::from_value(p).unwrap();
            edges.push(format!("IN_ACL_OF {from} {to} {}", json!(p)));
        }
    }
    (sorted(nodes), sorted(edges))
}

const COLLECTIONS_WITH_HASH: [&str; 5] = [
    "users",
    "groups",
    "service_accounts",
    "pipeline_accounts",
    "projects",
];

#[test]
fn the_sample_organisation_syncs_to_the_hand_written_graph() {
    let w = Work::new("critical-sample");
    let data = CriticalData::sample();
    let sim = CriticalSim::start(data.clone());
    let ran = sync(&w, &sim, &[]);
    ok(&ran);
    let g = w.graph();
    let (nodes, edges) = expected_sample(&sim, &data);
    // 92 facts and computed edges, and 9 IN_ACL_OF: the ACL entries naming a principal.
    assert_eq!((nodes.len(), edges.len()), (19, 101));
    assert_eq!(node_lines(&g).join("\n"), nodes.join("\n"));
    assert_eq!(edge_lines(&g).join("\n"), edges.join("\n"));
    for ((label, id), (labels, p)) in &g.nodes {
        let principal = [
            "CriticalUser",
            "CriticalGroup",
            "CriticalServiceAccount",
            "CriticalPipelineAccount",
        ]
        .contains(&label.as_str());
        assert_eq!(
            labels.contains(&"UserAccount".to_string()),
            principal,
            "{label} {id}: {labels:?}"
        );
        assert_eq!(
            (&p["_source"], &p["_scope"]),
            (&json!("critical"), &json!(instance(&sim)))
        );
    }
    let report = w.report();
    assert_eq!(report["status"], "succeeded", "{report}");
    let summary = report["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("1 membership cycles"), "{summary}");
    assert!(
        ran.stderr
            .contains("membership cycle among groups g_oncall, g_ops"),
        "the cycle is reported: {}",
        ran.stderr
    );
    assert!(sim.rejected_queries().is_empty());
    // A batch of two rows: every collection but permissions and events took several.
    let continued = sim
        .request_log()
        .iter()
        .filter(|l| l.starts_with("POST /_db/unnamed/_api/cursor/"))
        .count();
    assert!(continued > 10, "{:#?}", sim.request_log());
    assert_eq!(sim.open_cursors(), 0, "every cursor was read to its end");
}

#[test]
fn a_jwt_from_open_auth_gives_the_same_graph() {
    let data = CriticalData::sample();
    let sim = CriticalSim::start(data.clone());
    let w = Work::new("critical-jwt");
    let ran = sync(
        &w,
        &sim,
        &[
            ("DB_AUTH", "jwt"),
            ("DB_PASSWORD", ""),
            ("DB_JWT_PASSWORD", CriticalSim::PASSWORD),
        ],
    );
    ok(&ran);
    let (nodes, edges) = expected_sample(&sim, &data);
    let g = w.graph();
    assert_eq!(node_lines(&g), nodes);
    assert_eq!(edge_lines(&g), edges);
    assert_eq!(sim.request_log()[0], "POST /_open/auth");
    assert_eq!(sim.issued_tokens().len(), 1);
}

/// A DB_PASSWORD left set from basic auth is neither read nor sent while signing in with
/// a JWT (the credential applies only when auth is basic): before, the host sent it as
/// Basic auth in place of the token, the database refused it, and the error blamed
/// DB_JWT_PASSWORD. And a JWT sync without DB_JWT_PASSWORD is refused before it starts,
/// naming that variable, not DB_PASSWORD.
#[test]
fn a_leftover_basic_password_is_not_sent_while_signing_in_with_a_jwt() {
    let sim = CriticalSim::start(CriticalData::sample());
    let w = Work::new("critical-jwt-leftover");
    let leftover = "leftover-basic-password";
    let ran = sync(
        &w,
        &sim,
        &[
            ("DB_AUTH", "JWT"),
            ("DB_PASSWORD", leftover),
            ("DB_JWT_PASSWORD", CriticalSim::PASSWORD),
        ],
    );
    ok(&ran);
    assert_eq!(sim.issued_tokens().len(), 1);
    assert!(!ran.stderr.contains(leftover) && !ran.stdout.contains(leftover));
    let missing = failed(&sync(
        &w,
        &sim,
        &[("DB_AUTH", "jwt"), ("DB_PASSWORD", leftover)],
    ));
    assert!(
        missing.contains(
            "credential \"jwt_password\" is missing: set the environment \
                          variable DB_JWT_PASSWORD"
        ),
        "{missing}"
    );
    assert!(!missing.contains("DB_PASSWORD "), "{missing}");
}

#[test]
fn an_expired_jwt_is_renewed_once_mid_sync() {
    let data = CriticalData::sample();
    let sim = CriticalSim::start(data.clone());
    let jwt = [
        ("DB_AUTH", "jwt"),
        ("DB_PASSWORD", ""),
        ("DB_JWT_PASSWORD", CriticalSim::PASSWORD),
    ];
    // Phase 1 and the first round of phase 2 pass; the JWT expires in the middle.
    sim.expire_jwts_after(6);
    let w = Work::new("critical-jwt-renewed");
    ok(&sync(&w, &sim, &jwt));
    let (nodes, edges) = expected_sample(&sim, &data);
    let g = w.graph();
    assert_eq!(node_lines(&g), nodes);
    assert_eq!(edge_lines(&g), edges, "no batch lost or read twice");
    let sign_ins = sim
        .request_log()
        .iter()
        .filter(|l| *l == "POST /_open/auth")
        .count();
    assert_eq!(sign_ins, 2);
    assert_eq!(sim.open_cursors(), 0);
}

#[test]
fn a_soft_deleted_document_disappears_on_the_next_sync() {
    let w = Work::new("critical-deleted");
    let sim = CriticalSim::start(CriticalData::sample());
    ok(&sync(&w, &sim, &[]));
    let g = w.graph();
    assert!(g.has("CriticalUser", "u_bob"));
    for (label, id) in [
        ("CriticalUser", "u_dave"),
        ("CriticalGroup", "g_old"),
        ("CriticalServiceAccount", "sa_old-bot"),
        ("CriticalProject", "legacy"),
        ("CriticalRepository", "https://github.com/acme/legacy"),
    ] {
        assert!(!g.has(label, id), "{id} is soft-deleted");
    }
    sim.update(|d| d.soft_delete("users", "u_bob", "2026-03-10T00:00:00Z", "u_carol"));
    ok(&sync(&w, &sim, &[]));
    let g = w.graph();
    assert!(!g.has("CriticalUser", "u_bob"));
    assert!(
        g.edge_ids()
            .iter()
            .all(|(_, a, b)| a != "u_bob" && b != "u_bob"),
        "nor any of his relationships"
    );
    assert_eq!(w.report()["nodes"]["CriticalUser"]["deleted"], 1);
    assert!(g.has("CriticalUser", "u_alice"));
}

#[test]
fn soft_deleted_documents_are_written_with_their_deletion_when_asked() {
    let w = Work::new("critical-include-deleted");
    let sim = CriticalSim::start(CriticalData::sample());
    ok(&sync(&w, &sim, &[("CRITICAL_INCLUDE_DELETED", "true")]));
    let g = w.graph();
    let at = "2026-03-01T12:00:00Z";
    for (label, id, by) in [
        ("CriticalUser", "u_dave", "u_carol"),
        ("CriticalGroup", "g_old", "u_carol"),
        ("CriticalServiceAccount", "sa_old-bot", "u_carol"),
        ("CriticalProject", "legacy", "u_alice"),
    ] {
        let p = g.node(label, id);
        assert_eq!(
            (&p["deleted_at"], &p["deleted_by"]),
            (&json!(at), &json!(by)),
            "{id}"
        );
    }
    assert!(
        g.node("CriticalUser", "u_alice")
            .get("deleted_at")
            .is_none()
    );
    assert!(g.has("CriticalRepository", "https://github.com/acme/legacy"));
    let edges = g.edge_ids();
    let has = |rel: &str, a: &str, b: &str| edges.contains(&(rel.into(), a.into(), b.into()));
    // Facts of the database are written: the membership left behind, the ACL entries.
    assert!(has("MEMBER_OF", "u_dave", "g_devs"));
    assert!(has("CAN_ACCESS", "u_bob", "legacy"));
    assert!(has("CAN_ACCESS", "g_old", "mobile-app"));
    // But a deleted principal or group passes nothing on.
    assert!(
        !edges
            .iter()
            .any(|(rel, a, _)| rel == "EFFECTIVE_MEMBER_OF" && a == "u_dave"),
        "u_dave's membership left behind grants nothing"
    );
    // The live graph is unchanged, computed edges included.
    let (_, live_edges) = expected_sample(&sim, &CriticalData::sample());
    let lines = edge_lines(&g);
    for e in live_edges {
        assert!(lines.contains(&e), "missing {e}");
    }
}

#[test]
fn secrets_and_hashes_appear_nowhere() {
    for (mode, env) in [
        ("basic", vec![]),
        (
            "jwt",
            vec![
                ("DB_AUTH", "jwt"),
                ("DB_PASSWORD", ""),
                ("DB_JWT_PASSWORD", CriticalSim::PASSWORD),
            ],
        ),
    ] {
        let w = Work::new(&format!("critical-secrets-{mode}"));
        let sim = CriticalSim::start(CriticalData::sample());
        let mut env = env;
        env.push(("INFRAGRAPH_LOG", "trace"));
        let ran = run(&mut command(&w, &sim, &env, &["-v"]));
        ok(&ran);
        let store = w.store();
        let report = std::fs::read_to_string(w.0.join("report.json")).unwrap();
        let export = run(&mut w.cmd(&["export", "--format", "jsonl", "--store", &store]));
        let runs = run(&mut w.cmd(&["runs", "--json", "--store", &store]));
        let mut secrets = vec![
            PASSWORD_HASH.to_string(),
            TOKEN_HASH.to_string(),
            REPO_CREDENTIAL.to_string(),
            CriticalSim::PASSWORD.to_string(),
        ];
        secrets.extend(sim.issued_tokens());
        for (what, text) in [
            ("stdout", &ran.stdout),
            ("log", &ran.stderr),
            ("report", &report),
            ("graph", &export.stdout),
            ("run history", &runs.stdout),
        ] {
            assert!(!text.is_empty(), "{mode}: {what} is empty");
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "{mode}: {s} is in the {what}");
            }
            for field in ["password_hash", "token_hash", "\"credential\"", "snapshot"] {
                assert!(!text.contains(field), "{mode}: {field} is in the {what}");
            }
        }
    }
}

/// Effective groups by walking from each principal, straight from the documents.
fn walk_memberships(data: &CriticalData) -> BTreeSet<(String, String, u64)> {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for m in data.docs("memberships") {
        let key = |v: &Json| v.as_str().unwrap().split_once('/').unwrap().1.to_owned();
        groups
            .entry(key(&m["_from"]))
            .or_default()
            .push(key(&m["_to"]));
    }
    let mut out = BTreeSet::new();
    for p in groups.keys() {
        let mut depth = HashMap::from([(p.clone(), 0u64)]);
        let mut queue = VecDeque::from([p.clone()]);
        while let Some(x) = queue.pop_front() {
            let d = depth[&x];
            if d == 10 {
                continue;
            }
            for y in groups.get(&x).into_iter().flatten() {
                if !depth.contains_key(y) {
                    depth.insert(y.clone(), d + 1);
                    queue.push_back(y.clone());
                }
            }
        }
        for (g, d) in depth {
            if &g != p {
                out.insert((p.clone(), g, d));
            }
        }
    }
    out
}

#[test]
fn a_large_organisation_pages_through_every_cursor() {
    let w = Work::new("critical-paging");
    let data = CriticalData::generate(1_200, 60, 40, 10);
    let sim = CriticalSim::start(data.clone());
    ok(&sync(&w, &sim, &[("CRITICAL_BATCH_SIZE", "100")]));
    let g = w.graph();
    assert_eq!(g.count("CriticalUser"), data.count("users"));
    assert_eq!(
        g.count("CriticalServiceAccount"),
        data.count("service_accounts")
    );
    assert_eq!(
        g.count("CriticalPipelineAccount"),
        data.count("pipeline_accounts")
    );
    assert_eq!(g.count("CriticalGroup"), 60);
    assert_eq!(g.count("CriticalProject"), 40);
    assert_eq!(g.edges_of("MEMBER_OF"), data.count("memberships"));
    let effective: BTreeSet<(String, String, u64)> = g
        .edges
        .iter()
        .filter(|((rel, _, _), _)| rel == "EFFECTIVE_MEMBER_OF")
        .map(|((_, a, b), p)| (a.1.clone(), b.1.clone(), p["depth"].as_u64().unwrap()))
        .collect();
    assert_eq!(effective, walk_memberships(&data));
    let log = sim.request_log();
    let users_batches = data.count("users").div_ceil(100);
    let continued = log
        .iter()
        .filter(|l| l.starts_with("POST /_db/unnamed/_api/cursor/"))
        .count();
    assert!(continued >= users_batches - 1, "{continued} continuations");
    assert_eq!(sim.open_cursors(), 0);
    assert!(sim.rejected_queries().is_empty());
}

#[test]
fn memberships_nested_past_ten_levels_are_cut_and_reported() {
    let w = Work::new("critical-cut");
    let mut data = CriticalData::empty();
    for i in 0..12 {
        data.insert(
            "groups",
            json!({"_key": format!("g_{i:02}"), "name": format!("level {i}"), "deletion": null}),
        );
        if i > 0 {
            data.add_membership(&format!("groups/g_{i:02}"), &format!("g_{:02}", i - 1));
        }
    }
    data.insert(
        "users",
        json!({"_key": "u_deep", "deletion": null, "personal": {"name": "Deep"}}),
    );
    data.add_membership("users/u_deep", "g_11");
    let sim = CriticalSim::start(data);
    let ran = sync(&w, &sim, &[]);
    ok(&ran);
    let g = w.graph();
    let of_deep: Vec<_> = g
        .edge_ids()
        .into_iter()
        .filter(|(rel, a, _)| rel == "EFFECTIVE_MEMBER_OF" && a == "u_deep")
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(of_deep.len(), 10, "g_11 (1) down to g_02 (10): {of_deep:?}");
    assert!(!of_deep.contains(&"g_01".to_string()));
    let summary = w.report()["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.contains("2 principals cut at 10 levels"),
        "{summary}"
    );
    assert!(
        ran.stderr.contains("more than 10 levels deep"),
        "{}",
        ran.stderr
    );
}

#[test]
fn an_acl_entry_that_does_not_decode_is_left_out_with_a_warning() {
    let w = Work::new("critical-bad-acl");
    let mut data = CriticalData::sample();
    assert!(data.edit("projects", "mobile-app", |p| {
        p["acl"]["list"]
            .as_array_mut()
            .unwrap()
            .push(json!({"permissions": "READ | SUDO", "principals": ["u_alice"]}));
    }));
    let sim = CriticalSim::start(data);
    let ran = sync(&w, &sim, &[]);
    ok(&ran);
    assert!(
        ran.stderr.contains("1 ACL entries") && ran.stderr.contains("\"SUDO\""),
        "{}",
        ran.stderr
    );
    // The rest of the graph is as before: u_alice still reaches mobile-app through g_all only.
    let (_, edges) = expected_sample(&sim, &CriticalData::sample());
    assert_eq!(edge_lines(&w.graph()), edges);
}

#[test]
fn wrong_credentials_fail_naming_the_variables() {
    let w = Work::new("critical-badauth");
    let sim = CriticalSim::start(CriticalData::sample());
    let out = failed(&sync(&w, &sim, &[("DB_PASSWORD", "wrong-password")]));
    assert!(out.contains("DB_PASSWORD") && out.contains("401"), "{out}");
    let out = failed(&sync(
        &w,
        &sim,
        &[
            ("DB_AUTH", "jwt"),
            ("DB_PASSWORD", ""),
            ("DB_JWT_PASSWORD", "wrong-password"),
        ],
    ));
    assert!(
        out.contains("DB_JWT_PASSWORD") && out.contains("Wrong credentials"),
        "{out}"
    );
    assert!(!out.contains(CriticalSim::PASSWORD));
    let out = failed(&sync(&w, &sim, &[("DB_AUTH", "jwt"), ("DB_PASSWORD", "")]));
    assert!(
        out.contains("DB_JWT_PASSWORD"),
        "jwt without its password: {out}"
    );
}

#[test]
fn a_missing_collection_or_database_is_named() {
    let w = Work::new("critical-missing");
    let sim = CriticalSim::start(CriticalData::sample());
    sim.update(|d| d.drop_collection("pipeline_accounts"));
    let out = failed(&sync(&w, &sim, &[]));
    assert!(
        out.contains("collection or view not found: pipeline_accounts") && out.contains("DB_NAME"),
        "{out}"
    );
    assert_eq!(sim.open_cursors(), 0, "the other cursors were deleted");
    let out = failed(&sync(&w, &sim, &[("DB_NAME", "elsewhere")]));
    assert!(
        out.contains("\"elsewhere\" does not exist") && out.contains("DB_NAME"),
        "{out}"
    );
}

#[test]
fn an_expired_cursor_says_what_to_raise() {
    let w = Work::new("critical-expired");
    let sim = CriticalSim::start(CriticalData::sample());
    sim.cap_cursor_ttl(Duration::ZERO);
    let out = failed(&sync(&w, &sim, &[]));
    assert!(
        out.contains("cursor was gone") && out.contains("CRITICAL_CURSOR_TTL"),
        "{out}"
    );
}

#[test]
fn bad_settings_are_config_errors() {
    let w = Work::new("critical-config");
    let sim = CriticalSim::start(CriticalData::sample());
    for (var, value) in [
        ("CRITICAL_BATCH_SIZE", "0"),
        ("CRITICAL_INCLUDE_DELETED", "maybe"),
        ("DB_AUTH", "kerberos"),
        ("DB_NAME", "a/b"),
    ] {
        let out = failed(&sync(&w, &sim, &[(var, value)]));
        assert!(out.contains(var), "{var}: {out}");
    }
    assert_eq!(sim.total_requests(), 0);
}
