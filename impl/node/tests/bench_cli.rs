//! `raft-bench` prints its machine-readable line for both tiers, and refuses bad flags with status 2.

use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_raft-bench");

fn fields(line: &str) -> Vec<(String, f64)> {
    line.strip_prefix("bench: ")
        .unwrap_or_else(|| panic!("not a bench line: {line}"))
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn run(args: &[&str]) -> Vec<Vec<(String, f64)>> {
    let out = Command::new(EXE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(fields)
        .collect()
}

#[test]
fn tiers_0_and_1_measure_each_client_count() {
    for tier in ["0", "1"] {
        let lines = run(&["--tier", tier, "--secs", "0.2"]);
        assert_eq!(lines.len(), 3);
        check_in_memory_lines(&lines, tier);
    }
    // Tier 1 with loops that block at once.
    let lines = run(&["--tier", "1", "--secs", "0.2", "--poll-us", "0"]);
    check_in_memory_lines(&lines, "1");
}

fn check_in_memory_lines(lines: &[Vec<(String, f64)>], tier: &str) {
    for (line, clients) in lines.iter().zip([1.0, 64.0, 1024.0]) {
        let names: Vec<&str> = line.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "tier",
                "clients",
                "ops",
                "secs",
                "ops_per_sec",
                "p50_us",
                "p99_us",
                "msgs_per_op"
            ]
        );
        assert_eq!(line[0].1.to_string(), tier);
        assert_eq!(line[1].1, clients);
        assert!(line[2].1 > 0.0, "no operation completed: {line:?}");
        assert!(line[6].1 >= line[5].1, "p99 below p50: {line:?}");
        // Writes are replicated, so messages were sent; one AppendEntries to each of two followers and
        // their answers make four per write at most, with heartbeats besides.
        assert!(
            line[7].1 > 0.0 && line[7].1 <= 6.0,
            "messages per write: {line:?}"
        );
        // In tier 1 the event loop proposes a round's proposals together: with 1,024 writes outstanding,
        // one AppendEntries to a follower carries many of them. (One message per proposal made 4.00.)
        if tier == "1" && clients == 1024.0 {
            assert!(line[7].1 < 1.0, "proposals not coalesced: {line:?}");
        }
    }
}

#[test]
fn tier_2_runs_three_processes_with_fsync() {
    let lines = run(&["--tier", "2", "--clients", "8", "--secs", "0.5"]);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.last().unwrap().0, "fsyncs_per_sec");
    assert!(line[2].1 > 0.0 && line.last().unwrap().1 > 0.0, "{line:?}");
}

#[test]
fn bad_flags_get_status_2() {
    for args in [
        &["--tier", "3"][..],
        &["--clients", "0"],
        &["--secs", "0"],
        &["--poll-us", "10001"],
    ] {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    }
}
