//! The pause before retrying a transient failure, one rule for every retry loop (the
//! fetcher's HTTP requests, the Bolt sink's transactions).

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

/// Longest backoff between two attempts, whatever the first pause and the retry count:
/// beyond half a minute a retry is no longer riding out a blip.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The pause before retry number `retry` (0 for the first): `first * 2^retry`, capped at
/// [`BACKOFF_CAP`], with "equal jitter" (half fixed, half random) so callers that failed
/// together (throttled together, or deadlocked on each other) do not come back in step,
/// yet none retries at once.
pub fn backoff(first: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
    let full = first.saturating_mul(factor).min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(unit_random())
}

/// A number in [0, 1). `RandomState` is seeded from the OS and re-keyed on each call,
/// which is random enough for jitter without a dependency.
fn unit_random() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let bits = RandomState::new().hash_one(nanos);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_caps() {
        let first = Duration::from_millis(100);
        for retry in 0..4 {
            let full = first * 2u32.pow(retry);
            for _ in 0..20 {
                let d = backoff(first, retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
        for retry in [9, 40, u32::MAX] {
            let d = backoff(first, retry);
            assert!(
                d >= BACKOFF_CAP / 2 && d <= BACKOFF_CAP,
                "retry {retry}: {d:?}"
            );
        }
    }

    #[test]
    fn jitter_spreads_callers_that_failed_together() {
        let first = Duration::from_secs(1);
        let pauses: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(first, 3)).collect();
        assert!(pauses.len() > 1, "20 pauses all equal: {pauses:?}");
    }
}
