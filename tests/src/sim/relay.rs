//! Hop counting of routed packets (GENERIC_MSG, SYNC, SHTAG_ACTIVE, module packets, ...),
//! so a run can check that every relayed packet reaches its destination or is dropped within
//! a bounded number of hops.
//!
//! A relay forwards a routed packet unchanged, so the bytes identify it along its way: each
//! time a node emits them counts one hop, and their arrival at the trailer's destination ends
//! the journey. Packets lost to a partition or dropped by a node (no route) simply stop being
//! emitted; entries older than a minute are forgotten. The originator emitting the same
//! bytes again (a repeated SHTAG_ACTIVE, say) starts a new journey: relays never send a
//! packet back to its originator's emission path (a node drops packets bearing its own id).

use std::collections::BTreeMap;

use clusterer_core::{Instant, NodeId};
use clusterer_proto::wire::{
    self, CAP_EXTRA, CAP_INTERNAL, PacketView, RoutedView, TYPE_SHTAG_ACTIVE,
};

use crate::sim::trace::packet_kind;

/// Entries kept before old ones are pruned.
const PRUNE_AT: usize = 1 << 16;
/// Age (ms) past which an undelivered entry is forgotten when pruning.
const PRUNE_AGE_MS: u64 = 60_000;

/// One journey that ended at its destination (kept while [`RelayTracker::log`] is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journey {
    /// Originator (trailer source).
    pub source: NodeId,
    /// Destination (trailer destination).
    pub destination: NodeId,
    /// Spec name of the packet type.
    pub kind: &'static str,
    /// Times the bytes were emitted (1 = direct).
    pub hops: u32,
    /// When the originator sent it.
    pub sent_at: Instant,
    /// When it arrived.
    pub arrived_at: Instant,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    hops: u32,
    first_at: Instant,
    reported: bool,
}

/// What [`RelayTracker::emitted`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HopCheck {
    /// Within the limit (or not a routed packet).
    Fine,
    /// The packet has now been emitted more often than the limit.
    OverLimit {
        /// Originator.
        source: NodeId,
        /// Destination.
        destination: NodeId,
        /// Hops so far.
        hops: u32,
    },
}

/// Hop counts of routed packets in flight.
#[derive(Clone, Debug, Default)]
pub struct RelayTracker {
    in_flight: BTreeMap<u64, InFlight>,
    /// Most hops any delivered packet took.
    pub max_hops: u32,
    /// Routed packets delivered to their destination.
    pub delivered: u64,
    /// Hop limit; 0 = no limit.
    pub limit: u32,
    /// Keep a [`Journey`] per delivered packet.
    pub log: bool,
    journeys: Vec<Journey>,
    /// Last arrival of a SHTAG_ACTIVE at its destination, per (tag, source, destination).
    shtag: BTreeMap<(String, NodeId, NodeId), Instant>,
}

fn key(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (bytes.len() as u64).rotate_left(40)
}

/// Source and destination of a routed packet, read from its header and trailer only
/// (docs/wire.md §2.1, §6: the last 12 bytes are cluster, source, destination); `None` for a
/// `clusterer-internal` packet or bytes that are not a packet.
pub fn routed_trailer(bytes: &[u8]) -> Option<(NodeId, NodeId)> {
    let header = wire::parse_header(bytes).ok()?;
    if header.capability == CAP_INTERNAL.as_bytes() || bytes.len() < 12 {
        return None;
    }
    let id = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        NodeId::new(u32::try_from(i32::from_le_bytes(b)).ok()?)
    };
    let end = bytes.len();
    Some((id(end - 8)?, id(end - 4)?))
}

fn trailer(bytes: &[u8]) -> Option<(NodeId, NodeId)> {
    routed_trailer(bytes)
}

impl RelayTracker {
    /// Node `emitter` emitted `bytes` at `now`.
    pub fn emitted(&mut self, now: Instant, emitter: NodeId, bytes: &[u8]) -> HopCheck {
        let Some((source, destination)) = trailer(bytes) else {
            return HopCheck::Fine;
        };
        if emitter == source {
            self.in_flight.remove(&key(bytes));
        }
        if self.in_flight.len() >= PRUNE_AT {
            self.in_flight
                .retain(|_, f| now.since(f.first_at) < PRUNE_AGE_MS);
        }
        let f = self.in_flight.entry(key(bytes)).or_insert(InFlight {
            hops: 0,
            first_at: now,
            reported: false,
        });
        f.hops += 1;
        if self.limit > 0 && f.hops > self.limit && !f.reported {
            f.reported = true;
            return HopCheck::OverLimit {
                source,
                destination,
                hops: f.hops,
            };
        }
        HopCheck::Fine
    }

    /// `bytes` arrived at `receiver` at `now`.
    pub fn arrived(&mut self, now: Instant, receiver: NodeId, bytes: &[u8]) {
        let Some((source, destination)) = trailer(bytes) else {
            return;
        };
        if destination != receiver {
            return;
        }
        let shtag = wire::parse_header(bytes).is_ok_and(|h| {
            h.capability == CAP_EXTRA.as_bytes() && h.packet_type == TYPE_SHTAG_ACTIVE
        });
        if shtag
            && let Ok(PacketView::Routed {
                body: RoutedView::ShtagActive(v),
                ..
            }) = wire::parse_view(bytes)
        {
            self.shtag
                .insert((v.tag.to_string(), source, destination), now);
        }
        let Some(f) = self.in_flight.remove(&key(bytes)) else {
            return;
        };
        self.delivered += 1;
        self.max_hops = self.max_hops.max(f.hops);
        if self.log {
            self.journeys.push(Journey {
                source,
                destination,
                kind: packet_kind(bytes),
                hops: f.hops,
                sent_at: f.first_at,
                arrived_at: now,
            });
        }
    }

    /// When a SHTAG_ACTIVE for `tag` from `source` last reached `destination`.
    pub fn last_shtag_delivery(
        &self,
        tag: &str,
        source: NodeId,
        destination: NodeId,
    ) -> Option<Instant> {
        self.shtag
            .get(&(tag.to_string(), source, destination))
            .copied()
    }

    /// Takes the journeys logged so far.
    pub fn take_journeys(&mut self) -> Vec<Journey> {
        std::mem::take(&mut self.journeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clusterer_core::ClusterId;
    use clusterer_core::message::{
        GenericKind, GenericMsg, Internal, InternalBody, Message, Ping, Routed, RoutedBody, Trailer,
    };

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn trailer_is_read_from_the_last_bytes_and_hops_are_counted() {
        let cluster = ClusterId::new(1).unwrap();
        let routed = Message::Routed(Routed::new(
            Trailer {
                cluster,
                source: n(3),
                destination: n(300),
            },
            RoutedBody::GenericMsg(GenericMsg {
                kind: GenericKind::Request,
                tag: b"t".to_vec(),
                payload: b"x".to_vec(),
            }),
        ));
        let bytes = wire::emit_to_vec(&routed).unwrap();
        assert_eq!(routed_trailer(&bytes), Some((n(3), n(300))));
        let ping = Message::Internal(Internal::new(
            cluster,
            n(3),
            InternalBody::Ping(Ping {
                req_node_list: false,
            }),
        ));
        assert_eq!(routed_trailer(&wire::emit_to_vec(&ping).unwrap()), None);

        let mut t = RelayTracker {
            limit: 2,
            ..RelayTracker::default()
        };
        let at = Instant::from_millis(5);
        assert_eq!(t.emitted(at, n(3), &bytes), HopCheck::Fine);
        assert_eq!(t.emitted(at, n(7), &bytes), HopCheck::Fine);
        assert!(matches!(
            t.emitted(at, n(8), &bytes),
            HopCheck::OverLimit { hops: 3, .. }
        ));
        t.arrived(at, n(300), &bytes);
        assert_eq!((t.delivered, t.max_hops), (1, 3));
        // The originator sending the same bytes again starts a new journey.
        for relay in [3, 7, 3, 7] {
            assert_eq!(t.emitted(at, n(relay), &bytes), HopCheck::Fine);
        }
    }
}
