//! Symmetry over server ids: servers are interchangeable, so states that differ only by a
//! renaming of servers are explored once.
//!
//! The checker's model canonicalizes each successor in place (sort the servers by content, rename
//! every id accordingly) instead of using stateright's `Representative`, which would clone and
//! hash every generated state twice. Paths found that way name servers differently from step to
//! step; [`decanonicalize`] renames them back into one consistent naming for people and for the
//! Explorer.

use crate::raft::{Action, RaftModel};
use crate::state::{Body, Entry, Message, Server, ServerId, State, MAX_SERVERS};

/// A permutation of server ids: `order[new] = old`.
pub type Order = [ServerId; MAX_SERVERS];

impl State {
    /// Renames the servers into canonical order (the initial configuration's voters, then its
    /// learners, then the rest, each sorted by content; ids inside are compared before renaming,
    /// which keeps this cheap and is still a sound reduction). Returns the
    /// permutation applied, `order[new] = old`, or `None` when the state was already canonical.
    pub fn canonicalize(&mut self) -> Option<Order> {
        let n = self.servers.len();
        let mut order: Order = [0; MAX_SERVERS];
        for (k, o) in order.iter_mut().enumerate().take(n) {
            *o = k as ServerId;
        }
        let class = |i: ServerId| {
            let bit = 1 << i;
            (
                self.initial.voters & bit == 0,
                self.initial.learners & bit == 0,
            )
        };
        order[..n].sort_by(|&a, &b| {
            class(a)
                .cmp(&class(b))
                .then_with(|| self.servers[a as usize].cmp(&self.servers[b as usize]))
        });
        if order[..n].iter().enumerate().all(|(k, &o)| k == o as usize) {
            return None;
        }
        self.permute(&order[..n]);
        Some(order)
    }

    /// Renames the servers by `order` (`order[new] = old`, a permutation of all the server ids).
    pub fn permute(&mut self, order: &[ServerId]) {
        let n = self.servers.len();
        let mut rename: Order = [0; MAX_SERVERS];
        for (new, &old) in order[..n].iter().enumerate() {
            rename[old as usize] = new as ServerId;
        }
        self.servers
            .reorder(&order[..n], |s| rename_server(s, &order[..n], &rename));
        for (m, _) in &mut self.network.messages {
            rename_message(m, &rename);
        }
        self.network.messages.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for e in &mut self.elections {
            e.1 = rename[e.1 as usize];
        }
        self.elections.sort_unstable();
        self.initial = self.initial.renamed(&rename[..n]);
        for (e, _) in &mut self.committed {
            rename_entry(e, &rename[..n]);
        }
    }
}

fn rename_message(m: &mut Message, rename: &[ServerId]) {
    m.from = rename[m.from as usize];
    m.to = rename[m.to as usize];
    if let Body::AppendEntries { entries, .. } | Body::InstallSnapshot { entries, .. } = &mut m.body
    {
        for e in entries.iter_mut() {
            rename_entry(e, rename);
        }
    }
}

/// Renames the servers a configuration entry names.
fn rename_entry(e: &mut Entry, rename: &[ServerId]) {
    if let Some(c) = e.config() {
        *e = Entry::configuration(e.term, c.renamed(rename));
    }
}

fn rename_server(s: &mut Server, order: &[ServerId], rename: &[ServerId]) {
    s.voted_for = s.voted_for.map(|v| rename[v as usize]);
    for e in s.log.iter_mut() {
        rename_entry(e, &rename[..order.len()]);
    }
    let rename_set = |set: u8| {
        (0..order.len())
            .filter(|&old| set & (1 << old) != 0)
            .fold(0u8, |acc, old| acc | (1 << rename[old]))
    };
    s.votes_granted = rename_set(s.votes_granted);
    s.recent = rename_set(s.recent);
    for read in &mut s.reads {
        read.acks = rename_set(read.acks);
    }
    let (next, matched) = (s.next_index, s.match_index);
    for (new, &old) in order.iter().enumerate() {
        s.next_index[new] = next[old as usize];
        s.match_index[new] = matched[old as usize];
    }
}

/// `action` with every server id renamed by `rename` (`rename[id]` is the new id).
pub fn rename_action(action: &Action, rename: &[ServerId]) -> Action {
    let r = |i: ServerId| rename[i as usize];
    let msg = |m: &Message| {
        let mut m = m.clone();
        rename_message(&mut m, rename);
        m
    };
    match action {
        Action::Timeout(i) => Action::Timeout(r(*i)),
        Action::ClientRequest(i, v) => Action::ClientRequest(r(*i), *v),
        Action::ChangeConfig(i, c) => Action::ChangeConfig(r(*i), c.renamed(rename)),
        Action::AppendEntries {
            leader,
            peer,
            prev_log_index,
            count,
        } => Action::AppendEntries {
            leader: r(*leader),
            peer: r(*peer),
            prev_log_index: *prev_log_index,
            count: *count,
        },
        Action::AdvanceCommitIndex(i, index) => Action::AdvanceCommitIndex(r(*i), *index),
        Action::Compact(i, index) => Action::Compact(r(*i), *index),
        Action::ReadIndex(i) => Action::ReadIndex(r(*i)),
        Action::InstallSnapshot { leader, peer } => Action::InstallSnapshot {
            leader: r(*leader),
            peer: r(*peer),
        },
        Action::SetNextIndex {
            leader,
            peer,
            index,
        } => Action::SetNextIndex {
            leader: r(*leader),
            peer: r(*peer),
            index: *index,
        },
        Action::Receive(m) => Action::Receive(msg(m)),
        Action::Crash(i) => Action::Crash(r(*i)),
        Action::Drop(m) => Action::Drop(msg(m)),
        Action::Duplicate(m) => Action::Duplicate(msg(m)),
        Action::LeaseExpires(i) => Action::LeaseExpires(r(*i)),
        Action::CheckQuorum(i) => Action::CheckQuorum(r(*i)),
        Action::TransferLeader { leader, target } => Action::TransferLeader {
            leader: r(*leader),
            target: r(*target),
        },
    }
}

/// Replays a path of canonical states (from a checker whose model canonicalizes) with the plain
/// model, so that each server keeps one name from the first step to the last.
pub fn decanonicalize(
    model: &RaftModel,
    path: &[(State, Option<Action>)],
) -> Vec<(State, Option<Action>)> {
    let plain = RaftModel {
        symmetry: false,
        ..model.clone()
    };
    let n = model.bounds.servers as usize;
    // display[c] = the display name of the server called c in the current canonical state.
    let mut display: Order = [0; MAX_SERVERS];
    for (k, d) in display.iter_mut().enumerate() {
        *d = k as ServerId;
    }
    let Some((first, _)) = path.first() else {
        return Vec::new();
    };
    let mut out: Vec<(State, Option<Action>)> = vec![(first.clone(), None)];
    for (canonical, action) in path {
        let Some(action) = action else { break };
        let shown = rename_action(action, &display[..n]);
        let current = &out.last().expect("starts non-empty").0;
        let next = plain
            .step(current, &shown)
            .expect("a step of the path is enabled under the original names");
        out.last_mut().expect("non-empty").1 = Some(shown);
        out.push((next, None));
        // Follow the canonicalization the checker applied after this step.
        let mut raw = plain
            .step(canonical, action)
            .expect("a step of the path is enabled");
        if let Some(order) = raw.canonicalize() {
            let before = display;
            for (new, &old) in order[..n].iter().enumerate() {
                display[new] = before[old as usize];
            }
        }
    }
    out
}
