//! The C allocator's arenas, capped before any thread starts.
//!
//! glibc gives a thread that finds every arena busy a new one, up to eight per core, and
//! memory freed in one arena serves only that arena again. A sync of many connections
//! passes its records from fetch tasks to plugins, staging and the publishing writer, on
//! whichever thread is free, so freed memory sat idle in arenas its next user did not
//! ask: the 20-tenant Azure benchmark (`bench_connections connections-azure`) peaked at
//! 459-492 MB with the default and at 447-448 MB with as many arenas as cores; the 200
//! Scaleway Organizations at 299-333 MB and 219-250 MB, in times the benchmark could not
//! tell apart. A `MALLOC_ARENA_MAX` in the environment still decides.

/// Caps the arenas at the number of cores (at least two). Call first in `main`.
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
