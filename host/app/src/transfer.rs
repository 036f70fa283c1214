//! Copying a whole graph from where it is to somewhere else, bookkeeping included:
//! `infragraph push` (a store published to a server), and as well a server pulled into a
//! store or one store copied into another.
//!
//! The source is read as its jsonl export, one line at a time, into a bounded channel
//! that the target loads from as the lines come, so memory stays flat whatever the
//! graph's size. The embedded store's side is plain blocking SQLite code and runs on a
//! blocking thread; the server's side is async. If the source fails partway, the target
//! is told so (not handed a short graph as if it were whole): a store target then writes
//! nothing, a server keeps what it already merged (every write is an idempotent MERGE, so
//! pushing again completes it).

use std::io::{BufReader, Read, Write};
use std::ops::ControlFlow;

use infragraph_sink_neo4j::Neo4jSink;
use infragraph_sink_sqlite::Store;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::graph::Location;

/// Lines in flight between source and target.
const IN_FLIGHT: usize = 1024;

/// A line of the export, or why the source stopped.
type Line = Result<String, String>;

/// What a transfer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Nodes written.
    pub nodes: u64,
    /// Relationships written.
    pub relationships: u64,
    /// Relationships not written because an end was missing from the target.
    pub unresolved: u64,
}

/// Copies the graph at `from` into `to`, `batch` records per write transaction where the
/// target is a server (a store target is written in one transaction: all or nothing).
pub async fn transfer(from: &Location, to: &Location, batch: usize) -> Result<Transferred, Error> {
    if same_place(from, to) {
        return Err(Error::Usage(format!(
            "cannot copy {from} into itself: name another target"
        )));
    }
    // Both ends are reached before anything is read, so a wrong address or a missing
    // file fails with nothing done.
    let target = Target::open(to).await?;
    let source = Source::open(from).await?;
    let (tx, rx) = mpsc::channel::<Line>(IN_FLIGHT);
    let read = source.run(tx);
    let write = target.run(rx, batch);
    let (read, written) = tokio::join!(read, write);
    match (read, written) {
        (Ok(()), Ok(t)) => Ok(t),
        // The source's own failure is what happened; the target only saw it end.
        (Err(SourceEnd::Failed(e)), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Err(SourceEnd::TargetGone), Ok(_)) => Err(Error::Usage(format!(
            "the copy into {to} stopped reading before the end of {from}"
        ))),
    }
}

fn same_place(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Store(x), Location::Store(y)) => {
            x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(x), Ok(y)) if x == y)
        }
        (Location::Neo4j(x), Location::Neo4j(y)) => x.uri == y.uri && x.database == y.database,
        _ => false,
    }
}

/// How the source ended when it did not reach the end.
enum SourceEnd {
    /// It failed: this is what to report.
    Failed(Error),
    /// The target stopped taking lines (its error says why).
    TargetGone,
}

enum Source {
    Store(std::path::PathBuf),
    Neo4j(Neo4jSink),
}

impl Source {
    async fn open(at: &Location) -> Result<Source, Error> {
        Ok(match at {
            Location::Store(path) => {
                // Checked now; opened again on the reading thread, which must own it.
                Store::open_existing(path)?;
                Source::Store(path.clone())
            }
            Location::Neo4j(config) => Source::Neo4j(Neo4jSink::connect(config).await?),
        })
    }

    /// Sends every line of the export, then closes the channel (by dropping `tx`). On
    /// failure the target gets an `Err` line, so it does not take a short graph for the
    /// whole.
    async fn run(self, tx: mpsc::Sender<Line>) -> Result<(), SourceEnd> {
        let result = match self {
            Source::Store(path) => {
                let sending = tx.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let store = Store::open_existing(&path)?;
                    let mut lines = LineSender {
                        tx: sending,
                        partial: Vec::new(),
                        gone: false,
                    };
                    let exported = store.export_jsonl(&mut lines);
                    if lines.gone {
                        return Ok(Err(SourceEnd::TargetGone));
                    }
                    exported.map(|_| Ok(()))
                })
                .await;
                match read {
                    Ok(Ok(end)) => end,
                    Ok(Err(e)) => Err(SourceEnd::Failed(e.into())),
                    Err(e) => Err(SourceEnd::Failed(Error::Usage(format!(
                        "reading the store failed: {e}"
                    )))),
                }
            }
            Source::Neo4j(sink) => {
                let exported = sink
                    .export_lines(|line| {
                        let tx = tx.clone();
                        async move {
                            match tx.send(Ok(line)).await {
                                Ok(()) => ControlFlow::Continue(()),
                                Err(_) => ControlFlow::Break(()),
                            }
                        }
                    })
                    .await;
                match exported {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(SourceEnd::TargetGone),
                    Err(e) => Err(SourceEnd::Failed(e.into())),
                }
            }
        };
        if let Err(SourceEnd::Failed(e)) = &result {
            let _ = tx.send(Err(e.to_string())).await;
        }
        result
    }
}

enum Target {
    Store(std::path::PathBuf),
    Neo4j(Neo4jSink),
}

impl Target {
    async fn open(at: &Location) -> Result<Target, Error> {
        Ok(match at {
            Location::Store(path) => {
                Store::open(path)?;
                Target::Store(path.clone())
            }
            Location::Neo4j(config) => Target::Neo4j(Neo4jSink::connect(config).await?),
        })
    }

    async fn run(self, mut rx: mpsc::Receiver<Line>, batch: usize) -> Result<Transferred, Error> {
        match self {
            Target::Neo4j(sink) => {
                let p = sink.load_lines(&mut rx, batch).await?;
                Ok(Transferred {
                    nodes: p.nodes,
                    relationships: p.relationships,
                    unresolved: p.unresolved,
                })
            }
            Target::Store(path) => {
                // The import is blocking SQLite code: it runs on a blocking thread, which
                // owns the receiver (and drops it when done, which ends the source).
                let import = tokio::task::spawn_blocking(move || {
                    let store = Store::open(&path)?;
                    let mut input = BufReader::new(LineReader {
                        rx,
                        pending: Vec::new(),
                        at: 0,
                    });
                    store.import_jsonl(&mut input)
                });
                let stats = import
                    .await
                    .map_err(|e| Error::Usage(format!("writing the store failed: {e}")))??;
                Ok(Transferred {
                    nodes: stats.nodes,
                    relationships: stats.relationships,
                    unresolved: 0,
                })
            }
        }
    }
}

/// A `Write` that sends each complete line to the channel; run on a blocking thread.
struct LineSender {
    tx: mpsc::Sender<Line>,
    partial: Vec<u8>,
    /// The receiver is gone: the target stopped.
    gone: bool,
}

impl Write for LineSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if self.tx.blocking_send(Ok(text)).is_err() {
                self.gone = true;
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Read` over lines from a channel, newline-terminated; an `Err` line is an I/O error
/// (the source failed), so an import reading it writes nothing. Run on a blocking thread.
struct LineReader {
    rx: mpsc::Receiver<Line>,
    pending: Vec<u8>,
    at: usize,
}

impl Read for LineReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            match self.rx.blocking_recv() {
                Some(Ok(line)) => {
                    self.pending = line.into_bytes();
                    self.pending.push(b'\n');
                    self.at = 0;
                }
                Some(Err(why)) => return Err(std::io::Error::other(why)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
