//! `clusterer decode`: the packet dissector for operators.
//!
//! Reads captured clusterer traffic and prints every BIN packet, decoded, one per line:
//!
//! * a capture file (classic pcap or pcapng, told apart by magic bytes): every TCP stream
//!   direction is reassembled by sequence number and cut into packets by its own
//!   [`Deframer`] ([`capture`]);
//! * hex text (`--hex`, or a file / standard input holding only hex digits and whitespace);
//! * a raw BIN byte stream (anything else).
//!
//! Each packet becomes a JSON object whose keys reproduce the `decoded` objects of the
//! captures in `vectors/opensips/bin/*.jsonl`, plus the context keys `frame`, `hex` and, with
//! `--reemit`, `reemit_hex` / `reemit_identical` ([`render`]); or a one-line text summary.
//!
//! Nothing here panics on input: undecodable packets, framing errors, TCP gaps, truncated
//! captures and non-TCP frames are reported (or skipped and counted) and decoding goes on.
//!
//! ```ignore
//! // The unit test `tests::module_example` runs this (binaries have no doctests).
//! use crate::tools::decode::{self, Format, Options};
//! // docs/wire.md §11.1: a PING, twice, as hex.
//! let ping = "5034434b2e00000001001200636c757374657265722d696e7465726e616c00000000010000000100000001000000";
//! let mut out = Vec::new();
//! let options = Options { format: Format::Text, reemit: false };
//! let summary = decode::decode_hex(&format!("{ping} {ping}"), &options, &mut out)?;
//! assert_eq!(summary.packets, 2);
//! assert_eq!(String::from_utf8(out)?.lines().next(), Some("@0 PING v1 cluster=1 src=1 req_node_list=1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod capture;
#[cfg(test)]
mod reader_tests;
pub(crate) mod render;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use clusterer_proto::Deframer;
use serde_json::{Map, Value};

use capture::CaptureKind;

/// The long help of `clusterer decode` (also the usage text for the README).
pub(crate) const LONG_ABOUT: &str = "\
Decode OpenSIPS 3.6 clusterer BIN traffic and print every packet, one per line.

INPUT is a capture file (classic pcap or pcapng, recognised by its magic bytes, not by its
name), a file of hex text or a file of raw BIN bytes. Without INPUT, or with `-`, standard
input is read the same way, so `tcpdump -U -w - tcp port 5566 | clusterer decode` works.
`--hex` decodes one hex string instead (whitespace and `0x` prefixes are ignored; it may hold
several packets back to back).

From a capture, TCP over IPv4/IPv6 is read from Ethernet, Linux cooked (SLL, SLL2), raw IP
and BSD loopback frames. Each TCP stream direction (src ip:port -> dst ip:port) is
reassembled by sequence number: retransmitted bytes are dropped, out-of-order data is held
(up to 1 MiB per direction), a SYN starts the stream afresh. Other frames are skipped and
counted.

--format json (default): one JSON object per packet. Its keys are exactly the fields of the
`decoded` objects in vectors/opensips/bin/*.jsonl (marker, total_len, version, capability,
type, type_name, cluster_id and src_node or trailer, then the body fields), plus:
  frame             where the packet was found: {number, time, src, dst} in a capture (the
                    frame that completed the packet; time in epoch seconds), {offset} in a
                    byte stream
  hex               the packet bytes
  reemit_hex, reemit_identical
                    with --reemit: the packet encoded again, and whether it is identical
A string field that is not UTF-8 is shown lossily, with the bytes in a sibling `<field>_hex`.
A packet that does not decode gives {frame, error, error_kind: \"decode\", hex}. Stream
problems give error_kind \"framing\" (bad marker or length: the rest of that stream
direction is skipped, as OpenSIPS closes the connection), \"gap\" (bytes missing from the
capture), \"resync\" (bytes skipped up to the first P4CK marker), \"truncated\" (a stream
ends inside a packet) or \"capture\" (the capture file is damaged).

--format text: one line per packet, e.g.
  1795658148.238646 127.0.0.2:53915 -> 127.0.0.1:5566 PING v1 cluster=1 src=2 req_node_list=1
and `ERROR ...` lines for problems.

At the end a summary goes to standard error: `decoded N packets, E errors, D re-emit
differences`, and for captures the frames read and skipped and the TCP streams seen.

Exit status: 0; 1 with --check when a packet failed to decode, a stream problem was found or
(with --reemit) a packet re-emitted differently; 2 when the input cannot be read.

Examples:
  clusterer decode vectors/opensips/pcap/01_startup.pcap | head -3
  clusterer decode --format text --reemit capture.pcapng
  clusterer decode --hex '5034434b 2e000000 ...'
  xxd -p packets.bin | clusterer decode";

/// Arguments of `clusterer decode`.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DecodeArgs {
    /// Capture (pcap/pcapng), hex text or raw BIN file; `-` or nothing reads standard input.
    #[arg(value_name = "INPUT", conflicts_with = "hex")]
    pub(crate) input: Option<PathBuf>,

    /// Decode this hex string (whitespace and `0x` prefixes ignored; packets back to back).
    #[arg(long, value_name = "HEX")]
    pub(crate) hex: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub(crate) format: Format,

    /// Encode every decoded packet again and show the bytes and whether they are identical.
    #[arg(long)]
    pub(crate) reemit: bool,

    /// Exit with status 1 if any packet or stream had an error or (with --reemit) any packet
    /// re-emitted differently.
    #[arg(long)]
    pub(crate) check: bool,
}

/// Output format of the dissector.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// One human-readable summary line per packet.
    Text,
}

/// How packets are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// Output format.
    pub(crate) format: Format,
    /// Encode every decoded packet again and print the result.
    pub(crate) reemit: bool,
}

/// What one run found. Its [`Display`](fmt::Display) is the final summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Packets that decoded.
    pub(crate) packets: u64,
    /// Packets that did not decode, module payloads that did not decode, and stream or
    /// capture problems.
    pub(crate) errors: u64,
    /// Decoded packets whose re-emitted bytes differ (or could not be emitted); with
    /// `reemit` only.
    pub(crate) reemit_differences: u64,
    /// Frame and stream counts, for capture input.
    pub(crate) capture: Option<CaptureStats>,
}

impl Summary {
    /// `true` when `--check` passes: no error, and no re-emit difference.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors == 0 && self.reemit_differences == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decoded {} packets, {} errors, {} re-emit differences",
            self.packets, self.errors, self.reemit_differences
        )?;
        if let Some(c) = &self.capture {
            write!(
                f,
                " ({} frames, {} skipped, {} TCP streams)",
                c.frames, c.skipped_frames, c.tcp_streams
            )?;
        }
        Ok(())
    }
}

/// Counts of a capture file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CaptureStats {
    /// Packet records read.
    pub(crate) frames: u64,
    /// Records that were not TCP over IP, or not parseable, or of an unsupported link type.
    pub(crate) skipped_frames: u64,
    /// TCP connections seen (distinct endpoint pairs).
    pub(crate) tcp_streams: u64,
}

/// Why a run could not go on. Problems inside the input (bad packets, stream errors, a
/// capture damaged after its header) are not errors: they are printed and counted in
/// [`Summary::errors`].
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Error {
    /// Reading the input failed.
    Input(io::Error),
    /// Writing the output failed (a closed pipe included).
    Output(io::Error),
    /// The hex text is not valid hex.
    Hex(HexError),
    /// The file starts like a capture but its header cannot be read.
    Capture(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => write!(f, "cannot read input: {e}"),
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Hex(e) => write!(f, "bad hex input: {e}"),
            Error::Capture(e) => write!(f, "unreadable capture: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Input(e) | Error::Output(e) => Some(e),
            Error::Hex(e) => Some(e),
            Error::Capture(_) => None,
        }
    }
}

/// Why hex text was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HexError {
    /// A character that is neither a hex digit, whitespace nor part of a `0x` prefix, at this
    /// byte offset of the text.
    BadCharacter {
        /// Byte offset in the text.
        offset: usize,
    },
    /// An odd number of hex digits: the last byte is incomplete.
    OddDigits {
        /// Number of digits found.
        digits: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::BadCharacter { offset } => {
                write!(f, "character at offset {offset} is not a hex digit")
            }
            HexError::OddDigits { digits } => {
                write!(
                    f,
                    "odd number of hex digits ({digits}): the last byte is incomplete"
                )
            }
        }
    }
}

impl std::error::Error for HexError {}

/// What kind of input a byte prefix announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputKind {
    /// Classic pcap (any byte order, micro- or nanosecond timestamps).
    Pcap,
    /// pcapng.
    PcapNg,
    /// Hex text (only hex digits, whitespace and `0x` prefixes).
    Hex,
    /// Raw BIN bytes.
    Raw,
}

/// Bytes [`detect_capture`] needs to recognise a capture.
pub(crate) const MAGIC_LEN: usize = 12;

/// Recognises a capture file from its first bytes (up to [`MAGIC_LEN`]): classic pcap by its
/// four magic numbers, pcapng by the section header block type and byte-order magic.
pub(crate) fn detect_capture(prefix: &[u8]) -> Option<InputKind> {
    const PCAP_MAGICS: [[u8; 4]; 4] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    let first = prefix.first_chunk::<4>()?;
    if PCAP_MAGICS.contains(first) {
        return Some(InputKind::Pcap);
    }
    if *first == [0x0a, 0x0d, 0x0d, 0x0a] {
        let byte_order = prefix.get(8..12)?;
        if byte_order == [0x1a, 0x2b, 0x3c, 0x4d] || byte_order == [0x4d, 0x3c, 0x2b, 0x1a] {
            return Some(InputKind::PcapNg);
        }
    }
    None
}

/// Tells how a whole input should be read: a capture, hex text, or raw BIN bytes.
pub(crate) fn detect(input: &[u8]) -> InputKind {
    if let Some(kind) = detect_capture(input) {
        return kind;
    }
    if looks_like_hex(input) {
        InputKind::Hex
    } else {
        InputKind::Raw
    }
}

/// Decodes hex text: hex digits, any ASCII whitespace between them, and an optional `0x` /
/// `0X` at the start of each whitespace-separated word.
///
/// # Errors
/// [`HexError::BadCharacter`] for anything else, [`HexError::OddDigits`] when the digits do
/// not make whole bytes.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let bytes = text.as_bytes();
    let mut digits = Vec::with_capacity(bytes.len());
    let mut offset = 0;
    while offset < bytes.len() {
        if bytes[offset].is_ascii_whitespace() {
            offset += 1;
            continue;
        }
        // Start of a word: an optional 0x prefix, then digits up to the next whitespace.
        if bytes[offset] == b'0' && matches!(bytes.get(offset + 1), Some(b'x' | b'X')) {
            offset += 2;
        }
        while offset < bytes.len() && !bytes[offset].is_ascii_whitespace() {
            let digit = hex_value(bytes[offset]).ok_or(HexError::BadCharacter { offset })?;
            digits.push(digit);
            offset += 1;
        }
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddDigits {
            digits: digits.len(),
        });
    }
    Ok(digits
        .chunks_exact(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect())
}

/// Lower-case hex of `bytes`, no separators.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes every packet of a hex string (see [`parse_hex`]) and writes them to `out`.
///
/// # Errors
/// [`Error::Hex`] for bad hex (nothing is written), [`Error::Output`] when writing fails.
pub(crate) fn decode_hex(
    text: &str,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, Error> {
    let bytes = parse_hex(text).map_err(Error::Hex)?;
    decode_stream(&bytes, options, out)
}

/// Decodes a raw BIN byte stream (packets back to back, as on one TCP connection) and
/// writes every packet to `out`. A framing error ends the stream, as in OpenSIPS.
///
/// # Errors
/// [`Error::Output`] when writing fails.
pub(crate) fn decode_stream(
    bytes: &[u8],
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, Error> {
    let mut printer = Printer::new(*options, out);
    stream_packets(bytes, &mut printer).map_err(Error::Output)?;
    Ok(printer.summary)
}

/// Decodes a whole input of any [`InputKind`] from `reader` and writes every packet to
/// `out`. A capture is read incrementally (so a live `tcpdump -w -` works); other input is
/// read to its end first to tell hex from raw bytes.
///
/// # Errors
/// [`Error::Input`] when reading fails, [`Error::Capture`] when a capture header is
/// unreadable, [`Error::Hex`] for hex text with an odd digit count, [`Error::Output`] when
/// writing fails.
pub(crate) fn decode_reader<R: Read>(
    mut reader: R,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, Error> {
    let mut prefix = Vec::with_capacity(MAGIC_LEN);
    (&mut reader)
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut prefix)
        .map_err(Error::Input)?;
    if let Some(kind) = detect_capture(&prefix) {
        let kind = if kind == InputKind::Pcap {
            CaptureKind::Pcap
        } else {
            CaptureKind::PcapNg
        };
        let mut printer = Printer::new(*options, out);
        let stats =
            capture::decode_capture(io::Cursor::new(prefix).chain(reader), kind, &mut printer)?;
        printer.summary.capture = Some(stats);
        return Ok(printer.summary);
    }
    let mut all = prefix;
    reader.read_to_end(&mut all).map_err(Error::Input)?;
    match detect(&all) {
        InputKind::Hex => {
            // `looks_like_hex` accepted only ASCII, so this is valid UTF-8.
            let text = String::from_utf8_lossy(&all);
            decode_hex(&text, options, out)
        }
        _ => decode_stream(&all, options, out),
    }
}

/// Decodes the file at `path` (`-` is standard input), like [`decode_reader`].
///
/// # Errors
/// As [`decode_reader`]; [`Error::Input`] also when the file cannot be opened.
pub(crate) fn decode_path(
    path: &Path,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, Error> {
    if path == Path::new("-") {
        return decode_reader(io::stdin().lock(), options, out);
    }
    let file = File::open(path).map_err(Error::Input)?;
    decode_reader(io::BufReader::new(file), options, out)
}

/// Runs `clusterer decode` with its command line arguments: prints packets to standard
/// output, the summary (or the fatal error) to standard error, and returns the exit status
/// (0; 1 for a failed `--check`; 2 when the input cannot be read or the output written).
///
/// When standard output is closed early (`| head`), decoding stops quietly with status 0.
pub(crate) fn run(args: &DecodeArgs) -> ExitCode {
    let options = Options {
        format: args.format,
        reemit: args.reemit,
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match (&args.hex, &args.input) {
        (Some(hex), _) => decode_hex(hex, &options, &mut out),
        (None, Some(path)) => decode_path(path, &options, &mut out),
        (None, None) => decode_reader(io::stdin().lock(), &options, &mut out),
    };
    let result = result.and_then(|summary| out.flush().map(|()| summary).map_err(Error::Output));
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            if args.check && !summary.is_clean() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let what = match (&args.hex, &args.input) {
                (None, Some(path)) if path != Path::new("-") => format!("{}: ", path.display()),
                _ => String::new(),
            };
            eprintln!("clusterer decode: {what}{e}");
            ExitCode::from(2)
        }
    }
}

/// Where a packet or a problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Byte offset in a hex or raw stream.
    Offset(usize),
    /// A frame of a capture, with its TCP endpoints.
    Frame(FrameInfo),
    /// A frame of a capture, when the problem is the capture file itself.
    Record(u64),
}

/// The capture frame that completed a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// 1-based number of the packet record (as Wireshark counts).
    pub(crate) number: u64,
    /// Capture time; simple pcapng packet blocks have none.
    pub(crate) time: Option<Timestamp>,
    /// TCP source.
    pub(crate) src: SocketAddr,
    /// TCP destination.
    pub(crate) dst: SocketAddr,
}

/// A capture timestamp, printed with the resolution the capture has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// Whole seconds since the epoch.
    pub(crate) secs: u64,
    /// Nanoseconds, below 1e9.
    pub(crate) nanos: u32,
    /// Fraction digits to print (0..=9): 6 for microsecond captures.
    pub(crate) digits: u8,
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits.min(9);
        if digits == 0 {
            return write!(f, "{}", self.secs);
        }
        let frac = self.nanos / 10u32.pow(9 - u32::from(digits));
        write!(
            f,
            "{}.{:0width$}",
            self.secs,
            frac,
            width = usize::from(digits)
        )
    }
}

/// Kinds of problems other than a packet that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    /// A packet did not decode.
    Decode,
    /// Bad marker or length: the rest of the stream direction is skipped.
    Framing,
    /// Bytes missing from the capture.
    Gap,
    /// Bytes skipped until the first marker.
    Resync,
    /// The stream ends inside a packet.
    Truncated,
    /// The capture file is damaged.
    Capture,
}

impl ProblemKind {
    fn name(self) -> &'static str {
        match self {
            ProblemKind::Decode => "decode",
            ProblemKind::Framing => "framing",
            ProblemKind::Gap => "gap",
            ProblemKind::Resync => "resync",
            ProblemKind::Truncated => "truncated",
            ProblemKind::Capture => "capture",
        }
    }
}

/// Receives the packets and problems found in the input.
pub(crate) trait Sink {
    /// One complete BIN packet.
    fn packet(&mut self, origin: &Origin, bytes: &[u8]) -> io::Result<()>;
    /// A problem that is not a packet.
    fn problem(&mut self, origin: &Origin, kind: ProblemKind, message: &str) -> io::Result<()>;
}

/// Decodes, renders and counts.
pub(crate) struct Printer<'w> {
    options: Options,
    out: &'w mut dyn Write,
    pub(crate) summary: Summary,
}

impl<'w> Printer<'w> {
    pub(crate) fn new(options: Options, out: &'w mut dyn Write) -> Self {
        Self {
            options,
            out,
            summary: Summary::default(),
        }
    }

    fn write_json(&mut self, object: Map<String, Value>) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, &Value::Object(object))?;
        self.out.write_all(b"\n")
    }
}

impl Sink for Printer<'_> {
    fn packet(&mut self, origin: &Origin, bytes: &[u8]) -> io::Result<()> {
        let decoded = match render::DecodedPacket::decode(bytes) {
            Ok(decoded) => decoded,
            Err(err) => {
                self.summary.errors += 1;
                return match self.options.format {
                    Format::Json => {
                        let mut object = render::origin_json(origin);
                        object.insert("error".into(), err.to_string().into());
                        object.insert("error_kind".into(), ProblemKind::Decode.name().into());
                        object.insert("hex".into(), to_hex(bytes).into());
                        self.write_json(object)
                    }
                    Format::Text => writeln!(
                        self.out,
                        "ERROR {} decode: {} hex={}",
                        render::origin_text(origin),
                        err,
                        to_hex(bytes)
                    ),
                };
            }
        };
        self.summary.packets += 1;
        self.summary.errors += decoded.payload_errors();
        let reemit = self
            .options
            .reemit
            .then(|| render::Reemit::of(&decoded.message, bytes));
        if reemit.as_ref().is_some_and(|r| !r.identical()) {
            self.summary.reemit_differences += 1;
        }
        match self.options.format {
            Format::Json => {
                let mut object = render::origin_json(origin);
                object.extend(decoded.to_json());
                object.insert("hex".into(), to_hex(bytes).into());
                if let Some(r) = &reemit {
                    r.add_json(&mut object);
                }
                self.write_json(object)
            }
            Format::Text => {
                writeln!(
                    self.out,
                    "{} {}",
                    render::origin_text(origin),
                    decoded.to_text()
                )?;
                if let Some(r) = &reemit {
                    writeln!(self.out, "    {}", r.to_text())?;
                }
                Ok(())
            }
        }
    }

    fn problem(&mut self, origin: &Origin, kind: ProblemKind, message: &str) -> io::Result<()> {
        self.summary.errors += 1;
        match self.options.format {
            Format::Json => {
                let mut object = render::origin_json(origin);
                object.insert("error".into(), message.into());
                object.insert("error_kind".into(), kind.name().into());
                self.write_json(object)
            }
            Format::Text => {
                writeln!(
                    self.out,
                    "ERROR {} {}: {}",
                    render::origin_text(origin),
                    kind.name(),
                    message
                )
            }
        }
    }
}

/// Cuts a byte stream into packets with one deframer and hands them to `sink`.
fn stream_packets(bytes: &[u8], sink: &mut dyn Sink) -> io::Result<()> {
    let mut deframer = Deframer::new();
    let mut rest = bytes;
    let mut offset = 0;
    loop {
        let taken = deframer.push(rest);
        rest = &rest[taken..];
        loop {
            match deframer.next_packet() {
                Ok(Some(packet)) => {
                    sink.packet(&Origin::Offset(offset), packet)?;
                    offset += packet.len();
                }
                Ok(None) => break,
                Err(err) => {
                    let message = format!("{err}; the rest of the stream is skipped");
                    return sink.problem(&Origin::Offset(offset), ProblemKind::Framing, &message);
                }
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    let left = deframer.buffered();
    if left > 0 {
        let message =
            format!("stream ends inside a packet ({left} bytes after the last complete one)");
        sink.problem(&Origin::Offset(offset), ProblemKind::Truncated, &message)?;
    }
    Ok(())
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `true` when every word is an optional `0x` and hex digits (the digit count is checked
/// later, so odd hex is reported as such rather than read as raw bytes).
fn looks_like_hex(input: &[u8]) -> bool {
    input.split(|b| b.is_ascii_whitespace()).all(|word| {
        let digits = match word {
            [b'0', b'x' | b'X', rest @ ..] => rest,
            _ => word,
        };
        digits.iter().all(u8::is_ascii_hexdigit)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_tolerates_whitespace_and_0x_prefixes() {
        assert_eq!(parse_hex(" 0x50 34\n43\t4B "), Ok(b"P4CK".to_vec()));
        assert_eq!(parse_hex("0X5034434b"), Ok(b"P4CK".to_vec()));
        assert_eq!(parse_hex(""), Ok(Vec::new()));
        assert_eq!(parse_hex("503"), Err(HexError::OddDigits { digits: 3 }));
        assert_eq!(
            parse_hex("50 zz"),
            Err(HexError::BadCharacter { offset: 3 })
        );
        assert_eq!(parse_hex("5x0"), Err(HexError::BadCharacter { offset: 1 }));
    }

    #[test]
    fn detection_tells_captures_hex_and_raw_apart() {
        assert_eq!(detect(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), InputKind::Pcap);
        assert_eq!(detect(&[0xa1, 0xb2, 0x3c, 0x4d]), InputKind::Pcap);
        let ng = [
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ];
        assert_eq!(detect(&ng), InputKind::PcapNg);
        // Line feeds and carriage returns alone are whitespace of hex text.
        assert_eq!(detect(b"\n\r\r\n50 34"), InputKind::Hex);
        assert_eq!(detect(b""), InputKind::Hex);
        assert_eq!(detect(b"P4CK\x11\0\0\0"), InputKind::Raw);
        assert_eq!(detect(b"0xzz"), InputKind::Raw);
    }

    #[test]
    fn timestamps_print_with_the_capture_resolution() {
        let t = Timestamp {
            secs: 1_795_658_148,
            nanos: 238_646_000,
            digits: 6,
        };
        assert_eq!(t.to_string(), "1795658148.238646");
        let t = Timestamp {
            secs: 5,
            nanos: 7,
            digits: 9,
        };
        assert_eq!(t.to_string(), "5.000000007");
        let t = Timestamp {
            secs: 5,
            nanos: 7,
            digits: 0,
        };
        assert_eq!(t.to_string(), "5");
    }

    #[test]
    fn hex_encoding_is_lower_case_without_separators() {
        assert_eq!(to_hex(b"P4\x00\xff"), "503400ff");
    }

    /// The example of the module documentation (a doctest while this was library code).
    #[test]
    fn module_example() -> Result<(), Box<dyn std::error::Error>> {
        use crate::tools::decode::{self, Format, Options};
        // docs/wire.md §11.1: a PING, twice, as hex.
        let ping = "5034434b2e00000001001200636c757374657265722d696e7465726e616c00000000010000000100000001000000";
        let mut out = Vec::new();
        let options = Options {
            format: Format::Text,
            reemit: false,
        };
        let summary = decode::decode_hex(&format!("{ping} {ping}"), &options, &mut out)?;
        assert_eq!(summary.packets, 2);
        assert_eq!(
            String::from_utf8(out)?.lines().next(),
            Some("@0 PING v1 cluster=1 src=1 req_node_list=1")
        );
        Ok(())
    }
}
