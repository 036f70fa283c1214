//! One sync per plugin and scope at a time: the lease a run holds in the sink from before
//! its first write to its end. Two cron jobs that overlap, or `infragraph sync` started
//! twice, would otherwise interleave their writes and one's cleanup would delete what the
//! other just wrote.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a lease lasts unless renewed. A run renews it every third of this, so a
/// holder that crashed (or lost the sink) lets go within this time; one on this machine
/// whose process is gone lets go at once.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// Who holds a lease: what a second run is told, and what tells a crashed holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The machine the run is on.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// When the run started, RFC 3339.
    pub started_at: String,
    /// Unique per run: only the run holding this token renews or releases the lease.
    pub token: String,
}

impl Holder {
    /// This process, for a run started at `started_at`.
    pub fn this_process(started_at: &str) -> Holder {
        let pid = std::process::id();
        let host = hostname();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Unique enough across machines and runs: the clock, the process and its host.
        let token = format!("{host}:{pid}:{nanos:x}");
        Holder {
            host,
            pid,
            started_at: started_at.to_owned(),
            token,
        }
    }

    /// Whether this holder is known to be gone: a process of this machine that no longer
    /// runs. A holder on another machine is never known gone; its lease expires instead.
    pub fn is_gone(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        process_is_gone(self.pid)
    }
}

impl Holder {
    /// Whether this holder is known to be running: a process of this machine that is
    /// still there. Where that cannot be told (another machine, a system without /proc),
    /// `false`, and the lease's expiry decides.
    pub fn is_running_here(&self) -> bool {
        cfg!(target_os = "linux") && self.host == hostname() && !process_is_gone(self.pid)
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} on {} since {}",
            self.pid, self.host, self.started_at
        )
    }
}

/// The machine's name: from the kernel on Linux, else the usual environment variables.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(target_os = "linux")]
fn process_is_gone(pid: u32) -> bool {
    // A zombie still has a /proc entry but will never write again.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn process_is_gone(_pid: u32) -> bool {
    // Without a portable way to ask, wait for the lease to expire.
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone_and_a_dead_one_is() {
        let me = Holder::this_process("2026-12-05T00:00:00Z");
        assert!(!me.is_gone());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder { pid, ..me.clone() };
        assert!(cfg!(not(target_os = "linux")) || dead.is_gone());
        let elsewhere = Holder {
            host: "another-machine".into(),
            ..dead
        };
        assert!(!elsewhere.is_gone(), "a remote holder is never known gone");
        assert_ne!(me.token, Holder::this_process("x").token);
    }
}
