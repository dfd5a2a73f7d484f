//! One trace from the traces of the processes of a cluster (`raft-node --trace`), merged by causality.
//!
//! Each process writes its own file, in the order its events happened. The merge keeps each file's order,
//! and puts each `Receive` and `Decoded` after the `Send` of the message it names; nothing else orders events of
//! different processes, and nothing else needs to: actions on different servers commute in the model. The
//! wall-clock times in the files only choose among events that are free to go next, so that the merged
//! trace reads naturally; they decide nothing.
//!
//! What the files leave implicit is made explicit:
//!
//! * a process's trace that stops and starts again is a crash: a `Crash` goes before the new `Start`, which
//!   must then load exactly what was durable;
//! * a message received (or decoded) more often than it was sent was duplicated by the network: a
//!   `Duplicate` for each extra copy goes right after its `Send`;
//! * the cluster is as large as the largest file says (a server that joined later knows of more servers
//!   than those it joined), and its first configuration's voters are the fewest any file names (a file
//!   that names no `voters` names all its nodes);
//! * node ids are renumbered from the processes' (`first_id` in their headers, 1 for `raft-node`) to the
//!   checker's `0..nodes`, in configurations too; a message whose entries hold a configuration then has
//!   another digest, and a transport's `Decoded` of it is given the new one.
//!
//! A `Receive` of a message that no file sends is left where its file puts it, for the checker to reject.

use std::collections::{BTreeMap, VecDeque};

use super::format::{
    Applied, Body, Conf, Digest, Event, Header, Item, LogDelta, Msg, MsgId, NodeState, Record,
    Trace, FORMAT, VERSION,
};

/// Why files cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No file.
    #[error("no trace to merge")]
    Empty,
    /// Files of different clusters.
    #[error(
        "trace {file} numbers its nodes from {found_first}, but trace 0 from {expected_first}"
    )]
    Cluster {
        /// The file's position.
        file: usize,
        /// Its first id.
        found_first: u64,
        /// The first file's first id.
        expected_first: u64,
    },
    /// An id outside the cluster.
    #[error("trace {file}, event {event}: node {id} is not one of the {nodes} nodes numbered from {first}")]
    Id {
        /// The file's position.
        file: usize,
        /// The event's position in the file.
        event: usize,
        /// The id.
        id: u64,
        /// The node count.
        nodes: u64,
        /// The first id.
        first: u64,
    },
}

/// Merges `traces` (one per process, in any order) into one trace for the checker.
pub fn merge(traces: Vec<Trace>) -> Result<Trace, MergeError> {
    let mut first = traces.first().ok_or(MergeError::Empty)?.header.clone();
    let voters = |h: &Header| if h.voters == 0 { h.nodes } else { h.voters };
    let mut first_voters = voters(&first);
    for (f, trace) in traces.iter().enumerate() {
        let h = &trace.header;
        if h.first_id != first.first_id {
            return Err(MergeError::Cluster {
                file: f,
                found_first: h.first_id,
                expected_first: first.first_id,
            });
        }
        first.nodes = first.nodes.max(h.nodes);
        first_voters = first_voters.min(voters(h));
    }
    first.voters = if first_voters == first.nodes {
        0
    } else {
        first_voters
    };
    let mut files: Vec<VecDeque<Record>> = Vec::new();
    let mut digests = BTreeMap::new();
    for (f, trace) in traces.into_iter().enumerate() {
        let mut records = VecDeque::with_capacity(trace.records.len());
        for (k, mut record) in trace.records.into_iter().enumerate() {
            renumber(&mut record.ev, first.first_id, first.nodes, &mut digests).map_err(|id| {
                MergeError::Id {
                    file: f,
                    event: k,
                    id,
                    nodes: first.nodes,
                    first: first.first_id,
                }
            })?;
            records.push_back(record);
        }
        files.push(records);
    }
    // A message renumbered has a new digest: what a transport decoded of it too.
    if !digests.is_empty() {
        for record in files.iter_mut().flatten() {
            if let Event::Decoded { digest, .. } = &mut record.ev {
                if let Some(new) = digests.get(digest) {
                    *digest = *new;
                }
            }
        }
    }
    // The copies of each message that arrived: received by nodes, or decoded by their transports (a copy
    // decoded may never reach its node, which may stop first).
    let mut counts: BTreeMap<MsgId, (u64, u64)> = BTreeMap::new();
    for record in files.iter().flatten() {
        match &record.ev {
            Event::Receive { id, .. } => counts.entry(*id).or_default().0 += 1,
            Event::Decoded { id, .. } => counts.entry(*id).or_default().1 += 1,
            _ => {}
        }
    }
    let mut sent: std::collections::BTreeSet<MsgId> = Default::default();
    let mut started: Vec<bool> = vec![false; first.nodes as usize];
    let mut out = Trace {
        header: Header {
            format: FORMAT.into(),
            version: VERSION,
            nodes: first.nodes,
            source: format!("{} process traces merged", files.len()),
            first_id: 0,
            saves_in_flight: first.saves_in_flight,
            decoded: first.decoded,
            pre_vote: first.pre_vote,
            check_quorum: first.check_quorum,
            voters: first.voters,
        },
        records: Vec::with_capacity(files.iter().map(VecDeque::len).sum()),
    };
    loop {
        let ready = |r: &Record| match &r.ev {
            Event::Receive { id, .. } | Event::Decoded { id, .. } => sent.contains(id),
            _ => true,
        };
        // The earliest event free to go; if none is (a receive of a message never sent), the earliest.
        let heads = files
            .iter()
            .enumerate()
            .filter_map(|(f, q)| q.front().map(|r| (f, r)));
        let pick = heads
            .clone()
            .filter(|(_, r)| ready(r))
            .min_by_key(|(_, r)| r.t)
            .or_else(|| heads.min_by_key(|(_, r)| r.t))
            .map(|(f, _)| f);
        let Some(f) = pick else { break };
        let record = files[f].pop_front().expect("a head");
        let (t, mut duplicates) = (record.t, None);
        match &record.ev {
            // A node that ran before: its earlier instance crashed.
            Event::Start { node, .. } if std::mem::replace(&mut started[*node as usize], true) => {
                out.records.push(Record {
                    t,
                    ev: Event::Crash { node: *node },
                });
            }
            Event::Send { id } => {
                sent.insert(*id);
                let copies = counts.get(id).map_or(0, |&(r, d)| r.max(d));
                duplicates = Some((*id, copies.saturating_sub(1)));
            }
            _ => {}
        }
        out.records.push(record);
        if let Some((id, extra)) = duplicates {
            for _ in 0..extra {
                out.records.push(Record {
                    t,
                    ev: Event::Duplicate { id },
                });
            }
        }
    }
    Ok(out)
}

/// Renumbers the ids of `ev` from `first..first + nodes` to `0..nodes`; the id outside, if one is. A message
/// whose digest this changes is entered in `digests`, old to new.
fn renumber(
    ev: &mut Event,
    first: u64,
    nodes: u64,
    digests: &mut BTreeMap<Digest, Digest>,
) -> Result<(), u64> {
    let fix = |id: &mut u64| -> Result<(), u64> {
        match id.checked_sub(first) {
            Some(k) if k < nodes => {
                *id = k;
                Ok(())
            }
            _ => Err(*id),
        }
    };
    let fix_conf = |c: &mut Conf| -> Result<(), u64> {
        c.voters
            .iter_mut()
            .chain(&mut c.old)
            .chain(&mut c.learners)
            .try_for_each(fix)
    };
    // Whether a configuration was among the entries.
    let fix_items = |entries: &mut Vec<(u64, Item)>| -> Result<bool, u64> {
        let mut any = false;
        for (_, item) in entries {
            if let Item::Config(c) = item {
                fix_conf(c)?;
                any = true;
            }
        }
        Ok(any)
    };
    let fix_log = |log: &mut Option<LogDelta>| match log {
        Some(delta) => fix_items(&mut delta.entries).map(drop),
        None => Ok(()),
    };
    let fix_state = |s: &mut NodeState| -> Result<(), u64> {
        if let Some(v) = &mut s.vote {
            fix(v)?;
        }
        // A leader's progress is by id from 0: the entries below `first` name no server.
        let below = (first as usize).min(s.progress.len());
        s.progress.drain(..below);
        fix_log(&mut s.log)?;
        s.votes.iter_mut().try_for_each(fix)
    };
    let mut fix_sent = |sent: &mut Vec<Msg>| -> Result<(), u64> {
        sent.iter_mut().try_for_each(|m| -> Result<(), u64> {
            fix(&mut m.to)?;
            if let Body::AppendEntries { entries, .. } = &mut m.m {
                if entries.iter().any(|(_, i)| matches!(i, Item::Config(_))) {
                    let old = m.m.digest();
                    if let Body::AppendEntries { entries, .. } = &mut m.m {
                        fix_items(entries)?;
                    }
                    digests.insert(old, m.m.digest());
                }
            }
            Ok(())
        })
    };
    match ev {
        Event::Start { node, state, .. }
        | Event::Snapshot { node, state, .. }
        | Event::CheckQuorum { node, state } => {
            fix(node)?;
            fix_state(state)?;
        }
        Event::Timeout { node, state, sent }
        | Event::Heartbeat { node, state, sent }
        | Event::Propose {
            node, state, sent, ..
        }
        | Event::ReadIndex {
            node, state, sent, ..
        } => {
            fix(node)?;
            fix_state(state)?;
            fix_sent(sent)?;
        }
        Event::ChangeConfig {
            node,
            conf,
            state,
            sent,
            ..
        } => {
            fix(node)?;
            fix_conf(conf)?;
            fix_state(state)?;
            fix_sent(sent)?;
        }
        Event::Transfer {
            node,
            target,
            state,
            sent,
        } => {
            fix(node)?;
            fix(target)?;
            fix_state(state)?;
            fix_sent(sent)?;
        }
        Event::Receive {
            node,
            id,
            state,
            sent,
            ..
        } => {
            fix(node)?;
            fix(&mut id.from)?;
            fix_state(state)?;
            fix_sent(sent)?;
        }
        Event::Decoded { node, id, .. } => {
            fix(node)?;
            fix(&mut id.from)?;
        }
        Event::Persist {
            node, vote, log, ..
        } => {
            fix(node)?;
            fix_log(log)?;
            if let Some(v) = vote {
                fix(v)?;
            }
        }
        Event::Apply { node, item, .. } => {
            fix(node)?;
            if let Applied::Config(c) = item {
                fix_conf(c)?;
            }
        }
        Event::Read { node, .. }
        | Event::Crash { node }
        | Event::Disconnect { node }
        | Event::Connect { node } => fix(node)?,
        Event::Send { id }
        | Event::Drop { id }
        | Event::Duplicate { id }
        | Event::Delay { id, .. } => fix(&mut id.from)?,
    }
    Ok(())
}
