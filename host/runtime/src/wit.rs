//! The contract versions this host speaks. Generated bindings stay inside this module:
//! the rest of the crate sees `infragraph_core` types.

pub(crate) mod since_v0_1_0;
pub(crate) mod since_v0_2_0;
pub(crate) mod since_v0_3_0;

use infragraph_core as core;
use wasmtime::component::{Component, Linker};

/// The WIT package every plugin is built against.
pub const CONTRACT_PACKAGE: &str = "infragraph:plugin";

/// Contract versions this host can run.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0", "0.3.0"];

/// A plugin instantiated under the contract it was built against. All share the 0.1.0
/// imports, which the linker holds once; only `provider` differs.
pub(crate) enum Provider {
    V0_1(since_v0_1_0::Ingestor),
    V0_2(since_v0_2_0::Ingestor),
    V0_3(since_v0_3_0::Ingestor),
}

/// How a sync ended as the plugin reports it: its summary, or the contract's error kind
/// and its text.
pub(crate) type Reported = Result<String, (&'static str, String)>;

impl Provider {
    /// Instantiates `component`, built against `contract` (one of [`SUPPORTED_CONTRACTS`]).
    pub(crate) async fn instantiate<T: Send>(
        contract: &str,
        store: &mut wasmtime::Store<T>,
        component: &Component,
        linker: &Linker<T>,
    ) -> wasmtime::Result<Provider> {
        Ok(match contract {
            "0.1.0" => Provider::V0_1(
                since_v0_1_0::Ingestor::instantiate_async(store, component, linker).await?,
            ),
            "0.2.0" => Provider::V0_2(
                since_v0_2_0::Ingestor::instantiate_async(store, component, linker).await?,
            ),
            _ => Provider::V0_3(
                since_v0_3_0::Ingestor::instantiate_async(store, component, linker).await?,
            ),
        })
    }

    /// Calls `manifest()`.
    pub(crate) async fn manifest<T: Send>(
        &self,
        store: &mut wasmtime::Store<T>,
    ) -> wasmtime::Result<core::Manifest> {
        Ok(match self {
            Provider::V0_1(p) => p
                .infragraph_plugin_provider()
                .call_manifest(store)
                .await?
                .into(),
            Provider::V0_2(p) => p
                .infragraph_plugin0_2_0_provider()
                .call_manifest(store)
                .await?
                .into(),
            Provider::V0_3(p) => p
                .infragraph_plugin0_3_0_provider()
                .call_manifest(store)
                .await?
                .into(),
        })
    }

    /// Calls `sync(config)`: `Err` when the guest trapped.
    pub(crate) async fn sync<T: Send>(
        &self,
        store: &mut wasmtime::Store<T>,
        config: &[(String, since_v0_1_0::types::ConfigValue)],
    ) -> wasmtime::Result<Reported> {
        Ok(match self {
            Provider::V0_1(p) => p
                .infragraph_plugin_provider()
                .call_sync(store, config)
                .await?
                .map(|s| s.message)
                .map_err(|e| {
                    let (kind, text) = e.parts();
                    (kind, text.to_string())
                }),
            Provider::V0_2(p) => p
                .infragraph_plugin0_2_0_provider()
                .call_sync(store, config)
                .await?
                .map(|s| s.message)
                .map_err(|e| {
                    let (kind, text) = e.parts();
                    (kind, text.to_string())
                }),
            Provider::V0_3(p) => p
                .infragraph_plugin0_3_0_provider()
                .call_sync(store, config)
                .await?
                .map(|s| s.message)
                .map_err(|e| {
                    let (kind, text) = e.parts();
                    (kind, text.to_string())
                }),
        })
    }
}

/// The interface a plugin exports, without its version.
const EXPORT: &str = "infragraph:plugin/provider";

/// Reads which contract version a component was built against from the name of the
/// interface it exports (`infragraph:plugin/provider@0.1.0`). `Err` describes what it
/// exports instead.
pub(crate) fn contract_version<'a>(
    exports: impl Iterator<Item = &'a str>,
) -> Result<String, String> {
    let mut seen = Vec::new();
    for name in exports {
        if let Some(version) = name.strip_prefix(EXPORT).and_then(|v| v.strip_prefix('@')) {
            return Ok(version.to_string());
        }
        seen.push(name.to_string());
    }
    // A contract that renamed its export still names its package version.
    let package = format!("{CONTRACT_PACKAGE}/");
    if let Some(version) = seen
        .iter()
        .find_map(|n| n.strip_prefix(&package)?.split_once('@'))
    {
        return Ok(version.1.to_string());
    }
    Err(if seen.is_empty() {
        format!("nothing (it exports no `{EXPORT}` interface)")
    } else {
        format!(
            "none (it exports {} instead of `{EXPORT}`)",
            seen.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_from_the_export_name() {
        let v = contract_version(
            ["wasi:cli/run@0.2.0", "infragraph:plugin/provider@0.0.9"].into_iter(),
        );
        assert_eq!(v.unwrap(), "0.0.9");
        let v = contract_version(["infragraph:plugin/ingestor@0.0.1"].into_iter());
        assert_eq!(
            v.unwrap(),
            "0.0.1",
            "an export renamed since still gives its version"
        );
        let e = contract_version(["wasi:cli/run@0.2.0"].into_iter()).unwrap_err();
        assert!(e.contains("wasi:cli/run@0.2.0"), "{e}");
    }
}
