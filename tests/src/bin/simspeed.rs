//! Prints how fast the simulator runs: simulated seconds per wall-clock second for a
//! full-mesh cluster with the default timers.
//!
//! `cargo run --release -p clusterer-tests --bin simspeed [nodes] [simulated-minutes]`
//! (defaults: 16 nodes, 10 minutes).

use std::process::ExitCode;
use std::time::Instant as WallClock;

use clusterer_tests::sim::speed::converged_mesh;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let nodes: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let minutes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let Some(mut sim) = converged_mesh(nodes, 1) else {
        eprintln!("the {nodes}-node mesh did not converge");
        return ExitCode::FAILURE;
    };
    let span_ms = minutes * 60_000;
    let steps_before = sim.steps();
    let wall = WallClock::now();
    sim.run_for(span_ms);
    let elapsed = wall.elapsed().as_secs_f64();
    let steps = sim.steps() - steps_before;
    let packets: u64 = sim
        .node_ids()
        .iter()
        .filter_map(|&id| sim.endpoint(id))
        .map(|e| e.counters().received)
        .sum();
    let simulated = span_ms as f64 / 1000.0;
    println!(
        "{nodes} nodes, full mesh, {simulated:.0} simulated s in {elapsed:.3} wall s: \
         {:.0} simulated s per wall s ({steps} steps, {packets} packets delivered, \
         {:.0} packets per wall s)",
        simulated / elapsed,
        packets as f64 / elapsed
    );
    ExitCode::SUCCESS
}
