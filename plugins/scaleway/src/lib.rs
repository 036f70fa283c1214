//! The Scaleway provider: an Organization's projects, IAM principals and API keys, and
//! the Instance API's servers, volumes, snapshots and IPs in every zone, as
//! `docs/providers/scaleway.md` describes them (issue 5).
//!
//! One sync walks every listing together through the SDK's [`Walker`](infragraph_sdk::Walker),
//! in rounds of a few dozen concurrent requests: page 1 of the Account and IAM listings and
//! of the four Instance listings of every zone first, then the remaining pages listing
//! after listing. Each page becomes records that are emitted as soon as its round is
//! parsed, so memory stays bounded by a round, not by the estate. A listing that still fails
//! after the host's retries (a 403 on a zone the key may not read, repeated 5xx) marks the
//! label it feeds incomplete, with its reason, so the host keeps that label's stale nodes;
//! the other listings carry on. A 401 anywhere means the key is wrong and fails the sync.
//!
//! # Where the plugin implements the schema's intent
//!
//! - The Organization section of the schema lists `RESOURCE` edges to projects,
//!   applications, users and API keys, but not groups, while its diagram and the Group
//!   section say a group belongs to the Organization: the plugin writes
//!   `(:ScalewayOrganization)-[:RESOURCE]->(:ScalewayGroup)` too.
//! - `private_nics` is a list of objects in the API; the graph keeps the list of their
//!   ids, since a property holds scalars or lists of them.
//! - The Instance `location` and `ipv6` objects are flattened into the schema's
//!   `location_*` and `ipv6_*` properties. A `null` in the API (e.g. `expires_at` of a key
//!   that never expires) writes no property rather than an empty one.
//! - An API key's `secret_key` is never read, even though list responses carry the field.
//! - The schema names no regional API. The `regions` config key limits the zones walked
//!   to those of the listed regions (`fr-par-1` is in `fr-par`), so one setting turns a
//!   whole region off.

mod account;
mod api;
mod iam;
mod instance;
mod records;
mod schema;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, Ingestor, Manifest, Summary, SyncError,
    export_ingestor,
};

use crate::api::{Api, Listings};
use crate::schema::{
    API_KEY, APPLICATION, FLEXIBLE_IP, GROUP, INSTANCE, ORGANIZATION, PROJECT, SNAPSHOT, USER,
    VOLUME,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_API: &str = "https://api.scaleway.com";
const DEFAULT_ZONES: [&str; 9] = [
    "fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "nl-ams-2", "nl-ams-3", "pl-waw-1", "pl-waw-2",
    "pl-waw-3",
];
const DEFAULT_REGIONS: [&str; 3] = ["fr-par", "nl-ams", "pl-waw"];

struct Scaleway;

impl Ingestor for Scaleway {
    fn manifest() -> Manifest {
        let secret = Credential::new(
            "secret_key",
            "SCW_SECRET_KEY",
            "Secret key of a Scaleway API key, sent as X-Auth-Token",
            CredentialUse::Header,
        )
        .host("api.scaleway.com")
        .host("{config:api_url}");
        let api_url = ConfigKey::endpoint("api_url", "Base URL of the Scaleway API")
            .env("SCW_API_URL")
            .default_text(DEFAULT_API);
        let organization = ConfigKey::text("organization_id", "The Organization to list")
            .env("SCW_DEFAULT_ORGANIZATION_ID")
            .required();
        let zones = ConfigKey::text_list("zones", "Zones whose Instance resources are listed")
            .default_list(DEFAULT_ZONES);
        let regions =
            ConfigKey::text_list("regions", "Regions listed; zones outside them are skipped")
                .default_list(DEFAULT_REGIONS);
        let mut manifest = Manifest::new(
            "scaleway",
            VERSION,
            "Scaleway projects, IAM principals and API keys, and Instance resources",
        )
        .host("api.scaleway.com")
        .credential(secret)
        .config(api_url)
        .config(organization)
        .config(zones)
        .config(regions);
        for node in schema::nodes() {
            manifest = manifest.node(node);
        }
        for edge in schema::edges() {
            manifest = manifest.edge(edge);
        }
        manifest
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let organization = config.text("organization_id").ok_or_else(|| {
            SyncError::config(
                "config key \"organization_id\" is not set: set SCW_DEFAULT_ORGANIZATION_ID",
            )
        })?;
        let zones = zones_to_walk(&config.list("zones"), &config.list("regions"))?;
        let api = Api::new(config.text("api_url").unwrap_or(DEFAULT_API), organization);
        cx.scope(ORGANIZATION, organization);

        let mut listings = Listings::new();
        listings.records().node(ORGANIZATION, organization);
        account::list_projects(&mut listings, &api, organization);
        iam::list_iam(&mut listings, &api, organization);
        for zone in &zones {
            instance::list_zone(&mut listings, &api, zone);
        }
        let (outcomes, mut records) = listings.run(cx);
        // Whatever no page carried out, e.g. the Organization when every listing failed.
        records.emit(cx);

        // A wrong key fails everywhere at once; report it rather than a partial graph.
        if let Some(auth) = outcomes.iter().find_map(|(_, r)| match r {
            Err(e @ SyncError::Auth(_)) => Some(e.clone()),
            _ => None,
        }) {
            return Err(auth);
        }
        let mut failed = 0;
        for (feed, outcome) in &outcomes {
            if let Err(e) = outcome {
                let reason = feed.reason(e);
                cx.warn(format!("{} incomplete: {reason}", feed.label));
                cx.mark_incomplete(feed.label, None, &reason);
                failed += 1;
            }
        }

        let n = |label| records.count(label);
        let counts = format!(
            "{} projects, {} users, {} groups, {} applications, {} API keys, {} instances, \
             {} volumes, {} snapshots, {} IPs in {} zones",
            n(PROJECT),
            n(USER),
            n(GROUP),
            n(APPLICATION),
            n(API_KEY),
            n(INSTANCE),
            n(VOLUME),
            n(SNAPSHOT),
            n(FLEXIBLE_IP),
            zones.len(),
        );
        Ok(Summary::new(match failed {
            0 => counts,
            n => format!("{counts}; {n} listings failed, their labels kept"),
        }))
    }
}

export_ingestor!(Scaleway);

/// The configured zones that lie in a configured region, in the order given.
fn zones_to_walk(zones: &[String], regions: &[String]) -> Result<Vec<String>, SyncError> {
    let region_of = |zone: &str| zone.rsplit_once('-').map_or(zone, |(r, _)| r).to_owned();
    let walked: Vec<String> = zones
        .iter()
        .filter(|z| regions.is_empty() || regions.contains(&region_of(z)))
        .cloned()
        .collect();
    if walked.is_empty() && !zones.is_empty() {
        return Err(SyncError::config(format!(
            "none of the zones {zones:?} is in the regions {regions:?}: check the zones and \
             regions config keys"
        )));
    }
    Ok(walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn regions_limit_the_zones() {
        let zones = strings(&DEFAULT_ZONES);
        assert_eq!(
            zones_to_walk(&zones, &strings(&DEFAULT_REGIONS)).unwrap(),
            zones
        );
        assert_eq!(
            zones_to_walk(&zones, &strings(&["nl-ams"])).unwrap(),
            ["nl-ams-1", "nl-ams-2", "nl-ams-3"]
        );
        assert_eq!(zones_to_walk(&zones, &[]).unwrap(), zones);
        let e = zones_to_walk(&strings(&["fr-par-1"]), &strings(&["pl-waw"])).unwrap_err();
        assert!(matches!(e, SyncError::Config(m) if m.contains("regions")));
    }

    #[test]
    fn the_manifest_declares_the_whole_schema() {
        let m = Scaleway::manifest();
        let text = format!("{m:?}");
        for label in [
            "ScalewayOrganization",
            "ScalewayProject",
            "ScalewayUser",
            "ScalewayGroup",
            "ScalewayApplication",
            "ScalewayApiKey",
            "ScalewayVolume",
            "ScalewayVolumeSnapshot",
            "ScalewayFlexibleIp",
            "ScalewayInstance",
        ] {
            assert!(text.contains(&format!("\"{label}\"")), "{label} missing");
        }
        assert_eq!(schema::edges().len(), 16);
    }
}
