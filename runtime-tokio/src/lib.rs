//! # clusterer-tokio
//!
//! The std runtime of clusterer and the home of the `clusterer` binary.
//!
//! Modules:
//! * [`decode`]: `clusterer decode`, the packet dissector for captured BIN traffic.
//! * [`runtime`]: the engine task, TCP transport and the cloneable [`runtime::Handle`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod decode;
pub mod runtime;
