use std::collections::HashMap;
use std::sync::Mutex;

/// Why plugin state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("plugin state: {0}")]
pub struct StateError(pub String);

/// The small key-value store each plugin has per scope, kept by a sink. Writes of a sync
/// are staged by the caller and only reach the store when the sync succeeds.
pub trait StateStore: Send + Sync {
    /// The value under `key`.
    fn get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Replaces the value under `key`; `None` deletes it.
    fn set(&self, plugin: &str, scope: &str, key: &str, value: Option<&[u8]>)
    -> Result<(), StateError>;
}

/// A [`StateStore`] in memory, for tests and throw-away runs.
#[derive(Debug, Default)]
pub struct MemoryState(Mutex<HashMap<(String, String, String), Vec<u8>>>);

impl StateStore for MemoryState {
    fn get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let map = self.0.lock().map_err(|e| StateError(e.to_string()))?;
        Ok(map.get(&(plugin.into(), scope.into(), key.into())).cloned())
    }

    fn set(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StateError> {
        let mut map = self.0.lock().map_err(|e| StateError(e.to_string()))?;
        let k = (plugin.into(), scope.into(), key.into());
        match value {
            Some(v) => map.insert(k, v.to_vec()),
            None => map.remove(&k),
        };
        Ok(())
    }
}
