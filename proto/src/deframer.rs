//! Bounded reassembly of BIN packets from a TCP byte stream (docs/wire.md §2.3, §2.4).
//!
//! Packets sit back to back on the stream; the `u32` length after the marker is the only
//! delimiter. A bad marker or a length outside 17..=65535 is fatal for the connection:
//! OpenSIPS closes it without trying to resynchronise, and so must the runtime. The deframer
//! never holds more than one maximum-size packet (65535 bytes).

use alloc::vec::Vec;

use crate::wire::{DecodeError, MARKER, MAX_PACKET_LEN, check_frame_start};

/// Most bytes a deframer buffers: one packet of the largest size a 3.6 peer may send.
pub const DEFRAMER_CAPACITY: usize = MAX_PACKET_LEN;

/// Splits a byte stream into complete packets.
///
/// ```
/// use clusterer_proto::Deframer;
/// let ping = b"P4CK\x2e\0\0\0\x01\0\x12\0clusterer-internal\0\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\0\0";
/// let mut stream = ping.to_vec();
/// stream.extend_from_slice(ping);
/// let mut deframer = Deframer::new();
/// let mut packets = 0;
/// // Any chunking of the stream gives the same packets.
/// for piece in stream.chunks(7) {
///     deframer.feed(piece, |packet| {
///         assert_eq!(packet, &ping[..]);
///         packets += 1;
///     })?;
/// }
/// assert_eq!(packets, 2);
/// # Ok::<(), clusterer_proto::wire::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    failed: Option<DecodeError>,
    /// Longest packet accepted (at most [`DEFRAMER_CAPACITY`]).
    limit: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::with_limit(DEFRAMER_CAPACITY)
    }
}

impl Deframer {
    /// An empty deframer for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty deframer that refuses packets longer than `limit` bytes (a memory bound
    /// for small devices; at most [`DEFRAMER_CAPACITY`]): such a packet is
    /// [`DecodeError::OverLimit`], fatal for the connection like a bad length.
    pub fn with_limit(limit: usize) -> Self {
        let limit = limit.min(DEFRAMER_CAPACITY);
        Deframer {
            // Reserved once when bounded: the buffer never grows past the limit, so a small
            // device's heap sees one block per connection instead of a growing one.
            buf: if limit < DEFRAMER_CAPACITY {
                Vec::with_capacity(limit)
            } else {
                Vec::new()
            },
            start: 0,
            failed: None,
            limit,
        }
    }

    /// Bytes received but not yet returned as a packet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Copies as much of `data` as fits (at most the limit, [`DEFRAMER_CAPACITY`] by
    /// default, buffered) and
    /// returns how many bytes were taken. Call [`next_packet`](Self::next_packet) until it
    /// returns `Ok(None)` before pushing the rest.
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.failed.is_some() {
            // The stream is dead; swallow input without keeping it.
            return data.len();
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let room = self.limit.saturating_sub(self.buf.len());
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        take
    }

    /// Returns the next complete packet, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`DecodeError::BadMarker`], [`DecodeError::BadLength`] or [`DecodeError::OverLimit`]:
    /// the stream is unusable, close
    /// the connection. The error repeats on every later call.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let avail = &self.buf[self.start..];
        // Judge the marker once its four bytes are here, so the error does not depend on
        // how the stream was cut.
        if let Some(&found) = avail.first_chunk::<4>()
            && found != MARKER
        {
            return Err(self.fail(DecodeError::BadMarker { found }));
        }
        let Some(start) = avail.first_chunk::<8>() else {
            return Ok(None);
        };
        let len = match check_frame_start(start) {
            Ok(len) if len > self.limit => {
                return Err(self.fail(DecodeError::OverLimit {
                    declared: len as u32,
                    limit: self.limit as u32,
                }));
            }
            Ok(len) => len,
            Err(err) => return Err(self.fail(err)),
        };
        if avail.len() < len {
            return Ok(None);
        }
        let begin = self.start;
        self.start += len;
        Ok(Some(&self.buf[begin..begin + len]))
    }

    /// Pushes all of `data`, calling `on_packet` for every packet it completes.
    ///
    /// # Errors
    /// As [`next_packet`](Self::next_packet); packets completed before the error were
    /// delivered.
    pub fn feed<F>(&mut self, mut data: &[u8], mut on_packet: F) -> Result<(), DecodeError>
    where
        F: FnMut(&[u8]),
    {
        loop {
            let taken = self.push(data);
            data = &data[taken..];
            while let Some(packet) = self.next_packet()? {
                on_packet(packet);
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.failed = Some(err);
        self.buf = Vec::new();
        self.start = 0;
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn packet(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[..4].copy_from_slice(&MARKER);
        p[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        p
    }

    #[test]
    fn partial_packet_waits_for_the_rest() {
        let p = packet(40);
        let mut d = Deframer::new();
        assert_eq!(d.push(&p[..39]), 39);
        assert_eq!(d.next_packet(), Ok(None));
        d.push(&p[39..]);
        assert_eq!(d.next_packet(), Ok(Some(&p[..])));
        assert_eq!(d.next_packet(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn back_to_back_packets_come_out_one_by_one() {
        let (a, b) = (packet(17), packet(30));
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let mut d = Deframer::new();
        d.push(&stream);
        assert_eq!(d.next_packet(), Ok(Some(&a[..])));
        assert_eq!(d.next_packet(), Ok(Some(&b[..])));
        assert_eq!(d.next_packet(), Ok(None));
    }

    #[test]
    fn bad_marker_is_a_connection_error_and_sticks() {
        let mut d = Deframer::new();
        d.push(b"P4X");
        assert_eq!(d.next_packet(), Ok(None), "judged once four bytes are here");
        d.push(b"Y");
        assert_eq!(
            d.next_packet(),
            Err(DecodeError::BadMarker { found: *b"P4XY" })
        );
        assert_eq!(d.push(&packet(17)), 17, "input swallowed");
        assert_eq!(d.buffered(), 0);
        assert!(d.next_packet().is_err());
    }

    #[test]
    fn lengths_outside_17_to_65535_are_connection_errors() {
        let mut d = Deframer::new();
        d.push(b"P4CK\x10\0\0\0");
        assert_eq!(
            d.next_packet(),
            Err(DecodeError::BadLength { declared: 16 })
        );
        let mut d = Deframer::new();
        d.push(b"P4CK\0\0\x01\0");
        assert_eq!(
            d.next_packet(),
            Err(DecodeError::BadLength { declared: 65536 })
        );
    }

    #[test]
    fn buffer_never_exceeds_one_maximum_packet() {
        let big = packet(MAX_PACKET_LEN);
        let mut stream = big.clone();
        stream.extend_from_slice(&big);
        let mut d = Deframer::new();
        let mut count = 0;
        d.feed(&stream, |p| {
            assert_eq!(p.len(), MAX_PACKET_LEN);
            count += 1;
        })
        .unwrap();
        assert_eq!(count, 2);
        assert!(d.buf.capacity() <= 2 * DEFRAMER_CAPACITY);
        // A limit refuses a longer (valid) packet, whatever the chunking.
        let mut d = Deframer::with_limit(40);
        let ping =
            b"P4CK\x2e\0\0\0\x01\0\x12\0clusterer-internal\0\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\0\0";
        assert_eq!(
            d.feed(&ping[..9], |_| {}),
            Err(DecodeError::OverLimit {
                declared: 46,
                limit: 40
            })
        );
        let mut d = Deframer::with_limit(46);
        let mut n = 0;
        d.feed(ping, |_| n += 1).unwrap();
        assert_eq!(n, 1, "a packet of exactly the limit passes");
        // Without draining, push stops at the capacity.
        let mut d = Deframer::new();
        assert_eq!(d.push(&stream), DEFRAMER_CAPACITY);
        assert_eq!(d.push(&stream), 0);
    }
}
