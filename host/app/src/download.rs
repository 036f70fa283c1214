//! Fetching a plugin (or its signature) from a URL, for `plugins install https://…`.
//!
//! HTTPS everywhere, redirects included; plain HTTP only from this machine (a local
//! mirror, a test). What is fetched is bounded in size, so a hostile server cannot fill
//! the host's memory, and its integrity rests on the signature, not on the transport.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::Error;

fn trust(what: impl Into<String>) -> Error {
    Error::Trust(what.into())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A client for fetching from `url`: HTTPS only, unless `url` is on this machine.
pub(crate) fn client(url: &str) -> Result<reqwest::Client, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| trust(format!("{url}: not a URL: {e}")))?;
    let local = is_loopback(&parsed);
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err(trust(format!(
            "{url}: plugins are fetched over https (plain http only from this machine)"
        )));
    }
    reqwest::Client::builder()
        .https_only(!local)
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| trust(format!("an HTTP client: {e}")))
}

/// The body at `url`, at most `max` bytes; `None` on HTTP 404.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, Error> {
    let fail = |e: reqwest::Error| trust(format!("{url}: {}", e.without_url()));
    let mut response = client.get(url).send().await.map_err(fail)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(trust(format!("{url}: the server answered HTTP {status}")));
    }
    let too_big = || trust(format!("{url}: larger than the {max}-byte limit"));
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fail)? {
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_unless_the_server_is_this_machine() {
        for ok in [
            "https://plugins.example.com/acme.wasm",
            "http://127.0.0.1:8080/acme.wasm",
            "http://localhost/acme.wasm",
            "http://[::1]:99/a.wasm",
        ] {
            assert!(client(ok).is_ok(), "{ok}");
        }
        for bad in ["http://plugins.example.com/acme.wasm", "ftp://x/a.wasm"] {
            let e = client(bad).unwrap_err().to_string();
            assert!(e.contains("over https"), "{bad}: {e}");
        }
    }
}
