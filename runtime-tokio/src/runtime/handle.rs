//! [`Handle`]: the cloneable API of a running engine — the module API of OpenSIPS'
//! clusterer (get_nodes, send_to, send_all, next_hop, set_state, check_addr, capabilities,
//! sync, sharing tags, GENERIC_MSG requests and replies) plus event subscription.

use std::fmt;
use std::net::SocketAddr;

use clusterer_core::capability::{Capability, CapabilityError, NodeMatch};
use clusterer_core::message::{GenericKind, GenericMsg, ModulePacket, RoutedBody};
use clusterer_core::send::AddrKind;
use clusterer_core::shtag::{ShtagError, ShtagReason, ShtagState};
use clusterer_core::sync::RequestSync;
use clusterer_core::{ClusterId, Event, LinkState, NodeId, SendStatus, SetStatusError};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Command, EngineState};

/// The engine has stopped; the command was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the clusterer engine has stopped")
    }
}

impl std::error::Error for Stopped {}

/// A node as the `get_nodes` API describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSummary {
    /// Node id.
    pub id: NodeId,
    /// BIN URL.
    pub url: String,
    /// SIP address.
    pub sip_addr: String,
    /// Priority.
    pub priority: i32,
    /// Direct link state.
    pub link_state: LinkState,
    /// Next hop, `None` when unreachable.
    pub next_hop: Option<NodeId>,
    /// Administrative state.
    pub enabled: bool,
}

/// A cheap, cloneable handle on a running engine. Every method is a message to the engine
/// task; none blocks it.
#[derive(Clone, Debug)]
pub struct Handle {
    cmd: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    my_id: NodeId,
    listen: Vec<SocketAddr>,
}

impl Handle {
    pub(crate) fn new(
        cmd: mpsc::Sender<Command>,
        events: broadcast::Sender<Event>,
        my_id: NodeId,
        listen: Vec<SocketAddr>,
    ) -> Self {
        Handle {
            cmd,
            events,
            my_id,
            listen,
        }
    }

    /// Runs `f` on the engine task with the endpoint and the current time, and returns its
    /// result. Transmits and events produced by `f` are flushed afterwards.
    ///
    /// # Errors
    /// [`Stopped`] when the engine is gone.
    pub async fn call<R, F>(&self, f: F) -> Result<R, Stopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut EngineState<'_>) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let call = Box::new(move |state: &mut EngineState<'_>| {
            let _ = tx.send(f(state));
        });
        self.cmd
            .send(Command::Call(call))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Receives every event from now on (node state changes, sharing tags, received
    /// GENERIC_MSG and MI_CMD). A subscriber that falls more than
    /// [`EVENT_CHANNEL_CAPACITY`](super::EVENT_CHANNEL_CAPACITY) events behind loses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The local node id (`my_id`).
    pub fn my_id(&self) -> NodeId {
        self.my_id
    }

    /// The addresses the BIN listeners are bound to.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// Stops the engine: listeners and connections close, the task ends.
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(Command::Shutdown).await;
    }

    /// Every node of the cluster this node knows, reachable or not (empty for an unknown
    /// cluster), in the node table's order.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn known_nodes(&self, cluster: ClusterId) -> Result<Vec<NodeSummary>, Stopped> {
        self.call(move |s| {
            let ids: Vec<NodeId> = s
                .endpoint
                .node()
                .cluster(cluster)
                .map(|c| c.nodes().iter().map(|n| n.id()).collect())
                .unwrap_or_default();
            // The route cache may be refreshed here, so every hop comes before the reads.
            let hops: Vec<Option<NodeId>> = ids
                .iter()
                .map(|&id| s.endpoint.next_hop(cluster, id))
                .collect();
            let Some(c) = s.endpoint.node().cluster(cluster) else {
                return Vec::new();
            };
            c.nodes()
                .iter()
                .zip(hops)
                .map(|(n, next_hop)| NodeSummary {
                    id: n.id(),
                    url: n.url().into(),
                    sip_addr: n.sip_addr().into(),
                    priority: n.priority(),
                    link_state: n.link_state(),
                    next_hop,
                    enabled: n.enabled(),
                })
                .collect()
        })
        .await
    }

    /// `get_nodes`: every reachable node of the cluster (empty for an unknown cluster).
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn get_nodes(&self, cluster: ClusterId) -> Result<Vec<NodeSummary>, Stopped> {
        let mut nodes = self.known_nodes(cluster).await?;
        nodes.retain(|n| n.next_hop.is_some());
        Ok(nodes)
    }

    /// `get_next_hop`.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn next_hop(
        &self,
        cluster: ClusterId,
        node: NodeId,
    ) -> Result<Option<NodeId>, Stopped> {
        self.call(move |s| s.endpoint.next_hop(cluster, node)).await
    }

    /// `send_to` for a module packet.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn send_to(
        &self,
        cluster: ClusterId,
        dest: NodeId,
        version: i16,
        packet: ModulePacket,
    ) -> Result<SendStatus, Stopped> {
        self.call(move |s| {
            s.endpoint.send_to_with_version(
                s.now,
                cluster,
                dest,
                version,
                RoutedBody::Module(packet),
            )
        })
        .await
    }

    /// `send_all` / `send_all_having` for a module packet.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn send_all(
        &self,
        cluster: ClusterId,
        matching: NodeMatch,
        version: i16,
        packet: ModulePacket,
    ) -> Result<SendStatus, Stopped> {
        self.call(move |s| {
            s.endpoint.broadcast_matching(
                s.now,
                cluster,
                matching,
                version,
                RoutedBody::Module(packet),
            )
        })
        .await
    }

    /// `set_state`: enables or disables a node (`None` = the local node).
    ///
    /// # Errors
    /// [`Stopped`]; the inner result is the node's answer.
    pub async fn set_state(
        &self,
        cluster: ClusterId,
        node: Option<NodeId>,
        enabled: bool,
    ) -> Result<Result<(), SetStatusError>, Stopped> {
        self.call(move |s| s.endpoint.set_status(s.now, cluster, node, enabled))
            .await
    }

    /// `cluster_check_addr`.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn check_addr(
        &self,
        cluster: ClusterId,
        addr: String,
        kind: AddrKind,
    ) -> Result<Option<bool>, Stopped> {
        self.call(move |s| s.endpoint.node().check_addr(cluster, &addr, kind))
            .await
    }

    /// Registers a capability (`register_capability`).
    ///
    /// # Errors
    /// [`Stopped`]; the inner result is the node's answer.
    pub async fn register_capability(
        &self,
        cluster: ClusterId,
        name: String,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Result<Result<(), CapabilityError>, Stopped> {
        self.call(move |s| {
            s.endpoint
                .register_capability(s.now, cluster, &name, startup_sync, condition, handler)
        })
        .await
    }

    /// `request_sync`.
    ///
    /// # Errors
    /// [`Stopped`]; the inner result is the node's answer.
    pub async fn request_sync(
        &self,
        cluster: ClusterId,
        capability: String,
    ) -> Result<Result<RequestSync, CapabilityError>, Stopped> {
        self.call(move |s| s.endpoint.request_sync(s.now, cluster, &capability))
            .await
    }

    /// `get_my_index`: (index, count) among the local node and the reachable nodes with the
    /// capability synced.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn my_index(
        &self,
        cluster: ClusterId,
        capability: String,
    ) -> Result<Option<(usize, usize)>, Stopped> {
        self.call(move |s| s.endpoint.my_index(cluster, &capability))
            .await
    }

    /// The state of a sharing tag.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn shtag_get(
        &self,
        name: String,
        cluster: ClusterId,
    ) -> Result<Option<ShtagState>, Stopped> {
        self.call(move |s| s.endpoint.node().shtag_state(&name, cluster))
            .await
    }

    /// Makes a sharing tag active and announces it.
    ///
    /// # Errors
    /// [`Stopped`]; the inner result is the node's answer.
    pub async fn shtag_set_active(
        &self,
        name: String,
        cluster: ClusterId,
        reason: ShtagReason,
    ) -> Result<Result<(), ShtagError>, Stopped> {
        self.call(move |s| s.endpoint.shtag_set_active(s.now, &name, cluster, reason))
            .await
    }

    /// `cluster_send_req`: a GENERIC_MSG request with a new exchange tag; returns the send
    /// status and the tag.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn send_req(
        &self,
        cluster: ClusterId,
        dest: NodeId,
        message: Vec<u8>,
    ) -> Result<(SendStatus, String), Stopped> {
        self.call(move |s| {
            let tag = s.endpoint.generate_tag(cluster);
            let body = generic(GenericKind::Request, tag.clone().into_bytes(), message);
            (s.endpoint.send_to(s.now, cluster, dest, body), tag)
        })
        .await
    }

    /// `cluster_send_rpl`: a GENERIC_MSG reply carrying the request's tag.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn send_rpl(
        &self,
        cluster: ClusterId,
        dest: NodeId,
        message: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<SendStatus, Stopped> {
        self.call(move |s| {
            s.endpoint.send_to(
                s.now,
                cluster,
                dest,
                generic(GenericKind::Reply, tag, message),
            )
        })
        .await
    }

    /// `cluster_broadcast_req`: a GENERIC_MSG request to every node (and to the local node
    /// with `include_self`); returns the status and the tag.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn broadcast_req(
        &self,
        cluster: ClusterId,
        message: Vec<u8>,
        include_self: bool,
    ) -> Result<(SendStatus, String), Stopped> {
        self.call(move |s| {
            let tag = s.endpoint.generate_tag(cluster);
            let body = generic(GenericKind::Request, tag.clone().into_bytes(), message);
            let matching = if include_self {
                NodeMatch::All
            } else {
                NodeMatch::Any
            };
            (
                s.endpoint
                    .broadcast_matching(s.now, cluster, matching, 1, body),
                tag,
            )
        })
        .await
    }
}

fn generic(kind: GenericKind, tag: Vec<u8>, payload: Vec<u8>) -> RoutedBody {
    RoutedBody::GenericMsg(GenericMsg { kind, tag, payload })
}
