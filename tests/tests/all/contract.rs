//! Loading: contract versions, the compilation cache, pinning, discovery by name.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_runtime::{Catalog, ErrorKind, Runtime, Source};
use infragraph_tests::harness;

use crate::runtime;

#[tokio::test]
async fn a_component_for_another_contract_version_is_refused_naming_both() {
    let rt = runtime();
    let err = rt
        .load(&harness::guest("old-contract"), None)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err.kind(), ErrorKind::Contract { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("0.0.9") && text.contains("supports 0.1.0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_second_load_comes_from_the_cache() {
    let dir = tempdir();
    let path = harness::guest("misbehave");
    let first = Runtime::new(Some(dir.clone()))
        .unwrap()
        .load(&path, None)
        .await
        .unwrap();
    assert!(!first.from_cache());
    let again = Runtime::new(Some(dir.clone()))
        .unwrap()
        .load(&path, None)
        .await
        .unwrap();
    assert!(again.from_cache());
    assert_eq!(first.manifest(), again.manifest());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Compiled code runs as the host: a cache that another user could have written into is
/// not loaded from (nor written to), whether its directory or its entry is open to them;
/// made the owner's alone again, it is used.
#[tokio::test]
async fn a_cache_others_can_write_is_not_loaded_from() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let path = harness::guest("misbehave");
    let load = || async {
        Runtime::new(Some(dir.clone()))
            .unwrap()
            .load(&path, None)
            .await
            .unwrap()
    };
    assert!(!load().await.from_cache());
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let engine_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::metadata(&engine_dir).unwrap().permissions().mode() & 0o777,
        0o700,
        "created owner-only"
    );
    let entry = std::fs::read_dir(&engine_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    assert_eq!(
        std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for (what, p, open) in [
        ("the cache's root", dir.clone(), 0o777),
        ("the engine's directory", engine_dir.clone(), 0o770),
        ("the entry", entry.clone(), 0o666),
    ] {
        let before = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        mode(&p, open);
        assert!(
            !load().await.from_cache(),
            "{what} open to others was trusted"
        );
        mode(&p, before);
    }
    assert!(
        load().await.from_cache(),
        "the owner's own cache is used again"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// What only needs manifests (the access questions) reads each plugin once, then from the
/// manifest kept beside its compiled code: nothing is compiled or run again. The kept file
/// is what the second read returns (edited here to prove it was read).
#[tokio::test]
async fn a_manifest_is_read_once_then_kept_beside_the_compiled_code() {
    let dir = tempdir();
    let path = harness::guest("misbehave");
    let rt = Runtime::new(Some(dir.clone())).unwrap();
    let (first, sha) = rt.manifest_of(&path).await.unwrap();
    assert_eq!(first.name, "misbehave");
    let kept = walk(&dir)
        .into_iter()
        .find(|p| p.ends_with(format!("{sha}.manifest.json")))
        .expect("the manifest is kept");
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    edited["description"] = "read from the kept file".into();
    std::fs::write(&kept, edited.to_string()).unwrap();
    let (again, same) = Runtime::new(Some(dir.clone()))
        .unwrap()
        .manifest_of(&path)
        .await
        .unwrap();
    assert_eq!(same, sha);
    assert_eq!(again.description, "read from the kept file");
    // Without a cache directory every read loads the plugin.
    let (uncached, _) = Runtime::new(None)
        .unwrap()
        .manifest_of(&path)
        .await
        .unwrap();
    assert_eq!(uncached.description, first.description);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_ignored_and_replaced() {
    let path = harness::guest("misbehave");
    let damage = |what: &str, code: &[u8]| match what {
        "overwritten" => b"not a compiled module".to_vec(),
        _ => code[..code.len() / 2].to_vec(),
    };
    for what in ["overwritten", "cut short"] {
        let dir = tempdir();
        let load = || async {
            Runtime::new(Some(dir.clone()))
                .unwrap()
                .load(&path, None)
                .await
        };
        let first = load().await.unwrap();
        let entries = walk(&dir);
        assert_eq!(entries.len(), 1, "one entry: {entries:?}");
        let code = std::fs::read(&entries[0]).unwrap();
        std::fs::write(&entries[0], damage(what, &code)).unwrap();

        let again = load()
            .await
            .unwrap_or_else(|e| panic!("an entry {what} fails the load: {e}"));
        assert!(!again.from_cache(), "an entry {what} is not trusted");
        assert_eq!(first.manifest(), again.manifest());
        let third = load().await.unwrap();
        assert!(
            third.from_cache(),
            "an entry {what} is replaced by the recompiled code"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugins_loaded_at_once_into_one_cache_each_load_their_own_code() {
    let dir = tempdir();
    let paths: Vec<_> = ["example", "scaleway", "spacelift", "critical", "azure"]
        .map(harness::plugin)
        .into_iter()
        .chain(["misbehave", "emit-bench"].map(harness::guest))
        .collect();
    let rt = Arc::new(Runtime::new(Some(dir.clone())).unwrap());
    let mut loads = tokio::task::JoinSet::new();
    for path in paths.clone() {
        let rt = rt.clone();
        loads.spawn(async move {
            let plugin = rt.load(&path, None).await.unwrap();
            (path, plugin.manifest().name.clone())
        });
    }
    let names: BTreeMap<_, _> = loads.join_all().await.into_iter().collect();
    let distinct: BTreeSet<_> = names.values().collect();
    assert_eq!(
        distinct.len(),
        paths.len(),
        "each plugin has a name of its own: {names:?}"
    );

    // A fresh engine reads every plugin's code from the cache; code stored under another
    // plugin's key would answer `manifest()` with that plugin's name.
    let rt = Runtime::new(Some(dir.clone())).unwrap();
    for path in &paths {
        let plugin = rt.load(path, None).await.unwrap();
        assert!(plugin.from_cache(), "{} was cached", path.display());
        assert_eq!(
            &plugin.manifest().name,
            &names[path],
            "{} loads its own code",
            path.display()
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Compiling runs on a blocking thread: on a single-threaded tokio runtime, another task
/// keeps being scheduled while a plugin compiles.
#[test]
fn compiling_a_plugin_leaves_the_async_thread_free() {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        // No cache, so the plugin is compiled; the largest one, so that takes a while.
        let rt = runtime();
        let path = harness::plugin("critical");
        let loaded = Cell::new(false);
        let started = Instant::now();
        let load = async {
            let plugin = rt.load(&path, None).await;
            loaded.set(true);
            plugin
        };
        let other_task = async {
            // Measured from `started`, not from this task's first poll, and at least
            // once: a load that blocks before its first await (or never awaits) would
            // otherwise go unmeasured.
            let (mut longest, mut last) = (Duration::ZERO, started);
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
                if loaded.get() {
                    break longest;
                }
            }
        };
        let (plugin, longest_wait) = tokio::join!(load, other_task);
        plugin.unwrap();
        let took = started.elapsed();
        assert!(
            longest_wait < took / 2,
            "the async thread was blocked for {longest_wait:?} of a {took:?} load"
        );
    });
}

#[tokio::test]
async fn a_pinned_plugin_with_another_digest_is_refused() {
    let rt = runtime();
    let dir = tempdir();
    std::fs::copy(harness::guest("misbehave"), dir.join("misbehave.wasm")).unwrap();
    let mut catalog = Catalog {
        user: vec![dir.clone()],
        ..Catalog::default()
    };
    let (plugin, source) = catalog.find(&rt, "misbehave").await.unwrap();
    assert_eq!(source, Source::User);
    catalog.pins = BTreeMap::from([("misbehave".to_string(), plugin.sha256().to_string())]);
    catalog
        .find(&rt, "misbehave")
        .await
        .expect("the right digest loads");
    catalog.pins.insert("misbehave".into(), "00".repeat(32));
    let err = catalog.find(&rt, "misbehave").await.err().expect("refused");
    assert!(matches!(err.kind(), ErrorKind::PinMismatch { .. }), "{err}");
    assert!(err.to_string().contains(plugin.sha256()), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_unknown_name_lists_what_is_installed() {
    let rt = runtime();
    let dir = tempdir();
    std::fs::copy(harness::guest("misbehave"), dir.join("renamed.wasm")).unwrap();
    let catalog = Catalog {
        user: vec![dir.clone()],
        ..Catalog::default()
    };
    // Found by its manifest name even though the file is named otherwise.
    catalog.find(&rt, "misbehave").await.unwrap();
    let err = catalog.find(&rt, "nope").await.err().unwrap().to_string();
    assert!(
        err.contains("no plugin named \"nope\"") && err.contains("misbehave"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "infragraph-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Contract 0.2.0 added access meaning to relationship kinds. A plugin built against 0.1.0
/// (wit-bindgen alone, no SDK) still loads, syncs its graph, and its relationships simply
/// mean nothing for access; the built-in plugins speak 0.2.0 and say what theirs mean.
#[test]
fn a_plugin_built_against_contract_0_1_0_still_loads_and_syncs() {
    use infragraph_tests::cli::{Work, run};
    let w = Work::new("contract-0-1");
    let guest = harness::guest("contract-0-1");
    let guest = guest.to_str().unwrap();
    let ran = run(&mut w.cmd(&["sync", guest, "--store", &w.store()]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let graph = w.graph();
    assert!(graph.has("LegacyUser", "u1") && graph.has("LegacyGroup", "g1"));
    assert_eq!(graph.edges_of("MEMBER_OF"), 1);

    let schema = run(&mut w.cmd(&["schema", guest, "--json"]));
    assert_eq!(schema.code, 0, "{}", schema.stderr);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).unwrap();
    assert_eq!(schema["edges"][0]["rel_type"], "MEMBER_OF");
    assert!(schema["edges"][0].get("access").is_none(), "{schema}");

    let list = run(&mut w.cmd(&["plugins", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let contract_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["contract"].clone())
    };
    assert_eq!(contract_of("scaleway"), Some("0.3.0".into()), "{list}");
}

/// Contract 0.3.0 added map properties. A plugin built against 0.2.0 (wit-bindgen alone)
/// still loads and syncs, and keeps what its relationships mean for access.
#[test]
fn a_plugin_built_against_contract_0_2_0_still_loads_syncs_and_keeps_its_access_meaning() {
    use infragraph_tests::cli::{Work, run};
    let w = Work::new("contract-0-2");
    let guest = harness::guest("contract-0-2");
    let guest = guest.to_str().unwrap();
    let ran = run(&mut w.cmd(&["sync", guest, "--store", &w.store()]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let graph = w.graph();
    assert!(graph.has("LegacyTwoUser", "u1") && graph.has("LegacyTwoGroup", "g1"));
    assert_eq!(graph.edges_of("MEMBER_OF"), 1);

    let schema = run(&mut w.cmd(&["schema", guest, "--json"]));
    assert_eq!(schema.code, 0, "{}", schema.stderr);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).unwrap();
    assert_eq!(
        schema["edges"][0]["access"]["kind"], "membership",
        "{schema}"
    );
    let checked = run(&mut w.cmd(&["plugins", "check", guest]));
    assert!(
        checked.stdout.contains("legacy-two 0.2.0 (contract 0.2.0)"),
        "{}",
        checked.stdout
    );
}

/// The built-in plugins declare what their relationships mean for access, and `schema`
/// shows it in every format.
#[test]
fn built_in_plugins_declare_access_and_schema_shows_it() {
    use infragraph_tests::cli::{Work, run};
    let w = Work::new("access-schema");
    let kinds = |plugin: &str| -> Vec<(String, String, String, serde_json::Value)> {
        let ran = run(&mut w.cmd(&["schema", plugin, "--json"]));
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let schema: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        schema["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap().to_string();
                (s("from"), s("rel_type"), s("to"), e["access"].clone())
            })
            .collect()
    };
    let access = |plugin: &str, from: &str, rel: &str, to: &str| {
        kinds(plugin)
            .into_iter()
            .find(|(f, r, t, _)| f == from && r == rel && t == to)
            .unwrap_or_else(|| panic!("{plugin} declares no (:{from})-[:{rel}]->(:{to})"))
            .3
    };
    let kind = |v: serde_json::Value| v["kind"].as_str().map(str::to_string);
    // Azure: roles on scopes, scopes holding scopes, nested groups.
    let grant = access("azure", "User", "ASSIGNED_ROLE", "Subscription");
    assert_eq!(kind(grant.clone()).as_deref(), Some("grant"));
    assert_eq!(grant["grants"], serde_json::json!(["role_name"]));
    assert_eq!(
        kind(access("azure", "Subscription", "CONTAINS", "ResourceGroup")).as_deref(),
        Some("containment")
    );
    assert_eq!(
        kind(access("azure", "Group", "MEMBER_OF", "Group")).as_deref(),
        Some("membership")
    );
    // Spacelift: a role on a space reaches its child spaces and their stacks.
    let role = access(
        "spacelift",
        "SpaceliftUser",
        "HAS_ROLE_IN",
        "SpaceliftSpace",
    );
    assert_eq!(role["grants"], serde_json::json!(["role"]));
    assert_eq!(
        kind(access(
            "spacelift",
            "SpaceliftSpace",
            "CONTAINS",
            "SpaceliftSpace"
        ))
        .as_deref(),
        Some("containment")
    );
    // Scaleway: an API key acts as its owner; the edge points from the owner.
    let key = access("scaleway", "ScalewayUser", "HAS", "ScalewayApiKey");
    assert_eq!(kind(key.clone()).as_deref(), Some("acting-as"));
    assert_eq!(key["reversed"], true);
    // A fact is not access: a volume's snapshot, an IP on an instance.
    assert!(
        access(
            "scaleway",
            "ScalewayVolume",
            "HAS",
            "ScalewayVolumeSnapshot"
        )
        .is_null()
    );

    let md = run(&mut w.cmd(&["schema", "spacelift"]));
    assert!(
        md.stdout.contains("## Access")
            && md.stdout.contains(
                "| `(:SpaceliftUser)-[:HAS_ROLE_IN]->(:SpaceliftSpace)` | grant | `role` |"
            ),
        "{}",
        md.stdout
    );
    let mermaid = run(&mut w.cmd(&["schema", "scaleway", "--format", "mermaid"]));
    assert!(
        mermaid.stdout.contains("-- \"MEMBER_OF (membership)\" -->"),
        "{}",
        mermaid.stdout
    );
}
