//! Topology gossip (behaviour.md §4): LS_UPDATE and FULL_TOP_UPDATE handling with
//! (seq, timestamp) validation, the updates the local node originates, and flooding.

use alloc::vec::Vec;

use crate::cluster::{Cluster, LsVerdict};
use crate::config::DbMode;
use crate::id::NodeId;
use crate::link::LinkState;
use crate::message::{
    FullTopUpdate, Internal, InternalBody, LinkUpdate, LsUpdate, MAX_FLOOD_PATH_LEN, Message,
    NodeInfo, TopologyEntry,
};
use crate::node::Ctx;
use crate::output::{DropReason, Transmit, TransmitTo};
use crate::stamp::Freshness;

impl Ctx<'_> {
    /// LS_UPDATE (behaviour.md §4.2).
    pub(crate) fn handle_ls_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: LsUpdate,
    ) -> Result<(), DropReason> {
        // With db_mode 1 an update about a node we do not know is dropped (before its
        // counter is stored, so a FULL_TOP_UPDATE with the same state still applies). With
        // discovery the node is most likely being learned right now: keep the link (routes
        // ignore unknown ids) and flood, where OpenSIPS drops the update and the list stays
        // wrong while the links stay up.
        if u.neighbour != self.s.my_id
            && c.node(u.neighbour).is_none()
            && self.s.db_mode == DbMode::Database
        {
            return Err(DropReason::UnknownNeighbour);
        }
        let Some(o) = c.node_mut(origin) else {
            return Err(DropReason::UnknownSource);
        };
        let LsVerdict::Take { apply } = o.ls_verdict(u.seq, u.timestamp, u.neighbour) else {
            return Err(DropReason::StaleUpdate);
        };
        if !apply {
            // News for others (they may lack it), but older than what we know here.
        } else if u.neighbour == self.s.my_id {
            // A hint about our own link with the originator (§3.3).
            let state = o.link.state();
            let disagrees = match u.state {
                LinkUpdate::Up => state == LinkState::Down,
                LinkUpdate::Down => state == LinkState::Up,
            };
            if disagrees {
                self.set_link(c, origin, LinkState::RestartPinging);
            }
        } else {
            let changed = match u.state {
                LinkUpdate::Down => c.remove_link(origin, u.neighbour),
                LinkUpdate::Up => c.add_link(origin, u.neighbour),
            };
            if changed {
                self.refresh_reachability(c);
            }
        }
        let origin_id = origin;
        self.flood(c, origin_id, InternalBody::LsUpdate(u));
        Ok(())
    }

    /// FULL_TOP_UPDATE (behaviour.md §4.3).
    pub(crate) fn handle_full_top_update(
        &mut self,
        c: &mut Cluster,
        origin: NodeId,
        u: FullTopUpdate,
    ) -> Result<(), DropReason> {
        let Some(o) = c.node_mut(origin) else {
            return Err(DropReason::UnknownSource);
        };
        let restarted = match o.top.check(u.seq, u.timestamp, false) {
            Freshness::Fresh => false,
            Freshness::Restarted => true,
            Freshness::Stale | Freshness::Equal => return Err(DropReason::StaleUpdate),
        };
        let neighbour_restarted = restarted && o.link.state() == LinkState::Up;
        let me = self.s.my_id;
        // Learn described unknown nodes first, so neighbour lists may name them (db_mode 0).
        if self.s.db_mode == DbMode::Discovery {
            for e in &u.entries {
                if let Some(info) = &e.description
                    && e.node != me
                    && c.node(e.node).is_none()
                {
                    // A node that cannot be learned (full cluster, bad URL) is skipped.
                    let _ = self.learn_node(c, e.node, info);
                }
            }
        }
        for (index, e) in u.entries.iter().enumerate() {
            if e.node == me {
                continue;
            }
            let Some(n) = c.node_mut(e.node) else {
                continue;
            };
            // Every entry is validated, the originator's own too (OpenSIPS stores that one
            // unvalidated, quirk #15, which can lower the stored counter and re-open the
            // door to stale copies). An entry equal to what we hold is applied again: it
            // repairs a list that missed an update.
            // The originator's own list is authoritative for its counter: applied when not
            // older (an equal one repairs a list that missed an update) and it bounds which
            // older LS_UPDATEs still apply. Another node's list as the originator knows it is
            // applied only when newer.
            let third_party = index != 0;
            if restarted && !third_party && e.node == origin && e.ls_seq == -1 {
                // The originator restarted (its topology counter started again) and has not
                // sent an LS_UPDATE since (its entry says (−1, 0)): its own list is current,
                // whatever counter we hold from its previous life. Forget that counter, or
                // the list would be ignored until the new counter passes the old one
                // (quirk #13; a restarted node whose first link has no other neighbour to
                // tell sends no LS_UPDATE).
                n.restart_ls(u.timestamp);
            }
            let before = n.ls.seq;
            // A list we built from LS_UPDATEs alone (no full list since we learned of the
            // node: `ls_floor` < 0) misses the links that changed before; another node's
            // full list at the same counter repairs it (found by the simulation campaign:
            // a node that restarted learned a peer from its next LS_UPDATE only).
            let partial = n.ls_floor < 0;
            match n.ls.check(e.ls_seq, e.ls_timestamp, third_party) {
                Freshness::Stale => continue,
                Freshness::Equal if third_party && !partial => continue,
                how => n.ls_moved(how, before),
            }
            if !third_party || partial {
                n.ls_snapshot(e.ls_seq);
            }
            let mut listed_me = false;
            for &y in &e.neighbours {
                if y == me {
                    listed_me = true;
                } else if c.node(y).is_some() || self.s.db_mode == DbMode::Discovery {
                    c.add_link(e.node, y);
                }
            }
            if listed_me {
                let probe = c
                    .node(e.node)
                    .is_some_and(|n| n.link.state() == LinkState::Down && n.enabled);
                if probe {
                    self.set_link(c, e.node, LinkState::RestartPinging);
                }
            }
            let stale: Vec<NodeId> = c
                .node(e.node)
                .map(|n| {
                    n.adjacency
                        .iter()
                        .copied()
                        .filter(|z| *z != origin && !e.neighbours.contains(z))
                        .collect()
                })
                .unwrap_or_default();
            for z in stale {
                c.remove_link(e.node, z);
            }
        }
        self.refresh_reachability(c);
        self.flood(c, origin, InternalBody::FullTopUpdate(u));
        if neighbour_restarted {
            // A neighbour restarted while its link stayed UP here: no link-up procedure
            // runs on our side, so give it our view of the topology now.
            self.send_full_top_update(c, origin);
        }
        Ok(())
    }

    /// Forwards an accepted flooded update to every UP neighbour not in its path, with the
    /// local id appended; nothing when the received path is longer than 25 (wire.md §5).
    pub(crate) fn flood(&mut self, c: &mut Cluster, origin: NodeId, mut body: InternalBody) {
        let me = self.s.my_id;
        let Some(path) = body.path_mut() else { return };
        if path.len() > MAX_FLOOD_PATH_LEN {
            return;
        }
        path.push(me);
        let targets: Vec<NodeId> = c
            .up_neighbours()
            .map(|n| n.id)
            .filter(|id| body.path().is_some_and(|p| !p.contains(id)))
            .collect();
        for to in targets {
            let Some(n) = c.node(to) else { continue };
            let message = Message::Internal(Internal::new(c.id, origin, body.clone()));
            self.out.transmit(Transmit {
                cluster: c.id,
                to: TransmitTo::Node {
                    id: to,
                    address: n.address,
                },
                message,
            });
        }
    }

    /// Originates LS_UPDATE(neighbour, state) to every other UP neighbour; nothing (and no
    /// counter increment) when there is none.
    pub(crate) fn send_ls_update(&mut self, c: &mut Cluster, neighbour: NodeId, state: LinkUpdate) {
        let targets: Vec<NodeId> = c
            .up_neighbours()
            .map(|n| n.id)
            .filter(|&id| id != neighbour)
            .collect();
        if targets.is_empty() {
            // OpenSIPS leaves the counter alone when nobody is told. Once the counter has
            // gone out (seq ≥ 0) we count the change anyway: the FULL_TOP_UPDATE that
            // follows a link-up carries our entry with this counter, and a third party
            // that holds our previous counter (with the previous links) accepts the entry
            // only when the counter is newer. Without it a node's first link after losing
            // all others stayed unknown to third parties until some later change (found
            // by the simulation campaign, gossip-gap runs). Before that, seq 0 is kept for
            // the first LS_UPDATE on the wire: it tells peers that we restarted.
            if c.local.ls.seq >= 0 {
                c.local.ls.next(self.now.unix_wire());
            }
            return;
        }
        let stamp = c.local.ls.next(self.now.unix_wire());
        let u = LsUpdate {
            seq: stamp.seq,
            timestamp: stamp.timestamp,
            neighbour,
            state,
            path: alloc::vec![self.s.my_id],
        };
        for to in targets {
            self.send_internal(c, to, InternalBody::LsUpdate(u.clone()));
        }
    }

    /// Originates a FULL_TOP_UPDATE to a neighbour whose link just came UP (wire.md §7.4):
    /// the local node first (no description), then every other known node except the
    /// destination, described unless the destination listed it in its last PONG.
    pub(crate) fn send_full_top_update(&mut self, c: &mut Cluster, dest: NodeId) {
        let Some(d) = c.node(dest) else { return };
        let known_by_dest = d.pong_list.clone();
        let mut entries = Vec::with_capacity(c.nodes.len());
        entries.push(TopologyEntry {
            node: self.s.my_id,
            description: None,
            ls_seq: c.local.ls.seq,
            ls_timestamp: c.local.ls.timestamp,
            neighbours: c.local.adjacency.clone(),
        });
        for n in c.nodes.iter().filter(|n| n.id != dest) {
            let description = (!known_by_dest.contains(&n.id)).then(|| NodeInfo {
                url: n.url.clone(),
                sip_addr: n.sip_addr.clone(),
                priority: n.priority,
                no_ping_retries: i32::try_from(n.no_ping_retries).unwrap_or(i32::MAX),
            });
            // Our own link to the node is not in its stored list (lists never hold the
            // local node); add it when UP, as clusterer_list_topology does, or the receiver
            // and everyone it tells would drop that link from the node's list.
            let mut neighbours = n.adjacency.clone();
            if n.link.state() == LinkState::Up {
                neighbours.push(self.s.my_id);
            }
            entries.push(TopologyEntry {
                node: n.id,
                description,
                ls_seq: n.ls.seq,
                ls_timestamp: n.ls.timestamp,
                neighbours,
            });
        }
        let stamp = c.local.top.next(self.now.unix_wire());
        let u = FullTopUpdate {
            seq: stamp.seq,
            timestamp: stamp.timestamp,
            entries,
            path: alloc::vec![self.s.my_id],
        };
        self.send_internal(c, dest, InternalBody::FullTopUpdate(u));
    }
}
