//! # clusterer-tests
//!
//! Cross-crate test support for clusterer:
//!
//! - [`sim`]: the deterministic simulator (N [`clusterer_proto::Endpoint`]s on a virtual
//!   clock, a seeded network model with partitions, resets, crashes, restarts and pauses, and
//!   a byte-identical trace per seed), its key/value capability ([`sim::kv`]) and the
//!   invariants checked against a model of the network ([`sim::model`], [`sim::checks`]).
//!   Scenarios live in `tests/sim_*.rs`.
//! - [`sim::campaign`]: the randomized simulation campaign (faults, safety after every
//!   step, liveness after the heal, replay by seed), driven by
//!   `cargo run --release -p clusterer-tests --bin sim -- --seeds 10000` and `.ci/sim`.
//!
//! Benchmarks: `benches/routing.rs` (next hop on a 128-node cluster) and
//! `benches/sim_speed.rs`; `cargo run --release -p clusterer-tests --bin simspeed` prints the
//! simulator's speed in simulated seconds per wall second, `--bin syncspeed` the sync
//! throughput in records per wall second.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod sim;
