//! The engine's decision table, driven through its seam by scripted sources (no wasm, no
//! plugin): what runs after a success, a plugin failure, a sink failure, an incomplete
//! label; that state is committed last and only after success; and that every run is
//! in the history. A recording sink shows which calls the engine made, in order; the
//! embedded store shows what stayed in the graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infragraph_core::{
    BoxFuture, ChangeCounts, EdgeBatch, EdgeRow, GraphSink, Holder, Manifest, NodeBatch, NodeKind,
    NodeRef, NodeRow, Publish, RunRecord, RunStatus, Schema, SinkError, StateError, StateStore,
    WriteScope,
};
use infragraph_engine::{Options, ProgressFn, RunReport, Source, sync_source};
use infragraph_runtime::{Emission, Failure, SyncOutcome};
use infragraph_sink_sqlite::Store;
use tokio::sync::mpsc;

const PLUGIN: &str = "scripted";
const SCOPE: &str = "org-1";

fn manifest() -> Manifest {
    let kind = |label: &str| NodeKind {
        label: label.into(),
        description: String::new(),
        extra_labels: Vec::new(),
        properties: Vec::new(),
    };
    Manifest {
        name: PLUGIN.into(),
        version: "1.0.0".into(),
        description: "a script standing in for a plugin".into(),
        schema: Schema {
            nodes: vec![kind("ScriptA"), kind("ScriptB")],
            edges: Vec::new(),
        },
        hosts: Vec::new(),
        credentials: Vec::new(),
        config: Vec::new(),
    }
}

fn scope() -> Emission {
    Emission::Scope(NodeRef {
        label: "ScriptOrg".into(),
        key: "id".into(),
        value: SCOPE.into(),
    })
}

fn nodes(label: &str, ids: &[&str]) -> Emission {
    Emission::Nodes(NodeBatch {
        label: label.into(),
        columns: Vec::new(),
        rows: ids
            .iter()
            .map(|id| NodeRow {
                id: id.to_string().into(),
                values: Vec::new(),
            })
            .collect(),
    })
}

fn edges(pairs: &[(&str, &str)]) -> Emission {
    Emission::Edges(EdgeBatch {
        rel_type: "LINKS".into(),
        from_label: "ScriptA".into(),
        from_key: "id".into(),
        to_label: "ScriptB".into(),
        to_key: "id".into(),
        columns: Vec::new(),
        rows: pairs
            .iter()
            .map(|(from, to)| EdgeRow {
                from: from.to_string().into(),
                to: to.to_string().into(),
                values: Vec::new(),
            })
            .collect(),
    })
}

fn incomplete(label: &str) -> Emission {
    Emission::Incomplete {
        label: label.into(),
        parent: None,
        reason: "the listing was cut short".into(),
    }
}

fn plugin_error() -> Failure {
    Failure::Plugin {
        error: "provider".into(),
        message: "HTTP 500 listing users".into(),
    }
}

/// What a scripted run saw.
#[derive(Debug, Default)]
struct Seen {
    started: bool,
    /// Emissions the engine accepted before it stopped reading (all, unless it did).
    sent: usize,
    /// The value under `cursor` in the state store the engine gave the run.
    cursor: Option<Vec<u8>>,
}

/// A source that sends a fixed list of emissions and ends as told, like the runtime: a
/// send that finds the channel closed stops it with `Failure::Stopped`.
struct Script {
    manifest: Manifest,
    emissions: Vec<Emission>,
    result: Result<String, Failure>,
    state_writes: BTreeMap<String, Option<Vec<u8>>>,
    /// When set: once every emission is sent, wait for the sink to say a write began,
    /// then let that write go on.
    hold: Option<Hold>,
    seen: Arc<Mutex<Seen>>,
}

/// Both ends of a write held by the sink until the plugin, still running, releases it.
struct Hold {
    began: tokio::sync::oneshot::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl Script {
    fn new(emissions: Vec<Emission>, result: Result<String, Failure>) -> Script {
        Script {
            manifest: manifest(),
            emissions,
            result,
            state_writes: BTreeMap::from([("cursor".to_string(), Some(b"2".to_vec()))]),
            hold: None,
            seen: Arc::default(),
        }
    }
}

impl Source for Script {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn sha256(&self) -> &str {
        "0123abcd"
    }

    async fn run(
        self,
        state: Arc<dyn StateStore>,
        out: mpsc::Sender<Emission>,
        _accepted: infragraph_runtime::ScopeAccepted,
    ) -> SyncOutcome {
        let cursor = state
            .get(PLUGIN, SCOPE, "cursor")
            .await
            .expect("the state store answers");
        let mut sent = 0;
        let mut result = self.result;
        for e in self.emissions {
            if out.send(e).await.is_err() {
                result = Err(Failure::Stopped);
                break;
            }
            sent += 1;
        }
        if let Some(hold) = self.hold
            && hold.began.await.is_ok()
        {
            let _ = hold.release.send(());
        }
        *self.seen.lock().unwrap() = Seen {
            started: true,
            sent,
            cursor,
        };
        SyncOutcome {
            plugin: PLUGIN.into(),
            scope: Some(NodeRef {
                label: "ScriptOrg".into(),
                key: "id".into(),
                value: SCOPE.into(),
            }),
            result,
            counts: Default::default(),
            fetch: Default::default(),
            state_writes: self.state_writes,
            duration: Duration::ZERO,
        }
    }
}

/// A sink that records each call by name and fails the calls it is told to.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<&'static str>>,
    failing: BTreeSet<&'static str>,
    state: Mutex<HashMap<String, Vec<u8>>>,
    runs: Mutex<Vec<RunRecord>>,
    node_rows: Mutex<u64>,
    edge_rows: Mutex<u64>,
    /// Called at each node write, on the writer's thread.
    on_write_nodes: Option<Box<dyn Fn() -> Result<(), SinkError> + Send + Sync>>,
    /// How many more times a lease is refused as held by another run.
    held: Mutex<u32>,
    /// From which lease call on (1 = the first) every one is refused: a lease lost.
    lost_from: Option<usize>,
    /// Set when `warm_up` starts, which then goes on until told to stop.
    warm_started: AtomicBool,
    /// Set when that `warm_up` returns, told to stop.
    warm_stopped: AtomicBool,
}

impl Recorder {
    fn failing(calls: &[&'static str]) -> Recorder {
        Recorder {
            failing: calls.iter().copied().collect(),
            ..Recorder::default()
        }
    }

    fn call(&self, name: &'static str) -> Result<(), SinkError> {
        self.calls.lock().unwrap().push(name);
        if self.failing.contains(name) {
            return Err(SinkError::new(format!("{name} failed (as the test asked)")));
        }
        Ok(())
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls without repeats in a row: one `write_nodes` however many batches.
    fn steps(&self) -> Vec<&'static str> {
        let mut steps = self.calls();
        steps.dedup();
        steps
    }

    fn history(&self) -> Vec<RunStatus> {
        self.runs.lock().unwrap().iter().map(|r| r.status).collect()
    }

    fn cursor(&self) -> Option<Vec<u8>> {
        self.state.lock().unwrap().get("cursor").cloned()
    }
}

impl StateStore for Recorder {
    fn get<'a>(
        &'a self,
        _plugin: &'a str,
        _scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        let v = self.state.lock().unwrap().get(key).cloned();
        Box::pin(async move { Ok(v) })
    }
}

impl GraphSink for Recorder {
    async fn prepare(&self, _manifest: &Manifest) -> Result<(), SinkError> {
        self.call("prepare")
    }

    async fn warm_up(&self, _manifest: &Manifest, stop: &AtomicBool) {
        self.warm_started.store(true, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.warm_stopped.store(true, Ordering::SeqCst);
    }

    async fn next_update_tag(&self) -> Result<i64, SinkError> {
        self.call("next_update_tag").map(|()| 7)
    }

    async fn lease(&self, _w: &WriteScope, _h: &Holder, _ttl: Duration) -> Result<(), SinkError> {
        self.call("lease")?;
        let calls = self.calls().iter().filter(|c| **c == "lease").count();
        if self.lost_from.is_some_and(|n| calls >= n) {
            return Err(SinkError::held(
                "the lease was taken over by process 2 on elsewhere",
            ));
        }
        let mut held = self.held.lock().unwrap();
        if *held > 0 {
            *held -= 1;
            return Err(SinkError::held(
                "plugin \"script\" in scope \"s\" is being synced by process 1 on elsewhere",
            ));
        }
        Ok(())
    }

    async fn release(&self, _w: &WriteScope, _h: &Holder) -> Result<(), SinkError> {
        self.call("release")
    }

    async fn write_nodes(
        &self,
        _w: &WriteScope,
        _extra_labels: &[String],
        batch: &NodeBatch,
    ) -> Result<(), SinkError> {
        self.call("write_nodes")?;
        if let Some(hook) = &self.on_write_nodes {
            hook()?;
        }
        *self.node_rows.lock().unwrap() += batch.rows.len() as u64;
        Ok(())
    }

    async fn write_edges(&self, _w: &WriteScope, batch: &EdgeBatch) -> Result<u64, SinkError> {
        self.call("write_edges")?;
        *self.edge_rows.lock().unwrap() += batch.rows.len() as u64;
        Ok(0)
    }

    async fn publish(&self, _w: &WriteScope, p: &Publish<'_>) -> Result<ChangeCounts, SinkError> {
        self.call("publish")?;
        let mut state = self.state.lock().unwrap();
        for (k, v) in p.state {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        Ok(ChangeCounts::default())
    }

    async fn discard(&self, _w: &WriteScope) -> Result<ChangeCounts, SinkError> {
        self.call("discard").map(|()| ChangeCounts::default())
    }

    async fn commit_state(
        &self,
        _plugin: &str,
        _scope: &str,
        _writes: &BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), SinkError> {
        // Only `infragraph state set` stores state outside a run.
        self.call("commit_state")
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), SinkError> {
        self.call("record_run")?;
        self.runs.lock().unwrap().push(run.clone());
        Ok(())
    }
}

fn quiet() -> ProgressFn {
    Arc::new(|_: &str, _| {})
}

async fn sync<S: GraphSink + 'static>(sink: &Arc<S>, script: Script) -> RunReport {
    sync_with(sink, script, &Options::default()).await
}

async fn sync_with<S: GraphSink + 'static>(
    sink: &Arc<S>,
    script: Script,
    options: &Options,
) -> RunReport {
    sync_source(sink, script, options, &quiet()).await
}

/// Scope, two nodes of each label, an edge between them.
fn a_small_graph() -> Vec<Emission> {
    vec![
        scope(),
        nodes("ScriptA", &["a1", "a2"]),
        nodes("ScriptB", &["b1", "b2"]),
        edges(&[("a1", "b1")]),
    ]
}

#[tokio::test]
async fn a_successful_run_writes_then_publishes_with_its_state_then_is_recorded() {
    let sink = Arc::new(Recorder::default());
    let report = sync(&sink, Script::new(a_small_graph(), Ok("4 records".into()))).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    assert!(report.errors.is_empty());
    assert_eq!(report.summary.as_deref(), Some("4 records"));
    assert_eq!(
        sink.steps(),
        [
            "prepare",
            "next_update_tag",
            "lease",
            "write_nodes",
            "write_edges",
            "lease",
            "publish",
            "release",
            "record_run"
        ]
    );
    assert_eq!(sink.cursor().as_deref(), Some(&b"2"[..]));
    assert_eq!(sink.history(), [RunStatus::Succeeded]);
}

/// The sink's work ahead (a graph server planning the run's statements) runs beside the
/// plugin and is told to stop when the run ends: one that would go on holds nothing up.
#[tokio::test]
async fn the_sinks_warm_up_runs_beside_the_run_and_stops_with_it() {
    let sink = Arc::new(Recorder::default());
    let report = sync(&sink, Script::new(a_small_graph(), Ok("4 records".into()))).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    assert!(sink.warm_started.load(Ordering::SeqCst), "warm-up started");
    // The run's end told it to stop; it returns at its next step.
    for _ in 0..100 {
        if sink.warm_stopped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        sink.warm_stopped.load(Ordering::SeqCst),
        "the warm-up returned when the run ended"
    );
}

#[tokio::test]
async fn a_plugin_failure_is_discarded_deletes_nothing_and_commits_no_state() {
    let sink = Arc::new(Recorder::default());
    let report = sync(&sink, Script::new(a_small_graph(), Err(plugin_error()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.errors,
        ["sync: provider error: HTTP 500 listing users"]
    );
    // Nothing of a failed run is published: its edges are not even written.
    assert_eq!(
        sink.steps(),
        [
            "prepare",
            "next_update_tag",
            "lease",
            "write_nodes",
            "discard",
            "release",
            "record_run"
        ]
    );
    assert_eq!(sink.cursor(), None);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

#[tokio::test]
async fn a_failed_node_write_stops_the_plugin_and_nothing_after_it_runs() {
    let sink = Arc::new(Recorder::failing(&["write_nodes"]));
    let mut emissions = vec![scope()];
    for i in 0..500 {
        emissions.push(nodes("ScriptA", &[&format!("a{i}")]));
    }
    emissions.push(edges(&[("a1", "b1")]));
    let script = Script::new(emissions, Ok("done".into()));
    let seen = script.seen.clone();
    let options = Options {
        batch_size: 1,
        ..Options::default()
    };
    let report = sync_with(&sink, script, &options).await;
    let seen = seen.lock().unwrap();
    assert!(
        seen.sent < 500,
        "the engine stopped reading, which stopped the plugin ({} sent)",
        seen.sent
    );
    assert_eq!(report.status, RunStatus::Failed);
    // The sink's error is the cause; the plugin's "stopped" is not reported beside it.
    assert_eq!(
        report.errors,
        ["sink: write_nodes failed (as the test asked)"]
    );
    assert_eq!(
        sink.steps(),
        [
            "prepare",
            "next_update_tag",
            "lease",
            "write_nodes",
            "discard",
            "release",
            "record_run"
        ]
    );
    assert_eq!(sink.cursor(), None);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

#[tokio::test]
async fn a_failed_edge_write_deletes_nothing_and_commits_no_state() {
    let sink = Arc::new(Recorder::failing(&["write_edges"]));
    let report = sync(&sink, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.errors,
        ["sink: write_edges failed (as the test asked)"]
    );
    assert_eq!(
        sink.steps(),
        [
            "prepare",
            "next_update_tag",
            "lease",
            "write_nodes",
            "write_edges",
            "discard",
            "release",
            "record_run"
        ]
    );
    assert_eq!(sink.cursor(), None);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

#[tokio::test]
async fn a_scope_another_run_holds_fails_at_once_and_writes_nothing() {
    let sink = Arc::new(Recorder {
        held: Mutex::new(1),
        ..Recorder::default()
    });
    let report = sync(&sink, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0].contains("being synced by process 1 on elsewhere"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        sink.steps(),
        ["prepare", "next_update_tag", "lease", "record_run"]
    );
}

#[tokio::test]
async fn with_wait_a_run_takes_the_lease_once_it_is_free() {
    let sink = Arc::new(Recorder {
        held: Mutex::new(1),
        ..Recorder::default()
    });
    let options = Options {
        wait_for_lease: true,
        ..Options::default()
    };
    let report = sync_with(
        &sink,
        Script::new(a_small_graph(), Ok("done".into())),
        &options,
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    let leases = sink.calls().iter().filter(|c| **c == "lease").count();
    assert_eq!(
        leases,
        1 + 1 + 1,
        "a refusal, the take a second later, the check before cleanup"
    );
}

#[tokio::test]
async fn a_lease_lost_before_cleanup_deletes_nothing() {
    // Refused from the second call on: the check before cleanup finds another holder.
    let sink = Arc::new(Recorder {
        lost_from: Some(2),
        ..Recorder::default()
    });
    let report = sync(&sink, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(!sink.calls().contains(&"publish"));
    assert!(sink.calls().contains(&"discard"));
    assert_eq!(sink.cursor(), None);
}

#[tokio::test]
async fn a_failed_publication_fails_the_run_and_stores_no_state() {
    let sink = Arc::new(Recorder::failing(&["publish"]));
    let report = sync(&sink, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.errors, ["sink: publish failed (as the test asked)"]);
    assert!(sink.calls().contains(&"discard"), "what was held goes");
    assert_eq!(sink.cursor(), None);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

#[tokio::test]
async fn a_failed_prepare_is_recorded_and_the_plugin_never_runs() {
    let sink = Arc::new(Recorder::failing(&["prepare"]));
    let script = Script::new(a_small_graph(), Ok("done".into()));
    let seen = script.seen.clone();
    let report = sync(&sink, script).await;
    assert!(!seen.lock().unwrap().started);
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(sink.steps(), ["prepare", "record_run"]);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

#[tokio::test]
async fn a_run_that_declares_no_scope_writes_nothing_and_is_recorded_as_failed() {
    let sink = Arc::new(Recorder::default());
    let report = sync(&sink, Script::new(Vec::new(), Ok("nothing".into()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0].contains("without declaring a scope"),
        "{:?}",
        report.errors
    );
    assert_eq!(sink.steps(), ["prepare", "next_update_tag", "record_run"]);
    assert_eq!(sink.history(), [RunStatus::Failed]);
}

/// The history is a record of the graph, not the graph: a run whose writes are published
/// stays published when its line cannot be added (another process holding the store's
/// write lock, say), and says so; a failed run says it too, beside why it failed.
#[tokio::test]
async fn a_recording_failure_is_said_without_unpublishing_the_run() {
    let sink = Arc::new(Recorder::failing(&["record_run"]));
    let report = sync(&sink, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.warnings,
        [
            "sink: the run is published, but the run history lacks it: record_run failed (as the test asked)"
        ]
    );

    let sink = Arc::new(Recorder::failing(&["record_run"]));
    let report = sync(&sink, Script::new(a_small_graph(), Err(plugin_error()))).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert_eq!(
        report.errors[1],
        "sink: recording the run: record_run failed (as the test asked)"
    );
}

#[tokio::test]
async fn the_plugin_reads_its_state_from_the_sink() {
    let sink = Arc::new(Recorder::default());
    sink.state
        .lock()
        .unwrap()
        .insert("cursor".into(), b"1".to_vec());
    let script = Script::new(a_small_graph(), Ok("done".into()));
    let seen = script.seen.clone();
    sync(&sink, script).await;
    assert_eq!(seen.lock().unwrap().cursor.as_deref(), Some(&b"1"[..]));
    assert_eq!(sink.cursor().as_deref(), Some(&b"2"[..]), "and it moved on");
}

#[tokio::test]
async fn edges_past_the_memory_bound_all_arrive_after_every_node() {
    let sink = Arc::new(Recorder::default());
    let mut emissions = vec![scope()];
    for i in 0..100 {
        emissions.push(nodes("ScriptA", &[&format!("a{i}")]));
        emissions.push(edges(&[("a0", "b0"), ("a1", "b1"), ("a2", "b2")]));
    }
    // 300 edges against a bound of 10: spilled to disk some thirty times.
    let options = Options {
        batch_size: 7,
        edge_memory_rows: 10,
        ..Options::default()
    };
    let report = sync_with(&sink, Script::new(emissions, Ok("done".into())), &options).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    assert_eq!(*sink.node_rows.lock().unwrap(), 100);
    assert_eq!(*sink.edge_rows.lock().unwrap(), 300);
    let calls = sink.calls();
    let last_node = calls.iter().rposition(|c| *c == "write_nodes").unwrap();
    let first_edge = calls.iter().position(|c| *c == "write_edges").unwrap();
    assert!(last_node < first_edge, "{calls:?}");
}

/// The sink holds the first node write, blocking its thread as the embedded store's
/// writes do, until the plugin (which waits for that write to begin) releases it: the
/// plugin must keep running while a batch is written, or neither ever goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_keeps_running_while_a_batch_is_written() {
    let (began, began_rx) = tokio::sync::oneshot::channel::<()>();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(Some((began, held)));
    let sink = Arc::new(Recorder {
        on_write_nodes: Some(Box::new(move || {
            let Some((began, held)) = gate.lock().unwrap().take() else {
                return Ok(());
            };
            let _ = began.send(());
            tokio::task::block_in_place(|| held.recv_timeout(Duration::from_secs(20)))
                .map_err(|_| SinkError::new("the plugin did not go on while a batch was written"))
        })),
        ..Recorder::default()
    });
    let mut script = Script::new(
        vec![
            scope(),
            nodes("ScriptA", &["a1"]),
            nodes("ScriptA", &["a2"]),
        ],
        Ok("done".into()),
    );
    script.hold = Some(Hold {
        began: began_rx,
        release,
    });
    let options = Options {
        batch_size: 1,
        ..Options::default()
    };
    let report = sync_with(&sink, script, &options).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.errors);
    assert_eq!(*sink.node_rows.lock().unwrap(), 2);
}

/// Node ids of `label` in the store, sorted.
fn stored(store: &Store, label: &str) -> Vec<String> {
    let filters: &[(&str, &str)] = &[];
    let mut ids: Vec<String> = store
        .nodes(label, filters, 0)
        .expect("a query")
        .into_iter()
        .map(|n| n.id)
        .collect();
    ids.sort();
    ids
}

fn store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("a scratch dir");
    let store = Store::open(dir.path().join("graph.db")).expect("a store");
    (dir, Arc::new(store))
}

#[tokio::test]
async fn incomplete_labels_make_a_run_partial_and_keep_their_stale_records() {
    let (_dir, store) = store();
    let first = sync(&store, Script::new(a_small_graph(), Ok("done".into()))).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.errors);
    // a2 and b2 are gone from the provider, but ScriptB could not be listed fully.
    let second = Script::new(
        vec![
            scope(),
            nodes("ScriptA", &["a1"]),
            nodes("ScriptB", &["b1"]),
            incomplete("ScriptB"),
        ],
        Ok("done".into()),
    );
    let report = sync(&store, second).await;
    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.errors);
    assert_eq!(report.incomplete[0].label, "ScriptB");
    assert_eq!(stored(&store, "ScriptA"), ["a1"], "a2 is stale: deleted");
    assert_eq!(stored(&store, "ScriptB"), ["b1", "b2"], "b2 is kept");
    assert_eq!(report.nodes["ScriptA"].deleted, 1);
    // A partial run is a success for the plugin's cursor.
    assert_eq!(
        store.get(PLUGIN, SCOPE, "cursor").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    let history: Vec<RunStatus> = store
        .runs(10)
        .expect("the history")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(history, [RunStatus::Partial, RunStatus::Succeeded]);
}

#[tokio::test]
async fn after_a_plugin_failure_the_store_is_exactly_as_before() {
    let (_dir, store) = store();
    let mut first = Script::new(a_small_graph(), Ok("done".into()));
    first.state_writes = BTreeMap::from([("cursor".to_string(), Some(b"1".to_vec()))]);
    sync(&store, first).await;
    let failed = Script::new(
        vec![scope(), nodes("ScriptA", &["a1", "a3"])],
        Err(plugin_error()),
    );
    let report = sync(&store, failed).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        stored(&store, "ScriptA"),
        ["a1", "a2"],
        "nothing of the failed run"
    );
    assert_eq!(stored(&store, "ScriptB"), ["b1", "b2"]);
    assert_eq!(
        store.get(PLUGIN, SCOPE, "cursor").await.unwrap().as_deref(),
        Some(&b"1"[..]),
        "the failed run's cursor was not committed"
    );
    let history: Vec<RunStatus> = store
        .runs(10)
        .expect("the history")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(history, [RunStatus::Failed, RunStatus::Succeeded]);
}
