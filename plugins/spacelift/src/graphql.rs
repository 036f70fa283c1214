//! The Spacelift GraphQL client: the API-key exchange, bearer requests, re-authentication
//! when the JWT expires, and GraphQL errors as typed values.

use infragraph_sdk::{Context, Request, Resend, Response, Session, SyncError, fetch_many_in};
use serde_json::{Value, json};

/// The exchange of the API key for a JWT. The secret is the host's placeholder: the host
/// writes the value, JSON-escaped, into the body it sends, so the plugin never holds it.
pub const LOGIN: &str = "mutation GetSpaceliftToken($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }";

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
        Request::post(&self.endpoint).json(&body)
    }

    /// Sends every query concurrently and returns their answers in order. A query answered
    /// 401 (or `unauthorized`) means the JWT expired: the SDK's session logic has the
    /// plugin log in again and resend those queries; a fresh token refused for them all
    /// is an auth error.
    pub fn query_many(
        &mut self,
        cx: &mut Context,
        queries: &[Query],
    ) -> Vec<Result<Answer, SyncError>> {
        let requests = queries.iter().map(|q| self.request(q)).collect();
        let outcomes = match fetch_many_in(cx, self, requests, Resend::Refused) {
            Ok(outcomes) => outcomes,
            Err(e) => return vec![Err(e); queries.len()],
        };
        outcomes
            .into_iter()
            .zip(queries)
            .map(
                |(outcome, q)| match outcome.map_err(SyncError::from).and_then(|r| body(&r))? {
                    Some(body) => Ok(parse(q.field, body)),
                    None => Err(SyncError::auth(format!(
                        "Spacelift refused a fresh token for `{}`: {}",
                        q.field,
                        self.auth_hint()
                    ))),
                },
            )
            .collect()
    }
}

/// The JWT is the session: exchanged for the API key on the first request and again when
/// Spacelift refuses it.
impl Session for Client {
    fn authorize(&mut self, cx: &mut Context, request: Request) -> Result<Request, SyncError> {
        if self.jwt.is_none() {
            self.login(cx)?;
        }
        let bearer = format!("Bearer {}", self.jwt.as_deref().unwrap_or_default());
        Ok(request.header("Authorization", bearer))
    }

    fn renew(&mut self, cx: &mut Context, _refused: &[&Request]) -> Result<(), SyncError> {
        cx.info("the Spacelift token expired; exchanging the API key again");
        self.login(cx)
    }

    fn expired(&self, response: &Response) -> bool {
        // Only a body that mentions it can be the 200 kind of refusal: a byte scan spares
        // parsing every answer twice.
        response.status == 401
            || (response
                .body
                .windows(12)
                .any(|w| w.eq_ignore_ascii_case(b"unauthorized"))
                && matches!(body(response), Ok(None)))
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
