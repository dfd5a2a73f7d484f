//! Random schedules: a cluster of real `raft::Node`s driven by an explicit list of environment choices
//! (deliver, drop, duplicate, fire a timer, propose, read, crash, restart, partition, heal, snapshot), recording
//! its trace. The proptest in `tests/conformance_schedules.rs` generates schedules, checks each trace against
//! the model and shrinks a failing schedule to a minimal one.
//!
//! The host can be made faulty on purpose ([`HostBug`]) to show that the checker and the shrinking catch it.

use std::sync::Arc;

use raft::{Apply, ConfChange, Config, Envelope, Membership, Node, PersistentState, Ready};

use crate::trace::format::{Event, Features, MsgId};
use crate::trace::recorder::persist_event;
use crate::trace::{Recorder, Trace};

/// One choice of the environment. Indexes into the network and node numbers are taken modulo the current
/// sizes, so every schedule is valid whatever happened before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Deliver the message at this position of the network (lost if either end is cut off or down).
    Deliver(u8),
    /// Lose it.
    Drop(u8),
    /// Copy it.
    Duplicate(u8),
    /// Tick a node until one of its timers fires (an election timeout, or a leader's heartbeat).
    Fire(u8),
    /// Hand a node a client command.
    Propose(u8, u8),
    /// Crash a node (only its durable state remains).
    Crash(u8),
    /// Restart a crashed node from its durable state.
    Restart(u8),
    /// Cut a node off: messages from or to it are lost when delivered.
    Partition(u8),
    /// Reconnect every node.
    Heal,
    /// Have the service snapshot a node at the last index it applied.
    Snapshot(u8),
    /// Hand the leader (the live node that leads the highest term) a client command, as a client that found
    /// it would; nothing if there is none.
    ProposeToLeader(u8),
    /// Fire the leader's heartbeat.
    FireLeader,
    /// Have the leader's service snapshot at the last index it applied.
    SnapshotLeader,
    /// Ask a node for a read (ReadIndex).
    Read(u8),
    /// Ask the leader for a read; nothing if there is none.
    ReadLeader,
    /// Ask the leader to hand over to this node (`Node::transfer_leader`); nothing if there is none.
    Transfer(u8),
    /// Ask the leader to change the configuration (`Node::propose_conf_change`): the change at this position
    /// of [`conf_changes`]; nothing if there is no leader.
    ChangeConfig(u8),
    /// Hand the leader two client commands at once (`Node::propose_batch`): this one and the next of the
    /// three; nothing if there is no leader.
    ProposeBatchToLeader(u8),
}

/// How random schedules draw their operations: `roll` (below [`ROLLS`]) picks the kind, `k` the node or the
/// message's position, `v` the command (1 to 3). Deliveries dominate, as on a network that mostly works. Some
/// commands, heartbeats and snapshots go to whichever node leads, as clients and services address the
/// leader: drawn only at random nodes, a schedule rarely has a leader commit and compact while one of its
/// followers is behind, and never reaches a follower that keeps entries past an installed snapshot.
pub fn op(roll: u32, k: u8, v: u8) -> Op {
    let v = 1 + v % 3;
    match roll {
        0..12 => Op::Deliver(k),
        12 => Op::Drop(k),
        13 => Op::Duplicate(k),
        14..16 => Op::Fire(k),
        16 => Op::Propose(k, v),
        17 => Op::Crash(k),
        18 => Op::Restart(k),
        19 => Op::Partition(k),
        20 => Op::Heal,
        21 => Op::Snapshot(k),
        22..24 => Op::ProposeToLeader(v),
        24..26 => Op::FireLeader,
        26 => Op::SnapshotLeader,
        27 => Op::Read(k),
        28 => Op::ReadLeader,
        29 => Op::Transfer(k),
        30..34 => Op::ChangeConfig(k),
        _ => Op::ProposeBatchToLeader(v),
    }
}

/// The number of rolls [`op`] tells apart, leadership transfers aside: the schedules of nodes without
/// CheckQuorum draw below it (so that their seeds keep their schedules).
pub const ROLLS: u32 = 29;

/// The number of rolls with leadership transfers, for nodes with CheckQuorum.
pub const ROLLS_WITH_TRANSFER: u32 = 30;

/// The number of rolls with leadership transfers and configuration changes (four rolls of 34: a change
/// needs a leader that has committed in its term, and its previous change committed).
pub const ROLLS_WITH_CHANGES: u32 = 34;

/// The number of rolls with batches of proposals as well (one roll of 35).
pub const ROLLS_WITH_BATCHES: u32 = 35;

/// The changes a leader whose configuration is `m` may make, one step each, among servers `0..servers`: out
/// of a joint configuration; else add a server outside as a voter or a learner, promote or remove a learner,
/// remove a voter (not the last), or replace a voter by a server outside through a joint configuration.
pub fn conf_changes(m: &Membership, servers: u64) -> Vec<ConfChange> {
    if m.is_joint() {
        return vec![ConfChange::LeaveJoint];
    }
    let outside: Vec<u64> = (0..servers).filter(|&s| !m.is_member(s)).collect();
    let mut changes = Vec::new();
    for &s in &outside {
        changes.push(ConfChange::AddVoter(s));
        changes.push(ConfChange::AddLearner(s));
    }
    for &l in &m.learners {
        changes.push(ConfChange::Promote(l));
        changes.push(ConfChange::Remove(l));
    }
    if m.voters.len() > 1 {
        changes.extend(m.voters.iter().map(|&v| ConfChange::Remove(v)));
    }
    for &v in &m.voters {
        for &s in &outside {
            let mut voters = m.voters.clone();
            voters.remove(&v);
            voters.insert(s);
            changes.push(ConfChange::EnterJoint {
                voters,
                learners: m.learners.clone(),
            });
        }
    }
    changes
}

/// A random schedule of 1 to `max_len - 1` operations, drawn as [`op`] says from rolls below `rolls`
/// ([`ROLLS`] or [`ROLLS_WITH_TRANSFER`]).
pub fn random(rng: &mut impl rand::Rng, max_len: usize, rolls: u32) -> Vec<Op> {
    let len = rng.random_range(1..max_len);
    (0..len)
        .map(|_| op(rng.random_range(0..rolls), rng.random(), rng.random()))
        .collect()
}

/// A deliberately broken host, to show that the checker bites on host bugs too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostBug {
    /// The host saves the state without `voted_for` (the audit's "vote not durable").
    ForgetVoteOnSave,
    /// The host saves the state but keeps the previous snapshot file.
    KeepOldSnapshot,
    /// The host hands the core another command than its client asked for (as a core that logs something
    /// else than it was given would look from outside).
    ProposeOther,
    /// The host hands the core a batch of commands in another order than its clients asked for them.
    BatchReordered,
}

/// What a host keeps of one server across crashes: its durable state and the snapshot saved with it.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// The state last persisted (`None` before the first).
    pub state: Option<PersistentState>,
    /// The snapshot saved with it.
    pub snapshot: Option<Vec<u8>>,
}

impl Durable {
    /// Makes what `ready` asks to persist durable, as a host with `bug` (if any) does, and returns the
    /// `Persist` event of node `node` that reports what it now holds (`None` if `ready` asked for nothing):
    /// the state, the entries from where the core said its log changed, and the snapshot if it wrote one.
    pub fn save(&mut self, node: u64, ready: &Ready, bug: Option<HostBug>) -> Option<Event> {
        let state = ready.persist()?;
        let mut state = state.clone();
        if bug == Some(HostBug::ForgetVoteOnSave) {
            state.voted_for = None;
        }
        self.state = Some(state);
        let keep_old = bug == Some(HostBug::KeepOldSnapshot) && self.snapshot.is_some();
        if let (Some(s), false) = (ready.snapshot(), keep_old) {
            self.snapshot = Some(s.to_vec());
        }
        let saved = self.state.as_ref().expect("saved above");
        let snapshot = self
            .snapshot
            .as_deref()
            .filter(|_| ready.snapshot().is_some());
        Some(persist_event(
            node,
            saved,
            snapshot,
            ready.log_changed_from(),
        ))
    }
}

/// The index of the last entry or snapshot in `applies`, if any.
pub fn last_applied(applies: &[Apply]) -> Option<u64> {
    applies.last().map(|a| match a {
        Apply::Command { index, .. }
        | Apply::Config { index, .. }
        | Apply::Snapshot { index, .. } => *index,
    })
}

/// The timing used by schedules: short timeouts so that a `Fire` takes few ticks, batches of two entries so
/// that batching is exercised, and an unanswered snapshot sent again on the second heartbeat after it (the
/// first sends a heartbeat instead). Without PreVote and CheckQuorum: the schedules' coverage and seeds stay
/// those of the paper's election ([`run_schedule_with`] runs them with the extensions).
pub fn schedule_config() -> Config {
    Config {
        election_ticks_min: 3,
        election_ticks_max: 6,
        heartbeat_ticks: 1,
        max_entries_per_message: 2,
        max_bytes_per_message: usize::MAX,
        max_inflight_messages: 2,
        snapshot_resend_ticks: 2,
        pre_vote: false,
        check_quorum: false,
        check_quorum_ticks: 3,
    }
}

/// A cluster under a schedule.
pub struct Cluster {
    nodes: Vec<Option<Node>>,
    /// What each server made durable: state and snapshot.
    durable: Vec<Durable>,
    /// Messages in flight, in the order they were sent.
    net: Vec<Envelope>,
    isolated: Vec<bool>,
    applied: Vec<u64>,
    next_seq: Vec<u64>,
    incarnations: u64,
    recorder: Arc<Recorder>,
    bug: Option<HostBug>,
    time: u64,
    /// Reads asked for so far (each read's context is its number).
    reads: u64,
    /// The nodes' configuration.
    config: Config,
    /// Servers `0..voters` make the first configuration; the others start with none, to be added.
    voters: usize,
}

impl Cluster {
    /// `n` servers, started and connected.
    pub fn new(n: usize, bug: Option<HostBug>) -> Cluster {
        Cluster::with_config(n, bug, schedule_config())
    }

    /// `n` servers with `config`, started and connected.
    pub fn with_config(n: usize, bug: Option<HostBug>, config: Config) -> Cluster {
        Cluster::with_voters(n, n, bug, config)
    }

    /// `n` servers with `config`, of which `0..voters` make the first configuration and the others start
    /// with none, waiting to be added.
    pub fn with_voters(n: usize, voters: usize, bug: Option<HostBug>, config: Config) -> Cluster {
        let recorder = Recorder::new(n as u64, "random schedule");
        recorder.set_features(Features {
            voters: if voters < n { voters as u64 } else { 0 },
            ..Features::of(&config)
        });
        let mut c = Cluster {
            nodes: (0..n).map(|_| None).collect(),
            durable: vec![Durable::default(); n],
            net: Vec::new(),
            isolated: vec![false; n],
            applied: vec![0; n],
            next_seq: vec![0; n],
            incarnations: 0,
            recorder,
            bug,
            time: 0,
            reads: 0,
            config,
            voters,
        };
        for i in 0..n {
            c.start(i);
        }
        c
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn start(&mut self, i: usize) {
        let peers: Vec<u64> = if i < self.voters {
            (0..self.voters as u64).collect()
        } else {
            Vec::new()
        };
        let Durable { state, snapshot } = self.durable[i].clone();
        self.incarnations += 1;
        let mut node = Node::new(
            i as u64,
            &peers,
            self.config.clone(),
            state,
            snapshot,
            self.incarnations,
        )
        .expect("the host saved a valid state");
        node.set_next_seq(self.next_seq[i]);
        self.recorder.attach(&mut node);
        self.nodes[i] = Some(node);
        self.applied[i] = 0;
        self.release(i);
    }

    /// Persists, then releases what node `i` produced.
    fn release(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let ready = node.ready();
        if let Some(persisted) = self.durable[i].save(i as u64, &ready, self.bug) {
            self.recorder.record(persisted);
        }
        let released = ready.persisted();
        if let Some(index) = last_applied(&released.applies) {
            self.applied[i] = index;
        }
        self.net.extend(released.messages);
    }

    fn tick_time(&mut self) {
        self.time += 1000;
        self.recorder.set_time(self.time);
    }

    /// The live node that leads the highest term, if any.
    fn leader(&self) -> Option<u8> {
        let leaders = self.nodes.iter().enumerate().filter_map(|(i, node)| {
            node.as_ref()
                .filter(|node| node.is_leader())
                .map(|node| (node.term(), i))
        });
        leaders.max().map(|(_, i)| i as u8)
    }

    /// Runs one operation.
    pub fn run(&mut self, op: Op) {
        self.tick_time();
        let n = self.n();
        match op {
            Op::ProposeToLeader(v) => {
                if let Some(i) = self.leader() {
                    self.run(Op::Propose(i, v));
                }
            }
            Op::ProposeBatchToLeader(v) => {
                if let Some(i) = self.leader() {
                    let i = i as usize;
                    let asked = [v, 1 + v % 3];
                    for c in asked {
                        self.recorder.proposing(&[c]);
                    }
                    let mut given: Vec<Vec<u8>> = asked.iter().map(|&c| vec![c]).collect();
                    if self.bug == Some(HostBug::BatchReordered) {
                        given.reverse();
                    }
                    let node = self.nodes[i].as_mut().expect("the leader is live");
                    let _ = node.propose_batch(given);
                    self.release(i);
                }
            }
            Op::FireLeader => {
                if let Some(i) = self.leader() {
                    self.run(Op::Fire(i));
                }
            }
            Op::SnapshotLeader => {
                if let Some(i) = self.leader() {
                    self.run(Op::Snapshot(i));
                }
            }
            Op::ReadLeader => {
                if let Some(i) = self.leader() {
                    self.run(Op::Read(i));
                }
            }
            Op::Transfer(target) => {
                if let Some(i) = self.leader() {
                    let node = self.nodes[i as usize].as_mut().expect("a live leader");
                    let _ = node.transfer_leader((target as usize % n) as u64);
                    self.release(i as usize);
                }
            }
            Op::ChangeConfig(k) => {
                if let Some(i) = self.leader() {
                    let node = self.nodes[i as usize].as_mut().expect("a live leader");
                    let changes = conf_changes(node.membership(), n as u64);
                    if !changes.is_empty() {
                        let change = changes[k as usize % changes.len()].clone();
                        let _ = node.propose_conf_change(change);
                        self.release(i as usize);
                    }
                }
            }
            Op::Read(i) => {
                let i = i as usize % n;
                if let Some(node) = self.nodes[i].as_mut() {
                    self.reads += 1;
                    let _ = node.read_index(self.reads);
                    self.release(i);
                }
            }
            // Nothing in flight: nothing to deliver, lose or copy.
            Op::Deliver(_) | Op::Drop(_) | Op::Duplicate(_) if self.net.is_empty() => {}
            Op::Deliver(k) => {
                let e = self.net.remove(k as usize % self.net.len());
                let (from, to) = (e.from as usize, e.to as usize);
                if self.isolated[from] || self.isolated[to] || self.nodes[to].is_none() {
                    self.recorder.record(Event::Drop { id: MsgId::of(&e) });
                } else {
                    let node = self.nodes[to].as_mut().expect("checked");
                    // A refusal is in the trace (the checker reports it); the host goes on.
                    let _ = node.step(e);
                    self.release(to);
                }
            }
            Op::Drop(k) => {
                let e = self.net.remove(k as usize % self.net.len());
                self.recorder.record(Event::Drop { id: MsgId::of(&e) });
            }
            Op::Duplicate(k) => {
                let e = self.net[k as usize % self.net.len()].clone();
                self.recorder.record(Event::Duplicate { id: MsgId::of(&e) });
                self.net.push(e);
            }
            Op::Fire(i) => {
                let i = i as usize % n;
                if let Some(node) = self.nodes[i].as_mut() {
                    let before = self.recorder.len();
                    for _ in 0..20 {
                        node.tick();
                        if self.recorder.len() > before {
                            break;
                        }
                    }
                    self.release(i);
                }
            }
            Op::Propose(i, v) => {
                let i = i as usize % n;
                if let Some(node) = self.nodes[i].as_mut() {
                    self.recorder.proposing(&[v]);
                    let given = if self.bug == Some(HostBug::ProposeOther) {
                        v.wrapping_add(100)
                    } else {
                        v
                    };
                    let _ = node.propose(vec![given]);
                    self.release(i);
                }
            }
            Op::Crash(i) => {
                let i = i as usize % n;
                if let Some(node) = self.nodes[i].take() {
                    self.next_seq[i] = node.next_seq();
                    self.recorder.record(Event::Crash { node: i as u64 });
                }
            }
            Op::Restart(i) => {
                let i = i as usize % n;
                if self.nodes[i].is_none() {
                    self.start(i);
                }
            }
            Op::Partition(i) => {
                let i = i as usize % n;
                self.isolated[i] = true;
                self.recorder.record(Event::Disconnect { node: i as u64 });
            }
            Op::Heal => {
                for i in 0..n {
                    if std::mem::take(&mut self.isolated[i]) {
                        self.recorder.record(Event::Connect { node: i as u64 });
                    }
                }
            }
            Op::Snapshot(i) => {
                let i = i as usize % n;
                let applied = self.applied[i];
                if let Some(node) = self.nodes[i].as_mut() {
                    if applied > node.last_included_index() {
                        node.snapshot(applied, applied.to_le_bytes().to_vec())
                            .expect("the index was applied");
                        self.release(i);
                    }
                }
            }
        }
    }

    /// The trace so far.
    pub fn trace(&self) -> Trace {
        self.recorder.trace()
    }
}

/// Runs `ops` on a fresh cluster of `n` servers and returns its trace.
pub fn run_schedule(n: usize, ops: &[Op], bug: Option<HostBug>) -> Trace {
    run_schedule_with(n, ops, bug, schedule_config())
}

/// [`run_schedule`] with the nodes configured by `config`.
pub fn run_schedule_with(n: usize, ops: &[Op], bug: Option<HostBug>, config: Config) -> Trace {
    run_schedule_of(n, n, ops, bug, config)
}

/// [`run_schedule_with`] where only servers `0..voters` make the first configuration.
pub fn run_schedule_of(
    n: usize,
    voters: usize,
    ops: &[Op],
    bug: Option<HostBug>,
    config: Config,
) -> Trace {
    let mut c = Cluster::with_voters(n, voters, bug, config);
    for op in ops {
        c.run(*op);
    }
    c.trace()
}
