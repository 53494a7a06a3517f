//! # clusterer-tokio
//!
//! The std runtime of clusterer and the home of the `clusterer` binary.
//!
//! Modules:
//! * [`cachedb`]: the shipped `cachedb-local-repl` capability, a replicated key/value cache.
//! * [`config`]: the daemon configuration (TOML with the OpenSIPS module parameters) and
//!   `clusterer check-config`.
//! * [`db`]: `db_mode = 1` provisioning from the OpenSIPS `clusterer` table (SQLite,
//!   PostgreSQL, MySQL/MariaDB) and `clusterer db`.
//! * [`daemon`]: `clusterer run`, the daemon wiring everything together.
//! * [`demo`]: `clusterer demo`, a live 3-node cluster to play with.
//! * [`decode`]: `clusterer decode`, the packet dissector for captured BIN traffic.
//! * [`events`]: OpenSIPS event names, hooks and the JSON-lines event log.
//! * [`metrics`]: Prometheus text exposition.
//! * [`mi`]: the OpenSIPS-compatible management interface (JSON-RPC over HTTP, remote MI,
//!   `clusterer mi`).
//! * [`runtime`]: the engine task, TCP transport and the cloneable [`runtime::Handle`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cachedb;
pub mod config;
pub mod daemon;
pub mod db;
pub mod decode;
pub mod demo;
pub mod events;
pub mod metrics;
pub mod mi;
pub mod runtime;
