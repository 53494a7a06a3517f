//! The `clusterer` module's MI commands (docs/behaviour.md §15), answered from the engine
//! through [`Handle::call`], with OpenSIPS' result shapes, error codes and messages.
//!
//! | command | recipes | result |
//! |---|---|---|
//! | `clusterer_reload` | – | `"OK"`, 400 `Non-DB mode`, 500 `Failed to reload` (see [`ReloadHook`]) |
//! | `clusterer_set_status` | cluster_id, node_id (optional), status | `"OK"` |
//! | `clusterer_list` | – | `{"Clusters":[{"cluster_id","Nodes":[…]}]}` |
//! | `clusterer_list_topology` | – | `{"Clusters":[{"cluster_id","Nodes":[{"node_id","Neighbours"}]}]}` |
//! | `cluster_send_mi` | cluster_id, destination, cmd_name, cmd_params (optional) | `"OK"` / `"Local node disabled"` |
//! | `cluster_send_req` | cluster_id, destination, msg, tag (optional) | `{"tag"}` (clusterer's own; OpenSIPS has it as a script function) |
//! | `cluster_broadcast_mi` | cluster_id, cmd_name, cmd_params (optional) | the local run's result |
//! | `clusterer_list_cap` | – | `{"Clusters":[{"cluster_id","Capabilities":[…]}]}` |
//! | `clusterer_set_cap_status` | cluster_id, capability, status | `"OK"` |
//! | `clusterer_list_shtags` | – | `[{"Tag","Cluster","State"}]` |
//! | `clusterer_shtag_set_active` | tag (`name/cluster_id`) | `"OK"` |
//! | `clusterer_remove_node` | cluster_id, node_id | `"OK"` |
//!
//! The status/report group `clusterer` (`sr_*`) and the statistics (`get_statistics`, ...)
//! live in [`status`](super::status) and are registered with these.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use clusterer_core::message::{GenericKind, GenericMsg, MAX_MI_PARAMS, MiCmd, RoutedBody};
use clusterer_core::shtag::{ShtagError, ShtagReason};
use clusterer_core::{
    CapabilityError, ClusterId, DbMode, NodeId, RemoveNodeError, SendStatus, SetStatusError,
};
use serde_json::{Value, json};

use crate::mi::dispatcher::{Call, CommandSpec, Dispatcher, Origin, RegisterError};
use crate::mi::error::{MiError, MiResult};
use crate::mi::params::array_strings;
use crate::runtime::Handle;

/// Reloads the node table from the database for `clusterer_reload` (db_mode 1). `Ok(v)` is
/// the command's result (`"OK"` like OpenSIPS, or a report of skipped rows); an `Err` is
/// sent back as it is (OpenSIPS uses 500 `Failed to reload`).
pub type ReloadHook =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Value, MiError>> + Send>> + Send + Sync>;

/// Persists a `clusterer_set_status` change (db_mode 1: the `state` column of the
/// (node_id, cluster_id) row; `node` is the resolved node, the local one included). Called
/// after the engine accepted the change; an `Err` is logged, the command still answers OK
/// (the running state changed).
pub type StatusHook = Arc<
    dyn Fn(ClusterId, NodeId, bool) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// Options of the clusterer commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClustererMiOptions {
    /// `enable_stats`: when `false` the `clusterer:` statistics do not exist (as in
    /// OpenSIPS, where they are then not registered).
    pub enable_stats: bool,
}

impl Default for ClustererMiOptions {
    fn default() -> Self {
        ClustererMiOptions { enable_stats: true }
    }
}

/// The clusterer commands of one engine: register them with [`ClustererMi::register`].
pub struct ClustererMi {
    pub(crate) handle: Handle,
    pub(crate) options: ClustererMiOptions,
    reload: RwLock<Option<ReloadHook>>,
    status: RwLock<Option<StatusHook>>,
}

impl fmt::Debug for ClustererMi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClustererMi")
            .field("node", &self.handle.my_id())
            .field("options", &self.options)
            .field("reload_hook", &self.has_reload_hook())
            .finish()
    }
}

fn ok() -> MiResult {
    Ok(Value::from("OK"))
}

/// A cluster id parameter: ≥ 1, else 400 `Bad value for '<name>'`.
fn positive(value: i32, name: &str) -> Result<u32, MiError> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| MiError::new(400, format!("Bad value for '{name}'")))
}

fn cluster_id(value: i32) -> Result<ClusterId, MiError> {
    let v = positive(value, "cluster_id")?;
    ClusterId::new(v).ok_or_else(|| MiError::new(400, "Bad value for 'cluster_id'"))
}

fn node_id(value: i32, name: &str) -> Result<NodeId, MiError> {
    let v = positive(value, name)?;
    NodeId::new(v).ok_or_else(|| MiError::new(400, format!("Bad value for '{name}'")))
}

/// A 0/1 `status`.
fn status(value: i32) -> Result<bool, MiError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(MiError::new(400, "Bad value for 'status'")),
    }
}

impl ClustererMi {
    /// Commands answering from `handle`'s engine.
    pub fn new(handle: Handle, options: ClustererMiOptions) -> Arc<Self> {
        Arc::new(ClustererMi {
            handle,
            options,
            reload: RwLock::new(None),
            status: RwLock::new(None),
        })
    }

    /// Plugs the persistence of `clusterer_set_status` (db_mode 1), or removes it.
    pub fn set_status_hook(&self, hook: Option<StatusHook>) {
        *self.status.write().unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// The engine.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Plugs the database reload into `clusterer_reload` (or removes it with `None`).
    /// Without a hook the command answers 400 `Non-DB mode` in db_mode 0 (as OpenSIPS)
    /// and 500 `Failed to reload` in db_mode 1.
    pub fn set_reload_hook(&self, hook: Option<ReloadHook>) {
        *self.reload.write().unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// Whether a reload hook is plugged in.
    pub fn has_reload_hook(&self) -> bool {
        self.reload
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Registers the clusterer commands, the `sr_*` commands of the `clusterer` group and
    /// the statistics commands with `d`.
    ///
    /// # Errors
    /// [`RegisterError`] when a name is taken.
    pub fn register(self: &Arc<Self>, d: &Dispatcher) -> Result<(), RegisterError> {
        let cmd = |name: &str, help: &str| CommandSpec::new(name, "clusterer").help(help);
        self.add(
            d,
            cmd("clusterer_reload", "reloads stored data from the database").recipe(&[]),
            Self::reload,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_set_status",
                "sets the status for a specified connection",
            )
            .recipe(&["cluster_id", "status"])
            .recipe(&["cluster_id", "node_id", "status"]),
            Self::set_status,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_list",
                "lists the available connections for the specified server",
            )
            .recipe(&[]),
            Self::list,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_list_topology",
                "lists the topology as known by the current node",
            )
            .recipe(&[]),
            Self::list_topology,
        )?;
        self.add(
            d,
            cmd(
                "cluster_send_mi",
                "sends an MI command to be run on a specific node in a cluster",
            )
            .recipe(&["cluster_id", "destination", "cmd_name"])
            .recipe(&["cluster_id", "destination", "cmd_name", "cmd_params"]),
            Self::send_mi,
        )?;
        self.add(
            d,
            cmd(
                "cluster_send_req",
                "sends a GENERIC_MSG request to a node of a cluster (answers its tag)",
            )
            .recipe(&["cluster_id", "destination", "msg"])
            .recipe(&["cluster_id", "destination", "msg", "tag"]),
            Self::send_req,
        )?;
        self.add(
            d,
            cmd(
                "cluster_broadcast_mi",
                "dispatches an MI command to be run on all nodes in a cluster",
            )
            .recipe(&["cluster_id", "cmd_name"])
            .recipe(&["cluster_id", "cmd_name", "cmd_params"]),
            Self::broadcast_mi,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_list_cap",
                "lists registered capabilities and their states",
            )
            .recipe(&[]),
            Self::list_cap,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_set_cap_status",
                "sets the status for a capability",
            )
            .recipe(&["cluster_id", "capability", "status"]),
            Self::set_cap_status,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_list_shtags",
                "lists the sharing tags and their states",
            )
            .recipe(&[]),
            Self::list_shtags,
        )?;
        self.add(
            d,
            cmd(
                "clusterer_shtag_set_active",
                "switch the status of the give sharing tag to active",
            )
            .recipe(&["tag"]),
            Self::shtag_set_active,
        )?;
        self.add(
            d,
            cmd("clusterer_remove_node", "removes a node from the cluster")
                .recipe(&["cluster_id", "node_id"]),
            Self::remove_node,
        )?;
        self.register_status(d)
    }

    /// Registers `spec` with a handler method of `self`.
    pub(crate) fn add<F, Fut>(
        self: &Arc<Self>,
        d: &Dispatcher,
        spec: CommandSpec,
        f: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn(Arc<Self>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MiResult> + Send + 'static,
    {
        let me = Arc::clone(self);
        d.register_command(spec, move |call| f(Arc::clone(&me), call))
    }

    async fn db_mode(&self) -> Result<DbMode, MiError> {
        Ok(self.handle.call(|s| s.endpoint.node().db_mode()).await?)
    }

    async fn reload(self: Arc<Self>, _call: Call) -> MiResult {
        let hook = self
            .reload
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            return hook().await;
        }
        match self.db_mode().await? {
            DbMode::Discovery => Err(MiError::new(400, "Non-DB mode")),
            DbMode::Database => {
                tracing::error!("clusterer_reload: no database reload is plugged in");
                Err(MiError::new(500, "Failed to reload"))
            }
        }
    }

    async fn set_status(self: Arc<Self>, call: Call) -> MiResult {
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let node = p
            .opt_int("node_id")?
            .map(|n| node_id(n, "node_id"))
            .transpose()?;
        let enabled = status(p.int("status")?)?;
        let r = self
            .handle
            .call(move |s| s.endpoint.set_status(s.now, cluster, node, enabled))
            .await?;
        match r {
            Ok(()) => {
                let hook = self
                    .status
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(hook) = hook {
                    let target = node.unwrap_or(self.handle.my_id());
                    if let Err(e) = hook(cluster, target, enabled).await {
                        tracing::error!(cluster = %cluster, node = %target, error = %e, "cannot persist the node state");
                    }
                }
                ok()
            }
            Err(SetStatusError::UnknownCluster) => Err(MiError::new(404, "Cluster id not found")),
            Err(SetStatusError::UnknownNode) => Err(MiError::new(404, "Node id not found")),
        }
    }

    async fn list(self: Arc<Self>, _call: Call) -> MiResult {
        Ok(self
            .handle
            .call(|s| {
                let ids: Vec<(ClusterId, Vec<NodeId>)> = s
                    .endpoint
                    .node()
                    .clusters()
                    .iter()
                    .map(|c| (c.id(), c.nodes().iter().map(|n| n.id()).collect()))
                    .collect();
                let mut clusters = Vec::with_capacity(ids.len());
                for (cid, nodes) in ids {
                    let hops: Vec<Option<NodeId>> =
                        nodes.iter().map(|&n| s.endpoint.next_hop(cid, n)).collect();
                    let Some(c) = s.endpoint.node().cluster(cid) else {
                        continue;
                    };
                    let list: Vec<Value> = nodes
                        .iter()
                        .zip(hops)
                        .filter_map(|(&id, hop)| {
                            let n = c.node(id)?;
                            Some(json!({
                                "node_id": id.get(),
                                "db_id": n.db_id().unwrap_or(-1),
                                "url": n.url(),
                                "link_state": n.link_state().mi_name(),
                                "state": if n.enabled() { "enabled" } else { "disabled" },
                                "next_hop": hop.map_or_else(|| "none".to_owned(), |h| h.to_string()),
                                "description": n.description().unwrap_or("none"),
                            }))
                        })
                        .collect();
                    clusters.push(json!({ "cluster_id": cid.get(), "Nodes": list }));
                }
                json!({ "Clusters": clusters })
            })
            .await?)
    }

    async fn list_topology(self: Arc<Self>, _call: Call) -> MiResult {
        Ok(self
            .handle
            .call(|s| {
                let node = s.endpoint.node();
                let clusters: Vec<Value> = node
                    .clusters()
                    .iter()
                    .map(|c| {
                        let nodes: Vec<Value> = c
                            .topology_view()
                            .into_iter()
                            .map(|(id, neighbours)| {
                                let neighbours: Vec<u32> =
                                    neighbours.iter().map(|x| x.get()).collect();
                                json!({ "node_id": id.get(), "Neighbours": neighbours })
                            })
                            .collect();
                        json!({ "cluster_id": c.id().get(), "Nodes": nodes })
                    })
                    .collect();
                json!({ "Clusters": clusters })
            })
            .await?)
    }

    /// The optional `cmd_params`: absent or empty → none; not an array → bad type.
    /// `Ok(Err(()))` when an item is neither a string nor a number.
    fn cmd_params(call: &Call) -> Result<Result<Vec<String>, MiError>, MiError> {
        Ok(match call.params.opt_array("cmd_params")? {
            None => Ok(Vec::new()),
            Some(items) => array_strings("cmd_params", items),
        })
    }

    /// MI_CMD bodies the wire can carry: at most [`MAX_MI_PARAMS`] parameters, strings
    /// shorter than 64 KiB.
    fn encodable(cmd: &MiCmd) -> bool {
        let fits = |s: &String| s.len() <= usize::from(u16::MAX);
        cmd.params.len() <= MAX_MI_PARAMS && fits(&cmd.command) && cmd.params.iter().all(fits)
    }

    async fn send_mi(self: Arc<Self>, call: Call) -> MiResult {
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let dest = node_id(p.int("destination")?, "destination")?;
        if dest == self.handle.my_id() {
            return Err(MiError::new(400, "Local node specified as destination"));
        }
        let command = p.string("cmd_name")?;
        // A bad array item is a send error in OpenSIPS (the packet cannot be built).
        let Ok(params) = Self::cmd_params(&call)? else {
            return Err(MiError::new(400, "Send error"));
        };
        let mi = MiCmd { command, params };
        if !Self::encodable(&mi) {
            tracing::error!(command = %mi.command, params = mi.params.len(), "MI command too large for MI_CMD");
            return Err(MiError::new(400, "Send error"));
        }
        let what = format!("MI command {:?}", mi.command);
        let status = self
            .handle
            .call(move |s| {
                s.endpoint
                    .send_to(s.now, cluster, dest, RoutedBody::MiCmd(mi))
            })
            .await?;
        unicast_result(status, &what, cluster, dest, ok()?)
    }

    /// `cluster_send_req` (clusterer's MI form of the script function): a GENERIC_MSG
    /// request to one node, with a new tag unless one is given; answers the tag. The reply
    /// raises `E_CLUSTERER_RPL_RECEIVED` (hooks, event log).
    async fn send_req(self: Arc<Self>, call: Call) -> MiResult {
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let dest = node_id(p.int("destination")?, "destination")?;
        let msg = p.string("msg")?;
        let tag = p.opt_string("tag")?;
        for (name, value) in [("msg", Some(&msg)), ("tag", tag.as_ref())] {
            if value.is_some_and(|v| v.len() > usize::from(u16::MAX)) {
                return Err(MiError::new(
                    400,
                    format!("{name} is longer than {} bytes", u16::MAX),
                ));
            }
        }
        let (status, tag) = self
            .handle
            .call(move |s| {
                let tag = tag.unwrap_or_else(|| s.endpoint.generate_tag(cluster));
                let body = RoutedBody::GenericMsg(GenericMsg {
                    kind: GenericKind::Request,
                    tag: tag.clone().into_bytes(),
                    payload: msg.into_bytes(),
                });
                (s.endpoint.send_to(s.now, cluster, dest, body), tag)
            })
            .await?;
        unicast_result(
            status,
            "GENERIC_MSG request",
            cluster,
            dest,
            json!({ "tag": tag }),
        )
    }

    async fn broadcast_mi(self: Arc<Self>, call: Call) -> MiResult {
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let command = p.string("cmd_name")?;
        let params = Self::cmd_params(&call)?;
        match &params {
            Ok(list) => {
                let mi = MiCmd {
                    command: command.clone(),
                    params: list.clone(),
                };
                if Self::encodable(&mi) {
                    let status = self
                        .handle
                        .call(move |s| s.endpoint.broadcast(s.now, cluster, RoutedBody::MiCmd(mi)))
                        .await?;
                    match status {
                        SendStatus::Success => {
                            tracing::debug!(%command, %cluster, "MI command broadcast")
                        }
                        SendStatus::CurrDisabled => {
                            tracing::info!(%command, %cluster, "local node disabled, MI command not sent")
                        }
                        SendStatus::DestDown => {
                            tracing::error!(%command, %cluster, "all nodes down, MI command not sent")
                        }
                        SendStatus::SendErr => {
                            tracing::error!(%command, %cluster, "error broadcasting MI command")
                        }
                    }
                } else {
                    tracing::error!(%command, "MI command too large for MI_CMD, not broadcast");
                }
            }
            Err(_) => {
                tracing::error!(%command, %cluster, "bad cmd_params, MI command not broadcast")
            }
        }
        // The local run answers, whatever happened on the cluster.
        let params = params?;
        call.dispatcher
            .run_positional(&command, params, Origin::Broadcast)
            .await
    }

    async fn list_cap(self: Arc<Self>, _call: Call) -> MiResult {
        Ok(self
            .handle
            .call(|s| {
                let clusters: Vec<Value> = s
                    .endpoint
                    .node()
                    .clusters()
                    .iter()
                    .map(|c| {
                        let caps: Vec<Value> = c
                            .capabilities()
                            .iter()
                            .map(|cap| {
                                json!({
                                    "name": cap.name(),
                                    "state": if cap.is_ok() { "Ok" } else { "not synced" },
                                    "enabled": if cap.enabled() { "yes" } else { "no" },
                                })
                            })
                            .collect();
                        json!({ "cluster_id": c.id().get(), "Capabilities": caps })
                    })
                    .collect();
                json!({ "Clusters": clusters })
            })
            .await?)
    }

    async fn set_cap_status(self: Arc<Self>, call: Call) -> MiResult {
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let capability = p.string("capability")?;
        let enabled = status(p.int("status")?)?;
        let r = self
            .handle
            .call(move |s| {
                s.endpoint
                    .set_capability_enabled(s.now, cluster, &capability, enabled)
            })
            .await?;
        match r {
            Ok(()) => ok(),
            Err(CapabilityError::UnknownCluster) => Err(MiError::new(404, "Cluster id not found")),
            Err(_) => Err(MiError::new(404, "Capability not found")),
        }
    }

    async fn list_shtags(self: Arc<Self>, _call: Call) -> MiResult {
        Ok(self
            .handle
            .call(|s| {
                // OpenSIPS prepends new tags to its list: newest first.
                let mut tags: Vec<Value> = s
                    .endpoint
                    .node()
                    .shtags()
                    .map(|(cluster, t)| {
                        json!({ "Tag": t.name(), "Cluster": cluster.get(), "State": t.state().name() })
                    })
                    .collect();
                tags.reverse();
                Value::Array(tags)
            })
            .await?)
    }

    async fn shtag_set_active(self: Arc<Self>, call: Call) -> MiResult {
        let tag = call.params.string("tag")?;
        let (name, cluster) = parse_tag(&tag)?;
        let Some(cluster) = ClusterId::new(cluster) else {
            return Err(MiError::new(404, "Cluster ID not found"));
        };
        let r = self
            .handle
            .call(move |s| {
                s.endpoint
                    .shtag_set_active(s.now, &name, cluster, ShtagReason::MiCommand)
            })
            .await?;
        match r {
            Ok(()) => ok(),
            Err(e @ ShtagError::ElectionMode) => Err(MiError::new(400, e.to_string())),
            Err(ShtagError::UnknownCluster) => Err(MiError::new(404, "Cluster ID not found")),
        }
    }

    async fn remove_node(self: Arc<Self>, call: Call) -> MiResult {
        if self.db_mode().await? == DbMode::Database {
            return Err(MiError::new(400, "Running in DB mode"));
        }
        let p = &call.params;
        let cluster = cluster_id(p.int("cluster_id")?)?;
        let known = self
            .handle
            .call(move |s| s.endpoint.node().cluster(cluster).is_some())
            .await?;
        if !known {
            return Err(MiError::new(400, "Unknown cluster id"));
        }
        let node = node_id(p.int("node_id")?, "node_id")?;
        let r = self
            .handle
            .call(move |s| s.endpoint.remove_node(s.now, cluster, node))
            .await?;
        match r {
            Ok(()) => ok(),
            Err(RemoveNodeError::DbMode) => Err(MiError::new(400, "Running in DB mode")),
            Err(RemoveNodeError::UnknownCluster) => Err(MiError::new(400, "Unknown cluster id")),
            Err(RemoveNodeError::UnknownNode) => Err(MiError::new(400, "Unknown node id")),
        }
    }
}

/// `name/cluster_id` → (name, cluster id), both trimmed. Errors: 400 `Bad tag format
/// <name/cluster_id>` without a `/` (or, unlike OpenSIPS, with an empty name), 400 `Bad
/// cluster ID in tag` when the id is not a decimal number.
fn parse_tag(tag: &str) -> Result<(String, u32), MiError> {
    let bad_format = || MiError::new(400, "Bad tag format <name/cluster_id>");
    let (name, cluster) = tag.split_once('/').ok_or_else(bad_format)?;
    let (name, cluster) = (name.trim(), cluster.trim());
    if name.is_empty() {
        return Err(bad_format());
    }
    let bad_id = || MiError::new(400, "Bad cluster ID in tag");
    if cluster.is_empty() || !cluster.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_id());
    }
    // Too large for a cluster id: no such cluster (OpenSIPS wraps it to a negative id).
    let id = cluster.parse::<u32>().unwrap_or(0);
    Ok((name.to_owned(), id))
}

/// The MI answer to a unicast send: `ok_value` when sent, OpenSIPS's texts otherwise.
fn unicast_result(
    status: SendStatus,
    what: &str,
    cluster: ClusterId,
    dest: NodeId,
    ok_value: Value,
) -> MiResult {
    match status {
        SendStatus::Success => {
            tracing::debug!(%cluster, %dest, "{what} sent");
            Ok(ok_value)
        }
        SendStatus::CurrDisabled => {
            tracing::info!(%cluster, "local node disabled, {what} not sent");
            Ok(Value::from("Local node disabled"))
        }
        SendStatus::DestDown => {
            tracing::error!(%cluster, %dest, "destination down, {what} not sent");
            Err(MiError::new(400, "Destination down"))
        }
        SendStatus::SendErr => {
            tracing::error!(%cluster, %dest, "error sending {what}");
            Err(MiError::new(400, "Send error"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_parsing() {
        assert_eq!(parse_tag("vip/1"), Ok(("vip".into(), 1)));
        assert_eq!(parse_tag(" vip / 12 "), Ok(("vip".into(), 12)));
        assert_eq!(
            parse_tag("vip"),
            Err(MiError::new(400, "Bad tag format <name/cluster_id>"))
        );
        assert_eq!(
            parse_tag("/1"),
            Err(MiError::new(400, "Bad tag format <name/cluster_id>"))
        );
        assert_eq!(
            parse_tag("vip/x"),
            Err(MiError::new(400, "Bad cluster ID in tag"))
        );
        assert_eq!(
            parse_tag("vip/"),
            Err(MiError::new(400, "Bad cluster ID in tag"))
        );
        assert_eq!(
            parse_tag("vip/-1"),
            Err(MiError::new(400, "Bad cluster ID in tag"))
        );
        assert_eq!(parse_tag("vip/99999999999"), Ok(("vip".into(), 0)));
    }

    #[test]
    fn value_checks() {
        assert_eq!(
            cluster_id(0),
            Err(MiError::new(400, "Bad value for 'cluster_id'"))
        );
        assert_eq!(
            node_id(-3, "destination"),
            Err(MiError::new(400, "Bad value for 'destination'"))
        );
        assert_eq!(status(2), Err(MiError::new(400, "Bad value for 'status'")));
        assert_eq!(status(1), Ok(true));
    }
}
