//! The randomized simulation campaign: one seed → one cluster, one fault schedule, one
//! verdict. A run has a **fault phase** (random faults, admin actions, live capability
//! traffic and syncs) and a **heal phase** (faults stop and are undone; liveness must follow
//! within a bound computed from the timers). Safety invariants are checked after every
//! step of both phases, liveness at the end of the heal. Everything derives from the seed
//! and the [`CampaignOptions`], so [`replay_line`] reruns a run exactly, trace included.
//!
//! **The cluster** ([`Plan`]): 2–16 nodes (or `--nodes`), `db_mode` 0 or 1 (in db_mode 0
//! each node is provisioned with a path toward node 1 only and learns the rest), random
//! timers, priorities and retries, latency 1–50 ms per link with up to 20 ms jitter, an
//! optional bandwidth per connection, chunked delivery, and topology constraints: a random
//! spanning tree always works, every other pair never works with a per-seed probability.
//! Node 1 is a seed; every node registers the key/value capability of [`crate::sim::kv`]
//! (most with a startup sync) and holds an election-mode tag `vip` and a compatible-mode
//! tag `cfg`.
//!
//! **Faults** ([`FaultKind`], grouped by [`FaultMix`]): crash and restart, pause and
//! resume, symmetric and one-way partitions, splits, connection resets, wall-clock jumps,
//! disabling and enabling nodes and links, REMOVE_NODE (db_mode 0), `set_active` of the
//! compatible tag, disabling and enabling the capability and asking for a sync. Live
//! updates and GENERIC_MSGs flow all along.
//!
//! **Clock jumps** are bounded by what the core documents: a node's updates carry its
//! wall clock, a restarted node is recognised only by a *newer* timestamp on a seq 0 or on
//! its own update with a counter not above the stored one (docs/wire.md §8, `SeqStamp::check`),
//! and stamps older than the sender's current incarnation are stale. So forward jumps
//! happen any time (up to 5 minutes), backward jumps (up to 20 s) only while a node is
//! down, and a crashed node restarts only once its clock shows a second later than
//! anything it stamped before (the heal waits for it).
//! Backward jumps of running nodes are opt-in (`clock-back`); they can make peers ignore a
//! node's updates, which the liveness checks then report.
//!
//! **Safety** (after every step): no panic; the per-node invariants of
//! [`crate::sim::inspect::endpoint_violations`] (queues and tables within their caps, own
//! adjacency = UP links, reachability flags = next hops); no routed packet emitted more
//! than `4 × nodes + 16` times ([`RelayTracker`](crate::sim::RelayTracker)); live updates
//! applied once, in arrival order, and every completed sync applied exactly one snapshot of
//! its donor ([`crate::sim::kv`]); never two actives of `vip` in one connected component
//! once it has been stable for the settle time ([`ElectionWatch`]); a node reported
//! reachable is reachable in the model, within the detection bound ([`ReachabilityWatch`]).
//!
//! **Liveness** (by the end of the heal, bound [`Plan::heal_bound_ms`]): every pair of live
//! nodes that may work sees its link UP (and the others do not); identical stored
//! topology; every next hop on a shortest path with the (priority, id) tie-break, computed
//! independently from the model; exactly one `vip` active; every capability enabled and
//! synced. Then probes: a GENERIC_MSG between every ordered pair arrives in exactly the
//! shortest-path hop count, and a live update from every node reaches every other; no live
//! update that arrived anywhere is left unapplied.
//!
//! **Heal**: partitions lifted (not the constraints), paused nodes resumed, crashed nodes
//! restarted (once their clock allows), nodes and peers enabled, capabilities enabled and
//! asked to sync, and after REMOVE_NODEs the removed nodes and those that forgot their
//! provisioned peers restarted (an operator re-provisioning them).
//!
//! **Known limitations.** Some failures come from documented or design-level properties of
//! the protocol rather than from bugs; each has a precise signature
//! ([`crate::sim::checks`]): a peer that missed a restarted node's seq-0 updates ignores it
//! ([`RESTART_MISSED`], quirk #13; our nodes now follow most restarts), an election
//! announcement lost together with its repetitions ([`ANNOUNCEMENT_LOST`]), a topology list
//! or capability state that missed a change nobody re-sends ([`GOSSIP_GAP`]), the answers
//! of two requests to the same donor mixed in one sync ([`SYNC_REPLIES_MIXED`]: SYNC packets
//! carry no request id). Such a failure is recorded as a [`Violation`] with `limitation`
//! set and the run goes on (liveness checks stop there); it fails the campaign only in
//! strict mode. The detection bound of reachability also accounts for routed traffic that
//! cannot be answered (sent into the void, or one way across an asymmetric partition),
//! which postpones keep-alives by design (docs/behaviour.md §3.2 rule 5), and for peers the
//! observer disabled (§7: their packets are ignored, so their links are not learned).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use clusterer_core::message::{GenericKind, GenericMsg, RoutedBody};
use clusterer_core::{
    ClusterConfig, Config, DbMode, ElectionConfig, FaultInjection, Instant, LinkState, NodeConfig,
    NodeId, ShtagConfig, ShtagReason, ShtagState, SyncStatus,
};
use clusterer_proto::EndpointOptions;

use crate::sim::checks::{
    ANNOUNCEMENT_LOST, ElectionWatch, Finding, GOSSIP_GAP, RESTART_MISSED, ReachabilityWatch,
};
use crate::sim::kv::{KvStats, SYNC_REPLIES_MIXED, lock};
use crate::sim::model::{Graph, distances, expected_next_hop};
use crate::sim::rng::mix;
use crate::sim::{
    CLUSTER, KV_CAPABILITY, KvSend, KvSpec, LatencyModel, NodeStatus, Sim, SimOptions, SimRng,
    TraceMode, nid, node_url,
};

/// The election-mode sharing tag every node holds.
pub const ELECTION_TAG: &str = "vip";
/// The compatible-mode sharing tag every node holds.
pub const COMPAT_TAG: &str = "cfg";
/// Largest backward clock jump (s) of a crashed node.
const CLOCK_BACK_MAX_S: u64 = 20;
/// Largest forward clock jump (s).
const CLOCK_FORWARD_MAX_S: u64 = 300;
/// Keys the live updates write (small, so writers collide).
const KEYS: u64 = 64;

/// One kind of fault or admin action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A running or paused node crashes (state lost).
    Crash,
    /// A crashed node restarts (once its clock allows).
    Restart,
    /// A running node stops processing (SIGSTOP).
    Pause,
    /// A paused node resumes.
    Resume,
    /// Traffic between two nodes is blocked both ways.
    Partition,
    /// Traffic from one node to another is blocked.
    OneWay,
    /// The cluster is cut in two groups.
    Split,
    /// One pair, or everything, is healed.
    Heal,
    /// The connections between two nodes are reset (bytes in flight lost).
    Reset,
    /// A node's wall clock jumps forward.
    ClockForward,
    /// A crashed node's wall clock jumps back.
    ClockBack,
    /// A running node's wall clock jumps back (opt-in).
    ClockBackRunning,
    /// A node disables itself (`clusterer_set_status` on its own id).
    DisableNode,
    /// A disabled node enables itself.
    EnableNode,
    /// A node disables another one in its table.
    DisableLink,
    /// A node enables a node it had disabled.
    EnableLink,
    /// REMOVE_NODE (db_mode 0).
    RemoveNode,
    /// `clusterer_shtag_set_active` of the compatible tag.
    SetActive,
    /// The capability is disabled (`clusterer_set_cap_status`).
    CapDisable,
    /// The capability is enabled again.
    CapEnable,
    /// A sync is requested (`cl_request_sync`).
    RequestSync,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 21] = [
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Resume,
        FaultKind::Partition,
        FaultKind::OneWay,
        FaultKind::Split,
        FaultKind::Heal,
        FaultKind::Reset,
        FaultKind::ClockForward,
        FaultKind::ClockBack,
        FaultKind::ClockBackRunning,
        FaultKind::DisableNode,
        FaultKind::EnableNode,
        FaultKind::DisableLink,
        FaultKind::EnableLink,
        FaultKind::RemoveNode,
        FaultKind::SetActive,
        FaultKind::CapDisable,
        FaultKind::CapEnable,
        FaultKind::RequestSync,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Resume => "resume",
            FaultKind::Partition => "partition",
            FaultKind::OneWay => "one-way partition",
            FaultKind::Split => "split",
            FaultKind::Heal => "heal",
            FaultKind::Reset => "connection reset",
            FaultKind::ClockForward => "clock forward",
            FaultKind::ClockBack => "clock back (down)",
            FaultKind::ClockBackRunning => "clock back (running)",
            FaultKind::DisableNode => "disable node",
            FaultKind::EnableNode => "enable node",
            FaultKind::DisableLink => "disable peer",
            FaultKind::EnableLink => "enable peer",
            FaultKind::RemoveNode => "remove node",
            FaultKind::SetActive => "set_active",
            FaultKind::CapDisable => "capability off",
            FaultKind::CapEnable => "capability on",
            FaultKind::RequestSync => "request sync",
        }
    }

    fn group(self) -> Group {
        match self {
            FaultKind::Crash | FaultKind::Restart => Group::Crash,
            FaultKind::Pause | FaultKind::Resume => Group::Pause,
            FaultKind::Partition | FaultKind::OneWay | FaultKind::Split | FaultKind::Heal => {
                Group::Partition
            }
            FaultKind::Reset => Group::Reset,
            FaultKind::ClockForward | FaultKind::ClockBack => Group::Clock,
            FaultKind::ClockBackRunning => Group::ClockBack,
            FaultKind::DisableNode
            | FaultKind::EnableNode
            | FaultKind::DisableLink
            | FaultKind::EnableLink
            | FaultKind::RemoveNode
            | FaultKind::SetActive => Group::Admin,
            FaultKind::CapDisable | FaultKind::CapEnable | FaultKind::RequestSync => {
                Group::Capability
            }
        }
    }
}

/// Groups of fault kinds that `--faults` switches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Crash,
    Pause,
    Partition,
    Reset,
    Clock,
    ClockBack,
    Admin,
    Capability,
}

impl Group {
    const ALL: [Group; 8] = [
        Group::Crash,
        Group::Pause,
        Group::Partition,
        Group::Reset,
        Group::Clock,
        Group::ClockBack,
        Group::Admin,
        Group::Capability,
    ];

    fn name(self) -> &'static str {
        match self {
            Group::Crash => "crash",
            Group::Pause => "pause",
            Group::Partition => "partition",
            Group::Reset => "reset",
            Group::Clock => "clock",
            Group::ClockBack => "clock-back",
            Group::Admin => "admin",
            Group::Capability => "capability",
        }
    }

    /// In the default mix (`all`).
    fn default_on(self) -> bool {
        !matches!(self, Group::ClockBack)
    }
}

/// Which fault groups a campaign injects: `all` (every group but the opt-in `clock-back`),
/// `none`, or a comma list of `crash`, `pause`, `partition`, `reset`, `clock`,
/// `clock-back`, `admin`, `capability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultMix(u16);

impl FaultMix {
    /// The default mix.
    pub fn all() -> Self {
        FaultMix(
            Group::ALL
                .iter()
                .filter(|g| g.default_on())
                .fold(0, |m, g| m | (1 << *g as u16)),
        )
    }

    /// No faults (live traffic only).
    pub fn none() -> Self {
        FaultMix(0)
    }

    fn has(self, g: Group) -> bool {
        self.0 & (1 << g as u16) != 0
    }

    /// Whether a kind is switched on.
    pub fn allows(self, kind: FaultKind) -> bool {
        self.has(kind.group())
    }

    /// Parses `all`, `none` or a comma list of group names.
    ///
    /// # Errors
    /// The unknown group name.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "all" => return Ok(Self::all()),
            "none" => return Ok(Self::none()),
            _ => {}
        }
        let mut bits = 0u16;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some(g) = Group::ALL.iter().find(|g| g.name() == part) else {
                let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                return Err(format!(
                    "unknown fault group {part:?} (all, none, {})",
                    names.join(", ")
                ));
            };
            bits |= 1 << *g as u16;
        }
        Ok(FaultMix(bits))
    }
}

impl Default for FaultMix {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for FaultMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::all() {
            return f.write_str("all");
        }
        if self.0 == 0 {
            return f.write_str("none");
        }
        let names: Vec<&str> = Group::ALL
            .iter()
            .filter(|g| self.has(**g))
            .map(|g| g.name())
            .collect();
        f.write_str(&names.join(","))
    }
}

/// What a campaign run varies besides the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignOptions {
    /// Cluster size (else drawn from the seed, 2–16).
    pub nodes: Option<u32>,
    /// Fault groups.
    pub faults: FaultMix,
    /// Test-only breakage in every node's core (see [`FaultInjection`]).
    pub inject: FaultInjection,
    /// What the trace keeps.
    pub trace: TraceMode,
}

impl Default for CampaignOptions {
    fn default() -> Self {
        CampaignOptions {
            nodes: None,
            faults: FaultMix::all(),
            inject: FaultInjection::default(),
            trace: TraceMode::Off,
        }
    }
}

/// The command line of the `sim` binary (also used to check that a replay line replays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignArgs {
    /// `--seeds N`: how many seeds.
    pub seeds: u64,
    /// `--first-seed S`.
    pub first: u64,
    /// `--seed S`: one seed only.
    pub one: Option<u64>,
    /// Add the 128-node run (off with `--no-big` or `--nodes`).
    pub big: bool,
    /// `--nodes`, `--faults`, `--inject`.
    pub options: CampaignOptions,
    /// `--trace FILE`.
    pub trace: Option<String>,
    /// `--verbose`: print the trace.
    pub verbose: bool,
    /// `--jobs J`.
    pub jobs: usize,
    /// `--strict`: known limitations fail the campaign too.
    pub strict: bool,
}

impl CampaignArgs {
    /// Usage text.
    pub const USAGE: &str = "\
usage: sim [OPTIONS]

Runs the simulation campaign: random clusters under random faults, safety invariants after
every step, liveness invariants after the heal phase, exact replay by seed.

Options:
  --seeds N          run seeds FIRST..FIRST+N (default 100), plus one 128-node run
  --first-seed S     first seed of --seeds (default 0)
  --seed S           run this one seed only (the replay form)
  --nodes N          cluster size (default: drawn per seed, 2-16); no extra 128-node run
  --no-big           no extra 128-node run
  --faults MIX       all (default), none, or a comma list of
                     crash,pause,partition,reset,clock,clock-back,admin,capability
  --inject FAULT     test-only core breakage: skip-shtag-demotion
  --trace FILE       (one seed) write the full trace to FILE
  --verbose          (one seed) print the full trace to stdout
  --jobs J           worker threads (default: available cores)
  --strict           count failures explained by a known limitation as violations
  -h, --help         this text";

    /// Parses the arguments after the program name.
    ///
    /// # Errors
    /// A text naming the bad option.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut out = CampaignArgs {
            seeds: 100,
            first: 0,
            one: None,
            big: true,
            options: CampaignOptions::default(),
            trace: None,
            verbose: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            strict: false,
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
            let number = |v: String, name: &str| -> Result<u64, String> {
                v.parse().map_err(|_| format!("{name}: not a number: {v}"))
            };
            match flag.as_str() {
                "--seeds" => out.seeds = number(value("--seeds")?, "--seeds")?,
                "--first-seed" => out.first = number(value("--first-seed")?, "--first-seed")?,
                "--seed" => out.one = Some(number(value("--seed")?, "--seed")?),
                "--nodes" => {
                    let n = number(value("--nodes")?, "--nodes")?;
                    if !(1..=128).contains(&n) {
                        return Err("--nodes must be 1..=128".into());
                    }
                    out.options.nodes = Some(n as u32);
                }
                "--no-big" => out.big = false,
                "--faults" => out.options.faults = FaultMix::parse(&value("--faults")?)?,
                "--inject" => match value("--inject")?.as_str() {
                    "skip-shtag-demotion" => {
                        out.options.inject = FaultInjection {
                            skip_shtag_demotion: true,
                        };
                    }
                    other => return Err(format!("unknown --inject {other}")),
                },
                "--trace" => out.trace = Some(value("--trace")?),
                "--verbose" => out.verbose = true,
                "--strict" => out.strict = true,
                "--jobs" => out.jobs = number(value("--jobs")?, "--jobs")?.max(1) as usize,
                "-h" | "--help" => return Err(Self::USAGE.into()),
                other => return Err(format!("unknown option {other} (try --help)")),
            }
        }
        if out.options.nodes.is_some() {
            out.big = false;
        }
        Ok(out)
    }

    /// Parses the part of a [`replay_line`] after `--`.
    ///
    /// # Errors
    /// As [`CampaignArgs::parse`]; a line without `--`.
    pub fn from_replay_line(line: &str) -> Result<Self, String> {
        let (_, args) = line.split_once(" -- ").ok_or("no -- in the replay line")?;
        Self::parse(args.split_whitespace().map(str::to_string))
    }
}

/// The command line that replays `seed` with `options` and writes its trace.
pub fn replay_line(seed: u64, options: &CampaignOptions) -> String {
    let mut line = format!("cargo run --release -p clusterer-tests --bin sim -- --seed {seed}");
    if let Some(n) = options.nodes {
        line.push_str(&format!(" --nodes {n}"));
    }
    if options.faults != FaultMix::all() {
        line.push_str(&format!(" --faults {}", options.faults));
    }
    if options.inject.skip_shtag_demotion {
        line.push_str(" --inject skip-shtag-demotion");
    }
    line.push_str(&format!(" --trace clusterer-sim-{seed}.trace"));
    line
}

/// The cluster and schedule parameters a seed draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u32,
    /// Provisioning mode.
    pub db_mode: DbMode,
    /// `ping_interval` (s).
    pub ping_interval_s: u32,
    /// `ping_timeout` (ms).
    pub ping_timeout_ms: u32,
    /// `node_timeout` (s).
    pub node_timeout_s: u32,
    /// `seed_fallback_interval` (s).
    pub seed_fallback_s: u32,
    /// `sync_timeout` (s).
    pub sync_timeout_s: u32,
    /// `sync_packet_size`.
    pub sync_packet_size: usize,
    /// Election hold-down (ms).
    pub hold_down_ms: u64,
    /// Priority of each node (the same in every view).
    pub priority: BTreeMap<NodeId, i32>,
    /// `no_ping_retries` each node is provisioned with.
    pub retries: BTreeMap<NodeId, u32>,
    /// Link latency.
    pub latency: LatencyModel,
    /// Bandwidth per connection direction (bytes/ms, 0 = unlimited).
    pub bytes_per_ms: u64,
    /// Random cuts of delivered streams.
    pub chunking: bool,
    /// Pairs that never work.
    pub forbidden: BTreeSet<(NodeId, NodeId)>,
    /// In db_mode 0: the nodes each node is provisioned with.
    pub known: BTreeMap<NodeId, Vec<NodeId>>,
    /// Nodes whose capability asks for a sync at startup.
    pub startup_sync: BTreeSet<NodeId>,
    /// The node configured active for the compatible tag.
    pub compat_active: NodeId,
    /// Records node 1 starts with.
    pub preload: u64,
    /// Length of the fault phase (ms).
    pub fault_phase_ms: u64,
}

fn pick<T: Copy>(rng: &mut SimRng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

impl Plan {
    /// Draws the plan of `seed` (`nodes` overrides the drawn size; the draw happens anyway,
    /// so everything else stays the same).
    pub fn new(seed: u64, nodes: Option<u32>) -> Self {
        let mut rng = SimRng::new(mix(seed ^ 0x706c_616e_5f76_3100));
        let drawn = rng.range(2, 16) as u32;
        let n = nodes.unwrap_or(drawn).clamp(1, 128);
        let big = n > 16;
        let db_mode = if rng.chance(1, 2) {
            DbMode::Database
        } else {
            DbMode::Discovery
        };
        let ping_interval_s = pick(&mut rng, &[1, 2, 4]);
        let ping_timeout_ms = pick(&mut rng, &[500, 1000]);
        let node_timeout_s = pick(&mut rng, &[10, 30, 60]);
        let seed_fallback_s = rng.range(2, 5) as u32;
        let sync_timeout_s = rng.range(3, 15) as u32;
        let sync_packet_size = pick(&mut rng, &[128, 512, 4096, 32768]);
        let hold_down_ms = rng.range(1_000, 4_000);
        let ids: Vec<NodeId> = (1..=n).map(nid).collect();
        let priority = ids.iter().map(|&i| (i, rng.range(10, 60) as i32)).collect();
        let retries = ids.iter().map(|&i| (i, rng.range(1, 3) as u32)).collect();
        let min_ms = rng.range(1, 5);
        let latency = LatencyModel {
            min_ms,
            max_ms: min_ms + rng.range(0, 45),
            jitter_ms: rng.range(0, 20),
        };
        let bytes_per_ms = if rng.chance(1, 2) {
            0
        } else {
            rng.range(200, 2_000)
        };
        let chunking = rng.chance(1, 2);
        // A random tree (each node's parent has a lower id) always works; each other pair
        // never works with a per-seed probability (dense or sparse clusters).
        let mut parent = BTreeMap::new();
        for i in 2..=n {
            parent.insert(nid(i), nid(rng.range(1, u64::from(i) - 1) as u32));
        }
        let cut_percent = if big {
            95
        } else {
            pick(&mut rng, &[0, 0, 20, 60])
        };
        let mut forbidden = BTreeSet::new();
        for a in 1..=n {
            for b in a + 1..=n {
                let tree = parent.get(&nid(b)) == Some(&nid(a));
                if !tree && rng.below(100) < cut_percent {
                    forbidden.insert((nid(a), nid(b)));
                }
            }
        }
        let mut known = BTreeMap::new();
        for &i in &ids {
            let mut list = Vec::new();
            if i == nid(1) && n > 1 {
                // Node 1 knows node 2 (whose parent it is), so it can rejoin after being
                // removed.
                list.push(nid(2));
            }
            if let Some(&p) = parent.get(&i) {
                list.push(p);
                if i.get() > 2 && rng.chance(1, 3) {
                    let other = nid(rng.range(1, u64::from(i.get()) - 1) as u32);
                    if !list.contains(&other) {
                        list.push(other);
                    }
                }
            }
            known.insert(i, list);
        }
        let startup_sync = ids
            .iter()
            .copied()
            .filter(|&i| i == nid(1) || rng.chance(4, 5))
            .collect();
        let compat_active = nid(rng.range(1, u64::from(n)) as u32);
        let preload = rng.range(0, 300);
        let fault_phase_ms = if big {
            30_000
        } else {
            rng.range(20_000, 120_000)
        };
        Plan {
            seed,
            nodes: n,
            db_mode,
            ping_interval_s,
            ping_timeout_ms,
            node_timeout_s,
            seed_fallback_s,
            sync_timeout_s,
            sync_packet_size,
            hold_down_ms,
            priority,
            retries,
            latency,
            bytes_per_ms,
            chunking,
            forbidden,
            known,
            startup_sync,
            compat_active,
            preload,
            fault_phase_ms,
        }
    }

    /// Whether the pair `a`–`b` may ever work.
    pub fn allowed(&self, a: NodeId, b: NodeId) -> bool {
        let key = if a < b { (a, b) } else { (b, a) };
        !self.forbidden.contains(&key)
    }

    fn ids(&self) -> Vec<NodeId> {
        (1..=self.nodes).map(nid).collect()
    }

    fn node_config(&self, id: NodeId, peer: NodeId) -> NodeConfig {
        let mut c = NodeConfig::new(peer, node_url(peer.get()));
        c.priority = self.priority[&peer];
        c.no_ping_retries = self.retries[&peer];
        if peer == id {
            c.seed = id == nid(1);
        }
        c
    }

    /// The configuration of node `id`, with the test-only `inject` switches.
    pub fn config(&self, id: NodeId, inject: FaultInjection) -> Config {
        let mut config = Config::new(id, self.db_mode);
        config.timers.ping_interval_s = self.ping_interval_s;
        config.timers.ping_timeout_ms = self.ping_timeout_ms;
        config.timers.node_timeout_s = self.node_timeout_s;
        config.timers.seed_fallback_interval_s = self.seed_fallback_s;
        config.timers.sync_timeout_s = self.sync_timeout_s;
        config.sync_packet_size = self.sync_packet_size;
        config.fault_injection = inject;
        let peers: Vec<NodeId> = match self.db_mode {
            DbMode::Database => self.ids().into_iter().filter(|&p| p != id).collect(),
            DbMode::Discovery => self.known.get(&id).cloned().unwrap_or_default(),
        };
        config.clusters.push(ClusterConfig {
            id: CLUSTER,
            local: self.node_config(id, id),
            nodes: peers.iter().map(|&p| self.node_config(id, p)).collect(),
        });
        config.sharing_tags.push(ShtagConfig {
            name: ELECTION_TAG.into(),
            cluster: CLUSTER,
            state: ShtagState::Backup,
            election: Some(ElectionConfig {
                hold_down_ms: self.hold_down_ms,
                preempt: false,
            }),
        });
        config.sharing_tags.push(ShtagConfig {
            name: COMPAT_TAG.into(),
            cluster: CLUSTER,
            state: if id == self.compat_active {
                ShtagState::Active
            } else {
                ShtagState::Backup
            },
            election: None,
        });
        config
    }

    fn max_retries(&self) -> u64 {
        u64::from(self.retries.values().copied().max().unwrap_or(3))
    }

    fn timers(&self) -> clusterer_core::Timers {
        clusterer_core::Timers {
            ping_interval_s: self.ping_interval_s,
            ping_timeout_ms: self.ping_timeout_ms,
            node_timeout_s: self.node_timeout_s,
            ..clusterer_core::Timers::default()
        }
    }

    fn tick_ms(&self) -> u64 {
        self.timers().heartbeat_ms()
    }

    /// Worst one-hop delay: base latency, jitter, and a backlog allowance for a sync
    /// burst on a bandwidth-limited connection.
    pub fn hop_ms(&self) -> u64 {
        let backlog = if self.bytes_per_ms > 0 { 100 } else { 0 };
        self.latency.max_ms + self.latency.jitter_ms + backlog
    }

    /// Settle time of the election watch: [`ElectionWatch::settle_for`] plus one
    /// re-announcement period of the active node
    /// ([`clusterer_core::shtag::reannounce_period_ms`], run at a heartbeat), the bound
    /// when the announcements of the meeting were lost on the way.
    pub fn settle_ms(&self) -> u64 {
        let election = ElectionConfig {
            hold_down_ms: self.hold_down_ms,
            preempt: false,
        };
        let period = clusterer_core::shtag::reannounce_period_ms(&election, &self.timers());
        ElectionWatch::settle_for(self.nodes, self.hop_ms()) + period + self.tick_ms()
    }

    /// Detection bound of the reachability watch ([`ReachabilityWatch::bound_for`]) plus
    /// the gossip over the longest path.
    pub fn detect_ms(&self) -> u64 {
        ReachabilityWatch::bound_for(
            u64::from(self.ping_interval_s) * 1000,
            u64::from(self.ping_timeout_ms),
            self.max_retries(),
            self.tick_ms(),
        ) + u64::from(self.nodes) * self.hop_ms()
    }

    /// Liveness bound of the heal phase, from the start of the heal:
    ///
    /// * crashed nodes restart once their clock passed what they stamped before: at most
    ///   `CLOCK_BACK_MAX_S` + 1 s;
    /// * links: a DOWN link is re-probed within `node_timeout` (N) of its last ping; a link
    ///   still retrying ends its retries within `ping_timeout` × (R + 1); the answer comes a
    ///   round trip later, and the tick quantises each step: N + I + T × (R + 1) + 3 ticks;
    /// * discovery (db_mode 0): a node learned or re-learned costs a probe round (PING,
    ///   UNKNOWN_ID, NODE_DESCRIPTION, probe at the next tick): 6 ticks;
    /// * sync: once links are UP the best donor answers within milliseconds, unless its
    ///   answer is lost (a relay without a route) and the first-packet timeout retries, or
    ///   no node is synced and the seed falls back: 2 × sync_timeout + seed_fallback + 1 s;
    /// * election: hold-down + one sync check + the settle time;
    /// * gossip over the longest path, and 2 s of slack.
    pub fn heal_bound_ms(&self) -> u64 {
        let tick = self.tick_ms();
        let restart = (CLOCK_BACK_MAX_S + 1) * 1000;
        let links = u64::from(self.node_timeout_s) * 1000
            + u64::from(self.ping_interval_s) * 1000
            + u64::from(self.ping_timeout_ms) * (self.max_retries() + 1)
            + 3 * tick;
        let discovery = 6 * tick;
        let sync = 2 * u64::from(self.sync_timeout_s) * 1000
            + u64::from(self.seed_fallback_s) * 1000
            + 1000;
        let election = self.hold_down_ms + 500 + self.settle_ms();
        restart + links + discovery + sync + election + u64::from(self.nodes) * self.hop_ms() + 2000
    }
}

/// A violated invariant, or a failure a known limitation of the protocol explains (see
/// [`crate::sim::checks`]: [`RESTART_MISSED`], [`GOSSIP_GAP`], [`ANNOUNCEMENT_LOST`]). A
/// violation ends the run; a limitation is recorded (once per kind and invariant) and the
/// run goes on, except that liveness explained by one ends the checks of the heal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant (a short name).
    pub invariant: &'static str,
    /// `Some(name)` when a known limitation explains it (not a violation).
    pub limitation: Option<&'static str>,
    /// When it was found.
    pub at: Instant,
    /// What exactly.
    pub text: String,
}

impl Violation {
    /// Whether this is a violation (not explained by a known limitation).
    pub fn is_violation(&self) -> bool {
        self.limitation.is_none()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limitation {
            Some(l) => write!(
                f,
                "[{}, explained by the known limitation {l}] at {}: {}",
                self.invariant, self.at, self.text
            ),
            None => write!(f, "[{}] at {}: {}", self.invariant, self.at, self.text),
        }
    }
}

/// The verdict and counters of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u32,
    /// Provisioning mode.
    pub db_mode: DbMode,
    /// Virtual time simulated (ms).
    pub simulated_ms: u64,
    /// Simulator steps.
    pub steps: u64,
    /// Faults applied, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// The first violation, if any (the run stops there).
    pub violation: Option<Violation>,
    /// Failures explained by known limitations (the first of each kind and invariant).
    pub limitations: Vec<Violation>,
    /// Capability traffic.
    pub kv: KvStats,
    /// Most hops a delivered routed packet took.
    pub max_hops: u32,
    /// Hash of the trace (0 with the trace off).
    pub trace_hash: u64,
}

/// One run in progress.
struct Run {
    plan: Plan,
    options: CampaignOptions,
    sim: Sim,
    rng: SimRng,
    faults: BTreeMap<FaultKind, u64>,
    election: ElectionWatch,
    reach: ReachabilityWatch,
    violations_seen: u64,
    /// (observer, peer) pairs an admin action disabled.
    disabled_links: BTreeSet<(NodeId, NodeId)>,
    next_message: u64,
    /// The nodes the current action picked (for the trace).
    picked: Vec<NodeId>,
    /// Nodes a REMOVE_NODE named.
    removed: BTreeSet<NodeId>,
    limitations: Vec<Violation>,
}

type Checked<T> = Result<T, Violation>;

/// Runs `seed` and returns its outcome and the simulator (for its trace).
pub fn run(seed: u64, options: &CampaignOptions) -> (Outcome, Sim) {
    let plan = Plan::new(seed, options.nodes);
    let mut sim_options = SimOptions::new(seed);
    sim_options.latency = plan.latency;
    sim_options.chunking = plan.chunking;
    sim_options.trace = options.trace;
    sim_options.record_packets = false;
    sim_options.check_invariants = true;
    sim_options.track_relays = true;
    sim_options.bytes_per_ms = plan.bytes_per_ms;
    let mut sim = Sim::new(sim_options);
    sim.relays_mut().limit = 4 * plan.nodes + 16;
    let election = ElectionWatch::new(CLUSTER, ELECTION_TAG, plan.settle_ms());
    let reach = ReachabilityWatch::new(CLUSTER, plan.detect_ms(), 250);
    let mut r = Run {
        rng: SimRng::new(mix(seed ^ 0x6661_756c_7473)),
        plan,
        options: options.clone(),
        sim,
        faults: BTreeMap::new(),
        election,
        reach,
        violations_seen: 0,
        disabled_links: BTreeSet::new(),
        next_message: 0,
        picked: Vec::new(),
        removed: BTreeSet::new(),
        limitations: Vec::new(),
    };
    let violation = r.drive().err();
    let kv = lock(r.sim.kv_world()).stats();
    let limitations = std::mem::take(&mut r.limitations);
    let outcome = Outcome {
        seed,
        nodes: r.plan.nodes,
        db_mode: r.plan.db_mode,
        simulated_ms: r.sim.now().as_millis(),
        steps: r.sim.steps(),
        faults: r.faults,
        violation,
        limitations,
        kv,
        max_hops: r.sim.relays().max_hops,
        trace_hash: r.sim.trace().hash(),
    };
    (outcome, r.sim)
}

impl Run {
    fn violation(&self, invariant: &'static str, text: String) -> Violation {
        Violation {
            invariant,
            limitation: None,
            at: self.sim.now(),
            text,
        }
    }

    fn finding(&self, invariant: &'static str, f: Finding) -> Violation {
        Violation {
            invariant,
            limitation: f.limitation,
            at: self.sim.now(),
            text: f.text,
        }
    }

    fn drive(&mut self) -> Checked<()> {
        self.setup()?;
        self.fault_phase()?;
        if self.heal_phase()? {
            self.probe()?;
        }
        Ok(())
    }

    /// Records a finding: a violation ends the run, a known limitation is kept (first of
    /// each kind) and the run goes on.
    fn record(&mut self, v: Violation) -> Checked<()> {
        if v.is_violation() {
            return Err(v);
        }
        let seen = self
            .limitations
            .iter()
            .any(|l| l.limitation == v.limitation && l.invariant == v.invariant);
        if !seen {
            self.sim
                .note(format_args!("campaign: known limitation: {v}"));
            self.limitations.push(v);
        }
        Ok(())
    }

    fn setup(&mut self) -> Checked<()> {
        let ids = self.plan.ids();
        for (a, b) in self.plan.forbidden.clone() {
            self.sim.forbid(a, b);
        }
        for &id in &ids {
            let config = self.plan.config(id, self.options.inject);
            let at = Instant::from_millis(self.rng.below(1_000));
            if let Err(e) = self
                .sim
                .add_node_with(config, EndpointOptions::default(), Some(at))
            {
                return Err(self.violation("setup", format!("n{id}: {e}")));
            }
            let spec = KvSpec::new(self.plan.startup_sync.contains(&id));
            let _ = self.sim.set_kv(id, spec);
        }
        let first = nid(1);
        self.run_checked(Instant::from_millis(1_000))?;
        if self.plan.preload > 0 {
            let _ = self.sim.kv_preload(first, 0, self.plan.preload);
        }
        Ok(())
    }

    // ----- checks ------------------------------------------------------------------------

    /// Safety checks after a step or an action.
    fn check(&mut self) -> Checked<()> {
        if self.sim.violation_count() > self.violations_seen {
            self.violations_seen = self.sim.violation_count();
            let text = self.sim.violations().last().cloned().unwrap_or_default();
            if text.contains("routing loop:") {
                // Nodes route over their gossiped views; a loop outlives convergence only
                // when some view stays wrong.
                let v = self.explained("routing-loop", text);
                return self.record(v);
            }
            let invariant = if text.contains("sync/live updates:") {
                "sync-data"
            } else {
                "node-invariant"
            };
            return Err(self.violation(invariant, text));
        }
        let mixed = lock(self.sim.kv_world()).take_limitations();
        for text in mixed {
            let v = self.finding(
                "sync-data",
                Finding {
                    limitation: Some(SYNC_REPLIES_MIXED),
                    text,
                },
            );
            self.record(v)?;
        }
        if let Some(f) = self.election.check(&self.sim) {
            let v = self.finding("election-safety", f);
            self.record(v)?;
        }
        for f in self.reach.check(&self.sim) {
            let v = self.finding("reachability", f);
            self.record(v)?;
        }
        Ok(())
    }

    /// Steps until `until`, checking after every step.
    fn run_checked(&mut self, until: Instant) -> Checked<()> {
        while self.sim.next_time().is_some_and(|t| t <= until) {
            self.sim.step();
            self.check()?;
        }
        self.sim.run_until(until);
        self.check()
    }

    // ----- fault phase ---------------------------------------------------------------------

    fn fault_phase(&mut self) -> Checked<()> {
        let end = self.sim.now().plus(self.plan.fault_phase_ms);
        let mut next_fault = self.sim.now().plus(self.rng.range(500, 6_000));
        let mut next_traffic = self.sim.now().plus(self.rng.range(50, 800));
        // Traffic comes in bursts: routed traffic toward a peer postpones the keep-alives
        // that would detect its loss (docs/behaviour.md §3.2 rule 5), so quiet spells let the
        // detection bounds be checked.
        let mut traffic_on = true;
        let mut toggle_at = self.sim.now().plus(self.rng.range(2_000, 10_000));
        while self.sim.now() < end {
            let until = next_fault.min(next_traffic).min(end);
            self.run_checked(until)?;
            if self.sim.now() >= toggle_at {
                traffic_on = !traffic_on;
                let span = if traffic_on {
                    self.rng.range(2_000, 10_000)
                } else {
                    self.rng.range(5_000, 30_000)
                };
                toggle_at = self.sim.now().plus(span);
            }
            if self.sim.now() >= next_traffic {
                if traffic_on {
                    self.traffic();
                    self.check()?;
                }
                next_traffic = self.sim.now().plus(self.rng.range(50, 800));
            }
            if self.sim.now() >= next_fault && self.sim.now() < end {
                self.fault();
                self.check()?;
                next_fault = self.sim.now().plus(self.rng.range(500, 6_000));
            }
        }
        Ok(())
    }

    fn ids(&self) -> Vec<NodeId> {
        self.plan.ids()
    }

    fn with_status(&self, status: &[NodeStatus]) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|&id| self.sim.status(id).is_some_and(|s| status.contains(&s)))
            .collect()
    }

    fn pick_node(&mut self, status: &[NodeStatus]) -> Option<NodeId> {
        let nodes = self.with_status(status);
        let id = self.rng.pick(&nodes).copied();
        self.picked.extend(id);
        id
    }

    fn pick_pair(&mut self) -> Option<(NodeId, NodeId)> {
        let ids = self.ids();
        if ids.len() < 2 {
            return None;
        }
        let a = *self.rng.pick(&ids)?;
        let others: Vec<NodeId> = ids.into_iter().filter(|&b| b != a).collect();
        let b = *self.rng.pick(&others)?;
        self.picked.extend([a, b]);
        Some((a, b))
    }

    /// A running node and an enabled node in its node table.
    fn pick_running_and_known_peer(&mut self) -> Option<(NodeId, NodeId)> {
        let a = self.pick_node(&[NodeStatus::Running])?;
        let peers = self.known_enabled(a);
        let b = self.rng.pick(&peers).copied()?;
        self.picked.push(b);
        Some((a, b))
    }

    fn count(&mut self, kind: FaultKind) {
        *self.faults.entry(kind).or_default() += 1;
    }

    /// Live traffic: a key/value update (most of the time) or a GENERIC_MSG.
    fn traffic(&mut self) {
        let Some(writer) = self.pick_node(&[NodeStatus::Running]) else {
            return;
        };
        if self.rng.chance(7, 10) {
            let key = self.rng.below(KEYS);
            let how = match self.rng.below(10) {
                0..=6 => KvSend::Broadcast,
                7 | 8 => KvSend::EachNode,
                _ => {
                    let ids = self.ids();
                    KvSend::To(*self.rng.pick(&ids).unwrap_or(&writer))
                }
            };
            let _ = self.sim.kv_put(writer, key, how);
        } else if let Some((_, to)) = self.pick_pair().map(|(_, b)| (writer, b)) {
            if to == writer {
                return;
            }
            self.next_message += 1;
            let body = RoutedBody::GenericMsg(GenericMsg {
                kind: GenericKind::Request,
                tag: format!("1-{writer}-m{}", self.next_message).into_bytes(),
                payload: self.next_message.to_be_bytes().to_vec(),
            });
            let _ = self.sim.send_to(writer, CLUSTER, to, body);
        }
    }

    fn fault(&mut self) {
        let kinds: Vec<FaultKind> = FaultKind::ALL
            .iter()
            .copied()
            .filter(|&k| self.options.faults.allows(k))
            .filter(|&k| k != FaultKind::RemoveNode || self.plan.db_mode == DbMode::Discovery)
            .collect();
        let Some(&kind) = self.rng.pick(&kinds) else {
            return;
        };
        self.picked.clear();
        if self.apply(kind) {
            self.count(kind);
            let who: Vec<String> = self.picked.iter().map(|n| format!("n{n}")).collect();
            self.sim
                .note(format_args!("campaign: {} {}", kind.name(), who.join(" ")));
        }
    }

    /// Applies one fault; `false` when it did not apply (no suitable target).
    fn apply(&mut self, kind: FaultKind) -> bool {
        use NodeStatus::{Crashed, Paused, Running};
        match kind {
            FaultKind::Crash => match self.pick_node(&[Running, Paused]) {
                Some(id) => self.sim.crash(id).is_ok(),
                None => false,
            },
            FaultKind::Restart => match self.pick_node(&[Crashed]) {
                Some(id) if self.clock_allows_restart(id) => self.sim.restart(id).is_ok(),
                _ => false,
            },
            FaultKind::Pause => match self.pick_node(&[Running]) {
                Some(id) => self.sim.pause(id).is_ok(),
                None => false,
            },
            FaultKind::Resume => match self.pick_node(&[Paused]) {
                Some(id) => self.sim.resume(id).is_ok(),
                None => false,
            },
            FaultKind::Partition => match self.pick_pair() {
                Some((a, b)) => {
                    self.sim.partition(a, b);
                    true
                }
                None => false,
            },
            FaultKind::OneWay => match self.pick_pair() {
                Some((a, b)) => {
                    self.sim.partition_one_way(a, b);
                    true
                }
                None => false,
            },
            FaultKind::Split => {
                let mut ids = self.ids();
                if ids.len() < 2 {
                    return false;
                }
                self.rng.shuffle(&mut ids);
                let cut = self.rng.range(1, ids.len() as u64 - 1) as usize;
                let (left, right) = ids.split_at(cut);
                self.sim.split(&[left, right]);
                true
            }
            FaultKind::Heal => {
                if self.rng.chance(1, 3) {
                    self.sim.heal_all();
                } else if let Some((a, b)) = self.pick_pair() {
                    self.sim.heal(a, b);
                }
                true
            }
            FaultKind::Reset => match self.pick_pair() {
                Some((a, b)) => self.sim.reset_connections(a, b) > 0,
                None => false,
            },
            FaultKind::ClockForward => match self.pick_node(&[Running, Paused, Crashed]) {
                Some(id) => {
                    let offset = self.sim.clock_offset(id).unwrap_or(0);
                    let jump = self.rng.range(1, CLOCK_FORWARD_MAX_S) as i64;
                    self.sim.set_clock_offset(id, offset + jump).is_ok()
                }
                None => false,
            },
            FaultKind::ClockBack => match self.pick_node(&[Crashed]) {
                Some(id) => {
                    let offset = self.sim.clock_offset(id).unwrap_or(0);
                    let jump = self.rng.range(1, CLOCK_BACK_MAX_S) as i64;
                    self.sim.set_clock_offset(id, offset - jump).is_ok()
                }
                None => false,
            },
            FaultKind::ClockBackRunning => match self.pick_node(&[Running]) {
                Some(id) => {
                    let offset = self.sim.clock_offset(id).unwrap_or(0);
                    let jump = self.rng.range(1, 60) as i64;
                    self.sim.set_clock_offset(id, offset - jump).is_ok()
                }
                None => false,
            },
            FaultKind::DisableNode | FaultKind::EnableNode => {
                let enable = kind == FaultKind::EnableNode;
                let Some(id) = self.pick_node(&[Running]) else {
                    return false;
                };
                let is_enabled = self.local_enabled(id);
                if is_enabled == enable {
                    return false;
                }
                self.sim
                    .with_endpoint(id, |ep, now| ep.set_status(now, CLUSTER, None, enable))
                    .is_ok_and(|r| r.is_ok())
            }
            FaultKind::DisableLink => {
                let Some((a, b)) = self.pick_running_and_known_peer() else {
                    return false;
                };
                let done = self
                    .sim
                    .with_endpoint(a, |ep, now| ep.set_status(now, CLUSTER, Some(b), false))
                    .is_ok_and(|r| r.is_ok());
                if done {
                    self.disabled_links.insert((a, b));
                }
                done
            }
            FaultKind::EnableLink => {
                let list: Vec<(NodeId, NodeId)> = self.disabled_links.iter().copied().collect();
                let Some(&(a, b)) = self.rng.pick(&list) else {
                    return false;
                };
                self.picked.extend([a, b]);
                self.disabled_links.remove(&(a, b));
                self.sim
                    .with_endpoint(a, |ep, now| ep.set_status(now, CLUSTER, Some(b), true))
                    .is_ok_and(|r| r.is_ok())
            }
            FaultKind::RemoveNode => {
                let Some((a, b)) = self.pick_running_and_known_peer() else {
                    return false;
                };
                let done = self
                    .sim
                    .with_endpoint(a, |ep, now| ep.remove_node(now, CLUSTER, b))
                    .is_ok_and(|r| r.is_ok());
                if done {
                    self.removed.insert(b);
                }
                done
            }
            FaultKind::SetActive => match self.pick_node(&[Running]) {
                Some(id) => self
                    .sim
                    .with_endpoint(id, |ep, now| {
                        ep.shtag_set_active(now, COMPAT_TAG, CLUSTER, ShtagReason::MiCommand)
                    })
                    .is_ok_and(|r| r.is_ok()),
                None => false,
            },
            FaultKind::CapDisable | FaultKind::CapEnable => {
                let enable = kind == FaultKind::CapEnable;
                let Some(id) = self.pick_node(&[Running]) else {
                    return false;
                };
                if self.cap_enabled(id) == Some(enable) {
                    return false;
                }
                self.sim
                    .with_endpoint(id, |ep, now| {
                        ep.set_capability_enabled(now, CLUSTER, KV_CAPABILITY, enable)
                    })
                    .is_ok_and(|r| r.is_ok())
            }
            FaultKind::RequestSync => match self.pick_node(&[Running]) {
                Some(id) => self
                    .sim
                    .with_endpoint(id, |ep, now| ep.request_sync(now, CLUSTER, KV_CAPABILITY))
                    .is_ok_and(|r| r.is_ok()),
                None => false,
            },
        }
    }

    fn local_enabled(&self, id: NodeId) -> bool {
        self.sim
            .node(id)
            .and_then(|n| n.cluster(CLUSTER))
            .is_some_and(|c| c.local().enabled())
    }

    fn known_enabled(&self, id: NodeId) -> Vec<NodeId> {
        self.sim
            .node(id)
            .and_then(|n| n.cluster(CLUSTER))
            .map(|c| {
                c.nodes()
                    .iter()
                    .filter(|n| n.enabled())
                    .map(|n| n.id())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn cap_enabled(&self, id: NodeId) -> Option<bool> {
        self.sim
            .node(id)?
            .cluster(CLUSTER)?
            .capability(KV_CAPABILITY)
            .map(|c| c.enabled())
    }

    fn cap_status(&self, id: NodeId) -> Option<SyncStatus> {
        self.sim
            .node(id)?
            .cluster(CLUSTER)?
            .capability(KV_CAPABILITY)
            .map(|c| c.status())
    }

    /// A crashed node may restart once its clock shows a later second than anything it
    /// stamped before (module docs).
    fn clock_allows_restart(&self, id: NodeId) -> bool {
        match (self.sim.unix_now(id), self.sim.max_unix_shown(id)) {
            (Some(now), Some(max)) => now > max,
            _ => true,
        }
    }

    // ----- heal phase ----------------------------------------------------------------------

    /// Heals, then waits for liveness. `Ok(false)`: liveness failed, explained by a known
    /// limitation (recorded).
    fn heal_phase(&mut self) -> Checked<bool> {
        let start = self.sim.now();
        let bound = start.plus(self.plan.heal_bound_ms());
        self.sim.heal_all();
        for id in self.with_status(&[NodeStatus::Paused]) {
            let _ = self.sim.resume(id);
        }
        // After REMOVE_NODEs (db_mode 0) a removed node is forgotten and disabled itself,
        // and a node that applied them may have forgotten every peer it was provisioned
        // with: the operator restarts those so they announce themselves again.
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            for id in self.with_status(&[NodeStatus::Running]) {
                let provisioned = self.plan.known.get(&id).cloned().unwrap_or_default();
                let forgot = provisioned
                    .iter()
                    .any(|p| !self.sim.known_nodes(id, CLUSTER).contains(p));
                if removed.contains(&id) || forgot {
                    let _ = self.sim.crash(id);
                    self.sim
                        .note(format_args!("campaign: heal restarts n{id} after removals"));
                }
            }
        }
        self.undo_admin();
        self.check()?;
        // Restarts wait for the clocks (bounded by CLOCK_BACK_MAX_S).
        loop {
            for id in self.with_status(&[NodeStatus::Crashed]) {
                if self.clock_allows_restart(id) {
                    let _ = self.sim.restart(id);
                }
            }
            if self.with_status(&[NodeStatus::Crashed]).is_empty() {
                break;
            }
            let until = self.sim.now().plus(500);
            self.run_checked(until)?;
        }
        self.check()?;
        let mut last_problem = String::new();
        while self.sim.now() < bound {
            let until = self.sim.now().plus(250).min(bound);
            self.run_checked(until)?;
            match self.liveness() {
                Ok(()) => return Ok(true),
                Err(problem) => {
                    // A capability left disabled-then-enabled (or whose sync gave up)
                    // does not ask again by itself; an operator would.
                    self.request_missing_syncs();
                    last_problem = problem;
                }
            }
        }
        let (invariant, text) = last_problem
            .split_once(": ")
            .map_or(("liveness", last_problem.clone()), |(k, t)| {
                (liveness_name(k), t.to_string())
            });
        let text = format!(
            "{text} (heal bound {} ms from {start})",
            self.plan.heal_bound_ms()
        );
        let v = self.explained(invariant, text);
        self.record(v)?;
        Ok(false)
    }

    /// A liveness failure, explained by a known limitation when one applies anywhere in
    /// the cluster: a stale view of a restarted peer ([`RESTART_MISSED`]), or, for
    /// anything built on the gossiped topology, a stored adjacency list that differs from
    /// the truth ([`GOSSIP_GAP`]). Missing links and unknown nodes are never explained.
    fn explained(&self, invariant: &'static str, text: String) -> Violation {
        let mut v = self.violation(invariant, text);
        if invariant == "liveness-links" {
            return v;
        }
        let live = self.sim.running_ids();
        let lost = self
            .limitations
            .iter()
            .any(|l| l.limitation == Some(ANNOUNCEMENT_LOST));
        if !self.sim.stale_incarnations(CLUSTER).is_empty() {
            v.limitation = Some(RESTART_MISSED);
        } else if !self.sim.topology_mismatches(CLUSTER, &live).is_empty()
            || (invariant == "liveness-sync" && self.stale_capability_view())
        {
            v.limitation = Some(GOSSIP_GAP);
        } else if invariant == "liveness-election" && lost {
            v.limitation = Some(ANNOUNCEMENT_LOST);
        }
        v
    }

    /// Undoes every admin action: nodes and peers enabled, capabilities enabled and asked
    /// to sync.
    fn undo_admin(&mut self) {
        for id in self.with_status(&[NodeStatus::Running]) {
            let _ = self.sim.with_endpoint(id, |ep, now| {
                let _ = ep.set_status(now, CLUSTER, None, true);
                let disabled: Vec<NodeId> = ep
                    .node()
                    .cluster(CLUSTER)
                    .map(|c| {
                        c.nodes()
                            .iter()
                            .filter(|n| !n.enabled())
                            .map(|n| n.id())
                            .collect()
                    })
                    .unwrap_or_default();
                for b in disabled {
                    let _ = ep.set_status(now, CLUSTER, Some(b), true);
                }
                let _ = ep.set_capability_enabled(now, CLUSTER, KV_CAPABILITY, true);
            });
        }
        self.disabled_links.clear();
        self.request_missing_syncs();
    }

    /// Whether a node waiting for a donor has a stale view of one: a running node whose
    /// capability is synced and enabled (so it advertises state 1) is stored as not synced.
    /// The single CAP_UPDATE that announced it was lost, and nothing sends it again until a
    /// link comes up (no anti-entropy: [`GOSSIP_GAP`]).
    fn stale_capability_view(&self) -> bool {
        let live = self.sim.running_ids();
        let synced: Vec<NodeId> = live
            .iter()
            .copied()
            .filter(|&id| {
                self.cap_status(id) == Some(SyncStatus::Synced)
                    && self.cap_enabled(id) == Some(true)
            })
            .collect();
        live.iter().any(|&r| {
            self.cap_status(r) == Some(SyncStatus::SyncPending)
                && self
                    .sim
                    .node(r)
                    .and_then(|n| n.cluster(CLUSTER))
                    .is_some_and(|c| {
                        synced.iter().any(|&x| {
                            c.node(x).is_some()
                                && !c
                                    .remote_capabilities(x)
                                    .iter()
                                    .any(|rc| rc.name() == KV_CAPABILITY && rc.is_ok())
                        })
                    })
        })
    }

    fn request_missing_syncs(&mut self) {
        for id in self.with_status(&[NodeStatus::Running]) {
            if self.cap_status(id) == Some(SyncStatus::NotSynced) {
                let _ = self
                    .sim
                    .with_endpoint(id, |ep, now| ep.request_sync(now, CLUSTER, KV_CAPABILITY));
            }
        }
    }

    /// The model graph after the heal: every pair that may work, among running nodes.
    fn allowed_graph(&self) -> Graph {
        let live = self.sim.running_ids();
        let mut g = Graph::new();
        for &a in &live {
            let entry = g.entry(a).or_default();
            for &b in &live {
                if a != b && self.plan.allowed(a, b) {
                    entry.insert(b);
                }
            }
        }
        g
    }

    /// The liveness conditions; the first one that fails, as `kind: text`.
    fn liveness(&mut self) -> Result<(), String> {
        let live = self.sim.running_ids();
        if live.len() != self.plan.ids().len() {
            return Err(format!("links: not every node runs: {live:?}"));
        }
        for &a in &live {
            for &b in &live {
                if a == b {
                    continue;
                }
                let state = self.sim.link_state(a, CLUSTER, b);
                let allowed = self.plan.allowed(a, b);
                if allowed && state != Some(LinkState::Up) {
                    return Err(format!("links: n{a} sees its link to n{b} {state:?}"));
                }
                if !allowed && state == Some(LinkState::Up) {
                    return Err(format!(
                        "links: n{a} sees the never-working link to n{b} UP"
                    ));
                }
            }
        }
        let mismatches = self.sim.topology_mismatches(CLUSTER, &live);
        if let Some(m) = mismatches.first() {
            return Err(format!("topology: {m} ({} mismatches)", mismatches.len()));
        }
        let g = self.allowed_graph();
        for &d in &live {
            let to_d = distances(&g, d);
            for &a in &live {
                if a == d {
                    continue;
                }
                let expected = expected_next_hop(&g, &to_d, |n| self.plan.priority[&n], a);
                let got = self.sim.next_hop(a, CLUSTER, d);
                if got != expected {
                    return Err(format!(
                        "routes: n{a} routes to n{d} via {got:?}, the shortest path with the (priority, id) tie-break goes via {expected:?}"
                    ));
                }
            }
        }
        let actives = ElectionWatch::actives(&self.sim, CLUSTER, ELECTION_TAG);
        if actives.len() != 1 {
            return Err(format!(
                "election: tag {ELECTION_TAG} active on {actives:?}"
            ));
        }
        for &id in &live {
            let status = self.cap_status(id);
            if status != Some(SyncStatus::Synced) || self.cap_enabled(id) != Some(true) {
                return Err(format!("sync: n{id}'s capability is {status:?}"));
            }
        }
        Ok(())
    }

    // ----- probes --------------------------------------------------------------------------

    /// After liveness: every ordered pair exchanges a GENERIC_MSG that must arrive over a
    /// shortest path, and every node writes an update every other must apply.
    fn probe(&mut self) -> Checked<()> {
        let live = self.sim.running_ids();
        let g = self.allowed_graph();
        self.sim.relays_mut().log = true;
        let _ = self.sim.relays_mut().take_journeys();
        let mut updates = Vec::new();
        for &a in &live {
            for &b in &live {
                if a == b {
                    continue;
                }
                let body = RoutedBody::GenericMsg(GenericMsg {
                    kind: GenericKind::Request,
                    tag: format!("1-{a}-probe").into_bytes(),
                    payload: format!("probe {a} {b}").into_bytes(),
                });
                let _ = self.sim.send_to(a, CLUSTER, b, body);
            }
            if let Ok((u, _)) = self
                .sim
                .kv_put(a, KEYS + u64::from(a.get()), KvSend::Broadcast)
            {
                updates.push(u);
            }
        }
        let until = self
            .sim
            .now()
            .plus(2_000 + u64::from(self.plan.nodes) * self.plan.hop_ms() * 2);
        self.run_checked(until)?;
        let journeys = self.sim.relays_mut().take_journeys();
        self.sim.relays_mut().log = false;
        let mut seen: BTreeMap<(NodeId, NodeId), u32> = BTreeMap::new();
        for j in journeys.iter().filter(|j| j.kind == "GENERIC_MSG") {
            seen.insert((j.source, j.destination), j.hops);
        }
        for &d in &live {
            let to_d = distances(&g, d);
            for &a in &live {
                if a == d {
                    continue;
                }
                let want = to_d.get(&a).copied();
                let got = seen.get(&(a, d)).copied();
                if got != want {
                    let v = self.explained(
                        "liveness-delivery",
                        format!(
                            "probe n{a}->n{d} arrived after {got:?} hops, the shortest path has {want:?}"
                        ),
                    );
                    return self.record(v);
                }
            }
        }
        for u in &updates {
            for &b in &live {
                if b == u.writer {
                    continue;
                }
                let applied = self
                    .sim
                    .kv_state(b)
                    .is_some_and(|s| lock(&s).live_applied.contains(&u.id));
                if !applied {
                    let v = self.explained(
                        "liveness-updates",
                        format!(
                            "n{b} did not apply the update {} n{} broadcast after the heal",
                            u.id, u.writer
                        ),
                    );
                    return self.record(v);
                }
            }
        }
        for &b in &live {
            let left = lock(self.sim.kv_world()).unapplied(b);
            if !left.is_empty() {
                return Err(self.violation(
                    "sync-data",
                    format!(
                        "n{b}: live updates {:?} arrived and were never applied",
                        &left[..left.len().min(5)]
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn liveness_name(kind: &str) -> &'static str {
    match kind {
        "links" => "liveness-links",
        "topology" => "liveness-topology",
        "routes" => "liveness-routes",
        "election" => "liveness-election",
        "sync" => "liveness-sync",
        _ => "liveness",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_mix_round_trips_through_its_text() {
        assert_eq!(FaultMix::parse("all").unwrap(), FaultMix::all());
        let m = FaultMix::parse("crash,clock-back").unwrap();
        assert_eq!(m.to_string(), "crash,clock-back");
        assert!(m.allows(FaultKind::Restart) && !m.allows(FaultKind::Pause));
        assert!(!FaultMix::all().allows(FaultKind::ClockBackRunning));
        assert!(FaultMix::parse("nope").is_err());
    }

    #[test]
    fn plans_are_drawn_from_the_seed_and_the_size_override_keeps_the_rest() {
        let a = Plan::new(7, None);
        assert_eq!(a, Plan::new(7, None));
        let b = Plan::new(7, Some(5));
        assert_eq!(b.nodes, 5);
        assert_eq!((a.db_mode, a.sync_timeout_s), (b.db_mode, b.sync_timeout_s));
        assert!((2..=16).contains(&a.nodes));
    }
}
