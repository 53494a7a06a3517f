//! The sans-IO [`Endpoint`]: a [`Node`] plus everything between it and the bytes.
//!
//! The endpoint owns the node, one [`Deframer`] per TCP connection and the codec. It maps
//! connections to peer addresses, applies the source checks of docs/wire.md §9 that need an IP
//! address (the id-based checks are the node's), relays through the node, encodes the
//! node's transmits, and counts every dropped packet by reason. Runtimes own sockets and
//! timers only; commands (`set_status`, `send_to`, ...) go through the endpoint too, so it
//! sees every input and its time.
//!
//! # The driving loop
//!
//! Every runtime (tokio daemon, embassy firmware, simulator) runs this one loop:
//!
//! ```
//! use clusterer_core::{ClusterConfig, ClusterId, Config, ConnectionId, DbMode, NodeConfig, NodeId, Now};
//! use clusterer_proto::endpoint::{Endpoint, EndpointOptions};
//!
//! let me = NodeId::new(1).unwrap();
//! let mut config = Config::new(me, DbMode::Discovery);
//! config.clusters.push(ClusterConfig {
//!     id: ClusterId::new(1).unwrap(),
//!     local: NodeConfig::new(me, "bin:127.0.0.1:5566"),
//!     nodes: vec![NodeConfig::new(NodeId::new(2).unwrap(), "bin:127.0.0.2:5566")],
//! });
//! let mut endpoint = Endpoint::new(config, EndpointOptions::default(), Now::new(0, 1_700_000_000), 7)?;
//!
//! // 1. Feed inputs: connection events, bytes, timeouts, send failures, commands.
//! let now = Now::new(1000, 1_700_000_001);
//! endpoint.handle_timeout(now);
//! // 2. Drain outputs: packets to write, events to deliver.
//! while let Some(packet) = endpoint.poll_transmit() {
//!     // Write `packet.bytes` to the outgoing connection for `packet.info.to` (connect
//!     // first if needed); if the transport refuses it, hand it back:
//!     // endpoint.handle_send_failed(now, packet);
//!     assert_eq!(&packet.bytes[..4], b"P4CK");
//! }
//! while let Some(_event) = endpoint.poll_event() {}
//! // 3. Sleep until the deadline or the next input.
//! let deadline = endpoint.poll_timeout();
//! assert!(deadline > now.instant);
//! # Ok::<(), clusterer_core::ConfigError>(())
//! ```
//!
//! # Without an allocation per packet
//!
//! A runtime with one fixed send buffer drains with
//! [`poll_transmit_into`](Endpoint::poll_transmit_into) instead: each packet is encoded
//! straight into the buffer, and a buffer of [`MAX_EMIT_LEN`](crate::wire::MAX_EMIT_LEN)
//! (65515) bytes always fits. A refused packet goes back with
//! [`handle_send_failed_bytes`](Endpoint::handle_send_failed_bytes); only a routed packet the
//! node re-routes is copied (to be written again later).
//!
//! ```
//! # use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId, Now};
//! # use clusterer_proto::endpoint::{Endpoint, EndpointOptions};
//! # let me = NodeId::new(1).unwrap();
//! # let mut config = Config::new(me, DbMode::Discovery);
//! # config.clusters.push(ClusterConfig {
//! #     id: ClusterId::new(1).unwrap(),
//! #     local: NodeConfig::new(me, "bin:127.0.0.1:5566"),
//! #     nodes: vec![NodeConfig::new(NodeId::new(2).unwrap(), "bin:127.0.0.2:5566")],
//! # });
//! # let mut endpoint = Endpoint::new(config, EndpointOptions::default(), Now::new(0, 0), 7)?;
//! use clusterer_proto::wire::MAX_EMIT_LEN;
//!
//! let mut buf = [0u8; MAX_EMIT_LEN];
//! let now = Now::new(1000, 1);
//! endpoint.handle_timeout(now);
//! while let Ok(Some((info, len))) = endpoint.poll_transmit_into(&mut buf) {
//!     // Write `buf[..len]` toward `info.to`; if the transport refuses it:
//!     // endpoint.handle_send_failed_bytes(now, info, &buf[..len]);
//!     assert_eq!(info.type_name, "PING");
//!     assert_eq!(&buf[..4], b"P4CK");
//! }
//! # Ok::<(), clusterer_core::ConfigError>(())
//! ```

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use clusterer_core::capability::{Capability, CapabilityError, NodeMatch};
use clusterer_core::message::{Internal, InternalBody, Message, RoutedBody};
use clusterer_core::node::{MAX_QUEUED_TRANSMITS, Transmit};
use clusterer_core::{
    ClusterConfig, ClusterId, Config, ConfigError, ConnectionId, DbMode, DropReason, Event,
    Instant, Node, NodeAddress, NodeId, Now, RemoveNodeError, RequestSync, SendStatus,
    SetStatusError, ShtagError, ShtagReason, TransmitTo,
};

use crate::deframer::Deframer;
use crate::wire::{self, DecodeError, EmitError};

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl fmt::Display for IpNet {
    /// `ADDR/PREFIX`, the form [`IpNet::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A CIDR string that does not parse; the message names the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetError(&'static str);

impl fmt::Display for IpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for IpNetError {}

impl IpNet {
    /// Parses `ADDR/PREFIX` (a bare address means a single host).
    ///
    /// # Errors
    /// [`IpNetError`] when the address or the prefix length is invalid.
    pub fn parse(s: &str) -> Result<Self, IpNetError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| IpNetError("prefix length is not a number"))?,
        };
        if prefix > max {
            return Err(IpNetError(
                "prefix length is too long for the address family",
            ));
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` lies in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), self.prefix, 32)
                    == masked(u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Endpoint options beyond the OpenSIPS parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// With `db_mode = 0`, accept discovery (PING from an unknown id, NODE_DESCRIPTION) only
    /// from these networks. `None` accepts any host, as OpenSIPS does (quirk #24).
    pub discovery_allow: Option<Vec<IpNet>>,
    /// Longest incoming packet accepted per connection (a memory bound: each connection's
    /// deframer may buffer one); a longer one closes the connection as a framing error.
    /// `None`: 65535, the protocol's limit.
    pub max_packet_len: Option<usize>,
}

/// Where an encoded packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// To this node's URL, over the local node's outgoing connection to it (opened from
    /// the local URL's IP address if needed).
    Node {
        /// The neighbour (this hop).
        id: NodeId,
        /// Its URL.
        address: NodeAddress,
    },
    /// Back on an existing connection.
    Connection(ConnectionId),
}

impl From<TransmitTo> for Destination {
    fn from(to: TransmitTo) -> Self {
        match to {
            TransmitTo::Node { id, address } => Destination::Node { id, address },
            TransmitTo::Connection(c) => Destination::Connection(c),
        }
    }
}

/// The send lane of a packet. A runtime writes every queued [`Lane::Control`] packet of a
/// connection before its next [`Lane::Bulk`] one, so liveness never waits behind bulk data:
/// a PONG queued behind megabytes of SYNC packets arrived after the requester's
/// `ping_timeout` and the link to its donor flapped in the middle of a large sync. Order
/// is kept within each lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Hop-by-hop `clusterer-internal` packets (PING, PONG, LS_UPDATE, FULL_TOP_UPDATE,
    /// CAP_UPDATE, UNKNOWN_ID, NODE_DESCRIPTION): link liveness, topology and capability
    /// adverts. Few and small.
    Control,
    /// Routed packets (SYNC_REQ, SYNC data and its SYNC_END, module packets, GENERIC_MSG,
    /// MI_CMD, SHTAG_ACTIVE, REMOVE_NODE). SYNC_END stays behind the SYNC packets it ends
    /// because both are in this lane.
    Bulk,
}

impl Lane {
    /// The lane of `message`.
    pub fn of(message: &Message) -> Lane {
        match message {
            Message::Internal(_) => Lane::Control,
            Message::Routed(_) => Lane::Bulk,
        }
    }
}

/// What a packet carries, as far as a failed send is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// A PING: a refusal takes the "fails" branch of the probing rule that sent it.
    Probe,
    /// Any other hop-by-hop `clusterer-internal` message: a refusal restarts probing.
    Internal,
    /// A routed message (`clusterer-extra` or a module packet): a refusal restarts probing
    /// of the hop, and the same bytes may go out again through another hop.
    Routed {
        /// The final destination (trailer T3).
        destination: NodeId,
    },
}

impl PacketKind {
    /// The kind of `message`.
    pub fn of(message: &Message) -> PacketKind {
        match message {
            Message::Internal(Internal {
                body: InternalBody::Ping(_),
                ..
            }) => PacketKind::Probe,
            Message::Internal(_) => PacketKind::Internal,
            Message::Routed(m) => PacketKind::Routed {
                destination: m.trailer.destination,
            },
        }
    }
}

/// Everything about an encoded packet but its bytes: enough to write it, and to report a
/// failed write without decoding the bytes again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Cluster of the packet.
    pub cluster: ClusterId,
    /// Where it goes.
    pub to: Destination,
    /// Its send lane.
    pub lane: Lane,
    /// Probe, other hop-by-hop message, or routed (with its final destination).
    pub kind: PacketKind,
    /// The spec name of the message type (`PING`, `SYNC`, ...; `MODULE` for module
    /// packets), from [`Message::type_name`].
    pub type_name: &'static str,
    /// A routed packet another node originated, forwarded by this one.
    pub relayed: bool,
}

impl PacketInfo {
    fn of(transmit: &Transmit, me: NodeId) -> PacketInfo {
        let message = &transmit.message;
        PacketInfo {
            cluster: transmit.cluster,
            to: transmit.to.into(),
            lane: Lane::of(message),
            kind: PacketKind::of(message),
            type_name: message.type_name(),
            relayed: matches!(message, Message::Routed(r) if r.trailer.source != me),
        }
    }
}

/// An encoded packet to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// What it is and where it goes (hand it back unchanged on failure).
    pub info: PacketInfo,
    /// The packet bytes (at most 65515).
    pub bytes: Vec<u8>,
}

/// The buffer given to [`Endpoint::poll_transmit_into`] is smaller than the next packet.
/// The packet stays queued: call again with at least `needed` bytes (a buffer of
/// [`MAX_EMIT_LEN`](crate::wire::MAX_EMIT_LEN) always fits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// The size of the next packet.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the next packet needs a buffer of {} bytes", self.needed)
    }
}

impl core::error::Error for BufferTooSmall {}

/// Why the endpoint dropped a received packet or an outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// The bytes did not decode (named by the decode error).
    Malformed(&'static str),
    /// A known source id arrived from an IP address that belongs to no node of the cluster.
    SourceIpMismatch,
    /// Discovery from an address outside the allow-list.
    DiscoveryNotAllowed,
    /// The node ignored the message.
    Node(DropReason),
    /// A message of the node could not be encoded (too large). It was also reported to the
    /// node as a failed send to its hop (see [`Endpoint::poll_transmit`]).
    Unencodable,
    /// A routed packet the node re-routed after a failed send found the endpoint's resend
    /// queue full ([`MAX_QUEUED_TRANSMITS`] packets).
    ResendQueueFull,
    /// Bytes arrived on a connection the runtime never announced.
    UnknownConnection,
}

impl DropCause {
    /// A stable snake_case name for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            DropCause::Malformed(_) => "malformed",
            DropCause::SourceIpMismatch => "source_ip_mismatch",
            DropCause::DiscoveryNotAllowed => "discovery_not_allowed",
            DropCause::Node(r) => r.name(),
            DropCause::Unencodable => "unencodable",
            DropCause::ResendQueueFull => "resend_queue_full",
            DropCause::UnknownConnection => "unknown_connection",
        }
    }
}

/// Traffic counters of the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets decoded from peers.
    pub received: u64,
    /// Packets encoded for sending (including relays and resends).
    pub sent: u64,
    /// Routed packets forwarded for other nodes.
    pub relayed: u64,
    /// Sends the transport reported as failed.
    pub send_failures: u64,
    /// Connections closed for a framing error.
    pub framing_errors: u64,
    /// Dropped packets by cause.
    pub dropped: BTreeMap<DropCause, u64>,
}

impl Counters {
    /// Total dropped packets.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    fn drop(&mut self, cause: DropCause) {
        *self.dropped.entry(cause).or_insert(0) += 1;
    }
}

/// The connection must be closed: its byte stream is not BIN (docs/wire.md §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingError(pub DecodeError);

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "framing error, closing the connection: {}", self.0)
    }
}

impl core::error::Error for FramingError {}

#[derive(Debug)]
struct Connection {
    peer: SocketAddr,
    deframer: Deframer,
}

/// Routed bytes to write again to a new hop, once `due` node transmits have been taken
/// (the place the node gave them in its output).
#[derive(Debug)]
struct Resend {
    due: u64,
    packet: OutgoingPacket,
}

/// A [`Node`] with its connections and codec.
#[derive(Debug)]
pub struct Endpoint {
    node: Node,
    options: EndpointOptions,
    connections: BTreeMap<ConnectionId, Connection>,
    counters: Counters,
    /// Node transmits taken from the node so far (including `held`).
    taken: u64,
    /// A node transmit taken but not written: the caller's buffer was too small.
    held: Option<Transmit>,
    /// Re-routed packets, in output order (`due` never decreases).
    resends: VecDeque<Resend>,
}

impl Endpoint {
    /// Builds the endpoint and its node.
    ///
    /// # Errors
    /// [`ConfigError`] from the node.
    pub fn new(
        config: Config,
        options: EndpointOptions,
        now: Now,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        Ok(Endpoint {
            node: Node::new(config, now, seed)?,
            options,
            connections: BTreeMap::new(),
            counters: Counters::default(),
            taken: 0,
            held: None,
            resends: VecDeque::new(),
        })
    }

    /// The node, for queries. Commands go through the endpoint's own methods.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Traffic and drop counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A TCP connection was opened (accepted, or connected by us) with `peer`.
    pub fn handle_connection_opened(&mut self, connection: ConnectionId, peer: SocketAddr) {
        self.connections.insert(
            connection,
            Connection {
                peer,
                deframer: self
                    .options
                    .max_packet_len
                    .map_or_else(Deframer::new, Deframer::with_limit),
            },
        );
    }

    /// A TCP connection was closed; partial packets on it are discarded.
    pub fn handle_connection_closed(&mut self, connection: ConnectionId) {
        self.connections.remove(&connection);
    }

    /// Bytes read from a connection: every complete packet is decoded and handled.
    ///
    /// # Errors
    /// [`FramingError`]: close the connection (and call
    /// [`handle_connection_closed`](Self::handle_connection_closed)).
    pub fn handle_bytes(
        &mut self,
        now: Now,
        connection: ConnectionId,
        bytes: &[u8],
    ) -> Result<(), FramingError> {
        let Some(conn) = self.connections.get_mut(&connection) else {
            self.counters.drop(DropCause::UnknownConnection);
            return Ok(());
        };
        let peer = conn.peer.ip();
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let result = conn.deframer.feed(bytes, |p| packets.push(p.to_vec()));
        for p in packets {
            self.handle_packet(now, connection, peer, &p);
        }
        result.map_err(|e| {
            self.counters.framing_errors += 1;
            FramingError(e)
        })
    }

    /// One complete packet from `peer` on `connection`.
    pub fn handle_packet(
        &mut self,
        now: Now,
        connection: ConnectionId,
        peer: IpAddr,
        packet: &[u8],
    ) {
        let message = match wire::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                self.counters.drop(DropCause::Malformed(e.kind_name()));
                return;
            }
        };
        self.counters.received += 1;
        if let Err(cause) = self.check_source(&message, peer) {
            self.counters.drop(cause);
            return;
        }
        if let Err(reason) = self.node.handle_message(now, connection, message) {
            self.counters.drop(DropCause::Node(reason));
        }
    }

    /// docs/wire.md §9 rule 5 (known source: the IP must be a member's) and the discovery
    /// allow-list for unknown sources.
    fn check_source(&self, message: &Message, peer: IpAddr) -> Result<(), DropCause> {
        let Some(cluster) = self.node.cluster(message.cluster()) else {
            return Ok(());
        };
        let peer = peer.to_canonical();
        if cluster.node(message.source()).is_some() {
            if !cluster.is_member_ip(peer) {
                return Err(DropCause::SourceIpMismatch);
            }
        } else if self.node.db_mode() == DbMode::Discovery
            && let Some(allow) = &self.options.discovery_allow
            && !allow.iter().any(|net| net.contains(peer))
        {
            return Err(DropCause::DiscoveryNotAllowed);
        }
        Ok(())
    }

    /// The deadline of the node's timers passed (early calls are no-ops).
    pub fn handle_timeout(&mut self, now: Now) {
        self.node.handle_timeout(now);
    }

    /// The transport could not deliver `packet` (connect refused, write error, queue full).
    ///
    /// The node learns it from [`packet.info`](OutgoingPacket::info) alone — the bytes are
    /// not decoded again ([`Node::handle_send_failed`]): a PING takes its rule's "fails"
    /// branch, anything else restarts probing of the hop. A routed packet the node can
    /// re-route is queued again, bytes unchanged, toward the new hop, at the place the
    /// node gives it among its transmits. A packet sent back on a connection
    /// ([`Destination::Connection`]) is only counted.
    pub fn handle_send_failed(&mut self, now: Now, packet: OutgoingPacket) {
        let OutgoingPacket { info, bytes } = packet;
        self.send_failed(now, info, bytes);
    }

    /// [`handle_send_failed`](Self::handle_send_failed) for a packet written from the
    /// caller's buffer ([`poll_transmit_into`](Self::poll_transmit_into)): `bytes` are
    /// copied only when the node re-routes them.
    pub fn handle_send_failed_bytes(&mut self, now: Now, info: PacketInfo, bytes: &[u8]) {
        self.send_failed(now, info, bytes);
    }

    fn send_failed<B: Into<Vec<u8>>>(&mut self, now: Now, info: PacketInfo, bytes: B) {
        self.counters.send_failures += 1;
        let Destination::Node { id, .. } = info.to else {
            return;
        };
        let (probe, routed_to) = match info.kind {
            PacketKind::Probe => (true, None),
            PacketKind::Internal => (false, None),
            PacketKind::Routed { destination } => (false, Some(destination)),
        };
        let Some((to, ahead)) =
            self.node
                .handle_send_failed(now, info.cluster, id, probe, routed_to)
        else {
            return;
        };
        if self.resends.len() >= MAX_QUEUED_TRANSMITS {
            self.counters.drop(DropCause::ResendQueueFull);
            return;
        }
        let info = PacketInfo {
            to: to.into(),
            ..info
        };
        self.resends.push_back(Resend {
            due: self.taken + ahead as u64,
            packet: OutgoingPacket {
                info,
                bytes: bytes.into(),
            },
        });
    }

    /// The next packet to write, in a new vector (see
    /// [`poll_transmit_into`](Self::poll_transmit_into) for the same without an
    /// allocation per packet).
    ///
    /// A message that cannot be encoded (larger than 65515 bytes) is counted as
    /// [`DropCause::Unencodable`], reported to the node ([`Node::handle_unencodable`]:
    /// counted, the link left alone, nothing re-routed) and skipped.
    pub fn poll_transmit(&mut self) -> Option<OutgoingPacket> {
        let mut bytes = Vec::new();
        match self.poll_packet(&mut bytes) {
            Ok(Some((info, len))) => {
                debug_assert_eq!(bytes.len(), len);
                Some(OutgoingPacket { info, bytes })
            }
            Ok(None) => None,
            Err(e) => {
                // A vector is never too small.
                debug_assert!(false, "{e}");
                None
            }
        }
    }

    /// The next packet to write, encoded into the start of `buf`: its description and
    /// length, `Ok(None)` when nothing is queued. Nothing is allocated per packet.
    /// Unencodable messages are handled as in [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// [`BufferTooSmall`] when the next packet does not fit: it stays queued, call again
    /// with a buffer of at least `needed` bytes. A buffer of
    /// [`MAX_EMIT_LEN`](crate::wire::MAX_EMIT_LEN) bytes never fails.
    pub fn poll_transmit_into(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<(PacketInfo, usize)>, BufferTooSmall> {
        self.poll_packet(&mut &mut *buf)
    }

    /// Gives up on the packet a [`BufferTooSmall`] left queued, for a runtime whose buffer
    /// can never hold it: it is handled as an unencodable message ([`DropCause::Unencodable`],
    /// reported to the node, the link left alone, nothing re-routed). Its description, or
    /// `None` when nothing was held.
    pub fn skip_transmit(&mut self) -> Option<PacketInfo> {
        let info = if let Some(transmit) = self.held.take() {
            PacketInfo::of(&transmit, self.node.id())
        } else if self.resends.front().is_some_and(|r| r.due <= self.taken) {
            // A re-routed packet that did not fit waits at the front of the resends.
            self.resends.pop_front()?.packet.info
        } else {
            return None;
        };
        self.unencodable(info);
        Some(info)
    }

    /// The one output path: a held transmit first, then the resends that are due, then the
    /// node's queue.
    fn poll_packet(
        &mut self,
        sink: &mut impl PacketSink,
    ) -> Result<Option<(PacketInfo, usize)>, BufferTooSmall> {
        loop {
            let transmit = if let Some(t) = self.held.take() {
                t
            } else if let Some(r) = self.resends.front()
                && r.due <= self.taken
            {
                let len = sink.copy(&r.packet.bytes)?;
                let info = r.packet.info;
                self.resends.pop_front();
                self.count_sent(&info);
                return Ok(Some((info, len)));
            } else if let Some(t) = self.node.poll_transmit() {
                self.taken += 1;
                t
            } else {
                return Ok(None);
            };
            let info = PacketInfo::of(&transmit, self.node.id());
            match sink.emit(&transmit.message) {
                Ok(len) => {
                    self.count_sent(&info);
                    return Ok(Some((info, len)));
                }
                Err(EmitError::BufferTooSmall { needed, .. }) => {
                    self.held = Some(transmit);
                    return Err(BufferTooSmall { needed });
                }
                Err(_) => self.unencodable(info),
            }
        }
    }

    fn count_sent(&mut self, info: &PacketInfo) {
        self.counters.sent += 1;
        if info.relayed {
            self.counters.relayed += 1;
        }
    }

    /// A transmit too large to encode: counted here and reported to the node
    /// ([`Node::handle_unencodable`]), which leaves the link alone.
    fn unencodable(&mut self, info: PacketInfo) {
        if info.relayed {
            self.counters.relayed += 1;
        }
        self.counters.drop(DropCause::Unencodable);
        self.node.handle_unencodable();
    }

    /// The next event of the node.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.node.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due. There is always a deadline.
    pub fn poll_timeout(&self) -> Instant {
        self.node.poll_timeout()
    }

    // ----- commands: each forwards to the node; drain the outputs afterwards ----------

    /// [`Node::set_status`]: enables or disables the local node (`node = None`) or a peer.
    ///
    /// # Errors
    /// [`SetStatusError`] from the node.
    pub fn set_status(
        &mut self,
        now: Now,
        cluster: ClusterId,
        node: Option<NodeId>,
        enabled: bool,
    ) -> Result<(), SetStatusError> {
        self.node.set_status(now, cluster, node, enabled)
    }

    /// [`Node::reload`]: replaces the node lists of the clusters from a new provisioning.
    ///
    /// # Errors
    /// [`ConfigError`] from the node.
    pub fn reload(&mut self, now: Now, clusters: Vec<ClusterConfig>) -> Result<(), ConfigError> {
        self.node.reload(now, clusters)
    }

    /// [`Node::remove_node`]: forgets a node and broadcasts REMOVE_NODE (`db_mode = 0`).
    ///
    /// # Errors
    /// [`RemoveNodeError`] from the node.
    pub fn remove_node(
        &mut self,
        now: Now,
        cluster: ClusterId,
        node: NodeId,
    ) -> Result<(), RemoveNodeError> {
        self.node.remove_node(now, cluster, node)
    }

    /// [`Node::send_to`]: a routed message to one node.
    pub fn send_to(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        body: RoutedBody,
    ) -> SendStatus {
        self.node.send_to(now, cluster, dest, body)
    }

    /// [`Node::send_to_with_version`]: [`send_to`](Self::send_to) with an explicit BIN
    /// version (module packets).
    pub fn send_to_with_version(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        self.node
            .send_to_with_version(now, cluster, dest, version, body)
    }

    /// [`Node::broadcast`]: a routed message to every reachable node of the cluster.
    pub fn broadcast(&mut self, now: Now, cluster: ClusterId, body: RoutedBody) -> SendStatus {
        self.node.broadcast(now, cluster, body)
    }

    /// [`Node::broadcast_matching`]: a routed message to the reachable nodes `matching`
    /// selects, with an explicit BIN version.
    pub fn broadcast_matching(
        &mut self,
        now: Now,
        cluster: ClusterId,
        matching: NodeMatch,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        self.node
            .broadcast_matching(now, cluster, matching, version, body)
    }

    /// [`Node::generate_tag`]: a new GENERIC_MSG exchange tag.
    pub fn generate_tag(&mut self, cluster: ClusterId) -> String {
        self.node.generate_tag(cluster)
    }

    /// [`Node::next_hop`]: the next hop toward `dest`, `None` when unreachable.
    pub fn next_hop(&mut self, cluster: ClusterId, dest: NodeId) -> Option<NodeId> {
        self.node.next_hop(cluster, dest)
    }

    /// [`Node::shtag_set_active`]: makes a sharing tag active here and announces it.
    ///
    /// # Errors
    /// [`ShtagError`] from the node.
    pub fn shtag_set_active(
        &mut self,
        now: Now,
        name: &str,
        cluster: ClusterId,
        reason: ShtagReason,
    ) -> Result<(), ShtagError> {
        self.node.shtag_set_active(now, name, cluster, reason)
    }

    /// [`Node::register_capability`]: registers a capability and its handler.
    ///
    /// # Errors
    /// [`CapabilityError`] from the node.
    pub fn register_capability(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Result<(), CapabilityError> {
        self.node
            .register_capability(now, cluster, name, startup_sync, condition, handler)
    }

    /// [`Node::set_capability_enabled`]: enables or disables a local capability.
    ///
    /// # Errors
    /// [`CapabilityError`] from the node.
    pub fn set_capability_enabled(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        enabled: bool,
    ) -> Result<(), CapabilityError> {
        self.node
            .set_capability_enabled(now, cluster, name, enabled)
    }

    /// [`Node::request_sync`]: asks a donor for a capability's data.
    ///
    /// # Errors
    /// [`CapabilityError`] from the node.
    pub fn request_sync(
        &mut self,
        now: Now,
        cluster: ClusterId,
        capability: &str,
    ) -> Result<RequestSync, CapabilityError> {
        self.node.request_sync(now, cluster, capability)
    }

    /// [`Node::my_index`]: (index, count) of the local node among the reachable nodes
    /// with `capability`.
    pub fn my_index(&mut self, cluster: ClusterId, capability: &str) -> Option<(usize, usize)> {
        self.node.my_index(cluster, capability)
    }
}

/// Where the next packet is written: the caller's buffer or a new vector.
trait PacketSink {
    /// Encodes `message`.
    fn emit(&mut self, message: &Message) -> Result<usize, EmitError>;
    /// Writes bytes encoded earlier.
    fn copy(&mut self, bytes: &[u8]) -> Result<usize, BufferTooSmall>;
}

impl PacketSink for &mut [u8] {
    fn emit(&mut self, message: &Message) -> Result<usize, EmitError> {
        wire::emit(message, self)
    }

    fn copy(&mut self, bytes: &[u8]) -> Result<usize, BufferTooSmall> {
        let needed = bytes.len();
        let buf = self.get_mut(..needed).ok_or(BufferTooSmall { needed })?;
        buf.copy_from_slice(bytes);
        Ok(needed)
    }
}

impl PacketSink for Vec<u8> {
    fn emit(&mut self, message: &Message) -> Result<usize, EmitError> {
        *self = wire::emit_to_vec(message)?;
        Ok(self.len())
    }

    fn copy(&mut self, bytes: &[u8]) -> Result<usize, BufferTooSmall> {
        self.clear();
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use clusterer_core::message::{GenericKind, GenericMsg, LinkUpdate, LsUpdate, Ping, Pong};
    use clusterer_core::{LinkState, NodeConfig};

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn c1() -> ClusterId {
        ClusterId::new(1).unwrap()
    }

    fn endpoint(options: EndpointOptions) -> Endpoint {
        let mut config = Config::new(n(1), DbMode::Discovery);
        config.clusters.push(ClusterConfig {
            id: c1(),
            local: NodeConfig::new(n(1), "bin:10.0.0.1:5566"),
            nodes: vec![NodeConfig::new(n(2), "bin:10.0.0.2:5566")],
        });
        Endpoint::new(config, options, Now::new(0, 0), 1).unwrap()
    }

    fn ping_from(src: u32) -> Vec<u8> {
        let m = Message::Internal(Internal::new(
            c1(),
            n(src),
            InternalBody::Ping(Ping {
                req_node_list: true,
            }),
        ));
        wire::emit_to_vec(&m).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn known_source_from_a_foreign_ip_is_dropped() {
        let mut e = endpoint(EndpointOptions::default());
        e.handle_connection_opened(ConnectionId(1), addr("10.9.9.9:4000"));
        e.handle_bytes(Now::new(5, 0), ConnectionId(1), &ping_from(2))
            .unwrap();
        assert_eq!(
            e.counters().dropped.get(&DropCause::SourceIpMismatch),
            Some(&1)
        );
        assert!(e.poll_transmit().is_none());
        e.handle_connection_opened(ConnectionId(2), addr("10.0.0.2:4000"));
        e.handle_bytes(Now::new(6, 0), ConnectionId(2), &ping_from(2))
            .unwrap();
        let pong = e.poll_transmit().unwrap();
        assert!(matches!(pong.info.to, Destination::Node { id, .. } if id == n(2)));
    }

    #[test]
    fn discovery_allow_list_limits_who_may_announce_itself() {
        let allow = Some(vec![IpNet::parse("10.0.0.0/24").unwrap()]);
        let mut e = endpoint(EndpointOptions {
            discovery_allow: allow,
            ..EndpointOptions::default()
        });
        e.handle_connection_opened(ConnectionId(1), addr("192.168.1.5:4000"));
        e.handle_bytes(Now::new(5, 0), ConnectionId(1), &ping_from(7))
            .unwrap();
        assert_eq!(
            e.counters().dropped.get(&DropCause::DiscoveryNotAllowed),
            Some(&1)
        );
        e.handle_connection_opened(ConnectionId(2), addr("10.0.0.7:4000"));
        e.handle_bytes(Now::new(5, 0), ConnectionId(2), &ping_from(7))
            .unwrap();
        let reply = e.poll_transmit().unwrap();
        assert_eq!(
            reply.info.to,
            Destination::Connection(ConnectionId(2)),
            "UNKNOWN_ID on its connection"
        );
    }

    #[test]
    fn malformed_packets_are_counted_and_bad_streams_close() {
        let mut e = endpoint(EndpointOptions::default());
        e.handle_connection_opened(ConnectionId(1), addr("10.0.0.2:4000"));
        let mut p = ping_from(2);
        p[42] = 9; // req_node_list = 9
        e.handle_bytes(Now::new(5, 0), ConnectionId(1), &p).unwrap();
        assert_eq!(
            e.counters()
                .dropped
                .get(&DropCause::Malformed("invalid_value")),
            Some(&1)
        );
        let err = e
            .handle_bytes(Now::new(5, 0), ConnectionId(1), b"GET / HTTP/1.1\r\n")
            .unwrap_err();
        assert!(matches!(err.0, DecodeError::BadMarker { .. }));
        assert_eq!(e.counters().framing_errors, 1);
    }

    #[test]
    fn cidr_matching() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.1.0.1".parse().unwrap()),
            "v4-mapped v6"
        );
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(
            IpNet::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8::5".parse().unwrap())
        );
        assert_eq!(
            IpNet::parse("10.0.0.0/33"),
            Err(IpNetError(
                "prefix length is too long for the address family"
            ))
        );
        assert!(IpNet::parse("nope/8").is_err());
        for text in ["10.1.0.0/16", "2001:db8::/32", "10.0.0.7/32"] {
            let net = IpNet::parse(text).unwrap();
            assert_eq!(net.to_string(), text);
            assert_eq!(IpNet::parse(&net.to_string()), Ok(net));
        }
    }

    // ----- output path and failed sends --------------------------------------------

    fn at(ms: u64) -> Now {
        Now::new(ms, 1_700_000_000 + (ms / 1000) as i64)
    }

    /// Node 1 with UP links to 2 and 3 (connections 2 and 3 from their IPs), where 3
    /// also reports a link to 2: 2 stays reachable through 3 when the direct link fails.
    fn triangle() -> Endpoint {
        let mut config = Config::new(n(1), DbMode::Discovery);
        config.clusters.push(ClusterConfig {
            id: c1(),
            local: NodeConfig::new(n(1), "bin:10.0.0.1:5566"),
            nodes: vec![
                NodeConfig::new(n(2), "bin:10.0.0.2:5566"),
                NodeConfig::new(n(3), "bin:10.0.0.3:5566"),
            ],
        });
        let mut e = Endpoint::new(config, EndpointOptions::default(), at(0), 1).unwrap();
        e.handle_timeout(at(1000));
        while e.poll_transmit().is_some() {}
        for peer in [2u32, 3] {
            let connection = ConnectionId(peer.into());
            e.handle_connection_opened(connection, addr(&alloc::format!("10.0.0.{peer}:4000")));
            let pong = internal_from(peer, InternalBody::Pong(Pong::default()));
            e.handle_bytes(at(1010), connection, &pong).unwrap();
        }
        let update = LsUpdate {
            seq: 0,
            timestamp: 5,
            neighbour: n(2),
            state: LinkUpdate::Up,
            path: vec![n(3)],
        };
        let update = internal_from(3, InternalBody::LsUpdate(update));
        e.handle_bytes(at(1020), ConnectionId(3), &update).unwrap();
        while e.poll_transmit().is_some() {}
        assert_eq!(link(&e, 2), LinkState::Up);
        assert_eq!(link(&e, 3), LinkState::Up);
        e
    }

    fn internal_from(src: u32, body: InternalBody) -> Vec<u8> {
        wire::emit_to_vec(&Message::Internal(Internal::new(c1(), n(src), body))).unwrap()
    }

    fn link(e: &Endpoint, peer: u32) -> LinkState {
        e.node()
            .cluster(c1())
            .unwrap()
            .node(n(peer))
            .unwrap()
            .link_state()
    }

    fn generic(payload_len: usize) -> RoutedBody {
        RoutedBody::GenericMsg(GenericMsg {
            kind: GenericKind::Request,
            tag: b"t".to_vec(),
            payload: vec![7; payload_len],
        })
    }

    fn hop(packet: &OutgoingPacket) -> Option<NodeId> {
        match packet.info.to {
            Destination::Node { id, .. } => Some(id),
            Destination::Connection(_) => None,
        }
    }

    fn drain(e: &mut Endpoint) -> Vec<OutgoingPacket> {
        core::iter::from_fn(|| e.poll_transmit()).collect()
    }

    #[test]
    fn an_outgoing_packet_says_what_it_carries() {
        let mut e = endpoint(EndpointOptions::default());
        e.handle_timeout(at(1000));
        let ping = e.poll_transmit().unwrap();
        assert_eq!(ping.info.kind, PacketKind::Probe);
        assert_eq!(ping.info.type_name, "PING");
        assert_eq!(ping.info.lane, Lane::Control);
        assert!(!ping.info.relayed);
        let mut e = triangle();
        assert_eq!(
            e.send_to(at(1100), c1(), n(2), generic(3)),
            SendStatus::Success
        );
        let routed = e.poll_transmit().unwrap();
        assert_eq!(routed.info.kind, PacketKind::Routed { destination: n(2) });
        assert_eq!(routed.info.type_name, "GENERIC_MSG");
        assert_eq!(routed.info.lane, Lane::Bulk);
        assert_eq!(hop(&routed), Some(n(2)));
    }

    #[test]
    fn a_failed_send_is_judged_by_its_info_not_by_its_bytes() {
        // Garbage bytes with a PING's description: the PING rule's "fails" branch
        // (RESTARTED by the first tick's PING, refused: RETRY_SEND_FAIL with retries left).
        let mut e = endpoint(EndpointOptions::default());
        e.handle_timeout(at(1000));
        let mut ping = e.poll_transmit().unwrap();
        ping.bytes = b"not a packet".to_vec();
        e.handle_send_failed(at(1001), ping.clone());
        assert_eq!(link(&e, 2), LinkState::RetrySendFail);
        // The same garbage described as another hop-by-hop message restarts probing.
        let mut e = endpoint(EndpointOptions::default());
        e.handle_timeout(at(1000));
        let _ = e.poll_transmit();
        ping.info.kind = PacketKind::Internal;
        e.handle_send_failed(at(1001), ping);
        assert_eq!(link(&e, 2), LinkState::RestartPinging);
        assert_eq!(e.counters().send_failures, 1);
    }

    #[test]
    fn a_failed_routed_send_goes_out_again_unchanged_through_another_hop() {
        let mut e = triangle();
        let sent = e.counters().sent;
        assert_eq!(
            e.send_to(at(1100), c1(), n(2), generic(100)),
            SendStatus::Success
        );
        let first = e.poll_transmit().unwrap();
        assert_eq!(hop(&first), Some(n(2)));
        e.handle_send_failed(at(1101), first.clone());
        assert_eq!(link(&e, 2), LinkState::RestartPinging);
        let out = drain(&mut e);
        let again: Vec<&OutgoingPacket> =
            out.iter().filter(|p| p.info.lane == Lane::Bulk).collect();
        assert_eq!(again.len(), 1);
        assert_eq!(hop(again[0]), Some(n(3)), "re-routed through 3");
        assert_eq!(again[0].bytes, first.bytes, "the same bytes");
        assert_eq!(again[0].info.kind, first.info.kind);
        assert_eq!(
            e.counters().sent,
            sent + 1 + out.len() as u64,
            "each emission counts"
        );
    }

    #[test]
    fn a_resend_keeps_the_place_the_node_gives_it() {
        // Two routed messages to 2 are queued; the first is refused while the second still
        // waits. The node queues LS_UPDATE DOWN (to 3) for the torn-down link, then the
        // retry: it comes after both, as when the node queued the message itself.
        let mut e = triangle();
        e.send_to(at(1100), c1(), n(2), generic(1));
        e.send_to(at(1100), c1(), n(2), generic(2));
        let first = e.poll_transmit().unwrap();
        e.handle_send_failed(at(1101), first.clone());
        let out = drain(&mut e);
        let order: Vec<(&str, Option<NodeId>)> =
            out.iter().map(|p| (p.info.type_name, hop(p))).collect();
        assert_eq!(
            order,
            [
                ("GENERIC_MSG", Some(n(2))),
                ("LS_UPDATE", Some(n(3))),
                ("GENERIC_MSG", Some(n(3))),
            ]
        );
        assert_eq!(out[2].bytes, first.bytes);
    }

    #[test]
    fn a_refused_routed_packet_without_another_hop_is_lost() {
        let mut e = triangle();
        e.send_to(at(1100), c1(), n(3), generic(1));
        let first = e.poll_transmit().unwrap();
        assert_eq!(hop(&first), Some(n(3)));
        e.handle_send_failed(at(1101), first);
        assert!(drain(&mut e).iter().all(|p| p.info.lane == Lane::Control));
    }

    #[test]
    fn a_refused_packet_written_from_a_buffer_is_copied_only_for_a_resend() {
        let mut e = triangle();
        e.send_to(at(1100), c1(), n(2), generic(10));
        let mut buf = [0u8; 256];
        let (info, len) = e.poll_transmit_into(&mut buf).unwrap().unwrap();
        let bytes = buf[..len].to_vec();
        e.handle_send_failed_bytes(at(1101), info, &buf[..len]);
        buf.fill(0);
        let mut resent = None;
        while let Some((info, len)) = e.poll_transmit_into(&mut buf).unwrap() {
            if info.lane == Lane::Bulk {
                resent = Some((info, buf[..len].to_vec()));
            }
        }
        let (info, again) = resent.unwrap();
        assert!(matches!(info.to, Destination::Node { id, .. } if id == n(3)));
        assert_eq!(again, bytes);
    }

    #[test]
    fn an_unencodable_message_is_counted_by_the_node_and_leaves_the_link_up() {
        let mut e = triangle();
        let sent = e.counters().sent;
        // 70 000 payload bytes cannot fit a 65515-byte packet.
        assert_eq!(
            e.send_to(at(1100), c1(), n(2), generic(70_000)),
            SendStatus::Success
        );
        let out = drain(&mut e);
        assert_eq!(e.counters().dropped.get(&DropCause::Unencodable), Some(&1));
        assert_eq!(e.counters().sent, sent + out.len() as u64);
        assert!(out.is_empty(), "nothing else to send: {out:?}");
        assert_eq!(e.node().stats().unencodable_transmits, 1);
        // The application's message was too large, not the link: it stays UP.
        assert_eq!(link(&e, 2), LinkState::Up);
    }

    #[test]
    fn poll_transmit_into_writes_what_poll_transmit_returns() {
        let mut by_vec = triangle();
        let mut by_buf = triangle();
        for e in [&mut by_vec, &mut by_buf] {
            e.send_to(at(1100), c1(), n(2), generic(1000));
            e.broadcast(at(1100), c1(), generic(5));
            e.handle_timeout(at(5000));
        }
        let mut buf = vec![0u8; wire::MAX_EMIT_LEN];
        let mut count = 0;
        while let Some(packet) = by_vec.poll_transmit() {
            let (info, len) = by_buf.poll_transmit_into(&mut buf).unwrap().unwrap();
            assert_eq!(info, packet.info);
            assert_eq!(&buf[..len], &packet.bytes[..]);
            count += 1;
        }
        assert!(count >= 3);
        assert_eq!(by_buf.poll_transmit_into(&mut buf), Ok(None));
        assert_eq!(by_vec.counters(), by_buf.counters());
    }

    #[test]
    fn a_buffer_too_small_keeps_the_packet_queued_and_names_the_size() {
        let mut e = triangle();
        let sent = e.counters().sent;
        e.send_to(at(1100), c1(), n(2), generic(500));
        let mut small = [0u8; 100];
        let err = e.poll_transmit_into(&mut small).unwrap_err();
        assert!(err.needed > 500 && err.needed <= 600, "{err}");
        assert_eq!(e.poll_transmit_into(&mut small), Err(err), "still next");
        let mut buf = vec![0u8; err.needed];
        let (info, len) = e.poll_transmit_into(&mut buf).unwrap().unwrap();
        assert_eq!((info.type_name, len), ("GENERIC_MSG", err.needed));
        assert_eq!(e.counters().sent, sent + 1, "counted once");
        assert_eq!(e.poll_transmit_into(&mut small), Ok(None));
    }

    #[test]
    fn a_resend_too_large_for_the_buffer_stays_queued() {
        let mut e = triangle();
        e.send_to(at(1100), c1(), n(2), generic(500));
        let first = e.poll_transmit().unwrap();
        e.handle_send_failed(at(1101), first.clone());
        let mut small = [0u8; 100];
        // LS_UPDATE DOWN to 3 fits, the resend does not.
        let (info, _) = e.poll_transmit_into(&mut small).unwrap().unwrap();
        assert_eq!(info.type_name, "LS_UPDATE");
        assert_eq!(
            e.poll_transmit_into(&mut small),
            Err(BufferTooSmall {
                needed: first.bytes.len()
            })
        );
        let again = e.poll_transmit().unwrap();
        assert_eq!(again.bytes, first.bytes);
    }

    #[test]
    fn a_packet_too_large_for_the_runtime_is_skipped_as_unencodable() {
        let mut e = triangle();
        let mut small = [0u8; 100];
        assert_eq!(e.skip_transmit(), None, "nothing held");
        e.send_to(at(1100), c1(), n(2), generic(500));
        e.poll_transmit_into(&mut small).unwrap_err();
        let skipped = e.skip_transmit().unwrap();
        assert_eq!(skipped.type_name, "GENERIC_MSG");
        assert_eq!(e.counters().dropped.get(&DropCause::Unencodable), Some(&1));
        assert_eq!(e.poll_transmit_into(&mut small), Ok(None));
        // A re-routed packet that does not fit is skipped the same way.
        e.send_to(at(1200), c1(), n(2), generic(500));
        let first = e.poll_transmit().unwrap();
        e.handle_send_failed(at(1201), first);
        let (info, _) = e.poll_transmit_into(&mut small).unwrap().unwrap();
        assert_eq!(info.type_name, "LS_UPDATE");
        e.poll_transmit_into(&mut small).unwrap_err();
        assert_eq!(e.skip_transmit().map(|i| i.type_name), Some("GENERIC_MSG"));
        assert_eq!(e.counters().dropped.get(&DropCause::Unencodable), Some(&2));
        assert_eq!(e.poll_transmit_into(&mut small), Ok(None));
    }

    #[test]
    fn poll_timeout_is_always_a_deadline_after_the_input() {
        let mut e = endpoint(EndpointOptions::default());
        assert_eq!(
            e.poll_timeout(),
            Instant::from_millis(1000),
            "first heartbeat"
        );
        e.handle_timeout(at(1000));
        assert!(e.poll_timeout() > Instant::from_millis(1000));
    }

    #[test]
    fn commands_through_the_endpoint_reach_the_node() {
        let mut e = triangle();
        e.set_status(at(1100), c1(), Some(n(3)), false).unwrap();
        assert!(
            !e.node()
                .cluster(c1())
                .unwrap()
                .node(n(3))
                .unwrap()
                .enabled()
        );
        assert_eq!(e.next_hop(c1(), n(2)), Some(n(2)));
        assert!(e.generate_tag(c1()).starts_with("1-1-"));
        assert_eq!(e.broadcast(at(1100), c1(), generic(1)), SendStatus::Success);
        assert!(
            drain(&mut e)
                .iter()
                .any(|p| p.info.type_name == "GENERIC_MSG")
        );
    }
}
