//! `model`: check, explore or simulate the Raft model.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use model::bounds::{self, witness, Bounds, Bug, Preset};
use model::check::{self, Options};
use model::{display, RaftModel};
use stateright::Model;
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
}

/// The bounds; each flag overrides the preset's value.
#[derive(Args, Clone)]
struct BoundArgs {
    /// Starting bounds: small, default or deep.
    #[arg(long, default_value = "default")]
    preset: String,
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
    /// Switch on a bug (`--bug list` lists them). Without other flags, uses the bug's bounds.
    #[arg(long)]
    bug: Option<String>,
}

#[derive(Args, Clone)]
struct CheckArgs {
    #[command(flatten)]
    bounds: BoundArgs,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Breadth-first search: shortest counterexamples, no symmetry reduction.
    #[arg(long)]
    bfs: bool,
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
    /// Seed of the random walks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of walks.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// Steps per walk.
    #[arg(long, default_value_t = 100)]
    depth: usize,
}

/// A usage error: reported with exit status 2, like clap's own.
struct Usage(String);

/// The model and the sometimes-properties expected at its bounds.
fn resolve(args: &BoundArgs, simulate: bool) -> Result<(RaftModel, Vec<&'static str>), Usage> {
    let bug = match args.bug.as_deref() {
        None => None,
        Some(name) => Some(name.parse::<Bug>().map_err(|e| Usage(e.to_string()))?),
    };
    let preset: Preset = bounds::preset(&args.preset).ok_or_else(|| {
        let names: Vec<_> = bounds::PRESETS.iter().map(|p| p.name).collect();
        Usage(format!(
            "unknown preset '{}'; the presets are: {}",
            args.preset,
            names.join(", ")
        ))
    })?;
    let mut b = match bug {
        Some(bug) if args.preset == "default" => bug.bounds(),
        _ => preset.bounds,
    };
    if simulate {
        b = Bounds {
            max_term: 8,
            max_log: 6,
            max_crashes: 4,
            max_inflight: 8,
            max_drops: 6,
            max_dups: 4,
            values: 2,
            ..b
        };
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
    b.validate().map_err(|e| Usage(e.to_string()))?;
    let expect = preset
        .expect
        .iter()
        .copied()
        .filter(|w| b.can_reach(w))
        .collect();
    Ok((RaftModel::with_bug(b, bug), expect))
}

fn describe(model: &RaftModel) -> String {
    let b = &model.bounds;
    let mut s = format!(
        "servers={} max-term={} max-log={} max-crashes={} max-inflight={} max-drops={} \
         max-dups={} values={} snapshots={}",
        b.servers,
        b.max_term,
        b.max_log,
        b.max_crashes,
        b.max_inflight,
        b.max_drops,
        b.max_dups,
        b.values,
        if b.snapshots { "on" } else { "off" }
    );
    if let Some(bug) = model.bug {
        s.push_str(&format!(" bug={} ({})", bug.name(), bug.describe()));
    }
    s
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn check(args: CheckArgs) -> Result<ExitCode, Usage> {
    if args.bounds.bug.as_deref() == Some("list") {
        for bug in Bug::ALL {
            println!("{:<22} {}", bug.name(), bug.describe());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.threads == Some(0) {
        return Err(Usage("--threads must be at least 1".into()));
    }
    let (model, expect) = resolve(&args.bounds, false)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("checking Raft: {}", describe(&model));
    println!(
        "search: {} on {threads} thread(s)",
        if args.bfs {
            "BFS"
        } else {
            "DFS with symmetry reduction"
        }
    );
    let options = Options {
        threads,
        bfs: args.bfs,
        expect,
    };
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
    if let Some((name, path)) = &report.counterexample {
        println!("\ncounterexample for {name}:");
        print!("{}", check::format_path(path));
        match check::explorer_fragment(&model, path) {
            Some(fragment) => println!(
                "open it in the Explorer: cargo run --release -p model -- explore {}\n  then \
                 http://127.0.0.1:3000/{fragment}",
                explore_flags(&args.bounds)
            ),
            None => println!("(this path uses actions the Explorer does not offer)"),
        }
    }
    println!("{}", report.result_line());
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The flags that make `explore` build the same model as this `check`.
fn explore_flags(args: &BoundArgs) -> String {
    let mut flags = vec![format!("--preset {}", args.preset)];
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
    push("bug", args.bug.clone());
    if args.snapshots {
        flags.push("--snapshots".into());
    }
    flags.join(" ")
}

fn explore(args: ExploreArgs) -> Result<ExitCode, Usage> {
    let (model, _) = resolve(&args.bounds, false)?;
    println!(
        "Explorer for Raft ({}) on http://{}",
        describe(&model),
        args.addr
    );
    model.checker().threads(1).serve(args.addr.as_str());
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: SimulateArgs) -> Result<ExitCode, Usage> {
    if args.runs == 0 || args.depth == 0 {
        return Err(Usage("--runs and --depth must be at least 1".into()));
    }
    let (model, _) = resolve(&args.bounds, true)?;
    println!(
        "simulating Raft: {} seed={} runs={} depth={}",
        describe(&model),
        args.seed,
        args.runs,
        args.depth
    );
    let start = Instant::now();
    let outcome = model::simulate::simulate(&model, args.seed, args.runs, args.depth);
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
            "\ncounterexample for {name} (walk {} of seed {}):",
            outcome.runs, args.seed
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => check(a),
        Command::Explore(a) => explore(a),
        Command::Simulate(a) => simulate(a),
    };
    match result {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
