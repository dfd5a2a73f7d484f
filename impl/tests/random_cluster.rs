//! Safety under a hostile network, driven by hand from a seeded RNG (not the project's simulator): messages are
//! delivered in random order, dropped, duplicated, servers snapshot their state machines (so that leaders send
//! InstallSnapshot), and servers crash and restart from their persisted state and snapshot. Checked after every
//! step: Election Safety (one leader per term, over the whole history), State Machine Safety (every server applies
//! the same entry at each index, and every state machine, snapshots included, agrees with that), Log Matching
//! between any two logs; and, once the network heals, that the cluster converges and commits again.

mod common;

use std::collections::BTreeMap;

use common::Cluster;
use raft::{Envelope, Index, Message, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Checker {
    leaders: BTreeMap<Term, usize>,
    applied: BTreeMap<Index, (Term, Vec<u8>)>,
    /// The command at each index of any state machine.
    commands: BTreeMap<Index, Vec<u8>>,
}

impl Checker {
    fn check(&mut self, c: &Cluster) {
        for (i, node) in c.nodes.iter().enumerate() {
            if node.is_leader() {
                let previous = self.leaders.insert(node.term(), i);
                assert!(
                    previous.is_none() || previous == Some(i),
                    "two leaders in term {}",
                    node.term()
                );
            }
            for (index, term, command) in &c.applied[i] {
                let value = (*term, command.clone());
                let agreed = self.applied.entry(*index).or_insert_with(|| value.clone());
                assert_eq!(
                    *agreed, value,
                    "node {i} applied a different entry at {index}"
                );
            }
            for (k, command) in c.state_machine[i].iter().enumerate() {
                let agreed = self
                    .commands
                    .entry(k as Index + 1)
                    .or_insert_with(|| command.clone());
                assert_eq!(
                    agreed,
                    command,
                    "node {i}'s state machine differs at {}",
                    k + 1
                );
            }
        }
        // Log Matching: if two logs hold an entry with the same index and term, they agree up to it (where both
        // still hold entries: before that, snapshots).
        for a in 0..c.nodes.len() {
            for b in a + 1..c.nodes.len() {
                let (na, nb) = (&c.nodes[a], &c.nodes[b]);
                let first = na.last_included_index().max(nb.last_included_index()) + 1;
                let last = na.last_index().min(nb.last_index());
                let at = |n: &raft::Node, index: Index| {
                    n.log()[(index - n.last_included_index() - 1) as usize].clone()
                };
                if let Some(k) = (first..=last)
                    .rev()
                    .find(|&k| at(na, k).term == at(nb, k).term)
                {
                    for index in first..=k {
                        assert_eq!(
                            at(na, index),
                            at(nb, index),
                            "logs of {a} and {b} differ at {index}, before a matching entry at {k}"
                        );
                    }
                }
            }
        }
    }
}

/// Runs one random schedule; returns how many InstallSnapshot messages were delivered.
fn run(seed: u64, n: usize, steps: usize) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut c = Cluster::new(n);
    let mut checker = Checker {
        leaders: BTreeMap::new(),
        applied: BTreeMap::new(),
        commands: BTreeMap::new(),
    };
    let mut network: Vec<Envelope> = Vec::new();
    let mut proposed = 0u64;
    let mut installs = 0;

    for _ in 0..steps {
        let i = rng.random_range(0..n);
        match rng.random_range(0..1000) {
            0..=299 => {
                c.nodes[i].tick();
                network.extend(c.ready(i));
            }
            300..=879 => {
                if network.is_empty() {
                    continue;
                }
                let m = network.swap_remove(rng.random_range(0..network.len()));
                if matches!(m.message, Message::InstallSnapshot(_)) {
                    installs += 1;
                }
                match rng.random_range(0..100) {
                    0..=9 => {} // lost
                    10..=14 => {
                        network.push(m.clone()); // duplicated
                        network.extend(c.deliver(m));
                    }
                    _ => network.extend(c.deliver(m)),
                }
            }
            880..=899 => c.snapshot(i),
            900..=995 => {
                if c.nodes[i].is_leader() {
                    proposed += 1;
                    let (_, msgs) = c.propose(i, &format!("{seed}-{proposed}"));
                    network.extend(msgs);
                }
            }
            _ => c.restart(i),
        }
        checker.check(&c);
    }

    // Heal: a reliable network until a leader commits a fresh entry everywhere.
    let before = checker.applied.len();
    let mut last_proposal = None;
    for _ in 0..20_000 {
        for i in 0..n {
            c.nodes[i].tick();
            network.extend(c.ready(i));
        }
        let queue = std::mem::take(&mut network);
        c.deliver_all(queue);
        checker.check(&c);
        if last_proposal.is_none() {
            if let Some(leader) = (0..n).find(|&i| c.nodes[i].is_leader()) {
                let ((index, _), msgs) = c.propose(leader, "final");
                network.extend(msgs);
                last_proposal = Some(index);
            }
        } else if let Some(index) = last_proposal {
            if (0..n).all(|i| c.nodes[i].commit_index() >= index) {
                assert!(checker.applied.len() > before.min(index as usize - 1));
                return installs;
            }
        }
    }
    panic!("seed {seed}: the healed cluster did not commit (proposal {last_proposal:?})");
}

#[test]
fn three_servers_stay_safe_under_loss_reordering_and_restarts() {
    let installs: usize = (0..40).map(|seed| run(seed, 3, 3_000)).sum();
    assert!(installs > 0, "no schedule exercised InstallSnapshot");
}

#[test]
fn five_servers_stay_safe_under_loss_reordering_and_restarts() {
    let installs: usize = (100..120).map(|seed| run(seed, 5, 4_000)).sum();
    assert!(installs > 0, "no schedule exercised InstallSnapshot");
}
