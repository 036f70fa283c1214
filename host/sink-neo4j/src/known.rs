//! What a scope already holds, so that a resync rewrites only what changed.
//!
//! A Bolt server pays nearly as much to rewrite an unchanged record as to create it, and
//! as much again to mark it seen: the write itself is the cost. Measured on ArcadeDB
//! 26.10, 100,000 resources and 250,000 relationships took 10.4 s to write, 7.3 s to
//! rewrite unchanged, and still 5-6 s when each unchanged record only had one property set
//! by element id. Reading them is another matter: 100,000 nodes with their digests and
//! element ids stream in 0.1-0.5 s.
//!
//! So every record the sink writes carries `_digest` (`infragraph_core::digest` of what
//! the plugin emitted for it). At a run's first batch of a label, or of a relationship
//! kind, the sink reads what the scope holds of that kind: each record's key, element id
//! and digest, in one streaming query. From then on a row whose digest matches is not
//! written at all: the run only notes, here, that it saw the record. Cleanup then deletes
//! the records of such a kind that the run neither wrote nor saw, found by the list it
//! holds rather than by `_seen` (which unchanged records keep from an earlier run);
//! kinds the run knows nothing of are cleaned up by `_seen` as before. A scope with no run
//! recorded is read for nothing: each read is a query plan, up to a tenth of a second for
//! the relationships of a label with thousands of nodes.
//!
//! Skipping is only sound where a row names exactly one record: nodes by their primary
//! label and `id`, relationships whose ends are matched by `id` on primary labels (each
//! carries a uniqueness constraint on `id`). Other relationship batches are written
//! whole. The records held are bounded by [`BUDGET`] for the whole process; a kind that
//! would pass it is written whole too, so memory stays bounded whatever the number of
//! runs at once. A record someone deletes by hand between the read and the end of the
//! run is missing until the next run, which writes it again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infragraph_core::{Digest, WriteScope};

/// Records whose digests all runs of this process may hold at once: about 130 bytes each
/// (ids, element ids, digest), so some 130 MB at most.
pub(crate) const BUDGET: usize = 1_000_000;

/// What the sink stores as `_digest`.
pub(crate) fn hex_of(d: &Digest) -> String {
    hex::encode(d)
}

/// A stored `_digest`, or `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<Digest> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// One record the scope held when its kind was read.
#[derive(Debug, Clone)]
pub(crate) struct Held<E> {
    /// How cleanup finds it again: nothing more than its id for a node, its ends' element
    /// ids for a relationship. `None` once this run saw it unchanged: cleanup keeps it.
    pub(crate) element: Option<E>,
    /// Its digest; `None` when it cannot be skipped (written before digests, or two copies
    /// of a relationship).
    pub(crate) digest: Option<Digest>,
}

/// The records of one kind, by what a row names them with: a node's `id`, a
/// relationship's (`from`, `to`) ids.
pub(crate) type Records<K, E> = HashMap<K, Held<E>>;

/// A relationship kind: type, start label, end label.
pub(crate) type EdgeKind = (String, String, String);

/// Relationships by their ends' ids, found again by their ends' element ids.
pub(crate) type EdgeRecords = Records<(String, String), (String, String)>;

/// A relationship kind's start and end labels, and the element ids of the ends of its
/// relationships a run neither wrote nor saw.
pub(crate) type StaleEdges<'a> = (&'a str, &'a str, Vec<(String, String)>);

/// A run's knowledge, shared by its batches.
pub(crate) type Shared = Arc<tokio::sync::Mutex<Run>>;

/// What one run of one plugin over one scope knows: per kind, its records, or `None`
/// when the kind is written whole (too many to hold, or the read failed).
pub(crate) struct Run {
    pub(crate) nodes: HashMap<String, Option<Records<String, ()>>>,
    pub(crate) edges: HashMap<EdgeKind, Option<EdgeRecords>>,
    /// Whether the scope was synced before (a run recorded), once asked: a scope never
    /// synced holds nothing worth reading, and each read costs a query plan (up to a
    /// tenth of a second for relationships of a label with thousands of nodes).
    pub(crate) synced_before: Option<bool>,
    /// Records seen unchanged, per label and per relationship type, for the counts.
    pub(crate) unchanged_nodes: HashMap<String, u64>,
    pub(crate) unchanged_edges: HashMap<String, u64>,
    /// Records taken from the budget; given back when the run's knowledge is dropped.
    held: usize,
    budget: Arc<AtomicUsize>,
}

impl Run {
    /// Takes `n` more records from the process's budget; `false` when it has not that many.
    pub(crate) fn take(&mut self, n: usize) -> bool {
        let taken = self
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .is_ok();
        if taken {
            self.held += n;
        }
        taken
    }

    /// Gives `n` records back to the budget (a read that stopped half way).
    pub(crate) fn give_back(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        self.budget.fetch_add(n, Ordering::AcqRel);
    }
}

impl Run {
    /// The ids of the nodes of `label` the scope held and this run neither wrote nor saw;
    /// `None` when the run knows nothing of the label.
    pub(crate) fn stale_nodes(&self, label: &str) -> Option<Vec<String>> {
        let held = self.nodes.get(label)?.as_ref()?;
        Some(
            held.iter()
                .filter(|(_, h)| h.element.is_some())
                .map(|(id, _)| id.clone())
                .collect(),
        )
    }

    /// Per kind of type `rel` the run knows of: its labels, and the element ids of the
    /// ends of its relationships the run neither wrote nor saw.
    pub(crate) fn stale_edges(&self, rel: &str) -> Vec<StaleEdges<'_>> {
        self.edges
            .iter()
            .filter(|((t, _, _), held)| t == rel && held.is_some())
            .map(|((_, from, to), held)| {
                let stale = held
                    .iter()
                    .flatten()
                    .filter_map(|(_, h)| h.element.clone())
                    .collect();
                (from.as_str(), to.as_str(), stale)
            })
            .collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.budget.fetch_add(self.held, Ordering::AcqRel);
    }
}

/// The runs under way through one sink, by plugin and scope (one run each: the lease).
pub(crate) struct Runs {
    runs: Mutex<HashMap<(String, String), (i64, Shared)>>,
    budget: Arc<AtomicUsize>,
}

impl Runs {
    pub(crate) fn new(budget: usize) -> Runs {
        Runs {
            runs: Mutex::new(HashMap::new()),
            budget: Arc::new(AtomicUsize::new(budget)),
        }
    }

    /// The knowledge of `w`'s run, empty at its first call; a run of the same plugin and
    /// scope with another tag (one that ended without publishing) is forgotten.
    pub(crate) fn of(&self, w: &WriteScope) -> Shared {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let key = (w.plugin.clone(), w.scope.clone());
        if let Some((tag, run)) = runs.get(&key)
            && *tag == w.update_tag
        {
            return run.clone();
        }
        let run = Arc::new(tokio::sync::Mutex::new(Run {
            nodes: HashMap::new(),
            edges: HashMap::new(),
            synced_before: None,
            unchanged_nodes: HashMap::new(),
            unchanged_edges: HashMap::new(),
            held: 0,
            budget: self.budget.clone(),
        }));
        runs.insert(key, (w.update_tag, run.clone()));
        run
    }

    /// The knowledge of `w`'s run, if it wrote anything.
    pub(crate) fn get(&self, w: &WriteScope) -> Option<Shared> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.get(&(w.plugin.clone(), w.scope.clone()))
            .filter(|(tag, _)| *tag == w.update_tag)
            .map(|(_, run)| run.clone())
    }

    /// Forgets `w`'s run: it published or was discarded.
    pub(crate) fn end(&self, w: &WriteScope) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let key = (w.plugin.clone(), w.scope.clone());
        if runs.get(&key).is_some_and(|(tag, _)| *tag == w.update_tag) {
            runs.remove(&key);
        }
    }

    /// Records held by all runs, for tests.
    #[cfg(test)]
    pub(crate) fn left(&self) -> usize {
        self.budget.load(Ordering::Acquire)
    }
}

/// What to do with each row of a batch.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Rows to write (indexes into the batch): new, changed, or not known.
    pub(crate) write: Vec<usize>,
    /// Rows whose record the scope holds as they are, seen for the first time this run.
    pub(crate) unchanged: Vec<usize>,
    /// Rows whose record this run saw unchanged already.
    pub(crate) fresh: usize,
}

impl Plan {
    /// Every row written.
    pub(crate) fn all(rows: usize) -> Plan {
        Plan {
            write: (0..rows).collect(),
            unchanged: Vec::new(),
            fresh: 0,
        }
    }
}

/// Sorts a batch's rows, named by `keys` with content `digests`, against what the scope
/// held (`None`: the kind is written whole). A key the batch names twice is written, each
/// row in order, as it would have been without skipping.
pub(crate) fn plan<K, E>(held: Option<&Records<K, E>>, keys: &[K], digests: &[Digest]) -> Plan
where
    K: Eq + std::hash::Hash,
{
    let Some(held) = held else {
        return Plan::all(keys.len());
    };
    let mut seen: HashMap<&K, usize> = HashMap::with_capacity(keys.len());
    for k in keys {
        *seen.entry(k).or_default() += 1;
    }
    let mut out = Plan {
        write: Vec::new(),
        unchanged: Vec::new(),
        fresh: 0,
    };
    for (i, (k, d)) in keys.iter().zip(digests).enumerate() {
        let same = seen[k] == 1 && held.get(k).is_some_and(|h| h.digest.as_ref() == Some(d));
        match held.get(k).map(|h| &h.element) {
            Some(Some(_)) if same => out.unchanged.push(i),
            Some(None) if same => out.fresh += 1,
            _ => out.write.push(i),
        }
    }
    out
}

/// Records what a batch did: a written record is forgotten (a later row for it is
/// written too, since its stored digest is now this run's), an unchanged one is seen.
/// Returns how many records were forgotten, to give back to the budget.
pub(crate) fn settle<K, E>(held: &mut Records<K, E>, keys: &[K], plan: &Plan) -> usize
where
    K: Eq + std::hash::Hash,
{
    let mut forgotten = 0;
    for &i in &plan.write {
        forgotten += usize::from(held.remove(&keys[i]).is_some());
    }
    for i in &plan.unchanged {
        if let Some(h) = held.get_mut(&keys[*i]) {
            h.element = None;
        }
    }
    forgotten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(tag: i64) -> WriteScope {
        WriteScope {
            plugin: "p".into(),
            scope: "s".into(),
            update_tag: tag,
        }
    }

    #[test]
    fn a_digest_is_stored_as_hex() {
        let d = infragraph_core::digest(&[], &["a".into()], &[infragraph_core::Value::Int(1)]);
        assert_eq!(parse(&hex_of(&d)), Some(d));
        assert_eq!(parse("not hex"), None);
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_given_back_when_a_run_ends() {
        let runs = Runs::new(10);
        let a = runs.of(&w(1));
        assert!(a.lock().await.take(7));
        let other = WriteScope {
            scope: "t".into(),
            ..w(1)
        };
        let b = runs.of(&other);
        assert!(!b.lock().await.take(4), "only 3 left");
        assert!(b.lock().await.take(3));
        assert_eq!(runs.left(), 0);
        b.lock().await.give_back(3);
        assert_eq!(runs.left(), 3);
        // The same run is found again; another tag starts afresh and the old is dropped.
        assert!(Arc::ptr_eq(&a, &runs.of(&w(1))));
        drop(a);
        let again = runs.of(&w(2));
        assert_eq!(runs.left(), 10, "the run of tag 1 gave its 7 back");
        assert!(again.lock().await.take(10));
        runs.end(&w(2));
        drop(again);
        assert_eq!(runs.left(), 10, "ended: all back");
        drop(b);
    }

    #[test]
    fn only_rows_that_match_one_held_record_are_skipped() {
        let d = |n: u8| [n; 16];
        let mut held: Records<String, String> = HashMap::new();
        for (k, e, dig) in [
            ("same", Some("#1"), Some(d(1))),
            ("changed", Some("#2"), Some(d(1))),
            ("fresh", None, Some(d(1))),
            ("twice", Some("#4"), Some(d(1))),
            ("copies", Some("#5"), None),
        ] {
            held.insert(
                k.to_string(),
                Held {
                    element: e.map(str::to_string),
                    digest: dig,
                },
            );
        }
        let keys: Vec<String> = [
            "same", "changed", "fresh", "twice", "twice", "copies", "new",
        ]
        .map(String::from)
        .to_vec();
        let digests = [d(1), d(2), d(1), d(1), d(1), d(1), d(1)];
        let p = plan(Some(&held), &keys, &digests);
        assert_eq!(p.unchanged, vec![0]);
        assert_eq!(p.fresh, 1);
        assert_eq!(p.write, vec![1, 3, 4, 5, 6]);
        assert_eq!(plan::<String, String>(None, &keys, &digests), Plan::all(7));
        let forgotten = settle(&mut held, &keys, &p);
        assert_eq!(forgotten, 3, "changed, twice, copies");
        assert_eq!(held["same"].element, None, "seen now");
        assert!(!held.contains_key("changed"));
        assert_eq!(held.len(), 2);
    }
}
