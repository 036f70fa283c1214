use crate::emission::Emission;
use crate::run_state::PluginState;
use crate::wit::since_v0_1_0::log;

/// Longer messages are cut: a log line is for a person.
const MAX_MESSAGE: usize = 4096;

impl log::Host for PluginState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = self.plugin.clone();
        let run = self.run("log")?;
        run.counts.log_lines += 1;
        if run.counts.log_lines > run.limits.log_lines {
            run.counts.log_lines_dropped += 1;
            return Ok(());
        }
        // Scrubbed before it is cut, so no piece of a secret is left at the cut.
        let message = run.fetcher.redact_capped(&message, MAX_MESSAGE);
        // A connection check stops the plugin at its first answer, and what the plugin
        // then says of every listing it could not finish is not news: the check's own
        // verdict says what was found. Its lines go to the debug log.
        if run.fetcher.is_check() {
            tracing::debug!(plugin = %plugin, "{message}");
            return Ok(());
        }
        match level {
            log::Level::Trace => tracing::trace!(plugin = %plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin = %plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin = %plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin = %plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin = %plugin, "{message}"),
        }
        Ok(())
    }

    async fn progress(
        &mut self,
        phase: String,
        done: u64,
        total: Option<u64>,
    ) -> wasmtime::Result<()> {
        let run = self.run("progress")?;
        run.out.advise(Emission::Progress { phase, done, total });
        Ok(())
    }
}
