//! DNS resolution that refuses forbidden addresses for manifest hosts.

use std::collections::HashSet;
use std::net::IpAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address;
use crate::grants::url_host::normalise;

/// A manifest host resolved to an address it may not reach. The request is dropped
/// before a connection is made.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which is {why}; a manifest host may not reach it")]
pub(crate) struct AddressRefused {
    name: String,
    ip: IpAddr,
    why: &'static str,
}

/// Resolves with the system resolver. Names of operator endpoints are trusted and resolve
/// unfiltered; any other name whose answer holds a single forbidden address is refused
/// whole, since the connector may pick any of them (and a DNS rebinding answer mixes a
/// public address with a private one).
pub(crate) struct GuardedResolver {
    trusted: HashSet<String>,
}

impl GuardedResolver {
    pub fn new(trusted: impl IntoIterator<Item = String>) -> Self {
        GuardedResolver {
            trusted: trusted.into_iter().collect(),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let trusted = self.trusted.contains(&normalise(&host));
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !trusted
                && let Some((ip, why)) = addrs
                    .iter()
                    .find_map(|a| address::forbidden(a.ip()).map(|why| (a.ip(), why)))
            {
                tracing::debug!(name = %host, %ip, why, "refused a resolved address");
                return Err(Box::new(AddressRefused {
                    name: host,
                    ip,
                    why,
                }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal inside a reqwest error, if the resolver caused it.
pub(crate) fn refusal<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a AddressRefused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<AddressRefused>() {
            return Some(r);
        }
        cur = e.source();
    }
    None
}
