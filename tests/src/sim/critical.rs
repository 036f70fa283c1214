//! The slice of ArangoDB's HTTP API that `plugins/critical` uses, over documents shaped as
//! Critical stores them (`docs/providers/critical.md`):
//! secrets included, so tests can prove the plugin never reads them.
//!
//! - `POST /_open/auth` issues a JWT for a user and password; every other route takes
//!   HTTP Basic or `Authorization: bearer <jwt>`, and answers 401 otherwise.
//! - `POST /_db/<db>/_api/cursor` runs a query, `POST /_db/<db>/_api/cursor/<id>` reads
//!   the next batch, `DELETE` frees a cursor. Batches are real: `batchSize` rows, `hasMore`,
//!   and a cursor left idle past its `ttl` is gone (404, error 1600).
//! - Errors are ArangoDB's: `{"error": true, "errorNum": N, "errorMessage": ..., "code": S}`.
//!
//! It does not parse AQL. It knows the plugin's queries by their text (whitespace aside)
//! and answers each with a native implementation of what it asks; any other query is
//! refused with an AQL syntax error and counted, so the plugin and the simulator cannot
//! drift apart silently.
//!
//! Many databases ([`CriticalSim::start_many`]): each a name and an [`Account`] whose
//! user (`id`) and password (`secret`) may read that database only, as an ArangoDB user
//! with rights on one database. Basic auth or a JWT of another database's user answers
//! 401; a refused account's user answers 401 `Wrong credentials` at `/_open/auth` and
//! 401 on its database; a rate-limited database answers past its budget with 429 and
//! `Retry-After` (as a rate-limiting proxy in front of ArangoDB would).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::accounts::{Account, Accounts, Denied, PerAccount};
use super::server::{RequestLog, Server};

/// The collections Critical creates.
pub const COLLECTIONS: [&str; 9] = [
    "users",
    "groups",
    "service_accounts",
    "pipeline_accounts",
    "memberships",
    "permissions",
    "projects",
    "resource_history",
    "resource_events",
];

/// A Critical database: its documents by collection, each kept as JSON text so a large
/// organisation costs little memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriticalData {
    collections: BTreeMap<String, Vec<String>>,
}

impl CriticalData {
    /// Every collection, empty.
    pub fn empty() -> CriticalData {
        CriticalData {
            collections: COLLECTIONS
                .iter()
                .map(|c| (c.to_string(), Vec::new()))
                .collect(),
        }
    }

    /// Adds a document to `collection`.
    pub fn insert(&mut self, collection: &str, doc: Value) {
        self.collections
            .get_mut(collection)
            .unwrap_or_else(|| panic!("no collection {collection}"))
            .push(doc.to_string());
    }

    /// The documents of `collection`.
    pub fn docs(&self, collection: &str) -> Vec<Value> {
        self.collections[collection]
            .iter()
            .map(|d| serde_json::from_str(d).expect("documents are JSON"))
            .collect()
    }

    /// How many documents `collection` holds.
    pub fn count(&self, collection: &str) -> usize {
        self.collections.get(collection).map_or(0, Vec::len)
    }

    /// Drops `collection`, as if Critical never created it.
    pub fn drop_collection(&mut self, collection: &str) {
        self.collections.remove(collection);
    }

    /// Changes the document `key` of `collection` in place; whether it was there.
    pub fn edit(&mut self, collection: &str, key: &str, change: impl FnOnce(&mut Value)) -> bool {
        let Some(docs) = self.collections.get_mut(collection) else {
            return false;
        };
        for d in docs.iter_mut() {
            let mut v: Value = serde_json::from_str(d).expect("documents are JSON");
            if v["_key"] == key {
                change(&mut v);
                *d = v.to_string();
                return true;
            }
        }
        false
    }

    /// Soft-deletes `key` as Critical does: `deletion` set, its memberships moved into
    /// `disconnected_edges`.
    pub fn soft_delete(&mut self, collection: &str, key: &str, at: &str, by: &str) {
        let mut disconnected = Vec::new();
        if let Some(edges) = self.collections.get_mut("memberships") {
            edges.retain(|e| {
                let v: Value = serde_json::from_str(e).expect("JSON");
                let touches = v["principal"] == key || v["group"] == key;
                if touches {
                    disconnected.push(json!({
                        "collection": "memberships", "key": v["_key"],
                        "from": v["_from"], "to": v["_to"]
                    }));
                }
                !touches
            });
        }
        let found = self.edit(collection, key, |d| {
            d["deletion"] = json!({
                "deleted_at": at, "deleted_by": by, "disconnected_edges": disconnected
            });
        });
        assert!(found, "no {key} in {collection}");
    }

    /// `principal` (e.g. `users/u_alice`) becomes a member of group `g`.
    pub fn add_membership(&mut self, principal: &str, group: &str) {
        let (_, member) = principal.split_once('/').expect("collection/key");
        self.insert(
            "memberships",
            json!({
                "_key": format!("{member}::{group}"),
                "_from": principal, "_to": format!("groups/{group}"),
                "principal": member, "group": group
            }),
        );
    }
}

/// A resource document with the fields `#[crit_resource]` injects.
fn resource(key: &str, created: &str, by: Option<&str>, fields: Value) -> Value {
    let mut doc = json!({
        "_key": key, "_id": key, "_rev": "_h1",
        "meta": {
            "labels": {}, "annotations": {},
            "created_at": created, "created_by": by,
            "updated_at": created, "updated_by": by
        },
        "deletion": null,
        "hash_code": format!("{:016x}", fnv(key)),
    });
    for (k, v) in fields.as_object().expect("fields are an object") {
        doc[k] = v.clone();
    }
    doc
}

/// FNV-1a, as Critical hashes desired state: here only to make plausible hash codes.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The password hash every fixture user has: it must never reach the graph.
pub const PASSWORD_HASH: &str = "$2b$12$SIMULATEDbcryptHASHthatMUSTneverLEAKxxxxxxxxxxxxxxxxxx";
/// The token hash of every fixture service and pipeline account.
pub const TOKEN_HASH: &str = "$2b$12$SIMULATEDtokenHASHthatMUSTneverLEAKyyyyyyyyyyyyyyyyyyyy";
/// The credential of the fixture's repositories.
pub const REPO_CREDENTIAL: &str = "ghp_SIMULATEDrepoCREDENTIALneverLEAK0000";

impl CriticalData {
    /// The hand-written organisation the end-to-end tests expect a known graph from:
    ///
    /// - users `u_alice`, `u_bob`, `u_carol`, and `u_dave`, soft-deleted (one membership
    ///   left behind);
    /// - groups `g_all`; `g_devs` in `g_all`; `g_leads` in `g_devs`; `g_ops` and `g_oncall`
    ///   members of each other (a cycle), `g_oncall` in `g_all`; `g_old`, soft-deleted;
    /// - service accounts `sa_ci-bot` (in `g_all`) and `sa_old-bot` (soft-deleted); the
    ///   pipeline account `pa_build-runner` (in `g_devs`);
    /// - projects `api-v2` and `mobile-app`, sharing a repository, and `legacy`,
    ///   soft-deleted; ACLs on projects, `g_devs` and `sa_ci-bot`, with permissions as
    ///   numbers and as flag text;
    /// - the four super-permissions, granted to users and groups;
    /// - history (snapshots holding the secrets) and sign-in events.
    pub fn sample() -> CriticalData {
        let mut d = CriticalData::empty();
        let t0 = "2026-02-23T10:00:00Z";
        let user = |key: &str, name: &str, title: &str, manager: Option<&str>| {
            resource(
                key,
                t0,
                None,
                json!({
                    "password_hash": PASSWORD_HASH,
                    "personal": {"name": name, "gender": "", "job_title": title, "manager": manager},
                    "avatar_ulid": null
                }),
            )
        };
        let mut alice = user("u_alice", "Alice Example", "Engineer", Some("u_carol"));
        alice["meta"]["labels"] = json!({"team": "platform"});
        alice["meta"]["annotations"] = json!({"registered_at": t0});
        alice["meta"]["updated_at"] = json!("2026-03-02T09:00:00Z");
        alice["meta"]["updated_by"] = json!("u_carol");
        alice["avatar_ulid"] = json!("01HZX3V6Q9AVATAR0000000000");
        d.insert("users", alice);
        d.insert(
            "users",
            user("u_bob", "Bob Builder", "Developer", Some("u_carol")),
        );
        d.insert("users", user("u_carol", "Carol Chief", "CTO", None));
        d.insert(
            "users",
            user("u_dave", "Dave Departed", "Intern", Some("u_carol")),
        );

        let group = |key: &str, name: &str, acl: Value| {
            resource(
                key,
                t0,
                Some("u_carol"),
                json!({"name": name, "description": format!("The {name} group"),
                       "acl": {"list": acl, "last_mod_date": t0}}),
            )
        };
        d.insert("groups", group("g_all", "all", json!([])));
        d.insert(
            "groups",
            group(
                "g_devs",
                "devs",
                json!([{"permissions": "ROOT", "principals": ["u_carol"]},
                       {"permissions": 7, "principals": ["g_leads"]}]),
            ),
        );
        d.insert("groups", group("g_leads", "leads", json!([])));
        d.insert("groups", group("g_ops", "ops", json!([])));
        d.insert("groups", group("g_oncall", "oncall", json!([])));
        d.insert("groups", group("g_old", "old", json!([])));

        let account = |key: &str, name: &str, acl: Value| {
            resource(
                key,
                t0,
                Some("u_carol"),
                json!({"name": name, "description": format!("{name} account"),
                       "token_hash": TOKEN_HASH, "acl": {"list": acl, "last_mod_date": t0}}),
            )
        };
        d.insert(
            "service_accounts",
            account(
                "sa_ci-bot",
                "ci-bot",
                json!([{"permissions": "MODIFY", "principals": ["g_ops"]}]),
            ),
        );
        d.insert(
            "service_accounts",
            account("sa_old-bot", "old-bot", json!([])),
        );
        let mut runner = account("pa_build-runner", "build-runner", json!([]));
        runner["scope"] = json!("api-v2");
        d.insert("pipeline_accounts", runner);

        let repo = |url: &str, provider: &str, name: &str| {
            json!({"url": url, "provider": provider, "name": name, "default_branch": "main",
                   "auth_method": "token", "credential": REPO_CREDENTIAL})
        };
        let project = |key: &str, name: &str, repos: Value, services: Value, acl: Value| {
            resource(
                key,
                t0,
                Some("u_alice"),
                json!({"name": name, "description": format!("{name} project"),
                       "repositories": repos, "enabled_services": services,
                       "acl": {"list": acl, "last_mod_date": t0}}),
            )
        };
        d.insert(
            "projects",
            project(
                "api-v2",
                "API v2",
                json!([repo("https://github.com/acme/api-v2", "github", "Main repo"),
                       repo("https://gitlab.com/acme/shared-lib", "gitlab", "Shared library")]),
                json!(["tasks", "pipelines", "wikis"]),
                json!([{"permissions": 127, "principals": ["u_carol"]},
                       {"permissions": "READ", "principals": ["g_devs"]},
                       {"permissions": "READ | CREATE | MODIFY", "principals": ["pa_build-runner"], "scope": "pipelines"},
                       {"permissions": "FETCH", "principals": ["u_alice"], "scope": "wikis"}]),
            ),
        );
        d.insert(
            "projects",
            project(
                "mobile-app",
                "Mobile app",
                json!([repo(
                    "https://gitlab.com/acme/shared-lib",
                    "gitlab",
                    "Shared lib"
                )]),
                json!(["deployments"]),
                json!([{"permissions": 7, "principals": ["g_all"]},
                       {"permissions": "WRITE", "principals": ["g_oncall"], "scope": "deployments"},
                       {"permissions": "READ", "principals": ["g_old"]}]),
            ),
        );
        d.insert(
            "projects",
            project(
                "legacy",
                "Legacy",
                json!([repo("https://github.com/acme/legacy", "github", "Old")]),
                json!([]),
                json!([{"permissions": "ROOT", "principals": ["u_bob"]}]),
            ),
        );

        for (p, g) in [
            ("users/u_alice", "g_devs"),
            ("users/u_alice", "g_leads"),
            ("users/u_bob", "g_devs"),
            ("users/u_bob", "g_ops"),
            ("users/u_carol", "g_leads"),
            ("users/u_dave", "g_devs"),
            ("service_accounts/sa_ci-bot", "g_all"),
            ("pipeline_accounts/pa_build-runner", "g_devs"),
            ("groups/g_devs", "g_all"),
            ("groups/g_leads", "g_devs"),
            ("groups/g_ops", "g_oncall"),
            ("groups/g_oncall", "g_ops"),
            ("groups/g_oncall", "g_all"),
            ("groups/g_old", "g_all"),
        ] {
            d.add_membership(p, g);
        }
        let at = "2026-03-01T12:00:00Z";
        d.soft_delete("users", "u_dave", at, "u_carol");
        d.soft_delete("groups", "g_old", at, "u_carol");
        d.soft_delete("service_accounts", "sa_old-bot", at, "u_carol");
        d.soft_delete("projects", "legacy", at, "u_alice");
        // Critical disconnects a deleted user's memberships; one left behind (a crash
        // between the two writes) must grant nothing.
        d.add_membership("users/u_dave", "g_devs");

        for (key, who) in [
            ("adm_user_manager", json!(["u_carol"])),
            ("adm_config_editor", json!(["g_leads"])),
            ("usr_create_groups", json!(["g_all", "u_alice"])),
            ("usr_create_projects", json!(["g_oncall"])),
        ] {
            d.insert(
                "permissions",
                json!({"_key": key, "_id": format!("permissions/{key}"), "principals": who}),
            );
        }

        let history = |kind: &str, key: &str, revision: u32, by: &str, at: &str, snap: Value| {
            json!({
                "_key": format!("{kind}_{key}_{revision:06}"),
                "resource_kind": kind, "resource_key": key, "revision": revision,
                "snapshot": snap, "changed_by": by, "changed_at": at
            })
        };
        let secret_snapshot = json!({"password_hash": PASSWORD_HASH, "token_hash": TOKEN_HASH});
        for (kind, key, revision, by, at) in [
            ("users", "u_alice", 3, "u_carol", "2026-03-02T09:00:00Z"),
            ("users", "u_alice", 1, "u_alice", t0),
            ("users", "u_alice", 2, "u_alice", "2026-02-24T08:00:00Z"),
            ("groups", "g_devs", 1, "u_carol", t0),
            ("groups", "g_devs", 2, "u_bob", "2026-02-25T16:45:00Z"),
            ("projects", "api-v2", 1, "u_alice", t0),
            ("service_accounts", "sa_ci-bot", 1, "u_carol", t0),
            ("users", "u_dave", 1, "u_dave", t0),
        ] {
            d.insert(
                "resource_history",
                history(kind, key, revision, by, at, secret_snapshot.clone()),
            );
        }
        let event = |key: &str, kind: &str, at: &str, n: u64| {
            json!({
                "_key": format!("ev_{kind}_{n}"), "resource_kind": "users",
                "resource_key": key, "event_type": kind, "timestamp": at,
                "actor": key, "details": null
            })
        };
        d.insert(
            "resource_events",
            event("u_alice", "sign_in", "2026-02-23T10:00:00Z", 1),
        );
        d.insert(
            "resource_events",
            event("u_alice", "sign_in", "2026-03-01T08:30:00Z", 2),
        );
        // Later than her last sign-in, but not a sign-in.
        d.insert(
            "resource_events",
            event("u_alice", "password_reset", "2026-03-05T07:00:00Z", 3),
        );
        d.insert(
            "resource_events",
            event("u_bob", "sign_in", "2026-02-28T17:15:00Z", 4),
        );
        d
    }

    /// A large organisation, the same on every call: `principals` principals (four in
    /// five users, the rest service and pipeline accounts in equal parts), `groups`
    /// groups in trees nested `depth` levels deep (`depth` 10 is Critical's limit), and
    /// `projects` projects. Each principal is in two groups; each project's ACL names
    /// two groups, a user and a pipeline account. Every group has a history entry, every
    /// user a sign-in.
    pub fn generate(principals: usize, groups: usize, projects: usize, depth: usize) -> Self {
        let mut d = CriticalData::empty();
        let t0 = "2026-01-01T00:00:00Z";
        let depth = depth.max(1);
        // Groups in trees of `depth` levels: group i's parent is i - width, where width =
        // groups / depth, so level k holds groups k*width .. (k+1)*width.
        let width = groups.div_ceil(depth).max(1);
        for i in 0..groups {
            let key = format!("g_{i:05}");
            let acl = json!({"list": [{"permissions": "READ", "principals": [format!("g_{:05}", (i + 1) % groups)]}],
                             "last_mod_date": t0});
            d.insert(
                "groups",
                resource(
                    &key,
                    t0,
                    Some("u_0000000"),
                    json!({"name": format!("group {i}"), "description": null, "acl": acl}),
                ),
            );
            if i >= width {
                d.add_membership(&format!("groups/{key}"), &format!("g_{:05}", i - width));
            }
            d.insert(
                "resource_history",
                json!({"_key": format!("groups_{key}_000001"), "resource_kind": "groups",
                       "resource_key": key, "revision": 1, "snapshot": {"name": key},
                       "changed_by": "u_0000000", "changed_at": t0}),
            );
        }
        let users = principals * 4 / 5;
        let service = (principals - users) / 2;
        // Members join groups at every level, deepest most often.
        let pick = |n: usize, salt: usize| -> String {
            let h = fnv(&format!("{n}/{salt}")) as usize;
            format!("g_{:05}", h % groups.max(1))
        };
        for n in 0..principals {
            let (collection, key) = if n < users {
                ("users", format!("u_{n:07}"))
            } else if n < users + service {
                ("service_accounts", format!("sa_{n:07}"))
            } else {
                ("pipeline_accounts", format!("pa_{n:07}"))
            };
            let doc = if collection == "users" {
                resource(
                    &key,
                    t0,
                    None,
                    json!({"password_hash": PASSWORD_HASH,
                           "personal": {"name": format!("User {n}"), "gender": "",
                                        "job_title": "Engineer", "manager": null},
                           "avatar_ulid": null}),
                )
            } else {
                resource(
                    &key,
                    t0,
                    Some("u_0000000"),
                    json!({"name": key, "description": null, "token_hash": TOKEN_HASH,
                           "scope": null, "acl": {"list": [], "last_mod_date": t0}}),
                )
            };
            d.insert(collection, doc);
            if groups > 0 {
                let (a, b) = (pick(n, 1), pick(n, 2));
                d.add_membership(&format!("{collection}/{key}"), &a);
                if b != a {
                    d.add_membership(&format!("{collection}/{key}"), &b);
                }
            }
            if collection == "users" {
                d.insert(
                    "resource_events",
                    json!({"_key": format!("ev_sign_in_{n}"), "resource_kind": "users",
                           "resource_key": key, "event_type": "sign_in",
                           "timestamp": "2026-02-01T00:00:00Z", "actor": key, "details": null}),
                );
            }
        }
        for p in 0..projects {
            let key = format!("project-{p:05}");
            let acl = json!({"list": [
                {"permissions": "READ", "principals": [pick(p, 3)]},
                {"permissions": "WRITE", "principals": [pick(p, 4)], "scope": "tasks"},
                {"permissions": 127, "principals": [format!("u_{:07}", p % users.max(1))]},
                {"permissions": "READ | CREATE", "principals": [format!("pa_{:07}", users + service + p % (principals - users - service).max(1))], "scope": "pipelines"}
            ], "last_mod_date": t0});
            d.insert(
                "projects",
                resource(
                    &key,
                    t0,
                    Some("u_0000000"),
                    json!({"name": format!("Project {p}"), "description": null,
                           "repositories": [{"url": format!("https://git.example/p/{p}"),
                                             "provider": "git", "name": null,
                                             "default_branch": "main", "auth_method": "token",
                                             "credential": REPO_CREDENTIAL}],
                           "enabled_services": ["tasks", "pipelines"], "acl": acl}),
                ),
            );
        }
        for (key, who) in [
            ("adm_user_manager", json!(["u_0000000"])),
            ("usr_create_groups", json!(["g_00000"])),
            (
                "usr_create_projects",
                json!([format!("g_{:05}", groups / 2)]),
            ),
        ] {
            d.insert("permissions", json!({"_key": key, "principals": who}));
        }
        d
    }
}

/// A cursor's remaining rows.
struct Cursor {
    /// The database it reads.
    db: usize,
    rows: Vec<String>,
    next: usize,
    batch_size: usize,
    ttl: Duration,
    touched: Instant,
}

#[derive(Default)]
struct Faults {
    /// Caps every cursor's ttl, e.g. to zero so the second batch finds it expired.
    ttl_cap: Option<Duration>,
    /// Requests a JWT still authenticates before every JWT issued so far expires, once.
    jwt_budget: Option<u64>,
}

struct SimState {
    dbs: Accounts<CriticalData>,
    /// The name of each database of `dbs`.
    names: Vec<String>,
    /// Added before every response.
    latency: Mutex<Duration>,
    /// Each JWT issued, and the database its user may read.
    tokens: Mutex<HashMap<String, usize>>,
    cursors: Mutex<HashMap<String, Cursor>>,
    next_id: AtomicU64,
    faults: Mutex<Faults>,
    rejected: Mutex<Vec<String>>,
    deleted_cursors: AtomicU64,
    requests: RequestLog,
}

/// The simulated ArangoDB; see the module docs.
pub struct CriticalSim {
    server: Server,
    state: Arc<SimState>,
}

impl CriticalSim {
    /// The database the simulator serves.
    pub const DATABASE: &'static str = "unnamed";
    /// The user with read access.
    pub const USER: &'static str = "infragraph";
    /// Its password.
    pub const PASSWORD: &'static str = "arango-Sim-pw-3141";

    /// Serves `data` as database [`CriticalSim::DATABASE`] to [`CriticalSim::USER`].
    pub fn start(data: CriticalData) -> CriticalSim {
        CriticalSim::start_many(vec![(
            CriticalSim::DATABASE.to_owned(),
            Account::new(data, CriticalSim::USER, CriticalSim::PASSWORD),
        )])
    }

    /// Serves each database of `dbs` (its name, and the account of the user who may read
    /// it: `id` the user, `secret` the password), on one port. Single-database methods
    /// (`update`) act on the first.
    pub fn start_many(dbs: Vec<(String, Account<CriticalData>)>) -> CriticalSim {
        let (names, accounts): (Vec<String>, Vec<Account<CriticalData>>) = dbs.into_iter().unzip();
        let state = Arc::new(SimState {
            dbs: Accounts::new(accounts),
            names,
            latency: Mutex::new(Duration::ZERO),
            tokens: Mutex::default(),
            cursors: Mutex::default(),
            next_id: AtomicU64::new(1000),
            faults: Mutex::default(),
            rejected: Mutex::default(),
            deleted_cursors: AtomicU64::new(0),
            requests: RequestLog::default(),
        });
        let router = state.requests.around(
            Router::new()
                .route("/_db/{db}/_api/cursor", post(create))
                .route(
                    "/_db/{db}/_api/cursor/{id}",
                    post(next_batch).delete(delete_cursor),
                )
                .layer(middleware::from_fn_with_state(state.clone(), gate))
                .route("/_open/auth", post(sign_in))
                .fallback(|request: Request| async move {
                    let path = request.uri().path().to_owned();
                    arango_error(
                        StatusCode::NOT_FOUND,
                        404,
                        &format!("unknown path '{path}'"),
                    )
                })
                .with_state(state.clone()),
        );
        CriticalSim {
            server: Server::start("critical-sim", router),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `DB_CONNECTION_STRING`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Changes the served data in place.
    pub fn update(&self, change: impl FnOnce(&mut CriticalData)) {
        self.update_db(0, change);
    }

    /// Changes the data of database `db` (its index in `start_many`) in place.
    pub fn update_db(&self, db: usize, change: impl FnOnce(&mut CriticalData)) {
        change(&mut self.state.dbs.write(db));
    }

    /// Delays every response by `latency`, as a distant server would.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .state
            .latency
            .lock()
            .expect("no handler panics holding the lock") = latency;
    }

    /// Caps the ttl of cursors created from now on: `Duration::ZERO` makes every cursor
    /// expire before its second batch.
    pub fn cap_cursor_ttl(&self, cap: Duration) {
        self.state
            .faults
            .lock()
            .expect("no handler panics holding the lock")
            .ttl_cap = Some(cap);
    }

    /// Lets the JWTs issued so far authenticate `n` more requests, then expires them all
    /// (once), as ArangoDB does when a session times out mid-sync.
    pub fn expire_jwts_after(&self, n: u64) {
        self.state
            .faults
            .lock()
            .expect("no handler panics holding the lock")
            .jwt_budget = Some(n);
    }

    /// Queries refused because the simulator does not know them.
    pub fn rejected_queries(&self) -> Vec<String> {
        self.state
            .rejected
            .lock()
            .expect("no handler panics holding the lock")
            .clone()
    }

    /// Cursors still open (not read to their end, not deleted, not expired).
    pub fn open_cursors(&self) -> usize {
        let mut cursors = self
            .state
            .cursors
            .lock()
            .expect("no handler panics holding the lock");
        cursors.retain(|_, c| c.touched.elapsed() < c.ttl);
        cursors.len()
    }

    /// Every JWT issued so far: secrets a test must not find in the graph or the logs.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state
            .tokens
            .lock()
            .expect("no handler panics holding the lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Cursors freed by a `DELETE`.
    pub fn deleted_cursors(&self) -> u64 {
        self.state.deleted_cursors.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn total_requests(&self) -> u64 {
        self.state.requests.total()
    }

    /// Each request as `METHOD /path`, in order of arrival.
    pub fn request_log(&self) -> Vec<String> {
        self.state.requests.lines()
    }
}

/// ArangoDB's error body.
fn arango_error(status: StatusCode, num: u32, message: &str) -> Response {
    let body = json!({"error": true, "errorNum": num, "errorMessage": message,
                      "code": status.as_u16()});
    (status, Json(body)).into_response()
}

/// The database a request names (`/_db/<name>/...`), for the handlers.
#[derive(Clone, Copy)]
struct Db(usize);

/// Waits the latency; then HTTP Basic or a JWT this simulator issued, of a user of the
/// database the path names, else 401 as ArangoDB answers it; then that database's rate
/// limit. A database that does not exist answers 404 (error 1228) to a user of any.
async fn gate(State(state): State<Arc<SimState>>, mut request: Request, next: Next) -> Response {
    let latency = *state
        .latency
        .lock()
        .expect("no handler panics holding the lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let name = request
        .uri()
        .path()
        .strip_prefix("/_db/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let db = state.names.iter().position(|n| n == name);
    let Some(user_of) = authorized(&state, request.headers()) else {
        return arango_error(
            StatusCode::UNAUTHORIZED,
            401,
            "not authorized to execute this request",
        );
    };
    let Some(db) = db else {
        return arango_error(StatusCode::NOT_FOUND, 1228, "database not found");
    };
    if user_of != db {
        return arango_error(
            StatusCode::UNAUTHORIZED,
            401,
            "not authorized to execute this request",
        );
    }
    if let Err(Denied::Throttled(after)) = state.dbs.spend(db) {
        let mut r = arango_error(StatusCode::TOO_MANY_REQUESTS, 429, "too many requests");
        r.headers_mut().insert(
            header::RETRY_AFTER,
            after.to_string().parse().expect("a number"),
        );
        return r;
    }
    request.extensions_mut().insert(Db(db));
    next.run(request).await
}

/// The database whose user authenticates the request (HTTP Basic with a user of an
/// account not refused, or a live JWT), if any.
fn authorized(state: &SimState, headers: &HeaderMap) -> Option<usize> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = BASE64.decode(value.trim()).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            state.dbs.find(user, Some(password)).ok()
        }
        "bearer" => {
            let mut tokens = state
                .tokens
                .lock()
                .expect("no handler panics holding the lock");
            let db = *tokens.get(value.trim())?;
            let mut faults = state
                .faults
                .lock()
                .expect("no handler panics holding the lock");
            match faults.jwt_budget {
                Some(0) => {
                    faults.jwt_budget = None;
                    tokens.clear();
                    None
                }
                Some(n) => {
                    faults.jwt_budget = Some(n - 1);
                    Some(db)
                }
                None => Some(db),
            }
        }
        _ => None,
    }
}

async fn sign_in(State(state): State<Arc<SimState>>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (user, password) = (v["username"].as_str(), v["password"].as_str());
    let db = match (user, password) {
        (Some(u), Some(p)) => state.dbs.find(u, Some(p)).ok(),
        _ => None,
    };
    let Some(db) = db else {
        return arango_error(StatusCode::UNAUTHORIZED, 401, "Wrong credentials");
    };
    let n = state.next_id.fetch_add(1, Ordering::SeqCst);
    let jwt = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.sim{n:x}.{:016x}",
        fnv(&format!("{n}"))
    );
    state
        .tokens
        .lock()
        .expect("no handler panics holding the lock")
        .insert(jwt.clone(), db);
    (StatusCode::OK, Json(json!({ "jwt": jwt }))).into_response()
}

async fn create(
    State(state): State<Arc<SimState>>,
    Extension(Db(db)): Extension<Db>,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return arango_error(StatusCode::BAD_REQUEST, 600, "VPack error: invalid JSON");
    };
    let Some(query) = body["query"].as_str() else {
        return arango_error(
            StatusCode::BAD_REQUEST,
            10,
            "query is empty or not a string",
        );
    };
    let batch_size = match &body["batchSize"] {
        Value::Null => 1000,
        v => match v.as_u64() {
            Some(n) if n > 0 => n as usize,
            _ => return arango_error(StatusCode::BAD_REQUEST, 10, "batchSize must be positive"),
        },
    };
    let ttl = Duration::from_secs(body["ttl"].as_u64().unwrap_or(30));
    let bind = body["bindVars"].as_object().cloned().unwrap_or_default();
    let rows = {
        let data = state.dbs.read(db);
        run_query(&data, query, &bind)
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(QueryError::Unknown) => {
            eprintln!("critical-sim: refusing a query it does not know:\n{query}");
            state
                .rejected
                .lock()
                .expect("no handler panics holding the lock")
                .push(query.to_owned());
            return arango_error(
                StatusCode::BAD_REQUEST,
                1501,
                "AQL: syntax error, the simulator knows only the queries of \
                 plugins/critical/src/queries.rs (while parsing)",
            );
        }
        Err(QueryError::Arango(status, num, message)) => {
            return arango_error(status, num, &message);
        }
    };
    let ttl = match state.faults.lock().expect("no panics").ttl_cap {
        Some(cap) => ttl.min(cap),
        None => ttl,
    };
    let cursor = Cursor {
        db,
        rows,
        next: 0,
        batch_size,
        ttl,
        touched: Instant::now(),
    };
    let id = state.next_id.fetch_add(1, Ordering::SeqCst).to_string();
    batch(&state, id, cursor, StatusCode::CREATED)
}

/// The cursor's next batch; keeps the cursor if rows remain.
fn batch(state: &SimState, id: String, mut cursor: Cursor, status: StatusCode) -> Response {
    let end = (cursor.next + cursor.batch_size).min(cursor.rows.len());
    let mut body = String::from("{\"result\":[");
    body.push_str(&cursor.rows[cursor.next..end].join(","));
    body.push(']');
    cursor.next = end;
    let more = end < cursor.rows.len();
    body.push_str(&format!(
        ",\"hasMore\":{more},\"cached\":false,\"extra\":{{\"warnings\":[]}},\"error\":false,\"code\":{}",
        status.as_u16()
    ));
    if more {
        body.push_str(&format!(",\"id\":\"{id}\""));
        cursor.touched = Instant::now();
        state
            .cursors
            .lock()
            .expect("no handler panics holding the lock")
            .insert(id, cursor);
    }
    body.push('}');
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Removes and returns cursor `id` of database `db` if it has not expired.
fn take_cursor(state: &SimState, db: usize, id: &str) -> Option<Cursor> {
    let mut cursors = state
        .cursors
        .lock()
        .expect("no handler panics holding the lock");
    if cursors.get(id)?.db != db {
        return None;
    }
    let cursor = cursors.remove(id)?;
    (cursor.touched.elapsed() < cursor.ttl).then_some(cursor)
}

async fn next_batch(
    State(state): State<Arc<SimState>>,
    Extension(Db(db)): Extension<Db>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    match take_cursor(&state, db, &id) {
        Some(cursor) => batch(&state, id, cursor, StatusCode::OK),
        None => arango_error(StatusCode::NOT_FOUND, 1600, "cursor not found"),
    }
}

async fn delete_cursor(
    State(state): State<Arc<SimState>>,
    Extension(Db(db)): Extension<Db>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    match take_cursor(&state, db, &id) {
        Some(_) => {
            state.deleted_cursors.fetch_add(1, Ordering::SeqCst);
            let body = json!({"id": id, "error": false, "code": 202});
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        None => arango_error(StatusCode::NOT_FOUND, 1600, "cursor not found"),
    }
}

enum QueryError {
    Unknown,
    Arango(StatusCode, u32, String),
}

/// The queries the simulator answers, by their text with whitespace collapsed, and the bind
/// parameters each declares. Written out here, not imported from the plugin: a change on
/// one side alone must fail a test.
fn known(query: &str) -> Option<(&'static str, &'static [&'static str])> {
    const RESOURCE: &str = "RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
        deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
        deleted: d.deletion != null,";
    let table: [(String, &'static str, &'static [&'static str]); 9] = [
        (
            format!(
                "FOR d IN users FILTER @include_deleted OR d.deletion == null {RESOURCE} \
                 personal: d.personal, avatar_ulid: d.avatar_ulid}}"
            ),
            "users",
            &["include_deleted"],
        ),
        (
            format!(
                "FOR d IN groups FILTER @include_deleted OR d.deletion == null {RESOURCE} \
                 name: d.name, description: d.description, acl: d.acl.list}}"
            ),
            "groups",
            &["include_deleted"],
        ),
        (
            format!(
                "FOR d IN service_accounts FILTER @include_deleted OR d.deletion == null \
                 {RESOURCE} name: d.name, description: d.description, acl: d.acl.list}}"
            ),
            "service_accounts",
            &["include_deleted"],
        ),
        (
            format!(
                "FOR d IN pipeline_accounts FILTER @include_deleted OR d.deletion == null \
                 {RESOURCE} name: d.name, description: d.description, scope: d.scope, \
                 acl: d.acl.list}}"
            ),
            "pipeline_accounts",
            &["include_deleted"],
        ),
        (
            format!(
                "FOR d IN projects FILTER @include_deleted OR d.deletion == null {RESOURCE} \
                 name: d.name, description: d.description, enabled_services: d.enabled_services, \
                 acl: d.acl.list, repositories: d.repositories[* RETURN {{url: CURRENT.url, \
                 provider: CURRENT.provider, name: CURRENT.name, \
                 default_branch: CURRENT.default_branch, auth_method: CURRENT.auth_method}}]}}"
            ),
            "projects",
            &["include_deleted"],
        ),
        (
            "FOR m IN memberships RETURN [m._from, m._to]".into(),
            "memberships",
            &[],
        ),
        (
            "FOR p IN permissions RETURN {key: p._key, principals: p.principals}".into(),
            "permissions",
            &[],
        ),
        (
            "FOR h IN resource_history FILTER h.resource_kind IN @kinds \
             COLLECT kind = h.resource_kind, key = h.resource_key \
             INTO changes = {revision: h.revision, changed_by: h.changed_by, changed_at: h.changed_at} \
             LET last = FIRST(FOR c IN changes SORT c.revision DESC LIMIT 1 RETURN c) \
             RETURN [kind, key, last.revision, last.changed_by, last.changed_at]"
                .into(),
            "resource_history",
            &["kinds"],
        ),
        (
            "FOR e IN resource_events \
             FILTER e.resource_kind == \"users\" AND e.event_type == \"sign_in\" \
             COLLECT key = e.resource_key AGGREGATE last = MAX(e.timestamp) \
             RETURN [key, last]"
                .into(),
            "resource_events",
            &[],
        ),
    ];
    let query = normalize(query);
    table
        .into_iter()
        .find(|(text, _, _)| normalize(text) == query)
        .map(|(_, collection, params)| (collection, params))
}

fn normalize(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run_query(
    data: &CriticalData,
    query: &str,
    bind: &serde_json::Map<String, Value>,
) -> Result<Vec<String>, QueryError> {
    let (collection, params) = known(query).ok_or(QueryError::Unknown)?;
    let bad = |num, message: String| QueryError::Arango(StatusCode::BAD_REQUEST, num, message);
    for p in params {
        if !bind.contains_key(*p) {
            return Err(bad(
                1551,
                format!(
                    "AQL: no value specified for declared bind parameter '{p}' (while parsing)"
                ),
            ));
        }
    }
    for k in bind.keys() {
        if !params.contains(&k.as_str()) {
            return Err(bad(
                1552,
                format!("AQL: bind parameter '{k}' was not declared in the query (while parsing)"),
            ));
        }
    }
    let Some(docs) = data.collections.get(collection) else {
        return Err(QueryError::Arango(
            StatusCode::NOT_FOUND,
            1203,
            format!("AQL: collection or view not found: {collection} (while parsing)"),
        ));
    };
    let docs = docs
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).expect("documents are JSON"));
    let include_deleted = bind.get("include_deleted").and_then(Value::as_bool) == Some(true);
    let at = |v: &Value, path: &[&str]| -> Value {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let resource = |d: &Value, fields: &[&str]| -> Value {
        let mut out = json!({
            "key": d["_key"], "meta": at(d, &["meta"]), "hash_code": at(d, &["hash_code"]),
            "deleted_at": at(d, &["deletion", "deleted_at"]),
            "deleted_by": at(d, &["deletion", "deleted_by"]),
            "deleted": !at(d, &["deletion"]).is_null(),
        });
        for f in fields {
            out[*f] = at(d, &[f]);
        }
        out
    };
    let live = |d: &Value| include_deleted || at(d, &["deletion"]).is_null();
    let rows: Vec<Value> = match collection {
        "users" => docs
            .filter(live)
            .map(|d| resource(&d, &["personal", "avatar_ulid"]))
            .collect(),
        "groups" | "service_accounts" => docs
            .filter(live)
            .map(|d| {
                let mut r = resource(&d, &["name", "description"]);
                r["acl"] = at(&d, &["acl", "list"]);
                r
            })
            .collect(),
        "pipeline_accounts" => docs
            .filter(live)
            .map(|d| {
                let mut r = resource(&d, &["name", "description", "scope"]);
                r["acl"] = at(&d, &["acl", "list"]);
                r
            })
            .collect(),
        "projects" => docs
            .filter(live)
            .map(|d| {
                let mut r = resource(&d, &["name", "description", "enabled_services"]);
                r["acl"] = at(&d, &["acl", "list"]);
                // `[*]` over a missing list is an empty list.
                let repos: Vec<Value> = at(&d, &["repositories"])
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        json!({"url": at(l, &["url"]), "provider": at(l, &["provider"]),
                               "name": at(l, &["name"]), "default_branch": at(l, &["default_branch"]),
                               "auth_method": at(l, &["auth_method"])})
                    })
                    .collect();
                r["repositories"] = Value::Array(repos);
                r
            })
            .collect(),
        "memberships" => docs.map(|m| json!([m["_from"], m["_to"]])).collect(),
        "permissions" => docs
            .map(|p| json!({"key": p["_key"], "principals": at(&p, &["principals"])}))
            .collect(),
        "resource_history" => {
            let kinds = match bind.get("kinds") {
                Some(Value::Array(k)) => k.clone(),
                _ => {
                    return Err(bad(
                        1562,
                        "AQL: invalid bind parameter type for 'kinds' (while parsing)".into(),
                    ));
                }
            };
            // COLLECT sorts by its group keys.
            let mut last: BTreeMap<(String, String), Value> = BTreeMap::new();
            for h in docs.filter(|h| kinds.contains(&h["resource_kind"])) {
                let key = (
                    h["resource_kind"].as_str().unwrap_or_default().to_owned(),
                    h["resource_key"].as_str().unwrap_or_default().to_owned(),
                );
                let newer = last.get(&key).is_none_or(|l| {
                    l["revision"].as_i64().unwrap_or(0) < h["revision"].as_i64().unwrap_or(0)
                });
                if newer {
                    last.insert(key, h);
                }
            }
            last.into_iter()
                .map(|((kind, key), h)| {
                    json!([kind, key, h["revision"], h["changed_by"], h["changed_at"]])
                })
                .collect()
        }
        "resource_events" => {
            let mut last: BTreeMap<String, Value> = BTreeMap::new();
            for e in docs.filter(|e| e["resource_kind"] == "users" && e["event_type"] == "sign_in") {
                let key = e["resource_key"].as_str().unwrap_or_default().to_owned();
                let t = e["timestamp"].clone();
                let later = last
                    .get(&key)
                    .is_none_or(|l| l.as_str().unwrap_or("") < t.as_str().unwrap_or(""));
                if later {
                    last.insert(key, t);
                }
            }
            last.into_iter().map(|(k, t)| json!([k, t])).collect()
        }
        other => unreachable!("no query reads {other}"),
    };
    Ok(rows.iter().map(Value::to_string).collect())
}

impl PerAccount for CriticalSim {
    type Data = CriticalData;

    fn accounts(&self) -> &Accounts<CriticalData> {
        &self.state.dbs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Account;
    use crate::sim::client::{Reply, request};

    fn post(url: &str, headers: &[(&str, String)], body: String) -> Reply {
        request("POST", url, headers, body.as_bytes())
    }

    fn text(r: &Reply) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    fn basic() -> (&'static str, String) {
        let token = BASE64.encode(format!("{}:{}", CriticalSim::USER, CriticalSim::PASSWORD));
        ("Authorization", format!("Basic {token}"))
    }

    fn cursor(sim: &CriticalSim, body: Value) -> Reply {
        post(
            &format!("{}/_db/unnamed/_api/cursor", sim.url()),
            &[basic()],
            body.to_string(),
        )
    }

    const MEMBERSHIPS: &str = "FOR m IN memberships RETURN [m._from, m._to]";

    #[test]
    fn many_databases_see_their_own_data_refuse_and_throttle_apart() {
        let (a, b) = (CriticalData::sample(), CriticalData::generate(30, 5, 3, 2));
        let sim = CriticalSim::start_many(vec![
            (
                "db_a".into(),
                Account::new(a.clone(), "user-a", "pw-a").rate_limit(50),
            ),
            (
                "db_b".into(),
                Account::new(b.clone(), "user-b", "pw-b").rate_limit(3),
            ),
            ("db_c".into(), Account::new(a, "user-c", "pw-c").refused()),
        ]);
        let basic = |user: &str, pw: &str| {
            let token = BASE64.encode(format!("{user}:{pw}"));
            [("Authorization", format!("Basic {token}"))]
        };
        let query = |db: &str, auth: &[(&str, String)]| {
            post(
                &format!("{}/_db/{db}/_api/cursor", sim.url()),
                auth,
                json!({"query": MEMBERSHIPS, "batchSize": 10000}).to_string(),
            )
        };
        let rows = |r: Reply| r.json()["result"].as_array().unwrap().len();
        let in_a = query("db_a", &basic("user-a", "pw-a"));
        let in_b = query("db_b", &basic("user-b", "pw-b"));
        assert_eq!(rows(in_a), CriticalData::sample().count("memberships"));
        assert_eq!(rows(in_b), b.count("memberships"));
        assert_eq!(query("db_b", &basic("user-a", "pw-a")).status, 401);
        assert_eq!(query("db_c", &basic("user-c", "pw-c")).status, 401);
        assert_eq!(query("db_a", &basic("user-a", "pw-b")).status, 401);
        assert_eq!(
            query("db_z", &basic("user-a", "pw-a")).json()["errorNum"],
            1228
        );
        let sign_in = |user: &str, pw: &str| {
            post(
                &format!("{}/_open/auth", sim.url()),
                &[],
                json!({"username": user, "password": pw}).to_string(),
            )
        };
        assert_eq!(sign_in("user-c", "pw-c").status, 401);
        let jwt = sign_in("user-b", "pw-b").json()["jwt"]
            .as_str()
            .unwrap()
            .to_owned();
        let bearer = [("Authorization", format!("bearer {jwt}"))];
        assert_eq!(query("db_a", &bearer).status, 401);
        // The same burst from both: b's budget of 3 a second runs out, a's of 50 does not.
        crate::sim::accounts::assert_only_the_limited_account_is_throttled(&sim, 201, |i| {
            let r = if i == 0 {
                query("db_a", &basic("user-a", "pw-a"))
            } else {
                query("db_b", &bearer)
            };
            (r.status, r.header("retry-after").map(str::to_string))
        });
        sim.set_latency(Duration::from_millis(1));
        sim.set_rate_limit(1, None);
        assert_eq!(query("db_b", &bearer).status, 201);
    }

    #[test]
    fn cursors_page_and_expire() {
        let sim = CriticalSim::start(CriticalData::sample());
        let first = cursor(&sim, json!({"query": MEMBERSHIPS, "batchSize": 5}));
        assert_eq!(first.status, 201, "{}", text(&first));
        let v = first.json();
        assert_eq!(v["result"].as_array().unwrap().len(), 5);
        assert_eq!(v["hasMore"], true);
        let id = v["id"].as_str().unwrap().to_owned();
        let url = format!("{}/_db/unnamed/_api/cursor/{id}", sim.url());
        let mut total = 5;
        loop {
            let next = post(&url, &[basic()], String::new());
            assert_eq!(next.status, 200, "{}", text(&next));
            total += next.json()["result"].as_array().unwrap().len();
            if next.json()["hasMore"] == false {
                break;
            }
        }
        assert_eq!(
            total, 13,
            "the sample's 12 live memberships plus one left behind"
        );
        let gone = post(&url, &[basic()], String::new());
        assert_eq!(
            (gone.status, gone.json()["errorNum"].clone()),
            (404, json!(1600))
        );

        sim.cap_cursor_ttl(Duration::ZERO);
        let v = cursor(&sim, json!({"query": MEMBERSHIPS, "batchSize": 5})).json();
        let url = format!(
            "{}/_db/unnamed/_api/cursor/{}",
            sim.url(),
            v["id"].as_str().unwrap()
        );
        assert_eq!(
            post(&url, &[basic()], String::new()).json()["errorNum"],
            1600
        );
    }

    #[test]
    fn unknown_queries_missing_collections_and_bad_auth_are_arango_errors() {
        let sim = CriticalSim::start(CriticalData::sample());
        let r = cursor(&sim, json!({"query": "FOR u IN users RETURN u"}));
        assert_eq!((r.status, r.json()["errorNum"].clone()), (400, json!(1501)));
        assert_eq!(sim.rejected_queries(), ["FOR u IN users RETURN u"]);
        let r = cursor(&sim, json!({"query": MEMBERSHIPS, "bindVars": {"x": 1}}));
        assert_eq!(r.json()["errorNum"], 1552);
        sim.update(|d| d.drop_collection("memberships"));
        let r = cursor(&sim, json!({"query": MEMBERSHIPS}));
        assert_eq!((r.status, r.json()["errorNum"].clone()), (404, json!(1203)));
        let url = format!("{}/_db/unnamed/_api/cursor", sim.url());
        let r = post(&url, &[], json!({"query": MEMBERSHIPS}).to_string());
        assert_eq!((r.status, r.json()["errorNum"].clone()), (401, json!(401)));
        let r = post(
            &format!("{}/_db/other/_api/cursor", sim.url()),
            &[basic()],
            json!({"query": MEMBERSHIPS}).to_string(),
        );
        assert_eq!(r.json()["errorNum"], 1228);
    }

    #[test]
    fn a_jwt_from_open_auth_authenticates() {
        let sim = CriticalSim::start(CriticalData::sample());
        let auth = format!("{}/_open/auth", sim.url());
        let wrong = post(
            &auth,
            &[],
            json!({"username": CriticalSim::USER, "password": "x"}).to_string(),
        );
        assert_eq!(wrong.status, 401);
        let ok = post(
            &auth,
            &[],
            json!({"username": CriticalSim::USER, "password": CriticalSim::PASSWORD}).to_string(),
        );
        let jwt = ok.json()["jwt"].as_str().unwrap().to_owned();
        let r = post(
            &format!("{}/_db/unnamed/_api/cursor", sim.url()),
            &[("Authorization", format!("bearer {jwt}"))],
            json!({"query": MEMBERSHIPS}).to_string(),
        );
        assert_eq!(r.status, 201, "{}", text(&r));
    }

    #[test]
    fn generated_organisations_are_deterministic() {
        let a = CriticalData::generate(100, 20, 10, 10);
        assert_eq!(a, CriticalData::generate(100, 20, 10, 10));
        assert_eq!(a.count("users"), 80);
        assert_eq!(
            a.count("service_accounts") + a.count("pipeline_accounts"),
            20
        );
        assert_eq!(a.count("groups"), 20);
        assert_eq!(a.count("projects"), 10);
        // Ten levels of two groups: every group but the first two has a parent.
        let nested = a
            .docs("memberships")
            .iter()
            .filter(|m| m["_from"].as_str().unwrap().starts_with("groups/"))
            .count();
        assert_eq!(nested, 18);
    }
}
