//! # clusterer-core
//!
//! The pure state machines of clusterer, a cluster engine that speaks the OpenSIPS 3.6
//! `clusterer` protocol. This crate holds no bytes, no clock and no IO: every input carries
//! the time it happened ([`Now`]), randomness comes from a seed, and the same inputs always
//! produce the same outputs.
//!
//! One module per state machine, named as in `spec/behaviour.md`:
//!
//! | module | spec | what |
//! |---|---|---|
//! | [`link`] | §3 | per-neighbour probing FSM, timer rules 0–5 |
//! | [`topology`](crate::node) | §4 | LS_UPDATE / FULL_TOP_UPDATE, flooding |
//! | [`route`] | §5 | breadth-first next hop, (priority, id) tie-break |
//! | [`discovery`] | §8 | UNKNOWN_ID, NODE_DESCRIPTION, REMOVE_NODE |
//! | [`admin`] | §7 | enable/disable local and remote nodes |
//! | [`report`] | §13 | status/report rings |
//! | [`send`] | §5.5 | routed sends with the OpenSIPS return codes |
//!
//! [`message`] holds the typed protocol messages; `clusterer-proto` maps them to and from
//! the exact BIN bytes and drives a [`Node`] from sockets.
//!
//! ## The driving loop
//!
//! ```
//! use clusterer_core::{Config, DbMode, Node, Now, NodeId};
//! let config = Config::new(NodeId::new(1).unwrap(), DbMode::Discovery);
//! let mut node = Node::new(config, Now::new(0, 1_700_000_000), 42)?;
//! // After every handle_* call or command: drain, then sleep until poll_timeout.
//! node.handle_timeout(Now::new(1000, 1_700_000_001));
//! while let Some(transmit) = node.poll_transmit() { /* encode and send */ let _ = transmit; }
//! while let Some(event) = node.poll_event() { /* deliver */ let _ = event; }
//! let next = node.poll_timeout();
//! assert!(next.is_some());
//! # Ok::<(), clusterer_core::ConfigError>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod address;
pub mod admin;
pub mod capability;
#[cfg(test)]
mod capability_tests;
pub mod cluster;
pub mod config;
mod coordinator;
pub mod discovery;
pub mod id;
pub mod link;
pub mod message;
pub mod node;
#[cfg(test)]
mod node_tests;
pub mod output;
pub mod report;
mod rng;
pub mod route;
pub mod send;
pub mod shtag;
pub mod stamp;
pub mod sync;
pub mod time;
mod topology;

pub use address::{NodeAddress, Scheme};
pub use admin::SetStatusError;
pub use capability::{
    Capability, CapabilityError, CapabilityEvent, NodeMatch, Rejected, SyncStatus,
};
pub use cluster::{Cluster, LocalNode, RemoteNode};
#[doc(hidden)]
pub use config::FaultInjection;
pub use config::{ClusterConfig, Config, ConfigError, DbMode, NodeConfig, Timers};
pub use config::{ElectionConfig, ShtagConfig, ShtagState, SyncOptions};
pub use discovery::RemoveNodeError;
pub use id::{ClusterId, InvalidId, NodeId};
pub use link::LinkState;
pub use node::{Node, Stats};
pub use output::{ConnectionId, DropReason, Event, Transmit, TransmitTo};
pub use send::{AddrKind, SendStatus};
pub use shtag::{ShtagError, ShtagReason};
pub use stamp::{Freshness, SeqStamp};
pub use sync::RequestSync;
pub use time::{Instant, Now};
