//! The captures and synthetic captures of the dissector's tests: the OpenSIPS 3.6.8
//! vectors (`vectors/opensips`), TCP frames between 127.0.0.x addresses and classic pcap
//! files around them. Shared by the integration tests of `clusterer
//! decode` (`tests/decode.rs`) and the dissector's unit tests in the binary
//! (`src/bin/clusterer/tools/decode/reader_tests.rs`), which include this file by path.

// Each includer uses a subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use serde_json::{Map, Value};

/// One Ethernet/IPv4/TCP frame between 127.0.0.x addresses.
pub(crate) fn tcp_frame(
    src: (u8, u16),
    dst: (u8, u16),
    seq: u32,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([0; 6], [0; 6])
        .ipv4([127, 0, 0, src.0], [127, 0, 0, dst.0], 64)
        .tcp(src.1, dst.1, seq, 65535);
    let builder = if syn {
        builder.syn()
    } else {
        builder.ack(1).psh()
    };
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).expect("build frame");
    frame
}

/// A classic pcap of the given link type; frame `i` is stamped 1000 + i ms.
pub(crate) fn pcap_file(link: DataLink, frames: &[Vec<u8>]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).expect("pcap header");
    for (i, frame) in frames.iter().enumerate() {
        let time = Duration::from_millis(1_000_000 + i as u64);
        let packet = PcapPacket::new(time, frame.len() as u32, frame);
        writer.write_packet(&packet).expect("pcap record");
    }
    writer.into_writer()
}

/// The captured vectors of real OpenSIPS 3.6.8 traffic.
pub(crate) fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/opensips")
}

/// The pcap of capture `name`.
pub(crate) fn pcap_path(name: &str) -> PathBuf {
    vectors().join("pcap").join(format!("{name}.pcap"))
}

/// The records of `bin/<name>.jsonl`, in capture order.
pub(crate) fn captured(name: &str) -> Vec<Map<String, Value>> {
    let path = vectors().join("bin").join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).expect("capture jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Map<String, Value>>(l).expect("jsonl line"))
        .collect()
}

/// The packets of capture `name` as the hex text the vectors hold.
pub(crate) fn captured_hex(name: &str) -> Vec<String> {
    captured(name)
        .iter()
        .map(|r| r["hex"].as_str().expect("hex").to_owned())
        .collect()
}
