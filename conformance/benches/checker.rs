//! Benchmark of the trace checker: events per second on a lab trace and on random schedules of a five-server
//! cluster 1x, 10x and 100x as long (the checker should grow linearly with the trace). Run with
//! `cargo bench -p conformance --bench checker`. Prints one line per trace:
//! `<name>: <events> events, <ns> ns/event, <events/s> events/s (best of 3)`.

use std::time::Instant;

use conformance::lab::{find, run_traced};
use conformance::schedule::{run_schedule, Op};
use conformance::trace::{check, Trace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random schedule of `len` operations, weighted as the proptest weights them.
fn schedule(len: usize, seed: u64) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            let k: u8 = rng.random();
            match rng.random_range(0..27) {
                0..12 => Op::Deliver(k),
                12 => Op::Drop(k),
                13 => Op::Duplicate(k),
                14..17 => Op::Fire(k),
                17..20 => Op::Propose(k, rng.random_range(1..4)),
                20 => Op::Crash(k),
                21 => Op::Restart(k),
                22 => Op::Partition(k),
                23 => Op::Heal,
                _ => Op::Snapshot(k),
            }
        })
        .collect()
}

fn measure(name: &str, trace: &Trace) {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let summary = check(trace).unwrap_or_else(|m| panic!("{name}: {m}"));
        assert_eq!(summary.events, trace.records.len());
        best = best.min(started.elapsed().as_secs_f64());
    }
    let events = trace.records.len();
    println!(
        "{name}: {events} events, {:.0} ns/event, {:.0} events/s (best of 3)",
        best * 1e9 / events as f64,
        events as f64 / best
    );
}

fn main() {
    let (outcome, lab) = run_traced(find("figure8_unreliable_2c").unwrap(), 1, true);
    assert!(outcome.failure.is_none());
    measure("lab TestFigure8Unreliable2C seed 1", &lab);
    for (factor, len) in [(1, 20_000), (10, 200_000), (100, 2_000_000)] {
        let trace = run_schedule(5, &schedule(len, 7), None);
        measure(&format!("schedule x{factor} ({len} operations)"), &trace);
    }
}
