//! `mutants`: the kill matrix of the core's deliberate bugs. For each mutant, each detector (the exhaustive
//! implementation check, trace validation of a lab campaign and then of random schedules, the lab tests'
//! own checks, the core's unit tests) with caught or not, where, and the time to the first catch.
//!
//!     cargo run --release -p conformance --features mutants --bin mutants -- [--seeds N] [--no-unit-tests]

use clap::Parser;
use conformance::mutants::{
    by_implcheck, by_trace_validation, by_unit_tests, Detection, SCHEDULES,
};
use raft::mutants::Mutant;

#[derive(Parser)]
#[command(
    name = "mutants",
    about = "Which checks catch each of the core's deliberate bugs"
)]
struct Cli {
    /// Seeds per lab test in the campaign (every test on seeds 1..=N).
    #[arg(long, default_value_t = 30)]
    seeds: u64,
    /// Skip the core's unit tests (they run as `cargo test` in a child process).
    #[arg(long)]
    no_unit_tests: bool,
    /// Only these mutants (by name); all by default.
    mutants: Vec<String>,
}

fn cell(d: &Detection) -> String {
    if d.caught {
        format!("caught ({}, {:.1} s)", d.at, d.secs)
    } else {
        format!("NOT caught ({:.1} s)", d.secs)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.seeds == 0 {
        eprintln!("error: --seeds must be at least 1");
        return std::process::ExitCode::from(2);
    }
    let mut chosen = Vec::new();
    for name in &cli.mutants {
        match Mutant::ALL.iter().find(|m| m.name() == name) {
            Some(m) => chosen.push(*m),
            None => {
                let names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
                eprintln!(
                    "error: unknown mutant '{name}'; the mutants are: {}",
                    names.join(", ")
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = Mutant::ALL.to_vec();
    }
    // Lab failures and the core's panics are caught and reported here; the default hook would print each.
    std::panic::set_hook(Box::new(|_| {}));
    let (mut by_impl, mut by_trace, mut by_tests) = (0, 0, 0);
    for m in &chosen {
        let implcheck = by_implcheck(*m);
        let (trace, lab) = by_trace_validation(*m, 1..cli.seeds + 1, SCHEDULES, false);
        let unit = if cli.no_unit_tests {
            "skipped".to_string()
        } else {
            by_unit_tests(*m).map_or("cargo did not run".into(), |d| cell(&d))
        };
        println!("{}", m.name());
        println!("  implcheck:         {}", cell(&implcheck));
        println!("  trace validation:  {}", cell(&trace));
        println!("  lab tests:         {}", cell(&lab));
        println!("  core unit tests:   {unit}");
        by_impl += usize::from(implcheck.caught);
        by_trace += usize::from(trace.caught);
        by_tests += usize::from(lab.caught);
    }
    println!(
        "mutants: {} total, implcheck caught {by_impl}, trace validation caught {by_trace}, lab tests caught {by_tests}",
        chosen.len()
    );
    std::process::ExitCode::SUCCESS
}
