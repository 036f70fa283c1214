//! Record and replay: a recording answers a later run exactly as the server did, holds
//! no credential, and a replay names the first request it cannot answer.

use std::path::Path;

use infragraph_core::CredentialUse;
use infragraph_fetch::{FetchError, Fetcher, REDACTED, Recorder, Replay, Request, Tape};

use crate::support::{Reply, Server, Setup, closed_port, cred, denied, manifest, post};

const KEY: &str = "key-5d1e99b0c4";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.handed-over.sig";

/// A login that hands out a token, and a listing that wants it back.
async fn api() -> Server {
    Server::start(|seen, _| match seen.path.as_str() {
        "/login" => Reply::ok(format!(r#"{{"jwt":"{JWT}"}}"#))
            .header("set-cookie", "session=abc123; HttpOnly"),
        p if p.starts_with("/items") => {
            if seen.header("authorization") == Some(&format!("Bearer {JWT}")) {
                Reply::ok(format!(r#"{{"page":"{p}","items":[1,2]}}"#)).header("x-total-count", "2")
            } else {
                Reply::status(401)
            }
        }
        "/binary" => Reply::ok(vec![0u8, 159, 146, 150, 255]),
        _ => Reply::status(404),
    })
    .await
}

fn setup(base: String, tape: Tape) -> Fetcher {
    let m = manifest(
        &[],
        vec![cred("key", CredentialUse::JsonBody, &["{config:api_url}"])],
    );
    Setup::new(m)
        .endpoint("api_url", base)
        .secret("key", KEY)
        .tape(tape)
        .build()
}

/// What a plugin does: log in with its key, then list with the token it got.
async fn session(f: &Fetcher, base: &str) -> Vec<Result<(u16, Vec<u8>), FetchError>> {
    let mut out = Vec::new();
    let login = f
        .fetch(post(format!("{base}/login"), r#"{"key":"{secret:key}"}"#))
        .await;
    out.push(login.clone().map(|r| (r.status, r.body.clone())));
    let jwt: serde_json::Value = serde_json::from_slice(&login.unwrap().body).unwrap();
    let bearer = format!("Bearer {}", jwt["jwt"].as_str().unwrap());
    let pages = vec![
        Request::get(format!("{base}/items?page=1")).header("Authorization", &bearer),
        Request::get(format!("{base}/items?page=2")).header("Authorization", &bearer),
        Request::get(format!("{base}/binary")),
    ];
    for r in f.fetch_many(pages).await {
        out.push(r.map(|r| (r.status, r.body)));
    }
    out
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    all.sort();
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_recording_replays_every_answer_with_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("demo");
    let s = api().await;
    let base = s.base();
    let live = {
        let recorder = Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap();
        let f = setup(base.clone(), Tape::Record(recorder));
        let out = session(&f, &base).await;
        f.finish_tape().unwrap();
        out
    };
    assert_eq!(live[1].as_ref().unwrap().0, 200, "the token worked live");
    drop(s);

    let replay = Replay::open(&rec).unwrap();
    let f = setup(base.clone(), Tape::Replay(replay));
    let again = session(&f, &base).await;
    f.finish_tape().unwrap();
    // The replayed login hands over the placeholder, not the token: the rest matches.
    assert_eq!(
        again[0].as_ref().unwrap().1,
        format!(r#"{{"jwt":"{REDACTED}"}}"#).into_bytes()
    );
    assert_eq!(again[1..], live[1..], "byte for byte, binary body included");
    assert_eq!(f.stats().requests, 0, "nothing was sent");
}

#[tokio::test]
async fn a_recording_holds_no_credential_and_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("demo");
    let s = api().await;
    let f = setup(
        s.base(),
        Tape::Record(Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap()),
    );
    session(&f, &s.base()).await;
    f.finish_tape().unwrap();
    let all = files(&rec);
    assert_eq!(
        all.iter().filter(|(n, _)| n.ends_with(".json")).count(),
        5,
        "recording.json and one file per exchange: {:?}",
        all.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, bytes) in &all {
        assert!(!contains(bytes, KEY), "{name} holds the key");
        assert!(
            !contains(bytes, JWT),
            "{name} holds the token it was handed"
        );
        assert!(
            !contains(bytes, "abc123"),
            "{name} holds the server's session"
        );
    }
    let text: String = all
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text.contains(r#"{\"key\":\"{secret:key}\"}"#),
        "the request is kept as the plugin wrote it, placeholder included: {text}"
    );
    assert!(text.contains(REDACTED));
}

#[tokio::test]
async fn a_replay_names_the_first_request_it_cannot_answer() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("demo");
    let s = api().await;
    let base = s.base();
    let f = setup(
        base.clone(),
        Tape::Record(Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap()),
    );
    session(&f, &base).await;
    f.finish_tape().unwrap();

    let f = setup(base.clone(), Tape::Replay(Replay::open(&rec).unwrap()));
    let why = denied(f.fetch(Request::get(format!("{base}/items?page=3"))).await);
    assert!(why.contains(&format!("GET {base}/items?page=3")), "{why}");
    // Same URL, another body: no answer either.
    denied(
        f.fetch(post(format!("{base}/login"), r#"{"key":"other"}"#))
            .await,
    );
    let err = f.finish_tape().unwrap_err();
    assert!(
        err.contains(&format!("GET {base}/items?page=3")) && err.contains("and 1 later request:"),
        "{err}"
    );
}

#[tokio::test]
async fn identical_requests_get_their_answers_in_order_then_the_last_again() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("demo");
    let s = Server::start(|_, i| Reply::ok(format!("answer {i}"))).await;
    let url = s.url("/poll");
    let f = setup(
        s.base(),
        Tape::Record(Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap()),
    );
    for _ in 0..2 {
        f.fetch(Request::get(&url)).await.unwrap();
    }
    f.finish_tape().unwrap();
    let f = setup(s.base(), Tape::Replay(Replay::open(&rec).unwrap()));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(String::from_utf8(f.fetch(Request::get(&url)).await.unwrap().body).unwrap());
    }
    assert_eq!(got, ["answer 0", "answer 1", "answer 1"]);
}

#[tokio::test]
async fn a_replay_refuses_what_the_live_run_would_and_replays_failures() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("demo");
    let port = closed_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let f = setup(
        base.clone(),
        Tape::Record(Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap()),
    );
    let live = f.fetch(Request::get(format!("{base}/down"))).await;
    assert!(matches!(live, Err(FetchError::Network(_))), "{live:?}");
    f.finish_tape().unwrap();

    let f = setup(base.clone(), Tape::Replay(Replay::open(&rec).unwrap()));
    assert_eq!(f.fetch(Request::get(format!("{base}/down"))).await, live);
    let why = denied(f.fetch(Request::get("http://127.0.0.1:1/elsewhere")).await);
    assert!(
        why.contains("may not fetch"),
        "the allow-list still holds: {why}"
    );
    f.finish_tape().unwrap();
}

#[test]
fn a_recording_goes_into_a_new_folder_and_a_replay_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.json"), "{}").unwrap();
    let e = Recorder::create(dir.path(), "demo", "0.1.0", "ab12").unwrap_err();
    assert!(e.to_string().contains("already holds files"), "{e}");
    let e = Replay::open(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("holds no recording"), "{e}");
    let rec = dir.path().join("demo");
    Recorder::create(&rec, "demo", "0.1.0", "ab12").unwrap();
    std::fs::write(rec.join("000001.json"), "{\"request\": 3}").unwrap();
    let e = Replay::open(&rec).unwrap_err();
    assert!(
        e.to_string().contains("000001.json") && e.to_string().contains("not a recording file"),
        "{e}"
    );
}
