//! Configuration of a local node: the OpenSIPS module parameters of docs/behaviour.md §1.1 that
//! the core needs, and the provisioned clusters and nodes of §1.2.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::address::{AddressError, NodeAddress};
use crate::id::{ClusterId, NodeId};
use crate::link::LinkTimers;
use crate::message::{MAX_CLUSTERS, MAX_NODES};

/// Priority of a node provisioned without one (DB schema default).
pub const DEFAULT_PRIORITY: i32 = 50;
/// `no_ping_retries` of a node provisioned without one.
pub const DEFAULT_NO_PING_RETRIES: u32 = 3;

/// Where nodes come from (`db_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DbMode {
    /// `db_mode = 0`: nodes from `my_node_info`/`neighbor_node_info` plus dynamic discovery
    /// (UNKNOWN_ID, NODE_DESCRIPTION, FULL_TOP_UPDATE descriptions, REMOVE_NODE).
    Discovery,
    /// `db_mode = 1`: only provisioned nodes are accepted; REMOVE_NODE is ignored.
    Database,
}

/// The timer parameters, in the units of the OpenSIPS module parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timers {
    /// `ping_interval` (seconds): keep-alive period on UP links. Default 4.
    pub ping_interval_s: u32,
    /// `ping_timeout` (milliseconds): longest PONG delay, also the retry spacing. Default 1000.
    pub ping_timeout_ms: u32,
    /// `node_timeout` (seconds): OpenSIPS waits this long before re-probing a DOWN node;
    /// we re-probe after `min(ping_interval, node_timeout)` (see
    /// [`Timers::down_reprobe_ms`]). Default 60.
    pub node_timeout_s: u32,
    /// `seed_fallback_interval` (seconds). Default 5.
    pub seed_fallback_interval_s: u32,
    /// `sync_timeout` (seconds): longest silence between SYNC packets. Default 15.
    pub sync_timeout_s: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            ping_interval_s: 4,
            ping_timeout_ms: 1000,
            node_timeout_s: 60,
            seed_fallback_interval_s: 5,
            sync_timeout_s: 15,
        }
    }
}

impl Timers {
    /// `ping_interval` in milliseconds.
    pub fn ping_interval_ms(&self) -> u64 {
        u64::from(self.ping_interval_s) * 1000
    }

    /// `ping_timeout` in milliseconds.
    pub fn ping_timeout(&self) -> u64 {
        u64::from(self.ping_timeout_ms)
    }

    /// `node_timeout` in milliseconds.
    pub fn node_timeout_ms(&self) -> u64 {
        u64::from(self.node_timeout_s) * 1000
    }

    /// How long a DOWN link waits before it is probed again: `min(ping_interval,
    /// node_timeout)`. OpenSIPS waits the whole `node_timeout` (60 s by default), so a node
    /// that restarted knowing nobody (a seed without neighbours in db_mode 0) stayed
    /// invisible to the nodes that knew it for up to a minute — long enough to hold an
    /// election tag next to the node that took it over (README, "Where clusterer differs
    /// from OpenSIPS").
    /// A PING sent sooner is still a PING: OpenSIPS peers answer it as any other.
    pub fn down_reprobe_ms(&self) -> u64 {
        self.ping_interval_ms().min(self.node_timeout_ms())
    }

    /// In db_mode 0 a node that just started may be known to peers it does not know yet;
    /// each of them finds it at its next DOWN re-probe. This bound covers that re-probe
    /// ([`Timers::down_reprobe_ms`]), the discovery round that follows (UNKNOWN_ID,
    /// NODE_DESCRIPTION, a probe at the next tick on both sides) and one `ping_timeout` of
    /// round trips: `down_reprobe + ping_timeout + 2 ticks`. An election node takes no tag
    /// before it has passed since the start.
    pub fn discovery_bound_ms(&self) -> u64 {
        self.down_reprobe_ms() + self.ping_timeout() + 2 * self.heartbeat_ms()
    }

    /// Period of the heartbeat timer that evaluates the link rules: the greatest common
    /// divisor of ping_interval, ping_timeout and node_timeout (docs/behaviour.md §2), 1 s with
    /// the defaults.
    pub fn heartbeat_ms(&self) -> u64 {
        let g = gcd(self.ping_interval_ms(), self.ping_timeout());
        let g = if self.node_timeout_s == 0 {
            g
        } else {
            gcd(g, self.node_timeout_ms())
        };
        g.max(1)
    }
}

impl From<&Timers> for LinkTimers {
    fn from(t: &Timers) -> Self {
        LinkTimers {
            ping_interval: t.ping_interval_ms(),
            ping_timeout: t.ping_timeout(),
            node_timeout: t.node_timeout_ms(),
            down_reprobe: t.down_reprobe_ms(),
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One node as provisioned (DB row, `my_node_info` or `neighbor_node_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Node id (global across clusters).
    pub id: NodeId,
    /// The DB row id (`db_id` in MI, −1 when not from the DB).
    pub db_id: Option<i64>,
    /// BIN URL, `bin:IP[:port]` or `bins:IP[:port]`.
    pub url: String,
    /// SIP address, may be empty.
    pub sip_addr: String,
    /// Next-hop tie-breaker, lower preferred.
    pub priority: i32,
    /// Ping retries the local prober allows this node.
    pub no_ping_retries: u32,
    /// Administrative state (`state` column).
    pub enabled: bool,
    /// `seed` flag; only meaningful for the local node.
    pub seed: bool,
    /// Free text from the DB, never exchanged.
    pub description: Option<String>,
}

impl NodeConfig {
    /// A node with the given id and URL and the defaults of the `clusterer` table.
    pub fn new(id: NodeId, url: impl Into<String>) -> Self {
        NodeConfig {
            id,
            db_id: None,
            url: url.into(),
            sip_addr: String::new(),
            priority: DEFAULT_PRIORITY,
            no_ping_retries: DEFAULT_NO_PING_RETRIES,
            enabled: true,
            seed: false,
            description: None,
        }
    }
}

/// One cluster the local node is a member of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Cluster id.
    pub id: ClusterId,
    /// The local node's record in this cluster (its id must be [`Config::node_id`]).
    pub local: NodeConfig,
    /// The other nodes, in provisioning order (the node list is their reverse, as OpenSIPS
    /// builds it by prepending).
    pub nodes: Vec<NodeConfig>,
}

/// Configuration of a local node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `my_node_id`.
    pub node_id: NodeId,
    /// `db_mode`.
    pub db_mode: DbMode,
    /// Timer parameters.
    pub timers: Timers,
    /// `enable_rerouting`: when `false`, only direct UP links carry routed traffic and
    /// relaying is refused (the documented intent, docs/behaviour.md §5.4, quirk #1 fixed).
    pub enable_rerouting: bool,
    /// `sync_packet_size`: soft size of SYNC packets. Default 32768.
    pub sync_packet_size: usize,
    /// Clusters, at most [`MAX_CLUSTERS`].
    pub clusters: Vec<ClusterConfig>,
    /// `sharing_tag` parameters.
    pub sharing_tags: Vec<ShtagConfig>,
    /// Sync improvements (all on by default).
    pub sync: SyncOptions,
    /// Test-only switches that deliberately break an invariant (all off by default). Never
    /// set them outside tests; see [`FaultInjection`].
    #[doc(hidden)]
    pub fault_injection: FaultInjection,
}

/// **Test-only.** Switches that deliberately break a documented invariant, so the
/// simulation campaign can show that it catches the breakage with a replayable seed. A
/// plain configuration field rather than a cargo feature: features unify across the
/// workspace, so a test-only feature would reach every build. Every switch is off by
/// default and no runtime sets one.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FaultInjection {
    /// On receiving SHTAG_ACTIVE, an active tag stays active instead of stepping down
    /// (breaks docs/behaviour.md §10.3 and the election-mode guarantee).
    pub skip_shtag_demotion: bool,
}

impl Config {
    /// A configuration for node `node_id` with the OpenSIPS defaults and no cluster.
    pub fn new(node_id: NodeId, db_mode: DbMode) -> Self {
        Config {
            node_id,
            db_mode,
            timers: Timers::default(),
            enable_rerouting: true,
            sync_packet_size: 32768,
            clusters: Vec::new(),
            sharing_tags: Vec::new(),
            sync: SyncOptions::default(),
            fault_injection: FaultInjection::default(),
        }
    }

    /// Checks every limit and value the core relies on.
    ///
    /// # Errors
    /// The first problem found, naming the cluster, node and value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.timers;
        for (name, value) in [
            ("ping_interval", u64::from(t.ping_interval_s)),
            ("ping_timeout", u64::from(t.ping_timeout_ms)),
            ("sync_timeout", u64::from(t.sync_timeout_s)),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroTimer { name });
            }
        }
        if self.clusters.len() > MAX_CLUSTERS {
            return Err(ConfigError::TooManyClusters {
                count: self.clusters.len(),
            });
        }
        for (i, c) in self.clusters.iter().enumerate() {
            if self.clusters[..i].iter().any(|o| o.id == c.id) {
                return Err(ConfigError::DuplicateCluster { cluster: c.id });
            }
            if c.local.id != self.node_id {
                return Err(ConfigError::LocalIdMismatch {
                    cluster: c.id,
                    found: c.local.id,
                });
            }
            if c.nodes.len() > MAX_NODES {
                return Err(ConfigError::TooManyNodes {
                    cluster: c.id,
                    count: c.nodes.len(),
                });
            }
            NodeAddress::parse(&c.local.url).map_err(|reason| ConfigError::BadUrl {
                cluster: c.id,
                node: c.local.id,
                reason,
            })?;
            for (j, n) in c.nodes.iter().enumerate() {
                if n.id == self.node_id {
                    return Err(ConfigError::LocalNodeListed { cluster: c.id });
                }
                if c.nodes[..j].iter().any(|o| o.id == n.id) {
                    return Err(ConfigError::DuplicateNode {
                        cluster: c.id,
                        node: n.id,
                    });
                }
                NodeAddress::parse(&n.url).map_err(|reason| ConfigError::BadUrl {
                    cluster: c.id,
                    node: n.id,
                    reason,
                })?;
            }
        }
        for (i, t) in self.sharing_tags.iter().enumerate() {
            if t.name.is_empty() {
                return Err(ConfigError::EmptyShtagName { cluster: t.cluster });
            }
            if !self.clusters.iter().any(|c| c.id == t.cluster) {
                return Err(ConfigError::ShtagUnknownCluster {
                    name: t.name.clone(),
                    cluster: t.cluster,
                });
            }
            if self.sharing_tags[..i]
                .iter()
                .any(|o| o.name == t.name && o.cluster == t.cluster)
            {
                return Err(ConfigError::DuplicateShtag {
                    name: t.name.clone(),
                    cluster: t.cluster,
                });
            }
        }
        Ok(())
    }
}

/// A configuration the core refuses; nothing was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A timer that must be positive is 0.
    ZeroTimer {
        /// The parameter.
        name: &'static str,
    },
    /// More than [`MAX_CLUSTERS`] clusters.
    TooManyClusters {
        /// How many were given.
        count: usize,
    },
    /// The same cluster id twice.
    DuplicateCluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// A cluster's local record has another id than `my_node_id`.
    LocalIdMismatch {
        /// The cluster.
        cluster: ClusterId,
        /// The id found.
        found: NodeId,
    },
    /// The local node also appears among the other nodes.
    LocalNodeListed {
        /// The cluster.
        cluster: ClusterId,
    },
    /// More than [`MAX_NODES`] other nodes in a cluster.
    TooManyNodes {
        /// The cluster.
        cluster: ClusterId,
        /// How many were given.
        count: usize,
    },
    /// The same node id twice in one cluster.
    DuplicateNode {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
    },
    /// A sharing tag names a cluster that is not configured.
    ShtagUnknownCluster {
        /// Tag name.
        name: String,
        /// The cluster.
        cluster: ClusterId,
    },
    /// The same sharing tag twice.
    DuplicateShtag {
        /// Tag name.
        name: String,
        /// The cluster.
        cluster: ClusterId,
    },
    /// A sharing tag with an empty name.
    EmptyShtagName {
        /// The cluster.
        cluster: ClusterId,
    },
    /// A node URL does not parse.
    BadUrl {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// What is wrong.
        reason: AddressError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroTimer { name } => write!(f, "{name} must be greater than 0"),
            ConfigError::TooManyClusters { count } => {
                write!(
                    f,
                    "{count} clusters configured, at most {MAX_CLUSTERS} are allowed"
                )
            }
            ConfigError::DuplicateCluster { cluster } => {
                write!(f, "cluster {cluster} is configured twice")
            }
            ConfigError::LocalIdMismatch { cluster, found } => {
                write!(
                    f,
                    "cluster {cluster}: local node record has id {found}, not my_node_id"
                )
            }
            ConfigError::LocalNodeListed { cluster } => {
                write!(
                    f,
                    "cluster {cluster}: the local node is also listed as a neighbour"
                )
            }
            ConfigError::TooManyNodes { cluster, count } => write!(
                f,
                "cluster {cluster}: {count} other nodes, at most {MAX_NODES} are allowed"
            ),
            ConfigError::DuplicateNode { cluster, node } => {
                write!(f, "cluster {cluster}: node {node} is provisioned twice")
            }
            ConfigError::ShtagUnknownCluster { name, cluster } => {
                write!(
                    f,
                    "sharing tag {name}/{cluster}: cluster {cluster} is not configured"
                )
            }
            ConfigError::DuplicateShtag { name, cluster } => {
                write!(f, "sharing tag {name}/{cluster} is configured twice")
            }
            ConfigError::EmptyShtagName { cluster } => {
                write!(f, "a sharing tag of cluster {cluster} has an empty name")
            }
            ConfigError::BadUrl {
                cluster,
                node,
                reason,
            } => {
                write!(f, "cluster {cluster}, node {node}: bad url: {reason}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

// ---- sharing tags (state machine in `shtag`) ----

/// Hold-down of election mode when not configured: long enough for the current active to
/// announce itself to a node that just came up.
pub const DEFAULT_HOLD_DOWN_MS: u64 = 3000;

/// State of a sharing tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShtagState {
    /// 0.
    Backup,
    /// 1.
    Active,
}

impl ShtagState {
    /// `active` or `backup`.
    pub fn name(self) -> &'static str {
        match self {
            ShtagState::Backup => "backup",
            ShtagState::Active => "active",
        }
    }
}

/// Election settings of a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ElectionConfig {
    /// Wait before a backup takes over a tag no reachable node holds (and, with
    /// `preempt`, a tag a worse-ranked node holds).
    pub hold_down_ms: u64,
    /// `,preempt`: a backup that ranks best among the reachable eligible nodes takes the
    /// tag from a worse-ranked active after the hold-down (the active steps down when it
    /// receives the announcement), so the tag returns to the preferred node when that one
    /// comes back. Off by default: the tag then stays where it is until its owner is gone.
    pub preempt: bool,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            hold_down_ms: DEFAULT_HOLD_DOWN_MS,
            preempt: false,
        }
    }
}

/// One `sharing_tag` parameter: `name/cluster=active|backup[,election]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShtagConfig {
    /// Tag name.
    pub name: String,
    /// Cluster.
    pub cluster: ClusterId,
    /// Initial state (`active` also sets announce-pending).
    pub state: ShtagState,
    /// Election mode, when opted in.
    pub election: Option<ElectionConfig>,
}

// ---- sync (state machine in `sync`) ----

/// Switches for the sync improvements (all on by default; off means OpenSIPS behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SyncOptions {
    /// Choose the reachable, synced, matching donor with the fewest hops, then the lowest
    /// (priority, id); off = the first such node in list order.
    pub best_donor: bool,
    /// Give up on a donor that sends nothing within `sync_timeout` of the SYNC_REQ and ask
    /// the next one (quirk #10).
    pub first_packet_timeout: bool,
    /// After a sync times out or its donor becomes unreachable, request it again from
    /// another donor (OpenSIPS leaves the capability not synced).
    pub retry: bool,
    /// Accept SYNC/SYNC_END only from the donor we asked (quirk #12).
    pub ignore_unsolicited: bool,
    /// Skip and count chunks the capability rejects, so the sync still completes; off =
    /// abandon the rest of that packet like OpenSIPS (the sync then ends by timeout).
    pub skip_rejected_chunks: bool,
    /// Hold back live packets from the SYNC_REQ on (OpenSIPS: from the first SYNC packet),
    /// so an update that races the sync data is not overwritten by older data.
    pub buffer_from_request: bool,
    /// Most live packets held back during one sync; past it the sync is abandoned (and
    /// retried), the held packets applied.
    pub max_buffered_packets: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            best_donor: true,
            first_packet_timeout: true,
            retry: true,
            ignore_unsolicited: true,
            skip_rejected_chunks: true,
            buffer_from_request: true,
            max_buffered_packets: 1 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_the_gcd_of_the_timers() {
        assert_eq!(Timers::default().heartbeat_ms(), 1000);
        let fast = Timers {
            ping_interval_s: 1,
            ping_timeout_ms: 500,
            ..Timers::default()
        };
        assert_eq!(fast.heartbeat_ms(), 500);
        let odd = Timers {
            ping_timeout_ms: 300,
            ..Timers::default()
        };
        assert_eq!(odd.heartbeat_ms(), 100);
    }

    #[test]
    fn validation_names_the_bad_value() {
        let me = NodeId::new(1).unwrap();
        let c1 = ClusterId::new(1).unwrap();
        let mut cfg = Config::new(me, DbMode::Discovery);
        cfg.clusters.push(ClusterConfig {
            id: c1,
            local: NodeConfig::new(me, "bin:127.0.0.1:5566"),
            nodes: alloc::vec![NodeConfig::new(NodeId::new(2).unwrap(), "bin:localhost")],
        });
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            alloc::string::ToString::to_string(&err),
            "cluster 1, node 2: bad url: host must be an IPv4 address or a bracketed IPv6 address"
        );
        cfg.clusters[0].nodes[0].url = "bin:127.0.0.2".into();
        assert_eq!(cfg.validate(), Ok(()));
        cfg.timers.ping_timeout_ms = 0;
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::ZeroTimer {
                name: "ping_timeout"
            })
        );
    }
}
