//! `clusterer check-config FILE`: parse a configuration and say whether the daemon would
//! accept it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::DaemonConfig;

/// Arguments of `clusterer check-config`.
#[derive(Args, Debug, Clone)]
pub struct CheckConfigArgs {
    /// The TOML configuration file.
    pub file: PathBuf,
}

/// Runs `check-config`: on success prints `OK: node N, clusters [...], db_mode M` on
/// standard output and each warning as `warning: …` on standard error, exit code 0; on
/// failure prints `error: <file>:<line>:<column>: <message>` on standard error, exit code 1.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    let ok = check(
        &args.file,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The body of [`run`], writing to the given streams; returns whether the file is valid.
/// Write errors on the streams are ignored (nothing useful can be done about them).
pub fn check(file: &Path, out: &mut impl Write, err: &mut impl Write) -> bool {
    match DaemonConfig::from_path(file) {
        Ok(config) => {
            for warning in &config.warnings {
                let _ = writeln!(err, "warning: {warning}");
            }
            let _ = writeln!(out, "OK: {}", config.summary());
            true
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            false
        }
    }
}
