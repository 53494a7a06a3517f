//! # clusterer-tokio
//!
//! The std runtime of clusterer and the home of the `clusterer` binary.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
