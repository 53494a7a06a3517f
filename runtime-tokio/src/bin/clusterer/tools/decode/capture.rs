//! Capture files: classic pcap and pcapng records, link layers down to TCP, and the
//! per-direction TCP reassembly that feeds one [`Deframer`] per stream direction.
//!
//! A stream direction is `src ip:port → dst ip:port`. Its bytes are put in order by TCP
//! sequence number:
//!
//! * bytes already delivered (retransmissions, keep-alive probes) are dropped;
//! * data ahead of the next expected byte is held, at most [`MAX_PENDING_BYTES`] bytes in
//!   [`MAX_PENDING_SEGMENTS`] segments per direction; past that, or at the end of the
//!   capture, the missing bytes are reported as a gap and the stream resumes at the next
//!   `P4CK` marker of the held data;
//! * a SYN starts the direction afresh (new deframer, sequence from the SYN);
//! * a direction whose SYN was not captured starts at its first data byte and skips to the
//!   first `P4CK` marker (reported only if bytes had to be skipped);
//! * a framing error (bad marker or length) is reported once and the rest of the direction
//!   is skipped, as OpenSIPS closes the connection; other directions go on.
//!
//! Time, source and destination of a packet are those of the frame that completed it.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use clusterer_proto::Deframer;
use clusterer_proto::wire::MARKER;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::{Endianness, TsResolution};

use super::{CaptureStats, Error, FrameInfo, Origin, ProblemKind, Sink, Timestamp};

/// Most out-of-order bytes held per stream direction before the hole is declared a gap.
pub(crate) const MAX_PENDING_BYTES: usize = 1 << 20;
/// Most out-of-order segments held per stream direction.
pub(crate) const MAX_PENDING_SEGMENTS: usize = 1024;

/// The two capture file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaptureKind {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Reads a whole capture, reassembles its TCP streams and hands every BIN packet and every
/// problem to `sink`. A capture damaged after its header is reported as a problem, the data
/// read so far is still decoded.
pub(crate) fn decode_capture<R: Read>(
    reader: R,
    kind: CaptureKind,
    sink: &mut dyn Sink,
) -> Result<CaptureStats, Error> {
    let mut streams = Streams::default();
    let mut stats = CaptureStats::default();
    let damaged = match kind {
        CaptureKind::Pcap => read_pcap(reader, &mut streams, &mut stats, sink)?,
        CaptureKind::PcapNg => read_pcapng(reader, &mut streams, &mut stats, sink)?,
    };
    if let Some(message) = damaged {
        sink.problem(
            &Origin::Record(stats.frames + 1),
            ProblemKind::Capture,
            &message,
        )
        .map_err(Error::Output)?;
    }
    streams.finish(sink).map_err(Error::Output)?;
    stats.tcp_streams = streams.connections.len() as u64;
    Ok(stats)
}

/// Reads classic pcap records. Returns the reason the file stopped early, if it did.
fn read_pcap<R: Read>(
    reader: R,
    streams: &mut Streams,
    stats: &mut CaptureStats,
    sink: &mut dyn Sink,
) -> Result<Option<String>, Error> {
    let mut pcap = PcapReader::new(reader).map_err(|e| Error::Capture(e.to_string()))?;
    let header = pcap.header();
    let link = header.datalink;
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    // Raw records: lengths are checked here leniently (a record longer than the snap length
    // is still read), so only a truncated or unreadable file stops the loop.
    while let Some(record) = pcap.next_raw_packet() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                return Ok(Some(format!(
                    "capture damaged after frame {}: {e}",
                    stats.frames
                )));
            }
        };
        stats.frames += 1;
        let (mut secs, frac) = (u64::from(record.ts_sec), u64::from(record.ts_frac));
        let per_second = if nanos { 1_000_000_000 } else { 1_000_000 };
        secs += frac / per_second;
        let sub = frac % per_second;
        let nanos_part = if nanos { sub } else { sub * 1000 };
        let time = Timestamp {
            secs,
            nanos: u32::try_from(nanos_part).unwrap_or(0),
            digits: if nanos { 9 } else { 6 },
        };
        let number = stats.frames;
        streams
            .frame(stats, link, &record.data, number, Some(time), sink)
            .map_err(Error::Output)?;
    }
    Ok(None)
}

/// Reads pcapng blocks (enhanced, simple and obsolete packet blocks). Returns the reason the
/// file stopped early, if it did.
fn read_pcapng<R: Read>(
    reader: R,
    streams: &mut Streams,
    stats: &mut CaptureStats,
    sink: &mut dyn Sink,
) -> Result<Option<String>, Error> {
    const PACKET_BLOCK: u32 = 2;
    const SIMPLE_PACKET_BLOCK: u32 = 3;
    const ENHANCED_PACKET_BLOCK: u32 = 6;
    let mut pcapng = PcapNgReader::new(reader).map_err(|e| Error::Capture(e.to_string()))?;
    loop {
        // Raw blocks: only the block framing is checked, packet blocks are read here so a
        // bad option does not stop the file.
        let (block_type, body) = match pcapng.next_raw_block() {
            None => return Ok(None),
            Some(Ok(raw)) => (raw.type_, raw.body.into_owned()),
            Some(Err(e)) => {
                return Ok(Some(format!(
                    "capture damaged after frame {}: {e}",
                    stats.frames
                )));
            }
        };
        let big = pcapng.section().endianness == Endianness::Big;
        let record = match block_type {
            ENHANCED_PACKET_BLOCK => enhanced_packet(&body, big),
            PACKET_BLOCK => obsolete_packet(&body, big),
            SIMPLE_PACKET_BLOCK => body.get(4..).map(|data| (0, None, data)),
            _ => continue,
        };
        stats.frames += 1;
        let Some((interface, ticks, data)) = record else {
            stats.skipped_frames += 1;
            continue;
        };
        let Some(idb) = pcapng.interfaces().get(interface as usize) else {
            stats.skipped_frames += 1;
            continue;
        };
        let mut resolution = 6;
        let mut offset = 0;
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(r) => resolution = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => offset = *o,
                _ => {}
            }
        }
        let time = ticks.map(|t| pcapng_time(t, resolution, offset));
        let link = idb.linktype;
        let number = stats.frames;
        streams
            .frame(stats, link, data, number, time, sink)
            .map_err(Error::Output)?;
    }
}

fn read_u32(bytes: &[u8], at: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn read_u16(bytes: &[u8], at: usize, big: bool) -> Option<u16> {
    let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// Interface, raw timestamp ticks and captured data of an enhanced packet block.
fn enhanced_packet(body: &[u8], big: bool) -> Option<(u32, Option<u64>, &[u8])> {
    let interface = read_u32(body, 0, big)?;
    let high = u64::from(read_u32(body, 4, big)?);
    let low = u64::from(read_u32(body, 8, big)?);
    let captured = read_u32(body, 12, big)? as usize;
    let data = body.get(20..20usize.checked_add(captured)?)?;
    Some((interface, Some((high << 32) | low), data))
}

/// Interface, raw timestamp ticks and captured data of an (obsolete) packet block.
fn obsolete_packet(body: &[u8], big: bool) -> Option<(u32, Option<u64>, &[u8])> {
    let interface = u32::from(read_u16(body, 0, big)?);
    let high = u64::from(read_u32(body, 4, big)?);
    let low = u64::from(read_u32(body, 8, big)?);
    let captured = read_u32(body, 12, big)? as usize;
    let data = body.get(20..20usize.checked_add(captured)?)?;
    Some((interface, Some((high << 32) | low), data))
}

/// Converts pcapng timestamp ticks with the interface's `if_tsresol` (default 6: µs; high
/// bit set: a power of two) and `if_tsoffset` (seconds).
fn pcapng_time(ticks: u64, resolution: u8, offset: u64) -> Timestamp {
    let exponent = u32::from(resolution & 0x7f);
    let (per_second, digits) = if resolution & 0x80 == 0 {
        (
            10u64.checked_pow(exponent),
            u8::try_from(exponent.min(9)).unwrap_or(9),
        )
    } else {
        (2u64.checked_pow(exponent), 9)
    };
    let per_second = per_second.filter(|&p| p > 0).unwrap_or(1_000_000);
    let secs = (ticks / per_second).saturating_add(offset);
    let frac = u128::from(ticks % per_second) * 1_000_000_000 / u128::from(per_second);
    Timestamp {
        secs,
        nanos: u32::try_from(frac).unwrap_or(0),
        digits,
    }
}

/// One TCP segment of a frame.
#[derive(Debug)]
struct Segment<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    payload: &'a [u8],
}

/// Slices a frame of the given link type down to its TCP segment; `None` for anything else
/// (non-IP, non-TCP, IP fragments, malformed or unsupported link types).
fn tcp_segment(link: DataLink, data: &[u8]) -> Option<Segment<'_>> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::LINUX_SLL2 => {
            // SLL2: protocol type (2 bytes, big endian) first, 20-byte header.
            let protocol = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            SlicedPacket::from_ether_type(EtherType(protocol), data.get(20..)?)
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then IP.
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(data.get(4..)?),
        _ => return None,
    }
    .ok()?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Arp(_) => return None,
    };
    let TransportSlice::Tcp(tcp) = sliced.transport? else {
        return None;
    };
    Some(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        payload: tcp.payload(),
    })
}

/// All stream directions of a capture, in the order they were first seen.
#[derive(Default)]
struct Streams {
    directions: Vec<Direction>,
    index: HashMap<(SocketAddr, SocketAddr), usize>,
    connections: HashSet<(SocketAddr, SocketAddr)>,
}

impl Streams {
    /// Handles one capture record.
    fn frame(
        &mut self,
        stats: &mut CaptureStats,
        link: DataLink,
        data: &[u8],
        number: u64,
        time: Option<Timestamp>,
        sink: &mut dyn Sink,
    ) -> std::io::Result<()> {
        let Some(segment) = tcp_segment(link, data) else {
            stats.skipped_frames += 1;
            return Ok(());
        };
        let pair = if segment.src <= segment.dst {
            (segment.src, segment.dst)
        } else {
            (segment.dst, segment.src)
        };
        self.connections.insert(pair);
        let key = (segment.src, segment.dst);
        let at = *self.index.entry(key).or_insert_with(|| {
            self.directions.push(Direction::new());
            self.directions.len() - 1
        });
        let frame = FrameInfo {
            number,
            time,
            src: segment.src,
            dst: segment.dst,
        };
        self.directions[at].segment(&segment, frame, sink)
    }

    /// Ends every direction: held data behind a hole is delivered after a gap report, and a
    /// packet left incomplete is reported.
    fn finish(&mut self, sink: &mut dyn Sink) -> std::io::Result<()> {
        for direction in &mut self.directions {
            direction.finish(sink)?;
        }
        Ok(())
    }
}

/// Where a direction is in its byte stream.
#[derive(Debug)]
enum Mode {
    /// At a packet boundary or inside a packet: bytes go to the deframer.
    Framing,
    /// Looking for the next `P4CK` marker (start without SYN, or after a gap).
    Seeking {
        /// Up to 3 bytes kept from the previous data: a marker may span two segments.
        carry: Vec<u8>,
        /// Bytes dropped so far while seeking.
        skipped: usize,
    },
    /// A framing error happened: everything else is dropped until a new SYN.
    Failed,
}

/// One stream direction: sequence tracking, held out-of-order segments and the deframer.
#[derive(Debug)]
struct Direction {
    /// Sequence number of the SYN that started the direction, if seen.
    isn: Option<u32>,
    /// Sequence number of the next byte to deliver.
    next_seq: Option<u32>,
    /// Out-of-order segments: (sequence number, bytes).
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    mode: Mode,
    deframer: Deframer,
    /// The frame of the last segment, for end-of-capture reports.
    last: Option<FrameInfo>,
}

/// `a - b` in sequence space (positive: `a` is after `b`).
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Direction {
    fn new() -> Self {
        Self {
            isn: None,
            next_seq: None,
            pending: Vec::new(),
            pending_bytes: 0,
            mode: Mode::Seeking {
                carry: Vec::new(),
                skipped: 0,
            },
            deframer: Deframer::new(),
            last: None,
        }
    }

    fn segment(
        &mut self,
        seg: &Segment<'_>,
        frame: FrameInfo,
        sink: &mut dyn Sink,
    ) -> std::io::Result<()> {
        let mut data_seq = seg.seq;
        if seg.syn {
            data_seq = seg.seq.wrapping_add(1);
            if self.isn != Some(seg.seq) {
                // A new connection on this address pair (or the first SYN seen).
                if let Some(last) = self.last.take() {
                    self.end_of_stream(&last, sink)?;
                }
                *self = Self::new();
                self.isn = Some(seg.seq);
                self.next_seq = Some(data_seq);
                self.mode = Mode::Framing;
            }
        }
        self.last = Some(frame.clone());
        if seg.payload.is_empty() || matches!(self.mode, Mode::Failed) {
            return Ok(());
        }
        let origin = Origin::Frame(frame);
        let next = *self.next_seq.get_or_insert(data_seq);
        let ahead = seq_diff(data_seq, next);
        if ahead <= 0 {
            let old = usize::try_from(-ahead).unwrap_or(usize::MAX);
            if old < seg.payload.len() {
                self.deliver(&seg.payload[old..], &origin, sink)?;
                self.drain_pending(&origin, sink)?;
            }
            return Ok(());
        }
        // Ahead of the next expected byte: hold it (a retransmitted copy replaces nothing).
        if !self
            .pending
            .iter()
            .any(|(s, d)| *s == data_seq && d.len() >= seg.payload.len())
        {
            self.pending.push((data_seq, seg.payload.to_vec()));
            self.pending_bytes += seg.payload.len();
        }
        if self.pending_bytes > MAX_PENDING_BYTES || self.pending.len() > MAX_PENDING_SEGMENTS {
            self.skip_gaps(
                &origin,
                |d| d.pending_bytes > MAX_PENDING_BYTES || d.pending.len() > MAX_PENDING_SEGMENTS,
                sink,
            )?;
        }
        Ok(())
    }

    /// Skips gaps while `more` holds and held data remains.
    fn skip_gaps(
        &mut self,
        origin: &Origin,
        more: impl Fn(&Self) -> bool,
        sink: &mut dyn Sink,
    ) -> std::io::Result<()> {
        while !self.pending.is_empty() && more(self) {
            let before = self.pending.len();
            self.skip_gap(origin, sink)?;
            if self.pending.len() >= before {
                // No position to jump from (cannot happen once data was seen): drop the rest.
                self.pending.clear();
            }
        }
        self.pending_bytes = self.pending.iter().map(|(_, d)| d.len()).sum();
        Ok(())
    }

    /// Delivers held segments that have become contiguous.
    fn drain_pending(&mut self, origin: &Origin, sink: &mut dyn Sink) -> std::io::Result<()> {
        while let Some(next) = self.next_seq {
            let Some(i) = self
                .pending
                .iter()
                .position(|(s, _)| seq_diff(*s, next) <= 0)
            else {
                return Ok(());
            };
            let (seq, data) = self.pending.swap_remove(i);
            self.pending_bytes = self.pending_bytes.saturating_sub(data.len());
            let old = usize::try_from(seq_diff(next, seq)).unwrap_or(usize::MAX);
            if old < data.len() {
                self.deliver(&data[old..], origin, sink)?;
            }
        }
        Ok(())
    }

    /// Jumps over the hole before the earliest held segment: reports the gap, drops any
    /// partial packet and seeks the next marker.
    fn skip_gap(&mut self, origin: &Origin, sink: &mut dyn Sink) -> std::io::Result<()> {
        let Some(next) = self.next_seq else {
            return Ok(());
        };
        let Some(&(seq, _)) = self.pending.iter().min_by_key(|(s, _)| seq_diff(*s, next)) else {
            return Ok(());
        };
        let missing = seq_diff(seq, next);
        if !matches!(self.mode, Mode::Failed) {
            let partial = self.deframer.buffered();
            let mut message = format!("{missing} bytes missing from the capture");
            if partial > 0 {
                message.push_str(&format!(" (a packet cut after {partial} bytes is lost)"));
            }
            message.push_str("; resuming at the next marker");
            sink.problem(origin, ProblemKind::Gap, &message)?;
            self.mode = Mode::Seeking {
                carry: Vec::new(),
                skipped: 0,
            };
            self.deframer = Deframer::new();
        }
        self.next_seq = Some(seq);
        self.drain_pending(origin, sink)
    }

    /// Takes in-order bytes.
    fn deliver(
        &mut self,
        data: &[u8],
        origin: &Origin,
        sink: &mut dyn Sink,
    ) -> std::io::Result<()> {
        if let Some(next) = self.next_seq.as_mut() {
            *next = next.wrapping_add(data.len() as u32);
        }
        match &mut self.mode {
            Mode::Failed => Ok(()),
            Mode::Framing => self.frame_bytes(data, origin, sink),
            Mode::Seeking { carry, skipped } => {
                let mut joined = std::mem::take(carry);
                joined.extend_from_slice(data);
                match joined.windows(MARKER.len()).position(|w| w == MARKER) {
                    Some(at) => {
                        let dropped = *skipped + at;
                        self.mode = Mode::Framing;
                        if dropped > 0 {
                            let message =
                                format!("{dropped} bytes skipped before the first P4CK marker");
                            sink.problem(origin, ProblemKind::Resync, &message)?;
                        }
                        self.frame_bytes(&joined[at..], origin, sink)
                    }
                    None => {
                        let keep = joined.len().min(MARKER.len() - 1);
                        *skipped += joined.len() - keep;
                        *carry = joined.split_off(joined.len() - keep);
                        Ok(())
                    }
                }
            }
        }
    }

    /// Feeds the deframer and hands out the packets it completes.
    fn frame_bytes(
        &mut self,
        mut data: &[u8],
        origin: &Origin,
        sink: &mut dyn Sink,
    ) -> std::io::Result<()> {
        loop {
            let taken = self.deframer.push(data);
            data = &data[taken..];
            loop {
                match self.deframer.next_packet() {
                    Ok(Some(packet)) => sink.packet(origin, packet)?,
                    Ok(None) => break,
                    Err(err) => {
                        self.mode = Mode::Failed;
                        self.deframer = Deframer::new();
                        let message =
                            format!("{err}; the rest of this stream direction is skipped");
                        return sink.problem(origin, ProblemKind::Framing, &message);
                    }
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    fn finish(&mut self, sink: &mut dyn Sink) -> std::io::Result<()> {
        match self.last.take() {
            Some(last) => self.end_of_stream(&last, sink),
            None => Ok(()),
        }
    }

    /// The direction ends (end of capture, or a new SYN): held data is delivered after a gap
    /// report, then an incomplete packet or a fruitless marker search is reported.
    fn end_of_stream(&mut self, last: &FrameInfo, sink: &mut dyn Sink) -> std::io::Result<()> {
        let origin = Origin::Frame(last.clone());
        self.skip_gaps(&origin, |_| true, sink)?;
        match &self.mode {
            Mode::Framing if self.deframer.buffered() > 0 => {
                let message = format!(
                    "stream ends inside a packet ({} bytes after the last complete one)",
                    self.deframer.buffered()
                );
                sink.problem(&origin, ProblemKind::Truncated, &message)
            }
            Mode::Seeking { carry, skipped } if skipped + carry.len() > 0 => {
                let message = format!("no P4CK marker in {} bytes", skipped + carry.len());
                sink.problem(&origin, ProblemKind::Resync, &message)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Records packets (as bytes) and problems (as kinds).
    #[derive(Default)]
    struct Collect {
        packets: Vec<Vec<u8>>,
        problems: Vec<ProblemKind>,
    }

    impl Sink for Collect {
        fn packet(&mut self, _: &Origin, bytes: &[u8]) -> std::io::Result<()> {
            self.packets.push(bytes.to_vec());
            Ok(())
        }
        fn problem(&mut self, _: &Origin, kind: ProblemKind, _: &str) -> std::io::Result<()> {
            self.problems.push(kind);
            Ok(())
        }
    }

    fn packet(fill: u8, len: usize) -> Vec<u8> {
        let mut p = vec![fill; len];
        p[..4].copy_from_slice(&MARKER);
        p[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        p
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn frame() -> FrameInfo {
        FrameInfo {
            number: 1,
            time: None,
            src: addr(1),
            dst: addr(2),
        }
    }

    fn seg(seq: u32, syn: bool, payload: &[u8]) -> Segment<'_> {
        Segment {
            src: addr(1),
            dst: addr(2),
            seq,
            syn,
            payload,
        }
    }

    fn run(segments: &[Segment<'_>]) -> Collect {
        let mut d = Direction::new();
        let mut out = Collect::default();
        for s in segments {
            d.segment(s, frame(), &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn retransmitted_and_overlapping_bytes_are_dropped() {
        let (a, b) = (packet(1, 20), packet(2, 30));
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let out = run(&[
            seg(99, true, &[]),
            seg(100, false, &stream[..25]),
            seg(100, false, &stream[..25]),
            seg(110, false, &stream[10..40]),
            seg(124, false, &stream[24..]),
        ]);
        assert_eq!(out.packets, vec![a, b]);
        assert!(out.problems.is_empty());
    }

    #[test]
    fn out_of_order_segments_are_put_back_in_order() {
        let (a, b) = (packet(1, 20), packet(2, 30));
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let out = run(&[
            seg(u32::MAX, true, &[]),
            seg(30, false, &stream[30..]),
            seg(10, false, &stream[10..30]),
            seg(0, false, &stream[..10]),
        ]);
        assert_eq!(out.packets, vec![a, b]);
        assert!(out.problems.is_empty());
    }

    #[test]
    fn a_hole_at_the_end_is_a_gap_and_the_stream_resumes_at_the_next_marker() {
        let (a, b, c) = (packet(1, 20), packet(2, 30), packet(3, 25));
        let out = run(&[
            seg(0, true, &[]),
            seg(1, false, &a),
            // b lost; c arrives after it.
            seg(51, false, &c),
        ]);
        assert_eq!(out.packets, vec![a, c]);
        assert_eq!(out.problems, vec![ProblemKind::Gap]);
        let _ = b;
    }

    #[test]
    fn too_much_held_data_forces_the_gap_early() {
        let a = packet(1, 1000);
        let mut segments = vec![seg(0, true, &[])];
        // Skip the first 1000 bytes; send more than the hold limit after them.
        let copies = MAX_PENDING_BYTES / 1000 + 2;
        let mut seq = 1001u32;
        for _ in 0..copies {
            segments.push(seg(seq, false, &a));
            seq += 1000;
        }
        let out = run(&segments);
        assert_eq!(out.problems, vec![ProblemKind::Gap]);
        assert_eq!(out.packets.len(), copies);
    }

    #[test]
    fn a_bad_marker_stops_the_direction_until_a_new_syn() {
        let a = packet(1, 20);
        let out = run(&[
            seg(0, true, &[]),
            seg(1, false, b"HELLO WORLD"),
            seg(12, false, &a),
            seg(5000, true, &[]),
            seg(5001, false, &a),
        ]);
        assert_eq!(out.packets, vec![a]);
        assert_eq!(out.problems, vec![ProblemKind::Framing]);
    }

    #[test]
    fn a_stream_picked_up_mid_way_seeks_the_first_marker() {
        let (a, b) = (packet(1, 20), packet(2, 30));
        let mut stream = a[5..].to_vec();
        stream.extend_from_slice(&b);
        // No SYN; the marker of b spans two segments.
        let split = 15 + 2;
        let out = run(&[
            seg(7, false, &stream[..split]),
            seg(7 + split as u32, false, &stream[split..]),
        ]);
        assert_eq!(out.packets, vec![b]);
        assert_eq!(out.problems, vec![ProblemKind::Resync]);
    }

    #[test]
    fn a_stream_ending_inside_a_packet_is_reported() {
        let a = packet(1, 20);
        let out = run(&[seg(0, true, &[]), seg(1, false, &a[..12])]);
        assert!(out.packets.is_empty());
        assert_eq!(out.problems, vec![ProblemKind::Truncated]);
    }

    #[test]
    fn every_supported_link_type_reaches_the_tcp_segment() {
        let ip4 = {
            let b = etherparse::PacketBuilder::ipv4([127, 0, 0, 2], [127, 0, 0, 1], 64)
                .tcp(40000, 5566, 7, 1000);
            let mut v = Vec::new();
            b.write(&mut v, b"P4CK").unwrap();
            v
        };
        let ip6 = {
            let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
            src[15] = 2;
            dst[15] = 1;
            let b = etherparse::PacketBuilder::ipv6(src, dst, 64).tcp(40000, 5566, 7, 1000);
            let mut v = Vec::new();
            b.write(&mut v, b"P4CK").unwrap();
            v
        };
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(&ip4);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ip4);
        let cases = [
            (DataLink::RAW, ip4.clone()),
            (DataLink::IPV4, ip4.clone()),
            (DataLink::IPV6, ip6.clone()),
            (DataLink::RAW, ip6),
            (DataLink::LINUX_SLL2, sll2),
            (DataLink::NULL, null.clone()),
            (DataLink::LOOP, null),
        ];
        for (link, frame) in cases {
            let seg = tcp_segment(link, &frame).unwrap_or_else(|| panic!("{link:?}"));
            assert_eq!(
                (seg.src.port(), seg.dst.port(), seg.seq),
                (40000, 5566, 7),
                "{link:?}"
            );
            assert_eq!(seg.payload, b"P4CK", "{link:?}");
        }
        assert!(tcp_segment(DataLink::IEEE802_11, &ip4).is_none());
        assert!(tcp_segment(DataLink::LINUX_SLL2, &[0x08]).is_none());
        assert!(tcp_segment(DataLink::NULL, &[2, 0]).is_none());
    }

    #[test]
    fn pcapng_time_follows_the_interface_resolution() {
        let t = pcapng_time(1_795_658_148_238_646, 6, 0);
        assert_eq!(t.to_string(), "1795658148.238646");
        let t = pcapng_time(1_500_000_001, 9, 10);
        assert_eq!(t.to_string(), "11.500000001");
        let t = pcapng_time(3, 0x81, 0);
        assert_eq!((t.secs, t.nanos), (1, 500_000_000));
        // Nonsense resolutions fall back to microseconds instead of failing.
        let t = pcapng_time(2_000_000, 200, 0);
        assert_eq!(t.secs, 2);
    }
}
