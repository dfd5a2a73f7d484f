//! Running the exhaustive checker and classifying what it found; shared by the CLI and the tests.

use crate::coverage::{Coverage, Covered};
use crate::display;
use crate::properties::{self, RAFT_SAFETY, SAFETY, WITNESSES};
use crate::raft::{Action, RaftModel};
use crate::search::{self, Search};
use crate::state::State;
use crate::symmetry;
use stateright::{Checker, HasDiscoveries, Model, Path};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run the checker.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads.
    pub threads: usize,
    /// Breadth-first (shortest counterexamples, stateright's checker) instead of depth-first
    /// ([`crate::search`]). Both use symmetry.
    pub bfs: bool,
    /// The sometimes-properties these bounds are expected to witness.
    pub expect: Vec<&'static str>,
    /// Count how often each branch of the specification is taken.
    pub coverage: bool,
}

/// What became of one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An always-property that held in every state: the search found no violation.
    Holds,
    /// An always-property false in the last state of the counterexample.
    Violated,
    /// A sometimes-property that held in some state the search reached.
    Witnessed,
    /// A sometimes-property expected at these bounds ([`Options::expect`]) that held in no
    /// state: the check fails.
    NotWitnessed,
    /// A sometimes-property the bounds are not expected to reach, and did not.
    NotExpected,
    /// The search stopped at a violation of another property before it could tell.
    Unknown,
}

impl Verdict {
    /// The word `check` prints.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::Witnessed => "witnessed",
            Verdict::NotWitnessed => "NOT witnessed",
            Verdict::NotExpected => "not expected at these bounds",
            Verdict::Unknown => "unknown (the search stopped at a violation)",
        }
    }
}

/// Counters of a run in progress or finished.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Distinct states generated (canonical ones: the checker runs with symmetry reduction).
    pub unique: usize,
    /// States generated, repeats included.
    pub total: usize,
    /// The greatest depth explored, in steps from the initial state.
    pub depth: usize,
    /// Wall-clock time since the run began.
    pub elapsed: Duration,
}

/// The result of a whole check.
pub struct Report {
    /// The counters when the run ended.
    pub progress: Progress,
    /// Every property with its verdict, safety first.
    pub verdicts: Vec<(&'static str, Verdict)>,
    /// The first violated property and a path to the violation, each server under one name
    /// throughout.
    pub counterexample: Option<(&'static str, Steps)>,
    /// Peak resident memory of the process, in bytes, where the platform reports it.
    pub peak_memory: Option<u64>,
    /// With [`Options::coverage`]: every branch and how often the search took it, and the
    /// evaluations of every decision.
    pub coverage: Option<Covered>,
}

impl Report {
    /// The machine-readable last line of `check`.
    pub fn result_line(&self) -> String {
        if let Some((name, _)) = &self.counterexample {
            return format!("result: VIOLATED {name}");
        }
        if let Some((name, _)) = self
            .verdicts
            .iter()
            .find(|(_, v)| *v == Verdict::NotWitnessed)
        {
            return format!("result: UNWITNESSED {name}");
        }
        let p = &self.progress;
        format!(
            "result: OK unique={} total={} depth={} secs={:.1}",
            p.unique,
            p.total,
            p.depth,
            p.elapsed.as_secs_f64()
        )
    }

    /// Whether every property held and every expected witness was found.
    pub fn ok(&self) -> bool {
        self.verdicts
            .iter()
            .all(|(_, v)| !matches!(v, Verdict::Violated | Verdict::NotWitnessed))
    }

    /// The verdict for one property.
    pub fn verdict(&self, name: &str) -> Option<Verdict> {
        self.verdicts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Runs the checker to completion (or to the first violation), calling `on_progress` every
/// `interval` while it runs.
pub fn run(
    mut model: RaftModel,
    options: &Options,
    interval: Duration,
    mut on_progress: impl FnMut(Progress),
) -> Report {
    let start = Instant::now();
    model.symmetry = true;
    let plain = model.clone();
    let witnessed = Arc::new(AtomicU16::new(0));
    model.witnessed = Some(Arc::clone(&witnessed));
    let coverage = options.coverage.then(|| Arc::new(Coverage::default()));
    model.coverage = coverage.clone();
    let (progress, path) = if options.bfs {
        let checker = model
            .checker()
            .threads(options.threads.max(1))
            .finish_when(HasDiscoveries::AnyFailures)
            .spawn_bfs();
        watch_bfs(checker, start, interval, &mut on_progress)
    } else {
        let search = Search::spawn(model, options.threads, properties::raft_safety);
        watch_search(search, &plain, start, interval, &mut on_progress)
    };
    let path = path.map(|steps| symmetry::decanonicalize(&plain, &steps));
    let seen = witnessed.load(Ordering::Relaxed);
    let mut verdicts = Vec::new();
    let mut counterexample = None;
    for (name, holds) in SAFETY {
        let verdict = match &path {
            None => Verdict::Holds,
            Some(steps) => {
                let last = &steps.last().expect("a path has a state").0;
                if holds(&plain, last) {
                    Verdict::Unknown
                } else {
                    if counterexample.is_none() {
                        counterexample = Some((name, steps.clone()));
                    }
                    Verdict::Violated
                }
            }
        };
        verdicts.push((name, verdict));
    }
    for (bit, (name, _)) in WITNESSES.iter().enumerate() {
        let verdict = if seen & (1 << bit) != 0 {
            Verdict::Witnessed
        } else if path.is_some() {
            Verdict::Unknown
        } else if options.expect.contains(name) {
            Verdict::NotWitnessed
        } else {
            Verdict::NotExpected
        };
        verdicts.push((*name, verdict));
    }
    Report {
        progress,
        verdicts,
        counterexample,
        peak_memory: peak_memory(),
        coverage: coverage.map(|c| c.covered()),
    }
}

/// A path as states, each with the action taken from it (none after the last).
pub type Steps = Vec<(State, Option<Action>)>;

/// Waits for `is_done`, reporting progress every `interval`.
fn watch(
    is_done: impl Fn() -> bool,
    progress: impl Fn() -> Progress,
    interval: Duration,
    on_progress: &mut impl FnMut(Progress),
) {
    let mut next_report = Instant::now() + interval;
    while !is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next_report {
            on_progress(progress());
            next_report += interval;
        }
    }
}

/// Runs stateright's breadth-first checker to its end: the counters, and the path to a
/// violation, if any.
fn watch_bfs(
    checker: impl Checker<RaftModel>,
    start: Instant,
    interval: Duration,
    on_progress: &mut impl FnMut(Progress),
) -> (Progress, Option<Steps>) {
    let progress = |checker: &dyn Checker<RaftModel>| Progress {
        unique: checker.unique_state_count(),
        total: checker.state_count(),
        depth: checker.max_depth(),
        elapsed: start.elapsed(),
    };
    watch(
        || checker.is_done(),
        || progress(&checker),
        interval,
        on_progress,
    );
    let checker = checker.join();
    let path: Option<Path<State, Action>> = checker.discovery(RAFT_SAFETY);
    (progress(&checker), path.map(Path::into_vec))
}

/// Runs [`Search`] to its end: the counters, and the path to a violation, if any (replayed
/// with `plain`, which records no coverage).
fn watch_search(
    search: Search,
    plain: &RaftModel,
    start: Instant,
    interval: Duration,
    on_progress: &mut impl FnMut(Progress),
) -> (Progress, Option<Steps>) {
    let progress = |counts: search::Counts| Progress {
        unique: counts.unique,
        total: counts.total,
        depth: counts.depth,
        elapsed: start.elapsed(),
    };
    watch(
        || search.is_done(),
        || progress(search.counts()),
        interval,
        on_progress,
    );
    let outcome = search.join();
    let path = outcome.violation.map(|path| search::replay(plain, &path));
    (progress(outcome.counts), path)
}

/// Starts a new measure of the peak resident set size (Linux: writing 5 to `clear_refs` resets
/// VmHWM), so that searches run one after the other each report their own. Does nothing where
/// the platform does not support it.
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (Linux: VmHWM), in bytes.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A counterexample as numbered steps: the action, then every server's state after it.
pub fn format_path(steps: &[(State, Option<Action>)]) -> String {
    let mut out = String::new();
    for (k, (state, action)) in steps.iter().enumerate() {
        // into_vec pairs each state with the action taken *from* it.
        if k == 0 {
            out.push_str("0. initial state\n");
            out.push_str(&indent(&display::state(state)));
        }
        if let Some(a) = action {
            let next = &steps[k + 1].0;
            out.push_str(&format!("{}. {}\n", k + 1, display::action(a)));
            out.push_str(&indent(&display::state(next)));
        }
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   {l}\n")).collect()
}

/// The Explorer fragment that opens `steps` in `explore` (run with the same bounds and bug):
/// `#/steps/0/<i1>/<i2>/...`, each the position of the step's action among the actions the
/// model offers in that state. `None` if a step is not one the enumerator offers.
pub fn explorer_fragment(model: &RaftModel, steps: &[(State, Option<Action>)]) -> Option<String> {
    let plain = RaftModel {
        symmetry: false,
        witnessed: None,
        ..model.clone()
    };
    let mut path = vec!["0".to_string()];
    let mut offered = Vec::new();
    for (state, action) in steps {
        let Some(action) = action else { break };
        offered.clear();
        plain.actions(state, &mut offered);
        path.push(offered.iter().position(|a| a == action)?.to_string());
    }
    Some(format!("#/steps/{}", path.join("/")))
}

/// Checks the model's own bookkeeping: every enumerated action is enabled. Used by tests.
pub fn actions_are_enabled(model: &RaftModel, state: &State) -> bool {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    actions.iter().all(|a| model.enabled(state, a))
}
