//! infragraph's shared vocabulary: property values, node and edge batches, the manifest a
//! plugin declares, and the checks both apply; and the one backoff rule every retry loop
//! (HTTP fetches, sink transactions) follows.
//!
//! Every other host crate speaks these types; this crate depends on none of them (no
//! wasmtime, no HTTP client, no database), so a sink and the plugin runtime meet here
//! without knowing each other.
#![deny(missing_docs)]

mod backoff;
mod digest;
mod error;
mod lease;
mod manifest;
pub mod private;
mod read;
mod record;
mod schema;
mod sink;
mod state;
mod text;
mod value;

pub use backoff::{BACKOFF_CAP, backoff};
pub use digest::{Digest, digest, digest_json};
pub use error::{ManifestError, RecordError};
pub use lease::{Holder, LEASE_TTL};
pub use manifest::{
    Access, AccessKind, AwsSigning, ConfigKey, ConfigType, ConfigValue, Credential, CredentialUse,
    EdgeKind, HOST_LABELS, HOST_SOURCES, Manifest, NodeKind, PropertyDef, Schema,
};
pub use read::{Direction, Exported, GraphReader, MAX_PATH_VISITS, Step, StoredEdge, StoredNode};
pub use record::{EdgeBatch, EdgeRow, NodeBatch, NodeRef, NodeRow};
pub use schema::{
    CheckedSchema, is_pascal_case, is_plugin_name, is_screaming_snake_case, is_snake_case,
};
pub use sink::{
    ChangeCounts, Changes, GraphSink, Incomplete, Publish, RunRecord, RunStatus, SinkError,
    WriteScope,
};
pub use state::{BoxFuture, StateError, StateStore};
pub use text::{Split, Text};
pub use value::{Value, ValueType};

/// Properties every stored node and edge carries, written by the host. A plugin may not
/// declare them.
pub const RESERVED_PROPERTIES: &[&str] = &[
    "id",
    "firstseen",
    "lastupdated",
    "_source",
    "_scope",
    "_also_scopes",
    "_digest",
    "_seen",
];
