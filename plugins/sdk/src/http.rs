use std::borrow::Cow;
use std::fmt;

use form_urlencoded::byte_serialize;
use serde::de::DeserializeOwned;

use crate::wit::http as wit;
use crate::{StatusError, SyncError};

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

impl From<Method> for wit::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Get => wit::Method::Get,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
            Method::Head => wit::Method::Head,
        }
    }
}

/// A request the host sends for the plugin, through [`Context::fetch`] or one of the
/// pagination helpers.
///
/// Header values, JSON bodies and form fields may hold `{secret:NAME}` placeholders where
/// the credential's [`CredentialUse`] allows; the host substitutes them.
///
/// [`Context::fetch`]: crate::Context::fetch
/// [`CredentialUse`]: crate::CredentialUse
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body. `url` is absolute.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new(Method::Put, url)
    }

    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Request {
        Request::new(Method::Delete, url)
    }

    /// Adds a header; earlier ones of the same name are kept.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends `name=value` to the URL's query, percent-encoded.
    pub fn query(mut self, name: &str, value: impl fmt::Display) -> Request {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        self.url.push(sep);
        encode(name, &mut self.url, false);
        self.url.push('=');
        encode(&value.to_string(), &mut self.url, false);
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(self, body: &serde_json::Value) -> Request {
        self.with_body("application/json", body.to_string().into_bytes())
    }

    /// Sets an `application/x-www-form-urlencoded` body. Values are percent-encoded except
    /// `{secret:NAME}` placeholders, which are kept whole for the host to substitute.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Request {
        let mut body = String::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                body.push('&');
            }
            encode(k.as_ref(), &mut body, true);
            body.push('=');
            encode(v.as_ref(), &mut body, true);
        }
        self.with_body("application/x-www-form-urlencoded", body.into_bytes())
    }

    /// Sets a raw body; add its `content-type` with [`header`](Request::header).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Request {
        self.body = bytes.into();
        self
    }

    fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = body;
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL, query included.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, in the order added.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub(crate) fn into_wit(self) -> wit::Request {
        wit::Request {
            method: self.method.into(),
            url: self.url,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// Appends `s` encoded by the `application/x-www-form-urlencoded` rules, which a query
/// accepts too (space as `+`). With `keep_placeholders`, `{secret:NAME}` stays literal:
/// the host looks for it verbatim and encodes the value it substitutes.
fn encode(s: &str, out: &mut String, keep_placeholders: bool) {
    let mut rest = s;
    while keep_placeholders && let Some(at) = rest.find("{secret:") {
        let (before, from) = rest.split_at(at);
        out.extend(byte_serialize(before.as_bytes()));
        match placeholder_len(from) {
            Some(len) => {
                out.push_str(&from[..len]);
                rest = &from[len..];
            }
            // Not a placeholder after all: its `{` is text like any other.
            None => {
                out.extend(byte_serialize(b"{"));
                rest = &from[1..];
            }
        }
    }
    out.extend(byte_serialize(rest.as_bytes()));
}

/// The length of the `{secret:name}` placeholder `s` starts with, if any.
fn placeholder_len(s: &str) -> Option<usize> {
    let name = s.strip_prefix("{secret:")?;
    let end = name.find('}')?;
    let valid = end > 0
        && name[..end]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then_some("{secret:".len() + end + 1)
}

/// What the provider answered. Any status is a response; see
/// [`error_for_status`](Response::error_for_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers; names are lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that was requested (before any redirect).
    pub url: String,
}

impl Response {
    pub(crate) fn from_wit(r: wit::Response, url: String) -> Response {
        Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
            url,
        }
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON into `T`, or a [`SyncError::Provider`] naming the URL.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, SyncError> {
        let unreadable = |e: &dyn std::fmt::Display| {
            SyncError::provider(format!(
                "{} answered HTTP {} with JSON this plugin cannot read: {e}",
                self.url, self.status
            ))
        };
        // Checked as UTF-8 once, whole: parsed from bytes, serde_json checks each string
        // on its own, a call per string that cost more than one pass (issue 18).
        let text = std::str::from_utf8(&self.body).map_err(|e| {
            unreadable(&format_args!(
                "invalid UTF-8 at byte {} of {}",
                e.valid_up_to(),
                self.body.len()
            ))
        })?;
        serde_json::from_str(text).map_err(|e| unreadable(&e))
    }

    /// The response itself if its status is 2xx, else a [`StatusError`] naming the status,
    /// the URL and the start of the body.
    pub fn error_for_status(&self) -> Result<&Response, StatusError> {
        if self.is_success() {
            return Ok(self);
        }
        let start = &self.body[..self.body.len().min(200)];
        Err(StatusError {
            status: self.status,
            url: self.url.clone(),
            body: String::from_utf8_lossy(start).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_encoded() {
        let r = Request::get("https://x/v1/users")
            .query("page", 2)
            .query("q", "a b&c/é*~+");
        assert_eq!(
            r.url(),
            "https://x/v1/users?page=2&q=a+b%26c%2F%C3%A9*%7E%2B"
        );
        let r = Request::get("https://x/v1?a=1").query("{secret:k}", "{secret:k}");
        assert_eq!(
            r.url(),
            "https://x/v1?a=1&%7Bsecret%3Ak%7D=%7Bsecret%3Ak%7D"
        );
    }

    #[test]
    fn form_keeps_placeholders_whole() {
        let r = Request::post("https://x/token")
            .header("Content-Type", "text/plain")
            .form(&[
                ("grant_type", "client credentials"),
                ("secret", "{secret:client_secret}&x"),
            ]);
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            "grant_type=client+credentials&secret={secret:client_secret}%26x"
        );
        assert_eq!(
            r.headers(),
            [(
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string()
            )]
        );
        let r = Request::post("https://x").form(&[("a", "{secret:}"), ("b", "{secret:Bad}")]);
        assert_eq!(r.body, b"a=%7Bsecret%3A%7D&b=%7Bsecret%3ABad%7D");
        // A false start does not hide a placeholder right after it.
        let r = Request::post("https://x").form(&[("c", "{secret:{secret:ok} é")]);
        assert_eq!(r.body, b"c=%7Bsecret%3A{secret:ok}+%C3%A9");
    }

    #[test]
    fn json_body() {
        let r = Request::post("https://x").json(&serde_json::json!({"key": "{secret:k}"}));
        assert_eq!(r.body, br#"{"key":"{secret:k}"}"#);
        assert_eq!(r.headers()[0].1, "application/json");
    }

    fn response(status: u16, body: &[u8]) -> Response {
        Response {
            status,
            headers: vec![("x-total-count".into(), "42".into())],
            body: body.to_vec(),
            url: "https://x/v1/users".into(),
        }
    }

    #[test]
    fn status_and_headers() {
        let r = response(200, b"{\"a\":1}");
        assert_eq!(r.header("X-Total-Count"), Some("42"));
        assert!(r.error_for_status().is_ok());
        assert_eq!(r.json::<serde_json::Value>().unwrap()["a"], 1);
        let long = vec![b'e'; 500];
        let e = response(500, &long).error_for_status().unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(e.body.len(), 200);
        assert!(
            e.to_string()
                .starts_with("https://x/v1/users answered HTTP 500: eee")
        );
        let e = response(200, b"not json")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(matches!(e, SyncError::Provider(m) if m.contains("https://x/v1/users")));
    }

    #[test]
    fn json_reads_escapes_and_refuses_invalid_utf8_naming_where() {
        let r = response(200, "{\"a\":\"é\\u00e9\\n\"}".as_bytes());
        assert_eq!(r.json::<serde_json::Value>().unwrap()["a"], "éé\n");
        let e = response(200, b"{\"a\":\"x\xff\"}")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(
            matches!(&e, SyncError::Provider(m) if m.contains("invalid UTF-8 at byte 7 of 10")),
            "{e:?}"
        );
    }
}
