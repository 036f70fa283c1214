//! Credential values, their encodings, and redaction.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use memchr::memmem;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

/// Resolved credential values, by credential name.
///
/// The host reads them from the environment (or files the operator names) and hands them
/// here; the guest only ever writes placeholders. `Debug` prints the names, never a value.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    /// Every byte string that gives a value away, longest first, with its replacement.
    patterns: Vec<(Vec<u8>, String)>,
    /// Encodings the fetcher adds once it knows how a value is used (basic auth).
    extra: Vec<(String, String)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value of credential `name`, replacing any earlier one.
    pub fn insert(&mut self, name: &str, value: String) {
        self.values.insert(name.to_owned(), value);
        self.rebuild();
    }

    /// The value of credential `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Also redacts `encoded` as credential `name` (e.g. a basic-auth token).
    pub(crate) fn add_encoding(&mut self, name: &str, encoded: String) {
        self.extra.push((name.to_owned(), encoded));
        self.rebuild();
    }

    fn rebuild(&mut self) {
        let mut patterns: Vec<(Vec<u8>, String)> = Vec::new();
        let mut add = |name: &str, p: String| {
            // An empty value would match everywhere; it gives nothing away anyway.
            if !p.is_empty() && !patterns.iter().any(|(q, _)| q == p.as_bytes()) {
                patterns.push((p.into_bytes(), format!("{{secret:{name}}}")));
            }
        };
        for (name, value) in &self.values {
            add(name, value.clone());
            add(name, json_escape(value));
            for encoded in percent_encodings(value) {
                add(name, encoded);
            }
        }
        for (name, encoded) in &self.extra {
            add(name, encoded.clone());
        }
        // Longest first, so a value that contains another is replaced whole.
        patterns.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        self.patterns = patterns;
    }

    /// `text` with every secret value, and every encoding of one that the fetcher
    /// substitutes or a server may echo (JSON-escaped, percent-encoded by RFC 3986 or the
    /// form rules, base64 for basic auth), replaced by `{secret:NAME}`.
    pub fn redact(&self, text: &str) -> String {
        match self.redact_bytes(text.as_bytes()) {
            None => text.to_owned(),
            // Patterns are whole UTF-8 strings and UTF-8 is self-synchronising, so a match
            // never splits a character.
            Some(bytes) => String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// `bytes` with every secret replaced, or `None` when none occurs (the usual case,
    /// which then costs one SIMD search per pattern and no copy).
    pub(crate) fn redact_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        // (start, pattern index): patterns are longest first, so sorting puts the longest
        // match first among those starting at the same byte.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for (i, (p, _)) in self.patterns.iter().enumerate() {
            hits.extend(memmem::find_iter(bytes, p).map(|start| (start, i)));
        }
        if hits.is_empty() {
            return None;
        }
        hits.sort_unstable();
        let mut out = Vec::with_capacity(bytes.len());
        let mut pos = 0;
        for (start, i) in hits {
            if start < pos {
                continue;
            }
            let (p, replacement) = &self.patterns[i];
            out.extend_from_slice(&bytes[pos..start]);
            out.extend_from_slice(replacement.as_bytes());
            pos = start + p.len();
        }
        out.extend_from_slice(&bytes[pos..]);
        Some(out)
    }
}

/// `value` as it appears between the quotes of a JSON string.
pub(crate) fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_owned()
}

/// What RFC 3986 (section 2.3) leaves unescaped: its unreserved characters, letters,
/// digits and `-._~`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the `application/x-www-form-urlencoded` serializer (WHATWG URL standard) leaves
/// unescaped: letters, digits and `*-._`. Unlike RFC 3986 it keeps `*` and escapes `~`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// `bytes` percent-encoded with `set`, a space written as `+` when `plus_for_space`.
fn percent_encoded(bytes: &[u8], set: &'static AsciiSet, plus_for_space: bool) -> String {
    // The crate yields each escaped byte as its own `%XX` piece, so a space is exactly the
    // piece `%20` (a literal `%20` in the input comes out as `%2520`).
    percent_encode(bytes, set)
        .map(|piece| match piece {
            "%20" if plus_for_space => "+",
            other => other,
        })
        .collect()
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(crate) fn form_encode(bytes: &[u8]) -> String {
    percent_encoded(bytes, FORM, true)
}

/// Every way a server commonly writes `value` percent-encoded: the RFC 3986 and the form
/// character sets (they differ on `*` and `~`), each with a space as `%20` or `+`.
/// Libraries mix the two rules (Go's `QueryEscape` writes the RFC 3986 set with `+`), and
/// four patterns cost little next to a leak.
fn percent_encodings(value: &str) -> [String; 4] {
    let bytes = value.as_bytes();
    [
        percent_encoded(bytes, RFC3986, false),
        percent_encoded(bytes, RFC3986, true),
        percent_encoded(bytes, FORM, false),
        percent_encoded(bytes, FORM, true),
    ]
}

/// The token of `Authorization: Basic`: `user:password` in standard base64 with padding
/// (RFC 7617).
pub(crate) fn basic_token(user: &str, password: &str) -> String {
    BASE64.encode(format!("{user}:{password}"))
}

/// One `{secret:NAME}` occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder {
    /// Byte range of the whole placeholder.
    pub start: usize,
    /// One past its closing brace.
    pub end: usize,
    /// The credential name it names.
    pub name: String,
}

const OPEN: &[u8] = b"{secret:";
/// Longer than any sane credential name; stops a stray `{secret:` swallowing a body.
const MAX_NAME: usize = 128;

/// Every placeholder in `bytes`, in order, or an error for a `{secret:` that does not
/// close into a name.
pub(crate) fn placeholders(bytes: &[u8]) -> Result<Vec<Placeholder>, String> {
    let mut found = Vec::new();
    for start in memmem::find_iter(bytes, OPEN) {
        let rest = &bytes[start + OPEN.len()..];
        let close = rest.iter().take(MAX_NAME + 1).position(|&b| b == b'}');
        let Some(len) = close else {
            return Err(
                "a `{secret:` placeholder has no closing `}` after a credential name".into(),
            );
        };
        let name = String::from_utf8_lossy(&rest[..len]).into_owned();
        found.push(Placeholder {
            start,
            end: start + OPEN.len() + len + 1,
            name,
        });
    }
    Ok(found)
}

/// Whether `text` holds something that would be a placeholder, raw or percent-encoded.
pub(crate) fn mentions_placeholder(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("{secret:") || lower.contains("%7bsecret:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_names_only() {
        let mut s = Secrets::new();
        s.insert("secret_key", "hunter2-value".into());
        let dbg = format!("{s:?}");
        assert!(dbg.contains("secret_key"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn redacts_value_and_its_encodings() {
        let mut s = Secrets::new();
        s.insert("tok", "a b\"c/d&é".into());
        let raw = "x a b\"c/d&é y";
        assert_eq!(s.redact(raw), "x {secret:tok} y");
        let json = format!("{{\"k\":\"{}\"}}", json_escape("a b\"c/d&é"));
        assert_eq!(s.redact(&json), "{\"k\":\"{secret:tok}\"}");
        assert_eq!(s.redact("k=a+b%22c%2Fd%26%C3%A9&z=1"), "k={secret:tok}&z=1");
        assert_eq!(s.redact("?k=a%20b%22c%2Fd%26%C3%A9"), "?k={secret:tok}");
        assert_eq!(s.redact("nothing here"), "nothing here");
    }

    #[test]
    fn longer_secret_wins_over_one_it_contains() {
        let mut s = Secrets::new();
        s.insert("short", "abc".into());
        s.insert("long", "xxabcxx".into());
        assert_eq!(
            s.redact("1 xxabcxx 2 abc"),
            "1 {secret:long} 2 {secret:short}"
        );
    }

    #[test]
    fn overlapping_and_repeated_occurrences() {
        let mut s = Secrets::new();
        s.insert("a", "aa".into());
        s.insert("b", "ab".into());
        assert_eq!(s.redact("aaab aa"), "{secret:a}{secret:b} {secret:a}");
    }

    #[test]
    fn empty_value_redacts_nothing() {
        let mut s = Secrets::new();
        s.insert("empty", String::new());
        assert_eq!(s.redact("abc"), "abc");
    }

    #[test]
    fn extra_encodings_are_redacted() {
        let mut s = Secrets::new();
        s.insert("pw", "open sesame".into());
        s.add_encoding("pw", basic_token("root", "open sesame"));
        let header = format!("Basic {}", basic_token("root", "open sesame"));
        assert_eq!(s.redact(&header), "Basic {secret:pw}");
    }

    #[test]
    fn finds_placeholders() {
        let got = placeholders(b"a {secret:one} b {secret:two_2}").unwrap();
        let names: Vec<_> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["one", "two_2"]);
        assert_eq!((got[0].start, got[0].end), (2, 14));
        assert!(placeholders(b"{secret:never closed").is_err());
        assert!(placeholders(b"{\"secret\": 1}").unwrap().is_empty());
    }
}
