//! Sharing tags (docs/behaviour.md §10) and the opt-in election mode: the [`SharingTags`]
//! state machine of one cluster.
//!
//! The machine owns every tag of its cluster and nothing else. What it needs to know of
//! the cluster (time, nodes, reachability, ranks) and what it does to it (send an
//! SHTAG_ACTIVE, report a change) go through a [`ShtagPort`] the caller implements: the
//! cluster coordinator in the node, plain recording values in the unit tests below. It
//! never builds a packet and never touches another machine's state.
//!
//! **Compatible mode** (the default) behaves like OpenSIPS: `set_active` announces the tag
//! with SHTAG_ACTIVE unicasts (retried when a node comes up), any received SHTAG_ACTIVE
//! demotes the tag, nothing happens by itself when the active node dies, and two actives
//! that meet may both end up backup (§10.5, quirk #17). One fix: announcements on node-up
//! are sent only while the tag is still active.
//!
//! **Election mode** (`vip/1=backup,election`) keeps the wire to SHTAG_ACTIVE and adds:
//! * every election node advertises `shtag-election:<tag>` in its CAP_UPDATE, so nodes know
//!   who is eligible (OpenSIPS peers store and forward it like any unknown capability);
//! * a backup remembers the best-ranked reachable node that announced itself active (a
//!   worse announcer loses any conflict with it and steps down silently, so it is not
//!   believed; a node that restarted is forgotten too); when none is left and it ranks best
//!   among itself and the reachable eligible nodes — rank = (not eligible, priority, id),
//!   lowest first — it activates after `hold_down_ms`, and in db_mode 0 never before
//!   [`Timers::discovery_bound_ms`] since its start (a node that restarted knowing nobody
//!   would otherwise take the tag before the nodes that know it, and hold it, re-probe it);
//! * an SHTAG_ACTIVE from a node we cannot reach yet (it saw the link come up a round trip
//!   before us) is not believed, but blocks a takeover for one re-announcement period;
//! * an active election node announces itself to every node that comes up, and again to
//!   every reachable node once per [`reannounce_period_ms`] (the hold-down, at least twice
//!   `ping_interval`; SHTAG_ACTIVE has no retransmission: a lost announcement would
//!   otherwise leave two actives until some node comes up again);
//! * with `,preempt`, a backup that ranks best among itself and the reachable eligible
//!   nodes takes the tag after the hold-down even from a believed active that ranks worse
//!   (reason `election (preempting node N)`); that node steps down on the announcement (the
//!   rule below), so the tag returns to the preferred node when it comes back;
//! * when an active election node receives SHTAG_ACTIVE from a node that ranks worse, it
//!   stays active and announces itself back (the other steps down); from a better node it
//!   steps down. So two actives that meet resolve to the better one, never to none.
//!   An OpenSIPS peer (not eligible) ranks below every election node: it loses conflicts
//!   and simply follows SHTAG_ACTIVE.
//!
//! Guarantees and limits: within one connected component, once announcements have crossed
//! (one round trip after the actives can reach each other, or one re-announcement period
//! more when an announcement was lost on the way) at most one node is active, and
//! if any eligible node is reachable one becomes active within the hold-down after the
//! previous owner is detected unreachable. A partition is two components: each side elects
//! its own active by design, and the better one wins when they meet again.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::Timers;
use crate::id::NodeId;
use crate::output::SendStatus;
use crate::time::Instant;

pub use crate::config::{DEFAULT_HOLD_DOWN_MS, ElectionConfig, ShtagConfig, ShtagState};

/// Why a tag changed state (the `<reason>` of reports and events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShtagReason {
    /// `MI command`.
    MiCommand,
    /// `script variable`.
    ScriptVariable,
    /// `internal API call`.
    Api,
    /// `cluster broadcast from <node>`.
    Broadcast(NodeId),
    /// Election mode: no reachable node held the tag.
    Election,
    /// Election mode with `preempt`: the node held the tag but ranks worse than us.
    Preempt(NodeId),
}

impl fmt::Display for ShtagReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShtagReason::MiCommand => f.write_str("MI command"),
            ShtagReason::ScriptVariable => f.write_str("script variable"),
            ShtagReason::Api => f.write_str("internal API call"),
            ShtagReason::Broadcast(n) => write!(f, "cluster broadcast from {n}"),
            ShtagReason::Election => f.write_str("election (no active node reachable)"),
            ShtagReason::Preempt(n) => write!(f, "election (preempting node {n})"),
        }
    }
}

/// Election bookkeeping of a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Election {
    pub config: ElectionConfig,
    /// The best-ranked reachable node that announced itself active since it last became
    /// reachable (at most one entry once re-evaluated).
    pub announcers: Vec<NodeId>,
    /// Nodes that announced themselves active while we could not reach them yet, and when.
    /// The two ends of a new link see it come up a round trip apart, and the first one
    /// announces at once: its SHTAG_ACTIVE can arrive before we see it reachable. Such an
    /// announcement blocks a takeover for one re-announcement period (plus a
    /// `ping_timeout`), but is never believed: an active election node repeats its
    /// SHTAG_ACTIVE within that period, and the repetition, from a reachable node, is what
    /// makes it the known active. Believing the early announcement itself left a stale
    /// belief when its sender stepped down before we could reach it (no node active
    /// anywhere; campaign seed 6262).
    pub early_announcers: Vec<(NodeId, Instant)>,
    /// Scheduled takeover.
    pub activate_at: Option<Instant>,
    /// While active: when to announce the tag again to every reachable node.
    pub reannounce_at: Option<Instant>,
}

/// A sharing tag of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingTag {
    pub(crate) name: String,
    pub(crate) state: ShtagState,
    pub(crate) announce_pending: bool,
    pub(crate) announced: Vec<NodeId>,
    pub(crate) election: Option<Election>,
}

impl SharingTag {
    /// A tag in `state`, in election mode when `election` is given.
    pub fn new(name: &str, state: ShtagState, election: Option<ElectionConfig>) -> Self {
        SharingTag {
            name: name.into(),
            state,
            announce_pending: state == ShtagState::Active,
            announced: Vec::new(),
            election: election.map(|config| Election {
                config,
                announcers: Vec::new(),
                early_announcers: Vec::new(),
                activate_at: None,
                reannounce_at: None,
            }),
        }
    }

    /// Tag name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Current state.
    pub fn state(&self) -> ShtagState {
        self.state
    }

    /// Whether the tag runs in election mode.
    pub fn is_election(&self) -> bool {
        self.election.is_some()
    }

    /// In election mode: the reachable node believed active, if any.
    pub fn known_active(&self) -> Option<NodeId> {
        self.election
            .as_ref()
            .and_then(|e| e.announcers.first().copied())
    }
}

/// Why a sharing-tag command was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShtagError {
    /// MI 404 `Cluster ID not found`.
    UnknownCluster,
    /// The tag runs in election mode; it cannot be set active by hand.
    ElectionMode,
}

impl fmt::Display for ShtagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShtagError::UnknownCluster => "Cluster ID not found",
            ShtagError::ElectionMode => {
                "Tag is in election mode: the best (priority, id) eligible node holds it; disable the active node or change priorities to move it"
            }
        })
    }
}

impl core::error::Error for ShtagError {}

/// Rank of a node for the election: (not eligible, priority, id), lowest wins.
pub type Rank = (bool, i32, NodeId);

/// What the sharing-tag machine asks of the cluster around it and does to it. The node's
/// cluster coordinator implements it over the real cluster; tests implement it with plain
/// values.
pub trait ShtagPort {
    /// The current time.
    fn now(&self) -> Instant;
    /// Whether the local node is enabled in the cluster (a disabled node elects nothing).
    fn local_enabled(&self) -> bool;
    /// The local node's election rank: (false, its priority, its id).
    fn local_rank(&self) -> Rank;
    /// Every known node of the cluster, in node-list order (the targets of `set_active`).
    fn nodes(&self) -> Vec<NodeId>;
    /// The enabled nodes the local node has a route to.
    fn reachable(&mut self) -> Vec<NodeId>;
    /// A node's election rank for `tag` (eligible when it advertises
    /// `shtag-election:<tag>` synced); `None` for an unknown node.
    fn rank(&self, tag: &str, node: NodeId) -> Option<Rank>;
    /// Sends SHTAG_ACTIVE for `tag` to `to`, routed; returns the send's outcome.
    fn announce(&mut self, tag: &str, to: NodeId) -> SendStatus;
    /// `tag` changed to `state` because of `reason` (the caller reports it and raises the
    /// event).
    fn changed(&mut self, tag: &str, state: ShtagState, reason: ShtagReason);
}

/// The fixed settings of a cluster's sharing tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShtagSettings {
    /// The timers (the re-announcement period depends on `ping_interval`).
    pub timers: Timers,
    /// No election takeover before this time ([`Timers::discovery_bound_ms`] after the
    /// start in db_mode 0).
    pub not_before: Instant,
    /// Test-only breakage: an active tag ignores SHTAG_ACTIVE (see `FaultInjection`).
    pub skip_demotion: bool,
}

/// The sharing tags of one cluster (docs/behaviour.md §10 and election mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharingTags {
    tags: Vec<SharingTag>,
    settings: ShtagSettings,
}

impl SharingTags {
    /// The tags of `configs`, in order, with `settings`.
    pub fn new(configs: impl IntoIterator<Item = SharingTag>, settings: ShtagSettings) -> Self {
        SharingTags {
            tags: configs.into_iter().collect(),
            settings,
        }
    }

    /// Every tag, in creation order.
    pub fn tags(&self) -> &[SharingTag] {
        &self.tags
    }

    /// One tag by name.
    pub fn get(&self, name: &str) -> Option<&SharingTag> {
        self.tags.iter().find(|t| t.name == name)
    }

    /// The state of `name`: backup for a tag never referenced (OpenSIPS creates it as
    /// backup on first reference).
    pub fn state(&self, name: &str) -> ShtagState {
        self.get(name).map_or(ShtagState::Backup, |t| t.state)
    }

    /// Whether an election takeover is scheduled (the caller then runs [`Self::check`]
    /// with its 500 ms timer).
    pub fn takeover_scheduled(&self) -> bool {
        self.tags
            .iter()
            .any(|t| t.election.as_ref().is_some_and(|e| e.activate_at.is_some()))
    }

    /// Names of the election-mode tags (advertised as `shtag-election:<tag>`).
    pub fn election_tags(&self) -> impl Iterator<Item = &str> {
        self.tags
            .iter()
            .filter(|t| t.election.is_some())
            .map(|t| t.name.as_str())
    }

    fn index_or_create(&mut self, name: &str) -> usize {
        match self.tags.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                // Created as backup on first reference (§10.1).
                self.tags
                    .push(SharingTag::new(name, ShtagState::Backup, None));
                self.tags.len() - 1
            }
        }
    }

    fn change_state(
        &mut self,
        port: &mut dyn ShtagPort,
        index: usize,
        to: ShtagState,
        reason: ShtagReason,
    ) {
        let tag = &mut self.tags[index];
        if tag.state == to {
            return;
        }
        tag.state = to;
        port.changed(&tag.name, to, reason);
    }

    fn announce(&mut self, port: &mut dyn ShtagPort, index: usize, dest: NodeId) {
        let status = port.announce(&self.tags[index].name, dest);
        let tag = &mut self.tags[index];
        if status == SendStatus::Success {
            if !tag.announced.contains(&dest) {
                tag.announced.push(dest);
            }
        } else {
            tag.announce_pending = true;
        }
    }

    /// `clusterer_shtag_set_active` and the API (docs/behaviour.md §10.2): activates `name`
    /// (created if unknown) and announces it to every known node.
    ///
    /// # Errors
    /// [`ShtagError::ElectionMode`] for an election-mode tag; nothing changed.
    pub fn set_active(
        &mut self,
        port: &mut dyn ShtagPort,
        name: &str,
        reason: ShtagReason,
    ) -> Result<(), ShtagError> {
        if self
            .tags
            .iter()
            .any(|t| t.name == name && t.election.is_some())
        {
            return Err(ShtagError::ElectionMode);
        }
        let index = self.index_or_create(name);
        self.activate(port, index, reason);
        Ok(())
    }

    /// `shtag_activate` (docs/behaviour.md §10.2).
    fn activate(&mut self, port: &mut dyn ShtagPort, index: usize, reason: ShtagReason) {
        self.change_state(port, index, ShtagState::Active, reason);
        let now = port.now();
        let timers = &self.settings.timers;
        if let Some(e) = &mut self.tags[index].election {
            e.activate_at = None;
            e.announcers.clear();
            e.early_announcers.clear();
            e.reannounce_at = Some(now.plus(reannounce_period_ms(&e.config, timers)));
        }
        for dest in port.nodes() {
            let tag = &self.tags[index];
            if tag.announce_pending && tag.announced.contains(&dest) {
                continue;
            }
            self.announce(port, index, dest);
        }
    }

    /// SHTAG_ACTIVE for `name` from `source` (docs/behaviour.md §10.3; election conflict rule).
    pub fn on_active(&mut self, port: &mut dyn ShtagPort, source: NodeId, name: &str) {
        let index = self.index_or_create(name);
        if self.tags[index].election.is_some() {
            let mine = port.local_rank();
            let theirs = port.rank(name, source);
            if self.tags[index].state == ShtagState::Active && theirs.is_some_and(|t| mine < t) {
                // Two actives met and we rank better: stay, and tell the other.
                self.announce(port, index, source);
                return;
            }
            let reachable = port.reachable().contains(&source);
            let now = port.now();
            if let Some(e) = &mut self.tags[index].election {
                if !reachable {
                    e.early_announcers.retain(|&(a, _)| a != source);
                    e.early_announcers.push((source, now));
                } else if !e.announcers.contains(&source) {
                    e.announcers.push(source);
                }
            }
        }
        if self.settings.skip_demotion && self.tags[index].state == ShtagState::Active {
            // Test-only breakage (config::FaultInjection): the tag stays active.
            return;
        }
        let tag = &mut self.tags[index];
        tag.announce_pending = false;
        tag.announced.clear();
        self.change_state(
            port,
            index,
            ShtagState::Backup,
            ShtagReason::Broadcast(source),
        );
        self.reevaluate(port);
    }

    /// `node` became reachable (`up`) or unreachable (docs/behaviour.md §10.4 plus election
    /// mode): active tags announce themselves to a node that comes up (compatible mode:
    /// only while an announcement is pending for it); election bookkeeping forgets a node
    /// that went away.
    pub fn on_node_event(&mut self, port: &mut dyn ShtagPort, node: NodeId, up: bool) {
        for index in 0..self.tags.len() {
            let tag = &mut self.tags[index];
            if !up {
                if let Some(e) = &mut tag.election {
                    e.announcers.retain(|&a| a != node);
                    e.early_announcers.retain(|&(a, _)| a != node);
                }
                continue;
            }
            if tag.state != ShtagState::Active {
                continue;
            }
            let announce = if tag.election.is_some() {
                true
            } else {
                tag.announce_pending && !tag.announced.contains(&node)
            };
            if announce {
                self.announce(port, index, node);
            }
        }
        self.reevaluate(port);
    }

    /// Election mode: `node` restarted (its CAP_UPDATE counter started again), so it holds
    /// no tag active any more; forget it as an announcer (call [`Self::reevaluate`] after).
    pub fn forget_announcer(&mut self, node: NodeId) {
        for tag in &mut self.tags {
            if let Some(e) = &mut tag.election {
                e.announcers.retain(|&a| a != node);
                e.early_announcers.retain(|&(a, _)| a != node);
            }
        }
    }

    /// Election mode, at every heartbeat: an active node announces the tag again to every
    /// reachable node once per [`reannounce_period_ms`]. SHTAG_ACTIVE is otherwise sent
    /// once per node-up and never retransmitted, so an announcement lost in flight (a relay
    /// without a route while routes converge, a connection reset) would leave two actives
    /// in one component until some node comes up again; the repetition bounds that to one
    /// period. To backups (ours or OpenSIPS's) a repeated announcement changes nothing.
    pub fn reannounce(&mut self, port: &mut dyn ShtagPort) {
        let now = port.now();
        for index in 0..self.tags.len() {
            let active = self.tags[index].state == ShtagState::Active;
            let timers = &self.settings.timers;
            let Some(e) = &mut self.tags[index].election else {
                continue;
            };
            if !active {
                e.reannounce_at = None;
                continue;
            }
            let period = reannounce_period_ms(&e.config, timers);
            match e.reannounce_at {
                Some(at) if at > now => continue,
                None => {
                    e.reannounce_at = Some(now.plus(period));
                    continue;
                }
                Some(_) => e.reannounce_at = Some(now.plus(period)),
            }
            for dest in port.reachable() {
                self.announce(port, index, dest);
            }
        }
    }

    /// Election mode: schedules or cancels takeovers after a change of reachability,
    /// eligibility or announcements.
    pub fn reevaluate(&mut self, port: &mut dyn ShtagPort) {
        if !port.local_enabled() {
            return;
        }
        let mine = port.local_rank();
        let now = port.now();
        for index in 0..self.tags.len() {
            if self.tags[index].state != ShtagState::Backup {
                continue;
            }
            let name = self.tags[index].name.clone();
            let reachable = port.reachable();
            let ranks: Vec<Rank> = reachable
                .iter()
                .filter_map(|&n| port.rank(&name, n))
                .collect();
            let Some(e) = &mut self.tags[index].election else {
                continue;
            };
            e.announcers.retain(|a| reachable.contains(a));
            let early_ttl = reannounce_period_ms(&e.config, &self.settings.timers)
                + self.settings.timers.ping_timeout();
            e.early_announcers
                .retain(|&(_, at)| now.since(at) < early_ttl);
            // The best announcer is the one believed active. A worse one loses any conflict
            // with it, silently (nothing tells the others it stepped down): forget it, or
            // it would be believed active after the best one is gone.
            e.announcers
                .sort_by_key(|a| ranks.iter().find(|r| r.2 == *a).copied());
            e.announcers.truncate(1);
            let best = ranks.iter().filter(|r| !r.0).all(|r| mine < *r);
            // With preempt, a believed active that ranks worse does not block us (`best`
            // already says we outrank every reachable eligible node).
            let held = e.announcers.first().is_some_and(|a| {
                !e.config.preempt || !ranks.iter().any(|r| r.2 == *a && mine < *r)
            });
            if held || !e.early_announcers.is_empty() || !best {
                e.activate_at = None;
            } else if e.activate_at.is_none() {
                let after_hold_down = now.plus(e.config.hold_down_ms);
                e.activate_at = Some(after_hold_down.max(self.settings.not_before));
            }
        }
    }

    /// The election timer (run with the 500 ms sync check): re-evaluates, then activates
    /// the tags whose hold-down expired.
    pub fn check(&mut self, port: &mut dyn ShtagPort) {
        self.reevaluate(port);
        let now = port.now();
        for index in 0..self.tags.len() {
            let Some(e) = &self.tags[index].election else {
                continue;
            };
            let due = e.activate_at.is_some_and(|at| at <= now);
            let reason = match e.announcers.first() {
                Some(&held_by) => ShtagReason::Preempt(held_by),
                None => ShtagReason::Election,
            };
            if due && self.tags[index].state == ShtagState::Backup {
                self.activate(port, index, reason);
            }
        }
    }
}

/// How often an active election node announces its tag again: the hold-down, but at least
/// twice `ping_interval`. Routed traffic keeps a link from sending keep-alives
/// (docs/behaviour.md §3.2 rule 5), so a repetition faster than `ping_interval` would stop every
/// relay on the way from noticing that its next hop no longer answers (a one-way
/// partition): the repetition must leave keep-alive gaps.
pub fn reannounce_period_ms(config: &ElectionConfig, timers: &Timers) -> u64 {
    config.hold_down_ms.max(2 * timers.ping_interval_ms())
}

#[cfg(test)]
mod tests {
    //! The rules of docs/behaviour.md §10 and election mode on the machine alone: a recording
    //! port stands for the cluster (no node, no network).

    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn n(id: u32) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A peer as the port reports it.
    #[derive(Clone, Copy)]
    struct Peer {
        id: NodeId,
        priority: i32,
        eligible: bool,
        reachable: bool,
    }

    /// The cluster around the machine, as plain values; records what the machine did.
    struct World {
        now: u64,
        enabled: bool,
        me: NodeId,
        priority: i32,
        peers: Vec<Peer>,
        /// Sends to these fail.
        failing: Vec<NodeId>,
        sent: Vec<(String, NodeId)>,
        changes: Vec<(String, ShtagState, ShtagReason)>,
    }

    impl World {
        fn new(peers: &[(u32, i32, bool)]) -> Self {
            World {
                now: 0,
                enabled: true,
                me: n(1),
                priority: 50,
                peers: peers
                    .iter()
                    .map(|&(id, priority, eligible)| Peer {
                        id: n(id),
                        priority,
                        eligible,
                        reachable: true,
                    })
                    .collect(),
                failing: Vec::new(),
                sent: Vec::new(),
                changes: Vec::new(),
            }
        }

        fn set_reachable(&mut self, id: u32, reachable: bool) {
            for p in &mut self.peers {
                if p.id == n(id) {
                    p.reachable = reachable;
                }
            }
        }

        fn take_sent(&mut self) -> Vec<(String, NodeId)> {
            core::mem::take(&mut self.sent)
        }
    }

    impl ShtagPort for World {
        fn now(&self) -> Instant {
            at(self.now)
        }
        fn local_enabled(&self) -> bool {
            self.enabled
        }
        fn local_rank(&self) -> Rank {
            (false, self.priority, self.me)
        }
        fn nodes(&self) -> Vec<NodeId> {
            self.peers.iter().map(|p| p.id).collect()
        }
        fn reachable(&mut self) -> Vec<NodeId> {
            self.peers
                .iter()
                .filter(|p| p.reachable)
                .map(|p| p.id)
                .collect()
        }
        fn rank(&self, _tag: &str, node: NodeId) -> Option<Rank> {
            let p = self.peers.iter().find(|p| p.id == node)?;
            Some((!p.eligible, p.priority, p.id))
        }
        fn announce(&mut self, tag: &str, to: NodeId) -> SendStatus {
            self.sent.push((tag.to_string(), to));
            if self.failing.contains(&to) {
                SendStatus::SendErr
            } else {
                SendStatus::Success
            }
        }
        fn changed(&mut self, tag: &str, state: ShtagState, reason: ShtagReason) {
            self.changes.push((tag.to_string(), state, reason));
        }
    }

    fn settings(not_before: u64) -> ShtagSettings {
        ShtagSettings {
            timers: Timers::default(),
            not_before: at(not_before),
            skip_demotion: false,
        }
    }

    fn compat(state: ShtagState) -> SharingTags {
        SharingTags::new([SharingTag::new("vip", state, None)], settings(0))
    }

    fn election(not_before: u64) -> SharingTags {
        election_with(not_before, false)
    }

    fn election_with(not_before: u64, preempt: bool) -> SharingTags {
        let e = ElectionConfig {
            hold_down_ms: 3_000,
            preempt,
        };
        SharingTags::new(
            [SharingTag::new("vip", ShtagState::Backup, Some(e))],
            settings(not_before),
        )
    }

    /// Runs the 500 ms check from the world's time up to `until`.
    fn run_checks(tags: &mut SharingTags, w: &mut World, until: u64) {
        while w.now < until {
            w.now += 500;
            tags.check(w);
        }
    }

    fn vip() -> String {
        "vip".to_string()
    }

    #[test]
    fn set_active_announces_to_every_known_node_and_reports_the_change() {
        let mut w = World::new(&[(2, 50, false), (3, 50, false)]);
        let mut tags = compat(ShtagState::Backup);
        tags.set_active(&mut w, "vip", ShtagReason::MiCommand)
            .unwrap();
        assert_eq!(tags.state("vip"), ShtagState::Active);
        assert_eq!(w.take_sent(), [(vip(), n(2)), (vip(), n(3))]);
        assert_eq!(
            w.changes,
            [(vip(), ShtagState::Active, ShtagReason::MiCommand)]
        );
    }

    #[test]
    fn a_failed_announcement_is_retried_when_that_node_comes_up() {
        let mut w = World::new(&[(2, 50, false), (3, 50, false)]);
        w.failing.push(n(3));
        let mut tags = compat(ShtagState::Backup);
        tags.set_active(&mut w, "vip", ShtagReason::Api).unwrap();
        w.take_sent();
        w.failing.clear();
        // Node 2 got it: coming up again announces nothing; node 3 did not: it is retried.
        tags.on_node_event(&mut w, n(2), true);
        assert!(w.take_sent().is_empty());
        tags.on_node_event(&mut w, n(3), true);
        assert_eq!(w.take_sent(), [(vip(), n(3))]);
    }

    #[test]
    fn a_received_shtag_active_demotes_an_active_compatible_tag() {
        let mut w = World::new(&[(2, 50, false)]);
        let mut tags = compat(ShtagState::Active);
        tags.on_active(&mut w, n(2), "vip");
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        assert_eq!(
            w.changes,
            [(vip(), ShtagState::Backup, ShtagReason::Broadcast(n(2)))]
        );
        // A backup tag stays backup silently, and nothing is announced back.
        tags.on_active(&mut w, n(2), "vip");
        assert_eq!(w.changes.len(), 1);
        assert!(w.sent.is_empty());
    }

    #[test]
    fn an_unknown_tag_is_created_as_backup_on_first_reference() {
        let mut w = World::new(&[(2, 50, false)]);
        let mut tags = compat(ShtagState::Backup);
        assert_eq!(tags.state("media"), ShtagState::Backup);
        tags.on_active(&mut w, n(2), "media");
        assert_eq!(
            tags.get("media").map(SharingTag::state),
            Some(ShtagState::Backup)
        );
        assert!(
            w.changes.is_empty(),
            "created as backup: no change to report"
        );
    }

    #[test]
    fn compatible_mode_does_nothing_when_the_active_node_goes_away() {
        let mut w = World::new(&[(2, 50, false)]);
        let mut tags = compat(ShtagState::Backup);
        tags.on_active(&mut w, n(2), "vip");
        w.set_reachable(2, false);
        tags.on_node_event(&mut w, n(2), false);
        run_checks(&mut tags, &mut w, 60_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        assert!(!tags.takeover_scheduled());
    }

    #[test]
    fn an_election_tag_cannot_be_set_active_by_hand() {
        let mut w = World::new(&[]);
        let mut tags = election(0);
        assert_eq!(
            tags.set_active(&mut w, "vip", ShtagReason::MiCommand),
            Err(ShtagError::ElectionMode)
        );
        assert_eq!(tags.state("vip"), ShtagState::Backup);
    }

    #[test]
    fn the_best_reachable_node_takes_the_tag_after_the_hold_down() {
        let mut w = World::new(&[(2, 60, true), (3, 50, false)]);
        let mut tags = election(0);
        tags.reevaluate(&mut w);
        assert!(tags.takeover_scheduled());
        run_checks(&mut tags, &mut w, 2_500);
        assert_eq!(tags.state("vip"), ShtagState::Backup, "hold-down 3 s");
        run_checks(&mut tags, &mut w, 3_000);
        assert_eq!(tags.state("vip"), ShtagState::Active);
        assert_eq!(
            w.changes,
            [(vip(), ShtagState::Active, ShtagReason::Election)]
        );
        // Announced to every known node.
        assert_eq!(w.take_sent(), [(vip(), n(2)), (vip(), n(3))]);
    }

    #[test]
    fn a_node_outranked_by_an_eligible_peer_never_takes_the_tag() {
        let mut w = World::new(&[(2, 10, true)]);
        let mut tags = election(0);
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        // A peer with a better priority that is not eligible does not count.
        let mut w = World::new(&[(2, 10, false)]);
        let mut tags = election(0);
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Active);
    }

    #[test]
    fn no_takeover_before_the_start_up_bound() {
        let mut w = World::new(&[]);
        let mut tags = election(7_000);
        run_checks(&mut tags, &mut w, 6_500);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        run_checks(&mut tags, &mut w, 7_000);
        assert_eq!(tags.state("vip"), ShtagState::Active);
    }

    #[test]
    fn a_believed_active_announcer_blocks_the_takeover_until_it_goes_away() {
        let mut w = World::new(&[(2, 60, true)]);
        let mut tags = election(0);
        tags.on_active(&mut w, n(2), "vip");
        assert_eq!(
            tags.get("vip").and_then(SharingTag::known_active),
            Some(n(2))
        );
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        w.set_reachable(2, false);
        tags.on_node_event(&mut w, n(2), false);
        let gone = w.now;
        run_checks(&mut tags, &mut w, gone + 3_000);
        assert_eq!(tags.state("vip"), ShtagState::Active, "one hold-down after");
    }

    #[test]
    fn with_preempt_the_best_backup_takes_the_tag_from_a_worse_active_after_the_hold_down() {
        for preempt in [false, true] {
            let mut w = World::new(&[(2, 60, true), (3, 70, true)]);
            let mut tags = election_with(0, preempt);
            tags.on_active(&mut w, n(2), "vip");
            w.changes.clear();
            run_checks(&mut tags, &mut w, 2_500);
            assert_eq!(tags.state("vip"), ShtagState::Backup, "hold-down 3 s");
            run_checks(&mut tags, &mut w, 20_000);
            if !preempt {
                assert_eq!(
                    tags.state("vip"),
                    ShtagState::Backup,
                    "no preempt: it stays"
                );
                continue;
            }
            assert_eq!(
                w.changes,
                [(vip(), ShtagState::Active, ShtagReason::Preempt(n(2)))]
            );
            // The worse active hears it (and steps down, see two_actives_that_meet…).
            assert!(w.take_sent().contains(&(vip(), n(2))));
        }
    }

    #[test]
    fn preempt_never_takes_the_tag_from_a_better_active_or_past_a_better_backup() {
        // The active ranks better.
        let mut w = World::new(&[(2, 10, true)]);
        let mut tags = election_with(0, true);
        tags.on_active(&mut w, n(2), "vip");
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        // The active ranks worse, but another reachable eligible node ranks better: that
        // one preempts, not us.
        let mut w = World::new(&[(2, 60, true), (3, 10, true)]);
        let mut tags = election_with(0, true);
        tags.on_active(&mut w, n(2), "vip");
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
    }

    /// Node 2 (eligible, priority 60) announces itself while we cannot reach it yet, then
    /// becomes reachable.
    fn announced_before_reachable() -> (SharingTags, World) {
        let mut w = World::new(&[(2, 60, true)]);
        w.set_reachable(2, false);
        let mut tags = election(0);
        tags.on_active(&mut w, n(2), "vip");
        w.set_reachable(2, true);
        tags.on_node_event(&mut w, n(2), true);
        (tags, w)
    }

    #[test]
    fn an_announcement_arriving_before_its_sender_is_reachable_blocks_one_period() {
        // Period 8 s (2 × ping_interval) + ping_timeout 1 s: the early announcement blocks
        // a takeover for 9 s, but is not believed.
        let (mut tags, mut w) = announced_before_reachable();
        run_checks(&mut tags, &mut w, 8_500);
        assert_eq!(tags.state("vip"), ShtagState::Backup, "blocked");
        assert_eq!(tags.get("vip").and_then(SharingTag::known_active), None);
        // The active's repetition, now from a reachable node, is believed.
        tags.on_active(&mut w, n(2), "vip");
        run_checks(&mut tags, &mut w, 40_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        assert_eq!(
            tags.get("vip").and_then(SharingTag::known_active),
            Some(n(2))
        );
    }

    #[test]
    fn an_early_announcement_that_is_never_repeated_expires_and_the_tag_is_taken() {
        // Campaign seed 6262: the sender stepped down before we could reach it; believing
        // its early announcement left nobody active. Without a repetition the block ends
        // after one period (+ ping_timeout) and the best node takes over a hold-down later.
        let (mut tags, mut w) = announced_before_reachable();
        run_checks(&mut tags, &mut w, 9_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        run_checks(&mut tags, &mut w, 12_500);
        assert_eq!(tags.state("vip"), ShtagState::Active);
    }

    #[test]
    fn two_actives_that_meet_resolve_to_the_better_one() {
        // We rank better (50 < 60): stay active and announce back.
        let mut w = World::new(&[(2, 60, true)]);
        let mut tags = election(0);
        run_checks(&mut tags, &mut w, 3_500);
        assert_eq!(tags.state("vip"), ShtagState::Active);
        w.take_sent();
        tags.on_active(&mut w, n(2), "vip");
        assert_eq!(tags.state("vip"), ShtagState::Active);
        assert_eq!(w.take_sent(), [(vip(), n(2))]);
        // A better node (priority 10) announces: we step down.
        let mut w = World::new(&[(2, 60, false), (3, 10, true)]);
        let mut tags = election(0);
        w.set_reachable(3, false);
        run_checks(&mut tags, &mut w, 3_500);
        assert_eq!(tags.state("vip"), ShtagState::Active);
        w.set_reachable(3, true);
        tags.on_active(&mut w, n(3), "vip");
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        assert_eq!(
            w.changes.last(),
            Some(&(vip(), ShtagState::Backup, ShtagReason::Broadcast(n(3))))
        );
    }

    #[test]
    fn an_active_election_node_repeats_its_announcement_once_per_period() {
        let mut w = World::new(&[(2, 60, true)]);
        let mut tags = election(0);
        run_checks(&mut tags, &mut w, 3_500);
        w.take_sent();
        let period = reannounce_period_ms(
            &ElectionConfig {
                preempt: false,
                hold_down_ms: 3_000,
            },
            &Timers::default(),
        );
        assert_eq!(period, 8_000, "max(hold-down, 2 × ping_interval)");
        let start = w.now;
        let mut announced = Vec::new();
        while w.now < start + 3 * period {
            w.now += 1_000;
            tags.reannounce(&mut w);
            if !w.take_sent().is_empty() {
                announced.push(w.now - start);
            }
        }
        assert_eq!(announced, vec![period, 2 * period, 3 * period]);
    }

    #[test]
    fn an_announcer_that_restarted_is_forgotten_and_the_tag_taken_over() {
        let mut w = World::new(&[(2, 60, true)]);
        let mut tags = election(0);
        tags.on_active(&mut w, n(2), "vip");
        run_checks(&mut tags, &mut w, 10_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
        tags.forget_announcer(n(2));
        tags.reevaluate(&mut w);
        let t = w.now;
        run_checks(&mut tags, &mut w, t + 3_000);
        assert_eq!(tags.state("vip"), ShtagState::Active);
    }

    #[test]
    fn a_disabled_local_node_schedules_no_takeover() {
        let mut w = World::new(&[]);
        w.enabled = false;
        let mut tags = election(0);
        run_checks(&mut tags, &mut w, 20_000);
        assert_eq!(tags.state("vip"), ShtagState::Backup);
    }
}
