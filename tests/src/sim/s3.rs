//! An S3 bucket on loopback that only answers correctly signed requests (issue 7): the
//! CloudTrail export `plugins/spacelift` reads, and the proof that the host signs.
//!
//! The signature is recomputed here from the AWS Signature Version 4 specification with
//! nothing but SHA-256 (HMAC written out below), independently of the `aws-sigv4` crate
//! the host signs with, so a bug in how the host uses that crate cannot verify itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use sha2::{Digest, Sha256};

use super::server::{RequestLog, Server};

/// A running S3 endpoint (path-style: `/{bucket}?list-type=2...` and `/{bucket}/{key}`).
///
/// - `GET /{bucket}?list-type=2&prefix=&continuation-token=&max-keys=` is ListObjectsV2:
///   keys in order, at most `max-keys` (default and cap [`S3Sim::page_size`]) per page,
///   `IsTruncated` and `NextContinuationToken` to go on.
/// - `GET /{bucket}/{key}` is GetObject.
/// - Every request must carry a valid SigV4 `Authorization` for [`S3Sim::ACCESS_KEY_ID`],
///   [`S3Sim::SECRET_ACCESS_KEY`] and [`S3Sim::REGION`], service `s3`, with
///   `x-amz-content-sha256` equal to the body's hash and `x-amz-date` within 15 minutes;
///   otherwise 403 with S3's XML error (`AccessDenied`, `InvalidAccessKeyId`,
///   `SignatureDoesNotMatch`).
pub struct S3Sim {
    server: Server,
    state: Arc<S3State>,
}

struct S3State {
    bucket: String,
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    page_size: Mutex<usize>,
    session_token: Option<String>,
    verified: Mutex<u64>,
    refused: Mutex<Vec<String>>,
    log: RequestLog,
}

impl S3Sim {
    /// The access key id the bucket accepts.
    pub const ACCESS_KEY_ID: &'static str = "AKIASIMULATOR0000001";
    /// Its secret access key.
    pub const SECRET_ACCESS_KEY: &'static str = "s3SimSecret/7Qk+EXAMPLE9xYz0123456789abcd";
    /// The region requests must be signed for.
    pub const REGION: &'static str = "us-east-1";
    /// The bucket of [`S3Sim::cloudtrail_sample`].
    pub const BUCKET: &'static str = "spacelift-ec2-ownership";
    /// The prefix its objects are under.
    pub const PREFIX: &'static str = "cloudtrail/";

    /// Serves `objects` (key → body) in `bucket`. With `session_token`, requests must also
    /// carry and sign it as `x-amz-security-token`.
    pub fn start(
        bucket: &str,
        objects: BTreeMap<String, Vec<u8>>,
        session_token: Option<&str>,
    ) -> S3Sim {
        let state = Arc::new(S3State {
            bucket: bucket.to_owned(),
            objects: Mutex::new(objects),
            page_size: Mutex::new(1000),
            session_token: session_token.map(str::to_owned),
            verified: Mutex::new(0),
            refused: Mutex::new(Vec::new()),
            log: RequestLog::default(),
        });
        let router = state
            .log
            .around(Router::new().fallback(serve).with_state(state.clone()));
        S3Sim {
            server: Server::start("s3-sim", router),
            state,
        }
    }

    /// `tests/fixtures/spacelift/cloudtrail_ec2_ownership_records.json` split over two
    /// JSON objects under [`S3Sim::PREFIX`] (two records each), plus a `_SUCCESS` marker
    /// that is not JSON, as an Athena export leaves.
    pub fn cloudtrail_sample() -> BTreeMap<String, Vec<u8>> {
        let records: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../fixtures/spacelift/cloudtrail_ec2_ownership_records.json"
        ))
        .expect("the sample is JSON");
        let mut objects = BTreeMap::new();
        for (i, chunk) in records.chunks(2).enumerate() {
            objects.insert(
                format!("{}2024/01/01/part-{i:04}.json", S3Sim::PREFIX),
                serde_json::to_vec(chunk).expect("serialises"),
            );
        }
        objects.insert(format!("{}_SUCCESS", S3Sim::PREFIX), Vec::new());
        objects
    }

    /// The endpoint URL (no bucket).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// At most this many keys per ListObjectsV2 page from now on.
    pub fn set_page_size(&self, n: usize) {
        *self.state.page_size.lock().expect("lock") = n.max(1);
    }

    /// Requests whose signature verified.
    pub fn verified(&self) -> u64 {
        *self.state.verified.lock().expect("lock")
    }

    /// Why each refused request was refused.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().expect("lock").clone()
    }

    /// Every request, as `METHOD /path?query`.
    pub fn request_log(&self) -> Vec<String> {
        self.state.log.lines()
    }
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        escape(message)
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn serve(State(state): State<Arc<S3State>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    if let Err((code, why)) = verify(&state, &parts, &body, SystemTime::now()) {
        state.refused.lock().expect("lock").push(why.clone());
        return xml_error(StatusCode::FORBIDDEN, code, &why);
    }
    *state.verified.lock().expect("lock") += 1;
    let path = percent_decode(parts.uri.path());
    let rest = path.trim_start_matches('/');
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket != state.bucket {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        );
    }
    if key.is_empty() {
        list(&state, parts.uri.query().unwrap_or_default())
    } else {
        match state.objects.lock().expect("lock").get(key) {
            Some(bytes) => (
                StatusCode::OK,
                [("content-type", "application/json")],
                bytes.clone(),
            )
                .into_response(),
            None => xml_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            ),
        }
    }
}

fn list(state: &S3State, query: &str) -> Response {
    let params: BTreeMap<String, String> = query_pairs(query).into_iter().collect();
    if params.get("list-type").map(String::as_str) != Some("2") {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "the simulator serves ListObjectsV2 only (list-type=2)",
        );
    }
    let prefix = params.get("prefix").cloned().unwrap_or_default();
    let cap = *state.page_size.lock().expect("lock");
    let max = params
        .get("max-keys")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(cap)
        .min(cap);
    // The token is the last key of the previous page, hex-encoded: opaque to a client.
    let after = params
        .get("continuation-token")
        .map(|t| String::from_utf8(hex::decode(t).unwrap_or_default()).unwrap_or_default());
    let objects = state.objects.lock().expect("lock");
    let mut keys = objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()));
    let page: Vec<(&String, &Vec<u8>)> = keys.by_ref().take(max).collect();
    let truncated = keys.next().is_some();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        escape(&state.bucket),
        escape(&prefix),
        page.len()
    );
    for (key, body) in &page {
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2024-01-02T00:00:00.000Z</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            escape(key.as_str()),
            &hex::encode(Sha256::digest(body))[..32],
            body.len()
        ));
    }
    if truncated && let Some((last, _)) = page.last() {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            hex::encode(last.as_bytes())
        ));
    }
    xml.push_str("</ListBucketResult>");
    (StatusCode::OK, [("content-type", "application/xml")], xml).into_response()
}

/// Checks a request's SigV4 signature; the error is S3's code and why.
fn verify(
    state: &S3State,
    parts: &axum::http::request::Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<(), (&'static str, String)> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let deny = |why: &str| ("AccessDenied", why.to_owned());
    let mismatch = |why: &str| ("SignatureDoesNotMatch", why.to_owned());
    let auth = header("authorization").ok_or_else(|| deny("the request is not signed"))?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| deny("only AWS4-HMAC-SHA256 is accepted"))?;
    let mut fields = BTreeMap::new();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| deny("malformed Authorization"))?;
        fields.insert(k, v);
    }
    let (credential, signed, signature) = match (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) {
        (Some(c), Some(s), Some(g)) => (*c, *s, *g),
        _ => {
            return Err(deny(
                "Authorization lacks Credential, SignedHeaders or Signature",
            ));
        }
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope[..] else {
        return Err(deny("malformed credential scope"));
    };
    if akid != S3Sim::ACCESS_KEY_ID {
        return Err((
            "InvalidAccessKeyId",
            format!("access key id {akid:?} is unknown"),
        ));
    }
    if region != S3Sim::REGION || service != "s3" || terminator != "aws4_request" {
        return Err(mismatch(&format!(
            "scope {date}/{region}/{service}/{terminator} is not for this bucket"
        )));
    }
    let amz_date = header("x-amz-date").ok_or_else(|| deny("x-amz-date is missing"))?;
    if !amz_date.starts_with(date) {
        return Err(mismatch("x-amz-date and the credential scope disagree"));
    }
    let signed_at = parse_amz_date(&amz_date).ok_or_else(|| deny("x-amz-date is malformed"))?;
    let skew = now
        .duration_since(signed_at)
        .or_else(|_| signed_at.duration_since(now))
        .unwrap_or_default();
    if skew > Duration::from_secs(15 * 60) {
        return Err((
            "RequestTimeTooSkewed",
            "x-amz-date is 15 minutes or more off".into(),
        ));
    }
    let signed_names: Vec<&str> = signed.split(';').collect();
    for must in ["host", "x-amz-date", "x-amz-content-sha256"] {
        if !signed_names.contains(&must) {
            return Err(deny(&format!("header {must} is not signed")));
        }
    }
    let payload_hash = header("x-amz-content-sha256").unwrap_or_default();
    if payload_hash != hex::encode(Sha256::digest(body)) {
        return Err((
            "XAmzContentSHA256Mismatch",
            "x-amz-content-sha256 is not the body's hash".into(),
        ));
    }
    if let Some(token) = &state.session_token
        && (header("x-amz-security-token").as_deref() != Some(token)
            || !signed_names.contains(&"x-amz-security-token"))
    {
        return Err(deny("the session token is missing, wrong or unsigned"));
    }
    // The canonical request, as the specification builds it.
    let mut canonical_headers = String::new();
    for name in &signed_names {
        let values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(mismatch(&format!("signed header {name} is absent")));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let mut query = query_pairs(parts.uri.query().unwrap_or_default());
    query.sort();
    let canonical_query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        parts.method,
        parts.uri.path(),
        canonical_query.join("&"),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/s3/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", S3Sim::SECRET_ACCESS_KEY).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(mismatch(
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(message);
    let inner_hash = h.finalize();
    let mut h = Sha256::new();
    h.update(&outer);
    h.update(inner_hash);
    h.finalize().to_vec()
}

/// `20240101T120000Z` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || !s.ends_with('Z') || s.as_bytes()[8] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Decoded `name=value` pairs of a query string.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// SigV4's URI encoding: everything but unreserved characters, upper-case hex.
fn uri_encode(s: &str) -> String {
    /// Everything but RFC 3986's unreserved characters.
    const SIGV4: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SIGV4).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn amz_dates_parse() {
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn unsigned_and_badly_signed_requests_are_refused() {
        let sim = S3Sim::start(S3Sim::BUCKET, S3Sim::cloudtrail_sample(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = format!("{}/{}?list-type=2", sim.url(), S3Sim::BUCKET);
            let plain = reqwest::get(&url).await.unwrap();
            assert_eq!(plain.status(), 403);
            assert!(plain.text().await.unwrap().contains("<Code>AccessDenied</Code>"));
            let forged = reqwest::Client::new()
                .get(&url)
                .header("authorization", format!("AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00", S3Sim::ACCESS_KEY_ID))
                .header("x-amz-date", "20240101T000000Z")
                .header("x-amz-content-sha256", hex::encode(Sha256::digest(b"")))
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), 403);
        });
        assert_eq!(sim.verified(), 0);
        assert_eq!(sim.refused().len(), 2);
    }

    /// The host's signer (the fetch crate with an `aws-sigv4` credential) against this
    /// independent verifier, with a session token and a key needing encoding.
    #[test]
    fn the_hosts_signatures_verify() {
        use infragraph_core::{
            AwsSigning, ConfigKey, ConfigType, Credential, CredentialUse, Manifest, Schema,
        };
        use infragraph_fetch::{FetchLimits, Fetcher, Grants, Request, Secrets};

        let mut objects = S3Sim::cloudtrail_sample();
        objects.insert("cloudtrail/odd key+1.json".into(), b"[]".to_vec());
        let sim = S3Sim::start(S3Sim::BUCKET, objects, Some("tok/en+1"));
        sim.set_page_size(2);
        let key = |name: &str, ty| ConfigKey {
            name: name.into(),
            description: String::new(),
            ty,
            env: None,
            required: false,
            default: None,
        };
        let cred = |name: &str, use_| Credential {
            name: name.into(),
            env: name.to_uppercase(),
            description: String::new(),
            hosts: vec!["{config:s3_endpoint}".into()],
            use_,
            required: false,
            only_when: None,
        };
        let manifest = Manifest {
            name: "s3-test".into(),
            version: "0.1.0".into(),
            description: String::new(),
            schema: Schema::default(),
            hosts: vec![],
            credentials: vec![
                cred(
                    "aws_secret_access_key",
                    CredentialUse::AwsSigv4(AwsSigning {
                        access_key_id: "akid".into(),
                        region: "region".into(),
                        service: "s3".into(),
                        session_token: Some("aws_session_token".into()),
                    }),
                ),
                cred("aws_session_token", CredentialUse::Header),
            ],
            config: vec![
                key("s3_endpoint", ConfigType::Endpoint),
                key("akid", ConfigType::Text),
                key("region", ConfigType::Text),
            ],
        };
        let grants = Grants::new(&manifest, &[("s3_endpoint".into(), sim.url())]).expect("grants");
        let mut secrets = Secrets::new();
        secrets
            .insert("aws_secret_access_key", S3Sim::SECRET_ACCESS_KEY.into())
            .unwrap();
        secrets
            .insert("aws_session_token", "tok/en+1".into())
            .unwrap();
        let config = [
            ("akid".to_string(), S3Sim::ACCESS_KEY_ID.to_string()),
            ("region".to_string(), S3Sim::REGION.to_string()),
        ];
        let fetcher =
            Fetcher::new(grants, secrets, &config, FetchLimits::default()).expect("fetcher");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let list = format!(
                "{}/{}?list-type=2&prefix=cloudtrail%2F&max-keys=2",
                sim.url(),
                S3Sim::BUCKET
            );
            let r = fetcher.fetch(Request::get(list)).await.unwrap();
            let text = String::from_utf8(r.body).unwrap();
            assert_eq!(r.status, 200, "{text}");
            assert!(text.contains("<IsTruncated>true</IsTruncated>"), "{text}");
            let obj = format!(
                "{}/{}/cloudtrail/odd%20key%2B1.json",
                sim.url(),
                S3Sim::BUCKET
            );
            let r = fetcher.fetch(Request::get(obj)).await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, b"[]".as_slice()));
        });
        assert_eq!(sim.verified(), 2, "refused: {:?}", sim.refused());
    }
}
