//! The partial partition of the 2020 Cloudflare outage, on real `raft-node` processes: three nodes behind the
//! chaos harness's proxies, and the link between the leader and one follower cut both ways while the other
//! follower reaches both. With PreVote and CheckQuorum (the default) the leader keeps its place and no new
//! term begins; with Figure 2's elections the cut-off follower's election deposes the leader, and the
//! leadership moves (often more than once) until the node that reaches both happens to win.
//!
//! Needs the `raft-node` executable beside `raft-chaos` (`cargo test --workspace` builds both).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use conformance::chaos::cluster::{Cluster, Disk, Setup};

/// How long the cut lasts.
const CUT: Duration = Duration::from_secs(8);

/// What the cluster did while the cut lasted.
#[derive(Debug)]
struct Observed {
    /// The (term, leader) pairs seen, the first one included.
    leaderships: BTreeSet<(u64, u64)>,
    /// The highest term any node reported, and the term when the cut began.
    terms: (u64, u64),
    /// The leader when the cut began, and whether it still led when the cut ended.
    first: u64,
    still_leads: bool,
    /// When, after the cut, the last new leadership was seen (zero: none).
    settled_after: Duration,
}

/// One cluster at a time: the machine has two cores, and elections are timed by the wall clock.
static RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(figure2_elections: bool) -> Observed {
    let _one = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_raft-chaos")).with_file_name("raft-node");
    assert!(
        exe.is_file(),
        "{} is missing: build it first",
        exe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Setup {
        exe,
        dir: dir.path().to_path_buf(),
        nodes: 3,
        disk: Disk::Fs,
        node_bug: None,
        mutant: None,
        snapshot_every: 1000,
        seed: 1,
        figure2_elections,
    })
    .unwrap();
    // Let the first election settle (and its losers learn of it) before the cut.
    std::thread::sleep(Duration::from_millis(500));
    let first = cluster.await_leader(Duration::from_secs(10)).unwrap();
    let follower = cluster.ids().into_iter().find(|&id| id != first).unwrap();
    let status = |id| cluster.status(id, Duration::from_millis(300));
    let term_before = status(first).expect("the leader answers").term;
    cluster.net().cut_both(first, follower);
    let mut leaderships = BTreeSet::from([(term_before, first)]);
    let mut top = term_before;
    let cut_at = Instant::now();
    let mut settled_after = Duration::ZERO;
    let end = cut_at + CUT;
    while Instant::now() < end {
        for id in cluster.ids() {
            if let Some(s) = status(id) {
                top = top.max(s.term);
                if s.role == raft::Role::Leader && leaderships.insert((s.term, s.id)) {
                    settled_after = cut_at.elapsed();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_leads = status(first).is_some_and(|s| s.role == raft::Role::Leader);
    Observed {
        leaderships,
        terms: (top, term_before),
        first,
        still_leads,
        settled_after,
    }
}

#[test]
fn with_pre_vote_and_check_quorum_the_leader_keeps_its_place() {
    let seen = run(false);
    eprintln!("PreVote and CheckQuorum: {seen:?}");
    assert!(seen.still_leads, "{seen:?}");
    assert_eq!(
        seen.leaderships,
        BTreeSet::from([(seen.terms.1, seen.first)]),
        "{seen:?}"
    );
    assert_eq!(seen.settled_after, Duration::ZERO);
    assert_eq!(seen.terms.0, seen.terms.1, "a new term began: {seen:?}");
}

#[test]
fn with_figure_2_elections_the_leadership_flaps() {
    let seen = run(true);
    eprintln!("Figure 2's elections: {seen:?}");
    // The cut-off follower's election timer runs out, and the node in the middle grants it a vote: the
    // leader is deposed within an election timeout or two.
    assert!(seen.leaderships.len() >= 2, "{seen:?}");
    assert!(seen.settled_after > Duration::ZERO, "{seen:?}");
    assert!(seen.terms.0 > seen.terms.1, "{seen:?}");
}
