//! Command-line arguments: clap's view of what the library (`infragraph_app`) takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::table::OutputArgs;

/// `--version`: the version, the commit it was built from, the plugin contracts it runs
/// and the plugins it carries (`-V` prints the version alone). A test keeps the contracts
/// in step with the runtime's list.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(version_text)
}

fn version_text() -> String {
    let mut text = format!(
        "{}\ncommit    {}\ncontracts infragraph:plugin {}",
        env!("CARGO_PKG_VERSION"),
        env!("INFRAGRAPH_GIT_COMMIT"),
        infragraph_runtime::SUPPORTED_CONTRACTS.join(", ")
    );
    let plugins: Vec<String> = infragraph_builtins::PLUGINS
        .iter()
        .map(|p| format!("{} {} (sha256 {})", p.name, p.version, &p.sha256[..12]))
        .collect();
    if !plugins.is_empty() {
        text.push_str("\nplugins   ");
        text.push_str(&plugins.join("\n          "));
    }
    text
}

/// Map who can reach what across your clouds: sandboxed provider plugins, one graph.
#[derive(Debug, Parser)]
#[command(name = "infragraph", version, about, max_term_width = 100)]
pub struct Args {
    /// Config file (TOML). Default: ./infragraph.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// More log on stderr: -v debug (retries, each request's outcome), -vv trace (or set
    /// INFRAGRAPH_LOG, e.g. `infragraph=trace`).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and warnings: no progress, no summary table, no log below warnings.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// No progress display, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run plugins and write what they find into the store.
    #[command(
        after_help = "Examples:\n  infragraph sync scaleway                      # one plugin into ./infragraph.db\n  infragraph sync example scaleway azure --report run.json\n  infragraph sync ./my-plugin.wasm --store test.db\n  infragraph sync scaleway --neo4j bolt://localhost:7687\n  infragraph sync scaleway --record rec/        # then: --replay rec/ (no network)\n  infragraph sync                               # every connection in the config file\n  infragraph sync scaleway/prod --shard 1/2"
    )]
    Sync(SyncArgs),
    /// Look things up in the graph (the store or a Neo4j server): nodes, neighbours, paths.
    #[command(
        after_help = "Examples:\n  infragraph query nodes AcmeUser --where admin=true\n  infragraph query neighbours AcmeUser user-0003 --direction out --type MEMBER_OF,RESOURCE\n  infragraph query path AcmeUser user-0003 AcmeGroup group-002"
    )]
    #[command(subcommand)]
    Query(QueryCommand),
    /// Who can reach what: principals reaching a node, what a principal reaches, and the
    /// access paths between two, from what each plugin says its relationships mean.
    #[command(
        after_help = "Examples:\n  infragraph access who ResourceGroup rg-web\n  infragraph access what User u-alice --role Owner\n  infragraph access path User u-alice ResourceGroup rg-web --format mermaid"
    )]
    #[command(subcommand)]
    Access(AccessCommand),
    /// The run history: when each plugin ran, how it ended, what it changed.
    #[command(
        after_help = "Examples:\n  infragraph runs\n  infragraph runs --limit 5 --json\n  infragraph runs --format csv > runs.csv"
    )]
    Runs(RunsArgs),
    /// Write the store's graph to a file (jsonl as APOC writes it, GraphML, or Cypher).
    #[command(
        after_help = "Examples:\n  infragraph export --format jsonl -o graph.jsonl\n  infragraph export --format cypher -o graph.cypher"
    )]
    Export(ExportArgs),
    /// Load a jsonl export into the store.
    #[command(after_help = "Examples:\n  infragraph import graph.jsonl --store restored.db")]
    Import(ImportArgs),
    /// Copy the store's graph into a Neo4j (Bolt) server: sync locally, publish centrally.
    #[command(
        after_help = "Examples:\n  NEO4J_PASSWORD=... infragraph push --neo4j bolt://localhost:7687"
    )]
    Push(PushArgs),
    /// The connections the config file names (named accounts of a plugin): list them,
    /// or check their credentials and reachability without writing anything.
    #[command(
        after_help = "Examples:\n  infragraph connections list\n  infragraph connections check\n  infragraph connections check scaleway/prod --json"
    )]
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// List and inspect plugins; start a new one, check a built one, test one against a
    /// recording (`plugin` works too).
    #[command(
        after_help = "Examples:\n  infragraph plugins list\n  infragraph plugins inspect scaleway\n  infragraph plugin new acme-directory\n  infragraph plugins check target/wasm32-wasip2/release/acme_directory.wasm\n  infragraph plugins test ./acme_directory.wasm --replay rec/ --expect graph.jsonl"
    )]
    #[command(subcommand, alias = "plugin")]
    Plugins(PluginsCommand),
    /// Print the graph schema a plugin writes, generated from its manifest.
    ///
    /// For the built-in providers, docs/providers/<provider>.md in infragraph's repository
    /// describes the graph the plugin is built to, the API facts it relies on and where
    /// it departs from its source.
    #[command(
        after_help = "Examples:\n  infragraph schema scaleway\n  infragraph schema azure --format mermaid"
    )]
    Schema(SchemaArgs),
    /// Read or write a plugin's persistent state, e.g. to move the Azure plugin's
    /// abstraction seed to another store.
    #[command(
        after_help = "Examples:\n  infragraph state get azure <tenant-id> abstraction_seed --store old.db\n  infragraph state get azure <tenant-id> abstraction_seed --store old.db \\\n    | infragraph state set azure <tenant-id> abstraction_seed - --store new.db"
    )]
    #[command(subcommand)]
    State(StateCommand),
    /// Print shell completions or the man page, generated from these very arguments.
    #[command(
        after_help = "Examples:\n  infragraph generate complete-bash > /etc/bash_completion.d/infragraph\n  infragraph generate complete-zsh > ~/.zfunc/_infragraph\n  infragraph generate complete-fish > ~/.config/fish/completions/infragraph.fish\n  infragraph generate man > /usr/local/share/man/man1/infragraph.1"
    )]
    Generate {
        /// What to print.
        #[arg(value_enum)]
        what: Generated,
    },
}

/// What `infragraph generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generated {
    /// The man page (roff).
    Man,
    /// Completions for bash.
    CompleteBash,
    /// Completions for zsh.
    CompleteZsh,
    /// Completions for fish.
    CompleteFish,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the value under KEY of PLUGIN in SCOPE, hex-encoded (exit 1 when unset).
    #[command(after_help = "Examples:\n  infragraph state get azure <tenant-id> abstraction_seed")]
    Get {
        #[command(flatten)]
        entry: StateEntry,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
    },
    /// Store a hex-encoded value under KEY of PLUGIN in SCOPE, replacing any.
    #[command(
        after_help = "Examples:\n  infragraph state get azure <tenant-id> abstraction_seed --store old.db | infragraph state set azure <tenant-id> abstraction_seed - --store new.db"
    )]
    Set {
        #[command(flatten)]
        entry: StateEntry,
        /// The value, hex-encoded (as `state get` prints it), or `-` to read it from
        /// standard input, which keeps it out of the shell history and the process list.
        hex: String,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
    },
}

/// Which state entry: the plugin, its scope (e.g. a tenant id), the key.
#[derive(Debug, clap::Args)]
pub struct StateEntry {
    /// The plugin's name, e.g. azure.
    pub plugin: String,
    /// The scope the plugin declared, e.g. the tenant id.
    pub scope: String,
    /// The key, e.g. abstraction_seed.
    pub key: String,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Every connection: its plugin, its scope and last run (after its first run).
    #[command(
        after_help = "Examples:\n  infragraph connections list\n  infragraph connections list --format csv"
    )]
    List {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Checks each connection's credentials and reachability: runs its plugin until its
    /// first request carrying a credential is answered, and writes nothing.
    #[command(
        after_help = "Examples:\n  infragraph connections check\n  infragraph connections check scaleway            # every connection of a plugin\n  infragraph connections check scaleway/prod --json"
    )]
    Check {
        /// What to check, as for `sync`: plugins, connections; none: every connection.
        #[arg(value_name = "PLUGIN|CONNECTION")]
        targets: Vec<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin found: name, version, contract, source, sha256.
    #[command(
        after_help = "Examples:\n  infragraph plugins list\n  infragraph plugins list --json\n  infragraph plugins list --format csv"
    )]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A plugin's manifest: schema, hosts, credentials (names and env vars), config keys.
    #[command(
        after_help = "Examples:\n  infragraph plugins inspect scaleway\n  infragraph plugins inspect ./my-plugin.wasm --json"
    )]
    Inspect {
        /// A plugin name, or the path to a .wasm file.
        plugin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a new plugin crate to start from: a manifest, a paginated listing, a scope,
    /// errors naming the credential's variable, unit tests, and a release profile that
    /// keeps the component small. Builds with `cargo build --release --target
    /// wasm32-wasip2`.
    #[command(after_help = "Examples:
  infragraph plugin new acme-directory
  infragraph plugin new acme-directory --dir ~/src/acme --sdk-git https://github.com/me/infragraph --sdk-tag sdk-v0.2.0
  infragraph plugin new acme-directory --sdk-path ~/src/infragraph/plugins/sdk")]
    New {
        /// The plugin's name, kebab-case (e.g. acme-directory).
        name: String,
        /// Where to write it (default ./<name>); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Depend on the SDK in this directory (a checkout's plugins/sdk) rather than on
        /// crates.io.
        #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on the SDK from this git repository rather than on crates.io.
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
        /// With --sdk-git: the tag to build against (e.g. sdk-v0.2.0).
        #[arg(long, value_name = "TAG", requires = "sdk_git")]
        sdk_tag: Option<String>,
    },
    /// Sync a plugin from a recording (made with `sync --record DIR`) into a throwaway
    /// store and compare its graph with an expected export: a plugin's own CI check, no
    /// network and no credentials. Writes the expected file when it does not exist.
    #[command(
        after_help = "Examples:\n  infragraph sync ./my_plugin.wasm --record rec/          # once, against the real API\n  infragraph plugins test ./my_plugin.wasm --replay rec/ --expect graph.jsonl\n  infragraph plugins test ./my_plugin.wasm --replay rec/ --expect graph.jsonl --update"
    )]
    Test {
        /// A plugin name, or the path to a .wasm file.
        plugin: String,
        /// The recording directory (`sync --record DIR`).
        #[arg(long, value_name = "DIR")]
        replay: PathBuf,
        /// The expected graph, as `infragraph export --format jsonl` writes it.
        #[arg(long, value_name = "FILE")]
        expect: PathBuf,
        /// Write the graph to --expect instead of comparing.
        #[arg(long)]
        update: bool,
    },
    /// Check a built component without running it: contract version, manifest, schema
    /// naming, hosts and credentials.
    #[command(after_help = "Examples:
  infragraph plugins check target/wasm32-wasip2/release/acme_directory.wasm")]
    Check {
        /// The .wasm file.
        path: PathBuf,
    },
    /// Install a plugin someone else built, from a file, an https URL or an OCI registry:
    /// its minisign signature must be by a key under [trust] keys in the config; it is
    /// copied into the user plugin directory and its sha256 pinned in the config.
    #[command(after_help = "Examples:
  infragraph plugins install ./acme_directory.wasm            # with acme_directory.wasm.minisig beside it
  infragraph plugins install ./acme.wasm --signature acme.sig
  infragraph plugins install https://plugins.example.com/acme.wasm   # and acme.wasm.minisig there
  infragraph plugins install oci://ghcr.io/acme/infragraph-acme:1.0.0
  infragraph plugins install ./mine.wasm --allow-unsigned     # pinned to this very build

A registry that asks for credentials reads them from INFRAGRAPH_REGISTRY_USERNAME and
INFRAGRAPH_REGISTRY_PASSWORD (or the password alone, as a token). Registries on this
machine (localhost, 127.0.0.1) are spoken to over plain HTTP, every other over HTTPS.")]
    Install {
        /// A .wasm file, an https:// URL or an oci://registry/repository:tag reference.
        #[arg(value_name = "FILE|URL|oci://REF")]
        from: String,
        /// The detached signature, a local file (default: the one beside the plugin:
        /// FILE.minisig, URL.minisig, or the registry's signature tag).
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        /// Install without a signature (the sha256 is still pinned).
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// Publish a built plugin to an OCI registry as a WebAssembly artifact (the layout
    /// `wkg` and `oras` use), with its signature (FILE.minisig) beside it.
    #[command(after_help = "Examples:
  infragraph plugin sign acme.wasm --key infragraph.key
  infragraph plugin publish acme.wasm oci://ghcr.io/acme/infragraph-acme:1.0.0

Credentials: INFRAGRAPH_REGISTRY_USERNAME and INFRAGRAPH_REGISTRY_PASSWORD, as for install.")]
    Publish {
        /// The .wasm file.
        file: PathBuf,
        /// Where to: oci://registry/repository:tag.
        #[arg(value_name = "oci://REF")]
        reference: String,
    },
    /// Remove an installed plugin and its pin (built-in plugins cannot be removed).
    #[command(after_help = "Examples:\n  infragraph plugins remove acme-directory")]
    Remove {
        /// The plugin's name.
        name: String,
    },
    /// Check every installed plugin against its pin and its signature; exit 1 when any
    /// does not hold.
    #[command(after_help = "Examples:\n  infragraph plugins verify")]
    Verify,
    /// Make a signing key pair for your plugins (minisign's format): DIR/infragraph.key
    /// (secret, owner-only) and DIR/infragraph.pub.
    #[command(after_help = "Examples:\n  infragraph plugin keygen --dir ~/.config/infragraph/keys")]
    Keygen {
        /// Where to write the keys.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Sign a built plugin: writes FILE.minisig, which `plugins install` checks (the
    /// minisign command makes the same signature).
    #[command(
        after_help = "Examples:\n  infragraph plugin sign target/wasm32-wasip2/release/acme_directory.wasm --key ~/.config/infragraph/keys/infragraph.key"
    )]
    Sign {
        /// The .wasm file.
        file: PathBuf,
        /// The secret key (`plugin keygen`'s infragraph.key, or an unencrypted minisign key).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// A plugin name, or the path to a .wasm file.
    pub plugin: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Markdown)]
    pub format: SchemaFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaFormat {
    Markdown,
    Mermaid,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct StoreArg {
    /// The embedded store (one SQLite file). Default: ./infragraph.db, unless the config
    /// file's [sink.neo4j] names a server.
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

/// Where a Neo4j (or other Bolt) server is. The password is read only from the
/// NEO4J_PASSWORD environment variable.
#[derive(Debug, Default, clap::Args)]
pub struct Neo4jArgs {
    /// A Neo4j (or other Bolt) server, e.g. bolt://localhost:7687, used instead of the
    /// embedded store; password from NEO4J_PASSWORD. Without --store or --neo4j, every
    /// command uses the config file's [sink.neo4j] server when it names one.
    #[arg(long, value_name = "URI")]
    pub neo4j: Option<String>,
    /// The Neo4j user (default neo4j).
    #[arg(long, value_name = "USER")]
    pub neo4j_user: Option<String>,
    /// The Neo4j database (default neo4j).
    #[arg(long, value_name = "NAME")]
    pub neo4j_database: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// What to sync: a plugin (every connection of it), a connection (plugin/name or its
    /// name), or a path to a .wasm file. None: every connection in the config file.
    #[arg(value_name = "PLUGIN|CONNECTION")]
    pub plugins: Vec<String>,
    /// Only shard K of N (e.g. 2/3): a stable split of the connections by name, so N
    /// machines or scheduled jobs each given one shard sync every connection once.
    /// `job/N` takes K from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (plus one).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// Also write the run report (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Records per write transaction (default 10000).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Plugins synced at once (default 4).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub concurrency: Option<usize>,
    /// When another run is syncing the same plugin and scope, wait for it to finish
    /// instead of failing at once.
    #[arg(long)]
    pub wait: bool,
    /// Let a plugin given by path run under the name of an installed plugin (it then
    /// writes that plugin's records). Pinning the file in the config does the same.
    #[arg(long)]
    pub replace_installed: bool,
    /// With --replace-installed: let the replacement read and write the installed
    /// plugin's state (cursors, and secrets such as the Azure abstraction seed), which
    /// it otherwise keeps apart.
    #[arg(long, requires = "replace_installed")]
    pub adopt_state: bool,
    /// Also write every HTTP exchange of each plugin into DIR/<plugin> as plain files
    /// (credentials left as placeholders), to replay later with --replay.
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer each plugin's requests from the recording in DIR/<plugin> instead of the
    /// network; no credentials needed. Fails naming the first request it has no answer
    /// for.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// Do not link people after the runs, though the config has [people] rules.
    #[arg(long)]
    pub no_people: bool,
    /// The summary; `--json` prints the run reports, as --report writes them.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Read the run history kept in a Neo4j server instead (--neo4j URI).
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// `--json` prints the full reports, every field.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Nodes with a label (primary or extra), optionally filtered by properties.
    #[command(
        after_help = "Examples:\n  infragraph query nodes UserAccount\n  infragraph query nodes AcmeUser --where email=user5@acme-corp.example --json\n  infragraph query nodes AzureResource --wide          # whole values, every column"
    )]
    Nodes {
        /// The label, e.g. ScalewayInstance or UserAccount.
        label: String,
        /// PROPERTY=VALUE filters (all must match); `id=...` matches the key.
        #[arg(long = "where", value_name = "PROPERTY=VALUE")]
        filters: Vec<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The relationships of one node and the nodes at their other end.
    #[command(
        after_help = "Examples:\n  infragraph query neighbours AcmeUser user-0003\n  infragraph query neighbours CriticalProject mobile-app --direction in --type CAN_ACCESS"
    )]
    Neighbours {
        /// The node's label.
        label: String,
        /// The node's id.
        id: String,
        /// Which relationships: outgoing, incoming or both.
        #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
        direction: DirectionArg,
        /// Only these relationship types (repeat, or separate with commas).
        #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
        types: Vec<String>,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The shortest path from one node to another, following relationships the way they
    /// point (`--direction both` to ignore it); for access paths see `infragraph access path`.
    #[command(
        after_help = "Examples:\n  infragraph query path AcmeUser user-0003 AcmeGroup group-002 --max-depth 6\n  infragraph query path AcmeTenant acme-corp AcmeUser user-0003 --type RESOURCE\n  infragraph query path AcmeUser user-0003 AcmeUser user-0007 --direction both"
    )]
    Path {
        /// Start node's label.
        from_label: String,
        /// Start node's id.
        from_id: String,
        /// End node's label.
        to_label: String,
        /// End node's id.
        to_id: String,
        /// Which way to follow relationships: out (the way they point, from the start),
        /// in, or both (ignoring direction, so a path may run through a shared container
        /// and mean nothing).
        #[arg(long, value_enum, default_value_t = DirectionArg::Out)]
        direction: DirectionArg,
        /// Only these relationship types (repeat, or separate with commas).
        #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
        types: Vec<String>,
        /// Give up beyond this many hops.
        #[arg(long, default_value_t = 8)]
        max_depth: usize,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        neo4j: Neo4jArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    Out,
    In,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Export the graph infragraph wrote into a Neo4j server instead (--neo4j URI; jsonl
    /// only).
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Graphml,
    Cypher,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// A jsonl file as `infragraph export --format jsonl` (or APOC) writes it.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// Records per write transaction (default 10000).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub batch_size: Option<usize>,
}

/// A count of which 0 would mean nothing runs (users write it meaning "no limit").
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("give at least 1 (0 does not mean \"no limit\")".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?} is not a count: {e}")),
    }
}

/// `K/N` with `1 <= K <= N`.
fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    shard_of(text, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref())
}

/// `K/N`, or `job/N` for the shard of a Kubernetes Indexed Job's pod: its
/// `JOB_COMPLETION_INDEX` (0 to N-1) plus one, so a job with no shell to do arithmetic in
/// (the image has none) still gives each pod its own shard.
fn shard_of(text: &str, job_index: Option<&str>) -> Result<(u32, u32), String> {
    let bad = |why: String| format!("{text:?} is not a shard: {why}");
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| bad("give K/N with 1 <= K <= N, e.g. 1/3".into()))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| bad("N must be a whole number, e.g. 1/3".into()))?;
    let k: u32 = if k.trim() == "job" {
        let index = job_index.ok_or_else(|| {
            bad(
                "`job/N` reads JOB_COMPLETION_INDEX, which Kubernetes sets in the pods of \
                 an Indexed Job; it is not set here"
                    .into(),
            )
        })?;
        index
            .trim()
            .parse::<u32>()
            .map(|i| i + 1)
            .map_err(|_| bad(format!("JOB_COMPLETION_INDEX is {index:?}, not a number")))?
    } else {
        k.trim()
            .parse()
            .map_err(|_| bad("give K/N with 1 <= K <= N, e.g. 1/3".into()))?
    };
    if k >= 1 && k <= n {
        Ok((k, n))
    } else {
        Err(bad(format!("shard {k} of {n} does not exist: 1 <= K <= N")))
    }
}

/// `infragraph access`: questions of access, answered by following the relationships
/// whose kinds have an access meaning (`infragraph schema <plugin>` lists them).
#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Every principal that can reach the node, with each role and the shortest path
    /// granting it (through memberships, keys acting as their owner, and scopes holding
    /// the node).
    #[command(
        after_help = "Examples:\n  infragraph access who ResourceGroup rg-web\n  infragraph access who SpaceliftStack infra --role admin --json"
    )]
    Who {
        /// The node's label.
        label: String,
        /// The node's id.
        id: String,
        #[command(flatten)]
        ask: AccessArgs,
    },
    /// Everything the principal can reach, with each role and the shortest path granting it.
    #[command(
        after_help = "Examples:\n  infragraph access what User u-alice\n  infragraph access what ScalewayApiKey SCWXXXXXXXXXXXXXXXXX --format csv"
    )]
    What {
        /// The principal's label.
        label: String,
        /// The principal's id.
        id: String,
        #[command(flatten)]
        ask: AccessArgs,
    },
    /// The access paths from a principal to a node: the shortest for each role it holds
    /// there, each relationship with its properties.
    #[command(
        after_help = "Examples:\n  infragraph access path User u-alice ResourceGroup rg-web\n  infragraph access path User u-alice ResourceGroup rg-web --format mermaid > path.mmd"
    )]
    Path {
        /// The principal's label.
        from_label: String,
        /// The principal's id.
        from_id: String,
        /// The node's label.
        to_label: String,
        /// The node's id.
        to_id: String,
        #[command(flatten)]
        ask: AccessArgs,
    },
}

/// What every access question takes.
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Only this role or permission (any case), e.g. Owner or admin.
    #[arg(long, alias = "permission", value_name = "ROLE")]
    pub role: Option<String>,
    /// table (fits the terminal), csv, json, or mermaid (a flowchart of the paths).
    #[arg(long, value_enum, default_value_t = AccessFormat::Table, value_name = "FORMAT")]
    pub format: AccessFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Tables: every column and whole values, however wide the terminal.
    #[arg(long)]
    pub wide: bool,
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
}

/// How an access answer prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessFormat {
    /// Columns sized to the terminal.
    Table,
    /// Every column and whole values.
    Csv,
    /// One JSON document, every path with every relationship's properties.
    Json,
    /// A Mermaid flowchart of the paths, to paste where Mermaid renders.
    Mermaid,
}

pub fn graph_args(store: &StoreArg, neo4j: &Neo4jArgs) -> infragraph_app::GraphArgs {
    infragraph_app::GraphArgs {
        store: store.store.clone(),
        ..server_args(neo4j)
    }
}

/// Just a server, for `push`, whose `--store` is the source rather than where the graph is.
pub fn server_args(neo4j: &Neo4jArgs) -> infragraph_app::GraphArgs {
    infragraph_app::GraphArgs {
        store: None,
        neo4j: neo4j.neo4j.clone(),
        neo4j_user: neo4j.neo4j_user.clone(),
        neo4j_database: neo4j.neo4j_database.clone(),
    }
}

/// Just a store file, for the commands that read only the embedded store.
pub fn store_args(store: &StoreArg) -> infragraph_app::GraphArgs {
    infragraph_app::GraphArgs {
        store: store.store.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_k_of_n_or_the_indexed_jobs_pod() {
        assert_eq!(shard_of("2/3", None), Ok((2, 3)));
        assert_eq!(shard_of("job/3", Some("0")), Ok((1, 3)));
        assert_eq!(shard_of("job/3", Some("2")), Ok((3, 3)));
        let err = shard_of("job/3", Some("3")).unwrap_err();
        assert!(err.contains("shard 4 of 3"), "{err}");
        let err = shard_of("job/3", None).unwrap_err();
        assert!(err.contains("JOB_COMPLETION_INDEX"), "{err}");
        assert!(shard_of("0/3", None).is_err());
        assert!(shard_of("x/3", None).is_err());
        assert!(shard_of("3", None).is_err());
    }
}
