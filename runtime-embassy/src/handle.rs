//! The [`Handle`]: the module API a firmware application uses, from any task of the
//! runner's executor. Every call is one short critical section on the shared state and
//! wakes the runner to write what the call produced; none waits for the network.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use clusterer_core::capability::{Capability, CapabilityError, NodeMatch};
use clusterer_core::message::{GenericKind, GenericMsg, RoutedBody};
use clusterer_core::{
    ClusterId, LinkState, NodeId, Now, SendStatus, ShtagError, ShtagReason, ShtagState,
};
use clusterer_proto::Endpoint;
use clusterer_proto::endpoint::Counters;
use embassy_sync::pubsub::Subscriber;

use crate::state::{RawMutex, RuntimeCounters, Shared};
use crate::{EVENT_QUEUE, MAX_SUBSCRIBERS};

/// A subscription to the node's events (node up/down, sharing tag changed, message
/// received). A subscriber that falls more than [`EVENT_QUEUE`] events behind loses the
/// oldest ones and is told how many (`WaitResult::Lagged`).
pub type EventSubscriber =
    Subscriber<'static, RawMutex, clusterer_core::Event, EVENT_QUEUE, MAX_SUBSCRIBERS, 1>;

/// [`Handle::subscribe`] failed: [`MAX_SUBSCRIBERS`] subscriptions are alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooManySubscribers;

impl core::fmt::Display for TooManySubscribers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "at most {MAX_SUBSCRIBERS} event subscriptions may be alive"
        )
    }
}

impl core::error::Error for TooManySubscribers {}

/// One node of a cluster as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Node id.
    pub id: NodeId,
    /// The direct link's state.
    pub link_state: LinkState,
    /// The next hop toward it; `None` when it is unreachable.
    pub next_hop: Option<NodeId>,
    /// Administrative state.
    pub enabled: bool,
    /// Next-hop and election tie-breaker (lower preferred).
    pub priority: i32,
}

/// A cheap, copyable handle on a running node.
pub struct Handle<const SOCKETS: usize> {
    pub(crate) shared: &'static Shared<SOCKETS>,
    pub(crate) my_id: NodeId,
}

impl<const SOCKETS: usize> Clone for Handle<SOCKETS> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<const SOCKETS: usize> Copy for Handle<SOCKETS> {}

impl<const SOCKETS: usize> core::fmt::Debug for Handle<SOCKETS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle")
            .field("my_id", &self.my_id)
            .finish()
    }
}

impl<const SOCKETS: usize> Handle<SOCKETS> {
    /// The local node id.
    pub fn my_id(&self) -> NodeId {
        self.my_id
    }

    /// Every node of `cluster` this node knows (empty for an unknown cluster).
    pub fn nodes(&self, cluster: ClusterId) -> Vec<NodeState> {
        self.shared.with(|st| {
            let ids: Vec<(NodeId, LinkState, bool, i32)> = st
                .endpoint
                .node()
                .cluster(cluster)
                .map(|c| {
                    c.nodes()
                        .iter()
                        .map(|n| (n.id(), n.link_state(), n.enabled(), n.priority()))
                        .collect()
                })
                .unwrap_or_default();
            ids.into_iter()
                .map(|(id, link_state, enabled, priority)| NodeState {
                    id,
                    link_state,
                    next_hop: st.endpoint.next_hop(cluster, id),
                    enabled,
                    priority,
                })
                .collect()
        })
    }

    /// Sends a GENERIC_MSG (request or reply, with its exchange `tag`) to `dest`
    /// (`cluster_send_req` / `cluster_send_rpl`).
    pub fn send_generic(
        &self,
        cluster: ClusterId,
        dest: NodeId,
        kind: GenericKind,
        tag: &[u8],
        payload: &[u8],
    ) -> SendStatus {
        let body = generic(kind, tag, payload);
        self.shared
            .command(|ep, now| ep.send_to(now, cluster, dest, body))
    }

    /// Sends a GENERIC_MSG to every reachable node of `cluster`
    /// (`cluster_broadcast_req`).
    pub fn broadcast_generic(
        &self,
        cluster: ClusterId,
        kind: GenericKind,
        tag: &[u8],
        payload: &[u8],
    ) -> SendStatus {
        let body = generic(kind, tag, payload);
        self.shared
            .command(|ep, now| ep.broadcast(now, cluster, body))
    }

    /// A new exchange tag for a request (unique per node and cluster).
    pub fn generate_tag(&self, cluster: ClusterId) -> String {
        self.shared.command(|ep, _| ep.generate_tag(cluster))
    }

    /// The state of a sharing tag; `None` when it is not configured in `cluster`.
    pub fn shtag_get(&self, name: &str, cluster: ClusterId) -> Option<ShtagState> {
        self.shared
            .with(|st| st.endpoint.node().shtag_state(name, cluster))
    }

    /// Makes a sharing tag active here and announces it (the API call of
    /// `clusterer_shtag_set_active`).
    ///
    /// # Errors
    /// [`ShtagError`] from the node; nothing changed.
    pub fn shtag_set_active(&self, name: &str, cluster: ClusterId) -> Result<(), ShtagError> {
        self.shared
            .command(|ep, now| ep.shtag_set_active(now, name, cluster, ShtagReason::Api))
    }

    /// Subscribes to the node's events.
    ///
    /// # Errors
    /// [`TooManySubscribers`] when [`MAX_SUBSCRIBERS`] subscriptions are alive.
    pub fn subscribe(&self) -> Result<EventSubscriber, TooManySubscribers> {
        self.shared
            .events
            .subscriber()
            .map_err(|_| TooManySubscribers)
    }

    /// Registers a capability and its data path (`cl_register_cap`).
    ///
    /// # Errors
    /// [`CapabilityError`] from the node; nothing changed.
    pub fn register_capability(
        &self,
        cluster: ClusterId,
        name: &str,
        startup_sync: bool,
        condition: NodeMatch,
        handler: Box<dyn Capability>,
    ) -> Result<(), CapabilityError> {
        self.shared.command(|ep, now| {
            ep.register_capability(now, cluster, name, startup_sync, condition, handler)
        })
    }

    /// The endpoint's traffic and drop counters, and the runtime's own.
    pub fn counters(&self) -> (Counters, RuntimeCounters) {
        self.shared
            .with(|st| (st.endpoint.counters().clone(), st.counters))
    }

    /// Runs `f` on the endpoint (any command or query the methods above do not cover);
    /// what it produces is written afterwards.
    pub fn with_endpoint<R>(&self, f: impl FnOnce(&mut Endpoint, Now) -> R) -> R {
        self.shared.command(f)
    }
}

fn generic(kind: GenericKind, tag: &[u8], payload: &[u8]) -> RoutedBody {
    RoutedBody::GenericMsg(GenericMsg {
        kind,
        tag: tag.to_vec(),
        payload: payload.to_vec(),
    })
}
