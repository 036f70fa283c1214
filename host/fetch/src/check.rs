//! A connection check: a plugin runs as in a sync until its first request carrying a
//! credential is answered; that answer says whether the account's credentials work and
//! its endpoint is reachable, and every request after it is refused, which ends the run.
//! The plugin decides what is asked (whatever it asks first with a credential, usually
//! its sign-in or a cheap listing); the host decides what the answer means, the same way
//! for every plugin. Requests still in flight or queued when the first is settled are
//! given up at once: a plugin that asks a whole round at once (Scaleway's 66 first
//! pages) would otherwise keep the check waiting for each of them to fail in turn,
//! retries included: seconds when its endpoint refuses connections, a minute where the
//! resolver answered a burst of lookups slowly.

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::Notify;

use crate::{FetchError, Response};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Checked {
    /// Answered with success: the credentials were accepted.
    Verified {
        /// The request's URL, redacted.
        url: String,
        /// Its status.
        status: u16,
    },
    /// Refused: 401 or 403, or a success status with GraphQL `errors` and no data (how a
    /// GraphQL API refuses a key).
    Refused {
        /// The request's URL, redacted.
        url: String,
        /// Its status.
        status: u16,
        /// The start of the answer's body, redacted.
        message: String,
    },
    /// No usable answer: unreachable, timed out, or another error status.
    Failed {
        /// The request's URL, redacted.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Where a check keeps what it found; shared by the fetcher and whoever asked.
#[derive(Debug, Default)]
pub struct Check {
    found: Mutex<Option<Checked>>,
    /// Wakes the requests waiting on [`Check::settled`] once something is found.
    found_one: Notify,
}

/// How much of a refusal's body a check keeps.
const MESSAGE_CHARS: usize = 200;

impl Check {
    /// A check that has found nothing yet.
    pub fn new() -> Check {
        Check::default()
    }

    /// What it found, once a request with a credential was answered.
    pub fn outcome(&self) -> Option<Checked> {
        self.found.lock().map(|f| f.clone()).unwrap_or(None)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome().is_some()
    }

    /// Returns once the check has found what it looks for.
    pub(crate) async fn settled(&self) {
        let found = self.found_one.notified();
        tokio::pin!(found);
        // Registered before looking, so a settle between the look and the wait wakes it.
        found.as_mut().enable();
        if self.is_done() {
            return;
        }
        found.await;
    }

    /// Keeps the answer to a request that carried a credential, if it is the first.
    pub(crate) fn settle(&self, url: &str, result: &Result<Response, FetchError>) {
        let checked = match result {
            Ok(r) if (200..400).contains(&r.status) && !graphql_refusal(&r.body) => {
                Checked::Verified {
                    url: url.into(),
                    status: r.status,
                }
            }
            Ok(r) if matches!(r.status, 200..=399 | 401 | 403) => Checked::Refused {
                url: url.into(),
                status: r.status,
                message: excerpt(&r.body),
            },
            Ok(r) => Checked::Failed {
                url: url.into(),
                message: format!("answered HTTP {}: {}", r.status, excerpt(&r.body)),
            },
            Err(e) => Checked::Failed {
                url: url.into(),
                message: e.to_string(),
            },
        };
        if let Ok(mut found) = self.found.lock() {
            found.get_or_insert(checked);
        }
        self.found_one.notify_waiters();
    }
}

/// A GraphQL answer with `errors` and no `data` (or `data` whose fields are all null):
/// GraphQL over HTTP refuses a bad key with a success status.
fn graphql_refusal(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(body) else {
        return false;
    };
    let errors = doc
        .get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|e| !e.is_empty());
    let no_data = match doc.get("data") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Object(fields)) => fields.values().all(|v| v.is_null()),
        Some(_) => false,
    };
    errors && no_data
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<Response, FetchError> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn the_first_answer_with_a_credential_decides() {
        let check = Check::new();
        check.settle("https://a/x", &answer(200, "{}"));
        check.settle("https://a/y", &answer(401, "no"));
        assert_eq!(
            check.outcome(),
            Some(Checked::Verified {
                url: "https://a/x".into(),
                status: 200
            })
        );
    }

    #[test]
    fn refusals_failures_and_graphql_errors() {
        let outcome = |status, body: &str| {
            let check = Check::new();
            check.settle("u", &answer(status, body));
            check.outcome().unwrap()
        };
        assert!(matches!(
            outcome(401, "bad token"),
            Checked::Refused { status: 401, .. }
        ));
        assert!(matches!(outcome(403, ""), Checked::Refused { .. }));
        assert!(matches!(
            outcome(
                200,
                r#"{"errors":[{"message":"unauthorized"}],"data":{"apiKeyUser":null}}"#
            ),
            Checked::Refused { status: 200, .. }
        ));
        assert!(matches!(
            outcome(
                200,
                r#"{"errors":[{"message":"partial"}],"data":{"stacks":[]}}"#
            ),
            Checked::Verified { .. }
        ));
        assert!(matches!(outcome(503, "down"), Checked::Failed { .. }));
        let check = Check::new();
        check.settle("u", &Err(FetchError::Network("connection refused".into())));
        assert!(matches!(check.outcome(), Some(Checked::Failed { .. })));
    }
}
