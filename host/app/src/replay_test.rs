//! `infragraph plugins test <plugin> --replay DIR --expect graph.jsonl`: a plugin's own CI
//! check. The real component syncs against a recording (no network, no credentials) into
//! a throwaway store, and the graph it writes is compared with an expected export, record
//! by record, so a change in the plugin or in the API's answers shows as a diff.
//!
//! Both sides are read as `infragraph export --format jsonl` writes them and compared
//! without what differs between any two runs: the update tags (`firstseen`,
//! `lastupdated`) and the export's internal ids.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use infragraph_core::{GraphReader, RunStatus};
use serde_json::{Map, Value as Json};

use crate::error::Error;
use crate::graph::{Graph, Intent, Location};
use crate::settings::Settings;
use crate::sync::{SyncPlan, Traffic, sync};

/// At most this many differing records are listed.
const SHOWN: usize = 20;

/// What a replay test found.
#[derive(Debug)]
pub struct ReplayTest {
    /// Records the sync wrote, as compared.
    pub records: usize,
    /// Records expected but not written, as compared (at most [`SHOWN`]).
    pub missing: Vec<String>,
    /// Records written but not expected (at most [`SHOWN`]).
    pub unexpected: Vec<String>,
    /// How many differ in all, each way.
    pub differ: (usize, usize),
    /// The expected file was written (`--update`, or it did not exist).
    pub wrote: Option<PathBuf>,
}

impl ReplayTest {
    /// Whether the graph is the expected one.
    pub fn passed(&self) -> bool {
        self.differ == (0, 0)
    }
}

/// Syncs `plugin` (a name or a path) from the recording in `dir` into a fresh store and
/// compares its graph with `expect`. With `update`, or when `expect` does not exist, the
/// graph is written there instead.
pub async fn replay(
    settings: &Settings,
    plugin: &str,
    dir: &Path,
    expect: &Path,
    update: bool,
) -> Result<ReplayTest, Error> {
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::Usage(format!("cannot make a scratch directory: {e}")))?;
    let store = scratch.path().join("replay.db");
    let location = Location::Store(store.clone());
    let plan = SyncPlan {
        plugins: vec![plugin.to_string()],
        traffic: Traffic::Replay(dir.to_path_buf()),
        skip_people: true,
        ..SyncPlan::default()
    };
    let quiet: infragraph_engine::ProgressFn =
        std::sync::Arc::new(|_: &str, _: infragraph_engine::Progress| {});
    let synced = sync(settings, &location, &plan, |_| quiet).await?;
    let Some(report) = synced.reports.first() else {
        return Err(Error::Usage(format!("{plugin} did not run")));
    };
    if report.status != RunStatus::Succeeded {
        return Err(Error::Usage(format!(
            "the replay of {} from {} {}: {}",
            report.connection(),
            dir.display(),
            report.status,
            report.errors.join("; ")
        )));
    }
    let graph = Graph::open(&location, Intent::Read).await?;
    let mut jsonl = Vec::new();
    graph.export_jsonl(&mut jsonl).await?;
    let got = comparable(&String::from_utf8_lossy(&jsonl))?;
    if update || !expect.exists() {
        // The export itself: a file `infragraph import` reads, and a reviewer diffs.
        std::fs::write(expect, &jsonl)
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", expect.display())))?;
        return Ok(ReplayTest {
            records: got.len(),
            missing: Vec::new(),
            unexpected: Vec::new(),
            differ: (0, 0),
            wrote: Some(expect.to_path_buf()),
        });
    }
    let text = std::fs::read_to_string(expect)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", expect.display())))?;
    let want = comparable(&text).map_err(|e| Error::Usage(format!("{}: {e}", expect.display())))?;
    let missing: Vec<&String> = want.difference(&got).collect();
    let unexpected: Vec<&String> = got.difference(&want).collect();
    Ok(ReplayTest {
        records: got.len(),
        differ: (missing.len(), unexpected.len()),
        missing: missing.into_iter().take(SHOWN).cloned().collect(),
        unexpected: unexpected.into_iter().take(SHOWN).cloned().collect(),
        wrote: None,
    })
}

/// Each record of an export as one line that two runs of the same sync write alike:
/// nodes by labels and properties, relationships by type, ends (labels and `id`) and
/// properties; no update tags, no export ids.
fn comparable(jsonl: &str) -> Result<BTreeSet<String>, Error> {
    let mut out = BTreeSet::new();
    for (n, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(line)
            .map_err(|e| Error::Usage(format!("line {}: not an export record: {e}", n + 1)))?;
        let props = |v: &Json| -> Json {
            let mut p: Map<String, Json> = v["properties"].as_object().cloned().unwrap_or_default();
            p.remove("firstseen");
            p.remove("lastupdated");
            Json::Object(p)
        };
        let end =
            |e: &Json| serde_json::json!({"labels": e["labels"], "id": e["properties"]["id"]});
        let record = match v["type"].as_str() {
            Some("node") => serde_json::json!({
                "node": v["labels"], "properties": props(&v),
            }),
            Some("relationship") => serde_json::json!({
                "relationship": v["label"], "start": end(&v["start"]), "end": end(&v["end"]),
                "properties": props(&v),
            }),
            _ => {
                return Err(Error::Usage(format!(
                    "line {}: neither a node nor a relationship",
                    n + 1
                )));
            }
        };
        out.insert(record.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_exports_of_one_graph_compare_equal_whatever_their_tags_and_ids() {
        let a = r#"{"type":"node","id":"n1","labels":["A"],"properties":{"id":"x","k":1,"firstseen":5,"lastupdated":5}}
{"type":"relationship","id":"r1","label":"R","properties":{"lastupdated":5},"start":{"id":"n1","labels":["A"],"properties":{"id":"x"}},"end":{"id":"n1","labels":["A"],"properties":{"id":"x"}}}"#;
        let b = r#"{"type":"relationship","id":"r9","label":"R","properties":{"lastupdated":7},"start":{"id":"n4","labels":["A"],"properties":{"id":"x"}},"end":{"id":"n4","labels":["A"],"properties":{"id":"x"}}}
{"type":"node","id":"n4","labels":["A"],"properties":{"id":"x","k":1,"firstseen":7,"lastupdated":7}}"#;
        assert_eq!(comparable(a).unwrap(), comparable(b).unwrap());
        let c = a.replace("\"k\":1", "\"k\":2");
        assert_ne!(comparable(a).unwrap(), comparable(&c).unwrap());
        assert!(comparable("{}").unwrap_err().to_string().contains("line 1"));
    }
}
