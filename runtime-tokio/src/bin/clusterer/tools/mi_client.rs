//! `clusterer mi`: a small MI client for the daemon (or any OpenSIPS `mi_http`).
//!
//! ```text
//! clusterer mi [--url http://127.0.0.1:8888/mi] <command> [params…]
//! ```

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value};

use clusterer_tokio::mi::MiError;

/// Where `clusterer mi` sends requests unless told otherwise.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8888/mi";

/// The long help of `clusterer mi`.
pub(crate) const LONG_ABOUT: &str = "\
Run an MI command on a clusterer daemon (or an OpenSIPS mi_http) over JSON-RPC 2.0.

Parameters:
  name=value     a named parameter; every parameter must then be named
  value          a positional parameter; every parameter must then be positional
  name[]=value   always an array; repeat it to add items (name[]=a name[]=b)
  name=a name=b  repeating a name also makes an array [a, b]

Values:
  -12, 0, 42          integers are sent as JSON numbers
  '\"42\"'              a JSON string literal is sent as that string (quote it for
                      the shell), e.g. to send digits as a string or a positional
                      value that contains '='
  '[\"3\",\"x\"]' '{..}'  a JSON array or object literal is sent as JSON
  anything else       sent as a string

Examples:
  clusterer mi clusterer_list
  clusterer mi clusterer_set_status 1 2 0
  clusterer mi clusterer_set_status cluster_id=1 node_id=2 status=0
  clusterer mi clusterer_shtag_set_active vip/1
  clusterer mi get_statistics statistics[]=clusterer:
  clusterer mi cluster_broadcast_mi 1 uptime
  clusterer mi cluster_send_mi cluster_id=1 destination=2 cmd_name=version cmd_params='[\"x\"]'

The result is printed as indented JSON. Exit status: 0 on a result, 1 on a JSON-RPC
error (its code, message and data are printed), 2 when the server cannot be reached or
does not answer JSON-RPC.";

/// Arguments of `clusterer mi`.
#[derive(Args, Debug, Clone)]
pub(crate) struct MiArgs {
    /// MI URL (POST, JSON-RPC 2.0).
    #[arg(long, default_value = DEFAULT_URL)]
    pub(crate) url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    pub(crate) timeout: u64,
    /// The MI command (`which` lists them).
    pub(crate) command: String,
    /// Parameters: `name=value` (named) or bare values (positional); see the long help.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) params: Vec<String>,
}

/// Why a call got no JSON-RPC answer.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// The parameters could not be built.
    Params(String),
    /// HTTP failed (connect, timeout, ...).
    Http(String),
    /// The answer is not a JSON-RPC response.
    BadResponse {
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Params(e) => write!(f, "bad parameters: {e}"),
            ClientError::Http(e) => write!(f, "{e}"),
            ClientError::BadResponse { status, body } => {
                write!(f, "not a JSON-RPC response (HTTP {status}): {body}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// One command-line value as JSON (see [`LONG_ABOUT`]).
pub(crate) fn parse_value(text: &str) -> Value {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse::<i64>()
    {
        return Value::from(n);
    }
    if text.starts_with(['"', '[', '{'])
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return v;
    }
    Value::from(text)
}

/// `name=value` / `name[]=value` → (name, forced array, value); `None` for a positional
/// value.
fn split_named(arg: &str) -> Option<(&str, bool, &str)> {
    let (left, value) = arg.split_once('=')?;
    let (name, array) = match left.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (left, false),
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (first_ok && rest_ok).then_some((name, array, value))
}

/// The JSON-RPC `params` for the command-line parameters (`None` when there are none).
///
/// # Errors
/// A message when named and positional parameters are mixed.
pub(crate) fn build_params(args: &[String]) -> Result<Option<Value>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let named: Vec<Option<(&str, bool, &str)>> = args.iter().map(|a| split_named(a)).collect();
    if named.iter().all(Option::is_none) {
        return Ok(Some(Value::Array(
            args.iter().map(|a| parse_value(a)).collect(),
        )));
    }
    if let Some(pos) = named.iter().position(Option::is_none) {
        return Err(format!(
            "`{}` is positional but other parameters are named: use name=value for all \
             (a value containing '=' can be given as a JSON string, '\"a=b\"')",
            args.get(pos).map(String::as_str).unwrap_or_default()
        ));
    }
    let mut out = Map::new();
    let mut arrays: Vec<String> = Vec::new();
    for (name, force_array, raw) in named.into_iter().flatten() {
        let value = parse_value(raw);
        match out.get_mut(name) {
            Some(Value::Array(items)) if arrays.iter().any(|a| a == name) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
                arrays.push(name.to_owned());
            }
            None if force_array => {
                out.insert(name.to_owned(), Value::Array(vec![value]));
                arrays.push(name.to_owned());
            }
            None => {
                out.insert(name.to_owned(), value);
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

/// Sends one request and returns the result or the JSON-RPC error.
///
/// # Errors
/// [`ClientError`] when no JSON-RPC response came back.
pub(crate) fn call(
    url: &str,
    method: &str,
    params: Option<Value>,
    timeout: Duration,
) -> Result<Result<Value, MiError>, ClientError> {
    let mut request = Map::new();
    request.insert("jsonrpc".into(), Value::from("2.0"));
    request.insert("method".into(), Value::from(method));
    if let Some(p) = params {
        request.insert("params".into(), p);
    }
    request.insert("id".into(), Value::from(std::process::id()));
    let body = serde_json::to_string(&Value::Object(request))
        .map_err(|e| ClientError::Params(e.to_string()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let bad = || ClientError::BadResponse {
        status,
        body: text.chars().take(500).collect(),
    };
    let Ok(Value::Object(mut reply)) = serde_json::from_str::<Value>(&text) else {
        return Err(bad());
    };
    if let Some(result) = reply.remove("result") {
        return Ok(Ok(result));
    }
    let Some(Value::Object(error)) = reply.remove("error") else {
        return Err(bad());
    };
    let code = error
        .get("code")
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(MiError::SERVER_ERROR);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let data = error.get("data").map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Ok(Err(MiError {
        code,
        message,
        data,
    }))
}

/// `clusterer mi …`: runs the command, prints the result, returns the exit status.
pub(crate) fn run(args: &MiArgs) -> ExitCode {
    let params = match build_params(&args.params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("clusterer mi: {e}");
            return ExitCode::from(2);
        }
    };
    match call(
        &args.url,
        &args.command,
        params,
        Duration::from_secs(args.timeout.max(1)),
    ) {
        Ok(Ok(result)) => {
            match serde_json::to_string_pretty(&result) {
                Ok(text) => println!("{text}"),
                Err(_) => println!("{result}"),
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("clusterer mi: {}: {e}", args.url);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn p(args: &[&str]) -> Result<Option<Value>, String> {
        build_params(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("12"), json!(12));
        assert_eq!(parse_value("-5"), json!(-5));
        assert_eq!(parse_value("-"), json!("-"));
        assert_eq!(parse_value("1.5"), json!("1.5"));
        assert_eq!(
            parse_value("99999999999999999999"),
            json!("99999999999999999999")
        );
        assert_eq!(parse_value("\"12\""), json!("12"));
        assert_eq!(parse_value("[\"3\",4]"), json!(["3", 4]));
        assert_eq!(parse_value("[oops"), json!("[oops"));
        assert_eq!(parse_value("vip/1"), json!("vip/1"));
        assert_eq!(parse_value(""), json!(""));
    }

    #[test]
    fn params() {
        assert_eq!(p(&[]), Ok(None));
        assert_eq!(p(&["1", "2", "0"]), Ok(Some(json!([1, 2, 0]))));
        assert_eq!(
            p(&["cluster_id=1", "status=0"]),
            Ok(Some(json!({"cluster_id": 1, "status": 0})))
        );
        assert_eq!(
            p(&["s[]=clusterer:"]),
            Ok(Some(json!({"s": ["clusterer:"]})))
        );
        assert_eq!(
            p(&["s=a", "s=b", "s=c"]),
            Ok(Some(json!({"s": ["a", "b", "c"]})))
        );
        assert_eq!(p(&["s[]=a", "s=b"]), Ok(Some(json!({"s": ["a", "b"]}))));
        assert_eq!(p(&["x=a=b"]), Ok(Some(json!({"x": "a=b"}))));
        assert_eq!(p(&["\"a=b\"", "3"]), Ok(Some(json!(["a=b", 3]))));
        assert_eq!(p(&["=x"]), Ok(Some(json!(["=x"]))));
        assert!(p(&["a=1", "2"]).is_err());
    }
}
