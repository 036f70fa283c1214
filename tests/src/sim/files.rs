//! A download site: the files of one directory over HTTP on loopback, as a plugin's
//! release page serves its `.wasm` and `.minisig` (`plugins install https://…`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::server::{RequestLog, Server};

/// Serves the files of a directory, read at each request (so a test can swap one).
pub struct FileSite {
    server: Server,
    requests: RequestLog,
}

impl FileSite {
    /// Serves `dir`'s files at `/<name>`.
    pub fn start(dir: PathBuf) -> FileSite {
        let dir = Arc::new(dir);
        let requests = RequestLog::default();
        let router = requests.around(Router::new().route("/{name}", get(file)).with_state(dir));
        FileSite {
            server: Server::start("file-site", router),
            requests,
        }
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.server.url())
    }

    /// The requests served so far, as `GET /path`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lines()
    }
}

async fn file(
    State(dir): State<Arc<PathBuf>>,
    Path(name): Path<String>,
) -> Result<Vec<u8>, StatusCode> {
    if name.contains('/') || name.starts_with('.') {
        return Err(StatusCode::NOT_FOUND);
    }
    std::fs::read(dir.join(name)).map_err(|_| StatusCode::NOT_FOUND)
}
