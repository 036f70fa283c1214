use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

/// An axum router served on a loopback port by a runtime of its own on a thread of its
/// own: a test that blocks its runtime on a guest's fetch must not starve the server the
/// guest is fetching from.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(name: &str, router: Router) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: cannot bind a loopback port: {e}"));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        listener
            .set_nonblocking(true)
            .expect("tokio needs a non-blocking listener");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the listener was made non-blocking");
                    tokio::select! {
                        served = axum::serve(listener, router) => {
                            served.expect("the simulator's accept loop failed");
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels requests still in flight, such as a
                // `/slow` one, instead of waiting for them.
            })
            .unwrap_or_else(|e| panic!("{name}: cannot spawn its thread: {e}"));
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already printed; do not panic in drop.
            let _ = thread.join();
        }
    }
}

/// Every request a simulator received, counted and logged as `METHOD /path?query` in
/// order of arrival, so tests can assert on what a plugin asked for. One middleware
/// ([`RequestLog::around`]) records them for every simulator, before its own layers
/// (authentication, injected faults) answer.
#[derive(Default, Clone)]
pub(crate) struct RequestLog(std::sync::Arc<Entries>);

#[derive(Default)]
struct Entries {
    count: std::sync::atomic::AtomicU64,
    lines: std::sync::Mutex<Vec<String>>,
}

impl RequestLog {
    /// `router` with every request it receives recorded here first.
    pub(crate) fn around(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), record))
    }

    /// Records one request.
    fn record(&self, request: &axum::extract::Request) {
        self.0
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let line = format!("{} {}", request.method(), request.uri());
        self.0
            .lines
            .lock()
            .expect("no handler panics holding the lock")
            .push(line);
    }

    /// Requests so far.
    pub(crate) fn total(&self) -> u64 {
        self.0.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Their lines, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .lines
            .lock()
            .expect("no handler panics holding the lock")
            .clone()
    }
}

async fn record(
    axum::extract::State(log): axum::extract::State<RequestLog>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    log.record(&request);
    next.run(request).await
}
