//! The Spacelift provider (issue 7): an account's spaces, stacks, worker pools, workers,
//! runs, the Git commits runs used, users and their roles per space, and the EC2
//! instances runs affected, as `docs/providers/spacelift.md` describes them. Decisions
//! are in this crate's `README.md`.
//!
//! One sync: exchange the API key for a JWT (`apiKeyUser`; the host writes the secret into
//! the request body), then ask for the account's name, spaces, stacks, worker pools,
//! workers, users and entities in one concurrent round, then page every stack's runs
//! (`stack(id) { runs(before:) }`), all stacks at once, round after round, emitting each
//! page as it arrives. Every query selects only fields Spacelift's own clients select
//! (`tests/fixtures/spacelift/schema.graphql`, checked by a unit test). Nodes and
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

/// The queries, each selecting only fields Spacelift's own clients select
/// (`tests/fixtures/spacelift/schema.graphql` says which client, file and commit; a unit
/// test checks every query against it). From the original tool's queries
/// (`tests/fixtures/spacelift/graphql_queries.json`) they drop what the API does not have
/// (a pool's `type`, a worker's `status`) and add a stack's `workerPool`, a worker's
/// `busy`, `drained` and `metadata`, the account's `name`, `managedUsers` and run paging
/// (README: "Where the queries come from").
const ACCOUNT_NAME: &str = "query AccountName { name }";
const SPACES: &str = "query { spaces { id name description parentSpace } }";
const STACKS: &str = "query { stacks { id name description state administrative repository branch projectRoot space workerPool { id } } }";
const WORKER_POOLS: &str = "query { workerPools { id name description space } }";
const WORKERS: &str = "query { workerPools { id workers { id busy drained metadata } } }";
const USERS: &str =
    "query { managedUsers { id username invitationEmail accessRules { space spaceAccessLevel } } }";
const ENTITIES: &str = "query { stacks { id entities { type creator { id } updater { id } vendor { __typename ... on EntityVendorTerraform { terraform { __typename ... on TerraformResource { values } } } } } } }";
/// Runs of one stack, newest first, a page at a time: `before` is the last run of the
/// previous page. A stack with thousands of runs is never one unbounded answer.
const RUNS: &str = "query StackRuns($stack: ID!, $before: ID) { stack(id: $stack) { id runs(before: $before) { id type state commit { hash authorLogin authorName message timestamp url } branch createdAt triggeredBy } } }";

/// The first round: each query's root field, its text, and the labels it feeds. A failure
/// marks those labels incomplete, so the host keeps their nodes (and the edges touching
/// them) from the last sync instead of deleting them. Without the account's name the id
/// stands in: nothing is lost.
const FIRST_ROUND: [(&str, &str, &[&str]); 7] = [
    ("name", ACCOUNT_NAME, &[]),
    ("spaces", SPACES, &[SPACE]),
    ("stacks", STACKS, &[STACK, RUN, COMMIT]),
    ("workerPools", WORKER_POOLS, &[WORKER_POOL]),
    ("workerPools", WORKERS, &[WORKER]),
    ("managedUsers", USERS, &[USER]),
    ("stacks", ENTITIES, &[]),
];

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
        let first: Vec<Query> = FIRST_ROUND
            .iter()
            .map(|(field, text, _)| Query::new(field, text))
            .collect();
        let answers = client.query_many(cx, &first);
        let mut stacks = Vec::new();
        for ((field, text, labels), answer) in FIRST_ROUND.iter().zip(answers) {
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
                    Some(format!("the `{field}` query failed: {e}")),
                ),
            };
            if let Some(reason) = failure {
                cx.warn(&reason);
                for label in *labels {
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
            match *text {
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
                USERS => out.managed_users(cx, &items),
                ENTITIES => out.entities(cx, &items),
                _ => unreachable!("every query is handled"),
            }
        }

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
            let (events, tally, objects) = cloudtrail::read(cx, &b, &out.run_ids)?;
            out.cloudtrail(cx, &events);
            cloudtrail = format!(
                ", {} CloudTrail links from {} of {} rows in {objects} objects",
                events.len(),
                tally.linked,
                tally.rows
            );
            if let Some(unmatched) = tally.describe_unmatched() {
                cx.warn(&unmatched);
                cloudtrail.push_str(&format!(" ({unmatched})"));
                // Rows that all miss are a misread export (or the wrong one), not an
                // account without CloudTrail activity: the sync must not look clean, and
                // the links of the last sync stay rather than being cleaned up.
                if tally.linked == 0 {
                    let reason = format!("CloudTrail linked no run: {unmatched}");
                    cx.mark_incomplete(RUN, None, &reason);
                    problems.push(reason);
                }
            }
        }

        let counts = format!(
            "{} spaces, {} stacks, {} runs, {} commits, {} users ({} roles), {} worker pools, {} workers ({} executing a run), {} entity links{cloudtrail}; {} token exchanges",
            out.spaces,
            out.stacks,
            out.runs,
            out.commits.len(),
            out.users.len(),
            out.roles,
            out.pools,
            out.workers,
            out.executed,
            out.entity_links,
            client.logins,
        );
        Ok(Summary::new(match problems.len() {
            0 => counts,
            n => format!(
                "{counts}; {n} problems, their labels kept: {}",
                problems.join("; ")
            ),
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

    /// Every query the plugin can send (the login, the first round, the run pages) selects
    /// only fields and arguments Spacelift's clients select, so a field the API does not
    /// have fails here rather than in a user's sync.
    #[test]
    fn every_query_is_in_the_schema_spacelifts_clients_use() {
        let schema = infragraph_graphql_check::Schema::parse(include_str!(
            "../../../tests/fixtures/spacelift/schema.graphql"
        ))
        .expect("the schema parses");
        let queries = FIRST_ROUND
            .iter()
            .map(|(_, text, _)| *text)
            .chain([RUNS, graphql::LOGIN]);
        for q in queries {
            if let Err(e) = schema.check(q) {
                panic!("{q}\n{e}");
            }
        }
        // What the plugin asked before: a pool's `type`, a worker's `status` and a user's
        // `latestGroups` do not exist.
        for (q, field, on) in [
            (
                WORKER_POOLS.replace(" space ", " type space "),
                "type",
                "WorkerPool",
            ),
            (
                WORKERS.replace(" busy ", " status busy "),
                "status",
                "Worker",
            ),
            (
                USERS.replace(" invitationEmail ", " latestGroups "),
                "latestGroups",
                "ManagedUser",
            ),
        ] {
            let e = schema.check(&q).expect_err(&q).to_string();
            assert_eq!(
                e,
                format!("Cannot query field \"{field}\" on type \"{on}\".")
            );
        }
    }

    #[test]
    fn the_manifest_declares_the_whole_schema() {
        assert_eq!(schema::nodes().len(), 8);
        assert_eq!(schema::edges().len(), 19);
    }
}
