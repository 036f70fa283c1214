//! Fake HTTP services for tests, each on its own `127.0.0.1:0` port and its own thread, so
//! a test may call them from synchronous or asynchronous code alike, even while it blocks
//! its own runtime on a guest.
//!
//! - [`AcmeSim`]: the Acme Directory API that `plugins/example` lists, with its data
//!   replaceable between syncs, bearer-token auth, real pagination and fault injection.
//! - [`ScalewaySim`]: the Scaleway Account, IAM and Instance APIs that
//!   `plugins/scaleway` lists, serving `tests/fixtures/scaleway` or a generated estate,
//!   with both pagination conventions, key checks and fault injection.
//! - [`SpaceliftSim`]: the Spacelift GraphQL API that `plugins/spacelift` queries, serving
//!   `tests/fixtures/spacelift` or a generated account, with the API-key exchange, JWT
//!   checks and expiry, run paging and GraphQL errors; it refuses a query that asks for a
//!   field Spacelift's schema lacks (`tests/fixtures/spacelift/schema.graphql`) and
//!   answers only the fields a query selects.
//! - [`S3Sim`]: an S3 bucket (ListObjectsV2, GetObject) that verifies every request's AWS
//!   Signature Version 4 independently of the host's signer.
//! - [`CriticalSim`]: the ArangoDB HTTP API (AQL cursors, Basic and JWT auth) over
//!   Critical's collections, for `plugins/critical`: a hand-written organisation or a
//!   generated one, the plugin's queries answered natively, any other refused.
//! - [`AzureSim`]: Entra ID's token endpoint, Azure Resource Manager and Microsoft Graph
//!   for `plugins/azure`: a hand-written tenant or a generated one, `nextLink` paging,
//!   per-API token audiences and expiry, throttling and forbidden subscriptions.
//! - [`EchoSim`]: generic endpoints for the sandbox tests (echoed headers, redirects, a
//!   slow answer, large bodies, any status).
//!
//! Every provider simulator serves many accounts at once (issue 18): `start_many` takes
//! one [`Account`] per organization, tenant, account or database, each with its own
//! credentials, data, optional rate limit (429 with `Retry-After` past it, for that
//! account only) and possibly credentials it refuses; `start` serves one, as before.
//!
//! Each counts the requests it received; dropping one stops it at once, even with
//! requests in flight.

mod accounts;
mod acme;
mod azure;
mod critical;
mod echo;
mod files;
mod graphql;
pub(crate) mod ids;
mod s3;
mod scaleway;
mod server;
mod spacelift;

#[cfg(test)]
mod client;

pub use accounts::{Account, Accounts, PerAccount};
pub use acme::{AcmeData, AcmeGroup, AcmeSim, AcmeUser};
pub use azure::{
    AzureData, AzureSim, abstracted_hash, examples as azure_examples, sample as azure_sample,
};
pub use critical::{CriticalData, CriticalSim, PASSWORD_HASH, REPO_CREDENTIAL, TOKEN_HASH};
pub use echo::{EchoSim, reflections};
pub use files::FileSite;
pub use s3::S3Sim;
pub use scaleway::{Item, ScalewayData, ScalewaySim, ZONES};
pub use spacelift::{SpaceliftData, SpaceliftSim};
