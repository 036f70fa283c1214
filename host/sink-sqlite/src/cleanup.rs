//! Cleanup after a successful sync, inside the transaction that publishes it: every record
//! the run's scope asserted before but not in this run loses that scope's assertion, and
//! a record no scope asserts any more is deleted (a node with all its edges, whoever
//! wrote them). Records of another plugin, and edges between surviving nodes written by
//! another plugin or scope, are never touched. Nodes of the labels the plugin marked
//! incomplete (under their parent, when given) and the edges touching them are kept.
//!
//! Set-based: the candidates go into temporary tables, then a few statements delete,
//! shift or trim them.

use std::collections::BTreeMap;

use infragraph_core::{ChangeCounts, Changes, Incomplete, WriteScope};
use rusqlite::{Connection, params};

use crate::error::Fail;
use crate::resolve::Resolver;

/// `true` when a record of `table` (a table name or an alias) is asserted by scope `?2`:
/// the scope that created it, or one that asserted it since (`also_scopes`).
pub(crate) fn asserted_by(table: &str) -> String {
    format!(
        "({table}.scope = ?2 OR ({table}.also_scopes IS NOT NULL AND EXISTS \
         (SELECT 1 FROM json_each({table}.also_scopes) WHERE value = ?2)))"
    )
}

/// Deletes or releases what `w`'s scope no longer asserts, in `tx`. `n` names the
/// temporary tables, which belong to the connection: unique per cleanup.
pub(crate) fn run(
    tx: &Connection,
    n: u64,
    w: &WriteScope,
    keep: &[Incomplete],
) -> Result<ChangeCounts, Fail> {
    let t = Tables {
        keep: format!("temp.cleanup_keep_{n}"),
        edges: format!("temp.cleanup_edges_{n}"),
        nodes: format!("temp.cleanup_nodes_{n}"),
        dead: format!("temp.cleanup_dead_{n}"),
    };
    let mut counts = ChangeCounts::default();
    if !anything_stale(tx, w)? {
        // A first sync, or a resync that saw every record again: no temporary tables,
        // no statements. Making them was nearly all of such a cleanup (0.75 ms of the
        // 9.2 ms a publish of the 200-connection benchmark held the write lock).
        return Ok(counts);
    }
    let done = plan(tx, &t, w, keep)
        .and_then(|()| edges(tx, &t, w, &mut counts))
        .and_then(|()| nodes(tx, &t, w, &mut counts));
    for table in [&t.keep, &t.edges, &t.nodes, &t.dead] {
        if let Err(e) = tx.execute(&format!("DROP TABLE IF EXISTS {table}"), []) {
            tracing::warn!(table = %table, error = %e, "could not drop a cleanup table");
        }
    }
    done?;
    let deleted = |m: &BTreeMap<String, Changes>| m.values().map(|c| c.deleted).sum::<u64>();
    tracing::debug!(
        plugin = %w.plugin,
        scope = %w.scope,
        nodes = deleted(&counts.nodes),
        edges = deleted(&counts.edges),
        "cleanup deleted stale records"
    );
    Ok(counts)
}

/// Whether the scope asserted any record before this run that this run did not write
/// again: the candidates [`plan`] would list, before [`plan`] makes tables for them.
fn anything_stale(tx: &Connection, w: &WriteScope) -> Result<bool, Fail> {
    let probe = |table: &str| {
        format!(
            "EXISTS (SELECT 1 FROM {table} WHERE source = ?1 AND scope = ?2 AND seen < ?3) \
             OR EXISTS (SELECT 1 FROM {table} WHERE source = ?1 AND also_scopes IS NOT NULL \
             AND seen < ?3 AND {a})",
            a = asserted_by(table)
        )
    };
    let sql = format!("SELECT ({}) OR ({})", probe("nodes"), probe("edges"));
    let stale: bool = tx
        .prepare_cached(&sql)?
        .query_row(params![w.plugin, w.scope, w.update_tag], |r| r.get(0))?;
    Ok(stale)
}

/// The temporary tables of one cleanup.
struct Tables {
    keep: String,
    edges: String,
    nodes: String,
    dead: String,
}

/// Lists the nodes to keep, and the edges and nodes the scope asserted before this run
/// but not in it.
fn plan(tx: &Connection, t: &Tables, w: &WriteScope, keep: &[Incomplete]) -> Result<(), Fail> {
    tx.execute(
        &format!("CREATE TABLE {} (nid INTEGER PRIMARY KEY)", t.keep),
        [],
    )?;
    let mut parents = Vec::new();
    for k in keep {
        match &k.parent {
            None => {
                tx.execute(
                    &format!(
                        "INSERT OR IGNORE INTO {} SELECT nid FROM nodes \
                         WHERE source = ?1 AND label = ?3 AND {}",
                        t.keep,
                        asserted_by("nodes")
                    ),
                    params![w.plugin, w.scope, k.label],
                )?;
            }
            Some(p) => {
                Resolver::new(tx, &p.label, &p.key)?.find(&p.value, &mut parents)?;
                for &parent in &parents {
                    tx.execute(
                        &format!(
                            "INSERT OR IGNORE INTO {k} \
                             SELECT n.nid FROM edges e JOIN nodes n ON n.nid = e.dst \
                             WHERE e.src = ?4 AND n.source = ?1 AND n.label = ?3 AND {a} \
                             UNION \
                             SELECT n.nid FROM edges e JOIN nodes n ON n.nid = e.src \
                             WHERE e.dst = ?4 AND n.source = ?1 AND n.label = ?3 AND {a}",
                            k = t.keep,
                            a = asserted_by("n")
                        ),
                        params![w.plugin, w.scope, k.label, parent],
                    )?;
                }
            }
        }
    }
    // Two halves each: the scope that created the record (a seek on the cleanup index),
    // and records several scopes assert (the partial index on `also_scopes`).
    for (table, key, list, except) in [
        (
            "edges",
            "eid",
            &t.edges,
            format!("src NOT IN {k} AND dst NOT IN {k}", k = t.keep),
        ),
        ("nodes", "nid", &t.nodes, format!("nid NOT IN {}", t.keep)),
    ] {
        tx.execute(&format!("CREATE TABLE {list} (id INTEGER PRIMARY KEY)"), [])?;
        tx.execute(
            &format!(
                "INSERT INTO {list} \
                 SELECT {key} FROM {table} \
                 WHERE source = ?1 AND scope = ?2 AND seen < ?3 AND {except} \
                 UNION \
                 SELECT {key} FROM {table} \
                 WHERE source = ?1 AND also_scopes IS NOT NULL AND seen < ?3 \
                 AND {a} AND {except}",
                a = asserted_by(table)
            ),
            params![w.plugin, w.scope, w.update_tag],
        )?;
    }
    Ok(())
}

/// Stale edges: deleted when only this scope asserted them, else released.
fn edges(
    tx: &Connection,
    t: &Tables,
    w: &WriteScope,
    counts: &mut ChangeCounts,
) -> Result<(), Fail> {
    let only_ours = format!(
        "eid IN (SELECT id FROM {}) AND also_scopes IS NULL",
        t.edges
    );
    count_into(
        tx,
        &format!("SELECT type, count(*) FROM edges WHERE {only_ours} GROUP BY type"),
        &mut counts.edges,
    )?;
    tx.execute(&format!("DELETE FROM edges WHERE {only_ours}"), [])?;
    release(tx, "edges", "eid", &t.edges, w)
}

/// Stale nodes: those only this scope asserted go, with every edge touching them (whoever
/// wrote it); the others are released.
fn nodes(
    tx: &Connection,
    t: &Tables,
    w: &WriteScope,
    counts: &mut ChangeCounts,
) -> Result<(), Fail> {
    tx.execute(
        &format!("CREATE TABLE {} (id INTEGER PRIMARY KEY)", t.dead),
        [],
    )?;
    tx.execute(
        &format!(
            // CROSS JOIN keeps the candidates as the outer loop: with a plain JOIN the
            // planner, knowing nothing of the fresh temporary table, scanned every node
            // of the store on each cleanup (most of the CPU of 200 connections' syncs).
            "INSERT INTO {} SELECT c.id FROM {} c CROSS JOIN nodes n ON n.nid = c.id \
             WHERE n.also_scopes IS NULL",
            t.dead, t.nodes
        ),
        [],
    )?;
    let touching = format!(
        "eid IN (SELECT eid FROM edges WHERE src IN (SELECT id FROM {d}) \
         UNION SELECT eid FROM edges WHERE dst IN (SELECT id FROM {d}))",
        d = t.dead
    );
    count_into(
        tx,
        &format!("SELECT type, count(*) FROM edges WHERE {touching} GROUP BY type"),
        &mut counts.edges,
    )?;
    tx.execute(&format!("DELETE FROM edges WHERE {touching}"), [])?;
    let dead = format!("nid IN (SELECT id FROM {})", t.dead);
    count_into(
        tx,
        &format!("SELECT label, count(*) FROM nodes WHERE {dead} GROUP BY label"),
        &mut counts.nodes,
    )?;
    tx.execute(&format!("DELETE FROM nodes WHERE {dead}"), [])?;
    release(tx, "nodes", "nid", &t.nodes, w)
}

/// Takes the scope off the listed records that other scopes also assert: when it created
/// the record, the next scope on the list takes its place; otherwise it leaves the list.
fn release(
    tx: &Connection,
    table: &str,
    key: &str,
    list: &str,
    w: &WriteScope,
) -> Result<(), Fail> {
    tx.execute(
        &format!(
            "UPDATE {table} SET scope = json_extract(also_scopes, '$[0]'), \
             also_scopes = CASE WHEN json_array_length(also_scopes) > 1 \
             THEN json_remove(also_scopes, '$[0]') END \
             WHERE {key} IN (SELECT id FROM {list}) AND also_scopes IS NOT NULL AND scope = ?1"
        ),
        [&w.scope],
    )?;
    tx.execute(
        &format!(
            "UPDATE {table} SET also_scopes = (SELECT CASE WHEN count(*) > 0 \
             THEN json_group_array(value) END FROM json_each({table}.also_scopes) \
             WHERE value <> ?1) \
             WHERE {key} IN (SELECT id FROM {list}) AND also_scopes IS NOT NULL AND scope <> ?1"
        ),
        [&w.scope],
    )?;
    Ok(())
}

/// Adds the (name, count) rows of `sql` to the deleted counts.
fn count_into(
    tx: &Connection,
    sql: &str,
    into: &mut BTreeMap<String, Changes>,
) -> Result<(), Fail> {
    let mut st = tx.prepare(sql)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (name, n) = row?;
        into.entry(name).or_default().deleted += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite virtual-machine steps one cleanup of a small scope takes in a store
    /// that also holds `others` nodes and edges of another scope.
    fn steps_of_small_cleanup(others: usize) -> u64 {
        let mut db = crate::layout::in_memory();
        for (scope, n) in [("big", others), ("small", 10)] {
            for i in 0..n {
                db.execute(
                    "INSERT INTO nodes (label, id, firstseen, lastupdated, seen, source, scope) \
                     VALUES ('DemoUser', ?1, 1, 1, 1, 'demo', ?2)",
                    params![format!("{scope}-{i}"), scope],
                )
                .unwrap();
                let nid = db.last_insert_rowid();
                if i > 0 {
                    db.execute(
                        "INSERT INTO edges (type, src, dst, firstseen, lastupdated, seen, source, scope) \
                         VALUES ('KNOWS', ?1, ?2, 1, 1, 1, 'demo', ?3)",
                        params![nid, nid - 1, scope],
                    )
                    .unwrap();
                }
            }
        }
        let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = steps.clone();
        // Called every 100 virtual-machine instructions.
        db.progress_handler(
            100,
            Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
        let w = WriteScope {
            plugin: "demo".into(),
            scope: "small".into(),
            update_tag: 2,
        };
        let counts = run(&db, 1, &w, &[]).unwrap();
        assert_eq!(counts.nodes["DemoUser"].deleted, 10, "{counts:?}");
        steps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A cleanup with nothing stale (a first sync, a resync that wrote every record
    /// again) deletes nothing and costs next to nothing: no temporary tables.
    #[test]
    fn nothing_stale_is_found_at_once() {
        let db = crate::layout::in_memory();
        for i in 0..50 {
            db.execute(
                "INSERT INTO nodes (label, id, firstseen, lastupdated, seen, source, scope) \
                 VALUES ('DemoUser', ?1, 2, 2, 2, 'demo', 'small')",
                params![format!("u{i}")],
            )
            .unwrap();
        }
        let w = WriteScope {
            plugin: "demo".into(),
            scope: "small".into(),
            update_tag: 2,
        };
        assert!(!anything_stale(&db, &w).unwrap());
        let counts = run(&db, 1, &w, &[]).unwrap();
        assert!(
            counts.nodes.is_empty() && counts.edges.is_empty(),
            "{counts:?}"
        );
        let kept: i64 = db
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 50);
        // One record the run did not write again is stale, and is found.
        db.execute("UPDATE nodes SET seen = 1 WHERE id = 'u7'", [])
            .unwrap();
        assert!(anything_stale(&db, &w).unwrap());
        let counts = run(&db, 2, &w, &[]).unwrap();
        assert_eq!(counts.nodes["DemoUser"].deleted, 1, "{counts:?}");
        // A record shared with another scope, no longer asserted by this one, too.
        db.execute(
            "UPDATE nodes SET seen = 1, scope = 'other', also_scopes = '[\"small\"]' \
             WHERE id = 'u8'",
            [],
        )
        .unwrap();
        assert!(anything_stale(&db, &w).unwrap());
    }

    /// A cleanup's work follows the size of its own scope, not the store's: 200
    /// connections into one store must not each walk every other connection's records.
    #[test]
    fn cleanup_of_a_scope_does_not_walk_other_scopes() {
        let small_store = steps_of_small_cleanup(100);
        let large_store = steps_of_small_cleanup(20_000);
        assert!(
            large_store < small_store * 2,
            "a cleanup of 10 nodes took {large_store} hundred steps beside 20,000 other \
             nodes, against {small_store} beside 100: it walks records outside its scope"
        );
    }
}
