//! Everything a plugin is allowed, in one place. The sandbox denies by default: no
//! preopened directories, no environment variables, no arguments, stdin closed, no TCP,
//! UDP or name lookups. Clocks and randomness are granted (they leak nothing the guest
//! could not guess). Stdout and stderr go to the host log under the plugin's name.
//!
//! Every limit is a field of [`Limits`]; breaking one raises [`LimitExceeded`], which the
//! runtime reports as `Failure::Limit` naming the limit and its value.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use infragraph_fetch::FetchLimits;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

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
            fetches: 1_000_000,
            log_lines: 10_000,
            stdio_bytes: 1 << 20,
            fetch: FetchLimits::default(),
        }
    }
}

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

/// The epoch ticks this often; it bounds how late a runaway guest is stopped and how
/// often a busy guest yields to other plugins on the same thread.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(20);

/// Builds the WASI context: nothing granted but clocks, randomness and captured stdio.
pub(crate) fn wasi_ctx(plugin: &Arc<str>, stdio_budget: usize, stderr_tail: &Tail) -> WasiCtx {
    let budget = Arc::new(AtomicUsize::new(stdio_budget));
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogPipe {
        plugin: plugin.clone(),
        stream: "stdout",
        budget: budget.clone(),
        tail: None,
    })
    .stderr(LogPipe {
        plugin: plugin.clone(),
        stream: "stderr",
        budget,
        tail: Some(stderr_tail.clone()),
    })
    .allow_tcp(false)
    .allow_udp(false)
    .allow_ip_name_lookup(false)
    .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
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

/// The last lines a guest wrote to stderr.
pub(crate) type Tail = Arc<Mutex<VecDeque<String>>>;

/// How many stderr lines a crash report quotes.
const TAIL_LINES: usize = 8;

/// A guest's stdout or stderr, forwarded line by line to the host log.
struct LogPipe {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
    tail: Option<Tail>,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            plugin: self.plugin.clone(),
            stream: self.stream,
            budget: self.budget.clone(),
            tail: self.tail.clone(),
            line: Vec::new(),
        })
    }
}

struct LineWriter {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
    tail: Option<Tail>,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end();
        tracing::info!(plugin = %self.plugin, stream = self.stream, "{text}");
        if let Some(tail) = &self.tail
            && let Ok(mut tail) = tail.lock()
        {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_string());
        }
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Past the budget output is swallowed, not refused: a refused write would make
        // the guest's `println!` panic, failing a sync over a log line.
        let left = self.budget.load(Ordering::Relaxed);
        let keep = buf.len().min(left);
        if keep > 0 {
            self.budget.fetch_sub(keep, Ordering::Relaxed);
            for &b in &buf[..keep] {
                if b == b'\n' {
                    self.emit();
                } else if self.line.len() < 4096 {
                    self.line.push(b);
                }
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
