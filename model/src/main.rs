//! `model`: check, explore or simulate the Raft model.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use model::bounds::{self, witness, Bounds, Bug, Preset};
use model::check::{self, Options};
use model::coverage::{Condition, StuckAt};
use model::{display, RaftModel};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "model",
    about = "An exhaustively checked stateright model of Raft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exhaustively check every behaviour within the bounds.
    Check(CheckArgs),
    /// Serve the stateright Explorer web UI over the same model.
    Explore(ExploreArgs),
    /// Random walks at bounds too large to exhaust.
    Simulate(SimulateArgs),
    /// Liveness under a partial partition: the specification driven by clocks, with and without
    /// PreVote and CheckQuorum, idle and under writes.
    Partition(PartitionArgs),
}

/// The bounds; each flag overrides the preset's value (`--servers` alone also raises the
/// preset's messages in flight to voters - 1 where it is lower: an election needs that many).
#[derive(Args, Clone)]
struct BoundArgs {
    /// Starting bounds: default, terms, overlap, five, snapshots, snapshot-overlap, reads,
    /// learners, two-removals, joint, pre-vote, pre-vote-four, check-quorum (the portfolio),
    /// small, deep or two-removals-deep.
    /// Without it (and without bound flags) `check` runs the portfolio; the other commands, and
    /// `check` with bound flags, start from `default`.
    #[arg(long)]
    preset: Option<String>,
    /// Number of servers (2 to 7).
    #[arg(long)]
    servers: Option<u8>,
    /// Highest term a server may time out into.
    #[arg(long)]
    max_term: Option<u32>,
    /// Longest log a leader may grow by client requests.
    #[arg(long)]
    max_log: Option<u32>,
    /// Crash-and-restarts in a behaviour.
    #[arg(long)]
    max_crashes: Option<u8>,
    /// Messages in flight at once.
    #[arg(long)]
    max_inflight: Option<u8>,
    /// Messages dropped in a behaviour.
    #[arg(long)]
    max_drops: Option<u8>,
    /// Messages duplicated in a behaviour.
    #[arg(long)]
    max_dups: Option<u8>,
    /// Distinct client values.
    #[arg(long)]
    values: Option<u32>,
    /// Let servers compact their logs into snapshots (InstallSnapshot, restart from snapshot).
    #[arg(long)]
    snapshots: bool,
    /// Let leaders also send shorter AppendEntries than all entries after next_index (none, one).
    #[arg(long)]
    partial_batches: bool,
    /// Reads (ReadIndex) that leaders begin in a behaviour.
    #[arg(long)]
    max_reads: Option<u8>,
    /// Servers that vote at first (the others start outside the cluster); all of them by default.
    #[arg(long)]
    voters: Option<u8>,
    /// Configuration changes leaders append in a behaviour.
    #[arg(long)]
    max_changes: Option<u8>,
    /// Change configurations through joint consensus rather than one server at a time.
    #[arg(long)]
    joint: bool,
    /// PreVote: a server whose election timer fires asks for pre-votes before it raises its term.
    #[arg(long)]
    pre_vote: bool,
    /// CheckQuorum: leaders step down without a quorum, and servers that hear from a leader
    /// ignore higher-term RequestVotes and PreVotes until their election timer runs out.
    #[arg(long)]
    check_quorum: bool,
    /// Leadership transfers (TimeoutNow) that leaders make in a behaviour.
    #[arg(long)]
    max_transfers: Option<u8>,
    /// Switch on a bug (`--bug list` lists them). Without other flags, uses the bug's bounds.
    #[arg(long)]
    bug: Option<String>,
    /// Force one condition of one decision to a value wherever it is evaluated:
    /// `<decision>/<condition>=<true|false>` (`check --coverage` lists the conditions; `check
    /// --stuck list` runs the portfolio with each condition stuck at each value).
    #[arg(long)]
    stuck: Option<String>,
}

#[derive(Args, Clone)]
struct CheckArgs {
    #[command(flatten)]
    bounds: BoundArgs,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Breadth-first search: shortest counterexamples (with symmetry reduction, as depth-first).
    #[arg(long)]
    bfs: bool,
    /// Count how often the search takes each branch of the specification, and print it.
    #[arg(long)]
    coverage: bool,
}

#[derive(Args, Clone)]
struct ExploreArgs {
    #[command(flatten)]
    bounds: BoundArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

#[derive(Args, Clone)]
struct SimulateArgs {
    #[command(flatten)]
    bounds: BoundArgs,
    /// Seed of the random walks (default: a fresh one, printed so that the run can be replayed).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of walks.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// Steps per walk.
    #[arg(long, default_value_t = 100)]
    depth: usize,
    /// Choose among every action the guards allow (any batch, commit point, compaction or
    /// next_index), not only the canonical ones that `check` explores.
    #[arg(long)]
    all_actions: bool,
}

#[derive(Args, Clone)]
struct PartitionArgs {
    /// Servers in the cluster (3 to 7).
    #[arg(long, default_value_t = 3)]
    servers: u8,
    /// Runs (seeds 1 to N) of each configuration.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Seconds the link stays cut.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Force one condition of one decision, as `check --stuck` does.
    #[arg(long)]
    stuck: Option<String>,
}

/// A usage error: reported with exit status 2, like clap's own.
struct Usage(String);

/// One exhaustive search: a model and the sometimes-properties expected at its bounds.
struct Part {
    name: &'static str,
    model: RaftModel,
    expect: Vec<&'static str>,
}

impl BoundArgs {
    /// Whether any flag sets a bound.
    fn sets_bounds(&self) -> bool {
        self.servers.is_some()
            || self.max_term.is_some()
            || self.max_log.is_some()
            || self.max_crashes.is_some()
            || self.max_inflight.is_some()
            || self.max_drops.is_some()
            || self.max_dups.is_some()
            || self.values.is_some()
            || self.snapshots
            || self.partial_batches
            || self.max_reads.is_some()
            || self.voters.is_some()
            || self.max_changes.is_some()
            || self.joint
            || self.pre_vote
            || self.check_quorum
            || self.max_transfers.is_some()
    }

    fn bug(&self) -> Result<Option<Bug>, Usage> {
        match self.bug.as_deref() {
            None => Ok(None),
            Some(name) => Ok(Some(name.parse::<Bug>().map_err(|e| Usage(e.to_string()))?)),
        }
    }

    fn stuck(&self) -> Result<Option<StuckAt>, Usage> {
        self.stuck
            .as_deref()
            .map(|text| model::coverage::parse_stuck(text).map_err(Usage))
            .transpose()
    }

    /// The model at `bounds` with the bug and the stuck condition given.
    fn model(&self, bounds: Bounds) -> Result<RaftModel, Usage> {
        let mut model = RaftModel::with_bug(bounds, self.bug()?);
        model.stuck = self.stuck()?;
        Ok(model)
    }
}

/// What `check` searches: the portfolio when neither a preset nor a bound is given (with a bug,
/// the preset that catches it first), else one configuration.
fn resolve_check(args: &BoundArgs) -> Result<Vec<Part>, Usage> {
    if args.preset.is_some() || args.sets_bounds() {
        return Ok(vec![resolve(args, false)?]);
    }
    let bug = args.bug()?;
    let mut names = bounds::PORTFOLIO.to_vec();
    if let Some(bug) = bug {
        names.sort_by_key(|&n| n != bug.preset());
    }
    names
        .into_iter()
        .map(|name| {
            let preset = bounds::preset(name).expect("the portfolio names presets");
            Ok(Part {
                name: preset.name,
                model: args.model(preset.bounds)?,
                expect: preset.expect.to_vec(),
            })
        })
        .collect()
}

/// One configuration: the preset (`default` if none) with each bound flag given overriding it.
fn resolve(args: &BoundArgs, simulate: bool) -> Result<Part, Usage> {
    let name = args.preset.as_deref().unwrap_or("default");
    let preset: Preset = bounds::preset(name).ok_or_else(|| {
        let names: Vec<_> = bounds::PRESETS.iter().map(|p| p.name).collect();
        Usage(format!(
            "unknown preset '{name}'; the presets are: {}",
            names.join(", ")
        ))
    })?;
    let mut b = preset.bounds;
    if simulate {
        b = scaled_for_simulation(b);
    }
    // Each flag given overrides the preset's value.
    b.servers = args.servers.unwrap_or(b.servers);
    b.max_term = args.max_term.unwrap_or(b.max_term);
    b.max_log = args.max_log.unwrap_or(b.max_log);
    b.max_crashes = args.max_crashes.unwrap_or(b.max_crashes);
    b.max_inflight = args.max_inflight.unwrap_or(b.max_inflight);
    b.max_drops = args.max_drops.unwrap_or(b.max_drops);
    b.max_dups = args.max_dups.unwrap_or(b.max_dups);
    b.values = args.values.unwrap_or(b.values);
    b.snapshots |= args.snapshots;
    b.partial_batches |= args.partial_batches;
    b.max_reads = args.max_reads.unwrap_or(b.max_reads);
    // With every server a voter in the preset, `--servers` alone keeps them all voters.
    let all_vote = preset.bounds.voters == preset.bounds.servers;
    b.voters = args.voters.unwrap_or(if all_vote {
        b.servers
    } else {
        b.voters.min(b.servers)
    });
    b.max_changes = args.max_changes.unwrap_or(b.max_changes);
    b.joint |= args.joint;
    b.pre_vote |= args.pre_vote;
    b.check_quorum |= args.check_quorum;
    b.max_transfers = args.max_transfers.unwrap_or(b.max_transfers);
    if args.max_inflight.is_none() {
        b.max_inflight = b.max_inflight.max(b.voters.saturating_sub(1));
    }
    b.validate().map_err(|e| Usage(e.to_string()))?;
    let expect = preset
        .expect
        .iter()
        .copied()
        .filter(|w| b.can_reach(w))
        .collect();
    Ok(Part {
        name: preset.name,
        model: args.model(b)?,
        expect,
    })
}

/// The bounds `simulate` walks at for a preset: too large to exhaust, in the preset's proportions
/// (a budget the preset leaves at zero stays zero). From `default`: terms up to 8, logs up to 6,
/// 4 crashes, 8 messages in flight, 6 losses, 4 duplicates, 2 values; from `joint`, 6 changes.
fn scaled_for_simulation(b: Bounds) -> Bounds {
    Bounds {
        max_term: b.max_term * 4,
        max_log: b.max_log * 3,
        max_crashes: b.max_crashes.saturating_mul(4),
        max_inflight: b.max_inflight.saturating_mul(4),
        max_drops: b.max_drops.saturating_mul(6),
        max_dups: b.max_dups.saturating_mul(4),
        max_reads: b.max_reads.saturating_mul(4),
        max_changes: b.max_changes.saturating_mul(3),
        max_transfers: b.max_transfers.saturating_mul(4),
        values: b.values.max(2),
        ..b
    }
}

fn describe(model: &RaftModel) -> String {
    let b = &model.bounds;
    let mut s = format!(
        "servers={} max-term={} max-log={} max-crashes={} max-inflight={} max-drops={} \
         max-dups={} values={} snapshots={} partial-batches={} max-reads={}",
        b.servers,
        b.max_term,
        b.max_log,
        b.max_crashes,
        b.max_inflight,
        b.max_drops,
        b.max_dups,
        b.values,
        if b.snapshots { "on" } else { "off" },
        if b.partial_batches { "on" } else { "off" },
        b.max_reads
    );
    if b.voters != b.servers || b.max_changes > 0 {
        s.push_str(&format!(
            " voters={} max-changes={} joint={}",
            b.voters,
            b.max_changes,
            if b.joint { "on" } else { "off" }
        ));
    }
    if b.pre_vote || b.check_quorum || b.max_transfers > 0 {
        s.push_str(&format!(
            " pre-vote={} check-quorum={} max-transfers={}",
            if b.pre_vote { "on" } else { "off" },
            if b.check_quorum { "on" } else { "off" },
            b.max_transfers
        ));
    }
    if let Some(bug) = model.bug {
        s.push_str(&format!(" bug={} ({})", bug.name(), bug.describe()));
    }
    if let Some((condition, value)) = model.stuck {
        s.push_str(&format!(" stuck={}={value}", condition.name()));
    }
    s
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn check(args: CheckArgs) -> Result<ExitCode, Usage> {
    if args.threads == Some(0) {
        return Err(Usage("--threads must be at least 1".into()));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if args.bounds.bug.as_deref() == Some("list") {
        return Ok(bug_list(threads));
    }
    if args.bounds.stuck.as_deref() == Some("list") {
        return Ok(stuck_list(threads));
    }
    let parts = resolve_check(&args.bounds)?;
    let several = parts.len() > 1;
    if several {
        let names: Vec<_> = parts.iter().map(|p| p.name).collect();
        println!(
            "checking Raft: a portfolio of {} exhaustive searches, one after the other: {}",
            parts.len(),
            names.join(", ")
        );
    }
    let mut done = Vec::new();
    let mut coverage: Option<model::coverage::Covered> = None;
    let mut failure = None;
    for (k, part) in parts.iter().enumerate() {
        if several {
            println!("\n== part {}/{}: preset {}", k + 1, parts.len(), part.name);
        }
        let report = check_one(part, &args, threads);
        if let Some(covered) = &report.coverage {
            coverage.get_or_insert_with(Default::default).merge(covered);
        }
        let ok = report.ok();
        done.push((part.name, report.progress, report.peak_memory));
        if !ok {
            failure = Some(report.result_line());
            break;
        }
    }
    if several {
        println!("\nportfolio:");
        for (name, p, peak) in &done {
            println!(
                "  {name:<16} unique={:<10} total={:<11} depth={:<4} {:>6.1} s  {:>7.0} unique/s  \
                 peak memory {}",
                p.unique,
                p.total,
                p.depth,
                p.elapsed.as_secs_f64(),
                p.unique as f64 / p.elapsed.as_secs_f64().max(1e-9),
                peak.map_or("unknown".into(), human)
            );
        }
    }
    if let Some(counts) = &coverage {
        print!("{}", model::coverage::render(counts));
    }
    let result = failure.clone().unwrap_or_else(|| {
        let unique: usize = done.iter().map(|(_, p, _)| p.unique).sum();
        let total: usize = done.iter().map(|(_, p, _)| p.total).sum();
        let depth = done.iter().map(|(_, p, _)| p.depth).max().unwrap_or(0);
        let secs: f64 = done.iter().map(|(_, p, _)| p.elapsed.as_secs_f64()).sum();
        format!("result: OK unique={unique} total={total} depth={depth} secs={secs:.1}")
    });
    println!("{result}");
    Ok(if failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `check --bug list`: every bug switch, run at the portfolio preset that catches it, with the
/// property that caught it and the search's size at that point.
fn bug_list(threads: usize) -> ExitCode {
    println!(
        "{:<20} {:<10} {:<48} {:>9} {:>6}  what it changes",
        "bug", "preset", "caught by", "unique", "secs"
    );
    let mut all_caught = true;
    for bug in Bug::ALL {
        let preset = bounds::preset(bug.preset()).expect("a bug names a preset");
        let options = Options {
            threads,
            bfs: false,
            expect: Vec::new(),
            coverage: false,
        };
        let model = RaftModel::with_bug(preset.bounds, Some(bug));
        let report = check::run(model, &options, Duration::from_secs(3600), |_| {});
        let caught = report.counterexample.as_ref().map(|(name, _)| *name);
        all_caught &= caught.is_some();
        println!(
            "{:<20} {:<10} {:<48} {:>9} {:>6.1}  {}",
            bug.name(),
            preset.name,
            caught.unwrap_or("NOT CAUGHT"),
            report.progress.unique,
            report.progress.elapsed.as_secs_f64(),
            bug.describe()
        );
    }
    if all_caught {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `check --stuck list`: the portfolio with each condition of each decision stuck at each value,
/// stopping at the first violation: which property catches the departure, in which search, and
/// the searches' states to that point. A departure nothing catches changes what the spec does
/// (where coverage shows the condition deciding) without breaking a property; model/README.md says
/// why for each.
fn stuck_list(threads: usize) -> ExitCode {
    println!(
        "{:<58} {:<17} {:<48} {:>10} {:>6}",
        "stuck condition", "preset", "caught by", "unique", "secs"
    );
    for condition in Condition::ALL {
        for value in [true, false] {
            let mut caught = None;
            let (mut unique, mut secs) = (0, 0.0);
            for name in bounds::PORTFOLIO {
                let preset = bounds::preset(name).expect("the portfolio names presets");
                let options = Options {
                    threads,
                    bfs: false,
                    expect: preset.expect.to_vec(),
                    coverage: false,
                };
                let mut model = RaftModel::new(preset.bounds);
                model.stuck = Some((condition, value));
                let report = check::run(model, &options, Duration::from_secs(3600), |_| {});
                unique += report.progress.unique;
                secs += report.progress.elapsed.as_secs_f64();
                if !report.ok() {
                    let line = report.result_line();
                    let why = line.strip_prefix("result: ").unwrap_or(&line).to_string();
                    caught = Some((name, why));
                    break;
                }
            }
            let (preset, why) = caught.unwrap_or(("-", "not caught".into()));
            println!(
                "{:<58} {:<17} {:<48} {:>10} {:>6.1}",
                format!("{}={value}", condition.name()),
                preset,
                why,
                unique,
                secs
            );
        }
    }
    ExitCode::SUCCESS
}

/// Runs one exhaustive search and prints its figures, verdicts and any counterexample.
fn check_one(part: &Part, args: &CheckArgs, threads: usize) -> check::Report {
    let model = &part.model;
    println!("checking Raft: {}", describe(model));
    println!(
        "search: {} on {threads} thread(s)",
        if args.bfs {
            "BFS with symmetry reduction"
        } else {
            "DFS with symmetry reduction"
        }
    );
    let options = Options {
        threads,
        bfs: args.bfs,
        expect: part.expect.clone(),
        coverage: args.coverage,
    };
    check::reset_peak_memory();
    let report = check::run(model.clone(), &options, Duration::from_secs(3), |p| {
        println!(
            "  ... {:>6.1}s  unique={} total={} depth={} ({:.0} unique/s)",
            p.elapsed.as_secs_f64(),
            p.unique,
            p.total,
            p.depth,
            p.unique as f64 / p.elapsed.as_secs_f64()
        );
    });
    let p = report.progress;
    let secs = p.elapsed.as_secs_f64();
    println!(
        "done: unique states {}, total states {}, max depth {}, {:.1} s, {:.0} unique states/s, \
         peak memory {}",
        p.unique,
        p.total,
        p.depth,
        secs,
        p.unique as f64 / secs.max(1e-9),
        report.peak_memory.map_or("unknown".into(), human)
    );
    println!("properties:");
    for (name, verdict) in &report.verdicts {
        println!("  {:<50} {}", name, verdict.word());
    }
    if let Some(covered) = &report.coverage {
        println!(
            "{} and {} in this search",
            model::coverage::summary(&covered.branches),
            model::coverage::condition_summary(&covered.observed.conditions())
        );
    }
    if let Some((name, path)) = &report.counterexample {
        println!("\ncounterexample for {name}:");
        print!("{}", check::format_path(path));
        match check::explorer_fragment(model, path) {
            Some(fragment) => println!(
                "open it in the Explorer: cargo run --release -p model -- explore {}\n  then \
                 http://127.0.0.1:3000/{fragment}\n  (if port 3000 is taken, add --addr \
                 127.0.0.1:PORT to the command and use PORT in the address)",
                explore_flags(&args.bounds, part.name)
            ),
            None => println!("(this path uses actions the Explorer does not offer)"),
        }
    }
    report
}

/// The flags that make `explore` build the same model as this `check`'s part from `preset`.
fn explore_flags(args: &BoundArgs, preset: &str) -> String {
    let mut flags = vec![format!("--preset {preset}")];
    let mut push = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            flags.push(format!("--{name} {v}"));
        }
    };
    push("servers", args.servers.map(|v| v.to_string()));
    push("max-term", args.max_term.map(|v| v.to_string()));
    push("max-log", args.max_log.map(|v| v.to_string()));
    push("max-crashes", args.max_crashes.map(|v| v.to_string()));
    push("max-inflight", args.max_inflight.map(|v| v.to_string()));
    push("max-drops", args.max_drops.map(|v| v.to_string()));
    push("max-dups", args.max_dups.map(|v| v.to_string()));
    push("values", args.values.map(|v| v.to_string()));
    push("max-reads", args.max_reads.map(|v| v.to_string()));
    push("voters", args.voters.map(|v| v.to_string()));
    push("max-changes", args.max_changes.map(|v| v.to_string()));
    push("max-transfers", args.max_transfers.map(|v| v.to_string()));
    push("bug", args.bug.clone());
    push("stuck", args.stuck.clone());
    if args.snapshots {
        flags.push("--snapshots".into());
    }
    if args.partial_batches {
        flags.push("--partial-batches".into());
    }
    if args.joint {
        flags.push("--joint".into());
    }
    if args.pre_vote {
        flags.push("--pre-vote".into());
    }
    if args.check_quorum {
        flags.push("--check-quorum".into());
    }
    flags.join(" ")
}

fn explore(args: ExploreArgs) -> Result<ExitCode, Usage> {
    let model = resolve(&args.bounds, false)?.model;
    let description = describe(&model);
    let explorer = model::explorer::bind(model, &args.addr).map_err(Usage)?;
    println!(
        "Explorer for Raft ({description}) on http://{}",
        explorer.addr()
    );
    explorer.run();
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: SimulateArgs) -> Result<ExitCode, Usage> {
    if args.runs == 0 || args.depth == 0 {
        return Err(Usage("--runs and --depth must be at least 1".into()));
    }
    let model = resolve(&args.bounds, true)?.model;
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "simulating Raft: {} seed={seed} runs={} depth={}",
        describe(&model),
        args.runs,
        args.depth
    );
    if args.seed.is_none() {
        println!("seed: {seed} (replay this run with --seed {seed})");
    }
    let start = Instant::now();
    let choice = if args.all_actions {
        model::simulate::Actions::All
    } else {
        model::simulate::Actions::Canonical
    };
    let outcome = model::simulate::simulate_with(&model, choice, seed, args.runs, args.depth);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "done: {} walks, {} steps, {:.1} s, {:.0} steps/s",
        outcome.runs,
        outcome.steps,
        secs,
        outcome.steps as f64 / secs.max(1e-9)
    );
    for name in witness::ALL {
        let word = if outcome.witnessed.contains(&name) {
            "witnessed"
        } else {
            "not witnessed"
        };
        println!("  {name:<50} {word}");
    }
    if let Some((name, walk)) = outcome.violation {
        println!(
            "\ncounterexample for {name} (walk {} of seed {seed}):",
            outcome.runs
        );
        for (k, (state, action)) in walk.iter().enumerate() {
            if k == 0 {
                println!("0. initial state");
            }
            if let Some(a) = action {
                println!("{}. {}", k + 1, display::action(a));
                for line in display::state(&walk[k + 1].0).lines() {
                    println!("   {line}");
                }
            } else if k == 0 {
                for line in display::state(state).lines() {
                    println!("   {line}");
                }
            }
        }
        println!("result: VIOLATED {name}");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "result: OK runs={} steps={} secs={secs:.1}",
        outcome.runs, outcome.steps
    );
    Ok(ExitCode::SUCCESS)
}

fn partition(args: PartitionArgs) -> Result<ExitCode, Usage> {
    use model::partition::{run, Scenario, Timing};
    if !(3..=7).contains(&args.servers) || args.seeds == 0 || args.seconds == 0 {
        return Err(Usage(
            "--servers must be between 3 and 7, --seeds and --seconds at least 1".into(),
        ));
    }
    let stuck = args
        .stuck
        .as_deref()
        .map(model::coverage::parse_stuck)
        .transpose()
        .map_err(Usage)?;
    let timing = Timing::default();
    let settle = 5_000;
    println!(
        "partial partition: {} servers, heartbeat {} ms, election timeout {}..{} ms, latency \
         {}..={} ms; after {} s the leader's link to one follower is cut for {} s; seeds 1..={}",
        args.servers,
        timing.heartbeat,
        timing.election,
        2 * timing.election,
        timing.latency.0,
        timing.latency.1,
        settle / 1000,
        args.seconds,
        args.seeds
    );
    println!(
        "{:<9} {:<13} {:<15} {:>13} {:>22} {:>16} {:>13} {:>16}",
        "pre-vote",
        "check-quorum",
        "writes",
        "stable leader",
        "time to it (med, max)",
        "elections (mean)",
        "highest term",
        "leaderless (mean)"
    );
    let on = |x: bool| if x { "on" } else { "off" };
    let mut failed = false;
    for (pre_vote, check_quorum) in [(false, false), (true, false), (false, true), (true, true)] {
        for write_every in [None, Some(50)] {
            let mut model = RaftModel::new(Bounds {
                servers: args.servers,
                voters: args.servers,
                pre_vote,
                check_quorum,
                ..bounds::preset("default").expect("a preset").bounds
            });
            model.stuck = stuck;
            let scenario = Scenario {
                timing: Timing {
                    write_every,
                    ..timing
                },
                settle,
                partitioned: args.seconds * 1000,
                isolate: false,
            };
            let runs: Vec<_> = (1..=args.seeds)
                .map(|seed| run(&model, &scenario, seed))
                .collect();
            if let Some((seed, r)) = (1..).zip(&runs).find(|(_, r)| r.violation.is_some()) {
                println!(
                    "seed {seed}: VIOLATED {}",
                    r.violation.expect("a violation")
                );
                failed = true;
                continue;
            }
            let mut times: Vec<u64> = runs.iter().filter_map(|r| r.stable_after).collect();
            times.sort_unstable();
            let stable = times.len();
            let to_it = match (times.get(stable / 2), times.last()) {
                (Some(med), Some(max)) => format!("{med} ms, {max} ms"),
                _ => "-".to_string(),
            };
            let mean = |f: &dyn Fn(&model::partition::Run) -> u64| {
                runs.iter().map(f).sum::<u64>() as f64 / runs.len() as f64
            };
            println!(
                "{:<9} {:<13} {:<15} {:>13} {:>22} {:>16.1} {:>13} {:>13.0} ms",
                on(pre_vote),
                on(check_quorum),
                write_every.map_or("idle".to_string(), |ms| format!("every {ms} ms")),
                format!("{stable}/{}", runs.len()),
                to_it,
                mean(&|r| r.elections as u64),
                runs.iter().map(|r| r.max_term).max().unwrap_or(0),
                mean(&|r| r.leaderless),
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => check(a),
        Command::Explore(a) => explore(a),
        Command::Simulate(a) => simulate(a),
        Command::Partition(a) => partition(a),
    };
    match result {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
