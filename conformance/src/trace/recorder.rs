//! Recording a trace: a [`raft::Observer`] that turns each step of each node into an [`Event`], and a door for
//! the host (the simulator, the lab harness, a test driver) to add what it does to messages and nodes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use model::coverage::Coverage;
use raft::{Node, Observer, Output, Step};

use super::checker::{Checker, Summary};
use super::format::{Event, Features, Record, Trace};
pub use raft_trace::events::{output_events, persist_event, step_event, Proposal};

/// Collects the events of every node of one cluster, in the order they happen. Attach it to each node with
/// [`Recorder::attach`]; the host adds its own events with [`Recorder::record`] and sets the time with
/// [`Recorder::set_time`].
pub struct Recorder {
    sink: Mutex<Sink>,
    /// The time stamped on new events (set on every tick of every node: an atomic, not under the lock).
    now: AtomicU64,
    /// The command the host is proposing.
    proposal: Proposal,
}

/// Where the events go.
enum Sink {
    /// Into a trace, kept whole.
    Store(Trace),
    /// Into a checker, one by one, as they happen; none is kept. Checking stops at the first mismatch.
    Check {
        header: Trace,
        checker: Box<Checker>,
        events: usize,
        failed_at: Option<usize>,
    },
}

impl Sink {
    fn push(&mut self, t: u64, ev: Event) {
        match self {
            Sink::Store(trace) => trace.records.push(Record { t, ev }),
            Sink::Check {
                checker,
                events,
                failed_at,
                ..
            } => {
                if failed_at.is_none() && checker.event(&ev).is_err() {
                    *failed_at = Some(*events);
                }
                *events += 1;
            }
        }
    }
}

/// Where the checking recorders of this process count the spec branches their checks execute.
static COVERAGE: OnceLock<Arc<Coverage>> = OnceLock::new();

/// From now on, every checking recorder of this process counts in `coverage` the branches of the
/// specification its checks execute (for a campaign's report). Only the first call takes effect; returns
/// whether this one did.
pub fn count_coverage(coverage: Arc<Coverage>) -> bool {
    COVERAGE.set(coverage).is_ok()
}

impl Recorder {
    /// A recorder for a cluster of `nodes` servers that keeps the whole trace.
    pub fn new(nodes: u64, source: impl Into<String>) -> Arc<Recorder> {
        let mut trace = Trace::new(nodes, source);
        // A lab run records thousands of events: start big rather than copy the records as they double.
        trace.records.reserve(1 << 13);
        Arc::new(Recorder {
            sink: Mutex::new(Sink::Store(trace)),
            now: AtomicU64::new(0),
            proposal: Proposal::default(),
        })
    }

    /// Says which protocol extensions (PreVote, CheckQuorum) the nodes run with: the trace's header says so,
    /// and a checking recorder's model runs with them. Call it before the first event.
    pub fn set_features(&self, features: Features) {
        match &mut *self.sink.lock().expect("the recorder's lock") {
            Sink::Store(trace) => trace.header.set_features(features),
            Sink::Check {
                header, checker, ..
            } => {
                header.header.set_features(features);
                checker.set_features(features);
            }
        }
    }

    /// A recorder that checks each event against the model as it happens and keeps none (see
    /// [`Recorder::verdict`]); its [`trace`](Recorder::trace) is empty. Refused for a cluster the model cannot
    /// have.
    pub fn checking(nodes: u64, source: impl Into<String>) -> Result<Arc<Recorder>, String> {
        let mut checker = Checker::new(nodes as usize)?;
        if let Some(c) = COVERAGE.get() {
            checker = checker.with_coverage(c.clone());
        }
        Ok(Arc::new(Recorder {
            sink: Mutex::new(Sink::Check {
                header: Trace::new(nodes, source),
                checker: Box::new(checker),
                events: 0,
                failed_at: None,
            }),
            now: AtomicU64::new(0),
            proposal: Proposal::default(),
        }))
    }

    /// For a checking recorder: what was checked, or the position of the first event that left the model
    /// (replay the run with a storing recorder and [`check`](super::check) it for the report). `None` for a
    /// storing recorder.
    pub fn verdict(&self) -> Option<Result<Summary, usize>> {
        match &*self.lock() {
            Sink::Store(_) => None,
            Sink::Check {
                checker, failed_at, ..
            } => Some(match failed_at {
                Some(k) => Err(*k),
                None => Ok(checker.summary()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        // A panic while recording (a failing test) leaves a usable trace behind.
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// Attaches the recorder to a new node (reporting its start).
    pub fn attach(self: &Arc<Self>, node: &mut Node) {
        node.set_observer(self.clone());
    }

    /// Records a host's event.
    pub fn record(&self, ev: Event) {
        let t = self.now();
        self.lock().push(t, ev);
    }

    /// The host is about to propose `command`, as its client asked for it: the proposal's event names it
    /// rather than what the core appended.
    pub fn proposing(&self, command: &[u8]) {
        self.proposal.set(command);
    }

    /// Sets the time stamped on the events that follow (microseconds).
    pub fn set_time(&self, t: u64) {
        self.now.store(t, Ordering::Relaxed);
    }

    /// The number of events so far.
    pub fn len(&self) -> usize {
        match &*self.lock() {
            Sink::Store(trace) => trace.records.len(),
            Sink::Check { events, .. } => *events,
        }
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trace so far.
    pub fn trace(&self) -> Trace {
        match &*self.lock() {
            Sink::Store(trace) => trace.clone(),
            Sink::Check { header, .. } => header.clone(),
        }
    }

    /// Takes the trace, leaving an empty one (a checking recorder's is always empty).
    pub fn take(&self) -> Trace {
        match &mut *self.lock() {
            Sink::Store(trace) => {
                let header = trace.header.clone();
                std::mem::replace(
                    trace,
                    Trace {
                        header,
                        records: Vec::new(),
                    },
                )
            }
            Sink::Check { header, .. } => header.clone(),
        }
    }
}

impl Observer for Recorder {
    fn step(&self, node: &Node, step: &Step<'_>) {
        let mut ev = step_event(node, step);
        self.proposal.fill(&mut ev);
        self.record(ev);
    }

    fn released(&self, node: u64, output: &Output<'_>) {
        let t = self.now();
        let mut sink = self.lock();
        output_events(node, output, |ev| sink.push(t, ev));
    }
}
