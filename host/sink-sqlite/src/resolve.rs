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

/// Finds the nodes an edge end names: by the unique (label, id) index, or by another
/// property through its expression index (several nodes may match). Prepared once per
/// batch, with the label bound once.
pub(crate) struct Resolver<'c> {
    st: CachedStatement<'c>,
    value_at: usize,
    /// Nodes of the label known without asking SQLite (matched by `id` only).
    known: Option<&'c HashMap<&'c str, i64>>,
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

    /// Takes the nodes `written` in this transaction as found when the key is `id`: a
    /// node a run created a moment ago is the one the index would return, and a run's
    /// edges mostly join its own nodes, so in a first sync most ends skip a look-up.
    pub(crate) fn knowing(mut self, written: Option<&'c Written<'c>>, label: &str) -> Self {
        if self.value_at == 2 {
            self.known = written.and_then(|w| w.get(label));
        }
        self
    }

    /// Replaces `out` with the nodes whose key is `value`.
    pub(crate) fn find(&mut self, value: &str, out: &mut Vec<i64>) -> Result<(), Fail> {
        out.clear();
        if let Some(&nid) = self.known.and_then(|k| k.get(value)) {
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
