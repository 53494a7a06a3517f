//! The per-cluster node table (behaviour.md §1.2): the local node's record, the list of
//! other nodes with their links and gossiped adjacency, sequence state, the route cache and
//! the per-cluster capabilities and sharing tags. Read-only accessors here serve MI and API
//! queries.

use alloc::string::String;
use alloc::vec::Vec;

use crate::address::NodeAddress;
use crate::capability::{LocalCapability, RemoteCapability};
use crate::config::NodeConfig;
use crate::id::{ClusterId, NodeId};
use crate::link::{Link, LinkState};
use crate::route::{Route, RouteNode, RouteTable};
use crate::shtag::{SharingTag, SharingTags, ShtagSettings};
use crate::stamp::{Freshness, SeqStamp};

/// Another node of a cluster, as the local node knows it.
#[derive(Clone, Debug)]
pub struct RemoteNode {
    pub(crate) id: NodeId,
    pub(crate) db_id: Option<i64>,
    pub(crate) url: String,
    pub(crate) address: NodeAddress,
    pub(crate) sip_addr: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i32,
    pub(crate) no_ping_retries: u32,
    pub(crate) enabled: bool,
    pub(crate) link: Link,
    /// The node's UP links as it reported them, most recently added first.
    pub(crate) adjacency: Vec<NodeId>,
    pub(crate) ls: SeqStamp,
    pub(crate) top: SeqStamp,
    pub(crate) cap: SeqStamp,
    /// The ids listed in its last PONG (nodes it already knows).
    pub(crate) pong_list: Vec<NodeId>,
    /// Reachability as last reported through events.
    pub(crate) reachable: bool,
    /// Capabilities it advertises (learned from CAP_UPDATE).
    pub(crate) capabilities: Vec<RemoteCapability>,
    /// LS_UPDATE seqs seen below the highest: bit i = seq `ls.seq − i` (anti-replay window).
    pub(crate) ls_window: u64,
    /// Per neighbour of this node: the seq of the last LS_UPDATE applied about it.
    pub(crate) ls_applied: Vec<(NodeId, i32)>,
    /// Seq of the last full adjacency snapshot applied (FULL_TOP_UPDATE entry).
    pub(crate) ls_floor: i32,
}

/// What to do with a received LS_UPDATE (see [`RemoteNode::ls_verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LsVerdict {
    /// Seen before or too old: drop, do not flood.
    Drop,
    /// First time seen: flood it; apply it when `apply`.
    Take {
        /// Newer than what is known about that neighbour.
        apply: bool,
    },
}

impl RemoteNode {
    pub(crate) fn new(
        id: NodeId,
        url: String,
        address: NodeAddress,
        sip_addr: String,
        priority: i32,
        no_ping_retries: u32,
    ) -> Self {
        RemoteNode {
            id,
            db_id: None,
            url,
            address,
            sip_addr,
            description: None,
            priority,
            no_ping_retries,
            enabled: true,
            link: Link::new(),
            adjacency: Vec::new(),
            ls: SeqStamp::default(),
            top: SeqStamp::default(),
            cap: SeqStamp::default(),
            pong_list: Vec::new(),
            reachable: false,
            capabilities: Vec::new(),
            ls_window: 0,
            ls_applied: Vec::new(),
            ls_floor: -1,
        }
    }

    pub(crate) fn from_config(c: &NodeConfig, address: NodeAddress) -> Self {
        let mut n = RemoteNode::new(
            c.id,
            c.url.clone(),
            address,
            c.sip_addr.clone(),
            c.priority,
            c.no_ping_retries,
        );
        n.db_id = c.db_id;
        n.description = c.description.clone();
        n.enabled = c.enabled;
        n
    }

    /// Classifies an LS_UPDATE (seq, timestamp) about `neighbour` from this node.
    ///
    /// All of a node's link changes share one counter, so an update overtaken on the way by
    /// a newer one about *another* link is still news. OpenSIPS drops it as stale and the
    /// adjacency list stays wrong while the links stay up; here a 64-entry window of seen
    /// seqs decides whether it was seen (drop) or not (flood), and a per-neighbour counter
    /// decides whether it is newer than what we know about that link (apply).
    pub(crate) fn ls_verdict(&mut self, seq: i32, timestamp: i32, neighbour: NodeId) -> LsVerdict {
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
    pub(crate) fn ls_moved(&mut self, how: Freshness, before: i32) {
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
    pub(crate) fn restart_ls(&mut self, incarnation: i32) {
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
    pub(crate) fn ls_snapshot(&mut self, seq: i32) {
        self.ls_floor = self.ls_floor.max(seq);
    }

    /// Node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// DB row id (`None` = −1 in MI: provisioned by script or discovered).
    pub fn db_id(&self) -> Option<i64> {
        self.db_id
    }

    /// BIN URL as provisioned or announced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Parsed URL.
    pub fn address(&self) -> NodeAddress {
        self.address
    }

    /// SIP address (may be empty).
    pub fn sip_addr(&self) -> &str {
        &self.sip_addr
    }

    /// DB description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Priority (lower preferred as next hop).
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// Ping retries allowed.
    pub fn no_ping_retries(&self) -> u32 {
        self.no_ping_retries
    }

    /// Administrative state.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Direct link state.
    pub fn link_state(&self) -> LinkState {
        self.link.state()
    }

    /// The probing state of the direct link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Its UP links as gossiped, most recently added first.
    pub fn adjacency(&self) -> &[NodeId] {
        &self.adjacency
    }

    /// Its link-state (seq, timestamp) as last accepted.
    pub fn ls_stamp(&self) -> SeqStamp {
        self.ls
    }

    /// Whether it is reachable (has a next hop), as last evaluated.
    pub fn is_reachable(&self) -> bool {
        self.reachable
    }

    /// Capabilities it advertises.
    pub fn capabilities(&self) -> &[RemoteCapability] {
        &self.capabilities
    }
}

/// The local node's record in one cluster.
#[derive(Clone, Debug)]
pub struct LocalNode {
    pub(crate) id: NodeId,
    pub(crate) db_id: Option<i64>,
    pub(crate) url: String,
    pub(crate) address: NodeAddress,
    pub(crate) sip_addr: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i32,
    pub(crate) no_ping_retries: u32,
    pub(crate) seed: bool,
    pub(crate) enabled: bool,
    /// Own counters (start at −1).
    pub(crate) ls: SeqStamp,
    pub(crate) top: SeqStamp,
    /// Own CAP_UPDATE counter.
    pub(crate) cap: SeqStamp,
    /// Own UP links, most recently added first.
    pub(crate) adjacency: Vec<NodeId>,
}

impl LocalNode {
    pub(crate) fn from_config(c: &NodeConfig, address: NodeAddress) -> Self {
        LocalNode {
            id: c.id,
            db_id: c.db_id,
            url: c.url.clone(),
            address,
            sip_addr: c.sip_addr.clone(),
            description: c.description.clone(),
            priority: c.priority,
            no_ping_retries: c.no_ping_retries,
            seed: c.seed,
            enabled: c.enabled,
            ls: SeqStamp::default(),
            top: SeqStamp::default(),
            cap: SeqStamp::default(),
            adjacency: Vec::new(),
        }
    }

    /// Node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Own URL (selects the listening socket and the source IP of outgoing connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Parsed own URL.
    pub fn address(&self) -> NodeAddress {
        self.address
    }

    /// Own SIP address.
    pub fn sip_addr(&self) -> &str {
        &self.sip_addr
    }

    /// Own priority.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// `seed` flag.
    pub fn is_seed(&self) -> bool {
        self.seed
    }

    /// Administrative state of the local node in this cluster.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Own UP links, most recently added first.
    pub fn adjacency(&self) -> &[NodeId] {
        &self.adjacency
    }

    /// DB row id.
    pub fn db_id(&self) -> Option<i64> {
        self.db_id
    }

    /// DB description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// One cluster of the local node.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) id: ClusterId,
    pub(crate) local: LocalNode,
    /// Node list in OpenSIPS order: most recently inserted first.
    pub(crate) nodes: Vec<RemoteNode>,
    pub(crate) topology_version: u64,
    pub(crate) routes: RouteTable,
    pub(crate) routes_version: u64,
    /// Reachability changes waiting for event processing, in order.
    pub(crate) pending_node_events: Vec<(NodeId, bool)>,
    /// Local capabilities, most recently registered first.
    pub(crate) capabilities: Vec<LocalCapability>,
    /// Sharing tags of this cluster.
    pub(crate) shtags: SharingTags,
}

impl Cluster {
    pub(crate) fn new(id: ClusterId, local: LocalNode, shtags: ShtagSettings) -> Self {
        Cluster {
            id,
            local,
            nodes: Vec::new(),
            topology_version: 0,
            routes: RouteTable::default(),
            routes_version: u64::MAX,
            pending_node_events: Vec::new(),
            capabilities: Vec::new(),
            shtags: SharingTags::new([], shtags),
        }
    }

    /// Cluster id.
    pub fn id(&self) -> ClusterId {
        self.id
    }

    /// The local node's record.
    pub fn local(&self) -> &LocalNode {
        &self.local
    }

    /// Other nodes in list order (most recently added first).
    pub fn nodes(&self) -> &[RemoteNode] {
        &self.nodes
    }

    /// Local capabilities, most recently registered first (MI `clusterer_list_cap`).
    pub fn capabilities(&self) -> &[LocalCapability] {
        &self.capabilities
    }

    /// One local capability.
    pub fn capability(&self, name: &str) -> Option<&LocalCapability> {
        self.capabilities.iter().find(|c| c.name == name)
    }

    /// Sharing tags of this cluster.
    pub fn shtags(&self) -> &[SharingTag] {
        self.shtags.tags()
    }

    /// Another node by id.
    pub fn node(&self, id: NodeId) -> Option<&RemoteNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> Option<&mut RemoteNode> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// Increases on every change of any adjacency list.
    pub fn topology_version(&self) -> u64 {
        self.topology_version
    }

    /// Whether any known node of this cluster has `ip` as its URL address (the source-IP
    /// check of wire.md §9: flooded and relayed packets arrive from any member).
    pub fn is_member_ip(&self, ip: core::net::IpAddr) -> bool {
        self.nodes.iter().any(|n| n.address.ip() == ip)
    }

    pub(crate) fn bump_topology(&mut self) {
        self.topology_version = self.topology_version.wrapping_add(1);
    }

    /// Recomputes the route table when the topology changed since the last computation.
    pub(crate) fn refresh_routes(&mut self) {
        if self.routes_version == self.topology_version {
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
        self.routes = RouteTable::compute(self.local.id, &self.local.adjacency, &nodes);
        self.routes_version = self.topology_version;
    }

    /// The cached route to `dest` with rerouting on; call [`Cluster::refresh_routes`] first.
    pub(crate) fn cached_route(&self, dest: NodeId, rerouting: bool) -> Option<Route> {
        if rerouting {
            self.routes.get(dest)
        } else {
            // Direct links only (behaviour.md §5.4, the documented intent).
            self.local.adjacency.contains(&dest).then_some(Route {
                next_hop: dest,
                hops: 1,
            })
        }
    }

    /// Adds `y` to `x`'s adjacency list (front) if missing. Returns `true` on change. A
    /// list never holds more than [`MAX_NODES`](crate::message::MAX_NODES) + 1 ids (every
    /// other node and us), whatever a peer reports.
    pub(crate) fn add_link(&mut self, x: NodeId, y: NodeId) -> bool {
        let Some(n) = self.node_mut(x) else {
            return false;
        };
        if n.adjacency.contains(&y) || n.adjacency.len() > crate::message::MAX_NODES {
            return false;
        }
        n.adjacency.insert(0, y);
        self.bump_topology();
        true
    }

    /// Removes `y` from `x`'s adjacency list. Returns `true` on change.
    pub(crate) fn remove_link(&mut self, x: NodeId, y: NodeId) -> bool {
        let Some(n) = self.node_mut(x) else {
            return false;
        };
        let before = n.adjacency.len();
        n.adjacency.retain(|&a| a != y);
        if n.adjacency.len() == before {
            return false;
        }
        self.bump_topology();
        true
    }

    /// The enabled nodes we have a route to (routes refreshed first).
    pub(crate) fn reachable_nodes(&mut self, rerouting: bool) -> Vec<NodeId> {
        self.refresh_routes();
        self.nodes
            .iter()
            .filter(|n| n.enabled && self.cached_route(n.id, rerouting).is_some())
            .map(|n| n.id)
            .collect()
    }

    /// UP neighbours of the local node, in list order.
    pub(crate) fn up_neighbours(&self) -> impl Iterator<Item = &RemoteNode> {
        self.nodes
            .iter()
            .filter(|n| n.link.state() == LinkState::Up)
    }
}
