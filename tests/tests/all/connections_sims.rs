//! Connections against the multi-account simulators (issue 18), through the `infragraph`
//! binary: for Scaleway, Azure, Spacelift and Critical, two connections of the plugin with
//! different credentials land in two scopes (two run records, each graph complete: the
//! graph of both is the union of each synced alone), and a third connection whose
//! account refuses its credentials fails while the others succeed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use infragraph_tests::bench::connections::{Connection, write_config};
use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::graph::{Graph, Key};
use infragraph_tests::sim::{
    Account, AzureData, AzureSim, CriticalData, CriticalSim, PerAccount, ScalewayData, ScalewaySim,
    SpaceliftData, SpaceliftSim,
};
use serde_json::Value as Json;

/// What a graph holds, bookkeeping aside: its node keys and relationship keys.
type Shape = (BTreeSet<Key>, BTreeSet<(String, Key, Key)>);

fn shape(g: &Graph) -> Shape {
    (
        g.nodes.keys().cloned().collect(),
        g.edges.keys().cloned().collect(),
    )
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

/// `infragraph --config <cfg> sync [target] --store <store> --report <report>`.
fn sync(w: &Work, config: &str, target: Option<&str>, store: &str, report: &str) -> Ran {
    let mut args = vec!["--config", config, "sync"];
    args.extend(target);
    args.extend(["--store", store, "--report", report]);
    run(&mut w.cmd(&args))
}

fn reports(w: &Work, file: &str) -> Vec<Json> {
    let text = std::fs::read_to_string(w.0.join(file)).expect("a report");
    serde_json::from_str(&text).expect("a JSON report")
}

/// `good` (two connections of `plugin` with accounts of their own) each synced alone,
/// then with `refused` (whose account refuses its credentials) in one sync of every
/// connection: the two land in two scopes with a run each, their graph is the union of
/// the two synced alone, and the refused one fails, naming its connection.
fn two_scopes_and_a_refusal(name: &str, good: [Connection; 2], refused: Connection) {
    let w = Work::new(name);
    let all: Vec<Connection> = good.iter().cloned().chain([refused.clone()]).collect();
    let config = write_config(&w.0, None, &all);
    let config = config.to_string_lossy().into_owned();
    let store = |s: &str| w.0.join(s).to_string_lossy().into_owned();
    let mut alone = Vec::new();
    for (k, c) in good.iter().enumerate() {
        let db = store(&format!("alone-{k}.db"));
        ok(&sync(&w, &config, Some(&c.address()), &db, "alone.json"));
        let g = w.graph_of(&db);
        assert!(
            g.nodes.len() > 1,
            "{} wrote a graph:\n{}",
            c.address(),
            g.lines()
        );
        alone.push(shape(&g));
    }
    assert_ne!(alone[0], alone[1], "the two accounts hold different data");

    let both = store("all.db");
    let ran = sync(&w, &config, None, &both, "all.json");
    assert_ne!(
        ran.code, 0,
        "a refused connection fails the sync:\n{}",
        ran.stdout
    );
    let runs = reports(&w, "all.json");
    let of = |c: &Connection| -> &Json {
        runs.iter()
            .find(|r| r["connection"] == c.address().as_str())
            .unwrap_or_else(|| panic!("no run of {} in {runs:#?}", c.address()))
    };
    let scopes: Vec<&Json> = good
        .iter()
        .map(|c| {
            let r = of(c);
            assert_eq!(r["status"], "succeeded", "{}: {r:#}", c.address());
            assert!(!r["scope"].is_null(), "{} declared a scope", c.address());
            &r["scope"]
        })
        .collect();
    assert_ne!(scopes[0], scopes[1], "two connections, two scopes");
    let failed = of(&refused);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let said = format!("{}\n{}", ran.stdout, ran.stderr);
    assert!(
        said.contains(&refused.name),
        "the failure names its connection:\n{said}"
    );
    // Its credential came from the file the connection names, and that is what the
    // failure tells the operator to check, not the plugin's default variable.
    let its_file = format!("secrets/{}.", refused.name);
    assert!(
        said.contains(&its_file),
        "the failure names the connection's secret file ({its_file}...):\n{said}"
    );

    let (mut nodes, mut edges) = alone[0].clone();
    nodes.extend(alone[1].0.iter().cloned());
    edges.extend(alone[1].1.iter().cloned());
    let together = shape(&w.graph_of(&both));
    let missing: Vec<_> = nodes.difference(&together.0).collect();
    let extra: Vec<_> = together.0.difference(&nodes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "every node of both, and nothing else: missing {missing:?}, extra {extra:?}"
    );
    let missing: Vec<_> = edges.difference(&together.1).collect();
    let extra: Vec<_> = together.1.difference(&edges).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "every relationship of both, and nothing else: missing {missing:?}, extra {extra:?}"
    );

    let history = run(&mut w.cmd(&["runs", "--json", "--store", &both]));
    ok(&history);
    let history: Vec<Json> = serde_json::from_str(&history.stdout).expect("runs --json");
    for c in &good {
        assert!(
            history
                .iter()
                .any(|r| r.to_string().contains(&c.address()) && r["status"] == "succeeded"),
            "a run record of {}: {history:#?}",
            c.address()
        );
    }
}

#[test]
fn scaleway_organizations_land_in_their_scopes_and_a_refused_key_fails_alone() {
    let (a, b) = (
        ScalewayData::generate_org(1, 1, 12),
        ScalewayData::generate_org(2, 2, 7),
    );
    let refused = ScalewayData::generate_org(3, 1, 3);
    let sim = ScalewaySim::start_many(vec![
        Account::new(a.clone(), "scw-key-org-a", ""),
        Account::new(b.clone(), "scw-key-org-b", ""),
        Account::new(refused.clone(), "key-refused", "").refused(),
    ]);
    let conn = |name: &str, data: &ScalewayData, key: &str| {
        Connection::new("scaleway", name)
            .config("api_url", &sim.url())
            .config("organization_id", &data.organization_id)
            .secret("secret_key", key)
    };
    two_scopes_and_a_refusal(
        "conn-scaleway",
        [
            conn("org-a", &a, "scw-key-org-a"),
            conn("org-b", &b, "scw-key-org-b"),
        ],
        conn("org-refused", &refused, "key-refused"),
    );
}

/// `connections check` of an organization whose key is refused and of one whose endpoint
/// cannot be reached. The plugin asks its whole first round at once (a first page of each
/// of its 66 listings); the first answer settles a check and the requests still waiting
/// for a slot are not sent; what the plugin then says of every listing it could not
/// finish (one warning per listing, when the endpoint is unreachable) stays in the debug
/// log, and the verdicts are what is printed.
#[test]
fn a_check_ends_at_its_first_answer_and_prints_only_its_verdict() {
    let refused = ScalewayData::generate_org(3, 1, 3);
    let sim = ScalewaySim::start_many(vec![
        Account::new(refused.clone(), "key-refused", "").refused(),
    ]);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("its address").port()
    };
    let w = Work::new("conn-check-first-answer");
    let connections = [
        Connection::new("scaleway", "org-refused")
            .config("api_url", &sim.url())
            .config("organization_id", &refused.organization_id)
            .secret("secret_key", "key-refused"),
        Connection::new("scaleway", "org-unreachable")
            .config("api_url", &format!("http://127.0.0.1:{closed}"))
            .config("organization_id", &refused.organization_id)
            .secret("secret_key", "key-unreachable"),
    ];
    let config = write_config(&w.0, None, &connections);
    let config = config.to_string_lossy().into_owned();
    let ran = run(&mut w.cmd(&["--config", &config, "connections", "check", "--json"]));
    assert_eq!(ran.code, 2, "neither check passes:\n{}", ran.stderr);
    let checked: Vec<Json> = serde_json::from_str(&ran.stdout).expect("check --json");
    let verdict = |c: &str| {
        let r = checked
            .iter()
            .find(|r| r["connection"] == c)
            .unwrap_or_else(|| panic!("no verdict for {c}: {checked:#?}"));
        (r["status"].clone(), r["http_status"].clone())
    };
    assert_eq!(
        verdict("scaleway/org-refused"),
        (Json::from("refused"), Json::from(401))
    );
    assert_eq!(
        verdict("scaleway/org-unreachable"),
        (Json::from("unreachable"), Json::Null)
    );
    // Sixteen at a time to one host: those in flight when the first answer came, and a
    // few that took a slot freed before the check was settled, not the 66 of the round.
    let sent = sim.request_log().len();
    assert!(
        sent <= 32,
        "{sent} requests reached the simulator: the check waited for the whole round"
    );
    assert!(
        !ran.stderr.contains("WARN"),
        "the check printed the plugin's complaints:\n{}",
        ran.stderr
    );
}

#[test]
fn azure_tenants_land_in_their_scopes_and_a_refused_client_fails_alone() {
    let (a, b) = (
        AzureData::sample(),
        AzureData::generate_tenant(1, 2, 40, 30),
    );
    let refused = AzureData::generate_tenant(2, 1, 5, 2);
    let sim = AzureSim::start_many(vec![
        Account::new(a.clone(), "client-a", "secret-a"),
        Account::new(b.clone(), "client-b", "secret-b"),
        Account::new(refused.clone(), "client-c", "secret-c").refused(),
    ]);
    // A seed per tenant, the same in every store: abstracted ids are derived from it.
    let conn = |name: &str, data: &AzureData, id: &str, secret: &str| {
        Connection::new("azure", name)
            .config("tenant_id", &data.tenant_id)
            .config("abstraction_seed", &format!("{:0>64}", hex::encode(name)))
            .config("client_id", id)
            .config("login_url", &sim.url())
            .config("arm_url", &sim.url())
            .config("graph_url", &sim.url())
            .secret("client_secret", secret)
    };
    two_scopes_and_a_refusal(
        "conn-azure",
        [
            conn("tenant-a", &a, "client-a", "secret-a"),
            conn("tenant-b", &b, "client-b", "secret-b"),
        ],
        conn("tenant-refused", &refused, "client-c", "secret-c"),
    );
}

#[test]
fn spacelift_accounts_land_in_their_scopes_and_a_refused_key_fails_alone() {
    let a = SpaceliftData::sample();
    let mut b = SpaceliftData::generate(4, 3);
    b.account_id = "other-account".into();
    let mut refused = SpaceliftData::generate(1, 1);
    refused.account_id = "refused-account".into();
    let sim = SpaceliftSim::start_many(vec![
        Account::new(a.clone(), "KEY-A", "secret-a"),
        Account::new(b.clone(), "KEY-B", "secret-b"),
        Account::new(refused.clone(), "KEY-C", "secret-c").refused(),
    ]);
    // Each account at its own endpoint, as Spacelift's `{account}.app.spacelift.io`.
    let conn = |name: &str, data: &SpaceliftData, id: &str, secret: &str| {
        Connection::new("spacelift", name)
            .config("api_key_endpoint", &sim.endpoint_of(&data.account_id))
            .config("api_key_id", id)
            .config("account_id", &data.account_id)
            .secret("api_key_secret", secret)
    };
    two_scopes_and_a_refusal(
        "conn-spacelift",
        [
            conn("sample", &a, "KEY-A", "secret-a"),
            conn("other", &b, "KEY-B", "secret-b"),
        ],
        conn("refused", &refused, "KEY-C", "secret-c"),
    );
}

#[test]
fn critical_databases_land_in_their_scopes_and_a_refused_user_fails_alone() {
    let sim = CriticalSim::start_many(vec![
        (
            "critical_a".into(),
            Account::new(CriticalData::sample(), "reader-a", "arango-pw-a"),
        ),
        (
            "critical_b".into(),
            Account::new(
                CriticalData::generate(40, 8, 5, 3),
                "reader-b",
                "arango-pw-b",
            ),
        ),
        (
            "critical_c".into(),
            Account::new(
                CriticalData::generate(5, 2, 1, 1),
                "reader-c",
                "arango-pw-c",
            )
            .refused(),
        ),
    ]);
    let conn = |name: &str, db: &str, user: &str, password: &str| {
        Connection::new("critical", name)
            .config("connection_string", &sim.url())
            .config("database", db)
            .config("user", user)
            .secret("password", password)
    };
    two_scopes_and_a_refusal(
        "conn-critical",
        [
            conn("prod", "critical_a", "reader-a", "arango-pw-a"),
            conn("staging", "critical_b", "reader-b", "arango-pw-b"),
        ],
        conn("refused", "critical_c", "reader-c", "arango-pw-c"),
    );
}

/// A connection whose account is rate-limited (and answered 429 past its budget) does not
/// slow another of the same plugin synced with it.
#[test]
fn a_rate_limited_scaleway_connection_does_not_slow_another() {
    let w = Work::new("conn-rate-limited");
    let (a, b) = (
        ScalewayData::generate_org(4, 1, 10),
        ScalewayData::generate_org(5, 1, 10),
    );
    let sim = ScalewaySim::start_many(vec![
        Account::new(a.clone(), "key-free", ""),
        Account::new(b.clone(), "key-limited", "").rate_limit(20),
    ]);
    sim.set_latency(Duration::from_millis(20));
    let conn = |name: &str, data: &ScalewayData, key: &str| {
        Connection::new("scaleway", name)
            .config("api_url", &sim.url())
            .config("organization_id", &data.organization_id)
            .secret("secret_key", key)
    };
    let config = write_config(
        &w.0,
        None,
        &[
            conn("free", &a, "key-free"),
            conn("limited", &b, "key-limited"),
        ],
    );
    let config = config.to_string_lossy().into_owned();
    let alone_db = w.0.join("alone.db").to_string_lossy().into_owned();
    let started = Instant::now();
    ok(&sync(
        &w,
        &config,
        Some("scaleway/free"),
        &alone_db,
        "alone.json",
    ));
    let alone = started.elapsed();
    let both = w.store();
    ok(&sync(&w, &config, None, &both, "all.json"));
    assert!(sim.throttled_of(1) > 0, "the limited account was throttled");
    assert_eq!(sim.throttled_of(0), 0, "the free one never");
    let runs = reports(&w, "all.json");
    let took = |address: &str| -> f64 {
        let r = runs
            .iter()
            .find(|r| r["connection"] == address)
            .unwrap_or_else(|| panic!("no run of {address}"));
        assert_eq!(r["status"], "succeeded", "{r:#}");
        r["phases"]["total_ms"].as_f64().unwrap_or(0.0)
    };
    let (free, limited) = (took("scaleway/free"), took("scaleway/limited"));
    assert!(
        free < limited,
        "the free connection ({free} ms) finished before the throttled one ({limited} ms)"
    );
    assert!(
        free <= (alone.as_millis() as f64) * 3.0 + 2_000.0,
        "the free connection ({free} ms) took about what it takes alone ({alone:?})"
    );
}
