//! `check`'s own depth-first search ([`model::search`]) against stateright's depth-first checker,
//! its oracle: the same states, counted the same way, the same witnesses, and on one thread the
//! same order of visits and so the same first counterexample.

use model::bounds::{preset, Bounds, Bug};
use model::properties::{for_check, raft_safety};
use model::raft::RaftModel;
use model::search::{self, Counts, Search};
use stateright::{Checker, HasDiscoveries, Model};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The model as `check` runs it: symmetry on, witnesses recorded in `witnessed`.
fn checked(bounds: Bounds, bug: Option<Bug>) -> (RaftModel, Arc<AtomicU16>) {
    let mut model = RaftModel::with_bug(bounds, bug);
    model.symmetry = true;
    let witnessed = Arc::new(AtomicU16::new(0));
    model.witnessed = Some(Arc::clone(&witnessed));
    (model, witnessed)
}

fn ours(bounds: Bounds, bug: Option<Bug>, threads: usize) -> (search::Outcome, u16) {
    let (model, witnessed) = checked(bounds, bug);
    let outcome = Search::spawn(model, threads, raft_safety).join();
    (outcome, witnessed.load(Ordering::Relaxed))
}

/// stateright's counts, its path to a violation (if any) and the witnesses.
#[allow(clippy::type_complexity)]
fn stateright(
    bounds: Bounds,
    bug: Option<Bug>,
    threads: usize,
) -> (Counts, Option<Vec<model::State>>, u16) {
    let (model, witnessed) = checked(bounds, bug);
    assert_eq!(model.properties().len(), for_check().len());
    let checker = model
        .checker()
        .threads(threads)
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_dfs()
        .join();
    let counts = Counts {
        unique: checker.unique_state_count(),
        total: checker.state_count(),
        depth: checker.max_depth(),
    };
    let path = checker
        .discoveries()
        .into_values()
        .next()
        .map(|path| path.into_states());
    (counts, path, witnessed.load(Ordering::Relaxed))
}

fn five_servers_one_term() -> Bounds {
    Bounds {
        max_term: 1,
        ..preset("five").unwrap().bounds
    }
}

#[test]
fn the_search_reaches_and_counts_what_stateright_does() {
    let mut cases: Vec<(&str, Bounds)> = ["small", "learners", "pre-vote", "pre-vote-four"]
        .into_iter()
        .map(|name| (name, preset(name).unwrap().bounds))
        .collect();
    cases.push(("five, one term", five_servers_one_term()));
    for (name, bounds) in cases {
        let (expected, path, expected_witnesses) = stateright(bounds, None, 2);
        assert!(path.is_none(), "{name}: stateright finds a violation");
        for threads in [1, 2] {
            let (outcome, witnesses) = ours(bounds, None, threads);
            assert!(outcome.violation.is_none(), "{name}: a violation");
            let counts = outcome.counts;
            assert_eq!(
                (counts.unique, counts.total),
                (expected.unique, expected.total),
                "{name} on {threads} thread(s)"
            );
            assert_eq!(witnesses, expected_witnesses, "{name}: the witnesses");
        }
    }
}

/// On one thread both visit the states in the same order: the same greatest depth, and the same
/// first violation, path and all.
#[test]
fn on_one_thread_the_search_visits_in_stateright_order() {
    let small = preset("small").unwrap().bounds;
    let (expected, _, _) = stateright(small, None, 1);
    let (outcome, _) = ours(small, None, 1);
    assert_eq!(outcome.counts, expected);

    for bug in [
        Bug::VoteTwice,
        Bug::NoUpToDateCheck,
        Bug::AcceptStaleTerm,
        Bug::MatchRegress,
    ] {
        let (_, expected, _) = stateright(small, Some(bug), 1);
        let expected = expected.unwrap_or_else(|| panic!("stateright misses {bug:?}"));
        let (outcome, _) = ours(small, Some(bug), 1);
        let path = outcome
            .violation
            .unwrap_or_else(|| panic!("the search misses {bug:?}"));
        let (model, _) = checked(small, Some(bug));
        let states: Vec<_> = search::replay(&model, &path)
            .into_iter()
            .map(|(state, _)| state)
            .collect();
        assert!(states == expected, "{bug:?}: another path");
        assert!(!raft_safety(&model, states.last().unwrap()), "{bug:?}");
    }
}

/// With two threads the first violation found may differ, but it is one: its replay ends in a
/// state that breaks a safety property.
#[test]
fn every_violation_the_search_reports_replays_to_a_broken_state() {
    for bug in [Bug::VoteTwice, Bug::MatchRegress] {
        let bounds = match bug {
            Bug::MatchRegress => five_servers_one_term(),
            _ => preset("small").unwrap().bounds,
        };
        let (outcome, _) = ours(bounds, Some(bug), 2);
        let path = outcome
            .violation
            .unwrap_or_else(|| panic!("the search misses {bug:?}"));
        let (model, _) = checked(bounds, Some(bug));
        let steps = search::replay(&model, &path);
        assert_eq!(steps.len(), path.len() + 1);
        let (last, action) = steps.last().unwrap();
        assert!(action.is_none());
        assert!(!raft_safety(&model, last), "{bug:?}");
        assert!(
            steps[..steps.len() - 1]
                .iter()
                .all(|(state, _)| raft_safety(&model, state)),
            "{bug:?}: the search stops at the first broken state of its path"
        );
    }
}

/// Breaks in about one state in 20,000, scattered over the state space by the fingerprint.
fn rare<const R: u64>(_: &RaftModel, state: &model::State) -> bool {
    search::fingerprint(state) % 20_011 != R
}

/// Wherever a thread finds a violation, in its own part of the search or in work another thread
/// handed it, the path it reports leads to that state.
#[test]
fn paths_found_in_work_handed_over_lead_to_their_states() {
    let invariants: [(u64, search::Invariant); 6] = [
        (1, rare::<1>),
        (2, rare::<2>),
        (3, rare::<3>),
        (4, rare::<4>),
        (5, rare::<5>),
        (6, rare::<6>),
    ];
    let bounds = preset("pre-vote-four").unwrap().bounds;
    for (r, invariant) in invariants {
        let (model, _) = checked(bounds, None);
        let outcome = Search::spawn(model.clone(), 2, invariant).join();
        let path = outcome.violation.expect("some state breaks it");
        let states: Vec<_> = search::replay(&model, &path)
            .into_iter()
            .map(|(state, _)| search::fingerprint(&state) % 20_011)
            .collect();
        assert_eq!(states.last(), Some(&r));
        assert!(!states[..states.len() - 1].contains(&r));
    }
}

/// Panics once: in the first state checked that breaks `rare::<0>`.
fn panics(model: &RaftModel, state: &model::State) -> bool {
    static PANICKED: AtomicBool = AtomicBool::new(false);
    if !rare::<0>(model, state) && !PANICKED.swap(true, Ordering::Relaxed) {
        panic!("a panic in the model");
    }
    true
}

/// A panic on one thread ends the search (the others stop instead of waiting for its work) and
/// reaches the caller of `join` once every thread has ended.
#[test]
fn a_panic_in_the_model_ends_the_search_and_reaches_join() {
    let (model, _) = checked(preset("pre-vote-four").unwrap().bounds, None);
    let search = Search::spawn(model, 2, panics);
    // `join` waits for every thread: if the others waited for the panicked one's work for ever,
    // it would not return.
    let (sender, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| search.join()));
        let _ = sender.send(outcome.err());
    });
    let panic = joined
        .recv_timeout(Duration::from_secs(60))
        .expect("join returns: no thread waits for ever")
        .expect("the panic reaches join");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"a panic in the model"));
}
