//! The kill matrix: which detector catches each of the core's mutants (`raft::mutants`, feature `mutants`).
//!
//! Detectors: the exhaustive implementation check ([`crate::implcheck`], breadth-first, so its path is a
//! shortest one), trace validation of a lab campaign (every run checked against the model), the lab tests'
//! own checks (the same runs), and the core's unit tests (`cargo test -p raft`, run as a child process).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use raft::mutants::{self, Mutant};
use stateright::{Checker, HasDiscoveries, Model};

use crate::implcheck::{self, ImplModel};
use crate::lab::{runner, TESTS};

/// What one detector found.
#[derive(Clone, Debug)]
pub struct Detection {
    /// Whether it caught the mutant.
    pub caught: bool,
    /// Where: the path length, or the test and seed.
    pub at: String,
    /// Time to the catch (or to giving up).
    pub secs: f64,
}

/// Explores the implementation with `mutant` on, at the small preset, then the default one (both
/// breadth-first: shortest paths), then the overlap and install presets (depth-first: their breadth-first
/// queues of whole clusters take too much memory), stopping at the first violation. A panic of the core counts as caught.
pub fn by_implcheck(mutant: Mutant) -> Detection {
    mutants::set(Some(mutant));
    let start = Instant::now();
    let mut found = None;
    for name in ["small", "default", "overlap", "install"] {
        let model = ImplModel::new(implcheck::preset(name).expect("a preset").bounds);
        let run = catch_unwind(AssertUnwindSafe(|| {
            let builder = model
                .checker()
                .threads(2)
                .finish_when(HasDiscoveries::AnyFailures);
            if name == "overlap" || name == "install" {
                first_violation(builder.spawn_dfs().join())
            } else {
                first_violation(builder.spawn_bfs().join())
            }
        }));
        found = match run {
            Ok(Some((property, len))) => Some(format!(
                "{name}: {len} steps, {}",
                property.unwrap_or(implcheck::REFINEMENT)
            )),
            Ok(None) => None,
            Err(_) => Some(format!("{name}: the core panicked")),
        };
        if found.is_some() {
            break;
        }
    }
    mutants::set(None);
    Detection {
        caught: found.is_some(),
        at: found.unwrap_or_else(|| "-".into()),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// The violated property and the path length of a finished search's first discovery.
fn first_violation(checker: impl Checker<ImplModel>) -> Option<(Option<&'static str>, usize)> {
    checker.discoveries().into_values().next().map(|p| {
        (
            p.last_state().violation().map(|v| v.property),
            p.into_actions().len(),
        )
    })
}

/// Runs every lab test on `seeds` with `mutant` on, each run's trace checked against the model; returns
/// what trace validation and what the lab tests' own checks caught, each at its first catch. Stops early
/// once both caught it (or, with `until_validated`, once trace validation did).
pub fn by_lab(
    mutant: Mutant,
    seeds: std::ops::Range<u64>,
    until_validated: bool,
) -> (Detection, Detection) {
    mutants::set(Some(mutant));
    let start = Instant::now();
    let mut trace: Option<(String, Duration)> = None;
    let mut lab: Option<(String, Duration)> = None;
    'campaign: for seed in seeds {
        for test in TESTS {
            let (outcome, verdict) = runner::run_checked(test, seed, true);
            let at = format!("{} seed {seed}", test.go_name);
            if trace.is_none() && verdict.is_err() {
                trace = Some((at.clone(), start.elapsed()));
            }
            if lab.is_none() && outcome.failure.is_some() {
                lab = Some((at, start.elapsed()));
            }
            if trace.is_some() && (lab.is_some() || until_validated) {
                break 'campaign;
            }
        }
    }
    mutants::set(None);
    let total = start.elapsed();
    let detection = |d: Option<(String, Duration)>| match d {
        Some((at, t)) => Detection {
            caught: true,
            at,
            secs: t.as_secs_f64(),
        },
        None => Detection {
            caught: false,
            at: "-".into(),
            secs: total.as_secs_f64(),
        },
    };
    (detection(trace), detection(lab))
}

/// Runs the core's unit tests with `mutant` on (`cargo test --release -p raft --features mutants` in a child
/// process, `RAFT_MUTANT` naming the mutant). `None` if cargo could not be run.
pub fn by_unit_tests(mutant: Mutant) -> Option<Detection> {
    let start = Instant::now();
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "--release",
                "-q",
                "-p",
                "raft",
                "--features",
                "mutants",
            ])
            .env("RAFT_MUTANT", mutant.name())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
    Some(Detection {
        caught: !status.success(),
        at: if status.success() {
            "-"
        } else {
            "a test failed"
        }
        .into(),
        secs: start.elapsed().as_secs_f64(),
    })
}
