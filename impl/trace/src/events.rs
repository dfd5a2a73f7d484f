//! How a node's steps become events: the conversion from what a [`raft::Observer`] sees to the
//! [`Event`]s of the trace format. Shared by the simulator's recorder (`conformance`) and `raft-node --trace`.

use std::collections::VecDeque;
use std::sync::Mutex;

use raft::{Apply, Envelope, Message, Node, Output, PersistentState, Step};

use crate::format::{
    Applied, Body, Conf, Digest, Event, Item, LogDelta, Msg, MsgId, NodeState, Role,
};

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
        Step::CheckQuorum { .. } => Event::CheckQuorum {
            node: id,
            state: node_state(node, None),
        },
        Step::TransferLeader { target, sent } => Event::Transfer {
            node: id,
            target,
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
        Step::ChangeConfig {
            membership,
            ref result,
            sent,
            log_changed_from,
        } => Event::ChangeConfig {
            node: id,
            conf: Conf::of(membership),
            accepted: result.as_ref().ok().copied(),
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

/// The commands a host is about to propose, as its clients asked for them, in order: a proposal's event names
/// the digest of the next, not the core's word for what it appended, so that a core that logs something else
/// is caught. A batch ([`raft::Node::propose_batch`]) sets each of its commands before the core reports a
/// proposal for each.
#[derive(Debug, Default)]
pub struct Proposal(Mutex<VecDeque<Digest>>);

impl Proposal {
    /// The host is about to propose `command`, after those set before it.
    pub fn set(&self, command: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Digest::of(command));
    }

    /// Puts the digest of the earliest command set and not yet named (if any, taking it) into `ev`, if `ev` is
    /// a proposal's event.
    pub fn fill(&self, ev: &mut Event) {
        if let Event::Propose { command, .. } = ev {
            if let Some(asked) = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                *command = asked;
            }
        }
    }
}

/// The event that reports what `node`'s transport decoded off its connection.
pub fn decoded_event(node: u64, envelope: &Envelope) -> Event {
    Event::Decoded {
        node,
        id: MsgId::of(envelope),
        digest: body(&envelope.message).digest(),
    }
}

/// The events that report what a node released once its state was durable: each `Send`, `Apply` and
/// `Read`, in order. The `Persist` before them is the host's to report, from what its storage holds, once
/// the save has returned ([`persist_event`]).
pub fn output_events(node: u64, output: &Output<'_>, mut push: impl FnMut(Event)) {
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
            Apply::Config {
                index,
                term,
                membership,
            } => Event::Apply {
                node,
                index: *index,
                term: *term,
                item: Applied::Config(Conf::of(membership)),
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

/// The event that reports `state` (with `snapshot`, if it changed) durable, the log written from
/// `log_changed_from` on.
pub fn persist_event(
    node: u64,
    state: &PersistentState,
    snapshot: Option<&[u8]>,
    log_changed_from: Option<u64>,
) -> Event {
    let base = state.last_included_index;
    Event::Persist {
        node,
        term: state.current_term,
        vote: state.voted_for,
        snap: (state.last_included_index, state.last_included_term),
        last: base + state.log.len() as u64,
        log: log_changed_from.map(|from| log_delta(base, &state.log, from)),
        snapshot: snapshot.map(Digest::of),
    }
}

/// The node's state, with the log written from `log_from` on (`None`: the log did not change).
pub fn node_state(node: &Node, log_from: Option<u64>) -> NodeState {
    let log = log_from.map(|from| log_delta(node.last_included_index(), node.log(), from));
    let role = match node.role() {
        raft::Role::Follower => Role::F,
        raft::Role::Candidate => Role::C,
        raft::Role::Leader => Role::L,
        raft::Role::PreCandidate => Role::P,
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
    // By id, from 0 to the highest id the leader replicates to.
    let progress = if role == Role::L {
        let servers = node.peers().iter().max().map_or(0, |&p| p + 1);
        (0..servers)
            .map(|p| node.progress(p).unwrap_or((0, 0)))
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
pub fn log_delta(base: u64, log: &[raft::Entry], from: u64) -> LogDelta {
    let from = from.max(base + 1);
    let skip = usize::try_from(from - base - 1).unwrap_or(usize::MAX);
    LogDelta {
        from,
        entries: log.iter().skip(skip).map(entry).collect(),
    }
}

/// An entry as the trace writes it.
pub fn entry(e: &raft::Entry) -> (u64, Item) {
    (e.term, Item::of(&e.payload))
}

/// The messages a step produced.
pub fn msgs(sent: &[Envelope]) -> Vec<Msg> {
    sent.iter()
        .map(|e| Msg {
            to: e.to,
            seq: e.seq,
            m: body(&e.message),
        })
        .collect()
}

/// A message as the trace writes it.
pub fn body(m: &Message) -> Body {
    match m {
        Message::RequestVote(r) => Body::RequestVote {
            term: r.term,
            last_log_index: r.last_log_index,
            last_log_term: r.last_log_term,
            transfer: r.transfer,
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
        Message::PreVote(r) => Body::PreVote {
            term: r.term,
            last_log_index: r.last_log_index,
            last_log_term: r.last_log_term,
        },
        Message::PreVoteReply(r) => Body::PreVoteReply {
            term: r.term,
            granted: r.vote_granted,
        },
        Message::TimeoutNow(t) => Body::TimeoutNow { term: t.term },
    }
}
