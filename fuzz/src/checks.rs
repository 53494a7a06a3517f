//! The properties the fuzz targets check. Each function panics when its property fails.

use arbitrary::Unstructured;
use clusterer_core::message::{Message, Routed, RoutedBody};
use clusterer_proto::wire::{
    self, DecodeError, EmitError, InternalView, MARKER, MAX_EMIT_LEN, MAX_PACKET_LEN,
    MIN_PACKET_LEN, PacketView, RoutedView, cachedb_local,
};
use clusterer_proto::{DEFRAMER_CAPACITY, Deframer};

use crate::generate::{self, Generated};
use crate::stream::{self, Chunker, Stream};

/// `decode` target: any bytes through every decoder. Nothing may panic; [`wire::parse`]
/// and [`wire::parse_view`] must agree; a view's lists must yield as many items as they
/// claim; cachedb-local payloads that decode must re-encode to the same bytes.
///
/// The input is decoded as it is and, when its length could be a packet, once more with
/// the marker and length field set right, so mutations reach the bodies more often.
pub fn decode(data: &[u8]) {
    decode_packet(data);
    if let Some(framed) = with_frame_header(data) {
        decode_packet(&framed);
    }
    // The input as a bare cachedb-local payload and as one sync chunk.
    if let Some((&selector, payload)) = data.split_first() {
        cachedb_payload(i32::from(selector % 4), payload);
    }
    cachedb_chunk(data);
}

/// `roundtrip` target. Two properties:
///
/// 1. bytes → message → bytes: when `parse(input)` succeeds, `emit` reproduces the input
///    exactly, or refuses it only because it is larger than the 65515 bytes we ever emit.
/// 2. message → bytes → message: a message built from the input ([`generate::message`]) that
///    `emit` accepts parses back equal (owned and borrowed); `emit` accepts every message
///    inside the wire limits unless it is too large, and refuses every message outside them.
pub fn roundtrip(data: &[u8]) {
    reemit(data);
    if let Some(framed) = with_frame_header(data) {
        reemit(&framed);
    }
    let mut u = Unstructured::new(data);
    if let Ok(generated) = generate::message(&mut u) {
        emit_then_parse(&generated);
    }
}

/// `deframe` target: the stream the input describes ([`stream`]) deframes to exactly the
/// frames it was built from, with the error its broken frame calls for (if any), whether it
/// is fed whole or in the chunks the input chooses (mixing [`Deframer::feed`] with
/// [`Deframer::push`]/[`Deframer::next_packet`]); the deframer never buffers more than
/// [`DEFRAMER_CAPACITY`] bytes and never stalls.
pub fn deframe(data: &[u8]) {
    let stream = stream::decode(data);

    let mut whole = Deframer::new();
    let mut whole_packets = Vec::new();
    let whole_result = whole.feed(&stream.bytes, |p| whole_packets.push(p.to_vec()));
    assert!(whole.buffered() <= DEFRAMER_CAPACITY);
    let expected: Vec<&[u8]> = stream.expected_packets().collect();
    assert_eq!(
        whole_packets.len(),
        expected.len(),
        "whole stream: packet count"
    );
    for (i, (got, want)) in whole_packets.iter().zip(&expected).enumerate() {
        assert!(got == want, "whole stream: packet {i} differs");
    }
    match whole_result {
        Ok(()) => assert!(
            stream.broken_at.is_none(),
            "whole stream: broken frame not reported"
        ),
        Err(err) => check_stream_error(&stream, err),
    }

    let mut chunker = Chunker::new(stream.style, stream.seed);
    let cuts = chunker.cuts(&stream);
    let mut d = Deframer::new();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut error = None;
    let mut start = 0;
    for end in cuts {
        let chunk = &stream.bytes[start..end];
        start = end;
        let result = if chunker.next_u64().is_multiple_of(2) {
            d.feed(chunk, |p| packets.push(p.to_vec()))
        } else {
            push_and_drain(&mut d, chunk, &mut packets)
        };
        assert!(
            d.buffered() <= DEFRAMER_CAPACITY,
            "deframer holds {} bytes",
            d.buffered()
        );
        if let Err(err) = result {
            error = Some(err);
            break;
        }
    }
    assert_eq!(packets.len(), whole_packets.len(), "chunked: packet count");
    for (i, (got, want)) in packets.iter().zip(&whole_packets).enumerate() {
        assert!(got == want, "chunked: packet {i} differs");
    }
    match (error, whole_result) {
        (None, Ok(())) => {
            assert_eq!(d.buffered(), whole.buffered(), "chunked: bytes left over");
            let consumed = stream.frames.last().map_or(0, |&(at, len)| at + len);
            assert_eq!(d.buffered(), stream.bytes.len() - consumed);
        }
        (Some(err), Err(whole_err)) => {
            check_stream_error(&stream, err);
            if !same_marker_error(err, whole_err) {
                assert_eq!(err, whole_err, "chunked and whole feeding fail differently");
            }
            // The error sticks, whatever arrives later.
            assert_eq!(d.next_packet(), Err(err));
            let taken = d.push(&MARKER);
            assert!(taken <= MARKER.len() && d.buffered() <= DEFRAMER_CAPACITY);
            assert_eq!(d.next_packet(), Err(err));
        }
        (error, whole_result) => {
            panic!("chunked feeding gave {error:?}, whole feeding {whole_result:?}")
        }
    }
}

/// A copy of `data` with a correct marker and length field, when its length is a valid
/// packet length and the header is not already right.
pub fn with_frame_header(data: &[u8]) -> Option<Vec<u8>> {
    if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&data.len()) {
        return None;
    }
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&MARKER);
    head[4..].copy_from_slice(&(data.len() as u32).to_le_bytes());
    if data[..8] == head {
        return None;
    }
    let mut framed = data.to_vec();
    framed[..8].copy_from_slice(&head);
    Some(framed)
}

fn decode_packet(data: &[u8]) {
    let view = wire::parse_view(data);
    let owned = wire::parse(data);
    match (&view, &owned) {
        (Ok(view), Ok(message)) => {
            assert_eq!(&view.to_message(), message, "parse_view and parse disagree");
            assert_eq!(view.cluster(), message.cluster());
            assert_eq!(view.source(), message.source());
            let header = wire::parse_header(data);
            assert!(header.is_ok(), "a packet that parses has a valid header");
            check_view_lists(view);
            decode_payloads(message);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "parse_view and parse fail differently"),
        _ => panic!("parse_view gave {view:?} but parse gave {owned:?}"),
    }
}

/// Every list in a view yields exactly the number of items it reports.
fn check_view_lists(view: &PacketView<'_>) {
    match view {
        PacketView::Internal { body, .. } => match body {
            InternalView::Pong(p) => assert_eq!(p.nodes.iter().count(), p.nodes.len()),
            InternalView::LsUpdate(m) => assert_eq!(m.path.iter().count(), m.path.len()),
            InternalView::FullTopUpdate(m) => {
                assert_eq!(m.entries.iter().count(), m.entries.len());
                for entry in m.entries.iter() {
                    assert_eq!(entry.neighbours.iter().count(), entry.neighbours.len());
                }
                assert_eq!(m.path.iter().count(), m.path.len());
            }
            InternalView::NodeDescription(m) => assert_eq!(m.path.iter().count(), m.path.len()),
            InternalView::CapUpdate(m) => {
                assert_eq!(m.nodes.iter().count(), m.nodes.len());
                for block in m.nodes.iter() {
                    assert_eq!(block.iter().count(), block.len());
                }
                assert_eq!(m.path.iter().count(), m.path.len());
            }
            InternalView::Ping(_) | InternalView::UnknownId => {}
        },
        PacketView::Routed { body, .. } => match body {
            RoutedView::MiCmd(m) => assert_eq!(m.params.iter().count(), m.params.len()),
            RoutedView::Sync(m) => assert_eq!(m.chunks.iter().count(), m.chunks.len()),
            _ => {}
        },
    }
}

/// Runs the cachedb-local decoders over module payloads and sync chunks. Every module
/// payload goes through them, whatever its capability, to reach more decoder states.
fn decode_payloads(message: &Message) {
    let Message::Routed(Routed { body, .. }) = message else {
        return;
    };
    match body {
        RoutedBody::Module(m) => cachedb_payload(m.packet_type, &m.payload),
        RoutedBody::Sync(s) => s.chunks.iter().for_each(|c| cachedb_chunk(c)),
        _ => {}
    }
}

fn cachedb_payload(packet_type: i32, payload: &[u8]) {
    let view = cachedb_local::parse_view(packet_type, payload);
    let owned = cachedb_local::parse(packet_type, payload);
    assert_eq!(
        view.map(|v| v.to_owned()),
        owned,
        "cachedb parse_view and parse disagree"
    );
    if let Ok(packet) = owned {
        // Every field is required and nothing may follow, so re-encoding is exact.
        let module = cachedb_local::to_module_packet(&packet);
        let module = module.unwrap_or_else(|e| panic!("decoded {packet:?} cannot re-encode: {e}"));
        assert_eq!(module.packet_type, packet_type);
        assert!(
            module.payload == payload,
            "cachedb payload re-encodes differently"
        );
        assert_eq!(module.capability, cachedb_local::CAPABILITY);
    }
}

fn cachedb_chunk(chunk: &[u8]) {
    if let Ok(entry) = cachedb_local::parse_entry(chunk) {
        // Bytes after the four fields are ignored, so the re-encoding is a prefix.
        let data = cachedb_local::emit_entry(&entry.to_owned());
        let data = data.unwrap_or_else(|e| panic!("decoded {entry:?} cannot re-encode: {e}"));
        assert!(
            chunk.starts_with(&data),
            "cachedb chunk re-encodes differently"
        );
    }
}

fn reemit(packet: &[u8]) {
    let Ok(message) = wire::parse(packet) else {
        return;
    };
    match wire::emit_to_vec(&message) {
        Ok(bytes) => {
            assert!(bytes == packet, "emit(parse(p)) != p for {message:?}");
            assert_eq!(wire::buffer_len(&message), Ok(packet.len()));
        }
        Err(err) => {
            // docs/wire.md §2.2: parse takes up to 65535 bytes, emit stops at 65515.
            assert!(
                packet.len() > MAX_EMIT_LEN,
                "emit refused a parsed packet: {err}"
            );
            assert_eq!(err, EmitError::TooLarge { len: packet.len() });
        }
    }
}

fn emit_then_parse(g: &Generated) {
    let message = &g.message;
    let sized = wire::buffer_len(message);
    match wire::emit_to_vec(message) {
        Ok(bytes) => {
            assert!(
                g.within_limits,
                "emit accepted a message outside the wire limits: {message:?}"
            );
            assert_eq!(sized, Ok(bytes.len()), "buffer_len disagrees with emit");
            assert!(bytes.len() <= MAX_EMIT_LEN);
            assert_eq!(
                wire::parse(&bytes).as_ref(),
                Ok(message),
                "parse(emit(m)) != m"
            );
            let view = wire::parse_view(&bytes).map(|v| v.to_message());
            assert_eq!(view.as_ref(), Ok(message), "parse_view(emit(m)) != m");
            // A reused, dirty, larger buffer gets the same bytes; a short one is refused.
            let mut buf = vec![0xa5u8; bytes.len() + 7];
            assert_eq!(wire::emit(message, &mut buf), Ok(bytes.len()));
            assert!(
                buf[..bytes.len()] == bytes[..],
                "emit into a reused buffer differs"
            );
            let short = bytes.len() - 1;
            assert_eq!(
                wire::emit(message, &mut buf[..short]),
                Err(EmitError::BufferTooSmall {
                    needed: bytes.len(),
                    given: short
                })
            );
            check_cachedb_expectations(g);
        }
        Err(err) => {
            assert_eq!(sized, Err(err), "buffer_len and emit fail differently");
            if g.within_limits {
                assert!(
                    matches!(err, EmitError::TooLarge { len } if len > MAX_EMIT_LEN),
                    "emit refused a message inside the wire limits: {err}"
                );
            } else {
                assert!(
                    !matches!(err, EmitError::TooLarge { .. }),
                    "limit breach reported as {err}"
                );
            }
        }
    }
}

fn check_cachedb_expectations(g: &Generated) {
    let Message::Routed(Routed { body, .. }) = &g.message else {
        return;
    };
    match body {
        RoutedBody::Module(m) => {
            if let Some(packet) = &g.cachedb_packet {
                let decoded = cachedb_local::parse(m.packet_type, &m.payload);
                assert_eq!(decoded.as_ref(), Ok(packet), "cachedb packet roundtrip");
            }
        }
        RoutedBody::Sync(s) => {
            for (index, entry) in &g.cachedb_chunks {
                let decoded = cachedb_local::parse_entry(&s.chunks[*index]).map(|e| e.to_owned());
                assert_eq!(decoded.as_ref(), Ok(entry), "cachedb chunk roundtrip");
            }
        }
        _ => {}
    }
}

/// Pushes `chunk` piece by piece with [`Deframer::push`], draining complete packets with
/// [`Deframer::next_packet`] in between, as a runtime with a fixed read buffer would.
fn push_and_drain(
    d: &mut Deframer,
    mut chunk: &[u8],
    packets: &mut Vec<Vec<u8>>,
) -> Result<(), DecodeError> {
    loop {
        let taken = d.push(chunk);
        assert!(
            d.buffered() <= DEFRAMER_CAPACITY,
            "deframer holds {} bytes",
            d.buffered()
        );
        chunk = &chunk[taken..];
        let mut drained = 0;
        while let Some(packet) = d.next_packet()? {
            packets.push(packet.to_vec());
            drained += 1;
        }
        if chunk.is_empty() {
            return Ok(());
        }
        assert!(
            taken > 0 || drained > 0,
            "deframer stalled: full and no packet complete"
        );
    }
}

/// The error must be the one the broken frame calls for.
fn check_stream_error(stream: &Stream, err: DecodeError) {
    let Some(at) = stream.broken_at else {
        panic!("deframer failed with {err} on a stream without a broken frame");
    };
    let head = &stream.bytes[at..at + 8];
    let marker = [head[0], head[1], head[2], head[3]];
    if marker == MARKER {
        let declared = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        assert_eq!(err, DecodeError::BadLength { declared });
    } else {
        let DecodeError::BadMarker { found } = err else {
            panic!("bad marker {marker:02x?} reported as {err}");
        };
        // The deframer rejects a marker as soon as its first wrong byte is buffered
        // (deframer.rs), so it reports the bytes seen so far, zero-padded.
        let seen = (1..=4)
            .rev()
            .find(|&k| found[..k] == marker[..k] && found[k..].iter().all(|&b| b == 0));
        let seen =
            seen.unwrap_or_else(|| panic!("bad marker {marker:02x?} reported as {found:02x?}"));
        assert!(
            marker[..seen] != MARKER[..seen],
            "rejected before a wrong byte arrived"
        );
    }
}

/// Both errors are bad-marker errors for the same broken frame (checked by
/// [`check_stream_error`]); their `found` bytes may differ by how many marker bytes had
/// arrived when the deframer gave up — a property of the deframer's early rejection, not of
/// the stream. See `fuzz/regressions/README.md`.
fn same_marker_error(a: DecodeError, b: DecodeError) -> bool {
    matches!(
        (a, b),
        (DecodeError::BadMarker { .. }, DecodeError::BadMarker { .. })
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::vectors;

    #[test]
    fn captured_packets_pass_every_check() {
        let packets = vectors::read_dir(&vectors::default_dir()).unwrap();
        let all: Vec<&[u8]> = packets.iter().map(|p| p.bytes.as_slice()).collect();
        for p in &all {
            decode(p);
            roundtrip(p);
            assert_eq!(wire::emit_to_vec(&wire::parse(p).unwrap()).unwrap(), *p);
        }
        for style in 0..8 {
            deframe(&stream::encode_verbatim(style, u64::from(style), &all));
        }
    }

    #[test]
    fn committed_regressions_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        type Check = fn(&[u8]);
        let checks: [(&str, Check); 3] = [
            ("decode", decode),
            ("roundtrip", roundtrip),
            ("deframe", deframe),
        ];
        for (target, check) in checks {
            let Ok(dir) = fs::read_dir(root.join(target)) else {
                continue;
            };
            for entry in dir {
                check(&fs::read(entry.unwrap().path()).unwrap());
            }
        }
    }

    #[test]
    fn pseudo_random_inputs_pass_every_check() {
        // A fixed-seed smoke run, so `cargo test` exercises the checks without libFuzzer.
        let mut rng = Chunker::new(0, 0x00c0_ffee);
        for round in 0..3000 {
            let len = (rng.next_u64() % 600) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if round % 3 == 0 && data.len() >= 17 {
                data[..4].copy_from_slice(&MARKER);
            }
            decode(&data);
            roundtrip(&data);
            deframe(&data);
        }
    }

    #[test]
    fn marker_error_bytes_do_not_depend_on_chunking() {
        // The deframer judges the marker once its four bytes are buffered, so the error is
        // the same however the stream is cut.
        let stream = b"P4XY\x40\0\0\0";
        let mut whole = Deframer::new();
        let whole_err = whole.feed(stream, |_| {}).unwrap_err();
        let mut bytewise = Deframer::new();
        let mut bytewise_err = None;
        for b in stream.chunks(1) {
            if let Err(e) = bytewise.feed(b, |_| {}) {
                bytewise_err = Some(e);
                break;
            }
        }
        assert_eq!(whole_err, DecodeError::BadMarker { found: *b"P4XY" });
        assert_eq!(
            bytewise_err,
            Some(DecodeError::BadMarker { found: *b"P4XY" })
        );
    }
}
