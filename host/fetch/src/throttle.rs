//! Per-host concurrency and rate: a semaphore and a next-free-slot clock per `host:port`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

struct Gate {
    slots: Arc<Semaphore>,
    next_start: Mutex<Instant>,
}

pub(crate) struct Throttle {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    concurrency: usize,
    /// Time between two starts to one host, from the per-host rate.
    interval: Option<Duration>,
}

impl Throttle {
    pub fn new(concurrency: usize, rate: Option<f64>) -> Self {
        Throttle {
            gates: Mutex::new(HashMap::new()),
            concurrency,
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        }
    }

    /// Waits for a free slot to `host` and for its next start time; the permit is held
    /// until the response body has been read.
    pub async fn enter(&self, host: &str) -> OwnedSemaphorePermit {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            gates
                .entry(host.to_owned())
                .or_insert_with(|| {
                    Arc::new(Gate {
                        slots: Arc::new(Semaphore::new(self.concurrency)),
                        next_start: Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        let permit = gate
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if let Some(interval) = self.interval {
            // Reserve a start time, then sleep outside the lock: callers queue in the order
            // they reserved, each `interval` after the previous one.
            let start = {
                let mut next = gate.next_start.lock().unwrap_or_else(|e| e.into_inner());
                let start = (*next).max(Instant::now());
                *next = start + interval;
                start
            };
            tokio::time::sleep_until(start).await;
        }
        permit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_starts_by_the_rate() {
        let t = Throttle::new(8, Some(50.0));
        let begin = Instant::now();
        for _ in 0..5 {
            drop(t.enter("h:443").await);
        }
        // Five starts at 50/s: the fifth starts at least 80 ms after the first.
        let spent = begin.elapsed();
        assert!(spent >= Duration::from_millis(80), "{spent:?}");
        assert!(spent < Duration::from_secs(2), "{spent:?}");
        // Another host has its own clock.
        let other = Instant::now();
        drop(t.enter("other:443").await);
        assert!(other.elapsed() < Duration::from_millis(15));
    }

    #[tokio::test]
    async fn bounds_concurrency_per_host() {
        let t = Throttle::new(2, None);
        let a = t.enter("h:443").await;
        let _b = t.enter("h:443").await;
        let third = tokio::time::timeout(Duration::from_millis(50), t.enter("h:443")).await;
        assert!(third.is_err(), "a third permit must wait");
        let _elsewhere = t.enter("other:443").await;
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(5), t.enter("h:443")).await;
        assert!(third.is_ok());
    }
}
