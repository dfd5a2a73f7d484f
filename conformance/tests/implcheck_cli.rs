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
    let tail = &lines[lines.len() - n - 2..];
    for (line, branch) in tail.iter().zip(model::coverage::Branch::ALL) {
        let count = line
            .strip_prefix(&format!("branch {} ", branch.name()))
            .unwrap_or_else(|| panic!("{line}"));
        count.parse::<u64>().unwrap();
    }
    assert!(tail[n].starts_with("coverage: ") && tail[n].ends_with(&format!("/{n} branches")));
    assert!(
        tail[n + 1].starts_with("result: OK unique="),
        "{}",
        tail[n + 1]
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
