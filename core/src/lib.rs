//! # clusterer-core
//!
//! The pure state machines of clusterer, a cluster engine that speaks the OpenSIPS 3.6
//! `clusterer` protocol. This crate holds no bytes, no clock and no IO: every input carries
//! the time it happened, randomness comes from a seed, and the same inputs always produce the
//! same outputs.
//!
//! This crate currently provides the typed protocol messages ([`message`]) and the
//! identifiers ([`NodeId`], [`ClusterId`]) every other layer shares; `clusterer-proto` maps
//! them to and from the exact BIN bytes.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod id;
pub mod message;

pub use id::{ClusterId, InvalidId, NodeId};
