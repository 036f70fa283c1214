/// A manifest that breaks the contract's rules. The plugin is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin:?} declares an invalid manifest: {what}")]
pub struct ManifestError {
    /// The plugin's declared name.
    pub plugin: String,
    /// What is wrong, quoting the offending item.
    pub what: String,
}

/// A record that does not fit the schema its plugin declared. It fails the sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin:?} emitted an invalid {kind} {record}: {what}")]
pub struct RecordError {
    /// The emitting plugin.
    pub plugin: String,
    /// `node` or `edge`.
    pub kind: &'static str,
    /// The record: label and id, or type and ends.
    pub record: String,
    /// What is wrong.
    pub what: String,
}
