//! Checking the model from code, with a bug switch on: the single-server membership change bug
//! (a leader changes the configuration before it has committed an entry of its term, Ongaro,
//! raft-dev, 2015), searched breadth-first for its shortest counterexample, then the same bounds
//! without the bug.
//!
//! Run it with `cargo run --release -p model --example bug_switch`.

use model::bounds::{preset, Bug};
use model::check::{self, Options};
use model::raft::RaftModel;
use std::time::Duration;

fn main() {
    let two_removals = preset("two-removals").expect("a preset of the portfolio");
    let options = Options {
        threads: 2,
        bfs: true,
        expect: Vec::new(),
        coverage: false,
    };
    let quiet = |_| {};
    let buggy = RaftModel::with_bug(two_removals.bounds, Some(Bug::ChangeBeforeTermCommit));
    let report = check::run(buggy, &options, Duration::from_secs(3600), quiet);
    let (property, steps) = report
        .counterexample
        .as_ref()
        .expect("the bug switch is caught");
    println!(
        "with {}: {property} breaks",
        Bug::ChangeBeforeTermCommit.name()
    );
    print!("{}", check::format_path(steps));
    println!("{}", report.result_line());

    let correct = RaftModel::new(two_removals.bounds);
    let report = check::run(correct, &options, Duration::from_secs(3600), quiet);
    println!("without it: {}", report.result_line());
    assert!(report.ok());
}
