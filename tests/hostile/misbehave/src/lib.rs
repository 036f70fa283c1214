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
        .credential(
            Credential::new(
                "token",
                "MISBEHAVE_TOKEN",
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
        cx.scope(THING, "scope-1");
        match config.require_text("mode")? {
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
            "partial" => {
                cx.node(THING, "t1")
                    .prop("name", "thing 1")
                    .prop("count", 1)
                    .emit();
                cx.mark_incomplete(THING, None, "zone fr-par-2 answered 403");
                Ok(Summary::new("ok"))
            }
            "emit-then-hang" => emit_then_hang(cx, config),
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
