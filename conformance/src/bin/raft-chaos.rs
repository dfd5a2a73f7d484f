//! `raft-chaos`: runs real `raft-node` processes under a nemesis and checks what their clients saw (see
//! `conformance::chaos`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use conformance::chaos::nemesis::Kind;
use conformance::chaos::workload::Workload;
use conformance::chaos::{self, Bug, RunSpec, INTERRUPTED};

#[derive(Parser)]
#[command(
    name = "raft-chaos",
    about = "Runs raft-node processes under faults (kills, pauses, partitions, message faults, power loss, \
leadership transfers) \
while clients use the key-value store, and checks every run: a linearizable history, no acknowledged write \
lost, no node exiting by itself.",
    long_about = None
)]
struct Cli {
    /// The campaign's time budget in seconds: runs are started while one more fits.
    #[arg(long, default_value_t = 300)]
    time: u64,
    /// Exactly this many runs, whatever the time.
    #[arg(long)]
    runs: Option<usize>,
    /// How long the workload of one run lasts, in seconds (healing and checking come on top).
    #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(u64).range(3..=3600))]
    run_secs: u64,
    /// Cluster sizes, taken in turn by the runs.
    #[arg(long, value_delimiter = ',', default_value = "3,5", value_parser = clap::value_parser!(u64).range(3..=7))]
    nodes: Vec<u64>,
    /// Workloads, taken in turn by the runs.
    #[arg(long, value_delimiter = ',', default_value = "registers,list-append")]
    workload: Vec<WorkloadArg>,
    /// The kinds of fault every run applies (each at least once in a run long enough).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,pause,partition,link,power,transfer,member"
    )]
    faults: Vec<Kind>,
    /// Seeds run k's schedule, clients and message faults with seed + k [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// A deliberate bug, to show that the runs notice it.
    #[arg(long, value_enum)]
    bug: Option<Bug>,
    /// A mutant of the core for the nodes (RAFT_MUTANT): needs a raft-node built with the mutants feature
    /// (CARGO_TARGET_DIR=DIR cargo build --release -p raft-node --features mutants; then --raft-node
    /// DIR/release/raft-node).
    #[arg(long)]
    mutant: Option<String>,
    /// Client threads per run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=64))]
    clients: u64,
    /// The most operations one run begins.
    #[arg(long, default_value_t = 20_000)]
    max_ops: u64,
    /// Operations per second that the clients of a run begin together, at most (0: as fast as they can).
    /// The linearizability check of a list grows with the square of its length, hence a limit.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// The raft-node executable [default: the one beside this program].
    #[arg(long)]
    raft_node: Option<PathBuf>,
    /// Stop after the first run that fails a check (to measure how long a bug takes to be caught).
    #[arg(long)]
    stop_on_failure: bool,
    /// Print each run's faults as they were applied, and the time its checks took.
    #[arg(long)]
    verbose: bool,
    /// Where runs keep their data [default: a new directory under the system's temporary directory];
    /// a run's directory is removed when it passes and kept when it fails.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep every run's directory, passed or not: its nodes' traces (for `tracecheck`), history, schedule
    /// and logs.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum WorkloadArg {
    Registers,
    ListAppend,
}

fn main() -> ExitCode {
    match campaign(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("raft-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn campaign(cli: Cli) -> Result<bool> {
    let exe = match cli.raft_node {
        Some(exe) => exe,
        None => std::env::current_exe()?
            .with_file_name("raft-node")
            .canonicalize()
            .context(
                "cannot find raft-node beside raft-chaos: build it (cargo build --release -p raft-node) \
                 or name it with --raft-node",
            )?,
    };
    if !exe.is_file() {
        bail!("--raft-node {}: no such file", exe.display());
    }
    if let Some(mutant) = &cli.mutant {
        // raft-node refuses a mutant it does not have, before anything else.
        let check = std::process::Command::new(&exe)
            .arg("--help")
            .env("RAFT_MUTANT", mutant)
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        if !check.status.success() {
            bail!(
                "--mutant {mutant}: {}",
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
    }
    if cli.faults.is_empty() {
        bail!("--faults names no fault");
    }
    let base = match cli.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("raft-chaos-{}", std::process::id())),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::Relaxed);
        chaos::cluster::kill_all_children();
        eprintln!("raft-chaos: interrupted; every node was killed");
        std::process::exit(130);
    })
    .context("cannot handle Ctrl-C")?;
    let seed = cli.seed.unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let mut faults = cli.faults.clone();
    faults.sort();
    faults.dedup();
    if cli.bug == Some(Bug::NoSync) && !faults.contains(&Kind::Power) {
        bail!("--bug no-sync needs power loss among the --faults");
    }
    println!(
        "raft-chaos: seed {seed}, {} s, nodes {:?}, faults {}, data in {}",
        cli.time,
        cli.nodes,
        faults
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        base.display()
    );
    println!(
        "{:>3} {:>5} {:<11} {:<15} {:>6} {:>6} {:>6} {:>6} {:>6} {:<12} {:<12} {:>10} {:>6}",
        "run",
        "nodes",
        "workload",
        "disk",
        "ops",
        "ok",
        "failed",
        "indet",
        "faults",
        "linearizable",
        "traces_valid",
        "lost_acked",
        "secs"
    );
    let started = Instant::now();
    let budget = Duration::from_secs(cli.time);
    // A run takes its workload's time and about 10 s more to start, heal and check.
    let run_cost = Duration::from_secs(cli.run_secs + 10);
    let (mut results, mut kinds_applied) = (Vec::new(), BTreeMap::new());
    let mut number = 0;
    loop {
        let more = match cli.runs {
            Some(runs) => number < runs,
            None => number == 0 || started.elapsed() + run_cost <= budget,
        };
        if !more || INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        let workload = match cli.workload[number % cli.workload.len()] {
            WorkloadArg::Registers => Workload::Registers,
            WorkloadArg::ListAppend => Workload::ListAppend,
        };
        let spec = RunSpec {
            number,
            nodes: cli.nodes[number % cli.nodes.len()],
            workload,
            kinds: faults.clone(),
            secs: cli.run_secs,
            seed: seed + number as u64,
            bug: cli.bug,
            mutant: cli.mutant.clone(),
            clients: cli.clients,
            max_ops: cli.max_ops,
            rate: cli.rate,
            keep: cli.keep,
        };
        let result = chaos::run(&spec, &exe, &base);
        let ops = result.tally.ok + result.tally.failed + result.tally.indeterminate;
        println!(
            "{:>3} {:>5} {:<11} {:<15} {:>6} {:>6} {:>6} {:>6} {:>6} {:<12} {:<12} {:>10} {:>6.1}",
            number,
            spec.nodes,
            spec.workload.name(),
            format!("{:?}", spec.disk()),
            ops,
            result.tally.ok,
            result.tally.failed,
            result.tally.indeterminate,
            result.kinds.values().sum::<u64>(),
            match result.linearizable {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "unchecked",
            },
            match result.traces_valid {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "unreadable",
            },
            result.lost_acked,
            result.secs
        );
        if cli.verbose {
            for (at, what) in &result.faults {
                println!("      {:>7.3} s  {what}", at.as_secs_f64());
            }
            println!(
                "      linearizability checked in {:.1} s",
                result.check_secs
            );
            println!(
                "      traces: {} events merged and checked in {:.1} s",
                result.trace_events, result.trace_secs
            );
        }
        if !result.ok() {
            for p in result.problems.iter().take(5) {
                let cut: String = p.chars().take(400).collect();
                println!(
                    "      {cut}{}",
                    if cut.len() < p.len() { " ..." } else { "" }
                );
            }
            if result.problems.len() > 5 {
                println!("      ... {} problems in all", result.problems.len());
            }
            println!("      replay the schedule: {}", spec.replay());
        }
        if let Some(dir) = &result.kept {
            println!(
                "      kept in {} (traces, history, schedule, node logs)",
                dir.display()
            );
        }
        for (k, n) in &result.kinds {
            *kinds_applied.entry(*k).or_insert(0u64) += n;
        }
        let failed = !result.ok();
        results.push(result);
        number += 1;
        if failed && cli.stop_on_failure {
            println!(
                "caught after {:.1} s, in run {}",
                started.elapsed().as_secs_f64(),
                number - 1
            );
            break;
        }
    }
    let runs = results.len();
    let ops: u64 = results
        .iter()
        .map(|r| r.tally.ok + r.tally.failed + r.tally.indeterminate)
        .sum();
    let linearizable = results
        .iter()
        .filter(|r| r.linearizable == Some(true))
        .count();
    let lost: u64 = results.iter().map(|r| r.lost_acked).sum();
    let invalid_traces = results
        .iter()
        .filter(|r| r.traces_valid != Some(true))
        .count();
    let failed = results.iter().filter(|r| !r.ok()).count();
    let net = results
        .iter()
        .fold(chaos::proxy::Counts::default(), |mut a, r| {
            a.messages += r.net.messages;
            a.dropped += r.net.dropped;
            a.duplicated += r.net.duplicated;
            a.reordered += r.net.reordered;
            a.reset += r.net.reset;
            a
        });
    println!(
        "faults applied: {}",
        Kind::ALL
            .iter()
            .filter(|k| faults.contains(k))
            .map(|k| format!(
                "{} {}",
                k.name(),
                kinds_applied.get(k).copied().unwrap_or(0)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "messages through the proxies: {} ({} dropped, {} duplicated, {} reordered), {} connections \
         reset by healed cuts",
        net.messages, net.dropped, net.duplicated, net.reordered, net.reset
    );
    let missing: Vec<&str> = faults
        .iter()
        .filter(|k| !kinds_applied.contains_key(k))
        .map(|k| k.name())
        .collect();
    if !missing.is_empty() {
        println!("not applied (runs too short): {}", missing.join(", "));
    }
    println!(
        "chaos: runs={runs} ops={ops} linearizable={linearizable} invalid_traces={invalid_traces} lost_acked={lost} \
         failed_runs={failed} secs={:.0}",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        let _ = std::fs::remove_dir(&base);
    }
    Ok(failed == 0 && missing.is_empty() && runs > 0)
}
