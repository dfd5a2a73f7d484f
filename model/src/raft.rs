//! The Raft specification: the actions of Figure 2, each as a public guard and a public effect.
//!
//! `actions()` enumerates a bounded, canonical set of actions for exhaustive checking; the guards
//! state everything Raft allows, so the conformance checker can call them with the parameters an
//! implementation chose (any batch of entries, any commit point, any back-up hint).

use crate::bounds::{Bounds, Bug};
use crate::coverage::{Branch, Condition as C, Coverage, Decision as D, Evaluation, StuckAt};
use crate::state::{
    config_index, flags, term_at, AppendOutcome, Body, Config, Entry, Index, Log, Message, Network,
    PendingRead, Role, Server, ServerId, State, Term, Value, MAX_SERVERS,
};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// One atomic step of the cluster. Each variant carries all its parameters. Its `Debug` is the
/// sentence of [`crate::display::action`], so that whatever prints actions (the Explorer's
/// progress and recent path among them) words them as the path list does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// A follower or candidate's election timer fires: it becomes a candidate in the next term,
    /// votes for itself and sends RequestVote to every peer.
    Timeout(ServerId),
    /// A client hands a value to a leader, which appends it to its log.
    ClientRequest(ServerId, Value),
    /// A leader appends a configuration entry (a membership change), which takes effect at once.
    ChangeConfig(ServerId, Config),
    /// A leader sends `peer` the `count` entries after `prev_log_index` (none: a heartbeat).
    AppendEntries {
        /// The sender.
        leader: ServerId,
        /// The receiver.
        peer: ServerId,
        /// prevLogIndex of Figure 2: the index of the entry just before those sent.
        prev_log_index: Index,
        /// How many entries after `prev_log_index` to send (0: a heartbeat).
        count: Index,
    },
    /// A leader advances its commit index to the given index.
    AdvanceCommitIndex(ServerId, Index),
    /// A server replaces its log through the given (committed) index by a snapshot.
    Compact(ServerId, Index),
    /// A leader sends `peer` its snapshot.
    InstallSnapshot {
        /// The sender.
        leader: ServerId,
        /// The receiver.
        peer: ServerId,
    },
    /// A leader begins a read (ReadIndex): it records its commit index as the read index, to
    /// serve the read once a majority has answered an AppendEntries sent after this.
    ReadIndex(ServerId),
    /// A leader revises its guess of the next index to send `peer`. Figure 2 moves `next_index`
    /// on replies (back on a rejection, forward on a success); an implementation may also move it
    /// forward optimistically when it sends a batch (pipelining), back by whole terms with the
    /// conflict hints, or not at all on a stale rejection. None of that touches safety, which
    /// holds for any `prev_log_index` (see `can_append_entries`), so Raft allows any value that
    /// stays above what is known to match and at most one past the leader's log. The enumerator
    /// never offers this action; the conformance checker uses it to follow an implementation.
    SetNextIndex {
        /// The leader whose `next_index` changes.
        leader: ServerId,
        /// The peer it is for.
        peer: ServerId,
        /// The new `next_index` for `peer`.
        index: Index,
    },
    /// The message's receiver handles it (stepping down first on a higher term) and replies.
    Receive(Message),
    /// A server crashes and restarts with only its persistent state.
    Crash(ServerId),
    /// The network loses one copy of the message.
    Drop(Message),
    /// The network duplicates the message.
    Duplicate(Message),
    /// A follower's election timer runs out (CheckQuorum): it no longer ignores RequestVotes and
    /// PreVotes of higher terms. Its election timeout is [`Action::Timeout`].
    LeaseExpires(ServerId),
    /// A leader's quorum check (CheckQuorum, once per election timeout): it steps down unless it
    /// has heard from a quorum since the last one.
    CheckQuorum(ServerId),
    /// A leader hands its leadership to an up-to-date voter: it sends it TimeoutNow.
    TransferLeader {
        /// The leader that hands over.
        leader: ServerId,
        /// The voter it hands over to, which receives TimeoutNow.
        target: ServerId,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::display::action(self))
    }
}

/// The model: the bounds of the check and, optionally, one bug switch.
#[derive(Clone, Debug)]
pub struct RaftModel {
    /// The bounds of the search, and which of Raft's extensions (PreVote, CheckQuorum) the
    /// servers run.
    pub bounds: Bounds,
    /// The departure from Raft switched on, if any (`None`: Raft as specified).
    pub bug: Option<Bug>,
    /// Whether `next_state` renames servers into a canonical order (symmetry reduction, for
    /// exhaustive checking). Off for the Explorer and for callers that follow one naming.
    pub symmetry: bool,
    /// Set by `check`: which sometimes-properties have held so far (see
    /// `properties::for_check`).
    pub witnessed: Option<Arc<AtomicU16>>,
    /// Set by `check --coverage`: how often each outcome of each action was taken.
    pub coverage: Option<Arc<Coverage>>,
    /// Set by `--stuck`: one condition of one decision forced to a value wherever it is evaluated
    /// (a departure from Raft in that condition alone, as a bug switch is in one line).
    pub stuck: Option<StuckAt>,
}

/// The conditions of the up-to-date check: last term higher, last term equal, last index at
/// least, for a vote and for a pre-vote.
type UpToDate = [C; 3];
const VOTE_UP_TO_DATE: UpToDate = [C::LastTermHigher, C::LastTermEqual, C::LastIndexAtLeast];
const PRE_VOTE_UP_TO_DATE: UpToDate = [
    C::PreVoteLastTermHigher,
    C::PreVoteLastTermEqual,
    C::PreVoteLastIndexAtLeast,
];

/// Whether a candidate's log (last term, last index) is at least as up-to-date as `server`'s
/// (§5.4.1), its two parts recorded in `e` as the conditions `c`.
fn log_up_to_date(
    e: &mut Evaluation,
    c: UpToDate,
    last_log_term: Term,
    last_log_index: Index,
    server: &Server,
) -> bool {
    let my_term = server.last_term();
    e.at(c[0], last_log_term > my_term)
        || (e.at(c[1], last_log_term == my_term)
            && e.at(c[2], last_log_index >= server.last_index()))
}

/// The number of servers that make a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

impl RaftModel {
    /// A model with these bounds and no bug.
    pub fn new(bounds: Bounds) -> Self {
        RaftModel {
            bounds,
            bug: None,
            symmetry: false,
            witnessed: None,
            coverage: None,
            stuck: None,
        }
    }

    /// A model with these bounds and a bug switched on.
    pub fn with_bug(bounds: Bounds, bug: Option<Bug>) -> Self {
        RaftModel {
            bounds,
            bug,
            symmetry: false,
            witnessed: None,
            coverage: None,
            stuck: None,
        }
    }

    /// Records that witness number `bit` holds in some state, unless it already did (the
    /// condition is then not even evaluated). Does nothing outside `check`.
    pub fn record_witness(&self, bit: usize, holds: impl FnOnce() -> bool) {
        if let Some(seen) = &self.witnessed {
            let mask = 1 << bit;
            if seen.load(Ordering::Relaxed) & mask == 0 && holds() {
                seen.fetch_or(mask, Ordering::Relaxed);
            }
        }
    }

    /// Evaluates `decision` with `f`, which tests each of its conditions through
    /// [`Evaluation::at`]. With coverage on, `f` first runs once more for each condition it
    /// evaluated, with that condition alone flipped, and each condition whose flip changes the
    /// outcome is recorded as deciding, with its value. The real evaluation runs last, so what
    /// `f` assigns is what it assigns there.
    #[inline]
    pub fn decide(&self, decision: D, mut f: impl FnMut(&mut Evaluation) -> bool) -> bool {
        if let Some(c) = &self.coverage {
            let mut e = Evaluation::new(self.stuck);
            let outcome = f(&mut e);
            for &condition in decision.conditions() {
                if let Some(value) = e.value(condition) {
                    if f(&mut Evaluation::flipping(self.stuck, condition)) != outcome {
                        c.record(condition, value);
                    }
                }
            }
        }
        f(&mut Evaluation::new(self.stuck))
    }

    /// Counts one execution of `branch`, when coverage is on.
    pub fn hit(&self, branch: Branch) {
        if let Some(c) = &self.coverage {
            c.hit(branch);
        }
    }

    fn n(&self) -> usize {
        self.bounds.servers as usize
    }

    /// Whether the servers in `set` include a majority of `voters` (the quorum-of-two bug: two
    /// of them, whatever their number).
    fn majority_in(&self, voters: u8, set: u8) -> bool {
        let n = voters.count_ones() as usize;
        let need = if self.has_bug(Bug::QuorumOfTwo) {
            2.min(n)
        } else {
            majority(n)
        };
        (set & voters).count_ones() as usize >= need
    }

    /// Whether the servers in `set` make a quorum of `config` (of votes, of replicas for a
    /// commit, of acknowledgements for a read): a majority of its voters and, while it is joint,
    /// a majority of the old voters too. The joint-new-quorum-only bug skips the old majority.
    pub fn quorum_holds(&self, config: Config, set: u8) -> bool {
        if !config.is_joint() {
            return self.majority_in(config.voters, set);
        }
        self.decide(D::JointQuorum, |e| {
            e.at(C::NewVotersMajority, self.majority_in(config.voters, set))
                && (e.at(
                    C::OldVotersMajority,
                    self.majority_in(config.old_voters, set),
                ) || self.has_bug(Bug::JointNewQuorumOnly))
        })
    }

    /// The configuration the cluster starts with: servers `0..voters` vote.
    pub fn initial_config(&self) -> Config {
        Config::of_voters(self.bounds.voters)
    }

    fn has_bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    /// The initial state: every server a follower in term 0 with an empty log, no message.
    pub fn init_state(&self) -> State {
        State {
            servers: (0..self.n()).map(|_| Server::new()).collect(),
            initial: self.initial_config(),
            network: Network::default(),
            elections: SmallVec::new(),
            committed: SmallVec::new(),
            flags: 0,
            served: SmallVec::new(),
            crashes: 0,
            drops: 0,
            dups: 0,
            reads: 0,
            changes: 0,
            transfers: 0,
        }
    }

    fn is_server(&self, i: ServerId) -> bool {
        (i as usize) < self.n()
    }

    // ----- Guards: what Raft allows, with no bounds. -----

    /// Whether `action` may happen in `state`.
    pub fn enabled(&self, state: &State, action: &Action) -> bool {
        match action {
            Action::Timeout(i) => self.can_timeout(state, *i),
            Action::ClientRequest(i, _) => self.can_client_request(state, *i),
            Action::ChangeConfig(i, config) => self.can_change_config(state, *i, *config),
            Action::AppendEntries {
                leader,
                peer,
                prev_log_index,
                count,
            } => self.can_append_entries(state, *leader, *peer, *prev_log_index, *count),
            Action::AdvanceCommitIndex(i, index) => {
                self.can_advance_commit_index(state, *i, *index)
            }
            Action::Compact(i, index) => self.can_compact(state, *i, *index),
            Action::InstallSnapshot { leader, peer } => {
                self.can_install_snapshot(state, *leader, *peer)
            }
            Action::SetNextIndex {
                leader,
                peer,
                index,
            } => self.can_set_next_index(state, *leader, *peer, *index),
            Action::ReadIndex(i) => self.can_read_index(state, *i),
            Action::Receive(m) => self.can_receive(state, m),
            Action::Crash(i) => self.is_server(*i),
            Action::Drop(m) | Action::Duplicate(m) => state.network.count(m) > 0,
            Action::LeaseExpires(i) => self.is_server(*i) && state.server(*i).lease,
            Action::CheckQuorum(i) => {
                self.bounds.check_quorum
                    && self.is_server(*i)
                    && state.server(*i).role == Role::Leader
            }
            Action::TransferLeader { leader, target } => {
                self.can_transfer_leader(state, *leader, *target)
            }
        }
    }

    /// A leader may hand over to another voter of its configuration that holds its whole log
    /// (§3.10 of the dissertation).
    pub fn can_transfer_leader(&self, state: &State, leader: ServerId, target: ServerId) -> bool {
        self.leader_and_peer(state, leader, target)
            && state.config(leader).is_voter(target)
            && state.server(leader).match_index[target as usize]
                == state.server(leader).last_index()
    }

    /// A follower or a candidate may time out if it is a voter in its own configuration; a
    /// leader does not, and neither does a learner or a server that is not (or no longer) a
    /// member.
    pub fn can_timeout(&self, state: &State, i: ServerId) -> bool {
        self.is_server(i) && state.server(i).role != Role::Leader && state.config(i).is_voter(i)
    }

    /// A leader may append a configuration entry when its last one is committed and it has
    /// committed an entry of its current term (the fix to the single-server change bug, §4.1 of
    /// the dissertation), and the new configuration is one step from its own: from a joint
    /// configuration only to its C_new; otherwise to a joint one whose old voters are its voters,
    /// or to one that adds or removes at most one voter (learners may change freely). Every server
    /// it names exists, no server both votes and learns, and someone votes.
    pub fn can_change_config(&self, state: &State, i: ServerId, new: Config) -> bool {
        if !self.is_server(i) || state.server(i).role != Role::Leader {
            return false;
        }
        let all = Config::of_voters(self.bounds.servers).voters;
        let well_formed = new.voters != 0
            && new.members() & !all == 0
            && (new.voters | new.old_voters) & new.learners == 0;
        let old = state.config(i);
        let step = if old.is_joint() {
            new.voters == old.voters && !new.is_joint()
        } else if new.is_joint() {
            new.old_voters == old.voters && new.voters != old.voters
        } else {
            (new.voters ^ old.voters).count_ones() <= 1
        };
        let s = state.server(i);
        let leaving_joint = old.is_joint();
        well_formed
            && step
            && self.decide(D::ChangeConfig, |e| {
                (e.at(
                    C::LastConfigCommitted,
                    config_index(&s.log) <= s.commit_index,
                ) || (leaving_joint && self.has_bug(Bug::LeaveJointEarly)))
                    && (e.at(
                        C::TermEntryCommitted,
                        term_at(&s.log, s.commit_index) == s.current_term,
                    ) || self.has_bug(Bug::ChangeBeforeTermCommit))
            })
    }

    /// Only a leader accepts client requests.
    pub fn can_client_request(&self, state: &State, i: ServerId) -> bool {
        self.is_server(i) && state.server(i).role == Role::Leader
    }

    /// A leader may begin a read once it has committed an entry of its current term (§6.4 of the
    /// dissertation: until then its commit index may lag behind entries an earlier leader
    /// committed). The read-before-term-commit bug skips the wait.
    pub fn can_read_index(&self, state: &State, i: ServerId) -> bool {
        self.is_server(i) && {
            let s = state.server(i);
            s.role == Role::Leader
                && self.decide(D::BeginRead, |e| {
                    e.at(
                        C::CommittedInTerm,
                        term_at(&s.log, s.commit_index) == s.current_term,
                    ) || self.has_bug(Bug::ReadBeforeTermCommit)
                })
        }
    }

    /// Whether `leader` is a leader and `peer` another server.
    fn leader_and_peer(&self, state: &State, leader: ServerId, peer: ServerId) -> bool {
        self.is_server(leader)
            && self.is_server(peer)
            && leader != peer
            && state.server(leader).role == Role::Leader
    }

    /// A leader may send any peer any run of entries its log still holds (after its snapshot),
    /// or none.
    pub fn can_append_entries(
        &self,
        state: &State,
        leader: ServerId,
        peer: ServerId,
        prev_log_index: Index,
        count: Index,
    ) -> bool {
        self.leader_and_peer(state, leader, peer)
            && prev_log_index >= state.server(leader).snapshot_index
            && prev_log_index
                .checked_add(count)
                .is_some_and(|end| end <= state.server(leader).last_index())
    }

    /// A leader may commit index N if N is past its commit index, a majority holds N, and the
    /// entry at N is of the leader's current term (Figure 2 and §5.4.2: never count replicas of an
    /// older term's entry).
    pub fn can_advance_commit_index(&self, state: &State, i: ServerId, index: Index) -> bool {
        if !self.is_server(i) {
            return false;
        }
        let s = state.server(i);
        s.role == Role::Leader
            && index > s.commit_index
            && index <= s.last_index()
            && self.decide(D::LeaderCommits, |e| {
                (e.at(C::EntryOfOwnTerm, term_at(&s.log, index) == s.current_term)
                    || self.has_bug(Bug::Figure8Commit))
                    && e.at(
                        C::QuorumHolds,
                        self.quorum_holds(state.config(i), self.replicas(state, i, index)),
                    )
            })
    }

    /// The highest index leader `i` may commit, if any (the guard allows any lower one past its
    /// commit index too).
    pub fn commit_point(&self, state: &State, i: ServerId) -> Option<Index> {
        let s = state.server(i);
        (s.commit_index + 1..=s.last_index())
            .rev()
            .find(|&k| self.can_advance_commit_index(state, i, k))
    }

    /// Any server may compact a committed prefix of its log past its current snapshot.
    pub fn can_compact(&self, state: &State, i: ServerId, index: Index) -> bool {
        self.is_server(i) && {
            let s = state.server(i);
            index > s.snapshot_index && index <= s.commit_index
        }
    }

    /// A leader with a snapshot may send it to any peer.
    pub fn can_install_snapshot(&self, state: &State, leader: ServerId, peer: ServerId) -> bool {
        self.leader_and_peer(state, leader, peer) && state.server(leader).snapshot_index > 0
    }

    /// A leader may set `next_index` for a peer to anything above the peer's `match_index` and at
    /// most one past its own last index.
    pub fn can_set_next_index(
        &self,
        state: &State,
        leader: ServerId,
        peer: ServerId,
        index: Index,
    ) -> bool {
        self.leader_and_peer(state, leader, peer) && {
            let s = state.server(leader);
            index > s.match_index[peer as usize] && index <= s.last_index() + 1
        }
    }

    /// The servers leader `i` knows to hold index `index`, itself included, as a bitset.
    fn replicas(&self, state: &State, i: ServerId, index: Index) -> u8 {
        let s = state.server(i);
        (0..self.n())
            .filter(|&j| j != i as usize && s.match_index[j] >= index)
            .fold(1 << i, |set, j| set | (1 << j))
    }

    /// A message in flight may be received by its addressee.
    pub fn can_receive(&self, state: &State, m: &Message) -> bool {
        self.is_server(m.to) && self.is_server(m.from) && state.network.count(m) > 0
    }

    // ----- Effects. -----

    /// The state after `action`, or `None` when the action is not enabled. Also records the step
    /// invariants (terms never decrease, leaders only append) that compare two states.
    pub fn step(&self, state: &State, action: &Action) -> Option<State> {
        if !self.enabled(state, action) {
            return None;
        }
        let restarted = match action {
            Action::Crash(i) => Some(*i),
            _ => None,
        };
        let after = || {
            let mut next = state.clone();
            self.apply(&mut next, action);
            check_step(state, &mut next, restarted);
            next
        };
        let mut next = after();
        if !self.discard_dead_messages(&mut next) {
            // A message taken for dead changed the state it was delivered to, in place: build the
            // state again, and keep it as it was, with the violation raised.
            next = after();
            next.flags |= flags::PRUNED_NOT_DEAD;
            remove_dead_messages(&mut next);
        }
        Some(next)
    }

    /// Applies an enabled action in place.
    pub fn apply(&self, state: &mut State, action: &Action) {
        match action {
            Action::Timeout(i) => self.timeout(state, *i),
            Action::ClientRequest(i, v) => self.client_request(state, *i, *v),
            Action::ChangeConfig(i, config) => self.change_config(state, *i, *config),
            Action::AppendEntries {
                leader,
                peer,
                prev_log_index,
                count,
            } => self.append_entries(state, *leader, *peer, *prev_log_index, *count),
            Action::AdvanceCommitIndex(i, index) => self.advance_commit_index(state, *i, *index),
            Action::Compact(i, index) => {
                self.hit(Branch::Compact);
                state.servers[*i as usize].snapshot_index = *index;
            }
            Action::InstallSnapshot { leader, peer } => {
                self.hit(Branch::SendSnapshot);
                let m = self.install_snapshot_message(state, *leader, *peer);
                state.network.send(m);
            }
            Action::SetNextIndex {
                leader,
                peer,
                index,
            } => state.servers[*leader as usize].next_index[*peer as usize] = *index,
            Action::ReadIndex(i) => self.read_index(state, *i),
            Action::Receive(m) => self.receive(state, m),
            Action::Crash(i) => self.crash(state, *i),
            Action::Drop(m) => {
                self.hit(Branch::Drop);
                state.network.remove(m);
                // Saturating: the conformance checker replays runs with far more faults than any
                // bound of an exhaustive check.
                state.drops = state.drops.saturating_add(1);
            }
            Action::Duplicate(m) => {
                self.hit(Branch::Duplicate);
                state.network.send(m.clone());
                state.dups = state.dups.saturating_add(1);
            }
            Action::LeaseExpires(i) => {
                self.hit(Branch::LeaseExpires);
                state.servers[*i as usize].lease = false;
            }
            Action::CheckQuorum(i) => self.check_quorum(state, *i),
            Action::TransferLeader { leader, target } => {
                self.hit(Branch::TransferLeader);
                state.transfers = state.transfers.saturating_add(1);
                let term = state.server(*leader).current_term;
                state.network.send(Message {
                    from: *leader,
                    to: *target,
                    term,
                    body: Body::TimeoutNow,
                });
            }
        }
    }

    /// A leader's quorum check: it keeps leading if the servers it heard from since the last
    /// check make a quorum with it, and starts counting again; otherwise it steps down.
    pub fn check_quorum(&self, state: &mut State, i: ServerId) {
        let config = state.config(i);
        let s = &state.servers[i as usize];
        let quorum = self.quorum_holds(config, s.recent | 1 << i);
        let s = &mut state.servers[i as usize];
        if self.decide(D::CheckQuorum, |e| e.at(C::RecentQuorum, quorum)) {
            self.hit(Branch::CheckQuorumHolds);
            s.recent = 0;
        } else {
            self.hit(Branch::CheckQuorumStepsDown);
            become_follower(s);
            state.flags |= flags::CHECK_QUORUM_STEPPED_DOWN;
        }
    }

    /// The servers a candidate `i` asks for votes: the other voters of its configuration (with
    /// the learner-vote bug, its learners too).
    pub fn vote_recipients(&self, state: &State, i: ServerId) -> u8 {
        let config = state.config(i);
        let mut to = config.voters | config.old_voters;
        if self.has_bug(Bug::LearnerVoteCounted) {
            to |= config.learners;
        }
        to & !(1 << i)
    }

    /// The servers leader `i` replicates its log to: every other member of its configuration.
    pub fn replication_peers(&self, state: &State, i: ServerId) -> u8 {
        state.config(i).members() & !(1 << i)
    }

    /// Election timeout: with PreVote, become a pre-candidate and ask the other voters of its
    /// configuration whether they would vote for it in the next term; without, start an election.
    pub fn timeout(&self, state: &mut State, i: ServerId) {
        if self.bounds.pre_vote {
            self.hit(Branch::TimeoutPreVote);
            let to = self.vote_recipients(state, i);
            let s = &mut state.servers[i as usize];
            become_follower(s);
            s.role = Role::PreCandidate;
            s.votes_granted = 1 << i;
            // A lone voter's own pre-vote is a quorum: it stands at once.
            if self.quorum_holds(state.config(i), 1 << i) {
                self.start_election(state, i, false);
                return;
            }
            let s = &mut state.servers[i as usize];
            let (term, last_log_index, last_log_term) =
                (s.current_term + 1, s.last_index(), s.last_term());
            self.send_to(state, i, to, term, || Body::PreVote {
                last_log_index,
                last_log_term,
            });
            return;
        }
        self.hit(if state.server(i).role == Role::Candidate {
            Branch::TimeoutCandidate
        } else {
            Branch::TimeoutFollower
        });
        self.start_election(state, i, false);
    }

    /// An election: term + 1, become candidate, vote for self, RequestVote to the other voters
    /// of its configuration (marked as a transfer's when TimeoutNow started it).
    fn start_election(&self, state: &mut State, i: ServerId, transfer: bool) {
        let to = self.vote_recipients(state, i);
        let s = &mut state.servers[i as usize];
        s.current_term += 1;
        s.voted_for = Some(i);
        become_candidate(s, i);
        let (term, last_log_index, last_log_term) = (s.current_term, s.last_index(), s.last_term());
        self.send_to(state, i, to, term, || Body::RequestVote {
            last_log_index,
            last_log_term,
            transfer,
        });
        // A lone voter (a configuration change can leave one) is elected by its own vote.
        if self.quorum_holds(state.config(i), 1 << i) {
            self.elected(state, i);
        }
    }

    /// Candidate `i` won its election.
    fn elected(&self, state: &mut State, i: ServerId) {
        let n = self.n();
        let s = &mut state.servers[i as usize];
        let votes = s.votes_granted;
        become_leader(s, n);
        let election = (s.current_term, i);
        if !votes_count(state, i, votes) {
            state.flags |= flags::VOTE_OF_NON_VOTER;
        }
        if let Err(at) = state.elections.binary_search(&election) {
            state.elections.insert(at, election);
        }
        if state.crashes > 0 {
            state.flags |= flags::LEADER_AFTER_RESTART;
        }
    }

    /// Sends `body()` from `from` to every server of the bitset `to`, in `term`.
    fn send_to(
        &self,
        state: &mut State,
        from: ServerId,
        to: u8,
        term: Term,
        body: impl Fn() -> Body,
    ) {
        for j in 0..self.n() as ServerId {
            if to & (1 << j) != 0 {
                state.network.send(Message {
                    from,
                    to: j,
                    term,
                    body: body(),
                });
            }
        }
    }

    /// A leader appends a client's value to its log.
    pub fn client_request(&self, state: &mut State, i: ServerId, value: Value) {
        self.hit(Branch::ClientRequest);
        let s = &mut state.servers[i as usize];
        let term = s.current_term;
        s.log.push(Entry::client(term, value));
    }

    /// A leader appends a configuration entry; it is the leader's configuration from now on.
    pub fn change_config(&self, state: &mut State, i: ServerId, new: Config) {
        let old = state.config(i);
        let added = new.voters & !old.voters;
        self.hit(if old.is_joint() {
            Branch::ConfigLeaveJoint
        } else if new.is_joint() {
            Branch::ConfigEnterJoint
        } else if added & old.learners != 0 {
            Branch::ConfigPromoteLearner
        } else if added != 0 {
            Branch::ConfigAddVoter
        } else if new.voters != old.voters {
            Branch::ConfigRemoveVoter
        } else {
            Branch::ConfigLearners
        });
        state.changes = state.changes.saturating_add(1);
        let s = &mut state.servers[i as usize];
        let term = s.current_term;
        s.log.push(Entry::configuration(term, new));
        // The quorum changed: the reads whose acknowledgements make one now are served.
        let mut k = 0;
        while k < s.reads.len() {
            if self.quorum_holds(new, s.reads[k].acks) {
                let read = s.reads.remove(k);
                state.served.push((read.index, read.required));
                state.flags |= flags::READ_SERVED;
            } else {
                k += 1;
            }
        }
    }

    /// A leader begins a read at its commit index, in a new read round. Only the AppendEntries it
    /// sends from now on carry that round; a majority of their replies (its own included) serves
    /// the read. The read-without-quorum bug serves it at once.
    pub fn read_index(&self, state: &mut State, i: ServerId) {
        self.hit(Branch::BeginRead);
        state.reads = state.reads.saturating_add(1);
        let required = state.committed.len() as Index;
        let s = &mut state.servers[i as usize];
        s.read_round = s.read_round.saturating_add(1);
        let read = PendingRead {
            round: s.read_round,
            index: s.commit_index,
            acks: 1 << i,
            required,
        };
        // A cluster of one confirms by itself.
        let config = state.config(i);
        let s = &mut state.servers[i as usize];
        if self.has_bug(Bug::ReadWithoutQuorum) || self.quorum_holds(config, read.acks) {
            state.served.push((read.index, read.required));
            state.flags |= flags::READ_SERVED;
        } else {
            s.reads.push(read);
        }
    }

    /// A leader sends AppendEntries with the entries after `prev_log_index`.
    pub fn append_entries(
        &self,
        state: &mut State,
        leader: ServerId,
        peer: ServerId,
        prev_log_index: Index,
        count: Index,
    ) {
        self.hit(if count == 0 {
            Branch::SendHeartbeat
        } else if prev_log_index + count < state.server(leader).last_index() {
            Branch::SendPartialBatch
        } else {
            Branch::SendEntries
        });
        let m = self.append_entries_message(state, leader, peer, prev_log_index, count);
        state.network.send(m);
    }

    /// The AppendEntries that leader `leader` sends `peer` with `count` entries after
    /// `prev_log_index`.
    pub fn append_entries_message(
        &self,
        state: &State,
        leader: ServerId,
        peer: ServerId,
        prev_log_index: Index,
        count: Index,
    ) -> Message {
        let s = state.server(leader);
        let from = prev_log_index as usize;
        Message {
            from: leader,
            to: peer,
            term: s.current_term,
            body: Body::AppendEntries {
                prev_log_index,
                prev_log_term: term_at(&s.log, prev_log_index),
                entries: s.log[from..from + count as usize].iter().copied().collect(),
                leader_commit: s.commit_index,
                read_round: s.read_round,
            },
        }
    }

    /// The InstallSnapshot that `leader` sends `peer`: every entry of its snapshot.
    pub fn install_snapshot_message(
        &self,
        state: &State,
        leader: ServerId,
        peer: ServerId,
    ) -> Message {
        let s = state.server(leader);
        let last = s.snapshot_index;
        Message {
            from: leader,
            to: peer,
            term: s.current_term,
            body: Body::InstallSnapshot {
                last_included_index: last,
                last_included_term: term_at(&s.log, last),
                entries: Log::from_slice(&s.log[..last as usize]),
            },
        }
    }

    /// A leader commits through `index`.
    pub fn advance_commit_index(&self, state: &mut State, i: ServerId, index: Index) {
        let s = &mut state.servers[i as usize];
        let old = s.commit_index;
        s.commit_index = index;
        let term = s.current_term;
        let log = &state.servers[i as usize].log;
        let older = (old + 1..index).any(|k| term_at(log, k) < term);
        if older && term_at(log, index) == term {
            state.flags |= flags::OLD_TERM_COMMITTED_THROUGH_NEW;
        }
        self.hit(if older {
            Branch::CommitOlderTerms
        } else {
            Branch::CommitOwnTerm
        });
        record_commits(state, i as usize, old, index, term);
        // A leader that committed a configuration without itself as a voter steps down (§6 of
        // the paper): it has handed the cluster over.
        let config = state.config(i);
        let s = &mut state.servers[i as usize];
        if !config.is_voter(i) && config_index(&s.log) <= index {
            // (Not `CHECK_QUORUM_STEPPED_DOWN`: the leader hands over, it did not lose touch.)
            self.hit(Branch::CommitRemovedLeaderStepsDown);
            become_follower(s);
        }
    }

    /// A crash and restart: the server keeps current_term, voted_for, log and snapshot (what
    /// Figure 2 persists, and the snapshot saved with it) and loses the rest. Its state machine
    /// restarts from the snapshot, so it knows the snapshot's entries committed.
    pub fn crash(&self, state: &mut State, i: ServerId) {
        let s = &mut state.servers[i as usize];
        become_follower(s);
        s.commit_index = s.snapshot_index;
        if s.snapshot_index > 0 {
            state.flags |= flags::RESTARTED_FROM_SNAPSHOT;
            self.hit(Branch::CrashWithSnapshot);
        } else {
            self.hit(Branch::CrashWithoutSnapshot);
        }
        let s = &mut state.servers[i as usize];
        if self.has_bug(Bug::ForgetVote) {
            s.voted_for = None;
        }
        state.crashes = state.crashes.saturating_add(1);
    }

    /// The addressee handles one copy of `m`.
    pub fn receive(&self, state: &mut State, m: &Message) {
        if state.dups > 0 && state.network.count(m) >= 2 {
            state.flags |= flags::DUPLICATE_DELIVERED;
        }
        state.network.remove(m);
        let s = &mut state.servers[m.to as usize];
        let term = s.current_term;
        // With CheckQuorum, a server that hears from a leader ignores a RequestVote or PreVote
        // of a higher term (not a transfer's) until its election timer runs out (§4.2.3 of the
        // dissertation): it neither adopts the term nor answers.
        let (vote_request, transfer) = match m.body {
            Body::RequestVote { transfer, .. } => (true, transfer),
            Body::PreVote { .. } => (true, false),
            _ => (false, false),
        };
        if self.bounds.check_quorum && vote_request && m.term > term {
            let in_lease = s.role == Role::Leader || (s.role == Role::Follower && s.lease);
            if self.decide(D::IgnoreInLease, |e| {
                e.at(C::ReceiverInLease, in_lease) && e.at(C::NotTransfer, !transfer)
            }) {
                self.hit(Branch::VoteIgnoredInLease);
                return;
            }
        }
        // Any RPC with a higher term makes the receiver adopt it and step down (Figure 2, "Rules
        // for Servers"), but for a PreVote and a granted PreVoteReply, whose terms are the one
        // the pre-candidate would stand in (the pre-vote-raises-term bug adopts those too).
        let pre_vote = matches!(
            m.body,
            Body::PreVote { .. } | Body::PreVoteReply { granted: true }
        );
        if self.decide(D::AdoptTerm, |e| {
            e.at(C::MessageTermHigher, m.term > term)
                && (e.at(C::NotPreVote, !pre_vote) || self.has_bug(Bug::PreVoteRaisesTerm))
        }) {
            self.hit(Branch::ReceiveHigherTerm);
            s.current_term = m.term;
            s.voted_for = None;
            become_follower(s);
        }
        match &m.body {
            Body::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => self.handle_request_vote(state, m, *last_log_index, *last_log_term),
            Body::PreVote {
                last_log_index,
                last_log_term,
            } => self.handle_pre_vote(state, m, *last_log_index, *last_log_term),
            Body::PreVoteReply { granted } => self.handle_pre_vote_reply(state, m, *granted),
            Body::TimeoutNow => self.handle_timeout_now(state, m),
            Body::RequestVoteReply { vote_granted } => {
                self.handle_request_vote_reply(state, m, *vote_granted)
            }
            Body::AppendEntries { .. } => self.handle_append_entries(state, m),
            Body::AppendEntriesReply {
                outcome,
                read_round,
            } => self.handle_append_entries_reply(state, m, *outcome, *read_round),
            Body::InstallSnapshot {
                last_included_index,
                last_included_term,
                entries,
            } => self.handle_install_snapshot(
                state,
                m,
                *last_included_index,
                *last_included_term,
                entries,
            ),
            Body::InstallSnapshotReply { match_index } => {
                let s = &mut state.servers[m.to as usize];
                let (term, role) = (s.current_term, s.role);
                let live = self.decide(D::SnapshotReplyLive, |e| {
                    e.at(C::SnapshotReplyTermCurrent, m.term == term)
                        && e.at(C::SnapshotReplyReceiverLeader, role == Role::Leader)
                });
                if live {
                    self.hit(Branch::SnapshotReplyLive);
                    self.heard_from(s, m.from);
                    let peer = m.from as usize;
                    let known = s.match_index[peer];
                    if self.decide(D::SnapshotMatchAdvances, |e| {
                        e.at(C::SnapshotReplyPastMatch, *match_index > known)
                    }) {
                        s.match_index[peer] = *match_index;
                    }
                    s.next_index[peer] = s.next_index[peer].max(*match_index + 1);
                } else {
                    self.hit(Branch::SnapshotReplyStale);
                }
            }
        }
    }

    /// InstallSnapshot at the receiver (§7): a snapshot no newer than what it has committed is
    /// ignored; otherwise it keeps the log after the snapshot if its log has the snapshot's last
    /// entry, else it drops the whole log, and its state machine (commit index) moves to the
    /// snapshot. The snapshot-regress bug takes an older snapshot too, and rolls back to it.
    fn handle_install_snapshot(
        &self,
        state: &mut State,
        m: &Message,
        last_included_index: Index,
        last_included_term: Term,
        entries: &[Entry],
    ) {
        let i = m.to as usize;
        let s = &mut state.servers[i];
        let (term, role, commit) = (s.current_term, s.role, s.commit_index);
        if !self.decide(D::AcceptSnapshot, |e| {
            e.at(C::SnapshotNotStale, m.term >= term)
        }) {
            self.hit(Branch::SnapshotStaleTerm);
        } else {
            if self.decide(D::SnapshotStepsDown, |e| {
                e.at(C::SnapshotReceiverNotFollower, role != Role::Follower)
            }) {
                become_follower(s);
            }
            s.lease = self.bounds.check_quorum;
            let newer = self.decide(D::SnapshotNewer, |e| {
                e.at(C::SnapshotPastCommit, last_included_index > commit)
            });
            if !newer {
                self.hit(Branch::SnapshotNotNewer);
            }
            if self.has_bug(Bug::SnapshotRegress) && !newer {
                s.log = Log::from_slice(entries);
                s.snapshot_index = last_included_index;
                s.commit_index = last_included_index;
                state.flags |= flags::SNAPSHOT_INSTALLED;
            } else if newer {
                // Entries after the snapshot survive when the log goes past the snapshot and
                // agrees with it at its last entry (a log that ends at that entry comes out as the
                // snapshot alone, as a replaced one does).
                let keeps_suffix = self.decide(D::KeepSuffix, |e| {
                    e.at(C::LogPastSnapshot, s.last_index() > last_included_index)
                        && e.at(
                            C::SnapshotTermMatches,
                            term_at(&s.log, last_included_index) == last_included_term,
                        )
                });
                self.hit(if keeps_suffix {
                    Branch::SnapshotKeepsSuffix
                } else {
                    Branch::SnapshotReplacesLog
                });
                let mut log = Log::from_slice(entries);
                if keeps_suffix {
                    // (Only a forced condition, `--stuck`, keeps a suffix of a log that ends
                    // before the snapshot: there is none to keep.)
                    log.extend_from_slice(s.log.get(last_included_index as usize..).unwrap_or(&[]));
                }
                s.log = log;
                s.snapshot_index = last_included_index;
                let old = s.commit_index;
                s.commit_index = last_included_index;
                record_commits(state, i, old, last_included_index, m.term);
                state.flags |= flags::SNAPSHOT_INSTALLED;
            }
        }
        // The reply's match_index: the snapshot's last index when the receiver's log now holds
        // the leader's through it (installed, or already committed past it), 0 when the request
        // was refused for its term.
        let stale = m.term < state.servers[i].current_term;
        let reply = Message {
            from: m.to,
            to: m.from,
            term: state.servers[i].current_term,
            body: Body::InstallSnapshotReply {
                match_index: if stale { 0 } else { last_included_index },
            },
        };
        state.network.send(reply);
    }

    /// RequestVote: grant if the term is current, no other vote was cast in it, and the
    /// candidate's log is at least as up-to-date.
    fn handle_request_vote(
        &self,
        state: &mut State,
        m: &Message,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let s = &mut state.servers[m.to as usize];
        // The receiver has already adopted a higher term, so the request's term is at most its own.
        // The outcome and its branch follow the conditions as evaluated (so that `--stuck` forces them).
        let (mut not_stale, mut free) = (false, false);
        let grant = self.decide(D::GrantVote, |e| {
            not_stale = e.at(C::VoteRequestNotStale, m.term >= s.current_term);
            not_stale
                && {
                    free = e.at(C::NoOtherVote, s.voted_for.is_none_or(|v| v == m.from))
                        || self.has_bug(Bug::VoteTwice);
                    free
                }
                && (self.has_bug(Bug::NoUpToDateCheck)
                    || log_up_to_date(e, VOTE_UP_TO_DATE, last_log_term, last_log_index, s))
        });
        let branch = if grant {
            if s.voted_for == Some(m.from) {
                Branch::VoteGrantedAgain
            } else {
                Branch::VoteGranted
            }
        } else if !not_stale {
            Branch::VoteStaleTerm
        } else if !free {
            Branch::VoteAlreadyVoted
        } else {
            Branch::VoteLogNotUpToDate
        };
        self.hit(branch);
        let vote_granted = matches!(branch, Branch::VoteGranted | Branch::VoteGrantedAgain);
        if vote_granted {
            s.voted_for = Some(m.from);
            if s.role == Role::Leader {
                state.flags |= flags::LEADER_GRANTED_VOTE;
            }
        }
        let s = &state.servers[m.to as usize];
        let reply = Message {
            from: m.to,
            to: m.from,
            term: s.current_term,
            body: Body::RequestVoteReply { vote_granted },
        };
        state.network.send(reply);
    }

    /// PreVote (§9.6 of the dissertation): grant if the pre-vote's term is above the receiver's
    /// and the pre-candidate's log is at least as up-to-date. The receiver's term and vote stay as
    /// they are. A granted reply carries the pre-vote's term, a refusal the receiver's own.
    fn handle_pre_vote(
        &self,
        state: &mut State,
        m: &Message,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let s = &state.servers[m.to as usize];
        let mut higher = false;
        let granted = self.decide(D::GrantPreVote, |e| {
            higher = e.at(C::PreVoteTermHigher, m.term > s.current_term);
            higher && log_up_to_date(e, PRE_VOTE_UP_TO_DATE, last_log_term, last_log_index, s)
        });
        self.hit(if granted {
            Branch::PreVoteGranted
        } else if !higher {
            Branch::PreVoteStaleTerm
        } else {
            Branch::PreVoteLogNotUpToDate
        });
        let reply = Message {
            from: m.to,
            to: m.from,
            term: if granted { m.term } else { s.current_term },
            body: Body::PreVoteReply { granted },
        };
        state.network.send(reply);
    }

    /// A pre-vote for a pre-candidate (its reply's term is the pre-candidate's term plus one): a
    /// quorum makes it a candidate, which starts an election. A refusal of a higher term made it
    /// step down already; one of a lower term tells it nothing.
    fn handle_pre_vote_reply(&self, state: &mut State, m: &Message, granted: bool) {
        let config = state.config(m.to);
        let s = &mut state.servers[m.to as usize];
        let (term, role) = (s.current_term, s.role);
        let live = self.decide(D::CountPreVote, |e| {
            e.at(C::PreVoteReplyTermNext, m.term == term + 1)
                && e.at(C::ReceiverPreCandidate, role == Role::PreCandidate)
        });
        if !(live && granted) {
            self.hit(Branch::PreVoteReplyStale);
            return;
        }
        s.votes_granted |= 1 << m.from;
        let quorum = self.quorum_holds(config, s.votes_granted);
        if self.decide(D::PreVoteWon, |e| e.at(C::PreVotesMakeQuorum, quorum)) {
            self.hit(Branch::PreVoteReplyWon);
            state.flags |= flags::PRE_VOTE_WON;
            self.start_election(state, m.to, false);
        } else {
            self.hit(Branch::PreVoteReplyCounted);
        }
    }

    /// TimeoutNow from the leader of the receiver's term: a follower that votes starts an
    /// election at once, without PreVote, and its RequestVotes say they are a transfer's.
    fn handle_timeout_now(&self, state: &mut State, m: &Message) {
        let s = state.server(m.to);
        let (term, role) = (s.current_term, s.role);
        let starts = self.decide(D::TimeoutNowStarts, |e| {
            e.at(C::TimeoutNowTermCurrent, m.term == term)
                && e.at(C::TimeoutNowReceiverFollower, role == Role::Follower)
        });
        // A server the leader's configuration names as a voter may since have learned of one
        // that does not: only a voter stands.
        if starts && state.config(m.to).is_voter(m.to) {
            self.hit(Branch::TimeoutNowElection);
            state.flags |= flags::TRANSFER_STARTED;
            self.start_election(state, m.to, true);
        } else {
            self.hit(Branch::TimeoutNowIgnored);
        }
    }

    /// With CheckQuorum, a leader notes that `peer` answered it in its term.
    fn heard_from(&self, s: &mut Server, peer: ServerId) {
        if self.bounds.check_quorum {
            s.recent |= 1 << peer;
        }
    }

    /// A vote for a candidate in its current term; a majority makes it leader.
    fn handle_request_vote_reply(&self, state: &mut State, m: &Message, vote_granted: bool) {
        let config = state.config(m.to);
        let s = &mut state.servers[m.to as usize];
        // The receiver has already adopted a higher term, so the reply's term is at most its own.
        let (term, role) = (s.current_term, s.role);
        let mut live = false;
        let counts = self.decide(D::CountVote, |e| {
            live = (e.at(C::VoteReplyTermCurrent, m.term == term)
                || self.has_bug(Bug::StaleVoteCounted))
                && e.at(C::ReceiverCandidate, role == Role::Candidate);
            live && e.at(C::VoteGranted, vote_granted)
        });
        if !live {
            self.hit(Branch::VoteReplyStale);
            return;
        }
        if !counts {
            self.hit(Branch::VoteReplyRefused);
            return;
        }
        s.votes_granted |= 1 << m.from;
        let votes = s.votes_granted;
        // Only voters count; the learner-vote bug counts a learner's vote as a voter's.
        let makes_quorum = if self.has_bug(Bug::LearnerVoteCounted) {
            let mut stand_in = config;
            stand_in.voters |= stand_in.learners;
            stand_in.learners = 0;
            (votes & stand_in.voters).count_ones() as usize
                >= majority(config.voters.count_ones() as usize)
        } else {
            self.quorum_holds(config, votes)
        };
        if self.decide(D::Elected, |e| e.at(C::VotesMakeQuorum, makes_quorum)) {
            self.hit(Branch::VoteReplyElected);
            self.elected(state, m.to);
        } else {
            self.hit(Branch::VoteReplyCounted);
        }
    }

    /// AppendEntries at the receiver (Figure 2, "AppendEntries RPC", receiver steps 1 to 5).
    fn handle_append_entries(&self, state: &mut State, m: &Message) {
        let Body::AppendEntries {
            prev_log_index,
            prev_log_term,
            ref entries,
            leader_commit,
            read_round,
        } = m.body
        else {
            unreachable!("an AppendEntries")
        };
        let i = m.to as usize;
        let s = &mut state.servers[i];
        // The outcome follows the conditions as evaluated (so that `--stuck` forces them).
        let mut not_stale = false;
        let accept = self.decide(D::AcceptAppend, |e| {
            not_stale = e.at(C::AppendNotStale, m.term >= s.current_term)
                || self.has_bug(Bug::AcceptStaleTerm);
            not_stale
                && e.at(
                    C::PrevEntryMatches,
                    prev_log_index <= s.last_index()
                        && (term_at(&s.log, prev_log_index) == prev_log_term
                            || self.has_bug(Bug::NoPrevTermCheck)),
                )
        });
        let role = s.role;
        let outcome = if !not_stale {
            // 1. Reply false if term < currentTerm.
            self.hit(Branch::AppendStaleTerm);
            AppendOutcome::StaleTerm
        } else {
            if self.decide(D::AppendStepsDown, |e| {
                e.at(C::AppendReceiverNotFollower, role != Role::Follower)
            }) {
                // A candidate learns of this term's leader (a leader only gets here in a broken
                // model: two leaders of one term, or the stale-term bug).
                self.hit(Branch::AppendCandidateStepsDown);
                become_follower(s);
            }
            // The leader of its term: its election timer starts again.
            s.lease = self.bounds.check_quorum;
            let too_short = !accept
                && self.decide(D::RefuseTooShort, |e| {
                    e.at(C::LogEndsBeforePrev, prev_log_index > s.last_index())
                });
            if too_short {
                // 2. Reply false if the log has no entry at prevLogIndex...
                self.hit(Branch::AppendLogTooShort);
                AppendOutcome::Conflict {
                    conflict_term: 0,
                    conflict_index: s.last_index() + 1,
                }
            } else if !accept {
                self.hit(Branch::AppendTermMismatch);
                // ...or its term there does not match prevLogTerm. The hint is the first index
                // of that term that the follower still holds outside its snapshot (a server
                // with a compacted log cannot look further back).
                let conflict_term = term_at(&s.log, prev_log_index);
                let conflict_index = s
                    .log
                    .iter()
                    .position(|e| e.term == conflict_term)
                    .map_or(prev_log_index, |p| p as Index + 1)
                    .max(s.snapshot_index + 1)
                    .min(prev_log_index);
                AppendOutcome::Conflict {
                    conflict_term,
                    conflict_index,
                }
            } else {
                // 3./4. Delete a conflicting suffix, append what is new.
                let before = s.log.len();
                let truncated = if self.has_bug(Bug::TruncateOnMatch) {
                    truncate_and_append(&mut s.log, prev_log_index, entries)
                } else {
                    self.append_new_entries(&mut s.log, prev_log_index, entries)
                };
                if truncated {
                    state.flags |= flags::TRUNCATED;
                    self.hit(Branch::AppendTruncated);
                } else if state.servers[i].log.len() > before {
                    self.hit(Branch::AppendAppended);
                } else {
                    self.hit(Branch::AppendAlreadyPresent);
                }
                // 5. commitIndex = min(leaderCommit, index of last new entry).
                let s = &mut state.servers[i];
                let last_new = prev_log_index + entries.len() as Index;
                let old = s.commit_index;
                let no_cap = self.has_bug(Bug::CommitWithoutCap);
                let advances = self.decide(D::FollowerCommits, |e| {
                    e.at(C::LeaderCommitPastCommit, leader_commit > old)
                        && (e.at(C::LastNewPastCommit, last_new > old) || no_cap)
                });
                if advances {
                    let capped = self.decide(D::CommitCapped, |e| {
                        e.at(C::LeaderCommitPastLastNew, leader_commit > last_new)
                    });
                    self.hit(if capped {
                        Branch::AppendCommitCapped
                    } else {
                        Branch::AppendCommitByLeaderCommit
                    });
                    let new = if capped && !no_cap {
                        last_new
                    } else {
                        leader_commit
                    };
                    s.commit_index = new;
                    record_commits(state, i, old, new, m.term);
                }
                AppendOutcome::Success {
                    match_index: last_new,
                }
            }
        };
        let reply = Message {
            from: m.to,
            to: m.from,
            term: state.servers[i].current_term,
            body: Body::AppendEntriesReply {
                outcome,
                // A refusal for its term answers a request of an older leadership, whose rounds
                // are numbered apart from the leader's current ones: it acknowledges no read.
                read_round: if outcome == AppendOutcome::StaleTerm {
                    0
                } else {
                    read_round
                },
            },
        };
        state.network.send(reply);
    }

    /// An AppendEntries reply at a leader of the same term: advance match_index on success, back
    /// next_index up with the conflict hint on failure. Replies of other terms are ignored (a
    /// higher one already made it step down).
    fn handle_append_entries_reply(
        &self,
        state: &mut State,
        m: &Message,
        outcome: AppendOutcome,
        read_round: u32,
    ) {
        let s = &mut state.servers[m.to as usize];
        // The receiver has already adopted a higher term, so the reply's term is at most its own.
        let (term, role) = (s.current_term, s.role);
        if !self.decide(D::AppendReplyLive, |e| {
            e.at(C::AppendReplyTermCurrent, m.term == term)
                && e.at(C::AppendReplyReceiverLeader, role == Role::Leader)
        }) {
            self.hit(Branch::AppendReplyStale);
            return;
        }
        self.heard_from(s, m.from);
        let peer = m.from as usize;
        let last = s.last_index();
        self.confirm_reads(state, m.to, m.from, read_round);
        let s = &mut state.servers[m.to as usize];
        match outcome {
            AppendOutcome::Success { match_index } => {
                self.hit(Branch::AppendReplySuccess);
                if self.has_bug(Bug::MatchRegress) {
                    s.match_index[peer] = match_index;
                    s.next_index[peer] = match_index + 1;
                } else {
                    let known = s.match_index[peer];
                    if self.decide(D::MatchAdvances, |e| {
                        e.at(C::ReplyPastMatch, match_index > known)
                    }) {
                        s.match_index[peer] = match_index;
                    }
                    s.next_index[peer] = s.next_index[peer].max(match_index + 1);
                }
            }
            AppendOutcome::StaleTerm => self.hit(Branch::AppendReplyStaleTerm),
            AppendOutcome::Conflict {
                conflict_term,
                conflict_index,
            } => {
                // With the term hint, skip to just past the leader's last entry of that term;
                // without it (or when the leader has none), to the follower's first entry of it.
                // (No entry has term 0, which names no term.)
                let last_of_term = s.log.iter().rposition(|x| x.term == conflict_term);
                let by_term = self
                    .decide(D::BackUpByTerm, |e| {
                        e.at(C::LeaderHasHintTerm, last_of_term.is_some())
                    })
                    .then_some(last_of_term)
                    .flatten();
                self.hit(if by_term.is_some() {
                    Branch::AppendReplyConflictByTerm
                } else {
                    Branch::AppendReplyConflictByIndex
                });
                let hinted = by_term.map_or(conflict_index, |p| p as Index + 2);
                s.next_index[peer] = hinted.min(last + 1).max(s.match_index[peer] + 1);
            }
        }
    }

    /// A reply of the leader's term, to an AppendEntries of read round `round`, from `peer`: the
    /// peer accepted the leader's term after every read of that round or earlier began, so it
    /// acknowledges them. A read acknowledged by a majority is served at its read index: no leader
    /// of a later term can have been elected (and so none can have committed anything) before
    /// the majority answered.
    fn confirm_reads(&self, state: &mut State, leader: ServerId, peer: ServerId, round: u32) {
        let config = state.config(leader);
        let s = &mut state.servers[leader as usize];
        let mut served: SmallVec<[PendingRead; 1]> = SmallVec::new();
        let mut k = 0;
        while k < s.reads.len() {
            let read = &mut s.reads[k];
            if self.decide(D::AckRead, |e| e.at(C::ReplyAfterRead, round >= read.round)) {
                read.acks |= 1 << peer;
            }
            let acks = self.quorum_holds(config, read.acks);
            if self.decide(D::ServeRead, |e| e.at(C::AcksMakeQuorum, acks)) {
                self.hit(Branch::ServeRead);
                served.push(s.reads.remove(k));
            } else {
                k += 1;
            }
        }
        for read in served {
            state.served.push((read.index, read.required));
            state.flags |= flags::READ_SERVED;
        }
    }

    // ----- The bounded enumeration. -----

    /// The canonical, bounded set of actions for exhaustive checking.
    pub fn bounded_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        let n = self.n() as ServerId;
        let inflight = state.network.len();
        let room = (b.max_inflight as usize).saturating_sub(inflight);
        for i in 0..n {
            let s = state.server(i);
            match s.role {
                Role::Leader => {
                    if s.last_index() < b.max_log {
                        for v in 1..=b.values {
                            actions.push(Action::ClientRequest(i, v));
                        }
                        if state.changes < b.max_changes {
                            self.offer_config_changes(state, i, actions);
                        }
                    }
                    if room >= 1 {
                        let peers = self.replication_peers(state, i);
                        for peer in (0..n).filter(|&p| peers & (1 << p) != 0) {
                            // Figure 2: send every entry from next_index on (none: a
                            // heartbeat); with partial batches, also none or one of them. A
                            // shorter batch than all arises anyway when the log grows between two
                            // sends; the guard allows any batch. Entries already in the snapshot
                            // go as the snapshot. A copy of a message still in flight is the
                            // Duplicate action's job.
                            let prev = s.next_index[peer as usize].saturating_sub(1);
                            if prev < s.snapshot_index {
                                let m = self.install_snapshot_message(state, i, peer);
                                if state.network.count(&m) == 0 {
                                    actions.push(Action::InstallSnapshot { leader: i, peer });
                                }
                                continue;
                            }
                            let full = s.last_index() - prev;
                            let sizes = match (b.partial_batches, full) {
                                (false, _) | (true, 0) => &[full][..],
                                (true, 1) => &[1, 0][..],
                                (true, _) => &[full, 0, 1][..],
                            };
                            for &count in sizes {
                                let m = self.append_entries_message(state, i, peer, prev, count);
                                if state.network.count(&m) == 0 {
                                    actions.push(Action::AppendEntries {
                                        leader: i,
                                        peer,
                                        prev_log_index: prev,
                                        count,
                                    });
                                }
                            }
                        }
                    }
                    // The highest index it may commit (the guard allows any lower one too).
                    if let Some(index) = self.commit_point(state, i) {
                        actions.push(Action::AdvanceCommitIndex(i, index));
                    }
                    if state.reads < b.max_reads && self.can_read_index(state, i) {
                        actions.push(Action::ReadIndex(i));
                    }
                    if b.check_quorum {
                        actions.push(Action::CheckQuorum(i));
                    }
                    // A transfer leads to an election, so the term bound applies.
                    if state.transfers < b.max_transfers && s.current_term < b.max_term && room >= 1
                    {
                        for target in 0..n {
                            if self.can_transfer_leader(state, i, target) {
                                actions.push(Action::TransferLeader { leader: i, target });
                            }
                        }
                    }
                }
                Role::Follower | Role::Candidate | Role::PreCandidate => {
                    // (With PreVote the term rises only when the pre-vote is won, and then to
                    // the one the bound allows here.)
                    let asked = self.vote_recipients(state, i).count_ones() as usize;
                    if s.current_term < b.max_term && room >= asked && self.can_timeout(state, i) {
                        actions.push(Action::Timeout(i));
                    }
                    if s.lease {
                        actions.push(Action::LeaseExpires(i));
                    }
                }
            }
            // Compaction, when the bounds allow it: once per server, of everything committed
            // (with the short logs of a bounded check, a second snapshot adds little but
            // states; the guard allows any number).
            if b.snapshots && s.snapshot_index == 0 && s.commit_index > 0 {
                actions.push(Action::Compact(i, s.commit_index));
            }
            // A crash only matters if the server has volatile state to lose (or, with the
            // forget-vote bug, a vote).
            let loses_something = s.role != Role::Follower
                || s.lease
                || s.commit_index > s.snapshot_index
                || (self.has_bug(Bug::ForgetVote) && s.voted_for.is_some());
            if state.crashes < b.max_crashes && loses_something {
                actions.push(Action::Crash(i));
            }
        }
        for m in state.network.distinct() {
            actions.push(Action::Receive(m.clone()));
        }
        if state.drops < b.max_drops {
            for m in state.network.distinct() {
                actions.push(Action::Drop(m.clone()));
            }
        }
        if state.dups < b.max_dups && room >= 1 {
            for m in state.network.distinct() {
                actions.push(Action::Duplicate(m.clone()));
            }
        }
    }
}

impl RaftModel {
    /// The configuration changes the enumerator offers leader `i`, where the guard allows them:
    /// from a joint configuration, its C_new; with `--joint`, replacing one voter by a server
    /// outside the configuration through a joint configuration; otherwise the single-server
    /// changes: add a server as a voter or as a learner, promote a learner, remove a voter.
    fn offer_config_changes(&self, state: &State, i: ServerId, actions: &mut Vec<Action>) {
        let old = state.config(i);
        let all = Config::of_voters(self.bounds.servers).voters;
        let outside = all & !old.members();
        let bits = |set: u8| (0..self.n() as u8).filter(move |&j| set & (1 << j) != 0);
        let mut offers: SmallVec<[Config; 8]> = SmallVec::new();
        if old.is_joint() {
            offers.push(Config {
                old_voters: 0,
                ..old
            });
        } else if self.bounds.joint {
            for v in bits(old.voters) {
                for s in bits(outside) {
                    offers.push(Config {
                        voters: old.voters & !(1 << v) | (1 << s),
                        old_voters: old.voters,
                        learners: old.learners,
                    });
                }
            }
        } else {
            for s in bits(outside) {
                offers.push(Config {
                    voters: old.voters | (1 << s),
                    ..old
                });
                offers.push(Config {
                    learners: old.learners | (1 << s),
                    ..old
                });
            }
            for l in bits(old.learners) {
                offers.push(Config {
                    voters: old.voters | (1 << l),
                    learners: old.learners & !(1 << l),
                    ..old
                });
            }
            if old.voters.count_ones() > 1 {
                for v in bits(old.voters) {
                    offers.push(Config {
                        voters: old.voters & !(1 << v),
                        ..old
                    });
                }
            }
        }
        for new in offers {
            if self.can_change_config(state, i, new) {
                actions.push(Action::ChangeConfig(i, new));
            }
        }
    }

    /// Every action the guards allow in `state`, with every choice of parameters, within the
    /// bounds' budgets only (terms, log length, messages in flight, crashes, losses, duplicates):
    /// any batch from any `prev_log_index`, any commit point, any compaction, any `next_index`.
    /// The random walks of `simulate --all-actions` pick from these, to check that the canonical
    /// enumeration (`bounded_actions`) leaves out nothing that could break a property.
    pub fn all_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        let n = self.n() as ServerId;
        let room = (b.max_inflight as usize).saturating_sub(state.network.len());
        for i in 0..n {
            let s = state.server(i);
            if s.role == Role::Leader {
                if s.last_index() < b.max_log {
                    actions.extend((1..=b.values).map(|v| Action::ClientRequest(i, v)));
                    if state.changes < b.max_changes {
                        self.offer_config_changes(state, i, actions);
                    }
                }
                for peer in (0..n).filter(|&p| p != i) {
                    if room >= 1 {
                        for prev in s.snapshot_index..=s.last_index() {
                            for count in 0..=s.last_index() - prev {
                                actions.push(Action::AppendEntries {
                                    leader: i,
                                    peer,
                                    prev_log_index: prev,
                                    count,
                                });
                            }
                        }
                        if s.snapshot_index > 0 {
                            actions.push(Action::InstallSnapshot { leader: i, peer });
                        }
                    }
                    for index in s.match_index[peer as usize] + 1..=s.last_index() + 1 {
                        actions.push(Action::SetNextIndex {
                            leader: i,
                            peer,
                            index,
                        });
                    }
                }
                actions.extend(
                    (s.commit_index + 1..=s.last_index()).map(|k| Action::AdvanceCommitIndex(i, k)),
                );
                if state.reads < b.max_reads {
                    actions.push(Action::ReadIndex(i));
                }
                actions.push(Action::CheckQuorum(i));
                if state.transfers < b.max_transfers && s.current_term < b.max_term && room >= 1 {
                    actions
                        .extend((0..n).map(|target| Action::TransferLeader { leader: i, target }));
                }
            } else {
                if s.current_term < b.max_term && room >= n as usize - 1 {
                    actions.push(Action::Timeout(i));
                }
                actions.push(Action::LeaseExpires(i));
            }
            if b.snapshots {
                actions
                    .extend((s.snapshot_index + 1..=s.commit_index).map(|k| Action::Compact(i, k)));
            }
            if state.crashes < b.max_crashes {
                actions.push(Action::Crash(i));
            }
        }
        for m in state.network.distinct() {
            actions.push(Action::Receive(m.clone()));
            if state.drops < b.max_drops {
                actions.push(Action::Drop(m.clone()));
            }
            if state.dups < b.max_dups && room >= 1 {
                actions.push(Action::Duplicate(m.clone()));
            }
        }
        actions.retain(|a| self.enabled(state, a));
    }
}

// ----- Role changes: the only places a role changes. -----

fn become_follower(s: &mut Server) {
    s.role = Role::Follower;
    s.lease = false;
    s.recent = 0;
    s.votes_granted = 0;
    s.next_index = [0; crate::state::MAX_SERVERS];
    s.match_index = [0; crate::state::MAX_SERVERS];
    s.read_round = 0;
    s.reads.clear();
}

fn become_candidate(s: &mut Server, i: ServerId) {
    become_follower(s);
    s.role = Role::Candidate;
    s.votes_granted = 1 << i;
}

fn become_leader(s: &mut Server, n: usize) {
    s.role = Role::Leader;
    s.votes_granted = 0;
    s.recent = 0;
    let next = s.last_index() + 1;
    for j in 0..n {
        s.next_index[j] = next;
        s.match_index[j] = 0;
    }
}

// ----- Log edits at a follower. -----

impl RaftModel {
    /// Figure 2, receiver steps 3 and 4: for each entry, if the log has a different entry at its
    /// index, delete that one and all after it; append entries not already in the log. Returns
    /// whether anything was deleted. (An entry inside the receiver's snapshot is committed, so by
    /// Leader Completeness the leader's entry there is the same one: it is never cut.)
    fn append_new_entries(&self, log: &mut Log, prev_log_index: Index, entries: &[Entry]) -> bool {
        let mut truncated = false;
        for (k, new) in entries.iter().enumerate() {
            let at = prev_log_index as usize + k;
            let existing = log.get(at).map(|x| x.term);
            let conflict = self.decide(D::TruncateEntry, |e| {
                e.at(C::EntryPresent, existing.is_some())
                    && !e.at(C::EntryTermMatches, existing == Some(new.term))
            });
            if conflict {
                log.truncate(at);
                truncated = true;
            }
            if conflict || existing.is_none() {
                log.push(*new);
            }
        }
        truncated
    }
}

/// The truncate-on-match bug: cut the log after prev_log_index unconditionally, then append.
fn truncate_and_append(log: &mut Log, prev_log_index: Index, entries: &[Entry]) -> bool {
    let before: Log = log.clone();
    log.truncate(prev_log_index as usize);
    log.extend(entries.iter().copied());
    !before.starts_with(log) || log.len() < before.len()
}

/// Records the commit of `log[old+1..=new]` (1-based) in the history; a different entry at an
/// index already committed is a State Machine Safety violation.
///
/// A commit past the end of the log (a broken model: see the `commit_within_log` property) records
/// only the entries the log has; so does one that skips indexes never recorded.
fn record_commits(state: &mut State, server: usize, old: Index, new: Index, term: Term) {
    let log = &state.servers[server].log;
    let end = new.min(log.len() as Index);
    for k in old + 1..=end {
        let entry = log[k as usize - 1];
        let at = k as usize - 1;
        if let Some((first, first_term)) = state.committed.get_mut(at) {
            if *first != entry {
                state.flags |= flags::COMMITTED_TWICE;
            }
            *first_term = (*first_term).min(term);
        } else if at == state.committed.len() {
            // A server's commit index covers a prefix of its log, and every index below it was
            // recorded when it was first committed.
            state.committed.push((entry, term));
        }
    }
}

/// Whether the votes that elected `winner` all count: they come from voters of its
/// configuration, and a removed server's vote is never counted once its removal is committed.
/// The last configuration committed in an earlier term than the election's is in the winner's
/// log (Leader Completeness), so its configuration is that one or a later one; if the log lacks
/// it, the votes must come from that one's voters too. (A configuration committed in the
/// election's term or later does not bind it: an election of a stale term may end after it.)
fn votes_count(state: &State, winner: ServerId, votes: u8) -> bool {
    let term = state.server(winner).current_term;
    let counted_by = |c: Config| votes & !(c.voters | c.old_voters) == 0;
    let last_committed = state
        .committed
        .iter()
        .enumerate()
        .rfind(|(_, (e, commit_term))| e.config().is_some() && *commit_term < term)
        .map(|(k, (e, _))| (k, *e));
    let holds_committed =
        last_committed.is_none_or(|(k, entry)| state.server(winner).log.get(k) == Some(&entry));
    let committed = last_committed.map_or(state.initial, |(_, e)| e.config().expect("a config"));
    counted_by(state.config(winner)) && (holds_committed || counted_by(committed))
}

/// Whether delivering `m` can no longer change anything. A reply is ignored by a receiver that has
/// moved past the reply's term, or that no longer holds the role the reply is for (a candidate's
/// votes, a leader's acknowledgements), and it will be ignored forever: terms never decrease and
/// a role is only taken again in a new term. Such messages are removed from the network at once,
/// which keeps states that differ only by dead messages from multiplying.
pub fn is_dead(state: &State, m: &Message) -> bool {
    let s = state.server(m.to);
    let role = match m.body {
        Body::RequestVoteReply { .. } => Role::Candidate,
        Body::AppendEntriesReply { .. } | Body::InstallSnapshotReply { .. } => Role::Leader,
        // A pre-vote reply of the receiver's term or lower answers a pre-candidacy of an
        // earlier term (or refuses one, which tells nothing). One of the next term may still
        // count: a server can stand again for the same term.
        Body::PreVoteReply { .. } => return m.term <= s.current_term,
        Body::RequestVote { .. }
        | Body::PreVote { .. }
        | Body::AppendEntries { .. }
        | Body::InstallSnapshot { .. }
        | Body::TimeoutNow => return false,
    };
    m.term < s.current_term || (m.term == s.current_term && s.role != role)
}

/// Removes every copy of the dead messages (see [`is_dead`]).
fn remove_dead_messages(state: &mut State) {
    let mut network = std::mem::take(&mut state.network);
    network.messages.retain(|(m, _)| !is_dead(state, m));
    state.network = network;
}

impl RaftModel {
    /// Removes the dead messages (see [`is_dead`]), having checked that each one is: delivered,
    /// it must change nothing but the network. Returns false, leaving `state` changed by the
    /// delivery, when a message would have changed something: [`RaftModel::step`] then raises
    /// [`flags::PRUNED_NOT_DEAD`], a violation, on the state the message was removed from.
    ///
    /// The messages are delivered to `state` itself, one after another, and what a delivery may
    /// change is compared with a copy taken before it: the receiver, the history, the flags and
    /// the network's size. A delivery writes no server but its receiver (`tests/delivery.rs`
    /// checks that of every delivery along random walks of each preset), so the other servers
    /// need no copy; this is far cheaper than a copy of the whole state for each dead message.
    #[must_use]
    fn discard_dead_messages(&self, state: &mut State) -> bool {
        let dead: SmallVec<[Message; 4]> = state
            .network
            .distinct()
            .filter(|m| is_dead(state, m))
            .cloned()
            .collect();
        if dead.is_empty() {
            return true;
        }
        let witness_only = flags::DUPLICATE_DELIVERED;
        for m in &dead {
            let receiver = state.servers.shared(m.to as usize);
            let elections = state.elections.clone();
            let committed = state.committed.clone();
            let (flags, in_flight) = (state.flags, state.network.len());
            self.receive(state, m);
            let unchanged = *state.server(m.to) == **receiver
                && state.elections == elections
                && state.committed == committed
                && state.flags & !witness_only == flags & !witness_only
                && state.network.len() + 1 == in_flight;
            if !unchanged {
                return false;
            }
            state.flags = flags;
            // Unchanged: share the server again instead of the delivery's copy of it.
            state.servers.put(m.to as usize, receiver);
        }
        // The deliveries took one copy of each dead message; the other copies go too.
        remove_dead_messages(state);
        true
    }
}

/// What the step invariants compare of one server: its state before a step.
#[derive(Clone, Copy, Debug)]
pub struct Before {
    /// The server's `current_term`.
    pub current_term: Term,
    /// The server's role.
    pub role: Role,
    /// The server's `commit_index`.
    pub commit_index: Index,
    /// The server's `match_index` (all zero unless it leads).
    pub match_index: [Index; MAX_SERVERS],
}

impl Before {
    /// What the step invariants compare of `s`, taken before the step.
    pub fn of(s: &Server) -> Before {
        Before {
            current_term: s.current_term,
            role: s.role,
            commit_index: s.commit_index,
            match_index: s.match_index,
        }
    }

    /// The step invariants other than Leader Append-Only, which compares logs: terms never
    /// decrease; the commit index never decreases except by the server's own restart (`restarted`);
    /// a leader's match_index never decreases within its term.
    pub fn violations(&self, after: &Server, restarted: bool) -> u32 {
        let mut v = 0;
        if after.current_term < self.current_term {
            v |= flags::TERM_DECREASED;
        }
        if after.commit_index < self.commit_index && !restarted {
            v |= flags::COMMIT_DECREASED;
        }
        if self.role == Role::Leader
            && after.role == Role::Leader
            && self.current_term == after.current_term
            && self
                .match_index
                .iter()
                .zip(&after.match_index)
                .any(|(a, b)| b < a)
        {
            v |= flags::MATCH_DECREASED;
        }
        v
    }
}

/// The step invariants: compare each server before and after the step.
fn check_step(before: &State, after: &mut State, restarted: Option<ServerId>) {
    let highest = before.servers.iter().map(|s| s.current_term).max();
    for (i, (a, b)) in before.servers.iter().zip(&after.servers).enumerate() {
        if before.servers.same(&after.servers, i) {
            // Unchanged, and no higher than the highest term before.
            continue;
        }
        // (A lone voter is elected by its own vote in the step that begins its term.)
        let elected_alone = b.role == Role::Leader
            && after
                .elections
                .binary_search(&(b.current_term, i as ServerId))
                .is_ok();
        if Some(b.current_term) > highest
            && !((b.role == Role::Candidate || elected_alone) && b.voted_for == Some(i as ServerId))
        {
            after.flags |= flags::NEW_TERM_WITHOUT_CANDIDATE;
        }
        after.flags |= Before::of(a).violations(b, restarted == Some(i as ServerId));
        if a.role == Role::Leader
            && b.role == Role::Leader
            && a.current_term == b.current_term
            && !b.log.starts_with(&a.log)
        {
            after.flags |= flags::LEADER_APPEND_ONLY_BROKEN;
        }
    }
}
