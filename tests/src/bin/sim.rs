//! The simulation campaign (`clusterer_tests::sim::campaign`): random clusters under random
//! faults, safety invariants after every step, liveness after the heal, exact replay.
//!
//! ```text
//! cargo run --release -p clusterer-tests --bin sim -- --seeds 10000
//! cargo run --release -p clusterer-tests --bin sim -- --seed 1234 --trace run.trace
//! ```
//!
//! Options: `sim --help` ([`CampaignArgs::USAGE`]).
//!
//! A violation prints the seed, the invariant and the one line that replays it; the exit
//! status is 1 when any run violated an invariant. A failure a known limitation of the
//! protocol explains (`clusterer_tests::sim::checks`: restart-missed, announcement-lost,
//! gossip-gap; `clusterer_tests::sim::kv`: sync-replies-mixed) ends its run too, is counted
//! in the summary with its first seeds, and fails the campaign only with `--strict`.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant as WallClock;

use clusterer_core::DbMode;
use clusterer_tests::sim::TraceMode;
use clusterer_tests::sim::campaign::{
    CampaignArgs, CampaignOptions, FaultKind, Outcome, Violation, replay_line, run,
};

fn parse_args() -> Result<CampaignArgs, String> {
    CampaignArgs::parse(std::env::args().skip(1))
}

/// Runs one seed, turning a panic into a violation.
fn run_guarded(
    seed: u64,
    options: &CampaignOptions,
) -> (Outcome, Option<clusterer_tests::sim::Sim>) {
    match catch_unwind(AssertUnwindSafe(|| run(seed, options))) {
        Ok((outcome, sim)) => (outcome, Some(sim)),
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".into());
            let outcome = Outcome {
                seed,
                nodes: options.nodes.unwrap_or(0),
                db_mode: DbMode::Database,
                simulated_ms: 0,
                steps: 0,
                faults: BTreeMap::new(),
                violation: Some(Violation {
                    invariant: "panic",
                    limitation: None,
                    at: clusterer_core::Instant::ZERO,
                    text,
                }),
                limitations: Vec::new(),
                kv: Default::default(),
                max_hops: 0,
                trace_hash: 0,
            };
            (outcome, None)
        }
    }
}

/// Whether an outcome fails the campaign.
fn fails(o: &Outcome, strict: bool) -> bool {
    o.violation.is_some() || (strict && !o.limitations.is_empty())
}

fn report_failure(o: &Outcome, options: &CampaignOptions) {
    for v in o.violation.iter().chain(&o.limitations) {
        let label = if v.is_violation() { "FAIL" } else { "LIMIT" };
        println!(
            "{label} seed {} ({} nodes, {:?}): {v}\n  replay: {}",
            o.seed,
            o.nodes,
            o.db_mode,
            replay_line(o.seed, options)
        );
    }
}

fn one(seed: u64, args: &CampaignArgs) -> ExitCode {
    let mut options = args.options.clone();
    if args.trace.is_some() || args.verbose {
        options.trace = TraceMode::Full;
    }
    let (outcome, sim) = run_guarded(seed, &options);
    if let Some(sim) = &sim {
        if args.verbose {
            let _ = sim.trace().write_to(std::io::stdout().lock());
        }
        if let Some(path) = &args.trace {
            match std::fs::File::create(path) {
                Ok(f) => {
                    if let Err(e) = sim.trace().write_to(std::io::BufWriter::new(f)) {
                        eprintln!("writing {path}: {e}");
                    }
                }
                Err(e) => eprintln!("creating {path}: {e}"),
            }
        }
    }
    let hash = if options.trace == TraceMode::Off {
        String::new()
    } else {
        format!(", trace hash {:016x}", outcome.trace_hash)
    };
    println!(
        "seed {seed}: {} nodes, {:?}, {:.1} simulated min, {} steps, {} faults{hash}",
        outcome.nodes,
        outcome.db_mode,
        outcome.simulated_ms as f64 / 60_000.0,
        outcome.steps,
        outcome.faults.values().sum::<u64>(),
    );
    if outcome.violation.is_some() || !outcome.limitations.is_empty() {
        report_failure(&outcome, &args.options);
        if let Some(sim) = &sim {
            println!("{}", sim.report(clusterer_tests::sim::CLUSTER, 0));
        }
        if fails(&outcome, args.strict) {
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    println!("ok");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e == CampaignArgs::USAGE => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.one {
        return one(seed, &args);
    }
    let mut jobs: Vec<(u64, CampaignOptions)> = (args.first..args.first + args.seeds)
        .map(|s| (s, args.options.clone()))
        .collect();
    if args.big {
        let mut big = args.options.clone();
        big.nodes = Some(128);
        jobs.insert(0, (args.first, big));
    }
    let started = WallClock::now();
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(Outcome, CampaignOptions)>> = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(jobs.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((seed, options)) = jobs.get(i) else {
                        return;
                    };
                    let (outcome, _) = run_guarded(*seed, options);
                    if fails(&outcome, args.strict) {
                        report_failure(&outcome, options);
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(1000) {
                        eprintln!("{n} runs, {:.0} s", started.elapsed().as_secs_f64());
                    }
                    if let Ok(mut all) = outcomes.lock() {
                        all.push((outcome, options.clone()));
                    }
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let mut outcomes = outcomes.into_inner().unwrap_or_default();
    outcomes.sort_by_key(|(o, opt)| (o.seed, opt.nodes));
    summary(&outcomes, wall, &args);
    if outcomes.iter().any(|(o, _)| fails(o, args.strict)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn summary(outcomes: &[(Outcome, CampaignOptions)], wall: f64, args: &CampaignArgs) {
    let runs = outcomes.len();
    let simulated_ms: u64 = outcomes.iter().map(|(o, _)| o.simulated_ms).sum();
    let steps: u64 = outcomes.iter().map(|(o, _)| o.steps).sum();
    let mut faults: BTreeMap<FaultKind, u64> = BTreeMap::new();
    let mut violations: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut limitations: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    let (mut updates, mut syncs, mut arrivals, mut max_hops) = (0u64, 0u64, 0u64, 0u32);
    let mut sizes: BTreeMap<u32, u64> = BTreeMap::new();
    for (o, _) in outcomes {
        for (k, n) in &o.faults {
            *faults.entry(*k).or_default() += n;
        }
        if let Some(v) = &o.violation {
            violations.entry(v.invariant).or_default().push(o.seed);
        }
        for v in &o.limitations {
            limitations
                .entry((v.limitation.unwrap_or("?"), v.invariant))
                .or_default()
                .push(o.seed);
        }
        updates += o.kv.updates;
        arrivals += o.kv.arrivals;
        syncs += o.kv.syncs_checked;
        max_hops = max_hops.max(o.max_hops);
        *sizes.entry(o.nodes).or_default() += 1;
    }
    println!("\n=== campaign summary (faults: {})", args.options.faults);
    println!("{:<34}{:>14}", "runs", runs);
    println!(
        "{:<34}{:>14}",
        "cluster sizes",
        format!(
            "{}-{}",
            sizes.keys().min().unwrap_or(&0),
            sizes.keys().max().unwrap_or(&0)
        )
    );
    println!(
        "{:<34}{:>14.1}",
        "simulated hours",
        simulated_ms as f64 / 3_600_000.0
    );
    println!("{:<34}{:>14.1}", "wall seconds", wall);
    println!("{:<34}{:>14}", "simulator steps", steps);
    println!("{:<34}{:>14}", "live updates issued", updates);
    println!("{:<34}{:>14}", "live updates delivered", arrivals);
    println!("{:<34}{:>14}", "completed syncs checked", syncs);
    println!("{:<34}{:>14}", "most hops of a routed packet", max_hops);
    println!("faults injected:");
    for k in FaultKind::ALL {
        if let Some(n) = faults.get(&k) {
            println!("  {:<32}{:>14}", k.name(), n);
        }
    }
    println!("{:<34}{:>14}", "  total", faults.values().sum::<u64>());
    let limited = outcomes
        .iter()
        .filter(|(o, _)| !o.limitations.is_empty())
        .count();
    println!("{:<34}{:>14}", "runs hitting a known limitation", limited);
    for ((name, invariant), seeds) in &limitations {
        let shown: Vec<String> = seeds.iter().take(6).map(u64::to_string).collect();
        println!(
            "  {:<32}{:>14}   seeds {}{}",
            format!("{name} ({invariant})"),
            seeds.len(),
            shown.join(" "),
            if seeds.len() > 6 { " ..." } else { "" }
        );
    }
    let failed: usize = violations.values().map(Vec::len).sum();
    println!("{:<34}{:>14}", "runs with a violation", failed);
    for (name, seeds) in &violations {
        let shown: Vec<String> = seeds.iter().take(8).map(u64::to_string).collect();
        println!(
            "  {:<32}{:>14}   seeds {}{}",
            name,
            seeds.len(),
            shown.join(" "),
            if seeds.len() > 8 { " ..." } else { "" }
        );
    }
}
