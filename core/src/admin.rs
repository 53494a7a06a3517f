//! Administrative enable/disable of the local node and of remote nodes (behaviour.md §7).

use alloc::vec::Vec;

use crate::cluster::Cluster;
use crate::id::{ClusterId, NodeId};
use crate::link::LinkState;
use crate::node::{Ctx, Node};
use crate::time::Now;

/// Why `set_status` was refused (MI `clusterer_set_status` errors); nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SetStatusError {
    /// MI 404 `Cluster id not found`.
    UnknownCluster,
    /// MI 404 `Node id not found`.
    UnknownNode,
}

impl Ctx<'_> {
    /// Enables or disables the local node in one cluster. Disabling takes every link DOWN
    /// locally (events fire for lost reachability) without sending LS_UPDATEs: peers notice
    /// through missed PONGs. Enabling restarts probing of every node.
    pub(crate) fn set_local_enabled(&mut self, c: &mut Cluster, enabled: bool) {
        if c.local.enabled == enabled {
            return;
        }
        c.local.enabled = enabled;
        let ids: Vec<NodeId> = c.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            let Some(n) = c.node_mut(id) else { continue };
            let to = if enabled {
                LinkState::RestartPinging
            } else {
                LinkState::Down
            };
            if let Some(t) = n.link.set_state(to) {
                self.after_transition(c, id, t, false);
            }
        }
    }

    /// Enables or disables a remote node. Disabling tears its link down (LS_UPDATE DOWN to
    /// the other neighbours) and stops probing it; enabling restarts probing.
    pub(crate) fn set_remote_enabled(&mut self, c: &mut Cluster, id: NodeId, enabled: bool) {
        let Some(n) = c.node_mut(id) else { return };
        if n.enabled == enabled {
            return;
        }
        n.enabled = enabled;
        let to = if enabled {
            LinkState::RestartPinging
        } else {
            LinkState::Down
        };
        self.set_link(c, id, to);
    }
}

impl Node {
    /// `clusterer_set_status` / `set_state`: enables or disables `node` in `cluster`, or the
    /// local node when `node` is `None` or the local id. Persisting the change (DB mode) is
    /// the caller's job.
    ///
    /// # Errors
    /// [`SetStatusError`] for an unknown cluster or node; nothing changed.
    pub fn set_status(
        &mut self,
        now: Now,
        cluster: ClusterId,
        node: Option<NodeId>,
        enabled: bool,
    ) -> Result<(), SetStatusError> {
        let Node {
            s, clusters, out, ..
        } = self;
        let mut ctx = Ctx { now, s, out };
        let c = clusters
            .iter_mut()
            .find(|c| c.id == cluster)
            .ok_or(SetStatusError::UnknownCluster)?;
        match node {
            None => ctx.set_local_enabled(c, enabled),
            Some(id) if id == ctx.s.my_id => ctx.set_local_enabled(c, enabled),
            Some(id) => {
                if c.node(id).is_none() {
                    return Err(SetStatusError::UnknownNode);
                }
                ctx.set_remote_enabled(c, id, enabled);
            }
        }
        ctx.process_node_events(c);
        Ok(())
    }
}
