//! Where a plugin runs: a store with the sandboxed WASI context, the memory cap and a
//! deadline, and the clock that enforces deadlines.
//!
//! The sandbox denies by default: no preopened directories, no environment variables, no
//! arguments, stdin closed, no TCP, UDP or name lookups. Clocks and randomness are
//! granted (they leak nothing the guest could not guess). Stdout and stderr go to the
//! host log under the plugin's name, line by line, scrubbed of the run's secrets like
//! every other text from the guest. What a plugin may consume is in [`Limits`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use infragraph_fetch::Secrets;
use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::limits::{LimitExceeded, Limits, MemoryLimiter};
use crate::run_state::{PluginState, RunCtx, StderrTail};

/// Log filter directives that every log subscriber of a process running plugins must add
/// after the user's own. wasmtime's WASI stream worker logs each chunk a guest writes to
/// stdout or stderr, raw, at debug level (`worker writing: b"…"`), before the sandbox's
/// pipe scrubs it: with debug logging on, a plugin that printed a secret would have it
/// in the log. The sandbox logs every line itself, scrubbed.
pub const LOG_DIRECTIVES: &[&str] = &["wasmtime_wasi::p2::write_stream=info"];

/// The epoch ticks this often; it bounds how late a runaway guest is stopped and how
/// often a busy guest yields to other plugins on the same thread.
const EPOCH_TICK: Duration = Duration::from_millis(20);

/// When a plugin's call must end: `time` after it starts, not counting the time the
/// plugin spent waiting for the engine rather than working (for the lease of its scope,
/// which another run may hold for as long as that run takes). Shared by the guest's epoch
/// check and the caller's timer around the whole call.
#[derive(Clone)]
pub(crate) struct Deadline(Arc<watch::Sender<Clock>>);

#[derive(Clone, Copy)]
struct Clock {
    at: Instant,
    /// Since when the clock stands still, if it does.
    paused: Option<Instant>,
}

impl Deadline {
    pub fn after(time: Duration) -> Deadline {
        let clock = Clock {
            at: Instant::now() + time,
            paused: None,
        };
        Deadline(Arc::new(watch::Sender::new(clock)))
    }

    fn passed(&self) -> bool {
        let clock = *self.0.borrow();
        clock.paused.is_none() && Instant::now() >= clock.at
    }

    /// Stops the clock, until [`Deadline::resume`].
    pub fn pause(&self) {
        self.0
            .send_modify(|c| c.paused = c.paused.or(Some(Instant::now())));
    }

    /// Starts the clock again, the deadline later by the time it stood still.
    pub fn resume(&self) {
        self.0.send_modify(|c| {
            if let Some(since) = c.paused.take() {
                c.at += since.elapsed();
            }
        });
    }

    /// Resolves once the deadline has passed, however often the clock stood still.
    pub async fn expired(&self) {
        let mut changes = self.0.subscribe();
        loop {
            let clock = *changes.borrow_and_update();
            match clock.paused {
                None if Instant::now() >= clock.at => return,
                None => tokio::select! {
                    () = tokio::time::sleep_until(clock.at.into()) => {}
                    _ = changes.changed() => {}
                },
                // The sender lives as long as `self`: this only waits for a change.
                Some(_) => {
                    let _ = changes.changed().await;
                }
            }
        }
    }
}

/// A fresh store for `plugin`: the sandboxed WASI context, the memory cap and the
/// `deadline`, reported as the limit `limit` (`sync time`, `manifest time`) of `time`
/// when crossed. `run` is `None` for `manifest()`, which may not call the host.
pub(crate) fn new_store(
    engine: &Engine,
    plugin: &str,
    limits: &Limits,
    (limit, time, deadline): (&'static str, Duration, Deadline),
    run: Option<RunCtx>,
) -> Store<PluginState> {
    let plugin: Arc<str> = plugin.into();
    let stderr_tail = StderrTail::default();
    // What the plugin writes to stdout and stderr is scrubbed like its log lines: a
    // plugin that got hold of a secret must not be able to print it into the host log.
    let secrets = run.as_ref().map(|r| r.fetcher.secrets().clone());
    let stdio = Stdio {
        plugin: plugin.clone(),
        budget: Arc::new(StdioBudget::new(limits.stdio_bytes)),
        secrets: Arc::new(secrets.unwrap_or_default()),
    };
    let state = PluginState {
        wasi: wasi_ctx(&stdio, &stderr_tail),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(limits.memory_bytes),
        plugin,
        stderr_tail,
        run,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Each tick the guest yields, so plugins sharing a thread take turns; past the
    // deadline it traps. Time spent awaiting the host is bounded by the caller's
    // timer around the whole call ([`Deadline::expired`]).
    store.epoch_deadline_callback(move |_| {
        if deadline.passed() {
            Err(LimitExceeded::new(limit, format!("{time:?}")).into())
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
fn wasi_ctx(stdio: &Stdio, stderr_tail: &StderrTail) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogPipe {
        stdio: stdio.clone(),
        stream: "stdout",
        tail: None,
    })
    .stderr(LogPipe {
        stdio: stdio.clone(),
        stream: "stderr",
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

/// The longest line of stdout or stderr logged, in bytes; the rest of a longer line is
/// cut. A log line is for a person.
const LINE_MAX: usize = 4096;

/// What both of a guest's output streams share: its name, its byte budget and the
/// secrets to scrub (none while `manifest()` runs).
#[derive(Clone)]
struct Stdio {
    plugin: Arc<str>,
    budget: Arc<StdioBudget>,
    secrets: Arc<Secrets>,
}

/// Bytes of stdout and stderr a guest may still write, shared by both streams, which
/// wasmtime may drive from different threads at once.
struct StdioBudget(AtomicUsize);

impl StdioBudget {
    fn new(bytes: usize) -> Self {
        StdioBudget(AtomicUsize::new(bytes))
    }

    /// Takes up to `wanted` bytes and returns how many it got. One atomic step: a check
    /// and a subtraction apart would let two writers both pass the check on the last
    /// bytes and wrap the budget below zero, lifting the cap.
    fn take(&self, wanted: usize) -> usize {
        let taken = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(wanted))
            });
        // The closure always returns `Some`, so this is always `Ok`; either way it holds
        // the budget before this step.
        let before = taken.unwrap_or_else(|left| left);
        before.min(wanted)
    }
}

/// A guest's stdout or stderr, forwarded line by line to the host log.
struct LogPipe {
    stdio: Stdio,
    stream: &'static str,
    tail: Option<StderrTail>,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Bytes of a long line past LINE_MAX are kept as far as the longest form of a
        // secret reaches, so one that straddles the cut is scrubbed whole before cutting.
        let keep = LINE_MAX + self.stdio.secrets.longest_form();
        Box::new(LineWriter {
            stdio: self.stdio.clone(),
            stream: self.stream,
            tail: self.tail.clone(),
            line: Vec::new(),
            keep,
        })
    }
}

struct LineWriter {
    stdio: Stdio,
    stream: &'static str,
    tail: Option<StderrTail>,
    line: Vec<u8>,
    /// The most bytes of one line kept.
    keep: usize,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let raw = String::from_utf8_lossy(&self.line);
        let text = self.stdio.secrets.redact_capped(raw.trim_end(), LINE_MAX);
        tracing::info!(plugin = %self.stdio.plugin, stream = self.stream, "{text}");
        if let Some(tail) = &self.tail
            && let Ok(mut tail) = tail.lock()
        {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text);
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
        let keep = self.stdio.budget.take(buf.len());
        for &b in &buf[..keep] {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < self.keep {
                self.line.push(b);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, point 6: both streams share the budget and wasmtime may write them from
    /// two threads at once. With a separate check and subtraction, two writers could both
    /// see the last bytes, both subtract, and wrap the budget to `usize::MAX`. Many
    /// threads race for a budget here; they get exactly it between them, never more.
    #[test]
    fn the_stdio_budget_is_never_overdrawn_by_concurrent_writers() {
        for round in 0..200 {
            let budget = Arc::new(StdioBudget::new(10_000 + round));
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let budget = budget.clone();
                    std::thread::spawn(move || {
                        let mut got = 0;
                        for i in 0..4_000 {
                            got += budget.take(1 + (i + w) % 7);
                        }
                        got
                    })
                })
                .collect();
            let total: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
            assert_eq!(total, 10_000 + round, "round {round}");
            assert_eq!(budget.take(1), 0, "round {round}: the budget is spent");
        }
    }

    /// The clock stands still while paused: a deadline 200 ms away, paused for 400 ms, is
    /// still 200 ms away once resumed, and [`Deadline::expired`] follows it.
    #[tokio::test]
    async fn a_deadline_waits_out_its_pauses() {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(200));
        let expired = tokio::spawn({
            let deadline = deadline.clone();
            async move {
                deadline.expired().await;
                started.elapsed()
            }
        });
        deadline.pause();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !deadline.passed(),
            "paused past its time, it has not passed"
        );
        assert!(!expired.is_finished());
        deadline.resume();
        assert!(!deadline.passed(), "the pause moved it later");
        let at = expired.await.unwrap();
        assert!(at >= Duration::from_millis(600), "expired after {at:?}");
        assert!(deadline.passed());
    }
}
