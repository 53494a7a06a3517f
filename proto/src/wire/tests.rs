//! Every hex example of docs/wire.md §11 and docs/cachedb-local.md §9, in both directions, plus
//! malformed-input and round-trip property tests.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use clusterer_core::message::*;
use clusterer_core::{ClusterId, NodeId};
use proptest::prelude::*;

use super::*;

/// Parses the `0000: 50 34 ...` dump format of the spec.
fn dump(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((_, bytes)) = line.split_once(':') else {
            continue;
        };
        for b in bytes.split_whitespace() {
            out.push(u8::from_str_radix(b, 16).unwrap());
        }
    }
    out
}

fn n(id: u32) -> NodeId {
    NodeId::new(id).unwrap()
}

fn c1() -> ClusterId {
    ClusterId::new(1).unwrap()
}

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| n(i)).collect()
}

fn internal(source: u32, body: InternalBody) -> Message {
    Message::Internal(Internal::new(c1(), n(source), body))
}

fn routed(source: u32, dest: u32, body: RoutedBody) -> Message {
    Message::Routed(Routed::new(
        Trailer {
            cluster: c1(),
            source: n(source),
            destination: n(dest),
        },
        body,
    ))
}

/// Asserts both directions: bytes parse to `message`, `message` emits to bytes.
fn both_ways(bytes: &[u8], message: &Message) {
    assert_eq!(&parse(bytes).unwrap(), message, "parse");
    assert_eq!(emit_to_vec(message).unwrap(), bytes, "emit");
    assert_eq!(buffer_len(message).unwrap(), bytes.len());
}

#[test]
fn ping_example_11_1_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 2e 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 00 00
         0020: 00 00 01 00 00 00 01 00 00 00 01 00 00 00",
    );
    both_ways(
        &bytes,
        &internal(
            1,
            InternalBody::Ping(Ping {
                req_node_list: true,
            }),
        ),
    );
    // The keep-alive differs only in the last four bytes.
    let mut keepalive = bytes.clone();
    keepalive[42] = 0;
    both_ways(
        &keepalive,
        &internal(
            1,
            InternalBody::Ping(Ping {
                req_node_list: false,
            }),
        ),
    );
}

#[test]
fn pong_example_11_2_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 32 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 01 00
         0020: 00 00 01 00 00 00 02 00 00 00 01 00 00 00 03 00
         0030: 00 00",
    );
    both_ways(
        &bytes,
        &internal(2, InternalBody::Pong(Pong { nodes: ids(&[3]) })),
    );
}

#[test]
fn ls_update_example_11_3_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 42 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 02 00
         0020: 00 00 01 00 00 00 01 00 00 00 00 00 00 00 00 00
         0030: 00 65 02 00 00 00 00 00 00 00 01 00 00 00 01 00
         0040: 00 00",
    );
    let m = LsUpdate {
        seq: 0,
        timestamp: 0x6500_0000,
        neighbour: n(2),
        state: LinkUpdate::Up,
        path: ids(&[1]),
    };
    both_ways(&bytes, &internal(1, InternalBody::LsUpdate(m)));
}

#[test]
fn shtag_active_example_11_4_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 30 00 00 00 01 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0d 00 00 00 03
         0020: 00 76 69 70 01 00 00 00 01 00 00 00 02 00 00 00",
    );
    both_ways(
        &bytes,
        &routed(
            1,
            2,
            RoutedBody::ShtagActive(ShtagActive { tag: "vip".into() }),
        ),
    );
}

#[test]
fn sync_req_example_11_5_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 3c 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0a 00 00 00 0f
         0020: 00 64 69 61 6c 6f 67 2d 64 6c 67 2d 72 65 70 6c
         0030: 01 00 00 00 02 00 00 00 01 00 00 00",
    );
    both_ways(
        &bytes,
        &routed(
            2,
            1,
            RoutedBody::SyncReq(SyncReq {
                capability: "dialog-dlg-repl".into(),
            }),
        ),
    );
}

#[test]
fn sync_and_sync_end_example_11_6_match_both_ways() {
    let sync = dump(
        "0000: 50 34 43 4b 51 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0b 00 00 00 08
         0020: 00 74 73 74 2d 72 65 70 6c 04 00 00 00 04 00 00
         0030: 00 b5 4a 05 06 07 00 00 00 04 00 00 00 b5 4a 05
         0040: 06 02 00 61 62 01 00 00 00 01 00 00 00 02 00 00
         0050: 00",
    );
    let body = Sync {
        capability: "tst-repl".into(),
        data_version: 4,
        chunks: vec![vec![7, 0, 0, 0], vec![2, 0, b'a', b'b']],
    };
    both_ways(&sync, &routed(1, 2, RoutedBody::Sync(body)));
    let end = dump(
        "0000: 50 34 43 4b 39 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0c 00 00 00 08
         0020: 00 74 73 74 2d 72 65 70 6c 02 00 00 00 01 00 00
         0030: 00 01 00 00 00 02 00 00 00",
    );
    both_ways(
        &end,
        &routed(
            1,
            2,
            RoutedBody::SyncEnd(SyncEnd {
                capability: "tst-repl".into(),
                chunk_count: 2,
            }),
        ),
    );
}

fn info(url: &str, priority: i32) -> NodeInfo {
    NodeInfo {
        url: url.into(),
        sip_addr: String::new(),
        priority,
        no_ping_retries: 3,
    }
}

#[test]
fn captured_full_top_update_of_11_7_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 8c 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 03 00
         0020: 00 00 01 00 00 00 01 00 00 00 01 00 00 00 fb 90
         0030: 07 6b 02 00 00 00 01 00 00 00 00 00 00 00 00 00
         0040: 00 00 00 00 00 00 02 00 00 00 03 00 00 00 02 00
         0050: 00 00 02 00 00 00 01 00 00 00 12 00 62 69 6e 3a
         0060: 31 32 37 2e 30 2e 30 2e 31 3a 35 36 30 32 00 00
         0070: 03 00 00 00 03 00 00 00 ff ff ff ff 00 00 00 00
         0080: 00 00 00 00 01 00 00 00 01 00 00 00",
    );
    let ts = i32::from_le_bytes([0xfb, 0x90, 0x07, 0x6b]);
    let m = FullTopUpdate {
        seq: 1,
        timestamp: ts,
        entries: vec![
            TopologyEntry {
                node: n(1),
                description: None,
                ls_seq: 0,
                ls_timestamp: 0,
                neighbours: ids(&[3, 2]),
            },
            TopologyEntry {
                node: n(2),
                description: Some(info("bin:127.0.0.1:5602", 3)),
                ls_seq: -1,
                ls_timestamp: 0,
                neighbours: vec![],
            },
        ],
        path: ids(&[1]),
    };
    both_ways(&bytes, &internal(1, InternalBody::FullTopUpdate(m)));
}

#[test]
fn captured_node_description_of_11_7_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 54 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 05 00
         0020: 00 00 01 00 00 00 03 00 00 00 12 00 62 69 6e 3a
         0030: 31 32 37 2e 30 2e 30 2e 31 3a 35 36 30 33 00 00
         0040: 32 00 00 00 03 00 00 00 02 00 00 00 03 00 00 00
         0050: 01 00 00 00",
    );
    let m = NodeDescription {
        info: info("bin:127.0.0.1:5603", 50),
        path: ids(&[3, 1]),
    };
    both_ways(&bytes, &internal(3, InternalBody::NodeDescription(m)));
}

#[test]
fn captured_cap_update_of_11_7_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 62 00 00 00 01 00 12 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 69 6e 74 65 72 6e 61 6c 09 00
         0020: 00 00 01 00 00 00 01 00 00 00 00 00 00 00 3f 91
         0030: 07 6b 01 00 00 00 01 00 00 00 01 00 00 00 12 00
         0040: 63 61 63 68 65 64 62 2d 6c 6f 63 61 6c 2d 72 65
         0050: 70 6c 00 00 00 00 01 00 00 00 01 00 00 00 01 00
         0060: 00 00",
    );
    let m = CapUpdate {
        seq: 0,
        timestamp: i32::from_le_bytes([0x3f, 0x91, 0x07, 0x6b]),
        nodes: vec![CapabilityBlock {
            node: n(1),
            capabilities: vec![CapabilityState {
                name: "cachedb-local-repl".into(),
                ok: false,
            }],
        }],
        require_reply: true,
        path: ids(&[1]),
    };
    both_ways(&bytes, &internal(1, InternalBody::CapUpdate(m)));
}

fn cdb_chunk(collection: &str, key: &str, value: &str, expiry: i32) -> Vec<u8> {
    cachedb_local::emit_entry(&CachedbLocalEntry {
        collection: collection.into(),
        key: key.into(),
        value: value.into(),
        expiry,
    })
    .unwrap()
}

/// docs/wire.md §11.7 SYNC and docs/cachedb-local.md §9.5: the chunk data are cachedb records.
#[test]
fn captured_cachedb_sync_of_11_7_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 73 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0b 00 00 00 12
         0020: 00 63 61 63 68 65 64 62 2d 6c 6f 63 61 6c 2d 72
         0030: 65 70 6c 01 00 00 00 10 00 00 00 b5 4a 05 06 02
         0040: 00 63 31 02 00 6b 31 02 00 76 31 00 00 00 00 10
         0050: 00 00 00 b5 4a 05 06 02 00 63 31 02 00 6b 39 02
         0060: 00 76 39 00 00 00 00 01 00 00 00 01 00 00 00 02
         0070: 00 00 00",
    );
    let body = Sync {
        capability: cachedb_local::CAPABILITY.into(),
        data_version: cachedb_local::DATA_VERSION,
        chunks: vec![
            cdb_chunk("c1", "k1", "v1", 0),
            cdb_chunk("c1", "k9", "v9", 0),
        ],
    };
    assert_eq!(body.chunks[0].len(), 16, "chunk_size = 10 + c + k + v");
    both_ways(&bytes, &routed(1, 2, RoutedBody::Sync(body)));
}

fn cdb_packet(source: u32, dest: u32, p: &CachedbLocalPacket) -> Message {
    let module = cachedb_local::to_module_packet(p).unwrap();
    Message::Routed(Routed {
        version: cachedb_local::BIN_VERSION,
        trailer: Trailer {
            cluster: c1(),
            source: n(source),
            destination: n(dest),
        },
        body: RoutedBody::Module(module),
    })
}

/// Asserts a cachedb-local live packet in both directions, through the module payload.
fn cdb_both_ways(bytes: &[u8], p: &CachedbLocalPacket) {
    let message = cdb_packet(1, 2, p);
    both_ways(bytes, &message);
    let Message::Routed(Routed {
        body: RoutedBody::Module(m),
        ..
    }) = parse(bytes).unwrap()
    else {
        panic!("not a module packet");
    };
    assert_eq!(&cachedb_local::parse(m.packet_type, &m.payload).unwrap(), p);
}

#[test]
fn cachedb_insert_example_9_1_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 43 00 00 00 01 00 12 00 63 61 63 68
         0010: 65 64 62 2d 6c 6f 63 61 6c 2d 72 65 70 6c 01 00
         0020: 00 00 07 00 64 65 66 61 75 6c 74 02 00 6b 31 02
         0030: 00 76 31 00 00 00 00 01 00 00 00 01 00 00 00 02
         0040: 00 00 00",
    );
    let p = CachedbLocalPacket::Insert(CachedbLocalEntry {
        collection: "default".into(),
        key: b"k1".to_vec(),
        value: b"v1".to_vec(),
        expiry: 0,
    });
    cdb_both_ways(&bytes, &p);
}

#[test]
fn cachedb_insert_with_expiry_example_9_2_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 3e 00 00 00 01 00 12 00 63 61 63 68
         0010: 65 64 62 2d 6c 6f 63 61 6c 2d 72 65 70 6c 01 00
         0020: 00 00 02 00 63 31 02 00 6b 32 02 00 76 32 1e 00
         0030: 00 00 01 00 00 00 01 00 00 00 02 00 00 00",
    );
    let p = CachedbLocalPacket::Insert(CachedbLocalEntry {
        collection: "c1".into(),
        key: b"k2".to_vec(),
        value: b"v2".to_vec(),
        expiry: 30,
    });
    cdb_both_ways(&bytes, &p);
}

#[test]
fn cachedb_remove_example_9_3_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 3b 00 00 00 01 00 12 00 63 61 63 68
         0010: 65 64 62 2d 6c 6f 63 61 6c 2d 72 65 70 6c 02 00
         0020: 00 00 07 00 64 65 66 61 75 6c 74 02 00 6b 31 01
         0030: 00 00 00 01 00 00 00 02 00 00 00",
    );
    let p = CachedbLocalPacket::Remove {
        collection: "default".into(),
        key: b"k1".to_vec(),
    };
    cdb_both_ways(&bytes, &p);
}

#[test]
fn cachedb_sync_req_example_9_4_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 3f 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0a 00 00 00 12
         0020: 00 63 61 63 68 65 64 62 2d 6c 6f 63 61 6c 2d 72
         0030: 65 70 6c 01 00 00 00 01 00 00 00 02 00 00 00",
    );
    both_ways(
        &bytes,
        &routed(
            1,
            2,
            RoutedBody::SyncReq(SyncReq {
                capability: "cachedb-local-repl".into(),
            }),
        ),
    );
}

#[test]
fn cachedb_sync_end_example_9_6_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 43 00 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0c 00 00 00 12
         0020: 00 63 61 63 68 65 64 62 2d 6c 6f 63 61 6c 2d 72
         0030: 65 70 6c 02 00 00 00 01 00 00 00 01 00 00 00 02
         0040: 00 00 00",
    );
    let m = SyncEnd {
        capability: "cachedb-local-repl".into(),
        chunk_count: 2,
    };
    both_ways(&bytes, &routed(1, 2, RoutedBody::SyncEnd(m)));
}

#[test]
fn cachedb_donor_sync_example_9_7_matches_both_ways() {
    let bytes = dump(
        "0000: 50 34 43 4b 26 01 00 00 03 00 0f 00 63 6c 75 73
         0010: 74 65 72 65 72 2d 65 78 74 72 61 0b 00 00 00 12
         0020: 00 63 61 63 68 65 64 62 2d 6c 6f 63 61 6c 2d 72
         0030: 65 70 6c 01 00 00 00 16 00 00 00 b5 4a 05 06 07
         0040: 00 64 65 66 61 75 6c 74 04 00 63 6e 74 32 01 00
         0050: 31 2d 00 00 00 15 00 00 00 b5 4a 05 06 07 00 64
         0060: 65 66 61 75 6c 74 02 00 6b 73 02 00 76 73 e7 03
         0070: 00 00 15 00 00 00 b5 4a 05 06 07 00 64 65 66 61
         0080: 75 6c 74 02 00 6b 39 02 00 76 39 00 00 00 00 15
         0090: 00 00 00 b5 4a 05 06 07 00 64 65 66 61 75 6c 74
         00a0: 03 00 63 6e 74 01 00 38 00 00 00 00 17 00 00 00
         00b0: b5 4a 05 06 07 00 64 65 66 61 75 6c 74 03 00 72
         00c0: 6b 37 03 00 72 76 37 00 00 00 00 13 00 00 00 b5
         00d0: 4a 05 06 07 00 64 65 66 61 75 6c 74 02 00 65 6b
         00e0: 00 00 00 00 00 00 14 00 00 00 b5 4a 05 06 02 00
         00f0: 63 31 04 00 6b 65 78 70 04 00 76 65 78 70 47 00
         0100: 00 00 10 00 00 00 b5 4a 05 06 02 00 63 31 02 00
         0110: 6b 32 02 00 76 32 09 00 00 00 01 00 00 00 01 00
         0120: 00 00 02 00 00 00",
    );
    let body = Sync {
        capability: "cachedb-local-repl".into(),
        data_version: 1,
        chunks: vec![
            cdb_chunk("default", "cnt2", "1", 45),
            cdb_chunk("default", "ks", "vs", 999),
            cdb_chunk("default", "k9", "v9", 0),
            cdb_chunk("default", "cnt", "8", 0),
            cdb_chunk("default", "rk7", "rv7", 0),
            cdb_chunk("default", "ek", "", 0),
            cdb_chunk("c1", "kexp", "vexp", 71),
            cdb_chunk("c1", "k2", "v2", 9),
        ],
    };
    both_ways(&bytes, &routed(1, 2, RoutedBody::Sync(body)));
}

fn ping_bytes() -> Vec<u8> {
    emit_to_vec(&internal(
        1,
        InternalBody::Ping(Ping {
            req_node_list: true,
        }),
    ))
    .unwrap()
}

#[test]
fn every_truncation_of_a_packet_is_a_typed_error() {
    let full = emit_to_vec(&internal(
        1,
        InternalBody::FullTopUpdate(FullTopUpdate {
            seq: 3,
            timestamp: 9,
            entries: vec![TopologyEntry {
                node: n(2),
                description: Some(info("bin:10.0.0.2:5566", 50)),
                ls_seq: 1,
                ls_timestamp: 2,
                neighbours: ids(&[1, 3]),
            }],
            path: ids(&[1]),
        }),
    ))
    .unwrap();
    for cut in 0..full.len() {
        let mut p = full[..cut].to_vec();
        if p.len() >= 8 {
            p[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        }
        assert!(parse(&p).is_err(), "cut at {cut} decoded");
    }
}

#[test]
fn oversized_and_negative_counts_are_rejected() {
    // PONG with n = 129 and with n = -1.
    for (value, field) in [(129i32, "nr_nodes"), (-1, "nr_nodes")] {
        let mut p = emit_to_vec(&internal(2, InternalBody::Pong(Pong::default()))).unwrap();
        let at = p.len() - 4;
        p[at..].copy_from_slice(&value.to_le_bytes());
        assert!(
            matches!(parse(&p), Err(DecodeError::CountOutOfRange { field: f, value: v, .. }) if f == field && v == value)
        );
    }
    // A path of 27 entries cannot appear on the wire.
    let mut ls = LsUpdate {
        seq: 1,
        timestamp: 1,
        neighbour: n(2),
        state: LinkUpdate::Down,
        path: ids(&[1; 26]),
    };
    let ok = emit_to_vec(&internal(1, InternalBody::LsUpdate(ls.clone()))).unwrap();
    assert!(parse(&ok).is_ok(), "26 entries may appear on the wire");
    ls.path.push(n(1));
    assert_eq!(
        emit_to_vec(&internal(1, InternalBody::LsUpdate(ls))),
        Err(EmitError::CountOutOfRange {
            field: "path",
            len: 27,
            min: 1,
            max: 26
        })
    );
    let mut bad = ok.clone();
    let at = bad.len() - 4 * 27;
    bad[at..at + 4].copy_from_slice(&27i32.to_le_bytes());
    assert!(matches!(
        parse(&bad),
        Err(DecodeError::CountOutOfRange {
            field: "path_len",
            value: 27,
            ..
        })
    ));
    // MI_CMD with 11 parameters.
    let params: Vec<String> = (0..10).map(|i| alloc::format!("{i}")).collect();
    let mut mi = emit_to_vec(&routed(
        1,
        2,
        RoutedBody::MiCmd(MiCmd {
            command: "x".into(),
            params,
        }),
    ))
    .unwrap();
    assert!(parse(&mi).is_ok());
    // no_params sits after the 2+1-byte command name.
    let at = FIXED_HEADER_LEN + 2 + CAP_EXTRA.len() + 4 + 3;
    mi[at..at + 4].copy_from_slice(&11i32.to_le_bytes());
    assert!(matches!(
        parse(&mi),
        Err(DecodeError::CountOutOfRange {
            field: "no_params",
            value: 11,
            ..
        })
    ));
}

#[test]
fn cap_len_past_the_end_is_rejected() {
    let mut p = ping_bytes();
    p[10..12].copy_from_slice(&200u16.to_le_bytes());
    assert!(matches!(
        parse(&p),
        Err(DecodeError::CapabilityOverrun { cap_len: 200, .. })
    ));
}

#[test]
fn sync_with_version_other_than_3_is_rejected() {
    let m = routed(
        1,
        2,
        RoutedBody::SyncEnd(SyncEnd {
            capability: "x".into(),
            chunk_count: 0,
        }),
    );
    let mut p = emit_to_vec(&m).unwrap();
    p[8] = 1;
    assert_eq!(
        parse(&p),
        Err(DecodeError::BadSyncVersion {
            type_name: "SYNC_END",
            version: 1
        })
    );
    let s = routed(
        1,
        2,
        RoutedBody::Sync(Sync {
            capability: "x".into(),
            data_version: 1,
            chunks: vec![],
        }),
    );
    let mut p = emit_to_vec(&s).unwrap();
    p[8] = 2;
    assert_eq!(
        parse(&p),
        Err(DecodeError::BadSyncVersion {
            type_name: "SYNC",
            version: 2
        })
    );
}

#[test]
fn bad_sync_chunks_are_rejected() {
    let s = Sync {
        capability: "x".into(),
        data_version: 1,
        chunks: vec![vec![1, 2, 3, 4]],
    };
    let good = emit_to_vec(&routed(1, 2, RoutedBody::Sync(s))).unwrap();
    let chunk_at = FIXED_HEADER_LEN + 2 + CAP_EXTRA.len() + 4 + 3 + 4;
    let mut bad_marker = good.clone();
    bad_marker[chunk_at + 4] ^= 1;
    assert!(matches!(
        parse(&bad_marker),
        Err(DecodeError::BadChunkMarker { chunk: 0, .. })
    ));
    let mut overrun = good.clone();
    overrun[chunk_at..chunk_at + 4].copy_from_slice(&5i32.to_le_bytes());
    assert!(matches!(
        parse(&overrun),
        Err(DecodeError::ChunkOverrun {
            chunk: 0,
            size: 5,
            available: 4
        })
    ));
    let mut negative = good;
    negative[chunk_at..chunk_at + 4].copy_from_slice(&(-1i32).to_le_bytes());
    assert!(matches!(
        parse(&negative),
        Err(DecodeError::ChunkOverrun { size: -1, .. })
    ));
}

#[test]
fn unknown_clusterer_types_and_bad_ids_are_rejected() {
    let mut p = ping_bytes();
    p[30] = 42;
    assert_eq!(
        parse(&p),
        Err(DecodeError::UnknownType {
            capability: CAP_INTERNAL,
            packet_type: 42
        })
    );
    let mut p = ping_bytes();
    p[34..38].copy_from_slice(&0i32.to_le_bytes());
    assert_eq!(
        parse(&p),
        Err(DecodeError::InvalidId {
            field: "cluster_id",
            value: 0
        })
    );
    let mut p = ping_bytes();
    p[42] = 2;
    assert!(matches!(
        parse(&p),
        Err(DecodeError::InvalidValue {
            field: "req_node_list",
            value: 2,
            ..
        })
    ));
    let mut p = ping_bytes();
    p.extend_from_slice(&[0, 0]);
    let len = p.len() as u32;
    p[4..8].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        parse(&p),
        Err(DecodeError::TrailingBytes {
            type_name: "PING",
            count: 2
        })
    );
}

#[test]
fn module_packets_keep_unknown_capabilities_verbatim() {
    let m = Message::Routed(Routed {
        version: 4,
        trailer: Trailer {
            cluster: c1(),
            source: n(1),
            destination: n(2),
        },
        body: RoutedBody::Module(ModulePacket {
            capability: "dialog-dlg-repl".into(),
            packet_type: 1,
            payload: vec![9, 8, 7],
        }),
    });
    let bytes = emit_to_vec(&m).unwrap();
    assert_eq!(parse(&bytes).unwrap(), m);
    let mut short = bytes[..bytes.len() - 4].to_vec();
    let len = short.len() as u32;
    short[4..8].copy_from_slice(&len.to_le_bytes());
    // 3 payload bytes + 8 trailer bytes cannot hold a 12-byte trailer... they can (11 < 12).
    assert_eq!(
        parse(&short),
        Err(DecodeError::MissingTrailer { body_len: 11 })
    );
}

#[test]
fn emit_refuses_packets_over_65515_bytes() {
    let payload = vec![0u8; MAX_EMIT_LEN];
    let m = routed(
        1,
        2,
        RoutedBody::GenericMsg(GenericMsg {
            kind: GenericKind::Request,
            tag: vec![],
            payload,
        }),
    );
    assert!(matches!(
        emit_to_vec(&m),
        Err(EmitError::StringTooLong { .. }) | Err(EmitError::TooLarge { .. })
    ));
    let fits =
        MAX_EMIT_LEN - (FIXED_HEADER_LEN + 2 + CAP_EXTRA.len() + 4 + 4 + 2 + 2 + TRAILER_LEN);
    let m = routed(
        1,
        2,
        RoutedBody::GenericMsg(GenericMsg {
            kind: GenericKind::Reply,
            tag: vec![],
            payload: vec![b'x'; fits],
        }),
    );
    assert_eq!(buffer_len(&m), Ok(MAX_EMIT_LEN));
    let m = routed(
        1,
        2,
        RoutedBody::GenericMsg(GenericMsg {
            kind: GenericKind::Reply,
            tag: vec![],
            payload: vec![b'x'; fits + 1],
        }),
    );
    assert_eq!(
        buffer_len(&m),
        Err(EmitError::TooLarge {
            len: MAX_EMIT_LEN + 1
        })
    );
    let mut small = [0u8; 10];
    assert!(matches!(
        emit(&internal(1, InternalBody::UnknownId), &mut small),
        Err(EmitError::BufferTooSmall {
            needed: 42,
            given: 10
        })
    ));
}

#[test]
fn cachedb_chunks_skip_extra_fields_but_live_packets_reject_them() {
    let mut chunk = cdb_chunk("c", "k", "v", 5);
    chunk.extend_from_slice(&[1, 2, 3]);
    let e = cachedb_local::parse_entry(&chunk).unwrap();
    assert_eq!(
        (e.collection, e.key, e.value, e.expiry),
        ("c", &b"k"[..], &b"v"[..], 5)
    );
    assert_eq!(
        cachedb_local::parse(1, &chunk),
        Err(DecodeError::TrailingBytes {
            type_name: "INSERT",
            count: 3
        })
    );
    assert_eq!(
        cachedb_local::parse(3, &chunk),
        Err(DecodeError::UnknownModuleType {
            capability: "cachedb-local-repl",
            packet_type: 3
        })
    );
    assert_eq!(
        cachedb_local::parse(1, &chunk[..8]),
        Err(DecodeError::Truncated { field: "value" })
    );
}

// ---- generated messages -------------------------------------------------------------

fn arb_node() -> impl Strategy<Value = NodeId> {
    prop_oneof![1u32..20, 1u32..=clusterer_core::id::MAX_ID].prop_map(|v| NodeId::new(v).unwrap())
}

fn arb_ids(min: usize, max: usize) -> impl Strategy<Value = Vec<NodeId>> {
    prop::collection::vec(arb_node(), min..=max)
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-z0-9:./\\-é☃]{0,24}"
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn arb_info() -> impl Strategy<Value = NodeInfo> {
    (arb_text(), arb_text(), any::<i32>(), any::<i32>()).prop_map(
        |(url, sip_addr, priority, no_ping_retries)| NodeInfo {
            url,
            sip_addr,
            priority,
            no_ping_retries,
        },
    )
}

fn arb_internal_body() -> impl Strategy<Value = InternalBody> {
    prop_oneof![
        any::<bool>().prop_map(|req_node_list| InternalBody::Ping(Ping { req_node_list })),
        arb_ids(0, MAX_NODES).prop_map(|nodes| InternalBody::Pong(Pong { nodes })),
        (
            any::<i32>(),
            any::<i32>(),
            arb_node(),
            any::<bool>(),
            arb_ids(1, MAX_WIRE_PATH_LEN)
        )
            .prop_map(
                |(seq, timestamp, neighbour, up, path)| InternalBody::LsUpdate(LsUpdate {
                    seq,
                    timestamp,
                    neighbour,
                    state: if up { LinkUpdate::Up } else { LinkUpdate::Down },
                    path
                })
            ),
        (
            any::<i32>(),
            any::<i32>(),
            prop::collection::vec(
                (
                    arb_node(),
                    prop::option::of(arb_info()),
                    any::<i32>(),
                    any::<i32>(),
                    arb_ids(0, 8)
                )
                    .prop_map(
                        |(node, description, ls_seq, ls_timestamp, neighbours)| TopologyEntry {
                            node,
                            description,
                            ls_seq,
                            ls_timestamp,
                            neighbours
                        }
                    ),
                0..6
            ),
            arb_ids(1, 4)
        )
            .prop_map(
                |(seq, timestamp, entries, path)| InternalBody::FullTopUpdate(FullTopUpdate {
                    seq,
                    timestamp,
                    entries,
                    path
                })
            ),
        Just(InternalBody::UnknownId),
        (arb_info(), arb_ids(1, 26))
            .prop_map(|(info, path)| InternalBody::NodeDescription(NodeDescription { info, path })),
        (
            any::<i32>(),
            any::<i32>(),
            prop::collection::vec(
                (
                    arb_node(),
                    prop::collection::vec((arb_text(), any::<bool>()), 0..4)
                )
                    .prop_map(|(node, caps)| {
                        CapabilityBlock {
                            node,
                            capabilities: caps
                                .into_iter()
                                .map(|(name, ok)| CapabilityState { name, ok })
                                .collect(),
                        }
                    }),
                0..5
            ),
            any::<bool>(),
            arb_ids(1, 5)
        )
            .prop_map(|(seq, timestamp, nodes, require_reply, path)| {
                InternalBody::CapUpdate(CapUpdate {
                    seq,
                    timestamp,
                    nodes,
                    require_reply,
                    path,
                })
            }),
    ]
}

fn arb_routed_body() -> impl Strategy<Value = RoutedBody> {
    prop_oneof![
        arb_node().prop_map(|node| RoutedBody::RemoveNode(RemoveNode { node })),
        (any::<bool>(), arb_bytes(), arb_bytes()).prop_map(|(req, tag, payload)| {
            RoutedBody::GenericMsg(GenericMsg {
                kind: if req {
                    GenericKind::Request
                } else {
                    GenericKind::Reply
                },
                tag,
                payload,
            })
        }),
        (
            arb_text(),
            prop::collection::vec(arb_text(), 0..=MAX_MI_PARAMS)
        )
            .prop_map(|(command, params)| RoutedBody::MiCmd(MiCmd { command, params })),
        arb_text().prop_map(|capability| RoutedBody::SyncReq(SyncReq { capability })),
        (
            arb_text(),
            any::<i32>(),
            prop::collection::vec(arb_bytes(), 0..5)
        )
            .prop_map(|(capability, data_version, chunks)| RoutedBody::Sync(Sync {
                capability,
                data_version,
                chunks
            })),
        (arb_text(), 0u32..=i32::MAX as u32).prop_map(|(capability, chunk_count)| {
            RoutedBody::SyncEnd(SyncEnd {
                capability,
                chunk_count,
            })
        }),
        arb_text().prop_map(|tag| RoutedBody::ShtagActive(ShtagActive { tag })),
        ("[a-z]{1,5}-repl", any::<i32>(), arb_bytes()).prop_map(
            |(capability, packet_type, payload)| {
                RoutedBody::Module(ModulePacket {
                    capability,
                    packet_type,
                    payload,
                })
            }
        ),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let cluster = (1u32..5).prop_map(|c| ClusterId::new(c).unwrap());
    prop_oneof![
        (
            any::<i16>(),
            cluster.clone(),
            arb_node(),
            arb_internal_body()
        )
            .prop_map(
                |(version, cluster, source, body)| Message::Internal(Internal {
                    version,
                    cluster,
                    source,
                    body
                })
            ),
        (
            any::<i16>(),
            cluster,
            arb_node(),
            arb_node(),
            arb_routed_body()
        )
            .prop_map(|(version, cluster, source, destination, body)| {
                let version = match body {
                    RoutedBody::Sync(_) | RoutedBody::SyncEnd(_) => BIN_SYNC_VERSION,
                    _ => version,
                };
                Message::Routed(Routed {
                    version,
                    trailer: Trailer {
                        cluster,
                        source,
                        destination,
                    },
                    body,
                })
            }),
    ]
}

proptest! {
    #[test]
    fn generated_messages_round_trip(message in arb_message()) {
        let bytes = emit_to_vec(&message).unwrap();
        prop_assert_eq!(bytes.len(), buffer_len(&message).unwrap());
        let parsed = parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(emit_to_vec(&parsed).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        // Make the header plausible half of the time so the body parsers get exercised.
        if bytes.len() >= 17 && bytes[0] & 1 == 0 {
            bytes[..4].copy_from_slice(&MARKER);
            let len = bytes.len() as u32;
            bytes[4..8].copy_from_slice(&len.to_le_bytes());
        }
        if let Ok(m) = parse(&bytes) {
            prop_assert_eq!(emit_to_vec(&m).unwrap(), bytes);
        }
    }
}
