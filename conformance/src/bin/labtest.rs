//! The stress runner: runs Lab 2 and Lab 3 tests over many seeds on worker threads and prints the
//! table of the standard stress-testing scripts (failed runs, total runs, simulated time per test).
//!
//! ```text
//! cargo run --release -p conformance --bin labtest -- -n 120 -j 2 2A 2B 2C 2D
//! cargo run --release -p conformance --bin labtest -- -n 120 -j 2 3A 3B
//! cargo run --release -p conformance --bin labtest -- -n 120 -j 2 --check all
//! ```
//!
//! With `--check`, every run records its trace and the trace checker validates it against the model (in
//! Lab 3, the traces of the Raft instances under the key-value servers); runs whose trace leaves the model
//! are counted in their own column, and runs of which nothing was checked (no cluster was recorded) are
//! counted apart, as unchecked, never as valid. `--trace-dir DIR` writes each run's trace
//! to `DIR/<GoName>-<seed>.jsonl` (with `--check`, only the traces of failed or invalid runs).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use conformance::lab::{
    run, run_checked, run_traced, run_traced_checked, LabTest, Outcome, Verdict, TESTS,
};
use conformance::trace::Trace;
use std::process::ExitCode;

/// Stress-run Lab 2 and Lab 3 tests on the deterministic simulator.
#[derive(Parser, Debug)]
#[command(name = "labtest")]
struct Args {
    /// Seeds (runs) per test.
    #[arg(short = 'n', long = "iterations", default_value_t = 10)]
    n: u64,
    /// Worker threads.
    #[arg(short = 'j', long = "workers", default_value_t = 2)]
    j: usize,
    /// First seed; test runs use seeds first..first+n.
    #[arg(short = 's', long = "seed", default_value_t = 1)]
    seed: u64,
    /// Print the tester's own begin/end lines (noisy).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Validate every run's trace against the model, event by event.
    #[arg(long)]
    check: bool,
    /// Write traces to this directory as `<GoName>-<seed>.jsonl` (every run's; with `--check`, only those of
    /// failed or invalid runs).
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// With `--trace-dir`: write the traces in the binary encoding, as `<GoName>-<seed>.rtb` (`tracecheck`
    /// reads both, and `tracecheck --write-json` turns one into the other).
    #[arg(long, requires = "trace_dir")]
    binary: bool,
    /// With `--check`: count which branches of the specification the checks executed, and print them.
    #[arg(long, requires = "check")]
    coverage: bool,
    /// Tests to run: Go names (TestBackup2B), Rust names (backup_2b), parts (2A, 2B, 2C, 2D, 3A, 3B) or
    /// `all` (the 28 tests of Lab 2 and the 23 of Lab 3).
    #[arg(required = true)]
    tests: Vec<String>,
}

fn select(names: &[String]) -> Result<Vec<&'static LabTest>> {
    let mut out: Vec<&'static LabTest> = Vec::new();
    for name in names {
        let matched: Vec<&'static LabTest> = TESTS
            .iter()
            .filter(|t| {
                name.eq_ignore_ascii_case("all")
                    || t.part.eq_ignore_ascii_case(name)
                    || t.is_named(name)
            })
            .collect();
        if matched.is_empty() {
            return Err(usage(unknown_test(name)));
        }
        for t in matched {
            if !out.iter().any(|o| o.go_name == t.go_name) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The error for a name that is no test, part or `all`: the closest names, then every name.
fn unknown_test(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let mut candidates: Vec<(usize, &str)> = TESTS
        .iter()
        .flat_map(|t| [t.go_name, t.name])
        .map(|n| (strsim::levenshtein(&lower, &n.to_ascii_lowercase()), n))
        .collect();
    candidates.sort();
    // The closest names, and those nearly as close.
    let best = candidates.first().map_or(0, |(d, _)| *d);
    let close: Vec<&str> = candidates
        .iter()
        .filter(|(d, _)| *d <= 3 + name.len() / 4 && *d <= best + 1)
        .map(|(_, n)| *n)
        .take(3)
        .collect();
    let mut message = format!("no test or part named {name:?}");
    if !close.is_empty() {
        message.push_str(&format!("; did you mean {}?", close.join(" or ")));
    }
    let all: Vec<&str> = TESTS.iter().map(|t| t.go_name).collect();
    message.push_str(&format!(
        "\nthe tests (Go names, or Rust names such as backup_2b): {}\nthe parts: Lab 3's 3A and \
         3B, Lab 2's 2A, 2B, 2C, 2D, or all",
        all.join(", ")
    ));
    message
}

/// A usage error: the message, and exit status 2 (as clap's own).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(Usage(message))
}

/// One run: the lab's outcome and, with `--check`, the checker's verdict.
struct RunResult {
    outcome: Outcome,
    /// The first line of the checker's report, if the trace left the model.
    invalid: Option<String>,
    /// Why nothing (or not all) of the run was checked, if so (with `--check` only).
    unchecked: Option<String>,
    /// Events checked.
    events: usize,
}

fn run_one(test: &LabTest, seed: u64, quiet: bool, args: &Args) -> Result<RunResult> {
    let (outcome, verdict) = match (args.check, &args.trace_dir) {
        (false, None) => (run(test, seed, quiet), None),
        // Checked as it runs; a mismatch is replayed with its trace for the report.
        (true, None) => {
            let (outcome, verdict) = run_checked(test, seed, quiet);
            (outcome, Some(verdict))
        }
        (check_it, Some(dir)) => {
            let (outcome, trace, verdict) = if check_it {
                let (outcome, trace, verdict) = run_traced_checked(test, seed, quiet);
                (outcome, trace, Some(verdict))
            } else {
                let (outcome, trace) = run_traced(test, seed, quiet);
                (outcome, trace, None)
            };
            if !check_it
                || verdict.as_ref().is_some_and(Verdict::is_invalid)
                || outcome.failure.is_some()
            {
                let (extension, write): (_, fn(&Trace, &Path) -> std::io::Result<()>) =
                    if args.binary {
                        ("rtb", Trace::write_binary_file)
                    } else {
                        ("jsonl", Trace::write_file)
                    };
                let path = dir.join(format!("{}-{seed}.{extension}", test.go_name));
                write(&trace, &path).with_context(|| format!("writing {}", path.display()))?;
            }
            (outcome, verdict)
        }
    };
    let (invalid, unchecked, events) = match verdict {
        None => (None, None, 0),
        Some(Verdict::Checked(summary)) => (None, None, summary.events),
        Some(Verdict::Unchecked(why)) => (None, Some(why), 0),
        Some(Verdict::Invalid(m)) => (Some(m.to_string()), None, m.event),
    };
    Ok(RunResult {
        outcome,
        invalid,
        unchecked,
        events,
    })
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn main() -> ExitCode {
    match run_campaign(Args::parse()) {
        Ok(code) => code,
        // One line (or the list of names), never a backtrace: usage errors exit 2, others 1.
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if e.is::<Usage>() { 2 } else { 1 })
        }
    }
}

fn run_campaign(args: Args) -> Result<ExitCode> {
    if args.n == 0 {
        return Err(usage(
            "-n must be at least 1: a campaign runs each test once per seed".into(),
        ));
    }
    if args.j == 0 {
        return Err(usage("-j must be at least 1".into()));
    }
    let tests = select(&args.tests)?;
    let coverage = args.coverage.then(|| {
        let counts = std::sync::Arc::new(model::coverage::Coverage::default());
        conformance::trace::recorder::count_coverage(counts.clone());
        counts
    });
    if let Some(dir) = &args.trace_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the trace directory {}", dir.display()))?;
    }
    let jobs: Vec<(usize, u64)> = (0..tests.len())
        .flat_map(|t| (0..args.n).map(move |k| (t, args.seed + k)))
        .collect();
    let total = jobs.len();
    // Failures are reported in the table with their seeds; the default hook would interleave a
    // backtrace note per failed run.
    std::panic::set_hook(Box::new(|_| {}));

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<RunResult>)>();
    let mut results: Vec<Vec<RunResult>> = (0..tests.len()).map(|_| Vec::new()).collect();
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..args.j.min(total.max(1)) {
            let tx = tx.clone();
            let (jobs, next, tests, args) = (&jobs, &next, &tests, &args);
            let quiet = !args.verbose;
            std::thread::Builder::new()
                .stack_size(16 << 20)
                .spawn_scoped(scope, move || loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(t, seed)) = jobs.get(k) else { break };
                    let out = run_one(tests[t], seed, quiet, args);
                    if tx.send((t, out)).is_err() {
                        break;
                    }
                })
                .context("spawning a worker")?;
        }
        drop(tx);
        let mut done = 0usize;
        let mut failed = 0usize;
        let mut last_pct = usize::MAX;
        let stderr = std::io::stderr();
        // On a terminal, one line rewritten in place; in a log, a line every 10%.
        let tty = stderr.is_terminal();
        let step = if tty { 1 } else { 10 };
        for (t, out) in rx {
            let out = out?;
            done += 1;
            if let Some(msg) = &out.outcome.failure {
                failed += 1;
                let _ = writeln!(
                    stderr.lock(),
                    "\nFAIL {} seed {}: {}",
                    tests[t].go_name,
                    out.outcome.seed,
                    first_line(&msg.to_string())
                );
            }
            if let Some(report) = &out.invalid {
                let _ = writeln!(
                    stderr.lock(),
                    "\nINVALID {} seed {}: {}",
                    tests[t].go_name,
                    out.outcome.seed,
                    report
                );
            }
            if let Some(why) = &out.unchecked {
                let _ = writeln!(
                    stderr.lock(),
                    "\nUNCHECKED {} seed {}: {}",
                    tests[t].go_name,
                    out.outcome.seed,
                    why
                );
            }
            results[t].push(out);
            let pct = done * 100 / total / step * step;
            if pct != last_pct {
                last_pct = pct;
                let _ = write!(
                    stderr.lock(),
                    "{}[{done:>6}/{total}] {pct:>3}%  failed {failed}  {:.1}s{}",
                    if tty { "\r" } else { "" },
                    started.elapsed().as_secs_f64(),
                    if tty { "" } else { "\n" },
                );
            }
        }
        if tty {
            let _ = writeln!(stderr.lock());
        }
        Ok(())
    })?;
    let wall = started.elapsed().as_secs_f64();

    let width = tests
        .iter()
        .map(|t| t.go_name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let invalid_column = |s: &str| {
        if args.check {
            format!("  {s:>7}")
        } else {
            String::new()
        }
    };
    println!(
        "{:<width$}  {:>6}{}  {:>6}  {:>15}",
        "Test",
        "Failed",
        invalid_column("Invalid"),
        "Total",
        "Time (sim s)"
    );
    println!(
        "{}",
        "-".repeat(width + 33 + if args.check { 9 } else { 0 })
    );
    let (mut runs, mut events) = (0, 0);
    let mut failed_runs = Vec::new();
    let mut invalid_runs = Vec::new();
    let mut unchecked_runs = Vec::new();
    for (t, outs) in tests.iter().zip(&results) {
        let secs: Vec<f64> = outs.iter().map(|o| o.outcome.sim_secs).collect();
        let (mean, std) = mean_std(&secs);
        let mut failed: Vec<&Outcome> = outs
            .iter()
            .map(|o| &o.outcome)
            .filter(|o| o.failure.is_some())
            .collect();
        failed.sort_by_key(|o| o.seed);
        let mut invalid: Vec<(u64, &str)> = outs
            .iter()
            .filter_map(|o| Some((o.outcome.seed, o.invalid.as_deref()?)))
            .collect();
        invalid.sort_by_key(|(seed, _)| *seed);
        println!(
            "{:<width$}  {:>6}{}  {:>6}  {:>15}",
            t.go_name,
            failed.len(),
            invalid_column(&invalid.len().to_string()),
            outs.len(),
            format!("{mean:.2} ± {std:.2}")
        );
        runs += outs.len();
        events += outs.iter().map(|o| o.events).sum::<usize>();
        failed_runs.extend(failed.into_iter().map(|o| (t, o)));
        invalid_runs.extend(invalid.into_iter().map(|(seed, r)| (t, seed, r)));
        unchecked_runs.extend(
            outs.iter()
                .filter_map(|o| Some((t, o.outcome.seed, o.unchecked.as_deref()?))),
        );
    }
    println!();
    println!("wall-clock time: {wall:.2} s");
    if !failed_runs.is_empty() {
        println!(
            "failures (replay with LAB_SEED=<seed> cargo test --release -p conformance <test>):"
        );
        for (t, o) in &failed_runs {
            println!(
                "  {} ({}) seed {}: {}",
                t.go_name,
                t.name,
                o.seed,
                o.failure
                    .as_ref()
                    .map(|f| first_line(&f.to_string()).to_string())
                    .unwrap_or_default()
            );
        }
    }
    if !invalid_runs.is_empty() {
        println!("traces that leave the model (replay with labtest --check --trace-dir DIR -s <seed> -n 1 <test>, then tracecheck):");
        for (t, seed, report) in &invalid_runs {
            println!("  {} seed {seed}: {}", t.go_name, first_line(report));
        }
    }
    if !unchecked_runs.is_empty() {
        unchecked_runs.sort_by_key(|(t, seed, _)| (t.go_name, *seed));
        println!("runs not checked against the model (neither valid nor invalid):");
        for (t, seed, why) in &unchecked_runs {
            println!("  {} seed {seed}: {why}", t.go_name);
        }
    }
    if let Some(c) = &coverage {
        print!("{}", model::coverage::render(&c.covered()));
    }
    if args.check {
        println!(
            "total: runs={runs} failed={} invalid={} unchecked={} events={events} wall={wall:.2}s",
            failed_runs.len(),
            invalid_runs.len(),
            unchecked_runs.len()
        );
    } else {
        println!(
            "total: runs={runs} failed={} wall={wall:.2}s",
            failed_runs.len()
        );
    }
    // With --check, every run was to be validated: one that was not is no success either.
    Ok(
        if failed_runs.is_empty() && invalid_runs.is_empty() && unchecked_runs.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    // Commands of TestRPCBytes2B are 5000 characters long.
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}
