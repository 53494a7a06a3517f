//! Unit tests of capabilities, sync and sharing tags: every status transition of
//! docs/behaviour.md §9.2, the sync rules of §9.5–§9.8 with our improvements, and the rules of
//! §10.2–§10.4 plus election mode. Nodes talk through a zero-latency in-memory network that
//! hands transmits straight to the node owning the destination address.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::Mutex;

use crate::capability::{Capability, CapabilityEvent, NodeMatch, Rejected, SyncStatus};
use crate::config::{Config, DbMode, Timers};
use crate::id::{ClusterId, NodeId};
use crate::message::*;
use crate::node::{ConnectionId, Event, Node, Transmit, TransmitTo};
use crate::send::SendStatus;
use crate::shtag::{ElectionConfig, ShtagConfig, ShtagReason, ShtagState, reannounce_period_ms};
use crate::sync::{RequestSync, SyncOptions};
use crate::test_support::{self, C1, at, n};

const CAP: &str = "kv-repl";

/// A key/value capability whose data the test can inspect. Chunks and live packets are
/// `key=value`; a chunk starting with `bad` is rejected.
#[derive(Clone, Default)]
struct Kv {
    data: Arc<Mutex<BTreeMap<String, String>>>,
    events: Arc<Mutex<Vec<CapabilityEvent>>>,
}

impl Kv {
    fn with(entries: &[(&str, &str)]) -> Self {
        let kv = Kv::default();
        for (k, v) in entries {
            kv.data.lock().unwrap().insert((*k).into(), (*v).into());
        }
        kv
    }

    fn get(&self) -> BTreeMap<String, String> {
        self.data.lock().unwrap().clone()
    }

    fn apply(&self, bytes: &[u8]) -> Result<(), Rejected> {
        let text = core::str::from_utf8(bytes).map_err(|_| Rejected("not utf-8".into()))?;
        if text.starts_with("bad") {
            return Err(Rejected(format!("cannot apply {text}")));
        }
        let (k, v) = text.split_once('=').ok_or(Rejected("no =".into()))?;
        self.data.lock().unwrap().insert(k.into(), v.into());
        Ok(())
    }
}

impl Capability for Kv {
    fn produce_sync_chunks(&mut self, _requester: NodeId, chunk: &mut dyn FnMut(&[u8])) {
        for (k, v) in self.data.lock().unwrap().iter() {
            chunk(format!("{k}={v}").as_bytes());
        }
    }

    fn apply_sync_chunk(&mut self, _donor: NodeId, _v: i32, chunk: &[u8]) -> Result<(), Rejected> {
        self.apply(chunk)
    }

    fn apply_packet(&mut self, _src: NodeId, _v: i16, p: &ModulePacket) -> Result<(), Rejected> {
        self.apply(&p.payload)
    }

    fn handle_event(&mut self, event: CapabilityEvent) {
        self.events.lock().unwrap().push(event);
    }
}

struct Net {
    nodes: Vec<Node>,
    /// Pairs that cannot talk (sends to them are reported failed).
    cut: Vec<(u32, u32)>,
    /// (from, to, type) silently lost on the way.
    silence: Vec<(u32, u32, &'static str)>,
    /// Every transmit delivered, for assertions.
    log: Vec<(u32, Transmit)>,
    now: u64,
}

fn config(me: u32, peers: &[u32]) -> Config {
    test_support::config(me, peers, DbMode::Database)
}

impl Net {
    /// A full mesh of `count` nodes, each config adjusted by `tweak`.
    fn mesh(count: u32, tweak: impl Fn(u32, &mut Config)) -> Net {
        let nodes = (1..=count)
            .map(|i| {
                let peers: Vec<u32> = (1..=count).filter(|&p| p != i).collect();
                let mut cfg = config(i, &peers);
                tweak(i, &mut cfg);
                Node::new(cfg, at(0), u64::from(i)).unwrap()
            })
            .collect();
        Net {
            nodes,
            cut: Vec::new(),
            silence: Vec::new(),
            log: Vec::new(),
            now: 0,
        }
    }

    fn node(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize - 1]
    }

    fn is_cut(&self, a: u32, b: u32) -> bool {
        self.cut.contains(&(a, b)) || self.cut.contains(&(b, a))
    }

    /// Delivers every queued transmit (and what it triggers) at the current time.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    moved = true;
                    let from = i as u32 + 1;
                    let to = match t.to {
                        TransmitTo::Node { id, .. } => id.get(),
                        TransmitTo::Connection(ConnectionId(c)) => c as u32,
                    };
                    let now = at(self.now);
                    if to as usize > self.nodes.len() || self.is_cut(from, to) {
                        let (cluster, dest) = (t.cluster, n(to));
                        let probe = t.message.type_name() == "PING";
                        let routed_to = t.message.destination();
                        let node = &mut self.nodes[i];
                        if let Some((to, ahead)) =
                            node.handle_send_failed(now, cluster, dest, probe, routed_to)
                        {
                            // Where the endpoint would queue the same bytes again.
                            let message = t.message;
                            let retry = Transmit {
                                cluster,
                                to,
                                message,
                            };
                            node.out.transmits.insert(ahead, retry);
                        }
                        continue;
                    }
                    let kind = t.message.type_name();
                    if self
                        .silence
                        .iter()
                        .any(|&(f, d, k)| f == from && d == to && k == kind)
                    {
                        continue;
                    }
                    self.log.push((from, t.clone()));
                    let _ = self.nodes[to as usize - 1].handle_message(
                        now,
                        ConnectionId(u64::from(from)),
                        t.message,
                    );
                }
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Advances time tick by tick (every `step` ms) up to `until`, pumping in between.
    fn run_until(&mut self, until: u64) {
        while self.now < until {
            self.now += 100;
            for node in &mut self.nodes {
                node.handle_timeout(at(self.now));
            }
            self.pump();
        }
    }

    fn events(&mut self, i: u32) -> Vec<Event> {
        core::iter::from_fn(|| self.node(i).poll_event()).collect()
    }

    fn status(&self, i: u32) -> (SyncStatus, bool) {
        let cap = self.nodes[i as usize - 1]
            .cluster(C1)
            .unwrap()
            .capability(CAP)
            .unwrap();
        (cap.status(), cap.is_ok())
    }

    fn reports(&self, i: u32) -> Vec<String> {
        let cap = self.nodes[i as usize - 1]
            .cluster(C1)
            .unwrap()
            .capability(CAP)
            .unwrap();
        cap.reports().iter().map(|r| r.text.clone()).collect()
    }

    fn register(&mut self, i: u32, kv: &Kv, startup_sync: bool) {
        let now = at(self.now);
        self.node(i)
            .register_capability(
                now,
                C1,
                CAP,
                startup_sync,
                NodeMatch::Any,
                Box::new(kv.clone()),
            )
            .unwrap();
        self.pump();
    }

    fn sent(&self, kind: &str) -> Vec<(u32, &Transmit)> {
        self.log
            .iter()
            .filter(|(_, t)| t.message.type_name() == kind)
            .map(|(f, t)| (*f, t))
            .collect()
    }
}

fn seed(cfg: &mut Config) {
    cfg.clusters[0].local.seed = true;
}

#[test]
fn capability_without_startup_sync_is_synced_at_once() {
    let mut net = Net::mesh(1, |_, _| {});
    net.register(1, &Kv::default(), false);
    assert_eq!(net.status(1), (SyncStatus::Synced, true));
    assert_eq!(
        (SyncStatus::Synced.code(), SyncStatus::Synced.details()),
        (1, "synced")
    );
}

#[test]
fn request_without_donor_is_queued_and_a_seed_falls_back_after_the_interval() {
    let mut net = Net::mesh(1, |_, c| seed(c));
    net.register(1, &Kv::default(), true);
    assert_eq!(net.status(1), (SyncStatus::SyncPending, false));
    assert_eq!(
        net.reports(1),
        ["Sync request postponed! (no donor available)"]
    );
    net.run_until(4900);
    assert_eq!(net.status(1).0, SyncStatus::SyncPending);
    net.run_until(5500);
    assert_eq!(net.status(1), (SyncStatus::Synced, true));
    assert_eq!(
        net.reports(1).last().unwrap(),
        "ERROR: Sync request aborted! (no donor found in due time) => fallback to synced state"
    );
}

#[test]
fn a_non_seed_without_donor_waits_indefinitely() {
    let mut net = Net::mesh(1, |_, _| {});
    net.register(1, &Kv::default(), true);
    net.run_until(120_000);
    assert_eq!(net.status(1), (SyncStatus::SyncPending, false));
}

#[test]
fn startup_sync_pulls_the_donor_data_and_advertises_synced() {
    let donor = Kv::with(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let fresh = Kv::default();
    let mut net = Net::mesh(2, |_, _| {});
    net.register(1, &donor, false);
    net.register(2, &fresh, true);
    assert_eq!(net.status(2).0, SyncStatus::SyncPending);
    net.run_until(1500);
    assert_eq!(fresh.get(), donor.get());
    assert_eq!(net.status(2), (SyncStatus::Synced, true));
    assert_eq!(
        net.reports(2),
        [
            "Sync request postponed! (no donor available)",
            "Sync requested from node [1]",
            "Sync started from node [1]",
            "Sync completed, received [3] chunks",
        ]
    );
    // Link-up sent full CAP_UPDATEs with require_reply, answered without; the completion
    // sent the single form with state 1.
    let caps = net.sent("CAP_UPDATE");
    let full = caps.iter().filter(|(_, t)| matches!(&t.message, Message::Internal(Internal { body: InternalBody::CapUpdate(u), .. }) if u.require_reply)).count();
    assert_eq!(full, 2);
    let last_from_2 = caps.iter().rev().find(|(f, _)| *f == 2).unwrap();
    let Message::Internal(Internal {
        body: InternalBody::CapUpdate(u),
        ..
    }) = &last_from_2.1.message
    else {
        panic!()
    };
    assert_eq!(
        u.nodes[0].capabilities,
        [CapabilityState {
            name: CAP.into(),
            ok: true
        }]
    );
    assert!(
        fresh
            .events
            .lock()
            .unwrap()
            .contains(&CapabilityEvent::SyncDone { donor: n(1) })
    );
}

/// A live `k=<v>` packet of the test capability from node 1 to node 2.
fn live_from_1_to_2(v: &str) -> Message {
    Message::Routed(Routed {
        version: 1,
        trailer: Trailer {
            cluster: C1,
            source: n(1),
            destination: n(2),
        },
        body: RoutedBody::Module(ModulePacket {
            capability: CAP.into(),
            packet_type: 1,
            payload: format!("k={v}").into_bytes(),
        }),
    })
}

#[test]
fn live_packets_during_a_sync_are_buffered_and_applied_in_order_after_it() {
    let donor = Kv::with(&[("k", "old")]);
    let fresh = Kv::default();
    let mut net = Net::mesh(2, |_, c| c.sync_packet_size = 1);
    net.register(1, &donor, false);
    net.register(2, &fresh, true);
    net.run_until(1500);
    assert_eq!(net.status(2), (SyncStatus::Synced, true));
    // Sync again; live packets arrive before the donor's reply is delivered.
    let now = at(2000);
    net.node(2)
        .set_capability_enabled(now, C1, CAP, false)
        .unwrap();
    net.node(2)
        .set_capability_enabled(now, C1, CAP, true)
        .unwrap();
    assert_eq!(
        net.node(2).request_sync(now, C1, CAP).unwrap(),
        RequestSync::Requested(n(1))
    );
    net.node(2)
        .handle_message(now, ConnectionId(1), live_from_1_to_2("new1"))
        .unwrap();
    net.node(2)
        .handle_message(now, ConnectionId(1), live_from_1_to_2("new2"))
        .unwrap();
    assert_eq!(
        net.node(2)
            .cluster(C1)
            .unwrap()
            .capability(CAP)
            .unwrap()
            .buffered_packets(),
        2
    );
    assert_eq!(fresh.get()["k"], "old", "held back, not applied");
    net.now = 2000;
    net.pump();
    assert_eq!(
        fresh.get()["k"],
        "new2",
        "sync data first, then the held packets in order"
    );
    assert_eq!(net.status(2), (SyncStatus::Synced, true));
}

#[test]
fn disabling_a_capability_whose_sync_request_waits_applies_the_held_packets() {
    // Found by the simulation campaign (seeds 1622 and 1897): the packets held back since
    // the SYNC_REQ stayed in the buffer when the capability was disabled before the first
    // SYNC packet, and were applied after newer ones by a later sync, or never.
    let donor = Kv::with(&[("k", "old")]);
    let fresh = Kv::default();
    let mut net = Net::mesh(2, |_, _| {});
    net.silence.extend([(1, 2, "SYNC"), (1, 2, "SYNC_END")]);
    net.register(1, &donor, false);
    net.register(2, &fresh, true);
    net.run_until(1500);
    assert_eq!(
        net.status(2).0,
        SyncStatus::SyncPending,
        "requested, no answer"
    );
    let now = at(1600);
    net.node(2)
        .handle_message(now, ConnectionId(1), live_from_1_to_2("held"))
        .unwrap();
    assert!(fresh.get().is_empty(), "held back while the request waits");
    net.node(2)
        .set_capability_enabled(now, C1, CAP, false)
        .unwrap();
    assert_eq!(
        fresh.get()["k"],
        "held",
        "released when the capability is disabled"
    );
    let cap = net.nodes[1].cluster(C1).unwrap().capability(CAP).unwrap();
    assert_eq!(cap.buffered_packets(), 0);
    net.node(2)
        .set_capability_enabled(now, C1, CAP, true)
        .unwrap();
    net.node(2)
        .handle_message(now, ConnectionId(1), live_from_1_to_2("newer"))
        .unwrap();
    assert_eq!(fresh.get()["k"], "newer");
    assert_eq!(
        net.nodes[1]
            .cluster(C1)
            .unwrap()
            .capability(CAP)
            .unwrap()
            .buffered_packets(),
        0
    );
}

#[test]
fn donor_packs_chunks_like_opensips() {
    // The capture of docs/cachedb-local.md: data sizes 53, 27, 36, 44, 73, 317 with a
    // sync_packet_size of 256 give packets of 259 and 473 bytes (4 + 2 chunks).
    struct Sized(Vec<usize>);
    impl Capability for Sized {
        fn produce_sync_chunks(&mut self, _: NodeId, chunk: &mut dyn FnMut(&[u8])) {
            for &len in &self.0 {
                chunk(&vec![b'x'; len]);
            }
        }
        fn apply_sync_chunk(&mut self, _: NodeId, _: i32, _: &[u8]) -> Result<(), Rejected> {
            Ok(())
        }
        fn apply_packet(&mut self, _: NodeId, _: i16, _: &ModulePacket) -> Result<(), Rejected> {
            Ok(())
        }
    }
    let mut net = Net::mesh(2, |_, c| c.sync_packet_size = 256);
    let now = at(0);
    let sizes = vec![53, 27, 36, 44, 73, 317];
    net.node(1)
        .register_capability(
            now,
            C1,
            "cachedb-local-repl",
            false,
            NodeMatch::Any,
            Box::new(Sized(sizes)),
        )
        .unwrap();
    net.run_until(1000);
    let req = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(2),
            destination: n(1),
        },
        RoutedBody::SyncReq(SyncReq {
            capability: "cachedb-local-repl".into(),
        }),
    ));
    net.node(1)
        .handle_message(at(1000), ConnectionId(2), req)
        .unwrap();
    let mut lens = Vec::new();
    let mut end = None;
    while let Some(t) = net.node(1).poll_transmit() {
        if let Message::Routed(r) = &t.message {
            match &r.body {
                RoutedBody::Sync(s) => lens.push((s.chunks.len(), emit_len(&t.message))),
                RoutedBody::SyncEnd(e) => end = Some(e.chunk_count),
                _ => {}
            }
        }
    }
    assert_eq!(lens, [(4, 259), (2, 473)]);
    assert_eq!(end, Some(6));
}

/// The encoded size of a SYNC message, computed from the layout of docs/wire.md §7.12.
fn emit_len(m: &Message) -> usize {
    let Message::Routed(Routed {
        body: RoutedBody::Sync(s),
        ..
    }) = m
    else {
        return 0;
    };
    12 + 15
        + 4
        + 2
        + s.capability.len()
        + 4
        + s.chunks.iter().map(|c| 8 + c.len()).sum::<usize>()
        + 12
}

#[test]
fn sync_request_from_an_unreachable_node_is_answered_when_it_comes_up() {
    let donor = Kv::with(&[("a", "1")]);
    let mut net = Net::mesh(2, |_, _| {});
    net.register(1, &donor, false);
    // Node 2 advertises the capability (so the donor knows it) but is not reachable yet.
    let cu = CapUpdate {
        seq: 0,
        timestamp: 1,
        nodes: vec![CapabilityBlock {
            node: n(2),
            capabilities: vec![CapabilityState {
                name: CAP.into(),
                ok: false,
            }],
        }],
        require_reply: false,
        path: vec![n(2)],
    };
    net.node(1)
        .handle_message(
            at(10),
            ConnectionId(2),
            Message::Internal(Internal::new(C1, n(2), InternalBody::CapUpdate(cu))),
        )
        .unwrap();
    let req = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(2),
            destination: n(1),
        },
        RoutedBody::SyncReq(SyncReq {
            capability: CAP.into(),
        }),
    ));
    net.node(1)
        .handle_message(at(10), ConnectionId(2), req)
        .unwrap();
    assert!(
        core::iter::from_fn(|| net.node(1).poll_transmit())
            .all(|t| t.message.type_name() != "SYNC_END")
    );
    net.run_until(1500);
    assert_eq!(
        net.sent("SYNC_END").iter().filter(|(f, _)| *f == 1).count(),
        1,
        "sent on NODE_UP"
    );
}

#[test]
fn sync_timeout_reports_and_leaves_not_synced_without_retries() {
    let mut net = Net::mesh(2, |_, c| {
        c.sync = SyncOptions {
            retry: false,
            ..SyncOptions::default()
        };
        c.timers.sync_timeout_s = 2;
    });
    net.silence.push((1, 2, "SYNC_END"));
    net.register(1, &Kv::with(&[("a", "1")]), false);
    net.register(2, &Kv::default(), true);
    net.run_until(1500);
    assert_eq!(net.status(2), (SyncStatus::SyncInProgress, false));
    net.run_until(2900);
    assert_eq!(
        net.status(2),
        (SyncStatus::SyncInProgress, false),
        "1.9 s of silence"
    );
    net.run_until(3500);
    assert_eq!(net.status(2), (SyncStatus::NotSynced, false));
    assert_eq!(
        net.reports(2).last().unwrap(),
        "Sync timed out, received [1] chunks"
    );
    net.run_until(30_000);
    assert_eq!(
        net.status(2).0,
        SyncStatus::NotSynced,
        "no retry without the option"
    );
}

#[test]
fn sync_timeout_retries_with_the_option_on() {
    let mut net = Net::mesh(2, |_, c| c.timers.sync_timeout_s = 2);
    net.silence.push((1, 2, "SYNC_END"));
    net.register(1, &Kv::with(&[("a", "1")]), false);
    net.register(2, &Kv::default(), true);
    net.run_until(3700);
    net.silence.clear();
    net.run_until(10_000);
    assert_eq!(net.status(2), (SyncStatus::Synced, true));
    let reports = net.reports(2);
    assert!(reports.contains(&"Sync timed out, received [1] chunks".to_string()));
    assert_eq!(
        reports.last().unwrap(),
        "Sync completed, received [1] chunks"
    );
}

#[test]
fn chunks_the_capability_rejects_are_skipped_and_the_sync_completes() {
    let donor = Kv::with(&[("a", "1"), ("bad", "x"), ("c", "3")]);
    let fresh = Kv::default();
    let mut net = Net::mesh(2, |_, _| {});
    net.register(1, &donor, false);
    net.register(2, &fresh, true);
    net.run_until(1500);
    assert_eq!(net.status(2), (SyncStatus::Synced, true));
    assert_eq!(fresh.get().len(), 2);
    let reports = net.reports(2);
    assert!(
        reports
            .iter()
            .any(|r| r.starts_with("Sync chunk from node [1] rejected: cannot apply bad=x"))
    );
    assert!(reports.contains(&"Sync skipped [1] chunks the capability rejected".to_string()));
}

#[test]
fn without_skipping_a_rejected_chunk_stalls_the_sync_like_opensips() {
    let donor = Kv::with(&[("a", "1"), ("bad", "x"), ("c", "3")]);
    let mut net = Net::mesh(2, |_, c| {
        c.sync = SyncOptions {
            skip_rejected_chunks: false,
            retry: false,
            ..SyncOptions::default()
        };
    });
    net.register(1, &donor, false);
    net.register(2, &Kv::default(), true);
    net.run_until(20_000);
    assert_eq!(net.status(2), (SyncStatus::NotSynced, false));
    assert_eq!(
        net.reports(2).last().unwrap(),
        "Sync timed out, received [2] chunks"
    );
}

#[test]
fn unsolicited_sync_packets_are_ignored() {
    let mut net = Net::mesh(2, |_, _| {});
    let kv = Kv::default();
    net.register(2, &kv, false);
    let sync = Message::Routed(Routed::new(
        Trailer {
            cluster: C1,
            source: n(1),
            destination: n(2),
        },
        RoutedBody::Sync(Sync {
            capability: CAP.into(),
            data_version: 1,
            chunks: vec![b"x=1".to_vec()],
        }),
    ));
    assert_eq!(
        net.node(2).handle_message(at(5), ConnectionId(1), sync),
        Err(crate::node::DropReason::UnsolicitedSync)
    );
    assert!(kv.get().is_empty());
}

#[test]
fn a_silent_donor_is_abandoned_for_the_next_one() {
    let mut net = Net::mesh(3, |_, c| c.timers.sync_timeout_s = 2);
    // Node 1 (the first choice: lowest id) never answers node 3.
    net.silence.extend([(1, 3, "SYNC"), (1, 3, "SYNC_END")]);
    net.register(1, &Kv::with(&[("from", "1")]), false);
    net.register(2, &Kv::with(&[("from", "2")]), false);
    net.run_until(1500);
    let fresh = Kv::default();
    net.register(3, &fresh, true);
    assert_eq!(
        net.reports(3).last().unwrap(),
        "Sync requested from node [1]"
    );
    net.run_until(4000);
    assert_eq!(fresh.get()["from"], "2");
    assert_eq!(net.status(3), (SyncStatus::Synced, true));
    let reports = net.reports(3);
    assert!(reports.contains(&"Sync request to node [1] got no answer in time".to_string()));
    assert!(reports.contains(&"Sync requested from node [2]".to_string()));
}

#[test]
fn donor_choice_prefers_fewest_hops_then_priority_then_id() {
    let mut net = Net::mesh(4, |i, c| {
        // Node 4's view: node 2 has priority 10, others 50.
        if i == 4 {
            for node in &mut c.clusters[0].nodes {
                if node.id == n(3) {
                    node.priority = 10;
                }
            }
        }
    });
    for i in 1..=3 {
        net.register(i, &Kv::with(&[("x", "1")]), false);
    }
    net.run_until(1500);
    let kv = Kv::default();
    net.register(4, &kv, false);
    let r = net.node(4).request_sync(at(1500), C1, CAP).unwrap();
    assert_eq!(
        r,
        RequestSync::Requested(n(3)),
        "priority 10 beats lower ids at one hop"
    );
}

#[test]
fn disabling_a_capability_reverts_to_not_synced_and_enabling_advertises_the_real_state() {
    let mut net = Net::mesh(2, |_, _| {});
    net.register(1, &Kv::default(), false);
    net.register(2, &Kv::default(), false);
    net.run_until(1100);
    net.log.clear();
    net.node(1)
        .set_capability_enabled(at(1100), C1, CAP, false)
        .unwrap();
    net.pump();
    assert_eq!(net.status(1), (SyncStatus::NotSynced, false));
    assert_eq!(
        net.reports(1).last().unwrap(),
        "Capability disabled via MI, revert to not synced state"
    );
    net.node(1)
        .set_capability_enabled(at(1200), C1, CAP, true)
        .unwrap();
    net.pump();
    let states: Vec<bool> = net
        .sent("CAP_UPDATE")
        .iter()
        .filter_map(|(_, t)| match &t.message {
            Message::Internal(Internal {
                body: InternalBody::CapUpdate(u),
                ..
            }) => Some(u.nodes[0].capabilities[0].ok),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [false],
        "disable advertised 0; enable advertised nothing new (still not synced)"
    );
    let now = at(1300);
    let packet = ModulePacket {
        capability: CAP.into(),
        packet_type: 1,
        payload: b"a=1".to_vec(),
    };
    net.node(1)
        .set_capability_enabled(now, C1, CAP, false)
        .unwrap();
    let status =
        net.node(1)
            .send_to_with_version(now, C1, n(2), 1, RoutedBody::Module(packet.clone()));
    assert_eq!(
        status,
        SendStatus::Success,
        "disabled capability: success without sending"
    );
    let status = net.node(1).send_to_with_version(
        now,
        C1,
        n(2),
        1,
        RoutedBody::Module(ModulePacket {
            capability: "nope".into(),
            ..packet
        }),
    );
    assert_eq!(status, SendStatus::SendErr);
}

#[test]
fn my_index_counts_reachable_synced_nodes() {
    let mut net = Net::mesh(3, |_, _| {});
    for i in 1..=3 {
        net.register(i, &Kv::default(), false);
    }
    net.run_until(1500);
    assert_eq!(net.node(2).my_index(C1, CAP), Some((1, 3)));
    assert_eq!(net.node(1).my_index(C1, CAP), Some((0, 3)));
    assert_eq!(net.node(1).my_index(C1, "other"), Some((0, 1)));
}

// ---- sharing tags -------------------------------------------------------------------

fn tag(cfg: &mut Config, state: ShtagState, election: bool) {
    cfg.sharing_tags.push(ShtagConfig {
        name: "vip".into(),
        cluster: C1,
        state,
        election: election.then(ElectionConfig::default),
    });
}

/// The tag's state on every node, in node order.
fn tag_states(net: &Net) -> Vec<ShtagState> {
    (1..=net.nodes.len() as u32)
        .map(|i| tag_state(net, i))
        .collect()
}

fn tag_state(net: &Net, i: u32) -> ShtagState {
    net.nodes[i as usize - 1].shtag_state("vip", C1).unwrap()
}

fn shtag_events(net: &mut Net, i: u32) -> Vec<(ShtagState, String)> {
    net.events(i)
        .into_iter()
        .filter_map(|e| match e {
            Event::ShtagChanged { state, reason, .. } => Some((state, reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn set_active_announces_to_every_node_and_demotes_them() {
    let mut net = Net::mesh(3, |i, c| {
        tag(
            c,
            if i == 1 {
                ShtagState::Active
            } else {
                ShtagState::Backup
            },
            false,
        )
    });
    net.run_until(1500);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2), tag_state(&net, 3)),
        (ShtagState::Active, ShtagState::Backup, ShtagState::Backup)
    );
    net.events(2);
    net.log.clear();
    net.node(2)
        .shtag_set_active(at(1500), "vip", C1, ShtagReason::MiCommand)
        .unwrap();
    net.pump();
    assert_eq!(
        net.sent("SHTAG_ACTIVE").len(),
        2,
        "one unicast per other node"
    );
    assert_eq!(tag_state(&net, 1), ShtagState::Backup);
    assert_eq!(
        shtag_events(&mut net, 2),
        [(ShtagState::Active, "MI command".to_string())]
    );
    assert_eq!(
        shtag_events(&mut net, 1),
        [(ShtagState::Backup, "cluster broadcast from 2".to_string())]
    );
    let reports: Vec<_> = net.nodes[0]
        .shtag_reports()
        .iter()
        .map(|r| r.text.clone())
        .collect();
    assert_eq!(
        reports.last().unwrap(),
        "TAG <vip>, cluster 1, became backup due to cluster broadcast from 2"
    );
}

#[test]
fn configured_active_tag_is_announced_lazily_as_nodes_come_up() {
    let mut net = Net::mesh(2, |i, c| {
        tag(
            c,
            if i == 1 {
                ShtagState::Active
            } else {
                ShtagState::Backup
            },
            false,
        )
    });
    assert!(net.sent("SHTAG_ACTIVE").is_empty(), "nothing at startup");
    net.run_until(1500);
    let sent = net.sent("SHTAG_ACTIVE");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 1);
    // Not re-announced when the node comes up again: it is in the announced list.
    net.log.clear();
    net.cut.push((1, 2));
    net.run_until(20_000);
    net.cut.clear();
    net.run_until(90_000);
    assert!(net.sent("SHTAG_ACTIVE").is_empty());
}

#[test]
fn announcement_to_an_unreachable_node_is_retried_when_it_comes_up() {
    let mut net = Net::mesh(2, |_, c| tag(c, ShtagState::Backup, false));
    net.cut.push((1, 2));
    net.node(1)
        .shtag_set_active(at(0), "vip", C1, ShtagReason::Api)
        .unwrap();
    net.pump();
    assert!(net.sent("SHTAG_ACTIVE").is_empty());
    net.cut.clear();
    net.run_until(70_000);
    assert_eq!(net.sent("SHTAG_ACTIVE").len(), 1);
    assert_eq!(tag_state(&net, 2), ShtagState::Backup);
}

#[test]
fn two_compat_actives_that_meet_follow_opensips() {
    // Both configured active: each announces to the other on node-up; every receiver steps
    // down, so with crossing announcements both may end backup (§10.5).
    let mut net = Net::mesh(2, |_, c| tag(c, ShtagState::Active, false));
    net.run_until(1500);
    let states = (tag_state(&net, 1), tag_state(&net, 2));
    assert!(
        states != (ShtagState::Active, ShtagState::Active),
        "never both active: {states:?}"
    );
}

#[test]
fn election_lone_node_takes_the_tag_after_the_hold_down() {
    let mut net = Net::mesh(1, |_, c| tag(c, ShtagState::Backup, true));
    net.run_until(2900);
    assert_eq!(tag_state(&net, 1), ShtagState::Backup);
    net.run_until(3600);
    assert_eq!(tag_state(&net, 1), ShtagState::Active);
    assert_eq!(
        shtag_events(&mut net, 1),
        [(
            ShtagState::Active,
            "election (no active node reachable)".to_string()
        )]
    );
}

/// db_mode 0, the usual OpenSIPS layout: node 1 is the seed and knows nobody, nodes 2 and 3
/// list node 1 only. All three run an election tag with the default timers.
fn seed_layout_config(me: u32) -> Config {
    let peers: &[u32] = if me == 1 { &[] } else { &[1] };
    let mut cfg = config(me, peers);
    cfg.db_mode = DbMode::Discovery;
    tag(&mut cfg, ShtagState::Backup, true);
    cfg
}

fn actives_among(net: &Net, nodes: &[u32]) -> Vec<u32> {
    nodes
        .iter()
        .copied()
        .filter(|&i| tag_state(net, i) == ShtagState::Active)
        .collect()
}

#[test]
fn election_db_mode_0_node_waits_the_discovery_bound_before_its_first_takeover() {
    let mut net = Net::mesh(1, |_, c| {
        c.db_mode = DbMode::Discovery;
        tag(c, ShtagState::Backup, true);
    });
    let bound = Timers::default().discovery_bound_ms();
    assert_eq!(bound, 4_000 + 1_000 + 2 * 1_000);
    net.run_until(bound - 100);
    assert_eq!(
        tag_state(&net, 1),
        ShtagState::Backup,
        "hold-down alone is 3 s"
    );
    net.run_until(bound + 600);
    assert_eq!(tag_state(&net, 1), ShtagState::Active);
}

#[test]
fn election_seed_restarted_knowing_nobody_never_takes_the_tag_its_peers_hold() {
    // Issue 18 item 0: after the seed's restart OpenSIPS's peers waited node_timeout (60 s)
    // before probing it again, and the seed took the tag after its hold-down: two actives
    // for most of a minute on a healthy network. The restart time sweeps one re-probe
    // cycle of the peers (a DOWN round: four failed pings, then four seconds) in 100 ms
    // steps, so some restart falls just after the peers' last probe.
    for restart in (40_000..=47_000).step_by(100) {
        let mut net = Net {
            nodes: (1..=3)
                .map(|i| Node::new(seed_layout_config(i), at(0), u64::from(i)).unwrap())
                .collect(),
            cut: Vec::new(),
            silence: Vec::new(),
            log: Vec::new(),
            now: 0,
        };
        net.run_until(12_000);
        assert_eq!(
            actives_among(&net, &[1, 2, 3]),
            [1],
            "the best node holds the tag"
        );
        // kill -9 of node 1: every send to it fails from now on.
        net.cut.extend([(1, 2), (1, 3)]);
        net.run_until(30_000);
        assert_eq!(actives_among(&net, &[2, 3]), [2], "node 2 took over");
        net.run_until(restart);
        // Node 1 restarts knowing nobody; from the restart on exactly one node is active.
        net.nodes[0] = Node::new(seed_layout_config(1), at(restart), 99).unwrap();
        net.cut.clear();
        while net.now < restart + 30_000 {
            net.run_until(net.now + 100);
            let actives = actives_among(&net, &[1, 2, 3]);
            assert_eq!(
                actives.len(),
                1,
                "restart at {restart} ms, at {} ms: actives {actives:?}",
                net.now
            );
        }
        let link = net.nodes[1]
            .cluster(C1)
            .unwrap()
            .node(n(1))
            .unwrap()
            .link_state();
        assert_eq!(
            link,
            crate::link::LinkState::Up,
            "node 2 found node 1 again"
        );
    }
}

#[test]
fn election_best_node_wins_and_takeover_follows_the_owner_loss() {
    let mut net = Net::mesh(3, |_, c| tag(c, ShtagState::Backup, true));
    net.run_until(6000);
    assert_eq!(
        tag_states(&net),
        [ShtagState::Active, ShtagState::Backup, ShtagState::Backup]
    );
    // Owner 1 lost: 2 takes over after detection + hold-down; 3 stays backup.
    net.cut.extend([(1, 2), (1, 3)]);
    net.run_until(20_000);
    assert_eq!(
        (tag_state(&net, 2), tag_state(&net, 3)),
        (ShtagState::Active, ShtagState::Backup)
    );
    // Heal: 1 and 2 meet as actives, the better (1) stays, 2 steps down.
    net.cut.clear();
    net.run_until(90_000);
    assert_eq!(
        tag_states(&net),
        [ShtagState::Active, ShtagState::Backup, ShtagState::Backup]
    );
}

#[test]
fn election_active_reannounces_so_a_lost_announcement_does_not_leave_two_actives() {
    // Found by the simulation campaign (announcement-lost runs): SHTAG_ACTIVE goes out once
    // per node-up; when those announcements are lost in flight, both actives stay active.
    let mut net = Net::mesh(2, |_, c| tag(c, ShtagState::Backup, true));
    net.cut.push((1, 2));
    net.run_until(5_000);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Active),
        "each side alone took the tag"
    );
    // The sides meet, but every announcement of the meeting is lost.
    net.cut.clear();
    net.silence
        .extend([(1, 2, "SHTAG_ACTIVE"), (2, 1, "SHTAG_ACTIVE")]);
    net.run_until(80_000); // a DOWN link is probed again after ping_interval
    let link = net.nodes[0]
        .cluster(C1)
        .unwrap()
        .node(n(2))
        .unwrap()
        .link_state();
    assert_eq!(link, crate::link::LinkState::Up);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Active),
        "no announcement got through"
    );
    net.silence.clear();
    net.log.clear();
    // Within one re-announcement period (8 s: twice ping_interval) plus a heartbeat the
    // repetition settles it.
    let period = reannounce_period_ms(&ElectionConfig::default(), &Timers::default());
    assert_eq!(period, 8_000);
    net.run_until(80_000 + period + 1_000);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Backup)
    );
    // The active one keeps announcing once per period; the backup never does.
    net.log.clear();
    net.run_until(80_000 + 4 * period + 1_000);
    let sent = net.sent("SHTAG_ACTIVE");
    assert!(sent.iter().all(|(from, _)| *from == 1), "{sent:?}");
    assert!(
        (2..=4).contains(&sent.len()),
        "{} announcements",
        sent.len()
    );
}

#[test]
fn election_node_beats_a_non_eligible_active_peer() {
    // Node 2 is "OpenSIPS": compat mode (no election advert). Node 1 (election) and node 2
    // both active: 1 stays active, 2 follows the SHTAG_ACTIVE.
    let mut net = Net::mesh(2, |i, c| tag(c, ShtagState::Active, i == 1));
    net.run_until(3000);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Backup)
    );
}

#[test]
fn injected_fault_skips_demotion_on_shtag_active() {
    // Test-only switch (config::FaultInjection): node 1 no longer steps down.
    let mut net = Net::mesh(2, |i, c| {
        tag(c, ShtagState::Backup, false);
        c.fault_injection.skip_shtag_demotion = i == 1;
    });
    net.run_until(1500);
    net.node(1)
        .shtag_set_active(at(1500), "vip", C1, ShtagReason::Api)
        .unwrap();
    net.pump();
    net.node(2)
        .shtag_set_active(at(1600), "vip", C1, ShtagReason::Api)
        .unwrap();
    net.pump();
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Active),
        "both active: the switch breaks §10.3 on purpose"
    );
}

#[test]
fn election_forgets_an_active_node_that_restarted_unnoticed() {
    // Found by the simulation campaign (seed 3852): node 1 held the tag; node 2 (better
    // priority) came up later, learned node 1 was active, and stayed backup. Node 1 then
    // restarted so fast that node 2 never saw it unreachable: node 2 still believed node 1
    // active, node 1 came back backup and, ranking worse, did not take the tag: nobody held
    // it, for ever.
    let tweak = |i: u32, c: &mut Config| {
        tag(c, ShtagState::Backup, true);
        c.clusters[0].local.priority = if i == 2 { 10 } else { 50 };
        for p in &mut c.clusters[0].nodes {
            p.priority = if p.id == n(2) { 10 } else { 50 };
        }
    };
    let mut net = Net::mesh(2, tweak);
    net.node(2).set_status(at(0), C1, None, false).unwrap();
    net.run_until(5_000);
    assert_eq!(
        tag_state(&net, 1),
        ShtagState::Active,
        "alone, node 1 took it"
    );
    net.node(2).set_status(at(5_000), C1, None, true).unwrap();
    net.run_until(8_000);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Backup),
        "node 2 follows the active node 1"
    );
    // Node 1 restarts (state lost) within a ping interval.
    let mut cfg = config(1, &[2]);
    tweak(1, &mut cfg);
    net.nodes[0] = Node::new(cfg, at(8_100), 99).unwrap();
    net.run_until(20_000);
    let states = (tag_state(&net, 1), tag_state(&net, 2));
    assert_eq!(
        states,
        (ShtagState::Backup, ShtagState::Active),
        "the best reachable node takes the tag nobody holds"
    );
}

#[test]
fn election_backups_do_not_keep_believing_a_node_that_lost_a_conflict() {
    // Found by the simulation campaign (seed 9058): node 2 was active when node 3 joined it,
    // then lost a conflict to node 1; node 3 kept believing node 2 active, so when node 1
    // died nobody took the tag (node 3, the best left, waited for node 2's announcement
    // to end; node 2, backup, ranked worse).
    let prio = |i: u32| match i {
        1 => 10,
        3 => 20,
        _ => 30,
    };
    let mut net = Net::mesh(3, |i, c| {
        tag(c, ShtagState::Backup, true);
        c.clusters[0].local.priority = prio(i);
        for p in &mut c.clusters[0].nodes {
            p.priority = prio(p.id.get());
        }
    });
    // Nodes 1 and 2 each alone: both take the tag.
    net.node(3).set_status(at(0), C1, None, false).unwrap();
    net.cut.extend([(1, 2), (1, 3)]);
    net.run_until(5_000);
    assert_eq!(
        (tag_state(&net, 1), tag_state(&net, 2)),
        (ShtagState::Active, ShtagState::Active)
    );
    // Node 3 joins node 2's side and follows it.
    net.node(3).set_status(at(5_000), C1, None, true).unwrap();
    net.run_until(8_000);
    assert_eq!(tag_state(&net, 3), ShtagState::Backup);
    // The sides meet: node 1 wins, node 2 steps down.
    net.cut.clear();
    net.run_until(80_000);
    assert_eq!(
        tag_states(&net),
        [ShtagState::Active, ShtagState::Backup, ShtagState::Backup]
    );
    // Node 1 dies: node 3, the best left, takes over.
    net.cut.extend([(1, 2), (1, 3)]);
    net.run_until(100_000);
    assert_eq!(
        (tag_state(&net, 2), tag_state(&net, 3)),
        (ShtagState::Backup, ShtagState::Active)
    );
}

#[test]
fn election_tags_refuse_manual_activation() {
    let mut net = Net::mesh(1, |_, c| tag(c, ShtagState::Backup, true));
    let r = net
        .node(1)
        .shtag_set_active(at(0), "vip", C1, ShtagReason::MiCommand);
    assert_eq!(r, Err(crate::shtag::ShtagError::ElectionMode));
    assert_eq!(tag_state(&net, 1), ShtagState::Backup);
}

#[test]
fn election_advert_rides_in_cap_update() {
    let mut net = Net::mesh(2, |i, c| tag(c, ShtagState::Backup, i == 1));
    net.run_until(1500);
    let adverts: Vec<_> = net.nodes[1]
        .cluster(C1)
        .unwrap()
        .remote_capabilities(n(1))
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    assert_eq!(adverts, ["shtag-election:vip"]);
}

#[test]
fn generic_broadcast_with_include_self_delivers_locally() {
    let mut net = Net::mesh(2, |_, _| {});
    net.run_until(1500);
    net.events(1);
    let body = RoutedBody::GenericMsg(GenericMsg {
        kind: GenericKind::Request,
        tag: b"t".to_vec(),
        payload: b"hi".to_vec(),
    });
    let s = net
        .node(1)
        .broadcast_matching(at(1500), C1, NodeMatch::All, 1, body);
    assert_eq!(s, SendStatus::Success);
    net.pump();
    assert!(
        net.events(1)
            .iter()
            .any(|e| matches!(e, Event::Received { source, .. } if *source == n(1)))
    );
    assert!(
        net.events(2)
            .iter()
            .any(|e| matches!(e, Event::Received { source, .. } if *source == n(1)))
    );
}

#[test]
fn check_addr_matches_sip_and_bin_addresses_of_other_nodes() {
    let mut cfg = config(1, &[2, 3]);
    cfg.clusters[0].nodes[0].sip_addr = "sip:10.0.0.2:5060".into();
    cfg.clusters[0].nodes[1].url = "bin:[2001:db8::3]:5566".into();
    let node = Node::new(cfg, at(0), 1).unwrap();
    use crate::send::AddrKind;
    assert_eq!(node.check_addr(C1, "10.0.0.2", AddrKind::Sip), Some(true));
    assert_eq!(node.check_addr(C1, "10.0.0.9", AddrKind::Sip), Some(false));
    assert_eq!(
        node.check_addr(C1, "2001:db8::3", AddrKind::Bin),
        Some(true)
    );
    assert_eq!(node.check_addr(C1, "127.0.0.2", AddrKind::Bin), Some(true));
    assert_eq!(
        node.check_addr(C1, "127.0.0.1", AddrKind::Bin),
        Some(false),
        "never the local node"
    );
    assert_eq!(
        node.check_addr(ClusterId::new(9).unwrap(), "x", AddrKind::Bin),
        None
    );
}
