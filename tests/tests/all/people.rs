//! One person across providers (issue 22): the `[people]` rules link the accounts of one
//! human in Azure, Spacelift and Scaleway to one `Person`, after the sync, so access
//! questions can start from the person; ambiguous matches are reported, not guessed; the
//! links follow the graph on the next sync; the same over Bolt.

use std::collections::BTreeSet;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::sim::{
    AzureData, AzureSim, ScalewayData, ScalewaySim, SpaceliftData, SpaceliftSim, azure_sample as s,
};
use serde_json::{Value as Json, json};

const SEED: &str = "5eed00112233445566778899aabbccddeeff00112233445566778899aabbcc01";
const ALICE: &str = "alice@contoso.com";

const RULES: &str = r#"
[people]
match = [
  { label = "User", property = "user_principal_name" },
  { label = "User", property = "mail" },
  { label = "SpaceliftUser", property = "email" },
  { label = "ScalewayUser", property = "email" },
  { label = "ScalewayUsr", property = "email" },
]
"#;

struct Sims {
    azure: AzureSim,
    spacelift: SpaceliftSim,
    scaleway: ScalewaySim,
}

/// Alice is `u-alice` in the Azure sample (UPN and mail alice@contoso.com); she is given
/// a Spacelift login with that address as its invitation e-mail, and a Scaleway user
/// whose e-mail differs only in case and spaces. Two other Scaleway users share one
/// address: which of them is the person cannot be told.
fn sims() -> Sims {
    let mut spacelift = SpaceliftData::sample();
    spacelift.users.push(json!({
        "id": "01HUSERALICE", "username": "alice", "invitationEmail": ALICE,
        "accessRules": [{"space": "child-space-1", "spaceAccessLevel": "WRITE"}]
    }));
    let mut scaleway = ScalewayData::sample();
    let first = scaleway.users.len();
    scaleway.add_principals(2, 1, 0);
    for u in &mut scaleway.users[first..] {
        u.edit(|v| v["email"] = json!("shared@example.com"));
    }
    scaleway.users[0].edit(|v| v["email"] = json!("  Alice@Contoso.COM "));
    Sims {
        azure: AzureSim::start(AzureData::sample()),
        spacelift: SpaceliftSim::start(spacelift),
        scaleway: ScalewaySim::start(scaleway),
    }
}

fn env(cmd: &mut std::process::Command, sims: &Sims) {
    let url = sims.azure.url();
    cmd.env("AZURE_TENANT_ID", sims.azure.tenant_id())
        .env("AZURE_CLIENT_ID", AzureSim::CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET)
        .env("AZURE_AUTHORITY_HOST", &url)
        .env("AZURE_RESOURCE_MANAGER_URL", &url)
        .env("AZURE_GRAPH_URL", &url)
        .env("AZURE_ABSTRACTION_SEED", SEED)
        .env("SPACELIFT_API_KEY_ENDPOINT", sims.spacelift.endpoint())
        .env("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID)
        .env("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET)
        .env("SPACELIFT_ACCOUNT_ID", SpaceliftData::SAMPLE_ACCOUNT)
        .env("SCW_API_URL", sims.scaleway.url())
        .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
        .env("SCW_DEFAULT_ORGANIZATION_ID", ScalewayData::ORGANIZATION);
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

/// `infragraph --config C sync <what> <args>` with every simulator's environment.
fn sync(w: &Work, sims: &Sims, config: &str, what: &[&str], args: &[&str]) -> Ran {
    let mut all = vec!["--config", config, "sync"];
    all.extend(what);
    all.extend(args);
    let mut cmd = w.cmd(&all);
    env(&mut cmd, sims);
    run(&mut cmd)
}

/// The ids of the nodes a `--json` access answer names.
fn reached(ran: &Ran) -> BTreeSet<(String, String)> {
    ok(ran);
    let doc: Json = serde_json::from_str(&ran.stdout).expect("JSON");
    doc.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            (
                r["node"]["label"].as_str().unwrap().to_string(),
                r["node"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn accounts(g: &infragraph_tests::graph::Graph, person: &str) -> BTreeSet<(String, String)> {
    g.edges
        .keys()
        .filter(|(r, from, _)| r == "HAS_ACCOUNT" && from.1 == person)
        .map(|(_, _, to)| to.clone())
        .collect()
}

fn key(label: &str, id: &str) -> (String, String) {
    (label.to_string(), id.to_string())
}

#[test]
fn one_person_spans_three_providers_and_ambiguity_is_reported() {
    let w = Work::new("people");
    let sims = sims();
    let config = w.config(RULES);
    let store = w.store();
    let ran = sync(
        &w,
        &sims,
        &config,
        &["azure", "spacelift", "scaleway"],
        &["--store", &store, "--report", "report.json"],
    );
    ok(&ran);
    let reports: Json =
        serde_json::from_str(&std::fs::read_to_string(w.0.join("report.json")).unwrap()).unwrap();
    let people = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["plugin"] == "people")
        .unwrap_or_else(|| panic!("no people run in {reports:#}"));
    assert_eq!(people["status"], "succeeded", "{people:#}");
    let warnings = people["warnings"].to_string();
    assert!(
        warnings.contains("shared@example.com matches 2 ScalewayUser accounts in scope")
            && warnings.contains("not linked"),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "the [people] rule for ScalewayUsr.email matched nothing: the graph holds no \
             ScalewayUsr node (did you mean ScalewayUser?)"
        ),
        "{warnings}"
    );
    assert!(ran.stdout.contains("people"), "{}", ran.stdout);

    let g = w.graph();
    let scaleway_alice = ScalewayData::sample().users[0].id.clone();
    assert_eq!(
        accounts(&g, ALICE),
        BTreeSet::from([
            key("User", s::ALICE),
            key("SpaceliftUser", "alice"),
            key("ScalewayUser", &scaleway_alice),
        ])
    );
    let alice = g.node("Person", ALICE);
    assert_eq!(alice["accounts"], 3);
    assert_eq!(alice["plugins"], json!(["azure", "scaleway", "spacelift"]));
    assert_eq!(alice["email"], json!([ALICE]));
    // The ambiguous address has no person, and neither of its accounts a link.
    assert!(!g.has("Person", "shared@example.com"));
    // Every other account with an address is a person of its own.
    assert!(g.has("Person", "john.doe@example.com"));

    // What the person reaches spans the providers: Alice's Owner role on the production
    // subscription (Azure) and her write role on child-space-1's stack (Spacelift).
    let what = reached(&run(&mut w.cmd(&[
        "--config", &config, "access", "what", "Person", ALICE, "--json", "--store", &store,
    ])));
    assert!(what.contains(&key("Subscription", s::SUB_PROD)), "{what:?}");
    assert!(what.contains(&key("SpaceliftStack", "stack-2")), "{what:?}");
    // And the person is among who reaches that stack.
    let who = reached(&run(&mut w.cmd(&[
        "--config",
        &config,
        "access",
        "who",
        "SpaceliftStack",
        "stack-2",
        "--json",
        "--store",
        &store,
    ])));
    assert!(who.contains(&key("Person", ALICE)), "{who:?}");

    // Rules change and the links follow: without the Spacelift rule, the next linking
    // run removes that link (its cleanup), and keeps the others.
    let fewer = RULES.replace(
        "  { label = \"SpaceliftUser\", property = \"email\" },\n",
        "",
    );
    let config = w.config(&fewer);
    ok(&sync(&w, &sims, &config, &["azure"], &["--store", &store]));
    let g = w.graph();
    assert_eq!(
        accounts(&g, ALICE),
        BTreeSet::from([key("User", s::ALICE), key("ScalewayUser", &scaleway_alice)])
    );
    assert_eq!(g.node("Person", ALICE)["accounts"], 2);
    assert!(!g.has("Person", "john.doe@example.com"));

    // --no-people leaves the links as they are, though the rules would add one back.
    let config = w.config(RULES);
    ok(&sync(
        &w,
        &sims,
        &config,
        &["azure"],
        &["--store", &store, "--no-people"],
    ));
    assert_eq!(accounts(&w.graph(), ALICE).len(), 2);
}

#[test]
fn bad_rules_are_refused_naming_the_rule() {
    let w = Work::new("people-bad");
    let config = w.config("[people]\nmatch = [{ label = \"User\", property = \"E-mail\" }]\n");
    let ran = run(&mut w.cmd(&["--config", &config, "sync", "azure", "--store", &w.store()]));
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("[people] in ")
            && ran
                .stderr
                .contains("match[0]: `property` \"E-mail\" is not a snake_case name"),
        "{}",
        ran.stderr
    );
}

/// The same people and answers over Bolt (the ArcadeDB server `cargo xtask test` starts).
#[tokio::test(flavor = "multi_thread")]
async fn people_over_bolt_equal_the_embedded_stores() {
    let w = Work::new("people-bolt");
    let sims = sims();
    let config = w.config(RULES);
    let store = w.store();
    let what = ["azure", "spacelift", "scaleway"];
    ok(&sync(&w, &sims, &config, &what, &["--store", &store]));
    let db = infragraph_tests::bolt::fresh_database("people").await;
    let bolt = [
        "--neo4j",
        db.uri.as_str(),
        "--neo4j-user",
        db.user.as_str(),
        "--neo4j-database",
        db.database.as_str(),
    ];
    let mut cmd = w.cmd(&[&["--config", &config, "sync"], &what[..], &bolt[..]].concat());
    env(&mut cmd, &sims);
    cmd.env("NEO4J_PASSWORD", &db.password);
    ok(&run(&mut cmd));
    let ask = |place: &[&str]| {
        let mut cmd = w.cmd(
            &[
                &[
                    "--config", &config, "access", "what", "Person", ALICE, "--json",
                ],
                place,
            ]
            .concat(),
        );
        cmd.env("NEO4J_PASSWORD", &db.password);
        reached(&run(&mut cmd))
    };
    let here = ask(&["--store", &store]);
    assert!(here.contains(&key("SpaceliftStack", "stack-2")), "{here:?}");
    assert_eq!(here, ask(&bolt));
}
