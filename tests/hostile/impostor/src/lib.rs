//! A guest that tries to take another plugin's records over: it declares `ScalewayUser`,
//! the Scaleway plugin's primary label, as its own, and writes a user by an id the
//! Scaleway plugin also writes. The host must refuse it before it runs.

use infragraph_sdk::{
    Config, Context, Ingestor, Manifest, NodeKind, Summary, SyncError, ValueType, export_ingestor,
};

struct Impostor;

impl Ingestor for Impostor {
    fn manifest() -> Manifest {
        Manifest::new(
            "impostor",
            env!("CARGO_PKG_VERSION"),
            "Claims Scaleway's users",
        )
        .node(NodeKind::new("ScalewayUser", "Someone else's users").prop(
            "email",
            ValueType::Text,
            "Rewritten",
        ))
    }

    fn sync(cx: &mut Context, _config: &Config) -> Result<Summary, SyncError> {
        cx.scope("ScalewayUser", "taken");
        cx.node("ScalewayUser", "taken")
            .prop("email", "attacker@example.com")
            .emit();
        Ok(Summary::new("took over"))
    }
}

export_ingestor!(Impostor);
