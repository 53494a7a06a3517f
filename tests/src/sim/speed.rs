//! The workload of the simulator speed measurements (`benches/sim_speed.rs` and the
//! `simspeed` binary): a full-mesh cluster with the default timers, all links UP, then
//! steady-state probing for a span of virtual time.
//!
//! The mesh is brought up one link at a time: every peer is provisioned disabled and each
//! pair is enabled administratively on both sides, 200 ms apart. Starting all 16 nodes at
//! once makes many links come up within milliseconds, and the resulting re-accepted floods
//! (docs/wire.md §8 seq-0 rule, quirk #15) grow into millions of packets; see the simulator
//! report in the repository history.

use clusterer_core::DbMode;

use crate::sim::{CLUSTER, Sim, SimOptions, full_mesh, nid};

/// A `nodes`-node full mesh, converged link by link, on the fastest simulator settings.
/// `None` if the links did not all come UP (a bug).
pub fn converged_mesh(nodes: u32, seed: u64) -> Option<Sim> {
    let mut sim = Sim::new(SimOptions::fast(seed));
    let mut configs = full_mesh(nodes, DbMode::Database);
    for c in &mut configs {
        for peer in &mut c.clusters.first_mut()?.nodes {
            peer.enabled = false;
        }
    }
    sim.add_nodes(configs).ok()?;
    for a in 1..=nodes {
        for b in a + 1..=nodes {
            for (x, y) in [(a, b), (b, a)] {
                sim.with_endpoint(nid(x), |ep, now| {
                    ep.set_status(now, CLUSTER, Some(nid(y)), true)
                })
                .ok()?
                .ok()?;
            }
            sim.run_for(200);
        }
    }
    let ids = sim.node_ids();
    let deadline = sim.now().plus(10_000);
    sim.run_until_cond(deadline, |s| s.links_all_up(CLUSTER, &ids))?;
    Some(sim)
}
