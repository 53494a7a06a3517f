//! The engine: one tokio task owns the [`Endpoint`] (no locks around protocol state), the
//! transport feeds it bytes, a timer wakes it at [`Endpoint::poll_timeout`], commands
//! arrive over a channel from cloneable [`Handle`]s, and events fan out to subscribers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId};
//! use clusterer_tokio::runtime::{Cluster, StartOptions};
//!
//! let me = NodeId::new(1).unwrap();
//! let mut config = Config::new(me, DbMode::Discovery);
//! config.clusters.push(ClusterConfig {
//!     id: ClusterId::new(1).unwrap(),
//!     local: NodeConfig::new(me, "bin:127.0.0.1:5566"),
//!     nodes: vec![NodeConfig::new(NodeId::new(2).unwrap(), "bin:127.0.0.2:5566")],
//! });
//! let (handle, task) = Cluster::start(StartOptions::new(config)).await?;
//! let mut events = handle.subscribe();
//! let event = events.recv().await?;
//! println!("{event:?}");
//! handle.shutdown().await;
//! task.await?;
//! # Ok(()) }
//! ```

mod handle;
mod transport;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use clusterer_core::capability::{Capability, CapabilityError, NodeMatch};
use clusterer_core::{ClusterId, Config, ConfigError, Event, Now};
use clusterer_proto::{Endpoint, EndpointOptions};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

pub use handle::{Handle, NodeSummary, Stopped};
pub use transport::{CONNECT_TIMEOUT, SEND_QUEUE_PACKETS, TransportCounters};
use transport::{NetInput, Transport};

/// Events buffered per subscriber before the slowest one starts losing the oldest.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;
/// Commands queued toward the engine.
const COMMAND_CHANNEL_CAPACITY: usize = 1024;
/// Network inputs queued toward the engine (backpressure on readers).
const NET_CHANNEL_CAPACITY: usize = 4096;

/// A capability to register before the engine's first tick.
pub struct CapabilityRegistration {
    /// Cluster.
    pub cluster: ClusterId,
    /// Capability name (BIN capability string).
    pub name: String,
    /// Request a sync at startup.
    pub startup_sync: bool,
    /// Which nodes may be donors.
    pub condition: NodeMatch,
    /// The data path.
    pub handler: Box<dyn Capability>,
}

impl fmt::Debug for CapabilityRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapabilityRegistration")
            .field("cluster", &self.cluster)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the engine needs to start.
#[derive(Debug)]
pub struct StartOptions {
    /// The node configuration.
    pub config: Config,
    /// Endpoint options (discovery allow-list).
    pub endpoint: EndpointOptions,
    /// Addresses to listen on; empty = the local URL of every cluster.
    pub listen: Vec<SocketAddr>,
    /// PRNG seed; `None` = from the OS clock.
    pub seed: Option<u64>,
    /// Capabilities registered before the first tick.
    pub capabilities: Vec<CapabilityRegistration>,
}

impl StartOptions {
    /// Options with defaults for `config`.
    pub fn new(config: Config) -> Self {
        StartOptions {
            config,
            endpoint: EndpointOptions::default(),
            listen: Vec::new(),
            seed: None,
            capabilities: Vec::new(),
        }
    }
}

/// Why the engine did not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration was refused.
    Config(ConfigError),
    /// A capability could not be registered.
    Capability(String, CapabilityError),
    /// A listener could not be bound.
    Listen(SocketAddr, std::io::Error),
    /// The configuration asks for something the runtime does not do.
    Unsupported(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Capability(name, e) => write!(f, "capability {name}: {e}"),
            StartError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for StartError {}

/// Starts engines.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Binds the listeners, builds the endpoint, registers the capabilities and spawns the
    /// engine task. Returns a cloneable [`Handle`] and the task (it ends after
    /// [`Handle::shutdown`]).
    ///
    /// # Errors
    /// [`StartError`] when the configuration is refused or a listener cannot be bound.
    pub async fn start(options: StartOptions) -> Result<(Handle, JoinHandle<()>), StartError> {
        let clock = Clock::new();
        let seed = options.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x5EED)
        });
        let mut bind_ips = HashMap::new();
        let mut listen = options.listen.clone();
        for c in &options.config.clusters {
            let urls = std::iter::once(&c.local).chain(&c.nodes);
            if let Some(n) = urls.into_iter().find(|n| {
                clusterer_core::NodeAddress::parse(&n.url)
                    .is_ok_and(|a| a.scheme == clusterer_core::Scheme::Bins)
            }) {
                return Err(StartError::Unsupported(format!(
                    "cluster {}, node {}: {} uses bins: (BIN over TLS), which this transport does not speak yet; use bin:",
                    c.id, n.id, n.url
                )));
            }
            if let Ok(addr) = clusterer_core::NodeAddress::parse(&c.local.url) {
                bind_ips.insert(c.id, addr.ip());
                if options.listen.is_empty() && !listen.contains(&addr.socket) {
                    listen.push(addr.socket);
                }
            }
        }
        let mut endpoint = Endpoint::new(options.config, options.endpoint, clock.now(), seed)
            .map_err(StartError::Config)?;
        for reg in options.capabilities {
            endpoint
                .register_capability(
                    clock.now(),
                    reg.cluster,
                    &reg.name,
                    reg.startup_sync,
                    reg.condition,
                    reg.handler,
                )
                .map_err(|e| StartError::Capability(reg.name.clone(), e))?;
        }
        let (net_tx, net_rx) = mpsc::channel(NET_CHANNEL_CAPACITY);
        let mut transport = Transport::new(net_tx);
        let mut bound = Vec::new();
        for addr in &listen {
            let local = transport
                .listen(*addr)
                .await
                .map_err(|e| StartError::Listen(*addr, e))?;
            bound.push(local);
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let my_id = endpoint.node().id();
        let handle = Handle::new(cmd_tx, events.clone(), my_id, bound);
        let engine = Engine {
            endpoint,
            transport,
            net_rx,
            cmd_rx,
            events,
            clock,
            bind_ips,
        };
        let task = tokio::spawn(engine.run());
        Ok((handle, task))
    }
}

/// The engine's clock: monotonic milliseconds since start (tokio time, so tests may pause
/// it) and the wall-clock UNIX time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Now {
        let mono = self.start.elapsed().as_millis() as u64;
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Now::new(mono, unix)
    }

    fn deadline(&self, at: clusterer_core::Instant) -> tokio::time::Instant {
        self.start + std::time::Duration::from_millis(at.as_millis())
    }
}

/// A command: a closure run on the engine task with the endpoint and the time.
pub(crate) enum Command {
    Call(Box<dyn FnOnce(&mut EngineState<'_>) + Send>),
    Shutdown,
}

/// What a command closure may touch.
pub struct EngineState<'a> {
    /// The endpoint (and through it the node).
    pub endpoint: &'a mut Endpoint,
    /// The current time.
    pub now: Now,
    /// Transport counters.
    pub transport: TransportCounters,
    /// Open TCP connections.
    pub connections: usize,
}

struct Engine {
    endpoint: Endpoint,
    transport: Transport,
    net_rx: mpsc::Receiver<NetInput>,
    cmd_rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    clock: Clock,
    bind_ips: HashMap<ClusterId, IpAddr>,
}

impl Engine {
    async fn run(mut self) {
        self.flush();
        loop {
            let deadline = self.clock.deadline(self.endpoint.poll_timeout());
            let sleep = tokio::time::sleep_until(deadline);
            tokio::select! {
                input = self.net_rx.recv() => {
                    let Some(input) = input else { break };
                    self.handle_net(input);
                }
                cmd = self.cmd_rx.recv() => {
                    match cmd {
                        Some(Command::Call(f)) => {
                            let now = self.clock.now();
                            self.transport.refresh_counters();
                            let mut state = EngineState {
                                endpoint: &mut self.endpoint,
                                now,
                                transport: self.transport.counters,
                                connections: self.transport.connection_count(),
                            };
                            f(&mut state);
                        }
                        Some(Command::Shutdown) | None => break,
                    }
                }
                () = sleep => {
                    self.endpoint.handle_timeout(self.clock.now());
                }
            }
            self.flush();
        }
        self.transport.shutdown();
    }

    fn handle_net(&mut self, input: NetInput) {
        let now = self.clock.now();
        match input {
            NetInput::Accepted(stream, peer) => {
                self.transport.accepted(stream, peer);
            }
            NetInput::Opened(id, peer) => self.endpoint.handle_connection_opened(id, peer),
            NetInput::Bytes(id, bytes) => {
                if let Err(e) = self.endpoint.handle_bytes(now, id, &bytes) {
                    tracing::warn!(connection = id.0, error = %e, "closing connection");
                    self.endpoint.handle_connection_closed(id);
                    self.transport.close(id);
                }
            }
            NetInput::Closed(id) => {
                self.endpoint.handle_connection_closed(id);
                self.transport.close(id);
            }
            NetInput::SendFailed(packet) => self.endpoint.handle_send_failed(now, packet),
        }
    }

    /// Sends every pending packet and publishes every pending event.
    fn flush(&mut self) {
        // Send failures may produce new transmits (re-routes, probe changes); bounded by
        // the queue sizes of the node.
        for _ in 0..64 {
            let mut progressed = false;
            while let Some(packet) = self.endpoint.poll_transmit() {
                progressed = true;
                let bind = self.bind_ips.get(&packet.info.cluster).copied();
                if let Err(packet) = self.transport.send(packet, bind) {
                    self.endpoint.handle_send_failed(self.clock.now(), packet);
                }
            }
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                // No subscriber is not an error.
                let _ = self.events.send(event);
            }
            if !progressed {
                return;
            }
        }
    }
}
