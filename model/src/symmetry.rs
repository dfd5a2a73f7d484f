//! Symmetry over server ids: servers are interchangeable, so states that differ only by a
//! renaming of servers are explored once. The representative sorts the servers by their content
//! and renames every id in the state accordingly.

use crate::state::{Server, ServerId, State, MAX_SERVERS};
use stateright::Representative;

impl Representative for State {
    fn representative(&self) -> Self {
        let n = self.servers.len();
        // order[new] = old: the servers sorted by content (ids inside are not yet renamed, which
        // keeps the sort cheap; the result is still a sound canonical form).
        let mut order: [u8; MAX_SERVERS] = [0; MAX_SERVERS];
        for (k, o) in order.iter_mut().enumerate().take(n) {
            *o = k as u8;
        }
        order[..n].sort_by(|&a, &b| self.servers[a as usize].cmp(&self.servers[b as usize]));
        // rename[old] = new.
        let mut rename: [ServerId; MAX_SERVERS] = [0; MAX_SERVERS];
        for (new, &old) in order[..n].iter().enumerate() {
            rename[old as usize] = new as ServerId;
        }
        if order[..n].iter().enumerate().all(|(k, &o)| k == o as usize) {
            return self.clone();
        }
        self.renamed(&order[..n], &rename[..n])
    }
}

impl State {
    /// The same state with server `order[k]` renamed to `k` (`rename` is the inverse of `order`).
    fn renamed(&self, order: &[u8], rename: &[ServerId]) -> State {
        let map = |id: ServerId| rename[id as usize];
        let servers = order
            .iter()
            .map(|&old| rename_server(&self.servers[old as usize], order, rename))
            .collect();
        let mut network = self.network.clone();
        for (m, _) in &mut network.messages {
            m.from = map(m.from);
            m.to = map(m.to);
        }
        network.messages.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut elections = self.elections.clone();
        for e in &mut elections {
            e.1 = map(e.1);
        }
        elections.sort_unstable();
        State {
            servers,
            network,
            elections,
            committed: self.committed.clone(),
            flags: self.flags,
            crashes: self.crashes,
            drops: self.drops,
            dups: self.dups,
        }
    }
}

fn rename_server(s: &Server, order: &[u8], rename: &[ServerId]) -> Server {
    let mut r = s.clone();
    r.voted_for = s.voted_for.map(|v| rename[v as usize]);
    r.votes_granted = 0;
    for (old, &new) in rename.iter().enumerate() {
        if s.votes_granted & (1 << old) != 0 {
            r.votes_granted |= 1 << new;
        }
    }
    for (new, &old) in order.iter().enumerate() {
        r.next_index[new] = s.next_index[old as usize];
        r.match_index[new] = s.match_index[old as usize];
    }
    r
}
