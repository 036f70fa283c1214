//! The TLS client configuration every connection's HTTP client shares: the system's
//! certificate authorities through the platform verifier, TLS 1.2 and 1.3, HTTP/1.1.
//!
//! Built once per process because building it reads and parses every CA certificate the
//! system has (about 150 files here); each connection's client did that again, 6% of the
//! CPU of 200 connections synced at once (issue 18).

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;

use crate::SetupError;

/// The verifier of server certificates against the system's CA certificates.
fn verifier() -> Result<Arc<dyn ServerCertVerifier>, SetupError> {
    static VERIFIER: OnceLock<Result<Arc<dyn ServerCertVerifier>, String>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls_platform_verifier::Verifier::new(provider)
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
                .map_err(|e| format!("loading the system's CA certificates: {e}"))
        })
        .clone()
        .map_err(SetupError::Client)
}

/// A client configuration for one HTTP client (cheap: the verifier is shared).
pub(crate) fn client_config() -> Result<ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Client(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier()?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    /// Shared or not, it is a real verifier: a certificate no authority signed is refused.
    #[test]
    fn the_shared_verifier_refuses_a_self_signed_certificate() {
        let der = include_bytes!("../tests/fixtures/self-signed-example.com.der");
        let name = ServerName::try_from("example.com").unwrap();
        let refused = verifier().unwrap().verify_server_cert(
            &CertificateDer::from(&der[..]),
            &[],
            &name,
            &[],
            UnixTime::now(),
        );
        assert!(refused.is_err(), "a self-signed certificate was accepted");
        // And every client gets the same one, loaded once.
        assert!(Arc::ptr_eq(&verifier().unwrap(), &verifier().unwrap()));
        assert_eq!(
            client_config().unwrap().alpn_protocols,
            [b"http/1.1".to_vec()]
        );
    }
}
