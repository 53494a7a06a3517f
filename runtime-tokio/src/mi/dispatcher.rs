//! [`Dispatcher`]: command name → handler, with OpenSIPS' recipe matching and JSON-RPC 2.0
//! framing.
//!
//! Commands are registered at any time through a shared reference
//! ([`Dispatcher::register`] / [`Dispatcher::register_command`]); each has one or more
//! recipes (lists of parameter names, see [`params`](super::params)). A handler is an async
//! closure taking a [`Call`] and returning a [`MiResult`]; it runs in its own tokio task, so
//! a panicking handler answers −32000 `Server error` instead of taking the server down.
//!
//! ```
//! # async fn demo() {
//! use std::sync::Arc;
//! use clusterer_tokio::mi::{Dispatcher, MiError};
//! use serde_json::json;
//!
//! let mi = Arc::new(Dispatcher::new());
//! mi.register("demo_echo", &[&["text"]], |call| async move {
//!     let text = call.params.string("text")?;
//!     if text.is_empty() {
//!         return Err(MiError::new(400, "Empty text"));
//!     }
//!     Ok(json!({ "echo": text }))
//! })
//! .unwrap();
//! let reply = mi
//!     .handle_jsonrpc(br#"{"jsonrpc":"2.0","method":"demo_echo","params":["hi"],"id":1}"#)
//!     .await;
//! assert_eq!(reply.as_deref(), Some(r#"{"jsonrpc":"2.0","result":{"echo":"hi"},"id":1}"#));
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use clusterer_core::{ClusterId, NodeId};
use serde_json::{Map, Value};

use super::error::{MiError, MiResult};
use super::params::{Params, RawParams, match_recipe};

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = MiResult> + Send + 'static>>;

/// A command handler.
pub type Handler = Arc<dyn Fn(Call) -> HandlerFuture + Send + Sync + 'static>;

/// Where a call comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A JSON-RPC request (HTTP or [`Dispatcher::handle_jsonrpc`]).
    Request,
    /// The local run of `cluster_broadcast_mi`.
    Broadcast,
    /// An MI_CMD received from another node.
    Remote {
        /// Cluster of the packet.
        cluster: ClusterId,
        /// Sender.
        source: NodeId,
    },
}

/// One invocation of a command.
#[derive(Clone)]
pub struct Call {
    /// The command name.
    pub command: String,
    /// The parameters, named by the matched recipe.
    pub params: Params,
    /// The dispatcher (to run other commands or list them).
    pub dispatcher: Arc<Dispatcher>,
    /// Where the call comes from.
    pub origin: Origin,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("command", &self.command)
            .field("params", &self.params)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A command's name, help text and recipes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Command name (`clusterer_list`).
    pub name: String,
    /// One-line help (MI `help`).
    pub help: String,
    /// Who exports it (MI `help`: `Exported by`), e.g. `clusterer`, `core`.
    pub module: String,
    /// The recipes: each the list of parameter names; `[]` = no parameters.
    pub recipes: Vec<Vec<String>>,
    /// Positional parameters are refused (`MI_NAMED_PARAMS_ONLY`).
    pub named_only: bool,
}

impl CommandSpec {
    /// A command of `module` with no recipe yet (add them with [`CommandSpec::recipe`]).
    pub fn new(name: impl Into<String>, module: impl Into<String>) -> Self {
        CommandSpec {
            name: name.into(),
            help: String::new(),
            module: module.into(),
            recipes: Vec::new(),
            named_only: false,
        }
    }

    /// Sets the help text.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Adds a recipe (`&[]` for the no-parameter form).
    #[must_use]
    pub fn recipe(mut self, params: &[&str]) -> Self {
        self.recipes
            .push(params.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Refuses positional parameters.
    #[must_use]
    pub fn named_only(mut self) -> Self {
        self.named_only = true;
        self
    }
}

/// Why a command could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// A command of that name exists.
    AlreadyRegistered(String),
    /// The name is empty.
    EmptyName,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered(n) => write!(f, "MI command {n} already registered"),
            RegisterError::EmptyName => f.write_str("MI command name is empty"),
        }
    }
}

impl std::error::Error for RegisterError {}

struct Command {
    spec: CommandSpec,
    handler: Handler,
}

#[derive(Default)]
struct Registry {
    order: Vec<Arc<Command>>,
    by_name: HashMap<String, Arc<Command>>,
}

/// The MI command table. Share it as `Arc<Dispatcher>`.
#[derive(Default)]
pub struct Dispatcher {
    registry: RwLock<Registry>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("commands", &self.commands())
            .finish()
    }
}

impl Dispatcher {
    /// An empty table.
    pub fn new() -> Self {
        Dispatcher::default()
    }

    /// Registers `name` with `recipes` (each a list of parameter names; `&[&[]]` for a
    /// command without parameters) and `handler`, exported by `module` `""`.
    ///
    /// # Errors
    /// [`RegisterError`] when the name is taken or empty.
    pub fn register<F, Fut>(
        &self,
        name: &str,
        recipes: &[&[&str]],
        handler: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MiResult> + Send + 'static,
    {
        let mut spec = CommandSpec::new(name, "");
        for r in recipes {
            spec = spec.recipe(r);
        }
        self.register_command(spec, handler)
    }

    /// Registers a command described by `spec`. A spec without recipes gets the
    /// no-parameter recipe.
    ///
    /// # Errors
    /// [`RegisterError`] when the name is taken or empty.
    pub fn register_command<F, Fut>(
        &self,
        mut spec: CommandSpec,
        handler: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MiResult> + Send + 'static,
    {
        if spec.name.is_empty() {
            return Err(RegisterError::EmptyName);
        }
        if spec.recipes.is_empty() {
            spec.recipes.push(Vec::new());
        }
        let handler: Handler = Arc::new(move |call| Box::pin(handler(call)));
        let mut reg = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if reg.by_name.contains_key(&spec.name) {
            return Err(RegisterError::AlreadyRegistered(spec.name));
        }
        let command = Arc::new(Command { spec, handler });
        reg.by_name
            .insert(command.spec.name.clone(), Arc::clone(&command));
        reg.order.push(command);
        Ok(())
    }

    /// Every command name, in registration order (MI `which`).
    pub fn commands(&self) -> Vec<String> {
        let reg = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        reg.order.iter().map(|c| c.spec.name.clone()).collect()
    }

    /// The spec of a command.
    pub fn spec(&self, name: &str) -> Option<CommandSpec> {
        self.lookup(name).map(|c| c.spec.clone())
    }

    fn lookup(&self, name: &str) -> Option<Arc<Command>> {
        let reg = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        reg.by_name.get(name).cloned()
    }

    /// Runs `method` with `params`: −32601 for an unknown command, then the MI core's
    /// parameter checks, then the handler.
    pub async fn execute(
        self: &Arc<Self>,
        method: &str,
        params: RawParams,
        origin: Origin,
    ) -> MiResult {
        let Some(command) = self.lookup(method) else {
            return Err(MiError::method_not_found());
        };
        self.run(command, params, origin).await
    }

    /// Runs a command the way a received MI_CMD and the local part of
    /// `cluster_broadcast_mi` do: positional string parameters; an unknown command is 400
    /// `Command to be run not found`, one that only takes named parameters 400
    /// `Commands requiring named params not supported`.
    pub async fn run_positional(
        self: &Arc<Self>,
        name: &str,
        params: Vec<String>,
        origin: Origin,
    ) -> MiResult {
        let Some(command) = self.lookup(name) else {
            return Err(MiError::new(400, "Command to be run not found"));
        };
        if command.spec.named_only {
            return Err(MiError::new(
                400,
                "Commands requiring named params not supported",
            ));
        }
        self.run(command, RawParams::positional_strings(params), origin)
            .await
    }

    async fn run(
        self: &Arc<Self>,
        command: Arc<Command>,
        raw: RawParams,
        origin: Origin,
    ) -> MiResult {
        if raw.is_positional() && command.spec.named_only {
            return Err(MiError::named_only());
        }
        let index = match_recipe(&command.spec.recipes, &raw)?;
        let recipe = command.spec.recipes.get(index).cloned().unwrap_or_default();
        let call = Call {
            command: command.spec.name.clone(),
            params: Params::new(raw, recipe),
            dispatcher: Arc::clone(self),
            origin,
        };
        let future = (command.handler)(call);
        match tokio::spawn(future).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(command = %command.spec.name, error = %e, "MI command handler failed");
                Err(MiError::server_error("Command handler failed"))
            }
        }
    }

    /// Answers a JSON-RPC 2.0 body: one request or a batch (an array of requests, answered
    /// with an array in the same order). `None` when nothing is to be sent back: the
    /// request was a notification (no `id`) or the batch held only notifications; the
    /// commands ran anyway. A body that is not JSON gets −32700 with `"id": null`.
    pub async fn handle_jsonrpc(self: &Arc<Self>, body: &[u8]) -> Option<String> {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return Some(encode(&error_response(
                    &MiError::parse_error(),
                    Value::Null,
                )));
            }
        };
        match value {
            Value::Array(batch) if batch.is_empty() => Some(encode(&error_response(
                &MiError::invalid_request(),
                Value::Null,
            ))),
            Value::Array(batch) => {
                let mut replies = Vec::new();
                for request in batch {
                    if let Some(reply) = self.handle_request(request).await {
                        replies.push(reply);
                    }
                }
                (!replies.is_empty()).then(|| encode(&Value::Array(replies)))
            }
            request => self.handle_request(request).await.map(|r| encode(&r)),
        }
    }

    /// One JSON-RPC request object → the response object (`None` for a notification).
    pub async fn handle_request(self: &Arc<Self>, request: Value) -> Option<Value> {
        let Value::Object(mut obj) = request else {
            return Some(error_response(&MiError::invalid_request(), Value::Null));
        };
        let id = obj.remove("id");
        let id_valid = matches!(
            id,
            None | Some(Value::Null | Value::Number(_) | Value::String(_))
        );
        let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let method = match obj.remove("method") {
            Some(Value::String(m)) => Some(m),
            _ => None,
        };
        let params = RawParams::from_json(obj.remove("params"));
        let (Some(method), Ok(params), true, true) = (method, params, version_ok, id_valid) else {
            let id = if id_valid {
                id.unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            return Some(error_response(&MiError::invalid_request(), id));
        };
        tracing::debug!(%method, notification = id.is_none(), "MI request");
        let result = self.execute(&method, params, Origin::Request).await;
        let id = id?;
        Some(match result {
            Ok(value) => result_response(value, id),
            Err(e) => error_response(&e, id),
        })
    }
}

/// `{"jsonrpc":"2.0","result":…,"id":…}`.
pub fn result_response(result: Value, id: Value) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), Value::from("2.0"));
    m.insert("result".into(), result);
    m.insert("id".into(), id);
    Value::Object(m)
}

/// `{"jsonrpc":"2.0","error":{…},"id":…}`.
pub fn error_response(error: &MiError, id: Value) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), Value::from("2.0"));
    m.insert("error".into(), error.to_json());
    m.insert("id".into(), id);
    Value::Object(m)
}

/// Compact JSON, as OpenSIPS' mi_http sends it.
pub fn encode(value: &Value) -> String {
    // Serializing a `Value` into a `String` cannot fail (keys are strings).
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    fn dispatcher() -> Arc<Dispatcher> {
        let d = Arc::new(Dispatcher::new());
        d.register("none", &[&[]], |_| async { Ok(json!("OK")) })
            .unwrap();
        d.register("two", &[&["a"], &["a", "b"]], |call| async move {
            let a = call.params.int("a")?;
            let b = call.params.opt_string("b")?;
            Ok(json!({ "a": a, "b": b }))
        })
        .unwrap();
        d.register_command(
            CommandSpec::new("named", "test")
                .recipe(&["x"])
                .named_only(),
            |_| async { Ok(json!("OK")) },
        )
        .unwrap();
        d.register("boom", &[&[]], |_| async { panic!("boom") })
            .unwrap();
        d
    }

    async fn ask(d: &Arc<Dispatcher>, body: &str) -> Option<String> {
        d.handle_jsonrpc(body.as_bytes()).await
    }

    #[tokio::test]
    async fn framing_and_errors() {
        let d = dispatcher();
        assert_eq!(
            ask(&d, "this is not json").await.as_deref(),
            Some(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#)
        );
        assert_eq!(
            ask(&d, r#"{"jsonrpc":"2.0","method":"nope","id":604}"#)
                .await
                .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":604}"#
            )
        );
        assert_eq!(
            ask(
                &d,
                r#"{"jsonrpc":"2.0","method":"none","id":603,"params":{"x":1}}"#
            )
            .await
            .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":603}"#
            )
        );
        assert_eq!(
            ask(
                &d,
                r#"{"jsonrpc":"2.0","method":"none","id":"7","params":{}}"#
            )
            .await
            .as_deref(),
            Some(r#"{"jsonrpc":"2.0","result":"OK","id":"7"}"#)
        );
        assert_eq!(
            ask(
                &d,
                r#"{"jsonrpc":"2.0","method":"two","id":1,"params":["x"]}"#
            )
            .await
            .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Bad type for parameter 'a'"},"id":1}"#
            )
        );
        assert_eq!(
            ask(
                &d,
                r#"{"jsonrpc":"2.0","method":"two","id":1,"params":{"b":2,"a":"5"}}"#
            )
            .await
            .as_deref(),
            Some(r#"{"jsonrpc":"2.0","result":{"a":5,"b":"2"},"id":1}"#)
        );
        assert_eq!(
            ask(
                &d,
                r#"{"jsonrpc":"2.0","method":"named","id":1,"params":[1]}"#
            )
            .await
            .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Command only supports named parameters"},"id":1}"#
            )
        );
        for invalid in [
            r#"{"method":"none","id":1}"#,
            r#"{"jsonrpc":"1.0","method":"none","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","method":"none","id":1,"params":"x"}"#,
        ] {
            assert_eq!(
                ask(&d, invalid).await.as_deref(),
                Some(
                    r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}"#
                ),
                "{invalid}"
            );
        }
        assert_eq!(
            ask(&d, r#"{"jsonrpc":"2.0","method":"none","id":[1]}"#)
                .await
                .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#
            )
        );
        assert_eq!(
            ask(&d, r#"{"jsonrpc":"2.0","method":"boom","id":1}"#)
                .await
                .as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Server error","data":"Command handler failed"},"id":1}"#
            )
        );
    }

    #[tokio::test]
    async fn notifications_and_batches() {
        let d = dispatcher();
        assert_eq!(ask(&d, r#"{"jsonrpc":"2.0","method":"none"}"#).await, None);
        assert_eq!(
            ask(
                &d,
                r#"[{"jsonrpc":"2.0","method":"none","id":1},{"jsonrpc":"2.0","method":"none"},3]"#
            )
            .await
            .as_deref(),
            Some(
                r#"[{"jsonrpc":"2.0","result":"OK","id":1},{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}]"#
            )
        );
        assert_eq!(
            ask(&d, r#"[{"jsonrpc":"2.0","method":"none"}]"#).await,
            None
        );
        assert_eq!(
            ask(&d, "[]").await.as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#
            )
        );
    }

    #[tokio::test]
    async fn registration_and_positional_runs() {
        let d = dispatcher();
        assert_eq!(
            d.register("none", &[&[]], |_| async { Ok(json!(1)) }),
            Err(RegisterError::AlreadyRegistered("none".into()))
        );
        assert_eq!(d.commands(), ["none", "two", "named", "boom"]);
        assert_eq!(
            d.run_positional("two", vec!["4".into(), "x".into()], Origin::Broadcast)
                .await,
            Ok(json!({"a": 4, "b": "x"}))
        );
        assert_eq!(
            d.run_positional("nope", Vec::new(), Origin::Broadcast)
                .await,
            Err(MiError::new(400, "Command to be run not found"))
        );
        assert_eq!(
            d.run_positional("named", vec!["1".into()], Origin::Broadcast)
                .await,
            Err(MiError::new(
                400,
                "Commands requiring named params not supported"
            ))
        );
    }
}
