//! Buffering of emitted records into the contract's columnar batches.
//!
//! Rows are kept per label (nodes) or per relationship shape (edges) and sent when a buffer
//! holds `batch_size` rows. Each property is a column: its values for every row of the
//! batch in one typed list, strings laid end to end in one string. A batch of a thousand
//! nodes then crosses into the host as a few dozen blocks of memory rather than tens of
//! thousands of small ones, which is most of what emitting costs.
//!
//! A column takes its type from its first value that is not null. Should a later row give
//! the same property a value of another type, the column falls back to one tagged value
//! per row, and the host reports the record whose type breaks the declared schema.

use crate::Value;
use crate::host::Host;
use crate::value::{Prop, Repr};
use crate::wit::emit;
use crate::wit::types;

/// Rows per batch unless the plugin sets another size.
pub(crate) const DEFAULT_BATCH_SIZE: usize = 1_000;

/// Rows reserved up front for a new column, so a huge batch size does not allocate for
/// rows that may never come.
const MAX_RESERVE: usize = 4_096;

pub(crate) struct Emitter {
    batch_size: usize,
    nodes: Vec<NodeBuffer>,
    edges: Vec<EdgeBuffer>,
    last_node: usize,
    last_edge: usize,
}

/// Strings laid end to end: the contract's `texts`.
#[derive(Default)]
struct Texts {
    data: String,
    ends: Vec<u32>,
}

impl Texts {
    #[inline]
    fn push(&mut self, s: &str) {
        self.data.push_str(s);
        // Wasm memory is at most 4 GiB, so a length always fits.
        self.ends.push(self.data.len() as u32);
    }

    /// Keeps the first `n` strings.
    fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            let end = n.checked_sub(1).map_or(0, |i| self.ends[i] as usize);
            self.data.truncate(end);
            self.ends.truncate(n);
        }
    }

    fn into_wit(self) -> emit::Texts {
        emit::Texts {
            data: self.data,
            ends: self.ends,
        }
    }

    /// Empty again, keeping the memory `t` had.
    fn reuse(t: emit::Texts) -> Texts {
        let (mut data, mut ends) = (t.data, t.ends);
        data.clear();
        ends.clear();
        Texts { data, ends }
    }
}

/// A column's values so far: one per row, a placeholder where the row lacks the property.
enum Values {
    /// Nothing but absent rows yet.
    Untyped,
    Boolean(Vec<bool>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(Texts),
    TextList {
        items: Texts,
        ends: Vec<u32>,
    },
    IntList {
        items: Vec<i64>,
        ends: Vec<u32>,
    },
    Mixed(Vec<types::Value>),
}

impl Values {
    /// Empty values of `v`'s type, room made for `reserve` rows.
    fn typed_like(v: &Prop<'_>, reserve: usize) -> Values {
        let text_list = || Values::TextList {
            items: Texts::default(),
            ends: Vec::with_capacity(reserve),
        };
        let int_list = || Values::IntList {
            items: Vec::new(),
            ends: Vec::with_capacity(reserve),
        };
        match &v.0 {
            Repr::Owned(Value::Null) => Values::Untyped,
            Repr::Owned(Value::Bool(_)) => Values::Boolean(Vec::with_capacity(reserve)),
            Repr::Owned(Value::Int(_)) => Values::Int(Vec::with_capacity(reserve)),
            Repr::Owned(Value::Float(_)) => Values::Float(Vec::with_capacity(reserve)),
            // A map travels as its JSON text (contract 0.3.0).
            Repr::Owned(Value::Text(_) | Value::Map(_)) | Repr::Text(_) => Values::Text(Texts {
                data: String::new(),
                ends: Vec::with_capacity(reserve),
            }),
            Repr::Owned(Value::TextList(_)) | Repr::TextList(_) => text_list(),
            Repr::Owned(Value::IntList(_)) | Repr::IntList(_) => int_list(),
        }
    }

    /// Appends `v`, which is not null; gives it back if its type differs from the column's.
    #[inline]
    fn push<'a>(&mut self, v: Prop<'a>) -> Result<(), Prop<'a>> {
        fn text_list(items: &mut Texts, ends: &mut Vec<u32>, l: &[String]) {
            for s in l {
                items.push(s);
            }
            ends.push(items.ends.len() as u32);
        }
        fn int_list(items: &mut Vec<i64>, ends: &mut Vec<u32>, l: &[i64]) {
            items.extend_from_slice(l);
            ends.push(items.len() as u32);
        }
        match (self, v.0) {
            (Values::Boolean(l), Repr::Owned(Value::Bool(b))) => l.push(b),
            (Values::Int(l), Repr::Owned(Value::Int(i))) => l.push(i),
            (Values::Float(l), Repr::Owned(Value::Float(f))) => l.push(f),
            (Values::Text(t), Repr::Text(s)) => t.push(s),
            (Values::Text(t), Repr::Owned(Value::Text(s))) => t.push(&s),
            (Values::Text(t), Repr::Owned(Value::Map(m))) => t.push(&crate::value::map_text(&m)),
            (Values::TextList { items, ends }, Repr::TextList(l)) => text_list(items, ends, l),
            (Values::TextList { items, ends }, Repr::Owned(Value::TextList(l))) => {
                text_list(items, ends, &l)
            }
            (Values::IntList { items, ends }, Repr::IntList(l)) => int_list(items, ends, l),
            (Values::IntList { items, ends }, Repr::Owned(Value::IntList(l))) => {
                int_list(items, ends, &l)
            }
            (Values::Mixed(l), v) => l.push(Prop(v).into_value().into()),
            (_, v) => return Err(Prop(v)),
        }
        Ok(())
    }

    /// Appends the entry of a row that lacks the property.
    #[inline]
    fn push_placeholder(&mut self) {
        match self {
            Values::Untyped => {}
            Values::Boolean(l) => l.push(false),
            Values::Int(l) => l.push(0),
            Values::Float(l) => l.push(0.0),
            Values::Text(t) => t.push(""),
            Values::TextList { items, ends } => ends.push(items.ends.len() as u32),
            Values::IntList { items, ends } => ends.push(items.len() as u32),
            Values::Mixed(l) => l.push(types::Value::Null),
        }
    }

    /// Keeps the first `rows` entries.
    fn truncate(&mut self, rows: usize) {
        /// Cuts `ends` to `rows` lists; where the kept items end, if anything was cut.
        fn lists(ends: &mut Vec<u32>, rows: usize) -> Option<usize> {
            (rows < ends.len()).then(|| {
                let end = rows.checked_sub(1).map_or(0, |i| ends[i] as usize);
                ends.truncate(rows);
                end
            })
        }
        match self {
            Values::Untyped => {}
            Values::Boolean(l) => l.truncate(rows),
            Values::Int(l) => l.truncate(rows),
            Values::Float(l) => l.truncate(rows),
            Values::Mixed(l) => l.truncate(rows),
            Values::Text(t) => t.truncate(rows),
            Values::TextList { items, ends } => {
                if let Some(end) = lists(ends, rows) {
                    items.truncate(end);
                }
            }
            Values::IntList { items, ends } => {
                if let Some(end) = lists(ends, rows) {
                    items.truncate(end);
                }
            }
        }
    }

    /// The values, one tagged value per row; `absent` rows become null.
    fn into_mixed(self, rows: usize, absent: &[u32]) -> Vec<types::Value> {
        let mut out: Vec<types::Value> = match self {
            Values::Untyped => vec![types::Value::Null; rows],
            Values::Boolean(l) => l.into_iter().map(types::Value::Boolean).collect(),
            Values::Int(l) => l.into_iter().map(types::Value::Int).collect(),
            Values::Float(l) => l.into_iter().map(types::Value::Float).collect(),
            Values::Text(t) => split(&t).map(|s| types::Value::Text(s.into())).collect(),
            Values::TextList { items, ends } => {
                let items: Vec<&str> = split(&items).collect();
                spans(&ends)
                    .map(|r| {
                        types::Value::TextList(items[r].iter().map(|s| s.to_string()).collect())
                    })
                    .collect()
            }
            Values::IntList { items, ends } => spans(&ends)
                .map(|r| types::Value::IntList(items[r].to_vec()))
                .collect(),
            Values::Mixed(l) => l,
        };
        for &row in absent {
            out[row as usize] = types::Value::Null;
        }
        out
    }
}

/// The strings of `t`.
fn split(t: &Texts) -> impl Iterator<Item = &str> {
    let mut start = 0;
    t.ends.iter().map(move |&end| {
        let s = &t.data[start..end as usize];
        start = end as usize;
        s
    })
}

/// The index ranges `ends` marks out.
fn spans(ends: &[u32]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    ends.iter().map(move |&end| {
        let r = start..end as usize;
        start = end as usize;
        r
    })
}

/// One property across the rows of a batch being filled.
struct Column {
    name: String,
    /// Rows that lack the property.
    absent: Vec<u32>,
    values: Values,
    /// Rows filled so far.
    rows: usize,
    /// Whether a row of this batch set the property (if only to null). Columns outlive
    /// their batch, to keep their memory; one that no row set is not sent.
    used: bool,
}

impl Column {
    /// Appends row `self.rows`'s value.
    #[inline]
    fn push(&mut self, v: Prop<'_>, reserve: usize) {
        let row = self.rows;
        self.rows += 1;
        if v.is_null() {
            self.absent.push(row as u32);
            self.values.push_placeholder();
            return;
        }
        if let Err(v) = self.values.push(v) {
            self.retype(v, row, reserve);
        }
    }

    /// The column's first value, or one whose type differs from the column's.
    #[cold]
    fn retype(&mut self, v: Prop<'_>, row: usize, reserve: usize) {
        let old = std::mem::replace(&mut self.values, Values::Untyped);
        let only_absent = self.absent.len() == row;
        self.values = match old {
            // A column kept from an earlier batch takes its type anew, like a new one.
            _ if only_absent => {
                let mut typed = Values::typed_like(&v, reserve);
                for _ in 0..row {
                    typed.push_placeholder();
                }
                typed
            }
            other => Values::Mixed(other.into_mixed(row, &self.absent)),
        };
        let pushed = self.values.push(v);
        debug_assert!(pushed.is_ok(), "a column takes a value of its own type");
    }

    /// Sets row `row`'s value: anything the column holds from that row on (a value set
    /// earlier in the row, or left by a row never emitted) is dropped first.
    #[inline]
    fn set(&mut self, row: usize, v: Prop<'_>, reserve: usize) {
        self.used = true;
        if self.rows > row {
            self.truncate(row);
        }
        self.pad(row, reserve);
        self.push(v, reserve);
    }

    /// Keeps the first `rows` rows.
    #[cold]
    fn truncate(&mut self, rows: usize) {
        if self.rows > rows {
            self.values.truncate(rows);
            let keep = self.absent.partition_point(|&r| (r as usize) < rows);
            self.absent.truncate(keep);
            self.rows = rows;
        }
    }

    /// Absent entries up to `rows`.
    #[inline]
    fn pad(&mut self, rows: usize, reserve: usize) {
        while self.rows < rows {
            self.push(Prop(Repr::Owned(Value::Null)), reserve);
        }
    }

    /// The column as the contract sends it, its memory lent to the batch; [`reuse`]
    /// takes it back.
    ///
    /// [`reuse`]: Column::reuse
    fn lend(&mut self, rows: usize) -> emit::Column {
        self.truncate(rows);
        self.pad(rows, 0);
        let values = match std::mem::replace(&mut self.values, Values::Untyped) {
            Values::Untyped => emit::Values::Mixed(vec![types::Value::Null; rows]),
            Values::Boolean(l) => emit::Values::Boolean(l),
            Values::Int(l) => emit::Values::Int(l),
            Values::Float(l) => emit::Values::Float(l),
            Values::Text(t) => emit::Values::Text(t.into_wit()),
            Values::TextList { items, ends } => emit::Values::TextList(emit::TextLists {
                items: items.into_wit(),
                ends,
            }),
            Values::IntList { items, ends } => {
                emit::Values::IntList(emit::IntLists { items, ends })
            }
            Values::Mixed(l) => emit::Values::Mixed(l),
        };
        emit::Column {
            name: std::mem::take(&mut self.name),
            absent: std::mem::take(&mut self.absent),
            values,
        }
    }

    /// Takes back what [`lend`](Column::lend) gave, emptied.
    fn reuse(&mut self, c: emit::Column) {
        fn clear<T>(mut l: Vec<T>) -> Vec<T> {
            l.clear();
            l
        }
        self.name = c.name;
        self.absent = clear(c.absent);
        self.values = match c.values {
            emit::Values::Boolean(l) => Values::Boolean(clear(l)),
            emit::Values::Int(l) => Values::Int(clear(l)),
            emit::Values::Float(l) => Values::Float(clear(l)),
            emit::Values::Text(t) => Values::Text(Texts::reuse(t)),
            emit::Values::TextList(l) => Values::TextList {
                items: Texts::reuse(l.items),
                ends: clear(l.ends),
            },
            emit::Values::IntList(l) => Values::IntList {
                items: clear(l.items),
                ends: clear(l.ends),
            },
            // Tagged values are the rare fallback: not worth keeping.
            emit::Values::Mixed(_) => Values::Untyped,
        };
        self.rows = 0;
        self.used = false;
    }

    /// Empties a column no row of the batch set.
    fn clear(&mut self) {
        self.truncate(0);
        self.used = false;
    }
}

/// The columns of one batch being filled, in the order first used.
#[derive(Default)]
pub(crate) struct Columns {
    columns: Vec<Column>,
}

impl Columns {
    /// The column of `name`, added if new. `hint` is where the row's next property is
    /// expected: rows usually set their properties in the same order.
    #[inline]
    pub(crate) fn index(&mut self, name: &str, hint: &mut usize) -> usize {
        let i = match self.columns.get(*hint) {
            Some(c) if same(&c.name, name) => *hint,
            _ => self.search(name),
        };
        *hint = i + 1;
        i
    }

    fn search(&mut self, name: &str) -> usize {
        match self.columns.iter().position(|c| same(&c.name, name)) {
            Some(i) => i,
            None => {
                self.columns.push(Column {
                    name: name.to_owned(),
                    absent: Vec::new(),
                    values: Values::Untyped,
                    rows: 0,
                    used: false,
                });
                self.columns.len() - 1
            }
        }
    }

    /// Sets column `i` of row `row`.
    #[inline]
    pub(crate) fn set(&mut self, i: usize, row: usize, v: Prop<'_>, reserve: usize) {
        self.columns[i].set(row, v, reserve);
    }

    /// Starts row `row`: drops what a row never emitted left there.
    #[inline]
    fn begin_row(&mut self, row: usize) {
        for c in &mut self.columns {
            if c.rows > row {
                c.truncate(row);
            }
        }
    }

    /// Completes row `row`: columns it did not set are absent there.
    #[inline]
    fn end_row(&mut self, row: usize, reserve: usize) {
        for c in &mut self.columns {
            if c.rows <= row {
                c.pad(row + 1, reserve);
            }
        }
    }

    /// The columns some row of the batch set, as the contract sends them; their memory
    /// comes back with [`reuse`](Columns::reuse).
    fn lend(&mut self, rows: usize) -> Vec<emit::Column> {
        self.columns
            .iter_mut()
            .filter(|c| c.used)
            .map(|c| c.lend(rows))
            .collect()
    }

    /// Takes back what [`lend`](Columns::lend) gave, every column empty for the next
    /// batch.
    fn reuse(&mut self, lent: Vec<emit::Column>) {
        let mut lent = lent.into_iter();
        for c in &mut self.columns {
            match c.used {
                true => c.reuse(lent.next().expect("one lent column per used column")),
                false => c.clear(),
            }
        }
    }
}

/// Property names are short, so an inlined byte loop beats a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

pub(crate) struct NodeBuffer {
    label: String,
    ids: Texts,
    /// The id of the node being built, copied here so that the builder borrows nothing
    /// and allocates nothing; it joins `ids` when the node is emitted.
    pending: String,
    pub(crate) columns: Columns,
}

/// The relationship type, then each end's label and the property it is matched on.
pub(crate) struct EdgeShape<'a> {
    pub(crate) rel_type: &'a str,
    pub(crate) from_label: &'a str,
    pub(crate) from_key: &'a str,
    pub(crate) to_label: &'a str,
    pub(crate) to_key: &'a str,
}

impl PartialEq for EdgeShape<'_> {
    /// Compared once per edge emitted, against each buffer until one matches: short names
    /// compared inline, type first (it differs most), as [`same`] does for property names.
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        same(self.rel_type, o.rel_type)
            && same(self.from_label, o.from_label)
            && same(self.to_label, o.to_label)
            && same(self.from_key, o.from_key)
            && same(self.to_key, o.to_key)
    }
}

pub(crate) struct EdgeBuffer {
    rel_type: String,
    from_label: String,
    from_key: String,
    to_label: String,
    to_key: String,
    from: Texts,
    to: Texts,
    /// The ends of the edge being built, as [`NodeBuffer::pending`].
    pending: (String, String),
    pub(crate) columns: Columns,
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

    pub(crate) fn reserve(&self) -> usize {
        self.batch_size.min(MAX_RESERVE)
    }

    /// The buffer for `label`, created on first use.
    pub(crate) fn node_buffer(&mut self, label: &str) -> usize {
        if self
            .nodes
            .get(self.last_node)
            .is_some_and(|b| same(&b.label, label))
        {
            return self.last_node;
        }
        let i = self
            .nodes
            .iter()
            .position(|b| same(&b.label, label))
            .unwrap_or_else(|| {
                self.nodes.push(NodeBuffer {
                    label: label.to_owned(),
                    ids: Texts::default(),
                    pending: String::new(),
                    columns: Columns::default(),
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
                    from: Texts::default(),
                    to: Texts::default(),
                    pending: Default::default(),
                    columns: Columns::default(),
                });
                self.edges.len() - 1
            });
        self.last_edge = i;
        i
    }

    pub(crate) fn edge(&mut self, buffer: usize) -> &mut EdgeBuffer {
        &mut self.edges[buffer]
    }

    /// Starts node `id` of `buffer`; the row its properties are set at.
    pub(crate) fn begin_node(&mut self, buffer: usize, id: &str) -> usize {
        let b = &mut self.nodes[buffer];
        b.pending.clear();
        b.pending.push_str(id);
        let row = b.ids.ends.len();
        b.columns.begin_row(row);
        row
    }

    /// Starts edge `from`-`to` of `buffer`; the row its properties are set at.
    pub(crate) fn begin_edge(&mut self, buffer: usize, (from, to): (&str, &str)) -> usize {
        let b = &mut self.edges[buffer];
        for (pending, end) in [(&mut b.pending.0, from), (&mut b.pending.1, to)] {
            pending.clear();
            pending.push_str(end);
        }
        let row = b.from.ends.len();
        b.columns.begin_row(row);
        row
    }

    /// Buffers the node begun last in `buffer`, whose properties were set in the
    /// columns at its row.
    pub(crate) fn push_node(&mut self, buffer: usize, host: &mut dyn Host) {
        let reserve = self.reserve();
        let b = &mut self.nodes[buffer];
        let row = b.ids.ends.len();
        if row == 0 {
            b.ids.ends.reserve(reserve);
        }
        b.columns.end_row(row, reserve);
        b.ids.push(&b.pending);
        if row + 1 >= self.batch_size {
            self.flush_nodes(buffer, host);
        }
    }

    /// Buffers the edge begun last in `buffer`, as [`push_node`](Self::push_node).
    pub(crate) fn push_edge(&mut self, buffer: usize, host: &mut dyn Host) {
        let reserve = self.reserve();
        let b = &mut self.edges[buffer];
        let row = b.from.ends.len();
        b.columns.end_row(row, reserve);
        b.from.push(&b.pending.0);
        b.to.push(&b.pending.1);
        if row + 1 >= self.batch_size {
            self.flush_edges(buffer, host);
        }
    }

    fn flush_nodes(&mut self, buffer: usize, host: &mut dyn Host) {
        let b = &mut self.nodes[buffer];
        let rows = b.ids.ends.len();
        if rows == 0 {
            return;
        }
        let batch = emit::NodeBatch {
            label: b.label.clone(),
            ids: std::mem::take(&mut b.ids).into_wit(),
            columns: b.columns.lend(rows),
        };
        host.emit_nodes(&batch);
        // The next batch fills the same memory: no buffer grows again from empty.
        b.ids = Texts::reuse(batch.ids);
        b.columns.reuse(batch.columns);
    }

    fn flush_edges(&mut self, buffer: usize, host: &mut dyn Host) {
        let b = &mut self.edges[buffer];
        let rows = b.from.ends.len();
        if rows == 0 {
            return;
        }
        let batch = emit::EdgeBatch {
            rel_type: b.rel_type.clone(),
            from_label: b.from_label.clone(),
            from_key: b.from_key.clone(),
            to_label: b.to_label.clone(),
            to_key: b.to_key.clone(),
            from: std::mem::take(&mut b.from).into_wit(),
            to: std::mem::take(&mut b.to).into_wit(),
            columns: b.columns.lend(rows),
        };
        host.emit_edges(&batch);
        b.from = Texts::reuse(batch.from);
        b.to = Texts::reuse(batch.to);
        b.columns.reuse(batch.columns);
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
        assert_eq!(c.columns.len(), 3);
    }

    fn column_of(values: Vec<Value>) -> emit::Column {
        let mut c = Column {
            name: "c".into(),
            absent: Vec::new(),
            values: Values::Untyped,
            rows: 0,
            used: true,
        };
        let n = values.len();
        for v in values {
            c.push(v.into(), 4);
        }
        c.lend(n + 1)
    }

    #[test]
    fn a_column_is_typed_by_its_first_value_with_placeholders_where_absent() {
        let c = column_of(vec![Value::Null, "x".into(), Value::Null, "yz".into()]);
        assert_eq!(c.absent, [0, 2, 4], "the padded last row is absent too");
        match c.values {
            emit::Values::Text(t) => {
                assert_eq!(t.data, "xyz");
                assert_eq!(t.ends, [0, 1, 1, 3, 3]);
            }
            other => panic!("not text: {other:?}"),
        }
        let c = column_of(vec![
            Value::IntList(vec![1, 2]),
            Value::Null,
            Value::IntList(vec![3]),
        ]);
        match c.values {
            emit::Values::IntList(l) => {
                assert_eq!(l.items, [1, 2, 3]);
                assert_eq!(l.ends, [2, 2, 3, 3]);
            }
            other => panic!("not int lists: {other:?}"),
        }
        let c = column_of(vec![Value::TextList(vec!["a".into(), "b".into()])]);
        match c.values {
            emit::Values::TextList(l) => {
                assert_eq!(
                    (l.items.data.as_str(), &l.items.ends[..]),
                    ("ab", &[1, 2][..])
                );
                assert_eq!(l.ends, [2, 2]);
            }
            other => panic!("not text lists: {other:?}"),
        }
    }

    #[test]
    fn a_map_travels_as_its_json_text() {
        let tags: std::collections::BTreeMap<String, String> =
            [("env".to_string(), "prod".to_string())].into();
        let c = column_of(vec![Value::from(tags), Value::Null]);
        match c.values {
            emit::Values::Text(t) => assert_eq!(
                (t.data.as_str(), &t.ends[..]),
                (r#"{"env":"prod"}"#, &[14, 14, 14][..])
            ),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn a_column_of_mixed_types_falls_back_to_tagged_values() {
        let c = column_of(vec![
            Value::Int(1),
            Value::Null,
            Value::TextList(vec!["t".into()]),
            Value::Float(0.5),
        ]);
        match c.values {
            emit::Values::Mixed(l) => assert_eq!(
                format!("{l:?}"),
                r#"[Value::Int(1), Value::Null, Value::TextList(["t"]), Value::Float(0.5), Value::Null]"#
            ),
            other => panic!("not mixed: {other:?}"),
        }
        let c = column_of(vec![Value::Null]);
        assert_eq!(
            format!("{:?}", c.values),
            "Values::Mixed([Value::Null, Value::Null])"
        );
    }
}
