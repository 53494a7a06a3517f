//! # clusterer-embassy
//!
//! The embassy-net runtime of clusterer, for appliances: a clusterer node on any
//! embassy-net stack (a Cortex-M board's Ethernet, or a Linux TAP device for tests) that
//! joins the same cluster as OpenSIPS servers and `clusterer run` daemons. `#![no_std]`
//! with `alloc` (the core keeps its tables on the heap); builds for `thumbv7em-none-eabihf`.
//!
//! It moves bytes and time for the same [`Endpoint`] the daemon and the simulator drive —
//! the one driving loop of `docs/architecture.md` — and makes no protocol decision of its
//! own:
//!
//! * a fixed pool of `SOCKETS` embassy-net [`TcpSocket`]s
//!   ([`Resources`]): [`LISTENERS_PER_PORT`] listen on each local BIN port, the others carry
//!   one outgoing connection per neighbour URL (opened on the first packet, reopened on the
//!   next one after a close) and the accepted ones;
//! * per connection one deframer (in the endpoint) and two send queues, control before
//!   bulk (`clusterer_proto::Lane`: liveness never waits behind sync data), over memory
//!   from [`Resources`]; packets are encoded with `poll_transmit_into` into one buffer and
//!   copied into the queues: nothing is allocated per packet;
//! * timers: one embassy-time deadline from `poll_timeout`;
//! * every overflow (queue full, no free socket, a connection closing under queued
//!   packets) is counted in [`RuntimeCounters`] and reported to the core as a failed send.
//!
//! ```ignore
//! static RESOURCES: StaticCell<clusterer_embassy::Resources> = StaticCell::new();
//! let config = clusterer_embassy::Config::new(core_config);
//! let (handle, runner) =
//!     clusterer_embassy::new(stack, config, RESOURCES.init(Resources::new()), seed)?;
//! spawner.spawn(cluster_task(runner).unwrap());   // async fn cluster_task(r) { r.run().await }
//! let mut events = handle.subscribe()?;
//! ```
//!
//! ## Bounds and their defaults
//!
//! | bound | where | default |
//! | --- | --- | --- |
//! | sockets in the pool (2 listeners per BIN port + 2 per neighbour) | `Resources<SOCKETS, ..>` | 8 |
//! | socket receive / send buffer | `Resources<_, BUF, _>` | 4096 bytes each |
//! | bulk queue per connection | `Resources<_, _, QUEUE>` | 16384 bytes |
//! | largest packet sent | `Resources<_, _, _, PACKET>` | 65515 bytes (`MAX_EMIT_LEN`) |
//! | control queue per connection | `Resources<_, _, _, _, CONTROL>` | 2048 bytes ([`CONTROL_QUEUE`]) |
//! | packets queued per lane and connection | [`QUEUED_PACKETS`] | 16 |
//! | listeners per BIN port | [`LISTENERS_PER_PORT`] | 2 |
//! | local BIN ports | [`MAX_LISTEN_PORTS`] | 4 |
//! | events buffered per subscriber | [`EVENT_QUEUE`] | 16 |
//! | event subscriptions | [`MAX_SUBSCRIBERS`] | 4 |
//! | connect timeout | [`CONNECT_TIMEOUT`] | 3 s |
//! | packets written per engine turn before yielding | [`FLUSH_BUDGET`] | 32 |
//!
//! A packet larger than a lane's queue can never be sent on that runtime (it is reported
//! failed each time): size `QUEUE` for the largest sync chunk the node's capabilities use.
//!
//! ## Logging
//! Feature `log` (the default) logs through the `log` facade; feature `defmt` (firmware,
//! with `default-features = false`) through defmt. Enabling both is a compile error.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod demo;
mod handle;
mod log;
mod queue;
mod runner;
mod state;

use core::net::SocketAddr;

use clusterer_core::{ConfigError, Scheme};
use clusterer_proto::wire::MAX_EMIT_LEN;
use clusterer_proto::{Endpoint, EndpointOptions};
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::Duration;

pub use handle::{EventSubscriber, Handle, NodeState, TooManySubscribers};
pub use queue::QUEUED_PACKETS;
pub use runner::Runner;
pub use state::RuntimeCounters;

use queue::SendQueues;
use state::{Clock, Role, Shared, Slot, State};

/// Default bytes of the control queue (PING, PONG, topology and capability adverts) per
/// connection (`Resources`' `CONTROL`). A full control queue is a failed send, which
/// restarts probing and floods topology updates: size it for a burst of updates from the
/// whole cluster (about 1 KiB per neighbour; 2 KiB holds a three-node cluster, a 16-node
/// one needs about 16 KiB).
pub const CONTROL_QUEUE: usize = 2048;
/// Sockets kept listening on each local BIN port, so a second peer connecting while the
/// first one's socket is being replaced is not refused.
pub const LISTENERS_PER_PORT: usize = 2;
/// Distinct local BIN ports (one per cluster at most).
pub const MAX_LISTEN_PORTS: usize = 4;
/// Events buffered per subscriber.
pub const EVENT_QUEUE: usize = 16;
/// Event subscriptions alive at once.
pub const MAX_SUBSCRIBERS: usize = 4;
/// How long an outgoing connect may take before its queued packets are reported failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A connection whose sent data stays unacknowledged this long is reset.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keep-alive interval on open connections.
pub const TCP_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Packets the engine writes per turn before it yields to the network stack and the other
/// tasks (a burst of failures and re-routes in a large cluster must not hold the executor,
/// or the critical section around the state, for long).
pub const FLUSH_BUDGET: usize = 32;
/// Pause before a socket whose listen failed tries again.
pub const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// What the runtime needs besides the network stack.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node configuration (`my_node_id`, clusters, timers, sharing tags, ...).
    pub node: clusterer_core::Config,
    /// Endpoint options (the discovery allow-list).
    pub endpoint: EndpointOptions,
    /// The UNIX time in seconds when [`new`] is called (from an RTC or SNTP). Topology
    /// stamps carry it, so that a restarted node's updates are newer than its old ones;
    /// 0 when the appliance has no wall clock (then a restart within the same second
    /// count may need its peers' timeout to be noticed).
    pub unix_time: i64,
}

impl Config {
    /// `node` with default endpoint options and no wall clock.
    pub fn new(node: clusterer_core::Config) -> Self {
        Config {
            node,
            endpoint: EndpointOptions::default(),
            unix_time: 0,
        }
    }
}

/// Why [`new`] refused to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The node configuration was refused.
    Config(ConfigError),
    /// A URL uses `bins:` (BIN over TLS), which this runtime does not speak.
    Tls(SocketAddr),
    /// More distinct local BIN ports than [`MAX_LISTEN_PORTS`].
    TooManyPorts,
    /// The pool cannot hold the listeners and at least one connection.
    TooFewSockets {
        /// Sockets needed at least.
        needed: usize,
    },
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::Tls(addr) => write!(
                f,
                "{addr}: bins: (BIN over TLS) is not supported by the embassy runtime; use bin:"
            ),
            Error::TooManyPorts => {
                write!(f, "more than {MAX_LISTEN_PORTS} distinct local BIN ports")
            }
            Error::TooFewSockets { needed } => write!(
                f,
                "the socket pool is too small: at least {needed} sockets are needed"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// A socket's receive and send buffers.
struct SocketBuffers<const BUF: usize> {
    rx: [u8; BUF],
    tx: [u8; BUF],
}

/// A connection's send queue memory.
struct QueueMemory<const QUEUE: usize, const CONTROL: usize> {
    control: [u8; CONTROL],
    bulk: [u8; QUEUE],
}

/// All the memory the runtime uses besides the heap of the core: put it in a `static`
/// (e.g. a `StaticCell` or `ConstStaticCell`) and hand it to [`new`].
///
/// `SOCKETS` sockets of `BUF`-byte receive and send buffers, each with a `QUEUE`-byte bulk
/// queue and a `CONTROL`-byte control queue ([`CONTROL_QUEUE`]), and one `PACKET`-byte
/// buffer packets are encoded in (default `MAX_EMIT_LEN`, 65515: the largest BIN packet). A packet larger
/// than `PACKET` is dropped and counted (`RuntimeCounters::too_large`, and as unencodable
/// by the endpoint): with a smaller buffer, keep `sync_packet_size` and module payloads
/// below it. With the defaults about 230 KiB; the firmware for a three-node cluster uses
/// `Resources<6, 1024, 2048, 4096>` (about 56 KiB).
pub struct Resources<
    const SOCKETS: usize = 8,
    const BUF: usize = 4096,
    const QUEUE: usize = 16384,
    const PACKET: usize = MAX_EMIT_LEN,
    const CONTROL: usize = CONTROL_QUEUE,
> {
    sockets: [SocketBuffers<BUF>; SOCKETS],
    queues: [QueueMemory<QUEUE, CONTROL>; SOCKETS],
    packet: [u8; PACKET],
    shared: Option<Shared<SOCKETS>>,
}

impl<
    const SOCKETS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const PACKET: usize,
    const CONTROL: usize,
> Resources<SOCKETS, BUF, QUEUE, PACKET, CONTROL>
{
    /// Zeroed memory (a `const fn`, for a `static`).
    pub const fn new() -> Self {
        Resources {
            sockets: [const {
                SocketBuffers {
                    rx: [0; BUF],
                    tx: [0; BUF],
                }
            }; SOCKETS],
            queues: [const {
                QueueMemory {
                    control: [0; CONTROL],
                    bulk: [0; QUEUE],
                }
            }; SOCKETS],
            packet: [0; PACKET],
            shared: None,
        }
    }
}

impl<
    const SOCKETS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const PACKET: usize,
    const CONTROL: usize,
> Default for Resources<SOCKETS, BUF, QUEUE, PACKET, CONTROL>
{
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the node on `stack`: returns the [`Handle`] for the application and the
/// [`Runner`] to spawn (`runner.run().await` in a task of its own). `seed` feeds the
/// core's PRNG (tags, jitter): give each boot a different one.
///
/// # Errors
/// [`Error`]: the configuration is refused, uses `bins:`, has too many local ports, or the
/// pool is too small.
pub fn new<
    const SOCKETS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const PACKET: usize,
    const CONTROL: usize,
>(
    stack: Stack<'static>,
    config: Config,
    resources: &'static mut Resources<SOCKETS, BUF, QUEUE, PACKET, CONTROL>,
    seed: u64,
) -> Result<(Handle<SOCKETS>, Runner<SOCKETS>), Error> {
    let mut listen_ports: heapless::Vec<u16, MAX_LISTEN_PORTS> = heapless::Vec::new();
    for cluster in &config.node.clusters {
        let urls = core::iter::once(&cluster.local).chain(&cluster.nodes);
        for node in urls {
            if let Ok(a) = clusterer_core::NodeAddress::parse(&node.url)
                && a.scheme == Scheme::Bins
            {
                return Err(Error::Tls(a.socket));
            }
        }
        if let Ok(a) = clusterer_core::NodeAddress::parse(&cluster.local.url) {
            let port = a.socket.port();
            if !listen_ports.contains(&port) && listen_ports.push(port).is_err() {
                return Err(Error::TooManyPorts);
            }
        }
    }
    let needed = listen_ports.len() * LISTENERS_PER_PORT + 1;
    if SOCKETS < needed {
        return Err(Error::TooFewSockets { needed });
    }
    let clock = Clock::new(config.unix_time);
    let my_id = config.node.node_id;
    let endpoint =
        Endpoint::new(config.node, config.endpoint, clock.now(), seed).map_err(Error::Config)?;
    let Resources {
        sockets,
        queues,
        packet,
        shared,
    } = resources;
    let sockets = sockets
        .each_mut()
        .map(|b| TcpSocket::new(stack, &mut b.rx, &mut b.tx));
    let slots = queues.each_mut().map(|q| Slot {
        role: Role::Idle,
        connection: None,
        outgoing_to: None,
        queues: SendQueues::new(&mut q.control, &mut q.bulk),
    });
    let state = State::new(endpoint, clock, slots, packet, listen_ports);
    let shared: &'static Shared<SOCKETS> = shared.insert(Shared::new(state));
    log::info!("clusterer node {} starting", my_id.get());
    Ok((Handle { shared, my_id }, Runner { shared, sockets }))
}
