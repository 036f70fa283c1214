//! Gathering the small batches a guest sends into the sink's batch size: one sink
//! transaction per `batch_size` records, whatever size the plugin flushes at.

use std::collections::HashMap;

use infragraph_core::NodeBatch;

/// Node batches waiting to be written, one per label.
pub(crate) struct NodeBatcher {
    batch_size: usize,
    pending: HashMap<String, NodeBatch>,
}

impl NodeBatcher {
    pub fn new(batch_size: usize) -> Self {
        NodeBatcher {
            batch_size,
            pending: HashMap::new(),
        }
    }

    /// Adds `batch`; returns the batches now ready to write.
    pub fn push(&mut self, batch: NodeBatch) -> Vec<NodeBatch> {
        let mut ready = Vec::new();
        let label = batch.label.clone();
        match self.pending.remove(&label) {
            Some(mut held) if held.columns == batch.columns => {
                held.rows.extend(batch.rows);
                self.pending.insert(label.clone(), held);
            }
            Some(held) => {
                ready.push(held);
                self.pending.insert(label.clone(), batch);
            }
            None => {
                self.pending.insert(label.clone(), batch);
            }
        }
        if self
            .pending
            .get(&label)
            .is_some_and(|b| b.rows.len() >= self.batch_size)
        {
            let mut full = self.pending.remove(&label).expect("just checked");
            while full.rows.len() > self.batch_size {
                let rest = full.rows.split_off(self.batch_size);
                let head = std::mem::replace(&mut full.rows, rest);
                ready.push(NodeBatch {
                    label: full.label.clone(),
                    columns: full.columns.clone(),
                    rows: head,
                });
            }
            if full.rows.len() == self.batch_size {
                ready.push(full);
            } else if !full.rows.is_empty() {
                self.pending.insert(label, full);
            }
        }
        // Every label's rows together stay under one batch: a plugin of many labels, each
        // short of a batch, would otherwise hold all its nodes until it ends (the bound
        // on a run's memory counts one batch), and write none of them meanwhile.
        if self.pending.values().map(|b| b.rows.len()).sum::<usize>() >= self.batch_size {
            ready.extend(self.drain());
        }
        ready
    }

    /// Everything still held, which leaves the batcher empty.
    pub fn drain(&mut self) -> Vec<NodeBatch> {
        let mut v: Vec<_> = std::mem::take(&mut self.pending).into_values().collect();
        v.sort_by(|a, b| a.label.cmp(&b.label));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infragraph_core::NodeRow;

    fn nodes(label: &str, cols: &[&str], ids: std::ops::Range<usize>) -> NodeBatch {
        NodeBatch {
            label: label.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            rows: ids
                .map(|i| NodeRow {
                    id: i.to_string().into(),
                    values: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn gathers_to_the_batch_size_and_keeps_every_row() {
        let mut b = NodeBatcher::new(10);
        let mut out = Vec::new();
        for i in 0..7 {
            out.extend(b.push(nodes("A", &[], i * 3..i * 3 + 3)));
        }
        assert!(out.iter().all(|x| x.rows.len() == 10));
        out.extend(b.drain());
        let ids: Vec<usize> = out
            .iter()
            .flat_map(|x| x.rows.iter().map(|r| r.id.parse().unwrap()))
            .collect();
        assert_eq!(ids, (0..21).collect::<Vec<_>>());
    }

    #[test]
    fn labels_together_hold_at_most_one_batch() {
        let mut b = NodeBatcher::new(10);
        let mut out = Vec::new();
        for (n, label) in ["A", "B", "C", "D"]
            .into_iter()
            .cycle()
            .take(12)
            .enumerate()
        {
            out.extend(b.push(nodes(label, &[], n * 2..n * 2 + 2)));
            let held: usize = b.pending.values().map(|x| x.rows.len()).sum();
            assert!(held < 10, "{held} rows held after push {n}");
        }
        // The fifth and the tenth pushes brought 10 rows each, flushed label by label.
        assert_eq!(out.len(), 8);
        out.extend(b.drain());
        let ids = |label: &str| -> Vec<usize> {
            out.iter()
                .filter(|x| x.label == label)
                .flat_map(|x| x.rows.iter().map(|r| r.id.parse().unwrap()))
                .collect()
        };
        assert_eq!(ids("A"), [0, 1, 8, 9, 16, 17]);
        assert_eq!(ids("D"), [6, 7, 14, 15, 22, 23]);
        assert_eq!(out.iter().map(|x| x.rows.len()).sum::<usize>(), 24);
    }

    #[test]
    fn a_change_of_columns_flushes_the_held_batch() {
        let mut b = NodeBatcher::new(100);
        assert!(b.push(nodes("A", &["x"], 0..2)).is_empty());
        let out = b.push(nodes("A", &["y"], 2..3));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].columns, vec!["x"]);
        assert_eq!(b.drain()[0].columns, vec!["y"]);
    }
}
