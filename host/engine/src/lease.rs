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
        {
            let held = HELD.lock().unwrap_or_else(|p| p.into_inner());
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
        }
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
        HELD.lock().unwrap_or_else(|p| p.into_inner()).push((
            w.plugin.clone(),
            w.scope.clone(),
            connection.to_string(),
        ));
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
    pub(crate) async fn release<S: GraphSink>(self, sink: &S) -> Result<(), SinkError> {
        self.heartbeat.abort();
        sink.release(&self.w, &self.holder).await
    }
}

impl Drop for Lease {
    /// Released or not (a run dropped on a panic), this process no longer holds it.
    fn drop(&mut self) {
        HELD.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, s, _)| !(*p == self.w.plugin && *s == self.w.scope));
    }
}
