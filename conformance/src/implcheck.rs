//! The implementation under the model checker: a cluster of real [`raft::Node`]s explored exhaustively by
//! stateright, every step of every node checked against the specification by the trace checker.
//!
//! A state is the nodes (each with what it made durable and what it applied), the messages in flight, the
//! budgets spent, and the trace checker's replay of the run that led there. The actions are the
//! environment's choices only: deliver, drop or duplicate a message, fire a node's election timer or a
//! leader's heartbeat (driven tick by tick to its next firing), crash a node and restart it from what it
//! made durable, hand a leader a command, have the service snapshot what it applied. Everything a node
//! decides comes from its own code. Each transition's events (the node's steps through its observer, the
//! host's through [`Event`]s) go to the checker: the step must be an enabled spec action whose successor
//! projects onto the node's state, and the model's properties must hold.
//!
//! States are told apart by what matters to Raft: the spec state the run stands for (terms, votes, roles,
//! logs, commit, next and match indexes, messages in flight by content, the history) under the model's
//! symmetry reduction, plus what the spec does not see (each node's applied index, replication modes, and
//! what it made durable: after a crash that is all that remains).
//! Timer counters, message sequence numbers and random seeds are left out; see conformance/README.md for what that
//! can hide.

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use model::coverage::Coverage;
use raft::{Config, Envelope, Node, Observer, Output, PersistentState, Role, Step};
use stateright::{Model, Property};

pub use crate::schedule::HostBug;
use crate::schedule::{last_applied, Durable};
use crate::trace::checker::Checker;
use crate::trace::format::{Event, Features, MsgId, Record, Trace};
use crate::trace::recorder::{output_events, step_event};

/// The limits of the exploration. They bound which actions are offered, never what a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Servers, 2 to 5.
    pub servers: u8,
    /// No node's election timer fires once its term has reached this.
    pub max_term: u64,
    /// No leader is handed a command once its log has this many entries.
    pub max_log: u64,
    /// Crash-and-restarts, in total.
    pub max_crashes: u8,
    /// A timer, a command or a duplication is offered only while the messages in flight leave room for what
    /// it sends (servers - 1 messages; one for a duplicate). Deliveries are always offered: what a node sends
    /// in answer is its own decision.
    pub max_inflight: u8,
    /// Messages lost, in total.
    pub max_drops: u8,
    /// Messages duplicated, in total.
    pub max_dups: u8,
    /// Whether the service snapshots (once per node, at what it applied).
    pub snapshots: bool,
    /// Reads (ReadIndex) hosts begin at leaders, in total.
    pub max_reads: u8,
    /// Whether the nodes run with PreVote (`raft::Config::pre_vote`); the spec does too.
    pub pre_vote: bool,
    /// Whether the nodes run with CheckQuorum and the leader lease (`raft::Config::check_quorum`); the spec
    /// does too. Their leaders then alternate heartbeats and quorum checks (see `ImplModel::config`).
    pub check_quorum: bool,
    /// Leadership transfers hosts ask leaders for (`Node::transfer_leader`), in total.
    pub max_transfers: u8,
    /// Servers `0..voters` make the first configuration; the others start with none, to be added (0: every
    /// server votes).
    pub voters: u8,
    /// Configuration changes leaders append (`Node::propose_conf_change`), in total.
    pub max_changes: u8,
}

/// A named set of bounds.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// What `--preset` takes.
    pub name: &'static str,
    /// Its bounds.
    pub bounds: Bounds,
}

/// The presets `implcheck check --preset` knows (and [`OVERLAP`], [`INSTALL`] and [`CONFLICT`], which take
/// minutes).
pub const PRESETS: [Preset; 9] = [
    Preset {
        name: "small",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 1,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 1,
            max_dups: 1,
            snapshots: false,
            max_reads: 0,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    Preset {
        name: "default",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 2,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 1,
            max_dups: 1,
            snapshots: true,
            max_reads: 0,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // Five servers: a majority is three, so the core's quorum arithmetic decides (a vote counted that does
    // not elect, a commit that waits for a third replica); room for one election at a time and a message
    // more, so a candidate's requests and the replies of an earlier one overlap.
    Preset {
        name: "five",
        bounds: Bounds {
            servers: 5,
            max_term: 2,
            max_log: 1,
            max_crashes: 0,
            max_inflight: 5,
            max_drops: 0,
            max_dups: 0,
            snapshots: false,
            max_reads: 0,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // Snapshots, one crash and room for an election while a snapshot or its reply is in flight: a
    // leader that crashed and won the next term meets a follower's reply to the snapshot it sent in
    // the term before (the model's search of the same name reaches the spec's side of it).
    Preset {
        name: "snapshot-overlap",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 1,
            max_crashes: 1,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            snapshots: true,
            max_reads: 0,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // Reads: two of them, room for an election while a leader's round of AppendEntries (or its replies) is
    // in flight, logs of two: a leader deposed while it reads, a new leader that has not yet committed in its
    // term, and a reply to an older round that reaches a leader after a read began.
    Preset {
        name: "reads",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 2,
            max_crashes: 0,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            snapshots: false,
            max_reads: 2,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // Reads across three terms, with room for one election at a time: a leader deposed and elected again,
    // which must not count the acknowledgements of its earlier leadership for the rounds it opens anew.
    Preset {
        name: "reads-terms",
        bounds: Bounds {
            servers: 3,
            max_term: 3,
            max_log: 2,
            max_crashes: 0,
            max_inflight: 2,
            max_drops: 0,
            max_dups: 0,
            snapshots: false,
            max_reads: 2,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // PreVote, with logs of two, three terms and room for a pre-vote beside an election: pre-votes
    // granted, refused for their term and for each part of the up-to-date check, arriving after their
    // pre-candidate stepped down, and won.
    Preset {
        name: "pre-vote",
        bounds: Bounds {
            servers: 3,
            max_term: 3,
            max_log: 2,
            max_crashes: 0,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            snapshots: false,
            max_reads: 0,
            pre_vote: true,
            check_quorum: false,
            max_transfers: 0,
            voters: 0,
            max_changes: 0,
        },
    },
    // CheckQuorum with PreVote, as etcd runs them, three terms, a loss and one leadership transfer: leaders
    // that keep leading or step down at their quorum checks, vote requests that servers in their lease
    // ignore and the transfer's that they answer, a TimeoutNow sent at once or once its target caught up,
    // and one that arrives too late to start anything; a crash, so that a restarted node (no lease, no
    // transfer under way) meets all of it. Two servers: with three, the same bounds without the crash take
    // 5.6 million states (45 s) and show no CheckQuorum, lease or transfer branch or condition more.
    Preset {
        name: "check-quorum",
        bounds: Bounds {
            servers: 2,
            max_term: 3,
            max_log: 1,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 1,
            max_dups: 0,
            snapshots: false,
            max_reads: 0,
            pre_vote: true,
            check_quorum: true,
            max_transfers: 1,
            voters: 0,
            max_changes: 0,
        },
    },
    // Membership changes: two voters and a third server waiting to be added, two changes (single-server
    // ones, or into and out of a joint configuration), three terms and one crash: a change before the
    // leader committed in its term, a second one before the first committed, a learner that could vote, a
    // leader that removes itself, a configuration entry overwritten, and a restarted node that reloads its
    // configuration.
    Preset {
        name: "membership",
        bounds: Bounds {
            servers: 3,
            max_term: 3,
            max_log: 3,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 0,
            max_dups: 0,
            snapshots: false,
            max_reads: 0,
            pre_vote: false,
            check_quorum: false,
            max_transfers: 0,
            voters: 2,
            max_changes: 2,
        },
    },
];

/// A preset for bugs that need overlapping elections and three terms: room for an election while
/// older votes and AppendEntries are in flight, one loss (not exhausted in CI; see conformance/README.md).
pub const OVERLAP: Preset = Preset {
    name: "overlap",
    bounds: Bounds {
        servers: 3,
        max_term: 3,
        max_log: 1,
        max_crashes: 0,
        max_inflight: 4,
        max_drops: 1,
        max_dups: 0,
        snapshots: false,
        max_reads: 0,
        pre_vote: false,
        check_quorum: false,
        max_transfers: 0,
        voters: 0,
        max_changes: 0,
    },
};

/// A preset for the race between a leader's InstallSnapshot and its own earlier AppendEntries: one
/// term, logs of two, room for four messages, one loss, snapshots. A leader probing a follower resends
/// everything from `next_index` on its heartbeat, commits the first entry with the third node, snapshots it,
/// and on the next heartbeat sends the snapshot; the follower receives the older AppendEntries with both
/// entries first (and a commit index below the snapshot), then the snapshot, which matches its log and must
/// keep the entry after it. Only there does a follower hold entries past a snapshot it installs (not
/// exhausted in CI: 12.9 million states; see conformance/README.md).
pub const INSTALL: Preset = Preset {
    name: "install",
    bounds: Bounds {
        servers: 3,
        max_term: 1,
        max_log: 2,
        max_crashes: 0,
        max_inflight: 4,
        max_drops: 1,
        max_dups: 0,
        snapshots: true,
        max_reads: 0,
        pre_vote: false,
        check_quorum: false,
        max_transfers: 0,
        voters: 0,
        max_changes: 0,
    },
};

/// A preset for a follower that holds entries of an older term past the snapshot it is sent: two
/// terms, logs of two, room for three messages, two losses, snapshots. The leader of the first term loses its
/// first heartbeats and appends two entries, which reach no one in its term; the leader of the second is
/// elected without them, commits its own first entry with the third node, snapshots it, and sends the
/// snapshot to the old leader, whose log goes past the snapshot but disagrees with it at its last index: the
/// whole log must go. It is the only preset that shows the term check of that decision (not exhausted in CI:
/// 12.8 million states; see conformance/README.md).
pub const CONFLICT: Preset = Preset {
    name: "conflict",
    bounds: Bounds {
        servers: 3,
        max_term: 2,
        max_log: 2,
        max_crashes: 0,
        max_inflight: 3,
        max_drops: 2,
        max_dups: 0,
        snapshots: true,
        max_reads: 0,
        pre_vote: false,
        check_quorum: false,
        max_transfers: 0,
        voters: 0,
        max_changes: 0,
    },
};

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<Preset> {
    PRESETS
        .iter()
        .copied()
        .chain([OVERLAP, INSTALL, CONFLICT])
        .find(|p| p.name == name)
}

/// The timing of the explored nodes. Timers are driven to their next firing, so the values only decide how
/// many ticks that takes; batches of one entry make a leader's batching visible at small logs. A snapshot
/// unanswered is sent again on the second heartbeat after it, so that both the heartbeat that replaces it
/// and the resend are explored. PreVote as the bounds say (`Bounds::pre_vote`; off here); no CheckQuorum.
pub fn explore_config() -> Config {
    Config {
        election_ticks_min: 3,
        election_ticks_max: 6,
        heartbeat_ticks: 1,
        max_entries_per_message: 1,
        max_bytes_per_message: usize::MAX,
        max_inflight_messages: usize::MAX,
        snapshot_resend_ticks: 2,
        pre_vote: false,
        check_quorum: false,
        check_quorum_ticks: 3,
    }
}

/// One choice of the environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The message's addressee handles one copy of it.
    Deliver(MsgId),
    /// The network loses one copy.
    Drop(MsgId),
    /// The network copies it.
    Duplicate(MsgId),
    /// Tick a follower or candidate until its election timer fires.
    Timeout(u64),
    /// Tick a leader until its heartbeat fires (or, with CheckQuorum, its quorum check).
    Heartbeat(u64),
    /// A host asks a leader to hand over to another node.
    Transfer(u64, u64),
    /// A host asks a leader for the configuration change at this position of
    /// [`conf_changes`](crate::schedule::conf_changes).
    ChangeConfig(u64, u8),
    /// Hand a leader a client command.
    Propose(u64),
    /// A client asks a leader for a read (ReadIndex).
    Read(u64),
    /// Crash a node and restart it from its durable state.
    Crash(u64),
    /// The service snapshots a node at the index it applied.
    Snapshot(u64),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Deliver(id) => write!(f, "deliver {id}"),
            Action::Drop(id) => write!(f, "drop {id}"),
            Action::Duplicate(id) => write!(f, "duplicate {id}"),
            Action::Timeout(i) => write!(f, "S{i}'s election timer fires"),
            Action::Heartbeat(i) => write!(f, "S{i}'s heartbeat fires"),
            Action::Transfer(i, j) => write!(f, "S{i} is asked to hand over to S{j}"),
            Action::ChangeConfig(i, k) => write!(f, "S{i} is asked for configuration change {k}"),
            Action::Propose(i) => write!(f, "S{i} is handed a command"),
            Action::Read(i) => write!(f, "S{i} is asked for a read"),
            Action::Crash(i) => write!(f, "S{i} crashes and restarts"),
            Action::Snapshot(i) => write!(f, "S{i}'s service snapshots"),
        }
    }
}

/// The first way a run left the specification.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    /// The model property that broke, or [`REFINEMENT`] when a step is not a spec step at all.
    pub property: &'static str,
    /// The checker's reason and its field-by-field differences.
    pub reason: String,
}

/// The name of the property "every step of the implementation is a step of the specification".
pub const REFINEMENT: &str = "the implementation refines the spec";

/// One node and what its host keeps for it.
#[derive(Clone)]
struct Slot {
    node: Node,
    /// What the node made durable: state and snapshot.
    durable: Durable,
    /// The last index handed to the service.
    applied: u64,
    /// The service has taken its one snapshot.
    snapshotted: bool,
}

/// A state of the explored cluster.
#[derive(Clone)]
pub struct State {
    /// Shared between states until a transition changes the node (most change one node).
    slots: Vec<Arc<Slot>>,
    /// Messages in flight, each distinct one with its copies, in the order they were first sent.
    net: Vec<(Envelope, u8)>,
    crashes: u8,
    drops: u8,
    dups: u8,
    reads: u8,
    transfers: u8,
    changes: u8,
    checker: Checker,
    violation: Option<Violation>,
}

impl State {
    /// The spec state this run stands for.
    pub fn spec(&self) -> model::State {
        self.checker.spec_state()
    }

    /// How the run left the specification, if it did.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Messages in flight, copies included (dead ones too: the nodes' network carries them).
    pub fn in_flight(&self) -> usize {
        self.net.iter().map(|(_, c)| *c as usize).sum()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&model::display::state(&self.spec()))?;
        if let Some(v) = &self.violation {
            write!(f, "\nviolation: {}: {}", v.property, v.reason)?;
        }
        Ok(())
    }
}

/// What tells states apart: the canonical spec state and, renamed the same way, what the spec does not see
/// of each node (applied index, whether the service snapshotted, replication modes and the peers a snapshot
/// is on its way to, as bitsets of peers, and what it made durable). The ticks left before a snapshot is
/// resent are a timer, left out.
#[derive(Hash, PartialEq, Eq)]
struct Key {
    spec: model::State,
    nodes: Vec<NodeKey>,
    violation: Option<Violation>,
}

/// One node's part of a [`Key`], beyond the spec state.
#[derive(Hash, PartialEq, Eq)]
struct NodeKey {
    applied: u64,
    snapshotted: bool,
    /// Peers it replicates to in replicate mode (a bitset of renamed peers).
    modes: u8,
    /// Peers a snapshot of it is on its way to (a bitset of renamed peers).
    snapshots: u8,
    /// What it made durable, the vote renamed (`None`: nothing yet). The spec state holds the node's current
    /// state, which a correct host has always made durable; a host that saves something else is caught at
    /// its save (its `Persist` reports what it kept), and a crash would restart the node from it.
    durable: Option<PersistentState>,
    /// The snapshot saved with it.
    snapshot: Option<Vec<u8>>,
}

impl State {
    fn key(&self) -> Key {
        let mut spec = self.spec();
        let order = spec.canonicalize();
        let n = self.slots.len();
        // order[new] = old; rename[old] = new.
        let mut rename = [0usize; model::state::MAX_SERVERS];
        for (k, r) in rename.iter_mut().enumerate().take(n) {
            *r = k;
        }
        if let Some(o) = order {
            for (new, &old) in o.iter().enumerate().take(n) {
                rename[old as usize] = new;
            }
        }
        let nodes = (0..n)
            .map(|new| {
                let slot = &self.slots[order.map_or(new, |o| o[new] as usize)];
                let peers = |f: &dyn Fn(u64) -> bool| {
                    (0..n as u64)
                        .filter(|&p| f(p))
                        .fold(0u8, |m, p| m | 1 << rename[p as usize])
                };
                let mut durable = slot.durable.state.clone();
                if let Some(d) = &mut durable {
                    d.voted_for = d.voted_for.map(|v| rename[v as usize] as u64);
                }
                NodeKey {
                    applied: slot.applied,
                    snapshotted: slot.snapshotted,
                    modes: peers(&|p| slot.node.replicating(p) == Some(true)),
                    snapshots: peers(&|p| slot.node.snapshot_in_flight(p) == Some(true)),
                    durable,
                    snapshot: slot.durable.snapshot.clone(),
                }
            })
            .collect();
        Key {
            spec,
            nodes,
            violation: self.violation.clone(),
        }
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.key() == other.key()
    }
}

impl Eq for State {}

thread_local! {
    /// The events of the transition being computed on this thread.
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

/// The observer of every explored node: it hands the node's steps to the transition being computed on the
/// calling thread (nodes are cloned across states, and states across threads).
struct Collect;

impl Observer for Collect {
    fn step(&self, node: &Node, step: &Step<'_>) {
        record(step_event(node, step));
    }

    fn released(&self, node: u64, output: &Output<'_>) {
        EVENTS.with(|e| output_events(node, output, |ev| e.borrow_mut().push(ev)));
    }
}

fn record(ev: Event) {
    EVENTS.with(|e| e.borrow_mut().push(ev));
}

fn take_events() -> Vec<Event> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

/// The implementation as a stateright model.
#[derive(Clone)]
pub struct ImplModel {
    /// The bounds of the exploration.
    pub bounds: Bounds,
    /// A broken host, to show that the check bites.
    pub host_bug: Option<HostBug>,
    /// Where to count the spec branches that the implementation's steps execute.
    pub coverage: Option<Arc<Coverage>>,
}

impl ImplModel {
    /// The cluster within `bounds`, with a correct host.
    pub fn new(bounds: Bounds) -> ImplModel {
        ImplModel {
            bounds,
            host_bug: None,
            coverage: None,
        }
    }

    fn n(&self) -> usize {
        self.bounds.servers as usize
    }

    /// The nodes' configuration: [`explore_config`], with PreVote and CheckQuorum as the bounds say. With
    /// CheckQuorum, heartbeats every other tick: a leader's timers then fire in turn, a heartbeat, a quorum
    /// check, a heartbeat, a check and heartbeat together, and so on; with heartbeats on every tick each
    /// check would come with one.
    fn config(&self) -> Config {
        let b = &self.bounds;
        Config {
            pre_vote: b.pre_vote,
            check_quorum: b.check_quorum,
            heartbeat_ticks: if b.check_quorum { 2 } else { 1 },
            ..explore_config()
        }
    }

    /// The servers of the first configuration.
    fn voters(&self) -> u64 {
        match self.bounds.voters {
            0 => self.n() as u64,
            v => u64::from(v).min(self.n() as u64),
        }
    }

    /// The peers node `i` starts with: the first configuration, or none for a server to be added.
    fn peers(&self, i: u64) -> Vec<u64> {
        if i < self.voters() {
            (0..self.voters()).collect()
        } else {
            Vec::new()
        }
    }

    fn new_node(&self, i: u64, durable: Durable) -> Node {
        let mut node = Node::new(
            i,
            &self.peers(i),
            self.config(),
            durable.state,
            durable.snapshot,
            1,
        )
        .expect("the host saved a valid state");
        node.set_observer(Arc::new(Collect));
        node
    }

    /// The initial state, and the events that led to it.
    fn init(&self) -> (State, Vec<Event>) {
        take_events();
        let mut checker = Checker::new(self.n()).expect("the bounds allow 2 to 5 servers");
        let voters = self.voters();
        checker = checker.with_features(Features {
            voters: if voters < self.n() as u64 { voters } else { 0 },
            ..Features::of(&self.config())
        });
        if let Some(c) = &self.coverage {
            checker = checker.with_coverage(c.clone());
        }
        let mut state = State {
            slots: (0..self.n() as u64)
                .map(|i| {
                    Arc::new(Slot {
                        node: self.new_node(i, Durable::default()),
                        durable: Durable::default(),
                        applied: 0,
                        snapshotted: false,
                    })
                })
                .collect(),
            net: Vec::new(),
            crashes: 0,
            drops: 0,
            dups: 0,
            reads: 0,
            transfers: 0,
            changes: 0,
            checker,
            violation: None,
        };
        for i in 0..self.n() {
            self.flush(&mut state, i);
        }
        let events = take_events();
        check_events(&mut state, &events);
        (state, events)
    }

    /// Persists what node `i` produced, then releases it: messages into the network, applies to the service.
    fn flush(&self, state: &mut State, i: usize) {
        let slot = Arc::make_mut(&mut state.slots[i]);
        while slot.node.has_ready() {
            let ready = slot.node.ready();
            if let Some(persisted) = slot.durable.save(i as u64, &ready, self.host_bug) {
                record(persisted);
            }
            let released = ready.persisted();
            if let Some(index) = last_applied(&released.applies) {
                slot.applied = index;
            }
            for e in released.messages {
                state.net.push((e, 1));
            }
        }
    }

    fn position(state: &State, id: MsgId) -> Option<usize> {
        state.net.iter().position(|(e, _)| MsgId::of(e) == id)
    }

    /// One copy of message `k` leaves the network.
    fn take_copy(state: &mut State, k: usize) -> Envelope {
        let e = state.net[k].0.clone();
        state.net[k].1 -= 1;
        if state.net[k].1 == 0 {
            state.net.remove(k);
        }
        e
    }

    /// Ticks node `i` until it reports a step (its timer fired).
    fn fire(&self, state: &mut State, i: usize) {
        let before = EVENTS.with(|e| e.borrow().len());
        let node = &mut Arc::make_mut(&mut state.slots[i]).node;
        for _ in 0..1000 {
            node.tick();
            if EVENTS.with(|e| e.borrow().len()) > before {
                break;
            }
        }
        self.flush(state, i);
    }

    /// The state after `action` and the events it produced (`None` if the action is not offered there).
    fn transition(&self, last: &State, action: &Action) -> Option<(State, Vec<Event>)> {
        take_events();
        let mut state = last.clone();
        match *action {
            Action::Deliver(id) => {
                let k = Self::position(&state, id)?;
                let e = Self::take_copy(&mut state, k);
                let to = e.to as usize;
                // A refusal is reported in the trace; the checker judges it.
                let _ = Arc::make_mut(&mut state.slots[to]).node.step(e);
                self.flush(&mut state, to);
            }
            Action::Drop(id) => {
                let k = Self::position(&state, id)?;
                Self::take_copy(&mut state, k);
                state.drops += 1;
                record(Event::Drop { id });
            }
            Action::Duplicate(id) => {
                let k = Self::position(&state, id)?;
                state.net[k].1 += 1;
                state.dups += 1;
                record(Event::Duplicate { id });
            }
            Action::Timeout(i) | Action::Heartbeat(i) => self.fire(&mut state, i as usize),
            Action::Propose(i) => {
                let i = i as usize;
                let _ = Arc::make_mut(&mut state.slots[i]).node.propose(vec![1]);
                self.flush(&mut state, i);
            }
            Action::Transfer(i, j) => {
                let i = i as usize;
                let _ = Arc::make_mut(&mut state.slots[i]).node.transfer_leader(j);
                state.transfers += 1;
                self.flush(&mut state, i);
            }
            Action::ChangeConfig(i, k) => {
                let i = i as usize;
                let node = &mut Arc::make_mut(&mut state.slots[i]).node;
                let changes = crate::schedule::conf_changes(node.membership(), self.n() as u64);
                let change = changes.get(k as usize)?.clone();
                // A refused change spends no budget.
                if node.propose_conf_change(change).is_ok() {
                    state.changes += 1;
                }
                self.flush(&mut state, i);
            }
            Action::Read(i) => {
                let i = i as usize;
                let context = u64::from(state.reads);
                // A refused read (the leader has not committed in its term) spends no budget, as in the spec.
                if Arc::make_mut(&mut state.slots[i])
                    .node
                    .read_index(context)
                    .is_ok()
                {
                    state.reads += 1;
                }
                self.flush(&mut state, i);
            }
            Action::Crash(i) => {
                record(Event::Crash { node: i });
                let k = i as usize;
                let slot = &state.slots[k];
                let next_seq = slot.node.next_seq();
                let mut node = self.new_node(i, slot.durable.clone());
                node.set_next_seq(next_seq);
                let slot = Arc::make_mut(&mut state.slots[k]);
                slot.node = node;
                slot.applied = 0;
                state.crashes += 1;
                self.flush(&mut state, k);
            }
            Action::Snapshot(i) => {
                let slot = Arc::make_mut(&mut state.slots[i as usize]);
                let applied = slot.applied;
                slot.node
                    .snapshot(applied, applied.to_le_bytes().to_vec())
                    .expect("the index was applied");
                slot.snapshotted = true;
                self.flush(&mut state, i as usize);
            }
        }
        let events = take_events();
        check_events(&mut state, &events);
        Some((state, events))
    }

    /// The run of `actions` from the initial state, as a trace (to draw or to check with `tracecheck`).
    pub fn trace_of(&self, actions: &[Action]) -> Trace {
        let mut trace = Trace::new(self.n() as u64, "implcheck");
        let (mut state, events) = self.init();
        let mut push = |t: u64, events: Vec<Event>| {
            for ev in events {
                trace.records.push(Record { t, ev });
            }
        };
        push(0, events);
        for (k, a) in actions.iter().enumerate() {
            let Some((next, events)) = self.transition(&state, a) else {
                break;
            };
            push(1000 * (k as u64 + 1), events);
            state = next;
        }
        trace
    }
}

/// Feeds a transition's events to the state's checker; the first failure becomes the state's violation.
fn check_events(state: &mut State, events: &[Event]) {
    if state.violation.is_some() {
        return;
    }
    for ev in events {
        if let Err(f) = state.checker.event(ev) {
            let property = f.property().unwrap_or(REFINEMENT);
            let mut reason = f.reason.clone();
            for d in &f.diff {
                reason.push_str("\n  ");
                reason.push_str(d);
            }
            state.violation = Some(Violation { property, reason });
            return;
        }
    }
}

impl Model for ImplModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.init().0]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        let b = &self.bounds;
        let n = self.n();
        let room = (b.max_inflight as usize).saturating_sub(state.in_flight());
        for (i, slot) in state.slots.iter().enumerate() {
            let node = &slot.node;
            let i = i as u64;
            match node.role() {
                Role::Leader => {
                    if room >= n - 1 {
                        actions.push(Action::Heartbeat(i));
                        if node.last_index() < b.max_log {
                            actions.push(Action::Propose(i));
                        }
                        if state.reads < b.max_reads {
                            actions.push(Action::Read(i));
                        }
                    }
                    // Every change is offered, whatever the core's own rules say of it: a core that
                    // breaks them is to be caught.
                    if state.changes < b.max_changes && room >= n - 1 {
                        let changes =
                            crate::schedule::conf_changes(node.membership(), n as u64).len();
                        for k in 0..changes {
                            actions.push(Action::ChangeConfig(i, k as u8));
                        }
                    }
                    if state.transfers < b.max_transfers && room >= 1 {
                        for j in (0..n as u64).filter(|&j| j != i) {
                            actions.push(Action::Transfer(i, j));
                        }
                    }
                }
                Role::Follower | Role::Candidate | Role::PreCandidate => {
                    if node.term() < b.max_term && room >= n - 1 {
                        actions.push(Action::Timeout(i));
                    }
                }
            }
            // Any node may crash, unlike in the model, which skips a follower whose commit index is its
            // snapshot index (it loses nothing there). The core's restart reads what the host stored, and
            // only a crash shows whether that is what the node made durable.
            if state.crashes < b.max_crashes {
                actions.push(Action::Crash(i));
            }
            if b.snapshots && !slot.snapshotted && slot.applied > node.last_included_index() {
                actions.push(Action::Snapshot(i));
            }
        }
        for (e, _) in &state.net {
            let id = MsgId::of(e);
            actions.push(Action::Deliver(id));
            if state.drops < b.max_drops {
                actions.push(Action::Drop(id));
            }
            if state.dups < b.max_dups && room >= 1 {
                actions.push(Action::Duplicate(id));
            }
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.transition(state, &action).map(|(s, _)| s)
    }

    fn format_action(&self, action: &Action) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always(REFINEMENT, |_, s: &State| {
            s.violation.is_none()
        })]
    }
}
