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

/// What a node made durable tells states apart: after a crash it is all that remains. A node that timed out
/// and voted for itself, under a correct host and under one that saves the state without the vote: the
/// nodes, the network and the spec state agree, only the durable vote differs, and the states must not be
/// merged (the merged one would never be crashed and restarted from its own storage).
#[test]
fn implcheck_tells_apart_states_that_differ_only_in_durable_storage() {
    use conformance::implcheck::Action;
    let bounds = preset("small").unwrap().bounds;
    let good = ImplModel::new(bounds);
    let mut forgets = ImplModel::new(bounds);
    forgets.host_bug = Some(HostBug::ForgetVoteOnSave);
    let a = good
        .next_state(&good.init_states()[0], Action::Timeout(0))
        .unwrap();
    let b = forgets
        .next_state(&forgets.init_states()[0], Action::Timeout(0))
        .unwrap();
    assert!(a.violation().is_none() && b.violation().is_none());
    assert_eq!(a.spec(), b.spec(), "the same spec state");
    assert!(a != b, "states with different durable votes are merged");
    // stateright deduplicates by fingerprint: the hashes must differ too.
    let hash = |s: &conformance::implcheck::State| {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(s)
    };
    assert_ne!(hash(&a), hash(&b));
    // The same run under the same host is the same state.
    let a2 = good
        .next_state(&good.init_states()[0], Action::Timeout(0))
        .unwrap();
    assert!(a == a2);
}
