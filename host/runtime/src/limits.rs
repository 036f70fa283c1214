//! What a plugin may consume, and what happens when it tries to take more. Every limit
//! is a field of [`Limits`]; crossing one raises [`LimitExceeded`], a trap that stops
//! the guest at once and that the runtime reports as `Failure::Limit`, naming the limit
//! and its value.

use std::time::Duration;

use infragraph_fetch::FetchLimits;

/// What one plugin may consume in one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory across all the component's memories, in bytes. 256 MiB holds a
    /// large page of JSON several times over; a plugin that needs more is buffering what
    /// it should stream.
    pub memory_bytes: usize,
    /// Wall-clock time of one sync, guest code and waiting on the host alike. An hour
    /// covers the largest tenants seen at a few hundred requests per second.
    pub sync_time: Duration,
    /// Time `manifest()` may take: it is pure, so a second is generous.
    pub manifest_time: Duration,
    /// Nodes plus edges emitted in one sync.
    pub records: u64,
    /// Bytes of one property value (a text, the sum of a text list's), id or edge end.
    /// 1 MiB is far above any real property (a policy document runs to kilobytes) and
    /// keeps one record from costing the host and the store hundreds of megabytes; a
    /// larger value is refused, naming the record, the property and this limit.
    pub property_value_bytes: usize,
    /// HTTP requests (before retries) in one sync.
    pub fetches: u64,
    /// Log lines kept per sync; past it lines are counted and dropped, so a chatty
    /// plugin cannot flood the operator's log.
    pub log_lines: u64,
    /// Bytes of stdout and stderr kept per sync, for the same reason.
    pub stdio_bytes: usize,
    /// Limits of the HTTP client: body size, per-request timeout, retries, concurrency.
    pub fetch: FetchLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            sync_time: Duration::from_secs(3600),
            manifest_time: Duration::from_secs(1),
            records: 50_000_000,
            property_value_bytes: 1 << 20,
            fetches: 1_000_000,
            log_lines: 10_000,
            stdio_bytes: 1 << 20,
            fetch: FetchLimits::default(),
        }
    }
}

/// The most bytes of a text from the guest (its summary, its error, a reason it gives)
/// kept in the report, the run history and the log; the rest is cut, marked with
/// [`infragraph_fetch::CUT_MARKER`]. 64 KiB holds any message meant for a person many times
/// over; a 100 MB error string went whole into every report and the store before.
pub const MAX_GUEST_TEXT: usize = 64 << 10;

/// A limit was crossed. Raised as a trap so the guest stops at once.
#[derive(Debug, Clone, thiserror::Error)]
#[error("limit {limit} ({value}) exceeded")]
pub(crate) struct LimitExceeded {
    pub limit: &'static str,
    pub value: String,
}

impl LimitExceeded {
    pub fn new(limit: &'static str, value: impl ToString) -> Self {
        LimitExceeded {
            limit,
            value: value.to_string(),
        }
    }
}

/// Caps the sum of all linear memories and tables of one plugin instance. A cap per
/// memory alone would not bound a component with several memories.
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        MemoryLimiter { limit, used: 0 }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        if self.used.saturating_add(growth) > self.limit {
            return Err(LimitExceeded::new("memory", format!("{} MiB", self.limit >> 20)).into());
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past what any compiled
        // plugin needs, and each costs host memory.
        const MAX_TABLE: usize = 1_000_000;
        if desired > MAX_TABLE {
            return Err(LimitExceeded::new("table elements", MAX_TABLE).into());
        }
        Ok(true)
    }
}
