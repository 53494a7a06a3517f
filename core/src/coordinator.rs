//! The cluster coordinator: where the state machines of one cluster meet the cluster.
//!
//! Each machine owns its state and talks to the world through a port trait of its own
//! (for sharing tags [`ShtagPort`]). The coordinator implements those ports over the
//! cluster — node table, routes, sends through the routing of behaviour.md §5.5, report
//! rings and events — so a machine never reaches into another machine's state and never
//! builds a packet. To run a machine it is taken out of the cluster for the call and put
//! back after (the port then has the rest of the cluster to itself).

use alloc::format;
use alloc::vec::Vec;

use crate::capability::ELECTION_CAPABILITY_PREFIX;
use crate::cluster::Cluster;
use crate::id::NodeId;
use crate::message::{BIN_VERSION, RoutedBody, ShtagActive};
use crate::node::Ctx;
use crate::output::Event;
use crate::send::SendStatus;
use crate::shtag::{Rank, SharingTags, ShtagPort, ShtagReason, ShtagState};
use crate::time::Instant;

/// The [`ShtagPort`] of one cluster.
struct ShtagCx<'a, 'b> {
    ctx: &'a mut Ctx<'b>,
    c: &'a mut Cluster,
}

impl ShtagPort for ShtagCx<'_, '_> {
    fn now(&self) -> Instant {
        self.ctx.now.instant
    }

    fn local_enabled(&self) -> bool {
        self.c.local.enabled
    }

    fn local_rank(&self) -> Rank {
        (false, self.c.local.priority, self.ctx.s.my_id)
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.c.nodes.iter().map(|n| n.id).collect()
    }

    fn reachable(&mut self) -> Vec<NodeId> {
        self.c.reachable_nodes(self.ctx.s.rerouting)
    }

    fn rank(&self, tag: &str, node: NodeId) -> Option<Rank> {
        let n = self.c.node(node)?;
        let advert = format!("{ELECTION_CAPABILITY_PREFIX}{tag}");
        let eligible = n.capabilities.iter().any(|r| r.name == advert && r.ok);
        Some((!eligible, n.priority, node))
    }

    fn announce(&mut self, tag: &str, to: NodeId) -> SendStatus {
        let body = RoutedBody::ShtagActive(ShtagActive { tag: tag.into() });
        self.ctx.send_one(self.c, to, BIN_VERSION, body)
    }

    fn changed(&mut self, tag: &str, state: ShtagState, reason: ShtagReason) {
        let text = format!(
            "TAG <{tag}>, cluster {}, became {} due to {reason}",
            self.c.id,
            state.name()
        );
        self.ctx
            .out
            .shtag_reports
            .push(self.ctx.now.unix_time, text);
        self.ctx.out.event(Event::ShtagChanged {
            name: tag.into(),
            cluster: self.c.id,
            state,
            reason: format!("{reason}"),
        });
    }
}

impl Ctx<'_> {
    /// Runs `f` on the cluster's sharing tags with the cluster as their port.
    pub(crate) fn with_shtags<R>(
        &mut self,
        c: &mut Cluster,
        f: impl FnOnce(&mut SharingTags, &mut dyn ShtagPort) -> R,
    ) -> R {
        let mut tags = core::mem::take(&mut c.shtags);
        let r = f(&mut tags, &mut ShtagCx { ctx: self, c });
        c.shtags = tags;
        r
    }
}
