//! The Scaleway provider: an Organization's projects, IAM principals, API keys and
//! policies, the Instance API's servers, volumes, snapshots and IPs and the Block Storage
//! API's volumes and snapshots in every zone, as `docs/providers/scaleway.md` describes
//! them (issues 5, 15 and 22).
//!
//! One sync walks every listing together through the SDK's [`Walker`](infragraph_sdk::Walker),
//! in rounds of a few dozen concurrent requests: page 1 of the Account and IAM listings and
//! of the four Instance and two Block listings of every zone first, then the remaining pages listing
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
//! - The schema names no regional API. `zones` and `regions` both narrow the zones
//!   walked (`fr-par-1` is in `fr-par`); neither has a default that could undo the other
//!   (issue 15), and a zone one excludes while the other names it is a warning
//!   ([`zones_to_walk`]).
//! - Block Storage volumes and snapshots are read beside the Instance API's, as the same
//!   labels (`block.rs`), and an edge that names a node no listing carried is counted and
//!   named in the summary.
//! - IAM policies are not in the schema's source; they are ours (issue 22): each policy's
//!   rules are listed once every policy is known (the API lists rules per policy only) and
//!   merged into one `GRANTS` edge per (policy, scope), so `infragraph access` can follow
//!   a principal through the policies applied to it down to the instances (`iam.rs`).

mod account;
mod api;
mod block;
mod iam;
mod instance;
mod records;
mod schema;

use infragraph_sdk::{
    Config, ConfigKey, Context, Credential, CredentialUse, Ingestor, Manifest, Summary, SyncError,
    export_ingestor,
};

use crate::api::{Api, Listings, Outcomes};
use crate::schema::{
    API_KEY, APPLICATION, FLEXIBLE_IP, GROUP, INSTANCE, ORGANIZATION, POLICY, PROJECT, SNAPSHOT,
    USER, VOLUME,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_API: &str = "https://api.scaleway.com";
/// Every zone Scaleway has, as the Go SDK lists them (`AllZones` in `scw/locality.go`):
/// what is walked when neither `zones` nor `regions` is set.
const ALL_ZONES: [&str; 10] = [
    "fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "nl-ams-2", "nl-ams-3", "pl-waw-1", "pl-waw-2",
    "pl-waw-3", "it-mil-1",
];

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
        // No defaults: a default for one key would silently narrow what the other names.
        let zones = ConfigKey::text_list(
            "zones",
            "Zones whose Instance and Block resources are listed (unset: every zone)",
        );
        let regions = ConfigKey::text_list(
            "regions",
            "Regions whose zones are listed (unset: the regions of the zones)",
        );
        let mut manifest = Manifest::new(
            "scaleway",
            VERSION,
            "Scaleway projects, IAM principals, API keys and policies, and Instance and Block \
             resources",
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
        let (zones, notes) = zones_to_walk(&config.list("zones"), &config.list("regions"))?;
        for note in &notes {
            cx.warn(note);
        }
        let api = Api::new(config.text("api_url").unwrap_or(DEFAULT_API), organization);
        cx.scope(ORGANIZATION, organization);

        let mut listings = Listings::new();
        listings.records().node(ORGANIZATION, organization);
        account::list_projects(&mut listings, &api, organization);
        let policies = iam::list_iam(&mut listings, &api, organization);
        for zone in &zones {
            instance::list_zone(&mut listings, &api, zone);
            block::list_zone(&mut listings, &api, zone);
        }
        let (mut outcomes, mut records) = listings.run(cx);
        // A wrong key fails everywhere at once; report it rather than a partial graph.
        let auth = |outcomes: &Outcomes| {
            outcomes.iter().find_map(|(_, r)| match r {
                Err(e @ SyncError::Auth(_)) => Some(e.clone()),
                _ => None,
            })
        };
        if let Some(auth) = auth(&outcomes) {
            records.emit(cx);
            return Err(auth);
        }

        // Rules are listed per policy, so only once the policies are known.
        let policies = policies.take();
        let mut listings = Listings::resume(records);
        let grants = iam::list_rules(&mut listings, &api, organization, &policies);
        let (rule_outcomes, mut records) = listings.run(cx);
        for ((policy, grants), (_, outcome)) in grants.into_iter().zip(&rule_outcomes) {
            // A policy whose rules were not all read writes none of its grants; the
            // label is marked incomplete below, so the last sync's are kept.
            if outcome.is_ok() {
                iam::grant_records(&policy, grants.take(), &mut records);
            }
        }
        outcomes.extend(first_failure(rule_outcomes));
        // Whatever no page carried out, e.g. the Organization when every listing failed.
        records.emit(cx);
        if let Some(auth) = auth(&outcomes) {
            return Err(auth);
        }
        // The label each failed listing feeds, in order.
        let mut incomplete = Vec::new();
        let mut first = None;
        for (feed, outcome) in &outcomes {
            if let Err(e) = outcome {
                let reason = feed.reason(e);
                cx.mark_incomplete(feed.label, None, &reason);
                first.get_or_insert_with(|| format!("{} incomplete: {reason}", feed.label));
                incomplete.push(feed.label);
            }
        }
        let failed = incomplete.len();
        // One warning however many listings failed: a zone or an endpoint that cannot be
        // reached fails them by the dozen (66 when nothing answers), for every connection
        // it serves. Each is marked incomplete above, and the run report lists them all.
        if let Some(first) = first {
            match failed {
                1 => cx.warn(first),
                n => cx.warn(format!(
                    "{first}; and {} more listings failed (the run report lists each)",
                    n - 1
                )),
            }
        }

        let n = |label| records.count(label);
        let counts = format!(
            "{} projects, {} users, {} groups, {} applications, {} API keys, {} policies, \
             {} instances, {} volumes, {} snapshots, {} IPs in {} zones",
            n(PROJECT),
            n(USER),
            n(GROUP),
            n(APPLICATION),
            n(API_KEY),
            n(POLICY),
            n(INSTANCE),
            n(VOLUME),
            n(SNAPSHOT),
            n(FLEXIBLE_IP),
            zones.len(),
        );
        let mut summary = match failed {
            0 => counts,
            n => format!("{counts}; {n} listings failed, their labels kept"),
        };
        // Warnings go to the log; the summary keeps them with the run.
        for note in &notes {
            summary.push_str(&format!("; {note}"));
        }
        // The host drops an edge whose end it cannot find; say which, and why. An end of an
        // incomplete label may be a node the host keeps from the last sync: not counted.
        let unlinked = records.unlinked();
        for unlinked in unlinked.iter().filter(|u| !incomplete.contains(&u.label)) {
            cx.warn(unlinked.to_string());
            summary.push_str(&format!(
                "; {} {} named by {} in no listing",
                unlinked.ids.len(),
                unlinked.label,
                unlinked.rel
            ));
        }
        Ok(Summary::new(summary))
    }
}

export_ingestor!(Scaleway);

/// The first failed listing of `outcomes`, named with how many others failed too: one
/// rules listing per policy would otherwise make as many warnings of one cause (a key
/// that may not read rules).
fn first_failure(outcomes: Outcomes) -> Option<(api::Feed, Result<(), SyncError>)> {
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    let (mut feed, error) = outcomes.into_iter().find(|(_, r)| r.is_err())?;
    if failed > 1 {
        feed.path
            .push_str(&format!(" (and {} more policies' rules)", failed - 1));
    }
    Some((feed, error))
}

/// A zone's region: its name without the last `-N` (`fr-par-1` is in `fr-par`).
fn region_of(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

/// The zones to walk, and a warning for each setting the other one overrides.
///
/// Unset keys come as empty lists. Neither key alone cancels anything: `zones` alone is
/// walked as given (its regions implied), `regions` alone picks those of [`ALL_ZONES`]
/// in them. When both are set, a zone outside the regions is skipped with a warning
/// naming it, and so is a region none of the zones is in; when nothing is left the
/// configuration is refused.
fn zones_to_walk(
    zones: &[String],
    regions: &[String],
) -> Result<(Vec<String>, Vec<String>), SyncError> {
    let mut notes = Vec::new();
    let candidates: Vec<String> = match zones {
        [] => ALL_ZONES.iter().map(|z| z.to_string()).collect(),
        given => given.to_vec(),
    };
    if regions.is_empty() {
        return Ok((candidates, notes));
    }
    let (walked, skipped): (Vec<String>, Vec<String>) = candidates
        .into_iter()
        .partition(|z| regions.iter().any(|r| r == region_of(z)));
    if !zones.is_empty() && !skipped.is_empty() {
        notes.push(format!(
            "config: zones {skipped:?} are not in the configured regions {regions:?} and are \
             not listed: add their regions or remove them from zones"
        ));
    }
    for region in regions {
        if !walked.iter().any(|z| region_of(z) == region) {
            notes.push(match zones {
                [] => format!(
                    "config: region {region:?} has no zone this plugin knows of ({}); set \
                     zones to list its zones",
                    ALL_ZONES.join(", ")
                ),
                _ => format!(
                    "config: region {region:?} has none of the configured zones {zones:?}, so \
                     nothing in it is listed"
                ),
            });
        }
    }
    if walked.is_empty() {
        return Err(SyncError::config(format!(
            "no zone to list: the zones {zones:?} and the regions {regions:?} have none in \
             common; check the zones and regions config keys"
        )));
    }
    Ok((walked, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn walk(zones: &[&str], regions: &[&str]) -> Result<(Vec<String>, Vec<String>), SyncError> {
        zones_to_walk(&strings(zones), &strings(regions))
    }

    #[test]
    fn every_zone_of_the_sdk_is_walked_milan_included() {
        let (zones, notes) = walk(&[], &[]).unwrap();
        assert_eq!(zones, ALL_ZONES);
        assert!(zones.contains(&"it-mil-1".to_string()));
        assert!(notes.is_empty());
    }

    #[test]
    fn zones_alone_are_walked_as_given() {
        // The bug of issue 15: a default `regions` used to drop it-mil-1 here.
        let (zones, notes) = walk(&["it-mil-1", "fr-par-2"], &[]).unwrap();
        assert_eq!(zones, ["it-mil-1", "fr-par-2"]);
        assert!(notes.is_empty());
    }

    #[test]
    fn regions_alone_pick_their_zones() {
        let (zones, notes) = walk(&[], &["nl-ams", "it-mil"]).unwrap();
        assert_eq!(zones, ["nl-ams-1", "nl-ams-2", "nl-ams-3", "it-mil-1"]);
        assert!(notes.is_empty());
        let (zones, notes) = walk(&[], &["fr-par", "xx-new"]).unwrap();
        assert_eq!(zones, ["fr-par-1", "fr-par-2", "fr-par-3"]);
        assert!(
            notes[0].contains("\"xx-new\"") && notes[0].contains("set zones"),
            "{notes:?}"
        );
    }

    #[test]
    fn both_set_narrow_each_other_with_a_word() {
        let (zones, notes) = walk(&["fr-par-1", "it-mil-1"], &["fr-par"]).unwrap();
        assert_eq!(zones, ["fr-par-1"]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("[\"it-mil-1\"]"), "{notes:?}");
        let (_, notes) = walk(&["fr-par-1"], &["fr-par", "pl-waw"]).unwrap();
        assert!(notes[0].contains("\"pl-waw\""), "{notes:?}");
        let e = walk(&["fr-par-1"], &["pl-waw"]).unwrap_err();
        assert!(
            matches!(&e, SyncError::Config(m) if m.contains("zones") && m.contains("regions")),
            "{e}"
        );
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
            "ScalewayPolicy",
        ] {
            assert!(text.contains(&format!("\"{label}\"")), "{label} missing");
        }
        assert_eq!(schema::edges().len(), 22);
    }

    #[test]
    fn many_failed_rules_listings_are_one_failure_saying_how_many() {
        let feed = |policy: &str| api::Feed {
            label: POLICY,
            zone: None,
            path: format!("/iam/v1alpha1/rules?policy_id={policy}"),
        };
        let denied = || Err(SyncError::fetch("HTTP 403"));
        assert!(first_failure(vec![(feed("a"), Ok(()))]).is_none());
        let (f, e) = first_failure(vec![
            (feed("a"), Ok(())),
            (feed("b"), denied()),
            (feed("c"), denied()),
            (feed("d"), denied()),
        ])
        .unwrap();
        assert_eq!(
            f.reason(&e.unwrap_err()),
            "listing /iam/v1alpha1/rules?policy_id=b (and 2 more policies' rules) failed: \
             HTTP 403"
        );
    }
}
