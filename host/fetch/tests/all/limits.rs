//! Body size, fetch-many, per-host concurrency and rate, stats.

use std::time::{Duration, Instant};

use infragraph_fetch::{FetchError, FetchStats, Request};

use crate::support::{RawServer, Reply, Server, Setup, manifest};

#[tokio::test]
async fn a_declared_length_over_the_limit_fails_early() {
    let s = Server::start(|_, _| Reply::ok(vec![b'x'; 2000])).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.max_body_bytes = 1000)
        .build();
    assert_eq!(
        f.fetch(Request::get(s.url("/"))).await,
        Err(FetchError::TooLarge(1000))
    );
    assert_eq!(f.stats().bytes_received, 0, "nothing of the body is read");
    assert_eq!(f.stats().retries, 0);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_cut_off() {
    let mut resp = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        resp.extend_from_slice(b"258\r\n");
        resp.extend_from_slice(&[b'y'; 600]);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    let raw = RawServer::start(resp).await;
    let base = format!("http://127.0.0.1:{}", raw.port);
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", base.clone())
        .limits(|l| l.max_body_bytes = 1000)
        .build();
    assert_eq!(
        f.fetch(Request::get(format!("{base}/"))).await,
        Err(FetchError::TooLarge(1000))
    );
    let ok = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", base.clone())
        .limits(|l| l.max_body_bytes = 2400)
        .build();
    assert_eq!(
        ok.fetch(Request::get(format!("{base}/")))
            .await
            .unwrap()
            .body
            .len(),
        2400
    );
}

#[tokio::test]
async fn fetch_many_keeps_order_and_bounds_concurrency_per_host() {
    let s = Server::start(|seen, _| Reply::ok(seen.path.clone()).delay(Duration::from_millis(40)))
        .await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.per_host_concurrency = 2)
        .build();
    let reqs: Vec<_> = (0..6)
        .map(|i| Request::get(s.url(&format!("/{i}"))))
        .collect();
    let out = f.fetch_many(reqs).await;
    let bodies: Vec<String> = out
        .into_iter()
        .map(|r| String::from_utf8(r.unwrap().body).unwrap())
        .collect();
    assert_eq!(bodies, ["/0", "/1", "/2", "/3", "/4", "/5"]);
    assert_eq!(s.max_in_flight(), 2);
}

#[tokio::test]
async fn fetch_many_reports_each_outcome_in_place() {
    let s = Server::start(|_, _| Reply::ok("ok")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let out = f
        .fetch_many(vec![
            Request::get(s.url("/a")),
            Request::get("https://nope.example.org/"),
            Request::get(s.url("/b")),
        ])
        .await;
    assert!(out[0].is_ok());
    assert!(matches!(out[1], Err(FetchError::Denied(_))));
    assert!(out[2].is_ok());
}

#[tokio::test]
async fn fetch_many_over_the_batch_limit_is_refused_whole() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.max_batch = 2)
        .build();
    let out = f
        .fetch_many((0..3).map(|_| Request::get(s.url("/"))).collect())
        .await;
    assert_eq!(out.len(), 3);
    for r in out {
        let Err(FetchError::Denied(m)) = r else {
            panic!("{r:?}")
        };
        assert!(m.contains("over the limit of 2"), "{m}");
    }
    assert!(s.seen().is_empty());
    assert_eq!(f.stats().denials, 3);
}

#[tokio::test]
async fn per_host_rate_spaces_requests() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.per_host_rate = Some(20.0))
        .build();
    let begin = Instant::now();
    let out = f
        .fetch_many((0..4).map(|_| Request::get(s.url("/"))).collect())
        .await;
    assert!(out.iter().all(Result::is_ok));
    // Four starts at 20/s: the last at least 150 ms after the first.
    assert!(
        begin.elapsed() >= Duration::from_millis(150),
        "{:?}",
        begin.elapsed()
    );
}

#[tokio::test]
async fn nonsense_limits_are_refused() {
    let m = manifest(&[], vec![]);
    let err = Setup::new(m.clone())
        .limits(|l| l.per_host_concurrency = 0)
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("per_host_concurrency"), "{err}");
    let err = Setup::new(m)
        .limits(|l| l.per_host_rate = Some(0.0))
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("per_host_rate"), "{err}");
}

#[tokio::test]
async fn stats_serialise_for_the_run_report() {
    let s = Server::start(|_, _| Reply::ok("abc")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    f.fetch(super::support::post(s.url("/"), "12345"))
        .await
        .unwrap();
    let _ = f.fetch(Request::get("https://nope.example.org/")).await;
    let v = serde_json::to_value(f.stats()).unwrap();
    let host = format!("127.0.0.1:{}", s.port);
    assert_eq!(v["requests"], 1);
    assert_eq!(v["bytes_sent"], 5);
    assert_eq!(v["bytes_received"], 3);
    assert_eq!(v["denials"], 1);
    assert_eq!(v["per_host"][host.as_str()], 1);
    assert_eq!(v["recent_denials"].as_array().unwrap().len(), 1);
    let default = serde_json::to_value(FetchStats::default()).unwrap();
    assert_eq!(default["retries"], 0);
}
