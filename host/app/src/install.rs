//! Installing a plugin someone else built, and signing one you built.
//!
//! Signatures are minisign's (ed25519, a detached `<file>.minisig`): what many operators
//! already have, and made by the `minisign` command line as well as by `infragraph
//! plugin sign`. A plugin is installed only when a key the operator trusts (`[trust]
//! keys` in the config) signed exactly its bytes, or when told `--allow-unsigned`; it is
//! copied owner-only into the user plugin directory, its signature beside it, and its
//! sha256 is pinned in the config (`[plugins.<name>] sha256`), so a file swapped later
//! is refused at load.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use infragraph_core::private;
use infragraph_runtime::{Runtime, Source};
use minisign::{KeyPair, PublicKey, SecretKeyBox, SignatureBox};
use sha2::{Digest, Sha256};

use crate::download;
use crate::error::Error;
use crate::settings::Settings;

/// A key pair written by [`keygen`].
#[derive(Debug)]
pub struct Keys {
    /// The secret key file (owner-only, not encrypted: keep it where your CI keeps
    /// secrets).
    pub secret: PathBuf,
    /// The public key file, as minisign writes it.
    pub public: PathBuf,
    /// The public key, base64: what operators put under `[trust] keys`.
    pub public_key: String,
}

/// A plugin [`install`] installed.
#[derive(Debug)]
pub struct Installed {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The sha256 pinned in the config.
    pub sha256: String,
    /// Where it was copied.
    pub path: PathBuf,
    /// The trusted key that signed it; `None` when installed unsigned.
    pub signed_by: Option<String>,
    /// The config file the pin was written to.
    pub config: PathBuf,
}

/// What [`verify`] found of one installed plugin.
#[derive(Debug)]
pub struct Verified {
    /// Its name, or its file's when it cannot be loaded.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// `None` when its pin and signature hold; otherwise why not.
    pub problem: Option<String>,
}

fn trust(what: impl Into<String>) -> Error {
    Error::Trust(what.into())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| trust(format!("{}: {e}", path.display()))
}

/// Where a component's detached signature is: `<file>.minisig`.
pub fn signature_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a new signing key pair into `dir` (`infragraph.key`, `infragraph.pub`); refuses
/// to overwrite one.
pub fn keygen(dir: &Path) -> Result<Keys, Error> {
    private::create_dir(dir).map_err(io(dir))?;
    let secret = dir.join("infragraph.key");
    let public = dir.join("infragraph.pub");
    for p in [&secret, &public] {
        if p.exists() {
            return Err(trust(format!(
                "{} exists: a key pair is not overwritten (remove it first, or use --dir)",
                p.display()
            )));
        }
    }
    let KeyPair { pk, sk } =
        KeyPair::generate_unencrypted_keypair().map_err(|e| trust(e.to_string()))?;
    let sk_box = sk
        .to_box(Some("infragraph plugin signing key"))
        .map_err(|e| trust(e.to_string()))?;
    private::write_file(&secret, sk_box.to_string().as_bytes()).map_err(io(&secret))?;
    let pk_box = pk.to_box().map_err(|e| trust(e.to_string()))?;
    std::fs::write(&public, pk_box.to_string()).map_err(io(&public))?;
    Ok(Keys {
        secret,
        public,
        public_key: pk.to_base64(),
    })
}

/// Signs the component `wasm` with the secret key in `key`, into `<wasm>.minisig`.
pub fn sign(wasm: &Path, key: &Path) -> Result<PathBuf, Error> {
    let bytes = std::fs::read(wasm).map_err(io(wasm))?;
    let text = std::fs::read_to_string(key).map_err(io(key))?;
    let sk = SecretKeyBox::from_string(&text)
        .and_then(|b| b.into_unencrypted_secret_key())
        .map_err(|e| {
            trust(format!(
                "{} is not an unencrypted minisign secret key ({e}); sign with the minisign \
                 command instead (`minisign -Sm {}`) when the key has a password",
                key.display(),
                wasm.display()
            ))
        })?;
    let name = wasm
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let comment = format!("infragraph plugin {name} sha256:{}", sha256(&bytes));
    let sig = minisign::sign(None, &sk, Cursor::new(&bytes), Some(&comment), None)
        .map_err(|e| trust(e.to_string()))?;
    let out = signature_path(wasm);
    std::fs::write(&out, sig.to_string()).map_err(io(&out))?;
    Ok(out)
}

/// The trusted key (of `keys`) whose signature `sig_text` is of `bytes`, or why none.
fn signed_by(bytes: &[u8], sig_text: &str, keys: &[String]) -> Result<String, String> {
    let sig = SignatureBox::from_string(sig_text)
        .map_err(|e| format!("the signature cannot be read: {e}"))?;
    let mut why = Vec::new();
    for key in keys {
        let pk = PublicKey::from_base64(key.trim())
            .map_err(|e| format!("[trust] key {key:?} is not a minisign public key: {e}"))?;
        match minisign::verify(&pk, &sig, Cursor::new(bytes), true, false, false) {
            Ok(()) => return Ok(key.trim().to_string()),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(if keys.is_empty() {
        "no key is trusted: add the author's public key under [trust] keys in the config".into()
    } else {
        format!(
            "no trusted key made this signature of these bytes ({})",
            why.join("; ")
        )
    })
}

/// Where a plugin to install comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on this machine; its signature is `<file>.minisig`.
    File(PathBuf),
    /// An `https://` URL (plain `http://` only from this machine); its signature is at
    /// the same URL with `.minisig` added.
    Url(String),
    /// An `oci://registry/repository:tag` reference; its signature is in the same
    /// repository ([`crate::oci`]).
    Oci(String),
}

impl Origin {
    /// Reads what a user typed: `oci://…`, `https://…` or `http://…`, or a path.
    pub fn parse(text: &str) -> Origin {
        if text.starts_with("oci://") {
            Origin::Oci(text.to_string())
        } else if text.starts_with("https://") || text.starts_with("http://") {
            Origin::Url(text.to_string())
        } else {
            Origin::File(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Url(u) | Origin::Oci(u) => f.write_str(u),
        }
    }
}

/// A component fetched for installing, and its signature if one was found.
struct Fetched {
    wasm: Vec<u8>,
    signature: Option<String>,
    /// Where the signature was looked for, for messages.
    signature_from: String,
}

/// Reads the signature a user named with `--signature`.
fn named_signature(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(io(path))
}

async fn fetch(origin: &Origin, signature: Option<&Path>) -> Result<Fetched, Error> {
    let named = |default: String| -> Result<(Option<String>, String), Error> {
        match signature {
            Some(p) => Ok((Some(named_signature(p)?), p.display().to_string())),
            None => Ok((None, default)),
        }
    };
    match origin {
        Origin::File(file) => {
            let wasm = std::fs::read(file).map_err(io(file))?;
            let sig_path = signature
                .map(Path::to_path_buf)
                .unwrap_or_else(|| signature_path(file));
            let text = match std::fs::read_to_string(&sig_path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && signature.is_none() => None,
                Err(e) => return Err(io(&sig_path)(e)),
            };
            Ok(Fetched {
                wasm,
                signature: text,
                signature_from: sig_path.display().to_string(),
            })
        }
        Origin::Url(url) => {
            let client = download::client(url)?;
            let wasm = download::get(&client, url, crate::oci::MAX_COMPONENT_BYTES as u64)
                .await?
                .ok_or_else(|| trust(format!("{url}: not found (HTTP 404)")))?;
            let default = format!("{url}.minisig");
            let (mut text, from) = named(default.clone())?;
            if signature.is_none() {
                text = download::get(&client, &default, 16 << 10)
                    .await?
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
            }
            Ok(Fetched {
                wasm,
                signature: text,
                signature_from: from,
            })
        }
        Origin::Oci(reference) => {
            let pulled = crate::oci::pull(reference).await?;
            let default = format!(
                "the registry's signature tag {}",
                crate::oci::signature_tag(&pulled.manifest_digest)
            );
            let (named_text, from) = named(default)?;
            Ok(Fetched {
                wasm: pulled.wasm,
                signature: named_text.or(pulled.signature),
                signature_from: from,
            })
        }
    }
}

/// Installs the plugin at `origin`: fetches it and its signature (`signature`, or the one
/// beside it), checks the signature against the trusted keys unless `allow_unsigned` and
/// there is none, loads it (a component of a contract this host runs, a valid manifest),
/// refuses a built-in's name, copies it and its signature into the user plugin directory,
/// and pins its sha256 in the config file. Nothing is written until every check passed.
pub async fn install(
    settings: &Settings,
    runtime: &Runtime,
    origin: &Origin,
    signature: Option<&Path>,
    allow_unsigned: bool,
) -> Result<Installed, Error> {
    let Fetched {
        wasm: bytes,
        signature: sig_text,
        signature_from,
    } = fetch(origin, signature).await?;
    let sha = sha256(&bytes);
    let signed = match &sig_text {
        Some(text) => Some(
            signed_by(&bytes, text, &settings.trusted_keys).map_err(|why| {
                trust(format!(
                    "{origin} is not installed: signature {signature_from}: {why}"
                ))
            })?,
        ),
        None if allow_unsigned => None,
        None => {
            return Err(trust(format!(
                "{origin} is not installed: it has no signature ({signature_from}); ask its \
                 author for one, or pass --allow-unsigned to install it pinned to this very build"
            )));
        }
    };
    // The runtime loads from a file: a private temporary one, so nothing reaches the
    // plugin directory before the component proved to be a plugin.
    let staging = tempfile::tempdir().map_err(|e| trust(format!("a temporary directory: {e}")))?;
    let staged = staging.path().join("plugin.wasm");
    private::write_file(&staged, &bytes).map_err(io(&staged))?;
    let plugin = runtime.load(&staged, Some(&sha)).await.map_err(|e| {
        trust(format!(
            "{origin} is not installed: {}",
            e.to_string()
                .replace(&staged.display().to_string(), "the component")
        ))
    })?;
    let m = plugin.manifest();
    if let Ok((other, source)) = settings.catalog.find(runtime, &m.name).await
        && source.is_builtin()
    {
        return Err(trust(format!(
            "{origin} is not installed: its name {:?} is a built-in plugin's ({}), which \
             nothing installed may take",
            m.name,
            other.path().display()
        )));
    }
    let dir = settings
        .catalog
        .user
        .last()
        .ok_or_else(|| trust("no user plugin directory: set HOME or XDG_DATA_HOME"))?;
    private::create_dir(dir).map_err(io(dir))?;
    let path = dir.join(format!("{}.wasm", m.name));
    private::write_file(&path, &bytes).map_err(io(&path))?;
    let kept_sig = signature_path(&path);
    match &sig_text {
        Some(text) => private::write_file(&kept_sig, text.as_bytes()).map_err(io(&kept_sig))?,
        None => {
            let _ = std::fs::remove_file(&kept_sig);
        }
    }
    set_pin(&settings.config_path, &m.name, Some(&sha))?;
    Ok(Installed {
        name: m.name.clone(),
        version: m.version.clone(),
        sha256: sha,
        path,
        signed_by: signed,
        config: settings.config_path.clone(),
    })
}

/// Publishes the built plugin `file` to the OCI `reference`, with its signature
/// (`<file>.minisig`) when there is one. The component is loaded first, so only a plugin
/// this host runs is published.
pub async fn publish(
    runtime: &Runtime,
    file: &Path,
    reference: &str,
) -> Result<(crate::oci::Published, Option<PathBuf>), Error> {
    let bytes = std::fs::read(file).map_err(io(file))?;
    let plugin = runtime.load(file, Some(&sha256(&bytes))).await?;
    let sig_path = signature_path(file);
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(text) => {
            SignatureBox::from_string(&text).map_err(|e| {
                trust(format!(
                    "{} is not a minisign signature: {e}",
                    sig_path.display()
                ))
            })?;
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&sig_path)(e)),
    };
    let (imports, exports) = runtime.interfaces(&plugin);
    let interfaces = crate::oci::Interfaces { imports, exports };
    let m = plugin.manifest();
    let annotations = [
        ("org.opencontainers.image.title", m.name.clone()),
        ("org.opencontainers.image.version", m.version.clone()),
        (
            "org.opencontainers.image.description",
            m.description.clone(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let signed = signature.is_some().then_some(sig_path);
    let published =
        crate::oci::publish(reference, bytes, signature, &interfaces, annotations).await?;
    Ok((published, signed))
}

/// Removes the installed plugin `name` (its file and signature in a user plugin
/// directory) and its pin.
pub async fn remove(settings: &Settings, runtime: &Runtime, name: &str) -> Result<PathBuf, Error> {
    let found = settings.catalog.all(runtime).await;
    let mine: Vec<_> = found
        .iter()
        .filter(|f| f.source == Source::User)
        .filter(|f| {
            f.plugin
                .as_ref()
                .map(|p| p.manifest().name == name)
                .unwrap_or_else(|_| f.path.file_stem().is_some_and(|s| s == name))
        })
        .collect();
    let Some(first) = mine.first() else {
        let builtin = found.iter().any(|f| {
            f.source.is_builtin() && f.plugin.as_ref().is_ok_and(|p| p.manifest().name == name)
        });
        return Err(trust(if builtin {
            format!("{name:?} is a built-in plugin: it cannot be removed")
        } else {
            format!("no installed plugin is named {name:?} (`infragraph plugins list` lists them)")
        }));
    };
    for f in &mine {
        std::fs::remove_file(&f.path).map_err(io(&f.path))?;
        let _ = std::fs::remove_file(signature_path(&f.path));
    }
    set_pin(&settings.config_path, name, None)?;
    Ok(first.path.clone())
}

/// Checks every installed (user) plugin: the file has the sha256 pinned for its name, and
/// its signature beside it, if any, is of these bytes by a trusted key.
pub async fn verify(settings: &Settings, runtime: &Runtime) -> Vec<Verified> {
    let mut out = Vec::new();
    for f in settings.catalog.all(runtime).await {
        if f.source != Source::User {
            continue;
        }
        let stem = f
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (name, problem) = match (&f.plugin, std::fs::read(&f.path)) {
            (_, Err(e)) => (stem, Some(e.to_string())),
            (Err(e), _) => (stem, Some(e.to_string())),
            (Ok(p), Ok(bytes)) => {
                let name = p.manifest().name.clone();
                let sha = sha256(&bytes);
                let problem = match settings.catalog.pins.get(&name) {
                    None => Some("no sha256 is pinned for it in the config".to_string()),
                    Some(pin) if !pin.eq_ignore_ascii_case(&sha) => {
                        Some(format!("its sha256 is {sha}, the config pins {pin}"))
                    }
                    Some(_) => match std::fs::read_to_string(signature_path(&f.path)) {
                        Ok(text) => signed_by(&bytes, &text, &settings.trusted_keys).err(),
                        Err(_) => None,
                    },
                };
                (name, problem)
            }
        };
        out.push(Verified {
            name,
            path: f.path,
            problem,
        });
    }
    out
}

/// Sets (or, with `None`, removes) `[plugins.<name>] sha256` in the config file `path`,
/// keeping everything else in it as written; creates the file owner-only when missing.
fn set_pin(path: &Path, name: &str, sha: Option<&str>) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path)(e)),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| trust(format!("{}: {e}", path.display())))?;
    let plugins = doc
        .entry("plugins")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_like_mut()
        .ok_or_else(|| trust(format!("{}: `plugins` is not a table", path.display())))?;
    match sha {
        Some(sha) => {
            let table = plugins
                .entry(name)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
                .as_table_like_mut()
                .ok_or_else(|| {
                    trust(format!(
                        "{}: [plugins.{name}] is not a table",
                        path.display()
                    ))
                })?;
            table.insert("sha256", toml_edit::value(sha));
        }
        None => {
            if let Some(table) = plugins.get_mut(name).and_then(|t| t.as_table_like_mut()) {
                table.remove("sha256");
                if table.is_empty() {
                    plugins.remove(name);
                }
            }
        }
    }
    let out = doc.to_string();
    if text.is_empty() {
        private::write_file(path, out.as_bytes()).map_err(io(path))
    } else {
        std::fs::write(path, out).map_err(io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_bytes_and_a_trusted_key_only() {
        let dir = std::env::temp_dir().join(format!("infragraph-sign-{}", std::process::id()));
        let keys = keygen(&dir).unwrap();
        assert!(keygen(&dir).is_err(), "a key pair is not overwritten");
        let wasm = dir.join("p.wasm");
        std::fs::write(&wasm, b"\0asm component bytes").unwrap();
        let sig = sign(&wasm, &keys.secret).unwrap();
        let text = std::fs::read_to_string(&sig).unwrap();
        let trusted = vec![keys.public_key.clone()];
        assert_eq!(
            signed_by(b"\0asm component bytes", &text, &trusted).as_deref(),
            Ok(keys.public_key.as_str())
        );
        assert!(signed_by(b"\0asm other bytes", &text, &trusted).is_err());
        let other = keygen(&dir.join("other")).unwrap();
        let why = signed_by(b"\0asm component bytes", &text, &[other.public_key]).unwrap_err();
        assert!(why.contains("no trusted key"), "{why}");
        let why = signed_by(b"\0asm component bytes", &text, &[]).unwrap_err();
        assert!(why.contains("[trust] keys"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pin_is_set_and_removed_keeping_the_rest_of_the_config() {
        let dir = std::env::temp_dir().join(format!("infragraph-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("infragraph.toml");
        std::fs::write(&path, "# mine\n[plugins.acme]\nmode = \"ok\" # kept\n").unwrap();
        set_pin(&path, "acme", Some("ab")).unwrap();
        set_pin(&path, "other", Some("cd")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("mode = \"ok\" # kept"),
            "{text}"
        );
        assert!(
            text.contains("sha256 = \"ab\"") && text.contains("[plugins.other]"),
            "{text}"
        );
        set_pin(&path, "other", None).unwrap();
        set_pin(&path, "acme", None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("sha256") && !text.contains("other"),
            "{text}"
        );
        assert!(text.contains("mode = \"ok\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
