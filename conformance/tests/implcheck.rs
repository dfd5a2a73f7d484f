//! The real core under the model checker: the small preset is explored with every step checked and no
//! violation, and a broken host is caught with a short path that replays as a failing trace.

use conformance::implcheck::{preset, HostBug, ImplModel, REFINEMENT};
use conformance::trace::check;
use model::coverage::{Branch, Decision};
use stateright::{Checker, Model};

/// The spec's CheckQuorum, lease and transfer branches the core takes: all but `lease-expires`, which its
/// election timeout covers (see `conformance_schedules.rs`).
fn check_quorum_branches() -> Vec<Branch> {
    Branch::CHECK_QUORUM
        .into_iter()
        .filter(|&b| b != Branch::LeaseExpires)
        .collect()
}

/// Explores the core at `preset` with every step checked against the model: no violation; what the steps
/// covered of the spec.
fn explore(preset_name: &str) -> model::coverage::Covered {
    let coverage = std::sync::Arc::new(model::coverage::Coverage::default());
    let mut model = ImplModel::new(preset(preset_name).unwrap().bounds);
    model.coverage = Some(coverage.clone());
    let checker = model.checker().threads(2).spawn_dfs().join();
    assert!(
        checker.discoveries().is_empty(),
        "{:?}",
        checker.discoveries().keys()
    );
    coverage.covered()
}

#[test]
fn implcheck_small_preset_refines_the_spec() {
    let model = ImplModel::new(preset("small").unwrap().bounds);
    // One thread: states are merged by their projection, so with two threads which of two merged states
    // is explored first can vary, and with it the count (see conformance/README.md).
    let checker = model.checker().threads(1).spawn_dfs().join();
    assert!(
        checker.discoveries().is_empty(),
        "{:?}",
        checker.discoveries().keys()
    );
    // The exact size. A change to the core or to the exploration that changes it must say why: 17,652 while a
    // follower whose commit index was its snapshot index was never crashed; 20,444 since it may be.
    assert_eq!(checker.unique_state_count(), 20_444);
}

/// The core with PreVote, explored at the `pre-vote` preset with every step checked against the model with
/// PreVote: no violation, and the spec's PreVote branches taken (a pre-vote granted, refused for its term and
/// for the log, arriving after its pre-candidate stepped down, and won).
#[test]
fn implcheck_pre_vote_preset_refines_the_spec() {
    // All but the counted-and-not-yet-won pre-vote, which needs four voters.
    let branches: Vec<Branch> = Branch::PRE_VOTE
        .into_iter()
        .filter(|&b| b != Branch::PreVoteReplyCounted)
        .collect();
    let not_taken = explore("pre-vote").not_taken(&branches);
    assert!(not_taken.is_empty(), "never taken: {not_taken:?}");
}

/// The core with CheckQuorum, PreVote and a leadership transfer, explored at the `check-quorum` preset with
/// every step checked against the model with both: no violation, every CheckQuorum, lease and transfer branch
/// of the spec taken (but `lease-expires`, which the core folds into its election timeout; see
/// `conformance_schedules.rs`), and every condition of those decisions shown deciding.
#[test]
fn implcheck_check_quorum_preset_refines_the_spec() {
    let covered = explore("check-quorum");
    let not_taken = covered.not_taken(&check_quorum_branches());
    assert!(not_taken.is_empty(), "never taken: {not_taken:?}");
    let not_shown = covered.not_shown(&[
        Decision::IgnoreInLease,
        Decision::CheckQuorum,
        Decision::TimeoutNowStarts,
    ]);
    assert!(not_shown.is_empty(), "not shown: {not_shown:?}");
}

/// Membership changes explored at the `membership` preset (two voters and a server to add, two changes, a
/// crash) with every step checked against the model: no violation, every membership branch of the spec
/// taken, and both conditions of the change guard (last change committed, an entry of the term committed)
/// and of the joint quorum shown deciding.
#[test]
fn implcheck_membership_preset_refines_the_spec() {
    let covered = explore("membership");
    let not_taken = covered.not_taken(&Branch::MEMBERSHIP);
    assert!(not_taken.is_empty(), "never taken: {not_taken:?}");
    let not_shown = covered.not_shown(&[Decision::ChangeConfig, Decision::JointQuorum]);
    assert!(not_shown.is_empty(), "not shown: {not_shown:?}");
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
    // The host reports what it saved, so the save itself is caught (before, a restart had to load it).
    assert!(
        violation
            .reason
            .contains("persisted a state other than its own"),
        "{}",
        violation.reason
    );
    // Breadth-first, the shortest path: a node times out, voting for itself, and saves without the vote.
    assert_eq!(actions.len(), 1, "{actions:?}");
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

/// A crash is offered to every node while the budget lasts, a follower whose commit index equals its snapshot
/// index included: in the spec such a crash loses nothing, but the core's restart reads the host's storage,
/// and only a crash shows whether that holds what the node made durable. Breadth-first over the small preset,
/// the explorer reaches a follower that granted a vote and has committed nothing past its snapshot, crashes
/// it, and the node restarts with its term, vote and log.
#[test]
fn implcheck_crashes_a_follower_whose_commit_index_is_its_snapshot_index() {
    use conformance::implcheck::{Action, State};
    use std::collections::{hash_map::DefaultHasher, HashSet, VecDeque};
    use std::hash::{BuildHasher, BuildHasherDefault};
    let explorer = ImplModel::new(preset("small").unwrap().bounds);
    // States by fingerprint, as stateright keeps them.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut queue: VecDeque<State> = explorer.init_states().into();
    let mut actions = Vec::new();
    while let Some(state) = queue.pop_front() {
        if !seen.insert(BuildHasherDefault::<DefaultHasher>::default().hash_one(&state)) {
            continue;
        }
        actions.clear();
        explorer.actions(&state, &mut actions);
        let spec = state.spec();
        for action in &actions {
            if let Action::Crash(i) = *action {
                let s = &spec.servers[i as usize];
                if s.role == model::state::Role::Follower
                    && s.commit_index == s.snapshot_index
                    && s.voted_for.is_some_and(|v| v as u64 != i)
                {
                    let after = explorer.next_state(&state, action.clone()).unwrap();
                    assert!(after.violation().is_none(), "{:?}", after.violation());
                    let spec_after = after.spec();
                    let r = &spec_after.servers[i as usize];
                    assert_eq!(spec_after.crashes, spec.crashes + 1);
                    assert_eq!(
                        (r.current_term, r.voted_for, &r.log, r.role),
                        (s.current_term, s.voted_for, &s.log, s.role)
                    );
                    return;
                }
            }
        }
        for action in actions.drain(..) {
            queue.extend(explorer.next_state(&state, action));
        }
    }
    panic!(
        "no follower that voted for another, with commit index = snapshot index, was crashed ({} states)",
        seen.len()
    );
}
