//! The state the runner's futures and the [`Handle`](crate::Handle) share: the
//! [`Endpoint`], the socket slots with their send queues, the clock and the counters. Every
//! access is one short critical section ([`Shared::with`]); nothing awaits inside one.
//!
//! This is transport bookkeeping only — which socket carries which connection, what is
//! queued on it — and the documented driving loop of `docs/architecture.md`: bytes in with
//! `handle_bytes`, packets out with `poll_transmit_into`, failures back with
//! `handle_send_failed_bytes`, timers from `poll_timeout`. Every protocol decision is the
//! core's.

use core::cell::RefCell;
use core::net::SocketAddr;

use clusterer_core::{ConnectionId, Event, Now};
use clusterer_proto::{Destination, Endpoint, PacketInfo};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pubsub::PubSubChannel;
use embassy_sync::signal::Signal;

use crate::queue::SendQueues;
use crate::{EVENT_QUEUE, FLUSH_BUDGET, LISTENERS_PER_PORT, MAX_LISTEN_PORTS, MAX_SUBSCRIBERS};

/// The mutex flavour of every shared structure (a critical section: works on one core and
/// on the host with `critical-section/std`).
pub(crate) type RawMutex = CriticalSectionRawMutex;

/// The event channel the engine publishes to and [`Handle::subscribe`](crate::Handle::subscribe)
/// reads from.
pub(crate) type Events = PubSubChannel<RawMutex, Event, EVENT_QUEUE, MAX_SUBSCRIBERS, 1>;

/// Monotonic milliseconds since start and the UNIX time, as the core wants them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    start: embassy_time::Instant,
    unix_at_start: i64,
    /// Added to the time since start; 0 but in unit tests, which jump time forward.
    skip: embassy_time::Duration,
}

impl Clock {
    pub(crate) fn new(unix_at_start: i64) -> Self {
        Clock {
            start: embassy_time::Instant::now(),
            unix_at_start,
            skip: embassy_time::Duration::from_ticks(0),
        }
    }

    pub(crate) fn now(&self) -> Now {
        let elapsed =
            embassy_time::Instant::now().saturating_duration_since(self.start) + self.skip;
        Now::new(
            elapsed.as_millis(),
            self.unix_at_start
                .saturating_add(i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// The embassy instant of a core deadline.
    pub(crate) fn deadline(&self, at: clusterer_core::Instant) -> embassy_time::Instant {
        (self.start + embassy_time::Duration::from_millis(at.as_millis()))
            .checked_sub(self.skip)
            .unwrap_or(self.start)
    }
}

/// What a socket slot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Free.
    Idle,
    /// Waiting for a connection on this port.
    Listen(u16),
    /// Opening a connection to this address (packets queue meanwhile).
    Connect(SocketAddr),
    /// Carrying a connection.
    Connected,
}

/// One socket of the pool, as the engine sees it.
pub(crate) struct Slot {
    pub(crate) role: Role,
    /// The connection while [`Role::Connected`].
    pub(crate) connection: Option<ConnectionId>,
    /// For an outgoing connection (opening or open): the destination URL's address.
    pub(crate) outgoing_to: Option<SocketAddr>,
    pub(crate) queues: SendQueues<'static>,
}

/// Runtime counters (the endpoint keeps the protocol ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RuntimeCounters {
    /// Outgoing connections attempted.
    pub connects: u64,
    /// Outgoing connections that failed or timed out.
    pub connect_failures: u64,
    /// Inbound connections accepted.
    pub accepted: u64,
    /// Connections closed (by either side, or on a framing error).
    pub closed: u64,
    /// Packets refused because the connection's lane queue was full; each was reported to
    /// the core as a failed send.
    pub queue_full: u64,
    /// Packets refused because every socket of the pool was busy; each was reported to the
    /// core as a failed send.
    pub no_free_socket: u64,
    /// Packets that were queued on a connection that closed before they were written;
    /// each was reported to the core as a failed send.
    pub lost_on_close: u64,
    /// Packets larger than the packet buffer (`Resources`' `PACKET`), dropped; the
    /// endpoint counts them as unencodable too.
    pub too_large: u64,
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// Bytes read from sockets.
    pub bytes_read: u64,
}

/// The engine's state.
pub(crate) struct State<const SOCKETS: usize> {
    pub(crate) endpoint: Endpoint,
    pub(crate) clock: Clock,
    pub(crate) slots: [Slot; SOCKETS],
    /// Where packets are encoded (one at a time), and where queued ones are copied back
    /// when a connection closes under them.
    packet: &'static mut [u8],
    listen_ports: heapless::Vec<u16, MAX_LISTEN_PORTS>,
    next_connection: u64,
    pub(crate) counters: RuntimeCounters,
}

/// Everything the runner's futures and the handles share.
pub(crate) struct Shared<const SOCKETS: usize> {
    state: Mutex<RawMutex, RefCell<State<SOCKETS>>>,
    /// Something for the engine loop: bytes handled, a command run, a connection changed.
    pub(crate) engine_wake: Signal<RawMutex, ()>,
    /// Something for a slot's worker: a role assigned or packets queued.
    pub(crate) slot_wake: [Signal<RawMutex, ()>; SOCKETS],
    pub(crate) events: Events,
}

impl<const SOCKETS: usize> Shared<SOCKETS> {
    pub(crate) fn new(state: State<SOCKETS>) -> Self {
        Shared {
            state: Mutex::new(RefCell::new(state)),
            engine_wake: Signal::new(),
            slot_wake: [const { Signal::new() }; SOCKETS],
            events: PubSubChannel::new(),
        }
    }

    /// Runs `f` on the state in one critical section. Never call it from inside `f`.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State<SOCKETS>) -> R) -> R {
        self.state.lock(|cell| f(&mut cell.borrow_mut()))
    }

    /// Runs a command on the endpoint and wakes the engine to write what it produced.
    pub(crate) fn command<R>(&self, f: impl FnOnce(&mut Endpoint, Now) -> R) -> R {
        let r = self.with(|st| {
            let now = st.clock.now();
            f(&mut st.endpoint, now)
        });
        self.engine_wake.signal(());
        r
    }
}

impl<const SOCKETS: usize> State<SOCKETS> {
    pub(crate) fn new(
        endpoint: Endpoint,
        clock: Clock,
        slots: [Slot; SOCKETS],
        packet: &'static mut [u8],
        listen_ports: heapless::Vec<u16, MAX_LISTEN_PORTS>,
    ) -> Self {
        State {
            endpoint,
            clock,
            slots,
            packet,
            listen_ports,
            next_connection: 1,
            counters: RuntimeCounters::default(),
        }
    }

    /// One turn of the driving loop's output half: up to [`FLUSH_BUDGET`] packets the
    /// endpoint has are queued on their connections (or reported failed), every event is
    /// published, and listeners are kept up. Slots with new work are woken. `true` when
    /// packets remain: the caller yields (so the network stack and the other tasks run, and
    /// this critical section stays short) and calls again.
    pub(crate) fn flush(&mut self, slot_wake: &[Signal<RawMutex, ()>], events: &Events) -> bool {
        self.keep_listening(slot_wake);
        let mut more = true;
        for _ in 0..FLUSH_BUDGET {
            match self.endpoint.poll_transmit_into(self.packet) {
                Ok(Some((info, len))) => self.route(info, len, slot_wake),
                Ok(None) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    // Larger than `Resources`' PACKET: it can never be sent from here.
                    crate::log::warning!(
                        "a packet of {} bytes does not fit the {}-byte packet buffer: dropped",
                        e.needed,
                        self.packet.len()
                    );
                    self.counters.too_large += 1;
                    let _ = self.endpoint.skip_transmit();
                }
            }
        }
        let publisher = events.immediate_publisher();
        while let Some(event) = self.endpoint.poll_event() {
            // A subscriber that lags loses the oldest events and is told how many.
            publisher.publish_immediate(event);
        }
        more
    }

    /// Queues the packet in `self.packet[..len]` on the slot of its destination, opening
    /// an outgoing connection when there is none.
    fn route(&mut self, info: PacketInfo, len: usize, slot_wake: &[Signal<RawMutex, ()>]) {
        let slot = match info.to {
            Destination::Connection(id) => self.slots.iter().position(|s| s.connection == Some(id)),
            Destination::Node { address, .. } => {
                let to = address.socket;
                match self.slots.iter().position(|s| s.outgoing_to == Some(to)) {
                    Some(i) => Some(i),
                    None => self.open(to),
                }
            }
        };
        let Some(i) = slot else {
            if matches!(info.to, Destination::Node { .. }) {
                self.counters.no_free_socket += 1;
            }
            // A connection that is gone: the endpoint counts it.
            self.fail(info, len);
            return;
        };
        // Also when the push fails: a slot just given an outgoing connection must start it.
        slot_wake[i].signal(());
        let bytes = &self.packet[..len];
        if self.slots[i].queues.push(info, bytes).is_err() {
            self.counters.queue_full += 1;
            self.fail(info, len);
        }
    }

    /// Takes an idle slot for an outgoing connection to `to` (its worker connects).
    fn open(&mut self, to: SocketAddr) -> Option<usize> {
        let i = self.slots.iter().position(|s| s.role == Role::Idle)?;
        let slot = &mut self.slots[i];
        slot.role = Role::Connect(to);
        slot.outgoing_to = Some(to);
        self.counters.connects += 1;
        Some(i)
    }

    /// Reports the packet in `self.packet[..len]` as not delivered.
    fn fail(&mut self, info: PacketInfo, len: usize) {
        let now = self.clock.now();
        self.endpoint
            .handle_send_failed_bytes(now, info, &self.packet[..len]);
    }

    /// Puts idle slots in listening mode until every BIN port has
    /// [`LISTENERS_PER_PORT`] of them (a connection accepted on one leaves the other
    /// listening while a new one takes its place).
    fn keep_listening(&mut self, slot_wake: &[Signal<RawMutex, ()>]) {
        for &port in &self.listen_ports {
            let listening = self
                .slots
                .iter()
                .filter(|s| s.role == Role::Listen(port))
                .count();
            for _ in listening..LISTENERS_PER_PORT {
                let Some(i) = self.slots.iter().position(|s| s.role == Role::Idle) else {
                    return;
                };
                self.slots[i].role = Role::Listen(port);
                slot_wake[i].signal(());
            }
        }
    }

    /// Slot `i`'s socket is connected to `peer`: a new connection for the endpoint.
    pub(crate) fn opened(&mut self, i: usize, peer: SocketAddr) -> ConnectionId {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        let slot = &mut self.slots[i];
        if slot.role != Role::Connect(peer) {
            self.counters.accepted += 1;
        }
        slot.role = Role::Connected;
        slot.connection = Some(id);
        self.endpoint.handle_connection_opened(id, peer);
        id
    }

    /// Bytes read on slot `i`'s connection; `false` on a framing error (close it).
    pub(crate) fn received(&mut self, i: usize, bytes: &[u8]) -> bool {
        let Some(id) = self.slots[i].connection else {
            return true;
        };
        self.counters.bytes_read += bytes.len() as u64;
        let now = self.clock.now();
        match self.endpoint.handle_bytes(now, id, bytes) {
            Ok(()) => true,
            Err(e) => {
                crate::log::warning!(
                    "connection {}: bad framing ({}), closing it",
                    id.0,
                    e.0.kind_name()
                );
                false
            }
        }
    }

    /// Slot `i`'s connection (or connect attempt) ended: the endpoint forgets it, whatever
    /// was queued on it is reported failed, and the slot is free again.
    pub(crate) fn closed(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if let Some(id) = slot.connection.take() {
            self.counters.closed += 1;
            self.endpoint.handle_connection_closed(id);
        } else if matches!(slot.role, Role::Connect(_)) {
            self.counters.connect_failures += 1;
        }
        slot.role = Role::Idle;
        slot.outgoing_to = None;
        let now = self.clock.now();
        while let Some((info, len)) = self.slots[i].queues.pop_into(self.packet) {
            self.counters.lost_on_close += 1;
            self.endpoint
                .handle_send_failed_bytes(now, info, &self.packet[..len]);
        }
    }

    /// Copies the next bytes of slot `i`'s queues into `out`: how many were taken.
    pub(crate) fn write_into(&mut self, i: usize, out: &mut [u8]) -> usize {
        let queues = &mut self.slots[i].queues;
        let n = queues.fill(out);
        queues.advance(n);
        self.counters.bytes_written += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;
    use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId};
    use clusterer_proto::EndpointOptions;
    use clusterer_proto::wire::MAX_EMIT_LEN;

    fn id(n: u32) -> NodeId {
        NodeId::new(n).unwrap()
    }

    /// Node 1 with `peers` neighbours on 10.0.0.N, a pool of `S` sockets with small queues.
    fn state<const S: usize>(peers: u32, queue: usize) -> State<S> {
        state_with_packet(peers, queue, MAX_EMIT_LEN)
    }

    fn state_with_packet<const S: usize>(peers: u32, queue: usize, packet: usize) -> State<S> {
        let mut config = Config::new(id(1), DbMode::Discovery);
        config.clusters.push(ClusterConfig {
            id: ClusterId::MIN,
            local: NodeConfig::new(id(1), "bin:10.0.0.1:5566"),
            nodes: (2..2 + peers)
                .map(|n| NodeConfig::new(id(n), std::format!("bin:10.0.0.{n}:5566")))
                .collect(),
        });
        let clock = Clock::new(0);
        let endpoint = Endpoint::new(config, EndpointOptions::default(), clock.now(), 7).unwrap();
        let slots = core::array::from_fn(|_| Slot {
            role: Role::Idle,
            connection: None,
            outgoing_to: None,
            queues: SendQueues::new(
                Box::leak(std::vec![0u8; 256].into_boxed_slice()),
                Box::leak(std::vec![0u8; queue].into_boxed_slice()),
            ),
        });
        let packet = Box::leak(std::vec![0u8; packet].into_boxed_slice());
        let mut ports = heapless::Vec::new();
        ports.push(5566).unwrap();
        State::new(endpoint, clock, slots, packet, ports)
    }

    /// Jumps `ms` forward, runs the timers and writes what they produced.
    fn tick<const S: usize>(st: &mut State<S>, ms: u64) {
        st.clock.skip += embassy_time::Duration::from_millis(ms);
        let wakes: [Signal<RawMutex, ()>; S] = [const { Signal::new() }; S];
        let events = Events::new();
        let now = st.clock.now();
        st.endpoint.handle_timeout(now);
        while st.flush(&wakes, &events) {}
    }

    fn roles<const S: usize>(st: &State<S>) -> Vec<Role> {
        st.slots.iter().map(|s| s.role).collect()
    }

    #[test]
    fn listeners_come_first_then_one_outgoing_connection_per_neighbour() {
        let mut st = state::<5>(2, 1024);
        tick(&mut st, 1_100);
        let to = |n: u8| Role::Connect(SocketAddr::from(([10, 0, 0, n], 5566)));
        let mut got = roles(&st);
        // The core's order of the first PINGs is its own.
        got[2..4].sort_by_key(|r| std::format!("{r:?}"));
        assert_eq!(
            got,
            [
                Role::Listen(5566),
                Role::Listen(5566),
                to(2),
                to(3),
                Role::Idle
            ]
        );
        assert!(
            !st.slots[2].queues.is_empty(),
            "the first PING waits for the connect"
        );
    }

    #[test]
    fn a_full_pool_is_a_counted_send_failure() {
        let mut st = state::<3>(2, 1024);
        tick(&mut st, 1_100);
        // Two listeners and one outgoing connection: no socket for the second neighbour.
        assert_eq!(st.counters.no_free_socket, 1);
        assert_eq!(st.endpoint.counters().send_failures, 1);
    }

    #[test]
    fn a_full_queue_is_a_counted_send_failure() {
        // The connect never completes here (no worker runs): the core keeps probing, and
        // the PINGs pile up in the 256-byte control ring until it is full.
        let mut st = state::<4>(1, 64);
        for _ in 0..20 {
            tick(&mut st, 1_100);
        }
        assert!(st.counters.queue_full > 0, "{:?}", st.counters);
        assert_eq!(
            st.endpoint.counters().send_failures,
            st.counters.queue_full + st.counters.no_free_socket
        );
    }

    #[test]
    fn a_packet_larger_than_the_packet_buffer_is_counted_and_the_rest_still_flows() {
        // A 20-byte buffer holds no BIN packet: every PING is dropped, none blocks the next.
        let mut st = state_with_packet::<4>(2, 1024, 20);
        tick(&mut st, 1_100);
        assert_eq!(st.counters.too_large, 2);
        assert_eq!(
            st.endpoint
                .counters()
                .dropped
                .get(&clusterer_proto::endpoint::DropCause::Unencodable),
            Some(&2)
        );
        assert!(st.slots.iter().all(|s| s.queues.is_empty()));
    }

    #[test]
    fn what_a_closing_connection_never_wrote_goes_back_to_the_core() {
        let mut st = state::<4>(1, 1024);
        tick(&mut st, 1_100);
        let queued = st.slots[2].queues.is_empty();
        assert!(!queued, "a PING is queued while connecting");
        st.closed(2);
        assert_eq!(st.slots[2].role, Role::Idle);
        assert!(st.slots[2].queues.is_empty());
        assert!(st.counters.lost_on_close >= 1);
        assert_eq!(st.counters.connect_failures, 1);
        assert_eq!(
            st.endpoint.counters().send_failures,
            st.counters.lost_on_close
        );
    }
}
