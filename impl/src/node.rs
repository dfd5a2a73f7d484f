//! The Raft state machine: one server's persistent and volatile state (Figure 2) and its handlers.
//!
//! Shape, after etcd-io/raft: [`Node::step`] does what every role does (check the addressee, adopt a higher term,
//! answer stale requests, answer RequestVote) and hands the rest to one handler per role (`step_follower`,
//! `step_candidate`, `step_leader`). `become_follower`, `become_candidate` and `become_leader` are the only places
//! the role changes.

use crate::mutants::{on as mutant, Mutant};
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::log::RaftLog;
use crate::membership::{ConfChange, Membership, MembershipError, Quorum};
use crate::observe::{Observer, Step};
use crate::progress::{Mode, Progress};
use crate::read::{PendingRead, ReadState, Reads};
use crate::ready::{Apply, ObserverHandle, Ready, Released};
use crate::{
    AppendEntries, AppendEntriesReply, Config, ConfigError, Entry, Envelope, Index,
    InstallSnapshot, InstallSnapshotReply, Message, NodeId, Payload, PersistentState, RequestVote,
    RequestVoteReply, Term, TimeoutNow, MAX_INDEX, MAX_TERM,
};

/// The role a server plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Passive: answers leaders and candidates.
    Follower,
    /// Campaigning for votes in `current_term`.
    Candidate,
    /// Elected for `current_term`: accepts proposals and replicates them.
    Leader,
    /// With [`Config::pre_vote`]: asking whether a quorum would vote for it in the next term, before it
    /// raises its term and campaigns.
    PreCandidate,
}

/// [`Node::propose`] was called on a server that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("not the leader (leader hint: {leader:?})")]
pub struct NotLeader {
    /// The leader of the current term, if this server has heard from it.
    pub leader: Option<NodeId>,
}

/// [`Node::read_index`] could not begin the read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ReadRefused {
    /// Only the leader begins reads.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The leader has not yet committed an entry of its term, so its commit index may lag behind entries an
    /// earlier leader committed. Try again once it has ([`Node::committed_in_term`]); a host that appends an
    /// empty entry on election gets there within a round trip.
    #[error("the leader has not yet committed an entry of its term")]
    NoCommitInTerm,
}

/// [`Node::transfer_leader`] could not begin a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TransferRefused {
    /// Only the leader hands over.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The target is not a voter of the configuration in force.
    #[error("{0} is not a voter of the cluster")]
    UnknownPeer(NodeId),
}

/// [`Node::propose_conf_change`] could not append the change.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfChangeRefused {
    /// Only the leader changes the configuration.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The last configuration entry is not yet committed: one change at a time.
    #[error("the previous configuration change is not yet committed")]
    ChangePending,
    /// The leader has not yet committed an entry of its term. A leader that changed the configuration
    /// before that could undo a change an earlier leader committed (Ongaro's single-server change bug,
    /// raft-dev 2015). Try again once [`Node::committed_in_term`] holds.
    #[error("the leader has not yet committed an entry of its term")]
    NoCommitInTerm,
    /// The change does not apply to the configuration in force.
    #[error(transparent)]
    Invalid(#[from] MembershipError),
}

/// A leadership transfer a leader has begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    /// The target's position in `peers`.
    position: usize,
    /// The target.
    target: NodeId,
    /// Ticks left before the transfer is given up (the target never caught up, or its election failed).
    ticks_left: u32,
    /// Whether TimeoutNow went out: from then on the leader takes no proposals, which the target's log
    /// would lack.
    sent: bool,
}

/// [`Node::step`] refused a message. Nothing is sent in reply (not even to a request). For `WrongAddressee`,
/// `UnknownPeer` and malformed field values the node is untouched; a well-formed AppendEntries that would
/// overwrite a committed entry is refused after its term has been adopted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StepError {
    /// The envelope is addressed to another server.
    #[error("message for {to} delivered to {me}")]
    WrongAddressee {
        /// The envelope's `to`.
        to: NodeId,
        /// This node's id.
        me: NodeId,
    },
    /// The sender is this node itself. (A node hears from any other server: one outside its configuration
    /// may lead a configuration it has not yet learned of, or may be joining.)
    #[error("message from unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The message breaks the protocol in a way no correct server produces (for example an AppendEntries whose
    /// entries have terms above the sender's term, or that would overwrite a committed entry, or a term above
    /// [`MAX_TERM`] or an index above [`MAX_INDEX`]).
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// [`Node::snapshot`] was given an index the service cannot have applied yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("snapshot through index {index}, but only {last_applied} was handed out to apply")]
pub struct SnapshotError {
    /// The index the snapshot claims to cover.
    pub index: Index,
    /// The highest index the node has handed out in an [`Apply`].
    pub last_applied: Index,
}

/// One Raft server, sans IO. See the crate documentation for the driving loop.
///
/// `Clone` copies the whole server, observer included: a model checker explores branches from one state.
#[derive(Clone, Debug)]
pub struct Node {
    id: NodeId,
    /// Every member of the configuration in force, and `id`, in increasing order (and, on a leader, the
    /// servers it removed in its term). Per-peer state is indexed by position in this list, so iteration
    /// order is deterministic; it is rebuilt, and that state moved along, when the configuration changes.
    peers: Vec<NodeId>,
    /// Position of `id` in `peers`.
    me: usize,
    /// The configuration in force: the last configuration entry in the log, committed or not, or the
    /// snapshot's (§6 of the paper: a configuration takes effect when it is appended).
    membership: Membership,
    /// The index of the entry `membership` comes from (at most the snapshot's last index when it is the
    /// snapshot's).
    membership_index: Index,
    /// `membership` by position in `peers`.
    quorum: Quorum,
    /// The positions in `peers` of the other members: whom a leader replicates to.
    followers: Vec<usize>,
    config: Config,
    rng: ChaCha8Rng,

    // Persistent state on all servers (Figure 2).
    current_term: Term,
    voted_for: Option<NodeId>,
    /// The log after the snapshot, with the snapshot's last included index and term.
    log: RaftLog,
    /// The service's state through `log.last_included_index()` (empty if there is none). Shared with the
    /// `Ready` that persists it.
    snapshot: Arc<[u8]>,

    // Volatile state on all servers.
    commit_index: Index,
    last_applied: Index,
    role: Role,
    leader_id: Option<NodeId>,
    election_elapsed: u32,
    randomized_election_timeout: u32,

    // Volatile state on candidates: the answer of each server (by position) in this election.
    votes: Vec<Option<bool>>,

    // Volatile state on leaders: next_index and match_index of each server (by position; our own slot unused).
    progress: Vec<Progress>,
    heartbeat_elapsed: u32,
    /// With CheckQuorum: ticks since the leader's last quorum check.
    check_quorum_elapsed: u32,
    /// The leadership transfer under way, if any (leaders only).
    transfer: Option<Transfer>,
    /// Reused buffer for the commit computation, so replies do not allocate.
    match_scratch: Vec<Index>,
    /// The leader's reads: rounds opened, acknowledged, pending.
    reads: Reads,

    // Output not yet handed out by `ready`.
    /// `current_term`, `voted_for` or the log changed since the last `Ready`.
    persist_dirty: bool,
    /// The lowest log index written (appended or overwritten) since the last `Ready`, if any.
    log_changed_from: Option<Index>,
    /// The snapshot changed since the last `Ready` (it is persisted with the state).
    snapshot_dirty: bool,
    /// The snapshot must be handed to the service before any further command: it was installed by the leader,
    /// or restored at startup. While set, `last_applied < log.last_included_index()`.
    snapshot_to_apply: bool,
    outbox: Vec<Envelope>,
    /// Reads confirmed since the last `Ready`.
    read_states: Vec<ReadState>,
    /// The sequence number of the next message this node sends.
    next_seq: u64,

    // Observation (see `observe`).
    observer: Option<ObserverHandle>,
    /// Whether the node was created from persisted state.
    restored: bool,
    /// For the reply-before-durable mutant: the next `Ready` leaves the log changes for the one after.
    defer_persist: bool,
}

impl Node {
    /// Creates a server.
    ///
    /// `peers` lists the voters of a new cluster, including `id`: the first configuration. A server that is to
    /// join a running cluster is given no peers; it learns its configuration from the leader, which must first
    /// add it ([`Node::propose_conf_change`]). Once the state holds a configuration, the configuration comes
    /// from the state and the log, and `peers` is not read. `persisted` is what the previous instance of this
    /// server made durable (`None` on first boot), and `snapshot` the snapshot saved with it (`None` if there is
    /// none; it is required exactly when `persisted.last_included_index > 0`). A restored snapshot is handed to the
    /// service as the first [`Apply`], then the committed entries after it. `seed` seeds the only randomness, the
    /// election timeouts; the id is mixed in, so servers given the same seed still draw different timeouts.
    pub fn new(
        id: NodeId,
        peers: &[NodeId],
        config: Config,
        persisted: Option<PersistentState>,
        snapshot: Option<Vec<u8>>,
        seed: u64,
    ) -> Result<Node, ConfigError> {
        config.validate()?;
        if !peers.is_empty() && !peers.contains(&id) {
            return Err(ConfigError::SelfNotInPeers(id));
        }
        for (i, p) in peers.iter().enumerate() {
            if peers[..i].contains(p) {
                return Err(ConfigError::DuplicatePeer(*p));
            }
        }
        let restored = persisted.is_some();
        let mut state = persisted.unwrap_or_default();
        // The first configuration, seeded from `peers`, is made durable with the first Ready.
        let seeded = state.membership == Membership::default() && !peers.is_empty();
        if seeded {
            state.membership = Membership::of_voters(peers.iter().copied());
        }
        if state.membership != Membership::default() {
            state
                .membership
                .validate()
                .map_err(|_| ConfigError::InvalidPersistedState("the configuration is invalid"))?;
        }
        if state.current_term > MAX_TERM {
            return Err(ConfigError::InvalidPersistedState(
                "current_term is above MAX_TERM",
            ));
        }
        match (state.last_included_index, &snapshot) {
            (0, None) if state.last_included_term == 0 => {}
            (0, _) => {
                return Err(ConfigError::InvalidPersistedState(
                    "a snapshot or its term without a last included index",
                ))
            }
            (_, None) => {
                return Err(ConfigError::InvalidPersistedState(
                    "last_included_index is set but the snapshot is missing",
                ))
            }
            (_, Some(_)) => {
                if state.last_included_term == 0 || state.last_included_term > state.current_term {
                    return Err(ConfigError::InvalidPersistedState(
                        "last_included_term must be in 1..=current_term",
                    ));
                }
            }
        }
        if state
            .last_included_index
            .checked_add(state.log.len() as Index)
            .is_none_or(|last| last > MAX_INDEX)
        {
            return Err(ConfigError::InvalidPersistedState(
                "the log extends past MAX_INDEX",
            ));
        }
        let mut previous_term = state.last_included_term;
        for entry in &state.log {
            if entry.term == 0 || entry.term < previous_term || entry.term > state.current_term {
                return Err(ConfigError::InvalidPersistedState(
                    "log terms must be in 1..=current_term and never decrease",
                ));
            }
            if entry.membership().is_some_and(|m| m.validate().is_err()) {
                return Err(ConfigError::InvalidPersistedState(
                    "a configuration entry is invalid",
                ));
            }
            previous_term = entry.term;
        }

        let snapshot_membership = std::mem::take(&mut state.membership);
        let mut node = Node {
            id,
            peers: vec![id],
            me: 0,
            membership: Membership::default(),
            membership_index: 0,
            quorum: Quorum::default(),
            followers: Vec::new(),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            current_term: state.current_term,
            voted_for: state.voted_for,
            log: RaftLog::new(
                state.last_included_index,
                state.last_included_term,
                state.log,
            ),
            snapshot: snapshot.unwrap_or_default().into(),
            // The snapshot holds only committed entries.
            commit_index: state.last_included_index,
            last_applied: 0,
            role: Role::Follower,
            leader_id: None,
            election_elapsed: 0,
            randomized_election_timeout: 0,
            votes: vec![None],
            progress: vec![Progress::new(0)],
            heartbeat_elapsed: 0,
            check_quorum_elapsed: 0,
            transfer: None,
            match_scratch: Vec::new(),
            reads: Reads::default(),
            persist_dirty: seeded,
            log_changed_from: None,
            snapshot_dirty: false,
            snapshot_to_apply: state.last_included_index > 0,
            outbox: Vec::new(),
            read_states: Vec::new(),
            next_seq: 0,
            observer: None,
            defer_persist: false,
            restored,
        };
        node.log.set_snapshot_membership(snapshot_membership);
        node.find_membership();
        node.reset_election_timer();
        node.reads.reset(node.peers.len());
        node.check_invariants();
        Ok(node)
    }

    // ----------------------------------------------------------------------------------------------------------
    // Inputs

    /// Advances the logical clock by one tick: a leader may send heartbeats, anyone else may start an election.
    pub fn tick(&mut self) {
        let outbox_before = self.outbox.len();
        match self.role {
            Role::Leader => {
                for pr in &mut self.progress {
                    pr.tick();
                }
                if self.config.check_quorum {
                    self.check_quorum_elapsed += 1;
                    if self.check_quorum_elapsed >= self.config.check_quorum_ticks {
                        self.check_quorum_elapsed = 0;
                        let stepped_down = !self.check_quorum();
                        if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
                            o.step(self, &Step::CheckQuorum { stepped_down });
                        }
                        if stepped_down {
                            self.check_invariants();
                            return;
                        }
                    }
                }
                if let Some(t) = &mut self.transfer {
                    t.ticks_left -= 1;
                    if t.ticks_left == 0 {
                        self.transfer = None;
                    }
                }
                self.heartbeat_elapsed += 1;
                if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
                    self.heartbeat_elapsed = 0;
                    self.broadcast_append();
                    if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
                        let sent = &self.outbox[outbox_before..];
                        o.step(self, &Step::Heartbeat { sent });
                    }
                }
            }
            Role::Follower | Role::Candidate | Role::PreCandidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_election_timeout {
                    if self.current_term >= MAX_TERM || !self.membership.is_voter(self.id) {
                        // There is no next term to campaign in, or this server does not vote (a learner, a
                        // server removed or not yet added): the timer restarts and the role stays (a
                        // candidate may still win with this term's votes). Only timers change, so this is not
                        // reported, like a tick on which no timer fires.
                        self.reset_election_timer();
                    } else {
                        if self.config.pre_vote {
                            self.become_pre_candidate();
                        } else {
                            self.become_candidate(false);
                        }
                        if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
                            let sent = &self.outbox[outbox_before..];
                            o.step(self, &Step::ElectionTimeout { sent });
                        }
                    }
                }
            }
        }
        self.check_invariants();
    }

    /// Handles one message. A request that is accepted (`Ok`) produces at most one reply to its sender in the
    /// next [`Ready`] (see [`Message`] for which get none). Replies may be stale, duplicated or reordered; they are judged on their
    /// content alone. Never panics, whatever the message says.
    pub fn step(&mut self, envelope: Envelope) -> Result<(), StepError> {
        match self.observer.clone() {
            None => self.step_inner(envelope),
            Some(observer) => self.step_observed(envelope, observer),
        }
    }

    /// [`Node::step`] with an observer: kept out of line, so that the unobserved path stays as it was.
    #[inline(never)]
    fn step_observed(
        &mut self,
        envelope: Envelope,
        observer: ObserverHandle,
    ) -> Result<(), StepError> {
        let outbox_before = self.outbox.len();
        let pending = self.log_changed_from.take();
        let (from, seq) = (envelope.from, envelope.seq);
        let result = self.step_inner(envelope);
        let written = self.restore_log_changed_from(pending);
        observer.observer().step(
            self,
            &Step::Receive {
                from,
                seq,
                result: result.as_ref().map(|_| ()),
                sent: &self.outbox[outbox_before..],
                log_changed_from: written,
            },
        );
        result
    }

    /// For the observer: what the input just handled wrote to the log (tracked in `log_changed_from`, which
    /// was set aside as `pending` before it), with `log_changed_from` put back to cover both. The unobserved
    /// path pays nothing for this.
    fn restore_log_changed_from(&mut self, pending: Option<Index>) -> Option<Index> {
        let written = self.log_changed_from;
        self.log_changed_from = match (pending, written) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        written
    }

    #[inline(always)]
    fn step_inner(&mut self, envelope: Envelope) -> Result<(), StepError> {
        let Envelope {
            from, to, message, ..
        } = envelope;
        if to != self.id {
            return Err(StepError::WrongAddressee { to, me: self.id });
        }
        if from == self.id {
            return Err(StepError::UnknownPeer(from));
        }
        // A server outside the configuration may still send requests; its replies count for nothing.
        let from_position = self.position(from);
        validate(from, &message)?;

        let term = message.term();
        // CheckQuorum: a server in its leader lease ignores a vote request of a higher term, unless a
        // leadership transfer started the election. It neither adopts the term nor answers.
        if self.config.check_quorum && term > self.current_term && self.in_lease() {
            let ignored = match &message {
                Message::RequestVote(m) => !m.transfer || mutant(Mutant::LeaseIgnoresTransfer),
                Message::PreVote(_) => true,
                _ => false,
            };
            if ignored {
                return Ok(());
            }
        }
        // A PreVote and a granted PreVoteReply carry the term the pre-candidate would stand in: no one
        // adopts it (§9.6 of the dissertation).
        let pre_vote = matches!(message, Message::PreVote(_))
            || matches!(&message, Message::PreVoteReply(r) if r.vote_granted);
        if term > self.current_term && (!pre_vote || mutant(Mutant::PreVoteAdoptsTerm)) {
            // Figure 2, all servers: a higher term makes us a follower of that term. Only an AppendEntries or
            // an InstallSnapshot proves who the leader is.
            let leader = matches!(
                message,
                Message::AppendEntries(_) | Message::InstallSnapshot(_)
            )
            .then_some(from);
            self.become_follower(term, leader);
        } else if term < self.current_term
            && !(mutant(Mutant::AcceptStaleTerm) && matches!(message, Message::AppendEntries(_)))
            && !(mutant(Mutant::StaleVoteCounted)
                && matches!(message, Message::RequestVoteReply(_)))
            && !(mutant(Mutant::StaleSnapshotReplyCounted)
                && matches!(message, Message::InstallSnapshotReply(_)))
        {
            // A stale request is refused with our term so that its sender steps down; a stale reply is dropped.
            match message {
                Message::RequestVote(_) => self.send_request_vote_reply(from, false),
                Message::PreVote(_) => self.send_pre_vote_reply(from, None),
                Message::AppendEntries(m) => self.refuse_append_entries(from, m.prev_log_index),
                Message::InstallSnapshot(_) => self.send_install_snapshot_reply(from, 0),
                Message::TimeoutNow(_)
                | Message::RequestVoteReply(_)
                | Message::AppendEntriesReply(_)
                | Message::InstallSnapshotReply(_)
                | Message::PreVoteReply(_) => {}
            }
            return Ok(());
        }
        let result = match message {
            Message::RequestVote(m) => {
                self.handle_request_vote(from, m);
                Ok(())
            }
            Message::PreVote(m) => {
                self.handle_pre_vote(from, m);
                Ok(())
            }
            Message::TimeoutNow(_) => {
                self.handle_timeout_now();
                Ok(())
            }
            message => match self.role {
                Role::Follower => self.step_follower(from, message),
                Role::Candidate | Role::PreCandidate => {
                    self.step_candidate(from_position, from, message)
                }
                Role::Leader => self.step_leader(from_position, from, message),
            },
        };
        self.check_invariants();
        result
    }

    /// Appends `command` to the leader's log and starts replicating it. Returns the index the command will have
    /// if it commits, and the current term. Fails on a server that is not the leader, and on a leader whose log
    /// ends at [`MAX_INDEX`] (then with no leader hint: no index is left for the command).
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        match self.observer.clone() {
            None => self.propose_inner(command),
            Some(observer) => self.propose_observed(command, observer),
        }
    }

    /// Appends `commands` to the leader's log, in order, and then starts replicating them together: a
    /// follower the leader streams to gets them in one AppendEntries (or in as few as
    /// `max_entries_per_message` and `max_bytes_per_message` allow), not in one per command. Returns the
    /// index of the first command and the current term; each next command has the next index. All or none:
    /// a server that is not the leader, or a log without room for every command, refuses the whole batch
    /// (with no leader hint in the second case). An empty batch appends nothing and returns the index the
    /// next command would have.
    ///
    /// An observer sees one [`Step::Propose`] per command; the last one carries what was sent.
    pub fn propose_batch(&mut self, commands: Vec<Vec<u8>>) -> Result<(Index, Term), NotLeader> {
        let first = (self.log.last_index().saturating_add(1), self.current_term);
        let n = commands.len();
        let refused = self.can_append().and_then(|()| {
            if MAX_INDEX - self.log.last_index() < n as Index {
                Err(NotLeader { leader: None })
            } else {
                Ok(())
            }
        });
        let observer = self.observer.clone();
        if let Err(refused) = refused {
            if let Some(observer) = &observer {
                for command in &commands {
                    self.observe_refused(command, refused, observer);
                }
            }
            return Err(refused);
        }
        for (k, command) in commands.into_iter().enumerate() {
            let replicate = k + 1 == n;
            match &observer {
                None => {
                    self.append_command(command, replicate);
                }
                Some(observer) => {
                    self.append_observed(command, observer, replicate);
                }
            }
        }
        Ok(first)
    }

    /// [`Node::propose`] with an observer, out of line.
    #[inline(never)]
    fn propose_observed(
        &mut self,
        command: Vec<u8>,
        observer: ObserverHandle,
    ) -> Result<(Index, Term), NotLeader> {
        if let Err(refused) = self.can_append() {
            self.observe_refused(&command, refused, &observer);
            return Err(refused);
        }
        Ok(self.append_observed(command, &observer, true))
    }

    /// Tells the observer that `command` was refused.
    fn observe_refused(&self, command: &[u8], refused: NotLeader, observer: &ObserverHandle) {
        observer.observer().step(
            self,
            &Step::Propose {
                command,
                result: Err(refused),
                sent: &[],
                log_changed_from: None,
            },
        );
    }

    /// [`Node::append_command`] (on a leader with room), and the observer told of it.
    fn append_observed(
        &mut self,
        command: Vec<u8>,
        observer: &ObserverHandle,
        replicate: bool,
    ) -> (Index, Term) {
        let outbox_before = self.outbox.len();
        let pending = self.log_changed_from.take();
        let appended = self.append_command(command, replicate);
        let written = self.restore_log_changed_from(pending);
        let command = match &self
            .log
            .entries()
            .last()
            .expect("a leader appended it")
            .payload
        {
            Payload::Command(c) => c,
            Payload::Config(_) => unreachable!("propose appends a command"),
        };
        observer.observer().step(
            self,
            &Step::Propose {
                command,
                result: Ok(appended),
                sent: &self.outbox[outbox_before..],
                log_changed_from: written,
            },
        );
        appended
    }

    /// Whether a proposal can be appended here: only on the leader, and only while its log has room.
    fn can_append(&self) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader_id,
            });
        }
        if self.log.last_index() >= MAX_INDEX {
            return Err(NotLeader { leader: None });
        }
        // Handing over: the target is about to lead, and the client is sent there.
        if let Some(t) = self.transfer.filter(|t| t.sent) {
            return Err(NotLeader {
                leader: Some(self.peers[t.position]),
            });
        }
        Ok(())
    }

    fn propose_inner(&mut self, command: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        self.can_append()?;
        Ok(self.append_command(command, true))
    }

    /// Appends `command` on a leader whose log has room, and, if `replicate`, sends it (with anything else
    /// unsent) to the followers the leader streams to. Returns its index and term.
    fn append_command(&mut self, command: Vec<u8>, replicate: bool) -> (Index, Term) {
        let index = self.log.append(Entry::command(self.current_term, command));
        self.log_changed(index);
        if replicate {
            self.replicate_appended();
        }
        self.check_invariants();
        (index, self.current_term)
    }

    /// After the leader appended an entry: what is now committed is (a cluster of one commits the entry; a
    /// new configuration can make a quorum of what was not one), then followers known to be in step get the
    /// entry, with that commit index.
    fn replicate_appended(&mut self) {
        self.maybe_commit();
        if self.role != Role::Leader {
            return;
        }
        // Pipelining: followers known to be in step get the entry now, without waiting for earlier replies.
        // Followers being probed get it once the probe succeeds.
        for k in 0..self.followers.len() {
            let position = self.followers[k];
            if self.progress[position].mode == Mode::Replicate {
                self.send_unsent(position);
            }
        }
    }

    /// Appends a configuration change to the leader's log: the configuration `change` makes of the one in
    /// force, which is the leader's at once (§6 of the paper; it takes effect on each server as it is
    /// appended there). Returns the entry's index and term. The change must be one step (see
    /// [`Membership::apply`]); a server to be added must already be running with no configuration, and it
    /// gets the log (or the snapshot) from the leader like any follower. Only one change may be uncommitted
    /// at a time, and only once the leader has committed an entry of its term. A leader that removes itself
    /// keeps leading, without counting itself, until the change commits, and then steps down.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
    ) -> Result<(Index, Term), ConfChangeRefused> {
        self.propose_conf_change_with_addresses(change, &BTreeMap::new())
    }

    /// As [`propose_conf_change`](Node::propose_conf_change), and the new configuration records `addresses`
    /// over those of the members it keeps ([`Membership::addresses`]): where the host reaches each. An
    /// address for a server that is no member of the new configuration makes the change
    /// [`Invalid`](ConfChangeRefused::Invalid).
    pub fn propose_conf_change_with_addresses(
        &mut self,
        change: ConfChange,
        addresses: &BTreeMap<NodeId, String>,
    ) -> Result<(Index, Term), ConfChangeRefused> {
        let target = match self.membership.apply_with_addresses(&change, addresses) {
            Ok(target) => target,
            // A follower sends the caller to the leader, whose configuration may differ from its own.
            Err(invalid) => {
                self.can_append()?;
                return Err(invalid.into());
            }
        };
        let outbox_before = self.outbox.len();
        let pending = self.log_changed_from.take();
        let result = self.propose_conf_change_inner(target.clone());
        let written = self.restore_log_changed_from(pending);
        self.check_invariants();
        if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
            let sent = &self.outbox[outbox_before..];
            o.step(
                self,
                &Step::ChangeConfig {
                    membership: &target,
                    result: result.clone(),
                    sent,
                    log_changed_from: written,
                },
            );
        }
        result
    }

    fn propose_conf_change_inner(
        &mut self,
        membership: Membership,
    ) -> Result<(Index, Term), ConfChangeRefused> {
        self.can_append()?;
        if self.membership_index > self.commit_index && !mutant(Mutant::ConfChangeWhilePending) {
            return Err(ConfChangeRefused::ChangePending);
        }
        if !self.committed_in_term() && !mutant(Mutant::ConfChangeBeforeTermCommit) {
            return Err(ConfChangeRefused::NoCommitInTerm);
        }
        let index = self
            .log
            .append(Entry::config(self.current_term, membership.clone()));
        self.log_changed(index);
        self.adopt_membership(membership, index);
        // The quorum changed: reads that its acknowledgements now make one of are confirmed.
        let me = self.self_position();
        self.reads.confirm(me, &self.quorum, &mut self.read_states);
        self.replicate_appended();
        Ok((index, self.current_term))
    }

    /// Begins a linearizable read that does not go through the log (ReadIndex, §6.4 of Ongaro's
    /// dissertation). On a leader that has committed an entry of its current term, records its commit index as
    /// the read index, opens a new read round and sends every follower an AppendEntries of that round. Once a
    /// majority, itself included, has answered an AppendEntries of that round or a later one in its term, no
    /// other leader can have been elected before they answered, so the read index covers every write committed
    /// before the read began: a later [`Ready`] hands out a [`ReadState`] with `context`, and the host answers
    /// the read from its state machine once it has applied the read index. Nothing is written to the log.
    ///
    /// Returns the read index. A follower refuses with the leader it knows of (the host sends its client
    /// there); a leader that steps down drops its pending reads, which are never handed out.
    pub fn read_index(&mut self, context: u64) -> Result<Index, ReadRefused> {
        let outbox_before = self.outbox.len();
        let result = self.read_index_inner(context);
        if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
            let sent = &self.outbox[outbox_before..];
            o.step(
                self,
                &Step::ReadIndex {
                    context,
                    result,
                    sent,
                },
            );
        }
        result
    }

    fn read_index_inner(&mut self, context: u64) -> Result<Index, ReadRefused> {
        if self.role != Role::Leader {
            return Err(ReadRefused::NotLeader(NotLeader {
                leader: self.leader_id,
            }));
        }
        if !self.committed_in_term() && !mutant(Mutant::ReadBeforeTermCommit) {
            return Err(ReadRefused::NoCommitInTerm);
        }
        let index = self.commit_index;
        self.reads.begin(context, index);
        // A cluster of one confirms by itself.
        let me = self.self_position();
        self.reads.confirm(me, &self.quorum, &mut self.read_states);
        self.broadcast_append();
        self.check_invariants();
        Ok(index)
    }

    /// Hands the leadership over to `target` (§3.10 of Ongaro's dissertation), for instance before this server
    /// is taken down. Once `target`'s log holds all of the leader's (at once, or when a reply says so; the
    /// leader sends it what it lacks meanwhile), the leader sends it TimeoutNow, and from then on refuses
    /// proposals with `target` as the leader hint. `target` starts an election at once, without PreVote, whose
    /// RequestVotes servers in their lease answer. Proposals made before TimeoutNow goes out delay it, since
    /// `target` must hold them too. If `target` has not caught up within `election_ticks_min` ticks, or this
    /// server still leads that long after TimeoutNow (it was lost, or the election failed), the transfer is
    /// given up and proposals are taken again: the caller may try again. A transfer to this server itself
    /// does nothing; a new transfer replaces one under way.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), TransferRefused> {
        let outbox_before = self.outbox.len();
        let result = self.transfer_leader_inner(target);
        self.check_invariants();
        if result.is_ok() {
            if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
                let sent = &self.outbox[outbox_before..];
                o.step(self, &Step::TransferLeader { target, sent });
            }
        }
        result
    }

    fn transfer_leader_inner(&mut self, target: NodeId) -> Result<(), TransferRefused> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader_id,
            }
            .into());
        }
        if target == self.id {
            return Ok(());
        }
        let position = self
            .position(target)
            .filter(|_| self.membership.is_voter(target))
            .ok_or(TransferRefused::UnknownPeer(target))?;
        self.transfer = Some(Transfer {
            position,
            target,
            ticks_left: self.config.election_ticks_min,
            sent: false,
        });
        if !self.maybe_send_timeout_now(position) {
            self.send_append(position);
        }
        Ok(())
    }

    /// Sends TimeoutNow to the follower at `position` if a transfer to it is under way and its log now holds
    /// all of ours. Returns whether it did.
    fn maybe_send_timeout_now(&mut self, position: usize) -> bool {
        let last = self.log.last_index();
        let Some(t) = &mut self.transfer else {
            return false;
        };
        if t.position != position
            || t.sent
            || (self.progress[position].match_index != last && !mutant(Mutant::TimeoutNowToLaggard))
        {
            return false;
        }
        t.sent = true;
        t.ticks_left = self.config.election_ticks_min;
        let message = Message::TimeoutNow(TimeoutNow {
            term: self.current_term,
            leader_id: self.id,
        });
        let to = self.peers[position];
        self.send(to, message);
        true
    }

    /// The target of the leadership transfer under way, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| self.peers[t.position])
    }

    /// The service's `Snapshot(index, data)`: `data` is the state machine after applying every entry through
    /// `index`. The log through `index` is discarded and the snapshot is persisted with the state (both come out
    /// in the next [`Ready`]). A snapshot not newer than the current one is ignored: the service may snapshot an
    /// index that a snapshot from the leader has since covered. Fails if `index` was not handed out to apply.
    pub fn snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), SnapshotError> {
        if index <= self.log.last_included_index() {
            return Ok(());
        }
        if index > self.last_applied {
            return Err(SnapshotError {
                index,
                last_applied: self.last_applied,
            });
        }
        let term = self
            .log
            .term(index)
            .expect("applied entries after the snapshot are in the log");
        let membership = self.membership_at(index);
        self.log.compact(index, term);
        self.log.set_snapshot_membership(membership);
        self.snapshot = data.into();
        self.snapshot_dirty = true;
        self.persist_dirty = true;
        self.check_invariants();
        if let Some(o) = self.observer.as_ref().map(ObserverHandle::observer) {
            let data = &self.snapshot;
            o.step(self, &Step::Snapshot { index, data });
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------------------------
    // Observation

    /// Attaches an observer, which is told about every step from now on, starting with a [`Step::Start`] for the
    /// state the node was created with. Attach it right after [`Node::new`], before any input.
    pub fn set_observer(&mut self, observer: std::sync::Arc<dyn Observer>) {
        observer.step(
            self,
            &Step::Start {
                restart: self.restored,
            },
        );
        self.observer = Some(ObserverHandle::new(self.id, observer));
    }

    /// Numbers the messages this node sends from `seq` on (in [`Envelope::seq`]). A host that records traces
    /// passes each new instance of a server the [`next_seq`](Node::next_seq) its previous instance reached, so
    /// that `(from, seq)` stays unique across restarts.
    pub fn set_next_seq(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// The sequence number the next message will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The answer this node has from each server, by position in [`peers`](Node::peers), while it is a
    /// candidate (or a pre-candidate, for its pre-votes): `Some(true)` granted (itself included), `Some(false)`
    /// refused, `None` not yet answered. `None` in other roles.
    pub fn votes(&self) -> Option<&[Option<bool>]> {
        matches!(self.role, Role::Candidate | Role::PreCandidate).then_some(&self.votes[..])
    }

    // ----------------------------------------------------------------------------------------------------------
    // Output

    /// Takes everything produced since the previous call: state to persist, then messages and applies.
    pub fn ready(&mut self) -> Ready {
        // The reply-before-durable mutant releases this Ready's messages without its log changes, which go
        // out with the next one.
        let defer = mutant(Mutant::ReplyBeforeDurable) && std::mem::take(&mut self.defer_persist);
        let log_changed_from = if defer {
            None
        } else {
            self.log_changed_from.take()
        };
        let persist = if self.persist_dirty && !defer {
            self.persist_dirty = false;
            Some(self.log.durable(self.current_term, self.voted_for))
        } else {
            None
        };
        let snapshot = if self.snapshot_dirty {
            self.snapshot_dirty = false;
            debug_assert!(
                persist.is_some(),
                "a new snapshot changes the durable state"
            );
            Some(Arc::clone(&self.snapshot))
        } else {
            None
        };
        let mut applies = Vec::new();
        if self.snapshot_to_apply {
            // Before any command after it, and never after a command it covers: only a snapshot newer than
            // commit_index (hence than last_applied) is installed.
            self.snapshot_to_apply = false;
            applies.push(Apply::Snapshot {
                index: self.log.last_included_index(),
                term: self.log.last_included_term(),
                data: self.snapshot.to_vec(),
            });
            self.last_applied = self.log.last_included_index();
        }
        if self.commit_index > self.last_applied {
            applies.reserve((self.commit_index - self.last_applied) as usize);
            for index in self.last_applied + 1..=self.commit_index {
                let entry = self
                    .log
                    .entry(index)
                    .expect("committed entries are in the log");
                applies.push(match &entry.payload {
                    Payload::Command(command) => Apply::Command {
                        index,
                        term: entry.term,
                        command: command.clone(),
                    },
                    Payload::Config(membership) => Apply::Config {
                        index,
                        term: entry.term,
                        membership: (**membership).clone(),
                    },
                });
            }
            self.last_applied = self.commit_index;
        }
        let messages = std::mem::take(&mut self.outbox);
        let reads = std::mem::take(&mut self.read_states);
        Ready {
            persist,
            snapshot,
            log_changed_from,
            released: Released {
                messages,
                applies,
                reads,
            },
            observer: self.observer.clone(),
        }
    }

    /// True if [`ready`](Node::ready) would return something to persist, send or apply. Cheap.
    pub fn has_ready(&self) -> bool {
        self.persist_dirty
            || !self.outbox.is_empty()
            || self.snapshot_to_apply
            || self.commit_index > self.last_applied
            || !self.read_states.is_empty()
    }

    /// Whether this node leads and has committed an entry of its current term: whether
    /// [`read_index`](Node::read_index) can begin a read.
    pub fn committed_in_term(&self) -> bool {
        self.role == Role::Leader && self.log.term(self.commit_index) == Some(self.current_term)
    }

    /// A leader's latest read round in its term (0: none, and always 0 on other roles).
    pub fn read_round(&self) -> u64 {
        self.reads.round()
    }

    /// A leader's reads begun and not yet confirmed, in round order (none on other roles).
    pub fn pending_reads(&self) -> impl Iterator<Item = &PendingRead> {
        self.reads.pending()
    }

    // ----------------------------------------------------------------------------------------------------------
    // Observers

    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The servers this one keeps state for, in increasing order: the members of the configuration in force
    /// and itself (and, on a leader, the servers it removed in its term).
    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }

    /// The latest term this server has seen (`current_term`).
    pub fn term(&self) -> Term {
        self.current_term
    }

    /// True if this server is the leader of its current term.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// This server's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader of the current term, if known.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// The candidate voted for in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The log after the snapshot; element `i` is the entry at index `last_included_index() + i + 1`.
    pub fn log(&self) -> &[Entry] {
        self.log.entries()
    }

    /// Index of the last log entry, counting the snapshot (0 if both are empty).
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// Term of the last log entry, counting the snapshot (0 if both are empty).
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// The last index the snapshot covers (0 if there is none).
    pub fn last_included_index(&self) -> Index {
        self.log.last_included_index()
    }

    /// The term of the entry at [`last_included_index`](Node::last_included_index) (0 if there is none).
    pub fn last_included_term(&self) -> Term {
        self.log.last_included_term()
    }

    /// The current snapshot (empty if there is none).
    pub fn snapshot_data(&self) -> &[u8] {
        &self.snapshot
    }

    /// Highest log index known to be committed.
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    /// Highest log index handed out in an [`Apply`] (a snapshot counts as its last included index).
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }

    /// On a leader, `(next_index, match_index)` for `peer`; `None` on other roles, for unknown peers and for the
    /// leader itself.
    pub fn progress(&self, peer: NodeId) -> Option<(Index, Index)> {
        let position = self.position(peer)?;
        (self.role == Role::Leader && peer != self.id).then(|| {
            (
                self.progress[position].next_index,
                self.progress[position].match_index,
            )
        })
    }

    /// On a leader, whether it replicates to `peer` optimistically (sends new entries at once and moves
    /// `next_index` as it sends) rather than probing (one AppendEntries at a time, `next_index` moved by
    /// replies); `None` where [`progress`](Node::progress) is `None`. Part of what decides the leader's next
    /// message, for callers that compare states.
    pub fn replicating(&self, peer: NodeId) -> Option<bool> {
        let position = self.position(peer)?;
        (self.role == Role::Leader && peer != self.id)
            .then(|| self.progress[position].mode == crate::progress::Mode::Replicate)
    }

    /// On a leader, whether an InstallSnapshot it sent `peer` awaits an answer: until it comes, or until
    /// [`Config::snapshot_resend_ticks`] pass, `peer` gets heartbeats and not the snapshot again. `None`
    /// where [`progress`](Node::progress) is `None`. Part of what decides the leader's next message, for
    /// callers that compare states.
    pub fn snapshot_in_flight(&self, peer: NodeId) -> Option<bool> {
        let position = self.position(peer)?;
        (self.role == Role::Leader && peer != self.id)
            .then(|| self.progress[position].snapshot_in_flight())
    }

    /// A copy of the current durable state (what the next [`Ready::persist`] would hold).
    pub fn persistent_state(&self) -> PersistentState {
        PersistentState {
            current_term: self.current_term,
            voted_for: self.voted_for,
            last_included_index: self.log.last_included_index(),
            last_included_term: self.log.last_included_term(),
            membership: self.log.snapshot_membership().clone(),
            log: self.log.entries().to_vec(),
        }
    }

    /// The configuration in force: the last configuration entry in the log, committed or not, or else the
    /// snapshot's.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The index of the entry the configuration in force comes from (at most
    /// [`last_included_index`](Node::last_included_index) when it is the snapshot's): the change is committed
    /// once [`commit_index`](Node::commit_index) reaches it.
    pub fn membership_index(&self) -> Index {
        self.membership_index
    }

    // ----------------------------------------------------------------------------------------------------------
    // Role changes: the only places `role` is assigned.

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(term >= self.current_term);
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            self.persist_dirty |= !mutant(Mutant::TermNotPersisted);
        }
        // Figure 2: the election timer restarts on hearing from the current leader or on granting a vote, not on
        // merely seeing a higher term. Otherwise candidates with stale logs, whose RequestVotes an up-to-date server
        // refuses, keep pushing back that server's own candidacy, and when only it can win, nobody ever does. A
        // leader stepping down starts a fresh timer (it was not counting one).
        if self.role == Role::Leader {
            self.reset_election_timer();
            self.reads.reset(self.peers.len());
            self.transfer = None;
        }
        self.role = Role::Follower;
        self.leader_id = leader;
    }

    /// An election: `transfer` when a TimeoutNow started it.
    fn become_candidate(&mut self, transfer: bool) {
        debug_assert_ne!(self.role, Role::Leader);
        debug_assert!(self.current_term < MAX_TERM, "no term after MAX_TERM");
        self.role = Role::Candidate;
        self.current_term += 1;
        self.voted_for = Some(self.id);
        self.persist_dirty = true;
        self.leader_id = None;
        self.reset_election_timer();
        if self.count_own_vote() {
            self.become_leader();
            return;
        }
        self.ask_for_votes(self.current_term, transfer, Message::RequestVote);
    }

    /// Starts counting the answers of a new (pre-)candidacy with our own; whether it alone is a quorum.
    fn count_own_vote(&mut self) -> bool {
        self.votes.fill(None);
        let me = self.self_position();
        self.votes[me] = Some(true);
        self.has_quorum_of_votes()
    }

    /// Sends every other server a vote request in `term` (`kind`: a RequestVote or a PreVote).
    fn ask_for_votes(&mut self, term: Term, transfer: bool, kind: fn(RequestVote) -> Message) {
        let request = RequestVote {
            term,
            candidate_id: self.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        for position in 0..self.peers.len() {
            let to = self.peers[position];
            let asked = self.membership.is_voter(to)
                || (mutant(Mutant::LearnerVoteCounted) && self.membership.learners.contains(&to));
            if position != self.self_position() && asked {
                self.send(to, kind(request.clone()));
            }
        }
    }

    /// PreVote: the election timer fired; ask the others whether they would vote for us in the next term,
    /// leaving our term and vote as they are. Alone, a quorum at once: the election starts.
    fn become_pre_candidate(&mut self) {
        debug_assert_ne!(self.role, Role::Leader);
        debug_assert!(self.current_term < MAX_TERM, "no term after MAX_TERM");
        self.role = Role::PreCandidate;
        self.leader_id = None;
        self.reset_election_timer();
        if self.count_own_vote() {
            self.become_candidate(false);
            return;
        }
        self.ask_for_votes(self.current_term + 1, false, Message::PreVote);
    }

    fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader_id = Some(self.id);
        // Figure 2: next_index starts just past our log, match_index at 0. No no-op entry is appended (the lab
        // tester expects the first command to get index 1).
        let last = self.log.last_index();
        self.rebuild_peers(false);
        self.progress.fill(Progress::new(last));
        self.reads.reset(self.peers.len());
        self.heartbeat_elapsed = 0;
        self.check_quorum_elapsed = 0;
        // Announce the election at once so the other candidates stand down.
        self.broadcast_append();
    }

    // ----------------------------------------------------------------------------------------------------------
    // Per-role handlers. The message's term equals current_term here.

    fn step_follower(&mut self, from: NodeId, message: Message) -> Result<(), StepError> {
        match message {
            Message::AppendEntries(m) => self.handle_append_entries(from, m),
            Message::InstallSnapshot(m) => {
                self.handle_install_snapshot(from, m);
                Ok(())
            }
            // Replies to requests sent in an earlier role of this term: nothing to do.
            Message::RequestVoteReply(_)
            | Message::AppendEntriesReply(_)
            | Message::InstallSnapshotReply(_) => Ok(()),
            Message::RequestVote(_) | Message::PreVote(_) | Message::TimeoutNow(_) => {
                unreachable!("handled in step")
            }
            Message::PreVoteReply(_) => Ok(()),
        }
    }

    /// A candidate's, or a pre-candidate's (which counts pre-votes where a candidate counts votes).
    fn step_candidate(
        &mut self,
        from_position: Option<usize>,
        from: NodeId,
        message: Message,
    ) -> Result<(), StepError> {
        let pre = self.role == Role::PreCandidate;
        match message {
            Message::AppendEntries(m) => {
                // Someone won this term's election: stand down (Figure 2, candidates).
                self.become_follower(self.current_term, Some(from));
                self.handle_append_entries(from, m)
            }
            Message::InstallSnapshot(m) => {
                if !mutant(Mutant::SnapshotCandidateStays) {
                    self.become_follower(self.current_term, Some(from));
                }
                self.handle_install_snapshot(from, m);
                Ok(())
            }
            Message::RequestVoteReply(r) if !pre => {
                let Some(from_position) = from_position else {
                    return Ok(());
                };
                // A grant stands for the whole term (the voter made it durable). A refusal from the same voter
                // may still arrive after it: the answer to an older, stale RequestVote, refused with this term.
                // It must not take the grant back.
                if r.vote_granted {
                    self.votes[from_position] = Some(true);
                } else if self.votes[from_position].is_none() {
                    self.votes[from_position] = Some(false);
                }
                if self.has_quorum_of_votes() {
                    self.become_leader();
                }
                Ok(())
            }
            Message::PreVoteReply(r) if pre => {
                let Some(from_position) = from_position else {
                    return Ok(());
                };
                // A grant carries the term we would stand in. (A refusal of a higher term made us a follower
                // already; one of our term or lower tells nothing.)
                if r.vote_granted
                    && (r.term == self.current_term + 1 || mutant(Mutant::PreVoteStaleGrantCounted))
                {
                    self.votes[from_position] = Some(true);
                    if self.has_quorum_of_votes() {
                        self.become_candidate(false);
                    }
                }
                Ok(())
            }
            // A vote reply at a pre-candidate answers its earlier candidacy in this term, a pre-vote reply at
            // a candidate its earlier pre-candidacy: neither counts now.
            Message::RequestVoteReply(_)
            | Message::PreVoteReply(_)
            | Message::AppendEntriesReply(_)
            | Message::InstallSnapshotReply(_) => Ok(()),
            Message::RequestVote(_) | Message::PreVote(_) | Message::TimeoutNow(_) => {
                unreachable!("handled in step")
            }
        }
    }

    fn step_leader(
        &mut self,
        from_position: Option<usize>,
        from: NodeId,
        message: Message,
    ) -> Result<(), StepError> {
        match message {
            Message::AppendEntries(m) => {
                // Two leaders in one term would break Election Safety; only a faulty peer sends this. Refuse it
                // (the pairing rule still wants a reply) without touching our state.
                self.refuse_append_entries(from, m.prev_log_index);
                Ok(())
            }
            Message::AppendEntriesReply(r) => {
                if let Some(position) = from_position {
                    self.handle_append_entries_reply(position, r);
                }
                Ok(())
            }
            Message::InstallSnapshot(_) => {
                // As for AppendEntries above: refused, untouched.
                self.send_install_snapshot_reply(from, 0);
                Ok(())
            }
            Message::InstallSnapshotReply(r) => {
                if let Some(position) = from_position {
                    self.handle_install_snapshot_reply(position, r);
                }
                Ok(())
            }
            Message::RequestVoteReply(_) => Ok(()),
            Message::PreVoteReply(_) => Ok(()),
            Message::RequestVote(_) | Message::PreVote(_) | Message::TimeoutNow(_) => {
                unreachable!("handled in step")
            }
        }
    }

    // ----------------------------------------------------------------------------------------------------------
    // RequestVote

    fn handle_request_vote(&mut self, from: NodeId, m: RequestVote) {
        // Figure 2, RequestVote receiver: grant if we have not voted for someone else in this term and the
        // candidate's log is at least as up-to-date as ours (§5.4.1).
        let can_vote = self.voted_for.is_none()
            || self.voted_for == Some(from)
            || (mutant(Mutant::LeaderGrantsVote) && self.role == Role::Leader);
        let up_to_date = if mutant(Mutant::UpToDateByIndexOnly) {
            m.last_log_index >= self.log.last_index()
        } else {
            self.log.is_up_to_date(m.last_log_index, m.last_log_term)
        };
        let granted = can_vote && up_to_date;
        if granted {
            if self.voted_for != Some(from) {
                self.voted_for = Some(from);
                self.persist_dirty |= !mutant(Mutant::VoteNotPersisted);
            }
            // Granting a vote defers our own candidacy (Figure 2, followers).
            self.reset_election_timer();
        }
        self.send_request_vote_reply(from, granted);
    }

    /// PreVote: grant if the pre-vote's term is above ours and the pre-candidate's log is at least as
    /// up-to-date as ours. Our term, vote and election timer stay as they are.
    fn handle_pre_vote(&mut self, from: NodeId, m: RequestVote) {
        let granted = m.term > self.current_term
            && (self.log.is_up_to_date(m.last_log_index, m.last_log_term)
                || mutant(Mutant::PreVoteIgnoresLog));
        if granted && mutant(Mutant::PreVoteRecordsVote) {
            self.voted_for = Some(from);
            self.persist_dirty = true;
        }
        self.send_pre_vote_reply(from, granted.then_some(m.term));
    }

    /// A PreVoteReply: granted in `granted`'s term (the request's), or refused in ours.
    fn send_pre_vote_reply(&mut self, to: NodeId, granted: Option<Term>) {
        let reply = RequestVoteReply {
            term: granted.unwrap_or(self.current_term),
            vote_granted: granted.is_some(),
        };
        self.send(to, Message::PreVoteReply(reply));
    }

    /// TimeoutNow from the leader of our term: a follower starts an election at once, without PreVote (the
    /// leader vouches for its log), marked as a transfer's so that servers in their lease answer it.
    fn handle_timeout_now(&mut self) {
        // A server the leader counts as a voter may since have learned of a configuration where it is not.
        if self.role == Role::Follower
            && self.current_term < MAX_TERM
            && self.membership.is_voter(self.id)
        {
            self.become_candidate(true);
        }
    }

    /// Whether this server is in its leader lease (with CheckQuorum): a leader always is, a follower once it
    /// has heard from the leader of its term (until its election timer runs out, which ends its role).
    fn in_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            Role::Follower => self.leader_id.is_some(),
            Role::Candidate | Role::PreCandidate => false,
        }
    }

    /// CheckQuorum, on a leader: whether the servers that answered it since its last check make a quorum
    /// with it. If so it starts counting again; if not it steps down.
    fn check_quorum(&mut self) -> bool {
        let me = self.self_position();
        let progress = &self.progress;
        let active = self
            .quorum
            .holds(|position| position == me || progress[position].recent_active);
        if active || mutant(Mutant::CheckQuorumNeverStepsDown) {
            if !mutant(Mutant::CheckQuorumKeepsRecent) {
                for pr in &mut self.progress {
                    pr.recent_active = false;
                }
            }
            true
        } else {
            self.become_follower(self.current_term, None);
            false
        }
    }

    fn has_quorum_of_votes(&self) -> bool {
        let votes = &self.votes;
        if mutant(Mutant::LearnerVoteCounted) {
            let granted = votes.iter().filter(|v| **v == Some(true)).count();
            return granted > self.membership.voters.len() / 2;
        }
        self.quorum.holds(|position| votes[position] == Some(true))
    }

    // ----------------------------------------------------------------------------------------------------------
    // AppendEntries, receiver side

    fn handle_append_entries(&mut self, from: NodeId, m: AppendEntries) -> Result<(), StepError> {
        debug_assert_eq!(self.role, Role::Follower);
        self.leader_id = Some(from);
        self.reset_election_timer();
        if mutant(Mutant::VoteClearedOnHeartbeat) && self.voted_for.is_some() {
            self.voted_for = None;
            self.persist_dirty = true;
        }

        let mut reply = AppendEntriesReply {
            term: self.current_term,
            success: false,
            prev_log_index: m.prev_log_index,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            read_round: m.read_round,
        };
        // Entries at or below the snapshot are committed, so they match the leader's (Leader Completeness):
        // check and store only what follows the snapshot.
        let snapshot_index = self.log.last_included_index();
        let (prev_log_index, prev_log_term, entries) = if m.prev_log_index < snapshot_index {
            let skip = usize::try_from(snapshot_index - m.prev_log_index)
                .unwrap_or(usize::MAX)
                .min(m.entries.len());
            (
                snapshot_index,
                self.log.last_included_term(),
                &m.entries[skip..],
            )
        } else {
            (m.prev_log_index, m.prev_log_term, &m.entries[..])
        };
        // Figure 2, step 2: reply false if the log has no entry at prev_log_index whose term is prev_log_term.
        // The hints let the leader skip a whole term (or the whole gap) per round trip.
        match self.log.term(prev_log_index) {
            None => {
                reply.conflict_index = self.log.last_index() + 1;
                self.send_append_entries_reply(from, reply);
                return Ok(());
            }
            Some(term) if term != prev_log_term && !mutant(Mutant::NoPrevTermCheck) => {
                reply.conflict_term = Some(term);
                reply.conflict_index = self.log.first_index_of_term(prev_log_index, term);
                self.send_append_entries_reply(from, reply);
                return Ok(());
            }
            Some(_) => {}
        }

        // A correct leader holds every committed entry, so it never conflicts with one of ours.
        if let Some(conflict) = self.first_conflict(prev_log_index, entries) {
            if conflict <= self.commit_index {
                return Err(StepError::Malformed(
                    "AppendEntries conflicts with a committed entry",
                ));
            }
        }
        // Steps 3 and 4: truncate only on an actual conflict, append what is new.
        let changed = if mutant(Mutant::TruncateOnMatch) {
            self.log.replace_after(prev_log_index, entries)
        } else {
            self.log.merge(prev_log_index, entries)
        };
        if let Some(changed) = changed {
            self.log_changed(changed);
            self.log_changed_membership(changed);
            if mutant(Mutant::ReplyBeforeDurable) {
                self.defer_persist = true;
            }
        }
        // Step 5: commit_index = min(leader_commit, index of last new entry). Only entries this request proved
        // to match count; entries past them may be stale. The request's own last index, also when its entries
        // lie inside the snapshot (then it is below commit_index): the reply acknowledges what was asked.
        let last_new = m.prev_log_index + m.entries.len() as Index;
        let cap = if mutant(Mutant::CommitBeyondLastNew) {
            self.log.last_index()
        } else {
            last_new
        };
        if m.leader_commit > self.commit_index {
            self.commit_index = self.commit_index.max(m.leader_commit.min(cap));
        }
        reply.success = true;
        reply.match_index = last_new;
        self.send_append_entries_reply(from, reply);
        Ok(())
    }

    // ----------------------------------------------------------------------------------------------------------
    // InstallSnapshot, receiver side (Figure 13)

    fn handle_install_snapshot(&mut self, from: NodeId, m: InstallSnapshot) {
        debug_assert_eq!(self.role, Role::Follower);
        self.leader_id = Some(from);
        self.reset_election_timer();
        // A snapshot not newer than what is committed here would take the state machine backwards; the log
        // already matches the leader's through it, so the reply can say so all the same.
        if m.last_included_index > self.commit_index {
            // Steps 6 and 7: keep the entries after the snapshot if the log holds its last entry, else discard
            // the whole log.
            let kept = if mutant(Mutant::SnapshotIgnoresTerm) {
                self.log
                    .compact_ignoring_term(m.last_included_index, m.last_included_term)
            } else {
                self.log
                    .compact(m.last_included_index, m.last_included_term)
            };
            if kept && mutant(Mutant::SnapshotDropsSuffix) {
                self.log.truncate_after_snapshot();
            }
            if !kept || mutant(Mutant::SnapshotDropsSuffix) {
                self.log_changed(m.last_included_index + 1);
            }
            self.log.set_snapshot_membership(*m.membership);
            self.find_membership();
            self.snapshot = m.data;
            self.snapshot_dirty = true;
            self.persist_dirty = true;
            // Step 8: the service resets to the snapshot before anything after it is applied.
            self.commit_index = m.last_included_index;
            self.snapshot_to_apply = true;
        }
        self.send_install_snapshot_reply(from, m.last_included_index);
    }

    /// The first index at which `entries` (placed after `prev_index`) disagree with the log, if any.
    fn first_conflict(&self, prev_index: Index, entries: &[Entry]) -> Option<Index> {
        entries.iter().enumerate().find_map(|(offset, entry)| {
            let index = prev_index + 1 + offset as Index;
            match self.log.term(index) {
                Some(term) if term != entry.term => Some(index),
                _ => None,
            }
        })
    }

    // ----------------------------------------------------------------------------------------------------------
    // AppendEntries, leader side

    fn handle_append_entries_reply(&mut self, position: usize, r: AppendEntriesReply) {
        let last = self.log.last_index();
        let snapshot_index = self.log.last_included_index();
        // Our log only grows while we lead, so a success for this term cannot claim more than we hold.
        if r.success && r.match_index > last {
            return;
        }
        self.progress[position].recent_active = true;
        // Any answer in our term acknowledges our reads of its round and earlier.
        self.reads.ack(position, r.read_round);
        let me = self.self_position();
        self.reads.confirm(me, &self.quorum, &mut self.read_states);
        let pr = &mut self.progress[position];
        if r.success {
            pr.match_index = if mutant(Mutant::MatchRegress) {
                r.match_index
            } else {
                pr.match_index.max(r.match_index)
            };
            match pr.mode {
                Mode::Probe => {
                    // The probe found where the logs agree: stream from there.
                    pr.next_index = pr.match_index + 1;
                    pr.enter(Mode::Replicate);
                }
                Mode::Replicate => {
                    pr.next_index = pr.next_index.max(pr.match_index + 1);
                    pr.acknowledged(pr.match_index);
                }
                // The follower holds everything the snapshot on its way covers (a heartbeat from the
                // snapshot's last entry found it): stream from there, without waiting for the snapshot.
                Mode::Snapshot { .. } if pr.match_index >= snapshot_index => {
                    pr.next_index = pr.match_index + 1;
                    pr.enter(Mode::Replicate);
                }
                // An older success: the follower still needs the snapshot, which is on its way.
                Mode::Snapshot { .. } => pr.next_index = pr.next_index.max(pr.match_index + 1),
            }
            let behind = pr.next_index <= last && !pr.snapshot_in_flight();
            self.maybe_commit();
            if self.role != Role::Leader {
                return;
            }
            self.maybe_send_timeout_now(position);
            // Send more only if something is still unsent (a batch was cut short, or the probe just landed);
            // entries already in flight are not sent again.
            if behind {
                self.send_append(position);
            }
            return;
        }

        // A rejection. Ignore stale ones: at or below an index the follower has acknowledged, or, while probing,
        // for another probe than the one outstanding. While a snapshot is on its way every rejection is
        // ignored: it answers a heartbeat or an earlier probe, and the snapshot is what the follower needs.
        if pr.snapshot_in_flight()
            || r.prev_log_index <= pr.match_index
            || (pr.mode == Mode::Probe && r.prev_log_index != pr.next_index - 1)
        {
            return;
        }
        // Back up with the follower's hint: past the leader's last entry of the conflicting term if it has one
        // (the follower may share that term's prefix), else to the follower's first entry of that term, or to the
        // end of a too-short log.
        let hinted = match r.conflict_term {
            Some(term) => self
                .log
                .last_index_of_term(term, r.prev_log_index)
                .map_or(r.conflict_index, |i| i + 1),
            None => r.conflict_index,
        };
        // Always strictly back up (progress), never past our own log (a bogus hint), and never below what is
        // known to match.
        pr.next_index = hinted
            .min(r.prev_log_index)
            .min(last + 1)
            .max(pr.match_index + 1);
        pr.enter(Mode::Probe);
        self.send_append(position);
    }

    fn handle_install_snapshot_reply(&mut self, position: usize, r: InstallSnapshotReply) {
        let last = self.log.last_index();
        // 0: refused for its term (we are leader of that term, so this is a faulty peer); beyond our log: absurd.
        if r.match_index == 0 || r.match_index > last {
            return;
        }
        self.progress[position].recent_active = true;
        // The answer ends the wait for the snapshot. If it acknowledges an older snapshot than the current
        // one, `send_append` below sends the current one.
        let pr = &mut self.progress[position];
        pr.match_index = pr.match_index.max(r.match_index);
        pr.next_index = pr.next_index.max(pr.match_index + 1);
        pr.enter(Mode::Replicate);
        let behind = pr.next_index <= last;
        self.maybe_commit();
        if self.role != Role::Leader {
            return;
        }
        self.maybe_send_timeout_now(position);
        if behind {
            self.send_append(position);
        }
    }

    /// Commits the highest index replicated on a majority, but (Figure 8, §5.4.2) only if its entry is from the
    /// current term; earlier entries then commit with it.
    fn maybe_commit(&mut self) {
        let me = self.self_position();
        let (last, progress) = (self.log.last_index(), &self.progress);
        let majority_match = self.quorum.committed_index(
            |position| {
                if position == me {
                    last
                } else {
                    progress[position].match_index
                }
            },
            &mut self.match_scratch,
        );
        if majority_match > self.commit_index
            && (self.log.term(majority_match) == Some(self.current_term)
                || mutant(Mutant::Figure8Commit))
        {
            self.commit_index = majority_match;
            // A leader that committed a configuration in which it does not vote has handed the cluster over
            // (§6 of the paper): it steps down.
            if !self.membership.is_voter(self.id)
                && self.membership_index <= self.commit_index
                && !mutant(Mutant::RemovedLeaderStays)
            {
                self.become_follower(self.current_term, None);
            }
        }
    }

    /// Sends every follower an AppendEntries from its next_index: the heartbeat. A follower whose window of
    /// messages in flight is full gets one without entries, after the last entry sent to it: if it holds
    /// them all, its answer frees the window; if one was lost, its refusal starts a probe. (If that entry is
    /// compacted since, the follower needs the snapshot: `send_append` sends it.)
    fn broadcast_append(&mut self) {
        for k in 0..self.followers.len() {
            let position = self.followers[k];
            if self.window_full(position)
                && self.progress[position].next_index > self.log.last_included_index()
            {
                let prev_log_index = self.progress[position].next_index - 1;
                self.send_append_entries(position, prev_log_index, Vec::new());
            } else {
                self.send_append(position);
            }
        }
    }

    /// Whether the leader streams to the follower at `position` and may send it no more entries until it
    /// answers (flow control, `Config::max_inflight_messages`).
    fn window_full(&self, position: usize) -> bool {
        let pr = &self.progress[position];
        pr.mode == Mode::Replicate && pr.inflight.len() >= self.config.max_inflight_messages
    }

    /// Sends the follower at `position`, which the leader streams to, every entry not yet sent to it, in as
    /// many AppendEntries as the batch limits need and the window of messages in flight allows: a batch of
    /// proposals longer than one message goes out at once. (After an answer, the leader sends one more
    /// message, if something is unsent: answers pace a follower that is catching up.)
    fn send_unsent(&mut self, position: usize) {
        // The first message goes whatever the window: a follower whose next entry is compacted gets the
        // snapshot even while its window is full.
        self.send_append(position);
        let last = self.log.last_index();
        while self.progress[position].mode == Mode::Replicate
            && self.progress[position].next_index <= last
            && !self.window_full(position)
        {
            self.send_append(position);
        }
    }

    /// Sends one AppendEntries to the follower at `position`, carrying entries from its next_index (at most a
    /// batch). In `Replicate` mode next_index moves past them at once, so the next message carries only newer
    /// entries, and nothing is sent while the window of messages in flight is full; in `Probe` mode it waits
    /// for the reply.
    /// A follower whose next_index lies inside the snapshot gets the snapshot instead, or, while the snapshot is
    /// on its way to it, an AppendEntries without entries from the snapshot's last entry: a heartbeat, so that
    /// its election timer keeps being reset. That one fails unless the follower holds the entry (its refusal
    /// is ignored); if it holds it, the success ends the wait.
    fn send_append(&mut self, position: usize) {
        debug_assert_eq!(self.role, Role::Leader);
        let pr = &self.progress[position];
        let snapshot_index = self.log.last_included_index();
        if pr.next_index <= snapshot_index {
            if pr.snapshot_in_flight() {
                self.send_append_entries(position, snapshot_index, Vec::new());
            } else {
                self.send_snapshot(position);
            }
            return;
        }
        if self.window_full(position) {
            return;
        }
        let entries = self.batch_from(pr.next_index).to_vec();
        let prev_log_index = pr.next_index - 1;
        let pr = &mut self.progress[position];
        if pr.mode == Mode::Replicate && !entries.is_empty() {
            pr.next_index += entries.len() as Index;
            pr.inflight.push_back(pr.next_index - 1);
        }
        self.send_append_entries(position, prev_log_index, entries);
    }

    /// The entries one AppendEntries carries from `from`: at most `max_entries_per_message`, and as many as
    /// fit in `max_bytes_per_message` of commands, but at least one if the log has any.
    fn batch_from(&self, from: Index) -> &[Entry] {
        let entries = self
            .log
            .slice_from(from, self.config.max_entries_per_message);
        let mut bytes = 0usize;
        let fit = entries
            .iter()
            .position(|e| {
                bytes = bytes.saturating_add(e.command_len());
                bytes > self.config.max_bytes_per_message
            })
            .map_or(entries.len(), |k| k.max(1));
        &entries[..fit]
    }

    /// Sends the follower at `position` an AppendEntries with `entries` after `prev_log_index`.
    fn send_append_entries(&mut self, position: usize, prev_log_index: Index, entries: Vec<Entry>) {
        let prev_log_term = self
            .log
            .term(prev_log_index)
            .expect("prev_log_index is in the log, at or after the snapshot");
        let message = Message::AppendEntries(AppendEntries {
            term: self.current_term,
            leader_id: self.id,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_round: self.reads.round(),
        });
        let to = self.peers[position];
        self.send(to, message);
    }

    /// Sends the snapshot to the follower at `position`, and waits for its answer (at most
    /// `snapshot_resend_ticks`) before sending it again: a snapshot is large. The message shares the snapshot's
    /// bytes with the node; they are not copied.
    fn send_snapshot(&mut self, position: usize) {
        self.progress[position].enter(Mode::Snapshot {
            resend_in: self.config.snapshot_resend_ticks,
        });
        let message = Message::InstallSnapshot(InstallSnapshot {
            term: self.current_term,
            leader_id: self.id,
            last_included_index: self.log.last_included_index(),
            last_included_term: self.log.last_included_term(),
            membership: Box::new(self.log.snapshot_membership().clone()),
            data: Arc::clone(&self.snapshot),
        });
        let to = self.peers[position];
        self.send(to, message);
    }

    // ----------------------------------------------------------------------------------------------------------
    // Helpers

    /// Records that the log changed from `index` on, so the next `Ready` persists it.
    fn log_changed(&mut self, index: Index) {
        self.persist_dirty = true;
        self.log_changed_from = Some(self.log_changed_from.map_or(index, |i| i.min(index)));
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.outbox.push(Envelope {
            from: self.id,
            to,
            seq,
            message,
        });
    }

    fn send_request_vote_reply(&mut self, to: NodeId, vote_granted: bool) {
        let reply = RequestVoteReply {
            term: self.current_term,
            vote_granted,
        };
        self.send(to, Message::RequestVoteReply(reply));
    }

    fn send_append_entries_reply(&mut self, to: NodeId, reply: AppendEntriesReply) {
        self.send(to, Message::AppendEntriesReply(reply));
    }

    /// A refusal with no hint: the sender is stale or faulty and only needs our term. It acknowledges no read
    /// (read round 0): the request comes from an older leadership, whose read rounds are numbered apart from
    /// those of the sender's current one, so its round says nothing about when this reply left.
    fn refuse_append_entries(&mut self, to: NodeId, prev_log_index: Index) {
        let reply = AppendEntriesReply {
            term: self.current_term,
            success: false,
            prev_log_index,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            read_round: 0,
        };
        self.send_append_entries_reply(to, reply);
    }

    fn send_install_snapshot_reply(&mut self, to: NodeId, match_index: Index) {
        let reply = InstallSnapshotReply {
            term: self.current_term,
            match_index,
        };
        self.send(to, Message::InstallSnapshotReply(reply));
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.randomized_election_timeout = self
            .rng
            .random_range(self.config.election_ticks_min..self.config.election_ticks_max);
    }

    fn position(&self, id: NodeId) -> Option<usize> {
        self.peers.iter().position(|&p| p == id)
    }

    fn self_position(&self) -> usize {
        self.me
    }

    /// The configuration in force at `index` (at or after the snapshot's last index): the last configuration
    /// entry at or below it, or the snapshot's.
    fn membership_at(&self, index: Index) -> Membership {
        match self.log.last_config_at(index) {
            Some((_, m)) => m.clone(),
            None => self.log.snapshot_membership().clone(),
        }
    }

    /// Finds the configuration in force again, after the log lost entries (a truncation, a snapshot that
    /// replaced it) or on start: the last configuration entry in the log, or the snapshot's.
    fn find_membership(&mut self) {
        let (index, membership) = match self.log.last_config_at(self.log.last_index()) {
            Some((index, m)) => (index, m.clone()),
            None => (
                self.log.last_included_index(),
                self.log.snapshot_membership().clone(),
            ),
        };
        self.adopt_membership(membership, index);
    }

    /// The log changed from `from` on: if that took the configuration entry in force away, finds the
    /// configuration again; else the last configuration entry among the new entries, if any, is in force.
    fn log_changed_membership(&mut self, from: Index) {
        if from <= self.membership_index && !mutant(Mutant::TruncatedConfigKept) {
            self.find_membership();
        } else if let Some((index, m)) = self.log.last_config_between(from, self.log.last_index()) {
            // Only the new entries are scanned: a follower pays for the configuration only where it is.
            let m = m.clone();
            self.adopt_membership(m, index);
        }
    }

    /// Puts `membership` (from the entry at `index`) in force.
    fn adopt_membership(&mut self, membership: Membership, index: Index) {
        self.membership = membership;
        self.membership_index = index;
        self.rebuild_peers(self.role == Role::Leader);
    }

    /// Rebuilds `peers` for the configuration in force: its members and this server, and with `keep` the
    /// servers already there (a leader keeps what it knows of a server it removed until its term ends, as
    /// `match_index` never decreases in a term, should the server be added back). The per-peer state moves
    /// along, by id; a new peer starts as a leader's peers do when it takes office. A transfer to a server
    /// that no longer votes is given up.
    fn rebuild_peers(&mut self, keep: bool) {
        let mut peers: Vec<NodeId> = self.membership.members().into_iter().collect();
        if keep {
            peers.extend_from_slice(&self.peers);
            peers.sort_unstable();
            peers.dedup();
        }
        if let Err(at) = peers.binary_search(&self.id) {
            peers.insert(at, self.id);
        }
        if peers != self.peers {
            let last = self.log.last_index();
            let old = std::mem::take(&mut self.peers);
            let moved = |p: &NodeId| old.iter().position(|o| o == p);
            self.progress = peers
                .iter()
                .map(|p| moved(p).map_or(Progress::new(last), |k| self.progress[k].clone()))
                .collect();
            self.votes = peers
                .iter()
                .map(|p| moved(p).and_then(|k| self.votes[k]))
                .collect();
            self.reads.remap(peers.len(), |k| moved(&peers[k]));
            self.me = peers.binary_search(&self.id).expect("inserted above");
            self.peers = peers;
        }
        self.followers = (0..self.peers.len())
            .filter(|&p| p != self.me && self.membership.is_member(self.peers[p]))
            .collect();
        self.transfer = self.transfer.and_then(|t| {
            let position = self.position(t.target)?;
            self.membership
                .is_voter(t.target)
                .then_some(Transfer { position, ..t })
        });
        self.quorum = Quorum::new(&self.membership, &self.peers);
    }

    /// Internal invariants (TigerBeetle style: asserted in the code, in debug builds, after every step).
    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            assert!(self.last_applied <= self.commit_index);
            assert!(
                self.commit_index <= self.log.last_index(),
                "commit_index beyond the log"
            );
            assert!(
                self.commit_index >= self.log.last_included_index(),
                "the snapshot holds only committed entries"
            );
            assert_eq!(
                self.snapshot_to_apply,
                self.last_applied < self.log.last_included_index(),
                "a snapshot newer than last_applied is always on its way to the service"
            );
            assert!(self.log.last_term() <= self.current_term);
            if self.membership_index > self.log.last_included_index() {
                assert_eq!(
                    self.log
                        .entry(self.membership_index)
                        .and_then(Entry::membership),
                    Some(&self.membership),
                    "the configuration in force is its entry's"
                );
            } else {
                assert_eq!(&self.membership, self.log.snapshot_membership());
            }
            assert_eq!(self.peers[self.me], self.id);
            assert!(self.peers.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(self.progress.len(), self.peers.len());
            assert_eq!(self.votes.len(), self.peers.len());
            match self.role {
                Role::Leader => {
                    assert_eq!(self.voted_for, Some(self.id));
                    assert_eq!(self.leader_id, Some(self.id));
                    for (position, pr) in self.progress.iter().enumerate() {
                        if position != self.self_position() {
                            pr.check();
                            assert!(pr.next_index <= self.log.last_index() + 1);
                            assert!(pr.inflight.len() <= self.config.max_inflight_messages);
                            if pr.snapshot_in_flight() {
                                assert!(
                                    pr.next_index <= self.log.last_included_index(),
                                    "a snapshot is awaited only by a follower that needs it"
                                );
                            }
                        }
                    }
                }
                Role::Candidate => assert_eq!(self.voted_for, Some(self.id)),
                Role::Follower | Role::PreCandidate => {}
            }
            assert!(
                self.role == Role::Leader || self.transfer.is_none(),
                "only a leader transfers"
            );
            if self.role == Role::Leader {
                let mut round = 0;
                for read in self.reads.pending() {
                    assert!(read.round > round && read.round <= self.reads.round());
                    assert!(read.index <= self.commit_index);
                    round = read.round;
                }
            } else {
                assert_eq!(self.reads.round(), 0, "only a leader has read rounds");
                assert_eq!(self.reads.pending().count(), 0);
            }
        }
    }
}

/// Rejects messages no correct server sends, before they can touch any state. Terms above [`MAX_TERM`] and
/// indexes above [`MAX_INDEX`] are among them, so that whatever is accepted leaves the node's own arithmetic
/// (`current_term + 1`, `last_index + 1`, `next_index`, `match_index + 1`) far from overflowing.
fn validate(from: NodeId, message: &Message) -> Result<(), StepError> {
    if message.term() > MAX_TERM {
        return Err(StepError::Malformed("term above MAX_TERM"));
    }
    match message {
        Message::RequestVote(m) => {
            if m.candidate_id != from {
                return Err(StepError::Malformed(
                    "RequestVote candidate_id differs from sender",
                ));
            }
            if m.last_log_term > m.term {
                return Err(StepError::Malformed(
                    "RequestVote last_log_term above its term",
                ));
            }
            if m.last_log_index > MAX_INDEX {
                return Err(StepError::Malformed(
                    "RequestVote last_log_index above MAX_INDEX",
                ));
            }
        }
        Message::PreVote(m) => {
            // The term is the one the sender would stand in: above its own, so at least 1.
            if m.candidate_id != from || m.term == 0 || m.transfer {
                return Err(StepError::Malformed(
                    "PreVote candidate_id differs from sender, its term is 0, or it claims a transfer",
                ));
            }
            if m.last_log_term >= m.term || m.last_log_index > MAX_INDEX {
                return Err(StepError::Malformed(
                    "PreVote last_log_term not below its term, or last_log_index above MAX_INDEX",
                ));
            }
        }
        Message::AppendEntries(m) => {
            if m.leader_id != from {
                return Err(StepError::Malformed(
                    "AppendEntries leader_id differs from sender",
                ));
            }
            if m.prev_log_term > m.term || (m.prev_log_index == 0 && m.prev_log_term != 0) {
                return Err(StepError::Malformed(
                    "AppendEntries prev_log_term is impossible",
                ));
            }
            if m.prev_log_index
                .checked_add(m.entries.len() as Index)
                .is_none_or(|last| last > MAX_INDEX)
                || m.leader_commit > MAX_INDEX
            {
                return Err(StepError::Malformed(
                    "AppendEntries indexes above MAX_INDEX",
                ));
            }
            let mut previous = m.prev_log_term;
            for entry in &m.entries {
                if entry.term < previous || entry.term > m.term || entry.term == 0 {
                    return Err(StepError::Malformed(
                        "AppendEntries entry terms are impossible",
                    ));
                }
                if entry.membership().is_some_and(|c| c.validate().is_err()) {
                    return Err(StepError::Malformed(
                        "AppendEntries carries an invalid configuration",
                    ));
                }
                previous = entry.term;
            }
        }
        Message::InstallSnapshot(m) => {
            if m.leader_id != from {
                return Err(StepError::Malformed(
                    "InstallSnapshot leader_id differs from sender",
                ));
            }
            if m.last_included_index == 0
                || m.last_included_term == 0
                || m.last_included_term > m.term
            {
                return Err(StepError::Malformed(
                    "InstallSnapshot last included index or term is impossible",
                ));
            }
            if m.last_included_index > MAX_INDEX {
                return Err(StepError::Malformed(
                    "InstallSnapshot last_included_index above MAX_INDEX",
                ));
            }
            // Empty: the sender does not know the configuration at its snapshot's index (it joined with no
            // configuration and compacted entries from before the one that added it); later entries say it.
            if *m.membership != Membership::default() && m.membership.validate().is_err() {
                return Err(StepError::Malformed(
                    "InstallSnapshot carries an invalid configuration",
                ));
            }
        }
        Message::AppendEntriesReply(r) => {
            // A conflict hint may name the index after the follower's last, which is at most MAX_INDEX.
            if r.prev_log_index > MAX_INDEX
                || r.match_index > MAX_INDEX
                || r.conflict_index > MAX_INDEX + 1
            {
                return Err(StepError::Malformed(
                    "AppendEntriesReply indexes above MAX_INDEX",
                ));
            }
            if r.conflict_term.is_some_and(|t| t > r.term) {
                return Err(StepError::Malformed(
                    "AppendEntriesReply conflict_term above its term",
                ));
            }
        }
        Message::InstallSnapshotReply(r) => {
            if r.match_index > MAX_INDEX {
                return Err(StepError::Malformed(
                    "InstallSnapshotReply match_index above MAX_INDEX",
                ));
            }
        }
        Message::TimeoutNow(m) => {
            if m.leader_id != from {
                return Err(StepError::Malformed(
                    "TimeoutNow leader_id differs from sender",
                ));
            }
        }
        Message::RequestVoteReply(_) | Message::PreVoteReply(_) => {}
    }
    Ok(())
}
