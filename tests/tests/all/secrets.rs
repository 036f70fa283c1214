//! A credential's value reaches the provider, and nothing else: not the guest, the
//! log, the errors or the report.

use infragraph_core::Value;
use infragraph_runtime::Emission;
use infragraph_tests::harness::Sync;
use infragraph_tests::logs;
use infragraph_tests::sim::EchoSim;

use crate::{misbehave, runtime};

const SECRET: &str = "s3cr3t-Value-4711";

#[tokio::test(flavor = "current_thread")]
async fn a_secret_reaches_the_provider_and_nothing_else() {
    let (log, _guard) = logs::capture();
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    // The echo server sends the request's headers back: a hostile provider reflecting the
    // credential to the guest.
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch")
        .config("endpoint", &url)
        .config("target", &format!("{url}/echo"))
        .secret("token", SECRET)
        .run()
        .await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "{:?}",
        run.outcome.result
    );
    assert!(
        sim.seen_header_values("x-token")
            .contains(&SECRET.to_string()),
        "the provider got the real value"
    );

    let Some(Value::Text(body)) = run.prop("fetched", "name") else {
        panic!("no fetched node")
    };
    assert!(
        body.contains("{secret:token}"),
        "the guest saw the placeholder instead: {body}"
    );
    let everything_emitted = format!("{:?}", run.emitted);
    assert!(
        !everything_emitted.contains(SECRET),
        "the secret reached the guest and its records"
    );
    let report = format!(
        "{:?} {}",
        run.outcome,
        serde_json::to_string(&run.outcome.fetch).unwrap()
    );
    assert!(
        !report.contains(SECRET),
        "the secret is in the report: {report}"
    );
    let text = log.text();
    assert!(!text.contains(SECRET), "the secret is in the log");
    assert!(matches!(run.emitted.first(), Some(Emission::Scope(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn a_secret_is_not_sent_to_a_host_it_is_not_granted_to() {
    let granted = EchoSim::start().await;
    let other = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    // `endpoint` (the credential's grant) is one server; the request goes to another that
    // is allowed only as a redirect target would be: not at all.
    let run = Sync::new(&rt, &p)
        .config("mode", "fetch")
        .config("endpoint", &granted.url())
        .config("target", &format!("{}/echo", other.url()))
        .secret("token", SECRET)
        .run()
        .await;
    assert!(run.outcome.result.is_err());
    assert!(!run.failure().contains(SECRET));
    assert_eq!(other.total_requests(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn stdout_and_stderr_land_in_the_log_under_the_plugin_name() {
    let (log, _guard) = logs::capture();
    let rt = runtime();
    let p = misbehave(&rt).await;
    let run = Sync::new(&rt, &p).config("mode", "stdout").run().await;
    assert_eq!(run.outcome.result.as_deref(), Ok("ok"));
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("hello from the guest's stdout") && !l.contains("worker writing"))
        .unwrap_or_else(|| panic!("no stdout line in:\n{text}"));
    assert!(line.contains("misbehave"), "{line}");
    assert!(text.contains("and from its stderr"));
}
