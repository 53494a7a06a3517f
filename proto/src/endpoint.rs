//! The sans-IO [`Endpoint`]: a [`Node`] plus everything between it and the bytes.
//!
//! The endpoint owns the node, one [`Deframer`] per TCP connection and the codec. It maps
//! connections to peer addresses, applies the source checks of wire.md §9 that need an IP
//! address (the id-based checks are the node's), relays through the node, encodes the
//! node's transmits, and counts every dropped packet by reason. Runtimes own sockets and
//! timers only.
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
//! endpoint.handle_timeout(Now::new(1000, 1_700_000_001));
//! // 2. Drain outputs: packets to write, events to deliver.
//! while let Some(packet) = endpoint.poll_transmit() {
//!     // Write `packet.bytes` to the outgoing connection for `packet.to` (connect first if
//!     // needed); if the transport refuses it, hand it back:
//!     // endpoint.handle_send_failed(now, packet);
//!     assert_eq!(&packet.bytes[..4], b"P4CK");
//! }
//! while let Some(_event) = endpoint.poll_event() {}
//! // 3. Sleep until the deadline or the next input.
//! let _deadline = endpoint.poll_timeout();
//! # Ok::<(), clusterer_core::ConfigError>(())
//! ```

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use clusterer_core::message::Message;
use clusterer_core::node::Transmit;
use clusterer_core::{
    ClusterId, Config, ConfigError, ConnectionId, DbMode, DropReason, Event, Instant, Node,
    NodeAddress, NodeId, Now, TransmitTo,
};

use crate::deframer::Deframer;
use crate::wire::{self, DecodeError};

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
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

/// An encoded packet to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// Cluster of the packet (hand it back unchanged on failure).
    pub cluster: ClusterId,
    /// Where it goes.
    pub to: Destination,
    /// Its send lane.
    pub lane: Lane,
    /// The packet bytes (at most 65515).
    pub bytes: Vec<u8>,
}

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
    /// A message of the node could not be encoded (too large).
    Unencodable,
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
            DropCause::UnknownConnection => "unknown_connection",
        }
    }
}

/// Traffic counters of the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets decoded from peers.
    pub received: u64,
    /// Packets encoded for sending (including relays).
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

/// The connection must be closed: its byte stream is not BIN (wire.md §2.3).
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

/// A [`Node`] with its connections and codec.
#[derive(Debug)]
pub struct Endpoint {
    node: Node,
    options: EndpointOptions,
    connections: BTreeMap<ConnectionId, Connection>,
    counters: Counters,
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
        })
    }

    /// The node, for queries.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, for commands (`set_status`, `send_to`, ...). Drain
    /// [`poll_transmit`](Self::poll_transmit) afterwards as after any input.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
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
                deframer: Deframer::new(),
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

    /// wire.md §9 rule 5 (known source: the IP must be a member's) and the discovery
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
    pub fn handle_send_failed(&mut self, now: Now, packet: OutgoingPacket) {
        self.counters.send_failures += 1;
        let Destination::Node { id, .. } = packet.to else {
            return;
        };
        let message = wire::parse(&packet.bytes).ok();
        self.node
            .handle_send_failed(now, packet.cluster, id, message);
    }

    /// The next packet to write. Messages that cannot be encoded are counted and skipped.
    pub fn poll_transmit(&mut self) -> Option<OutgoingPacket> {
        loop {
            let Transmit {
                cluster,
                to,
                message,
            } = self.node.poll_transmit()?;
            let me = self.node.id();
            if let Message::Routed(r) = &message
                && r.trailer.source != me
            {
                self.counters.relayed += 1;
            }
            let lane = Lane::of(&message);
            match wire::emit_to_vec(&message) {
                Ok(bytes) => {
                    self.counters.sent += 1;
                    let to = match to {
                        TransmitTo::Node { id, address } => Destination::Node { id, address },
                        TransmitTo::Connection(c) => Destination::Connection(c),
                    };
                    return Some(OutgoingPacket {
                        cluster,
                        to,
                        lane,
                        bytes,
                    });
                }
                Err(_) => self.counters.drop(DropCause::Unencodable),
            }
        }
    }

    /// The next event of the node.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.node.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use clusterer_core::message::{Internal, InternalBody, Ping};
    use clusterer_core::{ClusterConfig, NodeConfig};

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
        assert!(matches!(pong.to, Destination::Node { id, .. } if id == n(2)));
    }

    #[test]
    fn discovery_allow_list_limits_who_may_announce_itself() {
        let allow = Some(vec![IpNet::parse("10.0.0.0/24").unwrap()]);
        let mut e = endpoint(EndpointOptions {
            discovery_allow: allow,
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
            reply.to,
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
    }
}
