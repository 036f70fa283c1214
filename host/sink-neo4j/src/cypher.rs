//! The Cypher this sink runs, built from validated names. Labels, relationship types and
//! property names cannot be query parameters, so every one that ends up in a statement
//! passes [`label`], [`rel_type`] or [`key`]: it must have the identifier shape
//! `infragraph-core` requires of a schema, and is backquoted besides. Values are always
//! parameters.
//!
//! Everything here is Cypher that Neo4j 5 documents: `CREATE CONSTRAINT/INDEX ... IF NOT
//! EXISTS`, `UNWIND`, `MERGE ... ON CREATE SET`, `SET n += map`, `WITH ... LIMIT`,
//! `DETACH DELETE`. Nothing is APOC, nothing is server-specific.

use infragraph_core::{is_pascal_case, is_screaming_snake_case, is_snake_case};

use crate::error::{Error, ErrorKind};

/// The bookkeeping properties every node and relationship gets (`RESERVED_PROPERTIES`),
/// backquoted: a leading underscore is legal in Cypher, but quoting costs nothing.
pub(crate) const SOURCE: &str = "`_source`";
pub(crate) const SCOPE: &str = "`_scope`";
/// The other scopes of the owning plugin that assert a record, a list; absent while only
/// `_scope` does (shared kinds such as Azure regions). Cleanup of one scope takes it off.
pub(crate) const ALSO: &str = "`_also_scopes`";

/// The last run that emitted a record (cleanup deletes what a run did not emit), while
/// `lastupdated` is the last run that changed it (see `GraphSink`). Records written
/// before `_seen` existed were seen when last updated.
pub(crate) const SEEN: &str = "`_seen`";

/// What every write of a record `v` does besides merging properties: `SET` items to
/// follow `v += row.props` in the same clause (ArcadeDB saves a record once per clause),
/// each reading the record as it was before (`_digest` and `_also_scopes` are set last).
/// `lastupdated` moves to this run when the row's digest (`row.d`) differs from the
/// stored one or this scope newly asserts the record, and never goes back (a run that
/// took its tag earlier may write later); the record is seen by this run, kept in `_seen`
/// only when that is later than `lastupdated` (a record written as it was), so a new or
/// changed record carries no `_seen`; another scope of the owner that asserts the record
/// joins `_also_scopes`. `_source` and `_scope` are set on creation only; a record of
/// another plugin is refused (see [`FOREIGN`]).
fn merge_bookkeeping(v: &str) -> String {
    let same = format!("({v}.{DIGEST} = row.d AND {})", asserted(v));
    let seen = last_seen(v);
    let updated = later(&format!("{v}.`lastupdated`"));
    format!(
        "{v}.`lastupdated` = CASE WHEN {same} THEN {v}.`lastupdated` ELSE {updated} END, \
         {v}.{SEEN} = CASE WHEN {same} THEN {} WHEN {seen} > {updated} THEN {seen} ELSE null END, \
         {v}.{ALSO} = CASE WHEN {} THEN {v}.{ALSO} ELSE coalesce({v}.{ALSO}, []) + $scope END, \
         {v}.{DIGEST} = row.d",
        later(&seen),
        asserted(v),
    )
}

/// `$tag`, or `e` when it is later.
fn later(e: &str) -> String {
    format!("CASE WHEN {e} > $tag THEN {e} ELSE $tag END")
}

/// The last run that saw `v`: its `_seen` when it has one, else `lastupdated` (the run
/// that wrote it new or changed, or one from before `_seen` existed).
fn last_seen(v: &str) -> String {
    format!("coalesce({v}.{SEEN}, {v}.`lastupdated`)")
}

/// Whether `v` was not seen by this run (cleanup's test).
fn unseen(v: &str) -> String {
    format!("{} < $tag", last_seen(v))
}

/// `true` when `v` is asserted by `$scope`: created in it, or asserted by it since.
fn asserted(v: &str) -> String {
    format!("({v}.{SCOPE} = $scope OR $scope IN coalesce({v}.{ALSO}, []))")
}

/// `` `Label` ``, or an error when `s` is not a PascalCase label.
pub(crate) fn label(s: &str) -> Result<String, Error> {
    checked(s, is_pascal_case(s), "label")
}

/// `` `TYPE` ``, or an error when `s` is not a SCREAMING_SNAKE_CASE type.
pub(crate) fn rel_type(s: &str) -> Result<String, Error> {
    checked(s, is_screaming_snake_case(s), "relationship type")
}

/// `` `name` ``, or an error when `s` is not a snake_case property name.
pub(crate) fn key(s: &str) -> Result<String, Error> {
    checked(s, is_snake_case(s), "property name")
}

fn checked(s: &str, ok: bool, what: &str) -> Result<String, Error> {
    if ok {
        // Shapes exclude the backquote; doubling it anyway keeps quoting sound on its own.
        Ok(format!("`{}`", s.replace('`', "``")))
    } else {
        Err(Error::new(
            ErrorKind::Invalid,
            format!("{what} {s:?} cannot be written to the graph server: not an identifier"),
        ))
    }
}

/// `:`A`:`B``: the primary label then the extra ones.
pub(crate) fn labels(primary: &str, extra: &[String]) -> Result<String, Error> {
    let mut out = format!(":{}", label(primary)?);
    for e in extra {
        out.push(':');
        out.push_str(&label(e)?);
    }
    Ok(out)
}

/// The uniqueness constraint on `id` of a label. Named so that a second run, or another
/// infragraph, finds it and does nothing.
pub(crate) fn id_constraint(l: &str) -> Result<String, Error> {
    Ok(format!(
        "CREATE CONSTRAINT `infragraph_{l}_id` IF NOT EXISTS FOR (n:{}) REQUIRE n.`id` IS UNIQUE",
        label(l)?
    ))
}

/// An index on one property of a label: a declared `indexed` property, an edge end's
/// key, or `lastupdated`, which cleanup and change counts filter on.
pub(crate) fn property_index(l: &str, p: &str) -> Result<String, Error> {
    Ok(format!(
        "CREATE INDEX `infragraph_{l}_{p}` IF NOT EXISTS FOR (n:{}) ON (n.{})",
        label(l)?,
        key(p)?
    ))
}

/// Drops the indexes on `lastupdated` that earlier versions kept for cleanup: one on
/// `lastupdated` alone (under which ArcadeDB kept every node of a label under a few keys
/// and paid for the whole list each time a resync moved a node to the new tag: 30,000
/// nodes resynced in 16.4 s), then one on (`lastupdated`, `id`). Every node write
/// changes `lastupdated`, so such an index is rewritten on every write, for the sake of
/// cleanup's few reads: measured on ArcadeDB 26.10, 100,000 nodes took 3.6 s to write
/// and 2.9 s to resync with it, 2.6 s and 1.8 s without; the 10,000-resource Scaleway
/// estate synced in 2.3 s with it, 2.0 s without. Cleanup reads each label once to learn
/// whether anything is stale ([`survey`]), and scans it no more when nothing is.
pub(crate) fn drop_tag_indexes(l: &str) -> Result<[String; 2], Error> {
    label(l)?;
    Ok([
        format!("DROP INDEX `infragraph_{l}_lastupdated` IF EXISTS"),
        format!("DROP INDEX `infragraph_{l}_lastupdated_id` IF EXISTS"),
    ])
}

/// Upserts a batch of nodes: `$rows` is a list of `{id, props}`. Every label goes into
/// the MERGE pattern, rather than `SET n:Extra` afterwards: a server that keeps one type
/// per label set (ArcadeDB) re-creates a node whose labels change, which a uniqueness
/// constraint then refuses.
///
/// With extra labels, two statements instead of one `MERGE`: create the nodes the primary
/// label does not find (`$ids`, each once), with every label, then update every row's
/// node found by its primary label. A `MERGE` on several labels finds nothing through an
/// index on ArcadeDB 26.10, which keeps a type per label set: measured, 1,000 lookups
/// took 18 ms by the primary label and 1,444 ms by both, and each batch of 1,000 nodes
/// took longer than the one before (379 ms, then 1.5 s, ..., 6.0 s at the 12th).
pub(crate) fn merge_nodes(primary: &str, extra: &[String]) -> Result<Vec<String>, Error> {
    let on_create = format!("n.`firstseen` = $tag, n.{SOURCE} = $plugin, n.{SCOPE} = $scope");
    if extra.is_empty() {
        return Ok(vec![format!(
            "UNWIND $rows AS row \
             MERGE (n{} {{`id`: row.id}}) \
             ON CREATE SET {on_create} \
             SET n += row.props, {} {}",
            labels(primary, extra)?,
            merge_bookkeeping("n"),
            foreign_node_count()
        )]);
    }
    let p = label(primary)?;
    Ok(vec![
        format!(
            "UNWIND $ids AS i \
             OPTIONAL MATCH (e:{p} {{`id`: i}}) \
             WITH i, e WHERE e IS NULL \
             CREATE (n{} {{`id`: i}}) SET {on_create}",
            labels(primary, extra)?
        ),
        format!(
            "UNWIND $rows AS row \
             MATCH (n:{p} {{`id`: row.id}}) \
             SET n += row.props, {} {}",
            merge_bookkeeping("n"),
            foreign_node_count()
        ),
    ])
}

/// The column by which a write statement reports the rows of its batch that another
/// plugin owns: the transaction that wrote them is then rolled back, so nothing of the
/// batch is written, and the statement's other columns name the first such record (`id`
/// or `i`, the row's index, and `owner`). Checking inside the write rather than in a
/// statement before it saves a pass over the batch: measured on ArcadeDB 26.10, 30,000
/// relationships into one node took 2.3 s with the check before and 1.7 s with it inside.
pub(crate) const FOREIGN: &str = "foreign";

/// The end of a node merge: how many of the batch's nodes another plugin owns, and the
/// first. An aggregate, so every row is written before it is counted (a `LIMIT` after an
/// update may stop a server from updating the rest).
fn foreign_node_count() -> String {
    format!(
        "WITH n WHERE n.{SOURCE} <> $plugin \
         RETURN count(n) AS {FOREIGN}, collect(n.`id`)[0] AS id, collect(n.{SOURCE})[0] AS owner"
    )
}

/// Which end of a relationship a pattern starts from. A server may find an existing
/// relationship by walking the relationships of the node its pattern names first (ArcadeDB
/// does, in `MERGE` and `MATCH`): starting from a project that holds 5,000 instances
/// walks 5,000 relationships per row, starting from the instance walks one. Measured on
/// ArcadeDB 26.10, 5,000 relationships into one node: 420 a second from the high-degree
/// end, 17,000 from the other (a `MATCH` for the same check: 280 against 30,000). Neo4j
/// plans the expansion from the cheaper end itself, so the order costs it nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// `(a)-[r]->(b)`: start from the start node.
    From,
    /// `(b)<-[r]-(a)`: start from the end node.
    To,
}

impl Anchor {
    /// The end a batch of `(from, to)` key pairs should start from: the one whose keys
    /// repeat less in it, i.e. the end with fewer of these relationships per node (a
    /// batch of one project's instances starts from the instances).
    pub(crate) fn for_batch<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Anchor {
        let (mut from, mut to) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        for (f, t) in pairs {
            from.insert(f);
            to.insert(t);
        }
        if to.len() > from.len() {
            Anchor::To
        } else {
            Anchor::From
        }
    }

    /// The pattern `(a)-[r]->(b)`, written from the anchored end.
    fn pattern(self, a: &str, r: &str, b: &str) -> String {
        match self {
            Anchor::From => format!("({a})-[{r}]->({b})"),
            Anchor::To => format!("({b})<-[{r}]-({a})"),
        }
    }
}

/// Registers a plugin's primary labels, first come first served: returns each `label`
/// with the `plugin` it belongs to.
pub(crate) const CLAIM_LABELS: &str = "UNWIND $labels AS l \
    MERGE (x:`InfragraphLabel` {`id`: l}) ON CREATE SET x.`plugin` = $plugin \
    RETURN x.`id` AS label, x.`plugin` AS plugin";

/// Binds a row's ends, `a` by `row.f` and `b` by `row.t`, each by its (label, key).
fn match_ends(from: (&str, &str), to: (&str, &str)) -> Result<String, Error> {
    Ok(format!(
        "MATCH (a:{} {{{}: row.f}}) MATCH (b:{} {{{}: row.t}})",
        label(from.0)?,
        key(from.1)?,
        label(to.0)?,
        key(to.1)?
    ))
}

/// Writes a batch of relationships whose `(f, t)` pairs are distinct, with one write per
/// new relationship: each row looks for its relationship from the anchored end, creates
/// it with its bookkeeping in the pattern when there is none, and updates it when there
/// is. A `MERGE` creates the relationship bare and then writes it again to set its
/// properties: measured on ArcadeDB 26.10, 25,000 new relationships into one node went
/// at 20-24 thousand a second with `MERGE ... ON CREATE SET`, 33-35 thousand this way;
/// existing ones alike. Rows must not repeat a pair: the rows of one statement all look
/// before any creates, so a repeated pair would be created twice ([`merge_edges`] takes
/// such batches). Two copies found (two writers that created one relationship at the same
/// instant, which ArcadeDB's optimistic transactions turn into a retry but Neo4j
/// does not) are made one again: the first found is kept, the others deleted.
/// Returns what [`merge_edges`] returns.
pub(crate) fn write_edges(
    rel: &str,
    from: (&str, &str),
    to: (&str, &str),
    anchor: Anchor,
) -> Result<String, Error> {
    let t = rel_type(rel)?;
    let born = format!(
        "r:{t} {{`firstseen`: $tag, `lastupdated`: $tag, {DIGEST}: row.d, {SOURCE}: $plugin, \
         {SCOPE}: $scope}}"
    );
    Ok(format!(
        "UNWIND $rows AS row {} {} \
         WITH row.i AS i, [r IN found[0..1] WHERE r.{SOURCE} <> $plugin | r.{SOURCE}] AS owners \
         RETURN count(DISTINCT i) AS resolved, \
         sum(size(owners)) AS {FOREIGN}, \
         collect(CASE WHEN size(owners) > 0 THEN i END)[0] AS i, \
         collect(CASE WHEN size(owners) > 0 THEN owners[0] END)[0] AS owner",
        match_ends(from, to)?,
        look_up_or_create(anchor, &t, &born, &format!(", {}", merge_bookkeeping("r")))
    ))
}

/// The clause [`write_edges`] and [`push_edges`] share, after `a`, `b` and `row` are
/// bound: looks for the relationship of type `t` from the anchored end, creates it as
/// `born` (a pattern binding `r`) when there is none, sets `row.props` and `also_set` on
/// the one found, and deletes any copy beyond the first; leaves `found` bound.
fn look_up_or_create(anchor: Anchor, t: &str, born: &str, also_set: &str) -> String {
    format!(
        "OPTIONAL MATCH {} \
         WITH a, b, row, collect(e) AS found \
         FOREACH (_ IN CASE WHEN size(found) = 0 THEN [1] ELSE [] END | \
         CREATE {} SET r += row.props) \
         FOREACH (r IN found[0..1] | SET r += row.props{also_set}) \
         FOREACH (r IN found[1..] | DELETE r)",
        anchor.pattern("a", &format!("e:{t}"), "b"),
        anchor.pattern("a", born, "b"),
    )
}

/// Merges a batch of relationships: `$rows` is a list of `{i, f, t, props}`, `i` the
/// row's index. Each end is matched by its label and key (a key other than `id` may match
/// several nodes: each is linked). Returns how many rows found both ends, so the caller
/// counts the rest as unresolved, and the relationships another plugin owns ([`FOREIGN`]).
pub(crate) fn merge_edges(
    rel: &str,
    from: (&str, &str),
    to: (&str, &str),
    anchor: Anchor,
) -> Result<String, Error> {
    Ok(format!(
        "UNWIND $rows AS row {} \
         MERGE {} \
         ON CREATE SET r.`firstseen` = $tag, r.{SOURCE} = $plugin, r.{SCOPE} = $scope \
         SET r += row.props, {} \
         WITH row.i AS i, r.{SOURCE} AS src \
         RETURN count(DISTINCT i) AS resolved, \
         count(CASE WHEN src <> $plugin THEN 1 END) AS {FOREIGN}, \
         collect(CASE WHEN src <> $plugin THEN i END)[0] AS i, \
         collect(CASE WHEN src <> $plugin THEN src END)[0] AS owner",
        match_ends(from, to)?,
        anchor.pattern("a", &format!("r:{}", rel_type(rel)?), "b"),
        merge_bookkeeping("r")
    ))
}

/// The digest of what the plugin emitted for a record, hex (see `known`).
pub(crate) const DIGEST: &str = "`_digest`";

/// `runs`: how many runs of `$plugin` over `$scope` the history holds (a plugin without
/// a scope records none and writes under an empty one).
pub(crate) const RUNS_OF_SCOPE: &str = "MATCH (r:`InfragraphRun`) \
    WHERE r.`plugin` = $plugin AND coalesce(r.`scope`, '') = $scope \
    RETURN count(r) AS runs";

/// The nodes of label `l` this plugin's scope asserts: `id` and digest `d`
/// (null for a node written before digests, or pushed).
pub(crate) fn known_nodes(l: &str) -> Result<String, Error> {
    Ok(format!(
        "MATCH (n:{}) WHERE n.{SOURCE} = $plugin AND {} \
         RETURN n.`id` AS id, n.{DIGEST} AS d",
        label(l)?,
        asserted("n")
    ))
}

/// The relationships of type `rel` from `from` to `to` nodes this plugin's scope
/// asserts: ends' ids `f` and `t`, their element ids `a` and `b`, digest `d` (or null).
pub(crate) fn known_edges(rel: &str, from: &str, to: &str) -> Result<String, Error> {
    Ok(format!(
        "MATCH (a:{})-[r:{}]->(b:{}) \
         WHERE r.{SOURCE} = $plugin AND {} \
         RETURN a.`id` AS f, b.`id` AS t, elementId(a) AS a, elementId(b) AS b, r.{DIGEST} AS d",
        label(from)?,
        rel_type(rel)?,
        label(to)?,
        asserted("r")
    ))
}

/// What cleanup keeps: nodes of this plugin and scope with an incomplete label, or, for
/// an incomplete label under a parent, those of them whose ids are in a parameter.
pub(crate) struct Keep {
    /// (label, `Some(parameter name)` when limited to the listed ids).
    pub(crate) entries: Vec<(String, Option<String>)>,
}

impl Keep {
    /// A predicate true when `var` is a kept node; `None` when nothing is kept.
    pub(crate) fn predicate(&self, var: &str) -> Result<Option<String>, Error> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let mut any = Vec::new();
        for (l, ids) in &self.entries {
            any.push(match ids {
                None => format!("{var}:{}", label(l)?),
                Some(p) => format!("({var}:{} AND {var}.`id` IN ${p})", label(l)?),
            });
        }
        Ok(Some(format!(
            "({var}.{SOURCE} = $plugin AND {} AND ({}))",
            asserted(var),
            any.join(" OR ")
        )))
    }
}

/// ` AND NOT <keep>` for `var`, or nothing.
fn and_not_kept(keep: &Keep, var: &str) -> Result<String, Error> {
    Ok(keep
        .predicate(var)?
        .map(|p| format!(" AND NOT {p}"))
        .unwrap_or_default())
}

/// The records a cleanup statement looks at, bound as `x` (a relationship's ends as `a`
/// and `b`): every one of a kind, or the ones a run's knowledge names (see `known`).
pub(crate) struct Among {
    /// The clause binding them, to be followed by `WHERE`.
    clause: String,
    /// More of the `WHERE`, starting with ` AND`, or nothing.
    and: String,
    /// Whether they are relationships.
    edges: bool,
}

impl Among {
    /// Every node of label `l`.
    pub(crate) fn nodes(l: &str) -> Result<Among, Error> {
        Ok(Among {
            clause: format!("MATCH (x:{})", label(l)?),
            and: String::new(),
            edges: false,
        })
    }

    /// The nodes of label `l` whose ids are in `$ids`.
    pub(crate) fn listed_nodes(l: &str) -> Result<Among, Error> {
        Ok(Among {
            clause: format!("UNWIND $ids AS i MATCH (x:{} {{`id`: i}})", label(l)?),
            and: String::new(),
            edges: false,
        })
    }

    /// Every relationship of type `rel` from a node of label `from`, except those to a
    /// node of a label in `except` (kinds a run's knowledge covers). Started from the
    /// label: ArcadeDB 26.10 finds `(a)-[x:T]->(b)` by walking every node's
    /// relationships, 12-17 ms for a type with four relationships in a graph of 10,000
    /// nodes, against 0.5 ms from the label (measured).
    pub(crate) fn edges(rel: &str, from: &str, except: &[&str]) -> Result<Among, Error> {
        let mut not = Vec::new();
        for t in except {
            // A checked identifier, so safe as a literal.
            label(t)?;
            not.push(format!("'{t}' IN labels(b)"));
        }
        Ok(Among {
            clause: format!("MATCH (a:{})-[x:{}]->(b)", label(from)?, rel_type(rel)?),
            and: if not.is_empty() {
                String::new()
            } else {
                format!(" AND NOT ({})", not.join(" OR "))
            },
            edges: true,
        })
    }

    /// The relationships of type `rel` between the nodes whose element ids are in
    /// `$pairs` (`{a, b}`), each looked for from the `anchor` end.
    pub(crate) fn listed_edges(rel: &str, anchor: Anchor) -> Result<Among, Error> {
        Ok(Among {
            clause: format!(
                "UNWIND $pairs AS p MATCH (a) WHERE elementId(a) = p.a \
                 MATCH (b) WHERE elementId(b) = p.b MATCH {}",
                anchor.pattern("a", &format!("x:{}", rel_type(rel)?), "b")
            ),
            and: String::new(),
            edges: true,
        })
    }

    /// ` AND NOT <kept>` for the record's node, or for either end of a relationship.
    fn not_kept(&self, keep: &Keep) -> Result<String, Error> {
        if self.edges {
            Ok(and_not_kept(keep, "a")? + &and_not_kept(keep, "b")?)
        } else {
            and_not_kept(keep, "x")
        }
    }
}

/// Deletes at most `$limit` stale relationships (`among` binds them) written by this
/// plugin in this scope and asserted by no other, except those touching a kept node.
pub(crate) fn delete_stale_edges(among: &Among, keep: &Keep) -> Result<String, Error> {
    Ok(format!(
        "{} WHERE x.{SOURCE} = $plugin AND x.{SCOPE} = $scope AND x.{ALSO} IS NULL \
         AND {}{}{} \
         WITH x LIMIT $limit \
         DELETE x \
         RETURN count(*) AS deleted",
        among.clause,
        unseen("x"),
        among.not_kept(keep)?,
        among.and,
    ))
}

/// What a run left among the records `among` binds that `$plugin` wrote and `$scope`
/// asserts, in one pass: `stale`, how many of them cleanup may act on (not seen by this
/// run; 0 when `stale` is false, for a kind the run's knowledge covers), and the run's
/// own changes: `created`, `seen` (all it wrote) and `unchanged` (seen before and found
/// as they were). One pass rather than a look for the stale and a count after cleanup:
/// most runs have nothing stale, and then the counts are final (see `survey`).
pub(crate) fn survey(among: &Among, stale: bool) -> String {
    let s = last_seen("x");
    let stale = if stale {
        format!(
            "sum(CASE WHEN {}{} THEN 1 ELSE 0 END)",
            unseen("x"),
            among.and
        )
    } else {
        "0".into()
    };
    format!(
        "{} WHERE x.{SOURCE} = $plugin AND {} \
         RETURN {stale} AS stale, \
         sum(CASE WHEN {s} = $tag AND x.`firstseen` = $tag THEN 1 ELSE 0 END) AS created, \
         sum(CASE WHEN {s} = $tag THEN 1 ELSE 0 END) AS seen, \
         sum(CASE WHEN {s} = $tag AND x.`firstseen` < $tag AND x.`lastupdated` < $tag \
         THEN 1 ELSE 0 END) AS unchanged",
        among.clause,
        asserted("x")
    )
}

/// Whether node `x` is a stale node of this plugin and scope, that no other scope
/// asserts, that cleanup may delete.
fn stale_node(among: &Among, keep: &Keep) -> Result<String, Error> {
    Ok(format!(
        "x.{SOURCE} = $plugin AND x.{SCOPE} = $scope AND x.{ALSO} IS NULL \
         AND {}{}{}",
        unseen("x"),
        among.not_kept(keep)?,
        among.and
    ))
}

/// Takes this scope off at most `$limit` stale records (`among` binds them) that other
/// scopes also assert: where it created the record, the next scope on the list takes its
/// place. Two statements, each returning how many it changed as `deleted`, run until
/// they change fewer than `$limit`.
pub(crate) fn release_stale(among: &Among, keep: &Keep) -> Result<[String; 2], Error> {
    let head = format!(
        "{} WHERE x.{SOURCE} = $plugin AND {} \
         AND x.{ALSO} IS NOT NULL{}{}",
        among.clause,
        unseen("x"),
        among.not_kept(keep)?,
        among.and
    );
    Ok([
        format!(
            "{head} AND x.{SCOPE} = $scope WITH x LIMIT $limit \
             SET x.{SCOPE} = head(x.{ALSO}), \
             x.{ALSO} = CASE WHEN size(x.{ALSO}) > 1 THEN tail(x.{ALSO}) ELSE null END \
             RETURN count(*) AS deleted"
        ),
        format!(
            "{head} AND $scope IN x.{ALSO} WITH x LIMIT $limit \
             SET x.{ALSO} = CASE WHEN size(x.{ALSO}) > 1 \
             THEN [s IN x.{ALSO} WHERE s <> $scope] ELSE null END \
             RETURN count(*) AS deleted"
        ),
    ])
}

/// Deletes at most `$limit` relationships, whoever wrote them, of stale nodes (`among`
/// binds them), counted by type: a node goes with all its relationships, and bounding
/// those too keeps every transaction small even for a node with very many.
pub(crate) fn delete_edges_of_stale_nodes(among: &Among, keep: &Keep) -> Result<String, Error> {
    Ok(format!(
        "{} WHERE {} \
         MATCH (x)-[r]-() \
         WITH DISTINCT r LIMIT $limit \
         WITH r, type(r) AS t \
         DELETE r \
         RETURN t, count(*) AS deleted",
        among.clause,
        stale_node(among, keep)?
    ))
}

/// Deletes at most `$limit` stale nodes (`among` binds them; by now without
/// relationships).
pub(crate) fn delete_stale_nodes(among: &Among, keep: &Keep) -> Result<String, Error> {
    Ok(format!(
        "{} WHERE {} \
         WITH x LIMIT $limit \
         DETACH DELETE x \
         RETURN count(*) AS deleted",
        among.clause,
        stale_node(among, keep)?
    ))
}

/// Ids of the nodes of label `l`, of this plugin and scope, linked either way to the
/// nodes named by `$value` in `parent_label`.`parent_key`.
pub(crate) fn kept_under_parent(
    l: &str,
    parent_label: &str,
    parent_key: &str,
) -> Result<String, Error> {
    Ok(format!(
        "MATCH (p:{} {{{}: $value}})--(n:{}) \
         WHERE n.{SOURCE} = $plugin AND {} \
         RETURN DISTINCT n.`id` AS id",
        label(parent_label)?,
        key(parent_key)?,
        label(l)?,
        asserted("n")
    ))
}

/// Upserts pushed nodes: `$rows` is a list of `{id, props}` where `props` carries the
/// bookkeeping as the embedded store recorded it. With extra labels, as
/// [`merge_nodes`] and for its reason: create what the primary label does not find
/// (`$ids`), then update every row's node found by its primary label.
pub(crate) fn push_nodes(primary: &str, extra: &[String]) -> Result<Vec<String>, Error> {
    if extra.is_empty() {
        return Ok(vec![format!(
            "UNWIND $rows AS row MERGE (n{} {{`id`: row.id}}) SET n += row.props",
            labels(primary, extra)?
        )]);
    }
    let p = label(primary)?;
    Ok(vec![
        format!(
            "UNWIND $ids AS i \
             OPTIONAL MATCH (e:{p} {{`id`: i}}) \
             WITH i, e WHERE e IS NULL \
             CREATE (n{} {{`id`: i}})",
            labels(primary, extra)?
        ),
        format!("UNWIND $rows AS row MATCH (n:{p} {{`id`: row.id}}) SET n += row.props"),
    ])
}

/// Writes pushed relationships, ends matched by `id`; returns the rows that found both.
/// A batch whose `(f, t)` pairs are distinct (an export holds each relationship once)
/// creates each missing relationship with one write, as [`write_edges`] does; one that
/// repeats a pair merges.
pub(crate) fn push_edges(
    rel: &str,
    from: &str,
    to: &str,
    anchor: Anchor,
    distinct: bool,
) -> Result<String, Error> {
    let t = rel_type(rel)?;
    let write = if distinct {
        look_up_or_create(anchor, &t, &format!("r:{t}"), "")
    } else {
        format!(
            "MERGE {} SET r += row.props",
            anchor.pattern("a", &format!("r:{t}"), "b")
        )
    };
    Ok(format!(
        "UNWIND $rows AS row {} {write} \
         WITH DISTINCT row.i AS i \
         RETURN count(i) AS resolved",
        match_ends((from, "id"), (to, "id"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_starts_from_the_end_whose_keys_repeat_less() {
        let one_project = (0..50).map(|i| ("p1", ["i1", "i2", "i3"][i % 3]));
        assert_eq!(Anchor::for_batch(one_project), Anchor::To);
        let members = [("u1", "g1"), ("u2", "g1"), ("u3", "g2")];
        assert_eq!(Anchor::for_batch(members.into_iter()), Anchor::From);
        let q = merge_edges("RESOURCE", ("P", "id"), ("I", "id"), Anchor::To).unwrap();
        assert!(q.contains("MERGE (b)<-[r:`RESOURCE`]-(a)"), "{q}");
        assert!(q.contains("AS foreign"), "{q}");
        for q in merge_nodes("P", &[]).unwrap() {
            assert!(q.contains("AS foreign"), "{q}");
        }
        let q = merge_nodes("P", &["X".into()]).unwrap();
        assert!(
            !q[0].contains("AS foreign") && q[1].contains("AS foreign"),
            "{q:?}"
        );
        let q = push_edges("MEMBER_OF", "U", "G", Anchor::From, false).unwrap();
        assert!(q.contains("MERGE (a)-[r:`MEMBER_OF`]->(b)"), "{q}");
        let q = push_edges("MEMBER_OF", "U", "G", Anchor::To, true).unwrap();
        assert!(q.contains("CREATE (b)<-[r:`MEMBER_OF`]-(a)"), "{q}");
        assert_eq!(push_nodes("P", &["X".into()]).unwrap().len(), 2);
    }

    #[test]
    fn names_that_are_not_identifiers_never_reach_a_statement() {
        assert_eq!(label("ScalewayUser").unwrap(), "`ScalewayUser`");
        assert_eq!(rel_type("MEMBER_OF").unwrap(), "`MEMBER_OF`");
        for bad in ["User`) DETACH DELETE (m", "user", "", "A B"] {
            assert!(label(bad).is_err(), "{bad:?}");
        }
        assert!(key("name`: 1}) //").is_err());
        assert!(rel_type("MEMBER_OF]->() //").is_err());
        assert!(merge_nodes("Ok", &["Not ok".into()]).is_err());
    }

    #[test]
    fn keep_predicates_name_the_plugin_scope_and_labels() {
        let keep = Keep {
            entries: vec![
                ("ConfUser".into(), None),
                ("ConfGroup".into(), Some("k1".into())),
            ],
        };
        assert_eq!(
            keep.predicate("n").unwrap().unwrap(),
            "(n.`_source` = $plugin AND (n.`_scope` = $scope OR $scope IN \
             coalesce(n.`_also_scopes`, [])) AND (n:`ConfUser` OR (n:`ConfGroup` AND n.`id` IN $k1)))"
        );
        assert_eq!(Keep { entries: vec![] }.predicate("n").unwrap(), None);
    }
}
