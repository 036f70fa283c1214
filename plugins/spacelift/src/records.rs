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

/// Where a role in a space comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// The user's own access rule.
    Direct,
    /// The access rule of an IdP group (`managedUserGroups`) the user is a member of.
    Group(String),
}

/// A user's effective role in each space: the highest of the user's own rule and the
/// rules of the groups the user belongs to (Spacelift applies a group's permissions
/// "unless the user's permissions are higher"). On a tie the user's own rule is named,
/// else the first group by name. `direct` is `(space, level)` of the user's rules,
/// `groups` the rules of each group the user is a member of.
pub fn effective_roles<'a>(
    direct: impl IntoIterator<Item = (&'a str, &'a str)>,
    groups: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> BTreeMap<String, (String, Via)> {
    let mut best: BTreeMap<String, (usize, String, Via)> = BTreeMap::new();
    let candidates = direct
        .into_iter()
        .map(|(space, level)| (space, level, Via::Direct))
        .chain(
            groups
                .into_iter()
                .map(|(group, space, level)| (space, level, Via::Group(group.to_owned()))),
        );
    for (space, level, via) in candidates {
        let r = rank(level);
        let better = match best.get(space) {
            None => true,
            Some((have, _, have_via)) => r > *have || (r == *have && via < *have_via),
        };
        if better {
            best.insert(space.to_owned(), (r, level.to_ascii_lowercase(), via));
        }
    }
    best.into_iter()
        .map(|(space, (_, role, via))| (space, (role, via)))
        .collect()
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
    /// `HAS_ROLE_IN` edges, and how many of them a group's rule gave.
    pub roles: usize,
    pub group_roles: usize,
    /// `EXECUTED` edges.
    pub executed: usize,
    /// Commits emitted, by SHA.
    pub commits: BTreeSet<String>,
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
            group_roles: 0,
            executed: 0,
            commits: BTreeSet::new(),
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
                .prop("pool_type", text(p, "type"))
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

    /// Workers of each pool (`workerPools { id workers { id status busy metadata } }`),
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
                    .prop("status", text(w, "status"))
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

    /// Managed users and their roles: one `HAS_ROLE_IN {role, via, group}` per space
    /// where the user's own access rules (`managedUsers { accessRules }`) or those of the
    /// IdP groups the user was in at the last login (`latestGroups`, matched by exact
    /// name to `managedUserGroups { groupName accessRules }`) give a role; the highest
    /// role wins (see [`effective_roles`]). `members` is the membership answer and
    /// whether it came without errors (then a user it lists without groups, or not at
    /// all, is in none); `groups` the groups answer, `groups_complete` likewise.
    ///
    /// A user whose groups are unknown (the groups' rules not all read, or the user
    /// missing from a membership answer that came with errors) could have a higher role
    /// from a group than the own rule says, so only own `admin` roles, which no group can
    /// raise, are written for that user; the caller marks users incomplete, so the host
    /// keeps the rest from the last sync.
    pub fn managed_users(
        &mut self,
        cx: &mut Context,
        users: &[Value],
        (members, members_complete): (&[Value], bool),
        groups: &[Value],
        groups_complete: bool,
    ) {
        let login_of = |u: &Value| {
            text(u, "username")
                .or_else(|| text(u, "id"))
                .map(str::to_owned)
        };
        let rules = |v: &Value| -> Vec<(String, String)> {
            v["accessRules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        text(r, "space")?.to_owned(),
                        text(r, "spaceAccessLevel")?.to_owned(),
                    ))
                })
                .collect()
        };
        let group_rules: BTreeMap<&str, Vec<(String, String)>> = groups
            .iter()
            .filter_map(|g| Some((text(g, "groupName")?, rules(g))))
            .collect();
        let membership: BTreeMap<String, BTreeSet<&str>> = members
            .iter()
            .filter_map(|u| {
                let groups = u["latestGroups"].as_array()?;
                Some((
                    login_of(u)?,
                    groups.iter().filter_map(Value::as_str).collect(),
                ))
            })
            .collect();
        for u in users {
            let Some(login) = login_of(u) else { continue };
            self.managed.insert(login.clone());
            self.user(cx, &login, text(u, "invitationEmail"), true);
            let own = rules(u);
            let known = groups_complete && (members_complete || membership.contains_key(&login));
            let of_groups: Vec<(&str, &str, &str)> = membership
                .get(&login)
                .into_iter()
                .flatten()
                .filter_map(|g| group_rules.get_key_value(g))
                .flat_map(|(g, rules)| rules.iter().map(|(s, l)| (*g, s.as_str(), l.as_str())))
                .collect();
            let roles =
                effective_roles(own.iter().map(|(s, l)| (s.as_str(), l.as_str())), of_groups);
            for (space, (role, via)) in roles {
                if !known && rank(&role) < rank("ADMIN") {
                    continue;
                }
                // `group` is null for an own rule: properties merge into the stored edge,
                // and null removes a group named by an earlier sync.
                let (via, group) = match via {
                    Via::Direct => ("direct", None),
                    Via::Group(g) => {
                        self.group_roles += 1;
                        ("group", Some(g))
                    }
                };
                cx.edge(
                    HAS_ROLE_IN,
                    (USER, "id", login.as_str()),
                    (SPACE, "id", space),
                )
                .prop("role", role)
                .prop("via", via)
                .prop("group", group)
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
                .prop("created_at", text(r, "createdAt"))
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
                        .prop("timestamp", text(c, "timestamp"))
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
            .prop("event_time", e.event_time.as_str())
            .prop("event_name", e.event_name.as_str())
            .prop("aws_account", e.aws_account.as_str())
            .prop("aws_region", e.aws_region.as_str())
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
    fn the_highest_role_wins_and_names_its_source() {
        let roles = effective_roles(
            [("root", "ADMIN"), ("dev", "READ"), ("ops", "WRITE")],
            [
                ("platform", "root", "WRITE"),
                ("platform", "dev", "ADMIN"),
                ("b-team", "ops", "WRITE"),
                ("a-team", "qa", "READ"),
                ("c-team", "qa", "READ"),
            ],
        );
        let got: Vec<(&str, &str, Via)> = roles
            .iter()
            .map(|(s, (r, v))| (s.as_str(), r.as_str(), v.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("dev", "admin", Via::Group("platform".into())),
                ("ops", "write", Via::Direct),
                ("qa", "read", Via::Group("a-team".into())),
                ("root", "admin", Via::Direct),
            ]
        );
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
