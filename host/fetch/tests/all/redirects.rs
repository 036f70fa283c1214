//! Redirects: followed by the host, each hop checked as a new request.

use infragraph_core::CredentialUse;
use infragraph_fetch::{FetchError, Request};

use crate::support::{Reply, Server, Setup, cred, denied, manifest, post};

#[tokio::test]
async fn follows_a_relative_location() {
    let s = Server::start(|seen, _| match seen.path.as_str() {
        "/a/start" => Reply::redirect(302, "next?x=1"),
        _ => Reply::ok("done"),
    })
    .await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let r = f.fetch(Request::get(s.url("/a/start"))).await.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, b"done".as_slice()));
    let paths: Vec<_> = s.seen().into_iter().map(|x| x.path).collect();
    assert_eq!(paths, ["/a/start", "/a/next?x=1"]);
    assert_eq!(f.stats().requests, 2);
}

#[tokio::test]
async fn see_other_becomes_a_get_without_body() {
    let s = Server::start(|seen, _| match seen.path.as_str() {
        "/submit" => Reply::redirect(303, "/result"),
        _ => Reply::ok("ok"),
    })
    .await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let mut req = post(s.url("/submit"), "{\"a\":1}");
    req.headers
        .push(("Content-Type".into(), "application/json".into()));
    f.fetch(req).await.unwrap();
    let seen = s.seen();
    assert_eq!(seen[1].method, "GET");
    assert!(seen[1].body.is_empty());
    assert_eq!(seen[1].header("content-type"), None);
}

#[tokio::test]
async fn temporary_redirect_keeps_method_and_body() {
    let s = Server::start(|seen, _| match seen.path.as_str() {
        "/old" => Reply::redirect(307, "/new"),
        _ => Reply::ok("ok"),
    })
    .await;
    let m = manifest(
        &[],
        vec![cred("key", CredentialUse::JsonBody, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("key", "key-0001")
        .build();
    f.fetch(post(s.url("/old"), "{\"key\":\"{secret:key}\"}"))
        .await
        .unwrap();
    let seen = s.seen();
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].path, "/new");
    assert_eq!(seen[1].body, b"{\"key\":\"key-0001\"}");
}

#[tokio::test]
async fn a_granted_host_cannot_redirect_to_one_not_granted() {
    let s = Server::start(|_, _| Reply::redirect(302, "https://evil.example.org/collect")).await;
    let f = Setup::new(manifest(&["api.example.com"], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let why = denied(
        f.fetch(Request::get(s.url("/")).header("X-Note", "hi"))
            .await,
    );
    assert!(why.contains("redirect from"), "{why}");
    assert!(why.contains("https://evil.example.org/collect"), "{why}");
    assert!(why.contains("not in the manifest's hosts"), "{why}");
    assert_eq!(f.stats().requests, 1, "only the first hop was sent");
}

#[tokio::test]
async fn redirects_to_metadata_addresses_are_refused_before_connecting() {
    let s = Server::start(|seen, _| match seen.path.as_str() {
        "/http" => Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"),
        _ => Reply::redirect(301, "https://169.254.169.254/latest/meta-data/"),
    })
    .await;
    // Even a manifest that lists the address does not make it reachable.
    let f = Setup::new(manifest(&["169.254.169.254"], vec![]))
        .endpoint("api_url", s.base())
        .build();
    let why = denied(f.fetch(Request::get(s.url("/http"))).await);
    assert!(why.contains("169.254.169.254"), "{why}");
    let why = denied(f.fetch(Request::get(s.url("/https"))).await);
    assert!(why.contains("cloud metadata"), "{why}");
    assert_eq!(
        f.stats().requests,
        2,
        "only the hops to the test server were sent"
    );
}

#[tokio::test]
async fn a_placeholder_is_not_carried_to_a_hop_its_credential_is_not_granted() {
    let b = Server::start(|_, _| Reply::ok("b")).await;
    let to_b = b.url("/landing");
    let a = Server::start(move |_, _| Reply::redirect(307, &to_b)).await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", a.base())
        .endpoint("other_url", b.base())
        .secret("token", "token-0009")
        .build();
    let why = denied(
        f.fetch(Request::get(a.url("/")).header("X-Auth-Token", "{secret:token}"))
            .await,
    );
    assert!(why.contains("redirect from"), "{why}");
    assert!(
        why.contains("credential \"token\" may be sent only to"),
        "{why}"
    );
    assert_eq!(a.seen()[0].header("x-auth-token"), Some("token-0009"));
    assert!(b.seen().is_empty());
}

#[tokio::test]
async fn host_added_auth_is_dropped_on_a_hop_it_is_not_granted() {
    let b = Server::start(|_, _| Reply::ok("b")).await;
    let to_b = b.url("/landing");
    let a = Server::start(move |_, _| Reply::redirect(302, &to_b)).await;
    let m = manifest(
        &[],
        vec![cred("jwt", CredentialUse::Bearer, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", a.base())
        .endpoint("other_url", b.base())
        .secret("jwt", "jwt-00001")
        .build();
    let r = f.fetch(Request::get(a.url("/"))).await.unwrap();
    assert_eq!(r.body, b"b");
    assert_eq!(
        a.seen()[0].header("authorization"),
        Some("Bearer jwt-00001")
    );
    assert_eq!(b.seen()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit() {
    let s = Server::start(|_, _| Reply::redirect(302, "/loop")).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .limits(|l| l.max_redirects = 3)
        .build();
    match f.fetch(Request::get(s.url("/loop"))).await {
        Err(FetchError::Network(m)) => assert!(m.contains("more than 3"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().requests, 4);
}

#[tokio::test]
async fn a_redirect_without_location_is_a_response() {
    let s = Server::start(|_, _| Reply::status(302)).await;
    let f = Setup::new(manifest(&[], vec![]))
        .endpoint("api_url", s.base())
        .build();
    assert_eq!(f.fetch(Request::get(s.url("/"))).await.unwrap().status, 302);
}
