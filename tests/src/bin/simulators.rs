//! Serves every provider simulator on loopback until interrupted, and prints the
//! environment that points infragraph at them: the README's quick start without a cloud
//! account.

use infragraph_tests::sim::{
    AcmeData, AcmeSim, CriticalData, CriticalSim, ScalewayData, ScalewaySim,
};

fn main() {
    let acme = AcmeSim::start(AcmeData::sample(250, 12));
    let scaleway = ScalewaySim::start(ScalewayData::sample());
    let critical = CriticalSim::start(CriticalData::sample());
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
        "export DB_CONNECTION_STRING={} DB_NAME={} DB_USER={} DB_PASSWORD={}",
        critical.url(),
        CriticalSim::DATABASE,
        CriticalSim::USER,
        CriticalSim::PASSWORD
    );
    println!(
        "# then: infragraph sync example scaleway critical   (Ctrl-C here stops the simulators)"
    );
    loop {
        std::thread::park();
    }
}
