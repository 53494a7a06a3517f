//! Receiving a frame: the status word, then the data words.
//!
//! RX status word (datasheet "RX Status Format"): bit 15 error summary, bits 29:16 the
//! frame length *including* its 4-byte CRC, bit 30 filter fail. The data follows in
//! `ceil(length / 4)` little-endian words (no offset, no end padding: `RX_CFG` is 0).

use crate::regs::{RX_DATA_FIFO, RX_STATUS_FIFO};
use crate::{Bus, MAX_FRAME};

/// The CRC at the end of every received frame.
const CRC_LEN: usize = 4;
/// The smallest frame the stack can use: an Ethernet header.
const MIN_FRAME: usize = 14;

/// Status words waiting, from an `RX_FIFO_INF` value.
pub fn status_words_waiting(rx_fifo_inf: u32) -> u32 {
    (rx_fifo_inf >> 16) & 0xff
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// The controller flagged an error (CRC, runt, too long, ...): the status word.
    Status(u32),
    /// The length is shorter than a header or longer than [`MAX_FRAME`]: the length.
    Length(usize),
}

/// The frame length without CRC from a status word, or why it is dropped.
pub fn frame_len(status: u32) -> Result<usize, RxError> {
    if status & (1 << 15) != 0 {
        return Err(RxError::Status(status));
    }
    let with_crc = ((status >> 16) & 0x3fff) as usize;
    let len = with_crc.saturating_sub(CRC_LEN);
    if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
        return Err(RxError::Length(len));
    }
    Ok(len)
}

/// Data words the controller holds for a frame whose status gives `with_crc` bytes.
pub fn data_words(with_crc: usize) -> usize {
    with_crc.div_ceil(4)
}

/// Pops the next frame into `buf`: its length, or why it was dropped (its data words are
/// read and discarded either way, so the FIFO stays in step).
///
/// # Errors
/// [`RxError`] for a frame the controller flagged or whose length is unusable.
pub fn read_frame(bus: &impl Bus, buf: &mut [u8; MAX_FRAME]) -> Result<usize, RxError> {
    let status = bus.read(RX_STATUS_FIFO);
    let words = data_words(((status >> 16) & 0x3fff) as usize);
    let result = frame_len(status);
    let keep = *result.as_ref().unwrap_or(&0);
    for i in 0..words {
        let word = bus.read(RX_DATA_FIFO).to_le_bytes();
        for (j, byte) in word.into_iter().enumerate() {
            let at = i * 4 + j;
            if at < keep {
                buf[at] = byte;
            }
        }
    }
    result
}
