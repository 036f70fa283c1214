//! Critical, a GitOps project-management system, read from its ArangoDB: principals,
//! nested groups, super-permissions, projects and their ACLs and repositories, and what
//! Critical itself only resolves at request time, who can do what through which groups
//! (issue 9, `docs/providers/critical.md`). `README.md` beside this crate
//! states the decisions.
//!
//! A sync runs in three phases, each a set of AQL cursors advanced together
//! ([`arango::run`]):
//!
//! 1. the last change of every resource and every user's last sign-in, aggregated by the
//!    database to one row per resource;
//! 2. every resource collection, `memberships` and `permissions`: each batch of documents
//!    becomes nodes at once, while memberships and grants are kept as interned numbers;
//! 3. the direct edges between them, then the computed ones ([`effective`]).
//!
//! Memory therefore holds one batch per cursor plus the membership graph and the grants,
//! never a collection's documents.

mod arango;
mod docs;
mod effective;
mod org;
mod perms;
mod queries;
mod schema;

use std::cell::RefCell;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, Ingestor, Manifest, Summary, SyncError,
    export_ingestor,
};
use serde_json::json;

use crate::arango::{Db, Stream};
use crate::org::{Change, Facts, Kind, Org};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_CONNECTION: &str = "http://localhost:8529";
const DEFAULT_DATABASE: &str = "unnamed";
/// Rows per cursor answer: a few hundred KB of JSON, so the seven cursors of phase 2 hold
/// a few MB at once, and 100,000 principals take a hundred round trips.
const DEFAULT_BATCH_SIZE: u32 = 1000;
const MAX_BATCH_SIZE: u32 = 10_000;
/// Seconds a cursor may sit idle on the server. ArangoDB's default is 30; a sink busy
/// writing a large batch can take longer, and an expired cursor fails the sync.
const DEFAULT_CURSOR_TTL: u32 = 300;

/// Cycles named in the log, and groups named per cycle.
const MAX_CYCLES_LOGGED: usize = 10;
const MAX_GROUPS_PER_CYCLE: usize = 20;

/// The collections whose last change lands on nodes, as `resource_history` names them.
const HISTORY_KINDS: [&str; 5] = [
    "users",
    "groups",
    "service_accounts",
    "pipeline_accounts",
    "projects",
];

struct Critical;

impl Ingestor for Critical {
    fn manifest() -> Manifest {
        let connection = ConfigKey::endpoint(
            "connection_string",
            "URL of the ArangoDB server holding Critical's database",
        )
        .env("DB_CONNECTION_STRING")
        .default_text(DEFAULT_CONNECTION);
        let database = ConfigKey::text("database", "Name of Critical's database")
            .env("DB_NAME")
            .default_text(DEFAULT_DATABASE);
        let user = ConfigKey::text("user", "ArangoDB user, with read access to the database")
            .env("DB_USER")
            .default_text("root");
        let auth = ConfigKey::text(
            "auth",
            "basic: HTTP Basic with DB_PASSWORD on every request; jwt: sign in once at \
             /_open/auth with DB_JWT_PASSWORD and send the JWT",
        )
        .env("DB_AUTH")
        .default_text("basic");
        let include_deleted = ConfigKey::text(
            "include_deleted",
            "true: write soft-deleted documents too, with deleted_at and deleted_by; false \
             (default): leave them out, so the next sync removes them",
        )
        .env("CRITICAL_INCLUDE_DELETED")
        .default_text("false");
        let batch_size = ConfigKey::text("batch_size", "Rows per AQL cursor batch (1-10000)")
            .env("CRITICAL_BATCH_SIZE")
            .default_text(DEFAULT_BATCH_SIZE.to_string());
        let ttl = ConfigKey::text(
            "cursor_ttl",
            "Seconds an AQL cursor may stay idle on the server before it expires",
        )
        .env("CRITICAL_CURSOR_TTL")
        .default_text(DEFAULT_CURSOR_TTL.to_string());
        let password = Credential::new(
            "password",
            "DB_PASSWORD",
            "Password of DB_USER, sent by the host as HTTP Basic auth (auth = basic)",
            CredentialUse::Basic("user".into()),
        )
        .host("{config:connection_string}")
        // Never sent, nor needed, while signing in with a JWT: a DB_PASSWORD left set
        // would otherwise go out as Basic auth beside the token.
        .only_when("auth", "basic");
        let jwt_password = Credential::new(
            "jwt_password",
            "DB_JWT_PASSWORD",
            "Password of DB_USER, sent once to /_open/auth for a JWT (auth = jwt)",
            CredentialUse::JsonBody,
        )
        .host("{config:connection_string}")
        .only_when("auth", "jwt");
        let mut manifest = Manifest::new(
            "critical",
            VERSION,
            "Critical's principals, nested groups, permissions, projects and effective access, \
             from its ArangoDB",
        )
        .credential(password)
        .credential(jwt_password)
        .config(connection)
        .config(database)
        .config(user)
        .config(auth)
        .config(include_deleted)
        .config(batch_size)
        .config(ttl);
        for node in schema::nodes() {
            manifest = manifest.node(node);
        }
        for edge in schema::edges() {
            manifest = manifest.edge(edge);
        }
        manifest
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let settings = Settings::read(config)?;
        let mut db = Db::new(
            &settings.connection,
            &settings.database,
            settings.batch_size,
            settings.ttl,
        );
        let instance = db.url().to_owned();
        cx.scope(schema::INSTANCE, &instance);
        if settings.jwt {
            db.sign_in(cx, &settings.user)?;
        }

        // Phase 1: facts that land on the nodes of phase 2.
        cx.progress("history and events", 0, None);
        let facts = RefCell::new(Facts::default());
        let history = Stream::new(
            queries::LAST_CHANGES,
            json!({"kinds": HISTORY_KINDS}),
            |_: &mut Context, rows: Vec<docs::LastChange>| {
                let mut facts = facts.borrow_mut();
                for (kind, key, revision, changed_by, changed_at) in rows {
                    let change = Change {
                        revision,
                        changed_by,
                        changed_at: docs::text(&changed_at),
                    };
                    facts.changes.insert(format!("{kind}/{key}"), change);
                }
                Ok(())
            },
        );
        let events = Stream::new(
            queries::LAST_SIGN_INS,
            json!({}),
            |_: &mut Context, rows: Vec<docs::LastSignIn>| {
                let mut facts = facts.borrow_mut();
                for (key, at) in rows {
                    if let Some(at) = docs::text(&at) {
                        facts.sign_ins.insert(key, at);
                    }
                }
                Ok(())
            },
        );
        let mut requests = arango::run(&mut db, cx, vec![history, events])?;

        // Phase 2: every document, emitted batch by batch.
        cx.node(schema::INSTANCE, instance.as_str())
            .prop("url", settings.connection.as_str())
            .prop("database", settings.database.as_str())
            .emit();
        let org = RefCell::new(Org::new(
            &instance,
            settings.include_deleted,
            facts.into_inner(),
        ));
        let bind = json!({"include_deleted": settings.include_deleted});
        let read = |done: &RefCell<u64>, cx: &mut Context, n: usize| {
            *done.borrow_mut() += n as u64;
            cx.progress("documents", *done.borrow(), None);
        };
        let done = RefCell::new(0u64);
        let accounts = |query, kind: Kind| {
            let (org, done) = (&org, &done);
            Stream::new(query, bind.clone(), move |cx: &mut Context, rows| {
                let n = Vec::len(&rows);
                org.borrow_mut().accounts(cx, kind, rows);
                read(done, cx, n);
                Ok(())
            })
        };
        let streams = vec![
            Stream::new(queries::USERS, bind.clone(), |cx: &mut Context, rows| {
                let n = Vec::len(&rows);
                org.borrow_mut().users(cx, rows);
                read(&done, cx, n);
                Ok(())
            }),
            accounts(queries::GROUPS, Kind::Group),
            accounts(queries::SERVICE_ACCOUNTS, Kind::ServiceAccount),
            accounts(queries::PIPELINE_ACCOUNTS, Kind::PipelineAccount),
            Stream::new(queries::PROJECTS, bind.clone(), |cx: &mut Context, rows| {
                let n = Vec::len(&rows);
                org.borrow_mut().projects(cx, rows);
                read(&done, cx, n);
                Ok(())
            }),
            Stream::new(queries::MEMBERSHIPS, json!({}), |cx: &mut Context, rows| {
                let n = Vec::len(&rows);
                org.borrow_mut().memberships(rows);
                read(&done, cx, n);
                Ok(())
            }),
            Stream::new(queries::PERMISSIONS, json!({}), |cx: &mut Context, rows| {
                let n = Vec::len(&rows);
                org.borrow_mut().permissions(cx, rows);
                read(&done, cx, n);
                Ok(())
            }),
        ];
        requests += arango::run(&mut db, cx, streams)?;

        // Phase 3: direct and computed edges.
        cx.progress("effective access", 0, None);
        let mut org = org.into_inner();
        org.finish(cx);
        let counts = &org.counts;
        // A few cycles, each named by a few groups, are enough to find and break them; a
        // generated or broken organisation must not flood the log.
        for cycle in counts.cycles.iter().take(MAX_CYCLES_LOGGED) {
            let mut names = cycle
                .iter()
                .take(MAX_GROUPS_PER_CYCLE)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if cycle.len() > MAX_GROUPS_PER_CYCLE {
                names.push_str(&format!(" and {} more", cycle.len() - MAX_GROUPS_PER_CYCLE));
            }
            cx.warn(format!(
                "membership cycle among groups {names}: Critical follows memberships at most 10 \
                 levels deep, and so does the graph; break the cycle in Critical"
            ));
        }
        if counts.cycles.len() > MAX_CYCLES_LOGGED {
            cx.warn(format!(
                "{} more membership cycles not listed",
                counts.cycles.len() - MAX_CYCLES_LOGGED
            ));
        }
        if counts.cut_count > 0 {
            cx.warn(format!(
                "{} principals are in groups nested more than 10 levels deep (e.g. {}): \
                 Critical ignores memberships past 10 levels, and so do EFFECTIVE_MEMBER_OF \
                 and the inherited edges",
                counts.cut_count,
                counts.cut.join(", ")
            ));
        }
        if counts.dangling.count > 0 {
            cx.warn(format!(
                "{} references to principals or groups that do not exist or are soft-deleted \
                 were left out (e.g. {})",
                counts.dangling.count,
                counts.dangling.example.as_deref().unwrap_or("")
            ));
        }
        if counts.bad_acl.count > 0 {
            cx.warn(format!(
                "{} ACL entries with permissions this plugin cannot read were left out (e.g. \
                 {}): the graph may show less access than Critical grants",
                counts.bad_acl.count,
                counts.bad_acl.example.as_deref().unwrap_or("")
            ));
        }
        Ok(Summary::new(summary(&org, requests)))
    }
}

export_ingestor!(Critical);

/// One line for the operator; the benchmark reads the computation time from it.
fn summary(org: &Org, requests: u64) -> String {
    let c = &org.counts;
    let n = |label| c.nodes.get(label).copied().unwrap_or(0);
    let mut out = format!(
        "{} users, {} groups, {} service accounts, {} pipeline accounts, {} projects, \
         {} repositories, {} permissions; {} effective memberships and {} inherited grants \
         computed in {} ms; {} cursor requests",
        n(schema::USER),
        n(schema::GROUP),
        n(schema::SERVICE_ACCOUNT),
        n(schema::PIPELINE_ACCOUNT),
        n(schema::PROJECT),
        n(schema::REPOSITORY),
        n(schema::PERMISSION),
        c.effective_memberships,
        c.inherited,
        c.compute.as_millis(),
        requests,
    );
    if !c.cycles.is_empty() {
        out.push_str(&format!("; {} membership cycles", c.cycles.len()));
    }
    if c.cut_count > 0 {
        out.push_str(&format!("; {} principals cut at 10 levels", c.cut_count));
    }
    if c.skipped_deleted > 0 {
        out.push_str(&format!("; {} soft-deleted left out", c.skipped_deleted));
    }
    out
}

/// The config, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    connection: String,
    database: String,
    user: String,
    jwt: bool,
    include_deleted: bool,
    batch_size: u32,
    ttl: u32,
}

impl Settings {
    fn read(config: &Config) -> Result<Settings, SyncError> {
        let text = |key, default: &str| config.text(key).unwrap_or(default).trim().to_owned();
        let number = |key, var, default: u32, max: u32| -> Result<u32, SyncError> {
            let value = text(key, &default.to_string());
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    SyncError::config(format!(
                        "{key} is {value:?}: set {var} to a whole number from 1 to {max}"
                    ))
                })
        };
        let jwt = match text("auth", "basic").to_ascii_lowercase().as_str() {
            "basic" => false,
            "jwt" => true,
            other => {
                return Err(SyncError::config(format!(
                    "auth is {other:?}: set DB_AUTH to basic or jwt"
                )));
            }
        };
        let include_deleted = match text("include_deleted", "false")
            .to_ascii_lowercase()
            .as_str()
        {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => {
                return Err(SyncError::config(format!(
                    "include_deleted is {other:?}: set CRITICAL_INCLUDE_DELETED to true or false"
                )));
            }
        };
        let database = text("database", DEFAULT_DATABASE);
        // The name becomes a URL path segment: refuse what would change the path.
        if database.is_empty() || database.contains(['/', '?', '#', '%', ' ']) {
            return Err(SyncError::config(format!(
                "database is {database:?}: set DB_NAME to the name of Critical's database"
            )));
        }
        Ok(Settings {
            connection: text("connection_string", DEFAULT_CONNECTION)
                .trim_end_matches('/')
                .to_owned(),
            database,
            user: text("user", "root"),
            jwt,
            include_deleted,
            batch_size: number(
                "batch_size",
                "CRITICAL_BATCH_SIZE",
                DEFAULT_BATCH_SIZE,
                MAX_BATCH_SIZE,
            )?,
            ttl: number(
                "cursor_ttl",
                "CRITICAL_CURSOR_TTL",
                DEFAULT_CURSOR_TTL,
                86_400,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_declares_every_label() {
        let text = format!("{:?}", Critical::manifest());
        for label in [
            "CriticalInstance",
            "CriticalUser",
            "CriticalGroup",
            "CriticalServiceAccount",
            "CriticalPipelineAccount",
            "CriticalProject",
            "CriticalRepository",
            "CriticalPermission",
        ] {
            assert!(text.contains(&format!("\"{label}\"")), "{label} missing");
        }
        // RESOURCE to 7 labels; per principal MEMBER_OF, EFFECTIVE_MEMBER_OF,
        // HAS_PERMISSION, and CAN_ACCESS and IN_ACL_OF to 4 targets each; LINKS.
        assert_eq!(schema::edges().len(), 7 + 4 * (3 + 2 * 4) + 1);
        for secret in ["password_hash", "token_hash", "\"credential\""] {
            assert!(!text.contains(secret), "{secret} is declared");
        }
    }
}
