//! The bounds that make the state space finite, the presets, and the bug switches.

use std::fmt;
use std::str::FromStr;

/// Limits on the behaviours the checker enumerates. They bound `actions()`, never the guards: a
/// guard states what Raft allows, whatever the bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Number of servers, 2 to 7.
    pub servers: u8,
    /// No server times out once its term has reached this.
    pub max_term: u32,
    /// No leader accepts a client request once its log has this many entries.
    pub max_log: u32,
    /// Crash-and-restarts, in total.
    pub max_crashes: u8,
    /// Messages in flight at once, copies included.
    pub max_inflight: u8,
    /// Messages lost, in total.
    pub max_drops: u8,
    /// Messages duplicated, in total.
    pub max_dups: u8,
    /// Distinct client values (1 to this).
    pub values: u32,
    /// Whether servers compact their logs into snapshots (and leaders send InstallSnapshot).
    pub snapshots: bool,
    /// Whether leaders also send shorter AppendEntries than everything after `next_index`: an
    /// empty one (a heartbeat that does not catch the follower up) and one of a single entry.
    pub partial_batches: bool,
    /// Reads (ReadIndex) that leaders begin, in total.
    pub max_reads: u8,
    /// The servers that vote in the initial configuration, `0..voters`; the others start outside
    /// the cluster, to be added by configuration changes.
    pub voters: u8,
    /// Configuration changes that leaders append, in total.
    pub max_changes: u8,
    /// Whether leaders change configurations through joint consensus (replace a voter by a
    /// server outside) rather than one server at a time.
    pub joint: bool,
    /// Whether a server whose election timer fires first asks for pre-votes (PreVote, §9.6 of
    /// the dissertation) and raises its term only once a quorum would vote for it.
    pub pre_vote: bool,
    /// Whether leaders check that they have heard from a quorum within each election timeout
    /// and step down if not, and followers that hear from a leader ignore higher-term
    /// RequestVotes and PreVotes until their election timer runs out (CheckQuorum and the leader
    /// lease, §6.2 and §4.2.3 of the dissertation).
    pub check_quorum: bool,
    /// Leadership transfers (a leader sends TimeoutNow to an up-to-date voter), in total.
    pub max_transfers: u8,
}

/// The sometimes-properties, by name. Each one shows that the bounds reach an interesting
/// behaviour, so that "all properties hold" is not vacuous.
pub mod witness {
    /// Witnessed once some server has won an election.
    pub const LEADER_ELECTED: &str = "a leader is elected";
    /// Witnessed once some entry has been committed.
    pub const ENTRY_COMMITTED: &str = "an entry commits";
    /// Witnessed in a state where every server's commit index is at least 1.
    pub const COMMITTED_EVERYWHERE: &str = "an entry commits on every server";
    /// Witnessed once a follower has deleted a conflicting suffix of its log (step 3 of the
    /// AppendEntries receiver in Figure 2).
    pub const SUFFIX_TRUNCATED: &str = "a log suffix is truncated";
    /// Witnessed once a server has become leader after some server crashed and restarted.
    pub const LEADER_AFTER_RESTART: &str = "a leader is elected after a restart";
    /// Witnessed once a leader's commit has taken an entry of an older term along with one of its
    /// own term (the shape of Figure 8 of the paper).
    pub const FIGURE_8: &str = "an older-term entry commits through a newer one";
    /// Witnessed once a message has been delivered while another copy of it was in flight, after
    /// a duplication (see [`crate::state::flags::DUPLICATE_DELIVERED`]).
    pub const DUPLICATE_DELIVERED: &str = "a duplicated message is delivered";
    /// Witnessed once a server has installed a snapshot that a leader sent it (InstallSnapshot).
    pub const SNAPSHOT_INSTALLED: &str = "a follower installs a snapshot";
    /// Witnessed once a server with a snapshot has crashed and restarted from it.
    pub const RESTART_FROM_SNAPSHOT: &str = "a server restarts from a snapshot";
    /// Witnessed once a leader has served a read (ReadIndex).
    pub const READ_SERVED: &str = "a read is served";
    /// Witnessed once a configuration entry has been committed.
    pub const CONFIG_COMMITTED: &str = "a configuration change commits";
    /// Witnessed once a PreVoteReply has completed a pre-candidate's quorum, making it a candidate.
    pub const PRE_VOTE_WON: &str = "a pre-vote makes a candidate";
    /// Witnessed once a leader has stepped down at a quorum check, having heard from too few
    /// servers (CheckQuorum).
    pub const CHECK_QUORUM_STEPPED_DOWN: &str = "a leader without a quorum steps down";
    /// Witnessed once a TimeoutNow has started an election at the server a leader handed over to.
    pub const TRANSFER_STARTED: &str = "a leader hands over with TimeoutNow";

    /// All of them, in the order `check` prints them.
    pub const ALL: [&str; 14] = [
        LEADER_ELECTED,
        ENTRY_COMMITTED,
        COMMITTED_EVERYWHERE,
        SUFFIX_TRUNCATED,
        LEADER_AFTER_RESTART,
        FIGURE_8,
        DUPLICATE_DELIVERED,
        SNAPSHOT_INSTALLED,
        RESTART_FROM_SNAPSHOT,
        READ_SERVED,
        CONFIG_COMMITTED,
        PRE_VOTE_WON,
        CHECK_QUORUM_STEPPED_DOWN,
        TRANSFER_STARTED,
    ];
}

/// A named set of bounds and the sometimes-properties that are expected to be witnessed at them.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// The name `check --preset` takes.
    pub name: &'static str,
    /// The bounds the preset checks.
    pub bounds: Bounds,
    /// The sometimes-properties (names from [`witness`]) a check at these bounds must witness:
    /// one that is not fails the check.
    pub expect: &'static [&'static str],
}

const ALL_BUT_FIGURE_8: &[&str] = &[
    witness::LEADER_ELECTED,
    witness::ENTRY_COMMITTED,
    witness::COMMITTED_EVERYWHERE,
    witness::SUFFIX_TRUNCATED,
    witness::LEADER_AFTER_RESTART,
    witness::DUPLICATE_DELIVERED,
];

const NO_SNAPSHOTS: &[&str] = &[
    witness::LEADER_ELECTED,
    witness::ENTRY_COMMITTED,
    witness::COMMITTED_EVERYWHERE,
    witness::SUFFIX_TRUNCATED,
    witness::LEADER_AFTER_RESTART,
    witness::FIGURE_8,
    witness::DUPLICATE_DELIVERED,
];

/// Three servers, terms up to 2, logs up to 2, one crash, one loss, one duplicate.
const BASE: Bounds = Bounds {
    servers: 3,
    max_term: 2,
    max_log: 2,
    max_crashes: 1,
    max_inflight: 2,
    max_drops: 1,
    max_dups: 1,
    values: 1,
    snapshots: false,
    partial_batches: false,
    max_reads: 0,
    voters: 3,
    max_changes: 0,
    joint: false,
    pre_vote: false,
    check_quorum: false,
    max_transfers: 0,
};

/// Four voters, three terms, logs of one entry, up to two configuration changes.
const TWO_REMOVALS: Bounds = Bounds {
    servers: 4,
    voters: 4,
    max_term: 3,
    max_log: 1,
    max_changes: 2,
    max_crashes: 0,
    max_inflight: 3,
    max_drops: 0,
    max_dups: 0,
    ..BASE
};

/// The presets `check --preset` knows; the [`PORTFOLIO`] names thirteen of them.
pub const PRESETS: [Preset; 16] = [
    // Every fault, and leaders that send partial batches: commits capped by the last new entry,
    // entries already present, reordered batches.
    Preset {
        name: "default",
        bounds: Bounds {
            partial_batches: true,
            ..BASE
        },
        expect: NO_SNAPSHOTS,
    },
    // Four terms: a follower's log that disagrees at prev_log_index, a leader that backs up by a
    // whole term, and the whole Figure 8 shape (two leaders with entries only they have, then a
    // third that commits an older entry, then a fourth).
    Preset {
        name: "terms",
        bounds: Bounds {
            max_term: 4,
            max_crashes: 0,
            max_drops: 0,
            max_dups: 0,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::FIGURE_8,
        ],
    },
    // Room in the network for an election while older messages are in flight, with loss and
    // duplication and three terms: stale RequestVotes, votes and AppendEntries meet new terms.
    Preset {
        name: "overlap",
        bounds: Bounds {
            max_term: 3,
            max_log: 1,
            max_crashes: 0,
            max_inflight: 3,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::DUPLICATE_DELIVERED,
        ],
    },
    // Five servers: a majority is three, so quorum arithmetic shows, and votes are counted
    // before they make a leader.
    Preset {
        name: "five",
        bounds: Bounds {
            servers: 5,
            voters: 5,
            max_log: 1,
            max_crashes: 0,
            max_inflight: 4,
            max_drops: 0,
            max_dups: 0,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
        ],
    },
    // Snapshots: compaction, InstallSnapshot in all its cases (with two entries, one can be older
    // than the receiver's commit), restarts from a snapshot.
    Preset {
        name: "snapshots",
        bounds: Bounds {
            max_drops: 0,
            max_dups: 0,
            snapshots: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::LEADER_AFTER_RESTART,
            witness::FIGURE_8,
            witness::SNAPSHOT_INSTALLED,
            witness::RESTART_FROM_SNAPSHOT,
        ],
    },
    // Snapshots with room for an election while a snapshot or its reply is in flight: a leader
    // that compacts before it reached a losing candidate of its term sends it the snapshot (the
    // candidate steps down), and a leader that crashed and won the next term meets the reply to
    // the snapshot it sent in the term before.
    Preset {
        name: "snapshot-overlap",
        bounds: Bounds {
            max_log: 1,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            snapshots: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::LEADER_AFTER_RESTART,
            witness::SNAPSHOT_INSTALLED,
            witness::RESTART_FROM_SNAPSHOT,
        ],
    },
    // Reads (ReadIndex): a new leader that has not yet committed in its term; a leader deposed
    // while it reads, with room for a reply it was sent before the read began (and before the
    // election that deposed it) to arrive after: only that reply shows a read's round deciding
    // whether a reply acknowledges it.
    Preset {
        name: "reads",
        bounds: Bounds {
            max_crashes: 0,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            max_reads: 1,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::FIGURE_8,
            witness::READ_SERVED,
        ],
    },
    Preset {
        name: "small",
        bounds: Bounds { max_log: 1, ..BASE },
        expect: ALL_BUT_FIGURE_8,
    },
    Preset {
        name: "deep",
        bounds: Bounds {
            max_term: 3,
            max_drops: 0,
            max_dups: 0,
            snapshots: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::LEADER_AFTER_RESTART,
            witness::FIGURE_8,
            witness::DUPLICATE_DELIVERED,
            witness::SNAPSHOT_INSTALLED,
            witness::RESTART_FROM_SNAPSHOT,
            witness::READ_SERVED,
        ],
    },
    // Single-server changes (§4.1 of the dissertation): two voters and a third server, added
    // as a voter, or as a learner and then promoted; a voter removed, the leader itself included.
    Preset {
        name: "learners",
        bounds: Bounds {
            servers: 3,
            voters: 2,
            max_log: 3,
            max_changes: 2,
            max_crashes: 0,
            max_drops: 0,
            max_dups: 0,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::FIGURE_8,
            witness::CONFIG_COMMITTED,
        ],
    },
    // Four voters and three terms, the smallest shape of the single-server change bug: two
    // leaders each remove a server, the second commits its change, and the first is elected
    // again by its own configuration. With logs of one entry a correct leader never changes the
    // configuration (it must first commit an entry of its term); "two-removals-deep" lets it.
    Preset {
        name: "two-removals",
        bounds: TWO_REMOVALS,
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
        ],
    },
    // Joint consensus (§6 of the paper): three voters replace one of theirs by a fourth server
    // through C_old,new, then leave it for C_new.
    Preset {
        name: "joint",
        bounds: Bounds {
            servers: 4,
            voters: 3,
            max_term: 2,
            max_log: 3,
            max_changes: 2,
            max_crashes: 0,
            max_inflight: 2,
            max_drops: 0,
            max_dups: 0,
            joint: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::SUFFIX_TRUNCATED,
            witness::CONFIG_COMMITTED,
        ],
    },
    // PreVote (§9.6 of the dissertation) with three terms and logs of two: pre-candidates
    // refused for their term and for each part of the up-to-date check, pre-votes that arrive
    // after their pre-candidate stepped down.
    Preset {
        name: "pre-vote",
        bounds: Bounds {
            max_term: 3,
            max_crashes: 0,
            max_drops: 0,
            max_dups: 0,
            pre_vote: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::FIGURE_8,
            witness::PRE_VOTE_WON,
        ],
    },
    // PreVote among four voters: a quorum is three, so a pre-vote is counted before one wins.
    Preset {
        name: "pre-vote-four",
        bounds: Bounds {
            servers: 4,
            voters: 4,
            max_log: 1,
            max_crashes: 0,
            max_inflight: 3,
            max_drops: 0,
            max_dups: 0,
            pre_vote: true,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::PRE_VOTE_WON,
        ],
    },
    // CheckQuorum with the leader lease, PreVote and leadership transfer: PreVotes ignored by
    // servers in their lease, leaders that step down at a quorum check, and a transfer whose
    // RequestVotes a lease does not stop.
    Preset {
        name: "check-quorum",
        bounds: Bounds {
            max_log: 1,
            max_crashes: 0,
            max_drops: 0,
            max_dups: 0,
            pre_vote: true,
            check_quorum: true,
            max_transfers: 1,
            ..BASE
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::PRE_VOTE_WON,
            witness::CHECK_QUORUM_STEPPED_DOWN,
            witness::TRANSFER_STARTED,
        ],
    },
    // The two-removals shape with room for correct changes: each leader commits an entry of its
    // term, then removes a server (about 90 million states; not in the portfolio).
    Preset {
        name: "two-removals-deep",
        bounds: Bounds {
            max_log: 2,
            ..TWO_REMOVALS
        },
        expect: &[
            witness::LEADER_ELECTED,
            witness::ENTRY_COMMITTED,
            witness::COMMITTED_EVERYWHERE,
            witness::SUFFIX_TRUNCATED,
            witness::FIGURE_8,
            witness::CONFIG_COMMITTED,
        ],
    },
];

/// What `check` runs when no preset and no bound is given: exhaustive searches, one after the
/// other, that together take every branch of the specification and show every condition of its
/// decisions deciding (see `check --coverage`).
pub const PORTFOLIO: [&str; 13] = [
    "default",
    "terms",
    "overlap",
    "five",
    "snapshots",
    "snapshot-overlap",
    "reads",
    "learners",
    "two-removals",
    "joint",
    "pre-vote",
    "pre-vote-four",
    "check-quorum",
];

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}

/// Why a set of bounds was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundsError(pub String);

impl fmt::Display for BoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BoundsError {}

impl Bounds {
    /// Checks that the bounds describe a model worth checking.
    pub fn validate(&self) -> Result<(), BoundsError> {
        let err = |s: &str| Err(BoundsError(s.to_string()));
        if !(2..=7).contains(&self.servers) {
            return Err(BoundsError(format!(
                "--servers must be between 2 and 7, got {}",
                self.servers
            )));
        }
        if self.max_term == 0 {
            return err("--max-term must be at least 1: with no term no server can be elected");
        }
        if self.max_log == 0 {
            return err(
                "--max-log must be at least 1: with no entries there is nothing to replicate",
            );
        }
        if self.values == 0 {
            return err("--values must be at least 1: clients need a value to propose");
        }
        if self.voters == 0 || self.voters > self.servers {
            return Err(BoundsError(format!(
                "--voters must be between 1 and --servers = {}, got {}",
                self.servers, self.voters
            )));
        }
        if (self.max_inflight as usize) < self.voters as usize - 1 {
            return Err(BoundsError(format!(
                "--max-inflight must be at least voters - 1 = {}, or no election can start",
                self.voters - 1
            )));
        }
        Ok(())
    }

    /// Whether these bounds can reach the behaviour that sometimes-property `name` looks for.
    /// A preset's expectations are kept only where the bounds still allow them. The rule is exact:
    /// `tests/witnesses.rs` checks it both ways over a grid of bounds from 2 to 7 servers.
    pub fn can_reach(&self, name: &str) -> bool {
        match name {
            // A follower loses an entry only to a later leader that lacks it, elected without the
            // follower's vote (which it would refuse): that takes a majority without one server.
            witness::SUFFIX_TRUNCATED => self.max_term >= 2 && self.servers >= 3,
            witness::LEADER_AFTER_RESTART => {
                self.max_crashes >= 1 && (self.max_term >= 2 || self.rival_candidate_fits())
            }
            // The older entry must outlive its term uncommitted, and a leader of a later term
            // needs one entry of its own to commit it through.
            witness::FIGURE_8 => self.max_term >= 2 && self.max_log >= 2,
            // A copy needs room next to the message it copies.
            witness::DUPLICATE_DELIVERED => self.max_dups >= 1 && self.max_inflight >= 2,
            // A leader sends a snapshot only to a follower that lacks committed entries, and
            // with two servers every committed entry is on both.
            witness::SNAPSHOT_INSTALLED => self.snapshots && self.servers >= 3,
            witness::RESTART_FROM_SNAPSHOT => self.snapshots && self.max_crashes >= 1,
            witness::READ_SERVED => self.max_reads >= 1,
            // A change needs a server to add or a voter to remove, and a commit after the change.
            witness::CONFIG_COMMITTED => {
                self.max_changes >= 1
                    && self.max_log >= 2
                    && (self.servers > self.voters || !self.joint)
            }
            // A single voter never wins an election in this model (it needs a reply).
            witness::PRE_VOTE_WON => self.pre_vote && self.voters >= 2,
            // A new leader checks at once, before anyone has answered it.
            witness::CHECK_QUORUM_STEPPED_DOWN => self.check_quorum && self.voters >= 2,
            // The leader of term 1 hands over while the term bound still lets its target stand.
            witness::TRANSFER_STARTED => {
                self.max_transfers >= 1 && self.voters >= 2 && self.max_term >= 2
            }
            _ => true,
        }
    }

    /// With a single term, whether a leader can still be elected after a crash. Only a candidate
    /// has anything to lose before the term's one election (a follower has committed nothing yet,
    /// and a crashed leader ends the term's elections), so a rival candidate C must crash while
    /// the winner W still needs a vote. Each vote goes to whichever RequestVote a server sees
    /// first, so while both candidacies run, the messages that would hand W's votes to C (or C's
    /// to W) stay in flight or are dropped:
    /// * C first: when W times out, C's RequestVotes to W and to the `quorum - 1` servers W needs;
    /// * W first: when C times out, W's RequestVote to C, and of W's RequestVotes to the other
    ///   `servers - 2`, all but the `quorum - 2` whose votes W may already have counted (one of
    ///   them, W's last vote, cannot be dropped).
    ///
    /// A timeout needs room for `servers - 1` RequestVotes besides those.
    fn rival_candidate_fits(&self) -> bool {
        let n = u32::from(self.servers);
        let quorum = n / 2 + 1;
        if n < 3 {
            // The winner needs the rival's vote, and the rival voted for itself.
            return false;
        }
        let drops = u32::from(self.max_drops);
        let c_first = quorum - drops.min(quorum);
        let w_first = n - quorum + 1 - drops.min(n - quorum);
        u32::from(self.max_inflight) >= n - 1 + c_first.min(w_first)
    }
}

/// A one-line departure from Raft that the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// A leader commits an entry of an earlier term by counting its replicas (breaks Figure 8).
    Figure8Commit,
    /// A restart forgets `voted_for`, so a server can vote twice in one term.
    ForgetVote,
    /// A vote is granted without comparing the candidates' logs.
    NoUpToDateCheck,
    /// A follower accepts AppendEntries from a lower term.
    AcceptStaleTerm,
    /// A follower truncates its log after prev_log_index even when the entries match, so a
    /// reordered, shorter AppendEntries deletes entries it had acknowledged.
    TruncateOnMatch,
    /// A server accepts a snapshot older than its commit index and rolls back to it.
    SnapshotRegress,
    /// Quorums are "the leader and one other": right for three servers only.
    QuorumOfTwo,
    /// A follower sets its commit index to the leader's, without the cap at its last new entry.
    CommitWithoutCap,
    /// A follower checks only that it has an entry at prev_log_index, not its term.
    NoPrevTermCheck,
    /// A candidate counts a vote granted in an earlier term of its own.
    StaleVoteCounted,
    /// A server grants its vote to any candidate of its current term, even after voting for another.
    VoteTwice,
    /// A leader sets match_index from each success reply, so a reordered older reply lowers it.
    MatchRegress,
    /// A new leader serves a read at its commit index before it has committed an entry of its own
    /// term, so the read can miss entries an earlier leader committed.
    ReadBeforeTermCommit,
    /// A leader serves a read at once, without a round of heartbeats that confirms it still leads,
    /// so a deposed leader answers.
    ReadWithoutQuorum,
    /// A leader appends a configuration entry before it has committed an entry of its term: the
    /// single-server change bug (Ongaro, raft-dev, 2015), two changes across a leader change.
    ChangeBeforeTermCommit,
    /// A leader leaves the joint configuration (appends C_new) before C_old,new has committed.
    LeaveJointEarly,
    /// While joint, a quorum is a majority of C_new alone.
    JointNewQuorumOnly,
    /// A candidate asks its learners for votes and counts them as voters'.
    LearnerVoteCounted,
    /// A server that receives a PreVote adopts its term, as it would any higher-term message,
    /// so a server that cannot win still raises terms.
    PreVoteRaisesTerm,
}

impl Bug {
    /// Every bug switch.
    pub const ALL: [Bug; 19] = [
        Bug::Figure8Commit,
        Bug::ForgetVote,
        Bug::NoUpToDateCheck,
        Bug::AcceptStaleTerm,
        Bug::TruncateOnMatch,
        Bug::SnapshotRegress,
        Bug::QuorumOfTwo,
        Bug::CommitWithoutCap,
        Bug::NoPrevTermCheck,
        Bug::StaleVoteCounted,
        Bug::VoteTwice,
        Bug::MatchRegress,
        Bug::ReadBeforeTermCommit,
        Bug::ReadWithoutQuorum,
        Bug::ChangeBeforeTermCommit,
        Bug::LeaveJointEarly,
        Bug::JointNewQuorumOnly,
        Bug::LearnerVoteCounted,
        Bug::PreVoteRaisesTerm,
    ];

    /// The name `--bug` takes.
    pub fn name(self) -> &'static str {
        match self {
            Bug::Figure8Commit => "figure8-commit",
            Bug::ForgetVote => "forget-vote",
            Bug::NoUpToDateCheck => "no-up-to-date-check",
            Bug::AcceptStaleTerm => "accept-stale-term",
            Bug::TruncateOnMatch => "truncate-on-match",
            Bug::SnapshotRegress => "snapshot-regress",
            Bug::QuorumOfTwo => "quorum-of-two",
            Bug::CommitWithoutCap => "commit-without-cap",
            Bug::NoPrevTermCheck => "no-prev-term-check",
            Bug::StaleVoteCounted => "stale-vote-counted",
            Bug::VoteTwice => "vote-twice",
            Bug::MatchRegress => "match-regress",
            Bug::ReadBeforeTermCommit => "read-before-term-commit",
            Bug::ReadWithoutQuorum => "read-without-quorum",
            Bug::ChangeBeforeTermCommit => "change-before-term-commit",
            Bug::LeaveJointEarly => "leave-joint-early",
            Bug::JointNewQuorumOnly => "joint-new-quorum-only",
            Bug::LearnerVoteCounted => "learner-vote-counted",
            Bug::PreVoteRaisesTerm => "pre-vote-raises-term",
        }
    }

    /// One line on what the switch changes.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::Figure8Commit => "a leader commits a previous-term entry by counting replicas",
            Bug::ForgetVote => "a restart forgets voted_for",
            Bug::NoUpToDateCheck => "a vote is granted without the log comparison",
            Bug::AcceptStaleTerm => "a follower accepts AppendEntries from a lower term",
            Bug::TruncateOnMatch => "a follower truncates its log even when the entries match",
            Bug::SnapshotRegress => {
                "a server accepts a snapshot older than its commit index and rolls back"
            }
            Bug::QuorumOfTwo => "a quorum is the leader and one other (right for 3 servers only)",
            Bug::CommitWithoutCap => {
                "a follower commits up to leader_commit, not capped at its last new entry"
            }
            Bug::NoPrevTermCheck => "a follower does not compare the term at prev_log_index",
            Bug::StaleVoteCounted => "a candidate counts a vote granted in an earlier term",
            Bug::VoteTwice => "a server votes again in a term after voting for another",
            Bug::MatchRegress => {
                "a leader sets match_index from any success reply, even an older one"
            }
            Bug::ReadBeforeTermCommit => {
                "a leader serves reads before it has committed an entry of its term"
            }
            Bug::ReadWithoutQuorum => {
                "a leader serves a read without a heartbeat round answered by a majority"
            }
            Bug::ChangeBeforeTermCommit => {
                "a leader changes the configuration before committing an entry of its term"
            }
            Bug::LeaveJointEarly => "a leader leaves C_old,new before it commits",
            Bug::JointNewQuorumOnly => "while joint, a majority of C_new alone is a quorum",
            Bug::LearnerVoteCounted => "a candidate counts a learner's vote",
            Bug::PreVoteRaisesTerm => "a server adopts the term of a PreVote it receives",
        }
    }

    /// The preset of the [`PORTFOLIO`] that catches this bug: `check --bug` runs it first.
    pub fn preset(self) -> &'static str {
        match self {
            Bug::Figure8Commit | Bug::NoPrevTermCheck => "terms",
            Bug::QuorumOfTwo => "five",
            Bug::SnapshotRegress => "snapshots",
            Bug::StaleVoteCounted | Bug::VoteTwice => "overlap",
            Bug::ForgetVote
            | Bug::NoUpToDateCheck
            | Bug::AcceptStaleTerm
            | Bug::TruncateOnMatch
            | Bug::CommitWithoutCap
            | Bug::MatchRegress => "default",
            Bug::ReadBeforeTermCommit | Bug::ReadWithoutQuorum => "reads",
            Bug::ChangeBeforeTermCommit => "two-removals",
            Bug::LearnerVoteCounted => "learners",
            Bug::LeaveJointEarly | Bug::JointNewQuorumOnly => "joint",
            Bug::PreVoteRaisesTerm => "pre-vote",
        }
    }
}

impl FromStr for Bug {
    type Err = BoundsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            BoundsError(format!(
                "unknown bug '{s}'; the bugs are: {}",
                names.join(", ")
            ))
        })
    }
}
