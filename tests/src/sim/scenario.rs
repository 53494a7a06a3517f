//! Helpers shared by the scenario tests (`tests/sim_*.rs`): the seeds a scenario runs,
//! and failing with everything needed to replay.
//!
//! A failure panics with the seed, the state of every node and the tail of the trace; the
//! whole trace goes to `$SIM_TRACE_DIR` (default: the system temp dir) as
//! `clusterer-sim-<seed>.trace`. Rerun the scenario with that seed to replay it.

use clusterer_core::{Config, Instant, NodeId};
use clusterer_proto::EndpointOptions;

use crate::sim::{CLUSTER, Sim, SimRng};

/// Seeds per scenario unless `SIM_SEEDS` says otherwise: fewer in debug builds so
/// `cargo test` stays quick.
pub const SEEDS: u64 = if cfg!(debug_assertions) { 10 } else { 50 };

/// The seeds of scenario number `scenario`: `(scenario << 32) | i` for `i` in
/// `0..SIM_SEEDS` (default [`SEEDS`]), e.g. `SIM_SEEDS=500 cargo test --release -p
/// clusterer-tests`.
pub fn seeds(scenario: u64) -> impl Iterator<Item = u64> {
    seeds_or(scenario, SEEDS)
}

/// As [`seeds`] with another default count (for scenarios too heavy for [`SEEDS`] runs in
/// a debug build); `SIM_SEEDS` still overrides it.
pub fn seeds_or(scenario: u64, default: u64) -> impl Iterator<Item = u64> {
    let count = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    (0..count).map(move |i| (scenario << 32) | i)
}

/// Saves the trace to `$SIM_TRACE_DIR` (default: the system temp dir) and returns a line
/// saying where (or why not).
pub fn save_trace(sim: &Sim) -> String {
    let dir = std::env::var_os("SIM_TRACE_DIR").map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("clusterer-sim-{}.trace", sim.seed()));
    std::fs::File::create(&path)
        .and_then(|f| sim.trace().write_to(std::io::BufWriter::new(f)))
        .map_or_else(
            |e| format!("trace not saved: {e}"),
            |()| format!("trace: {}", path.display()),
        )
}

/// Panics with `what`, the seed, the state of every node and the trace tail; the whole
/// trace is saved (see [`save_trace`]).
#[allow(clippy::panic)] // A failing scenario ends the test.
pub fn fail(sim: &Sim, what: &str) -> ! {
    let saved = save_trace(sim);
    panic!("{what}\n{saved}\n{}", sim.report(CLUSTER, 80));
}

/// [`fail`]s with `what()` unless `ok`.
pub fn ensure(sim: &Sim, ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        fail(sim, &what());
    }
}

/// [`fail`]s when the simulator recorded an invariant violation, or the key/value
/// bookkeeping met a known limitation (scenarios are built to avoid them).
pub fn no_violations(sim: &Sim) {
    ensure(sim, sim.violations().is_empty(), || {
        "invariant violated".into()
    });
    let limitations = crate::sim::kv::lock(sim.kv_world()).take_limitations();
    ensure(sim, limitations.is_empty(), || {
        format!("known limitation met: {limitations:?}")
    });
}

/// Adds every configuration with a random start time in [0, 1 s) (drawn from the run's
/// seed), so the nodes' heartbeat ticks are not aligned (and early pings may meet a node
/// that is not started yet: refused).
///
/// # Panics
/// When a configuration is refused (a test bug).
#[allow(clippy::expect_used)] // Scenario configurations are valid by construction.
pub fn start_staggered(sim: &mut Sim, configs: Vec<Config>) -> Vec<NodeId> {
    let mut rng = SimRng::new(sim.seed() ^ 0x5747_6767);
    configs
        .into_iter()
        .map(|c| {
            let at = Instant::from_millis(rng.below(1_000));
            sim.add_node_with(c, EndpointOptions::default(), Some(at))
                .expect("valid scenario configuration")
        })
        .collect()
}

/// Runs until every link among `nodes` is UP, failing after 10 s (nodes started within
/// 1 s with the default timers ping everyone at their first tick, by 2 s, and PONGs return
/// within milliseconds; 10 s is generous).
pub fn converge(sim: &mut Sim, nodes: &[NodeId]) {
    let deadline = sim.now().plus(10_000);
    let done = sim.run_until_cond(deadline, |s| s.links_all_up(CLUSTER, nodes));
    ensure(sim, done.is_some(), || "links did not all come UP".into());
}
