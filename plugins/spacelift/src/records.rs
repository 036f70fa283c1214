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
    (email, name, if person { "human" } else { "system" })
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
    /// Commits emitted, by SHA.
    pub commits: BTreeSet<String>,
    /// Users emitted, by login.
    pub users: BTreeSet<String>,
    /// Logins of managed users.
    managed: BTreeSet<String>,
    /// Triggers seen on runs, with the commits of the runs they triggered.
    triggers: BTreeMap<String, BTreeSet<String>>,
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
            commits: BTreeSet::new(),
            users: BTreeSet::new(),
            managed: BTreeSet::new(),
            triggers: BTreeMap::new(),
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

    /// The account node. The API documents no query for its display name, so `name` is
    /// left unset rather than guessed.
    pub fn account(&self, cx: &mut Context) {
        cx.node(ACCOUNT, self.account.as_str())
            .prop("spacelift_account_id", self.account.as_str())
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

    /// Workers of each pool (`workerPools { id workers { id status } }`). The API gives a
    /// worker no name, so `name` is set only when one is present.
    pub fn workers(&mut self, cx: &mut Context, pools: &[Value]) {
        for p in pools {
            let Some(pool) = text(p, "id") else { continue };
            for w in p["workers"].as_array().into_iter().flatten() {
                let Some(id) = text(w, "id") else { continue };
                cx.node(WORKER, id)
                    .prop("name", text(w, "name"))
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

    /// Managed users with their per-space access rules: one `HAS_ROLE_IN {role}` per rule
    /// (the edge the original tool declared but never wrote).
    pub fn managed_users(&mut self, cx: &mut Context, items: &[Value]) {
        for u in items {
            let Some(login) = text(u, "username").or_else(|| text(u, "id")) else {
                continue;
            };
            self.managed.insert(login.to_owned());
            self.user(cx, login, text(u, "email"), true);
            for rule in u["accessRules"].as_array().into_iter().flatten() {
                let (Some(space), Some(level)) =
                    (text(rule, "space"), text(rule, "spaceAccessLevel"))
                else {
                    continue;
                };
                cx.edge(HAS_ROLE_IN, (USER, "id", login), (SPACE, "id", space))
                    .prop("role", level.to_ascii_lowercase())
                    .emit();
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
            (None, "vcs/commit", "system")
        );
        let managed = BTreeSet::from(["jdoe".to_string()]);
        assert!(is_person("jdoe", &managed));
        assert!(!is_person("vcs/commit", &managed));
    }
}
