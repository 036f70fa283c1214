//! API objects to nodes and edges, emitted as each answer arrives.

use std::collections::{BTreeMap, BTreeSet};

use infragraph_sdk::Context;
use serde_json::Value;

use crate::cloudtrail::Event;
use crate::schema::*;

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A trigger that is a person: a managed user's login, or an email address. Everything
/// else (`vcs/commit`, `api::…`, schedules) is the system acting.
fn is_person(login: &str, managed: &BTreeSet<String>) -> bool {
    managed.contains(login) || login.contains('@')
}

/// What a user node says about `login` when the API gives only the login.
pub fn user_props(login: &str, person: bool) -> (Option<&str>, &str, &'static str) {
    let email = login.contains('@').then_some(login);
    let name = login.split('@').next().unwrap_or(login);
    (email, name, if person { "human" } else { "machine" })
}

/// Run states in which a worker is processing the run (it holds the worker until the
/// state changes). Queued, unconfirmed and terminal runs hold no worker.
const ON_A_WORKER: [&str; 8] = [
    "PREPARING",
    "PREPARING_APPLY",
    "PREPARING_REPLAN",
    "INITIALIZING",
    "PLANNING",
    "APPLYING",
    "PERFORMING",
    "DESTROYING",
];

/// Access levels from least to most access; an unknown level ranks lowest.
fn rank(level: &str) -> usize {
    ["READ", "WRITE", "ADMIN"]
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .map_or(0, |i| i + 1)
}

/// A user's role in each space from the user's own access rules: the highest level a
/// space's rules give, lower-cased. `rules` is `(space, level)` of each rule.
pub fn own_roles<'a>(
    rules: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut best: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (space, level) in rules {
        let r = rank(level);
        if best.get(space).is_none_or(|(have, _)| r > *have) {
            best.insert(space.to_owned(), (r, level.to_ascii_lowercase()));
        }
    }
    best.into_iter()
        .map(|(space, (_, role))| (space, role))
        .collect()
}

/// A worker's status from the flags the API has (`drained`, `busy`): a drained worker
/// takes no new run, whether or not it is finishing one.
pub fn worker_status(busy: Option<bool>, drained: Option<bool>) -> Option<&'static str> {
    match (drained, busy) {
        (Some(true), _) => Some("DRAINED"),
        (_, Some(true)) => Some("BUSY"),
        (Some(false), Some(false)) => Some("IDLE"),
        _ => None,
    }
}

/// A time the API gives as Unix seconds (`Run.createdAt`, `Commit.timestamp` are `Int`
/// in Spacelift's schema), as RFC 3339 UTC. A string is kept as it is.
pub fn time_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => n.as_i64().map(rfc3339),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, by the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `EXECUTED` pairs `(worker, run)` the API's data pins down: in a private pool with
/// exactly one busy worker and exactly one run of its stacks on a worker, that worker is
/// executing that run. `busy` is the busy workers of each pool, `on_worker` the pool and
/// id of each run in a state that holds a worker. Pools where the counts differ or exceed
/// one give nothing: the API does not say which worker holds which run.
pub fn executed_pairs(
    busy: &BTreeMap<String, Vec<String>>,
    on_worker: &[(String, String)],
) -> Vec<(String, String)> {
    let mut runs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (pool, run) in on_worker {
        runs.entry(pool.as_str()).or_default().push(run.as_str());
    }
    runs.into_iter()
        .filter_map(
            |(pool, runs)| match (busy.get(pool).map(Vec::as_slice), &runs[..]) {
                (Some([worker]), [run]) => Some((worker.clone(), (*run).to_owned())),
                _ => None,
            },
        )
        .collect()
}

/// A worker's name: the `name` key of its `metadata` (a JSON object of the
/// `SPACELIFT_METADATA_*` variables its launcher was started with), else its id, as the
/// original tool named workers.
pub fn worker_name(id: &str, metadata: Option<&str>) -> String {
    metadata
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|m| m.get("name").and_then(Value::as_str).map(str::to_owned))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.to_owned())
}

/// Emits records and counts them; remembers what later records link to.
pub struct Emitted {
    account: String,
    pub spaces: usize,
    pub stacks: usize,
    pub pools: usize,
    pub workers: usize,
    pub runs: usize,
    pub entity_links: usize,
    /// `HAS_ROLE_IN` edges.
    pub roles: usize,
    /// `EXECUTED` edges.
    pub executed: usize,
    /// Commits emitted, by SHA.
    pub commits: BTreeSet<String>,
    /// Runs emitted, by id: CloudTrail rows are matched against them.
    pub run_ids: BTreeSet<String>,
    /// Users emitted, by login.
    pub users: BTreeSet<String>,
    /// Logins of managed users.
    managed: BTreeSet<String>,
    /// Triggers seen on runs, with the commits of the runs they triggered.
    triggers: BTreeMap<String, BTreeSet<String>>,
    /// The private worker pool of each stack that names one.
    stack_pools: BTreeMap<String, String>,
    /// Busy workers of each pool.
    busy: BTreeMap<String, Vec<String>>,
    /// (pool, run) of each run seen in a state that holds a worker.
    on_worker: Vec<(String, String)>,
}

impl Emitted {
    pub fn new(account: &str) -> Emitted {
        Emitted {
            account: account.to_owned(),
            spaces: 0,
            stacks: 0,
            pools: 0,
            workers: 0,
            runs: 0,
            entity_links: 0,
            roles: 0,
            executed: 0,
            commits: BTreeSet::new(),
            run_ids: BTreeSet::new(),
            users: BTreeSet::new(),
            managed: BTreeSet::new(),
            triggers: BTreeMap::new(),
            stack_pools: BTreeMap::new(),
            busy: BTreeMap::new(),
            on_worker: Vec::new(),
        }
    }

    fn resource(&self, cx: &mut Context, label: &str, id: &str) {
        cx.edge(
            RESOURCE,
            (ACCOUNT, "id", self.account.as_str()),
            (label, "id", id),
        )
        .emit();
    }

    /// The account node; `name` is the account's display name (the root `name` field),
    /// or its id when the API did not give one.
    pub fn account(&self, cx: &mut Context, name: Option<&str>) {
        cx.node(ACCOUNT, self.account.as_str())
            .prop("spacelift_account_id", self.account.as_str())
            .prop(
                "name",
                name.filter(|n| !n.is_empty()).unwrap_or(&self.account),
            )
            .emit();
    }

    pub fn spaces(&mut self, cx: &mut Context, items: &[Value]) {
        for s in items {
            let Some(id) = text(s, "id") else { continue };
            let parent = text(s, "parentSpace");
            let mut node = cx
                .node(SPACE, id)
                .prop("name", text(s, "name"))
                .prop("description", text(s, "description"))
                .prop("is_root", parent.is_none())
                .prop("spacelift_account_id", self.account.as_str());
            node = match parent {
                None => node.prop("parent_spacelift_account_id", self.account.as_str()),
                Some(p) => node.prop("parent_space_id", p),
            };
            node.emit();
            self.resource(cx, SPACE, id);
            if let Some(p) = parent {
                cx.edge(CONTAINS, (SPACE, "id", p), (SPACE, "id", id))
                    .emit();
            }
            self.spaces += 1;
        }
    }

    pub fn stacks(&mut self, cx: &mut Context, items: &[Value]) {
        for s in items {
            let Some(id) = text(s, "id") else { continue };
            cx.node(STACK, id)
                .prop("name", text(s, "name"))
                .prop("description", text(s, "description"))
                .prop("state", text(s, "state"))
                .prop(
                    "administrative",
                    s.get("administrative").and_then(Value::as_bool),
                )
                .prop("repository", text(s, "repository"))
                .prop("branch", text(s, "branch"))
                .prop("project_root", text(s, "projectRoot"))
                .prop("space_id", text(s, "space"))
                .prop("spacelift_account_id", self.account.as_str())
                .emit();
            self.resource(cx, STACK, id);
            if let Some(space) = text(s, "space") {
                cx.edge(CONTAINS, (SPACE, "id", space), (STACK, "id", id))
                    .emit();
            }
            // `workerPool` is null for stacks on the public pool.
            if let Some(pool) = s.get("workerPool").and_then(|p| text(p, "id")) {
                self.stack_pools.insert(id.to_owned(), pool.to_owned());
            }
            self.stacks += 1;
        }
    }

    pub fn worker_pools(&mut self, cx: &mut Context, items: &[Value]) {
        for p in items {
            let Some(id) = text(p, "id") else { continue };
            cx.node(WORKER_POOL, id)
                .prop("name", text(p, "name"))
                .prop("description", text(p, "description"))
                // `workerPools` lists the account's private pools; the public pool is not
                // one of them (a stack on it has `workerPool: null`).
                .prop("pool_type", "PRIVATE")
                .prop("space_id", text(p, "space"))
                .prop("spacelift_account_id", self.account.as_str())
                .emit();
            self.resource(cx, WORKER_POOL, id);
            if let Some(space) = text(p, "space") {
                cx.edge(CONTAINS, (SPACE, "id", space), (WORKER_POOL, "id", id))
                    .emit();
            }
            self.pools += 1;
        }
    }

    /// Workers of each pool (`workerPools { id workers { id busy drained metadata } }`),
    /// remembering the busy ones for `EXECUTED`.
    pub fn workers(&mut self, cx: &mut Context, pools: &[Value]) {
        for p in pools {
            let Some(pool) = text(p, "id") else { continue };
            for w in p["workers"].as_array().into_iter().flatten() {
                let Some(id) = text(w, "id") else { continue };
                if w.get("busy").and_then(Value::as_bool) == Some(true) {
                    self.busy
                        .entry(pool.to_owned())
                        .or_default()
                        .push(id.to_owned());
                }
                cx.node(WORKER, id)
                    .prop("name", worker_name(id, text(w, "metadata")))
                    .prop(
                        "status",
                        worker_status(
                            w.get("busy").and_then(Value::as_bool),
                            w.get("drained").and_then(Value::as_bool),
                        ),
                    )
                    .prop("worker_pool_id", pool)
                    .prop("spacelift_account_id", self.account.as_str())
                    .emit();
                self.resource(cx, WORKER, id);
                cx.edge(CONTAINS, (WORKER_POOL, "id", pool), (WORKER, "id", id))
                    .emit();
                self.workers += 1;
            }
        }
    }

    fn user(&mut self, cx: &mut Context, login: &str, email: Option<&str>, person: bool) {
        if !self.users.insert(login.to_owned()) {
            return;
        }
        let (derived_email, name, user_type) = user_props(login, person);
        cx.node(USER, login)
            .prop("username", login)
            .prop("email", email.or(derived_email))
            .prop("name", name)
            .prop("user_type", user_type)
            .emit();
        self.resource(cx, USER, login);
    }

    /// Managed users and their roles: one `HAS_ROLE_IN {role}` per space the user's own
    /// access rules (`managedUsers { accessRules }`) name. IdP group rules give members
    /// more, but the API does not say who is in a group (a managed user has only a
    /// `groupCount`, a group only a `memberCount`), so those roles are not written.
    pub fn managed_users(&mut self, cx: &mut Context, users: &[Value]) {
        for u in users {
            let Some(login) = text(u, "username").or_else(|| text(u, "id")) else {
                continue;
            };
            let login = login.to_owned();
            self.managed.insert(login.clone());
            self.user(cx, &login, text(u, "invitationEmail"), true);
            let rules = u["accessRules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Some((text(r, "space")?, text(r, "spaceAccessLevel")?)));
            for (space, role) in own_roles(rules) {
                cx.edge(
                    HAS_ROLE_IN,
                    (USER, "id", login.as_str()),
                    (SPACE, "id", space),
                )
                .prop("role", role)
                .emit();
                self.roles += 1;
            }
        }
    }

    /// One page of a stack's runs, with their commits.
    pub fn runs(&mut self, cx: &mut Context, stack: &str, page: &[Value]) {
        for r in page {
            let Some(id) = text(r, "id") else { continue };
            let commit = r.get("commit").filter(|c| c.is_object());
            let sha = commit.and_then(|c| text(c, "hash"));
            let trigger = text(r, "triggeredBy");
            if let (Some(pool), Some(state)) = (self.stack_pools.get(stack), text(r, "state"))
                && ON_A_WORKER.contains(&state)
            {
                self.on_worker.push((pool.clone(), id.to_owned()));
            }
            cx.node(RUN, id)
                .prop("run_type", text(r, "type"))
                .prop("state", text(r, "state"))
                .prop("commit_sha", sha)
                .prop("branch", text(r, "branch"))
                .prop("created_at", time_of(r.get("createdAt")))
                .prop("stack_id", stack)
                .prop("triggered_by_user_id", trigger)
                .prop("spacelift_account_id", self.account.as_str())
                .emit();
            self.resource(cx, RUN, id);
            cx.edge(GENERATED, (STACK, "id", stack), (RUN, "id", id))
                .emit();
            if let Some(t) = trigger {
                cx.edge(TRIGGERED, (USER, "id", t), (RUN, "id", id)).emit();
                let commits = self.triggers.entry(t.to_owned()).or_default();
                if let Some(sha) = sha {
                    commits.insert(sha.to_owned());
                }
            }
            if let (Some(c), Some(sha)) = (commit, sha) {
                if self.commits.insert(sha.to_owned()) {
                    cx.node(COMMIT, sha)
                        .prop("sha", sha)
                        .prop("message", text(c, "message"))
                        .prop("timestamp", time_of(c.get("timestamp")))
                        .prop("url", text(c, "url"))
                        .prop("author_login", text(c, "authorLogin"))
                        .prop("author_name", text(c, "authorName"))
                        .emit();
                    self.resource(cx, COMMIT, sha);
                    if let Some(login) = text(c, "authorLogin") {
                        // Link-only: written when a GitHub plugin's user has this username.
                        cx.edge(
                            PUSHED,
                            (GITHUB_USER, "username", login),
                            (COMMIT, "id", sha),
                        )
                        .emit();
                    }
                }
                cx.edge(COMMITTED, (COMMIT, "id", sha), (RUN, "id", id))
                    .emit();
            }
            self.run_ids.insert(id.to_owned());
            self.runs += 1;
        }
    }

    /// Users known only as run triggers (not managed users), and `CONFIRMED` from each
    /// commit to every person who triggered a run of it.
    pub fn trigger_users(&mut self, cx: &mut Context) {
        let triggers = std::mem::take(&mut self.triggers);
        for (login, commits) in &triggers {
            let person = is_person(login, &self.managed);
            self.user(cx, login, None, person);
            if person {
                for sha in commits {
                    cx.edge(
                        CONFIRMED,
                        (COMMIT, "id", sha.as_str()),
                        (USER, "id", login.as_str()),
                    )
                    .emit();
                }
            }
        }
    }

    /// `EXECUTED` from each worker to the run it is executing, where the API's data pins
    /// that down (see [`executed_pairs`]).
    pub fn executed(&mut self, cx: &mut Context) {
        let on_worker = std::mem::take(&mut self.on_worker);
        for (worker, run) in executed_pairs(&self.busy, &on_worker) {
            cx.edge(EXECUTED, (WORKER, "id", worker), (RUN, "id", run))
                .emit();
            self.executed += 1;
        }
    }

    /// `AFFECTED` from the entities API: every `aws_instance` a Terraform run created or
    /// updated. Link-only: an instance no AWS plugin wrote is counted unresolved by the
    /// host, never invented.
    pub fn entities(&mut self, cx: &mut Context, stacks: &[Value]) {
        let mut links = BTreeSet::new();
        for s in stacks {
            for e in s["entities"].as_array().into_iter().flatten() {
                if text(e, "type") != Some("aws_instance") {
                    continue;
                }
                let vendor = &e["vendor"];
                if text(vendor, "__typename") != Some("EntityVendorTerraform")
                    || text(&vendor["terraform"], "__typename") != Some("TerraformResource")
                {
                    continue;
                }
                let values = text(&vendor["terraform"], "values")
                    .and_then(|v| serde_json::from_str::<Value>(v).ok());
                let Some(instance) = values.as_ref().and_then(|v| text(v, "id")) else {
                    continue;
                };
                for who in ["creator", "updater"] {
                    if let Some(run) = text(&e[who], "id") {
                        links.insert((run.to_owned(), instance.to_owned()));
                    }
                }
            }
        }
        for (run, instance) in links {
            cx.edge(AFFECTED, (RUN, "id", run), (EC2_INSTANCE, "id", instance))
                .emit();
            self.entity_links += 1;
        }
    }

    /// `AFFECTED` from CloudTrail, with the call's details.
    pub fn cloudtrail(&mut self, cx: &mut Context, events: &[Event]) {
        for e in events {
            cx.edge(
                AFFECTED,
                (RUN, "id", e.run_id.as_str()),
                (EC2_INSTANCE, "id", e.instance_id.as_str()),
            )
            .prop("event_time", e.event_time.as_deref())
            .prop("event_name", e.event_name.as_deref())
            .prop("aws_account", e.aws_account.as_deref())
            .prop("aws_region", e.aws_region.as_deref())
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_known_by_login_only() {
        assert_eq!(
            user_props("john.doe@example.com", true),
            (Some("john.doe@example.com"), "john.doe", "human")
        );
        assert_eq!(
            user_props("vcs/commit", false),
            (None, "vcs/commit", "machine")
        );
        let managed = BTreeSet::from(["jdoe".to_string()]);
        assert!(is_person("jdoe", &managed));
        assert!(!is_person("vcs/commit", &managed));
    }

    #[test]
    fn a_space_gets_the_highest_of_the_users_own_rules() {
        let roles = own_roles([
            ("root", "ADMIN"),
            ("dev", "READ"),
            ("dev", "WRITE"),
            ("ops", "x"),
        ]);
        assert_eq!(
            roles,
            BTreeMap::from(
                [("dev", "write"), ("ops", "x"), ("root", "admin")]
                    .map(|(s, r)| (s.to_string(), r.to_string()))
            )
        );
    }

    #[test]
    fn worker_status_comes_from_drained_and_busy() {
        assert_eq!(worker_status(Some(true), Some(true)), Some("DRAINED"));
        assert_eq!(worker_status(Some(true), Some(false)), Some("BUSY"));
        assert_eq!(worker_status(Some(false), Some(false)), Some("IDLE"));
        assert_eq!(worker_status(None, None), None);
    }

    #[test]
    fn unix_seconds_become_rfc_3339() {
        assert_eq!(
            time_of(Some(&serde_json::json!(0))).unwrap(),
            "1970-01-01T00:00:00Z"
        );
        // 2024-02-29 (a leap day) 23:59:59.
        assert_eq!(
            time_of(Some(&serde_json::json!(1_709_251_199))).unwrap(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            time_of(Some(&serde_json::json!(-1))).unwrap(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            time_of(Some(&serde_json::json!("2024-01-01T00:00:00Z"))).unwrap(),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(time_of(Some(&serde_json::json!(1.5))), None);
        assert_eq!(time_of(None), None);
    }

    #[test]
    fn executed_only_where_one_busy_worker_meets_one_run() {
        let busy = BTreeMap::from([
            ("p1".to_string(), vec!["w1".to_string()]),
            ("p2".to_string(), vec!["w2".to_string(), "w3".to_string()]),
            ("p3".to_string(), vec!["w4".to_string()]),
        ]);
        let on = |p: &str, r: &str| (p.to_string(), r.to_string());
        let on_worker = [
            on("p1", "r1"),
            on("p2", "r2"),
            on("p2", "r3"),
            on("p3", "r4"),
            on("p3", "r5"),
            on("p4", "r6"),
        ];
        assert_eq!(
            executed_pairs(&busy, &on_worker),
            [("w1".to_string(), "r1".to_string())]
        );
    }

    #[test]
    fn a_worker_is_named_by_its_metadata_or_its_id() {
        assert_eq!(
            worker_name("01W", Some(r#"{"name":"runner-a","asg_id":"x"}"#)),
            "runner-a"
        );
        assert_eq!(worker_name("01W", Some(r#"{"asg_id":"x"}"#)), "01W");
        assert_eq!(worker_name("01W", Some("not json")), "01W");
        assert_eq!(worker_name("01W", None), "01W");
    }
}
