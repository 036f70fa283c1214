//! Running a plugin's `sync` natively, in its own unit tests, without the host and without
//! the API: a mock host answers each request from canned responses and keeps what the
//! plugin emits, so a test asserts the graph a response gives.
//!
//! ```
//! use infragraph_sdk::testing::MockHost;
//! # use infragraph_sdk::*;
//! # struct Acme;
//! # impl Ingestor for Acme {
//! #     fn manifest() -> Manifest { Manifest::new("acme", "0.1.0", "") }
//! #     fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
//! #         cx.scope("AcmeTenant", "t1");
//! #         let r = cx.fetch(Request::get(format!("{}/users", config.require_text("api_url")?)))?;
//! #         for u in r.json::<Vec<String>>()? { cx.node("AcmeUser", u).emit(); }
//! #         Ok(Summary::new("ok"))
//! #     }
//! # }
//! let synced = MockHost::new()
//!     .config("api_url", "https://api.acme.test")
//!     .respond("https://api.acme.test/users", 200, r#"["u1", "u2"]"#)
//!     .run::<Acme>();
//! assert!(synced.result.is_ok());
//! assert_eq!(synced.count("AcmeUser"), 2);
//! assert_eq!(synced.requests, ["GET https://api.acme.test/users"]);
//! ```
//!
//! Requests are matched by method and exact URL (query included); identical requests get
//! the responses added for them in order, the last one again once they run out (a 429 then
//! a 200, say). A request nothing answers gets a 404 whose body says so, and is listed in
//! [`Synced::unanswered`]. Credentials are not substituted: a request carries the
//! `{secret:NAME}` placeholders the plugin wrote, as the host receives it.
//!
//! [`MockHost::replay`] takes its responses from a recording the host made of a real sync
//! (`infragraph sync <plugin> --record DIR`): the plugin's own tests then run against
//! what the real API answered, natively, with no host, network or credential.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::host::fake::{FakeHost, Responder};
use crate::wit::{http, types};
use crate::{Config, Context, Ingestor, Summary, SyncError, Value};

/// A host for a native test: config values, canned responses, stored state.
#[derive(Default, Debug)]
pub struct MockHost {
    config: Vec<(String, types::ConfigValue)>,
    responses: Vec<Canned>,
}

/// One canned response and the request it answers.
#[derive(Debug)]
struct Canned {
    method: String,
    url: String,
    response: http::Response,
}

/// A node the plugin emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its label.
    pub label: String,
    /// Its key.
    pub id: String,
    /// Its properties (a property emitted as `Null` is absent).
    pub props: BTreeMap<String, Value>,
}

/// A relationship the plugin emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Its type.
    pub rel_type: String,
    /// Its start: (label, key, value).
    pub from: (String, String, String),
    /// Its end: (label, key, value).
    pub to: (String, String, String),
    /// Its properties.
    pub props: BTreeMap<String, Value>,
}

/// What a sync under a [`MockHost`] did.
#[derive(Debug)]
pub struct Synced {
    /// What `sync` returned.
    pub result: Result<Summary, SyncError>,
    /// The scope it declared: (label, id).
    pub scope: Option<(String, String)>,
    /// Every node emitted, in order (sent only after `sync` returned `Ok`, as the host
    /// receives them, unless flushed earlier).
    pub nodes: Vec<Node>,
    /// Every relationship emitted, in order.
    pub edges: Vec<Edge>,
    /// Each request, as `METHOD URL`, in the order asked.
    pub requests: Vec<String>,
    /// Requests no canned response answered.
    pub unanswered: Vec<String>,
    /// Labels marked incomplete, with the reason.
    pub incomplete: Vec<(String, String)>,
    /// Log lines.
    pub logs: Vec<String>,
}

impl Synced {
    /// The node (`label`, `id`), if emitted.
    pub fn node(&self, label: &str, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.label == label && n.id == id)
    }

    /// How many nodes of `label` were emitted.
    pub fn count(&self, label: &str) -> usize {
        self.nodes.iter().filter(|n| n.label == label).count()
    }

    /// The relationships of type `rel_type`.
    pub fn edges_of(&self, rel_type: &str) -> Vec<&Edge> {
        self.edges
            .iter()
            .filter(|e| e.rel_type == rel_type)
            .collect()
    }
}

impl MockHost {
    /// A host with no config and no responses.
    pub fn new() -> MockHost {
        MockHost::default()
    }

    /// Sets config key `key` to `value` (what the host resolves from the operator's
    /// settings and the manifest's defaults).
    pub fn config(mut self, key: &str, value: &str) -> MockHost {
        self.config
            .push((key.into(), types::ConfigValue::Text(value.into())));
        self
    }

    /// Adds the responses of a recording made by `infragraph sync <plugin> --record DIR`:
    /// `dir` is the plugin's folder in it (`DIR/<plugin>`), holding `recording.json` and
    /// a `NNNNNN.json` and `NNNNNN.body` per exchange. Exchanges that ended in a network
    /// error are left out (the request goes unanswered). Panics, naming the file, on a
    /// folder that is not such a recording: this is for tests.
    pub fn replay(mut self, dir: impl AsRef<std::path::Path>) -> MockHost {
        let dir = dir.as_ref();
        let fail = |path: &std::path::Path, why: &dyn std::fmt::Display| -> ! {
            panic!("MockHost::replay: {}: {why}", path.display())
        };
        if !dir.join("recording.json").is_file() {
            fail(
                dir,
                &"no recording.json: record with `infragraph sync <plugin> --record DIR` \
                  and give DIR/<plugin>",
            );
        }
        let mut exchanges: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| fail(dir, &e))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_stem()
                        .is_some_and(|s| s.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        exchanges.sort();
        for path in exchanges {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&path, &e));
            let x: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| fail(&path, &e));
            let Some(response) = x.get("response") else {
                continue;
            };
            let field = |v: &serde_json::Value, k: &str| -> String {
                v.get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_else(|| fail(&path, &format!("no text {k:?}")))
                    .to_string()
            };
            let request = x
                .get("request")
                .unwrap_or_else(|| fail(&path, &"no request"));
            let status = response
                .get("status")
                .and_then(serde_json::Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or_else(|| fail(&path, &"no status"));
            let headers: Vec<(String, String)> = response
                .get("headers")
                .map(|h| serde_json::from_value(h.clone()).unwrap_or_else(|e| fail(&path, &e)))
                .unwrap_or_default();
            let body_path = path.with_extension("body");
            let body = std::fs::read(&body_path).unwrap_or_else(|e| fail(&body_path, &e));
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            self = self.respond_to(
                &field(request, "method"),
                &field(request, "url"),
                status,
                &headers,
                body,
            );
        }
        self
    }

    /// Answers `GET url` with `status` and a JSON `body`.
    pub fn respond(self, url: &str, status: u16, body: impl Into<Vec<u8>>) -> MockHost {
        self.respond_to(
            "GET",
            url,
            status,
            &[("content-type", "application/json")],
            body,
        )
    }

    /// Answers `method url` with `status`, `headers` and `body`.
    pub fn respond_to(
        mut self,
        method: &str,
        url: &str,
        status: u16,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> MockHost {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        self.responses.push(Canned {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            response: http::Response {
                status,
                headers,
                body: body.into(),
            },
        });
        self
    }

    /// Runs `I`'s `sync` against this host, natively.
    pub fn run<I: Ingestor>(self) -> Synced {
        let responses = self.responses;
        // (requests, unanswered), as the responder sees them.
        let seen: Rc<RefCell<(Vec<String>, Vec<String>)>> = Rc::default();
        let log = seen.clone();
        let respond: Responder = Box::new(move |r: &http::Request| {
            let method = method_name(&r.method);
            let line = format!("{method} {}", r.url);
            let mut log = log.borrow_mut();
            // The n-th identical request gets the n-th response for it, then the last.
            let asked_before = log.0.iter().filter(|l| **l == line).count();
            let matching: Vec<&Canned> = responses
                .iter()
                .filter(|c| c.method == method && c.url == r.url)
                .collect();
            let found = matching.get(asked_before).or(matching.last()).copied();
            log.0.push(line.clone());
            if found.is_none() {
                log.1.push(line);
            }
            Ok(match found {
                Some(c) => c.response.clone(),
                None => http::Response {
                    status: 404,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: format!("MockHost: no canned response for {method} {}", r.url)
                        .into_bytes(),
                },
            })
        });
        let (host, record) = FakeHost::new(respond);
        let mut cx = Context::new(Box::new(host));
        let result = crate::run_sync::<I>(&mut cx, &Config::new(self.config));
        drop(cx);
        let record = record.borrow();
        let (requests, unanswered) = seen.take();
        // A map travels as JSON text; read back as a map where the schema declares one
        // (text that is not a JSON object stays text: the host would refuse it).
        let maps = I::manifest().map_properties();
        let props = |owner: &str, columns: &[String], values: &[types::Value]| {
            columns
                .iter()
                .zip(values)
                .filter(|(_, v)| !matches!(v, types::Value::Null))
                .map(|(c, v)| {
                    let v = match v {
                        types::Value::Text(t) if maps.contains(&(owner.into(), c.clone())) => {
                            match serde_json::from_str(t) {
                                Ok(serde_json::Value::Object(m)) => Value::Map(m),
                                _ => value(v),
                            }
                        }
                        _ => value(v),
                    };
                    (c.clone(), v)
                })
                .collect()
        };
        Synced {
            result,
            scope: record
                .scopes
                .first()
                .map(|s| (s.label.clone(), s.value.clone())),
            nodes: record
                .nodes
                .iter()
                .flat_map(|b| {
                    b.rows.iter().map(|r| Node {
                        label: b.label.clone(),
                        id: r.id.clone(),
                        props: props(&b.label, &b.columns, &r.values),
                    })
                })
                .collect(),
            edges: record
                .edges
                .iter()
                .flat_map(|b| {
                    b.rows.iter().map(|r| Edge {
                        rel_type: b.rel_type.clone(),
                        from: (b.from_label.clone(), b.from_key.clone(), r.from.clone()),
                        to: (b.to_label.clone(), b.to_key.clone(), r.to.clone()),
                        props: props(&b.rel_type, &b.columns, &r.values),
                    })
                })
                .collect(),
            requests,
            unanswered,
            incomplete: record
                .incomplete
                .iter()
                .map(|(l, _, why)| (l.clone(), why.clone()))
                .collect(),
            logs: record.logs.iter().map(|(_, m)| m.clone()).collect(),
        }
    }
}

fn method_name(m: &http::Method) -> &'static str {
    match m {
        http::Method::Get => "GET",
        http::Method::Post => "POST",
        http::Method::Put => "PUT",
        http::Method::Patch => "PATCH",
        http::Method::Delete => "DELETE",
        http::Method::Head => "HEAD",
    }
}

fn value(v: &types::Value) -> Value {
    match v {
        types::Value::Null => Value::Null,
        types::Value::Boolean(b) => Value::Bool(*b),
        types::Value::Int(i) => Value::Int(*i),
        types::Value::Float(f) => Value::Float(*f),
        types::Value::Text(t) => Value::Text(t.clone()),
        types::Value::TextList(l) => Value::TextList(l.clone()),
        types::Value::IntList(l) => Value::IntList(l.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Manifest, NodeKind, Request, ValueType};

    /// Fetches `/n` until it answers 200 (at most three times), then `/items`, and emits
    /// one node per item, its `tags` a map.
    struct Retrying;

    impl Ingestor for Retrying {
        fn manifest() -> Manifest {
            Manifest::new("retrying", "0.1.0", "").node(
                NodeKind::new("RetryingItem", "")
                    .prop("n", ValueType::Int, "")
                    .prop("tags", ValueType::Map, ""),
            )
        }

        fn sync(cx: &mut Context, _: &Config) -> Result<Summary, SyncError> {
            cx.scope("RetryingItem", "scope");
            let mut n = 0;
            for _ in 0..3 {
                let r = cx.fetch(Request::get("https://api.test/n"))?;
                if r.status == 200 {
                    n = r.json::<i64>()?;
                    break;
                }
            }
            let items: Vec<String> = cx.fetch(Request::get("https://api.test/items"))?.json()?;
            for id in items {
                let tags: BTreeMap<String, String> = [("env".into(), "prod".into())].into();
                cx.node("RetryingItem", id)
                    .prop("n", n)
                    .prop("tags", tags)
                    .emit();
            }
            Ok(Summary::new("ok"))
        }
    }

    #[test]
    fn a_recording_is_replayed_in_order_and_maps_read_back_as_maps() {
        let dir = std::env::temp_dir().join(format!("sdk-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("recording.json"), r#"{"plugin": "retrying"}"#).unwrap();
        let exchange = |n: u32, url: &str, status: u16, body: &str| {
            let json = format!(
                r#"{{"request": {{"method": "GET", "url": "{url}", "headers": []}},
                    "response": {{"status": {status}, "headers": [["retry-after", "0"]]}}}}"#
            );
            std::fs::write(dir.join(format!("{n:06}.json")), json).unwrap();
            std::fs::write(dir.join(format!("{n:06}.body")), body).unwrap();
        };
        exchange(1, "https://api.test/n", 429, "slow down");
        exchange(2, "https://api.test/n", 200, "7");
        exchange(3, "https://api.test/items", 200, r#"["a", "b"]"#);
        // A network error recorded: left out.
        std::fs::write(
            dir.join("000004.json"),
            r#"{"request": {"method": "GET", "url": "https://api.test/gone"},
                "error": {"kind": "timeout", "message": "30s"}}"#,
        )
        .unwrap();

        let synced = MockHost::new().replay(&dir).run::<Retrying>();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(synced.result.is_ok(), "{:?}", synced.result);
        assert_eq!(
            synced.requests,
            [
                "GET https://api.test/n",
                "GET https://api.test/n",
                "GET https://api.test/items"
            ]
        );
        let a = synced.node("RetryingItem", "a").unwrap();
        assert_eq!(a.props["n"], Value::Int(7), "the second answer to /n");
        let Value::Map(tags) = &a.props["tags"] else {
            panic!("not a map: {:?}", a.props["tags"]);
        };
        assert_eq!(tags["env"], "prod");
    }

    #[test]
    #[should_panic(expected = "no recording.json")]
    fn a_folder_that_is_no_recording_is_named() {
        let _ = MockHost::new().replay(std::env::temp_dir().join("no-such-recording-here"));
    }
}
