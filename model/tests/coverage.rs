//! Coverage: the default check (the portfolio) takes every outcome of every action of the
//! specification and shows every condition of every decision deciding (MC/DC), and the counts can
//! show what a search never takes or never shows.

use model::bounds::{preset, PORTFOLIO};
use model::check::{self, Options};
use model::coverage::{Branch, Condition, Covered};
use model::raft::RaftModel;
use std::time::Duration;

fn coverage_of(name: &str) -> Covered {
    let p = preset(name).unwrap();
    let options = Options {
        threads: 2,
        bfs: false,
        expect: p.expect.to_vec(),
        coverage: true,
    };
    let report = check::run(
        RaftModel::new(p.bounds),
        &options,
        Duration::from_secs(3600),
        |_| {},
    );
    assert!(report.ok(), "{name}: {}", report.result_line());
    report.coverage.expect("asked for coverage")
}

fn not_shown(covered: &Covered) -> Vec<Condition> {
    covered
        .observed
        .conditions()
        .into_iter()
        .filter(|(_, shown)| !shown)
        .map(|(c, _)| c)
        .collect()
}

/// The portfolio takes every branch and shows every condition; the five searches it had before the
/// `snapshot-overlap` search joined it show all conditions but two.
#[test]
fn the_default_check_takes_every_branch_and_shows_every_condition() {
    let mut total = Covered::default();
    let mut old = Covered::default();
    for name in PORTFOLIO {
        let covered = coverage_of(name);
        for (k, (branch, _)) in covered.branches.iter().enumerate() {
            assert_eq!(*branch, Branch::ALL[k]);
        }
        total.merge(&covered);
        if name != "snapshot-overlap" {
            old.merge(&covered);
        }
    }
    let missed: Vec<_> = total
        .branches
        .iter()
        .filter(|(_, c)| *c == 0)
        .map(|(b, _)| b.name())
        .collect();
    assert!(missed.is_empty(), "never taken: {missed:?}");
    assert_eq!(not_shown(&total), vec![], "conditions not shown");
    assert_eq!(
        not_shown(&old),
        vec![
            Condition::SnapshotReceiverNotFollower,
            Condition::SnapshotReplyTermCurrent
        ]
    );
}

/// Three servers never count a vote that does not elect (two make a majority), two terms never
/// meet a term mismatch at prev_log_index, and with logs of one entry two logs that end in the same
/// term are as long as each other: the small preset's coverage says so.
#[test]
fn coverage_shows_what_a_search_never_takes() {
    let covered = coverage_of("small");
    let count = |b: Branch| covered.branches.iter().find(|(x, _)| *x == b).unwrap().1;
    assert_eq!(count(Branch::VoteReplyCounted), 0);
    assert_eq!(count(Branch::AppendTermMismatch), 0);
    assert_eq!(count(Branch::Compact), 0, "snapshots are off");
    assert!(count(Branch::VoteGranted) > 0);
    assert!(count(Branch::AppendAppended) > 0);
    let missing = not_shown(&covered);
    assert!(missing.contains(&Condition::VotesMakeQuorum), "{missing:?}");
    assert!(missing.contains(&Condition::PrevTermMatches), "{missing:?}");
    assert!(
        missing.contains(&Condition::LastIndexAtLeast),
        "{missing:?}"
    );
    assert!(!missing.contains(&Condition::NoOtherVote), "{missing:?}");
    assert!(!missing.contains(&Condition::LastTermEqual), "{missing:?}");
}
