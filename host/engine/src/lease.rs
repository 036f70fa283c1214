//! Holding the lease of a run's plugin and scope: taken when the plugin declares its
//! scope (before the first write), renewed in the background, checked before cleanup and
//! released at the end, whatever happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use infragraph_core::{GraphSink, Holder, LEASE_TTL, SinkError, WriteScope};
use tokio::task::JoinHandle;

use crate::sync::{Progress, ProgressFn};

/// How often a run waiting for a lease asks again.
const WAIT_STEP: Duration = Duration::from_secs(1);

/// The plugin and scope of every lease this process holds, with the connection that
/// holds it: two connections of one command naming the same account are told so, rather
/// than that "a process" holds the scope.
static HELD: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());

/// A lease this run holds.
pub(crate) struct Lease {
    w: WriteScope,
    holder: Holder,
    /// Renews every third of the lease's life.
    heartbeat: JoinHandle<()>,
    /// Why a renewal failed, if one did: the run may no longer act as the holder.
    lost: Arc<Mutex<Option<SinkError>>>,
    /// This process's note that it holds the scope, dropped with the lease.
    _reserved: Reserved,
}

impl Lease {
    /// Takes the lease of `w`'s plugin and scope. When another run holds it: fails at
    /// once naming the holder, or with `wait`, asks again every second until it is free.
    pub(crate) async fn take<S: GraphSink + 'static>(
        sink: &Arc<S>,
        w: &WriteScope,
        holder: &Holder,
        connection: &str,
        wait: bool,
        progress: &ProgressFn,
    ) -> Result<Lease, SinkError> {
        // Checked and reserved under one lock, before asking the sink: two connections
        // starting at once must not both pass the check and race for the sink's lease.
        {
            let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, other)) = held
                .iter()
                .find(|(p, s, c)| *p == w.plugin && *s == w.scope && c != connection)
            {
                return Err(SinkError::new(format!(
                    "scope {:?} of plugin {:?} is being synced by connection {other} of this \
                     command: both name the same account; give each connection its own (its \
                     config decides the scope, e.g. an organization or tenant id)",
                    w.scope, w.plugin
                )));
            }
            held.push((w.plugin.clone(), w.scope.clone(), connection.to_string()));
        }
        // Let go of the reservation however this ends: failure, or the run dropped.
        let reserved = Reserved(w.plugin.clone(), w.scope.clone(), connection.to_string());
        let mut told = false;
        loop {
            match sink.lease(w, holder, LEASE_TTL).await {
                Ok(()) => break,
                Err(e) if e.held && wait => {
                    if !told {
                        tracing::info!("{e}; waiting");
                        progress(&w.plugin, Progress::Phase("waiting for another run"));
                        told = true;
                    }
                    tokio::time::sleep(WAIT_STEP).await;
                }
                Err(e) => return Err(e),
            }
        }
        let lost = Arc::new(Mutex::new(None));
        let heartbeat = tokio::spawn({
            let (sink, w, holder, lost) = (sink.clone(), w.clone(), holder.clone(), lost.clone());
            async move {
                loop {
                    tokio::time::sleep(LEASE_TTL / 3).await;
                    if let Err(e) = sink.lease(&w, &holder, LEASE_TTL).await {
                        // A transient failure is tried again at the next beat; the lease
                        // still has two thirds of its life.
                        if e.transient {
                            tracing::warn!("renewing the lease: {e}");
                            continue;
                        }
                        *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                }
            }
        });
        Ok(Lease {
            _reserved: reserved,
            w: w.clone(),
            holder: holder.clone(),
            heartbeat,
            lost,
        })
    }

    /// Whether the lease still holds, renewing it now: before deleting anything, the run
    /// makes sure no other run took over meanwhile.
    pub(crate) async fn confirm<S: GraphSink>(&self, sink: &S) -> Result<(), SinkError> {
        if let Some(e) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        sink.lease(&self.w, &self.holder, LEASE_TTL).await
    }

    /// Stops renewing and lets go of the lease.
    pub(crate) async fn release<S: GraphSink>(mut self, sink: &S) -> Result<(), SinkError> {
        self.heartbeat.abort();
        // Until the beat's task is gone, it holds the sink: a command ends by dropping the
        // sink, and the store closes (folding its write-ahead log into the file) only
        // when no task holds it any more. The CLI leaves the runtime's leftover tasks to
        // the process's exit, so none may still hold it.
        let _ = (&mut self.heartbeat).await;
        sink.release(&self.w, &self.holder).await
    }
}

impl Drop for Lease {
    /// A lease dropped unreleased (its run failed or was dropped) stops renewing too.
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// This process's hold on a plugin and scope, by a connection: its entry in [`HELD`].
struct Reserved(String, String, String);

impl Drop for Reserved {
    /// Released or not (a run dropped on a panic), this process no longer holds it.
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = held
            .iter()
            .position(|(p, s, c)| (p, s, c) == (&self.0, &self.1, &self.2))
        {
            held.swap_remove(i);
        }
    }
}
