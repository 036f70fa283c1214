//! Credentials a plugin holds itself: a session token it got by exchanging a key the host
//! substituted (a JWT, an OAuth access token). Such tokens expire in the middle of long
//! syncs; the provider then refuses requests (HTTP 401, or its own way of saying so) and
//! the plugin must get a new token and ask again. [`fetch_many_in`] does that for every
//! plugin: it attaches the [`Session`]'s credentials to each request, and when some come
//! back refused, renews the session and resends those. A refusal of fresh credentials for
//! everything resent is handed back as it came, for the plugin to report (the key is
//! wrong or lacks access).

use crate::{Context, FetchError, Request, Response, SyncError};

/// A plugin's own credentials for one provider.
pub trait Session {
    /// `request` with the credentials attached (e.g. an `Authorization: Bearer` header);
    /// may first get a token, or renew one about to expire.
    fn authorize(&mut self, cx: &mut Context, request: Request) -> Result<Request, SyncError>;

    /// Gets new credentials after the provider refused `refused`, which may tell which of
    /// several tokens expired. An error here ends the sync.
    fn renew(&mut self, cx: &mut Context, refused: &[&Request]) -> Result<(), SyncError>;

    /// Whether `response` says the credentials were refused as expired. HTTP 401 unless
    /// the provider says it otherwise.
    fn expired(&self, response: &Response) -> bool {
        response.status == 401
    }
}

/// Whether a request refused for its credentials may be sent again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Resend {
    /// Send it again after renewing: a refused request read and changed nothing. Right for
    /// every read, and for cursors a refused request did not advance.
    #[default]
    Refused,
    /// Never: for cursors that may have advanced although the answer was a refusal, where
    /// a repeat would skip or repeat a batch. Renew, and hand the refusal back.
    Never,
}

/// Sends `requests` at once with `session`'s credentials; the outcomes are in the order of
/// the requests. Those the session calls expired are sent again after a renewal, as long
/// as each resend gets at least one accepted (a token that merely expires again, however
/// soon, is renewed again); when fresh credentials are refused for every request resent,
/// those refusals are their outcomes. With [`Resend::Never`] the session is renewed and
/// the refusals handed back. Errors only when credentials cannot be attached or renewed.
pub fn fetch_many_in(
    cx: &mut Context,
    session: &mut impl Session,
    requests: Vec<Request>,
    resend: Resend,
) -> Result<Vec<Result<Response, FetchError>>, SyncError> {
    let signed = requests
        .iter()
        .map(|r| session.authorize(cx, r.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = cx.fetch_many(signed);
    let mut pending: Vec<usize> = (0..out.len()).collect();
    loop {
        let refused: Vec<usize> = pending
            .into_iter()
            .filter(|&i| matches!(&out[i], Ok(r) if session.expired(r)))
            .collect();
        if refused.is_empty() {
            return Ok(out);
        }
        let refused_requests: Vec<&Request> = refused.iter().map(|&i| &requests[i]).collect();
        session.renew(cx, &refused_requests)?;
        if resend == Resend::Never {
            return Ok(out);
        }
        let again = refused
            .iter()
            .map(|&i| session.authorize(cx, requests[i].clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut accepted = false;
        for (&i, outcome) in refused.iter().zip(cx.fetch_many(again)) {
            accepted |= !matches!(&outcome, Ok(r) if session.expired(r));
            out[i] = outcome;
        }
        if !accepted {
            // Fresh credentials refused everywhere: no renewal will help.
            return Ok(out);
        }
        pending = refused;
    }
}

/// [`fetch_many_in`] for one request.
pub fn fetch_in(
    cx: &mut Context,
    session: &mut impl Session,
    request: Request,
    resend: Resend,
) -> Result<Result<Response, FetchError>, SyncError> {
    let mut out = fetch_many_in(cx, session, vec![request], resend)?;
    Ok(out.remove(0))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::context::tests::context;
    use crate::wit::http;

    /// A provider whose tokens are `t<n>`; it accepts only the newest, and refuses
    /// everything when `refuse_all`.
    struct Provider {
        newest: u32,
        refuse_all: bool,
        seen: Vec<String>,
        /// Requests a token is good for, if limited; counted per token.
        budget: Option<u32>,
        used: u32,
    }

    struct Token {
        current: u32,
        provider: Rc<RefCell<Provider>>,
        renewals: u32,
    }

    impl Session for Token {
        fn authorize(&mut self, _: &mut Context, r: Request) -> Result<Request, SyncError> {
            Ok(r.header("authorization", format!("Bearer t{}", self.current)))
        }
        fn renew(&mut self, _: &mut Context, refused: &[&Request]) -> Result<(), SyncError> {
            assert!(!refused.is_empty());
            self.renewals += 1;
            let mut p = self.provider.borrow_mut();
            p.newest += 1;
            p.used = 0;
            self.current = p.newest;
            Ok(())
        }
    }

    fn setup(refuse_all: bool) -> (Context, Token, Rc<RefCell<Provider>>) {
        let provider = Rc::new(RefCell::new(Provider {
            newest: 1,
            refuse_all,
            seen: Vec::new(),
            budget: None,
            used: 0,
        }));
        let p = provider.clone();
        let (cx, _) = context(Box::new(move |r: &http::Request| {
            let mut p = p.borrow_mut();
            let auth = r
                .headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            p.seen.push(format!("{} {auth}", r.url));
            let mut ok = !p.refuse_all && auth == format!("Bearer t{}", p.newest);
            if ok && let Some(budget) = p.budget {
                ok = p.used < budget;
                p.used += 1;
            }
            Ok(http::Response {
                status: if ok { 200 } else { 401 },
                headers: vec![],
                body: b"{}".to_vec(),
            })
        }));
        let token = Token {
            current: 1,
            provider: provider.clone(),
            renewals: 0,
        };
        (cx, token, provider)
    }

    fn statuses(out: &[Result<Response, FetchError>]) -> Vec<u16> {
        out.iter().map(|o| o.as_ref().unwrap().status).collect()
    }

    #[test]
    fn refused_requests_are_sent_again_after_one_renewal() {
        let (mut cx, mut token, provider) = setup(false);
        provider.borrow_mut().newest = 2; // the plugin's token t1 has expired
        let requests = vec![Request::get("https://p/a"), Request::get("https://p/b")];
        let out = fetch_many_in(&mut cx, &mut token, requests, Resend::Refused).unwrap();
        assert_eq!(statuses(&out), [200, 200]);
        assert_eq!(token.renewals, 1, "one renewal for both");
        assert_eq!(provider.borrow().seen.len(), 4);
        // With the token fresh, nothing is renewed or repeated.
        let out = fetch_in(
            &mut cx,
            &mut token,
            Request::get("https://p/c"),
            Resend::Refused,
        );
        assert_eq!(out.unwrap().unwrap().status, 200);
        assert_eq!((token.renewals, provider.borrow().seen.len()), (1, 5));
    }

    #[test]
    fn a_token_that_expires_again_soon_is_renewed_again() {
        let (mut cx, mut token, provider) = setup(false);
        provider.borrow_mut().budget = Some(2);
        let requests: Vec<Request> = (0..7)
            .map(|i| Request::get(format!("https://p/{i}")))
            .collect();
        let out = fetch_many_in(&mut cx, &mut token, requests, Resend::Refused).unwrap();
        assert_eq!(statuses(&out), [200; 7]);
        // 2 accepted per token: t1 takes 2 of 7, then t2, t3 and t4 the rest.
        assert_eq!(token.renewals, 3);
    }

    #[test]
    fn a_fresh_token_refused_is_handed_back_not_retried_forever() {
        let (mut cx, mut token, provider) = setup(true);
        let out = fetch_many_in(
            &mut cx,
            &mut token,
            vec![Request::get("https://p/a")],
            Resend::Refused,
        )
        .unwrap();
        assert_eq!(statuses(&out), [401]);
        assert_eq!((token.renewals, provider.borrow().seen.len()), (1, 2));
    }

    #[test]
    fn never_resend_renews_but_hands_the_refusal_back() {
        let (mut cx, mut token, provider) = setup(false);
        provider.borrow_mut().newest = 2;
        let out = fetch_many_in(
            &mut cx,
            &mut token,
            vec![Request::post("https://p/_api/cursor/7")],
            Resend::Never,
        )
        .unwrap();
        assert_eq!(statuses(&out), [401]);
        assert_eq!(token.renewals, 1);
        assert_eq!(
            provider.borrow().seen.len(),
            1,
            "the cursor was not asked twice"
        );
        // The next request carries the renewed token.
        let out = fetch_in(
            &mut cx,
            &mut token,
            Request::get("https://p/x"),
            Resend::Never,
        );
        assert_eq!(out.unwrap().unwrap().status, 200);
    }
}
