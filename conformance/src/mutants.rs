//! The kill matrix: which detector catches each of the core's mutants (`raft::mutants`, feature `mutants`).
//!
//! Detectors: the exhaustive implementation check ([`crate::implcheck`], breadth-first, so its path is a
//! shortest one), trace validation of a lab campaign (every run checked against the model) and, for a
//! mutant no lab run shows, of random schedules, the lab tests' own checks (the lab campaign's runs), and
//! the core's unit tests (`cargo test -p raft`, run as a child process).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use raft::mutants::{self, Mutant};
use stateright::{Checker, HasDiscoveries, Model, Property};

use crate::implcheck::{self, ImplModel};
use crate::lab::{runner, LabTest, TESTS};
use crate::schedule;

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

/// Explores the implementation with `mutant` on, at the small, default, five, snapshot-overlap, reads and
/// reads-terms presets in
/// turn (breadth-first: shortest paths), then the overlap, install and conflict presets at once (depth-first,
/// one thread each: their breadth-first queues of whole clusters take too much memory, and each catches
/// mutants the others miss), stopping at the first violation. A panic of the core counts as caught.
pub fn by_implcheck(mutant: Mutant) -> Detection {
    mutants::set(Some(mutant));
    let start = Instant::now();
    let mut found = None;
    // A PreVote mutant does nothing in nodes without PreVote, nor a CheckQuorum one without CheckQuorum.
    let presets: &[&str] = if mutant.needs_conf_change() {
        &["membership"]
    } else if mutant.needs_pre_vote() {
        &["pre-vote"]
    } else if mutant.needs_check_quorum() {
        &["check-quorum"]
    } else {
        &[
            "small",
            "default",
            "five",
            "snapshot-overlap",
            "reads",
            "reads-terms",
        ]
    };
    for &name in presets {
        let model = ImplModel::new(implcheck::preset(name).expect("a preset").bounds);
        let run = catch_unwind(AssertUnwindSafe(|| {
            let checker = model
                .checker()
                .threads(2)
                .finish_when(HasDiscoveries::AnyFailures)
                .spawn_bfs()
                .join();
            first_violation(&checker)
        }));
        found = match run {
            Ok(Some(v)) => Some(format!("{name}: {v}")),
            Ok(None) => None,
            Err(_) => Some(format!("{name}: the core panicked")),
        };
        if found.is_some() {
            break;
        }
    }
    if found.is_none() {
        found = race(&["overlap", "install", "conflict"]);
    }
    mutants::set(None);
    Detection {
        caught: found.is_some(),
        at: found.unwrap_or_else(|| "-".into()),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Searches the presets `names` at once, depth-first on a thread each, until one finds a violation (then
/// the others are stopped) or all are exhausted. Returns where the first violation was found.
fn race(names: &[&str]) -> Option<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut runs: Vec<_> = names
        .iter()
        .map(|&name| {
            let model = Stoppable {
                inner: ImplModel::new(implcheck::preset(name).expect("a preset").bounds),
                stop: Arc::clone(&stop),
            };
            let mut checker = model
                .checker()
                .threads(1)
                .finish_when(HasDiscoveries::AnyFailures)
                .spawn_dfs();
            // Polled below: a worker that panics (a mutant can make the core panic) never closes the
            // search, but its thread finishes.
            let handles = checker.handles();
            (name, checker, handles)
        })
        .collect();
    loop {
        let found = runs.iter().any(|(_, c, _)| !c.discoveries().is_empty());
        let finished = runs
            .iter()
            .all(|(_, _, hs)| hs.iter().all(|h| h.is_finished()));
        if found || finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut first = None;
    for (name, checker, handles) in runs.drain(..) {
        let panicked = handles.into_iter().any(|h| h.join().is_err());
        let this = if panicked {
            Some(format!("{name}: the core panicked"))
        } else {
            first_violation(&checker).map(|v| format!("{name}: {v}"))
        };
        first = first.or(this);
    }
    first
}

/// The implementation's model with a switch that ends its search: once `stop` is set, no new state is
/// within the boundary, so the workers drain what they hold without adding to it. (The actions stay as
/// they are: a discovery's path is rebuilt from them.)
struct Stoppable {
    inner: ImplModel,
    stop: Arc<AtomicBool>,
}

impl Model for Stoppable {
    type State = <ImplModel as Model>::State;
    type Action = <ImplModel as Model>::Action;

    fn init_states(&self) -> Vec<Self::State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.inner.actions(state, actions);
    }

    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        self.inner.next_state(state, action)
    }

    fn within_boundary(&self, _: &Self::State) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always(
            implcheck::REFINEMENT,
            |_, s: &Self::State| s.violation().is_none(),
        )]
    }
}

/// The path length and violated property of a finished search's first discovery, as the matrix prints
/// them.
fn first_violation<M>(checker: &impl Checker<M>) -> Option<String>
where
    M: Model<State = <ImplModel as Model>::State, Action = <ImplModel as Model>::Action>,
{
    checker.discoveries().into_values().next().map(|p| {
        let property = p
            .last_state()
            .violation()
            .map_or(implcheck::REFINEMENT, |v| v.property);
        format!("{} steps, {property}", p.into_actions().len())
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
    by_lab_tests(mutant, TESTS, seeds, until_validated)
}

/// [`by_lab`] with the lab tests `tests` (for example `crate::lab::tests_membership::TESTS`).
pub fn by_lab_tests(
    mutant: Mutant,
    tests: &[LabTest],
    seeds: std::ops::Range<u64>,
    until_validated: bool,
) -> (Detection, Detection) {
    mutants::set(Some(mutant));
    let start = Instant::now();
    let mut trace: Option<(String, Duration)> = None;
    let mut lab: Option<(String, Duration)> = None;
    'campaign: for seed in seeds {
        for test in tests {
            let (outcome, verdict) = runner::run_checked(test, seed, true);
            let at = format!("{} seed {seed}", test.go_name);
            if trace.is_none() && verdict.is_invalid() {
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

/// Random schedules to try, after the lab campaign, before trace validation gives up on a mutant.
pub const SCHEDULES: u64 = 100_000;

/// Trace validation: of the lab campaign's runs (see [`by_lab`], which also says what the lab tests' own
/// checks caught), then, if no run left the model, of up to `schedules` random schedules
/// ([`by_schedules`]). Returns trace validation's detection and the lab tests'.
pub fn by_trace_validation(
    mutant: Mutant,
    seeds: std::ops::Range<u64>,
    schedules: u64,
    until_validated: bool,
) -> (Detection, Detection) {
    if mutant.needs_pre_vote() || mutant.needs_conf_change() {
        // Held to the schedules, which take every PreVote branch and every membership branch (the lab's
        // services never change the configuration); the lab campaign is not run for it.
        let lab = Detection {
            caught: false,
            at: "-".into(),
            secs: 0.0,
        };
        return (by_schedules(mutant, schedules), lab);
    }
    let (mut trace, lab) = by_lab(mutant, seeds, until_validated);
    if !trace.caught {
        let more = by_schedules(mutant, schedules);
        trace = Detection {
            secs: trace.secs + more.secs,
            ..more
        };
    }
    (trace, lab)
}

/// Checks random schedules (`schedule::random`, up to 300 operations; seeds 0, 1, ...; 3 nodes on even
/// seeds, 5 on odd ones) with `mutant` on, until one's trace leaves the model or `cases` were tried; with
/// PreVote on for a PreVote mutant, PreVote, CheckQuorum and leadership transfers for a CheckQuorum
/// mutant, and configuration changes for a membership mutant (4 servers on even seeds and 5 on odd ones,
/// of which 3 make the first configuration). A panic of the core counts as caught.
pub fn by_schedules(mutant: Mutant, cases: u64) -> Detection {
    use rand::SeedableRng;
    mutants::set(Some(mutant));
    let start = Instant::now();
    let mut found = None;
    for seed in 0..cases {
        let (n, voters) = match (mutant.needs_conf_change(), seed % 2 == 0) {
            (false, true) => (3, 3),
            (false, false) => (5, 5),
            (true, true) => (4, 3),
            (true, false) => (5, 3),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (check_quorum, rolls) = if mutant.needs_check_quorum() {
            (true, schedule::ROLLS_WITH_TRANSFER)
        } else if mutant.needs_conf_change() {
            (false, schedule::ROLLS_WITH_CHANGES)
        } else {
            (false, schedule::ROLLS)
        };
        let ops = schedule::random(&mut rng, 300, rolls);
        let config = raft::Config {
            pre_vote: mutant.needs_pre_vote() || check_quorum,
            check_quorum,
            ..schedule::schedule_config()
        };
        let caught = catch_unwind(AssertUnwindSafe(|| {
            crate::trace::check(&schedule::run_schedule_of(n, voters, &ops, None, config)).is_err()
        }))
        .unwrap_or(true);
        if caught {
            found = Some(format!(
                "schedule seed {seed}, {n} nodes, {} operations",
                ops.len()
            ));
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
