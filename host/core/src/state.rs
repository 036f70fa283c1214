use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Why plugin state could not be read.
#[derive(Debug, thiserror::Error)]
#[error("plugin state: {0}")]
pub struct StateError(pub String);

/// A boxed future, so [`StateStore`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reading the small key-value store each plugin has per scope. A sync's writes are
/// staged by the runtime and stored by the sink only when the sync succeeds
/// (`GraphSink::commit_state`), so a failed run cannot leave a cursor half-advanced.
pub trait StateStore: Send + Sync {
    /// The value under `key` for `plugin` in `scope`.
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        scope: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>>;
}

/// A [`StateStore`] in memory, for tests and throw-away runs.
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
