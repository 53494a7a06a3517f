//! Synthetic captures for the dissector's tests: TCP frames between 127.0.0.x addresses
//! and classic pcap files around them. Shared by the integration tests of `clusterer
//! decode` (`tests/decode.rs`) and the dissector's unit tests in the binary
//! (`src/bin/clusterer/tools/decode/reader_tests.rs`), which include this file by path.

use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

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
