//! Topology gossip (docs/behaviour.md §4): the [`Topology`] state machine of one cluster.
//!
//! The machine owns what the local node knows of the cluster's shape: its own UP links and
//! update counters, every other node's gossiped adjacency list with the (seq, timestamp)
//! stamps and anti-replay windows of docs/wire.md §8, the topology version, and the route table
//! computed from all of it (docs/behaviour.md §5.3, cached per version). Its inputs are plain
//! values — a received LS_UPDATE or FULL_TOP_UPDATE, a local link that came up or went
//! down — and its outputs say what the coordinator must do: whether reachability may have
//! changed, which hint about our own link a peer gave, which nodes asked to be probed.
//! Flooding, probing and sending are the coordinator's; the machine never builds a packet
//! and never reads a link state.

use alloc::vec::Vec;

use crate::config::DbMode;
use crate::id::NodeId;
use crate::message::{FullTopUpdate, LinkUpdate, LsUpdate, MAX_NODES, NodeInfo, TopologyEntry};
use crate::output::DropReason;
use crate::route::{Route, RouteNode, RouteTable};
use crate::stamp::{Freshness, SeqStamp};

/// What the local node knows of one other node's links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTopology {
    id: NodeId,
    /// Next-hop tie-breaker of the node (routes prefer lower first hops).
    priority: i32,
    /// The node's UP links as it reported them, most recently added first.
    adjacency: Vec<NodeId>,
    ls: SeqStamp,
    top: SeqStamp,
    /// LS_UPDATE seqs seen below the highest: bit i = seq `ls.seq − i` (anti-replay window).
    ls_window: u64,
    /// Per neighbour of this node: the seq of the last LS_UPDATE applied about it.
    ls_applied: Vec<(NodeId, i32)>,
    /// Seq of the last full adjacency snapshot applied (FULL_TOP_UPDATE entry).
    ls_floor: i32,
}

/// What to do with a received LS_UPDATE (see [`NodeTopology::ls_verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LsVerdict {
    /// Seen before or too old: drop, do not flood.
    Drop,
    /// First time seen: flood it; apply it when `apply`.
    Take {
        /// Newer than what is known about that neighbour.
        apply: bool,
    },
}

impl NodeTopology {
    fn new(id: NodeId, priority: i32) -> Self {
        NodeTopology {
            id,
            priority,
            adjacency: Vec::new(),
            ls: SeqStamp::default(),
            top: SeqStamp::default(),
            ls_window: 0,
            ls_applied: Vec::new(),
            ls_floor: -1,
        }
    }

    /// The node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its UP links as gossiped, most recently added first.
    pub fn adjacency(&self) -> &[NodeId] {
        &self.adjacency
    }

    /// The stored LS (seq, timestamp) pair.
    pub fn ls_stamp(&self) -> SeqStamp {
        self.ls
    }

    /// Classifies an LS_UPDATE (seq, timestamp) about `neighbour` from this node.
    ///
    /// All of a node's link changes share one counter, so an update overtaken on the way by
    /// a newer one about *another* link is still news. OpenSIPS drops it as stale and the
    /// adjacency list stays wrong while the links stay up; here a 64-entry window of seen
    /// seqs decides whether it was seen (drop) or not (flood), and a per-neighbour counter
    /// decides whether it is newer than what we know about that link (apply).
    fn ls_verdict(&mut self, seq: i32, timestamp: i32, neighbour: NodeId) -> LsVerdict {
        let before = self.ls.seq;
        let verdict = match self.ls.check(seq, timestamp, false) {
            fresh @ (Freshness::Fresh | Freshness::Restarted) => {
                self.ls_moved(fresh, before);
                LsVerdict::Take { apply: true }
            }
            Freshness::Equal => LsVerdict::Drop,
            Freshness::Stale => {
                let offset = before.wrapping_sub(seq);
                let known = timestamp >= self.ls.incarnation && (1..64).contains(&offset);
                match u32::try_from(offset) {
                    Ok(bit) if known && self.ls_window & (1u64 << bit) == 0 => {
                        self.ls_window |= 1u64 << bit;
                        let last = self
                            .ls_applied
                            .iter()
                            .find(|(n, _)| *n == neighbour)
                            .map(|(_, s)| *s);
                        LsVerdict::Take {
                            apply: seq > self.ls_floor && last.is_none_or(|l| seq > l),
                        }
                    }
                    _ => LsVerdict::Drop,
                }
            }
        };
        if let LsVerdict::Take { apply: true } = verdict {
            match self.ls_applied.iter_mut().find(|(n, _)| *n == neighbour) {
                Some(entry) => entry.1 = seq,
                None => self.ls_applied.push((neighbour, seq)),
            }
        }
        verdict
    }

    /// Moves the window after the stored ls pair advanced from seq `before` (`Fresh`) or
    /// the node restarted (`Restarted`: everything known about its links is void).
    fn ls_moved(&mut self, how: Freshness, before: i32) {
        match how {
            Freshness::Fresh => {
                let shift = u32::try_from(self.ls.seq.wrapping_sub(before)).unwrap_or(64);
                self.ls_window = if before < 0 || shift >= 64 {
                    1
                } else {
                    (self.ls_window << shift) | 1
                };
            }
            Freshness::Restarted => {
                self.ls_window = 1;
                self.ls_applied.clear();
                self.ls_floor = -1;
            }
            Freshness::Stale | Freshness::Equal => {}
        }
    }

    /// The node restarted at `incarnation` (UNIX seconds) and has sent no LS_UPDATE since:
    /// its link-state counter and the windows over it start again; third-party entries
    /// older than `incarnation` are stale from now on.
    fn restart_ls(&mut self, incarnation: i32) {
        self.ls = SeqStamp {
            incarnation,
            ..SeqStamp::default()
        };
        self.ls_window = 0;
        self.ls_applied.clear();
        self.ls_floor = -1;
    }

    /// Records that a full adjacency list as of `seq` was applied (FULL_TOP_UPDATE entry):
    /// older LS_UPDATEs no longer apply.
    fn ls_snapshot(&mut self, seq: i32) {
        self.ls_floor = self.ls_floor.max(seq);
    }
}

/// What an accepted LS_UPDATE asks of the coordinator (it floods the update in any case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LsEffect {
    /// The update is about our own link with its originator, who sees it in this state:
    /// when our link disagrees, probe the originator again (§3.3).
    pub own_link: Option<LinkUpdate>,
    /// An adjacency list changed: reachability may have changed.
    pub changed: bool,
}

/// How one node describes another in a FULL_TOP_UPDATE it originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// Its description, when the destination does not know the node yet.
    pub info: Option<NodeInfo>,
    /// Whether our own link to it is UP (our id is then added to its list).
    pub up: bool,
}

/// The topology of one cluster as the local node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    me: NodeId,
    /// Own UP links, most recently added first.
    local: Vec<NodeId>,
    /// Own LS_UPDATE counter.
    ls: SeqStamp,
    /// Own FULL_TOP_UPDATE counter.
    top: SeqStamp,
    /// Every other node, in node-list order.
    nodes: Vec<NodeTopology>,
    version: u64,
    routes: RouteTable,
    routes_version: u64,
}

impl Topology {
    /// The topology of local node `me` knowing no other node yet.
    pub fn new(me: NodeId) -> Self {
        Topology {
            me,
            local: Vec::new(),
            ls: SeqStamp::default(),
            top: SeqStamp::default(),
            nodes: Vec::new(),
            version: 0,
            routes: RouteTable::default(),
            routes_version: u64::MAX,
        }
    }

    /// Increases on every change of any adjacency list.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The local node's UP links, most recently added first.
    pub fn local_adjacency(&self) -> &[NodeId] {
        &self.local
    }

    /// The local node's LS_UPDATE counter.
    pub fn local_ls(&self) -> SeqStamp {
        self.ls
    }

    /// What we know of `id`'s links.
    pub fn node(&self, id: NodeId) -> Option<&NodeTopology> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut NodeTopology> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    fn bump(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    /// A node joins the node list at `index` (the coordinator keeps both lists in the same
    /// order), knowing nothing of its links yet.
    pub fn insert_node(&mut self, index: usize, id: NodeId, priority: i32) {
        self.nodes.insert(index, NodeTopology::new(id, priority));
    }

    /// A node is forgotten: its entry and every link to it go.
    pub fn remove_node(&mut self, id: NodeId) {
        self.nodes.retain(|n| n.id != id);
        self.local.retain(|&a| a != id);
        for n in &mut self.nodes {
            n.adjacency.retain(|&a| a != id);
        }
        self.bump();
    }

    /// The node list was provisioned anew (`clusterer_reload`): every remote entry and the
    /// local links start again; the local counters are kept so peers keep accepting our
    /// updates.
    pub fn reset(&mut self, nodes: impl IntoIterator<Item = (NodeId, i32)>) {
        self.local.clear();
        self.nodes = nodes
            .into_iter()
            .map(|(id, priority)| NodeTopology::new(id, priority))
            .collect();
        self.bump();
    }

    /// Our link to `id` came UP. Returns `true` when the local list changed.
    pub fn local_link_up(&mut self, id: NodeId) -> bool {
        if self.local.contains(&id) {
            return false;
        }
        self.local.insert(0, id);
        self.bump();
        true
    }

    /// Our link to `id` left UP. Returns `true` when the local list changed.
    pub fn local_link_down(&mut self, id: NodeId) -> bool {
        let before = self.local.len();
        self.local.retain(|&a| a != id);
        if self.local.len() == before {
            return false;
        }
        self.bump();
        true
    }

    /// Adds `y` to `x`'s adjacency list (front) if missing. Returns `true` on change. A
    /// list never holds more than [`MAX_NODES`] + 1 ids (every other node and us), whatever
    /// a peer reports.
    fn add_link(&mut self, x: NodeId, y: NodeId) -> bool {
        let Some(n) = self.node_mut(x) else {
            return false;
        };
        if n.adjacency.contains(&y) || n.adjacency.len() > MAX_NODES {
            return false;
        }
        n.adjacency.insert(0, y);
        self.bump();
        true
    }

    /// Removes `y` from `x`'s adjacency list. Returns `true` on change.
    fn remove_link(&mut self, x: NodeId, y: NodeId) -> bool {
        let Some(n) = self.node_mut(x) else {
            return false;
        };
        let before = n.adjacency.len();
        n.adjacency.retain(|&a| a != y);
        if n.adjacency.len() == before {
            return false;
        }
        self.bump();
        true
    }

    /// The route to `dest`: with rerouting, the breadth-first table of §5.3 (recomputed when
    /// the topology changed since the last computation); without, direct links only
    /// (docs/behaviour.md §5.4, the documented intent).
    pub fn route(&mut self, dest: NodeId, rerouting: bool) -> Option<Route> {
        if rerouting {
            self.refresh_routes();
        }
        self.cached_route(dest, rerouting)
    }

    /// The route to `dest` as [`Self::route`] says, from the table as last computed (call
    /// [`Self::refresh_routes`] first).
    pub(crate) fn cached_route(&self, dest: NodeId, rerouting: bool) -> Option<Route> {
        if rerouting {
            self.routes.get(dest)
        } else {
            self.local.contains(&dest).then_some(Route {
                next_hop: dest,
                hops: 1,
            })
        }
    }

    /// The whole route table (rerouting on), recomputed if needed.
    pub fn routes(&mut self) -> &RouteTable {
        self.refresh_routes();
        &self.routes
    }

    /// Recomputes the route table when the topology changed since the last computation.
    pub(crate) fn refresh_routes(&mut self) {
        if self.routes_version == self.version {
            return;
        }
        let nodes: Vec<RouteNode<'_>> = self
            .nodes
            .iter()
            .map(|n| RouteNode {
                id: n.id,
                priority: n.priority,
                adjacency: &n.adjacency,
            })
            .collect();
        self.routes = RouteTable::compute(self.me, &self.local, &nodes);
        self.routes_version = self.version;
    }

    /// LS_UPDATE from `origin` (docs/behaviour.md §4.2). The coordinator floods an accepted
    /// update and acts on the [`LsEffect`].
    ///
    /// # Errors
    /// [`DropReason::UnknownNeighbour`] (db_mode 1: the update names a node we do not know;
    /// nothing stored, so a FULL_TOP_UPDATE with the same state still applies),
    /// [`DropReason::UnknownSource`], [`DropReason::StaleUpdate`] (seen before or older;
    /// the anti-replay window may have recorded the seq).
    pub fn on_ls_update(
        &mut self,
        db_mode: DbMode,
        origin: NodeId,
        u: &LsUpdate,
    ) -> Result<LsEffect, DropReason> {
        // With db_mode 1 an update about a node we do not know is dropped. With discovery
        // the node is most likely being learned right now: keep the link (routes ignore
        // unknown ids) and flood, where OpenSIPS drops the update and the list stays wrong
        // while the links stay up.
        if u.neighbour != self.me && self.node(u.neighbour).is_none() && db_mode == DbMode::Database
        {
            return Err(DropReason::UnknownNeighbour);
        }
        let Some(o) = self.node_mut(origin) else {
            return Err(DropReason::UnknownSource);
        };
        let LsVerdict::Take { apply } = o.ls_verdict(u.seq, u.timestamp, u.neighbour) else {
            return Err(DropReason::StaleUpdate);
        };
        let mut effect = LsEffect::default();
        if !apply {
            // News for others (they may lack it), but older than what we know here.
        } else if u.neighbour == self.me {
            effect.own_link = Some(u.state);
        } else {
            effect.changed = match u.state {
                LinkUpdate::Down => self.remove_link(origin, u.neighbour),
                LinkUpdate::Up => self.add_link(origin, u.neighbour),
            };
        }
        Ok(effect)
    }

    /// First step of a FULL_TOP_UPDATE from `origin` (docs/behaviour.md §4.3): validates its
    /// own (seq, timestamp). Returns whether the originator restarted.
    ///
    /// # Errors
    /// [`DropReason::UnknownSource`], [`DropReason::StaleUpdate`]; nothing changed.
    pub fn check_full_top_update(
        &mut self,
        origin: NodeId,
        u: &FullTopUpdate,
    ) -> Result<bool, DropReason> {
        let Some(o) = self.node_mut(origin) else {
            return Err(DropReason::UnknownSource);
        };
        match o.top.check(u.seq, u.timestamp, false) {
            Freshness::Fresh => Ok(false),
            Freshness::Restarted => Ok(true),
            Freshness::Stale | Freshness::Equal => Err(DropReason::StaleUpdate),
        }
    }

    /// Second step, after [`Self::check_full_top_update`] and after the coordinator learned
    /// the described unknown nodes (db_mode 0): applies every entry. Returns the nodes whose
    /// entry lists us (the coordinator probes those whose link is DOWN).
    pub fn apply_full_top_update(
        &mut self,
        db_mode: DbMode,
        origin: NodeId,
        restarted: bool,
        u: &FullTopUpdate,
    ) -> Vec<NodeId> {
        let me = self.me;
        let mut listing_me = Vec::new();
        for (index, e) in u.entries.iter().enumerate() {
            if e.node == me {
                continue;
            }
            let Some(n) = self.node_mut(e.node) else {
                continue;
            };
            // Every entry is validated, the originator's own too (OpenSIPS stores that one
            // unvalidated, quirk #15, which can lower the stored counter and re-open the
            // door to stale copies). The originator's own list is authoritative for its
            // counter: applied when not older (an equal one repairs a list that missed an
            // update) and it bounds which older LS_UPDATEs still apply. Another node's list
            // as the originator knows it is applied only when newer.
            let third_party = index != 0;
            if restarted && !third_party && e.node == origin && e.ls_seq == -1 {
                // The originator restarted (its topology counter started again) and has not
                // sent an LS_UPDATE since (its entry says (−1, 0)): its own list is current,
                // whatever counter we hold from its previous life. Forget that counter, or
                // the list would be ignored until the new counter passes the old one
                // (quirk #13; a restarted node whose first link has no other neighbour to
                // tell sends no LS_UPDATE).
                n.restart_ls(u.timestamp);
            }
            let before = n.ls.seq;
            // A list we built from LS_UPDATEs alone (no full list since we learned of the
            // node: `ls_floor` < 0) misses the links that changed before; another node's
            // full list at the same counter repairs it (found by the simulation campaign:
            // a node that restarted learned a peer from its next LS_UPDATE only).
            let partial = n.ls_floor < 0;
            match n.ls.check(e.ls_seq, e.ls_timestamp, third_party) {
                Freshness::Stale => continue,
                Freshness::Equal if third_party && !partial => continue,
                how => n.ls_moved(how, before),
            }
            if !third_party || partial {
                n.ls_snapshot(e.ls_seq);
            }
            let mut listed_me = false;
            for &y in &e.neighbours {
                if y == me {
                    listed_me = true;
                } else if self.node(y).is_some() || db_mode == DbMode::Discovery {
                    self.add_link(e.node, y);
                }
            }
            if listed_me {
                listing_me.push(e.node);
            }
            let stale: Vec<NodeId> = self
                .node(e.node)
                .map(|n| {
                    n.adjacency
                        .iter()
                        .copied()
                        .filter(|z| *z != origin && !e.neighbours.contains(z))
                        .collect()
                })
                .unwrap_or_default();
            for z in stale {
                self.remove_link(e.node, z);
            }
        }
        listing_me
    }

    /// Stamps an LS_UPDATE the local node originates, at UNIX time `unix`; `None` when
    /// `told` is false (no neighbour to tell).
    ///
    /// OpenSIPS leaves the counter alone when nobody is told. Once the counter has gone out
    /// (seq ≥ 0) we count the change anyway: the FULL_TOP_UPDATE that follows a link-up
    /// carries our entry with this counter, and a third party that holds our previous
    /// counter (with the previous links) accepts the entry only when the counter is newer.
    /// Without it a node's first link after losing all others stayed unknown to third
    /// parties until some later change (found by the simulation campaign, gossip-gap runs).
    /// Before that, seq 0 is kept for the first LS_UPDATE on the wire: it tells peers that
    /// we restarted.
    pub fn originate_ls_update(&mut self, unix: i32, told: bool) -> Option<SeqStamp> {
        if !told {
            if self.ls.seq >= 0 {
                self.ls.next(unix);
            }
            return None;
        }
        Some(self.ls.next(unix))
    }

    /// `id`'s neighbours as the local node tells them (FULL_TOP_UPDATE entries,
    /// `clusterer_list_topology`): its gossiped list — which never holds the local node —
    /// plus the local node when our link to it is `up`.
    pub fn listed_neighbours(&self, id: NodeId, up: bool) -> Vec<NodeId> {
        let mut neighbours: Vec<NodeId> = self
            .node(id)
            .map(|n| {
                n.adjacency
                    .iter()
                    .copied()
                    .filter(|&x| x != self.me)
                    .collect()
            })
            .unwrap_or_default();
        if up {
            neighbours.push(self.me);
        }
        neighbours
    }

    /// The entries and stamp of a FULL_TOP_UPDATE the local node originates to `dest`
    /// (docs/wire.md §7.4): the local node first (no description), then every other known node
    /// except `dest`, in node-list order, as `describe` says. Our own link to a node is not
    /// in its stored list (lists never hold the local node); it is added when UP, as
    /// `clusterer_list_topology` shows it, or the receiver and everyone it tells would drop
    /// that link from the node's list.
    pub fn originate_full_top_update(
        &mut self,
        dest: NodeId,
        unix: i32,
        mut describe: impl FnMut(NodeId) -> Described,
    ) -> (SeqStamp, Vec<TopologyEntry>) {
        let mut entries = Vec::with_capacity(self.nodes.len());
        entries.push(TopologyEntry {
            node: self.me,
            description: None,
            ls_seq: self.ls.seq,
            ls_timestamp: self.ls.timestamp,
            neighbours: self.local.clone(),
        });
        for n in self.nodes.iter().filter(|n| n.id != dest) {
            let d = describe(n.id);
            let neighbours = self.listed_neighbours(n.id, d.up);
            entries.push(TopologyEntry {
                node: n.id,
                description: d.info,
                ls_seq: n.ls.seq,
                ls_timestamp: n.ls.timestamp,
                neighbours,
            });
        }
        (self.top.next(unix), entries)
    }
}

#[cfg(test)]
mod tests {
    //! The gossip rules of docs/behaviour.md §4 and the routing of §5.3 on the machine alone.

    use alloc::vec;

    use super::*;

    fn n(id: u32) -> NodeId {
        NodeId::new(id).unwrap()
    }

    /// Local node 1 knowing nodes 2..=count (priority 50 each).
    fn topology(count: u32) -> Topology {
        let mut t = Topology::new(n(1));
        for id in 2..=count {
            t.insert_node(t.nodes.len(), n(id), 50);
        }
        t
    }

    fn ls(seq: i32, ts: i32, neighbour: u32, state: LinkUpdate) -> LsUpdate {
        LsUpdate {
            seq,
            timestamp: ts,
            neighbour: n(neighbour),
            state,
            path: vec![],
        }
    }

    fn entry(node: u32, seq: i32, ts: i32, neighbours: &[u32]) -> TopologyEntry {
        TopologyEntry {
            node: n(node),
            description: None,
            ls_seq: seq,
            ls_timestamp: ts,
            neighbours: neighbours.iter().map(|&i| n(i)).collect(),
        }
    }

    fn full(seq: i32, ts: i32, entries: Vec<TopologyEntry>) -> FullTopUpdate {
        FullTopUpdate {
            seq,
            timestamp: ts,
            entries,
            path: vec![],
        }
    }

    fn adj(t: &Topology, id: u32) -> Vec<u32> {
        t.node(n(id))
            .map(|x| x.adjacency().iter().map(|i| i.get()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_ls_update_adds_and_removes_a_link_and_a_replay_is_stale() {
        let mut t = topology(3);
        let up = ls(0, 100, 3, LinkUpdate::Up);
        let e = t.on_ls_update(DbMode::Database, n(2), &up).unwrap();
        assert_eq!(
            e,
            LsEffect {
                own_link: None,
                changed: true
            }
        );
        assert_eq!(adj(&t, 2), [3]);
        assert_eq!(
            t.on_ls_update(DbMode::Database, n(2), &up),
            Err(DropReason::StaleUpdate)
        );
        let down = ls(1, 100, 3, LinkUpdate::Down);
        assert!(
            t.on_ls_update(DbMode::Database, n(2), &down)
                .unwrap()
                .changed
        );
        assert!(adj(&t, 2).is_empty());
    }

    #[test]
    fn an_update_overtaken_by_a_newer_one_about_another_link_still_applies() {
        let mut t = topology(4);
        t.on_ls_update(DbMode::Database, n(2), &ls(1, 100, 4, LinkUpdate::Up))
            .unwrap();
        // seq 0 about link 2-3 arrives late: not seen yet, so flooded and applied.
        let late = t
            .on_ls_update(DbMode::Database, n(2), &ls(0, 100, 3, LinkUpdate::Up))
            .unwrap();
        assert!(late.changed);
        assert_eq!(adj(&t, 2), [3, 4]);
        // Its second copy is dropped.
        assert_eq!(
            t.on_ls_update(DbMode::Database, n(2), &ls(0, 100, 3, LinkUpdate::Up)),
            Err(DropReason::StaleUpdate)
        );
    }

    #[test]
    fn an_update_about_our_own_link_is_a_hint_not_a_list_change() {
        let mut t = topology(2);
        let e = t
            .on_ls_update(DbMode::Database, n(2), &ls(0, 100, 1, LinkUpdate::Down))
            .unwrap();
        assert_eq!(
            e,
            LsEffect {
                own_link: Some(LinkUpdate::Down),
                changed: false
            }
        );
    }

    #[test]
    fn db_mode_1_drops_updates_naming_an_unknown_node_discovery_keeps_them() {
        let mut t = topology(2);
        let u = ls(0, 100, 9, LinkUpdate::Up);
        assert_eq!(
            t.on_ls_update(DbMode::Database, n(2), &u),
            Err(DropReason::UnknownNeighbour)
        );
        assert!(t.on_ls_update(DbMode::Discovery, n(2), &u).unwrap().changed);
        assert_eq!(
            t.on_ls_update(DbMode::Database, n(9), &ls(0, 1, 2, LinkUpdate::Up)),
            Err(DropReason::UnknownSource)
        );
    }

    #[test]
    fn a_full_top_update_replaces_lists_and_names_the_nodes_that_list_us() {
        let mut t = topology(4);
        t.on_ls_update(DbMode::Database, n(3), &ls(0, 100, 4, LinkUpdate::Up))
            .unwrap();
        let u = full(
            0,
            100,
            vec![entry(2, 0, 100, &[1, 3]), entry(3, 1, 100, &[2])],
        );
        assert_eq!(t.check_full_top_update(n(2), &u), Ok(false));
        let listing = t.apply_full_top_update(DbMode::Database, n(2), false, &u);
        assert_eq!(listing, [n(2)]);
        assert_eq!(adj(&t, 2), [3]);
        // Node 3's newer list drops its link to 4.
        assert_eq!(adj(&t, 3), [2]);
        // The same update again is stale.
        assert_eq!(
            t.check_full_top_update(n(2), &u),
            Err(DropReason::StaleUpdate)
        );
    }

    #[test]
    fn a_restarted_originator_without_ls_updates_is_believed_at_once() {
        let mut t = topology(3);
        t.on_ls_update(DbMode::Database, n(2), &ls(40, 100, 3, LinkUpdate::Up))
            .unwrap();
        let first = full(5, 100, vec![entry(2, 40, 100, &[3])]);
        t.check_full_top_update(n(2), &first).unwrap();
        t.apply_full_top_update(DbMode::Database, n(2), false, &first);
        // Node 2 restarts: FULL_TOP counter from 0, its own entry (−1, 0), no links.
        let again = full(0, 200, vec![entry(2, -1, 0, &[])]);
        assert_eq!(t.check_full_top_update(n(2), &again), Ok(true));
        t.apply_full_top_update(DbMode::Database, n(2), true, &again);
        assert!(adj(&t, 2).is_empty());
    }

    #[test]
    fn routes_take_the_fewest_hops_then_the_best_first_hop() {
        // 1-2, 1-3, 2-4, 3-4: two two-hop routes to 4; 2 and 3 tie on priority, 2 wins by id.
        let mut t = topology(4);
        t.local_link_up(n(3));
        t.local_link_up(n(2));
        for (o, y) in [(2, 4), (3, 4), (4, 2), (4, 3)] {
            t.on_ls_update(DbMode::Database, n(o), &ls(0, 100, y, LinkUpdate::Up))
                .ok();
            let s = t.node(n(o)).unwrap().ls_stamp().seq;
            t.on_ls_update(DbMode::Database, n(o), &ls(s + 1, 100, y, LinkUpdate::Up))
                .ok();
        }
        let r = t.route(n(4), true).unwrap();
        assert_eq!((r.next_hop, r.hops), (n(2), 2));
        assert_eq!(
            t.route(n(4), false),
            None,
            "direct links only without rerouting"
        );
        assert_eq!(t.route(n(3), false).map(|r| r.next_hop), Some(n(3)));
        t.local_link_down(n(2));
        assert_eq!(t.route(n(4), true).map(|r| r.next_hop), Some(n(3)));
    }

    #[test]
    fn removing_a_node_purges_every_link_to_it() {
        let mut t = topology(3);
        t.local_link_up(n(3));
        t.on_ls_update(DbMode::Database, n(2), &ls(0, 100, 3, LinkUpdate::Up))
            .unwrap();
        let v = t.version();
        t.remove_node(n(3));
        assert!(t.node(n(3)).is_none());
        assert!(adj(&t, 2).is_empty());
        assert!(t.local_adjacency().is_empty());
        assert!(t.version() > v);
    }

    #[test]
    fn the_ls_counter_moves_without_listeners_only_once_it_went_out() {
        let mut t = topology(2);
        assert_eq!(t.originate_ls_update(100, false), None);
        assert_eq!(
            t.local_ls().seq,
            -1,
            "seq 0 is kept for the first update on the wire"
        );
        assert_eq!(t.originate_ls_update(100, true).map(|s| s.seq), Some(0));
        assert_eq!(t.originate_ls_update(101, false), None);
        assert_eq!(t.local_ls().seq, 1);
    }

    #[test]
    fn an_originated_full_top_update_adds_us_to_the_lists_of_up_neighbours() {
        let mut t = topology(3);
        t.local_link_up(n(2));
        let (stamp, entries) = t.originate_full_top_update(n(3), 100, |id| Described {
            info: None,
            up: id == n(2),
        });
        assert_eq!(stamp.seq, 0);
        assert_eq!(
            entries.len(),
            2,
            "local node and node 2; not the destination"
        );
        assert_eq!(entries[0].neighbours, [n(2)]);
        assert_eq!(entries[1].neighbours, [n(1)]);
    }

    #[test]
    fn adjacency_lists_are_bounded_whatever_a_peer_reports() {
        let mut t = topology(2);
        let many: Vec<u32> = (3..300).collect();
        let u = full(0, 100, vec![entry(2, 0, 100, &many)]);
        t.check_full_top_update(n(2), &u).unwrap();
        t.apply_full_top_update(DbMode::Discovery, n(2), false, &u);
        assert!(adj(&t, 2).len() <= MAX_NODES + 1);
    }
}
