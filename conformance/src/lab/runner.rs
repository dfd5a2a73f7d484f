//! Runs a ported test on a fresh simulation with one seed, and turns what happened into an
//! [`Outcome`]: passed, or failed with the message Go's tester would have printed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;

use super::config::TEST_TIME_LIMIT;
use crate::sim::{Sim, SimError};
use crate::trace::format::Features;
use crate::trace::{check, Mismatch, Recorder, Summary, Trace};

/// The panic payload of a test failure (Go's `t.Fatalf`).
#[derive(Debug)]
pub struct Failure(pub String);

/// A test body: builds its cluster on the given simulation and runs the Go test's steps.
pub type Body = fn(Sim) -> Pin<Box<dyn Future<Output = ()>>>;

/// One ported test.
#[derive(Clone, Copy)]
pub struct LabTest {
    /// The Go test's name, e.g. `TestInitialElection2A`.
    pub go_name: &'static str,
    /// The Rust test's name, e.g. `initial_election_2a`.
    pub name: &'static str,
    /// The lab part, e.g. `2A`.
    pub part: &'static str,
    /// The test body.
    pub body: Body,
}

/// What one run of one test with one seed did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed that replays this run.
    pub seed: u64,
    /// Virtual time the run took, in seconds.
    pub sim_secs: f64,
    /// The fingerprint of the run's event stream.
    pub fingerprint: u64,
    /// Events the simulator ran.
    pub events: u64,
    /// Why the test failed, if it did.
    pub failure: Option<LabError>,
}

/// Why a test run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabError {
    /// A check of the tester failed (Go's `t.Fatalf` or the applier's `log.Fatalf`); the message
    /// is the Go tester's.
    #[error("{0}")]
    Fatal(String),
    /// The run passed the per-test limit of 120 s of (virtual) time.
    #[error("test took longer than 120 seconds")]
    Timeout,
    /// The simulation could not go on (a deadlock or a livelock).
    #[error(transparent)]
    Sim(SimError),
    /// Something else panicked: the adapter found the core breaking its contract, or a bug.
    #[error("panic: {0}")]
    Panic(String),
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Set while `run_traced` or `run_checked` runs a test: the recorder of its cluster, once the test made one.
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

struct Recording {
    source: String,
    /// Check each event as it happens instead of keeping the trace.
    check: bool,
    recorder: Option<Arc<Recorder>>,
    /// Clusters the test made. A trace is one cluster's: only the first is recorded.
    clusters: usize,
}

/// What trace validation says of one lab run.
#[derive(Debug)]
pub enum Verdict {
    /// The run's events were checked against the model, and every one was a step of it.
    Checked(Summary),
    /// Nothing, or not all, of the run was checked; the reason says why (the test made no cluster, or more
    /// than one, or its cluster recorded no event). Such a run is neither valid nor invalid.
    Unchecked(String),
    /// The run's trace left the model.
    Invalid(Box<Mismatch>),
}

impl Verdict {
    /// Whether the run's trace left the model.
    pub fn is_invalid(&self) -> bool {
        matches!(self, Verdict::Invalid(_))
    }

    /// What was checked, if the run was checked and valid.
    pub fn checked(&self) -> Option<&Summary> {
        match self {
            Verdict::Checked(summary) => Some(summary),
            _ => None,
        }
    }

    /// The verdict of a run whose recorder (`None`: the test made no cluster) checked `summary`, after the
    /// test made `clusters` clusters.
    fn of(summary: Option<Summary>, clusters: usize) -> Verdict {
        match summary {
            _ if clusters > 1 => Verdict::Unchecked(format!(
                "the test made {clusters} clusters, and a trace follows one"
            )),
            None => Verdict::Unchecked("the test made no cluster".into()),
            Some(s) if s.events == 0 => Verdict::Unchecked("its cluster recorded no event".into()),
            Some(s) => Verdict::Checked(s),
        }
    }
}

/// A recorder for the cluster a test makes, of nodes configured by `config`, if the test runs under
/// `run_traced` or `run_checked` (only for its first cluster: the run's verdict says when there were more).
pub(crate) fn new_recorder(
    nodes: usize,
    voters: usize,
    config: &raft::Config,
) -> Option<Arc<Recorder>> {
    RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        let rec = r.as_mut()?;
        rec.clusters += 1;
        if rec.recorder.is_some() {
            return None;
        }
        let recorder = if rec.check {
            Recorder::checking(nodes as u64, rec.source.clone())
                .unwrap_or_else(|e| panic!("cannot check this cluster: {e}"))
        } else {
            Recorder::new(nodes as u64, rec.source.clone())
        };
        recorder.set_features(Features {
            voters: if voters == nodes { 0 } else { voters as u64 },
            ..Features::of(config)
        });
        rec.recorder = Some(recorder.clone());
        Some(recorder)
    })
}

/// Whether tests on this thread should keep stdout quiet (the stress runner sets this).
pub fn quiet() -> bool {
    QUIET.with(|q| q.get())
}

/// Runs `test` once with `seed`. With `quiet`, begin/end print nothing.
pub fn run(test: &LabTest, seed: u64, quiet: bool) -> Outcome {
    QUIET.with(|q| q.set(quiet));
    let sim = Sim::new(seed);
    // The 120 s limit is checked by end(); stopping the clock there as well keeps a hung run
    // from running on (any run that passes 120 s fails at end() anyway).
    sim.set_deadline(TEST_TIME_LIMIT);
    let body = (test.body)(sim.clone());
    let result = catch_unwind(AssertUnwindSafe(|| sim.block_on(body)));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(SimError::Deadline { .. })) => Some(LabError::Timeout),
        Ok(Err(e)) => Some(LabError::Sim(e)),
        Err(payload) => Some(if let Some(f) = payload.downcast_ref::<Failure>() {
            LabError::Fatal(f.0.clone())
        } else if let Some(s) = payload.downcast_ref::<String>() {
            LabError::Panic(s.clone())
        } else if let Some(s) = payload.downcast_ref::<&str>() {
            LabError::Panic(s.to_string())
        } else {
            LabError::Panic("non-string payload".to_string())
        }),
    };
    // A panic leaves tasks and events behind; drop them so that nothing keeps the run alive.
    sim.shutdown();
    Outcome {
        seed,
        sim_secs: sim.now_secs(),
        fingerprint: sim.fingerprint(),
        events: sim.events_run(),
        failure,
    }
}

/// Runs `test` once with `seed` and records its trace (empty if the test made no cluster; the first
/// cluster's if it made several).
pub fn run_traced(test: &LabTest, seed: u64, quiet: bool) -> (Outcome, Trace) {
    let (outcome, trace, _) = run_traced_with_clusters(test, seed, quiet);
    (outcome, trace)
}

/// Runs `test` once with `seed`, records its trace and checks it: the trace (as [`run_traced`]) and the
/// run's verdict.
pub fn run_traced_checked(test: &LabTest, seed: u64, quiet: bool) -> (Outcome, Trace, Verdict) {
    let (outcome, trace, clusters) = run_traced_with_clusters(test, seed, quiet);
    let verdict = if clusters == 0 {
        Verdict::of(None, clusters)
    } else {
        match check(&trace) {
            Ok(summary) => Verdict::of(Some(summary), clusters),
            Err(mismatch) => Verdict::Invalid(mismatch),
        }
    };
    (outcome, trace, verdict)
}

fn run_traced_with_clusters(test: &LabTest, seed: u64, quiet: bool) -> (Outcome, Trace, usize) {
    let (outcome, recorder, clusters) = run_recording(test, seed, quiet, false);
    let trace = recorder.map_or_else(|| Trace::new(0, source(test, seed)), |r| r.take());
    (outcome, trace, clusters)
}

/// What a trace of a lab run says it comes from.
fn source(test: &LabTest, seed: u64) -> String {
    format!("lab {} seed {seed}", test.go_name)
}

/// Runs `test` once with `seed`, checking each event of its trace against the model as it happens (nothing is
/// kept, so this is cheaper than [`run_traced`] and [`check`]). On a mismatch the run is replayed with its
/// trace kept, for the full report; the replay is the same run, bit for bit. A run that fed the checker
/// nothing (no cluster, or no event) is [`Verdict::Unchecked`], never checked.
pub fn run_checked(test: &LabTest, seed: u64, quiet: bool) -> (Outcome, Verdict) {
    let (outcome, recorder, clusters) = run_recording(test, seed, quiet, true);
    let verdict = recorder.map(|r| {
        r.verdict()
            .expect("run_recording makes checking recorders when asked to check")
    });
    match verdict {
        None => (outcome, Verdict::of(None, clusters)),
        Some(Ok(summary)) => (outcome, Verdict::of(Some(summary), clusters)),
        Some(Err(at)) => {
            let (_, trace) = run_traced(test, seed, quiet);
            let verdict = match check(&trace) {
                Err(m) if m.event == at => Verdict::Invalid(m),
                other => panic!(
                    "{} seed {seed}: the online check failed at event {at}, the replay gives {other:?}: the run is not deterministic",
                    test.go_name
                ),
            };
            (outcome, verdict)
        }
    }
}

/// Runs `test` with recording on: the outcome, the recorder of its first cluster, and how many clusters it
/// made.
fn run_recording(
    test: &LabTest,
    seed: u64,
    quiet: bool,
    check: bool,
) -> (Outcome, Option<Arc<Recorder>>, usize) {
    RECORDING.with(|r| {
        *r.borrow_mut() = Some(Recording {
            source: source(test, seed),
            check,
            recorder: None,
            clusters: 0,
        })
    });
    let outcome = run(test, seed, quiet);
    let recording = RECORDING.with(|r| r.borrow_mut().take());
    match recording {
        Some(r) => (outcome, r.recorder, r.clusters),
        None => (outcome, None, 0),
    }
}

/// The seeds a `cargo test` run uses: `LAB_SEED=n` (default 1) is the first, `LAB_SEEDS=k`
/// (default 1) how many consecutive seeds to run.
pub fn seeds_from_env() -> std::ops::Range<u64> {
    seeds_from_env_or(1)
}

/// The seeds a `cargo test` run uses, with `count` seeds when `LAB_SEEDS` is not set.
pub fn seeds_from_env_or(count: u64) -> std::ops::Range<u64> {
    let get = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{k} must be a number, got {v:?}"))
            })
            .unwrap_or(default)
    };
    let first = get("LAB_SEED", 1);
    let count = get("LAB_SEEDS", count);
    first..first + count
}

/// The body of each `#[test]`: runs the named test with the seeds from the environment and
/// fails with `"<GoName> failed with seed N: <message>"` on the first failure.
pub fn run_from_env(name: &str) {
    run_from_env_or(name, 1);
}

/// [`run_from_env`] with `count` seeds when `LAB_SEEDS` is not set.
pub fn run_from_env_or(name: &str, count: u64) {
    let test = super::find(name).unwrap_or_else(|| panic!("no lab test named {name}"));
    let trace_file = std::env::var_os("LAB_TRACE_FILE").map(std::path::PathBuf::from);
    let seeds = seeds_from_env_or(count);
    let several = seeds.end - seeds.start > 1;
    for seed in seeds {
        let out = match &trace_file {
            None => run(test, seed, false),
            Some(path) => {
                let (out, trace) = run_traced(test, seed, false);
                // With several seeds, one file each: `path` with `-<seed>` before its extension.
                let path = if several {
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                    let ext = path
                        .extension()
                        .map(|e| format!(".{}", e.to_string_lossy()))
                        .unwrap_or_default();
                    path.with_file_name(format!("{stem}-{seed}{ext}"))
                } else {
                    path.clone()
                };
                trace
                    .write_file(&path)
                    .unwrap_or_else(|e| panic!("LAB_TRACE_FILE {}: {e}", path.display()));
                out
            }
        };
        if let Some(msg) = out.failure {
            panic!(
                "{} failed with seed {seed}: {msg}\n(replay with LAB_SEED={seed} cargo test --release -p conformance {})",
                test.go_name, test.name
            );
        }
    }
}
