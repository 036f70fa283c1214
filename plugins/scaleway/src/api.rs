//! Scaleway's two list conventions and the walk over every listing at once.
//!
//! Most APIs (Account, IAM) take `page` and `page_size` and return `total_count` in the
//! body; the Instance API takes `page` and `per_page` and returns the total in the
//! `X-Total-Count` header. Both cap a page at 100 items (`docs/providers/scaleway.md`).

use std::cell::{RefCell, RefMut};
use std::rc::Rc;

use infragraph_sdk::{Context, Request, Response, SyncError, Walker, each};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::records::Records;

/// The most items Scaleway serves per page, in both conventions.
pub const PAGE_SIZE: u64 = 100;

/// Which list convention an API follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// `page`/`page_size`, `total_count` in the body, filtered by `organization_id`.
    BodyTotal,
    /// The Instance API: `page`/`per_page`, `X-Total-Count` header, filtered by
    /// `organization`.
    HeaderTotal,
}

impl Paging {
    fn size_param(self) -> &'static str {
        match self {
            Paging::BodyTotal => "page_size",
            Paging::HeaderTotal => "per_page",
        }
    }

    fn organization_param(self) -> &'static str {
        match self {
            Paging::BodyTotal => "organization_id",
            Paging::HeaderTotal => "organization",
        }
    }
}

/// Where and for whom to list.
pub struct Api {
    base: String,
    organization: String,
}

impl Api {
    /// `base` is the API URL, e.g. `https://api.scaleway.com`.
    pub fn new(base: &str, organization: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            organization: organization.to_owned(),
        }
    }

    /// The request for page `n` of `path`, authenticated by the host: the plugin only
    /// ever writes the placeholder.
    fn request(&self, path: &str, paging: Paging) -> impl FnMut(u64) -> Request + use<> {
        let filter = (paging.organization_param(), self.organization.clone());
        self.request_by(path, paging, filter)
    }

    /// The same, filtered by `(key, value)` instead of the Organization, e.g. a policy's
    /// rules (`policy_id`), which the API lists per policy only.
    fn request_by(
        &self,
        path: &str,
        paging: Paging,
        (key, value): (&'static str, String),
    ) -> impl FnMut(u64) -> Request + use<> {
        let url = format!("{}{path}", self.base);
        move |page| {
            Request::get(&url)
                .query("page", page)
                .query(paging.size_param(), PAGE_SIZE)
                .query(key, &value)
                .header("X-Auth-Token", "{secret:secret_key}")
        }
    }
}

/// What one listing feeds: the label marked incomplete if it fails, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub label: &'static str,
    /// `None` for global APIs.
    pub zone: Option<String>,
    pub path: String,
}

impl Feed {
    /// Why the label is incomplete, for the run report.
    pub fn reason(&self, error: &SyncError) -> String {
        let error = match error {
            SyncError::Fetch(m) | SyncError::Provider(m) | SyncError::Auth(m) => m.clone(),
            other => other.to_string(),
        };
        match &self.zone {
            Some(zone) => format!("zone {zone}: listing {} failed: {error}", self.path),
            None => format!("listing {} failed: {error}", self.path),
        }
    }
}

/// How each listing ended, in the order added.
pub type Outcomes = Vec<(Feed, Result<(), SyncError>)>;

/// Requests per round of the walk: five times the host's default per-host concurrency
/// (16), so every round keeps the host busy (and its last wave rarely runs part empty),
/// while a round's pages (about 60 KB each) stay a few MB in the guest and the host.
/// Also at least the 66 first pages of the default zones (6 global listings, 6 in each
/// of 10 zones), so a wrong key is seen on every listing in the first round.
const ROUND: usize = 80;

/// Every listing of a sync, walked together in rounds of [`ROUND`] requests: page 1 of
/// each listing first, then the remaining pages listing after listing. Each page is turned
/// into records and emitted as soon as its round is parsed, so neither the JSON nor the
/// parsed listings are ever held whole.
pub struct Listings {
    walker: Walker<'static>,
    feeds: Vec<Feed>,
    records: Rc<RefCell<Records>>,
}

impl Listings {
    pub fn new() -> Listings {
        Listings::resume(Records::default())
    }

    /// Listings that carry on from `records` (of an earlier walk), so that an item
    /// already written is not written again and edge ends are checked against everything
    /// listed so far.
    pub fn resume(records: Records) -> Listings {
        Listings {
            walker: Walker::new().max_round(ROUND),
            feeds: Vec::new(),
            records: Rc::new(RefCell::new(records)),
        }
    }

    /// Records added here are emitted with the first page, e.g. the Organization.
    pub fn records(&self) -> RefMut<'_, Records> {
        self.records.borrow_mut()
    }

    /// Adds the listing of `path`, feeding `label`; `to_records` turns each page's items
    /// into records, which are emitted right away.
    pub fn add<T: DeserializeOwned + 'static>(
        &mut self,
        api: &Api,
        feed: (&'static str, Option<&str>),
        path: String,
        paging: Paging,
        to_records: impl FnMut(Vec<T>, &mut Records) + 'static,
    ) {
        let request = api.request(&path, paging);
        self.add_request(request, feed, path, paging, to_records);
    }

    /// Adds the listing of `path` filtered by `filter` rather than by the Organization
    /// (body-total paging), e.g. `("policy_id", id)` for one policy's rules.
    pub fn add_by<T: DeserializeOwned + 'static>(
        &mut self,
        api: &Api,
        feed: (&'static str, Option<&str>),
        path: String,
        filter: (&'static str, String),
        to_records: impl FnMut(Vec<T>, &mut Records) + 'static,
    ) {
        let paging = Paging::BodyTotal;
        // The filter names the listing in a failure's reason: which policy's rules.
        let shown = format!("{path}?{}={}", filter.0, filter.1);
        let request = api.request_by(&path, paging, filter);
        self.add_request(request, feed, shown, paging, to_records);
    }

    fn add_request<T: DeserializeOwned + 'static>(
        &mut self,
        request: impl FnMut(u64) -> Request + 'static,
        (label, zone): (&'static str, Option<&str>),
        path: String,
        paging: Paging,
        mut to_records: impl FnMut(Vec<T>, &mut Records) + 'static,
    ) {
        let records = self.records.clone();
        let sink = each(move |cx: &mut Context, items: Vec<T>| {
            let mut records = records.borrow_mut();
            to_records(items, &mut records);
            records.emit(cx);
            Ok(())
        });
        let walker = std::mem::take(&mut self.walker);
        self.walker = walker.pages_with_total(sink, request, move |r| parse(r, paging), PAGE_SIZE);
        self.feeds.push(Feed {
            label,
            zone: zone.map(str::to_owned),
            path,
        });
    }

    /// Walks every listing to its end or its own error; the outcome of each, and the
    /// nodes written per label.
    pub fn run(self, cx: &mut Context) -> (Outcomes, Records) {
        let Listings {
            walker,
            feeds,
            records,
        } = self;
        let outcomes = feeds.into_iter().zip(walker.run_each(cx)).collect();
        (outcomes, records.take())
    }
}

/// One page of any listing: the items under the key the endpoint uses.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(
        alias = "projects",
        alias = "users",
        alias = "groups",
        alias = "applications",
        alias = "api_keys",
        alias = "servers",
        alias = "volumes",
        alias = "snapshots",
        alias = "ips",
        alias = "policies",
        alias = "rules"
    )]
    items: Vec<T>,
    total_count: Option<u64>,
}

/// Reads one page: its items and the listing's total.
///
/// A 401 is the only error that stops the sync (the key is wrong everywhere); any other
/// failure is this listing's alone, so it comes back as a fetch error the caller turns
/// into an incomplete label. That is why a 403 is not left to `StatusError`'s mapping,
/// which would call it an auth failure.
pub fn parse<T: DeserializeOwned>(
    response: &Response,
    paging: Paging,
) -> Result<(Vec<T>, u64), SyncError> {
    if response.status == 401 {
        return Err(SyncError::auth(format!(
            "Scaleway refused the secret key ({} answered HTTP 401): check SCW_SECRET_KEY",
            response.url
        )));
    }
    if let Err(e) = response.error_for_status() {
        return Err(SyncError::fetch(e.to_string()));
    }
    let page: Page<T> = response
        .json()
        .map_err(|e| SyncError::provider(format!("{}: {e}", response.url)))?;
    let header = response
        .header("x-total-count")
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Each convention's own total first; the other as a fallback, then the page itself
    // (a full page without a total still makes the walk probe the next one).
    let total = match paging {
        Paging::BodyTotal => page.total_count.or(header),
        Paging::HeaderTotal => header.or(page.total_count),
    };
    let total = total.unwrap_or(page.items.len() as u64);
    Ok((page.items, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            url: "https://api.scaleway.com/x".into(),
        }
    }

    #[test]
    fn totals_come_from_the_body_or_the_header() {
        let r = response(200, &[], r#"{"users":[1,2],"total_count":250}"#);
        assert_eq!(parse::<u32>(&r, Paging::BodyTotal), Ok((vec![1, 2], 250)));
        let r = response(200, &[("X-Total-Count", "101")], r#"{"servers":[3]}"#);
        assert_eq!(parse::<u32>(&r, Paging::HeaderTotal), Ok((vec![3], 101)));
        let r = response(200, &[], r#"{"ips":[4,5]}"#);
        assert_eq!(parse::<u32>(&r, Paging::HeaderTotal), Ok((vec![4, 5], 2)));
    }

    #[test]
    fn only_a_401_is_an_auth_failure() {
        let e = parse::<u32>(&response(401, &[], "{}"), Paging::BodyTotal).unwrap_err();
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("SCW_SECRET_KEY")),
            "{e}"
        );
        let e = parse::<u32>(&response(403, &[], "denied"), Paging::HeaderTotal).unwrap_err();
        assert!(
            matches!(&e, SyncError::Fetch(m) if m.contains("403")),
            "{e}"
        );
        let e = parse::<u32>(&response(200, &[], "{}"), Paging::HeaderTotal).unwrap_err();
        assert!(matches!(e, SyncError::Provider(_)));
    }

    #[test]
    fn requests_use_each_convention_and_only_a_placeholder() {
        let api = Api::new("https://api.scaleway.com/", "org-1");
        let r = api.request("/iam/v1alpha1/users", Paging::BodyTotal)(3);
        assert_eq!(
            r.url(),
            "https://api.scaleway.com/iam/v1alpha1/users?page=3&page_size=100&organization_id=org-1"
        );
        // Rules are listed per policy; the API takes no Organization filter there.
        let filter = ("policy_id", "p-1".to_owned());
        let r = api.request_by("/iam/v1alpha1/rules", Paging::BodyTotal, filter)(2);
        assert_eq!(
            r.url(),
            "https://api.scaleway.com/iam/v1alpha1/rules?page=2&page_size=100&policy_id=p-1"
        );
        let r = api.request("/instance/v1/zones/fr-par-1/ips", Paging::HeaderTotal)(1);
        assert!(
            r.url()
                .ends_with("ips?page=1&per_page=100&organization=org-1")
        );
        assert_eq!(
            r.headers(),
            [(
                "X-Auth-Token".to_string(),
                "{secret:secret_key}".to_string()
            )]
        );
    }
}
