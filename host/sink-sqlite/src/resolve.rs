//! Finding the nodes an edge end names, for writes, imports and cleanup.

use foldhash::HashMap;

use infragraph_core::{is_pascal_case, is_snake_case};
use rusqlite::{CachedStatement, Connection};

use crate::error::{Error, ErrorKind, Fail};
use crate::layout::property_expr;

const NODE_BY_ID: &str = "SELECT nid FROM nodes WHERE label = ?1 AND id = ?2";

/// Nodes a run has just created, by label and id, where their inserts put them. Looked
/// up once per edge end and filled once per node: foldhash, seeded per process, where
/// SipHash cost more than the look-ups themselves (issue 18).
pub(crate) type Written<'a> = HashMap<&'a str, HashMap<&'a str, i64>>;

/// The nodes a run has created, owned where [`Written`] borrows: those of a run writing
/// directly, whose batches come and go before its edges come, and those a spilled run's
/// publish read back from its table. At most [`NewNodes::MAX`] (about 80 bytes each, 16
/// MB at most; one direct run and one publish at a time); the edges of the others find
/// their ends through the index. A single Azure tenant of `bench_azure` (161,000 nodes,
/// 521,000 relationships) wrote its relationships in 2.0-2.4 s instead of 3.4-5.1 s
/// (three runs each, 2026-12-08), and the spilled runs of the 20 tenants of
/// `bench_connections connections-azure` published theirs in half the time (issue 18).
#[derive(Default)]
pub(crate) struct NewNodes {
    by_label: HashMap<String, HashMap<Box<str>, i64>>,
    len: usize,
}

/// The nodes a run created, as its edges' ends look for them first.
#[derive(Clone, Copy)]
pub(crate) enum RunNodes<'c> {
    /// Borrowed from the rows a held run kept in memory.
    Held(&'c Written<'c>),
    Owned(&'c NewNodes),
}

impl NewNodes {
    pub(crate) const MAX: usize = 200_000;

    /// Notes a node just created at `nid`.
    pub(crate) fn note(&mut self, label: &str, id: &str, nid: i64) {
        if self.len >= Self::MAX {
            return;
        }
        let ids = match self.by_label.get_mut(label) {
            Some(ids) => ids,
            None => self.by_label.entry(label.to_owned()).or_default(),
        };
        if ids.insert(id.into(), nid).is_none() {
            self.len += 1;
        }
    }
}

/// Nodes known without asking SQLite, of one label.
#[derive(Clone, Copy)]
enum Known<'c> {
    Held(&'c HashMap<&'c str, i64>),
    Owned(&'c HashMap<Box<str>, i64>),
}

impl Known<'_> {
    fn get(&self, id: &str) -> Option<i64> {
        match self {
            Known::Held(m) => m.get(id).copied(),
            Known::Owned(m) => m.get(id).copied(),
        }
    }
}

/// Finds the nodes an edge end names: by the unique (label, id) index, or by another
/// property through its expression index (several nodes may match). Prepared once per
/// batch, with the label bound once.
pub(crate) struct Resolver<'c> {
    st: CachedStatement<'c>,
    value_at: usize,
    /// Nodes of the label known without asking SQLite (matched by `id` only).
    known: Option<Known<'c>>,
}

impl<'c> Resolver<'c> {
    pub(crate) fn new(conn: &'c Connection, label: &str, key: &str) -> Result<Self, Fail> {
        Resolver::at(conn, label, key, "")
    }

    /// The resolvers of both ends of edges, each end a (label, key). Their statements differ in a
    /// comment: the statement cache holds one statement per text, and two resolvers in
    /// use at once with the same text made it prepare one afresh for every shape of every
    /// run (1% of the CPU of 200 runs side by side).
    pub(crate) fn ends(
        conn: &'c Connection,
        (from_label, from_key): (&str, &str),
        (to_label, to_key): (&str, &str),
    ) -> Result<(Self, Self), Fail> {
        Ok((
            Resolver::at(conn, from_label, from_key, " /* from */")?,
            Resolver::at(conn, to_label, to_key, " /* to */")?,
        ))
    }

    fn at(conn: &'c Connection, label: &str, key: &str, end: &str) -> Result<Self, Fail> {
        if key == "id" {
            let mut st = conn.prepare_cached(&format!("{NODE_BY_ID}{end}"))?;
            st.raw_bind_parameter(1, label)?;
            return Ok(Resolver {
                st,
                value_at: 2,
                known: None,
            });
        }
        // Inlined, not bound: the partial index only serves queries naming the same label
        // constant. Both names are checked so no data ever becomes SQL.
        if !is_pascal_case(label) || !is_snake_case(key) {
            return Err(Fail::Done(Error::new(
                ErrorKind::Invalid,
                format!(
                    "cannot match nodes by label {label:?} and property {key:?}: not identifiers"
                ),
            )));
        }
        let sql = format!(
            "SELECT nid FROM nodes WHERE label = '{label}' AND {} = ?1{end}",
            property_expr(key)
        );
        Ok(Resolver {
            st: conn.prepare_cached(&sql)?,
            value_at: 1,
            known: None,
        })
    }

    /// Takes the nodes the run created in this transaction as found when the key is `id`:
    /// a node a run created a moment ago is the one the index would return, and a run's
    /// edges mostly join its own nodes, so in a first sync most ends skip a look-up.
    pub(crate) fn knowing(mut self, nodes: Option<RunNodes<'c>>, label: &str) -> Self {
        if self.value_at == 2 {
            self.known = match nodes {
                Some(RunNodes::Held(w)) => w.get(label).map(Known::Held),
                Some(RunNodes::Owned(n)) => n.by_label.get(label).map(Known::Owned),
                None => None,
            };
        }
        self
    }

    /// Replaces `out` with the nodes whose key is `value`.
    pub(crate) fn find(&mut self, value: &str, out: &mut Vec<i64>) -> Result<(), Fail> {
        out.clear();
        if let Some(nid) = self.known.and_then(|k| k.get(value)) {
            out.push(nid);
            return Ok(());
        }
        self.st.raw_bind_parameter(self.value_at, value)?;
        let mut rows = self.st.raw_query();
        while let Some(r) = rows.next()? {
            out.push(r.get(0)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's new nodes are found without SQLite, up to the bound; any other node
    /// (an earlier run's, or one past the bound) through the index.
    #[test]
    fn a_runs_new_nodes_are_known_and_the_rest_looked_up() {
        let conn = crate::layout::in_memory();
        conn.execute(
            "INSERT INTO nodes (nid, label, id, firstseen, lastupdated, seen, source, scope) \
             VALUES (5, 'DemoA', 'earlier', 1, 1, 1, 'demo', 's')",
            [],
        )
        .unwrap();
        let mut written = NewNodes::default();
        // Not in the table: found only if taken from the map.
        written.note("DemoA", "new", 9);
        let mut found = Vec::new();
        let mut r = Resolver::new(&conn, "DemoA", "id")
            .unwrap()
            .knowing(Some(RunNodes::Owned(&written)), "DemoA");
        r.find("new", &mut found).unwrap();
        assert_eq!(found, [9]);
        r.find("earlier", &mut found).unwrap();
        assert_eq!(found, [5]);
        r.find("missing", &mut found).unwrap();
        assert!(found.is_empty());
        drop(r);
        for n in 0..NewNodes::MAX {
            written.note("DemoB", &n.to_string(), n as i64);
        }
        assert_eq!(written.len, NewNodes::MAX, "bounded");
        assert!(!written.by_label["DemoB"].contains_key(&*(NewNodes::MAX - 1).to_string()));
    }
}
