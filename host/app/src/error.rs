//! Why a front end's request could not be carried out. Every variant's message says what
//! was wrong and, where the user can act, what to do.

/// An error of the library; front ends print it with its sources (`{:#}` in anyhow).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is missing, unreadable or wrong.
    #[error("{0}")]
    Config(String),
    /// What the front end asked for does not fit together (e.g. two places for the graph).
    #[error("{0}")]
    Usage(String),
    /// A plugin's signature, its install or its pin.
    #[error("{0}")]
    Trust(String),
    /// A plugin could not be found or loaded.
    #[error(transparent)]
    Plugin(#[from] infragraph_runtime::Error),
    /// A plugin's config or credentials could not be resolved.
    #[error(transparent)]
    PluginConfig(#[from] infragraph_runtime::ConfigError),
    /// The embedded store failed.
    #[error(transparent)]
    Store(#[from] infragraph_sink_sqlite::Error),
    /// The Neo4j server failed or refused.
    #[error(transparent)]
    Neo4j(#[from] infragraph_sink_neo4j::Error),
    /// A sink failed through its trait.
    #[error(transparent)]
    Sink(#[from] infragraph_core::SinkError),
    /// Plugin state could not be read.
    #[error(transparent)]
    State(#[from] infragraph_core::StateError),
}
