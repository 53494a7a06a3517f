//! A deterministic key/value capability for the simulator, with the bookkeeping that lets a
//! run check the sync and live-update rules of docs/behaviour.md §9.7–§9.8 exactly.
//!
//! Every node that registers it ([`Sim::set_kv`](crate::sim::Sim::set_kv)) holds a map
//! `key → (version, writer, value)`. A *live update* is a [`KvUpdate`] with a globally unique
//! id (issued by the run's [`KvWorld`], so ids grow with issue time across all writers); it
//! travels as a module packet of capability [`KV_CAPABILITY`] through the real codec. A *sync
//! chunk* is one record. Both apply with "highest version wins", so every node that saw the
//! same updates ends with the same map whatever the order.
//!
//! The order and count of applications are checked separately, against what the network
//! really delivered:
//!
//! * the simulator tells the world of every live update that *arrived* at a node (decoded
//!   from the delivered bytes, destination = that node), and whether the node was able to
//!   take it (node and capability enabled, writer known and enabled);
//! * when the capability applies a live update it must be the next one that arrived: an
//!   update applied twice, applied without having arrived, or applied after a later one
//!   (held back and released out of order, or lost) is a violation;
//! * a donor records a digest (count and hash of the chunk sequence) of every snapshot it
//!   produces; when a sync completes (`SyncDone`), the chunks the requester applied since
//!   `SyncStarted` must be exactly one of the donor's snapshots for it: nothing missing,
//!   nothing twice, nothing from another sync.
//!
//! The state of a node's capability is recreated empty on every (re)start, as a process
//! restart loses it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clusterer_core::message::{ModulePacket, RoutedBody};
use clusterer_core::{Capability, CapabilityEvent, NodeId, NodeMatch, Rejected, SendStatus};
use clusterer_proto::wire::{self, PacketView, RoutedView};

use crate::sim::rng::mix;
use crate::sim::{KvSend, NodeStatus, Sim, SimError};

/// Name of the simulator's key/value capability.
pub const KV_CAPABILITY: &str = "sim-kv";

/// Module packet type of a live update.
pub const KV_PUT: i32 = 1;

/// BIN version of the capability's packets.
pub const KV_VERSION: i16 = 1;

/// Snapshots remembered per (donor, requester).
const SNAPSHOTS_KEPT: usize = 8;

/// Most log entries kept per node incarnation.
const MAX_LOG: usize = 1 << 20;

/// Most violation texts kept (all are counted).
const MAX_VIOLATIONS: usize = 64;

/// One live update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KvUpdate {
    /// Globally unique, increasing with issue time: the version it gives its key.
    pub id: u64,
    /// The node that issued it.
    pub writer: NodeId,
    /// The key.
    pub key: u64,
    /// The value (derived from the id).
    pub value: u64,
}

/// Bytes of an encoded [`KvUpdate`] (and of a sync chunk).
const RECORD_LEN: usize = 8 + 4 + 8 + 8;

impl KvUpdate {
    /// The wire form: id, writer, key, value, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_LEN);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.writer.get().to_be_bytes());
        out.extend_from_slice(&self.key.to_be_bytes());
        out.extend_from_slice(&self.value.to_be_bytes());
        out
    }

    /// Parses [`KvUpdate::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<KvUpdate> {
        if bytes.len() != RECORD_LEN {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[8..12]);
        Some(KvUpdate {
            id: u64_at(0),
            writer: NodeId::new(u32::from_be_bytes(w))?,
            key: u64_at(12),
            value: u64_at(20),
        })
    }

    /// The module packet carrying it.
    pub fn packet(&self) -> ModulePacket {
        ModulePacket {
            capability: KV_CAPABILITY.into(),
            packet_type: KV_PUT,
            payload: self.encode(),
        }
    }

    /// The record it writes.
    pub fn record(&self) -> KvRecord {
        KvRecord {
            version: self.id,
            writer: self.writer,
            value: self.value,
        }
    }
}

/// One stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvRecord {
    /// Id of the update that wrote it.
    pub version: u64,
    /// Its writer.
    pub writer: NodeId,
    /// Its value.
    pub value: u64,
}

/// What a node's capability did, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvLogEntry {
    /// `SyncStarted` from this donor.
    SyncStarted(NodeId),
    /// A sync chunk applied (the record as an update: its version is the id).
    Chunk(KvUpdate),
    /// A live update applied.
    Live(KvUpdate),
    /// `SyncDone` from this donor.
    SyncDone(NodeId),
    /// `SyncAborted` with this donor.
    SyncAborted(NodeId),
    /// This node produced a snapshot for a requester (`SyncRequested`).
    Produced {
        /// The requester.
        requester: NodeId,
        /// Chunks produced.
        chunks: u64,
    },
}

/// Count and hash of a multiset of chunks. Order does not count: SYNC packets relayed over
/// two paths (a route that changed during the sync) may arrive in another order, which the
/// protocol allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    /// Chunks.
    pub count: u64,
    /// Sum of the chunks' hashes.
    pub hash: u64,
}

impl Digest {
    fn add(&mut self, chunk: &[u8]) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in chunk {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.count += 1;
        self.hash = self.hash.wrapping_add(mix(h));
    }
}

/// A node's capability state (one incarnation).
#[derive(Clone, Debug)]
pub struct KvState {
    node: NodeId,
    /// The data.
    pub map: BTreeMap<u64, KvRecord>,
    /// Ids of the live updates applied through the core, in no particular order.
    pub live_applied: BTreeSet<u64>,
    /// Everything it did, in order (capped at 2^20 entries).
    pub log: Vec<KvLogEntry>,
    /// Syncs completed (`SyncDone`) with their donor and chunk count.
    pub completed_syncs: Vec<(NodeId, u64)>,
    collecting: Option<(NodeId, Digest)>,
}

impl KvState {
    fn new(node: NodeId) -> Self {
        KvState {
            node,
            map: BTreeMap::new(),
            live_applied: BTreeSet::new(),
            log: Vec::new(),
            completed_syncs: Vec::new(),
            collecting: None,
        }
    }

    /// The node it belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    fn log(&mut self, e: KvLogEntry) {
        if self.log.len() < MAX_LOG {
            self.log.push(e);
        }
    }

    /// Stores `r` under `key` unless a newer version is stored. Returns `false` when the
    /// same version with another content is stored (an id reused: impossible).
    fn store(&mut self, key: u64, r: KvRecord) -> bool {
        match self.map.get(&key) {
            Some(old) if old.version > r.version => true,
            Some(old) if old.version == r.version => *old == r,
            _ => {
                self.map.insert(key, r);
                true
            }
        }
    }
}

/// A live update that arrived at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Arrival {
    id: u64,
    writer: NodeId,
    /// The node that handed it over (the writer or a relay).
    hop: NodeId,
    /// The node could take it when it arrived (and, once `finalized`, after the input too).
    must: bool,
    finalized: bool,
}

/// Counters of the capability traffic of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Live updates issued.
    pub updates: u64,
    /// Live updates that arrived at their destination.
    pub arrivals: u64,
    /// Live updates applied through the core.
    pub live_applied: u64,
    /// Sync chunks applied.
    pub chunks_applied: u64,
    /// Snapshots produced by donors.
    pub snapshots: u64,
    /// Syncs completed and checked against the donor's snapshot.
    pub syncs_checked: u64,
}

/// The run-wide bookkeeping shared by every node's capability (see the module docs).
#[derive(Debug, Default)]
pub struct KvWorld {
    next_id: u64,
    snapshots: BTreeMap<(NodeId, NodeId), VecDeque<Digest>>,
    arrivals: BTreeMap<NodeId, VecDeque<Arrival>>,
    /// Arrivals skipped by an application whose `must` was not final yet.
    pending_skips: Vec<(NodeId, Arrival)>,
    violations: Vec<String>,
    violation_count: u64,
    /// Snapshots produced per (donor, requester) since the requester last completed a sync
    /// (or started).
    produced_since_done: BTreeMap<(NodeId, NodeId), u32>,
    /// Known limitations met (see [`SYNC_REPLIES_MIXED`]).
    limitations: Vec<String>,
    stats: KvStats,
}

/// A known limitation of the sync protocol: SYNC and SYNC_END carry no request id, so when
/// a requester asked the same donor twice (its first request was abandoned — the donor
/// flapped, the first packet was late — and retried) both answers may arrive, interleaved
/// over changing routes, and the requester counts chunks of both toward one SYNC_END: it
/// can complete with records twice and others missing.
pub const SYNC_REPLIES_MIXED: &str = "sync-replies-mixed";

/// A handle on the world, shared by the simulator and the capabilities.
pub type SharedKvWorld = Arc<Mutex<KvWorld>>;

/// A handle on one node's state.
pub type SharedKvState = Arc<Mutex<KvState>>;

/// Locks a mutex, ignoring poisoning (a panic elsewhere is reported by itself).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KvWorld {
    /// Issues a new update of `key` by `writer`.
    pub fn issue(&mut self, writer: NodeId, key: u64) -> KvUpdate {
        self.next_id += 1;
        self.stats.updates += 1;
        let id = self.next_id;
        KvUpdate {
            id,
            writer,
            key,
            value: mix(id ^ 0x5641_4c55_4500_0000),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> KvStats {
        self.stats
    }

    /// Takes the violations found since the last call (text kept for the first 64).
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// Violations found in total.
    pub fn violation_count(&self) -> u64 {
        self.violation_count
    }

    /// Takes the known limitations met since the last call.
    pub fn take_limitations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.limitations)
    }

    /// Whether violations wait to be taken.
    pub fn has_violations(&self) -> bool {
        !self.violations.is_empty()
    }

    fn violation(&mut self, text: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(text);
        }
    }

    /// A node (re)started or crashed: what arrived at its previous incarnation is void.
    pub(crate) fn reset_node(&mut self, node: NodeId) {
        self.arrivals.remove(&node);
        self.produced_since_done.retain(|(_, r), _| *r != node);
        self.pending_skips.retain(|(n, _)| *n != node);
    }

    /// Live update `id` from `writer` arrived at `node`; `can_take` says whether the node
    /// could take it right before the input was handled.
    pub(crate) fn arrive(
        &mut self,
        node: NodeId,
        id: u64,
        writer: NodeId,
        hop: NodeId,
        can_take: bool,
    ) {
        self.stats.arrivals += 1;
        self.arrivals.entry(node).or_default().push_back(Arrival {
            id,
            writer,
            hop,
            must: can_take,
            finalized: false,
        });
    }

    /// The input that delivered updates to `node` was handled: `can_take(writer, hop)` says
    /// whether the node can still take updates from that writer handed over by that hop.
    /// An update is owed to the node when it could take it both before and after.
    pub(crate) fn finalize(&mut self, node: NodeId, can_take: impl Fn(NodeId, NodeId) -> bool) {
        if let Some(q) = self.arrivals.get_mut(&node) {
            for a in q.iter_mut().rev() {
                if a.finalized {
                    break;
                }
                a.finalized = true;
                a.must = a.must && can_take(a.writer, a.hop);
            }
        }
        let skips: Vec<(NodeId, Arrival)> = {
            let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_skips)
                .into_iter()
                .partition(|(n, _)| *n == node);
            self.pending_skips = others;
            mine
        };
        for (n, a) in skips {
            if a.must && can_take(a.writer, a.hop) {
                self.violation(format!(
                    "n{n}: live update {} from n{} arrived and was not applied before a later one (lost or reordered)",
                    a.id, a.writer
                ));
            }
        }
    }

    /// Live updates that arrived at `node`, were owed to it, and were not applied yet.
    pub fn unapplied(&self, node: NodeId) -> Vec<u64> {
        self.arrivals
            .get(&node)
            .map(|q| q.iter().filter(|a| a.must).map(|a| a.id).collect())
            .unwrap_or_default()
    }

    fn applied_live(&mut self, node: NodeId, u: &KvUpdate) {
        self.stats.live_applied += 1;
        let q = self.arrivals.entry(node).or_default();
        let mut skipped = Vec::new();
        let mut found = false;
        while let Some(a) = q.pop_front() {
            if a.id == u.id {
                found = true;
                break;
            }
            skipped.push(a);
        }
        if !found {
            self.violation(format!(
                "n{node}: applied live update {} from n{} that is not the next one to have arrived (applied twice, or out of order)",
                u.id, u.writer
            ));
        }
        for a in skipped {
            if !a.finalized {
                self.pending_skips.push((node, a));
            } else if a.must {
                self.violation(format!(
                    "n{node}: live update {} from n{} arrived and was not applied before update {} (lost or reordered)",
                    a.id, a.writer, u.id
                ));
            }
        }
    }

    fn produced(&mut self, donor: NodeId, requester: NodeId, digest: Digest) {
        self.stats.snapshots += 1;
        *self
            .produced_since_done
            .entry((donor, requester))
            .or_default() += 1;
        let q = self.snapshots.entry((donor, requester)).or_default();
        if q.len() == SNAPSHOTS_KEPT {
            q.pop_front();
        }
        q.push_back(digest);
    }

    fn sync_done(&mut self, requester: NodeId, donor: NodeId, got: Option<(NodeId, Digest)>) {
        self.stats.syncs_checked += 1;
        let Some((from, digest)) = got else {
            self.violation(format!(
                "n{requester}: sync from n{donor} completed without having started"
            ));
            return;
        };
        if from != donor {
            self.violation(format!(
                "n{requester}: sync completed from n{donor} but its data came from n{from}"
            ));
            return;
        }
        let produced = self
            .snapshots
            .get(&(donor, requester))
            .is_some_and(|q| q.contains(&digest));
        let answers: u32 = self
            .produced_since_done
            .iter()
            .filter(|((_, r), _)| *r == requester)
            .map(|(_, n)| *n)
            .sum();
        self.produced_since_done.retain(|(_, r), _| *r != requester);
        if !produced && answers >= 2 {
            self.limitations.push(format!(
                "n{requester}: sync from n{donor} completed with {} chunks that are not one snapshot; {answers} answers were produced for it since its last sync",
                digest.count
            ));
        } else if !produced {
            let known: Vec<u64> = self
                .snapshots
                .get(&(donor, requester))
                .map(|q| q.iter().map(|d| d.count).collect())
                .unwrap_or_default();
            self.violation(format!(
                "n{requester}: sync from n{donor} completed with {} chunks that are not a snapshot n{donor} produced for it (its snapshots had {known:?} chunks)",
                digest.count
            ));
        }
    }
}

/// The capability registered on a node (one per incarnation).
#[derive(Debug)]
pub struct SimKv {
    state: SharedKvState,
    world: SharedKvWorld,
}

impl SimKv {
    /// A fresh, empty capability for `node`, and the handle on its state.
    pub fn new(node: NodeId, world: SharedKvWorld) -> (SimKv, SharedKvState) {
        let state = Arc::new(Mutex::new(KvState::new(node)));
        (
            SimKv {
                state: Arc::clone(&state),
                world,
            },
            state,
        )
    }

    /// Applies an update the node itself issued (the application writes locally, then
    /// replicates).
    pub fn apply_local(state: &SharedKvState, u: &KvUpdate) {
        let mut s = lock(state);
        s.store(u.key, u.record());
    }
}

impl Capability for SimKv {
    fn produce_sync_chunks(&mut self, requester: NodeId, chunk: &mut dyn FnMut(&[u8])) {
        let mut digest = Digest::default();
        let node;
        {
            let mut s = lock(&self.state);
            node = s.node;
            for (&key, r) in &s.map {
                let bytes = KvUpdate {
                    id: r.version,
                    writer: r.writer,
                    key,
                    value: r.value,
                }
                .encode();
                digest.add(&bytes);
                chunk(&bytes);
            }
            s.log(KvLogEntry::Produced {
                requester,
                chunks: digest.count,
            });
        }
        lock(&self.world).produced(node, requester, digest);
    }

    fn apply_sync_chunk(
        &mut self,
        donor: NodeId,
        _data_version: i32,
        chunk: &[u8],
    ) -> Result<(), Rejected> {
        let u = KvUpdate::decode(chunk).ok_or_else(|| Rejected("bad sim-kv chunk".into()))?;
        let mut s = lock(&self.state);
        let node = s.node;
        let mut problem = None;
        match &mut s.collecting {
            Some((from, digest)) if *from == donor => digest.add(chunk),
            other => {
                problem = Some(format!(
                    "n{node}: sync chunk from n{donor} outside a sync from it (collecting: {:?})",
                    other.map(|(f, _)| f)
                ));
            }
        }
        if !s.store(u.key, u.record()) {
            problem = Some(format!("n{node}: chunk version {} reused", u.id));
        }
        s.log(KvLogEntry::Chunk(u));
        drop(s);
        let mut w = lock(&self.world);
        w.stats.chunks_applied += 1;
        if let Some(p) = problem {
            w.violation(p);
        }
        Ok(())
    }

    fn apply_packet(
        &mut self,
        _source: NodeId,
        _version: i16,
        packet: &ModulePacket,
    ) -> Result<(), Rejected> {
        let Some(u) = (packet.packet_type == KV_PUT)
            .then(|| KvUpdate::decode(&packet.payload))
            .flatten()
        else {
            return Err(Rejected("bad sim-kv packet".into()));
        };
        let mut s = lock(&self.state);
        let node = s.node;
        let mut problems = Vec::new();
        if !s.live_applied.insert(u.id) {
            problems.push(format!(
                "n{node}: live update {} from n{} applied twice",
                u.id, u.writer
            ));
        }
        if !s.store(u.key, u.record()) {
            problems.push(format!("n{node}: update version {} reused", u.id));
        }
        s.log(KvLogEntry::Live(u));
        drop(s);
        let mut w = lock(&self.world);
        w.applied_live(node, &u);
        for p in problems {
            w.violation(p);
        }
        Ok(())
    }

    fn handle_event(&mut self, event: CapabilityEvent) {
        let mut s = lock(&self.state);
        match event {
            CapabilityEvent::SyncStarted { donor } => {
                s.collecting = Some((donor, Digest::default()));
                s.log(KvLogEntry::SyncStarted(donor));
            }
            CapabilityEvent::SyncDone { donor } => {
                let got = s.collecting.take();
                s.log(KvLogEntry::SyncDone(donor));
                s.completed_syncs
                    .push((donor, got.map_or(0, |(_, d)| d.count)));
                let node = s.node;
                drop(s);
                lock(&self.world).sync_done(node, donor, got);
            }
            CapabilityEvent::SyncAborted { donor } => {
                s.collecting = None;
                s.log(KvLogEntry::SyncAborted(donor));
            }
            CapabilityEvent::NodeUp(_)
            | CapabilityEvent::NodeDown(_)
            | CapabilityEvent::SyncRequested { .. } => {}
        }
    }
}

impl Sim {
    /// Makes node `id` register the key/value capability now (if it runs) and at every
    /// later start, with a fresh empty state each time.
    ///
    /// # Errors
    /// [`SimError::UnknownNode`].
    pub fn set_kv(&mut self, id: NodeId, spec: crate::sim::KvSpec) -> Result<(), SimError> {
        let i = self.slot(id)?;
        self.nodes[i].kv = Some(spec);
        if self.nodes[i].endpoint.is_some() && self.nodes[i].kv_state.is_none() {
            self.register_kv(i);
            self.after_input(i);
        }
        Ok(())
    }

    /// Registers the capability on a freshly started node.
    pub(crate) fn register_kv(&mut self, i: usize) {
        let Some(spec) = self.nodes[i].kv else {
            return;
        };
        let id = self.nodes[i].id;
        let now = self.node_now(i);
        let (kv, state) = SimKv::new(id, Arc::clone(&self.kv_world));
        let Some(ep) = self.nodes[i].endpoint.as_mut() else {
            return;
        };
        let r = ep.register_capability(
            now,
            spec.cluster,
            KV_CAPABILITY,
            spec.startup_sync,
            spec.condition,
            Box::new(kv),
        );
        match r {
            Ok(()) => self.nodes[i].kv_state = Some(state),
            Err(e) => self.violation(format!("n{id}: registering {KV_CAPABILITY}: {e}")),
        }
    }

    /// The run-wide capability bookkeeping.
    pub fn kv_world(&self) -> &SharedKvWorld {
        &self.kv_world
    }

    /// A node's current capability state (`None` when not registered or not running).
    pub fn kv_state(&self, id: NodeId) -> Option<SharedKvState> {
        let &i = self.index.get(&id)?;
        self.nodes[i].kv_state.clone()
    }

    /// A copy of a node's data.
    pub fn kv_map(&self, id: NodeId) -> Option<BTreeMap<u64, KvRecord>> {
        self.kv_state(id).map(|s| lock(&s).map.clone())
    }

    /// Gives node `id` `count` records (keys `base..base + count`) as if it had written them
    /// before: they are in its data, nothing is sent.
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] without a capability state.
    pub fn kv_preload(&mut self, id: NodeId, base: u64, count: u64) -> Result<(), SimError> {
        let state = self.kv_state(id).ok_or(SimError::WrongStatus {
            node: id,
            status: self.status(id).unwrap_or(NodeStatus::NotStarted),
        })?;
        let mut w = lock(&self.kv_world);
        let mut s = lock(&state);
        for key in base..base + count {
            let u = w.issue(id, key);
            s.store(key, u.record());
        }
        Ok(())
    }

    /// Node `writer` writes `key` (a new update, applied to its own data) and replicates it
    /// as a module packet. Returns the update and the send statuses (one per destination
    /// for [`KvSend::EachNode`] and [`KvSend::To`], one for the broadcast).
    ///
    /// # Errors
    /// As [`Sim::with_endpoint`]; [`SimError::WrongStatus`] without a capability state.
    pub fn kv_put(
        &mut self,
        writer: NodeId,
        key: u64,
        how: KvSend,
    ) -> Result<(KvUpdate, Vec<(NodeId, SendStatus)>), SimError> {
        let i = self.slot(writer)?;
        self.expect_status(i, &[NodeStatus::Running])?;
        let Some(state) = self.nodes[i].kv_state.clone() else {
            return Err(SimError::WrongStatus {
                node: writer,
                status: self.nodes[i].status,
            });
        };
        let spec = self.nodes[i].kv.map_or(crate::sim::CLUSTER, |s| s.cluster);
        let u = lock(&self.kv_world).issue(writer, key);
        SimKv::apply_local(&state, &u);
        let body = RoutedBody::Module(u.packet());
        let statuses = self.with_endpoint(writer, |ep, now| match how {
            KvSend::Broadcast => {
                let s = ep.broadcast_matching(now, spec, NodeMatch::Any, KV_VERSION, body);
                vec![(writer, s)]
            }
            KvSend::To(dest) => {
                vec![(
                    dest,
                    ep.send_to_with_version(now, spec, dest, KV_VERSION, body),
                )]
            }
            KvSend::EachNode => {
                let dests: Vec<NodeId> = ep
                    .node()
                    .cluster(spec)
                    .map(|c| c.nodes().iter().map(|n| n.id()).collect())
                    .unwrap_or_default();
                dests
                    .into_iter()
                    .map(|d| {
                        let s = ep.send_to_with_version(now, spec, d, KV_VERSION, body.clone());
                        (d, s)
                    })
                    .collect()
            }
        })?;
        self.note(format_args!(
            "command: n{writer} put key {key} = update {} ({how:?})",
            u.id
        ));
        Ok((u, statuses))
    }

    /// Whether node index `r` can take a live update from `writer`, handed over by `hop`,
    /// now: its cluster and capability are enabled, it knows `writer` as enabled, and `hop`
    /// is a member it knows (the source-IP check of docs/wire.md §9 drops packets relayed by a
    /// node it does not know).
    fn kv_can_take(&self, r: usize, writer: NodeId, hop: NodeId) -> bool {
        let Some(spec) = self.nodes[r].kv else {
            return false;
        };
        let Some(c) = self.nodes[r]
            .endpoint
            .as_ref()
            .and_then(|e| e.node().cluster(spec.cluster))
        else {
            return false;
        };
        c.local().enabled()
            && c.capability(KV_CAPABILITY).is_some_and(|cap| cap.enabled())
            && c.node(writer).is_some_and(|n| n.enabled())
            && c.node(hop).is_some()
    }

    /// Records a live update among the delivered bytes for node index `r`. Returns whether
    /// the packet was one.
    pub(crate) fn kv_arrival(&mut self, r: usize, hop: NodeId, bytes: &[u8]) -> bool {
        let rid = self.nodes[r].id;
        let is_kv =
            wire::parse_header(bytes).is_ok_and(|h| h.capability == KV_CAPABILITY.as_bytes());
        if !is_kv {
            return false;
        }
        let Ok(PacketView::Routed {
            trailer,
            body: RoutedView::Module(m),
            ..
        }) = wire::parse_view(bytes)
        else {
            return false;
        };
        if trailer.destination != rid || m.capability != KV_CAPABILITY {
            return false;
        }
        let Some(u) = KvUpdate::decode(m.payload) else {
            return false;
        };
        let can_take = self.kv_can_take(r, trailer.source, hop);
        lock(&self.kv_world).arrive(rid, u.id, trailer.source, hop, can_take);
        true
    }

    /// After the input that delivered live updates to node index `r`.
    pub(crate) fn kv_finalize(&mut self, r: usize) {
        let rid = self.nodes[r].id;
        lock(&self.kv_world).finalize(rid, |w, hop| self.kv_can_take(r, w, hop));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn updates_round_trip_and_higher_versions_win() {
        let mut w = KvWorld::default();
        let a = w.issue(n(3), 7);
        let b = w.issue(n(4), 7);
        assert_eq!(KvUpdate::decode(&a.encode()), Some(a));
        assert!(b.id > a.id);
        let mut s = KvState::new(n(1));
        assert!(s.store(7, b.record()));
        assert!(s.store(7, a.record()), "older: ignored");
        assert_eq!(s.map[&7].version, b.id);
    }

    #[test]
    fn out_of_order_and_duplicate_applications_are_violations() {
        let world: SharedKvWorld = Arc::default();
        let (mut kv, _) = SimKv::new(n(1), Arc::clone(&world));
        let (u1, u2) = {
            let mut w = lock(&world);
            (w.issue(n(2), 1), w.issue(n(2), 2))
        };
        {
            let mut w = lock(&world);
            w.arrive(n(1), u1.id, n(2), n(2), true);
            w.arrive(n(1), u2.id, n(2), n(2), true);
            w.finalize(n(1), |_, _| true);
        }
        kv.apply_packet(n(2), 1, &u2.packet()).unwrap();
        kv.apply_packet(n(2), 1, &u1.packet()).unwrap();
        kv.apply_packet(n(2), 1, &u2.packet()).unwrap();
        let v = lock(&world).take_violations();
        assert_eq!(v.len(), 4, "{v:#?}");
    }
}
