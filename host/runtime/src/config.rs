//! What a plugin is given: its config resolved from the manifest's defaults, the config
//! file and the environment; its credentials from the sources the operator consented to.
//!
//! Config precedence, lowest first: the manifest's default, the config file, the
//! environment variable the manifest names (read for a built-in plugin only). Secrets
//! never come from the config file itself.
//!
//! Credentials (issue 20, point 1): a manifest names an environment variable for each,
//! and a plugin that names `SCW_SECRET_KEY` for a host of its own would get another
//! provider's key if the host simply read it. So only a built-in plugin, shipped with
//! infragraph and reviewed with it, has the variables its manifest names read; a plugin
//! dropped into a plugin directory or given by path gets a credential only from a source
//! the operator named for it (`[plugins.<name>.secrets]`, a [`Consent`]), and, with a
//! pin, only while it is the pinned build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use infragraph_core::{ConfigType, ConfigValue, Credential, Manifest};
use infragraph_fetch::Secrets;

use crate::catalog::Source;

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
/// `[plugins.<name>]` table (already parsed); `env` looks up environment variables, which
/// are read only for a built-in plugin (`source`): a config value is handed to the guest,
/// so a dropped-in plugin naming `AWS_SECRET_ACCESS_KEY` as a config key's variable would
/// read the secret itself.
pub fn resolve_config(
    manifest: &Manifest,
    source: Source,
    file: &BTreeMap<String, ConfigValue>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, ConfigValue)>, ConfigError> {
    let section = format!("plugins.{}", manifest.name);
    config_from(manifest, source.is_builtin(), &section, file, env)
}

/// The config of named connection `connection` of the plugin of `manifest`: every value
/// from its table (`file`, with the plugin's own table's values under it), none from the
/// environment variables the manifest names, whoever built the plugin. Two connections
/// of one plugin reading the same variables would be the same account twice.
pub fn resolve_connection_config(
    manifest: &Manifest,
    connection: &str,
    file: &BTreeMap<String, ConfigValue>,
) -> Result<Vec<(String, ConfigValue)>, ConfigError> {
    let section = format!("connections.{connection}");
    config_from(manifest, false, &section, file, &|_| None)
}

/// `builtin`: whether the manifest's variables are read; `section`: the config table
/// the values come from, for messages.
fn config_from(
    manifest: &Manifest,
    builtin: bool,
    section: &str,
    file: &BTreeMap<String, ConfigValue>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, ConfigValue)>, ConfigError> {
    let err = |what: String| ConfigError {
        plugin: manifest.name.clone(),
        what,
    };
    for key in file.keys() {
        if let Some(c) = manifest.credentials.iter().find(|c| &c.name == key) {
            return Err(err(format!(
                "{key:?} is a credential and cannot be set in the config file; name where its \
                 value comes from instead, under [{section}.secrets]: `{key} = {{ env = \"{}\" }}` \
                 or `{key} = {{ file = \"/path/to/it\" }}`",
                c.env
            )));
        }
        if manifest.config_key(key).is_none() {
            let known: Vec<_> = manifest.config.iter().map(|k| k.name.as_str()).collect();
            return Err(err(format!(
                "unknown config key {key:?}{}; it takes: {}",
                crate::closest(key, &known)
                    .map(|k| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default(),
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
            .filter(|_| builtin)
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
                let how = match key.env.as_ref().filter(|_| builtin) {
                    Some(var) => format!(
                        "set {var} or `{}` under [{section}] in the config file",
                        key.name
                    ),
                    None => format!("set `{}` under [{section}] in the config file", key.name),
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

/// Where the operator says a credential's value comes from: `{ env = "VAR" }` or
/// `{ file = "/path" }` under `[plugins.<name>.secrets]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable of the host.
    Env(String),
    /// A file; its value is the content with trailing line breaks removed.
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "the environment variable {var}"),
            SecretSource::File(path) => write!(f, "the file {}", path.display()),
        }
    }
}

/// The operator's consent to one plugin's credentials: where each comes from, and the
/// build it was given for.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    /// Where each credential comes from, by credential name (`[plugins.<name>.secrets]`,
    /// and the older `secret_files`).
    pub secrets: BTreeMap<String, SecretSource>,
    /// The sha256 the config pins the plugin to (`sha256` under `[plugins.<name>]`): the
    /// consent holds for that build only.
    pub pin: Option<String>,
    /// The named connection (`[connections.<name>]`) this consent is for: its credentials
    /// come only from the sources named, never from the manifest's variables, even for a
    /// built-in plugin. `None`: the plugin's implicit default connection.
    pub connection: Option<String>,
}

/// Where a credential's value would come from, as `plugins inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A source the operator named in the config.
    Configured(SecretSource),
    /// The variable the manifest names: only a built-in plugin's is read.
    Manifest(String),
    /// Nowhere: a plugin that is not built in gets only what the config names for it.
    NotConfigured,
    /// Nowhere: the config pins another build of this plugin.
    OtherBuild {
        /// The pinned sha256.
        pinned: String,
    },
}

impl Consent {
    /// Where `credential` of a plugin found at `source`, whose file has `sha256`, would
    /// get its value.
    pub fn origin(&self, credential: &Credential, source: Source, sha256: &str) -> Origin {
        if let Some(pin) = &self.pin
            && !pin.eq_ignore_ascii_case(sha256)
        {
            return Origin::OtherBuild {
                pinned: pin.clone(),
            };
        }
        match self.secrets.get(&credential.name) {
            Some(s) => Origin::Configured(s.clone()),
            None if source.is_builtin() && self.connection.is_none() => {
                Origin::Manifest(credential.env.clone())
            }
            None => Origin::NotConfigured,
        }
    }

    /// The config table these sources are named in: `plugins.<name>`, or
    /// `connections.<name>` for a named connection.
    pub fn section(&self, plugin: &str) -> String {
        match &self.connection {
            Some(c) => format!("connections.{c}"),
            None => format!("plugins.{plugin}"),
        }
    }
}

/// Resolves the credentials of the plugin of `manifest`, found at `source`, whose file
/// has `sha256`, from the sources `consent` names (see [`Consent::origin`]). A missing
/// required one is an error saying what to set or which config lines to add; a missing
/// optional one is absent, and the plugin learns so when a request needs it.
pub fn resolve_secrets(
    manifest: &Manifest,
    config: &[(String, ConfigValue)],
    source: Source,
    sha256: &str,
    consent: &Consent,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secrets, ConfigError> {
    let err = |what: String| ConfigError {
        plugin: manifest.name.clone(),
        what,
    };
    let mut secrets = Secrets::new();
    for name in consent.secrets.keys() {
        if !manifest.credentials.iter().any(|c| &c.name == name) {
            let known: Vec<_> = manifest
                .credentials
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(err(format!(
                "[{}.secrets] names {name:?}, which is not a credential of this \
                 plugin{}; its credentials are: {}",
                consent.section(&manifest.name),
                crate::closest(name, &known)
                    .map(|k| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    for c in &manifest.credentials {
        if let Some((key, wanted)) = &c.only_when {
            let holds = config.iter().any(|(k, v)| {
                k == key
                    && matches!(v, ConfigValue::Text(t) if t.trim().eq_ignore_ascii_case(wanted))
            });
            if !holds {
                // Not read, so a value left set for the other way of signing in is never
                // sent; a placeholder naming it is told why.
                secrets.mark_absent(&c.name, format!("it applies only when {key} is {wanted}"));
                continue;
            }
        }
        let origin = consent.origin(c, source, sha256);
        let value = match &origin {
            Origin::Configured(SecretSource::File(path)) => Some(
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
            Origin::Configured(SecretSource::Env(var)) | Origin::Manifest(var) => {
                env(var).filter(|v| !v.is_empty())
            }
            // Never reached through the catalog, which refuses to load another build of a
            // pinned plugin; checked here too so that no path hands consent to it.
            Origin::OtherBuild { pinned } => {
                return Err(err(format!(
                    "its file has sha256 {sha256}, but the config pins {pinned}; credentials \
                     are given to the pinned build only. If you trust this file, update the pin"
                )));
            }
            Origin::NotConfigured => None,
        };
        match (value, origin) {
            (Some(v), Origin::Configured(s)) => {
                secrets
                    .insert(&c.name, v)
                    .map_err(|short| err(format!("{short} (it came from {s})")))?;
                if s != SecretSource::Env(c.env.clone()) {
                    secrets.note_origin(&c.name, s.to_string());
                }
            }
            (Some(v), _) => secrets.insert(&c.name, v).map_err(|short| {
                err(format!(
                    "{short} (it came from the environment variable {})",
                    c.env
                ))
            })?,
            (None, origin) if !c.required => {
                secrets.mark_absent(&c.name, absent(consent, manifest, c, &origin))
            }
            (None, Origin::Manifest(var)) => {
                return Err(err(format!(
                    "credential {:?} is missing: set the environment variable {var} ({})",
                    c.name, c.description
                )));
            }
            (None, Origin::Configured(s)) => {
                return Err(err(format!(
                    "credential {:?} is missing: the config takes it from {s}, which is not \
                     set ({})",
                    c.name, c.description
                )));
            }
            (None, _) => return Err(err(not_configured(consent, manifest, c))),
        }
    }
    Ok(secrets)
}

/// What a request needing optional credential `c`, absent, is told: what to set, or
/// that the operator named no source for it.
fn absent(consent: &Consent, manifest: &Manifest, c: &Credential, origin: &Origin) -> String {
    match origin {
        Origin::Manifest(var) | Origin::Configured(SecretSource::Env(var)) => {
            format!("set the environment variable {var}")
        }
        Origin::Configured(SecretSource::File(path)) => {
            format!("the file {} is empty", path.display())
        }
        Origin::NotConfigured | Origin::OtherBuild { .. } => format!(
            "the config names no source for it; {} gets only those under [{}.secrets] \
             (e.g. `{} = {{ env = \"…\" }}`)",
            who(consent),
            consent.section(&manifest.name),
            c.name
        ),
    }
}

/// Why a required credential of a plugin that is not built in, or of a named connection,
/// has no value, with the config lines that would give it one. The manifest's variable is
/// only a suggestion: the operator decides what this plugin may hold.
fn not_configured(consent: &Consent, manifest: &Manifest, c: &Credential) -> String {
    let who = who(consent);
    let mut who_upper = who.clone();
    who_upper[..1].make_ascii_uppercase();
    format!(
        "credential {:?} ({}) is not configured. {who_upper} gets only the credentials the \
         config names a source for, and it sends this one to {}. To give it one, add to the \
         config file:\n    [{}.secrets]\n    {} = {{ env = \"{}\" }}   # or {{ file = \
         \"/path/to/it\" }}\n(the variable is the one its manifest suggests; check that what \
         it holds is meant for those hosts)",
        c.name,
        c.description,
        if c.hosts.is_empty() {
            "no host".into()
        } else {
            c.hosts.join(", ")
        },
        consent.section(&manifest.name),
        c.name,
        c.env
    )
}

/// Who gets only the configured sources, in a message.
fn who(consent: &Consent) -> String {
    match &consent.connection {
        Some(name) => format!("a named connection ({name})"),
        None => "a plugin that is not built in".into(),
    }
}

#[cfg(test)]
mod tests {
    use infragraph_core::{CredentialUse, Schema};

    use super::*;

    const SHA: &str = "ab12";

    fn manifest(required: bool) -> Manifest {
        Manifest {
            name: "dropin".into(),
            version: "1".into(),
            description: String::new(),
            schema: Schema::default(),
            hosts: vec!["api.example.test".into()],
            credentials: vec![Credential {
                name: "token".into(),
                env: "SCW_SECRET_KEY".into(),
                description: "An API token".into(),
                hosts: vec!["api.example.test".into()],
                use_: CredentialUse::Bearer,
                required,
                only_when: None,
            }],
            config: Vec::new(),
        }
    }

    fn env(var: &str) -> Option<String> {
        match var {
            "SCW_SECRET_KEY" => Some("scw-secret-value".into()),
            "GRANTED" => Some("granted-value".into()),
            _ => None,
        }
    }

    /// Which value `secrets` holds for `token`, told by what it scrubs.
    fn token(secrets: &Secrets) -> Option<&'static str> {
        ["scw-secret-value", "granted-value"]
            .into_iter()
            .find(|v| secrets.redact(v) == "{secret:token}")
    }

    fn consent(secrets: &[(&str, SecretSource)], pin: Option<&str>) -> Consent {
        Consent {
            connection: None,
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            pin: pin.map(String::from),
        }
    }

    /// Issue 20, point 1: the variable a manifest names is read for a built-in plugin
    /// only; one dropped in or given by path gets nothing unless the config says where.
    #[test]
    fn only_a_built_in_plugin_reads_the_variable_its_manifest_names() {
        let m = manifest(false);
        let none = Consent::default();
        let got = resolve_secrets(&m, &[], Source::BuiltIn, SHA, &none, &env).unwrap();
        assert_eq!(token(&got), Some("scw-secret-value"));
        for source in [Source::User, Source::Path] {
            let got = resolve_secrets(&m, &[], source, SHA, &none, &env).unwrap();
            assert_eq!(token(&got), None, "{source}");
            let granted = consent(&[("token", SecretSource::Env("GRANTED".into()))], None);
            let got = resolve_secrets(&m, &[], source, SHA, &granted, &env).unwrap();
            assert_eq!(token(&got), Some("granted-value"), "{source}");
        }
    }

    #[test]
    fn a_required_credential_not_configured_names_the_config_lines_to_add() {
        let m = manifest(true);
        let err = resolve_secrets(&m, &[], Source::User, SHA, &Consent::default(), &env)
            .expect_err("refused");
        let text = err.to_string();
        for part in [
            "credential \"token\"",
            "not configured",
            "[plugins.dropin.secrets]",
            "token = { env = \"SCW_SECRET_KEY\" }",
            "{ file = ",
            "api.example.test",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        assert!(!text.contains("scw-secret-value"), "{text}");
    }

    #[test]
    fn a_pin_binds_the_consent_to_its_build() {
        let m = manifest(false);
        let granted = consent(
            &[("token", SecretSource::Env("GRANTED".into()))],
            Some("AB12"),
        );
        let got = resolve_secrets(&m, &[], Source::User, SHA, &granted, &env).unwrap();
        assert_eq!(token(&got), Some("granted-value"), "the pinned build");
        let err = resolve_secrets(&m, &[], Source::User, "ffff", &granted, &env)
            .expect_err("another build gets nothing");
        assert!(err.to_string().contains("pins AB12"), "{err}");
        assert_eq!(
            granted.origin(&m.credentials[0], Source::BuiltIn, "ffff"),
            Origin::OtherBuild {
                pinned: "AB12".into()
            }
        );
    }

    #[test]
    fn a_configured_source_must_name_a_credential_and_exist() {
        let m = manifest(true);
        let unknown = consent(&[("tokn", SecretSource::Env("GRANTED".into()))], None);
        let err = resolve_secrets(&m, &[], Source::User, SHA, &unknown, &env).unwrap_err();
        assert!(err.to_string().contains("\"tokn\""), "{err}");
        let unset = consent(&[("token", SecretSource::Env("UNSET".into()))], None);
        let err = resolve_secrets(&m, &[], Source::BuiltIn, SHA, &unset, &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("takes it from the environment variable UNSET"),
            "{err}"
        );
    }

    #[test]
    fn a_dropped_in_plugin_reads_no_config_variable() {
        let mut m = manifest(false);
        m.config.push(infragraph_core::ConfigKey {
            name: "region".into(),
            description: "Where".into(),
            ty: ConfigType::Text,
            env: Some("SCW_SECRET_KEY".into()),
            required: false,
            default: None,
        });
        let file = BTreeMap::new();
        let got = resolve_config(&m, Source::BuiltIn, &file, &env).unwrap();
        assert_eq!(got.len(), 1);
        let got = resolve_config(&m, Source::User, &file, &env).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}
