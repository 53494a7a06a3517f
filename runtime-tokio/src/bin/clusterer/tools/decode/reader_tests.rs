//! The dissector in-process against synthetic captures built from the packets of real
//! OpenSIPS 3.6.8 traffic (`vectors/opensips`): TCP reassembly, pcapng and Linux cooked
//! captures, skipped frames, and robustness on damaged input. What goes through the
//! `clusterer` binary (exit status, standard error) is in `runtime-tokio/tests/decode.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;

use etherparse::{LinuxSllPacketType, PacketBuilder};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use serde_json::{Map, Value};

use super::{Error, Format, Options, Summary, decode_path, decode_reader, parse_hex};

#[path = "../../../../../tests/support/synthetic.rs"]
mod synthetic;
use synthetic::{captured_hex, pcap_file, pcap_path, tcp_frame};

/// Decodes in-process; panics propagate and fail the test.
fn decode_bytes(input: &[u8], format: Format) -> (Result<Summary, Error>, String) {
    let mut out = Vec::new();
    let options = Options {
        format,
        reemit: true,
    };
    let result = decode_reader(Cursor::new(input), &options, &mut out);
    (result, String::from_utf8(out).expect("utf-8 output"))
}

/// The JSON objects `clusterer decode PATH` prints (no `--reemit`), decoded in-process as
/// [`super::run`] does.
fn decode_path_json(path: &Path) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let options = Options {
        format: Format::Json,
        reemit: false,
    };
    decode_path(path, &options, &mut out).expect("capture decodes");
    String::from_utf8(out)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str::<Map<String, Value>>(l).expect("one JSON object per line"))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    parse_hex(s).expect("valid hex")
}

#[test]
fn out_of_order_split_and_retransmitted_segments_are_reassembled() {
    let hex = captured_hex("11_generic_cachedb");
    let packets: Vec<Vec<u8>> = hex[..6].iter().map(|h| unhex(h)).collect();
    let stream: Vec<u8> = packets.concat();
    let (src, dst) = ((2, 41000), (1, 5566));
    let isn = u32::MAX - 50; // the sequence numbers wrap inside the stream
    let seq = |offset: usize| isn.wrapping_add(1).wrapping_add(offset as u32);
    // Cut at odd places, regardless of packet boundaries.
    let cuts = [0, 7, 60, 61, 150, 333, stream.len()];
    let pieces: Vec<(usize, &[u8])> = cuts
        .windows(2)
        .map(|w| (w[0], &stream[w[0]..w[1]]))
        .collect();
    let mut frames = vec![tcp_frame(src, dst, isn, true, &[])];
    // Order: 0, 2, 1, 1 (again), 4, 3, then 5 and a stale copy of 2 overlapping.
    for &i in &[0usize, 2, 1, 1, 4, 3, 5] {
        let (offset, data) = pieces[i];
        frames.push(tcp_frame(src, dst, seq(offset), false, data));
    }
    frames.push(tcp_frame(src, dst, seq(50), false, &stream[50..200]));
    let capture = pcap_file(DataLink::ETHERNET, &frames);
    let (result, out) = decode_bytes(&capture, Format::Json);
    let summary = result.expect("decodes");
    assert!(summary.is_clean(), "{summary}\n{out}");
    let got: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Map<String, Value>>(l).unwrap()["hex"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got, hex[..6].to_vec());
}

#[test]
fn pcapng_and_linux_cooked_captures_decode_like_the_pcap() {
    let name = "06_cluster_mi";
    let expected = decode_path_json(&pcap_path(name));

    // The same frames as pcapng, nanosecond resolution declared on the interface.
    let file = std::fs::File::open(pcap_path(name)).unwrap();
    let mut reader = PcapReader::new(file).unwrap();
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    let interface = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 262_144,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    };
    writer.write_pcapng_block(interface).unwrap();
    let mut sll_frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: packet.timestamp,
            original_len: packet.orig_len,
            data: Cow::Borrowed(&packet.data),
            options: vec![],
        };
        writer.write_pcapng_block(block).unwrap();
        // And again as Linux cooked capture: Ethernet header (14 bytes) replaced.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&packet.data[14..]);
        sll_frames.push(sll);
    }
    let pcapng = writer.into_inner();
    let (result, out) = decode_bytes(&pcapng, Format::Json);
    assert!(result.expect("pcapng decodes").is_clean());
    let got: Vec<Map<String, Value>> = out
        .lines()
        .map(|l| {
            let mut o: Map<String, Value> = serde_json::from_str(l).unwrap();
            o.remove("reemit_hex");
            o.remove("reemit_identical");
            o
        })
        .collect();
    assert_eq!(got, expected);

    let sll = pcap_file(DataLink::LINUX_SLL, &sll_frames);
    let (result, out) = decode_bytes(&sll, Format::Json);
    assert!(result.expect("SLL decodes").is_clean());
    let hexes: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Map<String, Value>>(l).unwrap()["hex"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(hexes, captured_hex(name));
    // The builder's own SLL frames decode too.
    let payload = unhex(&captured_hex(name)[0]);
    let builder = PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8])
        .ipv4([127, 0, 0, 1], [127, 0, 0, 3], 64)
        .tcp(35617, 5566, 7, 1000);
    let mut frame = Vec::new();
    builder.write(&mut frame, &payload).unwrap();
    let (result, _) = decode_bytes(&pcap_file(DataLink::LINUX_SLL, &[frame]), Format::Json);
    assert_eq!(result.unwrap().packets, 1);
}

#[test]
fn non_tcp_frames_are_skipped_and_counted() {
    let payload = unhex(&captured_hex("02_steady_pings")[0]);
    let udp = {
        let builder = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .udp(5060, 5060);
        let mut frame = Vec::new();
        builder
            .write(&mut frame, b"OPTIONS sip:x SIP/2.0\r\n")
            .unwrap();
        frame
    };
    let frames = vec![
        udp,
        vec![0xff; 10],
        tcp_frame((2, 40000), (1, 5566), 9, false, &payload),
    ];
    let (result, out) = decode_bytes(&pcap_file(DataLink::ETHERNET, &frames), Format::Text);
    let summary = result.unwrap();
    assert_eq!(summary.packets, 1);
    assert!(summary.is_clean());
    let stats = summary.capture.unwrap();
    assert_eq!(
        (stats.frames, stats.skipped_frames, stats.tcp_streams),
        (3, 2, 1)
    );
    assert!(
        out.starts_with("1000.002000 127.0.0.2:40000 -> 127.0.0.1:5566 PING v1 cluster=1"),
        "{out}"
    );
}

#[test]
fn damaged_or_garbage_input_never_panics() {
    let pcap = std::fs::read(pcap_path("11_generic_cachedb")).unwrap();
    // Every truncation point near the start, then a stride through the file.
    let mut cuts: Vec<usize> = (0..120).collect();
    cuts.extend((120..pcap.len()).step_by(211));
    for cut in cuts {
        let (result, _) = decode_bytes(&pcap[..cut], Format::Json);
        if let Ok(summary) = result {
            assert!(summary.packets <= 123);
        }
    }
    // Flipped bytes in a deterministic pseudo-random pattern.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut damaged = pcap.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % damaged.len();
            damaged[at] = next() as u8;
        }
        let _ = decode_bytes(&damaged, Format::Text);
    }
    // Garbage of every input kind.
    for len in [0usize, 1, 3, 4, 12, 17, 100, 5000] {
        let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_bytes(&garbage, Format::Json);
        let mut fake_pcap = vec![0xd4, 0xc3, 0xb2, 0xa1];
        fake_pcap.extend_from_slice(&garbage);
        let _ = decode_bytes(&fake_pcap, Format::Json);
        let mut fake_ng = vec![
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ];
        fake_ng.extend_from_slice(&garbage);
        let _ = decode_bytes(&fake_ng, Format::Json);
        let mut fake_bin = b"P4CK".to_vec();
        fake_bin.extend_from_slice(&garbage);
        let _ = decode_bytes(&fake_bin, Format::Text);
    }
}
