//! Linearizable reads that never touch the log (ReadIndex, §6.4 of Ongaro's dissertation): a leader's
//! bookkeeping.
//!
//! A read begins at a leader that has committed an entry of its current term: its read index is the commit
//! index then, which covers every entry committed before the read began (Leader Completeness). It is served
//! once a majority (the leader included) has accepted the leader's term *after* the read began: then no later
//! leader can have been elected, and so none can have committed anything, before that moment. Each read opens
//! a new read round; every AppendEntries carries the leader's latest round and its reply echoes it, so a reply
//! acknowledges every read of its round or earlier.

use std::collections::VecDeque;

use crate::membership::Quorum;
use crate::mutants::{on as mutant, Mutant};
use crate::Index;

/// A read that is ready to be served: once the service has applied `index`, its state answers the read with
/// the context the caller gave [`Node::read_index`](crate::Node::read_index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's context for the read.
    pub context: u64,
    /// The read index: answer the read from the state machine once it has applied this index.
    pub index: Index,
}

/// A read begun and not yet confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRead {
    /// The caller's context.
    pub context: u64,
    /// The read round it opened.
    pub round: u64,
    /// Its read index.
    pub index: Index,
}

/// A leader's reads: the rounds it opened in its term, the highest round each server acknowledged, and the
/// reads waiting for a majority.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reads {
    round: u64,
    /// By position in the cluster's peers; the leader's own slot is unused (it acknowledges every round).
    acked: Vec<u64>,
    /// In round order, so the confirmed ones are a prefix.
    pending: VecDeque<PendingRead>,
}

impl Reads {
    /// No read, no round: a new leadership starts here. Pending reads of the previous one are dropped (their
    /// callers learn of the role change and retry).
    pub(crate) fn reset(&mut self, servers: usize) {
        self.round = 0;
        if !mutant(Mutant::ReadAcksKeptAcrossTerms) || self.acked.len() != servers {
            self.acked = vec![0; servers];
        }
        self.pending.clear();
    }

    /// The configuration changed, and with it the positions: the server now at position `k` was at
    /// `old_position(k)`, if it was there at all (a new one has acknowledged nothing).
    pub(crate) fn remap(&mut self, servers: usize, old_position: impl Fn(usize) -> Option<usize>) {
        self.acked = (0..servers)
            .map(|k| old_position(k).map_or(0, |o| self.acked.get(o).copied().unwrap_or(0)))
            .collect();
    }

    /// The latest round opened (0: none).
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    /// Opens a round for a read at `index`; returns the round.
    pub(crate) fn begin(&mut self, context: u64, index: Index) -> u64 {
        self.round += 1;
        self.pending.push_back(PendingRead {
            context,
            round: self.round,
            index,
        });
        self.round
    }

    /// The server at `position` answered an AppendEntries of read round `round` in the leader's term. A round
    /// the leader has not opened (only a faulty peer names one) acknowledges nothing.
    pub(crate) fn ack(&mut self, position: usize, round: u64) {
        let round = if mutant(Mutant::ReadAckAnyRound) {
            self.round
        } else {
            round
        };
        if round <= self.round {
            if let Some(acked) = self.acked.get_mut(position) {
                *acked = (*acked).max(round);
            }
        }
    }

    /// Moves the reads that a quorum (the leader at `me` included, if it votes) has acknowledged into `out`.
    pub(crate) fn confirm(&mut self, me: usize, quorum: &Quorum, out: &mut Vec<ReadState>) {
        while let Some(read) = self.pending.front() {
            let acked = &self.acked;
            let confirmed =
                quorum.holds(|p| p == me || acked.get(p).is_some_and(|&r| r >= read.round));
            if !confirmed && !mutant(Mutant::ReadWithoutQuorum) {
                break;
            }
            out.push(ReadState {
                context: read.context,
                index: read.index,
            });
            self.pending.pop_front();
        }
    }

    /// The reads waiting for a majority, in round order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &PendingRead> {
        self.pending.iter()
    }
}
