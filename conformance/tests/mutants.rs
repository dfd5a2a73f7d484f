//! Every mutant of the core is caught by the exhaustive implementation check and by trace validation (of a
//! lab campaign, or, for the mutants no lab run shows, of random schedules). Needs the `mutants` feature:
//! `cargo test --release -p conformance --features mutants --test mutants` (run by `.ci/run`).

#![cfg(feature = "mutants")]

use conformance::lab::tests_membership;
use conformance::mutants::{by_implcheck, by_lab, by_lab_tests, by_schedules, SCHEDULES};
use raft::mutants::Mutant;

/// The mutants the lab campaign does not reach, and why (conformance/README.md, "Mutants"). No lab run sends a snapshot to
/// a follower whose reply reaches the leader after it crashed and won the next term; random schedules do.
/// (Since the lab's nodes run with PreVote, a snapshot does reach a pre-candidate of the leader's term,
/// which the `snapshot-candidate-stays` mutant also keeps standing: the campaign catches that one now.) (The Lab 2 tests alone missed two more snapshot
/// departures, a dropped matching suffix and a kept conflicting one, which the Lab 3 tests' snapshots under
/// partitions and crashes reach; and the Lab 3 tests are the ones that read, so they catch the four mutants
/// of the read path.) No test of the campaign asks a leader to hand over (the port's own
/// `transfer_leadership` is not in it), so the two transfer mutants are left to the schedules too. If a change to the core or the tests makes the campaign reach one, this test says so.
const NOT_REACHED_BY_THE_LAB: [Mutant; 3] = [
    Mutant::StaleSnapshotReplyCounted,
    Mutant::LeaseIgnoresTransfer,
    Mutant::TimeoutNowToLaggard,
];

/// One test for all: the mutant switch is global to the process, so the mutants run one after the other.
/// Trace validation is the mutants binary's: the lab campaign, then random schedules; the mutants no lab
/// run shows are also held to that (if the campaign catches it one day, this test says so, and the README's
/// account must change).
#[test]
fn every_mutant_is_caught_by_implcheck_and_by_trace_validation() {
    let mut missed = Vec::new();
    for m in Mutant::ALL {
        let implcheck = by_implcheck(m);
        if !implcheck.caught {
            missed.push(format!("{}: implcheck", m.name()));
        }
        // PreVote and membership mutants are held to the schedules, which take every PreVote and membership
        // branch (no lab service changes the configuration).
        if m.needs_pre_vote() || m.needs_conf_change() {
            let trace = by_schedules(m, SCHEDULES);
            if !trace.caught {
                missed.push(format!("{}: trace validation", m.name()));
            }
            // The membership tests on the simulator catch each membership mutant too, by their own checks
            // or by trace validation.
            if m.needs_conf_change() {
                let (trace, lab) = by_lab_tests(m, &tests_membership::TESTS, 1..4, false);
                if !trace.caught && !lab.caught {
                    missed.push(format!("{}: the membership lab tests", m.name()));
                }
            }
            continue;
        }
        let (lab_trace, _lab) = by_lab(m, 1..31, true);
        let trace = if lab_trace.caught {
            lab_trace
        } else {
            assert!(
                NOT_REACHED_BY_THE_LAB.contains(&m),
                "{} is missed by the lab campaign's trace validation",
                m.name()
            );
            by_schedules(m, SCHEDULES)
        };
        if NOT_REACHED_BY_THE_LAB.contains(&m) {
            assert!(
                trace.at.starts_with("schedule"),
                "{} is caught by the lab campaign now ({}): update conformance/README.md",
                m.name(),
                trace.at
            );
        }
        if !trace.caught {
            missed.push(format!("{}: trace validation", m.name()));
        }
    }
    assert!(missed.is_empty(), "not caught: {missed:?}");
}
