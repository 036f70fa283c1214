//! Who can reach what: access questions answered from the graph and from what the
//! plugins' schemas say each relationship kind means for access (contract 0.2.0). The
//! walk reads the graph only through [`GraphReader`], so the embedded store and a Neo4j
//! server give the same answers.
//!
//! Every relationship with an access meaning reads as a pair (start, end) in the kind's
//! own sense, which is the stored direction unless the kind is `reversed`:
//!
//! - membership: (member, group): the member has whatever the group has, transitively;
//! - grant: (holder, scope), with the roles or permissions the kind's `grants` properties
//!   name (the relationship type when it names none);
//! - containment: (scope, child): whatever is granted on the scope reaches the child;
//! - acting-as: (actor, principal): whoever controls the actor has whatever the principal
//!   has.
//!
//! A principal reaches a node when it is, or acts as, or is a member of (each any number
//! of times) a holder of a grant on the node or on a scope containing it (any number of
//! times). Each answer keeps, per role, the shortest such path.

use std::collections::{BTreeMap, HashMap, HashSet};

use infragraph_core::{
    Access, AccessKind, Direction, GraphReader, MAX_PATH_VISITS, Manifest, SinkError, Step,
    StoredEdge, StoredNode,
};
use serde::Serialize;
use serde_json::Value as Json;

/// The access meaning of every relationship kind the plugins declare.
#[derive(Debug, Default, Clone)]
pub struct AccessModel {
    /// By relationship type: (start label, end label, meaning).
    by_type: HashMap<String, Vec<(String, String, Access)>>,
}

impl AccessModel {
    /// The model of these plugins' schemas.
    pub fn new<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> AccessModel {
        let mut by_type: HashMap<String, Vec<(String, String, Access)>> = HashMap::new();
        for m in manifests {
            for e in &m.schema.edges {
                if let Some(a) = &e.access {
                    by_type.entry(e.rel_type.clone()).or_default().push((
                        e.from.clone(),
                        e.to.clone(),
                        a.clone(),
                    ));
                }
            }
        }
        AccessModel { by_type }
    }

    /// The model of every installed plugin (built-in ones over those that would shadow
    /// them), and of the people links when the config has `[people]` rules.
    pub async fn installed(settings: &crate::Settings) -> Result<AccessModel, crate::Error> {
        let runtime = settings.runtime()?;
        let mut manifests: Vec<Manifest> = settings
            .catalog
            .manifests(&runtime)
            .await
            .into_iter()
            .map(|m| (*m).clone())
            .collect();
        manifests.extend(settings.people.as_ref().map(|r| r.manifest()));
        Ok(AccessModel::new(&manifests))
    }

    /// Whether no plugin declares any access meaning.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// The relationship types of which some kind has one of `kinds` and is `reversed` or
    /// not, sorted.
    fn types(&self, kinds: &[AccessKind], reversed: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .by_type
            .iter()
            .filter(|(_, ks)| {
                ks.iter()
                    .any(|(_, _, a)| kinds.contains(&a.kind) && a.reversed == reversed)
            })
            .map(|(t, _)| t.clone())
            .collect();
        out.sort();
        out
    }

    /// The declared meaning of a stored relationship: by its type and its ends' labels.
    fn of(&self, e: &StoredEdge) -> Option<&Access> {
        self.by_type
            .get(&e.rel_type)?
            .iter()
            .find(|(from, to, _)| *from == e.from.0 && *to == e.to.0)
            .map(|(_, _, a)| a)
    }
}

/// A node's key: (primary label, id).
type Key = (String, String);

fn key(n: &StoredNode) -> Key {
    (n.label.clone(), n.id.clone())
}

/// (start, end) of `e` in the sense of its access kind.
fn ends(e: &StoredEdge, a: &Access) -> (Key, Key) {
    if a.reversed {
        (e.to.clone(), e.from.clone())
    } else {
        (e.from.clone(), e.to.clone())
    }
}

/// What a grant grants: the values of its `grants` properties, or its type when it names
/// none.
fn roles(e: &StoredEdge, a: &Access) -> Vec<String> {
    if a.grants.is_empty() {
        return vec![e.rel_type.clone()];
    }
    let mut out = Vec::new();
    for g in &a.grants {
        match e.props.get(g) {
            Some(Json::String(s)) if !s.is_empty() => out.push(s.clone()),
            Some(Json::Array(items)) => out.extend(
                items
                    .iter()
                    .filter_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string)),
            ),
            Some(Json::Number(n)) => out.push(n.to_string()),
            _ => {}
        }
    }
    out
}

/// One role a node is reached with, and the shortest path that grants it: from the
/// principal to the node, each step the relationship followed (in its stored direction)
/// and the node it leads to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Granted {
    /// The role or permission.
    pub role: String,
    /// Principal first, the reached node last.
    pub path: Vec<Step>,
}

/// A node in an answer (a principal for `who`, a reached node for `what`), with every role
/// it holds or is reached with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reach {
    /// The principal (`who`) or the node reached (`what`).
    pub node: StoredNode,
    /// By role, sorted; each with its shortest path.
    pub grants: Vec<Granted>,
}

/// Keeps, per (node, role), the shortest path.
#[derive(Default)]
struct Answers {
    by_node: BTreeMap<Key, (StoredNode, BTreeMap<String, Vec<Step>>)>,
}

impl Answers {
    fn add(&mut self, node: &StoredNode, role: &str, path: Vec<Step>) {
        let entry = self
            .by_node
            .entry(key(node))
            .or_insert_with(|| (node.clone(), BTreeMap::new()));
        match entry.1.get(role) {
            Some(p) if p.len() <= path.len() => {}
            _ => {
                entry.1.insert(role.to_string(), path);
            }
        }
    }

    fn into_reaches(self, role_filter: Option<&str>) -> Vec<Reach> {
        let wanted = |r: &str| role_filter.is_none_or(|f| r.eq_ignore_ascii_case(f));
        self.by_node
            .into_values()
            .filter_map(|(node, roles)| {
                let grants: Vec<Granted> = roles
                    .into_iter()
                    .filter(|(r, _)| wanted(r))
                    .map(|(role, path)| Granted { role, path })
                    .collect();
                (!grants.is_empty()).then_some(Reach { node, grants })
            })
            .collect()
    }
}

/// What one step of a walk follows: relationships of these access kinds, found by these
/// types, each read only in the stored direction the step needs (computed once per walk,
/// not per node). Reading both directions and filtering would load every child of a
/// root on the way up: an instance that holds 120,000 records, for one question.
struct Follow<'k> {
    kinds: &'k [AccessKind],
    /// Types read with the node as the stored start, and as the stored end.
    outgoing: Vec<String>,
    incoming: Vec<String>,
}

impl<'k> Follow<'k> {
    /// `at_end`: the step stands on the end of each relationship in its kind's sense.
    fn new(model: &AccessModel, kinds: &'k [AccessKind], at_end: bool) -> Follow<'k> {
        // A kind's end is the stored end unless it is reversed.
        let (forward, reversed) = (model.types(kinds, false), model.types(kinds, true));
        let (outgoing, incoming) = if at_end {
            (reversed, forward)
        } else {
            (forward, reversed)
        };
        Follow {
            kinds,
            outgoing,
            incoming,
        }
    }
}

/// For each of `nodes`, the relationships `follow` names whose end (`at_end`) or start is
/// that node, each with the node at its other end and its meaning: one read for them all
/// per direction, so a graph server answers a whole frontier at once.
async fn around<R: GraphReader>(
    r: &R,
    model: &AccessModel,
    nodes: &[&StoredNode],
    follow: &Follow<'_>,
    at_end: bool,
    visits: &mut usize,
) -> Result<Vec<Vec<(StoredEdge, StoredNode, Access)>>, SinkError> {
    *visits += nodes.len();
    if *visits > MAX_PATH_VISITS {
        let n = nodes.first().expect("past the bound, some node");
        // --role would not help: it filters the answer, not the walk.
        return Err(SinkError::new(format!(
            "the access walk read more than {MAX_PATH_VISITS} nodes around {} {:?} without \
             finishing; ask about a node lower in the graph (a resource rather than a whole \
             tenant, one member rather than everyone)",
            n.label, n.id
        )));
    }
    let mut out: Vec<Vec<(StoredEdge, StoredNode, Access)>> = vec![Vec::new(); nodes.len()];
    if nodes.is_empty() {
        return Ok(out);
    }
    let keys: Vec<Key> = nodes.iter().map(|n| key(n)).collect();
    for (direction, types) in [
        (Direction::Out, &follow.outgoing),
        (Direction::In, &follow.incoming),
    ] {
        if types.is_empty() {
            continue;
        }
        for (i, e, other) in r.neighbours_of_many(&keys, direction, types).await? {
            let Some(a) = model.of(&e).filter(|a| follow.kinds.contains(&a.kind)) else {
                continue;
            };
            let (start, end) = ends(&e, a);
            let mine = if at_end { end } else { start };
            if mine == keys[i] {
                let a = a.clone();
                out[i].push((e, other, a));
            }
        }
    }
    Ok(out)
}

/// From each of `starts`, every node reachable over relationships of `kinds` (`at_end`:
/// where the current node is the relationship's end in its kind's sense, else its start),
/// breadth first, each with the shortest chain from its start: the start first, then each
/// node with the relationship that led to it. The walks go level by level together, one
/// read per level for all of them, so asking a server costs rounds per level, not per node.
async fn walks<R: GraphReader>(
    r: &R,
    model: &AccessModel,
    starts: &[&StoredNode],
    kinds: &[AccessKind],
    at_end: bool,
    visits: &mut usize,
) -> Result<Vec<Vec<Vec<Step>>>, SinkError> {
    let follow = Follow::new(model, kinds, at_end);
    let mut out: Vec<Vec<Vec<Step>>> = vec![Vec::new(); starts.len()];
    let mut seen: Vec<HashSet<Key>> = starts.iter().map(|s| HashSet::from([key(s)])).collect();
    let mut level: Vec<(usize, Vec<Step>)> = starts
        .iter()
        .enumerate()
        .map(|(w, s)| {
            let first = Step {
                via: None,
                node: (*s).clone(),
            };
            (w, vec![first])
        })
        .collect();
    while !level.is_empty() {
        // Each node once per level, however many walks stand on it.
        let (nodes, at) = distinct(
            level
                .iter()
                .map(|(_, chain)| &chain.last().expect("a chain has a node").node),
        );
        let found = around(r, model, &nodes, &follow, at_end, visits).await?;
        let mut next = Vec::new();
        for (w, chain) in level {
            let last = key(&chain.last().expect("a chain has a node").node);
            for (e, n, _) in &found[at[&last]] {
                if seen[w].insert(key(n)) {
                    let mut longer = chain.clone();
                    longer.push(Step {
                        via: Some(e.clone()),
                        node: n.clone(),
                    });
                    next.push((w, longer));
                }
            }
            out[w].push(chain);
        }
        level = next;
    }
    Ok(out)
}

/// Each node of `nodes` once, in order of first appearance, and where each key stands.
fn distinct<'a>(
    nodes: impl Iterator<Item = &'a StoredNode>,
) -> (Vec<&'a StoredNode>, HashMap<Key, usize>) {
    let mut out: Vec<&StoredNode> = Vec::new();
    let mut at: HashMap<Key, usize> = HashMap::new();
    for n in nodes {
        at.entry(key(n)).or_insert_with(|| {
            out.push(n);
            out.len() - 1
        });
    }
    (out, at)
}

/// A chain walked against the access direction (from a scope up to its parents, from a
/// group out to its members) as a path read the other way: last node first, each step's
/// relationship the one between it and the node before it.
fn backwards(chain: &[Step]) -> Vec<Step> {
    let mut path: Vec<Step> = Vec::with_capacity(chain.len());
    for (i, step) in chain.iter().enumerate().rev() {
        path.push(Step {
            via: chain.get(i + 1).and_then(|next| next.via.clone()),
            node: step.node.clone(),
        });
    }
    path
}

/// `head` then `tail`, joined by `via` (the relationship from the last of `head` to the
/// first of `tail`).
fn join(head: &[Step], via: &StoredEdge, tail: &[Step]) -> Vec<Step> {
    let mut path = head.to_vec();
    let mut rest = tail.to_vec();
    rest[0].via = Some(via.clone());
    path.extend(rest);
    path
}

/// Every principal that reaches the node (`label`, `id`), with the roles it reaches it
/// with and the shortest path granting each; only `role` when given (any case).
pub async fn who<R: GraphReader>(
    r: &R,
    model: &AccessModel,
    label: &str,
    id: &str,
    role: Option<&str>,
) -> Result<Vec<Reach>, SinkError> {
    let target = node(r, label, id).await?;
    let mut visits = 0;
    // The node and every scope above it, each with its path down to the node.
    let containment = [AccessKind::Containment];
    let scopes = walks(r, model, &[&target], &containment, true, &mut visits)
        .await?
        .remove(0);
    let downs: Vec<Vec<Step>> = scopes.iter().map(|c| backwards(c)).collect();
    let grants = Follow::new(model, &[AccessKind::Grant], true);
    let scope_nodes: Vec<&StoredNode> = downs.iter().map(|d| &d[0].node).collect();
    let held = around(r, model, &scope_nodes, &grants, true, &mut visits).await?;
    // Who each holder's access passes to, walked for every holder at once: the same
    // group often holds many grants, and a server answers each level in one read.
    let (holders, holder_at) = distinct(held.iter().flatten().map(|(_, holder, _)| holder));
    let passing = [AccessKind::Membership, AccessKind::ActingAs];
    let members = walks(r, model, &holders, &passing, true, &mut visits).await?;
    let principals: Vec<Vec<Vec<Step>>> = members
        .iter()
        .map(|chains| chains.iter().map(|c| backwards(c)).collect())
        .collect();
    let mut answers = Answers::default();
    for (down, grants) in downs.iter().zip(&held) {
        for (e, holder, a) in grants {
            let granted = roles(e, a);
            if granted.is_empty() {
                continue; // a grant of nothing reaches nothing
            }
            for up in &principals[holder_at[&key(holder)]] {
                // principal .. holder, then the grant into the scope, then down to the node.
                let path = join(up, e, down);
                for g in &granted {
                    answers.add(&up[0].node, g, path.clone());
                }
            }
        }
    }
    Ok(answers.into_reaches(role))
}

/// Everything the principal (`label`, `id`) reaches, with the roles it reaches each with
/// and the shortest path granting each; only `role` when given (any case).
pub async fn what<R: GraphReader>(
    r: &R,
    model: &AccessModel,
    label: &str,
    id: &str,
    role: Option<&str>,
) -> Result<Vec<Reach>, SinkError> {
    let principal = node(r, label, id).await?;
    let mut visits = 0;
    // The principal and whatever it is a member of or acts as, with its path there.
    let passing = [AccessKind::Membership, AccessKind::ActingAs];
    let identities = walks(r, model, &[&principal], &passing, false, &mut visits)
        .await?
        .remove(0);
    let grants = Follow::new(model, &[AccessKind::Grant], false);
    let holders: Vec<&StoredNode> = identities
        .iter()
        .map(|up| &up.last().expect("a chain has a node").node)
        .collect();
    let held = around(r, model, &holders, &grants, false, &mut visits).await?;
    // The scopes granted on and everything they contain, walked together.
    let (scopes, scope_at) = distinct(held.iter().flatten().map(|(_, scope, _)| scope));
    let containment = [AccessKind::Containment];
    let below = walks(r, model, &scopes, &containment, false, &mut visits).await?;
    let mut answers = Answers::default();
    for (up, grants) in identities.iter().zip(&held) {
        for (e, scope, a) in grants {
            let granted = roles(e, a);
            if granted.is_empty() {
                continue;
            }
            // The scope and everything it contains, each with the shortest path.
            for down in &below[scope_at[&key(scope)]] {
                let path = join(up, e, down);
                let reached = &path.last().expect("a path has a node").node;
                for g in &granted {
                    answers.add(reached, g, path.clone());
                }
            }
        }
    }
    Ok(answers.into_reaches(role))
}

/// The access paths from the principal `from` to the node `to`: one per role, the shortest
/// granting it; empty when `from` cannot reach `to`.
pub async fn paths<R: GraphReader>(
    r: &R,
    model: &AccessModel,
    from: (&str, &str),
    to: (&str, &str),
    role: Option<&str>,
) -> Result<Vec<Granted>, SinkError> {
    // Asking the target keeps the walk to what is above it, usually far smaller than
    // everything below a principal's grants.
    let reaches = who(r, model, to.0, to.1, role).await?;
    Ok(reaches
        .into_iter()
        .find(|reach| reach.node.label == from.0 && reach.node.id == from.1)
        .map(|reach| reach.grants)
        .unwrap_or_default())
}

/// The node (`label`, `id`), or an error naming it.
async fn node<R: GraphReader>(r: &R, label: &str, id: &str) -> Result<StoredNode, SinkError> {
    let filters = [("id".to_string(), id.to_string())];
    r.nodes(label, &filters, 1)
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| SinkError::new(format!("no {label} node has id {id:?}")))
}

/// Whether the relationship names `role` among its properties' values: the grant that
/// gives it, in a path.
pub fn names_role(e: &StoredEdge, role: &str) -> bool {
    e.props.values().any(|v| match v {
        Json::String(s) => s == role,
        Json::Array(items) => items.iter().any(|i| i.as_str() == Some(role)),
        _ => false,
    })
}

/// A path as one line: `alice -[:MEMBER_OF]-> admins -[:ASSIGNED_ROLE {Owner}]-> sub-1`,
/// each relationship with the arrow of its stored direction.
pub fn path_text(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        if let Some(e) = &step.via {
            let forward = e.to.0 == step.node.label && e.to.1 == step.node.id;
            let (l, r) = if forward { ("-", "->") } else { ("<-", "-") };
            s.push_str(&format!(" {l}[:{}]{r} ", e.rel_type));
        }
        s.push_str(&step.node.id);
    }
    s
}

/// The paths as a Mermaid flowchart: each node once (label and id), each relationship
/// once, in its stored direction, labelled with its type and, where it names the role the
/// path grants, that role.
pub fn mermaid<'a>(paths: impl IntoIterator<Item = (&'a str, &'a [Step])>) -> String {
    let mut ids: BTreeMap<Key, usize> = BTreeMap::new();
    let mut nodes = String::new();
    let mut id_of = |n: &Key, nodes: &mut String| -> usize {
        let next = ids.len();
        *ids.entry(n.clone()).or_insert_with(|| {
            let text = format!("{}<br/>{}", n.0, n.1).replace('"', "#quot;");
            nodes.push_str(&format!("    n{next}[\"{text}\"]\n"));
            next
        })
    };
    // One arrow per relationship, naming every role of the answer it grants: two roles
    // through one grant are one arrow, not two drawn over each other.
    let mut edges: Vec<((usize, usize, String), Vec<String>)> = Vec::new();
    for (role, path) in paths {
        for step in path {
            id_of(&key(&step.node), &mut nodes);
            let Some(e) = &step.via else { continue };
            let (from, to) = (id_of(&e.from, &mut nodes), id_of(&e.to, &mut nodes));
            let at = (from, to, e.rel_type.clone());
            let i = match edges.iter().position(|(k, _)| *k == at) {
                Some(i) => i,
                None => {
                    edges.push((at, Vec::new()));
                    edges.len() - 1
                }
            };
            let roles = &mut edges[i].1;
            if names_role(e, role) && !roles.iter().any(|r| r == role) {
                roles.push(role.to_string());
            }
        }
    }
    let mut s = String::from("graph LR\n");
    s.push_str(&nodes);
    for ((from, to, rel), roles) in edges {
        let text = if roles.is_empty() {
            rel
        } else {
            format!("{rel} {}", roles.join(", "))
        };
        s.push_str(&format!(
            "    n{from} -- \"{}\" --> n{to}\n",
            text.replace('"', "#quot;")
        ));
    }
    s
}
