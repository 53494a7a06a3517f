//! Data synchronisation of capabilities (behaviour.md §9.5–§9.8): requests and donor
//! choice, the donor's packing of SYNC packets, the requester's chunk counting and
//! buffering, seed fallback, timeouts, and live module packets.
//!
//! Improvements over OpenSIPS, each switchable in [`SyncOptions`] and on by default:
//! donor choice by fewest hops then (priority, id) instead of list order; a first-packet
//! timeout after a SYNC_REQ with a retry to the next donor (quirk #10); a retry when a sync
//! times out or its donor becomes unreachable; unsolicited SYNC packets ignored (quirk #12);
//! chunks the capability rejects skipped and counted instead of stalling the sync
//! (cachedb-local.md quirk #5); live packets buffered from the SYNC_REQ on, not only from the
//! first SYNC packet.

use alloc::format;
use alloc::vec::Vec;

use crate::capability::{CapabilityError, CapabilityEvent, InProgress, Requested, SyncStatus};
use crate::cluster::Cluster;
use crate::id::{ClusterId, NodeId};
use crate::message::{ModulePacket, Routed, RoutedBody, Sync, SyncEnd, SyncReq, Trailer};
use crate::node::{Ctx, Node};
use crate::output::DropReason;
use crate::time::Now;

/// Bytes of a SYNC packet before its first chunk, without the capability name: header
/// (marker, length, version, cap_len, `clusterer-extra`, type), the name's length field and
/// the data_version.
const SYNC_FIXED_OVERHEAD: usize = 4 + 4 + 2 + 2 + 15 + 4 + 2 + 4;
/// Bytes of a chunk header (size, marker).
const CHUNK_HEADER: usize = 8;
/// Bytes of the routing trailer.
const TRAILER: usize = 12;
/// Largest packet we emit (wire.md §2.2).
const MAX_PACKET: usize = 65515;

pub use crate::config::SyncOptions;

/// What [`Node::request_sync`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestSync {
    /// A SYNC_REQ went to this donor.
    Requested(NodeId),
    /// No donor yet: the request is queued (`Sync request postponed!`).
    Queued,
    /// A request was already queued (OpenSIPS returns 0).
    AlreadyPending,
    /// A sync is already requested or running (OpenSIPS returns 1).
    InProgress,
    /// The capability is disabled; nothing done (OpenSIPS returns 0).
    Disabled,
}

impl Ctx<'_> {
    /// `cl_request_sync` for the capability at `index`.
    pub(crate) fn request_sync(&mut self, c: &mut Cluster, index: usize) -> RequestSync {
        let Some(cap) = c.capabilities.get_mut(index) else {
            return RequestSync::Disabled;
        };
        if cap.pending.is_some() {
            return RequestSync::AlreadyPending;
        }
        if cap.in_progress.is_some() || cap.requested.is_some() {
            return RequestSync::InProgress;
        }
        if !cap.enabled {
            return RequestSync::Disabled;
        }
        cap.tried.clear();
        if cap.ok {
            self.set_cap_ok(c, index, false);
        }
        self.try_donors(c, index)
    }

    /// Sends a SYNC_REQ to the best donor not tried yet, or queues the request.
    fn try_donors(&mut self, c: &mut Cluster, index: usize) -> RequestSync {
        let donor = self.choose_donor(c, index);
        let now = self.now;
        if let Some(donor) = donor
            && self.send_sync_req(c, index, donor)
        {
            let cap = &mut c.capabilities[index];
            cap.pending = None;
            cap.requested = Some(Requested {
                donor,
                at: now.instant,
            });
            cap.tried.push(donor);
            cap.status = SyncStatus::SyncPending;
            cap.report(now.unix_time, format!("Sync requested from node [{donor}]"));
            return RequestSync::Requested(donor);
        }
        let cap = &mut c.capabilities[index];
        cap.tried.clear();
        cap.requested = None;
        // Keep the first queueing time: the seed fallback counts from it.
        cap.pending = Some(cap.pending.unwrap_or(now.instant));
        cap.status = SyncStatus::SyncPending;
        cap.report(
            now.unix_time,
            "Sync request postponed! (no donor available)".into(),
        );
        if cap.in_progress.is_none() {
            self.flush_buffer(c, index);
        }
        RequestSync::Queued
    }

    /// The donor for the capability at `index`: reachable, matching the sync condition,
    /// advertising the capability synced, not tried by the current request.
    fn choose_donor(&mut self, c: &mut Cluster, index: usize) -> Option<NodeId> {
        c.refresh_routes();
        let rerouting = self.s.rerouting;
        let cap = &c.capabilities[index];
        let local_sip = c.local.sip_addr.as_str();
        let candidates = c.nodes.iter().filter(|n| {
            n.enabled
                && !cap.tried.contains(&n.id)
                && cap.condition.matches(local_sip, &n.sip_addr)
                && n.capabilities.iter().any(|r| r.name == cap.name && r.ok)
        });
        let mut best: Option<(u32, i32, NodeId)> = None;
        for n in candidates {
            let Some(route) = c.cached_route(n.id, rerouting) else {
                continue;
            };
            if !self.s.sync.best_donor {
                return Some(n.id);
            }
            let key = (route.hops, n.priority, n.id);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, id)| id)
    }

    fn send_sync_req(&mut self, c: &mut Cluster, index: usize, donor: NodeId) -> bool {
        let capability = c.capabilities[index].name.clone();
        let trailer = Trailer {
            cluster: c.id,
            source: self.s.my_id,
            destination: donor,
        };
        self.send_routed(
            c,
            Routed::new(trailer, RoutedBody::SyncReq(SyncReq { capability })),
        )
    }

    /// Tries every queued request again (a donor may have appeared).
    pub(crate) fn resolve_pending_syncs(&mut self, c: &mut Cluster) {
        for index in 0..c.capabilities.len() {
            let cap = &c.capabilities[index];
            if cap.pending.is_some()
                && cap.enabled
                && !cap.ok
                && self.choose_donor(c, index).is_some()
            {
                self.try_donors(c, index);
            }
        }
    }

    /// SYNC_REQ received (behaviour.md §9.7).
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
            self.send_sync_reply(c, index, requester);
            return Ok(());
        }
        // Unreachable requester: answer when it comes up (§6).
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

    /// Donor side: collects the capability's chunks and sends them in SYNC packets packed
    /// like OpenSIPS (a new packet starts when the current length plus the previous chunk's
    /// data size exceeds `sync_packet_size`), then SYNC_END with the count.
    pub(crate) fn send_sync_reply(&mut self, c: &mut Cluster, index: usize, requester: NodeId) {
        let cap = &mut c.capabilities[index];
        cap.handler
            .handle_event(CapabilityEvent::SyncRequested { requester });
        let name = cap.name.clone();
        let data_version = cap.handler.data_version();
        let fixed = SYNC_FIXED_OVERHEAD + name.len();
        let limit = self.s.sync_packet_size;
        let mut packets: Vec<Sync> = Vec::new();
        let mut current = Sync {
            capability: name.clone(),
            data_version,
            chunks: Vec::new(),
        };
        let mut current_len = fixed;
        let mut count: u32 = 0;
        let mut too_large = 0u64;
        cap.handler
            .produce_sync_chunks(requester, &mut |chunk: &[u8]| {
                let wire = CHUNK_HEADER + chunk.len();
                if fixed + wire + TRAILER > MAX_PACKET {
                    // Cannot be encoded in any packet: not sent (cachedb-local.md quirk #7).
                    too_large += 1;
                    return;
                }
                let previous = current.chunks.last().map_or(0, Vec::len);
                let over_soft = !current.chunks.is_empty() && current_len + previous > limit;
                let over_hard = current_len + wire + TRAILER > MAX_PACKET;
                if over_soft || over_hard {
                    packets.push(core::mem::replace(
                        &mut current,
                        Sync {
                            capability: name.clone(),
                            data_version,
                            chunks: Vec::new(),
                        },
                    ));
                    current_len = fixed;
                }
                current.chunks.push(chunk.to_vec());
                current_len += wire;
                count += 1;
            });
        if !current.chunks.is_empty() {
            packets.push(current);
        }
        if too_large > 0 {
            let text =
                format!("Sync to node [{requester}]: [{too_large}] records too large to send");
            cap.report(self.now.unix_time, text);
        }
        let trailer = Trailer {
            cluster: c.id,
            source: self.s.my_id,
            destination: requester,
        };
        for p in packets {
            self.send_routed(c, Routed::new(trailer, RoutedBody::Sync(p)));
        }
        let end = SyncEnd {
            capability: name,
            chunk_count: count,
        };
        self.send_routed(c, Routed::new(trailer, RoutedBody::SyncEnd(end)));
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

    /// Whether a SYNC/SYNC_END from `donor` belongs to a sync we run or asked for.
    fn solicited(&self, c: &Cluster, index: usize, donor: NodeId) -> bool {
        let cap = &c.capabilities[index];
        !self.s.sync.ignore_unsolicited
            || cap.in_progress.is_some_and(|p| p.donor == donor)
            || cap.requested.is_some_and(|r| r.donor == donor)
    }

    /// Marks the sync from `donor` in progress (first packet: status −1, report).
    fn start_receiving(&mut self, c: &mut Cluster, index: usize, donor: NodeId) {
        let now = self.now;
        let cap = &mut c.capabilities[index];
        if cap.ok {
            return;
        }
        match &mut cap.in_progress {
            Some(p) => p.last_packet = now.instant,
            None => {
                cap.requested = None;
                cap.pending = None;
                cap.in_progress = Some(InProgress {
                    donor,
                    last_packet: now.instant,
                    received: 0,
                    expected: None,
                });
                cap.status = SyncStatus::SyncInProgress;
                cap.report(now.unix_time, format!("Sync started from node [{donor}]"));
                cap.handler
                    .handle_event(CapabilityEvent::SyncStarted { donor });
            }
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
        if !self.solicited(c, index, donor) {
            return Err(DropReason::UnsolicitedSync);
        }
        self.start_receiving(c, index, donor);
        let skip = self.s.sync.skip_rejected_chunks;
        let cap = &mut c.capabilities[index];
        let mut iterated: u32 = 0;
        let mut rejected = Vec::new();
        for chunk in &sync.chunks {
            iterated += 1;
            if let Err(reason) = cap
                .handler
                .apply_sync_chunk(donor, sync.data_version, chunk)
            {
                cap.skipped_chunks += 1;
                rejected.push(reason.0);
                if !skip {
                    break;
                }
            }
        }
        cap.chunks_received_total += u64::from(iterated);
        for reason in rejected.iter().take(3) {
            let text = format!("Sync chunk from node [{donor}] rejected: {reason}");
            cap.report(self.now.unix_time, text);
        }
        if let Some(p) = &mut cap.in_progress {
            p.received = p.received.saturating_add(iterated);
            if p.expected.is_some_and(|e| p.received >= e) {
                self.complete_sync(c, index);
            }
        }
        Ok(())
    }

    /// SYNC_END received.
    pub(crate) fn handle_sync_end(
        &mut self,
        c: &mut Cluster,
        donor: NodeId,
        end: SyncEnd,
    ) -> Result<(), DropReason> {
        let index = self.receiving_capability(c, &end.capability)?;
        if !self.solicited(c, index, donor) {
            return Err(DropReason::UnsolicitedSync);
        }
        // A reply with no chunk at all never sent a SYNC packet.
        self.start_receiving(c, index, donor);
        let cap = &mut c.capabilities[index];
        if let Some(p) = &mut cap.in_progress {
            p.expected = Some(end.chunk_count);
            if p.received >= end.chunk_count {
                self.complete_sync(c, index);
            }
        }
        Ok(())
    }

    /// Completion: buffered packets applied in order, status 1, SYNC_DONE, state 1
    /// advertised.
    fn complete_sync(&mut self, c: &mut Cluster, index: usize) {
        let now = self.now;
        let cap = &mut c.capabilities[index];
        let Some(p) = cap.in_progress.take() else {
            return;
        };
        cap.status = SyncStatus::Synced;
        cap.tried.clear();
        cap.report(
            now.unix_time,
            format!("Sync completed, received [{}] chunks", p.received),
        );
        if cap.skipped_chunks > 0 {
            let text = format!(
                "Sync skipped [{}] chunks the capability rejected",
                cap.skipped_chunks
            );
            cap.report(now.unix_time, text);
            cap.skipped_chunks = 0;
        }
        self.flush_buffer(c, index);
        c.capabilities[index]
            .handler
            .handle_event(CapabilityEvent::SyncDone { donor: p.donor });
        self.set_cap_ok(c, index, true);
    }

    /// Applies the held-back live packets in arrival order.
    pub(crate) fn flush_buffer(&mut self, c: &mut Cluster, index: usize) {
        let cap = &mut c.capabilities[index];
        while let Some((source, version, packet)) = cap.buffer.pop_front() {
            if cap.handler.apply_packet(source, version, &packet).is_err() {
                cap.rejected_packets += 1;
            }
        }
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
        let buffer_from_request = self.s.sync.buffer_from_request;
        let max = self.s.sync.max_buffered_packets;
        let cap = &mut c.capabilities[index];
        let holding = cap.in_progress.is_some() || (buffer_from_request && cap.requested.is_some());
        if !holding {
            if cap.handler.apply_packet(source, version, &packet).is_err() {
                cap.rejected_packets += 1;
            }
            return Ok(());
        }
        cap.buffer.push_back((source, version, packet));
        if cap.buffer.len() > max {
            let text = format!("Sync abandoned: more than [{max}] live packets held back");
            cap.report(self.now.unix_time, text);
            self.abort_sync(c, index, false);
        }
        Ok(())
    }

    /// Abandons the running or requested sync. With retries on, asks another donor (the
    /// held packets stay held if one is found); otherwise the capability stays not synced.
    fn abort_sync(&mut self, c: &mut Cluster, index: usize, timed_out: bool) {
        let cap = &mut c.capabilities[index];
        let donor = cap.sync_donor();
        if let Some(p) = cap.in_progress.take() {
            cap.status = SyncStatus::NotSynced;
            if timed_out {
                let text = format!("Sync timed out, received [{}] chunks", p.received);
                cap.report(self.now.unix_time, text);
            }
        }
        cap.requested = None;
        if let Some(donor) = donor {
            cap.handler
                .handle_event(CapabilityEvent::SyncAborted { donor });
        }
        if self.s.sync.retry && c.capabilities[index].enabled {
            if let RequestSync::Requested(_) = self.try_donors(c, index) {
                return;
            }
        } else {
            c.capabilities[index].status = SyncStatus::NotSynced;
        }
        self.flush_buffer(c, index);
    }

    /// The 500 ms sync check (behaviour.md §9.6, §9.8): seed fallback, sync timeout, and the
    /// first-packet timeout.
    pub(crate) fn sync_check(&mut self, c: &mut Cluster) {
        if !c.local.enabled {
            return;
        }
        let now = self.now;
        let fallback_ms = u64::from(self.s.timers.seed_fallback_interval_s) * 1000;
        let timeout_ms = u64::from(self.s.timers.sync_timeout_s) * 1000;
        for index in 0..c.capabilities.len() {
            let cap = &mut c.capabilities[index];
            if !cap.enabled {
                continue;
            }
            if let Some(since) = cap.pending
                && !cap.ok
                && c.local.seed
                && now.instant.since(since) >= fallback_ms
            {
                cap.pending = None;
                cap.status = SyncStatus::Synced;
                cap.report(
                    now.unix_time,
                    "ERROR: Sync request aborted! (no donor found in due time) => fallback to synced state"
                        .into(),
                );
                self.set_cap_ok(c, index, true);
                continue;
            }
            let cap = &c.capabilities[index];
            if cap
                .in_progress
                .is_some_and(|p| now.instant.since(p.last_packet) >= timeout_ms)
            {
                self.abort_sync(c, index, true);
            } else if self.s.sync.first_packet_timeout
                && let Some(r) = cap.requested
                && now.instant.since(r.at) >= timeout_ms
            {
                let text = format!("Sync request to node [{}] got no answer in time", r.donor);
                c.capabilities[index].report(now.unix_time, text);
                self.abort_sync(c, index, false);
            }
        }
        // Requests queued after every donor failed are retried while donors exist.
        if self.s.sync.retry {
            self.resolve_pending_syncs(c);
        }
    }

    /// Capability side of node events (behaviour.md §6).
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
                self.send_sync_reply(c, index, node);
            }
            self.resolve_pending_syncs(c);
            for cap in &mut c.capabilities {
                cap.handler.handle_event(CapabilityEvent::NodeUp(node));
            }
        } else {
            for cap in &mut c.capabilities {
                cap.handler.handle_event(CapabilityEvent::NodeDown(node));
            }
            if self.s.sync.retry {
                for index in 0..c.capabilities.len() {
                    if c.capabilities[index].sync_donor() == Some(node) {
                        let text = format!("Sync donor node [{node}] became unreachable");
                        c.capabilities[index].report(self.now.unix_time, text);
                        self.abort_sync(c, index, false);
                    }
                }
            }
        }
    }
}

impl Node {
    /// `cl_request_sync`: asks the best donor for the capability's data, or queues the
    /// request until one appears (behaviour.md §9.5).
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
            Ok(ctx.request_sync(c, index))
        })
        .unwrap_or(Err(CapabilityError::UnknownCluster))
    }
}
