//! The node's output: what to persist, then (only once that is durable) what to send and what to apply.

use std::sync::Arc;

use crate::observe::{Observer, Output};
use crate::{Envelope, Index, Membership, NodeId, PersistentState, ReadState, Term};

/// What the state machine must apply next. Applies come out in index order, each index once per
/// [`Node`](crate::Node) instance: a restarted node first hands out its snapshot, if it has one, then the committed
/// entries after it (or applies again from index 1 if it has no snapshot). A [`Apply::Snapshot`] is only handed
/// out when it is newer than everything applied before it, and no command at or below its index follows it.
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
    /// The configuration entry at `index` is committed (it has been in force since it was appended: see
    /// [`Node::propose_conf_change`](crate::Node::propose_conf_change)). The state machine has nothing to
    /// apply, but a host may want to know, for instance to connect to a new member.
    Config {
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
        /// The configuration.
        membership: Membership,
    },
    /// Replace the state machine by this snapshot, which covers every entry through `index`: one the leader
    /// installed on this server, or (after a restart) the server's own. The service's own calls to
    /// [`Node::snapshot`](crate::Node::snapshot) are never handed back.
    Snapshot {
        /// The last index the snapshot covers.
        index: Index,
        /// The term of the entry at `index`.
        term: Term,
        /// The snapshot, as the service produced it.
        data: Vec<u8>,
    },
}

impl Apply {
    /// The index this apply brings the state machine to.
    pub fn index(&self) -> Index {
        match self {
            Apply::Command { index, .. }
            | Apply::Config { index, .. }
            | Apply::Snapshot { index, .. } => *index,
        }
    }
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
    /// The snapshot, shared with the node, when it changed.
    pub(crate) snapshot: Option<Arc<[u8]>>,
    pub(crate) log_changed_from: Option<Index>,
    pub(crate) released: Released,
    /// The node's observer, told about this output when it is released.
    pub(crate) observer: Option<ObserverHandle>,
}

/// The node's observer, shared with the `Ready`s it hands out. One thin pointer, so that a node without an
/// observer carries (and a `Ready` moves) no more than a null word.
#[derive(Clone)]
pub(crate) struct ObserverHandle(Arc<Bound>);

struct Bound {
    node: NodeId,
    observer: Arc<dyn Observer>,
}

impl ObserverHandle {
    pub(crate) fn new(node: NodeId, observer: Arc<dyn Observer>) -> ObserverHandle {
        ObserverHandle(Arc::new(Bound { node, observer }))
    }

    pub(crate) fn observer(&self) -> &dyn Observer {
        &*self.0.observer
    }
}

impl std::fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Ready {
    /// The state to make durable before releasing anything: `Some` when `current_term`, `voted_for`, the log or
    /// the snapshot changed since the previous `Ready`.
    pub fn persist(&self) -> Option<&PersistentState> {
        self.persist.as_deref()
    }

    /// The snapshot to make durable together with [`persist`](Ready::persist), in one atomic write: `Some` when
    /// the snapshot changed since the previous `Ready` (then `persist` is `Some` too, and its
    /// `last_included_index` and `last_included_term` describe this snapshot). When it is `None`, the snapshot
    /// saved earlier stays current and must be kept: saving the state without it would lose it.
    pub fn snapshot(&self) -> Option<&[u8]> {
        self.snapshot.as_deref()
    }

    /// The lowest log index appended or overwritten since the previous `Ready` (`None` if the log did not
    /// change). Entries below it are unchanged, so a caller can persist the log incrementally: keep the durable
    /// entries before `from` and write the rest from [`persist`](Ready::persist), whose log is complete. A
    /// snapshot removes entries from the front of the log without changing this: durable entries at or below
    /// the new `last_included_index` are dropped.
    pub fn log_changed_from(&self) -> Option<Index> {
        self.log_changed_from
    }

    /// Call once [`persist`](Ready::persist) (and [`snapshot`](Ready::snapshot)) is durable (or was `None`):
    /// returns the messages to send and the entries or snapshot to apply.
    pub fn persisted(self) -> Released {
        if let Some(ObserverHandle(bound)) = &self.observer {
            bound.observer.released(
                bound.node,
                &Output {
                    messages: &self.released.messages,
                    applies: &self.released.applies,
                    reads: &self.released.reads,
                },
            );
        }
        self.released
    }

    /// True if there is nothing to persist, send or apply.
    pub fn is_empty(&self) -> bool {
        self.persist.is_none()
            && self.released.messages.is_empty()
            && self.released.applies.is_empty()
            && self.released.reads.is_empty()
    }
}

/// What a [`Ready`] releases once its state is durable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Messages to send, in the order the node produced them.
    pub messages: Vec<Envelope>,
    /// Snapshots and committed entries to apply, in index order.
    pub applies: Vec<Apply>,
    /// Reads confirmed by a majority (see [`Node::read_index`](crate::Node::read_index)), in the order they
    /// began: serve each once the entries through its index are applied.
    pub reads: Vec<ReadState>,
}
