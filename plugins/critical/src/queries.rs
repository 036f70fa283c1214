//! Every AQL query the plugin runs. Each names the attributes it reads, so that what the
//! graph must never hold (`password_hash`, `token_hash`, a repository's `credential`, the
//! full `snapshot` of a history entry) never leaves the database at all.
//!
//! The simulator in `infragraph-tests` answers exactly these texts (whitespace aside) and
//! refuses any other with an AQL error: change one here and there together.

/// One query: what it lists, for messages, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The collection it reads, named in errors.
    pub collection: &'static str,
    pub aql: &'static str,
}

/// Users, without `password_hash`. `@include_deleted` keeps soft-deleted ones.
pub const USERS: Query = Query {
    collection: "users",
    aql: "FOR d IN users FILTER @include_deleted OR d.deletion == null \
          RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
          deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
          deleted: d.deletion != null, personal: d.personal, avatar_ulid: d.avatar_ulid}",
};

/// Groups with their ACL.
pub const GROUPS: Query = Query {
    collection: "groups",
    aql: "FOR d IN groups FILTER @include_deleted OR d.deletion == null \
          RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
          deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
          deleted: d.deletion != null, name: d.name, description: d.description, \
          acl: d.acl.list}",
};

/// Service accounts, without `token_hash`.
pub const SERVICE_ACCOUNTS: Query = Query {
    collection: "service_accounts",
    aql: "FOR d IN service_accounts FILTER @include_deleted OR d.deletion == null \
          RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
          deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
          deleted: d.deletion != null, name: d.name, description: d.description, \
          acl: d.acl.list}",
};

/// Pipeline accounts, without `token_hash`.
pub const PIPELINE_ACCOUNTS: Query = Query {
    collection: "pipeline_accounts",
    aql: "FOR d IN pipeline_accounts FILTER @include_deleted OR d.deletion == null \
          RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
          deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
          deleted: d.deletion != null, name: d.name, description: d.description, \
          scope: d.scope, acl: d.acl.list}",
};

/// Projects, their ACL and their repositories without the repository `credential`.
pub const PROJECTS: Query = Query {
    collection: "projects",
    aql: "FOR d IN projects FILTER @include_deleted OR d.deletion == null \
          RETURN {key: d._key, meta: d.meta, hash_code: d.hash_code, \
          deleted_at: d.deletion.deleted_at, deleted_by: d.deletion.deleted_by, \
          deleted: d.deletion != null, name: d.name, description: d.description, \
          enabled_services: d.enabled_services, acl: d.acl.list, \
          repositories: d.repositories[* RETURN {url: CURRENT.url, \
          provider: CURRENT.provider, name: CURRENT.name, \
          default_branch: CURRENT.default_branch, auth_method: CURRENT.auth_method}]}",
};

/// Every membership edge as `[_from, _to]`: the smallest rows of the sync.
pub const MEMBERSHIPS: Query = Query {
    collection: "memberships",
    aql: "FOR m IN memberships RETURN [m._from, m._to]",
};

/// The global super-permissions and who holds each directly.
pub const PERMISSIONS: Query = Query {
    collection: "permissions",
    aql: "FOR p IN permissions RETURN {key: p._key, principals: p.principals}",
};

/// The last change of every resource of `@kinds`, as
/// `[kind, key, revision, changed_by, changed_at]`: aggregated in the database, so the
/// rows are one per resource, not one per revision, and no snapshot is read.
pub const LAST_CHANGES: Query = Query {
    collection: "resource_history",
    aql: "FOR h IN resource_history FILTER h.resource_kind IN @kinds \
          COLLECT kind = h.resource_kind, key = h.resource_key \
          INTO changes = {revision: h.revision, changed_by: h.changed_by, changed_at: h.changed_at} \
          LET last = FIRST(FOR c IN changes SORT c.revision DESC LIMIT 1 RETURN c) \
          RETURN [kind, key, last.revision, last.changed_by, last.changed_at]",
};

/// Every user's last sign-in, as `[key, timestamp]`.
pub const LAST_SIGN_INS: Query = Query {
    collection: "resource_events",
    aql: "FOR e IN resource_events \
          FILTER e.resource_kind == \"users\" AND e.event_type == \"sign_in\" \
          COLLECT key = e.resource_key AGGREGATE last = MAX(e.timestamp) \
          RETURN [key, last]",
};

/// Every query, for the tests of this list.
#[cfg(test)]
const ALL: [Query; 9] = [
    USERS,
    GROUPS,
    SERVICE_ACCOUNTS,
    PIPELINE_ACCOUNTS,
    PROJECTS,
    MEMBERSHIPS,
    PERMISSIONS,
    LAST_CHANGES,
    LAST_SIGN_INS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_query_reads_a_secret() {
        for q in ALL {
            for secret in ["password", "token", "credential", "snapshot"] {
                assert!(!q.aql.contains(secret), "{} reads {secret}", q.collection);
            }
            assert!(
                q.aql.contains(&format!(" IN {}", q.collection)),
                "{}",
                q.aql
            );
            assert!(!q.aql.contains("  "), "one space between words: {}", q.aql);
        }
    }
}
