//! The membership tests on the simulator (`conformance::lab::tests_membership`), each on ten seeds, every
//! run passing and trace-validated against the model.

use conformance::lab::{run_traced_checked, tests_membership::TESTS};

/// Runs the test named `name` on seeds 1..=10, each passing and trace-validated.
fn runs(name: &str) {
    let test = TESTS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no test {name}"));
    for seed in 1..=10 {
        let (outcome, _, verdict) = run_traced_checked(test, seed, true);
        assert!(
            outcome.failure.is_none(),
            "{name} seed {seed}: {:?}",
            outcome.failure
        );
        assert!(
            verdict.checked().is_some(),
            "{name} seed {seed}: the trace was not validated: {verdict:?}"
        );
    }
}

#[test]
fn lab_membership_join_and_promote() {
    runs("membership_join_and_promote");
}

#[test]
fn lab_membership_remove_the_leader_and_shrink() {
    runs("membership_remove_the_leader_and_shrink");
}

#[test]
fn lab_membership_replace_under_loss_and_crashes() {
    runs("membership_replace_under_loss_and_crashes");
}

#[test]
fn lab_membership_a_learner_neither_votes_nor_counts() {
    runs("membership_a_learner_neither_votes_nor_counts");
}

#[test]
fn lab_membership_joint_consensus_replaces_two() {
    runs("membership_joint_consensus_replaces_two");
}

#[test]
fn lab_membership_one_change_at_a_time() {
    runs("membership_one_change_at_a_time");
}

#[test]
fn lab_membership_no_change_before_a_commit_in_the_term() {
    runs("membership_no_change_before_a_commit_in_the_term");
}

#[test]
fn lab_membership_an_uncommitted_change_is_undone() {
    runs("membership_an_uncommitted_change_is_undone");
}

#[test]
fn lab_transfer_leadership() {
    runs("transfer_leadership");
}

#[test]
fn every_test_is_run() {
    let source = include_str!("lab_membership.rs");
    for test in TESTS {
        assert!(
            source.contains(&format!("runs(\"{}\")", test.name)),
            "{} is not run",
            test.name
        );
    }
}
