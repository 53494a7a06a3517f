//! The local node: the sans-IO driving surface of the core.
//!
//! ```text
//! Node::new(config, now, seed)
//! node.handle_message(now, connection, message)   a decoded packet from a peer
//! node.handle_timeout(now)                         the deadline of poll_timeout passed
//! node.handle_send_failed(now, cluster, hop, ..)   a transmit was not sent (maybe resend)
//! node.set_status / remove_node / send_to / ...    admin and API commands
//! node.poll_transmit() / poll_event()              drain after every call
//! node.poll_timeout()                              sleep until then
//! ```
//!
//! After any `handle_*` call or command, drain [`Node::poll_transmit`] and
//! [`Node::poll_event`], then wait until [`Node::poll_timeout`] or the next input.

use alloc::format;
use alloc::vec::Vec;

use crate::address::NodeAddress;
use crate::cluster::{Cluster, LocalNode, RemoteNode};
use crate::config::{Config, ConfigError, DbMode, Timers};
use crate::id::{ClusterId, NodeId};
use crate::link::{LinkState, LinkTimers, Transition};
use crate::message::{Internal, InternalBody, Message, Ping, Pong, Routed, RoutedBody};
use crate::report::ReportRing;
use crate::rng::Rng;
use crate::route::Route;
use crate::shtag::{SharingTag, SharingTags, ShtagSettings};
use crate::sync::{SyncOptions, SyncSettings};
use crate::time::{Instant, Now};

pub(crate) use crate::output::Outputs;
pub use crate::output::{
    ConnectionId, DropReason, Event, MAX_QUEUED_EVENTS, MAX_QUEUED_TRANSMITS, Transmit, TransmitTo,
};

/// Period of the sync check timer (`SYNC_CHECK_INTERVAL`), which also drives election
/// hold-downs.
pub const SYNC_CHECK_INTERVAL_MS: u64 = 500;

/// Settings derived from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub my_id: NodeId,
    pub db_mode: DbMode,
    pub timers: Timers,
    pub link: LinkTimers,
    pub heartbeat_ms: u64,
    pub rerouting: bool,
    pub sync: SyncOptions,
    pub sync_packet_size: usize,
    pub fault_injection: crate::config::FaultInjection,
    /// Election mode takes no tag before this time: in db_mode 0 the start plus
    /// [`Timers::discovery_bound_ms`] (peers that know us but we do not know find us by
    /// then), otherwise the start.
    pub election_not_before: Instant,
}

impl Settings {
    /// The fixed settings of the sync machines.
    pub(crate) fn sync_settings(&self) -> SyncSettings {
        SyncSettings {
            options: self.sync,
            packet_size: self.sync_packet_size,
            seed_fallback_ms: u64::from(self.timers.seed_fallback_interval_s) * 1000,
            timeout_ms: u64::from(self.timers.sync_timeout_s) * 1000,
        }
    }

    /// The fixed settings of every cluster's sharing tags.
    pub(crate) fn shtag_settings(&self) -> ShtagSettings {
        ShtagSettings {
            timers: self.timers,
            not_before: self.election_not_before,
            skip_demotion: self.fault_injection.skip_shtag_demotion,
        }
    }
}

/// The per-call context handed to the cluster-level procedures.
pub(crate) struct Ctx<'a> {
    pub now: Now,
    pub s: &'a Settings,
    pub out: &'a mut Outputs,
}

/// Node statistics (docs/behaviour.md §14).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `clusterer_nodes`: other-node entries over all clusters.
    pub nodes: u64,
    /// `clusterer_nodes_up`: those whose direct link is UP.
    pub nodes_up: u64,
    /// `clusterer_nodes_down`: the rest.
    pub nodes_down: u64,
    /// Transmits dropped because the queue was full.
    pub dropped_transmits: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
    /// Transmits the runtime could not encode (larger than the 65515-byte limit), as
    /// reported with [`Node::handle_unencodable`].
    pub unencodable_transmits: u64,
}

/// The local node: every cluster it is a member of, and the output queues.
#[derive(Debug)]
pub struct Node {
    pub(crate) s: Settings,
    pub(crate) clusters: Vec<Cluster>,
    pub(crate) out: Outputs,
    pub(crate) rng: Rng,
    pub(crate) next_heartbeat: Instant,
    pub(crate) next_sync_check: Instant,
}

impl Node {
    /// Builds the node from a validated configuration. Every peer starts in RESTART_PINGING;
    /// the first heartbeat tick is one period after `now`.
    ///
    /// # Errors
    /// [`ConfigError`] from [`Config::validate`].
    pub fn new(config: Config, now: Now, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let s = Settings {
            my_id: config.node_id,
            db_mode: config.db_mode,
            timers: config.timers,
            link: LinkTimers::from(&config.timers),
            heartbeat_ms: config.timers.heartbeat_ms(),
            rerouting: config.enable_rerouting,
            sync: config.sync,
            sync_packet_size: config.sync_packet_size,
            fault_injection: config.fault_injection,
            election_not_before: if config.db_mode == DbMode::Discovery {
                now.instant.plus(config.timers.discovery_bound_ms())
            } else {
                now.instant
            },
        };
        let mut clusters = Vec::with_capacity(config.clusters.len());
        for c in &config.clusters {
            let bad_url = |node, reason| ConfigError::BadUrl {
                cluster: c.id,
                node,
                reason,
            };
            let address = NodeAddress::parse(&c.local.url).map_err(|r| bad_url(c.local.id, r))?;
            let local = LocalNode::from_config(&c.local, address);
            let mut cluster = Cluster::new(c.id, local, s.shtag_settings());
            for n in &c.nodes {
                let address = NodeAddress::parse(&n.url).map_err(|r| bad_url(n.id, r))?;
                // The node list is built by prepending (docs/behaviour.md §1.2).
                cluster.push_front_node(RemoteNode::from_config(n, address));
            }
            let tags = config
                .sharing_tags
                .iter()
                .filter(|t| t.cluster == c.id)
                .map(|t| SharingTag::new(&t.name, t.state, t.election));
            cluster.shtags = SharingTags::new(tags, s.shtag_settings());
            clusters.push(cluster);
        }
        Ok(Node {
            next_heartbeat: now.instant.plus(s.heartbeat_ms),
            next_sync_check: now.instant.plus(SYNC_CHECK_INTERVAL_MS),
            s,
            clusters,
            out: Outputs::default(),
            rng: Rng::new(seed),
        })
    }

    /// The local node id.
    pub fn id(&self) -> NodeId {
        self.s.my_id
    }

    /// `db_mode`.
    pub fn db_mode(&self) -> DbMode {
        self.s.db_mode
    }

    /// The timer parameters.
    pub fn timers(&self) -> &Timers {
        &self.s.timers
    }

    /// Whether relaying and multi-hop routes are enabled.
    pub fn rerouting_enabled(&self) -> bool {
        self.s.rerouting
    }

    /// Every cluster, in configuration order.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// One cluster.
    pub fn cluster(&self, id: ClusterId) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    pub(crate) fn cluster_mut(&mut self, id: ClusterId) -> Option<&mut Cluster> {
        self.clusters.iter_mut().find(|c| c.id == id)
    }

    /// Runs `f` on one cluster with a context, then processes node events. `None` for an
    /// unknown cluster.
    pub(crate) fn with_ctx<R>(
        &mut self,
        now: Now,
        cluster: ClusterId,
        f: impl FnOnce(&mut Ctx<'_>, &mut Cluster) -> R,
    ) -> Option<R> {
        let Node {
            s, clusters, out, ..
        } = self;
        let c = clusters.iter_mut().find(|c| c.id == cluster)?;
        let mut ctx = Ctx { now, s, out };
        let r = f(&mut ctx, c);
        ctx.process_node_events(c);
        Some(r)
    }

    /// The `sharing_tags` report ring.
    pub fn shtag_reports(&self) -> &ReportRing {
        &self.out.shtag_reports
    }

    /// The `node_states` report ring (all clusters, like OpenSIPS' single identifier).
    pub fn node_state_reports(&self) -> &ReportRing {
        &self.out.node_state_reports
    }

    /// The next hop toward `dest`: the destination itself over a direct UP link, a
    /// neighbour on a shortest path, or `None` when unreachable (or unknown).
    pub fn next_hop(&mut self, cluster: ClusterId, dest: NodeId) -> Option<NodeId> {
        self.route(cluster, dest).map(|r| r.next_hop)
    }

    /// The route toward `dest` (next hop and hop count).
    pub fn route(&mut self, cluster: ClusterId, dest: NodeId) -> Option<Route> {
        let rerouting = self.s.rerouting;
        let c = self.clusters.iter_mut().find(|c| c.id == cluster)?;
        c.refresh_routes();
        c.cached_route(dest, rerouting)
    }

    /// Statistics, computed on read.
    pub fn stats(&self) -> Stats {
        let nodes = self
            .clusters
            .iter()
            .map(|c| c.nodes.len() as u64)
            .sum::<u64>();
        let nodes_up = self
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter())
            .filter(|n| n.link.state() == LinkState::Up)
            .count() as u64;
        Stats {
            nodes,
            nodes_up,
            nodes_down: nodes - nodes_up,
            dropped_transmits: self.out.dropped_transmits,
            dropped_events: self.out.dropped_events,
            unencodable_transmits: self.out.unencodable_transmits,
        }
    }

    /// Whether a packet claiming `source` in `cluster` may come from `ip`: the IP must be
    /// the URL address of some known node of the cluster (docs/wire.md §9 rule 5; the receiver's
    /// own URL does not count). `false` for an unknown cluster.
    pub fn source_ip_allowed(&self, cluster: ClusterId, ip: core::net::IpAddr) -> bool {
        self.cluster(cluster).is_some_and(|c| c.is_member_ip(ip))
    }

    /// A new exchange tag for a GENERIC_MSG request: `<cluster>-<node>-` followed by 24
    /// random characters from `A–Z a–z 0–9` (docs/behaviour.md §11; any length of ids is fine,
    /// quirk #18 fixed). Receivers treat tags as opaque.
    pub fn generate_tag(&mut self, cluster: ClusterId) -> alloc::string::String {
        const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut tag = format!("{}-{}-", cluster, self.s.my_id);
        for _ in 0..24 {
            let i = self.rng.below(CHARSET.len() as u64) as usize;
            tag.push(char::from(CHARSET[i]));
        }
        tag
    }

    /// The next transmit to encode and send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must be called next: the next heartbeat, or the next
    /// sync check when a capability or an election waits for one. There is always a
    /// deadline (the heartbeat never stops); after `handle_timeout(now)` it lies past `now`.
    pub fn poll_timeout(&self) -> Instant {
        if self.needs_sync_check() {
            self.next_heartbeat.min(self.next_sync_check)
        } else {
            self.next_heartbeat
        }
    }

    fn needs_sync_check(&self) -> bool {
        self.clusters.iter().any(|c| {
            c.capabilities.iter().any(|cap| {
                cap.pending.is_some() || cap.requested.is_some() || cap.in_progress.is_some()
            }) || c.shtags.takeover_scheduled()
        })
    }

    /// Runs the timers that are due: the heartbeat evaluates the link rules of every enabled
    /// node in every cluster where the local node is enabled. Early or repeated calls are
    /// no-ops.
    pub fn handle_timeout(&mut self, now: Now) {
        if now.instant >= self.next_sync_check {
            let late = now.instant.since(self.next_sync_check);
            let period = SYNC_CHECK_INTERVAL_MS;
            self.next_sync_check = self.next_sync_check.plus((late / period + 1) * period);
            let Node {
                s, clusters, out, ..
            } = self;
            let mut ctx = Ctx { now, s, out };
            for c in clusters.iter_mut() {
                ctx.sync_check(c);
                ctx.with_shtags(c, |tags, port| tags.check(port));
                ctx.process_node_events(c);
            }
        }
        if now.instant < self.next_heartbeat {
            return;
        }
        let period = self.s.heartbeat_ms;
        // Catch up without bursts: run the latest tick that is due, once.
        let late = now.instant.since(self.next_heartbeat);
        let due = self.next_heartbeat.plus((late / period) * period);
        self.next_heartbeat = due.plus(period);
        // The link rules compare against the tick's scheduled time, not the time the
        // runtime got around to it: with the measured time a tick that ran a few ms later
        // than the one that sent a PING saw "since_ping" just under the threshold and the
        // rule waited a whole extra tick (keep-alives every 5 s instead of 4, a DOWN one
        // tick late).
        let tick = Now {
            instant: due,
            unix_time: now.unix_time,
        };
        let Node {
            s, clusters, out, ..
        } = self;
        let mut ctx = Ctx { now: tick, s, out };
        for c in clusters.iter_mut() {
            if !c.local.enabled {
                continue;
            }
            let ids: Vec<NodeId> = c.nodes.iter().filter(|n| n.enabled).map(|n| n.id).collect();
            for id in ids {
                ctx.tick_link(c, id);
            }
            ctx.process_node_events(c);
            ctx.with_shtags(c, |tags, port| tags.reannounce(port));
        }
    }

    /// Handles a decoded packet that arrived on `connection`. The caller has already
    /// applied the source-IP check ([`Node::source_ip_allowed`]) for known sources.
    ///
    /// # Errors
    /// [`DropReason`] when the packet was ignored; count it.
    pub fn handle_message(
        &mut self,
        now: Now,
        connection: ConnectionId,
        message: Message,
    ) -> Result<(), DropReason> {
        if message.source() == self.s.my_id {
            return Err(DropReason::OwnSource);
        }
        self.with_ctx(now, message.cluster(), |ctx, c| {
            if !c.local.enabled {
                return Err(DropReason::LocalDisabled);
            }
            match message {
                Message::Internal(m) => ctx.handle_internal(c, connection, m),
                Message::Routed(m) => ctx.handle_routed(c, m),
            }
        })
        .unwrap_or(Err(DropReason::UnknownCluster))
    }

    /// A transmit could not be encoded (larger than the 65515-byte limit: an application
    /// message too large for one packet). It is counted in
    /// [`Stats::unencodable_transmits`]; the link to its hop is left alone (the link is
    /// fine, the message is not) and a routed message is not re-routed (it would not fit
    /// any hop either). The sender already got its send status; nothing else changes.
    pub fn handle_unencodable(&mut self) {
        self.out.unencodable_transmits += 1;
    }

    /// A transmit to the neighbour `hop` in `cluster` was not sent: the transport refused it
    /// (connect refused, write error, queue full) or it could not be encoded. The caller
    /// describes it instead of handing the message back: `probe` for a PING, `routed_to`
    /// with the trailer destination for a routed message whose bytes it still holds.
    ///
    /// A PING takes its rule's "fails" branch; anything else restarts probing of `hop`
    /// (the link-down procedure runs if it was UP). For `routed_to = Some(destination)`
    /// (not this node) the node then looks for a next hop over the new topology and, if
    /// one exists, records the send on it (`last_sent`, as every routed send does).
    ///
    /// Returns where to resend the same bytes (routed bytes do not depend on the hop: the
    /// trailer names source and destination only) and their place in the output: after
    /// the first `n` transmits now queued for [`Node::poll_transmit`], ahead of the rest —
    /// where the node would have queued the message itself. The destination is always a
    /// [`TransmitTo::Node`]. `None`: nothing to resend — not routed, no hop left (the
    /// packet is lost), or the transmit queue is full (counted in
    /// [`Stats::dropped_transmits`]).
    pub fn handle_send_failed(
        &mut self,
        now: Now,
        cluster: ClusterId,
        hop: NodeId,
        probe: bool,
        routed_to: Option<NodeId>,
    ) -> Option<(TransmitTo, usize)> {
        self.with_ctx(now, cluster, |ctx, c| {
            let n = c.node_mut(hop)?;
            let transition = if probe {
                n.link.handle_ping_send_failed()
            } else {
                n.link.set_state(LinkState::RestartPinging)
            };
            if let Some(t) = transition {
                ctx.after_transition(c, hop, t, true);
            }
            let destination = routed_to.filter(|&d| d != ctx.s.my_id)?;
            // `send_routed` without the message: the caller resends its bytes.
            c.refresh_routes();
            let route = c.cached_route(destination, ctx.s.rerouting)?;
            let next = c.node_mut(route.next_hop)?;
            next.link.record_sent(ctx.now.instant);
            let queued = ctx.out.transmits.len();
            if queued >= MAX_QUEUED_TRANSMITS {
                ctx.out.dropped_transmits += 1;
                return None;
            }
            let to = TransmitTo::Node {
                id: route.next_hop,
                address: next.address,
            };
            Some((to, queued))
        })
        .flatten()
    }
}

impl Ctx<'_> {
    /// Applies the heartbeat rules to one link.
    pub(crate) fn tick_link(&mut self, c: &mut Cluster, id: NodeId) {
        let link_timers = self.s.link;
        let Some(n) = c.node_mut(id) else { return };
        let retries = n.no_ping_retries;
        let outcome = n.link.handle_tick(self.now.instant, &link_timers, retries);
        if let Some(req_node_list) = outcome.ping {
            self.send_internal(c, id, InternalBody::Ping(Ping { req_node_list }));
        }
        if let Some(t) = outcome.transition {
            self.after_transition(c, id, t, true);
        }
    }

    /// Runs the link-up or link-down procedure a transition calls for.
    pub(crate) fn after_transition(
        &mut self,
        c: &mut Cluster,
        id: NodeId,
        t: Transition,
        announce_down: bool,
    ) {
        if t.is_link_up() {
            self.link_up(c, id);
        } else if t.is_link_down() {
            self.link_down(c, id, announce_down);
        }
    }

    /// Sets a link's state through the race-guarded setter and runs the procedures.
    pub(crate) fn set_link(&mut self, c: &mut Cluster, id: NodeId, to: LinkState) {
        let Some(n) = c.node_mut(id) else { return };
        if let Some(t) = n.link.set_state(to) {
            self.after_transition(c, id, t, true);
        }
    }

    /// Link-up procedure (docs/behaviour.md §3.4); the link state is already UP.
    pub(crate) fn link_up(&mut self, c: &mut Cluster, id: NodeId) {
        c.topology.local_link_up(id);
        self.refresh_reachability(c);
        self.send_ls_update(c, id, crate::message::LinkUpdate::Up);
        self.send_full_top_update(c, id);
        self.send_full_cap_update(c, id, true);
    }

    /// Link-down procedure (docs/behaviour.md §3.5); the link state has already left UP.
    pub(crate) fn link_down(&mut self, c: &mut Cluster, id: NodeId, announce: bool) {
        c.topology.local_link_down(id);
        self.refresh_reachability(c);
        if announce {
            self.send_ls_update(c, id, crate::message::LinkUpdate::Down);
        }
    }

    /// Recomputes routes and queues a reachability event for every node whose reachability
    /// flipped (docs/behaviour.md §6: events follow reachability, not every link change).
    pub(crate) fn refresh_reachability(&mut self, c: &mut Cluster) {
        c.refresh_routes();
        let rerouting = self.s.rerouting;
        let mut flips = Vec::new();
        for n in &c.nodes {
            let now_reachable = c.cached_route(n.id, rerouting).is_some();
            if now_reachable != n.reachable {
                flips.push((n.id, now_reachable));
            }
        }
        for (id, up) in flips {
            if let Some(n) = c.node_mut(id) {
                n.reachable = up;
            }
            c.pending_node_events.push((id, up));
        }
    }

    /// Processes queued reachability changes in the order they happened (both an UP and a
    /// DOWN of one node are processed: quirk #27 fixed; each cluster is processed on its
    /// own: quirk #5 fixed).
    pub(crate) fn process_node_events(&mut self, c: &mut Cluster) {
        // Handlers may change reachability again; a few rounds settle it.
        for _ in 0..4 {
            let pending = core::mem::take(&mut c.pending_node_events);
            if pending.is_empty() {
                return;
            }
            for (node, up) in pending {
                let text = format!(
                    "Node [{node}], cluster [{}] is {}",
                    c.id,
                    if up { "UP" } else { "DOWN" }
                );
                self.out.node_state_reports.push(self.now.unix_time, text);
                self.out.event(Event::NodeStateChanged {
                    cluster: c.id,
                    node,
                    up,
                });
                self.capabilities_on_node_event(c, node, up);
                self.with_shtags(c, |tags, port| tags.on_node_event(port, node, up));
            }
        }
    }

    /// Sends a `clusterer-internal` message directly to a neighbour's URL.
    pub(crate) fn send_internal(&mut self, c: &Cluster, to: NodeId, body: InternalBody) {
        self.send_internal_from(c, self.s.my_id, to, body);
    }

    /// Sends a `clusterer-internal` message with originator `origin` (ours, or the
    /// originator of a flooded update) directly to a neighbour's URL.
    pub(crate) fn send_internal_from(
        &mut self,
        c: &Cluster,
        origin: NodeId,
        to: NodeId,
        body: InternalBody,
    ) {
        let Some(n) = c.node(to) else { return };
        let message = Message::Internal(Internal::new(c.id, origin, body));
        self.out.transmit(Transmit {
            cluster: c.id,
            to: TransmitTo::Node {
                id: to,
                address: n.address,
            },
            message,
        });
    }

    /// Sends a routed message toward its trailer destination: directly when the link is
    /// UP, else through the next hop. Returns `false` when there is no hop.
    pub(crate) fn send_routed(&mut self, c: &mut Cluster, m: Routed) -> bool {
        c.refresh_routes();
        let Some(route) = c.cached_route(m.trailer.destination, self.s.rerouting) else {
            return false;
        };
        let Some(hop) = c.node_mut(route.next_hop) else {
            return false;
        };
        hop.link.record_sent(self.now.instant);
        let address = hop.address;
        self.out.transmit(Transmit {
            cluster: c.id,
            to: TransmitTo::Node {
                id: route.next_hop,
                address,
            },
            message: Message::Routed(m),
        });
        true
    }

    fn handle_internal(
        &mut self,
        c: &mut Cluster,
        connection: ConnectionId,
        m: Internal,
    ) -> Result<(), DropReason> {
        let source = m.source;
        let Some(n) = c.node_mut(source) else {
            return self.handle_unknown_source(c, connection, m);
        };
        // A PONG records its receive time itself, after its own check (§3.3).
        if !n.enabled || !matches!(m.body, InternalBody::Pong(_)) {
            n.link.record_received(self.now.instant);
        }
        if !n.enabled {
            return Err(DropReason::SourceDisabled);
        }
        match m.body {
            InternalBody::Ping(p) => {
                self.handle_ping(c, source, p);
                Ok(())
            }
            InternalBody::Pong(p) => {
                self.handle_pong(c, source, p);
                Ok(())
            }
            InternalBody::LsUpdate(u) => self.handle_ls_update(c, source, u),
            InternalBody::FullTopUpdate(u) => self.handle_full_top_update(c, source, u),
            InternalBody::UnknownId => {
                self.handle_unknown_id(c, source);
                Ok(())
            }
            // A description from a known node is ignored and not re-flooded.
            InternalBody::NodeDescription(_) => Ok(()),
            InternalBody::CapUpdate(u) => self.handle_cap_update(c, source, u),
        }
    }

    fn handle_ping(&mut self, c: &mut Cluster, source: NodeId, ping: Ping) {
        let nodes = if ping.req_node_list {
            c.nodes
                .iter()
                .map(|n| n.id)
                .filter(|&id| id != source)
                .collect()
        } else {
            Vec::new()
        };
        self.send_internal(c, source, InternalBody::Pong(Pong { nodes }));
        let state = c.node(source).map(|n| n.link.state());
        if matches!(state, Some(LinkState::Down | LinkState::RestartPinging)) {
            // Rule 0 right away: the node is back (also when probing was only scheduled to
            // restart at the next tick — OpenSIPS waits for that tick).
            self.set_link(c, source, LinkState::RestartPinging);
            self.tick_link(c, source);
        }
    }

    fn handle_pong(&mut self, c: &mut Cluster, source: NodeId, pong: Pong) {
        let timers = self.s.link;
        let now = self.now.instant;
        let Some(n) = c.node_mut(source) else { return };
        n.pong_list = pong.nodes;
        if n.link.handle_pong(now, &timers) {
            self.link_up(c, source);
        }
    }

    fn handle_routed(&mut self, c: &mut Cluster, m: Routed) -> Result<(), DropReason> {
        let source = m.trailer.source;
        let Some(n) = c.node_mut(source) else {
            return Err(DropReason::UnknownSource);
        };
        n.link.record_received(self.now.instant);
        if !n.enabled {
            return Err(DropReason::SourceDisabled);
        }
        if n.link.state() == LinkState::Down {
            // Traffic from a node we think is down: probe it again now.
            self.set_link(c, source, LinkState::RestartPinging);
        }
        if m.trailer.destination != self.s.my_id {
            return self.relay(c, m);
        }
        match m.body {
            RoutedBody::RemoveNode(r) => self.handle_remove_node(c, source, r.node),
            RoutedBody::SyncReq(r) => self.handle_sync_req(c, source, r),
            RoutedBody::Sync(s) => self.handle_sync(c, source, s),
            RoutedBody::SyncEnd(e) => self.handle_sync_end(c, source, e),
            RoutedBody::ShtagActive(t) => {
                self.with_shtags(c, |tags, port| tags.on_active(port, source, &t.tag));
                Ok(())
            }
            RoutedBody::Module(p) => self.handle_module_packet(c, source, m.version, p),
            body @ (RoutedBody::GenericMsg(_) | RoutedBody::MiCmd(_)) => {
                self.out.event(Event::Received {
                    cluster: c.id,
                    source,
                    version: m.version,
                    body,
                });
                Ok(())
            }
        }
    }

    /// Forwards a routed packet not addressed to us (docs/wire.md §10). Relaying follows
    /// `enable_rerouting` for clusterer-extra and module packets alike (quirk #3 fixed).
    fn relay(&mut self, c: &mut Cluster, m: Routed) -> Result<(), DropReason> {
        if !self.s.rerouting {
            return Err(DropReason::ReroutingDisabled);
        }
        if c.node(m.trailer.destination).is_none() {
            return Err(DropReason::UnknownDestination);
        }
        if self.send_routed(c, m) {
            Ok(())
        } else {
            Err(DropReason::NoRoute)
        }
    }
}
