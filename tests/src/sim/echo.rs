use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Deserialize;

use super::server::Server;

/// How long `/slow` takes: longer than any per-request timeout a host should allow.
const SLOW: Duration = Duration::from_secs(30);

/// `/big` sends its body in chunks of this size, so a large body is never held whole.
const CHUNK: usize = 64 * 1024;

/// Generic endpoints on `127.0.0.1` for the sandbox tests:
///
/// - `/echo` (any method): the request's headers as a JSON object, names lower-case,
///   repeated headers joined with `", "`.
/// - `/echo/body` (any method): the request's body, verbatim (and kept: `seen_bodies`).
/// - `GET /reflect`: a hostile provider giving the `X-Token` header's value back in every
///   form [`reflections`] lists, in the body, as a header value and as a header name.
/// - `GET /reflect/reversed`: the `X-Token` header's value reversed, a form no host
///   scrubs: the plugin holding the grant gets the credential.
/// - `GET /redirect?to=URL`: `302 Found` to `URL`.
/// - `GET /slow`: answers `200` after 30 seconds.
/// - `GET /big?bytes=N`: `N` bytes of `x`, streamed with a `Content-Length`; add
///   `&chunked=true` to stream without one.
/// - `GET /status/{code}`: that status with a small JSON body; 429 and 503 carry
///   `Retry-After: 0`.
///
/// Any other path answers 404. Every request is counted by path, and every header value
/// received is kept, so a test can tell what a provider would have seen.
pub struct EchoSim {
    state: Arc<EchoState>,
    server: Server,
}

#[derive(Default)]
struct EchoState {
    total: AtomicU64,
    by_path: Mutex<HashMap<String, u64>>,
    /// Header name (lower-case) to every value received under it, in order.
    headers: Mutex<HashMap<String, Vec<String>>>,
    /// Bodies received on `/echo/body`, in order.
    bodies: Mutex<Vec<Vec<u8>>>,
}

impl EchoSim {
    /// Serves on a fresh loopback port. The server runs on a thread of its own whatever
    /// the caller's runtime; `async` only so that it reads like the async tests using it.
    pub async fn start() -> EchoSim {
        EchoSim::spawn()
    }

    fn spawn() -> EchoSim {
        let state = Arc::new(EchoState::default());
        let router = Router::new()
            .route("/echo", any(echo))
            .route("/echo/body", any(echo_body))
            .route("/reflect", get(reflect))
            .route("/reflect/reversed", get(reflect_reversed))
            .route("/redirect", get(redirect))
            .route("/slow", get(slow))
            .route("/big", get(big))
            .route("/status/{code}", get(status))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(middleware::from_fn_with_state(state.clone(), count))
            .with_state(state.clone());
        EchoSim {
            server: Server::start("echo-sim", router),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Requests received for `path` (e.g. `/echo`, without the query) so far.
    pub fn hits(&self, path: &str) -> u64 {
        let by_path = self
            .state
            .by_path
            .lock()
            .expect("no handler panics holding the lock");
        by_path.get(path).copied().unwrap_or(0)
    }

    /// Requests received so far, for any path.
    pub fn total_requests(&self) -> u64 {
        self.state.total.load(Ordering::SeqCst)
    }

    /// Every body received on `/echo/body`, in order.
    pub fn seen_bodies(&self) -> Vec<Vec<u8>> {
        self.state
            .bodies
            .lock()
            .expect("no handler panics holding the lock")
            .clone()
    }

    /// Every value received for header `name` (case-insensitive), on any path, in order.
    pub fn seen_header_values(&self, name: &str) -> Vec<String> {
        let headers = self
            .state
            .headers
            .lock()
            .expect("no handler panics holding the lock");
        headers
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

/// `secret` as a hostile provider may give it back, by name: upper- and lower-cased, hex in
/// either case, percent-encoded with lower-case escapes, and base64 in both alphabets,
/// padded or not, alone or inside a longer text at each byte alignment.
pub fn reflections(secret: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let within = |k: usize| {
        let mut raw = b"id:".to_vec()[..k].to_vec();
        raw.extend_from_slice(secret.as_bytes());
        raw.extend_from_slice(b":1");
        raw
    };
    let percent: String =
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .to_ascii_lowercase();
    vec![
        ("upper", secret.to_ascii_uppercase()),
        ("lower", secret.to_ascii_lowercase()),
        ("hex", hex::encode(secret)),
        ("hex_upper", hex::encode_upper(secret)),
        ("percent_lower", percent),
        ("base64", STANDARD.encode(secret)),
        ("base64_unpadded", STANDARD_NO_PAD.encode(secret)),
        ("base64url", URL_SAFE.encode(secret)),
        ("base64url_unpadded", URL_SAFE_NO_PAD.encode(secret)),
        ("base64_within_0", STANDARD.encode(within(0))),
        ("base64_within_1", STANDARD.encode(within(1))),
        ("base64_within_2", STANDARD.encode(within(2))),
        ("base64url_within_1", URL_SAFE_NO_PAD.encode(within(1))),
        ("base64url_within_2", URL_SAFE_NO_PAD.encode(within(2))),
    ]
}

async fn reflect(headers: HeaderMap) -> Response {
    let token = headers
        .get("x-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let body: BTreeMap<&str, String> = reflections(&token).into_iter().collect();
    let mut response = Json(body).into_response();
    let echoed = HeaderValue::from_str(&token.to_ascii_uppercase());
    let named = header::HeaderName::from_bytes(format!("x-echo-{token}").as_bytes());
    if let (Ok(value), Ok(name)) = (echoed, named) {
        response.headers_mut().insert("x-echo", value);
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static("1"));
    }
    response
}

async fn reflect_reversed(headers: HeaderMap) -> String {
    let token = headers.get("x-token").map(|v| v.as_bytes()).unwrap_or(b"");
    String::from_utf8_lossy(token).chars().rev().collect()
}

async fn count(State(state): State<Arc<EchoState>>, request: Request, next: Next) -> Response {
    state.total.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    {
        let mut by_path = state
            .by_path
            .lock()
            .expect("no handler panics holding the lock");
        *by_path.entry(path).or_default() += 1;
        let mut seen = state
            .headers
            .lock()
            .expect("no handler panics holding the lock");
        for (name, value) in request.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.entry(name.as_str().to_owned())
                .or_default()
                .push(value);
        }
    }
    next.run(request).await
}

async fn echo(headers: HeaderMap) -> Json<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    Json(out)
}

async fn echo_body(State(state): State<Arc<EchoState>>, body: Bytes) -> Bytes {
    state
        .bodies
        .lock()
        .expect("no handler panics holding the lock")
        .push(body.to_vec());
    body
}

#[derive(Deserialize)]
struct RedirectQuery {
    to: String,
}

async fn redirect(Query(q): Query<RedirectQuery>) -> Response {
    match HeaderValue::from_str(&q.to) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "`to` is not a valid header value").into_response(),
    }
}

async fn slow() -> &'static str {
    tokio::time::sleep(SLOW).await;
    "finally"
}

#[derive(Deserialize)]
struct BigQuery {
    bytes: u64,
    #[serde(default)]
    chunked: bool,
}

async fn big(Query(q): Query<BigQuery>) -> Response {
    static FILL: [u8; CHUNK] = [b'x'; CHUNK];
    let chunks = (0..q.bytes.div_ceil(CHUNK as u64)).map(move |i| {
        let len = (q.bytes - i * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok::<_, std::convert::Infallible>(Bytes::from_static(&FILL[..len]))
    });
    let mut response = Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    if !q.chunked {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, q.bytes.into());
    }
    response
}

async fn status(Path(code): Path<u16>) -> Response {
    let Some(status) = StatusCode::from_u16(code)
        .ok()
        .filter(|s| (200..600).contains(&s.as_u16()))
    else {
        return (StatusCode::BAD_REQUEST, "the status must be 200 to 599").into_response();
    };
    let mut response = (status, Json(serde_json::json!({ "status": code }))).into_response();
    if matches!(code, 429 | 503) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sim::client::{get, request};

    #[test]
    fn starts_from_async_code() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sim = runtime.block_on(EchoSim::start());
        assert_eq!(get(&format!("{}/status/204", sim.url()), &[]).status, 204);
    }

    #[test]
    fn echoes_headers_and_bodies() {
        let sim = EchoSim::spawn();
        let reply = get(
            &format!("{}/echo", sim.url()),
            &[("X-Token", "s3cret".into())],
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["x-token"], "s3cret");
        let reply = request("POST", &format!("{}/echo/body", sim.url()), &[], b"a=1&b=2");
        assert_eq!(reply.body, b"a=1&b=2");
        let counts = (
            sim.hits("/echo"),
            sim.hits("/echo/body"),
            sim.total_requests(),
        );
        assert_eq!(counts, (1, 1, 2));
        assert_eq!(sim.seen_header_values("X-TOKEN"), ["s3cret"]);
        assert!(sim.seen_header_values("x-other").is_empty());
    }

    #[test]
    fn redirects_and_statuses() {
        let sim = EchoSim::spawn();
        let to = "http://169.254.169.254/latest/meta-data/";
        let reply = get(&format!("{}/redirect?to={to}", sim.url()), &[]);
        assert_eq!((reply.status, reply.header("location")), (302, Some(to)));
        let reply = get(&format!("{}/status/503", sim.url()), &[]);
        assert_eq!(
            (reply.status, reply.header("retry-after")),
            (503, Some("0"))
        );
        let reply = get(&format!("{}/status/404", sim.url()), &[]);
        assert_eq!((reply.status, reply.header("retry-after")), (404, None));
        assert_eq!(get(&format!("{}/status/99", sim.url()), &[]).status, 400);
        assert_eq!(get(&format!("{}/nowhere", sim.url()), &[]).status, 404);
        assert_eq!(sim.hits("/status/503"), 1);
        assert_eq!(sim.hits("/nowhere"), 1);
    }

    #[test]
    fn big_bodies_with_and_without_a_length() {
        let sim = EchoSim::spawn();
        let n = 3 * CHUNK + 17;
        let reply = get(&format!("{}/big?bytes={n}", sim.url()), &[]);
        assert_eq!(reply.header("content-length"), Some(n.to_string().as_str()));
        assert_eq!(reply.body.len(), n);
        assert!(reply.body.iter().all(|&b| b == b'x'));
        let reply = get(&format!("{}/big?bytes={n}&chunked=true", sim.url()), &[]);
        assert_eq!(reply.header("content-length"), None);
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        assert_eq!(reply.body.len(), n);
        assert_eq!(
            get(&format!("{}/big?bytes=0", sim.url()), &[]).body.len(),
            0
        );
    }

    #[test]
    fn stops_at_once_with_a_slow_request_in_flight() {
        let sim = EchoSim::spawn();
        let url = format!("{}/slow", sim.url());
        let client = std::thread::spawn(move || crate::sim::client::try_get(&url));
        while sim.hits("/slow") == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        drop(sim);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "drop waited for /slow"
        );
        assert!(
            client.join().unwrap().is_err(),
            "the slow request was cut off"
        );
    }
}
