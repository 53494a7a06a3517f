//! # clusterer-tests
//!
//! Shared helpers of the cross-crate tests: the OpenSIPS capture vectors.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
