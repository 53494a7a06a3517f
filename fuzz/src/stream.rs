//! The input format of the `deframe` target: a byte stream of frames plus a chunking.
//!
//! ```text
//! input  = style:u8  seed:u64le  frame*
//! frame  = tag:u8 ...            (tag % 8 selects the kind)
//!   0..=2  verbatim  len:u16le body[len]   frame = P4CK, 8 + len (zero-padded to 17), body;
//!                                          len is capped at 65527
//!   3      filler    len:u16le fill:u8     frame of max(len, 17) bytes
//!   4      maximum   fill:u8               frame of 65535 bytes
//!   5      message   len:u16le bytes[len]  a generated message, emitted (skipped if refused)
//!   6      broken    how:u8 b0 b1 b2 b3    a bad marker (how even) or a bad length (odd):
//!                                          the stream is unusable from here on
//!   7      cut       len:u16le body[len]   a frame declaring more bytes than follow; ends
//!                                          the stream
//! ```
//!
//! A missing byte reads as 0, so every input is a valid description. The chunking comes
//! from `style` and a small PRNG seeded with `seed`; see [`Chunker`]. [`encode_verbatim`]
//! writes the description of a list of real packets (for seed corpora).

use arbitrary::Unstructured;
use clusterer_proto::wire::{self, MARKER, MAX_PACKET_LEN, MIN_PACKET_LEN};

use crate::generate;

/// Most stream bytes one input may describe (room for several maximum-size frames); keeps
/// each execution fast.
pub const MAX_STREAM_LEN: usize = 1 << 18;
/// Most chunks a stream is cut into; past this the rest goes in chunks of 1..=70000 bytes.
pub const MAX_CHUNKS: usize = 2048;
/// Most frames one input may describe.
pub const MAX_FRAMES: usize = 256;

/// Tag of a verbatim frame.
pub const TAG_VERBATIM: u8 = 0;
/// Tag of a filler frame.
pub const TAG_FILLER: u8 = 3;
/// Tag of a maximum-size frame.
pub const TAG_MAXIMUM: u8 = 4;
/// Tag of a generated-message frame.
pub const TAG_MESSAGE: u8 = 5;
/// Tag of a broken frame.
pub const TAG_BROKEN: u8 = 6;
/// Tag of a cut frame.
pub const TAG_CUT: u8 = 7;

/// The stream an input describes and what a correct deframer must make of it.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// How the stream is cut into chunks.
    pub style: u8,
    /// Seed of the chunk-size PRNG.
    pub seed: u64,
    /// All the bytes.
    pub bytes: Vec<u8>,
    /// Start offset and length of every complete frame before the first broken one.
    pub frames: Vec<(usize, usize)>,
    /// Offset of the broken frame, if the input has one.
    pub broken_at: Option<usize>,
}

impl Stream {
    /// The expected packets, in order.
    pub fn expected_packets(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.frames
            .iter()
            .map(|&(at, len)| &self.bytes[at..at + len])
    }
}

/// Reads the stream description in `data`.
pub fn decode(data: &[u8]) -> Stream {
    let mut r = Reader(data);
    let mut s = Stream {
        style: r.u8(),
        seed: r.u64(),
        ..Stream::default()
    };
    let mut described = 0;
    while !r.0.is_empty() && described < MAX_FRAMES && s.bytes.len() < MAX_STREAM_LEN {
        described += 1;
        let at = s.bytes.len();
        match r.u8() % 8 {
            TAG_FILLER => {
                let len = usize::from(r.u16()).max(MIN_PACKET_LEN);
                let fill = r.u8();
                push_frame(&mut s, len, |b| b.resize(at + len, fill));
            }
            TAG_MAXIMUM => {
                let fill = r.u8();
                push_frame(&mut s, MAX_PACKET_LEN, |b| {
                    b.resize(at + MAX_PACKET_LEN, fill)
                });
            }
            TAG_MESSAGE => {
                let len = usize::from(r.u16());
                let bytes = r.take(len);
                let mut u = Unstructured::new(bytes);
                let Ok(generated) = generate::message(&mut u) else {
                    continue;
                };
                let Ok(packet) = wire::emit_to_vec(&generated.message) else {
                    continue;
                };
                let len = packet.len();
                if s.broken_at.is_none() {
                    s.frames.push((at, len));
                }
                s.bytes.extend_from_slice(&packet);
            }
            TAG_BROKEN => {
                let how = r.u8();
                let mut head = [0u8; 8];
                let given = r.take(4);
                head[..given.len()].copy_from_slice(given);
                if how % 2 == 0 {
                    // A marker that differs from P4CK somewhere in its four bytes.
                    if head[..4] == MARKER {
                        head[usize::from(how / 2 % 4)] ^= 0x20;
                    }
                    head[4..].copy_from_slice(&64u32.to_le_bytes());
                } else {
                    // A good marker and a length outside 17..=65535.
                    let declared = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                    let declared = if !(17..=65535).contains(&declared) {
                        declared
                    } else if how & 2 == 0 {
                        declared % 17
                    } else {
                        declared | 0x0001_0000
                    };
                    head[..4].copy_from_slice(&MARKER);
                    head[4..].copy_from_slice(&declared.to_le_bytes());
                }
                s.broken_at.get_or_insert(at);
                s.bytes.extend_from_slice(&head);
            }
            TAG_CUT => {
                let len = usize::from(r.u16()).min(MAX_PACKET_LEN - 9);
                let body = r.take(len);
                // Declare at least one byte more than will ever arrive.
                let declared = (8 + body.len() + 1).max(MIN_PACKET_LEN);
                s.bytes.extend_from_slice(&MARKER);
                s.bytes.extend_from_slice(&(declared as u32).to_le_bytes());
                s.bytes.extend_from_slice(body);
                break;
            }
            _ => {
                let len = usize::from(r.u16()).min(MAX_PACKET_LEN - 8);
                let body = r.take(len);
                let len = (8 + body.len()).max(MIN_PACKET_LEN);
                push_frame(&mut s, len, |b| {
                    b.extend_from_slice(body);
                    b.resize(at + len, 0);
                });
            }
        }
    }
    s
}

/// Appends a frame of `len` bytes whose body `fill_body` writes after the 8-byte start.
fn push_frame(s: &mut Stream, len: usize, fill_body: impl FnOnce(&mut Vec<u8>)) {
    let at = s.bytes.len();
    s.bytes.extend_from_slice(&MARKER);
    s.bytes.extend_from_slice(&(len as u32).to_le_bytes());
    fill_body(&mut s.bytes);
    debug_assert_eq!(s.bytes.len(), at + len);
    if s.broken_at.is_none() {
        s.frames.push((at, len));
    }
}

/// Writes a description of `packets` as verbatim frames (each packet's first 8 bytes are
/// rebuilt by [`decode`], the rest is copied), with the given chunking.
pub fn encode_verbatim(style: u8, seed: u64, packets: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![style];
    out.extend_from_slice(&seed.to_le_bytes());
    for packet in packets {
        let body = packet.get(8..).unwrap_or_default();
        let Ok(len) = u16::try_from(body.len()) else {
            continue;
        };
        out.push(TAG_VERBATIM);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Cuts a stream into chunks, as the `style` byte says:
/// 0 one chunk, 1 single bytes, 2 sizes 1..=16, 3 sizes 1..=1500, 4 sizes 1..=70000,
/// 5 cuts at frame boundaries shifted by −8..=8 bytes, 6 and 7 a mix of all of these; at
/// most [`MAX_CHUNKS`] chunks of the chosen style.
#[derive(Clone, Debug)]
pub struct Chunker {
    style: u8,
    state: u64,
}

impl Chunker {
    /// A chunker for a stream description.
    pub fn new(style: u8, seed: u64) -> Self {
        Self {
            style: style % 8,
            state: seed,
        }
    }

    /// The next pseudo-random number (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// The chunk boundaries (end offsets, strictly increasing, the last equal to the length).
    pub fn cuts(&mut self, stream: &Stream) -> Vec<usize> {
        let total = stream.bytes.len();
        let mut cuts = Vec::new();
        let mut pos = 0;
        let boundaries: Vec<usize> = stream.frames.iter().map(|&(at, len)| at + len).collect();
        let mut next_boundary = 0;
        while pos < total {
            let style = match self.style {
                _ if cuts.len() >= MAX_CHUNKS => 4,
                6.. => self.below(6) as u8,
                style => style,
            };
            let size = match style {
                0 => total - pos,
                1 => 1,
                2 => 1 + self.below(16),
                3 => 1 + self.below(1500),
                4 => 1 + self.below(70_000),
                _ => {
                    while boundaries.get(next_boundary).is_some_and(|&b| b <= pos) {
                        next_boundary += 1;
                    }
                    let target = boundaries.get(next_boundary).copied().unwrap_or(total);
                    let shifted = (target + self.below(17)).saturating_sub(8);
                    shifted.saturating_sub(pos).max(1)
                }
            };
            pos = (pos + size).min(total);
            cuts.push(pos);
        }
        cuts
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let got = self.take(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }
}
