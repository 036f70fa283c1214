//! Capturing the host's log in a test, to assert on what an operator would read.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Log lines written while the guard lives (on this thread).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Box<dyn Write + 'a>;
    fn make_writer(&'a self) -> Self::Writer {
        Box::new(Writer(self.0.clone()))
    }
}

/// Captures every log event at TRACE and above on the current thread until the guard is
/// dropped, but for what the runtime's [`LOG_DIRECTIVES`] quiet, as the binary does. Use
/// with a current-thread tokio runtime so the plugin's calls log here.
///
/// [`LOG_DIRECTIVES`]: infragraph_runtime::LOG_DIRECTIVES
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let mut filter = tracing_subscriber::EnvFilter::new("trace");
    for directive in infragraph_runtime::LOG_DIRECTIVES {
        filter = filter.add_directive(directive.parse().expect("the runtime's directives parse"));
    }
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}
