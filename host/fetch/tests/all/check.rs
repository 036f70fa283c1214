//! A connection check: the first request carrying a credential decides, and what is
//! still in flight or queued then is given up rather than waited for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use infragraph_core::CredentialUse;
use infragraph_fetch::{Check, Checked, FetchError, Fetcher, Request, Tape};

use crate::support::{Reply, Server, Setup, cred, manifest};

const TOKEN: &str = "tok-3f9a7c21";

/// A fetcher checking a connection to `s` whose token goes in a header, with `slots`
/// requests at once to it, and its check.
fn checking(s: &Server, slots: usize) -> (Arc<Check>, Fetcher) {
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let check = Arc::new(Check::new());
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("token", TOKEN)
        .tape(Tape::Check(check.clone()))
        .limits(|l| l.per_host_concurrency = slots)
        .build();
    (check, f)
}

/// The first request is refused; it settles the check, and a request after it is not
/// sent at all.
#[tokio::test]
async fn once_settled_nothing_more_is_sent() {
    let s = Server::start(|_, i| {
        if i == 0 {
            Reply::status(401)
        } else {
            Reply::ok("late").delay(Duration::from_secs(5))
        }
    })
    .await;
    let (check, f) = checking(&s, 4);
    // One at a time first, so the refused one is the first to arrive.
    let first = f
        .fetch(Request::get(s.url("/first")).header("X-Auth-Token", "{secret:token}"))
        .await;
    assert_eq!(first.unwrap().status, 401);
    // Settled: nothing more is sent.
    let begin = Instant::now();
    let refused = f
        .fetch(Request::get(s.url("/after")).header("X-Auth-Token", "{secret:token}"))
        .await;
    assert!(matches!(refused, Err(FetchError::Network(ref m)) if m.contains("check is complete")));
    assert!(begin.elapsed() < Duration::from_secs(1));
    assert_eq!(
        s.seen().len(),
        1,
        "nothing sent after the check was settled"
    );
    match check.outcome() {
        Some(Checked::Refused { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// A round of requests at once, as plugins send them: the first to be answered settles
/// the check, and the call ends then, not when the slowest would have.
#[tokio::test]
async fn a_round_at_once_ends_with_its_first_answer() {
    let s = Server::start(|seen, _| {
        if seen.path == "/quick" {
            Reply::status(403).delay(Duration::from_millis(100))
        } else {
            Reply::ok("late").delay(Duration::from_secs(5))
        }
    })
    .await;
    // Two slots for twelve requests: ten wait in the queue.
    let (check, f) = checking(&s, 2);
    let mut round = vec![Request::get(s.url("/quick")).header("X-Auth-Token", "{secret:token}")];
    round.extend((0..11).map(|i| {
        Request::get(s.url(&format!("/slow/{i}"))).header("X-Auth-Token", "{secret:token}")
    }));
    let begin = Instant::now();
    let outcomes = f.fetch_many(round).await;
    let spent = begin.elapsed();
    assert!(
        spent < Duration::from_secs(3),
        "the round took {spent:?}: it waited for requests the check no longer needed"
    );
    assert_eq!(outcomes[0].as_ref().map(|r| r.status).ok(), Some(403));
    for o in &outcomes[1..] {
        assert!(
            matches!(o, Err(FetchError::Network(m)) if m.contains("check is complete")),
            "{o:?}"
        );
    }
    assert!(
        s.seen().len() <= 2,
        "only the requests holding a slot were sent: {}",
        s.seen().len()
    );
    match check.outcome() {
        Some(Checked::Refused { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }
}
