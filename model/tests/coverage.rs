//! Branch coverage: the default check (the portfolio) takes every outcome of every action of the
//! specification, and the count can show a branch that a search never takes.

use model::bounds::{preset, PORTFOLIO};
use model::check::{self, Options};
use model::coverage::Branch;
use model::raft::RaftModel;
use std::time::Duration;

fn coverage_of(name: &str) -> Vec<(Branch, u64)> {
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

#[test]
fn the_default_check_takes_every_branch() {
    let mut total = vec![0u64; Branch::ALL.len()];
    for name in PORTFOLIO {
        for (k, (branch, count)) in coverage_of(name).into_iter().enumerate() {
            assert_eq!(branch, Branch::ALL[k]);
            total[k] += count;
        }
    }
    let missed: Vec<_> = Branch::ALL
        .iter()
        .zip(&total)
        .filter(|(_, &c)| c == 0)
        .map(|(b, _)| b.name())
        .collect();
    assert!(missed.is_empty(), "never taken: {missed:?}");
}

/// Three servers never count a vote that does not elect (two make a majority), and two terms
/// never meet a term mismatch at prev_log_index: the small preset's coverage says so.
#[test]
fn coverage_shows_what_a_search_never_takes() {
    let counts = coverage_of("small");
    let count = |b: Branch| counts.iter().find(|(x, _)| *x == b).unwrap().1;
    assert_eq!(count(Branch::VoteReplyCounted), 0);
    assert_eq!(count(Branch::AppendTermMismatch), 0);
    assert_eq!(count(Branch::Compact), 0, "snapshots are off");
    assert!(count(Branch::VoteGranted) > 0);
    assert!(count(Branch::AppendAppended) > 0);
}
