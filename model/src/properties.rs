//! The properties the checker verifies: Raft's five safety properties (§5.2 to §5.4, Figure 3),
//! sanity invariants, and the sometimes-properties that show the bounds are not vacuous.

use crate::bounds::{witness, Bounds};
use crate::raft::RaftModel;
use crate::state::{flags, Role, State};
use stateright::Property;

/// The name of [`election_safety`]: at most one leader is elected in a term.
pub const ELECTION_SAFETY: &str = "Election Safety";
/// The name of [`log_matching`]: logs that agree on an entry agree on every entry before it.
pub const LOG_MATCHING: &str = "Log Matching";
/// The name of [`leader_append_only`]: a leader never overwrites or deletes its entries.
pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
/// The name of [`leader_completeness`]: a leader holds every entry committed in an earlier term.
pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
/// The name of [`state_machine_safety`]: no two servers apply different entries at one index.
pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";
/// The name of [`commit_monotonic`].
pub const COMMIT_MONOTONIC: &str = "commit_index never decreases but by a restart";
/// The name of [`match_monotonic`].
pub const MATCH_MONOTONIC: &str = "match_index never decreases in a leader's term";
/// The name of [`leader_never_votes`].
pub const LEADER_NEVER_VOTES: &str = "a leader never grants a vote in its term";
/// The name of [`commit_within_log`].
pub const COMMIT_WITHIN_LOG: &str = "commit_index <= last index";
/// The name of [`pruned_messages_were_dead`], worded as what a violation means.
pub const PRUNED_DEAD: &str = "pruned message was not dead";
/// The name of [`terms_monotonic`].
pub const TERMS_MONOTONIC: &str = "terms never decrease (sanity)";
/// The name of [`match_below_next`].
pub const MATCH_BELOW_NEXT: &str = "match_index < next_index (sanity)";
/// The name of [`snapshot_committed`].
pub const SNAPSHOT_COMMITTED: &str = "snapshot_index <= commit_index (sanity)";
/// The name of [`read_linearizable`]: a read includes every write committed before it began.
pub const READ_LINEARIZABLE: &str = "Read Linearizability";
/// The name of [`one_change_at_a_time`]: no log holds two uncommitted configuration entries.
pub const ONE_CHANGE_AT_A_TIME: &str = "at most one uncommitted configuration change";
/// The name of [`votes_of_voters`]: only voters' votes elect a leader.
pub const VOTES_OF_VOTERS: &str = "a removed server's vote is never counted";
/// The name of [`new_term_by_candidate`]: terms rise only through elections.
pub const NEW_TERM_BY_CANDIDATE: &str = "a new term begins with a candidate";

/// Election Safety: at most one leader was ever elected in a term (over the history of
/// elections, not only the leaders of this state).
pub fn election_safety(_: &RaftModel, s: &State) -> bool {
    s.elections.windows(2).all(|w| w[0].0 != w[1].0)
}

/// Log Matching: if two logs contain an entry with the same index and term, the logs are
/// identical in all entries up through that index.
pub fn log_matching(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().enumerate().all(|(i, a)| {
        s.servers.iter().skip(i + 1).all(|b| {
            let common = a.log.len().min(b.log.len());
            // The highest index where the terms agree; everything up to it must be equal.
            match (0..common).rev().find(|&k| a.log[k].term == b.log[k].term) {
                Some(k) => a.log[..=k] == b.log[..=k],
                None => true,
            }
        })
    })
}

/// Leader Append-Only: a leader never overwrites or deletes entries in its log (checked on every
/// step; see `check_step`).
pub fn leader_append_only(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::LEADER_APPEND_ONLY_BROKEN)
}

/// Leader Completeness: an entry committed in term T is in the log of every leader of a term
/// after T (over the history of commits).
pub fn leader_completeness(_: &RaftModel, s: &State) -> bool {
    s.servers
        .iter()
        .filter(|l| l.role == Role::Leader)
        .all(|l| {
            s.committed
                .iter()
                .enumerate()
                .all(|(k, (entry, term))| *term >= l.current_term || l.log.get(k) == Some(entry))
        })
}

/// State Machine Safety: no two servers ever apply different entries at one index (over the
/// history of commits), and the committed prefixes of the current logs agree.
pub fn state_machine_safety(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::COMMITTED_TWICE)
        && s.servers.iter().all(|a| {
            let c = a.commit_index.min(a.last_index()) as usize;
            a.log[..c]
                .iter()
                .zip(&s.committed)
                .all(|(e, (committed, _))| e == committed)
        })
}

/// Read Linearizability: a read returns a state that includes every write committed before the
/// read began: its read index is at least the highest index committed anywhere then (over the
/// history of reads served; the entries through it are the committed ones by Leader Completeness
/// and State Machine Safety).
pub fn read_linearizable(_: &RaftModel, s: &State) -> bool {
    s.served.iter().all(|(index, required)| index >= required)
}

/// At most one uncommitted configuration change: no log holds two configuration entries past the
/// highest index committed anywhere (over the history of commits). A new configuration is
/// appended only once the last one has committed, so one leader never has two in flight; and a
/// later leader appends one only after it has committed an entry of its term, which commits any
/// configuration an earlier leader left behind in its log.
pub fn one_change_at_a_time(_: &RaftModel, s: &State) -> bool {
    let committed = s.committed.len();
    s.servers.iter().all(|a| {
        a.log
            .iter()
            .skip(committed)
            .filter(|e| e.config().is_some())
            .count()
            <= 1
    })
}

/// Every vote that made a leader came from a voter of its configuration, whose log holds the
/// last configuration committed in an earlier term (or the votes came from that one's voters): a
/// removed server's vote, or a learner's, is never counted once the change is committed (checked
/// at every election; see `votes_count` in `raft.rs`).
pub fn votes_of_voters(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::VOTE_OF_NON_VOTER)
}

/// Terms rise only through elections: a server that enters a term higher than every server's
/// does so as a candidate that voted for itself (a timeout, a PreVote won, a TimeoutNow; a lone
/// voter is elected in that step, by its own vote), never by
/// adopting a term no server holds, as a PreVote's or a granted PreVoteReply's would be (the term
/// the pre-candidate would stand in). Checked on every step; see `check_step`.
pub fn new_term_by_candidate(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::NEW_TERM_WITHOUT_CANDIDATE)
}

/// A server's commit index never goes down, except when the server itself restarts (what it
/// applied is then rebuilt from its snapshot). Checked on every step; see `check_step`.
pub fn commit_monotonic(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::COMMIT_DECREASED)
}

/// A leader's match_index for a peer never goes down within its term: what a peer acknowledged
/// stays acknowledged. Checked on every step; see `check_step`.
pub fn match_monotonic(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::MATCH_DECREASED)
}

/// A leader has voted for itself in its term, so it never grants a vote in that term.
pub fn leader_never_votes(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::LEADER_GRANTED_VOTE)
}

/// The pruning of dead messages is sound: every message removed unread would have changed
/// nothing but the network (see `RaftModel::discard_dead_messages`). Its name says what a
/// violation means.
pub fn pruned_messages_were_dead(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::PRUNED_NOT_DEAD)
}

/// Sanity of the effects: no server's current_term ever decreases (the effects only raise it).
pub fn terms_monotonic(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::TERM_DECREASED)
}

/// A server never commits past the end of its log (a follower that ignores the cap at its last new
/// entry does).
pub fn commit_within_log(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().all(|a| a.commit_index <= a.last_index())
}

/// Sanity of the effects: a leader's match_index for each peer is below its next_index for it.
pub fn match_below_next(m: &RaftModel, s: &State) -> bool {
    s.servers.iter().enumerate().all(|(i, a)| {
        a.role != Role::Leader
            || (0..m.bounds.servers as usize)
                .filter(|&j| j != i)
                .all(|j| a.match_index[j] < a.next_index[j])
    })
}

/// Sanity of the effects: a snapshot holds only committed entries (a restart from it restores its
/// commit index, and an InstallSnapshot raises the commit index with it).
pub fn snapshot_committed(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().all(|a| a.snapshot_index <= a.commit_index)
}

/// A property's condition.
pub type Condition = fn(&RaftModel, &State) -> bool;

/// The always-properties, in the order `check` prints them: Raft's five, the invariants that
/// published implementation bugs broke, the soundness of the pruning, and last the sanity checks
/// of the effects, which hold by construction (no departure in a handler can break them).
pub const SAFETY: [(&str, Condition); 17] = [
    (ELECTION_SAFETY, election_safety),
    (LOG_MATCHING, log_matching),
    (LEADER_APPEND_ONLY, leader_append_only),
    (LEADER_COMPLETENESS, leader_completeness),
    (STATE_MACHINE_SAFETY, state_machine_safety),
    (READ_LINEARIZABLE, read_linearizable),
    (ONE_CHANGE_AT_A_TIME, one_change_at_a_time),
    (VOTES_OF_VOTERS, votes_of_voters),
    (NEW_TERM_BY_CANDIDATE, new_term_by_candidate),
    (COMMIT_MONOTONIC, commit_monotonic),
    (MATCH_MONOTONIC, match_monotonic),
    (LEADER_NEVER_VOTES, leader_never_votes),
    (COMMIT_WITHIN_LOG, commit_within_log),
    (PRUNED_DEAD, pruned_messages_were_dead),
    (TERMS_MONOTONIC, terms_monotonic),
    (MATCH_BELOW_NEXT, match_below_next),
    (SNAPSHOT_COMMITTED, snapshot_committed),
];

/// The sometimes-properties, in the order of [`witness::ALL`].
pub const WITNESSES: [(&str, Condition); 14] = [
    (witness::LEADER_ELECTED, |_, s| !s.elections.is_empty()),
    (witness::ENTRY_COMMITTED, |_, s| !s.committed.is_empty()),
    (witness::COMMITTED_EVERYWHERE, |_, s| {
        s.servers.iter().all(|a| a.commit_index >= 1)
    }),
    (witness::SUFFIX_TRUNCATED, |_, s| s.has(flags::TRUNCATED)),
    (witness::LEADER_AFTER_RESTART, |_, s| {
        s.has(flags::LEADER_AFTER_RESTART)
    }),
    (witness::FIGURE_8, |_, s| {
        s.has(flags::OLD_TERM_COMMITTED_THROUGH_NEW)
    }),
    (witness::DUPLICATE_DELIVERED, |_, s| {
        s.has(flags::DUPLICATE_DELIVERED)
    }),
    (witness::SNAPSHOT_INSTALLED, |_, s| {
        s.has(flags::SNAPSHOT_INSTALLED)
    }),
    (witness::RESTART_FROM_SNAPSHOT, |_, s| {
        s.has(flags::RESTARTED_FROM_SNAPSHOT)
    }),
    (witness::READ_SERVED, |_, s| s.has(flags::READ_SERVED)),
    (witness::CONFIG_COMMITTED, |_, s| {
        s.committed.iter().any(|(e, _)| e.config().is_some())
    }),
    (witness::PRE_VOTE_WON, |_, s| s.has(flags::PRE_VOTE_WON)),
    (witness::CHECK_QUORUM_STEPPED_DOWN, |_, s| {
        s.has(flags::CHECK_QUORUM_STEPPED_DOWN)
    }),
    (witness::TRANSFER_STARTED, |_, s| {
        s.has(flags::TRANSFER_STARTED)
    }),
];

/// The name of the one property `check` hands stateright (see [`for_check`]).
pub const RAFT_SAFETY: &str = "Raft safety";

/// Every property that can tell something at these bounds, each on its own: what the Explorer
/// shows. Left out are the sometimes-properties the bounds cannot reach (see
/// [`Bounds::can_reach`]) and, without snapshots, the snapshot invariant, which then holds
/// trivially: the Explorer would list them as searched for ever.
pub fn all(bounds: &Bounds) -> Vec<Property<RaftModel>> {
    let always = SAFETY
        .iter()
        .filter(|(n, _)| bounds.snapshots || *n != SNAPSHOT_COMMITTED)
        .map(|(n, c)| Property::always(n, *c));
    let sometimes = WITNESSES
        .iter()
        .filter(|(n, _)| bounds.can_reach(n))
        .map(|(n, c)| Property::sometimes(n, *c));
    always.chain(sometimes).collect()
}

/// The properties as `check` runs them: one always-property, the conjunction of [`SAFETY`],
/// which also records each witness in the model's `witnessed` bits the first time it holds.
///
/// The verdicts are the same as with one stateright property each, at a fraction of the cost:
/// stateright looks every property up in a shared map (hashing its name) in every state, and
/// records a discovery, copying the path, in every state where a sometimes-property holds. Which
/// safety property a counterexample breaks is read off its last state.
pub fn for_check() -> Vec<Property<RaftModel>> {
    vec![Property::always(RAFT_SAFETY, raft_safety)]
}

/// The condition of [`for_check`]'s property: every safety property holds in `s`; records each
/// witness that holds in `s` in the model's `witnessed` bits on the way.
pub fn raft_safety(m: &RaftModel, s: &State) -> bool {
    for (bit, (_, holds)) in WITNESSES.iter().enumerate() {
        m.record_witness(bit, || holds(m, s));
    }
    SAFETY.iter().all(|(_, holds)| holds(m, s))
}
