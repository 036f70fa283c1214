//! `Settings`: the validated result of the config file and the environment, which every
//! front end reads instead of raw TOML. Precedence, lowest first: built-in defaults, the
//! config file, the environment, then what the front end was told (flags), which it
//! passes to the methods here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use infragraph_core::ConfigValue;
use infragraph_runtime::{
    Catalog, Consent, Embedded, EmbeddedPlugin, Limits, Runtime, SecretSource,
};
use serde::Deserialize;

use crate::error::Error;
use crate::people::PeopleRules;

/// The config file's default name, looked for in the working directory.
const DEFAULT_CONFIG: &str = "infragraph.toml";

/// Everything the config file and the environment say, checked.
pub struct Settings {
    /// Where plugins are looked for, and the operator's sha256 pins.
    pub catalog: Catalog,
    /// Batching and concurrency of syncs.
    pub engine: infragraph_engine::Options,
    /// Where compiled plugin code is cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Limits of every plugin, before its own `[plugins.<name>.limits]`.
    pub limits: Limits,
    /// `[plugins.<name>]` tables.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// `[connections.<name>]` tables: named instances of a plugin, by name.
    pub connections: BTreeMap<String, ConnectionSettings>,
    /// `[sink.neo4j]`, overridden by what the front end was told.
    pub(crate) neo4j: Neo4jFile,
    /// `[people]`: which accounts are one person; `None`: no linking.
    pub people: Option<PeopleRules>,
    /// `[trust] keys`: the minisign public keys whose signatures `plugins install`
    /// accepts.
    pub trusted_keys: Vec<String>,
    /// The config file read, or the one `plugins install` would create
    /// (`./infragraph.toml`).
    pub config_path: PathBuf,
}

/// A `[connections.<name>]` table: one account of a plugin, with its own config values,
/// credential sources and limits over the plugin's `[plugins.<plugin>]` table.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// The plugin it is an instance of.
    pub plugin: String,
    /// Its own values, sources and limits (the plugin table's are merged in by
    /// [`Settings::connection`]).
    pub own: PluginSettings,
    /// At most this many connections of its plugin sync at once
    /// (`[plugins.<plugin>.limits] connections`); `None`: only the global bound.
    pub plugin_concurrency: Option<usize>,
}

/// The `[plugins.<name>]` table.
#[derive(Debug, Default, Clone)]
pub struct PluginSettings {
    /// Config values (credentials are refused when the job is assembled).
    pub config: BTreeMap<String, ConfigValue>,
    /// Where each credential's value comes from, by credential name:
    /// `[plugins.<name>.secrets]`, and the older `secret_files` (each a file source).
    /// The operator's consent: a plugin that is not built in gets no other credential.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Limits of this plugin, over the global ones.
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
    connections: BTreeMap<String, toml::Table>,
    #[serde(default)]
    sink: SinkFile,
    people: Option<toml::Table>,
    #[serde(default)]
    trust: TrustFile,
}

/// `[trust]`: whose signatures make a plugin installable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    /// minisign public keys, base64 (the second line of a `.pub` file).
    #[serde(default)]
    keys: Vec<String>,
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
pub(crate) struct Neo4jFile {
    pub(crate) uri: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) database: Option<String>,
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
    property_value_kib: Option<usize>,
    fetches: Option<u64>,
    response_mib: Option<u64>,
    responses_held_mib: Option<u64>,
    request_timeout_seconds: Option<u64>,
    retries: Option<u32>,
    per_host_concurrency: Option<usize>,
    per_host_rate: Option<f64>,
    /// Under `[plugins.<name>.limits]`: connections of that plugin synced at once.
    connections: Option<usize>,
}

impl LimitsFile {
    /// The first value of this table that no run could work under: a zero where at least
    /// one is needed, which users write meaning "no limit" and would get every run (or
    /// every connection) stopped instead; a rate that is not a positive number.
    fn check(&self) -> Result<(), String> {
        let counts = [
            ("memory_mib", self.memory_mib.map(|v| v as u64)),
            ("sync_seconds", self.sync_seconds),
            ("records", self.records),
            (
                "property_value_kib",
                self.property_value_kib.map(|v| v as u64),
            ),
            ("fetches", self.fetches),
            ("response_mib", self.response_mib),
            ("responses_held_mib", self.responses_held_mib),
            ("request_timeout_seconds", self.request_timeout_seconds),
            (
                "per_host_concurrency",
                self.per_host_concurrency.map(|v| v as u64),
            ),
            ("connections", self.connections.map(|v| v as u64)),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == Some(0)) {
            return Err(at_least_one(name));
        }
        match self.per_host_rate {
            Some(r) if !(r.is_finite() && r > 0.0) => Err(format!(
                "`per_host_rate = {r}`: give a positive number of requests per second, or \
                 leave it out for no rate limit"
            )),
            _ => Ok(()),
        }
    }

    /// These limits with every one `other` sets replaced.
    fn over(&self, other: &LimitsFile) -> LimitsFile {
        macro_rules! pick {
            ($($f:ident),*) => { LimitsFile { $($f: other.$f.or(self.$f)),* } };
        }
        pick!(
            memory_mib,
            sync_seconds,
            records,
            property_value_kib,
            fetches,
            response_mib,
            responses_held_mib,
            request_timeout_seconds,
            retries,
            per_host_concurrency,
            per_host_rate,
            connections
        )
    }

    /// Sets in `l` what this table sets.
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
        if let Some(v) = self.property_value_kib {
            l.property_value_bytes = v << 10;
        }
        if let Some(v) = self.fetches {
            l.fetches = v;
        }
        if let Some(v) = self.response_mib {
            l.fetch.max_body_bytes = v << 20;
        }
        if let Some(v) = self.responses_held_mib {
            l.fetch.max_held_bytes = v << 20;
        }
        if let Some(v) = self.request_timeout_seconds {
            l.fetch.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.retries {
            l.fetch.max_retries = v;
        }
        if let Some(v) = self.per_host_concurrency {
            l.fetch.per_host_concurrency = v;
        }
        if let Some(v) = self.per_host_rate {
            l.fetch.per_host_rate = Some(v);
        }
    }
}

impl Settings {
    /// Reads the config file `config`, or `./infragraph.toml` when none is named and it
    /// exists, and the environment.
    pub fn load(config: Option<&Path>) -> Result<Settings, Error> {
        let path = match config {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
        };
        let file = match &path {
            Some(p) => read_file(p)?,
            None => File::default(),
        };
        // The file as errors name it.
        let shown = path.as_deref().unwrap_or(Path::new("?")).display();
        if file.sink.neo4j.password.is_some() {
            return Err(Error::Config(format!(
                "[sink.neo4j] in {shown}: `password` is not read from the config file; set \
                 the {NEO4J_PASSWORD} environment variable instead"
            )));
        }
        file.limits
            .check()
            .map_err(|e| Error::Config(format!("[limits] in {shown}: {e}")))?;
        for (key, value) in [
            ("concurrency", file.concurrency),
            ("batch_size", file.batch_size),
        ] {
            if value == Some(0) {
                return Err(Error::Config(format!("{shown}: {}", at_least_one(key))));
            }
        }
        let mut limits = Limits::default();
        file.limits.apply(&mut limits);
        let mut plugins = BTreeMap::new();
        let mut pins = BTreeMap::new();
        for (name, table) in file.plugins {
            let where_ = format!("[plugins.{name}] in {shown}");
            let (p, pin) =
                plugin_settings(table).map_err(|e| Error::Config(format!("{where_}: {e}")))?;
            if let Some(pin) = pin {
                pins.insert(name.clone(), pin);
            }
            plugins.insert(name, p);
        }
        let mut connections = BTreeMap::new();
        for (name, mut table) in file.connections {
            let where_ = format!("[connections.{name}] in {shown}");
            let bad = |e: String| Error::Config(format!("{where_}: {e}"));
            check_connection_name(&name).map_err(bad)?;
            let plugin = match table.remove("plugin") {
                Some(toml::Value::String(p)) if !p.is_empty() => p,
                Some(_) => return Err(bad("`plugin` must be a plugin's name".into())),
                None => {
                    return Err(bad(
                        "`plugin` is missing: name the plugin this connection is an instance \
                         of, e.g. `plugin = \"scaleway\"`"
                            .into(),
                    ));
                }
            };
            let (own, pin) = plugin_settings(table).map_err(bad)?;
            if pin.is_some() {
                return Err(bad(format!(
                    "`sha256` pins a plugin, not a connection: put it under [plugins.{plugin}]"
                )));
            }
            let plugin_concurrency = plugins
                .get(&plugin)
                .and_then(|p: &PluginSettings| p.limits.connections);
            connections.insert(
                name,
                ConnectionSettings {
                    plugin,
                    own,
                    plugin_concurrency,
                },
            );
        }
        let people = match file.people {
            Some(t) => Some(
                PeopleRules::from_table(t)
                    .map_err(|e| Error::Config(format!("[people] in {shown}: {e}")))?,
            ),
            None => None,
        };
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
        let embedded = embedded_plugins(cache_dir.as_deref());
        let mut engine = infragraph_engine::Options::default();
        if let Some(n) = file.batch_size {
            engine.batch_size = n;
        }
        if let Some(n) = file.concurrency {
            engine.concurrency = n;
        }
        Ok(Settings {
            catalog: Catalog {
                embedded,
                builtin,
                user,
                pins,
            },
            engine,
            cache_dir,
            limits,
            plugins,
            connections,
            neo4j: file.sink.neo4j,
            people,
            trusted_keys: file.trust.keys,
            config_path: path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        })
    }

    /// The settings of connection `name` as it runs: the plugin's `[plugins.<plugin>]`
    /// values, sources and limits, with the connection's own over them.
    pub fn connection(&self, name: &str) -> Option<(String, PluginSettings)> {
        let c = self.connections.get(name)?;
        let mut merged = self.plugins.get(&c.plugin).cloned().unwrap_or_default();
        merged.config.extend(c.own.config.clone());
        merged.secrets.extend(c.own.secrets.clone());
        merged.limits = merged.limits.over(&c.own.limits);
        Some((c.plugin.clone(), merged))
    }

    /// The operator's consent to the credentials of plugin `name`: the sources its
    /// `[plugins.<name>.secrets]` names and the build its pin allows.
    pub fn consent(&self, name: &str) -> Consent {
        Consent {
            connection: None,
            secrets: self
                .plugins
                .get(name)
                .map(|p| p.secrets.clone())
                .unwrap_or_default(),
            pin: self.catalog.pins.get(name).cloned(),
        }
    }

    /// A plugin runtime with this configuration's code cache.
    pub fn runtime(&self) -> Result<Runtime, Error> {
        Ok(Runtime::new(self.cache_dir.clone())?)
    }
}

/// A connection's name is part of its address (`plugin/name`), of folders (`--record`)
/// and of the `--shard` split: letters, digits, `-`, `_` and `.` only.
fn check_connection_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a connection name: use letters, digits, `-`, `_` and `.` \
             (it is part of the address `plugin/{name}` and of folder names)"
        ))
    }
}

fn read_file(path: &Path) -> Result<File, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let e = suggest_field(&e.to_string());
        Error::Config(format!("config file {} is not valid: {e}", path.display()))
    })
}

/// Why `key = 0` is refused.
fn at_least_one(key: &str) -> String {
    format!(
        "`{key} = 0`: give at least 1 (0 does not mean \"no limit\"; leave the key out for \
         the default)"
    )
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with the field likely meant.
fn suggest_field(message: &str) -> String {
    let unknown = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field);
    let expected: Vec<&str> = message
        .split_once("expected one of ")
        .or_else(|| message.split_once("expected "))
        .map(|(_, list)| {
            list.lines()
                .next()
                .unwrap_or_default()
                .split(", ")
                .map(|f| f.trim().trim_matches('`'))
                .collect()
        })
        .unwrap_or_default();
    match unknown.and_then(|f| infragraph_runtime::closest(f, &expected)) {
        Some(meant) => format!("{}; did you mean `{meant}`?", message.trim_end()),
        None => message.to_string(),
    }
}

fn plugin_settings(mut table: toml::Table) -> Result<(PluginSettings, Option<String>), String> {
    let mut out = PluginSettings::default();
    let pin = match table.remove("sha256") {
        Some(toml::Value::String(s)) => Some(s),
        Some(_) => return Err("`sha256` must be a hex string".into()),
        None => None,
    };
    if let Some(secrets) = table.remove("secrets") {
        let toml::Value::Table(secrets) = secrets else {
            return Err("`secrets` must be a table of credential names, e.g. \
                        `secrets.api_token = { env = \"VAR\" }`"
                .into());
        };
        for (name, source) in secrets {
            // Never quote what is there: an operator who wrote the secret itself in the
            // file must not find it in an error message or a log.
            let shape = format!(
                "`secrets.{name}` must be `{{ env = \"VAR\" }}` or `{{ file = \"/path\" }}`, \
                 naming where its value comes from"
            );
            let source: SecretSource = match source {
                toml::Value::Table(_) => source.try_into().map_err(|_| shape)?,
                _ => {
                    return Err(format!(
                        "{shape}; the config file never holds a secret's value"
                    ));
                }
            };
            out.secrets.insert(name, source);
        }
    }
    // The older spelling of `secrets.<name> = { file = "…" }`, still read: a file the
    // operator named for a credential is as much consent as the newer form.
    if let Some(files) = table.remove("secret_files") {
        let files: BTreeMap<String, PathBuf> = files
            .try_into()
            .map_err(|e| format!("`secret_files` must map credential names to file paths: {e}"))?;
        for (name, path) in files {
            if out.secrets.contains_key(&name) {
                return Err(format!(
                    "credential {name:?} is named both in `secrets` and in `secret_files`; \
                     keep one (`secrets.{name} = {{ file = \"…\" }}` is the newer form)"
                ));
            }
            out.secrets.insert(name, SecretSource::File(path));
        }
    }
    if let Some(limits) = table.remove("limits") {
        out.limits = limits
            .try_into()
            .map_err(|e| format!("invalid `limits`: {}", suggest_field(&e.to_string())))?;
        out.limits
            .check()
            .map_err(|e| format!("invalid `limits`: {e}"))?;
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
                        other => Err(format!("`{key}` must be a list of strings, found {other}")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return Err(format!(
                    "`{key}` must be a string or a list of strings, found {}",
                    other.type_str()
                ));
            }
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

/// The plugins the binary carries, written out beside the compiled-code cache (in the
/// system's temporary directory without one), under the digest of the set.
fn embedded_plugins(cache_dir: Option<&Path>) -> Option<Embedded> {
    if infragraph_builtins::PLUGINS.is_empty() {
        return None;
    }
    let base = match cache_dir {
        Some(d) => d.join("embedded"),
        // Per user: a directory of a shared temporary space must not be another's.
        None => std::env::temp_dir().join(format!(
            "infragraph-embedded-{}",
            infragraph_core::private::user_id()
        )),
    };
    let plugins = infragraph_builtins::PLUGINS
        .iter()
        .map(|p| EmbeddedPlugin {
            name: p.name,
            sha256: p.sha256,
            wasm: p.wasm,
        })
        .collect();
    Some(Embedded::new(
        base.join(infragraph_builtins::DIGEST),
        plugins,
    ))
}

fn cache_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(|d| PathBuf::from(d).join("infragraph"))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/infragraph")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_gets_the_one_likely_meant() {
        assert_eq!(
            suggest_field("unknown field `memory_mb`, expected one of `memory_mib`, `records`"),
            "unknown field `memory_mb`, expected one of `memory_mib`, `records`; did you mean `memory_mib`?"
        );
        assert_eq!(
            suggest_field("unknown field `zzz`, expected `uri`"),
            "unknown field `zzz`, expected `uri`"
        );
    }

    #[test]
    fn limits_in_the_config_reach_the_runtime_limits() {
        let file: LimitsFile =
            toml::from_str("property_value_kib = 64\nresponses_held_mib = 32\nrecords = 7\n")
                .unwrap();
        let mut l = Limits::default();
        file.apply(&mut l);
        assert_eq!(l.property_value_bytes, 64 << 10);
        assert_eq!(l.fetch.max_held_bytes, 32 << 20);
        assert_eq!(l.records, 7);
        assert!(toml::from_str::<LimitsFile>("no_such_limit = 1").is_err());
    }

    fn plugin(text: &str) -> Result<PluginSettings, String> {
        plugin_settings(toml::from_str(text).unwrap()).map(|(p, _)| p)
    }

    #[test]
    fn a_limit_of_zero_is_refused_naming_its_key_and_what_to_write() {
        for text in [
            "fetches = 0",
            "per_host_concurrency = 0",
            "connections = 0",
            "sync_seconds = 0",
            "memory_mib = 0",
            "request_timeout_seconds = 0",
        ] {
            let file: LimitsFile = toml::from_str(text).unwrap();
            let err = file.check().expect_err(text);
            assert!(
                err.contains(&format!("`{text}`")) && err.contains("at least 1"),
                "{err}"
            );
        }
        for rate in ["0", "-1.5", "nan", "inf"] {
            let file: LimitsFile = toml::from_str(&format!("per_host_rate = {rate}")).unwrap();
            let err = file.check().expect_err(rate);
            assert!(err.contains("positive number"), "{err}");
        }
        let fine: LimitsFile =
            toml::from_str("retries = 0\nper_host_rate = 0.5\nfetches = 1\n").unwrap();
        assert_eq!(
            fine.check(),
            Ok(()),
            "no retries is a choice, not a mistake"
        );
        let err = plugin("[limits]\nper_host_concurrency = 0\n").unwrap_err();
        assert!(
            err.contains("invalid `limits`: `per_host_concurrency = 0`"),
            "{err}"
        );
    }

    #[test]
    fn secrets_name_a_source_and_secret_files_are_file_sources() {
        let p = plugin(
            "[secrets]\ntoken = { env = \"MY_TOKEN\" }\nkey = { file = \"/run/key\" }\n\
             [secret_files]\npassword = \"/run/pw\"\n",
        )
        .unwrap();
        assert_eq!(p.secrets["token"], SecretSource::Env("MY_TOKEN".into()));
        assert_eq!(p.secrets["key"], SecretSource::File("/run/key".into()));
        assert_eq!(p.secrets["password"], SecretSource::File("/run/pw".into()));
    }

    #[test]
    fn a_secret_written_in_the_config_is_refused_without_quoting_it() {
        for text in [
            "[secrets]\ntoken = \"hunter2-in-the-file\"\n",
            "[secrets]\ntoken = { value = \"hunter2-in-the-file\" }\n",
            "[secrets]\ntoken = { env = \"A\", file = \"hunter2-in-the-file\" }\n",
        ] {
            let err = plugin(text).expect_err(text);
            assert!(err.contains("`secrets.token` must be"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err = plugin("secrets.t = { file = \"/a\" }\nsecret_files.t = \"/b\"\n").unwrap_err();
        assert!(err.contains("both"), "{err}");
    }
}
