//! The model the checks compare the nodes with, computed from the simulator's own state and
//! never from what the nodes believe: which links really work, connected components, hop
//! distances, and the next hop a correct node must choose (docs/behaviour.md §5.3: fewest hops,
//! then the lowest (priority, id) first hop).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use clusterer_core::{ClusterId, Instant, LinkState, NodeId};

use crate::sim::{NodeStatus, RelayTracker, Sim};

/// An undirected graph over node ids.
pub type Graph = BTreeMap<NodeId, BTreeSet<NodeId>>;

impl Sim {
    /// Nodes that are running (not paused, crashed or not started).
    pub fn running_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Running)
            .map(|n| n.id)
            .collect()
    }

    /// The graph of links that really work now: both nodes running and enabled in
    /// `cluster`, each knowing the other as enabled, and no partition or constraint in
    /// either direction. A link need not be UP to work (it may wait for a probe).
    pub fn working_graph(&self, cluster: ClusterId) -> Graph {
        let mut usable: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for n in &self.nodes {
            if n.status != NodeStatus::Running {
                continue;
            }
            let Some(c) = n.endpoint.as_ref().and_then(|e| e.node().cluster(cluster)) else {
                continue;
            };
            if !c.local().enabled() {
                continue;
            }
            let peers = c
                .nodes()
                .iter()
                .filter(|r| r.enabled())
                .map(|r| r.id())
                .collect();
            usable.insert(n.id, peers);
        }
        let mut g = Graph::new();
        for (&a, peers) in &usable {
            let entry = g.entry(a).or_default();
            for &b in peers {
                let mutual = usable.get(&b).is_some_and(|p| p.contains(&a));
                if mutual && !self.net.is_blocked(a, b) && !self.net.is_blocked(b, a) {
                    entry.insert(b);
                }
            }
        }
        g
    }

    /// The graph of working links that both ends see UP (what the protocol can use now).
    pub fn up_graph(&self, cluster: ClusterId) -> Graph {
        let mut own: BTreeMap<NodeId, &[NodeId]> = BTreeMap::new();
        for n in &self.nodes {
            if n.status != NodeStatus::Running {
                continue;
            }
            if let Some(c) = n.endpoint.as_ref().and_then(|e| e.node().cluster(cluster)) {
                own.insert(n.id, c.local_adjacency());
            }
        }
        let mut g = Graph::new();
        for (&a, list) in &own {
            let entry = g.entry(a).or_default();
            for &b in *list {
                let mutual = own.get(&b).is_some_and(|l| l.contains(&a));
                if mutual && !self.net.is_blocked(a, b) && !self.net.is_blocked(b, a) {
                    entry.insert(b);
                }
            }
        }
        g
    }

    /// A counter that moves whenever the simulator changed something outside the nodes'
    /// own handling (a fault, a command, a start): checks recompute their model when it
    /// moves.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last time a routed packet was sent toward a node that will not answer — lost to
    /// a partition, queued for a paused node, or delivered to a node whose way back is cut
    /// by a one-way partition — without any send error (tracked with
    /// [`crate::sim::SimOptions::track_relays`]). Such traffic postpones the sender's
    /// keep-alive PINGs (docs/behaviour.md §3.2 rule 5: no PING while routable traffic was sent
    /// within `ping_interval`; liveness is then judged by TCP send errors only), so the
    /// sender cannot detect the loss while it lasts.
    pub fn last_silent_send(&self) -> Option<Instant> {
        self.last_silent_send
    }

    /// The hop counter of routed packets ([`crate::sim::SimOptions::track_relays`]).
    pub fn relays(&self) -> &RelayTracker {
        &self.relays
    }

    /// The hop counter, to set its limit or turn its log on.
    pub fn relays_mut(&mut self) -> &mut RelayTracker {
        &mut self.relays
    }

    /// The UNIX time (s) node `id`'s clock shows now.
    pub fn unix_now(&self, id: NodeId) -> Option<i64> {
        let &i = self.index.get(&id)?;
        Some(self.node_now(i).unix_time)
    }

    /// The highest UNIX time (s) node `id`'s clock showed while it ran, over every
    /// incarnation (a restart must stamp later than that to be taken as one, docs/wire.md §8).
    pub fn max_unix_shown(&self, id: NodeId) -> Option<i64> {
        let &i = self.index.get(&id)?;
        let n = &self.nodes[i];
        let now = if n.endpoint.is_some() {
            self.node_now(i).unix_time
        } else {
            i64::MIN
        };
        Some(n.max_unix_shown.max(now))
    }

    /// Node `id`'s clock offset (s).
    pub fn clock_offset(&self, id: NodeId) -> Option<i64> {
        let &i = self.index.get(&id)?;
        Some(self.nodes[i].clock.offset_s)
    }

    /// Sum of the topology versions of every running node in `cluster` (moves when any
    /// adjacency list changes).
    pub fn topology_signature(&self, cluster: ClusterId) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Running)
            .filter_map(|n| n.endpoint.as_ref()?.node().cluster(cluster))
            .fold(0u64, |acc, c| acc.wrapping_add(c.topology_version()))
    }

    /// Whether `a` and `b` accept each other's packets: both enabled in `cluster`, each
    /// knowing the other as enabled (a node drops packets from a peer it disabled or does
    /// not know, docs/behaviour.md §7, §8 — whatever path they took).
    pub fn mutually_admitted(&self, cluster: ClusterId, a: NodeId, b: NodeId) -> bool {
        let admits = |x: NodeId, y: NodeId| {
            self.node(x)
                .and_then(|n| n.cluster(cluster))
                .is_some_and(|c| c.local().enabled() && c.node(y).is_some_and(|r| r.enabled()))
        };
        admits(a, b) && admits(b, a)
    }

    /// Pairs (observer, subject) of running nodes where the observer still holds the
    /// subject's link-state stamp from before the subject's current incarnation (stored seq
    /// ≥ 0 with a timestamp older than the subject's start). The observer missed the
    /// subject's seq-0 updates and, by the wire contract (docs/wire.md §8, docs/behaviour.md §17 quirk
    /// #13, *mimic*), ignores its updates until its counter passes the old value.
    pub fn stale_incarnations(&self, cluster: ClusterId) -> Vec<(NodeId, NodeId)> {
        let started: BTreeMap<NodeId, i64> = self
            .nodes
            .iter()
            .filter(|n| n.endpoint.is_some())
            .map(|n| (n.id, n.started_unix))
            .collect();
        let mut out = Vec::new();
        for n in &self.nodes {
            if n.status != NodeStatus::Running {
                continue;
            }
            let Some(c) = n.endpoint.as_ref().and_then(|e| e.node().cluster(cluster)) else {
                continue;
            };
            for r in c.nodes() {
                let Some(&start) = started.get(&r.id()) else {
                    continue;
                };
                let stamp = c.ls_stamp(r.id()).unwrap_or_default();
                if stamp.seq >= 0 && i64::from(stamp.timestamp) < start {
                    out.push((n.id, r.id()));
                }
            }
        }
        out
    }

    /// Whether `a` and `b` both see their direct link UP.
    pub fn link_up_both(&self, cluster: ClusterId, a: NodeId, b: NodeId) -> bool {
        self.link_state(a, cluster, b) == Some(LinkState::Up)
            && self.link_state(b, cluster, a) == Some(LinkState::Up)
    }
}

/// Connected components of `g`, each sorted, ordered by their smallest id.
pub fn components(g: &Graph) -> Vec<Vec<NodeId>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &start in g.keys() {
        if !seen.insert(start) {
            continue;
        }
        let mut comp = vec![start];
        let mut queue = VecDeque::from([start]);
        while let Some(x) = queue.pop_front() {
            for &y in g.get(&x).into_iter().flatten() {
                if seen.insert(y) {
                    comp.push(y);
                    queue.push_back(y);
                }
            }
        }
        comp.sort_unstable();
        out.push(comp);
    }
    out
}

/// Hop distances from `from` to every node it reaches in `g` (itself at 0).
pub fn distances(g: &Graph, from: NodeId) -> BTreeMap<NodeId, u32> {
    let mut dist = BTreeMap::from([(from, 0u32)]);
    let mut queue = VecDeque::from([from]);
    while let Some(x) = queue.pop_front() {
        let d = dist[&x];
        for &y in g.get(&x).into_iter().flatten() {
            if let std::collections::btree_map::Entry::Vacant(e) = dist.entry(y) {
                e.insert(d + 1);
                queue.push_back(y);
            }
        }
    }
    dist
}

/// The next hop `from` must use toward `dest` in `g`: among its neighbours on a shortest
/// path (one hop closer to `dest`), the one with the lowest (priority, id); `None` when
/// unreachable. `priority` gives the priority `from` knows for a node. Computed from the
/// distances to `dest`, independently of the core's breadth-first search.
pub fn expected_next_hop(
    g: &Graph,
    to_dest: &BTreeMap<NodeId, u32>,
    priority: impl Fn(NodeId) -> i32,
    from: NodeId,
) -> Option<NodeId> {
    let d = *to_dest.get(&from)?;
    if d == 0 {
        return None;
    }
    g.get(&from)?
        .iter()
        .filter(|n| to_dest.get(n) == Some(&(d - 1)))
        .min_by_key(|&&n| (priority(n), n))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn graph(edges: &[(u32, u32)]) -> Graph {
        let mut g = Graph::new();
        for &(a, b) in edges {
            g.entry(n(a)).or_default().insert(n(b));
            g.entry(n(b)).or_default().insert(n(a));
        }
        g
    }

    #[test]
    fn next_hop_is_on_a_shortest_path_with_the_best_priority() {
        // 1 reaches 4 over 2 or 3 in two hops, or over 5–6 in three.
        let g = graph(&[(1, 2), (1, 3), (2, 4), (3, 4), (1, 5), (5, 6), (6, 4)]);
        let to4 = distances(&g, n(4));
        assert_eq!(expected_next_hop(&g, &to4, |_| 50, n(1)), Some(n(2)));
        let prio = |x: NodeId| if x == n(3) { 10 } else { 50 };
        assert_eq!(expected_next_hop(&g, &to4, prio, n(1)), Some(n(3)));
        assert_eq!(expected_next_hop(&g, &to4, |_| 50, n(4)), None);
        assert_eq!(components(&g).len(), 1);
        let split = graph(&[(1, 2), (3, 4)]);
        assert_eq!(components(&split), vec![vec![n(1), n(2)], vec![n(3), n(4)]]);
    }
}
