//! The Instance API, zone by zone: servers, volumes, snapshots and IPs
//! (`GET /instance/v1/zones/{zone}/{servers,volumes,snapshots,ips}`).
//!
//! The schema's `ScalewayFlexibleIp` is the Instance API's IP object (issue 5), not the
//! Elastic Metal `flexible-ip` API.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::api::{Api, Listings, Paging};
use crate::records::Records;
use crate::schema::{
    FLEXIBLE_IP, HAS, IDENTIFIES, INSTANCE, MOUNTS, PROJECT, RESOURCE, SNAPSHOT, VOLUME,
};

/// `{"id": ..., "name": ...}`, how the API points at another resource.
#[derive(Debug, Deserialize)]
pub struct Ref {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Location {
    pub cluster_id: Option<String>,
    pub hypervisor_id: Option<String>,
    pub node_id: Option<String>,
    pub platform_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Ipv6 {
    pub address: Option<String>,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: Option<String>,
    pub project: Option<String>,
    pub tags: Option<Vec<String>>,
    pub commercial_type: Option<String>,
    pub creation_date: Option<String>,
    pub dynamic_ip_required: Option<bool>,
    pub routed_ip_enabled: Option<bool>,
    pub enable_ipv6: Option<bool>,
    pub hostname: Option<String>,
    pub private_ip: Option<String>,
    pub mac_address: Option<String>,
    pub modification_date: Option<String>,
    pub state: Option<String>,
    pub location: Option<Location>,
    pub ipv6: Option<Ipv6>,
    pub boot_type: Option<String>,
    pub state_detail: Option<String>,
    pub arch: Option<String>,
    pub private_nics: Option<Vec<Ref>>,
    pub zone: Option<String>,
    pub end_of_service: Option<bool>,
    /// Attached volumes by slot ("0", "1", ...), Instance (`l_ssd`, ...) and Block
    /// (`sbs_volume`) alike.
    pub volumes: Option<BTreeMap<String, Ref>>,
    /// Every public IP of the server, IPv6 included: in routed mode the only place that
    /// says which IPs a server has, since `public_ip` holds one and the IP objects of
    /// `/ips` may carry no `address` (issue 15).
    pub public_ips: Option<Vec<Ref>>,
}

#[derive(Debug, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: Option<String>,
    pub export_uri: Option<String>,
    pub size: Option<i64>,
    pub volume_type: Option<String>,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
    pub tags: Option<Vec<String>>,
    pub state: Option<String>,
    pub zone: Option<String>,
    pub project: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub volume_type: Option<String>,
    pub size: Option<i64>,
    pub state: Option<String>,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
    pub error_reason: Option<String>,
    pub zone: Option<String>,
    pub project: Option<String>,
    pub base_volume: Option<Ref>,
}

#[derive(Debug, Deserialize)]
pub struct Ip {
    pub id: String,
    pub address: Option<String>,
    pub reverse: Option<String>,
    pub tags: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub state: Option<String>,
    pub prefix: Option<String>,
    pub ipam_id: Option<String>,
    pub zone: Option<String>,
    pub project: Option<String>,
    /// The server the IP is attached to, `null` when detached.
    pub server: Option<Ref>,
}

/// Adds the four listings of `zone`.
pub fn list_zone(listings: &mut Listings, api: &Api, zone: &str) {
    let path = |what: &str| format!("/instance/v1/zones/{zone}/{what}");
    let p = Paging::HeaderTotal;
    let feed = |label| (label, Some(zone));
    let z = zone.to_owned();
    listings.add(
        api,
        feed(INSTANCE),
        path("servers"),
        p,
        move |items, out| servers(&z, items, out),
    );
    let z = zone.to_owned();
    listings.add(api, feed(VOLUME), path("volumes"), p, move |items, out| {
        volumes(&z, items, out)
    });
    let z = zone.to_owned();
    listings.add(
        api,
        feed(SNAPSHOT),
        path("snapshots"),
        p,
        move |items, out| snapshots(&z, items, out),
    );
    let z = zone.to_owned();
    listings.add(api, feed(FLEXIBLE_IP), path("ips"), p, move |items, out| {
        ips(&z, items, out)
    });
}

/// The item's own zone, or the zone it was listed in when the API left it out.
fn here(own: Option<String>, listed: &str) -> Option<String> {
    Some(own.unwrap_or_else(|| listed.to_owned()))
}

/// Servers of `zone`, each held by its project, mounting its volumes and identified by
/// its public IPs. The IP listing links the same IPs from its side: both are read, since
/// either may be all there is (an IP listed in a zone the key may not read, a server whose
/// `public_ips` is empty while an IP is being attached); the store merges the two.
pub fn servers(zone: &str, servers: Vec<Server>, out: &mut Records) {
    for s in servers {
        let project = s.project.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (INSTANCE, &s.id));
        for v in s.volumes.iter().flat_map(|v| v.values()) {
            out.edge(MOUNTS, (INSTANCE, &s.id), (VOLUME, &v.id));
        }
        for ip in s.public_ips.iter().flatten() {
            out.edge(IDENTIFIES, (FLEXIBLE_IP, &ip.id), (INSTANCE, &s.id));
        }
        let Some(n) = out.node(INSTANCE, &s.id) else {
            continue;
        };
        let location = s.location.unwrap_or(Location {
            cluster_id: None,
            hypervisor_id: None,
            node_id: None,
            platform_id: None,
        });
        let ipv6 = s.ipv6.unwrap_or(Ipv6 {
            address: None,
            gateway: None,
            netmask: None,
        });
        let nics = s
            .private_nics
            .map(|nics| nics.into_iter().map(|n| n.id).collect::<Vec<_>>());
        n.prop("name", s.name)
            .prop("tags", s.tags)
            .prop("commercial_type", s.commercial_type)
            .prop("creation_date", s.creation_date)
            .prop("dynamic_ip_required", s.dynamic_ip_required)
            .prop("routed_ip_enabled", s.routed_ip_enabled)
            .prop("enable_ipv6", s.enable_ipv6)
            .prop("hostname", s.hostname)
            .prop("private_ip", s.private_ip)
            .prop("mac_address", s.mac_address)
            .prop("modification_date", s.modification_date)
            .prop("state", s.state)
            .prop("location_cluster_id", location.cluster_id)
            .prop("location_hypervisor_id", location.hypervisor_id)
            .prop("location_node_id", location.node_id)
            .prop("location_platform_id", location.platform_id)
            .prop("ipv6_address", ipv6.address)
            .prop("ipv6_gateway", ipv6.gateway)
            .prop("ipv6_netmask", ipv6.netmask)
            .prop("boot_type", s.boot_type)
            .prop("state_detail", s.state_detail)
            .prop("arch", s.arch)
            .prop("private_nics", nics)
            .prop("zone", here(s.zone, zone))
            .prop("end_of_service", s.end_of_service);
    }
}

/// Volumes of `zone`, each held by its project.
pub fn volumes(zone: &str, volumes: Vec<Volume>, out: &mut Records) {
    for v in volumes {
        let project = v.project.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (VOLUME, &v.id));
        let Some(n) = out.node(VOLUME, &v.id) else {
            continue;
        };
        n.prop("name", v.name)
            .prop("export_uri", v.export_uri)
            .prop("size", v.size)
            .prop("volume_type", v.volume_type)
            .prop("creation_date", v.creation_date)
            .prop("modification_date", v.modification_date)
            .prop("tags", v.tags)
            .prop("state", v.state)
            .prop("zone", here(v.zone, zone));
    }
}

/// Snapshots of `zone`, each held by its project and by its base volume.
pub fn snapshots(zone: &str, snapshots: Vec<Snapshot>, out: &mut Records) {
    for s in snapshots {
        let project = s.project.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (SNAPSHOT, &s.id));
        if let Some(base) = &s.base_volume {
            out.edge(HAS, (VOLUME, &base.id), (SNAPSHOT, &s.id));
        }
        let Some(n) = out.node(SNAPSHOT, &s.id) else {
            continue;
        };
        n.prop("name", s.name)
            .prop("tags", s.tags)
            .prop("volume_type", s.volume_type)
            .prop("size", s.size)
            .prop("state", s.state)
            .prop("creation_date", s.creation_date)
            .prop("modification_date", s.modification_date)
            .prop("error_reason", s.error_reason)
            .prop("zone", here(s.zone, zone));
    }
}

/// IPs of `zone`, each held by its project and identifying the server it is attached to.
pub fn ips(zone: &str, ips: Vec<Ip>, out: &mut Records) {
    for ip in ips {
        let project = ip.project.unwrap_or_default();
        out.edge(RESOURCE, (PROJECT, &project), (FLEXIBLE_IP, &ip.id));
        if let Some(server) = &ip.server {
            out.edge(IDENTIFIES, (FLEXIBLE_IP, &ip.id), (INSTANCE, &server.id));
        }
        let Some(n) = out.node(FLEXIBLE_IP, &ip.id) else {
            continue;
        };
        n.prop("address", ip.address)
            .prop("reverse", ip.reverse)
            .prop("tags", ip.tags)
            .prop("type", ip.kind)
            .prop("state", ip.state)
            .prop("prefix", ip.prefix)
            .prop("ipam_id", ip.ipam_id)
            .prop("zone", here(ip.zone, zone));
    }
}

#[cfg(test)]
mod tests {
    use infragraph_sdk::Value;

    use super::*;
    use crate::records::tests::sample;

    const PRJ: &str = "0681c477-fbb9-4820-b8d6-0eef10cfcd6d";
    const SERVER: &str = "345627e9-18ff-47e0-b73d-3f38fddb4390";
    const VOL: &str = "7c37b328-247c-4668-8ee1-701a3a3cc2e4";
    const SNAP: &str = "7c689d68-94a7-4498-9a87-d83077859519";
    const IP: &str = "7b37f45d-9871-4ae6-bd5a-a926102fb5c9";

    fn items<T: serde::de::DeserializeOwned>(file: &str, key: &str) -> Vec<T> {
        let body: serde_json::Value = serde_json::from_str(&sample(file)).unwrap();
        serde_json::from_value(body[key].clone()).unwrap()
    }

    /// The IP of the sample server, as the Instance API lists it: there is no IPs sample,
    /// so this one is built from the server's `public_ip`.
    fn ip() -> Ip {
        serde_json::from_value(serde_json::json!({
            "id": IP, "address": "51.1.2.8", "reverse": null, "tags": [],
            "type": "routed_ipv4", "state": "attached", "prefix": "51.1.2.8/32",
            "ipam_id": "", "zone": "fr-par-1", "project": PRJ,
            "organization": PRJ, "server": {"id": SERVER, "name": "demo-server"}
        }))
        .unwrap()
    }

    fn records() -> Records {
        let zone = "fr-par-1";
        let mut r = Records::default();
        servers(zone, items("instance_servers.json", "servers"), &mut r);
        volumes(zone, items("instance_volumes.json", "volumes"), &mut r);
        snapshots(zone, items("instance_snapshots.json", "snapshots"), &mut r);
        ips(zone, vec![ip()], &mut r);
        r
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn the_sample_server_flattens_location_and_ipv6() {
        let r = records();
        let s = r.get(INSTANCE, SERVER);
        assert_eq!(
            s.props.len(),
            25,
            "every schema property but id: {:?}",
            s.props
        );
        assert_eq!(s.value("commercial_type"), text("DEV1-S"));
        assert_eq!(s.value("location_hypervisor_id"), text("804"));
        assert_eq!(s.value("location_platform_id"), text("14"));
        assert_eq!(s.value("ipv6_address"), Value::Null);
        assert_eq!(s.value("private_ip"), Value::Null);
        assert_eq!(s.value("end_of_service"), Value::Null);
        assert_eq!(s.value("routed_ip_enabled"), Value::Bool(true));
        assert_eq!(s.value("private_nics"), Value::TextList(vec![]));
        assert_eq!(s.value("tags"), Value::TextList(vec!["demo".into()]));
        assert_eq!(s.value("zone"), text("fr-par-1"));
    }

    #[test]
    fn volumes_snapshots_and_ips() {
        let r = records();
        let v = r.get(VOLUME, VOL);
        assert_eq!(v.value("size"), Value::Int(20_000_000_000));
        assert_eq!(v.value("export_uri"), Value::Null);
        assert_eq!(v.value("volume_type"), text("l_ssd"));
        let s = r.get(SNAPSHOT, SNAP);
        assert_eq!(s.value("name"), text("image-gateway_snap_0"));
        assert_eq!(s.value("error_reason"), Value::Null);
        let ip = r.get(FLEXIBLE_IP, IP);
        assert_eq!(ip.value("address"), text("51.1.2.8"));
        assert_eq!(ip.value("type"), text("routed_ipv4"));
    }

    #[test]
    fn every_relationship_of_the_sample() {
        let mut expected = vec![
            (RESOURCE, PRJ, SERVER),
            (RESOURCE, PRJ, VOL),
            (RESOURCE, PRJ, SNAP),
            (RESOURCE, PRJ, IP),
            (MOUNTS, SERVER, VOL),
            (HAS, VOL, SNAP),
            // Once from the server's `public_ips`, once from the IP's `server`.
            (IDENTIFIES, IP, SERVER),
            (IDENTIFIES, IP, SERVER),
        ];
        expected.sort();
        assert_eq!(records().edge_ids(), expected);
    }

    /// The servers of a recording, listed or got alone, and its IPs.
    fn recorded_instance(file: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let (mut servers, mut ips) = (Vec::new(), Vec::new());
        for (url, body) in crate::records::tests::recorded(file) {
            if let Some(list) = body["servers"].as_array() {
                servers.extend(list.iter().cloned());
            } else if url.contains("/servers/") {
                servers.push(body["server"].clone());
            } else if url.contains("/ips/") {
                ips.push(body["ip"].clone());
            }
        }
        (servers, ips)
    }

    #[test]
    fn a_routed_ipv6_without_address_is_linked_from_the_server_and_the_ip() {
        let (recorded_servers, recorded_ips) = recorded_instance("ip_routed_ipv6_attached.json");
        let ip = &recorded_ips[0];
        assert!(
            ip["address"].is_null(),
            "the recording's /ips object has no address"
        );
        let (ip_id, server_id) = (
            ip["id"].as_str().unwrap(),
            ip["server"]["id"].as_str().unwrap(),
        );
        let mut r = Records::default();
        servers(
            "fr-par-1",
            serde_json::from_value(serde_json::Value::Array(recorded_servers.clone())).unwrap(),
            &mut r,
        );
        assert_eq!(
            r.edge_ids()
                .into_iter()
                .filter(|e| e.0 == IDENTIFIES)
                .collect::<Vec<_>>(),
            [(IDENTIFIES, ip_id, server_id)],
            "from the server's public_ips alone"
        );
        ips(
            "fr-par-1",
            vec![serde_json::from_value(ip.clone()).unwrap()],
            &mut r,
        );
        let n = r.get(FLEXIBLE_IP, ip_id);
        assert_eq!(n.value("address"), Value::Null);
        assert_eq!(n.value("prefix"), text(ip["prefix"].as_str().unwrap()));
        assert_eq!(n.value("type"), text("routed_ipv6"));
        let family = &recorded_servers[0]["public_ips"][0]["family"];
        assert_eq!(family, "inet6");
    }

    #[test]
    fn recorded_sbs_attachments_become_mounts() {
        let (recorded_servers, _) = recorded_instance("servers_public_ips.json");
        let mut expected: Vec<(String, String)> = Vec::new();
        for s in &recorded_servers {
            for v in s["volumes"].as_object().unwrap().values() {
                assert_eq!(v["volume_type"], "sbs_volume");
                expected.push((
                    s["id"].as_str().unwrap().into(),
                    v["id"].as_str().unwrap().into(),
                ));
            }
        }
        expected.sort();
        let mut r = Records::default();
        servers(
            "fr-par-1",
            serde_json::from_value(serde_json::Value::Array(recorded_servers)).unwrap(),
            &mut r,
        );
        let mounts: Vec<(String, String)> = r
            .edge_ids()
            .into_iter()
            .filter(|e| e.0 == MOUNTS)
            .map(|(_, a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        assert_eq!(mounts, expected);
        assert_eq!(mounts.len(), 2);
    }

    #[test]
    fn a_zone_fills_in_a_missing_zone_field() {
        let items = serde_json::from_str(r#"[{"id": "v1", "project": "p"}]"#).unwrap();
        let mut r = Records::default();
        volumes("pl-waw-2", items, &mut r);
        assert_eq!(r.get(VOLUME, "v1").value("zone"), text("pl-waw-2"));
    }
}
