use std::future::Future;
use std::pin::Pin;

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
