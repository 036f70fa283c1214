//! The OCI registry the plugin install tests publish to and install from: the CNCF
//! distribution registry, as Debian packages it (`docker-registry`). The package is
//! downloaded and unpacked once into `$HOME/.cache/infragraph/docker-registry/<version>`
//! (not installed: that would start a system service), started on a free loopback port
//! with a storage directory of its own, and stopped when the [`Registry`] guard drops.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The package version the install tests were written against (Debian 12's); the cache
/// directory is named after it, so a machine that had another keeps it apart.
const VERSION: &str = "2.8.2";
/// How long the registry may take to listen (well under a second is usual).
const STARTUP: Duration = Duration::from_secs(30);

/// A running registry; stopped (and its storage removed) on drop.
pub struct Registry {
    child: Child,
    data: PathBuf,
    /// `127.0.0.1:<port>`: what an `oci://` reference starts with.
    pub address: String,
}

impl Registry {
    /// The environment the tests read (see `tests/src/registry.rs`).
    pub fn env(&self) -> [(&'static str, String); 1] {
        [("INFRAGRAPH_TEST_OCI_REGISTRY", self.address.clone())]
    }

    /// Unpacks the package (when not cached) and starts the registry under `work`.
    pub fn start(work: &Path) -> anyhow::Result<Registry> {
        let binary = install()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = work.join(format!("oci-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(data.join("storage"))
            .with_context(|| format!("cannot create {}", data.display()))?;
        let config = data.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: infragraph-tests\n",
                data.join("storage").display()
            ),
        )?;
        let log_path = data.join("registry.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let registry = Registry {
            child,
            data,
            address: format!("127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > STARTUP {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("the OCI registry did not listen within {STARTUP:?}; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "OCI registry (distribution {VERSION}) ready in {:.1} s at {}",
            started.elapsed().as_secs_f64(),
            registry.address
        );
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
        eprintln!("OCI registry stopped");
    }
}

/// The unpacked `docker-registry` binary, downloaded with apt when missing.
fn install() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let dir = PathBuf::from(home)
        .join(".cache/infragraph/docker-registry")
        .join(VERSION);
    let binary = dir.join("root/usr/bin/docker-registry");
    if binary.is_file() {
        return Ok(binary);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // `apt-get download` fetches the .deb into the current directory without installing
    // it; `dpkg-deb -x` unpacks it without running its scripts.
    let download = || {
        crate::run(
            Command::new("apt-get")
                .current_dir(&dir)
                .args(["download", "docker-registry"]),
        )
    };
    // A fresh machine may have no package lists yet: fetch them once, then try again.
    download()
        .or_else(|_| {
            crate::run(Command::new("apt-get").args(["update", "-q"]))?;
            download()
        })
        .context("cannot download Debian's docker-registry package (the OCI test registry)")?;
    let deb = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    crate::run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("root")),
    )?;
    if !binary.is_file() {
        bail!("the docker-registry package has no {}", binary.display());
    }
    Ok(binary)
}
