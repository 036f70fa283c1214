use std::path::PathBuf;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a component wasmtime accepts.
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
    /// The component was built against a contract this host does not support.
    #[error(
        "{path} was built against infragraph contract {found}; this host supports {supported}. \
         Rebuild the plugin against a supported version of the infragraph SDK"
    )]
    Contract {
        /// The plugin file.
        path: PathBuf,
        /// The version it was built against, or a description of what it exports.
        found: String,
        /// The versions this host supports.
        supported: String,
    },
    /// The component imports something the sandbox does not provide.
    #[error(
        "{path} cannot be instantiated: {reason}. Plugins may import only the infragraph \
         contract and WASI 0.2"
    )]
    Link {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
    /// `manifest()` trapped or broke a limit.
    #[error("{path}: reading its manifest failed: {reason}")]
    Manifest {
        /// The plugin file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The manifest breaks the contract's rules.
    #[error("{path}: {source}")]
    BadManifest {
        /// The plugin file.
        path: PathBuf,
        /// The rule broken.
        source: infragraph_core::ManifestError,
    },
    /// The file's sha256 differs from the one the operator pinned.
    #[error(
        "plugin {name:?} at {path} has sha256 {actual}, but the config pins {pinned}; \
         refusing to load it. If you trust the new file, update the pin"
    )]
    PinMismatch {
        /// The plugin's name.
        name: String,
        /// The plugin file.
        path: PathBuf,
        /// The pinned digest.
        pinned: String,
        /// The file's digest.
        actual: String,
    },
    /// A plugin given by path calls itself by the name of an installed plugin: it would
    /// write that plugin's records and read its state.
    #[error(
        "{path} calls itself {name:?}, the name of the {kind} plugin at {installed}; run as \
         {name:?} it would write that plugin's records and read its state (credentials such \
         as the Azure abstraction seed among them). Run the installed plugin by name, or \
         rename this one; to replace the installed plugin on purpose, pin this file \
         ([plugins.{name}] sha256 = \"{sha256}\") or pass --replace-installed"
    )]
    ShadowsInstalled {
        /// The name both use.
        name: String,
        /// The file given.
        path: PathBuf,
        /// Its digest.
        sha256: String,
        /// Where the installed plugin is.
        installed: PathBuf,
        /// Built-in or user.
        kind: crate::catalog::Source,
    },
    /// Two plugins declare the same primary label: the nodes would belong to both.
    #[error(
        "plugin {name:?} ({path}) declares label {label} as its own, but so does plugin \
         {other:?} ({other_path}); a label belongs to one plugin. Remove one of them from the \
         plugin directories, or rename the label in one"
    )]
    LabelConflict {
        /// The plugin asked for.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The label both declare.
        label: String,
        /// The other plugin.
        other: String,
        /// Its file.
        other_path: PathBuf,
    },
    /// No plugin of that name in the plugin directories.
    #[error(
        "no plugin named {name:?}{} (searched {}; found {}). Install one by copying its \
         .wasm file into a user plugin directory, or give the path to the file",
        suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default(),
        if searched.is_empty() { "no directories".to_string() } else { searched.join(", ") },
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The directories searched.
        searched: Vec<String>,
        /// The plugins that are there.
        available: Vec<String>,
        /// The one of them closest to `name`, when one is close.
        suggestion: Option<String>,
    },
    /// wasmtime could not be set up.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error { kind }
    }
}
