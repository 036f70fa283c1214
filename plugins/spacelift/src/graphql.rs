//! The Spacelift GraphQL client: the API-key exchange, bearer requests, re-authentication
//! when the JWT expires, and GraphQL errors as typed values.

use infragraph_sdk::{Context, Request, Response, SyncError};
use serde_json::{Value, json};

/// The exchange of the API key for a JWT. The secret is the host's placeholder: the host
/// writes the value, JSON-escaped, into the body it sends, so the plugin never holds it.
const LOGIN: &str = "mutation GetSpaceliftToken($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }";

/// One query to send.
#[derive(Debug, Clone)]
pub struct Query {
    /// The root field it asks for, for messages and incomplete labels.
    pub field: &'static str,
    pub text: &'static str,
    pub variables: Value,
}

impl Query {
    pub fn new(field: &'static str, text: &'static str) -> Query {
        Query {
            field,
            text,
            variables: Value::Null,
        }
    }

    pub fn with(mut self, variables: Value) -> Query {
        self.variables = variables;
        self
    }
}

/// A GraphQL error: HTTP 200 with an `errors` array (or the answer had no data at all).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlError {
    /// The root field asked for.
    pub field: &'static str,
    /// The messages of the `errors` array, in order.
    pub messages: Vec<String>,
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Spacelift answered `{}` with GraphQL errors: {}",
            self.field,
            self.messages.join("; ")
        )
    }
}

/// What one query gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The root field's value, all of it.
    Data(Value),
    /// Errors, with whatever data came with them (`Null` when none): the labels it feeds
    /// are incomplete.
    Partial(Value, GraphqlError),
}

impl Answer {
    /// The data, complete or not.
    pub fn data(&self) -> &Value {
        match self {
            Answer::Data(v) | Answer::Partial(v, _) => v,
        }
    }

    /// The data, taken out of the answer.
    pub fn into_data(self) -> Value {
        match self {
            Answer::Data(v) | Answer::Partial(v, _) => v,
        }
    }

    /// The error, if any.
    pub fn error(&self) -> Option<&GraphqlError> {
        match self {
            Answer::Data(_) => None,
            Answer::Partial(_, e) => Some(e),
        }
    }
}

/// Reads a GraphQL response body for root field `field`, its data moved out.
pub fn parse(field: &'static str, mut body: Value) -> Answer {
    let data = body
        .get_mut("data")
        .and_then(|d| d.get_mut(field))
        .map(Value::take)
        .unwrap_or(Value::Null);
    let messages: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() && !data.is_null() {
        return Answer::Data(data);
    }
    let messages = if messages.is_empty() {
        vec![format!("no data for `{field}`")]
    } else {
        messages
    };
    Answer::Partial(data, GraphqlError { field, messages })
}

/// A session with one Spacelift account.
pub struct Client {
    endpoint: String,
    key_id: String,
    jwt: Option<String>,
    /// Times the plugin logged in (1 + re-authentications).
    pub logins: u32,
}

impl Client {
    pub fn new(endpoint: &str, key_id: &str) -> Client {
        Client {
            endpoint: endpoint.to_owned(),
            key_id: key_id.to_owned(),
            jwt: None,
            logins: 0,
        }
    }

    fn auth_hint(&self) -> String {
        format!(
            "check SPACELIFT_API_KEY_ID (now {:?}) and SPACELIFT_API_KEY_SECRET, and that \
             SPACELIFT_API_KEY_ENDPOINT ({}) is the account the key belongs to",
            self.key_id, self.endpoint
        )
    }

    /// Exchanges the API key for a JWT.
    pub fn login(&mut self, cx: &mut Context) -> Result<(), SyncError> {
        let body = json!({
            "query": LOGIN,
            "variables": {"id": self.key_id, "secret": "{secret:api_key_secret}"},
        });
        let resp = cx.fetch(Request::post(&self.endpoint).json(&body))?;
        if matches!(resp.status, 401 | 403) {
            return Err(SyncError::auth(format!(
                "Spacelift refused the API key exchange (HTTP {}): {}",
                resp.status,
                self.auth_hint()
            )));
        }
        resp.error_for_status()?;
        let answer = parse("apiKeyUser", resp.json::<Value>()?);
        let jwt = answer
            .data()
            .get("jwt")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty());
        match (jwt, answer.error()) {
            (Some(jwt), None) => {
                self.jwt = Some(jwt.to_owned());
                self.logins += 1;
                Ok(())
            }
            (_, err) => Err(SyncError::auth(format!(
                "Spacelift refused the API key{}: {}",
                err.map(|e| format!(" ({})", e.messages.join("; ")))
                    .unwrap_or_default(),
                self.auth_hint()
            ))),
        }
    }

    fn request(&self, q: &Query) -> Request {
        let body = json!({"query": q.text, "variables": q.variables});
        Request::post(&self.endpoint)
            .header(
                "Authorization",
                format!("Bearer {}", self.jwt.as_deref().unwrap_or_default()),
            )
            .json(&body)
    }

    /// Sends every query concurrently and returns their answers in order. A query answered
    /// 401 (or `unauthorized`) means the JWT expired: the plugin logs in again once and
    /// resends those queries; a second refusal is an auth error.
    pub fn query_many(
        &mut self,
        cx: &mut Context,
        queries: &[Query],
    ) -> Vec<Result<Answer, SyncError>> {
        let mut out: Vec<Option<Result<Answer, SyncError>>> = vec![None; queries.len()];
        let mut pending: Vec<usize> = (0..queries.len()).collect();
        for attempt in 0..2 {
            let requests = pending.iter().map(|&i| self.request(&queries[i])).collect();
            let responses = cx.fetch_many(requests);
            let mut expired = Vec::new();
            for (&i, resp) in pending.iter().zip(responses) {
                match resp.map_err(SyncError::from).and_then(|r| body(&r)) {
                    Err(e) => out[i] = Some(Err(e)),
                    Ok(None) => expired.push(i),
                    Ok(Some(body)) => out[i] = Some(Ok(parse(queries[i].field, body))),
                }
            }
            if expired.is_empty() {
                break;
            }
            if attempt == 0 {
                cx.info("the Spacelift token expired; exchanging the API key again");
                if let Err(e) = self.login(cx) {
                    for &i in &expired {
                        out[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            } else {
                for &i in &expired {
                    out[i] = Some(Err(SyncError::auth(format!(
                        "Spacelift refused a fresh token for `{}`: {}",
                        queries[i].field,
                        self.auth_hint()
                    ))));
                }
            }
            pending = expired;
        }
        out.into_iter()
            .map(|a| a.expect("every query is answered"))
            .collect()
    }
}

/// The parsed body of a response, or `None` when it says the token is no longer
/// accepted: HTTP 401, or (as some GraphQL servers answer an expired token) HTTP 200
/// with no data and an `unauthorized` error. Parsed once, here.
fn body(r: &Response) -> Result<Option<Value>, SyncError> {
    if r.status == 401 {
        return Ok(None);
    }
    r.error_for_status()?;
    let v: Value = r.json()?;
    let refused = v.get("data").is_none_or(Value::is_null)
        && v["errors"].as_array().is_some_and(|errs| {
            errs.iter().any(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.to_ascii_lowercase().starts_with("unauthorized"))
            })
        });
    Ok((!refused).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_and_without_errors() {
        let ok = parse("spaces", json!({"data": {"spaces": [1]}}));
        assert_eq!(ok, Answer::Data(json!([1])));
        let partial = parse(
            "stacks",
            json!({"data": {"stacks": [1]}, "errors": [{"message": "boom"}]}),
        );
        assert_eq!(partial.data(), &json!([1]));
        assert_eq!(partial.error().unwrap().messages, ["boom"]);
        let none = parse("stacks", json!({"data": null}));
        assert!(
            none.error()
                .unwrap()
                .to_string()
                .contains("no data for `stacks`"),
            "{:?}",
            none
        );
    }
}
