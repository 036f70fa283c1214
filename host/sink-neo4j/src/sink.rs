//! [`Neo4jSink`]: the connection, the transaction helper every statement goes through,
//! and the retry of transient failures.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use infragraph_core::backoff;
use neo4rs::{ConfigBuilder, Graph, Query, Row};

use crate::error::{Error, ErrorKind};
use crate::schema::PluginSchema;

/// Attempts at one transaction that failed transiently (a deadlock, a dropped connection,
/// a leader change) before the failure is returned. With the backoff below they span
/// three to six seconds. This is the only retry of a sink write: the engine tries each
/// call once, since only the sink knows which of its failures are transient and which
/// statements are safe to run again. A permanent failure is returned at once.
const ATTEMPTS: u32 = 6;
/// Longest first pause between attempts (the shortest is half of it); it doubles each
/// time, jittered by [`infragraph_core::backoff`] so two writers that deadlocked do not
/// collide again in step.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Rows pulled per round trip when reading (exports, run history).
const FETCH_SIZE: usize = 5_000;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct Neo4jConfig {
    /// `bolt://host:7687` (also `neo4j://`, and `bolt+s://`/`neo4j+s://` for TLS).
    pub uri: String,
    /// The user.
    pub user: String,
    /// The password; infragraph takes it only from `NEO4J_PASSWORD`.
    pub password: String,
    /// The database, e.g. `neo4j`.
    pub database: String,
}

impl std::fmt::Debug for Neo4jConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jConfig")
            .field("uri", &self.uri)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The graph, its run history and plugin state in a Neo4j (or other Bolt/openCypher)
/// server. See the crate docs for what it writes.
pub struct Neo4jSink {
    pub(crate) graph: Graph,
    pub(crate) uri: String,
    pub(crate) database: String,
    /// Each prepared plugin's schema: what its batches may name.
    pub(crate) schemas: Mutex<HashMap<String, PluginSchema>>,
    /// Schema statements (constraints, indexes) already run through this sink.
    pub(crate) done: Mutex<HashSet<String>>,
    /// What the runs under way know of their scopes' records, to skip unchanged ones.
    pub(crate) known: Box<crate::known::Runs>,
    /// Statement texts explained ahead of their first use (see `warm`).
    pub(crate) warmed: Box<Mutex<HashSet<String>>>,
    retries: AtomicU64,
}

impl std::fmt::Debug for Neo4jSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jSink")
            .field("uri", &self.uri)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Neo4jSink {
    /// Connects and checks at once that the server answers, accepts the credentials and
    /// has the database, so a wrong address or password fails before any plugin runs,
    /// with an error saying which. Creates the constraint the run bookkeeping needs.
    pub async fn connect(config: &Neo4jConfig) -> Result<Neo4jSink, Error> {
        let uri = config.uri.clone();
        let built = ConfigBuilder::default()
            .uri(config.uri.as_str())
            .user(config.user.as_str())
            .password(config.password.as_str())
            .db(config.database.as_str())
            .fetch_size(FETCH_SIZE)
            .build()
            .map_err(|e| Error::driver(&uri, "reading the connection settings", e))?;
        let graph = Graph::connect(built)
            .await
            .map_err(|e| Error::driver(&uri, "connecting", e))?;
        let sink = Neo4jSink {
            graph,
            uri,
            database: config.database.clone(),
            schemas: Mutex::new(HashMap::new()),
            done: Mutex::new(HashSet::new()),
            known: Box::new(crate::known::Runs::new(crate::known::BUDGET)),
            warmed: Default::default(),
            retries: AtomicU64::new(0),
        };
        // No retry: an address or password that is wrong now will be wrong in a second.
        let what = format!(
            "connecting as {:?} to database {:?}",
            config.user, config.database
        );
        let rows = sink
            .tx(vec![neo4rs::query("RETURN 1 AS ok")])
            .await
            .map_err(|e| Error::driver(&sink.uri, &what, e))?;
        if rows.first().and_then(|r| r.first()).is_none() {
            return Err(Error::new(
                ErrorKind::Query,
                format!(
                    "neo4j {}: {what}: the server answered `RETURN 1` with nothing",
                    sink.uri
                ),
            ));
        }
        sink.ensure(&[
            "CREATE CONSTRAINT `infragraph_meta_id` IF NOT EXISTS \
             FOR (m:`InfragraphMeta`) REQUIRE m.`id` IS UNIQUE"
                .to_string(),
            crate::lease::CONSTRAINT.to_string(),
            "CREATE CONSTRAINT `infragraph_label_id` IF NOT EXISTS \
             FOR (x:`InfragraphLabel`) REQUIRE x.`id` IS UNIQUE"
                .to_string(),
        ])
        .await?;
        tracing::debug!(uri = %sink.uri, database = %sink.database, "connected");
        Ok(sink)
    }

    /// The server's address.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The database written to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Transactions retried after a transient failure since connecting.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Runs `queries` in one transaction and returns each one's rows. On any failure the
    /// transaction is rolled back (or, with the connection gone, dies with it).
    pub(crate) async fn tx(&self, queries: Vec<Query>) -> Result<Vec<Vec<Row>>, neo4rs::Error> {
        let done = self.tx_refusable(queries).await?;
        Ok(done.unwrap_or_else(|_| unreachable!("no statement counts foreign records")))
    }

    /// Runs `queries` in one transaction; a statement that reports records of another
    /// plugin (a positive [`crate::cypher::FOREIGN`] in its first row) rolls the transaction back,
    /// and that row is returned as `Err`: how a write refuses a batch that touches another
    /// plugin's records.
    pub(crate) async fn tx_refusable(
        &self,
        queries: Vec<Query>,
    ) -> Result<Result<Vec<Vec<Row>>, Row>, neo4rs::Error> {
        let mut txn = self.graph.start_txn_on(self.database.as_str()).await?;
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let mut rows = Vec::new();
            let result = async {
                let mut stream = txn.execute(q).await?;
                while let Some(row) = stream.next(txn.handle()).await? {
                    rows.push(row);
                }
                Ok::<_, neo4rs::Error>(())
            }
            .await;
            if let Err(e) = result {
                let _ = txn.rollback().await;
                return Err(e);
            }
            let refused = rows
                .first()
                .and_then(|r| r.get::<i64>(crate::cypher::FOREIGN).ok())
                .is_some_and(|n| n > 0);
            if refused {
                txn.rollback().await?;
                return Ok(Err(rows.swap_remove(0)));
            }
            out.push(rows);
        }
        txn.commit().await?;
        Ok(Ok(out))
    }

    /// [`Neo4jSink::tx`] with transient failures retried: every statement this sink runs
    /// is idempotent (MERGE, SET, a look-up before a CREATE, bounded DELETE), so running a
    /// batch again after a failure whose outcome is unknown (the connection dropped during
    /// COMMIT) neither loses nor duplicates anything.
    pub(crate) async fn tx_retried(
        &self,
        what: &str,
        queries: impl Fn() -> Vec<Query>,
    ) -> Result<Vec<Vec<Row>>, Error> {
        self.retrying(what, || self.tx(queries())).await
    }

    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, call: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, neo4rs::Error>>,
    {
        retrying(&self.uri, what, &self.retries, call).await
    }

    /// Runs schema statements not yet run through this sink, one transaction each (Neo4j
    /// does not mix schema and data changes in a transaction). Each is `IF NOT EXISTS`.
    pub(crate) async fn ensure(&self, statements: &[String]) -> Result<(), Error> {
        let missing: Vec<String> = {
            let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            statements
                .iter()
                .filter(|s| !done.contains(*s))
                .cloned()
                .collect()
        };
        for s in missing {
            self.tx_retried("creating a constraint or index", || vec![neo4rs::query(&s)])
                .await?;
            self.done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(s);
        }
        Ok(())
    }
}

/// Runs `call` until it succeeds, fails for good (at once, on a permanent failure) or has
/// failed transiently [`ATTEMPTS`] times; counts each retry in `retries`.
async fn retrying<T, F, Fut>(
    uri: &str,
    what: &str,
    retries: &AtomicU64,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, neo4rs::Error>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let err = Error::driver(uri, what, e);
                if !err.is_transient() || attempt >= ATTEMPTS {
                    return Err(err);
                }
                retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{err}; retrying (attempt {attempt} of {ATTEMPTS})");
                tokio::time::sleep(backoff(FIRST_BACKOFF, attempt - 1)).await;
                attempt += 1;
            }
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::error::server_failure;

    /// Runs `retrying` over a call that fails with `failures` in turn, then succeeds;
    /// returns the outcome, the calls made and the retries counted.
    async fn attempts(failures: Vec<neo4rs::Error>) -> (Result<(), Error>, u32, u64) {
        let calls = AtomicU32::new(0);
        let retries = AtomicU64::new(0);
        let failures = Mutex::new(failures.into_iter());
        let result = retrying("bolt://test:7687", "writing 3 nodes", &retries, || {
            calls.fetch_add(1, Ordering::Relaxed);
            let next = failures.lock().unwrap().next();
            async move { next.map_or(Ok(()), Err) }
        })
        .await;
        (
            result,
            calls.load(Ordering::Relaxed),
            retries.load(Ordering::Relaxed),
        )
    }

    #[tokio::test]
    async fn a_permanent_error_fails_at_once() {
        // A constraint violation as Neo4j reports it: it would fail the same way again.
        let violation = || {
            server_failure(
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Node(12) already exists with label `FaultNode` and property `id` = 'n7'",
            )
        };
        let started = std::time::Instant::now();
        let (result, calls, retries) = attempts((0..ATTEMPTS).map(|_| violation()).collect()).await;
        let e = result.expect_err("it fails");
        assert_eq!((calls, retries), (1, 0), "one attempt, no retry");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(started.elapsed() < FIRST_BACKOFF, "no pause either");
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_the_call_passes() {
        let deadlock = server_failure(
            "Neo.TransientError.Transaction.DeadlockDetected",
            "Concurrent modification on page; please retry",
        );
        let (result, calls, retries) = attempts(vec![deadlock]).await;
        result.expect("the second attempt passes");
        assert_eq!((calls, retries), (2, 1));
    }
}
