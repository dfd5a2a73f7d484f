//! Coverage of the specification, recorded while the checker runs, so that an exhaustive check can
//! say which parts of Raft it actually executed.
//!
//! * **Branches**: every outcome of every action. The effects call
//!   [`RaftModel::hit`](crate::RaftModel) with a [`Branch`]; with no [`Coverage`] attached that is
//!   one test of an `Option`. Counters are sharded by thread so that the checker's workers never
//!   write to one cache line.
//! * **Conditions** (MC/DC, modified condition/decision coverage): every atomic [`Condition`] of
//!   every [`Decision`] of the spec. The spec evaluates a decision through
//!   [`RaftModel::decide`](crate::RaftModel). With coverage on, it evaluates the decision once
//!   more for each condition it evaluated, that condition alone flipped, and records the
//!   condition's value wherever the flip changes the outcome (the condition is not *masked* there
//!   by the others, as `false && x` masks `x`). A condition is *shown* once it has decided the
//!   outcome both while true and while false: masking MC/DC, and exactly what exposes the
//!   condition stuck at either value (`--stuck`), a departure from Raft in that condition alone,
//!   in some state the search reached. Branch coverage counts a decision as taken as soon as one
//!   way into each outcome is, whatever decided it.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// One outcome of one action. [`Branch::name`] gives `<action>/<outcome>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Branch {
    /// A follower's election timer fires (PreVote off): it starts an election.
    TimeoutFollower,
    /// A candidate's election timer fires (PreVote off): it starts another election, in the
    /// next term.
    TimeoutCandidate,
    /// A leader appends a client's value to its log.
    ClientRequest,
    /// A leader sends an AppendEntries with no entries.
    SendHeartbeat,
    /// A leader sends an AppendEntries with every entry it holds after `prev_log_index`.
    SendEntries,
    /// An AppendEntries that carries fewer entries than the leader holds past `prev_log_index`.
    SendPartialBatch,
    /// A leader's commit takes only entries of its own term.
    CommitOwnTerm,
    /// A commit that takes entries of older terms along with one of the leader's own (Figure 8).
    CommitOlderTerms,
    /// A leader commits a configuration in which it does not vote, and steps down.
    CommitRemovedLeaderStepsDown,
    /// A leader appends a configuration that adds a voter.
    ConfigAddVoter,
    /// One that removes a voter.
    ConfigRemoveVoter,
    /// One that adds or removes learners only.
    ConfigLearners,
    /// One that promotes a learner to a voter.
    ConfigPromoteLearner,
    /// One that enters a joint configuration (C_old,new).
    ConfigEnterJoint,
    /// One that leaves a joint configuration for its C_new.
    ConfigLeaveJoint,
    /// A leader begins a read (ReadIndex).
    BeginRead,
    /// A server compacts a committed prefix of its log into a snapshot.
    Compact,
    /// A leader sends its snapshot (InstallSnapshot).
    SendSnapshot,
    /// A message of a higher term: the receiver adopts the term and steps down first.
    ReceiveHigherTerm,
    /// A RequestVote of a term below the receiver's is refused.
    VoteStaleTerm,
    /// A RequestVote is refused: the receiver voted for another candidate in the term.
    VoteAlreadyVoted,
    /// A RequestVote is refused: the candidate's log is less up-to-date than the receiver's
    /// (§5.4.1).
    VoteLogNotUpToDate,
    /// A RequestVote is granted to a candidate the receiver had not voted for.
    VoteGranted,
    /// The same candidate asks again (a duplicate or a resend) and is granted again.
    VoteGrantedAgain,
    /// A RequestVoteReply is ignored: it is of another term, or its receiver is no longer a
    /// candidate.
    VoteReplyStale,
    /// A RequestVoteReply of the candidate's term refuses the vote.
    VoteReplyRefused,
    /// A granted vote is counted and does not yet make a quorum.
    VoteReplyCounted,
    /// A granted vote completes a quorum: the candidate becomes leader.
    VoteReplyElected,
    /// An AppendEntries of a term below the receiver's is refused (receiver step 1 of Figure 2).
    AppendStaleTerm,
    /// An AppendEntries of its term reaches a server that is not a follower, which steps down.
    AppendCandidateStepsDown,
    /// An AppendEntries is refused: the log has no entry at `prev_log_index` (step 2).
    AppendLogTooShort,
    /// An AppendEntries is refused: the entry at `prev_log_index` has another term (step 2).
    AppendTermMismatch,
    /// An accepted AppendEntries changes no entry: the log already holds all of them.
    AppendAlreadyPresent,
    /// An accepted AppendEntries deletes a conflicting suffix of the log (step 3) and appends.
    AppendTruncated,
    /// An accepted AppendEntries appends new entries without deleting any (step 4).
    AppendAppended,
    /// A follower's commit index moves up to `leader_commit` (step 5).
    AppendCommitByLeaderCommit,
    /// A follower's commit index moves up to its last new entry, below `leader_commit` (step 5).
    AppendCommitCapped,
    /// An AppendEntriesReply is ignored: it is of another term, or its receiver no longer
    /// leads.
    AppendReplyStale,
    /// An AppendEntriesReply of the leader's term refuses an AppendEntries it sent in an
    /// earlier term: nothing changes.
    AppendReplyStaleTerm,
    /// A success reply at the leader of its term: `match_index` and `next_index` for the
    /// follower rise to what it acknowledged, where they are lower.
    AppendReplySuccess,
    /// A conflict reply whose term the leader holds: `next_index` goes just past the leader's
    /// last entry of that term.
    AppendReplyConflictByTerm,
    /// A conflict reply whose term the leader does not hold: `next_index` goes to the
    /// follower's hint, `conflict_index`.
    AppendReplyConflictByIndex,
    /// A reply completes a majority for a pending read, which is served.
    ServeRead,
    /// An InstallSnapshot of a term below the receiver's is refused.
    SnapshotStaleTerm,
    /// An InstallSnapshot whose last index is not past the receiver's commit index: the
    /// snapshot is not installed.
    SnapshotNotNewer,
    /// A snapshot is installed, and the receiver keeps the entries of its log after it.
    SnapshotKeepsSuffix,
    /// A snapshot is installed and replaces the receiver's whole log.
    SnapshotReplacesLog,
    /// An InstallSnapshotReply is ignored: it is of another term, or its receiver no longer
    /// leads.
    SnapshotReplyStale,
    /// An InstallSnapshotReply at the leader of its term: `match_index` and `next_index` for the
    /// follower rise to the reply's `match_index`, where they are lower.
    SnapshotReplyLive,
    /// A server without a snapshot crashes and restarts: its commit index goes back to 0.
    CrashWithoutSnapshot,
    /// A server with a snapshot crashes and restarts from it.
    CrashWithSnapshot,
    /// The network loses a message.
    Drop,
    /// The network duplicates a message.
    Duplicate,
    /// A timer fires with PreVote on: the server asks for pre-votes, its term unchanged.
    TimeoutPreVote,
    /// A PreVote is granted: its term is above the receiver's and the log is up-to-date.
    PreVoteGranted,
    /// A PreVote is refused: its term is not above the receiver's.
    PreVoteStaleTerm,
    /// A PreVote is refused: the pre-candidate's log is less up-to-date than the receiver's.
    PreVoteLogNotUpToDate,
    /// A PreVoteReply that refuses, or is not for its receiver's current pre-candidacy, changes
    /// nothing.
    PreVoteReplyStale,
    /// A granted pre-vote is counted and does not yet make a quorum.
    PreVoteReplyCounted,
    /// A pre-vote completes a quorum: the pre-candidate becomes a candidate in the next term.
    PreVoteReplyWon,
    /// A RequestVote or PreVote of a higher term reaches a server in its leader lease, which
    /// ignores it.
    VoteIgnoredInLease,
    /// A follower's election timer runs out: its lease ends.
    LeaseExpires,
    /// A leader's quorum check finds a quorum: it keeps leading and counts afresh.
    CheckQuorumHolds,
    /// A leader's quorum check finds too few servers heard from: it steps down.
    CheckQuorumStepsDown,
    /// A leader sends TimeoutNow to an up-to-date voter.
    TransferLeader,
    /// A TimeoutNow of its term reaches a follower that votes, which starts an election at once.
    TimeoutNowElection,
    /// A TimeoutNow is ignored: it is of another term, or its receiver is not a follower or
    /// not a voter.
    TimeoutNowIgnored,
}

impl Branch {
    /// Every branch, in the order `check --coverage` prints them.
    pub const ALL: [Branch; 67] = [
        Branch::TimeoutFollower,
        Branch::TimeoutCandidate,
        Branch::ClientRequest,
        Branch::SendHeartbeat,
        Branch::SendEntries,
        Branch::SendPartialBatch,
        Branch::CommitOwnTerm,
        Branch::CommitOlderTerms,
        Branch::CommitRemovedLeaderStepsDown,
        Branch::ConfigAddVoter,
        Branch::ConfigRemoveVoter,
        Branch::ConfigLearners,
        Branch::ConfigPromoteLearner,
        Branch::ConfigEnterJoint,
        Branch::ConfigLeaveJoint,
        Branch::BeginRead,
        Branch::Compact,
        Branch::SendSnapshot,
        Branch::ReceiveHigherTerm,
        Branch::VoteStaleTerm,
        Branch::VoteAlreadyVoted,
        Branch::VoteLogNotUpToDate,
        Branch::VoteGranted,
        Branch::VoteGrantedAgain,
        Branch::VoteReplyStale,
        Branch::VoteReplyRefused,
        Branch::VoteReplyCounted,
        Branch::VoteReplyElected,
        Branch::AppendStaleTerm,
        Branch::AppendCandidateStepsDown,
        Branch::AppendLogTooShort,
        Branch::AppendTermMismatch,
        Branch::AppendAlreadyPresent,
        Branch::AppendTruncated,
        Branch::AppendAppended,
        Branch::AppendCommitByLeaderCommit,
        Branch::AppendCommitCapped,
        Branch::AppendReplyStale,
        Branch::AppendReplyStaleTerm,
        Branch::AppendReplySuccess,
        Branch::AppendReplyConflictByTerm,
        Branch::AppendReplyConflictByIndex,
        Branch::ServeRead,
        Branch::SnapshotStaleTerm,
        Branch::SnapshotNotNewer,
        Branch::SnapshotKeepsSuffix,
        Branch::SnapshotReplacesLog,
        Branch::SnapshotReplyStale,
        Branch::SnapshotReplyLive,
        Branch::CrashWithoutSnapshot,
        Branch::CrashWithSnapshot,
        Branch::Drop,
        Branch::Duplicate,
        Branch::TimeoutPreVote,
        Branch::PreVoteGranted,
        Branch::PreVoteStaleTerm,
        Branch::PreVoteLogNotUpToDate,
        Branch::PreVoteReplyStale,
        Branch::PreVoteReplyCounted,
        Branch::PreVoteReplyWon,
        Branch::VoteIgnoredInLease,
        Branch::LeaseExpires,
        Branch::CheckQuorumHolds,
        Branch::CheckQuorumStepsDown,
        Branch::TransferLeader,
        Branch::TimeoutNowElection,
        Branch::TimeoutNowIgnored,
    ];

    /// PreVote's branches.
    pub const PRE_VOTE: [Branch; 7] = [
        Branch::TimeoutPreVote,
        Branch::PreVoteGranted,
        Branch::PreVoteStaleTerm,
        Branch::PreVoteLogNotUpToDate,
        Branch::PreVoteReplyStale,
        Branch::PreVoteReplyCounted,
        Branch::PreVoteReplyWon,
    ];

    /// CheckQuorum's, the lease's and leadership transfer's branches.
    pub const CHECK_QUORUM: [Branch; 7] = [
        Branch::VoteIgnoredInLease,
        Branch::LeaseExpires,
        Branch::CheckQuorumHolds,
        Branch::CheckQuorumStepsDown,
        Branch::TransferLeader,
        Branch::TimeoutNowElection,
        Branch::TimeoutNowIgnored,
    ];

    /// Membership changes' branches.
    pub const MEMBERSHIP: [Branch; 7] = [
        Branch::ConfigAddVoter,
        Branch::ConfigRemoveVoter,
        Branch::ConfigLearners,
        Branch::ConfigPromoteLearner,
        Branch::ConfigEnterJoint,
        Branch::ConfigLeaveJoint,
        Branch::CommitRemovedLeaderStepsDown,
    ];

    /// Whether the branch is part of membership changes, PreVote, CheckQuorum or leadership
    /// transfer: the extensions of Raft beyond Figure 2 (in the core: `Node::propose_conf_change`,
    /// `Config::pre_vote`, `Config::check_quorum`, `Node::transfer_leader`).
    pub fn extension(self) -> bool {
        matches!(
            self,
            Branch::CommitRemovedLeaderStepsDown
                | Branch::ConfigAddVoter
                | Branch::ConfigRemoveVoter
                | Branch::ConfigLearners
                | Branch::ConfigPromoteLearner
                | Branch::ConfigEnterJoint
                | Branch::ConfigLeaveJoint
        ) || self >= Branch::TimeoutPreVote
    }

    /// `<action>/<outcome>`.
    pub fn name(self) -> &'static str {
        match self {
            Branch::TimeoutFollower => "timeout/follower",
            Branch::TimeoutCandidate => "timeout/candidate",
            Branch::ClientRequest => "client-request/append",
            Branch::SendHeartbeat => "send-append-entries/heartbeat",
            Branch::SendEntries => "send-append-entries/all-after-prev",
            Branch::SendPartialBatch => "send-append-entries/partial-batch",
            Branch::CommitOwnTerm => "advance-commit/own-term",
            Branch::CommitOlderTerms => "advance-commit/with-older-terms",
            Branch::CommitRemovedLeaderStepsDown => "advance-commit/removed-leader-steps-down",
            Branch::ConfigAddVoter => "change-config/add-voter",
            Branch::ConfigRemoveVoter => "change-config/remove-voter",
            Branch::ConfigLearners => "change-config/learners",
            Branch::ConfigPromoteLearner => "change-config/promote-learner",
            Branch::ConfigEnterJoint => "change-config/enter-joint",
            Branch::ConfigLeaveJoint => "change-config/leave-joint",
            Branch::BeginRead => "read-index/begun",
            Branch::Compact => "compact/snapshot-taken",
            Branch::SendSnapshot => "send-install-snapshot/sent",
            Branch::ReceiveHigherTerm => "receive/higher-term-steps-down",
            Branch::VoteStaleTerm => "request-vote/stale-term",
            Branch::VoteAlreadyVoted => "request-vote/already-voted",
            Branch::VoteLogNotUpToDate => "request-vote/log-not-up-to-date",
            Branch::VoteGranted => "request-vote/granted",
            Branch::VoteGrantedAgain => "request-vote/granted-again",
            Branch::VoteReplyStale => "vote-reply/stale",
            Branch::VoteReplyRefused => "vote-reply/refused",
            Branch::VoteReplyCounted => "vote-reply/counted",
            Branch::VoteReplyElected => "vote-reply/elected",
            Branch::AppendStaleTerm => "append-entries/stale-term",
            Branch::AppendCandidateStepsDown => "append-entries/candidate-steps-down",
            Branch::AppendLogTooShort => "append-entries/log-too-short",
            Branch::AppendTermMismatch => "append-entries/term-mismatch",
            Branch::AppendAlreadyPresent => "append-entries/already-present",
            Branch::AppendTruncated => "append-entries/conflict-truncated",
            Branch::AppendAppended => "append-entries/appended",
            Branch::AppendCommitByLeaderCommit => "append-entries/commit-by-leader-commit",
            Branch::AppendCommitCapped => "append-entries/commit-capped-by-last-new",
            Branch::AppendReplyStale => "append-reply/stale",
            Branch::AppendReplyStaleTerm => "append-reply/refused-for-term",
            Branch::AppendReplySuccess => "append-reply/success",
            Branch::AppendReplyConflictByTerm => "append-reply/back-up-by-term",
            Branch::AppendReplyConflictByIndex => "append-reply/back-up-by-index",
            Branch::ServeRead => "append-reply/read-served",
            Branch::SnapshotStaleTerm => "install-snapshot/stale-term",
            Branch::SnapshotNotNewer => "install-snapshot/not-newer-than-commit",
            Branch::SnapshotKeepsSuffix => "install-snapshot/keeps-suffix",
            Branch::SnapshotReplacesLog => "install-snapshot/replaces-log",
            Branch::SnapshotReplyStale => "snapshot-reply/stale",
            Branch::SnapshotReplyLive => "snapshot-reply/live",
            Branch::CrashWithoutSnapshot => "crash/without-snapshot",
            Branch::CrashWithSnapshot => "crash/with-snapshot",
            Branch::Drop => "drop/lost",
            Branch::Duplicate => "duplicate/copied",
            Branch::TimeoutPreVote => "timeout/pre-vote",
            Branch::PreVoteGranted => "pre-vote/granted",
            Branch::PreVoteStaleTerm => "pre-vote/stale-term",
            Branch::PreVoteLogNotUpToDate => "pre-vote/log-not-up-to-date",
            Branch::PreVoteReplyStale => "pre-vote-reply/stale",
            Branch::PreVoteReplyCounted => "pre-vote-reply/counted",
            Branch::PreVoteReplyWon => "pre-vote-reply/won",
            Branch::VoteIgnoredInLease => "receive/vote-ignored-in-lease",
            Branch::LeaseExpires => "lease-expires/expired",
            Branch::CheckQuorumHolds => "check-quorum/holds",
            Branch::CheckQuorumStepsDown => "check-quorum/steps-down",
            Branch::TransferLeader => "transfer-leader/timeout-now-sent",
            Branch::TimeoutNowElection => "timeout-now/election-started",
            Branch::TimeoutNowIgnored => "timeout-now/ignored",
        }
    }
}

const BRANCHES: usize = Branch::ALL.len();

/// A decision of the specification: a boolean function of the atomic conditions listed by
/// [`Decision::conditions`], evaluated left to right with `&&` and `||`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// Any message: the receiver adopts the message's term and steps down.
    AdoptTerm,
    /// RequestVote: the vote is granted (term, earlier vote, and the up-to-date check's two parts).
    GrantVote,
    /// RequestVoteReply: the vote counts for the receiver's candidacy.
    CountVote,
    /// A counted vote completes a majority.
    Elected,
    /// AppendEntries: the request is accepted (term, then the log at `prev_log_index`).
    AcceptAppend,
    /// A refused AppendEntries of the current term is refused because the log is too short (the
    /// hint is then the log's end, else the conflicting term's first index).
    RefuseTooShort,
    /// An accepted AppendEntries makes a candidate (or a second leader) step down.
    AppendStepsDown,
    /// One entry of an accepted AppendEntries: the follower's entry at its index conflicts and the
    /// log is cut there.
    TruncateEntry,
    /// An accepted AppendEntries moves the follower's commit index, to min(leaderCommit, last new).
    FollowerCommits,
    /// That commit index is capped by the last new entry rather than by leaderCommit.
    CommitCapped,
    /// AppendEntriesReply: the reply is for the receiver's leadership in its current term.
    AppendReplyLive,
    /// A success reply raises the leader's `match_index` for the follower.
    MatchAdvances,
    /// A conflict reply backs `next_index` up by the leader's last entry of the conflicting term.
    BackUpByTerm,
    /// InstallSnapshot: the request's term is current.
    AcceptSnapshot,
    /// An accepted InstallSnapshot makes a candidate (or a second leader) step down.
    SnapshotStepsDown,
    /// The snapshot is newer than the receiver's commit index, and is installed.
    SnapshotNewer,
    /// The installing receiver keeps the entries after the snapshot.
    KeepSuffix,
    /// InstallSnapshotReply: the reply is for the receiver's leadership in its current term.
    SnapshotReplyLive,
    /// The reply raises the leader's `match_index` for the follower.
    SnapshotMatchAdvances,
    /// A leader may commit an index past its commit index (Figure 2 and §5.4.2).
    LeaderCommits,
    /// A leader may begin a read (ReadIndex).
    BeginRead,
    /// An AppendEntriesReply acknowledges a pending read.
    AckRead,
    /// A pending read's acknowledgements make a majority, and it is served.
    ServeRead,
    /// A leader may append a configuration entry.
    ChangeConfig,
    /// A set of servers makes a quorum of a joint configuration.
    JointQuorum,
    /// A RequestVote or PreVote of a higher term is ignored by a server in its leader lease.
    IgnoreInLease,
    /// PreVote: the pre-vote is granted (term, and the up-to-date check's two parts).
    GrantPreVote,
    /// PreVoteReply: the pre-vote counts for the receiver's pre-candidacy.
    CountPreVote,
    /// A counted pre-vote completes a quorum.
    PreVoteWon,
    /// A leader's quorum check: it has heard from a quorum since the last one.
    CheckQuorum,
    /// TimeoutNow: the receiver starts an election.
    TimeoutNowStarts,
}

impl Decision {
    /// Every decision, in the order `check --coverage` prints them.
    pub const ALL: [Decision; 31] = [
        Decision::AdoptTerm,
        Decision::GrantVote,
        Decision::CountVote,
        Decision::Elected,
        Decision::AcceptAppend,
        Decision::RefuseTooShort,
        Decision::AppendStepsDown,
        Decision::TruncateEntry,
        Decision::FollowerCommits,
        Decision::CommitCapped,
        Decision::AppendReplyLive,
        Decision::MatchAdvances,
        Decision::BackUpByTerm,
        Decision::AcceptSnapshot,
        Decision::SnapshotStepsDown,
        Decision::SnapshotNewer,
        Decision::KeepSuffix,
        Decision::SnapshotReplyLive,
        Decision::SnapshotMatchAdvances,
        Decision::LeaderCommits,
        Decision::BeginRead,
        Decision::AckRead,
        Decision::ServeRead,
        Decision::ChangeConfig,
        Decision::JointQuorum,
        Decision::IgnoreInLease,
        Decision::GrantPreVote,
        Decision::CountPreVote,
        Decision::PreVoteWon,
        Decision::CheckQuorum,
        Decision::TimeoutNowStarts,
    ];

    /// Whether the decision is part of an extension of Raft beyond Figure 2 (see
    /// [`Branch::extension`]).
    pub fn extension(self) -> bool {
        self >= Decision::ChangeConfig
    }

    /// The decision's name.
    pub fn name(self) -> &'static str {
        match self {
            Decision::AdoptTerm => "adopt-term",
            Decision::GrantVote => "grant-vote",
            Decision::CountVote => "count-vote",
            Decision::Elected => "elected",
            Decision::AcceptAppend => "accept-append",
            Decision::RefuseTooShort => "refuse-too-short",
            Decision::AppendStepsDown => "append-steps-down",
            Decision::TruncateEntry => "truncate-entry",
            Decision::FollowerCommits => "follower-commits",
            Decision::CommitCapped => "commit-capped",
            Decision::AppendReplyLive => "append-reply-live",
            Decision::MatchAdvances => "match-advances",
            Decision::BackUpByTerm => "back-up-by-term",
            Decision::AcceptSnapshot => "accept-snapshot",
            Decision::SnapshotStepsDown => "snapshot-steps-down",
            Decision::SnapshotNewer => "snapshot-newer",
            Decision::KeepSuffix => "keep-suffix",
            Decision::SnapshotReplyLive => "snapshot-reply-live",
            Decision::SnapshotMatchAdvances => "snapshot-match-advances",
            Decision::LeaderCommits => "leader-commits",
            Decision::BeginRead => "begin-read",
            Decision::AckRead => "ack-read",
            Decision::ServeRead => "serve-read",
            Decision::ChangeConfig => "change-config",
            Decision::JointQuorum => "joint-quorum",
            Decision::IgnoreInLease => "ignore-in-lease",
            Decision::GrantPreVote => "grant-pre-vote",
            Decision::CountPreVote => "count-pre-vote",
            Decision::PreVoteWon => "pre-vote-won",
            Decision::CheckQuorum => "check-quorum",
            Decision::TimeoutNowStarts => "timeout-now-starts",
        }
    }

    /// The decision's conditions, in their order of evaluation.
    pub fn conditions(self) -> &'static [Condition] {
        let all = &Condition::ALL;
        let first = all
            .iter()
            .position(|c| c.decision() == self)
            .expect("one each");
        let len = all[first..]
            .iter()
            .take_while(|c| c.decision() == self)
            .count();
        &all[first..first + len]
    }
}

/// An atomic condition of one [`Decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// The message's term is higher than the receiver's.
    MessageTermHigher,
    /// The message is not a PreVote, nor a granted PreVoteReply (whose terms are one ahead of
    /// their sender's or receiver's by design).
    NotPreVote,
    /// The request's term is not below the voter's.
    VoteRequestNotStale,
    /// The voter has not voted for another candidate in its term.
    NoOtherVote,
    /// The candidate's last log term is higher than the voter's.
    LastTermHigher,
    /// The candidate's last log term equals the voter's.
    LastTermEqual,
    /// The candidate's last log index is at least the voter's.
    LastIndexAtLeast,
    /// The reply's term is the candidate's current term.
    VoteReplyTermCurrent,
    /// The receiver is a candidate.
    ReceiverCandidate,
    /// The reply grants the vote.
    VoteGranted,
    /// The votes counted make a quorum.
    VotesMakeQuorum,
    /// The request's term is not below the receiver's.
    AppendNotStale,
    /// The receiver's log has an entry at `prev_log_index` whose term is `prev_log_term`.
    PrevEntryMatches,
    /// The receiver's log ends before `prev_log_index`.
    LogEndsBeforePrev,
    /// The receiver of an accepted AppendEntries is not a follower.
    AppendReceiverNotFollower,
    /// The follower has an entry at the new entry's index.
    EntryPresent,
    /// That entry has the new entry's term.
    EntryTermMatches,
    /// leaderCommit is past the follower's commit index.
    LeaderCommitPastCommit,
    /// The request's last new entry is past the follower's commit index.
    LastNewPastCommit,
    /// leaderCommit is past the request's last new entry.
    LeaderCommitPastLastNew,
    /// The reply's term is the leader's current term.
    AppendReplyTermCurrent,
    /// The receiver is a leader.
    AppendReplyReceiverLeader,
    /// The reply's match index is past the leader's `match_index` for the follower.
    ReplyPastMatch,
    /// The leader's log has an entry of the term the conflict reply names (none has term 0, which
    /// names no term).
    LeaderHasHintTerm,
    /// The request's term is not below the receiver's.
    SnapshotNotStale,
    /// The receiver of an accepted InstallSnapshot is not a follower.
    SnapshotReceiverNotFollower,
    /// The snapshot's last index is past the receiver's commit index.
    SnapshotPastCommit,
    /// The receiver's log goes past the snapshot's last index.
    LogPastSnapshot,
    /// The receiver's entry at the snapshot's last index has the snapshot's last term.
    SnapshotTermMatches,
    /// The reply's term is the leader's current term.
    SnapshotReplyTermCurrent,
    /// The receiver is a leader.
    SnapshotReplyReceiverLeader,
    /// The reply's match index is past the leader's `match_index` for the follower.
    SnapshotReplyPastMatch,
    /// The entry at the index is of the leader's current term.
    EntryOfOwnTerm,
    /// A majority, the leader included, holds the index.
    QuorumHolds,
    /// The entry at the leader's commit index is of its current term.
    CommittedInTerm,
    /// The reply answers an AppendEntries sent after the read began (its read round is the
    /// read's or later).
    ReplyAfterRead,
    /// The servers that acknowledged the read, the leader included, make a majority.
    AcksMakeQuorum,
    /// The leader's last configuration entry is committed.
    LastConfigCommitted,
    /// The entry at the leader's commit index is of its current term.
    TermEntryCommitted,
    /// The set holds a majority of C_new's voters.
    NewVotersMajority,
    /// The set holds a majority of C_old's voters.
    OldVotersMajority,
    /// The receiver is a leader, or a follower that has heard from its leader since its election
    /// timer last ran out.
    ReceiverInLease,
    /// The request is not a leadership transfer's.
    NotTransfer,
    /// The pre-vote's term is higher than the receiver's.
    PreVoteTermHigher,
    /// The pre-candidate's last log term is higher than the receiver's.
    PreVoteLastTermHigher,
    /// The pre-candidate's last log term equals the receiver's.
    PreVoteLastTermEqual,
    /// The pre-candidate's last log index is at least the receiver's.
    PreVoteLastIndexAtLeast,
    /// The reply's term is the one the receiver would stand in (its own plus one).
    PreVoteReplyTermNext,
    /// The receiver is a pre-candidate.
    ReceiverPreCandidate,
    /// The pre-votes counted make a quorum.
    PreVotesMakeQuorum,
    /// The servers the leader heard from since its last check, itself included, make a quorum.
    RecentQuorum,
    /// The TimeoutNow is of the receiver's term.
    TimeoutNowTermCurrent,
    /// The receiver is a follower.
    TimeoutNowReceiverFollower,
}

impl Condition {
    /// Every condition, grouped by decision in [`Decision::ALL`] order.
    pub const ALL: [Condition; 53] = [
        Condition::MessageTermHigher,
        Condition::NotPreVote,
        Condition::VoteRequestNotStale,
        Condition::NoOtherVote,
        Condition::LastTermHigher,
        Condition::LastTermEqual,
        Condition::LastIndexAtLeast,
        Condition::VoteReplyTermCurrent,
        Condition::ReceiverCandidate,
        Condition::VoteGranted,
        Condition::VotesMakeQuorum,
        Condition::AppendNotStale,
        Condition::PrevEntryMatches,
        Condition::LogEndsBeforePrev,
        Condition::AppendReceiverNotFollower,
        Condition::EntryPresent,
        Condition::EntryTermMatches,
        Condition::LeaderCommitPastCommit,
        Condition::LastNewPastCommit,
        Condition::LeaderCommitPastLastNew,
        Condition::AppendReplyTermCurrent,
        Condition::AppendReplyReceiverLeader,
        Condition::ReplyPastMatch,
        Condition::LeaderHasHintTerm,
        Condition::SnapshotNotStale,
        Condition::SnapshotReceiverNotFollower,
        Condition::SnapshotPastCommit,
        Condition::LogPastSnapshot,
        Condition::SnapshotTermMatches,
        Condition::SnapshotReplyTermCurrent,
        Condition::SnapshotReplyReceiverLeader,
        Condition::SnapshotReplyPastMatch,
        Condition::EntryOfOwnTerm,
        Condition::QuorumHolds,
        Condition::CommittedInTerm,
        Condition::ReplyAfterRead,
        Condition::AcksMakeQuorum,
        Condition::LastConfigCommitted,
        Condition::TermEntryCommitted,
        Condition::NewVotersMajority,
        Condition::OldVotersMajority,
        Condition::ReceiverInLease,
        Condition::NotTransfer,
        Condition::PreVoteTermHigher,
        Condition::PreVoteLastTermHigher,
        Condition::PreVoteLastTermEqual,
        Condition::PreVoteLastIndexAtLeast,
        Condition::PreVoteReplyTermNext,
        Condition::ReceiverPreCandidate,
        Condition::PreVotesMakeQuorum,
        Condition::RecentQuorum,
        Condition::TimeoutNowTermCurrent,
        Condition::TimeoutNowReceiverFollower,
    ];

    /// The decision the condition belongs to, and its name within it.
    pub const fn decision_and_name(self) -> (Decision, &'static str) {
        use Condition as C;
        use Decision as D;
        match self {
            C::MessageTermHigher => (D::AdoptTerm, "message-term-higher"),
            C::NotPreVote => (D::AdoptTerm, "not-pre-vote"),
            C::VoteRequestNotStale => (D::GrantVote, "request-not-stale"),
            C::NoOtherVote => (D::GrantVote, "no-other-vote"),
            C::LastTermHigher => (D::GrantVote, "last-term-higher"),
            C::LastTermEqual => (D::GrantVote, "last-term-equal"),
            C::LastIndexAtLeast => (D::GrantVote, "last-index-at-least"),
            C::VoteReplyTermCurrent => (D::CountVote, "reply-term-current"),
            C::ReceiverCandidate => (D::CountVote, "receiver-candidate"),
            C::VoteGranted => (D::CountVote, "vote-granted"),
            C::VotesMakeQuorum => (D::Elected, "votes-make-quorum"),
            C::AppendNotStale => (D::AcceptAppend, "request-not-stale"),
            C::PrevEntryMatches => (D::AcceptAppend, "prev-entry-matches"),
            C::LogEndsBeforePrev => (D::RefuseTooShort, "log-ends-before-prev"),
            C::AppendReceiverNotFollower => (D::AppendStepsDown, "receiver-not-follower"),
            C::EntryPresent => (D::TruncateEntry, "entry-present"),
            C::EntryTermMatches => (D::TruncateEntry, "entry-term-matches"),
            C::LeaderCommitPastCommit => (D::FollowerCommits, "leader-commit-past-commit"),
            C::LastNewPastCommit => (D::FollowerCommits, "last-new-past-commit"),
            C::LeaderCommitPastLastNew => (D::CommitCapped, "leader-commit-past-last-new"),
            C::AppendReplyTermCurrent => (D::AppendReplyLive, "reply-term-current"),
            C::AppendReplyReceiverLeader => (D::AppendReplyLive, "receiver-leader"),
            C::ReplyPastMatch => (D::MatchAdvances, "reply-past-match"),
            C::LeaderHasHintTerm => (D::BackUpByTerm, "leader-has-hint-term"),
            C::SnapshotNotStale => (D::AcceptSnapshot, "request-not-stale"),
            C::SnapshotReceiverNotFollower => (D::SnapshotStepsDown, "receiver-not-follower"),
            C::SnapshotPastCommit => (D::SnapshotNewer, "snapshot-past-commit"),
            C::LogPastSnapshot => (D::KeepSuffix, "log-past-snapshot"),
            C::SnapshotTermMatches => (D::KeepSuffix, "snapshot-term-matches"),
            C::SnapshotReplyTermCurrent => (D::SnapshotReplyLive, "reply-term-current"),
            C::SnapshotReplyReceiverLeader => (D::SnapshotReplyLive, "receiver-leader"),
            C::SnapshotReplyPastMatch => (D::SnapshotMatchAdvances, "reply-past-match"),
            C::EntryOfOwnTerm => (D::LeaderCommits, "entry-of-own-term"),
            C::QuorumHolds => (D::LeaderCommits, "quorum-holds"),
            C::CommittedInTerm => (D::BeginRead, "committed-in-term"),
            C::ReplyAfterRead => (D::AckRead, "reply-after-read"),
            C::AcksMakeQuorum => (D::ServeRead, "acks-make-quorum"),
            C::LastConfigCommitted => (D::ChangeConfig, "last-config-committed"),
            C::TermEntryCommitted => (D::ChangeConfig, "term-entry-committed"),
            C::NewVotersMajority => (D::JointQuorum, "new-voters-majority"),
            C::OldVotersMajority => (D::JointQuorum, "old-voters-majority"),
            C::ReceiverInLease => (D::IgnoreInLease, "receiver-in-lease"),
            C::NotTransfer => (D::IgnoreInLease, "not-transfer"),
            C::PreVoteTermHigher => (D::GrantPreVote, "term-higher"),
            C::PreVoteLastTermHigher => (D::GrantPreVote, "last-term-higher"),
            C::PreVoteLastTermEqual => (D::GrantPreVote, "last-term-equal"),
            C::PreVoteLastIndexAtLeast => (D::GrantPreVote, "last-index-at-least"),
            C::PreVoteReplyTermNext => (D::CountPreVote, "reply-term-next"),
            C::ReceiverPreCandidate => (D::CountPreVote, "receiver-pre-candidate"),
            C::PreVotesMakeQuorum => (D::PreVoteWon, "pre-votes-make-quorum"),
            C::RecentQuorum => (D::CheckQuorum, "recent-quorum"),
            C::TimeoutNowTermCurrent => (D::TimeoutNowStarts, "term-current"),
            C::TimeoutNowReceiverFollower => (D::TimeoutNowStarts, "receiver-follower"),
        }
    }

    /// Whether the condition is part of an extension of Raft beyond Figure 2 (see
    /// [`Branch::extension`]): one of an extension's decisions, or the PreVote exception to
    /// adopting a higher term.
    pub fn extension(self) -> bool {
        self.decision().extension() || self == Condition::NotPreVote
    }

    /// The decision the condition belongs to.
    pub const fn decision(self) -> Decision {
        self.decision_and_name().0
    }

    /// `<decision>/<condition>`.
    pub fn name(self) -> String {
        let (d, c) = self.decision_and_name();
        format!("{}/{c}", d.name())
    }

    /// The condition's place within its decision.
    fn position(self) -> usize {
        POSITION[self as usize]
    }
}

/// The most conditions one decision has.
const MAX_CONDITIONS: usize = 5;

/// A condition forced to one value wherever it is evaluated: the stuck-at fault that MC/DC is
/// meant to expose (`check --stuck <decision>/<condition>=<true|false>`).
pub type StuckAt = (Condition, bool);

/// One evaluation of a decision, as [`RaftModel::decide`](crate::RaftModel) runs it: the value
/// each condition evaluated to, a condition stuck at a value, and a condition flipped (to see
/// whether it decides).
#[derive(Clone, Copy, Debug, Default)]
pub struct Evaluation {
    values: [Option<bool>; MAX_CONDITIONS],
    stuck: Option<StuckAt>,
    flipped: Option<Condition>,
}

impl Evaluation {
    /// An evaluation in which `stuck`, if any, forces its condition.
    pub fn new(stuck: Option<StuckAt>) -> Self {
        Evaluation {
            stuck,
            ..Evaluation::default()
        }
    }

    /// The same evaluation run again with `condition` flipped.
    pub fn flipping(stuck: Option<StuckAt>, condition: Condition) -> Self {
        Evaluation {
            stuck,
            flipped: Some(condition),
            ..Evaluation::default()
        }
    }

    /// Records that `condition` was evaluated to `value` (or to the value it is stuck at, or the
    /// opposite when it is the one flipped), and returns that value.
    #[inline]
    pub fn at(&mut self, condition: Condition, value: bool) -> bool {
        let value = match self.stuck {
            Some((c, forced)) if c == condition => forced,
            _ => value,
        } ^ (self.flipped == Some(condition));
        self.values[condition.position()] = Some(value);
        value
    }

    /// The value `condition` evaluated to, if it was evaluated.
    pub fn value(&self, condition: Condition) -> Option<bool> {
        self.values[condition.position()]
    }
}

/// Parses `<decision>/<condition>=<true|false>`.
pub fn parse_stuck(text: &str) -> Result<StuckAt, String> {
    let (name, value) = text.split_once('=').ok_or_else(|| {
        format!("--stuck takes <decision>/<condition>=<true|false>, got '{text}'")
    })?;
    let condition = Condition::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| format!("unknown condition '{name}' (`check --coverage` lists them)"))?;
    let value = value
        .parse::<bool>()
        .map_err(|_| format!("--stuck: the value must be true or false, got '{value}'"))?;
    Ok((condition, value))
}

/// Each condition's place within its decision, by [`Condition`] discriminant (`ALL` lists them in
/// discriminant order; a test checks it).
const POSITION: [usize; Condition::ALL.len()] = {
    let mut position = [0; Condition::ALL.len()];
    let mut k = 1;
    while k < Condition::ALL.len() {
        let same =
            Condition::ALL[k].decision() as usize == Condition::ALL[k - 1].decision() as usize;
        position[k] = if same { position[k - 1] + 1 } else { 0 };
        k += 1;
    }
    position
};

/// Decided while true: the condition's value was true and flipping it alone changed the outcome.
const DECIDED_TRUE: u8 = 1;
/// Decided while false.
const DECIDED_FALSE: u8 = 2;

/// For each condition (in [`Condition::ALL`] order), whether it was seen deciding its decision's
/// outcome while true, and while false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed(Vec<u8>);

impl Default for Observed {
    fn default() -> Self {
        Observed(vec![0; Condition::ALL.len()])
    }
}

impl Observed {
    /// Adds what `other` saw.
    pub fn merge(&mut self, other: &Observed) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    /// Whether `condition` was seen deciding while true, and while false.
    pub fn decided(&self, condition: Condition) -> (bool, bool) {
        let bits = self.0[condition as usize];
        (bits & DECIDED_TRUE != 0, bits & DECIDED_FALSE != 0)
    }

    /// Whether `condition` was shown to decide its decision on its own, both ways.
    pub fn shown(&self, condition: Condition) -> bool {
        self.decided(condition) == (true, true)
    }

    /// Every condition and whether it was shown, in [`Condition::ALL`] order.
    pub fn conditions(&self) -> Vec<(Condition, bool)> {
        Condition::ALL.iter().map(|&c| (c, self.shown(c))).collect()
    }
}

const SHARDS: usize = 16;

/// One shard of counters, alone on its cache lines.
#[repr(align(128))]
struct Shard([AtomicU64; BRANCHES]);

/// How often each branch was taken, and which conditions were seen deciding.
pub struct Coverage {
    shards: Box<[Shard]>,
    /// As in [`Observed`]. Written only the first time a bit is seen, so the workers mostly read
    /// it.
    observed: Box<[AtomicU8]>,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            shards: (0..SHARDS)
                .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            observed: (0..Condition::ALL.len())
                .map(|_| AtomicU8::new(0))
                .collect(),
        }
    }
}

/// What a run covered: each branch with its count, and the conditions seen deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Covered {
    /// Each branch with how often it was taken, in [`Branch::ALL`] order.
    pub branches: Vec<(Branch, u64)>,
    /// The conditions seen deciding, while true and while false.
    pub observed: Observed,
}

impl Covered {
    /// The names of the branches of `branches` never taken.
    pub fn not_taken(&self, branches: &[Branch]) -> Vec<&'static str> {
        self.branches
            .iter()
            .filter(|(b, count)| *count == 0 && branches.contains(b))
            .map(|(b, _)| b.name())
            .collect()
    }

    /// The names of the conditions of `decisions` never shown deciding.
    pub fn not_shown(&self, decisions: &[Decision]) -> Vec<String> {
        self.observed
            .conditions()
            .into_iter()
            .filter(|(c, shown)| !shown && decisions.contains(&c.decision()))
            .map(|(c, _)| c.name())
            .collect()
    }

    /// Adds what `other` covered.
    pub fn merge(&mut self, other: &Covered) {
        if self.branches.is_empty() {
            self.branches = other.branches.iter().map(|&(b, _)| (b, 0)).collect();
        }
        for (t, (_, c)) in self.branches.iter_mut().zip(&other.branches) {
            t.1 += c;
        }
        self.observed.merge(&other.observed);
    }
}

/// Each thread's shard, assigned in order of first use.
fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl std::fmt::Debug for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let taken = Branch::ALL.len() - self.missed().len();
        write!(f, "Coverage({taken}/{} branches)", Branch::ALL.len())
    }
}

impl Coverage {
    /// Counts one execution of `branch`.
    pub fn hit(&self, branch: Branch) {
        self.shards[shard_of_this_thread()].0[branch as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records that `condition` decided its decision's outcome while it was `value`.
    #[inline]
    pub fn record(&self, condition: Condition, value: bool) {
        let slot = &self.observed[condition as usize];
        let bit = if value { DECIDED_TRUE } else { DECIDED_FALSE };
        if slot.load(Ordering::Relaxed) & bit == 0 {
            slot.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The conditions seen deciding so far.
    pub fn observed(&self) -> Observed {
        Observed(
            self.observed
                .iter()
                .map(|slot| slot.load(Ordering::Relaxed))
                .collect(),
        )
    }

    /// Everything covered so far.
    pub fn covered(&self) -> Covered {
        Covered {
            branches: self.counts(),
            observed: self.observed(),
        }
    }

    /// How often `branch` was taken.
    pub fn count(&self, branch: Branch) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0[branch as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Every branch with its count, in [`Branch::ALL`] order.
    pub fn counts(&self) -> Vec<(Branch, u64)> {
        Branch::ALL.iter().map(|&b| (b, self.count(b))).collect()
    }

    /// The branches never taken.
    pub fn missed(&self) -> Vec<Branch> {
        Branch::ALL
            .into_iter()
            .filter(|&b| self.count(b) == 0)
            .collect()
    }
}

/// `report` as `check --coverage` prints it: a line `branch <action>/<outcome> <count>` each, then
/// `coverage: <taken>/<total> branches`, then a line `condition <decision>/<condition> shown` (or
/// `NOT shown`) each, then `conditions: <shown>/<total>`.
pub fn render(report: &Covered) -> String {
    let mut out = String::new();
    for (branch, count) in &report.branches {
        out.push_str(&format!("branch {} {count}\n", branch.name()));
    }
    out.push_str(&format!("{}\n", summary(&report.branches)));
    let conditions = report.observed.conditions();
    for (condition, shown) in &conditions {
        let word = if *shown { "shown" } else { "NOT shown" };
        out.push_str(&format!("condition {} {word}\n", condition.name()));
    }
    out.push_str(&format!("{}\n", condition_summary(&conditions)));
    out
}

/// `coverage: <taken>/<total> branches`.
pub fn summary(counts: &[(Branch, u64)]) -> String {
    let taken = counts.iter().filter(|(_, c)| *c > 0).count();
    format!("coverage: {taken}/{} branches", counts.len())
}

/// `conditions: <shown>/<total>`.
pub fn condition_summary(conditions: &[(Condition, bool)]) -> String {
    let shown = conditions.iter().filter(|(_, s)| *s).count();
    format!("conditions: {shown}/{}", conditions.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_listed_once_in_declaration_order() {
        for (k, b) in Branch::ALL.iter().enumerate() {
            assert_eq!(*b as usize, k, "{}", b.name());
        }
        let mut names: Vec<_> = Branch::ALL.iter().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BRANCHES);
    }

    #[test]
    fn conditions_are_grouped_by_decision_in_order() {
        for (k, c) in Condition::ALL.iter().enumerate() {
            assert_eq!(*c as usize, k, "{}", c.name());
        }
        let order: Vec<Decision> = Condition::ALL.iter().map(|c| c.decision()).collect();
        let mut grouped = order.clone();
        grouped.dedup();
        assert_eq!(
            grouped,
            Decision::ALL,
            "each decision's conditions together, in order"
        );
        for d in Decision::ALL {
            assert!((1..=MAX_CONDITIONS).contains(&d.conditions().len()));
            for (k, c) in d.conditions().iter().enumerate() {
                assert_eq!(c.position(), k);
            }
        }
        let mut names: Vec<_> = Condition::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Condition::ALL.len());
    }

    /// `a && b`: a condition decides where flipping it alone turns the outcome. `(false, false)`
    /// shows nothing (flipping `a` leaves `b` false); `(false, true)` shows `a` deciding while
    /// false.
    #[test]
    fn a_condition_is_shown_where_flipping_it_alone_turns_the_outcome() {
        use Condition::{AppendReplyReceiverLeader as B, AppendReplyTermCurrent as A};
        let mut model = crate::RaftModel::new(crate::bounds::preset("small").unwrap().bounds);
        let c = std::sync::Arc::new(Coverage::default());
        model.coverage = Some(c.clone());
        let live = |model: &crate::RaftModel, a: bool, b: bool| {
            model.decide(Decision::AppendReplyLive, |e| e.at(A, a) && e.at(B, b))
        };
        assert!(live(&model, true, true));
        assert_eq!(c.observed().decided(A), (true, false));
        assert_eq!(c.observed().decided(B), (true, false));
        assert!(!live(&model, false, false));
        assert_eq!(c.observed().decided(A), (true, false), "masked by b");
        assert!(!live(&model, true, false));
        assert!(c.observed().shown(B));
        assert!(!c.observed().shown(A));
        assert!(!live(&model, false, true));
        assert!(c.observed().shown(A));
        let text = render(&c.covered());
        assert!(text.contains("condition append-reply-live/reply-term-current shown\n"));
        assert!(text.contains("condition grant-vote/last-term-higher NOT shown\n"));
        assert!(text.ends_with(&format!("conditions: 2/{}\n", Condition::ALL.len())));
        // A stuck condition is forced, and the outcome follows it.
        model.stuck = Some((A, true));
        assert!(live(&model, false, true));
    }

    #[test]
    fn counts_add_up_across_threads() {
        let c = std::sync::Arc::new(Coverage::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.hit(Branch::Drop)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.count(Branch::Drop), 4000);
        assert!(c.missed().contains(&Branch::Duplicate));
    }
}
