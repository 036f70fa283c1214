//! The records the `emit-bench` guest emits, built natively for the baselines from the
//! same code (`infragraph-bench-records`): same label, ids, columns and values.

pub(crate) use infragraph_bench_records::Scratch;
use infragraph_bench_records::{self as records, Prop};
use infragraph_core::{EdgeRow, NodeRow, Value};

pub(crate) use records::{COLUMNS, LABEL, LINKS, WEIGHT};

pub(crate) fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| c.to_string()).collect()
}

/// Node `i`, its strings written into `scratch` and copied out.
pub(crate) fn node(scratch: &mut Scratch, i: u64) -> NodeRow {
    let mut values = Vec::with_capacity(COLUMNS.len());
    scratch.props(i, |_, p| {
        values.push(match p {
            Prop::Text(s) => Value::Text(s.into()),
            Prop::Int(n) => Value::Int(n),
            Prop::Float(f) => Value::Float(f),
            Prop::Bool(b) => Value::Bool(b),
        })
    });
    NodeRow {
        id: scratch.id(i).to_owned().into(),
        values,
    }
}

/// Edge `k` among `count` nodes.
pub(crate) fn edge(k: u64, count: u64) -> EdgeRow {
    let (from, to) = records::link(k, count);
    EdgeRow {
        from: records::id(from).into(),
        to: records::id(to).into(),
        values: vec![Value::Int(k as i64)],
    }
}
