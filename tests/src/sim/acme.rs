use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::accounts::{Account, Accounts, Denied, PerAccount};
use super::server::{RequestLog, Server};

/// Everything the Acme Directory API serves for its one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeData {
    /// The tenant id in `/v1/tenants/{tenant}/…`; other tenants answer 404.
    pub tenant: String,
    /// Served by `/users`, in this order.
    pub users: Vec<AcmeUser>,
    /// Served by `/groups`, in this order.
    pub groups: Vec<AcmeGroup>,
}

/// A user, as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeUser {
    /// Unique within the tenant.
    pub id: String,
    /// Login e-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the user administers the tenant.
    pub admin: bool,
    /// RFC 3339.
    pub created_at: String,
    /// Ids of the groups the user is in; they need not exist.
    pub group_ids: Vec<String>,
}

/// A group, as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeGroup {
    /// Unique within the tenant.
    pub id: String,
    /// Group name.
    pub name: String,
    /// Served as `null` when `None`.
    pub description: Option<String>,
}

impl AcmeData {
    /// The tenant of [`AcmeData::sample`].
    pub const TENANT: &'static str = "acme-corp";

    /// A tenant with no users or groups.
    pub fn empty(tenant: &str) -> AcmeData {
        AcmeData {
            tenant: tenant.to_owned(),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// `n_users` users and `n_groups` groups of tenant [`AcmeData::TENANT`], the same on
    /// every call. User `i` is `user-{i:04}` (an admin when `i` is a multiple of 10), in
    /// group `group-{i % n_groups:03}` and, when `i` is a multiple of 3, also in
    /// `group-{(7 * i + 3) % n_groups:03}` if that differs. Every fifth group has no
    /// description.
    pub fn sample(n_users: usize, n_groups: usize) -> AcmeData {
        let group_id = |j: usize| format!("group-{j:03}");
        let users = (0..n_users)
            .map(|i| {
                let mut group_ids = Vec::new();
                if n_groups > 0 {
                    group_ids.push(group_id(i % n_groups));
                    let second = (7 * i + 3) % n_groups;
                    if i % 3 == 0 && second != i % n_groups {
                        group_ids.push(group_id(second));
                    }
                }
                AcmeUser {
                    id: format!("user-{i:04}"),
                    email: format!("user{i}@acme-corp.example"),
                    name: format!("User {i}"),
                    admin: i % 10 == 0,
                    created_at: format!(
                        "2024-{:02}-{:02}T{:02}:00:00Z",
                        i % 12 + 1,
                        i % 28 + 1,
                        i % 24
                    ),
                    group_ids,
                }
            })
            .collect();
        let groups = (0..n_groups)
            .map(|j| AcmeGroup {
                id: group_id(j),
                name: format!("Group {j}"),
                description: (j % 5 != 4).then(|| format!("The people of group {j}")),
            })
            .collect();
        AcmeData {
            tenant: AcmeData::TENANT.to_owned(),
            users,
            groups,
        }
    }
}

/// A running Acme Directory API on `127.0.0.1`:
///
/// - `GET /v1/tenants/{tenant}/users?page=N&per_page=M` →
///   `{"users": [...], "total_count": T}`
/// - `GET /v1/tenants/{tenant}/groups?page=N&per_page=M` →
///   `{"groups": [...], "total_count": T}`
///
/// Pages start at 1 (the default); `per_page` defaults to 20 and is capped at
/// [`AcmeSim::MAX_PER_PAGE`] as real APIs do; a page past the end is empty. Requests
/// without `Authorization: Bearer` [`AcmeSim::TOKEN`] get 401, an unknown tenant or path
/// 404, a bad page 400; errors are JSON `{"error": ..., "message": ...}`.
///
/// Many tenants ([`AcmeSim::start_many`]): each [`Account`] is a tenant with its own token
/// (`id`); a token sees its own tenant only (another tenant's path answers 404, as for a
/// tenant that does not exist). A refused account's token answers 401; a rate-limited
/// tenant answers past its budget with 429 and `Retry-After`.
pub struct AcmeSim {
    state: Arc<AcmeState>,
    server: Server,
}

struct AcmeState {
    tenants: Accounts<AcmeData>,
    /// Added before every response.
    latency: Mutex<Duration>,
    faults: Mutex<Fault>,
    requests: RequestLog,
}

#[derive(Default)]
struct Fault {
    remaining: u32,
    status: u16,
}

impl AcmeSim {
    /// The token the API accepts.
    pub const TOKEN: &'static str = "acme-test-token";

    /// The most items one page holds, whatever `per_page` asks.
    pub const MAX_PER_PAGE: usize = 100;

    const DEFAULT_PER_PAGE: usize = 20;

    /// Serves `data` on a fresh loopback port, to the token [`AcmeSim::TOKEN`].
    pub fn start(data: AcmeData) -> AcmeSim {
        AcmeSim::start_many(vec![Account::new(data, AcmeSim::TOKEN, "")])
    }

    /// Serves each tenant of `tenants` to its own token (`Account::id`), on one port.
    /// Single-tenant methods (`set_data`, `update`) act on the first.
    pub fn start_many(tenants: Vec<Account<AcmeData>>) -> AcmeSim {
        let state = Arc::new(AcmeState {
            tenants: Accounts::new(tenants),
            latency: Mutex::new(Duration::ZERO),
            faults: Mutex::new(Fault::default()),
            requests: RequestLog::default(),
        });
        let router = state.requests.around(
            Router::new()
                .route("/v1/tenants/{tenant}/users", get(users))
                .route("/v1/tenants/{tenant}/groups", get(groups))
                .fallback(|| async {
                    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                })
                .layer(middleware::from_fn_with_state(state.clone(), gate))
                .with_state(state.clone()),
        );
        AcmeSim {
            server: Server::start("acme-sim", router),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`, the value for the plugin's `api_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The token the API accepts: [`AcmeSim::TOKEN`].
    pub fn token(&self) -> &'static str {
        AcmeSim::TOKEN
    }

    /// Serves `data` from the next request on.
    pub fn set_data(&self, data: AcmeData) {
        *self.state.tenants.write(0) = data;
    }

    /// Changes the data of tenant `tenant` (its index in `start_many`) in place.
    pub fn update_tenant(&self, tenant: usize, change: impl FnOnce(&mut AcmeData)) {
        change(&mut self.state.tenants.write(tenant));
    }

    /// Delays every response by `latency`, as a distant API would.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .state
            .latency
            .lock()
            .expect("no handler panics holding the lock") = latency;
    }

    /// Changes the served data in place, e.g. to drop one user between syncs.
    pub fn update(&self, change: impl FnOnce(&mut AcmeData)) {
        self.update_tenant(0, change);
    }

    /// Answers the next `n` requests, whatever they ask, with `status` and a JSON error;
    /// 429 and 503 carry `Retry-After: 0` so a retrying host does not wait.
    pub fn fail_next(&self, n: u32, status: u16) {
        *self
            .state
            .faults
            .lock()
            .expect("no handler panics holding the lock") = Fault {
            remaining: n,
            status,
        };
    }

    /// Requests received so far, failed and refused ones included.
    pub fn total_requests(&self) -> u64 {
        self.state.requests.total()
    }

    /// Each request received so far as `METHOD /path?query`, in order of arrival.
    pub fn request_log(&self) -> Vec<String> {
        self.state.requests.lines()
    }
}

/// The tenant whose token a request carries, for the handlers.
#[derive(Clone, Copy)]
struct Tenant(usize);

/// Counts and logs every request, waits the latency, then applies injected faults, the
/// token check (which picks the tenant) and its rate limit.
async fn gate(State(state): State<Arc<AcmeState>>, mut request: Request, next: Next) -> Response {
    let latency = *state
        .latency
        .lock()
        .expect("no handler panics holding the lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = {
        let mut fault = state
            .faults
            .lock()
            .expect("no handler panics holding the lock");
        (fault.remaining > 0).then(|| {
            fault.remaining -= 1;
            fault.status
        })
    };
    if let Some(status) = fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "injected", "fault injected by the test");
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match state.tenants.admit(token, None) {
        Ok(tenant) => {
            request.extensions_mut().insert(Tenant(tenant));
            next.run(request).await
        }
        Err(Denied::Throttled(after)) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this token",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
            response
        }
        Err(Denied::Unknown | Denied::Refused) => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid API token",
        ),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn users(
    State(state): State<Arc<AcmeState>>,
    Extension(Tenant(account)): Extension<Tenant>,
    Path(tenant): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let data = state.tenants.read(account);
    page(&data, &tenant, &q, "users", &data.users)
}

async fn groups(
    State(state): State<Arc<AcmeState>>,
    Extension(Tenant(account)): Extension<Tenant>,
    Path(tenant): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let data = state.tenants.read(account);
    page(&data, &tenant, &q, "groups", &data.groups)
}

fn page<T: Serialize>(
    data: &AcmeData,
    tenant: &str,
    q: &PageQuery,
    key: &str,
    items: &[T],
) -> Response {
    if tenant != data.tenant {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no tenant {tenant:?}"),
        );
    }
    let page = q.page.unwrap_or(1);
    let per_page = q
        .per_page
        .unwrap_or(AcmeSim::DEFAULT_PER_PAGE)
        .min(AcmeSim::MAX_PER_PAGE);
    if page == 0 || per_page == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "page and per_page start at 1",
        );
    }
    let start = (page - 1).saturating_mul(per_page).min(items.len());
    let end = start.saturating_add(per_page).min(items.len());
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), serde_json::json!(&items[start..end]));
    body.insert("total_count".to_owned(), items.len().into());
    Json(body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response();
    if matches!(status.as_u16(), 429 | 503) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    }
    response
}

impl PerAccount for AcmeSim {
    type Data = AcmeData;

    fn accounts(&self) -> &Accounts<AcmeData> {
        &self.state.tenants
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Account;
    use crate::sim::client::{Reply, get};

    fn auth() -> [(&'static str, String); 1] {
        [("Authorization", format!("Bearer {}", AcmeSim::TOKEN))]
    }

    fn list(sim: &AcmeSim, what: &str, query: &str) -> Reply {
        let url = format!(
            "{}/v1/tenants/{}/{what}?{query}",
            sim.url(),
            AcmeData::TENANT
        );
        get(&url, &auth())
    }

    #[test]
    fn many_tenants_see_their_own_data_refuse_and_throttle_apart() {
        let (mut a, mut b) = (AcmeData::sample(5, 2), AcmeData::sample(7, 3));
        a.tenant = "tenant-a".into();
        b.tenant = "tenant-b".into();
        let sim = AcmeSim::start_many(vec![
            Account::new(a, "token-a", "").rate_limit(50),
            Account::new(b, "token-b", "").rate_limit(3),
            Account::new(AcmeData::sample(1, 1), "token-c", "").refused(),
        ]);
        let users = |tenant: &str, token: &str| {
            get(
                &format!("{}/v1/tenants/{tenant}/users", sim.url()),
                &[("Authorization", format!("Bearer {token}"))],
            )
        };
        assert_eq!(users("tenant-a", "token-a").json()["total_count"], 5);
        assert_eq!(users("tenant-b", "token-b").json()["total_count"], 7);
        assert_eq!(users("tenant-b", "token-a").status, 404);
        assert_eq!(users(AcmeData::TENANT, "token-c").status, 401);
        assert_eq!(users("tenant-a", "nope").status, 401);
        crate::sim::accounts::assert_only_the_limited_account_is_throttled(&sim, 200, |i| {
            let r = if i == 0 {
                users("tenant-a", "token-a")
            } else {
                users("tenant-b", "token-b")
            };
            (r.status, r.header("retry-after").map(str::to_string))
        });
        sim.set_latency(Duration::from_millis(1));
        sim.set_rate_limit(1, None);
        assert_eq!(users("tenant-b", "token-b").status, 200);
    }

    #[test]
    fn sample_data_is_deterministic() {
        let a = AcmeData::sample(30, 4);
        assert_eq!(a, AcmeData::sample(30, 4));
        assert_eq!(a.users[0].id, "user-0000");
        assert!(a.users[0].admin && !a.users[1].admin);
        assert_eq!(a.users[0].group_ids, ["group-000", "group-003"]);
        assert_eq!(a.users[1].group_ids, ["group-001"]);
        assert_eq!(
            a.groups[4 % 4].description.as_deref(),
            Some("The people of group 0")
        );
        assert!(
            AcmeData::sample(10, 0)
                .users
                .iter()
                .all(|u| u.group_ids.is_empty())
        );
        assert_eq!(AcmeData::sample(0, 5).groups[4].description, None);
    }

    #[test]
    fn paginates_with_totals() {
        let sim = AcmeSim::start(AcmeData::sample(250, 12));
        let sizes: Vec<usize> = (1..=4)
            .map(|page| {
                let reply = list(&sim, "users", &format!("page={page}&per_page=100"));
                assert_eq!(reply.status, 200);
                let body = reply.json();
                assert_eq!(body["total_count"], 250);
                body["users"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50, 0]);
        let capped = list(&sim, "users", "per_page=1000").json();
        assert_eq!(
            capped["users"].as_array().unwrap().len(),
            AcmeSim::MAX_PER_PAGE
        );
        let default = list(&sim, "groups", "").json();
        assert_eq!(default["groups"].as_array().unwrap().len(), 12);
        assert_eq!(default["groups"][0]["id"], "group-000");
        assert_eq!(list(&sim, "users", "page=0").status, 400);
        assert_eq!(sim.total_requests(), 7);
        assert_eq!(
            sim.request_log()[0],
            "GET /v1/tenants/acme-corp/users?page=1&per_page=100"
        );
    }

    #[test]
    fn refuses_a_missing_or_wrong_token() {
        let sim = AcmeSim::start(AcmeData::sample(1, 1));
        let url = format!("{}/v1/tenants/acme-corp/users", sim.url());
        let none = get(&url, &[]);
        assert_eq!(none.status, 401);
        assert_eq!(none.json()["error"], "unauthorized");
        assert_eq!(
            get(&url, &[("Authorization", "Bearer nope".into())]).status,
            401
        );
        assert_eq!(get(&url, &auth()).status, 200);
        let other = get(&format!("{}/v1/tenants/other/users", sim.url()), &auth());
        assert_eq!(other.status, 404);
        assert_eq!(get(&format!("{}/v2/x", sim.url()), &auth()).status, 404);
    }

    #[test]
    fn injects_faults_then_recovers() {
        let sim = AcmeSim::start(AcmeData::sample(3, 1));
        sim.fail_next(2, 429);
        let first = list(&sim, "users", "");
        assert_eq!(first.status, 429);
        assert_eq!(first.header("retry-after"), Some("0"));
        assert_eq!(list(&sim, "users", "").status, 429);
        assert_eq!(list(&sim, "users", "").status, 200);
        sim.fail_next(1, 500);
        let failed = list(&sim, "users", "");
        assert_eq!((failed.status, failed.header("retry-after")), (500, None));
        assert_eq!(sim.total_requests(), 4);
    }

    #[test]
    fn data_changes_between_requests() {
        let sim = AcmeSim::start(AcmeData::sample(3, 1));
        sim.update(|d| d.users.retain(|u| u.id != "user-0001"));
        assert_eq!(list(&sim, "users", "").json()["total_count"], 2);
        sim.set_data(AcmeData::empty(AcmeData::TENANT));
        assert_eq!(list(&sim, "users", "").json()["total_count"], 0);
    }
}
