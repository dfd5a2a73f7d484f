//! Watching a node step by step: the hook the conformance checker's traces are made from.
//!
//! A [`Node`](crate::Node) with an [`Observer`] attached ([`Node::set_observer`](crate::Node::set_observer))
//! reports each atomic step it takes, with the messages the step produced, and the node itself to read the
//! state after the step from; and each [`Ready`](crate::Ready) it hands out reports, when the caller says its
//! state is durable ([`Ready::persisted`](crate::Ready::persisted)), what was sent, applied and read. What became
//! durable is the host's to report, from what its storage holds: the core only asked for it. A tick on which no timer fires changes only timer counters and is not reported. Without an
//! observer the only cost is one branch per input.

use crate::{
    Apply, ConfChangeRefused, Envelope, Index, Membership, NodeId, NotLeader, ReadRefused,
    ReadState, StepError, Term,
};

/// Receives a node's steps. Shared (`Arc`) between the node and the `Ready`s it hands out, hence `&self`.
pub trait Observer: Send + Sync {
    /// The node took `step`; `node` is its state after the step.
    fn step(&self, node: &crate::Node, step: &Step<'_>);

    /// The caller made a `Ready`'s state durable and took its output: the messages in the order they leave,
    /// the applies in index order, and the confirmed reads.
    fn released(&self, node: NodeId, output: &Output<'_>);
}

/// One atomic step of a node.
#[derive(Debug)]
pub enum Step<'a> {
    /// The observer was attached to a node that had just been created: on first boot (`restart` false) or
    /// from the state and snapshot a previous instance made durable (`restart` true).
    Start {
        /// Whether the node was created from persisted state.
        restart: bool,
    },
    /// The election timer fired: the node became a candidate of the next term (or, alone, the leader), or
    /// with [`Config::pre_vote`](crate::Config::pre_vote) a pre-candidate.
    ElectionTimeout {
        /// The RequestVotes (or PreVotes) it produced.
        sent: &'a [Envelope],
    },
    /// The leader's heartbeat timer fired.
    Heartbeat {
        /// The AppendEntries and InstallSnapshots it produced.
        sent: &'a [Envelope],
    },
    /// With [`Config::check_quorum`](crate::Config::check_quorum), the leader checked that a quorum answered
    /// it since its previous check.
    CheckQuorum {
        /// It had not: it is a follower now.
        stepped_down: bool,
    },
    /// [`Node::transfer_leader`](crate::Node::transfer_leader) began a transfer (a refused one is not
    /// reported).
    TransferLeader {
        /// The server to hand over to.
        target: NodeId,
        /// The TimeoutNow, or the AppendEntries that brings the target up to date.
        sent: &'a [Envelope],
    },
    /// [`Node::propose`](crate::Node::propose).
    Propose {
        /// The command (as appended to the log, when accepted).
        command: &'a [u8],
        /// What `propose` returned.
        result: Result<(Index, Term), NotLeader>,
        /// The AppendEntries it produced.
        sent: &'a [Envelope],
        /// The lowest log index this step wrote, if any.
        log_changed_from: Option<Index>,
    },
    /// [`Node::propose_conf_change`](crate::Node::propose_conf_change), for a change that applies to the
    /// configuration in force (one refused as invalid is not reported).
    ChangeConfig {
        /// The configuration the change makes.
        membership: &'a Membership,
        /// What `propose_conf_change` returned.
        result: Result<(Index, Term), ConfChangeRefused>,
        /// The AppendEntries it produced.
        sent: &'a [Envelope],
        /// The lowest log index this step wrote.
        log_changed_from: Option<Index>,
    },
    /// [`Node::step`](crate::Node::step): a message was handled (or refused).
    Receive {
        /// The sender of the message (the content is what the sender's `Send` released, so it is not copied
        /// here).
        from: NodeId,
        /// The sender's sequence number of the message.
        seq: u64,
        /// What `step` returned.
        result: Result<(), &'a StepError>,
        /// The messages it produced: the reply to a request, and what a leader sends on.
        sent: &'a [Envelope],
        /// The lowest log index this step wrote (appended or overwrote), if any. An installed snapshot that
        /// keeps the log's suffix writes nothing.
        log_changed_from: Option<Index>,
    },
    /// [`Node::read_index`](crate::Node::read_index).
    ReadIndex {
        /// The caller's context.
        context: u64,
        /// What `read_index` returned: the read index (the read's round is the node's latest), or why the read
        /// was refused.
        result: Result<Index, ReadRefused>,
        /// The AppendEntries it produced (the round of heartbeats that confirms it).
        sent: &'a [Envelope],
    },
    /// [`Node::snapshot`](crate::Node::snapshot) took the service's snapshot (an ignored or refused one is not
    /// reported).
    Snapshot {
        /// The last index the snapshot covers.
        index: Index,
        /// The service's snapshot.
        data: &'a [u8],
    },
}

/// What a [`Ready`](crate::Ready) released.
#[derive(Debug)]
pub struct Output<'a> {
    /// The messages, in the order they leave.
    pub messages: &'a [Envelope],
    /// The entries and snapshots to apply.
    pub applies: &'a [Apply],
    /// The reads confirmed, to serve once their index is applied.
    pub reads: &'a [ReadState],
}
