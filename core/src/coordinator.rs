//! The cluster coordinator: where the state machines of one cluster meet the cluster.
//!
//! Each machine owns its state and talks to the world through a port trait of its own
//! (sharing tags: [`ShtagPort`]; the sync of a capability: [`SyncPort`]). The coordinator implements those ports over the
//! cluster — node table, routes, sends through the routing of behaviour.md §5.5, report
//! rings and events — so a machine never reaches into another machine's state and never
//! builds a packet. To run a machine it is taken out of the cluster for the call and put
//! back after (the port then has the rest of the cluster to itself).

use alloc::format;
use alloc::vec::Vec;

use crate::capability::{ELECTION_CAPABILITY_PREFIX, LocalCapability, NodeMatch};
use crate::cluster::Cluster;
use crate::id::NodeId;
use crate::message::{
    BIN_VERSION, ModulePacket, Routed, RoutedBody, ShtagActive, Sync, SyncEnd, SyncReq, Trailer,
};
use crate::node::Ctx;
use crate::output::{DropReason, Event};
use crate::send::SendStatus;
use crate::shtag::{Rank, SharingTags, ShtagPort, ShtagReason, ShtagState};
use crate::sync::{DonorCandidate, SyncPort, SyncSettings};
use crate::time::{Instant, Now};

/// The [`ShtagPort`] of one cluster.
struct ShtagCx<'a, 'b> {
    ctx: &'a mut Ctx<'b>,
    c: &'a mut Cluster,
}

impl ShtagPort for ShtagCx<'_, '_> {
    fn now(&self) -> Instant {
        self.ctx.now.instant
    }

    fn local_enabled(&self) -> bool {
        self.c.local.enabled
    }

    fn local_rank(&self) -> Rank {
        (false, self.c.local.priority, self.ctx.s.my_id)
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.c.nodes.iter().map(|n| n.id).collect()
    }

    fn reachable(&mut self) -> Vec<NodeId> {
        self.c.reachable_nodes(self.ctx.s.rerouting)
    }

    fn rank(&self, tag: &str, node: NodeId) -> Option<Rank> {
        let n = self.c.node(node)?;
        let advert = format!("{ELECTION_CAPABILITY_PREFIX}{tag}");
        let eligible = n.capabilities.iter().any(|r| r.name == advert && r.ok);
        Some((!eligible, n.priority, node))
    }

    fn announce(&mut self, tag: &str, to: NodeId) -> SendStatus {
        let body = RoutedBody::ShtagActive(ShtagActive { tag: tag.into() });
        self.ctx.send_one(self.c, to, BIN_VERSION, body)
    }

    fn changed(&mut self, tag: &str, state: ShtagState, reason: ShtagReason) {
        let text = format!(
            "TAG <{tag}>, cluster {}, became {} due to {reason}",
            self.c.id,
            state.name()
        );
        self.ctx
            .out
            .shtag_reports
            .push(self.ctx.now.unix_time, text);
        self.ctx.out.event(Event::ShtagChanged {
            name: tag.into(),
            cluster: self.c.id,
            state,
            reason: format!("{reason}"),
        });
    }
}

impl Ctx<'_> {
    /// Runs `f` on the cluster's sharing tags with the cluster as their port.
    pub(crate) fn with_shtags<R>(
        &mut self,
        c: &mut Cluster,
        f: impl FnOnce(&mut SharingTags, &mut dyn ShtagPort) -> R,
    ) -> R {
        let mut tags = core::mem::take(&mut c.shtags);
        let r = f(&mut tags, &mut ShtagCx { ctx: self, c });
        c.shtags = tags;
        r
    }
}

/// The [`SyncPort`] of one cluster.
struct SyncCx<'a, 'b> {
    ctx: &'a mut Ctx<'b>,
    c: &'a mut Cluster,
}

impl SyncPort for SyncCx<'_, '_> {
    fn now(&self) -> Now {
        self.ctx.now
    }

    fn settings(&self) -> SyncSettings {
        self.ctx.s.sync_settings()
    }

    fn is_seed(&self) -> bool {
        self.c.local.seed
    }

    fn donors(&mut self, capability: &str, condition: NodeMatch) -> Vec<DonorCandidate> {
        let rerouting = self.ctx.s.rerouting;
        let c = &mut *self.c;
        c.refresh_routes();
        let local_sip = c.local.sip_addr.as_str();
        c.nodes
            .iter()
            .filter(|n| {
                n.enabled
                    && condition.matches(local_sip, &n.sip_addr)
                    && n.capabilities.iter().any(|r| r.name == capability && r.ok)
            })
            .filter_map(|n| {
                let route = c.cached_route(n.id, rerouting)?;
                Some(DonorCandidate {
                    id: n.id,
                    hops: route.hops,
                    priority: n.priority,
                })
            })
            .collect()
    }

    fn send(&mut self, to: NodeId, body: RoutedBody) -> bool {
        let trailer = Trailer {
            cluster: self.c.id,
            source: self.ctx.s.my_id,
            destination: to,
        };
        self.ctx.send_routed(self.c, Routed::new(trailer, body))
    }

    fn advertise(&mut self, capability: &str, ok: bool) {
        self.ctx.send_single_cap_update(self.c, capability, ok);
    }
}

impl Ctx<'_> {
    /// Runs `f` on the local capability at `index` with the cluster as its sync port.
    pub(crate) fn with_capability<R>(
        &mut self,
        c: &mut Cluster,
        index: usize,
        f: impl FnOnce(&mut LocalCapability, &mut dyn SyncPort) -> R,
    ) -> R {
        let mut caps = core::mem::take(&mut c.capabilities);
        let r = f(&mut caps[index], &mut SyncCx { ctx: self, c });
        c.capabilities = caps;
        r
    }

    /// Tries every queued request again (a donor may have appeared).
    pub(crate) fn resolve_pending_syncs(&mut self, c: &mut Cluster) {
        for index in 0..c.capabilities.len() {
            self.with_capability(c, index, |cap, port| cap.resolve_pending(port));
        }
    }

    /// SYNC_REQ received (behaviour.md §9.7): answered at once when the requester is
    /// reachable, else when it comes up (§6).
    pub(crate) fn handle_sync_req(
        &mut self,
        c: &mut Cluster,
        requester: NodeId,
        req: SyncReq,
    ) -> Result<(), DropReason> {
        let index = c
            .capabilities
            .iter()
            .position(|cap| cap.name == req.capability)
            .ok_or(DropReason::UnknownCapability)?;
        if !c.capabilities[index].enabled {
            return Err(DropReason::CapabilityDisabled);
        }
        c.refresh_routes();
        if c.cached_route(requester, self.s.rerouting).is_some() {
            self.with_capability(c, index, |cap, port| cap.send_sync_reply(port, requester));
            return Ok(());
        }
        let Some(n) = c.node_mut(requester) else {
            return Err(DropReason::UnknownSource);
        };
        match n.capabilities.iter_mut().find(|r| r.name == req.capability) {
            Some(r) => {
                r.sync_reply_pending = true;
                Ok(())
            }
            None => Err(DropReason::UnknownCapability),
        }
    }

    /// The index of a registered, enabled capability for a received sync or module packet.
    fn receiving_capability(&self, c: &Cluster, name: &str) -> Result<usize, DropReason> {
        let index = c
            .capabilities
            .iter()
            .position(|cap| cap.name == name)
            .ok_or(DropReason::UnknownCapability)?;
        if c.capabilities[index].enabled {
            Ok(index)
        } else {
            Err(DropReason::CapabilityDisabled)
        }
    }

    /// SYNC received (behaviour.md §9.8).
    pub(crate) fn handle_sync(
        &mut self,
        c: &mut Cluster,
        donor: NodeId,
        sync: Sync,
    ) -> Result<(), DropReason> {
        let index = self.receiving_capability(c, &sync.capability)?;
        self.with_capability(c, index, |cap, port| cap.on_sync(port, donor, sync))
    }

    /// SYNC_END received.
    pub(crate) fn handle_sync_end(
        &mut self,
        c: &mut Cluster,
        donor: NodeId,
        end: SyncEnd,
    ) -> Result<(), DropReason> {
        let index = self.receiving_capability(c, &end.capability)?;
        self.with_capability(c, index, |cap, port| cap.on_sync_end(port, donor, end))
    }

    /// A module packet addressed to us: applied, or held back while a sync runs.
    pub(crate) fn handle_module_packet(
        &mut self,
        c: &mut Cluster,
        source: NodeId,
        version: i16,
        packet: ModulePacket,
    ) -> Result<(), DropReason> {
        let index = self.receiving_capability(c, &packet.capability)?;
        self.with_capability(c, index, |cap, port| {
            cap.on_module_packet(port, source, version, packet);
        });
        Ok(())
    }

    /// The 500 ms sync check (behaviour.md §9.6, §9.8) of every capability, then queued
    /// requests are retried while donors exist.
    pub(crate) fn sync_check(&mut self, c: &mut Cluster) {
        if !c.local.enabled {
            return;
        }
        for index in 0..c.capabilities.len() {
            self.with_capability(c, index, |cap, port| cap.sync_check(port));
        }
        if self.s.sync.retry {
            self.resolve_pending_syncs(c);
        }
    }

    /// Capability side of node events (behaviour.md §6): deferred sync replies go out to a
    /// node that came up and queued requests are retried; every capability hears of the
    /// change; a sync whose donor went away is abandoned.
    pub(crate) fn capabilities_on_node_event(&mut self, c: &mut Cluster, node: NodeId, up: bool) {
        if up {
            let mut names = Vec::new();
            if let Some(n) = c.node_mut(node) {
                for r in &mut n.capabilities {
                    if core::mem::take(&mut r.sync_reply_pending) {
                        names.push(r.name.clone());
                    }
                }
            }
            let pending: Vec<usize> = names
                .iter()
                .filter_map(|name| c.capabilities.iter().position(|cap| &cap.name == name))
                .collect();
            for index in pending {
                self.with_capability(c, index, |cap, port| cap.send_sync_reply(port, node));
            }
            self.resolve_pending_syncs(c);
            for cap in &mut c.capabilities {
                cap.notify_node(node, true);
            }
        } else {
            for cap in &mut c.capabilities {
                cap.notify_node(node, false);
            }
            for index in 0..c.capabilities.len() {
                self.with_capability(c, index, |cap, port| cap.on_donor_lost(port, node));
            }
        }
    }
}
