//! Sharing tags (behaviour.md §10) and the opt-in election mode.
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
//! * an active election node announces itself to every node that comes up, and again to
//!   every reachable node once per [`reannounce_period_ms`] (the hold-down, at least twice
//!   `ping_interval`; SHTAG_ACTIVE has no retransmission: a lost announcement would
//!   otherwise leave two actives until some node comes up again);
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

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::capability::ELECTION_CAPABILITY_PREFIX;
use crate::cluster::Cluster;
use crate::config::Timers;
use crate::id::{ClusterId, NodeId};
use crate::message::{BIN_VERSION, RoutedBody, ShtagActive};
use crate::node::{Ctx, Node};
use crate::output::Event;
use crate::send::SendStatus;
use crate::time::{Instant, Now};

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
}

impl fmt::Display for ShtagReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShtagReason::MiCommand => f.write_str("MI command"),
            ShtagReason::ScriptVariable => f.write_str("script variable"),
            ShtagReason::Api => f.write_str("internal API call"),
            ShtagReason::Broadcast(n) => write!(f, "cluster broadcast from {n}"),
            ShtagReason::Election => f.write_str("election (no active node reachable)"),
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
    /// announcement still blocks a takeover for one hold-down (it moves to `announcers`
    /// when the node becomes reachable, and is forgotten when the hold-down passes first).
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
    pub(crate) fn new(name: &str, state: ShtagState, election: Option<ElectionConfig>) -> Self {
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
type Rank = (bool, i32, NodeId);

impl Ctx<'_> {
    fn local_rank(&self, c: &Cluster) -> Rank {
        (false, c.local.priority, self.s.my_id)
    }

    fn remote_rank(&self, c: &Cluster, tag: &str, node: NodeId) -> Option<Rank> {
        let n = c.node(node)?;
        let advert = format!("{ELECTION_CAPABILITY_PREFIX}{tag}");
        let eligible = n.capabilities.iter().any(|r| r.name == advert && r.ok);
        Some((!eligible, n.priority, node))
    }

    fn tag_index(c: &mut Cluster, name: &str) -> usize {
        match c.shtags.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                // Created as backup on first reference (§10.1).
                c.shtags
                    .push(SharingTag::new(name, ShtagState::Backup, None));
                c.shtags.len() - 1
            }
        }
    }

    fn change_state(&mut self, c: &mut Cluster, index: usize, to: ShtagState, reason: ShtagReason) {
        let tag = &mut c.shtags[index];
        if tag.state == to {
            return;
        }
        tag.state = to;
        let text = format!(
            "TAG <{}>, cluster {}, became {} due to {reason}",
            tag.name,
            c.id,
            to.name()
        );
        self.out.shtag_reports.push(self.now.unix_time, text);
        let reason = format!("{reason}");
        self.out.event(Event::ShtagChanged {
            name: tag.name.clone(),
            cluster: c.id,
            state: to,
            reason,
        });
    }

    fn send_shtag(&mut self, c: &mut Cluster, index: usize, dest: NodeId) -> SendStatus {
        let tag = c.shtags[index].name.clone();
        self.send_one(
            c,
            dest,
            BIN_VERSION,
            RoutedBody::ShtagActive(ShtagActive { tag }),
        )
    }

    fn record_announced(&mut self, c: &mut Cluster, index: usize, dest: NodeId, s: SendStatus) {
        let tag = &mut c.shtags[index];
        if s == SendStatus::Success {
            if !tag.announced.contains(&dest) {
                tag.announced.push(dest);
            }
        } else {
            tag.announce_pending = true;
        }
    }

    /// `shtag_activate` (behaviour.md §10.2).
    pub(crate) fn shtag_activate(&mut self, c: &mut Cluster, index: usize, reason: ShtagReason) {
        self.change_state(c, index, ShtagState::Active, reason);
        let now = self.now.instant;
        let timers = &self.s.timers;
        if let Some(e) = &mut c.shtags[index].election {
            e.activate_at = None;
            e.announcers.clear();
            e.early_announcers.clear();
            e.reannounce_at = Some(now.plus(reannounce_period_ms(&e.config, timers)));
        }
        let targets: Vec<NodeId> = c.nodes.iter().map(|n| n.id).collect();
        for dest in targets {
            let tag = &c.shtags[index];
            if tag.announce_pending && tag.announced.contains(&dest) {
                continue;
            }
            let status = self.send_shtag(c, index, dest);
            self.record_announced(c, index, dest, status);
        }
    }

    /// SHTAG_ACTIVE received (behaviour.md §10.3; election conflict rule).
    pub(crate) fn handle_shtag_active(&mut self, c: &mut Cluster, source: NodeId, name: &str) {
        let index = Self::tag_index(c, name);
        if c.shtags[index].election.is_some() {
            let mine = self.local_rank(c);
            let theirs = self.remote_rank(c, name, source);
            if c.shtags[index].state == ShtagState::Active && theirs.is_some_and(|t| mine < t) {
                // Two actives met and we rank better: stay, and tell the other.
                let status = self.send_shtag(c, index, source);
                self.record_announced(c, index, source, status);
                return;
            }
            if let Some(e) = &mut c.shtags[index].election
                && !e.announcers.contains(&source)
            {
                e.announcers.push(source);
            }
        }
        if self.s.fault_injection.skip_shtag_demotion && c.shtags[index].state == ShtagState::Active
        {
            // Test-only breakage (config::FaultInjection): the tag stays active.
            return;
        }
        let tag = &mut c.shtags[index];
        tag.announce_pending = false;
        tag.announced.clear();
        self.change_state(c, index, ShtagState::Backup, ShtagReason::Broadcast(source));
        self.shtags_reevaluate(c);
    }

    /// Sharing-tag side of node events (behaviour.md §10.4 plus election mode).
    pub(crate) fn shtags_on_node_event(&mut self, c: &mut Cluster, node: NodeId, up: bool) {
        for index in 0..c.shtags.len() {
            let tag = &mut c.shtags[index];
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
                let status = self.send_shtag(c, index, node);
                self.record_announced(c, index, node, status);
            }
        }
        self.shtags_reevaluate(c);
    }

    /// Election mode: `node` restarted (its CAP_UPDATE counter started again), so it holds
    /// no tag active any more; forget it as an announcer (re-evaluated by the caller).
    pub(crate) fn shtags_forget_announcer(&mut self, c: &mut Cluster, node: NodeId) {
        for tag in &mut c.shtags {
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
    pub(crate) fn shtags_reannounce(&mut self, c: &mut Cluster) {
        let now = self.now.instant;
        let rerouting = self.s.rerouting;
        for index in 0..c.shtags.len() {
            let active = c.shtags[index].state == ShtagState::Active;
            let Some(e) = &mut c.shtags[index].election else {
                continue;
            };
            if !active {
                e.reannounce_at = None;
                continue;
            }
            let period = reannounce_period_ms(&e.config, &self.s.timers);
            match e.reannounce_at {
                Some(at) if at > now => continue,
                None => {
                    e.reannounce_at = Some(now.plus(period));
                    continue;
                }
                Some(_) => e.reannounce_at = Some(now.plus(period)),
            }
            for dest in reachable_nodes(c, rerouting) {
                let status = self.send_shtag(c, index, dest);
                self.record_announced(c, index, dest, status);
            }
        }
    }

    /// Election mode: schedules or cancels takeovers after a change of reachability,
    /// eligibility or announcements.
    pub(crate) fn shtags_reevaluate(&mut self, c: &mut Cluster) {
        if !c.local.enabled {
            return;
        }
        let rerouting = self.s.rerouting;
        let mine = self.local_rank(c);
        for index in 0..c.shtags.len() {
            if c.shtags[index].state != ShtagState::Backup {
                continue;
            }
            let name = c.shtags[index].name.clone();
            let reachable = reachable_nodes(c, rerouting);
            let ranks: Vec<Rank> = reachable
                .iter()
                .filter_map(|&n| self.remote_rank(c, &name, n))
                .collect();
            let Some(e) = &mut c.shtags[index].election else {
                continue;
            };
            let now = self.now.instant;
            for &a in &e.announcers {
                if !reachable.contains(&a) && !e.early_announcers.iter().any(|&(x, _)| x == a) {
                    e.early_announcers.push((a, now));
                }
            }
            e.announcers.retain(|a| reachable.contains(a));
            let hold_down = e.config.hold_down_ms;
            e.early_announcers.retain(|&(a, at)| {
                if reachable.contains(&a) {
                    if !e.announcers.contains(&a) {
                        e.announcers.push(a);
                    }
                    false
                } else {
                    now.since(at) < hold_down
                }
            });
            // The best announcer is the one believed active. A worse one loses any conflict
            // with it, silently (nothing tells the others it stepped down): forget it, or
            // it would be believed active after the best one is gone.
            e.announcers
                .sort_by_key(|a| ranks.iter().find(|r| r.2 == *a).copied());
            e.announcers.truncate(1);
            let best = ranks.iter().filter(|r| !r.0).all(|r| mine < *r);
            if !e.announcers.is_empty() || !e.early_announcers.is_empty() || !best {
                e.activate_at = None;
            } else if e.activate_at.is_none() {
                let after_hold_down = self.now.instant.plus(e.config.hold_down_ms);
                e.activate_at = Some(after_hold_down.max(self.s.election_not_before));
            }
        }
    }

    /// The election timer: activates tags whose hold-down expired.
    pub(crate) fn shtag_check(&mut self, c: &mut Cluster) {
        self.shtags_reevaluate(c);
        let now = self.now.instant;
        for index in 0..c.shtags.len() {
            let due = c.shtags[index]
                .election
                .as_ref()
                .and_then(|e| e.activate_at)
                .is_some_and(|at| at <= now);
            if due && c.shtags[index].state == ShtagState::Backup {
                self.shtag_activate(c, index, ShtagReason::Election);
            }
        }
    }
}

/// How often an active election node announces its tag again: the hold-down, but at least
/// twice `ping_interval`. Routed traffic keeps a link from sending keep-alives
/// (behaviour.md §3.2 rule 5), so a repetition faster than `ping_interval` would stop every
/// relay on the way from noticing that its next hop no longer answers (a one-way
/// partition): the repetition must leave keep-alive gaps.
pub fn reannounce_period_ms(config: &ElectionConfig, timers: &Timers) -> u64 {
    config.hold_down_ms.max(2 * timers.ping_interval_ms())
}

/// The enabled nodes of `c` we have a route to (routes refreshed first).
fn reachable_nodes(c: &mut Cluster, rerouting: bool) -> Vec<NodeId> {
    c.refresh_routes();
    c.nodes
        .iter()
        .filter(|n| n.enabled && c.cached_route(n.id, rerouting).is_some())
        .map(|n| n.id)
        .collect()
}

impl Node {
    /// `clusterer_shtag_set_active` / `$cluster.sh_tag = "active"` / API: makes the tag
    /// active (creating it if unknown) and announces it (behaviour.md §10.2).
    ///
    /// A tag in election mode cannot be set active by hand: its owner follows the
    /// (eligible, priority, id) order, and a manual move would be reverted by the next
    /// conflict. To move it, disable the active node or change priorities.
    ///
    /// # Errors
    /// [`ShtagError::UnknownCluster`], [`ShtagError::ElectionMode`]; nothing changed.
    pub fn shtag_set_active(
        &mut self,
        now: Now,
        name: &str,
        cluster: ClusterId,
        reason: ShtagReason,
    ) -> Result<(), ShtagError> {
        self.with_ctx(now, cluster, |ctx, c| {
            if c.shtags
                .iter()
                .any(|t| t.name == name && t.election.is_some())
            {
                return Err(ShtagError::ElectionMode);
            }
            let index = Ctx::tag_index(c, name);
            ctx.shtag_activate(c, index, reason);
            Ok(())
        })
        .unwrap_or(Err(ShtagError::UnknownCluster))
    }

    /// The state of a tag (backup for an unknown tag of a known cluster, as OpenSIPS
    /// creates it on first reference); `None` for an unknown cluster.
    pub fn shtag_state(&self, name: &str, cluster: ClusterId) -> Option<ShtagState> {
        let c = self.cluster(cluster)?;
        Some(
            c.shtags
                .iter()
                .find(|t| t.name == name)
                .map_or(ShtagState::Backup, |t| t.state),
        )
    }

    /// Every sharing tag with its cluster (MI `clusterer_list_shtags`).
    pub fn shtags(&self) -> impl Iterator<Item = (ClusterId, &SharingTag)> {
        self.clusters
            .iter()
            .flat_map(|c| c.shtags.iter().map(move |t| (c.id, t)))
    }
}
