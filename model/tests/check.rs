//! The checker end to end: the small preset holds everything and witnesses what it should, every
//! bug switch is caught, and the state space of one fixed configuration keeps its exact size.

use model::bounds::{preset, witness, Bounds, Bug};
use model::check::{self, Options, Verdict};
use model::properties::*;
use model::raft::RaftModel;
use std::time::Duration;

fn run(bounds: Bounds, bug: Option<Bug>, expect: &[&'static str], bfs: bool) -> check::Report {
    let options = Options {
        threads: 2,
        bfs,
        expect: expect.to_vec(),
        coverage: false,
    };
    check::run(
        RaftModel::with_bug(bounds, bug),
        &options,
        Duration::from_secs(3600),
        |_| {},
    )
}

#[test]
fn small_preset_holds_and_witnesses_what_it_expects() {
    let small = preset("small").unwrap();
    let report = run(small.bounds, None, small.expect, false);
    for (name, verdict) in &report.verdicts {
        let expected = if SAFETY.iter().any(|(n, _)| n == name) {
            Verdict::Holds
        } else if small.expect.contains(name) {
            Verdict::Witnessed
        } else {
            Verdict::NotExpected
        };
        assert_eq!(*verdict, expected, "{name}");
    }
    assert!(report.ok());
    assert!(report.result_line().starts_with("result: OK unique="));
    // The small preset leaves out only the Figure 8 shape, which needs longer logs, the snapshot
    // witnesses (snapshots are off), reads (none are made), configuration changes (none), and
    // PreVote, CheckQuorum and transfers (off).
    let left_out: Vec<_> = witness::ALL
        .into_iter()
        .filter(|w| !small.expect.contains(w))
        .collect();
    assert_eq!(
        left_out,
        [
            witness::FIGURE_8,
            witness::SNAPSHOT_INSTALLED,
            witness::RESTART_FROM_SNAPSHOT,
            witness::READ_SERVED,
            witness::CONFIG_COMMITTED,
            witness::PRE_VOTE_WON,
            witness::CHECK_QUORUM_STEPPED_DOWN,
            witness::TRANSFER_STARTED,
        ]
    );
}

/// The exact number of distinct states (up to symmetry) of one fixed configuration: a change to
/// the model's state space shows up here first. Update it only for a change meant to alter the
/// state space, and say why in the commit.
#[test]
fn state_space_of_a_fixed_configuration_is_unchanged() {
    let bounds = Bounds {
        max_crashes: 0,
        max_drops: 0,
        max_dups: 0,
        ..preset("small").unwrap().bounds
    };
    let dfs = run(bounds, None, &[], false);
    let bfs = run(bounds, None, &[], true);
    assert!(dfs.ok() && bfs.ok());
    assert_eq!(
        dfs.progress.unique, bfs.progress.unique,
        "DFS and BFS agree"
    );
    assert_eq!(dfs.progress.unique, EXPECTED_UNIQUE_STATES);
}

const EXPECTED_UNIQUE_STATES: usize = 5649;

/// The properties each bug can break first; the search stops at the first violation it finds.
fn expected_violations(bug: Bug) -> &'static [&'static str] {
    match bug {
        Bug::Figure8Commit => &[LEADER_COMPLETENESS, STATE_MACHINE_SAFETY],
        Bug::ForgetVote => &[ELECTION_SAFETY],
        Bug::NoUpToDateCheck => &[LEADER_COMPLETENESS, STATE_MACHINE_SAFETY],
        Bug::AcceptStaleTerm => &[STATE_MACHINE_SAFETY, LEADER_COMPLETENESS, LOG_MATCHING],
        // The deleted entries were acknowledged, so once committed they vanish from under the
        // commit index.
        Bug::TruncateOnMatch => &[COMMIT_WITHIN_LOG, STATE_MACHINE_SAFETY, LEADER_COMPLETENESS],
        // The rolled-back server's commit index goes down; it forgets entries it acknowledged,
        // which a later leader then lacks.
        Bug::SnapshotRegress => &[
            COMMIT_MONOTONIC,
            LEADER_COMPLETENESS,
            STATE_MACHINE_SAFETY,
            LOG_MATCHING,
        ],
        // Two of five servers elect a leader or commit an entry that a later leader lacks.
        Bug::QuorumOfTwo => &[ELECTION_SAFETY, LEADER_COMPLETENESS, STATE_MACHINE_SAFETY],
        // A heartbeat that does not carry the follower up to the leader's commit index.
        Bug::CommitWithoutCap => &[COMMIT_WITHIN_LOG, STATE_MACHINE_SAFETY],
        Bug::NoPrevTermCheck => &[LOG_MATCHING, STATE_MACHINE_SAFETY, LEADER_COMPLETENESS],
        // The stale vote is pruned as dead before delivery; the checked pruning sees that it is
        // not.
        Bug::StaleVoteCounted => &[PRUNED_DEAD, ELECTION_SAFETY],
        Bug::VoteTwice => &[LEADER_NEVER_VOTES, ELECTION_SAFETY],
        Bug::MatchRegress => &[MATCH_MONOTONIC],
        // A read at a commit index behind what an earlier leader committed; a deposed leader's.
        Bug::ReadBeforeTermCommit | Bug::ReadWithoutQuorum => &[READ_LINEARIZABLE],
        // Two removals across a leader change: the first leader is elected again by its own
        // configuration, without the server the second leader's committed change kept.
        Bug::ChangeBeforeTermCommit => &[ELECTION_SAFETY, LEADER_COMPLETENESS, VOTES_OF_VOTERS],
        // C_new is appended while C_old,new is uncommitted (and, with that property off, Leader
        // Completeness breaks at the same bounds).
        Bug::LeaveJointEarly => &[ONE_CHANGE_AT_A_TIME, LEADER_COMPLETENESS],
        // A majority of C_new alone commits what the old voters then elect a leader without.
        Bug::JointNewQuorumOnly => &[LEADER_COMPLETENESS, STATE_MACHINE_SAFETY, ELECTION_SAFETY],
        Bug::LearnerVoteCounted => &[VOTES_OF_VOTERS, ELECTION_SAFETY],
        // The receiver of the first PreVote enters the term the pre-candidate would stand in.
        Bug::PreVoteRaisesTerm => &[NEW_TERM_BY_CANDIDATE],
    }
}

/// The bounds of the portfolio's preset that catches `bug`.
fn bug_bounds(bug: Bug) -> Bounds {
    preset(bug.preset()).unwrap().bounds
}

#[test]
fn every_bug_switch_is_caught() {
    for bug in Bug::ALL {
        let report = run(bug_bounds(bug), Some(bug), &[], false);
        let (name, steps) = report
            .counterexample
            .as_ref()
            .unwrap_or_else(|| panic!("{} was not caught", bug.name()));
        assert!(
            expected_violations(bug).contains(name),
            "{} broke {name}, expected one of {:?}",
            bug.name(),
            expected_violations(bug)
        );
        assert_eq!(report.verdict(name), Some(Verdict::Violated));
        assert_eq!(report.result_line(), format!("result: VIOLATED {name}"));
        // The counterexample replays under one naming of the servers and ends in the violation.
        let model = RaftModel::with_bug(bug_bounds(bug), Some(bug));
        let last = &steps.last().unwrap().0;
        let property = stateright::Model::properties(&model)
            .into_iter()
            .find(|p| p.name == *name)
            .unwrap();
        assert!(!(property.condition)(&model, last), "{}", bug.name());
        for pair in steps.windows(2) {
            let action = pair[0].1.as_ref().unwrap();
            assert_eq!(model.step(&pair[0].0, action).as_ref(), Some(&pair[1].0));
        }
        assert!(check::format_path(steps).contains("1. "));
    }
}

#[test]
fn without_the_bug_the_same_bounds_hold() {
    let report = run(bug_bounds(Bug::Figure8Commit), None, &[], false);
    assert!(report.ok(), "{}", report.result_line());
}

#[test]
fn snapshots_are_installed_and_restarted_from() {
    let bounds = Bounds {
        snapshots: true,
        max_drops: 0,
        max_dups: 0,
        ..preset("small").unwrap().bounds
    };
    let expect = [witness::SNAPSHOT_INSTALLED, witness::RESTART_FROM_SNAPSHOT];
    let report = run(bounds, None, &expect, false);
    assert!(report.ok(), "{}", report.result_line());
    for w in expect {
        assert_eq!(report.verdict(w), Some(Verdict::Witnessed), "{w}");
    }
}

/// The enumerator's reduction: random deep walks that choose among every action the guards allow
/// (any batch, commit point, compaction, next_index) break no property, at bounds and lengths
/// beyond the exhaustive check; and the same walks find a bug that needs such actions.
#[test]
fn walks_over_every_allowed_action_break_no_property() {
    use model::simulate::{simulate_with, Actions};
    // Fixed membership with three and five servers; then five servers, three voting at first,
    // that change their configuration one server at a time and through joint consensus; then
    // with PreVote, CheckQuorum and leadership transfers, alone and with changes.
    for (servers, voters, inflight, max_changes, joint, extras) in [
        (3, 3, 4, 0, false, false),
        (5, 5, 6, 0, false, false),
        (5, 3, 6, 4, false, false),
        (5, 3, 6, 4, true, false),
        (3, 3, 4, 0, false, true),
        (5, 5, 6, 0, false, true),
        (5, 3, 6, 4, false, true),
    ] {
        let bounds = Bounds {
            servers,
            max_term: 5,
            max_log: 4 + u32::from(max_changes),
            max_crashes: 2,
            max_inflight: inflight,
            max_drops: 3,
            max_dups: 2,
            values: 2,
            snapshots: true,
            partial_batches: true,
            max_reads: 0,
            voters,
            max_changes,
            joint,
            pre_vote: extras,
            check_quorum: extras,
            max_transfers: if extras { 4 } else { 0 },
        };
        let model = RaftModel::new(bounds);
        let outcome = simulate_with(&model, Actions::All, 7, 300, 150);
        if let Some((name, walk)) = &outcome.violation {
            panic!(
                "{servers} servers, {voters} voting: {name} broken:\n{}",
                check::format_path(walk)
            );
        }
        assert!(outcome.steps > 20_000, "{} steps", outcome.steps);
    }
}

#[test]
fn walks_over_every_allowed_action_find_a_bug() {
    use model::simulate::{simulate_with, Actions};
    let bounds = Bounds {
        max_term: 4,
        max_log: 3,
        max_inflight: 4,
        ..preset("default").unwrap().bounds
    };
    let model = RaftModel::with_bug(bounds, Some(Bug::CommitWithoutCap));
    let outcome = simulate_with(&model, Actions::All, 7, 2000, 150);
    let (name, _) = outcome.violation.expect("the walks find the missing cap");
    assert!(
        [COMMIT_WITHIN_LOG, STATE_MACHINE_SAFETY].contains(&name),
        "{name}"
    );
}
