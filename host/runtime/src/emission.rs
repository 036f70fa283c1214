//! What a running plugin hands to the caller, and the channel it goes through.
//!
//! Records wait for room in the channel, so a slow consumer slows the plugin instead of
//! growing the host's memory; progress notes never wait, since a stale progress line is
//! worth less than a stalled sync.

use infragraph_core::{EdgeBatch, NodeBatch, NodeRef};
use tokio::sync::mpsc;

/// What a running plugin hands over, in order.
#[derive(Debug)]
pub enum Emission {
    /// The scope the sync covers; always first, before any record.
    Scope(NodeRef),
    /// Checked nodes.
    Nodes(NodeBatch),
    /// Checked edges.
    Edges(EdgeBatch),
    /// A label (under a parent) that could not be fully listed.
    Incomplete {
        /// The label.
        label: String,
        /// The parent node it is limited to, if any.
        parent: Option<NodeRef>,
        /// Why, for the report.
        reason: String,
    },
    /// Requests the plugin has asked for so far; sent after each fetch, dropped when
    /// the receiver lags.
    Fetched {
        /// The running total.
        requests: u64,
    },
    /// Where the sync stands; dropped when the receiver lags.
    Progress {
        /// The current step.
        phase: String,
        /// Units done.
        done: u64,
        /// Units in all, when known.
        total: Option<u64>,
    },
    /// Something the operator should read in the run's report. Only host-side sources
    /// send it (a plugin's own words go to its log, which it cannot make look like the
    /// host's): the people linking run names the matches it would not guess.
    Warning(String),
}

/// The receiver of emissions went away: the caller stopped the run (e.g. a sink failed).
/// Raised as a trap so the guest stops at once.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the host stopped accepting records")]
pub(crate) struct Stopped;

/// The sending half a run writes to.
pub(crate) struct Emitter {
    tx: mpsc::Sender<Emission>,
}

impl Emitter {
    pub fn new(tx: mpsc::Sender<Emission>) -> Self {
        Emitter { tx }
    }

    /// Sends an emission the caller must see, waiting while the channel is full.
    pub async fn send(&self, emission: Emission) -> Result<(), Stopped> {
        self.tx.send(emission).await.map_err(|_| Stopped)
    }

    /// Whether the receiver went away: nothing the run does can be written any more.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the receiver goes away, for a host call that waits on something
    /// else meanwhile (a fetch) to give up with the run.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let tx = self.tx.clone();
        async move { tx.closed().await }
    }

    /// Sends an advisory emission (progress, fetch counts) if there is room, and drops
    /// it otherwise. A closed channel is not reported here: the next [`Emitter::send`]
    /// stops the run.
    pub fn advise(&self, emission: Emission) {
        let _ = self.tx.try_send(emission);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn advice_is_dropped_when_the_channel_is_full_records_are_not() {
        let (tx, mut rx) = mpsc::channel(1);
        let emitter = Emitter::new(tx);
        emitter.advise(Emission::Fetched { requests: 1 });
        // Full now: this one is dropped rather than waited for.
        emitter.advise(Emission::Fetched { requests: 2 });
        let waiting = tokio::spawn(async move {
            emitter.send(Emission::Fetched { requests: 3 }).await?;
            Ok::<_, Stopped>(emitter)
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            match rx.recv().await {
                Some(Emission::Fetched { requests }) => seen.push(requests),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            seen,
            [1, 3],
            "the advice sent while full is gone, the record is not"
        );
        let emitter = waiting.await.unwrap().unwrap();
        drop(rx);
        assert!(
            emitter
                .send(Emission::Fetched { requests: 4 })
                .await
                .is_err(),
            "a closed channel stops the run"
        );
        emitter.advise(Emission::Fetched { requests: 5 });
    }
}
