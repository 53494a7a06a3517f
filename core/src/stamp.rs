//! Update counters (docs/behaviour.md §4.1, docs/wire.md §8): the (sequence number, timestamp) pair
//! that LS_UPDATE, FULL_TOP_UPDATE and CAP_UPDATE carry, the acceptance rule that decides
//! whether a received pair is news, and the counters the local node stamps its own updates
//! with. A leaf: plain values in, a [`Freshness`] verdict out.

/// A (sequence number, timestamp) pair of LS_UPDATE, FULL_TOP_UPDATE or CAP_UPDATE
/// (docs/wire.md §8). Stored pairs start at (−1, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqStamp {
    /// Sequence number.
    pub seq: i32,
    /// UNIX time in seconds.
    pub timestamp: i32,
    /// For stored pairs: the timestamp of the sender's current incarnation (its last
    /// accepted seq 0), 0 when unknown.
    pub(crate) incarnation: i32,
}

/// How a received (seq, timestamp) compares with the stored pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Older than (or a late copy of) what is stored: drop, do not flood.
    Stale,
    /// Exactly the stored pair: the same knowledge again.
    Equal,
    /// Newer: stored.
    Fresh,
    /// The sender restarted (stored): a seq 0, or its own pair with a seq not above the
    /// stored one, with a newer timestamp.
    Restarted,
}

impl Default for SeqStamp {
    fn default() -> Self {
        SeqStamp {
            seq: -1,
            timestamp: 0,
            incarnation: 0,
        }
    }
}

impl SeqStamp {
    /// The acceptance rule (docs/wire.md §8, `validate_update`), with three fixes:
    ///
    /// * the sender's own pair (not `third_party`) with a seq not above the stored one but
    ///   a newer timestamp means the sender restarted: within one life the counter and the
    ///   clock move forward together, and a late copy of an older message carries an older
    ///   (or equal) timestamp. OpenSIPS ignores such a sender until its new counter passes
    ///   the old one when it missed the seq 0 (quirk #13); its peers still do, ours follow
    ///   the restart at the first message. A restart within the second of the previous
    ///   update still waits for the counter.
    /// * a seq 0 is taken as a restart only when its timestamp is newer than the stored
    ///   one. OpenSIPS accepts any seq 0 while the stored seq is not 0, so a late copy of
    ///   a sender's first update, overtaken by its second, is accepted and flooded again —
    ///   with many links coming up at once this multiplies into a flood storm the
    ///   simulator measured in millions of packets. A sender restarted within the second
    ///   of its previous update is then accepted once its counter passes the old value
    ///   (what OpenSIPS does for a seq 0 after a stored seq 0, quirk #13).
    /// * pairs with a timestamp older than the sender's current incarnation are stale, so
    ///   a late copy from before a restart, or a peer that missed the restart, cannot
    ///   re-teach the old counter (with the restart rule above, accepting such a copy made
    ///   the stored pair swing between the two lives, each swing flooded: the simulation
    ///   campaign measured millions of LS_UPDATEs, seed 13578). So are third-party pairs
    ///   with a higher seq but an older timestamp than the stored pair: within one life of
    ///   a node the counter and the clock move forward together, so such a pair comes from
    ///   an earlier life (this catches it when we first heard of the node after its seq 0).
    ///   A node whose clock stepped back is re-learned from its own messages, which are not
    ///   third-party.
    ///
    /// Fresh and restarted pairs replace the stored one.
    pub fn check(&mut self, seq: i32, timestamp: i32, third_party: bool) -> Freshness {
        let verdict = if self.seq == -1 {
            Freshness::Fresh
        } else if seq == self.seq && timestamp == self.timestamp {
            Freshness::Equal
        } else if seq > self.seq {
            if timestamp < self.incarnation || (third_party && timestamp < self.timestamp) {
                Freshness::Stale
            } else {
                Freshness::Fresh
            }
        } else if (seq == 0 || !third_party) && timestamp > self.timestamp {
            Freshness::Restarted
        } else {
            Freshness::Stale
        };
        if matches!(verdict, Freshness::Fresh | Freshness::Restarted) {
            if seq == 0 || verdict == Freshness::Restarted {
                self.incarnation = timestamp;
            }
            self.seq = seq;
            self.timestamp = timestamp;
        }
        verdict
    }

    /// [`SeqStamp::check`] for the sender's own messages: `true` when fresh or restarted.
    pub fn accept(&mut self, seq: i32, timestamp: i32) -> bool {
        matches!(
            self.check(seq, timestamp, false),
            Freshness::Fresh | Freshness::Restarted
        )
    }

    /// Pre-increments a local counter and stamps it (the first value after a start is 0).
    pub(crate) fn next(&mut self, unix: i32) -> SeqStamp {
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = unix;
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarted_sender_is_accepted_once_with_newer_timestamp() {
        let mut s = SeqStamp::default();
        assert!(s.accept(0, 100), "first seq 0 after (−1, 0)");
        assert!(!s.accept(0, 100), "same seq 0, same ts: duplicate");
        assert_eq!(
            s.check(0, 101, false),
            Freshness::Restarted,
            "seq 0 with newer ts"
        );
        assert!(s.accept(5, 101));
        assert!(!s.accept(5, 101), "same pair: duplicate");
        assert!(!s.accept(3, 101), "lower seq, same second: a late copy");
        assert!(!s.accept(3, 90), "lower seq, older ts: a late copy");
        assert!(
            s.accept(0, 102),
            "seq 0 after seq 5 with a newer ts: restart"
        );
    }

    #[test]
    fn own_pair_with_lower_seq_and_newer_timestamp_is_a_restart() {
        // A peer that missed the seq 0 of a restarted node follows the restart at its
        // first message instead of ignoring it until the counter passes the old value.
        let mut s = SeqStamp::default();
        assert!(s.accept(40, 100));
        assert_eq!(s.check(3, 160, false), Freshness::Restarted);
        assert_eq!(s.check(4, 161, false), Freshness::Fresh);
        assert_eq!(
            s.check(40, 100, true),
            Freshness::Stale,
            "old life, third party"
        );
        assert_eq!(
            s.check(2, 170, true),
            Freshness::Stale,
            "third parties cannot declare a restart"
        );
        assert_eq!(
            s.check(4, 300, false),
            Freshness::Restarted,
            "same seq, newer ts"
        );
    }

    #[test]
    fn copies_from_before_a_restart_stay_stale_once_the_restart_is_known() {
        // Found by the simulation campaign (seed 13578): a late copy of the previous life's
        // update (higher seq, older ts) was accepted, then the new life's next update was
        // taken as a restart again, and so on — every swing flooded, millions of packets.
        let mut s = SeqStamp::default();
        assert!(s.accept(30, 100));
        assert_eq!(s.check(2, 200, false), Freshness::Restarted);
        assert_eq!(s.check(31, 100, false), Freshness::Stale, "previous life");
        assert_eq!(s.check(3, 200, false), Freshness::Fresh);
        assert_eq!(
            s.check(40, 150, false),
            Freshness::Stale,
            "still the previous life"
        );
    }

    #[test]
    fn late_copy_of_a_first_update_is_stale() {
        // The flood storm: (0, T) overtaken by (1, T) must not be accepted again.
        let mut s = SeqStamp::default();
        assert!(s.accept(1, 50));
        assert_eq!(s.check(0, 50, false), Freshness::Stale);
        assert_eq!(s.check(1, 50, false), Freshness::Equal);
    }

    #[test]
    fn third_parties_cannot_reteach_a_counter_from_before_a_restart() {
        let mut s = SeqStamp::default();
        assert!(s.accept(7, 100));
        assert_eq!(s.check(0, 200, false), Freshness::Restarted);
        assert_eq!(
            s.check(7, 100, true),
            Freshness::Stale,
            "older incarnation via a FULL_TOP_UPDATE"
        );
        assert_eq!(s.check(1, 201, true), Freshness::Fresh);
    }

    #[test]
    fn local_counters_start_at_zero() {
        let mut s = SeqStamp::default();
        assert_eq!((s.next(7).seq, s.timestamp), (0, 7));
        assert_eq!(s.next(8).seq, 1);
    }
}
