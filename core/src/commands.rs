//! The command and query surface of [`Node`] for capabilities, sync and sharing tags:
//! each finds its cluster, runs the state machine through the coordinator, and processes
//! the node events that follow. (Link-level commands — `set_status`, `reload`,
//! `remove_node`, sends — are in `admin`, `discovery` and `send`.)

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::capability::{
    Capability, CapabilityError, ELECTION_CAPABILITY_PREFIX, LocalCapability, NodeMatch,
};
use crate::id::{ClusterId, NodeId};
use crate::link::LinkState;
use crate::node::Node;
use crate::shtag::{SharingTag, ShtagError, ShtagReason, ShtagState};
use crate::sync::RequestSync;
use crate::time::Now;

impl Node {
    /// Registers a capability in `cluster` (`cl_register_cap`). It starts enabled; synced
    /// when `startup_sync` is false, otherwise a sync is requested at once (queued until a
    /// donor appears).
    ///
    /// # Errors
    /// [`CapabilityError`]; nothing changed.
    pub fn register_capability(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Result<(), CapabilityError> {
        if name.is_empty()
            || name == crate::message::CAPABILITY_INTERNAL
            || name == crate::message::CAPABILITY_EXTRA
            || name.starts_with(ELECTION_CAPABILITY_PREFIX)
        {
            return Err(CapabilityError::ReservedName);
        }
        let c = self
            .cluster_mut(cluster)
            .ok_or(CapabilityError::UnknownCluster)?;
        if c.capabilities.iter().any(|cap| cap.name == name) {
            return Err(CapabilityError::AlreadyRegistered);
        }
        let cap = LocalCapability::new(name, startup_sync, condition, handler);
        // Most recently registered first, as OpenSIPS lists them.
        c.capabilities.insert(0, cap);
        if startup_sync {
            let _ = self.request_sync(now, cluster, name);
        }
        Ok(())
    }

    /// `clusterer_set_cap_status` (docs/behaviour.md §9.9). Disabling clears the synced state
    /// (status −3, report `Capability disabled via MI, revert to not synced state`) and
    /// advertises state 0; enabling advertises the real state (quirk #6 fixed) and starts
    /// no sync.
    ///
    /// # Errors
    /// [`CapabilityError::UnknownCluster`] or [`CapabilityError::UnknownCapability`].
    pub fn set_capability_enabled(
        &mut self,
        now: Now,
        cluster: ClusterId,
        name: &str,
        enabled: bool,
    ) -> Result<(), CapabilityError> {
        self.with_ctx(now, cluster, |ctx, c| {
            let index = c
                .capabilities
                .iter()
                .position(|cap| cap.name == name)
                .ok_or(CapabilityError::UnknownCapability)?;
            ctx.with_capability(c, index, |cap, port| cap.set_enabled(port, enabled));
            Ok(())
        })
        .unwrap_or(Err(CapabilityError::UnknownCluster))
    }

    /// `get_my_index` (docs/behaviour.md §9.10): the local node's position in the sorted set of
    /// itself and every reachable node advertising `capability` synced, and the set size.
    pub fn my_index(&mut self, cluster: ClusterId, capability: &str) -> Option<(usize, usize)> {
        let me = self.s.my_id;
        let rerouting = self.s.rerouting;
        let c = self.cluster_mut(cluster)?;
        c.refresh_routes();
        let mut ids: Vec<NodeId> = c
            .nodes
            .iter()
            .filter(|n| c.adverts.advertises_ok(n.id, capability))
            .filter(|n| c.cached_route(n.id, rerouting).is_some())
            .map(|n| n.id)
            .collect();
        ids.push(me);
        ids.sort();
        let index = ids.iter().filter(|&&id| id < me).count();
        Some((index, ids.len()))
    }

    /// Whether the link state allows using `node` directly (for tests and MI).
    pub fn link_state(&self, cluster: ClusterId, node: NodeId) -> Option<LinkState> {
        self.cluster(cluster)?.node(node).map(|n| n.link_state())
    }
}

impl Node {
    /// `cl_request_sync`: asks the best donor for the capability's data, or queues the
    /// request until one appears (docs/behaviour.md §9.5).
    ///
    /// # Errors
    /// [`CapabilityError`] for an unknown cluster or capability.
    pub fn request_sync(
        &mut self,
        now: Now,
        cluster: ClusterId,
        capability: &str,
    ) -> Result<RequestSync, CapabilityError> {
        self.with_ctx(now, cluster, |ctx, c| {
            let index = c
                .capabilities
                .iter()
                .position(|cap| cap.name == capability)
                .ok_or(CapabilityError::UnknownCapability)?;
            Ok(ctx.with_capability(c, index, |cap, port| cap.request_sync(port)))
        })
        .unwrap_or(Err(CapabilityError::UnknownCluster))
    }
}

impl Node {
    /// `clusterer_shtag_set_active` / `$cluster.sh_tag = "active"` / API: makes the tag
    /// active (creating it if unknown) and announces it (docs/behaviour.md §10.2).
    ///
    /// A tag in election mode cannot be set active by hand: its owner follows the
    /// (eligible, priority, id) order, and a manual move would be reverted by the next
    /// conflict. To move it, disable the active node or change priorities.
    ///
    /// # Errors
    /// [`ShtagError::UnknownCluster`], [`ShtagError::ElectionMode`]; nothing changed.
    pub fn shtag_set_active(
        &mut self,
        now: Now,
        name: &str,
        cluster: ClusterId,
        reason: ShtagReason,
    ) -> Result<(), ShtagError> {
        self.with_ctx(now, cluster, |ctx, c| {
            ctx.with_shtags(c, |tags, port| tags.set_active(port, name, reason))
        })
        .unwrap_or(Err(ShtagError::UnknownCluster))
    }

    /// The state of a tag (backup for an unknown tag of a known cluster, as OpenSIPS
    /// creates it on first reference); `None` for an unknown cluster.
    pub fn shtag_state(&self, name: &str, cluster: ClusterId) -> Option<ShtagState> {
        Some(self.cluster(cluster)?.shtags.state(name))
    }

    /// Every sharing tag with its cluster (MI `clusterer_list_shtags`).
    pub fn shtags(&self) -> impl Iterator<Item = (ClusterId, &SharingTag)> {
        self.clusters
            .iter()
            .flat_map(|c| c.shtags.tags().iter().map(move |t| (c.id, t)))
    }
}
