//! Placeholders, host-added auth, and redaction.

use infragraph_core::CredentialUse;
use infragraph_fetch::{Method, Request};

use crate::support::{Reply, Server, Setup, cred, denied, manifest, post};

const TOKEN: &str = "tok-3f9a7c21";

#[tokio::test]
async fn header_placeholder_is_substituted_verbatim_for_a_granted_host() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("token", TOKEN)
        .build();
    let req = Request::get(s.url("/"))
        .header("X-Auth-Token", "{secret:token}")
        .header("X-Pair", "a={secret:token};b");
    assert_eq!(f.fetch(req).await.unwrap().status, 200);
    let seen = &s.seen()[0];
    assert_eq!(seen.header("x-auth-token"), Some(TOKEN));
    assert_eq!(seen.header("x-pair"), Some(format!("a={TOKEN};b").as_str()));
}

#[tokio::test]
async fn placeholder_for_a_host_the_credential_is_not_granted_is_denied() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["api.example.com"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("token", TOKEN)
        .build();
    let why = denied(
        f.fetch(Request::get(s.url("/")).header("X-Auth-Token", "{secret:token}"))
            .await,
    );
    assert!(
        why.contains("may be sent only to [api.example.com]"),
        "{why}"
    );
    assert!(!why.contains(TOKEN));
    assert!(
        s.seen().is_empty(),
        "neither the value nor the placeholder may be sent"
    );
}

#[tokio::test]
async fn placeholders_outside_their_use_are_denied() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let granted = ["{config:api_url}"];
    let m = manifest(
        &[],
        vec![
            cred("hdr", CredentialUse::Header, &granted),
            cred("json", CredentialUse::JsonBody, &granted),
            cred("bearer", CredentialUse::Bearer, &granted),
        ],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("hdr", "v1")
        .secret("json", "v2")
        .secret("bearer", "v3")
        .build();
    let url = s.url("/");
    let cases = [
        (
            post(&url, "{\"k\":\"{secret:hdr}\"}"),
            "only in header values",
        ),
        (
            Request::get(&url).header("X-Key", "{secret:json}"),
            "only inside a JSON string",
        ),
        (
            Request::get(&url).header("X-Key", "{secret:bearer}"),
            "the host adds it as the Authorization header",
        ),
        (
            Request::get(&url).header("X-Key", "{secret:nope}"),
            "names no credential of the manifest",
        ),
        (
            Request::get(&url).header("X-{secret:hdr}", "1"),
            "placeholders go in header values",
        ),
        (
            Request::get(format!("{url}?key={{secret:hdr}}")),
            "not substituted in URLs",
        ),
        (
            Request::get(format!("{url}%7Bsecret:hdr%7D")),
            "not substituted in URLs",
        ),
        (
            Request::get(&url).header("X-Key", "{secret:hdr"),
            "no closing",
        ),
    ];
    for (req, want) in cases {
        let why = denied(f.fetch(req).await);
        assert!(why.contains(want), "{want:?} missing from {why}");
    }
    assert!(s.seen().is_empty());
}

#[tokio::test]
async fn an_unset_credential_names_its_env_var() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let f = Setup::new(m).endpoint("api_url", s.base()).build();
    let why = denied(
        f.fetch(Request::get(s.url("/")).header("X-Auth-Token", "{secret:token}"))
            .await,
    );
    assert!(
        why.contains("set the environment variable DEMO_TOKEN"),
        "{why}"
    );
    assert!(s.seen().is_empty());
}

#[tokio::test]
async fn json_body_credentials_are_json_escaped() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let value = "pa\"ss\\wo\nrd";
    let m = manifest(
        &[],
        vec![cred(
            "api_secret",
            CredentialUse::JsonBody,
            &["{config:api_url}"],
        )],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("api_secret", value)
        .build();
    let body = r#"{"query":"mutation($s: String!) { apiKeyUser(secret: $s) { jwt } }","variables":{"s":"{secret:api_secret}"}}"#;
    f.fetch(post(s.url("/graphql"), body)).await.unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&s.seen()[0].body).unwrap();
    assert_eq!(sent["variables"]["s"], value);
    assert_eq!(f.stats().bytes_sent, s.seen()[0].body.len() as u64);
}

#[tokio::test]
async fn form_body_credentials_are_percent_encoded() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred(
            "client_secret",
            CredentialUse::FormBody,
            &["{config:api_url}"],
        )],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("client_secret", "a b&c=d+é")
        .build();
    let mut req = post(
        s.url("/token"),
        "grant_type=client_credentials&client_secret={secret:client_secret}",
    );
    req.headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    f.fetch(req).await.unwrap();
    let body = String::from_utf8(s.seen()[0].body.clone()).unwrap();
    assert_eq!(
        body,
        "grant_type=client_credentials&client_secret=a+b%26c%3Dd%2B%C3%A9"
    );
}

#[tokio::test]
async fn bearer_is_added_only_to_granted_hosts() {
    let a = Server::start(|_, _| Reply::ok("")).await;
    let b = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred("jwt", CredentialUse::Bearer, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", a.base())
        .endpoint("other_url", b.base())
        .secret("jwt", TOKEN)
        .build();
    f.fetch(Request::get(a.url("/"))).await.unwrap();
    f.fetch(Request::get(b.url("/"))).await.unwrap();
    assert_eq!(
        a.seen()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(b.seen()[0].header("authorization"), None);
}

#[tokio::test]
async fn the_hosts_credential_replaces_a_guest_authorization() {
    let s = Server::start(|_, _| Reply::ok("")).await;
    let m = manifest(
        &[],
        vec![cred("jwt", CredentialUse::Bearer, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("jwt", TOKEN)
        .build();
    f.fetch(Request::get(s.url("/")).header("Authorization", "Bearer guest"))
        .await
        .unwrap();
    let seen = &s.seen()[0];
    let auths: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .collect();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].1, format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn basic_auth_takes_its_user_from_config_and_is_redacted() {
    // The server echoes the Authorization header it got.
    let s = Server::start(|seen, _| {
        let auth = seen.header("authorization").unwrap_or("").to_owned();
        Reply::ok(format!("you sent {auth}")).header("x-echo", &auth)
    })
    .await;
    let m = manifest(
        &[],
        vec![cred(
            "password",
            CredentialUse::Basic("user".into()),
            &["{config:api_url}"],
        )],
    );
    let f = Setup::new(m.clone())
        .endpoint("api_url", s.base())
        .secret("password", "open sesame")
        .config("user", "alice")
        .build();
    let r = f.fetch(Request::get(s.url("/_api/cursor"))).await.unwrap();
    // base64("alice:open sesame")
    assert_eq!(
        s.seen()[0].header("authorization"),
        Some("Basic YWxpY2U6b3BlbiBzZXNhbWU=")
    );
    assert_eq!(r.body, b"you sent Basic {secret:password}");
    assert_eq!(r.header("x-echo"), Some("Basic {secret:password}"));

    let err = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("password", "pw")
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("config key \"user\""), "{err}");
}

#[tokio::test]
async fn echoed_secrets_are_redacted_from_responses() {
    let s = Server::start(|seen, _| {
        let token = seen.header("x-auth-token").unwrap_or("").to_owned();
        let json = serde_json::json!({ "token": token, "n": 1 }).to_string();
        Reply::ok(json).header("x-token", &token)
    })
    .await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("token", TOKEN)
        .build();
    let r = f
        .fetch(Request::get(s.url("/")).header("X-Auth-Token", "{secret:token}"))
        .await
        .unwrap();
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(body, r#"{"n":1,"token":"{secret:token}"}"#);
    assert_eq!(r.header("x-token"), Some("{secret:token}"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(
        f.redact(&format!("error: {TOKEN} refused")),
        "error: {secret:token} refused"
    );
}

#[tokio::test]
async fn debug_output_names_secrets_but_never_shows_them() {
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["api.example.com"])],
    );
    let f = Setup::new(m).secret("token", TOKEN).build();
    let dbg = format!("{f:?}");
    assert!(dbg.contains("token"), "{dbg}");
    assert!(!dbg.contains(TOKEN), "{dbg}");
}

#[tokio::test]
async fn head_requests_carry_credentials_and_get_no_body() {
    let s = Server::start(|_, _| Reply::ok("ignored")).await;
    let m = manifest(
        &[],
        vec![cred("token", CredentialUse::Header, &["{config:api_url}"])],
    );
    let f = Setup::new(m)
        .endpoint("api_url", s.base())
        .secret("token", TOKEN)
        .build();
    let mut req = Request::get(s.url("/")).header("X-Auth-Token", "{secret:token}");
    req.method = Method::Head;
    let r = f.fetch(req).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(s.seen()[0].method, "HEAD");
}
