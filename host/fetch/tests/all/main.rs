//! The fetcher against real HTTP servers on 127.0.0.1. Every test sends traffic only to
//! loopback servers it started; tests about other addresses assert the host refused
//! before connecting.

mod allow;
mod check;
mod clients;
mod credentials;
mod limits;
mod redirects;
mod retries;
mod support;
mod tape;
