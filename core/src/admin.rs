//! Administrative enable/disable of the local node and of remote nodes (docs/behaviour.md §7).

use alloc::vec::Vec;

use crate::address::NodeAddress;
use crate::cluster::{Cluster, LocalNode, RemoteNode};
use crate::config::{ClusterConfig, Config, ConfigError};
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
        self.with_ctx(now, cluster, |ctx, c| {
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
            Ok(())
        })
        .unwrap_or(Err(SetStatusError::UnknownCluster))
    }
}

impl Node {
    /// `clusterer_reload` (db_mode 1, docs/behaviour.md §8): rebuilds the node table from freshly
    /// provisioned clusters. Every link restarts probing and remote knowledge (adjacency,
    /// sequence pairs, remote capabilities) is forgotten; local capability states, sharing
    /// tags and the local node's own sequence counters are kept (so peers keep accepting our
    /// updates). A node that was reachable gets a DOWN event; it comes back UP through
    /// probing. Clusters no longer provisioned are dropped, new ones added.
    ///
    /// # Errors
    /// [`ConfigError`] when the new table is invalid; nothing changed.
    pub fn reload(&mut self, now: Now, clusters: Vec<ClusterConfig>) -> Result<(), ConfigError> {
        let mut check = Config::new(self.s.my_id, self.s.db_mode);
        check.clusters = clusters.clone();
        check.validate()?;
        let mut addresses = Vec::new();
        for cc in &clusters {
            let local =
                NodeAddress::parse(&cc.local.url).map_err(|reason| ConfigError::BadUrl {
                    cluster: cc.id,
                    node: cc.local.id,
                    reason,
                })?;
            let mut nodes = Vec::new();
            for n in &cc.nodes {
                let address = NodeAddress::parse(&n.url).map_err(|reason| ConfigError::BadUrl {
                    cluster: cc.id,
                    node: n.id,
                    reason,
                })?;
                nodes.push((n, address));
            }
            addresses.push((local, nodes));
        }
        self.clusters
            .retain(|c| clusters.iter().any(|cc| cc.id == c.id));
        for (cc, (local_address, nodes)) in clusters.iter().zip(addresses) {
            let index = match self.clusters.iter().position(|c| c.id == cc.id) {
                Some(i) => i,
                None => {
                    let local = LocalNode::from_config(&cc.local, local_address);
                    let settings = self.s.shtag_settings();
                    self.clusters.push(Cluster::new(cc.id, local, settings));
                    self.clusters.len() - 1
                }
            };
            let Node {
                s,
                clusters: all,
                out,
                ..
            } = self;
            let c = &mut all[index];
            let mut ctx = Ctx { now, s, out };
            for n in c.nodes.iter().filter(|n| n.reachable) {
                c.pending_node_events.push((n.id, false));
            }
            c.local = LocalNode::from_config(&cc.local, local_address);
            c.nodes = nodes
                .into_iter()
                .rev()
                .map(|(n, address)| RemoteNode::from_config(n, address))
                .collect();
            // Local links and remote knowledge start again; our own LS, FULL_TOP and
            // CAP_UPDATE counters are kept by the machines.
            c.topology.reset(c.nodes.iter().map(|n| (n.id, n.priority)));
            c.adverts.reset(c.nodes.iter().map(|n| n.id));
            ctx.refresh_reachability(c);
            ctx.process_node_events(c);
        }
        Ok(())
    }
}
