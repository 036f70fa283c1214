//! Serves every provider simulator on loopback until interrupted, and writes the
//! environment that points infragraph at them into an env file: the README's quick start
//! without a cloud account.
//!
//! The settings go into a file, not `export` lines to paste, because some of them use
//! well-known names (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`): pasted
//! into a shell they would replace the user's own. The printed commands use the file in a
//! child process or a subshell only.
//!
//! `simulators [ENV_FILE]`; the file defaults to `simulators.env` in the current folder.

use std::fmt::Write as _;

use infragraph_tests::sim::{
    AcmeData, AcmeSim, AzureData, AzureSim, CriticalData, CriticalSim, S3Sim, ScalewayData,
    ScalewaySim, SpaceliftData, SpaceliftSim,
};

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "simulators.env".into());
    let acme = AcmeSim::start(AcmeData::sample(250, 12));
    let scaleway = ScalewaySim::start(ScalewayData::sample());
    let spacelift = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    let critical = CriticalSim::start(CriticalData::sample());
    let azure = AzureSim::start(AzureData::sample());
    let settings: Vec<(&str, String)> = vec![
        ("ACME_API_URL", acme.url()),
        ("ACME_TENANT", AcmeData::TENANT.into()),
        ("ACME_API_TOKEN", AcmeSim::TOKEN.into()),
        ("SCW_API_URL", scaleway.url()),
        ("SCW_SECRET_KEY", ScalewaySim::SECRET_KEY.into()),
        ("SCW_DEFAULT_ORGANIZATION_ID", scaleway.organization_id()),
        ("SPACELIFT_API_KEY_ENDPOINT", spacelift.endpoint()),
        ("SPACELIFT_API_KEY_ID", SpaceliftSim::KEY_ID.into()),
        ("SPACELIFT_API_KEY_SECRET", SpaceliftSim::KEY_SECRET.into()),
        ("SPACELIFT_ACCOUNT_ID", SpaceliftData::SAMPLE_ACCOUNT.into()),
        ("SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT", s3.url()),
        ("SPACELIFT_EC2_OWNERSHIP_S3_BUCKET", S3Sim::BUCKET.into()),
        ("SPACELIFT_EC2_OWNERSHIP_S3_PREFIX", S3Sim::PREFIX.into()),
        ("AWS_ACCESS_KEY_ID", S3Sim::ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", S3Sim::SECRET_ACCESS_KEY.into()),
        ("AWS_REGION", S3Sim::REGION.into()),
        ("DB_CONNECTION_STRING", critical.url()),
        ("DB_NAME", CriticalSim::DATABASE.into()),
        ("DB_USER", CriticalSim::USER.into()),
        ("DB_PASSWORD", CriticalSim::PASSWORD.into()),
        ("AZURE_TENANT_ID", azure.tenant_id()),
        ("AZURE_CLIENT_ID", AzureSim::CLIENT_ID.into()),
        ("AZURE_CLIENT_SECRET", AzureSim::CLIENT_SECRET.into()),
        ("AZURE_AUTHORITY_HOST", azure.url()),
        ("AZURE_RESOURCE_MANAGER_URL", azure.url()),
        ("AZURE_GRAPH_URL", azure.url()),
    ];
    let mut file = String::from("# Written by `simulators`: valid while it runs.\n");
    for (key, value) in &settings {
        // Every value is a URL or a token without spaces: `env $(cat FILE)` splits it right.
        let _ = writeln!(file, "{key}={value}");
    }
    // Written aside, then renamed: whoever waits for the file finds it whole.
    let aside = format!("{path}.partial");
    if let Err(e) = std::fs::write(&aside, file).and_then(|()| std::fs::rename(&aside, &path)) {
        eprintln!("simulators: cannot write {path}: {e}");
        std::process::exit(1);
    }
    println!("# Provider simulators are running; their settings are in {path}.");
    println!("# Use them in a child process or a subshell, so that none of your own variables");
    println!("# (AWS_ACCESS_KEY_ID and the like) is overwritten:");
    println!(
        "env $(grep -v '^#' {path}) infragraph sync example scaleway spacelift critical azure"
    );
    println!("# or open a shell holding them, and leave it with `exit`:");
    // `.` looks a name without a slash up in PATH, not in the current folder; a path with
    // one (absolute, say) is taken as it is.
    let sourced = if path.contains('/') {
        path.clone()
    } else {
        format!("./{path}")
    };
    println!("(set -a; . {sourced}; exec \"${{SHELL:-sh}}\")");
    println!("# Ctrl-C here stops the simulators.");
    loop {
        std::thread::park();
    }
}
