//! Sending one hop: a slot per host (concurrency and rate), the signature of each
//! attempt, the request timeout and body limit, retries of 429/502/503/504, connection
//! errors and timeouts (honouring `Retry-After`, else jittered backoff), and what a
//! failure was. What may be sent is decided before (`credentials`); what the plugin gets
//! back, after (`fetcher`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use infragraph_core::backoff;
use reqwest::Url;
use reqwest::header::HeaderMap;

use crate::clients::Clients;
use crate::error::AttemptError;
use crate::grants::Target;
use crate::held::{Budget, Held};
use crate::resolver::refusal;
use crate::retry::{RETRY_STATUSES, retry_after};
use crate::sigv4::SigV4Key;
use crate::stats::Counters;
use crate::throttle::Throttle;
use crate::{FetchLimits, Secrets, SetupError};

/// One hop, ready to send.
pub(crate) struct Prepared {
    pub(crate) method: reqwest::Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// Signs each attempt (its `x-amz-date` is the attempt's, so a long backoff cannot
    /// make it stale).
    pub(crate) sigv4: Option<SigV4Key>,
    /// Whether it carries a credential (substituted, an `Authorization` the host adds, or
    /// a signature): what a connection check waits for the answer to.
    pub(crate) credentialed: bool,
}

/// A response before redaction.
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The body's bytes in its call's budget, given back if this is dropped.
    pub(crate) held: Held,
}

impl Raw {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a hop failed for good, after `retries` retries.
pub(crate) struct Failed {
    pub(crate) error: AttemptError,
    pub(crate) retries: u32,
}

/// The HTTP client of one plugin with its limits, slots and counters.
pub(crate) struct Transport {
    pub(crate) limits: FetchLimits,
    pub(crate) stats: Counters,
    client: reqwest::Client,
    throttle: Throttle,
}

impl Transport {
    /// Checks the limits and takes the client for `grants` from `clients` (see
    /// [`Clients`]).
    pub(crate) fn new(
        limits: FetchLimits,
        grants: &crate::Grants,
        clients: &Clients,
    ) -> Result<Transport, SetupError> {
        if limits.max_held_bytes == 0 {
            return Err(SetupError::Limits {
                name: "max_held_bytes",
                why: "must be at least 1",
            });
        }
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
        let client = clients.client(grants)?;
        let throttle = Throttle::new(limits.per_host_concurrency, limits.per_host_rate);
        Ok(Transport {
            limits,
            stats: Counters::default(),
            client,
            throttle,
        })
    }

    /// Sends one hop, retrying as the crate documents.
    pub(crate) async fn send(
        &self,
        req: &Prepared,
        target: &Target,
        secrets: &Secrets,
        plugin: &str,
        budget: &Arc<Budget>,
    ) -> Result<Raw, Failed> {
        let mut retries = 0;
        loop {
            let outcome = self.attempt(req, target, secrets, budget).await;
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
                return outcome.map_err(|error| Failed { error, retries });
            };
            retries += 1;
            self.stats.retry();
            let why = match &outcome {
                Ok(raw) => format!("status {}", raw.status),
                Err(e) => secrets.redact(&e.to_string()),
            };
            // Counted in the run report; one line each would bury what matters.
            tracing::debug!(plugin, url = %secrets.redact(req.url.as_str()), retry = retries, delay_ms = delay.as_millis() as u64, "{why}; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: wait for the host's slot, send, read the body within the timeout.
    async fn attempt(
        &self,
        req: &Prepared,
        target: &Target,
        secrets: &Secrets,
        budget: &Arc<Budget>,
    ) -> Result<Raw, AttemptError> {
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
            .map_err(|why| AttemptError::Denied(secrets.redact(&why)))?;
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
            let mut held = Held::new(budget);
            let over = |limit| AttemptError::OverHeld(limit);
            if let Some(len) = resp.content_length() {
                held.reserve(len).map_err(over)?;
            }
            // Sized once when the length is known (it fits the limits, checked above),
            // rather than grown and copied chunk by chunk.
            let mut body = Vec::with_capacity(resp.content_length().map_or(0, |n| n as usize));
            while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, &req.url))? {
                self.stats.received(chunk.len());
                let len = (body.len() + chunk.len()) as u64;
                if len > max {
                    return Err(AttemptError::TooLarge(max));
                }
                held.reserve(len).map_err(over)?;
                body.extend_from_slice(&chunk);
            }
            held.shrink_to(body.len() as u64);
            Ok(Raw {
                status,
                headers,
                body,
                held,
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
    fn error_chain_keeps_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(chain(&Outer(io)), "tcp connect error: refused");
    }
}
