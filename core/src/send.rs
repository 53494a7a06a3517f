//! Sending routed messages for API callers, with the OpenSIPS return codes
//! (behaviour.md §5.5).

use alloc::vec::Vec;

use crate::cluster::Cluster;
use crate::id::{ClusterId, NodeId};
use crate::message::{Routed, RoutedBody, Trailer};
use crate::node::{Ctx, Event, Node};
use crate::time::Now;

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

impl Ctx<'_> {
    /// Unicast rules 2, 3, 5 and 6 of §5.5 (the caller checked cluster and local state).
    pub(crate) fn send_one(
        &mut self,
        c: &mut Cluster,
        dest: NodeId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        let me = self.s.my_id;
        if dest == me {
            if let RoutedBody::GenericMsg(_) = body {
                self.out.event(Event::Received {
                    cluster: c.id,
                    source: me,
                    version,
                    body,
                });
                return SendStatus::Success;
            }
            return SendStatus::SendErr;
        }
        let Some(n) = c.node(dest) else {
            return SendStatus::SendErr;
        };
        if !n.enabled {
            return SendStatus::Success;
        }
        let trailer = Trailer {
            cluster: c.id,
            source: me,
            destination: dest,
        };
        if self.send_routed(
            c,
            Routed {
                version,
                trailer,
                body,
            },
        ) {
            SendStatus::Success
        } else {
            SendStatus::DestDown
        }
    }
}

impl Node {
    /// Sends `body` to `dest` over the shortest live path, with the body's standard BIN
    /// version (`cl_send_to`, `cluster_send_req/rpl`, `cluster_send_mi`).
    pub fn send_to(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        body: RoutedBody,
    ) -> SendStatus {
        let version = body.standard_version();
        self.send_to_with_version(now, cluster, dest, version, body)
    }

    /// As [`Node::send_to`] with an explicit BIN version (module packets carry the module's
    /// own version).
    pub fn send_to_with_version(
        &mut self,
        now: Now,
        cluster: ClusterId,
        dest: NodeId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        let Node {
            s, clusters, out, ..
        } = self;
        let mut ctx = Ctx { now, s, out };
        let Some(c) = clusters.iter_mut().find(|c| c.id == cluster) else {
            return SendStatus::SendErr;
        };
        if !c.local.enabled {
            return SendStatus::CurrDisabled;
        }
        let status = ctx.send_one(c, dest, version, body);
        ctx.process_node_events(c);
        status
    }

    /// Sends `body` to every other enabled node of the cluster, one unicast each with its
    /// own destination (`cl_send_all`, `cluster_broadcast_req`, `cluster_broadcast_mi`).
    /// Success when no node matched or at least one copy was sent; DestDown when every
    /// matched node was unreachable.
    pub fn broadcast(&mut self, now: Now, cluster: ClusterId, body: RoutedBody) -> SendStatus {
        let version = body.standard_version();
        self.broadcast_with_version(now, cluster, version, body)
    }

    /// As [`Node::broadcast`] with an explicit BIN version.
    pub fn broadcast_with_version(
        &mut self,
        now: Now,
        cluster: ClusterId,
        version: i16,
        body: RoutedBody,
    ) -> SendStatus {
        let Node {
            s, clusters, out, ..
        } = self;
        let mut ctx = Ctx { now, s, out };
        let Some(c) = clusters.iter_mut().find(|c| c.id == cluster) else {
            return SendStatus::SendErr;
        };
        if !c.local.enabled {
            return SendStatus::CurrDisabled;
        }
        let targets: Vec<NodeId> = c.nodes.iter().filter(|n| n.enabled).map(|n| n.id).collect();
        let (mut sent, mut down) = (0usize, 0usize);
        for dest in &targets {
            match ctx.send_one(c, *dest, version, body.clone()) {
                SendStatus::Success => sent += 1,
                SendStatus::DestDown => down += 1,
                _ => {}
            }
        }
        ctx.process_node_events(c);
        if targets.is_empty() || sent > 0 {
            SendStatus::Success
        } else if down == targets.len() {
            SendStatus::DestDown
        } else {
            SendStatus::SendErr
        }
    }
}
