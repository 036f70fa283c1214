//! Compiling a component, through the on-disk cache of compiled code when there is one.
//!
//! An entry is `<cache>/<engine>/<component>.cwasm`: `<engine>` is the sha256 of the
//! engine's compatibility hash (wasmtime's version, the target and every setting that
//! changes the code), `<component>` the sha256 of the component's bytes. Code compiled by
//! another engine is never looked at, and entries of engines no longer in use sit in a
//! directory of their own that can be removed whole.
//!
//! Everything here blocks (cranelift, file I/O): call it off the async threads.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, ErrorKind};

/// Compiles components for one engine, caching the compiled code when given a directory.
/// Cheap to clone, so a load can move one onto a blocking thread.
#[derive(Clone)]
pub(crate) struct Compiler {
    engine: Engine,
    /// The cache's root, given by the operator.
    root: Option<PathBuf>,
    /// The directory of this engine's entries.
    dir: Option<PathBuf>,
}

/// A compiled component, and whether its code came from the cache.
pub(crate) struct Compiled {
    pub component: Component,
    pub cached: bool,
}

impl Compiler {
    /// A compiler for `engine`, caching under `cache_root` when given.
    pub fn new(engine: Engine, cache_root: Option<PathBuf>) -> Compiler {
        let dir = cache_root
            .as_ref()
            .map(|root| root.join(engine_key(&engine)));
        Compiler {
            engine,
            root: cache_root,
            dir,
        }
    }

    /// Why the cache must not be read, if it must not: compiled code runs as this host,
    /// so code another user could have written (into the root, this engine's directory or
    /// the entry itself) is not loaded. What does not exist yet cannot be at fault.
    fn untrusted(&self, entry: &Path) -> Option<String> {
        let (root, dir) = (self.root.as_deref()?, self.dir.as_deref()?);
        [root, dir, entry].into_iter().find_map(|p| {
            infragraph_core::private::writable_by_others(p)
                .ok()
                .flatten()
        })
    }

    /// Compiles the component in `bytes` (whose sha256 is `sha256`, read from `path`), or
    /// loads the code cached for these exact bytes. An entry that cannot be used is
    /// compiled again and replaced; a cache that cannot be written costs speed, not the
    /// load.
    pub fn compile(&self, path: &Path, bytes: &[u8], sha256: &str) -> Result<Compiled, Error> {
        let invalid = |e: wasmtime::Error| ErrorKind::Invalid {
            path: path.into(),
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.dir else {
            let component = Component::new(&self.engine, bytes).map_err(invalid)?;
            return Ok(Compiled {
                component,
                cached: false,
            });
        };
        let entry = dir.join(format!("{sha256}.cwasm"));
        if let Some(why) = self.untrusted(&entry) {
            tracing::warn!("not using the compiled-code cache: {why}");
            let component = Component::new(&self.engine, bytes).map_err(invalid)?;
            return Ok(Compiled {
                component,
                cached: false,
            });
        }
        if entry.exists() {
            // SAFETY: entries are written only by `store` below, with the output of
            // `precompile_component` of an engine with this compatibility hash (it names
            // the directory), into the operator's own cache directory; each appears
            // whole, by rename, after being synced. wasmtime checks the header and the
            // engine's settings before use, so a damaged or foreign file is refused.
            match unsafe { Component::deserialize_file(&self.engine, &entry) } {
                Ok(component) => {
                    return Ok(Compiled {
                        component,
                        cached: true,
                    });
                }
                Err(e) => {
                    tracing::warn!(path = %entry.display(), "ignoring unusable cached compilation: {e:#}")
                }
            }
        }
        let code = self.engine.precompile_component(bytes).map_err(invalid)?;
        if let Err(e) = store(dir, &entry, &code) {
            tracing::warn!(path = %entry.display(), "cannot cache compiled plugin: {e}");
        }
        // SAFETY: this engine produced these bytes a moment ago.
        let component = unsafe { Component::deserialize(&self.engine, &code) }.map_err(invalid)?;
        Ok(Compiled {
            component,
            cached: false,
        })
    }
}

impl Compiler {
    /// The manifest this build of the host read from the component whose sha256 is
    /// `sha256`, if it kept it: a file in the same directory as the compiled code, so a
    /// host upgrade (another engine) reads every plugin again.
    pub fn cached_manifest(&self, sha256: &str) -> Option<infragraph_core::Manifest> {
        let entry = self.dir.as_ref()?.join(format!("{sha256}.manifest.json"));
        if let Some(why) = self.untrusted(&entry) {
            tracing::warn!("not using the compiled-code cache: {why}");
            return None;
        }
        let text = fs::read_to_string(entry).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Keeps the manifest read from the component `sha256`; failing to costs speed only.
    pub fn keep_manifest(&self, sha256: &str, manifest: &infragraph_core::Manifest) {
        let Some(dir) = &self.dir else { return };
        let entry = dir.join(format!("{sha256}.manifest.json"));
        let kept = serde_json::to_vec(manifest)
            .map_err(io::Error::other)
            .and_then(|json| store(dir, &entry, &json));
        if let Err(e) = kept {
            tracing::warn!(path = %entry.display(), "cannot cache a plugin's manifest: {e}");
        }
    }
}

/// The hex sha256 of the engine's compatibility hash. Not `DefaultHasher`: its algorithm
/// may change between Rust releases, and a 64-bit hash is a key one collision away from
/// running another engine's code.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Feeds whatever a `Hash` impl writes into a sha256.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// Writes `code` to `entry` so that no reader ever sees a partial file: through a
/// temporary file of its own (two loads at once, in this process or another, each get
/// one), synced, then renamed over the entry.
fn store(dir: &Path, entry: &Path, code: &[u8]) -> io::Result<()> {
    // Owner-only, as everything here is looked at before it is loaded; the temporary file
    // is created 0600 and keeps that mode through the rename.
    infragraph_core::private::create_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(code)?;
    // Without it a crash soon after the rename could leave an entry of the right name
    // whose blocks never reached the disk.
    tmp.as_file().sync_all()?;
    tmp.persist(entry).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writes_of_different_entries_each_keep_their_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let dir = dir.path().to_owned();
                std::thread::spawn(move || {
                    // Large enough that writes overlap; each entry rewritten many times.
                    let code = vec![i; 256 << 10];
                    for _ in 0..20 {
                        store(&dir, &dir.join(format!("{i}.cwasm")), &code).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for i in 0..8u8 {
            let bytes = fs::read(dir.path().join(format!("{i}.cwasm"))).unwrap();
            assert_eq!(bytes.len(), 256 << 10, "entry {i} is whole");
            assert!(
                bytes.iter().all(|&b| b == i),
                "entry {i} holds its own bytes"
            );
        }
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().ends_with(".cwasm"))
            .collect();
        assert!(
            left.is_empty(),
            "no temporary file is left behind: {left:?}"
        );
    }

    #[test]
    fn engines_share_a_cache_directory_only_when_their_code_is_compatible() {
        let engine = |opt| {
            let mut config = wasmtime::Config::new();
            config.cranelift_opt_level(opt);
            Engine::new(&config).unwrap()
        };
        let speed = engine_key(&engine(wasmtime::OptLevel::Speed));
        assert_eq!(speed.len(), 64, "a hex sha256: {speed}");
        assert_eq!(speed, engine_key(&engine(wasmtime::OptLevel::Speed)));
        assert_ne!(speed, engine_key(&engine(wasmtime::OptLevel::None)));
    }
}
