//! Random schedules of a cluster of 3 or 5 real nodes (deliver, drop, duplicate, fire a timer, propose, crash,
//! restart, partition, heal, snapshot), each trace checked against the model. A failure is shrunk by proptest
//! to a minimal schedule. Broken hosts show that the checker and the shrinking catch what they should.

use conformance::schedule::{self, run_schedule, HostBug, Op, ROLLS};
use conformance::trace::check;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRng, TestRunner};

/// One operation, drawn as `schedule::op` weighs them (a failing schedule shrinks towards deliveries).
fn op() -> impl Strategy<Value = Op> {
    (0..ROLLS, any::<u8>(), any::<u8>()).prop_map(|(roll, k, v)| schedule::op(roll, k, v))
}

fn schedule() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..300)
}

fn validates(n: usize, ops: &[Op], bug: Option<HostBug>) -> Result<(), TestCaseError> {
    let trace = run_schedule(n, ops, bug);
    match check(&trace) {
        Ok(_) => Ok(()),
        Err(m) => Err(TestCaseError::fail(format!(
            "{} events, {m}",
            trace.records.len()
        ))),
    }
}

/// A runner with a fixed seed: every run of the test tries the same schedules (a failure is reproducible,
/// and the broken hosts are found the same way every time).
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    TestRunner::new_with_rng(config, rng)
}

#[test]
fn conformance_random_schedules_of_3_nodes() {
    runner(1000)
        .run(&schedule(), |ops| validates(3, &ops, None))
        .unwrap();
}

#[test]
fn conformance_random_schedules_of_5_nodes() {
    runner(500)
        .run(&schedule(), |ops| validates(5, &ops, None))
        .unwrap();
}

/// A broken host is caught, and the schedule shrinks to a few operations.
fn caught_and_shrunk(bug: HostBug) -> Vec<Op> {
    match runner(2000).run(&schedule(), |ops| validates(3, &ops, Some(bug))) {
        Err(TestError::Fail(reason, ops)) => {
            println!("{bug:?}: minimal schedule {ops:?}\n{reason}");
            ops
        }
        other => panic!("{bug:?} was not caught: {other:?}"),
    }
}

#[test]
fn conformance_schedules_catch_a_host_that_forgets_the_vote() {
    let ops = caught_and_shrunk(HostBug::ForgetVoteOnSave);
    assert!(ops.len() <= 12, "{ops:?}");
}

/// A proposal's event names the client's command, not what the core was given or logged.
#[test]
fn conformance_schedules_catch_a_host_that_proposes_another_command() {
    let ops = caught_and_shrunk(HostBug::ProposeOther);
    assert!(ops.len() <= 12, "{ops:?}");
}

#[test]
fn conformance_schedules_catch_a_host_that_keeps_an_old_snapshot() {
    let ops = caught_and_shrunk(HostBug::KeepOldSnapshot);
    assert!(ops.len() <= 40, "{ops:?}");
}

/// Random schedules of 3 and 5 nodes, together, take every outcome branch of the spec (the 46 of `model
/// check --coverage` outside the extensions: membership changes, PreVote, CheckQuorum, leadership
/// transfer), the follower that keeps entries past an installed
/// snapshot included, and show every condition of its decisions deciding (MC/DC): so the schedules put
/// every branch and every condition of the core under trace validation. The schedules' nodes run without
/// PreVote and CheckQuorum, and the core has no membership changes yet, so the spec's extension branches and
/// conditions are exactly the ones they never reach (`conformance_random_schedules_with_pre_vote` takes
/// PreVote's, `conformance_random_schedules_with_check_quorum_and_transfers` CheckQuorum's and transfer's). (Without the operations addressed to the leader, 40,000 schedules never
/// took the keeps-suffix branch; with 10,000 of each size the term check of `keep-suffix` was never shown,
/// while 20,000 show it.)
#[test]
fn conformance_random_schedules_take_every_branch_and_show_every_condition() {
    use conformance::trace::Checker;
    use model::coverage::{Branch, Coverage};
    use std::sync::Arc;
    let coverage = Arc::new(Coverage::default());
    for n in [3, 5] {
        runner(20_000)
            .run(&schedule(), |ops| {
                let trace = run_schedule(n, &ops, None);
                let mut checker = Checker::new(n).unwrap().with_coverage(coverage.clone());
                for r in &trace.records {
                    checker
                        .event(&r.ev)
                        .map_err(|f| TestCaseError::fail(format!("{f:?}")))?;
                }
                Ok(())
            })
            .unwrap();
    }
    let covered = coverage.covered();
    let missed: Vec<Branch> = covered
        .branches
        .iter()
        .filter(|&(_, count)| *count == 0)
        .map(|(b, _)| *b)
        .collect();
    let extensions: Vec<Branch> = Branch::ALL.into_iter().filter(|b| b.extension()).collect();
    assert_eq!(missed, extensions, "never taken");
    assert_eq!(covered.branches.len(), Branch::ALL.len());
    let not_shown: Vec<String> = covered
        .observed
        .conditions()
        .into_iter()
        .filter(|(c, shown)| !shown && !c.extension())
        .map(|(c, _)| c.name())
        .collect();
    assert!(not_shown.is_empty(), "conditions not shown: {not_shown:?}");
}

/// Runs random schedules (operations drawn below `rolls`), `cases` of each size, of nodes with `config`:
/// every trace validates against the model with the same extensions, counting coverage in `coverage`. Each
/// trace that `uses` the extension, relabelled by `mislabel` as from nodes without it, must fail; returns
/// how many did.
fn schedules_with(
    sizes: [(usize, u32); 2],
    rolls: u32,
    config: &raft::Config,
    coverage: &std::sync::Arc<model::coverage::Coverage>,
    uses: fn(&raft_trace::format::Event) -> bool,
    mislabel: fn(&mut raft_trace::format::Header),
) -> usize {
    use conformance::schedule::run_schedule_with;
    use conformance::trace::Checker;
    let ops = prop::collection::vec(
        (0..rolls, any::<u8>(), any::<u8>()).prop_map(|(roll, k, v)| schedule::op(roll, k, v)),
        1..300,
    );
    let mislabelled_caught = std::cell::Cell::new(0);
    for (n, cases) in sizes {
        runner(cases)
            .run(&ops, |ops| {
                let mut trace = run_schedule_with(n, &ops, None, config.clone());
                let mut checker = Checker::new(n)
                    .unwrap()
                    .with_features(trace.header.features())
                    .with_coverage(coverage.clone());
                for r in &trace.records {
                    checker
                        .event(&r.ev)
                        .map_err(|f| TestCaseError::fail(format!("{f:?}")))?;
                }
                mislabel(&mut trace.header);
                if trace.records.iter().any(|r| uses(&r.ev)) {
                    prop_assert!(
                        check(&trace).is_err(),
                        "a trace checked without its extension"
                    );
                    mislabelled_caught.set(mislabelled_caught.get() + 1);
                }
                Ok(())
            })
            .unwrap();
    }
    mislabelled_caught.get()
}

/// With PreVote on (`raft::Config::pre_vote`), random schedules of 3 and 5 nodes validate against the model
/// with PreVote, and together take each of the spec's PreVote branches and show each condition of its
/// PreVote decisions deciding: the core's PreVote is trace-validated as its elections are. The same traces
/// told they come from nodes without PreVote fail at once.
#[test]
fn conformance_random_schedules_with_pre_vote() {
    use conformance::schedule::schedule_config;
    use model::coverage::{Branch, Condition, Coverage, Decision};
    use raft_trace::format::Event;
    let coverage = std::sync::Arc::new(Coverage::default());
    let config = raft::Config {
        pre_vote: true,
        ..schedule_config()
    };
    let caught = schedules_with(
        [(3, 1000), (5, 500)],
        ROLLS,
        &config,
        &coverage,
        |ev| matches!(ev, Event::Timeout { .. }),
        |h| h.pre_vote = false,
    );
    assert!(caught > 100, "{caught}");
    let covered = coverage.covered();
    let not_taken = covered.not_taken(&Branch::PRE_VOTE);
    assert!(not_taken.is_empty(), "never taken: {not_taken:?}");
    let mut not_shown = covered.not_shown(&[
        Decision::GrantPreVote,
        Decision::CountPreVote,
        Decision::PreVoteWon,
    ]);
    if !covered.observed.shown(Condition::NotPreVote) {
        not_shown.push(Condition::NotPreVote.name());
    }
    assert!(
        not_shown.is_empty(),
        "PreVote conditions not shown: {not_shown:?}"
    );
}

/// With CheckQuorum and leadership transfers (and PreVote, which etcd pairs with them), random schedules of 3
/// and 5 nodes validate against the model with both, and together take each of the spec's CheckQuorum, lease
/// and transfer branches but one, and show each condition of their decisions deciding. The one is
/// `lease-expires`: in the core a follower's lease ends as its election timer fires, which makes it a
/// pre-candidate (the spec's `Timeout` ends the lease with the role), so the spec's separate expiry is never
/// needed. The same traces told they come from nodes without CheckQuorum fail at once.
#[test]
fn conformance_random_schedules_with_check_quorum_and_transfers() {
    use conformance::schedule::{schedule_config, ROLLS_WITH_TRANSFER};
    use model::coverage::{Branch, Coverage, Decision};
    use raft_trace::format::Event;
    let coverage = std::sync::Arc::new(Coverage::default());
    let config = raft::Config {
        pre_vote: true,
        check_quorum: true,
        ..schedule_config()
    };
    let caught = schedules_with(
        [(3, 4000), (5, 2000)],
        ROLLS_WITH_TRANSFER,
        &config,
        &coverage,
        |ev| matches!(ev, Event::CheckQuorum { .. }),
        |h| h.check_quorum = false,
    );
    assert!(caught > 100, "{caught}");
    let covered = coverage.covered();
    assert_eq!(
        covered.not_taken(&Branch::CHECK_QUORUM),
        ["lease-expires/expired"]
    );
    let not_shown = covered.not_shown(&[
        Decision::IgnoreInLease,
        Decision::CheckQuorum,
        Decision::TimeoutNowStarts,
    ]);
    assert!(
        not_shown.is_empty(),
        "CheckQuorum and transfer conditions not shown: {not_shown:?}"
    );
}

/// Random schedules with configuration changes (`Op::ChangeConfig`): `cases` clusters of `n` servers of which
/// `0..voters` make the first configuration and the others wait to be added, of nodes with `config`. Every
/// trace validates against the model, counting coverage in `coverage`. Returns how many traces changed the
/// configuration.
fn membership_schedules(
    n: usize,
    voters: usize,
    cases: u32,
    config: &raft::Config,
    coverage: &std::sync::Arc<model::coverage::Coverage>,
) -> usize {
    use conformance::schedule::{run_schedule_of, ROLLS_WITH_CHANGES};
    use conformance::trace::Checker;
    use raft_trace::format::Event;
    let ops = prop::collection::vec(
        (0..ROLLS_WITH_CHANGES, any::<u8>(), any::<u8>())
            .prop_map(|(roll, k, v)| schedule::op(roll, k, v)),
        1..300,
    );
    let changed = std::cell::Cell::new(0);
    runner(cases)
        .run(&ops, |ops| {
            let trace = run_schedule_of(n, voters, &ops, None, config.clone());
            let mut checker = Checker::new(n)
                .unwrap()
                .with_features(trace.header.features())
                .with_coverage(coverage.clone());
            for r in &trace.records {
                checker
                    .event(&r.ev)
                    .map_err(|f| TestCaseError::fail(format!("{f:?}")))?;
            }
            if trace
                .records
                .iter()
                .any(|r| matches!(r.ev, Event::ChangeConfig { .. }))
            {
                changed.set(changed.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    changed.get()
}

/// Membership changes, with and without PreVote and CheckQuorum, validate against the model's
/// `ChangeConfig`, and take every branch of membership changes.
#[test]
fn conformance_random_schedules_with_membership_changes() {
    use conformance::schedule::schedule_config;
    use model::coverage::{Branch, Coverage};
    let coverage = std::sync::Arc::new(Coverage::default());
    let extended = raft::Config {
        pre_vote: true,
        check_quorum: true,
        ..schedule_config()
    };
    let mut changed = 0;
    for (n, voters, cases, config) in [
        (4, 3, 2000, schedule_config()),
        (5, 3, 1000, schedule_config()),
        (4, 2, 1000, extended),
    ] {
        changed += membership_schedules(n, voters, cases, &config, &coverage);
    }
    let not_taken = coverage.covered().not_taken(&Branch::MEMBERSHIP);
    assert!(not_taken.is_empty(), "never taken: {not_taken:?}");
    assert!(changed > 800, "{changed} traces changed the configuration");
}

/// Schedules drawn from all `rolls` kinds of operation.
fn schedule_of(rolls: u32) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0..rolls, any::<u8>(), any::<u8>()).prop_map(|(roll, k, v)| schedule::op(roll, k, v)),
        1..300,
    )
}

/// Batches of proposals (`Node::propose_batch`, as the runtime proposes a round's commands together)
/// validate against the model: each command of a batch is a client request, and the messages that carry
/// them together are AppendEntries the spec allows. Counts the traces in which a leader took a batch: an
/// accepted proposal that sent nothing, followed at once by another proposal of the same node.
#[test]
fn conformance_random_schedules_with_batches() {
    use conformance::schedule::ROLLS_WITH_BATCHES;
    use raft_trace::format::Event;
    let batched = std::cell::Cell::new(0);
    for (n, cases) in [(3, 1000), (5, 500)] {
        runner(cases)
            .run(&schedule_of(ROLLS_WITH_BATCHES), |ops| {
                let trace = run_schedule(n, &ops, None);
                if let Err(m) = check(&trace) {
                    return Err(TestCaseError::fail(format!(
                        "{} events, {m}",
                        trace.records.len()
                    )));
                }
                let took_batch = trace.records.windows(2).any(|w| {
                    matches!(
                        (&w[0].ev, &w[1].ev),
                        (
                            Event::Propose { node: a, accepted: Some(_), sent, .. },
                            Event::Propose { node: b, .. },
                        ) if a == b && sent.is_empty()
                    )
                });
                if took_batch {
                    batched.set(batched.get() + 1);
                }
                Ok(())
            })
            .unwrap();
    }
    assert!(batched.get() > 200, "{} traces took a batch", batched.get());
}

/// A host that hands the core a batch in another order than its clients asked for it is caught: each
/// proposal's event names the command the client asked for.
#[test]
fn conformance_schedules_catch_a_host_that_reorders_a_batch() {
    use conformance::schedule::ROLLS_WITH_BATCHES;
    let bug = HostBug::BatchReordered;
    match runner(2000).run(&schedule_of(ROLLS_WITH_BATCHES), |ops| {
        validates(3, &ops, Some(bug))
    }) {
        Err(TestError::Fail(reason, ops)) => {
            println!("{bug:?}: minimal schedule {ops:?}\n{reason}");
            assert!(ops.len() <= 12, "{ops:?}");
            assert!(
                ops.iter()
                    .any(|op| matches!(op, Op::ProposeBatchToLeader(_))),
                "{ops:?}"
            );
        }
        other => panic!("{bug:?} was not caught: {other:?}"),
    }
}
