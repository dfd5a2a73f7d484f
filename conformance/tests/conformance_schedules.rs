//! Random schedules of a cluster of 3 or 5 real nodes (deliver, drop, duplicate, fire a timer, propose, crash,
//! restart, partition, heal, snapshot), each trace checked against the model. A failure is shrunk by proptest
//! to a minimal schedule. Broken hosts show that the checker and the shrinking catch what they should.

use conformance::schedule::{run_schedule, HostBug, Op};
use conformance::trace::check;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRng, TestRunner};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => any::<u8>().prop_map(Op::Deliver),
        1 => any::<u8>().prop_map(Op::Drop),
        1 => any::<u8>().prop_map(Op::Duplicate),
        3 => any::<u8>().prop_map(Op::Fire),
        2 => (any::<u8>(), 1..4u8).prop_map(|(i, v)| Op::Propose(i, v)),
        1 => any::<u8>().prop_map(Op::Crash),
        1 => any::<u8>().prop_map(Op::Restart),
        1 => any::<u8>().prop_map(Op::Partition),
        1 => Just(Op::Heal),
        2 => any::<u8>().prop_map(Op::Snapshot),
    ]
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

#[test]
fn conformance_schedules_catch_a_host_that_keeps_an_old_snapshot() {
    let ops = caught_and_shrunk(HostBug::KeepOldSnapshot);
    assert!(ops.len() <= 40, "{ops:?}");
}
