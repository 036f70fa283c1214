//! Finding plugins: a `.wasm` file given by path, or one found by name in the plugin
//! directories. Built-in directories are searched before user ones, so a dropped-in
//! file cannot shadow a built-in plugin of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::runtime::{Plugin, Runtime};

/// Where a plugin was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Shipped with infragraph (beside the binary, or built by `cargo xtask build`).
    BuiltIn,
    /// Dropped into a user plugin directory.
    User,
    /// Given by path.
    Path,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::BuiltIn => "built-in",
            Source::User => "user",
            Source::Path => "path",
        })
    }
}

/// The directories searched for plugins, and the operator's sha256 pins by plugin name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Built-in plugin directories, searched first.
    pub builtin: Vec<PathBuf>,
    /// User plugin directories.
    pub user: Vec<PathBuf>,
    /// Pinned sha256 per plugin name.
    pub pins: BTreeMap<String, String>,
}

/// A plugin file found in a directory, loaded or not.
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// Which kind of directory.
    pub source: Source,
    /// The plugin, or why it could not be loaded.
    pub plugin: Result<Plugin, Error>,
    /// A plugin of the same name was found earlier in the search order, so `find` never
    /// returns this one.
    pub shadowed: bool,
}

impl Catalog {
    fn dirs(&self) -> impl Iterator<Item = (&PathBuf, Source)> {
        let builtin = self.builtin.iter().map(|d| (d, Source::BuiltIn));
        builtin.chain(self.user.iter().map(|d| (d, Source::User)))
    }

    /// Loads every `.wasm` file in the plugin directories, in search order. The same file
    /// reached through two directories (same name and digest) is listed once.
    pub async fn all(&self, runtime: &Runtime) -> Vec<Found> {
        let mut out: Vec<Found> = Vec::new();
        let mut seen = std::collections::HashMap::<String, String>::new();
        for (dir, source) in self.dirs() {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect();
            paths.sort();
            for path in paths {
                let plugin = self.load(runtime, &path).await;
                let mut shadowed = false;
                if let Ok(p) = &plugin {
                    match seen.get(&p.manifest().name) {
                        Some(sha) if sha == p.sha256() => continue,
                        Some(_) => shadowed = true,
                        None => {
                            seen.insert(p.manifest().name.clone(), p.sha256().to_string());
                        }
                    }
                }
                out.push(Found {
                    path,
                    source,
                    plugin,
                    shadowed,
                });
            }
        }
        out
    }

    /// Finds a plugin by name (or loads it, when `name` is a path to a `.wasm` file).
    pub async fn find(&self, runtime: &Runtime, name: &str) -> Result<(Plugin, Source), Error> {
        let as_path = Path::new(name);
        if name.ends_with(".wasm") || name.contains(std::path::MAIN_SEPARATOR) {
            return Ok((self.load(runtime, as_path).await?, Source::Path));
        }
        // `<name>.wasm` is the convention and spares loading every other plugin.
        for (dir, source) in self.dirs() {
            let path = dir.join(format!("{name}.wasm"));
            if path.is_file() {
                let plugin = self.load(runtime, &path).await?;
                if plugin.manifest().name == name {
                    return Ok((plugin, source));
                }
            }
        }
        let mut available = Vec::new();
        for found in self.all(runtime).await {
            if let Ok(plugin) = found.plugin {
                if plugin.manifest().name == name {
                    return Ok((plugin, found.source));
                }
                available.push(plugin.manifest().name.clone());
            }
        }
        available.sort();
        available.dedup();
        let searched: Vec<_> = self.dirs().map(|(d, _)| d.display().to_string()).collect();
        Err(ErrorKind::NotFound {
            name: name.into(),
            searched,
            available,
        }
        .into())
    }

    async fn load(&self, runtime: &Runtime, path: &Path) -> Result<Plugin, Error> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let plugin = runtime
            .load(path, self.pins.get(&stem).map(String::as_str))
            .await?;
        let name = &plugin.manifest().name;
        match self.pins.get(name) {
            Some(pin) if !pin.eq_ignore_ascii_case(plugin.sha256()) => {
                Err(ErrorKind::PinMismatch {
                    name: name.clone(),
                    path: path.into(),
                    pinned: pin.clone(),
                    actual: plugin.sha256().into(),
                }
                .into())
            }
            _ => Ok(plugin),
        }
    }
}
