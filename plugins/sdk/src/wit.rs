//! The generated bindings for contract 0.3.0 (whose imports are 0.1.0's interfaces, and
//! whose credentials and access meanings are 0.2.0's). Nothing here is public: the rest of the crate
//! wraps these types, and `__private` hands the export macro only what it must name.

wit_bindgen::generate!({
    path: ["wit/since_v0.1.0", "wit/since_v0.2.0", "wit/since_v0.3.0"],
    world: "infragraph:plugin/ingestor@0.3.0",
    // The imports are 0.1.0's interfaces, another package version: generated here too.
    generate_all,
    // The plugin crate expands the export macro, so it must be reachable from there;
    // `export_ingestor!` is the only caller.
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "$crate::__private",
});

pub(crate) use self::exports::infragraph::plugin0_3_0::provider as ingestor;
pub(crate) use self::infragraph::plugin0_1_0::{emit, http, log, state, types};
pub(crate) use self::infragraph::plugin0_2_0::types as types_v2;
pub(crate) use self::infragraph::plugin0_3_0::types as types_v3;
