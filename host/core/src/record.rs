use serde::{Deserialize, Serialize};

use crate::{Text, Value};

/// Nodes of one label, their property names given once for the whole batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeBatch {
    /// The label every row carries.
    pub label: String,
    /// Property names; each row's `values` follow this order.
    pub columns: Vec<String>,
    /// The nodes.
    pub rows: Vec<NodeRow>,
}

/// One node of a [`NodeBatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The key.
    pub id: Text,
    /// One value per column.
    pub values: Vec<Value>,
}

/// Relationships of one type between two labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeBatch {
    /// The relationship type.
    pub rel_type: String,
    /// Label of the start nodes.
    pub from_label: String,
    /// Property of the start node that `EdgeRow::from` matches.
    pub from_key: String,
    /// Label of the end nodes.
    pub to_label: String,
    /// Property of the end node that `EdgeRow::to` matches.
    pub to_key: String,
    /// Property names of the relationships.
    pub columns: Vec<String>,
    /// The relationships.
    pub rows: Vec<EdgeRow>,
}

/// One relationship of an [`EdgeBatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRow {
    /// Value of the start node's key property.
    pub from: Text,
    /// Value of the end node's key property.
    pub to: Text,
    /// One value per column.
    pub values: Vec<Value>,
}

/// A node named by label and the value of one property.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeRef {
    /// Its label.
    pub label: String,
    /// The property matched, usually `id`.
    pub key: String,
    /// The property's value.
    pub value: String,
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}={:?}", self.label, self.key, self.value)
    }
}
