//! `infragraph access` (issue 22): who can reach what, from the access meaning the
//! plugins declare, on the Azure sample tenant, the same on the embedded store and over
//! Bolt.

use std::collections::BTreeSet;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::sim::{
    AzureData, AzureSim, CriticalData, CriticalSim, SpaceliftData, SpaceliftSim, azure_sample as s,
};
use serde_json::Value as Json;

const SEED: &str = "5eed00112233445566778899aabbccddeeff00112233445566778899aabbcc01";

fn azure_env(cmd: &mut std::process::Command, sim: &AzureSim) {
    let url = sim.url();
    cmd.env("AZURE_TENANT_ID", sim.tenant_id())
        .env("AZURE_CLIENT_ID", AzureSim::CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET)
        .env("AZURE_AUTHORITY_HOST", &url)
        .env("AZURE_RESOURCE_MANAGER_URL", &url)
        .env("AZURE_GRAPH_URL", &url)
        .env("AZURE_ABSTRACTION_SEED", SEED);
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

fn rg(name: &str) -> String {
    format!("/subscriptions/{}/resourcegroups/{name}", s::SUB_PROD)
}

/// A subscription's node id: its bare GUID.
fn sub(id: &str) -> String {
    id.to_string()
}

/// (principal or node id, role, path as text) of a `--json` answer.
fn rows(ran: &Ran) -> BTreeSet<(String, String, String)> {
    ok(ran);
    let doc: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    let mut out = BTreeSet::new();
    for reach in doc.as_array().expect("an array") {
        for g in reach["grants"].as_array().unwrap() {
            let path: Vec<String> = g["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|step| {
                    let via = step["via"]["rel_type"].as_str().unwrap_or("");
                    format!("{via}>{}", step["node"]["id"].as_str().unwrap())
                })
                .collect();
            out.insert((
                reach["node"]["id"].as_str().unwrap().to_string(),
                g["role"].as_str().unwrap().to_string(),
                path.join(" "),
            ));
        }
    }
    out
}

/// `infragraph access <args>` on the test's store, as printed.
fn ask_text(w: &Work, args: &[&str]) -> Ran {
    let store = w.store();
    let mut all = vec!["access"];
    all.extend(args);
    all.extend(["--store", &store]);
    run(&mut w.cmd(&all))
}

/// `infragraph access <args> --json` on the test's store, as rows.
fn ask(w: &Work, args: &[&str]) -> BTreeSet<(String, String, String)> {
    let mut all = args.to_vec();
    all.push("--json");
    rows(&ask_text(w, &all))
}

fn ids(rows: &BTreeSet<(String, String, String)>) -> BTreeSet<(String, String)> {
    rows.iter()
        .map(|(n, r, _)| (n.clone(), r.clone()))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn synced() -> (Work, AzureSim) {
    let w = Work::new("access");
    let sim = AzureSim::start(AzureData::sample());
    let mut cmd = w.cmd(&["sync", "azure", "--store", &w.store()]);
    azure_env(&mut cmd, &sim);
    ok(&run(&mut cmd));
    (w, sim)
}

/// A role on the subscription reaches the resource groups it contains; a role on the
/// group itself too; nothing else does. The demo question.
#[test]
fn who_reaches_a_resource_group_follows_grants_down_the_scopes() {
    let (w, _sim) = synced();
    let web = rg("rg-web");
    let who = ask(&w, &["who", "ResourceGroup", &web]);
    assert_eq!(
        ids(&who),
        BTreeSet::from([pair(s::ALICE, "Owner"), pair(s::DEPLOYER, "Owner")]),
        "{who:#?}"
    );
    // Alice's Owner comes from the subscription, which contains the group.
    let alice = who.iter().find(|(n, _, _)| n == s::ALICE).unwrap();
    assert_eq!(
        alice.2,
        format!(
            ">{} ASSIGNED_ROLE>{} CONTAINS>{web}",
            s::ALICE,
            sub(s::SUB_PROD)
        )
    );
    // Given by its name, as people say it, when one group alone has that name.
    let by_name = ask(&w, &["who", "ResourceGroup", "rg-web"]);
    assert_eq!(by_name, who);
    // A filter by role, any case.
    let owners = ask(&w, &["who", "ResourceGroup", &web, "--role", "owner"]);
    assert_eq!(owners.len(), 2);
    let readers = ask_text(&w, &["who", "ResourceGroup", &web, "--role", "Reader"]);
    ok(&readers);
    assert!(
        readers.stdout.contains("no principal reaches"),
        "{}",
        readers.stdout
    );
}

/// Membership passes a group's grant to its members: g-platform is Reader on rg-data,
/// so its members reach it as Reader, beside Alice's Owner from the subscription.
#[test]
fn members_of_a_group_holding_a_role_reach_what_it_reaches() {
    let (w, _sim) = synced();
    let data = rg("rg-data");
    let who = ask(&w, &["who", "ResourceGroup", &data]);
    let got = ids(&who);
    assert!(got.contains(&pair(s::PLATFORM, "Reader")), "{got:?}");
    assert!(got.contains(&pair(s::ALICE, "Owner")), "{got:?}");
    // Every other principal reaching rg-data as Reader does so through g-platform.
    for (n, role, path) in &who {
        if role == "Reader" && n != s::PLATFORM {
            assert!(
                path.contains(&format!("MEMBER_OF>{}", s::PLATFORM)) || path.contains("MEMBER_OF>"),
                "{n}: {path}"
            );
        }
    }
    assert!(
        who.iter()
            .any(|(n, role, _)| n != s::PLATFORM && role == "Reader"),
        "g-platform's members are missing: {got:?}"
    );
}

/// `what` is the other way round: everything Alice reaches, each with the role; `path`
/// gives the paths between two nodes, and the Mermaid form draws them.
#[test]
fn what_a_principal_reaches_and_the_path_to_one_node() {
    let (w, _sim) = synced();
    let what = ids(&ask(&w, &["what", "User", s::ALICE]));
    assert!(what.contains(&pair(&sub(s::SUB_PROD), "Owner")), "{what:?}");
    assert!(what.contains(&pair(&rg("rg-web"), "Owner")), "{what:?}");
    assert!(what.contains(&pair(&sub(s::SUB_DEV), "Reader")), "{what:?}");
    assert!(!what.contains(&pair(&sub(s::SUB_DEV), "Owner")), "{what:?}");

    let web = rg("rg-web");
    let path = ask_text(
        &w,
        &["path", "User", s::ALICE, "ResourceGroup", &web, "--wide"],
    );
    ok(&path);
    assert!(
        path.stdout.contains("Owner") && path.stdout.contains("ASSIGNED_ROLE {role_name=Owner"),
        "{}",
        path.stdout
    );
    let mermaid = ask_text(
        &w,
        &[
            "path",
            "User",
            s::ALICE,
            "ResourceGroup",
            &web,
            "--format",
            "mermaid",
        ],
    );
    ok(&mermaid);
    assert!(
        mermaid.stdout.starts_with("graph LR\n"),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("\"ASSIGNED_ROLE Owner\""),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("\"CONTAINS\""),
        "{}",
        mermaid.stdout
    );

    // No access path: the deployer holds nothing on the dev subscription.
    let none = ask_text(
        &w,
        &[
            "path",
            "ServicePrincipal",
            s::DEPLOYER,
            "Subscription",
            &sub(s::SUB_DEV),
        ],
    );
    ok(&none);
    assert!(
        none.stdout.contains("has no access path"),
        "{}",
        none.stdout
    );
    // A node that does not exist is an error naming it.
    let missing = ask_text(&w, &["who", "ResourceGroup", "nope"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("no ResourceGroup node with id \"nope\""),
        "{}",
        missing.stderr
    );
}

/// The same questions over Bolt (the ArcadeDB server `cargo xtask test` starts) give the
/// same answers as the embedded store: one walk, through the read interface both share.
#[tokio::test(flavor = "multi_thread")]
async fn the_answers_over_bolt_equal_the_embedded_stores() {
    let (w, sim) = synced();
    let db = infragraph_tests::bolt::fresh_database("access").await;
    let mut cmd = w.cmd(&[
        "sync",
        "azure",
        "--neo4j",
        &db.uri,
        "--neo4j-user",
        &db.user,
    ]);
    cmd.args(["--neo4j-database", &db.database])
        .env("NEO4J_PASSWORD", &db.password);
    azure_env(&mut cmd, &sim);
    ok(&run(&mut cmd));
    let bolt = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.args(["--json", "--neo4j", &db.uri, "--neo4j-user", &db.user])
            .args(["--neo4j-database", &db.database])
            .env("NEO4J_PASSWORD", &db.password);
        rows(&run(&mut cmd))
    };
    let local = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.args(["--json", "--store", &w.store()]);
        rows(&run(&mut cmd))
    };
    let data = rg("rg-data");
    let web = rg("rg-web");
    for q in [
        vec!["access", "who", "ResourceGroup", web.as_str()],
        vec!["access", "who", "ResourceGroup", data.as_str()],
        vec!["access", "what", "User", s::ALICE],
        vec!["access", "what", "Group", s::PLATFORM],
    ] {
        let (here, there) = (local(&q), bolt(&q));
        assert!(!here.is_empty(), "{q:?} found nothing");
        assert_eq!(here, there, "{q:?}");
    }
}

/// Spacelift: a role on a space reaches its child spaces and their stacks (the sample's
/// tree: root-space holds stack-1 and child-space-1, which holds stack-2). john.doe is
/// admin on the root and reader on the child; jane.doe writer on the child only.
#[test]
fn a_role_on_a_parent_space_reaches_the_stacks_of_its_children() {
    let w = Work::new("access-spacelift");
    let sim = SpaceliftSim::start(SpaceliftData::sample());
    let mut cmd = w.cmd(&["sync", "spacelift", "--store", &w.store()]);
    cmd.env("SPACELIFT_API_KEY_ENDPOINT", sim.endpoint())
        .env("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID)
        .env("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET)
        .env("SPACELIFT_ACCOUNT_ID", SpaceliftData::SAMPLE_ACCOUNT);
    ok(&run(&mut cmd));
    let who = |stack: &str| ask(&w, &["who", "SpaceliftStack", stack]);
    let (john, jane) = ("john.doe@example.com", "jane.doe@example.com");
    assert_eq!(ids(&who("stack-1")), BTreeSet::from([pair(john, "admin")]));
    let child = who("stack-2");
    assert_eq!(
        ids(&child),
        BTreeSet::from([pair(john, "admin"), pair(john, "read"), pair(jane, "write")])
    );
    let admin = child.iter().find(|(_, r, _)| r == "admin").unwrap();
    assert_eq!(
        admin.2,
        format!(">{john} HAS_ROLE_IN>root-space CONTAINS>child-space-1 CONTAINS>stack-2")
    );
}

/// Critical keeps permissions per scope, and so does an access answer: u_alice reads
/// api-v2 project-wide (FETCH, LIST, NOTIFY through g_devs) and may FETCH its wikis only
/// (her own entry); `path` names the grant that gives each, list-valued properties too.
#[test]
fn permissions_scoped_to_one_service_stay_scoped_in_the_answer() {
    let w = Work::new("access-critical");
    let sim = CriticalSim::start(CriticalData::sample());
    let mut cmd = w.cmd(&["sync", "critical", "--store", &w.store()]);
    cmd.env("DB_CONNECTION_STRING", sim.url())
        .env("DB_USER", CriticalSim::USER)
        .env("DB_PASSWORD", CriticalSim::PASSWORD);
    ok(&run(&mut cmd));
    let who = ids(&ask(&w, &["who", "CriticalProject", "api-v2"]));
    assert!(who.contains(&pair("u_alice", "wikis: FETCH")), "{who:?}");
    assert!(who.contains(&pair("u_alice", "LIST")), "{who:?}");
    assert!(!who.contains(&pair("u_alice", "CREATE")), "{who:?}");
    let path = ask_text(
        &w,
        &[
            "path",
            "CriticalUser",
            "u_alice",
            "CriticalProject",
            "api-v2",
            "--role",
            "LIST",
            "--wide",
        ],
    );
    ok(&path);
    // The walk derives it from the ACL entry naming her group and her membership, not
    // from the plugin's precomputed CAN_ACCESS.
    assert!(
        path.stdout
            .contains("u_alice -[:MEMBER_OF]-> g_devs -[:IN_ACL_OF]-> api-v2")
            && path.stdout.contains("IN_ACL_OF {permission_bits=7"),
        "{}",
        path.stdout
    );
}

/// Scaleway: a policy applied to a group grants on a project, so the group's members
/// reach the project's instances: Marge is in Administrators, whose policy grants
/// `InstancesFullAccess` on the default project that holds the demo server. Homer's own
/// policy reaches it through the Organization.
#[test]
fn a_scaleway_policy_on_a_group_reaches_its_members_down_to_the_instances() {
    use infragraph_tests::sim::{ScalewayData, ScalewaySim};
    let w = Work::new("access-scaleway");
    let sim = ScalewaySim::start(ScalewayData::sample());
    let mut cmd = w.cmd(&["sync", "scaleway", "--store", &w.store()]);
    cmd.env("SCW_API_URL", sim.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", ScalewayData::ORGANIZATION);
    ok(&run(&mut cmd));
    let (org, server) = (
        ScalewayData::ORGANIZATION,
        "345627e9-18ff-47e0-b73d-3f38fddb4390",
    );
    let (marge, homer) = (
        "998cbe72-913f-4f55-8620-4b0f7655d343",
        "b49932b2-2faa-4c56-905e-ffac52f063dc",
    );
    let (admins, policy) = (
        "1f767996-f6f6-4b0e-a7b1-6a255e809ed6",
        "5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e01",
    );
    let who = ask(&w, &["who", "ScalewayInstance", server]);
    let got = ids(&who);
    for role in ["InstancesFullAccess", "BlockStorageFullAccess"] {
        assert!(got.contains(&pair(marge, role)), "{role}: {got:?}");
    }
    assert!(got.contains(&pair(homer, "AllProductsReadOnly")), "{got:?}");
    assert!(
        !got.contains(&pair(homer, "InstancesFullAccess")),
        "{got:?}"
    );
    let path = |n: &str, role: &str| {
        who.iter()
            .find(|(m, r, _)| m == n && r == role)
            .map(|(_, _, p)| p.clone())
            .unwrap()
    };
    // The project has the Organization's id, as a default project does.
    assert_eq!(
        path(marge, "InstancesFullAccess"),
        format!(">{marge} MEMBER_OF>{admins} APPLIES_TO>{policy} GRANTS>{org} RESOURCE>{server}")
    );
    assert_eq!(
        path(homer, "AllProductsReadOnly"),
        format!(
            ">{homer} APPLIES_TO>5e1c0a8e-7d2b-4f3a-9c61-2b8f4d7a9e02 GRANTS>{org} \
             RESOURCE>{org} RESOURCE>{server}"
        )
    );

    // The other way round: Marge reaches the project (whose id is the Organization's)
    // and everything in it, with both permission sets, and nothing else.
    let what = ids(&ask(&w, &["what", "ScalewayUser", marge]));
    let mut expected = BTreeSet::new();
    for node in [
        org,
        server,
        "7c37b328-247c-4668-8ee1-701a3a3cc2e4",
        "7c689d68-94a7-4498-9a87-d83077859519",
        "7b37f45d-9871-4ae6-bd5a-a926102fb5c9",
        "d1b7e0c4-5a2f-4c3e-9b8d-6f1a2e3c4d5b",
    ] {
        for role in ["InstancesFullAccess", "BlockStorageFullAccess"] {
            expected.insert(pair(node, role));
        }
    }
    assert_eq!(what, expected);

    // Both permission sets come through one grant: the chart draws it once, naming both.
    let chart = ask_text(
        &w,
        &[
            "path",
            "ScalewayUser",
            marge,
            "ScalewayInstance",
            server,
            "--format",
            "mermaid",
        ],
    );
    ok(&chart);
    let grants: Vec<&str> = chart
        .stdout
        .lines()
        .filter(|l| l.contains("GRANTS"))
        .collect();
    assert_eq!(grants.len(), 1, "{}", chart.stdout);
    assert!(
        grants[0].contains("\"GRANTS BlockStorageFullAccess, InstancesFullAccess\""),
        "{}",
        chart.stdout
    );
}
