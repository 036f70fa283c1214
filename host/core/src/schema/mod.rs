//! Rules on the schema a plugin declares ([`CheckedSchema::new`]) and on the records it
//! emits against that schema ([`CheckedSchema::check_nodes`], [`CheckedSchema::check_edges`]).
//!
//! Labels, relationship types and property names end up in Cypher text (they cannot be
//! query parameters), so they are held to strict identifier shapes here, once, and every
//! sink may rely on that.

mod check;
mod names;

pub use check::CheckedSchema;
pub use names::{is_pascal_case, is_plugin_name, is_screaming_snake_case, is_snake_case};
