//! The partial partition of the 2020 Cloudflare outage on the simulator, in the lab tester's style, and
//! measured: three servers elect a leader, then the link between the leader and one follower alone is cut
//! for 10 s of virtual time, while the third server reaches both. Every run is trace-validated against the
//! model. With PreVote and CheckQuorum (the default) no run changes leader; with Figure 2's elections every
//! run loses its leader, and the test prints how often the leadership changed and when it last did: the
//! middle server, which hears from whichever side leads, never times out to end it.

use std::cell::RefCell;
use std::collections::BTreeSet;

use conformance::lab::{run_traced_checked, Config, LabTest};
use conformance::sim::Sim;

/// What one run saw while the link was cut.
#[derive(Clone, Debug)]
struct Observed {
    /// The (term, leader) pairs seen, the first included.
    leaderships: BTreeSet<(u64, usize)>,
    /// Virtual time from the cut to the last new leadership, in ms (0: none).
    settled_ms: u64,
}

thread_local! {
    /// The run's observation, taken by the test after the run (runs execute on the test's thread).
    static OBSERVED: RefCell<Option<Observed>> = const { RefCell::new(None) };
}

async fn partial_partition(sim: Sim, extensions: bool) {
    let raft = raft::Config {
        pre_vote: extensions,
        check_quorum: extensions,
        ..raft::Config::default()
    };
    let cfg = Config::make_raft(&sim, 3, false, false, raft);
    cfg.begin("partial partition: the leader cannot reach one follower");
    let leader = cfg.check_one_leader().await;
    let (term, _) = cfg.get_state(leader);
    let follower = (leader + 1) % 3;
    cfg.cut(leader, follower, true);
    let cut_at = sim.now();
    let mut leaderships = BTreeSet::from([(term, leader)]);
    let mut settled_ms = 0;
    for _ in 0..200 {
        cfg.sleep_ms(50).await;
        for i in 0..3 {
            let (term, is_leader) = cfg.get_state(i);
            if is_leader && leaderships.insert((term, i)) {
                settled_ms = (sim.now() - cut_at) / 1000;
            }
        }
    }
    cfg.cut(leader, follower, false);
    cfg.check_one_leader().await;
    cfg.end();
    cfg.cleanup();
    OBSERVED.with(|o| {
        *o.borrow_mut() = Some(Observed {
            leaderships,
            settled_ms,
        })
    });
}

const WITH: LabTest = LabTest {
    go_name: "PartialPartitionPreVoteCheckQuorum",
    name: "partial_partition_pre_vote_check_quorum",
    part: "ext",
    body: |sim| Box::pin(partial_partition(sim, true)),
};

const WITHOUT: LabTest = LabTest {
    go_name: "PartialPartitionFigure2",
    name: "partial_partition_figure2",
    part: "ext",
    body: |sim| Box::pin(partial_partition(sim, false)),
};

/// Runs `test` on seeds 1..=20, each passing and trace-validated; what each saw.
fn runs(test: &LabTest) -> Vec<Observed> {
    (1..=20)
        .map(|seed| {
            let (outcome, _, verdict) = run_traced_checked(test, seed, true);
            assert!(
                outcome.failure.is_none(),
                "seed {seed}: {:?}",
                outcome.failure
            );
            assert!(
                verdict.checked().is_some(),
                "seed {seed}: the trace was not validated: {verdict:?}"
            );
            OBSERVED
                .with(|o| o.borrow_mut().take())
                .expect("the run observed")
        })
        .collect()
}

#[test]
fn lab_partial_partition_with_pre_vote_and_check_quorum_keeps_the_leader() {
    for (k, seen) in runs(&WITH).iter().enumerate() {
        assert_eq!(seen.leaderships.len(), 1, "seed {}: {seen:?}", k + 1);
    }
}

#[test]
fn lab_partial_partition_with_figure_2_elections_loses_the_leader() {
    let seen = runs(&WITHOUT);
    for (k, s) in seen.iter().enumerate() {
        assert!(s.leaderships.len() >= 2, "seed {}: {s:?}", k + 1);
    }
    let mut settled: Vec<u64> = seen.iter().map(|s| s.settled_ms).collect();
    settled.sort_unstable();
    let changes: Vec<usize> = seen.iter().map(|s| s.leaderships.len() - 1).collect();
    println!(
        "Figure 2's elections, 20 seeds: {} leader changes ({} to {} a run); the last one {} ms after the \
         cut (median), {} ms at the earliest",
        changes.iter().sum::<usize>(),
        changes.iter().min().unwrap(),
        changes.iter().max().unwrap(),
        settled[settled.len() / 2],
        settled[0]
    );
}
