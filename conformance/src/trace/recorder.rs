//! Recording a trace: a [`raft::Observer`] that turns each step of each node into an [`Event`], and a door for
//! the host (the simulator, the lab harness, a test driver) to add what it does to messages and nodes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use model::coverage::Coverage;
use raft::{Apply, Envelope, Message, Node, Observer, Output, Step};

use super::checker::{Checker, Summary};
use super::format::{
    Applied, Body, Digest, Event, LogDelta, Msg, MsgId, NodeState, Record, Role, Trace,
};

/// Collects the events of every node of one cluster, in the order they happen. Attach it to each node with
/// [`Recorder::attach`]; the host adds its own events with [`Recorder::record`] and sets the time with
/// [`Recorder::set_time`].
pub struct Recorder {
    sink: Mutex<Sink>,
    /// The time stamped on new events (set on every tick of every node: an atomic, not under the lock).
    now: AtomicU64,
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
        })
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
        self.record(step_event(node, step));
    }

    fn released(&self, node: u64, output: &Output<'_>) {
        let t = self.now();
        let mut sink = self.lock();
        output_events(node, output, |ev| sink.push(t, ev));
    }
}

/// The event that reports a node's step.
pub fn step_event(node: &Node, step: &Step<'_>) -> Event {
    let id = node.id();
    match *step {
        Step::Start { restart } => Event::Start {
            node: id,
            restart,
            state: node_state(node, Some(node.last_included_index() + 1)),
            snapshot: (node.last_included_index() > 0).then(|| Digest::of(node.snapshot_data())),
        },
        Step::ElectionTimeout { sent } => Event::Timeout {
            node: id,
            state: node_state(node, None),
            sent: msgs(sent),
        },
        Step::Heartbeat { sent } => Event::Heartbeat {
            node: id,
            state: node_state(node, None),
            sent: msgs(sent),
        },
        Step::Propose {
            command,
            result,
            sent,
            log_changed_from,
        } => Event::Propose {
            node: id,
            command: Digest::of(command),
            accepted: result.ok(),
            state: node_state(node, log_changed_from),
            sent: msgs(sent),
        },
        Step::Receive {
            from,
            seq,
            result,
            sent,
            log_changed_from,
        } => Event::Receive {
            node: id,
            id: MsgId { from, seq },
            refused: result.err().map(|e| e.to_string()),
            state: node_state(node, log_changed_from),
            sent: msgs(sent),
        },
        Step::ReadIndex {
            context,
            result,
            sent,
        } => Event::ReadIndex {
            node: id,
            context,
            index: result.ok(),
            state: node_state(node, None),
            sent: msgs(sent),
        },
        Step::Snapshot { index, data } => Event::Snapshot {
            node: id,
            index,
            data: Digest::of(data),
            state: node_state(node, None),
        },
    }
}

/// The events that report what a node released once its state was durable: the `Persist`, then each
/// `Send` and `Apply`, in order.
pub fn output_events(node: u64, output: &Output<'_>, mut push: impl FnMut(Event)) {
    if let Some(state) = output.persisted {
        let base = state.last_included_index;
        let log = output
            .log_changed_from
            .map(|from| log_delta(base, &state.log, from));
        push(Event::Persist {
            node,
            term: state.current_term,
            vote: state.voted_for,
            snap: (state.last_included_index, state.last_included_term),
            last: base + state.log.len() as u64,
            log,
            snapshot: output.snapshot.map(Digest::of),
        });
    }
    for e in output.messages {
        push(Event::Send { id: MsgId::of(e) });
    }
    for a in output.applies {
        push(match a {
            Apply::Command {
                index,
                term,
                command,
            } => Event::Apply {
                node,
                index: *index,
                term: *term,
                item: Applied::Command(Digest::of(command)),
            },
            Apply::Snapshot { index, term, data } => Event::Apply {
                node,
                index: *index,
                term: *term,
                item: Applied::Snapshot(Digest::of(data)),
            },
        });
    }
    for r in output.reads {
        push(Event::Read {
            node,
            context: r.context,
            index: r.index,
        });
    }
}

/// The node's state, with the log written from `log_from` on (`None`: the log did not change).
fn node_state(node: &Node, log_from: Option<u64>) -> NodeState {
    let log = log_from.map(|from| log_delta(node.last_included_index(), node.log(), from));
    let role = match node.role() {
        raft::Role::Follower => Role::F,
        raft::Role::Candidate => Role::C,
        raft::Role::Leader => Role::L,
    };
    let votes = node
        .votes()
        .map(|v| {
            v.iter()
                .zip(node.peers())
                .filter(|(v, _)| **v == Some(true))
                .map(|(_, p)| *p)
                .collect()
        })
        .unwrap_or_default();
    let progress = if role == Role::L {
        node.peers()
            .iter()
            .map(|&p| node.progress(p).unwrap_or((0, 0)))
            .collect()
    } else {
        Vec::new()
    };
    let reads = node.pending_reads().map(|r| (r.round, r.index)).collect();
    NodeState {
        term: node.term(),
        vote: node.voted_for(),
        role,
        commit: node.commit_index(),
        snap: (node.last_included_index(), node.last_included_term()),
        last: node.last_index(),
        log,
        votes,
        progress,
        read_round: node.read_round(),
        reads,
    }
}

/// The entries of `log` (the log after a snapshot through `base`) from index `from` on; an index inside the
/// snapshot counts as its first entry.
fn log_delta(base: u64, log: &[raft::Entry], from: u64) -> LogDelta {
    let from = from.max(base + 1);
    let skip = usize::try_from(from - base - 1).unwrap_or(usize::MAX);
    LogDelta {
        from,
        entries: log.iter().skip(skip).map(entry).collect(),
    }
}

/// An entry as the trace writes it.
fn entry(e: &raft::Entry) -> (u64, Digest) {
    (e.term, Digest::of(&e.command))
}

/// The messages a step produced.
fn msgs(sent: &[Envelope]) -> Vec<Msg> {
    sent.iter()
        .map(|e| Msg {
            to: e.to,
            seq: e.seq,
            m: body(&e.message),
        })
        .collect()
}

/// A message as the trace writes it.
fn body(m: &Message) -> Body {
    match m {
        Message::RequestVote(r) => Body::RequestVote {
            term: r.term,
            last_log_index: r.last_log_index,
            last_log_term: r.last_log_term,
        },
        Message::RequestVoteReply(r) => Body::RequestVoteReply {
            term: r.term,
            granted: r.vote_granted,
        },
        Message::AppendEntries(a) => Body::AppendEntries {
            term: a.term,
            prev_log_index: a.prev_log_index,
            prev_log_term: a.prev_log_term,
            entries: a.entries.iter().map(entry).collect(),
            leader_commit: a.leader_commit,
            read_round: a.read_round,
        },
        Message::AppendEntriesReply(r) => Body::AppendEntriesReply {
            term: r.term,
            success: r.success,
            prev_log_index: r.prev_log_index,
            match_index: r.match_index,
            conflict_term: r.conflict_term,
            conflict_index: r.conflict_index,
            read_round: r.read_round,
        },
        Message::InstallSnapshot(s) => Body::InstallSnapshot {
            term: s.term,
            last_included_index: s.last_included_index,
            last_included_term: s.last_included_term,
            data: Digest::of(&s.data),
        },
        Message::InstallSnapshotReply(r) => Body::InstallSnapshotReply {
            term: r.term,
            match_index: r.match_index,
        },
    }
}
