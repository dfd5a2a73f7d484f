//! Liveness under a partial partition (`model partition`): the specification driven by clocks. An
//! idle cluster keeps no leader once the leader loses its link to one follower, unless PreVote and
//! CheckQuorum are on; with them the leader keeps its place and no term rises. Each check is shown
//! to bite: the lease condition forced off, or the quorum check forced to pass, loses what it
//! gave.

use model::bounds::{preset, Bounds};
use model::coverage::parse_stuck;
use model::partition::{run, Run, Scenario, Timing};
use model::RaftModel;

fn model(pre_vote: bool, check_quorum: bool, stuck: Option<&str>) -> RaftModel {
    let mut m = RaftModel::new(Bounds {
        pre_vote,
        check_quorum,
        ..preset("default").unwrap().bounds
    });
    m.stuck = stuck.map(|s| parse_stuck(s).unwrap());
    m
}

fn scenario(write_every: Option<u64>, isolate: bool) -> Scenario {
    Scenario {
        timing: Timing {
            write_every,
            ..Timing::default()
        },
        settle: 5_000,
        partitioned: 30_000,
        isolate,
    }
}

fn runs(m: &RaftModel, s: &Scenario) -> Vec<Run> {
    let runs: Vec<Run> = (1..=5).map(|seed| run(m, s, seed)).collect();
    for r in &runs {
        assert_eq!(r.violation, None);
    }
    runs
}

#[test]
fn without_pre_vote_and_check_quorum_an_idle_cluster_keeps_no_leader() {
    for (pre_vote, check_quorum) in [(false, false), (true, false)] {
        for r in runs(&model(pre_vote, check_quorum, None), &scenario(None, false)) {
            assert_eq!(r.stable_after, None, "{r:?}");
            assert!(r.elections >= 5, "{r:?}");
        }
    }
}

#[test]
fn with_pre_vote_and_check_quorum_the_leader_keeps_its_place_and_no_term_rises() {
    let m = model(true, true, None);
    for write_every in [None, Some(50)] {
        for r in runs(&m, &scenario(write_every, false)) {
            assert_eq!(r.stable_after, Some(0), "{r:?}");
            assert_eq!((r.elections, r.max_term), (0, r.term_at_cut), "{r:?}");
            assert_eq!(r.leader_stepped_down, None, "{r:?}");
        }
    }
}

/// CheckQuorum alone keeps the leader, but the cut-off follower's term climbs (and disrupts the
/// cluster once the link heals); under writes, PreVote alone keeps the leader too, since the
/// cut-off follower's log falls behind and its pre-votes are refused.
#[test]
fn each_alone_helps_only_in_part() {
    for r in runs(&model(false, true, None), &scenario(None, false)) {
        assert_eq!(r.stable_after, Some(0), "{r:?}");
        assert!(r.max_term > r.term_at_cut + 5, "{r:?}");
    }
    for r in runs(&model(true, false, None), &scenario(Some(50), false)) {
        assert_eq!(r.stable_after, Some(0), "{r:?}");
        assert_eq!(r.max_term, r.term_at_cut, "{r:?}");
    }
}

/// The lease is what stops the cut-off follower's pre-votes: a server that never counts itself in
/// its lease, or takes every request for a transfer's, grants them, and leaders come and go again.
#[test]
fn the_lease_forced_off_loses_the_leader() {
    for stuck in [
        "ignore-in-lease/receiver-in-lease=false",
        "ignore-in-lease/not-transfer=false",
    ] {
        let m = model(true, true, Some(stuck));
        for r in runs(&m, &scenario(None, false)) {
            assert_eq!(r.stable_after, None, "{stuck}: {r:?}");
        }
    }
}

/// An isolated leader steps down within two election timeouts with CheckQuorum, and keeps leading
/// a cluster that has moved on without it when the check is forced to pass, or is off.
#[test]
fn an_isolated_leader_steps_down_only_with_a_working_quorum_check() {
    for r in runs(&model(true, true, None), &scenario(None, true)) {
        let after = r.leader_stepped_down.expect("stepped down");
        assert!(after <= 2_000, "{r:?}");
    }
    for m in [
        model(true, true, Some("check-quorum/recent-quorum=true")),
        model(true, false, None),
    ] {
        for r in runs(&m, &scenario(None, true)) {
            assert_eq!(r.leader_stepped_down, None, "{r:?}");
        }
    }
}

/// A run is a pure function of its seed.
#[test]
fn a_run_replays_exactly() {
    let m = model(false, false, None);
    let s = scenario(Some(50), false);
    assert_eq!(run(&m, &s, 7), run(&m, &s, 7));
}

/// PreVote's up-to-date check is what stops the cut-off follower under writes: granting it a
/// pre-vote whose log is behind (either part of the check forced to pass) lets it stand, and the
/// cluster loses its leader for a while and its term rises.
#[test]
fn pre_votes_granted_to_a_log_behind_disrupt_the_cluster() {
    for stuck in [
        "grant-pre-vote/last-term-higher=true",
        "grant-pre-vote/last-index-at-least=true",
    ] {
        let m = model(true, false, Some(stuck));
        let disrupted = runs(&m, &scenario(Some(50), false))
            .into_iter()
            .filter(|r| r.max_term > r.term_at_cut && r.stable_after != Some(0))
            .count();
        assert!(disrupted >= 4, "{stuck}: {disrupted} of 5 runs disrupted");
    }
}

/// A leader that fails every quorum check steps down each election timeout: no leader lasts.
#[test]
fn a_quorum_check_that_always_fails_keeps_no_leader() {
    let m = model(true, true, Some("check-quorum/recent-quorum=false"));
    for r in runs(&m, &scenario(None, false)) {
        assert_eq!(r.stable_after, None, "{r:?}");
    }
}
