//! The Bolt server the tests write to: ArcadeDB with its Bolt plugin, started by
//! `cargo xtask test` (and `cargo xtask bench`), which passes where it listens in
//! [`URI_VAR`] and friends. Each test takes a database of its own
//! ([`fresh_database`]), created through ArcadeDB's HTTP server command, so tests run
//! in parallel without seeing each other's nodes. [`Proxy`] sits between a sink and the
//! server to drop connections mid-batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use infragraph_sink_neo4j::{Neo4jConfig, Neo4jSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `bolt://127.0.0.1:<port>` of the test server.
pub const URI_VAR: &str = "INFRAGRAPH_TEST_BOLT_URI";
/// `http://127.0.0.1:<port>` of its HTTP API, used to create databases.
pub const HTTP_VAR: &str = "INFRAGRAPH_TEST_BOLT_HTTP";
/// Its user.
pub const USER_VAR: &str = "INFRAGRAPH_TEST_BOLT_USER";
/// Its password.
pub const PASSWORD_VAR: &str = "INFRAGRAPH_TEST_BOLT_PASSWORD";

/// Where the test server listens, and as whom to connect.
#[derive(Debug, Clone)]
pub struct Server {
    /// Bolt URI.
    pub uri: String,
    /// HTTP API base URL.
    pub http: String,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the Bolt sink's tests need the ArcadeDB server that \
             `cargo xtask test` installs and starts; run them with `cargo xtask test` \
             (e.g. `cargo xtask test -E 'test(neo4j)'`)"
        )
    })
}

/// The server `cargo xtask test` started; panics, saying so, when there is none.
pub fn server() -> Server {
    Server {
        uri: var(URI_VAR),
        http: var(HTTP_VAR),
        user: var(USER_VAR),
        password: var(PASSWORD_VAR),
    }
}

/// Creates an empty database named after `hint` (and this process, and a counter) and
/// returns how to connect to it.
pub async fn fresh_database(hint: &str) -> Neo4jConfig {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let s = server();
    let name: String = format!(
        "t_{}_{}_{}",
        hint.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect::<String>(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    server_command(&format!("create database {name}")).await;
    Neo4jConfig {
        uri: s.uri,
        user: s.user,
        password: s.password,
        database: name,
    }
}

/// Drops a database [`fresh_database`] made, once a benchmark has measured it: the server
/// keeps every open database in its one heap, and runs after a few large ones slow down.
pub async fn drop_database(db: &Neo4jConfig) {
    server_command(&format!("drop database {}", db.database)).await;
}

/// Runs a server command (ArcadeDB's HTTP API) on the test server; panics, naming it,
/// when the server refuses.
async fn server_command(command: &str) {
    let s = server();
    let body = serde_json::json!({ "command": command }).to_string();
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/server", s.http))
        .basic_auth(&s.user, Some(&s.password))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{command} on {}: {e}", s.http));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{command}: {status} {text}");
}

/// A sink on a fresh database.
pub async fn sink(hint: &str) -> Neo4jSink {
    let config = fresh_database(hint).await;
    Neo4jSink::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
}

/// A plain driver on `db`, for what a sink does not show or does not do: counting copies
/// of a relationship, writing behind a sink's back, a hand-written baseline.
pub async fn driver(db: &Neo4jConfig) -> neo4rs::Graph {
    let config = neo4rs::ConfigBuilder::default()
        .uri(db.uri.as_str())
        .user(db.user.as_str())
        .password(db.password.as_str())
        .db(db.database.as_str())
        .build()
        .expect("a driver config");
    neo4rs::Graph::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
}

/// The `infragraph` flags that write to or read from `db`; its password goes in
/// `NEO4J_PASSWORD` (see [`cli_env`]).
pub fn cli_args(db: &Neo4jConfig) -> [&str; 6] {
    [
        "--neo4j",
        &db.uri,
        "--neo4j-user",
        &db.user,
        "--neo4j-database",
        &db.database,
    ]
}

/// The environment [`cli_args`] needs.
pub fn cli_env(db: &Neo4jConfig) -> (&'static str, &str) {
    ("NEO4J_PASSWORD", &db.password)
}

/// A TCP proxy in front of the Bolt server that can cut connections: once armed with
/// [`Proxy::cut`], each of the next `n` connections is dropped after it has sent
/// `after` bytes more to the server, i.e. in the middle of a batch.
pub struct Proxy {
    port: u16,
    cuts: Arc<AtomicUsize>,
    after: Arc<AtomicU64>,
    cut_done: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a loopback port and forwards to the test server.
    pub async fn start() -> Proxy {
        let upstream = server()
            .uri
            .rsplit("//")
            .next()
            .expect("a bolt URI has a host")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let after = Arc::new(AtomicU64::new(0));
        let cut_done = Arc::new(AtomicUsize::new(0));
        let (c, a, d) = (cuts.clone(), after.clone(), cut_done.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (c, a, d) = (c.clone(), a.clone(), d.clone());
                tokio::spawn(forward(client, server, c, a, d));
            }
        });
        Proxy {
            port,
            cuts,
            after,
            cut_done,
            task,
        }
    }

    /// `bolt://127.0.0.1:<port>` of the proxy.
    pub fn uri(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.port)
    }

    /// Drops each of the next `n` connections (open or new) once it has sent `after`
    /// more bytes towards the server.
    pub fn cut(&self, n: usize, after: u64) {
        self.after.store(after, Ordering::SeqCst);
        self.cuts.store(n, Ordering::SeqCst);
    }

    /// How many connections were cut so far.
    pub fn cut_count(&self) -> usize {
        self.cut_done.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    cuts: Arc<AtomicUsize>,
    after: Arc<AtomicU64>,
    cut_done: Arc<AtomicUsize>,
) {
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        // Bytes sent since this connection was picked to be cut.
        let mut armed: Option<u64> = None;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if armed.is_none()
                && cuts
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
                    .is_ok()
            {
                armed = Some(0);
            }
            if let Some(sent) = armed.as_mut() {
                *sent += n as u64;
                if *sent > after.load(Ordering::SeqCst) {
                    // Half the batch reached the server; the rest never will.
                    let _ = sw.write_all(&buf[..n / 2]).await;
                    cut_done.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    // Whichever side ends first ends the connection: both sockets drop here.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
