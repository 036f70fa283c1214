//! ArangoDB's HTTP API, as far as a read-only sync needs it: the AQL cursor API and JWT
//! sign-in.
//!
//! A query is created with `POST /_db/<db>/_api/cursor` (`batchSize` rows per answer,
//! `stream: true` so the server does not build the whole result first) and continued with
//! `POST /_db/<db>/_api/cursor/<id>` until `hasMore` is false. Several queries advance
//! together: every round sends the next request of each live cursor in one `fetch-many`,
//! so memory holds one batch per cursor, however large a collection is.
//!
//! Errors arrive as `{"error": true, "errorNum": N, "errorMessage": "..."}`; the ones an
//! operator can act on (credentials, a missing database or collection, an expired cursor)
//! become messages saying what to change.

use infragraph_sdk::{Context, Request, Resend, Response, Session, SyncError, fetch_many_in};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::queries::Query;

/// ArangoDB error numbers the plugin explains (`lib/Basics/voc-errors.h`).
const ERROR_COLLECTION_NOT_FOUND: i64 = 1203;
const ERROR_DATABASE_NOT_FOUND: i64 = 1228;
const ERROR_CURSOR_NOT_FOUND: i64 = 1600;

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The host adds HTTP Basic auth from `DB_USER` and `DB_PASSWORD`; the plugin adds
    /// nothing.
    Basic,
    /// A JWT from `POST /_open/auth`, sent as a bearer token. It is a session token the
    /// database issued, not the password, which stays with the host.
    Jwt(String),
}

/// One database and how to talk to it.
pub struct Db {
    /// `<connection string>/_db/<name>`
    base: String,
    connection: String,
    name: String,
    auth: Auth,
    /// Who signs in, for `Auth::Jwt`.
    user: String,
    batch_size: u32,
    ttl: u32,
    /// Which variables to check when the database refuses us.
    credentials_hint: String,
}

impl Db {
    pub fn new(connection: &str, name: &str, batch_size: u32, ttl: u32) -> Db {
        Db {
            base: format!("{}/_db/{name}", connection.trim_end_matches('/')),
            connection: connection.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
            auth: Auth::Basic,
            user: String::new(),
            batch_size,
            ttl,
            credentials_hint: "check DB_USER and DB_PASSWORD".into(),
        }
    }

    /// The database's URL, `<connection string>/_db/<name>`: the scope's id.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Signs in as `user` with the password the host holds as credential `jwt_password`
    /// (`POST /_open/auth`), and authenticates every later request with the JWT.
    pub fn sign_in(&mut self, cx: &mut Context, user: &str) -> Result<(), SyncError> {
        self.credentials_hint = "check DB_USER and DB_JWT_PASSWORD".into();
        self.user = user.to_owned();
        self.fetch_jwt(cx)
    }

    /// Gets a fresh JWT for the user signed in as.
    fn fetch_jwt(&mut self, cx: &mut Context) -> Result<(), SyncError> {
        let url = format!("{}/_open/auth", self.connection);
        let body = serde_json::json!({"username": self.user, "password": "{secret:jwt_password}"});
        let response = cx
            .fetch(Request::post(&url).json(&body))
            .map_err(|e| SyncError::fetch(format!("{url}: {e}")))?;
        if !response.is_success() {
            return Err(self.error(&response, "signing in"));
        }
        #[derive(Deserialize)]
        struct Token {
            jwt: String,
        }
        let token: Token = response.json()?;
        self.auth = Auth::Jwt(token.jwt);
        Ok(())
    }

    /// `request` with the JWT, when signed in with one (basic auth is the host's to add).
    fn request(&self, request: Request) -> Request {
        match &self.auth {
            Auth::Basic => request,
            Auth::Jwt(jwt) => request.header("Authorization", format!("bearer {jwt}")),
        }
    }

    fn create(&self, query: &Query, bind: &serde_json::Value) -> Request {
        let body = serde_json::json!({
            "query": query.aql,
            "bindVars": bind,
            "batchSize": self.batch_size,
            "ttl": self.ttl,
            "options": {"stream": true},
        });
        Request::post(format!("{}/_api/cursor", self.base)).json(&body)
    }

    fn next(&self, id: &str) -> Request {
        Request::post(format!("{}/_api/cursor/{id}", self.base))
    }

    fn delete(&self, id: &str) -> Request {
        Request::delete(format!("{}/_api/cursor/{id}", self.base))
    }

    /// What a non-2xx answer to `doing` means, for the operator.
    fn error(&self, response: &Response, doing: &str) -> SyncError {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            error_num: Option<i64>,
            error_message: Option<String>,
        }
        let body: Body = serde_json::from_slice(&response.body).unwrap_or_default();
        let message = body
            .error_message
            .unwrap_or_else(|| response.text().chars().take(200).collect());
        let (db, status) = (&self.name, response.status);
        match (status, body.error_num) {
            (401, _) => SyncError::auth(format!(
                "ArangoDB refused the credentials while {doing} (HTTP 401: {message}): {}",
                self.credentials_hint
            )),
            (403, _) => SyncError::auth(format!(
                "ArangoDB forbade {doing} in database {db:?} (HTTP 403: {message}): give the \
                 user of DB_USER read access to it"
            )),
            (_, Some(ERROR_DATABASE_NOT_FOUND)) => SyncError::config(format!(
                "database {db:?} does not exist at {} ({message}): check DB_NAME",
                self.base
            )),
            (_, Some(ERROR_COLLECTION_NOT_FOUND)) => SyncError::provider(format!(
                "database {db:?} has no collection this plugin reads, found while {doing} \
                 ({message}): is DB_NAME Critical's database? Critical creates its \
                 collections when it first starts"
            )),
            (_, Some(ERROR_CURSOR_NOT_FOUND)) => SyncError::provider(format!(
                "the cursor was gone while {doing} ({message}): ArangoDB drops a cursor left \
                 idle longer than its ttl ({} s here) or after a restart; raise cursor_ttl \
                 (CRITICAL_CURSOR_TTL) if the sync is slow to read, then run it again",
                self.ttl
            )),
            (429 | 500..=599, _) => SyncError::fetch(format!(
                "ArangoDB failed while {doing} (HTTP {status}: {message})"
            )),
            _ => SyncError::provider(format!(
                "ArangoDB answered HTTP {status} while {doing}: {message}"
            )),
        }
    }
}

/// One cursor's answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Batch<T> {
    result: Vec<T>,
    #[serde(default)]
    has_more: bool,
    id: Option<String>,
}

type Handler<'a> = Box<dyn FnMut(&mut Context, &Response) -> Result<Next, SyncError> + 'a>;

/// Where a cursor stands after a batch.
enum Next {
    More(String),
    Done,
}

/// A query and what to do with each batch of its rows.
pub struct Stream<'a> {
    query: Query,
    bind: serde_json::Value,
    handle: Handler<'a>,
}

impl<'a> Stream<'a> {
    /// `query` with bind parameters `bind`; `each` gets every batch of rows, parsed as `T`,
    /// in order.
    pub fn new<T: DeserializeOwned>(
        query: Query,
        bind: serde_json::Value,
        mut each: impl FnMut(&mut Context, Vec<T>) -> Result<(), SyncError> + 'a,
    ) -> Stream<'a> {
        let handle = move |cx: &mut Context, r: &Response| {
            let batch: Batch<T> = r.json()?;
            each(cx, batch.result)?;
            match (batch.has_more, batch.id) {
                (true, Some(id)) => Ok(Next::More(id)),
                (true, None) => Err(SyncError::provider(format!(
                    "{} said more rows follow but named no cursor to read them from",
                    r.url
                ))),
                (false, _) => Ok(Next::Done),
            }
        };
        Stream {
            query,
            bind,
            handle: Box::new(handle),
        }
    }
}

/// A JWT expires (after an hour by default): with one, a 401 signs in again and the
/// refused requests are sent once more, which is safe since a refused request read
/// nothing. With basic auth a 401 is the password's fault: nothing to renew.
impl Session for Db {
    fn authorize(&mut self, _: &mut Context, request: Request) -> Result<Request, SyncError> {
        Ok(self.request(request))
    }

    fn renew(&mut self, cx: &mut Context, _refused: &[&Request]) -> Result<(), SyncError> {
        self.fetch_jwt(cx)?;
        cx.info("the JWT expired during the sync; signed in again");
        Ok(())
    }

    fn expired(&self, response: &Response) -> bool {
        response.status == 401 && matches!(self.auth, Auth::Jwt(_))
    }
}

/// Runs `streams` to their ends, advancing all of them in each round. Returns the number
/// of requests sent. On an error the cursors still open are deleted, so the server frees
/// them at once rather than after their ttl. An expired JWT is renewed and the refused
/// requests resent by the SDK ([`fetch_many_in`]); a fresh one refused is an error.
pub fn run(db: &mut Db, cx: &mut Context, mut streams: Vec<Stream<'_>>) -> Result<u64, SyncError> {
    // `None`: not created yet; `Some(Some(id))`: open; `Some(None)`: done.
    let mut state: Vec<Option<Option<String>>> = vec![None; streams.len()];
    let mut requests = 0;
    loop {
        let live: Vec<usize> = (0..streams.len())
            .filter(|&i| !matches!(state[i], Some(None)))
            .collect();
        if live.is_empty() {
            return Ok(requests);
        }
        let batch: Vec<Request> = live
            .iter()
            .map(|&i| match &state[i] {
                Some(Some(id)) => db.next(id),
                _ => db.create(&streams[i].query, &streams[i].bind),
            })
            .collect();
        requests += batch.len() as u64;
        let mut failure = None;
        let outcomes = match fetch_many_in(cx, db, batch, Resend::Refused) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                failure = Some(e);
                Vec::new()
            }
        };
        for (&i, outcome) in live.iter().zip(outcomes) {
            let doing = match &state[i] {
                None => format!("querying {}", streams[i].query.collection),
                Some(_) => format!("reading the next batch of {}", streams[i].query.collection),
            };
            let result = match outcome {
                Err(e) => Err(SyncError::fetch(format!("{doing}: {e}"))),
                Ok(r) if !r.is_success() => Err(db.error(&r, &doing)),
                Ok(r) => (streams[i].handle)(cx, &r),
            };
            match result {
                Ok(Next::More(id)) => state[i] = Some(Some(id)),
                Ok(Next::Done) => state[i] = Some(None),
                Err(e) => {
                    // The cursor this answer came from is over either way.
                    state[i] = Some(None);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            let open: Vec<Request> = state
                .iter()
                .filter_map(|s| match s {
                    Some(Some(id)) => Some(db.delete(id)),
                    _ => None,
                })
                .collect();
            // Best effort: the error is what the operator needs to see.
            let _ = fetch_many_in(cx, db, open, Resend::Never);
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
            url: "http://db:8529/_db/unnamed/_api/cursor".into(),
        }
    }

    fn arango(status: u16, num: i64, message: &str) -> Response {
        answer(
            status,
            serde_json::json!({"error": true, "errorNum": num, "errorMessage": message, "code": status}),
        )
    }

    #[test]
    fn errors_say_what_to_change() {
        let mut db = Db::new("http://db:8529/", "unnamed", 100, 60);
        assert_eq!(db.url(), "http://db:8529/_db/unnamed");
        let doing = "querying users";
        let e = db.error(
            &arango(401, 401, "not authorized to execute this request"),
            doing,
        );
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("DB_PASSWORD") && m.contains("HTTP 401")),
            "{e}"
        );
        db.credentials_hint = "check DB_USER and DB_JWT_PASSWORD".into();
        let e = db.error(&arango(401, 401, "Wrong credentials"), "signing in");
        assert!(e.to_string().contains("DB_JWT_PASSWORD"), "{e}");
        let e = db.error(&arango(403, 11, "forbidden"), doing);
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("read access")),
            "{e}"
        );
        let e = db.error(&arango(404, 1228, "database not found"), doing);
        assert!(
            matches!(&e, SyncError::Config(m) if m.contains("DB_NAME")),
            "{e}"
        );
        let missing = "AQL: collection or view not found: users (while parsing)";
        let e = db.error(&arango(404, 1203, missing), doing);
        assert!(
            matches!(&e, SyncError::Provider(m) if m.contains(missing) && m.contains(doing)),
            "{e}"
        );
        let e = db.error(&arango(404, 1600, "cursor not found"), doing);
        assert!(
            matches!(&e, SyncError::Provider(m) if m.contains("60 s") && m.contains("CRITICAL_CURSOR_TTL")),
            "{e}"
        );
        let e = db.error(&arango(503, 503, "service unavailable"), doing);
        assert!(matches!(e, SyncError::Fetch(_)), "{e}");
        let e = db.error(&answer(502, serde_json::json!("not arango")), doing);
        assert!(
            e.to_string().contains("not arango"),
            "a body that is not ArangoDB's: {e}"
        );
    }

    #[test]
    fn requests_carry_the_query_and_the_jwt() {
        let mut db = Db::new("http://db:8529", "unnamed", 100, 60);
        let bind = serde_json::json!({"include_deleted": false});
        let create = db.create(&crate::queries::USERS, &bind);
        assert_eq!(create.url(), "http://db:8529/_db/unnamed/_api/cursor");
        // `Request` does not expose its body; the simulator checks the query text and
        // the paging end to end.
        assert!(
            create.headers().iter().all(|(k, _)| k != "Authorization"),
            "basic auth is the host's to add"
        );
        db.auth = Auth::Jwt("eyJ.x.y".into());
        let next = db.next("42");
        assert_eq!(next.url(), "http://db:8529/_db/unnamed/_api/cursor/42");
        assert_eq!(db.delete("42").method(), infragraph_sdk::Method::Delete);
        // The JWT is added when the request is sent, by the session.
        let sent = db.request(next);
        assert!(
            sent.headers()
                .contains(&("Authorization".into(), "bearer eyJ.x.y".into()))
        );
    }
}
