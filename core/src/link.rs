//! The per-neighbour link probing state machine (docs/behaviour.md §3).
//!
//! A [`Link`] holds the probing state of one remote node: the seven [`LinkState`]s, the
//! timestamps the rules compare, and the retry budget. [`Link::handle_tick`] evaluates the
//! timer rules 0–5 of §3.2 in order (first match wins); the event-driven rows of §3.3 are
//! [`Link::handle_pong`], [`Link::handle_ping_send_failed`] and [`Link::set_state`]. This module
//! only moves the state; the cluster runs the link-up and link-down procedures (§3.4, §3.5)
//! when a [`Transition`] enters or leaves [`LinkState::Up`].
//!
//! Sends are asynchronous here: a PING is assumed sent when emitted, and the transport reports
//! a refused send afterwards. Each rule therefore records the state its "fails" branch would
//! have chosen, applied by [`Link::handle_ping_send_failed`] if the state has not moved since
//! (the race guard of `set_link_w_neigh_adv`).

use crate::time::Instant;

/// Link states (`clusterer_link_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkState {
    /// 0: direct link confirmed by a timely PONG.
    Up,
    /// 1: probing failed; re-probe after `min(ping_interval, node_timeout)`.
    Down,
    /// 2: the last ping could not even be sent.
    RetrySendFail,
    /// 3: probing must (re)start at the next tick.
    RestartPinging,
    /// 4: first probe ping sent, waiting for the PONG.
    Restarted,
    /// 5: retry pings sent, waiting for the PONG.
    Retrying,
    /// 6: transient value inside PONG handling only.
    Temp,
}

impl LinkState {
    /// The OpenSIPS enum value.
    pub fn value(self) -> u8 {
        match self {
            LinkState::Up => 0,
            LinkState::Down => 1,
            LinkState::RetrySendFail => 2,
            LinkState::RestartPinging => 3,
            LinkState::Restarted => 4,
            LinkState::Retrying => 5,
            LinkState::Temp => 6,
        }
    }

    /// The MI `link_state` text: `Up`, `Down`, or `Probe` for every probing state.
    pub fn mi_name(self) -> &'static str {
        match self {
            LinkState::Up => "Up",
            LinkState::Down => "Down",
            _ => "Probe",
        }
    }
}

/// The link timers in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkTimers {
    /// `I`: keep-alive period.
    pub ping_interval: u64,
    /// `T`: longest PONG delay and retry spacing.
    pub ping_timeout: u64,
    /// `N`: OpenSIPS's wait before re-probing a DOWN node (kept for reference; rule 4
    /// uses [`LinkTimers::down_reprobe`]).
    pub node_timeout: u64,
    /// Wait before re-probing a DOWN node: `min(ping_interval, node_timeout)`
    /// ([`crate::config::Timers::down_reprobe_ms`]).
    pub down_reprobe: u64,
}

/// A state change `from → to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: LinkState,
    /// State after.
    pub to: LinkState,
}

impl Transition {
    /// The link came UP (run the link-up procedure).
    pub fn is_link_up(&self) -> bool {
        self.to == LinkState::Up && self.from != LinkState::Up
    }

    /// The link left UP (run the link-down procedure).
    pub fn is_link_down(&self) -> bool {
        self.from == LinkState::Up && self.to != LinkState::Up
    }
}

/// What a heartbeat tick decided for one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// Send a PING with this `req_node_list` value.
    pub ping: Option<bool>,
    /// The state moved.
    pub transition: Option<Transition>,
}

/// The state a rule's "fails" branch chooses, kept until the transport reports on the ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fallback {
    /// The state the "ok" branch set; the fallback applies only while it is unchanged.
    expect: LinkState,
    state: LinkState,
    retries: u32,
}

/// Probing state of one remote node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    state: LinkState,
    last_ping: Option<Instant>,
    last_ping_ok: bool,
    /// A PONG arrived after the last PING was sent, this long after it.
    reply: Option<u64>,
    last_pong: Option<Instant>,
    last_sent: Option<Instant>,
    last_recv: Option<Instant>,
    curr_no_retries: u32,
    fallback: Option<Fallback>,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    /// A link to a newly known node: RESTART_PINGING, nothing sent or received yet.
    pub fn new() -> Self {
        Link {
            state: LinkState::RestartPinging,
            last_ping: None,
            last_ping_ok: false,
            reply: None,
            last_pong: None,
            last_sent: None,
            last_recv: None,
            curr_no_retries: 0,
            fallback: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Retries left in the current probing round.
    pub fn retries_left(&self) -> u32 {
        self.curr_no_retries
    }

    /// When the last PING was sent.
    pub fn last_ping(&self) -> Option<Instant> {
        self.last_ping
    }

    /// When the last PONG arrived.
    pub fn last_pong(&self) -> Option<Instant> {
        self.last_pong
    }

    /// When the last packet originated by this node arrived.
    pub fn last_recv(&self) -> Option<Instant> {
        self.last_recv
    }

    /// Sets the state (admin actions, topology hints, transport errors): the race-guarded
    /// setter of OpenSIPS without the race. Returns the transition when the state changed.
    pub fn set_state(&mut self, to: LinkState) -> Option<Transition> {
        self.fallback = None;
        self.move_to(to)
    }

    /// Records a routable packet sent directly to this node (postpones keep-alives).
    pub fn record_sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
    }

    /// Records a packet received whose source id is this node (quirk #23: flooded and
    /// relayed packets count too).
    pub fn record_received(&mut self, now: Instant) {
        self.last_recv = Some(now);
    }

    /// Evaluates the timer rules 0–5 of §3.2 for this link. `retries` is the node's
    /// `no_ping_retries` (`R`). Returns the PING to send, if any, and the state change.
    pub fn handle_tick(&mut self, now: Instant, t: &LinkTimers, retries: u32) -> TickOutcome {
        let since_ping = self.last_ping.map_or(u64::MAX, |p| now.since(p));
        let since_sent = self.last_sent.map_or(u64::MAX, |s| now.since(s));
        let reply_good = self.reply.is_some_and(|r| r < t.ping_timeout);
        let timeout = t.ping_timeout;
        match self.state {
            // Rule 0.
            LinkState::RestartPinging => {
                let fail = if retries == 0 {
                    (LinkState::Down, 0)
                } else {
                    (LinkState::RetrySendFail, retries)
                };
                self.ping(now, true, LinkState::Restarted, None, fail)
            }
            // Rule 1.
            LinkState::RetrySendFail if since_ping >= timeout => {
                self.curr_no_retries = self.curr_no_retries.saturating_sub(1);
                let curr = self.curr_no_retries;
                let fail = if curr == 0 {
                    (LinkState::Down, 0)
                } else {
                    (LinkState::RetrySendFail, curr)
                };
                self.ping(now, true, LinkState::Retrying, None, fail)
            }
            // Rule 2.
            LinkState::Up | LinkState::Restarted
                if !reply_good
                    && (self.state == LinkState::Restarted || since_sent >= timeout)
                    && since_ping >= timeout =>
            {
                if retries == 0 {
                    return TickOutcome {
                        ping: None,
                        transition: self.set_state(LinkState::Down),
                    };
                }
                let fail = (LinkState::RetrySendFail, retries);
                self.ping(now, true, LinkState::Retrying, Some(retries - 1), fail)
            }
            // Rule 3.
            LinkState::Retrying if !reply_good && since_ping >= timeout => {
                if self.curr_no_retries == 0 {
                    return TickOutcome {
                        ping: None,
                        transition: self.set_state(LinkState::Down),
                    };
                }
                let curr = self.curr_no_retries;
                let fail = (LinkState::RetrySendFail, curr);
                self.ping(now, true, LinkState::Retrying, Some(curr - 1), fail)
            }
            // Rule 4, re-probing after `down_reprobe` instead of `node_timeout` (a fix, see
            // `Timers::down_reprobe_ms`).
            LinkState::Down if since_ping >= t.down_reprobe => {
                let fail = if retries == 0 {
                    (LinkState::Down, 0)
                } else {
                    (LinkState::RetrySendFail, retries)
                };
                self.ping(now, true, LinkState::Restarted, None, fail)
            }
            // Rule 5.
            LinkState::Up if since_sent >= t.ping_interval && since_ping >= t.ping_interval => {
                let fail = if retries == 0 {
                    (LinkState::Down, 0)
                } else {
                    (LinkState::RetrySendFail, retries)
                };
                self.ping(now, false, LinkState::Up, None, fail)
            }
            _ => TickOutcome::default(),
        }
    }

    /// Applies the "fails" branch of the rule that sent the last PING, when the transport
    /// reports it was refused and the state has not moved since.
    pub fn handle_ping_send_failed(&mut self) -> Option<Transition> {
        self.last_ping_ok = false;
        let fallback = self.fallback.take()?;
        if self.state != fallback.expect {
            return None;
        }
        self.curr_no_retries = fallback.retries;
        self.move_to(fallback.state)
    }

    /// `true` when a PING was sent and the transport has not reported on it yet, so a send
    /// failure for this node is the PING's.
    pub fn ping_outcome_pending(&self) -> bool {
        self.fallback.is_some()
    }

    /// Handles a PONG (§3.3 first row). Returns `true` when the link-up procedure must run
    /// (the state is then [`LinkState::Up`]).
    ///
    /// With millisecond time a PONG may arrive in the same millisecond as its PING; "0 <
    /// now − last_ping" of the spec is read as "the PING was sent before", which causality
    /// guarantees here.
    pub fn handle_pong(&mut self, now: Instant, t: &LinkTimers) -> bool {
        let previous_recv = self.last_recv;
        self.last_pong = Some(now);
        self.last_recv = Some(now);
        if let Some(ping) = self.last_ping {
            self.reply = Some(now.since(ping));
        }
        let recent_ping = self
            .last_ping
            .is_some_and(|p| now.since(p) < t.ping_timeout);
        if matches!(
            self.state,
            LinkState::RestartPinging | LinkState::RetrySendFail | LinkState::Down
        ) && self.last_ping_ok
            && recent_ping
        {
            self.state = LinkState::Temp;
        }
        let recent_recv = previous_recv.is_some_and(|r| now.since(r) < t.ping_timeout);
        if matches!(
            self.state,
            LinkState::Restarted | LinkState::Retrying | LinkState::Temp
        ) && (recent_ping || recent_recv)
        {
            self.fallback = None;
            self.state = LinkState::Up;
            return true;
        }
        false
    }

    fn ping(
        &mut self,
        now: Instant,
        req_node_list: bool,
        ok: LinkState,
        ok_retries: Option<u32>,
        fail: (LinkState, u32),
    ) -> TickOutcome {
        self.last_ping = Some(now);
        self.last_ping_ok = true;
        self.reply = None;
        if let Some(r) = ok_retries {
            self.curr_no_retries = r;
        }
        let transition = self.move_to(ok);
        self.fallback = Some(Fallback {
            expect: ok,
            state: fail.0,
            retries: fail.1,
        });
        TickOutcome {
            ping: Some(req_node_list),
            transition,
        }
    }

    fn move_to(&mut self, to: LinkState) -> Option<Transition> {
        let from = self.state;
        self.state = to;
        (from != to).then_some(Transition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;

    const T: LinkTimers = LinkTimers {
        ping_interval: 4000,
        ping_timeout: 1000,
        node_timeout: 60_000,
        down_reprobe: 4000,
    };

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn up_link(now: u64) -> Link {
        let mut l = Link::new();
        l.handle_tick(at(now), &T, 3);
        assert!(l.handle_pong(at(now + 5), &T));
        l
    }

    #[test]
    fn rule0_restart_pinging_sends_ping1_and_goes_restarted() {
        let mut l = Link::new();
        let out = l.handle_tick(at(0), &T, 3);
        assert_eq!(out.ping, Some(true));
        assert_eq!(l.state(), Restarted);
    }

    #[test]
    fn rule0_failed_send_goes_retry_send_fail_with_full_budget() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        let tr = l.handle_ping_send_failed().unwrap();
        assert_eq!((tr.from, tr.to), (Restarted, RetrySendFail));
        assert_eq!(l.retries_left(), 3);
    }

    #[test]
    fn rule0_failed_send_with_zero_retries_goes_down() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 0);
        assert_eq!(l.handle_ping_send_failed().map(|t| t.to), Some(Down));
    }

    #[test]
    fn rule1_retry_send_fail_waits_a_timeout_then_retries() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_ping_send_failed();
        assert_eq!(l.handle_tick(at(999), &T, 3), TickOutcome::default());
        let out = l.handle_tick(at(1000), &T, 3);
        assert_eq!(out.ping, Some(true));
        assert_eq!((l.state(), l.retries_left()), (Retrying, 2));
    }

    #[test]
    fn rule1_failing_sends_exhaust_the_budget_then_go_down() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 2);
        l.handle_ping_send_failed();
        l.handle_tick(at(1000), &T, 2);
        assert_eq!(
            l.handle_ping_send_failed().map(|t| t.to),
            Some(RetrySendFail)
        );
        assert_eq!(l.retries_left(), 1);
        l.handle_tick(at(2000), &T, 2);
        assert_eq!(l.handle_ping_send_failed().map(|t| t.to), Some(Down));
    }

    #[test]
    fn rule2_restarted_without_pong_goes_retrying_with_r_minus_1() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        assert_eq!(l.handle_tick(at(500), &T, 3).ping, None);
        let out = l.handle_tick(at(1000), &T, 3);
        assert_eq!(out.ping, Some(true));
        assert_eq!((l.state(), l.retries_left()), (Retrying, 2));
    }

    #[test]
    fn rule2_unanswered_keepalive_takes_the_link_down_to_retrying() {
        let mut l = up_link(0);
        // Rule 5 keep-alive at I.
        let out = l.handle_tick(at(4000), &T, 3);
        assert_eq!((out.ping, l.state()), (Some(false), Up));
        let out = l.handle_tick(at(5000), &T, 3);
        assert_eq!(out.ping, Some(true));
        assert!(out.transition.unwrap().is_link_down());
        assert_eq!((l.state(), l.retries_left()), (Retrying, 2));
    }

    #[test]
    fn rule2_recent_direct_traffic_postpones_probing() {
        let mut l = up_link(0);
        l.handle_tick(at(4000), &T, 3);
        l.record_sent(at(4500));
        assert_eq!(l.handle_tick(at(5000), &T, 3), TickOutcome::default());
        assert_eq!(l.handle_tick(at(5500), &T, 3).ping, Some(true));
    }

    #[test]
    fn rule2_with_zero_retries_goes_straight_down() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 0);
        let out = l.handle_tick(at(1000), &T, 0);
        assert_eq!((out.ping, l.state()), (None, Down));
    }

    #[test]
    fn rule2_failed_send_goes_retry_send_fail_with_full_budget() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_tick(at(1000), &T, 3);
        assert_eq!(
            l.handle_ping_send_failed().map(|t| t.to),
            Some(RetrySendFail)
        );
        assert_eq!(l.retries_left(), 3);
    }

    #[test]
    fn rule3_retrying_counts_down_then_goes_down() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_tick(at(1000), &T, 3); // rule 2 → curr 2
        assert_eq!(l.handle_tick(at(2000), &T, 3).ping, Some(true));
        assert_eq!(l.retries_left(), 1);
        assert_eq!(l.handle_tick(at(3000), &T, 3).ping, Some(true));
        assert_eq!(l.retries_left(), 0);
        let out = l.handle_tick(at(4000), &T, 3);
        assert_eq!((out.ping, l.state()), (None, Down));
        assert_eq!(out.transition.map(|t| t.from), Some(Retrying));
    }

    #[test]
    fn rule3_failed_retry_goes_retry_send_fail() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_tick(at(1000), &T, 3);
        l.handle_tick(at(2000), &T, 3);
        assert_eq!(
            l.handle_ping_send_failed().map(|t| t.to),
            Some(RetrySendFail)
        );
        assert_eq!(l.retries_left(), 2);
    }

    #[test]
    fn rule4_down_node_is_reprobed_after_ping_interval_not_node_timeout() {
        let mut l = Link::new();
        l.set_state(Down);
        l.handle_tick(at(0), &T, 3); // never pinged → since_ping infinite → probe now
        assert_eq!(l.state(), Restarted);
        l.set_state(Down);
        assert_eq!(l.handle_tick(at(3_999), &T, 3), TickOutcome::default());
        assert_eq!(l.handle_tick(at(4_000), &T, 3).ping, Some(true));
        assert_eq!(l.state(), Restarted);
    }

    #[test]
    fn rule4_a_node_timeout_below_ping_interval_still_bounds_the_reprobe() {
        let timers = crate::config::Timers {
            ping_interval_s: 10,
            node_timeout_s: 2,
            ..Default::default()
        };
        let t = LinkTimers::from(&timers);
        assert_eq!(t.down_reprobe, 2_000);
        let mut l = Link::new();
        l.set_state(Down);
        l.handle_tick(at(0), &t, 3);
        l.set_state(Down);
        assert_eq!(l.handle_tick(at(1_999), &t, 3), TickOutcome::default());
        assert_eq!(l.handle_tick(at(2_000), &t, 3).ping, Some(true));
    }

    #[test]
    fn rule4_failed_reprobe_goes_retry_send_fail_or_stays_down() {
        let mut l = Link::new();
        l.set_state(Down);
        l.handle_tick(at(0), &T, 3);
        assert_eq!(
            l.handle_ping_send_failed().map(|t| t.to),
            Some(RetrySendFail)
        );
        let mut l = Link::new();
        l.set_state(Down);
        l.handle_tick(at(0), &T, 0);
        assert_eq!(l.handle_ping_send_failed().map(|t| t.to), Some(Down));
    }

    #[test]
    fn rule5_keepalive_every_interval_without_traffic() {
        let mut l = up_link(0);
        assert_eq!(l.handle_tick(at(3999), &T, 3), TickOutcome::default());
        let out = l.handle_tick(at(4000), &T, 3);
        assert_eq!((out.ping, out.transition), (Some(false), None));
        assert!(!l.handle_pong(at(4003), &T), "already up: only refreshed");
        assert_eq!(l.handle_tick(at(5000), &T, 3), TickOutcome::default());
        assert_eq!(l.handle_tick(at(8000), &T, 3).ping, Some(false));
    }

    #[test]
    fn rule5_failed_keepalive_leaves_up() {
        let mut l = up_link(0);
        l.handle_tick(at(4000), &T, 3);
        let tr = l.handle_ping_send_failed().unwrap();
        assert!(tr.is_link_down());
        assert_eq!((l.state(), l.retries_left()), (RetrySendFail, 3));
        let mut l = up_link(0);
        l.handle_tick(at(4000), &T, 0);
        assert_eq!(l.handle_ping_send_failed().map(|t| t.to), Some(Down));
    }

    #[test]
    fn temp_state_has_no_timer_rule() {
        let mut l = Link::new();
        l.state = Temp;
        assert_eq!(l.handle_tick(at(100_000), &T, 3), TickOutcome::default());
    }

    #[test]
    fn timely_pong_brings_the_link_up() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        assert!(l.handle_pong(at(999), &T));
        assert_eq!(l.state(), Up);
    }

    #[test]
    fn pong_in_the_same_millisecond_counts() {
        let mut l = Link::new();
        l.handle_tick(at(7), &T, 3);
        assert!(l.handle_pong(at(7), &T));
    }

    #[test]
    fn late_pong_without_recent_traffic_is_not_enough() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        assert!(!l.handle_pong(at(1000), &T));
        assert_eq!(l.state(), Restarted);
    }

    #[test]
    fn late_pong_after_recent_traffic_brings_the_link_up() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.record_received(at(600));
        assert!(l.handle_pong(at(1200), &T));
    }

    #[test]
    fn pong_in_retrying_brings_the_link_up() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_tick(at(1000), &T, 3);
        assert!(l.handle_pong(at(1100), &T));
        assert_eq!(l.state(), Up);
    }

    #[test]
    fn pong_in_down_after_a_recent_successful_ping_passes_through_temp() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.set_state(Down);
        assert!(l.handle_pong(at(10), &T));
        assert_eq!(l.state(), Up);
    }

    #[test]
    fn pong_in_retry_send_fail_is_ignored_after_a_failed_send() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        l.handle_ping_send_failed();
        assert!(!l.handle_pong(at(10), &T));
        assert_eq!(l.state(), RetrySendFail);
    }

    #[test]
    fn pong_in_up_only_refreshes() {
        let mut l = up_link(0);
        assert!(!l.handle_pong(at(100), &T));
        assert_eq!(l.last_pong(), Some(at(100)));
    }

    #[test]
    fn stale_fallback_is_ignored_after_the_state_moved() {
        let mut l = Link::new();
        l.handle_tick(at(0), &T, 3);
        assert!(l.handle_pong(at(5), &T));
        assert_eq!(l.handle_ping_send_failed(), None);
        assert_eq!(l.state(), Up);
    }

    #[test]
    fn mi_names_group_probing_states() {
        assert_eq!(Up.mi_name(), "Up");
        assert_eq!(Down.mi_name(), "Down");
        for s in [RetrySendFail, RestartPinging, Restarted, Retrying, Temp] {
            assert_eq!(s.mi_name(), "Probe");
        }
        assert_eq!(Temp.value(), 6);
    }
}
