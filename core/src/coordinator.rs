//! The cluster coordinator: where the state machines of one cluster meet the cluster.
//!
//! Each machine owns its state and talks to the world through a port trait of its own
//! (sharing tags: [`ShtagPort`]; the sync of a capability: [`SyncPort`]), or takes plain
//! values and returns what the coordinator must do (topology:
//! [`LsEffect`](crate::topology::LsEffect)). The coordinator implements those ports over the
//! cluster — node table, routes, sends through the routing of docs/behaviour.md §5.5, report
//! rings and events — so a machine never reaches into another machine's state and never
//! builds a packet. To run a machine it is taken out of the cluster for the call and put
//! back after (the port then has the rest of the cluster to itself).

use alloc::format;
use alloc::vec::Vec;

use crate::capability::{ELECTION_CAPABILITY_PREFIX, LocalCapability, NodeMatch};
use crate::cluster::Cluster;
use crate::config::DbMode;
use crate::id::NodeId;
use crate::link::LinkState;
use crate::message::{
    BIN_VERSION, CapUpdate, CapabilityBlock, CapabilityState, FullTopUpdate, InternalBody,
    LinkUpdate, LsUpdate, MAX_FLOOD_PATH_LEN, ModulePacket, NodeInfo, Routed, RoutedBody,
    ShtagActive, Sync, SyncEnd, SyncReq, Trailer,
};
use crate::node::Ctx;
use crate::output::{DropReason, Event, SendStatus};
use crate::shtag::{Rank, SharingTags, ShtagPort, ShtagReason, ShtagState};
use crate::sync::{DonorCandidate, SyncPort, SyncSettings};
use crate::time::{Instant, Now};
use crate::topology::Described;

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
        let eligible = self.c.adverts.advertises_ok(node, &advert);
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
                    && c.adverts.advertises_ok(n.id, capability)
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

    /// SYNC_REQ received (docs/behaviour.md §9.7): answered at once when the requester is
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
        c.adverts.defer_sync_reply(requester, &req.capability)
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

    /// SYNC received (docs/behaviour.md §9.8).
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

    /// The 500 ms sync check (docs/behaviour.md §9.6, §9.8) of every capability, then queued
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

    /// Capability side of node events (docs/behaviour.md §6): deferred sync replies go out to a
    /// node that came up and queued requests are retried; every capability hears of the
    /// change; a sync whose donor went away is abandoned.
    pub(crate) fn capabilities_on_node_event(&mut self, c: &mut Cluster, node: NodeId, up: bool) {
        if up {
            let names = c.adverts.take_deferred_replies(node);
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

impl Ctx<'_> {
    /// LS_UPDATE (docs/behaviour.md §4.2): applied by the topology machine, then the hint about
    /// our own link, the reachability refresh and the flood.
    pub(crate) fn handle_ls_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: LsUpdate,
    ) -> Result<(), DropReason> {
        let effect = c.topology.on_ls_update(self.s.db_mode, origin, &u)?;
        if let Some(seen) = effect.own_link {
            // A hint about our own link with the originator (§3.3).
            let state = c.node(origin).map(|n| n.link.state());
            let disagrees = match seen {
                LinkUpdate::Up => state == Some(LinkState::Down),
                LinkUpdate::Down => state == Some(LinkState::Up),
            };
            if disagrees {
                self.set_link(c, origin, LinkState::RestartPinging);
            }
        }
        if effect.changed {
            self.refresh_reachability(c);
        }
        self.flood(c, origin, InternalBody::LsUpdate(u));
        Ok(())
    }

    /// FULL_TOP_UPDATE (docs/behaviour.md §4.3): validated, described unknown nodes learned
    /// (db_mode 0), applied, DOWN nodes that list us probed, reachability refreshed,
    /// flooded; a neighbour that restarted while its link stayed UP gets our view.
    pub(crate) fn handle_full_top_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: FullTopUpdate,
    ) -> Result<(), DropReason> {
        let restarted = c.topology.check_full_top_update(origin, &u)?;
        let neighbour_restarted = restarted
            && c.node(origin)
                .is_some_and(|n| n.link.state() == LinkState::Up);
        let me = self.s.my_id;
        // Learn described unknown nodes first, so neighbour lists may name them (db_mode 0).
        if self.s.db_mode == DbMode::Discovery {
            for e in &u.entries {
                if let Some(info) = &e.description
                    && e.node != me
                    && c.node(e.node).is_none()
                {
                    // A node that cannot be learned (full cluster, bad URL) is skipped.
                    let _ = self.learn_node(c, e.node, info);
                }
            }
        }
        let listing_me = c
            .topology
            .apply_full_top_update(self.s.db_mode, origin, restarted, &u);
        for id in listing_me {
            let probe = c
                .node(id)
                .is_some_and(|n| n.link.state() == LinkState::Down && n.enabled);
            if probe {
                self.set_link(c, id, LinkState::RestartPinging);
            }
        }
        self.refresh_reachability(c);
        self.flood(c, origin, InternalBody::FullTopUpdate(u));
        if neighbour_restarted {
            // No link-up procedure runs on our side: give it our view of the topology now.
            self.send_full_top_update(c, origin);
        }
        Ok(())
    }

    /// Forwards an accepted flooded update to every UP neighbour not in its path, with the
    /// local id appended; nothing when the received path is longer than 25 (docs/wire.md §5).
    pub(crate) fn flood(&mut self, c: &mut Cluster, origin: NodeId, mut body: InternalBody) {
        let me = self.s.my_id;
        let Some(path) = body.path_mut() else { return };
        if path.len() > MAX_FLOOD_PATH_LEN {
            return;
        }
        path.push(me);
        let targets: Vec<NodeId> = c
            .up_neighbours()
            .map(|n| n.id)
            .filter(|id| body.path().is_some_and(|p| !p.contains(id)))
            .collect();
        for to in targets {
            self.send_internal_from(c, origin, to, body.clone());
        }
    }

    /// Originates LS_UPDATE(neighbour, state) to every other UP neighbour (the counter
    /// rule is the topology machine's).
    pub(crate) fn send_ls_update(&mut self, c: &mut Cluster, neighbour: NodeId, state: LinkUpdate) {
        let targets: Vec<NodeId> = c
            .up_neighbours()
            .map(|n| n.id)
            .filter(|&id| id != neighbour)
            .collect();
        let told = !targets.is_empty();
        let Some(stamp) = c.topology.originate_ls_update(self.now.unix_wire(), told) else {
            return;
        };
        let u = LsUpdate {
            seq: stamp.seq,
            timestamp: stamp.timestamp,
            neighbour,
            state,
            path: alloc::vec![self.s.my_id],
        };
        for to in targets {
            self.send_internal(c, to, InternalBody::LsUpdate(u.clone()));
        }
    }

    /// Originates a FULL_TOP_UPDATE to a neighbour whose link just came UP (docs/wire.md §7.4):
    /// every other known node is described unless the destination listed it in its last
    /// PONG.
    pub(crate) fn send_full_top_update(&mut self, c: &mut Cluster, dest: NodeId) {
        let Some(d) = c.node(dest) else { return };
        let known_by_dest = d.pong_list.clone();
        let unix = self.now.unix_wire();
        let Cluster {
            nodes, topology, ..
        } = &mut *c;
        let (stamp, entries) = topology.originate_full_top_update(dest, unix, |id| {
            let n = nodes.iter().find(|n| n.id == id);
            Described {
                info: n
                    .filter(|_| !known_by_dest.contains(&id))
                    .map(|n| NodeInfo {
                        url: n.url.clone(),
                        sip_addr: n.sip_addr.clone(),
                        priority: n.priority,
                        no_ping_retries: i32::try_from(n.no_ping_retries).unwrap_or(i32::MAX),
                    }),
                up: n.is_some_and(|n| n.link.state() == LinkState::Up),
            }
        });
        let u = FullTopUpdate {
            seq: stamp.seq,
            timestamp: stamp.timestamp,
            entries,
            path: alloc::vec![self.s.my_id],
        };
        self.send_internal(c, dest, InternalBody::FullTopUpdate(u));
    }
}

impl Ctx<'_> {
    /// Our own block of a CAP_UPDATE: every local capability with its advertised state,
    /// then the election adverts of sharing tags.
    fn local_cap_block(&self, c: &Cluster) -> Option<CapabilityBlock> {
        let mut capabilities: Vec<CapabilityState> = c
            .capabilities
            .iter()
            .map(|cap| CapabilityState {
                name: cap.name.clone(),
                ok: cap.advertised(),
            })
            .collect();
        capabilities.extend(c.shtags.election_tags().map(|t| CapabilityState {
            name: format!("{ELECTION_CAPABILITY_PREFIX}{t}"),
            ok: true,
        }));
        (!capabilities.is_empty()).then_some(CapabilityBlock {
            node: self.s.my_id,
            capabilities,
        })
    }

    /// Sends the full CAP_UPDATE to `dest` (docs/behaviour.md §9.3); nothing when there is
    /// nothing to report.
    pub(crate) fn send_full_cap_update(
        &mut self,
        c: &mut Cluster,
        dest: NodeId,
        require_reply: bool,
    ) {
        let local = self.local_cap_block(c);
        let unix = self.now.unix_wire();
        if let Some(u) = c.adverts.full_update(local, dest, unix, require_reply) {
            self.send_internal(c, dest, InternalBody::CapUpdate(u));
        }
    }

    /// Sends the single CAP_UPDATE for one local capability's new advertised state to every
    /// UP neighbour; nothing (and no counter increment) without one.
    pub(crate) fn send_single_cap_update(&mut self, c: &mut Cluster, name: &str, ok: bool) {
        let targets: Vec<NodeId> = c.up_neighbours().map(|n| n.id).collect();
        let unix = self.now.unix_wire();
        let Some(u) = c.adverts.single_update(name, ok, unix, !targets.is_empty()) else {
            return;
        };
        for to in targets {
            self.send_internal(c, to, InternalBody::CapUpdate(u.clone()));
        }
    }

    /// CAP_UPDATE received (docs/behaviour.md §9.3): applied by the adverts machine; a
    /// restarted originator is forgotten as a tag announcer, queued syncs may find a
    /// donor, elections re-evaluate, a requested reply goes out, and the update is flooded
    /// without the reply flag.
    pub(crate) fn handle_cap_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: CapUpdate,
    ) -> Result<(), DropReason> {
        let effect = c.adverts.on_cap_update(origin, &u)?;
        if effect.restarted {
            // A restarted node holds no tag active, even if we never saw it unreachable.
            c.shtags.forget_announcer(origin);
        }
        if effect.newly_ok {
            // A donor may have appeared for a queued request.
            self.resolve_pending_syncs(c);
        }
        self.with_shtags(c, |tags, port| tags.reevaluate(port));
        if effect.reply {
            self.send_full_cap_update(c, origin, false);
        }
        let mut u = u;
        u.require_reply = false;
        self.flood(c, origin, InternalBody::CapUpdate(u));
        Ok(())
    }
}
