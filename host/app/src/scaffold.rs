//! `infragraph plugin new`: a plugin crate to start from, written wherever the author
//! wants it (not inside this repository): Cargo.toml with the SDK dependency and a
//! release profile tuned for size, a `lib.rs` with a manifest, a scope, one paginated
//! listing and errors that name the credential's variable, native unit tests, and a
//! replay test that runs the whole sync against a recording of the API (a sample one
//! until the author records theirs). It builds with one command into a component of a
//! few hundred KB.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The SDK version a new plugin depends on: the one that targets the newest contract.
pub const SDK_VERSION: &str = "0.3";

/// Where a new plugin gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sdk {
    /// crates.io, at [`SDK_VERSION`].
    Registry,
    /// A checkout's `plugins/sdk` directory.
    Path(PathBuf),
    /// A git repository at a tag (or branch, or commit).
    Git {
        /// The repository.
        url: String,
        /// `tag = "…"`; `None`: the default branch.
        tag: Option<String>,
    },
}

impl Sdk {
    /// The `[dependencies]` line.
    fn dependency(&self) -> String {
        let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
        match self {
            Sdk::Registry => format!("infragraph-sdk = {}", quoted(SDK_VERSION)),
            Sdk::Path(p) => format!(
                "infragraph-sdk = {{ path = {} }}",
                quoted(&p.to_string_lossy())
            ),
            Sdk::Git { url, tag: Some(t) } => format!(
                "infragraph-sdk = {{ git = {}, tag = {} }}",
                quoted(url),
                quoted(t)
            ),
            Sdk::Git { url, tag: None } => {
                format!("infragraph-sdk = {{ git = {} }}", quoted(url))
            }
        }
    }
}

/// The files of a new plugin, relative to its directory, and their templates.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/plugin/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/plugin/src/lib.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../templates/plugin/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../templates/plugin/gitignore.tmpl"),
    ),
    // What the replay test runs against until the author records their API.
    (
        "tests/recording/{{name}}/recording.json",
        include_str!("../templates/plugin/tests/recording/recording.json.tmpl"),
    ),
    (
        "tests/recording/{{name}}/000001.json",
        include_str!("../templates/plugin/tests/recording/000001.json.tmpl"),
    ),
    (
        "tests/recording/{{name}}/000001.body",
        include_str!("../templates/plugin/tests/recording/000001.body.tmpl"),
    ),
];

/// What `new` wrote.
#[derive(Debug)]
pub struct Created {
    /// The crate's directory.
    pub dir: PathBuf,
    /// Each file written, in `dir`.
    pub files: Vec<PathBuf>,
    /// The component `cargo build --release --target wasm32-wasip2` makes, in `dir`.
    pub component: PathBuf,
}

/// Writes a new plugin crate named `name` (kebab-case) into `dir`, which must not exist
/// or be empty.
pub fn new(name: &str, dir: &Path, sdk: &Sdk) -> Result<Created, Error> {
    check_name(name)?;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", dir.display())))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::Usage(format!(
                "{} exists and is not empty: name a new directory with --dir",
                dir.display()
            )));
        }
    }
    let file = name.replace('-', "_");
    let words = |f: fn(&str) -> String, sep: &str| -> String {
        name.split('-').map(f).collect::<Vec<_>>().join(sep)
    };
    let type_name = words(
        |w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        },
        "",
    );
    let env = words(|w| w.to_ascii_uppercase(), "_");
    let mut files = Vec::new();
    for (path, template) in FILES {
        let text = template
            .replace("{{name}}", name)
            .replace("{{Type}}", &type_name)
            .replace("{{ENV}}", &env)
            .replace("{{file}}", &file)
            .replace("{{sdk}}", &sdk.dependency());
        let path = path.replace("{{name}}", name);
        let to = dir.join(&path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Usage(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&to, text)
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", to.display())))?;
        files.push(PathBuf::from(path));
    }
    Ok(Created {
        dir: dir.to_path_buf(),
        files,
        component: Path::new("target/wasm32-wasip2/release").join(format!("{file}.wasm")),
    })
}

/// What `plugins check` found in a component: it loads (contract version, manifest,
/// schema naming), and its hosts and credentials make a valid grant.
#[derive(Debug)]
pub struct Checked {
    /// The plugin's name and version.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The contract it was built against.
    pub contract: String,
    /// Its sha256.
    pub sha256: String,
    /// Node and relationship kinds declared.
    pub kinds: (usize, usize),
    /// Relationship kinds with an access meaning.
    pub access_kinds: usize,
}

/// Checks the component at `path` without running its sync: it is a component of a
/// supported contract, its manifest and schema follow the host's rules, and its hosts and
/// credentials (with their endpoints' defaults) make a valid grant.
pub async fn check(settings: &crate::Settings, path: &Path) -> Result<Checked, Error> {
    let runtime = settings.runtime()?;
    let plugin = runtime.load(path, None).await?;
    let m = plugin.manifest();
    let endpoints: Vec<(String, String)> = m
        .config
        .iter()
        .filter(|k| k.ty == infragraph_core::ConfigType::Endpoint)
        .filter_map(|k| match &k.default {
            Some(infragraph_core::ConfigValue::Text(url)) => Some((k.name.clone(), url.clone())),
            _ => None,
        })
        .collect();
    infragraph_fetch::Grants::new(m, &endpoints).map_err(|e| {
        Error::Usage(format!(
            "{}: its hosts or credentials cannot be granted: {e}",
            path.display()
        ))
    })?;
    Ok(Checked {
        name: m.name.clone(),
        version: m.version.clone(),
        contract: plugin.contract().to_string(),
        sha256: plugin.sha256().to_string(),
        kinds: (m.schema.nodes.len(), m.schema.edges.len()),
        access_kinds: m.schema.edges.iter().filter(|e| e.access.is_some()).count(),
    })
}

/// A plugin's name: kebab-case, starting with a letter, at most 64 characters, and not
/// one the host keeps for itself.
fn check_name(name: &str) -> Result<(), Error> {
    let kebab = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !kebab {
        return Err(Error::Usage(format!(
            "{name:?} is not a plugin name: use kebab-case (a-z, 0-9 and single '-'), \
             starting with a letter, e.g. \"acme-directory\""
        )));
    }
    if infragraph_core::HOST_SOURCES.contains(&name) {
        return Err(Error::Usage(format!(
            "{name:?} is the host's own name; choose another"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in [
            "", "Acme", "acme_dir", "-acme", "acme-", "a--b", "1acme", "people",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("acme-directory2").unwrap();
    }

    #[test]
    fn the_crate_is_written_with_its_names_filled_in() {
        let dir = std::env::temp_dir().join(format!("infragraph-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sdk = Sdk::Git {
            url: "https://example.com/infragraph.git".into(),
            tag: Some("sdk-v0.3.0".into()),
        };
        let created = new("acme-dir", &dir, &sdk).unwrap();
        assert_eq!(created.files.len(), FILES.len());
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("struct AcmeDir;"), "{lib}");
        assert!(lib.contains("\"ACME_DIR_API_TOKEN\""), "{lib}");
        for placeholder in ["{{name}}", "{{Type}}", "{{ENV}}", "{{file}}", "{{sdk}}"] {
            assert!(!lib.contains(placeholder), "{placeholder} is left: {lib}");
        }
        let cargo: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            cargo["dependencies"]["infragraph-sdk"]["tag"].as_str(),
            Some("sdk-v0.3.0")
        );
        assert_eq!(cargo["profile"]["release"]["opt-level"].as_str(), Some("s"));
        assert_eq!(
            created.component,
            Path::new("target/wasm32-wasip2/release/acme_dir.wasm")
        );
        // Not over an existing crate.
        let again = new("acme-dir", &dir, &Sdk::Registry)
            .unwrap_err()
            .to_string();
        assert!(again.contains("is not empty"), "{again}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
