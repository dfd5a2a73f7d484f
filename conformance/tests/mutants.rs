//! Every mutant of the core but one is caught by the exhaustive implementation check and by trace
//! validation of a lab campaign. Needs the `mutants` feature:
//! `cargo test --release -p conformance --features mutants --test mutants` (run by `.ci/run`).

#![cfg(feature = "mutants")]

use conformance::mutants::{by_implcheck, by_lab};
use raft::mutants::Mutant;

/// The one mutant that neither catches, and why (README, "Mutants"): the core sends InstallSnapshot only to
/// a follower whose log it believes diverges before the snapshot, and within the explored bounds and the lab
/// campaign no such follower holds entries after the snapshot's last one, so dropping them changes nothing.
/// The core's unit tests catch it. If a change to the core or the bounds makes it reachable, this test says
/// so, and the exception goes.
const NOT_REACHED: Mutant = Mutant::SnapshotDropsSuffix;

/// One test for all: the mutant switch is global to the process, so the mutants run one after the other.
#[test]
fn every_mutant_is_caught_by_implcheck_and_by_trace_validation() {
    let mut missed = Vec::new();
    for m in Mutant::ALL {
        let implcheck = by_implcheck(m);
        let (trace, _lab) = by_lab(m, 1..31, true);
        if m == NOT_REACHED {
            assert!(
                !implcheck.caught && !trace.caught,
                "{} is caught now: remove the exception",
                m.name()
            );
            continue;
        }
        if !implcheck.caught {
            missed.push(format!("{}: implcheck", m.name()));
        }
        if !trace.caught {
            missed.push(format!("{}: trace validation", m.name()));
        }
    }
    assert!(missed.is_empty(), "not caught: {missed:?}");
}
