//! When to try again: which statuses, and `Retry-After`. The backoff between attempts is
//! [`infragraph_core::backoff`], shared with the Bolt sink.

use std::time::{Duration, SystemTime};

/// Statuses that mean "try again later": throttled, or a gateway that lost its backend.
pub(crate) const RETRY_STATUSES: [u16; 4] = [429, 502, 503, 504];

/// The wait a `Retry-After` value asks for: delta-seconds, or an HTTP-date (a date in the
/// past means now). `None` if it is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // The three HTTP-date forms RFC 9110 says a recipient must accept.
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOV_6_1994);
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        // The obsolete forms a recipient must still accept.
        for date in ["Sunday, 06-Nov-94 08:49:47 GMT", "Sun Nov  6 08:49:47 1994"] {
            assert_eq!(
                retry_after(date, now),
                Some(Duration::from_secs(10)),
                "{date}"
            );
        }
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "-1",
            "later",
            "",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
