//! The trace checker (design §5): replays a trace through the model's public guards and effects.
//!
//! Each node step becomes one model action or a named composition of actions (see
//! `specs/trace-format.md`, "How events map to the model"); each must be enabled, the messages the model sends
//! must be exactly the ones the implementation produced, and afterwards the model's server must project
//! exactly onto the state the node reported. Beyond the model, the checker holds the implementation to the
//! rules the model cannot see: a restart loads exactly what was durable, no message leaves before the state it
//! depends on is durable, and entries are applied once each, in order, equal to the committed log. Every
//! safety property of the model is checked after every event.
//!
//! Matching is a lookup, never a search: messages are named by `(sender, sequence)`, entries by their
//! command's digest, and the composition of a step is read off what the step produced and the state it
//! reported. So no event can match more than one model step, and there is no ambiguity to count: the
//! checker never chooses between candidates.

mod properties;
mod report;

pub use report::{Failure, Mismatch};

use properties::Changed;
use report::{fail, header_mismatch};

use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;

use model::bounds::Bounds;
use model::state::{
    term_at, AppendOutcome, Body as MBody, Config, Entry, Index, Message, Role as MRole, ServerId,
    State, Value,
};
use model::{Action, RaftModel};

use super::format::{
    Applied, Body, Conf, Digest, Event, Features, Header, Item, LogDelta, Msg, MsgId, NodeState,
    ReadError, Role, Trace,
};
use std::ops::ControlFlow;

/// What a successful check saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events checked.
    pub events: usize,
    /// Servers in the trace.
    pub nodes: usize,
    /// Model actions applied.
    pub actions: usize,
    /// Applies checked.
    pub applies: usize,
    /// How often each kind of model action was applied, by the names in [`ACTION_KINDS`]: which parts of
    /// the specification the trace exercised.
    pub action_counts: [usize; ACTION_KINDS.len()],
}

/// The kinds of model action, as [`Summary::action_counts`] counts them (a receive by message kind).
pub const ACTION_KINDS: [&str; 24] = [
    "Timeout",
    "ClientRequest",
    "AppendEntries",
    "AdvanceCommitIndex",
    "Compact",
    "InstallSnapshot",
    "SetNextIndex",
    "Receive RequestVote",
    "Receive RequestVoteReply",
    "Receive AppendEntries",
    "Receive AppendEntriesReply",
    "Receive InstallSnapshot",
    "Receive InstallSnapshotReply",
    "Crash",
    "Drop",
    "Duplicate",
    "ReadIndex",
    "ChangeConfig",
    "Receive PreVote",
    "Receive PreVoteReply",
    "Receive TimeoutNow",
    "LeaseExpires",
    "CheckQuorum",
    "TransferLeader",
];

/// The position of `action`'s kind in [`ACTION_KINDS`].
fn action_kind(action: &Action) -> usize {
    match action {
        Action::Timeout(_) => 0,
        Action::ClientRequest(..) => 1,
        Action::AppendEntries { .. } => 2,
        Action::AdvanceCommitIndex(..) => 3,
        Action::Compact(..) => 4,
        Action::InstallSnapshot { .. } => 5,
        Action::SetNextIndex { .. } => 6,
        Action::Receive(m) => match m.body {
            MBody::RequestVote { .. } => 7,
            MBody::RequestVoteReply { .. } => 8,
            MBody::AppendEntries { .. } => 9,
            MBody::AppendEntriesReply { .. } => 10,
            MBody::InstallSnapshot { .. } => 11,
            MBody::InstallSnapshotReply { .. } => 12,
            MBody::PreVote { .. } => 18,
            MBody::PreVoteReply { .. } => 19,
            MBody::TimeoutNow => 20,
        },
        Action::Crash(_) => 13,
        Action::Drop(_) => 14,
        Action::Duplicate(_) => 15,
        Action::ReadIndex(_) => 16,
        Action::ChangeConfig(..) => 17,
        Action::LeaseExpires(_) => 21,
        Action::CheckQuorum(_) => 22,
        Action::TransferLeader { .. } => 23,
    }
}

/// Checks a whole trace. On a mismatch, the report lists the actions enabled before the bad event (found by
/// replaying the trace again up to it).
pub fn check(trace: &Trace) -> Result<Summary, Box<Mismatch>> {
    check_with(trace, false)
}

/// [`check`], evaluating every property on the whole state after every step (see
/// [`Checker::with_full_properties`]).
pub fn check_full(trace: &Trace) -> Result<Summary, Box<Mismatch>> {
    check_with(trace, true)
}

/// The checker for a trace with `header`: its size, its features, and what its hosts report.
fn checker_for(header: &Header) -> Result<Checker, String> {
    let mut checker = Checker::new(header.nodes as usize)?;
    if header.saves_in_flight {
        checker = checker.with_saves_in_flight();
    }
    if header.decoded {
        checker = checker.with_decoded();
    }
    Ok(checker.with_features(header.features()))
}

/// Checks the trace read from `input` as [`check`] does, batch by batch while it is read, without holding
/// it whole: parsing and checking overlap, and memory stays that of a few batches. Returns the header and
/// the summary; the summary is `None` if the header or an event is refused, or if the trace is one
/// process's of a cluster (to be merged with the others first): then read the trace whole and [`check`] it,
/// for the report.
pub fn check_streamed(
    input: impl std::io::BufRead,
) -> Result<(Header, Option<Summary>), ReadError> {
    let (header, checker) = Trace::stream(
        input,
        |header| {
            (header.first_id == 0)
                .then(|| checker_for(header).ok())
                .flatten()
        },
        |checker, batch| {
            let Some(c) = checker else {
                return ControlFlow::Break(());
            };
            for r in &batch {
                if c.event(&r.ev).is_err() {
                    *checker = None;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok((header, checker.map(|c| c.summary())))
}

fn check_with(trace: &Trace, full: bool) -> Result<Summary, Box<Mismatch>> {
    let new = || checker_for(&trace.header);
    let mut checker = new().map_err(|reason| Box::new(header_mismatch(reason)))?;
    if full {
        checker = checker.with_full_properties();
    }
    for (k, r) in trace.records.iter().enumerate() {
        if let Err(failure) = checker.event(&r.ev) {
            let mut replay = new().expect("it was accepted above");
            for earlier in &trace.records[..k] {
                replay
                    .event(&earlier.ev)
                    .expect("a replay of a checked prefix passes");
            }
            return Err(Box::new(replay.report(k, r, failure)));
        }
    }
    Ok(checker.summary())
}

/// A message the trace has seen produced.
#[derive(Clone)]
struct Tracked {
    /// The model's message it stands for.
    msg: Message,
    /// Whether it has left its sender (`Send`).
    sent: bool,
    /// Copies in flight (after `Send`; `Duplicate` adds one, `Receive` and `Drop` take one).
    copies: u32,
    /// What its sender's durable state must hold before it may leave.
    dep: Dependency,
    /// The digest of the message as produced (kept when receivers report what they decoded).
    digest: Option<Digest>,
    /// An InstallSnapshot's data, as a digest.
    snapshot: Option<Digest>,
}

/// What of its sender's persistent state a message stands on: it may leave once the durable state holds a
/// later term, or this term and (where given) this vote and this entry.
///
/// What a message stands on is what it claims: a refusal (of a vote, of entries) only its term; a granted vote
/// the vote; an acknowledgement of entries the entry at its `match_index`; every other message (those of
/// candidates and leaders, and snapshot replies) the sender's vote and last entry when it was produced. A
/// runtime that saves once for several steps (as `raft-node`'s loop does) sends the messages of the first
/// step after the save of the last, when a later step of the same term may have replaced entries the first
/// step's refusal never claimed.
#[derive(Clone, Copy, Debug)]
struct Dependency {
    term: u64,
    vote: Option<Option<u64>>,
    entry: Option<(u64, u64)>,
}

/// What the checker knows of one node beyond the model.
#[derive(Clone, Default)]
struct NodeView {
    /// An instance is running.
    alive: bool,
    /// An instance ever ran (the next start is a restart).
    started: bool,
    /// The log the node reported, after its snapshot.
    log: Vec<Entry>,
    /// The snapshot's last included index and term.
    snap: (u64, u64),
    /// The digest of the snapshot's data the node holds: loaded at its start, taken by its service, or
    /// installed from a leader's InstallSnapshot. What it persists, sends and applies as its snapshot must be
    /// this.
    snapshot: Option<Digest>,
    /// The durable state: term, vote, snapshot, log after the snapshot.
    durable: Durable,
    /// The last index handed to the service in this instance.
    last_applied: u64,
    /// The first log index the node reported changed since its last `Persist` (0: everything, after its
    /// snapshot moved).
    changed_since_persist: Option<u64>,
    /// After a crash, with saves in flight allowed: the state the node had after its last step, which a
    /// save in flight may have made durable.
    in_flight: Option<Durable>,
    /// The term in which the node, as leader, last sent TimeoutNow: from then on it may refuse proposals in
    /// that term, handing over.
    handed_over_in: Option<u32>,
}

#[derive(Clone, Default, PartialEq, Eq, Debug)]
struct Durable {
    term: u64,
    vote: Option<u64>,
    snap: (u64, u64),
    log: Vec<Entry>,
    /// The digest of the snapshot saved with the state (`None`: none yet).
    snapshot: Option<Digest>,
}

impl Durable {
    fn last_index(&self) -> u64 {
        self.snap.0 + self.log.len() as u64
    }

    /// The term at `index` if the durable state knows it (`None` inside the snapshot, where entries are
    /// committed and so match any correct leader's).
    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snap.0 {
            Some(self.snap.1)
        } else if index < self.snap.0 {
            None
        } else {
            self.log
                .get((index - self.snap.0 - 1) as usize)
                .map(|e| e.term as u64)
        }
    }
}

/// Replays a trace event by event against the model. `Clone` copies the whole replay, for an explorer
/// that checks several continuations of one run.
#[derive(Clone)]
pub struct Checker {
    model: RaftModel,
    state: State,
    nodes: Vec<NodeView>,
    /// Every message produced and not yet consumed, by name. The model's network holds messages by content
    /// and keeps them sorted, which costs a shift of the whole network per message when hundreds are in flight
    /// (as in the lab, where calls to a cut-off server take up to 7 s to fail). So the checker parks them
    /// here: a step's messages leave the model's network once checked, and a message goes back into it just
    /// before the `Receive`, `Drop` or `Duplicate` that names it. The model's effects read only the message
    /// they handle, never the rest of the network, so this changes no guard, effect or property; it only
    /// leaves the witness flag "a duplicated message is delivered" unset.
    msgs: HashMap<MsgId, Tracked>,
    /// The model value standing for each command digest, in order of first sight.
    values: HashMap<Digest, Value>,
    summary: Summary,
    /// Check every property on the whole state after every step, and compare whole logs (slower; for
    /// cross-checking).
    full_properties: bool,
    /// Whether a save may have been in flight when a node crashed (see [`Checker::with_saves_in_flight`]).
    saves_in_flight: bool,
    /// Whether receivers report what they decoded (see [`Checker::with_decoded`]).
    decoded: bool,
    /// What the last node step changed, for the property checks.
    changed: Changed,
    /// Each node's reads begun in the model and not yet served or dropped, by (term, read round): the host's
    /// context and the read index.
    reads_begun: Vec<BTreeMap<(u32, u32), (u64, u64)>>,
    /// Each node's reads the model served and the node has not yet handed out: (context, read index).
    reads_served: Vec<Vec<(u64, u64)>>,
}

impl Checker {
    /// A checker for a cluster of `nodes` servers, all before their first start.
    pub fn new(nodes: usize) -> Result<Checker, String> {
        if !(1..=model::state::MAX_SERVERS).contains(&nodes) {
            return Err(format!(
                "the model has 1 to {} servers, the trace {nodes}",
                model::state::MAX_SERVERS
            ));
        }
        // Only `servers` matters here: the other bounds limit the enumerator, never a guard.
        let bounds = Bounds {
            servers: nodes as u8,
            max_term: u32::MAX,
            max_log: u32::MAX,
            max_crashes: u8::MAX,
            max_inflight: u8::MAX,
            max_drops: u8::MAX,
            max_dups: u8::MAX,
            values: u32::MAX,
            snapshots: true,
            partial_batches: true,
            max_reads: u8::MAX,
            voters: nodes as u8,
            max_changes: u8::MAX,
            joint: false,
            // As the nodes run (`Checker::with_features`); transfers are unbounded.
            pre_vote: false,
            check_quorum: false,
            max_transfers: u8::MAX,
        };
        let model = RaftModel::new(bounds);
        let state = model.init_state();
        Ok(Checker {
            model,
            state,
            nodes: (0..nodes).map(|_| NodeView::default()).collect(),
            msgs: HashMap::default(),
            values: HashMap::default(),
            summary: Summary {
                nodes,
                ..Summary::default()
            },
            full_properties: false,
            saves_in_flight: false,
            decoded: false,
            changed: Changed::default(),
            reads_begun: vec![BTreeMap::new(); nodes],
            reads_served: vec![Vec::new(); nodes],
        })
    }

    /// Counts, in `coverage`, every branch of the specification that the replay executes (shared by the
    /// checker's clones).
    pub fn with_coverage(mut self, coverage: std::sync::Arc<model::coverage::Coverage>) -> Checker {
        self.model.coverage = Some(coverage);
        self
    }

    /// Checks every property on the whole state after every step, instead of only where the step changed
    /// something. Slower; the verdicts are the same.
    pub fn with_full_properties(mut self) -> Checker {
        self.full_properties = true;
        self
    }

    /// For processes killed at any moment (`raft-node` under `raft-chaos`): a crash may come while a save is
    /// in flight, after the data reached the disk and before its `Persist` reached the trace. A restart may
    /// then load either the durable state, or the state the node had after its last step (which the save
    /// in flight was writing): a save in flight may or may not have taken effect. Loading anything else,
    /// less than durable included, is still a mismatch. (The snapshot bytes of such a save are not
    /// compared: the trace has their digest only once a `Persist` reports it.)
    pub fn with_saves_in_flight(mut self) -> Checker {
        self.saves_in_flight = true;
        self
    }

    /// For traces whose receivers report what their transport decoded (`Decoded` events): the checker keeps
    /// the digest of each message produced, and a message must be decoded as it was produced.
    pub fn with_decoded(mut self) -> Checker {
        self.decoded = true;
        self
    }

    /// For nodes that run with the protocol extensions `features` (PreVote, CheckQuorum): so does the model.
    pub fn with_features(mut self, features: Features) -> Checker {
        self.set_features(features);
        self
    }

    /// [`Checker::with_features`] in place, before the first event.
    pub fn set_features(&mut self, features: Features) {
        self.model.bounds.pre_vote = features.pre_vote;
        self.model.bounds.check_quorum = features.check_quorum;
        if features.voters > 0 {
            self.model.bounds.voters = features.voters.min(self.nodes.len() as u64) as u8;
        }
        self.state.initial = self.model.initial_config();
    }

    /// What was checked so far.
    pub fn summary(&self) -> Summary {
        self.summary.clone()
    }

    /// The model state that the run so far stands for: the servers and history of the replay, and in the
    /// network every message sent and still in flight (with its copies), as the model would hold them.
    pub fn spec_state(&self) -> State {
        let mut state = self.state.clone();
        for t in self.msgs.values().filter(|t| t.sent) {
            for _ in 0..t.copies {
                state.network.send(t.msg.clone());
            }
        }
        state
    }

    /// Checks one event.
    pub fn event(&mut self, ev: &Event) -> Result<(), Failure> {
        if let Some(node) = ev.node() {
            if node as usize >= self.nodes.len() {
                return fail(format!(
                    "node {node} is not in the cluster of {}",
                    self.nodes.len()
                ));
            }
        }
        match ev {
            Event::Start {
                node,
                restart,
                state,
                snapshot,
            } => self.start(*node, *restart, state, *snapshot)?,
            Event::Timeout { node, state, sent } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                self.node_step(*node, state, sent, None, None, |c| {
                    c.act(Action::Timeout(i))
                })?;
            }
            Event::Heartbeat { node, state, sent } => {
                self.alive(*node)?;
                if self.state.server(*node as ServerId).role != MRole::Leader {
                    return fail("a heartbeat from a server that is not leader");
                }
                self.node_step(*node, state, sent, None, None, |_| Ok(()))?;
            }
            Event::CheckQuorum { node, state } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                self.node_step(*node, state, &[], None, None, |c| {
                    c.act(Action::CheckQuorum(i))
                })?;
            }
            Event::Transfer {
                node,
                target,
                state,
                sent,
            } => {
                self.alive(*node)?;
                if self.state.server(*node as ServerId).role != MRole::Leader {
                    return fail("a transfer begun by a server that is not leader");
                }
                if sent
                    .iter()
                    .any(|m| matches!(m.m, Body::TimeoutNow { .. }) && m.to != *target)
                {
                    return fail(format!(
                        "node {node} was asked to hand over to {target}, and sent TimeoutNow to another server"
                    ));
                }
                self.node_step(*node, state, sent, None, None, |_| Ok(()))?;
            }
            Event::Propose {
                node,
                command,
                accepted,
                state,
                sent,
            } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                let allowed = self.model.can_client_request(&self.state, i);
                self.append_step(
                    *node,
                    state,
                    sent,
                    *accepted,
                    allowed,
                    "a client command",
                    |c| Ok(Action::ClientRequest(i, c.value(*command))),
                )?;
            }
            Event::ChangeConfig {
                node,
                conf,
                accepted,
                state,
                sent,
            } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                let config = self.config(conf)?;
                let allowed = self.model.can_change_config(&self.state, i, config);
                self.append_step(
                    *node,
                    state,
                    sent,
                    *accepted,
                    allowed,
                    "a configuration change",
                    |_| Ok(Action::ChangeConfig(i, config)),
                )?;
            }
            Event::Receive {
                node,
                id,
                refused,
                state,
                sent,
            } => {
                self.alive(*node)?;
                let t = self.in_flight(*id)?;
                if t.msg.to as u64 != *node {
                    return fail(format!(
                        "message {id} is for node {}, received by node {node}",
                        t.msg.to
                    ));
                }
                if let Some(e) = refused {
                    return fail(format!(
                        "node {node} refused message {id} ({e}); the model accepts every message in flight"
                    ));
                }
                let m = t.msg.clone();
                // A heartbeat (an AppendEntries without entries) appends nothing and truncates nothing.
                let writes_from = match &m.body {
                    MBody::AppendEntries {
                        entries,
                        prev_log_index,
                        ..
                    } => (!entries.is_empty()).then_some(prev_log_index + 1),
                    MBody::InstallSnapshot { .. } => Some(1),
                    _ => None,
                };
                let installs = t.snapshot;
                let snap_before = self.nodes[*node as usize].snap;
                // Back from the checker's parking into the model's network, to be received.
                self.state.network.send(m.clone());
                self.node_step(*node, state, sent, Some(m.clone()), writes_from, |c| {
                    c.act(Action::Receive(m))
                })?;
                if installs.is_some() && state.snap != snap_before {
                    // The node installed the leader's snapshot (the projection confirmed the model did).
                    self.nodes[*node as usize].snapshot = installs;
                }
                self.consume(*id);
            }
            Event::ReadIndex {
                node,
                context,
                index,
                state,
                sent,
            } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                match index {
                    None => {
                        if self.model.can_read_index(&self.state, i) {
                            return fail("a leader that has committed in its term refused a read");
                        }
                        self.node_step(*node, state, sent, None, None, |_| Ok(()))?;
                    }
                    Some(index) => {
                        let (node, context, index) = (*node, *context, *index);
                        self.node_step(node, state, sent, None, None, |c| {
                            c.act(Action::ReadIndex(i))?;
                            let s = c.state.server(i);
                            if index != s.commit_index as u64 {
                                return fail(format!(
                                    "read_index returned {index}, the model's read index is its commit index {}",
                                    s.commit_index
                                ));
                            }
                            let key = (s.current_term, s.read_round);
                            c.reads_begun[node as usize].insert(key, (context, index));
                            Ok(())
                        })?;
                    }
                }
            }
            Event::Read {
                node,
                context,
                index,
            } => {
                let served = &mut self.reads_served[*node as usize];
                match served.iter().position(|r| *r == (*context, *index)) {
                    Some(k) => {
                        served.remove(k);
                    }
                    None => {
                        return fail(format!(
                            "node {node} handed out read {context} at index {index}, which the model has not served"
                        ))
                    }
                }
            }
            Event::Snapshot {
                node,
                index,
                data,
                state,
            } => {
                self.alive(*node)?;
                let index = small(*index, "snapshot index")?;
                let i = *node as ServerId;
                // The model's compaction moves the snapshot index and writes nothing of the log (which
                // keeps the snapshot's entries).
                self.node_step(*node, state, &[], None, None, |c| {
                    c.act(Action::Compact(i, index))
                })?;
                self.nodes[*node as usize].snapshot = Some(*data);
            }
            Event::Persist {
                node,
                term,
                vote,
                snap,
                last,
                log,
                snapshot,
            } => self.persist(*node, (*term, *vote, *snap, *last), log.as_ref(), *snapshot)?,
            Event::Send { id } => self.send(*id)?,
            Event::Decoded { node, id, digest } => {
                self.server(*node)?;
                let t = self.in_flight(*id)?;
                if t.msg.to as u64 != *node {
                    return fail(format!(
                        "message {id} is for node {}, decoded by node {node}'s transport",
                        t.msg.to
                    ));
                }
                match t.digest {
                    Some(produced) if produced != *digest => {
                        return fail(format!(
                            "node {node}'s transport decoded message {id} as {digest}, but it was sent as {produced}"
                        ))
                    }
                    Some(_) => {}
                    None => {
                        return fail(
                            "a Decoded event in a trace whose header does not say \"decoded\": true",
                        )
                    }
                }
            }
            Event::Apply {
                node,
                index,
                term,
                item,
            } => self.apply(*node, *index, *term, item)?,
            Event::Drop { id } => {
                let t = self.in_flight(*id)?;
                let m = t.msg.clone();
                self.state.network.send(m.clone());
                self.act(Action::Drop(m))?;
                self.consume(*id);
            }
            Event::Duplicate { id } => {
                let m = self.in_flight(*id)?.msg.clone();
                self.state.network.send(m.clone());
                self.act(Action::Duplicate(m.clone()))?;
                // Both copies back to the parking.
                self.state.network.remove(&m);
                self.state.network.remove(&m);
                self.msgs.get_mut(id).expect("looked up above").copies += 1;
            }
            Event::Crash { node } => {
                self.alive(*node)?;
                let i = *node as ServerId;
                if self.saves_in_flight {
                    let server = self.state.server(i);
                    let view = &self.nodes[*node as usize];
                    let last = Durable {
                        term: server.current_term as u64,
                        vote: server.voted_for.map(|v| v as u64),
                        snap: view.snap,
                        log: view.log.clone(),
                        snapshot: view.durable.snapshot,
                    };
                    let in_flight = (last != view.durable).then_some(last);
                    self.nodes[*node as usize].in_flight = in_flight;
                }
                // A crash changes no log and no history; the commit index can only go down.
                self.changed = Changed {
                    server: i,
                    log_from: None,
                    commit_before: self.state.server(i).commit_index,
                    commit: true,
                    new_leader: false,
                    elections_before: self.state.elections.len(),
                    committed_before: self.state.committed.len(),
                    served_before: self.state.served.len(),
                };
                self.act(Action::Crash(i))?;
                // Its reads are lost with it: pending ones, and confirmed ones not handed out.
                self.reads_begun[*node as usize].clear();
                self.reads_served[*node as usize].clear();
                let view = &mut self.nodes[*node as usize];
                view.alive = false;
                view.last_applied = 0;
            }
            Event::Delay { id, .. } => {
                self.in_flight(*id)?;
            }
            Event::Disconnect { .. } | Event::Connect { .. } => {}
        }
        // The properties read the servers and the history, which only steps and crashes change: after any
        // other event their verdict is the one already checked.
        if matches!(
            ev,
            Event::Start { .. }
                | Event::Timeout { .. }
                | Event::Heartbeat { .. }
                | Event::CheckQuorum { .. }
                | Event::Transfer { .. }
                | Event::Propose { .. }
                | Event::Receive { .. }
                | Event::ReadIndex { .. }
                | Event::Snapshot { .. }
                | Event::Crash { .. }
        ) {
            if self.full_properties {
                self.check_all_properties()?;
            } else if !matches!(ev, Event::Start { .. }) {
                // A start applies no model action: the model's state is as it was checked.
                self.check_properties()?;
            }
        }
        self.summary.events += 1;
        Ok(())
    }

    /// A server id from the trace, if the cluster has that server.
    fn server(&self, id: u64) -> Result<ServerId, Failure> {
        if id < self.nodes.len() as u64 {
            Ok(id as ServerId)
        } else {
            fail(format!(
                "server {id} is not in the cluster of {}",
                self.nodes.len()
            ))
        }
    }

    fn alive(&self, node: u64) -> Result<(), Failure> {
        if self.nodes[node as usize].alive {
            Ok(())
        } else {
            fail(format!("node {node} is not running"))
        }
    }

    /// The message `id`, which must have been sent and have a copy in flight.
    fn in_flight(&self, id: MsgId) -> Result<&Tracked, Failure> {
        match self.msgs.get(&id) {
            Some(t) if t.sent && t.copies > 0 => Ok(t),
            Some(t) if !t.sent => fail(format!("message {id} was not sent yet")),
            Some(_) => fail(format!("no copy of message {id} is in flight")),
            None => fail(format!("message {id} was never produced")),
        }
    }

    /// One copy of message `id` left the network (received or lost).
    fn consume(&mut self, id: MsgId) {
        let t = self.msgs.get_mut(&id).expect("checked in flight");
        t.copies -= 1;
        if t.copies == 0 {
            self.msgs.remove(&id);
        }
    }

    /// Applies one model action if its guard allows it.
    fn act(&mut self, action: Action) -> Result<(), Failure> {
        if !self.model.enabled(&self.state, &action) {
            return fail(format!(
                "the model does not allow: {}",
                model::display::action(&action)
            ));
        }
        self.model.apply(&mut self.state, &action);
        self.summary.actions += 1;
        self.summary.action_counts[action_kind(&action)] += 1;
        Ok(())
    }

    /// A host asked a node to append `what` (a client command, a configuration change). Refused
    /// (`accepted` is `None`): the model's guard must refuse too (`allowed` false), unless the node, as
    /// leader of its term, is handing over. Accepted: the model appends by `action`, at the index and in the
    /// term the node returned, and the leader composition follows.
    #[allow(clippy::too_many_arguments)]
    fn append_step(
        &mut self,
        node: u64,
        state: &NodeState,
        sent: &[Msg],
        accepted: Option<(u64, u64)>,
        allowed: bool,
        what: &str,
        action: impl FnOnce(&mut Self) -> Result<Action, Failure>,
    ) -> Result<(), Failure> {
        let i = node as ServerId;
        let Some((index, term)) = accepted else {
            let handing_over =
                self.nodes[node as usize].handed_over_in == Some(self.state.server(i).current_term);
            if allowed && !handing_over {
                return fail(format!("a leader refused {what}"));
            }
            return self.node_step(node, state, sent, None, None, |_| Ok(()));
        };
        let appends_at = self.state.server(i).last_index() + 1;
        self.node_step(node, state, sent, None, Some(appends_at), |c| {
            let action = action(c)?;
            c.act(action)?;
            let s = c.state.server(i);
            if (index, term) != (s.last_index() as u64, s.current_term as u64) {
                return fail(format!(
                    "{what} was appended at index {index} term {term}, the model's at index {} term {}",
                    s.last_index(),
                    s.current_term
                ));
            }
            Ok(())
        })
    }

    /// The model value of a command digest.
    fn value(&mut self, digest: Digest) -> Value {
        if let Some(v) = self.values.get(&digest) {
            return *v;
        }
        let next = self.values.len() as Value + 1;
        self.values.insert(digest, next);
        next
    }

    fn entry(&mut self, (term, item): &(u64, Item)) -> Result<Entry, Failure> {
        let term = small(*term, "entry term")?;
        Ok(match item {
            Item::Command(digest) => Entry::client(term, self.value(*digest)),
            Item::Config(conf) => Entry::configuration(term, self.config(conf)?),
        })
    }

    /// The model's configuration for a trace's: server ids as bits.
    fn config(&self, conf: &Conf) -> Result<Config, Failure> {
        let n = self.nodes.len() as u64;
        let bits = |ids: &[u64]| {
            ids.iter().try_fold(0u8, |bits, &id| {
                if id < n {
                    Ok(bits | 1 << id)
                } else {
                    fail(format!(
                        "a configuration names server {id}, outside the trace's {n}"
                    ))
                }
            })
        };
        Ok(Config {
            voters: bits(&conf.voters)?,
            old_voters: bits(&conf.old)?,
            learners: bits(&conf.learners)?,
        })
    }

    /// A node's step: `compose` applies the step's main action(s); then the leader's commit advance, the
    /// requests it sent and the revised `next_index`es complete the composition (see the trace format). The
    /// messages the model sent must be exactly `sent`, and the model's server must project onto `reported`.
    ///
    /// `writes_from` is the lowest index (1-based) that the step's main action can write in the server's log
    /// by the model's effects: the new entry of a client request, the entries after an AppendEntries'
    /// `prev_log_index`, the whole log for an InstallSnapshot or a compaction; `None` for actions that leave
    /// the log as it was. Below it the log needs no comparison and the log properties no new check (the full
    /// mode compares and checks everything).
    fn node_step(
        &mut self,
        node: u64,
        reported: &NodeState,
        sent: &[Msg],
        received: Option<Message>,
        writes_from: Option<Index>,
        compose: impl FnOnce(&mut Self) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let i = node as ServerId;
        let writes_from = if self.full_properties {
            Some(1)
        } else {
            writes_from
        };
        let s = self.state.server(i);
        let before = model::raft::Before::of(s);
        let (term_before, role_before, commit_before) = (s.current_term, s.role, s.commit_index);
        // Leader Append-Only compares a leader's log before and after a step that can write it.
        // Below `writes_from` the model's effect leaves the log as it is, so only the rest is kept (nothing,
        // for a client request's append).
        let leader_log_before = writes_from
            .filter(|_| role_before == MRole::Leader)
            .map(|w| {
                let from = (w as usize).saturating_sub(1).min(s.log.len());
                (from, s.log.len(), s.log[from..].to_vec())
            });
        let (elections_before, committed_before, served_before) = (
            self.state.elections.len(),
            self.state.committed.len(),
            self.state.served.len(),
        );
        // The model messages the implementation's messages stand for, with their counts before the step.
        // InstallSnapshot carries the leader's snapshot, which the trace has only as a digest: it is taken
        // from the model below and compared field by field.
        let mut expected: SmallVec<[Option<Message>; 4]> = SmallVec::with_capacity(sent.len());
        for m in sent {
            expected.push(self.model_message(node, m)?);
        }
        let mut counts_before: SmallVec<[u8; 4]> = expected
            .iter()
            .map(|m| m.as_ref().map_or(0, |m| self.state.network.count(m)))
            .collect();
        let len_before = self.state.network.len();

        compose(self)?;
        // A leader's step may commit (Figure 2, leaders: a majority's match_index in its own term).
        let s = self.state.server(i);
        if s.role == MRole::Leader && reported.commit > s.commit_index as u64 {
            let index = small(reported.commit, "commit index")?;
            self.act(Action::AdvanceCommitIndex(i, index))?;
        }
        // Coverage of the commit rule: where the leader's commit index now stands, the rule is
        // evaluated as the model checker's enumerator evaluates it, from the last index down.
        if self.model.coverage.is_some() && self.state.server(i).role == MRole::Leader {
            self.model.commit_point(&self.state, i);
        }
        // The requests it sent, in order.
        for (k, m) in sent.iter().enumerate() {
            match &m.m {
                Body::AppendEntries {
                    prev_log_index,
                    entries,
                    ..
                } => {
                    let action = Action::AppendEntries {
                        leader: i,
                        peer: self.server(m.to)?,
                        prev_log_index: small(*prev_log_index, "prev_log_index")?,
                        count: entries.len() as u32,
                    };
                    self.act(action)?;
                }
                Body::InstallSnapshot {
                    term,
                    last_included_index,
                    last_included_term,
                    ..
                } => {
                    let peer = self.server(m.to)?;
                    let model_msg = if self.model.can_install_snapshot(&self.state, i, peer) {
                        self.model.install_snapshot_message(&self.state, i, peer)
                    } else {
                        return fail(format!(
                            "node {node} sent InstallSnapshot to {peer}, which the model does not allow here"
                        ));
                    };
                    let (mt, mi, mterm) = match &model_msg.body {
                        MBody::InstallSnapshot {
                            last_included_index,
                            last_included_term,
                            ..
                        } => (model_msg.term, *last_included_index, *last_included_term),
                        _ => unreachable!("install_snapshot_message"),
                    };
                    if (mt as u64, mi as u64, mterm as u64)
                        != (*term, *last_included_index, *last_included_term)
                    {
                        return Err(Failure {
                            reason: format!("node {node} sent an InstallSnapshot that differs from the model's"),
                            diff: vec![format!(
                                "(term, last_included_index, last_included_term): model ({mt}, {mi}, {mterm}), implementation ({term}, {last_included_index}, {last_included_term})"
                            )],
                        });
                    }
                    counts_before[k] = self.state.network.count(&model_msg);
                    self.act(Action::InstallSnapshot { leader: i, peer })?;
                    expected[k] = Some(model_msg);
                }
                Body::TimeoutNow { .. } => {
                    let target = self.server(m.to)?;
                    self.act(Action::TransferLeader { leader: i, target })?;
                    self.nodes[node as usize].handed_over_in =
                        Some(self.state.server(i).current_term);
                }
                _ => {}
            }
        }
        // Exactly the implementation's messages were added (and the received one removed).
        let len_after = self.state.network.len();
        let removed = usize::from(received.is_some());
        let mut wrong = Vec::new();
        for (k, m) in expected.iter().enumerate() {
            let m = m.as_ref().expect("filled above");
            let mut wanted = counts_before[k] as usize
                + expected.iter().filter(|x| x.as_ref() == Some(m)).count();
            if received.as_ref() == Some(m) {
                wanted -= 1;
            }
            if self.state.network.count(m) as usize != wanted {
                wrong.push(format!(
                    "message {}#{} to {}: the model did not send {}",
                    node,
                    sent[k].seq,
                    sent[k].to,
                    model::display::message(m)
                ));
            }
        }
        if !wrong.is_empty() || len_after + removed != len_before + sent.len() {
            let mut diff = wrong;
            diff.push(format!(
                "messages sent: model {}, implementation {}",
                (len_after + removed).saturating_sub(len_before),
                sent.len()
            ));
            return Err(Failure {
                reason: format!("node {node} sent other messages than the model"),
                diff,
            });
        }
        // The leader's next_index for each peer: whatever the implementation chose, within what Raft allows.
        if self.state.server(i).role == MRole::Leader && reported.role == Role::L {
            let members = self.state.config(i).members();
            for (p, (next, _)) in reported.progress.iter().enumerate() {
                // Only the members have a next_index that means something.
                if p != node as usize && p < self.nodes.len() && members & (1 << p) != 0 {
                    let next = small(*next, "next_index")?;
                    if self.state.server(i).next_index[p] != next {
                        self.act(Action::SetNextIndex {
                            leader: i,
                            peer: p as ServerId,
                            index: next,
                        })?;
                    }
                }
            }
        }
        // Step invariants (terms and commit indexes never decrease, nor a leader's match indexes in
        // its term; a leader only appends), as the model's `check_step` records them. A node step is
        // never a restart (that is the `Crash` event's).
        let s = self.state.server(i);
        let mut violations = before.violations(s, false);
        if let Some((from, len, before)) = &leader_log_before {
            if s.role == MRole::Leader
                && s.current_term == term_before
                && (s.log.len() < *len || s.log[*from..*len] != before[..])
            {
                violations |= model::state::flags::LEADER_APPEND_ONLY_BROKEN;
            }
        }
        // Where the server's log may differ from before: where the node says it wrote (the projection below
        // confirms that the model's log equals it), or everywhere when the snapshot moved in a step that may
        // write the log (an installed snapshot replaces the model's prefix), or in the full mode. A
        // compaction (`writes_from` is `None`) moves the snapshot and leaves the model's log as it was.
        let snap_moved = reported.snap.0 != self.nodes[node as usize].snap.0;
        let log_from = if self.full_properties || (snap_moved && writes_from.is_some()) {
            Some(1)
        } else {
            reported
                .log
                .as_ref()
                .map(|d| d.from.clamp(1, u32::MAX as u64) as u32)
        };
        self.changed = Changed {
            server: i,
            log_from,
            commit_before,
            commit: s.commit_index != commit_before,
            new_leader: role_before != MRole::Leader && s.role == MRole::Leader,
            elections_before,
            committed_before,
            served_before,
        };
        self.state.flags |= violations;
        self.settle_reads(node, self.state.served.len() - served_before);
        // Park the messages: they leave the model's network for the checker's table until an event names them
        // (see `Checker::msgs`).
        for msg in expected.iter().flatten() {
            self.state.network.remove(msg);
        }
        // Remember the messages for their Send, Receive and Drop.
        let whole = Dependency {
            term: reported.term,
            vote: Some(reported.vote),
            entry: Some((
                reported.last,
                self.reported_term_at(node, reported, reported.last),
            )),
        };
        for (m, msg) in sent.iter().zip(expected) {
            let term_only = Dependency {
                term: reported.term,
                vote: None,
                entry: None,
            };
            let dep = match &m.m {
                // A pre-vote reply changes no vote and no log: it speaks only from the sender's term.
                Body::RequestVoteReply { granted: false, .. }
                | Body::PreVoteReply { .. }
                | Body::AppendEntriesReply { success: false, .. } => term_only,
                Body::RequestVoteReply { granted: true, .. } => Dependency {
                    vote: Some(reported.vote),
                    ..term_only
                },
                Body::AppendEntriesReply {
                    success: true,
                    match_index,
                    ..
                } => Dependency {
                    entry: Some((
                        *match_index,
                        self.reported_term_at(node, reported, *match_index),
                    )),
                    ..term_only
                },
                _ => whole,
            };
            let id = MsgId {
                from: node,
                seq: m.seq,
            };
            let data = match &m.m {
                Body::InstallSnapshot { data, .. } => {
                    self.holds_snapshot(node, *data, "sent")?;
                    Some(*data)
                }
                _ => None,
            };
            let msg = msg.expect("filled above");
            if self.msgs.contains_key(&id) {
                return fail(format!("message id {id} is used twice"));
            }
            self.msgs.insert(
                id,
                Tracked {
                    msg,
                    sent: false,
                    copies: 0,
                    dep,
                    digest: self.decoded.then(|| m.m.digest()),
                    snapshot: data,
                },
            );
        }
        self.update_view(node, reported)?;
        // Compare the logs from the first index either side may have written.
        let compare_from = match (writes_from, &reported.log) {
            (Some(w), Some(d)) => Some(u64::from(w).min(d.from)),
            (Some(w), None) => Some(u64::from(w)),
            (None, Some(d)) => Some(d.from),
            (None, None) => None,
        };
        self.project(node, reported, compare_from)
    }

    /// Moves the node's begun reads that the model served into `reads_served`, and forgets those that the
    /// model dropped (the leadership they began in ended). The step served `newly_served` reads: a leader
    /// serves its reads in round order, and drops those still pending only as it steps down, after, so the
    /// vanished reads of its current term are served from the lowest round up, and any left were dropped.
    fn settle_reads(&mut self, node: u64, newly_served: usize) {
        let s = self.state.server(node as ServerId);
        let begun = &mut self.reads_begun[node as usize];
        if begun.is_empty() {
            return;
        }
        let term = s.current_term;
        let pending: SmallVec<[u32; 4]> = s.reads.iter().map(|r| r.round).collect();
        let served = &mut self.reads_served[node as usize];
        let mut newly_served = newly_served;
        // In (term, round) order: a term's reads by round.
        begun.retain(|&(t, round), &mut read| {
            if t != term {
                return false;
            }
            if pending.contains(&round) {
                return true;
            }
            if newly_served > 0 {
                newly_served -= 1;
                served.push(read);
            }
            false
        });
    }

    /// The term of the entry at `index` in the log `node` reported after a step (0 if it has none there;
    /// an index the snapshot covers gives the snapshot's term, which a durable state that also covers it
    /// never contradicts).
    fn reported_term_at(&self, node: u64, reported: &NodeState, index: u64) -> u64 {
        if index <= reported.snap.0 {
            return reported.snap.1;
        }
        if let Some(LogDelta { from, entries }) = &reported.log {
            if index >= *from {
                return entries.get((index - from) as usize).map_or(0, |(t, _)| *t);
            }
        }
        let view = &self.nodes[node as usize];
        index
            .checked_sub(view.snap.0.saturating_add(1))
            .and_then(|k| view.log.get(k as usize))
            .map_or(0, |e| e.term as u64)
    }

    /// The model message that the implementation's message `m` from `node` stands for (`None` for an
    /// InstallSnapshot, which the caller takes from the model).
    fn model_message(&mut self, node: u64, m: &Msg) -> Result<Option<Message>, Failure> {
        let from = node as ServerId;
        let to = self.server(m.to)?;
        if to == from {
            return fail(format!("node {node} sent a message to itself"));
        }
        let (term, body) = match &m.m {
            Body::RequestVote {
                term,
                last_log_index,
                last_log_term,
                transfer,
            } => (
                *term,
                MBody::RequestVote {
                    last_log_index: small(*last_log_index, "last_log_index")?,
                    last_log_term: small(*last_log_term, "last_log_term")?,
                    transfer: *transfer,
                },
            ),
            Body::RequestVoteReply { term, granted } => (
                *term,
                MBody::RequestVoteReply {
                    vote_granted: *granted,
                },
            ),
            Body::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
            } => {
                let mut log = model::state::Log::new();
                for e in entries {
                    log.push(self.entry(e)?);
                }
                (
                    *term,
                    MBody::AppendEntries {
                        prev_log_index: small(*prev_log_index, "prev_log_index")?,
                        prev_log_term: small(*prev_log_term, "prev_log_term")?,
                        entries: log,
                        leader_commit: small(*leader_commit, "leader_commit")?,
                        read_round: small(*read_round, "read_round")?,
                    },
                )
            }
            Body::AppendEntriesReply {
                term,
                success,
                match_index,
                conflict_term,
                conflict_index,
                read_round,
                ..
            } => {
                // The model's reply has no prev_log_index echo: the implementation's leader uses it only to
                // ignore stale rejections, which moves nothing but next_index.
                let outcome = if *success {
                    AppendOutcome::Success {
                        match_index: small(*match_index, "match_index")?,
                    }
                } else if *conflict_index == 0 {
                    AppendOutcome::StaleTerm
                } else {
                    AppendOutcome::Conflict {
                        conflict_term: small(conflict_term.unwrap_or(0), "conflict_term")?,
                        conflict_index: small(*conflict_index, "conflict_index")?,
                    }
                };
                (
                    *term,
                    MBody::AppendEntriesReply {
                        outcome,
                        read_round: small(*read_round, "read_round")?,
                    },
                )
            }
            Body::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => (
                *term,
                MBody::PreVote {
                    last_log_index: small(*last_log_index, "last_log_index")?,
                    last_log_term: small(*last_log_term, "last_log_term")?,
                },
            ),
            Body::PreVoteReply { term, granted } => {
                (*term, MBody::PreVoteReply { granted: *granted })
            }
            Body::TimeoutNow { term } => (*term, MBody::TimeoutNow),
            Body::InstallSnapshot { .. } => return Ok(None),
            Body::InstallSnapshotReply { term, match_index } => (
                *term,
                MBody::InstallSnapshotReply {
                    match_index: small(*match_index, "match_index")?,
                },
            ),
        };
        Ok(Some(Message {
            from,
            to,
            term: small(term, "term")?,
            body,
        }))
    }

    /// Brings the checker's copy of the node's log up to date with what it reported.
    fn update_view(&mut self, node: u64, reported: &NodeState) -> Result<(), Failure> {
        let mut entries: SmallVec<[Entry; 8]> = SmallVec::new();
        if let Some(delta) = &reported.log {
            for e in &delta.entries {
                entries.push(self.entry(e)?);
            }
        }
        let view = &mut self.nodes[node as usize];
        // Entries now inside the snapshot leave the log.
        let (old_snap, new_snap) = (view.snap.0, reported.snap.0);
        if new_snap > old_snap {
            drop_snapshotted(&mut view.log, new_snap - old_snap);
        } else if new_snap < old_snap {
            return fail(format!(
                "node {node}'s snapshot went back from index {old_snap} to {new_snap}"
            ));
        }
        view.snap = reported.snap;
        let changed = if new_snap != old_snap {
            Some(0)
        } else {
            reported.log.as_ref().map(|d| d.from)
        };
        if let Some(c) = changed {
            view.changed_since_persist = Some(view.changed_since_persist.map_or(c, |x| x.min(c)));
        }
        if let Some(delta) = &reported.log {
            if delta.from <= new_snap {
                return fail(format!(
                    "node {node} reported log entries from index {}, inside its snapshot (through {new_snap})",
                    delta.from
                ));
            }
            let keep = (delta.from - new_snap - 1) as usize;
            if keep > view.log.len() {
                return fail(format!(
                    "node {node} reported log entries from index {}, past the end of its log ({})",
                    delta.from,
                    new_snap + view.log.len() as u64
                ));
            }
            view.log.truncate(keep);
            view.log.extend(entries);
        }
        if view.snap.0 + view.log.len() as u64 != reported.last {
            return fail(format!(
                "node {node} reported last index {}, but its log as reported ends at {}",
                reported.last,
                view.snap.0 + view.log.len() as u64
            ));
        }
        Ok(())
    }

    /// The model's server must project exactly onto what the node reported.
    /// `compare_from`: the first index from which to compare the logs (below it, and without it at all, they
    /// are unchanged since the last comparison).
    fn project(
        &self,
        node: u64,
        reported: &NodeState,
        compare_from: Option<u64>,
    ) -> Result<(), Failure> {
        let s = self.state.server(node as ServerId);
        let view = &self.nodes[node as usize];
        let mut diff = Vec::new();
        fn field<T: PartialEq + std::fmt::Debug>(
            diff: &mut Vec<String>,
            name: &str,
            model: T,
            implementation: T,
        ) {
            if model != implementation {
                diff.push(format!(
                    "{name}: model {model:?}, implementation {implementation:?}"
                ));
            }
        }
        field(
            &mut diff,
            "current_term",
            s.current_term as u64,
            reported.term,
        );
        field(
            &mut diff,
            "voted_for",
            s.voted_for.map(u64::from),
            reported.vote,
        );
        let role = match s.role {
            MRole::Follower => Role::F,
            MRole::Candidate => Role::C,
            MRole::Leader => Role::L,
            MRole::PreCandidate => Role::P,
        };
        field(&mut diff, "role", role, reported.role);
        field(
            &mut diff,
            "commit_index",
            s.commit_index as u64,
            reported.commit,
        );
        let model_snap = (
            s.snapshot_index as u64,
            term_at(&s.log, s.snapshot_index) as u64,
        );
        field(
            &mut diff,
            "snapshot (index, term)",
            model_snap,
            reported.snap,
        );
        field(
            &mut diff,
            "last log index",
            s.last_index() as u64,
            reported.last,
        );
        let tail = s.log.get(s.snapshot_index as usize..).unwrap_or(&[]);
        let differs = compare_from.is_some_and(|from| {
            let k = (from.saturating_sub(s.snapshot_index as u64 + 1) as usize)
                .min(tail.len())
                .min(view.log.len());
            tail.len() != view.log.len() || tail[k..] != view.log[k..]
        });
        if differs {
            let k = tail
                .iter()
                .zip(&view.log)
                .position(|(a, b)| a != b)
                .unwrap_or(tail.len().min(view.log.len()));
            field(
                &mut diff,
                &format!("log from index {}", s.snapshot_index as usize + k + 1),
                model::display::entries(&tail[k..tail.len().min(k + 4)]),
                model::display::entries(&view.log[k..view.log.len().min(k + 4)]),
            );
        }
        if matches!(s.role, MRole::Candidate | MRole::PreCandidate) {
            let model_votes: Vec<u64> = (0..self.nodes.len() as u64)
                .filter(|j| s.votes_granted & (1 << j) != 0)
                .collect();
            let mut votes = reported.votes.clone();
            votes.sort_unstable();
            field(&mut diff, "votes granted", model_votes, votes);
        }
        if s.role == MRole::Leader {
            let members = self.state.config(node as ServerId).members();
            for p in
                (0..self.nodes.len()).filter(|&p| p != node as usize && members & (1 << p) != 0)
            {
                let (next, matched) = reported.progress.get(p).copied().unwrap_or((0, 0));
                if (s.next_index[p] as u64, s.match_index[p] as u64) != (next, matched) {
                    field(
                        &mut diff,
                        &format!("(next_index, match_index) of {p}"),
                        (s.next_index[p] as u64, s.match_index[p] as u64),
                        (next, matched),
                    );
                }
            }
        }
        field(
            &mut diff,
            "read round",
            s.read_round as u64,
            reported.read_round,
        );
        let model_reads: Vec<(u64, u64)> = s
            .reads
            .iter()
            .map(|r| (r.round as u64, r.index as u64))
            .collect();
        field(
            &mut diff,
            "pending reads (round, index)",
            model_reads,
            reported.reads.clone(),
        );
        if diff.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                reason: format!("node {node}'s state differs from the model's"),
                diff,
            })
        }
    }

    fn start(
        &mut self,
        node: u64,
        restart: bool,
        reported: &NodeState,
        snapshot: Option<Digest>,
    ) -> Result<(), Failure> {
        let view = &self.nodes[node as usize];
        if view.alive {
            return fail(format!("node {node} started while it was running"));
        }
        if restart && !view.started {
            return fail(format!(
                "node {node} restarted from persisted state before it ever ran"
            ));
        }
        if !restart && view.durable != Durable::default() {
            return fail(format!(
                "node {node} started afresh, but it had made state durable before"
            ));
        }
        if reported
            .log
            .as_ref()
            .is_none_or(|d| d.from != reported.snap.0.saturating_add(1))
        {
            return fail(format!(
                "a Start must report node {node}'s whole log, from index {}",
                reported.snap.0.saturating_add(1)
            ));
        }
        {
            let view = &mut self.nodes[node as usize];
            view.log.clear();
            view.snap = reported.snap;
        }
        self.update_view(node, reported)?;
        let view = &mut self.nodes[node as usize];
        let loaded = Durable {
            term: reported.term,
            vote: reported.vote,
            snap: reported.snap,
            log: view.log.clone(),
            snapshot,
        };
        let in_flight = view.in_flight.take().map(|d| Durable {
            snapshot: loaded.snapshot,
            ..d
        });
        if loaded != view.durable && in_flight.as_ref() == Some(&loaded) {
            // The save in flight at the crash had taken effect.
            view.durable = loaded.clone();
        } else if in_flight.is_some() && loaded == view.durable {
            // It had not: the steps since the last save never happened, for the node's persistent state
            // (their messages never left: they leave only once saved). The model, which keeps a crashed
            // server's persistent state as of its last step, goes back to what was durable.
            let server = &mut self.state.servers[node as usize];
            server.current_term = loaded.term as _;
            server.voted_for = loaded.vote.map(|v| v as ServerId);
            server.log.truncate(loaded.snap.0 as usize);
            server.log.extend(loaded.log.iter().copied());
            server.snapshot_index = loaded.snap.0 as Index;
            // The model's restart set the commit index to the snapshot's, the one not saved.
            server.commit_index = server.snapshot_index;
        }
        if loaded != view.durable {
            let d = &view.durable;
            let mut diff = Vec::new();
            if d.term != loaded.term || d.vote != loaded.vote {
                diff.push(format!(
                    "(term, vote): durable ({}, {:?}), loaded ({}, {:?})",
                    d.term, d.vote, loaded.term, loaded.vote
                ));
            }
            if d.snap != loaded.snap {
                diff.push(format!(
                    "snapshot: durable {:?}, loaded {:?}",
                    d.snap, loaded.snap
                ));
            }
            if d.snapshot != loaded.snapshot {
                diff.push(format!(
                    "snapshot data: durable {:?}, loaded {:?}",
                    d.snapshot.map(|d| d.to_string()),
                    loaded.snapshot.map(|d| d.to_string())
                ));
            }
            if d.log != loaded.log {
                diff.push(format!(
                    "log: durable {} entries after the snapshot, loaded {}",
                    d.log.len(),
                    loaded.log.len()
                ));
            }
            return Err(Failure {
                reason: format!("node {node} did not start from exactly its durable state"),
                diff,
            });
        }
        view.alive = true;
        view.started = true;
        view.snapshot = snapshot;
        view.last_applied = 0;
        view.changed_since_persist = None;
        self.project(node, reported, Some(0))
    }

    /// A snapshot that node `node` `did` (sent, persisted, applied) must be the one it holds.
    fn holds_snapshot(&self, node: u64, data: Digest, did: &str) -> Result<(), Failure> {
        let holds = self.nodes[node as usize].snapshot;
        if holds == Some(data) {
            return Ok(());
        }
        fail(format!(
            "node {node} {did} snapshot data {data}, but the snapshot it holds is {}",
            holds.map_or_else(|| "none".to_string(), |d| d.to_string())
        ))
    }

    /// A `Persist`: `(term, vote, snap, last)` as written, the log entries written, the new snapshot's digest.
    fn persist(
        &mut self,
        node: u64,
        (term, vote, snap, last): (u64, Option<u64>, (u64, u64), u64),
        log: Option<&LogDelta>,
        snapshot: Option<Digest>,
    ) -> Result<(), Failure> {
        self.alive(node)?;
        if let Some(data) = snapshot {
            self.holds_snapshot(node, data, "persisted")?;
        }
        let mut written: SmallVec<[Entry; 8]> = SmallVec::new();
        if let Some(delta) = log {
            for e in &delta.entries {
                written.push(self.entry(e)?);
            }
        }
        let view = &mut self.nodes[node as usize];
        let d = &mut view.durable;
        if snap.0 < d.snap.0 {
            return fail(format!(
                "node {node} persisted a snapshot through {} over one through {}",
                snap.0, d.snap.0
            ));
        }
        drop_snapshotted(&mut d.log, snap.0 - d.snap.0);
        if snapshot.is_none() && snap.0 > d.snap.0 {
            return fail(format!(
                "node {node} persisted a snapshot through {} without its data",
                snap.0
            ));
        }
        d.snap = snap;
        d.term = term;
        d.vote = vote;
        if snapshot.is_some() {
            d.snapshot = snapshot;
        }
        if let Some(delta) = log {
            let keep = delta
                .from
                .checked_sub(snap.0.saturating_add(1))
                .filter(|k| *k as usize <= d.log.len());
            let Some(keep) = keep else {
                return fail(format!(
                    "node {node} persisted entries from index {}, which does not continue its durable log (snapshot {}, {} entries)",
                    delta.from, snap.0, d.log.len()
                ));
            };
            d.log.truncate(keep as usize);
            d.log.extend(written);
        }
        if d.last_index() != last {
            return fail(format!(
                "node {node} persisted a log ending at {last}, but the entries it wrote end at {}",
                d.last_index()
            ));
        }
        // What is persisted is the node's state now. The logs are compared from the first index that either
        // the node or this write changed since the previous write (they were equal below it then); in the
        // full mode, whole.
        let s = self.state.server(node as ServerId);
        let written_from = log.map(|delta| delta.from);
        let from = match (view.changed_since_persist.take(), written_from) {
            _ if self.full_properties => 0,
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        let k = (from.saturating_sub(snap.0 + 1) as usize).min(view.log.len());
        let same = (d.term, d.vote, d.snap)
            == (s.current_term as u64, s.voted_for.map(u64::from), view.snap)
            && d.log.len() == view.log.len()
            && d.log[k.min(d.log.len())..] == view.log[k..];
        if !same {
            return Err(Failure {
                reason: format!("node {node} persisted a state other than its own"),
                diff: vec![format!(
                    "persisted term {} vote {:?} snapshot {:?} and {} entries; the node has term {} vote {:?} snapshot {:?} and {} entries",
                    d.term,
                    d.vote,
                    d.snap,
                    d.log.len(),
                    s.current_term,
                    s.voted_for,
                    view.snap,
                    view.log.len()
                )],
            });
        }
        Ok(())
    }

    fn send(&mut self, id: MsgId) -> Result<(), Failure> {
        let Some(t) = self.msgs.get(&id) else {
            return fail(format!("sent message {id}, which no step produced"));
        };
        if t.sent {
            return fail(format!("message {id} was sent twice"));
        }
        let dep = t.dep;
        let durable = &self.nodes[id.from as usize].durable;
        let holds = durable.term > dep.term
            || (durable.term == dep.term
                && dep.vote.is_none_or(|v| durable.vote == v)
                && dep.entry.is_none_or(|(index, term)| {
                    durable.last_index() >= index
                        && durable.term_at(index).is_none_or(|t| t == term)
                }));
        if !holds {
            return Err(Failure {
                reason: format!(
                    "message {id} left node {} before the state it depends on was durable",
                    id.from
                ),
                diff: vec![format!(
                    "needs term {}{}{}; durable term {}, vote {:?}, last index {}",
                    dep.term,
                    dep.vote.map_or(String::new(), |v| format!(", vote {v:?}")),
                    dep.entry
                        .map_or(String::new(), |(i, t)| format!(", entry {i} of term {t}")),
                    durable.term,
                    durable.vote,
                    durable.last_index()
                )],
            });
        }
        let t = self.msgs.get_mut(&id).expect("looked up above");
        t.sent = true;
        t.copies = 1;
        Ok(())
    }

    fn apply(&mut self, node: u64, index: u64, term: u64, item: &Applied) -> Result<(), Failure> {
        self.alive(node)?;
        let s = self.state.server(node as ServerId);
        let view = &self.nodes[node as usize];
        if index > s.commit_index as u64 {
            return fail(format!(
                "node {node} applied index {index} beyond its commit index {}",
                s.commit_index
            ));
        }
        if index == 0 {
            return fail(format!("node {node} applied index 0"));
        }
        let model_entry = s.log.get(index as usize - 1).copied();
        match item {
            Applied::Command(_) | Applied::Config(_) => {
                if index != view.last_applied + 1 {
                    return fail(format!(
                        "node {node} applied index {index} after {}: applies must be once each, in order",
                        view.last_applied
                    ));
                }
                let applied = match item {
                    Applied::Command(digest) => {
                        Entry::client(small(term, "term")?, self.value(*digest))
                    }
                    Applied::Config(conf) => {
                        Entry::configuration(small(term, "term")?, self.config(conf)?)
                    }
                    Applied::Snapshot(_) => unreachable!("matched above"),
                };
                let committed = self
                    .state
                    .committed
                    .get(index as usize - 1)
                    .map(|(e, _)| *e);
                if model_entry != Some(applied) || committed != Some(applied) {
                    return Err(Failure {
                        reason: format!(
                            "node {node} applied at index {index} an entry that is not the committed one"
                        ),
                        diff: vec![format!(
                            "entry {index}: committed {:?}, in the model's log {:?}, applied {:?}",
                            committed, model_entry, applied
                        )],
                    });
                }
            }
            Applied::Snapshot(data) => {
                self.holds_snapshot(node, *data, "applied")?;
                let view = &self.nodes[node as usize];
                if index <= view.last_applied || index != view.snap.0 || term != view.snap.1 {
                    return fail(format!(
                        "node {node} applied a snapshot through {index} (term {term}) after index {}, with its snapshot through {} (term {})",
                        view.last_applied, view.snap.0, view.snap.1
                    ));
                }
            }
        }
        self.nodes[node as usize].last_applied = index;
        self.summary.applies += 1;
        Ok(())
    }
}

/// Removes from a log after a snapshot the first `count` entries, which a newer snapshot now covers (all of
/// them if the log is shorter).
fn drop_snapshotted(log: &mut Vec<Entry>, count: u64) {
    let count = usize::try_from(count).unwrap_or(usize::MAX).min(log.len());
    log.drain(..count);
}

/// A number from the trace as the model's 32-bit type. Numbers from 2^31 on are refused, so that the model's
/// index arithmetic (`match_index + 1`, ...) cannot overflow.
fn small(v: u64, what: &str) -> Result<u32, Failure> {
    match u32::try_from(v) {
        Ok(x) if x < 1 << 31 => Ok(x),
        _ => fail(format!("{what} {v} is too large for the model")),
    }
}
