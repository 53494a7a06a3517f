//! The node harness: one simulated process around a [`clusterer_proto::Endpoint`], and the
//! helpers that build the configurations scenarios use.
//!
//! Node `i` listens on `10.0.x.y:5566` with `x.y` = `i` in base 256 (so `10.0.0.i` for
//! `i < 256`), unless its configuration gives other URLs: the simulator listens on every
//! local URL of the configuration and opens outgoing connections from the first one's IP.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId, NodeMatch};
use clusterer_proto::{Endpoint, EndpointOptions, OutgoingPacket};

use crate::sim::clock::NodeClock;
use crate::sim::kv::SharedKvState;
use crate::sim::net::Direction;

/// The cluster every helper configuration uses.
pub const CLUSTER: ClusterId = match ClusterId::new(1) {
    Some(c) => c,
    None => ClusterId::MIN,
};

/// The port nodes listen on.
pub const PORT: u16 = 5566;

/// First ephemeral port of outgoing connections.
const FIRST_EPHEMERAL_PORT: u16 = 32768;

/// Node id `i`.
///
/// # Panics
/// When `i` is 0 (a test bug; node ids start at 1).
#[allow(clippy::expect_used)] // Invariant: helpers are called with ids ≥ 1 by tests.
pub fn nid(i: u32) -> NodeId {
    NodeId::new(i).expect("node ids start at 1")
}

/// The IP address of node `i`: `10.0.x.y` with `x.y` = `i` in base 256.
pub fn node_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, ((i >> 8) & 0xff) as u8, (i & 0xff) as u8)
}

/// The BIN URL of node `i`: `bin:10.0.0.i:5566`.
pub fn node_url(i: u32) -> String {
    format!("bin:{}:{PORT}", node_ip(i))
}

/// A configuration of node `me` in [`CLUSTER`] knowing `peers`, with the OpenSIPS default
/// timers and URLs from [`node_url`].
pub fn node_config(me: u32, peers: &[u32], db_mode: DbMode) -> Config {
    let mut config = Config::new(nid(me), db_mode);
    config.clusters.push(ClusterConfig {
        id: CLUSTER,
        local: NodeConfig::new(nid(me), node_url(me)),
        nodes: peers
            .iter()
            .map(|&p| NodeConfig::new(nid(p), node_url(p)))
            .collect(),
    });
    config
}

/// Configurations of nodes `1..=n` that each know every other node.
pub fn full_mesh(n: u32, db_mode: DbMode) -> Vec<Config> {
    (1..=n)
        .map(|me| {
            let peers: Vec<u32> = (1..=n).filter(|&p| p != me).collect();
            node_config(me, &peers, db_mode)
        })
        .collect()
}

/// How a node registers the simulator's key/value capability ([`crate::sim::kv`]) at every
/// start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvSpec {
    /// Cluster to register it in.
    pub cluster: ClusterId,
    /// Ask for a sync at startup (otherwise it starts synced and empty).
    pub startup_sync: bool,
    /// Sync condition.
    pub condition: NodeMatch,
}

impl KvSpec {
    /// In [`CLUSTER`], sync condition ANY.
    pub fn new(startup_sync: bool) -> Self {
        KvSpec {
            cluster: CLUSTER,
            startup_sync,
            condition: NodeMatch::Any,
        }
    }
}

/// Lifecycle of a simulated process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Added with a later start time; connections to it are refused.
    NotStarted,
    /// Processing inputs and timers.
    Running,
    /// Stopped like SIGSTOP: processes nothing; data sent to it waits; connects are neither
    /// refused nor answered until it resumes.
    Paused,
    /// The process is gone: its endpoint was dropped and connections to it are refused.
    Crashed,
}

/// A scheduled simulator action.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Start a node added with a start time.
    Start { node: usize },
    /// Deliver what is due on one direction of a connection.
    Deliver { conn: usize, direction: Direction },
    /// Tell a node its send failed (connect refused, write on a closed connection).
    SendFailed {
        node: usize,
        incarnation: u32,
        packet: OutgoingPacket,
    },
}

/// One simulated process.
#[derive(Debug)]
pub(crate) struct SimNode {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) options: EndpointOptions,
    /// Source IP of its outgoing connections.
    pub(crate) ip: IpAddr,
    /// Addresses it listens on.
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) status: NodeStatus,
    pub(crate) endpoint: Option<Endpoint>,
    /// Increases on every (re)start; stale actions of a previous life are dropped.
    pub(crate) incarnation: u32,
    pub(crate) clock: NodeClock,
    next_port: u16,
    /// Its own outgoing connection per destination address.
    pub(crate) outgoing: BTreeMap<SocketAddr, usize>,
    /// Actions that arrived while it was paused, replayed in order on resume.
    pub(crate) deferred: Vec<Action>,
    /// The key/value capability it registers at every start.
    pub(crate) kv: Option<KvSpec>,
    /// The current incarnation's key/value state.
    pub(crate) kv_state: Option<SharedKvState>,
    /// Highest UNIX time (s) its clock showed while running, over all incarnations.
    pub(crate) max_unix_shown: i64,
    /// UNIX time (s) of its current incarnation's start.
    pub(crate) started_unix: i64,
}

impl SimNode {
    pub(crate) fn new(
        id: NodeId,
        config: Config,
        options: EndpointOptions,
        listen: Vec<SocketAddr>,
        clock: NodeClock,
    ) -> Self {
        let ip = listen
            .first()
            .map_or(IpAddr::V4(node_ip(id.get())), SocketAddr::ip);
        SimNode {
            id,
            config,
            options,
            ip,
            listen,
            status: NodeStatus::NotStarted,
            endpoint: None,
            incarnation: 0,
            clock,
            next_port: FIRST_EPHEMERAL_PORT,
            outgoing: BTreeMap::new(),
            deferred: Vec::new(),
            kv: None,
            kv_state: None,
            max_unix_shown: i64::MIN,
            started_unix: i64::MIN,
        }
    }

    /// A fresh ephemeral source address for an outgoing connection.
    pub(crate) fn ephemeral_addr(&mut self) -> SocketAddr {
        let port = self.next_port;
        self.next_port = if port >= 60999 {
            FIRST_EPHEMERAL_PORT
        } else {
            port + 1
        };
        SocketAddr::new(self.ip, port)
    }

    /// Whether connections to it are accepted (running or paused).
    pub(crate) fn accepts(&self) -> bool {
        matches!(self.status, NodeStatus::Running | NodeStatus::Paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_node_id() {
        assert_eq!(node_url(7), "bin:10.0.0.7:5566");
        assert_eq!(node_ip(300), Ipv4Addr::new(10, 0, 1, 44));
        let mesh = full_mesh(3, DbMode::Database);
        assert_eq!(mesh.len(), 3);
        assert_eq!(mesh[1].clusters[0].nodes.len(), 2);
        assert!(mesh.iter().all(|c| c.validate().is_ok()));
    }
}
