//! The organisation as the sync reads it: documents become nodes as their batches arrive,
//! while what the computed edges need (who is in which group, who is granted what) is
//! kept in compact, interned form until every collection has been read.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use infragraph_sdk::{Context, NodeBuilder};

use crate::docs::{self, Account, Doc, Permission, Project, User};
use crate::effective::{self, Access, Grants, Memberships};
use crate::perms;
use crate::schema::*;

/// The four principal collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    ServiceAccount,
    PipelineAccount,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::User => USER,
            Kind::Group => GROUP,
            Kind::ServiceAccount => SERVICE_ACCOUNT,
            Kind::PipelineAccount => PIPELINE_ACCOUNT,
        }
    }

    /// The order principals are written in.
    fn order(self) -> u8 {
        self as u8
    }

    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::ServiceAccount => "service_accounts",
            Kind::PipelineAccount => "pipeline_accounts",
        }
    }
}

/// The last `resource_history` entry of a resource.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub revision: Option<i64>,
    pub changed_by: Option<String>,
    pub changed_at: Option<String>,
}

/// What the first phase reads: per-resource facts that land on nodes.
#[derive(Debug, Default)]
pub struct Facts {
    /// By `<collection>/<key>`.
    pub changes: HashMap<String, Change>,
    /// By user key.
    pub sign_ins: HashMap<String, String>,
}

/// Something an ACL guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Project(u32),
    Principal(u32),
}

/// A reference to something that does not exist (or is soft-deleted and not written), with
/// an example, reported once.
#[derive(Debug, Default)]
pub struct Dangling {
    pub count: u64,
    pub example: Option<String>,
}

impl Dangling {
    fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.example.is_none() {
            self.example = Some(what());
        }
    }
}

/// Counts for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    pub nodes: HashMap<&'static str, u64>,
    pub skipped_deleted: u64,
    pub effective_memberships: u64,
    pub inherited: u64,
    pub cycles: Vec<Vec<String>>,
    pub cut: Vec<String>,
    pub cut_count: u64,
    pub dangling: Dangling,
    pub bad_acl: Dangling,
    pub compute: Duration,
}

pub struct Org {
    instance: String,
    include_deleted: bool,
    facts: Facts,
    index: HashMap<String, u32>,
    ids: Vec<String>,
    /// `None`: named somewhere but no document read (yet, or at all).
    kinds: Vec<Option<Kind>>,
    deleted: Vec<bool>,
    project_index: HashMap<String, u32>,
    project_ids: Vec<String>,
    project_deleted: Vec<bool>,
    memberships: Vec<(u32, u32)>,
    permissions: Vec<(String, Vec<u32>)>,
    /// (target, principal, entry)
    grants: Vec<(Target, u32, u32, u32)>,
    scopes: Vec<String>,
    scope_index: HashMap<String, u32>,
    repositories: HashSet<String>,
    pub counts: Counts,
}

impl Org {
    pub fn new(instance: &str, include_deleted: bool, facts: Facts) -> Org {
        Org {
            instance: instance.to_owned(),
            include_deleted,
            facts,
            index: HashMap::new(),
            ids: Vec::new(),
            kinds: Vec::new(),
            deleted: Vec::new(),
            project_index: HashMap::new(),
            project_ids: Vec::new(),
            project_deleted: Vec::new(),
            memberships: Vec::new(),
            permissions: Vec::new(),
            grants: Vec::new(),
            scopes: Vec::new(),
            scope_index: HashMap::new(),
            repositories: HashSet::new(),
            counts: Counts::default(),
        }
    }

    fn principal(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.index.insert(key.to_owned(), i);
        self.ids.push(key.to_owned());
        self.kinds.push(None);
        self.deleted.push(false);
        i
    }

    fn project(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.project_index.get(key) {
            return i;
        }
        let i = self.project_ids.len() as u32;
        self.project_index.insert(key.to_owned(), i);
        self.project_ids.push(key.to_owned());
        self.project_deleted.push(false);
        i
    }

    fn scope(&mut self, scope: Option<&str>) -> u32 {
        let scope = scope.filter(|s| !s.is_empty()).unwrap_or("*");
        if let Some(&i) = self.scope_index.get(scope) {
            return i;
        }
        let i = self.scopes.len() as u32;
        self.scope_index.insert(scope.to_owned(), i);
        self.scopes.push(scope.to_owned());
        i
    }

    /// Whether a document is written at all: soft-deleted ones only when asked. The
    /// queries already filter them; this keeps the rule if a server returns one anyway.
    fn keep<T>(&mut self, doc: &Doc<T>) -> bool {
        let keep = !doc.deleted || self.include_deleted;
        if !keep {
            self.counts.skipped_deleted += 1;
        }
        keep
    }

    fn count(&mut self, label: &'static str) {
        *self.counts.nodes.entry(label).or_default() += 1;
    }

    /// The node of `doc` with the properties every resource has, and its `RESOURCE` edge.
    fn resource<'c, T>(
        &mut self,
        cx: &'c mut Context,
        label: &'static str,
        collection: &str,
        doc: &Doc<T>,
    ) -> NodeBuilder<'c> {
        self.count(label);
        cx.edge(
            RESOURCE,
            (INSTANCE, "id", self.instance.as_str()),
            (label, "id", doc.key.as_str()),
        )
        .emit();
        let meta = doc.meta.clone().unwrap_or_default();
        // Taken, not copied: each document's node is written once, and the entry is freed.
        let change = self
            .facts
            .changes
            .remove(&format!("{collection}/{}", doc.key))
            .unwrap_or_default();
        let deleted = doc.deleted;
        cx.node(label, doc.key.as_str())
            .prop("created_at", docs::text(&meta.created_at))
            .prop("created_by", meta.created_by)
            .prop("updated_at", docs::text(&meta.updated_at))
            .prop("updated_by", meta.updated_by)
            .prop("labels", docs::pairs(&meta.labels))
            .prop("annotations", docs::pairs(&meta.annotations))
            .prop("hash_code", doc.hash_code.clone())
            .prop(
                "deleted_at",
                deleted.then(|| docs::text(&doc.deleted_at)).flatten(),
            )
            .prop(
                "deleted_by",
                deleted.then(|| doc.deleted_by.clone()).flatten(),
            )
            .prop("revision", change.revision)
            .prop("changed_by", change.changed_by)
            .prop("changed_at", change.changed_at)
    }

    /// Registers a principal document read from `kind`'s collection.
    fn register(&mut self, kind: Kind, key: &str, deleted: bool) -> u32 {
        let i = self.principal(key);
        if let Some(other) = self.kinds[i as usize]
            && other != kind
        {
            // Keys carry their collection's prefix, so this takes a hand-edited database.
            self.counts.dangling.add(|| {
                format!(
                    "{key} is in both {} and {}; the graph keeps the latter",
                    other.collection(),
                    kind.collection()
                )
            });
        }
        self.kinds[i as usize] = Some(kind);
        self.deleted[i as usize] = deleted;
        i
    }

    fn acl(&mut self, target: Target, owner: &str, acl: &Option<Vec<docs::AclEntry>>) {
        for entry in acl.iter().flatten() {
            let bits = match perms::decode(&entry.permissions) {
                Ok(bits) => bits,
                Err(why) => {
                    self.counts
                        .bad_acl
                        .add(|| format!("an ACL entry of {owner}: {why}"));
                    continue;
                }
            };
            let scope = self.scope(entry.scope.as_deref());
            for p in &entry.principals {
                let p = self.principal(p);
                self.grants.push((target, p, scope, bits));
            }
        }
    }

    pub fn users(&mut self, cx: &mut Context, rows: Vec<Doc<User>>) {
        for doc in rows {
            if !self.keep(&doc) {
                continue;
            }
            self.register(Kind::User, &doc.key, doc.deleted);
            let personal = doc.fields.personal.clone().unwrap_or_default();
            let sign_in = self.facts.sign_ins.get(&doc.key).cloned();
            self.resource(cx, USER, "users", &doc)
                .prop("name", personal.name)
                .prop("gender", personal.gender)
                .prop("job_title", personal.job_title)
                .prop("manager", personal.manager)
                .prop("avatar_ulid", doc.fields.avatar_ulid)
                .prop("last_sign_in_at", sign_in)
                .emit();
        }
    }

    /// Groups, service accounts and pipeline accounts.
    pub fn accounts(&mut self, cx: &mut Context, kind: Kind, rows: Vec<Doc<Account>>) {
        for doc in rows {
            if !self.keep(&doc) {
                continue;
            }
            let i = self.register(kind, &doc.key, doc.deleted);
            self.acl(Target::Principal(i), &doc.key, &doc.fields.acl);
            let f = &doc.fields;
            let (name, description, scope) =
                (f.name.clone(), f.description.clone(), f.scope.clone());
            let mut node = self
                .resource(cx, kind.label(), kind.collection(), &doc)
                .prop("name", name)
                .prop("description", description);
            if kind == Kind::PipelineAccount {
                node = node.prop("scope", scope);
            }
            node.emit();
        }
    }

    pub fn projects(&mut self, cx: &mut Context, rows: Vec<Doc<Project>>) {
        for doc in rows {
            if !self.keep(&doc) {
                continue;
            }
            let i = self.project(&doc.key);
            self.project_deleted[i as usize] = doc.deleted;
            self.acl(Target::Project(i), &doc.key, &doc.fields.acl);
            let f = &doc.fields;
            let (name, description, services) = (
                f.name.clone(),
                f.description.clone(),
                f.enabled_services.clone(),
            );
            self.resource(cx, PROJECT, "projects", &doc)
                .prop("name", name)
                .prop("description", description)
                .prop("enabled_services", services)
                .emit();
            for repo in doc.fields.repositories.iter().flatten() {
                let Some(url) = repo.url.as_deref().filter(|u| !u.is_empty()) else {
                    continue;
                };
                // Several projects may link one repository: one node, one edge each.
                if self.repositories.insert(url.to_owned()) {
                    self.count(REPOSITORY);
                    cx.edge(
                        RESOURCE,
                        (INSTANCE, "id", self.instance.as_str()),
                        (REPOSITORY, "id", url),
                    )
                    .emit();
                    cx.node(REPOSITORY, url)
                        .prop("url", url)
                        .prop("provider", repo.provider.clone())
                        .emit();
                }
                cx.edge(
                    LINKS,
                    (PROJECT, "id", doc.key.as_str()),
                    (REPOSITORY, "id", url),
                )
                .prop("name", repo.name.clone())
                .prop("default_branch", repo.default_branch.clone())
                .prop("auth_method", repo.auth_method.clone())
                .emit();
            }
        }
    }

    pub fn memberships(&mut self, rows: Vec<docs::Membership>) {
        for (from, to) in rows {
            let key = |id: &str| id.split_once('/').map_or(id, |(_, k)| k).to_owned();
            let (m, g) = (self.principal(&key(&from)), self.principal(&key(&to)));
            self.memberships.push((m, g));
        }
    }

    pub fn permissions(&mut self, cx: &mut Context, rows: Vec<Permission>) {
        for p in rows {
            self.count(PERMISSION);
            cx.edge(
                RESOURCE,
                (INSTANCE, "id", self.instance.as_str()),
                (PERMISSION, "id", p.key.as_str()),
            )
            .emit();
            cx.node(PERMISSION, p.key.as_str())
                .prop("description", permission_description(&p.key))
                .emit();
            let holders = p
                .principals
                .iter()
                .flatten()
                .map(|k| self.principal(k))
                .collect();
            self.permissions.push((p.key, holders));
        }
    }

    fn written(&self, p: u32) -> bool {
        self.kinds[p as usize].is_some()
    }

    fn live(&self, p: u32) -> bool {
        self.written(p) && !self.deleted[p as usize]
    }

    fn end(&self, p: u32) -> (&'static str, &'static str, &str) {
        let kind = self.kinds[p as usize].expect("only written principals are edge ends");
        (kind.label(), "id", self.ids[p as usize].as_str())
    }

    /// Once every collection is read: the direct edges between principals, groups,
    /// permissions and ACL targets, then the computed ones.
    pub fn finish(&mut self, cx: &mut Context) {
        let n = self.ids.len();
        let is_group: Vec<bool> = self.kinds.iter().map(|k| *k == Some(Kind::Group)).collect();
        let mut graph = Memberships::new(is_group.clone());
        for i in 0..self.memberships.len() {
            let (m, g) = self.memberships[i];
            if !self.written(m) || !self.written(g) || !is_group[g as usize] {
                let (from, to) = (&self.ids[m as usize], &self.ids[g as usize]);
                let what = || format!("membership {from} -> {to}");
                self.counts.dangling.add(what);
                continue;
            }
            cx.edge(MEMBER_OF, self.end(m), self.end(g)).emit();
            // A soft-deleted principal or group has no memberships in Critical: deletion
            // moves its edges to `disconnected_edges`. One left behind grants nothing.
            if self.live(m) && self.live(g) {
                graph.add(m, g);
            }
        }

        // Permissions and ACL entries, as plain numbers for `effective`.
        let mut grants = Grants {
            perms: vec![Vec::new(); n],
            access: vec![Vec::new(); n],
        };
        let mut dangling = std::mem::take(&mut self.counts.dangling);
        for (perm, (name, holders)) in self.permissions.iter().enumerate() {
            for &p in holders {
                if self.written(p) {
                    grants.perms[p as usize].push(perm as u32);
                } else {
                    dangling.add(|| format!("permission {name} names {}", self.ids[p as usize]));
                }
            }
        }
        let mut targets: Vec<Target> = Vec::new();
        let mut target_index: HashMap<Target, u32> = HashMap::new();
        for &(target, p, scope, bits) in &self.grants {
            let target_written = match target {
                Target::Project(_) => true,
                Target::Principal(t) => self.written(t),
            };
            if !self.written(p) || !target_written {
                dangling.add(|| format!("an ACL names {}", self.ids[p as usize]));
                continue;
            }
            let t = *target_index.entry(target).or_insert_with(|| {
                targets.push(target);
                targets.len() as u32 - 1
            });
            grants.access[p as usize].push(Access {
                target: t,
                scope,
                bits,
            });
        }
        self.counts.dangling = dangling;

        let started = Instant::now();
        let mut reaches = graph.reaches();
        let cycles = graph.cycles();
        let mut compute = started.elapsed();
        self.counts.cycles = cycles
            .into_iter()
            .map(|c| {
                let mut ids: Vec<String> = c
                    .into_iter()
                    .map(|g| self.ids[g as usize].clone())
                    .collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        self.counts.cycles.sort_unstable();

        // Principals in chunks of one kind: each chunk is resolved, then written, so the
        // time spent computing is measured apart from the time spent handing records to
        // the host. A chunk is written one edge shape after another, so the SDK's batches
        // of one shape follow each other and the engine merges them into transactions of
        // its own size; interleaved shapes would make a transaction of every batch.
        let kinds = self.kinds.clone();
        let mut principals: Vec<u32> = (0..n as u32).filter(|&p| self.written(p)).collect();
        principals.sort_by_key(|&p| (kinds[p as usize].map(Kind::order), p));
        let chunks = principals
            .chunk_by(|&a, &b| kinds[a as usize] == kinds[b as usize])
            .flat_map(|same_kind| same_kind.chunks(1024));
        let mut resolved = Vec::new();
        for chunk in chunks {
            let started = Instant::now();
            resolved.clear();
            resolved.extend(
                chunk
                    .iter()
                    .map(|&p| (p, reaches.resolve(p, self.live(p), &grants))),
            );
            compute += started.elapsed();
            self.write_resolved(cx, &resolved, &targets);
        }
        self.counts.compute = compute;
    }

    /// The computed edges of principals of one kind, one edge shape after another.
    fn write_resolved(
        &mut self,
        cx: &mut Context,
        resolved: &[(u32, effective::Resolved)],
        targets: &[Target],
    ) {
        for (p, r) in resolved {
            if r.effective.cut {
                self.counts.cut_count += 1;
                if self.counts.cut.len() < 5 {
                    self.counts.cut.push(self.ids[*p as usize].clone());
                }
            }
            self.counts.effective_memberships += r.effective.groups.len() as u64;
            self.counts.inherited += r.perms.iter().filter(|h| !h.direct).count() as u64
                + r.access.iter().filter(|a| !a.direct).count() as u64;
        }
        // Nearest first, then by id, so the order does not depend on reading order; no
        // property at all when only direct.
        let via = |via: &[(u8, u32)]| -> Option<Vec<String>> {
            let mut named: Vec<(u8, &str)> = via
                .iter()
                .map(|&(d, g)| (d, self.ids[g as usize].as_str()))
                .collect();
            named.sort_unstable();
            let named: Vec<String> = named.into_iter().map(|(_, g)| g.to_owned()).collect();
            (!named.is_empty()).then_some(named)
        };
        for (p, r) in resolved {
            for &(g, depth) in &r.effective.groups {
                cx.edge(EFFECTIVE_MEMBER_OF, self.end(*p), self.end(g))
                    .prop("depth", i64::from(depth))
                    .emit();
            }
        }
        for (p, r) in resolved {
            for held in &r.perms {
                let name = self.permissions[held.perm as usize].0.as_str();
                cx.edge(HAS_PERMISSION, self.end(*p), (PERMISSION, "id", name))
                    .prop("inherited", !held.direct)
                    .prop("via", via(&held.via))
                    .emit();
            }
        }
        let target_end = |t: u32| match targets[t as usize] {
            Target::Project(i) => (PROJECT, "id", self.project_ids[i as usize].as_str()),
            Target::Principal(i) => self.end(i),
        };
        for label in ACL_TARGETS {
            for (p, r) in resolved {
                for reach in r.access.iter().filter(|a| target_end(a.target).0 == label) {
                    let mut scopes: Vec<String> = reach
                        .entries
                        .iter()
                        .map(|(_, a)| self.scopes[a.scope as usize].clone())
                        .collect();
                    scopes.sort_unstable();
                    scopes.dedup();
                    let mut entries: Vec<String> = reach
                        .entries
                        .iter()
                        .map(|(group, a)| {
                            let source = group.map_or("direct", |g| self.ids[g as usize].as_str());
                            let scope = &self.scopes[a.scope as usize];
                            format!("{source}: {scope}: {}", perms::text(a.bits))
                        })
                        .collect();
                    entries.sort_unstable();
                    // Project-wide flags (entries scoped `*`) apart from each service's:
                    // READ on the project and WRITE on `tasks` is not WRITE on the project.
                    let mut wide = 0;
                    let mut per_service: std::collections::BTreeMap<&str, u32> = Default::default();
                    for (_, a) in &reach.entries {
                        match self.scopes[a.scope as usize].as_str() {
                            "*" => wide |= a.bits,
                            service => *per_service.entry(service).or_default() |= a.bits,
                        }
                    }
                    let services: Vec<String> = per_service
                        .into_iter()
                        .map(|(service, bits)| format!("{service}: {}", perms::text(bits)))
                        .collect();
                    // The entries naming the principal itself, as the ACL has them: what
                    // the access questions walk from (the rest comes through MEMBER_OF).
                    let (mut own_wide, mut own_services) =
                        (0, std::collections::BTreeMap::<&str, u32>::new());
                    for (_, a) in reach.entries.iter().filter(|(g, _)| g.is_none()) {
                        match self.scopes[a.scope as usize].as_str() {
                            "*" => own_wide |= a.bits,
                            service => *own_services.entry(service).or_default() |= a.bits,
                        }
                    }
                    own_services.retain(|_, bits| *bits != 0);
                    if own_wide != 0 || !own_services.is_empty() {
                        let services: Vec<String> = own_services
                            .into_iter()
                            .map(|(service, bits)| format!("{service}: {}", perms::text(bits)))
                            .collect();
                        cx.edge(IN_ACL_OF, self.end(*p), target_end(reach.target))
                            .prop("permissions", perms::names(own_wide))
                            .prop("permission_bits", i64::from(own_wide))
                            .prop(
                                "service_permissions",
                                (!services.is_empty()).then_some(services),
                            )
                            .emit();
                    }
                    cx.edge(CAN_ACCESS, self.end(*p), target_end(reach.target))
                        .prop("permissions", perms::names(wide))
                        .prop("permission_bits", i64::from(wide))
                        .prop(
                            "service_permissions",
                            (!services.is_empty()).then_some(services),
                        )
                        .prop("scope", scopes)
                        .prop("inherited", !reach.direct)
                        .prop("via", via(&reach.via))
                        .prop("grants", entries)
                        .emit();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_their_collections_and_labels() {
        for (kind, collection) in [
            (Kind::User, "users"),
            (Kind::Group, "groups"),
            (Kind::ServiceAccount, "service_accounts"),
            (Kind::PipelineAccount, "pipeline_accounts"),
        ] {
            assert_eq!(kind.collection(), collection);
            assert!(PRINCIPALS.contains(&kind.label()));
        }
    }
}
