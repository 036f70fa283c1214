//! Block Storage (SBS), zone by zone: volumes and snapshots
//! (`GET /block/v1/zones/{zone}/{volumes,snapshots}`).
//!
//! Since 2024 an Instance's volumes are mostly Block Storage volumes: the server lists
//! them with `volume_type: "sbs_volume"`, and the Instance API's own volume listing does
//! not hold them (issue 15). They become the same `ScalewayVolume` and
//! `ScalewayVolumeSnapshot` nodes as Instance volumes, with the `volume_type` the
//! Instance API gives them (`sbs_volume`, `sbs_snapshot`), so a server's `MOUNTS` edge
//! finds its volume whichever API holds it. Block is not the Instance API: it pages with
//! `page_size`, totals in the body and names the owner `project_id`.

use serde::Deserialize;

use crate::api::{Api, Listings, Paging};
use crate::records::Records;
use crate::schema::{HAS, PROJECT, RESOURCE, SNAPSHOT, VOLUME};

/// `volume_type` of a Block volume, as an Instance server's `volumes` names it.
pub const SBS_VOLUME: &str = "sbs_volume";
/// `volume_type` of a Block snapshot, as the Instance API names it.
pub const SBS_SNAPSHOT: &str = "sbs_snapshot";

#[derive(Debug, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: Option<String>,
    pub size: Option<i64>,
    pub project_id: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub status: Option<String>,
    pub tags: Option<Vec<String>>,
    pub zone: Option<String>,
}

/// `{"id": ..., "name": ..., ...}`: the volume a snapshot was taken of.
#[derive(Debug, Deserialize)]
pub struct ParentVolume {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub name: Option<String>,
    pub parent_volume: Option<ParentVolume>,
    pub size: Option<i64>,
    pub project_id: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub status: Option<String>,
    pub tags: Option<Vec<String>>,
    pub zone: Option<String>,
}

/// Adds the two Block listings of `zone`.
pub fn list_zone(listings: &mut Listings, api: &Api, zone: &str) {
    let path = |what: &str| format!("/block/v1/zones/{zone}/{what}");
    let p = Paging::BodyTotal;
    let z = zone.to_owned();
    listings.add(
        api,
        (VOLUME, Some(zone)),
        path("volumes"),
        p,
        move |items, out| volumes(&z, items, out),
    );
    let z = zone.to_owned();
    listings.add(
        api,
        (SNAPSHOT, Some(zone)),
        path("snapshots"),
        p,
        move |items, out| snapshots(&z, items, out),
    );
}

fn here(own: Option<String>, listed: &str) -> Option<String> {
    Some(own.unwrap_or_else(|| listed.to_owned()))
}

/// Block volumes of `zone`, each held by its project.
pub fn volumes(zone: &str, volumes: Vec<Volume>, out: &mut Records) {
    for v in volumes {
        let project = v.project_id.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (VOLUME, &v.id));
        let Some(n) = out.node(VOLUME, &v.id) else {
            continue;
        };
        n.prop("name", v.name)
            .prop("size", v.size)
            .prop("volume_type", SBS_VOLUME)
            .prop("creation_date", v.created_at)
            .prop("modification_date", v.updated_at)
            .prop("tags", v.tags)
            .prop("state", v.status)
            .prop("zone", here(v.zone, zone));
    }
}

/// Block snapshots of `zone`, each held by its project and by the volume it was taken of.
pub fn snapshots(zone: &str, snapshots: Vec<Snapshot>, out: &mut Records) {
    for s in snapshots {
        let project = s.project_id.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (SNAPSHOT, &s.id));
        if let Some(parent) = &s.parent_volume {
            out.edge(HAS, (VOLUME, &parent.id), (SNAPSHOT, &s.id));
        }
        let Some(n) = out.node(SNAPSHOT, &s.id) else {
            continue;
        };
        n.prop("name", s.name)
            .prop("tags", s.tags)
            .prop("volume_type", SBS_SNAPSHOT)
            .prop("size", s.size)
            .prop("state", s.status)
            .prop("creation_date", s.created_at)
            .prop("modification_date", s.updated_at)
            .prop("zone", here(s.zone, zone));
    }
}

#[cfg(test)]
mod tests {
    use infragraph_sdk::Value;
    use serde_json::Value as Json;

    use super::*;
    use crate::records::tests::recorded;

    /// Every Block volume and snapshot body of a recording, whether listed or got alone.
    fn block_items(file: &str, what: &str) -> Vec<Json> {
        recorded(file)
            .into_iter()
            .filter(|(url, _)| url.contains(&format!("/block/v1/zones/fr-par-1/{what}")))
            .flat_map(|(_, body)| match body.get(what) {
                Some(Json::Array(items)) => items.clone(),
                _ => vec![body],
            })
            .collect()
    }

    #[test]
    fn recorded_volumes_and_snapshots_keep_their_sbs_type_and_parent() {
        let mut r = Records::default();
        let vols = block_items("block_snapshots.json", "volumes");
        let snaps = block_items("block_snapshots.json", "snapshots");
        assert!(!vols.is_empty() && !snaps.is_empty());
        volumes(
            "fr-par-1",
            serde_json::from_value(Json::Array(vols.clone())).unwrap(),
            &mut r,
        );
        snapshots(
            "fr-par-1",
            serde_json::from_value(Json::Array(snaps.clone())).unwrap(),
            &mut r,
        );
        for v in &vols {
            let n = r.get(VOLUME, v["id"].as_str().unwrap());
            assert_eq!(n.value("volume_type"), Value::Text(SBS_VOLUME.into()));
            assert_eq!(
                n.value("state"),
                Value::Text(v["status"].as_str().unwrap().into())
            );
            assert_eq!(n.value("size"), Value::Int(v["size"].as_i64().unwrap()));
        }
        let mut expected = Vec::new();
        for s in &snaps {
            let (id, parent) = (s["id"].as_str().unwrap(), &s["parent_volume"]["id"]);
            let project = s["project_id"].as_str().unwrap();
            expected.push((HAS, parent.as_str().unwrap(), id));
            expected.push((RESOURCE, project, id));
            assert_eq!(
                r.get(SNAPSHOT, id).value("volume_type"),
                Value::Text(SBS_SNAPSHOT.into())
            );
        }
        for v in &vols {
            expected.push((
                RESOURCE,
                v["project_id"].as_str().unwrap(),
                v["id"].as_str().unwrap(),
            ));
        }
        expected.sort();
        assert_eq!(r.edge_ids(), expected);
    }
}
