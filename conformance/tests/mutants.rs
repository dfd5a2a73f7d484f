//! Every mutant of the core is caught by the exhaustive implementation check and by trace validation of a
//! lab campaign. Needs the `mutants` feature:
//! `cargo test --release -p conformance --features mutants --test mutants` (run by `.ci/run`).

#![cfg(feature = "mutants")]

use conformance::mutants::{by_implcheck, by_lab};
use raft::mutants::Mutant;

/// One test for all: the mutant switch is global to the process, so the mutants run one after the other.
#[test]
fn every_mutant_is_caught_by_implcheck_and_by_trace_validation() {
    let mut missed = Vec::new();
    for m in Mutant::ALL {
        let implcheck = by_implcheck(m);
        let (trace, _lab) = by_lab(m, 1..3);
        if !implcheck.caught {
            missed.push(format!("{}: implcheck", m.name()));
        }
        if !trace.caught {
            missed.push(format!("{}: trace validation", m.name()));
        }
    }
    assert!(missed.is_empty(), "not caught: {missed:?}");
}
