//! A guest built against contract 0.0.9, older than any the host supports: the host must
//! refuse it by the version in its exported interface name, before instantiating it.
//! It uses wit-bindgen directly because the SDK only speaks the current contract.

wit_bindgen::generate!({
    inline: "
        package infragraph:plugin@0.0.9;

        interface provider {
            manifest: func() -> string;
            sync: func() -> result<string, string>;
        }

        world ingestor {
            export provider;
        }
    ",
    world: "ingestor",
});

use exports::infragraph::plugin::provider::Guest;

struct OldContract;

impl Guest for OldContract {
    fn manifest() -> String {
        r#"{"name":"old-contract","version":"0.0.9"}"#.to_owned()
    }

    fn sync() -> Result<String, String> {
        Ok("synced with contract 0.0.9".to_owned())
    }
}

// Export names such as `infragraph:plugin/provider@0.0.9#sync` break a native linker's
// version script; only the component needs them.
#[cfg(target_arch = "wasm32")]
export!(OldContract);

// Natively, keep the impl live so it is checked without dead-code noise.
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    let _ = (
        <OldContract as Guest>::manifest,
        <OldContract as Guest>::sync,
    );
};
