//! The allow-list and the address checks.

use infragraph_fetch::Request;

use crate::support::{RawServer, Reply, Server, Setup, denied, manifest};

#[tokio::test]
async fn gets_from_an_operator_endpoint() {
    let s = Server::start(|_, _| Reply::ok("hello").header("X-Thing", "1")).await;
    let f = Setup::new(manifest(&["api.example.com"], vec![]))
        .endpoint("api_url", s.url("/v1"))
        .build();
    let r = f
        .fetch(Request::get(s.url("/v2/items?page=2")))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("x-thing"), Some("1"));
    assert!(
        r.headers.iter().all(|(n, _)| *n == n.to_lowercase()),
        "{:?}",
        r.headers
    );
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v2/items?page=2");
    assert_eq!(
        seen[0].header("user-agent"),
        Some(concat!("infragraph/", env!("CARGO_PKG_VERSION")))
    );
    let stats = f.stats();
    assert_eq!(
        (stats.requests, stats.responses, stats.bytes_received),
        (1, 1, 5)
    );
    assert_eq!(
        stats.per_host.get(&format!("127.0.0.1:{}", s.port)),
        Some(&1)
    );
}

#[tokio::test]
async fn refuses_a_host_outside_the_manifest_saying_what_would_grant_it() {
    let f = Setup::new(manifest(&["api.example.com"], vec![])).build();
    let why = denied(
        f.fetch(Request::get("https://evil.example.org/steal"))
            .await,
    );
    for part in [
        "plugin \"demo\"",
        "https://evil.example.org/steal",
        "not in the manifest's hosts [api.example.com]",
        "config key of type endpoint",
        "api_url=<base URL>",
        "do not grant it",
    ] {
        assert!(why.contains(part), "{part:?} missing from {why}");
    }
    // Never the host the plugin tried as the value to set (issue 19, point 4).
    assert!(!why.contains("api_url=https://evil"), "{why}");
    let stats = f.stats();
    assert_eq!(stats.requests, 0);
    assert_eq!(stats.denials, 1);
    assert_eq!(stats.recent_denials, vec![why]);
}

#[tokio::test]
async fn refuses_special_ip_literals_before_connecting() {
    let hosts = [
        "169.254.169.254",
        "10.0.0.1",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "[::ffff:10.0.0.1]",
        "192.168.1.1",
    ];
    let f = Setup::new(manifest(&hosts, vec![])).build();
    for (host, why) in [
        ("169.254.169.254", "cloud metadata"),
        ("10.0.0.1", "private"),
        ("[fd00:ec2::254]", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:a00:1]", "private"),
        ("192.168.1.1", "private"),
    ] {
        let msg = denied(
            f.fetch(Request::get(format!("https://{host}/latest/meta-data/")))
                .await,
        );
        assert!(msg.contains(why), "{host}: {msg}");
    }
    // The proof that nothing was sent: no attempt was ever counted.
    assert_eq!(f.stats().requests, 0);
}

#[tokio::test]
async fn refuses_a_manifest_name_that_resolves_to_loopback() {
    let raw = RawServer::start(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
    let f = Setup::new(manifest(&[&format!("localhost:{}", raw.port)], vec![])).build();
    let why = denied(
        f.fetch(Request::get(format!("https://localhost:{}/", raw.port)))
            .await,
    );
    assert!(why.contains("localhost resolves to"), "{why}");
    assert!(why.contains("loopback"), "{why}");
    assert!(
        why.contains("api_url="),
        "the hint says how to allow it: {why}"
    );
    assert_eq!(
        raw.connections(),
        0,
        "the resolver must refuse before connecting"
    );
    assert_eq!(f.stats().retries, 0);
}

#[tokio::test]
async fn operator_endpoint_names_resolve_unfiltered() {
    let s = Server::start(|_, _| Reply::ok("local")).await;
    let base = format!("http://localhost:{}", s.port);
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", base.clone())
        .build();
    let r = f.fetch(Request::get(format!("{base}/x"))).await.unwrap();
    assert_eq!(r.body, b"local");
}

#[tokio::test]
async fn refuses_plain_http_to_a_manifest_host() {
    let f = Setup::new(manifest(&["api.example.com"], vec![])).build();
    let why = denied(f.fetch(Request::get("http://api.example.com/")).await);
    assert!(why.contains("plain http"), "{why}");
    assert_eq!(f.stats().requests, 0);
}

#[tokio::test]
async fn refuses_user_info_in_urls() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let why = denied(
        f.fetch(Request::get(format!(
            "http://user:pw@127.0.0.1:{}/",
            s.port
        )))
        .await,
    );
    assert!(why.contains("user info"), "{why}");
    assert!(s.seen().is_empty());
}

#[tokio::test]
async fn refuses_urls_that_do_not_parse() {
    let f = Setup::new(manifest(&[], vec![])).build();
    let why = denied(f.fetch(Request::get("/relative/path")).await);
    assert!(why.contains("not an absolute URL"), "{why}");
}

#[tokio::test]
async fn refuses_headers_the_host_owns() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    for name in ["Host", "Content-Length", "Transfer-Encoding"] {
        let why = denied(f.fetch(Request::get(s.url("/")).header(name, "1")).await);
        assert!(why.contains("set by the host"), "{why}");
    }
    assert!(s.seen().is_empty());
}
