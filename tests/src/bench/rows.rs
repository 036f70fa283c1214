//! The records the `emit-bench` guest emits (`tests/guests/emit-bench/src/lib.rs`), built
//! natively for the baselines: same label, ids, columns and values. The emit benchmark
//! compares a batch from each to keep the two in step.

use infragraph_core::{EdgeRow, NodeRow, Value};

/// The guest's node label.
pub(crate) const LABEL: &str = "BenchNode";
/// The guest's relationship type.
pub(crate) const LINKS: &str = "LINKS";
/// The guest's property names, in the order it sets them.
pub(crate) const COLUMNS: [&str; 10] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
/// The edge property.
pub(crate) const WEIGHT: &str = "weight";

pub(crate) fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| c.to_string()).collect()
}

/// Node `i`.
pub(crate) fn node(i: u64) -> NodeRow {
    let n = i as i64;
    NodeRow {
        id: format!("n{i}"),
        values: vec![
            Value::Text(format!("name-{i:011}")),
            Value::Int(n),
            Value::Text(format!("zone-{:011}", i % 97)),
            Value::Int(n * 7),
            Value::Float(i as f64 * 0.5),
            Value::Bool(i.is_multiple_of(2)),
            Value::Text(format!("type-{:011}", i % 13)),
            Value::Int(n % 1_000),
            Value::Text(format!("{i:016x}")),
            Value::Int(-n),
        ],
    }
}

/// Edge `k` among `count` nodes: two leave each node `i`, to `(7i + 1) % count` and to
/// `(13i + 5) % count`, moved on by one where both land on the same node.
pub(crate) fn edge(k: u64, count: u64) -> EdgeRow {
    let i = (k / 2) % count;
    let a = (i * 7 + 1) % count;
    let b = (i * 13 + 5) % count;
    let to = match k % 2 {
        0 => a,
        _ if b == a => (b + 1) % count,
        _ => b,
    };
    EdgeRow {
        from: format!("n{i}"),
        to: format!("n{to}"),
        values: vec![Value::Int(k as i64)],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn two_edges_per_node_never_repeat() {
        // Collisions of the two targets occur for some counts (6i + 4 = 0 mod count).
        for count in [10, 1_000, 10_000] {
            let mut seen = HashSet::new();
            for k in 0..2 * count {
                let e = edge(k, count);
                assert!(seen.insert((e.from, e.to)), "edge {k} of {count} repeats");
            }
        }
    }
}
