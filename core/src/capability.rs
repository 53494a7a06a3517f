//! Capabilities (behaviour.md §9.1–§9.4, §9.9, §9.10): registration, local and remote
//! capability state, CAP_UPDATE in its full and single forms, match operators, and
//! `get_my_index`.
//!
//! A capability is replicated application state. Its data path is the [`Capability`]
//! trait: the donor produces its records as sync chunks, the requester applies chunks and
//! live packets. The sync machinery itself lives in [`crate::sync`].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::cluster::Cluster;
use crate::id::{ClusterId, NodeId};
use crate::link::LinkState;
use crate::message::{CapUpdate, CapabilityBlock, CapabilityState, InternalBody, ModulePacket};
use crate::node::{Ctx, Node};
use crate::report::ReportRing;
use crate::stamp::{Freshness, SeqStamp};
use crate::time::{Instant, Now};

/// Prefix of the pseudo-capability by which a node advertises that it takes part in the
/// election of a sharing tag (`shtag-election:<tag>`). OpenSIPS peers store it like any
/// unknown capability and pass it on in their own CAP_UPDATEs.
pub const ELECTION_CAPABILITY_PREFIX: &str = "shtag-election:";

/// Node match operators (`match_node`, behaviour.md §9.4), used as sync conditions and by
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
/// cache of the daemon) and registered with [`Node::register_capability`]; the node calls
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

/// Sync status of a local capability (the `cap:<name>` status of behaviour.md §9.2).
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

impl Ctx<'_> {
    /// The local block of a CAP_UPDATE: every local capability with its advertised state,
    /// then the election adverts of sharing tags.
    fn local_cap_block(&self, c: &Cluster) -> Option<CapabilityBlock> {
        let mut capabilities: Vec<CapabilityState> = c
            .capabilities
            .iter()
            .map(|cap| CapabilityState {
                name: cap.name.clone(),
                ok: cap.advertised(),
            })
            .collect();
        capabilities.extend(c.shtags.election_tags().map(|t| CapabilityState {
            name: format!("{ELECTION_CAPABILITY_PREFIX}{t}"),
            ok: true,
        }));
        (!capabilities.is_empty()).then_some(CapabilityBlock {
            node: self.s.my_id,
            capabilities,
        })
    }

    /// Sends the full CAP_UPDATE to `dest` (behaviour.md §9.3): the local block, then every
    /// other node with a known capability except `dest`; nothing when there is nothing to
    /// report.
    pub(crate) fn send_full_cap_update(
        &mut self,
        c: &mut Cluster,
        dest: NodeId,
        require_reply: bool,
    ) {
        let mut nodes = Vec::new();
        if let Some(block) = self.local_cap_block(c) {
            nodes.push(block);
        }
        for n in c
            .nodes
            .iter()
            .filter(|n| n.id != dest && !n.capabilities.is_empty())
        {
            nodes.push(CapabilityBlock {
                node: n.id,
                capabilities: n
                    .capabilities
                    .iter()
                    .map(|r| CapabilityState {
                        name: r.name.clone(),
                        ok: r.ok,
                    })
                    .collect(),
            });
        }
        if nodes.is_empty() {
            return;
        }
        let stamp = c.local.cap.next(self.now.unix_wire());
        let u = cap_update(stamp, nodes, require_reply, self.s.my_id);
        self.send_internal(c, dest, InternalBody::CapUpdate(u));
    }

    /// Sends the single CAP_UPDATE for one local capability's new advertised state to every
    /// UP neighbour; nothing (and no counter increment) without one.
    pub(crate) fn send_single_cap_update(&mut self, c: &mut Cluster, name: &str, ok: bool) {
        let targets: Vec<NodeId> = c.up_neighbours().map(|n| n.id).collect();
        if targets.is_empty() {
            return;
        }
        let stamp = c.local.cap.next(self.now.unix_wire());
        let block = CapabilityBlock {
            node: self.s.my_id,
            capabilities: alloc::vec![CapabilityState {
                name: name.into(),
                ok
            }],
        };
        let u = cap_update(stamp, alloc::vec![block], false, self.s.my_id);
        for to in targets {
            self.send_internal(c, to, InternalBody::CapUpdate(u.clone()));
        }
    }

    /// CAP_UPDATE received (behaviour.md §9.3). Blocks about unknown nodes are skipped
    /// instead of aborting the whole message (quirk #14, lenient).
    pub(crate) fn handle_cap_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: CapUpdate,
    ) -> Result<(), crate::output::DropReason> {
        let Some(o) = c.node_mut(origin) else {
            return Err(crate::output::DropReason::UnknownSource);
        };
        let restarted = match o.cap.check(u.seq, u.timestamp, false) {
            Freshness::Fresh => false,
            Freshness::Restarted => true,
            Freshness::Stale | Freshness::Equal => {
                return Err(crate::output::DropReason::StaleUpdate);
            }
        };
        if restarted {
            // A restarted node holds no tag active, even if we never saw it unreachable.
            c.shtags.forget_announcer(origin);
        }
        let me = self.s.my_id;
        let mut newly_ok = false;
        for block in &u.nodes {
            if block.node == me {
                continue;
            }
            let Some(n) = c.node_mut(block.node) else {
                continue;
            };
            for state in &block.capabilities {
                match n.capabilities.iter_mut().find(|r| r.name == state.name) {
                    Some(r) => {
                        newly_ok |= state.ok && !r.ok;
                        r.ok = state.ok;
                    }
                    None => {
                        newly_ok |= state.ok;
                        n.capabilities.push(RemoteCapability {
                            name: state.name.clone(),
                            ok: state.ok,
                            sync_reply_pending: false,
                        });
                    }
                }
            }
        }
        if newly_ok {
            // A donor may have appeared for a queued request.
            self.resolve_pending_syncs(c);
        }
        self.with_shtags(c, |tags, port| tags.reevaluate(port));
        if u.require_reply {
            self.send_full_cap_update(c, origin, false);
        }
        let mut u = u;
        u.require_reply = false;
        self.flood(c, origin, InternalBody::CapUpdate(u));
        Ok(())
    }
}

fn cap_update(
    stamp: SeqStamp,
    nodes: Vec<CapabilityBlock>,
    require_reply: bool,
    me: NodeId,
) -> CapUpdate {
    CapUpdate {
        seq: stamp.seq,
        timestamp: stamp.timestamp,
        nodes,
        require_reply,
        path: alloc::vec![me],
    }
}

impl Node {
    /// Registers a capability in `cluster` (`cl_register_cap`). It starts enabled; synced
    /// when `startup_sync` is false, otherwise a sync is requested at once (queued until a
    /// donor appears).
    ///
    /// # Errors
    /// [`CapabilityError`]; nothing changed.
    pub fn register_capability(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Result<(), CapabilityError> {
        if name.is_empty()
            || name == crate::message::CAPABILITY_INTERNAL
            || name == crate::message::CAPABILITY_EXTRA
            || name.starts_with(ELECTION_CAPABILITY_PREFIX)
        {
            return Err(CapabilityError::ReservedName);
        }
        let c = self
            .cluster_mut(cluster)
            .ok_or(CapabilityError::UnknownCluster)?;
        if c.capabilities.iter().any(|cap| cap.name == name) {
            return Err(CapabilityError::AlreadyRegistered);
        }
        let cap = LocalCapability::new(name, startup_sync, condition, handler);
        // Most recently registered first, as OpenSIPS lists them.
        c.capabilities.insert(0, cap);
        if startup_sync {
            let _ = self.request_sync(now, cluster, name);
        }
        Ok(())
    }

    /// `clusterer_set_cap_status` (behaviour.md §9.9). Disabling clears the synced state
    /// (status −3, report `Capability disabled via MI, revert to not synced state`) and
    /// advertises state 0; enabling advertises the real state (quirk #6 fixed) and starts
    /// no sync.
    ///
    /// # Errors
    /// [`CapabilityError::UnknownCluster`] or [`CapabilityError::UnknownCapability`].
    pub fn set_capability_enabled(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        enabled: bool,
    ) -> Result<(), CapabilityError> {
        self.with_ctx(now, cluster, |ctx, c| {
            let index = c
                .capabilities
                .iter()
                .position(|cap| cap.name == name)
                .ok_or(CapabilityError::UnknownCapability)?;
            ctx.with_capability(c, index, |cap, port| cap.set_enabled(port, enabled));
            Ok(())
        })
        .unwrap_or(Err(CapabilityError::UnknownCluster))
    }

    /// `get_my_index` (behaviour.md §9.10): the local node's position in the sorted set of
    /// itself and every reachable node advertising `capability` synced, and the set size.
    pub fn my_index(&mut self, cluster: ClusterId, capability: &str) -> Option<(usize, usize)> {
        let me = self.s.my_id;
        let rerouting = self.s.rerouting;
        let c = self.cluster_mut(cluster)?;
        c.refresh_routes();
        let mut ids: Vec<NodeId> = c
            .nodes
            .iter()
            .filter(|n| n.capabilities.iter().any(|r| r.name == capability && r.ok))
            .filter(|n| c.cached_route(n.id, rerouting).is_some())
            .map(|n| n.id)
            .collect();
        ids.push(me);
        ids.sort();
        let index = ids.iter().filter(|&&id| id < me).count();
        Some((index, ids.len()))
    }

    /// Whether the link state allows using `node` directly (for tests and MI).
    pub fn link_state(&self, cluster: ClusterId, node: NodeId) -> Option<LinkState> {
        self.cluster(cluster)?.node(node).map(|n| n.link_state())
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
}
