//! `labtest --check --coverage`: the spec branches a checked campaign took.

use std::process::Command;

fn labtest(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_labtest"))
        .args(args)
        .output()
        .expect("labtest runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn count(text: &str, branch: &str) -> u64 {
    let prefix = format!("branch {branch} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count for {branch} in:\n{text}"))
}

#[test]
fn a_checked_campaign_reports_the_branches_its_steps_took() {
    let (code, text) = labtest(&["-n", "1", "--check", "--coverage", "TestInitialElection2A"]);
    assert_eq!(code, 0, "{text}");
    // An election test: votes are granted and leaders elected, and no snapshot is ever installed.
    assert!(count(&text, "request-vote/granted") > 0);
    assert!(count(&text, "vote-reply/elected") > 0);
    assert_eq!(count(&text, "install-snapshot/replaces-log"), 0);
    let line = text
        .lines()
        .find(|l| l.starts_with("coverage: "))
        .expect("a coverage line");
    let taken: usize = line["coverage: ".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("taken/total");
    assert!((5..44).contains(&taken), "{line}");
}

#[test]
fn coverage_needs_the_check() {
    let (code, text) = labtest(&["-n", "1", "--coverage", "TestInitialElection2A"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--check"), "{text}");
}
