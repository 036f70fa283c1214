//! Finding plugins: a `.wasm` file given by path, or one found by name in the plugin
//! directories. The plugins the binary carries come first, then built-in directories,
//! then user ones, so a dropped-in file cannot shadow a built-in plugin of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use infragraph_core::Manifest;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};
use crate::runtime::{Plugin, Runtime};

/// Where a plugin was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Carried inside the infragraph binary.
    Embedded,
    /// Shipped with infragraph (beside the binary, or built by `cargo xtask build`).
    BuiltIn,
    /// Dropped into a user plugin directory.
    User,
    /// Given by path.
    Path,
}

impl Source {
    /// Shipped with infragraph, inside the binary or beside it: such a plugin reads the
    /// credentials its manifest names without the operator naming them in the config.
    pub fn is_builtin(self) -> bool {
        matches!(self, Source::Embedded | Source::BuiltIn)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Embedded => "embedded",
            Source::BuiltIn => "built-in",
            Source::User => "user",
            Source::Path => "path",
        })
    }
}

/// A plugin the binary carries.
#[derive(Clone, Copy)]
pub struct EmbeddedPlugin {
    /// Its name; it is written out as `<name>.wasm`.
    pub name: &'static str,
    /// The component's sha256, hex: a written-out copy that differs is refused.
    pub sha256: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

impl std::fmt::Debug for EmbeddedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPlugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The plugins the binary carries, and the directory they are written out to the first
/// time they are needed: wasmtime compiles from bytes either way, but every other part of
/// the host (the compiled-code cache, errors, `plugins list`) knows a plugin by its file.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    /// Where they are written (a directory named by the set's digest, so two builds of
    /// infragraph side by side do not overwrite each other's).
    pub dir: PathBuf,
    /// The plugins.
    pub plugins: Vec<EmbeddedPlugin>,
    written: Arc<OnceLock<Result<(), String>>>,
}

impl Embedded {
    /// The plugins, to be written to `dir` when first needed.
    pub fn new(dir: PathBuf, plugins: Vec<EmbeddedPlugin>) -> Embedded {
        Embedded {
            dir,
            plugins,
            written: Arc::default(),
        }
    }

    /// Writes out each plugin whose file is missing or differs from what the binary
    /// carries, once per process (hashing them all takes a few milliseconds). Each file is
    /// written beside its place and renamed into it, so a process loading it meanwhile
    /// never reads half a file; one altered after this is refused at load by its sha256.
    fn write_out(&self) -> Result<(), Error> {
        let done = self.written.get_or_init(|| {
            let dir = &self.dir;
            infragraph_core::private::create_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            for p in &self.plugins {
                let path = dir.join(format!("{}.wasm", p.name));
                let same = std::fs::read(&path)
                    .is_ok_and(|b| hex::encode(Sha256::digest(&b)).eq_ignore_ascii_case(p.sha256));
                if same {
                    continue;
                }
                let part = dir.join(format!(".{}.wasm.{}", p.name, std::process::id()));
                infragraph_core::private::write_file(&part, p.wasm)
                    .and_then(|()| std::fs::rename(&part, &path))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            Ok(())
        });
        done.clone().map_err(|reason| {
            ErrorKind::Engine(format!(
                "the plugins this binary carries could not be written out: {reason} \
                 (set `cache_dir` in the config, or XDG_CACHE_HOME, to a writable directory)"
            ))
            .into()
        })
    }

    /// Whether `path` in the directory is one of these plugins' files: nothing else found
    /// there is listed or loaded, whoever put it there.
    fn carries(&self, path: &Path) -> bool {
        self.sha256_of(path).is_some()
    }

    /// The sha256 the plugin written out as `path` must have, when it is one of these.
    fn sha256_of(&self, path: &Path) -> Option<&'static str> {
        if path.parent() != Some(self.dir.as_path()) {
            return None;
        }
        let stem = path.file_stem()?.to_str()?;
        self.plugins
            .iter()
            .find(|p| p.name == stem)
            .map(|p| p.sha256)
    }
}

/// The directories searched for plugins, and the operator's sha256 pins by plugin name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The plugins the binary carries, searched first.
    pub embedded: Option<Embedded>,
    /// Built-in plugin directories, searched next.
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
        let embedded = self.embedded.iter().map(|e| (&e.dir, Source::Embedded));
        let builtin = self.builtin.iter().map(|d| (d, Source::BuiltIn));
        embedded
            .chain(builtin)
            .chain(self.user.iter().map(|d| (d, Source::User)))
    }

    /// Every `.wasm` file in the plugin directories, in search order: by directory, then
    /// by name. A directory that cannot be read has none; the embedded plugins that cannot
    /// be written out are left out with a warning (the error comes when one is asked for
    /// by name).
    fn files(&self) -> Vec<(PathBuf, Source)> {
        if let Some(e) = &self.embedded
            && let Err(err) = e.write_out()
        {
            tracing::warn!("{err}");
        }
        let mut out = Vec::new();
        for (dir, source) in self.dirs() {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .filter(|p| match (&self.embedded, source) {
                    (Some(e), Source::Embedded) => e.carries(p),
                    _ => true,
                })
                .collect();
            paths.sort();
            out.extend(paths.into_iter().map(|p| (p, source)));
        }
        out
    }

    /// Loads every `.wasm` file in the plugin directories, in search order. The same file
    /// reached through two directories (same name and digest) is listed once.
    pub async fn all(&self, runtime: &Runtime) -> Vec<Found> {
        let mut out: Vec<Found> = Vec::new();
        let mut seen = std::collections::HashMap::<String, String>::new();
        for (path, source) in self.files() {
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
        out
    }

    /// The manifests of every plugin [`Catalog::all`] finds and does not shadow, read
    /// through [`Runtime::manifest_of`] (no compiling when they were read before). A file
    /// that cannot be read is left out: `plugins list` names it.
    pub async fn manifests(&self, runtime: &Runtime) -> Vec<Arc<Manifest>> {
        let mut out: Vec<Arc<Manifest>> = Vec::new();
        let mut seen = std::collections::HashSet::<String>::new();
        for (path, _) in self.files() {
            // The first of a name wins, as in `all`: a later one is the same build or
            // shadowed.
            if let Ok((m, _)) = runtime.manifest_of(&path).await
                && seen.insert(m.name.clone())
            {
                out.push(m);
            }
        }
        out
    }

    /// [`Catalog::find`] for a sync, where identity matters: a plugin given by path whose
    /// name is an installed plugin's (another build) is refused unless the operator
    /// pinned this build under that name or passes `replace_installed`; and a plugin
    /// whose primary label another installed plugin declares too is refused, naming both.
    /// Returns whether the plugin replaces an installed one without a pin (its state is
    /// then kept apart unless the operator adopts the installed one's).
    pub async fn find_for_sync(
        &self,
        runtime: &Runtime,
        name: &str,
        replace_installed: bool,
    ) -> Result<(Plugin, Source, bool), Error> {
        let (plugin, source) = self.find(runtime, name).await?;
        let installed = self.all(runtime).await;
        let me = plugin.manifest();
        let mut replaces = false;
        if source == Source::Path {
            let same_name = installed.iter().find(|f| {
                f.plugin
                    .as_ref()
                    .is_ok_and(|p| p.manifest().name == me.name && p.sha256() != plugin.sha256())
            });
            if let Some(f) = same_name {
                let pinned = self
                    .pins
                    .get(&me.name)
                    .is_some_and(|pin| pin.eq_ignore_ascii_case(plugin.sha256()));
                if !pinned && !replace_installed {
                    return Err(ErrorKind::ShadowsInstalled {
                        name: me.name.clone(),
                        path: plugin.path().to_path_buf(),
                        sha256: plugin.sha256().to_string(),
                        installed: f.path.clone(),
                        kind: f.source,
                    }
                    .into());
                }
                replaces = !pinned;
            }
        }
        for f in &installed {
            let Ok(other) = &f.plugin else { continue };
            let theirs = other.manifest();
            // The plugin itself, or another build of it, shares its labels by right.
            if theirs.name == me.name || f.shadowed {
                continue;
            }
            for kind in &me.schema.nodes {
                if theirs.schema.nodes.iter().any(|k| k.label == kind.label) {
                    return Err(ErrorKind::LabelConflict {
                        name: me.name.clone(),
                        path: plugin.path().to_path_buf(),
                        label: kind.label.clone(),
                        other: theirs.name.clone(),
                        other_path: f.path.clone(),
                    }
                    .into());
                }
            }
        }
        Ok((plugin, source, replaces))
    }

    /// Primary labels that two installed plugins (neither shadowed) both declare, as
    /// (label, first plugin's file, second plugin's file), for `plugins list`: `sync`
    /// refuses either plugin.
    pub fn label_conflicts(found: &[Found]) -> Vec<(String, PathBuf, PathBuf)> {
        let mut owner: BTreeMap<&str, (&str, &Path)> = BTreeMap::new();
        let mut out = Vec::new();
        for f in found.iter().filter(|f| !f.shadowed) {
            let Ok(p) = &f.plugin else { continue };
            for kind in &p.manifest().schema.nodes {
                match owner.get(kind.label.as_str()) {
                    Some((name, path)) if *name != p.manifest().name => {
                        out.push((kind.label.clone(), path.to_path_buf(), f.path.clone()));
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(&kind.label, (&p.manifest().name, &f.path));
                    }
                }
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
        if let Some(e) = &self.embedded
            && e.plugins.iter().any(|p| p.name == name)
        {
            e.write_out()?;
        }
        // `<name>.wasm` is the convention and spares loading every other plugin.
        for (dir, source) in self.dirs() {
            let path = dir.join(format!("{name}.wasm"));
            let foreign = source == Source::Embedded
                && !self.embedded.as_ref().is_some_and(|e| e.carries(&path));
            if path.is_file() && !foreign {
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
        let searched: Vec<_> = self
            .dirs()
            .map(|(d, source)| match source {
                Source::Embedded => "the plugins built into infragraph".to_string(),
                _ => d.display().to_string(),
            })
            .collect();
        Err(ErrorKind::NotFound {
            name: name.into(),
            suggestion: closest(name, &available),
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
        // A written-out embedded plugin must be the very component the binary carries.
        let embedded = self.embedded.as_ref().and_then(|e| e.sha256_of(path));
        let pin = embedded.or(self.pins.get(&stem).map(String::as_str));
        let plugin = runtime.load(path, pin).await?;
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

/// The name in `names` closest to `typed`, if it is within a typo of it: at most a third
/// of its letters (and at least one) inserted, deleted, replaced or swapped with a
/// neighbour (the optimal string alignment distance, clap's choice for its suggestions).
pub fn closest<S: AsRef<str>>(typed: &str, names: &[S]) -> Option<String> {
    let most = (typed.chars().count() / 3).max(1);
    names
        .iter()
        .map(|n| (strsim::osa_distance(typed, n.as_ref()), n.as_ref()))
        .filter(|(d, _)| *d <= most)
        .min()
        .map(|(_, n)| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_suggests_the_plugin_meant() {
        let names: Vec<String> = ["azure", "example", "scaleway", "spacelift"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("exampel", &names).as_deref(), Some("example"));
        assert_eq!(closest("scalway", &names).as_deref(), Some("scaleway"));
        assert_eq!(closest("spacelfit", &names).as_deref(), Some("spacelift"));
        assert_eq!(closest("nope", &names), None);
        assert_eq!(closest("gcp", &names), None);
    }
}
