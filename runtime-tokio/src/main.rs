//! The `clusterer` command line.
//!
//! Every subcommand lives in the library (`clusterer_tokio::<subcommand>`); this file only
//! parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clusterer_tokio::{config, decode};

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
    Db(clusterer_tokio::db::DbArgs),
    /// A live 3-node demo cluster on 127.0.0.1-3 (SQLite provisioning, election-mode VIP tag,
    /// replicated cache). Type `help` at its prompt.
    Demo(clusterer_tokio::demo::DemoArgs),
    /// Run the daemon with a configuration file (stops on SIGINT/SIGTERM; logs with RUST_LOG).
    Run(clusterer_tokio::daemon::RunArgs),
    /// Run an MI command on a daemon over JSON-RPC (like `opensips-cli -x mi`).
    #[command(long_about = clusterer_tokio::mi::client::LONG_ABOUT)]
    Mi(clusterer_tokio::mi::client::MiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::CheckConfig(args) => config::run_check_config(&args),
        Command::Db(args) => clusterer_tokio::db::run(&args),
        Command::Mi(args) => clusterer_tokio::mi::client::run(&args),
        Command::Run(args) => clusterer_tokio::daemon::run(&args),
        Command::Demo(args) => clusterer_tokio::demo::run(&args),
    }
}
