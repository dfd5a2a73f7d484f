//! Benchmark of the trace checker: events per second on a lab trace and on random schedules of a five-server
//! cluster 1x, 10x and 100x as long (the checker should grow linearly with the trace). Run with
//! `cargo bench -p conformance --bench checker`. Prints one line per trace:
//! `<name>: <events> events, <ns> ns/event, <events/s> events/s, <bytes> bytes/event as JSON, <ns> ns/KiB
//! (best of 3)`. The longer schedules' events carry more log entries (followers fall further behind and
//! restart with longer logs), so the cost is also given per KiB of the trace as a file.

use std::time::Instant;

use conformance::lab::{find, run_traced};
use conformance::schedule::{op, run_schedule, Op, ROLLS};
use conformance::trace::{check, Trace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random schedule of `len` operations, drawn as the proptest draws them.
fn schedule(len: usize, seed: u64) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| op(rng.random_range(0..ROLLS), rng.random(), rng.random()))
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
    let mut size = Counted(0);
    trace.write(&mut size).expect("counting cannot fail");
    println!(
        "{name}: {events} events, {:.0} ns/event, {:.0} events/s, {:.0} bytes/event as JSON, {:.0} ns/KiB (best of 3)",
        best * 1e9 / events as f64,
        events as f64 / best,
        size.0 as f64 / events as f64,
        best * 1e9 / (size.0 as f64 / 1024.0),
    );
}

/// Counts the bytes written to it: the size of a trace as a file, without keeping it.
struct Counted(u64);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
