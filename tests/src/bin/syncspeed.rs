//! Prints the simulated sync throughput: records per wall-clock second for a sync of N
//! records (default 100,000) between two simulated nodes, through the full path — the
//! donor's capability produces the records, the core packs them into SYNC packets
//! (`sync_packet_size`, default 32768), `clusterer-proto` emits the bytes, the simulator
//! carries them, the receiver deframes and parses them, the core counts the chunks and hands
//! each to the requester's capability, which stores it in a `BTreeMap` (the simulator's
//! key/value capability, `clusterer_tests::sim::kv`).
//!
//! `cargo run --release -p clusterer-tests --bin syncspeed [records] [sync_packet_size] [runs]`
//! (defaults: 100000, 32768, 5). Each run is a fresh pair of nodes; the time measured is from
//! the requester's registration (it asks for the sync at once) until its capability reports
//! synced; virtual time does not count, only the work.

use std::process::ExitCode;
use std::time::Instant as WallClock;

use clusterer_core::{DbMode, SyncStatus};
use clusterer_tests::sim::{CLUSTER, KV_CAPABILITY, KvSpec, Sim, SimOptions, full_mesh, nid};

fn run(records: u64, packet_size: usize) -> Option<(f64, usize, u64)> {
    let mut sim = Sim::new(SimOptions::fast(1));
    let mut configs = full_mesh(2, DbMode::Database);
    for c in &mut configs {
        c.sync_packet_size = packet_size;
    }
    sim.add_nodes(configs).ok()?;
    sim.set_kv(nid(1), KvSpec::new(false)).ok()?;
    sim.kv_preload(nid(1), 0, records).ok()?;
    let ids = sim.node_ids();
    let deadline = sim.now().plus(10_000);
    sim.run_until_cond(deadline, |s| s.links_all_up(CLUSTER, &ids))?;
    sim.run_for(100);
    let sent_before = sim.endpoint(nid(1))?.counters().sent;
    let wall = WallClock::now();
    sim.set_kv(nid(2), KvSpec::new(true)).ok()?;
    let deadline = sim.now().plus(60_000);
    sim.run_until_cond(deadline, |s| {
        s.node(nid(2))
            .and_then(|n| n.cluster(CLUSTER))
            .and_then(|c| c.capability(KV_CAPABILITY))
            .is_some_and(|c| c.status() == SyncStatus::Synced)
    })?;
    let elapsed = wall.elapsed().as_secs_f64();
    let held = sim.kv_map(nid(2))?.len();
    let packets = sim.endpoint(nid(1))?.counters().sent - sent_before;
    Some((elapsed, held, packets))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let packet_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32_768);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut rates = Vec::new();
    for i in 0..runs.max(1) {
        let Some((elapsed, held, packets)) = run(records, packet_size) else {
            eprintln!("run {i}: the sync did not complete");
            return ExitCode::FAILURE;
        };
        if held as u64 != records {
            eprintln!("run {i}: the requester holds {held} records, expected {records}");
            return ExitCode::FAILURE;
        }
        let rate = records as f64 / elapsed;
        println!(
            "run {i}: {records} records in {elapsed:.3} wall s ({packets} packets sent by the donor): {rate:.0} records/s"
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let best = rates[rates.len() - 1];
    println!(
        "sync of {records} records, sync_packet_size {packet_size}: median {median:.0} records/s, best {best:.0} records/s over {} runs",
        rates.len()
    );
    ExitCode::SUCCESS
}
