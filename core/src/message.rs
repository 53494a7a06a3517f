//! The typed protocol messages of the OpenSIPS 3.6 clusterer (docs/wire.md §3–§7), without bytes.
//!
//! `clusterer-proto` maps each type here to and from its exact byte layout. The names follow
//! the spec: a *prefix* message ([`Internal`], capability `clusterer-internal`) carries the
//! cluster and source ids first and travels hop by hop; a *routed* message ([`Routed`],
//! capability `clusterer-extra` or a module capability) carries a [`Trailer`] with cluster,
//! source and destination and may be relayed.
//!
//! Limits of the wire ([`MAX_NODES`], [`MAX_WIRE_PATH_LEN`], [`MAX_MI_PARAMS`]) are enforced
//! by the codec on both decode and emit, so a message that decodes can be emitted again and
//! the other way round.

use alloc::string::String;
use alloc::vec::Vec;

use crate::id::{ClusterId, NodeId};

/// Capability of the hop-by-hop probing and topology messages.
pub const CAPABILITY_INTERNAL: &str = "clusterer-internal";
/// Capability of the routable cluster service messages.
pub const CAPABILITY_EXTRA: &str = "clusterer-extra";
/// BIN version of every clusterer message except the sync family (`BIN_VERSION`).
pub const BIN_VERSION: i16 = 1;
/// BIN version of SYNC_REQ, SYNC and SYNC_END (`BIN_SYNC_VERSION`).
pub const BIN_SYNC_VERSION: i16 = 3;
/// Most other nodes one cluster may hold, and most entries in a node list on the wire
/// (`MAX_NO_NODES`).
pub const MAX_NODES: usize = 128;
/// Most clusters one node may be a member of (`MAX_NO_CLUSTERS`).
pub const MAX_CLUSTERS: usize = 64;
/// A received path longer than this is applied but not flooded further
/// (`UPDATE_MAX_PATH_LEN`, docs/wire.md §5).
pub const MAX_FLOOD_PATH_LEN: usize = 25;
/// Longest path that can appear on the wire: a packet received with 25 entries is forwarded
/// once more with 26.
pub const MAX_WIRE_PATH_LEN: usize = MAX_FLOOD_PATH_LEN + 1;
/// Most parameters of a remote MI command (`MAX_MI_PARAMS`).
pub const MAX_MI_PARAMS: usize = 10;
/// Most node blocks in one CAP_UPDATE: the originator plus [`MAX_NODES`] others.
pub const MAX_CAP_NODES: usize = MAX_NODES + 1;

/// Sizes on the wire that the core must plan with (docs/wire.md §2, §7.11–§7.13): the
/// codec in `clusterer-proto` uses these same constants, so there is one definition of
/// each.
pub mod sizes {
    use super::CAPABILITY_EXTRA;

    /// Bytes before the capability name: marker (4), total length (4), version (2).
    pub const FIXED_HEADER_LEN: usize = 4 + 4 + 2;
    /// Largest packet the node emits (docs/wire.md §2.2; receivers accept up to 65535).
    pub const MAX_EMIT_LEN: usize = 65515;
    /// The routing trailer: cluster, source and destination ids (3 × 4 bytes).
    pub const TRAILER_LEN: usize = 12;
    /// The header of one sync chunk: its size and its marker (2 × 4 bytes).
    pub const SYNC_CHUNK_HEADER_LEN: usize = 8;

    /// Bytes of a SYNC packet for capability `name` before its first chunk and without
    /// the trailer: header, capability length (2) and `clusterer-extra`, message type (4),
    /// the name with its length (2), and the data version (4).
    pub const fn sync_overhead(name_len: usize) -> usize {
        FIXED_HEADER_LEN + 2 + CAPABILITY_EXTRA.len() + 4 + 2 + name_len + 4
    }
}

/// A decoded packet of any capability the codec knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A hop-by-hop `clusterer-internal` packet.
    Internal(Internal),
    /// A routable packet: `clusterer-extra` or a module capability.
    Routed(Routed),
}

impl Message {
    /// The cluster this message belongs to.
    pub fn cluster(&self) -> ClusterId {
        match self {
            Message::Internal(m) => m.cluster,
            Message::Routed(m) => m.trailer.cluster,
        }
    }

    /// The originating node (prefix P2 or trailer T2).
    pub fn source(&self) -> NodeId {
        match self {
            Message::Internal(m) => m.source,
            Message::Routed(m) => m.trailer.source,
        }
    }

    /// The final destination, for routed messages only.
    pub fn destination(&self) -> Option<NodeId> {
        match self {
            Message::Internal(_) => None,
            Message::Routed(m) => Some(m.trailer.destination),
        }
    }

    /// The spec name of the message type (`PING`, `SYNC_END`, ...; `MODULE` for module
    /// packets).
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// What kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Internal(m) => m.body.kind(),
            Message::Routed(m) => m.body.kind(),
        }
    }
}

/// The kinds of message (docs/wire.md §7), with the names the spec and our logs, traces
/// and metrics use. The one table of those names: the codec's views, the simulator's
/// trace and the dissector map to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageKind {
    /// `clusterer-internal` type 0.
    Ping,
    /// `clusterer-internal` type 1.
    Pong,
    /// `clusterer-internal` type 2.
    LsUpdate,
    /// `clusterer-internal` type 3.
    FullTopUpdate,
    /// `clusterer-internal` type 4.
    UnknownId,
    /// `clusterer-internal` type 5.
    NodeDescription,
    /// `clusterer-internal` type 9.
    CapUpdate,
    /// `clusterer-extra` type 6.
    RemoveNode,
    /// `clusterer-extra` type 7.
    GenericMsg,
    /// `clusterer-extra` type 8.
    MiCmd,
    /// `clusterer-extra` type 10.
    SyncReq,
    /// `clusterer-extra` type 11.
    Sync,
    /// `clusterer-extra` type 12.
    SyncEnd,
    /// `clusterer-extra` type 13.
    ShtagActive,
    /// A packet of another (module) capability.
    Module,
}

impl MessageKind {
    /// The spec name: `PING`, `FULL_TOP_UPDATE`, `GENERIC_MSG`, …, `MODULE`.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Ping => "PING",
            MessageKind::Pong => "PONG",
            MessageKind::LsUpdate => "LS_UPDATE",
            MessageKind::FullTopUpdate => "FULL_TOP_UPDATE",
            MessageKind::UnknownId => "UNKNOWN_ID",
            MessageKind::NodeDescription => "NODE_DESCRIPTION",
            MessageKind::CapUpdate => "CAP_UPDATE",
            MessageKind::RemoveNode => "REMOVE_NODE",
            MessageKind::GenericMsg => "GENERIC_MSG",
            MessageKind::MiCmd => "MI_CMD",
            MessageKind::SyncReq => "SYNC_REQ",
            MessageKind::Sync => "SYNC",
            MessageKind::SyncEnd => "SYNC_END",
            MessageKind::ShtagActive => "SHTAG_ACTIVE",
            MessageKind::Module => "MODULE",
        }
    }

    /// Whether it is a hop-by-hop `clusterer-internal` message (not routed).
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            MessageKind::Ping
                | MessageKind::Pong
                | MessageKind::LsUpdate
                | MessageKind::FullTopUpdate
                | MessageKind::UnknownId
                | MessageKind::NodeDescription
                | MessageKind::CapUpdate
        )
    }
}

impl core::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `clusterer-internal` packet: the prefix (docs/wire.md §4) and one of the internal bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Internal {
    /// BIN header version; [`BIN_VERSION`] when we build the message. OpenSIPS does not check
    /// it on receipt, so any value is accepted and kept for byte-exact re-emission.
    pub version: i16,
    /// Prefix P1.
    pub cluster: ClusterId,
    /// Prefix P2: the originator (flooded packets keep it).
    pub source: NodeId,
    /// The type-specific fields.
    pub body: InternalBody,
}

impl Internal {
    /// An internal message with the standard BIN version.
    pub fn new(cluster: ClusterId, source: NodeId, body: InternalBody) -> Self {
        Self {
            version: BIN_VERSION,
            cluster,
            source,
            body,
        }
    }
}

/// The bodies of `clusterer-internal` packets (docs/wire.md §7.1–§7.6, §7.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InternalBody {
    /// Type 0.
    Ping(Ping),
    /// Type 1.
    Pong(Pong),
    /// Type 2.
    LsUpdate(LsUpdate),
    /// Type 3.
    FullTopUpdate(FullTopUpdate),
    /// Type 4: "I do not know you" (db_mode 0), no fields.
    UnknownId,
    /// Type 5.
    NodeDescription(NodeDescription),
    /// Type 9.
    CapUpdate(CapUpdate),
}

impl InternalBody {
    /// The spec name of the type.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// What kind of message this body makes.
    pub fn kind(&self) -> MessageKind {
        match self {
            InternalBody::Ping(_) => MessageKind::Ping,
            InternalBody::Pong(_) => MessageKind::Pong,
            InternalBody::LsUpdate(_) => MessageKind::LsUpdate,
            InternalBody::FullTopUpdate(_) => MessageKind::FullTopUpdate,
            InternalBody::UnknownId => MessageKind::UnknownId,
            InternalBody::NodeDescription(_) => MessageKind::NodeDescription,
            InternalBody::CapUpdate(_) => MessageKind::CapUpdate,
        }
    }

    /// The path of a flooded body (LS_UPDATE, FULL_TOP_UPDATE, NODE_DESCRIPTION,
    /// CAP_UPDATE), `None` for the others.
    pub fn path(&self) -> Option<&Vec<NodeId>> {
        match self {
            InternalBody::LsUpdate(m) => Some(&m.path),
            InternalBody::FullTopUpdate(m) => Some(&m.path),
            InternalBody::NodeDescription(m) => Some(&m.path),
            InternalBody::CapUpdate(m) => Some(&m.path),
            InternalBody::Ping(_) | InternalBody::Pong(_) | InternalBody::UnknownId => None,
        }
    }

    /// Mutable access to the path of a flooded body, for forwarders.
    pub fn path_mut(&mut self) -> Option<&mut Vec<NodeId>> {
        match self {
            InternalBody::LsUpdate(m) => Some(&mut m.path),
            InternalBody::FullTopUpdate(m) => Some(&mut m.path),
            InternalBody::NodeDescription(m) => Some(&mut m.path),
            InternalBody::CapUpdate(m) => Some(&mut m.path),
            InternalBody::Ping(_) | InternalBody::Pong(_) | InternalBody::UnknownId => None,
        }
    }
}

/// PING (docs/wire.md §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ping {
    /// `true` asks the peer to list the node ids it knows in its PONG; `false` is the
    /// keep-alive sent on an UP link.
    pub req_node_list: bool,
}

/// PONG (docs/wire.md §7.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Pong {
    /// The nodes the ponger knows, except itself and the pinger; empty when the PING did not
    /// ask for the list. At most [`MAX_NODES`].
    pub nodes: Vec<NodeId>,
}

/// Link state carried by LS_UPDATE (only these two values exist on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkUpdate {
    /// Wire value 0 (`LS_UP`).
    Up,
    /// Wire value 1 (`LS_DOWN`).
    Down,
}

/// LS_UPDATE (docs/wire.md §7.3): the originator's link to `neighbour` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsUpdate {
    /// The originator's ls counter (first value after a start is 0).
    pub seq: i32,
    /// The originator's UNIX time in seconds.
    pub timestamp: i32,
    /// The node at the other end of the changed link.
    pub neighbour: NodeId,
    /// The new state of the link.
    pub state: LinkUpdate,
    /// Originator first, then each forwarder; 1..=[`MAX_WIRE_PATH_LEN`] entries.
    pub path: Vec<NodeId>,
}

/// What a node says about itself: its URL and the values a peer needs to probe and rank it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its BIN URL as provisioned, e.g. `bin:10.0.0.1:5566`.
    pub url: String,
    /// Its SIP address (may be empty).
    pub sip_addr: String,
    /// Next-hop tie-breaker, lower is preferred.
    pub priority: i32,
    /// Its configured `no_ping_retries`.
    pub no_ping_retries: i32,
}

/// NODE_DESCRIPTION (docs/wire.md §7.6); the described node is the message source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDescription {
    /// The description.
    pub info: NodeInfo,
    /// Originator first, then each forwarder.
    pub path: Vec<NodeId>,
}

/// One node entry of a FULL_TOP_UPDATE (docs/wire.md §7.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyEntry {
    /// The node described by this entry.
    pub node: NodeId,
    /// Present when the sender thinks the destination does not know the node yet.
    pub description: Option<NodeInfo>,
    /// That node's ls counter as known by the sender (−1 if none yet).
    pub ls_seq: i32,
    /// That node's ls timestamp as known by the sender (0 if none yet).
    pub ls_timestamp: i32,
    /// That node's UP links as known by the sender; at most [`MAX_NODES`].
    pub neighbours: Vec<NodeId>,
}

/// FULL_TOP_UPDATE (docs/wire.md §7.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullTopUpdate {
    /// The originator's top counter.
    pub seq: i32,
    /// The originator's UNIX time in seconds.
    pub timestamp: i32,
    /// The originator first, then the other nodes it knows; at most [`MAX_NODES`].
    pub entries: Vec<TopologyEntry>,
    /// Originator first, then each forwarder.
    pub path: Vec<NodeId>,
}

/// A capability name and whether the node advertises it as synced (OK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityState {
    /// Capability name, e.g. `dialog-dlg-repl`.
    pub name: String,
    /// Wire 1 = synced/OK, 0 = not OK.
    pub ok: bool,
}

/// One node block of a CAP_UPDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityBlock {
    /// The node whose capabilities follow.
    pub node: NodeId,
    /// Its capabilities.
    pub capabilities: Vec<CapabilityState>,
}

/// CAP_UPDATE (docs/wire.md §7.10), full or single form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapUpdate {
    /// The originator's cap counter.
    pub seq: i32,
    /// The originator's UNIX time in seconds.
    pub timestamp: i32,
    /// Node blocks; at most [`MAX_CAP_NODES`].
    pub nodes: Vec<CapabilityBlock>,
    /// Ask the receiver to answer with its own full form (forced to `false` by forwarders).
    pub require_reply: bool,
    /// Originator first, then each forwarder.
    pub path: Vec<NodeId>,
}

/// The routing trailer of routable packets (docs/wire.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trailer {
    /// T1.
    pub cluster: ClusterId,
    /// T2: the originator, never changed by relays.
    pub source: NodeId,
    /// T3: the final destination.
    pub destination: NodeId,
}

/// A routable packet: `clusterer-extra` or a module capability, with its trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    /// BIN header version: [`BIN_VERSION`] or [`BIN_SYNC_VERSION`] for clusterer-extra
    /// (see [`RoutedBody::standard_version`]), the module's own version for module packets.
    pub version: i16,
    /// Cluster, originator and final destination.
    pub trailer: Trailer,
    /// The type-specific fields.
    pub body: RoutedBody,
}

impl Routed {
    /// A routed message with the body's standard BIN version.
    pub fn new(trailer: Trailer, body: RoutedBody) -> Self {
        Self {
            version: body.standard_version(),
            trailer,
            body,
        }
    }
}

/// The bodies of routable packets (docs/wire.md §7.7–§7.9, §7.11–§7.15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutedBody {
    /// clusterer-extra type 6.
    RemoveNode(RemoveNode),
    /// clusterer-extra type 7.
    GenericMsg(GenericMsg),
    /// clusterer-extra type 8.
    MiCmd(MiCmd),
    /// clusterer-extra type 10.
    SyncReq(SyncReq),
    /// clusterer-extra type 11.
    Sync(Sync),
    /// clusterer-extra type 12.
    SyncEnd(SyncEnd),
    /// clusterer-extra type 13.
    ShtagActive(ShtagActive),
    /// Any other capability: an opaque module payload.
    Module(ModulePacket),
}

impl RoutedBody {
    /// The spec name of the type (`MODULE` for module packets).
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// What kind of message this body makes.
    pub fn kind(&self) -> MessageKind {
        match self {
            RoutedBody::RemoveNode(_) => MessageKind::RemoveNode,
            RoutedBody::GenericMsg(_) => MessageKind::GenericMsg,
            RoutedBody::MiCmd(_) => MessageKind::MiCmd,
            RoutedBody::SyncReq(_) => MessageKind::SyncReq,
            RoutedBody::Sync(_) => MessageKind::Sync,
            RoutedBody::SyncEnd(_) => MessageKind::SyncEnd,
            RoutedBody::ShtagActive(_) => MessageKind::ShtagActive,
            RoutedBody::Module(_) => MessageKind::Module,
        }
    }

    /// The BIN version OpenSIPS uses for this body: 3 for the sync family, 1 for the other
    /// clusterer-extra types, and 1 for module packets (modules pick their own; set
    /// [`Routed::version`] explicitly for them).
    pub fn standard_version(&self) -> i16 {
        match self {
            RoutedBody::SyncReq(_) | RoutedBody::Sync(_) | RoutedBody::SyncEnd(_) => {
                BIN_SYNC_VERSION
            }
            _ => BIN_VERSION,
        }
    }
}

/// REMOVE_NODE (docs/wire.md §7.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RemoveNode {
    /// The node every receiver must forget (the target disables itself).
    pub node: NodeId,
}

/// Whether a GENERIC_MSG is a request or a reply (`req_like`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GenericKind {
    /// Wire 1: raises REQ_RECEIVED.
    Request,
    /// Wire 0: raises RPL_RECEIVED.
    Reply,
}

/// GENERIC_MSG (docs/wire.md §7.8): script-level request or reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericMsg {
    /// Request or reply.
    pub kind: GenericKind,
    /// Exchange tag, opaque to receivers.
    pub tag: Vec<u8>,
    /// The message payload.
    pub payload: Vec<u8>,
}

/// MI_CMD (docs/wire.md §7.9): run an MI command with positional string parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiCmd {
    /// MI command name.
    pub command: String,
    /// Positional parameters; at most [`MAX_MI_PARAMS`].
    pub params: Vec<String>,
}

/// SYNC_REQ (docs/wire.md §7.11): the source asks the destination for a full data sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReq {
    /// The capability whose data is requested.
    pub capability: String,
}

/// SYNC (docs/wire.md §7.12): one packet of a donor's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sync {
    /// The capability whose data this is.
    pub capability: String,
    /// The module's own data version.
    pub data_version: i32,
    /// Module data of each chunk (the 8-byte chunk header is implied).
    pub chunks: Vec<Vec<u8>>,
}

/// SYNC_END (docs/wire.md §7.13): the donor's total chunk count for one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEnd {
    /// The capability of the finished reply.
    pub capability: String,
    /// Chunks sent in all SYNC packets of the reply (≥ 0).
    pub chunk_count: u32,
}

/// SHTAG_ACTIVE (docs/wire.md §7.14): the source is now active for the tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShtagActive {
    /// Tag name, without the `/cluster_id` suffix.
    pub tag: String,
}

/// A module (capability) packet (docs/wire.md §7.15): opaque payload for the capability's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulePacket {
    /// The BIN capability name, e.g. `cachedb-local-repl`.
    pub capability: String,
    /// The module-defined packet type.
    pub packet_type: i32,
    /// The module payload, trailer excluded.
    pub payload: Vec<u8>,
}

/// The live packets of the `cachedb-local-repl` capability (docs/cachedb-local.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CachedbLocalPacket {
    /// Type 1: store `key` = `value` in `collection`.
    Insert(CachedbLocalEntry),
    /// Type 2: remove `key` from `collection`.
    Remove {
        /// Collection name as configured (without `/r`).
        collection: String,
        /// The key.
        key: Vec<u8>,
    },
}

/// One `cachedb-local-repl` record: an INSERT body and also the data of one sync chunk
/// (docs/cachedb-local.md §4.2, §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedbLocalEntry {
    /// Collection name as configured (without `/r`).
    pub collection: String,
    /// The key.
    pub key: Vec<u8>,
    /// The value (may be empty).
    pub value: Vec<u8>,
    /// Relative lifetime in seconds; 0 = never expires; negative values exist on the wire.
    pub expiry: i32,
}
