//! `Bounds::can_reach`, the rule that keeps a preset's sometimes-properties only where bounds
//! given on the command line can still reach them, is exact: over a grid of small bounds, every
//! witness it expects is found, and (where the search can be exhaustive) every witness it rules
//! out is never reached.

use model::bounds::{preset, witness, Bounds};
use model::check::{self, Options, Verdict};
use model::properties::WITNESSES;
use model::raft::{Action, RaftModel};
use model::State;
use stateright::{Checker, HasDiscoveries, Model, Property};
use std::collections::BTreeSet;
use std::time::Duration;

/// Bounds from the small preset with the given shape.
fn bounds(servers: u8, max_term: u32, max_log: u32, max_inflight: u8) -> Bounds {
    Bounds {
        servers,
        voters: servers,
        max_term,
        max_log,
        max_inflight,
        ..preset("small").unwrap().bounds
    }
}

/// An exhaustive check of `b` that expects the witnesses `expect`.
fn check_expecting(b: Bounds, expect: Vec<&'static str>) -> check::Report {
    let options = Options {
        threads: 2,
        bfs: false,
        expect,
        coverage: false,
    };
    check::run(
        RaftModel::new(b),
        &options,
        Duration::from_secs(3600),
        |_| {},
    )
}

/// Checks exhaustively and compares what was witnessed with what `can_reach` says, both ways.
fn exact(b: Bounds) {
    let report = check_expecting(b, Vec::new());
    assert!(report.counterexample.is_none(), "{b:?}");
    for name in witness::ALL {
        let witnessed = report.verdict(name) == Some(Verdict::Witnessed);
        assert_eq!(witnessed, b.can_reach(name), "{name} at {b:?}");
    }
}

/// The small grid, searched exhaustively: two and three servers, every budget from none to a
/// little past what each witness needs.
#[test]
fn the_rule_is_exact_for_two_and_three_servers() {
    for servers in 2..=3 {
        for max_term in 1..=2 {
            for max_inflight in servers - 1..=servers + 1 {
                for max_drops in 0..=2 {
                    for (max_crashes, max_dups) in [(0, 0), (1, 1)] {
                        let b = Bounds {
                            max_crashes,
                            max_drops,
                            max_dups,
                            ..bounds(servers, max_term, 1, max_inflight)
                        };
                        if max_term == 2 && (max_inflight > (servers - 1).max(2) || max_drops > 1) {
                            continue; // Nothing new there, and big.
                        }
                        exact(b);
                    }
                }
            }
        }
        // Longer logs (the Figure 8 shape) and snapshots, without faults to keep it small.
        for (max_term, max_log, snapshots, max_crashes) in [
            (1, 2, false, 0),
            (2, 2, false, 0),
            (1, 1, true, 1),
            (2, 1, true, 0),
            (2, 1, true, 1),
        ] {
            exact(Bounds {
                max_crashes,
                max_drops: 0,
                max_dups: 0,
                snapshots,
                ..bounds(servers, max_term, max_log, servers)
            });
        }
        // PreVote, CheckQuorum and a transfer, each alone and all together, with one and two
        // terms.
        for max_term in 1..=2 {
            for (pre_vote, check_quorum, max_transfers) in [
                (true, false, 0),
                (false, true, 0),
                (false, false, 1),
                (true, true, 1),
            ] {
                exact(Bounds {
                    max_crashes: 0,
                    max_drops: 0,
                    max_dups: 0,
                    pre_vote,
                    check_quorum,
                    max_transfers,
                    ..bounds(servers, max_term, 1, servers - 1)
                });
            }
        }
    }
}

/// Four and five servers with one term, where a restart can be followed by an election only
/// with room for a rival candidate: the boundary of that rule, searched exhaustively on both
/// sides.
#[test]
fn the_rule_is_exact_at_the_single_term_restart_boundary() {
    for (servers, max_inflight, max_drops) in [(4, 3, 2), (4, 4, 0), (4, 4, 1), (4, 3, 3)] {
        exact(Bounds {
            max_crashes: 1,
            max_drops,
            max_dups: 0,
            ..bounds(servers, 1, 1, max_inflight)
        });
    }
}

/// The smallest bounds at which the rule expects `name`, from the small preset's shape: each
/// budget the behaviour does not need is zero, so that a search finds it quickly.
fn least_bounds_for(name: &str, servers: u8) -> Bounds {
    let n = servers;
    let mut b = Bounds {
        max_crashes: 0,
        max_drops: 0,
        max_dups: 0,
        ..bounds(n, 1, 1, n - 1)
    };
    match name {
        witness::SUFFIX_TRUNCATED => b.max_term = 2,
        witness::LEADER_AFTER_RESTART => (b.max_crashes, b.max_term) = (1, 2),
        witness::FIGURE_8 => (b.max_term, b.max_log) = (2, 2),
        witness::DUPLICATE_DELIVERED => (b.max_dups, b.max_inflight) = (1, n.max(2)),
        witness::SNAPSHOT_INSTALLED => b.snapshots = true,
        witness::RESTART_FROM_SNAPSHOT => (b.snapshots, b.max_crashes) = (true, 1),
        witness::READ_SERVED => b.max_reads = 1,
        witness::CONFIG_COMMITTED => (b.max_changes, b.max_log) = (1, 2),
        witness::PRE_VOTE_WON => b.pre_vote = true,
        witness::CHECK_QUORUM_STEPPED_DOWN => b.check_quorum = true,
        witness::TRANSFER_STARTED => (b.max_transfers, b.max_term) = (1, 2),
        _ => {}
    }
    b
}

/// The model with its interleavings cut down to find examples fast: while a message is in
/// flight, leaders neither send, nor take requests, nor commit, nor compact; only the network
/// (receive, drop, duplicate), timeouts and crashes move. Every behaviour of this
/// model is one of the full model's, so an example found here is one of the full model's.
struct OneThingAtATime(RaftModel);

impl Model for OneThingAtATime {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.0.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.0.actions(state, actions);
        if !state.network.is_empty() {
            actions.retain(|a| {
                matches!(
                    a,
                    Action::Receive(_)
                        | Action::Drop(_)
                        | Action::Duplicate(_)
                        | Action::Timeout(_)
                        | Action::Crash(_)
                )
            });
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.0.next_state(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        macro_rules! witness {
            ($k:literal) => {
                Property::sometimes(WITNESSES[$k].0, |m: &Self, s: &State| {
                    WITNESSES[$k].1(&m.0, s)
                })
            };
        }
        vec![
            witness!(0),
            witness!(1),
            witness!(2),
            witness!(3),
            witness!(4),
            witness!(5),
            witness!(6),
            witness!(7),
            witness!(8),
            witness!(9),
            witness!(10),
            witness!(11),
            witness!(12),
            witness!(13),
        ]
    }
}

/// Up to seven servers, where exhaustive searches are too big for a test: at the least bounds
/// for each witness, the rule expects it and a depth-first search that stops at the first
/// example finds it.
#[test]
fn every_expected_witness_is_found_up_to_seven_servers() {
    for servers in 4..=7 {
        // With a single term, a restart followed by an election needs a rival candidate whose
        // RequestVotes are dropped before they take the winner's votes.
        let single_term = Bounds {
            max_crashes: 1,
            max_drops: servers / 2 + 1,
            ..least_bounds_for(witness::LEADER_ELECTED, servers)
        };
        let cases = WITNESSES
            .iter()
            .map(|&(name, _)| (name, least_bounds_for(name, servers)))
            .chain([(witness::LEADER_AFTER_RESTART, single_term)]);
        for (name, b) in cases {
            assert!(b.can_reach(name), "{name} at {b:?}");
            let mut model = RaftModel::new(b);
            model.symmetry = true;
            assert!(
                found(OneThingAtATime(model), name),
                "{name} not found at {b:?}"
            );
        }
    }
}

/// Whether a depth-first search that stops at the first example of `name` finds one.
fn found<M>(model: M, name: &'static str) -> bool
where
    M: Model + Send + Sync + 'static,
    M::State: std::hash::Hash + Send + Sync + Clone + std::fmt::Debug + PartialEq,
    M::Action: Send + Sync + Clone + std::fmt::Debug + PartialEq,
{
    model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([name])))
        .spawn_dfs()
        .join()
        .discovery(name)
        .is_some()
}

/// An expectation that the search does not meet fails the check: two servers never truncate a
/// suffix (each leader needs the other's vote), so expecting it there must say so.
#[test]
fn an_unmet_expectation_is_reported() {
    let b = bounds(2, 2, 1, 1);
    assert!(!b.can_reach(witness::SUFFIX_TRUNCATED));
    let report = check_expecting(b, vec![witness::SUFFIX_TRUNCATED]);
    assert!(!report.ok());
    assert_eq!(
        report.result_line(),
        "result: UNWITNESSED a log suffix is truncated"
    );
}
