//! The state of the whole cluster: every server, the network, and the history variables that the
//! properties read.
//!
//! Everything here is small and cheap to clone and hash: stateright deduplicates states by a 64-bit
//! hash of `Hash` alone, so every field that a guard or a property reads is part of `Hash`.

use smallvec::SmallVec;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A server's number, `0..servers`.
pub type ServerId = u8;
/// A Raft term. 0 is the term before any election.
pub type Term = u32;
/// A 1-based log index; 0 is the empty-log sentinel with term 0.
pub type Index = u32;
/// A client value. The model's clients propose values `1..=values`.
pub type Value = u32;

/// The most servers a model can have (the bitsets and the `next_index` arrays are sized for it).
pub const MAX_SERVERS: usize = 7;

/// A read a leader has begun (ReadIndex, §6.4 of Ongaro's dissertation) and not yet served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingRead {
    /// The leader's read round that began it: AppendEntries sent from then on carry this round or
    /// a later one, and only their replies confirm the read.
    pub round: u32,
    /// The read index: the leader's commit index when the read began.
    pub index: Index,
    /// The servers known to have accepted the leader's term after the read began, as a bitset
    /// (the leader itself included).
    pub acks: u8,
    /// History: the highest index committed anywhere when the read began (what it must include).
    pub required: Index,
}

/// The reads a leader has pending; at most a few in a bounded check.
pub type Reads = SmallVec<[PendingRead; 1]>;

/// A cluster configuration (§6 of the paper, §4 of the dissertation): who votes and who only
/// learns, as bitsets of server ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Config {
    /// The voters (of C_new, while joint).
    pub voters: u8,
    /// While joint (C_old,new): the voters of C_old, whose majority is needed as well; 0 when
    /// the configuration is not joint.
    pub old_voters: u8,
    /// Learners receive the log but do not vote and are not counted.
    pub learners: u8,
}

impl Config {
    /// Servers `0..voters` vote, no one learns.
    pub fn of_voters(voters: u8) -> Config {
        Config {
            voters: ((1u16 << voters) - 1) as u8,
            old_voters: 0,
            learners: 0,
        }
    }

    /// Whether this is a joint configuration (C_old,new).
    pub fn is_joint(&self) -> bool {
        self.old_voters != 0
    }

    /// Whether `i` votes, in C_new or (while joint) in C_old.
    pub fn is_voter(&self, i: ServerId) -> bool {
        (self.voters | self.old_voters) & (1 << i) != 0
    }

    /// Every server the configuration names: the voters of both halves and the learners.
    pub fn members(&self) -> u8 {
        self.voters | self.old_voters | self.learners
    }

    /// The configuration with every server id renamed (`rename[old] = new`).
    pub fn renamed(&self, rename: &[ServerId]) -> Config {
        let r = |set: u8| {
            (0..rename.len())
                .filter(|&old| set & (1 << old) != 0)
                .fold(0u8, |acc, old| acc | (1 << rename[old]))
        };
        Config {
            voters: r(self.voters),
            old_voters: r(self.old_voters),
            learners: r(self.learners),
        }
    }
}

/// One log entry: the term of the leader that created it and either a client's value or a
/// configuration.
///
/// A configuration is packed into `value` with [`CONFIG_ENTRY`] set (its three bitsets in the low
/// 24 bits): an entry stays eight bytes, which every log copy, comparison and hash of the search
/// pays for. Client values are small, so the two never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The client's value, or a packed configuration (see [`Entry::config`]).
    pub value: Value,
}

/// The bit of [`Entry::value`] that marks a configuration entry.
pub const CONFIG_ENTRY: Value = 1 << 31;

impl Entry {
    /// A client's entry.
    pub fn client(term: Term, value: Value) -> Entry {
        debug_assert!(value & CONFIG_ENTRY == 0, "client values are small");
        Entry { term, value }
    }

    /// A configuration entry.
    pub fn configuration(term: Term, config: Config) -> Entry {
        let packed = u32::from(config.voters)
            | (u32::from(config.old_voters) << 8)
            | (u32::from(config.learners) << 16);
        Entry {
            term,
            value: CONFIG_ENTRY | packed,
        }
    }

    /// The configuration a configuration entry installs; `None` for a client's entry.
    pub fn config(&self) -> Option<Config> {
        (self.value & CONFIG_ENTRY != 0).then_some(Config {
            voters: self.value as u8,
            old_voters: (self.value >> 8) as u8,
            learners: (self.value >> 16) as u8,
        })
    }
}

/// The configuration in force at a server whose log is `log`: the last configuration entry in
/// it, committed or not (a configuration takes effect when appended, as in §6 of the paper), or
/// `initial` if there is none. A truncated configuration entry so gives way to the one before.
pub fn config_of(log: &[Entry], initial: Config) -> Config {
    log.iter().rev().find_map(Entry::config).unwrap_or(initial)
}

/// The index of the last configuration entry of `log`, 0 if there is none.
pub fn config_index(log: &[Entry]) -> Index {
    log.iter()
        .rposition(|e| e.config().is_some())
        .map_or(0, |p| p as Index + 1)
}

/// A log, or a run of entries in a message. Short logs live inline.
pub type Log = SmallVec<[Entry; 4]>;

/// The term of the entry at `index` (1-based); 0 for index 0 and for an index past the end.
pub fn term_at(log: &[Entry], index: Index) -> Term {
    if index == 0 {
        return 0;
    }
    log.get(index as usize - 1).map_or(0, |e| e.term)
}

/// The term of the last entry of `log`, 0 when it is empty.
pub fn last_term(log: &[Entry]) -> Term {
    log.last().map_or(0, |e| e.term)
}

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Follows the leader of its term, if any; every server starts, and restarts after a crash,
    /// as one.
    Follower,
    /// Stands for election in its current term, having voted for itself.
    Candidate,
    /// Won the election of its current term; replicates its log to the others.
    Leader,
    /// PreVote (§9.6 of the dissertation): a server whose election timer fired asks whether it
    /// could win an election before it raises its term.
    PreCandidate,
}

/// One server: the persistent state of Figure 2 and the volatile state that the model tracks.
///
/// `last_applied` is left out: in this model a server applies exactly what it has committed, so
/// it would always equal `commit_index`.
///
/// A snapshot is modelled by `snapshot_index`: the entries `1..=snapshot_index` of `log` are the
/// snapshot (what the state machine was built from), the rest is the log proper. Keeping the
/// snapshot's entries, rather than an opaque state, lets every property read a server's whole
/// history: an entry in a snapshot counts as present and committed.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    // Persistent: survives a crash.
    /// currentTerm of Figure 2: the latest term the server has seen.
    pub current_term: Term,
    /// votedFor of Figure 2: the server it voted for in its current term, if any.
    pub voted_for: Option<ServerId>,
    /// log[] of Figure 2: `log[k]` is the entry at index k+1, the snapshot's entries included.
    pub log: Log,
    /// The last index included in the server's snapshot (0: no snapshot).
    pub snapshot_index: Index,
    // Volatile: lost in a crash.
    /// Follower, candidate, pre-candidate or leader.
    pub role: Role,
    /// commitIndex of Figure 2: the highest index the server knows committed (and has applied).
    pub commit_index: Index,
    /// Candidates only: the servers that granted their vote, as a bitset.
    pub votes_granted: u8,
    /// Leaders only (all zero otherwise): for each server, the next index to send it.
    pub next_index: [Index; MAX_SERVERS],
    /// Leaders only (all zero otherwise): for each server, the highest index known to match.
    pub match_index: [Index; MAX_SERVERS],
    /// Leaders only (zero otherwise): the read rounds begun in this term. Every AppendEntries
    /// carries the latest, and its reply echoes it.
    pub read_round: u32,
    /// Leaders only (empty otherwise): the reads begun and not yet served.
    pub reads: Reads,
    /// With CheckQuorum, followers only: the server has heard from the leader of its term since
    /// its election timer last ran out, so it ignores RequestVotes and PreVotes of higher terms
    /// (the leader lease of §4.2.3 of the dissertation). A leader is always in its lease.
    pub lease: bool,
    /// With CheckQuorum, leaders only: the servers heard from since the leader last checked
    /// that it still has a quorum (itself included), as a bitset.
    pub recent: u8,
}

impl Server {
    /// A server as it first boots: term 0, no vote, an empty log.
    pub fn new() -> Self {
        Server {
            current_term: 0,
            voted_for: None,
            log: Log::new(),
            snapshot_index: 0,
            role: Role::Follower,
            commit_index: 0,
            votes_granted: 0,
            next_index: [0; MAX_SERVERS],
            match_index: [0; MAX_SERVERS],
            read_round: 0,
            reads: Reads::new(),
            lease: false,
            recent: 0,
        }
    }

    /// The index of the last entry, 0 for an empty log.
    pub fn last_index(&self) -> Index {
        self.log.len() as Index
    }

    /// The term of the last entry, 0 for an empty log.
    pub fn last_term(&self) -> Term {
        last_term(&self.log)
    }
}

impl Clone for Server {
    // By hand: the derived clone copies the log and the reads entry by entry, this one each in
    // one go.
    #[inline]
    fn clone(&self) -> Self {
        Server {
            log: Log::from_slice(&self.log),
            reads: Reads::from_slice(&self.reads),
            ..*self
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// A message in flight. The network holds messages by content, so two identical messages are two
/// copies of one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Message {
    /// The sender.
    pub from: ServerId,
    /// The addressee.
    pub to: ServerId,
    /// The sender's `current_term` when it sent the message.
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// What a message says, besides who sent it to whom and in which term.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Body {
    /// RequestVote of Figure 2: a candidate asks for the receiver's vote in the message's term.
    RequestVote {
        /// lastLogIndex of Figure 2: the index of the candidate's last entry.
        last_log_index: Index,
        /// lastLogTerm of Figure 2: the term of the candidate's last entry.
        last_log_term: Term,
        /// Sent by a candidate that a leader handed its leadership (TimeoutNow): a server in its
        /// leader lease hears it all the same.
        transfer: bool,
    },
    /// The answer to a RequestVote; its term is the replying server's current term.
    RequestVoteReply {
        /// voteGranted of Figure 2: whether the sender voted for the receiver.
        vote_granted: bool,
    },
    /// PreVote: would the receiver vote for the sender in the message's term (the sender's term
    /// plus one)? Neither side changes its term for it.
    PreVote {
        /// The index of the pre-candidate's last entry.
        last_log_index: Index,
        /// The term of the pre-candidate's last entry.
        last_log_term: Term,
    },
    /// The answer to a PreVote. Its term is the request's when granted, the receiver's own
    /// when refused.
    PreVoteReply {
        /// Whether the sender would vote for the receiver.
        granted: bool,
    },
    /// A leader hands its leadership to the receiver (§3.10 of the dissertation): start an
    /// election now.
    TimeoutNow,
    /// AppendEntries of Figure 2: a leader's entries for the receiver's log, or none (a
    /// heartbeat).
    AppendEntries {
        /// prevLogIndex of Figure 2: the index of the entry just before `entries`.
        prev_log_index: Index,
        /// prevLogTerm of Figure 2: the leader's term at `prev_log_index`.
        prev_log_term: Term,
        /// entries[] of Figure 2: the leader's entries from `prev_log_index + 1` on.
        entries: Log,
        /// leaderCommit of Figure 2: the leader's commit index when it sent this.
        leader_commit: Index,
        /// The leader's read round when it sent this (0: no read begun in its term).
        read_round: u32,
    },
    /// The answer to an AppendEntries; its term is the replying server's current term.
    AppendEntriesReply {
        /// Whether the follower accepted the entries, and if not, why.
        outcome: AppendOutcome,
        /// The read round of the AppendEntries this answers.
        read_round: u32,
    },
    /// A leader's snapshot: its entries through `last_included_index`.
    InstallSnapshot {
        /// lastIncludedIndex of Figure 13: the index of the snapshot's last entry.
        last_included_index: Index,
        /// lastIncludedTerm of Figure 13: the term of that entry.
        last_included_term: Term,
        /// The snapshot, as the entries `1..=last_included_index` it was built from.
        entries: Log,
    },
    /// The follower now holds the snapshot's entries through `match_index` (or ignored an older
    /// snapshot, and says so with the snapshot's own index).
    InstallSnapshotReply {
        /// The snapshot's last index, or 0 when the request was refused for its term.
        match_index: Index,
    },
}

/// The answer to an AppendEntries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's through `match_index` (prev_log_index + entries).
    Success {
        /// The index of the last entry the AppendEntries covered: prev_log_index plus its
        /// number of entries.
        match_index: Index,
    },
    /// The AppendEntries came from a stale term; the reply's term tells the sender to step down.
    StaleTerm,
    /// The consistency check failed. `conflict_term` is the follower's term at prev_log_index (0
    /// when its log is too short) and `conflict_index` the first index it holds with that term (its
    /// log length + 1 when its log is too short): the hint that lets a leader back up by a term at a
    /// time.
    Conflict {
        /// The follower's term at prev_log_index, 0 when its log is too short.
        conflict_term: Term,
        /// The first index the follower holds with `conflict_term`, no lower than the first index
        /// after its snapshot; its log length + 1 when its log is too short.
        conflict_index: Index,
    },
}

impl Message {
    /// Whether this message is a request (RequestVote or AppendEntries) rather than a reply.
    pub fn is_request(&self) -> bool {
        matches!(
            self.body,
            Body::RequestVote { .. }
                | Body::PreVote { .. }
                | Body::AppendEntries { .. }
                | Body::InstallSnapshot { .. }
                | Body::TimeoutNow
        )
    }
}

/// The network: a multiset of messages, kept sorted so that equal multisets are equal values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Network {
    /// Each distinct message with its number of copies (at least 1), sorted by message.
    pub messages: SmallVec<[(Message, u8); 2]>,
}

impl Network {
    /// How many messages are in flight, copies included.
    pub fn len(&self) -> usize {
        self.messages.iter().map(|(_, n)| *n as usize).sum()
    }

    /// Whether no message is in flight.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The number of copies of `m` in flight.
    pub fn count(&self, m: &Message) -> u8 {
        match self.messages.binary_search_by(|(x, _)| x.cmp(m)) {
            Ok(i) => self.messages[i].1,
            Err(_) => 0,
        }
    }

    /// Adds one copy of `m`.
    pub fn send(&mut self, m: Message) {
        match self.messages.binary_search_by(|(x, _)| x.cmp(&m)) {
            Ok(i) => self.messages[i].1 += 1,
            Err(i) => self.messages.insert(i, (m, 1)),
        }
    }

    /// Removes one copy of `m`; returns whether there was one.
    pub fn remove(&mut self, m: &Message) -> bool {
        match self.messages.binary_search_by(|(x, _)| x.cmp(m)) {
            Ok(i) => {
                if self.messages[i].1 > 1 {
                    self.messages[i].1 -= 1;
                } else {
                    self.messages.remove(i);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Each distinct message once.
    pub fn distinct(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().map(|(m, _)| m)
    }
}

/// Flags recorded along a behaviour: witnesses for the sometimes-properties and violations of the
/// step invariants (which compare a state with its predecessor, so they are checked in the step
/// and remembered here).
pub mod flags {
    /// A follower deleted a conflicting suffix of its log.
    pub const TRUNCATED: u32 = 1 << 0;
    /// A server became leader after some server had crashed and restarted.
    pub const LEADER_AFTER_RESTART: u32 = 1 << 1;
    /// A leader's commit advance committed an entry of an older term together with one of its own
    /// (the Figure 8 shape).
    pub const OLD_TERM_COMMITTED_THROUGH_NEW: u32 = 1 << 2;
    /// A message was delivered while another copy of it, made by Duplicate, was still in flight.
    pub const DUPLICATE_DELIVERED: u32 = 1 << 3;
    /// A leader served a read.
    pub const READ_SERVED: u32 = 1 << 6;
    /// Violation: a leader removed or changed an entry of its own log.
    pub const LEADER_APPEND_ONLY_BROKEN: u32 = 1 << 8;
    /// Violation: a server's current_term went down.
    pub const TERM_DECREASED: u32 = 1 << 9;
    /// Violation: two different entries were committed at one index.
    pub const COMMITTED_TWICE: u32 = 1 << 10;
    /// A follower installed a snapshot sent by a leader.
    pub const SNAPSHOT_INSTALLED: u32 = 1 << 4;
    /// A server with a snapshot crashed and restarted from it.
    pub const RESTARTED_FROM_SNAPSHOT: u32 = 1 << 5;
    /// Violation: a server's commit index went down other than by its own restart.
    pub const COMMIT_DECREASED: u32 = 1 << 11;
    /// Violation: a leader's match_index for a peer went down within its term.
    pub const MATCH_DECREASED: u32 = 1 << 12;
    /// Violation: a leader granted its vote to a candidate of its own term.
    pub const LEADER_GRANTED_VOTE: u32 = 1 << 13;
    /// Violation: a message removed as dead would have changed its receiver's state.
    pub const PRUNED_NOT_DEAD: u32 = 1 << 14;
    /// Violation: a leader was elected by a vote that its configuration does not count (a
    /// learner's, or a removed server's once the removal was committed).
    pub const VOTE_OF_NON_VOTER: u32 = 1 << 15;
    /// Violation: a server entered a term higher than every server's without becoming a
    /// candidate in it (a PreVote that raised a term, for one).
    pub const NEW_TERM_WITHOUT_CANDIDATE: u32 = 1 << 16;
    /// A pre-candidate won its PreVote and became a candidate.
    pub const PRE_VOTE_WON: u32 = 1 << 17;
    /// A leader stepped down at a quorum check, having heard from too few servers.
    pub const CHECK_QUORUM_STEPPED_DOWN: u32 = 1 << 18;
    /// A TimeoutNow started an election at the server a leader handed over to.
    pub const TRANSFER_STARTED: u32 = 1 << 19;
}

/// The servers of a cluster, indexed by [`ServerId`].
///
/// Each server is shared (an `Arc`) between a state and the states it leads to, until a step
/// writes it: most steps write one server, so a successor copies that one and shares the others.
/// Reading through `servers[i]` or [`Servers::iter`] reads the shared server; writing through
/// `servers[i]` (`IndexMut`) or `&mut servers` first copies the server if another state
/// shares it (`Arc::make_mut`). Equality and order are by content.
///
/// A shared server also keeps its digest, the hash of its content, which `State`'s hash uses in
/// place of the content: a successor hashes only the servers its step wrote.
#[derive(Clone, Default)]
pub struct Servers(SmallVec<[Arc<Node>; MAX_SERVERS]>);

/// A server as [`Servers`] shares it, with its digest (0 until it is first computed).
#[derive(Debug)]
pub struct Node {
    server: Server,
    digest: AtomicU64,
}

impl Clone for Node {
    fn clone(&self) -> Self {
        Node {
            server: self.server.clone(),
            digest: AtomicU64::new(0),
        }
    }
}

impl std::ops::Deref for Node {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// A handle on a server that a state holds, without a copy (see [`Servers::shared`]).
pub type SharedServer = Arc<Node>;

impl Servers {
    /// How many servers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each server, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Server> + DoubleEndedIterator + Clone {
        self.0.iter().map(|s| &s.server)
    }

    /// Whether server `i` is the very same (shared) server in `self` and `other`, which
    /// implies they are equal.
    pub fn same(&self, other: &Servers, i: usize) -> bool {
        Arc::ptr_eq(&self.0[i], &other.0[i])
    }

    /// Gives each server its own copy, shared with no other state. The search does this to a
    /// state it hands to another thread: the two threads' states then share no server, so their
    /// cores do not take turns at the cache lines of the shared servers' reference counts.
    pub fn unshare(&mut self) {
        for node in &mut self.0 {
            *node = Arc::new(Node::clone(node));
        }
    }

    /// Server `i`, shared: a handle to put back with [`Servers::put`].
    pub fn shared(&self, i: usize) -> SharedServer {
        Arc::clone(&self.0[i])
    }

    /// Puts `server` in place of server `i`.
    pub fn put(&mut self, i: usize, server: SharedServer) {
        self.0[i] = server;
    }

    /// Reorders the servers, `order[new] = old`, and then passes each one to `rename`.
    pub fn reorder(&mut self, order: &[ServerId], mut rename: impl FnMut(&mut Server)) {
        let mut old: SmallVec<[Option<Arc<Node>>; MAX_SERVERS]> =
            std::mem::take(&mut self.0).into_iter().map(Some).collect();
        self.0 = order
            .iter()
            .map(|&o| {
                let mut s = old[o as usize].take().expect("a permutation");
                rename(write(&mut s));
                s
            })
            .collect();
    }

    /// For tests only: server `i` to write, keeping the digest it has cached, which a write must
    /// not do. `tests/digest.rs` uses it to show that its check sees a stale digest.
    #[doc(hidden)]
    pub fn write_keeping_digest(&mut self, i: usize) -> &mut Server {
        &mut Arc::make_mut(&mut self.0[i]).server
    }

    /// The digest of server `i`, computed the first time it is asked for.
    fn digest(&self, i: usize) -> u64 {
        let node = &self.0[i];
        // A race between two threads computes the same value twice.
        match node.digest.load(Ordering::Relaxed) {
            0 => {
                let mut hasher = DIGEST.build_hasher();
                let mut p = Packer {
                    buf: [0; PACK_CHUNK],
                    len: 0,
                    out: &mut hasher,
                };
                p.pack_server(&node.server, self.0.len());
                p.flush();
                let digest = hasher.finish().max(1);
                node.digest.store(digest, Ordering::Relaxed);
                digest
            }
            digest => digest,
        }
    }
}

/// The hasher of a server's digest: ahash with fixed seeds, so that the digests, and the states'
/// fingerprints with them, are the same from run to run.
const DIGEST: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// The server in `node`, to write: copied first if another state shares it, its digest reset.
#[inline]
fn write(node: &mut Arc<Node>) -> &mut Server {
    let node = Arc::make_mut(node);
    *node.digest.get_mut() = 0;
    &mut node.server
}

impl PartialEq for Servers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|i| self.same(other, i) || self[i] == other[i])
    }
}

impl Eq for Servers {}

impl std::ops::Index<usize> for Servers {
    type Output = Server;

    #[inline]
    fn index(&self, i: usize) -> &Server {
        &self.0[i].server
    }
}

impl std::ops::IndexMut<usize> for Servers {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Server {
        write(&mut self.0[i])
    }
}

impl<'a> IntoIterator for &'a Servers {
    type Item = &'a Server;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Arc<Node>>, fn(&Arc<Node>) -> &Server>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|s| &s.server)
    }
}

impl<'a> IntoIterator for &'a mut Servers {
    type Item = &'a mut Server;
    type IntoIter =
        std::iter::Map<std::slice::IterMut<'a, Arc<Node>>, fn(&mut Arc<Node>) -> &mut Server>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut().map(write)
    }
}

impl FromIterator<Server> for Servers {
    fn from_iter<T: IntoIterator<Item = Server>>(iter: T) -> Self {
        Servers(
            iter.into_iter()
                .map(|server| {
                    Arc::new(Node {
                        server,
                        digest: AtomicU64::new(0),
                    })
                })
                .collect(),
        )
    }
}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The whole cluster.
///
/// `Hash` packs every field into one string of 32-bit words, each server as its cached digest (see
/// [`Servers`]), and hashes that in one call: the checker hashes every state it generates, and this
/// is several times cheaper than hashing field by field.
#[derive(PartialEq, Eq)]
pub struct State {
    /// Every server, indexed by [`ServerId`].
    pub servers: Servers,
    /// The configuration the cluster was started with (a server's configuration while its log
    /// holds no configuration entry). Renamed with the servers, so symmetry keeps it right.
    pub initial: Config,
    /// The messages in flight.
    pub network: Network,
    /// History: every election won, as sorted, distinct (term, leader) pairs.
    pub elections: SmallVec<[(Term, ServerId); 4]>,
    /// History: `committed[k]` is the entry first committed at index k+1 and the term of the
    /// commit (the committing leader's term, or the term of the AppendEntries that told a follower).
    pub committed: SmallVec<[(Entry, Term); 4]>,
    /// History: every read served, as (read index, the highest index committed when it began).
    pub served: SmallVec<[(Index, Index); 1]>,
    /// History: see [`flags`].
    pub flags: u32,
    /// Crash-and-restarts so far, which [`Bounds::max_crashes`](crate::Bounds::max_crashes) limits.
    pub crashes: u8,
    /// Messages lost so far, which [`Bounds::max_drops`](crate::Bounds::max_drops) limits.
    pub drops: u8,
    /// Messages duplicated so far, which [`Bounds::max_dups`](crate::Bounds::max_dups) limits.
    pub dups: u8,
    /// Reads leaders have begun so far, which
    /// [`Bounds::max_reads`](crate::Bounds::max_reads) limits.
    pub reads: u8,
    /// Configuration changes leaders have appended, in total.
    pub changes: u8,
    /// Leadership transfers (TimeoutNow sent), in total.
    pub transfers: u8,
}

impl Clone for State {
    fn clone(&self) -> Self {
        State {
            servers: self.servers.clone(),
            initial: self.initial,
            network: Network {
                messages: clone_small(&self.network.messages),
            },
            // `from_slice` copies these `Copy` items in one go; `clone` one by one.
            elections: SmallVec::from_slice(&self.elections),
            committed: SmallVec::from_slice(&self.committed),
            served: SmallVec::from_slice(&self.served),
            ..*self
        }
    }
}

/// A clone of `v`. When its items do not fit inline, they are collected in a `Vec`, which writes
/// each clone in its place; `SmallVec`'s `clone` moves each one there from a temporary, which
/// for servers and messages costs a call to `memcpy` each.
fn clone_small<A: smallvec::Array>(v: &SmallVec<A>) -> SmallVec<A>
where
    A::Item: Clone,
{
    if v.spilled() {
        SmallVec::from_vec(v.to_vec())
    } else {
        v.clone()
    }
}

impl State {
    /// The server numbered `i`.
    pub fn server(&self, i: ServerId) -> &Server {
        &self.servers[i as usize]
    }

    /// The configuration in force at server `i` (see [`config_of`]). Until a leader has changed the
    /// configuration, no log holds a configuration entry: the initial one, without a scan of the log.
    pub fn config(&self, i: ServerId) -> Config {
        if self.changes == 0 {
            return self.initial;
        }
        config_of(&self.server(i).log, self.initial)
    }

    /// Whether flag `f` (see [`flags`]) is set.
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }
}

impl std::hash::Hash for State {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut p = Packer {
            buf: [0; PACK_CHUNK],
            len: 0,
            out: state,
        };
        p.pack_state(self);
        p.flush();
    }
}

const PACK_CHUNK: usize = 256;

/// Writes a state as 32-bit little-endian words, every field in a fixed order, lists prefixed by
/// their length: an injective encoding, so distinct states give distinct bytes (each server is
/// written as its digest, see [`Servers`]). The bytes go to the hasher in chunks of at most
/// `PACK_CHUNK`. Fixed-width words cost more bytes than varints, but the hasher takes 16 bytes at
/// a time, and a word is one store where a varint is a loop.
struct Packer<'h, H: std::hash::Hasher> {
    buf: [u8; PACK_CHUNK],
    len: usize,
    out: &'h mut H,
}

impl<H: std::hash::Hasher> Packer<'_, H> {
    fn flush(&mut self) {
        self.out.write(&self.buf[..self.len]);
        self.len = 0;
    }

    /// Makes room for `values` more words, flushing the chunk if it could overflow.
    #[inline]
    fn room(&mut self, values: usize) {
        if self.len + 4 * values > PACK_CHUNK {
            self.flush();
        }
    }

    /// One word; the caller made room for it.
    #[inline]
    fn u(&mut self, v: u32) {
        self.buf[self.len..self.len + 4].copy_from_slice(&v.to_le_bytes());
        self.len += 4;
    }

    /// Eight bytes; the caller made room for two words.
    #[inline]
    fn raw(&mut self, v: u64) {
        self.buf[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }

    fn entries(&mut self, log: &[Entry]) {
        self.room(1);
        self.u(log.len() as u32);
        for e in log {
            self.room(2);
            self.u(e.term);
            self.u(e.value);
        }
    }

    /// One server; `n` is the number of servers in its state.
    fn pack_server(&mut self, srv: &Server, n: usize) {
        self.room(2);
        self.u(srv.current_term);
        self.u(srv.voted_for.map_or(0, |v| v as u32 + 1));
        self.entries(&srv.log);
        self.room(4 + 2 * n);
        self.u(srv.snapshot_index);
        self.u(srv.role as u32 | u32::from(srv.lease) << 2);
        self.u(srv.commit_index);
        self.u(srv.votes_granted as u32);
        // Only a leader's are ever non-zero, and only the first `n`.
        if srv.role == Role::Leader {
            for k in 0..n {
                self.u(srv.next_index[k]);
                self.u(srv.match_index[k]);
            }
            self.room(3);
            self.u(srv.read_round);
            self.u(u32::from(srv.recent));
            self.u(srv.reads.len() as u32);
            for r in &srv.reads {
                self.room(4);
                self.u(r.round);
                self.u(r.index);
                self.u(r.acks as u32);
                self.u(r.required);
            }
        }
    }

    fn pack_state(&mut self, s: &State) {
        let n = s.servers.len();
        self.room(4);
        self.u(n as u32);
        self.u(u32::from(s.initial.voters));
        self.u(u32::from(s.initial.old_voters));
        self.u(u32::from(s.initial.learners));
        for i in 0..n {
            self.room(2);
            self.raw(s.servers.digest(i));
        }
        self.room(1);
        self.u(s.network.messages.len() as u32);
        for (m, copies) in &s.network.messages {
            // The most a message writes besides its entries.
            self.room(8);
            self.u(m.from as u32);
            self.u(m.to as u32);
            self.u(m.term);
            match &m.body {
                Body::RequestVote {
                    last_log_index,
                    last_log_term,
                    transfer,
                } => {
                    self.u(if *transfer { 8 } else { 0 });
                    self.u(*last_log_index);
                    self.u(*last_log_term);
                }
                Body::PreVote {
                    last_log_index,
                    last_log_term,
                } => {
                    self.u(9);
                    self.u(*last_log_index);
                    self.u(*last_log_term);
                }
                Body::PreVoteReply { granted } => {
                    self.u(10);
                    self.u(*granted as u32);
                }
                Body::TimeoutNow => self.u(11),
                Body::RequestVoteReply { vote_granted } => {
                    self.u(1);
                    self.u(*vote_granted as u32);
                }
                Body::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    read_round,
                } => {
                    self.u(2);
                    self.u(*prev_log_index);
                    self.u(*prev_log_term);
                    self.entries(entries);
                    self.room(2);
                    self.u(*leader_commit);
                    self.u(*read_round);
                }
                Body::InstallSnapshot {
                    last_included_index,
                    last_included_term,
                    entries,
                } => {
                    self.u(6);
                    self.u(*last_included_index);
                    self.u(*last_included_term);
                    self.entries(entries);
                }
                Body::InstallSnapshotReply { match_index } => {
                    self.u(7);
                    self.u(*match_index);
                }
                Body::AppendEntriesReply {
                    outcome,
                    read_round,
                } => {
                    match outcome {
                        AppendOutcome::Success { match_index } => {
                            self.u(3);
                            self.u(*match_index);
                        }
                        AppendOutcome::StaleTerm => self.u(4),
                        AppendOutcome::Conflict {
                            conflict_term,
                            conflict_index,
                        } => {
                            self.u(5);
                            self.u(*conflict_term);
                            self.u(*conflict_index);
                        }
                    }
                    self.u(*read_round);
                }
            }
            self.room(1);
            self.u(*copies as u32);
        }
        self.room(1);
        self.u(s.elections.len() as u32);
        for (term, leader) in &s.elections {
            self.room(2);
            self.u(*term);
            self.u(*leader as u32);
        }
        self.room(1);
        self.u(s.committed.len() as u32);
        for (e, term) in &s.committed {
            self.room(2);
            self.u(*term);
            self.entries(std::slice::from_ref(e));
        }
        self.room(1);
        self.u(s.served.len() as u32);
        for (index, required) in &s.served {
            self.room(2);
            self.u(*index);
            self.u(*required);
        }
        self.room(7);
        self.u(s.flags);
        self.u(s.crashes as u32);
        self.u(s.drops as u32);
        self.u(s.dups as u32);
        self.u(s.reads as u32);
        self.u(s.changes as u32);
        self.u(s.transfers as u32);
    }
}

/// A state reads as a per-server table and the messages in flight (this is what the Explorer
/// shows as the current state).
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::display::state(self))
    }
}
