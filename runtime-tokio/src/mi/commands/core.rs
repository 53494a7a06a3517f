//! Core MI commands every OpenSIPS has and that matter for remote MI and `opensips-cli`:
//! `uptime`, `version`, `which`, `help`, `ps`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::mi::ctime::ctime_utc;
use crate::mi::dispatcher::{Call, CommandSpec, Dispatcher, RegisterError};
use crate::mi::error::{MiError, MiResult};

/// The `Server` string of `version`: `clusterer <version> (<arch>/<os>)`.
pub fn server_string() -> String {
    format!(
        "clusterer {} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Registers `uptime` (since `started`), `version`, `which`, `help` and `ps`.
///
/// # Errors
/// [`RegisterError`] when one of the names is taken.
pub fn register(d: &Dispatcher, started: SystemTime) -> Result<(), RegisterError> {
    d.register_command(
        CommandSpec::new("uptime", "core")
            .help("prints various time information about the daemon")
            .recipe(&[]),
        move |_| async move {
            let now = SystemTime::now();
            let up = now
                .duration_since(started)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Ok(json!({
                "Now": ctime_utc(unix(now)),
                "Up since": ctime_utc(unix(started)),
                "Up time": format!("{up} [sec]"),
            }))
        },
    )?;
    d.register_command(
        CommandSpec::new("version", "core")
            .help("prints the version string of the running daemon")
            .recipe(&[]),
        |_| async { Ok(json!({ "Server": server_string() })) },
    )?;
    d.register_command(
        CommandSpec::new("which", "core")
            .help("lists all available MI commands")
            .recipe(&[])
            .recipe(&["command"]),
        which,
    )?;
    d.register_command(
        CommandSpec::new("help", "core")
            .help("prints information about MI commands usage")
            .recipe(&[])
            .recipe(&["mi_cmd"]),
        help,
    )?;
    d.register_command(
        CommandSpec::new("ps", "core")
            .help("lists all processes used by the daemon")
            .recipe(&[]),
        |_| async {
            Ok(json!({ "Processes": [
                { "ID": 0, "PID": std::process::id(), "Type": "clusterer daemon (tokio)" }
            ]}))
        },
    )?;
    Ok(())
}

/// `which`: every command name; `which <command>`: its recipes as arrays of names.
async fn which(call: Call) -> MiResult {
    match call.params.opt_string("command")? {
        None => Ok(Value::from(call.dispatcher.commands())),
        Some(name) => {
            let spec = call
                .dispatcher
                .spec(&name)
                .ok_or_else(|| MiError::new(404, "unknown MI command"))?;
            Ok(Value::from(spec.recipes))
        }
    }
}

/// `help`: usage; `help <mi_cmd>`: the command's help text and module.
async fn help(call: Call) -> MiResult {
    match call.params.opt_string("mi_cmd")? {
        None => Ok(json!(
            "Usage: help mi_cmd - returns information about 'mi_cmd'"
        )),
        Some(name) => {
            let spec = call
                .dispatcher
                .spec(&name)
                .ok_or_else(|| MiError::new(404, "unknown MI command"))?;
            let text = if spec.help.is_empty() {
                "not available for this command".to_owned()
            } else {
                spec.help
            };
            let mut out = serde_json::Map::new();
            out.insert("Help".into(), Value::from(text));
            if !spec.module.is_empty() {
                out.insert("Exported by".into(), Value::from(spec.module));
            }
            Ok(Value::Object(out))
        }
    }
}
