//! The C allocator's settings: its arenas capped, and its tunables, before any thread
//! starts.
//!
//! glibc gives a thread that finds every arena busy a new one, up to eight per core, and
//! memory freed in one arena serves only that arena again. A sync of many connections
//! passes its records from fetch tasks to plugins, staging and the publishing writer, on
//! whichever thread is free, so freed memory sat idle in arenas its next user did not
//! ask: the 20-tenant Azure benchmark (`bench_connections connections-azure`) peaked at
//! 459-492 MB with the default and at 447-448 MB with as many arenas as cores; the 200
//! Scaleway Organizations at 299-333 MB and 219-250 MB, in times the benchmark could not
//! tell apart. A `MALLOC_ARENA_MAX` in the environment still decides.
//!
//! Few arenas means threads wait for each other's arena lock. A per-thread cache of 256
//! freed blocks of each small size instead of 7 (`tcache_count`) means far fewer
//! allocations take an arena's lock. Measured with `bench_connections connections`
//! (2026-12-06), thirty syncs of the 200 Scaleway Organizations alternated with the build
//! without it (then with transparent huge pages for the heap too, `hugetlb=1`): 5.2% ±
//! 1.5% less time and 6.9% ± 1.9% less CPU (less in 22 of the 30 pairs), 39,000 context
//! switches against 43,000 (one sync each).
//!
//! `hugetlb=1` is no longer asked for. Once a batch's text values shared one buffer
//! instead of an allocation each, the heap's huge pages cost more than they saved: each
//! is cleared whole by the kernel as the heap grows into it (`clear_page_erms` under
//! `sysmalloc`, 3% of the CPU of the 200 at `--concurrency 64`, 8.6% at 128). Without it,
//! sixteen alternated pairs: 2.0% ± 0.6% less time and 2.1% ± 0.9% less CPU at
//! `--concurrency 64`; eight pairs at 100 and at 128: 4.3% ± 1.7% and 4.0% ± 2.2% less
//! time (2026-12-07).
//!
//! glibc reads its tunables only from the environment, only as the process starts; no
//! call sets them later. So [`tune`] runs this binary again, once, with them in
//! `GLIBC_TUNABLES`. An operator who sets that variable (even empty) decides instead,
//! and no second start happens.

/// The tunables this binary runs with unless the environment names its own.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
const TUNABLES: &str = "glibc.malloc.tcache_count=256";

/// Starts this binary again with [`TUNABLES`] when `GLIBC_TUNABLES` is not set. Returns
/// only when it does not (the variable is set, or the new start failed, and then the
/// process goes on with glibc's defaults). Call first in `main`, before any thread.
pub(crate) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        // /proc/self/exe: the file this process runs, even when started through a link.
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut again = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            again.arg0(arg0);
        }
        // Replaces this process (same pid, same open files); returns only on failure, such
        // as a binary deleted by an upgrade while it ran.
        let _failed = again.args(args).env("GLIBC_TUNABLES", TUNABLES).exec();
    }
}

/// Caps the arenas at the number of cores (at least two). Call first in `main`, after
/// [`tune`].
pub(crate) fn cap_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let cores = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` sets one of the allocator's parameters; it is called before
        // this process starts any thread, and an unknown value is refused, not applied.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores);
        }
    }
}
