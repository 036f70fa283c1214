use std::collections::BTreeMap;

use infragraph_core::{Changes, Incomplete, NodeRef, RunStatus, Schema};
use infragraph_fetch::{FetchStats, Secrets};
use infragraph_runtime::{MAX_GUEST_TEXT, RecordCounts};
use serde::{Deserialize, Serialize};

/// Everything one sync did, as the operator reads it and the run history keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// The plugin's name.
    pub plugin: String,
    /// The connection that ran: `plugin/name` for a named connection, the plugin's name
    /// for its default one. (Empty in runs recorded before connections: see
    /// [`RunReport::connection`].)
    #[serde(default)]
    pub connection: String,
    /// Its version.
    pub plugin_version: String,
    /// The sha256 of its file.
    pub plugin_sha256: String,
    /// The scope it declared.
    pub scope: Option<NodeRef>,
    /// The run's update tag (`lastupdated` of every record it wrote).
    pub update_tag: i64,
    /// How it ended.
    pub status: RunStatus,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// The plugin's one-line summary, when it succeeded.
    pub summary: Option<String>,
    /// What went wrong; empty when it succeeded.
    pub errors: Vec<String>,
    /// What the operator should look at even when it succeeded: relationships not
    /// written for want of an end, per type. (Absent from runs recorded before it.)
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Limits that stopped it.
    pub limits_hit: Vec<String>,
    /// Labels whose stale records were kept.
    pub incomplete: Vec<Incomplete>,
    /// Per label: created, updated, deleted.
    pub nodes: BTreeMap<String, Changes>,
    /// Per relationship type: created, updated, deleted, unresolved.
    pub edges: BTreeMap<String, Changes>,
    /// What the plugin emitted and asked for.
    pub records: RecordCounts,
    /// HTTP traffic: requests, bytes, retries, denials.
    pub http: FetchStats,
    /// Time per phase.
    pub phases: Phases,
}

/// Milliseconds spent in each phase of a sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Loading and preparing the sink (indexes).
    pub prepare_ms: u64,
    /// The plugin running, nodes written as they come.
    pub sync_ms: u64,
    /// Writing the held-back edges.
    pub edges_ms: u64,
    /// Deleting stale records.
    pub cleanup_ms: u64,
    /// All of it.
    pub total_ms: u64,
}

impl RunReport {
    /// The connection that ran, also for a run recorded before connections existed.
    pub fn connection(&self) -> &str {
        if self.connection.is_empty() {
            &self.plugin
        } else {
            &self.connection
        }
    }

    /// The report of a plugin refused before its sync began: it could not be loaded, or
    /// its config or credentials could not be resolved. `error` names the phase
    /// (`load: …`, `manifest: …`); it is cut at [`MAX_GUEST_TEXT`], as a manifest error
    /// may quote what the guest declared. `version` and `sha256` are empty when the file
    /// could not be read that far.
    pub fn refused(plugin: &str, version: &str, sha256: &str, error: &str) -> RunReport {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        RunReport {
            plugin: plugin.into(),
            connection: plugin.into(),
            plugin_version: version.into(),
            plugin_sha256: sha256.into(),
            scope: None,
            update_tag: 0,
            status: RunStatus::Failed,
            started_at: now.clone(),
            finished_at: now,
            summary: None,
            // No secret has been read yet: the cap is all this does.
            errors: vec![Secrets::new().redact_capped(error, MAX_GUEST_TEXT)],
            warnings: Vec::new(),
            limits_hit: Vec::new(),
            incomplete: Vec::new(),
            nodes: BTreeMap::new(),
            edges: BTreeMap::new(),
            records: RecordCounts::default(),
            http: FetchStats::default(),
            phases: Phases::default(),
        }
    }

    /// Nodes written in this run.
    pub fn nodes_written(&self) -> u64 {
        self.nodes.values().map(|c| c.created + c.updated).sum()
    }
    /// Edges written in this run.
    pub fn edges_written(&self) -> u64 {
        self.edges.values().map(|c| c.created + c.updated).sum()
    }
    /// Records deleted by cleanup.
    pub fn deleted(&self) -> u64 {
        self.nodes
            .values()
            .chain(self.edges.values())
            .map(|c| c.deleted)
            .sum()
    }
    /// Edges not written for a missing end.
    pub fn unresolved(&self) -> u64 {
        self.edges.values().map(|c| c.unresolved).sum()
    }

    /// One warning per relationship type with edges left unwritten for a missing end,
    /// naming the ends `schema` declares for it: a jump in these is how a listing that
    /// failed, was skipped or does not exist shows itself, so it is said in words, not
    /// only counted.
    pub(crate) fn warn_unresolved(&mut self, schema: &Schema) {
        for (rel, c) in &self.edges {
            if c.unresolved == 0 {
                continue;
            }
            let ends: Vec<String> = schema
                .edges
                .iter()
                .filter(|e| &e.rel_type == rel)
                .map(|e| format!("{}->{}", e.from, e.to))
                .collect();
            let tried = c.unresolved + c.created + c.updated;
            self.warnings.push(format!(
                "{} of {tried} {rel} relationships were not written: an end ({}) is in no \
                 listing of this run nor in the graph (a failed listing, or the other end's \
                 plugin has not synced yet)",
                c.unresolved,
                ends.join(", ")
            ));
        }
    }
}

/// Incomplete listings that failed the same way: one line for many, with a count and the
/// first as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// What they have in common: the reason after its URL, other URLs elided.
    pub cause: String,
    /// How many listings.
    pub count: usize,
    /// The first of them, whole.
    pub example: Incomplete,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.example;
        let under = e
            .parent
            .as_ref()
            .map(|p| format!(" under {p}"))
            .unwrap_or_default();
        if self.count == 1 {
            write!(f, "{}{under}: {}", e.label, e.reason)
        } else {
            write!(
                f,
                "{} listings failed with {}; e.g. {}{under}: {}",
                self.count, self.cause, e.label, e.reason
            )
        }
    }
}

/// `incomplete` grouped by cause, the most frequent first (then in order of appearance).
/// The cause of a reason is what follows its first URL (the part that differs from one
/// listing to the next), any later URL elided; a reason without a URL is its own cause.
pub fn causes(incomplete: &[Incomplete]) -> Vec<Cause> {
    let mut groups: Vec<Cause> = Vec::new();
    for i in incomplete {
        let cause = cause_of(&i.reason);
        match groups.iter_mut().find(|g| g.cause == cause) {
            Some(g) => g.count += 1,
            None => groups.push(Cause {
                cause,
                count: 1,
                example: i.clone(),
            }),
        }
    }
    // Stable: equal counts keep their order of appearance.
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

fn cause_of(reason: &str) -> String {
    let url_at = |s: &str| {
        [s.find("http://"), s.find("https://")]
            .into_iter()
            .flatten()
            .min()
    };
    let Some(start) = url_at(reason) else {
        return reason.to_string();
    };
    let rest = &reason[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ')')
        .unwrap_or(rest.len());
    // A URL often ends in `:` before the error: that colon is the separator, not the URL.
    let url_end = rest[..end].trim_end_matches(':').len();
    let mut after = rest[url_end..].trim_start_matches(':').trim().to_string();
    while let Some(s) = url_at(&after) {
        let tail = &after[s..];
        let e = tail
            .find(|c: char| c.is_whitespace() || c == ')')
            .unwrap_or(tail.len());
        after = format!("{}…{}", &after[..s], &tail[e..]);
    }
    if after.is_empty() {
        reason.to_string()
    } else {
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(label: &str, reason: &str) -> Incomplete {
        Incomplete {
            label: label.into(),
            parent: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn listings_that_failed_the_same_way_are_one_cause() {
        let refused = |zone: &str, what: &str| {
            format!(
                "zone {zone}: listing /instance/v1/zones/{zone}/{what} failed: \
                 http://127.0.0.1:9/instance/v1/zones/{zone}/{what}?page=1: network: error \
                 sending request for url (http://127.0.0.1:9/instance/v1/zones/{zone}/{what}?page=1) (after 4 retries)"
            )
        };
        let all = [
            inc("ScalewayInstance", &refused("fr-par-1", "servers")),
            inc("ScalewayUser", "403 Forbidden: the key may not read IAM"),
            inc("ScalewayVolume", &refused("nl-ams-1", "volumes")),
            inc("ScalewayInstance", &refused("pl-waw-1", "servers")),
        ];
        let groups = causes(&all);
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].count, 3);
        assert_eq!(
            groups[0].cause,
            "network: error sending request for url (…) (after 4 retries)"
        );
        assert_eq!(groups[0].example, all[0]);
        let line = groups[0].to_string();
        assert!(
            line.starts_with("3 listings failed with network: "),
            "{line}"
        );
        assert!(
            line.contains("e.g. ScalewayInstance: zone fr-par-1"),
            "{line}"
        );
        assert_eq!(
            groups[1].to_string(),
            "ScalewayUser: 403 Forbidden: the key may not read IAM"
        );
    }
}
