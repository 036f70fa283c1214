//! The OCI registry the install tests publish to: Debian's `docker-registry` (the CNCF
//! distribution registry), started by `cargo xtask test`, which passes its address in
//! [`ADDRESS_VAR`].

/// `127.0.0.1:<port>` of the test registry.
pub const ADDRESS_VAR: &str = "INFRAGRAPH_TEST_OCI_REGISTRY";

/// The registry `cargo xtask test` started; panics, saying so, when there is none.
pub fn address() -> String {
    std::env::var(ADDRESS_VAR).unwrap_or_else(|_| {
        panic!(
            "{ADDRESS_VAR} is not set: the install tests need the OCI registry that \
             `cargo xtask test` downloads and starts; run them with `cargo xtask test` \
             (e.g. `cargo xtask test -E 'test(registry)'`)"
        )
    })
}
