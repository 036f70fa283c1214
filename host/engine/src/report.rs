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
    /// The report of a plugin refused before its sync began: it could not be loaded, or
    /// its config or credentials could not be resolved. `error` names the phase
    /// (`load: …`, `manifest: …`); it is cut at [`MAX_GUEST_TEXT`], as a manifest error
    /// may quote what the guest declared. `version` and `sha256` are empty when the file
    /// could not be read that far.
    pub fn refused(plugin: &str, version: &str, sha256: &str, error: &str) -> RunReport {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        RunReport {
            plugin: plugin.into(),
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
                "{} of {tried} {rel} relationships were not written: an end ({}) is in no                  listing of this run and not in the graph (a failed or missing listing, or                  a plugin the other end belongs to that has not synced yet)",
                c.unresolved,
                ends.join(", ")
            ));
        }
    }
}
