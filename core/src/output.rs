//! What the core hands to its runtime (docs/behaviour.md §6, §16): the transmits to encode and
//! send, the events for the application, the reasons a received message was dropped, and
//! the bounded queues that hold transmits and events between two drains. A leaf: every
//! state machine and the coordinator write into `Outputs`; the runtime drains it through
//! `Node::poll_transmit` and `Node::poll_event`.

use alloc::collections::VecDeque;
use core::fmt;

use crate::address::NodeAddress;
use crate::config::ShtagState;
use crate::id::{ClusterId, NodeId};
use crate::message::{Message, RoutedBody};
use crate::report::ReportRing;

/// Most transmits queued between two drains; past it new transmits are dropped and counted
/// (the peers recover through probing and gossip).
pub const MAX_QUEUED_TRANSMITS: usize = 1 << 16;
/// Most events queued between two drains; past it new events are dropped and counted.
pub const MAX_QUEUED_EVENTS: usize = 1 << 12;

/// Opaque id the runtime gives each TCP connection, so a reply can go back on the connection
/// a packet came from (UNKNOWN_ID, docs/wire.md §7.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectionId(pub u64);

/// Where a transmit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitTo {
    /// To a node's URL (over the local node's outgoing connection to it).
    Node {
        /// The neighbour.
        id: NodeId,
        /// Its URL.
        address: NodeAddress,
    },
    /// Back on the connection a packet arrived on.
    Connection(ConnectionId),
}

/// A message for the runtime to encode and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The cluster it belongs to (report a failure with it).
    pub cluster: ClusterId,
    /// Destination of this hop.
    pub to: TransmitTo,
    /// The message.
    pub message: Message,
}

/// Something the application, MI or hooks may want to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `E_CLUSTERER_NODE_STATE_CHANGED`: a node became reachable (`up`) or unreachable.
    NodeStateChanged {
        /// Cluster.
        cluster: ClusterId,
        /// Node.
        node: NodeId,
        /// New reachability.
        up: bool,
    },
    /// `E_CLUSTERER_SHARING_TAG_CHANGED`: a sharing tag changed state.
    ShtagChanged {
        /// Tag name.
        name: alloc::string::String,
        /// Cluster.
        cluster: ClusterId,
        /// New state.
        state: ShtagState,
        /// Why, as in the `sharing_tags` report (`MI command`, `cluster broadcast from 2`, ...).
        reason: alloc::string::String,
    },
    /// A routed message addressed to this node for the application: GENERIC_MSG
    /// (`E_CLUSTERER_REQ_RECEIVED` / `E_CLUSTERER_RPL_RECEIVED`) or MI_CMD (run the command).
    Received {
        /// Cluster.
        cluster: ClusterId,
        /// Originator.
        source: NodeId,
        /// BIN version of the packet.
        version: i16,
        /// The body.
        body: RoutedBody,
    },
}

/// Why a received message was dropped; the Endpoint counts them by reason.
///
/// A drop is not always free of side effects: the checks run in this order, and what the
/// steps before the failing one did stays done.
///
/// 1. Own source id, our cluster, local node enabled: nothing has happened yet.
/// 2. The source is a known node: its receive time (`last_recv`, docs/behaviour.md §3.1) is
///    recorded — for every message but a PONG from an enabled node, which records it only
///    after its own check (§3.3).
/// 3. Routed messages from an enabled source: a DOWN link to the source restarts probing
///    (RESTART_PINGING; no packet, no event).
/// 4. The message's own handler: its drops change nothing more unless the variant says so.
///
/// Each variant names the steps that ran before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// The source id is our own id. State unchanged.
    OwnSource,
    /// The cluster is not one of ours. State unchanged.
    UnknownCluster,
    /// The local node is disabled in that cluster. State unchanged.
    LocalDisabled,
    /// The source id is not a known node and no discovery applies (a routed message; with
    /// `db_mode = 1` any message; with `db_mode = 0` anything but PING and
    /// NODE_DESCRIPTION). State unchanged. Also a SYNC_REQ from a known but unreachable
    /// requester the capability adverts hold nothing about: after steps 2 and 3.
    UnknownSource,
    /// The source node is administratively disabled. Its receive time was recorded (step 2,
    /// a PONG included); nothing else changed.
    SourceDisabled,
    /// An LS_UPDATE, FULL_TOP_UPDATE or CAP_UPDATE whose (seq, timestamp) is not newer than
    /// the stored pair (docs/wire.md §8). After step 2 (the sender's receive time); stored pairs,
    /// topology and adverts unchanged.
    StaleUpdate,
    /// An LS_UPDATE about a node we do not know (`db_mode = 1`). After step 2; nothing of
    /// the update is stored, so a FULL_TOP_UPDATE with the same state still applies.
    UnknownNeighbour,
    /// A node could not be learned from its NODE_DESCRIPTION: the cluster already holds 128
    /// other nodes. State unchanged (the sender is not known, step 2 did not run).
    ClusterFull,
    /// A node could not be learned from its NODE_DESCRIPTION: its URL does not parse.
    /// State unchanged.
    BadUrl,
    /// The message type is not handled in this mode: REMOVE_NODE with `db_mode = 1`.
    /// After steps 2 and 3.
    NotApplicable,
    /// A packet to relay names a destination we do not know. After steps 2 and 3.
    UnknownDestination,
    /// A packet to relay arrived while rerouting is disabled. After steps 2 and 3.
    ReroutingDisabled,
    /// A packet to relay has no route to its destination. After steps 2 and 3.
    NoRoute,
    /// A SYNC_REQ, SYNC, SYNC_END or module packet for a capability not registered here,
    /// or a SYNC_REQ from an unreachable requester that does not advertise the capability
    /// (its reply cannot be deferred). After steps 2 and 3.
    UnknownCapability,
    /// A SYNC_REQ, SYNC, SYNC_END or module packet for a capability disabled here. After
    /// steps 2 and 3.
    CapabilityDisabled,
    /// SYNC or SYNC_END from a node we did not ask while unsolicited syncs are ignored
    /// (quirk #12). After steps 2 and 3; the capability's sync state is unchanged.
    UnsolicitedSync,
}

impl DropReason {
    /// Every reason, for counters.
    pub const ALL: [DropReason; 16] = [
        DropReason::OwnSource,
        DropReason::UnknownCluster,
        DropReason::LocalDisabled,
        DropReason::UnknownSource,
        DropReason::SourceDisabled,
        DropReason::StaleUpdate,
        DropReason::UnknownNeighbour,
        DropReason::ClusterFull,
        DropReason::BadUrl,
        DropReason::NotApplicable,
        DropReason::UnknownDestination,
        DropReason::ReroutingDisabled,
        DropReason::NoRoute,
        DropReason::UnknownCapability,
        DropReason::CapabilityDisabled,
        DropReason::UnsolicitedSync,
    ];

    /// A short snake_case name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::OwnSource => "own_source",
            DropReason::UnknownCluster => "unknown_cluster",
            DropReason::LocalDisabled => "local_disabled",
            DropReason::UnknownSource => "unknown_source",
            DropReason::SourceDisabled => "source_disabled",
            DropReason::StaleUpdate => "stale_update",
            DropReason::UnknownNeighbour => "unknown_neighbour",
            DropReason::ClusterFull => "cluster_full",
            DropReason::BadUrl => "bad_url",
            DropReason::NotApplicable => "not_applicable",
            DropReason::UnknownDestination => "unknown_destination",
            DropReason::ReroutingDisabled => "rerouting_disabled",
            DropReason::NoRoute => "no_route",
            DropReason::UnknownCapability => "unknown_capability",
            DropReason::CapabilityDisabled => "capability_disabled",
            DropReason::UnsolicitedSync => "unsolicited_sync",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The bounded output queues.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub dropped_transmits: u64,
    pub dropped_events: u64,
    /// Transmits the runtime could not encode (reported with `Node::handle_unencodable`).
    pub unencodable_transmits: u64,
    /// The `sharing_tags` report ring (one for all clusters).
    pub shtag_reports: ReportRing,
    /// The `node_states` report ring (one for all clusters).
    pub node_state_reports: ReportRing,
}

impl Outputs {
    pub(crate) fn transmit(&mut self, t: Transmit) {
        if self.transmits.len() < MAX_QUEUED_TRANSMITS {
            self.transmits.push_back(t);
        } else {
            self.dropped_transmits += 1;
        }
    }

    pub(crate) fn event(&mut self, e: Event) {
        if self.events.len() < MAX_QUEUED_EVENTS {
            self.events.push_back(e);
        } else {
            self.dropped_events += 1;
        }
    }
}

/// Outcome of a send, as the OpenSIPS API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendStatus {
    /// 0: sent, or nothing to do (destination administratively disabled, no node matched).
    Success,
    /// 1: the local node is disabled in the cluster; nothing sent.
    CurrDisabled,
    /// −1: no route to the destination (every destination, for a broadcast).
    DestDown,
    /// −2: unknown cluster or destination; nothing sent.
    SendErr,
}

impl SendStatus {
    /// The numeric code of the OpenSIPS API.
    pub fn code(self) -> i32 {
        match self {
            SendStatus::Success => 0,
            SendStatus::CurrDisabled => 1,
            SendStatus::DestDown => -1,
            SendStatus::SendErr => -2,
        }
    }
}
