//! The types that cross the wire ([`Envelope`], [`Message`]) or go to durable storage ([`PersistentState`]).
//! Field names follow Figure 2 of the Raft paper.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::membership::Membership;
use crate::{Index, NodeId, Term};

/// One log entry: the term in which a leader created it, and what it carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that appended the entry.
    pub term: Term,
    /// A client's command or a configuration.
    pub payload: Payload,
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// A client's command, opaque to Raft.
    Command(Vec<u8>),
    /// A configuration (see [`Node::propose_conf_change`](crate::Node::propose_conf_change)): every server
    /// uses the last one in its log from the moment it is appended, committed or not. Boxed, so that an entry
    /// stays as small as a command's.
    Config(Box<Membership>),
}

impl Entry {
    /// An entry of `term` carrying a client's `command`.
    pub fn command(term: Term, command: Vec<u8>) -> Entry {
        Entry {
            term,
            payload: Payload::Command(command),
        }
    }

    /// An entry of `term` carrying a configuration.
    pub fn config(term: Term, membership: Membership) -> Entry {
        Entry {
            term,
            payload: Payload::Config(Box::new(membership)),
        }
    }

    /// The length of the command the entry carries (0 for a configuration entry): what
    /// [`Config::max_bytes_per_message`](crate::Config::max_bytes_per_message) counts.
    pub fn command_len(&self) -> usize {
        match &self.payload {
            Payload::Command(c) => c.len(),
            Payload::Config(_) => 0,
        }
    }

    /// The configuration the entry carries, if it is a configuration entry.
    pub fn membership(&self) -> Option<&Membership> {
        match &self.payload {
            Payload::Config(m) => Some(m),
            Payload::Command(_) => None,
        }
    }

    /// The bytes the entry carries: a command's, or the encoding of a configuration (as [`crate::encode`]
    /// makes it). For sizes and digests.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.payload {
            Payload::Command(c) => std::borrow::Cow::Borrowed(c),
            Payload::Config(m) => std::borrow::Cow::Owned(crate::encode(m)),
        }
    }
}

/// The state a server must make durable before it answers an RPC or sends a message (Figure 2, "Persistent state
/// on all servers").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersistentState {
    /// The latest term the server has seen.
    pub current_term: Term,
    /// The candidate that received this server's vote in `current_term`, if any.
    pub voted_for: Option<NodeId>,
    /// The last index the snapshot covers (0 if there is no snapshot; Figure 13's `lastIncludedIndex`). The
    /// snapshot's bytes are stored beside this state, not in it, so that the state stays small.
    pub last_included_index: Index,
    /// The term of the entry at `last_included_index` (0 if there is no snapshot).
    pub last_included_term: Term,
    /// The configuration in force at `last_included_index`: the last configuration entry the snapshot
    /// covers, or the cluster's first configuration. Empty for a server that has not yet learned one (a
    /// server about to join), and in state saved before configurations existed (then
    /// [`Node::new`](crate::Node::new) takes its `peers` as the first configuration).
    pub membership: Membership,
    /// The log after the snapshot; `log[0]` is the entry at index `last_included_index + 1`.
    pub log: Vec<Entry>,
}

/// RequestVote RPC arguments: sent by candidates to gather votes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestVote {
    /// The candidate's term.
    pub term: Term,
    /// The candidate requesting the vote (equal to the envelope's `from`).
    pub candidate_id: NodeId,
    /// Index of the candidate's last log entry.
    pub last_log_index: Index,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
    /// True when a [`TimeoutNow`] started the election (a leadership transfer): a server in its leader lease
    /// ([`Config::check_quorum`](crate::Config::check_quorum)) answers it all the same. Always false in a
    /// PreVote (a transfer skips PreVote).
    pub transfer: bool,
}

/// RequestVote RPC results.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestVoteReply {
    /// The voter's `current_term`, for the candidate to update itself.
    pub term: Term,
    /// True means the candidate received the vote.
    pub vote_granted: bool,
}

/// AppendEntries RPC arguments: sent by the leader to replicate entries; with no entries, a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppendEntries {
    /// The leader's term.
    pub term: Term,
    /// The leader (equal to the envelope's `from`), so followers can redirect clients.
    pub leader_id: NodeId,
    /// Index of the log entry immediately preceding the new ones.
    pub prev_log_index: Index,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// The entries to store, at `prev_log_index + 1 ..`; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's `commit_index`.
    pub leader_commit: Index,
    /// The leader's latest read round in its term (0: none), echoed in the reply: a reply acknowledges the
    /// leader's reads of that round and earlier (see [`Node::read_index`](crate::Node::read_index)).
    pub read_round: u64,
}

/// AppendEntries RPC results. Self-contained, so that the leader can interpret a reply without remembering the
/// request (replies may come late, duplicated or reordered).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppendEntriesReply {
    /// The follower's `current_term`, for the leader to update itself.
    pub term: Term,
    /// True if the follower contained an entry matching `prev_log_index` and `prev_log_term`.
    pub success: bool,
    /// The request's `prev_log_index`, echoed so the leader can recognise a stale rejection.
    pub prev_log_index: Index,
    /// On success, the index up to which the follower's log is now known to match the leader's
    /// (`prev_log_index + entries.len()`); 0 on failure.
    pub match_index: Index,
    /// On a log-consistency failure, the term of the follower's conflicting entry at `prev_log_index`, or `None`
    /// if the follower's log is too short to hold `prev_log_index`.
    pub conflict_term: Option<Term>,
    /// On a log-consistency failure, the first index the follower holds with `conflict_term`, or (when
    /// `conflict_term` is `None`) the follower's last index + 1. 0 when the request was rejected for its term.
    pub conflict_index: Index,
    /// The request's `read_round`, echoed; 0 when the request was refused for its term (it comes from an
    /// older leadership, whose rounds say nothing about the current one's).
    pub read_round: u64,
}

/// InstallSnapshot RPC arguments (Figure 13): sent by the leader to a follower that needs entries the leader has
/// already compacted. The whole snapshot travels in one message (the lab does not chunk it, so Figure 13's
/// `offset` and `done` are absent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The leader (equal to the envelope's `from`).
    pub leader_id: NodeId,
    /// The snapshot replaces all entries up through and including this index.
    pub last_included_index: Index,
    /// The term of the entry at `last_included_index`.
    pub last_included_term: Term,
    /// The configuration in force at `last_included_index`, which the snapshot's entries no longer say.
    /// Boxed, so that every message stays as small as it was (they are moved by value).
    pub membership: Box<Membership>,
    /// The service's snapshot, opaque to Raft. Shared, so that a leader sends its snapshot without copying
    /// it; encoded exactly as a `Vec<u8>` would be.
    pub data: Arc<[u8]>,
}

/// InstallSnapshot RPC results. Like [`AppendEntriesReply`] it is self-contained.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstallSnapshotReply {
    /// The follower's `current_term`, for the leader to update itself.
    pub term: Term,
    /// The request's `last_included_index` when the follower now holds the leader's log through it (it
    /// installed the snapshot, or had already committed past it); 0 when the request was refused for its term.
    pub match_index: Index,
}

/// TimeoutNow (§3.10 of Ongaro's dissertation): a leader hands its leadership over to a follower whose log holds
/// all of its own, which starts an election at once. It has no reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
    /// The leader (equal to the envelope's `from`).
    pub leader_id: NodeId,
}

/// A Raft message. A request (RequestVote, AppendEntries, InstallSnapshot, PreVote, TimeoutNow) gets at most one
/// reply, from a node that accepts it: AppendEntries and InstallSnapshot always get one; RequestVote and PreVote
/// get none from a server in its leader lease ([`Config::check_quorum`](crate::Config::check_quorum)); TimeoutNow
/// never gets one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Message {
    /// A candidate asks for a vote.
    RequestVote(RequestVote),
    /// The answer to a [`RequestVote`].
    RequestVoteReply(RequestVoteReply),
    /// A leader replicates entries or sends a heartbeat.
    AppendEntries(AppendEntries),
    /// The answer to an [`AppendEntries`].
    AppendEntriesReply(AppendEntriesReply),
    /// A leader sends its snapshot to a follower that is behind it.
    InstallSnapshot(InstallSnapshot),
    /// The answer to an [`InstallSnapshot`].
    InstallSnapshotReply(InstallSnapshotReply),
    /// PreVote: would the receiver vote for the sender in `term` (the sender's term plus one)? Neither side
    /// changes its term or vote for it.
    PreVote(RequestVote),
    /// The answer to a [`Message::PreVote`]: its term is the request's when granted, the receiver's own when
    /// refused.
    PreVoteReply(RequestVoteReply),
    /// A leader hands over to the addressee, which starts an election at once.
    TimeoutNow(TimeoutNow),
}

impl Message {
    /// True for RequestVote, AppendEntries, InstallSnapshot, PreVote and TimeoutNow, false for the replies.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::RequestVote(_)
                | Message::AppendEntries(_)
                | Message::InstallSnapshot(_)
                | Message::PreVote(_)
                | Message::TimeoutNow(_)
        )
    }

    /// What the message says of its sender's `current_term` when it was sent: the message's term, but one less
    /// for a PreVote (whose term is the one its sender would stand in), and nothing for a granted PreVoteReply
    /// (whose term is the pre-candidate's). A host can check with it that no message leaves before the term it
    /// speaks from is durable.
    pub fn sender_term(&self) -> Option<Term> {
        match self {
            Message::PreVote(m) => Some(m.term.saturating_sub(1)),
            Message::PreVoteReply(m) if m.vote_granted => None,
            other => Some(other.term()),
        }
    }

    /// The term the message carries (for a PreVote and a granted PreVoteReply, not the sender's: see
    /// [`Message::sender_term`]).
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteReply(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesReply(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotReply(m) => m.term,
            Message::PreVote(m) => m.term,
            Message::PreVoteReply(m) => m.term,
            Message::TimeoutNow(m) => m.term,
        }
    }
}

/// A message with its sender and addressee: the unit handed to [`Node::step`](crate::Node::step) and produced in
/// [`Released::messages`](crate::Released::messages).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending server.
    pub from: NodeId,
    /// The receiving server.
    pub to: NodeId,
    /// The sender's sequence number for this message: `(from, seq)` names one message (a restarted server
    /// continues where its host says, see [`Node::set_next_seq`](crate::Node::set_next_seq)), so a trace can
    /// say exactly which send a receive consumes. Raft itself never reads it.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages and entries are moved by value on every send and receive: a configuration in them is boxed,
    /// so that it costs nothing to the messages that do not carry one. (An unboxed one in InstallSnapshot
    /// made every message longer and `raft-bench --tier 1` about 20% slower.)
    #[test]
    fn messages_and_entries_stay_small() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Message>(), SIZE_OF_MESSAGE);
    }

    const SIZE_OF_MESSAGE: usize = 72;
}
