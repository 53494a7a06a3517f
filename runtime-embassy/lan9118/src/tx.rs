//! Sending a frame: TX command A and B, then the data words.
//!
//! Command A (datasheet "TX Command A"): bits 10:0 buffer size, bit 12 last segment, bit 13
//! first segment; no data offset, no end alignment. Command B: bits 31:16 a packet tag,
//! bits 10:0 the frame length. Then the frame as little-endian words, the last one padded
//! with zeros.

use crate::Bus;
use crate::regs::{TX_DATA_FIFO, TX_FIFO_INF, TX_STATUS_FIFO};

const FIRST_SEGMENT: u32 = 1 << 13;
const LAST_SEGMENT: u32 = 1 << 12;

/// TX data FIFO space free, from a `TX_FIFO_INF` value.
pub fn room(tx_fifo_inf: u32) -> usize {
    (tx_fifo_inf & 0xffff) as usize
}

/// TX status words waiting, from a `TX_FIFO_INF` value.
pub fn status_words_waiting(tx_fifo_inf: u32) -> u32 {
    (tx_fifo_inf >> 16) & 0xff
}

/// FIFO bytes a frame of `len` bytes takes: two command words and its padded data.
pub fn fifo_bytes(len: usize) -> usize {
    8 + len.div_ceil(4) * 4
}

/// Command A and B of a one-segment frame of `len` bytes with `tag`.
pub fn commands(len: usize, tag: u16) -> (u32, u32) {
    let len = (len & 0x7ff) as u32;
    (
        FIRST_SEGMENT | LAST_SEGMENT | len,
        (u32::from(tag) << 16) | len,
    )
}

/// The data words of `frame`, the last one zero-padded.
pub fn words(frame: &[u8]) -> impl Iterator<Item = u32> + '_ {
    frame.chunks(4).map(|chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        u32::from_le_bytes(word)
    })
}

/// Pushes `frame` into the TX data FIFO (the caller checked [`room`]).
pub fn write_frame(bus: &impl Bus, frame: &[u8], tag: u16) {
    let (a, b) = commands(frame.len(), tag);
    bus.write(TX_DATA_FIFO, a);
    bus.write(TX_DATA_FIFO, b);
    for word in words(frame) {
        bus.write(TX_DATA_FIFO, word);
    }
}

/// Pops every TX status word (the driver keeps no per-frame state to match them with).
pub fn drain_status(bus: &impl Bus) {
    for _ in 0..status_words_waiting(bus.read(TX_FIFO_INF)) {
        let _ = bus.read(TX_STATUS_FIFO);
    }
}
