//! A deterministic simulator of clusterer nodes (STYLE.md, tests: "V" and "M").
//!
//! [`Sim`] runs N [`Endpoint`]s on a virtual clock. Time jumps to whichever comes first: the
//! earliest node deadline ([`Endpoint::poll_timeout`]) or the next scheduled action (a
//! delivery, a send failure, a delayed start). Nothing reads a wall clock; every random choice
//! comes from one seeded [`SimRng`], so a seed replays a run exactly, trace included.
//!
//! Packets are the endpoints' own bytes: what [`Endpoint::poll_transmit`] produced is carried
//! over a simulated TCP connection ([`net`]) and fed to the receiver with
//! [`Endpoint::handle_bytes`], optionally cut into random chunks, so emit, parse and the
//! deframer are all on the path.
//!
//! Connections behave like the daemon's: node A sending to `Destination::Node { address }`
//! uses A's own outgoing connection to that address, opened on first use (A's endpoint is told
//! at once, the listener just before the first bytes reach it, with A's IP and an ephemeral
//! port as the peer); `Destination::Connection(c)` writes back on `c`. Each direction is FIFO.
//!
//! Faults: partitions (symmetric or one-way, [`Sim::partition`]), connection resets
//! ([`Sim::reset_connections`]), crashes ([`Sim::crash`]: connections close, later connects are
//! refused and the sender gets [`Endpoint::handle_send_failed`] after
//! [`SimOptions::refuse_delay_ms`]), restarts ([`Sim::restart`]: a fresh endpoint, new seed),
//! pauses ([`Sim::pause`]: like SIGSTOP, data waits for [`Sim::resume`]), wall-clock
//! offsets ([`Sim::set_clock_offset`]), pairs that never work ([`Sim::forbid`]) and an
//! optional bandwidth per connection ([`SimOptions::bytes_per_ms`]).
//!
//! Capabilities: [`Sim::set_kv`] makes a node register the key/value capability of [`kv`]
//! at every start (fresh and empty each time); [`Sim::kv_put`] writes and replicates an
//! update as a module packet. The run checks every application against what the network
//! delivered ([`kv`] docs). Sharing tags come from the nodes' configurations.
//!
//! ```
//! use clusterer_core::{DbMode, LinkState};
//! use clusterer_tests::sim::{CLUSTER, Sim, SimOptions, full_mesh, nid};
//!
//! let mut sim = Sim::new(SimOptions::new(7));
//! for config in full_mesh(3, DbMode::Database) {
//!     sim.add_node(config).unwrap();
//! }
//! sim.run_for(5_000);
//! assert!(sim.links_all_up(CLUSTER, &[nid(1), nid(2), nid(3)]));
//! assert_eq!(sim.link_state(nid(1), CLUSTER, nid(3)), Some(LinkState::Up));
//! assert!(sim.violations().is_empty());
//! ```

pub mod campaign;
pub mod checks;
pub mod clock;
pub mod harness;
pub mod inspect;
pub mod kv;
pub mod model;
pub mod net;
pub mod relay;
pub mod rng;
pub mod scenario;
pub mod speed;
pub mod trace;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use clusterer_core::message::RoutedBody;
use clusterer_core::{
    ClusterId, Config, ConfigError, ConnectionId, Instant, NodeAddress, NodeId, Now, SendStatus,
};
use clusterer_proto::{Destination, Endpoint, EndpointOptions, OutgoingPacket, PacketKind};

pub use clock::{DEFAULT_BASE_UNIX_TIME, EventQueue, NodeClock};
pub use harness::{
    CLUSTER, KvSpec, NodeStatus, PORT, full_mesh, nid, node_config, node_ip, node_url,
};
pub use inspect::{NodeStateChange, PacketFate, PacketRecord, RecordedEvent, TopologyMismatch};
pub use kv::{KV_CAPABILITY, KvRecord, KvUpdate, SharedKvState, SharedKvWorld, SimKv};
pub use net::{Direction, LatencyModel};
pub use relay::{HopCheck, Journey, RelayTracker, routed_trailer};
pub use rng::SimRng;
pub use trace::{Trace, TraceMode, describe_packet, packet_kind};

use harness::{Action, SimNode};
use kv::lock;
use net::{Conn, InFlight, Lane, Network};

/// Settings of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// Master seed: every random choice of the run derives from it.
    pub seed: u64,
    /// UNIX time (seconds) of virtual time 0.
    pub base_unix_time: i64,
    /// Link latency.
    pub latency: LatencyModel,
    /// Feed received bytes in random chunks (exercises the deframer).
    pub chunking: bool,
    /// Delay between a refused send and the sender's `handle_send_failed` (ms).
    pub refuse_delay_ms: u64,
    /// What the trace keeps.
    pub trace: TraceMode,
    /// Keep a [`PacketRecord`] of every packet sent.
    pub record_packets: bool,
    /// Check each node's invariants after every input it handles (see [`Sim::violations`]).
    pub check_invariants: bool,
    /// Count the hops of routed packets ([`Sim::relays`]); with a non-zero
    /// [`RelayTracker::limit`] a packet emitted more often is a violation.
    pub track_relays: bool,
    /// Bandwidth of each connection direction in bytes per millisecond (0: unlimited): a
    /// packet occupies its lane for `len / bytes_per_ms` ms before its latency starts, so a
    /// burst of large packets (a sync) arrives spread over time.
    pub bytes_per_ms: u64,
}

impl SimOptions {
    /// Defaults with `seed`: latency 1–5 ms + up to 2 ms jitter, chunking on, refusals after
    /// 2 ms, full trace, packet records and invariant checks on.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            base_unix_time: DEFAULT_BASE_UNIX_TIME,
            latency: LatencyModel::default(),
            chunking: true,
            refuse_delay_ms: 2,
            trace: TraceMode::Full,
            record_packets: true,
            check_invariants: true,
            track_relays: false,
            bytes_per_ms: 0,
        }
    }

    /// The fastest settings for long runs: no trace, no packet records, no invariant checks,
    /// no chunking.
    pub fn fast(seed: u64) -> Self {
        SimOptions {
            chunking: false,
            trace: TraceMode::Off,
            record_packets: false,
            check_invariants: false,
            ..SimOptions::new(seed)
        }
    }
}

/// A simulator call that could not be applied; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// No node with this id was added.
    UnknownNode(NodeId),
    /// A node with this id was already added.
    DuplicateNode(NodeId),
    /// Another node already listens on this address.
    AddressInUse(SocketAddr),
    /// The configuration was refused by the endpoint.
    Config(ConfigError),
    /// The node is not in a state that allows the call (e.g. restarting a running node).
    WrongStatus {
        /// The node.
        node: NodeId,
        /// Its status.
        status: NodeStatus,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::UnknownNode(n) => write!(f, "no simulated node {n}"),
            SimError::DuplicateNode(n) => write!(f, "node {n} was already added"),
            SimError::AddressInUse(a) => write!(f, "address {a} is already in use"),
            SimError::Config(e) => write!(f, "configuration refused: {e}"),
            SimError::WrongStatus { node, status } => {
                write!(f, "node {node} is {status:?}")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Most violations kept verbatim (all are counted).
const MAX_KEPT_VIOLATIONS: usize = 32;

/// How [`Sim::kv_put`] replicates an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvSend {
    /// One `broadcast_matching(ANY)` (`cl_send_all`).
    Broadcast,
    /// One `send_to` per other node the writer knows, each status recorded.
    EachNode,
    /// One `send_to` this node.
    To(NodeId),
}

/// The simulator. See the [module docs](self).
#[derive(Debug)]
pub struct Sim {
    options: SimOptions,
    now: Instant,
    rng: SimRng,
    queue: EventQueue<Action>,
    nodes: Vec<SimNode>,
    index: BTreeMap<NodeId, usize>,
    listeners: BTreeMap<SocketAddr, usize>,
    net: Network,
    trace: Trace,
    events: Vec<RecordedEvent>,
    packets: Vec<PacketRecord>,
    violations: Vec<String>,
    violation_count: u64,
    steps: u64,
    kv_world: SharedKvWorld,
    relays: RelayTracker,
    epoch: u64,
    last_silent_send: Option<Instant>,
}

impl Sim {
    /// An empty simulation at virtual time 0.
    pub fn new(options: SimOptions) -> Self {
        Sim {
            rng: SimRng::new(options.seed),
            trace: Trace::new(options.trace),
            options,
            now: Instant::ZERO,
            queue: EventQueue::new(),
            nodes: Vec::new(),
            index: BTreeMap::new(),
            listeners: BTreeMap::new(),
            net: Network::default(),
            events: Vec::new(),
            packets: Vec::new(),
            violations: Vec::new(),
            violation_count: 0,
            steps: 0,
            kv_world: SharedKvWorld::default(),
            relays: RelayTracker::default(),
            epoch: 0,
            last_silent_send: None,
        }
    }

    // ----- nodes -----------------------------------------------------------------------

    /// Adds a node and starts it now. It listens on every local URL of its configuration.
    ///
    /// # Errors
    /// [`SimError`]: duplicate id, address in use, or a configuration the endpoint refuses.
    pub fn add_node(&mut self, config: Config) -> Result<NodeId, SimError> {
        self.add_node_with(config, EndpointOptions::default(), None)
    }

    /// Adds every configuration, started now.
    ///
    /// # Errors
    /// The first [`SimError`]; earlier nodes stay added.
    pub fn add_nodes(
        &mut self,
        configs: impl IntoIterator<Item = Config>,
    ) -> Result<Vec<NodeId>, SimError> {
        configs.into_iter().map(|c| self.add_node(c)).collect()
    }

    /// Adds a node with endpoint options, started now or at `start_at` (connections to it
    /// are refused until then).
    ///
    /// # Errors
    /// [`SimError`]: duplicate id, address in use, or a configuration the endpoint refuses.
    pub fn add_node_with(
        &mut self,
        config: Config,
        options: EndpointOptions,
        start_at: Option<Instant>,
    ) -> Result<NodeId, SimError> {
        let id = config.node_id;
        if self.index.contains_key(&id) {
            return Err(SimError::DuplicateNode(id));
        }
        config.validate().map_err(SimError::Config)?;
        let mut listen: Vec<SocketAddr> = Vec::new();
        for c in &config.clusters {
            let a = NodeAddress::parse(&c.local.url)
                .map_err(|reason| {
                    SimError::Config(ConfigError::BadUrl {
                        cluster: c.id,
                        node: id,
                        reason,
                    })
                })?
                .socket;
            if self.listeners.contains_key(&a) {
                return Err(SimError::AddressInUse(a));
            }
            if !listen.contains(&a) {
                listen.push(a);
            }
        }
        let clock = NodeClock {
            base_unix_time: self.options.base_unix_time,
            offset_s: 0,
        };
        let i = self.nodes.len();
        self.nodes
            .push(SimNode::new(id, config, options, listen.clone(), clock));
        self.index.insert(id, i);
        for a in listen {
            self.listeners.insert(a, i);
        }
        match start_at {
            Some(at) if at > self.now => {
                self.note(format_args!("add n{id}, starts at {at}"));
                self.queue.push(at, Action::Start { node: i });
            }
            _ => self.start(i),
        }
        Ok(id)
    }

    /// Crashes a node: its endpoint is dropped with all its state, every connection it has
    /// closes (peers see the close; bytes in flight are lost), and connects to it are refused
    /// until [`Sim::restart`].
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] if it is not running or paused.
    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        let i = self.slot(id)?;
        self.expect_status(i, &[NodeStatus::Running, NodeStatus::Paused])?;
        self.note(format_args!("fault: crash n{id}"));
        self.epoch += 1;
        let unix = self.node_now(i).unix_time;
        let n = &mut self.nodes[i];
        n.max_unix_shown = n.max_unix_shown.max(unix);
        n.status = NodeStatus::Crashed;
        n.endpoint = None;
        n.kv_state = None;
        n.deferred.clear();
        lock(&self.kv_world).reset_node(id);
        let conns: Vec<usize> = self
            .net
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.open && (c.client == i || c.server == i))
            .map(|(k, _)| k)
            .collect();
        for k in conns {
            self.close_conn(k, "peer crashed");
        }
        Ok(())
    }

    /// Restarts a crashed node: a fresh endpoint from the same configuration with a new
    /// seed (all protocol state lost, sequence counters from −1 again).
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] unless it is crashed.
    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        let i = self.slot(id)?;
        self.expect_status(i, &[NodeStatus::Crashed])?;
        self.note(format_args!("fault: restart n{id}"));
        self.start(i);
        Ok(())
    }

    /// Pauses a node (SIGSTOP): it handles nothing, its timers wait, data and send failures
    /// addressed to it wait; connects to it are accepted but not answered.
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] unless it is running.
    pub fn pause(&mut self, id: NodeId) -> Result<(), SimError> {
        self.switch_pause(id, NodeStatus::Running, NodeStatus::Paused, "pause")?;
        Ok(())
    }

    /// Moves a node from `from` to `to` (pause or resume), noting the fault: the node's
    /// slot.
    fn switch_pause(
        &mut self,
        id: NodeId,
        from: NodeStatus,
        to: NodeStatus,
        what: &str,
    ) -> Result<usize, SimError> {
        let i = self.slot(id)?;
        self.expect_status(i, &[from])?;
        self.note(format_args!("fault: {what} n{id}"));
        self.epoch += 1;
        self.nodes[i].status = to;
        Ok(i)
    }

    /// Resumes a paused node: what waited is handled now, in arrival order, and a timer
    /// that expired meanwhile fires at once.
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] unless it is paused.
    pub fn resume(&mut self, id: NodeId) -> Result<(), SimError> {
        let i = self.switch_pause(id, NodeStatus::Paused, NodeStatus::Running, "resume")?;
        let deferred = std::mem::take(&mut self.nodes[i].deferred);
        for a in deferred {
            self.queue.push(self.now, a);
        }
        Ok(())
    }

    /// Shifts a node's UNIX clock by `offset_s` seconds from the common one (a wall-clock
    /// step; its monotonic clock is unchanged).
    ///
    /// # Errors
    /// [`SimError::UnknownNode`].
    pub fn set_clock_offset(&mut self, id: NodeId, offset_s: i64) -> Result<(), SimError> {
        let i = self.slot(id)?;
        self.note(format_args!("fault: clock n{id} offset {offset_s}s"));
        self.epoch += 1;
        if self.nodes[i].endpoint.is_some() {
            let unix = self.node_now(i).unix_time;
            let n = &mut self.nodes[i];
            n.max_unix_shown = n.max_unix_shown.max(unix);
        }
        self.nodes[i].clock.offset_s = offset_s;
        Ok(())
    }

    /// Blocks traffic between `a` and `b` both ways.
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Blocks traffic from `from` to `to` (packets are lost at send time).
    pub fn partition_one_way(&mut self, from: NodeId, to: NodeId) {
        if self.net.blocked.insert((from, to)) {
            self.epoch += 1;
            self.note(format_args!("fault: block n{from}->n{to}"));
        }
    }

    /// Partitions every pair of nodes that are in different groups.
    pub fn split(&mut self, groups: &[&[NodeId]]) {
        for (gi, g) in groups.iter().enumerate() {
            for h in &groups[gi + 1..] {
                for &a in *g {
                    for &b in *h {
                        self.partition(a, b);
                    }
                }
            }
        }
    }

    /// Lets traffic between `a` and `b` through again, both ways.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.heal_one_way(a, b);
        self.heal_one_way(b, a);
    }

    /// Lets traffic from `from` to `to` through again.
    pub fn heal_one_way(&mut self, from: NodeId, to: NodeId) {
        if self.net.blocked.remove(&(from, to)) {
            self.epoch += 1;
            self.note(format_args!("fault: unblock n{from}->n{to}"));
        }
    }

    /// Removes every partition.
    pub fn heal_all(&mut self) {
        if !self.net.blocked.is_empty() {
            self.epoch += 1;
            self.net.blocked.clear();
            self.note(format_args!("fault: heal all"));
        }
    }

    /// Makes the pair `a`–`b` never work, both ways (a topology constraint: packets between
    /// them are lost). [`Sim::heal_all`] does not lift it.
    pub fn forbid(&mut self, a: NodeId, b: NodeId) {
        if a != b && self.net.forbidden.insert((a, b)) {
            self.net.forbidden.insert((b, a));
            self.epoch += 1;
            self.note(format_args!("constraint: n{a}<->n{b} never works"));
        }
    }

    /// Whether `a`–`b` was made to never work.
    pub fn is_forbidden(&self, a: NodeId, b: NodeId) -> bool {
        self.net.forbidden.contains(&(a, b))
    }

    /// Whether traffic from `from` to `to` is blocked now (partition or constraint).
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.net.is_blocked(from, to)
    }

    /// Resets every open connection between `a` and `b` (both directions of opening): the
    /// bytes in flight are lost, both ends see the close; later sends open new connections.
    /// Returns how many connections were reset.
    pub fn reset_connections(&mut self, a: NodeId, b: NodeId) -> usize {
        let (Some(&ia), Some(&ib)) = (self.index.get(&a), self.index.get(&b)) else {
            return 0;
        };
        let conns: Vec<usize> = self
            .net
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.open && ((c.client == ia && c.server == ib) || (c.client == ib && c.server == ia))
            })
            .map(|(k, _)| k)
            .collect();
        for &k in &conns {
            self.close_conn(k, "reset");
        }
        if !conns.is_empty() {
            self.epoch += 1;
        }
        conns.len()
    }

    // ----- commands --------------------------------------------------------------------

    /// Runs `f` on a running node's endpoint with the node's current time (commands:
    /// `set_status`, `send_to`, `remove_node`, ...), then drains its outputs.
    ///
    /// # Errors
    /// [`SimError::UnknownNode`]; [`SimError::WrongStatus`] unless it is running.
    pub fn with_endpoint<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Endpoint, Now) -> R,
    ) -> Result<R, SimError> {
        let i = self.slot(id)?;
        self.expect_status(i, &[NodeStatus::Running])?;
        self.epoch += 1;
        let now = self.node_now(i);
        let Some(ep) = self.nodes[i].endpoint.as_mut() else {
            return Err(SimError::WrongStatus {
                node: id,
                status: self.nodes[i].status,
            });
        };
        let r = f(ep, now);
        self.after_input(i);
        Ok(r)
    }

    /// `send_to` from a running node (routed over the shortest live path).
    ///
    /// # Errors
    /// As [`Sim::with_endpoint`].
    pub fn send_to(
        &mut self,
        from: NodeId,
        cluster: ClusterId,
        dest: NodeId,
        body: RoutedBody,
    ) -> Result<SendStatus, SimError> {
        let status = self.with_endpoint(from, |ep, now| ep.send_to(now, cluster, dest, body))?;
        self.note(format_args!(
            "command: n{from} send_to n{dest} -> {status:?}"
        ));
        Ok(status)
    }

    // ----- running ---------------------------------------------------------------------

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the next step would happen (`None` when nothing will ever happen).
    pub fn next_time(&self) -> Option<Instant> {
        let timer = self.next_timer().map(|(t, _)| t);
        match (self.queue.peek_time(), timer) {
            (Some(q), Some(t)) => Some(q.min(t)),
            (q, t) => q.or(t),
        }
    }

    /// Processes the earliest pending thing (a scheduled action, or else a node timer; on a
    /// tie actions go first, nodes in the order they were added). Returns `false` when
    /// nothing is pending.
    pub fn step(&mut self) -> bool {
        let timer = self.next_timer();
        let take_queue = match (self.queue.peek_time(), timer) {
            (None, None) => return false,
            (Some(q), Some((t, _))) => q <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        self.steps += 1;
        if take_queue {
            if let Some((at, action)) = self.queue.pop() {
                self.now = self.now.max(at);
                self.perform(action);
            }
        } else if let Some((at, i)) = timer {
            self.now = self.now.max(at);
            self.fire_timer(i);
        }
        true
    }

    /// Runs everything due up to and including `at`, then sets the clock to `at`.
    pub fn run_until(&mut self, at: Instant) {
        while self.next_time().is_some_and(|t| t <= at) {
            self.step();
        }
        self.now = self.now.max(at);
    }

    /// Runs for `ms` milliseconds of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now.plus(ms));
    }

    /// Runs until `done` holds (checked now and after every step) or `deadline` passes.
    /// Returns the virtual time at which `done` first held, `None` on timeout (the clock is
    /// then at `deadline`).
    pub fn run_until_cond(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Option<Instant> {
        if done(self) {
            return Some(self.now);
        }
        while self.next_time().is_some_and(|t| t <= deadline) {
            self.step();
            if done(self) {
                return Some(self.now);
            }
        }
        self.now = self.now.max(deadline);
        None
    }

    /// Steps processed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    // ----- internals -------------------------------------------------------------------

    fn slot(&self, id: NodeId) -> Result<usize, SimError> {
        self.index
            .get(&id)
            .copied()
            .ok_or(SimError::UnknownNode(id))
    }

    fn expect_status(&self, i: usize, allowed: &[NodeStatus]) -> Result<(), SimError> {
        let n = &self.nodes[i];
        if allowed.contains(&n.status) {
            Ok(())
        } else {
            Err(SimError::WrongStatus {
                node: n.id,
                status: n.status,
            })
        }
    }

    fn node_now(&self, i: usize) -> Now {
        self.nodes[i].clock.now(self.now)
    }

    /// Records a trace line (formatted only when the trace is on).
    fn note(&mut self, text: fmt::Arguments<'_>) {
        if self.trace.enabled() {
            let line = text.to_string();
            self.trace.record(self.now, &line);
        }
    }

    fn violation(&mut self, text: String) {
        self.violation_count += 1;
        let line = format!("seed {} t={}: {text}", self.options.seed, self.now);
        self.note(format_args!("VIOLATION {line}"));
        if self.violations.len() < MAX_KEPT_VIOLATIONS {
            self.violations.push(line);
        }
    }

    /// The earliest node deadline among running nodes (a past deadline counts as now).
    fn next_timer(&self) -> Option<(Instant, usize)> {
        let mut best: Option<(Instant, usize)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.status != NodeStatus::Running {
                continue;
            }
            let Some(ep) = n.endpoint.as_ref() else {
                continue;
            };
            let t = ep.poll_timeout().max(self.now);
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, i));
            }
        }
        best
    }

    fn start(&mut self, i: usize) {
        let seed = self.rng.next_u64();
        let now = self.node_now(i);
        let n = &mut self.nodes[i];
        match Endpoint::new(n.config.clone(), n.options.clone(), now, seed) {
            Ok(ep) => {
                n.endpoint = Some(ep);
                n.status = NodeStatus::Running;
                n.incarnation += 1;
                n.deferred.clear();
                n.started_unix = now.unix_time;
                n.max_unix_shown = n.max_unix_shown.max(now.unix_time);
                let id = n.id;
                self.epoch += 1;
                self.note(format_args!("start n{id}"));
                lock(&self.kv_world).reset_node(id);
                self.register_kv(i);
            }
            Err(e) => {
                n.status = NodeStatus::Crashed;
                let id = n.id;
                self.violation(format!("n{id} failed to start: {e}"));
            }
        }
    }

    fn fire_timer(&mut self, i: usize) {
        let now = self.node_now(i);
        let Some(ep) = self.nodes[i].endpoint.as_mut() else {
            return;
        };
        ep.handle_timeout(now);
        let stalled = ep.poll_timeout() <= now.instant;
        self.after_input(i);
        if stalled {
            // A deadline that does not move would spin the simulator forever.
            let id = self.nodes[i].id;
            self.violation(format!("n{id}: poll_timeout did not advance past now"));
            self.nodes[i].status = NodeStatus::Paused;
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Start { node } => {
                if self.nodes[node].status == NodeStatus::NotStarted {
                    self.start(node);
                }
            }
            Action::Deliver { conn, direction } => self.deliver(conn, direction),
            Action::SendFailed {
                node,
                incarnation,
                packet,
            } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation {
                    return;
                }
                match n.status {
                    NodeStatus::Paused => n.deferred.push(Action::SendFailed {
                        node,
                        incarnation,
                        packet,
                    }),
                    NodeStatus::Running => {
                        let now = self.node_now(node);
                        if self.trace.enabled() {
                            let id = self.nodes[node].id;
                            let d = describe_packet(&packet.bytes);
                            self.note(format_args!("send-failed n{id}: {d}"));
                        }
                        if let Some(ep) = self.nodes[node].endpoint.as_mut() {
                            ep.handle_send_failed(now, packet);
                        }
                        self.after_input(node);
                    }
                    NodeStatus::NotStarted | NodeStatus::Crashed => {}
                }
            }
        }
    }

    /// Drains a node's outputs and checks its invariants after it handled an input.
    fn after_input(&mut self, i: usize) {
        self.drain(i);
        if self.options.check_invariants {
            self.check_node(i);
        }
        let found = {
            let mut w = lock(&self.kv_world);
            if w.has_violations() {
                w.take_violations()
            } else {
                Vec::new()
            }
        };
        for v in found {
            self.violation(format!("sync/live updates: {v}"));
        }
    }

    fn drain(&mut self, i: usize) {
        loop {
            let Some(ep) = self.nodes[i].endpoint.as_mut() else {
                return;
            };
            let Some(packet) = ep.poll_transmit() else {
                break;
            };
            self.transmit(i, packet);
        }
        let id = self.nodes[i].id;
        while let Some(event) = self.nodes[i]
            .endpoint
            .as_mut()
            .and_then(Endpoint::poll_event)
        {
            if self.trace.enabled() {
                let text = inspect::describe_event(&event);
                self.note(format_args!("event n{id}: {text}"));
            }
            self.events.push(RecordedEvent {
                at: self.now,
                node: id,
                event,
            });
        }
    }

    fn transmit(&mut self, i: usize, packet: OutgoingPacket) {
        if self.options.track_relays
            && let HopCheck::OverLimit {
                source,
                destination,
                hops,
            } = self
                .relays
                .emitted(self.now, self.nodes[i].id, &packet.bytes)
        {
            let id = self.nodes[i].id;
            let kind = packet_kind(&packet.bytes);
            self.violation(format!(
                "routing loop: {kind} n{source}->n{destination} emitted {hops} times (limit {}), last by n{id}",
                self.relays.limit
            ));
        }
        match packet.info.to {
            Destination::Node { id, address } => {
                let dest = address.socket;
                let existing = self.nodes[i]
                    .outgoing
                    .get(&dest)
                    .copied()
                    .filter(|&k| self.net.conns[k].open);
                let conn = match existing {
                    Some(k) => k,
                    None => match self
                        .listeners
                        .get(&dest)
                        .copied()
                        .filter(|&j| self.nodes[j].accepts())
                    {
                        Some(j) => self.open_conn(i, j, dest),
                        None => {
                            self.refuse(i, id, packet, "connection refused");
                            return;
                        }
                    },
                };
                self.enqueue(conn, Direction::ClientToServer, packet);
            }
            Destination::Connection(ConnectionId(c)) => {
                let k = usize::try_from(c).unwrap_or(usize::MAX);
                let direction = match self.net.conns.get(k) {
                    Some(conn) if conn.open && conn.server == i => Direction::ServerToClient,
                    Some(conn) if conn.open && conn.client == i => Direction::ClientToServer,
                    other => {
                        let to = other
                            .map(|conn| {
                                let peer = if conn.server == i {
                                    conn.client
                                } else {
                                    conn.server
                                };
                                self.nodes[peer].id
                            })
                            .unwrap_or(self.nodes[i].id);
                        self.refuse(i, to, packet, "connection closed");
                        return;
                    }
                };
                self.enqueue(k, direction, packet);
            }
        }
    }

    fn refuse(&mut self, i: usize, to: NodeId, packet: OutgoingPacket, why: &str) {
        let from = self.nodes[i].id;
        if self.options.record_packets {
            self.packets.push(PacketRecord {
                at: self.now,
                from,
                to,
                kind: packet_kind(&packet.bytes),
                fate: PacketFate::Refused,
            });
        }
        if self.trace.enabled() {
            let d = describe_packet(&packet.bytes);
            self.note(format_args!("refused n{from}->n{to} ({why}): {d}"));
        }
        let at = self.now.plus(self.options.refuse_delay_ms);
        let incarnation = self.nodes[i].incarnation;
        self.queue.push(
            at,
            Action::SendFailed {
                node: i,
                incarnation,
                packet,
            },
        );
    }

    fn open_conn(&mut self, i: usize, j: usize, dest: SocketAddr) -> usize {
        let k = self.net.conns.len();
        let client_addr = self.nodes[i].ephemeral_addr();
        self.net.conns.push(Conn {
            client: i,
            server: j,
            client_addr,
            server_addr: dest,
            open: true,
            server_announced: false,
            lanes: [Lane::default(), Lane::default()],
        });
        self.nodes[i].outgoing.insert(dest, k);
        if let Some(ep) = self.nodes[i].endpoint.as_mut() {
            ep.handle_connection_opened(ConnectionId(k as u64), dest);
        }
        let (a, b) = (self.nodes[i].id, self.nodes[j].id);
        self.note(format_args!(
            "connect c{k} n{a}->n{b} {client_addr}->{dest}"
        ));
        k
    }

    fn enqueue(&mut self, k: usize, direction: Direction, packet: OutgoingPacket) {
        let (from_i, to_i) = {
            let c = &self.net.conns[k];
            (c.sender(direction), c.receiver(direction))
        };
        let (from, to) = (self.nodes[from_i].id, self.nodes[to_i].id);
        let blocked = self.net.is_blocked(from, to);
        if self.options.track_relays
            && let Some(cluster) = routed_cluster(&packet)
            && (blocked
                || self.net.is_blocked(to, from)
                || self.ignored_by_receiver(to_i, cluster, from))
        {
            // A routed packet that vanishes (or waits, or is ignored, or arrives at a node
            // whose answers are lost to a one-way partition) without a send error postpones
            // the sender's keep-alives like any routed packet (docs/behaviour.md §3.2 rule 5).
            self.last_silent_send = Some(self.now);
        }
        if self.options.record_packets {
            self.packets.push(PacketRecord {
                at: self.now,
                from,
                to,
                kind: packet_kind(&packet.bytes),
                fate: if blocked {
                    PacketFate::Lost
                } else {
                    PacketFate::Sent
                },
            });
        }
        if blocked {
            if self.trace.enabled() {
                let d = describe_packet(&packet.bytes);
                self.note(format_args!("lost n{from}->n{to} c{k} (partition): {d}"));
            }
            return;
        }
        let latency = self
            .options
            .latency
            .sample(self.options.seed, from, to, &mut self.rng);
        let bytes_per_ms = self.options.bytes_per_ms;
        let lane = &mut self.net.conns[k].lanes[direction.index()];
        let mut deliver_at = self.now.plus(latency).max(lane.last_at);
        if let Some(busy_us) = (packet.bytes.len() as u64 * 1000).checked_div(bytes_per_ms) {
            let start = (self.now.as_millis() * 1000).max(lane.wire_free_us);
            let end = start + busy_us;
            lane.wire_free_us = end;
            deliver_at = deliver_at.max(Instant::from_millis(end.div_ceil(1000) + latency));
        }
        lane.last_at = deliver_at;
        lane.queue.push_back(InFlight {
            sent_at: self.now,
            deliver_at,
            bytes: packet.bytes,
        });
        if !lane.scheduled {
            lane.scheduled = true;
            self.queue
                .push(deliver_at, Action::Deliver { conn: k, direction });
        }
    }

    /// Whether node index `r` will not answer or not take a packet from `from` in
    /// `cluster`: it is paused, disabled in the cluster, or has `from` disabled or
    /// unknown.
    fn ignored_by_receiver(&self, r: usize, cluster: ClusterId, from: NodeId) -> bool {
        if self.nodes[r].status == NodeStatus::Paused {
            return true;
        }
        let Some(c) = self.nodes[r]
            .endpoint
            .as_ref()
            .and_then(|e| e.node().cluster(cluster))
        else {
            return false;
        };
        !c.local().enabled() || c.node(from).is_none_or(|n| !n.enabled())
    }

    fn deliver(&mut self, k: usize, direction: Direction) {
        let lane_index = direction.index();
        let r = self.net.conns[k].receiver(direction);
        if !self.net.conns[k].open {
            self.net.conns[k].lanes[lane_index].scheduled = false;
            return;
        }
        match self.nodes[r].status {
            NodeStatus::Running => {}
            NodeStatus::Paused => {
                // Waits in the socket buffer until the process resumes.
                self.nodes[r]
                    .deferred
                    .push(Action::Deliver { conn: k, direction });
                return;
            }
            NodeStatus::NotStarted | NodeStatus::Crashed => {
                self.net.conns[k].lanes[lane_index].scheduled = false;
                return;
            }
        }
        let rid = self.nodes[r].id;
        if direction == Direction::ClientToServer && !self.net.conns[k].server_announced {
            let peer = self.net.conns[k].client_addr;
            self.net.conns[k].server_announced = true;
            if let Some(ep) = self.nodes[r].endpoint.as_mut() {
                ep.handle_connection_opened(ConnectionId(k as u64), peer);
            }
            self.note(format_args!("accept c{k} n{rid} from {peer}"));
        }
        // Everything due on this direction arrives as one stream.
        let mut stream: Vec<u8> = Vec::new();
        let sid = self.nodes[self.net.conns[k].sender(direction)].id;
        let mut kv_arrivals = false;
        loop {
            let lane = &mut self.net.conns[k].lanes[lane_index];
            let due = lane.queue.front().is_some_and(|p| p.deliver_at <= self.now);
            if !due {
                break;
            }
            let Some(p) = lane.queue.pop_front() else {
                break;
            };
            if self.trace.enabled() {
                let d = describe_packet(&p.bytes);
                let sent = p.sent_at;
                self.note(format_args!(
                    "deliver n{sid}->n{rid} c{k} (sent {sent}): {d}"
                ));
            }
            if self.options.track_relays {
                self.relays.arrived(self.now, rid, &p.bytes);
            }
            if self.nodes[r].kv_state.is_some() {
                kv_arrivals |= self.kv_arrival(r, sid, &p.bytes);
            }
            stream.extend_from_slice(&p.bytes);
        }
        let pieces = self.chunk(stream.len());
        let now = self.node_now(r);
        let mut offset = 0;
        let mut framing_error = None;
        let drops_before = if self.trace.enabled() {
            self.nodes[r]
                .endpoint
                .as_ref()
                .map(|e| e.counters().dropped.clone())
        } else {
            None
        };
        for len in pieces {
            let piece = &stream[offset..offset + len];
            offset += len;
            let Some(ep) = self.nodes[r].endpoint.as_mut() else {
                break;
            };
            if let Err(e) = ep.handle_bytes(now, ConnectionId(k as u64), piece) {
                framing_error = Some(e);
                break;
            }
        }
        if let Some(before) = drops_before
            && let Some(after) = self.nodes[r]
                .endpoint
                .as_ref()
                .map(|e| e.counters().dropped.clone())
        {
            for (cause, n) in &after {
                let new = n - before.get(cause).copied().unwrap_or(0);
                if new > 0 {
                    let name = cause.name();
                    self.note(format_args!("n{rid} dropped {new} ({name})"));
                }
            }
        }
        let lane = &mut self.net.conns[k].lanes[lane_index];
        lane.scheduled = false;
        if let Some(next) = lane.queue.front().map(|p| p.deliver_at) {
            lane.scheduled = true;
            self.queue
                .push(next, Action::Deliver { conn: k, direction });
        }
        if let Some(e) = framing_error {
            self.close_conn(k, &e.to_string());
        }
        if kv_arrivals {
            self.kv_finalize(r);
        }
        self.after_input(r);
    }

    /// Chunk lengths for a stream of `len` bytes: one piece, or random cuts.
    fn chunk(&mut self, len: usize) -> Vec<usize> {
        let mut pieces = Vec::new();
        let mut rest = len;
        while rest > 0 {
            let take = if self.options.chunking && rest > 1 && self.rng.chance(1, 2) {
                self.rng.range(1, rest as u64 - 1) as usize
            } else {
                rest
            };
            pieces.push(take);
            rest -= take;
        }
        pieces
    }

    fn close_conn(&mut self, k: usize, why: &str) {
        let c = &mut self.net.conns[k];
        if !c.open {
            return;
        }
        c.open = false;
        let lost: usize = c.lanes.iter().map(|l| l.queue.len()).sum();
        for lane in &mut c.lanes {
            lane.queue.clear();
        }
        let (client, server, server_addr, announced) =
            (c.client, c.server, c.server_addr, c.server_announced);
        if self.nodes[client].outgoing.get(&server_addr) == Some(&k) {
            self.nodes[client].outgoing.remove(&server_addr);
        }
        if let Some(ep) = self.nodes[client].endpoint.as_mut() {
            ep.handle_connection_closed(ConnectionId(k as u64));
        }
        if announced && let Some(ep) = self.nodes[server].endpoint.as_mut() {
            ep.handle_connection_closed(ConnectionId(k as u64));
        }
        let (a, b) = (self.nodes[client].id, self.nodes[server].id);
        self.note(format_args!(
            "close c{k} n{a}->n{b} ({why}), {lost} packets lost"
        ));
    }

    fn check_node(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let Some(ep) = self.nodes[i].endpoint.as_mut() else {
            return;
        };
        let problems = inspect::endpoint_violations(ep);
        for p in problems {
            self.violation(format!("n{id}: {p}"));
        }
    }
}

/// The cluster of a routed packet (`None` for `clusterer-internal` packets).
fn routed_cluster(packet: &OutgoingPacket) -> Option<ClusterId> {
    let routed = matches!(packet.info.kind, PacketKind::Routed { .. });
    routed.then_some(packet.info.cluster)
}
