//! The network model: TCP-like connections between nodes, per-link latency, partitions.
//!
//! A connection is opened by one node (the *client*) toward another node's listening address
//! (the *server*); it carries bytes both ways. Each direction is a FIFO of packets in flight:
//! a packet's delivery time is `send time + link latency + jitter`, but never earlier than
//! the packet before it on the same direction, so a connection never reorders. Loss only
//! happens at packet granularity (a partition drops whole packets, a reset drops everything
//! in flight), so the receivers' deframers always see a valid byte stream.
//!
//! Partitions are one-way blocks `from → to` between node ids: packets sent from `from` to
//! `to` are lost at send time (on any connection, in either connection direction). A
//! symmetric partition is two blocks. Connection attempts across a partition still "succeed"
//! (a SYN that is lost is not a refusal; OpenSIPS counts a pending async connect as sent).

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

use clusterer_core::{Instant, NodeId};

use crate::sim::rng::{SimRng, mix};

/// Latency of the simulated links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyModel {
    /// Smallest base latency of a link (ms).
    pub min_ms: u64,
    /// Largest base latency of a link (ms). Each unordered node pair gets a fixed base
    /// latency in `min_ms..=max_ms`, derived from the seed.
    pub max_ms: u64,
    /// Extra latency per packet, uniform in `0..=jitter_ms` (never reorders a connection).
    pub jitter_ms: u64,
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel {
            min_ms: 1,
            max_ms: 5,
            jitter_ms: 2,
        }
    }
}

impl LatencyModel {
    /// Every link has the same latency and no jitter: a packet relayed over more hops never
    /// overtakes one sent earlier over fewer.
    pub fn fixed(ms: u64) -> Self {
        LatencyModel {
            min_ms: ms,
            max_ms: ms,
            jitter_ms: 0,
        }
    }

    /// The fixed base latency of the link between `a` and `b` (symmetric) for `seed`.
    pub fn base(&self, seed: u64, a: NodeId, b: NodeId) -> u64 {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let h = mix(seed ^ mix((u64::from(lo.get()) << 32) | u64::from(hi.get())));
        let span = self.max_ms.saturating_sub(self.min_ms) + 1;
        self.min_ms + h % span
    }

    /// Base latency plus a fresh jitter draw.
    pub fn sample(&self, seed: u64, a: NodeId, b: NodeId, rng: &mut SimRng) -> u64 {
        self.base(seed, a, b) + rng.range(0, self.jitter_ms)
    }
}

/// Direction of travel on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// From the node that opened the connection to the listening node.
    ClientToServer,
    /// Back from the listening node to the opener.
    ServerToClient,
}

impl Direction {
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// A packet travelling on a connection.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    pub(crate) sent_at: Instant,
    pub(crate) deliver_at: Instant,
    pub(crate) bytes: Vec<u8>,
}

/// One direction of a connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lane {
    pub(crate) queue: VecDeque<InFlight>,
    /// Delivery time of the last packet queued (FIFO floor for the next one).
    pub(crate) last_at: Instant,
    /// With a bandwidth limit: when (µs) the sender finishes putting the queued bytes on
    /// the wire.
    pub(crate) wire_free_us: u64,
    /// A delivery action is scheduled (or deferred by a paused receiver).
    pub(crate) scheduled: bool,
}

/// A simulated TCP connection.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    /// Node index of the opener.
    pub(crate) client: usize,
    /// Node index of the listener.
    pub(crate) server: usize,
    /// The opener's ephemeral address (what the server sees as the peer).
    pub(crate) client_addr: SocketAddr,
    /// The listening address (what the client sees as the peer).
    pub(crate) server_addr: SocketAddr,
    pub(crate) open: bool,
    /// The server's endpoint was told about the connection (lazily, before its first bytes,
    /// so a paused server learns of it only when it resumes).
    pub(crate) server_announced: bool,
    pub(crate) lanes: [Lane; 2],
}

impl Conn {
    /// The receiver of a direction.
    pub(crate) fn receiver(&self, d: Direction) -> usize {
        match d {
            Direction::ClientToServer => self.server,
            Direction::ServerToClient => self.client,
        }
    }

    /// The sender of a direction.
    pub(crate) fn sender(&self, d: Direction) -> usize {
        match d {
            Direction::ClientToServer => self.client,
            Direction::ServerToClient => self.server,
        }
    }
}

/// Connections and partitions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Network {
    /// Every connection ever opened; the index is the connection id on both ends.
    pub(crate) conns: Vec<Conn>,
    /// One-way blocks `(from, to)`.
    pub(crate) blocked: BTreeSet<(NodeId, NodeId)>,
    /// Pairs that never work (both orders stored); healing does not lift them.
    pub(crate) forbidden: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    pub(crate) fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        (!self.blocked.is_empty() && self.blocked.contains(&(from, to)))
            || (!self.forbidden.is_empty() && self.forbidden.contains(&(from, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn base_latency_is_symmetric_and_in_range() {
        let m = LatencyModel {
            min_ms: 3,
            max_ms: 9,
            jitter_ms: 0,
        };
        for a in 1..20 {
            for b in 1..20 {
                let l = m.base(77, n(a), n(b));
                assert_eq!(l, m.base(77, n(b), n(a)));
                assert!((3..=9).contains(&l));
            }
        }
    }
}
