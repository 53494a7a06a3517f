//! Topology scenarios on the deterministic simulator (docs/behaviour.md §3 link probing, §4 gossip,
//! §5 routing, §6 events, §8 discovery), each over several seeds. A failure prints the seed,
//! the state of every node and the tail of the trace; rerun with that seed to replay it.
//!
//! Timers are the OpenSIPS defaults unless stated: ping_interval I = 4 s, ping_timeout
//! T = 1000 ms, node_timeout N = 60 s, no_ping_retries R = 3, heartbeat tick = gcd = 1 s.
//!
//! Two network settings ([`Net`]): *jittery* links (1–5 ms per link plus up to 2 ms jitter),
//! where flooded copies overtake each other, and *uniform* links (2 ms everywhere, no
//! jitter). On both, every node must end with exactly every other node's adjacency list.
//! OpenSIPS's gossip does not guarantee that when floods reorder (a late copy of a first,
//! seq 0, update is taken as a restart; the FULL_TOP_UPDATE's first entry is stored
//! unvalidated, quirk #15; an LS_UPDATE overtaken by a newer one about another link is
//! dropped as stale); the core fixes each (`SeqStamp::check`, `RemoteNode::ls_verdict`),
//! found with these scenarios. `SIM_SEEDS=n` replays more seeds (helpers in
//! `clusterer_tests::sim::scenario`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use clusterer_core::message::{GenericKind, GenericMsg, RoutedBody};
use clusterer_core::{Config, DbMode, Event, Instant, LinkState, NodeId, SendStatus};
use clusterer_tests::sim::scenario::{
    converge, ensure, fail, no_violations, seeds, start_staggered,
};
use clusterer_tests::sim::{
    CLUSTER, LatencyModel, PacketFate, Sim, SimOptions, SimRng, TopologyMismatch, TraceMode,
    full_mesh, nid, node_config,
};

/// `ping_interval` (ms).
const I: u64 = 4_000;
/// `ping_timeout` (ms).
const T: u64 = 1_000;
/// `node_timeout` (ms).
const N: u64 = 60_000;
/// `no_ping_retries`.
const R: u64 = 3;
/// Heartbeat period: gcd(I, T, N).
const TICK: u64 = 1_000;

/// The network a scenario runs on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    /// 1–5 ms per link (fixed per pair) plus 0–2 ms jitter per packet.
    Jittery,
    /// 2 ms on every link, no jitter.
    Uniform,
}

fn sim(seed: u64, net: Net) -> Sim {
    let mut o = SimOptions::new(seed);
    if net == Net::Uniform {
        o.latency = LatencyModel::fixed(2);
    }
    Sim::new(o)
}

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

fn ids(range: std::ops::RangeInclusive<u32>) -> Vec<NodeId> {
    range.map(nid).collect()
}

/// The next heartbeat tick of `node` at or after `t` (ticks are one period apart from the
/// node's start; `poll_timeout` gives their phase).
fn tick_at_or_after(sim: &Sim, node: NodeId, t: Instant) -> Instant {
    let phase = sim.endpoint(node).unwrap().poll_timeout().as_millis() % TICK;
    let t = t.as_millis();
    let base = t - t % TICK + phase;
    ms(if base >= t { base } else { base + TICK })
}

fn generic(payload: &[u8]) -> RoutedBody {
    RoutedBody::GenericMsg(GenericMsg {
        kind: GenericKind::Request,
        tag: b"1-1-simtag".to_vec(),
        payload: payload.to_vec(),
    })
}

fn received_generic(sim: &Sim, at: NodeId, from: NodeId, payload: &[u8]) -> bool {
    sim.received(at).iter().any(|e| {
        matches!(&e.event, Event::Received { source, body: RoutedBody::GenericMsg(m), .. }
            if *source == from && m.payload == payload)
    })
}

fn hops_of(sim: &Sim, kind: &str, since: Instant) -> Vec<(NodeId, NodeId)> {
    sim.packets()
        .iter()
        .filter(|p| p.at >= since && p.kind == kind && p.fate == PacketFate::Sent)
        .map(|p| (p.from, p.to))
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. A line A–B–C

#[test]
fn line_of_three_routes_a_to_c_through_b() {
    for seed in seeds(1) {
        let mut sim = sim(seed, Net::Jittery);
        let (a, b, c) = (nid(1), nid(2), nid(3));
        // All three are provisioned (db_mode 1); the A–C pair never gets through.
        sim.partition(a, c);
        start_staggered(&mut sim, full_mesh(3, DbMode::Database));
        // A's probes of C are lost: PING at the first tick, then R retries T apart, then
        // DOWN: (R + 1) × T after the first tick ≤ 1 s start + 1 s tick + 4 s + a tick.
        let deadline = ms(8_000);
        let done = sim.run_until_cond(deadline, |s| {
            s.links_all_up(CLUSTER, &[a, b])
                && s.links_all_up(CLUSTER, &[b, c])
                && s.link_state(a, CLUSTER, c) == Some(LinkState::Down)
                && s.link_state(c, CLUSTER, a) == Some(LinkState::Down)
        });
        ensure(&sim, done.is_some(), || "line did not form".into());

        // clusterer_list on A: C is not linked directly, its next hop is B.
        let hop = sim.next_hop(a, CLUSTER, c);
        let list = sim.node(a).unwrap().cluster(CLUSTER).unwrap();
        let row = list.node(c).unwrap();
        ensure(&sim, row.link_state().mi_name() == "Down", || {
            format!("A lists C with link {:?}", row.link_state())
        });
        ensure(&sim, hop == Some(b), || format!("next hop A→C is {hop:?}"));
        let (ab, ca) = (sim.next_hop(a, CLUSTER, b), sim.next_hop(c, CLUSTER, a));
        ensure(&sim, ab == Some(b) && ca == Some(b), || {
            format!("A→B {ab:?}, C→A {ca:?}")
        });

        // A GENERIC_MSG from A to C travels A→B→C; B counts one relay.
        let relayed = sim.endpoint(b).unwrap().counters().relayed;
        let sent_at = sim.now();
        let status = sim.send_to(a, CLUSTER, c, generic(b"over B")).unwrap();
        ensure(&sim, status == SendStatus::Success, || {
            format!("send_to: {status:?}")
        });
        sim.run_for(100);
        ensure(&sim, received_generic(&sim, c, a, b"over B"), || {
            "C did not receive the message".into()
        });
        let hops = hops_of(&sim, "GENERIC_MSG", sent_at);
        ensure(&sim, hops == [(a, b), (b, c)], || format!("hops {hops:?}"));
        let now_relayed = sim.endpoint(b).unwrap().counters().relayed;
        ensure(&sim, now_relayed == relayed + 1, || {
            format!("B relayed {relayed} → {now_relayed}")
        });
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 2. A peer dies

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Death {
    /// The process is gone: connects are refused, pings fail at once.
    Crash,
    /// The process is frozen: connects succeed, pings are never answered.
    Freeze,
}

/// Five nodes, all UP; one dies at a random phase of the heartbeat. Checks, for every peer
/// P, the time its link reaches DOWN, the time it raises NODE_DOWN, and the re-probe.
fn peer_death(death: Death, scenario: u64) {
    for seed in seeds(scenario) {
        let mut sim = sim(seed, Net::Jittery);
        let mut rng = SimRng::new(seed);
        let all = start_staggered(&mut sim, full_mesh(5, DbMode::Database));
        converge(&mut sim, &all);
        sim.run_for(rng.range(0, 5_000));
        let dead = *rng.pick(&all).unwrap();
        let peers: Vec<NodeId> = all.iter().copied().filter(|&p| p != dead).collect();
        let died = sim.now();
        match death {
            Death::Crash => sim.crash(dead).unwrap(),
            Death::Freeze => sim.pause(dead).unwrap(),
        }

        // Watch every step until the re-probes are due: the link-DOWN time of each peer.
        let mut down_at: BTreeMap<NodeId, Instant> = BTreeMap::new();
        let end = died.plus(I + T * (R + 1) + N + 3 * TICK);
        while sim.next_time().is_some_and(|t| t <= end) {
            sim.step();
            for &p in &peers {
                if !down_at.contains_key(&p)
                    && sim.link_state(p, CLUSTER, dead) == Some(LinkState::Down)
                {
                    down_at.insert(p, sim.now());
                }
            }
        }

        for &p in &peers {
            let pings: Vec<Instant> = sim
                .packets()
                .iter()
                .filter(|r| r.from == p && r.to == dead && r.kind == "PING" && r.at >= died)
                .map(|r| r.at)
                .collect();
            let Some(&first_ping) = pings.first() else {
                fail(&sim, &format!("n{p} never pinged the dead n{dead}"));
            };
            let Some(&down) = down_at.get(&p) else {
                fail(&sim, &format!("n{p}'s link to n{dead} never reached DOWN"));
            };
            // Link DOWN: the first PING after the death is a keep-alive (UP link) or a
            // retry already under way; after it at most R retries follow, each one tick
            // after since_ping ≥ T, and the tick after the last one (or the refusal of the
            // last one) declares DOWN: first_ping + T × (R + 1), plus one tick of
            // quantisation.
            let bound = first_ping.plus(T * (R + 1) + TICK);
            ensure(&sim, down <= bound, || {
                format!(
                    "n{p}: link to n{dead} DOWN at {down}, bound {bound} (first ping {first_ping})"
                )
            });

            // NODE_DOWN: every peer sends its keep-alive within I after the death (UP
            // links are pinged every I without traffic); it fails at once (crash) or after
            // T with no PONG (freeze), which takes that peer's link out of the topology;
            // its LS_UPDATE(DOWN) reaches the others within milliseconds. Once every peer
            // has dropped its link, nobody lists the dead node and it is unreachable:
            // death + I + T × (R + 1) + 2 ticks covers this with room for the retries
            // of a peer that was mid-probe.
            let downs: Vec<_> = sim
                .node_state_changes()
                .into_iter()
                .filter(|e| e.observer == p && e.node == dead && e.at >= died)
                .collect();
            ensure(&sim, downs.len() == 1 && !downs[0].up, || {
                format!("n{p}: state changes for n{dead}: {downs:?}")
            });
            let bound = died.plus(I + T * (R + 1) + 2 * TICK);
            ensure(&sim, downs[0].at <= bound, || {
                format!("n{p}: NODE_DOWN at {}, bound {bound}", downs[0].at)
            });

            // Re-probe: rule 4 pings a DOWN node at the first tick with since_ping ≥
            // min(I, N) (OpenSIPS: N), after the last PING that preceded DOWN, quantised to
            // p's tick.
            let last = *pings.iter().filter(|&&t| t <= down).max().unwrap();
            let reprobe = pings.iter().copied().find(|&t| t > down);
            let expected = tick_at_or_after(&sim, p, last.plus(I.min(N)));
            ensure(&sim, reprobe == Some(expected), || {
                format!("n{p}: re-probe at {reprobe:?}, expected {expected} (last ping {last})")
            });
        }
        no_violations(&sim);
    }
}

#[test]
fn crashed_peer_is_declared_down_by_every_peer_and_reprobed() {
    peer_death(Death::Crash, 2);
}

#[test]
fn frozen_peer_is_declared_down_by_every_peer_and_reprobed() {
    peer_death(Death::Freeze, 3);
}

/// Whether every node of `among` has a next hop to every other one.
fn all_reachable(sim: &mut Sim, among: &[NodeId]) -> bool {
    sim.next_hops(CLUSTER, among).values().all(Option::is_some)
}

fn show(mismatches: &[TopologyMismatch]) -> String {
    mismatches
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until every link among `nodes` is UP and every node reaches every other; with
/// `topology`, also until every node stores every other node's current list.
fn recover(sim: &mut Sim, nodes: &[NodeId], within: u64, topology: bool, what: &str) {
    let deadline = sim.now().plus(within);
    let done = sim.run_until_cond(deadline, |s| {
        s.links_all_up(CLUSTER, nodes)
            && all_reachable(s, nodes)
            && (!topology || s.topology_mismatches(CLUSTER, nodes).is_empty())
    });
    ensure(sim, done.is_some(), || {
        format!("{what}: {}", show(&sim.topology_mismatches(CLUSTER, nodes)))
    });
}

#[test]
fn frozen_peer_comes_back_after_resume() {
    for seed in seeds(4) {
        let mut sim = sim(seed, Net::Jittery);
        let mut rng = SimRng::new(seed);
        let all = start_staggered(&mut sim, full_mesh(4, DbMode::Database));
        converge(&mut sim, &all);
        let frozen = *rng.pick(&all).unwrap();
        sim.pause(frozen).unwrap();
        sim.run_for(rng.range(2_000, 90_000));
        sim.resume(frozen).unwrap();
        // The resumed node answers the backlog and its own timers run at once; a peer
        // whose link is DOWN gets a PING from it (keep-alive or probe) within I + a tick
        // and answers it with a PONG plus an immediate probe (§3.3), so everything is UP
        // again well before a node_timeout: allow I + T × (R + 1) + 2 ticks.
        recover(
            &mut sim,
            &all,
            I + T * (R + 1) + 2 * TICK,
            false,
            "after resume",
        );
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Partition and heal

/// Six nodes split 3/3, then healed. Returns the simulation right after the heal.
fn split_and_heal(sim: &mut Sim, seed: u64) -> Vec<NodeId> {
    let mut rng = SimRng::new(seed);
    let all = start_staggered(sim, full_mesh(6, DbMode::Database));
    converge(sim, &all);
    sim.run_for(rng.range(0, 4_000));
    let left = ids(1..=3);
    let right = ids(4..=6);
    sim.split(&[&left, &right]);
    let split_at = sim.now();

    // Every cross link fails its keep-alive within I and is DOWN after R more retries
    // (T apart); NODE_DOWN follows as for a dead peer: I + T × (R + 1) + 2 ticks.
    sim.run_until(split_at.plus(I + T * (R + 1) + 2 * TICK));
    for (side, other) in [(&left, &right), (&right, &left)] {
        ensure(sim, sim.links_all_up(CLUSTER, side), || {
            "a side lost an internal link".into()
        });
        let reachable = all_reachable(sim, side);
        ensure(sim, reachable, || "a side lost a route".into());
        for &a in side.iter() {
            for &b in other.iter() {
                let hop = sim.next_hop(a, CLUSTER, b);
                ensure(sim, hop.is_none(), || {
                    format!("n{a} still routes to n{b} via {hop:?}")
                });
                let down = sim
                    .node_state_changes()
                    .into_iter()
                    .any(|e| e.observer == a && e.node == b && !e.up && e.at >= split_at);
                ensure(sim, down, || format!("n{a} raised no NODE_DOWN for n{b}"));
            }
        }
    }
    // Heal before or after the first re-probe (N after the last failed ping).
    sim.run_for(rng.range(0, 80_000));
    sim.heal_all();
    all
}

/// Bound after the heal: each cross link is DOWN (re-probed every N after its last ping,
/// which is before the heal) or still retrying; the next PING that crosses is at most N
/// after the heal; the peer answers it (and, if DOWN, probes back at once, §3.3), so the
/// link is UP a few milliseconds later, and LS_UPDATE / FULL_TOP_UPDATE converge the stored
/// lists within milliseconds more. N + 2 × I leaves a keep-alive round of room.
const HEAL_BOUND: u64 = N + 2 * I;

#[test]
fn partition_3_3_isolates_the_sides_and_heals_to_one_topology() {
    for seed in seeds(5) {
        let mut sim = sim(seed, Net::Uniform);
        let all = split_and_heal(&mut sim, seed);
        recover(&mut sim, &all, HEAL_BOUND, true, "after heal");
        // And it stays that way.
        sim.run_for(2 * I);
        let mismatches = sim.topology_mismatches(CLUSTER, &all);
        ensure(
            &sim,
            sim.links_all_up(CLUSTER, &all) && mismatches.is_empty(),
            || format!("converged state did not hold: {}", show(&mismatches)),
        );
        no_violations(&sim);
    }
}

#[test]
fn partition_3_3_heals_on_jittery_links() {
    for seed in seeds(12) {
        let mut sim = sim(seed, Net::Jittery);
        let all = split_and_heal(&mut sim, seed);
        recover(&mut sim, &all, HEAL_BOUND, true, "after heal");
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Discovery

#[test]
fn discovery_chain_of_ten_learns_every_node() {
    for seed in seeds(6) {
        let mut sim = sim(seed, Net::Jittery);
        // Node 1 is the seed and knows nobody; node i knows node i − 1 only.
        let configs: Vec<Config> = (1..=10u32)
            .map(|i| {
                let peers: Vec<u32> = if i == 1 { vec![] } else { vec![i - 1] };
                node_config(i, &peers, DbMode::Discovery)
            })
            .collect();
        let all = start_staggered(&mut sim, configs);
        // Each hop of the chain costs a probe round (PING, UNKNOWN_ID, NODE_DESCRIPTION,
        // probing restarts at the next tick); FULL_TOP_UPDATE descriptions then teach
        // everything at once. A minute is ample.
        let deadline = ms(60_000);
        let done = sim.run_until_cond(deadline, |s| {
            all.iter().all(|&n| s.known_nodes(n, CLUSTER).len() == 9)
                && s.links_all_up(CLUSTER, &all)
        });
        ensure(&sim, done.is_some(), || "discovery did not complete".into());
        let hops = sim.next_hops(CLUSTER, &all);
        ensure(&sim, hops.iter().all(|((_, b), h)| *h == Some(*b)), || {
            format!("not every next hop is direct: {hops:?}")
        });
        sim.run_for(2 * I);
        let mismatches = sim.topology_mismatches(CLUSTER, &all);
        ensure(&sim, mismatches.is_empty(), || {
            format!("topology differs: {}", show(&mismatches))
        });
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Restart

#[test]
fn restarted_node_is_accepted_again_by_every_peer() {
    for seed in seeds(7) {
        let mut sim = sim(seed, Net::Uniform);
        let mut rng = SimRng::new(seed);
        let all = start_staggered(&mut sim, full_mesh(5, DbMode::Database));
        converge(&mut sim, &all);
        sim.run_for(rng.range(0, 10_000));
        let x = *rng.pick(&all).unwrap();
        sim.crash(x).unwrap();
        // Down for less than a keep-alive round (peers may not notice) up to long after
        // the peers declared it DOWN.
        sim.run_for(rng.range(500, 30_000));
        sim.restart(x).unwrap();
        // The restarted node pings everyone at its first tick (1 s); a peer that still has
        // it UP answers, a peer that has it DOWN answers and probes back at once (§3.3).
        // Its updates restart at seq 0, which peers accept (docs/wire.md §8), so every peer
        // learns its new list. Allow a keep-alive round plus the retries.
        let deadline = sim.now().plus(I + T * (R + 1) + 2 * TICK);
        // The restarted node itself may keep empty lists for its peers: a peer that never
        // saw the link go down runs no link-up procedure, so it sends no FULL_TOP_UPDATE
        // (§3.4), and nothing else in the protocol tells the restarted node (see the
        // report). Every other list must agree.
        let done = sim.run_until_cond(deadline, |s| {
            s.links_all_up(CLUSTER, &all)
                && all_reachable(s, &all)
                && s.topology_mismatches(CLUSTER, &all)
                    .iter()
                    .all(|m| m.observer == x)
        });
        ensure(&sim, done.is_some(), || {
            format!(
                "peers did not accept n{x} again: {}",
                show(&sim.topology_mismatches(CLUSTER, &all))
            )
        });
        no_violations(&sim);
    }
}

/// Flaps `x`'s link to `y` administratively (disable, enable): `x` sends LS_UPDATE(DOWN)
/// then, once the link is UP again, LS_UPDATE(UP), so its ls counter moves by two.
fn flap(sim: &mut Sim, x: NodeId, y: NodeId) {
    sim.with_endpoint(x, |ep, now| {
        ep.set_status(now, CLUSTER, Some(y), false).unwrap();
        ep.set_status(now, CLUSTER, Some(y), true).unwrap();
    })
    .unwrap();
}

#[test]
fn restarted_node_is_accepted_by_a_peer_that_missed_its_first_updates() {
    for seed in seeds(8) {
        let mut sim = sim(seed, Net::Uniform);
        let mut rng = SimRng::new(seed);
        let all = start_staggered(&mut sim, full_mesh(4, DbMode::Database));
        converge(&mut sim, &all);
        let (p, x) = (nid(1), nid(4));
        let others = [nid(2), nid(3)];
        // Some history first, so x's counters are well above 0 at the crash: x loses its
        // links to the others for a while.
        for &o in &others {
            sim.partition(x, o);
        }
        sim.run_for(I + T * (R + 1) + 2 * TICK);
        sim.heal_all();
        recover(&mut sim, &all, HEAL_BOUND, true, "before the crash");

        // p is cut off from everybody while x crashes, restarts and links up with the
        // others: p misses x's seq-0 updates (and the floods that carried them).
        sim.split(&[&[p], &[nid(2), nid(3), x]]);
        sim.run_for(rng.range(0, 3_000));
        sim.crash(x).unwrap();
        sim.run_for(rng.range(500, 8_000));
        sim.restart(x).unwrap();
        sim.run_for(rng.range(3_000, 20_000));
        sim.heal_all();
        // As after any partition, p's links are re-probed within N and come UP.
        recover(&mut sim, &all, HEAL_BOUND, true, "after heal");
        // p still holds x's pre-crash ls seq and, through its FULL_TOP_UPDATEs, may even
        // re-teach x's old list to the others, who then reject x's new updates until x's
        // counter passes the old value (docs/wire.md §8, quirk #13). Once the updates of the
        // link-ups have spread, any disagreement left is about x's list or x's view.
        let settled = sim.run_until_cond(sim.now().plus(I), |s| {
            s.topology_mismatches(CLUSTER, &all)
                .iter()
                .all(|m| m.subject == x || m.observer == x)
        });
        ensure(&sim, settled.is_some(), || {
            format!(
                "disagreement beyond x's list: {}",
                show(&sim.topology_mismatches(CLUSTER, &all))
            )
        });
        // Once x's counter passes the old value, everybody takes its updates again. Each
        // flap moves it by two; ten flaps pass any value this history produced.
        for k in 0..10 {
            if sim.topology_mismatches(CLUSTER, &all).is_empty() {
                break;
            }
            flap(&mut sim, x, others[k % 2]);
            recover(&mut sim, &all, 3 * I, false, "after a flap");
        }
        recover(
            &mut sim,
            &all,
            2 * I,
            true,
            "after x's counter passed the old value",
        );
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 6. Rerouting

/// Three nodes in a full mesh, UP; then the direct A–C link is cut.
fn cut_triangle(seed: u64, rerouting_at_a: bool) -> Sim {
    let mut sim = sim(seed, Net::Jittery);
    let mut configs = full_mesh(3, DbMode::Database);
    configs[0].enable_rerouting = rerouting_at_a;
    let all = start_staggered(&mut sim, configs);
    converge(&mut sim, &all);
    let (a, c) = (nid(1), nid(3));
    sim.partition(a, c);
    // The next keep-alive A→C (within I) is lost, so is C→A's: both links leave UP one T
    // later (rule 2) and the LS_UPDATE(DOWN)s reach B at once.
    let deadline = sim.now().plus(I + T + 2 * TICK);
    let done = sim.run_until_cond(deadline, |s| {
        s.link_state(a, CLUSTER, c) != Some(LinkState::Up)
            && s.link_state(c, CLUSTER, a) != Some(LinkState::Up)
    });
    ensure(&sim, done.is_some(), || "A–C did not leave UP".into());
    sim.run_for(10);
    sim
}

#[test]
fn rerouting_carries_a_to_c_over_b_when_the_direct_link_is_cut() {
    for seed in seeds(9) {
        let mut sim = cut_triangle(seed, true);
        let (a, b, c) = (nid(1), nid(2), nid(3));
        let hop = sim.next_hop(a, CLUSTER, c);
        ensure(&sim, hop == Some(b), || format!("next hop A→C {hop:?}"));
        let sent_at = sim.now();
        for k in 0..5u8 {
            let status = sim.send_to(a, CLUSTER, c, generic(&[k])).unwrap();
            ensure(&sim, status == SendStatus::Success, || {
                format!("{status:?}")
            });
            sim.run_for(50);
            ensure(&sim, received_generic(&sim, c, a, &[k]), || {
                format!("message {k} lost")
            });
        }
        let hops = hops_of(&sim, "GENERIC_MSG", sent_at);
        ensure(
            &sim,
            hops.len() == 10 && hops.chunks(2).all(|h| h == [(a, b), (b, c)]),
            || format!("hops {hops:?}"),
        );
        no_violations(&sim);
    }
}

#[test]
fn without_rerouting_a_cannot_reach_c_over_b() {
    for seed in seeds(10) {
        let mut sim = cut_triangle(seed, false);
        let (a, b, c) = (nid(1), nid(2), nid(3));
        let (ac, ab) = (sim.next_hop(a, CLUSTER, c), sim.next_hop(a, CLUSTER, b));
        ensure(&sim, ac.is_none(), || format!("A→C routed via {ac:?}"));
        ensure(&sim, ab == Some(b), || format!("direct A→B gives {ab:?}"));
        let status = sim.send_to(a, CLUSTER, c, generic(b"no")).unwrap();
        ensure(&sim, status == SendStatus::DestDown, || {
            format!("{status:?}")
        });
        let status = sim.send_to(a, CLUSTER, b, generic(b"yes")).unwrap();
        ensure(&sim, status == SendStatus::Success, || {
            format!("{status:?}")
        });
        sim.run_for(50);
        ensure(&sim, received_generic(&sim, b, a, b"yes"), || {
            "A→B lost".into()
        });
        ensure(&sim, !received_generic(&sim, c, a, b"no"), || {
            "A→C delivered".into()
        });
        no_violations(&sim);
    }
}

// ---------------------------------------------------------------------------------------
// 7. Determinism and robustness

/// A run with every kind of fault, driven by `seed`.
fn chaos(seed: u64, trace: TraceMode, minutes: u64) -> Sim {
    let mut options = SimOptions::new(seed);
    options.trace = trace;
    let mut sim = Sim::new(options);
    let mut rng = SimRng::new(seed ^ 0xC4A0_5000);
    let all = start_staggered(&mut sim, full_mesh(6, DbMode::Database));
    let end = ms(minutes * 60_000);
    while sim.now() < end {
        sim.run_for(rng.range(200, 8_000));
        let x = *rng.pick(&all).unwrap();
        let y = *rng.pick(&all).unwrap();
        match rng.below(8) {
            0 => {
                let _ = sim.crash(x);
            }
            1 => {
                let _ = sim.restart(x);
            }
            2 => {
                let _ = sim.pause(x);
            }
            3 => {
                let _ = sim.resume(x);
            }
            4 if x != y => sim.partition(x, y),
            5 if x != y => sim.partition_one_way(x, y),
            6 => {
                sim.reset_connections(x, y);
            }
            _ => sim.heal(x, y),
        }
    }
    sim
}

/// Ends every fault: heals, resumes, restarts.
fn calm_down(sim: &mut Sim) {
    sim.heal_all();
    for id in sim.node_ids() {
        let _ = sim.resume(id);
        let _ = sim.restart(id);
    }
}

#[test]
fn same_seed_gives_an_identical_trace() {
    let first = chaos(42, TraceMode::Full, 2);
    let second = chaos(42, TraceMode::Full, 2);
    assert!(
        first.trace().len() > 1_000,
        "trace too short to mean anything"
    );
    assert_eq!(first.trace().lines(), second.trace().lines());
    assert_eq!(first.trace().hash(), second.trace().hash());
    let other = chaos(43, TraceMode::Hash, 2);
    assert_ne!(first.trace().hash(), other.trace().hash());
}

#[test]
fn crash_restart_chaos_never_panics_nor_overflows_and_recovers() {
    for seed in seeds(11) {
        let mut sim = chaos(seed, TraceMode::Full, 3);
        calm_down(&mut sim);
        let all = sim.node_ids();
        for &id in &all {
            let stats = sim.node(id).unwrap().stats();
            ensure(
                &sim,
                stats.dropped_transmits == 0 && stats.dropped_events == 0,
                || format!("n{id}: {stats:?}"),
            );
        }
        no_violations(&sim);
        // Liveness after the faults end: links re-probed within N, then UP.
        let deadline = sim.now().plus(N + 2 * I);
        let done = sim.run_until_cond(deadline, |s| s.links_all_up(CLUSTER, &all));
        ensure(&sim, done.is_some(), || "links did not recover".into());
        no_violations(&sim);
    }
}
