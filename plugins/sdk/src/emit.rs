//! Buffering of emitted records into the contract's batches.
//!
//! Rows are kept per label (nodes) or per relationship shape (edges) and sent when a buffer
//! holds `batch_size` rows. A batch's columns are the property names its rows used, in the
//! order first seen. This is the hot path of a large sync, so a property name is compared
//! against the batch's columns, starting where the previous property of the row matched,
//! and allocated once per batch, not once per row.

use crate::host::Host;
use crate::wit::emit::{EdgeBatch, EdgeRow, NodeBatch, NodeRow};
use crate::wit::types::Value;

/// Rows per batch unless the plugin sets another size.
pub(crate) const DEFAULT_BATCH_SIZE: usize = 1_000;

/// Rows reserved up front for a new buffer, so a huge batch size does not allocate for
/// rows that may never come.
const MAX_RESERVE: usize = 4_096;

pub(crate) struct Emitter {
    batch_size: usize,
    nodes: Vec<NodeBuffer>,
    edges: Vec<EdgeBuffer>,
    last_node: usize,
    last_edge: usize,
}

/// The property names of one batch being filled.
#[derive(Default)]
pub(crate) struct Columns {
    names: Vec<String>,
}

impl Columns {
    /// The column of `name`, added if new. `hint` is where the row's next property is
    /// expected: rows usually set their properties in the same order.
    #[inline]
    pub(crate) fn index(&mut self, name: &str, hint: &mut usize) -> usize {
        let i = match self.names.get(*hint) {
            Some(n) if same(n, name) => *hint,
            _ => self.search(name),
        };
        *hint = i + 1;
        i
    }

    fn search(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| same(n, name)) {
            Some(i) => i,
            None => {
                self.names.push(name.to_owned());
                self.names.len() - 1
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Property names are short, so an inlined byte loop beats a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Sets column `i` of a row, growing it with nulls as needed.
#[inline]
pub(crate) fn set(values: &mut Vec<Value>, i: usize, value: Value) {
    if i == values.len() {
        values.push(value);
    } else if i < values.len() {
        values[i] = value;
    } else {
        values.resize_with(i, || Value::Null);
        values.push(value);
    }
}

pub(crate) struct NodeBuffer {
    label: String,
    pub(crate) columns: Columns,
    rows: Vec<NodeRow>,
}

/// The relationship type, then each end's label and the property it is matched on.
#[derive(PartialEq, Eq)]
pub(crate) struct EdgeShape<'a> {
    pub(crate) rel_type: &'a str,
    pub(crate) from_label: &'a str,
    pub(crate) from_key: &'a str,
    pub(crate) to_label: &'a str,
    pub(crate) to_key: &'a str,
}

pub(crate) struct EdgeBuffer {
    rel_type: String,
    from_label: String,
    from_key: String,
    to_label: String,
    to_key: String,
    pub(crate) columns: Columns,
    rows: Vec<EdgeRow>,
}

impl EdgeBuffer {
    fn shape(&self) -> EdgeShape<'_> {
        EdgeShape {
            rel_type: &self.rel_type,
            from_label: &self.from_label,
            from_key: &self.from_key,
            to_label: &self.to_label,
            to_key: &self.to_key,
        }
    }
}

impl Emitter {
    pub(crate) fn new() -> Emitter {
        Emitter {
            batch_size: DEFAULT_BATCH_SIZE,
            nodes: Vec::new(),
            edges: Vec::new(),
            last_node: 0,
            last_edge: 0,
        }
    }

    pub(crate) fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.max(1);
    }

    /// The buffer for `label`, created on first use.
    pub(crate) fn node_buffer(&mut self, label: &str) -> usize {
        if self
            .nodes
            .get(self.last_node)
            .is_some_and(|b| b.label == label)
        {
            return self.last_node;
        }
        let i = self
            .nodes
            .iter()
            .position(|b| b.label == label)
            .unwrap_or_else(|| {
                self.nodes.push(NodeBuffer {
                    label: label.to_owned(),
                    columns: Columns::default(),
                    rows: Vec::new(),
                });
                self.nodes.len() - 1
            });
        self.last_node = i;
        i
    }

    pub(crate) fn node(&mut self, buffer: usize) -> &mut NodeBuffer {
        &mut self.nodes[buffer]
    }

    /// The buffer for edges of `shape`, created on first use.
    pub(crate) fn edge_buffer(&mut self, shape: EdgeShape<'_>) -> usize {
        if self
            .edges
            .get(self.last_edge)
            .is_some_and(|b| b.shape() == shape)
        {
            return self.last_edge;
        }
        let i = self
            .edges
            .iter()
            .position(|b| b.shape() == shape)
            .unwrap_or_else(|| {
                self.edges.push(EdgeBuffer {
                    rel_type: shape.rel_type.to_owned(),
                    from_label: shape.from_label.to_owned(),
                    from_key: shape.from_key.to_owned(),
                    to_label: shape.to_label.to_owned(),
                    to_key: shape.to_key.to_owned(),
                    columns: Columns::default(),
                    rows: Vec::new(),
                });
                self.edges.len() - 1
            });
        self.last_edge = i;
        i
    }

    pub(crate) fn edge(&mut self, buffer: usize) -> &mut EdgeBuffer {
        &mut self.edges[buffer]
    }

    pub(crate) fn push_node(&mut self, buffer: usize, row: NodeRow, host: &mut dyn Host) {
        let b = &mut self.nodes[buffer];
        if b.rows.capacity() == 0 {
            b.rows.reserve_exact(self.batch_size.min(MAX_RESERVE));
        }
        b.rows.push(row);
        if b.rows.len() >= self.batch_size {
            self.flush_nodes(buffer, host);
        }
    }

    pub(crate) fn push_edge(&mut self, buffer: usize, row: EdgeRow, host: &mut dyn Host) {
        let b = &mut self.edges[buffer];
        if b.rows.capacity() == 0 {
            b.rows.reserve_exact(self.batch_size.min(MAX_RESERVE));
        }
        b.rows.push(row);
        if b.rows.len() >= self.batch_size {
            self.flush_edges(buffer, host);
        }
    }

    fn flush_nodes(&mut self, buffer: usize, host: &mut dyn Host) {
        let b = &mut self.nodes[buffer];
        if b.rows.is_empty() {
            return;
        }
        let columns = std::mem::take(&mut b.columns.names);
        // A column first used by a later row is missing from the rows before it.
        for row in &mut b.rows {
            row.values.resize_with(columns.len(), || Value::Null);
        }
        let mut batch = NodeBatch {
            label: b.label.clone(),
            columns,
            rows: std::mem::take(&mut b.rows),
        };
        host.emit_nodes(&batch);
        // Keep the rows' allocation for the next batch of this label.
        batch.rows.clear();
        b.rows = batch.rows;
    }

    fn flush_edges(&mut self, buffer: usize, host: &mut dyn Host) {
        let b = &mut self.edges[buffer];
        if b.rows.is_empty() {
            return;
        }
        let columns = std::mem::take(&mut b.columns.names);
        for row in &mut b.rows {
            row.values.resize_with(columns.len(), || Value::Null);
        }
        let mut batch = EdgeBatch {
            rel_type: b.rel_type.clone(),
            from_label: b.from_label.clone(),
            from_key: b.from_key.clone(),
            to_label: b.to_label.clone(),
            to_key: b.to_key.clone(),
            columns,
            rows: std::mem::take(&mut b.rows),
        };
        host.emit_edges(&batch);
        batch.rows.clear();
        b.rows = batch.rows;
    }

    /// Sends every buffered row: nodes first, then edges.
    pub(crate) fn flush(&mut self, host: &mut dyn Host) {
        for i in 0..self.nodes.len() {
            self.flush_nodes(i, host);
        }
        for i in 0..self.edges.len() {
            self.flush_edges(i, host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_hint_and_fall_back_to_search() {
        let mut c = Columns::default();
        let mut hint = 0;
        assert_eq!(c.index("a", &mut hint), 0);
        assert_eq!(c.index("b", &mut hint), 1);
        assert_eq!(hint, 2);
        let mut hint = 0;
        assert_eq!(c.index("b", &mut hint), 1);
        assert_eq!(c.index("a", &mut hint), 0);
        assert_eq!(c.index("c", &mut hint), 2);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn set_grows_with_nulls() {
        let mut v = Vec::new();
        set(&mut v, 2, Value::Int(1));
        set(&mut v, 0, Value::Boolean(true));
        assert!(matches!(
            v[..],
            [Value::Boolean(true), Value::Null, Value::Int(1)]
        ));
    }
}
