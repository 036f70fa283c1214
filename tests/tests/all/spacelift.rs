//! The Spacelift plugin end to end (issue 7): the `infragraph` binary syncing the Spacelift
//! GraphQL simulator, and CloudTrail from the S3 simulator (which verifies every SigV4
//! signature), into a fresh store, the graph read back through `export`.

use std::collections::{BTreeMap, BTreeSet};

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::graph::{Graph, Key};
use infragraph_tests::sim::{S3Sim, SpaceliftData, SpaceliftSim};
use serde_json::{Map, Value as Json, json};

/// How a test points `infragraph sync spacelift` at the simulators.
struct Setup<'a> {
    sim: &'a SpaceliftSim,
    s3: Option<&'a S3Sim>,
    key_secret: &'a str,
    aws_secret: &'a str,
}

impl<'a> Setup<'a> {
    fn new(sim: &'a SpaceliftSim) -> Self {
        Setup {
            sim,
            s3: None,
            key_secret: SpaceliftSim::KEY_SECRET,
            aws_secret: S3Sim::SECRET_ACCESS_KEY,
        }
    }

    fn s3(mut self, s3: &'a S3Sim) -> Self {
        self.s3 = Some(s3);
        self
    }

    fn sync(&self, w: &Work, account: &str) -> Ran {
        let store = w.store();
        let mut cmd = w.cmd(&[
            "sync",
            "spacelift",
            "--store",
            &store,
            "--report",
            "report.json",
        ]);
        cmd.env("SPACELIFT_API_KEY_ENDPOINT", self.sim.endpoint())
            .env("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID)
            .env("SPACELIFT_API_KEY_SECRET", self.key_secret)
            .env("SPACELIFT_ACCOUNT_ID", account);
        if let Some(s3) = self.s3 {
            cmd.env("SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT", s3.url())
                .env("SPACELIFT_EC2_OWNERSHIP_S3_BUCKET", S3Sim::BUCKET)
                .env("SPACELIFT_EC2_OWNERSHIP_S3_PREFIX", S3Sim::PREFIX)
                .env("AWS_ACCESS_KEY_ID", S3Sim::ACCESS_KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", self.aws_secret)
                .env("AWS_REGION", S3Sim::REGION);
        }
        run(&mut cmd)
    }
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

const ACCOUNT: &str = SpaceliftData::SAMPLE_ACCOUNT;
const JOHN: &str = "john.doe@example.com";
const JANE: &str = "jane.doe@example.com";
const VCS: &str = "vcs/commit";
const C1: &str = "abc123def456";
const C2: &str = "def456ghi789";

/// `EC2Instance` and `GitHubUser` nodes, as an AWS and a GitHub plugin would have written
/// them: four of the six instances the sample's runs touch, and one of its two authors.
fn import_others(w: &Work) {
    let node = |label: &str, props: Json| {
        json!({"type": "node", "id": format!("{label}-{}", props["id"]), "labels": [label], "properties": props})
            .to_string()
    };
    let lines = [
        node(
            "EC2Instance",
            json!({"id": "i-01", "instancetype": "c4.large"}),
        ),
        node("EC2Instance", json!({"id": "i-02"})),
        node("EC2Instance", json!({"id": "i-01234567"})),
        node("EC2Instance", json!({"id": "i-89abcdef"})),
        node("GitHubUser", json!({"id": "gh-1", "username": "johndoe"})),
    ];
    std::fs::write(w.0.join("others.jsonl"), lines.join("\n") + "\n").unwrap();
    let store = w.store();
    let ran = run(&mut w.cmd(&["import", "others.jsonl", "--store", &store]));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

fn props(v: Json) -> Map<String, Json> {
    v.as_object().expect("an object").clone()
}

type Nodes = BTreeMap<Key, Map<String, Json>>;
type Edges = BTreeSet<(String, Key, Key)>;

/// The graph a sync of [`SpaceliftData::sample`] must write, written out from
/// `docs/providers/spacelift.md` (its detailed sections) and the sample responses.
fn expected_sample_graph() -> (Nodes, Edges) {
    let k = |l: &str, id: &str| (l.to_string(), id.to_string());
    let mut nodes = Nodes::new();
    let mut add = |l: &str, id: &str, p: Json| {
        let mut p = props(p);
        p.insert("id".into(), json!(id));
        nodes.insert(k(l, id), p);
    };
    add(
        "SpaceliftAccount",
        ACCOUNT,
        json!({"spacelift_account_id": ACCOUNT, "name": "Test Organization"}),
    );
    add(
        "SpaceliftSpace",
        "root-space",
        json!({"name": "Root Space", "description": "Root space for testing", "is_root": true,
               "spacelift_account_id": ACCOUNT, "parent_spacelift_account_id": ACCOUNT}),
    );
    add(
        "SpaceliftSpace",
        "child-space-1",
        json!({"name": "Child Space 1", "description": "Child space for testing", "is_root": false,
               "spacelift_account_id": ACCOUNT, "parent_space_id": "root-space"}),
    );
    add(
        "SpaceliftStack",
        "stack-1",
        json!({"name": "Production Stack", "description": "Main production infrastructure",
               "state": "ACTIVE", "administrative": true, "repository": "github.com/example/infra",
               "branch": "main", "project_root": "/terraform/prod", "space_id": "root-space",
               "spacelift_account_id": ACCOUNT}),
    );
    add(
        "SpaceliftStack",
        "stack-2",
        json!({"name": "Staging Stack", "description": "Staging environment",
               "state": "ACTIVE", "administrative": false, "repository": "github.com/example/infra",
               "branch": "staging", "project_root": "/terraform/staging", "space_id": "child-space-1",
               "spacelift_account_id": ACCOUNT}),
    );
    // The API has no pool type (the sample's `type` is never served); every listed pool
    // is a private one.
    for (id, name, ty) in [
        ("pool-1", "Default Pool", "PRIVATE"),
        ("pool-2", "Private Pool", "PRIVATE"),
    ] {
        let description = if id == "pool-1" {
            "Default worker pool"
        } else {
            "Private worker pool"
        };
        add(
            "SpaceliftWorkerPool",
            id,
            json!({"name": name, "description": description, "pool_type": ty,
                   "space_id": "root-space", "spacelift_account_id": ACCOUNT}),
        );
    }
    // worker-1's metadata names nothing: its id is its name. The status is the API's
    // `busy` and `drained` (the sample's `status` is Cartography's, never served).
    for (id, pool, name, status) in [
        ("worker-1", "pool-1", "worker-1", "IDLE"),
        ("worker-2", "pool-2", "private-runner-a", "BUSY"),
    ] {
        add(
            "SpaceliftWorker",
            id,
            json!({"name": name, "status": status, "worker_pool_id": pool,
                   "spacelift_account_id": ACCOUNT}),
        );
    }
    add(
        "SpaceliftRun",
        "run-1",
        json!({"run_type": "PROPOSED", "state": "FINISHED", "commit_sha": C1, "branch": "main",
               "created_at": "2024-10-01T10:00:00Z", "stack_id": "stack-1",
               "triggered_by_user_id": JOHN, "spacelift_account_id": ACCOUNT}),
    );
    add(
        "SpaceliftRun",
        "run-2",
        json!({"run_type": "TRACKED", "state": "FINISHED", "commit_sha": C2, "branch": "staging",
               "created_at": "2024-10-02T11:00:00Z", "stack_id": "stack-2",
               "triggered_by_user_id": VCS, "spacelift_account_id": ACCOUNT}),
    );
    add(
        "SpaceliftRun",
        "run-3",
        json!({"run_type": "TRACKED", "state": "APPLYING", "commit_sha": C2, "branch": "staging",
               "created_at": "2024-10-03T08:00:00Z", "stack_id": "stack-2",
               "triggered_by_user_id": JANE, "spacelift_account_id": ACCOUNT}),
    );
    add(
        "SpaceliftGitCommit",
        C1,
        json!({"sha": C1, "message": "Add production infrastructure",
               "timestamp": "2024-10-01T09:00:00Z",
               "url": "https://github.com/example/infra/commit/abc123def456",
               "author_login": "johndoe", "author_name": "John Doe"}),
    );
    add(
        "SpaceliftGitCommit",
        C2,
        json!({"sha": C2, "message": "Update staging environment",
               "timestamp": "2024-10-02T10:00:00Z",
               "url": "https://github.com/example/infra/commit/def456ghi789",
               "author_login": "janedoe", "author_name": "Jane Doe"}),
    );
    add(
        "SpaceliftUser",
        JOHN,
        json!({"username": JOHN, "email": JOHN, "name": "john.doe", "user_type": "human"}),
    );
    add(
        "SpaceliftUser",
        JANE,
        json!({"username": JANE, "email": JANE, "name": "jane.doe", "user_type": "human"}),
    );
    add(
        "SpaceliftUser",
        VCS,
        json!({"username": VCS, "name": VCS, "user_type": "machine"}),
    );

    let mut edges = Edges::new();
    let mut e = |r: &str, a: Key, b: Key| {
        edges.insert((r.to_string(), a, b));
    };
    let acc = k("SpaceliftAccount", ACCOUNT);
    for key in nodes.keys().filter(|(l, _)| l != "SpaceliftAccount") {
        e("RESOURCE", acc.clone(), key.clone());
    }
    let space = |id| k("SpaceliftSpace", id);
    let user = |id| k("SpaceliftUser", id);
    let run = |id| k("SpaceliftRun", id);
    let commit = |id| k("SpaceliftGitCommit", id);
    e("CONTAINS", space("root-space"), space("child-space-1"));
    e(
        "CONTAINS",
        space("root-space"),
        k("SpaceliftStack", "stack-1"),
    );
    e(
        "CONTAINS",
        space("child-space-1"),
        k("SpaceliftStack", "stack-2"),
    );
    e(
        "CONTAINS",
        space("root-space"),
        k("SpaceliftWorkerPool", "pool-1"),
    );
    e(
        "CONTAINS",
        space("root-space"),
        k("SpaceliftWorkerPool", "pool-2"),
    );
    e(
        "CONTAINS",
        k("SpaceliftWorkerPool", "pool-1"),
        k("SpaceliftWorker", "worker-1"),
    );
    e(
        "CONTAINS",
        k("SpaceliftWorkerPool", "pool-2"),
        k("SpaceliftWorker", "worker-2"),
    );
    e("GENERATED", k("SpaceliftStack", "stack-1"), run("run-1"));
    e("GENERATED", k("SpaceliftStack", "stack-2"), run("run-2"));
    e("GENERATED", k("SpaceliftStack", "stack-2"), run("run-3"));
    e("TRIGGERED", user(JOHN), run("run-1"));
    e("TRIGGERED", user(VCS), run("run-2"));
    e("TRIGGERED", user(JANE), run("run-3"));
    e("COMMITTED", commit(C1), run("run-1"));
    e("COMMITTED", commit(C2), run("run-2"));
    e("COMMITTED", commit(C2), run("run-3"));
    e("CONFIRMED", commit(C1), user(JOHN));
    e("CONFIRMED", commit(C2), user(JANE));
    // stack-2 runs on pool-2, whose one busy worker is executing its one active run.
    e("EXECUTED", k("SpaceliftWorker", "worker-2"), run("run-3"));
    // Roles: see `expected_roles`.
    for (u, s, _) in expected_roles() {
        e("HAS_ROLE_IN", user(u), space(s));
    }
    (nodes, edges)
}

/// `(user, space, role)` of every `HAS_ROLE_IN` of the sample: the users' own access
/// rules, lower-cased.
fn expected_roles() -> [(&'static str, &'static str, &'static str); 3] {
    [
        (JOHN, "root-space", "admin"),
        (JOHN, "child-space-1", "read"),
        (JANE, "child-space-1", "write"),
    ]
}

/// Links to other plugins' nodes that the sample resolves once [`import_others`] ran.
fn expected_links() -> Edges {
    let k = |l: &str, id: &str| (l.to_string(), id.to_string());
    [
        // Entities API: the instances runs created (i-03 is not imported: unresolved).
        (
            "AFFECTED",
            k("SpaceliftRun", "run-1"),
            k("EC2Instance", "i-01"),
        ),
        (
            "AFFECTED",
            k("SpaceliftRun", "run-1"),
            k("EC2Instance", "i-02"),
        ),
        // CloudTrail (i-02345678 is not imported: unresolved).
        (
            "AFFECTED",
            k("SpaceliftRun", "run-1"),
            k("EC2Instance", "i-01234567"),
        ),
        (
            "AFFECTED",
            k("SpaceliftRun", "run-2"),
            k("EC2Instance", "i-89abcdef"),
        ),
        // johndoe authored abc123def456; janedoe has no GitHubUser: unresolved.
        (
            "PUSHED",
            k("GitHubUser", "gh-1"),
            k("SpaceliftGitCommit", C1),
        ),
    ]
    .into_iter()
    .map(|(r, a, b)| (r.to_string(), a, b))
    .collect()
}

fn without_bookkeeping(g: &Graph) -> Nodes {
    g.nodes
        .iter()
        .filter(|((l, _), _)| l.starts_with("Spacelift"))
        .map(|(k, (_, p))| {
            let mut p = p.clone();
            for b in ["firstseen", "lastupdated", "_source", "_scope"] {
                p.remove(b);
            }
            (k.clone(), p)
        })
        .collect()
}

fn lines<K: std::fmt::Debug, V: std::fmt::Debug>(m: impl IntoIterator<Item = (K, V)>) -> String {
    m.into_iter()
        .map(|(k, v)| format!("{k:?} {v:?}\n"))
        .collect()
}

fn edge_set(g: &Graph) -> Edges {
    g.edges.keys().cloned().collect()
}

/// The sample, with EC2 instances and GitHub users imported first: the hand-written graph,
/// `COMMITTED` from the first sync on, roles from access rules, both `AFFECTED` sources
/// with CloudTrail's properties, `PUSHED`, and what did not resolve counted.
#[test]
fn the_sample_account_syncs_to_the_hand_written_graph() {
    let w = Work::new("spacelift-sample");
    import_others(&w);
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    s3.set_page_size(1);
    let ran = Setup::new(&sim).s3(&s3).sync(&w, ACCOUNT);
    ok(&ran);
    let g = w.graph();
    let (nodes, mut edges) = expected_sample_graph();
    assert_eq!(lines(without_bookkeeping(&g)), lines(nodes));
    edges.extend(expected_links());
    assert_eq!(
        lines(edge_set(&g).iter().map(|e| (e, ()))),
        lines(edges.iter().map(|e| (e, ())))
    );
    // Extra labels of the ontology.
    let labels = |l: &str, id: &str| g.nodes[&(l.to_string(), id.to_string())].0.clone();
    assert_eq!(
        labels("SpaceliftAccount", ACCOUNT),
        ["SpaceliftAccount", "Tenant"]
    );
    assert_eq!(
        labels("SpaceliftUser", JOHN),
        ["SpaceliftUser", "UserAccount"]
    );
    // Roles come from the users' access rules, lower-cased as the schema shows them.
    for (u, s, role) in expected_roles() {
        let key = (
            "HAS_ROLE_IN".to_string(),
            ("SpaceliftUser".to_string(), u.to_string()),
            ("SpaceliftSpace".to_string(), s.to_string()),
        );
        let p = &g.edges[&key];
        assert_eq!(p["role"], json!(role), "{u} in {s}: {p:?}");
    }
    // CloudTrail's details ride on its edges; the latest call of a pair wins.
    let affected = |run: &str, i: &str| {
        let key = (
            "AFFECTED".to_string(),
            ("SpaceliftRun".to_string(), run.to_string()),
            ("EC2Instance".to_string(), i.to_string()),
        );
        g.edges[&key].clone()
    };
    let ct = affected("run-2", "i-89abcdef");
    assert_eq!(
        (
            &ct["event_time"],
            &ct["event_name"],
            &ct["aws_account"],
            &ct["aws_region"]
        ),
        (
            &json!("2024-01-01T13:00:00Z"),
            &json!("RunInstances"),
            &json!("000000000000"),
            &json!("us-east-1")
        )
    );
    assert_eq!(
        affected("run-1", "i-01234567")["event_time"],
        "2024-01-01T12:00:00Z"
    );
    assert!(
        affected("run-1", "i-01").get("event_name").is_none(),
        "entities: no CloudTrail properties"
    );

    let report = w.report();
    assert_eq!(report["status"], "succeeded", "{report}");
    // Every query asked only for what Spacelift's schema has: none was refused.
    assert_eq!(sim.refused_queries(), Vec::<String>::new());
    // i-03 (entities) and i-02345678 (CloudTrail) are nobody's nodes; janedoe neither.
    assert_eq!(report["edges"]["AFFECTED"]["unresolved"], 2, "{report}");
    assert_eq!(report["edges"]["PUSHED"]["unresolved"], 1, "{report}");
    assert_eq!(report["edges"]["COMMITTED"]["unresolved"], 0, "{report}");
    // Every S3 request was signed, and signed right; ListObjectsV2 was paged (1 key a page).
    assert!(s3.refused().is_empty(), "{:?}", s3.refused());
    assert_eq!(s3.verified(), 3 + 2, "{:#?}", s3.request_log());
    assert!(
        s3.request_log()
            .iter()
            .any(|l| l.contains("continuation-token=")),
        "{:#?}",
        s3.request_log()
    );
    // Invented nothing: other plugins' nodes are only the imported ones.
    assert_eq!(g.count("EC2Instance"), 4);
    assert_eq!(g.count("GitHubUser"), 1);
}

/// `COMMITTED` (and every edge between records of one sync) exists after the first sync,
/// without other plugins' nodes; links to them are counted unresolved, never invented.
#[test]
fn first_sync_has_committed_and_counts_unresolved_links() {
    let w = Work::new("spacelift-first");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    ok(&Setup::new(&sim).s3(&s3).sync(&w, ACCOUNT));
    let g = w.graph();
    assert_eq!(g.edges_of("COMMITTED"), 3);
    let (nodes, edges) = expected_sample_graph();
    assert_eq!(lines(without_bookkeeping(&g)), lines(nodes));
    assert_eq!(
        lines(edge_set(&g).iter().map(|e| (e, ()))),
        lines(edges.iter().map(|e| (e, ())))
    );
    let report = w.report();
    // 3 from the entities API, 3 from CloudTrail; 2 PUSHED (run-3 reuses a commit).
    assert_eq!(report["edges"]["AFFECTED"]["unresolved"], 6, "{report}");
    assert_eq!(report["edges"]["PUSHED"]["unresolved"], 2, "{report}");
    assert_eq!(g.count("EC2Instance"), 0);
}

#[test]
fn a_wrong_api_key_names_the_variables() {
    let w = Work::new("spacelift-badkey");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let mut setup = Setup::new(&sim);
    setup.key_secret = "not-the-secret-9f8e";
    let ran = setup.sync(&w, ACCOUNT);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        all.contains("SPACELIFT_API_KEY_ID") && all.contains("SPACELIFT_API_KEY_SECRET"),
        "{all}"
    );
    assert!(!all.contains("not-the-secret-9f8e"), "{all}");
    assert_eq!(sim.rejected_keys(), 1);
}

/// A JWT that expires every few requests: the plugin exchanges the key again and the sync
/// succeeds with everything; runs are paged per stack, never one unbounded answer.
#[test]
fn an_expired_token_mid_sync_is_renewed_and_runs_are_paged() {
    let w = Work::new("spacelift-expiry");
    let data = SpaceliftData::generate(6, 130);
    let sim = SpaceliftSim::start(data.clone());
    // Longer than one round of concurrent queries (6), as a time-based expiry would be.
    sim.expire_tokens_after(8);
    let ran = Setup::new(&sim).sync(&w, "generated");
    ok(&ran);
    assert!(sim.tokens_issued() >= 3, "issued {}", sim.tokens_issued());
    assert!(sim.expired_requests() >= 2);
    let g = w.graph();
    assert_eq!(g.count("SpaceliftRun"), 6 * 130);
    assert_eq!(g.count("SpaceliftStack"), 6);
    assert_eq!(g.count("SpaceliftSpace"), 41);
    assert_eq!(g.count("SpaceliftWorker"), 20);
    assert_eq!(g.edges_of("COMMITTED"), 6 * 130);
    assert_eq!(g.edges_of("HAS_ROLE_IN"), SpaceliftData::GENERATED_ROLES);
    assert_eq!(g.edges_of("EXECUTED"), SpaceliftData::GENERATED_EXECUTED);
    let executed = (
        "EXECUTED".to_string(),
        ("SpaceliftWorker".to_string(), "worker-1-0".to_string()),
        ("SpaceliftRun".to_string(), "run-0001-00129".to_string()),
    );
    assert!(
        g.edges.contains_key(&executed),
        "pool 1's busy worker executes stack 1's newest run"
    );
    // 130 runs a stack: pages of 50, 50, 30, then an empty one.
    assert!(w.report()["status"] == "succeeded");
    assert_eq!(
        sim.total_requests(),
        sim.tokens_issued() + sim.expired_requests() + 7 + 6 * 4,
        "one request per query and page, plus the refused ones and the exchanges"
    );
}

/// A GraphQL error (HTTP 200 with `errors`) on worker pools: those labels are incomplete
/// and keep their nodes from the last sync; nothing else is lost.
#[test]
fn a_graphql_error_marks_its_labels_incomplete_and_loses_nothing_else() {
    let w = Work::new("spacelift-gqlerr");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    ok(&Setup::new(&sim).sync(&w, ACCOUNT));
    let before = w.graph();
    sim.fail_field("workerPools", "internal server error (request 42)");
    let ran = Setup::new(&sim).sync(&w, ACCOUNT);
    assert_eq!(ran.code, 1, "partial: {}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    assert_eq!(report["status"], "partial");
    let incomplete: BTreeSet<String> = report["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let reason = i["reason"].as_str().unwrap();
            assert!(
                reason.contains("workerPools")
                    && reason.contains("internal server error (request 42)"),
                "{reason}"
            );
            i["label"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        incomplete,
        BTreeSet::from([
            "SpaceliftWorker".to_string(),
            "SpaceliftWorkerPool".to_string()
        ])
    );
    let after = w.graph();
    assert_eq!(
        lines(without_bookkeeping(&after)),
        lines(without_bookkeeping(&before)),
        "the pools and workers of the last sync are kept, the rest rewritten"
    );
}

/// Neither the Spacelift key secret nor the AWS secret key is in the output, the report,
/// the graph or the log lines; a wrong AWS secret is refused by S3 and named.
#[test]
fn secrets_appear_nowhere_and_a_wrong_aws_key_is_refused() {
    let w = Work::new("spacelift-secrets");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    let ran = Setup::new(&sim).s3(&s3).sync(&w, ACCOUNT);
    ok(&ran);
    let store = w.store();
    let export = run(&mut w.cmd(&["export", "--format", "jsonl", "--store", &store]));
    let runs = run(&mut w.cmd(&["runs", "--json", "--store", &store]));
    let report = std::fs::read_to_string(w.0.join("report.json")).unwrap();
    for (what, text) in [
        ("stdout", &ran.stdout),
        ("stderr", &ran.stderr),
        ("report", &report),
        ("export", &export.stdout),
        ("run history", &runs.stdout),
    ] {
        for secret in [SpaceliftSim::KEY_SECRET, S3Sim::SECRET_ACCESS_KEY] {
            assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
        }
    }
    assert!(s3.verified() > 0 && s3.refused().is_empty());

    let w = Work::new("spacelift-badaws");
    let mut setup = Setup::new(&sim).s3(&s3);
    setup.aws_secret = "wrong/aws+secret0000000000000000000000000";
    let ran = setup.sync(&w, ACCOUNT);
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        all.contains("AWS_SECRET_ACCESS_KEY") && all.contains("SignatureDoesNotMatch"),
        "{all}"
    );
    assert!(!all.contains("wrong/aws+secret"), "{all}");
    assert!(!s3.refused().is_empty());
}

/// `plugins inspect` shows how each credential is used, the host-signed one included.
#[test]
fn inspect_shows_the_host_signed_aws_credential() {
    let w = Work::new("spacelift-inspect");
    let ran = run(&mut w.cmd(&["plugins", "inspect", "spacelift"]));
    ok(&ran);
    for expected in [
        "api_key_secret",
        "SPACELIFT_API_KEY_SECRET",
        "field of a JSON body",
        "aws_secret_access_key",
        "AWS_SECRET_ACCESS_KEY",
        "AWS SigV4 secret access key, signing for service `s3` (access key id from config \
         `aws_access_key_id`, region from config `aws_region`, session token from credential \
         `aws_session_token`)",
        "{config:ec2_ownership_s3_endpoint}",
    ] {
        assert!(
            ran.stdout.contains(expected),
            "{expected:?} in:\n{}",
            ran.stdout
        );
    }
}

/// Partial data (data and `errors` together) keeps what came and marks the label
/// incomplete; a failure of run pages marks runs and commits incomplete.
#[test]
fn partial_data_is_written_and_its_labels_marked_incomplete() {
    let w = Work::new("spacelift-partial");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    sim.partial_field("managedUsers", "could not read the access rules of 1 user");
    sim.fail_field("stack", "runs are unavailable");
    let ran = Setup::new(&sim).sync(&w, ACCOUNT);
    assert_eq!(ran.code, 1, "partial: {}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    let incomplete: BTreeSet<String> = report["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        incomplete,
        BTreeSet::from(["SpaceliftGitCommit", "SpaceliftRun", "SpaceliftUser"].map(String::from)),
        "{report}"
    );
    let g = w.graph();
    // The users that came are written, with their roles.
    assert!(g.has("SpaceliftUser", JOHN) && g.has("SpaceliftUser", JANE));
    assert_eq!(g.edges_of("HAS_ROLE_IN"), expected_roles().len());
    assert_eq!(g.count("SpaceliftRun"), 0);
    assert_eq!(g.count("SpaceliftStack"), 2);
    assert_eq!(g.count("SpaceliftWorker"), 2);
}

/// Users are complete on every sync (issue 15: a query the API refused used to mark them
/// incomplete each time), so an access rule removed in Spacelift loses its role in the
/// graph; without the account's name, the account id stands in.
#[test]
fn a_removed_access_rule_is_cleaned_up_and_the_id_stands_in_for_the_name() {
    let w = Work::new("spacelift-cleanup");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    ok(&Setup::new(&sim).sync(&w, ACCOUNT));
    let roles = |g: &Graph| -> BTreeSet<(String, String)> {
        g.edge_ids()
            .into_iter()
            .filter(|(r, _, _)| r == "HAS_ROLE_IN")
            .map(|(_, u, s)| (u, s))
            .collect()
    };
    let all: BTreeSet<(String, String)> = expected_roles()
        .into_iter()
        .map(|(u, s, _)| (u.to_string(), s.to_string()))
        .collect();
    assert_eq!(roles(&w.graph()), all);

    let mut data = SpaceliftData::sample();
    for u in &mut data.users {
        if u["username"] == JANE {
            u["accessRules"] = json!([]);
        }
    }
    sim.set_data(data);
    sim.fail_field("name", "account unavailable");
    ok(&Setup::new(&sim).sync(&w, ACCOUNT));
    let report = w.report();
    assert!(
        report["incomplete"].as_array().is_none_or(Vec::is_empty),
        "{report}"
    );
    assert_eq!(report["edges"]["HAS_ROLE_IN"]["deleted"], 1, "{report}");
    let after = w.graph();
    let without_jane: BTreeSet<(String, String)> =
        all.into_iter().filter(|(u, _)| u != JANE).collect();
    assert_eq!(roles(&after), without_jane);
    assert!(after.has("SpaceliftUser", JANE), "still a run's trigger");
    let account = &after.nodes[&("SpaceliftAccount".to_string(), ACCOUNT.to_string())].1;
    assert_eq!(account["name"], ACCOUNT, "the id stands in for the name");
    assert_eq!(sim.refused_queries(), Vec::<String>::new());
}

/// `tests/fixtures/spacelift/cloudtrail_athena_rows.json` as one object of an export.
fn athena_export() -> (BTreeMap<String, Vec<u8>>, Json) {
    let text = include_str!("../../fixtures/spacelift/cloudtrail_athena_rows.json");
    let key = format!("{}athena/part-0000.json", S3Sim::PREFIX);
    let rows: Json = serde_json::from_str(text).unwrap();
    (BTreeMap::from([(key, text.as_bytes().to_vec())]), rows)
}

/// The session of the assumed-role ARN in a recorded `useridentity`, and the run id
/// before its `@`, read from the recording.
fn recorded_session(row: &Json) -> (String, String) {
    let identity = row["useridentity"].as_str().unwrap();
    let arn = identity
        .split(", ")
        .find_map(|part| part.strip_prefix("arn=arn:aws:sts::"))
        .unwrap();
    let session = arn.splitn(3, '/').nth(2).unwrap().to_string();
    let run = session.split('@').next().unwrap().to_string();
    (session, run)
}

/// Issue 15, item 3: the whole `useridentity` as Athena exports it (a struct rendered as
/// text, the session issuer's role last) links the run of its assumed-role session to the
/// instance the row names; the row of another caller is counted in the summary.
#[test]
fn athena_rows_link_the_run_of_the_assumed_role_session() {
    let w = Work::new("spacelift-athena");
    let (objects, rows) = athena_export();
    let (_, run_id) = recorded_session(&rows[0]);
    let instance = "i-0f5139368648f4f62";
    let line = json!({"type": "node", "id": "ec2", "labels": ["EC2Instance"],
                      "properties": {"id": instance}});
    std::fs::write(w.0.join("others.jsonl"), format!("{line}\n")).unwrap();
    let store = w.store();
    ok(&run(&mut w.cmd(&[
        "import",
        "others.jsonl",
        "--store",
        &store,
    ])));
    // The recorded run, as a run of stack-1.
    let mut data = SpaceliftData::sample();
    let mut recorded = data.runs["stack-1"][0].clone();
    recorded["id"] = json!(run_id);
    data.runs.get_mut("stack-1").unwrap().insert(0, recorded);
    let sim = SpaceliftSim::start(data);
    let s3 = S3Sim::start(S3Sim::BUCKET, objects, None);
    ok(&Setup::new(&sim).s3(&s3).sync(&w, ACCOUNT));
    let g = w.graph();
    let affected: BTreeSet<(String, String)> = g
        .edge_ids()
        .into_iter()
        .filter(|(r, _, _)| r == "AFFECTED")
        .map(|(_, a, b)| (a, b))
        .collect();
    assert_eq!(
        affected,
        BTreeSet::from([(run_id.clone(), instance.to_string())]),
        "the recorded row's run and instance, nothing else resolved"
    );
    let report = w.report();
    assert_eq!(report["status"], "succeeded", "{report}");
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains("1 CloudTrail links from 1 of 2 rows")
            && summary.contains("1 of 2 CloudTrail rows named no run of this account")
            && summary.contains("sessions such as session"),
        "{summary}"
    );
}

/// Rows that all name no run of the account (here: the run of the recording is not one
/// of the sample's) are not a clean success: the summary says how many and which
/// sessions, and runs are marked incomplete, so the sync is partial and the links of the
/// last sync are kept.
#[test]
fn cloudtrail_rows_matching_no_run_make_the_sync_partial() {
    let w = Work::new("spacelift-athena-none");
    let (objects, rows) = athena_export();
    let (session, _) = recorded_session(&rows[0]);
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, objects, None);
    let ran = Setup::new(&sim).s3(&s3).sync(&w, ACCOUNT);
    assert_eq!(ran.code, 1, "partial: {}\n{}", ran.stdout, ran.stderr);
    let report = w.report();
    assert_eq!(report["status"], "partial", "{report}");
    let incomplete = report["incomplete"].as_array().unwrap();
    assert_eq!(incomplete.len(), 1, "{report}");
    assert_eq!(incomplete[0]["label"], "SpaceliftRun");
    let reason = incomplete[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("CloudTrail linked no run")
            && reason.contains("2 of 2 CloudTrail rows named no run of this account")
            && reason.contains(&session),
        "{reason}"
    );
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(all.contains("2 of 2 CloudTrail rows named no run"), "{all}");
    // Only the entities API's links, to instances nobody wrote.
    assert_eq!(report["edges"]["AFFECTED"]["unresolved"], 3, "{report}");
}

/// A relationship left unwritten for want of an end is a warning line naming its type
/// and its declared ends, with the report's count: a jump in them is how a missing or
/// failed listing shows itself, and a number in a column is easy to miss.
#[test]
fn unresolved_relationships_are_a_warning_line_per_type() {
    let w = Work::new("unresolved-warning");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let ran = Setup::new(&sim).sync(&w, SpaceliftData::SAMPLE_ACCOUNT);
    let report = w.report();
    // Alone in the store, the Spacelift graph links to EC2 instances and GitHub users no
    // plugin has written.
    let unresolved: Vec<(String, u64)> = report["edges"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(rel, c)| (rel.clone(), c["unresolved"].as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(!unresolved.is_empty(), "{report:#}");
    let warnings: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("spacelift: warning: "))
        .collect();
    assert_eq!(warnings.len(), unresolved.len(), "{}", ran.stdout);
    for (rel, n) in &unresolved {
        let line = warnings
            .iter()
            .find(|l| l.contains(&format!(" {rel} relationships were not written")))
            .unwrap_or_else(|| panic!("no warning for {rel}: {}", ran.stdout));
        assert!(line.contains(&format!("warning: {n} of ")), "{line}");
        assert!(line.contains("->"), "the declared ends are named: {line}");
    }
    assert_eq!(
        report["warnings"].as_array().unwrap().len(),
        unresolved.len()
    );
    assert_eq!(
        ran.code, 0,
        "a warning does not fail the run: {}",
        ran.stdout
    );
}
