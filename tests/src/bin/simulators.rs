//! Serves every provider simulator on loopback until interrupted, and prints the
//! environment that points infragraph at them: the README's quick start without a cloud
//! account.

use infragraph_tests::sim::{
    AcmeData, AcmeSim, AzureData, AzureSim, CriticalData, CriticalSim, S3Sim, ScalewayData,
    ScalewaySim, SpaceliftData, SpaceliftSim,
};

fn main() {
    let acme = AcmeSim::start(AcmeData::sample(250, 12));
    let scaleway = ScalewaySim::start(ScalewayData::sample());
    let spacelift = SpaceliftSim::start(SpaceliftData::sample());
    let s3 = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
    let critical = CriticalSim::start(CriticalData::sample());
    let azure = AzureSim::start(AzureData::sample());
    println!("# Provider simulators are running; paste these lines into another shell:");
    println!(
        "export ACME_API_URL={} ACME_TENANT={} ACME_API_TOKEN={}",
        acme.url(),
        AcmeData::TENANT,
        AcmeSim::TOKEN
    );
    println!(
        "export SCW_API_URL={} SCW_SECRET_KEY={} SCW_DEFAULT_ORGANIZATION_ID={}",
        scaleway.url(),
        ScalewaySim::SECRET_KEY,
        scaleway.organization_id()
    );
    println!(
        "export SPACELIFT_API_KEY_ENDPOINT={} SPACELIFT_API_KEY_ID={} SPACELIFT_API_KEY_SECRET={} SPACELIFT_ACCOUNT_ID={}",
        spacelift.endpoint(),
        SpaceliftSim::KEY_ID,
        SpaceliftSim::KEY_SECRET,
        SpaceliftData::SAMPLE_ACCOUNT
    );
    println!(
        "export SPACELIFT_EC2_OWNERSHIP_S3_ENDPOINT={} SPACELIFT_EC2_OWNERSHIP_S3_BUCKET={} SPACELIFT_EC2_OWNERSHIP_S3_PREFIX={} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={}",
        s3.url(),
        S3Sim::BUCKET,
        S3Sim::PREFIX,
        S3Sim::ACCESS_KEY_ID,
        S3Sim::SECRET_ACCESS_KEY,
        S3Sim::REGION
    );
    println!(
        "export DB_CONNECTION_STRING={} DB_NAME={} DB_USER={} DB_PASSWORD={}",
        critical.url(),
        CriticalSim::DATABASE,
        CriticalSim::USER,
        CriticalSim::PASSWORD
    );
    println!(
        "export AZURE_TENANT_ID={} AZURE_CLIENT_ID={} AZURE_CLIENT_SECRET={} AZURE_AUTHORITY_HOST={url} AZURE_RESOURCE_MANAGER_URL={url} AZURE_GRAPH_URL={url}",
        azure.tenant_id(),
        AzureSim::CLIENT_ID,
        AzureSim::CLIENT_SECRET,
        url = azure.url()
    );
    println!(
        "# then: infragraph sync example scaleway spacelift critical azure   (Ctrl-C here stops the simulators)"
    );
    loop {
        std::thread::park();
    }
}
