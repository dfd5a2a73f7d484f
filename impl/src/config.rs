//! Timing and batching configuration.

use thiserror::Error;

/// Configuration of a [`Node`](crate::Node). Time is counted in ticks: the caller decides how long a tick is
/// (the lab adapter ticks every 10 ms of simulated time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Lower bound (inclusive) of the randomized election timeout, in ticks.
    pub election_ticks_min: u32,
    /// Upper bound (exclusive) of the randomized election timeout, in ticks.
    pub election_ticks_max: u32,
    /// A leader sends AppendEntries to every follower at least this often, in ticks. With 10 ms ticks, 10 ticks
    /// keeps to the lab's rule of at most ten heartbeats per second.
    pub heartbeat_ticks: u32,
    /// The most entries one AppendEntries may carry.
    pub max_entries_per_message: usize,
    /// The most command bytes one AppendEntries may carry (as etcd's `MaxSizePerMsg`; a configuration
    /// entry counts as empty). A message carries at least one entry, however large it is.
    pub max_bytes_per_message: usize,
    /// Flow control (as etcd's `MaxInflightMsgs`): the most AppendEntries carrying entries that a leader
    /// keeps unacknowledged at a follower it streams to. With the window full, new entries wait for an
    /// answer, and then go out together in one message; heartbeats still go, without entries. A follower
    /// that stops answering is thus sent at most this many messages of entries, not one per proposal.
    pub max_inflight_messages: usize,
    /// After sending a follower an InstallSnapshot, a leader sends it no other until the follower answers or
    /// this many ticks have passed (the snapshot or its answer may have been lost); meanwhile the follower gets
    /// heartbeats, so that its election timer does not run out while the snapshot travels. At least
    /// `heartbeat_ticks` (equal to it, a snapshot is resent with every heartbeat until answered).
    pub snapshot_resend_ticks: u32,
    /// PreVote (§9.6 of Ongaro's dissertation): a server whose election timer fires first asks the others
    /// whether they would vote for it in the next term (a PreVote, which changes no one's term or vote), and
    /// starts the election only once a quorum says yes. A server cut off from the leader then cannot raise
    /// the cluster's term: its log falls behind, and its pre-votes are refused.
    pub pre_vote: bool,
    /// CheckQuorum with the leader lease (§6.2 and §4.2.3 of the dissertation), as etcd has them together. A
    /// leader checks every `check_quorum_ticks` ticks that a quorum, itself included, has answered it since
    /// its previous check, and steps down if not: a leader cut off from most of the cluster stops taking
    /// writes it could never commit. A follower that has heard from the leader of its term is in its lease
    /// until its election timer runs out, and a leader always is: in its lease a server ignores RequestVotes
    /// and PreVotes of higher terms (unless a leadership transfer started the election), so that a server
    /// that can reach only some of the cluster cannot depose a leader the rest still follow.
    pub check_quorum: bool,
    /// With `check_quorum`, how often a leader checks that a quorum answered it, in ticks; at least
    /// `election_ticks_min`. The default, 60 (the longest election timeout), gives a window six heartbeats
    /// long. A window of three heartbeats (30 ticks) deposed healthy leaders on a lossy network that delays
    /// replies by up to 2.2 s: in 100,000 runs of the lab's TestFigure8Unreliable2C, 29 failed to agree within
    /// the test's 10 s, against 1 with 60.
    pub check_quorum_ticks: u32,
}

impl Default for Config {
    /// Values suited to the lab tester with 10 ms ticks: heartbeats every 100 ms, election timeouts of 300-600 ms
    /// (well above the heartbeat interval so that a lossy network does not cause spurious elections, well below the
    /// tester's 5 s budget for electing a leader), and up to 100 entries or 1 MiB of commands per AppendEntries,
    /// with at most 256 of them in flight to each follower (etcd's defaults are 1 MiB and 256 too).
    ///
    /// A snapshot is sent again after 100 ticks (1 s) without an answer. That is ten heartbeats, and far more
    /// than a round trip on the lab's network (at most 27 ms each way unless a message is held back), so a
    /// snapshot still on its way is not sent again; a lost one delays only its follower, by at most a second,
    /// since heartbeats keep that follower from starting an election meanwhile. Over a real link it covers a
    /// snapshot of about 100 MB at 1 Gb/s; a larger snapshot or a slower link wants a longer wait.
    fn default() -> Self {
        Config {
            election_ticks_min: 30,
            election_ticks_max: 60,
            heartbeat_ticks: 10,
            max_entries_per_message: 100,
            max_bytes_per_message: 1 << 20,
            max_inflight_messages: 256,
            snapshot_resend_ticks: 100,
            pre_vote: true,
            check_quorum: true,
            check_quorum_ticks: 60,
        }
    }
}

impl Config {
    /// Checks the configuration on its own (the cluster membership is checked by [`Node::new`](crate::Node::new)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_ticks_min <= self.heartbeat_ticks
            || self.election_ticks_max <= self.election_ticks_min
        {
            return Err(ConfigError::ElectionTimeout {
                min: self.election_ticks_min,
                max: self.election_ticks_max,
                heartbeat: self.heartbeat_ticks,
            });
        }
        if self.max_entries_per_message == 0 || self.max_bytes_per_message == 0 {
            return Err(ConfigError::ZeroBatch);
        }
        if self.max_inflight_messages == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.check_quorum && self.check_quorum_ticks < self.election_ticks_min {
            return Err(ConfigError::CheckQuorumInterval {
                check: self.check_quorum_ticks,
                min: self.election_ticks_min,
            });
        }
        if self.snapshot_resend_ticks < self.heartbeat_ticks {
            return Err(ConfigError::SnapshotResend {
                resend: self.snapshot_resend_ticks,
                heartbeat: self.heartbeat_ticks,
            });
        }
        Ok(())
    }
}

/// Why [`Node::new`](crate::Node::new) refused its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `heartbeat_ticks` is 0.
    #[error("heartbeat_ticks must be at least 1")]
    ZeroHeartbeat,
    /// The election timeout range is empty or not above the heartbeat interval.
    #[error("election timeout range [{min}, {max}) must be non-empty and above heartbeat_ticks ({heartbeat})")]
    ElectionTimeout {
        /// `election_ticks_min`.
        min: u32,
        /// `election_ticks_max`.
        max: u32,
        /// `heartbeat_ticks`.
        heartbeat: u32,
    },
    /// `max_entries_per_message` or `max_bytes_per_message` is 0.
    #[error("max_entries_per_message and max_bytes_per_message must be at least 1")]
    ZeroBatch,
    /// `max_inflight_messages` is 0.
    #[error("max_inflight_messages must be at least 1")]
    ZeroInflight,
    /// `snapshot_resend_ticks` is below `heartbeat_ticks`.
    #[error("snapshot_resend_ticks ({resend}) must be at least heartbeat_ticks ({heartbeat})")]
    SnapshotResend {
        /// `snapshot_resend_ticks`.
        resend: u32,
        /// `heartbeat_ticks`.
        heartbeat: u32,
    },
    /// With `check_quorum`, `check_quorum_ticks` is below `election_ticks_min`.
    #[error("check_quorum_ticks ({check}) must be at least election_ticks_min ({min})")]
    CheckQuorumInterval {
        /// `check_quorum_ticks`.
        check: u32,
        /// `election_ticks_min`.
        min: u32,
    },
    /// `peers` does not list the node's own id.
    #[error("peers must include the node's own id {0}")]
    SelfNotInPeers(u64),
    /// `peers` lists an id twice.
    #[error("peer {0} is listed twice")]
    DuplicatePeer(u64),
    /// The persisted state contradicts itself or the membership.
    #[error("invalid persisted state: {0}")]
    InvalidPersistedState(&'static str),
}
