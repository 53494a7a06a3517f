//! # clusterer-proto
//!
//! The sans-IO wire layer of clusterer: the byte-exact BIN codec of the OpenSIPS 3.6
//! clusterer protocol ([`wire`]), the bounded stream [`Deframer`] that cuts a TCP byte
//! stream into packets, and the [`Endpoint`] that drives a `clusterer_core::Node` from
//! connections and bytes. The one driving loop every runtime uses is shown in [`endpoint`].
//!
//! Nothing here reads a clock, a socket or OS randomness; runtimes feed bytes in and take
//! bytes out.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod deframer;
pub mod endpoint;
pub mod wire;

pub use deframer::{DEFRAMER_CAPACITY, Deframer};
pub use endpoint::{
    BufferTooSmall, Destination, Endpoint, EndpointOptions, Lane, OutgoingPacket, PacketInfo,
    PacketKind,
};
