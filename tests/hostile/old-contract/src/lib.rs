//! A guest built against contract 0.0.9, older than any the host supports: the host must
//! refuse it by the version in its exported interface name, before instantiating it.
//! It uses wit-bindgen directly because the SDK only speaks the current contract.

wit_bindgen::generate!({
    inline: "
        package infragraph:plugin@0.0.9;

        interface ingestor {
            manifest: func() -> string;
            sync: func() -> result<string, string>;
        }

        world plugin {
            export ingestor;
        }
    ",
    world: "plugin",
});

use exports::infragraph::plugin::ingestor::Guest;

struct OldContract;

impl Guest for OldContract {
    fn manifest() -> String {
        r#"{"name":"old-contract","version":"0.0.9"}"#.to_owned()
    }

    fn sync() -> Result<String, String> {
        Ok("synced with contract 0.0.9".to_owned())
    }
}

export!(OldContract);
