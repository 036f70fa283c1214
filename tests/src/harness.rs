//! Running plugins in tests: where the built guests are, a run that collects everything
//! a plugin emitted, and a state store in memory for runs without a sink.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use infragraph_core::{BoxFuture, ConfigValue, StateError, StateStore};
use infragraph_fetch::Secrets;
use infragraph_runtime::{Emission, Limits, Plugin, Runtime, SyncOutcome, SyncRequest};

fn artifact_dir(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(d) => PathBuf::from(d),
        None => panic!(
            "{var} is not set: run the tests with `cargo xtask test`, which builds the wasm guests first"
        ),
    }
}

/// A test guest built by `cargo xtask build` (`misbehave`, `old-contract`, `emit-bench`).
pub fn guest(name: &str) -> PathBuf {
    let path = artifact_dir("INFRAGRAPH_TEST_GUESTS").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build`",
        path.display()
    );
    path
}

/// A provider plugin built by `cargo xtask build` (`example`, ...).
pub fn plugin(name: &str) -> PathBuf {
    let path = artifact_dir("INFRAGRAPH_TEST_PLUGINS").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build`",
        path.display()
    );
    path
}

/// The directory holding the provider plugins.
pub fn plugin_dir() -> PathBuf {
    artifact_dir("INFRAGRAPH_TEST_PLUGINS")
}

/// A [`StateStore`] in memory, for runs of the runtime without a sink (the engine gives
/// a plugin its sink as its state store).
#[derive(Debug, Default)]
pub struct MemoryState(Mutex<HashMap<(String, String, String), Vec<u8>>>);

impl MemoryState {
    /// Replaces the value under `key`; `None` deletes it.
    pub fn set(&self, plugin: &str, scope: &str, key: &str, value: Option<&[u8]>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let k = (plugin.into(), scope.into(), key.into());
        match value {
            Some(v) => map.insert(k, v.to_vec()),
            None => map.remove(&k),
        };
    }
}

impl StateStore for MemoryState {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let v = map.get(&(plugin.into(), scope.into(), key.into())).cloned();
        Box::pin(async move { Ok(v) })
    }
}

/// Everything one sync produced.
pub struct Run {
    /// How it ended.
    pub outcome: SyncOutcome,
    /// What it emitted, in order (progress included).
    pub emitted: Vec<Emission>,
}

impl Run {
    /// `(label, id, property, value)` of every emitted node property, for assertions.
    pub fn node_ids(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in &self.emitted {
            if let Emission::Nodes(b) = e {
                out.extend(b.rows.iter().map(|r| (b.label.clone(), r.id.to_string())));
            }
        }
        out
    }

    /// The value of property `prop` of node `id`.
    pub fn prop(&self, id: &str, prop: &str) -> Option<infragraph_core::Value> {
        for e in &self.emitted {
            if let Emission::Nodes(b) = e {
                let col = b.columns.iter().position(|c| c == prop);
                for r in &b.rows {
                    if r.id == id {
                        return col.map(|c| r.values[c].clone());
                    }
                }
            }
        }
        None
    }

    /// The failure text, panicking if the sync succeeded.
    pub fn failure(&self) -> String {
        match &self.outcome.result {
            Ok(s) => panic!("expected the sync to fail, it succeeded: {s}"),
            Err(f) => f.to_string(),
        }
    }
}

/// Builder for one sync in a test.
pub struct Sync<'a> {
    runtime: &'a Runtime,
    plugin: &'a Plugin,
    config: BTreeMap<String, ConfigValue>,
    secrets: Secrets,
    limits: Limits,
    state: Arc<dyn StateStore>,
}

impl<'a> Sync<'a> {
    /// A sync of `plugin` with no config, no secrets and default limits.
    pub fn new(runtime: &'a Runtime, plugin: &'a Plugin) -> Self {
        Sync {
            runtime,
            plugin,
            config: BTreeMap::new(),
            secrets: Secrets::new(),
            limits: Limits::default(),
            state: Arc::new(MemoryState::default()),
        }
    }

    /// Sets a text config value.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config
            .insert(key.into(), ConfigValue::Text(value.into()));
        self
    }

    /// Sets a credential value (at least
    /// [`MIN_SECRET_BYTES`](infragraph_fetch::MIN_SECRET_BYTES) long).
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets
            .insert(name, value.into())
            .expect("a test secret long enough to scrub");
        self
    }

    /// Changes the limits.
    pub fn limits(mut self, f: impl FnOnce(&mut Limits)) -> Self {
        f(&mut self.limits);
        self
    }

    /// Uses this state store.
    pub fn state(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = state;
        self
    }

    /// Runs the sync, collecting emissions concurrently.
    pub async fn run(self) -> Run {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let collect = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(e) = rx.recv().await {
                v.push(e);
            }
            v
        });
        let req = SyncRequest {
            config: self.config.into_iter().collect(),
            secrets: self.secrets,
            limits: self.limits,
            state: self.state,
            tape: Default::default(),
            scope_accepted: None,
        };
        let outcome = self.runtime.sync(self.plugin, req, tx).await;
        let emitted = collect.await.expect("collector task");
        Run { outcome, emitted }
    }
}
