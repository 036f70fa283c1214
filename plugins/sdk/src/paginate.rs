//! Walking paginated listings through `fetch-many`, so that independent pages, and
//! independent listings, cost one host call per round instead of one per request.
//!
//! Every walk is bounded: a provider whose totals drift, whose pages come back short or
//! whose links loop ends the walk instead of looping forever.

use std::collections::HashSet;
use std::marker::PhantomData;

use crate::{Context, FetchError, Method, Request, Response, SyncError};

/// The most pages one walk fetches. A walk that would need more fails rather than return a
/// silently truncated listing, since cleanup would then delete what it missed.
pub const MAX_PAGES: u64 = 100_000;

/// The most requests one walk adds to a single `fetch-many` call, bounding how many
/// response bodies are held at once.
const MAX_PAGES_PER_ROUND: u64 = 1_000;

/// Where a walk puts each page's items as soon as the page is parsed.
///
/// A `&mut Vec<T>` collects the whole listing; [`Each`] (built with [`each`]) hands every
/// page to a closure instead, so a large listing can be emitted page by page and never
/// held whole.
pub trait Sink<T> {
    /// Takes one page's items. An error ends this listing's walk with that error.
    fn page(&mut self, cx: &mut Context, items: Vec<T>) -> Result<(), SyncError>;
}

impl<T> Sink<T> for &mut Vec<T> {
    fn page(&mut self, _: &mut Context, items: Vec<T>) -> Result<(), SyncError> {
        self.extend(items);
        Ok(())
    }
}

/// A [`Sink`] calling a closure with the context and each page's items; see [`each`].
pub struct Each<F>(F);

/// A [`Sink`] that calls `f(cx, items)` once per page, in page order, right after the page
/// is parsed: emit the items there and they are never all held at once.
pub fn each<T, F>(f: F) -> Each<F>
where
    F: FnMut(&mut Context, Vec<T>) -> Result<(), SyncError>,
{
    Each(f)
}

impl<T, F> Sink<T> for Each<F>
where
    F: FnMut(&mut Context, Vec<T>) -> Result<(), SyncError>,
{
    fn page(&mut self, cx: &mut Context, items: Vec<T>) -> Result<(), SyncError> {
        (self.0)(cx, items)
    }
}

/// Several listings walked together: each round sends the next requests of every
/// listing in one `fetch-many` call.
///
/// ```no_run
/// # use infragraph_sdk::*;
/// # fn sync(cx: &mut Context) -> Result<(), SyncError> {
/// # let page = |path: &str, n: u64| Request::get(format!("https://api.example/{path}?page={n}"));
/// let (mut users, mut groups) = (Vec::<serde_json::Value>::new(), Vec::new());
/// Walker::new()
///     .pages_with_total(&mut users, |n| page("users", n), |r| {
///         let body: serde_json::Value = r.error_for_status()?.json()?;
///         Ok((body["users"].as_array().cloned().unwrap_or_default(), body["total"].as_u64().unwrap_or(0)))
///     }, 100)
///     .pages_with_total(&mut groups, |n| page("groups", n), |r| {
///         let body: serde_json::Value = r.error_for_status()?.json()?;
///         Ok((body["groups"].as_array().cloned().unwrap_or_default(), body["total"].as_u64().unwrap_or(0)))
///     }, 100)
///     .run(cx)?;
/// # Ok(()) }
/// ```
///
/// A large estate is better streamed: [`each`] as the sink emits every page as it is
/// parsed, and [`max_round`](Walker::max_round) bounds the pages fetched (and so held)
/// per round.
///
/// ```no_run
/// # use infragraph_sdk::*;
/// # fn sync(cx: &mut Context) -> Result<(), SyncError> {
/// # let request = |n: u64| Request::get(format!("https://api.example/servers?page={n}"));
/// # let parse = |r: &Response| -> Result<(Vec<String>, u64), SyncError> { Ok((r.json()?, 0)) };
/// let servers = each(|cx: &mut Context, ids: Vec<String>| {
///     for id in ids {
///         cx.node("AcmeServer", id).emit();
///     }
///     Ok(())
/// });
/// Walker::new()
///     .max_round(64)
///     .pages_with_total(servers, request, parse, 100)
///     .run(cx)?;
/// # Ok(()) }
/// ```
#[must_use = "a Walker fetches nothing until `.run(cx)`"]
pub struct Walker<'a> {
    walks: Vec<Box<dyn Walk + 'a>>,
    max_round: usize,
}

impl Default for Walker<'_> {
    fn default() -> Self {
        Walker::new()
    }
}

/// One listing's state machine: the requests of its next round, then their outcomes.
trait Walk {
    /// At most `limit` (at least 1) requests; empty when the walk is over.
    fn requests(&mut self, limit: u64) -> Vec<Request>;
    /// Outcomes in the order of the requests; fetch errors already name their URL. Items
    /// go to the walk's sink; warnings to `cx`.
    fn accept(
        &mut self,
        cx: &mut Context,
        outcomes: Vec<Result<Response, SyncError>>,
    ) -> Result<(), SyncError>;
}

impl<'a> Walker<'a> {
    /// No listings yet; rounds unbounded but for 1,000 pages per listing.
    pub fn new() -> Walker<'a> {
        Walker {
            walks: Vec::new(),
            max_round: usize::MAX,
        }
    }

    /// At most `requests` (at least 1) in one round, shared by the listings in the order
    /// they were added: the first listings' pages go first and the rest wait for a later
    /// round. Each round's responses are all held until the round is parsed, so this
    /// bounds memory; keep it a few times the host's per-host concurrency (16 by default)
    /// so that every round keeps the host busy.
    pub fn max_round(mut self, requests: usize) -> Walker<'a> {
        self.max_round = requests.max(1);
        self
    }

    /// A listing with numbered pages and a total item count, each page's items given to
    /// `out` (a `&mut Vec<T>`, or [`each`]).
    ///
    /// `request(n)` builds the request for page `n`, starting at 1. `parse` reads a page's
    /// items and the total the provider reports (from the body or a header), and decides
    /// what a status means. Page 1 is fetched first; the pages the total implies follow in
    /// the next round (or rounds, see [`max_round`](Walker::max_round)). If the provider
    /// returned fewer items on page 1 than asked for although the total is larger, its own
    /// page size is used. If the last page is full, one more page is probed in case the
    /// listing grew during the walk; nothing further is fetched.
    pub fn pages_with_total<T: 'a>(
        mut self,
        out: impl Sink<T> + 'a,
        request: impl FnMut(u64) -> Request + 'a,
        parse: impl FnMut(&Response) -> Result<(Vec<T>, u64), SyncError> + 'a,
        page_size: u64,
    ) -> Walker<'a> {
        self.walks.push(Box::new(TotalWalk {
            out,
            request,
            parse,
            page_size: page_size.max(1),
            state: TotalState::First,
            round_end: 0,
            items: PhantomData,
        }));
        self
    }

    /// A listing where each page links to the next (`nextLink`, `@odata.nextLink`, a
    /// `Link` header), each page's items given to `out`.
    ///
    /// `parse` returns a page's items and the next link, if any; a relative link is
    /// resolved against the current URL. Later pages are GETs with `first`'s headers. A
    /// link seen before ends the walk with a warning.
    pub fn next_link<T: 'a>(
        mut self,
        out: impl Sink<T> + 'a,
        first: Request,
        parse: impl FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError> + 'a,
    ) -> Walker<'a> {
        let mut seen = HashSet::new();
        seen.insert(first.url.clone());
        self.walks.push(Box::new(LinkWalk {
            out,
            headers: first.headers.clone(),
            next: Some(first),
            parse,
            seen,
            pages: 0,
            items: PhantomData,
        }));
        self
    }

    /// A listing where each page returns a cursor token for the next, each page's items
    /// given to `out`.
    ///
    /// `request(None)` builds the first request and `request(Some(cursor))` the following
    /// ones. `parse` returns a page's items and the next cursor; `None` or an empty cursor
    /// ends the walk, and so does a cursor seen before, with a warning.
    pub fn cursor<T: 'a>(
        mut self,
        out: impl Sink<T> + 'a,
        request: impl FnMut(Option<&str>) -> Request + 'a,
        parse: impl FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError> + 'a,
    ) -> Walker<'a> {
        self.walks.push(Box::new(CursorWalk {
            out,
            request,
            parse,
            cursor: None,
            done: false,
            seen: HashSet::new(),
            pages: 0,
            items: PhantomData,
        }));
        self
    }

    /// Walks every listing; stops at the first error.
    pub fn run(self, cx: &mut Context) -> Result<(), SyncError> {
        self.drive(cx, true).into_iter().collect()
    }

    /// Walks every listing, each to its end or its own error, and returns one outcome per
    /// listing in the order they were added: a failed zone need not stop the others.
    pub fn run_each(self, cx: &mut Context) -> Vec<Result<(), SyncError>> {
        self.drive(cx, false)
    }

    fn drive(mut self, cx: &mut Context, fail_fast: bool) -> Vec<Result<(), SyncError>> {
        let mut results: Vec<Result<(), SyncError>> = self.walks.iter().map(|_| Ok(())).collect();
        loop {
            let mut requests = Vec::new();
            let mut spans = Vec::new();
            for (i, walk) in self.walks.iter_mut().enumerate() {
                let room = self.max_round - requests.len();
                if room == 0 {
                    break;
                }
                if results[i].is_ok() {
                    let next = walk.requests(room as u64);
                    if !next.is_empty() {
                        spans.push((i, next.len()));
                        requests.extend(next);
                    }
                }
            }
            if requests.is_empty() {
                return results;
            }
            let urls: Vec<String> = requests.iter().map(|r| r.url.clone()).collect();
            let outcomes = if requests.len() == 1 {
                vec![cx.fetch(requests.remove(0))]
            } else {
                cx.fetch_many(requests)
            };
            let mut outcomes = outcomes
                .into_iter()
                .zip(urls)
                .map(|(o, url)| o.map_err(|e| fetch_error(&url, e)));
            for (i, n) in spans {
                let result = self.walks[i].accept(cx, outcomes.by_ref().take(n).collect());
                if let Err(e) = result {
                    if fail_fast {
                        return vec![Err(e)];
                    }
                    results[i] = Err(e);
                }
            }
        }
    }
}

fn fetch_error(url: &str, e: FetchError) -> SyncError {
    SyncError::fetch(format!("{url}: {e}"))
}

fn too_many_pages(url: &str) -> SyncError {
    SyncError::provider(format!(
        "gave up on the listing at {url} after {MAX_PAGES} pages; it may never end"
    ))
}

/// Walks a listing with page numbers and a total; see [`Walker::pages_with_total`].
pub fn pages_with_total<T>(
    cx: &mut Context,
    request: impl FnMut(u64) -> Request,
    parse: impl FnMut(&Response) -> Result<(Vec<T>, u64), SyncError>,
    page_size: u64,
) -> Result<Vec<T>, SyncError> {
    let mut out = Vec::new();
    Walker::new()
        .pages_with_total(&mut out, request, parse, page_size)
        .run(cx)?;
    Ok(out)
}

/// Walks a listing of linked pages; see [`Walker::next_link`].
pub fn next_link<T>(
    cx: &mut Context,
    first: Request,
    parse: impl FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError>,
) -> Result<Vec<T>, SyncError> {
    let mut out = Vec::new();
    Walker::new().next_link(&mut out, first, parse).run(cx)?;
    Ok(out)
}

/// Walks a listing with cursor tokens; see [`Walker::cursor`].
pub fn cursor<T>(
    cx: &mut Context,
    request: impl FnMut(Option<&str>) -> Request,
    parse: impl FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError>,
) -> Result<Vec<T>, SyncError> {
    let mut out = Vec::new();
    Walker::new().cursor(&mut out, request, parse).run(cx)?;
    Ok(out)
}

/// Sends every request in one `fetch-many` call and pairs each outcome with its key, e.g.
/// a zone, in the order given.
pub fn fetch_all<K>(
    cx: &mut Context,
    requests: impl IntoIterator<Item = (K, Request)>,
) -> Vec<(K, Result<Response, FetchError>)> {
    let (keys, requests): (Vec<K>, Vec<Request>) = requests.into_iter().unzip();
    keys.into_iter().zip(cx.fetch_many(requests)).collect()
}

/// Builds one request per key, sends them all in one `fetch-many` call, then calls `each`
/// with the context, the key and its outcome, in the order given. `each` may emit, log or
/// mark a key's listing incomplete; its first error stops the walk and is returned.
pub fn for_each_concurrently<K>(
    cx: &mut Context,
    keys: impl IntoIterator<Item = K>,
    mut request: impl FnMut(&K) -> Request,
    mut each: impl FnMut(&mut Context, K, Result<Response, FetchError>) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    let pairs: Vec<(K, Request)> = keys
        .into_iter()
        .map(|k| {
            let r = request(&k);
            (k, r)
        })
        .collect();
    for (key, outcome) in fetch_all(cx, pairs) {
        each(cx, key, outcome)?;
    }
    Ok(())
}

enum TotalState {
    First,
    /// Pages `next..=last` remain; `size` is the page size the provider actually uses.
    Pages {
        next: u64,
        last: u64,
        size: u64,
    },
    Probe {
        page: u64,
        size: u64,
    },
    Done,
}

/// `fn(T)` only ties `T` to the walk: the walk hands items on, it does not own any.
type Items<T> = PhantomData<fn(T)>;

struct TotalWalk<T, S, R, P> {
    out: S,
    request: R,
    parse: P,
    page_size: u64,
    state: TotalState,
    /// The last page requested in the current round, while in `Pages`.
    round_end: u64,
    items: Items<T>,
}

impl<T, S, R, P> Walk for TotalWalk<T, S, R, P>
where
    S: Sink<T>,
    R: FnMut(u64) -> Request,
    P: FnMut(&Response) -> Result<(Vec<T>, u64), SyncError>,
{
    fn requests(&mut self, limit: u64) -> Vec<Request> {
        match self.state {
            TotalState::First => vec![(self.request)(1)],
            TotalState::Pages { next, last, .. } => {
                let end = last.min(next + limit.min(MAX_PAGES_PER_ROUND) - 1);
                self.round_end = end;
                (next..=end).map(&mut self.request).collect()
            }
            TotalState::Probe { page, .. } => vec![(self.request)(page)],
            TotalState::Done => Vec::new(),
        }
    }

    fn accept(
        &mut self,
        cx: &mut Context,
        outcomes: Vec<Result<Response, SyncError>>,
    ) -> Result<(), SyncError> {
        let mut last = (0, String::new());
        for outcome in outcomes {
            let response = outcome?;
            let (items, total) = (self.parse)(&response)?;
            let len = items.len() as u64;
            if let TotalState::First = self.state {
                self.state = self.after_first(len, total, &response.url)?;
                drop(response);
                return self.out.page(cx, items);
            }
            last = (len, response.url);
            self.out.page(cx, items)?;
        }
        let (last_len, url) = last;
        self.state = match self.state {
            TotalState::Pages { last, size, .. } => {
                let next = self.round_end + 1;
                if next <= last {
                    TotalState::Pages { next, last, size }
                } else if last_len >= size {
                    TotalState::Probe {
                        page: last + 1,
                        size,
                    }
                } else {
                    TotalState::Done
                }
            }
            TotalState::Probe { size, .. } => {
                if last_len >= size {
                    cx.warn(format!(
                        "{url} was still a full page after the pages the first total implied; \
                         the listing grew during the walk and may be incomplete"
                    ));
                }
                TotalState::Done
            }
            TotalState::First | TotalState::Done => TotalState::Done,
        };
        Ok(())
    }
}

impl<T, S, R, P> TotalWalk<T, S, R, P> {
    /// What page 1 (`len` items of `total`) says about the rest.
    fn after_first(&self, len: u64, total: u64, url: &str) -> Result<TotalState, SyncError> {
        // A provider may cap the page size below what was asked, or ignore it; its first
        // page shows the size it really uses whenever that page is not the whole listing.
        let size = if len > 0 && (len < total || len > self.page_size) {
            len
        } else {
            self.page_size
        };
        let pages = if len >= total {
            1
        } else {
            total.div_ceil(size)
        };
        if pages > MAX_PAGES {
            return Err(SyncError::provider(format!(
                "{url} reports {total} items, {pages} pages of {size}: more than the \
                 {MAX_PAGES} pages a walk fetches"
            )));
        }
        Ok(if pages >= 2 {
            TotalState::Pages {
                next: 2,
                last: pages,
                size,
            }
        } else if len >= size {
            TotalState::Probe { page: 2, size }
        } else {
            TotalState::Done
        })
    }
}

struct LinkWalk<T, S, P> {
    out: S,
    headers: Vec<(String, String)>,
    next: Option<Request>,
    parse: P,
    seen: HashSet<String>,
    pages: u64,
    items: Items<T>,
}

impl<T, S, P> Walk for LinkWalk<T, S, P>
where
    S: Sink<T>,
    P: FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError>,
{
    fn requests(&mut self, _: u64) -> Vec<Request> {
        self.next.take().into_iter().collect()
    }

    fn accept(
        &mut self,
        cx: &mut Context,
        outcomes: Vec<Result<Response, SyncError>>,
    ) -> Result<(), SyncError> {
        for outcome in outcomes {
            let response = outcome?;
            let (items, link) = (self.parse)(&response)?;
            self.out.page(cx, items)?;
            self.pages += 1;
            let Some(link) = link.filter(|l| !l.is_empty()) else {
                continue;
            };
            let url = resolve(&response.url, &link);
            if !self.seen.insert(url.clone()) {
                cx.warn(format!(
                    "{} links back to {url}, already fetched; stopping there",
                    response.url
                ));
                continue;
            }
            if self.pages >= MAX_PAGES {
                return Err(too_many_pages(&url));
            }
            self.next = Some(Request {
                method: Method::Get,
                url,
                headers: self.headers.clone(),
                body: Vec::new(),
            });
        }
        Ok(())
    }
}

struct CursorWalk<T, S, R, P> {
    out: S,
    request: R,
    parse: P,
    cursor: Option<String>,
    done: bool,
    seen: HashSet<String>,
    pages: u64,
    items: Items<T>,
}

impl<T, S, R, P> Walk for CursorWalk<T, S, R, P>
where
    S: Sink<T>,
    R: FnMut(Option<&str>) -> Request,
    P: FnMut(&Response) -> Result<(Vec<T>, Option<String>), SyncError>,
{
    fn requests(&mut self, _: u64) -> Vec<Request> {
        if self.done {
            return Vec::new();
        }
        // Until a response says otherwise, this round is the last.
        self.done = true;
        vec![(self.request)(self.cursor.as_deref())]
    }

    fn accept(
        &mut self,
        cx: &mut Context,
        outcomes: Vec<Result<Response, SyncError>>,
    ) -> Result<(), SyncError> {
        for outcome in outcomes {
            let response = outcome?;
            let (items, cursor) = (self.parse)(&response)?;
            self.out.page(cx, items)?;
            self.pages += 1;
            let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
                continue;
            };
            if !self.seen.insert(cursor.clone()) {
                cx.warn(format!(
                    "{} returned cursor {cursor:?} a second time; stopping there",
                    response.url
                ));
                continue;
            }
            if self.pages >= MAX_PAGES {
                return Err(too_many_pages(&response.url));
            }
            self.cursor = Some(cursor);
            self.done = false;
        }
        Ok(())
    }
}

/// `link` made absolute against `base`, for providers that return `/v1/users?page=2` or
/// `?page=2` instead of a full URL.
fn resolve(base: &str, link: &str) -> String {
    if link.contains("://") {
        return link.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(base.len(), |i| scheme_end + i);
    let path_end = base.find(['?', '#']).unwrap_or(base.len());
    if link.starts_with("//") {
        format!("{}{}", &base[..scheme_end.saturating_sub(2)], link)
    } else if link.starts_with('/') {
        format!("{}{link}", &base[..origin_end])
    } else if link.starts_with('?') {
        format!("{}{link}", &base[..path_end])
    } else {
        let dir_end = base[..path_end]
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .map_or(origin_end, |i| i + 1);
        let sep = if dir_end == origin_end { "/" } else { "" };
        format!("{}{sep}{link}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::context::tests::context;
    use crate::host::fake::Record;
    use crate::wit::http;

    /// A paginated listing of `0..total` behind `https://api/items?page=N&per_page=M`,
    /// serving at most `cap` items a page whatever is asked.
    fn listing(total: Rc<RefCell<u64>>, cap: u64) -> crate::host::fake::Responder {
        Box::new(move |r: &http::Request| {
            let query = r.url.split_once('?').map_or("", |(_, q)| q);
            let param = |name: &str| {
                query.split('&').find_map(|kv| {
                    kv.strip_prefix(name)?
                        .strip_prefix('=')?
                        .parse::<u64>()
                        .ok()
                })
            };
            let (page, per_page) = (param("page").unwrap(), param("per_page").unwrap().min(cap));
            let total = *total.borrow();
            let start = (page - 1) * per_page;
            let items: Vec<u64> = (start..total.min(start + per_page)).collect();
            let body = serde_json::json!({ "items": items, "total": total });
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        })
    }

    fn page_request(per_page: u64) -> impl FnMut(u64) -> Request {
        move |n| {
            Request::get("https://api/items")
                .query("page", n)
                .query("per_page", per_page)
        }
    }

    fn parse_items(r: &Response) -> Result<(Vec<u64>, u64), SyncError> {
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<u64>,
            total: u64,
        }
        let page: Page = r.error_for_status()?.json()?;
        Ok((page.items, page.total))
    }

    fn pages_fetched(record: &Rc<RefCell<Record>>) -> Vec<usize> {
        record.borrow().calls.iter().map(Vec::len).collect()
    }

    #[test]
    fn total_walk_fetches_the_rest_in_one_call() {
        let total = Rc::new(RefCell::new(950));
        let (mut cx, record) = context(listing(total, 1000));
        let items = pages_with_total(&mut cx, page_request(100), parse_items, 100).unwrap();
        assert_eq!(items, (0..950).collect::<Vec<_>>());
        assert_eq!(
            pages_fetched(&record),
            [1, 9],
            "page 1, then pages 2..=10 together"
        );
    }

    #[test]
    fn total_walk_probes_once_after_a_full_last_page() {
        let total = Rc::new(RefCell::new(300));
        let (mut cx, record) = context(listing(total, 1000));
        let items = pages_with_total(&mut cx, page_request(100), parse_items, 100).unwrap();
        assert_eq!(items.len(), 300);
        assert_eq!(pages_fetched(&record), [1, 2, 1]);
        assert!(record.borrow().logs.is_empty());
    }

    #[test]
    fn total_walk_adopts_a_capped_page_size() {
        let total = Rc::new(RefCell::new(250));
        let (mut cx, record) = context(listing(total, 100));
        let items = pages_with_total(&mut cx, page_request(1000), parse_items, 1000).unwrap();
        assert_eq!(items, (0..250).collect::<Vec<_>>());
        assert_eq!(pages_fetched(&record), [1, 2]);
    }

    #[test]
    fn total_walk_is_bounded_when_the_listing_keeps_growing() {
        let total = Rc::new(RefCell::new(200));
        let grows = total.clone();
        let mut inner = listing(total, 1000);
        let (mut cx, record) = context(Box::new(move |r| {
            let response = inner(r);
            *grows.borrow_mut() += 150;
            response
        }));
        let items = pages_with_total(&mut cx, page_request(100), parse_items, 100).unwrap();
        // Page 1 said 200 (2 pages); page 2 and the one probe are all that follow.
        assert_eq!(items.len(), 300);
        assert_eq!(pages_fetched(&record), [1, 1, 1]);
        let logs = &record.borrow().logs;
        assert!(logs[0].1.contains("may be incomplete"), "{logs:?}");
    }

    #[test]
    fn total_walk_of_an_empty_listing_is_one_request() {
        let total = Rc::new(RefCell::new(0));
        let (mut cx, record) = context(listing(total, 1000));
        let items = pages_with_total(&mut cx, page_request(100), parse_items, 100).unwrap();
        assert!(items.is_empty());
        assert_eq!(pages_fetched(&record), [1]);
    }

    #[test]
    fn total_walk_refuses_an_absurd_total() {
        let (mut cx, _) = context(Box::new(|_| {
            let body = br#"{"items":[1],"total":1000000000}"#.to_vec();
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body,
            })
        }));
        let e = pages_with_total(&mut cx, page_request(1), parse_items, 1).unwrap_err();
        assert!(matches!(e, SyncError::Provider(m) if m.contains("more than the 100000 pages")));
    }

    #[test]
    fn total_walk_chunks_huge_listings() {
        let total = Rc::new(RefCell::new(2_500));
        let (mut cx, record) = context(listing(total, 1000));
        let items = pages_with_total(&mut cx, page_request(1), parse_items, 1).unwrap();
        assert_eq!(items.len(), 2_500);
        assert_eq!(pages_fetched(&record), [1, 1000, 1000, 499, 1]);
    }

    #[test]
    fn walker_shares_rounds_between_listings() {
        let total = Rc::new(RefCell::new(250));
        let (mut cx, record) = context(listing(total, 1000));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        Walker::new()
            .pages_with_total(&mut a, page_request(100), parse_items, 100)
            .pages_with_total(&mut b, page_request(50), parse_items, 50)
            .run(&mut cx)
            .unwrap();
        assert_eq!((a.len(), b.len()), (250, 250));
        // The second listing's last page is full, so it alone probes one more.
        assert_eq!(pages_fetched(&record), [2, 2 + 4, 1]);
    }

    #[test]
    fn errors_stop_the_walk_or_only_their_listing() {
        let total = Rc::new(RefCell::new(250));
        let mut inner = listing(total, 1000);
        let respond = move |r: &http::Request| {
            if r.url.contains("per_page=50") && r.url.contains("page=3&") {
                return Err(http::FetchError::Timeout("slow".into()));
            }
            inner(r)
        };
        let respond = Rc::new(RefCell::new(respond));
        let shared = respond.clone();
        let (mut cx, _) = context(Box::new(move |r| (shared.borrow_mut())(r)));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let results = Walker::new()
            .pages_with_total(&mut b, page_request(50), parse_items, 50)
            .pages_with_total(&mut a, page_request(100), parse_items, 100)
            .run_each(&mut cx);
        assert!(
            matches!(&results[0], Err(SyncError::Fetch(m)) if m.contains("page=3") && m.contains("timed out"))
        );
        assert!(results[1].is_ok());
        assert_eq!(a.len(), 250);
        let (mut cx, _) = context(Box::new(move |r| (respond.borrow_mut())(r)));
        let e = pages_with_total(&mut cx, page_request(50), parse_items, 50).unwrap_err();
        assert!(matches!(e, SyncError::Fetch(_)));
    }

    #[test]
    fn max_round_shares_rounds_in_order_and_pages_stream_as_they_come() {
        let total = Rc::new(RefCell::new(450));
        let (mut cx, record) = context(listing(total, 1000));
        // (listing, items on the page, host calls made when the page reached the sink)
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = |name: &'static str| {
            let (seen, record) = (seen.clone(), record.clone());
            each(move |cx: &mut Context, items: Vec<u64>| {
                let calls = record.borrow().calls.len();
                seen.borrow_mut().push((name, items.len(), calls));
                cx.node("Item", items[0].to_string()).emit();
                Ok(())
            })
        };
        let mut collected = Vec::new();
        Walker::new()
            .max_round(4)
            .pages_with_total(sink("a"), page_request(100), parse_items, 100)
            .pages_with_total(&mut collected, page_request(200), parse_items, 200)
            .run(&mut cx)
            .unwrap();
        assert_eq!(collected, (0..450).collect::<Vec<_>>());
        // Round 1: both page 1s. Round 2: pages 2-5 of `a` fill it, so the other listing's
        // pages 2 and 3 wait for round 3.
        assert_eq!(pages_fetched(&record), [2, 4, 2]);
        assert_eq!(
            *seen.borrow(),
            [
                ("a", 100, 1),
                ("a", 100, 2),
                ("a", 100, 2),
                ("a", 100, 2),
                ("a", 50, 2)
            ],
            "each page reaches its sink in page order, right after its round"
        );
    }

    #[test]
    fn a_failing_sink_ends_only_its_listing() {
        let total = Rc::new(RefCell::new(250));
        let (mut cx, _) = context(listing(total, 1000));
        let mut pages = 0;
        let mut ok = Vec::new();
        let results = Walker::new()
            .max_round(2)
            .pages_with_total(
                each(|_: &mut Context, _: Vec<u64>| {
                    pages += 1;
                    Err(SyncError::provider("cannot take it"))
                }),
                page_request(100),
                parse_items,
                100,
            )
            .pages_with_total(&mut ok, page_request(100), parse_items, 100)
            .run_each(&mut cx);
        assert!(matches!(&results[0], Err(SyncError::Provider(m)) if m == "cannot take it"));
        assert!(results[1].is_ok());
        assert_eq!((pages, ok.len()), (1, 250));
    }

    fn linked(pages: Vec<(&'static str, Option<&'static str>)>) -> crate::host::fake::Responder {
        Box::new(move |r: &http::Request| {
            let (_, next) = pages
                .iter()
                .find(|(url, _)| *url == r.url)
                .expect("a known page");
            let body = serde_json::json!({ "value": [r.url.clone()], "@odata.nextLink": next });
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        })
    }

    fn parse_linked(r: &Response) -> Result<(Vec<String>, Option<String>), SyncError> {
        let v: serde_json::Value = r.json()?;
        let items = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        Ok((items, v["@odata.nextLink"].as_str().map(str::to_owned)))
    }

    #[test]
    fn next_link_follows_absolute_and_relative_links() {
        let (mut cx, record) = context(linked(vec![
            ("https://api/v1/users", Some("https://api/v1/users?skip=1")),
            ("https://api/v1/users?skip=1", Some("/v1/users?skip=2")),
            ("https://api/v1/users?skip=2", Some("?skip=3")),
            ("https://api/v1/users?skip=3", None),
        ]));
        let first =
            Request::get("https://api/v1/users").header("authorization", "Bearer {secret:t}");
        let items = next_link(&mut cx, first, parse_linked).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[3], "https://api/v1/users?skip=3");
        assert_eq!(pages_fetched(&record), [1, 1, 1, 1]);
    }

    #[test]
    fn next_link_stops_at_a_repeated_link() {
        let (mut cx, record) = context(linked(vec![
            ("https://api/a", Some("https://api/b")),
            ("https://api/b", Some("https://api/a")),
        ]));
        let items = next_link(&mut cx, Request::get("https://api/a"), parse_linked).unwrap();
        assert_eq!(items, ["https://api/a", "https://api/b"]);
        assert!(record.borrow().logs[0].1.contains("already fetched"));
    }

    #[test]
    fn next_link_gives_up_after_max_pages() {
        let (mut cx, record) = context(Box::new(|r: &http::Request| {
            let n: u64 = r.url.rsplit('=').next().unwrap().parse().unwrap();
            let body = serde_json::json!({ "value": [], "@odata.nextLink": format!("https://api/x?n={}", n + 1) });
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        }));
        let e = next_link(&mut cx, Request::get("https://api/x?n=0"), parse_linked).unwrap_err();
        assert!(matches!(e, SyncError::Provider(m) if m.contains("after 100000 pages")));
        assert_eq!(record.borrow().calls.len() as u64, MAX_PAGES);
    }

    #[test]
    fn cursor_walks_until_no_cursor_or_a_repeat() {
        let (mut cx, record) = context(Box::new(|r: &http::Request| {
            let next = match r.url.split_once("cursor=").map(|(_, c)| c) {
                None => "\"c1\"",
                Some("c1") => "\"c2\"",
                Some("c2") => "\"\"",
                Some(_) => unreachable!("no other cursor is handed out"),
            };
            let body = format!(r#"{{"value":["{}"],"next":{next}}}"#, r.url);
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: body.into_bytes(),
            })
        }));
        let parse = |r: &Response| {
            let v: serde_json::Value = r.json()?;
            Ok((
                vec![v["value"][0].as_str().unwrap().to_owned()],
                v["next"].as_str().map(str::to_owned),
            ))
        };
        let request = |c: Option<&str>| match c {
            None => Request::get("https://api/x"),
            Some(c) => Request::get("https://api/x").query("cursor", c),
        };
        let items = cursor(&mut cx, request, parse).unwrap();
        assert_eq!(
            items,
            [
                "https://api/x",
                "https://api/x?cursor=c1",
                "https://api/x?cursor=c2"
            ]
        );
        assert_eq!(pages_fetched(&record), [1, 1, 1]);

        let (mut cx, record) = context(Box::new(|_: &http::Request| {
            let body = br#"{"value":["same"],"next":"again"}"#.to_vec();
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body,
            })
        }));
        let items = cursor(&mut cx, request, parse).unwrap();
        assert_eq!(items.len(), 2);
        assert!(record.borrow().logs[0].1.contains("a second time"));
    }

    #[test]
    fn fan_out_is_one_call_in_order() {
        let (mut cx, record) = context(Box::new(|r: &http::Request| {
            if r.url.ends_with("nl-ams-3") {
                return Err(http::FetchError::Denied("not granted".into()));
            }
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: r.url.clone().into_bytes(),
            })
        }));
        let zones = ["fr-par-1", "nl-ams-3", "pl-waw-1"];
        let out = fetch_all(
            &mut cx,
            zones.map(|z| (z, Request::get(format!("https://api/{z}")))),
        );
        assert_eq!(
            out.iter().map(|(z, o)| (*z, o.is_ok())).collect::<Vec<_>>(),
            [("fr-par-1", true), ("nl-ams-3", false), ("pl-waw-1", true)]
        );
        let mut seen = Vec::new();
        for_each_concurrently(
            &mut cx,
            zones,
            |z| Request::get(format!("https://api/{z}")),
            |cx, zone, outcome| {
                match outcome {
                    Ok(r) => seen.push(r.text().into_owned()),
                    Err(e) => cx.mark_incomplete(
                        "Server",
                        Some(crate::NodeRef::id("Zone", zone)),
                        &e.to_string(),
                    ),
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, ["https://api/fr-par-1", "https://api/pl-waw-1"]);
        assert_eq!(pages_fetched(&record), [3, 3]);
        assert_eq!(
            record.borrow().incomplete[0].1.as_ref().unwrap().value,
            "nl-ams-3"
        );
    }

    #[test]
    fn resolves_links() {
        let base = "https://api.x/v1/users?page=1";
        assert_eq!(resolve(base, "https://other/y"), "https://other/y");
        assert_eq!(resolve(base, "/v2/users?p=2"), "https://api.x/v2/users?p=2");
        assert_eq!(resolve(base, "?page=2"), "https://api.x/v1/users?page=2");
        assert_eq!(resolve(base, "groups?p=1"), "https://api.x/v1/groups?p=1");
        assert_eq!(resolve(base, "//cdn.x/a"), "https://cdn.x/a");
        assert_eq!(resolve("https://api.x", "a"), "https://api.x/a");
        assert_eq!(resolve("https://api.x?q", "?r"), "https://api.x?r");
    }
}
