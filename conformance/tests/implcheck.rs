//! The real core under the model checker: the small preset is explored with every step checked and no
//! violation, and a broken host is caught with a short path that replays as a failing trace.

use conformance::implcheck::{preset, HostBug, ImplModel, REFINEMENT};
use conformance::trace::check;
use stateright::{Checker, Model};

#[test]
fn implcheck_small_preset_refines_the_spec() {
    let model = ImplModel::new(preset("small").unwrap().bounds);
    // One thread: states are merged by their projection, so with two threads which of two merged states
    // is explored first can vary, and with it the count (see the README).
    let checker = model.checker().threads(1).spawn_dfs().join();
    assert!(
        checker.discoveries().is_empty(),
        "{:?}",
        checker.discoveries().keys()
    );
    // The exact size. A change to the core or to the exploration that changes it must say why.
    assert_eq!(checker.unique_state_count(), 17_652);
}

#[test]
fn implcheck_catches_a_host_that_forgets_the_vote() {
    let mut model = ImplModel::new(preset("small").unwrap().bounds);
    model.host_bug = Some(HostBug::ForgetVoteOnSave);
    let checker = model.clone().checker().threads(2).spawn_bfs().join();
    let path = checker
        .discoveries()
        .remove(REFINEMENT)
        .expect("the forgotten vote is caught");
    let (states, actions): (Vec<_>, Vec<_>) = path.into_vec().into_iter().unzip();
    let actions: Vec<_> = actions.into_iter().flatten().collect();
    let violation = states.last().unwrap().violation().unwrap().clone();
    assert!(
        violation
            .reason
            .contains("did not start from exactly its durable state"),
        "{}",
        violation.reason
    );
    // Breadth-first, the shortest path: a node times out (voting for itself) and crashes.
    assert_eq!(actions.len(), 2, "{actions:?}");
    // The path replays as a trace that the trace checker rejects for the same reason.
    let trace = model.trace_of(&actions);
    let mismatch = check(&trace).expect_err("the trace leaves the model");
    assert!(
        violation.reason.starts_with(&mismatch.reason),
        "{} / {}",
        violation.reason,
        mismatch.reason
    );
}
