//! What tests assert on: recorded events and packets, link states, stored adjacency lists,
//! next hops, per-node invariants, and a state dump for failure messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clusterer_core::message::MAX_NODES;
use clusterer_core::{ClusterId, Event, Instant, LinkState, Node, NodeId};
use clusterer_proto::Endpoint;
use clusterer_proto::endpoint::DropCause;

use crate::sim::{NodeStatus, Sim, SimOptions, Trace};

/// An event a node emitted, with the virtual time it was drained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// When.
    pub at: Instant,
    /// The node that emitted it.
    pub node: NodeId,
    /// The event.
    pub event: Event,
}

/// A reachability change (`E_CLUSTERER_NODE_STATE_CHANGED`) seen by one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStateChange {
    /// When.
    pub at: Instant,
    /// The node that raised it.
    pub observer: NodeId,
    /// Cluster.
    pub cluster: ClusterId,
    /// The node whose reachability changed.
    pub node: NodeId,
    /// New reachability.
    pub up: bool,
}

/// What became of a packet a node sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketFate {
    /// Put on a connection (it arrives unless the connection closes first).
    Sent,
    /// Dropped by a partition.
    Lost,
    /// The connect was refused or the connection was closed; the sender is told.
    Refused,
}

/// One packet a node sent (kept when [`SimOptions::record_packets`] is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    /// When it was sent.
    pub at: Instant,
    /// Sender.
    pub from: NodeId,
    /// The node this hop goes to.
    pub to: NodeId,
    /// Spec name of its type ([`crate::sim::packet_kind`]).
    pub kind: &'static str,
    /// What became of it.
    pub fate: PacketFate,
}

/// One stored adjacency list that differs from the real one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyMismatch {
    /// The node holding the list.
    pub observer: NodeId,
    /// The node the list describes.
    pub subject: NodeId,
    /// What the observer stores (`None`: it does not know the subject, or is not live).
    pub stored: Option<BTreeSet<NodeId>>,
    /// The subject's own UP links minus the observer.
    pub actual: BTreeSet<NodeId>,
}

impl std::fmt::Display for TopologyMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids = |s: &BTreeSet<NodeId>| {
            s.iter()
                .map(|n| n.get().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match &self.stored {
            Some(stored) => write!(
                f,
                "n{} stores n{} -> [{}], actual [{}]",
                self.observer,
                self.subject,
                ids(stored),
                ids(&self.actual)
            ),
            None => write!(f, "n{} does not know n{}", self.observer, self.subject),
        }
    }
}

/// A short text for an event, as the trace shows it.
pub fn describe_event(event: &Event) -> String {
    match event {
        Event::NodeStateChanged { cluster, node, up } => format!(
            "node n{node} {} (cluster {cluster})",
            if *up { "UP" } else { "DOWN" }
        ),
        Event::Received { source, body, .. } => {
            format!("received {} from n{source}", body.type_name())
        }
        // Events added to the core later are shown as they debug-print.
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Checks the invariants a node must keep after every input, returning what is broken:
/// its own adjacency list is exactly its UP links; no link rests in TEMP; reachability flags
/// agree with the next hops; nothing was dropped for a full queue; no table past its cap
/// (128 nodes, adjacency lists of 129 ids); no bytes it emitted
/// failed to frame or parse at a peer (counted as framing errors or malformed drops here).
pub fn endpoint_violations(ep: &mut Endpoint) -> Vec<String> {
    let mut problems = Vec::new();
    let counters = ep.counters();
    if counters.framing_errors > 0 {
        problems.push(format!("{} framing errors", counters.framing_errors));
    }
    for (cause, count) in &counters.dropped {
        if matches!(
            cause,
            DropCause::Malformed(_) | DropCause::Unencodable | DropCause::ResendQueueFull
        ) {
            problems.push(format!("{count} packets dropped as {}", cause.name()));
        }
    }
    let stats = ep.node().stats();
    if stats.dropped_transmits > 0 || stats.dropped_events > 0 {
        problems.push(format!(
            "queues overflowed: {} transmits, {} events dropped",
            stats.dropped_transmits, stats.dropped_events
        ));
    }
    let clusters: Vec<ClusterId> = ep.node().clusters().iter().map(|c| c.id()).collect();
    for cid in clusters {
        let Some(c) = ep.node().cluster(cid) else {
            continue;
        };
        let local: BTreeSet<NodeId> = c.local_adjacency().iter().copied().collect();
        let up: BTreeSet<NodeId> = c
            .nodes()
            .iter()
            .filter(|n| n.link_state() == LinkState::Up)
            .map(|n| n.id())
            .collect();
        if local != up {
            problems.push(format!(
                "cluster {cid}: own adjacency {local:?} differs from UP links {up:?}"
            ));
        }
        if c.local_adjacency().len() != local.len() {
            problems.push(format!("cluster {cid}: duplicate in own adjacency"));
        }
        if c.nodes().len() > MAX_NODES {
            problems.push(format!(
                "cluster {cid}: {} nodes known, past the cap of {MAX_NODES}",
                c.nodes().len()
            ));
        }
        if let Some(n) = c
            .nodes()
            .iter()
            .find(|n| c.adjacency(n.id()).len() > MAX_NODES + 1)
        {
            problems.push(format!(
                "cluster {cid}: n{}'s adjacency holds {} ids, past the cap",
                n.id(),
                c.adjacency(n.id()).len()
            ));
        }
        let mut flags = Vec::new();
        for n in c.nodes() {
            if n.link_state() == LinkState::Temp {
                problems.push(format!("cluster {cid}: link to n{} rests in TEMP", n.id()));
            }
            flags.push((n.id(), n.is_reachable()));
        }
        for (id, reachable) in flags {
            let hop = ep.next_hop(cid, id);
            if hop.is_some() != reachable {
                problems.push(format!(
                    "cluster {cid}: n{id} reachable flag {reachable} but next hop {hop:?}"
                ));
            }
        }
    }
    problems
}

impl Sim {
    /// The run's options.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.options.seed
    }

    /// Every node added, in order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// A node's lifecycle status.
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.index.get(&id).map(|&i| self.nodes[i].status)
    }

    /// A node's endpoint (`None` when unknown, crashed or not started).
    pub fn endpoint(&self, id: NodeId) -> Option<&Endpoint> {
        self.index
            .get(&id)
            .and_then(|&i| self.nodes[i].endpoint.as_ref())
    }

    /// A node's core state (`None` when unknown, crashed or not started).
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.endpoint(id).map(Endpoint::node)
    }

    /// The nodes that currently have an endpoint (running or paused).
    pub fn live_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.endpoint.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Every event drained so far, in order.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// Every `NodeStateChanged` event so far, in order.
    pub fn node_state_changes(&self) -> Vec<NodeStateChange> {
        self.events
            .iter()
            .filter_map(|e| match e.event {
                Event::NodeStateChanged { cluster, node, up } => Some(NodeStateChange {
                    at: e.at,
                    observer: e.node,
                    cluster,
                    node,
                    up,
                }),
                _ => None,
            })
            .collect()
    }

    /// The `Received` events of one node.
    pub fn received(&self, id: NodeId) -> Vec<&RecordedEvent> {
        self.events
            .iter()
            .filter(|e| e.node == id && matches!(e.event, Event::Received { .. }))
            .collect()
    }

    /// Every packet sent so far (empty unless [`SimOptions::record_packets`]).
    pub fn packets(&self) -> &[PacketRecord] {
        &self.packets
    }

    /// The trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Invariant violations found so far (the first 32 verbatim, with seed and time).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// How many invariant violations were found in total.
    pub fn violation_count(&self) -> u64 {
        self.violation_count
    }

    /// `observer`'s direct link state toward `peer`.
    pub fn link_state(
        &self,
        observer: NodeId,
        cluster: ClusterId,
        peer: NodeId,
    ) -> Option<LinkState> {
        self.node(observer)?
            .cluster(cluster)?
            .node(peer)
            .map(|n| n.link_state())
    }

    /// Every link state of every live node: `(observer, peer) → state`.
    pub fn link_states(&self, cluster: ClusterId) -> BTreeMap<(NodeId, NodeId), LinkState> {
        let mut out = BTreeMap::new();
        for id in self.live_ids() {
            let Some(c) = self.node(id).and_then(|n| n.cluster(cluster)) else {
                continue;
            };
            for n in c.nodes() {
                out.insert((id, n.id()), n.link_state());
            }
        }
        out
    }

    /// Whether every node of `among` knows every other one and sees its link UP.
    pub fn links_all_up(&self, cluster: ClusterId, among: &[NodeId]) -> bool {
        among.iter().all(|&a| {
            among
                .iter()
                .all(|&b| a == b || self.link_state(a, cluster, b) == Some(LinkState::Up))
        })
    }

    /// The ids `observer` knows in `cluster` (other than itself).
    pub fn known_nodes(&self, observer: NodeId, cluster: ClusterId) -> BTreeSet<NodeId> {
        self.node(observer)
            .and_then(|n| n.cluster(cluster))
            .map(|c| c.nodes().iter().map(|n| n.id()).collect())
            .unwrap_or_default()
    }

    /// `subject`'s adjacency list as `observer` stores it (its own UP links when
    /// `observer == subject`). `None` when unknown.
    pub fn stored_adjacency(
        &self,
        observer: NodeId,
        cluster: ClusterId,
        subject: NodeId,
    ) -> Option<BTreeSet<NodeId>> {
        let c = self.node(observer)?.cluster(cluster)?;
        let list = if observer == subject {
            c.local_adjacency()
        } else {
            c.node(subject)?;
            c.adjacency(subject)
        };
        Some(list.iter().copied().collect())
    }

    /// Pairs whose views disagree: for every `a ≠ b` of `among`, `a`'s stored list of `b`
    /// must equal `b`'s own UP links minus `a` (a node never stores itself in another
    /// node's list, docs/behaviour.md §4.1). Empty when the topology is consistent.
    pub fn topology_mismatches(
        &self,
        cluster: ClusterId,
        among: &[NodeId],
    ) -> Vec<TopologyMismatch> {
        let mut out = Vec::new();
        for &b in among {
            let own = self.stored_adjacency(b, cluster, b).unwrap_or_default();
            for &a in among {
                if a == b {
                    continue;
                }
                let mut actual = own.clone();
                actual.remove(&a);
                let stored = self.stored_adjacency(a, cluster, b);
                if stored.as_ref() != Some(&actual) {
                    out.push(TopologyMismatch {
                        observer: a,
                        subject: b,
                        stored,
                        actual,
                    });
                }
            }
        }
        out
    }

    /// `observer`'s next hop toward `dest`.
    pub fn next_hop(
        &mut self,
        observer: NodeId,
        cluster: ClusterId,
        dest: NodeId,
    ) -> Option<NodeId> {
        let &i = self.index.get(&observer)?;
        self.nodes[i].endpoint.as_mut()?.next_hop(cluster, dest)
    }

    /// Every next hop among `among`: `(observer, dest) → hop`.
    pub fn next_hops(
        &mut self,
        cluster: ClusterId,
        among: &[NodeId],
    ) -> BTreeMap<(NodeId, NodeId), Option<NodeId>> {
        let mut out = BTreeMap::new();
        for &a in among {
            for &b in among {
                if a != b {
                    out.insert((a, b), self.next_hop(a, cluster, b));
                }
            }
        }
        out
    }

    /// A readable dump of the run for failure messages: seed, time, each node's status,
    /// links and stored adjacency, violations, and the last `tail` trace lines.
    pub fn report(&self, cluster: ClusterId, tail: usize) -> String {
        let mut s = format!(
            "seed {} at {} ({} steps)\n",
            self.options.seed, self.now, self.steps
        );
        for n in &self.nodes {
            let _ = write!(s, "n{} {:?} {:?}", n.id, n.status, n.listen);
            let Some(c) = n.endpoint.as_ref().and_then(|e| e.node().cluster(cluster)) else {
                s.push('\n');
                continue;
            };
            let _ = writeln!(s, " own {:?}", c.local_adjacency());
            for r in c.nodes() {
                let _ = writeln!(
                    s,
                    "    n{}: {:?} ls {} adj {:?}",
                    r.id(),
                    r.link_state(),
                    c.ls_stamp(r.id()).unwrap_or_default().seq,
                    c.adjacency(r.id())
                );
            }
        }
        for v in &self.violations {
            let _ = writeln!(s, "violation: {v}");
        }
        if tail > 0 {
            let _ = writeln!(
                s,
                "--- last {tail} trace lines ---\n{}",
                self.trace.tail(tail)
            );
        }
        s
    }
}
