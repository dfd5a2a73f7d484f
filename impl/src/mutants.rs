#![cfg_attr(not(feature = "mutants"), allow(dead_code))]

//! Deliberate bugs that Raft implementations have shipped, compiled in only with the `mutants` feature and
//! switched on at run time, one at a time, to measure which checks catch them (the `mutants` binary of
//! `conformance`). Without the feature, [`on`] is a constant `false` and the mutated branches vanish.

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// A granted vote is not made durable before the reply leaves.
    VoteNotPersisted,
    /// A term learned from a higher-term message is not made durable.
    TermNotPersisted,
    /// A leader commits an entry of an earlier term by counting its replicas (Figure 8).
    Figure8Commit,
    /// A follower handles an AppendEntries of a lower term as if it were current.
    AcceptStaleTerm,
    /// A follower truncates its log after `prev_log_index` although the entries match.
    TruncateOnMatch,
    /// A follower does not compare the term at `prev_log_index`.
    NoPrevTermCheck,
    /// A candidate counts a vote granted in an earlier term.
    StaleVoteCounted,
    /// A leader sets `match_index` from any success reply, so a stale reply moves it backwards.
    MatchRegress,
    /// A follower sets its commit index up to its last index, not to the request's last new entry.
    CommitBeyondLastNew,
    /// The up-to-date check compares only the last index.
    UpToDateByIndexOnly,
    /// A leader grants a vote to another candidate of its own term.
    LeaderGrantsVote,
    /// The AppendEntries reply leaves before the appended entries are durable.
    ReplyBeforeDurable,
    /// Installing a snapshot drops the log entries after it even when they match.
    SnapshotDropsSuffix,
    /// A follower clears `voted_for` on an AppendEntries of its current term.
    VoteClearedOnHeartbeat,
    /// Installing a snapshot keeps the log entries after it whenever the log goes past it, without checking
    /// that the log's entry at the snapshot's last index has the snapshot's last term.
    SnapshotIgnoresTerm,
    /// A quorum is two nodes, whatever the cluster's size (right for three nodes only).
    QuorumOfTwo,
    /// A candidate (or a pre-candidate) that receives an InstallSnapshot of its term installs it and stays a
    /// candidate.
    SnapshotCandidateStays,
    /// A leader takes an InstallSnapshotReply of an earlier term as an answer to its own snapshot.
    StaleSnapshotReplyCounted,
    /// A leader begins a read before it has committed an entry of its term.
    ReadBeforeTermCommit,
    /// A leader serves a read at once, without a majority's acknowledgement.
    ReadWithoutQuorum,
    /// A leader counts any reply in its term as acknowledging every read, even a reply to an AppendEntries sent
    /// before the read began.
    ReadAckAnyRound,
    /// A new leader keeps the read acknowledgements of its previous leadership, whose rounds it numbers anew.
    ReadAcksKeptAcrossTerms,
    /// A server adopts the term of a PreVote (or of a granted PreVoteReply), as of any higher-term message.
    PreVoteAdoptsTerm,
    /// A server grants a pre-vote without comparing the pre-candidate's log with its own.
    PreVoteIgnoresLog,
    /// A server that grants a pre-vote records it as its vote.
    PreVoteRecordsVote,
    /// A pre-candidate counts a granted pre-vote of any term, even one that answered an earlier pre-candidacy.
    PreVoteStaleGrantCounted,
    /// CheckQuorum: a leader never steps down at its quorum check.
    CheckQuorumNeverStepsDown,
    /// CheckQuorum: a leader does not forget, after a check, who answered it before: an answer counts at
    /// every later check.
    CheckQuorumKeepsRecent,
    /// A server in its leader lease ignores a transfer's RequestVote too.
    LeaseIgnoresTransfer,
    /// A leader sends TimeoutNow at once, before the target's log holds all of its own.
    TimeoutNowToLaggard,
    /// A leader changes the configuration before it has committed an entry of its term (Ongaro's
    /// single-server change bug, raft-dev 2015).
    ConfChangeBeforeTermCommit,
    /// A leader appends a configuration change while its previous one is uncommitted (with joint consensus:
    /// it leaves C_old,new before C_old,new commits).
    ConfChangeWhilePending,
    /// While joint, a majority of C_new alone makes a quorum.
    JointNewQuorumOnly,
    /// A candidate asks its learners too and counts their votes.
    LearnerVoteCounted,
    /// A leader that committed a configuration without itself keeps leading.
    RemovedLeaderStays,
    /// A follower whose log loses the configuration entry in force (a truncation) keeps that configuration.
    TruncatedConfigKept,
}

impl Mutant {
    /// Every mutant.
    pub const ALL: [Mutant; 36] = [
        Mutant::VoteNotPersisted,
        Mutant::TermNotPersisted,
        Mutant::Figure8Commit,
        Mutant::AcceptStaleTerm,
        Mutant::TruncateOnMatch,
        Mutant::NoPrevTermCheck,
        Mutant::StaleVoteCounted,
        Mutant::MatchRegress,
        Mutant::CommitBeyondLastNew,
        Mutant::UpToDateByIndexOnly,
        Mutant::LeaderGrantsVote,
        Mutant::ReplyBeforeDurable,
        Mutant::SnapshotDropsSuffix,
        Mutant::VoteClearedOnHeartbeat,
        Mutant::SnapshotIgnoresTerm,
        Mutant::QuorumOfTwo,
        Mutant::SnapshotCandidateStays,
        Mutant::StaleSnapshotReplyCounted,
        Mutant::ReadBeforeTermCommit,
        Mutant::ReadWithoutQuorum,
        Mutant::ReadAckAnyRound,
        Mutant::ReadAcksKeptAcrossTerms,
        Mutant::PreVoteAdoptsTerm,
        Mutant::PreVoteIgnoresLog,
        Mutant::PreVoteRecordsVote,
        Mutant::PreVoteStaleGrantCounted,
        Mutant::CheckQuorumNeverStepsDown,
        Mutant::CheckQuorumKeepsRecent,
        Mutant::LeaseIgnoresTransfer,
        Mutant::TimeoutNowToLaggard,
        Mutant::ConfChangeBeforeTermCommit,
        Mutant::ConfChangeWhilePending,
        Mutant::JointNewQuorumOnly,
        Mutant::LearnerVoteCounted,
        Mutant::RemovedLeaderStays,
        Mutant::TruncatedConfigKept,
    ];

    /// A short name (`RAFT_MUTANT` takes it).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::VoteNotPersisted => "vote-not-persisted",
            Mutant::TermNotPersisted => "term-not-persisted",
            Mutant::Figure8Commit => "figure8-commit",
            Mutant::AcceptStaleTerm => "accept-stale-term",
            Mutant::TruncateOnMatch => "truncate-on-match",
            Mutant::NoPrevTermCheck => "no-prev-term-check",
            Mutant::StaleVoteCounted => "stale-vote-counted",
            Mutant::MatchRegress => "match-regress",
            Mutant::CommitBeyondLastNew => "commit-beyond-last-new",
            Mutant::UpToDateByIndexOnly => "up-to-date-by-index-only",
            Mutant::LeaderGrantsVote => "leader-grants-vote",
            Mutant::ReplyBeforeDurable => "reply-before-durable",
            Mutant::SnapshotDropsSuffix => "snapshot-drops-suffix",
            Mutant::VoteClearedOnHeartbeat => "vote-cleared-on-heartbeat",
            Mutant::SnapshotIgnoresTerm => "snapshot-ignores-term",
            Mutant::QuorumOfTwo => "quorum-of-two",
            Mutant::SnapshotCandidateStays => "snapshot-candidate-stays",
            Mutant::StaleSnapshotReplyCounted => "stale-snapshot-reply-counted",
            Mutant::ReadBeforeTermCommit => "read-before-term-commit",
            Mutant::ReadWithoutQuorum => "read-without-quorum",
            Mutant::ReadAckAnyRound => "read-ack-any-round",
            Mutant::ReadAcksKeptAcrossTerms => "read-acks-kept-across-terms",
            Mutant::PreVoteAdoptsTerm => "pre-vote-adopts-term",
            Mutant::PreVoteIgnoresLog => "pre-vote-ignores-log",
            Mutant::PreVoteRecordsVote => "pre-vote-records-vote",
            Mutant::PreVoteStaleGrantCounted => "pre-vote-stale-grant-counted",
            Mutant::CheckQuorumNeverStepsDown => "check-quorum-never-steps-down",
            Mutant::CheckQuorumKeepsRecent => "check-quorum-keeps-recent",
            Mutant::LeaseIgnoresTransfer => "lease-ignores-transfer",
            Mutant::TimeoutNowToLaggard => "timeout-now-to-laggard",
            Mutant::ConfChangeBeforeTermCommit => "conf-change-before-term-commit",
            Mutant::ConfChangeWhilePending => "conf-change-while-pending",
            Mutant::JointNewQuorumOnly => "joint-new-quorum-only",
            Mutant::LearnerVoteCounted => "learner-vote-counted",
            Mutant::RemovedLeaderStays => "removed-leader-stays",
            Mutant::TruncatedConfigKept => "truncated-config-kept",
        }
    }

    /// Whether the mutant is in CheckQuorum, the leader lease or leadership transfer, which only nodes with
    /// `Config::check_quorum` run (transfers: only hosts that call `Node::transfer_leader`).
    pub fn needs_check_quorum(self) -> bool {
        matches!(
            self,
            Mutant::CheckQuorumNeverStepsDown
                | Mutant::CheckQuorumKeepsRecent
                | Mutant::LeaseIgnoresTransfer
                | Mutant::TimeoutNowToLaggard
        )
    }

    /// Whether the mutant is in membership changes, which only hosts that call `Node::propose_conf_change`
    /// run.
    pub fn needs_conf_change(self) -> bool {
        matches!(
            self,
            Mutant::ConfChangeBeforeTermCommit
                | Mutant::ConfChangeWhilePending
                | Mutant::JointNewQuorumOnly
                | Mutant::LearnerVoteCounted
                | Mutant::RemovedLeaderStays
                | Mutant::TruncatedConfigKept
        )
    }

    /// Whether the mutant is in PreVote, which only nodes with `Config::pre_vote` run.
    pub fn needs_pre_vote(self) -> bool {
        matches!(
            self,
            Mutant::PreVoteAdoptsTerm
                | Mutant::PreVoteIgnoresLog
                | Mutant::PreVoteRecordsVote
                | Mutant::PreVoteStaleGrantCounted
        )
    }
}

#[cfg(feature = "mutants")]
mod switch {
    use super::Mutant;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Once;

    /// 0: none; k: `Mutant::ALL[k - 1]`.
    static ACTIVE: AtomicU8 = AtomicU8::new(0);
    static FROM_ENV: Once = Once::new();

    /// Switches `mutant` on (`None`: the correct core) for every node of the process.
    pub fn set(mutant: Option<Mutant>) {
        FROM_ENV.call_once(|| {});
        let k = mutant.map_or(0, |m| Mutant::ALL.iter().position(|x| *x == m).unwrap() + 1);
        ACTIVE.store(k as u8, Ordering::Relaxed);
    }

    /// Whether `mutant` is on. The first call reads `RAFT_MUTANT` (a mutant's name) unless `set` came first.
    pub fn on(mutant: Mutant) -> bool {
        FROM_ENV.call_once(|| {
            if let Ok(name) = std::env::var("RAFT_MUTANT") {
                let k = Mutant::ALL.iter().position(|m| m.name() == name);
                ACTIVE.store(k.map_or(0, |k| k as u8 + 1), Ordering::Relaxed);
            }
        });
        let k = ACTIVE.load(Ordering::Relaxed);
        k != 0 && Mutant::ALL[k as usize - 1] == mutant
    }
}

#[cfg(feature = "mutants")]
pub use switch::{on, set};

/// Without the `mutants` feature no mutant is ever on.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn on(_: Mutant) -> bool {
    false
}
