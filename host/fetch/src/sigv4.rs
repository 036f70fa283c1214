//! AWS Signature Version 4, applied by the host to requests for a credential of use
//! `aws-sigv4`: the guest never holds the secret access key, only the signature leaves.
//!
//! The signing itself is the `aws-sigv4` crate's (the AWS SDK for Rust's own signer); this
//! module only chooses its settings and turns its output into headers.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Headers the signer owns: a plugin's own values for them are dropped, so what is sent
/// is exactly what was signed.
pub(crate) const SIGNING_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// Everything needed to sign requests for one credential.
#[derive(Clone)]
pub(crate) struct SigV4Key {
    /// The credential's name, for messages.
    pub credential: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
    pub service: String,
}

impl std::fmt::Debug for SigV4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Key")
            .field("credential", &self.credential)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SigV4Key {
    /// S3 wants the payload hash as a header, the path encoded once and not normalised
    /// (object keys may hold `//` or `..`); every other service takes the defaults
    /// (double encoding, normalised path, no payload header).
    fn settings(&self) -> SigningSettings {
        let mut s = SigningSettings::default();
        if self.service == "s3" {
            s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            s.percent_encoding_mode = PercentEncodingMode::Single;
            s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        s
    }

    /// Signs a request as it will be sent (`url` already encoded, `headers` the ones
    /// going on the wire besides `host`, which the signer takes from `url`) at `time`,
    /// and adds the signature headers to `headers`.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &mut HeaderMap,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| {
            format!(
                "cannot sign the request with AWS credential {:?}: {e}",
                self.credential
            )
        };
        let mut pairs = Vec::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            let value = value
                .to_str()
                .map_err(|_| fail(&format!("header {name:?} is not visible ASCII")))?;
            pairs.push((name.as_str(), value));
        }
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "infragraph",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(self.settings())
            .build()
            .map_err(|e| fail(&e))?
            .into();
        let signable =
            SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
                .map_err(|e| fail(&e))?;
        let (instructions, _signature) =
            sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
        let (signed, _params) = instructions.into_parts();
        for h in signed {
            let mut value = HeaderValue::from_str(h.value()).map_err(|e| fail(&e))?;
            // The signature is no secret, but the session token is.
            value.set_sensitive(h.sensitive() || h.name() == "authorization");
            headers.insert(HeaderName::from_static(h.name()), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn key(akid: &str, secret: &str, region: &str, service: &str) -> SigV4Key {
        SigV4Key {
            credential: "aws_secret_access_key".into(),
            access_key_id: akid.into(),
            secret_access_key: secret.into(),
            session_token: None,
            region: region.into(),
            service: service.into(),
        }
    }

    fn header(h: &HeaderMap, name: &str) -> String {
        h.get(name).unwrap().to_str().unwrap().to_owned()
    }

    /// `get-vanilla` of the AWS Signature Version 4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let k = key(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
        );
        let mut h = HeaderMap::new();
        // 2015-08-30T12:36:00Z
        k.sign(
            "GET",
            "https://example.amazonaws.com/",
            &mut h,
            b"",
            at(1_440_938_160),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&h, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The GET Object example of the S3 documentation ("Signature Calculations for the
    /// Authorization Header"): a `Range` header and the empty payload hash.
    #[test]
    fn s3_documentation_get_object() {
        let k = key(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "s3",
        );
        let mut h = HeaderMap::new();
        h.insert("range", HeaderValue::from_static("bytes=0-9"));
        // 2013-05-24T00:00:00Z
        k.sign(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &mut h,
            b"",
            at(1_369_353_600),
        )
        .unwrap();
        assert_eq!(
            header(&h, "x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            header(&h, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// The GET Bucket (List Objects) example of the same page: a query string.
    #[test]
    fn s3_documentation_list_objects() {
        let k = key(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "s3",
        );
        let mut h = HeaderMap::new();
        k.sign(
            "GET",
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            &mut h,
            b"",
            at(1_369_353_600),
        )
        .unwrap();
        assert!(
            header(&h, "authorization").ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            header(&h, "authorization")
        );
    }

    #[test]
    fn session_token_is_signed_and_sensitive() {
        let mut k = key("AKID", "secret", "eu-west-1", "s3");
        k.session_token = Some("token-value".into());
        let mut h = HeaderMap::new();
        k.sign(
            "GET",
            "http://127.0.0.1:9000/b?list-type=2",
            &mut h,
            b"",
            at(1_700_000_000),
        )
        .unwrap();
        let token = h.get("x-amz-security-token").unwrap();
        assert_eq!(token, "token-value");
        assert!(token.is_sensitive());
        assert!(
            header(&h, "authorization").contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
            ),
            "{}",
            header(&h, "authorization")
        );
        assert!(!format!("{k:?}").contains("secret\""), "{k:?}");
        assert!(!format!("{k:?}").contains("token-value"), "{k:?}");
    }
}
