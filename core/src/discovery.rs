//! Dynamic node discovery with `db_mode = 0` (docs/behaviour.md §8): UNKNOWN_ID and
//! NODE_DESCRIPTION exchange, nodes learned from descriptions, and REMOVE_NODE.

use alloc::vec::Vec;

use crate::address::NodeAddress;
use crate::cluster::{Cluster, RemoteNode};
use crate::config::DbMode;
use crate::id::{ClusterId, NodeId};
use crate::link::LinkState;
use crate::message::{
    Internal, InternalBody, MAX_NODES, Message, NodeDescription, NodeInfo, RemoveNode, Routed,
    RoutedBody, Trailer,
};
use crate::node::{Ctx, Node};
use crate::output::{ConnectionId, DropReason, Transmit, TransmitTo};
use crate::time::Now;

/// Why a `remove_node` command was refused (MI error texts of docs/behaviour.md §15.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RemoveNodeError {
    /// `db_mode = 1` (MI: `Running in DB mode`).
    DbMode,
    /// MI: `Unknown cluster id`.
    UnknownCluster,
    /// MI: `Unknown node id`.
    UnknownNode,
}

impl Ctx<'_> {
    /// A clusterer-internal packet from a node we do not know.
    pub(crate) fn handle_unknown_source(
        &mut self,
        c: &mut Cluster,
        connection: ConnectionId,
        m: Internal,
    ) -> Result<(), DropReason> {
        if self.s.db_mode != DbMode::Discovery {
            return Err(DropReason::UnknownSource);
        }
        match m.body {
            InternalBody::Ping(_) => {
                // Answer on the connection the PING came from (docs/wire.md §7.5, quirk #30).
                let message =
                    Message::Internal(Internal::new(c.id, self.s.my_id, InternalBody::UnknownId));
                self.out.transmit(Transmit {
                    cluster: c.id,
                    to: TransmitTo::Connection(connection),
                    message,
                });
                Ok(())
            }
            InternalBody::NodeDescription(d) => {
                self.learn_node(c, m.source, &d.info)?;
                self.flood(c, m.source, InternalBody::NodeDescription(d));
                Ok(())
            }
            _ => Err(DropReason::UnknownSource),
        }
    }

    /// UNKNOWN_ID from a known node: describe ourselves to it and restart probing it.
    pub(crate) fn handle_unknown_id(&mut self, c: &mut Cluster, source: NodeId) {
        let info = NodeInfo {
            url: c.local.url.clone(),
            sip_addr: c.local.sip_addr.clone(),
            priority: c.local.priority,
            no_ping_retries: i32::try_from(c.local.no_ping_retries).unwrap_or(i32::MAX),
        };
        let d = NodeDescription {
            info,
            path: alloc::vec![self.s.my_id],
        };
        self.send_internal(c, source, InternalBody::NodeDescription(d));
        self.set_link(c, source, LinkState::RestartPinging);
    }

    /// Adds a node learned from a description: enabled, no DB id, probing restarts.
    pub(crate) fn learn_node(
        &mut self,
        c: &mut Cluster,
        id: NodeId,
        info: &NodeInfo,
    ) -> Result<(), DropReason> {
        if c.nodes.len() >= MAX_NODES {
            return Err(DropReason::ClusterFull);
        }
        let address = NodeAddress::parse(&info.url).map_err(|_| DropReason::BadUrl)?;
        let retries = u32::try_from(info.no_ping_retries).unwrap_or(0);
        let node = RemoteNode::new(
            id,
            info.url.clone(),
            address,
            info.sip_addr.clone(),
            info.priority,
            retries,
        );
        c.push_front_node(node);
        Ok(())
    }

    /// REMOVE_NODE addressed to us.
    pub(crate) fn handle_remove_node(
        &mut self,
        c: &mut Cluster,
        _source: NodeId,
        target: NodeId,
    ) -> Result<(), DropReason> {
        if self.s.db_mode != DbMode::Discovery {
            return Err(DropReason::NotApplicable);
        }
        if target == self.s.my_id {
            // The target disables itself (not persisted).
            self.set_local_enabled(c, false);
        } else {
            self.delete_node(c, target);
        }
        Ok(())
    }

    /// Forgets a node: DOWN events when it was reachable, purged from every adjacency list.
    pub(crate) fn delete_node(&mut self, c: &mut Cluster, target: NodeId) {
        let Some(index) = c.nodes.iter().position(|n| n.id == target) else {
            return;
        };
        if c.nodes[index].reachable {
            c.pending_node_events.push((target, false));
        }
        c.nodes.remove(index);
        c.topology.remove_node(target);
        c.adverts.remove_node(target);
        self.refresh_reachability(c);
    }
}

impl Node {
    /// `clusterer_remove_node` (db_mode 0): broadcasts REMOVE_NODE to every enabled node
    /// (the target included), then forgets the node locally. The broadcast outcome does not
    /// matter, as in OpenSIPS.
    ///
    /// # Errors
    /// [`RemoveNodeError`]; nothing changed.
    pub fn remove_node(
        &mut self,
        now: Now,
        cluster: ClusterId,
        node: NodeId,
    ) -> Result<(), RemoveNodeError> {
        if self.s.db_mode != DbMode::Discovery {
            return Err(RemoveNodeError::DbMode);
        }
        self.with_ctx(now, cluster, |ctx, c| {
            if c.node(node).is_none() {
                return Err(RemoveNodeError::UnknownNode);
            }
            if c.local.enabled {
                let targets: Vec<NodeId> =
                    c.nodes.iter().filter(|n| n.enabled).map(|n| n.id).collect();
                for dest in targets {
                    let trailer = Trailer {
                        cluster,
                        source: ctx.s.my_id,
                        destination: dest,
                    };
                    let m = Routed::new(trailer, RoutedBody::RemoveNode(RemoveNode { node }));
                    ctx.send_routed(c, m);
                }
            }
            ctx.delete_node(c, node);
            Ok(())
        })
        .unwrap_or(Err(RemoveNodeError::UnknownCluster))
    }
}
