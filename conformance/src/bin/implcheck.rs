//! `implcheck`: the real `raft` core explored exhaustively at small bounds, every step checked against the
//! model. See conformance/README.md ("The implementation under the model checker").

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use conformance::implcheck::{self, ImplModel, State};
use conformance::reach;
use model::coverage::Coverage;
use stateright::{Checker, HasDiscoveries, Model};

#[derive(Parser)]
#[command(
    name = "implcheck",
    about = "Explore the raft core exhaustively, every step checked against the model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exhaustively explore every behaviour of the core within the preset's bounds.
    Check {
        /// Bounds: small, default, five, snapshot-overlap, reads, reads-terms, pre-vote, check-quorum,
        /// membership, overlap, install or conflict.
        #[arg(long, default_value = "default")]
        preset: String,
        /// Breadth-first search: shortest counterexamples.
        #[arg(long)]
        bfs: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Write the counterexample's run here as a trace (for `tracecheck`, `--svg`, `--shiviz`).
        #[arg(long)]
        trace: Option<std::path::PathBuf>,
        /// Count how often the implementation's steps took each branch of the specification.
        #[arg(long)]
        coverage: bool,
        #[command(flatten)]
        flags: BoundFlags,
    },
    /// Compare the spec states the core reaches within the preset's bounds with those the spec can reach.
    Reach {
        /// Bounds: small, default, five, snapshot-overlap, reads, reads-terms, pre-vote, check-quorum,
        /// membership, overlap, install or conflict.
        #[arg(long, default_value = "small")]
        preset: String,
        /// Let the spec take every action its guards allow, with every choice of parameters, instead of the
        /// model checker's enumeration (plus every next_index a leader may move to).
        #[arg(long)]
        all_actions: bool,
        #[command(flatten)]
        flags: BoundFlags,
    },
}

/// Bounds that override the preset's.
#[derive(clap::Args)]
struct BoundFlags {
    /// Number of servers (2 to 5).
    #[arg(long)]
    servers: Option<u8>,
    /// Highest term a node's election timer may fire into.
    #[arg(long)]
    max_term: Option<u64>,
    /// Longest log a leader is handed commands for.
    #[arg(long)]
    max_log: Option<u64>,
    /// Crash-and-restarts in a run.
    #[arg(long)]
    max_crashes: Option<u8>,
    /// Messages in flight that leave room for a timer, a command or a duplicate.
    #[arg(long)]
    max_inflight: Option<u8>,
    /// Messages lost in a run.
    #[arg(long)]
    max_drops: Option<u8>,
    /// Messages duplicated in a run.
    #[arg(long)]
    max_dups: Option<u8>,
    /// Snapshots by the service: on or off.
    #[arg(long)]
    snapshots: Option<bool>,
    /// Reads (ReadIndex) begun at leaders in a run.
    #[arg(long)]
    max_reads: Option<u8>,
    /// Servers of the first configuration (the others wait to be added).
    #[arg(long)]
    voters: Option<u8>,
    /// Configuration changes in a run.
    #[arg(long)]
    max_changes: Option<u8>,
}

impl BoundFlags {
    fn apply(&self, b: &mut implcheck::Bounds) {
        b.servers = self.servers.unwrap_or(b.servers);
        b.max_term = self.max_term.unwrap_or(b.max_term);
        b.max_log = self.max_log.unwrap_or(b.max_log);
        b.max_crashes = self.max_crashes.unwrap_or(b.max_crashes);
        b.max_inflight = self.max_inflight.unwrap_or(b.max_inflight);
        b.max_drops = self.max_drops.unwrap_or(b.max_drops);
        b.max_dups = self.max_dups.unwrap_or(b.max_dups);
        b.snapshots = self.snapshots.unwrap_or(b.snapshots);
        b.max_reads = self.max_reads.unwrap_or(b.max_reads);
        b.voters = self.voters.unwrap_or(b.voters);
        b.max_changes = self.max_changes.unwrap_or(b.max_changes);
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            preset,
            bfs,
            threads,
            trace,
            coverage,
            flags,
        } => {
            if threads == Some(0) {
                eprintln!("error: --threads must be at least 1");
                return ExitCode::from(2);
            }
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            match bounds(&preset, &flags) {
                Ok(b) => check(b, bfs, threads, trace, coverage),
                Err(code) => code,
            }
        }
        Command::Reach {
            preset,
            all_actions,
            flags,
        } => match bounds(&preset, &flags) {
            Ok(b) => reach(
                b,
                if all_actions {
                    reach::Actions::All
                } else {
                    reach::Actions::Canonical
                },
            ),
            Err(code) => code,
        },
    }
}

/// The preset's bounds with the flags applied, or the exit code of a usage error.
fn bounds(preset: &str, flags: &BoundFlags) -> Result<implcheck::Bounds, ExitCode> {
    let Some(preset) = implcheck::preset(preset) else {
        let names: Vec<_> = implcheck::PRESETS
            .iter()
            .chain([
                &implcheck::OVERLAP,
                &implcheck::INSTALL,
                &implcheck::CONFLICT,
            ])
            .map(|p| p.name)
            .collect();
        eprintln!(
            "error: unknown preset '{preset}'; the presets are: {}",
            names.join(", ")
        );
        return Err(ExitCode::from(2));
    };
    let mut b = preset.bounds;
    flags.apply(&mut b);
    if !(2..=5).contains(&b.servers) || (b.max_inflight as usize) < b.servers as usize - 1 {
        eprintln!(
            "error: --servers must be 2 to 5 and --max-inflight at least servers - 1 (got {} and {})",
            b.servers, b.max_inflight
        );
        return Err(ExitCode::from(2));
    }
    println!(
        "exploring the raft core: servers={} max-term={} max-log={} max-crashes={} max-inflight={} \
         max-drops={} max-dups={} snapshots={} max-reads={} pre-vote={} check-quorum={} max-transfers={} \
         voters={} max-changes={}",
        b.servers,
        b.max_term,
        b.max_log,
        b.max_crashes,
        b.max_inflight,
        b.max_drops,
        b.max_dups,
        if b.snapshots { "on" } else { "off" },
        b.max_reads,
        if b.pre_vote { "on" } else { "off" },
        if b.check_quorum { "on" } else { "off" },
        b.max_transfers,
        if b.voters == 0 { b.servers } else { b.voters },
        b.max_changes
    );
    Ok(b)
}

fn reach(b: implcheck::Bounds, actions: reach::Actions) -> ExitCode {
    let start = Instant::now();
    let r = reach::measure(b, actions, None);
    let secs = start.elapsed().as_secs_f64();
    let pct = |k: usize| 100.0 * k as f64 / r.reachable.max(1) as f64;
    println!(
        "implementation: {} states explored, {} violations, {} distinct spec states reached",
        r.impl_states, r.violations, r.reached
    );
    println!(
        "spec: {} states explored, {} distinct spec states reachable within the same bounds ({}; a timer or a command while {} in flight leave room for a message to every peer, \
         a duplicate while they leave room for one, a leader's own sends up to {} in flight, the most the \
         implementation had)",
        r.spec_states,
        r.reachable,
        match r.spec.actions {
            reach::Actions::Canonical => "the model checker's enumeration and any next_index",
            reach::Actions::All => "every action the guards allow",
        },
        r.spec.room,
        r.spec.bounds.max_inflight
    );
    println!("both: {} ({:.1} % of the spec's)", r.common, pct(r.common));
    println!(
        "implementation states outside the spec: {}",
        r.outside.len()
    );
    for o in &r.outside {
        match &o.from {
            Some((parent, action)) => println!(
                "\nfrom a spec state\n{}\nthe implementation's step '{action}' leads outside, to\n{}",
                model::display::state(parent),
                model::display::state(&o.state)
            ),
            None => println!(
                "\nfurther out (reached only through states outside):\n{}",
                model::display::state(&o.state)
            ),
        }
    }
    let unreached = r.reachable - r.common;
    println!(
        "spec states never reached: {unreached} ({:.1} %), by the step that leaves the implementation's reach:",
        pct(unreached)
    );
    for c in &r.unreached {
        println!(
            "  {:<28} {:>9} states ({} one step out: {} halfway through a step the implementation \
             takes whole, {} with the budget it needs spent), e.g. {}\n      why: {}",
            format!("{:?}", c.step),
            c.total,
            c.frontier,
            c.halfway,
            c.spent,
            c.example,
            c.step.reason()
        );
        if let Some((from, words)) = &c.other {
            println!(
                "      neither, e.g. {words} from\n{}",
                model::display::state(from)
            );
        }
    }
    println!(
        "done: {secs:.1} s, peak memory {}",
        model::check::peak_memory().map_or("unknown".into(), |b| format!(
            "{:.1} MiB",
            b as f64 / 1048576.0
        ))
    );
    if r.outside.is_empty() && r.violations == 0 {
        println!(
            "result: OK reached={} reachable={} common={} outside=0 secs={secs:.1}",
            r.reached, r.reachable, r.common
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "result: VIOLATED {} (outside={} violations={})",
            implcheck::REFINEMENT,
            r.outside.len(),
            r.violations
        );
        ExitCode::FAILURE
    }
}

fn check(
    b: implcheck::Bounds,
    bfs: bool,
    threads: usize,
    trace: Option<std::path::PathBuf>,
    coverage: bool,
) -> ExitCode {
    println!(
        "search: {} with symmetry reduction on {threads} thread(s); every step checked against the model",
        if bfs { "BFS" } else { "DFS" }
    );
    let mut model = ImplModel::new(b);
    let counts = coverage.then(|| Arc::new(Coverage::default()));
    model.coverage = counts.clone();
    let start = Instant::now();
    let builder = model
        .clone()
        .checker()
        .threads(threads)
        .finish_when(HasDiscoveries::AnyFailures);
    let (progress, path) = if bfs {
        watch(builder.spawn_bfs(), start)
    } else {
        watch(builder.spawn_dfs(), start)
    };
    let (unique, total, depth) = progress;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "done: unique states {unique}, total states {total}, max depth {depth}, {secs:.1} s, {:.0} unique \
         states/s, peak memory {}",
        unique as f64 / secs.max(1e-9),
        model::check::peak_memory()
            .map_or("unknown".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
    );
    let print_coverage = || {
        if let Some(c) = &counts {
            print!("{}", model::coverage::render(&c.covered()));
        }
    };
    let Some(path) = path else {
        print_coverage();
        println!("result: OK unique={unique} total={total} depth={depth} secs={secs:.1}");
        return ExitCode::SUCCESS;
    };
    let (states, actions): (Vec<State>, Vec<_>) = path.into_iter().unzip();
    let actions: Vec<_> = actions.into_iter().flatten().collect();
    let last = states.last().expect("a path has a state");
    let violation = last.violation().expect("the property failed");
    println!("\ncounterexample ({} steps):", actions.len());
    for (k, a) in actions.iter().enumerate() {
        println!("{}. {a}", k + 1);
    }
    println!("\n{}", model::display::state(&last.spec()));
    println!("\n{}: {}", violation.property, violation.reason);
    if let Some(file) = trace {
        match model.trace_of(&actions).write_file(&file) {
            Ok(()) => println!(
                "trace written to {0}: draw it with `tracecheck {0} --svg run.svg`",
                file.display()
            ),
            Err(e) => eprintln!("error: cannot write {}: {e}", file.display()),
        }
    }
    print_coverage();
    println!("result: VIOLATED {}", violation.property);
    ExitCode::FAILURE
}

type Found = Option<Vec<(State, Option<implcheck::Action>)>>;

fn watch(checker: impl Checker<ImplModel>, start: Instant) -> ((usize, usize, usize), Found) {
    let mut next = Instant::now() + Duration::from_secs(3);
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "  ... {secs:>6.1}s  unique={} total={} depth={} ({:.0} unique/s)",
                checker.unique_state_count(),
                checker.state_count(),
                checker.max_depth(),
                checker.unique_state_count() as f64 / secs
            );
            next += Duration::from_secs(3);
        }
    }
    let checker = checker.join();
    let progress = (
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
    );
    let path = checker
        .discoveries()
        .into_values()
        .next()
        .map(|p| p.into_vec());
    (progress, path)
}
