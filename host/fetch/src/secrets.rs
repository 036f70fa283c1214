//! Credential values, the forms a provider may echo them in, and scrubbing.
//!
//! Every value is scrubbed as written and in each form below, matched without regard to
//! ASCII case (a provider that upper-cases a key, or writes hex in capitals, gives it away
//! as surely): JSON-escaped (as serde, Go, Python and PHP write strings), percent-encoded
//! (RFC 3986 and form rules, a space as `%20` or `+`), hex, and base64 (standard and
//! URL-safe, with and without padding, and inside a longer base64 text at each of the
//! three byte alignments, where its first and last characters depend on its neighbours
//! and are left out). One pass over the text lower-cased finds them all (see
//! [`Scrubber`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE as BASE64_URL};
use memchr::memmem;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

use crate::ShortSecret;

/// The shortest credential value accepted, in bytes. Real API keys, tokens and passwords
/// are far longer; eight bytes is where scrubbing stops matching ordinary words and
/// identifiers by chance.
pub const MIN_SECRET_BYTES: usize = 8;

/// What a text cut by [`Secrets::redact_capped`] ends with.
pub const CUT_MARKER: &str = "… [cut]";

/// Resolved credential values, by credential name.
///
/// The host reads them from the environment (or files the operator names) and hands them
/// here; the guest only ever writes placeholders. `Debug` prints the names, never a value.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    /// Why a credential has no value, by name, for the error a request needing it gets:
    /// only the host knows where it would have come from.
    absent: BTreeMap<String, String>,
    /// Where a credential's value came from, by name, when the operator named the source
    /// (a named connection's `{ env = .. }` or `{ file = .. }`): what an error telling the
    /// operator to check it should name, rather than the manifest's variable.
    origins: BTreeMap<String, String>,
    /// Encodings the fetcher adds once it knows how a value is used (basic auth).
    extra: Vec<(String, String)>,
    /// Finds every form of every value; `None` while there are no values.
    scrubber: Option<Scrubber>,
}

/// The searcher over every form of every value, and what each pattern becomes.
///
/// Matching ignores ASCII case by matching lower-cased patterns against the text
/// lower-cased a chunk at a time, rather than by an automaton that ignores case itself:
/// that one cannot use a prefilter (JSON is full of the letters the patterns start with
/// in either case) and had to be a DFA, 160 ms per 64 MiB of a provider's listing and
/// 1.2 ms to build for each run (issue 18).
#[derive(Clone)]
struct Scrubber {
    finder: Finder,
    /// By pattern index: `{secret:NAME}`.
    replacements: Vec<String>,
    /// The longest pattern, in bytes: how far past a cut a secret may reach.
    longest: usize,
    /// The shortest: a text shorter holds none.
    shortest: usize,
}

/// What finds the patterns: Teddy, a SIMD search of a few dozen patterns at once, run
/// whatever the patterns are; an Aho-Corasick automaton only where Teddy cannot be built
/// (too many patterns, or no SIMD on this CPU). The automaton's own choice was Teddy only
/// for some values: for most it looked for two bytes it deemed rare and walked the
/// automaton from every place they occurred, and a UUID-shaped key (as Scaleway's secret
/// keys are) is made of hex digits and dashes, which the UUIDs that fill every listing are
/// made of too. Scanning a Scaleway listing for one UUID-shaped key's forms took 6 ms per
/// MiB that way and 0.16 ms with Teddy, and for a GitHub-style token 8 ms against 0.18.
#[derive(Clone)]
enum Finder {
    Teddy(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Finder {
    /// The leftmost-longest matches in `hay`, in order.
    fn find_iter<'h>(
        &'h self,
        hay: &'h [u8],
    ) -> Box<dyn Iterator<Item = aho_corasick::Match> + 'h> {
        match self {
            Finder::Teddy(s) => Box::new(s.find_iter(hay)),
            Finder::Automaton(a) => Box::new(a.find_iter(hay)),
        }
    }
}

/// Bytes lower-cased and searched at a time: a few of a large body's pages, however large
/// the body, held once more only this much.
const CHUNK: usize = 64 << 10;

impl Scrubber {
    /// Calls `each(start, end, pattern)` for every secret in `hay`, leftmost first and at
    /// each place the longest, as one search of the whole text would, until it returns
    /// false.
    fn each_match(&self, hay: &[u8], mut each: impl FnMut(usize, usize, usize) -> bool) {
        if hay.len() < self.shortest {
            return;
        }
        let mut lower = Vec::with_capacity(hay.len().min(CHUNK + self.longest));
        let mut at = 0;
        while at < hay.len() {
            // A match that starts before `chunk_end` ends inside the window, and only those
            // are taken; the next window starts where the last ended, as a search of the
            // whole text would resume there.
            let chunk_end = (at + CHUNK).min(hay.len());
            let window_end = (chunk_end + self.longest).min(hay.len());
            lower.clear();
            lower.extend_from_slice(&hay[at..window_end]);
            lower.make_ascii_lowercase();
            let mut next = chunk_end;
            for m in self.finder.find_iter(&lower) {
                let (start, end) = (at + m.start(), at + m.end());
                if start >= chunk_end {
                    break;
                }
                if !each(start, end, m.pattern().as_usize()) {
                    return;
                }
                next = next.max(end);
            }
            at = next;
        }
    }
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

    /// Sets the value of credential `name`, replacing any earlier one. A value shorter
    /// than [`MIN_SECRET_BYTES`] is refused: every occurrence of a secret is scrubbed from
    /// what the plugin and the log see, and scrubbing a value that short rewrites ordinary
    /// text (a one-letter secret turned `"api_keys"` in a response into
    /// `"api_{secret:NAME}eys"`, and the listing no longer parsed).
    pub fn insert(&mut self, name: &str, value: String) -> Result<(), ShortSecret> {
        if value.len() < MIN_SECRET_BYTES {
            return Err(ShortSecret {
                credential: name.to_owned(),
            });
        }
        self.values.insert(name.to_owned(), value);
        self.rebuild();
        Ok(())
    }

    /// Records that credential `name` has no value, and `why` (what to set, never a
    /// value): a request that needs it is refused with that text.
    pub fn mark_absent(&mut self, name: &str, why: impl Into<String>) {
        self.absent.insert(name.to_owned(), why.into());
    }

    /// Records where the value of credential `name` came from, as the operator should be
    /// told it (`the file /run/secrets/key`): never a value.
    pub fn note_origin(&mut self, name: &str, origin: impl Into<String>) {
        self.origins.insert(name.to_owned(), origin.into());
    }

    /// Where the value of credential `name` came from, when the host noted it.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.origins.get(name).map(String::as_str)
    }

    /// Why credential `name` has no value, when the host said.
    pub(crate) fn why_absent(&self, name: &str) -> Option<&str> {
        self.absent.get(name).map(String::as_str)
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
        let mut patterns: Vec<String> = Vec::new();
        let mut replacements: Vec<String> = Vec::new();
        // Matching ignores ASCII case, so forms equal but for case are one pattern.
        let mut seen: HashSet<String> = HashSet::new();
        let mut add = |name: &str, p: String| {
            if !p.is_empty() && seen.insert(p.to_ascii_lowercase()) {
                patterns.push(p);
                replacements.push(format!("{{secret:{name}}}"));
            }
        };
        for (name, value) in &self.values {
            for form in forms(value) {
                add(name, form);
            }
        }
        for (name, encoded) in &self.extra {
            add(name, encoded.clone());
        }
        if patterns.is_empty() {
            self.scrubber = None;
            return;
        }
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let shortest = patterns.iter().map(String::len).min().unwrap_or(0);
        // Lower-cased to match the text lower-cased (see `Scrubber`): ASCII case only, so
        // every offset in the text stays where it was.
        let lower: Vec<String> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
        let teddy = aho_corasick::packed::Config::new()
            // At each place the longest form wins, so a value that contains another, or
            // a padded base64 form that contains an unpadded one, is replaced whole.
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(&lower)
            .build();
        let finder = match teddy {
            Some(searcher) => Finder::Teddy(searcher),
            None => Finder::Automaton(
                AhoCorasick::builder()
                    // Built for every run: the contiguous NFA builds in a tenth of a DFA's
                    // time.
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&lower)
                    // Only an automaton past billions of states fails to build; a few
                    // dozen patterns per credential are far from that.
                    .expect("the scrubbing automaton builds"),
            ),
        };
        self.scrubber = Some(Scrubber {
            finder,
            replacements,
            longest,
            shortest,
        });
    }

    /// The length in bytes of the longest form of any secret: how far past a cut a
    /// secret that starts before it may reach. 0 without secrets.
    pub fn longest_form(&self) -> usize {
        self.scrubber.as_ref().map_or(0, |s| s.longest)
    }

    /// `text` with every secret value, in any of the forms the module lists and in any
    /// ASCII case, replaced by `{secret:NAME}`.
    pub fn redact(&self, text: &str) -> String {
        match self.redact_bytes(text.as_bytes()) {
            None => text.to_owned(),
            // Patterns are whole UTF-8 strings and UTF-8 is self-synchronising, so a match
            // never splits a character.
            Some(bytes) => String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// [`Secrets::redact`], at most `max` bytes of it (cut on a character boundary and
    /// marked with [`CUT_MARKER`]). Only the head of a long text is searched, so a huge
    /// text costs no more than a short one, and a secret that straddles the cut is
    /// replaced whole before cutting, never left half visible.
    pub fn redact_capped(&self, text: &str, max: usize) -> String {
        // Every secret that starts before `max` ends inside the window.
        let reach = max.saturating_add(self.longest_form());
        let window = &text[..text.floor_char_boundary(reach)];
        let mut out = String::with_capacity(window.len().min(max));
        let mut pos = 0;
        if let Some(s) = &self.scrubber {
            s.each_match(window.as_bytes(), |start, end, pattern| {
                if start >= max {
                    return false;
                }
                out.push_str(&window[pos..start]);
                out.push_str(&s.replacements[pattern]);
                pos = end;
                true
            });
        }
        // Past `max` only whole replacements were taken: the rest of the window may hold
        // the first bytes of a secret that runs past it.
        if pos < max {
            out.push_str(&text[pos..text.floor_char_boundary(max)]);
        }
        let cut = out.len() > max || pos.max(max) < text.len();
        if cut {
            out.truncate(out.floor_char_boundary(max));
            out.push_str(CUT_MARKER);
        }
        out
    }

    /// `bytes` with every secret replaced, or `None` when none occurs (the usual case,
    /// which then costs one pass of the automaton and no copy).
    pub(crate) fn redact_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let s = self.scrubber.as_ref()?;
        let mut out: Option<Vec<u8>> = None;
        let mut pos = 0;
        s.each_match(bytes, |start, end, pattern| {
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[pos..start]);
            out.extend_from_slice(s.replacements[pattern].as_bytes());
            pos = end;
            true
        });
        let mut out = out?;
        out.extend_from_slice(&bytes[pos..]);
        Some(out)
    }
}

/// Every form of `value` that gives it away: itself, JSON-escaped, percent-encoded, hex
/// and base64 (see the module docs).
fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![value.to_owned()];
    out.extend(json_escapes(value));
    out.extend(percent_encodings(value));
    out.push(hex::encode(bytes));
    for engine in [&BASE64, &BASE64_URL] {
        let whole = engine.encode(bytes);
        out.push(whole.trim_end_matches('=').to_owned());
        out.push(whole);
        // The value `k` bytes into a longer text: the characters that hold only its bits
        // are the same whatever surrounds it. Its first character also holds bits of the
        // byte before, its last of the byte after, so both are left out.
        for k in 0..3 {
            let mut shifted = vec![0u8; k];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            let (first, end) = ((8 * k).div_ceil(6), 8 * (k + bytes.len()) / 6);
            if first < end {
                out.push(encoded[first..end].to_owned());
            }
        }
    }
    out
}

/// `value` JSON-escaped as common serializers write it: serde's minimal escaping, and
/// with `/` as `\/` (PHP, some Java), with every non-ASCII character as `\uXXXX`
/// (Python's default), and with `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX` (Go's
/// default), in every combination.
fn json_escapes(value: &str) -> Vec<String> {
    let minimal = json_escape(value);
    let mut out = Vec::with_capacity(8);
    for variant in 0..8u8 {
        let (slash, ascii, html) = (variant & 1 != 0, variant & 2 != 0, variant & 4 != 0);
        let mut s = String::with_capacity(minimal.len());
        let mut chars = minimal.chars();
        while let Some(c) = chars.next() {
            match c {
                // An escape serde wrote (`\"`, `\\`, `\n`, `\u001f`): kept as is.
                '\\' => {
                    s.push(c);
                    s.extend(chars.next());
                }
                '/' if slash => s.push_str("\\/"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if html => push_u_escapes(&mut s, c),
                c if ascii && !c.is_ascii() => push_u_escapes(&mut s, c),
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// `c` as JSON `\uXXXX` escapes (a surrogate pair beyond the BMP).
fn push_u_escapes(s: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        s.push_str(&format!("\\u{unit:04x}"));
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
/// character sets (they differ on `*` and `~`), and every byte but letters and digits
/// escaped (as strict encoders do), each with a space as `%20` or `+`. Libraries mix the
/// rules (Go's `QueryEscape` writes the RFC 3986 set with `+`), and six patterns cost
/// little next to a leak. Escapes are matched in either case (`%2F`, `%2f`).
fn percent_encodings(value: &str) -> [String; 6] {
    let bytes = value.as_bytes();
    [
        percent_encoded(bytes, RFC3986, false),
        percent_encoded(bytes, RFC3986, true),
        percent_encoded(bytes, FORM, false),
        percent_encoded(bytes, FORM, true),
        percent_encoded(bytes, NON_ALPHANUMERIC, false),
        percent_encoded(bytes, NON_ALPHANUMERIC, true),
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
        s.insert("secret_key", "hunter2-value".into()).unwrap();
        let dbg = format!("{s:?}");
        assert!(dbg.contains("secret_key"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn redacts_value_and_its_encodings() {
        let mut s = Secrets::new();
        s.insert("tok", "a b\"c/d&é".into()).unwrap();
        let raw = "x a b\"c/d&é y";
        assert_eq!(s.redact(raw), "x {secret:tok} y");
        let json = format!("{{\"k\":\"{}\"}}", json_escape("a b\"c/d&é"));
        assert_eq!(s.redact(&json), "{\"k\":\"{secret:tok}\"}");
        assert_eq!(s.redact("k=a+b%22c%2Fd%26%C3%A9&z=1"), "k={secret:tok}&z=1");
        assert_eq!(s.redact("?k=a%20b%22c%2Fd%26%C3%A9"), "?k={secret:tok}");
        assert_eq!(s.redact("nothing here"), "nothing here");
    }

    /// The text is searched a chunk at a time; what is replaced must be what one search
    /// of the whole text, ignoring case, replaces: secrets (and ones containing others)
    /// in any case, across every chunk boundary and at both ends of the text.
    #[test]
    fn chunked_search_replaces_what_one_whole_search_does() {
        let mut s = Secrets::new();
        s.insert("short", "AbcdEfgh".into()).unwrap();
        s.insert("long", "xxabcdefghxx".into()).unwrap();
        s.insert("other", "Zq9-Zq9-Zq9".into()).unwrap();
        let sc = s.scrubber.as_ref().unwrap();
        let patterns: Vec<&str> = ["AbcdEfgh", "xxabcdefghxx", "Zq9-Zq9-Zq9"].into();
        let oracle = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .unwrap();
        let names = ["short", "long", "other"];
        let mut text = String::new();
        let mut n = 0usize;
        // Secrets near 0, CHUNK, 2*CHUNK, 3*CHUNK (every offset within 16 bytes of the
        // boundary), in alternating cases, with filler between.
        for boundary in [0, CHUNK, 2 * CHUNK, 3 * CHUNK] {
            for delta in 0..16 {
                let p = patterns[n % 3];
                let p = if n.is_multiple_of(2) {
                    p.to_ascii_uppercase()
                } else {
                    p.to_ascii_lowercase()
                };
                let target = (boundary + delta).saturating_sub(p.len() / 2);
                while text.len() < target {
                    text.push(if text.len().is_multiple_of(7) {
                        'a'
                    } else {
                        '.'
                    });
                }
                text.push_str(&p);
                n += 1;
            }
        }
        text.push_str("XXABCDEFGHXX");
        let mut expected = String::new();
        let mut pos = 0;
        for m in oracle.find_iter(&text) {
            expected.push_str(&text[pos..m.start()]);
            expected.push_str(&format!("{{secret:{}}}", names[m.pattern().as_usize()]));
            pos = m.end();
        }
        expected.push_str(&text[pos..]);
        assert!(text.len() > 3 * CHUNK && sc.shortest == 8);
        assert_eq!(s.redact(&text), expected);
        assert!(!s.redact(&text).to_ascii_lowercase().contains("abcdefgh"));
        assert_eq!(s.redact("AbcdEfg"), "AbcdEfg", "shorter than every pattern");
    }

    /// A UUID-shaped key (Scaleway's secret keys are) in a text made of UUIDs, as every
    /// listing is, in several of its forms: each is replaced as one search of the whole
    /// text for every form replaces them, and the SIMD searcher does it, not the automaton
    /// (which walked from nearly every byte of such a text).
    #[test]
    fn a_uuid_key_among_uuids_is_scrubbed_by_the_simd_searcher() {
        let key = "0f3c9a2e-1b7d-4e55-9a61-7d2c8b4e1f90";
        let mut s = Secrets::new();
        s.insert("secret_key", key.into()).unwrap();
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            let sc = s.scrubber.as_ref().unwrap();
            assert!(matches!(sc.finder, Finder::Teddy(_)), "Teddy builds here");
        }
        let forms = forms(key);
        let mut text = String::new();
        let mut x: u64 = 42;
        for i in 0..20_000usize {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let h = format!("{x:016x}{:016x}", x.rotate_left(17));
            text.push_str(&format!(
                "{{\"id\":\"{}-{}-4{}-a{}-{}\"}},",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            ));
            if i % 997 == 0 {
                let form = &forms[i / 997 % forms.len()];
                text.push_str(&if i % 2 == 0 {
                    form.to_ascii_uppercase()
                } else {
                    form.clone()
                });
            }
        }
        let oracle = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&forms)
            .unwrap();
        let expected = oracle.replace_all(&text, &vec!["{secret:secret_key}"; forms.len()]);
        assert!(expected.matches("{secret:secret_key}").count() >= 20);
        assert_eq!(s.redact(&text), expected);
    }

    #[test]
    fn longer_secret_wins_over_one_it_contains() {
        let mut s = Secrets::new();
        s.insert("short", "abcdefgh".into()).unwrap();
        s.insert("long", "xxabcdefghxx".into()).unwrap();
        assert_eq!(
            s.redact("1 xxabcdefghxx 2 abcdefgh"),
            "1 {secret:long} 2 {secret:short}"
        );
    }

    #[test]
    fn overlapping_and_repeated_occurrences() {
        let mut s = Secrets::new();
        s.insert("a", "aaaaaaaa".into()).unwrap();
        s.insert("b", "aaaaaaab".into()).unwrap();
        assert_eq!(
            s.redact("aaaaaaaaaaaaaaab aaaaaaaa"),
            "{secret:a}{secret:b} {secret:a}"
        );
    }

    /// Issue 20, point 7: a one-letter secret turned `"api_keys"` into
    /// `"api_{secret:secret_key}eys"` and the listing no longer parsed.
    #[test]
    fn a_short_secret_is_refused_naming_the_credential_not_the_value() {
        let mut s = Secrets::new();
        for short in ["", "Q", "Zx7#Q9!"] {
            let err = s.insert("secret_key", short.into()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("\"secret_key\""), "{text}");
            assert!(text.contains("shorter than 8 bytes"), "{text}");
            assert!(text.contains("rewrite ordinary text"), "{text}");
            if !short.is_empty() {
                assert!(!text.contains(short), "the value is in the error: {text}");
            }
        }
        assert_eq!(s.redact("{\"api_keys\": []}"), "{\"api_keys\": []}");
        s.insert("secret_key", "eight888".into()).unwrap();
        assert_eq!(
            s.redact("{\"api_keys\": [\"eight888\"]}"),
            "{\"api_keys\": [\"{secret:secret_key}\"]}"
        );
    }

    /// A value holding bytes that standard and URL-safe base64 write differently, a
    /// slash, an ampersand and a non-ASCII letter: every family of forms differs from the
    /// value itself.
    const ODD: &str = "tok?>>~ÿ/é&-4711-xyz";

    fn odd() -> Secrets {
        let mut s = Secrets::new();
        s.insert("tok", ODD.into()).unwrap();
        s
    }

    /// Whether `text` still gives `secret` away: as written in any case, or decoded from
    /// any run of hex or base64 characters at any offset. What a guest could recover.
    pub(crate) fn gives_away(text: &str, secret: &str) -> bool {
        let needle = secret.as_bytes();
        let found = |hay: &[u8]| memmem::find(hay, needle).is_some();
        if text
            .to_ascii_lowercase()
            .contains(&secret.to_ascii_lowercase())
        {
            return true;
        }
        let runs = |keep: fn(u8) -> bool| -> Vec<Vec<u8>> {
            text.as_bytes()
                .split(|&b| !keep(b))
                .filter(|r| r.len() >= 4)
                .map(<[u8]>::to_vec)
                .collect()
        };
        for run in runs(|b| b.is_ascii_hexdigit()) {
            for off in 0..2 {
                let even = &run[off..off + (run.len() - off) / 2 * 2];
                if hex::decode(even).is_ok_and(|d| found(&d)) {
                    return true;
                }
            }
        }
        let b64 = |b: u8| b.is_ascii_alphanumeric() || b"+/-_".contains(&b);
        for run in runs(b64) {
            let std: Vec<u8> = run
                .iter()
                .map(|&b| match b {
                    b'-' => b'+',
                    b'_' => b'/',
                    b => b,
                })
                .collect();
            // Any tail a decoder would take: a lone last character holds no whole byte.
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            for off in 0..4.min(std.len()) {
                let tail = &std[off..];
                let tail = &tail[..tail.len() - usize::from(tail.len() % 4 == 1)];
                if lenient.decode(tail).is_ok_and(|d| found(&d)) {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn base64_at_every_alignment_in_both_alphabets_padded_or_not_is_scrubbed() {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let s = odd();
        type Encode = fn(&[u8]) -> String;
        let engines: [(&str, Encode); 4] = [
            ("standard", |b| BASE64.encode(b)),
            ("standard unpadded", |b| STANDARD_NO_PAD.encode(b)),
            ("url-safe", |b| BASE64_URL.encode(b)),
            ("url-safe unpadded", |b| URL_SAFE_NO_PAD.encode(b)),
        ];
        for (name, engine) in engines {
            for before in 0..4 {
                for after in 0..4 {
                    let mut raw = b"{\"k\":".repeat(before)[..before].to_vec();
                    raw.extend_from_slice(ODD.as_bytes());
                    raw.extend_from_slice(&b"}\x00\xff"[..after.min(3)]);
                    let echoed = format!("{{\"blob\":\"{}\"}}", engine(&raw));
                    assert!(
                        gives_away(&echoed, ODD),
                        "the check sees {name} {before}/{after}"
                    );
                    let scrubbed = s.redact(&echoed);
                    assert!(
                        !gives_away(&scrubbed, ODD) && scrubbed.contains("{secret:tok}"),
                        "{name}, {before} bytes before, {after} after: {scrubbed}"
                    );
                }
            }
        }
    }

    #[test]
    fn any_case_and_hex_in_either_case_are_scrubbed() {
        let s = odd();
        for echoed in [
            ODD.to_ascii_uppercase(),
            ODD.to_ascii_lowercase(),
            hex::encode(ODD),
            hex::encode_upper(ODD),
            format!("0x{}", hex::encode(format!("ab{ODD}c"))),
        ] {
            assert!(gives_away(&echoed, ODD), "the check sees {echoed}");
            let scrubbed = s.redact(&echoed);
            assert!(!gives_away(&scrubbed, ODD), "{echoed} -> {scrubbed}");
        }
    }

    #[test]
    fn json_as_serde_go_python_and_php_write_it_is_scrubbed() {
        let s = odd();
        let python = r"tok?>>~\u00ff/\u00e9&-4711-xyz";
        let go = r"tok?\u003e\u003e~ÿ/é\u0026-4711-xyz";
        let php = r"tok?>>~\u00ff\/\u00e9&-4711-xyz";
        for escaped in [json_escape(ODD).as_str(), python, go, php] {
            let body = format!("{{\"echo\":\"{escaped}\"}}");
            let decoded: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(decoded["echo"], ODD, "a faithful escape: {escaped}");
            assert_eq!(s.redact(&body), "{\"echo\":\"{secret:tok}\"}", "{escaped}");
        }
        // Lower- and upper-case percent escapes alike.
        assert_eq!(
            s.redact("?t=tok%3f%3e%3e~%c3%bf%2f%c3%a9%26-4711-xyz"),
            "?t={secret:tok}"
        );
    }

    #[test]
    fn a_capped_text_never_shows_part_of_a_secret_at_the_cut() {
        let s = odd();
        for at in 90..110 {
            let text = format!("{}{ODD}{}", "x".repeat(at), "y".repeat(1000));
            let capped = s.redact_capped(&text, 100);
            assert!(capped.ends_with(CUT_MARKER), "{capped}");
            let kept = &capped[..capped.len() - CUT_MARKER.len()];
            assert!(kept.len() <= 100, "{}", kept.len());
            assert!(
                !kept.contains("tok?"),
                "a prefix of the secret at {at}: {kept}"
            );
        }
        assert_eq!(
            s.redact_capped(&format!("a {ODD} b"), 100),
            "a {secret:tok} b"
        );
        assert_eq!(s.redact_capped("short", 100), "short");
        let huge = "z".repeat(100 << 20);
        assert_eq!(s.redact_capped(&huge, 8).len(), 8 + CUT_MARKER.len());
        assert_eq!(
            Secrets::new().redact_capped("abcdef", 3),
            format!("abc{CUT_MARKER}")
        );
    }

    #[test]
    fn extra_encodings_are_redacted() {
        let mut s = Secrets::new();
        s.insert("pw", "open sesame".into()).unwrap();
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
