//! Data synchronisation of capabilities (docs/behaviour.md §9.5–§9.8), the sync state machine
//! of one local capability: requests and donor choice, the donor's packing of SYNC
//! packets, the requester's chunk counting and buffering, seed fallback, timeouts, and
//! live module packets.
//!
//! The machine's state is the sync part of a [`LocalCapability`] (status, pending request,
//! donor, chunks, held-back packets, `cap:<name>` reports) and the capability's handler,
//! which holds the data. What it needs of the cluster (time, settings, donor candidates)
//! and what it does to it (send a routed message, change the advertised state) go
//! through a [`SyncPort`]; the cluster coordinator implements it, the unit tests below
//! implement it with plain values.
//!
//! Improvements over OpenSIPS, each switchable in [`SyncOptions`] and on by default:
//! donor choice by fewest hops then (priority, id) instead of list order; a first-packet
//! timeout after a SYNC_REQ with a retry to the next donor (quirk #10); a retry when a sync
//! times out or its donor becomes unreachable; unsolicited SYNC packets ignored (quirk #12);
//! chunks the capability rejects skipped and counted instead of stalling the sync
//! (docs/cachedb-local.md quirk #5); live packets buffered from the SYNC_REQ on, not only from the
//! first SYNC packet.

use alloc::format;
use alloc::vec::Vec;

use crate::capability::{
    CapabilityEvent, InProgress, LocalCapability, NodeMatch, Requested, SyncStatus,
};
use crate::id::NodeId;
use crate::message::sizes::{MAX_EMIT_LEN, SYNC_CHUNK_HEADER_LEN, TRAILER_LEN, sync_overhead};
use crate::message::{ModulePacket, RoutedBody, Sync, SyncEnd, SyncReq};
use crate::output::DropReason;
use crate::time::Now;

pub use crate::config::SyncOptions;

/// What [`Node::request_sync`](crate::Node::request_sync) did.
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

/// A node that could donate a capability's data, as the port reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DonorCandidate {
    /// The node.
    pub id: NodeId,
    /// Hops of the route to it.
    pub hops: u32,
    /// Its priority (lower preferred).
    pub priority: i32,
}

/// The fixed settings of the sync machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// The improvement switches.
    pub options: SyncOptions,
    /// `sync_packet_size`: soft size of SYNC packets.
    pub packet_size: usize,
    /// `seed_fallback_interval` in milliseconds.
    pub seed_fallback_ms: u64,
    /// `sync_timeout` in milliseconds.
    pub timeout_ms: u64,
}

/// What the sync machine asks of the cluster around it and does to it.
pub trait SyncPort {
    /// The current time.
    fn now(&self) -> Now;
    /// The fixed settings.
    fn settings(&self) -> SyncSettings;
    /// Whether the local node is a seed (`flags=seed`: it may fall back to synced).
    fn is_seed(&self) -> bool;
    /// Every enabled node that matches `condition`, advertises `capability` synced and has
    /// a route, in node-list order.
    fn donors(&mut self, capability: &str, condition: NodeMatch) -> Vec<DonorCandidate>;
    /// Sends a routed message to `to`; `false` when there is no route.
    fn send(&mut self, to: NodeId, body: RoutedBody) -> bool;
    /// The capability's advertised state changed to `ok` (the caller tells the cluster
    /// with a CAP_UPDATE).
    fn advertise(&mut self, capability: &str, ok: bool);
}

impl LocalCapability {
    /// `cl_request_sync` (docs/behaviour.md §9.5).
    pub fn request_sync(&mut self, port: &mut dyn SyncPort) -> RequestSync {
        if self.pending.is_some() {
            return RequestSync::AlreadyPending;
        }
        if self.in_progress.is_some() || self.requested.is_some() {
            return RequestSync::InProgress;
        }
        if !self.enabled {
            return RequestSync::Disabled;
        }
        self.tried.clear();
        if self.ok {
            self.set_ok(port, false);
        }
        self.try_donors(port)
    }

    /// Sets the OK flag and announces a change of the advertised state.
    pub fn set_ok(&mut self, port: &mut dyn SyncPort, ok: bool) {
        let before = self.advertised();
        self.ok = ok;
        let after = self.advertised();
        if before != after {
            port.advertise(&self.name, after);
        }
    }

    /// `clusterer_set_cap_status` (docs/behaviour.md §9.9). Disabling clears the synced state
    /// (status −3, report `Capability disabled via MI, revert to not synced state`) and
    /// advertises state 0; enabling advertises the real state (quirk #6 fixed) and starts
    /// no sync.
    pub fn set_enabled(&mut self, port: &mut dyn SyncPort, enabled: bool) {
        if self.enabled == enabled {
            return;
        }
        let before = self.advertised();
        self.enabled = enabled;
        if !enabled {
            self.ok = false;
            self.pending = None;
            self.status = SyncStatus::NotSynced;
            self.report(
                port.now().unix_time,
                "Capability disabled via MI, revert to not synced state".into(),
            );
            // Live packets are held back from the SYNC_REQ on: release them whether the
            // sync was running or only requested, or they would wait for a later sync and
            // be applied after newer ones.
            let requested = self.requested.take().is_some();
            if self.in_progress.take().is_some() || requested {
                self.flush_buffer();
            }
        }
        let after = self.advertised();
        if before != after {
            port.advertise(&self.name, after);
        }
    }

    /// Sends a SYNC_REQ to the best donor not tried yet, or queues the request.
    fn try_donors(&mut self, port: &mut dyn SyncPort) -> RequestSync {
        let donor = self.choose_donor(port);
        let now = port.now();
        if let Some(donor) = donor {
            let req = RoutedBody::SyncReq(SyncReq {
                capability: self.name.clone(),
            });
            if port.send(donor, req) {
                self.pending = None;
                self.requested = Some(Requested {
                    donor,
                    at: now.instant,
                });
                self.tried.push(donor);
                self.status = SyncStatus::SyncPending;
                self.report(now.unix_time, format!("Sync requested from node [{donor}]"));
                return RequestSync::Requested(donor);
            }
        }
        self.tried.clear();
        self.requested = None;
        // Keep the first queueing time: the seed fallback counts from it.
        self.pending = Some(self.pending.unwrap_or(now.instant));
        self.status = SyncStatus::SyncPending;
        self.report(
            now.unix_time,
            "Sync request postponed! (no donor available)".into(),
        );
        if self.in_progress.is_none() {
            self.flush_buffer();
        }
        RequestSync::Queued
    }

    /// The donor: reachable, matching the sync condition, advertising the capability
    /// synced, not tried by the current request; with `best_donor` the fewest hops, then
    /// the lowest (priority, id), otherwise the first in node-list order.
    fn choose_donor(&self, port: &mut dyn SyncPort) -> Option<NodeId> {
        let best_donor = port.settings().options.best_donor;
        let mut best: Option<(u32, i32, NodeId)> = None;
        for d in port.donors(&self.name, self.condition) {
            if self.tried.contains(&d.id) {
                continue;
            }
            if !best_donor {
                return Some(d.id);
            }
            let key = (d.hops, d.priority, d.id);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, id)| id)
    }

    /// Tries a queued request again when a donor may have appeared.
    pub fn resolve_pending(&mut self, port: &mut dyn SyncPort) {
        if self.pending.is_some() && self.enabled && !self.ok && self.choose_donor(port).is_some() {
            self.try_donors(port);
        }
    }

    /// Donor side (docs/behaviour.md §9.7): collects the capability's chunks and sends them in
    /// SYNC packets packed like OpenSIPS (a new packet starts when the current length plus
    /// the previous chunk's data size exceeds `sync_packet_size`), then SYNC_END with the
    /// count.
    pub fn send_sync_reply(&mut self, port: &mut dyn SyncPort, requester: NodeId) {
        self.handler
            .handle_event(CapabilityEvent::SyncRequested { requester });
        let name = self.name.clone();
        let data_version = self.handler.data_version();
        let fixed = sync_overhead(name.len());
        let limit = port.settings().packet_size;
        let mut packets: Vec<Sync> = Vec::new();
        let mut current = Sync {
            capability: name.clone(),
            data_version,
            chunks: Vec::new(),
        };
        let mut current_len = fixed;
        let mut count: u32 = 0;
        let mut too_large = 0u64;
        self.handler
            .produce_sync_chunks(requester, &mut |chunk: &[u8]| {
                let wire = SYNC_CHUNK_HEADER_LEN + chunk.len();
                if fixed + wire + TRAILER_LEN > MAX_EMIT_LEN {
                    // Cannot be encoded in any packet: not sent (docs/cachedb-local.md quirk #7).
                    too_large += 1;
                    return;
                }
                let previous = current.chunks.last().map_or(0, Vec::len);
                let over_soft = !current.chunks.is_empty() && current_len + previous > limit;
                let over_hard = current_len + wire + TRAILER_LEN > MAX_EMIT_LEN;
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
            self.report(port.now().unix_time, text);
        }
        for p in packets {
            port.send(requester, RoutedBody::Sync(p));
        }
        let end = SyncEnd {
            capability: name,
            chunk_count: count,
        };
        port.send(requester, RoutedBody::SyncEnd(end));
    }

    /// Whether a SYNC/SYNC_END from `donor` belongs to a sync we run or asked for.
    fn solicited(&self, port: &dyn SyncPort, donor: NodeId) -> bool {
        !port.settings().options.ignore_unsolicited
            || self.in_progress.is_some_and(|p| p.donor == donor)
            || self.requested.is_some_and(|r| r.donor == donor)
    }

    /// Marks the sync from `donor` in progress (first packet: status −1, report).
    fn start_receiving(&mut self, port: &dyn SyncPort, donor: NodeId) {
        let now = port.now();
        if self.ok {
            return;
        }
        match &mut self.in_progress {
            Some(p) => p.last_packet = now.instant,
            None => {
                self.requested = None;
                self.pending = None;
                self.in_progress = Some(InProgress {
                    donor,
                    last_packet: now.instant,
                    received: 0,
                    expected: None,
                });
                self.status = SyncStatus::SyncInProgress;
                self.report(now.unix_time, format!("Sync started from node [{donor}]"));
                self.handler
                    .handle_event(CapabilityEvent::SyncStarted { donor });
            }
        }
    }

    /// SYNC received (docs/behaviour.md §9.8); the capability is enabled (the caller checked).
    ///
    /// # Errors
    /// [`DropReason::UnsolicitedSync`]: not from the donor we asked; nothing changed.
    pub fn on_sync(
        &mut self,
        port: &mut dyn SyncPort,
        donor: NodeId,
        sync: Sync,
    ) -> Result<(), DropReason> {
        if !self.solicited(port, donor) {
            return Err(DropReason::UnsolicitedSync);
        }
        self.start_receiving(port, donor);
        let skip = port.settings().options.skip_rejected_chunks;
        let mut iterated: u32 = 0;
        let mut rejected = Vec::new();
        for chunk in &sync.chunks {
            iterated += 1;
            if let Err(reason) = self
                .handler
                .apply_sync_chunk(donor, sync.data_version, chunk)
            {
                self.skipped_chunks += 1;
                rejected.push(reason.0);
                if !skip {
                    break;
                }
            }
        }
        self.chunks_received_total += u64::from(iterated);
        let unix = port.now().unix_time;
        for reason in rejected.iter().take(3) {
            let text = format!("Sync chunk from node [{donor}] rejected: {reason}");
            self.report(unix, text);
        }
        if let Some(p) = &mut self.in_progress {
            p.received = p.received.saturating_add(iterated);
            if p.expected.is_some_and(|e| p.received >= e) {
                self.complete_sync(port);
            }
        }
        Ok(())
    }

    /// SYNC_END received; the capability is enabled (the caller checked).
    ///
    /// # Errors
    /// [`DropReason::UnsolicitedSync`]: not from the donor we asked; nothing changed.
    pub fn on_sync_end(
        &mut self,
        port: &mut dyn SyncPort,
        donor: NodeId,
        end: SyncEnd,
    ) -> Result<(), DropReason> {
        if !self.solicited(port, donor) {
            return Err(DropReason::UnsolicitedSync);
        }
        // A reply with no chunk at all never sent a SYNC packet.
        self.start_receiving(port, donor);
        if let Some(p) = &mut self.in_progress {
            p.expected = Some(end.chunk_count);
            if p.received >= end.chunk_count {
                self.complete_sync(port);
            }
        }
        Ok(())
    }

    /// Completion: buffered packets applied in order, status 1, SYNC_DONE, state 1
    /// advertised.
    fn complete_sync(&mut self, port: &mut dyn SyncPort) {
        let now = port.now();
        let Some(p) = self.in_progress.take() else {
            return;
        };
        self.status = SyncStatus::Synced;
        self.tried.clear();
        self.report(
            now.unix_time,
            format!("Sync completed, received [{}] chunks", p.received),
        );
        if self.skipped_chunks > 0 {
            let text = format!(
                "Sync skipped [{}] chunks the capability rejected",
                self.skipped_chunks
            );
            self.report(now.unix_time, text);
            self.skipped_chunks = 0;
        }
        self.flush_buffer();
        self.handler
            .handle_event(CapabilityEvent::SyncDone { donor: p.donor });
        self.set_ok(port, true);
    }

    /// Applies the held-back live packets in arrival order.
    pub fn flush_buffer(&mut self) {
        while let Some((source, version, packet)) = self.buffer.pop_front() {
            if self.handler.apply_packet(source, version, &packet).is_err() {
                self.rejected_packets += 1;
            }
        }
    }

    /// A live module packet for this (enabled) capability: applied, or held back while a
    /// sync runs.
    pub fn on_module_packet(
        &mut self,
        port: &mut dyn SyncPort,
        source: NodeId,
        version: i16,
        packet: ModulePacket,
    ) {
        let options = port.settings().options;
        let max = options.max_buffered_packets;
        let holding =
            self.in_progress.is_some() || (options.buffer_from_request && self.requested.is_some());
        if !holding {
            if self.handler.apply_packet(source, version, &packet).is_err() {
                self.rejected_packets += 1;
            }
            return;
        }
        self.buffer.push_back((source, version, packet));
        if self.buffer.len() > max {
            let text = format!("Sync abandoned: more than [{max}] live packets held back");
            self.report(port.now().unix_time, text);
            self.abort_sync(port, false);
        }
    }

    /// Abandons the running or requested sync. With retries on, asks another donor (the
    /// held packets stay held if one is found); otherwise the capability stays not synced.
    fn abort_sync(&mut self, port: &mut dyn SyncPort, timed_out: bool) {
        let donor = self.sync_donor();
        if let Some(p) = self.in_progress.take() {
            self.status = SyncStatus::NotSynced;
            if timed_out {
                let text = format!("Sync timed out, received [{}] chunks", p.received);
                self.report(port.now().unix_time, text);
            }
        }
        self.requested = None;
        if let Some(donor) = donor {
            self.handler
                .handle_event(CapabilityEvent::SyncAborted { donor });
        }
        if port.settings().options.retry && self.enabled {
            if let RequestSync::Requested(_) = self.try_donors(port) {
                return;
            }
        } else {
            self.status = SyncStatus::NotSynced;
        }
        self.flush_buffer();
    }

    /// The 500 ms sync check of this capability (docs/behaviour.md §9.6, §9.8): seed fallback,
    /// sync timeout, and the first-packet timeout. The caller runs it only while the local
    /// node is enabled.
    pub fn sync_check(&mut self, port: &mut dyn SyncPort) {
        if !self.enabled {
            return;
        }
        let now = port.now();
        let settings = port.settings();
        if let Some(since) = self.pending
            && !self.ok
            && port.is_seed()
            && now.instant.since(since) >= settings.seed_fallback_ms
        {
            self.pending = None;
            self.status = SyncStatus::Synced;
            self.report(
                now.unix_time,
                "ERROR: Sync request aborted! (no donor found in due time) => fallback to synced state"
                    .into(),
            );
            self.set_ok(port, true);
            return;
        }
        if self
            .in_progress
            .is_some_and(|p| now.instant.since(p.last_packet) >= settings.timeout_ms)
        {
            self.abort_sync(port, true);
        } else if settings.options.first_packet_timeout
            && let Some(r) = self.requested
            && now.instant.since(r.at) >= settings.timeout_ms
        {
            let text = format!("Sync request to node [{}] got no answer in time", r.donor);
            self.report(now.unix_time, text);
            self.abort_sync(port, false);
        }
    }

    /// Tells the capability's handler that `node` became reachable (`up`) or not.
    pub fn notify_node(&mut self, node: NodeId, up: bool) {
        let event = if up {
            CapabilityEvent::NodeUp(node)
        } else {
            CapabilityEvent::NodeDown(node)
        };
        self.handler.handle_event(event);
    }

    /// `node` became unreachable (after every capability heard of it, see
    /// [`Self::notify_node`]): a sync from it is abandoned, and retried elsewhere with
    /// `retry`.
    pub fn on_donor_lost(&mut self, port: &mut dyn SyncPort, node: NodeId) {
        if port.settings().options.retry && self.sync_donor() == Some(node) {
            let text = format!("Sync donor node [{node}] became unreachable");
            self.report(port.now().unix_time, text);
            self.abort_sync(port, false);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The sync rules of docs/behaviour.md §9.5–§9.8 on one capability: a recording port stands
    //! for the cluster and a shared log stands for the capability's data (no node, no
    //! network).

    use alloc::boxed::Box;
    use alloc::string::{String, ToString};
    use alloc::sync::Arc;
    use alloc::vec;
    use std::sync::Mutex;

    use super::*;
    use crate::capability::{Capability, Rejected};
    use crate::time::Instant;

    const CAP: &str = "kv";

    fn n(id: u32) -> NodeId {
        NodeId::new(id).unwrap()
    }

    /// The capability's data: records applied, chunks offered as donor, events seen.
    #[derive(Default)]
    struct Data {
        records: Vec<Vec<u8>>,
        serve: Vec<Vec<u8>>,
        events: Vec<CapabilityEvent>,
        reject: Vec<u8>,
    }

    struct Store(Arc<Mutex<Data>>);

    impl Capability for Store {
        fn produce_sync_chunks(&mut self, _requester: NodeId, chunk: &mut dyn FnMut(&[u8])) {
            for c in self.0.lock().unwrap().serve.clone() {
                chunk(&c);
            }
        }
        fn apply_sync_chunk(&mut self, _: NodeId, _: i32, chunk: &[u8]) -> Result<(), Rejected> {
            let mut d = self.0.lock().unwrap();
            if d.reject.as_slice() == chunk {
                return Err(Rejected("bad".into()));
            }
            d.records.push(chunk.to_vec());
            Ok(())
        }
        fn apply_packet(&mut self, _: NodeId, _: i16, p: &ModulePacket) -> Result<(), Rejected> {
            self.0.lock().unwrap().records.push(p.payload.clone());
            Ok(())
        }
        fn handle_event(&mut self, event: CapabilityEvent) {
            self.0.lock().unwrap().events.push(event);
        }
    }

    /// The cluster around the capability, as plain values.
    struct World {
        now: u64,
        seed: bool,
        settings: SyncSettings,
        donors: Vec<DonorCandidate>,
        /// Sends to these fail (no route).
        unroutable: Vec<NodeId>,
        sent: Vec<(NodeId, RoutedBody)>,
        adverts: Vec<bool>,
    }

    impl World {
        fn new(donors: &[(u32, u32, i32)]) -> Self {
            World {
                now: 0,
                seed: false,
                settings: SyncSettings {
                    options: SyncOptions::default(),
                    packet_size: 32_768,
                    seed_fallback_ms: 5_000,
                    timeout_ms: 15_000,
                },
                donors: donors
                    .iter()
                    .map(|&(id, hops, priority)| DonorCandidate {
                        id: n(id),
                        hops,
                        priority,
                    })
                    .collect(),
                unroutable: Vec::new(),
                sent: Vec::new(),
                adverts: Vec::new(),
            }
        }

        fn kinds(&mut self) -> Vec<(NodeId, &'static str)> {
            core::mem::take(&mut self.sent)
                .into_iter()
                .map(|(to, b)| (to, b.type_name()))
                .collect()
        }
    }

    impl SyncPort for World {
        fn now(&self) -> Now {
            Now {
                instant: Instant::from_millis(self.now),
                unix_time: 1_700_000_000,
            }
        }
        fn settings(&self) -> SyncSettings {
            self.settings
        }
        fn is_seed(&self) -> bool {
            self.seed
        }
        fn donors(&mut self, capability: &str, _: NodeMatch) -> Vec<DonorCandidate> {
            assert_eq!(capability, CAP);
            self.donors.clone()
        }
        fn send(&mut self, to: NodeId, body: RoutedBody) -> bool {
            if self.unroutable.contains(&to) {
                return false;
            }
            self.sent.push((to, body));
            true
        }
        fn advertise(&mut self, capability: &str, ok: bool) {
            assert_eq!(capability, CAP);
            self.adverts.push(ok);
        }
    }

    fn capability(startup_sync: bool) -> (LocalCapability, Arc<Mutex<Data>>) {
        let data = Arc::new(Mutex::new(Data::default()));
        let cap = LocalCapability::new(
            CAP,
            startup_sync,
            NodeMatch::Any,
            Box::new(Store(data.clone())),
        );
        (cap, data)
    }

    fn texts(cap: &LocalCapability) -> Vec<String> {
        cap.reports().iter().map(|r| r.text.clone()).collect()
    }

    fn sync_of(chunks: &[&[u8]]) -> Sync {
        Sync {
            capability: CAP.into(),
            data_version: 1,
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        }
    }

    fn end(count: u32) -> SyncEnd {
        SyncEnd {
            capability: CAP.into(),
            chunk_count: count,
        }
    }

    fn live(payload: &[u8]) -> ModulePacket {
        ModulePacket {
            capability: CAP.into(),
            packet_type: 1,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn the_closest_donor_is_asked_then_priority_then_id() {
        // (id, hops, priority): 2 is two hops away; 3 and 4 are direct, 4 has the better
        // priority.
        let mut w = World::new(&[(2, 2, 1), (3, 1, 50), (4, 1, 10)]);
        let (mut cap, _) = capability(true);
        assert_eq!(cap.request_sync(&mut w), RequestSync::Requested(n(4)));
        assert_eq!(w.kinds(), [(n(4), "SYNC_REQ")]);
        assert_eq!(cap.status(), SyncStatus::SyncPending);
        assert_eq!(texts(&cap), ["Sync requested from node [4]"]);
    }

    #[test]
    fn without_best_donor_the_first_candidate_in_list_order_is_asked() {
        let mut w = World::new(&[(2, 2, 1), (3, 1, 50)]);
        w.settings.options.best_donor = false;
        let (mut cap, _) = capability(true);
        assert_eq!(cap.request_sync(&mut w), RequestSync::Requested(n(2)));
    }

    #[test]
    fn a_request_without_donor_is_queued_and_sent_when_one_appears() {
        let mut w = World::new(&[]);
        let (mut cap, _) = capability(true);
        assert_eq!(cap.request_sync(&mut w), RequestSync::Queued);
        assert_eq!(cap.request_sync(&mut w), RequestSync::AlreadyPending);
        assert_eq!(
            texts(&cap),
            ["Sync request postponed! (no donor available)"]
        );
        w.donors = World::new(&[(3, 1, 50)]).donors;
        cap.resolve_pending(&mut w);
        assert_eq!(w.kinds(), [(n(3), "SYNC_REQ")]);
        assert_eq!(cap.sync_donor(), Some(n(3)));
        assert_eq!(cap.request_sync(&mut w), RequestSync::InProgress);
    }

    #[test]
    fn a_seed_falls_back_to_synced_after_the_interval() {
        let mut w = World::new(&[]);
        w.seed = true;
        let (mut cap, _) = capability(true);
        cap.request_sync(&mut w);
        w.now = 4_999;
        cap.sync_check(&mut w);
        assert!(!cap.is_ok());
        w.now = 5_000;
        cap.sync_check(&mut w);
        assert!(cap.is_ok());
        assert_eq!(cap.status(), SyncStatus::Synced);
        assert_eq!(w.adverts, [true]);
        assert_eq!(
            texts(&cap).last().map(String::as_str),
            Some(
                "ERROR: Sync request aborted! (no donor found in due time) => fallback to synced state"
            )
        );
    }

    #[test]
    fn a_non_seed_keeps_waiting_for_a_donor() {
        let mut w = World::new(&[]);
        let (mut cap, _) = capability(true);
        cap.request_sync(&mut w);
        w.now = 600_000;
        cap.sync_check(&mut w);
        assert_eq!(cap.status(), SyncStatus::SyncPending);
        assert!(w.adverts.is_empty());
    }

    #[test]
    fn chunks_are_counted_against_sync_end_and_completion_advertises_synced() {
        let mut w = World::new(&[(2, 1, 50)]);
        let (mut cap, data) = capability(true);
        cap.request_sync(&mut w);
        cap.on_sync(&mut w, n(2), sync_of(&[b"a", b"b"])).unwrap();
        assert_eq!(cap.status(), SyncStatus::SyncInProgress);
        cap.on_sync_end(&mut w, n(2), end(3)).unwrap();
        assert_eq!(
            cap.status(),
            SyncStatus::SyncInProgress,
            "one chunk still on the way"
        );
        cap.on_sync(&mut w, n(2), sync_of(&[b"c"])).unwrap();
        assert_eq!(cap.status(), SyncStatus::Synced);
        assert_eq!(w.adverts, [true]);
        assert_eq!(
            data.lock().unwrap().records,
            [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(
            texts(&cap),
            [
                "Sync requested from node [2]",
                "Sync started from node [2]",
                "Sync completed, received [3] chunks"
            ]
        );
        let events = data.lock().unwrap().events.clone();
        assert_eq!(
            events,
            [
                CapabilityEvent::SyncStarted { donor: n(2) },
                CapabilityEvent::SyncDone { donor: n(2) }
            ]
        );
    }

    #[test]
    fn sync_packets_from_a_node_we_did_not_ask_are_dropped() {
        let mut w = World::new(&[(2, 1, 50)]);
        let (mut cap, data) = capability(true);
        cap.request_sync(&mut w);
        assert_eq!(
            cap.on_sync(&mut w, n(3), sync_of(&[b"x"])),
            Err(DropReason::UnsolicitedSync)
        );
        assert_eq!(
            cap.on_sync_end(&mut w, n(3), end(0)),
            Err(DropReason::UnsolicitedSync)
        );
        assert!(data.lock().unwrap().records.is_empty());
    }

    #[test]
    fn live_packets_are_held_from_the_request_and_applied_after_the_sync_data() {
        let mut w = World::new(&[(2, 1, 50)]);
        let (mut cap, data) = capability(true);
        cap.request_sync(&mut w);
        cap.on_module_packet(&mut w, n(3), 1, live(b"live"));
        assert_eq!(cap.buffered_packets(), 1);
        cap.on_sync(&mut w, n(2), sync_of(&[b"old"])).unwrap();
        cap.on_sync_end(&mut w, n(2), end(1)).unwrap();
        assert_eq!(
            data.lock().unwrap().records,
            [b"old".to_vec(), b"live".to_vec()]
        );
        // Synced: live packets apply at once.
        cap.on_module_packet(&mut w, n(3), 1, live(b"next"));
        assert_eq!(data.lock().unwrap().records.len(), 3);
    }

    #[test]
    fn a_rejected_chunk_is_skipped_and_counted_and_the_sync_completes() {
        let mut w = World::new(&[(2, 1, 50)]);
        let (mut cap, data) = capability(true);
        data.lock().unwrap().reject = b"bad".to_vec();
        cap.request_sync(&mut w);
        cap.on_sync(&mut w, n(2), sync_of(&[b"a", b"bad", b"c"]))
            .unwrap();
        cap.on_sync_end(&mut w, n(2), end(3)).unwrap();
        assert_eq!(cap.status(), SyncStatus::Synced);
        assert_eq!(data.lock().unwrap().records, [b"a".to_vec(), b"c".to_vec()]);
        let t = texts(&cap);
        assert!(
            t.contains(&"Sync chunk from node [2] rejected: bad".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"Sync skipped [1] chunks the capability rejected".to_string()));
    }

    #[test]
    fn an_unanswered_request_moves_to_the_next_donor_after_the_timeout() {
        let mut w = World::new(&[(2, 1, 10), (3, 1, 50)]);
        let (mut cap, _) = capability(true);
        cap.request_sync(&mut w);
        w.kinds();
        w.now = 15_000;
        cap.sync_check(&mut w);
        assert_eq!(w.kinds(), [(n(3), "SYNC_REQ")]);
        assert!(texts(&cap).contains(&"Sync request to node [2] got no answer in time".into()));
    }

    #[test]
    fn a_sync_that_stalls_times_out_and_is_retried_elsewhere() {
        let mut w = World::new(&[(2, 1, 10), (3, 1, 50)]);
        let (mut cap, data) = capability(true);
        cap.request_sync(&mut w);
        cap.on_sync(&mut w, n(2), sync_of(&[b"a"])).unwrap();
        w.kinds();
        w.now = 15_000;
        cap.sync_check(&mut w);
        assert!(texts(&cap).contains(&"Sync timed out, received [1] chunks".into()));
        assert_eq!(w.kinds(), [(n(3), "SYNC_REQ")]);
        assert!(
            data.lock()
                .unwrap()
                .events
                .contains(&CapabilityEvent::SyncAborted { donor: n(2) })
        );
    }

    #[test]
    fn without_retry_a_stalled_sync_leaves_the_capability_not_synced() {
        let mut w = World::new(&[(2, 1, 10), (3, 1, 50)]);
        w.settings.options.retry = false;
        let (mut cap, _) = capability(true);
        cap.request_sync(&mut w);
        cap.on_sync(&mut w, n(2), sync_of(&[b"a"])).unwrap();
        w.kinds();
        w.now = 15_000;
        cap.sync_check(&mut w);
        assert_eq!(cap.status(), SyncStatus::NotSynced);
        assert!(w.kinds().is_empty());
    }

    #[test]
    fn losing_the_donor_mid_sync_asks_the_next_one() {
        let mut w = World::new(&[(2, 1, 10), (3, 1, 50)]);
        let (mut cap, _) = capability(true);
        cap.request_sync(&mut w);
        cap.on_sync(&mut w, n(2), sync_of(&[b"a"])).unwrap();
        w.kinds();
        cap.notify_node(n(2), false);
        cap.on_donor_lost(&mut w, n(2));
        assert!(texts(&cap).contains(&"Sync donor node [2] became unreachable".into()));
        assert_eq!(w.kinds(), [(n(3), "SYNC_REQ")]);
        // Another node going away changes nothing.
        cap.on_donor_lost(&mut w, n(9));
        assert!(w.kinds().is_empty());
    }

    #[test]
    fn the_donor_packs_chunks_into_packets_and_ends_with_the_count() {
        let mut w = World::new(&[]);
        w.settings.packet_size = 100;
        let (mut cap, data) = capability(false);
        data.lock().unwrap().serve = vec![vec![1; 60], vec![2; 60], vec![3; 60]];
        cap.send_sync_reply(&mut w, n(5));
        let sent = core::mem::take(&mut w.sent);
        let sizes: Vec<usize> = sent
            .iter()
            .filter_map(|(_, b)| match b {
                RoutedBody::Sync(s) => Some(s.chunks.len()),
                _ => None,
            })
            .collect();
        // The soft limit starts a new packet once length + previous chunk exceed it.
        assert_eq!(sizes.iter().sum::<usize>(), 3);
        assert!(sizes.len() > 1, "{sizes:?}");
        assert_eq!(
            sent.last().map(|(to, b)| (*to, b.clone())),
            Some((n(5), RoutedBody::SyncEnd(end(3))))
        );
        assert_eq!(
            data.lock().unwrap().events,
            [CapabilityEvent::SyncRequested { requester: n(5) }]
        );
    }

    #[test]
    fn a_record_too_large_for_any_packet_is_not_sent_and_is_reported() {
        let mut w = World::new(&[]);
        let (mut cap, data) = capability(false);
        data.lock().unwrap().serve = vec![vec![0; 70_000], vec![1; 10]];
        cap.send_sync_reply(&mut w, n(5));
        assert_eq!(
            w.sent.last().map(|(_, b)| b.clone()),
            Some(RoutedBody::SyncEnd(end(1)))
        );
        assert_eq!(
            texts(&cap),
            ["Sync to node [5]: [1] records too large to send"]
        );
    }

    #[test]
    fn disabling_clears_the_synced_state_and_releases_held_packets() {
        let mut w = World::new(&[(2, 1, 50)]);
        let (mut cap, data) = capability(false);
        assert!(cap.is_ok());
        cap.request_sync(&mut w);
        cap.on_module_packet(&mut w, n(3), 1, live(b"held"));
        w.adverts.clear();
        cap.set_enabled(&mut w, false);
        assert_eq!(cap.status(), SyncStatus::NotSynced);
        assert!(!cap.is_ok());
        assert_eq!(data.lock().unwrap().records, [b"held".to_vec()]);
        assert!(
            w.adverts.is_empty(),
            "already advertised not synced by the request"
        );
        assert_eq!(
            texts(&cap).last().map(String::as_str),
            Some("Capability disabled via MI, revert to not synced state")
        );
        assert_eq!(cap.request_sync(&mut w), RequestSync::Disabled);
    }
}
