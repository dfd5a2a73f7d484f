//! The command line: output shapes, exit statuses, and clear errors for bad flags.

use std::process::Command;

fn model(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_model"))
        .args(args)
        .output()
        .expect("the model binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_ends_with_a_machine_readable_line() {
    let (code, out, _) = model(&["check", "--preset", "small", "--max-drops", "0"]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    let fields: Vec<_> = last.split_whitespace().collect();
    assert_eq!(&fields[..2], &["result:", "OK"], "{last}");
    for (field, key) in fields[2..]
        .iter()
        .zip(["unique=", "total=", "depth=", "secs="])
    {
        assert!(field.starts_with(key), "{last}");
    }
    assert!(out.contains("peak memory"));
    assert!(out.contains("Leader Completeness"));
}

#[test]
fn a_violation_prints_a_counterexample_and_exits_non_zero() {
    let (code, out, _) = model(&["check", "--bug", "forget-vote", "--bfs"]);
    assert_eq!(code, 1);
    assert!(out.ends_with("result: VIOLATED Election Safety\n"), "{out}");
    assert!(out.contains("1. S"), "numbered steps");
    assert!(out.contains("#/steps/0/"), "an Explorer link");
    assert!(out.contains("add --addr 127.0.0.1:PORT"), "{out}");
}

#[test]
fn bounds_that_rule_a_witness_out_do_not_expect_it() {
    // With two servers a follower never holds an entry that a later leader lacks (each leader
    // needs the other's vote), so no suffix is ever truncated: the preset's expectation is
    // dropped, not reported as unwitnessed. Likewise one term leaves no room for an election
    // after a restart with the small preset's two messages in flight and one drop.
    for (args, dropped) in [
        (&["--servers", "2"][..], "a log suffix is truncated"),
        (
            &["--servers", "2", "--max-term", "3"],
            "a log suffix is truncated",
        ),
        (&["--max-term", "1"], "a leader is elected after a restart"),
    ] {
        let mut all = vec!["check", "--preset", "small"];
        all.extend_from_slice(args);
        let (code, out, _) = model(&all);
        assert_eq!(code, 0, "{args:?}: {out}");
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(dropped))
            .unwrap();
        assert!(line.ends_with("not expected at these bounds"), "{line}");
        assert!(
            out.lines().last().unwrap().starts_with("result: OK"),
            "{out}"
        );
    }
}

#[test]
fn bad_flags_get_a_clear_error_and_status_2() {
    for (args, needle) in [
        (
            &["check", "--servers", "1"][..],
            "--servers must be between 2 and 7",
        ),
        (
            &["check", "--servers", "8"],
            "--servers must be between 2 and 7",
        ),
        (
            &["check", "--max-term", "0"],
            "--max-term must be at least 1",
        ),
        (&["check", "--max-log", "0"], "--max-log must be at least 1"),
        (&["check", "--values", "0"], "--values must be at least 1"),
        (&["check", "--threads", "0"], "--threads must be at least 1"),
        (&["check", "--bug", "nope"], "unknown bug 'nope'"),
        (&["check", "--preset", "huge"], "unknown preset 'huge'"),
        (
            &["check", "--max-inflight", "1"],
            "--max-inflight must be at least",
        ),
        (
            &["simulate", "--runs", "0"],
            "--runs and --depth must be at least 1",
        ),
        (&["check", "--servers", "x"], "invalid value"),
        (&["frobnicate"], "unrecognized subcommand"),
    ] {
        let (code, _, err) = model(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn bug_list_catches_every_bug_at_its_preset() {
    let (code, out, _) = model(&["check", "--bug", "list"]);
    assert_eq!(code, 0, "{out}");
    for bug in model::Bug::ALL {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{} ", bug.name())))
            .unwrap_or_else(|| panic!("no line for {}", bug.name()));
        assert!(line.contains(&format!(" {} ", bug.preset())), "{line}");
        assert!(!line.contains("NOT CAUGHT"), "{line}");
    }
}

#[test]
fn coverage_prints_every_branch_before_the_result() {
    let (code, out, _) = model(&["check", "--preset", "small", "--coverage"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<_> = out.lines().collect();
    let n = model::coverage::Branch::ALL.len();
    let c = model::coverage::Condition::ALL.len();
    let tail = &lines[lines.len() - n - c - 3..];
    for (line, branch) in tail.iter().zip(model::coverage::Branch::ALL) {
        let count = line
            .strip_prefix(&format!("branch {} ", branch.name()))
            .unwrap_or_else(|| panic!("{line}"));
        count.parse::<u64>().unwrap();
    }
    // The small preset has three servers, two terms and no snapshots: 27 of the 44.
    assert_eq!(tail[n], format!("coverage: 27/{n} branches"));
    for (line, condition) in tail[n + 1..].iter().zip(model::coverage::Condition::ALL) {
        let word = line
            .strip_prefix(&format!("condition {} ", condition.name()))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(word == "shown" || word == "NOT shown", "{line}");
    }
    // And 15 of the 33 conditions (see tests/coverage.rs for some it does not show).
    assert_eq!(tail[n + c + 1], format!("conditions: 15/{c}"));
    assert!(tail[n + c + 2].starts_with("result: OK "));
}

#[test]
fn a_bug_runs_the_portfolio_from_the_preset_that_catches_it() {
    let (code, out, _) = model(&["check", "--bug", "match-regress"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("a portfolio of 13 exhaustive searches"),
        "{out}"
    );
    assert!(out.contains("== part 1/13: preset default"), "{out}");
    assert!(!out.contains("part 2/10"), "it stops at the violation");
    assert!(out.contains("\nportfolio:\n  default "), "{out}");
    assert!(out.ends_with("result: VIOLATED match_index never decreases in a leader's term\n"));
}

#[test]
fn simulate_is_reproducible_from_its_seed() {
    let args = ["simulate", "--seed", "3", "--runs", "300", "--depth", "60"];
    let (code, first, _) = model(&args);
    assert_eq!(code, 0, "{first}");
    let (_, second, _) = model(&args);
    assert_eq!(walked(&first), walked(&second));
    let (code, out, _) = model(&[
        "simulate",
        "--seed",
        "1",
        "--runs",
        "5000",
        "--bug",
        "no-up-to-date-check",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("result: VIOLATED "), "{out}");
}

#[test]
fn bfs_keeps_symmetry_reduction_and_says_so() {
    let (_, help, _) = model(&["check", "--help"]);
    let bfs = help
        .split("--bfs")
        .nth(1)
        .and_then(|rest| rest.split("--").next())
        .unwrap();
    assert!(bfs.contains("with symmetry reduction"), "{bfs}");
    assert!(!help.contains("no symmetry"), "{help}");
    let (code, out, _) = model(&["check", "--preset", "small", "--bfs"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("search: BFS with symmetry reduction"), "{out}");
    let readme = include_str!("../README.md");
    assert!(!readme.contains("without symmetry reduction"));
    assert!(!readme.contains("`--bfs` turns it off"));
}

#[test]
fn servers_alone_raises_the_messages_in_flight() {
    let (code, out, _) = model(&[
        "check",
        "--servers",
        "4",
        "--max-term",
        "1",
        "--max-log",
        "1",
        "--max-crashes",
        "0",
        "--max-drops",
        "0",
        "--max-dups",
        "0",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("servers=4 max-term=1 max-log=1 max-crashes=0 max-inflight=3 "),
        "{out}"
    );
    // Given explicitly, a bound too small for an election is still refused.
    let (code, _, err) = model(&["check", "--servers", "4", "--max-inflight", "2"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--max-inflight must be at least voters - 1 = 3"),
        "{err}"
    );
}

/// The README's preset table and its figures for the small preset are what the program has and
/// prints.
#[test]
fn the_readme_states_the_presets_and_the_small_figures_as_they_are() {
    let readme = include_str!("../README.md");
    for p in model::bounds::PRESETS {
        let b = p.bounds;
        let on = |x: bool| if x { "on" } else { "off" };
        let row = format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            b.servers,
            b.max_term,
            b.max_log,
            b.max_crashes,
            b.max_inflight,
            b.max_drops,
            b.max_dups,
            on(b.snapshots),
            on(b.partial_batches),
            b.max_reads,
            b.voters,
            b.max_changes,
            on(b.joint),
            on(b.pre_vote),
            on(b.check_quorum),
            b.max_transfers
        );
        assert!(readme.contains(&row), "no row {row}");
    }
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `check --preset small` |"))
        .expect("the small preset's figures");
    let cells: Vec<String> = row.split('|').map(|c| c.trim().replace(',', "")).collect();
    let (code, out, _) = model(&["check", "--preset", "small", "--threads", "1"]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    let expected = format!(
        "result: OK unique={} total={} depth={} ",
        cells[2], cells[3], cells[4]
    );
    assert!(
        last.starts_with(&expected),
        "README: {expected} program: {last}"
    );
}

#[test]
fn simulate_scales_the_presets_bounds() {
    let header = |preset: &str| {
        let (code, out, _) = model(&[
            "simulate", "--preset", preset, "--seed", "1", "--runs", "1", "--depth", "3",
        ]);
        assert_eq!(code, 0, "{out}");
        out.lines().next().unwrap().to_string()
    };
    for (preset, bounds) in [
        (
            "default",
            "servers=3 max-term=8 max-log=6 max-crashes=4 max-inflight=8 max-drops=6 max-dups=4 \
             values=2 snapshots=off partial-batches=on max-reads=0",
        ),
        (
            "small",
            "servers=3 max-term=8 max-log=3 max-crashes=4 max-inflight=8 max-drops=6 max-dups=4 \
             values=2 snapshots=off partial-batches=off max-reads=0",
        ),
        (
            "deep",
            "servers=3 max-term=12 max-log=6 max-crashes=4 max-inflight=8 max-drops=0 max-dups=0 \
             values=2 snapshots=on partial-batches=off max-reads=0",
        ),
        (
            "joint",
            "servers=4 max-term=8 max-log=9 max-crashes=0 max-inflight=8 max-drops=0 max-dups=0 \
             values=2 snapshots=off partial-batches=off max-reads=0 voters=3 max-changes=6 joint=on",
        ),
    ] {
        let line = header(preset);
        assert!(line.contains(bounds), "{preset}: {line}");
    }
}

#[test]
fn simulate_without_a_seed_prints_the_one_it_used() {
    let args = ["simulate", "--runs", "20", "--depth", "30"];
    let (code, out, _) = model(&args);
    assert_eq!(code, 0, "{out}");
    let seed = out
        .lines()
        .find_map(|l| l.strip_prefix("seed: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a seed line")
        .to_string();
    let (_, again, _) = model(&["simulate", "--runs", "20", "--depth", "30", "--seed", &seed]);
    assert_eq!(walked(&out), walked(&again));
    assert!(
        !again.contains("seed: "),
        "a given seed is not announced again"
    );
}

/// What a `simulate` run did, from its last line without the time: `result: OK runs=<n> steps=<n>`.
fn walked(out: &str) -> String {
    let last = out.lines().last().unwrap();
    last.split(" secs=").next().unwrap().to_owned()
}
