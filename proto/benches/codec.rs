//! Codec benchmarks: `wire::parse` (owned), `wire::parse_view` (borrowed, no allocation) and
//! `wire::emit` (into a reused buffer) for one representative message of every family, and
//! the `Deframer` cutting a 64 KiB stream of back-to-back PINGs.
//!
//! ```text
//! cargo bench -p clusterer-proto --bench codec
//! ```
//!
//! Targets (BENCHMARKS.md): PING parse ≤ 50 ns, FULL_TOP_UPDATE (16 nodes) parse ≤ 1 µs.

#![allow(
    clippy::expect_used,
    reason = "the fixtures are built from constants; a failure is a bug in this file"
)]

use std::hint::black_box;
use std::time::Duration;

use clusterer_core::message::{
    CachedbLocalEntry, CachedbLocalPacket, CapUpdate, CapabilityBlock, CapabilityState,
    FullTopUpdate, GenericKind, GenericMsg, Internal, InternalBody, LinkUpdate, LsUpdate, Message,
    MiCmd, NodeInfo, Ping, Pong, Routed, RoutedBody, ShtagActive, Sync, SyncEnd, TopologyEntry,
    Trailer,
};
use clusterer_core::{ClusterId, NodeId};
use clusterer_proto::Deframer;
use clusterer_proto::wire::{self, cachedb_local};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// One benchmarked message and its bytes.
struct Case {
    name: &'static str,
    message: Message,
    bytes: Vec<u8>,
}

fn node(id: u32) -> NodeId {
    NodeId::new(id).expect("node ids in the fixtures are ≥ 1")
}

fn cluster() -> ClusterId {
    ClusterId::new(1).expect("cluster 1 is valid")
}

fn internal(body: InternalBody) -> Message {
    Message::Internal(Internal::new(cluster(), node(1), body))
}

fn routed(body: RoutedBody) -> Message {
    let trailer = Trailer {
        cluster: cluster(),
        source: node(1),
        destination: node(2),
    };
    Message::Routed(Routed::new(trailer, body))
}

fn node_info(id: u32) -> NodeInfo {
    NodeInfo {
        url: format!("bin:10.0.0.{id}:5566"),
        sip_addr: format!("sip:10.0.0.{id}:5060"),
        priority: 0,
        no_ping_retries: 3,
    }
}

fn cachedb_entry(i: usize) -> CachedbLocalEntry {
    CachedbLocalEntry {
        collection: "default".into(),
        key: format!("user:{:04}", 1000 + i).into_bytes(),
        value: format!("sip:user{i}@10.0.0.1:5060;expires=3600").into_bytes(),
        expiry: 3600,
    }
}

/// PING, PONG with 3 ids, LS_UPDATE, FULL_TOP_UPDATE with 16 described nodes of 4
/// neighbours, CAP_UPDATE with 3 nodes × 2 capabilities, SYNC with 20 cachedb-local chunks,
/// SYNC_END, SHTAG_ACTIVE, GENERIC_MSG, MI_CMD and a cachedb-local INSERT.
fn cases() -> Vec<Case> {
    let ping = internal(InternalBody::Ping(Ping {
        req_node_list: false,
    }));
    let pong = internal(InternalBody::Pong(Pong {
        nodes: vec![node(2), node(3), node(4)],
    }));
    let ls_update = internal(InternalBody::LsUpdate(LsUpdate {
        seq: 7,
        timestamp: 1_795_658_148,
        neighbour: node(2),
        state: LinkUpdate::Up,
        path: vec![node(1), node(3)],
    }));
    let entries = (1..=16)
        .map(|id| TopologyEntry {
            node: node(id),
            description: Some(node_info(id)),
            ls_seq: 3,
            ls_timestamp: 1_795_658_148,
            neighbours: (1..=4).map(|k| node((id + k - 1) % 16 + 1)).collect(),
        })
        .collect();
    let full_top_update = internal(InternalBody::FullTopUpdate(FullTopUpdate {
        seq: 2,
        timestamp: 1_795_658_148,
        entries,
        path: vec![node(1)],
    }));
    let cap_update = internal(InternalBody::CapUpdate(CapUpdate {
        seq: 4,
        timestamp: 1_795_658_148,
        nodes: (1..=3)
            .map(|id| CapabilityBlock {
                node: node(id),
                capabilities: vec![
                    CapabilityState {
                        name: "dialog-dlg-repl".into(),
                        ok: true,
                    },
                    CapabilityState {
                        name: "cachedb-local-repl".into(),
                        ok: id != 3,
                    },
                ],
            })
            .collect(),
        require_reply: false,
        path: vec![node(1)],
    }));
    let chunks = (0..20)
        .map(|i| cachedb_local::emit_entry(&cachedb_entry(i)).expect("small entry"))
        .collect();
    let sync = routed(RoutedBody::Sync(Sync {
        capability: cachedb_local::CAPABILITY.into(),
        data_version: cachedb_local::DATA_VERSION,
        chunks,
    }));
    let sync_end = routed(RoutedBody::SyncEnd(SyncEnd {
        capability: cachedb_local::CAPABILITY.into(),
        chunk_count: 20,
    }));
    let shtag_active = routed(RoutedBody::ShtagActive(ShtagActive { tag: "vip".into() }));
    let generic_msg = routed(RoutedBody::GenericMsg(GenericMsg {
        kind: GenericKind::Request,
        tag: b"req-42".to_vec(),
        payload: b"event=reload;target=dispatcher;set=1;reason=maintenance window".to_vec(),
    }));
    let mi_cmd = routed(RoutedBody::MiCmd(MiCmd {
        command: "dlg_end_dlg".into(),
        params: vec!["1234".into(), "5678".into()],
    }));
    let insert = cachedb_local::to_module_packet(&CachedbLocalPacket::Insert(cachedb_entry(7)))
        .expect("small entry");
    let mut insert = routed(RoutedBody::Module(insert));
    if let Message::Routed(r) = &mut insert {
        r.version = cachedb_local::BIN_VERSION;
    }

    let named = [
        ("PING", ping),
        ("PONG (3 ids)", pong),
        ("LS_UPDATE", ls_update),
        ("FULL_TOP_UPDATE (16 nodes)", full_top_update),
        ("CAP_UPDATE (3 nodes x 2 caps)", cap_update),
        ("SYNC (20 cachedb chunks)", sync),
        ("SYNC_END", sync_end),
        ("SHTAG_ACTIVE", shtag_active),
        ("GENERIC_MSG", generic_msg),
        ("MI_CMD", mi_cmd),
        ("cachedb-local INSERT", insert),
    ];
    named
        .into_iter()
        .map(|(name, message)| {
            let bytes = wire::emit_to_vec(&message).expect("fixtures are inside the wire limits");
            assert_eq!(
                wire::parse(&bytes).as_ref(),
                Ok(&message),
                "{name} round trip"
            );
            Case {
                name,
                message,
                bytes,
            }
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let cases = cases();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        group.bench_with_input(
            BenchmarkId::from_parameter(case.name),
            &case.bytes,
            |b, bytes| b.iter(|| wire::parse(black_box(bytes))),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("parse_view");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        group.bench_with_input(
            BenchmarkId::from_parameter(case.name),
            &case.bytes,
            |b, bytes| {
                b.iter(|| wire::parse_view(black_box(bytes)).map(|view| black_box(view).source()))
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("emit");
    group.throughput(Throughput::Elements(1));
    let mut buf = vec![0u8; wire::MAX_EMIT_LEN];
    for case in &cases {
        group.bench_with_input(
            BenchmarkId::from_parameter(case.name),
            &case.message,
            |b, m| b.iter(|| wire::emit(black_box(m), &mut buf)),
        );
    }
    group.finish();
}

/// A 64 KiB stream of back-to-back PINGs (1424 packets of 46 bytes), cut by the deframer
/// from one buffer, from 1500-byte reads, and cut then parsed with `parse_view`.
fn deframer(c: &mut Criterion) {
    let ping = wire::emit_to_vec(&internal(InternalBody::Ping(Ping {
        req_node_list: false,
    })))
    .expect("PING is inside the wire limits");
    let count = (64 * 1024) / ping.len();
    let stream = ping.repeat(count);

    let mut group = c.benchmark_group("deframer");
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function("64 KiB of PINGs, one buffer", |b| {
        b.iter(|| {
            let mut deframer = Deframer::new();
            let mut packets = 0usize;
            let fed = deframer.feed(black_box(&stream), |_| packets += 1);
            (fed, packets)
        })
    });
    group.bench_function("64 KiB of PINGs, 1500-byte reads", |b| {
        b.iter(|| {
            let mut deframer = Deframer::new();
            let mut packets = 0usize;
            for read in black_box(&stream).chunks(1500) {
                if deframer.feed(read, |_| packets += 1).is_err() {
                    break;
                }
            }
            packets
        })
    });
    group.bench_function("64 KiB of PINGs, one buffer, + parse_view", |b| {
        b.iter(|| {
            let mut deframer = Deframer::new();
            let mut valid = 0usize;
            let fed = deframer.feed(black_box(&stream), |p| {
                valid += usize::from(wire::parse_view(p).is_ok());
            });
            (fed, valid)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec, deframer
}
criterion_main!(benches);
