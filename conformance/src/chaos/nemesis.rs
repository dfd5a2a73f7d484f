//! The nemesis: a schedule of faults, made from a seed, and what each does to a [`Cluster`].
//!
//! Faults come one at a time, as in Jepsen's default nemesis: a fault lasts a while, then everything heals
//! (the network mended, paused nodes resumed, killed ones restarted) and the cluster has a quiet spell
//! before the next. A schedule names faults by role (the leader, a minority, one node) and carries a random
//! number for each choice, so a seed replays the same schedule; which process it hits depends on who leads
//! when it comes, as in any test of real processes.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use raft::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cluster::Cluster;
use super::proxy::LinkFaults;

/// The kinds of fault, as `--faults` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Kind {
    /// SIGKILL of one node, the leader, a minority, a majority or all, then a restart.
    Kill,
    /// SIGSTOP of the leader, one node or a minority, then SIGCONT.
    Pause,
    /// Network partitions: halves, the leader isolated, a bridge, a ring, a partial partition.
    Partition,
    /// Message delay, loss, duplication and reordering on every link.
    Link,
    /// Power loss (SIGKILL with a disk that loses what was not synced) of one node, a majority or all.
    Power,
    /// A leadership transfer: the leader is asked to hand over to another node, at random.
    Transfer,
    /// A membership change: the leader or one node is removed from the cluster (its process runs on),
    /// and added back when it heals, as a learner first, then a voter.
    Member,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Link,
        Kind::Power,
        Kind::Transfer,
        Kind::Member,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Link => "link",
            Kind::Power => "power",
            Kind::Transfer => "transfer",
            Kind::Member => "member",
        }
    }
}

/// Which nodes a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// One node, at random.
    One,
    /// The leader (one node at random when none leads).
    Leader,
    /// A minority, at random.
    Minority,
    /// A majority, at random.
    Majority,
    /// Every node.
    All,
}

/// The shape of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A minority and a majority, cut apart.
    Halves,
    /// The leader alone.
    LeaderIsolated,
    /// Two halves cut apart, and one node that reaches both.
    Bridge,
    /// Each node reaches its two neighbours on a ring only: five overlapping majorities of five (with three
    /// nodes every pair is neighbours, so it is a bridge).
    Ring,
    /// The leader cannot reach one other node, which every other node reaches (the partial partition of
    /// the 2020 Cloudflare outage).
    Partial,
}

/// Faults on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// Delay, with jitter.
    Delay,
    /// Loss.
    Loss,
    /// Duplication.
    Duplicate,
    /// Reordering.
    Reorder,
    /// All four at once.
    Mixed,
}

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, restarted when it heals.
    Kill(Who),
    /// SIGSTOP, SIGCONT when it heals.
    Pause(Who),
    /// A partition.
    Partition(Shape),
    /// Faults on every link's messages.
    Link(LinkKind),
    /// SIGKILL on a disk that loses what was not synced.
    Power(Who),
    /// The leader hands over to another node (nothing to heal).
    Transfer,
    /// A node is removed from the cluster; it is added back when it heals.
    Remove(Who),
}

impl Fault {
    /// Its kind.
    pub fn kind(self) -> Kind {
        match self {
            Fault::Kill(_) => Kind::Kill,
            Fault::Pause(_) => Kind::Pause,
            Fault::Partition(_) => Kind::Partition,
            Fault::Link(_) => Kind::Link,
            Fault::Power(_) => Kind::Power,
            Fault::Transfer => Kind::Transfer,
            Fault::Remove(_) => Kind::Member,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = |d: &dyn fmt::Debug| format!("{d:?}").to_lowercase();
        match self {
            Fault::Kill(w) => write!(f, "kill {}", lower(w)),
            Fault::Pause(w) => write!(f, "pause {}", lower(w)),
            Fault::Partition(s) => write!(f, "partition {}", lower(s)),
            Fault::Link(k) => write!(f, "link {}", lower(k)),
            Fault::Power(w) => write!(f, "power-loss {}", lower(w)),
            Fault::Transfer => write!(f, "transfer"),
            Fault::Remove(w) => write!(f, "remove {}", lower(w)),
        }
    }
}

/// One step of a schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// When it begins, from the start of the workload.
    pub at: Duration,
    /// How long it lasts before everything heals.
    pub lasts: Duration,
    /// The fault.
    pub fault: Fault,
    /// The random number that picks its nodes and amounts.
    pub pick: u64,
}

/// The variants of each kind, taken in turn.
fn variants(kind: Kind) -> Vec<Fault> {
    use Who::*;
    match kind {
        Kind::Kill => [One, Leader, Minority, Majority, All]
            .map(Fault::Kill)
            .to_vec(),
        Kind::Pause => [Leader, One, Minority].map(Fault::Pause).to_vec(),
        Kind::Partition => [
            Shape::Halves,
            Shape::LeaderIsolated,
            Shape::Bridge,
            Shape::Ring,
            Shape::Partial,
        ]
        .map(Fault::Partition)
        .to_vec(),
        Kind::Link => [
            LinkKind::Delay,
            LinkKind::Loss,
            LinkKind::Duplicate,
            LinkKind::Reorder,
            LinkKind::Mixed,
        ]
        .map(Fault::Link)
        .to_vec(),
        Kind::Power => [All, Majority, One].map(Fault::Power).to_vec(),
        Kind::Transfer => vec![Fault::Transfer],
        Kind::Member => [Leader, One].map(Fault::Remove).to_vec(),
    }
}

/// A schedule of faults of `kinds` for a workload of `run`: from 1 s on, each fault lasts 1 to 4 s (a
/// transfer 0.5 s) and is followed by 1 to 2.5 s of quiet; the kinds come in a shuffled turn, so that each comes once before any
/// comes again, and each kind's variants come in turn.
pub fn schedule(seed: u64, kinds: &[Kind], run: Duration) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut turn: Vec<Kind> = Vec::new();
    let mut next_variant = std::collections::BTreeMap::new();
    let mut steps = Vec::new();
    let mut at = Duration::from_secs(1);
    while !kinds.is_empty() && at + Duration::from_secs(1) < run {
        if turn.is_empty() {
            turn = kinds.to_vec();
            turn.shuffle(&mut rng);
        }
        let kind = turn.pop().expect("refilled");
        let all = variants(kind);
        let k = next_variant
            .entry(kind)
            .or_insert_with(|| rng.random_range(0..all.len()));
        let fault = all[*k % all.len()];
        *k += 1;
        let mut lasts = Duration::from_millis(rng.random_range(1000..4000)).min(run - at);
        if fault == Fault::Transfer {
            // A hand-over is over within an election: a short span before the quiet.
            lasts = lasts.min(Duration::from_millis(500));
        }
        steps.push(Step {
            at,
            lasts,
            fault,
            pick: rng.random(),
        });
        at += lasts + Duration::from_millis(rng.random_range(1000..2500));
    }
    steps
}

/// `count` of `ids` at random, the leader first if `leader_first`.
fn choose(
    ids: &[NodeId],
    count: usize,
    leader: Option<NodeId>,
    rng: &mut ChaCha8Rng,
) -> Vec<NodeId> {
    let mut ids = ids.to_vec();
    ids.shuffle(rng);
    if let Some(leader) = leader {
        ids.retain(|&i| i != leader);
        ids.insert(0, leader);
    }
    ids.truncate(count);
    ids.sort_unstable();
    ids
}

/// Applies `step` to `cluster`; returns what it did, in words.
pub fn apply(step: &Step, cluster: &mut Cluster) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(step.pick);
    let ids = cluster.ids();
    let n = ids.len();
    let (minority, majority) = ((n - 1) / 2, n / 2 + 1);
    let leader = cluster.leader();
    let who = |w: Who, rng: &mut ChaCha8Rng| match w {
        Who::One => choose(&ids, 1, None, rng),
        Who::Leader => choose(&ids, 1, leader, rng),
        Who::Minority => choose(&ids, minority, None, rng),
        Who::Majority => choose(&ids, majority, None, rng),
        Who::All => ids.clone(),
    };
    match step.fault {
        Fault::Kill(w) | Fault::Power(w) => {
            let nodes = who(w, &mut rng);
            for &id in &nodes {
                cluster.kill(id);
            }
            format!("{}: SIGKILL {nodes:?}", step.fault)
        }
        Fault::Pause(w) => {
            let nodes = who(w, &mut rng);
            for &id in &nodes {
                cluster.pause(id);
            }
            format!("{}: SIGSTOP {nodes:?}", step.fault)
        }
        Fault::Transfer => {
            let Some(from) = leader else {
                return format!("{}: no leader", step.fault);
            };
            let to = choose(
                &ids.iter()
                    .copied()
                    .filter(|&i| i != from)
                    .collect::<Vec<_>>(),
                1,
                None,
                &mut rng,
            )[0];
            let began = cluster.transfer_leader(from, to);
            format!(
                "{}: {from} to {to}, {}",
                step.fault,
                if began { "begun" } else { "refused" }
            )
        }
        Fault::Remove(w) => {
            let Some(at) = leader else {
                return format!("{}: no leader", step.fault);
            };
            let node = who(w, &mut rng)[0];
            let outcome = cluster.remove_member(at, node);
            format!("{}: node {node}, asked of {at}: {outcome}", step.fault)
        }
        Fault::Partition(shape) => {
            let cuts = partition(shape, &ids, leader, &mut rng);
            for &(a, b) in &cuts {
                cluster.net().cut_both(a, b);
            }
            format!("{}: cut {cuts:?}", step.fault)
        }
        Fault::Link(kind) => {
            let p = |rng: &mut ChaCha8Rng| rng.random_range(0.1..0.3);
            let mut faults = LinkFaults::default();
            if matches!(kind, LinkKind::Delay | LinkKind::Mixed) {
                faults.delay = Duration::from_millis(rng.random_range(10..80));
                faults.jitter = Duration::from_millis(rng.random_range(1..60));
            }
            if matches!(kind, LinkKind::Loss | LinkKind::Mixed) {
                faults.drop = p(&mut rng);
            }
            if matches!(kind, LinkKind::Duplicate | LinkKind::Mixed) {
                faults.duplicate = p(&mut rng);
            }
            if matches!(kind, LinkKind::Reorder | LinkKind::Mixed) {
                faults.reorder = p(&mut rng);
            }
            cluster.net().set_faults(faults);
            format!(
                "{}: delay {:?} + up to {:?}, drop {:.2}, duplicate {:.2}, reorder {:.2}",
                step.fault,
                faults.delay,
                faults.jitter,
                faults.drop,
                faults.duplicate,
                faults.reorder
            )
        }
    }
}

/// The pairs of nodes a partition of `shape` cuts apart (both ways).
pub fn partition(
    shape: Shape,
    ids: &[NodeId],
    leader: Option<NodeId>,
    rng: &mut ChaCha8Rng,
) -> BTreeSet<(NodeId, NodeId)> {
    let n = ids.len();
    let mut order = ids.to_vec();
    order.shuffle(rng);
    let mut cuts = BTreeSet::new();
    let mut cut = |a: NodeId, b: NodeId| {
        if a != b {
            cuts.insert((a.min(b), a.max(b)));
        }
    };
    let leader = leader.unwrap_or(order[0]);
    match shape {
        Shape::Halves => {
            let (small, large) = order.split_at(n / 2);
            for &a in small {
                for &b in large {
                    cut(a, b);
                }
            }
        }
        Shape::LeaderIsolated => {
            for &b in ids {
                cut(leader, b);
            }
        }
        Shape::Ring if n >= 5 => {
            for (i, &a) in order.iter().enumerate() {
                for (j, &b) in order.iter().enumerate() {
                    let distance = (i + n - j) % n;
                    if distance != 1 && distance != n - 1 {
                        cut(a, b);
                    }
                }
            }
        }
        Shape::Bridge | Shape::Ring => {
            let side = (n - 1) / 2;
            let (a_side, rest) = order.split_at(side);
            let b_side = &rest[1..];
            for &a in a_side {
                for &b in b_side {
                    cut(a, b);
                }
            }
        }
        Shape::Partial => {
            let other = *order
                .iter()
                .find(|&&i| i != leader)
                .expect("two nodes at least");
            cut(leader, other);
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_comes_from_its_seed_and_takes_every_kind() {
        let run = Duration::from_secs(40);
        let a = schedule(7, &Kind::ALL, run);
        assert_eq!(a, schedule(7, &Kind::ALL, run));
        assert_ne!(a, schedule(8, &Kind::ALL, run));
        let kinds: BTreeSet<Kind> = a.iter().map(|s| s.fault.kind()).collect();
        assert_eq!(kinds.len(), Kind::ALL.len(), "{a:?}");
        for w in a.windows(2) {
            assert!(w[0].at + w[0].lasts < w[1].at, "faults overlap: {w:?}");
        }
        assert!(a.iter().all(|s| s.at + s.lasts <= run));
    }

    #[test]
    fn partitions_have_their_shapes() {
        let five = [1, 2, 3, 4, 5];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let reach = |cuts: &BTreeSet<(u64, u64)>, a: u64| {
            five.iter()
                .filter(|&&b| b != a && !cuts.contains(&(a.min(b), a.max(b))))
                .count()
        };
        let ring = partition(Shape::Ring, &five, Some(1), &mut rng);
        assert!(five.iter().all(|&a| reach(&ring, a) == 2), "{ring:?}");
        let isolated = partition(Shape::LeaderIsolated, &five, Some(3), &mut rng);
        assert_eq!(reach(&isolated, 3), 0);
        let bridge = partition(Shape::Bridge, &five, None, &mut rng);
        assert_eq!(five.iter().filter(|&&a| reach(&bridge, a) == 4).count(), 1);
        let halves = partition(Shape::Halves, &five, None, &mut rng);
        assert_eq!(halves.len(), 6);
        let partial = partition(Shape::Partial, &[1, 2, 3], Some(2), &mut rng);
        assert_eq!(partial.len(), 1);
        assert!(partial.iter().all(|&(a, b)| a == 2 || b == 2));
    }
}
