//! The fetcher: allow-list, credentials, redirects, retries, limits, redaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use infragraph_core::{CredentialUse, backoff};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use tokio::task::JoinSet;

use crate::error::AttemptError;
use crate::grants::{CredentialGrant, Target};
use crate::resolver::{GuardedResolver, refusal};
use crate::retry::{RETRY_STATUSES, retry_after};
use crate::secrets::{basic_token, form_encode, json_escape, mentions_placeholder, placeholders};
use crate::sigv4::{SIGNING_HEADERS, SigV4Key};
use crate::stats::Counters;
use crate::throttle::Throttle;
use crate::{
    FetchError, FetchLimits, FetchStats, Grants, Method, Request, Response, Secrets, SetupError,
};

/// Headers the host owns. `host` would let a plugin reach another virtual host behind a
/// granted address; the framing and hop-by-hop ones could desynchronise the connection.
const HOST_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Headers describing a body, dropped with it when a redirect turns the request into a GET.
const BODY_HEADERS: [&str; 3] = ["content-type", "content-encoding", "content-language"];

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
            .field("plugin", &self.inner.grants.plugin())
            .field("secrets", &self.inner.secrets)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    grants: Grants,
    secrets: Secrets,
    /// Basic-auth user names, by credential name.
    basic_users: HashMap<String, String>,
    /// AWS signing keys of the `aws-sigv4` credentials that are set, by credential name.
    sigv4: HashMap<String, SigV4Key>,
    limits: FetchLimits,
    client: reqwest::Client,
    throttle: Throttle,
    stats: Counters,
}

/// One hop, ready to send.
struct Prepared {
    method: reqwest::Method,
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Signs each attempt (its `x-amz-date` is the attempt's, so a long backoff cannot
    /// make it stale).
    sigv4: Option<SigV4Key>,
}

/// A response before redaction.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a placeholder sits, which decides the credential uses allowed there.
#[derive(Clone, Copy)]
enum Place {
    Header,
    Body,
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
        mut secrets: Secrets,
        config: &[(String, String)],
        limits: FetchLimits,
    ) -> Result<Fetcher, SetupError> {
        if limits.per_host_concurrency == 0 {
            return Err(SetupError::Limits {
                name: "per_host_concurrency",
                why: "must be at least 1",
            });
        }
        if let Some(rate) = limits.per_host_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(SetupError::Limits {
                name: "per_host_rate",
                why: "must be a positive number of requests per second",
            });
        }
        let mut basic_users = HashMap::new();
        for c in grants.credentials() {
            let CredentialUse::Basic(key) = &c.use_ else {
                continue;
            };
            // An unset optional credential needs no user: it is never sent.
            let Some(password) = secrets.get(&c.name).map(str::to_owned) else {
                continue;
            };
            let Some((_, user)) = config.iter().find(|(k, _)| k == key) else {
                return Err(SetupError::MissingBasicUser {
                    plugin: grants.plugin().to_owned(),
                    credential: c.name.clone(),
                    key: key.clone(),
                });
            };
            secrets.add_encoding(&c.name, basic_token(user, &password));
            basic_users.insert(c.name.clone(), user.clone());
        }
        let mut sigv4 = HashMap::new();
        for c in grants.credentials() {
            let CredentialUse::AwsSigv4(a) = &c.use_ else {
                continue;
            };
            // An unset optional credential signs nothing.
            let Some(secret) = secrets.get(&c.name).map(str::to_owned) else {
                continue;
            };
            let value = |key: &str, what: &'static str| {
                config
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SetupError::MissingSigningConfig {
                        plugin: grants.plugin().to_owned(),
                        credential: c.name.clone(),
                        what,
                        key: key.to_owned(),
                        hint: grants
                            .config_env(key)
                            .map(|env| format!("; set {env}"))
                            .unwrap_or_default(),
                    })
            };
            let key = SigV4Key {
                credential: c.name.clone(),
                access_key_id: value(&a.access_key_id, "access key id")?,
                secret_access_key: secret,
                session_token: a
                    .session_token
                    .as_ref()
                    .and_then(|t| secrets.get(t))
                    .map(str::to_owned),
                region: value(&a.region, "region")?,
                service: a.service.clone(),
            };
            sigv4.insert(c.name.clone(), key);
        }
        let client = reqwest::Client::builder()
            // Every hop must pass the allow-list and credential checks again.
            .redirect(reqwest::redirect::Policy::none())
            // Our own loop retries and counts every attempt.
            .retry(reqwest::retry::never())
            // A proxy from the environment would carry plugin traffic past the checks.
            .no_proxy()
            .user_agent(concat!("infragraph/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver::new(grants.trusted_names()))
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        let throttle = Throttle::new(limits.per_host_concurrency, limits.per_host_rate);
        Ok(Fetcher {
            inner: Arc::new(Inner {
                grants,
                secrets,
                basic_users,
                sigv4,
                limits,
                client,
                throttle,
                stats: Counters::default(),
            }),
        })
    }

    /// Sends one request, following redirects and retrying as documented on the crate,
    /// and returns its redacted response.
    pub async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        let inner = &self.inner;
        let (method, url) = (req.method, inner.secrets.redact(&req.url));
        let result = inner.fetch(req).await;
        match &result {
            Ok(r) => {
                tracing::debug!(plugin = inner.grants.plugin(), ?method, %url, status = r.status, "fetched")
            }
            Err(FetchError::Denied(why)) => {
                inner.stats.denied(1, why);
                tracing::warn!(plugin = inner.grants.plugin(), "{why}");
            }
            Err(e) => {
                inner.stats.failure();
                tracing::warn!(plugin = inner.grants.plugin(), ?method, %url, "{e}");
            }
        }
        result
    }

    /// Sends every request concurrently (within the per-host limits) and returns their
    /// outcomes in the order given. A list longer than
    /// [`FetchLimits::max_batch`] is refused whole: every entry is `Denied`.
    pub async fn fetch_many(&self, reqs: Vec<Request>) -> Vec<Result<Response, FetchError>> {
        let n = reqs.len();
        let max = self.inner.limits.max_batch;
        if n > max {
            let why = format!(
                "plugin {:?} sent a fetch-many of {n} requests, over the limit of {max}: split the list",
                self.inner.grants.plugin()
            );
            self.inner.stats.denied(n as u64, &why);
            tracing::warn!(plugin = self.inner.grants.plugin(), "{why}");
            return vec![Err(FetchError::Denied(why)); n];
        }
        let mut tasks = JoinSet::new();
        for (i, req) in reqs.into_iter().enumerate() {
            let me = self.clone();
            tasks.spawn(async move { (i, me.fetch(req).await) });
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

    /// What this fetcher has done so far.
    pub fn stats(&self) -> FetchStats {
        self.inner.stats.snapshot()
    }

    /// `text` with every secret value (and its encodings) replaced by `{secret:NAME}`.
    pub fn redact(&self, text: &str) -> String {
        self.inner.secrets.redact(text)
    }
}

impl Inner {
    fn plugin(&self) -> &str {
        self.grants.plugin()
    }

    fn denied(&self, url: &str, from: Option<&Url>, why: &str) -> FetchError {
        let msg = match from {
            None => format!("plugin {:?} may not fetch {url}: {why}", self.plugin()),
            Some(prev) => format!(
                "plugin {:?}: the redirect from {prev} to {url} is refused: {why}",
                self.plugin()
            ),
        };
        FetchError::Denied(self.secrets.redact(&msg))
    }

    async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        if mentions_placeholder(&req.url) {
            return Err(self.denied(&req.url, None, "placeholders are not substituted in URLs; no credential use puts a secret in a URL"));
        }
        let mut url = Url::parse(&req.url)
            .map_err(|e| self.denied(&req.url, None, &format!("not an absolute URL ({e})")))?;
        let mut method = req.method;
        let mut keep_body = true;
        let mut from: Option<Url> = None;
        let mut hops = 0;
        loop {
            let target = self
                .grants
                .check(&url)
                .map_err(|why| self.denied(url.as_str(), from.as_ref(), &why))?;
            let prepared = self
                .prepare(&req, method, keep_body, &url, &target)
                .map_err(|why| self.denied(url.as_str(), from.as_ref(), &why))?;
            let raw = self.send(prepared, &target, from.as_ref()).await?;
            let Some(next) = redirect_target(&raw, &url) else {
                return Ok(self.finish(raw));
            };
            if hops == self.limits.max_redirects {
                return Err(FetchError::Network(self.secrets.redact(&format!(
                    "{} redirected more than {} times (last to {next})",
                    req.url, self.limits.max_redirects
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
            tracing::debug!(plugin = self.plugin(), status = raw.status, from = %self.secrets.redact(url.as_str()), to = %self.secrets.redact(next.as_str()), "following a redirect");
            from = Some(std::mem::replace(&mut url, next));
        }
    }

    /// Builds one hop from the plugin's original request: its placeholders are resolved
    /// against this hop's host, so a credential only goes where it is granted.
    fn prepare(
        &self,
        req: &Request,
        method: Method,
        keep_body: bool,
        url: &Url,
        target: &Target,
    ) -> Result<Prepared, String> {
        let auth = self.auth_header(target)?;
        let signer = self.signer(target);
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            if mentions_placeholder(name) {
                return Err(format!(
                    "header name {name:?} holds a placeholder; placeholders go in header values"
                ));
            }
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            if HOST_HEADERS.contains(&hname.as_str()) {
                return Err(format!(
                    "header {:?} is set by the host, not by the plugin",
                    hname.as_str()
                ));
            }
            if !keep_body && BODY_HEADERS.contains(&hname.as_str()) {
                continue;
            }
            if auth.is_some() && hname == AUTHORIZATION {
                // The manifest says the host authenticates to this host; its credential wins.
                continue;
            }
            if signer.is_some() && SIGNING_HEADERS.contains(&hname.as_str()) {
                // The signature covers exactly what the host sends; these are its own.
                continue;
            }
            let (value, secret) = self.substitute(value.as_bytes(), Place::Header, target)?;
            let mut hvalue = HeaderValue::from_bytes(&value).map_err(|_| {
                let after = if secret {
                    " once its credential is substituted"
                } else {
                    ""
                };
                format!("header {name:?} has a value that is not a valid header value{after}")
            })?;
            hvalue.set_sensitive(secret);
            headers.append(hname, hvalue);
        }
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth);
        }
        let body = if keep_body {
            self.substitute(&req.body, Place::Body, target)?.0
        } else {
            Vec::new()
        };
        Ok(Prepared {
            method: method.into(),
            url: url.clone(),
            headers,
            body,
            sigv4: signer,
        })
    }

    /// The signing key of the first `aws-sigv4` credential granted to `target` and set.
    /// Checked per hop: a redirect to another host is not signed.
    fn signer(&self, target: &Target) -> Option<SigV4Key> {
        self.grants
            .credentials()
            .iter()
            .filter(|c| matches!(c.use_, CredentialUse::AwsSigv4(_)) && c.granted(target))
            .find_map(|c| self.sigv4.get(&c.name).cloned())
    }

    /// The `Authorization` header of the first bearer or basic credential granted to
    /// `target` and set.
    fn auth_header(&self, target: &Target) -> Result<Option<HeaderValue>, String> {
        for c in self.grants.credentials() {
            if !matches!(c.use_, CredentialUse::Bearer | CredentialUse::Basic(_))
                || !c.granted(target)
            {
                continue;
            }
            let Some(value) = self.secrets.get(&c.name) else {
                continue;
            };
            let text = match self.basic_users.get(&c.name) {
                Some(user) => format!("Basic {}", basic_token(user, value)),
                None => format!("Bearer {value}"),
            };
            let mut header = HeaderValue::from_str(&text).map_err(|_| {
                format!(
                    "credential {:?} holds characters an HTTP header cannot carry",
                    c.name
                )
            })?;
            header.set_sensitive(true);
            return Ok(Some(header));
        }
        Ok(None)
    }

    /// `bytes` with each placeholder replaced by its credential's value, encoded for
    /// `place`, and whether any was.
    fn substitute(
        &self,
        bytes: &[u8],
        place: Place,
        target: &Target,
    ) -> Result<(Vec<u8>, bool), String> {
        let found = placeholders(bytes)?;
        if found.is_empty() {
            return Ok((bytes.to_vec(), false));
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut last = 0;
        for p in &found {
            let (cred, value) = self.credential(&p.name, place, target)?;
            out.extend_from_slice(&bytes[last..p.start]);
            match cred.use_ {
                CredentialUse::JsonBody => out.extend_from_slice(json_escape(value).as_bytes()),
                CredentialUse::FormBody => {
                    out.extend_from_slice(form_encode(value.as_bytes()).as_bytes())
                }
                _ => out.extend_from_slice(value.as_bytes()),
            }
            last = p.end;
        }
        out.extend_from_slice(&bytes[last..]);
        Ok((out, true))
    }

    /// The credential a placeholder names and its value, if it may be used at `place` in a
    /// request to `target`.
    fn credential(
        &self,
        name: &str,
        place: Place,
        target: &Target,
    ) -> Result<(&CredentialGrant, &str), String> {
        let creds = self.grants.credentials();
        let Some(cred) = creds.iter().find(|c| c.name == name) else {
            let names: Vec<&str> = creds.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "`{{secret:{name}}}` names no credential of the manifest (it declares [{}])",
                names.join(", ")
            ));
        };
        let fits = matches!(
            (&cred.use_, place),
            (CredentialUse::Header, Place::Header)
                | (
                    CredentialUse::JsonBody | CredentialUse::FormBody,
                    Place::Body
                )
        );
        if !fits {
            let rule = match cred.use_ {
                CredentialUse::Header => "only in header values",
                CredentialUse::JsonBody => "only inside a JSON string in the body",
                CredentialUse::FormBody => "only in a form-encoded body",
                CredentialUse::Bearer | CredentialUse::Basic(_) => {
                    "nowhere: the host adds it as the Authorization header on requests to its hosts"
                }
                CredentialUse::AwsSigv4(_) => {
                    "nowhere: the host signs requests to its hosts with it (AWS Signature Version 4)"
                }
            };
            let here = match place {
                Place::Header => "a header",
                Place::Body => "the body",
            };
            return Err(format!(
                "`{{secret:{name}}}` is in {here}, but the manifest lets that credential appear {rule}"
            ));
        }
        if !cred.granted(target) {
            return Err(format!(
                "credential {name:?} may be sent only to {}, not to {}://{}",
                cred.hosts_text(),
                target.scheme,
                target.host_key()
            ));
        }
        let Some(value) = self.secrets.get(name) else {
            return Err(format!(
                "credential {name:?} is not set; set the environment variable {}",
                cred.env
            ));
        };
        Ok((cred, value))
    }

    /// Sends one hop, retrying as the crate documents.
    async fn send(
        &self,
        req: Prepared,
        target: &Target,
        from: Option<&Url>,
    ) -> Result<Raw, FetchError> {
        let mut retries = 0;
        loop {
            let outcome = self.attempt(&req, target).await;
            let delay = match &outcome {
                Ok(raw) if RETRY_STATUSES.contains(&raw.status) => Some(
                    raw.header("retry-after")
                        .and_then(|v| retry_after(v, SystemTime::now()))
                        .map(|d| d.min(self.limits.retry_after_cap))
                        .unwrap_or_else(|| backoff(self.limits.backoff_base, retries)),
                ),
                Err(AttemptError::Timeout(_) | AttemptError::Network(_)) => {
                    Some(backoff(self.limits.backoff_base, retries))
                }
                _ => None,
            };
            let Some(delay) = delay.filter(|_| retries < self.limits.max_retries) else {
                return self.settle(outcome, &req.url, target, from, retries);
            };
            retries += 1;
            self.stats.retry();
            let why = match &outcome {
                Ok(raw) => format!("status {}", raw.status),
                Err(e) => self.secrets.redact(&e.to_string()),
            };
            tracing::info!(plugin = self.plugin(), url = %self.secrets.redact(req.url.as_str()), retry = retries, delay_ms = delay.as_millis() as u64, "{why}; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn settle(
        &self,
        outcome: Result<Raw, AttemptError>,
        url: &Url,
        target: &Target,
        from: Option<&Url>,
        retries: u32,
    ) -> Result<Raw, FetchError> {
        let after = if retries == 0 {
            String::new()
        } else {
            format!(" (after {retries} retries)")
        };
        let redact = |m: String| self.secrets.redact(&m);
        match outcome {
            Ok(raw) => Ok(raw),
            Err(AttemptError::Denied(why)) => {
                let hint = self
                    .grants
                    .endpoint_hint(&target.scheme, &target.host, target.port);
                Err(self.denied(url.as_str(), from, &format!("{why}{hint}")))
            }
            Err(AttemptError::TooLarge(n)) => Err(FetchError::TooLarge(n)),
            Err(AttemptError::Timeout(m)) => {
                Err(FetchError::Timeout(redact(format!("{m}{after}"))))
            }
            Err(AttemptError::Network(m)) => {
                Err(FetchError::Network(redact(format!("{m}{after}"))))
            }
        }
    }

    /// One attempt: wait for the host's slot, send, read the body within the timeout.
    async fn attempt(&self, req: &Prepared, target: &Target) -> Result<Raw, AttemptError> {
        let host = target.host_key();
        let _permit = self.throttle.enter(&host).await;
        self.stats.request(&host, req.body.len());
        let timeout = self.limits.request_timeout;
        let mut headers = req.headers.clone();
        if let Some(key) = &req.sigv4 {
            key.sign(
                req.method.as_str(),
                req.url.as_str(),
                &mut headers,
                &req.body,
                SystemTime::now(),
            )
            .map_err(|why| AttemptError::Denied(self.secrets.redact(&why)))?;
        }
        let exchange = async {
            let mut resp = self
                .client
                .request(req.method.clone(), req.url.clone())
                .headers(headers)
                .body(req.body.clone())
                .send()
                .await
                .map_err(|e| classify(&e, &req.url))?;
            self.stats.response();
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let max = self.limits.max_body_bytes;
            if resp.content_length().is_some_and(|len| len > max) {
                return Err(AttemptError::TooLarge(max));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, &req.url))? {
                self.stats.received(chunk.len());
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(AttemptError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Raw {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(AttemptError::Timeout(format!(
                "no complete answer from {} within {}",
                req.url,
                human(timeout)
            ))),
        }
    }

    /// The response the plugin gets: every secret value replaced.
    fn finish(&self, raw: Raw) -> Response {
        let redacted = self.secrets.redact_bytes(&raw.body);
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
                    self.secrets.redact(&value)
                };
                (name, value)
            })
            .collect();
        Response {
            status: raw.status,
            headers,
            body,
        }
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

fn classify(err: &reqwest::Error, url: &Url) -> AttemptError {
    if let Some(refused) = refusal(err) {
        return AttemptError::Denied(refused.to_string());
    }
    if err.is_timeout() {
        return AttemptError::Timeout(format!("{url}: {}", chain(err)));
    }
    AttemptError::Network(chain(err))
}

/// An error and its causes, joined, since reqwest's own text omits the cause.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cur = e.source();
    }
    text
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
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

    #[test]
    fn error_chain_keeps_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(chain(&Outer(io)), "tcp connect error: refused");
    }
}
