//! `raft-node --trace FILE`: the node's trace, in the format of `specs/trace-format.md` (crate
//! `raft-trace`), for the trace checker to hold against the model.
//!
//! Each event is written where its effect happens, not where the core says it did:
//!
//! * the core's steps (start, timeouts, heartbeats, proposals, receives, reads, snapshots), applies and
//!   confirmed reads come from its [`Observer`], a proposal's command digest from the host's request
//!   ([`Tracer::proposing`]);
//! * `Persist` is written by the storage once a save's sync has returned, with what its records hold
//!   ([`Saved`]: the state recovery would load, the entries and the snapshot the save wrote), or, for a
//!   storage that cannot report its saves, by the host once the save returned, with what it was given;
//! * `Send` is written by the transport as it writes the message to the socket (a message dropped from a
//!   queue, or a snapshot not written again on the same connection, is never sent);
//! * `Decoded` is written as the receiving transport hands a message it decoded to the node, with the
//!   digest of what it decoded.
//!
//! An event is written (one `write(2)` per line, no buffer in the process) before its effect can leave the
//! process, so a SIGKILL loses no event that a peer saw: the page cache keeps what was written. Node ids are
//! the cluster's (`first_id` in the header says they start at 1); a restart appends to the same file, and
//! numbers its messages on from the highest sequence number the file holds, so that names stay unique.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use raft::{Envelope, Node, NodeId, Observer, Output, Ready, Step};
use raft_trace::events::{
    decoded_event, entry, output_events, persist_event, step_event, Proposal,
};
use raft_trace::format::{
    Digest, Event, Features, Header, LogDelta, MsgId, Record, FORMAT, VERSION,
};

use crate::storage::Saved;

/// Writes one node's trace.
pub struct Tracer {
    file: Mutex<File>,
    /// The command the host is proposing.
    proposal: Proposal,
}

impl Tracer {
    /// Opens (or creates) `path` for node `me` of a cluster of `nodes` numbered from 1, whose nodes run with
    /// the protocol extensions `features`. Returns the tracer and the sequence number the node's messages must start from:
    /// one past the highest the file names, of a message produced or sent.
    pub fn open(
        path: &Path,
        nodes: u64,
        me: NodeId,
        features: Features,
    ) -> io::Result<(Arc<Tracer>, u64)> {
        let mut next_seq = 0;
        let mut lines = 0usize;
        if let Ok(mut bytes) = std::fs::read(path) {
            // A line cut off by a crash in the middle of its write is dropped: the event never happened.
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
            if whole < bytes.len() {
                bytes.truncate(whole);
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(whole as u64)?;
            }
            for (k, line) in bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate()
            {
                lines += 1;
                if k == 0 {
                    continue;
                }
                let Ok(record) = serde_json::from_slice::<Record>(line) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: line {} is no trace event", path.display(), k + 1),
                    ));
                };
                // Every message a step produced has a name, sent or not (a queue may have dropped it).
                let produced = match &record.ev {
                    Event::Send { id } if id.from == me => Some(id.seq),
                    ev => ev.sent().iter().map(|m| m.seq).max(),
                };
                if let Some(seq) = produced {
                    next_seq = next_seq.max(seq + 1);
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if lines == 0 {
            let header = Header {
                format: FORMAT.into(),
                version: VERSION,
                nodes,
                source: format!("raft-node {me}"),
                first_id: 1,
                saves_in_flight: true,
                decoded: true,
                pre_vote: features.pre_vote,
                check_quorum: features.check_quorum,
                voters: features.voters,
            };
            let mut line = serde_json::to_vec(&header).map_err(io::Error::other)?;
            line.push(b'\n');
            file.write_all(&line)?;
        }
        Ok((
            Arc::new(Tracer {
                file: Mutex::new(file),
                proposal: Proposal::default(),
            }),
            next_seq,
        ))
    }

    /// Writes `ev`, whole, in one write.
    pub fn write(&self, ev: Event) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut line = serde_json::to_vec(&Record { t, ev }).expect("events always encode");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line) {
            // A trace with a hole would be checked as wrong: say so loudly, once per failure.
            tracing::error!("cannot write the trace: {e}");
        }
    }

    /// The storage made `saved` durable (its sync has returned).
    pub fn saved(&self, node: NodeId, saved: &Saved) {
        self.write(Event::Persist {
            node,
            term: saved.hard.0,
            vote: saved.hard.1,
            snap: saved.snapshot,
            last: saved.last,
            log: saved.entries.as_ref().map(|(from, es)| LogDelta {
                from: *from,
                entries: es.iter().map(entry).collect(),
            }),
            snapshot: saved.snapshot_data.as_deref().map(Digest::of),
        });
    }

    /// The storage saved what `ready` holds (the save has returned): for a storage that cannot report its
    /// saves.
    pub fn persisted(&self, node: NodeId, ready: &Ready) {
        if let Some(state) = ready.persist() {
            self.write(persist_event(
                node,
                state,
                ready.snapshot(),
                ready.log_changed_from(),
            ));
        }
    }

    /// The host is about to propose `command`, as its client asked for it: the proposal's event names it.
    pub fn proposing(&self, command: &[u8]) {
        self.proposal.set(command);
    }

    /// The transport of `node` decoded `envelope` off its connection, to hand it to the node.
    pub fn decoded(&self, node: NodeId, envelope: &Envelope) {
        self.write(decoded_event(node, envelope));
    }

    /// The transport is writing `envelope` to its peer's socket.
    pub fn sent(&self, envelope: &Envelope) {
        self.write(Event::Send {
            id: MsgId::of(envelope),
        });
    }
}

impl Observer for Tracer {
    fn step(&self, node: &Node, step: &Step<'_>) {
        let mut ev = step_event(node, step);
        self.proposal.fill(&mut ev);
        self.write(ev);
    }

    fn released(&self, node: NodeId, output: &Output<'_>) {
        // Each message is reported by the transport as it goes out: only the applies and the confirmed reads
        // are the core's to report.
        output_events(node, output, |ev| {
            if !matches!(ev, Event::Send { .. }) {
                self.write(ev);
            }
        });
    }
}
