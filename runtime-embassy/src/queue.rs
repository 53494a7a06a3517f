//! The per-connection send queues: one byte ring per [`Lane`] over memory from
//! [`Resources`](crate::Resources), with the [`PacketInfo`] of every queued packet beside
//! it. Packets are copied in whole and stay in the ring until their last byte is in the
//! socket, so a packet that never left completely can be reported as a failed send, bytes
//! and all (the core may route it again through another hop).

use clusterer_proto::{Lane, PacketInfo};
use heapless::Deque;

/// Packets queued per lane and connection at most (their bytes also have to fit the ring).
/// Each takes a `PacketInfo` (about 72 bytes on Cortex-M) in `Resources`.
pub const QUEUED_PACKETS: usize = 16;

/// A byte ring over caller memory.
pub(crate) struct ByteRing<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> ByteRing<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        ByteRing {
            buf,
            head: 0,
            len: 0,
        }
    }

    fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Appends all of `bytes`, or nothing when they do not fit.
    fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.free() {
            return false;
        }
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap.max(1);
        let first = bytes.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.len += bytes.len();
        true
    }

    /// The contiguous bytes from `offset` past the head, at most `limit` of them.
    fn slice_at(&self, offset: usize, limit: usize) -> &[u8] {
        let cap = self.buf.len();
        if offset >= self.len || cap == 0 {
            return &[];
        }
        let start = (self.head + offset) % cap;
        let n = (self.len - offset).min(cap - start).min(limit);
        &self.buf[start..start + n]
    }

    /// Copies the first `n` bytes into `out` (which must hold them).
    fn copy_front(&self, n: usize, out: &mut [u8]) {
        let mut done = 0;
        while done < n {
            let part = self.slice_at(done, n - done);
            out[done..done + part.len()].copy_from_slice(part);
            done += part.len();
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if !self.buf.is_empty() {
            self.head = (self.head + n) % self.buf.len();
        }
        self.len -= n;
    }
}

/// One lane: its ring and its packets (description and length), oldest first.
struct LaneQueue<'a> {
    ring: ByteRing<'a>,
    packets: Deque<(PacketInfo, usize), QUEUED_PACKETS>,
}

impl<'a> LaneQueue<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        LaneQueue {
            ring: ByteRing::new(buf),
            packets: Deque::new(),
        }
    }

    fn push(&mut self, info: PacketInfo, bytes: &[u8]) -> bool {
        if self.packets.is_full() || !self.ring.push(bytes) {
            return false;
        }
        // Cannot fail: checked above.
        let _ = self.packets.push_back((info, bytes.len()));
        true
    }
}

/// Why a packet was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueFull;

/// A connection's two lanes and the write position in the packet being written.
pub(crate) struct SendQueues<'a> {
    control: LaneQueue<'a>,
    bulk: LaneQueue<'a>,
    /// The lane of the packet being written and how many of its bytes are in the socket:
    /// the lane changes only between packets.
    writing: Option<(Lane, usize)>,
}

impl<'a> SendQueues<'a> {
    /// Queues over `control` and `bulk` memory.
    pub(crate) fn new(control: &'a mut [u8], bulk: &'a mut [u8]) -> Self {
        SendQueues {
            control: LaneQueue::new(control),
            bulk: LaneQueue::new(bulk),
            writing: None,
        }
    }

    fn lane(&mut self, lane: Lane) -> &mut LaneQueue<'a> {
        match lane {
            Lane::Control => &mut self.control,
            Lane::Bulk => &mut self.bulk,
        }
    }

    /// Queues a whole packet in its lane.
    pub(crate) fn push(&mut self, info: PacketInfo, bytes: &[u8]) -> Result<(), QueueFull> {
        if self.lane(info.lane).push(info, bytes) {
            Ok(())
        } else {
            Err(QueueFull)
        }
    }

    /// Whether anything is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.control.packets.is_empty() && self.bulk.packets.is_empty()
    }

    /// The lane to write from: the one of a packet begun, else control before bulk.
    fn current(&self) -> Option<(Lane, usize)> {
        if let Some(w) = self.writing {
            return Some(w);
        }
        if !self.control.packets.is_empty() {
            Some((Lane::Control, 0))
        } else if !self.bulk.packets.is_empty() {
            Some((Lane::Bulk, 0))
        } else {
            None
        }
    }

    /// Copies the next bytes to write into `out`; how many (0 when nothing is queued). Call
    /// [`advance`](Self::advance) with the number the socket took.
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> usize {
        let Some((lane, offset)) = self.current() else {
            return 0;
        };
        let queue = self.lane(lane);
        let Some(&(_, len)) = queue.packets.front() else {
            return 0;
        };
        let part = queue.ring.slice_at(offset, len - offset);
        let n = part.len().min(out.len());
        out[..n].copy_from_slice(&part[..n]);
        if n > 0 {
            // The packet is begun: it finishes before the lane may change.
            self.writing = Some((lane, offset));
        }
        n
    }

    /// `n` bytes from [`fill`](Self::fill) are in the socket.
    pub(crate) fn advance(&mut self, n: usize) {
        let Some((lane, offset)) = self.writing else {
            return;
        };
        let queue = self.lane(lane);
        let Some(&(_, len)) = queue.packets.front() else {
            return;
        };
        let offset = offset + n;
        if offset >= len {
            queue.ring.consume(len);
            queue.packets.pop_front();
            self.writing = None;
        } else {
            self.writing = Some((lane, offset));
        }
    }

    /// Takes the oldest queued packet (control first), its bytes copied into `out` (which
    /// holds any packet): for reporting what a closed connection never delivered.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<(PacketInfo, usize)> {
        self.writing = None;
        for lane in [Lane::Control, Lane::Bulk] {
            let queue = self.lane(lane);
            if let Some((info, len)) = queue.packets.pop_front() {
                queue.ring.copy_front(len, out);
                queue.ring.consume(len);
                return Some((info, len));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use clusterer_core::{ClusterId, ConnectionId};
    use clusterer_proto::{Destination, PacketKind};

    fn info(lane: Lane, type_name: &'static str) -> PacketInfo {
        PacketInfo {
            cluster: ClusterId::MIN,
            to: Destination::Connection(ConnectionId(1)),
            lane,
            kind: PacketKind::Internal,
            type_name,
            relayed: false,
        }
    }

    /// Everything `fill` gives, taking at most `chunk` bytes per write.
    fn write_all(q: &mut SendQueues<'_>, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = q.fill(&mut buf[..chunk]);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
            q.advance(n);
        }
    }

    #[test]
    fn a_control_packet_overtakes_queued_bulk_packets_but_never_splits_one() {
        let (mut c, mut b) = ([0u8; 16], [0u8; 32]);
        let mut q = SendQueues::new(&mut c, &mut b);
        q.push(info(Lane::Bulk, "SYNC"), b"bbbbbbbb").unwrap();
        q.push(info(Lane::Bulk, "SYNC"), b"BBBB").unwrap();
        // Half of the first bulk packet goes out before the PONG is queued.
        let mut buf = [0u8; 4];
        let n = q.fill(&mut buf);
        q.advance(n);
        q.push(info(Lane::Control, "PONG"), b"pp").unwrap();
        assert_eq!(write_all(&mut q, 3), b"bbbbppBBBB");
        assert!(q.is_empty());
    }

    #[test]
    fn a_packet_that_does_not_fit_is_refused_whole() {
        let (mut c, mut b) = ([0u8; 4], [0u8; 8]);
        let mut q = SendQueues::new(&mut c, &mut b);
        q.push(info(Lane::Bulk, "SYNC"), b"123456").unwrap();
        assert_eq!(q.push(info(Lane::Bulk, "SYNC"), b"789"), Err(QueueFull));
        assert_eq!(
            q.push(info(Lane::Control, "PING"), b"12345"),
            Err(QueueFull)
        );
        assert_eq!(write_all(&mut q, 64), b"123456");
    }

    #[test]
    fn queued_packets_come_back_whole_even_across_the_ring_end() {
        let (mut c, mut b) = ([0u8; 4], [0u8; 8]);
        let mut q = SendQueues::new(&mut c, &mut b);
        q.push(info(Lane::Bulk, "A"), b"aaaaa").unwrap();
        assert_eq!(write_all(&mut q, 64), b"aaaaa");
        // Wraps: 3 bytes at the end of the ring, 3 at its start.
        q.push(info(Lane::Bulk, "B"), b"bcdefg").unwrap();
        let mut buf = [0u8; 2];
        let n = q.fill(&mut buf);
        q.advance(n);
        q.push(info(Lane::Control, "PING"), b"pi").unwrap();
        let mut out = [0u8; 16];
        let (first, len) = q.pop_into(&mut out).unwrap();
        assert_eq!((first.type_name, &out[..len]), ("PING", &b"pi"[..]));
        let (second, len) = q.pop_into(&mut out).unwrap();
        assert_eq!((second.type_name, &out[..len]), ("B", &b"bcdefg"[..]));
        assert!(q.pop_into(&mut out).is_none());
    }

    #[test]
    fn the_packet_count_is_bounded_too() {
        let (mut c, mut b) = ([0u8; 4], [0u8; 1024]);
        let mut q = SendQueues::new(&mut c, &mut b);
        for _ in 0..QUEUED_PACKETS {
            q.push(info(Lane::Bulk, "X"), b"x").unwrap();
        }
        assert_eq!(q.push(info(Lane::Bulk, "X"), b"x"), Err(QueueFull));
    }
}
