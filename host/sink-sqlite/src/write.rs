//! Writing records: property indexes a plugin's schema asks for, the labels a plugin
//! owns, node and edge upserts (as batches come, or replayed from a run's stage), update
//! tags, and the created/updated counts of a run.

use std::time::{SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use infragraph_core::{ChangeCounts, EdgeBatch, Manifest, NodeBatch, WriteScope};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{
    CachedStatement, Connection, ErrorCode, OptionalExtension, TransactionBehavior, params,
};

use crate::encode::PropsWriter;
use crate::error::{Error, ErrorKind, Fail};
use crate::layout::property_index;
use crate::resolve::{NewNodes, Resolver, RunNodes, Written};
use crate::stage::Shape;
use crate::writer::Writer;

/// Whether the scope writing asserts the record already: created in it, or asserted by
/// it since.
macro_rules! asserted {
    ($t:literal) => {
        concat!(
            $t,
            ".scope = excluded.scope OR EXISTS (SELECT 1 FROM json_each(",
            $t,
            ".also_scopes) WHERE value = excluded.scope)"
        )
    };
}

/// What every upsert does on conflict, besides merging properties: the record is seen
/// by this run; `lastupdated` moves to this run when the record changed (another digest)
/// or this scope newly asserts it, and never goes back (a run that took its tag earlier
/// may write later); another scope of the owning plugin that asserts the record joins
/// `also_scopes`; and the `WHERE` refuses the write of a record another plugin owns (the
/// statement then changes nothing, which the caller checks). `source` and `scope` are set
/// once, when the record is created. Every `SET` expression reads the row as it was.
macro_rules! on_conflict {
    ($t:literal) => {
        concat!(
            "seen = max(",
            $t,
            ".seen, excluded.seen), digest = excluded.digest, \
             lastupdated = CASE WHEN ",
            $t,
            ".digest IS excluded.digest AND (",
            asserted!($t),
            ") THEN ",
            $t,
            ".lastupdated ELSE max(",
            $t,
            ".lastupdated, excluded.lastupdated) END, \
             also_scopes = CASE WHEN ",
            asserted!($t),
            " THEN ",
            $t,
            ".also_scopes \
             ELSE json_insert(coalesce(",
            $t,
            ".also_scopes, '[]'), '$[#]', excluded.scope) END \
             WHERE ",
            $t,
            ".source = excluded.source"
        )
    };
}

/// Node upsert for rows without nulls: the inserted map is also the patch.
/// `json_patch` is RFC 7396 merge-patch, i.e. Cypher's `SET n += $props`.
const UPSERT_NODE: &str = concat!(
    "INSERT INTO nodes \
    (label, id, extra_labels, props, firstseen, lastupdated, seen, source, scope, digest) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6, ?7, ?9) \
    ON CONFLICT (label, id) DO UPDATE SET extra_labels = excluded.extra_labels, \
    props = json_patch(nodes.props, excluded.props), ",
    on_conflict!("nodes")
);

/// Node upsert for rows with nulls: a new node gets the map without them (?4), an existing
/// one is patched with them (?8), which removes those properties.
const UPSERT_NODE_NULLS: &str = concat!(
    "INSERT INTO nodes \
    (label, id, extra_labels, props, firstseen, lastupdated, seen, source, scope, digest) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6, ?7, ?9) \
    ON CONFLICT (label, id) DO UPDATE SET extra_labels = excluded.extra_labels, \
    props = json_patch(nodes.props, ?8), ",
    on_conflict!("nodes")
);

const UPSERT_EDGE: &str = concat!(
    "INSERT INTO edges \
    (type, src, dst, props, firstseen, lastupdated, seen, source, scope, digest) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6, ?7, ?9) \
    ON CONFLICT (src, type, dst) DO UPDATE SET \
    props = json_patch(edges.props, excluded.props), ",
    on_conflict!("edges")
);

const UPSERT_EDGE_NULLS: &str = concat!(
    "INSERT INTO edges \
    (type, src, dst, props, firstseen, lastupdated, seen, source, scope, digest) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6, ?7, ?9) \
    ON CONFLICT (src, type, dst) DO UPDATE SET \
    props = json_patch(edges.props, ?8), ",
    on_conflict!("edges")
);

/// The refusal of a write to a record another plugin owns. The transaction it ends is
/// rolled back, so nothing of the batch is applied.
fn not_owner(what: String, owner: Option<String>, plugin: &str) -> Fail {
    let owner = owner.unwrap_or_else(|| "another plugin".into());
    Fail::Done(Error::new(
        ErrorKind::NotOwner,
        format!(
            "{what} belongs to plugin {owner:?}; plugin {plugin:?} may not write it \
             (nothing of this batch was written)"
        ),
    ))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The shared reading connection, locked only for the reads that need it: never held
/// while waiting for the write lock, since the run that holds that lock may need to read
/// (its state, an index check) before it can let go.
pub(crate) type Reader<'a> = dyn Fn() -> MutexGuard<'a, Connection> + 'a;

/// Creates the property indexes `manifest`'s schema asks for.
pub(crate) fn prepare(
    writer: &Writer,
    reader: &Reader<'_>,
    manifest: &Manifest,
) -> Result<(), Fail> {
    claim_labels(writer, reader, manifest)?;
    let mut wanted = Vec::new();
    for kind in &manifest.schema.nodes {
        for p in kind.properties.iter().filter(|p| p.indexed) {
            wanted.push((kind.label.clone(), p.name.clone()));
        }
    }
    ensure_indexes(writer, reader, &wanted)
}

/// Registers the primary labels of `manifest` as its plugin's, or refuses the plugin when
/// another plugin registered one of them first: its nodes would be the other plugin's.
/// Extra labels (`UserAccount`) are shared vocabulary and not registered.
fn claim_labels(writer: &Writer, reader: &Reader<'_>, manifest: &Manifest) -> Result<(), Fail> {
    // Read first: once a plugin's labels are its own, preparing writes nothing, and so
    // does not wait for a run that holds the write lock.
    let mut all_ours = true;
    {
        let reader = reader();
        let mut owner = reader.prepare_cached("SELECT plugin FROM labels WHERE label = ?1")?;
        for kind in &manifest.schema.nodes {
            let by: Option<String> = owner.query_row([&kind.label], |r| r.get(0)).optional()?;
            all_ours &= by.as_deref() == Some(manifest.name.as_str());
        }
    }
    if all_ours {
        return Ok(());
    }
    let mut conn = writer.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut claim =
            tx.prepare_cached("INSERT OR IGNORE INTO labels (label, plugin) VALUES (?1, ?2)")?;
        let mut owner = tx.prepare_cached("SELECT plugin FROM labels WHERE label = ?1")?;
        for kind in &manifest.schema.nodes {
            claim.execute(params![kind.label, manifest.name])?;
            let by: String = owner.query_row([&kind.label], |r| r.get(0))?;
            if by != manifest.name {
                return Err(Fail::Done(Error::new(
                    ErrorKind::NotOwner,
                    format!(
                        "plugin {:?} declares label {} as its own, but it belongs to plugin \
                         {by:?} in this store; a plugin may link to another plugin's nodes \
                         or share an extra label, not declare its primary label \
                         (rename the label in the plugin, or use another store)",
                        manifest.name, kind.label
                    ),
                )));
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Creates the property indexes not yet known to exist, in one transaction.
pub(crate) fn ensure_indexes(
    writer: &Writer,
    reader: &Reader<'_>,
    wanted: &[(String, String)],
) -> Result<(), Fail> {
    let mut missing = writer.unindexed(wanted);
    if missing.is_empty() {
        return Ok(());
    }
    // Those another process created already need no write (nor wait for the lock).
    let mut there = Vec::new();
    {
        let reader = reader();
        let mut exists = reader
            .prepare_cached("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1")?;
        missing.retain(|(label, prop)| {
            let found = exists
                .query_row([format!("nodes_{label}_{prop}")], |_| Ok(()))
                .optional()
                .ok()
                .flatten()
                .is_some();
            if found {
                there.push((label.clone(), prop.clone()));
            }
            !found
        });
    }
    writer.indexed(there);
    if missing.is_empty() {
        return Ok(());
    }
    let mut conn = writer.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    create_indexes(&tx, &missing)?;
    tx.commit()?;
    drop(conn);
    writer.indexed(missing);
    Ok(())
}

/// Creates the property indexes `wanted`, where missing, in the caller's transaction.
pub(crate) fn create_indexes(conn: &Connection, wanted: &[(String, String)]) -> Result<(), Fail> {
    for (label, prop) in wanted {
        let Some(sql) = property_index(label, prop) else {
            return Err(Fail::Done(Error::new(
                ErrorKind::Invalid,
                format!("cannot index property {prop:?} of label {label:?}: not identifiers"),
            )));
        };
        conn.execute(&sql, [])?;
    }
    Ok(())
}

/// The property indexes an edge batch needs to find its ends: matching an end by a
/// property other than `id` without one would scan every node of the label for every row.
pub(crate) fn edge_indexes(batch: &EdgeBatch) -> Vec<(String, String)> {
    let mut wanted = Vec::new();
    for (label, key) in [
        (&batch.from_label, &batch.from_key),
        (&batch.to_label, &batch.to_key),
    ] {
        if key != "id" {
            wanted.push((label.clone(), key.clone()));
        }
    }
    wanted
}

/// The two forms of one upsert (rows without nulls, rows with them) prepared on one
/// connection, with the run's bookkeeping bound once: SQLite keeps bindings across
/// executions, so each row binds only what is its own.
struct Upsert<'c> {
    conn: &'c Connection,
    plugin: &'c str,
    clean: CachedStatement<'c>,
    nulls: CachedStatement<'c>,
}

impl<'c> Upsert<'c> {
    fn new(
        conn: &'c Connection,
        w: &'c WriteScope,
        (clean_sql, nulls_sql): (&str, &str),
    ) -> Result<Self, Fail> {
        let mut clean = conn.prepare_cached(clean_sql)?;
        let mut nulls = conn.prepare_cached(nulls_sql)?;
        for st in [&mut clean, &mut nulls] {
            st.raw_bind_parameter(5, w.update_tag)?;
            st.raw_bind_parameter(6, &w.plugin)?;
            st.raw_bind_parameter(7, &w.scope)?;
        }
        Ok(Upsert {
            conn,
            plugin: &w.plugin,
            clean,
            nulls,
        })
    }

    /// The statement for a row: with `patch` (the map with the nulls that remove
    /// properties) bound when the row has one.
    fn for_row(&mut self, patch: Option<&str>) -> Result<&mut CachedStatement<'c>, Fail> {
        Ok(match patch {
            None => &mut self.clean,
            Some(patch) => {
                self.nulls.raw_bind_parameter(8, patch)?;
                &mut self.nulls
            }
        })
    }
}

/// Node upserts of one run on one connection, one call per row.
pub(crate) struct NodeUpsert<'c>(Upsert<'c>);

impl<'c> NodeUpsert<'c> {
    pub(crate) fn new(conn: &'c Connection, w: &'c WriteScope) -> Result<Self, Fail> {
        Upsert::new(conn, w, (UPSERT_NODE, UPSERT_NODE_NULLS)).map(NodeUpsert)
    }

    /// Upserts one node; `patch` is the map with the nulls that remove properties, when
    /// the row has any. Returns the node's `nid` when the row was new (an update leaves
    /// SQLite's last inserted row as it was, so it does not tell). A node another plugin
    /// owns fails with an error naming it.
    pub(crate) fn put(
        &mut self,
        label: &str,
        id: &str,
        extra: &str,
        (clean, patch): (&str, Option<&str>),
        digest: &[u8],
    ) -> Result<Option<i64>, Fail> {
        let before = self.0.conn.last_insert_rowid();
        let st = self.0.for_row(patch)?;
        st.raw_bind_parameter(9, digest)?;
        st.raw_bind_parameter(1, label)?;
        st.raw_bind_parameter(2, id)?;
        st.raw_bind_parameter(3, extra)?;
        st.raw_bind_parameter(4, clean)?;
        if st.raw_execute()? == 1 {
            // The table has no triggers: a new last row is this node's.
            let after = self.0.conn.last_insert_rowid();
            return Ok((after != before).then_some(after));
        }
        let owner = self
            .0
            .conn
            .query_row(
                "SELECT source FROM nodes WHERE label = ?1 AND id = ?2",
                params![label, id],
                |r| r.get(0),
            )
            .optional()?;
        let what = format!("node {label} {id:?}");
        Err(not_owner(what, owner, self.0.plugin))
    }
}

/// Edge upserts of one run on one connection, one relationship type at a time.
pub(crate) struct EdgeUpsert<'c>(Upsert<'c>);

impl<'c> EdgeUpsert<'c> {
    pub(crate) fn new(conn: &'c Connection, w: &'c WriteScope) -> Result<Self, Fail> {
        Upsert::new(conn, w, (UPSERT_EDGE, UPSERT_EDGE_NULLS)).map(EdgeUpsert)
    }

    /// The relationship type of the rows that follow.
    pub(crate) fn of_type(&mut self, rel_type: &str) -> Result<(), Fail> {
        for st in [&mut self.0.clean, &mut self.0.nulls] {
            st.raw_bind_parameter(1, rel_type)?;
        }
        Ok(())
    }

    /// Merges the edge of one row from each of `srcs` to each of `dsts` (a key other than
    /// `id` may match several nodes) and returns how many of them were new. An edge
    /// another plugin owns fails with an error naming it, the row's ends as written by
    /// the plugin (`ends`) and its shape.
    pub(crate) fn put(
        &mut self,
        shape: &Shape,
        ends: (&str, &str),
        (srcs, dsts): (&[i64], &[i64]),
        (clean, patch): (&str, Option<&str>),
        digest: &[u8],
    ) -> Result<u64, Fail> {
        let conn = self.0.conn;
        let st = self.0.for_row(patch)?;
        st.raw_bind_parameter(4, clean)?;
        st.raw_bind_parameter(9, digest)?;
        let mut new = 0;
        for &s in srcs {
            for &d in dsts {
                st.raw_bind_parameter(2, s)?;
                st.raw_bind_parameter(3, d)?;
                let before = conn.last_insert_rowid();
                let changed = st.raw_execute()?;
                // As for nodes: an update leaves the last inserted row as it was.
                new += u64::from(conn.last_insert_rowid() != before);
                if changed == 0 {
                    let owner = self
                        .0
                        .conn
                        .query_row(
                            "SELECT source FROM edges WHERE src = ?1 AND type = ?2 AND dst = ?3",
                            params![s, shape.rel_type, d],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let what = format!(
                        "relationship ({} {:?})-[:{}]->({} {:?})",
                        shape.from_label, ends.0, shape.rel_type, shape.to_label, ends.1
                    );
                    return Err(not_owner(what, owner, self.0.plugin));
                }
            }
        }
        Ok(new)
    }
}

/// Upserts a batch of nodes as it comes, on a connection holding the run's transaction.
/// Notes in `written` where the new ones landed.
pub(crate) fn nodes_now(
    conn: &Connection,
    w: &WriteScope,
    extra_labels: &[String],
    batch: &NodeBatch,
    written: &mut NewNodes,
) -> Result<(), Fail> {
    let extra = serde_json::to_string(extra_labels)?;
    let mut props = PropsWriter::new(&batch.columns);
    let mut put = NodeUpsert::new(conn, w)?;
    for row in &batch.rows {
        let (digest, maps) = props.encode_digest(extra_labels, &batch.columns, &row.values);
        if let Some(nid) = put.put(&batch.label, &row.id, &extra, maps, &digest)? {
            written.note(&batch.label, &row.id, nid);
        }
    }
    Ok(())
}

/// Merges a batch of edges as it comes, on a connection holding the run's transaction;
/// returns how many rows had an end that does not exist. The run's new nodes are found in
/// `written` first.
pub(crate) fn edges_now(
    conn: &Connection,
    w: &WriteScope,
    batch: &EdgeBatch,
    written: &NewNodes,
) -> Result<u64, Fail> {
    let shape = Shape::of(batch);
    let mut props = PropsWriter::new(&batch.columns);
    let (from, to) = Resolver::ends(
        conn,
        (&shape.from_label, &shape.from_key),
        (&shape.to_label, &shape.to_key),
    )?;
    let mut from = from.knowing(Some(RunNodes::Owned(written)), &shape.from_label);
    let mut to = to.knowing(Some(RunNodes::Owned(written)), &shape.to_label);
    let mut put = EdgeUpsert::new(conn, w)?;
    put.of_type(&shape.rel_type)?;
    let (mut srcs, mut dsts) = (Vec::new(), Vec::new());
    let mut unresolved = 0;
    for row in &batch.rows {
        from.find(&row.from, &mut srcs)?;
        to.find(&row.to, &mut dsts)?;
        if srcs.is_empty() || dsts.is_empty() {
            unresolved += 1;
            continue;
        }
        let (digest, maps) = props.encode_digest(&[], &batch.columns, &row.values);
        put.put(&shape, (&row.from, &row.to), (&srcs, &dsts), maps, &digest)?;
    }
    Ok(unresolved)
}

/// What [`replay_nodes`] learnt of a spilled run's nodes: where the new ones landed, for
/// its edges, and how many of each label were written and created, for its counts.
#[derive(Default)]
pub(crate) struct SpilledNodes {
    new: NewNodes,
    /// Per label, the nodes written and created.
    counts: Vec<(String, u64, u64)>,
}

impl SpilledNodes {
    fn note(&mut self, label: &str, id: &str, nid: Option<i64>) {
        let at = match self.counts.iter().position(|(l, _, _)| l == label) {
            Some(at) => at,
            None => {
                self.counts.push((label.to_owned(), 0, 0));
                self.counts.len() - 1
            }
        };
        self.counts[at].1 += 1;
        if let Some(nid) = nid {
            self.counts[at].2 += 1;
            self.new.note(label, id, nid);
        }
    }

    /// The new nodes, for [`EdgeReplay`].
    pub(crate) fn nodes(&self) -> RunNodes<'_> {
        RunNodes::Owned(&self.new)
    }

    /// The nodes' part of the counts.
    pub(crate) fn created(&self) -> Created<'_> {
        let mut created = Created::new();
        for (label, n, new) in &self.counts {
            created.note(label, *n, *new);
        }
        created
    }
}

/// Upserts through `conn` a run's nodes staged in the temporary table of `stage` (its own
/// connection), in the order they came; returns what its edges and counts need of them.
/// A node another plugin owns ends the transaction, and so the whole run, with an error
/// naming it.
pub(crate) fn replay_nodes(
    stage: &Connection,
    conn: &Connection,
    w: &WriteScope,
) -> Result<SpilledNodes, Fail> {
    let mut read = stage.prepare(
        "SELECT label, id, extra, clean, patch, digest FROM temp.stage_nodes ORDER BY seq",
    )?;
    let mut put = NodeUpsert::new(conn, w)?;
    let mut rows = read.query([])?;
    let mut nodes = SpilledNodes::default();
    while let Some(r) = rows.next()? {
        let (label, id) = (r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?);
        let nid = put.put(
            label,
            id,
            r.get_ref(2)?.as_str()?,
            (r.get_ref(3)?.as_str()?, r.get_ref(4)?.as_str_or_null()?),
            r.get_ref(5)?.as_blob()?,
        )?;
        nodes.note(label, id, nid);
    }
    Ok(nodes)
}

/// A staged node as its replay takes it: label, id, extra labels as JSON, props (clean,
/// and the patch when the row has nulls), digest.
pub(crate) type StagedNode<'a> = (
    &'a str,
    &'a str,
    &'a str,
    (&'a str, Option<&'a str>),
    &'a [u8],
);

/// [`replay_nodes`] for nodes held in memory, in the order they came; returns where the
/// new ones landed, for [`EdgeReplay`] to find the run's own nodes without a look-up.
pub(crate) fn replay_held_nodes<'a>(
    conn: &Connection,
    w: &WriteScope,
    rows: impl Iterator<Item = StagedNode<'a>>,
) -> Result<(Written<'a>, Created<'a>), Fail> {
    let mut put = NodeUpsert::new(conn, w)?;
    let mut written = Written::default();
    let mut created = Created::new();
    for (label, id, extra, props, digest) in rows {
        let nid = put.put(label, id, extra, props, digest)?;
        created.note(label, 1, u64::from(nid.is_some()));
        if let Some(nid) = nid {
            written.entry(label).or_default().insert(id, nid);
        }
    }
    Ok((written, created))
}

/// How many records of each label or type a run created, while every write of it
/// created one: then these are its change counts, and [`changes`] need not count them
/// again from the tables (a first sync). Unknown once a write updated a record.
pub(crate) struct Created<'a>(Option<BTreeMap<&'a str, u64>>);

impl<'a> Created<'a> {
    pub(crate) fn new() -> Self {
        Created(Some(BTreeMap::new()))
    }

    /// `written` records of `key` were written, `new` of them created.
    pub(crate) fn note(&mut self, key: &'a str, written: u64, new: u64) {
        if new != written {
            self.0 = None;
        } else if let Some(by) = &mut self.0 {
            *by.entry(key).or_default() += new;
        }
    }

    /// The run's change counts, when these nodes and edges are all it wrote and every
    /// write created its record.
    pub(crate) fn counts(nodes: Created<'_>, edges: Created<'_>) -> Option<ChangeCounts> {
        let created = |by: BTreeMap<&str, u64>| {
            by.into_iter()
                .map(|(k, created)| {
                    let c = infragraph_core::Changes {
                        created,
                        ..Default::default()
                    };
                    (k.to_owned(), c)
                })
                .collect()
        };
        Some(ChangeCounts {
            nodes: created(nodes.0?),
            edges: created(edges.0?),
        })
    }
}

/// Merges a run's staged edges, one row at a time grouped by shape, each end found among
/// the nodes as they are now (this run's included); counts, per type, the rows whose end
/// does not exist.
pub(crate) struct EdgeReplay<'c> {
    conn: &'c Connection,
    shapes: &'c [Shape],
    /// The run's nodes, when their replay said where they landed.
    written: Option<RunNodes<'c>>,
    put: EdgeUpsert<'c>,
    /// The shape of the rows now coming, and the look-ups of its ends.
    ends: Option<(i64, Resolver<'c>, Resolver<'c>)>,
    srcs: Vec<i64>,
    dsts: Vec<i64>,
    unresolved: BTreeMap<String, u64>,
    created: Created<'c>,
}

impl<'c> EdgeReplay<'c> {
    pub(crate) fn new(
        conn: &'c Connection,
        w: &'c WriteScope,
        shapes: &'c [Shape],
        written: Option<RunNodes<'c>>,
    ) -> Result<Self, Fail> {
        Ok(EdgeReplay {
            conn,
            shapes,
            written,
            put: EdgeUpsert::new(conn, w)?,
            ends: None,
            srcs: Vec::new(),
            dsts: Vec::new(),
            unresolved: BTreeMap::new(),
            created: Created::new(),
        })
    }

    /// Merges one row of shape `number` (an index into the run's shapes).
    pub(crate) fn row(
        &mut self,
        number: i64,
        (src, dst): (&str, &str),
        props: (&str, Option<&str>),
        digest: &[u8],
    ) -> Result<(), Fail> {
        let shape = usize::try_from(number)
            .ok()
            .and_then(|n| self.shapes.get(n))
            .expect("staged edges name a staged shape");
        if self.ends.as_ref().is_none_or(|(n, _, _)| *n != number) {
            self.put.of_type(&shape.rel_type)?;
            let (from, to) = Resolver::ends(
                self.conn,
                (&shape.from_label, &shape.from_key),
                (&shape.to_label, &shape.to_key),
            )?;
            self.ends = Some((
                number,
                from.knowing(self.written, &shape.from_label),
                to.knowing(self.written, &shape.to_label),
            ));
        }
        let (_, from, to) = self.ends.as_mut().expect("just set");
        from.find(src, &mut self.srcs)?;
        to.find(dst, &mut self.dsts)?;
        if self.srcs.is_empty() || self.dsts.is_empty() {
            *self.unresolved.entry(shape.rel_type.clone()).or_default() += 1;
            return Ok(());
        }
        let new = self
            .put
            .put(shape, (src, dst), (&self.srcs, &self.dsts), props, digest)?;
        let written = (self.srcs.len() * self.dsts.len()) as u64;
        self.created.note(&shape.rel_type, written, new);
        Ok(())
    }

    /// Per type, the rows whose end did not exist, and the edges created.
    pub(crate) fn finish(self) -> (BTreeMap<String, u64>, Created<'c>) {
        (self.unresolved, self.created)
    }
}

/// Merges through `conn` a run's edges staged in the temporary table of `stage` (see
/// [`EdgeReplay`]), knowing where the run's new nodes landed (`written`); returns, per
/// type, the rows whose end did not exist, and the edges created.
pub(crate) fn replay_edges<'c>(
    stage: &Connection,
    conn: &'c Connection,
    w: &'c WriteScope,
    shapes: &'c [Shape],
    written: RunNodes<'c>,
) -> Result<(BTreeMap<String, u64>, Created<'c>), Fail> {
    let mut read = stage.prepare(
        "SELECT shape, src, dst, clean, patch, digest FROM temp.stage_edges ORDER BY shape, seq",
    )?;
    let mut replay = EdgeReplay::new(conn, w, shapes, Some(written))?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        replay.row(
            r.get(0)?,
            (r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?),
            (r.get_ref(3)?.as_str()?, r.get_ref(4)?.as_str_or_null()?),
            r.get_ref(5)?.as_blob()?,
        )?;
    }
    Ok(replay.finish())
}

/// A new update tag, above every one taken before (also by other processes). `writer`
/// is the store's writing connection when no other run of this process holds it: a tag
/// is then recorded at once. Otherwise (`None`, or another process writing), the tag is
/// above every one this process and the store know of, and its run records it when it
/// publishes (`note_update_tag`): a run starting must not wait for others to publish.
pub(crate) fn next_update_tag(
    writer: Option<&mut Connection>,
    reader: &Connection,
    last_here: &AtomicI64,
) -> rusqlite::Result<i64> {
    let recorded = match writer {
        Some(writer) => record_next_tag(writer, last_here)?,
        None => None,
    };
    let tag = match recorded {
        Some(tag) => tag,
        None => {
            let last: i64 = reader.query_row(
                "SELECT value FROM meta WHERE key = 'last_update_tag'",
                [],
                |r| r.get(0),
            )?;
            now_ms()
                .max(last + 1)
                .max(last_here.load(Ordering::Relaxed) + 1)
        }
    };
    last_here.fetch_max(tag, Ordering::Relaxed);
    Ok(tag)
}

/// Takes and records the next tag through `writer`, or `None` when another process holds
/// the store's write lock.
fn record_next_tag(
    writer: &mut Connection,
    last_here: &AtomicI64,
) -> rusqlite::Result<Option<i64>> {
    // Without waiting for the write lock: a run writing directly holds it for its whole
    // life, and a second run must get as far as its lease to be told so.
    let waits = writer.busy_timeout(std::time::Duration::ZERO);
    let taken = (|| -> rusqlite::Result<i64> {
        // IMMEDIATE: another process taking a tag at the same moment waits, so tags stay
        // strictly increasing across processes too.
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: i64 = tx.query_row(
            "SELECT value FROM meta WHERE key = 'last_update_tag'",
            [],
            |r| r.get(0),
        )?;
        let tag = now_ms()
            .max(last + 1)
            .max(last_here.load(Ordering::Relaxed) + 1);
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'last_update_tag'",
            [tag],
        )?;
        tx.commit()?;
        Ok(tag)
    })();
    waits?;
    writer.busy_timeout(crate::store::BUSY_TIMEOUT)?;
    match taken {
        Ok(tag) => Ok(Some(tag)),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Records `tag` as handed out, in the caller's transaction: a tag taken while another
/// run held the write lock is recorded when its run publishes.
pub(crate) fn note_update_tag(conn: &Connection, tag: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE meta SET value = max(value, ?1) WHERE key = 'last_update_tag'",
        [tag],
    )
    .map(drop)
}

/// The created and updated counts of `w`'s run.
pub(crate) fn changes(conn: &Connection, w: &WriteScope) -> rusqlite::Result<ChangeCounts> {
    let mut out = ChangeCounts::default();
    for (table, col) in [("nodes", "label"), ("edges", "type")] {
        let sql = format!(
            "SELECT {col}, sum(firstseen = ?3), sum(firstseen < ?3), \
                     sum(firstseen < ?3 AND lastupdated < ?3) FROM {table} \
                     WHERE source = ?1 AND scope = ?2 AND seen = ?3 GROUP BY {col}"
        );
        let mut st = conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![w.plugin, w.scope, w.update_tag], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let map = if table == "nodes" {
            &mut out.nodes
        } else {
            &mut out.edges
        };
        for row in rows {
            let (name, created, updated, unchanged) = row?;
            let c = map.entry(name).or_default();
            c.created = created as u64;
            c.updated = updated as u64;
            c.unchanged = unchanged as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spilled run's counts come from its writes while every write created its
    /// record, and from the tables once one did not.
    #[test]
    fn a_spilled_runs_counts_come_from_its_writes_while_all_are_new() {
        let mut nodes = SpilledNodes::default();
        for n in 0..5 {
            nodes.note("DemoA", &format!("a-{n}"), Some(n + 1));
        }
        nodes.note("DemoB", "b-0", Some(9));
        let counts = Created::counts(nodes.created(), Created::new()).expect("all created");
        assert_eq!(counts.nodes["DemoA"].created, 5);
        assert_eq!(counts.nodes["DemoB"].created, 1);
        assert!(matches!(nodes.nodes(), RunNodes::Owned(n) if std::ptr::eq(n, &nodes.new)));
        nodes.note("DemoB", "b-1", None);
        assert!(Created::counts(nodes.created(), Created::new()).is_none());
    }
}
