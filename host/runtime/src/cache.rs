//! Compiling a component, through the on-disk cache of compiled code when there is one.
//!
//! An entry is `<cache>/<engine>/<component>.cwasm`, `<engine>` a hash of the engine's
//! compatibility hash and `<component>` the sha256 of the component's bytes.
//!
//! Everything here blocks (cranelift, file I/O): call it off the async threads.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, ErrorKind};

/// Compiles components for one engine, caching the compiled code when given a directory.
/// Cheap to clone, so a load can move one onto a blocking thread.
#[derive(Clone)]
pub(crate) struct Compiler {
    engine: Engine,
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
        let dir = cache_root.map(|root| root.join(engine_key(&engine)));
        Compiler { engine, dir }
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
        if entry.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with
            // the same compatibility hash (it names the directory), into the operator's
            // own cache directory; wasmtime checks its header before use.
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

fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn store(dir: &Path, entry: &Path, code: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    fs::write(&tmp, code)?;
    fs::rename(&tmp, entry)
}
