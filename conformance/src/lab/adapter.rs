//! The adapter that gives the sans-IO `raft` core the tester's interface: Make, Start, GetState,
//! Kill, RPC handlers invoked through labrpc, the apply channel, and (for the Lab 3 service) reads.
//!
//! Each server instance is a [`raft::Node`] driven by the simulator: ticked every
//! [`TICK`] of virtual time, stepped with every request its labrpc server dispatches and with every
//! reply the network delivers to it. After each of those, the adapter takes the node's `Ready`,
//! saves its durable state to the instance's Persister (encoded with the real codec, so
//! RaftStateSize is real) together with its snapshot, in one `Save(raftstate, snapshot)`, and only
//! then releases its messages and applies. A request's reply is returned to the network as the
//! handler's result; other messages become new labrpc calls.
//!
//! The adapter serves two harnesses: the Lab 2 tester (`config.rs`), whose applier checks what
//! Raft applies, and the Lab 3 tester (`kvconfig.rs`), whose key-value servers are the service.
//! A [`Harness`] lends the adapter the cluster's parts (network, instances, ends, recorder) and
//! takes what the instances release: committed commands and snapshots (the applyCh), and reads a
//! majority confirmed. It may also run a loop of its own on each tick, just before the node's tick.
//!
//! Applies go to the harness synchronously (the applyCh is unbuffered and drained at once). The
//! service may ask for `Snapshot(index, bytes)` from inside that delivery; the adapter has already
//! taken the whole batch out of the node and released its borrow, so the call is an ordinary,
//! re-entrant step of the same instance.
//!
//! Recording (when the runner asks for a trace): each instance continues its server's message numbering and
//! reports its steps to the run's recorder; the adapter adds what labrpc does: a failed call is the loss of
//! the request, or of the reply when the handler ran (it remembers which reply each request produced), and a
//! reply that reaches a killed instance is lost too.
//!
//! Kill: the instance is dropped from its slot. Nothing drives it any more, the network's dead
//! check fails its in-flight calls, and replies addressed to it are discarded, because every
//! callback names the instance (its generation) it belongs to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use raft::{
    Apply, ConfChange, ConfChangeRefused, Envelope, Index, Membership, Message, Node, NodeId,
    ReadRefused, ReadState, Released,
};

/// A set of server ids as the codec writes it (a length, then the ids), read past without allocating.
struct Ids;

impl<'de> serde::Deserialize<'de> for Ids {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ids, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Ids;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a set of server ids")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ids, A::Error> {
                while seq.next_element::<u64>()?.is_some() {}
                Ok(Ids)
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// A log entry's payload as the codec writes it, borrowing a command's bytes.
#[derive(serde::Deserialize)]
enum PayloadRef<'a> {
    Command(&'a [u8]),
    Config(Membership),
}

use crate::trace::format::{Conf, Digest, Event, Item, LogDelta, MsgId};
use crate::trace::Recorder;

use super::cmd::Cmd;
use super::config::Inner;
use super::encoder::StateEncoder;
use super::persister::Persister;
use crate::sim::{EndId, Micros, Network, Sim, MS};

/// Virtual time between two ticks of a node (the `raft::Config` timeouts count these).
pub const TICK: Micros = 10 * MS;

/// One running Raft instance in a server slot.
pub(crate) struct Instance {
    pub(crate) node: Node,
    /// Distinguishes this instance from earlier and later ones in the same slot.
    pub(crate) generation: u64,
    /// The persister this instance writes to (the tester may since have replaced its own).
    pub(crate) persister: Persister,
    /// Encodes this instance's durable state for the persister.
    pub(crate) encoder: StateEncoder,
}

/// The parts of a cluster the adapter works with, lent by its [`Harness`].
pub(crate) struct Parts<'a> {
    pub(crate) sim: &'a Sim,
    /// The network the Raft peers talk over.
    pub(crate) net: &'a Network,
    pub(crate) raft_config: &'a raft::Config,
    /// Servers `0..voters` are the first configuration's voters; the others start with none, to join.
    pub(crate) voters: usize,
    /// `rafts[i]`: the running instance of server `i`, `None` when crashed.
    pub(crate) rafts: &'a [RefCell<Option<Instance>>],
    /// `endnames[i][j]`: the end server `i` uses to reach server `j`.
    pub(crate) endnames: &'a RefCell<Vec<Vec<EndId>>>,
    /// Records the run's trace, when the runner asked for one.
    pub(crate) recorder: Option<&'a Arc<Recorder>>,
    /// The message sequence number each server's next instance starts from (ids stay unique across
    /// restarts).
    pub(crate) next_seq: &'a RefCell<Vec<u64>>,
    /// The reply each request produced (`None`: it was handled and produced none), by the request's id,
    /// while its call is in the network (only kept while recording): when the call fails, the trace says
    /// which message was lost.
    pub(crate) replies: &'a RefCell<HashMap<MsgId, Option<MsgId>>>,
    /// `LAB_TRACE=<ms>`: print every RPC and periodic node states from that virtual time on.
    pub(crate) trace_from: Option<Micros>,
}

/// A tester harness that runs Raft instances through the adapter: it lends the cluster's parts
/// and is the service on the other end of each instance's apply channel.
pub(crate) trait Harness: Sized + 'static {
    /// The cluster's parts.
    fn parts(&self) -> Parts<'_>;

    /// Server `i` applies the command committed at `index` in `term` (applyCh's `CommandValid`).
    /// Returns the snapshot the service wants Raft to take through `index`, if it wants one:
    /// `Snapshot(index, bytes)` is called right after.
    fn on_command(
        self: &Rc<Self>,
        i: usize,
        index: Index,
        term: u64,
        command: &[u8],
    ) -> Option<Vec<u8>>;

    /// Server `i` applies the configuration entry committed at `index` in `term`. Returns the snapshot the
    /// service wants, as [`on_command`](Harness::on_command) does. The Lab 3 services never change the
    /// configuration: by default, nothing.
    fn on_config(
        self: &Rc<Self>,
        i: usize,
        index: Index,
        term: u64,
        membership: &Membership,
    ) -> Option<Vec<u8>> {
        let _ = (i, index, term, membership);
        None
    }

    /// Server `i`'s Raft hands its service a snapshot through `index` (`SnapshotValid`).
    fn on_snapshot(self: &Rc<Self>, i: usize, index: Index, data: &[u8]);

    /// Server `i`'s Raft confirmed reads begun with [`read_index`], after handing out the applies
    /// released with them.
    fn on_reads(self: &Rc<Self>, i: usize, reads: Vec<ReadState>) {
        let _ = (i, reads);
    }

    /// Runs every [`TICK`] for each running server, just before its node's tick.
    fn on_tick(self: &Rc<Self>, i: usize) {
        let _ = i;
    }
}

/// `Make(peers, me, persister, applyCh)`: a new instance of server `i` restoring what `persister`
/// holds.
pub(crate) fn make_instance<H: Harness>(
    h: &H,
    i: usize,
    persister: Persister,
    generation: u64,
) -> Instance {
    let parts = h.parts();
    let state = persister.read_raft_state();
    let persisted = if state.is_empty() {
        None
    } else {
        Some(
            raft::decode(&state)
                .unwrap_or_else(|e| panic!("server {i}: cannot decode persisted state: {e}")),
        )
    };
    let snapshot = persister.read_snapshot();
    let snapshot = (!snapshot.is_empty()).then_some(snapshot);
    // The first configuration's voters are seeded; a server that is to join starts with none.
    let peers: Vec<u64> = if i < parts.voters {
        (0..parts.voters as u64).collect()
    } else {
        Vec::new()
    };
    let seed = parts.sim.rand_seed();
    let mut node = Node::new(
        i as u64,
        &peers,
        parts.raft_config.clone(),
        persisted,
        snapshot,
        seed,
    )
    .unwrap_or_else(|e| panic!("server {i}: Make failed: {e}"));
    node.set_next_seq(parts.next_seq.borrow()[i]);
    if let Some(recorder) = parts.recorder {
        recorder.set_time(parts.sim.now());
        recorder.attach(&mut node);
    }
    Instance {
        node,
        generation,
        persister,
        encoder: StateEncoder::default(),
    }
}

/// Kill: takes server `i`'s instance out of its slot, never to be driven again, and records the
/// crash. The server's next instance continues its message numbering.
pub(crate) fn kill<H: Harness>(h: &H, i: usize) -> Option<Instance> {
    let parts = h.parts();
    let killed = parts.rafts[i].borrow_mut().take()?;
    parts.next_seq.borrow_mut()[i] = killed.node.next_seq();
    record(h, Event::Crash { node: i as u64 });
    Some(killed)
}

/// Runs `f` on server `i`'s instance (only if it is still `generation`, when given), then
/// persists and collects what the node produced. `None` if there is no such instance.
fn with_node<H: Harness, R>(
    h: &H,
    i: usize,
    generation: Option<u64>,
    f: impl FnOnce(&mut Node) -> R,
) -> Option<(R, u64, Option<Released>)> {
    let parts = h.parts();
    let mut slot = parts.rafts[i].borrow_mut();
    let inst = slot.as_mut()?;
    if generation.is_some_and(|g| g != inst.generation) {
        return None;
    }
    if let Some(recorder) = parts.recorder {
        recorder.set_time(parts.sim.now());
    }
    let r = f(&mut inst.node);
    let released = if inst.node.has_ready() {
        let ready = inst.node.ready();
        if let Some(state) = ready.persist() {
            // Durable before anything is released: the Ready API enforces the order. State
            // and snapshot are saved together; an unchanged snapshot is saved again, since
            // Save replaces both.
            let snapshot = match ready.snapshot() {
                Some(snapshot) => snapshot.to_vec(),
                None => inst.persister.read_snapshot(),
            };
            inst.persister.save(
                inst.encoder.encode(state, ready.log_changed_from()),
                snapshot,
            );
            if let Some(recorder) = parts.recorder {
                // What the persister now holds, read back, from where the core said the log changed.
                let encoder = &inst.encoder;
                let persisted = inst.persister.peek(|raft_state, snapshot| {
                    read_back(
                        i as u64,
                        raft_state,
                        ready.log_changed_from(),
                        Some(snapshot).filter(|_| ready.snapshot().is_some()),
                        |k| encoder.entry_offset(k),
                    )
                    .expect("the persister holds a state encoded with the codec")
                });
                recorder.record(persisted);
            }
        }
        Some(ready.persisted())
    } else {
        None
    };
    Some((r, inst.generation, released))
}

/// The `Persist` event of node `node` from what its persister holds: `raft_state` (a `PersistentState`
/// encoded with the codec) read back, with the entries from `from` on (none if `None`), and the digest of
/// `snapshot` if the save wrote one. The entries before `from` are not decoded when `offset(k)` says where
/// entry `k` (0: the first after the snapshot) starts, as the lab's encoder can: a long log is then read
/// back at the cost of what the save wrote.
fn read_back(
    node: u64,
    raft_state: &[u8],
    from: Option<u64>,
    snapshot: Option<&[u8]>,
    offset: impl Fn(usize) -> Option<usize>,
) -> Result<Event, postcard::Error> {
    // The configuration at the snapshot's index is skipped, not decoded: a Persist does not name it.
    // (The addresses' map is empty in the lab: decoding it allocates nothing.)
    type Header = (
        u64,
        Option<u64>,
        u64,
        u64,
        (Ids, Ids, Ids, std::collections::BTreeMap<u64, String>),
        usize,
    );
    let ((term, vote, base, base_term, _, len), mut rest) =
        postcard::take_from_bytes::<Header>(raft_state)?;
    let log = match from {
        None => None,
        Some(from) => {
            let from = from.max(base + 1);
            let skip = usize::try_from(from - base - 1)
                .unwrap_or(usize::MAX)
                .min(len);
            let mut k = 0;
            if let Some(at) = offset(skip).filter(|&at| at <= raft_state.len()) {
                (k, rest) = (skip, &raft_state[at..]);
            }
            let mut entries = Vec::with_capacity(len - skip);
            while k < len {
                // An entry is its term and its payload (the codec writes a `Vec<u8>` as bytes).
                let ((entry_term, payload), next) =
                    postcard::take_from_bytes::<(u64, PayloadRef)>(rest)?;
                if k >= skip {
                    entries.push((
                        entry_term,
                        match payload {
                            PayloadRef::Command(command) => Item::Command(Digest::of(command)),
                            PayloadRef::Config(m) => Item::Config(Conf::of(&m)),
                        },
                    ));
                }
                (k, rest) = (k + 1, next);
            }
            Some(LogDelta { from, entries })
        }
    };
    Ok(Event::Persist {
        node,
        term,
        vote,
        snap: (base, base_term),
        last: base + len as u64,
        log,
        snapshot: snapshot.map(Digest::of),
    })
}

/// Hands a node's released output to the world: applies to the harness's service (the
/// unbuffered applyCh, drained at once), then confirmed reads, then requests to the network.
fn release<H: Harness>(h: &Rc<H>, i: usize, generation: u64, released: Released) {
    for apply in released.applies {
        match apply {
            Apply::Command {
                index,
                term,
                command,
            } => {
                if let Some(snapshot) = h.on_command(i, index, term, &command) {
                    snapshot_instance(h, i, generation, index, snapshot);
                }
            }
            Apply::Snapshot { index, data, .. } => h.on_snapshot(i, index, &data),
            Apply::Config {
                index,
                term,
                membership,
            } => {
                if let Some(snapshot) = h.on_config(i, index, term, &membership) {
                    snapshot_instance(h, i, generation, index, snapshot);
                }
            }
        }
    }
    if !released.reads.is_empty() {
        h.on_reads(i, released.reads);
    }
    for envelope in released.messages {
        // A reply has to ride on the call it answers, and `handle` took that one out; any
        // other reply breaks the core's request/reply pairing rule.
        assert!(
            envelope.message.is_request(),
            "server {i} released a reply that answers no RPC: {envelope:?}"
        );
        send(h, i, generation, envelope);
    }
}

/// Steps server `i`'s instance (if it is still `generation`, when given) with `f`, then persists
/// and releases what that produced. `None` if there is no such instance.
fn step<H: Harness, R>(
    h: &Rc<H>,
    i: usize,
    generation: Option<u64>,
    f: impl FnOnce(&mut Node) -> R,
) -> Option<R> {
    let (r, g, released) = with_node(&**h, i, generation, f)?;
    if let Some(released) = released {
        release(h, i, g, released);
    }
    Some(r)
}

/// `rf.Snapshot(index, snapshot)` on the instance whose apply asked for it (Go's applier
/// captured `rf` when it started), then persists and releases what that produced.
fn snapshot_instance<H: Harness>(
    h: &Rc<H>,
    i: usize,
    generation: u64,
    index: u64,
    snapshot: Vec<u8>,
) {
    if tracing(&**h) {
        trace(
            &**h,
            format_args!("{i} Snapshot({index}, {} bytes)", snapshot.len()),
        );
    }
    if let Some(Err(e)) = step(h, i, Some(generation), |n| n.snapshot(index, snapshot)) {
        panic!("server {i} refused Snapshot({index}): {e}");
    }
}

/// Sends a request from server `i` as a labrpc call on `i`'s end for the addressee.
fn send<H: Harness>(h: &Rc<H>, i: usize, generation: u64, envelope: Envelope) {
    let parts = h.parts();
    let to = envelope.to as usize;
    let end = parts.endnames.borrow()[i][to];
    let bytes = raft::encode(&envelope);
    let id = MsgId::of(&envelope);
    let weak: Weak<H> = Rc::downgrade(h);
    parts.net.call(end, bytes, move |result| {
        let Some(h) = weak.upgrade() else { return };
        let reply = match h.parts().recorder {
            Some(_) => h.parts().replies.borrow_mut().remove(&id),
            None => None,
        };
        match (result, reply) {
            // A request handled without a reply (see `handle`): nothing came back.
            (Some(bytes), _) if bytes.is_empty() => {}
            (Some(bytes), _) => on_reply(&h, i, generation, bytes),
            // The call failed: the request was lost, or the reply was (the handler ran), or there was
            // none to lose.
            (None, None) => record(&*h, Event::Drop { id }),
            (None, Some(Some(reply))) => record(&*h, Event::Drop { id: reply }),
            (None, Some(None)) => {}
        }
    });
}

/// Records a host event in the trace, if this run records one.
pub(crate) fn record<H: Harness>(h: &H, ev: Event) {
    let parts = h.parts();
    if let Some(recorder) = parts.recorder {
        recorder.set_time(parts.sim.now());
        recorder.record(ev);
    }
}

/// A reply was delivered to the instance that sent the request (if it still exists).
fn on_reply<H: Harness>(h: &Rc<H>, i: usize, generation: u64, bytes: Vec<u8>) {
    let envelope: Envelope = raft::decode(&bytes).expect("reply encoded by the adapter");
    if tracing(&**h) {
        trace(
            &**h,
            format_args!("{i} <= {} {}", envelope.from, summary(&envelope.message)),
        );
    }
    let id = MsgId::of(&envelope);
    match step(h, i, Some(generation), |n| n.step(envelope)) {
        Some(Err(e)) => panic!("server {i} refused a reply: {e}"),
        Some(Ok(())) => {}
        // The instance that sent the request is gone: the reply is lost.
        None => record(&**h, Event::Drop { id }),
    }
}

/// The labrpc handler of server `j`'s instance `generation`: steps the request and returns the
/// reply the core produced for it.
pub(crate) fn handle<H: Harness>(
    h: &Rc<H>,
    j: usize,
    generation: u64,
    bytes: Vec<u8>,
) -> Option<Vec<u8>> {
    let envelope: Envelope = raft::decode(&bytes).expect("request encoded by the adapter");
    let from = envelope.from;
    // A server in its leader lease answers no vote request (CheckQuorum), and no one answers TimeoutNow.
    let may_go_unanswered = matches!(
        envelope.message,
        Message::RequestVote(_) | Message::PreVote(_) | Message::TimeoutNow(_)
    );
    let request = MsgId::of(&envelope);
    if tracing(&**h) {
        trace(
            &**h,
            format_args!("{j} <- {from} {}", summary(&envelope.message)),
        );
    }
    let (r, g, released) = with_node(&**h, j, Some(generation), |n| n.step(envelope))?;
    if let Err(e) = r {
        panic!("server {j} refused a request from {from}: {e}");
    }
    let mut released = released.unwrap_or_default();
    let pos = released
        .messages
        .iter()
        .position(|m| !m.message.is_request() && m.to == from);
    let Some(pos) = pos else {
        assert!(
            may_go_unanswered,
            "server {j} produced no reply to a request from {from}"
        );
        if h.parts().recorder.is_some() {
            h.parts().replies.borrow_mut().insert(request, None);
        }
        release(h, j, g, released);
        // labrpc always returns something: an empty reply, which the caller ignores.
        return Some(Vec::new());
    };
    let reply = released.messages.remove(pos);
    if h.parts().recorder.is_some() {
        h.parts()
            .replies
            .borrow_mut()
            .insert(request, Some(MsgId::of(&reply)));
    }
    if tracing(&**h) {
        trace(
            &**h,
            format_args!(
                "{j} -> {from} {} [{}]",
                summary(&reply.message),
                node_summary(&**h, j)
            ),
        );
    }
    release(h, j, g, released);
    Some(raft::encode(&reply))
}

/// `Start(command)`: proposes on server `i`. Returns (index, term, isLeader), or `None` if the
/// server is crashed.
pub(crate) fn propose<H: Harness>(h: &Rc<H>, i: usize, command: Vec<u8>) -> Option<Start> {
    let (r, term) = step(h, i, None, |n| {
        if let Some(recorder) = h.parts().recorder {
            recorder.proposing(&command);
        }
        let term = n.term();
        (n.propose(command), term)
    })?;
    Some(match r {
        Ok((index, term)) => Start {
            index,
            term,
            is_leader: true,
            leader: Some(i as NodeId),
        },
        Err(not_leader) => Start {
            index: 0,
            term,
            is_leader: false,
            leader: not_leader.leader,
        },
    })
}

/// Proposes a membership change on server `i` (`Node::propose_conf_change`): what it answered, and the
/// configuration the change makes of the one in force there (if it is one step from it). `None` if the
/// server is crashed.
#[allow(clippy::type_complexity)]
pub(crate) fn change_config<H: Harness>(
    h: &Rc<H>,
    i: usize,
    change: ConfChange,
) -> Option<(Result<(Index, u64), ConfChangeRefused>, Option<Membership>)> {
    step(h, i, None, |n| {
        let target = n.membership().apply(&change).ok();
        (n.propose_conf_change(change), target)
    })
}

/// Asks server `i`, as leader, to hand its leadership to `target` (`Node::transfer_leader`). `None` if
/// the server is crashed.
pub(crate) fn transfer_leader<H: Harness>(
    h: &Rc<H>,
    i: usize,
    target: NodeId,
) -> Option<Result<(), raft::TransferRefused>> {
    step(h, i, None, |n| n.transfer_leader(target))
}

/// Server `i`'s configuration in force, the index it comes from, and its commit index; `None` if it is
/// crashed.
pub(crate) fn membership<H: Harness>(h: &H, i: usize) -> Option<(Membership, Index, Index)> {
    h.parts().rafts[i].borrow().as_ref().map(|inst| {
        let n = &inst.node;
        (
            n.membership().clone(),
            n.membership_index(),
            n.commit_index(),
        )
    })
}

/// What `Start(command)` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// Where the command will be, if it commits (0 when refused).
    pub(crate) index: Index,
    /// The server's current term.
    pub(crate) term: u64,
    /// Whether the server leads (and accepted the command).
    pub(crate) is_leader: bool,
    /// The leader the server knows of.
    pub(crate) leader: Option<NodeId>,
}

/// Begins a linearizable read on server `i` (`Node::read_index`): the read index, or why the node
/// refused. The confirmed read comes back through [`Harness::on_reads`] with `context`. `None` if
/// the server is crashed.
pub(crate) fn read_index<H: Harness>(
    h: &Rc<H>,
    i: usize,
    context: u64,
) -> Option<Result<Index, ReadRefused>> {
    step(h, i, None, |n| n.read_index(context))
}

/// What a harness may look at of a running node between steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeStatus {
    /// Its current term.
    pub(crate) term: u64,
    /// Whether it leads.
    pub(crate) is_leader: bool,
    /// The leader it knows of in its term.
    pub(crate) leader: Option<NodeId>,
}

/// `GetState()` of server `i`, with the leader it knows of; `None` if it is crashed.
pub(crate) fn status<H: Harness>(h: &H, i: usize) -> Option<NodeStatus> {
    h.parts().rafts[i].borrow().as_ref().map(|inst| NodeStatus {
        term: inst.node.term(),
        is_leader: inst.node.is_leader(),
        leader: inst.node.leader_id(),
    })
}

/// Ticks every running instance (after its harness's own loop), then schedules the next round.
pub(crate) fn tick_all<H: Harness>(h: &Rc<H>) {
    let parts = h.parts();
    let n = parts.rafts.len();
    if tracing(&**h) && parts.sim.now().is_multiple_of(250 * MS) {
        let states: Vec<String> = (0..n).map(|i| node_summary(&**h, i)).collect();
        trace(&**h, format_args!("state {}", states.join(" | ")));
    }
    for i in 0..n {
        if h.parts().rafts[i].borrow().is_some() {
            h.on_tick(i);
        }
        step(h, i, None, |n| n.tick());
    }
    let weak: Weak<H> = Rc::downgrade(h);
    parts.sim.schedule(TICK, move || {
        if let Some(h) = weak.upgrade() {
            tick_all(&h);
        }
    });
}

/// A one-line description of a message, for traces.
fn summary(m: &Message) -> String {
    match m {
        Message::RequestVote(r) => format!(
            "RV t{} last {}/{}",
            r.term, r.last_log_index, r.last_log_term
        ),
        Message::RequestVoteReply(r) => format!("RVR t{} granted {}", r.term, r.vote_granted),
        Message::AppendEntries(a) => format!(
            "AE t{} prev {}/{} n{} commit {}",
            a.term,
            a.prev_log_index,
            a.prev_log_term,
            a.entries.len(),
            a.leader_commit
        ),
        Message::AppendEntriesReply(r) => format!(
            "AER t{} ok {} prev {} match {} conflict {:?}/{}",
            r.term, r.success, r.prev_log_index, r.match_index, r.conflict_term, r.conflict_index
        ),
        Message::InstallSnapshot(m) => format!(
            "IS t{} last {}/{} {} bytes",
            m.term,
            m.last_included_index,
            m.last_included_term,
            m.data.len()
        ),
        Message::InstallSnapshotReply(r) => format!("ISR t{} match {}", r.term, r.match_index),
        Message::PreVote(r) => format!(
            "PV t{} last {}/{}",
            r.term, r.last_log_index, r.last_log_term
        ),
        Message::PreVoteReply(r) => format!("PVR t{} granted {}", r.term, r.vote_granted),
        Message::TimeoutNow(t) => format!("TN t{}", t.term),
    }
}

/// Whether this run traces (`LAB_TRACE=<ms>`: from that virtual time on).
pub(crate) fn tracing<H: Harness>(h: &H) -> bool {
    let parts = h.parts();
    parts.trace_from.is_some_and(|t| parts.sim.now() >= t)
}

/// Prints one trace line, stamped with the virtual time.
pub(crate) fn trace<H: Harness>(h: &H, line: std::fmt::Arguments<'_>) {
    eprintln!("{:>10.3} {line}", h.parts().sim.now() as f64 / 1e6);
}

fn node_summary<H: Harness>(h: &H, i: usize) -> String {
    match h.parts().rafts[i].borrow().as_ref() {
        None => format!("{i}: dead"),
        Some(inst) => {
            let n = &inst.node;
            format!(
                "{i}: t{} {:?} last {}/{} commit {} snap {}",
                n.term(),
                n.role(),
                n.last_index(),
                n.last_term(),
                n.commit_index(),
                n.last_included_index()
            )
        }
    }
}

/// The Lab 2 tester's harness: its applier (`config.rs`) is the service.
impl Harness for Inner {
    fn parts(&self) -> Parts<'_> {
        Parts {
            sim: &self.sim,
            net: &self.net,
            raft_config: &self.raft_config,
            voters: self.voters,
            rafts: &self.rafts,
            endnames: &self.endnames,
            recorder: self.recorder.as_ref(),
            next_seq: &self.next_seq,
            replies: &self.replies,
            trace_from: self.trace_from,
        }
    }

    fn on_command(
        self: &Rc<Self>,
        i: usize,
        index: Index,
        _term: u64,
        command: &[u8],
    ) -> Option<Vec<u8>> {
        self.apply_command(i, index, command)
    }

    fn on_config(
        self: &Rc<Self>,
        i: usize,
        index: Index,
        _term: u64,
        membership: &Membership,
    ) -> Option<Vec<u8>> {
        self.apply_cmd(i, index, Cmd::config(membership))
    }

    fn on_snapshot(self: &Rc<Self>, i: usize, index: Index, data: &[u8]) {
        self.apply_snapshot(i, index, data);
    }
}

/// The adapter's operations as the Lab 2 harness calls them.
impl Inner {
    /// `Make(peers, me, persister, applyCh)`: a new instance restoring what `persister` holds.
    pub(crate) fn make_instance(
        &self,
        i: usize,
        persister: Persister,
        generation: u64,
    ) -> Instance {
        make_instance(self, i, persister, generation)
    }

    /// The labrpc handler of server `j`'s instance `generation`.
    pub(crate) fn handle(
        self: &Rc<Self>,
        j: usize,
        generation: u64,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        handle(self, j, generation, bytes)
    }

    /// `Start(command)`: proposes on server `i`. Returns (index, term, isLeader).
    pub(crate) fn propose(self: &Rc<Self>, i: usize, command: Vec<u8>) -> (u64, u64, bool) {
        let start =
            propose(self, i, command).unwrap_or_else(|| panic!("Start() on crashed server {i}"));
        (start.index, start.term, start.is_leader)
    }

    /// `GetState()` of server `i`: (term, isLeader), or `None` if it is crashed.
    pub(crate) fn get_state(&self, i: usize) -> Option<(u64, bool)> {
        status(self, i).map(|s| (s.term, s.is_leader))
    }

    /// Ticks every running instance, then schedules the next round.
    pub(crate) fn tick_all(self: &Rc<Self>) {
        tick_all(self)
    }

    /// Records a host event in the trace, if this run records one.
    pub(crate) fn record(&self, ev: Event) {
        record(self, ev)
    }

    /// Whether this run traces (`LAB_TRACE=<ms>`: from that virtual time on).
    pub(crate) fn tracing(&self) -> bool {
        tracing(self)
    }

    /// Prints one trace line, stamped with the virtual time.
    pub(crate) fn trace(&self, line: std::fmt::Arguments<'_>) {
        trace(self, line)
    }
}
