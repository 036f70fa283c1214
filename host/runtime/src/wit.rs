//! The contract versions this host speaks. Generated bindings stay inside this module:
//! the rest of the crate sees `infragraph_core` types.

pub(crate) mod since_v0_1_0;

/// The WIT package every plugin is built against.
pub const CONTRACT_PACKAGE: &str = "infragraph:plugin";

/// Contract versions this host can run.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0"];

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
