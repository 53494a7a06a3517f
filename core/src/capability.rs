//! Capabilities (docs/behaviour.md §9.1–§9.4, §9.9, §9.10): registration, local and remote
//! capability state, CAP_UPDATE in its full and single forms, match operators, and
//! `get_my_index`.
//!
//! A capability is replicated application state. Its data path is the [`Capability`]
//! trait: the donor produces its records as sync chunks, the requester applies chunks and
//! live packets. The sync machinery itself lives in [`crate::sync`].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::id::NodeId;
use crate::message::{CapUpdate, CapabilityBlock, CapabilityState, ModulePacket};
use crate::output::DropReason;
use crate::report::ReportRing;
use crate::stamp::{Freshness, SeqStamp};
use crate::time::Instant;

/// Prefix of the pseudo-capability by which a node advertises that it takes part in the
/// election of a sharing tag (`shtag-election:<tag>`). OpenSIPS peers store it like any
/// unknown capability and pass it on in their own CAP_UPDATEs.
pub const ELECTION_CAPABILITY_PREFIX: &str = "shtag-election:";

/// Node match operators (`match_node`, docs/behaviour.md §9.4), used as sync conditions and by
/// broadcasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NodeMatch {
    /// `NODE_CMP_ANY`: every node.
    Any,
    /// `NODE_CMP_ALL`: every node; a GENERIC_MSG broadcast also delivers to the local node.
    All,
    /// `NODE_CMP_EQ_SIP_ADDR`: both have a sip_addr and they are equal.
    EqSipAddr,
    /// `NODE_CMP_NEQ_SIP_ADDR`: both have a sip_addr and they differ.
    NeqSipAddr,
}

impl NodeMatch {
    /// Whether a node with `remote` sip_addr matches for a local node with `local`.
    pub fn matches(self, local: &str, remote: &str) -> bool {
        match self {
            NodeMatch::Any | NodeMatch::All => true,
            NodeMatch::EqSipAddr => !local.is_empty() && !remote.is_empty() && local == remote,
            NodeMatch::NeqSipAddr => !local.is_empty() && !remote.is_empty() && local != remote,
        }
    }
}

/// A chunk or packet the capability could not apply; the text is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

/// What happened to a capability, delivered through [`Capability::handle_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityEvent {
    /// `CLUSTER_NODE_UP`: a node of the cluster became reachable.
    NodeUp(NodeId),
    /// `CLUSTER_NODE_DOWN`: a node became unreachable.
    NodeDown(NodeId),
    /// `SYNC_REQ_RCV`: this node is about to send its data to `requester`.
    SyncRequested {
        /// The requester.
        requester: NodeId,
    },
    /// The first data of a sync from `donor` is about to be applied. A capability that
    /// wants to hold exactly the donor's data clears its state here.
    SyncStarted {
        /// The donor.
        donor: NodeId,
    },
    /// `SYNC_DONE`: a sync from `donor` completed; buffered live packets were applied.
    SyncDone {
        /// The donor.
        donor: NodeId,
    },
    /// A sync was abandoned (timeout, donor lost); it may be retried.
    SyncAborted {
        /// The donor that was used.
        donor: NodeId,
    },
}

/// The data path of a capability. Implemented by the application (e.g. the replicated
/// cache of the daemon) and registered with [`Node::register_capability`](crate::Node::register_capability); the node calls
/// it synchronously from its `handle_*` methods.
pub trait Capability: Send {
    /// The data version written in SYNC packets (the module's BIN version).
    fn data_version(&self) -> i32 {
        1
    }

    /// Donor side: hand every record to `chunk`, one call per sync chunk (the chunk's
    /// module data, without the 8-byte chunk header).
    fn produce_sync_chunks(&mut self, requester: NodeId, chunk: &mut dyn FnMut(&[u8]));

    /// Requester side: apply one sync chunk.
    ///
    /// # Errors
    /// [`Rejected`] when the chunk cannot be applied; the chunk is skipped, counted and
    /// reported, and the sync goes on.
    fn apply_sync_chunk(
        &mut self,
        donor: NodeId,
        data_version: i32,
        chunk: &[u8],
    ) -> Result<(), Rejected>;

    /// Apply a live packet of this capability.
    ///
    /// # Errors
    /// [`Rejected`] when the packet cannot be applied (it is counted).
    fn apply_packet(
        &mut self,
        source: NodeId,
        version: i16,
        packet: &ModulePacket,
    ) -> Result<(), Rejected>;

    /// Cluster and sync events (optional).
    fn handle_event(&mut self, event: CapabilityEvent) {
        let _ = event;
    }
}

/// Sync status of a local capability (the `cap:<name>` status of docs/behaviour.md §9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncStatus {
    /// −3 `not synced`.
    NotSynced,
    /// −2 `sync pending`.
    SyncPending,
    /// −1 `sync in progress`.
    SyncInProgress,
    /// 1 `synced`.
    Synced,
}

impl SyncStatus {
    /// The status code.
    pub fn code(self) -> i32 {
        match self {
            SyncStatus::NotSynced => -3,
            SyncStatus::SyncPending => -2,
            SyncStatus::SyncInProgress => -1,
            SyncStatus::Synced => 1,
        }
    }

    /// The status details text.
    pub fn details(self) -> &'static str {
        match self {
            SyncStatus::NotSynced => "not synced",
            SyncStatus::SyncPending => "sync pending",
            SyncStatus::SyncInProgress => "sync in progress",
            SyncStatus::Synced => "synced",
        }
    }
}

/// A SYNC_REQ sent and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Requested {
    pub donor: NodeId,
    pub at: Instant,
}

/// A sync receiving data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InProgress {
    pub donor: NodeId,
    pub last_packet: Instant,
    pub received: u32,
    pub expected: Option<u32>,
}

/// A capability registered by the local node in one cluster.
pub struct LocalCapability {
    pub(crate) name: String,
    pub(crate) startup_sync: bool,
    pub(crate) condition: NodeMatch,
    pub(crate) enabled: bool,
    pub(crate) ok: bool,
    pub(crate) status: SyncStatus,
    /// SYNC_PENDING: a request waits for a donor, since this instant.
    pub(crate) pending: Option<Instant>,
    pub(crate) requested: Option<Requested>,
    pub(crate) in_progress: Option<InProgress>,
    /// Live packets held back while a sync runs, in arrival order.
    pub(crate) buffer: VecDeque<(NodeId, i16, ModulePacket)>,
    /// Donors tried by the current request (first-packet timeout retries).
    pub(crate) tried: Vec<NodeId>,
    pub(crate) skipped_chunks: u64,
    pub(crate) rejected_packets: u64,
    pub(crate) chunks_received_total: u64,
    pub(crate) reports: ReportRing,
    pub(crate) handler: Box<dyn Capability>,
}

impl fmt::Debug for LocalCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCapability")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("ok", &self.ok)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl LocalCapability {
    /// A newly registered capability: enabled; synced when `startup_sync` is false,
    /// otherwise not synced until a sync completes.
    pub fn new(
        name: &str,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Self {
        LocalCapability {
            name: name.into(),
            startup_sync,
            condition,
            enabled: true,
            ok: !startup_sync,
            status: if startup_sync {
                SyncStatus::NotSynced
            } else {
                SyncStatus::Synced
            },
            pending: None,
            requested: None,
            in_progress: None,
            buffer: VecDeque::new(),
            tried: Vec::new(),
            skipped_chunks: 0,
            rejected_packets: 0,
            chunks_received_total: 0,
            reports: ReportRing::default(),
            handler,
        }
    }

    /// Capability name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is enabled (`clusterer_set_cap_status`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether its data is synced (MI state `Ok`).
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The `cap:<name>` status.
    pub fn status(&self) -> SyncStatus {
        self.status
    }

    /// The `cap:<name>` report ring.
    pub fn reports(&self) -> &ReportRing {
        &self.reports
    }

    /// The sync condition.
    pub fn condition(&self) -> NodeMatch {
        self.condition
    }

    /// Whether the module asked for a sync at startup.
    pub fn startup_sync(&self) -> bool {
        self.startup_sync
    }

    /// Chunks the capability rejected and the sync skipped.
    pub fn skipped_chunks(&self) -> u64 {
        self.skipped_chunks
    }

    /// Live packets the capability rejected.
    pub fn rejected_packets(&self) -> u64 {
        self.rejected_packets
    }

    /// Sync chunks received since start.
    pub fn chunks_received(&self) -> u64 {
        self.chunks_received_total
    }

    /// Live packets currently held back by a running sync.
    pub fn buffered_packets(&self) -> usize {
        self.buffer.len()
    }

    /// The donor of the running or requested sync.
    pub fn sync_donor(&self) -> Option<NodeId> {
        self.in_progress
            .map(|p| p.donor)
            .or(self.requested.map(|r| r.donor))
    }

    /// The advertised state: synced and enabled (quirk #6 fixed: enabling a capability
    /// does not advertise it synced).
    pub(crate) fn advertised(&self) -> bool {
        self.enabled && self.ok
    }

    pub(crate) fn report(&mut self, unix_time: i64, text: String) {
        self.reports.push(unix_time, text);
    }
}

/// A capability another node advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCapability {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) sync_reply_pending: bool,
}

impl RemoteCapability {
    /// Capability name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Advertised as synced.
    pub fn is_ok(&self) -> bool {
        self.ok
    }
}

/// Why a capability command was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CapabilityError {
    /// MI 404 `Cluster id not found`.
    UnknownCluster,
    /// MI 404 `Capability not found`.
    UnknownCapability,
    /// The capability is already registered in this cluster.
    AlreadyRegistered,
    /// The name is empty, or is one of the clusterer's own capabilities.
    ReservedName,
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapabilityError::UnknownCluster => "Cluster id not found",
            CapabilityError::UnknownCapability => "Capability not found",
            CapabilityError::AlreadyRegistered => "Capability already registered",
            CapabilityError::ReservedName => "Capability name is reserved",
        })
    }
}

impl core::error::Error for CapabilityError {}

/// What one other node advertises (its blocks of CAP_UPDATE).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeAdverts {
    id: NodeId,
    /// Its CAP_UPDATE (seq, timestamp) as last accepted.
    stamp: SeqStamp,
    caps: Vec<RemoteCapability>,
}

/// What an accepted CAP_UPDATE asks of the coordinator (it floods the update, without the
/// reply flag, in any case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapEffect {
    /// The originator restarted (its counter started again): it holds no tag any more.
    pub restarted: bool,
    /// Some capability became synced somewhere: a queued sync request may find a donor.
    pub newly_ok: bool,
    /// The originator asks for our full CAP_UPDATE.
    pub reply: bool,
}

/// The capability adverts of one cluster (docs/behaviour.md §9.3): the local node's CAP_UPDATE
/// counter and what every other node advertises, learned from CAP_UPDATEs. A state machine
/// of its own: CAP_UPDATEs in, [`CapEffect`]s and the updates to send out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adverts {
    me: NodeId,
    counter: SeqStamp,
    /// Every other node, in node-list order.
    nodes: Vec<NodeAdverts>,
}

impl Adverts {
    /// The adverts of local node `me`, knowing nobody yet.
    pub fn new(me: NodeId) -> Self {
        Adverts {
            me,
            counter: SeqStamp::default(),
            nodes: Vec::new(),
        }
    }

    /// A node joins the node list at `index`, advertising nothing yet.
    pub fn insert_node(&mut self, index: usize, id: NodeId) {
        self.nodes.insert(
            index,
            NodeAdverts {
                id,
                stamp: SeqStamp::default(),
                caps: Vec::new(),
            },
        );
    }

    /// A node is forgotten.
    pub fn remove_node(&mut self, id: NodeId) {
        self.nodes.retain(|n| n.id != id);
    }

    /// The node list was provisioned anew: remote adverts are forgotten, our counter kept.
    pub fn reset(&mut self, ids: impl IntoIterator<Item = NodeId>) {
        self.nodes.clear();
        for id in ids {
            self.insert_node(self.nodes.len(), id);
        }
    }

    /// What `id` advertises (empty for an unknown node).
    pub fn of(&self, id: NodeId) -> &[RemoteCapability] {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map_or(&[], |n| n.caps.as_slice())
    }

    /// Whether `id` advertises `capability` synced.
    pub fn advertises_ok(&self, id: NodeId, capability: &str) -> bool {
        self.of(id).iter().any(|r| r.name == capability && r.ok)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut NodeAdverts> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// Remembers that `requester` asked for `capability` while unreachable: the reply goes
    /// out when it comes up.
    ///
    /// # Errors
    /// [`DropReason::UnknownSource`] for an unknown node, [`DropReason::UnknownCapability`]
    /// when it does not advertise the capability; nothing changed.
    pub fn defer_sync_reply(
        &mut self,
        requester: NodeId,
        capability: &str,
    ) -> Result<(), DropReason> {
        let n = self.node_mut(requester).ok_or(DropReason::UnknownSource)?;
        let r = n
            .caps
            .iter_mut()
            .find(|r| r.name == capability)
            .ok_or(DropReason::UnknownCapability)?;
        r.sync_reply_pending = true;
        Ok(())
    }

    /// The capabilities `node` asked a sync of while unreachable (the marks are cleared).
    pub fn take_deferred_replies(&mut self, node: NodeId) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(n) = self.node_mut(node) {
            for r in &mut n.caps {
                if core::mem::take(&mut r.sync_reply_pending) {
                    names.push(r.name.clone());
                }
            }
        }
        names
    }

    /// CAP_UPDATE from `origin` (docs/behaviour.md §9.3). Blocks about unknown nodes are
    /// skipped instead of aborting the whole message (quirk #14, lenient).
    ///
    /// # Errors
    /// [`DropReason::UnknownSource`], [`DropReason::StaleUpdate`]; nothing changed.
    pub fn on_cap_update(
        &mut self,
        origin: NodeId,
        u: &CapUpdate,
    ) -> Result<CapEffect, DropReason> {
        let o = self.node_mut(origin).ok_or(DropReason::UnknownSource)?;
        let restarted = match o.stamp.check(u.seq, u.timestamp, false) {
            Freshness::Fresh => false,
            Freshness::Restarted => true,
            Freshness::Stale | Freshness::Equal => return Err(DropReason::StaleUpdate),
        };
        let me = self.me;
        let mut newly_ok = false;
        for block in &u.nodes {
            if block.node == me {
                continue;
            }
            let Some(n) = self.node_mut(block.node) else {
                continue;
            };
            for state in &block.capabilities {
                match n.caps.iter_mut().find(|r| r.name == state.name) {
                    Some(r) => {
                        newly_ok |= state.ok && !r.ok;
                        r.ok = state.ok;
                    }
                    None => {
                        newly_ok |= state.ok;
                        n.caps.push(RemoteCapability {
                            name: state.name.clone(),
                            ok: state.ok,
                            sync_reply_pending: false,
                        });
                    }
                }
            }
        }
        Ok(CapEffect {
            restarted,
            newly_ok,
            reply: u.require_reply,
        })
    }

    /// The full CAP_UPDATE to `dest` (docs/behaviour.md §9.3): `local` (our own block), then
    /// every other node with a known capability except `dest`, stamped at UNIX time `unix`;
    /// `None` (and no counter increment) when there is nothing to report.
    pub fn full_update(
        &mut self,
        local: Option<CapabilityBlock>,
        dest: NodeId,
        unix: i32,
        require_reply: bool,
    ) -> Option<CapUpdate> {
        let mut nodes: Vec<CapabilityBlock> = local.into_iter().collect();
        for n in self
            .nodes
            .iter()
            .filter(|n| n.id != dest && !n.caps.is_empty())
        {
            nodes.push(CapabilityBlock {
                node: n.id,
                capabilities: n
                    .caps
                    .iter()
                    .map(|r| CapabilityState {
                        name: r.name.clone(),
                        ok: r.ok,
                    })
                    .collect(),
            });
        }
        if nodes.is_empty() {
            return None;
        }
        let stamp = self.counter.next(unix);
        Some(self.update(stamp, nodes, require_reply))
    }

    /// The single CAP_UPDATE for one local capability's new advertised state; `None` (and
    /// no counter increment) when `told` is false (no UP neighbour).
    pub fn single_update(
        &mut self,
        name: &str,
        ok: bool,
        unix: i32,
        told: bool,
    ) -> Option<CapUpdate> {
        if !told {
            return None;
        }
        let stamp = self.counter.next(unix);
        let block = CapabilityBlock {
            node: self.me,
            capabilities: alloc::vec![CapabilityState {
                name: name.into(),
                ok
            }],
        };
        Some(self.update(stamp, alloc::vec![block], false))
    }

    fn update(
        &self,
        stamp: SeqStamp,
        nodes: Vec<CapabilityBlock>,
        require_reply: bool,
    ) -> CapUpdate {
        CapUpdate {
            seq: stamp.seq,
            timestamp: stamp.timestamp,
            nodes,
            require_reply,
            path: alloc::vec![self.me],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_operators_follow_sip_addresses() {
        assert!(NodeMatch::Any.matches("", ""));
        assert!(NodeMatch::All.matches("a", "b"));
        assert!(NodeMatch::EqSipAddr.matches("10.0.0.1:5060", "10.0.0.1:5060"));
        assert!(!NodeMatch::EqSipAddr.matches("", ""));
        assert!(!NodeMatch::EqSipAddr.matches("a", "b"));
        assert!(NodeMatch::NeqSipAddr.matches("a", "b"));
        assert!(!NodeMatch::NeqSipAddr.matches("a", ""));
    }

    #[test]
    fn status_codes_and_texts() {
        assert_eq!(
            (
                SyncStatus::NotSynced.code(),
                SyncStatus::NotSynced.details()
            ),
            (-3, "not synced")
        );
        assert_eq!(SyncStatus::SyncPending.code(), -2);
        assert_eq!(SyncStatus::SyncInProgress.details(), "sync in progress");
        assert_eq!(SyncStatus::Synced.code(), 1);
    }

    // ---- the adverts machine (docs/behaviour.md §9.3) ----

    fn n(id: u32) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn adverts(peers: &[u32]) -> Adverts {
        let mut a = Adverts::new(n(1));
        for &p in peers {
            a.insert_node(a.nodes.len(), n(p));
        }
        a
    }

    fn block(node: u32, caps: &[(&str, bool)]) -> CapabilityBlock {
        CapabilityBlock {
            node: n(node),
            capabilities: caps
                .iter()
                .map(|&(name, ok)| CapabilityState {
                    name: name.into(),
                    ok,
                })
                .collect(),
        }
    }

    fn update(seq: i32, ts: i32, nodes: Vec<CapabilityBlock>, reply: bool) -> CapUpdate {
        CapUpdate {
            seq,
            timestamp: ts,
            nodes,
            require_reply: reply,
            path: alloc::vec![],
        }
    }

    #[test]
    fn a_cap_update_stores_adverts_and_says_when_one_became_synced() {
        let mut a = adverts(&[2, 3]);
        let u = update(0, 100, alloc::vec![block(2, &[("kv", false)])], true);
        let e = a.on_cap_update(n(2), &u).unwrap();
        assert_eq!(
            e,
            CapEffect {
                restarted: false,
                newly_ok: false,
                reply: true
            }
        );
        assert!(!a.advertises_ok(n(2), "kv"));
        let u = update(
            1,
            100,
            alloc::vec![block(2, &[("kv", true)]), block(3, &[("kv", true)])],
            false,
        );
        assert!(a.on_cap_update(n(2), &u).unwrap().newly_ok);
        assert!(a.advertises_ok(n(2), "kv") && a.advertises_ok(n(3), "kv"));
        assert_eq!(a.on_cap_update(n(2), &u), Err(DropReason::StaleUpdate));
    }

    #[test]
    fn blocks_about_us_or_unknown_nodes_are_skipped_not_fatal() {
        let mut a = adverts(&[2]);
        let u = update(
            0,
            100,
            alloc::vec![
                block(1, &[("kv", true)]),
                block(9, &[("kv", true)]),
                block(2, &[("kv", true)])
            ],
            false,
        );
        assert!(a.on_cap_update(n(2), &u).unwrap().newly_ok);
        assert!(a.of(n(1)).is_empty() && a.of(n(9)).is_empty());
        assert_eq!(
            a.on_cap_update(n(9), &update(0, 1, alloc::vec![], false)),
            Err(DropReason::UnknownSource)
        );
    }

    #[test]
    fn a_counter_that_starts_again_with_a_newer_timestamp_is_a_restart() {
        let mut a = adverts(&[2]);
        a.on_cap_update(n(2), &update(7, 100, alloc::vec![], false))
            .unwrap();
        let e = a
            .on_cap_update(n(2), &update(0, 200, alloc::vec![], false))
            .unwrap();
        assert!(e.restarted);
    }

    #[test]
    fn the_full_update_lists_us_then_every_other_node_but_the_destination() {
        let mut a = adverts(&[2, 3]);
        a.on_cap_update(
            n(3),
            &update(0, 1, alloc::vec![block(3, &[("kv", true)])], false),
        )
        .unwrap();
        a.on_cap_update(
            n(2),
            &update(0, 1, alloc::vec![block(2, &[("kv", false)])], false),
        )
        .unwrap();
        let u = a
            .full_update(Some(block(1, &[("kv", true)])), n(3), 50, true)
            .unwrap();
        let nodes: Vec<u32> = u.nodes.iter().map(|b| b.node.get()).collect();
        assert_eq!(nodes, [1, 2]);
        assert!(u.require_reply);
        assert_eq!((u.seq, u.timestamp), (0, 50));
        // Nothing to report: no update and the counter stays.
        let mut empty = adverts(&[2]);
        assert!(empty.full_update(None, n(2), 50, false).is_none());
        assert_eq!(
            empty.single_update("kv", true, 50, true).map(|u| u.seq),
            Some(0)
        );
    }

    #[test]
    fn a_single_update_without_listeners_does_not_count() {
        let mut a = adverts(&[2]);
        assert!(a.single_update("kv", true, 50, false).is_none());
        let u = a.single_update("kv", true, 51, true).unwrap();
        assert_eq!(u.seq, 0, "the counter did not move for the untold change");
        assert_eq!(u.nodes, [block(1, &[("kv", true)])]);
    }

    #[test]
    fn a_deferred_sync_reply_is_handed_out_once() {
        let mut a = adverts(&[2]);
        assert_eq!(
            a.defer_sync_reply(n(2), "kv"),
            Err(DropReason::UnknownCapability)
        );
        a.on_cap_update(
            n(2),
            &update(0, 1, alloc::vec![block(2, &[("kv", false)])], false),
        )
        .unwrap();
        a.defer_sync_reply(n(2), "kv").unwrap();
        assert_eq!(a.take_deferred_replies(n(2)), ["kv"]);
        assert!(a.take_deferred_replies(n(2)).is_empty());
        assert_eq!(
            a.defer_sync_reply(n(9), "kv"),
            Err(DropReason::UnknownSource)
        );
    }
}
