//! Plugins in OCI registries, the way WebAssembly components are kept there (the CNCF
//! "Wasm OCI artifact" layout that `wkg` and `oras` use): an image manifest whose config
//! has media type `application/vnd.wasm.config.v0+json` and whose one layer, of type
//! `application/wasm`, is the component. A component published this way can be pulled by
//! those tools too, and `wkg oci push` output installs here.
//!
//! The minisign signature travels beside it in the same repository, as its own small
//! artifact tagged `sha256-<hex of the component manifest's digest>.minisig` (cosign's
//! tag scheme, with minisign's suffix), so any registry that keeps tags keeps it, without
//! the referrers API that older registries lack. What is signed is the component's bytes,
//! so the signature holds wherever the component is copied.
//!
//! Registries on a loopback address are spoken to over plain HTTP, as Docker does;
//! every other registry over HTTPS. Credentials come from [`REGISTRY_USERNAME`] and
//! [`REGISTRY_PASSWORD`] (anonymous when unset); registries that hand out tokens get them
//! by the distribution token flow.

use std::collections::BTreeMap;
use std::net::IpAddr;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The environment variable holding the registry user name, for registries that ask.
pub const REGISTRY_USERNAME: &str = "INFRAGRAPH_REGISTRY_USERNAME";
/// The environment variable holding the registry password or token.
pub const REGISTRY_PASSWORD: &str = "INFRAGRAPH_REGISTRY_PASSWORD";

/// The config media type of a WebAssembly artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a WebAssembly component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The layer media type of a minisign signature.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.infragraph.minisign.signature.v1";
/// The config media type of the signature artifact: OCI's empty descriptor.
const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The largest component pulled, 64 MiB: the built-ins are 0.3–6 MB, and a registry (or
/// a manifest) naming a huge layer must not fill the host's memory.
pub const MAX_COMPONENT_BYTES: i64 = 64 << 20;
/// The largest signature pulled: a minisign signature is about 300 bytes.
const MAX_SIGNATURE_BYTES: i64 = 16 << 10;

/// A component and what came with it.
#[derive(Debug)]
pub struct Pulled {
    /// The component's bytes, checked against the manifest's digest.
    pub wasm: Vec<u8>,
    /// Its signature, when the repository has one.
    pub signature: Option<String>,
    /// The digest of the component's manifest (`sha256:…`), the reference to pin a
    /// deployment to.
    pub manifest_digest: String,
}

/// What [`publish`] pushed.
#[derive(Debug)]
pub struct Published {
    /// The digest of the component's manifest.
    pub manifest_digest: String,
    /// The tag the signature was pushed under, when there was one.
    pub signature_tag: Option<String>,
}

/// What a component imports and exports, by interface name: the artifact config's
/// `component` field.
#[derive(Debug, Clone, Default)]
pub struct Interfaces {
    /// e.g. `infragraph:plugin/emit@0.1.0`.
    pub imports: Vec<String>,
    /// e.g. `infragraph:plugin/provider@0.2.0`.
    pub exports: Vec<String>,
}

fn oci(reference: &str, what: impl std::fmt::Display) -> Error {
    Error::Trust(format!("{reference}: {what}"))
}

/// Parses `oci://registry/repository:tag` (or `@sha256:…`); the scheme is optional.
pub fn parse(reference: &str) -> Result<Reference, Error> {
    let bare = reference.strip_prefix("oci://").unwrap_or(reference);
    let parsed: Reference = bare.parse().map_err(|e| {
        oci(
            reference,
            format!(
                "not an OCI reference ({e}); write it as oci://registry.example.com/team/plugin:1.0.0"
            ),
        )
    })?;
    // A reference without a registry means Docker Hub to the parser; a plugin install
    // naming no registry is far more likely a mistake than a wish for Docker Hub.
    if !bare.starts_with(parsed.registry()) && !bare.starts_with(parsed.resolve_registry()) {
        return Err(oci(
            reference,
            "names no registry: write the registry's host first, e.g. oci://ghcr.io/team/plugin:1.0.0",
        ));
    }
    Ok(parsed)
}

/// Whether `registry` (`host[:port]`) is on this machine, so plain HTTP is acceptable.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn client(reference: &Reference) -> Client {
    let registry = reference.resolve_registry().to_string();
    let protocol = if is_loopback(&registry) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        read_timeout: Some(std::time::Duration::from_secs(60)),
        connect_timeout: Some(std::time::Duration::from_secs(15)),
        ..Default::default()
    })
}

fn auth() -> RegistryAuth {
    match (
        std::env::var(REGISTRY_USERNAME),
        std::env::var(REGISTRY_PASSWORD),
    ) {
        (Ok(user), Ok(password)) => RegistryAuth::Basic(user, password),
        (Err(_), Ok(token)) => RegistryAuth::Bearer(token),
        _ => RegistryAuth::Anonymous,
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::ManifestUnknown)),
        _ => false,
    }
}

/// Says what a registry error means for the user; credentials never appear in it (the
/// client's errors carry URLs and the registry's messages, not the request's headers).
fn explain(reference: &str, e: OciDistributionError) -> Error {
    let hint = match &e {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => format!(
            " (the registry refused access: set {REGISTRY_USERNAME} and {REGISTRY_PASSWORD}, \
             or {REGISTRY_PASSWORD} alone for a token)"
        ),
        _ if is_not_found(&e) => " (no such repository or tag)".to_string(),
        _ => String::new(),
    };
    oci(reference, format!("{e}{hint}"))
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The tag of the signature of the component whose manifest digest is `digest`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.minisig", manifest_digest.replace(':', "-"))
}

/// The same repository as `image`, at `tag`.
fn tagged(image: &Reference, tag: &str) -> Reference {
    Reference::with_tag(
        image.registry().to_string(),
        image.repository().to_string(),
        tag.to_string(),
    )
}

/// Pushes the component `wasm` to `reference`, and `signature` (minisign text) beside it;
/// `annotations` go on the component's manifest (`org.opencontainers.image.title` and
/// friends).
pub async fn publish(
    reference: &str,
    wasm: Vec<u8>,
    signature: Option<String>,
    interfaces: &Interfaces,
    annotations: BTreeMap<String, String>,
) -> Result<Published, Error> {
    bounded(reference, async {
        let image = parse(reference)?;
        let client = client(&image);
        let auth = auth();
        let layer_digest = sha256_digest(&wasm);
        let config = serde_json::json!({
            "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
            "component": {
                "exports": interfaces.exports,
                "imports": interfaces.imports,
                "target": serde_json::Value::Null,
            },
        });
        let config = Config::new(
            serde_json::to_vec(&config).expect("a JSON value serialises"),
            WASM_CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let layer = ImageLayer::new(wasm, WASM_LAYER_MEDIA_TYPE.to_string(), None);
        let manifest =
            OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
        client
            .push(&image, &[layer], config, &auth, Some(manifest.clone()))
            .await
            .map_err(|e| explain(reference, e))?;
        let manifest_digest =
            sha256_digest(&serde_json::to_vec(&manifest).expect("a manifest serialises"));
        // The registry keys the manifest by the digest of the bytes it received; read it back
        // rather than trusting that our serialisation is the one it stored.
        let manifest_digest = client
            .fetch_manifest_digest(&image, &auth)
            .await
            .unwrap_or(manifest_digest);
        let signature_tag = match signature {
            None => None,
            Some(text) => {
                let tag = signature_tag(&manifest_digest);
                let sig_ref = tagged(&image, &tag);
                let empty = Config::new(b"{}".to_vec(), EMPTY_CONFIG_MEDIA_TYPE.to_string(), None);
                let mut annotations = BTreeMap::new();
                annotations.insert(
                    "org.opencontainers.image.title".to_string(),
                    "plugin.wasm.minisig".to_string(),
                );
                let layer = ImageLayer::new(
                    text.into_bytes(),
                    SIGNATURE_MEDIA_TYPE.to_string(),
                    Some(annotations),
                );
                client
                    .push(&sig_ref, &[layer], empty, &auth, None)
                    .await
                    .map_err(|e| explain(reference, e))?;
                Some(tag)
            }
        };
        Ok(Published {
            manifest_digest,
            signature_tag,
        })
    })
    .await
}

/// The one layer of `media_type` in `manifest`, refused when missing, repeated or larger
/// than `max` bytes.
fn only_layer<'m>(
    reference: &str,
    manifest: &'m OciImageManifest,
    media_type: &str,
    max: i64,
) -> Result<&'m OciDescriptor, Error> {
    let mut layers = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == media_type);
    let (Some(layer), None) = (layers.next(), layers.next()) else {
        let found: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        return Err(oci(
            reference,
            format!(
                "is not a WebAssembly component artifact: it needs exactly one layer of type \
                 {media_type}, and has {found:?}"
            ),
        ));
    };
    if layer.size < 0 || layer.size > max {
        return Err(oci(
            reference,
            format!(
                "its {media_type} layer declares {} bytes, over the {max}-byte limit",
                layer.size
            ),
        ));
    }
    Ok(layer)
}

async fn pull_layer(
    client: &Client,
    image: &Reference,
    reference: &str,
    layer: &OciDescriptor,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(layer.size as usize);
    client
        .pull_blob(image, layer, &mut out)
        .await
        .map_err(|e| explain(reference, e))?;
    // pull_blob checks the digest; the size is checked too, so a registry cannot send more
    // than the manifest declared.
    if out.len() as i64 != layer.size {
        return Err(oci(
            reference,
            format!(
                "the registry sent {} bytes for a layer of {}",
                out.len(),
                layer.size
            ),
        ));
    }
    Ok(out)
}

/// How long a whole pull or publish may take: a registry that answers a byte at a time
/// stays within every read timeout and would otherwise hold the command for ever.
pub const TRANSFER_TIME: std::time::Duration = std::time::Duration::from_secs(600);

/// `work`, bounded by [`TRANSFER_TIME`].
async fn bounded<T>(
    reference: &str,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(TRANSFER_TIME, work)
        .await
        .unwrap_or_else(|_| {
            Err(oci(
                reference,
                format!("the registry did not finish within {TRANSFER_TIME:?}"),
            ))
        })
}

/// Pulls the component at `reference` and its signature, when the repository has one.
pub async fn pull(reference: &str) -> Result<Pulled, Error> {
    bounded(reference, async {
        let image = parse(reference)?;
        let client = client(&image);
        let auth = auth();
        let (manifest, manifest_digest) = client
            .pull_image_manifest(&image, &auth)
            .await
            .map_err(|e| explain(reference, e))?;
        if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            return Err(oci(
                reference,
                format!(
                    "is not a WebAssembly artifact: its config is {:?}, not {WASM_CONFIG_MEDIA_TYPE:?} \
                     (publish it with `infragraph plugin publish` or `wkg oci push`)",
                    manifest.config.media_type
                ),
            ));
        }
        let layer = only_layer(
            reference,
            &manifest,
            WASM_LAYER_MEDIA_TYPE,
            MAX_COMPONENT_BYTES,
        )?;
        let wasm = pull_layer(&client, &image, reference, layer).await?;
        let sig_ref = tagged(&image, &signature_tag(&manifest_digest));
        let signature = match client.pull_image_manifest(&sig_ref, &auth).await {
            Ok((sig_manifest, _)) => {
                let layer = only_layer(
                    reference,
                    &sig_manifest,
                    SIGNATURE_MEDIA_TYPE,
                    MAX_SIGNATURE_BYTES,
                )?;
                let bytes = pull_layer(&client, &sig_ref, reference, layer).await?;
                Some(String::from_utf8(bytes).map_err(|_| {
                    oci(
                        reference,
                        "its signature is not text: it is not a minisign signature",
                    )
                })?)
            }
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(explain(reference, e)),
        };
        Ok(Pulled {
            wasm,
            signature,
            manifest_digest,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_their_registry_and_loopback_is_plain_http() {
        let r = parse("oci://127.0.0.1:5000/team/acme:1.0.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/acme");
        assert_eq!(r.tag(), Some("1.0.0"));
        assert!(parse("ghcr.io/team/acme:1").is_ok());
        let e = parse("oci://acme:1").unwrap_err().to_string();
        assert!(e.contains("names no registry"), "{e}");
        let e = parse("oci://Bad Ref").unwrap_err().to_string();
        assert!(e.contains("not an OCI reference"), "{e}");
        for local in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["ghcr.io", "10.0.0.1:5000", "example.com:5000"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn a_signature_is_tagged_after_the_component_manifest() {
        assert_eq!(
            signature_tag("sha256:abcd"),
            "sha256-abcd.minisig".to_string()
        );
    }
}
