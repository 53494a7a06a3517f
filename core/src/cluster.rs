//! One cluster of the local node: its node table (docs/behaviour.md §1.2: the local node's
//! record and the other nodes with their links) and the state machines that run per
//! cluster: the [`Topology`], the capability [`Adverts`], the local capabilities with
//! their sync, and the [`SharingTags`]. The coordinator (the `coordinator` module and the
//! `node` module's cluster procedures) drives them; read-only accessors here serve MI and
//! API queries.

use alloc::string::String;
use alloc::vec::Vec;

use crate::address::NodeAddress;
use crate::capability::{Adverts, LocalCapability, RemoteCapability};
use crate::config::NodeConfig;
use crate::id::{ClusterId, NodeId};
use crate::link::{Link, LinkState};
use crate::route::Route;
use crate::shtag::{SharingTag, SharingTags, ShtagSettings};
use crate::stamp::SeqStamp;
use crate::topology::Topology;

/// What is provisioned about a node (a DB row, `my_node_info` or `neighbor_node_info`, or
/// a NODE_DESCRIPTION): the part the local node's record and the records of the others
/// share. [`RemoteNode`] and [`LocalNode`] dereference to it.
#[derive(Clone, Debug)]
pub struct NodeRecord {
    pub(crate) id: NodeId,
    pub(crate) db_id: Option<i64>,
    pub(crate) url: String,
    pub(crate) address: NodeAddress,
    pub(crate) sip_addr: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i32,
    pub(crate) no_ping_retries: u32,
    pub(crate) enabled: bool,
}

impl NodeRecord {
    fn from_config(c: &NodeConfig, address: NodeAddress) -> Self {
        NodeRecord {
            id: c.id,
            db_id: c.db_id,
            url: c.url.clone(),
            address,
            sip_addr: c.sip_addr.clone(),
            description: c.description.clone(),
            priority: c.priority,
            no_ping_retries: c.no_ping_retries,
            enabled: c.enabled,
        }
    }

    /// Node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// DB row id (`None` = −1 in MI: provisioned by script or discovered).
    pub fn db_id(&self) -> Option<i64> {
        self.db_id
    }

    /// BIN URL as provisioned or announced (for the local node it selects the listening
    /// socket and the source IP of outgoing connections).
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
}

/// Another node of a cluster, as the local node knows it: its record and the direct link.
#[derive(Clone, Debug)]
pub struct RemoteNode {
    pub(crate) record: NodeRecord,
    pub(crate) link: Link,
    /// The ids listed in its last PONG (nodes it already knows).
    pub(crate) pong_list: Vec<NodeId>,
    /// Reachability as last reported through events.
    pub(crate) reachable: bool,
}

impl core::ops::Deref for RemoteNode {
    type Target = NodeRecord;
    fn deref(&self) -> &NodeRecord {
        &self.record
    }
}

impl core::ops::DerefMut for RemoteNode {
    fn deref_mut(&mut self) -> &mut NodeRecord {
        &mut self.record
    }
}

impl RemoteNode {
    /// A node learned from a description: enabled, no DB id, probing restarts.
    pub(crate) fn new(
        id: NodeId,
        url: String,
        address: NodeAddress,
        sip_addr: String,
        priority: i32,
        no_ping_retries: u32,
    ) -> Self {
        RemoteNode::with_record(NodeRecord {
            id,
            db_id: None,
            url,
            address,
            sip_addr,
            description: None,
            priority,
            no_ping_retries,
            enabled: true,
        })
    }

    pub(crate) fn from_config(c: &NodeConfig, address: NodeAddress) -> Self {
        RemoteNode::with_record(NodeRecord::from_config(c, address))
    }

    fn with_record(record: NodeRecord) -> Self {
        RemoteNode {
            record,
            link: Link::new(),
            pong_list: Vec::new(),
            reachable: false,
        }
    }

    /// Direct link state.
    pub fn link_state(&self) -> LinkState {
        self.link.state()
    }

    /// The probing state of the direct link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether it is reachable (has a next hop), as last evaluated.
    pub fn is_reachable(&self) -> bool {
        self.reachable
    }
}

/// The local node's record in one cluster.
#[derive(Clone, Debug)]
pub struct LocalNode {
    pub(crate) record: NodeRecord,
    pub(crate) seed: bool,
}

impl core::ops::Deref for LocalNode {
    type Target = NodeRecord;
    fn deref(&self) -> &NodeRecord {
        &self.record
    }
}

impl core::ops::DerefMut for LocalNode {
    fn deref_mut(&mut self) -> &mut NodeRecord {
        &mut self.record
    }
}

impl LocalNode {
    pub(crate) fn from_config(c: &NodeConfig, address: NodeAddress) -> Self {
        LocalNode {
            record: NodeRecord::from_config(c, address),
            seed: c.seed,
        }
    }

    /// `seed` flag.
    pub fn is_seed(&self) -> bool {
        self.seed
    }
}

/// One cluster of the local node.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) id: ClusterId,
    pub(crate) local: LocalNode,
    /// Node list in OpenSIPS order: most recently inserted first.
    pub(crate) nodes: Vec<RemoteNode>,
    /// The topology gossip machine (same node order as `nodes`).
    pub(crate) topology: Topology,
    /// The capability adverts machine (same node order as `nodes`).
    pub(crate) adverts: Adverts,
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
            topology: Topology::new(local.id),
            adverts: Adverts::new(local.id),
            local,
            nodes: Vec::new(),
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
        self.topology.version()
    }

    /// The topology as the local node knows it (adjacency lists, stamps, routes).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The capabilities `id` advertises (learned from CAP_UPDATE; empty for an unknown
    /// node).
    pub fn remote_capabilities(&self, id: NodeId) -> &[RemoteCapability] {
        self.adverts.of(id)
    }

    /// The local node's UP links, most recently added first.
    pub fn local_adjacency(&self) -> &[NodeId] {
        self.topology.local_adjacency()
    }

    /// `id`'s UP links as gossiped, most recently added first (empty for an unknown node).
    pub fn adjacency(&self, id: NodeId) -> &[NodeId] {
        self.topology.node(id).map_or(&[], |n| n.adjacency())
    }

    /// `id`'s link-state (seq, timestamp) as last accepted.
    pub fn ls_stamp(&self, id: NodeId) -> Option<SeqStamp> {
        self.topology.node(id).map(|n| n.ls_stamp())
    }

    /// Every node's neighbours as `clusterer_list_topology` shows them (docs/behaviour.md §15):
    /// the local node with its UP links first, then every other node in list order with
    /// its gossiped list plus the local node when our link to it is UP — the lists our
    /// FULL_TOP_UPDATE carries ([`Topology::listed_neighbours`]).
    pub fn topology_view(&self) -> Vec<(NodeId, Vec<NodeId>)> {
        let mut view = Vec::with_capacity(self.nodes.len() + 1);
        view.push((self.local.id, self.topology.local_adjacency().to_vec()));
        for n in &self.nodes {
            let up = n.link.state() == LinkState::Up;
            view.push((n.id, self.topology.listed_neighbours(n.id, up)));
        }
        view
    }

    /// Adds a node at the front of the node list (the order OpenSIPS builds it in), and to
    /// the topology.
    pub(crate) fn push_front_node(&mut self, node: RemoteNode) {
        self.topology.insert_node(0, node.id, node.priority);
        self.adverts.insert_node(0, node.id);
        self.nodes.insert(0, node);
    }

    /// Whether any known node of this cluster has `ip` as its URL address (the source-IP
    /// check of docs/wire.md §9: flooded and relayed packets arrive from any member).
    pub fn is_member_ip(&self, ip: core::net::IpAddr) -> bool {
        self.nodes.iter().any(|n| n.address.ip() == ip)
    }

    /// Recomputes the route table when the topology changed since the last computation.
    pub(crate) fn refresh_routes(&mut self) {
        self.topology.refresh_routes();
    }

    /// The cached route to `dest`; call [`Cluster::refresh_routes`] first.
    pub(crate) fn cached_route(&self, dest: NodeId, rerouting: bool) -> Option<Route> {
        self.topology.cached_route(dest, rerouting)
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
