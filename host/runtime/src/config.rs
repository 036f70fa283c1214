//! What a plugin is given: its config resolved from the manifest's defaults, the config
//! file and the environment; its credentials from the environment or files.
//!
//! Precedence, lowest first: the manifest's default, the config file, the environment
//! variable the manifest names. Secrets never come from the config file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use infragraph_core::{ConfigType, ConfigValue, Manifest};
use infragraph_fetch::Secrets;

/// A plugin's config or credentials could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin:?}: {what}")]
pub struct ConfigError {
    /// The plugin.
    pub plugin: String,
    /// What is wrong and what to do.
    pub what: String,
}

/// Resolves the plugin's config. `file` holds the values from the config file's
/// `[plugins.<name>]` table (already parsed); `env` looks up environment variables.
pub fn resolve_config(
    manifest: &Manifest,
    file: &BTreeMap<String, ConfigValue>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, ConfigValue)>, ConfigError> {
    let err = |what: String| ConfigError {
        plugin: manifest.name.clone(),
        what,
    };
    for key in file.keys() {
        if manifest.credentials.iter().any(|c| &c.name == key) {
            return Err(err(format!(
                "{key:?} is a credential and cannot be set in the config file; set its \
                 environment variable or a file in `secret_files`"
            )));
        }
        if manifest.config_key(key).is_none() {
            let known: Vec<_> = manifest.config.iter().map(|k| k.name.as_str()).collect();
            return Err(err(format!(
                "unknown config key {key:?}; it takes: {}",
                if known.is_empty() {
                    "no keys".into()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut out = Vec::new();
    for key in &manifest.config {
        let from_env = key
            .env
            .as_deref()
            .and_then(|var| env(var).map(|v| (var, v)));
        let value = match from_env {
            Some((_, v)) if key.ty == ConfigType::TextList => Some(ConfigValue::TextList(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            )),
            Some((_, v)) => Some(ConfigValue::Text(v)),
            None => file.get(&key.name).cloned().or_else(|| key.default.clone()),
        };
        let value = match (value, key.ty) {
            (Some(ConfigValue::Text(s)), ConfigType::TextList) => {
                Some(ConfigValue::TextList(vec![s]))
            }
            (Some(ConfigValue::TextList(_)), ConfigType::Text | ConfigType::Endpoint) => {
                return Err(err(format!(
                    "config key {:?} takes one value, not a list",
                    key.name
                )));
            }
            (v, _) => v,
        };
        match value {
            Some(v) => {
                if key.ty == ConfigType::Endpoint {
                    check_endpoint(&key.name, &v.to_string()).map_err(err)?;
                }
                out.push((key.name.clone(), v));
            }
            None if key.required => {
                let how = match &key.env {
                    Some(var) => format!(
                        "set {var} or `{}` under [plugins.{}] in the config file",
                        key.name, manifest.name
                    ),
                    None => format!(
                        "set `{}` under [plugins.{}] in the config file",
                        key.name, manifest.name
                    ),
                };
                return Err(err(format!(
                    "config key {:?} is required ({}): {how}",
                    key.name, key.description
                )));
            }
            None => {}
        }
    }
    Ok(out)
}

fn check_endpoint(key: &str, url: &str) -> Result<(), String> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "config key {key:?} must be an http(s) URL, got {url:?}"
        ))
    }
}

/// Resolves the plugin's credentials: from the file the operator named for it in
/// `files`, else from its environment variable. A missing required one is an error
/// naming the variable.
pub fn resolve_secrets(
    manifest: &Manifest,
    files: &BTreeMap<String, PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secrets, ConfigError> {
    let err = |what: String| ConfigError {
        plugin: manifest.name.clone(),
        what,
    };
    let mut secrets = Secrets::new();
    for name in files.keys() {
        if !manifest.credentials.iter().any(|c| &c.name == name) {
            return Err(err(format!(
                "`secret_files` names {name:?}, which is not a credential of this plugin"
            )));
        }
    }
    for c in &manifest.credentials {
        let value = match files.get(&c.name) {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| {
                        err(format!(
                            "cannot read credential {:?} from {}: {e}",
                            c.name,
                            path.display()
                        ))
                    })?,
            ),
            None => env(&c.env).filter(|v| !v.is_empty()),
        };
        match value {
            Some(v) => secrets.insert(&c.name, v),
            None if c.required => {
                return Err(err(format!(
                    "credential {:?} is missing: set the environment variable {} ({})",
                    c.name, c.env, c.description
                )));
            }
            None => {}
        }
    }
    Ok(secrets)
}
