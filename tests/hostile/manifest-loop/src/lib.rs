//! A guest whose `manifest()` spins forever (issue 20, point 5): the host must stop it at
//! the manifest's time limit, say so naming that phase, and still run every other plugin
//! of the same command. `manifest()` takes no input, so this cannot be a mode of
//! `misbehave`: it is a guest of its own.

use std::hint::black_box;

use infragraph_sdk::{Config, Context, Ingestor, Manifest, Summary, SyncError, export_ingestor};

struct ManifestLoop;

impl Ingestor for ManifestLoop {
    fn manifest() -> Manifest {
        let mut n = 0u64;
        loop {
            // black_box keeps the optimiser from proving the loop does nothing.
            n = black_box(n.wrapping_add(1));
        }
    }

    fn sync(_cx: &mut Context, _config: &Config) -> Result<Summary, SyncError> {
        Ok(Summary::new("never reached: the manifest never returns"))
    }
}

export_ingestor!(ManifestLoop);
