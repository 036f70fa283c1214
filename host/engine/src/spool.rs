//! Edges wait here until every node of the run is written. Up to a bound they stay in
//! memory; past it they go to an anonymous temporary file (deleted by the OS even if the
//! process dies), so memory stays flat however many edges a plugin emits.
//!
//! The file is written on tokio's blocking pool, never on an async thread, and in the
//! background: while one spill is written, the next edges gather in memory, so the plugin
//! does not wait for the disk. Only one spill is in flight at a time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use infragraph_core::EdgeBatch;
use tokio::task::JoinHandle;

pub(crate) struct EdgeSpool {
    batch_size: usize,
    /// Rows held before a spill: half the memory bound, since a spill being written
    /// holds as many again.
    spill_at: usize,
    held: Vec<EdgeBatch>,
    held_rows: usize,
    /// Per shape, the held batch that still has room: a plugin's batches of several
    /// shapes arrive interleaved (its buffers fill in turn), and each shape's are gathered
    /// into full sink transactions all the same.
    open: HashMap<Shape, usize>,
    /// The spool file once there is one, in the hands of the blocking task that wrote the
    /// last spill to it; the task hands it back when done.
    file: Option<JoinHandle<std::io::Result<BufWriter<File>>>>,
}

/// What makes edges one batch: relationship type, each end's label and key, columns.
type Shape = (String, String, String, String, String, Vec<String>);

fn shape(b: &EdgeBatch) -> Shape {
    (
        b.rel_type.clone(),
        b.from_label.clone(),
        b.from_key.clone(),
        b.to_label.clone(),
        b.to_key.clone(),
        b.columns.clone(),
    )
}

impl EdgeSpool {
    /// A spool gathering edges into batches of `batch_size`, holding at most about
    /// `memory_rows` in memory.
    pub fn new(batch_size: usize, memory_rows: usize) -> Self {
        EdgeSpool {
            batch_size,
            spill_at: (memory_rows / 2).max(1),
            held: Vec::new(),
            held_rows: 0,
            open: HashMap::new(),
            file: None,
        }
    }

    /// Holds `batch`, merged into the open batch of its shape while that has room. Edges
    /// of one shape keep their order; across shapes order never mattered (edges are
    /// written after every node, and one relationship has one shape).
    pub async fn push(&mut self, batch: EdgeBatch) -> std::io::Result<()> {
        self.held_rows += batch.rows.len();
        let key = shape(&batch);
        match self.open.get(&key).map(|&i| &mut self.held[i]) {
            Some(open) if open.rows.len() + batch.rows.len() <= self.batch_size => {
                open.rows.extend(batch.rows);
            }
            _ => {
                self.open.insert(key, self.held.len());
                self.held.push(batch);
            }
        }
        if self.held_rows > self.spill_at {
            self.spill().await?;
        }
        Ok(())
    }

    /// Hands the held batches to a blocking task that appends them to the file, once the
    /// previous spill is done.
    async fn spill(&mut self) -> std::io::Result<()> {
        let file = self.idle().await?;
        let batches = std::mem::take(&mut self.held);
        self.open.clear();
        self.held_rows = 0;
        self.file = Some(tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => BufWriter::new(tempfile::tempfile()?),
            };
            for b in &batches {
                serde_json::to_writer(&mut file, b)?;
                file.write_all(b"\n")?;
            }
            Ok(file)
        }));
        Ok(())
    }

    /// The file, once no spill is being written to it.
    async fn idle(&mut self) -> std::io::Result<Option<BufWriter<File>>> {
        match self.file.take() {
            None => Ok(None),
            Some(task) => task.await.map_err(std::io::Error::other)?.map(Some),
        }
    }

    /// Every edge pushed, once the last spill is written. Reading them back blocks: do it
    /// off the async threads ([`Spooled::batches`]).
    pub async fn finish(mut self) -> std::io::Result<Spooled> {
        Ok(Spooled {
            file: self.idle().await?,
            held: self.held,
        })
    }
}

/// A finished spool: the file (if edges were spilled) and what stayed in memory.
pub(crate) struct Spooled {
    file: Option<BufWriter<File>>,
    held: Vec<EdgeBatch>,
}

impl Spooled {
    /// Every spooled batch, in the order pushed: first those on disk, then those held.
    /// Blocking file I/O.
    pub fn batches(self) -> std::io::Result<impl Iterator<Item = std::io::Result<EdgeBatch>>> {
        let on_disk = match self.file {
            Some(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                Some(BufReader::new(f).lines())
            }
            None => None,
        };
        let from_disk = on_disk.into_iter().flatten().map(|line| {
            let line = line?;
            serde_json::from_str::<EdgeBatch>(&line).map_err(std::io::Error::other)
        });
        Ok(from_disk.chain(self.held.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infragraph_core::{EdgeRow, Value};

    fn batch(rel: &str, n: usize) -> EdgeBatch {
        EdgeBatch {
            rel_type: rel.into(),
            from_label: "A".into(),
            from_key: "id".into(),
            to_label: "B".into(),
            to_key: "id".into(),
            columns: vec!["w".into()],
            rows: (0..n)
                .map(|i| EdgeRow {
                    from: format!("a{i}").into(),
                    to: format!("b{i}").into(),
                    values: vec![Value::Float(i as f64 + 0.5)],
                })
                .collect(),
        }
    }

    async fn drained(spool: EdgeSpool) -> Vec<EdgeBatch> {
        let spooled = spool.finish().await.unwrap();
        spooled.batches().unwrap().map(Result::unwrap).collect()
    }

    #[tokio::test]
    async fn keeps_order_and_content_across_memory_and_disk() {
        // Spills past 5 rows held: twice over these 16 rows, the second while the first
        // may still be being written.
        let mut spool = EdgeSpool::new(4, 10);
        let input = [
            batch("R", 3),
            batch("R", 3),
            batch("S", 2),
            batch("R", 1),
            batch("R", 4),
            batch("S", 3),
        ];
        for b in input.clone() {
            spool.push(b).await.unwrap();
        }
        assert!(spool.file.is_some(), "past 5 rows the spool went to disk");
        let out = drained(spool).await;
        let flat = |v: &[EdgeBatch]| -> Vec<(String, String, String)> {
            v.iter()
                .flat_map(|b| {
                    b.rows
                        .iter()
                        .map(|r| (b.rel_type.clone(), r.from.to_string(), r.to.to_string()))
                })
                .collect()
        };
        // Each shape's edges in the order pushed.
        let of = |v: &[EdgeBatch], rel: &str| -> Vec<_> {
            flat(v).into_iter().filter(|e| e.0 == rel).collect()
        };
        for rel in ["R", "S"] {
            assert_eq!(of(&out, rel), of(&input, rel), "{rel}");
        }
        assert_eq!(flat(&out).len(), flat(&input).len());
        assert!(out.iter().all(|b| b.rows.len() <= 4));
        assert_eq!(out[0].rows[0].values, vec![Value::Float(0.5)]);
    }

    #[tokio::test]
    async fn gathers_each_shape_though_shapes_interleave() {
        let mut spool = EdgeSpool::new(100, 1000);
        for _ in 0..10 {
            spool.push(batch("R", 10)).await.unwrap();
            spool.push(batch("S", 5)).await.unwrap();
        }
        let mut with_columns = batch("R", 10);
        with_columns.columns = vec!["other".into()];
        spool.push(with_columns).await.unwrap();
        let out = drained(spool).await;
        let sizes: Vec<_> = out
            .iter()
            .map(|b| (b.rel_type.as_str(), b.columns[0].as_str(), b.rows.len()))
            .collect();
        assert_eq!(sizes, [("R", "w", 100), ("S", "w", 50), ("R", "other", 10)]);
    }

    #[tokio::test]
    async fn merges_small_batches_of_one_shape() {
        let mut spool = EdgeSpool::new(100, 1000);
        for _ in 0..10 {
            spool.push(batch("R", 10)).await.unwrap();
        }
        let out = drained(spool).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rows.len(), 100);
    }
}
