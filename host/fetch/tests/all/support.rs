//! Loopback servers and fixtures shared by the tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request as HttpRequest, State};
use infragraph_core::{ConfigKey, ConfigType, Credential, CredentialUse, Manifest, Schema};
use infragraph_fetch::{Clients, FetchLimits, Fetcher, Grants, Method, Request, Secrets, Tape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok("")
        }
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).header("location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn status_code(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

struct Shared {
    seen: Mutex<Vec<Seen>>,
    handler: Box<Handler>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// An HTTP server on 127.0.0.1 answering every request with `handler(request, index)`,
/// where index counts the requests it has received, from 0.
pub struct Server {
    pub port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            seen: Mutex::new(Vec::new()),
            handler: Box::new(handler),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { port, shared, task }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn serve(State(shared): State<Arc<Shared>>, req: HttpRequest) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let reply = {
        let mut all = shared.seen.lock().unwrap();
        all.push(seen.clone());
        (shared.handler)(&seen, all.len() - 1)
    };
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(reply.delay).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut builder = axum::response::Response::builder().status(reply.status);
    for (n, v) in &reply.headers {
        builder = builder.header(n, v);
    }
    builder.body(Body::from(reply.body)).unwrap()
}

/// A TCP listener on 127.0.0.1 that writes `response` to every connection after reading
/// the request head, and counts connections: for answers axum will not give (a chunked
/// body with no length) and for proving that nothing connected.
pub struct RawServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    pub async fn start(response: Vec<u8>) -> RawServer {
        RawServer::serve(response, false).await
    }

    /// [`RawServer::start`], answering every request of a connection until the client
    /// closes it, as an HTTP/1.1 server keeping connections alive does.
    pub async fn keep_alive(response: Vec<u8>) -> RawServer {
        RawServer::serve(response, true).await
    }

    async fn serve(response: Vec<u8>, keep_alive: bool) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    loop {
                        // Requests without a body: each ends with its head.
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        if sock.write_all(&response).await.is_err() || !keep_alive {
                            break;
                        }
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        RawServer {
            port,
            connections,
            task,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn key(name: &str, ty: ConfigType, env: Option<&str>) -> ConfigKey {
    ConfigKey {
        name: name.into(),
        description: String::new(),
        ty,
        env: env.map(Into::into),
        required: false,
        default: None,
    }
}

/// Plugin "demo": the given HTTPS hosts and credentials, endpoint keys `api_url` and
/// `other_url`, and text keys `user` and `region`.
pub fn manifest(hosts: &[&str], credentials: Vec<Credential>) -> Manifest {
    Manifest {
        name: "demo".into(),
        version: "0.1.0".into(),
        description: String::new(),
        schema: Schema::default(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        credentials,
        config: vec![
            key("api_url", ConfigType::Endpoint, Some("DEMO_API_URL")),
            key("other_url", ConfigType::Endpoint, Some("DEMO_OTHER_URL")),
            key("user", ConfigType::Text, None),
            key("region", ConfigType::Text, Some("DEMO_REGION")),
        ],
    }
}

/// Credential `name`, set by `DEMO_<NAME>`.
pub fn cred(name: &str, use_: CredentialUse, hosts: &[&str]) -> Credential {
    Credential {
        name: name.into(),
        env: format!("DEMO_{}", name.to_uppercase()),
        description: String::new(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        use_,
        required: false,
        only_when: None,
    }
}

/// Defaults, with delays short enough for tests.
pub fn quick() -> FetchLimits {
    FetchLimits {
        request_timeout: Duration::from_secs(10),
        backoff_base: Duration::from_millis(1),
        retry_after_cap: Duration::from_millis(50),
        ..FetchLimits::default()
    }
}

pub struct Setup<'a> {
    pub manifest: Manifest,
    pub endpoints: Vec<(&'static str, String)>,
    pub secrets: Vec<(&'a str, &'a str)>,
    pub config: Vec<(&'a str, &'a str)>,
    pub limits: FetchLimits,
    pub tape: Tape,
    pub clients: Clients,
}

impl<'a> Setup<'a> {
    pub fn new(manifest: Manifest) -> Self {
        Setup {
            manifest,
            endpoints: Vec::new(),
            secrets: Vec::new(),
            config: Vec::new(),
            limits: quick(),
            tape: Tape::Live,
            clients: Clients::new(),
        }
    }

    pub fn endpoint(mut self, key: &'static str, url: String) -> Self {
        self.endpoints.push((key, url));
        self
    }

    pub fn secret(mut self, name: &'a str, value: &'a str) -> Self {
        self.secrets.push((name, value));
        self
    }

    pub fn config(mut self, key: &'a str, value: &'a str) -> Self {
        self.config.push((key, value));
        self
    }

    pub fn tape(mut self, tape: Tape) -> Self {
        self.tape = tape;
        self
    }

    /// Takes its HTTP client from `clients`, as the other fetchers given them do.
    pub fn clients(mut self, clients: &Clients) -> Self {
        self.clients = clients.clone();
        self
    }

    pub fn limits(mut self, f: impl FnOnce(&mut FetchLimits)) -> Self {
        f(&mut self.limits);
        self
    }

    pub fn try_build(self) -> Result<Fetcher, infragraph_fetch::SetupError> {
        let endpoints: Vec<(String, String)> = self
            .endpoints
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let grants = Grants::new(&self.manifest, &endpoints)?;
        let mut secrets = Secrets::new();
        for (name, value) in &self.secrets {
            secrets
                .insert(name, value.to_string())
                .expect("test secrets are long enough");
        }
        let config: Vec<(String, String)> = self
            .config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Fetcher::with_tape(
            grants,
            secrets,
            &config,
            self.limits,
            self.tape,
            &self.clients,
        )
    }

    pub fn build(self) -> Fetcher {
        self.try_build().unwrap()
    }
}

pub fn post(url: impl Into<String>, body: &str) -> Request {
    Request {
        method: Method::Post,
        url: url.into(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

/// The text of a `Denied`, failing the test on anything else.
pub fn denied<T: std::fmt::Debug>(r: Result<T, infragraph_fetch::FetchError>) -> String {
    match r {
        Err(infragraph_fetch::FetchError::Denied(m)) => m,
        other => panic!("expected Denied, got {other:?}"),
    }
}
