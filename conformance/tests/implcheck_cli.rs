//! `implcheck`'s command line: the machine-readable last line, coverage lines, and clear errors.

use std::process::Command;

fn implcheck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_implcheck"))
        .args(args)
        .output()
        .expect("implcheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn implcheck_prints_coverage_then_the_result() {
    let (code, out, _) = implcheck(&["check", "--preset", "small", "--coverage"]);
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
    assert!(tail[n].starts_with("coverage: ") && tail[n].ends_with(&format!("/{n} branches")));
    for (line, condition) in tail[n + 1..].iter().zip(model::coverage::Condition::ALL) {
        let word = line
            .strip_prefix(&format!("condition {} ", condition.name()))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(word == "shown" || word == "NOT shown", "{line}");
    }
    // The small preset: three servers, two terms, logs of one, no snapshots.
    assert_eq!(tail[n + c + 1], format!("conditions: 12/{c}"));
    assert!(
        tail[n + c + 2].starts_with("result: OK unique="),
        "{}",
        tail[n + c + 2]
    );
}

#[test]
fn implcheck_refuses_bad_flags_with_status_2() {
    for args in [
        &["check", "--preset", "huge"][..],
        &["check", "--servers", "6"][..],
        &["check", "--servers", "5", "--max-inflight", "2"][..],
        &["check", "--threads", "0"][..],
    ] {
        let (code, out, err) = implcheck(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}
