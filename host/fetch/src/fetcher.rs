//! The fetcher: one plugin's request followed hop by hop (allow-list, redirects), each
//! hop built by `credentials` and sent by `transport`, and the answer redacted before the
//! plugin sees it.

use std::sync::Arc;

use reqwest::Url;
use reqwest::header::CONTENT_LENGTH;
use tokio::task::JoinSet;

use crate::clients::Clients;
use crate::credentials::Credentials;
use crate::error::AttemptError;
use crate::grants::Target;
use crate::held::Budget;
use crate::secrets::mentions_placeholder;
use crate::tape::{Replay, Tape};
use crate::transport::{Failed, Raw, Transport};
use crate::{
    FetchError, FetchLimits, FetchStats, Grants, Method, Request, Response, Secrets, SetupError,
};

/// Performs one plugin's HTTP requests.
///
/// Cheap to clone (an `Arc` inside); clones share the HTTP client, limits and stats.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("plugin", &self.inner.creds.grants.plugin())
            .field("secrets", &self.inner.creds.secrets)
            .field("limits", &self.inner.transport.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    creds: Credentials,
    transport: Transport,
    tape: Tape,
}

impl Fetcher {
    /// A fetcher for the plugin `grants` were built for.
    ///
    /// `secrets` holds the resolved credential values; `config` the plugin's resolved
    /// text config values as `(key, value)`, from which a basic-auth credential takes its
    /// user name. Fails if a limit makes no sense, a basic-auth credential has a value
    /// but no user name, or the HTTP client cannot be built.
    pub fn new(
        grants: Grants,
        secrets: Secrets,
        config: &[(String, String)],
        limits: FetchLimits,
    ) -> Result<Fetcher, SetupError> {
        Fetcher::with_tape(grants, secrets, config, limits, Tape::Live, &Clients::new())
    }

    /// [`Fetcher::new`], recording every exchange or answering from a recording
    /// (see [`Tape`]), its HTTP client taken from `clients`, which the fetchers of one
    /// plugin share (see [`Clients`]). Replaying, nothing is sent, yet the allow-list still
    /// refuses what it would refuse live.
    pub fn with_tape(
        grants: Grants,
        secrets: Secrets,
        config: &[(String, String)],
        limits: FetchLimits,
        tape: Tape,
        clients: &Clients,
    ) -> Result<Fetcher, SetupError> {
        let transport = Transport::new(limits, &grants, clients)?;
        let creds = Credentials::new(grants, secrets, config)?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                creds,
                transport,
                tape,
            }),
        })
    }

    /// Ends a recording, or says which requests a replay could not answer: a run with
    /// either problem is not what it claims to be.
    pub fn finish_tape(&self) -> Result<(), String> {
        match &self.inner.tape {
            Tape::Live | Tape::Check(_) => Ok(()),
            Tape::Record(r) => r.finish().map_err(|e| e.to_string()),
            Tape::Replay(r) => r.unanswered().map_or(Ok(()), Err),
        }
    }

    /// Sends one request, following redirects and retrying as documented on the crate,
    /// and returns its redacted response.
    pub async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        let budget = Budget::new(self.inner.transport.limits.max_held_bytes);
        self.fetch_within(req, &budget).await
    }

    /// [`Fetcher::fetch`], its body counted against `budget`, its call's.
    async fn fetch_within(
        &self,
        req: Request,
        budget: &Arc<Budget>,
    ) -> Result<Response, FetchError> {
        let inner = &self.inner;
        let (method, url) = (req.method, inner.creds.secrets.redact(&req.url));
        let mut credentialed = false;
        let result = match &inner.tape {
            Tape::Live => inner.fetch(req, budget, &mut credentialed).await,
            Tape::Record(recorder) => {
                let result = inner.fetch(req.clone(), budget, &mut credentialed).await;
                recorder.write(&req, &result);
                result
            }
            Tape::Replay(replay) => inner.replay(&req, replay),
            Tape::Check(check) => {
                let complete = || {
                    FetchError::Network(
                        "the connection check is complete: nothing more is sent".into(),
                    )
                };
                if check.is_done() {
                    return Err(complete());
                }
                // Given up (its slot, its retries) as soon as another request settles the
                // check.
                let answered = {
                    let fetch = inner.fetch(req, budget, &mut credentialed);
                    tokio::select! {
                        result = fetch => Some(result),
                        () = check.settled() => None,
                    }
                };
                let Some(result) = answered else {
                    return Err(complete());
                };
                if credentialed {
                    check.settle(&url, &result);
                }
                result
            }
        };
        match &result {
            Ok(r) => {
                tracing::debug!(plugin = inner.creds.grants.plugin(), ?method, %url, status = r.status, "fetched")
            }
            Err(FetchError::Denied(why)) => {
                inner.transport.stats.denied(1, why);
                tracing::warn!(plugin = inner.creds.grants.plugin(), "{why}");
            }
            Err(e) => {
                inner.transport.stats.failure();
                // The plugin gets the error and says what it could not list; the run
                // report counts failures.
                tracing::debug!(plugin = inner.creds.grants.plugin(), ?method, %url, "{e}");
            }
        }
        result
    }

    /// Sends every request concurrently (within the per-host limits) and returns their
    /// outcomes in the order given. A list longer than
    /// [`FetchLimits::max_batch`] is refused whole: every entry is `Denied`. The bodies
    /// of one call together stay within [`FetchLimits::max_held_bytes`]: a response that
    /// does not fit is `Denied`, naming that limit, and the others are kept.
    pub async fn fetch_many(&self, reqs: Vec<Request>) -> Vec<Result<Response, FetchError>> {
        let n = reqs.len();
        let max = self.inner.transport.limits.max_batch;
        if n > max {
            let why = format!(
                "plugin {:?} sent a fetch-many of {n} requests, over the limit of {max}: split the list",
                self.inner.creds.grants.plugin()
            );
            self.inner.transport.stats.denied(n as u64, &why);
            tracing::warn!(plugin = self.inner.creds.grants.plugin(), "{why}");
            return vec![Err(FetchError::Denied(why)); n];
        }
        let budget = Budget::new(self.inner.transport.limits.max_held_bytes);
        let mut tasks = JoinSet::new();
        for (i, req) in reqs.into_iter().enumerate() {
            let (me, budget) = (self.clone(), budget.clone());
            tasks.spawn(async move { (i, me.fetch_within(req, &budget).await) });
        }
        let mut out: Vec<Option<Result<Response, FetchError>>> = vec![None; n];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, result)) => out[i] = Some(result),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only aborting the set cancels a task, and nothing aborts it.
                Err(e) => unreachable!("fetch task cancelled: {e}"),
            }
        }
        out.into_iter()
            .map(|r| r.expect("every task reports its index"))
            .collect()
    }

    /// Whether it serves a connection check ([`Tape::Check`]), whose run writes nothing
    /// and ends at its first answer.
    pub fn is_check(&self) -> bool {
        matches!(self.inner.tape, Tape::Check(_))
    }

    /// What this fetcher has done so far.
    pub fn stats(&self) -> FetchStats {
        self.inner.transport.stats.snapshot()
    }

    /// `text` with every secret value (and its encodings) replaced by `{secret:NAME}`.
    pub fn redact(&self, text: &str) -> String {
        self.inner.creds.secrets.redact(text)
    }

    /// The secrets this fetcher substitutes and scrubs, with the encodings it derived
    /// (a basic-auth token): for scrubbing text that does not pass through it.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.creds.secrets
    }

    /// [`Fetcher::redact`], cut to at most `max` bytes: for text from the plugin that
    /// goes into logs, errors and reports (see [`Secrets::redact_capped`]).
    pub fn redact_capped(&self, text: &str, max: usize) -> String {
        self.inner.creds.secrets.redact_capped(text, max)
    }
}

impl Inner {
    fn plugin(&self) -> &str {
        self.creds.grants.plugin()
    }

    fn denied(&self, url: &str, from: Option<&Url>, why: &str) -> FetchError {
        let msg = match from {
            None => format!("plugin {:?} may not fetch {url}: {why}", self.plugin()),
            Some(prev) => format!(
                "plugin {:?}: the redirect from {prev} to {url} is refused: {why}",
                self.plugin()
            ),
        };
        FetchError::Denied(self.creds.secrets.redact(&msg))
    }

    /// The request's URL, if the plugin may fetch it at all.
    fn first_hop(&self, req: &Request) -> Result<Url, FetchError> {
        if mentions_placeholder(&req.url) {
            return Err(self.denied(&req.url, None, "placeholders are not substituted in URLs; no credential use puts a secret in a URL"));
        }
        Url::parse(&req.url)
            .map_err(|e| self.denied(&req.url, None, &format!("not an absolute URL ({e})")))
    }

    /// `req` answered from a recording, after the checks a live request passes first.
    fn replay(&self, req: &Request, replay: &Replay) -> Result<Response, FetchError> {
        let url = self.first_hop(req)?;
        self.creds
            .grants
            .check(&url)
            .map_err(|why| self.denied(url.as_str(), None, &why))?;
        replay.answer(req)
    }

    /// Sends `req`, hop by hop; `credentialed` turns true when a hop carried a credential.
    async fn fetch(
        &self,
        req: Request,
        budget: &Arc<Budget>,
        credentialed: &mut bool,
    ) -> Result<Response, FetchError> {
        let mut url = self.first_hop(&req)?;
        let mut method = req.method;
        let mut keep_body = true;
        let mut from: Option<Url> = None;
        let mut hops = 0;
        loop {
            let target = self
                .creds
                .grants
                .check(&url)
                .map_err(|why| self.denied(url.as_str(), from.as_ref(), &why))?;
            let prepared = self
                .creds
                .prepare(&req, method, keep_body, &url, &target)
                .map_err(|why| self.denied(url.as_str(), from.as_ref(), &why))?;
            *credentialed |= prepared.credentialed;
            let raw = self
                .transport
                .send(
                    &prepared,
                    &target,
                    &self.creds.secrets,
                    self.plugin(),
                    budget,
                )
                .await
                .map_err(|failed| self.settle(failed, &url, &target, from.as_ref()))?;
            let Some(next) = redirect_target(&raw, &url) else {
                return Ok(self.finish(raw));
            };
            if hops == self.transport.limits.max_redirects {
                return Err(FetchError::Network(self.creds.secrets.redact(&format!(
                    "{} redirected more than {} times (last to {next})",
                    req.url, self.transport.limits.max_redirects
                ))));
            }
            hops += 1;
            if matches!(raw.status, 301..=303) {
                // What browsers do, and RFC 9110 allows: the next hop is a GET without the body.
                if method != Method::Head {
                    method = Method::Get;
                }
                keep_body = false;
            }
            tracing::debug!(plugin = self.plugin(), status = raw.status, from = %self.creds.secrets.redact(url.as_str()), to = %self.creds.secrets.redact(next.as_str()), "following a redirect");
            from = Some(std::mem::replace(&mut url, next));
        }
    }

    /// A hop's final failure as the plugin sees it, redacted.
    fn settle(&self, failed: Failed, url: &Url, target: &Target, from: Option<&Url>) -> FetchError {
        let Failed { error, retries } = failed;
        let after = if retries == 0 {
            String::new()
        } else {
            format!(" (after {retries} retries)")
        };
        let redact = |m: String| self.creds.secrets.redact(&m);
        match error {
            AttemptError::Denied(why) => {
                let hint =
                    self.creds
                        .grants
                        .endpoint_hint(&target.scheme, &target.host, target.port);
                self.denied(url.as_str(), from, &format!("{why}{hint}"))
            }
            AttemptError::TooLarge(n) => FetchError::TooLarge(n),
            AttemptError::OverHeld(limit) => self.denied(
                url.as_str(),
                from,
                &format!(
                    "its response does not fit in the {} that one call may hold at once, \
                     with the responses of the same call already read (`responses_held_mib` \
                     under [limits]); ask for fewer or smaller pages in one fetch-many",
                    bytes(limit)
                ),
            ),
            AttemptError::Timeout(m) => FetchError::Timeout(redact(format!("{m}{after}"))),
            AttemptError::Network(m) => FetchError::Network(redact(format!("{m}{after}"))),
        }
    }

    /// The response the plugin gets: every secret value replaced, in the body and in
    /// header names and values.
    fn finish(&self, raw: Raw) -> Response {
        // The body stays held until the call returns with it.
        raw.held.keep();
        let redacted = self.creds.secrets.redact_bytes(&raw.body);
        let changed = redacted.is_some();
        let body = redacted.unwrap_or(raw.body);
        let headers = raw
            .headers
            .into_iter()
            .map(|(name, value)| {
                // Redaction changes the length; keep the header true to the body given.
                let value = if changed && name == CONTENT_LENGTH.as_str() {
                    body.len().to_string()
                } else {
                    self.creds.secrets.redact(&value)
                };
                // A provider can echo a secret as a header's name as easily as its value.
                (self.creds.secrets.redact(&name), value)
            })
            .collect();
        Response {
            status: raw.status,
            headers,
            body,
        }
    }
}

/// `n` bytes as a person reads them: MiB when whole, else bytes.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// The next URL if `raw` is a redirect with a usable `Location`.
fn redirect_target(raw: &Raw, current: &Url) -> Option<Url> {
    if !matches!(raw.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = raw.header("location")?;
    match current.join(location) {
        Ok(next) => Some(next),
        Err(e) => {
            // Handing the 3xx back lets the plugin see what the server said.
            tracing::debug!(location, "unusable redirect location: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetcher_is_shareable_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Fetcher>();
    }
}
