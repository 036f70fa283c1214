//! `infragraph plugins list|inspect` and `infragraph schema`: everything here is read
//! from plugin manifests, so a third-party plugin is documented as well as a built-in.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use infragraph_core::CredentialUse;
use infragraph_runtime::{Catalog, Origin, Plugin, SecretSource, Source};
use serde_json::json;

use crate::args::{PluginsCommand, SchemaArgs, SchemaFormat};
use crate::table::{Format, Table};
use infragraph_app::scaffold::{self, Sdk};
use infragraph_app::{Settings, install, schema_docs};

pub async fn run(settings: &Settings, cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    let runtime = settings.runtime()?;
    match cmd {
        PluginsCommand::List { output } => {
            let found = settings.catalog.all(&runtime).await;
            if output.format() == Format::Json {
                let rows: Vec<_> = found
                    .iter()
                    .map(|f| match &f.plugin {
                        Ok(p) => json!({
                            "name": p.manifest().name, "version": p.manifest().version,
                            "contract": p.contract(), "source": f.source, "sha256": p.sha256(),
                            "path": f.path, "shadowed": f.shadowed,
                        }),
                        Err(e) => {
                            json!({ "path": f.path, "source": f.source, "error": e.to_string() })
                        }
                    })
                    .collect();
                let conflicts: Vec<_> = Catalog::label_conflicts(&found)
                    .into_iter()
                    .map(|(label, a, b)| json!({ "label": label, "paths": [a, b] }))
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
                // The plugins stay a plain list on stdout, for the scripts reading it.
                if !conflicts.is_empty() {
                    errln!(
                        "infragraph: label conflicts: {}",
                        serde_json::to_string(&conflicts)?
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if found.is_empty() && output.format() == Format::Table {
                let dirs: Vec<_> = settings
                    .catalog
                    .builtin
                    .iter()
                    .chain(&settings.catalog.user)
                    .map(|d| d.display().to_string())
                    .collect();
                out!("no plugins found in {}", dirs.join(", "));
                out!("hint: `cargo xtask build` builds the built-in plugins");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table =
                Table::new(&["NAME", "VERSION", "CONTRACT", "SOURCE", "SHA256", "PATH"])
                    .keep_whole(&["NAME", "SHA256"]);
            let mut broken = Vec::new();
            for f in &found {
                match &f.plugin {
                    Ok(p) => table.push(vec![
                        p.manifest().name.clone(),
                        p.manifest().version.clone(),
                        p.contract().to_string(),
                        if f.shadowed {
                            format!("{} (shadowed)", f.source)
                        } else {
                            f.source.to_string()
                        },
                        if output.whole_values() {
                            p.sha256().to_string()
                        } else {
                            p.sha256()[..16].to_string()
                        },
                        f.path.display().to_string(),
                    ]),
                    Err(e) => broken.push(format!("{}: {e}", f.path.display())),
                }
            }
            table.print(&output)?;
            // Below a table for people; on stderr when stdout is CSV for a program.
            let mut notes: Vec<String> =
                broken.iter().map(|b| format!("not loaded: {b}")).collect();
            for (label, a, b) in Catalog::label_conflicts(&found) {
                notes.push(format!(
                    "conflict: label {label} is declared by both {} and {}; sync refuses both",
                    a.display(),
                    b.display()
                ));
            }
            for note in notes {
                match output.format() {
                    Format::Table => out!("{note}"),
                    _ => errln!("infragraph: {note}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::New {
            name,
            dir,
            sdk_path,
            sdk_git,
            sdk_tag,
        } => {
            let sdk = match (sdk_path, sdk_git) {
                (Some(p), _) => Sdk::Path(std::path::absolute(&p).unwrap_or(p)),
                (None, Some(url)) => Sdk::Git { url, tag: sdk_tag },
                (None, None) => Sdk::Registry,
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let created = scaffold::new(&name, &dir, &sdk)?;
            out!("Created {} ({}):", name, created.dir.display());
            for f in &created.files {
                out!("  {}", f.display());
            }
            out!(
                "\nBuild it:\n  cd {}\n  rustup target add wasm32-wasip2\n  cargo build --release --target wasm32-wasip2\n  infragraph plugins check {}",
                created.dir.display(),
                created.component.display()
            );
            if sdk == Sdk::Registry {
                out!(
                    "\nIt depends on infragraph-sdk {} from crates.io; until that is published, \
                     use --sdk-git <repository> --sdk-tag <tag> or --sdk-path <checkout>/plugins/sdk.",
                    scaffold::SDK_VERSION
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Test {
            plugin,
            replay,
            expect,
            update,
        } => {
            let t =
                infragraph_app::replay_test::replay(settings, &plugin, &replay, &expect, update)
                    .await?;
            if let Some(path) = &t.wrote {
                out!("wrote {} records to {}", t.records, path.display());
                return Ok(ExitCode::SUCCESS);
            }
            if t.passed() {
                out!(
                    "ok: the replay wrote the {} records of {}",
                    t.records,
                    expect.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            out!(
                "the graph differs from {}: {} expected records missing, {} unexpected",
                expect.display(),
                t.differ.0,
                t.differ.1
            );
            for m in &t.missing {
                out!("- {m}");
            }
            for u in &t.unexpected {
                out!("+ {u}");
            }
            Ok(ExitCode::from(1))
        }
        PluginsCommand::Check { path } => {
            let c = scaffold::check(settings, &path).await?;
            out!(
                "{}: ok: {} {} (contract {}), {} node and {} relationship kinds ({} with an \
                 access meaning), sha256 {}",
                path.display(),
                c.name,
                c.version,
                c.contract,
                c.kinds.0,
                c.kinds.1,
                c.access_kinds,
                c.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Install {
            from,
            signature,
            allow_unsigned,
        } => {
            let i = install::install(
                settings,
                &runtime,
                &install::Origin::parse(&from),
                signature.as_deref(),
                allow_unsigned,
            )
            .await?;
            out!(
                "installed {} {} into {}, sha256 {} pinned in {}; {}",
                i.name,
                i.version,
                i.path.display(),
                i.sha256,
                i.config.display(),
                match &i.signed_by {
                    Some(key) => format!("signed by trusted key {key}"),
                    None => "unsigned (--allow-unsigned)".to_string(),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Remove { name } => {
            let path = install::remove(settings, &runtime, &name).await?;
            out!(
                "removed {name} ({}) and its pin in {}",
                path.display(),
                settings.config_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Verify => {
            let checked = install::verify(settings, &runtime).await;
            let mut bad = 0;
            for v in &checked {
                match &v.problem {
                    None => out!("ok      {} ({})", v.name, v.path.display()),
                    Some(why) => {
                        bad += 1;
                        out!("FAILED  {} ({}): {why}", v.name, v.path.display());
                    }
                }
            }
            if checked.is_empty() {
                out!("no installed plugin (built-in plugins are checked at every load)");
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PluginsCommand::Keygen { dir } => {
            let k = install::keygen(&dir)?;
            out!(
                "wrote {} (secret: keep it out of reach) and {}\n\noperators who trust \
                 your plugins add to their config:\n\n[trust]\nkeys = [\"{}\"]",
                k.secret.display(),
                k.public.display(),
                k.public_key
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Publish { file, reference } => {
            let (p, signature) = install::publish(&runtime, &file, &reference).await?;
            out!(
                "published {} to {reference} (manifest {}); {}",
                file.display(),
                p.manifest_digest,
                match (&p.signature_tag, signature) {
                    (Some(tag), Some(sig)) =>
                        format!("its signature {} as tag {tag}", sig.display()),
                    _ => format!(
                        "unsigned: no {} (sign it with `infragraph plugin sign`, or installers \
                         will need --allow-unsigned)",
                        install::signature_path(&file).display()
                    ),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Sign { file, key } => {
            let sig = install::sign(&file, &key)?;
            out!("wrote {}", sig.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Inspect { plugin, json } => {
            let (p, source) = settings.catalog.find(&runtime, &plugin).await?;
            let consent = settings.consent(&p.manifest().name);
            let origins: Vec<Origin> = p
                .manifest()
                .credentials
                .iter()
                .map(|c| consent.origin(c, source, p.sha256()))
                .collect();
            if json {
                let credentials: Vec<_> = p
                    .manifest()
                    .credentials
                    .iter()
                    .zip(&origins)
                    .map(|(c, o)| {
                        let from = match o {
                            Origin::Configured(SecretSource::Env(v)) | Origin::Manifest(v) => {
                                json!({ "env": v })
                            }
                            Origin::Configured(SecretSource::File(f)) => json!({ "file": f }),
                            Origin::NotConfigured => json!("not configured"),
                            Origin::OtherBuild { .. } => json!("not this build"),
                        };
                        json!({ "name": c.name, "hosts": c.hosts, "required": c.required, "from": from })
                    })
                    .collect();
                let doc = json!({
                    "path": p.path(), "source": source, "sha256": p.sha256(),
                    "contract": p.contract(), "credentials": credentials,
                    "manifest": p.manifest(),
                });
                out!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                out_raw!("{}", inspect(&p, source, &origins));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn schema(settings: &Settings, cmd: SchemaArgs) -> anyhow::Result<ExitCode> {
    let runtime = settings.runtime()?;
    let (p, _) = settings.catalog.find(&runtime, &cmd.plugin).await?;
    let m = p.manifest();
    let format = if cmd.json {
        SchemaFormat::Json
    } else {
        cmd.format
    };
    match format {
        SchemaFormat::Json => out!("{}", serde_json::to_string_pretty(&m.schema)?),
        SchemaFormat::Mermaid => out_raw!("{}", schema_docs::mermaid(m)),
        SchemaFormat::Markdown => out_raw!("{}", schema_docs::markdown(m)),
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(p: &Plugin, source: Source, origins: &[Origin]) -> String {
    let m = p.manifest();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} ({source})\n{}\n",
        m.name, m.version, m.description
    );
    let _ = writeln!(s, "contract  infragraph:plugin@{}", p.contract());
    let _ = writeln!(s, "file      {}", p.path().display());
    let _ = writeln!(s, "sha256    {}\n", p.sha256());
    let _ = writeln!(s, "May fetch from (HTTPS): {}", list_or_none(&m.hosts));
    let _ = writeln!(
        s,
        "\nCredentials ({}; never from the config file itself):",
        if source.is_builtin() {
            "a built-in plugin reads the variable its manifest names, unless \
             [plugins.<name>.secrets] names another source"
        } else {
            "a plugin that is not built in gets only those [plugins.<name>.secrets] names a \
             source for"
        }
    );
    if m.credentials.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for (c, origin) in m.credentials.iter().zip(origins) {
        let use_ = match &c.use_ {
            CredentialUse::Header => "header value".to_string(),
            CredentialUse::Bearer => "bearer token".to_string(),
            CredentialUse::Basic(user) => {
                format!("HTTP basic password (user from config `{user}`)")
            }
            CredentialUse::JsonBody => "field of a JSON body".to_string(),
            CredentialUse::FormBody => "field of a form body".to_string(),
            CredentialUse::AwsSigv4(a) => format!(
                "AWS SigV4 secret access key, signing for service `{}` (access key id from config `{}`, region from config `{}`{})",
                a.service,
                a.access_key_id,
                a.region,
                a.session_token
                    .as_ref()
                    .map(|t| format!(", session token from credential `{t}`"))
                    .unwrap_or_default()
            ),
        };
        let from = match origin {
            Origin::Configured(SecretSource::Env(v)) => format!("env {v} (configured)"),
            Origin::Configured(SecretSource::File(f)) => {
                format!("file {} (configured)", f.display())
            }
            Origin::Manifest(v) => format!("env {v}"),
            Origin::NotConfigured => format!(
                "nowhere: not configured (its manifest suggests env {}; add `{} = {{ env = \"…\" }}` \
                 or `{{ file = \"…\" }}` under [plugins.{}.secrets])",
                c.env, c.name, m.name
            ),
            Origin::OtherBuild { pinned } => {
                format!("none: the config pins another build ({pinned})")
            }
        };
        let _ = writeln!(
            s,
            "  {:<16} {}{}\n  {:<16} from {from}\n  {:<16} sent as {use_} to {}{}",
            c.name,
            c.description,
            if c.required { "" } else { " (optional)" },
            "",
            "",
            list_or_none(&c.hosts),
            match &c.only_when {
                Some((key, value)) => format!(
                    "\n  {:<16} only when config `{key}` is {value:?} (otherwise neither read \
                     nor sent)",
                    ""
                ),
                None => String::new(),
            }
        );
    }
    let _ = writeln!(s, "\nConfig keys:");
    if m.config.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for k in &m.config {
        let mut extra = vec![format!("{:?}", k.ty).to_lowercase()];
        if let Some(env) = &k.env {
            extra.push(format!("env {env}"));
        }
        if k.required {
            extra.push("required".into());
        }
        if let Some(d) = &k.default {
            extra.push(format!("default {d}"));
        }
        let _ = writeln!(
            s,
            "  {:<16} {} [{}]",
            k.name,
            k.description,
            extra.join(", ")
        );
    }
    // The schema is its own command: a few hundred lines would bury what was asked here.
    let _ = writeln!(
        s,
        "\nSchema: {} labels, {} relationship kinds (`infragraph schema {}` prints them)",
        m.schema.nodes.len(),
        m.schema.edges.len(),
        m.name
    );
    s
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
