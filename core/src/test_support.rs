//! Fixtures shared by the whole-node tests of the core (`node_tests`, `capability_tests`):
//! ids, URLs, time, and the configuration of a node with its peers in cluster 1.

use alloc::string::String;

use crate::config::{ClusterConfig, Config, DbMode, NodeConfig};
use crate::id::{ClusterId, NodeId};
use crate::time::Now;

/// Cluster 1.
pub(crate) const C1: ClusterId = match ClusterId::new(1) {
    Some(c) => c,
    None => panic!(),
};

/// Node id `i` (non-zero).
pub(crate) fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

/// Node `i`'s BIN URL on 127.0.x.y (distinct for every id up to 65535).
pub(crate) fn url(i: u32) -> String {
    alloc::format!("bin:127.0.{}.{}:5566", i / 256, i % 256)
}

/// `ms` milliseconds after the start, with a UNIX time that moves with it.
pub(crate) fn at(ms: u64) -> Now {
    Now::new(ms, 1_800_000_000 + (ms / 1000) as i64)
}

/// The configuration of node `me` knowing `peers` in cluster 1.
pub(crate) fn config(me: u32, peers: &[u32], db_mode: DbMode) -> Config {
    let mut cfg = Config::new(n(me), db_mode);
    cfg.clusters.push(ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(me), url(me)),
        nodes: peers
            .iter()
            .map(|&p| NodeConfig::new(n(p), url(p)))
            .collect(),
    });
    cfg
}
