//! The node's output: what to persist, then (only once that is durable) what to send and what to apply.

use std::sync::Arc;

use crate::{Envelope, Index, PersistentState, Term};

/// A committed entry for the state machine. Applies come out in index order, each index once per
/// [`Node`](crate::Node) instance (a restarted node applies again from index 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// The log entry at `index` is committed.
    Command {
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
        /// The entry's command.
        command: Vec<u8>,
    },
}

/// Everything a node produced since the previous [`Node::ready`](crate::Node::ready).
///
/// Persist first, release second: [`Ready::persist`] is the state to make durable, and the messages and applies
/// are only reachable through [`Ready::persisted`], which consumes the `Ready`.
#[must_use = "a Ready holds messages and applies that are lost if it is dropped"]
#[derive(Debug, Default)]
pub struct Ready {
    /// Shared with the node's log until the node changes it (copy-on-write), so producing it is O(1).
    pub(crate) persist: Option<Arc<PersistentState>>,
    pub(crate) log_changed_from: Option<Index>,
    pub(crate) released: Released,
}

impl Ready {
    /// The state to make durable before releasing anything: `Some` when `current_term`, `voted_for` or the log
    /// changed since the previous `Ready`.
    pub fn persist(&self) -> Option<&PersistentState> {
        self.persist.as_deref()
    }

    /// The lowest log index appended or overwritten since the previous `Ready` (`None` if the log did not
    /// change). Entries below it are unchanged, so a caller can persist the log incrementally: keep the durable
    /// entries `1..from` and write the rest from [`persist`](Ready::persist), whose log is complete.
    pub fn log_changed_from(&self) -> Option<Index> {
        self.log_changed_from
    }

    /// Call once [`persist`](Ready::persist) is durable (or was `None`): returns the messages to send and the
    /// entries to apply.
    pub fn persisted(self) -> Released {
        self.released
    }

    /// True if there is nothing to persist, send or apply.
    pub fn is_empty(&self) -> bool {
        self.persist.is_none()
            && self.released.messages.is_empty()
            && self.released.applies.is_empty()
    }
}

/// What a [`Ready`] releases once its state is durable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Messages to send, in the order the node produced them.
    pub messages: Vec<Envelope>,
    /// Committed entries to apply, in index order.
    pub applies: Vec<Apply>,
}
