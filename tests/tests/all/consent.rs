//! Issue 20, point 1: a credential reaches a plugin that is not built in only from a
//! source the operator named for it, and, with a pin, only while it is the pinned build.
//! The hostile guest claims `SCW_SECRET_KEY`, another provider's variable, as its token.

use std::path::PathBuf;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;
use infragraph_tests::sim::{AcmeData, AcmeSim, EchoSim};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

const SECRET: &str = "scw-Secret-of-another-provider-4711";

/// `misbehave` dropped into this test's user plugin directory; its path.
fn drop_in(w: &Work) -> PathBuf {
    let dir = w.0.join("data/infragraph/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("misbehave.wasm");
    std::fs::copy(harness::guest("misbehave"), &path).unwrap();
    path
}

/// `[plugins.misbehave]` in fetch mode against `sim`, then `extra` lines.
fn fetch_config(w: &Work, sim: &EchoSim, extra: &str) -> String {
    w.config(&format!(
        "[plugins.misbehave]\nmode = \"fetch\"\nendpoint = \"{0}\"\ntarget = \"{0}/echo\"\n{extra}",
        sim.url()
    ))
}

/// `infragraph sync <plugin>` with SCW_SECRET_KEY set, writing `report.json`.
fn sync(w: &Work, plugins: &[&str], config: &str) -> Ran {
    let mut args = vec!["sync"];
    args.extend(plugins);
    let store = w.store();
    args.extend([
        "--config",
        config,
        "--store",
        &store,
        "--report",
        "report.json",
    ]);
    run(w.cmd(&args).env("SCW_SECRET_KEY", SECRET))
}

fn reports(w: &Work) -> Vec<Json> {
    let text = std::fs::read_to_string(w.0.join("report.json")).expect("report.json");
    serde_json::from_str::<Json>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn report_of(w: &Work, plugin: &str) -> Json {
    reports(w)
        .into_iter()
        .find(|r| r["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no report of {plugin}: {:?}", reports(w)))
}

fn sha256_of(path: &PathBuf) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_in_plugin_does_not_get_the_variable_its_manifest_names() {
    let w = Work::new("consent-none");
    let sim = EchoSim::start().await;
    drop_in(&w);
    let config = fetch_config(&w, &sim, "");
    let by_path = harness::guest("misbehave");
    for plugin in ["misbehave", by_path.to_str().unwrap()] {
        let ran = sync(&w, &[plugin], &config);
        // The credential is absent: the plugin is told so when its request needs it.
        assert_eq!(ran.code, 2, "{plugin}: {}\n{}", ran.stdout, ran.stderr);
        let report = report_of(&w, "misbehave");
        let error = report["errors"][0].as_str().unwrap();
        assert!(
            error.starts_with("sync: ")
                && error.contains("credential \"token\" has no value")
                && error.contains("[plugins.misbehave.secrets]"),
            "{plugin}: {error}"
        );
        assert!(
            !error.contains("SCW_SECRET_KEY"),
            "no variable suggested: {error}"
        );
        for text in [&ran.stdout, &ran.stderr] {
            assert!(!text.contains(SECRET), "{plugin}: {text}");
        }
    }
    assert!(
        !sim.seen_header_values("x-token")
            .contains(&SECRET.to_string()),
        "the secret was sent"
    );
    assert_eq!(
        sim.total_requests(),
        0,
        "nothing was sent without the credential"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_in_plugin_gets_a_credential_from_the_source_the_config_names() {
    let w = Work::new("consent-granted");
    let sim = EchoSim::start().await;
    drop_in(&w);

    let config = fetch_config(
        &w,
        &sim,
        "[plugins.misbehave.secrets]\ntoken = { env = \"SCW_SECRET_KEY\" }\n",
    );
    let ran = sync(&w, &["misbehave"], &config);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.seen_header_values("x-token"), [SECRET]);

    let file = w.0.join("token");
    std::fs::write(&file, "from-a-file-0815\n").unwrap();
    let config = fetch_config(
        &w,
        &sim,
        &format!(
            "[plugins.misbehave.secrets]\ntoken = {{ file = \"{}\" }}\n",
            file.display()
        ),
    );
    let guest = harness::guest("misbehave");
    let ran = sync(&w, &[guest.to_str().unwrap()], &config);
    assert_eq!(ran.code, 0, "by path: {}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.seen_header_values("x-token")[1], "from-a-file-0815");

    // The older spelling of a file source still works.
    let config = fetch_config(
        &w,
        &sim,
        &format!(
            "[plugins.misbehave.secret_files]\ntoken = \"{}\"\n",
            file.display()
        ),
    );
    let ran = sync(&w, &["misbehave"], &config);
    assert_eq!(ran.code, 0, "secret_files: {}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.seen_header_values("x-token")[2], "from-a-file-0815");
}

#[test]
fn plugins_inspect_shows_each_credential_with_its_hosts_and_source() {
    let w = Work::new("consent-inspect");
    drop_in(&w);
    let inspect = |config: &str| {
        let ran = run(&mut w.cmd(&["plugins", "inspect", "misbehave", "--config", config]));
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        ran.stdout
    };
    let line = |out: &str, starts: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(starts))
            .unwrap_or_else(|| panic!("no line {starts:?} in:\n{out}"))
            .to_string()
    };
    let none = w.config("[plugins.misbehave]\nmode = \"ok\"\n");
    let out = inspect(&none);
    let from = line(&out, "from ");
    assert!(
        from.contains("not configured") && from.contains("SCW_SECRET_KEY"),
        "{out}"
    );
    let to = line(&out, "sent as ");
    assert!(to.contains("{config:endpoint}"), "{out}");

    let env = w.config("[plugins.misbehave.secrets]\ntoken = { env = \"MY_TOKEN\" }\n");
    assert_eq!(
        line(&inspect(&env), "from ").trim(),
        "from env MY_TOKEN (configured)"
    );
    let file = w.config("[plugins.misbehave.secrets]\ntoken = { file = \"/run/token\" }\n");
    assert_eq!(
        line(&inspect(&file), "from ").trim(),
        "from file /run/token (configured)"
    );

    // `Work::config` writes one file: the env source again.
    let env = w.config("[plugins.misbehave.secrets]\ntoken = { env = \"MY_TOKEN\" }\n");
    let json = run(&mut w.cmd(&[
        "plugins",
        "inspect",
        "misbehave",
        "--json",
        "--config",
        &env,
    ]));
    let json: Json = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["credentials"][0]["name"], "token");
    assert_eq!(json["credentials"][0]["from"]["env"], "MY_TOKEN");
    assert_eq!(json["credentials"][0]["hosts"][0], "{config:endpoint}");

    // A built-in plugin reads the variable its manifest names.
    let ran = run(&mut w.cmd(&["plugins", "inspect", "example"]));
    assert_eq!(
        line(&ran.stdout, "from ").trim(),
        "from env ACME_API_TOKEN",
        "{}",
        ran.stdout
    );
}

/// The consent is given to a build: another file of the same name, with the pin still
/// naming the first, gets no credential (it is not even loaded), and the other plugins
/// of the command run.
#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_consent_holds_for_the_pinned_build_only() {
    let w = Work::new("consent-pin");
    let sim = EchoSim::start().await;
    let dropped = drop_in(&w);
    let pin = sha256_of(&dropped);
    let config = fetch_config(
        &w,
        &sim,
        &format!(
            "sha256 = \"{pin}\"\n[plugins.misbehave.secrets]\ntoken = {{ env = \"SCW_SECRET_KEY\" }}\n"
        ),
    );
    let ran = sync(&w, &["misbehave"], &config);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.seen_header_values("x-token"), [SECRET]);

    // Another build: the same component with a custom section appended (id 0, name
    // "x", one byte), so the same manifest and a different sha256.
    let mut bytes = std::fs::read(&dropped).unwrap();
    bytes.extend_from_slice(&[0, 3, 1, b'x', 1]);
    std::fs::write(&dropped, &bytes).unwrap();
    let acme = AcmeSim::start(AcmeData::sample(4, 1));
    let store = w.store();
    let ran = run(w
        .cmd(&[
            "sync",
            "misbehave",
            "example",
            "--config",
            &config,
            "--store",
            &store,
            "--report",
            "report.json",
        ])
        .env("SCW_SECRET_KEY", SECRET)
        .env("ACME_API_URL", acme.url())
        .env("ACME_TENANT", AcmeData::TENANT)
        .env("ACME_API_TOKEN", AcmeSim::TOKEN));
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    let error = report_of(&w, "misbehave")["errors"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("load: ")
            && error.contains("but the config pins")
            && error.contains(&pin),
        "{error}"
    );
    assert_eq!(report_of(&w, "misbehave")["status"], "failed");
    assert_eq!(sim.total_requests(), 1, "the other build sent nothing");
    // The other plugin of the command ran.
    assert_eq!(report_of(&w, "example")["status"], "succeeded");
    assert_eq!(w.graph().count("AcmeUser"), 4);
}
