//! Finding plugins: a `.wasm` file given by path, or one found by name in the plugin
//! directories. Built-in directories are searched before user ones, so a dropped-in
//! file cannot shadow a built-in plugin of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use infragraph_core::Manifest;

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

    /// Every `.wasm` file in the plugin directories, in search order: by directory, then
    /// by name. A directory that cannot be read has none.
    fn files(&self) -> Vec<(PathBuf, Source)> {
        let mut out = Vec::new();
        for (dir, source) in self.dirs() {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
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
