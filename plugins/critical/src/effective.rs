//! Effective membership through nested groups, as Critical resolves it at request time:
//! a principal belongs to every group reachable over `memberships` edges in at most
//! [`MAX_DEPTH`] steps (`FOR v IN 1..10 OUTBOUND ... memberships`,
//! `docs/providers/critical.md`).
//!
//! Pure and std-only on purpose: the benchmark compiles this very file natively to compare
//! it with the same computation inside the plugin.
//!
//! Each group's reach is computed once (a breadth-first walk to depth `MAX_DEPTH + 1`),
//! and a principal's effective groups are the union of its direct groups' reaches, each one
//! step deeper. Walking from every principal instead would repeat the walk above each
//! group once per member: 100,000 users in the same few groups walk the same tree 100,000
//! times.

use std::collections::{HashMap, VecDeque};

/// Critical stops resolving nested groups after this many membership steps.
pub const MAX_DEPTH: u8 = 10;

/// The membership graph over dense principal indices `0..n`.
#[derive(Debug, Clone, Default)]
pub struct Memberships {
    /// `groups[p]`: the groups `p` is a direct member of.
    groups: Vec<Vec<u32>>,
    is_group: Vec<bool>,
}

/// Where a principal ends up: its effective groups and whether the cut hid some.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effective {
    /// `(group, depth)`, depth 1 for a direct membership, sorted by group index.
    pub groups: Vec<(u32, u8)>,
    /// Some group is reachable only in more than [`MAX_DEPTH`] steps, so Critical (and
    /// this graph) does not count it.
    pub cut: bool,
}

impl Memberships {
    /// A graph of `n` principals with no memberships; `is_group(p)` says which are groups.
    pub fn new(is_group: Vec<bool>) -> Memberships {
        Memberships {
            groups: vec![Vec::new(); is_group.len()],
            is_group,
        }
    }

    /// Principals in the graph.
    pub fn len(&self) -> usize {
        self.is_group.len()
    }

    /// `member` is a direct member of `group`. Duplicates are ignored.
    pub fn add(&mut self, member: u32, group: u32) {
        let list = &mut self.groups[member as usize];
        if !list.contains(&group) {
            list.push(group);
        }
    }

    /// The direct groups of `p`.
    pub fn direct(&self, p: u32) -> &[u32] {
        &self.groups[p as usize]
    }

    /// Whether `p` is a group.
    pub fn is_group(&self, p: u32) -> bool {
        self.is_group[p as usize]
    }

    /// Every group's reach, ready to answer [`Reaches::effective`] for any principal.
    pub fn reaches(&self) -> Reaches<'_> {
        let n = self.len();
        let mut reach: Vec<Box<[(u32, u8)]>> = vec![Box::default(); n];
        let mut depth = vec![u8::MAX; n];
        let mut queue = VecDeque::new();
        let mut seen = Vec::new();
        for g in 0..n as u32 {
            if !self.is_group(g) || self.direct(g).is_empty() {
                continue;
            }
            // The group itself counts as seen, so a cycle back to it adds nothing.
            depth[g as usize] = 0;
            seen.push(g);
            queue.push_back(g);
            while let Some(x) = queue.pop_front() {
                let d = depth[x as usize];
                if d > MAX_DEPTH {
                    continue;
                }
                for &y in self.direct(x) {
                    if depth[y as usize] == u8::MAX {
                        depth[y as usize] = d + 1;
                        seen.push(y);
                        queue.push_back(y);
                    }
                }
            }
            let mut out: Vec<(u32, u8)> = seen
                .iter()
                .filter(|&&y| y != g)
                .map(|&y| (y, depth[y as usize]))
                .collect();
            out.sort_unstable();
            reach[g as usize] = out.into_boxed_slice();
            for y in seen.drain(..) {
                depth[y as usize] = u8::MAX;
            }
        }
        Reaches {
            graph: self,
            reach,
            best: vec![u8::MAX; n],
            touched: Vec::new(),
        }
    }

    /// Groups that sit on a membership cycle, one list per cycle (a strongly connected
    /// component of more than one group, or a group that is a member of itself), each
    /// sorted, in order of their smallest index.
    pub fn cycles(&self) -> Vec<Vec<u32>> {
        // Tarjan's algorithm without recursion: nesting may be deep and wasm stacks small.
        let n = self.len();
        const UNSEEN: u32 = u32::MAX;
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0u32;
        let mut out = Vec::new();
        for root in 0..n as u32 {
            if !self.is_group(root) || index[root as usize] != UNSEEN {
                continue;
            }
            let mut calls: Vec<(u32, usize)> = vec![(root, 0)];
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut i)) = calls.last_mut() {
                let edges = self.direct(v);
                if *i < edges.len() {
                    let w = edges[*i];
                    *i += 1;
                    if index[w as usize] == UNSEEN {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        calls.push((w, 0));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 || self.direct(v).contains(&v) {
                        component.sort_unstable();
                        out.push(component);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// Every group's reach, and scratch space to merge them per principal.
pub struct Reaches<'g> {
    graph: &'g Memberships,
    /// `reach[g]`: `(group, steps from g)` for every group within `MAX_DEPTH + 1` steps.
    reach: Vec<Box<[(u32, u8)]>>,
    best: Vec<u8>,
    touched: Vec<u32>,
}

impl Reaches<'_> {
    /// The effective groups of principal `p`.
    ///
    /// A group reachable in exactly `MAX_DEPTH + 1` steps proves a cut: on a shortest path
    /// to anything deeper, the node after `MAX_DEPTH` steps is one.
    pub fn effective(&mut self, p: u32) -> Effective {
        let graph = self.graph;
        if graph.is_group(p) {
            let reach = &self.reach[p as usize];
            return Effective {
                groups: reach
                    .iter()
                    .copied()
                    .filter(|&(_, d)| d <= MAX_DEPTH)
                    .collect(),
                cut: reach.iter().any(|&(_, d)| d > MAX_DEPTH),
            };
        }
        for &g in graph.direct(p) {
            self.offer(g, 1);
            for i in 0..self.reach[g as usize].len() {
                let (y, d) = self.reach[g as usize][i];
                self.offer(y, d + 1);
            }
        }
        let mut groups = Vec::with_capacity(self.touched.len());
        let mut cut = false;
        for &y in &self.touched {
            let d = self.best[y as usize];
            if d <= MAX_DEPTH {
                groups.push((y, d));
            } else if d == MAX_DEPTH + 1 {
                cut = true;
            }
            self.best[y as usize] = u8::MAX;
        }
        self.touched.clear();
        groups.sort_unstable();
        Effective { groups, cut }
    }

    fn offer(&mut self, y: u32, d: u8) {
        let best = &mut self.best[y as usize];
        if *best == u8::MAX {
            self.touched.push(y);
        }
        if d < *best {
            *best = d;
        }
    }
}

/// Direct grants per principal, over dense indices the caller chose: permissions and
/// ACL targets are plain numbers here.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// `perms[p]`: the super-permissions granted to `p` itself.
    pub perms: Vec<Vec<u32>>,
    /// `access[p]`: the ACL entries naming `p` itself.
    pub access: Vec<Vec<Access>>,
}

/// One ACL entry as it applies to one principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub target: u32,
    /// An interned scope (the caller's table; e.g. `*`).
    pub scope: u32,
    pub bits: u32,
}

/// Everything one principal can do, direct and inherited, one entry per target: the graph
/// keys an edge by its type and ends, so a permission reached through three groups is one
/// edge naming the three.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    pub effective: Effective,
    /// Sorted by permission.
    pub perms: Vec<Held>,
    /// Sorted by target.
    pub access: Vec<Reach>,
}

/// A super-permission a principal holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub perm: u32,
    /// Granted to the principal itself.
    pub direct: bool,
    /// `(depth, group)` it is inherited through, nearest first.
    pub via: Vec<(u8, u32)>,
}

/// What a principal may do to one ACL target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub target: u32,
    /// Every entry's bits together, whatever service each is scoped to (what Critical
    /// checks is per scope: see `org.rs`, which splits them again).
    pub bits: u32,
    pub direct: bool,
    /// `(depth, group)` it is inherited through, nearest first.
    pub via: Vec<(u8, u32)>,
    /// Each entry behind it: `(None` for direct or `Some(group), entry)`, sorted.
    pub entries: Vec<(Option<u32>, Access)>,
}

impl Reaches<'_> {
    /// Principal `p`'s effective groups and what it holds directly and through them.
    /// `live` false (a soft-deleted principal): only its direct grants, since Critical
    /// disconnects a deleted principal from its groups.
    pub fn resolve(&mut self, p: u32, live: bool, grants: &Grants) -> Resolved {
        let effective = if live {
            self.effective(p)
        } else {
            Effective::default()
        };
        let mut perms: Vec<Held> = Vec::new();
        let mut access: Vec<Reach> = Vec::new();
        let mut add_perm = |perm: u32, via: Option<(u8, u32)>| {
            let i = match perms.iter().position(|h| h.perm == perm) {
                Some(i) => i,
                None => {
                    perms.push(Held {
                        perm,
                        direct: false,
                        via: Vec::new(),
                    });
                    perms.len() - 1
                }
            };
            match via {
                None => perms[i].direct = true,
                Some(v) => perms[i].via.push(v),
            }
        };
        let from = |p: u32| grants.perms.get(p as usize).map_or(&[][..], Vec::as_slice);
        for &perm in from(p) {
            add_perm(perm, None);
        }
        for &(g, d) in &effective.groups {
            for &perm in from(g) {
                add_perm(perm, Some((d, g)));
            }
        }
        // Where each target's entry is: a principal may reach thousands of projects.
        let mut at: HashMap<u32, usize> = HashMap::new();
        let mut add_access = |a: Access, via: Option<(u8, u32)>| {
            // An entry granting no flag (`0`, `""`) grants no access: no edge for it.
            if a.bits == 0 {
                return;
            }
            let i = *at.entry(a.target).or_insert_with(|| {
                access.push(Reach {
                    target: a.target,
                    bits: 0,
                    direct: false,
                    via: Vec::new(),
                    entries: Vec::new(),
                });
                access.len() - 1
            });
            let r = &mut access[i];
            r.bits |= a.bits;
            r.entries.push((via.map(|(_, g)| g), a));
            match via {
                None => r.direct = true,
                Some(v) => r.via.push(v),
            }
        };
        let from = |p: u32| grants.access.get(p as usize).map_or(&[][..], Vec::as_slice);
        for &a in from(p) {
            add_access(a, None);
        }
        for &(g, d) in &effective.groups {
            for &a in from(g) {
                add_access(a, Some((d, g)));
            }
        }
        for h in &mut perms {
            h.via.sort_unstable();
            h.via.dedup();
        }
        for r in &mut access {
            r.via.sort_unstable();
            r.via.dedup();
            r.entries.sort_unstable();
            r.entries.dedup();
        }
        perms.sort_unstable_by_key(|h| h.perm);
        access.sort_unstable_by_key(|r| r.target);
        Resolved {
            effective,
            perms,
            access,
        }
    }
}

/// The same answer by walking from `p` itself, as a request-time resolver does: the
/// reference the tests and the benchmark compare [`Reaches::effective`] with.
#[cfg_attr(not(test), allow(dead_code))] // The plugin itself never needs it.
pub fn walk_from(graph: &Memberships, p: u32) -> Effective {
    let mut depth = std::collections::HashMap::new();
    depth.insert(p, 0u8);
    let mut queue = VecDeque::from([p]);
    let mut cut = false;
    while let Some(x) = queue.pop_front() {
        let d = depth[&x];
        for &y in graph.direct(x) {
            if depth.contains_key(&y) {
                continue;
            }
            if d == MAX_DEPTH {
                cut = true;
                continue;
            }
            depth.insert(y, d + 1);
            queue.push_back(y);
        }
    }
    let mut groups: Vec<(u32, u8)> = depth.into_iter().filter(|&(y, _)| y != p).collect();
    groups.sort_unstable();
    Effective { groups, cut }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Principals 0..users are users, the rest groups; `edges` are (member, group).
    fn graph(users: usize, groups: usize, edges: &[(u32, u32)]) -> Memberships {
        let mut g = Memberships::new((0..users + groups).map(|i| i >= users).collect());
        for &(m, to) in edges {
            g.add(m, to);
        }
        g
    }

    fn check_against_walk(g: &Memberships) {
        let mut reaches = g.reaches();
        for p in 0..g.len() as u32 {
            assert_eq!(reaches.effective(p), walk_from(g, p), "principal {p}");
        }
    }

    #[test]
    fn nested_groups_with_their_depths() {
        // u0 -> g2 -> g3 -> g4, u1 -> g3, u0 -> g4 directly too.
        let g = graph(2, 3, &[(0, 2), (2, 3), (3, 4), (1, 3), (0, 4)]);
        let mut r = g.reaches();
        assert_eq!(r.effective(0).groups, [(2, 1), (3, 2), (4, 1)]);
        assert_eq!(r.effective(1).groups, [(3, 1), (4, 2)]);
        assert_eq!(r.effective(2).groups, [(3, 1), (4, 2)]);
        assert_eq!(r.effective(4), Effective::default());
        check_against_walk(&g);
    }

    #[test]
    fn a_cycle_ends_and_is_reported() {
        // u0 -> g1 -> g2 -> g3 -> g1, and g4 on its own loop.
        let g = graph(1, 4, &[(0, 1), (1, 2), (2, 3), (3, 1), (4, 4)]);
        let mut r = g.reaches();
        assert_eq!(r.effective(0).groups, [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(
            r.effective(1).groups,
            [(2, 1), (3, 2)],
            "not a member of itself"
        );
        assert_eq!(g.cycles(), [vec![1, 2, 3], vec![4]]);
        check_against_walk(&g);
    }

    #[test]
    fn the_cut_is_at_ten_steps() {
        // A chain u0 -> g1 -> g2 -> ... -> g12.
        let edges: Vec<(u32, u32)> = (0..12).map(|i| (i, i + 1)).collect();
        let g = graph(1, 12, &edges);
        let mut r = g.reaches();
        let e = r.effective(0);
        assert_eq!(e.groups.len(), 10);
        assert_eq!(e.groups.last(), Some(&(10, 10)));
        assert!(e.cut);
        let e = r.effective(2);
        assert_eq!(e.groups.len(), 10, "g3..=g12");
        assert!(!e.cut);
        assert!(r.effective(1).cut, "g12 is 11 steps from g1");
        check_against_walk(&g);
    }

    #[test]
    fn a_short_path_beats_a_long_one_past_the_cut() {
        // u0 reaches g11 through a chain of 11 and directly: nothing is cut.
        let mut edges: Vec<(u32, u32)> = (0..11).map(|i| (i, i + 1)).collect();
        edges.push((0, 11));
        let g = graph(1, 11, &edges);
        let e = g.reaches().effective(0);
        assert!(!e.cut);
        assert!(e.groups.contains(&(11, 1)));
        check_against_walk(&g);
    }

    #[test]
    fn grants_are_inherited_and_folded_per_target() {
        // u0 -> g1 -> g2; u0 also directly in g2's ACL target 7.
        let g = graph(1, 2, &[(0, 1), (1, 2)]);
        let access = |target, scope, bits| Access {
            target,
            scope,
            bits,
        };
        let grants = Grants {
            perms: vec![vec![], vec![5], vec![5, 6]],
            access: vec![
                vec![access(7, 0, 1)],
                vec![],
                vec![access(7, 1, 16), access(8, 0, 7)],
            ],
        };
        let mut r = g.reaches();
        let out = r.resolve(0, true, &grants);
        assert_eq!(out.effective.groups, [(1, 1), (2, 2)]);
        assert_eq!(
            out.perms,
            [
                Held {
                    perm: 5,
                    direct: false,
                    via: vec![(1, 1), (2, 2)]
                },
                Held {
                    perm: 6,
                    direct: false,
                    via: vec![(2, 2)]
                }
            ]
        );
        assert_eq!(out.access.len(), 2);
        let seven = &out.access[0];
        assert_eq!((seven.target, seven.bits, seven.direct), (7, 17, true));
        assert_eq!(seven.via, [(2, 2)]);
        assert_eq!(
            seven.entries,
            [(None, access(7, 0, 1)), (Some(2), access(7, 1, 16))]
        );
        // An entry granting nothing adds no target and no entry.
        let mut nothing = grants.clone();
        nothing.access[0].push(access(9, 0, 0));
        let out = r.resolve(0, true, &nothing);
        assert_eq!(
            out.access.iter().map(|a| a.target).collect::<Vec<_>>(),
            [7, 8]
        );
        let dead = r.resolve(0, false, &grants);
        assert!(dead.effective.groups.is_empty());
        assert_eq!(
            dead.access.len(),
            1,
            "a deleted principal keeps its direct grants only"
        );
        assert!(dead.perms.is_empty());
    }

    #[test]
    fn random_graphs_agree_with_the_walk() {
        // A small deterministic generator: no dependency for one test.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as u32
        };
        for _ in 0..30 {
            let (users, groups) = (20, 25);
            let mut edges = Vec::new();
            for _ in 0..60 {
                let member = next((users + groups) as u64);
                let group = users as u32 + next(groups as u64);
                edges.push((member, group));
            }
            check_against_walk(&graph(users, groups, &edges));
        }
    }
}
