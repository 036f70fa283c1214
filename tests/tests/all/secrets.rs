//! A credential's value reaches the provider, and nothing else: not the guest, the
//! log, the errors or the report.

use std::collections::BTreeMap;

use infragraph_core::{ConfigValue, Value};
use infragraph_engine::{Job, Options, sync_all};
use infragraph_fetch::Secrets;
use infragraph_runtime::{
    Consent, Emission, Limits, MAX_GUEST_TEXT, SecretSource, Source, resolve_secrets,
};
use infragraph_tests::harness::Sync;
use infragraph_tests::leak::gives_away;
use infragraph_tests::logs;
use infragraph_tests::sim::{EchoSim, reflections};

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

/// Issue 20, point 2: a granted API reflecting the credential base64-encoded (at any
/// alignment, either alphabet), hex-encoded, in another case or as a header name handed
/// it to the guest, which could then send it anywhere it may send anything. The guest
/// here dumps the whole response, header names included, into a record and posts it
/// back out; none of it gives the secret away.
#[tokio::test(flavor = "current_thread")]
async fn a_secret_reflected_in_any_listed_form_never_reaches_the_guest() {
    let (log, _guard) = logs::capture();
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    let run = Sync::new(&rt, &p)
        .config("mode", "exfiltrate")
        .config("endpoint", &url)
        .config("target", &format!("{url}/reflect"))
        .secret("token", SECRET)
        .run()
        .await;
    assert_eq!(
        run.outcome.result.as_deref(),
        Ok("ok"),
        "{:?}",
        run.outcome.result
    );
    assert_eq!(sim.seen_header_values("x-token"), [SECRET]);
    let bodies = sim.seen_bodies();
    assert_eq!(bodies.len(), 1, "the guest posted what it got");
    let dump = String::from_utf8_lossy(&bodies[0]);
    for (form, _) in reflections(SECRET) {
        assert!(
            dump.contains(&format!("\"{form}\":\"")),
            "the provider reflected {form}: {dump}"
        );
    }
    assert!(dump.contains("x-echo-(secret:token}: 1"), "{dump}");
    assert!(dump.contains("x-echo: (secret:token}"), "{dump}");
    assert!(
        !gives_away(&dump, SECRET),
        "the guest got the secret: {dump}"
    );
    let emitted = format!("{:?}", run.emitted);
    assert!(emitted.contains("{secret:token}"), "{emitted}");
    assert!(!gives_away(&emitted, SECRET), "{emitted}");
    assert!(!gives_away(&log.text(), SECRET), "the secret is in the log");
}

/// Issue 20, point 3: `println!`/`eprintln!` reached the host log unscrubbed, and a
/// copy of a secret in another case in guest error text was kept in reports. The
/// provider here gives the credential back reversed, a form the host cannot know, so
/// the plugin holds it; what it writes out is still scrubbed.
#[tokio::test(flavor = "current_thread")]
async fn a_secret_the_plugin_holds_is_scrubbed_from_stdout_stderr_the_log_and_its_error() {
    let (log, _guard) = logs::capture();
    let sim = EchoSim::start().await;
    let rt = runtime();
    let p = misbehave(&rt).await;
    let url = sim.url();
    let run = Sync::new(&rt, &p)
        .config("mode", "leak-stdio")
        .config("endpoint", &url)
        .config("target", &format!("{url}/reflect/reversed"))
        .secret("token", SECRET)
        .run()
        .await;
    let failure = run.failure();
    assert_eq!(failure, "provider error: error: {secret:token}");
    let text = log.text();
    assert!(
        !gives_away(&text, SECRET),
        "the secret is in the log:\n{text}"
    );
    for line in [
        "stdout: the token is {secret:token}",
        "stderr: THE TOKEN IS {secret:token}",
        "log: {secret:token}",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    // The long line is cut with the secret across the cut: no piece of it is left.
    let head = &SECRET[..6];
    assert!(
        !text
            .to_ascii_lowercase()
            .contains(&head.to_ascii_lowercase()),
        "a piece of the secret is in the log:\n{text}"
    );
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

/// Issue 20, point 7: with a one-letter secret, scrubbing rewrote `"api_keys"` in a
/// response to `"api_{secret:secret_key}eys"` and the listing failed to parse. A value
/// that short is refused before the plugin runs, naming the credential and where its
/// value came from, never the value.
#[tokio::test(flavor = "current_thread")]
async fn a_credential_shorter_than_eight_bytes_is_refused_naming_it_not_its_value() {
    let rt = runtime();
    let p = misbehave(&rt).await;
    let env = |short: &'static str| move |var: &str| (var == "MY_TOKEN").then(|| short.to_owned());
    let from_env = Consent {
        secrets: BTreeMap::from([("token".into(), SecretSource::Env("MY_TOKEN".into()))]),
        pin: None,
        connection: None,
    };
    let resolve = |consent: &Consent, env: &dyn Fn(&str) -> Option<String>| {
        resolve_secrets(p.manifest(), &[], Source::User, p.sha256(), consent, env)
    };
    for short in ["k", "Zx7#Q9!"] {
        let err = resolve(&from_env, &env(short)).expect_err("a short credential is refused");
        let text = err.to_string();
        assert!(
            text.contains("\"token\"")
                && text.contains("shorter than 8 bytes")
                && text.contains("MY_TOKEN"),
            "{text}"
        );
        assert!(
            text.contains("would rewrite ordinary text in responses"),
            "the error says why: {text}"
        );
        assert!(
            !text.contains(&format!(" {short} ")) && !text.contains(&format!("{short:?}")),
            "{text}"
        );
    }
    let file = std::env::temp_dir().join(format!("infragraph-short-{}", std::process::id()));
    std::fs::write(&file, "pw\n").unwrap();
    let from_file = Consent {
        secrets: BTreeMap::from([("token".into(), SecretSource::File(file.clone()))]),
        pin: None,
        connection: None,
    };
    let err = resolve(&from_file, &|_: &str| None).expect_err("refused");
    std::fs::remove_file(&file).unwrap();
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    assert!(resolve(&from_env, &env("eight888")).is_ok());
}

/// Issue 20, points 3 and 4, where they end up: the report `--report` writes and the run
/// history `runs --json` reads, through the engine and the embedded store. A plugin
/// holding the credential (given back reversed) puts it, upper-cased, in its error; a
/// second writes 100 MB of error text. Neither report gives the secret away, and each
/// stays small.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_and_run_history_hold_no_form_of_a_secret_and_no_huge_text() {
    let sim = EchoSim::start().await;
    let rt = std::sync::Arc::new(runtime());
    let p = misbehave(&rt).await;
    let url = sim.url();
    let dir = tempfile::tempdir().expect("a scratch dir");
    let store = std::sync::Arc::new(
        infragraph_sink_sqlite::Store::open(dir.path().join("graph.db")).expect("a store"),
    );
    let mut reports = Vec::new();
    for (mode, target) in [
        ("leak-stdio", format!("{url}/reflect/reversed")),
        ("huge-error", String::new()),
    ] {
        let text = |v: &str| ConfigValue::Text(v.into());
        let mut secrets = Secrets::new();
        secrets.insert("token", SECRET.into()).unwrap();
        let job = Job {
            plugin: p.clone(),
            config: vec![
                ("mode".into(), text(mode)),
                ("endpoint".into(), text(&url)),
                ("target".into(), text(&target)),
            ],
            secrets,
            limits: Limits::default(),
            state_as: None,
            tape: Default::default(),
            connection: None,
        };
        let done = sync_all(
            rt.clone(),
            store.clone(),
            vec![job],
            Options::default(),
            std::sync::Arc::new(|_: &str, _| {}),
        )
        .await;
        reports.push(serde_json::to_string(&done).unwrap());
    }
    assert!(
        reports[0].contains("error: {secret:token}"),
        "{}",
        reports[0]
    );
    let history = store.runs(10).expect("the run history");
    assert_eq!(history.len(), 2);
    for text in reports.iter().chain(history.iter().map(|r| &r.report)) {
        assert!(!gives_away(text, SECRET), "{text}");
        assert!(text.len() < 2 * MAX_GUEST_TEXT, "{} bytes", text.len());
    }
}
