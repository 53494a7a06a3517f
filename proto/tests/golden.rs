//! Golden test: every BIN packet captured from real OpenSIPS 3.6.8 nodes
//! (`vectors/opensips/bin/*.jsonl`, a copy of `../shared/vectors/opensips`) decodes into the
//! message the capture names, and re-emits byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use clusterer_core::message::{Message, RoutedBody};
use clusterer_proto::wire::{self, cachedb_local};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/opensips/bin")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_captured_packet_decodes_and_reemits_identical() {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("vectors/opensips/bin is part of the repository")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && !p.to_string_lossy().ends_with(".tcp.jsonl")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "eight captures");
    let mut total = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: serde_json::Value = serde_json::from_str(line).unwrap();
            let where_ = format!("{} idx {}", file.display(), rec["idx"]);
            let bytes = hex(rec["hex"].as_str().unwrap());
            assert_eq!(bytes.len() as u64, rec["len"].as_u64().unwrap(), "{where_}");
            let header = wire::parse_header(&bytes).unwrap_or_else(|e| panic!("{where_}: {e}"));
            assert_eq!(
                header.capability,
                rec["capability"].as_str().unwrap().as_bytes(),
                "{where_}"
            );
            assert_eq!(
                i64::from(header.packet_type),
                rec["type"].as_i64().unwrap(),
                "{where_}"
            );
            assert_eq!(
                i64::from(header.version),
                rec["version"].as_i64().unwrap(),
                "{where_}"
            );
            let message = wire::parse(&bytes).unwrap_or_else(|e| panic!("{where_}: {e}"));
            let type_name = rec["type_name"].as_str().unwrap();
            match &message {
                Message::Routed(r) => {
                    let t = &rec["decoded"]["trailer"];
                    assert_eq!(
                        i64::from(r.trailer.cluster.get()),
                        t["cluster_id"].as_i64().unwrap(),
                        "{where_}"
                    );
                    assert_eq!(
                        i64::from(r.trailer.source.get()),
                        t["src_node"].as_i64().unwrap(),
                        "{where_}"
                    );
                    assert_eq!(
                        i64::from(r.trailer.destination.get()),
                        t["dst_node"].as_i64().unwrap(),
                        "{where_}"
                    );
                    if let RoutedBody::Module(m) = &r.body {
                        assert_eq!(m.capability, cachedb_local::CAPABILITY, "{where_}");
                        let p = cachedb_local::parse(m.packet_type, &m.payload)
                            .unwrap_or_else(|e| panic!("{where_}: {e}"));
                        let name = match p {
                            clusterer_core::message::CachedbLocalPacket::Insert(_) => "INSERT",
                            clusterer_core::message::CachedbLocalPacket::Remove { .. } => "REMOVE",
                        };
                        assert_eq!(name, type_name, "{where_}");
                    } else {
                        assert_eq!(message.type_name(), type_name, "{where_}");
                    }
                    if let RoutedBody::Sync(s) = &r.body {
                        for chunk in &s.chunks {
                            cachedb_local::parse_entry(chunk)
                                .unwrap_or_else(|e| panic!("{where_}: {e}"));
                        }
                    }
                }
                Message::Internal(m) => {
                    assert_eq!(message.type_name(), type_name, "{where_}");
                    assert_eq!(
                        i64::from(m.cluster.get()),
                        rec["decoded"]["cluster_id"].as_i64().unwrap(),
                        "{where_}"
                    );
                    assert_eq!(
                        i64::from(m.source.get()),
                        rec["decoded"]["src_node"].as_i64().unwrap(),
                        "{where_}"
                    );
                }
            }
            let again = wire::emit_to_vec(&message).unwrap_or_else(|e| panic!("{where_}: {e}"));
            assert_eq!(again, bytes, "{where_}: re-emitted bytes differ");
            total += 1;
        }
    }
    println!(
        "golden: {total} captured packets from {} files parsed and re-emitted byte-identical",
        files.len()
    );
    assert_eq!(total, 453, "every packet of the eight captures");
}
