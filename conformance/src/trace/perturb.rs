//! Perturbed traces: a good trace with one thing changed, to show that the checker bites (design §5). Each
//! [`Kind`] changes one field or moves one event, at a position drawn from a seeded generator.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::format::{Applied, Body, Digest, Event, Item, Msg, NodeState, Record, Role, Trace};

/// One way of breaking a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A node reports a term one higher after a step.
    StateTerm,
    /// A node reports another vote after a step.
    StateVote,
    /// A node reports a commit index one higher after a step.
    StateCommit,
    /// A receive names another message of the same sender.
    MessageId,
    /// An entry in an AppendEntries or a log delta gets another term.
    EntryTerm,
    /// An entry in an AppendEntries or a log delta gets another command.
    EntryCommand,
    /// A message's term changes.
    MessageTerm,
    /// One event is left out.
    DropEvent,
    /// One event appears twice.
    DuplicateEvent,
    /// One event of a node trades places with that node's next event.
    SwapEvents,
    /// A `Persist` moves after the `Send`s of the same release.
    PersistAfterSend,
    /// A read begun returns a read index one higher.
    ReadIndex,
    /// An AppendEntries or its reply carries a read round one higher.
    ReadRound,
    /// A read handed out names another read (its context one higher).
    ReadHandedOut,
    /// A snapshot's data changes where it appears: taken by the service, loaded at a start, persisted, sent
    /// in an InstallSnapshot or applied.
    SnapshotData,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 15] = [
        Kind::StateTerm,
        Kind::StateVote,
        Kind::StateCommit,
        Kind::MessageId,
        Kind::EntryTerm,
        Kind::EntryCommand,
        Kind::MessageTerm,
        Kind::DropEvent,
        Kind::DuplicateEvent,
        Kind::SwapEvents,
        Kind::PersistAfterSend,
        Kind::ReadIndex,
        Kind::ReadRound,
        Kind::ReadHandedOut,
        Kind::SnapshotData,
    ];
}

fn state_mut(ev: &mut Event) -> Option<&mut NodeState> {
    match ev {
        Event::Start { state, .. }
        | Event::Timeout { state, .. }
        | Event::Heartbeat { state, .. }
        | Event::CheckQuorum { state, .. }
        | Event::Transfer { state, .. }
        | Event::Propose { state, .. }
        | Event::Receive { state, .. }
        | Event::ReadIndex { state, .. }
        | Event::Snapshot { state, .. } => Some(state),
        _ => None,
    }
}

/// The messages an event sent (none for events that are not a node's sending step).
fn sent_mut(ev: &mut Event) -> &mut [Msg] {
    match ev {
        Event::Timeout { sent, .. }
        | Event::Heartbeat { sent, .. }
        | Event::Transfer { sent, .. }
        | Event::Propose { sent, .. }
        | Event::ReadIndex { sent, .. }
        | Event::Receive { sent, .. } => sent,
        _ => &mut [],
    }
}

/// The read rounds of the AppendEntries and replies an event sent.
fn read_rounds_mut(ev: &mut Event) -> Vec<&mut u64> {
    sent_mut(ev)
        .iter_mut()
        .filter_map(|m| match &mut m.m {
            Body::AppendEntries { read_round, .. }
            | Body::AppendEntriesReply { read_round, .. } => Some(read_round),
            _ => None,
        })
        .collect()
}

/// The snapshot digests an event carries.
fn snapshot_data_mut(ev: &mut Event) -> Vec<&mut Digest> {
    let mut out = Vec::new();
    match ev {
        Event::Snapshot { data, .. }
        | Event::Apply {
            item: Applied::Snapshot(data),
            ..
        } => out.push(data),
        Event::Start {
            snapshot: Some(data),
            ..
        }
        | Event::Persist {
            snapshot: Some(data),
            ..
        } => out.push(data),
        _ => {
            for m in sent_mut(ev) {
                if let Body::InstallSnapshot { data, .. } = &mut m.m {
                    out.push(data);
                }
            }
        }
    }
    out
}

/// The entries a record carries (in its state's log delta, its sent AppendEntries, or a Persist).
fn entries_mut(ev: &mut Event) -> Vec<&mut (u64, Item)> {
    let mut out = Vec::new();
    match ev {
        Event::Persist { log: Some(d), .. } => out.extend(d.entries.iter_mut()),
        Event::Timeout { state, sent, .. }
        | Event::Heartbeat { state, sent, .. }
        | Event::Transfer { state, sent, .. }
        | Event::Propose { state, sent, .. }
        | Event::ChangeConfig { state, sent, .. }
        | Event::ReadIndex { state, sent, .. }
        | Event::Receive { state, sent, .. } => {
            if let Some(d) = &mut state.log {
                out.extend(d.entries.iter_mut());
            }
            for m in sent {
                if let Body::AppendEntries { entries, .. } = &mut m.m {
                    out.extend(entries.iter_mut());
                }
            }
        }
        _ => {}
    }
    out
}

fn message_terms_mut(ev: &mut Event) -> Vec<&mut u64> {
    sent_mut(ev)
        .iter_mut()
        .map(|m| match &mut m.m {
            Body::RequestVote { term, .. }
            | Body::RequestVoteReply { term, .. }
            | Body::AppendEntries { term, .. }
            | Body::AppendEntriesReply { term, .. }
            | Body::InstallSnapshot { term, .. }
            | Body::InstallSnapshotReply { term, .. }
            | Body::PreVote { term, .. }
            | Body::PreVoteReply { term, .. }
            | Body::TimeoutNow { term } => term,
        })
        .collect()
}

/// `trace` with one perturbation of `kind`, drawn with `seed`; `None` if the trace has no place for it.
pub fn perturb(trace: &Trace, kind: Kind, seed: u64) -> Option<Trace> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut records = trace.records.clone();
    let n = records.len();
    // The positions where this kind applies.
    let sites: Vec<usize> = (0..n)
        .filter(|&k| legal(&records, kind, k).is_none())
        .filter(|&k| {
            let ev = &records[k].ev;
            match kind {
                Kind::StateTerm | Kind::StateVote | Kind::StateCommit => ev.state().is_some(),
                Kind::MessageId => matches!(ev, Event::Receive { .. }),
                Kind::EntryTerm | Kind::EntryCommand => !entries_mut(&mut ev.clone()).is_empty(),
                Kind::MessageTerm => !message_terms_mut(&mut ev.clone()).is_empty(),
                Kind::DropEvent | Kind::DuplicateEvent => true,
                Kind::SwapEvents => next_step_of_same_node(&records, k).is_some(),
                Kind::PersistAfterSend => {
                    matches!(ev, Event::Persist { .. })
                        && matches!(records.get(k + 1).map(|r| &r.ev), Some(Event::Send { .. }))
                }
                Kind::ReadIndex => matches!(ev, Event::ReadIndex { index: Some(_), .. }),
                Kind::ReadRound => !read_rounds_mut(&mut ev.clone()).is_empty(),
                Kind::ReadHandedOut => matches!(ev, Event::Read { .. }),
                Kind::SnapshotData => !snapshot_data_mut(&mut ev.clone()).is_empty(),
            }
        })
        .collect();
    if sites.is_empty() {
        return None;
    }
    let k = sites[rng.random_range(0..sites.len())];
    let nodes = trace.header.nodes;
    match kind {
        Kind::StateTerm => state_mut(&mut records[k].ev)?.term += 1,
        Kind::StateVote => {
            let s = state_mut(&mut records[k].ev)?;
            s.vote = match s.vote {
                None => Some(rng.random_range(0..nodes)),
                Some(v) => Some((v + 1) % nodes),
            };
        }
        Kind::StateCommit => state_mut(&mut records[k].ev)?.commit += 1,
        Kind::MessageId => {
            if let Event::Receive { id, .. } = &mut records[k].ev {
                id.seq = if id.seq > 0 && rng.random_bool(0.5) {
                    id.seq - 1
                } else {
                    id.seq + 1
                };
            }
        }
        Kind::EntryTerm => {
            let mut es = entries_mut(&mut records[k].ev);
            let j = rng.random_range(0..es.len());
            es[j].0 += 1;
        }
        Kind::EntryCommand => {
            let mut es = entries_mut(&mut records[k].ev);
            let j = rng.random_range(0..es.len());
            es[j].1 = match &es[j].1 {
                Item::Command(d) => Item::Command(Digest(d.0 ^ 1)),
                // A configuration becomes a command.
                Item::Config(_) => Item::Command(Digest(1)),
            };
        }
        Kind::MessageTerm => {
            let mut ts = message_terms_mut(&mut records[k].ev);
            let j = rng.random_range(0..ts.len());
            *ts[j] += 1;
        }
        Kind::DropEvent => {
            records.remove(k);
        }
        Kind::DuplicateEvent => {
            let copy = records[k].clone();
            records.insert(k + 1, copy);
        }
        Kind::SwapEvents => {
            let j = next_step_of_same_node(&records, k)?;
            let moved: Record = records.remove(j);
            records.insert(k, moved);
        }
        Kind::PersistAfterSend => {
            let mut j = k + 1;
            while matches!(records.get(j).map(|r| &r.ev), Some(Event::Send { .. })) {
                j += 1;
            }
            let persist = records.remove(k);
            records.insert(j - 1, persist);
        }
        Kind::ReadIndex => {
            if let Event::ReadIndex { index: Some(i), .. } = &mut records[k].ev {
                *i += 1;
            }
        }
        Kind::ReadRound => {
            let mut rs = read_rounds_mut(&mut records[k].ev);
            let j = rng.random_range(0..rs.len());
            *rs[j] += 1;
        }
        Kind::ReadHandedOut => {
            if let Event::Read { context, .. } = &mut records[k].ev {
                *context += 1;
            }
        }
        Kind::SnapshotData => {
            let mut ds = snapshot_data_mut(&mut records[k].ev);
            let j = rng.random_range(0..ds.len());
            *ds[j] = Digest(ds[j].0 ^ 1);
        }
    }
    Some(Trace {
        header: trace.header.clone(),
        records,
    })
}

/// The next event after `k` at the same node, if both are steps (events that carry the node's state) and the
/// later one changes something (a step that changes nothing commutes with the one before it).
fn next_step_of_same_node(records: &[Record], k: usize) -> Option<usize> {
    let node = records[k].ev.node()?;
    records[k].ev.state()?;
    let j = (k + 1..records.len()).find(|&j| records[j].ev.node() == Some(node))?;
    records[j].ev.state()?;
    (!is_no_op(records, j)).then_some(j)
}

/// Why a perturbation of `kind` at event `k` of a good trace still gives a trace that Raft allows, if it
/// does. Such places are not perturbed (they would count as misses of the checker, but there is nothing to
/// catch); `specs/trace-format.md` lists them.
pub fn legal(records: &[Record], kind: Kind, k: usize) -> Option<&'static str> {
    let ev = &records[k].ev;
    if !matches!(
        kind,
        Kind::DropEvent | Kind::DuplicateEvent | Kind::SwapEvents
    ) {
        return None;
    }
    if matches!(
        ev,
        Event::Connect { .. } | Event::Disconnect { .. } | Event::Delay { .. }
    ) {
        return Some("information only: the model's network has no connections or delays");
    }
    if is_no_op(records, k) {
        return Some("a step that changes nothing and sends nothing (a refused proposal or read, an ignored stale reply)");
    }
    match (kind, ev) {
        (Kind::DropEvent, Event::Drop { .. }) => {
            Some("without the loss, the message stays in flight")
        }
        (Kind::DropEvent, Event::Send { id }) => {
            let named_later = records[k + 1..].iter().any(|r| match &r.ev {
                Event::Receive { id: x, .. }
                | Event::Decoded { id: x, .. }
                | Event::Drop { id: x }
                | Event::Duplicate { id: x }
                | Event::Delay { id: x, .. } => x == id,
                _ => false,
            });
            (!named_later).then_some("the message is never sent, and nothing later names it")
        }
        (Kind::DropEvent, Event::Apply { node, .. }) => {
            let applies_later = records[k + 1..]
                .iter()
                .any(|r| matches!(&r.ev, Event::Apply { node: x, .. } | Event::Start { node: x, .. } if x == node));
            (!applies_later)
                .then_some("the node's last apply: the service just has not applied it yet")
        }
        (Kind::DropEvent, Event::Decoded { .. }) => Some(
            "a transport's report of what it decoded is optional: without it, nothing is compared",
        ),
        (Kind::DuplicateEvent, Event::Persist { .. }) => {
            Some("persisting the same state twice is allowed")
        }
        (Kind::DropEvent, Event::Read { .. }) => {
            Some("a confirmed read need not be served: its host may have stopped first")
        }
        (Kind::SwapEvents, _) => {
            let j = next_step_of_same_node(records, k)?;
            let holding_check = |ev: &Event| matches!(ev, Event::CheckQuorum { state, .. } if state.role == Role::L);
            let sends_only = |ev: &Event| {
                matches!(
                    ev,
                    Event::Heartbeat { .. }
                        | Event::Propose { .. }
                        | Event::ReadIndex { .. }
                        | Event::Transfer { .. }
                )
            };
            let (a, b) = (&records[k].ev, &records[j].ev);
            ((holding_check(a) && sends_only(b)) || (sends_only(a) && holding_check(b))).then_some(
                "a quorum check that holds commutes with a step of its leader that receives nothing",
            )
        }
        _ => None,
    }
}

/// Whether event `k` is a step that leaves the node's reported state as it was and sends nothing.
fn is_no_op(records: &[Record], k: usize) -> bool {
    let (node, state, sent) = match &records[k].ev {
        Event::Receive {
            node, state, sent, ..
        }
        | Event::Propose {
            node, state, sent, ..
        }
        | Event::ReadIndex {
            node, state, sent, ..
        } => (*node, state, sent),
        _ => return false,
    };
    if !sent.is_empty() || state.log.is_some() {
        return false;
    }
    let previous = records[..k]
        .iter()
        .rev()
        .find_map(|r| r.ev.state().filter(|_| r.ev.node() == Some(node)));
    previous.is_some_and(|p| {
        NodeState {
            log: None,
            ..p.clone()
        } == *state
    })
}
