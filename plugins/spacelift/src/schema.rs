//! Every node and relationship the plugin writes, as the detailed sections of
//! `docs/providers/spacelift.md` give them. Where the schema's diagram disagrees with its
//! sections (`GENERATES`, `EXECUTES`, `AFFECTS`), the sections win (issue 7).

use infragraph_sdk::{Access, EdgeKind, NodeKind, ValueType};

pub const ACCOUNT: &str = "SpaceliftAccount";
pub const SPACE: &str = "SpaceliftSpace";
pub const STACK: &str = "SpaceliftStack";
pub const WORKER_POOL: &str = "SpaceliftWorkerPool";
pub const WORKER: &str = "SpaceliftWorker";
pub const RUN: &str = "SpaceliftRun";
pub const COMMIT: &str = "SpaceliftGitCommit";
pub const USER: &str = "SpaceliftUser";
/// Owned by an AWS plugin: linked to, never emitted.
pub const EC2_INSTANCE: &str = "EC2Instance";
/// Owned by a GitHub plugin: linked to, never emitted.
pub const GITHUB_USER: &str = "GitHubUser";

pub const RESOURCE: &str = "RESOURCE";
pub const CONTAINS: &str = "CONTAINS";
pub const GENERATED: &str = "GENERATED";
pub const TRIGGERED: &str = "TRIGGERED";
pub const EXECUTED: &str = "EXECUTED";
pub const COMMITTED: &str = "COMMITTED";
pub const AFFECTED: &str = "AFFECTED";
pub const HAS_ROLE_IN: &str = "HAS_ROLE_IN";
pub const CONFIRMED: &str = "CONFIRMED";
pub const PUSHED: &str = "PUSHED";

use ValueType::{Boolean, Text};

pub fn nodes() -> Vec<NodeKind> {
    vec![
        NodeKind::new(
            ACCOUNT,
            "A Spacelift account (organization): the scope of a sync",
        )
        .extra_label("Tenant")
        .prop(
            "spacelift_account_id",
            Text,
            "The Spacelift account identifier",
        )
        .prop(
            "name",
            Text,
            "Display name of the account (the account id when the API gives none)",
        ),
        NodeKind::new(
            SPACE,
            "A space: a container of stacks and worker pools, in a tree",
        )
        .prop("name", Text, "Name of the space")
        .prop("description", Text, "Description of the space")
        .prop("is_root", Boolean, "Whether the space has no parent space")
        .prop(
            "spacelift_account_id",
            Text,
            "The account the space belongs to",
        )
        .prop(
            "parent_spacelift_account_id",
            Text,
            "The account, set only for root spaces",
        )
        .prop(
            "parent_space_id",
            Text,
            "The parent space, set only for child spaces",
        ),
        NodeKind::new(
            STACK,
            "A stack: source code, state and configuration together",
        )
        .prop("name", Text, "Name of the stack")
        .prop("description", Text, "Description of the stack")
        .prop("state", Text, "Current state of the stack")
        .prop(
            "administrative",
            Boolean,
            "Whether the stack is administrative",
        )
        .prop("repository", Text, "VCS repository of the stack")
        .prop("branch", Text, "Git branch the stack tracks")
        .prop(
            "project_root",
            Text,
            "Directory of the code in the repository",
        )
        .indexed_prop("space_id", Text, "The space the stack belongs to")
        .prop(
            "spacelift_account_id",
            Text,
            "The account the stack belongs to",
        ),
        NodeKind::new(WORKER_POOL, "A pool of workers that execute runs")
            .prop("name", Text, "Name of the worker pool")
            .prop("description", Text, "Description of the worker pool")
            .prop(
                "pool_type",
                Text,
                "PRIVATE: the API has no pool type, and every pool it lists is a private one \
                 (the public pool is no listed pool: a stack on it has no workerPool)",
            )
            .prop("space_id", Text, "The space the pool belongs to")
            .prop(
                "spacelift_account_id",
                Text,
                "The account the pool belongs to",
            ),
        NodeKind::new(WORKER, "A worker: executes one run at a time")
            .prop(
                "name",
                Text,
                "The `name` key of the worker's metadata (SPACELIFT_METADATA_name), else its id",
            )
            .prop(
                "status",
                Text,
                "DRAINED, BUSY or IDLE, from the worker's drained and busy flags (the API has \
                 no status field)",
            )
            .prop("worker_pool_id", Text, "The pool the worker belongs to")
            .prop(
                "spacelift_account_id",
                Text,
                "The account the worker belongs to",
            ),
        NodeKind::new(RUN, "A run: one execution of a stack's configuration")
            .prop("run_type", Text, "TRACKED, PROPOSED, TASK, ...")
            .prop("state", Text, "Current state of the run")
            .indexed_prop("commit_sha", Text, "The Git commit the run used")
            .prop("branch", Text, "Git branch of the run")
            .prop(
                "created_at",
                Text,
                "When the run was created, RFC 3339 UTC (the API gives Unix seconds)",
            )
            .indexed_prop("stack_id", Text, "The stack the run belongs to")
            .prop(
                "triggered_by_user_id",
                Text,
                "Who triggered the run (a login, or e.g. vcs/commit)",
            )
            .prop(
                "spacelift_account_id",
                Text,
                "The account the run belongs to",
            ),
        NodeKind::new(COMMIT, "A Git commit a run used, keyed by its SHA")
            .prop("sha", Text, "The commit SHA")
            .prop("message", Text, "Commit message")
            .prop(
                "timestamp",
                Text,
                "When the commit was made, RFC 3339 UTC (the API gives Unix seconds)",
            )
            .prop("url", Text, "URL of the commit in the VCS")
            .indexed_prop("author_login", Text, "Login of the commit's author")
            .prop("author_name", Text, "Full name of the commit's author"),
        NodeKind::new(
            USER,
            "A human or machine identity acting in Spacelift, keyed by its login",
        )
        .extra_label("UserAccount")
        .indexed_prop("username", Text, "Login of the user")
        .prop("email", Text, "Email address of the user")
        .prop(
            "name",
            Text,
            "Name of the user (the email's local part when that is all the API gives)",
        )
        .prop(
            "user_type",
            Text,
            "human, or machine for triggers such as vcs/commit (the schema's two kinds)",
        ),
    ]
}

pub fn edges() -> Vec<EdgeKind> {
    // What the account holds is inside it for access, except its users: principals, not
    // resources to reach.
    let resource = |to: &str| {
        let kind = EdgeKind::new(RESOURCE, ACCOUNT, to, "The account holds this resource");
        if to == USER {
            kind
        } else {
            kind.access(Access::containment())
        }
    };
    vec![
        // (:SpaceliftAccount)-[:RESOURCE]->(:SpaceliftSpace), and so on for each label.
        resource(SPACE),
        resource(STACK),
        resource(USER),
        resource(WORKER_POOL),
        resource(WORKER),
        resource(RUN),
        resource(COMMIT),
        // (:SpaceliftSpace)-[:CONTAINS]->(:SpaceliftSpace)
        EdgeKind::new(
            CONTAINS,
            SPACE,
            SPACE,
            "The parent space holds the child space",
        )
        .access(Access::containment()),
        // (:SpaceliftSpace)-[:CONTAINS]->(:SpaceliftStack)
        EdgeKind::new(CONTAINS, SPACE, STACK, "The space holds the stack")
            .access(Access::containment()),
        // (:SpaceliftSpace)-[:CONTAINS]->(:SpaceliftWorkerPool)
        EdgeKind::new(
            CONTAINS,
            SPACE,
            WORKER_POOL,
            "The space holds the worker pool",
        )
        .access(Access::containment()),
        // (:SpaceliftWorkerPool)-[:CONTAINS]->(:SpaceliftWorker)
        EdgeKind::new(CONTAINS, WORKER_POOL, WORKER, "The pool holds the worker")
            .access(Access::containment()),
        // (:SpaceliftStack)-[:GENERATED]->(:SpaceliftRun)
        EdgeKind::new(GENERATED, STACK, RUN, "The stack generated the run")
            .access(Access::containment()),
        // (:SpaceliftUser)-[:TRIGGERED]->(:SpaceliftRun)
        EdgeKind::new(TRIGGERED, USER, RUN, "The user triggered the run"),
        // (:SpaceliftWorker)-[:EXECUTED]->(:SpaceliftRun)
        EdgeKind::new(
            EXECUTED,
            WORKER,
            RUN,
            "The worker is executing the run: the only busy worker of the run's pool at sync time",
        ),
        // (:SpaceliftGitCommit)-[:COMMITTED]->(:SpaceliftRun)
        EdgeKind::new(COMMITTED, COMMIT, RUN, "The run used this commit"),
        // (:SpaceliftRun)-[:AFFECTED]->(:EC2Instance)
        EdgeKind::new(
            AFFECTED,
            RUN,
            EC2_INSTANCE,
            "The run created, changed or called the instance (entities API or CloudTrail)",
        )
        .prop("event_time", Text, "CloudTrail: when the call was made")
        .prop(
            "event_name",
            Text,
            "CloudTrail: the API call, e.g. RunInstances",
        )
        .prop(
            "aws_account",
            Text,
            "CloudTrail: the AWS account of the call",
        )
        .prop("aws_region", Text, "CloudTrail: the AWS region of the call"),
        // (:SpaceliftUser)-[:HAS_ROLE_IN {role}]->(:SpaceliftSpace)
        EdgeKind::new(HAS_ROLE_IN, USER, SPACE, "The user has a role in the space")
            .prop(
                "role",
                Text,
                "read, write or admin: the user's own access rule (IdP group rules are not \
                 attributable: the API names no user's groups)",
            )
            .access(Access::grant(["role"])),
        // (:SpaceliftGitCommit)-[:CONFIRMED]->(:SpaceliftUser)
        EdgeKind::new(
            CONFIRMED,
            COMMIT,
            USER,
            "A person confirmed the commit by triggering a run of it",
        ),
        // (:GitHubUser)-[:PUSHED]->(:SpaceliftGitCommit)
        EdgeKind::new(
            PUSHED,
            GITHUB_USER,
            COMMIT,
            "The GitHub user (username = author_login) authored the commit",
        ),
    ]
}
