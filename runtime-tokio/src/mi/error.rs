//! [`MiError`]: a JSON-RPC error object as OpenSIPS' MI core builds it.
//!
//! The MI error code is the JSON-RPC `error.code`: the JSON-RPC codes (−32700, −32600,
//! −32601, −32602, −32000) for protocol and parameter errors, and the command's own code
//! (400, 404, 500) for command errors. `data` is only present when there is a detail.

use std::fmt;

use serde_json::{Map, Value};

use crate::runtime::Stopped;

/// What a command returns: a JSON result or an error.
pub type MiResult = Result<Value, MiError>;

/// A JSON-RPC error: `{"code": .., "message": .., "data": ..}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiError {
    /// `error.code`.
    pub code: i32,
    /// `error.message`.
    pub message: String,
    /// `error.data`, omitted when `None` or empty.
    pub data: Option<String>,
}

impl MiError {
    /// −32700: the body is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// −32600: JSON, but not a JSON-RPC 2.0 request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// −32601: no such command.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// −32602: the parameters match no recipe of the command, or have a bad type.
    pub const INVALID_PARAMS: i32 = -32602;
    /// −32000: the command failed without an answer of its own.
    pub const SERVER_ERROR: i32 = -32000;

    /// An error with a code and a message (what OpenSIPS' `init_mi_error` builds).
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        MiError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An error with a detail in `data` (`init_mi_error_extra`).
    pub fn with_data(code: i32, message: impl Into<String>, data: impl Into<String>) -> Self {
        MiError {
            code,
            message: message.into(),
            data: Some(data.into()),
        }
    }

    /// −32700 `Parse error`.
    pub fn parse_error() -> Self {
        MiError::new(Self::PARSE_ERROR, "Parse error")
    }

    /// −32600 `Invalid Request`.
    pub fn invalid_request() -> Self {
        MiError::new(Self::INVALID_REQUEST, "Invalid Request")
    }

    /// −32601 `Method not found`.
    pub fn method_not_found() -> Self {
        MiError::new(Self::METHOD_NOT_FOUND, "Method not found")
    }

    /// −32602 `Invalid params` with a detail, e.g. `Negative expire value`.
    pub fn invalid_params(data: impl Into<String>) -> Self {
        MiError::with_data(Self::INVALID_PARAMS, "Invalid params", data)
    }

    /// −32602 with `Too few or too many parameters` (no recipe has that many parameters).
    pub fn params_count() -> Self {
        Self::invalid_params("Too few or too many parameters")
    }

    /// −32602 with `Named parameters do not match`.
    pub fn params_names() -> Self {
        Self::invalid_params("Named parameters do not match")
    }

    /// −32602 with `Ambiguous call, use named parameters instead`.
    pub fn params_ambiguous() -> Self {
        Self::invalid_params("Ambiguous call, use named parameters instead")
    }

    /// −32602 with `Command only supports named parameters`.
    pub fn named_only() -> Self {
        Self::invalid_params("Command only supports named parameters")
    }

    /// −32602 with `Bad type for parameter '<name>'`.
    pub fn bad_type(name: &str) -> Self {
        Self::invalid_params(format!("Bad type for parameter '{name}'"))
    }

    /// −32602 with `Bad type for array item in parameter '<name>'`.
    pub fn bad_array_item(name: &str) -> Self {
        Self::invalid_params(format!("Bad type for array item in parameter '{name}'"))
    }

    /// −32602 with `Empty array in parameter '<name>'`.
    pub fn empty_array(name: &str) -> Self {
        Self::invalid_params(format!("Empty array in parameter '{name}'"))
    }

    /// −32000 `Server error` with a detail (`Failed to handle parameter`, a panic, ...).
    pub fn server_error(data: impl Into<String>) -> Self {
        MiError::with_data(Self::SERVER_ERROR, "Server error", data)
    }

    /// The `error` member: `code`, `message` and, when non-empty, `data`, in that order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code));
        m.insert("message".into(), Value::from(self.message.clone()));
        if let Some(data) = self.data.as_deref().filter(|d| !d.is_empty()) {
            m.insert("data".into(), Value::from(data));
        }
        Value::Object(m)
    }
}

impl fmt::Display for MiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(data) = self.data.as_deref().filter(|d| !d.is_empty()) {
            write!(f, " ({data})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MiError {}

impl From<Stopped> for MiError {
    fn from(e: Stopped) -> Self {
        MiError::server_error(e.to_string())
    }
}
