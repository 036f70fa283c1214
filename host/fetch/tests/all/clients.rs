//! Fetchers sharing their HTTP clients (`Clients`): one plugin's runs reuse the TCP
//! connections its earlier runs left open; no other plugin's runs do.

use infragraph_fetch::{Clients, Request};

use crate::support::{RawServer, Setup, manifest};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// One request through each of ten fetchers, one after another, all given `clients`,
/// each for plugin `plugin(i)` and trusting `extra(i)` besides the server's name.
async fn ten_fetchers(
    raw: &RawServer,
    clients: &Clients,
    plugin: impl Fn(usize) -> String,
    extra: impl Fn(usize) -> Option<String>,
) {
    let base = format!("http://localhost:{}", raw.port);
    for i in 0..10 {
        let mut m = manifest(&[], vec![]);
        m.name = plugin(i);
        let mut setup = Setup::new(m)
            .endpoint("api_url", base.clone())
            .clients(clients);
        if let Some(other) = extra(i) {
            setup = setup.endpoint("other_url", other);
        }
        let r = setup
            .build()
            .fetch(Request::get(format!("{base}/{i}")))
            .await;
        assert_eq!(r.expect("answered").body, b"ok");
    }
}

#[tokio::test]
async fn runs_of_one_plugin_reuse_its_connections() {
    let raw = RawServer::keep_alive(OK.to_vec()).await;
    ten_fetchers(&raw, &Clients::new(), |_| "demo".into(), |_| None).await;
    // One in practice; fewer than ten proves a later fetcher took an earlier one's.
    assert!(raw.connections() < 10, "{} connections", raw.connections());
}

#[tokio::test]
async fn no_connection_is_shared_between_plugins_or_trusted_endpoints() {
    let raw = RawServer::keep_alive(OK.to_vec()).await;
    let clients = Clients::new();
    ten_fetchers(&raw, &clients, |i| format!("plugin{i}"), |_| None).await;
    assert_eq!(raw.connections(), 10, "a connection per plugin");
    // One plugin, each fetcher trusting another endpoint name besides the server's: its
    // resolver differs, so its client and connections do too.
    let raw = RawServer::keep_alive(OK.to_vec()).await;
    let other = |i| Some(format!("https://other{i}.example"));
    ten_fetchers(&raw, &clients, |_| "demo".into(), other).await;
    assert_eq!(
        raw.connections(),
        10,
        "a connection per set of trusted names"
    );
}

#[tokio::test]
async fn fetchers_with_their_own_clients_open_their_own_connections() {
    let raw = RawServer::keep_alive(OK.to_vec()).await;
    let base = format!("http://localhost:{}", raw.port);
    for i in 0..3 {
        let f = Setup::new(manifest(&[], vec![]))
            .endpoint("api_url", base.clone())
            .build();
        let r = f.fetch(Request::get(format!("{base}/{i}"))).await;
        assert_eq!(r.expect("answered").body, b"ok");
    }
    assert_eq!(raw.connections(), 3);
}
