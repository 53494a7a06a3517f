//! Virtual time and the queue of scheduled simulator actions.
//!
//! Time is [`Instant`] in milliseconds from the start of the run; it only moves when the
//! simulator jumps to the next deadline (a node timer) or the next scheduled action. Nothing
//! here reads a wall clock. [`NodeClock`] turns the virtual instant into the [`Now`] a node
//! sees: the same monotonic instant for everybody, and a UNIX time that a test may shift per
//! node to model wall-clock jumps.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use clusterer_core::{Instant, Now};

/// UNIX time (seconds) at virtual time 0 unless the options say otherwise: 2027-01-15.
pub const DEFAULT_BASE_UNIX_TIME: i64 = 1_800_000_000;

/// One node's view of time: the virtual monotonic clock, and a UNIX clock of
/// `base + virtual seconds + offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// UNIX seconds at virtual time 0.
    pub base_unix_time: i64,
    /// Seconds added to this node's UNIX clock (positive: its wall clock is ahead).
    pub offset_s: i64,
}

impl NodeClock {
    /// What the node sees at virtual time `at`.
    pub fn now(&self, at: Instant) -> Now {
        let secs = i64::try_from(at.as_millis() / 1000).unwrap_or(i64::MAX);
        Now {
            instant: at,
            unix_time: self
                .base_unix_time
                .saturating_add(secs)
                .saturating_add(self.offset_s),
        }
    }
}

/// A min-queue of actions by (time, insertion order): actions due at the same millisecond
/// run in the order they were scheduled, which keeps runs deterministic.
#[derive(Debug)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

#[derive(Debug)]
struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    // Reversed: BinaryHeap is a max-heap, we want the earliest (time, seq) on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `item` at `at`.
    pub fn push(&mut self, at: Instant, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, item });
    }

    /// When the earliest action is due.
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest action.
    pub fn pop(&mut self) -> Option<(Instant, T)> {
        self.heap.pop().map(|e| (e.at, e.item))
    }

    /// Number of scheduled actions.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_orders_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.push(Instant::from_millis(5), "b");
        q.push(Instant::from_millis(3), "a");
        q.push(Instant::from_millis(5), "c");
        assert_eq!(q.peek_time(), Some(Instant::from_millis(3)));
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, x)| x)).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn node_clock_adds_base_seconds_and_offset() {
        let c = NodeClock {
            base_unix_time: 1000,
            offset_s: -7,
        };
        let now = c.now(Instant::from_millis(12_345));
        assert_eq!(now.unix_time, 1000 + 12 - 7);
        assert_eq!(now.instant, Instant::from_millis(12_345));
    }
}
