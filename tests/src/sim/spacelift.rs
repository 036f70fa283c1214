//! A Spacelift GraphQL API on loopback (issue 7).
//!
//! It answers as a GraphQL server does on the points the plugin depends on: a query that
//! asks for a field or argument Spacelift's schema lacks is refused whole (HTTP 200, an
//! `errors` array naming the field, no `data`), checked against
//! `tests/fixtures/spacelift/schema.graphql` (the fields Spacelift's own clients use); a
//! valid query gets exactly the fields it selects, cut from the account's data, which is
//! held as whole JSON objects per root field (`spaces`, `stacks`, `stack(id)` with its
//! `runs(before:)`, `workerPools`, `managedUsers`, `name`). Times are Unix seconds, as
//! Spacelift's `Int` fields give them. It checks what a real account checks: the API key
//! at the `apiKeyUser` mutation, and a live JWT on every other request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use infragraph_graphql_check::Schema;

use super::accounts::{Account, Accounts, Denied, PerAccount};
use super::graphql::{argument, prepare, refusal, sub_field};
use super::server::{RequestLog, Server};

/// The schema queries are checked against: the fields Spacelift's clients use.
fn schema() -> &'static Schema {
    static SCHEMA: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
        Schema::parse(include_str!("../../fixtures/spacelift/schema.graphql"))
            .expect("the Spacelift schema parses")
    });
    &SCHEMA
}

/// Unix seconds of an RFC 3339 UTC time (`2024-10-01T10:00:00Z`): Cartography's samples
/// write times as text where Spacelift's API gives `Int` seconds.
pub fn unix_seconds(rfc3339: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 { rfc3339[r].parse().expect("an RFC 3339 time") };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../fixtures/spacelift/", $file))
    };
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the samples are JSON")
}

/// Everything the simulated account holds, as the API serves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpaceliftData {
    /// The account's sub-domain, e.g. `acme` in `acme.app.spacelift.io`.
    pub account_id: String,
    /// The account's display name, the root `name` field.
    pub account_name: String,
    /// `spaces { id name description parentSpace }`.
    pub spaces: Vec<Value>,
    /// `stacks { id name description state administrative repository branch projectRoot
    /// space workerPool { id } ... }`.
    pub stacks: Vec<Value>,
    /// `workerPools { id name description space }`, each with its `workers`
    /// (`{ id busy drained metadata }`).
    pub worker_pools: Vec<Value>,
    /// Runs of each stack, newest first as Spacelift lists them.
    pub runs: BTreeMap<String, Vec<Value>>,
    /// Entities (managed resources) of each stack.
    pub entities: BTreeMap<String, Vec<Value>>,
    /// `managedUsers { id username invitationEmail accessRules { space spaceAccessLevel } }`.
    pub users: Vec<Value>,
}

impl SpaceliftData {
    /// The account id of [`SpaceliftData::sample`].
    pub const SAMPLE_ACCOUNT: &'static str = "test-account-123";

    /// The responses in `tests/fixtures/spacelift/`: the account's name, two spaces, two
    /// stacks, two worker pools with a worker each, a run per stack with its commit, and
    /// the entities (the sample's one stack entry is served as `stack-1`'s). The samples'
    /// times (text there) are served as the Unix seconds Spacelift's schema has; their
    /// fields the schema lacks (a pool's `type`, a worker's `status`, a run's `finished`)
    /// stay in the data, and no valid query can select them.
    ///
    /// Added in the schema's shapes, for what the samples lack: two managed users (logins
    /// are the sample runs' `triggeredBy`) with access rules, the workers' `busy`,
    /// `drained` and `metadata`, `stack-2` on the private `pool-2`, whose `worker-2` is
    /// busy (named in its metadata) executing a third run, `run-3` (of `stack-2`,
    /// re-applying the sample's second commit, triggered by Jane).
    pub fn sample() -> SpaceliftData {
        let account = parse(sample!("account_query_response.json"))["data"]["account"].clone();
        let spaces = parse(sample!("spaces_query_response.json"))["data"]["spaces"].clone();
        let mut stacks = parse(sample!("stacks_query_response.json"))["data"]["stacks"].clone();
        for stack in stacks.as_array_mut().expect("a list") {
            stack["workerPool"] = match stack["id"].as_str() {
                Some("stack-2") => json!({"id": "pool-2"}),
                _ => Value::Null,
            };
        }
        let mut pools =
            parse(sample!("worker_pools_query_response.json"))["data"]["workerPools"].clone();
        let workers = parse(sample!("workers_query_response.json"))["data"]["workerPools"].clone();
        for pool in pools.as_array_mut().expect("a list") {
            let of_pool = workers
                .as_array()
                .expect("a list")
                .iter()
                .find(|w| w["id"] == pool["id"])
                .map(|w| w["workers"].clone())
                .unwrap_or(json!([]));
            pool["workers"] = of_pool;
            for worker in pool["workers"].as_array_mut().expect("a list") {
                let busy = worker["id"] == "worker-2";
                worker["busy"] = json!(busy);
                worker["drained"] = json!(false);
                worker["metadata"] = if busy {
                    json!(r#"{"name":"private-runner-a","instance_id":"i-0a1b2c3d"}"#)
                } else {
                    json!("{}")
                };
            }
        }
        let mut runs = BTreeMap::new();
        for stack in parse(sample!("runs_query_response.json"))["data"]["stacks"]
            .as_array()
            .expect("a list")
        {
            let id = stack["id"].as_str().expect("an id").to_owned();
            let mut of_stack = stack["runs"].as_array().expect("a list").clone();
            for run in &mut of_stack {
                let seconds = |v: &Value| json!(unix_seconds(v.as_str().expect("a time")));
                run["createdAt"] = seconds(&run["createdAt"]);
                run["commit"]["timestamp"] = seconds(&run["commit"]["timestamp"]);
            }
            runs.insert(id, of_stack);
        }
        let mut run3 = runs["stack-2"][0].clone();
        run3["id"] = json!("run-3");
        run3["state"] = json!("APPLYING");
        run3["createdAt"] = json!(unix_seconds("2024-10-03T08:00:00Z"));
        run3["finished"] = Value::Null;
        run3["triggeredBy"] = json!("jane.doe@example.com");
        runs.get_mut("stack-2").expect("stack-2").insert(0, run3);
        let mut entities = BTreeMap::new();
        let sample_entities = parse(sample!("entities_query_response.json"));
        let first = &sample_entities["data"]["stacks"][0]["entities"];
        entities.insert(
            "stack-1".to_owned(),
            first.as_array().expect("a list").clone(),
        );
        let users = vec![
            json!({
                "id": "01HUSERJOHN", "username": "john.doe@example.com",
                "invitationEmail": "john.doe@example.com",
                "accessRules": [
                    {"space": "root-space", "spaceAccessLevel": "ADMIN"},
                    {"space": "child-space-1", "spaceAccessLevel": "READ"}
                ]
            }),
            json!({
                "id": "01HUSERJANE", "username": "jane.doe@example.com",
                "invitationEmail": "jane.doe@example.com",
                "accessRules": [{"space": "child-space-1", "spaceAccessLevel": "WRITE"}]
            }),
        ];
        SpaceliftData {
            account_id: account["id"].as_str().expect("an id").to_owned(),
            account_name: account["name"].as_str().expect("a name").to_owned(),
            spaces: spaces.as_array().expect("a list").clone(),
            stacks: stacks.as_array().expect("a list").clone(),
            worker_pools: pools.as_array().expect("a list").clone(),
            runs,
            entities,
            users,
        }
    }

    /// A large account, the same on every call: a root space with 10 child spaces of 3
    /// grandchildren each; `stacks` stacks spread over them, each with `runs_per_stack`
    /// runs (a commit per two runs, triggered in turn by 50 users and `vcs/commit`);
    /// 5 worker pools of 4 workers; 50 users with two access rules each.
    ///
    /// Stack `s` runs on `pool-{s % 5}` (`pool-0`: the public pool, `workerPool` null).
    /// The newest runs of stacks 1 to 4 and 9 are `APPLYING`; `worker-{p}-0` of pools 1 to
    /// 3 is busy, and so are two workers of pool 4: with 4 or more stacks, pools 1 to 3
    /// each pin one worker to one run ([`SpaceliftData::GENERATED_EXECUTED`]), pool 4
    /// does not. Even-numbered workers carry a `name` in their metadata.
    pub fn generate(stacks: usize, runs_per_stack: usize) -> SpaceliftData {
        let mut d = SpaceliftData {
            account_id: "generated".into(),
            account_name: "Generated Org".into(),
            ..SpaceliftData::default()
        };
        d.spaces.push(
            json!({"id": "root", "name": "root", "description": "Root space", "parentSpace": null}),
        );
        let mut leaves = Vec::new();
        for c in 0..10 {
            let child = format!("space-{c}");
            d.spaces.push(
                json!({"id": child, "name": child, "description": "", "parentSpace": "root"}),
            );
            for g in 0..3 {
                let leaf = format!("space-{c}-{g}");
                d.spaces.push(
                    json!({"id": leaf, "name": leaf, "description": "", "parentSpace": child}),
                );
                leaves.push(leaf);
            }
        }
        for p in 0..5 {
            let workers: Vec<Value> = (0..4)
                .map(|w| {
                    let busy = (1..=3).contains(&p) && w == 0 || p == 4 && w < 2;
                    let metadata = if w % 2 == 0 {
                        json!({"name": format!("runner-{p}-{w}"), "asg_id": format!("asg-{p}")})
                    } else {
                        json!({"asg_id": format!("asg-{p}")})
                    };
                    json!({"id": format!("worker-{p}-{w}"), "busy": busy, "drained": false,
                           "metadata": metadata.to_string()})
                })
                .collect();
            d.worker_pools.push(json!({
                "id": format!("pool-{p}"), "name": format!("Pool {p}"), "description": "",
                "space": leaves[p % leaves.len()], "workers": workers
            }));
        }
        let login = |u: usize| format!("user{u:02}@example.com");
        for u in 0..50 {
            d.users.push(json!({
                "id": format!("01USER{u:04}"), "username": login(u), "invitationEmail": login(u),
                "accessRules": [
                    {"space": "root", "spaceAccessLevel": if u == 0 { "ADMIN" } else { "READ" }},
                    {"space": leaves[u % leaves.len()], "spaceAccessLevel": "WRITE"}
                ]
            }));
        }
        for s in 0..stacks {
            let id = format!("stack-{s:04}");
            d.stacks.push(json!({
                "id": id, "name": format!("Stack {s}"), "description": "generated",
                "state": "FINISHED", "administrative": s == 0,
                "repository": "example/infra", "branch": "main",
                "projectRoot": format!("stacks/{s}"), "space": leaves[s % leaves.len()],
                "workerPool": match s % 5 {
                    0 => Value::Null,
                    p => json!({"id": format!("pool-{p}")}),
                },
                "integrations": {"aws": {"assumedRoleArn": null}}
            }));
            let mut runs = Vec::with_capacity(runs_per_stack);
            // Newest first.
            for r in (0..runs_per_stack).rev() {
                let n = s * runs_per_stack + r;
                let sha = format!("{:040x}", n / 2 + 1);
                let trigger = if n.is_multiple_of(3) {
                    "vcs/commit".to_owned()
                } else {
                    login(n % 50)
                };
                runs.push(json!({
                    "id": format!("run-{s:04}-{r:05}"),
                    "type": if r % 2 == 0 { "TRACKED" } else { "PROPOSED" },
                    "state": if r + 1 == runs_per_stack && matches!(s, 1..=4 | 9) {
                        "APPLYING"
                    } else {
                        "FINISHED"
                    },
                    "commit": {
                        "hash": sha, "authorLogin": format!("dev{}", n % 40),
                        "authorName": format!("Developer {}", n % 40),
                        "message": format!("change {n}"),
                        "timestamp": unix_seconds("2025-01-01T00:00:00Z"),
                        "url": format!("https://github.com/example/infra/commit/{sha}")
                    },
                    "branch": "main", "createdAt": unix_seconds("2025-01-01T00:05:00Z"),
                    "finished": "2025-01-01T00:09:00Z", "triggeredBy": trigger
                }));
            }
            d.runs.insert(id, runs);
        }
        d
    }

    /// `EXECUTED` edges a generated account with 4 or more stacks gives (pools 1 to 3).
    pub const GENERATED_EXECUTED: usize = 3;

    /// `HAS_ROLE_IN` edges a generated account gives: each of the 50 users has a role in
    /// the root and in its leaf.
    pub const GENERATED_ROLES: usize = 50 * 2;

    /// Runs in the account.
    pub fn run_count(&self) -> usize {
        self.runs.values().map(Vec::len).sum()
    }
}

/// A running Spacelift GraphQL API on `127.0.0.1`, at `POST /graphql`.
///
/// - `apiKeyUser(id, secret) { jwt validUntil }` checks the key against [`KEY_ID`] and
///   [`KEY_SECRET`] and issues a JWT; a wrong key answers HTTP 200 with `apiKeyUser: null`
///   and an `unauthorized` error, as GraphQL APIs do.
/// - Every other request needs `Authorization: Bearer <jwt>` of an issued, unexpired JWT,
///   or it answers 401 with an `errors` array. [`SpaceliftSim::expire_tokens_after`] makes
///   every JWT expire after that many requests, to force re-authentication mid-sync.
/// - `stack(id) { runs(before) }` pages runs, newest first, [`RUNS_PAGE`] at a time.
/// - A query selecting a field or argument `tests/fixtures/spacelift/schema.graphql` lacks
///   is refused whole: HTTP 200, an `errors` array naming it, no `data`
///   ([`SpaceliftSim::refused_queries`]). A valid one gets only the fields it selects.
/// - Many accounts ([`SpaceliftSim::start_many`]): each [`Account`] has its API key (`id`,
///   `secret`) and its data; the key decides the account, and the JWT it gets sees that
///   account only. The real endpoint is per account (`{account}.app.spacelift.io`): so is
///   [`SpaceliftSim::endpoint_of`], `POST /{account_id}/graphql`, where only that
///   account's key logs in and its JWT only is accepted (`/graphql` takes any account's).
///   A refused account's key answers as a wrong key; a rate-limited account answers its
///   requests past its budget with HTTP 429 and `Retry-After`.
/// - [`SpaceliftSim::fail_field`] answers a root field with `null` and an `errors` entry
///   at HTTP 200, the way GraphQL reports a resolver failure;
///   [`SpaceliftSim::partial_field`] sends the data and an error together.
///
/// [`KEY_ID`]: SpaceliftSim::KEY_ID
/// [`KEY_SECRET`]: SpaceliftSim::KEY_SECRET
/// [`RUNS_PAGE`]: SpaceliftSim::RUNS_PAGE
pub struct SpaceliftSim {
    server: Server,
    state: Arc<SimState>,
}

struct SimState {
    accounts: Accounts<SpaceliftData>,
    /// Added before every response.
    latency: Mutex<Duration>,
    auth: Mutex<Auth>,
    /// Root field → error message.
    failing: Mutex<HashMap<String, String>>,
    /// Root field → error message sent beside the full data.
    partial: Mutex<HashMap<String, String>>,
    /// The error messages of every query refused for asking what the schema lacks.
    refused: Mutex<Vec<String>>,
    log: RequestLog,
}

impl SimState {
    /// Answers a refused query (HTTP 200, `errors`, no `data`) and remembers why.
    fn refuse(&self, body: Value) -> Response {
        let mut refused = self.refused.lock().expect("lock");
        for e in body["errors"].as_array().into_iter().flatten() {
            refused.push(e["message"].as_str().unwrap_or_default().to_owned());
        }
        Json(body).into_response()
    }
}

#[derive(Default)]
struct Auth {
    /// Requests each JWT may still make, and its account.
    tokens: HashMap<String, (u64, usize)>,
    /// Requests per JWT; `u64::MAX` for no expiry.
    budget: u64,
    issued: u64,
    rejected_keys: u64,
    expired: u64,
}

impl SpaceliftSim {
    /// The API key id the simulator accepts.
    pub const KEY_ID: &'static str = "01SIMKEYID";
    /// Its secret.
    pub const KEY_SECRET: &'static str = "sl-secret-7d1e9b44c2";
    /// Runs per page of `runs(before:)`.
    pub const RUNS_PAGE: usize = 50;

    /// Starts serving `data` to the key [`SpaceliftSim::KEY_ID`], [`SpaceliftSim::KEY_SECRET`].
    pub fn start(data: SpaceliftData) -> SpaceliftSim {
        SpaceliftSim::start_many(vec![Account::new(
            data,
            SpaceliftSim::KEY_ID,
            SpaceliftSim::KEY_SECRET,
        )])
    }

    /// Serves each account of `accounts` to its own API key (`Account::id`, `secret`).
    /// Single-account methods (`set_data`) act on the first.
    pub fn start_many(accounts: Vec<Account<SpaceliftData>>) -> SpaceliftSim {
        let state = Arc::new(SimState {
            accounts: Accounts::new(accounts),
            latency: Mutex::new(Duration::ZERO),
            auth: Mutex::new(Auth {
                budget: u64::MAX,
                ..Auth::default()
            }),
            failing: Mutex::new(HashMap::new()),
            partial: Mutex::new(HashMap::new()),
            refused: Mutex::new(Vec::new()),
            log: RequestLog::default(),
        });
        let router = state.log.around(
            Router::new()
                .route("/graphql", post(any_account))
                .route("/{account}/graphql", post(one_account))
                .with_state(state.clone()),
        );
        SpaceliftSim {
            server: Server::start("spacelift-sim", router),
            state,
        }
    }

    /// The endpoint to set as `SPACELIFT_API_KEY_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("{}/graphql", self.server.url())
    }

    /// The endpoint of the account `account_id` alone, `{url}/{account_id}/graphql`, as
    /// Spacelift's `https://{account_id}.app.spacelift.io/graphql`.
    pub fn endpoint_of(&self, account_id: &str) -> String {
        format!("{}/{account_id}/graphql", self.server.url())
    }

    /// Delays every response by `latency`, as a distant API would.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().expect("lock") = latency;
    }

    /// Every JWT issued from now on expires after `n` authenticated requests.
    pub fn expire_tokens_after(&self, n: u64) {
        self.state.auth.lock().expect("lock").budget = n;
    }

    /// Root field `field` (e.g. `workerPools`) answers `null` with a GraphQL error
    /// carrying `message`.
    pub fn fail_field(&self, field: &str, message: &str) {
        self.state
            .failing
            .lock()
            .expect("lock")
            .insert(field.to_owned(), message.to_owned());
    }

    /// Root field `field` answers its data together with a GraphQL error carrying
    /// `message`: partial data, as a resolver failing on some items gives.
    pub fn partial_field(&self, field: &str, message: &str) {
        self.state
            .partial
            .lock()
            .expect("lock")
            .insert(field.to_owned(), message.to_owned());
    }

    /// JWTs issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.state.auth.lock().expect("lock").issued
    }

    /// Requests refused because their JWT had expired.
    pub fn expired_requests(&self) -> u64 {
        self.state.auth.lock().expect("lock").expired
    }

    /// `apiKeyUser` calls with a wrong key.
    pub fn rejected_keys(&self) -> u64 {
        self.state.auth.lock().expect("lock").rejected_keys
    }

    /// Why each query refused for asking what Spacelift's schema lacks was refused.
    pub fn refused_queries(&self) -> Vec<String> {
        self.state.refused.lock().expect("lock").clone()
    }

    /// Requests received.
    pub fn total_requests(&self) -> u64 {
        self.state.log.total()
    }

    /// Replaces the served data.
    pub fn set_data(&self, data: SpaceliftData) {
        *self.state.accounts.write(0) = data;
    }
}

fn errors(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message}], "data": null})),
    )
        .into_response()
}

async fn any_account(
    State(state): State<Arc<SimState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    graphql(state, None, headers, body).await
}

async fn one_account(
    State(state): State<Arc<SimState>>,
    Path(account): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    graphql(state, Some(account), headers, body).await
}

/// Answers a GraphQL request at the endpoint of `account` (its `account_id`), or of any
/// account when `None`.
async fn graphql(
    state: Arc<SimState>,
    endpoint: Option<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let latency = *state.latency.lock().expect("lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // Whether account `i` is served at this endpoint.
    let here = |i: usize| {
        endpoint
            .as_deref()
            .is_none_or(|e| state.accounts.read(i).account_id == e)
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return errors(StatusCode::BAD_REQUEST, "request body is not JSON");
    };
    let query = req["query"].as_str().unwrap_or_default();
    let vars = &req["variables"];
    // A query asking for what the schema lacks is refused whole, before it runs.
    let doc = match graphql_parser::parse_query::<String>(query) {
        Ok(doc) => doc,
        Err(e) => {
            let refused = refusal(&infragraph_graphql_check::Error::Syntax(e.to_string()));
            return state.refuse(refused);
        }
    };
    let op = match prepare(schema(), query, &doc) {
        Ok(op) => op,
        Err(refused) => return state.refuse(refused),
    };
    if op.mutation {
        let Some(login) = op.fields.iter().find(|f| f.name == "apiKeyUser") else {
            return errors(StatusCode::OK, "simulator: only apiKeyUser is served");
        };
        let (id, secret) = (argument(login, "id", vars), argument(login, "secret", vars));
        let (id, secret) = (
            id.as_str().unwrap_or_default(),
            secret.as_str().unwrap_or_default(),
        );
        let account = state
            .accounts
            .find(id, Some(secret))
            .ok()
            .filter(|i| here(*i));
        let mut auth = state.auth.lock().expect("lock");
        let Some(account) = account else {
            auth.rejected_keys += 1;
            return Json(json!({
                "data": {"apiKeyUser": null},
                "errors": [{"message": "unauthorized", "path": ["apiKeyUser"]}]
            }))
            .into_response();
        };
        auth.issued += 1;
        let jwt = format!("eyJsim.{}.{}", auth.issued, auth.issued * 7919);
        let budget = auth.budget;
        auth.tokens.insert(jwt.clone(), (budget, account));
        let user = json!({"jwt": jwt, "validUntil": 4102444800u64});
        let key = login.alias.as_ref().unwrap_or(&login.name);
        return Json(json!({"data": {key: op.project(login, &user)}})).into_response();
    }
    let account = {
        let mut auth = state.auth.lock().expect("lock");
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some((left, account)) = bearer.and_then(|t| auth.tokens.get_mut(t)) else {
            return errors(StatusCode::UNAUTHORIZED, "unauthorized");
        };
        if !here(*account) {
            return errors(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        if *left == 0 {
            auth.expired += 1;
            return errors(StatusCode::UNAUTHORIZED, "unauthorized: token expired");
        }
        *left -= 1;
        *account
    };
    if let Err(Denied::Throttled(after)) = state.accounts.spend(account) {
        let mut r = errors(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        r.headers_mut().insert(
            header::RETRY_AFTER,
            after.to_string().parse().expect("a number"),
        );
        return r;
    }
    let data = state.accounts.read(account);
    let (mut out, mut errs) = (serde_json::Map::new(), Vec::new());
    for field in &op.fields {
        let key = field.alias.as_ref().unwrap_or(&field.name).clone();
        let name = field.name.as_str();
        if let Some(message) = state.failing.lock().expect("lock").get(name) {
            errs.push(json!({"message": message, "path": [key]}));
            out.insert(key, Value::Null);
            continue;
        }
        let value = match resolve(&data, field, vars) {
            Ok(v) => v,
            Err(message) => {
                errs.push(json!({"message": message, "path": [key]}));
                out.insert(key, Value::Null);
                continue;
            }
        };
        if let Some(message) = state.partial.lock().expect("lock").get(name) {
            errs.push(json!({"message": message, "path": [key]}));
        }
        out.insert(key, op.project(field, &value));
    }
    let mut body = json!({"data": out});
    if !errs.is_empty() {
        body["errors"] = json!(errs);
    }
    Json(body).into_response()
}

/// The whole value of a root field, before the query's selection cuts it down; or the
/// message of the error a resolver would give.
fn resolve(
    data: &SpaceliftData,
    field: &graphql_parser::query::Field<'_, String>,
    vars: &Value,
) -> Result<Value, String> {
    Ok(match field.name.as_str() {
        "name" => json!(data.account_name),
        "spaces" => json!(data.spaces),
        "stacks" => json!(
            data.stacks
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    let id = s["id"].as_str().unwrap_or_default().to_owned();
                    s["entities"] = json!(data.entities.get(&id).cloned().unwrap_or_default());
                    s
                })
                .collect::<Vec<_>>()
        ),
        "workerPools" => json!(data.worker_pools),
        "managedUsers" => json!(data.users),
        "stack" => {
            let id = argument(field, "id", vars);
            let id = id.as_str().unwrap_or_default();
            let Some(runs) = data
                .runs
                .get(id)
                .or_else(|| data.stacks.iter().any(|s| s["id"] == id).then_some(&EMPTY))
            else {
                return Ok(Value::Null);
            };
            let before = sub_field(field, "runs").map(|r| argument(r, "before", vars));
            let start = match before.as_ref().and_then(Value::as_str) {
                None => 0,
                Some(before) => match runs.iter().position(|r| r["id"] == before) {
                    Some(i) => i + 1,
                    None => return Err(format!("run {before} not found")),
                },
            };
            let page: Vec<&Value> = runs
                .iter()
                .skip(start)
                .take(SpaceliftSim::RUNS_PAGE)
                .collect();
            json!({"id": id, "runs": page})
        }
        other => {
            return Err(format!(
                "simulator: `{other}` is in the schema but not served"
            ));
        }
    })
}

static EMPTY: Vec<Value> = Vec::new();

impl PerAccount for SpaceliftSim {
    type Data = SpaceliftData;

    fn accounts(&self) -> &Accounts<SpaceliftData> {
        &self.state.accounts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(sim: &SpaceliftSim, body: Value, jwt: Option<&str>) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = reqwest::Client::new()
                .post(sim.endpoint())
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(jwt) = jwt {
                r = r.bearer_auth(jwt);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap();
            (status, serde_json::from_slice(&bytes).unwrap())
        })
    }

    fn post_to(url: &str, body: Value, jwt: Option<&str>) -> (u16, Value, Option<String>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(jwt) = jwt {
                r = r.bearer_auth(jwt);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = resp.bytes().await.unwrap();
            (status, serde_json::from_slice(&bytes).unwrap(), retry)
        })
    }

    /// The JWT of key (`id`, `secret`) at `url`, or None when refused.
    fn jwt_at(url: &str, id: &str, secret: &str) -> Option<String> {
        let (_, body, _) = post_to(
            url,
            json!({"query": "mutation GetSpaceliftToken($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }",
                   "variables": {"id": id, "secret": secret}}),
            None,
        );
        body["data"]["apiKeyUser"]["jwt"]
            .as_str()
            .map(str::to_owned)
    }

    #[test]
    fn many_accounts_see_their_own_data_refuse_and_throttle_apart() {
        let mut b = SpaceliftData::generate(2, 1);
        b.account_id = "other".into();
        b.account_name = "Other Org".into();
        let sim = SpaceliftSim::start_many(vec![
            Account::new(SpaceliftData::sample(), "KEY-A", "secret-a").rate_limit(50),
            Account::new(b, "KEY-B", "secret-b").rate_limit(3),
            Account::new(SpaceliftData::sample(), "KEY-C", "secret-c").refused(),
        ]);
        let any = sim.endpoint();
        let a_jwt = jwt_at(&any, "KEY-A", "secret-a").expect("a's key logs in");
        let b_jwt = jwt_at(&any, "KEY-B", "secret-b").expect("b's key logs in");
        assert_eq!(jwt_at(&any, "KEY-C", "secret-c"), None, "refused");
        assert_eq!(jwt_at(&any, "KEY-A", "secret-b"), None, "wrong secret");
        // Per-account endpoints: only that account's key and JWTs.
        let a_only = sim.endpoint_of(SpaceliftData::SAMPLE_ACCOUNT);
        assert!(jwt_at(&a_only, "KEY-A", "secret-a").is_some());
        assert_eq!(jwt_at(&a_only, "KEY-B", "secret-b"), None);
        let name = json!({"query": "{ name }"});
        let ask = |url: &str, jwt: &str| post_to(url, name.clone(), Some(jwt));
        assert_eq!(ask(&a_only, &b_jwt).0, 401);
        assert_eq!(
            ask(&sim.endpoint_of("other"), &b_jwt).1["data"]["name"],
            "Other Org"
        );
        let a_name = ask(&any, &a_jwt).1["data"]["name"].clone();
        assert_ne!(a_name, "Other Org");
        assert_eq!(ask(&any, &b_jwt).1["data"]["name"], "Other Org");
        // The same burst from both: b's budget of 3 a second runs out, a's of 50 does not.
        crate::sim::accounts::assert_only_the_limited_account_is_throttled(&sim, 200, |i| {
            let r = if i == 0 {
                ask(&any, &a_jwt)
            } else {
                ask(&any, &b_jwt)
            };
            (r.0, r.2)
        });
        sim.set_latency(Duration::from_millis(1));
        sim.set_rate_limit(1, None);
        assert_eq!(ask(&any, &b_jwt).0, 200);
    }

    fn login(sim: &SpaceliftSim, secret: &str) -> (u16, Value) {
        post(
            sim,
            json!({"query": "mutation GetSpaceliftToken($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }",
                   "variables": {"id": SpaceliftSim::KEY_ID, "secret": secret}}),
            None,
        )
    }

    #[test]
    fn exchanges_the_key_pages_runs_and_expires_tokens() {
        let sim = SpaceliftSim::start(SpaceliftData::generate(2, 120));
        let (status, bad) = login(&sim, "wrong");
        assert_eq!(status, 200);
        assert!(
            bad["data"]["apiKeyUser"].is_null() && bad["errors"][0]["message"] == "unauthorized"
        );
        let (_, ok) = login(&sim, SpaceliftSim::KEY_SECRET);
        let jwt = ok["data"]["apiKeyUser"]["jwt"].as_str().unwrap().to_owned();
        let spaces = json!({"query": "query { spaces { id name description parentSpace } }"});
        assert_eq!(post(&sim, spaces.clone(), None).0, 401);
        let (status, body) = post(&sim, spaces.clone(), Some(&jwt));
        assert_eq!(status, 200);
        assert_eq!(body["data"]["spaces"].as_array().unwrap().len(), 41);

        let runs = |before: Option<&str>| {
            json!({"query": "query Runs($stack: ID!, $before: ID) { stack(id: $stack) { id runs(before: $before) { id } } }",
                   "variables": {"stack": "stack-0001", "before": before}})
        };
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let (_, body) = post(&sim, runs(before.as_deref()), Some(&jwt));
            let page = body["data"]["stack"]["runs"].as_array().unwrap().clone();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= SpaceliftSim::RUNS_PAGE);
            before = Some(page.last().unwrap()["id"].as_str().unwrap().to_owned());
            seen.extend(page);
        }
        assert_eq!(seen.len(), 120);
        assert_eq!(seen[0]["id"], "run-0001-00119", "newest first");

        sim.expire_tokens_after(1);
        let (_, ok) = login(&sim, SpaceliftSim::KEY_SECRET);
        let short = ok["data"]["apiKeyUser"]["jwt"].as_str().unwrap().to_owned();
        assert_eq!(post(&sim, spaces.clone(), Some(&short)).0, 200);
        assert_eq!(post(&sim, spaces.clone(), Some(&short)).0, 401);
        assert_eq!(sim.expired_requests(), 1);

        sim.fail_field("spaces", "internal error");
        let (status, body) = post(&sim, spaces, Some(&jwt));
        assert_eq!(status, 200);
        assert!(body["data"]["spaces"].is_null());
        assert_eq!(body["errors"][0]["message"], "internal error");
    }

    #[test]
    fn sample_joins_pools_and_workers() {
        let d = SpaceliftData::sample();
        assert_eq!(d.worker_pools[1]["workers"][0]["id"], "worker-2");
        assert_eq!(d.worker_pools[1]["workers"][0]["busy"], true);
        assert_eq!(d.run_count(), 3);
        assert_eq!(d.runs["stack-2"][0]["id"], "run-3", "newest first");
        assert_eq!(d.entities["stack-1"].len(), 4);
        assert_eq!(
            (d.account_id.as_str(), d.account_name.as_str()),
            (SpaceliftData::SAMPLE_ACCOUNT, "Test Organization")
        );
    }

    #[test]
    fn unknown_fields_are_refused_whole_and_answers_hold_what_was_selected() {
        let sim = SpaceliftSim::start(SpaceliftData::sample());
        let (_, ok) = login(&sim, SpaceliftSim::KEY_SECRET);
        let jwt = ok["data"]["apiKeyUser"]["jwt"].as_str().unwrap().to_owned();
        let q = |query: &str| post(&sim, json!({"query": query}), Some(&jwt));

        // As the plugin asked before issue 15: the pools' `type` does not exist.
        let (status, body) = q("query { workerPools { id name description type space } }");
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"errors": [{"message": "Cannot query field \"type\" on type \"WorkerPool\"."}]})
        );
        let (_, body) = q("query { managedUsers { id username latestGroups } }");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(
            sim.refused_queries(),
            [
                "Cannot query field \"type\" on type \"WorkerPool\".",
                "Cannot query field \"latestGroups\" on type \"ManagedUser\"."
            ]
        );

        // The sample's pool has a `type` and its worker a `status`: never served.
        let (_, body) = q("query { workerPools { id workers { id busy drained } } }");
        assert_eq!(
            body["data"]["workerPools"][1],
            json!({"id": "pool-2", "workers": [{"id": "worker-2", "busy": true, "drained": false}]})
        );
        // Times are Unix seconds, as Spacelift's `Int` fields.
        let (_, body) = post(
            &sim,
            json!({"query": "query R($s: ID!) { stack(id: $s) { runs(before: null) { id createdAt commit { timestamp } } } }",
                   "variables": {"s": "stack-1"}}),
            Some(&jwt),
        );
        assert_eq!(
            body["data"]["stack"]["runs"][0],
            json!({"id": "run-1", "createdAt": unix_seconds("2024-10-01T10:00:00Z"),
                   "commit": {"timestamp": unix_seconds("2024-10-01T09:00:00Z")}})
        );
        assert_eq!(unix_seconds("2024-10-01T10:00:00Z"), 1_727_776_800);
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
    }
}
