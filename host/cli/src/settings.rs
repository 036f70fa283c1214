//! `Settings`: the validated result of arguments, the config file and the environment.
//! Commands read this, never clap structs or raw TOML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use infragraph_core::ConfigValue;
use infragraph_runtime::{Catalog, Limits, Runtime};
use serde::Deserialize;

use crate::args::Args;

/// The config file's default name, looked for in the working directory.
const DEFAULT_CONFIG: &str = "infragraph.toml";

pub struct Settings {
    pub catalog: Catalog,
    pub engine: infragraph_engine::Options,
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
    pub plugins: BTreeMap<String, PluginSettings>,
    /// `[sink.neo4j]`, overridden by the `--neo4j*` flags.
    neo4j: Neo4jFile,
}

/// The `[plugins.<name>]` table.
#[derive(Debug, Default, Clone)]
pub struct PluginSettings {
    pub config: BTreeMap<String, ConfigValue>,
    pub secret_files: BTreeMap<String, PathBuf>,
    pub limits: LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    plugin_dirs: Option<Vec<PathBuf>>,
    batch_size: Option<usize>,
    concurrency: Option<usize>,
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    plugins: BTreeMap<String, toml::Table>,
    #[serde(default)]
    sink: SinkFile,
}

/// `[sink]`: where the graph goes when not into the embedded store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    #[serde(default)]
    neo4j: Neo4jFile,
}

/// `[sink.neo4j]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Neo4jFile {
    uri: Option<String>,
    user: Option<String>,
    database: Option<String>,
    /// Refused with a message, rather than as an unknown key: secrets stay out of files.
    password: Option<toml::Value>,
}

/// The Neo4j password's only source.
pub const NEO4J_PASSWORD: &str = "NEO4J_PASSWORD";

/// `[limits]`, globally or per plugin; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    memory_mib: Option<usize>,
    sync_seconds: Option<u64>,
    records: Option<u64>,
    fetches: Option<u64>,
    response_mib: Option<u64>,
    request_timeout_seconds: Option<u64>,
    retries: Option<u32>,
    per_host_concurrency: Option<usize>,
    per_host_rate: Option<f64>,
}

impl LimitsFile {
    pub fn apply(&self, l: &mut Limits) {
        if let Some(v) = self.memory_mib {
            l.memory_bytes = v << 20;
        }
        if let Some(v) = self.sync_seconds {
            l.sync_time = Duration::from_secs(v);
        }
        if let Some(v) = self.records {
            l.records = v;
        }
        if let Some(v) = self.fetches {
            l.fetches = v;
        }
        if let Some(v) = self.response_mib {
            l.fetch.max_body_bytes = v << 20;
        }
        if let Some(v) = self.request_timeout_seconds {
            l.fetch.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.retries {
            l.fetch.max_retries = v;
        }
        if let Some(v) = self.per_host_concurrency {
            l.fetch.per_host_concurrency = v.max(1);
        }
        if let Some(v) = self.per_host_rate {
            l.fetch.per_host_rate = Some(v);
        }
    }
}

impl Settings {
    pub fn load(args: &Args) -> anyhow::Result<Settings> {
        let path = match &args.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
        };
        let file = match &path {
            Some(p) => read_file(p)?,
            None => File::default(),
        };
        if file.sink.neo4j.password.is_some() {
            bail!(
                "[sink.neo4j] in {}: `password` is not read from the config file; set the \
                 {NEO4J_PASSWORD} environment variable instead",
                path.as_deref().unwrap_or(Path::new("?")).display()
            );
        }
        let mut limits = Limits::default();
        file.limits.apply(&mut limits);
        let mut plugins = BTreeMap::new();
        let mut pins = BTreeMap::new();
        for (name, table) in file.plugins {
            let where_ = format!(
                "[plugins.{name}] in {}",
                path.as_deref().unwrap_or(Path::new("?")).display()
            );
            let (p, pin) = plugin_settings(table).with_context(|| where_)?;
            if let Some(pin) = pin {
                pins.insert(name.clone(), pin);
            }
            plugins.insert(name, p);
        }
        let mut builtin = Vec::new();
        if let Some(dir) = std::env::var_os("INFRAGRAPH_BUILTIN_PLUGINS") {
            builtin.push(PathBuf::from(dir));
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            builtin.push(exe_dir.join("plugins"));
        }
        let mut user = file.plugin_dirs.unwrap_or_default();
        if let Some(dir) = data_dir() {
            user.push(dir.join("plugins"));
        }
        let cache_dir = file
            .cache_dir
            .or_else(|| cache_home().map(|d| d.join("compiled")));
        let mut engine = infragraph_engine::Options::default();
        if let Some(n) = file.batch_size {
            engine.batch_size = n.max(1);
        }
        if let Some(n) = file.concurrency {
            engine.concurrency = n.max(1);
        }
        Ok(Settings {
            catalog: Catalog {
                builtin,
                user,
                pins,
            },
            engine,
            cache_dir,
            limits,
            plugins,
            neo4j: file.sink.neo4j,
        })
    }

    /// The Neo4j server to write to: the `--neo4j*` flags over `[sink.neo4j]`; `None`
    /// when neither names a URI (the embedded store is used). The password comes from
    /// `NEO4J_PASSWORD` only; unset, it is empty (a server without authentication).
    pub fn neo4j(
        &self,
        args: &crate::args::Neo4jArgs,
    ) -> Option<infragraph_sink_neo4j::Neo4jConfig> {
        let uri = args.neo4j.clone().or_else(|| self.neo4j.uri.clone())?;
        self.neo4j_at(uri, args)
    }

    /// The Neo4j server to read from: only when `--neo4j` names it. Reading commands
    /// default to the embedded store even when `[sink.neo4j]` sends syncs elsewhere, so
    /// `--store PATH` always means that file.
    pub fn neo4j_to_read(
        &self,
        args: &crate::args::Neo4jArgs,
    ) -> Option<infragraph_sink_neo4j::Neo4jConfig> {
        self.neo4j_at(args.neo4j.clone()?, args)
    }

    fn neo4j_at(
        &self,
        uri: String,
        args: &crate::args::Neo4jArgs,
    ) -> Option<infragraph_sink_neo4j::Neo4jConfig> {
        Some(infragraph_sink_neo4j::Neo4jConfig {
            uri,
            user: args
                .neo4j_user
                .clone()
                .or_else(|| self.neo4j.user.clone())
                .unwrap_or_else(|| "neo4j".into()),
            password: std::env::var(NEO4J_PASSWORD).unwrap_or_default(),
            database: args
                .neo4j_database
                .clone()
                .or_else(|| self.neo4j.database.clone())
                .unwrap_or_else(|| "neo4j".into()),
        })
    }

    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(self.cache_dir.clone())?)
    }

    /// Opens (creating when new) the embedded store.
    pub fn open_store(&self, path: &Path) -> anyhow::Result<infragraph_sink_sqlite::Store> {
        Ok(infragraph_sink_sqlite::Store::open(path)?)
    }

    /// Opens an existing store for reading; a missing file is a user error, not a new store.
    pub fn existing_store(&self, path: &Path) -> anyhow::Result<infragraph_sink_sqlite::Store> {
        Ok(infragraph_sink_sqlite::Store::open_existing(path)?)
    }
}

fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

fn plugin_settings(mut table: toml::Table) -> anyhow::Result<(PluginSettings, Option<String>)> {
    let mut out = PluginSettings::default();
    let pin = match table.remove("sha256") {
        Some(toml::Value::String(s)) => Some(s),
        Some(_) => bail!("`sha256` must be a hex string"),
        None => None,
    };
    if let Some(files) = table.remove("secret_files") {
        let files: BTreeMap<String, PathBuf> = files
            .try_into()
            .context("`secret_files` must map credential names to file paths")?;
        out.secret_files = files;
    }
    if let Some(limits) = table.remove("limits") {
        out.limits = limits.try_into().context("invalid `limits`")?;
    }
    for (key, value) in table {
        let v = match value {
            toml::Value::String(s) => ConfigValue::Text(s),
            toml::Value::Integer(i) => ConfigValue::Text(i.to_string()),
            toml::Value::Boolean(b) => ConfigValue::Text(b.to_string()),
            toml::Value::Array(items) => ConfigValue::TextList(
                items
                    .into_iter()
                    .map(|i| match i {
                        toml::Value::String(s) => Ok(s),
                        other => bail!("`{key}` must be a list of strings, found {other}"),
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
            other => bail!(
                "`{key}` must be a string or a list of strings, found {}",
                other.type_str()
            ),
        };
        out.config.insert(key, v);
    }
    Ok((out, pin))
}

fn data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(|d| PathBuf::from(d).join("infragraph"))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/infragraph"))
        })
}

fn cache_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(|d| PathBuf::from(d).join("infragraph"))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/infragraph")))
}
