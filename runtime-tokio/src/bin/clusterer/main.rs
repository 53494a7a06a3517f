//! The `clusterer` command line.
//!
//! `check-config` and `run` are the daemon's and live in the library
//! (`clusterer_tokio::config`, `clusterer_tokio::daemon`). The operator tools (`decode`,
//! `demo`, `db`, `mi`) are this binary's own ([`tools`]) and use the library like any other
//! user. This file only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clusterer_tokio::{config, daemon};

mod tools;

use tools::{db_cli, decode, demo, mi_client};

/// A cluster engine speaking the OpenSIPS 3.6 clusterer protocol.
#[derive(Parser, Debug)]
#[command(name = "clusterer", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Decode captured clusterer BIN traffic (pcap, pcapng, hex or raw bytes).
    #[command(long_about = decode::LONG_ABOUT)]
    Decode(decode::DecodeArgs),
    /// Check a configuration file: print `OK: ...` and any warnings, or the first error.
    CheckConfig(config::CheckConfigArgs),
    /// Provision the clusterer table (db_mode 1): init, add-node, list, remove-node,
    /// set-state, check. The database defaults to sqlite://clusterer.sqlite.
    Db(db_cli::DbArgs),
    /// A live 3-node demo cluster on 127.0.0.1-3 (SQLite provisioning, election-mode VIP tag,
    /// replicated cache). Type `help` at its prompt.
    Demo(demo::DemoArgs),
    /// Run the daemon with a configuration file (stops on SIGINT/SIGTERM; logs with RUST_LOG).
    Run(daemon::RunArgs),
    /// Run an MI command on a daemon over JSON-RPC (like `opensips-cli -x mi`).
    #[command(long_about = mi_client::LONG_ABOUT)]
    Mi(mi_client::MiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::CheckConfig(args) => config::run_check_config(&args),
        Command::Db(args) => db_cli::run(&args),
        Command::Mi(args) => mi_client::run(&args),
        Command::Run(args) => daemon::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
