//! Branch coverage of the specification: every outcome of every action, counted while the checker
//! runs, so that an exhaustive check can say which parts of Raft it actually executed.
//!
//! The effects call [`RaftModel::hit`](crate::RaftModel) with a [`Branch`]; with no [`Coverage`]
//! attached that is one test of an `Option`. Counters are sharded by thread so that the checker's
//! workers never write to one cache line.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One outcome of one action. [`Branch::name`] gives `<action>/<outcome>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Branch {
    TimeoutFollower,
    TimeoutCandidate,
    ClientRequest,
    SendHeartbeat,
    SendEntries,
    /// An AppendEntries that carries fewer entries than the leader holds past `prev_log_index`.
    SendPartialBatch,
    CommitOwnTerm,
    /// A commit that takes entries of older terms along with one of the leader's own (Figure 8).
    CommitOlderTerms,
    Compact,
    SendSnapshot,
    /// A message of a higher term: the receiver adopts the term and steps down first.
    ReceiveHigherTerm,
    VoteStaleTerm,
    VoteAlreadyVoted,
    VoteLogNotUpToDate,
    VoteGranted,
    /// The same candidate asks again (a duplicate or a resend) and is granted again.
    VoteGrantedAgain,
    VoteReplyStale,
    VoteReplyRefused,
    VoteReplyCounted,
    VoteReplyElected,
    AppendStaleTerm,
    AppendCandidateStepsDown,
    AppendLogTooShort,
    AppendTermMismatch,
    AppendAlreadyPresent,
    AppendTruncated,
    AppendAppended,
    AppendCommitByLeaderCommit,
    AppendCommitCapped,
    AppendReplyStale,
    AppendReplyStaleTerm,
    AppendReplySuccess,
    AppendReplyConflictByTerm,
    AppendReplyConflictByIndex,
    SnapshotStaleTerm,
    SnapshotNotNewer,
    SnapshotKeepsSuffix,
    SnapshotReplacesLog,
    SnapshotReplyStale,
    SnapshotReplyLive,
    CrashWithoutSnapshot,
    CrashWithSnapshot,
    Drop,
    Duplicate,
}

impl Branch {
    /// Every branch, in the order `check --coverage` prints them.
    pub const ALL: [Branch; 44] = [
        Branch::TimeoutFollower,
        Branch::TimeoutCandidate,
        Branch::ClientRequest,
        Branch::SendHeartbeat,
        Branch::SendEntries,
        Branch::SendPartialBatch,
        Branch::CommitOwnTerm,
        Branch::CommitOlderTerms,
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
    ];

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
        }
    }
}

const BRANCHES: usize = Branch::ALL.len();
const SHARDS: usize = 16;

/// One shard of counters, alone on its cache lines.
#[repr(align(128))]
struct Shard([AtomicU64; BRANCHES]);

/// How often each branch was taken.
pub struct Coverage {
    shards: Box<[Shard]>,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            shards: (0..SHARDS)
                .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
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

/// `counts` as `check --coverage` prints them: a line `branch <action>/<outcome> <count>` each, then
/// `coverage: <taken>/<total> branches`.
pub fn render(counts: &[(Branch, u64)]) -> String {
    let mut out = String::new();
    for (branch, count) in counts {
        out.push_str(&format!("branch {} {count}\n", branch.name()));
    }
    out.push_str(&format!("{}\n", summary(counts)));
    out
}

/// `coverage: <taken>/<total> branches`.
pub fn summary(counts: &[(Branch, u64)]) -> String {
    let taken = counts.iter().filter(|(_, c)| *c > 0).count();
    format!("coverage: {taken}/{} branches", counts.len())
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
