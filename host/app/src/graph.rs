//! Where the graph lives, decided in one place for every command: the embedded store or
//! a Neo4j server. [`Settings::location`] applies one rule (what the front end was told,
//! then `[sink.neo4j]`, then the default store file) and [`Graph::open`] opens it as one
//! type that both writes (the engine's [`GraphSink`]) and reads back ([`GraphReader`]:
//! nodes, neighbours, paths, runs, exports; and state), whichever it is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use infragraph_core::{
    BoxFuture, ChangeCounts, Direction, EdgeBatch, Exported, GraphReader, GraphSink, Holder,
    Manifest, NodeBatch, Publish, RunRecord, SinkError, StateError, StateStore, Step, StoredEdge,
    StoredNode, WriteScope,
};
use infragraph_sink_neo4j::{Neo4jConfig, Neo4jSink};
use infragraph_sink_sqlite::Store;

use crate::error::Error;
use crate::settings::{NEO4J_PASSWORD, Settings};

/// The embedded store's file when nothing names another.
pub const DEFAULT_STORE: &str = "infragraph.db";

/// Where the front end was told the graph is; every field optional.
#[derive(Debug, Default, Clone)]
pub struct GraphArgs {
    /// An embedded store file (`--store`).
    pub store: Option<PathBuf>,
    /// A Bolt server URI (`--neo4j`).
    pub neo4j: Option<String>,
    /// Its user (`--neo4j-user`).
    pub neo4j_user: Option<String>,
    /// Its database (`--neo4j-database`).
    pub neo4j_database: Option<String>,
}

/// Where the graph is.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded store, one file.
    Store(PathBuf),
    /// A Neo4j (or other Bolt) server.
    Neo4j(Neo4jConfig),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Store(path) => write!(f, "{}", path.display()),
            Location::Neo4j(c) => write!(f, "{} (database {})", c.uri, c.database),
        }
    }
}

/// What the graph is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Writing: a store file that does not exist yet is created.
    Write,
    /// Reading: a store file that does not exist is an error, not a new empty graph.
    Read,
}

impl Settings {
    /// Where the graph is, by one rule for every command: `--store` or `--neo4j` when
    /// given (not both), else the `[sink.neo4j]` server when configured, else
    /// `./infragraph.db`. So whatever writes to a configured server, reads from it too.
    pub fn location(&self, args: &GraphArgs) -> Result<Location, Error> {
        match (&args.store, &args.neo4j) {
            (Some(store), Some(uri)) => Err(Error::Usage(format!(
                "both --store {} and --neo4j {uri} name where the graph is; pass one",
                store.display()
            ))),
            (Some(store), None) => Ok(Location::Store(store.clone())),
            (None, Some(uri)) => Ok(Location::Neo4j(self.neo4j_config(uri.clone(), args))),
            (None, None) => Ok(match self.neo4j.uri.clone() {
                Some(uri) => Location::Neo4j(self.neo4j_config(uri, args)),
                None => Location::Store(DEFAULT_STORE.into()),
            }),
        }
    }

    /// The server a store is published to (`push`): `--neo4j` over `[sink.neo4j]`.
    pub fn server(&self, args: &GraphArgs) -> Result<Neo4jConfig, Error> {
        let uri = args
            .neo4j
            .clone()
            .or_else(|| self.neo4j.uri.clone())
            .ok_or_else(|| {
                Error::Usage(
                    "no server to push to: pass --neo4j bolt://HOST:7687 or set [sink.neo4j] uri"
                        .into(),
                )
            })?;
        Ok(self.neo4j_config(uri, args))
    }

    /// The password comes from `NEO4J_PASSWORD` only; unset, it is empty (a server
    /// without authentication).
    fn neo4j_config(&self, uri: String, args: &GraphArgs) -> Neo4jConfig {
        Neo4jConfig {
            uri,
            user: args
                .neo4j_user
                .clone()
                .or_else(|| self.neo4j.user.clone())
                .unwrap_or_else(|| "neo4j".into()),
            password: std::env::var(NEO4J_PASSWORD).unwrap_or_default(),
            database: args
                .neo4j_database
                .clone()
                .or_else(|| self.neo4j.database.clone())
                .unwrap_or_else(|| "neo4j".into()),
        }
    }
}

/// The graph, opened: the one type every command writes to and reads from.
#[derive(Debug)]
// One per command, never in a collection: boxing the store would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub enum Graph {
    /// The embedded store.
    Store(Store),
    /// A Neo4j server, connected and checked.
    Neo4j(Neo4jSink),
}

impl Graph {
    /// Opens the graph at `location`. A server is reached at once, so a wrong address,
    /// user, password or database fails here, before any plugin runs.
    pub async fn open(location: &Location, intent: Intent) -> Result<Graph, Error> {
        Ok(match location {
            Location::Store(path) => Graph::Store(match intent {
                Intent::Write => Store::open(path)?,
                Intent::Read => Store::open_existing(path)?,
            }),
            Location::Neo4j(config) => Graph::Neo4j(Neo4jSink::connect(config).await?),
        })
    }

    /// The embedded store, for what only it can do (queries, other export formats).
    pub fn as_store(&self) -> Option<&Store> {
        match self {
            Graph::Store(s) => Some(s),
            Graph::Neo4j(_) => None,
        }
    }

    /// The value under `key` of `plugin` in `scope`.
    pub async fn state(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get(plugin, scope, key).await?)
    }

    /// Replaces the value under `key` of `plugin` in `scope`.
    pub async fn set_state(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let writes = BTreeMap::from([(key.to_string(), Some(value))]);
        Ok(self.commit_state(plugin, scope, &writes).await?)
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Graph::Store(s) => s.path().display().to_string(),
            Graph::Neo4j(s) => s.uri().to_string(),
        }
    }
}

/// Each method hands the call to the sink inside.
impl GraphReader for Graph {
    async fn nodes(
        &self,
        label: &str,
        filters: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<StoredNode>, SinkError> {
        match self {
            Graph::Store(s) => GraphReader::nodes(s, label, filters, limit).await,
            Graph::Neo4j(s) => s.nodes(label, filters, limit).await,
        }
    }

    async fn neighbours(
        &self,
        label: &str,
        id: &str,
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(StoredEdge, StoredNode)>, SinkError> {
        match self {
            Graph::Store(s) => GraphReader::neighbours(s, label, id, direction, types).await,
            Graph::Neo4j(s) => s.neighbours(label, id, direction, types).await,
        }
    }

    async fn neighbours_of_many(
        &self,
        nodes: &[(String, String)],
        direction: Direction,
        types: &[String],
    ) -> Result<Vec<(usize, StoredEdge, StoredNode)>, SinkError> {
        match self {
            Graph::Store(s) => GraphReader::neighbours_of_many(s, nodes, direction, types).await,
            Graph::Neo4j(s) => s.neighbours_of_many(nodes, direction, types).await,
        }
    }

    async fn shortest_path(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        max_depth: usize,
        direction: Direction,
        types: &[String],
    ) -> Result<Option<Vec<Step>>, SinkError> {
        match self {
            Graph::Store(s) => {
                GraphReader::shortest_path(s, from, to, max_depth, direction, types).await
            }
            Graph::Neo4j(s) => s.shortest_path(from, to, max_depth, direction, types).await,
        }
    }

    async fn labels(&self) -> Result<Vec<String>, SinkError> {
        match self {
            Graph::Store(s) => s.labels().await,
            Graph::Neo4j(s) => s.labels().await,
        }
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, SinkError> {
        match self {
            Graph::Store(s) => GraphReader::runs(s, limit).await,
            Graph::Neo4j(s) => GraphReader::runs(s, limit).await,
        }
    }

    async fn export_jsonl(&self, out: &mut (dyn Write + Send)) -> Result<Exported, SinkError> {
        match self {
            Graph::Store(s) => GraphReader::export_jsonl(s, out).await,
            Graph::Neo4j(s) => GraphReader::export_jsonl(s, out).await,
        }
    }
}

impl StateStore for Graph {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        match self {
            Graph::Store(s) => s.get(plugin, scope, key),
            Graph::Neo4j(s) => s.get(plugin, scope, key),
        }
    }
}

/// Each method hands the call to the sink inside; one `match` per method is the whole of
/// it.
impl GraphSink for Graph {
    async fn prepare(&self, manifest: &Manifest) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.prepare(manifest).await,
            Graph::Neo4j(s) => s.prepare(manifest).await,
        }
    }

    async fn warm_up(&self, manifest: &Manifest, stop: &std::sync::atomic::AtomicBool) {
        match self {
            Graph::Store(s) => s.warm_up(manifest, stop).await,
            Graph::Neo4j(s) => s.warm_up(manifest, stop).await,
        }
    }

    fn runs_starting(&self, n: usize) {
        match self {
            Graph::Store(s) => s.runs_starting(n),
            Graph::Neo4j(s) => s.runs_starting(n),
        }
    }

    fn runs_ended(&self, n: usize) {
        match self {
            Graph::Store(s) => s.runs_ended(n),
            Graph::Neo4j(s) => s.runs_ended(n),
        }
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        match self {
            Graph::Store(s) => s.next_update_tag().await,
            Graph::Neo4j(s) => s.next_update_tag().await,
        }
    }

    async fn lease(&self, w: &WriteScope, holder: &Holder, ttl: Duration) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.lease(w, holder, ttl).await,
            Graph::Neo4j(s) => s.lease(w, holder, ttl).await,
        }
    }

    async fn release(&self, w: &WriteScope, holder: &Holder) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.release(w, holder).await,
            Graph::Neo4j(s) => s.release(w, holder).await,
        }
    }

    async fn write_nodes(
        &self,
        w: &WriteScope,
        extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.write_nodes(w, extra_labels, batch).await,
            Graph::Neo4j(s) => s.write_nodes(w, extra_labels, batch).await,
        }
    }

    async fn write_edges(&self, w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        match self {
            Graph::Store(s) => s.write_edges(w, batch).await,
            Graph::Neo4j(s) => s.write_edges(w, batch).await,
        }
    }

    async fn publish(&self, w: &WriteScope, p: &Publish<'_>) -> Result<ChangeCounts, SinkError> {
        match self {
            Graph::Store(s) => s.publish(w, p).await,
            Graph::Neo4j(s) => s.publish(w, p).await,
        }
    }

    async fn discard(&self, w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        match self {
            Graph::Store(s) => s.discard(w).await,
            Graph::Neo4j(s) => s.discard(w).await,
        }
    }

    async fn commit_state(
        &self,
        plugin: &str,
        scope: &str,
        writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.commit_state(plugin, scope, writes).await,
            Graph::Neo4j(s) => s.commit_state(plugin, scope, writes).await,
        }
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), SinkError> {
        match self {
            Graph::Store(s) => s.record_run(run).await,
            Graph::Neo4j(s) => s.record_run(run).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(config: &str) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("infragraph.toml");
        std::fs::write(&path, config).expect("config");
        let settings = Settings::load(Some(&path)).expect("valid config");
        (dir, settings)
    }

    fn args(store: Option<&str>, neo4j: Option<&str>) -> GraphArgs {
        GraphArgs {
            store: store.map(PathBuf::from),
            neo4j: neo4j.map(String::from),
            ..Default::default()
        }
    }

    fn uri(l: Location) -> String {
        match l {
            Location::Neo4j(c) => format!("{} {} {}", c.uri, c.user, c.database),
            Location::Store(p) => format!("store {}", p.display()),
        }
    }

    #[test]
    fn one_rule_for_every_command() {
        let (_d, plain) = settings("");
        assert_eq!(
            uri(plain.location(&args(None, None)).unwrap()),
            "store infragraph.db"
        );
        assert_eq!(
            uri(plain.location(&args(Some("a.db"), None)).unwrap()),
            "store a.db"
        );
        assert_eq!(
            uri(plain.location(&args(None, Some("bolt://h:1"))).unwrap()),
            "bolt://h:1 neo4j neo4j"
        );

        // A configured server is where the graph is, for writing and reading alike,
        // unless a flag says otherwise.
        let (_d, configured) =
            settings("[sink.neo4j]\nuri = \"bolt://db:7687\"\nuser = \"u\"\ndatabase = \"g\"\n");
        assert_eq!(
            uri(configured.location(&args(None, None)).unwrap()),
            "bolt://db:7687 u g"
        );
        assert_eq!(
            uri(configured.location(&args(Some("a.db"), None)).unwrap()),
            "store a.db"
        );
        let mut flags = args(None, Some("bolt://other:1"));
        flags.neo4j_database = Some("x".into());
        assert_eq!(
            uri(configured.location(&flags).unwrap()),
            "bolt://other:1 u x"
        );

        let both = plain.location(&args(Some("a.db"), Some("bolt://h:1")));
        let err = both.expect_err("two places").to_string();
        assert!(
            err.contains("--store a.db") && err.contains("--neo4j bolt://h:1"),
            "{err}"
        );
    }

    #[test]
    fn push_needs_a_server() {
        let (_d, plain) = settings("");
        let err = plain.server(&args(None, None)).expect_err("no server");
        assert!(err.to_string().contains("--neo4j"), "{err}");
        let (_d, configured) = settings("[sink.neo4j]\nuri = \"bolt://db:7687\"\n");
        assert_eq!(
            configured.server(&args(None, None)).unwrap().uri,
            "bolt://db:7687"
        );
    }
}
