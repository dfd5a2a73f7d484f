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
/// meet a term mismatch at prev_log_index (every refusal is for a short log, so the log's length
/// never decides while false), and with logs of one entry two logs that end in the same term are
/// as long as each other: the small preset's coverage says so.
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
    assert!(
        missing.contains(&Condition::LogEndsBeforePrev),
        "{missing:?}"
    );
    assert!(
        missing.contains(&Condition::LastIndexAtLeast),
        "{missing:?}"
    );
    assert!(!missing.contains(&Condition::NoOtherVote), "{missing:?}");
    assert!(!missing.contains(&Condition::LastTermHigher), "{missing:?}");
}

fn check_stuck(preset_name: &str, stuck: Option<&str>) -> check::Report {
    let p = preset(preset_name).unwrap();
    let options = Options {
        threads: 2,
        bfs: false,
        expect: p.expect.to_vec(),
        coverage: false,
    };
    let mut model = RaftModel::new(p.bounds);
    model.stuck = stuck.map(|s| model::coverage::parse_stuck(s).unwrap());
    check::run(model, &options, Duration::from_secs(3600), |_| {})
}

/// A condition stuck at one value is a departure from Raft in that condition alone. Stuck where a
/// bug switch departs, it is caught as the bug switch is; stuck where the departure cannot matter,
/// it is not.
#[test]
fn a_stuck_condition_is_caught_where_it_breaks_raft() {
    // The vote-twice bug, as a stuck condition.
    let report = check_stuck("overlap", Some("grant-vote/no-other-vote=true"));
    assert_eq!(
        report.result_line(),
        "result: VIOLATED a leader never grants a vote in its term"
    );
    // The no-prev-term-check bug.
    let report = check_stuck("terms", Some("accept-append/prev-entry-matches=true"));
    assert!(report.result_line().starts_with("result: VIOLATED "));
    // The figure8-commit bug.
    let report = check_stuck("terms", Some("leader-commits/entry-of-own-term=true"));
    assert_eq!(report.result_line(), "result: VIOLATED Leader Completeness");
    // The two conditions the portfolio showed only once the snapshot-overlap search joined it. A
    // leader that counts a snapshot reply of an earlier term is caught there: the reply is born
    // dead (a follower answers the snapshot the leader sent before it crashed and won the next
    // term), and delivering it would change the leader. A candidate that installs a snapshot of
    // its term and stays a candidate changes states, but no property catches it: it cannot win
    // that term (the leader holds a majority of its votes).
    let stale_counted = check_stuck(
        "snapshot-overlap",
        Some("snapshot-reply-live/reply-term-current=true"),
    );
    assert_eq!(
        stale_counted.result_line(),
        "result: VIOLATED pruned message was not dead"
    );
    let correct = check_stuck("snapshot-overlap", None);
    assert!(correct.ok(), "{}", correct.result_line());
    let stays = check_stuck(
        "snapshot-overlap",
        Some("snapshot-steps-down/receiver-not-follower=false"),
    );
    assert!(stays.ok(), "{}", stays.result_line());
    assert_ne!(stays.progress.unique, correct.progress.unique);
}

/// MC/DC shows where a condition decides, not that the properties see what a departure there does.
/// A follower that keeps a conflicting suffix after installing a snapshot passes the portfolio's
/// snapshot searches, whose small bounds never let that suffix meet a copy of its entries with
/// another prefix; random walks at five servers find it breaking Log Matching.
#[test]
fn a_stuck_condition_the_portfolio_misses_is_found_at_larger_bounds() {
    use model::bounds::Bounds;
    use model::simulate::simulate;
    let stuck = "keep-suffix/snapshot-term-matches=true";
    for name in ["snapshots", "snapshot-overlap"] {
        let report = check_stuck(name, Some(stuck));
        assert!(report.ok(), "{name}: {}", report.result_line());
    }
    let bounds = Bounds {
        servers: 5,
        max_term: 8,
        max_log: 4,
        max_crashes: 4,
        max_inflight: 8,
        max_drops: 0,
        max_dups: 0,
        values: 2,
        snapshots: true,
        partial_batches: false,
        max_reads: 0,
        voters: 5,
        max_changes: 0,
        joint: false,
        pre_vote: false,
        check_quorum: false,
        max_transfers: 0,
    };
    let mut model = RaftModel::new(bounds);
    model.stuck = Some(model::coverage::parse_stuck(stuck).unwrap());
    let outcome = simulate(&model, 1, 200_000, 200);
    assert_eq!(
        outcome.violation.map(|(name, _)| name),
        Some("Log Matching")
    );
    // The correct model passes the same walks.
    let correct = simulate(&RaftModel::new(bounds), 1, 20_000, 200);
    assert!(correct.violation.is_none());
}

/// The membership decisions stuck at the values their bug switches take are caught as those are;
/// `joint-quorum/new-voters-majority` stuck at true (a joint quorum from C_old's majority alone) is
/// not caught by the `joint` search, where a server in a joint configuration never has room for
/// the three RequestVotes of an election: with room for them (`--max-inflight 3`, a search too
/// large for a test) it breaks Leader Completeness (model/README.md, "Stuck conditions").
#[test]
fn a_stuck_membership_condition_is_caught_where_it_breaks_raft() {
    // (With two threads, the search may meet either consequence first.)
    let report = check_stuck(
        "two-removals",
        Some("change-config/term-entry-committed=true"),
    );
    assert!(
        [
            "result: VIOLATED Election Safety",
            "result: VIOLATED Leader Completeness",
            "result: VIOLATED a removed server's vote is never counted",
        ]
        .contains(&report.result_line().as_str()),
        "{}",
        report.result_line()
    );
    let report = check_stuck("joint", Some("joint-quorum/old-voters-majority=true"));
    assert_eq!(report.result_line(), "result: VIOLATED Leader Completeness");
    let report = check_stuck("joint", Some("joint-quorum/new-voters-majority=true"));
    assert!(report.ok(), "{}", report.result_line());
}
