//! Invariants checked after every step of a run, against the [model](crate::sim::model):
//!
//! * [`ElectionWatch`]: an election-mode sharing tag is never active on two nodes of one
//!   connected component that accept each other's packets, once the component has been
//!   stable and both have been active for the settle time;
//! * [`ReachabilityWatch`]: a node a node reports reachable (its `NODE_STATE_CHANGED` UP
//!   flag) is reachable in the model, except while the loss is still being detected.
//!
//! The election watch recomputes when the simulator's [`epoch`](Sim::epoch), the topology
//! versions or the event count moved (at most every 50 ms), when a deadline it set passes,
//! and every 500 ms; the reachability watch runs periodically.

use std::collections::{BTreeMap, BTreeSet};

use clusterer_core::{ClusterId, Instant, NodeId, ShtagState};

use crate::sim::Sim;
use crate::sim::model::components;
use crate::sim::rng::mix;

/// A known limitation of the protocol: a peer missed a restarted node's seq-0 updates and
/// ignores its updates until its counter passes the old value (docs/wire.md §8, docs/behaviour.md
/// §17 quirk #13, *mimic*). Our nodes take a node's own update with a newer timestamp as
/// its restart (`clusterer_core::SeqStamp::check`), which leaves the restarts within the
/// second of the previous update, and views a third party re-taught before the restart
/// was seen.
pub const RESTART_MISSED: &str = "restart-missed";
/// A conflict of two election actives where the better one's SHTAG_ACTIVE never reached
/// the worse one within the settle time. The active node repeats its announcement once per
/// re-announcement period (`clusterer_core::shtag::reannounce_period_ms`) and campaign
/// settle times include one period, so this now needs every repetition lost too (or the
/// better node not seeing the worse one as reachable). Before the repetition, one lost
/// announcement (dropped by a relay without a route, looping while routes converge, lost to
/// a reset) left two actives until a node came up again: 1 run in 300 of the campaign.
pub const ANNOUNCEMENT_LOST: &str = "announcement-lost";
/// A known limitation of the topology and capability gossip: there is no anti-entropy, so
/// a link change nobody was told of (a node's first link after its start: no other UP
/// neighbour to send the LS_UPDATE to, no counter increment; later ones are counted, see
/// `clusterer_core` topology) or a lost update (LS_UPDATE, a single CAP_UPDATE)
/// stays missing from third parties' views until a FULL_TOP_UPDATE with a newer counter, or
/// a full CAP_UPDATE at the next link-up, reaches them.
pub const GOSSIP_GAP: &str = "gossip-gap";

/// What a watch found: a violated invariant, or a behaviour a known limitation explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `None` for a violation; the name of the known limitation otherwise
    /// ([`RESTART_MISSED`], [`ANNOUNCEMENT_LOST`], [`GOSSIP_GAP`]).
    pub limitation: Option<&'static str>,
    /// What exactly.
    pub text: String,
}

impl Finding {
    fn new(limitation: Option<&'static str>, text: String) -> Self {
        Finding { limitation, text }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limitation {
            Some(l) => write!(f, "(known limitation {l}) {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// Whether `observer`'s claim that `target` is reachable rests on stale gossip, and which
/// known limitation explains it: the claim is explained when every path to `target` in the
/// observer's view uses a link the observer stores for some node X but X itself no longer
/// lists — [`RESTART_MISSED`] when the observer holds X's stamp from before X's restart,
/// [`GOSSIP_GAP`] otherwise. A claim that first-hand lists support (links their own nodes
/// still list) is not explained: some node has not detected a dead link in time.
pub fn stale_path_explains(
    sim: &Sim,
    cluster: ClusterId,
    observer: NodeId,
    target: NodeId,
) -> Option<&'static str> {
    let c = sim.node(observer)?.cluster(cluster)?;
    let stale_incarnation: BTreeSet<NodeId> = sim
        .stale_incarnations(cluster)
        .into_iter()
        .filter(|&(o, _)| o == observer)
        .map(|(_, s)| s)
        .collect();
    let mut adjacency: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
    adjacency.insert(observer, c.local_adjacency().to_vec());
    let mut pruned_restarted = false;
    for r in c.nodes() {
        let own = sim
            .stored_adjacency(r.id(), cluster, r.id())
            .unwrap_or_default();
        let (kept, pruned): (Vec<NodeId>, Vec<NodeId>) =
            c.adjacency(r.id()).iter().partition(|y| own.contains(y));
        if !pruned.is_empty() && stale_incarnation.contains(&r.id()) {
            pruned_restarted = true;
        }
        adjacency.insert(r.id(), kept);
    }
    let mut seen = BTreeSet::from([observer]);
    let mut queue = std::collections::VecDeque::from([observer]);
    while let Some(x) = queue.pop_front() {
        if x == target {
            return None;
        }
        for &y in adjacency.get(&x).into_iter().flatten() {
            if y != observer && seen.insert(y) {
                queue.push_back(y);
            }
        }
    }
    Some(if pruned_restarted {
        RESTART_MISSED
    } else {
        GOSSIP_GAP
    })
}

/// Shortest spacing (ms) of the election watch's recomputations after a change.
const RECHECK_MS: u64 = 50;
/// Longest spacing (ms) of the election watch's recomputations.
const PERIOD_MS: u64 = 500;

/// What the model looked like at the last recomputation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Signature {
    epoch: u64,
    topology: u64,
    events: usize,
}

impl Signature {
    fn of(sim: &Sim, cluster: ClusterId) -> Self {
        Signature {
            epoch: sim.epoch(),
            topology: sim.topology_signature(cluster),
            events: sim.events().len(),
        }
    }
}

/// Never two actives of an election-mode tag in one connected component after settle.
///
/// Components are taken over the links both ends see UP and that really work, among
/// running nodes (a paused node acts on nothing and is left out until it resumes). Two
/// actives conflict when they share a component and accept each other's packets
/// ([`Sim::mutually_admitted`]: a node that disabled a peer, or does not know it, drops
/// everything from it, so the two cannot settle anything — by design of §7). A conflict
/// must be gone `settle_ms` after the later of the component's last change and the later
/// activation of the two (the documented guarantee holds once the announcements crossed):
/// enough for the gossip of a new link to reach every member and for one SHTAG_ACTIVE
/// round trip between any two of them (see [`ElectionWatch::settle_for`]).
#[derive(Clone, Debug)]
pub struct ElectionWatch {
    cluster: ClusterId,
    tag: String,
    settle_ms: u64,
    last: Option<Signature>,
    /// When the model was last recomputed.
    last_at: Option<Instant>,
    /// Per node: hash of its component's members, and since when.
    membership: BTreeMap<NodeId, (u64, Instant)>,
    /// The earliest time a conflict seen now becomes a violation.
    deadline: Option<Instant>,
    /// Since when each pair of actives has been in one component and accepting each
    /// other's packets.
    pair_since: BTreeMap<(NodeId, NodeId), Instant>,
    /// Most actives seen at once in one component after settle (for reports).
    pub checks: u64,
}

impl ElectionWatch {
    /// Watches tag `tag` of `cluster` with a settle time of `settle_ms`.
    pub fn new(cluster: ClusterId, tag: &str, settle_ms: u64) -> Self {
        ElectionWatch {
            cluster,
            tag: tag.into(),
            settle_ms,
            last: None,
            last_at: None,
            membership: BTreeMap::new(),
            deadline: None,
            pair_since: BTreeMap::new(),
            checks: 0,
        }
    }

    /// A settle time for a cluster of `nodes` whose links take at most `max_latency_ms`:
    /// once the link joining two components is UP on both ends, its LS_UPDATE and
    /// FULL_TOP_UPDATE reach every member over at most `nodes − 1` hops, each member that
    /// sees an active node come up announces itself, and a conflict is settled by one more
    /// SHTAG_ACTIVE in each direction (rank ties need the CAP_UPDATE adverts, which travel
    /// with the same floods). Four such traversals plus one second of slack.
    pub fn settle_for(nodes: u32, max_latency_ms: u64) -> u64 {
        4 * u64::from(nodes.max(2) - 1) * max_latency_ms + 1_000
    }

    /// The running nodes where the tag is active.
    pub fn actives(sim: &Sim, cluster: ClusterId, tag: &str) -> Vec<NodeId> {
        sim.running_ids()
            .into_iter()
            .filter(|&id| {
                sim.node(id).and_then(|n| n.shtag_state(tag, cluster)) == Some(ShtagState::Active)
            })
            .collect()
    }

    /// Checks after a step; returns what it found, if anything. A conflict where the
    /// worse-ranked active never received a SHTAG_ACTIVE from the better one since they
    /// were both active and connected is [`ANNOUNCEMENT_LOST`]; one where either holds a
    /// stale view of a restarted peer is [`RESTART_MISSED`]; any other is a violation (the
    /// better node's announcement arrived and the worse one did not step down).
    pub fn check(&mut self, sim: &Sim) -> Option<Finding> {
        let now = sim.now();
        let due = self.deadline.is_some_and(|d| now >= d);
        let since_last = self.last_at.map_or(u64::MAX, |t| now.since(t));
        // Changes are looked at no more often than every RECHECK_MS (times of change are
        // then seen up to that late, which only lengthens the grace a conflict gets; a
        // component cannot split, elect a second active and re-form within it).
        if !due && since_last < RECHECK_MS {
            return None;
        }
        let sig = Signature::of(sim, self.cluster);
        if self.last == Some(sig) && !due && since_last < PERIOD_MS {
            return None;
        }
        self.last = Some(sig);
        self.last_at = Some(now);
        self.deadline = None;
        self.checks += 1;
        let comps = components(&sim.up_graph(self.cluster));
        let mut membership = BTreeMap::new();
        for comp in &comps {
            let h = comp
                .iter()
                .fold(0x636f_6d70u64, |h, id| mix(h ^ u64::from(id.get())));
            for &id in comp {
                let since = match self.membership.get(&id) {
                    Some(&(old, since)) if old == h => since,
                    _ => now,
                };
                membership.insert(id, (h, since));
            }
        }
        self.membership = membership;
        let actives: BTreeSet<NodeId> = Self::actives(sim, self.cluster, &self.tag)
            .into_iter()
            .collect();
        let mut pairs = BTreeMap::new();
        let mut found = None;
        for comp in comps {
            let here: Vec<NodeId> = comp
                .iter()
                .copied()
                .filter(|id| actives.contains(id))
                .collect();
            for (i, &a) in here.iter().enumerate() {
                for &b in &here[i + 1..] {
                    if !sim.mutually_admitted(self.cluster, a, b) {
                        continue;
                    }
                    let together = self.pair_since.get(&(a, b)).copied().unwrap_or(now);
                    pairs.insert((a, b), together);
                    let since = [a, b]
                        .iter()
                        .filter_map(|id| self.membership.get(id).map(|m| m.1))
                        .chain([together])
                        .max()
                        .unwrap_or(now);
                    let settled = since.plus(self.settle_ms);
                    if found.is_none() && now >= settled {
                        let text = format!(
                            "tag {} active on n{a} and n{b} in one connected component {comp:?}, both active and connected since {since} (settle {} ms)",
                            self.tag, self.settle_ms
                        );
                        let stale = sim
                            .stale_incarnations(self.cluster)
                            .iter()
                            .any(|&(o, _)| o == a || o == b);
                        // The conflict rule demotes the worse of the two when the better
                        // one's SHTAG_ACTIVE reaches it (rank: priority, then id).
                        let rank = |x: NodeId| {
                            let prio = sim
                                .node(x)
                                .and_then(|n| n.cluster(self.cluster))
                                .map_or(i32::MAX, |c| c.local().priority());
                            (prio, x)
                        };
                        let (better, worse) = if rank(a) < rank(b) { (a, b) } else { (b, a) };
                        let told = sim
                            .relays()
                            .last_shtag_delivery(&self.tag, better, worse)
                            .is_some_and(|t| t >= since);
                        let limitation = if stale {
                            Some(RESTART_MISSED)
                        } else if !told {
                            Some(ANNOUNCEMENT_LOST)
                        } else {
                            None
                        };
                        found = Some(Finding::new(limitation, text));
                    }
                    self.deadline = Some(self.deadline.map_or(settled, |d| d.min(settled)));
                }
            }
        }
        self.pair_since = pairs;
        found
    }
}

/// A node reported reachable is reachable in the model, except while its loss is being
/// detected: a report may lag the model by at most `bound_ms` (checked every `period_ms`),
/// counted while the observer runs (a paused observer detects nothing) and from the last
/// routed packet sent without an answer possible ([`Sim::last_silent_send`]: into the
/// void, or one way across an asymmetric partition): such traffic suppresses the
/// keep-alive PINGs that detect a silent peer (docs/behaviour.md §3.2 rule 5, documented OpenSIPS behaviour). An
/// observer that disabled a peer is not judged while it does (its view of that peer's
/// links is frozen by design, §7).
#[derive(Clone, Debug)]
pub struct ReachabilityWatch {
    cluster: ClusterId,
    bound_ms: u64,
    period_ms: u64,
    last_at: Option<Instant>,
    /// (observer, node) → since when the observer reports it reachable while the model
    /// says it is not.
    wrong_since: BTreeMap<(NodeId, NodeId), Instant>,
    reported: BTreeSet<(NodeId, NodeId)>,
}

impl ReachabilityWatch {
    /// Watches `cluster` with a detection bound of `bound_ms`, recomputing at least every
    /// `period_ms` of virtual time.
    pub fn new(cluster: ClusterId, bound_ms: u64, period_ms: u64) -> Self {
        ReachabilityWatch {
            cluster,
            bound_ms,
            period_ms,
            last_at: None,
            wrong_since: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// The detection bound for timers I (`ping_interval_ms`), T (`ping_timeout_ms`), R
    /// retries and heartbeat `tick_ms`: every neighbour of a node that stops answering
    /// sends it a PING within I and gives up after R retries T apart, declaring the link
    /// DOWN one tick later (I + T × (R + 1) + 2 ticks, as the topology scenarios check);
    /// the LS_UPDATE reaches the observer within milliseconds. A stale route through a
    /// neighbour that itself lost its link is detected the same way, so twice that, plus a
    /// second for the gossip.
    pub fn bound_for(
        ping_interval_ms: u64,
        ping_timeout_ms: u64,
        retries: u64,
        tick_ms: u64,
    ) -> u64 {
        2 * (ping_interval_ms + ping_timeout_ms * (retries + 1) + 2 * tick_ms) + 1_000
    }

    /// Checks after a step; returns what it found (a claim explained by a stale view of a
    /// restarted peer or a gap in the observer's topology is a known limitation).
    pub fn check(&mut self, sim: &Sim) -> Vec<Finding> {
        let now = sim.now();
        // Periodic only: the bound is seconds, a period of a fraction of one is plenty.
        if self.last_at.is_some_and(|t| now.since(t) < self.period_ms) {
            return Vec::new();
        }
        self.last_at = Some(now);
        // The working graph is undirected: reachable = same component.
        let mut component: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (i, comp) in components(&sim.working_graph(self.cluster))
            .into_iter()
            .enumerate()
        {
            for id in comp {
                component.insert(id, i);
            }
        }
        let mut wrong = BTreeMap::new();
        let mut out = Vec::new();
        for observer in sim.running_ids() {
            let Some(c) = sim.node(observer).and_then(|n| n.cluster(self.cluster)) else {
                continue;
            };
            if c.nodes().iter().any(|n| !n.enabled()) {
                // The observer ignores every packet a peer it disabled originates, so its view
                // of that peer's links freezes and may still route through them (§7): its
                // claims are judged once the peer is enabled again.
                continue;
            }
            let claimed: Vec<NodeId> = c
                .nodes()
                .iter()
                .filter(|n| n.is_reachable())
                .map(|n| n.id())
                .collect();
            if claimed.is_empty() {
                continue;
            }
            let mine = component.get(&observer);
            for node in claimed {
                if mine.is_some() && component.get(&node) == mine {
                    continue;
                }
                let key = (observer, node);
                let since = self.wrong_since.get(&key).copied().unwrap_or(now);
                wrong.insert(key, since);
                let from = since.max(sim.last_silent_send().unwrap_or(Instant::ZERO));
                if now.since(from) > self.bound_ms && self.reported.insert(key) {
                    let text = format!(
                        "n{observer} reports n{node} reachable, but it has been unreachable in the model since {since} (bound {} ms)",
                        self.bound_ms
                    );
                    let why = stale_path_explains(sim, self.cluster, observer, node);
                    out.push(Finding::new(why, text));
                }
            }
        }
        self.reported.retain(|k| wrong.contains_key(k));
        self.wrong_since = wrong;
        out
    }
}
