//! Many accounts in one simulator (issue 18): what every provider simulator shares to
//! serve several organizations, tenants, accounts or databases at once, each with its own
//! credentials, its own data, its own request budget, and possibly credentials it refuses.
//!
//! A simulator's `start_many(Vec<Account<Data>>)` serves each [`Account`]; its `start(data)`
//! is `start_many` of one account with the simulator's historical credentials, so
//! single-account tests see no change. The credential a request carries picks the account
//! (as a real API key belongs to one organization); a simulator whose real API has one
//! endpoint per account says in its docs how it tells them apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// One account of a multi-account simulator: its data and the credential it accepts.
#[derive(Debug, Clone)]
pub struct Account<D> {
    /// What the account's credential sees.
    pub data: D,
    /// The credential, or its public half: a secret key or token (Scaleway, Acme), a
    /// client id (Azure), an API key id (Spacelift), a user name (Critical).
    pub id: String,
    /// The credential's secret half (client secret, API key secret, password); empty for
    /// a single-part credential.
    pub secret: String,
    /// Requests per second the credential may make (a bucket of this many, refilled at
    /// this rate); beyond it the simulator answers 429 with `Retry-After`, as the real API
    /// does. `None`: unlimited.
    pub rate_limit: Option<u32>,
    /// The simulator knows the credential but refuses it (revoked, disabled): 401 or 403
    /// as the real API answers.
    pub refused: bool,
}

impl<D> Account<D> {
    /// An account accepting the credential `id` (with `secret`; empty for a single key).
    pub fn new(data: D, id: impl Into<String>, secret: impl Into<String>) -> Account<D> {
        Account {
            data,
            id: id.into(),
            secret: secret.into(),
            rate_limit: None,
            refused: false,
        }
    }

    /// At most `per_second` requests a second from this account's credential.
    pub fn rate_limit(mut self, per_second: u32) -> Account<D> {
        self.rate_limit = Some(per_second.max(1));
        self
    }

    /// The account whose credentials the simulator refuses.
    pub fn refused(mut self) -> Account<D> {
        self.refused = true;
        self
    }
}

/// Why a request's credential admits it to no account's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No account has this credential (or its secret is wrong).
    Unknown,
    /// The account refuses its credentials.
    Refused,
    /// The account spent its budget: retry after this many seconds.
    Throttled(u32),
}

/// The accounts a simulator serves, the first being the one single-account methods
/// (`update`, `set_data`, …) act on. (Public only as [`PerAccount::accounts`]'s type.)
pub struct Accounts<D> {
    slots: Vec<Slot<D>>,
}

pub(crate) struct Slot<D> {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) refused: bool,
    pub(crate) data: RwLock<D>,
    limit: Mutex<Option<Bucket>>,
    requests: AtomicU64,
    throttled: AtomicU64,
}

/// A token bucket: `rate` requests a second, up to `rate` at once.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_second: u32) -> Bucket {
        Bucket {
            rate: f64::from(per_second),
            tokens: f64::from(per_second),
            at: Instant::now(),
        }
    }

    /// Takes a token, or says in how many whole seconds (at least 1) one will be there.
    fn take(&mut self) -> Result<(), u32> {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
            Err((wait.as_secs_f64().ceil() as u32).max(1))
        }
    }
}

impl<D> Accounts<D> {
    pub(crate) fn new(accounts: Vec<Account<D>>) -> Accounts<D> {
        assert!(
            !accounts.is_empty(),
            "a simulator serves at least one account"
        );
        Accounts {
            slots: accounts
                .into_iter()
                .map(|a| Slot {
                    id: a.id,
                    secret: a.secret,
                    refused: a.refused,
                    data: RwLock::new(a.data),
                    limit: Mutex::new(a.rate_limit.map(Bucket::new)),
                    requests: AtomicU64::new(0),
                    throttled: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn slot(&self, account: usize) -> &Slot<D> {
        self.slots
            .get(account)
            .unwrap_or_else(|| panic!("no account {account}: {} served", self.slots.len()))
    }

    /// The account whose credential is `id` (and `secret`, when `Some`), without
    /// spending its budget: for a token exchange that checks the credential only.
    pub(crate) fn find(&self, id: &str, secret: Option<&str>) -> Result<usize, Denied> {
        let i = self
            .slots
            .iter()
            .position(|s| s.id == id && secret.is_none_or(|p| p == s.secret))
            .ok_or(Denied::Unknown)?;
        if self.slots[i].refused {
            return Err(Denied::Refused);
        }
        Ok(i)
    }

    /// As [`Accounts::find`], then spends one request of the account's budget.
    pub(crate) fn admit(&self, id: &str, secret: Option<&str>) -> Result<usize, Denied> {
        let i = self.find(id, secret)?;
        self.spend(i).map(|()| i)
    }

    /// Counts one request of `account` against its budget.
    pub(crate) fn spend(&self, account: usize) -> Result<(), Denied> {
        let slot = self.slot(account);
        slot.requests.fetch_add(1, Ordering::SeqCst);
        let mut limit = slot
            .limit
            .lock()
            .expect("no handler panics holding the lock");
        match limit.as_mut().map(Bucket::take) {
            Some(Err(after)) => {
                slot.throttled.fetch_add(1, Ordering::SeqCst);
                Err(Denied::Throttled(after))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn read(&self, account: usize) -> RwLockReadGuard<'_, D> {
        self.slot(account)
            .data
            .read()
            .expect("no handler panics holding the lock")
    }

    pub(crate) fn write(&self, account: usize) -> RwLockWriteGuard<'_, D> {
        self.slot(account)
            .data
            .write()
            .expect("no handler panics holding the lock")
    }

    /// Sets (or with `None` lifts) the rate limit of `account`.
    pub(crate) fn set_rate_limit(&self, account: usize, per_second: Option<u32>) {
        *self
            .slot(account)
            .limit
            .lock()
            .expect("no handler panics holding the lock") =
            per_second.map(|n| Bucket::new(n.max(1)));
    }

    /// Requests that reached `account` (with its valid credential), throttled ones
    /// included.
    pub(crate) fn requests(&self, account: usize) -> u64 {
        self.slot(account).requests.load(Ordering::SeqCst)
    }

    /// Requests of `account` answered 429 for its rate limit.
    pub(crate) fn throttled(&self, account: usize) -> u64 {
        self.slot(account).throttled.load(Ordering::SeqCst)
    }
}

/// What every multi-account simulator takes and tells about its accounts, each by its
/// index in its `start_many`: a request budget, and the requests the account's valid
/// credential made (what counts is the simulator's API: ARM and Graph for Azure, a
/// database's authenticated requests for Critical, every request elsewhere).
pub trait PerAccount {
    /// What one account sees.
    type Data;

    /// The simulator's accounts.
    fn accounts(&self) -> &Accounts<Self::Data>;

    /// Sets (or with `None` lifts) the rate limit of account `i`, in requests per second.
    fn set_rate_limit(&self, i: usize, per_second: Option<u32>) {
        self.accounts().set_rate_limit(i, per_second);
    }

    /// Requests account `i`'s credential made, throttled ones included.
    fn requests_of(&self, i: usize) -> u64 {
        self.accounts().requests(i)
    }

    /// Requests of account `i` answered 429 for its rate limit.
    fn throttled_of(&self, i: usize) -> u64 {
        self.accounts().throttled(i)
    }
}

/// The per-account rate limit seen from outside, one check for every simulator: account 1
/// is limited to a few requests a second, account 0 is not. The same burst from both
/// throttles 1 only; its 429 says `Retry-After: 1`; the simulator counts it. `ask(i)` sends
/// one request as account `i` and gives its status and `Retry-After`; `ok` is the status
/// a request that passes gets.
#[cfg(test)]
pub(crate) fn assert_only_the_limited_account_is_throttled<S: PerAccount>(
    sim: &S,
    ok: u16,
    mut ask: impl FnMut(usize) -> (u16, Option<String>),
) {
    let (mut a_statuses, mut b_statuses) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        a_statuses.push(ask(0).0);
        b_statuses.push(ask(1).0);
    }
    assert!(a_statuses.iter().all(|s| *s == ok), "{a_statuses:?}");
    assert!(b_statuses.contains(&429), "{b_statuses:?}");
    // Kept spending (on a busy machine the budget may refill between two asks).
    let throttled = (0..20)
        .map(|_| ask(1))
        .find(|r| r.0 == 429)
        .expect("the budget runs out");
    assert_eq!(throttled, (429, Some("1".to_string())));
    assert_eq!(sim.throttled_of(0), 0);
    assert!(sim.throttled_of(1) >= 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_credential_refuses_and_throttles_per_account() {
        let accounts = Accounts::new(vec![
            Account::new("a", "key-a", ""),
            Account::new("b", "key-b", "pw").rate_limit(2),
            Account::new("c", "key-c", "").refused(),
        ]);
        assert_eq!(accounts.find("key-a", None), Ok(0));
        assert_eq!(accounts.find("key-b", Some("pw")), Ok(1));
        assert_eq!(accounts.find("key-b", Some("nope")), Err(Denied::Unknown));
        assert_eq!(accounts.find("key-z", None), Err(Denied::Unknown));
        assert_eq!(accounts.find("key-c", None), Err(Denied::Refused));
        assert_eq!(accounts.admit("key-b", None), Ok(1));
        assert_eq!(accounts.admit("key-b", None), Ok(1));
        assert_eq!(accounts.admit("key-b", None), Err(Denied::Throttled(1)));
        for _ in 0..10 {
            assert_eq!(accounts.admit("key-a", None), Ok(0));
        }
        assert_eq!((accounts.requests(1), accounts.throttled(1)), (3, 1));
        assert_eq!(accounts.throttled(0), 0);
        accounts.set_rate_limit(1, None);
        assert_eq!(accounts.admit("key-b", None), Ok(1));
        assert_eq!(*accounts.read(1), "b");
    }
}
