//! The operator tools of the `clusterer` binary, apart from the daemon library: each one is a
//! subcommand and uses `clusterer_tokio` through its public API only.
//!
//! | module | subcommand |
//! |---|---|
//! | [`decode`] | `clusterer decode`: the packet dissector for captured BIN traffic |
//! | [`demo`] | `clusterer demo`: a live 3-node cluster to play with |
//! | [`db_cli`] | `clusterer db …`: provisioning the `clusterer` table (db_mode 1) |
//! | [`mi_client`] | `clusterer mi …`: an MI client (JSON-RPC over HTTP) |

pub(crate) mod db_cli;
pub(crate) mod decode;
pub(crate) mod demo;
pub(crate) mod mi_client;
