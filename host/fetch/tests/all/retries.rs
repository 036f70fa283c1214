//! Retries, backoff, Retry-After, timeouts and connection failures.

use std::time::{Duration, Instant};

use infragraph_fetch::{FetchError, Request};

use crate::support::{Reply, Server, Setup, closed_port, manifest};

async fn endpoint_fetcher(s: &Server, max_retries: u32) -> infragraph_fetch::Fetcher {
    Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.max_retries = max_retries)
        .build()
}

#[tokio::test]
async fn retries_429_then_succeeds() {
    let s = Server::start(|_, hit| {
        if hit < 2 {
            Reply::status(429).header("retry-after", "0")
        } else {
            Reply::ok("done")
        }
    })
    .await;
    let f = endpoint_fetcher(&s, 4).await;
    let r = f.fetch(Request::get(s.url("/"))).await.unwrap();
    assert_eq!(r.body, b"done");
    let st = f.stats();
    assert_eq!((st.requests, st.responses, st.retries), (3, 3, 2));
}

#[tokio::test]
async fn retries_gateway_errors_with_backoff() {
    let s = Server::start(|_, hit| match hit {
        0 => Reply::status(502),
        1 => Reply::status(503),
        2 => Reply::status(504),
        _ => Reply::ok("up"),
    })
    .await;
    let f = endpoint_fetcher(&s, 4).await;
    assert_eq!(f.fetch(Request::get(s.url("/"))).await.unwrap().status, 200);
    assert_eq!(f.stats().retries, 3);
}

#[tokio::test]
async fn hands_back_the_last_429_when_retries_run_out() {
    let s = Server::start(|_, _| Reply::status(429).header("retry-after", "0")).await;
    let f = endpoint_fetcher(&s, 2).await;
    let r = f.fetch(Request::get(s.url("/"))).await.unwrap();
    assert_eq!(r.status, 429);
    let st = f.stats();
    assert_eq!((st.requests, st.retries, st.failures), (3, 2, 0));
}

#[tokio::test]
async fn other_statuses_are_not_retried() {
    let s = Server::start(|seen, _| Reply::status(seen.path[1..].parse().unwrap())).await;
    let f = endpoint_fetcher(&s, 4).await;
    for status in [400u16, 404, 500] {
        assert_eq!(
            f.fetch(Request::get(s.url(&format!("/{status}"))))
                .await
                .unwrap()
                .status,
            status
        );
    }
    assert_eq!(f.stats().retries, 0);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let s = Server::start(|_, hit| {
        if hit == 0 {
            Reply::status(503).header("retry-after", "3600")
        } else {
            Reply::ok("")
        }
    })
    .await;
    let f = endpoint_fetcher(&s, 1).await;
    let begin = Instant::now();
    assert_eq!(f.fetch(Request::get(s.url("/"))).await.unwrap().status, 200);
    assert!(
        begin.elapsed() < Duration::from_secs(5),
        "{:?}",
        begin.elapsed()
    );
}

#[tokio::test]
async fn retry_after_accepts_an_http_date() {
    let s = Server::start(|_, hit| {
        if hit == 0 {
            Reply::status(429).header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")
        } else {
            Reply::ok("")
        }
    })
    .await;
    let f = endpoint_fetcher(&s, 1).await;
    assert_eq!(f.fetch(Request::get(s.url("/"))).await.unwrap().status, 200);
    assert_eq!(f.stats().retries, 1);
}

#[tokio::test]
async fn connection_failures_end_as_network_after_retries() {
    let port = closed_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", base.clone())
        .limits(|l| l.max_retries = 2)
        .build();
    match f.fetch(Request::get(format!("{base}/"))).await {
        Err(FetchError::Network(m)) => assert!(m.contains("after 2 retries"), "{m}"),
        other => panic!("{other:?}"),
    }
    let st = f.stats();
    assert_eq!(
        (st.requests, st.responses, st.retries, st.failures),
        (3, 0, 2, 1)
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_per_attempt() {
    let s = Server::start(|_, _| Reply::ok("late").delay(Duration::from_secs(3))).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| {
            l.max_retries = 1;
            l.request_timeout = Duration::from_millis(100);
        })
        .build();
    let begin = Instant::now();
    match f.fetch(Request::get(s.url("/"))).await {
        Err(FetchError::Timeout(m)) => assert!(
            m.contains("within 100 ms") && m.contains("after 1 retries"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        begin.elapsed() < Duration::from_secs(2),
        "{:?}",
        begin.elapsed()
    );
    assert_eq!(f.stats().retries, 1);
}
