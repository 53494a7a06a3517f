//! The built-in MI commands: the core ones ([`core`]), the clusterer ones
//! ([`clusterer`]) and the status/report group and statistics ([`status`]).

pub mod clusterer;
pub mod core;
pub mod status;
