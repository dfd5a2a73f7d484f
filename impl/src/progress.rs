//! The leader's view of one follower (Figure 2, "Volatile state on leaders"), plus the replication mode that
//! decides how AppendEntries are paced.

use std::collections::VecDeque;

use crate::Index;

/// How the leader currently replicates to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The leader does not know where the follower's log matches its own. It sends one AppendEntries at a time
    /// (on heartbeats and after each rejection) and does not advance `next_index` until a reply says so.
    Probe,
    /// The follower acknowledged `next_index - 1` or close to it. New entries are sent as soon as they are
    /// proposed, and `next_index` advances when they are sent (optimistically), so each entry crosses the wire
    /// about once. A lost message shows up as a rejection of a later one, which drops back to `Probe`.
    Replicate,
    /// The follower needs entries the leader has compacted, and an InstallSnapshot is on its way to it. The
    /// leader sends it only heartbeats (from the snapshot's last entry) until it answers, or until
    /// `resend_in` more ticks have passed: then it is probed again, which sends the snapshot anew. A snapshot
    /// is large; sending it with every heartbeat would queue copy after copy behind the first.
    Snapshot {
        /// Ticks left before the snapshot may be sent again.
        resend_in: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Index of the next log entry to send to the follower.
    pub(crate) next_index: Index,
    /// Highest index known to be replicated on the follower.
    pub(crate) match_index: Index,
    pub(crate) mode: Mode,
    /// With CheckQuorum: the follower answered since the leader's last quorum check.
    pub(crate) recent_active: bool,
    /// In `Replicate` mode: the last index of each AppendEntries with entries sent and not yet acknowledged,
    /// oldest first (flow control, `Config::max_inflight_messages`). Empty in the other modes.
    pub(crate) inflight: VecDeque<Index>,
}

impl Progress {
    /// Initial state when a leader takes office: `next_index` is just past the leader's log, `match_index` is 0.
    pub(crate) fn new(last_index: Index) -> Self {
        Progress {
            next_index: last_index + 1,
            match_index: 0,
            mode: Mode::Probe,
            recent_active: false,
            inflight: VecDeque::new(),
        }
    }

    /// Whether an InstallSnapshot to the follower awaits its answer.
    pub(crate) fn snapshot_in_flight(&self) -> bool {
        matches!(self.mode, Mode::Snapshot { .. })
    }

    /// Enters `mode`; messages in flight are no longer counted (a probe or a snapshot starts afresh).
    pub(crate) fn enter(&mut self, mode: Mode) {
        self.mode = mode;
        self.inflight.clear();
    }

    /// The follower acknowledged up to `match_index`: the messages that ended there or before have landed.
    pub(crate) fn acknowledged(&mut self, match_index: Index) {
        while self
            .inflight
            .front()
            .is_some_and(|&last| last <= match_index)
        {
            self.inflight.pop_front();
        }
    }

    /// One tick of the leader's clock: a snapshot unanswered for `snapshot_resend_ticks` may be sent again.
    pub(crate) fn tick(&mut self) {
        if let Mode::Snapshot { resend_in } = &mut self.mode {
            *resend_in = resend_in.saturating_sub(1);
            if *resend_in == 0 {
                self.enter(Mode::Probe);
            }
        }
    }

    pub(crate) fn check(&self) {
        debug_assert!(self.match_index < self.next_index, "{self:?}");
        debug_assert!(
            self.mode == Mode::Replicate || self.inflight.is_empty(),
            "{self:?}"
        );
        debug_assert!(
            self.inflight
                .back()
                .is_none_or(|&last| last < self.next_index),
            "{self:?}"
        );
    }
}
