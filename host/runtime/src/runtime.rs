//! The [`Runtime`] and what it loads, [`Plugin`]s: turning a `.wasm` file into a plugin
//! (compile or load the cached code, check the contract version, read and check the
//! manifest) and running a plugin's sync.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use infragraph_core::{CheckedSchema, Manifest};
use infragraph_fetch::Clients;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::cache::{Compiled, Compiler};
use crate::emission::{Emission, Emitter};
use crate::error::{Error, ErrorKind};
use crate::limits::{LimitExceeded, Limits, MAX_GUEST_TEXT};
use crate::run_state::{PluginState, RecordCounts, RunCtx};
use crate::sandbox::{self, Deadline, EpochTicker};
use crate::sync::{Failure, SyncOutcome, SyncRequest};
use crate::wit::{self, Provider, SUPPORTED_CONTRACTS, since_v0_1_0::Ingestor as Bindings};

/// The limit a sync's deadline is reported as.
const SYNC_TIME: &str = "sync time";

/// The limit `manifest()`'s deadline is reported as: not `sync time`, which it was
/// labelled before (issue 20, point 5), sending the operator to the wrong setting.
const MANIFEST_TIME: &str = "manifest time";

/// The WebAssembly engine shared by every plugin of a process, with its linker and the
/// on-disk cache of compiled plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    compiler: Compiler,
    /// The HTTP clients of the plugins' runs, one per plugin (see `Clients`): a run reuses
    /// the connections the plugin's earlier runs left open.
    clients: Clients,
    _ticker: EpochTicker,
}

/// A loaded plugin: its compiled component and checked manifest.
#[derive(Clone)]
pub struct Plugin {
    component: Component,
    manifest: Arc<Manifest>,
    schema: Arc<CheckedSchema>,
    path: PathBuf,
    sha256: String,
    contract: String,
    cached: bool,
}

/// A plugin file read and compiled, before its contract and manifest are checked.
struct Code {
    compiled: Compiled,
    sha256: String,
}

impl Runtime {
    /// Sets up the engine. `cache_dir`, when given, keeps compiled plugins between runs,
    /// keyed by the engine's compatibility hash and the component's sha256.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime, Error> {
        let mut config = Config::new();
        // Epochs are how the sandbox stops a guest at its deadline and makes a busy one
        // yield.
        config.wasm_component_model(true).epoch_interruption(true);
        // For plugin authors profiling their plugin with `perf record`: wasmtime writes
        // /tmp/perf-<pid>.map naming each compiled guest function.
        if std::env::var_os("INFRAGRAPH_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| ErrorKind::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| Bindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|e| ErrorKind::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine).map_err(|e| ErrorKind::Engine(e.to_string()))?;
        Ok(Runtime {
            compiler: Compiler::new(engine.clone(), cache_dir),
            engine,
            linker,
            clients: Clients::new(),
            _ticker: ticker,
        })
    }

    /// The manifest of the plugin at `path`, and the file's sha256, without compiling or
    /// running anything when this host read the same file before (the manifest is kept
    /// beside its compiled code): for what needs only what plugins declare, such as the
    /// access questions, whose memory should be the walk's, not five compilers'.
    pub async fn manifest_of(&self, path: &Path) -> Result<(Arc<Manifest>, String), Error> {
        // A few MB at most, read once per question: not worth a blocking-pool hop.
        let bytes = fs::read(path).map_err(|source| ErrorKind::Read {
            path: path.into(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        drop(bytes);
        if let Some(m) = self.compiler.cached_manifest(&sha256) {
            return Ok((Arc::new(m), sha256));
        }
        let plugin = self.load(path, None).await?;
        self.compiler.keep_manifest(&sha256, plugin.manifest());
        Ok((plugin.manifest.clone(), sha256))
    }

    /// Loads the plugin at `path`. With `pin`, refuses a file whose sha256 differs.
    /// Reading and compiling run on tokio's blocking pool.
    pub async fn load(&self, path: &Path, pin: Option<&str>) -> Result<Plugin, Error> {
        let (compiler, file, pin) = (self.compiler.clone(), path.to_owned(), pin.map(Into::into));
        // Hashing and compiling take from milliseconds to seconds of CPU; on a blocking
        // thread they leave the async threads to the plugins already running.
        let code = tokio::task::spawn_blocking(move || read_code(&compiler, &file, pin)).await;
        let Code { compiled, sha256 } = match code {
            Ok(code) => code?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the tokio runtime is shutting down.
            Err(e) => {
                let reason = format!("compiling {} was cancelled: {e}", path.display());
                return Err(ErrorKind::Engine(reason).into());
            }
        };
        let Compiled { component, cached } = compiled;
        let names: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let contract =
            wit::contract_version(names.iter().map(String::as_str)).map_err(|found| {
                ErrorKind::Contract {
                    path: path.into(),
                    found,
                    supported: SUPPORTED_CONTRACTS.join(", "),
                }
            })?;
        if !SUPPORTED_CONTRACTS.contains(&contract.as_str()) {
            return Err(ErrorKind::Contract {
                path: path.into(),
                found: contract,
                supported: SUPPORTED_CONTRACTS.join(", "),
            }
            .into());
        }
        let manifest = self.read_manifest(path, &component, &contract).await?;
        if let Some(what) = manifest.takes_host_names() {
            return Err(ErrorKind::BadManifest {
                path: path.into(),
                source: infragraph_core::ManifestError {
                    plugin: manifest.name.clone(),
                    what,
                },
            }
            .into());
        }
        let schema = CheckedSchema::new(&manifest).map_err(|source| ErrorKind::BadManifest {
            path: path.into(),
            source,
        })?;
        Ok(Plugin {
            component,
            manifest: Arc::new(manifest),
            schema: Arc::new(schema),
            path: path.into(),
            sha256,
            contract,
            cached,
        })
    }

    async fn read_manifest(
        &self,
        path: &Path,
        component: &Component,
        contract: &str,
    ) -> Result<Manifest, Error> {
        let limits = Limits::default();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let deadline = (
            MANIFEST_TIME,
            limits.manifest_time,
            Deadline::after(limits.manifest_time),
        );
        let mut store = sandbox::new_store(&self.engine, &name, &limits, deadline, None);
        let manifest = async {
            let instance =
                Provider::instantiate(contract, &mut store, component, &self.linker).await?;
            instance.manifest(&mut store).await
        };
        match tokio::time::timeout(limits.manifest_time, manifest).await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) if is_link_error(&e) => Err(ErrorKind::Link {
                path: path.into(),
                reason: format!("{e:#}"),
            }
            .into()),
            Ok(Err(e)) => Err(ErrorKind::Manifest {
                path: path.into(),
                // A limit names itself (`limit manifest time (1s) exceeded`); wasmtime's
                // text around it is a backtrace the operator cannot act on.
                reason: match e.downcast_ref::<LimitExceeded>() {
                    Some(l) => l.to_string(),
                    None => format!("{e:#}"),
                },
            }
            .into()),
            Err(_) => Err(ErrorKind::Manifest {
                path: path.into(),
                reason: LimitExceeded::new(MANIFEST_TIME, format!("{:?}", limits.manifest_time))
                    .to_string(),
            }
            .into()),
        }
    }

    /// The interfaces `plugin`'s component imports and exports, by name (e.g.
    /// `infragraph:plugin/emit@0.1.0`): what a registry's artifact config lists.
    pub fn interfaces(&self, plugin: &Plugin) -> (Vec<String>, Vec<String>) {
        let ty = plugin.component.component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let exports = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        (imports, exports)
    }

    /// Runs `plugin`'s sync in a fresh sandbox, sending what it emits to `out`. Never
    /// panics and never returns early: every failure is in the outcome.
    pub async fn sync(
        &self,
        plugin: &Plugin,
        req: SyncRequest,
        out: mpsc::Sender<Emission>,
    ) -> SyncOutcome {
        let started = Instant::now();
        let manifest = plugin.manifest();
        // Filled in as the run goes; a run that ends early keeps the rest empty.
        let mut outcome = SyncOutcome::stopped(&manifest.name);
        let mut req = req;
        let fetcher = match req.fetcher(manifest, &self.clients) {
            Ok(f) => f,
            Err(e) => {
                outcome.result = Err(Failure::Setup(e));
                return outcome;
            }
        };
        let deadline = Deadline::after(req.limits.sync_time);
        let run = RunCtx {
            deadline: deadline.clone(),
            schema: plugin.schema.clone(),
            fetcher: fetcher.clone(),
            out: Emitter::new(out),
            state: req.state,
            staged: BTreeMap::new(),
            scope: None,
            scope_accepted: req.scope_accepted.take(),
            counts: RecordCounts::default(),
            limits: req.limits.clone(),
        };
        let mut store = sandbox::new_store(
            &self.engine,
            &manifest.name,
            &req.limits,
            (SYNC_TIME, req.limits.sync_time, deadline.clone()),
            Some(run),
        );
        let config: Vec<_> = req.config.into_iter().map(|(k, v)| (k, v.into())).collect();
        let call = async {
            let instance = Provider::instantiate(
                &plugin.contract,
                &mut store,
                &plugin.component,
                &self.linker,
            )
            .await?;
            instance.sync(&mut store, &config).await
        };
        let result = tokio::select! {
            done = call => Ok(done),
            () = deadline.expired() => Err(()),
        };
        outcome.result = match result {
            Err(()) => Err(Failure::Limit {
                limit: SYNC_TIME.into(),
                value: format!("{:?}", req.limits.sync_time),
            }),
            Ok(Ok(Ok(summary))) => Ok(summary),
            Ok(Ok(Err((kind, message)))) => Err(Failure::Plugin {
                message: explain_placeholders(
                    manifest,
                    if kind == "auth" {
                        name_credentials(manifest, fetcher.secrets(), message)
                    } else {
                        message
                    },
                ),
                error: kind.into(),
            }),
            Ok(Err(trap)) => Err(Failure::from_trap(&trap, &store.data().stderr_tail)),
        };
        // A replay that could not answer every request replayed something else, whatever
        // the plugin made of it; a recording that misses exchanges cannot be replayed.
        if let Err(why) = fetcher.finish_tape()
            && !matches!(
                outcome.result,
                Err(Failure::Limit { .. } | Failure::Trap(_))
            )
        {
            outcome.result = Err(Failure::Recording(why));
        }
        // Every text here may hold what the guest wrote (its summary and error, a record's
        // id in a schema error, a label in a contract error): scrubbed and bounded in one
        // place before it reaches the report, the run history or the log.
        let scrub = |text: &str| fetcher.redact_capped(text, MAX_GUEST_TEXT);
        outcome.result = match std::mem::replace(&mut outcome.result, Err(Failure::Stopped)) {
            Ok(summary) => Ok(scrub(&summary)),
            Err(failure) => Err(failure.map_text(scrub)),
        };
        let data = store.into_data();
        if let Some(run) = data.run {
            outcome.scope = run.scope;
            outcome.counts = run.counts;
            outcome.state_writes = run.staged;
        }
        outcome.fetch = fetcher.stats();
        outcome.duration = started.elapsed();
        outcome
    }
}

impl Plugin {
    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file's sha256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// The contract version it was built against.
    pub fn contract(&self) -> &str {
        &self.contract
    }
    /// Whether its compilation came from the cache.
    pub fn from_cache(&self) -> bool {
        self.cached
    }
}

/// Reads the file at `path`, refuses it if its sha256 is not `pin`, and compiles it.
/// Blocking.
fn read_code(compiler: &Compiler, path: &Path, pin: Option<String>) -> Result<Code, Error> {
    let bytes = fs::read(path).map_err(|source| ErrorKind::Read {
        path: path.into(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(pin) = pin
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        return Err(ErrorKind::PinMismatch {
            name: name.unwrap_or_default(),
            path: path.into(),
            pinned: pin,
            actual: sha256,
        }
        .into());
    }
    let compiled = compiler.compile(path, &bytes, &sha256)?;
    Ok(Code { compiled, sha256 })
}

fn is_link_error(e: &wasmtime::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("matching implementation was not found in the linker")
        || text.contains("import") && text.contains("has the wrong type")
}

/// A plugin's error text, with a word on each `{secret:NAME}` in it. The host puts that
/// placeholder where a response quotes a credential, since the plugin never holds one;
/// quoted back in an error (`invalid token '{secret:api_token}'`), it reads as if the
/// host had sent the placeholder itself.
fn explain_placeholders(manifest: &infragraph_core::Manifest, message: String) -> String {
    let quoted: Vec<&str> = manifest
        .credentials
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| message.contains(&format!("{{secret:{name}}}")))
        .collect();
    if quoted.is_empty() {
        return message;
    }
    let marks: Vec<String> = quoted.iter().map(|n| format!("{{secret:{n}}}")).collect();
    format!(
        "{message} ({} marks where the provider's answer quoted the credential {}: \
         infragraph hides credential values from plugins; the request carried the real value)",
        marks.join(", "),
        quoted.join(", ")
    )
}

/// An auth error's text, pointing the operator at the credentials to check. A plugin
/// names them by the variables its manifest declares; where the operator named another
/// source for one (a named connection's `{ env = .. }` or `{ file = .. }`), that source
/// takes the variable's place, since the variable was never read. A text naming none of
/// them gets the list of the plugin's credentials and where each came from.
fn name_credentials(
    manifest: &infragraph_core::Manifest,
    secrets: &infragraph_fetch::Secrets,
    message: String,
) -> String {
    let creds = &manifest.credentials;
    let mut message = message;
    let mut named = false;
    for c in creds {
        let (text, found) = replace_name(&message, &c.env, secrets.origin(&c.name));
        message = text;
        named |= found;
    }
    if creds.is_empty() || named {
        return message;
    }
    let list: Vec<String> = creds
        .iter()
        .map(|c| match secrets.origin(&c.name) {
            Some(origin) => format!("{} (from {origin})", c.name),
            None => format!("{} (env {})", c.name, c.env),
        })
        .collect();
    if creds.iter().any(|c| secrets.origin(&c.name).is_some()) {
        return format!("{message} (check the credentials: {})", list.join(", "));
    }
    format!(
        "{message} (check the plugin's credentials: {}, or the source [plugins.{}.secrets] \
         names for each)",
        list.join(", "),
        manifest.name
    )
}

/// `text` with each occurrence of the variable name `var` that stands as a name of its own
/// (not part of a longer one, as `KEY` is of `KEY_ID`) replaced by `with` when given, and
/// whether there was one.
fn replace_name(text: &str, var: &str, with: Option<&str>) -> (String, bool) {
    if var.is_empty() {
        return (text.to_owned(), false);
    }
    let in_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (mut out, mut found) = (String::with_capacity(text.len()), false);
    let mut rest = text;
    let mut after_name = false;
    while let Some(at) = rest.find(var) {
        let (before, after) = (&rest[..at], &rest[at + var.len()..]);
        let starts = if before.is_empty() {
            !after_name
        } else {
            !before.ends_with(in_name)
        };
        let whole = starts && !after.starts_with(in_name);
        out.push_str(before);
        out.push_str(match with {
            Some(with) if whole => with,
            _ => var,
        });
        found |= whole;
        after_name = true;
        rest = after;
    }
    out.push_str(rest);
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infragraph_core::{Credential, CredentialUse, Manifest, Schema};

    fn manifest() -> Manifest {
        Manifest {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            schema: Schema::default(),
            hosts: Vec::new(),
            credentials: vec![Credential {
                name: "api_token".into(),
                env: "ACME_API_TOKEN".into(),
                description: String::new(),
                hosts: Vec::new(),
                use_: CredentialUse::Bearer,
                required: true,
                only_when: None,
            }],
            config: Vec::new(),
        }
    }

    /// A named connection's credential comes from the source it names, not from the
    /// manifest's variable: an auth error points there, whether the plugin's text names
    /// the variable or nothing.
    #[test]
    fn an_auth_error_names_where_the_credential_came_from() {
        let m = manifest();
        let default = infragraph_fetch::Secrets::new();
        let said = "auth error: answered HTTP 401: check ACME_API_TOKEN".to_string();
        assert_eq!(name_credentials(&m, &default, said.clone()), said);
        let mut own = infragraph_fetch::Secrets::new();
        own.note_origin("api_token", "the file /run/secrets/prod-token");
        assert_eq!(
            name_credentials(&m, &own, said),
            "auth error: answered HTTP 401: check the file /run/secrets/prod-token"
        );
        // A longer name is not the variable.
        let longer = "auth error: check ACME_API_TOKEN_ID".to_string();
        assert_eq!(
            name_credentials(&m, &own, longer.clone()),
            format!(
                "{longer} (check the credentials: api_token (from the file /run/secrets/prod-token))"
            )
        );
        let silent = "auth error: answered HTTP 401".to_string();
        assert_eq!(
            name_credentials(&m, &own, silent.clone()),
            "auth error: answered HTTP 401 (check the credentials: api_token (from the file \
             /run/secrets/prod-token))"
        );
        assert_eq!(
            name_credentials(&m, &default, silent),
            "auth error: answered HTTP 401 (check the plugin's credentials: api_token (env \
             ACME_API_TOKEN), or the source [plugins.p.secrets] names for each)"
        );
    }

    #[test]
    fn a_placeholder_quoted_back_by_the_provider_is_explained() {
        let m = manifest();
        let said = explain_placeholders(
            &m,
            "auth error: http://x/v2/teams answered HTTP 401: invalid token '{secret:api_token}'"
                .into(),
        );
        assert!(
            said.ends_with(
                "({secret:api_token} marks where the provider's answer quoted the credential \
                 api_token: infragraph hides credential values from plugins; the request \
                 carried the real value)"
            ),
            "{said}"
        );
        let plain = "auth error: answered HTTP 401: no".to_string();
        assert_eq!(explain_placeholders(&m, plain.clone()), plain);
        // Only the plugin's own credentials: anything else is the plugin's text.
        let other = "saw {secret:other}".to_string();
        assert_eq!(explain_placeholders(&m, other.clone()), other);
    }
}
