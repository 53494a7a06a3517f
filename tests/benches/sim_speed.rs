//! Simulator speed: one simulated minute of a converged 16-node full mesh (default timers:
//! every link pinged every 4 s, 240 packets per simulated second).
//! `cargo bench -p clusterer-tests --bench sim_speed`; the `simspeed` binary prints the ratio
//! of simulated to wall time directly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use clusterer_tests::sim::speed::converged_mesh;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn bench_sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.bench_function("mesh16_one_simulated_minute", |b| {
        b.iter_batched(
            || converged_mesh(16, 1).unwrap(),
            |mut sim| {
                sim.run_for(60_000);
                sim
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
