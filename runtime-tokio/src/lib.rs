//! # clusterer-tokio
//!
//! The std runtime of clusterer: the daemon library behind the `clusterer` binary.
//!
//! The operator tools of the binary (`clusterer decode`, `clusterer demo`, `clusterer db …`,
//! `clusterer mi …`) live in the binary's own module tree (`src/bin/clusterer/`) and use
//! this library like any other user.
//!
//! Modules:
//! * [`cachedb`]: the shipped `cachedb-local-repl` capability, a replicated key/value cache.
//! * [`config`]: the daemon configuration (TOML with the OpenSIPS module parameters) and
//!   `clusterer check-config`.
//! * [`db`]: `db_mode = 1` provisioning from the OpenSIPS `clusterer` table (SQLite,
//!   PostgreSQL, MySQL/MariaDB), the operations behind `clusterer db`.
//! * [`daemon`]: `clusterer run`, the daemon wiring everything together.
//! * [`events`]: OpenSIPS event names, hooks and the JSON-lines event log.
//! * [`metrics`]: Prometheus text exposition.
//! * [`mi`]: the OpenSIPS-compatible management interface (JSON-RPC over HTTP, remote MI).
//! * [`runtime`]: the engine task, TCP transport and the cloneable [`runtime::Handle`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cachedb;
pub mod config;
pub mod daemon;
pub mod db;
pub mod events;
pub mod metrics;
pub mod mi;
pub mod runtime;
