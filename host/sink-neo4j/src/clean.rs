//! Cleanup after a successful run: what the run's plugin and scope asserted before but
//! did not emit this time is released (when other scopes also assert it) or deleted.
//!
//! A kind the run knows (`known`: it read the scope's records of that kind at its first
//! batch) is cleaned up by that list: the records it neither wrote nor saw unchanged,
//! found by id or by their ends' element ids. Any other kind by `_seen`, which every
//! record the run wrote carries. Either way each statement checks again that a record is
//! this plugin's, asserted by this scope, not seen by this run and not kept, and deletes
//! in bounded transactions.

use infragraph_core::{ChangeCounts, Incomplete, WriteScope};
use neo4rs::{BoltList, BoltType, query};

use crate::cypher::{self, Among, Anchor, Keep};
use crate::error::Error;
use crate::known::Run;
use crate::sink::Neo4jSink;
use crate::survey::Stale;
use crate::values::{map, text};
use crate::write::scoped;

/// The records one set of statements looks at, and the list it binds, if any.
struct Job {
    /// The label or relationship type, for the counts.
    name: String,
    among: Among,
    /// `$ids` or `$pairs` for a listed kind, in chunks of the cleanup batch.
    list: Option<(&'static str, Vec<BoltType>)>,
}

impl Neo4jSink {
    /// Releases or deletes what `w`'s run did not emit, except what `keep` keeps: the
    /// kinds `stale` names (found by `survey`), and those `run` knows from memory.
    /// Returns the deletions, per label and type.
    pub(crate) async fn clean(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        batch: usize,
        run: Option<&Run>,
        stale: Vec<Stale>,
    ) -> Result<ChangeCounts, Error> {
        let batch = batch.max(1);
        let schema = self.schema_of(&w.plugin)?;
        let what = format!(
            "cleaning up after plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for l in schema.labels() {
            if let Some(ids) = run.and_then(|r| r.stale_nodes(l))
                && !ids.is_empty()
            {
                nodes.push(Job {
                    name: l.to_string(),
                    among: Among::listed_nodes(l)?,
                    list: Some(("ids", ids.iter().map(|i| text(i)).collect())),
                });
            }
        }
        for t in schema.rel_types() {
            for (_, _, pairs) in run.map(|r| r.stale_edges(t)).unwrap_or_default() {
                if pairs.is_empty() {
                    continue;
                }
                let anchor = Anchor::for_batch(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
                edges.push(Job {
                    name: t.to_string(),
                    among: Among::listed_edges(t, anchor)?,
                    list: Some((
                        "pairs",
                        pairs
                            .iter()
                            .map(|(a, b)| map([("a", text(a)), ("b", text(b))]))
                            .collect(),
                    )),
                });
            }
        }
        for kind in stale {
            let job = Job {
                name: kind.name,
                among: kind.among,
                list: None,
            };
            if kind.is_node {
                nodes.push(job)
            } else {
                edges.push(job)
            }
        }
        if nodes.is_empty() && edges.is_empty() {
            return Ok(ChangeCounts::default());
        }
        let (kept, params) = self.kept(w, keep, &what).await?;
        let mut counts = ChangeCounts::default();
        // Records other scopes also assert lose this scope first; what only this scope
        // asserted is deleted below.
        for job in edges.iter().chain(&nodes) {
            for statement in cypher::release_stale(&job.among, &kept)? {
                self.each_chunk(&what, &statement, job, &params, w, batch, |_, _| {})
                    .await?;
            }
        }
        for job in &edges {
            let statement = cypher::delete_stale_edges(&job.among, &kept)?;
            self.each_chunk(&what, &statement, job, &params, w, batch, |_, n| {
                if n > 0 {
                    counts.edges.entry(job.name.clone()).or_default().deleted += n;
                }
            })
            .await?;
        }
        for job in &nodes {
            let statement = cypher::delete_edges_of_stale_nodes(&job.among, &kept)?;
            self.each_chunk(&what, &statement, job, &params, w, batch, |t, n| {
                if let (Some(t), true) = (t, n > 0) {
                    counts.edges.entry(t).or_default().deleted += n;
                }
            })
            .await?;
            let statement = cypher::delete_stale_nodes(&job.among, &kept)?;
            self.each_chunk(&what, &statement, job, &params, w, batch, |_, n| {
                if n > 0 {
                    counts.nodes.entry(job.name.clone()).or_default().deleted += n;
                }
            })
            .await?;
        }
        Ok(counts)
    }

    /// What to keep: labels, or the ids of a label's nodes under a parent, listed now;
    /// with the parameters the predicates name.
    async fn kept(
        &self,
        w: &WriteScope,
        keep: &[Incomplete],
        what: &str,
    ) -> Result<(Keep, Vec<(String, BoltType)>), Error> {
        let mut kept = Keep {
            entries: Vec::new(),
        };
        let mut params: Vec<(String, BoltType)> = Vec::new();
        for (n, k) in keep.iter().enumerate() {
            match &k.parent {
                None => kept.entries.push((k.label.clone(), None)),
                Some(p) => {
                    let statement = cypher::kept_under_parent(&k.label, &p.label, &p.key)?;
                    let rows = self
                        .tx_retried(what, || {
                            vec![scoped(query(&statement), w).param("value", p.value.as_str())]
                        })
                        .await?;
                    let ids: Vec<BoltType> = rows
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.get::<String>("id").ok())
                        .map(|id| text(&id))
                        .collect();
                    let name = format!("keep{n}");
                    params.push((name.clone(), BoltType::List(BoltList { value: ids })));
                    kept.entries.push((k.label.clone(), Some(name)));
                }
            }
        }
        Ok((kept, params))
    }

    /// Runs `statement` over `job`'s records: over each chunk of its list (of at most
    /// `limit`), or once over its kind, each until it changes less than `limit`.
    #[allow(clippy::too_many_arguments)]
    async fn each_chunk(
        &self,
        what: &str,
        statement: &str,
        job: &Job,
        params: &[(String, BoltType)],
        w: &WriteScope,
        limit: usize,
        mut on: impl FnMut(Option<String>, u64),
    ) -> Result<(), Error> {
        let Some((name, list)) = &job.list else {
            return self
                .delete_loop(what, statement, params, w, limit, &mut on)
                .await;
        };
        for chunk in list.chunks(limit) {
            let mut with = params.to_vec();
            with.push((
                name.to_string(),
                BoltType::List(BoltList {
                    value: chunk.to_vec(),
                }),
            ));
            self.delete_loop(what, statement, &with, w, limit, &mut on)
                .await?;
        }
        Ok(())
    }

    /// Runs one bounded statement until it changes less than `limit`; hands `on` the
    /// count, per type when the statement returns `t`.
    async fn delete_loop(
        &self,
        what: &str,
        statement: &str,
        params: &[(String, BoltType)],
        w: &WriteScope,
        limit: usize,
        on: &mut impl FnMut(Option<String>, u64),
    ) -> Result<(), Error> {
        loop {
            let rows = self
                .tx_retried(what, || {
                    let mut q = scoped(query(statement), w).param("limit", limit as i64);
                    for (k, v) in params {
                        q = q.param(k, v.clone());
                    }
                    vec![q]
                })
                .await?;
            let mut total = 0u64;
            for row in rows.into_iter().flatten() {
                let n = row.get::<i64>("deleted").unwrap_or(0).max(0) as u64;
                total += n;
                on(row.get::<String>("t").ok(), n);
            }
            if total < limit as u64 {
                return Ok(());
            }
        }
    }
}
