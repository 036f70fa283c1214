//! Where a plugin runs: a store with the sandboxed WASI context, the memory cap and a
//! deadline, and the clock that enforces deadlines.
//!
//! The sandbox denies by default: no preopened directories, no environment variables, no
//! arguments, stdin closed, no TCP, UDP or name lookups. Clocks and randomness are
//! granted (they leak nothing the guest could not guess). Stdout and stderr go to the
//! host log under the plugin's name. What a plugin may consume is in [`Limits`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::limits::{LimitExceeded, Limits, MemoryLimiter};
use crate::run_state::{PluginState, RunCtx, StderrTail};

/// The epoch ticks this often; it bounds how late a runaway guest is stopped and how
/// often a busy guest yields to other plugins on the same thread.
const EPOCH_TICK: Duration = Duration::from_millis(20);

/// A fresh store for `plugin`: the sandboxed WASI context, the memory cap and a deadline
/// `time` from now. `run` is `None` for `manifest()`, which may not call the host.
pub(crate) fn new_store(
    engine: &Engine,
    plugin: &str,
    limits: &Limits,
    time: Duration,
    run: Option<RunCtx>,
) -> Store<PluginState> {
    let plugin: Arc<str> = plugin.into();
    let stderr_tail = StderrTail::default();
    let state = PluginState {
        wasi: wasi_ctx(&plugin, limits.stdio_bytes, &stderr_tail),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(limits.memory_bytes),
        plugin,
        stderr_tail,
        run,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let deadline = Instant::now() + time;
    // Each tick the guest yields, so plugins sharing a thread take turns; past the
    // deadline it traps. Time spent awaiting the host is bounded by the caller's
    // timeout around the whole call.
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(LimitExceeded::new("sync time", format!("{time:?}")).into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store.set_epoch_deadline(1);
    store
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own, until
/// dropped: epoch interruption needs a clock, and this is it for every store.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        // Weak, so the thread does not keep a dropped engine alive.
        let (weak, stopped) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("infragraph-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Builds the WASI context: nothing granted but clocks, randomness and captured stdio.
fn wasi_ctx(plugin: &Arc<str>, stdio_budget: usize, stderr_tail: &StderrTail) -> WasiCtx {
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

/// How many stderr lines a crash report quotes.
const TAIL_LINES: usize = 8;

/// A guest's stdout or stderr, forwarded line by line to the host log.
struct LogPipe {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
    tail: Option<StderrTail>,
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
    tail: Option<StderrTail>,
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
