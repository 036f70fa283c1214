use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How many denial reasons [`FetchStats::recent_denials`] keeps: enough to see what a
/// plugin keeps trying, without a runaway plugin growing the run report.
const RECENT_DENIALS: usize = 8;

/// What one plugin's fetches did, for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStats {
    /// Requests put on the wire: every attempt, retries and redirect hops included.
    pub requests: u64,
    /// Responses received (any status), one per attempt that got an answer.
    pub responses: u64,
    /// Request body bytes sent, over all attempts.
    pub bytes_sent: u64,
    /// Response body bytes received, over all attempts.
    pub bytes_received: u64,
    /// Attempts repeated after a 429, 502, 503, 504, connection error or timeout.
    pub retries: u64,
    /// Fetches that ended in a timeout, a network error or an oversized body.
    pub failures: u64,
    /// Requests (or redirect hops) refused.
    pub denials: u64,
    /// The last few denial messages (redacted), oldest first.
    pub recent_denials: Vec<String>,
    /// Attempts per `host:port`.
    pub per_host: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    responses: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    denials: AtomicU64,
    recent: Mutex<(VecDeque<String>, BTreeMap<String, u64>)>,
}

impl Counters {
    pub fn request(&self, host: &str, body: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(body as u64, Ordering::Relaxed);
        let mut guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        *guard.1.entry(host.to_owned()).or_default() += 1;
    }

    pub fn response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn denied(&self, count: u64, reason: &str) {
        self.denials.fetch_add(count, Ordering::Relaxed);
        let mut guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.len() == RECENT_DENIALS {
            guard.0.pop_front();
        }
        guard.0.push_back(reason.to_owned());
    }

    pub fn snapshot(&self) -> FetchStats {
        let guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        FetchStats {
            requests: self.requests.load(Ordering::Relaxed),
            responses: self.responses.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            recent_denials: guard.0.iter().cloned().collect(),
            per_host: guard.1.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_denials() {
        let c = Counters::default();
        for i in 0..RECENT_DENIALS + 3 {
            c.denied(1, &format!("d{i}"));
        }
        let s = c.snapshot();
        assert_eq!(s.denials, (RECENT_DENIALS + 3) as u64);
        assert_eq!(s.recent_denials.len(), RECENT_DENIALS);
        assert_eq!(s.recent_denials.first().map(String::as_str), Some("d3"));
    }

    #[test]
    fn serialises_for_the_run_report() {
        let c = Counters::default();
        c.request("api.example.com:443", 10);
        let v = serde_json::to_value(c.snapshot()).unwrap();
        assert_eq!(v["requests"], 1);
        assert_eq!(v["bytes_sent"], 10);
        assert_eq!(v["per_host"]["api.example.com:443"], 1);
    }
}
