//! Every node and relationship the plugin writes (issue 9, `docs/providers/critical.md`).

use infragraph_sdk::{Access, EdgeKind, NodeKind, ValueType};

pub const INSTANCE: &str = "CriticalInstance";
pub const USER: &str = "CriticalUser";
pub const GROUP: &str = "CriticalGroup";
pub const SERVICE_ACCOUNT: &str = "CriticalServiceAccount";
pub const PIPELINE_ACCOUNT: &str = "CriticalPipelineAccount";
pub const PROJECT: &str = "CriticalProject";
pub const REPOSITORY: &str = "CriticalRepository";
pub const PERMISSION: &str = "CriticalPermission";

/// The principal labels: every one may be a member of a group, hold a permission and be
/// named in an ACL.
pub const PRINCIPALS: [&str; 4] = [USER, GROUP, SERVICE_ACCOUNT, PIPELINE_ACCOUNT];
/// What an ACL can guard: projects, and every principal but a user (users have none).
pub const ACL_TARGETS: [&str; 4] = [PROJECT, GROUP, SERVICE_ACCOUNT, PIPELINE_ACCOUNT];

pub const RESOURCE: &str = "RESOURCE";
pub const MEMBER_OF: &str = "MEMBER_OF";
pub const EFFECTIVE_MEMBER_OF: &str = "EFFECTIVE_MEMBER_OF";
pub const HAS_PERMISSION: &str = "HAS_PERMISSION";
pub const CAN_ACCESS: &str = "CAN_ACCESS";
pub const IN_ACL_OF: &str = "IN_ACL_OF";
pub const LINKS: &str = "LINKS";

use ValueType::{Boolean, Int, Text, TextList};

/// The properties every Critical resource document carries: `meta`, `hash_code`,
/// `deletion`, and the last entry of its `resource_history`.
fn resource(kind: NodeKind) -> NodeKind {
    kind.prop("created_at", Text, "meta.created_at: when it was created")
        .prop("created_by", Text, "meta.created_by: the principal that created it")
        .prop("updated_at", Text, "meta.updated_at: when it was last updated")
        .prop("updated_by", Text, "meta.updated_by: the principal that last updated it")
        .prop("labels", TextList, "meta.labels, as `key=value`")
        .prop("annotations", TextList, "meta.annotations, as `key=value`")
        .prop("hash_code", Text, "Hash of the desired state (Critical's conflict detection)")
        .prop(
            "deleted_at",
            Text,
            "deletion.deleted_at; only on soft-deleted documents, written when include_deleted is set",
        )
        .prop("deleted_by", Text, "deletion.deleted_by; see deleted_at")
        .prop("revision", Int, "Revision of its last resource_history entry (1-based)")
        .prop("changed_by", Text, "Who made that last change (resource_history.changed_by)")
        .prop("changed_at", Text, "When (resource_history.changed_at)")
}

pub fn nodes() -> Vec<NodeKind> {
    vec![
        NodeKind::new(
            INSTANCE,
            "A Critical database, keyed by its URL `<connection string>/_db/<name>`: the scope of a sync",
        )
        .prop("url", Text, "The connection string (DB_CONNECTION_STRING)")
        .prop("database", Text, "The database name (DB_NAME)"),
        resource(
            NodeKind::new(USER, "A human account (collection users, key prefix u_)")
                .extra_label("UserAccount")
                .indexed_prop("name", Text, "personal.name")
                .prop("gender", Text, "personal.gender")
                .prop("job_title", Text, "personal.job_title")
                .prop("manager", Text, "personal.manager: the user id of their manager")
                .prop("avatar_ulid", Text, "Id of the avatar image")
                .prop(
                    "last_sign_in_at",
                    Text,
                    "Latest sign_in event in resource_events",
                ),
        ),
        resource(
            NodeKind::new(
                GROUP,
                "A group of principals, which may itself be a member of groups (collection groups, prefix g_)",
            )
            .extra_label("UserAccount")
            .indexed_prop("name", Text, "Group name")
            .prop("description", Text, "What the group is for"),
        ),
        resource(
            NodeKind::new(
                SERVICE_ACCOUNT,
                "A non-human API principal authenticating with a token (collection service_accounts, prefix sa_)",
            )
            .extra_label("UserAccount")
            .indexed_prop("name", Text, "Account name")
            .prop("description", Text, "What it is for"),
        ),
        resource(
            NodeKind::new(
                PIPELINE_ACCOUNT,
                "A CI/CD principal scoped to a pipeline or project (collection pipeline_accounts, prefix pa_)",
            )
            .extra_label("UserAccount")
            .indexed_prop("name", Text, "Account name")
            .prop("description", Text, "What it is for")
            .prop("scope", Text, "The pipeline or project it is scoped to"),
        ),
        resource(
            NodeKind::new(PROJECT, "A project: a namespace of work items (collection projects)")
                .indexed_prop("name", Text, "Project name")
                .prop("description", Text, "Project description")
                .prop(
                    "enabled_services",
                    TextList,
                    "Feature modules enabled (tasks, pipelines, wikis, ...)",
                ),
        ),
        NodeKind::new(REPOSITORY, "A source repository linked to projects, keyed by its URL")
            .prop("url", Text, "The repository URL")
            .prop("provider", Text, "git, github, gitlab, bitbucket, svn, mercurial or custom"),
        NodeKind::new(
            PERMISSION,
            "A global super-permission (collection permissions), keyed by its name",
        )
        .prop("description", Text, "What it allows, for the permissions Critical documents"),
    ]
}

fn edge(rel: &str, from: &str, to: &str, description: &str) -> EdgeKind {
    EdgeKind::new(rel, from, to, description)
}

pub fn edges() -> Vec<EdgeKind> {
    let mut out = Vec::new();
    // (:CriticalInstance)-[:RESOURCE]->(every other label)
    for to in [
        USER,
        GROUP,
        SERVICE_ACCOUNT,
        PIPELINE_ACCOUNT,
        PROJECT,
        REPOSITORY,
        PERMISSION,
    ] {
        let holds = edge(RESOURCE, INSTANCE, to, "The database holds it");
        // Projects and repositories are inside the database for access; its principals
        // and permissions are not resources to reach.
        out.push(if [PROJECT, REPOSITORY].contains(&to) {
            holds.access(Access::containment())
        } else {
            holds
        });
    }
    for from in PRINCIPALS {
        // (:<principal>)-[:MEMBER_OF]->(:CriticalGroup)
        out.push(
            edge(
                MEMBER_OF,
                from,
                GROUP,
                "A direct membership: an edge of the memberships collection",
            )
            .access(Access::membership()),
        );
        // (:<principal>)-[:EFFECTIVE_MEMBER_OF]->(:CriticalGroup)
        out.push(
            edge(
                EFFECTIVE_MEMBER_OF,
                from,
                GROUP,
                "Computed: a member directly or through nested groups, within Critical's 10 levels",
            )
            .prop(
                "depth",
                Int,
                "Fewest membership steps to the group; 1 is direct",
            ),
        );
        // (:<principal>)-[:HAS_PERMISSION]->(:CriticalPermission)
        out.push(
            edge(
                HAS_PERMISSION,
                from,
                PERMISSION,
                "Holds a global super-permission, directly (permissions.principals) or through a group",
            )
            .prop(
                "inherited",
                Boolean,
                "True when held only through groups; false when granted to the principal itself",
            )
            .prop(
                "via",
                TextList,
                "The groups it comes through, nearest first (empty when only direct)",
            )
            .access(Access::grant(Vec::<String>::new())),
        );
        for to in ACL_TARGETS {
            // (:<principal>)-[:CAN_ACCESS]->(:CriticalProject | :CriticalGroup | ...)
            out.push(
                edge(
                    CAN_ACCESS,
                    from,
                    to,
                    "Named in the target's ACL, directly or through groups",
                )
                .prop(
                    "permissions",
                    TextList,
                    "Permission flags granted on the whole target (FETCH, LIST, NOTIFY, CREATE, MODIFY, CUSTOM1, CUSTOM2): the entries scoped `*` together",
                )
                .prop("permission_bits", Int, "The same flags as Critical's bit set")
                .prop(
                    "service_permissions",
                    TextList,
                    "Flags granted on one service of the target only, one `<service>: <flags>` per service (absent when none)",
                )
                .prop(
                    "scope",
                    TextList,
                    "Services the entries apply to; `*` for all (an entry without scope)",
                )
                .prop(
                    "inherited",
                    Boolean,
                    "True when granted only through groups; false when the ACL names the principal",
                )
                .prop(
                    "via",
                    TextList,
                    "The groups it comes through, nearest first (empty when only direct)",
                )
                .prop(
                    "grants",
                    TextList,
                    "Every ACL entry behind the edge, as `<direct or group>: <scope>: <flags>`",
                ),
                // No access meaning: it is derived. The access questions derive the same
                // from IN_ACL_OF and MEMBER_OF, which is how a benchmark checks one
                // against the other.
            );
            // (:<principal>)-[:IN_ACL_OF]->(:CriticalProject | :CriticalGroup | ...)
            out.push(
                edge(
                    IN_ACL_OF,
                    from,
                    to,
                    "The target's ACL names the principal itself (not through a group)",
                )
                .prop(
                    "permissions",
                    TextList,
                    "Flags its entries scoped `*` grant on the whole target",
                )
                .prop("permission_bits", Int, "The same flags as Critical's bit set")
                .prop(
                    "service_permissions",
                    TextList,
                    "Flags its entries grant on one service only, one `<service>: <flags>` per service (absent when none)",
                )
                .access(Access::grant(["permissions", "service_permissions"])),
            );
        }
    }
    // (:CriticalProject)-[:LINKS]->(:CriticalRepository)
    out.push(
        edge(
            LINKS,
            PROJECT,
            REPOSITORY,
            "The project links the repository",
        )
        .prop("name", Text, "The link's display name")
        .prop("default_branch", Text, "The branch the project follows")
        .prop(
            "auth_method",
            Text,
            "How Critical authenticates to it (never the credential)",
        ),
    );
    out
}

/// What the super-permissions Critical documents allow (`critical-arangodb.md`).
pub fn permission_description(name: &str) -> Option<&'static str> {
    Some(match name {
        "adm_user_manager" => "Full control over users, groups and memberships",
        "adm_config_editor" => "Edit the global configuration",
        "usr_create_groups" => "Create new groups (granted on registration)",
        "usr_create_projects" => "Create new projects",
        _ => return None,
    })
}
