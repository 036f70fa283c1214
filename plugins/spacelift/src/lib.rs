//! The Spacelift provider (issue 7): an account's spaces, stacks, worker pools, workers,
//! runs, the Git commits runs used, users and their roles per space, and the EC2
//! instances runs affected, as `docs/providers/spacelift.md` describes them. Decisions
//! are in this crate's `README.md`.
//!
//! One sync: exchange the API key for a JWT (`apiKeyUser`; the host writes the secret into
//! the request body), then ask for the account's name, spaces, stacks, worker pools,
//! workers, users, their IdP groups and the groups' rules, and entities in one concurrent
//! round, then page every stack's runs (`stack(id) { runs(before:)
//! }`), all stacks at once, round after round, emitting each page as it arrives. Nodes and
//! edges are emitted together and the host writes edges after every node, so edges between
//! records of this sync (e.g. `COMMITTED`) exist after the first sync. If the JWT expires
//! mid-sync, the key is exchanged again and the refused queries are resent.

mod cloudtrail;
mod graphql;
mod records;
mod schema;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, Ingestor, Manifest, Summary, SyncError,
    export_ingestor,
};
use serde_json::{Value, json};

use crate::graphql::{Answer, Client, Query};
use crate::records::Emitted;
use crate::schema::{ACCOUNT, COMMIT, RUN, SPACE, STACK, USER, WORKER, WORKER_POOL};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The queries of `tests/fixtures/spacelift/graphql_queries.json`, with the fields the
/// schema needs added (`type` of a worker pool, a stack's `workerPool`, a worker's `busy`
/// and `metadata`), and the account's `name`, `managedUsers`, `managedUserGroups` and run
/// paging from the public Spacelift schema (README: "Where the queries come from").
const ACCOUNT_NAME: &str = "query AccountName { name }";
const SPACES: &str = "query { spaces { id name description parentSpace } }";
const STACKS: &str = "query { stacks { id name description state administrative repository branch projectRoot space workerPool { id } } }";
const WORKER_POOLS: &str = "query { workerPools { id name description type space } }";
const WORKERS: &str = "query { workerPools { id workers { id status busy metadata } } }";
const USERS: &str =
    "query { managedUsers { id username invitationEmail accessRules { space spaceAccessLevel } } }";
/// The IdP groups each user was in at the last login, asked apart from the users so that
/// a failure costs the group roles only.
const MEMBERSHIPS: &str = "query { managedUsers { id username latestGroups } }";
const GROUPS: &str =
    "query { managedUserGroups { id groupName accessRules { space spaceAccessLevel } } }";
const ENTITIES: &str = "query { stacks { id entities { type creator { id } updater { id } vendor { __typename ... on EntityVendorTerraform { terraform { __typename ... on TerraformResource { values } } } } } } }";
/// Runs of one stack, newest first, a page at a time: `before` is the last run of the
/// previous page. A stack with thousands of runs is never one unbounded answer.
const RUNS: &str = "query StackRuns($stack: ID!, $before: ID) { stack(id: $stack) { id runs(before: $before) { id type state commit { hash authorLogin authorName message timestamp url } branch createdAt triggeredBy } } }";

/// Stacks whose runs are asked for in one host call.
const RUN_BATCH: usize = 64;

struct Spacelift;

impl Ingestor for Spacelift {
    fn manifest() -> Manifest {
        let secret = Credential::new(
            "api_key_secret",
            "SPACELIFT_API_KEY_SECRET",
            "Secret of the Spacelift API key, exchanged for a JWT",
            CredentialUse::JsonBody,
        )
        .host("*.app.spacelift.io")
        .host("{config:api_key_endpoint}");
        let aws_secret = Credential::new(
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "AWS secret access key reading the CloudTrail export in S3; the host signs with it",
            CredentialUse::AwsSigv4 {
                access_key_id: "aws_access_key_id".into(),
                region: "aws_region".into(),
                service: "s3".into(),
                session_token: Some("aws_session_token".into()),
            },
        )
        .host("{config:ec2_ownership_s3_endpoint}")
        .optional();
        let aws_token = Credential::new(
            "aws_session_token",
            "AWS_SESSION_TOKEN",
            "Session token of temporary AWS credentials; the host signs it in",
            CredentialUse::Header,
        )
        .host("{config:ec2_ownership_s3_endpoint}")
        .optional();
        let mut manifest = Manifest::new(
            "spacelift",
            VERSION,
            "Spacelift spaces, stacks, runs, commits, workers and users, and the EC2 instances runs affect",
        )
        .host("*.app.spacelift.io")
        .credential(secret)
        .credential(aws_secret)
        .credential(aws_token)
        .config(
            ConfigKey::endpoint(
                "api_key_endpoint",
                "GraphQL endpoint of the account, e.g. https://acme.app.spacelift.io/graphql",
            )
            .env("SPACELIFT_API_KEY_ENDPOINT")
            .required(),
        )
        .config(
            ConfigKey::text("api_key_id", "Id of the Spacelift API key")
                .env("SPACELIFT_API_KEY_ID")
                .required(),
        )
        .config(
            ConfigKey::text(
                "account_id",
                "Account id; by default the sub-domain of the endpoint (acme in acme.app.spacelift.io)",
            )
            .env("SPACELIFT_ACCOUNT_ID"),
        )
        .config(
            ConfigKey::endpoint(
                "ec2_ownership_s3_endpoint",
                "S3 endpoint holding the CloudTrail export, path-style, e.g. https://s3.eu-west-1.amazonaws.com",
            )
            .env("SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT"),
        )
        .config(
            ConfigKey::text(
                "ec2_ownership_s3_bucket",
                "Bucket of the CloudTrail export; unset skips CloudTrail",
            )
            .env("SPACELIFT_EC2_OWNERSHIP_S3_BUCKET"),
        )
        .config(
            ConfigKey::text("ec2_ownership_s3_prefix", "Key prefix of the CloudTrail export")
                .env("SPACELIFT_EC2_OWNERSHIP_S3_PREFIX")
                .default_text(""),
        )
        .config(
            ConfigKey::text(
                "aws_access_key_id",
                "AWS access key id signing the S3 requests (not secret: it travels in clear)",
            )
            .env("AWS_ACCESS_KEY_ID"),
        )
        .config(
            ConfigKey::text("aws_region", "AWS region of the bucket, signed for")
                .env("AWS_REGION")
                .default_text("us-east-1"),
        );
        for node in schema::nodes() {
            manifest = manifest.node(node);
        }
        for edge in schema::edges() {
            manifest = manifest.edge(edge);
        }
        manifest
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let endpoint = config.text("api_key_endpoint").ok_or_else(|| {
            SyncError::config(
                "config key \"api_key_endpoint\" is not set: set SPACELIFT_API_KEY_ENDPOINT",
            )
        })?;
        let key_id = config.text("api_key_id").ok_or_else(|| {
            SyncError::config("config key \"api_key_id\" is not set: set SPACELIFT_API_KEY_ID")
        })?;
        let account = match config.text("account_id") {
            Some(a) => a.to_owned(),
            None => account_from_endpoint(endpoint)?,
        };
        cx.scope(ACCOUNT, &account);
        let mut client = Client::new(endpoint, key_id);
        client.login(cx)?;

        let mut out = Emitted::new(&account);
        let mut problems = Vec::new();
        let first = [
            Query::new("name", ACCOUNT_NAME),
            Query::new("spaces", SPACES),
            Query::new("stacks", STACKS),
            Query::new("workerPools", WORKER_POOLS),
            Query::new("workerPools", WORKERS),
            Query::new("managedUsers", USERS),
            Query::new("managedUsers", MEMBERSHIPS),
            Query::new("managedUserGroups", GROUPS),
            Query::new("stacks", ENTITIES),
        ];
        // The labels each query feeds: a failure marks them incomplete, so the host keeps
        // their nodes (and the edges touching them) from the last sync instead of deleting
        // them. Without the account's name the id stands in: nothing is lost. Without
        // memberships or groups, the group roles (`HAS_ROLE_IN` of users) are.
        let feeds: [&[&str]; 9] = [
            &[],
            &[SPACE],
            &[STACK, RUN, COMMIT],
            &[WORKER_POOL],
            &[WORKER],
            &[USER],
            &[USER],
            &[USER],
            &[],
        ];
        let answers = client.query_many(cx, &first);
        let mut stacks = Vec::new();
        let (mut users, mut members, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        // Whether every user's groups and every group's rules were read without errors.
        let (mut members_complete, mut groups_complete) = (false, false);
        for ((q, labels), answer) in first.iter().zip(feeds).zip(answers) {
            // Why the labels this query feeds are incomplete: GraphQL errors in the answer,
            // or no answer at all (the request failed after the host's retries).
            let (answer, failure) = match answer {
                Ok(a) => {
                    let failure = a.error().map(ToString::to_string);
                    (a, failure)
                }
                Err(e @ SyncError::Auth(_)) => return Err(e),
                Err(e) => (
                    Answer::Data(Value::Null),
                    Some(format!("the `{}` query failed: {e}", q.field)),
                ),
            };
            let complete = failure.is_none();
            if let Some(reason) = failure {
                cx.warn(&reason);
                for label in labels {
                    cx.mark_incomplete(label, None, &reason);
                }
                problems.push(reason);
            }
            let data = answer.into_data();
            let name = data.as_str().map(str::to_owned);
            let items = match data {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            match q.text {
                ACCOUNT_NAME => out.account(cx, name.as_deref()),
                SPACES => out.spaces(cx, &items),
                STACKS => {
                    out.stacks(cx, &items);
                    stacks = items
                        .iter()
                        .filter_map(|s| s["id"].as_str().map(str::to_owned))
                        .collect();
                }
                WORKER_POOLS => out.worker_pools(cx, &items),
                WORKERS => out.workers(cx, &items),
                USERS => users = items,
                MEMBERSHIPS => {
                    members_complete = complete;
                    members = items;
                }
                GROUPS => {
                    groups_complete = complete;
                    groups = items;
                }
                ENTITIES => out.entities(cx, &items),
                _ => unreachable!("every query is handled"),
            }
        }
        out.managed_users(
            cx,
            &users,
            (&members, members_complete),
            &groups,
            groups_complete,
        );

        let runs_failed = page_runs(cx, &mut client, &mut out, &stacks)?;
        if let Some(reason) = runs_failed {
            cx.warn(&reason);
            cx.mark_incomplete(RUN, None, &reason);
            cx.mark_incomplete(COMMIT, None, &reason);
            problems.push(reason);
        }
        out.trigger_users(cx);
        out.executed(cx);

        let mut cloudtrail = String::new();
        if let Some(bucket) = config.text("ec2_ownership_s3_bucket") {
            let endpoint = config.text("ec2_ownership_s3_endpoint").ok_or_else(|| {
                SyncError::config(
                    "ec2_ownership_s3_bucket is set but ec2_ownership_s3_endpoint is not: set \
                     SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT, e.g. https://s3.us-east-1.amazonaws.com",
                )
            })?;
            let b = cloudtrail::Bucket {
                endpoint: endpoint.to_owned(),
                bucket: bucket.to_owned(),
                prefix: config
                    .text("ec2_ownership_s3_prefix")
                    .unwrap_or("")
                    .to_owned(),
            };
            let (events, objects) = cloudtrail::read(cx, &b)?;
            cloudtrail = format!(", {} CloudTrail links from {objects} objects", events.len());
            out.cloudtrail(cx, &events);
        }

        let counts = format!(
            "{} spaces, {} stacks, {} runs, {} commits, {} users ({} roles, {} from groups), {} worker pools, {} workers ({} executing a run), {} entity links{cloudtrail}; {} token exchanges",
            out.spaces,
            out.stacks,
            out.runs,
            out.commits.len(),
            out.users.len(),
            out.roles,
            out.group_roles,
            out.pools,
            out.workers,
            out.executed,
            out.entity_links,
            client.logins,
        );
        Ok(Summary::new(match problems.len() {
            0 => counts,
            n => format!("{counts}; {n} queries failed, their labels kept"),
        }))
    }
}

export_ingestor!(Spacelift);

/// Pages every stack's runs, all stacks per round. Returns why runs are incomplete, if
/// they are.
fn page_runs(
    cx: &mut Context,
    client: &mut Client,
    out: &mut Emitted,
    stacks: &[String],
) -> Result<Option<String>, SyncError> {
    let mut failed = None;
    // (stack, `before` cursor) of every stack with runs left to read.
    let mut open: Vec<(String, Option<String>)> =
        stacks.iter().map(|s| (s.clone(), None)).collect();
    while !open.is_empty() {
        let mut next = Vec::new();
        for chunk in open.chunks(RUN_BATCH) {
            let queries: Vec<Query> = chunk
                .iter()
                .map(|(stack, before)| {
                    Query::new("stack", RUNS).with(json!({"stack": stack, "before": before}))
                })
                .collect();
            for ((stack, _), answer) in chunk.iter().zip(client.query_many(cx, &queries)) {
                let answer = match answer {
                    Ok(a) => a,
                    Err(e @ SyncError::Auth(_)) => return Err(e),
                    Err(e) => {
                        failed.get_or_insert(format!("runs of stack {stack:?}: {e}"));
                        continue;
                    }
                };
                if let Some(err) = answer.error() {
                    failed.get_or_insert(format!("runs of stack {stack:?}: {err}"));
                }
                let page = match answer.into_data()["runs"].take() {
                    Value::Array(runs) => runs,
                    _ => Vec::new(),
                };
                // Spacelift pages without a total: an empty page is the end.
                if let Some(last) = page.last().and_then(|r| r["id"].as_str()) {
                    next.push((stack.clone(), Some(last.to_owned())));
                }
                out.runs(cx, stack, &page);
            }
        }
        open = next;
    }
    Ok(failed)
}

/// `acme` of `https://acme.app.spacelift.io/graphql`.
fn account_from_endpoint(endpoint: &str) -> Result<String, SyncError> {
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("");
    match host.strip_suffix(".app.spacelift.io") {
        Some(account) if !account.is_empty() && !account.contains('.') => Ok(account.to_owned()),
        _ => Err(SyncError::config(format!(
            "cannot tell the account from SPACELIFT_API_KEY_ENDPOINT {endpoint:?} (expected \
             https://<account>.app.spacelift.io/graphql): set SPACELIFT_ACCOUNT_ID"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_the_sub_domain() {
        assert_eq!(
            account_from_endpoint("https://acme.app.spacelift.io/graphql").unwrap(),
            "acme"
        );
        let e = account_from_endpoint("http://127.0.0.1:9/graphql").unwrap_err();
        assert!(e.to_string().contains("SPACELIFT_ACCOUNT_ID"), "{e}");
    }

    #[test]
    fn the_manifest_declares_the_whole_schema() {
        assert_eq!(schema::nodes().len(), 8);
        assert_eq!(schema::edges().len(), 19);
    }
}
