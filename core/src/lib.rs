//! # clusterer-core
//!
//! The pure state machines of clusterer, a cluster engine that speaks the OpenSIPS 3.6
//! `clusterer` protocol. This crate holds no bytes, no clock and no IO: every input carries
//! the time it happened ([`Now`]), randomness comes from a seed, and the same inputs always
//! produce the same outputs.
//!
//! ## Modules and state machines
//!
//! Each state machine is a type that owns its state and reacts to plain inputs; it never
//! calls another machine and never builds a packet. The sections are those of
//! `docs/behaviour.md` in the repository (`docs/architecture.md` draws the whole map).
//!
//! | module | machine | docs | inputs → outputs |
//! |---|---|---|---|
//! | [`link`] | [`link::Link`] | §3 | tick, PONG, send failure → PING to send, state transition |
//! | [`topology`] | [`topology::Topology`] | §4, §5 | LS_UPDATE, FULL_TOP_UPDATE, local link up/down → [`topology::LsEffect`], nodes to probe, routes |
//! | [`route`] | [`route::RouteTable`] | §5.3 | adjacency lists → next hop per node ((priority, id) tie-break) |
//! | [`capability`] | [`capability::Adverts`] | §9.3 | CAP_UPDATE → [`capability::CapEffect`], the updates to send |
//! | [`sync`] | [`capability::LocalCapability`] through [`sync::SyncPort`] | §9.5–§9.8 | request, SYNC/SYNC_END, live packets, 500 ms check, donor loss → routed sends, advert changes |
//! | [`shtag`] | [`shtag::SharingTags`] through [`shtag::ShtagPort`] | §10 | SHTAG_ACTIVE, node events, set_active, timers → announcements, state changes |
//! | [`stamp`] | [`stamp::SeqStamp`] | §4.1 | received (seq, timestamp) → [`stamp::Freshness`] |
//!
//! Around them:
//!
//! | module | what |
//! |---|---|
//! | [`cluster`] | one cluster: the node table and its machines |
//! | `coordinator` | the ports of the machines over a cluster, and the procedures that turn their effects into transmits and events: flooding, link-up/down, node-event fan-out, CAP_UPDATE and sync dispatch |
//! | [`node`] | [`Node`], the `handle_*` / `poll_*` surface; the link rules at each tick |
//! | [`discovery`] | §8: UNKNOWN_ID, NODE_DESCRIPTION, REMOVE_NODE (db_mode 0) |
//! | [`admin`] | §7: enabling and disabling nodes, `reload` |
//! | [`send`] | §5.5: routed sends with the OpenSIPS return codes |
//! | [`config`], [`message`], [`output`], [`report`], [`address`], [`id`], [`time`] | leaves: settings, typed messages, transmits/events/drop reasons, report rings, URLs, ids, time |
//!
//! Reading order: [`node`] → `coordinator` → the machine. [`message`] holds the typed
//! protocol messages; `clusterer-proto` maps them to and from the exact BIN bytes and
//! drives a [`Node`] from sockets.
//!
//! ## The driving loop
//!
//! ```
//! use clusterer_core::{Config, DbMode, Instant, Node, Now, NodeId};
//! let config = Config::new(NodeId::new(1).unwrap(), DbMode::Discovery);
//! let mut node = Node::new(config, Now::new(0, 1_700_000_000), 42)?;
//! // After every handle_* call or command: drain, then sleep until poll_timeout.
//! node.handle_timeout(Now::new(1000, 1_700_000_001));
//! while let Some(transmit) = node.poll_transmit() { /* encode and send */ let _ = transmit; }
//! while let Some(event) = node.poll_event() { /* deliver */ let _ = event; }
//! let next = node.poll_timeout();
//! assert!(next > Instant::from_millis(1000));
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
mod commands;
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
#[cfg(test)]
mod test_support;
pub mod time;
pub mod topology;

pub use address::{NodeAddress, Scheme};
pub use admin::SetStatusError;
pub use capability::{
    Capability, CapabilityError, CapabilityEvent, NodeMatch, Rejected, SyncStatus,
};
pub use cluster::{Cluster, LocalNode, NodeRecord, RemoteNode};
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
