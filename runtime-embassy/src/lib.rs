//! # clusterer-embassy
//!
//! The embassy-net runtime of clusterer for appliances. This crate is `#![no_std]` and
//! builds for `thumbv7em-none-eabihf`; the transport lands with its own issue.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
