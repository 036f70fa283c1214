//! The generated bindings for contract 0.1.0. Nothing here is public: the rest of the crate
//! wraps these types, and `__private` hands the export macro only what it must name.

wit_bindgen::generate!({
    path: "../../wit/since_v0.1.0",
    world: "ingestor",
    // The plugin crate expands the export macro, so it must be reachable from there;
    // `export_ingestor!` is the only caller.
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "$crate::__private",
});

pub(crate) use self::exports::infragraph::plugin::provider as ingestor;
pub(crate) use self::infragraph::plugin::{emit, http, log, state, types};
