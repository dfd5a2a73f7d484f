//! The adapter that gives the sans-IO `raft` core the tester's interface: Make, Start, GetState,
//! Kill, RPC handlers invoked through labrpc, and the apply channel.
//!
//! Each server instance is a [`raft::Node`] driven by the simulator: ticked every
//! [`TICK`] of virtual time, stepped with every request its labrpc server dispatches and with every
//! reply the network delivers to it. After each of those, the adapter takes the node's `Ready`,
//! saves its durable state to the instance's Persister (encoded with the real codec, so
//! RaftStateSize is real) together with its snapshot, in one `Save(raftstate, snapshot)`, and only
//! then releases its messages and applies. A request's reply is returned to the network as the
//! handler's result; other messages become new labrpc calls.
//!
//! Applies go to the tester's applier synchronously (the applyCh is unbuffered and drained at
//! once). The snapshot applier calls `Snapshot(index, bytes)` from inside that delivery; the
//! adapter has already taken the whole batch out of the node and released its borrow, so the
//! call is an ordinary, re-entrant step of the same instance.
//!
//! Recording (when the runner asks for a trace): each instance continues its server's message numbering and
//! reports its steps to the run's recorder; the adapter adds what labrpc does: a failed call is the loss of
//! the request, or of the reply when the handler ran (it remembers which reply each request produced), and a
//! reply that reaches a killed instance is lost too.
//!
//! Kill: the instance is dropped from its slot. Nothing drives it any more, the network's dead
//! check fails its in-flight calls, and replies addressed to it are discarded, because every
//! callback names the instance (its generation) it belongs to.

use std::rc::{Rc, Weak};

use raft::{Apply, Envelope, Message, Node, Released};

use crate::trace::format::{Event, MsgId};

use super::config::Inner;
use super::encoder::StateEncoder;
use super::persister::Persister;
use crate::sim::{Micros, MS};

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

impl Inner {
    /// `Make(peers, me, persister, applyCh)`: a new instance restoring what `persister` holds.
    pub(crate) fn make_instance(
        &self,
        i: usize,
        persister: Persister,
        generation: u64,
    ) -> Instance {
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
        let peers: Vec<u64> = (0..self.n as u64).collect();
        let seed = self.sim.rand_seed();
        let mut node = Node::new(
            i as u64,
            &peers,
            self.raft_config.clone(),
            persisted,
            snapshot,
            seed,
        )
        .unwrap_or_else(|e| panic!("server {i}: Make failed: {e}"));
        node.set_next_seq(self.next_seq.borrow()[i]);
        if let Some(recorder) = &self.recorder {
            recorder.set_time(self.sim.now());
            recorder.attach(&mut node);
        }
        Instance {
            node,
            generation,
            persister,
            encoder: StateEncoder::default(),
        }
    }

    /// Runs `f` on server `i`'s instance (only if it is still `generation`, when given), then
    /// persists and collects what the node produced. `None` if there is no such instance.
    fn with_node<R>(
        &self,
        i: usize,
        generation: Option<u64>,
        f: impl FnOnce(&mut Node) -> R,
    ) -> Option<(R, u64, Option<Released>)> {
        let mut slot = self.rafts[i].borrow_mut();
        let inst = slot.as_mut()?;
        if generation.is_some_and(|g| g != inst.generation) {
            return None;
        }
        if let Some(recorder) = &self.recorder {
            recorder.set_time(self.sim.now());
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
            }
            Some(ready.persisted())
        } else {
            None
        };
        Some((r, inst.generation, released))
    }

    /// Hands a node's released output to the world: applies to the tester's applier (the
    /// unbuffered applyCh, drained at once), requests to the network.
    fn release(self: &Rc<Self>, i: usize, generation: u64, released: Released) {
        for apply in released.applies {
            match apply {
                Apply::Command { index, command, .. } => {
                    if let Some(snapshot) = self.apply_command(i, index, &command) {
                        self.snapshot(i, generation, index, snapshot);
                    }
                }
                Apply::Snapshot { index, data, .. } => self.apply_snapshot(i, index, &data),
            }
        }
        for envelope in released.messages {
            // A reply has to ride on the call it answers, and `handle` took that one out; any
            // other reply breaks the core's request/reply pairing rule.
            assert!(
                envelope.message.is_request(),
                "server {i} released a reply that answers no RPC: {envelope:?}"
            );
            self.send(i, generation, envelope);
        }
    }

    /// `rf.Snapshot(index, snapshot)` on the instance whose apply asked for it (Go's applier
    /// captured `rf` when it started), then persists and releases what that produced.
    fn snapshot(self: &Rc<Self>, i: usize, generation: u64, index: u64, snapshot: Vec<u8>) {
        if self.tracing() {
            self.trace(format_args!(
                "{i} Snapshot({index}, {} bytes)",
                snapshot.len()
            ));
        }
        if let Some((r, g, released)) =
            self.with_node(i, Some(generation), |n| n.snapshot(index, snapshot))
        {
            if let Err(e) = r {
                panic!("server {i} refused Snapshot({index}): {e}");
            }
            if let Some(rel) = released {
                self.release(i, g, rel);
            }
        }
    }

    /// Sends a request from server `i` as a labrpc call on `i`'s end for the addressee.
    fn send(self: &Rc<Self>, i: usize, generation: u64, envelope: Envelope) {
        let to = envelope.to as usize;
        let end = self.endnames.borrow()[i][to];
        let bytes = raft::encode(&envelope);
        let id = MsgId::of(&envelope);
        let weak = Rc::downgrade(self);
        self.net.call(end, bytes, move |result| {
            let Some(inner) = weak.upgrade() else { return };
            let reply = match inner.recorder {
                Some(_) => inner.replies.borrow_mut().remove(&id),
                None => None,
            };
            match result {
                Some(bytes) => inner.on_reply(i, generation, bytes),
                // The call failed: the request was lost, or the reply was (the handler ran).
                None => inner.record(Event::Drop {
                    id: reply.unwrap_or(id),
                }),
            }
        });
    }

    /// Records a host event in the trace, if this run records one.
    pub(crate) fn record(&self, ev: Event) {
        if let Some(recorder) = &self.recorder {
            recorder.set_time(self.sim.now());
            recorder.record(ev);
        }
    }

    /// A reply was delivered to the instance that sent the request (if it still exists).
    fn on_reply(self: &Rc<Self>, i: usize, generation: u64, bytes: Vec<u8>) {
        let envelope: Envelope = raft::decode(&bytes).expect("reply encoded by the adapter");
        if self.tracing() {
            self.trace(format_args!(
                "{i} <= {} {}",
                envelope.from,
                summary(&envelope.message)
            ));
        }
        let id = MsgId::of(&envelope);
        match self.with_node(i, Some(generation), |n| n.step(envelope)) {
            Some((r, g, released)) => {
                if let Err(e) = r {
                    panic!("server {i} refused a reply: {e}");
                }
                if let Some(rel) = released {
                    self.release(i, g, rel);
                }
            }
            // The instance that sent the request is gone: the reply is lost.
            None => self.record(Event::Drop { id }),
        }
    }

    /// The labrpc handler of server `j`'s instance `generation`: steps the request and returns the
    /// reply the core produced for it.
    pub(crate) fn handle(
        self: &Rc<Self>,
        j: usize,
        generation: u64,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let envelope: Envelope = raft::decode(&bytes).expect("request encoded by the adapter");
        let from = envelope.from;
        let request = MsgId::of(&envelope);
        if self.tracing() {
            self.trace(format_args!("{j} <- {from} {}", summary(&envelope.message)));
        }
        let (r, g, released) = self.with_node(j, Some(generation), |n| n.step(envelope))?;
        if let Err(e) = r {
            panic!("server {j} refused a request from {from}: {e}");
        }
        let mut released = released.unwrap_or_default();
        let pos = released
            .messages
            .iter()
            .position(|m| !m.message.is_request() && m.to == from)
            .unwrap_or_else(|| panic!("server {j} produced no reply to a request from {from}"));
        let reply = released.messages.remove(pos);
        if self.recorder.is_some() {
            self.replies.borrow_mut().insert(request, MsgId::of(&reply));
        }
        if self.tracing() {
            self.trace(format_args!(
                "{j} -> {from} {} [{}]",
                summary(&reply.message),
                self.node_summary(j)
            ));
        }
        self.release(j, g, released);
        Some(raft::encode(&reply))
    }

    /// `Start(command)`: proposes on server `i`. Returns (index, term, isLeader).
    pub(crate) fn propose(self: &Rc<Self>, i: usize, command: Vec<u8>) -> (u64, u64, bool) {
        let Some((r, g, released)) = self.with_node(i, None, |n| {
            let term = n.term();
            (n.propose(command), term)
        }) else {
            panic!("Start() on crashed server {i}");
        };
        if let Some(rel) = released {
            self.release(i, g, rel);
        }
        match r {
            (Ok((index, term)), _) => (index, term, true),
            (Err(_), term) => (0, term, false),
        }
    }

    /// `GetState()` of server `i`: (term, isLeader), or `None` if it is crashed.
    pub(crate) fn get_state(&self, i: usize) -> Option<(u64, bool)> {
        self.rafts[i]
            .borrow()
            .as_ref()
            .map(|inst| (inst.node.term(), inst.node.is_leader()))
    }

    /// Ticks every running instance, then schedules the next round.
    pub(crate) fn tick_all(self: &Rc<Self>) {
        if self.tracing() && self.sim.now().is_multiple_of(250 * MS) {
            let states: Vec<String> = (0..self.n).map(|i| self.node_summary(i)).collect();
            self.trace(format_args!("state {}", states.join(" | ")));
        }
        for i in 0..self.n {
            if let Some((_, g, Some(rel))) = self.with_node(i, None, |n| n.tick()) {
                self.release(i, g, rel);
            }
        }
        let weak: Weak<Inner> = Rc::downgrade(self);
        self.sim.schedule(TICK, move || {
            if let Some(inner) = weak.upgrade() {
                inner.tick_all();
            }
        });
    }
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
    }
}

impl Inner {
    /// Whether this run traces (`LAB_TRACE=<ms>`: from that virtual time on).
    pub(crate) fn tracing(&self) -> bool {
        self.trace_from.is_some_and(|t| self.sim.now() >= t)
    }

    /// Prints one trace line, stamped with the virtual time.
    pub(crate) fn trace(&self, line: std::fmt::Arguments<'_>) {
        eprintln!("{:>10.3} {line}", self.sim.now() as f64 / 1e6);
    }

    fn node_summary(&self, i: usize) -> String {
        match self.rafts[i].borrow().as_ref() {
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
}
