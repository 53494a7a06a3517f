//! Invariants checked after every step of a run, against the [model](crate::sim::model):
//!
//! * [`ElectionWatch`]: an election-mode sharing tag is never active on two nodes of one
//!   connected component once that component has been stable for the settle time;
//! * [`ReachabilityWatch`]: a node a node reports reachable (its `NODE_STATE_CHANGED` UP
//!   flag) is reachable in the model, except while the loss is still being detected.
//!
//! Both are cheap when nothing changed: they recompute only when the simulator's
//! [`epoch`](Sim::epoch), the topology versions or the event count moved, or when a
//! deadline they set passes.

use std::collections::{BTreeMap, BTreeSet};

use clusterer_core::{ClusterId, Instant, NodeId, ShtagState};

use crate::sim::Sim;
use crate::sim::model::{components, distances};
use crate::sim::rng::mix;

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
/// running nodes (a paused node acts on nothing and is left out until it resumes). When a
/// component forms or changes, its members get `settle_ms` to resolve conflicts: enough for
/// the gossip of the new link to reach every member and for one SHTAG_ACTIVE round trip
/// between any two of them (see [`ElectionWatch::settle_for`]).
#[derive(Clone, Debug)]
pub struct ElectionWatch {
    cluster: ClusterId,
    tag: String,
    settle_ms: u64,
    last: Option<Signature>,
    /// Per node: hash of its component's members, and since when.
    membership: BTreeMap<NodeId, (u64, Instant)>,
    /// The earliest time a conflict seen now becomes a violation.
    deadline: Option<Instant>,
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
            membership: BTreeMap::new(),
            deadline: None,
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

    /// Checks after a step; returns the violation, if any.
    pub fn check(&mut self, sim: &Sim) -> Option<String> {
        let sig = Signature::of(sim, self.cluster);
        let due = self.deadline.is_some_and(|d| sim.now() >= d);
        if self.last == Some(sig) && !due {
            return None;
        }
        self.last = Some(sig);
        self.deadline = None;
        self.checks += 1;
        let now = sim.now();
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
        for comp in comps {
            let here: Vec<NodeId> = comp
                .iter()
                .copied()
                .filter(|id| actives.contains(id))
                .collect();
            if here.len() < 2 {
                continue;
            }
            let since = here
                .iter()
                .filter_map(|id| self.membership.get(id).map(|m| m.1))
                .max()
                .unwrap_or(now);
            let settled = since.plus(self.settle_ms);
            if now >= settled {
                return Some(format!(
                    "tag {} active on {here:?} in one connected component {comp:?}, stable since {since} (settle {} ms)",
                    self.tag, self.settle_ms
                ));
            }
            self.deadline = Some(self.deadline.map_or(settled, |d| d.min(settled)));
        }
        None
    }
}

/// A node reported reachable is reachable in the model, except while its loss is being
/// detected: a report may lag the model by at most `bound_ms`, counted while the observer
/// runs (a paused observer detects nothing).
#[derive(Clone, Debug)]
pub struct ReachabilityWatch {
    cluster: ClusterId,
    bound_ms: u64,
    period_ms: u64,
    last: Option<Signature>,
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
            last: None,
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

    /// Checks after a step; returns the new violations.
    pub fn check(&mut self, sim: &Sim) -> Vec<String> {
        let now = sim.now();
        let sig = Signature::of(sim, self.cluster);
        let periodic = self.last_at.is_none_or(|t| now.since(t) >= self.period_ms);
        if self.last == Some(sig) && !periodic {
            return Vec::new();
        }
        self.last = Some(sig);
        self.last_at = Some(now);
        let g = sim.working_graph(self.cluster);
        let mut wrong = BTreeMap::new();
        let mut out = Vec::new();
        for observer in sim.running_ids() {
            let Some(c) = sim.node(observer).and_then(|n| n.cluster(self.cluster)) else {
                continue;
            };
            let claimed: Vec<NodeId> = c
                .nodes()
                .iter()
                .filter(|n| n.is_reachable())
                .map(|n| n.id())
                .collect();
            if claimed.is_empty() {
                continue;
            }
            let reach = distances(&g, observer);
            for node in claimed {
                if reach.contains_key(&node) {
                    continue;
                }
                let key = (observer, node);
                let since = self.wrong_since.get(&key).copied().unwrap_or(now);
                wrong.insert(key, since);
                if now.since(since) > self.bound_ms && self.reported.insert(key) {
                    out.push(format!(
                        "n{observer} reports n{node} reachable, but it has been unreachable in the model since {since} (bound {} ms)",
                        self.bound_ms
                    ));
                }
            }
        }
        self.reported.retain(|k| wrong.contains_key(k));
        self.wrong_since = wrong;
        out
    }
}
