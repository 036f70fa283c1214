//! Talking to Entra ID, ARM and Microsoft Graph: client-credentials tokens per API (the
//! client secret is the host's placeholder, substituted into the form body), renewed when
//! they expire, and `nextLink` / `@odata.nextLink` listings walked many at a time.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use infragraph_sdk::{Context, Request, Resend, Response, Session, SyncError, fetch_many_in};
use serde_json::Value;

/// The scopes (audiences) of the two APIs, whatever endpoint serves them.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Requests one round of a walk sends at most: a few times the host's per-host
/// concurrency (16), and a bound on the responses held at once.
pub const ROUND: usize = 48;

/// A token is renewed this long before Entra says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Arm,
    Graph,
}

struct Token {
    value: String,
    /// When to renew it, from `expires_in`.
    renew_at: Option<Instant>,
}

/// A session with one tenant.
pub struct Client {
    token_url: String,
    client_id: String,
    pub arm: String,
    pub graph: String,
    arm_token: Option<Token>,
    graph_token: Option<Token>,
    /// Tokens obtained (first ones and renewals).
    pub tokens: u32,
    /// Which API each URL in flight belongs to (ARM and Graph may share a host, e.g. a
    /// simulator), so the session attaches the right token.
    routes: HashMap<String, Api>,
    /// Per API, whether its token was obtained in the current round: a token Entra says
    /// expires within the margin is renewed once per round, not once per request.
    got_this_round: [bool; 2],
}

impl Client {
    pub fn new(login: &str, tenant: &str, client_id: &str, arm: &str, graph: &str) -> Client {
        Client {
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", login.trim_end_matches('/')),
            client_id: client_id.to_owned(),
            arm: arm.trim_end_matches('/').to_owned(),
            graph: graph.trim_end_matches('/').to_owned(),
            arm_token: None,
            graph_token: None,
            tokens: 0,
            routes: HashMap::new(),
            got_this_round: [false; 2],
        }
    }

    /// Starts a round of requests sent together: tokens may be renewed again.
    fn begin_round(&mut self) {
        self.got_this_round = [false; 2];
    }

    /// The API a request goes to: as its listing said, else by its base URL.
    fn api_of(&self, url: &str) -> Api {
        match self.routes.get(url) {
            Some(api) => *api,
            None if url.starts_with(&self.graph) && !url.starts_with(&self.arm) => Api::Graph,
            None => Api::Arm,
        }
    }

    fn slot(&mut self, api: Api) -> &mut Option<Token> {
        match api {
            Api::Arm => &mut self.arm_token,
            Api::Graph => &mut self.graph_token,
        }
    }

    /// Asks Entra for a token for `api` (client-credentials grant).
    pub fn login(&mut self, cx: &mut Context, api: Api) -> Result<(), SyncError> {
        let scope = match api {
            Api::Arm => ARM_SCOPE,
            Api::Graph => GRAPH_SCOPE,
        };
        let request = Request::post(&self.token_url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", "{secret:client_secret}"),
            ("scope", scope),
        ]);
        let resp = cx
            .fetch(request)
            .map_err(|e| SyncError::fetch(format!("the token endpoint {}: {e}", self.token_url)))?;
        if matches!(resp.status, 400 | 401 | 403) {
            let code = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", resp.status));
            return Err(SyncError::auth(format!(
                "Entra ID refused the client credentials for {scope} ({code}): check \
                 AZURE_TENANT_ID, AZURE_CLIENT_ID (now {:?}) and AZURE_CLIENT_SECRET",
                self.client_id
            )));
        }
        resp.error_for_status()?;
        let body: Value = resp.json()?;
        let value = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                SyncError::provider(format!(
                    "{} answered without an access_token",
                    self.token_url
                ))
            })?
            .to_owned();
        let expires_in = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str().and_then(|s| s.parse().ok()));
        let renew_at = expires_in
            .map(|s| Instant::now() + Duration::from_secs(s).saturating_sub(EXPIRY_MARGIN));
        *self.slot(api) = Some(Token { value, renew_at });
        self.got_this_round[api as usize] = true;
        self.tokens += 1;
        Ok(())
    }

    /// The bearer header value for `api`, logging in first if there is no live token.
    fn bearer(&mut self, cx: &mut Context, api: Api) -> Result<String, SyncError> {
        let fresh = self.got_this_round[api as usize];
        let stale = match self.slot(api) {
            None => true,
            Some(t) => !fresh && t.renew_at.is_some_and(|at| Instant::now() >= at),
        };
        if stale {
            self.login(cx, api)?;
        }
        let token = self.slot(api).as_ref().expect("logged in above");
        Ok(format!("Bearer {}", token.value))
    }

    /// GETs one URL (not paged) with a token, renewed and the request resent on 401.
    pub fn get(&mut self, cx: &mut Context, api: Api, url: &str) -> Result<Response, SyncError> {
        self.begin_round();
        self.routes.insert(url.to_owned(), api);
        let outcome = fetch_many_in(cx, self, vec![Request::get(url)], Resend::Refused);
        self.routes.clear();
        outcome?
            .remove(0)
            .map_err(|e| SyncError::fetch(format!("{url}: {e}")))
    }

    /// Walks every listing to its end, [`ROUND`] pages per round in one `fetch-many`,
    /// following `nextLink` (ARM) or `@odata.nextLink` (Graph). `page(cx, tag, outcome)` gets
    /// each page's `value` items in order, or why the listing stopped (a status other than
    /// 2xx after the host's retries, or a network failure); it decides what that means.
    ///
    /// An expired token is renewed and the refused pages asked again by the SDK's session
    /// logic, however often it expires. A 401 left after that is a token fresh from Entra
    /// ID refused: for every request of its API in a round, the sync fails (the app lacks
    /// access); for some, those listings stop there.
    pub fn walk<T>(
        &mut self,
        cx: &mut Context,
        listings: Vec<(T, Api, String)>,
        mut page: impl FnMut(&mut Context, &T, Result<Vec<Value>, Stopped>) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let mut open: std::collections::VecDeque<(T, Api, String)> = listings.into();
        let mut pages: u64 = 0;
        while !open.is_empty() {
            let round: Vec<(T, Api, String)> = open.drain(..open.len().min(ROUND)).collect();
            self.begin_round();
            let requests = round
                .iter()
                .map(|(_, api, url)| {
                    self.routes.insert(url.clone(), *api);
                    Request::get(url)
                })
                .collect();
            let outcomes = fetch_many_in(cx, self, requests, Resend::Refused);
            self.routes.clear();
            let mut refused = [0usize, 0];
            let mut answered = [0usize, 0];
            let mut refused_url = [None, None];
            let mut stopped = Vec::new();
            for ((tag, api, url), outcome) in round.into_iter().zip(outcomes?) {
                let resp = match outcome {
                    Ok(r) => r,
                    Err(e) => {
                        page(cx, &tag, Err(Stopped::new(None, format!("{url}: {e}"))))?;
                        continue;
                    }
                };
                if resp.status == 401 {
                    refused[api as usize] += 1;
                    refused_url[api as usize].get_or_insert_with(|| url.clone());
                    stopped.push((tag, url));
                    continue;
                }
                answered[api as usize] += 1;
                if !resp.is_success() {
                    let stop = Stopped::new(Some(resp.status), status_reason(&resp));
                    page(cx, &tag, Err(stop))?;
                    continue;
                }
                let mut body: Value = resp.json()?;
                let items = match body.get_mut("value").map(Value::take) {
                    Some(Value::Array(items)) => items,
                    _ => {
                        let reason = format!("{url} answered without a `value` list");
                        page(cx, &tag, Err(Stopped::new(None, reason)))?;
                        continue;
                    }
                };
                let next_key = match api {
                    Api::Arm => "nextLink",
                    Api::Graph => "@odata.nextLink",
                };
                page(cx, &tag, Ok(items))?;
                pages += 1;
                if pages > infragraph_sdk::MAX_PAGES {
                    return Err(SyncError::provider(format!(
                        "gave up after {} pages; a listing may never end (last {url})",
                        infragraph_sdk::MAX_PAGES
                    )));
                }
                if let Some(next) = body[next_key].as_str().filter(|n| !n.is_empty()) {
                    if next == url {
                        cx.warn(format!("{url} links to itself; the listing ends there"));
                    } else {
                        open.push_back((tag, api, next.to_owned()));
                    }
                }
            }
            for api in [Api::Arm, Api::Graph] {
                let i = api as usize;
                if refused[i] > 0 && answered[i] == 0 {
                    return Err(SyncError::auth(format!(
                        "{} refused a fresh token (HTTP 401): check that the app of \
                         AZURE_CLIENT_ID may read it",
                        refused_url[i].take().unwrap_or_default()
                    )));
                }
            }
            for (tag, url) in stopped {
                let reason = format!("{url} refused a fresh token (HTTP 401)");
                page(cx, &tag, Err(Stopped::new(Some(401), reason)))?;
            }
        }
        Ok(())
    }
}

/// The tokens of the two APIs are the session: each request gets its API's, and a
/// refusal renews the tokens of the APIs refused.
impl Session for Client {
    fn authorize(&mut self, cx: &mut Context, request: Request) -> Result<Request, SyncError> {
        let bearer = self.bearer(cx, self.api_of(request.url()))?;
        Ok(request.header("Authorization", bearer))
    }

    fn renew(&mut self, cx: &mut Context, refused: &[&Request]) -> Result<(), SyncError> {
        cx.info("an Azure token expired; asking Entra ID for a new one");
        for api in [Api::Arm, Api::Graph] {
            if refused.iter().any(|r| self.api_of(r.url()) == api) {
                self.login(cx, api)?;
            }
        }
        Ok(())
    }
}

/// Why a listing stopped: the status that stopped it (none for a network failure or a
/// malformed answer), and a line for the operator.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub status: Option<u16>,
    pub reason: String,
}

impl Stopped {
    fn new(status: Option<u16>, reason: String) -> Stopped {
        Stopped { status, reason }
    }
}

/// Why a listing stopped, from a non-2xx answer: status, URL and the error code ARM and
/// Graph put in `error.code`.
pub fn status_reason(resp: &Response) -> String {
    let code = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    match code {
        Some(c) => format!("{} answered HTTP {} ({c})", resp.url, resp.status),
        None => format!("{} answered HTTP {}", resp.url, resp.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_url_is_per_tenant() {
        let c = Client::new("http://127.0.0.1:9/", "t-1", "app", "http://a/", "http://g");
        assert_eq!(c.token_url, "http://127.0.0.1:9/t-1/oauth2/v2.0/token");
        assert_eq!((c.arm.as_str(), c.graph.as_str()), ("http://a", "http://g"));
    }

    #[test]
    fn reasons_name_status_and_code() {
        let r = Response {
            status: 403,
            headers: vec![],
            body: br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#.to_vec(),
            url: "http://x/subscriptions/s/resources".into(),
        };
        assert_eq!(
            status_reason(&r),
            "http://x/subscriptions/s/resources answered HTTP 403 (AuthorizationFailed)"
        );
    }
}
