//! The leader's view of one follower (Figure 2, "Volatile state on leaders"), plus the replication mode that
//! decides how AppendEntries are paced.

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Index of the next log entry to send to the follower.
    pub(crate) next_index: Index,
    /// Highest index known to be replicated on the follower.
    pub(crate) match_index: Index,
    pub(crate) mode: Mode,
}

impl Progress {
    /// Initial state when a leader takes office: `next_index` is just past the leader's log, `match_index` is 0.
    pub(crate) fn new(last_index: Index) -> Self {
        Progress {
            next_index: last_index + 1,
            match_index: 0,
            mode: Mode::Probe,
        }
    }

    pub(crate) fn check(&self) {
        debug_assert!(self.match_index < self.next_index, "{self:?}");
    }
}
