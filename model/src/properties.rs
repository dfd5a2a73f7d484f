//! The properties the checker verifies: Raft's five safety properties (§5.2 to §5.4, Figure 3),
//! sanity invariants, and the sometimes-properties that show the bounds are not vacuous.

use crate::bounds::witness;
use crate::raft::RaftModel;
use crate::state::{flags, Role, State};
use stateright::Property;

pub const ELECTION_SAFETY: &str = "Election Safety";
pub const LOG_MATCHING: &str = "Log Matching";
pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";
pub const TERMS_MONOTONIC: &str = "terms never decrease";
pub const COMMIT_WITHIN_LOG: &str = "commit_index <= last index";
pub const MATCH_BELOW_NEXT: &str = "match_index < next_index";
pub const SNAPSHOT_COMMITTED: &str = "snapshot_index <= commit_index";

/// Election Safety: at most one leader was ever elected in a term (over the history of
/// elections, not only the leaders of this state).
pub fn election_safety(_: &RaftModel, s: &State) -> bool {
    s.elections.windows(2).all(|w| w[0].0 != w[1].0)
}

/// Log Matching: if two logs contain an entry with the same index and term, the logs are
/// identical in all entries up through that index.
pub fn log_matching(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().enumerate().all(|(i, a)| {
        s.servers[i + 1..].iter().all(|b| {
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

/// Sanity: no server's current_term ever decreases.
pub fn terms_monotonic(_: &RaftModel, s: &State) -> bool {
    !s.has(flags::TERM_DECREASED)
}

/// Sanity: a server never commits past the end of its log.
pub fn commit_within_log(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().all(|a| a.commit_index <= a.last_index())
}

/// Sanity: a leader's match_index for each peer is below its next_index for it.
pub fn match_below_next(m: &RaftModel, s: &State) -> bool {
    s.servers.iter().enumerate().all(|(i, a)| {
        a.role != Role::Leader
            || (0..m.bounds.servers as usize)
                .filter(|&j| j != i)
                .all(|j| a.match_index[j] < a.next_index[j])
    })
}

/// Sanity: a snapshot holds only committed entries (a restart from it restores its commit
/// index, and an InstallSnapshot raises the commit index with it).
pub fn snapshot_committed(_: &RaftModel, s: &State) -> bool {
    s.servers.iter().all(|a| a.snapshot_index <= a.commit_index)
}

/// A property's condition.
pub type Condition = fn(&RaftModel, &State) -> bool;

/// The always-properties, in the order `check` prints them.
pub const SAFETY: [(&str, Condition); 9] = [
    (ELECTION_SAFETY, election_safety),
    (LOG_MATCHING, log_matching),
    (LEADER_APPEND_ONLY, leader_append_only),
    (LEADER_COMPLETENESS, leader_completeness),
    (STATE_MACHINE_SAFETY, state_machine_safety),
    (TERMS_MONOTONIC, terms_monotonic),
    (COMMIT_WITHIN_LOG, commit_within_log),
    (MATCH_BELOW_NEXT, match_below_next),
    (SNAPSHOT_COMMITTED, snapshot_committed),
];

/// The sometimes-properties, in the order of [`witness::ALL`].
pub const WITNESSES: [(&str, Condition); 9] = [
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
];

/// The name of the one property `check` hands stateright (see [`for_check`]).
pub const RAFT_SAFETY: &str = "Raft safety";

/// Every property, each on its own: what the Explorer shows and `simulate` checks.
pub fn all() -> Vec<Property<RaftModel>> {
    let always = SAFETY.iter().map(|(n, c)| Property::always(n, *c));
    let sometimes = WITNESSES.iter().map(|(n, c)| Property::sometimes(n, *c));
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
    vec![Property::always(RAFT_SAFETY, |m, s| {
        for (bit, (_, holds)) in WITNESSES.iter().enumerate() {
            m.record_witness(bit, || holds(m, s));
        }
        SAFETY.iter().all(|(_, holds)| holds(m, s))
    })]
}
