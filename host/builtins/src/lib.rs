//! The built-in provider plugins, embedded in the binary when it is built (see
//! `build.rs`), so that a binary copied anywhere syncs every built-in provider with no
//! other file.

/// A plugin the binary carries.
pub struct Builtin {
    /// Its name, as its manifest says and its file is called (`<name>.wasm`).
    pub name: &'static str,
    /// Its crate's version.
    pub version: &'static str,
    /// The component's sha256, hex.
    pub sha256: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_is_embedded_as_a_component() {
        let names: Vec<&str> = PLUGINS.iter().map(|p| p.name).collect();
        for expected in ["azure", "critical", "scaleway", "spacelift"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for p in PLUGINS {
            // A component's preamble: the wasm magic, then version 0x0d and layer 1.
            assert_eq!(
                &p.wasm[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is not a component",
                p.name
            );
            assert_eq!(p.sha256.len(), 64);
            assert!(!p.version.is_empty(), "{} has no version", p.name);
        }
        assert_eq!(DIGEST.len(), 16);
    }
}
