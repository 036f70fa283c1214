//! Record and replay: what a plugin asked for and what it was answered, kept as plain
//! files, and answered again later with no network.
//!
//! Both sides sit at the plugin's edge of the fetcher. A recorded request is the one the
//! plugin wrote, so credentials appear only as the `{secret:NAME}` placeholders the guest
//! is limited to, and the host-added `Authorization` never; a recorded response is the one
//! the plugin received, already redacted. What the plugin itself holds that acts as a
//! credential (a token it was handed in a response, such as a JWT from a login call, and
//! later sends in `Authorization` or `Cookie`) is removed from every file of the recording
//! when it ends.
//!
//! A recording is a folder: `recording.json` (which plugin, when), then per exchange
//! `NNNNNN.json` (the request, and the response's status and headers or the error) and
//! `NNNNNN.body` (the response body, byte for byte). Replay matches method, URL and body
//! exactly; identical requests get their recorded answers in order, the last one again
//! once they run out.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::{FetchError, Method, Request, Response};

/// Where a fetcher's answers come from.
#[derive(Debug, Default)]
pub enum Tape {
    /// The network.
    #[default]
    Live,
    /// The network, every exchange written to a recording.
    Record(Recorder),
    /// A recording; nothing is sent.
    Replay(Replay),
    /// The network until the first request carrying a credential is answered, then
    /// nothing: a connection check (see [`Check`](crate::Check)).
    Check(std::sync::Arc<crate::Check>),
}

/// What replaced a credential the plugin held, in a recording.
pub const REDACTED: &str = "{recording:redacted}";

/// Request headers whose value is a credential when the plugin sets them itself.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Response headers left out of a recording: a session a server opens is the account's.
const DROPPED_RESPONSE_HEADERS: &[&str] = &["set-cookie", "set-cookie2"];

const META: &str = "recording.json";

/// Why a recording cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    /// The folder to record into already holds files.
    #[error(
        "{0} already holds files: record into a new or empty folder (a recording mixed with an older one could not be replayed faithfully)"
    )]
    NotEmpty(PathBuf),
    /// The folder to replay from holds no recording of this plugin.
    #[error(
        "{0} holds no recording ({META} is missing): record one with `infragraph sync PLUGIN --record DIR`; the folder of each plugin is DIR/<plugin>"
    )]
    NoRecording(PathBuf),
    /// A file of a recording cannot be used.
    #[error("{path}: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TapeError + '_ {
    move |source| TapeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `recording.json`: what made the recording.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    plugin: String,
    version: String,
    sha256: String,
    recorded_by: String,
}

/// One exchange as written in `NNNNNN.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Exchange {
    request: RecordedRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<RecordedResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RecordedError>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordedRequest {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// The body when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// The body, base64, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordedResponse {
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
enum RecordedError {
    Timeout(String),
    TooLarge(u64),
    Network(String),
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}

/// Writes the exchanges of one plugin's run into a folder.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    next: AtomicU64,
    /// Credentials the plugin sent that it was handed, to remove at the end.
    held: Mutex<BTreeSet<String>>,
    /// The first write that failed: the recording is then incomplete.
    failed: Mutex<Option<String>>,
}

impl Recorder {
    /// Starts a recording of `plugin` (`version`, `sha256`) in `dir`, created if missing;
    /// it must be empty.
    pub fn create(
        dir: &Path,
        plugin: &str,
        version: &str,
        sha256: &str,
    ) -> Result<Recorder, TapeError> {
        // Owner-only, as the store is: a recording holds the provider's answers.
        infragraph_core::private::create_dir(dir).map_err(io(dir))?;
        if std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            return Err(TapeError::NotEmpty(dir.to_path_buf()));
        }
        let meta = Meta {
            plugin: plugin.into(),
            version: version.into(),
            sha256: sha256.into(),
            recorded_by: format!("infragraph {}", env!("CARGO_PKG_VERSION")),
        };
        let path = dir.join(META);
        let text = serde_json::to_string_pretty(&meta).expect("plain data serialises");
        infragraph_core::private::write_file(&path, (text + "\n").as_bytes()).map_err(io(&path))?;
        Ok(Recorder {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(1),
            held: Mutex::new(BTreeSet::new()),
            failed: Mutex::new(None),
        })
    }

    /// Writes one exchange: `req` as the plugin wrote it, and what it got.
    pub(crate) fn write(&self, req: &Request, got: &Result<Response, FetchError>) {
        let headers = req
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                    && !value.contains("{secret:")
                {
                    self.hold(value);
                    REDACTED.to_string()
                } else {
                    value.clone()
                };
                (name.clone(), value)
            })
            .collect();
        let (body, body_base64) = match std::str::from_utf8(&req.body) {
            _ if req.body.is_empty() => (None, None),
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(BASE64.encode(&req.body))),
        };
        let request = RecordedRequest {
            method: method_name(req.method).into(),
            url: req.url.clone(),
            headers,
            body,
            body_base64,
        };
        let (response, error) = match got {
            Ok(r) => (
                Some(RecordedResponse {
                    status: r.status,
                    headers: r
                        .headers
                        .iter()
                        .filter(|(n, _)| !DROPPED_RESPONSE_HEADERS.contains(&n.as_str()))
                        .cloned()
                        .collect(),
                }),
                None,
            ),
            // The host decides denials again on replay, from the same settings.
            Err(FetchError::Denied(_)) => return,
            Err(e) => (
                None,
                Some(match e {
                    FetchError::Denied(_) => unreachable!("returned above"),
                    FetchError::Timeout(m) => RecordedError::Timeout(m.clone()),
                    FetchError::TooLarge(n) => RecordedError::TooLarge(*n),
                    FetchError::Network(m) => RecordedError::Network(m.clone()),
                }),
            ),
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let exchange = Exchange {
            request,
            response,
            error,
        };
        let json = self.dir.join(format!("{n:06}.json"));
        let text = serde_json::to_string_pretty(&exchange).expect("plain data serialises");
        let mut result = infragraph_core::private::write_file(&json, (text + "\n").as_bytes())
            .map_err(io(&json));
        if let (Ok(()), Ok(r)) = (&result, got) {
            let body = self.dir.join(format!("{n:06}.body"));
            result = infragraph_core::private::write_file(&body, &r.body).map_err(io(&body));
        }
        if let Err(e) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }

    /// Notes a credential the plugin sent: the whole value, and its token after a scheme
    /// (`Bearer <token>`), since that is what the response that handed it over holds.
    fn hold(&self, value: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let value = value.trim();
        if let Some((_, token)) = value.split_once(' ')
            && token.trim().len() >= 8
        {
            held.insert(token.trim().to_string());
        }
        if value.len() >= 8 {
            held.insert(value.to_string());
        }
    }

    /// Ends the recording: removes from every file the credentials the plugin was handed
    /// (they were written before the plugin first sent them). Errors if any write failed.
    pub fn finish(&self) -> Result<(), TapeError> {
        if let Some(e) = self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(TapeError::Bad {
                path: self.dir.clone(),
                why: format!("the recording is incomplete: {e}"),
            });
        }
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        if held.is_empty() {
            return Ok(());
        }
        // Longest first, so a whole header value goes before the token inside it.
        let mut patterns: Vec<_> = held.into_iter().collect();
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let ac = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("literal patterns build");
        let replacements = vec![REDACTED.as_bytes(); patterns.len()];
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if ac.is_match(&bytes) {
                let clean = ac.replace_all_bytes(&bytes, &replacements);
                infragraph_core::private::write_file(&path, &clean).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}

/// Answers one plugin's requests from a recording.
#[derive(Debug)]
pub struct Replay {
    dir: PathBuf,
    answers: Mutex<HashMap<Key, Answers>>,
    /// How many requests had no answer, and the first of them.
    missed: Mutex<(u64, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    method: String,
    url: String,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Answers {
    queue: VecDeque<u64>,
    last: u64,
}

impl Replay {
    /// Opens the recording in `dir`, reading every exchange's request (bodies are read
    /// when asked for).
    pub fn open(dir: &Path) -> Result<Replay, TapeError> {
        let meta_path = dir.join(META);
        if !meta_path.is_file() {
            return Err(TapeError::NoRecording(dir.to_path_buf()));
        }
        let meta: Meta = read_json(&meta_path)?;
        let mut numbered = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(n) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                numbered.push((n, path));
            }
        }
        numbered.sort();
        let mut answers: HashMap<Key, Answers> = HashMap::new();
        for (n, path) in &numbered {
            let exchange: Exchange = read_json(path)?;
            if exchange.response.is_some() == exchange.error.is_some() {
                return Err(TapeError::Bad {
                    path: path.clone(),
                    why: "an exchange holds exactly one of `response` and `error`".into(),
                });
            }
            let key = Key {
                method: exchange.request.method.to_ascii_uppercase(),
                url: exchange.request.url,
                body: request_body(&exchange.request.body, &exchange.request.body_base64).map_err(
                    |why| TapeError::Bad {
                        path: path.clone(),
                        why,
                    },
                )?,
            };
            let a = answers.entry(key).or_insert(Answers {
                queue: VecDeque::new(),
                last: *n,
            });
            a.queue.push_back(*n);
            a.last = *n;
        }
        tracing::info!(plugin = %meta.plugin, version = %meta.version, exchanges = numbered.len(), dir = %dir.display(), "replaying a recording");
        Ok(Replay {
            dir: dir.to_path_buf(),
            answers: Mutex::new(answers),
            missed: Mutex::new((0, None)),
        })
    }

    /// The recorded answer to `req`, or why there is none.
    pub(crate) fn answer(&self, req: &Request) -> Result<Response, FetchError> {
        let key = Key {
            method: method_name(req.method).into(),
            url: req.url.clone(),
            body: req.body.clone(),
        };
        let n = {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            answers
                .get_mut(&key)
                .map(|a| a.queue.pop_front().unwrap_or(a.last))
        };
        let Some(n) = n else {
            let what = format!("{} {}", key.method, req.url);
            let mut missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
            missed.0 += 1;
            missed.1.get_or_insert_with(|| what.clone());
            return Err(FetchError::Denied(format!(
                "replay: {} holds no answer for {what}{}",
                self.dir.display(),
                if req.body.is_empty() {
                    String::new()
                } else {
                    " with this body".into()
                }
            )));
        };
        self.load(n)
            .unwrap_or_else(|e| Err(FetchError::Denied(format!("replay: {e}"))))
    }

    /// Exchange `n`: its response, or the error the live run got.
    fn load(&self, n: u64) -> Result<Result<Response, FetchError>, TapeError> {
        let path = self.dir.join(format!("{n:06}.json"));
        let exchange: Exchange = read_json(&path)?;
        Ok(match (exchange.response, exchange.error) {
            (Some(r), _) => {
                let body_path = self.dir.join(format!("{n:06}.body"));
                let body = match std::fs::read(&body_path) {
                    Ok(body) => body,
                    // A response with no body may be recorded without the file.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(io(&body_path)(e)),
                };
                Ok(Response {
                    status: r.status,
                    headers: r.headers,
                    body,
                })
            }
            (None, Some(RecordedError::Timeout(m))) => Err(FetchError::Timeout(m)),
            (None, Some(RecordedError::TooLarge(n))) => Err(FetchError::TooLarge(n)),
            (None, Some(RecordedError::Network(m))) => Err(FetchError::Network(m)),
            (None, None) => unreachable!("checked when opened"),
        })
    }

    /// Why the run cannot count as a faithful replay: the requests the recording had no
    /// answer for, the first named.
    pub fn unanswered(&self) -> Option<String> {
        let missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
        let first = missed.1.as_ref()?;
        let more = match missed.0 {
            1 => String::new(),
            2 => " and 1 later request".into(),
            n => format!(" and {} later requests", n - 1),
        };
        Some(format!(
            "the recording in {} holds no answer for {first}{more}: it was recorded with \
             other settings or by another version of the plugin; record it again with --record",
            self.dir.display()
        ))
    }
}

fn request_body(text: &Option<String>, b64: &Option<String>) -> Result<Vec<u8>, String> {
    match (text, b64) {
        (Some(t), None) => Ok(t.clone().into_bytes()),
        (None, Some(b)) => BASE64
            .decode(b)
            .map_err(|e| format!("`body_base64` is not base64: {e}")),
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err("a request holds `body` or `body_base64`, not both".into()),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TapeError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| TapeError::Bad {
        path: path.to_path_buf(),
        why: format!("not a recording file: {e}"),
    })
}
