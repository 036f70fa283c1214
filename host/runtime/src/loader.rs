//! Turning a `.wasm` file into a runnable [`Plugin`]: compile (or load the cached
//! compilation), check the contract version, read and check the manifest.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infragraph_core::{CheckedSchema, Manifest};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

use crate::error::{Error, ErrorKind};
use crate::host::{PluginState, RunCtx};
use crate::sandbox::{self, EPOCH_TICK, LimitExceeded, Limits, MemoryLimiter};
use crate::wit::{self, SUPPORTED_CONTRACTS, since_v0_1_0::Ingestor as Bindings};

/// The WebAssembly engine shared by every plugin of a process, with its linker and the
/// on-disk cache of compiled plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
}

/// A loaded plugin: its compiled component and checked manifest.
#[derive(Clone)]
pub struct Plugin {
    component: Component,
    manifest: Arc<Manifest>,
    pub(crate) schema: Arc<CheckedSchema>,
    path: PathBuf,
    sha256: String,
    contract: String,
    cached: bool,
}

impl Runtime {
    /// Sets up the engine. `cache_dir`, when given, keeps compiled plugins between runs,
    /// keyed by the engine's compatibility hash and the component's sha256.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        // For plugin authors profiling their plugin with `perf record`: wasmtime writes
        // /tmp/perf-<pid>.map naming each compiled guest function.
        if std::env::var_os("INFRAGRAPH_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| ErrorKind::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| Bindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|e| ErrorKind::Engine(format!("{e:#}")))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), stop_ticker.clone());
        // Epoch interruption needs a clock: this thread advances it for every store.
        std::thread::Builder::new()
            .name("infragraph-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| ErrorKind::Engine(e.to_string()))?;
        let cache_dir = cache_dir.map(|d| d.join(engine_key(&engine)));
        Ok(Runtime {
            engine,
            linker,
            cache_dir,
            stop_ticker,
        })
    }

    /// Loads the plugin at `path`. With `pin`, refuses a file whose sha256 differs.
    pub async fn load(&self, path: &Path, pin: Option<&str>) -> Result<Plugin, Error> {
        let bytes = fs::read(path).map_err(|source| ErrorKind::Read {
            path: path.into(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(pin) = pin
            && !pin.eq_ignore_ascii_case(&sha256)
        {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            return Err(ErrorKind::PinMismatch {
                name: name.unwrap_or_default(),
                path: path.into(),
                pinned: pin.into(),
                actual: sha256,
            }
            .into());
        }
        let (component, cached) = self.compile(path, &bytes, &sha256)?;
        let exports = component.component_type();
        let names: Vec<String> = exports
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let contract =
            wit::contract_version(names.iter().map(String::as_str)).map_err(|found| {
                ErrorKind::Contract {
                    path: path.into(),
                    found,
                    supported: SUPPORTED_CONTRACTS.join(", "),
                }
            })?;
        if !SUPPORTED_CONTRACTS.contains(&contract.as_str()) {
            return Err(ErrorKind::Contract {
                path: path.into(),
                found: contract,
                supported: SUPPORTED_CONTRACTS.join(", "),
            }
            .into());
        }
        let manifest = self.read_manifest(path, &component).await?;
        let schema = CheckedSchema::new(&manifest).map_err(|source| ErrorKind::BadManifest {
            path: path.into(),
            source,
        })?;
        Ok(Plugin {
            component,
            manifest: Arc::new(manifest),
            schema: Arc::new(schema),
            path: path.into(),
            sha256,
            contract,
            cached,
        })
    }

    async fn read_manifest(&self, path: &Path, component: &Component) -> Result<Manifest, Error> {
        let limits = Limits::default();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut store = self.store(&name, &limits, limits.manifest_time, None);
        let manifest = async {
            let instance = Bindings::instantiate_async(&mut store, component, &self.linker).await?;
            instance
                .infragraph_plugin_provider()
                .call_manifest(&mut store)
                .await
        };
        match tokio::time::timeout(limits.manifest_time, manifest).await {
            Ok(Ok(m)) => Ok(m.into()),
            Ok(Err(e)) if is_link_error(&e) => Err(ErrorKind::Link {
                path: path.into(),
                reason: format!("{e:#}"),
            }
            .into()),
            Ok(Err(e)) => Err(ErrorKind::Manifest {
                path: path.into(),
                reason: format!("{e:#}"),
            }
            .into()),
            Err(_) => Err(ErrorKind::Manifest {
                path: path.into(),
                reason: format!("manifest() took longer than {:?}", limits.manifest_time),
            }
            .into()),
        }
    }

    /// Compiles the component, or loads the compilation cached for these exact bytes.
    fn compile(&self, path: &Path, bytes: &[u8], sha256: &str) -> Result<(Component, bool), Error> {
        let invalid = |e: wasmtime::Error| ErrorKind::Invalid {
            path: path.into(),
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.cache_dir else {
            return Ok((Component::new(&self.engine, bytes).map_err(invalid)?, false));
        };
        let cached = dir.join(format!("{sha256}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with
            // the same compatibility hash (it names the directory), into the operator's
            // own cache directory; wasmtime checks its header before use.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), "ignoring unusable cached compilation: {e:#}")
                }
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(invalid)?;
        // A cache that cannot be written costs speed, not correctness.
        if let Err(e) = write_atomically(dir, &cached, &compiled) {
            tracing::warn!(path = %cached.display(), "cannot cache compiled plugin: {e}");
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        let component =
            unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(invalid)?;
        Ok((component, false))
    }

    pub(crate) fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    /// A fresh store: the sandboxed WASI context, the memory cap and the deadline.
    pub(crate) fn store(
        &self,
        plugin: &str,
        limits: &Limits,
        time: Duration,
        run: Option<RunCtx>,
    ) -> Store<PluginState> {
        let plugin: Arc<str> = plugin.into();
        let stderr_tail = Arc::new(Mutex::new(Default::default()));
        let state = PluginState {
            wasi: sandbox::wasi_ctx(&plugin, limits.stdio_bytes, &stderr_tail),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            plugin,
            stderr_tail,
            run,
        };
        let mut store = Store::new(&self.engine, state);
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
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Plugin {
    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file's sha256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// The contract version it was built against.
    pub fn contract(&self) -> &str {
        &self.contract
    }
    /// Whether its compilation came from the cache.
    pub fn from_cache(&self) -> bool {
        self.cached
    }
    pub(crate) fn component(&self) -> &Component {
        &self.component
    }
}

fn is_link_error(e: &wasmtime::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("matching implementation was not found in the linker")
        || text.contains("import") && text.contains("has the wrong type")
}

fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}
