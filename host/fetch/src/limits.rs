use std::time::Duration;

/// Bounds on what one plugin's fetches may cost. `Default` gives the values documented on
/// each field.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchLimits {
    /// Time for one attempt, from connecting to the last body byte. 60 s: a slow list page
    /// of a large tenant can take tens of seconds, and a hung server must not stall a sync
    /// for longer than a minute per try.
    pub request_timeout: Duration,
    /// Largest response body kept, in bytes. 64 MiB: far above any API page, small
    /// enough that a handful of concurrent fetches cannot exhaust the host's memory.
    pub max_body_bytes: u64,
    /// Retries after the first attempt for 429, 502, 503, 504, connection errors and
    /// timeouts. 4: with the backoff below that rides out about half a minute of
    /// throttling or a rolling restart without hiding a server that is really down.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured. 60 s: providers ask for seconds to a minute; a
    /// longer wait is better reported than slept through.
    pub retry_after_cap: Duration,
    /// First backoff delay, doubled on each retry (jittered, capped at 30 s). 250 ms:
    /// long enough for a throttle window to move, short enough not to show in a sync.
    pub backoff_base: Duration,
    /// Requests in flight at once to one `host:port`. 16: real APIs answer in 100-500 ms,
    /// so this is what turns a walk of many zones and pages from minutes into seconds,
    /// while staying well under the per-client connection limits cloud APIs enforce (and
    /// a 429 is retried with backoff anyway).
    pub per_host_concurrency: usize,
    /// Requests started per second to one `host:port`, or `None` for no limit (the
    /// default: providers answer 429 when they want less, and that is retried).
    pub per_host_rate: Option<f64>,
    /// Redirects followed for one request. 10: what browsers and reqwest allow; more
    /// is a loop, and the fetch fails with a network error.
    pub max_redirects: u32,
    /// Most requests in one `fetch_many`. 1024: a plugin walking every zone and page
    /// stays far below it, and a runaway list cannot queue unbounded work.
    pub max_batch: usize,
    /// Bytes of response bodies one call (`fetch` or `fetch_many`) holds at once; a
    /// response that does not fit is refused (`Denied`, naming this limit) and the
    /// call's others go on. 256 MiB: the guest's default memory, into which the call's
    /// responses are copied together anyway, where 1,024 responses of 64 MiB would be
    /// 64 GiB of host memory.
    pub max_held_bytes: u64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            max_retries: 4,
            retry_after_cap: Duration::from_secs(60),
            backoff_base: Duration::from_millis(250),
            per_host_concurrency: 16,
            per_host_rate: None,
            max_redirects: 10,
            max_batch: 1024,
            max_held_bytes: 256 << 20,
        }
    }
}
