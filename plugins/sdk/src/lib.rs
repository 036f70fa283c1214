//! The guest side of infragraph: what a provider plugin builds on instead of raw bindings.
//!
//! A plugin is a type implementing [`Ingestor`], exported with [`export_ingestor!`] from a
//! `cdylib` built for `wasm32-wasip2`. Its [`manifest`](Ingestor::manifest) declares, with
//! [`Manifest`], [`NodeKind`], [`EdgeKind`], [`Credential`] and [`ConfigKey`], what it
//! writes and what it needs; the host grants nothing else. Its [`sync`](Ingestor::sync)
//! reads the [`Config`], fetches through the [`Context`] ([`Request`], [`Response`], the
//! pagination helpers and [`Walker`]; a [`Session`] for tokens the plugin gets itself,
//! renewed and the refused requests resent by [`fetch_many_in`]) and emits nodes and
//! edges through it, which the SDK buffers and sends in batches.
//!
//! This crate is compiled into every plugin, so it depends on nothing but `wit-bindgen`
//! and serde; it never depends on host crates.
#![deny(missing_docs)]

mod config;
mod context;
mod emit;
mod error;
mod host;
mod http;
mod manifest;
mod paginate;
mod session;
pub mod testing;
mod value;
// Generated; reachable only through `__private`, which the export macro needs.
#[allow(missing_docs)]
mod wit;

pub use config::Config;
pub use context::{Context, EdgeBuilder, Level, NodeBuilder, NodeRef};
pub use error::{FetchError, StatusError, SyncError};
pub use http::{Method, Request, Response};
pub use manifest::{
    Access, ConfigKey, Credential, CredentialUse, EdgeKind, Manifest, NodeKind, ValueType,
};
pub use paginate::{
    Each, MAX_PAGES, Sink, Walker, cursor, each, fetch_all, for_each_concurrently, next_link,
    pages_with_total,
};
pub use session::{Resend, Session, fetch_in, fetch_many_in};
pub use value::{Prop, Value};

/// A provider ingestor. Implement it on a unit struct and export it with
/// [`export_ingestor!`].
pub trait Ingestor {
    /// What the plugin syncs and what it needs. Called before anything is granted, so it
    /// must not fetch, emit or log.
    fn manifest() -> Manifest;

    /// Lists the provider and emits what it found. When it returns `Ok`, the records still
    /// buffered are sent before the host sees the result; after an error they are dropped
    /// and the host deletes nothing.
    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError>;
}

/// What a sync reports: one line for the operator, e.g. `3 zones listed, 1 skipped`. The
/// host counts records and requests itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    message: String,
}

impl Summary {
    /// A summary saying `message`.
    pub fn new(message: impl Into<String>) -> Summary {
        Summary {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Runs `sync` and sends what it left buffered if it succeeded.
fn run_sync<I: Ingestor>(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
    let outcome = I::sync(cx, config);
    if outcome.is_ok() {
        cx.flush();
    }
    outcome
}

/// What [`export_ingestor!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::wit::export;
    pub use crate::wit::exports;
    pub use crate::wit::ingestor::{ConfigValue, Guest, PluginManifest, Summary, SyncError};

    use crate::{Config, Context, Ingestor};

    pub fn manifest<I: Ingestor>() -> PluginManifest {
        I::manifest().into_wit()
    }

    pub fn sync<I: Ingestor>(config: Vec<(String, ConfigValue)>) -> Result<Summary, SyncError> {
        let mut cx = Context::new(Box::new(crate::host::WitHost));
        crate::run_sync::<I>(&mut cx, &Config::new(config))
            .map(|s| Summary { message: s.message })
            .map_err(Into::into)
    }
}

/// Exports a type implementing [`Ingestor`] as the component's `ingestor` interface. Use it
/// once, at the root of the plugin crate. Natively (unit tests, clippy, a plain
/// `cargo build`) it checks the impl and exports nothing.
///
/// ```no_run
/// use infragraph_sdk::*;
///
/// struct Acme;
///
/// impl Ingestor for Acme {
///     fn manifest() -> Manifest {
///         Manifest::new("acme", env!("CARGO_PKG_VERSION"), "Users of Acme Directory")
///     }
///
///     fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
///         cx.scope("AcmeTenant", config.require_text("tenant")?);
///         Ok(Summary::new("nothing listed yet"))
///     }
/// }
///
/// export_ingestor!(Acme);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_ingestor {
    ($ingestor:ty) => {
        const _: () = {
            struct __InfragraphExport;

            impl $crate::__private::Guest for __InfragraphExport {
                fn manifest() -> $crate::__private::PluginManifest {
                    $crate::__private::manifest::<$ingestor>()
                }

                fn sync(
                    config: ::std::vec::Vec<(
                        ::std::string::String,
                        $crate::__private::ConfigValue,
                    )>,
                ) -> ::core::result::Result<
                    $crate::__private::Summary,
                    $crate::__private::SyncError,
                > {
                    $crate::__private::sync::<$ingestor>(config)
                }
            }

            // The export names (`infragraph:plugin/provider@0.1.0#sync`) are not valid in
            // a native linker's version script, and only a component needs them.
            #[cfg(target_arch = "wasm32")]
            $crate::__private::export!(__InfragraphExport with_types_in $crate::__private);

            // Natively, keep the plugin's code live so it is checked without dead-code noise.
            #[cfg(not(target_arch = "wasm32"))]
            let _ = (
                <__InfragraphExport as $crate::__private::Guest>::manifest,
                <__InfragraphExport as $crate::__private::Guest>::sync,
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;
    use crate::wit::http;

    struct Flaky;

    impl Ingestor for Flaky {
        fn manifest() -> Manifest {
            Manifest::new("flaky", "0.1.0", "Fails when asked")
        }

        fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
            cx.scope("FlakyThing", "s");
            cx.node("FlakyThing", "a").prop("name", "a").emit();
            match config.text("fail") {
                Some(_) => Err(SyncError::provider("asked to fail")),
                None => Ok(Summary::new("1 thing")),
            }
        }
    }

    #[test]
    fn buffered_records_are_sent_only_after_success() {
        let no_network = || -> crate::host::fake::Responder {
            Box::new(|r: &http::Request| Err(http::FetchError::Denied(r.url.clone())))
        };
        let (mut cx, record) = context(no_network());
        let ok = run_sync::<Flaky>(&mut cx, &Config::default());
        assert_eq!(ok.unwrap().message(), "1 thing");
        assert_eq!(record.borrow().nodes.len(), 1);

        let (mut cx, record) = context(no_network());
        let config = Config::new(vec![(
            "fail".into(),
            wit::types::ConfigValue::Text("y".into()),
        )]);
        let err = run_sync::<Flaky>(&mut cx, &config).unwrap_err();
        assert_eq!(err, SyncError::Provider("asked to fail".into()));
        assert!(record.borrow().nodes.is_empty());
        assert_eq!(record.borrow().scopes.len(), 1);
    }
}
