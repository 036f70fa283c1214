//! `cargo xtask demo`: every provider plugin synced against its simulator into a fresh
//! store, then a few questions asked of the graph, printed with their answers.

use std::process::ExitCode;

use infragraph_tests::cli::{infragraph, run};
use infragraph_tests::sim::{
    AcmeData, AcmeSim, AzureData, AzureSim, CriticalData, CriticalSim, S3Sim, ScalewayData,
    ScalewaySim, SpaceliftData, SpaceliftSim, azure_sample,
};

/// Marge's address, the key her accounts share.
const MARGE: &str = "mbsimpson@simpson.corp";

/// The demo's config: which accounts are one person (`[people]`).
const PEOPLE: &str = r#"# Accounts whose values match (ignoring case) belong to one person.
[people]
match = [
  { label = "User", property = "user_principal_name" },
  { label = "User", property = "mail" },
  { label = "ScalewayUser", property = "email" },
  { label = "SpaceliftUser", property = "email" },
]
"#;

fn main() -> ExitCode {
    let work = std::env::temp_dir().join(format!("infragraph-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("demo directory");
    let acme = AcmeSim::start(AcmeData::sample(250, 12));
    println!(
        "Acme Directory simulator on {} (250 users, 12 groups)\n",
        acme.url()
    );
    // Marge Simpson (mbsimpson@simpson.corp, a Scaleway user of the samples) works across
    // three providers: the demo gives her a Spacelift login and an Entra ID account in the
    // Platform group, and the config's [people] rules link the three to one Person.
    let scaleway = ScalewaySim::start(ScalewayData::sample());
    println!(
        "Scaleway simulator on {} (the samples of tests/fixtures/scaleway)\n",
        scaleway.url()
    );
    let critical = CriticalSim::start(CriticalData::sample());
    println!(
        "Critical's ArangoDB simulated on {} (a hand-written organisation: nested groups \
         with a cycle, soft-deleted documents, project ACLs)\n",
        critical.url()
    );

    let mut spacelift_data = SpaceliftData::sample();
    spacelift_data.users.push(serde_json::json!({
        "id": "01HUSERMARGE", "username": "marge", "invitationEmail": MARGE,
        "accessRules": [{"space": "root-space", "spaceAccessLevel": "READ"}]
    }));
    let spacelift = SpaceliftSim::start(spacelift_data);
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    println!(
        "Spacelift simulator on {} and S3 (CloudTrail export, SigV4 checked) on {} (the samples of tests/fixtures/spacelift)\n",
        spacelift.endpoint(),
        s3.url()
    );

    let mut azure_data = AzureData::sample();
    azure_data.users.push(serde_json::json!({
        "id": "u-marge", "userPrincipalName": "MBSimpson@simpson.corp", "displayName": "Marge",
        "accountEnabled": true, "userType": "Member", "mail": MARGE
    }));
    azure_data
        .members
        .entry(azure_sample::PLATFORM.into())
        .or_default()
        .push(serde_json::json!({"@odata.type": "#microsoft.graph.user", "id": "u-marge"}));
    let azure = AzureSim::start(azure_data);
    println!(
        "Azure simulated on {} (Entra ID tokens, ARM, Microsoft Graph: a hand-written tenant \
         of two subscriptions)\n",
        azure.url()
    );

    // The config the commands below read from their working directory.
    std::fs::write(work.join("infragraph.toml"), PEOPLE).expect("demo config");
    let store = work.join("demo.db");
    let store = store.to_str().expect("utf-8 path");
    let step = |title: &str, args: &[&str]| -> i32 {
        println!("$ infragraph {}", args.join(" "));
        let mut cmd = infragraph(&work, args);
        cmd.env("ACME_API_URL", acme.url())
            .env("ACME_TENANT", AcmeData::TENANT)
            .env("ACME_API_TOKEN", AcmeSim::TOKEN)
            .env("SCW_API_URL", scaleway.url())
            .env("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY)
            .env("SCW_DEFAULT_ORGANIZATION_ID", ScalewayData::ORGANIZATION)
            .env("SPACELIFT_API_KEY_ENDPOINT", spacelift.endpoint())
            .env("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID)
            .env("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET)
            .env("SPACELIFT_ACCOUNT_ID", SpaceliftData::SAMPLE_ACCOUNT)
            .env("SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT", s3.url())
            .env("SPACELIFT_EC2_OWNERSHIP_S3_BUCKET", S3Sim::BUCKET)
            .env("SPACELIFT_EC2_OWNERSHIP_S3_PREFIX", S3Sim::PREFIX)
            .env("AWS_ACCESS_KEY_ID", S3Sim::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3Sim::SECRET_ACCESS_KEY)
            .env("AWS_REGION", S3Sim::REGION)
            .env("DB_CONNECTION_STRING", critical.url())
            .env("DB_USER", CriticalSim::USER)
            .env("DB_PASSWORD", CriticalSim::PASSWORD)
            .env("AZURE_TENANT_ID", azure_sample::TENANT)
            .env("AZURE_CLIENT_ID", AzureSim::CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET)
            .env("AZURE_AUTHORITY_HOST", azure.url())
            .env("AZURE_RESOURCE_MANAGER_URL", azure.url())
            .env("AZURE_GRAPH_URL", azure.url());
        let ran = run(&mut cmd);
        print!("{}", ran.stdout);
        if ran.code != 0 {
            eprint!("{}", ran.stderr);
        }
        println!("  ^ {title}\n");
        ran.code
    };
    let mut failed = false;
    failed |= step("installed plugins", &["plugins", "list"]) != 0;
    failed |= step(
        "sync every provider plugin",
        &[
            "sync",
            "example",
            "scaleway",
            "spacelift",
            "critical",
            "azure",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "who administers the tenant?",
        &[
            "query",
            "nodes",
            "AcmeUser",
            "--where",
            "admin=true",
            "--limit",
            "5",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "every user account, whatever the provider",
        &[
            "query",
            "nodes",
            "UserAccount",
            "--limit",
            "3",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "what is user-0003 a member of?",
        &[
            "query",
            "neighbours",
            "AcmeUser",
            "user-0003",
            "--direction",
            "out",
            "--type",
            "MEMBER_OF",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "how is user-0003 connected to group-007?",
        &[
            "query",
            "path",
            "AcmeUser",
            "user-0003",
            "AcmeGroup",
            "group-007",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "which Scaleway instance does IP 51.1.2.8 identify?",
        &[
            "query",
            "neighbours",
            "ScalewayFlexibleIp",
            "7b37f45d-9871-4ae6-bd5a-a926102fb5c9",
            "--direction",
            "out",
            "--type",
            "IDENTIFIES",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "which Scaleway API keys does Homer hold?",
        &[
            "query",
            "neighbours",
            "ScalewayUser",
            "b49932b2-2faa-4c56-905e-ffac52f063dc",
            "--direction",
            "out",
            "--type",
            "HAS",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "who can reach the Scaleway server demo-server, and through which IAM policy?",
        &[
            "access",
            "who",
            "ScalewayInstance",
            "345627e9-18ff-47e0-b73d-3f38fddb4390",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "which Spacelift spaces does john.doe have a role in?",
        &[
            "query",
            "neighbours",
            "SpaceliftUser",
            "john.doe@example.com",
            "--direction",
            "out",
            "--type",
            "HAS_ROLE_IN",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "which Critical groups is u_carol in, directly or through nested groups?",
        &[
            "query",
            "neighbours",
            "CriticalUser",
            "u_carol",
            "--direction",
            "out",
            "--type",
            "EFFECTIVE_MEMBER_OF",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "which runs used commit abc123def456?",
        &[
            "query",
            "neighbours",
            "SpaceliftGitCommit",
            "abc123def456",
            "--direction",
            "out",
            "--type",
            "COMMITTED",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "who can access the Critical project mobile-app, with which permissions, through \
         which group?",
        &[
            "access",
            "who",
            "CriticalProject",
            "mobile-app",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step(
        "who can reach Spacelift's stack-2 (a role on a parent space reaches its children)?",
        &[
            "access",
            "who",
            "SpaceliftStack",
            "stack-2",
            "--store",
            store,
        ],
    ) != 0;
    let vm = format!(
        "/subscriptions/{}/resourcegroups/rg-web/providers/microsoft.compute/virtualmachines/vm-web",
        azure_sample::SUB_PROD
    );
    failed |= step(
        "what does the Azure VM vm-web depend on (original view)?",
        &[
            "query",
            "neighbours",
            "OriginalResource",
            &vm,
            "--direction",
            "out",
            "--type",
            "DEPENDS_ON",
            "--store",
            store,
        ],
    ) != 0;
    let rg_web = format!(
        "/subscriptions/{}/resourcegroups/rg-web",
        azure_sample::SUB_PROD
    );
    failed |= step(
        "who can reach the resource group rg-web (roles on the subscription above it \
         count, and so do groups)?",
        &["access", "who", "ResourceGroup", &rg_web, "--store", store],
    ) != 0;
    failed |= step(
        "the people linked across providers ([people] in infragraph.toml)",
        &["query", "nodes", "Person", "--limit", "5", "--store", store],
    ) != 0;
    failed |= step(
        "what can Marge reach, across Azure, Scaleway and Spacelift?",
        &["access", "what", "Person", MARGE, "--store", store],
    ) != 0;
    failed |= step(
        "how does Marge reach the Scaleway server demo-server? (paste into mermaid.live)",
        &[
            "access",
            "path",
            "Person",
            MARGE,
            "ScalewayInstance",
            "345627e9-18ff-47e0-b73d-3f38fddb4390",
            "--format",
            "mermaid",
            "--store",
            store,
        ],
    ) != 0;
    failed |= step("the run history", &["runs", "--store", store]) != 0;
    println!("The store is {store}; try `infragraph export --format cypher --store {store}`.");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
